/* http.c: HTTP listener (libmicrohttpd), Prometheus client set-up, /metrics, and the
 * query_range front end shared with the ops socket. */
#include "api/http.h"
#include "api/http_guard.h"
#include "bearer.h"

#include "agents/agents.h"
#include "config.h"
#include "cp.h"
#include "log.h"
#include "alerts/alerts.h"
#include "api/metrics.h"
#include "api/ops.h"
#include "api/ui.h"
#include "cluster/cluster.h"
#include "workloads/workload_view.h"
#include "query/prom.h"
#include "query/prom_module.h"
#include "query/promql.h"
#include "query/query.h"
#include "store/tsdb.h"
#include "strbuf.h"
#include "version.h"
#include "work.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sys/socket.h>
#include <time.h>

#define METRICS_TICK_S 1.0
#define HTTP_MAX_CONNECTIONS 64u
#define HEALTH_MAX_CONNECTIONS 16u
/* /livez fails when the loop has not ticked for this long: far beyond any sync or snapshot
 * step on the loop, short against a kubelet's failureThreshold x periodSeconds. */
#define LIVEZ_STALL_MS 30000
/* ops `query` jobs: threads of their pool and how many may wait (the query admission limits of
 * the config still apply inside each job) */
#define OPS_QUERY_THREADS 4
#define OPS_QUERY_QUEUE 64

struct cp_http {
    struct controlplane *cp;
    struct MHD_Daemon *mhd, *mhd_health;
    http_guard *guard, *guard_health;
    int port, health_port;
    char bearer[4096];        /* http_bearer_token_file's token ("" = no authentication) */
    char *tls_cert, *tls_key; /* PEM text of http_tls_cert_file / _key_file, NULL = plain */
    size_t tls_key_len;
    ev_timer tick;
    pthread_mutex_t mu; /* guards the loop-sampled values below */
    int64_t agents_connected;
    double ingest_rate; /* samples/s over the last tick */
    uint64_t last_samples;
    int64_t last_tick_ms;
    _Atomic int64_t loop_alive_ms; /* monotonic time of the loop's last tick, for /livez */
    ui_server *ui;                 /* the web page (ui.c) */
    char *loop_metrics; /* per-node and per-workload series rendered by the tick (metrics.c) */
    _Atomic uint64_t queries, query_errors, http_requests;
    work_pool *ops_pool; /* ops `query` jobs run on its threads and reply from the loop */
    /* query admission: at most max_concurrency evaluate, max_queue wait */
    pthread_mutex_t gate_mu;
    pthread_cond_t gate_cv;
    int active, waiting;
    atomic_int stopping; /* set at shutdown: running queries stop, queued ones leave */
    _Atomic uint64_t query_timeouts, query_cancels, query_rejected, query_budget;
};

/* ---- query front end ---- */

