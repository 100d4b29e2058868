/* planner.c: staged scale actions from a portrait (see planner.h for the rules). */
#include "scaling/planner.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AHEAD_DEFAULT                                                                              \
    300                 /* scale-up-ahead (auto) before any start-up time was measured: early      \
                           rather than late */
#define AHEAD_SAMPLES 5 /* auto = the longest of this many recent start-up times */

struct planner {
    workload_spec spec;
    planner_replica *r;
    size_t nr, rcap;
    uint64_t next_id, seq;
    planner_action *acts;
    size_t nacts, acap;
    planner_event ev[PLANNER_MAX_EVENTS];
    uint64_t nev;
    int64_t last_down_t, last_up_t, observe_until, paused_until;
    int step_id;
    int64_t checker_until[WL_MAX_CHECKERS];
    int startup[AHEAD_SAMPLES];
    int nstartup;
    int last_need, last_prov;
    int was_paused;
};

static const char *const state_names[] = {"Starting", "Online",     "Cutoff",
                                          "Standby",  "Activating", "Deleted"};
static const char *const action_names[] = {"start",  "activate", "restore",
                                           "cutoff", "standby",  "delete"};

const char *planner_state_name(planner_state s) {
    return (unsigned)s < 6 ? state_names[s] : "?";
}
const char *planner_action_name(planner_action_kind k) {
    return (unsigned)k < 6 ? action_names[k] : "?";
}

int planner_new(planner **out, const workload_spec *spec) {
    planner *p = calloc(1, sizeof *p);
    if (!p) return -ENOMEM;
    p->spec = *spec;
    p->last_need = p->last_prov = -1;
    *out = p;
    return 0;
}

void planner_free(planner *p) {
    if (!p) return;
    free(p->r);
    free(p->acts);
    free(p);
}

static void event(planner *p, int64_t t, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void event(planner *p, int64_t t, const char *kind, const char *fmt, ...) {
    planner_event e;
    e.t = t;
    snprintf(e.kind, sizeof e.kind, "%s", kind);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.text, sizeof e.text, fmt, ap);
    va_end(ap);
    if (p->nev) { /* the same decision again (e.g. every sync in Preview mode) is one event */
        const planner_event *last = &p->ev[(p->nev - 1) % PLANNER_MAX_EVENTS];
        if (strcmp(last->kind, e.kind) == 0 && strcmp(last->text, e.text) == 0) return;
    }
    p->ev[p->nev % PLANNER_MAX_EVENTS] = e;
    p->nev++;
}

uint64_t planner_event_count(const planner *p) {
    return p->nev;
}

void planner_note(planner *p, int64_t now, const char *kind, const char *text) {
    event(p, now, kind, "%s", text);
}

int planner_event_at(const planner *p, uint64_t i, planner_event *ev) {
    if (i >= p->nev || p->nev - i > PLANNER_MAX_EVENTS) return -ENOENT;
    *ev = p->ev[i % PLANNER_MAX_EVENTS];
    return 0;
}

static planner_replica *find(planner *p, const char *id) {
    for (size_t i = 0; i < p->nr; i++)
        if (strcmp(p->r[i].id, id) == 0) return &p->r[i];
    return NULL;
}

static planner_replica *add(planner *p, const char *id, planner_state st, int64_t now) {
    if (p->nr == p->rcap) {
        size_t cap = p->rcap ? p->rcap * 2 : 16;
        planner_replica *nr = realloc(p->r, cap * sizeof *nr);
        if (!nr) return NULL;
        p->r = nr;
        p->rcap = cap;
    }
    planner_replica *r = &p->r[p->nr++];
    memset(r, 0, sizeof *r);
    snprintf(r->id, sizeof r->id, "%s", id);
    r->state = st;
    r->since = now;
    return r;
}

/* An adopted id of the planner's own form "<name>-<n>" moves the counter past n, so that a
 * replica started after a restart never takes the name of one that exists. */
