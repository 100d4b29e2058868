/* collect.c: the collector registry (collector.h) and scheduler: every interval each due
 * collector samples into the sink, then the round becomes one batch. A failing collector
 * (init or sample) is retried with a doubling delay up to a minute and logs at a limited
 * rate; it never stops the agent or the other collectors. */
#include <errno.h>
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent.h"
#include "collect/collector.h"
#include "log.h"
#include "vclock.h"

#define MAX_COLLECTORS 64
/* The longest a failing collector waits between attempts: a fixed cgroup or a returning
 * file is picked up within a minute. */
#define MAX_BACKOFF_MS 60000

static const collector_ops *registered[MAX_COLLECTORS];
static struct ev_loop *collect_loop_; /* the running agent's loop (collector_loop()) */

struct ev_loop *collector_loop(void) {
    return collect_loop_;
}
static int nregistered;

void collector_register(const collector_ops *ops) {
    if (nregistered == MAX_COLLECTORS) {
        fprintf(stderr, "tide-agent: more than %d collectors registered\n", MAX_COLLECTORS);
        abort();
    }
    registered[nregistered++] = ops;
}

typedef struct coll {
    const collector_ops *ops;
    void *state;
    int inited;
    int failures;
    int64_t next_due_ms; /* monotonic */
    log_ratelimit rl;
} coll;

struct collect {
    struct agent *ag;
    ev_timer tick;
    coll c[MAX_COLLECTORS];
    int n;
    uint64_t rounds;
    double round_seconds_total, round_seconds_last, round_cpu_seconds_total;
};

static double clock_s(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void collect_get_stats(const collect *cl, collect_stats *st) {
    *st = (collect_stats){0};
    if (!cl) return;
    st->rounds = cl->rounds;
    st->seconds_total = cl->round_seconds_total;
    st->seconds_last = cl->round_seconds_last;
    st->cpu_seconds_total = cl->round_cpu_seconds_total;
    for (int i = 0; i < cl->n; i++)
        if (cl->c[i].failures) st->failing++;
}

static void failed(collect *cl, coll *c, const char *what, const char *err, int64_t now) {
    c->failures++;
    int64_t d = cl->ag->cfg.interval_ms;
    for (int i = 1; i < c->failures && d < MAX_BACKOFF_MS; i++)
        d *= 2;
    if (d > MAX_BACKOFF_MS) d = MAX_BACKOFF_MS;
    c->next_due_ms = now + d;
    log_limited(&c->rl, LOG_WARN, "collect",
                "collector %s: %s failed (%d in a row, next try in "
                "%lld ms): %s",
                c->ops->name, what, c->failures, (long long)d, err);
}

static void on_tick(struct ev_loop *loop, ev_timer *w, int revents) {
    (void)loop;
    (void)revents;
    collect *cl = (collect *)((char *)w - offsetof(collect, tick));
    struct agent *ag = cl->ag;
    int64_t now = tide_now_mono_ms(), wall = tide_now_wall_ms();
    double t0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
    for (int i = 0; i < cl->n; i++) {
        coll *c = &cl->c[i];
        if (c->next_due_ms > now) continue;
        char err[512] = "";
        if (!c->inited) {
            if (c->ops->init(&c->state, &ag->cfg, err, sizeof err) < 0) {
                failed(cl, c, "init", err, now);
                continue;
            }
            c->inited = 1;
        }
        if (c->ops->sample(c->state, report_sink(ag->rep), wall, err, sizeof err) < 0) {
            failed(cl, c, "sample", err, now);
            continue;
        }
        if (c->failures)
            log_info("collect", "collector %s works again after %d failures", c->ops->name,
                     c->failures);
        c->failures = 0;
        c->next_due_ms = 0;
    }
    report_flush(ag->rep);
    cl->rounds++;
    cl->round_seconds_last = clock_s(CLOCK_MONOTONIC) - t0;
    cl->round_seconds_total += cl->round_seconds_last;
    cl->round_cpu_seconds_total += clock_s(CLOCK_THREAD_CPUTIME_ID) - c0;
}

int collect_start(struct agent *ag, char *err, size_t errlen) {
    collect *cl = calloc(1, sizeof *cl);
    if (!cl) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    cl->ag = ag;
    collect_loop_ = ag->loop;
    for (int i = 0; i < nregistered; i++) {
        coll *c = &cl->c[cl->n++];
        c->ops = registered[i];
        c->rl = (log_ratelimit)LOG_RATELIMIT_INIT(60000, 3);
        log_debug("collect", "collector %s registered", c->ops->name);
    }
    double iv = vclock_real_s(ag->cfg.interval_ms / 1000.0); /* the interval is trace time */
    ev_timer_init(&cl->tick, on_tick, 0.001, iv);            /* first round at once */
    ev_timer_start(ag->loop, &cl->tick);
    ag->col = cl;
    return 0;
}

void collect_stop(struct agent *ag) {
    collect *cl = ag->col;
    if (!cl) return;
    ev_timer_stop(ag->loop, &cl->tick);
    for (int i = 0; i < cl->n; i++)
        if (cl->c[i].inited && cl->c[i].ops->fini) cl->c[i].ops->fini(cl->c[i].state);
    free(cl);
    ag->col = NULL;
}

void collect_set_interval(collect *cl, int64_t interval_ms) {
    if (!cl) return;
    double iv = vclock_real_s((double)interval_ms / 1000.0);
    if (cl->tick.repeat == iv) return;
    cl->tick.repeat = iv;
    ev_timer_again(cl->ag->loop, &cl->tick);
    log_info("collect", "sampling every %lld ms", (long long)interval_ms);
}
