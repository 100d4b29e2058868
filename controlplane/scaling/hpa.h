/* hpa.h: the reactive portrait provider: the Kubernetes Horizontal Pod Autoscaler algorithm.
 *
 * Two parts, as in kube-controller-manager:
 *   1. hpa_metric_replicas (replica_calculator): desired = ceil(current * metric/target) over
 *      the ready pods, with the tolerance band, pods missing metrics assumed at 100% of the
 *      target on a scale-down and 0% on a scale-up, not-yet-ready pods at 0% on a scale-up,
 *      and no change when the recomputed ratio falls in the tolerance or reverses direction.
 *      hpa_desired takes the maximum over metrics.
 *   2. hpa_normalize (normalizeDesiredReplicasWithBehaviors): the stabilization windows
 *      (scale-up: the lowest recommendation in the window, scale-down: the highest), then
 *      the rate policies (Pods/Percent per period, selectPolicy Max/Min/Disabled) against
 *      the scale events of the past periods, then the min/max bounds.
 * Default behavior (wl_defaults): scale-down stabilization 300 s with 100% per 15 s;
 * scale-up without stabilization, 100% or 4 pods per 15 s, whichever is more; 15 s sync. */
#ifndef TIDE_HPA_H
#define TIDE_HPA_H

#include "spec/workload.h"

#include <stddef.h>
#include <stdint.h>

/* One pod's sample of one metric. */
typedef struct hpa_pod {
    double value;   /* usage (same unit as request), or the raw metric for AverageValue targets */
    double request; /* resource request (Utilization targets); ignored for AverageValue */
    int has_metric; /* 0: the metrics API returned nothing for this pod ("missing") */
    int ready;      /* 0: not ready yet (still starting); its sample is not trusted */
    int ignored;    /* failed or being deleted: left out entirely */
} hpa_pod;

typedef enum hpa_target_type { HPA_UTILIZATION = 0, HPA_AVERAGE_VALUE } hpa_target_type;

typedef struct hpa_metric {
    const hpa_pod *pods;
    size_t n;
    hpa_target_type type;
    double target; /* percent of request (Utilization) or value per pod (AverageValue) */
} hpa_metric;

typedef struct hpa_metric_result {
    int replicas;     /* recommendation for this metric */
    double ratio;     /* usage ratio over the ready pods with metrics */
    double new_ratio; /* ratio after filling missing/unready pods (= ratio when not needed) */
    int ready, unready, missing, ignored;
    char reason[160];
} hpa_metric_result;

/* Desired replicas for one metric given the current replica count. Returns 0, or -ENODATA
 * when no ready pod has a metric (Kubernetes: "did not receive metrics for targeted pods"),
 * -EINVAL on a bad target. */
int hpa_metric_replicas(int current, const hpa_metric *m, double tolerance, hpa_metric_result *out);

/* How long a replica that came online stays a not-ready pod for the utilization: the first
 * sync after it may already hold it, and the metric's averaging window (window_s, 0 for an
 * instantaneous metric) must have begun after it was ready: max(2 x sync, sync + window).
 * One rule for the live control plane (observe_replica_pod) and tidectl simulate --settle rule. */
int hpa_settle_seconds(int sync_seconds, int window_s);

/* Maximum over metrics (Kubernetes computeReplicasForMetrics): a metric that fails is skipped
 * when another gives a recommendation, unless the result would be a scale-down (then no
 * change: *desired = current). Returns 0, or -ENODATA when every metric failed.
 * which (may be NULL) gets the index of the deciding metric. */
int hpa_desired(int current, const hpa_metric *m, size_t nm, double tolerance, int *desired,
                int *which, char *reason, size_t reasonlen);

#define HPA_MAX_RECS 1024

typedef struct hpa_rec {
    int64_t t;
    int replicas;
} hpa_rec;

/* The per-workload state of the behavior part: recommendations and scale events. */
typedef struct hpa_state {
    wl_direction up, down;
    int min_replicas, max_replicas;
    hpa_rec recs[HPA_MAX_RECS];
    int nrecs;
    hpa_rec up_events[HPA_MAX_RECS], down_events[HPA_MAX_RECS];
    int nup, ndown;
    int initialized;
} hpa_state;

void hpa_state_init(hpa_state *h, const workload_spec *spec);

typedef struct hpa_decision {
    int desired;    /* what to scale to */
    int stabilized; /* after the stabilization windows, before the rate limits */
    int limited;    /* 1 when a rate policy or the bounds cut the change */
    char reason[200];
} hpa_decision;

/* Applies stabilization, rate policies and bounds to the metric recommendation `desired` at
 * time now (seconds) with `current` replicas, records the recommendation, and fills *out.
 * Call hpa_record_scale when the result is acted upon. */
void hpa_normalize(hpa_state *h, int64_t now, int current, int desired, hpa_decision *out);
/* Records a scale event from `from` to `to` replicas at now (for the rate policies). */
void hpa_record_scale(hpa_state *h, int64_t now, int from, int to);

#endif
