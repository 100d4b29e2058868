/* loadgen.c: tide-loadgen, the benchmark's open-loop load generator: replays a trace
 * (`timestamp,value` CSV, requests per step) against an HTTP server on loopback.
 *
 *   tide-loadgen --target 127.0.0.1:PORT (--trace FILE.csv [--from T] [--to T] [--scale K]
 *                | --rate RPS --seconds S) [--arrivals poisson|even] [--seed N] [--path /]
 *                [--clock-rate R] [--clock-origin T] [--clock-anchor A] [--max-conns N]
 *                [--timeout-ms MS] [--out FILE] [--summary FILE] [--requests FILE]
 *
 * Open loop: request i is due at its arrival time whatever happened to the ones before, so an
 * overloaded server shows as latency and errors, never as less offered load. Arrivals follow
 * the trace's rate (value x scale requests per step, piecewise constant), Poisson (default) or
 * evenly spaced. Trace time maps to real time through the virtual clock (the same flags as the
 * daemons, vclock.h): arrival at trace time t is due at anchor + (t - origin) / R real; with no
 * origin, the window starts now. Latency is real time from the due time to the last byte of the
 * answer, so waiting for a free connection counts (no coordinated omission).
 * Bounds: at most --max-conns connections (keep-alive, one request at a time each); arrivals
 * that find none free wait in a queue of 65,536 (latency counts from their due time), beyond it
 * they fail; each request fails after --timeout-ms real; latencies go to log-bucket histograms
 * (2.5% resolution, 1 us to 10 min), one per trace minute still open, never per-request arrays.
 * A request is served when the answer is 2xx, failed otherwise (status, reset, timeout, queue).
 * Output (--out, default stdout): one CSV row per trace minute, in order, once every request of
 * that minute is done:  minute,offered,served,failed,p50_ms,p99_ms,max_ms  (minute = unix s of
 * its start; offered = requests due in it; latencies of served requests, -1 if none). The summary
 * (--summary FILE, JSON): requests, served, failed, p50_ms, p99_ms, by_status, seconds.
 * --requests FILE: one CSV row per finished request, in the order they finish (written through
 * stdio's buffer, never held in memory):  due_s,latency_ms,status  (due_s = the trace time the
 * request was due, latency in real ms from that time, status 0 when no reply), so that latency
 * measures can be computed after the run (tests/bench/e2e_score.py).
 * Exit 0 after the window (and the last answers, or their timeout); 2 on bad flags or trace;
 * SIGTERM/SIGINT end it early with everything measured so far written. */
#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http_req.h"
#include "offline/series_csv.h"
#include "vclock.h"

#define QUEUE_MAX 65536
#define CONNS_MAX 4096
#define HB 830 /* histogram buckets: 1.025^830 us ~ 800 s, past the 10 min timeout bound */
#define HB_BASE 1.025
#define RESP_MAX 65536        /* a body larger than this is read and dropped in pieces */
#define RATE_REAL_MAX 20000.0 /* requests per real second this tool refuses to exceed */

typedef struct hist {
    uint32_t b[HB];
    uint64_t n;
    double max_ms;
} hist;

static int hb_index(double ms) {
    double us = ms * 1000;
    if (us <= 1) return 0;
    int i = (int)(log(us) / log(HB_BASE)) + 1;
    return i >= HB ? HB - 1 : i;
}

static void hist_add(hist *h, double ms) {
    h->b[hb_index(ms)]++;
    h->n++;
    if (ms > h->max_ms) h->max_ms = ms;
}

/* The q-quantile (upper edge of its bucket, in ms), or -1 when empty. */
static double hist_q(const hist *h, double q) {
    if (!h->n) return -1;
    uint64_t want = (uint64_t)ceil(q * (double)h->n), seen = 0;
    if (want < 1) want = 1;
    for (int i = 0; i < HB; i++) {
        seen += h->b[i];
        if (seen >= want) {
            double ms = i == 0 ? 0.001 : pow(HB_BASE, i) / 1000;
            return ms < h->max_ms ? ms : h->max_ms;
        }
    }
    return h->max_ms;
}

