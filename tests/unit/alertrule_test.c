/* alertrule_test.c: the alert rule spec (spec/alertrule.c: defaults, every problem with its
 * path and line, templates) and the pure alerting parts (models/alerting.c: crossings, the
 * pending/firing/resolved states with for and keepFiringFor). */
#include "models/alerting.h"
#include "spec/alertrule.h"
#include "test.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int parse(const char *y, alertrule_spec *s, wl_problems *p) {
    wl_problems_init(p);
    return ar_parse(y, strlen(y), s, p);
}

static int has_problem(const wl_problems *p, const char *path, int line, const char *msg_part) {
    for (size_t i = 0; i < p->n; i++)
        if (!strcmp(p->v[i].path, path) && (line == 0 || p->v[i].line == line) &&
            strstr(p->v[i].msg, msg_part))
            return 1;
    return 0;
}

TEST(alertrule_predict_defaults) {
    static alertrule_spec s;
    wl_problems p;
    const char *y = "apiVersion: tide/v1\nkind: AlertRule\nmetadata: {name: disk-full}\n"
                    "spec:\n  type: predict\n  metric: {selector: 'disk_used_percent'}\n"
                    "  threshold: 90\n";
    int rc = parse(y, &s, &p);
    if (rc) {
        char *t = wl_problems_format(&p);
        T_FAIL("rc %d: %s", rc, t);
    }
    T_EQ_STR(s.name, "disk-full");
    T_EQ_INT(s.type, AR_PREDICT);
    T_EQ_STR(s.metric.selector, "disk_used_percent");
    T_EQ_STR(s.model, "auto");
    T_EQ_INT(s.horizon_s, 6 * 3600);
    T_EQ_INT(s.interval_s, 60);
    T_EQ_INT(s.step_s, 60);
    T_EQ_INT(s.for_s, 300);
    T_EQ_INT(s.keep_firing_s, 0);
    T_NEAR(s.quantile, 0.9, 1e-12);
    T_EQ_INT(s.below, 0);
    T_NEAR(s.threshold, 90, 0);
    T_EQ_STR(s.severity, "warning");
    wl_problems_fini(&p);
}

TEST(alertrule_full_predict_and_anomaly) {
    static alertrule_spec s;
    wl_problems p;
    const char *y = "apiVersion: tide/v1\nkind: AlertRule\nmetadata: {name: free-mem}\n"
                    "spec:\n  type: predict\n  metric: {query: 'min(node_memory_free_bytes)'}\n"
                    "  model: holt-winters\n  horizon: 2h\n  retrain: 12h\n  threshold: 1e9\n"
                    "  direction: below\n  for: 10m\n  keepFiringFor: 15m\n  interval: 30s\n"
                    "  step: 5m\n  history: 14d\n  severity: critical\n"
                    "  labels: {team: infra}\n"
                    "  annotations:\n    summary: '{{ $labels.node }} below {{ $threshold }} at "
                    "{{$crossingTime}} ({{ $crossingIn }}): {{ $value }}'\n";
    T_EQ_INT(parse(y, &s, &p), 0);
    T_EQ_INT(s.below, 1);
    T_NEAR(s.quantile, 0.1, 1e-12); /* "will fall below" tests the low band by default */
    T_EQ_INT(s.horizon_s, 7200);
    T_EQ_INT(s.for_s, 600);
    T_EQ_INT(s.keep_firing_s, 900);
    T_EQ_INT(s.interval_s, 30);
    T_EQ_INT(s.step_s, 300);
    T_EQ_INT(s.history_s, 14 * 86400);
    T_EQ_INT(s.n_labels, 1);
    T_EQ_STR(s.labels[0].name, "team");
    T_EQ_INT(s.n_annotations, 1);
    wl_problems_fini(&p);

    const char *a = "apiVersion: tide/v1\nkind: AlertRule\nmetadata: {name: odd}\n"
                    "spec:\n  type: anomaly\n  metric: {selector: 'rps'}\n  sensitivity: high\n";
    T_EQ_INT(parse(a, &s, &p), 0);
    T_EQ_INT(s.type, AR_ANOMALY);
    T_EQ_INT(s.for_s, 0); /* anomaly rules fire at once by default */
    T_NEAR(s.score_threshold, 0.3, 1e-12);
    wl_problems_fini(&p);
}

