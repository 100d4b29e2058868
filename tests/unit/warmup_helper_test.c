/* warmup_helper_test.c: the warm-up helper process of agent/actions/warmup.c: cancelling a running
 * warm-up kills and reaps its helper, leaks no descriptor and never calls done; a finished
 * warm-up leaves no child behind either. */
#include "test.h"
#include "actions/warmup.h"

#include <dirent.h>
#include <errno.h>
#include <ev.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static int open_fds(void) {
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

static int no_children(void) {
    return waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD;
}

typedef struct ctx {
    warmup *w;
    int done;
    cJSON *res;
} ctx;

static void on_done(void *arg, cJSON *res) {
    ctx *c = arg;
    c->done++;
    c->res = res;
}

static void cancel_cb(struct ev_loop *loop, ev_timer *t, int revents) {
    (void)revents;
    ctx *c = t->data;
    warmup_cancel(c->w);
    c->w = NULL;
    ev_break(loop, EVBREAK_ALL);
}

static void stop_cb(struct ev_loop *loop, ev_timer *t, int revents) {
    (void)t;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

static struct ev_loop *run_until_done(ctx *c, double limit_s) {
    struct ev_loop *loop = ev_default_loop(0);
    ev_timer stop;
    ev_timer_init(&stop, stop_cb, limit_s, 0.);
    ev_timer_start(loop, &stop);
    while (!c->done && ev_is_active(&stop))
        ev_run(loop, EVRUN_ONCE);
    ev_timer_stop(loop, &stop);
    return loop;
}

TEST(warmup_cancel_kills_and_reaps_the_helper) {
    struct ev_loop *loop = ev_default_loop(0);
    char err[512];
    warmup_spec spec;
    /* port 1 on loopback refuses: requests fail fast, the run lasts its 5 s */
    cJSON *o = cJSON_Parse("{\"url\": \"http://127.0.0.1:1/\", \"duration_ms\": 5000}");
    T_EQ_INT(warmup_spec_from_json(o, NULL, &spec, err, sizeof err), 0);
    cJSON_Delete(o);
    int fds = open_fds();
    ctx c = {0};
    T_EQ_INT(warmup_start(loop, &spec, on_done, &c, &c.w, err, sizeof err), 0);
    T_ASSERT(!no_children()); /* the helper runs */
    ev_timer t;
    ev_timer_init(&t, cancel_cb, 0.3, 0.);
    t.data = &c;
    ev_timer_start(loop, &t);
    ev_run(loop, 0);
    T_EQ_INT(c.done, 0);
    T_ASSERT(no_children());
    T_EQ_INT(open_fds(), fds);
    /* the loop holds nothing of it any more: a short run returns at once */
    ev_run(loop, EVRUN_NOWAIT);
    T_EQ_INT(c.done, 0);
    warmup_spec_fini(&spec);
}

TEST(warmup_finished_helper_is_reaped) {
    char err[512];
    warmup_spec spec;
    cJSON *o =
        cJSON_Parse("{\"url\": \"http://127.0.0.1:1/\", \"duration_ms\": 300, \"rate\": 20}");
    T_EQ_INT(warmup_spec_from_json(o, NULL, &spec, err, sizeof err), 0);
    cJSON_Delete(o);
    int fds = open_fds();
    ctx c = {0};
    T_EQ_INT(warmup_start(ev_default_loop(0), &spec, on_done, &c, &c.w, err, sizeof err), 0);
    run_until_done(&c, 10);
    T_EQ_INT(c.done, 1);
    T_ASSERT(c.res != NULL);
    /* every request was refused: counted as errors, reported through the pipe */
    double req = cJSON_GetNumberValue(cJSON_GetObjectItem(c.res, "requests"));
    double errs = cJSON_GetNumberValue(cJSON_GetObjectItem(c.res, "errors"));
    T_ASSERT(req >= 1);
    T_NEAR(errs, req, 0);
    T_ASSERT(cJSON_GetObjectItem(c.res, "error") == NULL);
    cJSON_Delete(c.res);
    T_ASSERT(no_children());
    T_EQ_INT(open_fds(), fds);
    warmup_spec_fini(&spec);
}
