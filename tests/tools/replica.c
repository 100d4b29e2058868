/* replica.c: tide-replica, the benchmark's service replica: a single-threaded HTTP/1.1 server on
 * loopback that does a fixed amount of real CPU work per request and starts cold.
 *
 *   tide-replica --port P [--work-ms C] [--startup-ms S] [--startup-cpu F] [--clock-rate R]
 *                [--name NAME] [--max-conns N]
 *
 * Calibration: at start the work unit (an integer mixing loop) is timed on the thread's own CPU
 * clock (CLOCK_THREAD_CPUTIME_ID, which a cgroup quota's throttling does not inflate), and the
 * number of units that cost C ms of CPU is fixed for the life of the process. Requests are
 * served one at a time on the one thread, so one replica saturates at 1000 / C requests per
 * second per core its cgroup lets it use: under a quota of Q cores, at Q x 1000 / C.
 * Cold start: the listener opens at once, but every request (GET /healthz too) is answered 503
 * until S ms of trace time (S / R real ms) have passed, during which the replica burns CPU for
 * the fraction F of the time (a JVM warming or a model loading). Then GET /healthz is 200 and
 * GET anything else does the work and answers 200 with NAME.
 * Lines on stdout: "calibrated: ...", "listening on 127.0.0.1:P", "ready after ... ms".
 * SIGTERM/SIGINT: closes everything and exits 0. */
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
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

#define REPLICA_MAX_CONNS 4096
#define OUT_MAX 512

typedef struct conn {
    ev_io rd, wr;
    int fd;
    char in[HTTP_REQ_MAX];
    size_t inlen;
    char out[OUT_MAX];
    size_t outlen, outoff;
    int close_after;
    struct conn *next, *prev;
} conn;

static struct {
    int port;
    double work_ms, startup_ms, startup_cpu, rate;
    int max_conns;
    const char *name;
    uint64_t iters; /* work units per request */
    double ns_per_iter;
    int ready;
    double ready_at; /* ev_now() at which the start-up ends */
    struct ev_loop *loop;
    ev_io accept_w;
    ev_timer startup_t;
    ev_signal sigterm, sigint;
    int lfd, nconns;
    conn *conns;
    uint64_t served, refused;
} R = {.work_ms = 10,
       .startup_ms = 120000,
       .startup_cpu = 1.0,
       .rate = 1.0,
       .max_conns = 256,
       .name = "replica",
       .lfd = -1};

static double thread_cpu_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static volatile uint64_t sink;

/* The work unit: a multiply-xorshift chain no compiler can fold (each step needs the last). */
static void work(uint64_t iters) {
    uint64_t x = sink | 1;
    for (uint64_t i = 0; i < iters; i++) {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        x *= 0x2545F4914F6CDD1DULL;
    }
    sink = x;
}

/* ns of CPU per unit: the least of 7 trials of ~20 ms each (the least is the one least
 * disturbed by cache misses after a preemption; throttling adds wall time, not CPU time). */
static double calibrate(void) {
    uint64_t n = 1 << 16;
    double best = 0;
    for (;;) { /* grow the trial until it takes >= 20 ms */
        double t0 = thread_cpu_ns();
        work(n);
        double dt = thread_cpu_ns() - t0;
        if (dt >= 20e6) break;
        n *= 2;
    }
    for (int k = 0; k < 7; k++) {
        double t0 = thread_cpu_ns();
        work(n);
        double per = (thread_cpu_ns() - t0) / (double)n;
        if (k == 0 || per < best) best = per;
    }
    return best;
}

static void conn_close(conn *c) {
    ev_io_stop(R.loop, &c->rd);
    ev_io_stop(R.loop, &c->wr);
    close(c->fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        R.conns = c->next;
    if (c->next) c->next->prev = c->prev;
    R.nconns--;
    free(c);
    if (R.nconns < R.max_conns && !ev_is_active(&R.accept_w)) ev_io_start(R.loop, &R.accept_w);
}

/* Sends what is pending. Returns 1 when all is out (reading resumes), 0 when the socket is
 * full (resumed by on_write), -1 when c was closed and freed (do not touch it again). */
static int flush_out(conn *c) {
    while (c->outoff < c->outlen) {
        ssize_t n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            ev_io_stop(R.loop, &c->rd); /* no new request until this answer is out */
            ev_io_start(R.loop, &c->wr);
            return 0;
        }
        if (n <= 0) {
            conn_close(c);
            return -1;
        }
        c->outoff += (size_t)n;
    }
    ev_io_stop(R.loop, &c->wr);
    c->outlen = c->outoff = 0;
    if (c->close_after) {
        conn_close(c);
        return -1;
    }
    ev_io_start(R.loop, &c->rd);
    return 1;
}

