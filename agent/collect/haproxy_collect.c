/* haproxy_collect.c: the collector "haproxy": HAProxy's per-proxy totals from its runtime API
 * (`show stat` on the stats socket given by the agent's haproxy_stats key), under the names
 * HAProxy's own Prometheus exporter uses, so a workload's traffic metric reads the same with
 * or without Prometheus:
 *
 *   haproxy_frontend_http_requests_total{proxy}   haproxy_backend_http_requests_total{proxy}
 *   haproxy_frontend_current_sessions{proxy}      haproxy_backend_current_sessions{proxy}
 *   haproxy_backend_current_queue{proxy}
 *   haproxy_frontend_http_responses_total{proxy,code="5xx"} (and the backend's)
 *
 * The command runs on the agent's loop without blocking it (actions/haproxy.h): a round starts
 * one and its reply is put into the sink stamped with that round's time (on the agent's clock,
 * so on the virtual clock too); the samples leave with the next round's batch. A round whose
 * previous command is still under way starts none; a command that failed makes the next round
 * fail, so the collector's backoff and rate-limited log apply. Off (no command, no series)
 * while haproxy_stats is empty. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actions/haproxy.h"
#include "agent.h"
#include "collect/collector.h"

/* A command must answer within this (real time; HAProxy answers `show stat` in microseconds) */
#define HAPROXY_COLLECT_TIMEOUT_MS 2000

enum { M_REQ, M_SCUR, M_QCUR, M_5XX, M_N };

typedef struct hp_series {
    char name[HAPROXY_NAME_MAX];
    int backend;
    uint32_t id[M_N];
    unsigned defined; /* bit per metric */
} hp_series;

typedef struct hpc {
    char *socket;
    agent_sink *sink;
    haproxy_req *req;   /* the command under way, NULL when none */
    int64_t req_ts_ms;  /* the round it belongs to */
    char last_err[400]; /* the last command's failure, reported by the next round */
    hp_series s[HAPROXY_PROXIES_MAX];
    int ns;
    int warned_truncated;
} hpc;

static const char *metric_name(int backend, int m) {
    static const char *const names[2][M_N] = {
        {"haproxy_frontend_http_requests_total", "haproxy_frontend_current_sessions", NULL,
         "haproxy_frontend_http_responses_total"},
        {"haproxy_backend_http_requests_total", "haproxy_backend_current_sessions",
         "haproxy_backend_current_queue", "haproxy_backend_http_responses_total"}};
    return names[backend ? 1 : 0][m];
}

static hp_series *series_of(hpc *h, const haproxy_proxy_stat *p) {
    for (int i = 0; i < h->ns; i++)
        if (h->s[i].backend == p->backend && strcmp(h->s[i].name, p->name) == 0) return &h->s[i];
    if (h->ns == HAPROXY_PROXIES_MAX) return NULL;
    hp_series *s = &h->s[h->ns++];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", p->name);
    s->backend = p->backend;
    return s;
}

static int put(hpc *h, hp_series *s, int m, int64_t ts, double v) {
    const char *metric = metric_name(s->backend, m);
    if (!metric || v < 0) return 0;
    if (!(s->defined & (1u << m))) {
        const char *labels[] = {"proxy", s->name, m == M_5XX ? "code" : NULL, "5xx", NULL};
        int rc = sink_series(h->sink, metric, labels, &s->id[m]);
        if (rc < 0) return rc;
        s->defined |= 1u << m;
    }
    return sink_put(h->sink, s->id[m], ts, v);
}

static void on_reply(void *arg, int rc, const char *reply, size_t len, const char *err) {
    hpc *h = arg;
    h->req = NULL;
    if (rc < 0) {
        snprintf(h->last_err, sizeof h->last_err, "show stat on %.200s: %.180s", h->socket, err);
        return;
    }
    haproxy_proxy_stat *ps = malloc(HAPROXY_PROXIES_MAX * sizeof *ps);
    if (!ps) {
        snprintf(h->last_err, sizeof h->last_err, "out of memory");
        return;
    }
    int n = 0, seen = 0;
    char perr[256];
    if (haproxy_stat_proxies(reply, len, ps, HAPROXY_PROXIES_MAX, &n, &seen, perr, sizeof perr) <
        0) {
        snprintf(h->last_err, sizeof h->last_err, "%.200s: %.180s", h->socket, perr);
        free(ps);
        return;
    }
    if (seen > n && !h->warned_truncated) {
        h->warned_truncated = 1;
        snprintf(h->last_err, sizeof h->last_err,
                 "%.200s: %d proxy rows, only the first %d are sampled", h->socket, seen, n);
    }
    for (int i = 0; i < n; i++) {
        hp_series *s = series_of(h, &ps[i]);
        if (!s) break;
        int e = put(h, s, M_REQ, h->req_ts_ms, ps[i].req_tot);
        if (!e) e = put(h, s, M_SCUR, h->req_ts_ms, ps[i].scur);
        if (!e) e = put(h, s, M_QCUR, h->req_ts_ms, ps[i].qcur);
        if (!e) e = put(h, s, M_5XX, h->req_ts_ms, ps[i].hrsp_5xx);
        if (e < 0) {
            snprintf(h->last_err, sizeof h->last_err, "queueing proxy %.128s: %s", s->name,
                     strerror(-e));
            break;
        }
    }
    free(ps);
}

static int hp_init(void **state, const struct agent_config *cfg, char *err, size_t errlen) {
    hpc *h = calloc(1, sizeof *h);
    if (h) h->socket = strdup(cfg->haproxy_stats ? cfg->haproxy_stats : "");
    if (!h || !h->socket) {
        free(h);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    *state = h;
    return 0;
}

static int hp_sample(void *state, agent_sink *sink, int64_t now_ms, char *err, size_t errlen) {
    hpc *h = state;
    if (!h->socket[0]) return 0;
    h->sink = sink;
    if (h->last_err[0]) {
        snprintf(err, errlen, "%s", h->last_err);
        h->last_err[0] = '\0';
        return -EIO;
    }
    if (h->req) return 0; /* the previous round's command is still under way */
    h->req_ts_ms = now_ms;
    int rc = haproxy_command(collector_loop(), h->socket, "show stat", HAPROXY_COLLECT_TIMEOUT_MS,
                             on_reply, h, &h->req, err, errlen);
    if (rc < 0) h->req = NULL;
    return rc;
}

static void hp_fini(void *state) {
    hpc *h = state;
    if (!h) return;
    haproxy_cancel(h->req);
    free(h->socket);
    free(h);
}

static const collector_ops haproxy_collector = {
    .name = "haproxy",
    .init = hp_init,
    .sample = hp_sample,
    .fini = hp_fini,
};

AGENT_COLLECTOR(haproxy, &haproxy_collector)