static void note_id(planner *p, const char *id) {
    size_t nl = strlen(p->spec.name);
    if (strncmp(id, p->spec.name, nl) != 0 || id[nl] != '-' || !id[nl + 1]) return;
    unsigned long long v = 0;
    for (const char *c = id + nl + 1; *c; c++) {
        if (*c < '0' || *c > '9' || v > 1000000000000ULL) return;
        v = v * 10 + (unsigned)(*c - '0');
    }
    if (v > p->next_id) p->next_id = v;
}

int planner_add_replica(planner *p, const char *id, planner_state state, int64_t now) {
    if (find(p, id)) return -EEXIST;
    note_id(p, id);
    return add(p, id, state, now) ? 0 : -ENOMEM;
}

int planner_set_state(planner *p, const char *id, planner_state state, int64_t now) {
    planner_replica *r = find(p, id);
    if (!r) {
        if (state == REPLICA_DELETED) return 0;
        return planner_add_replica(p, id, state, now);
    }
    if (r->state != state) {
        r->state = state;
        r->since = now;
        if (state != REPLICA_CUTOFF && state != REPLICA_STANDBY) r->step_id = 0;
        if (state != REPLICA_STARTING && state != REPLICA_ONLINE && state != REPLICA_CUTOFF)
            r->ahead = 0;
    }
    return 0;
}

void planner_counts_get(const planner *p, planner_counts *c) {
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < p->nr; i++)
        switch (p->r[i].state) {
        case REPLICA_STARTING:
            c->starting++;
            c->starting_ahead += p->r[i].ahead != 0;
            break;
        case REPLICA_ONLINE:
            c->online++;
            c->online_ahead += p->r[i].ahead != 0;
            break;
        case REPLICA_CUTOFF:
            c->cutoff++;
            break;
        case REPLICA_STANDBY:
            c->standby++;
            break;
        case REPLICA_ACTIVATING:
            c->activating++;
            break;
        case REPLICA_DELETED:
            break;
        }
}

int planner_is_ahead(const planner *p, const char *id) {
    if (!p || !id) return 0;
    for (size_t i = 0; i < p->nr; i++)
        if (strcmp(p->r[i].id, id) == 0) return p->r[i].ahead != 0;
    return 0;
}

const planner_replica *planner_replicas(const planner *p, size_t *n) {
    *n = p->nr;
    return p->r;
}

int planner_scale_up_ahead(const planner *p) {
    if (p->spec.scale_up_ahead_seconds >= 0) return p->spec.scale_up_ahead_seconds;
    if (p->nstartup == 0) return AHEAD_DEFAULT;
    int m = 0;
    for (int i = 0; i < p->nstartup && i < AHEAD_SAMPLES; i++)
        if (p->startup[i] > m) m = p->startup[i];
    /* decisions happen once per sync period: start one period earlier than the start-up time */
    return m + p->spec.sync_seconds;
}

/* Queues an action and applies its immediate state change (not in Preview mode). */
static int act(planner *p, planner_replica *r, planner_action_kind k, int64_t now,
               const char *reason) {
    if (p->nacts == p->acap) {
        size_t cap = p->acap ? p->acap * 2 : 16;
        planner_action *na = realloc(p->acts, cap * sizeof *na);
        if (!na) return -ENOMEM;
        p->acts = na;
        p->acap = cap;
    }
    planner_action *a = &p->acts[p->nacts++];
    a->seq = ++p->seq;
    a->kind = k;
    snprintf(a->replica, sizeof a->replica, "%s", r->id);
    snprintf(a->reason, sizeof a->reason, "%s", reason);
    static const planner_state next[] = {REPLICA_STARTING, REPLICA_ACTIVATING, REPLICA_ONLINE,
                                         REPLICA_CUTOFF,   REPLICA_STANDBY,    REPLICA_DELETED};
    r->prev = r->state;
    r->state = next[k];
    r->since = now;
    if (k == ACT_START) r->started = now;
    if (k != ACT_START && k != ACT_CUTOFF) r->ahead = 0; /* claimed, parked or gone */
    return 0;
}

