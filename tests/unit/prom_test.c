/* prom_test.c: the Prometheus client against a fake Prometheus (libmicrohttpd in this process,
 * answering /api/v1/query_range in Prometheus's format): chunking under the point limit,
 * the async call back on the loop, Prometheus's own errors, retries, and the backoff. */
#include "query/prom.h"
#include "test.h"

#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

static atomic_int requests, fail_next, reject;

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls) {
    (void)cls;
    (void)url;
    (void)method;
    (void)version;
    (void)upload;
    (void)upload_size;
    (void)con_cls;
    atomic_fetch_add(&requests, 1);
    unsigned code = 200;
    char *body = malloc(1 << 20);
    if (!body) return MHD_NO;
    if (atomic_load(&fail_next) > 0) {
        atomic_fetch_sub(&fail_next, 1);
        code = 503;
        snprintf(body, 1 << 20, "unavailable");
    } else if (atomic_load(&reject)) {
        code = 400;
        snprintf(body, 1 << 20,
                 "{\"status\":\"error\",\"errorType\":\"bad_data\","
                 "\"error\":\"parse error at char 3\"}");
    } else {
        double s = atof(MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "start"));
        double e = atof(MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "end"));
        double st = atof(MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "step"));
        int n = snprintf(body, 1 << 20,
                         "{\"status\":\"success\",\"data\":{\"resultType\":"
                         "\"matrix\",\"result\":[{\"metric\":{\"__name__\":\"m\","
                         "\"job\":\"j\"},\"values\":[");
        for (double t = s; t <= e + 1e-9 && n < (1 << 20) - 100; t += st)
            n += snprintf(body + n, (size_t)((1 << 20) - n), "%s[%.3f,\"%.3f\"]", t == s ? "" : ",",
                          t, t * 2);
        snprintf(body + n, (size_t)((1 << 20) - n), "]}]}}");
    }
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    enum MHD_Result ok = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ok;
}

static struct MHD_Daemon *fake_start(int *port) {
    struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, answer,
                                            NULL, MHD_OPTION_END);
    if (!d) return NULL;
    *port = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)->port;
    return d;
}