static char *bad_data(int *status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *bad_data(int *status, const char *fmt, ...) {
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    *status = 400;
    return query_error_json("bad_data", msg);
}

/* ---- admission and limits ---- */

/* Waits for an evaluation slot until deadline (monotonic ms). 0; -EBUSY (queue full);
 * -ETIMEDOUT; -ECANCELED (shutting down). */
static int gate_enter(cp_http *h, int64_t deadline) {
    const struct cp_config *c = &h->cp->cfg;
    int maxc = c->query_max_concurrency > 0 ? (int)c->query_max_concurrency : 4;
    int maxq = (int)c->query_max_queue;
    pthread_mutex_lock(&h->gate_mu);
    int rc = 0;
    if (h->active >= maxc) {
        if (h->waiting >= maxq) {
            pthread_mutex_unlock(&h->gate_mu);
            return -EBUSY;
        }
        h->waiting++;
        while (h->active >= maxc && !atomic_load(&h->stopping)) {
            int64_t left = deadline - tide_now_mono_ms();
            if (left <= 0) {
                rc = -ETIMEDOUT;
                break;
            }
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            int64_t wait = left < 1000 ? left : 1000; /* re-check shutdown at least every second */
            ts.tv_sec += wait / 1000;
            ts.tv_nsec += (long)(wait % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&h->gate_cv, &h->gate_mu, &ts);
        }
        h->waiting--;
        if (!rc && atomic_load(&h->stopping)) rc = -ECANCELED;
    }
    if (!rc) h->active++;
    pthread_mutex_unlock(&h->gate_mu);
    return rc;
}

static void gate_leave(cp_http *h) {
    pthread_mutex_lock(&h->gate_mu);
    h->active--;
    pthread_cond_signal(&h->gate_cv);
    pthread_mutex_unlock(&h->gate_mu);
}

/* The client of an HTTP query closed its connection: its query stops. */
static int client_gone(void *arg) {
    int fd = *(int *)arg;
    if (fd < 0) return 0;
    struct pollfd p = {.fd = fd, .events = POLLRDHUP};
    if (poll(&p, 1, 0) <= 0) return 0;
    return (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

typedef struct qopts {
    const char *timeout; /* the request's timeout= (may be NULL) */
    int client_fd;       /* -1: not an HTTP client */
} qopts;

/* Runs the query over [start_ms, end_ms] and renders the result as a matrix, or (vector)
 * as an instant vector at start_ms, under the limits: error bodies for a bad query (400), one
 * over the sample budget (422), a timeout or a full queue (503), shutdown (503). */
static char *evaluate(cp_http *h, const char *query, int64_t start_ms, int64_t end_ms,
                      int64_t step_ms, int vector, const qopts *o, int *http_status) {
    int64_t timeout = h->cp->cfg.query_timeout_ms > 0 ? h->cp->cfg.query_timeout_ms : 120000;
    if (o && o->timeout && *o->timeout) {
        int64_t t;
        if (query_parse_duration(o->timeout, &t))
            return bad_data(http_status,
                            "invalid parameter \"timeout\": cannot parse \"%.100s\" to a valid "
                            "duration",
                            o->timeout);
        if (t < timeout) timeout = t;
    }
    int64_t deadline = tide_now_mono_ms() + timeout;
    int fd = o ? o->client_fd : -1;
    promql_limits lim = {.max_samples = (uint64_t)h->cp->cfg.query_max_samples,
                         .deadline_mono_ms = deadline,
                         .cancel = &h->stopping,
                         .stop = fd >= 0 ? client_gone : NULL,
                         .stop_arg = &fd};
    query_ctx ctx = {.db = h->cp->db, .prom = h->cp->prom, .lim = &lim};
    int rc = gate_enter(h, deadline);
    if (rc) {
        *http_status = 503;
        if (rc == -EBUSY) atomic_fetch_add(&h->query_rejected, 1);
        if (rc == -ETIMEDOUT) atomic_fetch_add(&h->query_timeouts, 1);
        return query_error_json(rc == -ETIMEDOUT ? "timeout" : "unavailable",
                                rc == -EBUSY ? "too many queries are running and queued; try again"
                                : rc == -ETIMEDOUT
                                    ? "query timed out waiting for an evaluation slot"
                                    : "the control plane is shutting down");
    }
    query_result r;
    char err[600];
    rc = query_range(&ctx, query, start_ms, end_ms, step_ms, &r, err, sizeof err);
    gate_leave(h);
    if (rc == -EINVAL) return bad_data(http_status, "%s", err);
    if (rc == -E2BIG) { /* as Prometheus: a valid query that cannot be executed, 422 */
        atomic_fetch_add(&h->query_budget, 1);
        *http_status = 422;
        return query_error_json("execution", err);
    }
    if (rc == -ETIMEDOUT) {
        atomic_fetch_add(&h->query_timeouts, 1);
        *http_status = 503;
        return query_error_json("timeout", err);
    }
    if (rc == -ECANCELED) {
        atomic_fetch_add(&h->query_cancels, 1);
        *http_status = 503;
        return query_error_json("canceled", err);
    }
    if (rc) {
        *http_status = 503;
        return query_error_json("execution", err);
    }
    *http_status = 200;
    char *body = vector ? query_result_vector_json(&r) : query_result_json(&r);
    query_result_fini(&r);
    return body;
}

static char *query_range_opts(cp_http *h, const char *query, const char *start, const char *end,
                              const char *step, const qopts *o, int *http_status) {
    atomic_fetch_add(&h->queries, 1);
    int64_t s, e, st;
    char *body;
    if (!query || !*query)
        body = bad_data(http_status, "missing parameter \"query\"");
    else if (!start)
        body = bad_data(http_status, "missing parameter \"start\"");
    else if (!end)
        body = bad_data(http_status, "missing parameter \"end\"");
    else if (!step)
        body = bad_data(http_status, "missing parameter \"step\"");
    else if (query_parse_time(start, &s))
        body = bad_data(http_status,
                        "invalid parameter \"start\": cannot parse \"%.100s\" to a valid "
                        "timestamp",
                        start);
    else if (query_parse_time(end, &e))
        body = bad_data(http_status,
                        "invalid parameter \"end\": cannot parse \"%.100s\" to a valid "
                        "timestamp",
                        end);
    else if (query_parse_duration(step, &st))
        body = bad_data(http_status,
                        "invalid parameter \"step\": cannot parse \"%.100s\" to a valid "
                        "duration",
                        step);
    else
        body = evaluate(h, query, s, e, st, 0, o, http_status);
    if (*http_status != 200) atomic_fetch_add(&h->query_errors, 1);
    if (!body) {
        *http_status = 503;
        atomic_fetch_add(&h->query_errors, 1);
    }
    return body;
}

char *cp_http_query_range(cp_http *h, const char *query, const char *start, const char *end,
                          const char *step, int *http_status) {
    return query_range_opts(h, query, start, end, step, NULL, http_status);
}

/* Instant query (/api/v1/query): the query evaluated at one time (default now). */
static char *cp_http_query_instant(cp_http *h, const char *query, const char *time_s,
                                   const qopts *o, int *http_status) {
    atomic_fetch_add(&h->queries, 1);
    int64_t t = tide_now_wall_ms();
    char *body;
    if (!query || !*query)
        body = bad_data(http_status, "missing parameter \"query\"");
    else if (time_s && *time_s && query_parse_time(time_s, &t))
        body = bad_data(http_status,
                        "invalid parameter \"time\": cannot parse \"%.100s\" to a "
                        "valid timestamp",
                        time_s);
    else
        body = evaluate(h, query, t, t, 1000, 1, o, http_status);
    if (*http_status != 200) atomic_fetch_add(&h->query_errors, 1);
    return body;
}

/* ---- series and label listings ---- */

static int cmp_cstr(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

#define MAX_MATCH 64 /* match[] selectors in one request */

/* The match[] selectors as parsed PromQL vector selectors; NULL list for none. 0 or a 400
 * body in *errbody. */
static int parse_matches(char *const *match, size_t n, pq_node **out, char **errbody, int *status) {
    for (size_t i = 0; i < n; i++) {
        char err[400];
        if (promql_parse(match[i], &out[i], err, sizeof err)) {
            *errbody = bad_data(status, "invalid parameter \"match[]\": %s", err);
            return -EINVAL;
        }
        if (out[i]->kind != PQ_SEL || out[i]->range_ms) {
            *errbody = bad_data(status,
                                "invalid parameter \"match[]\": \"%.100s\" is not a vector "
                                "selector",
                                match[i]);
            return -EINVAL;
        }
    }
    return 0;
}

/* 1 when series id is selected by any of the matchers (all when n == 0) and has a point in
 * [start, end] (any time when unset). */
static int series_selected(tsdb *db, uint32_t id, const tsdb_label *l, size_t nl,
                           pq_node *const *sel, size_t n, int64_t start, int64_t end) {
    if (nl > 64) return 0;
    if (n) {
        const char *names[64], *values[64];
        for (size_t i = 0; i < nl; i++) {
            names[i] = l[i].name;
            values[i] = l[i].value;
        }
        int any = 0;
        for (size_t k = 0; k < n && !any; k++) {
            query_expr qe = {0};
            qe.m = sel[k]->m;
            qe.nm = sel[k]->nm;
            any = query_match(&qe, names, values, nl);
        }
        if (!any) return 0;
    }
    if (start != INT64_MIN || end != INT64_MAX) {
        tsdb_series_info info;
        if (tsdb_series_stat(db, id, &info) || info.samples == 0) return 0;
        if (info.last_ms < start || info.first_ms > end) return 0;
    }
    return 1;
}

typedef struct listing {
    char *const *match;
    size_t nmatch;
    const char *start, *end;
} listing;

static int listing_range(const listing *q, int64_t *s, int64_t *e, char **errbody, int *status) {
    *s = INT64_MIN;
    *e = INT64_MAX;
    if (q->start && *q->start && query_parse_time(q->start, s)) {
        *errbody = bad_data(status,
                            "invalid parameter \"start\": cannot parse \"%.100s\" to a "
                            "valid timestamp",
                            q->start);
        return -EINVAL;
    }
    if (q->end && *q->end && query_parse_time(q->end, e)) {
        *errbody = bad_data(status,
                            "invalid parameter \"end\": cannot parse \"%.100s\" to a "
                            "valid timestamp",
                            q->end);
        return -EINVAL;
    }
    return 0;
}

/* Label names (name == NULL) or the values of one label, of the store's series selected by
 * match[] and start/end, sorted and unique into *out (strings owned by the store), *n of them.
 * 0, or -EINVAL with a 400 body in *errbody, or -ENOMEM. */
static int collect_strings(cp_http *h, const char *name, const listing *q, const char ***out,
                           size_t *n, char **errbody, int *status) {
    tsdb *db = h->cp->db;
    pq_node *sel[MAX_MATCH] = {0};
    int64_t s, e;
    *out = NULL;
    *n = 0;
    if (q->nmatch > MAX_MATCH) {
        *errbody = bad_data(status, "more than %d match[] parameters", MAX_MATCH);
        return -EINVAL;
    }
    int rc = listing_range(q, &s, &e, errbody, status);
    if (!rc) rc = parse_matches(q->match, q->nmatch, sel, errbody, status);
    uint32_t count = rc ? 0 : tsdb_series_count(db);
    size_t cap = 256, k = 0;
    const char **v = rc ? NULL : malloc(cap * sizeof *v);
    if (!rc && !v) rc = -ENOMEM;
    for (uint32_t id = 1; !rc && id <= count; id++) {
        const tsdb_label *l;
        size_t nl;
        if (tsdb_series_labels(db, id, &l, &nl)) continue;
        if (!series_selected(db, id, l, nl, sel, q->nmatch, s, e)) continue;
        for (size_t i = 0; i < nl && !rc; i++) {
            if (name && strcmp(l[i].name, name) != 0) continue;
            if (k == cap) {
                const char **nv = realloc(v, (cap *= 2) * sizeof *nv);
                if (!nv) {
                    rc = -ENOMEM;
                    break;
                }
                v = nv;
            }
            v[k++] = name ? l[i].value : l[i].name;
        }
    }
    for (size_t i = 0; i < q->nmatch && i < MAX_MATCH; i++)
        promql_free(sel[i]);
    if (rc) {
        free(v);
        return rc;
    }
    if (k > 1) qsort(v, k, sizeof *v, cmp_cstr);
    size_t w = 0;
    for (size_t i = 0; i < k; i++)
        if (!w || strcmp(v[w - 1], v[i])) v[w++] = v[i];
    *out = v;
    *n = w;
    return 0;
}

#define PROM_WARNING "prometheus unavailable, served the store's data only: "

/* Prometheus's answer to the same listing (label == NULL: series, "": label names, else that
 * label's values) when one is configured; NULL with *warning set when it failed. */
static cJSON *prom_listing(cp_http *h, const char *label, const listing *q, char *warning,
                           size_t wlen) {
    if (!h->cp->prom) return NULL;
    cJSON *data = NULL;
    char perr[400];
    if (prom_list(h->cp->prom, label, q->match, q->nmatch, q->start, q->end, &data, perr,
                  sizeof perr))
        snprintf(warning, wlen, PROM_WARNING "%s", perr);
    return data;
}

/* Label names or one label's values: the store's, and where a Prometheus is configured,
 * merged with its answer to the same request (a value either has is listed once). */
static char *label_strings(cp_http *h, const char *name, const listing *q, int *status) {
    const char **v;
    size_t n;
    char *body = NULL;
    *status = 200;
    /* Prometheus first: the store's strings are held (tsdb_read_begin) only while the JSON is
     * built, never across a request */
    char warning[512] = "";
    cJSON *pd = prom_listing(h, name ? name : "", q, warning, sizeof warning);
    size_t np = pd ? (size_t)cJSON_GetArraySize(pd) : 0;
    unsigned rd = tsdb_read_begin(h->cp->db);
    int rc = collect_strings(h, name, q, &v, &n, &body, status);
    if (rc == 0 && np) {
        const char **nv = realloc(v, (n + np) * sizeof *nv);
        if (!nv) {
            free(v);
            rc = -ENOMEM;
        } else {
            v = nv;
            const cJSON *it;
            cJSON_ArrayForEach(it, pd) {
                if (cJSON_IsString(it)) v[n++] = it->valuestring;
            }
        }
    }
    if (rc == 0) {
        body = query_strings_json(v, n, warning);
        free(v);
    }
    tsdb_read_end(h->cp->db, rd);
    cJSON_Delete(pd);
    if (rc == -EINVAL) return body;
    if (rc) return NULL;
    return body;
}

/* Appends Prometheus's label sets (a list of {"name":"value",...}) to r. 0 or -ENOMEM. */
static int add_prom_series(query_result *r, const cJSON *data) {
    const cJSON *set;
    cJSON_ArrayForEach(set, data) {
        if (!cJSON_IsObject(set)) continue;
        size_t nl = (size_t)cJSON_GetArraySize(set);
        if (r->n == r->cap) {
            size_t nc = r->cap ? r->cap * 2 : 64;
            query_series *ns = realloc(r->s, nc * sizeof *ns);
            if (!ns) return -ENOMEM;
            r->s = ns;
            r->cap = nc;
        }
        query_series *qs = &r->s[r->n++];
        memset(qs, 0, sizeof *qs);
        qs->names = calloc(nl ? nl : 1, sizeof(char *));
        qs->values = calloc(nl ? nl : 1, sizeof(char *));
        if (!qs->names || !qs->values) return -ENOMEM;
        const cJSON *l;
        cJSON_ArrayForEach(l, set) {
            if (!cJSON_IsString(l) || !l->string) continue;
            /* sorted by name, as the store's (insertion: label sets are small) */
            size_t at = qs->nlabels;
            while (at && strcmp(qs->names[at - 1], l->string) > 0)
                at--;
            char *nm = strdup(l->string), *vl = strdup(l->valuestring);
            if (!nm || !vl) {
                free(nm);
                free(vl);
                return -ENOMEM;
            }
            memmove(qs->names + at + 1, qs->names + at, (qs->nlabels - at) * sizeof(char *));
            memmove(qs->values + at + 1, qs->values + at, (qs->nlabels - at) * sizeof(char *));
            qs->names[at] = nm;
            qs->values[at] = vl;
            qs->nlabels++;
        }
    }
    return 0;
}

/* /api/v1/series: the label sets of the store's series selected by match[] (required). */
static char *series_json(cp_http *h, const listing *q, int *status) {
    tsdb *db = h->cp->db;
    pq_node *sel[MAX_MATCH] = {0};
    char *body = NULL;
    int64_t s, e;
    *status = 200;
    if (!q->nmatch) return bad_data(status, "no match[] parameter provided");
    if (q->nmatch > MAX_MATCH)
        return bad_data(status, "more than %d match[] parameters", MAX_MATCH);
    if (listing_range(q, &s, &e, &body, status) ||
        parse_matches(q->match, q->nmatch, sel, &body, status))
        goto out;
    query_result r = {0};
    r.engine = 1;
    uint32_t n = tsdb_series_count(db);
    unsigned rd = tsdb_read_begin(db); /* label strings are copied before the end */
    for (uint32_t id = 1; id <= n; id++) {
        const tsdb_label *l;
        size_t nl;
        if (tsdb_series_labels(db, id, &l, &nl)) continue;
        if (!series_selected(db, id, l, nl, sel, q->nmatch, s, e)) continue;
        if (r.n == r.cap) {
            size_t nc = r.cap ? r.cap * 2 : 64;
            query_series *ns = realloc(r.s, nc * sizeof *ns);
            if (!ns) break;
            r.s = ns;
            r.cap = nc;
        }
        query_series *qs = &r.s[r.n++];
        memset(qs, 0, sizeof *qs);
        qs->names = calloc(nl ? nl : 1, sizeof(char *));
        qs->values = calloc(nl ? nl : 1, sizeof(char *));
        if (!qs->names || !qs->values) break;
        for (size_t i = 0; i < nl; i++) {
            qs->names[i] = strdup(l[i].name);
            qs->values[i] = strdup(l[i].value);
            qs->nlabels = i + 1;
        }
    }
    tsdb_read_end(db, rd);
    cJSON *pd = prom_listing(h, NULL, q, r.warning, sizeof r.warning);
    if (pd && add_prom_series(&r, pd)) {
        cJSON_Delete(pd);
        query_result_fini(&r);
        goto out; /* out of memory: NULL body, a 500 */
    }
    cJSON_Delete(pd);
    body = query_series_json(&r);
    query_result_fini(&r);
out:
    for (size_t i = 0; i < q->nmatch && i < MAX_MATCH; i++)
        promql_free(sel[i]);
    return body;
}

/* /api/v1/metadata: the store keeps no type or help text: its metric names are "unknown";
 * where a Prometheus is configured its metadata is merged in (its entries, which carry a type
 * and help, win for a name both have), the limit applied to the union. */
static char *metadata_json(cp_http *h, const char *metric, const char *limit_s, int *status) {
    listing q = {0};
    const char **v;
    size_t n;
    char *body = NULL;
    *status = 200;
    long limit = -1;
    if (limit_s && *limit_s) {
        char *end;
        limit = strtol(limit_s, &end, 10);
        if (*end || limit < 0)
            return bad_data(status, "invalid parameter \"limit\": \"%.50s\"", limit_s);
    }
    /* Prometheus first: the store's names are held (tsdb_read_begin) only while the JSON is
     * built, never across a request */
    char warning[512] = "";
    cJSON *pd = NULL;
    if (h->cp->prom) {
        char perr[400];
        if (prom_metadata(h->cp->prom, metric, &pd, perr, sizeof perr))
            snprintf(warning, sizeof warning, PROM_WARNING "%s", perr);
    }
    unsigned rd = tsdb_read_begin(h->cp->db);
    int rc = collect_strings(h, "__name__", &q, &v, &n, &body, status);
    if (rc) {
        tsdb_read_end(h->cp->db, rd);
        cJSON_Delete(pd);
        return rc == -EINVAL ? body : NULL;
    }
    size_t np = pd ? (size_t)cJSON_GetArraySize(pd) : 0;
    if (np) {
        const char **nv = realloc(v, (n + np) * sizeof *nv);
        if (!nv) {
            free(v);
            tsdb_read_end(h->cp->db, rd);
            cJSON_Delete(pd);
            return NULL;
        }
        v = nv;
        const cJSON *it;
        cJSON_ArrayForEach(it, pd) {
            if (it->string && cJSON_IsArray(it)) v[n++] = it->string;
        }
    }
    if (n > 1) qsort(v, n, sizeof *v, cmp_cstr);
    cJSON *o = cJSON_CreateObject(), *d = cJSON_AddObjectToObject(o, "data");
    cJSON_AddStringToObject(o, "status", "success");
    long count = 0;
    for (size_t i = 0; i < n && (limit < 0 || count < limit); i++) {
        if (i && !strcmp(v[i], v[i - 1])) continue;
        if (metric && *metric && strcmp(metric, v[i])) continue;
        const cJSON *theirs = pd ? cJSON_GetObjectItemCaseSensitive(pd, v[i]) : NULL;
        if (cJSON_IsArray(theirs)) {
            cJSON_AddItemToObject(d, v[i], cJSON_Duplicate(theirs, 1));
        } else {
            cJSON *arr = cJSON_AddArrayToObject(d, v[i]), *m = cJSON_CreateObject();
            cJSON_AddStringToObject(m, "type", "unknown");
            cJSON_AddStringToObject(m, "help", "");
            cJSON_AddStringToObject(m, "unit", "");
            cJSON_AddItemToArray(arr, m);
        }
        count++;
    }
    if (warning[0])
        cJSON_AddItemToArray(cJSON_AddArrayToObject(o, "warnings"), cJSON_CreateString(warning));
    free(v);
    body = cJSON_PrintUnformatted(o); /* the names were copied into o: no longer held */
    tsdb_read_end(h->cp->db, rd);
    cJSON_Delete(o);
    cJSON_Delete(pd);
    return body;
}

static char *buildinfo_json(void) {
    /* the Prometheus HTTP API level Tide implements, so clients (Grafana) pick the right
     * features; "application" says who answers */
    return strdup(
        "{\"status\":\"success\",\"data\":{\"version\":\"2.42.0\",\"revision\":\"tide-" TIDE_VERSION
        "\",\"branch\":\"tide\",\"buildUser\":\"tide\",\"buildDate\":\"\","
        "\"goVersion\":\"none\",\"application\":\"tide-controlplane " TIDE_VERSION "\"}}");
}

/* ---- metrics ---- */

static void metric(strbuf *b, const char *name, const char *type, const char *help, double v) {
    strbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help, name, type, name, v);
}

static char *metrics_text(cp_http *h) {
    strbuf b = {0};
    tsdb_stats st;
    tsdb_get_stats(h->cp->db, &st);
    pthread_mutex_lock(&h->mu);
    double rate = h->ingest_rate;
    int64_t agents = h->agents_connected;
    pthread_mutex_unlock(&h->mu);
    metric(&b, "tide_agents_connected", "gauge", "Agents connected now.", (double)agents);
    metric(&b, "tide_ingest_samples_per_second", "gauge",
           "Samples stored per second over the last second.", rate);
    metric(&b, "tide_tsdb_samples_appended_total", "counter",
           "Samples stored since the control plane started (replayed ones not counted).",
           (double)st.samples_appended);
    metric(&b, "tide_tsdb_samples_dropped_total", "counter",
           "Samples dropped as resends or out of order.", (double)st.samples_dropped);
    metric(&b, "tide_tsdb_append_errors_total", "counter",
           "Appends refused because the WAL could not be written.", (double)st.append_errors);
    metric(&b, "tide_tsdb_series", "gauge", "Series in the store.", (double)st.series);
    metric(&b, "tide_tsdb_series_refused_total", "counter",
           "New series refused because the store holds max_series.", (double)st.series_refused);
    metric(&b, "tide_tsdb_series_removed_total", "counter",
           "Series removed because nothing of them was left inside retention.",
           (double)st.series_removed);
    static const char *res[TSDB_NRES] = {"raw", "1m", "10m"};
    strbuf_printf(
        &b, "# HELP tide_tsdb_points Points held per resolution.\n# TYPE tide_tsdb_points gauge\n");
    for (int r = 0; r < TSDB_NRES; r++)
        strbuf_printf(&b, "tide_tsdb_points{resolution=\"%s\"} %llu\n", res[r],
                      (unsigned long long)st.points[r]);
    strbuf_printf(&b,
                  "# HELP tide_tsdb_memory_bytes Memory of the compressed chunks per resolution.\n"
                  "# TYPE tide_tsdb_memory_bytes gauge\n");
    for (int r = 0; r < TSDB_NRES; r++)
        strbuf_printf(&b, "tide_tsdb_memory_bytes{resolution=\"%s\"} %llu\n", res[r],
                      (unsigned long long)st.bytes[r]);
    metric(&b, "tide_tsdb_wal_bytes", "gauge", "Size of the live WAL segments.",
           (double)st.wal_bytes);
    metric(&b, "tide_tsdb_wal_written_bytes_total", "counter", "Bytes written to the WAL.",
           (double)st.wal_written);
    strbuf_printf(&b,
                  "# HELP tide_tsdb_fsync_seconds WAL fsync latency.\n"
                  "# TYPE tide_tsdb_fsync_seconds summary\n"
                  "tide_tsdb_fsync_seconds_sum %.9f\ntide_tsdb_fsync_seconds_count %llu\n",
                  st.fsync_seconds_total, (unsigned long long)st.fsyncs);
    metric(&b, "tide_tsdb_fsync_seconds_max", "gauge", "Slowest WAL fsync since start.",
           st.fsync_seconds_max);
    metric(&b, "tide_tsdb_snapshots_total", "counter", "Snapshots written.", (double)st.snapshots);
    metric(&b, "tide_tsdb_snapshot_errors_total", "counter", "Snapshots that failed.",
           (double)st.snapshot_errors);
    metric(&b, "tide_tsdb_durable", "gauge",
           "1 while the WAL can be written (samples are "
           "acknowledged), 0 while it cannot.",
           st.durable_ok);
    metric(&b, "tide_queries_total", "counter", "query_range requests (HTTP and tidectl).",
           (double)atomic_load(&h->queries));
    metric(&b, "tide_query_errors_total", "counter", "query_range requests answered with an error.",
           (double)atomic_load(&h->query_errors));
    metric(&b, "tide_query_timeouts_total", "counter",
           "Queries stopped by query_timeout (running or queued).",
           (double)atomic_load(&h->query_timeouts));
    metric(&b, "tide_query_cancelled_total", "counter",
           "Queries stopped because their client went away or at shutdown.",
           (double)atomic_load(&h->query_cancels));
    metric(&b, "tide_query_rejected_total", "counter",
           "Queries answered 503 at once because query_max_queue queries were waiting.",
           (double)atomic_load(&h->query_rejected));
    metric(&b, "tide_query_samples_exceeded_total", "counter",
           "Queries refused for holding more than query_max_samples samples.",
           (double)atomic_load(&h->query_budget));
    pthread_mutex_lock(&h->gate_mu);
    int active = h->active, waiting = h->waiting;
    pthread_mutex_unlock(&h->gate_mu);
    metric(&b, "tide_queries_running", "gauge", "Queries being evaluated now.", active);
    metric(&b, "tide_queries_queued", "gauge", "Queries waiting for an evaluation slot.", waiting);
    metric(&b, "tide_http_requests_total", "counter", "HTTP requests served.",
           (double)atomic_load(&h->http_requests));
    metric(&b, "tide_http_request_timeouts_total", "counter",
           "HTTP connections closed for sending no whole request within http_request_timeout.",
           (double)(http_guard_timeouts(h->guard) + http_guard_timeouts(h->guard_health)));
    prom_stats ps;
    prom_get_stats(h->cp->prom, &ps);
    metric(&b, "tide_prometheus_requests_total", "counter", "HTTP requests sent to Prometheus.",
           (double)ps.requests);
    metric(&b, "tide_prometheus_fetch_errors_total", "counter",
           "Prometheus history fetches that failed (after retries).", (double)ps.errors);
    metric(&b, "tide_prometheus_retries_total", "counter", "Retried Prometheus requests.",
           (double)ps.retries);
    metric(&b, "tide_prometheus_configured", "gauge",
           "1 when a Prometheus URL is configured (--prometheus), 0 when not.",
           h->cp->prom ? 1 : 0);
    metric(&b, "tide_prometheus_up", "gauge",
           "1 when the last Prometheus fetch succeeded (or none was needed), 0 when it failed.",
           h->cp->prom ? ps.up : 1);
    metric(&b, "tide_uptime_seconds", "gauge", "Seconds since the control plane started.",
           (double)(tide_now_wall_ms() - h->cp->started_wall_ms) / 1000);
    strbuf extra = {0};
    metrics_build_info(&extra, TIDE_VERSION);
    metrics_process(&extra);
    if (extra.p) strbuf_printf(&b, "%s", extra.p);
    strbuf_fini(&extra);
    pthread_mutex_lock(&h->mu);
    if (h->loop_metrics) strbuf_printf(&b, "%s", h->loop_metrics);
    pthread_mutex_unlock(&h->mu);
    char *am = alerts_metrics_text(h->cp);
    if (am) strbuf_printf(&b, "%s", am);
    free(am);
    return b.p;
}

static void on_tick(struct ev_loop *loop, ev_timer *t, int revents) {
    (void)loop;
    (void)revents;
    cp_http *h = (cp_http *)((char *)t - offsetof(cp_http, tick));
    int64_t agents = cp_agents_connected(h->cp);
    tsdb_stats st;
    tsdb_get_stats(h->cp->db, &st);
    int64_t now = tide_now_mono_ms();
    /* the agents table and the workloads live on this thread: their series are rendered here
     * once a second and served from the copy */
    strbuf lm = {0};
    cJSON *aj = cp_agents_json(h->cp), *wj = workload_metrics_json(h->cp);
    int64_t wall = tide_now_wall_ms();
    metrics_nodes(&lm, aj, wall);
    metrics_workloads(&lm, wj, wall / 1000);
    cluster_metrics(h->cp, &lm);
    cJSON_Delete(aj);
    cJSON_Delete(wj);
    if (lm.oom) strbuf_fini(&lm); /* an incomplete text would mislead: none until next tick */
    pthread_mutex_lock(&h->mu);
    free(h->loop_metrics);
    h->loop_metrics = lm.p;
    h->agents_connected = agents;
    if (h->last_tick_ms && now > h->last_tick_ms)
        h->ingest_rate = (double)(st.samples_appended - h->last_samples) * 1000.0 /
                         (double)(now - h->last_tick_ms);
    h->last_samples = st.samples_appended;
    h->last_tick_ms = now;
    atomic_store(&h->loop_alive_ms, now);
    pthread_mutex_unlock(&h->mu);
}

/* ---- HTTP ---- */

#define NFORM 8
#define FORM_MAX (1u << 20) /* bytes of one form field */
typedef struct req_ctx {
    struct MHD_PostProcessor *pp;
    char *form[NFORM]; /* form_keys from a POST body */
    size_t form_len[NFORM], form_cap[NFORM];
    char **match; /* match[] values, from the POST body and the URL */
    size_t nmatch;
    int form_error; /* a field over FORM_MAX or too many match[]: answered 400 */
} req_ctx;

static const char *const form_keys[NFORM] = {"query", "start",   "end",   "step",
                                             "time",  "timeout", "limit", "metric"};

static int match_add(req_ctx *rc, const char *data, size_t size, int append) {
    if (append && rc->nmatch) {
        char *last = rc->match[rc->nmatch - 1];
        size_t have = strlen(last);
        if (have + size > FORM_MAX) return -1;
        char *np = realloc(last, have + size + 1);
        if (!np) return -1;
        memcpy(np + have, data, size);
        np[have + size] = 0;
        rc->match[rc->nmatch - 1] = np;
        return 0;
    }
    if (rc->nmatch >= MAX_MATCH || size > FORM_MAX) return -1;
    char **nm = realloc(rc->match, (rc->nmatch + 1) * sizeof *nm);
    if (!nm) return -1;
    rc->match = nm;
    if (!(nm[rc->nmatch] = strndup(data, size))) return -1;
    rc->nmatch++;
    return 0;
}

static enum MHD_Result post_iter(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *filename, const char *content_type,
                                 const char *transfer_encoding, const char *data, uint64_t off,
                                 size_t size) {
    (void)kind;
    (void)filename;
    (void)content_type;
    (void)transfer_encoding;
    req_ctx *rc = cls;
    if (rc->form_error) return MHD_YES; /* the rest of the body is read and dropped */
    if (!strcmp(key, "match[]")) {
        if (match_add(rc, data, size, off > 0)) rc->form_error = 1;
        return MHD_YES;
    }
    for (int i = 0; i < NFORM; i++) {
        if (strcmp(key, form_keys[i]) != 0) continue;
        size_t have = rc->form_len[i];
        if (off != have || have + size > FORM_MAX) {
            rc->form_error = 1;
            return MHD_YES;
        }
        if (have + size + 1 > rc->form_cap[i]) { /* geometric: the body comes in small pieces */
            size_t cap = rc->form_cap[i] ? rc->form_cap[i] : 256;
            while (cap < have + size + 1)
                cap *= 2;
            char *np = realloc(rc->form[i], cap);
            if (!np) {
                rc->form_error = 1;
                return MHD_YES;
            }
            rc->form[i] = np;
            rc->form_cap[i] = cap;
        }
        memcpy(rc->form[i] + have, data, size);
        rc->form[i][have + size] = 0;
        rc->form_len[i] = have + size;
    }
    return MHD_YES;
}

static enum MHD_Result get_match(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value) {
    (void)kind;
    req_ctx *rc = cls;
    if (key && value && !strcmp(key, "match[]") && match_add(rc, value, strlen(value), 0))
        rc->form_error = 1;
    return MHD_YES;
}

static enum MHD_Result respond(struct MHD_Connection *c, unsigned code, char *body,
                               const char *ctype) {
    if (!body) {
        code = 503;
        body = strdup("out of memory\n");
        ctype = "text/plain";
        if (!body) return MHD_NO;
    }
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", ctype);
    enum MHD_Result ok = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ok;
}

/* /livez: 200 while the loop ticks, 503 once it has not for LIVEZ_STALL_MS (a full disk, which
 * /healthz reports, is no reason to restart the daemon). */
static enum MHD_Result livez(cp_http *h, struct MHD_Connection *c) {
    int64_t alive = atomic_load(&h->loop_alive_ms), now = tide_now_mono_ms();
    char buf[160];
    if (!alive || now - alive <= LIVEZ_STALL_MS)
        return respond(c, 200, strdup("ok: the event loop runs\n"), "text/plain");
    snprintf(buf, sizeof buf, "event loop stalled: no tick for %lld ms\n",
             (long long)(now - alive));
    return respond(c, 503, strdup(buf), "text/plain");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **con_cls) {
    (void)version;
    cp_http *h = cls;
    int is_post = strcmp(method, "POST") == 0;
    if (!*con_cls) {
        req_ctx *rc = calloc(1, sizeof *rc);
        if (!rc) return MHD_NO;
        if (is_post) rc->pp = MHD_create_post_processor(c, 16384, post_iter, rc);
        *con_cls = rc;
        return MHD_YES;
    }
    req_ctx *rc = *con_cls;
    if (*upload_size) {
        if (rc->pp && MHD_post_process(rc->pp, upload_data, *upload_size) != MHD_YES) {
            *upload_size = 0;
            return respond(c, 400, query_error_json("bad_data", "malformed form body"),
                           "application/json");
        }
        *upload_size = 0;
        return MHD_YES;
    }
    http_guard_request_received(c); /* whole request in: its deadline stops */
    if (h->bearer[0] && strcmp(url, "/healthz") != 0) {
        const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
        size_t tl = strlen(h->bearer);
        int ok = auth && !strncmp(auth, "Bearer ", 7) && strlen(auth + 7) == tl;
        unsigned char diff = 0; /* constant time over the token */
        for (size_t i = 0; ok && i < tl; i++)
            diff |= (unsigned char)(auth[7 + i] ^ h->bearer[i]);
        if (!ok || diff) {
            struct MHD_Response *r = MHD_create_response_from_buffer(
                strlen("unauthorized: send Authorization: Bearer TOKEN\n"),
                (void *)"unauthorized: send Authorization: Bearer TOKEN\n", MHD_RESPMEM_PERSISTENT);
            if (!r) return MHD_NO;
            MHD_add_response_header(r, "WWW-Authenticate", "Bearer");
            MHD_add_response_header(r, "Content-Type", "text/plain");
            enum MHD_Result res = MHD_queue_response(c, 401, r);
            MHD_destroy_response(r);
            return res;
        }
    }
    atomic_fetch_add(&h->http_requests, 1);
    if (strcmp(method, "GET") != 0 && !is_post && strcmp(method, "HEAD") != 0)
        return respond(c, 405, strdup("method not allowed\n"), "text/plain");
    if (!strncmp(url, "/api/v1/", 8) || !strncmp(url, "/-/", 3)) {
        MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, get_match, rc);
        const char *p[NFORM];
        for (int i = 0; i < NFORM; i++) {
            p[i] = rc->form[i];
            if (!p[i]) p[i] = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, form_keys[i]);
        }
        if (rc->form_error)
            return respond(c, 400,
                           query_error_json("bad_data",
                                            "a form field is larger than 1 MiB or there are more "
                                            "than 64 match[] parameters"),
                           "application/json");
        int fd = -1;
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (ci) fd = ci->connect_fd;
        qopts o = {p[5], fd};
        listing q = {rc->match, rc->nmatch, p[1], p[2]};
        int status = 500;
        char *body;
        if (!strcmp(url, "/api/v1/query_range"))
            body = query_range_opts(h, p[0], p[1], p[2], p[3], &o, &status);
        else if (!strcmp(url, "/api/v1/query"))
            body = cp_http_query_instant(h, p[0], p[4], &o, &status);
        else if (!strcmp(url, "/api/v1/series"))
            body = series_json(h, &q, &status);
        else if (!strcmp(url, "/api/v1/labels"))
            body = label_strings(h, NULL, &q, &status);
        else if (!strncmp(url, "/api/v1/label/", 14) && strlen(url) > 21 &&
                 !strcmp(url + strlen(url) - 7, "/values")) {
            char name[256];
            size_t n = strlen(url) - 14 - 7;
            if (n == 0 || n >= sizeof name)
                return respond(c, 400, query_error_json("bad_data", "invalid label name"),
                               "application/json");
            memcpy(name, url + 14, n);
            name[n] = 0;
            if (!query_label_name_ok(name))
                body = bad_data(&status, "invalid label name: \"%.100s\"", name);
            else
                body = label_strings(h, name, &q, &status);
        } else if (!strcmp(url, "/api/v1/alerts") || !strcmp(url, "/api/v1/rules")) {
            /* the alerts module's last rendering (Prometheus's shape, for Grafana) */
            body = url[8] == 'a' ? alerts_api_alerts(h->cp) : alerts_api_rules(h->cp);
            status = 200;
            if (!body) {
                status = 503;
                body = query_error_json("unavailable", "alert rules are not running");
            }
        } else if (!strcmp(url, "/api/v1/status/buildinfo")) {
            status = 200;
            body = buildinfo_json();
        } else if (!strcmp(url, "/api/v1/metadata"))
            body = metadata_json(h, p[7], p[6], &status);
        else if (!strcmp(url, "/-/healthy"))
            return respond(c, 200, strdup("Tide is Healthy.\n"), "text/plain; charset=utf-8");
        else if (!strcmp(url, "/-/ready")) {
            if (atomic_load(&h->stopping))
                return respond(c, 503, strdup("Service Unavailable\n"), "text/plain");
            return respond(c, 200, strdup("Tide is Ready.\n"), "text/plain; charset=utf-8");
        } else {
            char msg[300];
            snprintf(msg, sizeof msg, "unknown API endpoint: %.200s", url);
            status = 404;
            body = query_error_json("not_found", msg);
        }
        return respond(c, (unsigned)status, body, "application/json");
    }
    if (!strcmp(url, "/metrics"))
        return respond(c, 200, metrics_text(h), "text/plain; version=0.0.4; charset=utf-8");
    if ((!strcmp(url, "/") || !strcmp(url, "/ui")) && h->ui) {
        const char *hs = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "hours");
        char *end = NULL;
        long hours = hs ? strtol(hs, &end, 10) : 6;
        if (hs && (!*hs || *end || hours < 1 || hours > 168))
            return respond(c, 400, strdup("hours: a whole number 1..168\n"), "text/plain");
        char *page = ui_page(h->ui, (int)hours);
        if (!page)
            return respond(c, 503, strdup("the control plane's loop did not render the page\n"),
                           "text/plain");
        return respond(c, 200, page, "text/html; charset=utf-8");
    }
    if (!strcmp(url, "/livez")) return livez(h, c); /* liveness (readiness is /healthz) */
    if (!strcmp(url, "/healthz")) {
        tsdb_stats st;
        tsdb_get_stats(h->cp->db, &st);
        char buf[600];
        if (st.durable_ok) return respond(c, 200, strdup("ok\n"), "text/plain");
        snprintf(buf, sizeof buf, "store: %s\n", tsdb_status(h->cp->db));
        return respond(c, 503, strdup(buf), "text/plain");
    }
    char msg[300];
    snprintf(msg, sizeof msg,
             "not found: %.200s (try /, /api/v1/query, /metrics, /healthz, /livez)\n", url);
    return respond(c, 404, strdup(msg), "text/plain");
}

