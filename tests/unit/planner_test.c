/* planner_test.c: staged scale actions from portraits. */
#include "scaling/planner.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

static workload_spec spec(void) {
    workload_spec s;
    wl_defaults(&s);
    snprintf(s.name, sizeof s.name, "web");
    s.min_replicas = 1;
    s.max_replicas = 50;
    s.scale_up_ahead_seconds = 120;
    s.down.change_percent = 100;
    s.down.observation_seconds = 0;
    s.down.state = WL_GRAY_STANDBY;
    return s;
}

static portrait *flat(int need, int prov, int64_t now) {
    static portrait pt;
    pt.t0 = now - now % 60;
    pt.step = 60;
    pt.n = 10;
    for (int i = 0; i < pt.n; i++)
        pt.needed[i] = need, pt.replicas[i] = prov;
    snprintf(pt.status, sizeof pt.status, "test");
    return &pt;
}

static int count(const planner_action *a, size_t n, planner_action_kind k) {
    int c = 0;
    for (size_t i = 0; i < n; i++)
        c += a[i].kind == k;
    return c;
}

static size_t step(planner *p, int64_t now, int need, int prov, double util,
                   const planner_action **a) {
    planner_metric m = {"utilization", util};
    planner_input in = {now, flat(need, prov, now), &m, 1};
    size_t n = 0;
    if (planner_step(p, &in, a, &n) < 0) return (size_t)-1;
    return n;
}

TEST(planner_scale_up_activates_standby_before_starting) {
    workload_spec s = spec();
    planner *p;
    T_EQ_INT(planner_new(&p, &s), 0);
    planner_add_replica(p, "a", REPLICA_ONLINE, 0);
    planner_add_replica(p, "b", REPLICA_ONLINE, 0);
    planner_add_replica(p, "c", REPLICA_STANDBY, 0);
    planner_add_replica(p, "d", REPLICA_STANDBY, 0);
    const planner_action *a;
    size_t n = step(p, 1000, 6, 6, 50, &a);
    T_EQ_INT(n, 4);
    T_EQ_INT(count(a, n, ACT_ACTIVATE), 2);
    T_EQ_INT(count(a, n, ACT_START), 2);
    T_EQ_INT(a[0].kind, ACT_ACTIVATE); /* standby first */
    /* idempotent: pending actions are not issued again */
    n = step(p, 1015, 6, 6, 50, &a);
    T_EQ_INT(n, 0);
    planner_counts c;
    planner_counts_get(p, &c);
    T_EQ_INT(c.activating, 2);
    T_EQ_INT(c.starting, 2);
    planner_action_done(p, "c", ACT_ACTIVATE, 1, 1001);
    planner_action_done(p, "web-1", ACT_START, 1, 1100);
    planner_action_done(p, "web-2", ACT_START, 0, 1100); /* a failed start is replaced */
    planner_counts_get(p, &c);
    T_EQ_INT(c.online, 4);
    n = step(p, 1110, 6, 6, 50, &a);
    T_EQ_INT(count(a, n, ACT_START), 1);
    planner_free(p);
}

TEST(planner_starts_new_replicas_ahead_of_demand) {
    workload_spec s = spec();
    s.scale_up_ahead_seconds = -1; /* auto: measured */
    planner *p;
    T_EQ_INT(planner_new(&p, &s), 0);
    T_EQ_INT(planner_scale_up_ahead(p), 300); /* nothing measured yet */
    planner_add_replica(p, "a", REPLICA_ONLINE, 0);
    planner_add_replica(p, "b", REPLICA_ONLINE, 0);
    const planner_action *a;
    size_t n = step(p, 1000, 2, 5, 50, &a); /* 2 needed now, 5 within the ahead time */
    T_EQ_INT(count(a, n, ACT_START), 3);
    planner_action_done(p, "web-1", ACT_START, 1, 1090);
    T_EQ_INT(planner_scale_up_ahead(p), 90 + 15); /* + one sync period */
    /* the replica that came up early is not needed online yet: it is parked in standby */
    n = step(p, 1095, 2, 5, 50, &a);
    T_EQ_INT(count(a, n, ACT_CUTOFF), 1);
    T_EQ_INT(count(a, n, ACT_STANDBY), 0); /* the next step: the executor is still draining it */
    T_EQ_INT(count(a, n, ACT_START), 0);
    n = step(p, 1110, 2, 5, 50, &a);
    T_EQ_INT(count(a, n, ACT_STANDBY), 1);
    T_EQ_INT(count(a, n, ACT_START), 0);
    planner_free(p);
}

