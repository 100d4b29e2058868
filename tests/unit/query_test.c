/* query_test.c: selector parsing (good and bad), value/time formatting and parsing, range
 * evaluation with matchers and sum/avg by over an in-memory store, Prometheus JSON. */
#include "query/promql.h"
#include "query/query.h"
#include "test.h"
#include "store/tsdb.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>

TEST(query_parse_accepts_the_subset) {
    char err[256];
    query_expr *e;
    T_EQ_INT(query_parse("rps", &e, err, sizeof err), 0);
    T_EQ_INT(e->nm, 1);
    T_EQ_STR(e->m[0].name, "__name__");
    query_expr_free(e);
    T_EQ_INT(
        query_parse(" sum by (app, zone) ( rps{app=~\"w.*\", zone!='b',} ) ", &e, err, sizeof err),
        0);
    T_EQ_INT(e->agg, QUERY_AGG_SUM);
    T_EQ_INT(e->nby, 2);
    T_EQ_STR(e->by[1], "zone");
    T_EQ_INT(e->nm, 3);
    T_EQ_INT(e->m[2].op, QUERY_NE);
    char *pq = query_selector_promql(e);
    T_EQ_STR(pq, "rps{app=~\"w.*\",zone!=\"b\"}");
    free(pq);
    query_expr_free(e);
    T_EQ_INT(query_parse("avg(node:cpu{a!~\"x\"}) by (a)", &e, err, sizeof err), 0);
    T_EQ_INT(e->agg, QUERY_AGG_AVG);
    T_EQ_INT(e->nby, 1);
    query_expr_free(e);
    T_EQ_INT(query_parse("{__name__=\"sum\"}", &e, err, sizeof err), 0);
    query_expr_free(e);
    T_EQ_INT(query_parse("sum", &e, err, sizeof err), -EINVAL); /* as in PromQL */
    T_ASSERT(strstr(err, "keyword sum"));
}

TEST(query_parse_rejects_with_column_and_reason) {
    char err[256];
    query_expr *e;
    T_EQ_INT(query_parse("rps{app=\"web\"", &e, err, sizeof err), -EINVAL);
    T_ASSERT(strstr(err, "column 14") && strstr(err, "expected ',' or '}'"));
    T_EQ_INT(query_parse("rps{app~\"x\"}", &e, err, sizeof err), -EINVAL);
    T_ASSERT(strstr(err, "after label app"));
    T_EQ_INT(query_parse("{app=\"\"}", &e, err, sizeof err), -EINVAL);
    T_ASSERT(strstr(err, "does not match"));
    T_EQ_INT(query_parse("rate(rps[5m])", &e, err, sizeof err), -EINVAL);
    T_ASSERT(strstr(err, "column 5"));
    T_EQ_INT(query_parse("rps{a=~\"(\"}", &e, err, sizeof err), -EINVAL);
    T_ASSERT(strstr(err, "invalid regular expression"));
    T_EQ_INT(query_parse("rps{a=~\"x**\"}", &e, err, sizeof err), -EINVAL);
    T_ASSERT(strstr(err, "bad repetition operator"));
    T_EQ_INT(query_parse("rps{a=~\"(x{1000}){10}\"}", &e, err, sizeof err), -EINVAL);
    T_ASSERT(strstr(err, "invalid regular expression") && strstr(err, "repetition"));
    T_EQ_INT(query_parse("rps{a=~\"[*+]+x{2,3}\\\\+\"}", &e, err, sizeof err), 0);
    query_expr_free(e);
    T_EQ_INT(query_parse("", &e, err, sizeof err), -EINVAL);
    T_EQ_INT(query_parse("sum by (a (rps)", &e, err, sizeof err), -EINVAL);
    T_EQ_INT(query_parse("rps{a=\"\\q\"}", &e, err, sizeof err), -EINVAL);
    T_ASSERT(strstr(err, "unknown escape"));
}