static void reply(conn *c, int status, const char *reason, const char *body) {
    size_t bl = strlen(body);
    int n =
        snprintf(c->out, sizeof c->out,
                 "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\nContent-Type: text/plain\r\n%s\r\n%s",
                 status, reason, bl, c->close_after ? "Connection: close\r\n" : "", body);
    c->outlen = n > 0 && (size_t)n < sizeof c->out ? (size_t)n : 0;
    c->outoff = 0;
}

/* Serves every complete request in the buffer (pipelining allowed), one after another. */
static void serve(conn *c) {
    for (;;) {
        http_req rq;
        int rc = http_req_parse(c->in, c->inlen, &rq);
        if (rc == 0) return;
        if (rc < 0) {
            c->close_after = 1;
            reply(c, 400, "Bad Request", "bad request\n");
            c->inlen = 0;
            flush_out(c);
            return;
        }
        /* the head's length: up to and including its empty line */
        size_t end = 0;
        for (size_t i = 0; i + 1 < c->inlen; i++) {
            if (c->in[i] == '\n' && c->in[i + 1] == '\n') {
                end = i + 2;
                break;
            }
            if (c->in[i] == '\n' && i + 2 < c->inlen && c->in[i + 1] == '\r' &&
                c->in[i + 2] == '\n') {
                end = i + 3;
                break;
            }
        }
        if (rq.minor == 0) c->close_after = 1;
        char body[128];
        if (strcmp(rq.method, "GET") != 0 && strcmp(rq.method, "HEAD") != 0) {
            c->close_after = 1; /* a body we do not read may follow */
            reply(c, 405, "Method Not Allowed", "GET only\n");
        } else if (!R.ready) {
            R.refused++;
            reply(c, 503, "Service Unavailable", "starting\n");
        } else if (!strcmp(rq.path, "/healthz")) {
            reply(c, 200, "OK", "ok\n");
        } else {
            work(R.iters);
            R.served++;
            snprintf(body, sizeof body, "%s\n", R.name);
            reply(c, 200, "OK", body);
        }
        memmove(c->in, c->in + end, c->inlen - end);
        c->inlen -= end;
        if (flush_out(c) <= 0) return; /* blocked on the socket, or closed */
    }
}

static void on_write(struct ev_loop *loop, ev_io *w, int revents) {
    (void)loop;
    (void)revents;
    conn *c = (conn *)((char *)w - offsetof(conn, wr));
    if (flush_out(c) == 1 && c->inlen) serve(c); /* requests that came meanwhile */
}

