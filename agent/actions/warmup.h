/* warmup.h: warm-up traffic for a replica that is not receiving real traffic yet: configured
 * requests (method, path, body, headers) sent at a target rate with a linear ramp for a
 * duration, with libcurl's multi interface driven by the agent's libev loop
 * (curl_multi_socket_action with ev_io/ev_timer). Each warm-up runs in a helper process
 * forked from the agent, which loads libcurl there (curl_lazy.h): the agent itself never maps
 * libcurl and its TLS libraries. Reports requests, errors and the latency of the first and
 * the last second, so that the effect of warming up is visible. */
#ifndef TIDE_WARMUP_H
#define TIDE_WARMUP_H

#include <cjson/cJSON.h>
#include <stddef.h>

struct ev_loop;
struct curl_slist;

typedef struct warmup_spec {
    char *url;    /* "http://ENDPOINT" + path */
    char *method; /* "GET", "POST", ... */
    char *body;   /* NULL: none */
    struct curl_slist *headers;
    double rate;            /* target requests per second at the end of the ramp */
    double start_rate;      /* requests per second at the start */
    int duration_ms;        /* sending time */
    int ramp_ms;            /* start_rate -> rate linearly over this time */
    int max_inflight;       /* concurrent requests at most */
    int request_timeout_ms; /* per request */
} warmup_spec;

/* Fills spec from a JSON object with keys "method" (GET), "path" ("/"), "body", "headers"
 * (array of "Name: value" strings or an object), "rate" (20), "start_rate" (rate / 10),
 * "duration_ms" (2000), "ramp_ms" (duration / 2), "max_inflight" (16), "request_timeout_ms"
 * (2000), and "url" (overrides endpoint + path). `endpoint` is "ADDR:PORT" (may be NULL when
 * "url" is given). Returns 0, or -EINVAL with err naming the bad key; spec must then still be
 * passed to warmup_spec_fini(). */
int warmup_spec_from_json(const cJSON *o, const char *endpoint, warmup_spec *spec, char *err,
                          size_t errlen);
void warmup_spec_fini(warmup_spec *spec);

typedef struct warmup warmup;

/* Called once from the loop with the result object (owned by the callee):
 * {"requests", "errors", "duration_ms", "target_rate", "first_second": {...},
 *  "last_second": {...}} where a second's object is {"requests", "errors", "mean_ms", "p50_ms",
 * "p99_ms", "max_ms"} over the requests started in it. Errors are transport failures and
 * HTTP statuses >= 400. */
typedef void (*warmup_done_fn)(void *arg, cJSON *result);

/* Starts sending (the spec is copied). Returns 0 (done called later from the loop) or -errno
 * with err; done is then not called. Waits (at most 10 s, normally tens of ms) until the helper
 * has loaded libcurl: -ELIBACC with err naming the library when it cannot be loaded or
 * initialised. A helper that dies without a result still gets done called, with zero counts
 * and "error" saying how it ended. */
int warmup_start(struct ev_loop *loop, const warmup_spec *spec, warmup_done_fn done, void *arg,
                 warmup **out, char *err, size_t errlen);
/* Aborts the transfers (kills and reaps the helper) and frees without calling done. NULL ok. */
void warmup_cancel(warmup *w);

#endif
