/* query_test.c: selector parsing (good and bad), value/time formatting and parsing, range
 * evaluation with matchers and sum/avg by over an in-memory store, Prometheus JSON. */
#include "query/promql.h"
#include "query/query.h"
#include "test.h"
#include "store/tsdb.h"

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