/* One trace minute: counts and its latency histogram; `pending` requests still in flight. */
typedef struct minute {
    int64_t start_s; /* unix s (trace) of the minute; -1 = unused slot */
    uint64_t offered, served, failed, pending;
    hist h;
} minute;

typedef struct req {
    double due;       /* real ev time it was due */
    int64_t minute_s; /* its trace minute */
} req;

typedef struct conn {
    ev_io io;
    ev_timer timer;
    int fd, busy, connected, reused;
    req r;
    char buf[HTTP_REQ_MAX];
    size_t len;
    long long body_left;
    int have_head, status, close_after;
    size_t sent;
    struct conn *next_idle;
} conn;

static struct {
    struct sockaddr_in target;
    const char *path, *out_path, *summary_path, *requests_path;
    double rate_trace; /* vclock rate */
    double timeout_s;
    int max_conns, poisson;
    uint64_t seed;
    /* the arrival schedule in trace seconds */
    series_csv tr;
    double scale, const_rps;
    double t_from, t_to; /* trace window [from, to) */
    double t_next;       /* next arrival (trace s) */
    vclock_spec clock;
    double real0_ev; /* ev time at which trace time = t_origin */
    double t_origin; /* trace s at real0_ev */
    struct ev_loop *loop;
    ev_timer arrive, drain;
    ev_signal sigterm, sigint;
    conn *conns;
    conn *idle;
    int nconns_open;
    req *queue;
    size_t qhead, qlen;
    minute *ring;
    size_t nring;
    int64_t next_emit_s; /* the next minute to write */
    FILE *out;
    FILE *reqs; /* --requests: per-request rows, or NULL */
    hist total;
    uint64_t requests, served, failed, by_status[6], timeouts, conn_errors, queue_full;
    int done_arriving, stopping;
    uint64_t open_reqs; /* arrived, not yet finished */
    char request[512];
    size_t request_len;
} G;

static double trace_to_ev(double t) {
    return G.real0_ev + (t - G.t_origin) / G.rate_trace;
}

/* The request rate (per trace second) at trace time t. */
static double rate_at(double t) {
    if (!G.tr.y) return G.const_rps;
    double k = floor((t - (double)G.tr.t0) / (double)G.tr.step);
    if (k < 0 || k >= (double)G.tr.n) return 0;
    double v = G.tr.y[(size_t)k];
    return v > 0 ? v * G.scale / (double)G.tr.step : 0;
}

/* End of the piece of constant rate holding t (trace s). */
static double piece_end(double t) {
    if (!G.tr.y) return G.t_to;
    double k = floor((t - (double)G.tr.t0) / (double)G.tr.step);
    return (double)G.tr.t0 + (k + 1) * (double)G.tr.step;
}

static double uniform(void) { /* xorshift64*, (0,1) */
    G.seed ^= G.seed >> 12;
    G.seed ^= G.seed << 25;
    G.seed ^= G.seed >> 27;
    return ((double)((G.seed * 0x2545F4914F6CDD1DULL) >> 11) + 0.5) / 9007199254740992.0;
}

/* The next arrival after t in trace seconds, or t_to when none is left in the window. */
static double next_arrival(double t) {
    while (t < G.t_to) {
        double r = rate_at(t), end = piece_end(t);
        if (end > G.t_to) end = G.t_to;
        if (r <= 0) {
            t = end;
            continue;
        }
        double gap = G.poisson ? -log(uniform()) / r : 1.0 / r;
        if (t + gap < end) return t + gap;
        t = end; /* Poisson is memoryless: draw again at the new rate; even spacing restarts */
    }
    return G.t_to;
}

/* Trace minutes count from the window's start (not from unix minute boundaries). */
static int64_t minute_key(double t) {
    return (int64_t)(G.t_from + 60 * floor((t - G.t_from) / 60));
}

static size_t slot_of(int64_t key) {
    return (size_t)((key - (int64_t)G.t_from) / 60) % G.nring;
}

static minute *minute_of(int64_t s) {
    minute *m = &G.ring[slot_of(s)];
    if (m->start_s != s) return NULL;
    return m;
}