/* The liveness listener (health_listen): /healthz only, so that clients of the query API,
 * slow or many, cannot starve the probe. */
static enum MHD_Result on_health_request(void *cls, struct MHD_Connection *c, const char *url,
                                         const char *method, const char *version,
                                         const char *upload_data, size_t *upload_size,
                                         void **con_cls) {
    (void)version;
    (void)upload_data;
    cp_http *h = cls;
    if (!*con_cls) {
        *con_cls = c; /* any non-NULL marker: the headers are in */
        return MHD_YES;
    }
    if (*upload_size) {
        *upload_size = 0; /* a body is ignored */
        return MHD_YES;
    }
    http_guard_request_received(c);
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return respond(c, 405, strdup("method not allowed\n"), "text/plain");
    if (!strcmp(url, "/livez")) return livez(h, c);
    if (strcmp(url, "/healthz") != 0)
        return respond(c, 404, strdup("not found (this listener serves /healthz and /livez)\n"),
                       "text/plain");
    tsdb_stats st;
    tsdb_get_stats(h->cp->db, &st);
    if (st.durable_ok) return respond(c, 200, strdup("ok\n"), "text/plain");
    char buf[600];
    snprintf(buf, sizeof buf, "store: %s\n", tsdb_status(h->cp->db));
    return respond(c, 503, strdup(buf), "text/plain");
}