TEST(alertrule_every_problem_named) {
    static alertrule_spec s;
    wl_problems p;
    const char *y = "apiVersion: tide/v2\n"                     /* 1 */
                    "kind: AlertRule\n"                         /* 2 */
                    "metadata: {name: 'bad name'}\n"            /* 3 */
                    "spec:\n"                                   /* 4 */
                    "  type: predict\n"                         /* 5 */
                    "  metric: {selector: 'x{'}\n"              /* 6 */
                    "  model: prophet\n"                        /* 7 */
                    "  horizon: 6 hours\n"                      /* 8 */
                    "  quantile: 1.5\n"                         /* 9 */
                    "  sensitivity: high\n"                     /* 10 */
                    "  labels: {alertname: x, '9x': y}\n"       /* 11 */
                    "  annotations: {summary: '{{ $nope }}'}\n" /* 12 */
                    "  color: red\n";                           /* 13 */
    T_EQ_INT(parse(y, &s, &p), -EINVAL);
    T_ASSERT(has_problem(&p, "apiVersion", 1, "tide/v1"));
    T_ASSERT(has_problem(&p, "metadata.name", 3, "letters"));
    T_ASSERT(has_problem(&p, "spec.metric.selector", 6, ""));
    T_ASSERT(has_problem(&p, "spec.model", 7, "unknown model \"prophet\""));
    T_ASSERT(has_problem(&p, "spec.horizon", 8, "duration"));
    T_ASSERT(has_problem(&p, "spec.quantile", 9, ""));
    T_ASSERT(has_problem(&p, "spec.sensitivity", 10, "only for type anomaly"));
    T_ASSERT(has_problem(&p, "spec.labels.alertname", 11, "set by the rule"));
    T_ASSERT(has_problem(&p, "spec.labels.9x", 11, "letters"));
    T_ASSERT(has_problem(&p, "spec.annotations.summary", 12, "unknown template variable"));
    T_ASSERT(has_problem(&p, "spec.color", 13, "unknown field"));
    T_ASSERT(has_problem(&p, "spec", 0, "missing field \"threshold\""));
    for (size_t i = 1; i < p.n; i++) /* in document order */
        T_ASSERT(p.v[i - 1].line <= p.v[i].line || p.v[i].line == 0);
    wl_problems_fini(&p);
    T_EQ_INT(parse("kind: Workload\n", &s, &p), -EINVAL);
    T_ASSERT(has_problem(&p, "kind", 1, "must be AlertRule"));
    wl_problems_fini(&p);
    T_EQ_INT(parse("{{{", &s, &p), -EINVAL);
    T_ASSERT(p.n == 1 && strstr(p.v[0].msg, "YAML syntax"));
    wl_problems_fini(&p);
    /* a horizon longer than the step allows */
    T_EQ_INT(parse("apiVersion: tide/v1\nkind: AlertRule\nmetadata: {name: a}\nspec:\n"
                   "  type: predict\n  metric: {selector: x}\n  threshold: 1\n  step: 1s\n"
                   "  horizon: 1d\n  history: 1h\n",
                   &s, &p),
             -EINVAL);
    T_ASSERT(has_problem(&p, "spec.horizon", 9, "steps"));
    wl_problems_fini(&p);
}

TEST(alertrule_doc_kind) {
    char k[64];
    const char *y = "apiVersion: tide/v1\nkind: AlertRule\n";
    ar_doc_kind(y, strlen(y), k, sizeof k);
    T_EQ_STR(k, "AlertRule");
    ar_doc_kind("- a\n- b\n", 8, k, sizeof k);
    T_EQ_STR(k, "");
    ar_doc_kind("{{{", 3, k, sizeof k);
    T_EQ_STR(k, "");
}

TEST(alertrule_templates) {
    const char *names[] = {"node"}, *values[] = {"web-1"};
    ar_vars v = {.value = 91.5,
                 .threshold = 90,
                 .score = NAN,
                 .expected = NAN,
                 .crossing_time = 1700000000 + 7800,
                 .now = 1700000000,
                 .rule = "disk",
                 .label_names = names,
                 .label_values = values,
                 .n_labels = 1};
    char out[256], why[200];
    T_EQ_INT(
        ar_template_expand("{{$labels.node}} {{ $value }}>{{ $threshold }} at "
                           "{{ $crossingTime }} in {{ $crossingIn }} {{ $labels.x }}[{{ $score }}]",
                           &v, out, sizeof out, why, sizeof why),
        0);
    T_EQ_STR(out, "web-1 91.5>90 at 2023-11-15T00:23:20Z in 2h10m []");
    T_EQ_INT(ar_template_expand("a {{ $value", &v, out, sizeof out, why, sizeof why), -EINVAL);
    T_ASSERT(strstr(why, "unclosed"));
    /* cut at the buffer, always terminated */
    T_EQ_INT(ar_template_expand("{{ $rule }}{{ $rule }}", &v, out, 6, why, sizeof why), 0);
    T_EQ_STR(out, "diskd");
    char d[32];
    ar_format_duration(90061, d, sizeof d);
    T_EQ_STR(d, "1d1h1m1s");
}