TEST(planner_gray_scale_down_steps_with_observation) {
    workload_spec s = spec();
    s.down.change_percent = 50;
    s.down.change_interval_seconds = 60;
    s.down.observation_seconds = 30;
    planner *p;
    T_EQ_INT(planner_new(&p, &s), 0);
    for (int i = 0; i < 6; i++) {
        char id[16];
        snprintf(id, sizeof id, "r%d", i);
        planner_add_replica(p, id, REPLICA_ONLINE, i);
    }
    const planner_action *a;
    size_t n = step(p, 1000, 2, 2, 30, &a);
    T_EQ_INT(count(a, n, ACT_CUTOFF), 2); /* 50% of the surplus of 4 */
    n = step(p, 1015, 2, 2, 30, &a);      /* observing: nothing */
    T_EQ_INT(n, 0);
    n = step(p, 1030, 2, 2, 30, &a); /* observed: the cut replicas go to standby */
    T_EQ_INT(count(a, n, ACT_STANDBY), 2);
    T_EQ_INT(count(a, n, ACT_CUTOFF), 0); /* change interval not over */
    n = step(p, 1060, 2, 2, 30, &a);
    T_EQ_INT(count(a, n, ACT_CUTOFF), 1); /* 50% of the remaining surplus of 2 */
    planner_counts c;
    planner_counts_get(p, &c);
    T_EQ_INT(c.online, 3);
    T_EQ_INT(c.cutoff, 1);
    T_EQ_INT(c.standby, 2);
    planner_free(p);
}

TEST(planner_stability_checker_rolls_back_a_step) {
    workload_spec s = spec();
    s.down.observation_seconds = 60;
    s.n_checkers = 1;
    wl_checker *ck = &s.checkers[0];
    memset(ck, 0, sizeof *ck);
    snprintf(ck->name, sizeof ck->name, "hot");
    snprintf(ck->metric.name, sizeof ck->metric.name, "utilization");
    ck->op = WL_OP_GT;
    ck->threshold = 90;
    ck->action = WL_CHECK_ROLLBACK;
    ck->cooldown_seconds = 300;
    planner *p;
    T_EQ_INT(planner_new(&p, &s), 0);
    for (int i = 0; i < 4; i++) {
        char id[16];
        snprintf(id, sizeof id, "r%d", i);
        planner_add_replica(p, id, REPLICA_ONLINE, i);
    }
    const planner_action *a;
    size_t n = step(p, 1000, 2, 2, 30, &a);
    T_EQ_INT(count(a, n, ACT_CUTOFF), 2);
    n = step(p, 1015, 2, 2, 95, &a); /* degraded during the observation */
    T_EQ_INT(count(a, n, ACT_RESTORE), 2);
    planner_counts c;
    planner_counts_get(p, &c);
    T_EQ_INT(c.online, 4);
    /* paused: no scale-down during the cooldown */
    n = step(p, 1100, 2, 2, 30, &a);
    T_EQ_INT(n, 0);
    n = step(p, 1400, 2, 2, 30, &a);
    T_EQ_INT(count(a, n, ACT_CUTOFF), 2);
    /* events carry the reason */
    int found = 0;
    for (uint64_t i = 0; i < planner_event_count(p); i++) {
        planner_event ev;
        if (planner_event_at(p, i, &ev) == 0 && strcmp(ev.kind, "rollback") == 0 &&
            strstr(ev.text, "hot"))
            found = 1;
    }
    T_ASSERT(found);
    planner_free(p);
}

TEST(planner_pause_checker_holds_scale_down) {
    workload_spec s = spec();
    s.n_checkers = 1;
    wl_checker *ck = &s.checkers[0];
    memset(ck, 0, sizeof *ck);
    snprintf(ck->name, sizeof ck->name, "latency");
    snprintf(ck->metric.name, sizeof ck->metric.name, "p99");
    ck->threshold = 0.5;
    ck->action = WL_CHECK_PAUSE;
    ck->cooldown_seconds = 120;
    planner *p;
    T_EQ_INT(planner_new(&p, &s), 0);
    planner_add_replica(p, "a", REPLICA_ONLINE, 0);
    planner_add_replica(p, "b", REPLICA_ONLINE, 0);
    planner_metric m = {"p99", 0.8};
    planner_input in = {1000, flat(1, 1, 1000), &m, 1};
    const planner_action *a;
    size_t n;
    T_EQ_INT(planner_step(p, &in, &a, &n), 0);
    T_EQ_INT(n, 0);
    m.value = 0.1;
    in.now = 1119;
    T_EQ_INT(planner_step(p, &in, &a, &n), 0);
    T_EQ_INT(n, 0);
    in.now = 1120;
    T_EQ_INT(planner_step(p, &in, &a, &n), 0);
    T_EQ_INT(count(a, n, ACT_CUTOFF), 1);
    planner_free(p);
}