static void on_health_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                                enum MHD_RequestTerminationCode toe) {
    (void)cls;
    (void)toe;
    http_guard_request_done(c);
    *con_cls = NULL;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    (void)cls;
    (void)toe;
    http_guard_request_done(c);
    req_ctx *rc = *con_cls;
    if (!rc) return;
    if (rc->pp) MHD_destroy_post_processor(rc->pp);
    for (int i = 0; i < NFORM; i++)
        free(rc->form[i]);
    for (size_t i = 0; i < rc->nmatch; i++)
        free(rc->match[i]);
    free(rc->match);
    free(rc);
    *con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void mhd_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    char buf[512];
    vsnprintf(buf, sizeof buf, fmt, ap);
    size_t n = strlen(buf);
    while (n && buf[n - 1] == '\n')
        buf[--n] = 0;
    log_warn("http", "%s", buf);
}

/* TLS 1.2 and 1.3 only, GnuTLS's normal cipher choice otherwise. */
#define TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"
#define TLS_MAX_PEM (1u << 20)

/* Reads a PEM file (at most 1 MiB, a regular file; with secret, not readable by others) into
 * *out (NUL-terminated, caller frees). 0 or -errno with err naming the key and the file. */
static int read_pem(const char *path, const char *what, int secret, char **out, size_t *len,
                    char *err, size_t errlen) {
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        int e = errno;
        if (fd >= 0) close(fd);
        snprintf(err, errlen, "%s %s: %s", what, path, strerror(e));
        return -e;
    }
    const char *why = !S_ISREG(st.st_mode)            ? "not a regular file"
                      : st.st_size > TLS_MAX_PEM      ? "larger than 1 MiB"
                      : st.st_size == 0               ? "empty"
                      : secret && (st.st_mode & 0004) ? "readable by others (chmod o-r)"
                                                      : NULL;
    if (why) {
        close(fd);
        snprintf(err, errlen, "%s %s: %s", what, path, why);
        return -EINVAL;
    }
    size_t n = (size_t)st.st_size, got = 0;
    char *b = malloc(n + 1);
    while (b && got < n) {
        ssize_t r = read(fd, b + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    if (!b || got != n) {
        free(b);
        snprintf(err, errlen, "%s %s: %s", what, path, b ? "short read" : "out of memory");
        return b ? -EIO : -ENOMEM;
    }
    b[n] = 0;
    if (!strstr(b, "-----BEGIN ")) {
        if (secret) explicit_bzero(b, n);
        free(b);
        snprintf(err, errlen, "%s %s: no PEM block (-----BEGIN ...)", what, path);
        return -EINVAL;
    }
    *out = b;
    if (len) *len = n;
    return 0;
}

/* Starts a libmicrohttpd daemon on listen: the API listener, or (health) the liveness one.
 * Every connection must deliver a whole request within http_request_timeout (a guard reaps
 * the ones that do not: slowloris), one address may hold http_max_connections_per_address. */
static int start_mhd(cp_http *h, const char *listen, int health, char *err, size_t errlen) {
    const struct cp_config *cfg = &h->cp->cfg;
    char host[256];
    int port;
    if (cfg_split_hostport(listen, host, sizeof host, &port) != 0) {
        snprintf(err, errlen, "%s %s: expected ADDR:PORT", health ? "health_listen" : "http",
                 listen);
        return -EINVAL;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai = NULL;
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    int gai = getaddrinfo(host[0] ? host : NULL, ps, &hints, &ai);
    if (gai) {
        snprintf(err, errlen, "http %s: %s", listen, gai_strerror(gai));
        return -EINVAL;
    }
    struct sockaddr_storage sa;
    memcpy(&sa, ai->ai_addr, ai->ai_addrlen);
    unsigned flags =
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    freeaddrinfo(ai);
    http_guard **guard = health ? &h->guard_health : &h->guard;
    int rc = http_guard_new(guard, health ? "health listener" : "http listener",
                            cfg->http_request_timeout_ms);
    if (rc) {
        snprintf(err, errlen, "http %s: cannot start the request deadline thread: %s", listen,
                 strerror(-rc));
        return rc;
    }
    unsigned limit = health ? HEALTH_MAX_CONNECTIONS : HTTP_MAX_CONNECTIONS;
    unsigned per_ip = (unsigned)cfg->http_max_connections_per_address;
    if (per_ip > limit) per_ip = limit;
    /* inactivity: a whole request must come within http_request_timeout anyway */
    unsigned idle_s = (unsigned)((cfg->http_request_timeout_ms + 999) / 1000);
    /* HTTPS on the API listener when configured (the liveness listener stays plain: it tells
     * only "ok"); without TLS the option list ends before the certificate */
    int tls = !health && h->tls_cert;
    if (tls) flags |= MHD_USE_TLS;
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, health ? on_health_request : on_request, h,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_NOTIFY_COMPLETED, health ? on_health_completed : on_completed, h,
        MHD_OPTION_NOTIFY_CONNECTION, http_guard_notify, *guard, MHD_OPTION_CONNECTION_LIMIT, limit,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_ip, MHD_OPTION_CONNECTION_TIMEOUT,
        idle_s < 60 ? idle_s : 60u, tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, h->tls_cert,
        MHD_OPTION_HTTPS_MEM_KEY, h->tls_key, MHD_OPTION_HTTPS_PRIORITIES, TLS_PRIORITIES,
        MHD_OPTION_END);
    if (!d) {
        http_guard_free(*guard);
        *guard = NULL;
        if (tls) {
            snprintf(err, errlen,
                     "http %s: cannot start the HTTPS listener (address in use, or the "
                     "certificate and key do not load or do not match: see the log above)",
                     listen);
            return -EINVAL;
        }
        snprintf(err, errlen, "http %s: cannot listen (address in use or not local?)", listen);
        return -EADDRINUSE;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    if (health) {
        h->mhd_health = d;
        h->health_port = di ? di->port : port;
        log_info("http", "liveness listener on %s (port %d): /healthz", listen, h->health_port);
    } else {
        h->mhd = d;
        h->port = di ? di->port : port;
        log_info("http", "listening on %s (port %d, %s): /api/v1/query_range /metrics /healthz",
                 listen, h->port, tls ? "HTTPS, TLS 1.2+" : "plain HTTP");
    }
    return 0;
}

static int http_start(struct controlplane *cp, char *err, size_t errlen) {
    cp_http *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, errlen, "http: out of memory");
        return -ENOMEM;
    }
    h->cp = cp;
    pthread_mutex_init(&h->mu, NULL);
    pthread_mutex_init(&h->gate_mu, NULL);
    pthread_cond_init(&h->gate_cv, NULL);
    int rc = 0;
    const struct cp_config *c = &cp->cfg;
    h->ui = ui_new(cp); /* before the listeners: their threads read h->ui */
    if ((rc = work_pool_new(cp->loop, OPS_QUERY_THREADS, OPS_QUERY_QUEUE, &h->ops_pool)) < 0) {
        snprintf(err, errlen, "http: query worker pool: %s", strerror(-rc));
        goto fail;
    }
    if (c->http_bearer_token_file && c->http_bearer_token_file[0] &&
        (rc = bearer_read(c->http_bearer_token_file, "http_bearer_token_file", h->bearer,
                          sizeof h->bearer, err, errlen)) != 0)
        goto fail;
    int has_cert = c->http_tls_cert_file && c->http_tls_cert_file[0];
    int has_key = c->http_tls_key_file && c->http_tls_key_file[0];
    if (has_cert != has_key) {
        snprintf(err, errlen, "http_tls_cert_file and http_tls_key_file go together: %s is empty",
                 has_cert ? "http_tls_key_file" : "http_tls_cert_file");
        rc = -EINVAL;
        goto fail;
    }
    if (has_cert && ((rc = read_pem(c->http_tls_cert_file, "http_tls_cert_file", 0, &h->tls_cert,
                                    NULL, err, errlen)) != 0 ||
                     (rc = read_pem(c->http_tls_key_file, "http_tls_key_file", 1, &h->tls_key,
                                    &h->tls_key_len, err, errlen)) != 0))
        goto fail;
    if (c->health_listen && c->health_listen[0] &&
        (rc = start_mhd(h, c->health_listen, 1, err, errlen)) != 0)
        goto fail;
    if (c->http && c->http[0] && (rc = start_mhd(h, c->http, 0, err, errlen)) != 0) {
        const cfg_key *k = cfg_find(cp_config_table, "http");
        if (!k || !k->def || strcmp(k->def, c->http) != 0 || has_cert) goto fail;
        /* the default listener is best effort: another daemon may hold the port */
        log_warn("http", "%s; running without the HTTP listener (set --http to insist)", err);
        rc = 0;
    }
    ev_timer_init(&h->tick, on_tick, METRICS_TICK_S, METRICS_TICK_S);
    ev_timer_start(cp->loop, &h->tick);
    ev_unref(cp->loop);
    cp->http = h;
    return 0;
fail:
    if (h->mhd_health) MHD_stop_daemon(h->mhd_health);
    http_guard_free(h->guard_health);
    free(h->tls_cert);
    if (h->tls_key) explicit_bzero(h->tls_key, h->tls_key_len);
    free(h->tls_key);
    ui_free(h->ui);
    work_pool_free(h->ops_pool);
    pthread_cond_destroy(&h->gate_cv);
    pthread_mutex_destroy(&h->gate_mu);
    pthread_mutex_destroy(&h->mu);
    free(h);
    return rc;
}