static void emit_ready(int force);

static void finish(req *r, int status, double now) {
    minute *m = minute_of(r->minute_s);
    int ok = status >= 200 && status < 300;
    double ms = (now - r->due) * 1000;
    G.requests++;
    G.open_reqs--;
    if (status == 0)
        G.by_status[0]++;
    else
        G.by_status[status / 100 <= 5 ? status / 100 : 5]++;
    if (ok) {
        G.served++;
        hist_add(&G.total, ms);
    } else {
        G.failed++;
    }
    if (G.reqs)
        fprintf(G.reqs, "%.3f,%.3f,%d\n", G.t_origin + (r->due - G.real0_ev) * G.rate_trace, ms,
                status);
    if (m) {
        m->pending--;
        if (ok) {
            m->served++;
            hist_add(&m->h, ms);
        } else {
            m->failed++;
        }
    }
    emit_ready(0);
    /* all answered: stop now (from the loop, not from inside a connection's callback) */
    if (G.done_arriving && G.open_reqs == 0 && !G.stopping) {
        ev_timer_stop(G.loop, &G.drain);
        ev_timer_set(&G.drain, 0., 0.);
        ev_timer_start(G.loop, &G.drain);
    }
}

static void conn_io_cb(struct ev_loop *loop, ev_io *w, int revents);
static void conn_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents);
static void dispatch(void);

static void conn_drop(conn *c) {
    ev_io_stop(G.loop, &c->io);
    ev_timer_stop(G.loop, &c->timer);
    if (c->fd >= 0) {
        close(c->fd);
        G.nconns_open--;
    }
    c->fd = -1;
    c->connected = c->busy = 0;
}

static int conn_open(conn *c) {
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) return -errno;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    G.nconns_open++;
    c->reused = 0;
    if (connect(c->fd, (struct sockaddr *)&G.target, sizeof G.target) < 0 && errno != EINPROGRESS) {
        int e = errno;
        conn_drop(c);
        return -e;
    }
    c->connected = 1;
    return 0;
}

static void conn_send(conn *c) {
    c->len = 0;
    c->sent = 0;
    c->have_head = 0;
    c->status = 0;
    c->close_after = 0;
    c->body_left = 0;
    ev_io_stop(G.loop, &c->io);
    ev_io_set(&c->io, c->fd, EV_WRITE | EV_READ);
    ev_io_start(G.loop, &c->io);
    double left = c->r.due + G.timeout_s - ev_now(G.loop);
    ev_timer_set(&c->timer, left > 0.001 ? left : 0.001, 0.);
    ev_timer_start(G.loop, &c->timer);
}

/* Ends c's request with status (0 = no answer) and puts c back to work or to rest. */
static void conn_done(conn *c, int status, int keep) {
    if (!c->busy) return;
    ev_timer_stop(G.loop, &c->timer);
    finish(&c->r, status, ev_now(G.loop));
    c->busy = 0;
    if (!keep) {
        conn_drop(c);
    } else {
        ev_io_stop(G.loop, &c->io);
        c->reused = 1;
    }
    c->next_idle = G.idle;
    G.idle = c;
    dispatch();
}

/* A reused keep-alive connection the server had closed: the request goes again on a new one
 * (nothing of it was answered), as browsers do. */
static void conn_retry(conn *c) {
    conn_drop(c);
    int rc = conn_open(c);
    /* conn_drop (also conn_open's on failure) marked c idle, but the request is still c's:
     * without this, conn_done ignored c's end, the request was never finished and c's slot
     * leaked, and an error left c's watcher firing in a busy loop (a day replay counted 160
     * million connection errors for 67,000 requests) */
    c->busy = 1;
    if (rc < 0) {
        G.conn_errors++;
        conn_done(c, 0, 0);
        return;
    }
    conn_send(c);
    c->reused = 0; /* one retry only */
}