TEST(planner_keep_alive_deletes_idle_standby_unless_needed) {
    workload_spec s = spec();
    s.keep_alive_seconds = 600;
    planner *p;
    T_EQ_INT(planner_new(&p, &s), 0);
    planner_add_replica(p, "a", REPLICA_ONLINE, 0);
    planner_add_replica(p, "b", REPLICA_STANDBY, 1000);
    planner_add_replica(p, "c", REPLICA_STANDBY, 1000);
    const planner_action *a;
    size_t n = step(p, 1500, 1, 1, 30, &a);
    T_EQ_INT(n, 0);
    n = step(p, 1600, 1, 2, 30, &a); /* one standby is needed within the ahead time */
    T_EQ_INT(count(a, n, ACT_DELETE), 1);
    n = step(p, 1615, 1, 2, 30, &a);
    T_EQ_INT(n, 0);
    planner_free(p);
}

TEST(planner_preview_records_without_acting) {
    workload_spec s = spec();
    s.mode = WL_MODE_PREVIEW;
    planner *p;
    T_EQ_INT(planner_new(&p, &s), 0);
    planner_add_replica(p, "a", REPLICA_ONLINE, 0);
    const planner_action *a;
    size_t n = step(p, 1000, 4, 4, 90, &a);
    T_EQ_INT(n, 0);
    uint64_t ev1 = planner_event_count(p);
    n = step(p, 1015, 4, 4, 90, &a);
    T_EQ_INT(n, 0);
    T_EQ_INT(planner_event_count(p), ev1); /* the same decision is one event */
    planner_event ev;
    T_EQ_INT(planner_event_at(p, ev1 - 1, &ev), 0);
    T_EQ_STR(ev.kind, "scale-up");
    T_ASSERT(strstr(ev.text, "preview, would") != NULL);
    T_ASSERT(strstr(ev.text, "3 started") != NULL);
    planner_counts c;
    planner_counts_get(p, &c);
    T_EQ_INT(c.online, 1);
    T_EQ_INT(c.starting, 0);
    planner_free(p);
}

TEST(planner_paused_spec_plans_nothing) {
    workload_spec s = spec();
    s.paused = 1;
    planner *p;
    T_EQ_INT(planner_new(&p, &s), 0);
    const planner_action *a;
    T_EQ_INT(step(p, 1000, 5, 5, 99, &a), 0);
    planner_event ev;
    T_EQ_INT(planner_event_at(p, 0, &ev), 0);
    T_EQ_STR(ev.kind, "paused");
    planner_free(p);
}

/* Replica ids carry the whole workload name: two workloads whose 63-byte names share their first
 * 62 bytes start replicas with different ids (ids are unique on a node across workloads). */
TEST(planner_replica_ids_hold_the_whole_name) {
    workload_spec s1 = spec(), s2 = spec();
    memset(s1.name, 'w', WL_NAME_MAX - 1);
    s1.name[WL_NAME_MAX - 1] = 0;
    memcpy(s2.name, s1.name, sizeof s1.name);
    s2.name[WL_NAME_MAX - 2] = 'x';
    planner *p1, *p2;
    T_EQ_INT(planner_new(&p1, &s1), 0);
    T_EQ_INT(planner_new(&p2, &s2), 0);
    const planner_action *a1, *a2;
    size_t n1 = step(p1, 1000, 1, 1, 50, &a1);
    T_EQ_INT(n1, 1);
    char id1[sizeof a1[0].replica];
    snprintf(id1, sizeof id1, "%s", a1[0].replica);
    size_t n2 = step(p2, 1000, 1, 1, 50, &a2);
    T_EQ_INT(n2, 1);
    T_EQ_INT(a1[0].kind, ACT_START);
    T_EQ_INT((int)strlen(id1), WL_NAME_MAX - 1 + 2); /* NAME-1 */
    T_ASSERT(strcmp(id1, a2[0].replica) != 0);
    T_ASSERT(tide_replica_id_valid(id1));
    planner_free(p1);
    planner_free(p2);
}