/* ---- ops commands ---- */

typedef struct qjob {
    work w; /* first */
    cp_http *h;
    ops_request *req;
    char *p[4];
    char *body;
    int status;
} qjob;

static void job_reply(qjob *j) {
    if (j->body && strlen(j->body) > OPS_MAX_FRAME - 4096) {
        ops_reply_error(j->req, 1,
                        "the result (%zu bytes) does not fit the ops socket's %u-byte "
                        "frames; narrow the query or read it from the HTTP endpoint",
                        strlen(j->body), OPS_MAX_FRAME);
        return;
    }
    cJSON *d = cJSON_CreateObject();
    cJSON_AddNumberToObject(d, "http_status", j->status);
    cJSON_AddStringToObject(d, "body", j->body ? j->body : "");
    ops_reply(j->req, d);
}

static void job_free(qjob *j) {
    for (int i = 0; i < 4; i++)
        free(j->p[i]);
    free(j->body);
    free(j);
}

static void job_run(work *w) {
    qjob *j = (qjob *)w;
    j->body = cp_http_query_range(j->h, j->p[0], j->p[1], j->p[2], j->p[3], &j->status);
}

static void job_done(work *w, int status) {
    qjob *j = (qjob *)w;
    if (status == -ECANCELED)
        ops_reply_error(j->req, 1, "the control plane is stopping: query not run");
    else
        job_reply(j);
    job_free(j);
}

