/* http_guard.c: the HTTP listener's whole-request deadline (see http_guard.h). */
#include "api/http_guard.h"

#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

typedef struct gconn {
    int fd;
    int busy;         /* a whole request arrived; its response is under way */
    int shut;         /* the reaper shut it down */
    int64_t since_ms; /* start of the request being received (monotonic) */
    struct gconn *prev, *next;
} gconn;

struct http_guard {
    char name[32];
    int64_t timeout_ms;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    int stop;
    gconn *conns;
    _Atomic uint64_t timeouts;
    log_ratelimit rl;
};

static int64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *reaper(void *arg) {
    http_guard *g = arg;
    pthread_mutex_lock(&g->mu);
    while (!g->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t tick = g->timeout_ms / 4 < 250 ? g->timeout_ms / 4 : 250; /* early enough */
        if (tick < 10) tick = 10;
        ts.tv_nsec += (long)(tick * 1000000);
        ts.tv_sec += ts.tv_nsec / 1000000000;
        ts.tv_nsec %= 1000000000;
        pthread_cond_timedwait(&g->cv, &g->mu, &ts);
        int64_t now = mono_ms();
        for (gconn *c = g->conns; c; c = c->next) {
            if (__atomic_load_n(&c->busy, __ATOMIC_RELAXED) || c->shut ||
                now - __atomic_load_n(&c->since_ms, __ATOMIC_RELAXED) < g->timeout_ms)
                continue;
            /* the fd stays open until libmicrohttpd reports the close (under this mutex),
             * so it is still this connection's */
            shutdown(c->fd, SHUT_RDWR);
            c->shut = 1;
            atomic_fetch_add(&g->timeouts, 1);
            log_limited(&g->rl, LOG_WARN, "http",
                        "%s: a connection sent no whole request within %lld ms: closed", g->name,
                        (long long)g->timeout_ms);
        }
    }
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

int http_guard_new(http_guard **out, const char *name, int64_t request_timeout_ms) {
    http_guard *g = calloc(1, sizeof *g);
    if (!g) return -ENOMEM;
    snprintf(g->name, sizeof g->name, "%s", name);
    g->timeout_ms = request_timeout_ms;
    g->rl = (log_ratelimit)LOG_RATELIMIT_INIT(10000, 5);
    pthread_mutex_init(&g->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&g->cv, &ca);
    pthread_condattr_destroy(&ca);
    int rc = pthread_create(&g->thread, NULL, reaper, g);
    if (rc) {
        pthread_cond_destroy(&g->cv);
        pthread_mutex_destroy(&g->mu);
        free(g);
        return -rc;
    }
    *out = g;
    return 0;
}

void http_guard_free(http_guard *g) {
    if (!g) return;
    pthread_mutex_lock(&g->mu);
    g->stop = 1;
    pthread_cond_signal(&g->cv);
    pthread_mutex_unlock(&g->mu);
    pthread_join(g->thread, NULL);
    while (g->conns) { /* none after MHD_stop_daemon; defensive */
        gconn *n = g->conns->next;
        free(g->conns);
        g->conns = n;
    }
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
    free(g);
}

void http_guard_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                       enum MHD_ConnectionNotificationCode code) {
    http_guard *g = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        gconn *e = calloc(1, sizeof *e);
        if (!e || !ci) { /* untracked: only the inactivity timeout applies */
            free(e);
            *socket_context = NULL;
            return;
        }
        e->fd = ci->connect_fd;
        e->since_ms = mono_ms();
        pthread_mutex_lock(&g->mu);
        e->next = g->conns;
        if (g->conns) g->conns->prev = e;
        g->conns = e;
        pthread_mutex_unlock(&g->mu);
        *socket_context = e;
        return;
    }
    gconn *e = *socket_context; /* MHD_CONNECTION_NOTIFY_CLOSED */
    if (!e) return;
    pthread_mutex_lock(&g->mu);
    if (e->prev)
        e->prev->next = e->next;
    else
        g->conns = e->next;
    if (e->next) e->next->prev = e->prev;
    pthread_mutex_unlock(&g->mu);
    free(e);
    *socket_context = NULL;
}

static gconn *entry(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* The busy flag and since_ms are read by the reaper under the guard's mutex; they are only
 * written by the connection's own thread, as plain stores the reaper may see a tick late. */
void http_guard_request_received(struct MHD_Connection *c) {
    gconn *e = entry(c);
    if (e) __atomic_store_n(&e->busy, 1, __ATOMIC_RELAXED);
}

void http_guard_request_done(struct MHD_Connection *c) {
    gconn *e = entry(c);
    if (!e) return;
    __atomic_store_n(&e->since_ms, mono_ms(), __ATOMIC_RELAXED);
    __atomic_store_n(&e->busy, 0, __ATOMIC_RELAXED);
}

uint64_t http_guard_timeouts(const http_guard *g) {
    return g ? atomic_load(&((http_guard *)g)->timeouts) : 0;
}
