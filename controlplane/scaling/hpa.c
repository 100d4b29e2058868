/* hpa.c: the Kubernetes HPA algorithm (replica calculator and behavior normalization). */
#include "scaling/hpa.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* Ratio of the average metric to the target over the pods that take part, with the
 * missing/unready pods given `fill` (usage as a fraction of request, or a raw value). */
typedef struct ratio_in {
    const hpa_metric *m;
    const signed char *take; /* per pod: 0 skip, 1 own value, 2 fill value */
    double fill; /* utilization fraction of target (Utilization) / value (AverageValue) */
} ratio_in;

static double ratio_of(const ratio_in *in, int *count) {
    double used = 0, req = 0;
    int n = 0;
    for (size_t i = 0; i < in->m->n; i++) {
        const hpa_pod *p = &in->m->pods[i];
        if (!in->take[i]) continue;
        n++;
        if (in->m->type == HPA_UTILIZATION) {
            req += p->request;
            used += in->take[i] == 2 ? p->request * in->fill : p->value;
        } else {
            used += in->take[i] == 2 ? in->fill : p->value;
        }
    }
    *count = n;
    if (n == 0) return NAN;
    if (in->m->type == HPA_UTILIZATION) {
        if (req <= 0) return NAN;
        return (used * 100.0 / req) / in->m->target;
    }
    return (used / n) / in->m->target;
}

int hpa_metric_replicas(int current, const hpa_metric *m, double tolerance,
                        hpa_metric_result *out) {
    memset(out, 0, sizeof *out);
    out->replicas = current;
    if (!(m->target > 0) || m->n > 100000) return -EINVAL;
    signed char take[m->n ? m->n : 1];
    ratio_in in = {m, take, 0};
    /* groupPods: ignored (failed, deleting), missing metrics, unready, ready */
    for (size_t i = 0; i < m->n; i++) {
        const hpa_pod *p = &m->pods[i];
        take[i] = 0;
        if (p->ignored)
            out->ignored++;
        else if (!p->has_metric)
            out->missing++;
        else if (!p->ready)
            out->unready++;
        else {
            out->ready++;
            take[i] = 1;
        }
    }
    int n;
    double ratio = ratio_of(&in, &n);
    if (n == 0 || isnan(ratio)) {
        snprintf(out->reason, sizeof out->reason, "no metrics for any ready pod");
        return -ENODATA;
    }
    out->ratio = out->new_ratio = ratio;
    int scale_up_with_unready = out->unready > 0 && ratio > 1.0;
    if (!scale_up_with_unready && out->missing == 0) {
        if (fabs(1.0 - ratio) <= tolerance) {
            snprintf(out->reason, sizeof out->reason, "ratio %.3f within tolerance %.2f", ratio,
                     tolerance);
            return 0;
        }
        out->replicas = (int)ceil(ratio * out->ready);
        snprintf(out->reason, sizeof out->reason, "ratio %.3f over %d ready pods", ratio,
                 out->ready);
        return 0;
    }
    /* fill in the pods we could not trust and recompute */
    for (size_t i = 0; i < m->n; i++) {
        const hpa_pod *p = &m->pods[i];
        if (p->ignored) continue;
        if (!p->has_metric && (ratio < 1.0 || ratio > 1.0)) take[i] = 2;
        if (p->has_metric && !p->ready && scale_up_with_unready) take[i] = 2;
    }
    /* Scale-down: missing pods at 100% of the target (the larger of target and request for
     * utilization, as Kubernetes does); scale-up: missing and unready pods at 0. */
    double fill;
    if (ratio < 1.0)
        fill = m->type == HPA_UTILIZATION ? fmax(m->target, 100.0) / 100.0 : m->target;
    else
        fill = 0;
    in.fill = fill; /* unready pods only join a scale-up (take stays 0 otherwise) */
    double new_ratio = ratio_of(&in, &n);
    out->new_ratio = new_ratio;
    if (fabs(1.0 - new_ratio) <= tolerance || (ratio < 1.0 && new_ratio > 1.0) ||
        (ratio > 1.0 && new_ratio < 1.0)) {
        snprintf(out->reason, sizeof out->reason,
                 "ratio %.3f becomes %.3f with %d missing and %d unready pods filled: no change",
                 ratio, new_ratio, out->missing, scale_up_with_unready ? out->unready : 0);
        return 0;
    }
    int r = (int)ceil(new_ratio * n);
    if ((new_ratio < 1.0 && r > current) || (new_ratio > 1.0 && r < current)) {
        snprintf(out->reason, sizeof out->reason,
                 "ratio %.3f would move against its direction: no change", new_ratio);
        return 0;
    }
    out->replicas = r;
    snprintf(out->reason, sizeof out->reason,
             "ratio %.3f over %d pods (%d missing, %d unready filled)", new_ratio, n, out->missing,
             scale_up_with_unready ? out->unready : 0);
    return 0;
}