static const char *arg_str(const cJSON *args, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(args, key);
    if (cJSON_IsString(v)) return v->valuestring;
    return NULL;
}

/* {"query","start","end","step"} -> {"http_status": N, "body": "<the HTTP endpoint's JSON>"} */
static void op_query(ops_request *req, const cJSON *args) {
    struct controlplane *cp = ops_cp(req);
    cp_http *h = cp->http;
    if (!h) {
        ops_reply_error(req, 1, "the query module is not running");
        return;
    }
    qjob *j = calloc(1, sizeof *j);
    if (!j) {
        ops_reply_error(req, 1, "out of memory");
        return;
    }
    j->h = h;
    j->req = req;
    for (int i = 0; i < 4; i++) {
        const char *v = arg_str(args, form_keys[i]);
        if (v && !(j->p[i] = strdup(v))) {
            job_free(j);
            ops_reply_error(req, 1, "out of memory");
            return;
        }
    }
    int rc = work_submit(h->ops_pool, &j->w, job_run, job_done);
    if (rc < 0) {
        job_free(j);
        if (rc == -EAGAIN)
            ops_reply_error(req, 1,
                            "too many ops queries are running and queued (%d + %d); try again",
                            OPS_QUERY_THREADS, OPS_QUERY_QUEUE);
        else
            ops_reply_error(req, 1, "cannot run the query: %s", strerror(-rc));
    }
}

