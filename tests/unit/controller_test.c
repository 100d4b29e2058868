/* controller_test.c: the per-sync controller step (observations -> actions). */
#include "scaling/controller.h"
#include "test.h"

#include <math.h>
#include <stdlib.h>

static workload_spec reactive_spec(void) {
    workload_spec s;
    workload_defaults(&s);
    snprintf(s.name, sizeof s.name, "web");
    s.min_replicas = 1;
    s.max_replicas = 50;
    s.target_utilization = 60;
    s.scale_up_ahead_seconds = 120;
    s.n_providers = 1;
    memset(s.providers, 0, sizeof s.providers[0]);
    s.providers[0].type = WL_PROV_REACTIVE;
    snprintf(s.providers[0].name, sizeof s.providers[0].name, "reactive");
    return s;
}

static workload_spec predictive_spec(void) {
    workload_spec s = reactive_spec();
    s.n_traffic = 1;
    snprintf(s.traffic[0].name, sizeof s.traffic[0].name, "requests");
    s.n_providers = 2;
    s.providers[1] = s.providers[0];
    wl_provider *p = &s.providers[0];
    memset(p, 0, sizeof *p);
    p->type = WL_PROV_PREDICTIVE;
    snprintf(p->name, sizeof p->name, "predictive");
    snprintf(p->model, sizeof p->model, "profile");
    p->quantile = 0.5;
    p->horizon_seconds = 3600;
    p->retrain_seconds = 86400;
    p->reforecast_seconds = 300;
    p->max_age_seconds = 30 * 86400;
    p->capacity_per_replica = 100;
    return s;
}

/* n ready pods at util percent, on a request of 1000 */
static controller_obs obs_at(int64_t now, double *usage, int n, double util, int replicas) {
    for (int i = 0; i < n; i++)
        usage[i] = util * 10;
    controller_obs o = {now, usage, n, 0, 1000, n ? util : NAN, replicas, NULL};
    return o;
}

static int count(const controller_out *o, planner_action_kind k) {
    int c = 0;
    for (size_t i = 0; i < o->n_actions; i++)
        c += o->actions[i].kind == k;
    return c;
}

TEST(controller_adopts_running_replicas_then_scales_up_from_pod_usage) {
    workload_spec s = reactive_spec();
    controller *c;
    T_EQ_INT(controller_new(&c, &s, 0), 0);
    T_ASSERT(controller_portrait(c) == NULL);
    double usage[16];
    controller_obs o = obs_at(1000, usage, 4, 90, -1); /* 4 pods at 90% of a 60% target */
    controller_out out;
    T_EQ_INT(controller_step(c, &o, &out), 0);
    T_EQ_INT(out.current, 4); /* adopted as Online, counted from the planner */
    T_ASSERT(out.portrait != NULL && out.portrait == controller_portrait(c));
    T_EQ_INT(out.portrait->needed[0], 6); /* ceil(4 x 90/60) */
    T_EQ_INT(count(&out, ACT_START), 2);
    T_EQ_INT((int)out.n_actions, 2);
    size_t nr;
    const planner_replica *r = planner_replicas(controller_planner(c), &nr);
    T_EQ_INT((int)nr, 6);
    T_EQ_STR(r[0].id, "web-live-1");
    T_EQ_STR(r[3].id, "web-live-4");
    /* next sync: the starting replicas count, nothing is adopted or started again */
    o = obs_at(1015, usage, 4, 90, 4);
    T_EQ_INT(controller_step(c, &o, &out), 0);
    T_EQ_INT(out.current, 6);
    T_EQ_INT(count(&out, ACT_START), 0);
    planner_replicas(controller_planner(c), &nr);
    T_EQ_INT((int)nr, 6);
    controller_free(c);
}

TEST(controller_observed_replicas_count_before_the_inventory) {
    workload_spec s = reactive_spec();
    controller *c;
    T_EQ_INT(controller_new(&c, &s, 0), 0);
    double usage[16];
    /* the replicas metric says 5 while only 2 pods report: 5 are adopted */
    controller_obs o = obs_at(1000, usage, 2, 60, 5);
    controller_out out;
    T_EQ_INT(controller_step(c, &o, &out), 0);
    planner_counts n;
    planner_counts_get(controller_planner(c), &n);
    T_EQ_INT(n.online, 5);
    T_EQ_INT(out.current, 5);
    controller_free(c);
}