static prom *client(int port, int64_t max_points, int retries) {
    char url[64], err[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    prom_options o = {.url = url,
                      .max_points = max_points,
                      .retries = retries,
                      .backoff_ms = 10,
                      .timeout_ms = 2000};
    prom *p;
    return prom_new(&p, &o, err, sizeof err) ? NULL : p;
}

TEST(prom_fake_long_range_is_split_under_the_point_limit) {
    int port;
    struct MHD_Daemon *d = fake_start(&port);
    T_ASSERT(d);
    prom *p = client(port, 100, 0);
    T_ASSERT(p);
    atomic_store(&requests, 0);
    prom_result r;
    char err[256];
    T_EQ_INT(prom_query_range(p, "m", 1000000, 1000000 + 999 * 60000, 60000, &r, err, sizeof err),
             0);
    T_EQ_INT(atomic_load(&requests), 10);
    T_EQ_INT(r.n, 1);
    T_EQ_INT(r.s[0].n, 1000);
    T_EQ_INT(r.s[0].nlabels, 2);
    T_EQ_STR(r.s[0].names[0], "__name__");
    T_EQ_STR(r.s[0].values[1], "j");
    for (size_t i = 0; i < r.s[0].n; i++) {
        if (r.s[0].ts_ms[i] != 1000000 + (int64_t)i * 60000)
            T_FAIL("point %zu at %lld", i, (long long)r.s[0].ts_ms[i]);
        T_NEAR(r.s[0].v[i], 2.0 * (double)r.s[0].ts_ms[i] / 1000, 1e-9);
    }
    prom_result_fini(&r);
    prom_free(p);
    MHD_stop_daemon(d);
}

TEST(prom_fake_errors_retries_and_backoff) {
    int port;
    struct MHD_Daemon *d = fake_start(&port);
    T_ASSERT(d);
    prom *p = client(port, 0, 2);
    prom_result r;
    char err[256];
    /* Prometheus's own rejection: -EINVAL with its message, not retried, not "down" */
    atomic_store(&reject, 1);
    atomic_store(&requests, 0);
    T_EQ_INT(prom_query_range(p, "m{", 0, 60000, 60000, &r, err, sizeof err), -EINVAL);
    T_ASSERT(strstr(err, "bad_data: parse error at char 3"));
    T_EQ_INT(atomic_load(&requests), 1);
    T_EQ_STR(prom_status(p), "ok");
    atomic_store(&reject, 0);
    /* two 503s are retried away */
    atomic_store(&fail_next, 2);
    T_EQ_INT(prom_query_range(p, "m", 0, 60000, 60000, &r, err, sizeof err), 0);
    prom_result_fini(&r);
    prom_stats st;
    prom_get_stats(p, &st);
    T_EQ_INT(st.retries, 2);
    /* three are not: down, and the next call is answered at once from the backoff */
    atomic_store(&fail_next, 3);
    T_EQ_INT(prom_query_range(p, "m", 0, 60000, 60000, &r, err, sizeof err), -EIO);
    T_ASSERT(strstr(err, "HTTP 503"));
    int before = atomic_load(&requests);
    T_EQ_INT(prom_query_range(p, "m", 0, 60000, 60000, &r, err, sizeof err), -EAGAIN);
    T_ASSERT(strstr(err, "retrying in"));
    T_EQ_INT(atomic_load(&requests), before);
    T_ASSERT(strncmp(prom_status(p), "down: ", 6) == 0);
    prom_get_stats(p, &st);
    T_EQ_INT(st.up, 0);
    T_EQ_INT(st.errors, 2); /* the rejected expression and the failed fetch */
    prom_free(p);
    MHD_stop_daemon(d);
    /* nothing listening: connection refused */
    p = client(port, 0, -1);
    T_EQ_INT(prom_query_range(p, "m", 0, 60000, 60000, &r, err, sizeof err), -ECONNREFUSED);
    prom_free(p);
    char e2[256];
    prom_options bad = {.url = "ftp://x"};
    prom *q;
    T_EQ_INT(prom_new(&q, &bad, e2, sizeof e2), -EINVAL);
    T_ASSERT(strstr(e2, "http:// or https://"));
}

/* ---- cancellation at shutdown ---- */

#include "log.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

/* A listening socket nobody accepts from: the kernel completes the connection, the request is
 * sent, and no answer ever comes (a hung Prometheus). Returns the fd; *port is its port. */
static int silent_listener(int *port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 8) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &al) < 0) {
        if (fd >= 0) close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

typedef struct hung_call {
    prom *p;
    int rc;
    char err[256];
} hung_call;

static void *hung_main(void *arg) {
    hung_call *h = arg;
    prom_result r;
    h->rc = prom_query_range(h->p, "up", 0, 60000, 1000, &r, h->err, sizeof h->err);
    prom_result_fini(&r);
    return NULL;
}

TEST(prom_cancel_ends_a_hung_request_at_once) {
    int port;
    int lfd = silent_listener(&port);
    T_ASSERT(lfd >= 0);
    char url[64], err[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    /* a 10 s timeout with retries: uncancelled, this call would take more than 30 s */
    prom_options o = {.url = url, .timeout_ms = 10000, .retries = 2};
    prom *p;
    T_EQ_INT(prom_new(&p, &o, err, sizeof err), 0);
    hung_call h = {.p = p};
    pthread_t th;
    T_EQ_INT(pthread_create(&th, NULL, hung_main, &h), 0);
    /* wait until the request is on the wire (the kernel queued the connection) */
    int64_t deadline = tide_now_mono_ms() + 5000;
    prom_stats st;
    do {
        prom_get_stats(p, &st);
        if (st.requests) break;
        usleep(5000);
    } while (tide_now_mono_ms() < deadline);
    T_EQ_INT(st.requests, 1);
    usleep(200000); /* well inside curl_multi_poll() */
    int64_t t0 = tide_now_mono_ms();
    prom_cancel(p);
    T_EQ_INT(pthread_join(th, NULL), 0);
    int64_t took = tide_now_mono_ms() - t0;
    T_EQ_INT(h.rc, -ECANCELED);
    T_ASSERT(strstr(h.err, "cancelled") != NULL);
    T_ASSERT(took < 500); /* woken, not timed out: typically a millisecond */
    /* not a Prometheus failure: no backoff, no error counted, and no retry was made */
    prom_get_stats(p, &st);
    T_EQ_INT(st.up, 1);
    T_EQ_INT(st.errors, 0);
    T_EQ_INT(st.requests, 1);
    /* later calls are refused at once */
    prom_result r;
    t0 = tide_now_mono_ms();
    T_EQ_INT(prom_query_range(p, "up", 0, 1000, 1000, &r, err, sizeof err), -ECANCELED);
    T_ASSERT(tide_now_mono_ms() - t0 < 100);
    prom_free(p);
    close(lfd);
}

TEST(prom_cancel_ends_a_retry_pause) {
    int port;
    int lfd = silent_listener(&port);
    T_ASSERT(lfd >= 0);
    close(lfd); /* now refused: the call fails fast and pauses before its retry */
    char url[64], err[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    prom_options o = {.url = url, .timeout_ms = 1000, .retries = 3, .backoff_ms = 20000};
    prom *p;
    T_EQ_INT(prom_new(&p, &o, err, sizeof err), 0);
    hung_call h = {.p = p};
    pthread_t th;
    T_EQ_INT(pthread_create(&th, NULL, hung_main, &h), 0);
    int64_t deadline = tide_now_mono_ms() + 5000;
    prom_stats st;
    do {
        prom_get_stats(p, &st);
        if (st.retries) break;
        usleep(5000);
    } while (tide_now_mono_ms() < deadline);
    T_EQ_INT(st.retries, 1); /* in the 20 s pause before the second attempt */
    int64_t t0 = tide_now_mono_ms();
    prom_cancel(p);
    T_EQ_INT(pthread_join(th, NULL), 0);
    T_EQ_INT(h.rc, -ECANCELED);
    T_ASSERT(tide_now_mono_ms() - t0 < 500);
    prom_get_stats(p, &st);
    T_EQ_INT(st.requests, 1);
    prom_free(p);
}
