/* work.h: run a function on a worker thread and finish on the event loop, in the spirit of
 * libuv's uv_queue_work and Redis's bio: a pool per owner with a bounded number of threads and a
 * bounded queue, one ev_async for the whole pool. `run` is called on a worker thread, `done` on
 * the loop's thread, exactly once per submitted item, in completion order. Never logs or exits.
 *
 * Lifecycle: work_pool_new on the loop's thread; work_submit from the loop's thread;
 * work_pool_drain (or work_pool_free) from the loop's thread stops taking work, cancels what is
 * queued and not started (done with -ECANCELED), waits for what is running and calls its done:
 * after it returns no callback of the pool runs again. The one exception is an item submitted
 * with work_submit_abandonable (a run that may block without bound, such as a name lookup):
 * drain does not wait for it; its orphan callback frees it on the worker thread once run
 * returns, and that thread then ends by itself. */
#ifndef TIDE_WORK_H
#define TIDE_WORK_H

#include <ev.h>
#include <stddef.h>

typedef struct work_pool work_pool;
typedef struct work work;

/* Called on a worker thread: does the slow part (I/O, parsing, fitting) and leaves its result
 * in the caller's struct that embeds the work item. */
typedef void (*work_run_fn)(work *w);
/* Called on the loop: status 0 after run, -ECANCELED when cancelled before it ran (run was not
 * called). The item may be freed here. */
typedef void (*work_done_fn)(work *w, int status);
/* Called on the worker thread, instead of done, for an abandonable item whose run was still
 * under way when the pool was drained: releases the item (the loop may be gone). */
typedef void (*work_orphan_fn)(work *w);

/* Embed in the caller's job struct (get back with container_of). Fields are private. */
struct work {
    work_run_fn run;
    work_done_fn done;
    work_orphan_fn orphan;
    work *next;
    int status;
    int state; /* 0 free, 1 queued, 2 running, 3 finished */
};

/* Creates a pool on loop with at most max_threads threads (started as work arrives, kept until
 * the pool is freed) and at most max_queued items waiting for a thread. The pool's ev_async does
 * not keep the loop alive on its own (ev_unref). Returns 0, -EINVAL or -ENOMEM. */
int work_pool_new(struct ev_loop *loop, int max_threads, int max_queued, work_pool **out);
/* Queues w; run is called on a worker thread, then done on the loop. Returns 0; -EAGAIN when
 * max_queued items already wait; -ESHUTDOWN after drain; -EINVAL; or the -errno of a thread
 * that could not be started when none runs. On error, nothing is called for w. */
int work_submit(work_pool *p, work *w, work_run_fn run, work_done_fn done);
/* Like work_submit for a run that may block without bound and cannot be interrupted: when the
 * pool is drained while it runs, drain does not wait, done is never called, and orphan (not
 * NULL) is called on the worker thread once run returns. Queued, it is cancelled as usual
 * (done with -ECANCELED). */
int work_submit_abandonable(work_pool *p, work *w, work_run_fn run, work_done_fn done,
                            work_orphan_fn orphan);
/* Cancels w when it is still queued: its done is called with -ECANCELED on the loop's next turn
 * and 0 is returned. -EBUSY when it already runs or ran (done follows as usual), -ENOENT when
 * it is not in this pool. */
int work_cancel(work_pool *p, work *w);
/* Items queued + running (for metrics and limits). */
size_t work_pool_load(work_pool *p);
/* Stops taking work, cancels queued items, waits for running ones (but abandonable ones) and
 * calls every pending done on the caller's thread (the loop's). Idempotent. */
void work_pool_drain(work_pool *p);
/* Drains, joins the threads (those running an abandoned item are detached: the last of them
 * frees what is left of the pool) and frees the pool. Accepts NULL. */
void work_pool_free(work_pool *p);

#endif