TEST(planner_adopted_ids_move_the_counter_and_states_follow_the_executor) {
    workload_spec s = spec();
    planner *p;
    T_EQ_INT(planner_new(&p, &s), 0);
    /* adopted after a restart: web-7 exists; a start must never reuse a name */
    T_EQ_INT(planner_add_replica(p, "web-7", REPLICA_ONLINE, 0), 0);
    T_EQ_INT(planner_add_replica(p, "web-x", REPLICA_CUTOFF, 0), 0);
    T_EQ_INT(planner_add_replica(p, "webby-99", REPLICA_ONLINE, 0), 0); /* another name */
    const planner_action *a;
    size_t n = step(p, 1000, 4, 4, 50, &a);
    T_EQ_INT(count(a, n, ACT_RESTORE), 1); /* the cutoff one first */
    T_EQ_INT(count(a, n, ACT_START), 1);
    for (size_t i = 0; i < n; i++)
        if (a[i].kind == ACT_START) T_EQ_STR(a[i].replica, "web-8");
    /* the executor reports what it found: a lost replica goes, an unknown one comes */
    T_EQ_INT(planner_set_state(p, "web-7", REPLICA_DELETED, 1001), 0);
    T_EQ_INT(planner_set_state(p, "web-20", REPLICA_STANDBY, 1001), 0);
    T_EQ_INT(planner_set_state(p, "web-nope", REPLICA_DELETED, 1001), 0);
    planner_counts c;
    planner_counts_get(p, &c);
    T_EQ_INT(c.online, 2);  /* webby-99, web-x (restored) */
    T_EQ_INT(c.standby, 1); /* web-20 */
    n = step(p, 1002, 5, 5, 50, &a);
    T_EQ_INT(count(a, n, ACT_ACTIVATE), 1);
    for (size_t i = 0; i < n; i++)
        if (a[i].kind == ACT_START) T_EQ_STR(a[i].replica, "web-21");
    planner_free(p);
}

/* A delete the executor refuses (the replica's cutoff still under way) leaves the replica where
 * it was: the next step asks again, instead of forgetting a replica the executor still runs. */
TEST(planner_refused_delete_is_asked_again) {
    workload_spec s = spec();
    s.down.state = WL_GRAY_DELETED;
    planner *p;
    T_EQ_INT(planner_new(&p, &s), 0);
    planner_add_replica(p, "r0", REPLICA_ONLINE, 0);
    planner_add_replica(p, "r1", REPLICA_ONLINE, 1);
    const planner_action *a;
    size_t n = step(p, 1000, 1, 1, 30, &a);
    T_EQ_INT(count(a, n, ACT_CUTOFF), 1);
    T_EQ_INT(count(a, n, ACT_DELETE), 0); /* not in the step of its cutoff */
    n = step(p, 1015, 1, 1, 30, &a);      /* observation 0: delete */
    T_EQ_INT(count(a, n, ACT_DELETE), 1);
    char id[sizeof a[0].replica];
    snprintf(id, sizeof id, "%s", a[0].replica);
    planner_action_done(p, id, ACT_DELETE, 0, 1015); /* refused: busy */
    planner_counts c;
    planner_counts_get(p, &c);
    T_EQ_INT(c.cutoff, 1);
    n = step(p, 1030, 1, 1, 30, &a);
    T_EQ_INT(count(a, n, ACT_DELETE), 1);
    T_EQ_STR(a[0].replica, id);
    planner_action_done(p, id, ACT_DELETE, 1, 1030);
    n = step(p, 1045, 1, 1, 30, &a);
    planner_counts_get(p, &c);
    T_EQ_INT(c.online, 1);
    T_EQ_INT(c.cutoff, 0);
    size_t nr;
    planner_replicas(p, &nr);
    T_EQ_INT((int)nr, 1);
    planner_free(p);
}

/* Replicas started ahead of demand are provisioned, not online: they stay out of the count the
 * load is compared with, a scale-up claims them (online ones first, starting ones after Cutoff
 * and Standby), and one that comes up unclaimed is parked in Standby without a gray step's
 * observation. */
