/* hpa_test.c: the reactive provider against the worked examples of the Kubernetes HPA
 * documentation ("Algorithm details", "Scaling policies", "Stabilization window") and the
 * rules it states for missing and not-ready pods. */
#include "scaling/hpa.h"
#include "test.h"

#include <errno.h>

static hpa_pod ready(double v) {
    return (hpa_pod){v, 1000, 1, 1, 0};
}

static int avg_value(int current, const hpa_pod *pods, size_t n, double target) {
    hpa_metric m = {pods, n, HPA_AVERAGE_VALUE, target};
    hpa_metric_result r;
    if (hpa_metric_replicas(current, &m, 0.1, &r) < 0) return -1;
    return r.replicas;
}

TEST(hpa_doc_example_200m_over_100m_doubles) {
    /* "if the current metric value is 200m, and the desired value is 100m, the number of
     * replicas will be doubled, since 200.0 / 100.0 == 2.0" */
    hpa_pod p[3] = {ready(200), ready(200), ready(200)};
    T_EQ_INT(avg_value(3, p, 3, 100), 6);
}

TEST(hpa_doc_example_50m_halves) {
    /* "If the current value is instead 50m, you'll halve the number of replicas" */
    hpa_pod p[4] = {ready(50), ready(50), ready(50), ready(50)};
    T_EQ_INT(avg_value(4, p, 4, 100), 2);
}

TEST(hpa_ratio_close_to_one_skips_scaling) {
    /* within the 0.1 tolerance: no change; just outside: ceil */
    hpa_pod p[4] = {ready(109), ready(109), ready(109), ready(109)};
    T_EQ_INT(avg_value(4, p, 4, 100), 4);
    hpa_pod q[4] = {ready(111), ready(111), ready(111), ready(111)};
    T_EQ_INT(avg_value(4, q, 4, 100), 5); /* ceil(4 * 1.11) */
    hpa_pod r[4] = {ready(91), ready(91), ready(91), ready(91)};
    T_EQ_INT(avg_value(4, r, 4, 100), 4);
}

TEST(hpa_utilization_target_uses_requests) {
    /* CPU utilization target 60%: pods use 900m of 1000m requested = 90% -> ratio 1.5 */
    hpa_pod p[4] = {ready(900), ready(900), ready(900), ready(900)};
    hpa_metric m = {p, 4, HPA_UTILIZATION, 60};
    hpa_metric_result r;
    T_EQ_INT(hpa_metric_replicas(4, &m, 0.1, &r), 0);
    T_NEAR(r.ratio, 1.5, 1e-9);
    T_EQ_INT(r.replicas, 6);
}

TEST(hpa_missing_pods_count_as_100_percent_on_scale_down) {
    /* 3 ready pods at 20 (target 100: ratio 0.2), 1 pod missing metrics. Missing pod counts as
     * 100: (20*3 + 100)/4 = 40 -> ratio 0.4 -> ceil(0.4 * 4) = 2 (without it: ceil(0.2*3) = 1) */
    hpa_pod p[4] = {ready(20), ready(20), ready(20), {0, 1000, 0, 1, 0}};
    hpa_metric m = {p, 4, HPA_AVERAGE_VALUE, 100};
    hpa_metric_result r;
    T_EQ_INT(hpa_metric_replicas(4, &m, 0.1, &r), 0);
    T_EQ_INT(r.missing, 1);
    T_NEAR(r.new_ratio, 0.4, 1e-9);
    T_EQ_INT(r.replicas, 2);
}

TEST(hpa_missing_pods_count_as_zero_on_scale_up) {
    /* 2 ready pods at 300 (ratio 3), 2 missing -> (600 + 0)/4 = 150 -> ratio 1.5 -> 6 */
    hpa_pod p[4] = {ready(300), ready(300), {0, 1000, 0, 1, 0}, {0, 1000, 0, 1, 0}};
    T_EQ_INT(avg_value(4, p, 4, 100), 6);
}

TEST(hpa_unready_pods_count_as_zero_on_scale_up) {
    /* 2 ready at 200, 2 not yet ready (their 500 is not trusted): (400+0+0)/4 = 100 ->
     * ratio 1.0 is within tolerance -> no change */
    hpa_pod p[4] = {ready(200), ready(200), {500, 1000, 1, 0, 0}, {500, 1000, 1, 0, 0}};
    T_EQ_INT(avg_value(4, p, 4, 100), 4);
    /* 2 ready at 400, 2 unready: (800)/4 = 200 -> ratio 2 -> 8 */
    hpa_pod q[4] = {ready(400), ready(400), {0, 1000, 1, 0, 0}, {0, 1000, 1, 0, 0}};
    T_EQ_INT(avg_value(4, q, 4, 100), 8);
}

