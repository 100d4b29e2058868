/* promql_funcs.h: the PromQL function table shared by the parser (argument types) and the
 * evaluator (by id). */
#ifndef TIDE_PROMQL_FUNCS_H
#define TIDE_PROMQL_FUNCS_H

#include <stddef.h>

enum pq_fid {
    F_ABS,
    F_ABSENT,
    F_ABSENT_OVER_TIME,
    F_CEIL,
    F_CHANGES,
    F_CLAMP,
    F_CLAMP_MAX,
    F_CLAMP_MIN,
    F_DAY_OF_MONTH,
    F_DAY_OF_WEEK,
    F_DAYS_IN_MONTH,
    F_DELTA,
    F_DERIV,
    F_EXP,
    F_FLOOR,
    F_HISTOGRAM_QUANTILE,
    F_HOUR,
    F_IDELTA,
    F_INCREASE,
    F_IRATE,
    F_LABEL_JOIN,
    F_LABEL_REPLACE,
    F_LN,
    F_LOG10,
    F_LOG2,
    F_MINUTE,
    F_MONTH,
    F_PREDICT_LINEAR,
    F_RATE,
    F_RESETS,
    F_ROUND,
    F_SCALAR,
    F_SGN,
    F_SORT,
    F_SORT_DESC,
    F_SQRT,
    F_TIME,
    F_TIMESTAMP,
    F_VECTOR,
    F_YEAR,
    F_AVG_OT,
    F_MIN_OT,
    F_MAX_OT,
    F_SUM_OT,
    F_COUNT_OT,
    F_QUANTILE_OT,
    F_STDDEV_OT,
    F_STDVAR_OT,
    F_LAST_OT,
    F_PRESENT_OT,
};

typedef struct pq_func {
    const char *name;
    int id;
    int args[4]; /* pq_type of each argument; the last repeats for variadic ones */
    int ntypes;
    int minargs, maxargs; /* maxargs -1: variadic */
    int ret;
} pq_func;

extern const pq_func pq_funcs[];
extern const size_t pq_nfuncs;
const pq_func *pq_func_find(const char *name, size_t len);

#endif