/* Whether this step already gave r an action (its next one waits for the executor to finish it:
 * a cutoff and a delete in one step would have the delete refused as busy). */
static int acted_now(const planner *p, const planner_replica *r) {
    for (size_t i = 0; i < p->nacts; i++)
        if (strcmp(p->acts[i].replica, r->id) == 0) return 1;
    return 0;
}

static int start_new(planner *p, int64_t now, const char *reason, int ahead) {
    /* the whole workload name (< WL_NAME_MAX): replica ids are unique on a node across
     * workloads, so two names sharing a prefix must not make the same id */
    char id[TIDE_REPLICA_ID_MAX + 1];
    snprintf(id, sizeof id, "%s-%llu", p->spec.name, (unsigned long long)++p->next_id);
    planner_replica *r = add(p, id, REPLICA_DELETED, now);
    if (!r) return -ENOMEM;
    r->ahead = ahead;
    return act(p, r, ACT_START, now, reason);
}

/* The replica in state st changed most (newest = 1) or least recently; ahead: 0 any, 1 only
 * replicas started ahead of demand, -1 only the others. */
static planner_replica *pick_ahead(planner *p, planner_state st, int newest, int ahead) {
    planner_replica *best = NULL;
    for (size_t i = 0; i < p->nr; i++) {
        planner_replica *r = &p->r[i];
        if (r->state != st || (ahead > 0 && !r->ahead) || (ahead < 0 && r->ahead)) continue;
        if (!best || (newest ? r->since > best->since : r->since < best->since)) best = r;
    }
    return best;
}

static planner_replica *pick(planner *p, planner_state st, int newest) {
    return pick_ahead(p, st, newest, 0);
}

static double metric_value(const planner_input *in, const wl_checker *ck, int *found) {
    const char *name = ck->metric.name;
    for (size_t i = 0; i < in->n_metrics; i++)
        if (in->metrics[i].name && strcmp(in->metrics[i].name, name) == 0) {
            *found = 1;
            return in->metrics[i].value;
        }
    *found = 0;
    return 0;
}

void planner_action_done(planner *p, const char *replica, planner_action_kind kind, int ok,
                         int64_t now) {
    planner_replica *r = find(p, replica);
    if (!r) return;
    if (kind == ACT_START && r->state == REPLICA_STARTING) {
        if (ok) {
            r->state = REPLICA_ONLINE;
            int secs = (int)(now - r->started);
            memmove(p->startup + 1, p->startup, (AHEAD_SAMPLES - 1) * sizeof(int));
            p->startup[0] = secs;
            if (p->nstartup < AHEAD_SAMPLES) p->nstartup++;
        } else {
            r->state = REPLICA_DELETED;
            r->ahead = 0;
            event(p, now, "failed", "start of %s failed", r->id);
        }
        r->since = now;
    } else if (kind == ACT_ACTIVATE && r->state == REPLICA_ACTIVATING) {
        r->state = ok ? REPLICA_ONLINE : REPLICA_STANDBY;
        r->since = now;
        if (!ok) event(p, now, "failed", "activation of %s failed: back to Standby", r->id);
    } else if (!ok && ((kind == ACT_DELETE && r->state == REPLICA_DELETED) ||
                       (kind == ACT_STANDBY && r->state == REPLICA_STANDBY))) {
        /* the replica is still there (e.g. refused while its cutoff was under way): it goes
         * back to the state it had, so a later step asks again; forgotten, it would hold its
         * slot and its process for good */
        r->state = r->prev;
        r->since = now;
        event(p, now, "failed", "%s of %s failed: back to %s", planner_action_name(kind), r->id,
              planner_state_name(r->state));
    } else if (!ok) {
        event(p, now, "failed", "%s of %s failed", planner_action_name(kind), r->id);
    }
}