TEST(hpa_unready_pods_left_out_of_scale_down) {
    /* ratio < 1 with unready pods: they are simply not counted: ceil(0.5 * 2) = 1 */
    hpa_pod p[3] = {ready(50), ready(50), {900, 1000, 1, 0, 0}};
    T_EQ_INT(avg_value(3, p, 3, 100), 1);
}

TEST(hpa_no_action_when_recomputed_ratio_reverses) {
    /* 1 ready pod at 150 (ratio 1.5: scale up), 3 missing at 0 -> 150/4 = 37.5 -> ratio 0.375
     * would be a scale-down: direction reversed -> keep 4 */
    hpa_pod p[4] = {ready(150), {0, 1000, 0, 1, 0}, {0, 1000, 0, 1, 0}, {0, 1000, 0, 1, 0}};
    hpa_metric m = {p, 4, HPA_AVERAGE_VALUE, 100};
    hpa_metric_result r;
    T_EQ_INT(hpa_metric_replicas(4, &m, 0.1, &r), 0);
    T_NEAR(r.new_ratio, 0.375, 1e-9);
    T_EQ_INT(r.replicas, 4);
    T_ASSERT(strstr(r.reason, "no change") != NULL);
}

TEST(hpa_failed_and_deleted_pods_are_ignored) {
    hpa_pod p[3] = {ready(200), ready(200), {5000, 1000, 1, 1, 1}};
    hpa_metric m = {p, 3, HPA_AVERAGE_VALUE, 100};
    hpa_metric_result r;
    T_EQ_INT(hpa_metric_replicas(3, &m, 0.1, &r), 0);
    T_EQ_INT(r.ignored, 1);
    T_EQ_INT(r.replicas, 4);
    hpa_pod none[1] = {{0, 1000, 0, 1, 0}};
    hpa_metric m2 = {none, 1, HPA_AVERAGE_VALUE, 100};
    T_EQ_INT(hpa_metric_replicas(1, &m2, 0.1, &r), -ENODATA);
}

TEST(hpa_max_over_metrics) {
    hpa_pod cpu[2] = {ready(600), ready(600)}; /* 60% of 1000 at target 60 -> ratio 1 */
    hpa_pod rps[2] = {ready(300), ready(300)}; /* 300/100 -> ratio 3 -> 6 */
    hpa_metric m[2] = {{cpu, 2, HPA_UTILIZATION, 60}, {rps, 2, HPA_AVERAGE_VALUE, 100}};
    int d, which;
    char why[200];
    T_EQ_INT(hpa_desired(2, m, 2, 0.1, &d, &which, why, sizeof why), 0);
    T_EQ_INT(d, 6);
    T_EQ_INT(which, 1);
    /* a failed metric blocks a scale-down */
    hpa_pod low[2] = {ready(10), ready(10)};
    hpa_pod missing[2] = {{0, 1000, 0, 1, 0}, {0, 1000, 0, 1, 0}};
    hpa_metric m2[2] = {{low, 2, HPA_AVERAGE_VALUE, 100}, {missing, 2, HPA_AVERAGE_VALUE, 100}};
    T_EQ_INT(hpa_desired(2, m2, 2, 0.1, &d, &which, why, sizeof why), 0);
    T_EQ_INT(d, 2);
}

static workload_spec spec_defaults(int min, int max) {
    workload_spec s;
    wl_defaults(&s);
    s.min_replicas = min;
    s.max_replicas = max;
    return s;
}

TEST(hpa_default_scale_up_100_percent_or_4_pods_per_15s) {
    workload_spec s = spec_defaults(1, 100);
    hpa_state h;
    hpa_state_init(&h, &s);
    hpa_decision d;
    /* from 1: max(1*2, 1+4) = 5 */
    hpa_normalize(&h, 1000, 1, 50, &d);
    T_EQ_INT(d.desired, 5);
    T_ASSERT(d.limited);
    hpa_record_scale(&h, 1000, 1, 5);
    /* within the same 15 s period the budget is spent: period start = 1 */
    hpa_normalize(&h, 1010, 5, 50, &d);
    T_EQ_INT(d.desired, 5);
    /* next period: from 5, max(10, 9) = 10 */
    hpa_normalize(&h, 1015, 5, 50, &d);
    T_EQ_INT(d.desired, 10);
    hpa_record_scale(&h, 1015, 5, 10);
    hpa_normalize(&h, 1030, 10, 50, &d);
    T_EQ_INT(d.desired, 20);
}

