/* agent_http.c: the agent's own small HTTP endpoint on its loop (config key http_listen,
 * loopback by default): /livez (the loop answers), /healthz (connected to the control plane,
 * or disconnected but spooling within limits: nothing dropped since the link was lost) and
 * /metrics (rounds and their cost, queue, spool, actions, process_*), for the kubelet's probes
 * and a node-local scrape.
 *
 * Not libmicrohttpd: Debian's links GnuTLS (and p11-kit, nettle, gmp, idn2, ...), which the
 * agent's memory budget keeps out (tests/integration/agent_lean_link.sh); three read-only GETs
 * need a request-line parser (shared/http_req.c) and a non-blocking write. Bounded: at most
 * HTTP_CONNS connections, HTTP_REQ_MAX bytes of request head, HTTP_TIMEOUT_S per connection. */
#include <arpa/inet.h>
#include "strbuf.h"
#include <errno.h>
#include <ev.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent.h"
#include "http_req.h"
#include "log.h"
#include "procstat.h"
#include "spool.h"

#define MOD "http"
#define HTTP_CONNS 8
#define HTTP_TIMEOUT_S 5.0

typedef struct hconn {
    ev_io io;
    ev_timer timer;
    struct agent_http *srv;
    int used;
    char in[HTTP_REQ_MAX];
    size_t inlen;
    char *out;
    size_t outlen, outoff;
} hconn;

typedef struct agent_http {
    struct agent *ag;
    int fd;
    ev_io accept_io;
    ev_timer tick;
    uint64_t drops_baseline; /* batches dropped as of the last time the link was up */
    uint64_t requests;
    hconn conns[HTTP_CONNS];
} agent_http;

static agent_http *the_http; /* one agent per process */

/* ---- a growable text buffer ---- */

static void metric(strbuf *b, const char *name, const char *type, const char *help, double v) {
    strbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help, name, type, name, v);
}

/* ---- what the endpoints say ---- */

static void note_link(agent_http *h) {
    if (uplink_ready_count(h->ag) == h->ag->nups) h->drops_baseline = report_drops(h->ag->rep);
}

/* 1 when healthy; msg says why either way. */
static int healthy(agent_http *h, char *msg, size_t len) {
    note_link(h);
    struct agent *ag = h->ag;
    uint64_t drops = report_drops(ag->rep), held = report_queued_bytes(ag->rep);
    if (uplink_ready_count(ag) == ag->nups) {
        snprintf(msg, len, "ok: connected to %s\n", ag->cfg.controlplane);
        return 1;
    }
    char down[AGENT_MAX_CONTROLPLANES * (AGENT_CP_ADDR_MAX + 1)] = ""; /* the ones away */
    size_t dl = 0;
    for (int i = 0; i < ag->nups; i++)
        if (!uplink_ready(ag->ups[i]) && dl < sizeof down)
            dl += (size_t)snprintf(down + dl, sizeof down - dl, "%s%s", dl ? "," : "",
                                   uplink_name(ag->ups[i]));
    if (drops > h->drops_baseline) {
        snprintf(msg, len,
                 "unhealthy: not connected to %.300s and %llu batch(es) dropped since the link was "
                 "lost (%llu bytes held)\n",
                 down, (unsigned long long)(drops - h->drops_baseline), (unsigned long long)held);
        return 0;
    }
    snprintf(msg, len, "ok: not connected to %.300s, %s %llu bytes within limits\n", down,
             ag->spools[0] ? "spooling" : "holding", (unsigned long long)held);
    return 1;
}

typedef struct act_ctx {
    strbuf *b;
    int seconds;
} act_ctx;

static void action_line(void *arg, const char *action, int ok, uint64_t n, double seconds) {
    act_ctx *c = arg;
    if (c->seconds)
        strbuf_printf(c->b, "tide_agent_action_seconds_total{action=\"%s\",result=\"%s\"} %.6f\n",
                      action, ok ? "ok" : "failed", seconds);
    else
        strbuf_printf(c->b, "tide_agent_actions_total{action=\"%s\",result=\"%s\"} %llu\n", action,
                      ok ? "ok" : "failed", (unsigned long long)n);
}

