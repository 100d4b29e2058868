/* http.c: HTTP listener (libmicrohttpd), Prometheus client set-up, /metrics, and the
 * query_range front end shared with the ops socket. */
#include "api/http.h"
#include "api/http_guard.h"
#include "bearer.h"

#include "agents/agents.h"
#include "config.h"
#include "cp.h"
#include "log.h"
#include "api/ops.h"
#include "query/prom.h"
#include "query/query.h"
#include "store/tsdb.h"

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
#include <sys/socket.h>

#define METRICS_TICK_S 1.0
#define HTTP_MAX_CONNECTIONS 64u
#define HEALTH_MAX_CONNECTIONS 16u

struct cp_http {
    struct controlplane *cp;
    prom *prom;
    struct MHD_Daemon *mhd, *mhd_health;
    http_guard *guard, *guard_health;
    int port, health_port;
    char bearer[4096]; /* http_bearer_token_file's token ("" = no authentication) */
    ev_timer tick;
    pthread_mutex_t mu; /* guards the loop-sampled values below */
    int64_t agents_connected;
    double ingest_rate; /* samples/s over the last tick */
    uint64_t last_samples;
    int64_t last_tick_ms;
    _Atomic uint64_t queries, query_errors, http_requests;
    /* ops `query` jobs run on worker threads and reply from the loop */
    pthread_mutex_t jobs_mu;
    pthread_cond_t jobs_cv;
    struct qjob *jobs;
    int running;
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

/* Runs the query over [start_ms, end_ms] and renders the result as a matrix, or (vector)
 * as an instant vector at start_ms; error bodies for a bad query (400), one whose result would
 * be too large (422) or a failed one (503). */
static char *evaluate(cp_http *h, const char *query, int64_t start_ms, int64_t end_ms,
                      int64_t step_ms, int vector, int *http_status) {
    query_ctx ctx = {h->cp->db, h->prom};
    query_result r;
    char err[600];
    int rc = query_range(&ctx, query, start_ms, end_ms, step_ms, &r, err, sizeof err);
    if (rc == -EINVAL) return bad_data(http_status, "%s", err);
    if (rc == -E2BIG) { /* as Prometheus: a valid query that cannot be executed, 422 */
        *http_status = 422;
        return query_error_json("execution", err);
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

char *cp_http_query_range(cp_http *h, const char *query, const char *start, const char *end,
                          const char *step, int *http_status) {
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
                        "invalid parameter \"start\": cannot parse \"%s\" to a valid "
                        "timestamp",
                        start);
    else if (query_parse_time(end, &e))
        body = bad_data(http_status,
                        "invalid parameter \"end\": cannot parse \"%s\" to a valid "
                        "timestamp",
                        end);
    else if (query_parse_duration(step, &st))
        body = bad_data(http_status,
                        "invalid parameter \"step\": cannot parse \"%s\" to a valid "
                        "duration",
                        step);
    else
        body = evaluate(h, query, s, e, st, 0, http_status);
    if (*http_status != 200) atomic_fetch_add(&h->query_errors, 1);
    if (!body) {
        *http_status = 503;
        atomic_fetch_add(&h->query_errors, 1);
    }
    return body;
}

/* Instant query (/api/v1/query): the query evaluated at one time (default now). */
static char *cp_http_query_instant(cp_http *h, const char *query, const char *time_s,
                                   int *http_status) {
    atomic_fetch_add(&h->queries, 1);
    int64_t t = tide_now_wall_ms();
    char *body;
    if (!query || !*query)
        body = bad_data(http_status, "missing parameter \"query\"");
    else if (time_s && *time_s && query_parse_time(time_s, &t))
        body = bad_data(http_status,
                        "invalid parameter \"time\": cannot parse \"%s\" to a "
                        "valid timestamp",
                        time_s);
    else
        body = evaluate(h, query, t, t, 1000, 1, http_status);
    if (*http_status != 200) atomic_fetch_add(&h->query_errors, 1);
    return body;
}

/* Label names (name == NULL) or the values of one label in the store, as Prometheus's
 * /api/v1/labels and /api/v1/label/NAME/values answer them. */
static char *label_strings(cp_http *h, const char *name) {
    tsdb *db = h->cp->db;
    uint32_t n = tsdb_series_count(db);
    size_t cap = 256, k = 0;
    const char **v = malloc(cap * sizeof *v);
    for (uint32_t id = 1; v && id <= n; id++) {
        const tsdb_label *l;
        size_t nl;
        if (tsdb_series_labels(db, id, &l, &nl)) continue;
        for (size_t i = 0; i < nl; i++) {
            if (name && strcmp(l[i].name, name) != 0) continue;
            if (k == cap) {
                const char **nv = realloc(v, (cap *= 2) * sizeof *nv);
                if (!nv) {
                    free(v);
                    return NULL;
                }
                v = nv;
            }
            v[k++] = name ? l[i].value : l[i].name;
        }
    }
    char *body = v ? query_strings_json(v, k) : NULL;
    free(v);
    return body;
}

/* ---- metrics ---- */

typedef struct mbuf {
    char *p;
    size_t n, cap;
} mbuf;

static void mput(mbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void mput(mbuf *b, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int need = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (need < 0) return;
        if (b->p && b->n + (size_t)need < b->cap) {
            b->n += (size_t)need;
            return;
        }
        size_t ncap = b->cap ? b->cap * 2 : 8192;
        while (ncap < b->n + (size_t)need + 1)
            ncap *= 2;
        char *np = realloc(b->p, ncap);
        if (!np) return;
        b->p = np;
        b->cap = ncap;
    }
}

static void metric(mbuf *b, const char *name, const char *type, const char *help, double v) {
    mput(b, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help, name, type, name, v);
}

static char *metrics_text(cp_http *h) {
    mbuf b = {0};
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
    static const char *res[TSDB_NRES] = {"raw", "1m", "10m"};
    mput(&b,
         "# HELP tide_tsdb_points Points held per resolution.\n# TYPE tide_tsdb_points gauge\n");
    for (int r = 0; r < TSDB_NRES; r++)
        mput(&b, "tide_tsdb_points{resolution=\"%s\"} %llu\n", res[r],
             (unsigned long long)st.points[r]);
    mput(&b, "# HELP tide_tsdb_memory_bytes Memory of the compressed chunks per resolution.\n"
             "# TYPE tide_tsdb_memory_bytes gauge\n");
    for (int r = 0; r < TSDB_NRES; r++)
        mput(&b, "tide_tsdb_memory_bytes{resolution=\"%s\"} %llu\n", res[r],
             (unsigned long long)st.bytes[r]);
    metric(&b, "tide_tsdb_wal_bytes", "gauge", "Size of the live WAL segments.",
           (double)st.wal_bytes);
    metric(&b, "tide_tsdb_wal_written_bytes_total", "counter", "Bytes written to the WAL.",
           (double)st.wal_written);
    mput(&b,
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
    metric(&b, "tide_http_requests_total", "counter", "HTTP requests served.",
           (double)atomic_load(&h->http_requests));
    metric(&b, "tide_http_request_timeouts_total", "counter",
           "HTTP connections closed for sending no whole request within http_request_timeout.",
           (double)(http_guard_timeouts(h->guard) + http_guard_timeouts(h->guard_health)));
    prom_stats ps;
    prom_get_stats(h->prom, &ps);
    metric(&b, "tide_prometheus_requests_total", "counter", "HTTP requests sent to Prometheus.",
           (double)ps.requests);
    metric(&b, "tide_prometheus_fetch_errors_total", "counter",
           "Prometheus history fetches that failed (after retries).", (double)ps.errors);
    metric(&b, "tide_prometheus_retries_total", "counter", "Retried Prometheus requests.",
           (double)ps.retries);
    metric(&b, "tide_prometheus_up", "gauge",
           "1 when the last Prometheus fetch succeeded (or none was needed), 0 when it failed.",
           h->prom ? ps.up : 0);
    metric(&b, "tide_uptime_seconds", "gauge", "Seconds since the control plane started.",
           (double)(tide_now_wall_ms() - h->cp->started_wall_ms) / 1000);
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
    pthread_mutex_lock(&h->mu);
    h->agents_connected = agents;
    if (h->last_tick_ms && now > h->last_tick_ms)
        h->ingest_rate = (double)(st.samples_appended - h->last_samples) * 1000.0 /
                         (double)(now - h->last_tick_ms);
    h->last_samples = st.samples_appended;
    h->last_tick_ms = now;
    pthread_mutex_unlock(&h->mu);
}

/* ---- HTTP ---- */

typedef struct req_ctx {
    struct MHD_PostProcessor *pp;
    char *form[5]; /* query, start, end, step, time from a POST body */
    size_t form_len[5], form_cap[5];
    int too_big; /* a form field passed 1 MiB: answered 400 (not a reset connection) */
} req_ctx;

static const char *const form_keys[5] = {"query", "start", "end", "step", "time"};

static enum MHD_Result post_iter(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *filename, const char *content_type,
                                 const char *transfer_encoding, const char *data, uint64_t off,
                                 size_t size) {
    (void)kind;
    (void)filename;
    (void)content_type;
    (void)transfer_encoding;
    req_ctx *rc = cls;
    for (int i = 0; i < 5; i++) {
        if (strcmp(key, form_keys[i]) != 0) continue;
        size_t have = rc->form_len[i];
        if (rc->too_big) return MHD_YES; /* drain the rest, answer 400 at the end */
        if (have + size > (1u << 20)) {
            rc->too_big = 1;
            return MHD_YES;
        }
        if (off != have) return MHD_NO;
        if (have + size + 1 > rc->form_cap[i]) { /* geometric: the body comes in small pieces */
            size_t cap = rc->form_cap[i] ? rc->form_cap[i] : 256;
            while (cap < have + size + 1)
                cap *= 2;
            char *np = realloc(rc->form[i], cap);
            if (!np) return MHD_NO;
            rc->form[i] = np;
            rc->form_cap[i] = cap;
        }
        memcpy(rc->form[i] + have, data, size);
        rc->form[i][have + size] = 0;
        rc->form_len[i] = have + size;
    }
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
    if (rc->too_big)
        return respond(c, 400, query_error_json("bad_data", "a form field is larger than 1 MiB"),
                       "application/json");
    atomic_fetch_add(&h->http_requests, 1);
    if (strcmp(method, "GET") != 0 && !is_post && strcmp(method, "HEAD") != 0)
        return respond(c, 405, strdup("method not allowed\n"), "text/plain");
    if (!strcmp(url, "/api/v1/query_range")) {
        const char *p[4];
        for (int i = 0; i < 4; i++) {
            p[i] = rc->form[i];
            if (!p[i]) p[i] = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, form_keys[i]);
        }
        int status = 500;
        char *body = cp_http_query_range(h, p[0], p[1], p[2], p[3], &status);
        return respond(c, (unsigned)status, body, "application/json");
    }
    if (!strcmp(url, "/api/v1/query")) {
        const char *q = rc->form[0]
                            ? rc->form[0]
                            : MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "query");
        const char *t = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "time");
        if (rc->form[4]) t = rc->form[4];
        int status = 500;
        char *body = cp_http_query_instant(h, q, t, &status);
        return respond(c, (unsigned)status, body, "application/json");
    }
    if (!strcmp(url, "/api/v1/labels"))
        return respond(c, 200, label_strings(h, NULL), "application/json");
    if (!strncmp(url, "/api/v1/label/", 14) && strlen(url) > 21 &&
        !strcmp(url + strlen(url) - 7, "/values")) {
        char name[256];
        size_t n = strlen(url) - 14 - 7;
        if (n == 0 || n >= sizeof name)
            return respond(c, 400, query_error_json("bad_data", "invalid label name"),
                           "application/json");
        memcpy(name, url + 14, n);
        name[n] = 0;
        return respond(c, 200, label_strings(h, name), "application/json");
    }
    if (!strcmp(url, "/metrics"))
        return respond(c, 200, metrics_text(h), "text/plain; version=0.0.4; charset=utf-8");
    if (!strcmp(url, "/healthz")) {
        tsdb_stats st;
        tsdb_get_stats(h->cp->db, &st);
        char buf[600];
        if (st.durable_ok) return respond(c, 200, strdup("ok\n"), "text/plain");
        snprintf(buf, sizeof buf, "store: %s\n", tsdb_status(h->cp->db));
        return respond(c, 503, strdup(buf), "text/plain");
    }
    char msg[300];
    snprintf(msg, sizeof msg, "not found: %.200s (try /api/v1/query_range, /metrics, /healthz)\n",
             url);
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
    if (strcmp(url, "/healthz") != 0)
        return respond(c, 404, strdup("not found (this listener serves /healthz only)\n"),
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
    for (int i = 0; i < 5; i++)
        free(rc->form[i]);
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
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, health ? on_health_request : on_request, h,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_NOTIFY_COMPLETED, health ? on_health_completed : on_completed, h,
        MHD_OPTION_NOTIFY_CONNECTION, http_guard_notify, *guard, MHD_OPTION_CONNECTION_LIMIT, limit,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_ip, MHD_OPTION_CONNECTION_TIMEOUT,
        idle_s < 60 ? idle_s : 60u, MHD_OPTION_END);
    if (!d) {
        http_guard_free(*guard);
        *guard = NULL;
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
        log_info("http", "listening on %s (port %d): /api/v1/query_range /metrics /healthz", listen,
                 h->port);
    }
    return 0;
}

