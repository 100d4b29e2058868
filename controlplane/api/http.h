/* http.h: the control plane's HTTP listener (libmicrohttpd, its own threads, loopback by
 * default) and the query side of the daemon: the Prometheus history client, the ops commands
 * `query` and `series`, and the daemon's own metrics.
 *
 * Endpoints:
 *   GET|POST /api/v1/query_range?query=&start=&end=&step=   Prometheus's JSON shape; 400 with
 *            {"status":"error","errorType":"bad_data","error":...} for bad input
 *   GET|POST /api/v1/query?query=&time=   the same at one time, resultType "vector"
 *   GET /api/v1/labels, /api/v1/label/NAME/values   label names / values in the store
 *   GET /api/v1/alerts, /api/v1/rules   the alert rules' alerts and rules, Prometheus's shape
 *   GET /metrics   Prometheus text exposition of the control plane's counters
 *   GET /healthz   200 "ok" while the store can write; 503 with the reason when it cannot
 * The store is read under its reader lock from the HTTP threads; values owned by the loop
 * (connected agents, ingest rate) are sampled by a 1 s loop timer into a locked snapshot.
 * Started as a CP_MODULE from cp->cfg (http, prometheus*, keys in README). */
#ifndef TIDE_HTTP_H
#define TIDE_HTTP_H

#include <stddef.h>
#include <stdint.h>

struct controlplane;
struct query_result;

typedef struct cp_http cp_http;

/* Runs one query_range for any front end (HTTP thread or ops worker thread): parses the
 * parameters (start/end: unix seconds or RFC 3339; step: seconds or a duration), evaluates
 * over the store and Prometheus, and returns the exact JSON body (malloc'd) with *http_status
 * 200, or 400 + an error body for bad input, 503 when the store is unavailable. Thread-safe. */
char *cp_http_query_range(cp_http *h, const char *query, const char *start, const char *end,
                          const char *step, int *http_status);

#endif
