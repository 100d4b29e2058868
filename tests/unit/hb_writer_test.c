/* hb_writer_test.c: records written off the loop: the newest text wins, waiters are called once
 * their text (or a newer one) is in place, forgotten waiters never, and free writes what waits. */
#include <errno.h>
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "exec/hb_writer.h"
#include "test.h"

typedef struct calls {
    int n, rc;
} calls;

static void on_written(void *arg, int rc) {
    calls *c = arg;
    c->n++;
    c->rc = rc;
}

static char *slurp(const char *path) {
    static char buf[256];
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return buf;
}

/* Runs the loop until cond holds (at most 10 s). */
#define RUN_UNTIL(loop, cond)                                                                      \
    do {                                                                                           \
        time_t until_ = time(NULL) + 10;                                                           \
        while (!(cond) && time(NULL) < until_) {                                                   \
            ev_run(loop, EVRUN_NOWAIT);                                                            \
            usleep(1000);                                                                          \
        }                                                                                          \
    } while (0)

TEST(hb_writer_newest_text_wins) {
    char dir[] = "/tmp/hb_writer_test.XXXXXX", path[128];
    T_ASSERT(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/web.json", dir);
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    hb_writer *w = NULL;
    T_EQ_INT(hb_writer_new(loop, &w), 0);
    calls a = {0, 1}, b = {0, 1}, c = {0, 1};
    T_EQ_INT(hb_writer_put(w, path, strdup("A"), on_written, &a), 0);
    T_EQ_INT(hb_writer_put(w, path, strdup("B"), on_written, &b), 0);
    T_EQ_INT(hb_writer_put(w, path, strdup("C"), on_written, &c), 0);
    /* B never reaches the disk (C replaced it); a reader takes C until it is there */
    T_EQ_STR(hb_writer_pending(w, path), "C");
    T_EQ_INT(a.n + b.n + c.n, 0); /* only ever called on the loop */
    RUN_UNTIL(loop, a.n && b.n && c.n);
    T_EQ_INT(a.n, 1);
    T_EQ_INT(b.n, 1);
    T_EQ_INT(c.n, 1);
    T_EQ_INT(a.rc | b.rc | c.rc, 0);
    T_EQ_STR(slurp(path), "C");
    RUN_UNTIL(loop, hb_writer_pending(w, path) == NULL); /* the fsync done too */
    T_ASSERT(hb_writer_pending(w, path) == NULL);
    /* a forgotten waiter is never called; free writes what still waits */
    calls d = {0, 1};
    T_EQ_INT(hb_writer_put(w, path, strdup("D"), on_written, &d), 0);
    hb_writer_forget(w, &d);
    T_EQ_INT(hb_writer_put(w, path, strdup("E"), NULL, NULL), 0);
    hb_writer_free(w);
    T_EQ_INT(d.n, 0);
    T_EQ_STR(slurp(path), "E");
    ev_loop_destroy(loop);
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    T_ASSERT(access(tmp, F_OK) != 0); /* no temporary file left */
    unlink(path);
    rmdir(dir);
}

TEST(hb_writer_failure_reaches_the_waiter) {
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    hb_writer *w = NULL;
    T_EQ_INT(hb_writer_new(loop, &w), 0);
    calls a = {0, 0};
    const char *bad = "/nonexistent-dir-of-hb-writer-test/web.json";
    T_EQ_INT(hb_writer_put(w, bad, strdup("A"), on_written, &a), 0);
    RUN_UNTIL(loop, a.n);
    T_EQ_INT(a.n, 1);
    T_EQ_INT(a.rc, -ENOENT);
    T_ASSERT(hb_writer_pending(w, bad) == NULL);
    char long_path[1100];
    memset(long_path, 'a', sizeof long_path - 1);
    long_path[sizeof long_path - 1] = 0;
    T_EQ_INT(hb_writer_put(w, long_path, strdup("A"), NULL, NULL), -ENAMETOOLONG);
    T_EQ_INT(hb_writer_write_now(bad, "x"), -ENOENT);
    hb_writer_free(w);
    ev_loop_destroy(loop);
}
