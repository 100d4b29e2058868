/* query.h: Tide's query language subset and its range evaluation over the store and
 * Prometheus history.
 *
 * Grammar (a subset of PromQL):
 *   expr     := selector | agg
 *   agg      := ("sum" | "avg") [by] "(" selector ")" [by]
 *   by       := "by" "(" [label {"," label}] ")"
 *   selector := metric ["{" [matcher {"," matcher} [","]] "}"] | "{" matcher {"," matcher} "}"
 *   matcher  := label ("=" | "!=" | "=~" | "!~") string     (regexes: RE2 syntax, fully anchored)
 *   string   := '"' ... '"' | "'" ... "'"                    (escapes \\ \" \' \n \t)
 * A selector needs a metric name or a matcher that does not match the empty string.
 *
 * Evaluation: at every step t from start to end, each series' value is its newest point in
 * (t - 5 min, t] (a downsampled bucket counts with its mean); for the same label set the
 * store's values win over Prometheus's within the span the store covers (first point to last
 * point + step), Prometheus's are used outside it; then sum/avg by the given labels. */
#ifndef TIDE_QUERY_H
#define TIDE_QUERY_H

#include <stddef.h>
#include <stdint.h>

struct tsdb;
struct prom;

#define QUERY_MAX_POINTS 11000 /* per series, as Prometheus */
#define QUERY_LOOKBACK_MS 300000
#define QUERY_MAX_SAMPLES 20000000 /* series x steps in one result (~500 MB of JSON) */

enum query_op { QUERY_EQ, QUERY_NE, QUERY_RE, QUERY_NRE };
enum query_agg { QUERY_AGG_NONE, QUERY_AGG_SUM, QUERY_AGG_AVG };

typedef struct query_matcher {
    char *name;
    char *value;
    int op;
    struct tide_re *re; /* QUERY_RE / QUERY_NRE: RE2, linear time (query/re.h) */
} query_matcher;

typedef struct query_expr {
    query_matcher *m; /* the metric name is a "__name__" = matcher */
    size_t nm;
    int agg;
    char **by;
    size_t nby;
} query_expr;

/* Parses text. 0, or -EINVAL with err saying what was expected at which (1-based) column,
 * or -ENOMEM. The caller frees *out with query_expr_free(). */
int query_parse(const char *text, query_expr **out, char *err, size_t errlen);
void query_expr_free(query_expr *e);
/* 1 when a label set (name/value arrays) satisfies every matcher. */
int query_match(const query_expr *e, const char *const *names, const char *const *values, size_t n);
/* The selector part as PromQL (for Prometheus), malloc'd; NULL on ENOMEM. */
char *query_selector_promql(const query_expr *e);

typedef struct query_series {
    char **names, **values; /* sorted by name */
    size_t nlabels;
    double *v;   /* one per step; NaN = no value (engine results: query_is_absent()) */
    int64_t *ts; /* QUERY_RESULT_MATRIX_RAW only: the points' own timestamps */
    size_t npts; /* QUERY_RESULT_MATRIX_RAW only: points in ts/v */
} query_series;

/* The "no value at this step" marker of PromQL engine results: a NaN with a payload no
 * arithmetic produces, so a NaN a query computes (0/0) is kept and printed as "NaN". It is a
 * NaN: code testing isnan() for "no value" keeps working. */
#define QUERY_ABSENT_BITS 0x7ff4dead7ff4beefULL
static inline double query_absent(void) {
    union {
        uint64_t b;
        double d;
    } u = {QUERY_ABSENT_BITS};
    return u.d;
}
static inline int query_is_absent(double d) {
    union {
        double d;
        uint64_t b;
    } u = {d};
    return u.b == QUERY_ABSENT_BITS;
}

enum query_result_type {
    QUERY_RESULT_SERIES = 0,     /* matrix (range query) / vector (instant query) */
    QUERY_RESULT_SCALAR = 1,     /* one series without labels: "scalar" */
    QUERY_RESULT_STRING = 2,     /* str: "string" */
    QUERY_RESULT_MATRIX_RAW = 3, /* instant query of a range vector: ts/npts per series */
};

