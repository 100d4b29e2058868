/* workload_test.c: the workload spec parser and validator, cron expressions and windows. */
#include "test.h"
#include "spec/workload.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

static int has_problem(const wl_problems *p, const char *path, const char *needle, int line) {
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->v[i].path, path) == 0 && strstr(p->v[i].msg, needle) &&
            (line == 0 || p->v[i].line == line))
            return 1;
    return 0;
}

TEST(workload_full_fixture_parses_every_field) {
    workload_spec s;
    wl_problems p;
    wl_problems_init(&p);
    int rc = wl_load(test_fixture("workload/full.yaml"), &s, &p);
    if (rc != 0) {
        char *txt = wl_problems_format(&p);
        printf("%s", txt);
        free(txt);
    }
    wl_problems_fini(&p);
    T_EQ_INT(rc, 0);
    T_EQ_STR(s.name, "web");
    T_EQ_STR(s.namespace_, "shop");
    T_EQ_INT(s.target.kind, WL_TARGET_DEPLOYMENT);
    T_EQ_INT(s.min_replicas, 2);
    T_EQ_INT(s.max_replicas, 40);
    T_EQ_INT(s.mode, WL_MODE_PREVIEW);
    T_NEAR(s.target_utilization, 60, 0);
    T_EQ_INT(s.n_traffic, 1);
    T_EQ_STR(s.traffic[0].name, "requests");
    T_EQ_INT(s.n_providers, 4);
    T_EQ_INT(s.providers[1].type, WL_PROV_CRON);
    T_EQ_STR(s.providers[1].time_zone, "Europe/Berlin");
    T_EQ_INT(s.providers[1].n_windows, 2);
    T_EQ_INT(s.providers[1].windows[0].replicas, 12);
    T_EQ_INT(s.providers[3].type, WL_PROV_PREDICTIVE);
    T_EQ_STR(s.providers[3].model, "holt-winters");
    T_NEAR(s.providers[3].quantile, 0.95, 1e-12);
    T_NEAR(s.providers[3].capacity_per_replica, 250, 0);
    T_EQ_INT(s.scale_up_ahead_seconds, -1);
    T_EQ_INT(s.keep_alive_seconds, 7200);
    T_EQ_INT(s.down.select, WL_SELECT_MIN);
    T_EQ_INT(s.down.n_policies, 2);
    T_EQ_INT(s.down.policies[1].type, WL_POLICY_PERCENT);
    T_EQ_INT(s.down.policies[1].value, 10);
    T_EQ_INT(s.down.state, WL_GRAY_STANDBY);
    T_EQ_INT(s.down.change_percent, 25);
    T_EQ_INT(s.down.observation_seconds, 120);
    T_EQ_INT(s.n_checkers, 2);
    T_EQ_INT(s.checkers[0].action, WL_CHECK_ROLLBACK);
    T_NEAR(s.checkers[0].threshold, 85, 0);
    T_EQ_INT(s.checkers[1].action, WL_CHECK_PAUSE);
    T_EQ_INT(s.checkers[1].cooldown_seconds, 300);
}

TEST(workload_defaults_are_kubernetes_hpa_defaults) {
    workload_spec s;
    T_EQ_INT(wl_load(test_fixture("workload/hpa.yaml"), &s, NULL), 0);
    T_EQ_INT(s.min_replicas, 1);
    T_EQ_INT(s.n_providers, 1);
    T_EQ_INT(s.providers[0].type, WL_PROV_REACTIVE);
    T_EQ_INT(s.up.stabilization_seconds, 0);
    T_EQ_INT(s.up.n_policies, 2);
    T_EQ_INT(s.up.policies[0].type, WL_POLICY_PERCENT);
    T_EQ_INT(s.up.policies[0].value, 100);
    T_EQ_INT(s.up.policies[1].type, WL_POLICY_PODS);
    T_EQ_INT(s.up.policies[1].value, 4);
    T_EQ_INT(s.up.policies[1].period_seconds, 15);
    T_EQ_INT(s.up.select, WL_SELECT_MAX);
    T_EQ_INT(s.down.stabilization_seconds, 300);
    T_EQ_INT(s.sync_seconds, 15);
    T_NEAR(s.tolerance, 0.1, 1e-12);
}

TEST(workload_invalid_spec_lists_every_problem_with_line) {
    workload_spec s;
    wl_problems p;
    wl_problems_init(&p);
    T_EQ_INT(wl_load(test_fixture("workload/bad.yaml"), &s, &p), -22);
    char *txt = wl_problems_format(&p);
    printf("%s", txt);
    free(txt);
    int ok =
        has_problem(&p, "spec.target.kind", "must be one of", 7) &&
        has_problem(&p, "spec.minReplicas", "above maxReplicas", 9) &&
        has_problem(&p, "spec.mode", "Auto, Preview", 11) &&
        has_problem(&p, "spec.colour", "unknown field", 12) &&
        has_problem(&p, "spec.providers[0].timeZone", "unknown time zone", 15) &&
        has_problem(&p, "spec.providers[0].windows[0]", "overlaps windows[1]", 17) &&
        has_problem(&p, "spec.providers[1].quantile", "must be in", 24) &&
        has_problem(&p, "spec.providers[1].replicas", "does not apply", 25) &&
        has_problem(&p, "spec.metrics.traffic", "needs a traffic metric", 0) &&
        has_problem(&p, "spec.behavior.scaleDown.gray.state", "Cutoff, Standby, Deleted", 29) &&
        has_problem(&p, "spec.behavior.scaleDown.gray.changePercent", "1..100", 30) &&
        has_problem(&p, "spec.behavior.scaleUpAhead", "auto", 31) &&
        has_problem(&p, "spec.stabilityCheckers[0].threshold", "number", 34) &&
        has_problem(&p, "spec.stabilityCheckers[0].action", "Pause, Rollback", 35) &&
        has_problem(&p, "spec.stabilityCheckers[0].metric", "neither", 0);
    size_t n = p.n;
    wl_problems_fini(&p);
    T_ASSERT(ok);
    T_EQ_INT(n, 15);
}

