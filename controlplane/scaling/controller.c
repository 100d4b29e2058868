/* controller.c: the per-sync controller step (see controller.h). */
#include "scaling/controller.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct controller {
    workload_spec spec;
    portrait_engine *eng;
    planner *pl; /* NULL with CONTROLLER_NO_PLANNER */
    portrait *pt;
    int have_pt;
    int adopted;                               /* the inventory was taken */
    unsigned char fell_back[WL_MAX_PROVIDERS]; /* predictive provider on the reactive fallback */
    hpa_pod *pods;
    size_t npods_cap;
};

int controller_new(controller **out, const workload_spec *spec, unsigned flags) {
    *out = NULL;
    controller *c = calloc(1, sizeof *c);
    if (!c) return -ENOMEM;
    c->spec = *spec;
    c->pt = calloc(1, sizeof *c->pt);
    if (!c->pt || portrait_engine_new(&c->eng, spec) < 0 ||
        (!(flags & CONTROLLER_NO_PLANNER) && planner_new(&c->pl, spec) < 0)) {
        controller_free(c);
        return -ENOMEM;
    }
    *out = c;
    return 0;
}

void controller_free(controller *c) {
    if (!c) return;
    portrait_engine_free(c->eng);
    planner_free(c->pl);
    free(c->pt);
    free(c->pods);
    free(c);
}

portrait_engine *controller_engine(const controller *c) {
    return c ? c->eng : NULL;
}

planner *controller_planner(const controller *c) {
    return c ? c->pl : NULL;
}

const portrait *controller_portrait(const controller *c) {
    return c && c->have_pt ? c->pt : NULL;
}

const workload_spec *controller_spec(const controller *c) {
    return &c->spec;
}

int controller_adopt(controller *c, int n, int64_t now) {
    c->adopted = 1;
    if (!c->pl) return 0;
    for (int i = 0; i < n; i++) {
        char id[64];
        snprintf(id, sizeof id, "%.40s-live-%d", c->spec.name, i + 1);
        int rc = planner_add_replica(c->pl, id, REPLICA_ONLINE, now);
        if (rc < 0 && rc != -EEXIST) return rc;
    }
    return 0;
}

static int wants_traffic(const workload_spec *s) {
    int want = 0;
    for (int i = 0; i < s->n_providers; i++)
        want |= s->providers[i].type == WL_PROV_PREDICTIVE;
    return want && s->n_traffic > 0;
}

/* The HPA's view of the pods (*np of them): the ready ones with their usage, the starting ones
 * without a trusted sample. NULL (no metric) when there is no pod at all; -ENOMEM in *rc. */
static const hpa_pod *build_pods(controller *c, const controller_obs *o, size_t *np, int *rc) {
    size_t nr = o->n_ready > 0 && o->pod_usage ? (size_t)o->n_ready : 0,
           nu = o->n_unready > 0 ? (size_t)o->n_unready : 0, n = nr + nu;
    *np = n;
    if (n == 0) return NULL;
    if (n > c->npods_cap) {
        hpa_pod *p = realloc(c->pods, n * sizeof *p);
        if (!p) {
            *rc = -ENOMEM;
            *np = 0;
            return NULL;
        }
        c->pods = p;
        c->npods_cap = n;
    }
    size_t k = 0;
    for (size_t i = 0; i < nr; i++)
        c->pods[k++] = (hpa_pod){o->pod_usage[i], o->pod_request, 1, 1, 0};
    for (size_t i = 0; i < nu; i++)
        c->pods[k++] = (hpa_pod){0, o->pod_request, 1, 0, 0};
    return c->pods;
}

/* A decision event when a predictive provider's source changes (fallback <-> forecasts). */
static int note_fallbacks(controller *c, int64_t now, controller_out *out) {
    const workload_spec *s = &c->spec;
    int any = 0;
    for (int i = 0; i < s->n_providers; i++) {
        if (s->providers[i].type != WL_PROV_PREDICTIVE) continue;
        const char *why = portrait_fallback_reason(c->eng, i);
        any |= why != NULL;
        if (why && !out->fallback_reason) out->fallback_reason = why;
        if (why && strncmp(why, PORTRAIT_GUARD_REASON, strlen(PORTRAIT_GUARD_REASON)) == 0)
            out->guard = 1;
        if (!c->pl) continue;
        char text[PLANNER_EVENT_TEXT];
        if (why && !c->fell_back[i]) {
            snprintf(text, sizeof text, "providers[%d] (%.40s) falls back to reactive: %.200s", i,
                     s->providers[i].name, why);
            planner_note(c->pl, now, "fallback", text);
        } else if (!why && c->fell_back[i]) {
            const char *m = portrait_model_name(c->eng, i);
            snprintf(text, sizeof text,
                     "providers[%d] (%.40s): forecasts of %.60s drive the portrait again", i,
                     s->providers[i].name, m ? m : "?");
            planner_note(c->pl, now, "predictive", text);
        }
        c->fell_back[i] = why != NULL;
    }
    return any;
}

int controller_step(controller *c, const controller_obs *o, controller_out *out) {
    memset(out, 0, sizeof *out);
    const workload_spec *s = &c->spec;
    int rc = 0;
    /* the replicas the reactive provider counts */
    int current = o->replicas >= 0 ? o->replicas : o->n_ready;
    if (c->pl) {
        if (!c->adopted && current > 0) { /* adopt what runs today as Online */
            if ((rc = controller_adopt(c, current, o->now)) < 0) return rc;
        }
        if (c->adopted) {
            planner_counts n;
            planner_counts_get(c->pl, &n);
            /* replicas started ahead of demand are not the current load's (planner.h) */
            current = n.online + n.starting + n.activating - n.online_ahead - n.starting_ahead;
        }
    }
    out->current = current;
    out->train = o->traffic && wants_traffic(s) && portrait_training_due(c->eng, o->now);
    size_t npods = 0;
    const hpa_pod *pods = build_pods(c, o, &npods, &rc);
    if (rc < 0) return rc;
    hpa_metric hm = {pods, npods, HPA_UTILIZATION, s->target_utilization};
    portrait_obs pobs = {o->now,       current,    pods ? &hm : NULL,
                         pods ? 1 : 0, o->traffic, c->pl ? planner_scale_up_ahead(c->pl) : 0};
    rc = portrait_update(c->eng, &pobs, c->pt);
    if (rc == 0) {
        c->have_pt = 1;
        out->fallback = note_fallbacks(c, o->now, out);
    }
    if (!c->have_pt) return rc;
    out->portrait = c->pt;
    if (!c->pl) return rc;
    /* the planner, with the mean utilization for the stability checkers */
    int have_util = !isnan(o->mean_utilization);
    planner_metric pm[2] = {{"utilization", have_util ? o->mean_utilization : 0},
                            {s->utilization.name, have_util ? o->mean_utilization : 0}};
    planner_input in = {o->now, c->pt, pm, have_util ? 2 : 0};
    int prc = planner_step(c->pl, &in, &out->actions, &out->n_actions);
    if (prc < 0) {
        out->actions = NULL;
        out->n_actions = 0;
        return prc;
    }
    return rc;
}
