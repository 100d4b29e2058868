/* warmup_test.c: warm-up spec parsing and the libcurl-multi engine on a libev loop against an
 * in-process keep-alive HTTP responder on the same loop (slow for its first requests), so that
 * the schedule, the first/last-second figures, errors and the cleanup of kept-alive sockets are
 * checked (ASan/valgrind runs of this test catch leaks). */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "test.h"
#include "actions/warmup.h"

#define container_of(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))

TEST(warmup_spec_defaults_and_errors) {
    warmup_spec s;
    char err[256];
    cJSON *o = cJSON_Parse("{\"rate\": 50}");
    T_EQ_INT(warmup_spec_from_json(o, "127.0.0.1:8080", &s, err, sizeof err), 0);
    T_EQ_STR(s.url, "http://127.0.0.1:8080/");
    T_EQ_STR(s.method, "GET");
    T_NEAR(s.start_rate, 5, 1e-9);
    T_EQ_INT(s.duration_ms, 2000);
    T_EQ_INT(s.ramp_ms, 1000);
    warmup_spec_fini(&s);
    cJSON_Delete(o);
    const char *bad[][2] = {
        {"{\"path\": \"x\"}", "warm-up: \"path\" 'x' must start with '/'"},
        {"{\"method\": \"G T\"}", "warm-up: \"method\" 'G T' is not an HTTP method"},
        {"{\"headers\": [\"NoColon\"]}", "warm-up: header 'NoColon' is not \"Name: value\""},
        {"{\"headers\": 3}",
         "warm-up: \"headers\" must be an array of \"Name: value\" or an object"},
        {"{\"url\": \"ftp://x/\"}", "warm-up: \"url\" 'ftp://x/' is not http:// or https://"},
        {"{\"duration_ms\": 0}", "warm-up: \"duration_ms\" must be a number in [1, 3600000]"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        o = cJSON_Parse(bad[i][0]);
        T_EQ_INT(warmup_spec_from_json(o, "127.0.0.1:1", &s, err, sizeof err), -EINVAL);
        T_EQ_STR(err, bad[i][1]);
        warmup_spec_fini(&s);
        cJSON_Delete(o);
    }
    o = cJSON_Parse("{}");
    T_EQ_INT(warmup_spec_from_json(o, NULL, &s, err, sizeof err), -EINVAL);
    T_EQ_STR(err, "warm-up needs an endpoint (ADDR:PORT) or a \"url\"");
    warmup_spec_fini(&s);
    cJSON_Delete(o);
}

/* ---- a keep-alive HTTP/1.1 responder on the loop: the first `cold` requests wait 80 ms ---- */

typedef struct responder {
    ev_io accept_io;
    int served, cold, status;
    char headers_seen[64];
} responder;

typedef struct conn {
    ev_io io;
    ev_timer delay;
    responder *r;
    char buf[4096];
    size_t len;
} conn;

static void conn_close(struct ev_loop *loop, conn *c) {
    ev_io_stop(loop, &c->io);
    ev_timer_stop(loop, &c->delay);
    close(c->io.fd);
    free(c);
}

static void conn_reply(conn *c) {
    char out[128];
    int n = snprintf(out, sizeof out, "HTTP/1.1 %d X\r\nContent-Length: 2\r\n\r\nok", c->r->status);
    if (write(c->io.fd, out, (size_t)n) != n) return;
}

static void delay_cb(struct ev_loop *loop, ev_timer *t, int revents) {
    (void)loop;
    (void)revents;
    conn_reply(container_of(t, conn, delay));
}

static void conn_cb(struct ev_loop *loop, ev_io *w, int revents) {
    (void)revents;
    conn *c = container_of(w, conn, io);
    ssize_t n = read(w->fd, c->buf + c->len, sizeof c->buf - 1 - c->len);
    if (n <= 0) {
        conn_close(loop, c);
        return;
    }
    c->len += (size_t)n;
    c->buf[c->len] = '\0';
    char *end = strstr(c->buf, "\r\n\r\n");
    if (!end) return;
    if (strstr(c->buf, "X-Warmup: 1"))
        snprintf(c->r->headers_seen, sizeof c->r->headers_seen, "yes");
    size_t used = (size_t)(end + 4 - c->buf);
    memmove(c->buf, c->buf + used, c->len - used);
    c->len -= used;
    if (c->r->served++ < c->r->cold) {
        ev_timer_set(&c->delay, 0.08, 0.);
        ev_timer_start(loop, &c->delay);
    } else {
        conn_reply(c);
    }
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents) {
    (void)revents;
    responder *r = container_of(w, responder, accept_io);
    int fd = accept(w->fd, NULL, NULL);
    if (fd < 0) return;
    conn *c = calloc(1, sizeof *c);
    c->r = r;
    ev_io_init(&c->io, conn_cb, fd, EV_READ);
    ev_init(&c->delay, delay_cb);
    ev_io_start(loop, &c->io);
}

typedef struct result {
    cJSON *r;
} result;

static void on_done(void *arg, cJSON *res) {
    ((result *)arg)->r = res;
}

static double sec_num(const cJSON *r, const char *sec, const char *k) {
    return cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(r, sec), k));
}