TEST(workload_yaml_syntax_error_is_reported) {
    workload_spec s;
    wl_problems p;
    wl_problems_init(&p);
    const char *y = "apiVersion: tide/v1\nkind: [Workload\n";
    T_EQ_INT(wl_parse(y, strlen(y), &s, &p), -22);
    T_EQ_INT(p.n, 1);
    T_ASSERT(strstr(p.v[0].msg, "YAML syntax") != NULL);
    wl_problems_fini(&p);
    T_EQ_INT(wl_parse("", 0, &s, NULL), -22);
}

/* Issue 18 item 4: deep nesting is quadratic inside libyaml (a 200 KB spec stalled the loop
 * 31 s); the depth is capped before the document is built. */
TEST(workload_deep_yaml_nesting_refused_before_parsing) {
    for (int k = 0; k < 3; k++) {
        size_t cap = 300000, len = 0;
        char *buf = malloc(cap);
        T_ASSERT(buf);
        if (k == 0) /* 200 KB of flow sequences */
            for (; len < 200000; len++)
                buf[len] = '[';
        else if (k == 1) /* flow mappings */
            for (; len + 4 < 200000; len += 4)
                memcpy(buf + len, "{a: ", 4);
        else /* block mappings, one level deeper per line */
            for (int i = 0; i < 100; i++) {
                memset(buf + len, ' ', (size_t)i);
                len += (size_t)i;
                memcpy(buf + len, "a:\n", 3);
                len += 3;
            }
        buf[len] = 0;
        workload_spec s;
        wl_problems p;
        wl_problems_init(&p);
        T_EQ_INT(wl_parse(buf, len, &s, &p), -22); /* -EINVAL */
        char *msg = wl_problems_format(&p);
        if (!strstr(msg, "nested deeper than 64 levels")) T_FAIL("case %d: %s", k, msg);
        free(msg);
        wl_problems_fini(&p);
        free(buf);
    }
}

TEST(workload_unknown_nested_fields_rejected) {
    const char *y = "apiVersion: tide/v1\nkind: Workload\nmetadata: {name: a, owner: me}\n"
                    "spec:\n  target: {kind: Deployment, name: a, replicas: 3}\n  maxReplicas: 4\n"
                    "  behavior:\n    scaleUp:\n      gray: {state: Standby, speed: 2}\n";
    workload_spec s;
    wl_problems p;
    wl_problems_init(&p);
    T_EQ_INT(wl_parse(y, strlen(y), &s, &p), -22);
    int ok = has_problem(&p, "metadata.owner", "unknown field", 3) &&
             has_problem(&p, "spec.target.replicas", "unknown field", 5) &&
             has_problem(&p, "spec.behavior.scaleUp.gray.state", "scaleDown only", 9) &&
             has_problem(&p, "spec.behavior.scaleUp.gray.speed", "unknown field", 9);
    size_t n = p.n;
    wl_problems_fini(&p);
    T_ASSERT(ok);
    T_EQ_INT(n, 4);
}

TEST(workload_cron_parse_and_match) {
    wl_cron c;
    char why[160];
    T_EQ_INT(wl_cron_parse("*/15 8-18 * * mon-fri", &c, why, sizeof why), 0);
    T_ASSERT(wl_cron_match(&c, 30, 9, 3, 6, 1));
    T_ASSERT(!wl_cron_match(&c, 31, 9, 3, 6, 1));
    T_ASSERT(!wl_cron_match(&c, 30, 9, 7, 6, 0));
    T_EQ_INT(wl_cron_parse("0 0 1,15 * 7", &c, why, sizeof why), 0);
    /* both day fields restricted: either matches (cron's rule) */
    T_ASSERT(wl_cron_match(&c, 0, 0, 15, 3, 2));
    T_ASSERT(wl_cron_match(&c, 0, 0, 9, 3, 0));
    T_ASSERT(!wl_cron_match(&c, 0, 0, 9, 3, 2));
    T_EQ_INT(wl_cron_parse("0 24 * * *", &c, why, sizeof why), -22);
    T_ASSERT(strstr(why, "hour") != NULL);
    T_EQ_INT(wl_cron_parse("0 8 * *", &c, why, sizeof why), -22);
    T_ASSERT(strstr(why, "5 fields") != NULL);
    T_EQ_INT(wl_cron_parse("5-1 * * * *", &c, why, sizeof why), -22);
    T_EQ_INT(wl_cron_parse("*/0 * * * *", &c, why, sizeof why), -22);
    T_EQ_INT(wl_cron_parse("0 8 * * * *", &c, why, sizeof why), -22);
}

