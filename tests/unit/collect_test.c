/* collect_test.c: the agent's collector scheduler on a real libev loop: a failing collector is
 * retried with a doubling delay (and never stops the others), a working one samples every
 * interval, and each round becomes one batch. */
#include "agent.h"
#include "collect/collector.h"
#include "log.h"
#include "test.h"

#include <errno.h>
#include <ev.h>
#include <stdlib.h>

static int good_calls, bad_calls, bad_inits;

static int good_init(void **state, const struct agent_config *cfg, char *err, size_t errlen) {
    (void)cfg;
    (void)err;
    (void)errlen;
    *state = calloc(1, sizeof(uint32_t));
    return *state ? 0 : -ENOMEM;
}
static int good_sample(void *state, agent_sink *sink, int64_t now_ms, char *err, size_t errlen) {
    (void)err;
    (void)errlen;
    uint32_t *id = state;
    good_calls++;
    if (!*id && sink_series(sink, "test_good", NULL, id) < 0) return -EIO;
    return sink_put(sink, *id, now_ms, good_calls);
}
static void good_fini(void *state) {
    free(state);
}
static int bad_init(void **state, const struct agent_config *cfg, char *err, size_t errlen) {
    (void)cfg;
    bad_inits++;
    *state = NULL;
    if (bad_inits < 2) {
        snprintf(err, errlen, "not yet");
        return -EAGAIN;
    }
    return 0;
}
static int bad_sample(void *state, agent_sink *sink, int64_t now_ms, char *err, size_t errlen) {
    (void)state;
    (void)sink;
    (void)now_ms;
    bad_calls++;
    snprintf(err, errlen, "always broken");
    return -EIO;
}
static void bad_fini(void *state) {
    (void)state;
}

static const collector_ops good = {"test-good", good_init, good_sample, good_fini};
static const collector_ops bad = {"test-bad", bad_init, bad_sample, bad_fini};
AGENT_COLLECTOR(test_good, &good)
AGENT_COLLECTOR(test_bad, &bad)

static void stop_loop(struct ev_loop *loop, ev_timer *w, int revents) {
    (void)w;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

TEST(collect_failing_collector_backs_off_others_continue) {
    struct agent ag;
    char err[256];
    memset(&ag, 0, sizeof ag);
    ag.cfg.interval_ms = 100;
    ag.cfg.max_frame_bytes = 1 << 20;
    ag.cfg.queue_max_bytes = 1 << 24;
    ag.loop = ev_loop_new(EVFLAG_AUTO);
    int saved = log_threshold;
    log_threshold = LOG_OFF;
    T_EQ_INT(report_init(&ag, err, sizeof err), 0);
    T_EQ_INT(collect_start(&ag, err, sizeof err), 0);
    ev_timer stop;
    ev_timer_init(&stop, stop_loop, 1.55, 0.);
    ev_timer_start(ag.loop, &stop);
    ev_run(ag.loop, 0);
    collect_stop(&ag);
    log_threshold = saved;
    uint64_t queued = report_queued_bytes(ag.rep);
    report_fini(&ag);
    ev_loop_destroy(ag.loop);
    /* every 100 ms for 1.55 s: ~16 rounds (a loaded machine may lose a few) */
    T_ASSERT(good_calls >= 10 && good_calls <= 17);
    /* init fails once (retried after 100 ms), then sample fails: 100, 200, 400, 800 ms apart:
     * at most 5 attempts in 1.55 s instead of 16 */
    T_EQ_INT(bad_inits, 2);
    T_ASSERT(bad_calls >= 2 && bad_calls <= 4);
    /* the rounds became batches waiting for a control plane */
    T_ASSERT(queued > 0);
}