/* {"match": optional selector} -> {"series": [...], "status": store status} */
static void op_series(ops_request *req, const cJSON *args) {
    struct controlplane *cp = ops_cp(req);
    tsdb *db = cp->db;
    const char *match = arg_str(args, "match");
    query_expr *e = NULL;
    char err[300];
    if (match && match[0] && query_parse(match, &e, err, sizeof err) != 0) {
        ops_reply_error(req, 2, "%s", err);
        return;
    }
    if (e && e->agg) {
        query_expr_free(e);
        ops_reply_error(req, 2, "--match takes a selector, not sum/avg");
        return;
    }
    cJSON *out = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(out, "series");
    static const char *res[TSDB_NRES] = {"raw", "1m", "10m"};
    uint32_t n = db ? tsdb_series_count(db) : 0;
    for (uint32_t id = 1; id <= n; id++) {
        const tsdb_label *l;
        size_t nl;
        if (tsdb_series_labels(db, id, &l, &nl) || nl > 64) continue;
        const char *names[64], *values[64];
        for (size_t i = 0; i < nl; i++) {
            names[i] = l[i].name;
            values[i] = l[i].value;
        }
        if (e && !query_match(e, names, values, nl)) continue;
        tsdb_series_info info;
        if (tsdb_series_stat(db, id, &info)) continue;
        cJSON *o = cJSON_CreateObject(), *lab = cJSON_AddObjectToObject(o, "labels");
        for (size_t i = 0; i < nl; i++)
            cJSON_AddStringToObject(lab, names[i], values[i]);
        cJSON_AddNumberToObject(o, "id", id);
        cJSON_AddNumberToObject(o, "samples", (double)info.samples);
        cJSON_AddNumberToObject(o, "first_ms", (double)info.first_ms);
        cJSON_AddNumberToObject(o, "last_ms", (double)info.last_ms);
        cJSON *pts = cJSON_AddObjectToObject(o, "points"),
              *by = cJSON_AddObjectToObject(o, "bytes");
        for (int r = 0; r < TSDB_NRES; r++) {
            cJSON_AddNumberToObject(pts, res[r], (double)info.points[r]);
            cJSON_AddNumberToObject(by, res[r], (double)info.bytes[r]);
        }
        cJSON_AddItemToArray(arr, o);
    }
    cJSON_AddStringToObject(out, "store", db ? tsdb_status(db) : "not open");
    cJSON_AddStringToObject(out, "prometheus", prom_status(cp->prom));
    query_expr_free(e);
    ops_reply(req, out);
}