static void forget_deleted(planner *p) {
    size_t w = 0;
    for (size_t i = 0; i < p->nr; i++)
        if (p->r[i].state != REPLICA_DELETED) p->r[w++] = p->r[i];
    p->nr = w;
}

int planner_step(planner *p, const planner_input *in, const planner_action **acts, size_t *nacts) {
    const workload_spec *s = &p->spec;
    int64_t now = in->now;
    int preview = s->mode == WL_MODE_PREVIEW;
    p->nacts = 0;
    *acts = p->acts;
    *nacts = 0;
    forget_deleted(p);
    if (s->paused) {
        if (!p->was_paused) event(p, now, "paused", "spec.paused is true: no planning");
        p->was_paused = 1;
        return 0;
    }
    p->was_paused = 0;
    const portrait *pt = in->portrait;
    int k = pt->step > 0 ? (int)((now - pt->t0) / pt->step) : 0;
    if (k < 0) k = 0;
    if (k >= pt->n) k = pt->n - 1;
    int need = pt->n > 0 ? pt->needed[k] : s->min_replicas;
    int prov = pt->n > 0 ? pt->replicas[k] : s->min_replicas;
    if (prov < need) prov = need;
    planner_counts c;
    planner_counts_get(p, &c);
    char inputs[256], ahead_txt[64] = "";
    if (c.online_ahead + c.starting_ahead > 0)
        snprintf(ahead_txt, sizeof ahead_txt, " (%d online, %d starting started ahead)",
                 c.online_ahead, c.starting_ahead);
    snprintf(inputs, sizeof inputs,
             "need %d online, %d provisioned (ahead %ds); fleet %d online, %d starting, %d "
             "activating, %d cutoff, %d standby%s",
             need, prov, planner_scale_up_ahead(p), c.online, c.starting, c.activating, c.cutoff,
             c.standby, ahead_txt);
    if (need != p->last_need || prov != p->last_prov) {
        event(p, now, "target", "%s; portrait: %.150s", inputs, pt->status);
        p->last_need = need;
        p->last_prov = prov;
    }

    /* stability checkers */
    for (int i = 0; i < s->n_checkers; i++) {
        const wl_checker *ck = &s->checkers[i];
        int found;
        double v = metric_value(in, ck, &found);
        if (!found || now < p->checker_until[i]) continue;
        int bad = ck->op == WL_OP_GT ? v > ck->threshold : v < ck->threshold;
        if (!bad) continue;
        p->checker_until[i] = now + ck->cooldown_seconds;
        p->paused_until = now + ck->cooldown_seconds;
        int in_obs = now < p->observe_until && p->step_id > 0;
        if (ck->action == WL_CHECK_ROLLBACK && in_obs) {
            int n = 0;
            for (size_t j = 0; j < p->nr; j++) {
                planner_replica *r = &p->r[j];
                if (r->step_id != p->step_id) continue;
                char why[160];
                snprintf(why, sizeof why, "rollback: checker %s: %s %.3g %s %.3g", ck->name,
                         ck->metric.name, v, ck->op == WL_OP_GT ? ">" : "<", ck->threshold);
                if (r->state == REPLICA_CUTOFF && !preview && act(p, r, ACT_RESTORE, now, why) < 0)
                    return -ENOMEM;
                if (r->state == REPLICA_STANDBY && !preview &&
                    act(p, r, ACT_ACTIVATE, now, why) < 0)
                    return -ENOMEM;
                r->step_id = 0;
                n++;
            }
            p->observe_until = 0;
            event(p, now, "rollback",
                  "%schecker %s: %s = %.3g %s %.3g during observation: %d replicas of step %d back "
                  "online; scale-down paused %ds",
                  preview ? "preview, would: " : "", ck->name, ck->metric.name, v,
                  ck->op == WL_OP_GT ? ">" : "<", ck->threshold, n, p->step_id,
                  ck->cooldown_seconds);
        } else {
            event(p, now, "pause", "%schecker %s: %s = %.3g %s %.3g: scale-down paused for %ds",
                  preview ? "preview, would: " : "", ck->name, ck->metric.name, v,
                  ck->op == WL_OP_GT ? ">" : "<", ck->threshold, ck->cooldown_seconds);
        }
    }
    planner_counts_get(p, &c);

    /* scale up: online short of the need now (replicas started ahead of demand do not count
     * until claimed) */
    int coming = c.online + c.activating + c.starting - c.online_ahead - c.starting_ahead;
    int deficit = need - coming;
    int would_start = 0; /* Preview: replicas the scale-up would have started */
    int up_ok =
        s->up.change_interval_seconds == 0 || now - p->last_up_t >= s->up.change_interval_seconds;
    if (deficit > 0 && up_ok) {
        int stepn = (int)ceil(deficit * s->up.change_percent / 100.0);
        if (stepn < 1) stepn = 1;
        int restored = 0, activated = 0, started = 0, claimed = 0;
        char why[160];
        snprintf(why, sizeof why, "need %d online, have %d online or coming", need, coming);
        /* the fastest first: a replica started ahead that is online already, then Cutoff
         * (readiness back on), Standby (thawed in about a second), one started ahead that is
         * still starting, and only then a new start */
        for (int i = 0; i < stepn; i++) {
            planner_replica *r;
            if ((r = pick_ahead(p, REPLICA_ONLINE, 1, 1))) {
                r->ahead = 0;
                claimed++;
            } else if ((r = pick(p, REPLICA_CUTOFF, 1))) {
                if (!preview && act(p, r, ACT_RESTORE, now, why) < 0) return -ENOMEM;
                restored++;
            } else if ((r = pick(p, REPLICA_STANDBY, 1))) {
                if (!preview && act(p, r, ACT_ACTIVATE, now, why) < 0) return -ENOMEM;
                activated++;
            } else if ((r = pick_ahead(p, REPLICA_STARTING, 0, 1))) {
                r->ahead = 0;
                claimed++;
            } else {
                if (!preview && start_new(p, now, why, 0) < 0) return -ENOMEM;
                started++;
            }
            if (preview) break; /* nothing changes in preview: count the rest below */
        }
        if (preview) {
            restored = c.cutoff < stepn ? c.cutoff : stepn;
            activated = c.standby < stepn - restored ? c.standby : stepn - restored;
            started = stepn - restored - activated;
            would_start = started;
        }
        p->last_up_t = now;
        if (claimed)
            event(p, now, "scale-up",
                  "%s: %d started ahead claimed, %d restored from Cutoff, %d activated from "
                  "Standby, %d started",
                  inputs, claimed, restored, activated, started);
        else
            event(p, now, "scale-up",
                  "%s%s: %d restored from Cutoff, %d activated from Standby, %d started",
                  preview ? "preview, would: " : "", inputs, restored, activated, started);
        planner_counts_get(p, &c);
    }
    /* scale up ahead: every replica that must exist within the scale-up-ahead time */
    int alive = c.online + c.activating + c.starting + c.cutoff + c.standby + would_start;
    if (prov > alive) {
        char why[160];
        snprintf(why, sizeof why, "%d replicas needed within %ds, %d exist", prov,
                 planner_scale_up_ahead(p), alive);
        for (int i = 0; !preview && i < prov - alive; i++)
            if (start_new(p, now, why, 1) < 0) return -ENOMEM;
        event(p, now, "scale-ahead", "%s%s: %d started ahead of demand",
              preview ? "preview, would: " : "", inputs, prov - alive);
        planner_counts_get(p, &c);
    }
    /* a replica started ahead that came online before the load needs it is parked: cut off at
     * once (not a gray step: it carried no load the fleet needs) and moved to Standby at the
     * next sync. With Delete as the gray end state there is nowhere to park it: it stays online
     * (outside the gray steps) until the load claims it. */
    if (c.online_ahead > 0 && !preview && s->down.state != WL_GRAY_DELETED) {
        int parked = 0;
        for (size_t i = 0; i < p->nr; i++) {
            planner_replica *r = &p->r[i];
            if (r->state != REPLICA_ONLINE || !r->ahead || acted_now(p, r)) continue;
            if (act(p, r, ACT_CUTOFF, now, "started ahead of demand: parked until needed") < 0)
                return -ENOMEM;
            r->step_id = 0;
            parked++;
        }
        if (parked)
            event(p, now, "park", "%s: %d started ahead of demand parked (Cutoff, then Standby)",
                  inputs, parked);
        planner_counts_get(p, &c);
    }

    /* scale down in gray steps (replicas started ahead are not part of them) */
    int surplus = c.online - c.online_ahead + c.activating - need;
    if (surplus > 0 && deficit <= 0) {
        const char *hold = NULL;
        if (now < p->paused_until)
            hold = "paused by a stability checker";
        else if (now < p->observe_until)
            hold = "observing the previous step";
        else if (p->last_down_t && now - p->last_down_t < s->down.change_interval_seconds)
            hold = "change interval not over";
        if (!hold) {
            int stepn = (int)ceil(surplus * s->down.change_percent / 100.0);
            if (stepn < 1) stepn = 1;
            p->step_id++;
            char why[160];
            snprintf(why, sizeof why, "step %d: need %d online, %d online", p->step_id, need,
                     c.online);
            int done = 0;
            for (int i = 0; i < stepn && !preview; i++) {
                planner_replica *r = pick_ahead(p, REPLICA_ONLINE, 1, -1);
                if (!r) break;
                if (act(p, r, ACT_CUTOFF, now, why) < 0) return -ENOMEM;
                r->step_id = p->step_id;
                done++;
            }
            if (preview) done = stepn;
            p->last_down_t = now;
            p->observe_until = now + s->down.observation_seconds;
            event(p, now, "scale-down",
                  "%s%s: step %d cuts off %d replicas (then %s after %ds observation)",
                  preview ? "preview, would: " : "", inputs, p->step_id, done,
                  wl_gray_state_name(s->down.state), s->down.observation_seconds);
        }
    }

    /* cutoff replicas move on once their step has been observed */
    if (s->down.state != WL_GRAY_CUTOFF) {
        for (size_t i = 0; i < p->nr; i++) {
            planner_replica *r = &p->r[i];
            if (r->state != REPLICA_CUTOFF ||
                (!r->ahead && now - r->since < s->down.observation_seconds) || acted_now(p, r))
                continue;
            planner_action_kind next_k =
                s->down.state == WL_GRAY_STANDBY ? ACT_STANDBY : ACT_DELETE;
            if (!preview && act(p, r, next_k, now, "observation over") < 0) return -ENOMEM;
            r->step_id = 0;
        }
    }
    /* keep-alive: idle standby (or cutoff end-state) replicas go, unless the portrait needs them */
    planner_counts_get(p, &c);
    alive = c.online + c.activating + c.starting + c.cutoff + c.standby;
    int deleted = 0;
    for (size_t i = 0; i < p->nr && alive - deleted > prov; i++) {
        planner_replica *r = &p->r[i];
        int idle = r->state == REPLICA_STANDBY ||
                   (r->state == REPLICA_CUTOFF && s->down.state == WL_GRAY_CUTOFF);
        if (!idle || now - r->since < s->keep_alive_seconds) continue;
        if (!preview && act(p, r, ACT_DELETE, now, "keep-alive time over") < 0) return -ENOMEM;
        deleted++;
    }
    if (deleted)
        event(p, now, "delete",
              "%s%d idle replicas deleted after keepAliveSeconds %d (need %d within ahead)",
              preview ? "preview, would: " : "", deleted, s->keep_alive_seconds, prov);
    *acts = p->acts;
    *nacts = p->nacts;
    return 0;
}