static void conn_io_cb(struct ev_loop *loop, ev_io *w, int revents) {
    (void)loop;
    conn *c = (conn *)((char *)w - offsetof(conn, io));
    if ((revents & EV_WRITE) && c->sent < G.request_len) {
        ssize_t n = send(c->fd, G.request + c->sent, G.request_len - c->sent, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EINPROGRESS)) return;
        if (n < 0) {
            if (c->reused && c->sent == 0) return conn_retry(c);
            G.conn_errors++;
            return conn_done(c, 0, 0);
        }
        c->sent += (size_t)n;
        if (c->sent == G.request_len) {
            ev_io_stop(G.loop, &c->io);
            ev_io_set(&c->io, c->fd, EV_READ);
            ev_io_start(G.loop, &c->io);
        }
        return;
    }
    if (!(revents & EV_READ)) return;
    char tmp[RESP_MAX];
    char *dst = c->have_head ? tmp : c->buf + c->len;
    size_t room = c->have_head ? sizeof tmp : sizeof c->buf - c->len;
    ssize_t n = recv(c->fd, dst, room, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) {
        if (c->reused && !c->have_head && c->len == 0) return conn_retry(c);
        G.conn_errors++;
        return conn_done(c, 0, 0);
    }
    if (!c->have_head) {
        c->len += (size_t)n;
        http_resp h;
        int rc = http_resp_parse(c->buf, c->len, &h);
        if (rc == 0) return;
        if (rc < 0 || h.chunked || h.content_len < 0) { /* unusable answer: counted, closed */
            G.conn_errors++;
            return conn_done(c, rc < 0 ? 0 : h.status, 0);
        }
        c->have_head = 1;
        c->status = h.status;
        c->close_after = h.close;
        c->body_left = h.content_len - (long long)(c->len - h.head_len);
    } else {
        c->body_left -= n;
    }
    if (c->body_left <= 0) conn_done(c, c->status, !c->close_after && c->body_left == 0);
}

static void conn_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents) {
    (void)loop;
    (void)revents;
    conn *c = (conn *)((char *)w - offsetof(conn, timer));
    G.timeouts++;
    conn_done(c, 0, 0);
}

/* Starts queued requests on free connections; fails those already past their timeout. */
static void dispatch(void) {
    double now = ev_now(G.loop);
    while (G.qlen) {
        req *r = &G.queue[G.qhead];
        if (now - r->due >= G.timeout_s) {
            G.timeouts++;
            req x = *r;
            G.qhead = (G.qhead + 1) % QUEUE_MAX;
            G.qlen--;
            finish(&x, 0, now);
            continue;
        }
        conn *c = G.idle;
        if (!c) return;
        G.idle = c->next_idle;
        c->r = *r;
        G.qhead = (G.qhead + 1) % QUEUE_MAX;
        G.qlen--;
        if (c->fd < 0 && conn_open(c) < 0) { /* failed here, without recursing */
            G.conn_errors++;
            finish(&c->r, 0, now);
            c->next_idle = G.idle;
            G.idle = c;
            continue;
        }
        c->busy = 1;
        conn_send(c);
    }
}

static void arrive_cb(struct ev_loop *loop, ev_timer *w, int revents) {
    (void)revents;
    double now = ev_now(loop);
    int burst = 0;
    while (G.t_next < G.t_to && trace_to_ev(G.t_next) <= now && burst < 100000) {
        burst++;
        int64_t ms = minute_key(G.t_next);
        minute *m = &G.ring[slot_of(ms)];
        if (m->start_s != ms) {
            /* a slot still holding an older minute: its stragglers are past their timeout
             * by construction of nring; write it out first */
            if (m->start_s >= 0) emit_ready(1);
            memset(m, 0, sizeof *m);
            m->start_s = ms;
        }
        m->offered++;
        m->pending++;
        G.open_reqs++;
        req r = {.due = trace_to_ev(G.t_next), .minute_s = ms};
        if (G.qlen == QUEUE_MAX) {
            G.queue_full++;
            finish(&r, 0, now);
        } else {
            G.queue[(G.qhead + G.qlen) % QUEUE_MAX] = r;
            G.qlen++;
        }
        G.t_next = next_arrival(G.t_next);
    }
    dispatch();
    if (G.t_next >= G.t_to) {
        G.done_arriving = 1;
        ev_timer_stop(loop, w);
        /* the hard end: the last request's timeout (finish() stops sooner when all are in) */
        ev_timer_set(&G.drain, G.open_reqs ? G.timeout_s + 0.5 : 0., 0.);
        ev_timer_start(loop, &G.drain);
        return;
    }
    double at = trace_to_ev(G.t_next) - ev_time();
    ev_timer_stop(loop, w);
    ev_timer_set(w, at > 0 ? at : 0, 0.);
    ev_timer_start(loop, w);
}