TEST(workload_cron_eval_follows_time_zone) {
    wl_provider p;
    memset(&p, 0, sizeof p);
    p.type = WL_PROV_CRON;
    snprintf(p.time_zone, sizeof p.time_zone, "America/New_York");
    char why[160];
    T_EQ_INT(wl_cron_parse("0 9 * * *", &p.windows[0].start, why, sizeof why), 0);
    T_EQ_INT(wl_cron_parse("0 17 * * *", &p.windows[0].end, why, sizeof why), 0);
    p.windows[0].replicas = 7;
    p.n_windows = 1;
    /* 2026-07-01 is EDT (UTC-4): 09:00 local = 13:00 UTC. Grid 12:00..18:00 UTC hourly. */
    int64_t t0 = 1782907200; /* 2026-07-01T12:00:00Z */
    int out[8];
    T_EQ_INT(wl_cron_eval(&p, t0, 3600, 8, out), 0);
    int want[8] = {-1, 7, 7, 7, 7, 7, 7, 7};
    want[7] = 7; /* 19:00 UTC = 15:00 local, still open */
    for (int i = 0; i < 8; i++)
        T_EQ_INT(out[i], want[i]);
    /* 21:00 UTC = 17:00 local: closed */
    T_EQ_INT(wl_cron_eval(&p, t0 + 9 * 3600, 3600, 1, out), 0);
    T_EQ_INT(out[0], -1);
    /* in January (EST, UTC-5) 09:00 local = 14:00 UTC */
    int64_t jan = 1767268800; /* 2026-01-01T12:00:00Z */
    T_EQ_INT(wl_cron_eval(&p, jan, 3600, 3, out), 0);
    T_EQ_INT(out[0], -1);
    T_EQ_INT(out[1], -1);
    T_EQ_INT(out[2], 7);
    /* stepping forward from a kept state gives the same answers as searching the past */
    wl_cron_state st;
    memset(&st, 0, sizeof st);
    for (int64_t t = t0 - 86400; t < t0 + 2 * 86400; t += 1800) {
        int a[3], b[3];
        T_EQ_INT(wl_cron_eval_from(&p, t, 600, 3, a, &st), 0);
        T_EQ_INT(wl_cron_eval(&p, t, 600, 3, b), 0);
        for (int k = 0; k < 3; k++)
            T_EQ_INT(a[k], b[k]);
    }
    T_EQ_INT(st.t, t0 + 2 * 86400 - 1800);
    /* the process zone is unchanged */
    T_ASSERT(getenv("TZ") == NULL || strcmp(getenv("TZ"), ":America/New_York") != 0);
}

/* Zones are read per evaluation (ICU calendars), never by switching the process's TZ: two
 * threads evaluating different zones at once get the answers each gets alone, and a zone ICU
 * does not know is refused. */