int hpa_desired(int current, const hpa_metric *m, size_t nm, double tolerance, int *desired,
                int *which, char *reason, size_t reasonlen) {
    int best = -1, best_i = -1, failed = 0;
    hpa_metric_result r, br;
    memset(&br, 0, sizeof br);
    for (size_t i = 0; i < nm; i++) {
        if (hpa_metric_replicas(current, &m[i], tolerance, &r) < 0) {
            failed++;
            continue;
        }
        if (r.replicas > best) {
            best = r.replicas;
            best_i = (int)i;
            br = r;
        }
    }
    if (which) *which = best_i;
    if (best_i < 0) {
        *desired = current;
        if (reason) snprintf(reason, reasonlen, "no metric could be computed");
        return -ENODATA;
    }
    if (failed && best < current) {
        *desired = current;
        if (reason) snprintf(reason, reasonlen, "%d metric(s) failed: not scaling down", failed);
        return 0;
    }
    *desired = best;
    if (reason) snprintf(reason, reasonlen, "metric %d: %s", best_i, br.reason);
    return 0;
}

/* ---- behavior ------------------------------------------------------------------------- */

void hpa_state_init(hpa_state *h, const workload_spec *spec) {
    memset(h, 0, sizeof *h);
    h->up = spec->up;
    h->down = spec->down;
    h->min_replicas = spec->min_replicas;
    h->max_replicas = spec->max_replicas;
}

static int change_in_period(const hpa_rec *ev, int n, int64_t now, int period) {
    int sum = 0;
    for (int i = 0; i < n; i++)
        if (ev[i].t > now - period) sum += ev[i].replicas;
    return sum;
}

static int max_period(const wl_direction *d) {
    int p = 0;
    for (int i = 0; i < d->n_policies; i++)
        if (d->policies[i].period_seconds > p) p = d->policies[i].period_seconds;
    return p;
}

static void prune(hpa_rec *ev, int *n, int64_t cutoff) {
    int w = 0;
    for (int i = 0; i < *n; i++)
        if (ev[i].t > cutoff) ev[w++] = ev[i];
    *n = w;
}

static void push(hpa_rec *ev, int *n, int64_t t, int v) {
    if (*n == HPA_MAX_RECS) { /* drop the oldest */
        memmove(ev, ev + 1, (HPA_MAX_RECS - 1) * sizeof *ev);
        (*n)--;
    }
    ev[(*n)++] = (hpa_rec){t, v};
}

void hpa_record_scale(hpa_state *h, int64_t now, int from, int to) {
    if (to > from) {
        prune(h->up_events, &h->nup, now - max_period(&h->up));
        push(h->up_events, &h->nup, now, to - from);
    } else if (to < from) {
        prune(h->down_events, &h->ndown, now - max_period(&h->down));
        push(h->down_events, &h->ndown, now, from - to);
    }
}

static int scale_up_limit(const hpa_state *h, int64_t now, int current) {
    const wl_direction *d = &h->up;
    if (d->select == WL_SELECT_DISABLED) return current;
    int result = d->select == WL_SELECT_MAX ? INT_MIN : INT_MAX;
    for (int i = 0; i < d->n_policies; i++) {
        const wl_policy *p = &d->policies[i];
        int added = change_in_period(h->up_events, h->nup, now, p->period_seconds);
        int deleted = change_in_period(h->down_events, h->ndown, now, p->period_seconds);
        int start = current - added + deleted;
        int proposed = p->type == WL_POLICY_PODS ? start + p->value
                                                 : (int)ceil(start * (1.0 + p->value / 100.0));
        result = d->select == WL_SELECT_MAX ? (proposed > result ? proposed : result)
                                            : (proposed < result ? proposed : result);
    }
    return result;
}