struct prom *cp_http_prom(const struct controlplane *cp) {
    return cp && cp->http ? cp->http->prom : NULL;
}

static int http_start(struct controlplane *cp, char *err, size_t errlen) {
    cp_http *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, errlen, "http: out of memory");
        return -ENOMEM;
    }
    h->cp = cp;
    pthread_mutex_init(&h->mu, NULL);
    pthread_mutex_init(&h->jobs_mu, NULL);
    pthread_cond_init(&h->jobs_cv, NULL);
    int rc = 0;
    const struct cp_config *c = &cp->cfg;
    if (c->prometheus && c->prometheus[0]) {
        prom_options po = {
            .url = c->prometheus,
            .bearer_token_file = c->prometheus_bearer_token_file,
            .ca_file =
                (c->prometheus_ca_file && c->prometheus_ca_file[0]) ? c->prometheus_ca_file : NULL,
            .insecure_skip_verify = c->prometheus_insecure_skip_verify,
            .timeout_ms = c->prometheus_timeout_ms,
            .max_points = c->prometheus_max_points,
        };
        rc = prom_new(&h->prom, &po, err, errlen);
        if (rc) goto fail;
        log_info("http", "history from prometheus %s", c->prometheus);
    }
    if (c->http_bearer_token_file && c->http_bearer_token_file[0] &&
        (rc = bearer_read(c->http_bearer_token_file, "http_bearer_token_file", h->bearer,
                          sizeof h->bearer, err, errlen)) != 0)
        goto fail;
    if (c->health_listen && c->health_listen[0] &&
        (rc = start_mhd(h, c->health_listen, 1, err, errlen)) != 0)
        goto fail;
    if (c->http && c->http[0] && (rc = start_mhd(h, c->http, 0, err, errlen)) != 0) {
        const cfg_key *k = cfg_find(cp_config_table, "http");
        if (!k || !k->def || strcmp(k->def, c->http) != 0) goto fail;
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
    prom_free(h->prom);
    pthread_cond_destroy(&h->jobs_cv);
    pthread_mutex_destroy(&h->jobs_mu);
    pthread_mutex_destroy(&h->mu);
    free(h);
    return rc;
}