TEST(planner_replicas_started_ahead_stay_out_of_the_online_count_until_claimed) {
    workload_spec s = spec();
    s.down.observation_seconds = 60; /* gray steps observe; parking does not */
    planner *p;
    T_EQ_INT(planner_new(&p, &s), 0);
    planner_add_replica(p, "a", REPLICA_ONLINE, 0);
    planner_add_replica(p, "b", REPLICA_ONLINE, 0);
    const planner_action *a;
    size_t n = step(p, 1000, 2, 5, 50, &a); /* 2 online now, 5 within the ahead time */
    T_EQ_INT(count(a, n, ACT_START), 3);
    planner_counts c;
    planner_counts_get(p, &c);
    T_EQ_INT(c.starting, 3);
    T_EQ_INT(c.starting_ahead, 3);
    T_ASSERT(planner_is_ahead(p, "web-1") && planner_is_ahead(p, "web-3"));
    T_ASSERT(!planner_is_ahead(p, "a") && !planner_is_ahead(p, "nope"));
    /* the load asks for one more while they start: one of them is claimed, none started */
    n = step(p, 1015, 3, 5, 80, &a);
    T_EQ_INT((int)n, 0);
    planner_counts_get(p, &c);
    T_EQ_INT(c.starting_ahead, 2);
    /* two come up: both unclaimed are parked at the next step (cut off, no gray step) */
    planner_action_done(p, "web-1", ACT_START, 1, 1100);
    planner_action_done(p, "web-2", ACT_START, 1, 1100);
    planner_action_done(p, "web-3", ACT_START, 1, 1100);
    planner_counts_get(p, &c);
    T_EQ_INT(c.online, 5);
    T_EQ_INT(c.online_ahead, 2);
    n = step(p, 1110, 3, 5, 50, &a);
    T_EQ_INT(count(a, n, ACT_CUTOFF), 2);
    T_EQ_INT((int)n, 2);
    for (size_t i = 0; i < n; i++)
        T_ASSERT(planner_is_ahead(p, a[i].replica)); /* the claimed one stays online */
    planner_counts_get(p, &c);
    T_EQ_INT(c.online, 3);
    T_EQ_INT(c.cutoff, 2);
    /* the next sync moves them to Standby at once, not after observationSeconds */
    n = step(p, 1125, 3, 5, 50, &a);
    T_EQ_INT(count(a, n, ACT_STANDBY), 2);
    T_EQ_INT((int)n, 2);
    planner_counts_get(p, &c);
    T_EQ_INT(c.standby, 2);
    T_EQ_INT(c.online_ahead + c.starting_ahead, 0);
    /* the rise arrives: they are activated (about a second), nothing is started */
    n = step(p, 1140, 5, 5, 90, &a);
    T_EQ_INT(count(a, n, ACT_ACTIVATE), 2);
    T_EQ_INT(count(a, n, ACT_START), 0);
    planner_free(p);
}

TEST(planner_online_replica_started_ahead_is_claimed_before_standby) {
    workload_spec s = spec();
    planner *p;
    T_EQ_INT(planner_new(&p, &s), 0);
    planner_add_replica(p, "a", REPLICA_ONLINE, 0);
    planner_add_replica(p, "s", REPLICA_STANDBY, 0);
    const planner_action *a;
    size_t n = step(p, 1000, 1, 3, 50, &a); /* 3 must exist: a, s and one started ahead */
    T_EQ_INT(count(a, n, ACT_START), 1);
    planner_action_done(p, "web-1", ACT_START, 1, 1100);
    n = step(p, 1110, 2, 3, 90, &a); /* the rise arrives as it comes up: no action needed */
    T_EQ_INT((int)n, 0);
    planner_counts c;
    planner_counts_get(p, &c);
    T_EQ_INT(c.online, 2);
    T_EQ_INT(c.online_ahead, 0);
    T_EQ_INT(c.standby, 1);
    planner_free(p);
}

/* Without Standby or Cutoff as the gray end state there is nowhere to park a replica started
 * ahead: it stays online, outside the gray steps, until the load claims it (deleting it would
 * only start it again). */
TEST(planner_started_ahead_stays_online_when_scaled_in_replicas_are_deleted) {
    workload_spec s = spec();
    s.down.state = WL_GRAY_DELETED;
    planner *p;
    T_EQ_INT(planner_new(&p, &s), 0);
    planner_add_replica(p, "a", REPLICA_ONLINE, 0);
    const planner_action *a;
    size_t n = step(p, 1000, 1, 2, 50, &a);
    T_EQ_INT(count(a, n, ACT_START), 1);
    planner_action_done(p, "web-1", ACT_START, 1, 1100);
    for (int64_t t = 1110; t < 1200; t += 15) {
        n = step(p, t, 1, 2, 50, &a);
        T_EQ_INT((int)n, 0);
    }
    planner_counts c;
    planner_counts_get(p, &c);
    T_EQ_INT(c.online, 2);
    T_EQ_INT(c.online_ahead, 1);
    planner_free(p);
}