typedef struct query_result {
    int64_t start_ms, step_ms;
    size_t nsteps;
    query_series *s;
    size_t n;
    size_t cap;                       /* room in s (query.c grows it by doubling) */
    char warning[512];                /* e.g. Prometheus unreachable: served what is stored */
    int prom_used;                    /* Prometheus answered for this query */
    size_t store_points, prom_points; /* points each source put into the result (before sum/avg) */
    int type;                         /* enum query_result_type */
    char *str;                        /* QUERY_RESULT_STRING */
    int engine;                       /* from the PromQL engine: only query_is_absent() is "no
                                         value", other NaNs are values */
    int ordered;                      /* sort()/sort_desc(): keep the series' order */
} query_result;

void query_result_fini(query_result *r);

struct promql_limits;
typedef struct query_ctx {
    struct tsdb *db;                 /* may be NULL */
    struct prom *prom;               /* may be NULL: store only */
    const struct promql_limits *lim; /* sample budget, deadline, cancel flag; NULL = defaults */
} query_ctx;

/* Evaluates the PromQL text over [start_ms, end_ms] every step_ms.
 * Without Prometheus: the PromQL engine (query/promql.h) over the store.
 * With Prometheus (the forwarding rule, README "Query API"):
 *   - a selector, or sum/avg [by] of one (the selector subset of query_parse()): the store's
 *     series merged with Prometheus's for the same selector, the store winning over the span
 *     it covers (first point to last point + step);
 *   - any other query whose selectors match no series in the store goes to Prometheus whole;
 *   - any other query with a selector matching the store's series: evaluated over the store by
 *     the engine AND sent to Prometheus whole; the results are merged by label set, the
 *     store's value winning at every step where it has one;
 *   - a query without selectors (1+1, time(), vector(1)) is answered by the engine alone.
 * 0; -EINVAL (bad query or range, a runtime error such as duplicate series: err says why);
 * -E2BIG (the sample budget or the result size: err says how to narrow it); -ETIMEDOUT,
 * -ECANCELED (ctx->lim); -ENOMEM. Prometheus failures are not errors: r->warning says what
 * happened and the store's data is returned. */
int query_range(const query_ctx *ctx, const char *text, int64_t start_ms, int64_t end_ms,
                int64_t step_ms, query_result *r, char *err, size_t errlen);

/* The Prometheus query_range JSON of a result, malloc'd (NULL on ENOMEM):
 * {"status":"success","data":{"resultType":"matrix","result":[{"metric":{...},
 *  "values":[[<unix seconds>,"<value>"],...]},...]}[,"warnings":[...]]} */
char *query_result_json(const query_result *r);
/* {"status":"error","errorType":type,"error":msg}, malloc'd. */
char *query_error_json(const char *type, const char *msg);
/* An instant query's JSON from a one-step result: {"status":"success","data":{"resultType":
 * "vector","result":[{"metric":{...},"value":[<unix seconds>,"<value>"]},...]}}, malloc'd. */
char *query_result_vector_json(const query_result *r);
/* /api/v1/series's JSON: {"status":"success","data":[{"name":"value",...},...]} from the
 * series' labels (sorted and deduplicated here), with r->warning as "warnings" if set. */
char *query_series_json(query_result *r);
/* {"status":"success","data":["a","b",...]} from n strings (sorted and deduplicated here),
 * with "warnings":[warning] when warning is not NULL or empty. */
char *query_strings_json(const char **v, size_t n, const char *warning);

/* 1 when s is a valid label name ([a-zA-Z_][a-zA-Z0-9_]*). */
int query_label_name_ok(const char *s);

/* Parses a time: unix seconds (fractions allowed) or RFC 3339 ("2026-11-21T06:00:00Z",
 * "...+02:00", fractional seconds). 0 or -EINVAL. */
int query_parse_time(const char *s, int64_t *ms);
/* Parses a step: seconds ("60", "0.5") or a duration ("1m", "1h30m", "500ms"). 0 or -EINVAL. */
int query_parse_duration(const char *s, int64_t *ms);
/* Formats v as Prometheus does (shortest round-trip decimal, "NaN", "+Inf", "-Inf"). */
void query_format_value(double v, char *buf, size_t len);

#endif