TEST(alerting_crossing) {
    double f[] = {1, NAN, 5, 9, 12, 3};
    T_EQ_INT(alert_crossing(f, 6, 8, 0), 3);
    T_EQ_INT(alert_crossing(f, 6, 20, 0), -1);
    T_EQ_INT(alert_crossing(f, 6, 2, 1), 0);
    T_EQ_INT(alert_crossing(f + 2, 4, 4, 1), 3);
}

TEST(alerting_for_and_keep_firing) {
    alert_state s = {0};
    /* for 120 s: pending, then firing after 120 s of holding */
    T_EQ_INT(alert_step(&s, 1, 1000, 120, 0), ALERT_PENDED);
    T_EQ_INT(alert_step(&s, 1, 1060, 120, 0), ALERT_NONE);
    T_EQ_INT(s.phase, ALERT_PENDING);
    T_EQ_INT(alert_step(&s, 1, 1120, 120, 0), ALERT_FIRED);
    T_EQ_INT(s.active_at, 1000);
    T_EQ_INT(s.fired_at, 1120);
    /* keep firing 100 s after the condition stops */
    T_EQ_INT(alert_step(&s, 0, 1180, 120, 100), ALERT_NONE);
    T_EQ_INT(s.phase, ALERT_FIRING);
    T_EQ_INT(alert_step(&s, 1, 1200, 120, 100), ALERT_NONE); /* back: the clock restarts */
    T_EQ_INT(alert_step(&s, 0, 1260, 120, 100), ALERT_NONE);
    T_EQ_INT(alert_step(&s, 0, 1300, 120, 100), ALERT_RESOLVED);
    T_EQ_INT(s.resolved_at, 1300);
    T_EQ_INT(s.phase, ALERT_INACTIVE);
    /* a pending alert that stops holding is dropped, never fired */
    T_EQ_INT(alert_step(&s, 1, 2000, 120, 0), ALERT_PENDED);
    T_EQ_INT(alert_step(&s, 0, 2060, 120, 0), ALERT_DROPPED);
    T_EQ_INT(s.phase, ALERT_INACTIVE);
    /* for 0: fires at the first active evaluation, resolves at the first inactive one */
    T_EQ_INT(alert_step(&s, 1, 3000, 0, 0), ALERT_FIRED);
    T_EQ_INT(alert_step(&s, 0, 3060, 0, 0), ALERT_RESOLVED);
}

TEST(alertrule_workload_conditions) {
    static alertrule_spec s;
    wl_problems p;
    const char *y = "apiVersion: tide/v1\nkind: AlertRule\nmetadata: {name: shop}\n"
                    "spec:\n  type: workload\n  workload: shop\n";
    T_EQ_INT(parse(y, &s, &p), 0);
    T_EQ_INT(s.type, AR_WORKLOAD);
    T_EQ_STR(s.workload, "shop");
    T_EQ_INT(s.conditions, AR_COND_ALL);
    T_EQ_INT(s.for_s, 0);
    wl_problems_fini(&p);
    const char *y2 = "apiVersion: tide/v1\nkind: AlertRule\nmetadata: {name: shop}\n"
                     "spec:\n  type: workload\n  workload: shop\n  conditions: [stability]\n";
    T_EQ_INT(parse(y2, &s, &p), 0);
    T_EQ_INT(s.conditions, AR_COND_STABILITY);
    T_EQ_STR(ar_condition_name(AR_COND_OUT_OF_REPLICAS), "outOfReplicas");
    wl_problems_fini(&p);
    const char *y3 = "apiVersion: tide/v1\nkind: AlertRule\nmetadata: {name: x}\n"
                     "spec:\n  type: predict\n  metric: {selector: m}\n  threshold: 1\n"
                     "  workload: shop\n  conditions: []\n";
    T_EQ_INT(parse(y3, &s, &p), -EINVAL);
    T_ASSERT(has_problem(&p, "spec.workload", 8, "only for type workload"));
    T_ASSERT(has_problem(&p, "spec.conditions", 9, "only for type workload"));
    wl_problems_fini(&p);
}
