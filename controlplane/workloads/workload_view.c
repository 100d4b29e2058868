/* workload_view.c: the workloads as /metrics and the web page see them (workload_view.h). */
#include "workloads/workload_view.h"

#include "cp.h"
#include "scaling/portrait.h"
#include "workloads/workloads.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VIEW_HIST 1440 /* syncs of replica history kept for the web page */
#define VIEW_KINDS 24  /* distinct decision-event kinds counted ("other" beyond) */

typedef struct view_hist {
    int64_t t;
    int need, prov, online, starting, activating, cutoff, standby;
} view_hist;

struct workload_view {
    uint64_t ev_seen, act_seen; /* events and actions already counted */
    struct {
        char kind[16];
        uint64_t n;
    } ev_kinds[VIEW_KINDS];
    uint64_t act_n[ACT_DELETE + 1][2]; /* [kind][0 sent to an executor, 1 failed] */
    view_hist hist[VIEW_HIST];
    uint64_t nhist;
};

static struct workload_view *view_of(workload_entry *e) {
    if (!e->view) e->view = calloc(1, sizeof *e->view);
    return e->view;
}

void workload_view_note(workload_entry *e, int64_t now) {
    struct workload_view *v = view_of(e);
    if (!v) return;
    planner_counts c;
    planner_counts_get(controller_planner(e->ctl), &c);
    const portrait *pt = controller_portrait(e->ctl);
    v->hist[v->nhist++ % VIEW_HIST] = (view_hist){now,
                                                  pt ? pt->needed[0] : -1,
                                                  pt ? pt->replicas[0] : -1,
                                                  c.online,
                                                  c.starting,
                                                  c.activating,
                                                  c.cutoff,
                                                  c.standby};
}

/* Counts the decision events and actions recorded since the last call (the metrics tick runs
 * every second; a sync records a handful, far fewer than the rings keep). */
static void count_new(workload_entry *e, struct workload_view *v) {
    planner *pl = controller_planner(e->ctl);
    uint64_t n = planner_event_count(pl);
    for (; v->ev_seen < n; v->ev_seen++) {
        planner_event ev;
        if (planner_event_at(pl, v->ev_seen, &ev) != 0) continue; /* overwritten */
        int k = 0;
        while (k < VIEW_KINDS && v->ev_kinds[k].kind[0] && strcmp(v->ev_kinds[k].kind, ev.kind))
            k++;
        if (k == VIEW_KINDS) k = VIEW_KINDS - 1; /* the last slot counts the rest */
        if (!v->ev_kinds[k].kind[0])
            snprintf(v->ev_kinds[k].kind, sizeof v->ev_kinds[k].kind, "%s",
                     k == VIEW_KINDS - 1 ? "other" : ev.kind);
        v->ev_kinds[k].n++;
    }
    if (e->nacts - v->act_seen > WORKLOAD_ACTIONS_KEPT)
        v->act_seen = e->nacts - WORKLOAD_ACTIONS_KEPT;
    for (; v->act_seen < e->nacts; v->act_seen++) {
        const workload_action_rec *ar = &e->acts[v->act_seen % WORKLOAD_ACTIONS_KEPT];
        if ((unsigned)ar->a.kind <= ACT_DELETE)
            v->act_n[ar->a.kind][strcmp(ar->note, "sent to executor") != 0]++;
    }
}

static void summary(cJSON *o, const workload_entry *e) {
    planner_counts c = {0};
    if (e->ctl) planner_counts_get(controller_planner(e->ctl), &c);
    cJSON_AddStringToObject(o, "name", e->spec.name);
    cJSON_AddStringToObject(o, "namespace", e->spec.namespace_);
    cJSON_AddStringToObject(o, "effective_mode",
                            e->eff_mode == WL_MODE_PREVIEW ? "Preview" : "Auto");
    cJSON_AddNumberToObject(o, "min", e->spec.min_replicas);
    cJSON_AddNumberToObject(o, "max", e->spec.max_replicas);
    const portrait *pt = controller_portrait(e->ctl);
    if (pt) {
        cJSON_AddNumberToObject(o, "need", pt->needed[0]);
        cJSON_AddNumberToObject(o, "provisioned", pt->replicas[0]);
    }
    cJSON_AddNumberToObject(o, "online", c.online);
    cJSON_AddNumberToObject(o, "starting", c.starting);
    cJSON_AddNumberToObject(o, "activating", c.activating);
    cJSON_AddNumberToObject(o, "cutoff", c.cutoff);
    cJSON_AddNumberToObject(o, "standby", c.standby);
}