static void write_minute(const minute *m) {
    fprintf(G.out, "%lld,%llu,%llu,%llu,%.3f,%.3f,%.3f\n", (long long)m->start_s,
            (unsigned long long)m->offered, (unsigned long long)m->served,
            (unsigned long long)(m->failed + m->pending), hist_q(&m->h, 0.5), hist_q(&m->h, 0.99),
            m->h.n ? m->h.max_ms : -1.0);
    fflush(G.out);
}

/* Writes, in order, every minute whose requests are all done (force: the oldest open one too,
 * its pending requests counted as failed). */
static void emit_ready(int force) {
    int64_t last = minute_key(G.t_next);
    while (G.next_emit_s < last || (G.done_arriving && G.next_emit_s <= last)) {
        minute *m = minute_of(G.next_emit_s);
        if (m && m->pending && !force) return;
        if (m) {
            write_minute(m);
            m->start_s = -1;
        }
        G.next_emit_s += 60;
        force = 0;
    }
}

static void stop_all(void) {
    G.stopping = 1;
    ev_timer_stop(G.loop, &G.arrive);
    ev_timer_stop(G.loop, &G.drain);
    for (int i = 0; i < G.max_conns; i++)
        if (G.conns[i].busy) {
            G.timeouts++;
            ev_timer_stop(G.loop, &G.conns[i].timer);
            finish(&G.conns[i].r, 0, ev_now(G.loop));
            G.conns[i].busy = 0;
        }
    for (int i = 0; i < G.max_conns; i++)
        if (G.conns[i].fd >= 0) conn_drop(&G.conns[i]);
    while (G.qlen) {
        req x = G.queue[G.qhead];
        G.qhead = (G.qhead + 1) % QUEUE_MAX;
        G.qlen--;
        finish(&x, 0, ev_now(G.loop));
    }
    G.done_arriving = 1;
    for (size_t k = 0; k < G.nring + 2; k++)
        emit_ready(1);
    ev_signal_stop(G.loop, &G.sigterm);
    ev_signal_stop(G.loop, &G.sigint);
    ev_break(G.loop, EVBREAK_ALL);
}

static void drain_cb(struct ev_loop *loop, ev_timer *w, int revents) {
    (void)loop;
    (void)w;
    (void)revents;
    stop_all();
}

static void signal_cb(struct ev_loop *loop, ev_signal *w, int revents) {
    (void)loop;
    (void)w;
    (void)revents;
    stop_all();
}

static int num(const char *flag, const char *v, double lo, double hi, double *out) {
    char *end = NULL;
    errno = 0;
    double d = strtod(v, &end);
    if (end == v || *end || errno || !isfinite(d) || d < lo || d > hi) {
        fprintf(stderr, "tide-loadgen: %s '%s': expected a number from %g to %g\n", flag, v, lo,
                hi);
        return -1;
    }
    *out = d;
    return 0;
}

static int parse_target(const char *v) {
    char host[64];
    const char *colon = strrchr(v, ':');
    if (!colon || (size_t)(colon - v) >= sizeof host) goto bad;
    memcpy(host, v, (size_t)(colon - v));
    host[colon - v] = '\0';
    char *end = NULL;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 1 || port > 65535) goto bad;
    G.target.sin_family = AF_INET;
    G.target.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &G.target.sin_addr) != 1) goto bad;
    /* loopback only: this tool loads servers of the testbed, nothing else */
    if ((ntohl(G.target.sin_addr.s_addr) >> 24) != 127) {
        fprintf(stderr, "tide-loadgen: --target %s: only loopback addresses (127.0.0.0/8)\n", v);
        return -1;
    }
    return 0;