static int run_warmup(responder *r, int status, const char *extra, result *res) {
    struct ev_loop *loop = ev_default_loop(0);
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 64)) return -1;
    getsockname(ls, (struct sockaddr *)&a, &al);
    r->status = status;
    ev_io_init(&r->accept_io, accept_cb, ls, EV_READ);
    ev_io_start(loop, &r->accept_io);
    char ep[64], json[512], err[256];
    snprintf(ep, sizeof ep, "127.0.0.1:%u", ntohs(a.sin_port));
    snprintf(json, sizeof json,
             "{\"rate\": 40, \"start_rate\": 10, \"duration_ms\": 2200, \"ramp_ms\": 1000, "
             "\"headers\": {\"X-Warmup\": \"1\"}%s}",
             extra);
    cJSON *o = cJSON_Parse(json);
    warmup_spec spec;
    int rc = warmup_spec_from_json(o, ep, &spec, err, sizeof err);
    cJSON_Delete(o);
    if (rc == 0) rc = warmup_start(loop, &spec, on_done, res, NULL, err, sizeof err);
    warmup_spec_fini(&spec);
    while (rc == 0 && !res->r)
        ev_run(loop, EVRUN_ONCE);
    ev_io_stop(loop, &r->accept_io);
    close(ls);
    /* the responder's connections close when the warm-up's sockets did; drain them */
    for (int i = 0; i < 20; i++)
        ev_run(loop, EVRUN_NOWAIT);
    return rc;
}

TEST(warmup_slow_first_second_then_fast) {
    responder r = {.cold = 8};
    result res = {0};
    T_EQ_INT(run_warmup(&r, 200, "", &res), 0);
    T_ASSERT(res.r);
    double requests = cJSON_GetNumberValue(cJSON_GetObjectItem(res.r, "requests"));
    /* due: 1 s ramp 10->40 = 25, then 1.2 s at 40 = 48: 73 */
    T_ASSERT(requests >= 65 && requests <= 76);
    T_EQ_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(res.r, "errors")), 0);
    T_EQ_STR(r.headers_seen, "yes");
    double first = sec_num(res.r, "first_second", "mean_ms"),
           last = sec_num(res.r, "last_second", "mean_ms");
    T_ASSERT(sec_num(res.r, "first_second", "max_ms") >= 80);
    T_ASSERT(first > 4 * last);
    T_ASSERT(sec_num(res.r, "last_second", "requests") >= 35);
    cJSON_Delete(res.r);
}

TEST(warmup_counts_http_errors) {
    responder r = {.cold = 0};
    result res = {0};
    T_EQ_INT(run_warmup(&r, 503, ", \"duration_ms\": 300, \"rate\": 20", &res), 0);
    T_ASSERT(res.r);
    double req = cJSON_GetNumberValue(cJSON_GetObjectItem(res.r, "requests"));
    T_ASSERT(req >= 1);
    T_EQ_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(res.r, "errors")), req);
    T_ASSERT(
        cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetObjectItem(res.r, "first_second"), "mean_ms")));
    cJSON_Delete(res.r);
}