TEST(query_format_value_matches_prometheus) {
    char b[64];
    query_format_value(42, b, sizeof b);
    T_EQ_STR(b, "42");
    query_format_value(0.1, b, sizeof b);
    T_EQ_STR(b, "0.1");
    query_format_value(1e21, b, sizeof b);
    T_EQ_STR(b, "1000000000000000000000");
    query_format_value(-1.5e-7, b, sizeof b);
    T_EQ_STR(b, "-0.00000015");
    query_format_value(1.0 / 3, b, sizeof b);
    T_EQ_STR(b, "0.3333333333333333");
    query_format_value(NAN, b, sizeof b);
    T_EQ_STR(b, "NaN");
    query_format_value(-INFINITY, b, sizeof b);
    T_EQ_STR(b, "-Inf");
}

TEST(query_parse_time_and_duration) {
    int64_t ms;
    T_EQ_INT(query_parse_time("1700000000", &ms), 0);
    T_EQ_INT(ms, 1700000000000LL);
    T_EQ_INT(query_parse_time("1700000000.25", &ms), 0);
    T_EQ_INT(ms, 1700000000250LL);
    T_EQ_INT(query_parse_time("2023-11-14T22:13:20Z", &ms), 0);
    T_EQ_INT(ms, 1700000000000LL);
    T_EQ_INT(query_parse_time("2023-11-15T00:13:20.5+02:00", &ms), 0);
    T_EQ_INT(ms, 1700000000500LL);
    T_EQ_INT(query_parse_time("yesterday", &ms), -EINVAL);
    T_EQ_INT(query_parse_time("2023-13-01T00:00:00Z", &ms), -EINVAL);
    T_EQ_INT(query_parse_duration("60", &ms), 0);
    T_EQ_INT(ms, 60000);
    T_EQ_INT(query_parse_duration("1h30m", &ms), 0);
    T_EQ_INT(ms, 5400000);
    T_EQ_INT(query_parse_duration("250ms", &ms), 0);
    T_EQ_INT(ms, 250);
    T_EQ_INT(query_parse_duration("0", &ms), -EINVAL);
    T_EQ_INT(query_parse_duration("5x", &ms), -EINVAL);
}

static tsdb *fixture(void) {
    tsdb *db;
    char err[128];
    tsdb_options o = {0};
    if (tsdb_open(&db, &o, err, sizeof err)) return NULL;
    const char *apps[] = {"web", "web", "db"}, *zones[] = {"a", "b", "a"};
    for (int i = 0; i < 3; i++) {
        tsdb_label l[3] = {{"__name__", "rps"}, {"app", apps[i]}, {"zone", zones[i]}};
        uint32_t id;
        if (tsdb_series(db, l, 3, &id)) return NULL;
        for (int k = 0; k < 10; k++) {
            int64_t ts = 1700000000000LL + k * 60000;
            double v = (i + 1) * 10 + k;
            if (k == 5 && i == 1) continue; /* a gap: the lookback carries the previous value */
            tsdb_append(db, NULL, 0, id, &ts, &v, 1);
        }
    }
    return db;
}