OPS_COMMAND(query, "query", "query_range over the store and Prometheus: {query,start,end,step}",
            op_query)
OPS_COMMAND(series, "series", "series in the store with their points and memory: {match}",
            op_series)

static void http_stop(struct controlplane *cp) {
    cp_http *h = cp->http;
    if (!h) return;
    /* running queries stop at their next check, queued ones leave the queue */
    atomic_store(&h->stopping, 1);
    pthread_mutex_lock(&h->gate_mu);
    pthread_cond_broadcast(&h->gate_cv);
    pthread_mutex_unlock(&h->gate_mu);
    prom_cancel(cp->prom); /* queries waiting for Prometheus end now, not at its timeout */
    if (h->mhd) MHD_stop_daemon(h->mhd); /* joins its threads: no request is running after */
    if (h->mhd_health) MHD_stop_daemon(h->mhd_health);
    http_guard_free(h->guard);
    http_guard_free(h->guard_health);
    free(h->tls_cert);
    if (h->tls_key) explicit_bzero(h->tls_key, h->tls_key_len);
    free(h->tls_key);
    h->tls_cert = h->tls_key = NULL;
    ev_ref(cp->loop);
    ev_timer_stop(cp->loop, &h->tick);
    /* wait for the query jobs, answer what they finished and refuse what had not started */
    work_pool_free(h->ops_pool);
    h->ops_pool = NULL;
    pthread_cond_destroy(&h->gate_cv);
    pthread_mutex_destroy(&h->gate_mu);
    pthread_mutex_destroy(&h->mu);
    free(h->loop_metrics);
    ui_free(h->ui);
    free(h);
    cp->http = NULL;
}

CP_MODULE_AFTER(http, "http", PROM_MODULE_NAME "," ALERTS_MODULE_NAME, http_start, http_stop)
