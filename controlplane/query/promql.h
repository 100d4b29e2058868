/* promql.h: a PromQL engine over Tide's store: lexer and parser (promql_parse.c) to an AST,
 * evaluator (promql_eval.c) over a range of steps.
 *
 * Supported (Prometheus 2.x semantics, the version the differential tests run against):
 *   literals: numbers (decimal, hex, exponent, Inf, NaN), strings ("..", '..', `..`)
 *   selectors: metric{l="v", l!="v", l=~"re", l!~"re"} (regexes: RE2, fully anchored), range
 *     selectors x[5m], subqueries expr[1h:1m], `offset d` (negative too), `@ t`, `@ start()`,
 *     `@ end()`; instant selectors look back 5 minutes; points in [t - range, t]
 *   binary operators + - * / % ^ atan2, == != > < >= <= (with bool), and or unless; between
 *     scalars and vectors with on/ignoring and group_left/group_right (include labels)
 *   aggregations sum avg min max count stddev stdvar group topk bottomk quantile count_values,
 *     by/without before or after the argument
 *   functions rate irate increase delta idelta deriv predict_linear resets changes,
 *     {avg,min,max,sum,count,quantile,stddev,stdvar,last,present}_over_time, histogram_quantile,
 *     abs ceil floor round sgn clamp clamp_min clamp_max exp ln log2 log10 sqrt, label_replace
 *     label_join, absent absent_over_time, time timestamp vector scalar sort sort_desc,
 *     minute hour day_of_week day_of_month days_in_month month year
 * Bounds: PROMQL_MAX_DEPTH nesting, PROMQL_MAX_NODES nodes, a sample budget (points read plus
 * values held at once), a deadline and a cancel flag checked as it goes. */
#ifndef TIDE_PROMQL_H
#define TIDE_PROMQL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct tsdb;
struct query_result;
struct query_matcher;

#define PROMQL_MAX_DEPTH 128
#define PROMQL_MAX_NODES 4096
#define PROMQL_MAX_QUERY 65536 /* bytes of query text */
#define PROMQL_LOOKBACK_MS 300000
#define PROMQL_DEFAULT_MAX_SAMPLES                                                                 \
    20000000 /* --query.max-samples is 50 M in Prometheus; Tide ships a 1 GiB unit */

enum pq_type { PQ_T_SCALAR = 1, PQ_T_VECTOR, PQ_T_MATRIX, PQ_T_STRING };

enum pq_kind {
    PQ_NUM,
    PQ_STR,
    PQ_SEL,   /* instant or (range_ms > 0) range selector */
    PQ_SUBQ,  /* child[range:step] */
    PQ_NEG,   /* unary minus */
    PQ_BIN,   /* binary operator */
    PQ_AGG,   /* aggregation */
    PQ_CALL,  /* function call */
    PQ_PAREN, /* (expr): only kept for offset/@ rules */
};

enum pq_op {
    PQ_ADD = 1,
    PQ_SUB,
    PQ_MUL,
    PQ_DIV,
    PQ_MOD,
    PQ_POW,
    PQ_ATAN2,
    PQ_EQL,
    PQ_NEQ,
    PQ_GTR,
    PQ_LSS,
    PQ_GTE,
    PQ_LTE,
    PQ_AND,
    PQ_OR,
    PQ_UNLESS,
};

enum pq_agg {
    PQ_SUM = 1,
    PQ_AVG,
    PQ_MIN,
    PQ_MAX,
    PQ_COUNT,
    PQ_STDDEV,
    PQ_STDVAR,
    PQ_GROUP,
    PQ_TOPK,
    PQ_BOTTOMK,
    PQ_QUANTILE,
    PQ_COUNT_VALUES,
};

enum pq_card { PQ_ONE_ONE = 0, PQ_MANY_ONE, PQ_ONE_MANY, PQ_MANY_MANY };
enum pq_at { PQ_AT_NONE = 0, PQ_AT_TIME, PQ_AT_START, PQ_AT_END };

typedef struct pq_node pq_node;
struct pq_node {
    int kind, type;
    size_t pos; /* byte offset in the query, for messages */
    double num;
    char *str;
    /* selector */
    struct query_matcher *m;
    size_t nm;
    int64_t range_ms, step_ms; /* range selector / subquery */
    int64_t offset_ms;
    int at;
    int64_t at_ms;
    /* operators, aggregations, calls */
    int op;
    int bool_mod;
    int card;
    int on;           /* on(...) given (1) or ignoring(...) (0) */
    int has_matching; /* on/ignoring written */
    char **labels;    /* on/ignoring labels, by/without labels */
    size_t nlabels;
    char **include; /* group_left/right labels */
    size_t ninclude;
    int without;
    int func; /* index into the function table */
    pq_node **args;
    size_t nargs;
    pq_node *lhs, *rhs; /* binary; aggregation: lhs = param, rhs = expression */
};

/* Parses text into an AST. 0; -EINVAL with err = "parse error at char N: ..." (1-based, as
 * Prometheus says it) or a type error naming the function/operator; -ENOMEM. */
int promql_parse(const char *text, pq_node **out, char *err, size_t errlen);
void promql_free(pq_node *n);
/* Calls fn for every selector node in the tree (stops early when fn returns nonzero). */
int promql_walk_selectors(const pq_node *n, int (*fn)(const pq_node *sel, void *arg), void *arg);

typedef struct promql_limits {
    uint64_t max_samples;     /* 0 = PROMQL_DEFAULT_MAX_SAMPLES */
    int64_t deadline_mono_ms; /* tide_now_mono_ms() bound; 0 = none */
    const atomic_int *cancel; /* nonzero: stop with -ECANCELED; may be NULL */
    int (*stop)(void *arg);   /* polled now and then: nonzero stops with -ECANCELED (the
                                 client went away); may be NULL */
    void *stop_arg;
} promql_limits;

/* Evaluates n at start_ms, start_ms + step_ms, ..., end_ms over the store into r (series sorted
 * by labels; r->type says scalar/string/matrix; an instant query is a range of one step).
 * 0; -EINVAL (a runtime error Prometheus reports as bad_data, e.g. duplicate series); -E2BIG
 * (the sample budget); -ETIMEDOUT (the deadline); -ECANCELED; -ENOMEM: err says which. */
int promql_eval(struct tsdb *db, const pq_node *n, int64_t start_ms, int64_t end_ms,
                int64_t step_ms, const promql_limits *lim, struct query_result *r, char *err,
                size_t errlen);

#endif