TEST(controller_explicit_adoption_of_none_adopts_nothing_later) {
    workload_spec s = reactive_spec();
    s.min_replicas = 0;
    controller *c;
    T_EQ_INT(controller_new(&c, &s, 0), 0);
    T_EQ_INT(controller_adopt(c, 0, 900), 0);
    double usage[16];
    controller_obs o = obs_at(1000, usage, 0, 0, 3);
    controller_out out;
    T_EQ_INT(controller_step(c, &o, &out), 0);
    planner_counts n;
    planner_counts_get(controller_planner(c), &n);
    T_EQ_INT(n.online, 0);
    T_EQ_INT(out.current, 0);
    controller_free(c);
}

TEST(controller_unready_pods_hold_a_scale_up_that_they_would_reverse) {
    workload_spec s = reactive_spec();
    controller *c;
    T_EQ_INT(controller_new(&c, &s, CONTROLLER_NO_PLANNER), 0);
    T_ASSERT(controller_planner(c) == NULL);
    double usage[16];
    /* 2 ready pods at 90% and 2 starting: counted at 0% on a scale-up, the ratio reverses */
    controller_obs o = obs_at(1000, usage, 2, 90, 4);
    o.n_unready = 2;
    controller_out out;
    T_EQ_INT(controller_step(c, &o, &out), 0);
    T_EQ_INT(out.current, 4);
    T_EQ_INT(out.portrait->needed[0], 4);
    T_EQ_INT((int)out.n_actions, 0);
    controller_free(c);
    /* the same four pods all ready at 90%: ceil(4 x 1.5) */
    T_EQ_INT(controller_new(&c, &s, CONTROLLER_NO_PLANNER), 0);
    o = obs_at(1000, usage, 4, 90, 4);
    T_EQ_INT(controller_step(c, &o, &out), 0);
    T_EQ_INT(out.portrait->needed[0], 6);
    controller_free(c);
}

TEST(controller_without_metrics_keeps_the_bounds) {
    workload_spec s = reactive_spec();
    s.min_replicas = 2;
    controller *c;
    T_EQ_INT(controller_new(&c, &s, CONTROLLER_NO_PLANNER), 0);
    controller_obs o = {1000, NULL, 0, 0, 1000, NAN, -1, NULL};
    controller_out out;
    T_EQ_INT(controller_step(c, &o, &out), 0);
    T_ASSERT(out.portrait != NULL);
    T_EQ_INT(out.portrait->needed[0], 2);
    controller_free(c);
}

TEST(controller_predictive_fallback_is_one_event_and_training_is_due_with_history) {
    workload_spec s = predictive_spec();
    controller *c;
    T_EQ_INT(controller_new(&c, &s, 0), 0);
    double usage[16];
    controller_obs o = obs_at(1000, usage, 2, 50, -1);
    controller_out out;
    T_EQ_INT(controller_step(c, &o, &out), 0);
    T_EQ_INT(out.fallback, 1); /* no model yet */
    T_EQ_INT(out.train, 0);    /* no history in the observation */
    o.now = 1015;
    T_EQ_INT(controller_step(c, &o, &out), 0);
    planner *pl = controller_planner(c);
    int fallbacks = 0;
    for (uint64_t i = 0; i < planner_event_count(pl); i++) {
        planner_event ev;
        if (planner_event_at(pl, i, &ev) == 0 && strcmp(ev.kind, "fallback") == 0) fallbacks++;
    }
    T_EQ_INT(fallbacks, 1);
    /* two days of a daily cycle: training is due; after the fit the forecast drives */
    size_t n = 2 * 1440;
    double *y = malloc(n * sizeof *y);
    T_ASSERT(y != NULL);
    int64_t t0 = 1782864000;
    for (size_t i = 0; i < n; i++)
        y[i] = 200 + 100 * sin(2 * M_PI * (double)(i % 1440) / 1440.0);
    fc_series hist = {y, n, t0, 60, 0};
    int64_t now = t0 + (int64_t)n * 60;
    o = obs_at(now, usage, 2, 50, -1);
    o.traffic = &hist;
    T_EQ_INT(controller_step(c, &o, &out), 0);
    T_EQ_INT(out.train, 1);
    char err[256];
    T_EQ_INT(portrait_train(controller_engine(c), &hist, now, err, sizeof err), 0);
    o.now = now + 15;
    T_EQ_INT(controller_step(c, &o, &out), 0);
    T_EQ_INT(out.train, 0);
    T_EQ_INT(out.fallback, 0);
    int back = 0;
    for (uint64_t i = 0; i < planner_event_count(pl); i++) {
        planner_event ev;
        if (planner_event_at(pl, i, &ev) == 0 && strcmp(ev.kind, "predictive") == 0) back++;
    }
    T_EQ_INT(back, 1);
    free(y);
    controller_free(c);
}