TEST(hpa_default_scale_down_stabilization_300s) {
    workload_spec s = spec_defaults(1, 100);
    hpa_state h;
    hpa_state_init(&h, &s);
    hpa_decision d;
    hpa_normalize(&h, 0, 10, 10, &d);
    T_EQ_INT(d.desired, 10);
    for (int t = 15; t < 300; t += 15) {
        hpa_normalize(&h, t, 10, 3, &d);
        T_EQ_INT(d.desired, 10); /* the 10 recommended at t=0 is still in the window */
    }
    hpa_normalize(&h, 300, 10, 3, &d);
    T_EQ_INT(d.desired, 3);
}

TEST(hpa_kep_stabilization_example) {
    /* KEP-853 "Stabilization before scaling down": window 600 s, 5 pods per 600 s, sync once
     * a minute, 10 replicas; recommendations 10,9,8,9,9,8,9,8,9,8 keep 10, then 7 -> 9 */
    workload_spec s = spec_defaults(1, 100);
    s.down.stabilization_seconds = 600;
    s.down.policies[0] = (wl_policy){WL_POLICY_PODS, 5, 600};
    s.down.n_policies = 1;
    hpa_state h;
    hpa_state_init(&h, &s);
    h.initialized = 1; /* the example starts with an empty window */
    int recs[] = {10, 9, 8, 9, 9, 8, 9, 8, 9, 8};
    hpa_decision d;
    for (int i = 0; i < 10; i++) {
        hpa_normalize(&h, i * 60, 10, recs[i], &d);
        T_EQ_INT(d.desired, 10);
    }
    hpa_normalize(&h, 600, 10, 7, &d);
    T_EQ_INT(d.desired, 9);
}

TEST(hpa_doc_scale_down_policies_select_max) {
    /* docs: Pods 4 / 60 s and Percent 10 / 60 s: with 80 replicas 10% = 8 may go; below 40
     * replicas the Pods policy (4) allows more. selectPolicy Max picks the larger change. */
    workload_spec s = spec_defaults(1, 100);
    s.down.stabilization_seconds = 0;
    s.down.policies[0] = (wl_policy){WL_POLICY_PODS, 4, 60};
    s.down.policies[1] = (wl_policy){WL_POLICY_PERCENT, 10, 60};
    s.down.n_policies = 2;
    hpa_state h;
    hpa_state_init(&h, &s);
    hpa_decision d;
    hpa_normalize(&h, 0, 80, 1, &d);
    T_EQ_INT(d.desired, 72);
    hpa_record_scale(&h, 0, 80, 72);
    hpa_normalize(&h, 30, 72, 1, &d); /* same period: nothing more */
    T_EQ_INT(d.desired, 72);
    hpa_state_init(&h, &s);
    hpa_normalize(&h, 0, 30, 1, &d);
    T_EQ_INT(d.desired, 26);
    /* selectPolicy Min: the smaller change */
    s.down.select = WL_SELECT_MIN;
    hpa_state_init(&h, &s);
    hpa_normalize(&h, 0, 80, 1, &d);
    T_EQ_INT(d.desired, 76);
    s.down.select = WL_SELECT_DISABLED;
    hpa_state_init(&h, &s);
    hpa_normalize(&h, 0, 80, 1, &d);
    T_EQ_INT(d.desired, 80);
}

TEST(hpa_bounds_apply) {
    workload_spec s = spec_defaults(2, 6);
    hpa_state h;
    hpa_state_init(&h, &s);
    hpa_decision d;
    hpa_normalize(&h, 0, 5, 40, &d);
    T_EQ_INT(d.desired, 6);
    T_ASSERT(strstr(d.reason, "maxReplicas") != NULL);
    s.down.stabilization_seconds = 0;
    hpa_state_init(&h, &s);
    hpa_normalize(&h, 0, 5, 0, &d);
    T_EQ_INT(d.desired, 2);
}