cJSON *workload_metrics_json(struct controlplane *cp) {
    struct cp_workloads *w = cp->workloads;
    cJSON *arr = cJSON_CreateArray();
    if (!w || !arr) return arr;
    for (workload_entry *e = w->head; e; e = e->next) {
        if (!e->ctl) continue; /* dormant: its owner, another control plane, has the series */
        struct workload_view *v = view_of(e);
        if (v) count_new(e, v);
        const portrait *pt = controller_portrait(e->ctl);
        portrait_engine *eng = controller_engine(e->ctl);
        cJSON *o = cJSON_CreateObject();
        summary(o, e);
        cJSON_AddNumberToObject(o, "scale_up_ahead_seconds",
                                planner_scale_up_ahead(controller_planner(e->ctl)));
        if (pt) {
            int src = pt->source[0];
            cJSON_AddStringToObject(o, "in_control",
                                    src >= 0 ? e->spec.providers[src].name : "(minimum)");
        }
        cJSON *prov = cJSON_AddArrayToObject(o, "providers");
        for (int i = 0; i < e->spec.n_providers; i++) {
            const wl_provider *p = &e->spec.providers[i];
            cJSON *po = cJSON_CreateObject();
            cJSON_AddStringToObject(po, "name", p->name);
            cJSON_AddStringToObject(po, "type", wl_provider_type_name(p->type));
            cJSON_AddBoolToObject(po, "in_control", pt && pt->source[0] == i);
            if (p->type == WL_PROV_PREDICTIVE) {
                cJSON_AddBoolToObject(po, "fallback", portrait_fallback_reason(eng, i) != NULL);
                const char *m = portrait_model_name(eng, i);
                if (m) cJSON_AddStringToObject(po, "model", m);
                portrait_forecast f;
                if (portrait_forecast_get(eng, i, &f) == 0) {
                    cJSON *fo = cJSON_AddObjectToObject(po, "forecast");
                    cJSON_AddNumberToObject(fo, "t0", (double)f.t0);
                    cJSON_AddNumberToObject(fo, "step", (double)f.step);
                    cJSON_AddNumberToObject(fo, "quantile", f.quantile);
                    cJSON_AddItemToObject(fo, "median", cJSON_CreateDoubleArray(f.median, f.n));
                    cJSON_AddItemToObject(fo, "upper", cJSON_CreateDoubleArray(f.upper, f.n));
                    if (isfinite(f.live_wape))
                        cJSON_AddNumberToObject(fo, "live_wape", f.live_wape);
                    cJSON_AddNumberToObject(fo, "scored", f.scored);
                }
            }
            cJSON_AddItemToArray(prov, po);
        }
        cJSON *ev = cJSON_AddObjectToObject(o, "events_by_kind");
        cJSON *ac = cJSON_AddArrayToObject(o, "actions_by_kind");
        for (int k = 0; v && k < VIEW_KINDS && v->ev_kinds[k].kind[0]; k++)
            cJSON_AddNumberToObject(ev, v->ev_kinds[k].kind, (double)v->ev_kinds[k].n);
        for (int k = 0; v && k <= ACT_DELETE; k++)
            for (int r = 0; r < 2; r++) {
                if (!v->act_n[k][r]) continue;
                cJSON *a = cJSON_CreateObject();
                cJSON_AddStringToObject(a, "action", planner_action_name((planner_action_kind)k));
                cJSON_AddStringToObject(a, "result", r ? "failed" : "sent");
                cJSON_AddNumberToObject(a, "count", (double)v->act_n[k][r]);
                cJSON_AddItemToArray(ac, a);
            }
        if (e->fit.at) cJSON_AddNumberToObject(o, "last_fit", (double)e->fit.at);
        if (e->fetch_ms >= 0) cJSON_AddNumberToObject(o, "last_fetch_ms", (double)e->fetch_ms);
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

cJSON *workload_ui_json(struct controlplane *cp, int64_t since) {
    struct cp_workloads *w = cp->workloads;
    cJSON *arr = cJSON_CreateArray();
    if (!w || !arr) return arr;
    for (workload_entry *e = w->head; e; e = e->next) {
        const portrait *pt = controller_portrait(e->ctl);
        portrait_engine *eng = controller_engine(e->ctl);
        planner *pl = controller_planner(e->ctl);
        cJSON *o = cJSON_CreateObject();
        summary(o, e);
        cJSON_AddStringToObject(o, "observation", e->observe);
        if (!e->ctl) { /* dormant: owned by another control plane (the observation says) */
            cJSON_AddArrayToObject(o, "history");
            cJSON_AddArrayToObject(o, "events");
            cJSON_AddItemToArray(arr, o);
            continue;
        }
        if (pt) cJSON_AddStringToObject(o, "status", pt->status);
        if (e->spec.n_traffic) cJSON_AddStringToObject(o, "traffic_name", e->spec.traffic[0].name);
        const observe_result *lo = e->last;
        if (lo && lo->hist_rc == 0 && lo->hist.n > 0 && lo->hist.step > 0) {
            const fc_series *hs = &lo->hist;
            size_t from = 0;
            if (since > hs->t0) from = (size_t)((since - hs->t0) / hs->step);
            if (from > hs->n) from = hs->n;
            cJSON *tr = cJSON_AddObjectToObject(o, "traffic");
            cJSON_AddNumberToObject(tr, "t0", (double)(hs->t0 + (int64_t)from * hs->step));
            cJSON_AddNumberToObject(tr, "step", (double)hs->step);
            cJSON_AddItemToObject(tr, "values",
                                  cJSON_CreateDoubleArray(hs->y + from, (int)(hs->n - from)));
        }
        for (int i = 0; i < e->spec.n_providers; i++) {
            portrait_forecast f;
            if (portrait_forecast_get(eng, i, &f) != 0) continue;
            cJSON *fo = cJSON_AddObjectToObject(o, "forecast");
            cJSON_AddStringToObject(fo, "provider", e->spec.providers[i].name);
            cJSON_AddNumberToObject(fo, "t0", (double)f.t0);
            cJSON_AddNumberToObject(fo, "step", (double)f.step);
            cJSON_AddNumberToObject(fo, "quantile", f.quantile);
            cJSON_AddItemToObject(fo, "median", cJSON_CreateDoubleArray(f.median, f.n));
            cJSON_AddItemToObject(fo, "upper", cJSON_CreateDoubleArray(f.upper, f.n));
            break; /* the first predictive provider with a forecast */
        }
        cJSON *ha = cJSON_AddArrayToObject(o, "history");
        const struct workload_view *v = e->view;
        uint64_t hn = v ? v->nhist : 0, hfrom = hn > VIEW_HIST ? hn - VIEW_HIST : 0;
        for (uint64_t i = hfrom; i < hn; i++) {
            const view_hist *h = &v->hist[i % VIEW_HIST];
            if (h->t < since) continue;
            double row[8] = {(double)h->t, h->need,       h->prov,   h->online,
                             h->starting,  h->activating, h->cutoff, h->standby};
            cJSON_AddItemToArray(ha, cJSON_CreateDoubleArray(row, 8));
        }
        cJSON *ea = cJSON_AddArrayToObject(o, "events");
        uint64_t n = planner_event_count(pl), efrom = n > 200 ? n - 200 : 0;
        for (uint64_t i = efrom; i < n; i++) {
            planner_event ev;
            if (planner_event_at(pl, i, &ev) != 0 || ev.t < since) continue;
            cJSON *eo = cJSON_CreateObject();
            cJSON_AddNumberToObject(eo, "time", (double)ev.t);
            cJSON_AddStringToObject(eo, "kind", ev.kind);
            cJSON_AddStringToObject(eo, "text", ev.text);
            cJSON_AddItemToArray(ea, eo);
        }
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}
