/* prom.h: Prometheus as the history source: /api/v1/query_range through libcurl, chunked under
 * Prometheus's 11,000-points-per-series limit, with timeouts, retries with exponential
 * backoff, a bearer token and TLS options.
 *
 * prom_query_range() blocks its calling thread (it is thread-safe: the HTTP listener's and
 * query workers' threads call it; loop code calls it from a worker of shared/work.h). After a
 * failed request the client stays "down" for a backoff period (doubling up to a minute) and answers
 * -EAGAIN at once, so a dead Prometheus costs nothing per query. */
#ifndef TIDE_PROM_H
#define TIDE_PROM_H

#include <stddef.h>
#include <stdint.h>

typedef struct prom prom;

typedef struct prom_options {
    const char *url;               /* base URL, e.g. http://127.0.0.1:9090 */
    const char *bearer_token;      /* sent as "Authorization: Bearer ..." (NULL: none) */
    const char *bearer_token_file; /* read at prom_new() when bearer_token is NULL */
    const char *ca_file;           /* CA bundle for https (NULL: system store) */
    int insecure_skip_verify;      /* 1: do not verify the server certificate */
    int64_t timeout_ms;            /* per HTTP request; 0 = 10000 */
    int retries;                   /* extra attempts per chunk; 0 = 2, -1 = none */
    int64_t backoff_ms;            /* first retry delay, doubling; 0 = 200 */
    int64_t max_points;            /* points per series per request; 0 = 11000 */
} prom_options;

/* Validates the options (URL scheme, readable token and CA files). 0 or -errno with err. */
int prom_new(prom **out, const prom_options *opt, char *err, size_t errlen);
/* Frees p. Every caller's thread must have returned from prom_query_range first (prom_cancel
 * makes them return at once): freeing p under a running query aborts with a message naming
 * the module order, instead of a use after free. */
void prom_free(prom *p);

typedef struct prom_series {
    char **names, **values; /* sorted by name */
    size_t nlabels;
    int64_t *ts_ms;
    double *v;
    size_t n;
} prom_series;

typedef struct prom_result {
    prom_series *s;
    size_t n;
} prom_result;
void prom_result_fini(prom_result *r);

/* Runs expr over [start_ms, end_ms] at step_ms, in as many requests as the point limit
 * needs, and joins the chunks per series. 0; -EINVAL (Prometheus rejected the expression:
 * err has its message); -EAGAIN (in backoff after an earlier failure); -ETIMEDOUT;
 * -ECONNREFUSED; -EIO (other HTTP/transport/JSON failure); -ENOMEM; -ECANCELED (prom_cancel()
 * was called). err says which URL and why. Thread-safe. */
int prom_query_range(prom *p, const char *expr, int64_t start_ms, int64_t end_ms, int64_t step_ms,
                     prom_result *out, char *err, size_t errlen);

/* For shutdown: every request in flight on p ends within milliseconds with -ECANCELED (its
 * thread is woken out of curl_multi_poll(), also out of a retry pause), and every later call
 * answers -ECANCELED without a request. Thread-safe; p stays valid (prom_free() it only after
 * the callers' threads are joined). */
void prom_cancel(prom *p);

typedef struct prom_stats {
    uint64_t requests, errors, retries;
    int up;               /* the last request succeeded (or none was made yet) */
    char last_error[256]; /* empty when none */
} prom_stats;
void prom_get_stats(prom *p, prom_stats *st);
/* "ok", "not configured", or "down: <last error>; next try in N s". Per-thread buffer. */
const char *prom_status(prom *p);

#endif