struct zone_job {
    const char *zone;
    int64_t t0;
    int out[48];
    int rc;
};
static void *zone_job_run(void *a) {
    struct zone_job *j = a;
    wl_provider p;
    memset(&p, 0, sizeof p);
    p.type = WL_PROV_CRON;
    snprintf(p.time_zone, sizeof p.time_zone, "%s", j->zone);
    char why[160];
    wl_cron_parse("0 9 * * *", &p.windows[0].start, why, sizeof why);
    wl_cron_parse("0 17 * * *", &p.windows[0].end, why, sizeof why);
    p.windows[0].replicas = 3;
    p.n_windows = 1;
    for (int k = 0; k < 200 && j->rc == 0; k++)
        j->rc = wl_cron_eval(&p, j->t0, 1800, 48, j->out);
    return NULL;
}
TEST(workload_time_zones_do_not_race) {
    int64_t t0 = 1782864000; /* 2026-07-01T00:00:00Z */
    struct zone_job alone[2] = {{"Asia/Tokyo", t0, {0}, 0}, {"America/Los_Angeles", t0, {0}, 0}};
    zone_job_run(&alone[0]);
    zone_job_run(&alone[1]);
    T_EQ_INT(alone[0].rc, 0);
    T_EQ_INT(alone[1].rc, 0);
    /* Tokyo (UTC+9): 09:00-17:00 local = 00:00-08:00 UTC; Los Angeles (PDT, UTC-7): 16:00-24:00 */
    T_EQ_INT(alone[0].out[0], 3);
    T_EQ_INT(alone[0].out[16], -1);
    T_EQ_INT(alone[1].out[0], -1);
    T_EQ_INT(alone[1].out[32], 3);
    struct zone_job both[2] = {{"Asia/Tokyo", t0, {0}, 0}, {"America/Los_Angeles", t0, {0}, 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        T_EQ_INT(pthread_create(&th[i], NULL, zone_job_run, &both[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 2; i++) {
        T_EQ_INT(both[i].rc, 0);
        for (int k = 0; k < 48; k++)
            T_EQ_INT(both[i].out[k], alone[i].out[k]);
    }
    T_ASSERT(wl_zone_valid("Europe/Berlin"));
    T_ASSERT(wl_zone_valid("UTC"));
    T_ASSERT(!wl_zone_valid("Mars/Olympus_Mons"));
    T_ASSERT(!wl_zone_valid("../../etc/passwd"));
    struct tm tmv;
    T_EQ_INT(wl_localtime("Europe/Berlin", 1782907200, &tmv), 0); /* 2026-07-01T12:00Z */
    T_EQ_INT(tmv.tm_hour, 14);
    T_EQ_INT((int)tmv.tm_gmtoff, 7200);
    T_EQ_INT(wl_localtime("Mars/Olympus_Mons", 0, &tmv), -22);
}

TEST(workload_cron_windows_touching_do_not_overlap) {
    const char *y = "apiVersion: tide/v1\nkind: Workload\nmetadata: {name: a}\n"
                    "spec:\n  target: {kind: Deployment, name: a}\n  maxReplicas: 9\n"
                    "  providers:\n    - type: cron\n      windows:\n"
                    "        - {start: '0 8 * * *', end: '0 12 * * *', replicas: 3}\n"
                    "        - {start: '0 12 * * *', end: '0 18 * * *', replicas: 5}\n"
                    "        - {start: '0 3 30 2 *', end: '0 4 30 2 *', replicas: 5}\n";
    workload_spec s;
    wl_problems p;
    wl_problems_init(&p);
    T_EQ_INT(wl_parse(y, strlen(y), &s, &p), -22);
    /* only the February 30th window is wrong: it never opens */
    T_EQ_INT(p.n, 1);
    T_ASSERT(strstr(p.v[0].msg, "never opens") != NULL);
    T_EQ_STR(p.v[0].path, "spec.providers[0].windows[2]");
    wl_problems_fini(&p);
}

TEST(workload_alias_bomb_is_bounded) {
    const char *y =
        "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
        "spec: {target: {kind: Deployment, name: a}, maxReplicas: 2, providers: [*d, *d, *d]}\n";
    workload_spec s;
    wl_problems p;
    wl_problems_init(&p);
    T_EQ_INT(wl_parse(y, strlen(y), &s, &p), -22);
    T_ASSERT(p.n > 0);
    wl_problems_fini(&p);
}

TEST(workload_name_must_be_a_safe_file_name) {
    const char *y = "apiVersion: tide/v1\nkind: Workload\nmetadata: {name: ../etc}\n"
                    "spec: {target: {kind: Deployment, name: a}, maxReplicas: 2}\n";
    workload_spec s;
    wl_problems p;
    wl_problems_init(&p);
    T_EQ_INT(wl_parse(y, strlen(y), &s, &p), -22);
    T_EQ_INT(p.n, 1);
    T_EQ_STR(p.v[0].path, "metadata.name");
    wl_problems_fini(&p);
}

TEST(workload_promql_queries_and_metrics_offset) {
    /* PromQL outside the store's selector subset is Prometheus's to run: accepted when its
     * brackets and quotes pair up; a selector must stay in the subset; offsetSeconds is kept */
    const char *ok =
        "apiVersion: tide/v1\nkind: Workload\nmetadata: {name: web}\n"
        "spec:\n  target: {kind: Deployment, name: web}\n  maxReplicas: 9\n"
        "  metrics:\n    offsetSeconds: 604800\n"
        "    utilization: {selector: 'cpu{app=\"web\"}', target: 60}\n"
        "    traffic: [{query: 'sum(rate(http_requests_total{app=\"web\"}[5m])) * 60'}]\n";
    workload_spec s;
    wl_problems p;
    wl_problems_init(&p);
    T_EQ_INT(wl_parse(ok, strlen(ok), &s, &p), 0);
    T_EQ_INT(s.metrics_offset_seconds, 604800);
    T_EQ_STR(s.traffic[0].query, "sum(rate(http_requests_total{app=\"web\"}[5m])) * 60");
    wl_problems_fini(&p);

    const char *bad =
        "apiVersion: tide/v1\nkind: Workload\nmetadata: {name: web}\n"
        "spec:\n  target: {kind: Deployment, name: web}\n  maxReplicas: 9\n"
        "  metrics:\n    offsetSeconds: -5\n"
        "    utilization: {selector: 'rate(cpu[5m])', target: 60}\n"
        "    traffic: [{query: 'sum(rate(x[5m])'}, {query: 'x{a=\"b}'}, {query: '   '}]\n";
    wl_problems_init(&p);
    T_EQ_INT(wl_parse(bad, strlen(bad), &s, &p), -22);
    T_ASSERT(has_problem(&p, "spec.metrics.offsetSeconds", "must be in 0..", 8));
    T_ASSERT(has_problem(&p, "spec.metrics.utilization.selector", "", 9));
    T_ASSERT(has_problem(&p, "spec.metrics.traffic[0].query", "missing ')'", 10));
    T_ASSERT(has_problem(&p, "spec.metrics.traffic[1].query", "unterminated", 10));
    T_ASSERT(has_problem(&p, "spec.metrics.traffic[2].query", "", 10));
    T_EQ_INT(p.n, 5);
    wl_problems_fini(&p);
}

static int parse_text(const char *y, workload_spec *s, wl_problems *p) {
    return wl_parse(y, strlen(y), s, p);
}

TEST(workload_scale_target_ref_follows_hpa_v2) {
    workload_spec s;
    wl_problems p;
    wl_problems_init(&p);
    const char *cr = "apiVersion: tide.io/v1alpha1\nkind: Workload\n"
                     "metadata: {name: web, namespace: shop, uid: u-1, resourceVersion: '7',\n"
                     "  generation: 2, labels: {a: b}}\n"
                     "spec:\n  scaleTargetRef: {apiVersion: apps/v1, kind: StatefulSet, name: db}\n"
                     "  maxReplicas: 5\nstatus: {online: 3}\n";
    T_EQ_INT(parse_text(cr, &s, &p), 0);
    T_EQ_INT(s.target.kind, WL_TARGET_STATEFULSET);
    T_EQ_STR(s.target.name, "db");
    T_EQ_STR(s.target.namespace_, "shop"); /* the Workload's namespace */
    T_EQ_INT(s.target.scale_target_ref, 1);
    /* today's form, namespace only in the target: both take it */
    const char *old = "apiVersion: tide/v1\nkind: Workload\nmetadata: {name: web}\n"
                      "spec:\n  target: {kind: Deployment, namespace: shop, name: web}\n"
                      "  maxReplicas: 5\n";
    T_EQ_INT(parse_text(old, &s, &p), 0);
    T_EQ_STR(s.namespace_, "shop");
    T_EQ_STR(s.target.namespace_, "shop");
    /* namespace only in metadata: the target is there */
    const char *meta = "apiVersion: tide/v1\nkind: Workload\nmetadata: {name: web, namespace: a}\n"
                       "spec:\n  target: {kind: Deployment, name: web}\n  maxReplicas: 5\n";
    T_EQ_INT(parse_text(meta, &s, &p), 0);
    T_EQ_STR(s.target.namespace_, "a");
    wl_problems_fini(&p);
}

TEST(workload_scale_target_ref_errors_are_clear) {
    workload_spec s;
    wl_problems p;
    wl_problems_init(&p);
    const char *both = "apiVersion: tide/v1\nkind: Workload\nmetadata: {name: w, namespace: a}\n"
                       "spec:\n  target: {kind: Deployment, namespace: b, name: web}\n"
                       "  maxReplicas: 5\n";
    T_EQ_INT(parse_text(both, &s, &p), -EINVAL);
    T_ASSERT(has_problem(&p, "spec.target.namespace", "disagrees with metadata.namespace", 5));
    wl_problems_fini(&p);
    wl_problems_init(&p);
    const char *bad = "apiVersion: tide/v1\nkind: Workload\nmetadata: {name: w}\n"
                      "spec:\n  scaleTargetRef: {apiVersion: v1, kind: HAProxyBackend}\n"
                      "  target: {kind: Deployment, name: web}\n  maxReplicas: 5\n";
    T_EQ_INT(parse_text(bad, &s, &p), -EINVAL);
    T_ASSERT(has_problem(&p, "spec.scaleTargetRef", "not both", 5));
    wl_problems_fini(&p);
    wl_problems_init(&p);
    const char *bad2 = "apiVersion: tide/v1\nkind: Workload\nmetadata: {name: w}\n"
                       "spec:\n  scaleTargetRef: {apiVersion: v1, kind: HAProxyBackend}\n"
                       "  maxReplicas: 5\nstatus: {}\n";
    T_EQ_INT(parse_text(bad2, &s, &p), -EINVAL);
    T_ASSERT(has_problem(&p, "spec.scaleTargetRef.apiVersion", "must be apps/v1", 5));
    T_ASSERT(has_problem(&p, "spec.scaleTargetRef.kind", "must be Deployment or StatefulSet", 5));
    T_ASSERT(has_problem(&p, "spec.scaleTargetRef", "missing field \"name\"", 5));
    T_ASSERT(has_problem(&p, "status", "only in a tide.io/v1alpha1 object", 7));
    wl_problems_fini(&p);
}

TEST(workload_haproxy_backend_example_parses_every_field) {
    static workload_spec s;
    wl_problems p;
    wl_problems_init(&p);
    int rc = wl_load(test_fixture("../../deploy/examples/haproxy-backend.yaml"), &s, &p);
    if (rc != 0) {
        char *txt = wl_problems_format(&p);
        printf("%s", txt);
        free(txt);
    }
    wl_problems_fini(&p);
    T_EQ_INT(rc, 0);
    const wl_target *t = &s.target;
    T_EQ_INT(t->kind, WL_TARGET_HAPROXY_BACKEND);
    T_EQ_INT(t->has_executor, 1);
    T_EQ_STR(t->name, "web");
    T_EQ_STR(t->haproxy_node, "lb1");
    T_EQ_STR(t->haproxy_socket, "/run/haproxy/admin.sock");
    T_EQ_STR(t->haproxy_prefix, "r");
    T_EQ_INT(t->n_nodes, 2);
    T_EQ_STR(t->nodes[1], "app2");
    T_EQ_STR(t->node_addr[1], "10.0.0.12");
    const wl_replica_template *r = &t->replica;
    T_EQ_INT(r->n_command, 5);
    T_EQ_STR(r->command[0], "/srv/web/bin/server");
    T_EQ_STR(r->command[2], "0.0.0.0:{port}");
    T_EQ_INT(r->n_env, 2);
    T_EQ_STR(r->env[1].name, "WEB_NODE");
    T_EQ_STR(r->env[1].value, "{node}");
    T_EQ_STR(r->cwd, "/srv/web");
    T_EQ_STR(r->user, "web");
    T_NEAR(r->cpu_cores, 1.5, 0);
    T_EQ_INT(r->memory_bytes, 512LL << 20);
    T_EQ_STR(r->readiness_path, "/healthz");
    T_EQ_INT(r->readiness_timeout_seconds, 30);
    T_EQ_STR(r->stop_signal, "TERM");
    T_EQ_INT(r->grace_seconds, 10);
    T_EQ_INT(r->port_first, 8100);
    T_EQ_INT(r->port_last, 8119);
}

TEST(workload_haproxy_backend_defaults_and_preview_only_form) {
    static workload_spec s;
    const char *y = "apiVersion: tide/v1\nkind: Workload\nmetadata: {name: w}\nspec:\n"
                    "  target:\n    kind: HAProxyBackend\n    name: be\n"
                    "    haproxy: {node: lb, socket: /run/h.sock, serverPrefix: r}\n"
                    "    nodes: [n1]\n"
                    "    replica:\n      command: [python3, app.py, '{port}']\n"
                    "      ports: {first: 9000, last: 9003}\n"
                    "  maxReplicas: 4\n";
    T_EQ_INT(wl_parse(y, strlen(y), &s, NULL), 0);
    T_EQ_INT(s.target.has_executor, 1);
    T_EQ_STR(s.target.node_addr[0], "");
    T_EQ_STR(s.target.replica.stop_signal, "TERM");
    T_EQ_INT(s.target.replica.grace_seconds, 10);
    T_EQ_INT(s.target.replica.readiness_timeout_seconds, 30);
    T_EQ_INT(s.target.replica.memory_bytes, 0);
    T_NEAR(s.target.replica.cpu_cores, 0, 0);
    /* without haproxy and replica: valid, preview only */
    T_EQ_INT(wl_load(test_fixture("workload/hpa.yaml"), &s, NULL), 0);
    T_EQ_INT(s.target.kind, WL_TARGET_HAPROXY_BACKEND);
    T_EQ_INT(s.target.has_executor, 0);
}

TEST(workload_haproxy_backend_problems_name_their_field) {
    static workload_spec s;
    wl_problems p;
    wl_problems_init(&p);
    const char *y = "apiVersion: tide/v1\nkind: Workload\nmetadata: {name: w}\nspec:\n" /* 1-4 */
                    "  target:\n    kind: HAProxyBackend\n    name: be\n"               /* 5-7 */
                    "    haproxy: {node: 'l b', socket: run/h.sock}\n"                  /* 8 */
                    "    nodes: [n1, {name: n2, address: example.org}, n1]\n"           /* 9 */
                    "    replica:\n"                                                    /* 10 */
                    "      command: [/bin/app, '{prot}']\n"                             /* 11 */
                    "      env: {GOOD: '{id}', 1BAD: x}\n"                              /* 12 */
                    "      cwd: srv\n"                                                  /* 13 */
                    "      cpu: 0\n"                                                    /* 14 */
                    "      memory: 12 parsecs\n"                                        /* 15 */
                    "      readiness: {path: healthz, timeoutSeconds: 0}\n"             /* 16 */
                    "      stopSignal: STOP\n"                                          /* 17 */
                    "      gracePeriodSeconds: -1\n"                                    /* 18 */
                    "      ports: {first: 9000, last: 8999}\n"                          /* 19 */
                    "      colour: red\n"                                               /* 20 */
                    "  maxReplicas: 4\n";
    T_EQ_INT(wl_parse(y, strlen(y), &s, &p), -22);
    char *txt = wl_problems_format(&p);
    printf("%s", txt);
    free(txt);
    int ok = has_problem(&p, "spec.target.haproxy", "missing field \"serverPrefix\"", 8) &&
             has_problem(&p, "spec.target.haproxy.node", "node name", 8) &&
             has_problem(&p, "spec.target.haproxy.socket", "absolute path", 8) &&
             has_problem(&p, "spec.target.nodes[1].address", "IPv4 or IPv6", 9) &&
             has_problem(&p, "spec.target.nodes[2]", "listed twice", 9) &&
             has_problem(&p, "spec.target.replica.command[1]", "prot", 11) &&
             has_problem(&p, "spec.target.replica.env", "variable names", 12) &&
             has_problem(&p, "spec.target.replica.cwd", "absolute path", 13) &&
             has_problem(&p, "spec.target.replica.cpu", "must be in", 14) &&
             has_problem(&p, "spec.target.replica.memory", "suffix", 15) &&
             has_problem(&p, "spec.target.replica.readiness.path", "start with '/'", 16) &&
             has_problem(&p, "spec.target.replica.readiness.timeoutSeconds", "1..3600", 16) &&
             has_problem(&p, "spec.target.replica.stopSignal", "TERM", 17) &&
             has_problem(&p, "spec.target.replica.gracePeriodSeconds", "0..3600", 18) &&
             has_problem(&p, "spec.target.replica.ports.last", "below first", 19) &&
             has_problem(&p, "spec.target.replica.colour", "unknown field", 20);
    wl_problems_fini(&p);
    T_ASSERT(ok);

    /* haproxy without replica; ports too few for maxReplicas; replica on another kind */
    const char *y2 = "apiVersion: tide/v1\nkind: Workload\nmetadata: {name: w}\nspec:\n"
                     "  target:\n    kind: HAProxyBackend\n    name: be\n"
                     "    haproxy: {node: lb, socket: /h.sock, serverPrefix: r}\n"
                     "  maxReplicas: 4\n";
    wl_problems_init(&p);
    T_EQ_INT(wl_parse(y2, strlen(y2), &s, &p), -22);
    T_ASSERT(has_problem(&p, "spec.target", "needs \"replica\"", 6));
    wl_problems_fini(&p);
    const char *y3 = "apiVersion: tide/v1\nkind: Workload\nmetadata: {name: w}\nspec:\n"
                     "  target:\n    kind: HAProxyBackend\n    name: be\n"
                     "    haproxy: {node: lb, socket: /h.sock, serverPrefix: r}\n"
                     "    nodes: [a, b]\n"
                     "    replica: {command: [/bin/app], ports: {first: 9000, last: 9001}}\n"
                     "  maxReplicas: 5\n";
    wl_problems_init(&p);
    T_EQ_INT(wl_parse(y3, strlen(y3), &s, &p), -22);
    T_ASSERT(has_problem(&p, "spec.target.replica.ports", "cannot hold maxReplicas (5)", 0));
    T_EQ_INT(p.n, 1);
    wl_problems_fini(&p);
    const char *y4 = "apiVersion: tide/v1\nkind: Workload\nmetadata: {name: w}\nspec:\n"
                     "  target:\n    kind: Deployment\n    name: be\n"
                     "    replica: {command: [/bin/app], ports: {first: 9000, last: 9001}}\n"
                     "  maxReplicas: 5\n";
    wl_problems_init(&p);
    T_EQ_INT(wl_parse(y4, strlen(y4), &s, &p), -22);
    T_ASSERT(has_problem(&p, "spec.target.replica", "only for kind HAProxyBackend", 8));
    wl_problems_fini(&p);
}

/* A SystemdUnit target needs a template unit and nodes, and takes no namespace (these checks
 * once sat behind an else-if that no SystemdUnit spec could reach). */
TEST(workload_systemd_unit_target_needs_template_unit_and_nodes) {
    static workload_spec s;
    wl_problems p;
    const char *bad = "apiVersion: tide/v1\nkind: Workload\nmetadata: {name: w}\nspec:\n"
                      "  target:\n    kind: SystemdUnit\n    namespace: x\n" /* 5-7 */
                      "    unit: web.service\n"                              /* 8 */
                      "  maxReplicas: 4\n";
    wl_problems_init(&p);
    T_EQ_INT(wl_parse(bad, strlen(bad), &s, &p), -22);
    T_ASSERT(has_problem(&p, "spec.target.unit", "template unit", 8));
    T_ASSERT(has_problem(&p, "spec.target", "needs \"nodes\"", 6));
    T_ASSERT(has_problem(&p, "spec.target.namespace", "only for Kubernetes kinds", 7));
    wl_problems_fini(&p);
    const char *none = "apiVersion: tide/v1\nkind: Workload\nmetadata: {name: w}\nspec:\n"
                       "  target: {kind: SystemdUnit}\n  maxReplicas: 4\n";
    wl_problems_init(&p);
    T_EQ_INT(wl_parse(none, strlen(none), &s, &p), -22);
    T_ASSERT(has_problem(&p, "spec.target", "needs \"unit\"", 5));
    wl_problems_fini(&p);
    const char *good = "apiVersion: tide/v1\nkind: Workload\nmetadata: {name: w}\nspec:\n"
                       "  target: {kind: SystemdUnit, unit: web@.service, nodes: [n1, n2]}\n"
                       "  maxReplicas: 4\n";
    wl_problems_init(&p);
    T_EQ_INT(wl_parse(good, strlen(good), &s, &p), 0);
    T_EQ_INT(s.target.n_nodes, 2);
    wl_problems_fini(&p);
}

TEST(workload_warmup_block_for_haproxy_backend_and_kubernetes) {
    static workload_spec s;
    /* HAProxyBackend: in the replica template; durations in seconds, kept in ms */
    const char *y = "apiVersion: tide/v1\nkind: Workload\nmetadata: {name: w}\nspec:\n"
                    "  target:\n    kind: HAProxyBackend\n    name: be\n"
                    "    haproxy: {node: lb, socket: /run/h.sock, serverPrefix: r}\n"
                    "    nodes: [n1]\n"
                    "    replica:\n      command: [python3, app.py, '{port}']\n"
                    "      ports: {first: 9000, last: 9003}\n"
                    "      warmup:\n        method: POST\n        path: /warm?x=1\n"
                    "        body: '{\"k\": 1}'\n"
                    "        headers: {Content-Type: application/json, X-Warm: 'yes'}\n"
                    "        rate: 50\n        startRate: 5\n        durationSeconds: 1.5\n"
                    "        rampSeconds: 0.5\n        maxInflight: 4\n"
                    "        requestTimeoutSeconds: 0.25\n"
                    "  maxReplicas: 4\n";
    T_EQ_INT(wl_parse(y, strlen(y), &s, NULL), 0);
    const wl_warmup *w = &s.target.warmup;
    T_EQ_INT(w->enabled, 1);
    T_EQ_STR(w->method, "POST");
    T_EQ_STR(w->path, "/warm?x=1");
    T_EQ_INT(w->has_body, 1);
    T_EQ_STR(w->body, "{\"k\": 1}");
    T_EQ_INT(w->n_headers, 2);
    T_EQ_STR(w->headers[0], "Content-Type: application/json");
    T_EQ_STR(w->headers[1], "X-Warm: yes");
    T_NEAR(w->rate, 50, 0);
    T_NEAR(w->start_rate, 5, 0);
    T_EQ_INT(w->duration_ms, 1500);
    T_EQ_INT(w->ramp_ms, 500);
    T_EQ_INT(w->max_inflight, 4);
    T_EQ_INT(w->request_timeout_ms, 250);
    /* Deployment (scaleTargetRef or target): spec.warmup, defaults as the agent's */
    const char *k = "apiVersion: tide.io/v1alpha1\nkind: Workload\nmetadata: {name: w}\nspec:\n"
                    "  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}\n"
                    "  warmup: {}\n  maxReplicas: 4\n";
    T_EQ_INT(wl_parse(k, strlen(k), &s, NULL), 0);
    T_EQ_INT(w->enabled, 1);
    T_EQ_STR(w->method, "GET");
    T_EQ_STR(w->path, "/");
    T_NEAR(w->rate, 20, 0);
    T_NEAR(w->start_rate, 0, 0); /* the agent's rate / 10 */
    T_EQ_INT(w->duration_ms, 2000);
    T_EQ_INT(w->ramp_ms, -1);
    T_EQ_INT(w->max_inflight, 16);
    T_EQ_INT(w->request_timeout_ms, 2000);
    T_EQ_INT(w->n_headers, 0);
    T_EQ_INT(w->has_body, 0);
    /* without the block: none */
    const char *n = "apiVersion: tide/v1\nkind: Workload\nmetadata: {name: w}\nspec:\n"
                    "  target: {kind: StatefulSet, name: db}\n  maxReplicas: 4\n";
    T_EQ_INT(wl_parse(n, strlen(n), &s, NULL), 0);
    T_EQ_INT(s.target.warmup.enabled, 0);

    /* every bad field by its path */
    wl_problems p;
    wl_problems_init(&p);
    const char *b = "apiVersion: tide/v1\nkind: Workload\nmetadata: {name: w}\nspec:\n" /* 1-4 */
                    "  target:\n    kind: Deployment\n    name: web\n"                  /* 5-7 */
                    "  warmup:\n"                                                       /* 8 */
                    "    method: get\n"                                                 /* 9 */
                    "    path: warm\n"                                                  /* 10 */
                    "    headers: {'Bad Name': x}\n"                                    /* 11 */
                    "    rate: 0\n"                                                     /* 12 */
                    "    durationSeconds: 2\n"                                          /* 13 */
                    "    rampSeconds: 3\n"                                              /* 14 */
                    "    maxInflight: 0\n"                                              /* 15 */
                    "    requestTimeoutSeconds: 0\n"                                    /* 16 */
                    "    colour: red\n"                                                 /* 17 */
                    "  maxReplicas: 4\n";
    T_EQ_INT(wl_parse(b, strlen(b), &s, &p), -22);
    char *txt = wl_problems_format(&p);
    printf("%s", txt);
    free(txt);
    int ok = has_problem(&p, "spec.warmup.method", "HTTP method", 9) &&
             has_problem(&p, "spec.warmup.path", "start with '/'", 10) &&
             has_problem(&p, "spec.warmup.headers.Bad Name", "header name", 11) &&
             has_problem(&p, "spec.warmup.rate", "must be in", 12) &&
             has_problem(&p, "spec.warmup.rampSeconds", "durationSeconds", 14) &&
             has_problem(&p, "spec.warmup.maxInflight", "1..10000", 15) &&
             has_problem(&p, "spec.warmup.requestTimeoutSeconds", "must be in", 16) &&
             has_problem(&p, "spec.warmup.colour", "unknown field", 17);
    wl_problems_fini(&p);
    T_ASSERT(ok);
    /* in the wrong place */
    const char *h = "apiVersion: tide/v1\nkind: Workload\nmetadata: {name: w}\nspec:\n"
                    "  target:\n    kind: HAProxyBackend\n    name: be\n  warmup: {}\n"
                    "  maxReplicas: 4\n";
    wl_problems_init(&p);
    T_EQ_INT(wl_parse(h, strlen(h), &s, &p), -22);
    T_ASSERT(has_problem(&p, "spec.warmup", "spec.target.replica.warmup", 8));
    wl_problems_fini(&p);
    const char *sr = "apiVersion: tide/v1\nkind: Workload\nmetadata: {name: w}\nspec:\n"
                     "  target:\n    kind: Deployment\n    name: web\n"
                     "  warmup: {rate: 5, startRate: 10}\n  maxReplicas: 4\n";
    wl_problems_init(&p);
    T_EQ_INT(wl_parse(sr, strlen(sr), &s, &p), -22);
    T_ASSERT(has_problem(&p, "spec.warmup.startRate", "must not exceed rate", 8));
    wl_problems_fini(&p);
}

TEST(workload_haproxy_backend_template_bounded_by_longest_id) {
    static workload_spec s;
    static char y[8192];
    char word[80] = "";
    for (int i = 0; i < 16; i++)
        strcat(word, "{id}");
    int off = snprintf(y, sizeof y,
                       "apiVersion: tide/v1\nkind: Workload\nmetadata: {name: w}\nspec:\n"
                       "  target:\n    kind: HAProxyBackend\n    name: be\n"
                       "    haproxy: {node: lb, socket: /h.sock, serverPrefix: r}\n"
                       "    nodes: [a]\n    replica:\n      ports: {first: 9000, last: 9009}\n"
                       "      command: [/bin/app");
    /* 16 words of 16 ids: each fits the agent's 4096 bytes, together they pass its total */
    for (int i = 0; i < 16; i++)
        off += snprintf(y + off, sizeof y - (size_t)off, ", '%s'", word);
    snprintf(y + off, sizeof y - (size_t)off, "]\n  maxReplicas: 4\n");
    wl_problems p;
    wl_problems_init(&p);
    T_EQ_INT(wl_parse(y, strlen(y), &s, &p), -22);
    T_ASSERT(has_problem(&p, "spec.target.replica", "with the longest replica id", 0));
    T_EQ_INT(p.n, 1);
    wl_problems_fini(&p);
    /* one word of 17 ids is longer than one word may be */
    snprintf(y, sizeof y,
             "apiVersion: tide/v1\nkind: Workload\nmetadata: {name: w}\nspec:\n"
             "  target:\n    kind: HAProxyBackend\n    name: be\n"
             "    haproxy: {node: lb, socket: /h.sock, serverPrefix: r}\n"
             "    nodes: [a]\n    replica:\n      ports: {first: 9000, last: 9009}\n"
             "      command: [/bin/app, '%s{id}']\n  maxReplicas: 4\n",
             word);
    wl_problems_init(&p);
    T_EQ_INT(wl_parse(y, strlen(y), &s, &p), -22);
    T_ASSERT(has_problem(&p, "spec.target.replica.command[1]", "253-byte replica id", 12));
    T_EQ_INT(p.n, 1);
    wl_problems_fini(&p);
}