bad:
    fprintf(stderr, "tide-loadgen: --target '%s': expected 127.x.y.z:PORT\n", v);
    return -1;
}

static void summary(double seconds) {
    if (!G.summary_path) return;
    FILE *f = fopen(G.summary_path, "w");
    if (!f) {
        fprintf(stderr, "tide-loadgen: %s: %s\n", G.summary_path, strerror(errno));
        return;
    }
    fprintf(f,
            "{\"requests\": %llu, \"served\": %llu, \"failed\": %llu, \"p50_ms\": %.3f, "
            "\"p99_ms\": %.3f, \"max_ms\": %.3f, \"timeouts\": %llu, \"connection_errors\": %llu, "
            "\"queue_full\": %llu, \"by_status\": {\"none\": %llu, \"1xx\": %llu, \"2xx\": %llu, "
            "\"3xx\": %llu, \"4xx\": %llu, \"5xx\": %llu}, \"seconds\": %.3f}\n",
            (unsigned long long)G.requests, (unsigned long long)G.served,
            (unsigned long long)G.failed, hist_q(&G.total, 0.5), hist_q(&G.total, 0.99),
            G.total.n ? G.total.max_ms : -1.0, (unsigned long long)G.timeouts,
            (unsigned long long)G.conn_errors, (unsigned long long)G.queue_full,
            (unsigned long long)G.by_status[0], (unsigned long long)G.by_status[1],
            (unsigned long long)G.by_status[2], (unsigned long long)G.by_status[3],
            (unsigned long long)G.by_status[4], (unsigned long long)G.by_status[5], seconds);
    fclose(f);
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: tide-loadgen --target 127.0.0.1:PORT (--trace FILE.csv [--from T] [--to T]\n"
            "                    [--scale K] | --rate RPS --seconds S) [--arrivals poisson|even]\n"
            "                    [--seed N] [--path /] [--clock-rate R] [--clock-origin T]\n"
            "                    [--clock-anchor A] [--max-conns N] [--timeout-ms MS]\n"
            "                    [--out FILE] [--summary FILE] [--requests FILE]\n");
}