static void on_read(struct ev_loop *loop, ev_io *w, int revents) {
    (void)loop;
    (void)revents;
    conn *c = (conn *)((char *)w - offsetof(conn, rd));
    ssize_t n = recv(c->fd, c->in + c->inlen, sizeof c->in - c->inlen, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    if (n <= 0) {
        conn_close(c);
        return;
    }
    c->inlen += (size_t)n;
    serve(c);
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents) {
    (void)w;
    (void)revents;
    while (R.nconns < R.max_conns) {
        int fd = accept4(R.lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return; /* EAGAIN, or a transient error: the watcher fires again */
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conn *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            return;
        }
        c->fd = fd;
        ev_io_init(&c->rd, on_read, fd, EV_READ);
        ev_io_init(&c->wr, on_write, fd, EV_WRITE);
        c->next = R.conns;
        if (R.conns) R.conns->prev = c;
        R.conns = c;
        R.nconns++;
        ev_io_start(loop, &c->rd);
    }
    ev_io_stop(loop, &R.accept_w); /* full: resumed when a connection closes */
}

/* The cold start: slices of 10 ms, busy for the fraction startup_cpu of each. */
static void on_startup(struct ev_loop *loop, ev_timer *t, int revents) {
    (void)revents;
    double now = ev_time();
    if (now >= R.ready_at) {
        R.ready = 1;
        ev_timer_stop(loop, t);
        printf("ready after %.0f ms of trace time (%.0f ms real)\n", R.startup_ms,
               R.startup_ms / R.rate);
        fflush(stdout);
        return;
    }
    double busy_ns = 10e6 * R.startup_cpu, t0 = thread_cpu_ns();
    while (busy_ns > 0 && thread_cpu_ns() - t0 < busy_ns && ev_time() < R.ready_at)
        work(4096);
    ev_now_update(loop);
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents) {
    (void)w;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

static int parse_num(const char *flag, const char *v, double lo, double hi, double *out) {
    char *end = NULL;
    errno = 0;
    double d = strtod(v, &end);
    if (end == v || *end || errno || !isfinite(d) || d < lo || d > hi) {
        fprintf(stderr, "tide-replica: %s '%s': expected a number from %g to %g\n", flag, v, lo,
                hi);
        return -1;
    }
    *out = d;
    return 0;
}

static void usage(FILE *f) {
    fprintf(f, "usage: tide-replica --port P [--work-ms C] [--startup-ms S] [--startup-cpu F]\n"
               "                    [--clock-rate R] [--name NAME] [--max-conns N]\n");
}

int main(int argc, char **argv) {
    double port = 0, conns = R.max_conns;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        if (!v) {
            fprintf(stderr, "tide-replica: %s needs a value\n", a);
            return 2;
        }
        int rc = 0;
        if (!strcmp(a, "--port"))
            rc = parse_num(a, v, 1, 65535, &port);
        else if (!strcmp(a, "--work-ms"))
            rc = parse_num(a, v, 0, 10000, &R.work_ms);
        else if (!strcmp(a, "--startup-ms"))
            rc = parse_num(a, v, 0, 86400000, &R.startup_ms);
        else if (!strcmp(a, "--startup-cpu"))
            rc = parse_num(a, v, 0, 1, &R.startup_cpu);
        else if (!strcmp(a, "--clock-rate"))
            rc = parse_num(a, v, 0.001, 100000, &R.rate);
        else if (!strcmp(a, "--max-conns"))
            rc = parse_num(a, v, 1, REPLICA_MAX_CONNS, &conns);
        else if (!strcmp(a, "--name"))
            R.name = strlen(v) < 100 ? v : "replica";
        else {
            fprintf(stderr, "tide-replica: unknown flag %s\n", a);
            usage(stderr);
            return 2;
        }
        if (rc < 0) return 2;
        i++;
    }
    if (port == 0) {
        fprintf(stderr, "tide-replica: --port is required\n");
        return 2;
    }
    R.port = (int)port;
    R.max_conns = (int)conns;
    signal(SIGPIPE, SIG_IGN);

    R.lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(R.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)R.port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (R.lfd < 0 || bind(R.lfd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        listen(R.lfd, 1024) < 0) {
        fprintf(stderr, "tide-replica: listen on 127.0.0.1:%d: %s\n", R.port, strerror(errno));
        return 1;
    }
    /* after the listener: connections made meanwhile wait in the backlog, not refused */
    R.ns_per_iter = calibrate();
    R.iters = (uint64_t)llround(R.work_ms * 1e6 / R.ns_per_iter);
    printf("calibrated: %.3f ns of CPU per unit, %llu units = %.3f ms per request, saturates at "
           "%.1f requests/s per core\n",
           R.ns_per_iter, (unsigned long long)R.iters, R.work_ms,
           R.work_ms > 0 ? 1000.0 / R.work_ms : INFINITY);
    R.loop = ev_default_loop(EVFLAG_AUTO);
    ev_io_init(&R.accept_w, on_accept, R.lfd, EV_READ);
    ev_io_start(R.loop, &R.accept_w);
    ev_signal_init(&R.sigterm, on_signal, SIGTERM);
    ev_signal_init(&R.sigint, on_signal, SIGINT);
    ev_signal_start(R.loop, &R.sigterm);
    ev_signal_start(R.loop, &R.sigint);
    R.ready_at = ev_time() + R.startup_ms / R.rate / 1000.0;
    ev_timer_init(&R.startup_t, on_startup, 0., 0.01);
    ev_timer_start(R.loop, &R.startup_t);
    printf("listening on 127.0.0.1:%d\n", R.port);
    fflush(stdout);
    ev_run(R.loop, 0);

    while (R.conns)
        conn_close(R.conns);
    ev_io_stop(R.loop, &R.accept_w);
    ev_timer_stop(R.loop, &R.startup_t);
    ev_signal_stop(R.loop, &R.sigterm);
    ev_signal_stop(R.loop, &R.sigint);
    close(R.lfd);
    ev_loop_destroy(R.loop);
    printf("stopped: %llu requests served, %llu refused while starting\n",
           (unsigned long long)R.served, (unsigned long long)R.refused);
    return 0;
}