static int scale_down_limit(const hpa_state *h, int64_t now, int current) {
    const wl_direction *d = &h->down;
    if (d->select == WL_SELECT_DISABLED) return current;
    int result = d->select == WL_SELECT_MAX ? INT_MAX : INT_MIN;
    for (int i = 0; i < d->n_policies; i++) {
        const wl_policy *p = &d->policies[i];
        int added = change_in_period(h->up_events, h->nup, now, p->period_seconds);
        int deleted = change_in_period(h->down_events, h->ndown, now, p->period_seconds);
        int start = current + deleted - added;
        int proposed =
            p->type == WL_POLICY_PODS ? start - p->value : (int)(start * (1.0 - p->value / 100.0));
        result = d->select == WL_SELECT_MAX ? (proposed < result ? proposed : result)
                                            : (proposed > result ? proposed : result);
    }
    return result;
}

void hpa_normalize(hpa_state *h, int64_t now, int current, int desired, hpa_decision *out) {
    memset(out, 0, sizeof *out);
    if (!h->initialized) { /* the scale-down window starts with the current size */
        h->initialized = 1;
        push(h->recs, &h->nrecs, now, current);
    }
    /* stabilization */
    int up_rec = desired, down_rec = desired;
    int64_t up_cut = now - h->up.stabilization_seconds,
            down_cut = now - h->down.stabilization_seconds;
    for (int i = 0; i < h->nrecs; i++) {
        if (h->recs[i].t > up_cut && h->recs[i].replicas < up_rec) up_rec = h->recs[i].replicas;
        if (h->recs[i].t > down_cut && h->recs[i].replicas > down_rec)
            down_rec = h->recs[i].replicas;
    }
    int stab = current;
    if (stab < up_rec) stab = up_rec;
    if (stab > down_rec) stab = down_rec;
    int keep = h->up.stabilization_seconds > h->down.stabilization_seconds
                   ? h->up.stabilization_seconds
                   : h->down.stabilization_seconds;
    prune(h->recs, &h->nrecs, now - keep - 1);
    push(h->recs, &h->nrecs, now, desired);
    out->stabilized = stab;
    /* rate policies and bounds */
    int result = stab;
    const char *why = stab != desired ? "stabilized" : "recommended";
    if (stab > current) {
        int lim = scale_up_limit(h, now, current);
        if (lim < current) lim = current;
        int cap = lim < h->max_replicas ? lim : h->max_replicas;
        if (result > cap) {
            result = cap;
            out->limited = 1;
            why = cap == h->max_replicas ? "capped at maxReplicas" : "scale-up rate limited";
        }
    } else if (stab < current) {
        int lim = scale_down_limit(h, now, current);
        if (lim > current) lim = current;
        int floor_ = lim > h->min_replicas ? lim : h->min_replicas;
        if (result < floor_) {
            result = floor_;
            out->limited = 1;
            why = floor_ == h->min_replicas ? "held at minReplicas" : "scale-down rate limited";
        }
    }
    if (result > h->max_replicas) {
        result = h->max_replicas;
        out->limited = 1;
        why = "capped at maxReplicas";
    }
    if (result < h->min_replicas) {
        result = h->min_replicas;
        out->limited = 1;
        why = "held at minReplicas";
    }
    out->desired = result;
    snprintf(out->reason, sizeof out->reason, "metrics want %d, stabilized %d, %s: %d (from %d)",
             desired, stab, why, result, current);
}

int hpa_settle_seconds(int sync_seconds, int window_s) {
    int settle = 2 * sync_seconds;
    if (window_s > 0 && sync_seconds + window_s > settle) settle = sync_seconds + window_s;
    return settle;
}