/* ---- ops commands ---- */

typedef struct qjob {
    ev_async async;
    cp_http *h;
    ops_request *req;
    char *p[4];
    char *body;
    int status;
    struct qjob *next;
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

static void job_unlink(cp_http *h, qjob *j) {
    pthread_mutex_lock(&h->jobs_mu);
    for (qjob **pp = &h->jobs; *pp; pp = &(*pp)->next)
        if (*pp == j) {
            *pp = j->next;
            break;
        }
    pthread_mutex_unlock(&h->jobs_mu);
}

static void on_job_done(struct ev_loop *loop, ev_async *a, int revents) {
    (void)revents;
    qjob *j = (qjob *)a;
    ev_async_stop(loop, a);
    job_unlink(j->h, j);
    job_reply(j);
    job_free(j);
}

static void *job_thread(void *arg) {
    qjob *j = arg;
    j->body = cp_http_query_range(j->h, j->p[0], j->p[1], j->p[2], j->p[3], &j->status);
    cp_http *h = j->h;
    struct ev_loop *loop = h->cp->loop;
    pthread_mutex_lock(&h->jobs_mu);
    ev_async_send(loop, &j->async);
    h->running--;
    pthread_cond_broadcast(&h->jobs_cv);
    pthread_mutex_unlock(&h->jobs_mu);
    return NULL;
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
    ev_async_init(&j->async, on_job_done);
    ev_async_start(cp->loop, &j->async);
    pthread_mutex_lock(&h->jobs_mu);
    j->next = h->jobs;
    h->jobs = j;
    h->running++;
    pthread_mutex_unlock(&h->jobs_mu);
    pthread_t th;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&th, &at, job_thread, j);
    pthread_attr_destroy(&at);
    if (rc) {
        pthread_mutex_lock(&h->jobs_mu);
        h->running--;
        pthread_mutex_unlock(&h->jobs_mu);
        ev_async_stop(cp->loop, &j->async);
        job_unlink(h, j);
        job_free(j);
        ops_reply_error(req, 1, "cannot start a query thread: %s", strerror(rc));
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
    cJSON_AddStringToObject(out, "prometheus", prom_status(cp->http ? cp->http->prom : NULL));
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
    prom_cancel(h->prom); /* queries waiting for Prometheus end now, not at its timeout */
    if (h->mhd) MHD_stop_daemon(h->mhd); /* joins its threads: no request is running after */
    if (h->mhd_health) MHD_stop_daemon(h->mhd_health);
    http_guard_free(h->guard);
    http_guard_free(h->guard_health);
    ev_ref(cp->loop);
    ev_timer_stop(cp->loop, &h->tick);
    /* wait for query threads, then answer what they finished */
    pthread_mutex_lock(&h->jobs_mu);
    while (h->running > 0)
        pthread_cond_wait(&h->jobs_cv, &h->jobs_mu);
    qjob *j = h->jobs;
    h->jobs = NULL;
    pthread_mutex_unlock(&h->jobs_mu);
    while (j) {
        qjob *next = j->next;
        ev_async_stop(cp->loop, &j->async);
        job_reply(j);
        job_free(j);
        j = next;
    }
    pthread_cond_destroy(&h->jobs_cv);
    pthread_mutex_destroy(&h->jobs_mu);
    prom_free(h->prom);
    pthread_mutex_destroy(&h->mu);
    free(h);
    cp->http = NULL;
}

CP_MODULE(http, "http", http_start, http_stop)