int main(int argc, char **argv) {
    const char *trace = NULL, *crate = NULL, *corigin = NULL, *canchor = NULL;
    double from = -1, to = -1, conns = 64, timeout_ms = 10000, seconds = 0, seed = 1;
    int have_target = 0;
    G.scale = 1;
    G.poisson = 1;
    G.path = "/";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        if (!v) {
            fprintf(stderr, "tide-loadgen: %s needs a value\n", a);
            return 2;
        }
        int rc = 0;
        if (!strcmp(a, "--target"))
            rc = parse_target(v), have_target = 1;
        else if (!strcmp(a, "--trace"))
            trace = v;
        else if (!strcmp(a, "--from"))
            rc = num(a, v, 0, 1e11, &from);
        else if (!strcmp(a, "--to"))
            rc = num(a, v, 0, 1e11, &to);
        else if (!strcmp(a, "--scale"))
            rc = num(a, v, 0, 1e6, &G.scale);
        else if (!strcmp(a, "--rate"))
            rc = num(a, v, 0.001, RATE_REAL_MAX, &G.const_rps);
        else if (!strcmp(a, "--seconds"))
            rc = num(a, v, 0.001, 86400 * 366.0, &seconds);
        else if (!strcmp(a, "--arrivals")) {
            if (!strcmp(v, "poisson"))
                G.poisson = 1;
            else if (!strcmp(v, "even"))
                G.poisson = 0;
            else {
                fprintf(stderr, "tide-loadgen: --arrivals '%s': poisson or even\n", v);
                rc = -1;
            }
        } else if (!strcmp(a, "--seed"))
            rc = num(a, v, 0, 1e15, &seed);
        else if (!strcmp(a, "--path")) {
            if (v[0] != '/' || strlen(v) > 256 || strpbrk(v, " \r\n\t")) {
                fprintf(stderr, "tide-loadgen: --path '%s': an absolute path, no spaces\n", v);
                rc = -1;
            }
            G.path = v;
        } else if (!strcmp(a, "--clock-rate"))
            crate = v;
        else if (!strcmp(a, "--clock-origin"))
            corigin = v;
        else if (!strcmp(a, "--clock-anchor"))
            canchor = v;
        else if (!strcmp(a, "--max-conns"))
            rc = num(a, v, 1, CONNS_MAX, &conns);
        else if (!strcmp(a, "--timeout-ms"))
            rc = num(a, v, 1, 600000, &timeout_ms);
        else if (!strcmp(a, "--out"))
            G.out_path = v;
        else if (!strcmp(a, "--summary"))
            G.summary_path = v;
        else if (!strcmp(a, "--requests"))
            G.requests_path = v;
        else {
            fprintf(stderr, "tide-loadgen: unknown flag %s\n", a);
            usage(stderr);
            return 2;
        }
        if (rc < 0) return 2;
        i++;
    }
    char err[512];
    if (!have_target || (!trace == !G.const_rps) || (G.const_rps && seconds <= 0)) {
        fprintf(stderr, "tide-loadgen: --target and either --trace or --rate with --seconds\n");
        usage(stderr);
        return 2;
    }
    if (vclock_parse(crate, corigin, canchor, &G.clock, err, sizeof err) < 0) {
        fprintf(stderr, "tide-loadgen: %s\n", err);
        return 2;
    }
    G.rate_trace = G.clock.on ? G.clock.rate : 1.0;
    G.seed = (uint64_t)seed * 0x9E3779B97F4A7C15ULL + 1;
    G.max_conns = (int)conns;
    G.timeout_s = timeout_ms / 1000;
    double peak = G.const_rps;
    if (trace) {
        series_csv_opts o = {.sort = 0};
        if (series_csv_load(trace, &o, &G.tr, err, sizeof err) < 0) {
            fprintf(stderr, "tide-loadgen: %s\n", err);
            return 2;
        }
        double t_end = (double)G.tr.t0 + (double)G.tr.n * (double)G.tr.step;
        G.t_from = from >= 0 ? from : (double)G.tr.t0;
        G.t_to = to >= 0 ? to : t_end;
        if (G.t_from < (double)G.tr.t0) G.t_from = (double)G.tr.t0;
        if (G.t_to > t_end) G.t_to = t_end;
        if (G.t_to <= G.t_from) {
            fprintf(stderr,
                    "tide-loadgen: %s: the window [%.0f, %.0f) holds no step of the "
                    "trace\n",
                    trace, G.t_from, G.t_to);
            return 2;
        }
        for (size_t k = 0; k < G.tr.n; k++) {
            double r = G.tr.y[k] * G.scale / (double)G.tr.step;
            double t = (double)G.tr.t0 + (double)k * (double)G.tr.step;
            if (t + (double)G.tr.step > G.t_from && t < G.t_to && r > peak) peak = r;
        }
    } else {
        /* a constant rate: the window starts at the trace clock's now */
        G.t_from = 0;
        G.t_to = seconds * G.rate_trace;
        G.const_rps /= G.rate_trace; /* --rate is per real second */
        peak = G.const_rps;
    }
    if (peak * G.rate_trace > RATE_REAL_MAX) {
        fprintf(stderr,
                "tide-loadgen: the peak rate is %.0f requests per real second (trace peak %.1f/s x "
                "clock rate %g), above this tool's bound of %.0f: lower --scale or --clock-rate\n",
                peak * G.rate_trace, peak, G.rate_trace, RATE_REAL_MAX);
        series_csv_fini(&G.tr);
        return 2;
    }
    G.out = G.out_path ? fopen(G.out_path, "w") : stdout;
    if (!G.out) {
        fprintf(stderr, "tide-loadgen: %s: %s\n", G.out_path, strerror(errno));
        series_csv_fini(&G.tr);
        return 2;
    }
    if (G.requests_path) {
        G.reqs = fopen(G.requests_path, "w");
        if (!G.reqs) {
            fprintf(stderr, "tide-loadgen: %s: %s\n", G.requests_path, strerror(errno));
            if (G.out != stdout) fclose(G.out);
            series_csv_fini(&G.tr);
            return 2;
        }
        fprintf(G.reqs, "due_s,latency_ms,status\n");
    }
    G.request_len = (size_t)snprintf(G.request, sizeof G.request,
                                     "GET %s HTTP/1.1\r\nHost: tide-bench\r\nUser-Agent: "
                                     "tide-loadgen\r\n\r\n",
                                     G.path);
    /* minutes a request may stay open (its timeout in trace time) plus the current and one
     * for rounding: a slot is reused only when its requests have all ended */
    G.nring = (size_t)ceil(G.timeout_s * G.rate_trace / 60.0) + 3;
    G.ring = calloc(G.nring, sizeof *G.ring);
    G.queue = calloc(QUEUE_MAX, sizeof *G.queue);
    G.conns = calloc((size_t)G.max_conns, sizeof *G.conns);
    if (!G.ring || !G.queue || !G.conns) {
        fprintf(stderr, "tide-loadgen: out of memory\n");
        return 1;
    }
    for (size_t k = 0; k < G.nring; k++)
        G.ring[k].start_s = -1;
    signal(SIGPIPE, SIG_IGN);
    G.loop = ev_default_loop(EVFLAG_AUTO);
    for (int i = 0; i < G.max_conns; i++) {
        conn *c = &G.conns[i];
        c->fd = -1;
        ev_io_init(&c->io, conn_io_cb, -1, EV_READ);
        ev_timer_init(&c->timer, conn_timeout_cb, 1., 0.);
        c->next_idle = G.idle;
        G.idle = c;
    }
    /* where trace time meets real time: the virtual clock's anchor, else now = window start */
    double now_ev = ev_now(G.loop), now_real = (double)vclock_real_ms() / 1000;
    if (G.clock.on && corigin && corigin[0]) {
        double anchor = G.clock.anchor_ms ? (double)G.clock.anchor_ms / 1000 : now_real;
        G.t_origin = (double)G.clock.origin_ms / 1000;
        G.real0_ev = now_ev + (anchor - now_real);
    } else {
        G.t_origin = G.t_from;
        G.real0_ev = now_ev;
    }
    if (!trace) { /* constant rate: trace seconds counted from the start */
        G.t_origin = 0;
        G.real0_ev = now_ev;
    }
    /* with a shared clock whose trace time is already past the window's start, the arrivals
     * of the past are skipped (not fired at once as a burst that never was) */
    double t_start = G.t_from, t_now = G.t_origin + (now_ev - G.real0_ev) * G.rate_trace;
    if (trace && t_now > t_start) t_start = t_now;
    G.next_emit_s = minute_key(t_start);
    G.t_next = next_arrival(t_start);
    ev_timer_init(&G.arrive, arrive_cb, 0., 0.);
    ev_timer_init(&G.drain, drain_cb, 1., 0.);
    double at = trace_to_ev(G.t_next) - now_ev;
    ev_timer_set(&G.arrive, at > 0 ? at : 0, 0.);
    ev_timer_start(G.loop, &G.arrive);
    ev_signal_init(&G.sigterm, signal_cb, SIGTERM);
    ev_signal_init(&G.sigint, signal_cb, SIGINT);
    ev_signal_start(G.loop, &G.sigterm);
    ev_signal_start(G.loop, &G.sigint);
    fprintf(G.out, "minute,offered,served,failed,p50_ms,p99_ms,max_ms\n");
    fflush(G.out);
    double t0 = ev_time();
    ev_run(G.loop, 0);
    summary(ev_time() - t0);
    if (G.out != stdout) fclose(G.out);
    if (G.reqs && fclose(G.reqs) != 0) {
        fprintf(stderr, "tide-loadgen: %s: %s\n", G.requests_path, strerror(errno));
        return 1;
    }
    ev_loop_destroy(G.loop);
    free(G.ring);
    free(G.queue);
    free(G.conns);
    series_csv_fini(&G.tr);
    return 0;
}