TEST(query_range_selects_and_aggregates) {
    tsdb *db = fixture();
    T_ASSERT(db);
    query_ctx ctx = {.db = db};
    query_result r;
    char err[256];
    int64_t s = 1700000000000LL, e = s + 9 * 60000;
    T_EQ_INT(query_range(&ctx, "rps{app=\"web\"}", s, e, 60000, &r, err, sizeof err), 0);
    T_EQ_INT(r.n, 2);
    T_EQ_INT(r.nsteps, 10);
    T_EQ_STR(r.s[0].values[2], "a");
    T_NEAR(r.s[1].v[5], 24, 0); /* carried from minute 4 */
    size_t points = 0;          /* every point of a store-only query is counted as the store's */
    for (size_t i = 0; i < r.n; i++)
        for (size_t k = 0; k < r.nsteps; k++)
            points += !isnan(r.s[i].v[k]);
    T_ASSERT(points > 0);
    T_EQ_INT(r.store_points, points);
    T_EQ_INT(r.prom_points, 0);
    query_result_fini(&r);
    T_EQ_INT(query_range(&ctx, "sum by (app) (rps)", s, e, 60000, &r, err, sizeof err), 0);
    T_EQ_INT(r.n, 2);
    T_EQ_STR(r.s[0].names[0], "app");
    T_EQ_STR(r.s[0].values[0], "db");
    T_NEAR(r.s[1].v[3], 13 + 23, 0);
    char *j = query_result_json(&r);
    T_ASSERT(strstr(
        j, "{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":[{\"metric\":{"
           "\"app\":\"db\"},\"values\":[[1700000000,\"30\"],[1700000060,\"31\"]"));
    free(j);
    query_result_fini(&r);
    T_EQ_INT(query_range(&ctx, "avg(rps{zone=~\"a|b\", app!~\"d.*\"})", s, e, 120000, &r, err,
                         sizeof err),
             0);
    T_EQ_INT(r.n, 1);
    T_EQ_INT(r.s[0].nlabels, 0);
    T_EQ_INT(r.nsteps, 5);
    T_NEAR(r.s[0].v[1], (12 + 22) / 2.0, 0);
    query_result_fini(&r);
    T_EQ_INT(query_range(&ctx, "nothing", s, e, 60000, &r, err, sizeof err), 0);
    T_EQ_INT(r.n, 0);
    j = query_result_json(&r);
    T_EQ_STR(j, "{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":[]}}");
    free(j);
    query_result_fini(&r);
    T_EQ_INT(query_range(&ctx, "rps", s, s + 20000 * 60000LL, 60000, &r, err, sizeof err), -EINVAL);
    T_ASSERT(strstr(err, "11,000"));
    T_EQ_INT(query_range(&ctx, "rps{", s, e, 60000, &r, err, sizeof err), -EINVAL);
    T_ASSERT(strstr(err, "parse error at char 5"));
    free(query_error_json("bad_data", "x"));
    j = query_error_json("bad_data", "caf\xc3\xa9 \xff\x01");
    T_EQ_STR(j, "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"caf\xc3\xa9 "
                "\\ufffd\\u0001\"}");
    free(j);
    j = query_error_json("bad_data", "x \"y\"");
    T_EQ_STR(j, "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"x \\\"y\\\"\"}");
    free(j);
    tsdb_close(db);
}

TEST(query_range_refuses_results_too_large_to_hold) {
    tsdb *db;
    char err[256];
    tsdb_options o = {0};
    T_EQ_INT(tsdb_open(&db, &o, err, sizeof err), 0);
    for (int i = 0; i < 1900; i++) {
        char app[16];
        snprintf(app, sizeof app, "a%d", i);
        tsdb_label l[2] = {{"__name__", "big"}, {"app", app}};
        uint32_t id;
        T_EQ_INT(tsdb_series(db, l, 2, &id), 0);
        int64_t ts = 1000000;
        double v = i;
        T_EQ_INT(tsdb_append(db, NULL, 0, id, &ts, &v, 1), 0);
    }
    query_ctx ctx = {.db = db};
    query_result r;
    /* 1,900 series x 11,000 steps is above the limit; summed it is one series */
    T_EQ_INT(query_range(&ctx, "big", 1000000, 1000000 + 10999 * 1000, 1000, &r, err, sizeof err),
             -E2BIG);
    T_ASSERT(strstr(err, "too many samples"));
    /* the budget counts what is held at once: the 1,900 selected series before the sum */
    promql_limits lim = {.max_samples = 25000000};
    ctx.lim = &lim;
    T_EQ_INT(
        query_range(&ctx, "sum(big)", 1000000, 1000000 + 10999 * 1000, 1000, &r, err, sizeof err),
        0);
    T_EQ_INT(r.n, 1);
    T_NEAR(r.s[0].v[0], 1899.0 * 1900 / 2, 0);
    query_result_fini(&r);
    tsdb_close(db);
}

/* Issue 18: a regex that backtracks exponentially froze the loop. Matchers are RE2 now: the
 * issue's pattern is refused with a message naming it (RE2 caps nested repetition at 1,000),
 * a still heavy one is matched in linear time against 5,000 255-byte label values, and RE2's
 * syntax works as Prometheus's: (?i), lazy quantifiers, \d, fully anchored. */
TEST(slow_regex_is_refused_or_linear) {
    char err[400];
    query_expr *e;
    T_EQ_INT(query_parse("load_metric{inst=~\"(.{0,100}){0,100}(.*)*\"}", &e, err, sizeof err),
             -EINVAL);
    T_ASSERT(strstr(err, "invalid regular expression") && strstr(err, "(.{0,100}){0,100}(.*)*"));
    pq_node *n;
    T_EQ_INT(promql_parse("load_metric{inst=~\"(.{0,100}){0,100}(.*)*\"}", &n, err, sizeof err),
             -EINVAL);
    T_ASSERT(strstr(err, "invalid regular expression"));
    tsdb *db;
    tsdb_options o = {0};
    T_EQ_INT(tsdb_open(&db, &o, err, sizeof err), 0);
    char val[256];
    memset(val, 'x', sizeof val - 1);
    val[sizeof val - 1] = 0;
    for (int i = 0; i < 5000; i++) {
        snprintf(val, 16, "%05uxxxxxxxxxx", (unsigned)i % 100000u);
        val[15] = 'x';
        tsdb_label l[2] = {{"__name__", "load_metric"}, {"inst", val}};
        uint32_t id;
        T_EQ_INT(tsdb_series(db, l, 2, &id), 0);
        int64_t ts = 1000000;
        double v = 1;
        T_EQ_INT(tsdb_append(db, NULL, 0, id, &ts, &v, 1), 0);
    }
    query_ctx ctx = {.db = db};
    query_result r;
    T_EQ_INT(query_range(&ctx, "count(load_metric{inst=~\"(.{0,10}){0,100}(.*)*y\"})", 1000000,
                         1000000, 1000, &r, err, sizeof err),
             0);
    T_EQ_INT(r.n, 0); /* no value ends in y: every candidate split was tried, in linear time */
    query_result_fini(&r);
    T_EQ_INT(query_range(&ctx, "count(load_metric{inst=~\"(?i)0000\\\\dX+?\"})", 1000000, 1000000,
                         1000, &r, err, sizeof err),
             0);
    T_EQ_INT(r.n, 1);
    T_NEAR(r.s[0].v[0], 10, 0); /* 00000xxx... to 00009xxx...: \d is a digit, (?i) X is x */
    query_result_fini(&r);
    /* anchored: a partial match is no match */
    T_EQ_INT(query_range(&ctx, "count(load_metric{inst=~\"0000\"})", 1000000, 1000000, 1000, &r,
                         err, sizeof err),
             0);
    T_EQ_INT(r.n, 0);
    query_result_fini(&r);
    tsdb_close(db);
}

/* Issue 18: a query's memory is bounded by its sample budget, its time by a deadline, and a
 * cancel flag stops it. */
TEST(query_limits_budget_deadline_cancel) {
    tsdb *db;
    char err[400];
    tsdb_options o = {0};
    T_EQ_INT(tsdb_open(&db, &o, err, sizeof err), 0);
    for (int i = 0; i < 200; i++) {
        char inst[16];
        snprintf(inst, sizeof inst, "i%d", i);
        tsdb_label l[2] = {{"__name__", "m"}, {"inst", inst}};
        uint32_t id;
        T_EQ_INT(tsdb_series(db, l, 2, &id), 0);
        for (int k = 0; k < 100; k++) {
            int64_t ts = 1000000 + k * 15000;
            double v = k;
            T_EQ_INT(tsdb_append(db, NULL, 0, id, &ts, &v, 1), 0);
        }
    }
    promql_limits lim = {.max_samples = 10000};
    query_ctx ctx = {.db = db, .lim = &lim};
    query_result r;
    /* 200 series x 100 steps = 20,000 values held: over the budget */
    T_EQ_INT(query_range(&ctx, "m", 1000000, 1000000 + 99 * 15000, 15000, &r, err, sizeof err),
             -E2BIG);
    T_ASSERT(strstr(err, "too many samples"));
    lim.max_samples = 0;
    lim.deadline_mono_ms = tide_now_mono_ms() - 1; /* already past */
    T_EQ_INT(query_range(&ctx, "sum(rate(m[5m]))", 1000000, 1000000 + 10000 * 1000, 1000, &r, err,
                         sizeof err),
             -ETIMEDOUT);
    T_ASSERT(strstr(err, "timed out"));
    atomic_int cancel = 1;
    lim.deadline_mono_ms = 0;
    lim.cancel = &cancel;
    T_EQ_INT(
        query_range(&ctx, "sum(m)", 1000000, 1000000 + 10000 * 1000, 1000, &r, err, sizeof err),
        -ECANCELED);
    tsdb_close(db);
}

/* Instant queries of scalars, strings and range vectors have Prometheus's result types; a NaN
 * a query computes is a value ("NaN"), not a missing point. */
TEST(promql_result_types_and_nan_values) {
    tsdb *db = fixture();
    T_ASSERT(db);
    query_ctx ctx = {.db = db};
    query_result r;
    char err[256];
    int64_t s = 1700000000000LL;
    T_EQ_INT(query_range(&ctx, "1+1", s, s, 1000, &r, err, sizeof err), 0);
    char *j = query_result_vector_json(&r);
    T_EQ_STR(j,
             "{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\",\"result\":[1700000000,"
             "\"2\"]}}");
    free(j);
    query_result_fini(&r);
    T_EQ_INT(query_range(&ctx, "\"hi\"", s, s, 1000, &r, err, sizeof err), 0);
    j = query_result_vector_json(&r);
    T_ASSERT(strstr(j, "\"resultType\":\"string\",\"result\":[1700000000,\"hi\"]"));
    free(j);
    query_result_fini(&r);
    T_EQ_INT(
        query_range(&ctx, "rps{app=\"db\"}[2m]", s + 300000, s + 300000, 1000, &r, err, sizeof err),
        0);
    j = query_result_vector_json(&r);
    T_ASSERT(strstr(j, "\"resultType\":\"matrix\""));
    T_ASSERT(strstr(j, "\"values\":[[1700000180,\"33\"],[1700000240,\"34\"],[1700000300,\"35\"]]"));
    free(j);
    query_result_fini(&r);
    T_EQ_INT(query_range(&ctx, "rps{app=\"db\"} - rps{app=\"db\"} / 0 * 0", s, s, 1000, &r, err,
                         sizeof err),
             0);
    j = query_result_vector_json(&r);
    T_ASSERT(strstr(j, "\"value\":[1700000000,\"NaN\"]"));
    free(j);
    query_result_fini(&r);
    T_EQ_INT(query_range(&ctx, "rps[5m]", s, s + 60000, 60000, &r, err, sizeof err), -EINVAL);
    T_ASSERT(strstr(err, "range vector"));
    tsdb_close(db);
}

/* The phantom values of issue 17: a 10-minute bucket stamped at its start showed a value up to
 * ten minutes before the first sample. Now no step before the first sample has a value, at
 * any step (so at any resolution the store reads). */
TEST(query_no_value_before_first_sample) {
    tsdb *db;
    char err[256];
    tsdb_options o = {0};
    T_EQ_INT(tsdb_open(&db, &o, err, sizeof err), 0);
    tsdb_label l[1] = {{"__name__", "late"}};
    uint32_t id;
    T_EQ_INT(tsdb_series(db, l, 1, &id), 0);
    int64_t t0 = 1700000000000LL - 1700000000000LL % 600000, first = t0 + 8 * 60000 + 34000;
    for (int k = 0; k < 120; k++) {
        int64_t ts = first + k * 30000;
        double v = k;
        T_EQ_INT(tsdb_append(db, NULL, 0, id, &ts, &v, 1), 0);
    }
    query_ctx ctx = {.db = db};
    int64_t steps[] = {15000, 60000, 600000, 6000000};
    for (size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
        query_result r;
        T_EQ_INT(
            query_range(&ctx, "late", t0 - 3600000, t0 + 7200000, steps[i], &r, err, sizeof err),
            0);
        T_EQ_INT(r.n, 1);
        for (size_t k = 0; k < r.nsteps; k++) {
            int64_t t = r.start_ms + (int64_t)k * r.step_ms;
            if (t < first && !isnan(r.s[0].v[k]))
                T_FAIL("step %lld: value %g before the first sample at %lld", (long long)t,
                       r.s[0].v[k], (long long)first);
        }
        query_result_fini(&r);
    }
    tsdb_close(db);
}