static char *metrics_body(agent_http *h) {
    struct agent *ag = h->ag;
    note_link(h);
    strbuf b = {0};
    strbuf_printf(&b,
                  "# HELP tide_build_info Always 1; the labels say which build runs.\n"
                  "# TYPE tide_build_info gauge\ntide_build_info{version=\"%s\",node=\"%s\"} 1\n",
                  TIDE_VERSION, ag->node);
    metric(&b, "tide_agent_connected", "gauge",
           "1 while the agent is connected and authenticated to every control plane of its list.",
           uplink_ready_count(ag) == ag->nups ? 1 : 0);
    metric(&b, "tide_agent_controlplanes", "gauge",
           "Control planes the agent reports to (its controlplane list).", ag->nups);
    metric(&b, "tide_agent_controlplanes_connected", "gauge",
           "Control planes the agent is connected and authenticated to now.",
           uplink_ready_count(ag));
    metric(&b, "tide_agent_fence_refused_total", "counter",
           "Commands refused because their fencing token was older than one already seen.",
           (double)dispatch_fence_refused(ag->disp));
    collect_stats cs;
    collect_get_stats(ag->col, &cs);
    metric(&b, "tide_agent_interval_seconds", "gauge", "The sampling interval.",
           (double)ag->cfg.interval_ms / 1000);
    metric(&b, "tide_agent_rounds_total", "counter", "Sampling rounds run since start.",
           (double)cs.rounds);
    strbuf_printf(
        &b,
        "# HELP tide_agent_round_seconds Wall time of the sampling rounds (every collector and "
        "the batch).\n# TYPE tide_agent_round_seconds summary\n"
        "tide_agent_round_seconds_sum %.9f\ntide_agent_round_seconds_count %llu\n",
        cs.seconds_total, (unsigned long long)cs.rounds);
    metric(&b, "tide_agent_round_cpu_seconds_total", "counter",
           "CPU time the sampling rounds took (the cost of sampling).", cs.cpu_seconds_total);
    metric(&b, "tide_agent_round_last_seconds", "gauge", "Wall time of the last round.",
           cs.seconds_last);
    metric(&b, "tide_agent_collectors_failing", "gauge",
           "Collectors whose last attempt failed (retried with backoff).", cs.failing);
    metric(&b, "tide_agent_queue_bytes", "gauge",
           "Bytes of batches held unacknowledged (memory queue and spool).",
           (double)report_queued_bytes(ag->rep));
    metric(&b, "tide_agent_dropped_batches_total", "counter",
           "Batches dropped unsent (queue and spool full) since start.",
           (double)report_drops(ag->rep));
    if (ag->spools[0]) { /* summed over the control planes' spools */
        spool_stats st = {0};
        for (int i = 0; i < AGENT_MAX_CONTROLPLANES && ag->spools[i]; i++) {
            spool_stats one;
            spool_get_stats(ag->spools[i], &one);
            st.bytes += one.bytes;
            st.frames += one.frames;
            st.dropped_frames += one.dropped_frames;
        }
        metric(&b, "tide_agent_spool_bytes", "gauge", "Bytes the on-disk spool holds.",
               (double)st.bytes);
        metric(&b, "tide_agent_spool_frames", "gauge", "Batches the on-disk spool holds.",
               (double)st.frames);
        metric(&b, "tide_agent_spool_max_bytes", "gauge",
               "The spools' bound (spool_max_bytes per control plane).",
               (double)ag->cfg.spool_max_bytes * ag->nups);
        metric(&b, "tide_agent_spool_dropped_frames_total", "counter",
               "Batches the spool deleted unsent because it was full.", (double)st.dropped_frames);
    }
    strbuf_printf(&b,
                  "# HELP tide_agent_actions_total Node actions finished, by action and result.\n"
                  "# TYPE tide_agent_actions_total counter\n");
    act_ctx ac = {&b, 0};
    dispatch_each_count(ag->disp, action_line, &ac);
    strbuf_printf(&b,
                  "# HELP tide_agent_action_seconds_total Time node actions took, by action and "
                  "result.\n# TYPE tide_agent_action_seconds_total counter\n");
    ac.seconds = 1;
    dispatch_each_count(ag->disp, action_line, &ac);
    metric(&b, "tide_agent_http_requests_total", "counter", "Requests to this endpoint.",
           (double)h->requests);
    procstat ps;
    procstat_read(&ps);
    char pbuf[2048];
    int n = procstat_format(&ps, pbuf, sizeof pbuf);
    if (n > 0 && (size_t)n < sizeof pbuf) strbuf_printf(&b, "%s", pbuf);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

/* ---- connections ---- */

static void conn_close(hconn *c) {
    struct ev_loop *loop = c->srv->ag->loop;
    ev_io_stop(loop, &c->io);
    ev_timer_stop(loop, &c->timer);
    close(c->io.fd);
    free(c->out);
    c->out = NULL;
    c->used = 0;
}

static void on_write(struct ev_loop *loop, ev_io *w, int revents);

/* Queues the response and starts writing it. body is malloc'd (taken), may be NULL. */
static void respond(hconn *c, int code, const char *ctype, char *body, int head_only) {
    const char *reason = code == 200   ? "OK"
                         : code == 400 ? "Bad Request"
                         : code == 404 ? "Not Found"
                         : code == 405 ? "Method Not Allowed"
                         : code == 503 ? "Service Unavailable"
                                       : "Internal Server Error";
    if (!body) {
        code = 500;
        reason = "Internal Server Error";
        ctype = "text/plain";
        body = strdup("out of memory\n");
    }
    size_t blen = body ? strlen(body) : 0;
    strbuf b = {0};
    strbuf_printf(
        &b,
        "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n"
        "Cache-Control: no-store\r\n\r\n%s",
        code, reason, ctype, blen, head_only || !body ? "" : body);
    free(body);
    if (b.oom) {
        free(b.p);
        conn_close(c);
        return;
    }
    c->out = b.p;
    c->outlen = b.n;
    c->outoff = 0;
    struct ev_loop *loop = c->srv->ag->loop;
    ev_io_stop(loop, &c->io);
    ev_io_init(&c->io, on_write, c->io.fd, EV_WRITE);
    ev_io_start(loop, &c->io);
}

static void on_write(struct ev_loop *loop, ev_io *w, int revents) {
    (void)loop;
    (void)revents;
    hconn *c = (hconn *)w;
    while (c->outoff < c->outlen) {
        ssize_t n = send(w->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            break;
        }
        c->outoff += (size_t)n;
    }
    conn_close(c);
}

static void handle(hconn *c, const http_req *r) {
    agent_http *h = c->srv;
    h->requests++;
    int head = strcmp(r->method, "HEAD") == 0;
    if (strcmp(r->method, "GET") != 0 && !head) {
        respond(c, 405, "text/plain", strdup("only GET and HEAD\n"), 0);
        return;
    }
    if (!strcmp(r->path, "/livez")) {
        respond(c, 200, "text/plain", strdup("ok: the agent's loop answers\n"), head);
    } else if (!strcmp(r->path, "/healthz")) {
        char msg[512];
        int ok = healthy(h, msg, sizeof msg);
        respond(c, ok ? 200 : 503, "text/plain", strdup(msg), head);
    } else if (!strcmp(r->path, "/metrics")) {
        respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", metrics_body(h), head);
    } else {
        respond(c, 404, "text/plain", strdup("not found (try /healthz, /livez, /metrics)\n"), head);
    }
}

static void on_read(struct ev_loop *loop, ev_io *w, int revents) {
    (void)loop;
    (void)revents;
    hconn *c = (hconn *)w;
    for (;;) {
        if (c->inlen == sizeof c->in) break;
        ssize_t n = recv(w->fd, c->in + c->inlen, sizeof c->in - c->inlen, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            conn_close(c);
            return;
        }
        if (n == 0) { /* closed before a complete request */
            conn_close(c);
            return;
        }
        c->inlen += (size_t)n;
    }
    http_req r;
    int rc = http_req_parse(c->in, c->inlen, &r);
    if (rc == 0) return; /* wait for the rest (the timer bounds the wait) */
    if (rc < 0) {
        respond(c, 400, "text/plain", strdup("bad request\n"), 0);
        return;
    }
    handle(c, &r);
}

static void on_timeout(struct ev_loop *loop, ev_timer *t, int revents) {
    (void)loop;
    (void)revents;
    hconn *c = (hconn *)((char *)t - offsetof(hconn, timer));
    conn_close(c);
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents) {
    (void)revents;
    agent_http *h = (agent_http *)((char *)w - offsetof(agent_http, accept_io));
    for (;;) {
        int fd = accept4(h->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return; /* EAGAIN, or an error the next readiness retries */
        hconn *c = NULL;
        for (int i = 0; i < HTTP_CONNS && !c; i++)
            if (!h->conns[i].used) c = &h->conns[i];
        if (!c) { /* all busy: the prober retries */
            close(fd);
            continue;
        }
        c->used = 1;
        c->srv = h;
        c->inlen = 0;
        c->out = NULL;
        ev_io_init(&c->io, on_read, fd, EV_READ);
        ev_io_start(loop, &c->io);
        ev_timer_init(&c->timer, on_timeout, HTTP_TIMEOUT_S, 0);
        ev_timer_start(loop, &c->timer);
    }
}

static void on_tick(struct ev_loop *loop, ev_timer *t, int revents) {
    (void)loop;
    (void)revents;
    note_link((agent_http *)((char *)t - offsetof(agent_http, tick)));
}

/* ---- module ---- */

static int open_listener(const char *listen_on, int *port_out, char *err, size_t errlen) {
    char host[256];
    int port;
    if (cfg_split_hostport(listen_on, host, sizeof host, &port) != 0) {
        snprintf(err, errlen, "http_listen %s: expected ADDR:PORT", listen_on);
        return -EINVAL;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICHOST},
                    *ai = NULL;
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    int gai = getaddrinfo(host[0] ? host : NULL, ps, &hints, &ai);
    if (gai) {
        snprintf(err, errlen, "http_listen %s: %s (give a numeric address)", listen_on,
                 gai_strerror(gai));
        return -EINVAL;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1, rc = 0;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 16) < 0) {
        rc = -errno;
        snprintf(err, errlen, "http_listen %s: %s", listen_on, strerror(errno));
        if (fd >= 0) close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    if (fd < 0) return rc;
    struct sockaddr_storage sa;
    socklen_t sl = sizeof sa;
    *port_out = port;
    if (getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
        *port_out = ntohs(sa.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&sa)->sin6_port
                                                   : ((struct sockaddr_in *)&sa)->sin_port);
    return fd;
}

static int http_start(struct agent *ag, char *err, size_t errlen) {
    const char *l = ag->cfg.http_listen;
    if (!l || !*l) {
        log_info(MOD, "http_listen is empty: no /healthz or /metrics endpoint");
        return 0;
    }
    int port = 0;
    int fd = open_listener(l, &port, err, errlen);
    if (fd < 0) {
        const cfg_key *k = cfg_find(agent_config_table, "http_listen");
        if (fd == -EADDRINUSE && k && k->def && !strcmp(k->def, l)) {
            /* the default is best effort: another agent on this host may hold it */
            log_warn(MOD, "%s; running without the endpoint (set http_listen to insist)", err);
            return 0;
        }
        return fd;
    }
    agent_http *h = calloc(1, sizeof *h);
    if (!h) {
        close(fd);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    h->ag = ag;
    h->fd = fd;
    ev_io_init(&h->accept_io, on_accept, fd, EV_READ);
    ev_io_start(ag->loop, &h->accept_io);
    ev_timer_init(&h->tick, on_tick, 1.0, 1.0);
    ev_timer_start(ag->loop, &h->tick);
    ev_unref(ag->loop); /* the tick alone does not keep the loop running */
    ag->http_port = port;
    the_http = h;
    log_info(MOD, "listening on %s (port %d): /healthz /livez /metrics", l, port);
    return 0;
}

static void http_stop(struct agent *ag) {
    agent_http *h = the_http;
    if (!h) return;
    for (int i = 0; i < HTTP_CONNS; i++)
        if (h->conns[i].used) conn_close(&h->conns[i]);
    ev_io_stop(ag->loop, &h->accept_io);
    ev_ref(ag->loop);
    ev_timer_stop(ag->loop, &h->tick);
    close(h->fd);
    free(h);
    the_http = NULL;
    ag->http_port = 0;
}

AGENT_MODULE(http, "http", http_start, http_stop)
