/* work_test.c: shared/work.c, worker threads that finish on the loop: every item's run on a
 * worker thread with signals blocked and its done on the loop's thread exactly once; the
 * queue bound (-EAGAIN); cancel of a queued item (-ECANCELED, run never called); drain waits
 * for running items, cancels queued ones and refuses new ones (-ESHUTDOWN). */
#include "test.h"
#include "work.h"

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

typedef struct job {
    work w;
    int id, ran, done, status, on_worker, sig_blocked;
    sem_t *gate;    /* when set, run waits for it */
    sem_t *started; /* when set, run posts it first */
} job;

static pthread_t main_thread;
static int n_done;
static atomic_int n_ran;

static void job_run(work *w) {
    job *j = (job *)((char *)w - offsetof(job, w));
    j->on_worker = !pthread_equal(pthread_self(), main_thread);
    sigset_t cur;
    pthread_sigmask(SIG_SETMASK, NULL, &cur);
    j->sig_blocked = sigismember(&cur, SIGTERM) == 1;
    if (j->started) sem_post(j->started);
    if (j->gate) sem_wait(j->gate);
    j->ran++;
    atomic_fetch_add(&n_ran, 1);
}

static void job_done(work *w, int status) {
    job *j = (job *)((char *)w - offsetof(job, w));
    T_ASSERT(pthread_equal(pthread_self(), main_thread));
    j->done++;
    j->status = status;
    n_done++;
}

static int want_done;
static void on_check(struct ev_loop *loop, ev_timer *t, int revents) {
    (void)t;
    (void)revents;
    if (n_done >= want_done) ev_break(loop, EVBREAK_ALL);
}
/* runs the loop until want items are done or 20 s passed */
static void run_until(struct ev_loop *loop, int want) {
    want_done = want;
    ev_timer check, guard;
    ev_timer_init(&check, on_check, 0.001, 0.001);
    ev_timer_init(&guard, on_check, 20, 0);
    ev_timer_start(loop, &check);
    ev_timer_start(loop, &guard);
    ev_run(loop, 0);
    ev_timer_stop(loop, &check);
    ev_timer_stop(loop, &guard);
}

TEST(work_runs_on_workers_and_finishes_on_loop) {
    main_thread = pthread_self();
    n_done = 0;
    atomic_store(&n_ran, 0);
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    work_pool *p;
    T_EQ_INT(work_pool_new(loop, 3, 200, &p), 0);
    job *jobs = calloc(100, sizeof *jobs);
    for (int i = 0; i < 100; i++) {
        jobs[i].id = i;
        T_EQ_INT(work_submit(p, &jobs[i].w, job_run, job_done), 0);
    }
    run_until(loop, 100);
    T_EQ_INT(n_done, 100);
    for (int i = 0; i < 100; i++) {
        T_EQ_INT(jobs[i].ran, 1);
        T_EQ_INT(jobs[i].done, 1);
        T_EQ_INT(jobs[i].status, 0);
        T_ASSERT(jobs[i].on_worker);
        T_ASSERT(jobs[i].sig_blocked);
    }
    T_EQ_INT((int)work_pool_load(p), 0);
    work_pool_free(p);
    free(jobs);
    ev_loop_destroy(loop);
}

TEST(work_queue_bound_cancel_and_drain) {
    main_thread = pthread_self();
    n_done = 0;
    atomic_store(&n_ran, 0);
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    work_pool *p;
    T_EQ_INT(work_pool_new(loop, 1, 2, &p), 0);
    sem_t gate, started;
    sem_init(&gate, 0, 0);
    sem_init(&started, 0, 0);
    job j[5];
    memset(j, 0, sizeof j);
    j[0].gate = &gate; /* holds the only thread */
    j[0].started = &started;
    T_EQ_INT(work_submit(p, &j[0].w, job_run, job_done), 0);
    sem_wait(&started); /* j[0] runs */
    T_EQ_INT(work_submit(p, &j[1].w, job_run, job_done), 0);
    T_EQ_INT(work_submit(p, &j[2].w, job_run, job_done), 0);
    /* 1 running + 2 queued: full */
    T_EQ_INT(work_submit(p, &j[3].w, job_run, job_done), -EAGAIN);
    T_EQ_INT((int)work_pool_load(p), 3);
    /* cancel a queued one: done with -ECANCELED, run never called */
    T_EQ_INT(work_cancel(p, &j[2].w), 0);
    T_EQ_INT(work_cancel(p, &j[4].w), -ENOENT);
    run_until(loop, 1);
    T_EQ_INT(j[2].done, 1);
    T_EQ_INT(j[2].status, -ECANCELED);
    T_EQ_INT(j[2].ran, 0);
    /* now there is room again */
    T_EQ_INT(work_submit(p, &j[3].w, job_run, job_done), 0);
    /* let the running one go after drain has started waiting for it */
    sem_post(&gate);
    work_pool_drain(p);
    T_EQ_INT(j[0].ran, 1);
    T_EQ_INT(j[0].done, 1);
    T_EQ_INT(j[0].status, 0);
    /* j[1] and j[3] were queued behind j[0]: each either ran or was cancelled, done once */
    for (int i = 1; i <= 3; i += 2) {
        T_EQ_INT(j[i].done, 1);
        T_ASSERT(j[i].status == 0 ? j[i].ran == 1 : (j[i].status == -ECANCELED && j[i].ran == 0));
    }
    T_EQ_INT(work_submit(p, &j[4].w, job_run, job_done), -ESHUTDOWN);
    work_pool_free(p);
    T_EQ_INT(j[4].done, 0);
    sem_destroy(&gate);
    sem_destroy(&started);
    ev_loop_destroy(loop);
}

static sem_t orphaned;
static atomic_int n_orphaned;
static void job_orphan(work *w) {
    job *j = (job *)((char *)w - offsetof(job, w));
    T_ASSERT(!pthread_equal(pthread_self(), main_thread));
    atomic_fetch_add(&n_orphaned, 1);
    j->status = 77;
    sem_post(&orphaned);
}

/* A run that blocks without bound (a name lookup) does not hold up the pool's shutdown: its
 * done is never called, its orphan callback runs on the worker once it returns, and a plain
 * item running beside it is still waited for and finished. */
TEST(work_abandonable_item_does_not_block_drain) {
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    main_thread = pthread_self();
    n_done = 0;
    work_pool *p;
    T_EQ_INT(work_pool_new(loop, 2, 4, &p), 0);
    sem_t gate, started, started2, gate2;
    sem_init(&gate, 0, 0);
    sem_init(&started, 0, 0);
    sem_init(&started2, 0, 0);
    sem_init(&gate2, 0, 0);
    sem_init(&orphaned, 0, 0);
    job *stuck = calloc(1, sizeof *stuck), plain = {.gate = &gate2, .started = &started2};
    T_ASSERT(stuck);
    stuck->gate = &gate;
    stuck->started = &started;
    T_EQ_INT(work_submit_abandonable(p, &stuck->w, job_run, job_done, NULL), -EINVAL);
    T_EQ_INT(work_submit_abandonable(p, &stuck->w, job_run, job_done, job_orphan), 0);
    T_EQ_INT(work_submit(p, &plain.w, job_run, job_done), 0);
    sem_wait(&started);
    sem_wait(&started2);
    sem_post(&gate2); /* the plain item finishes; the stuck one stays blocked */
    work_pool_free(p);
    T_EQ_INT(plain.done, 1);
    T_EQ_INT(plain.status, 0);
    T_EQ_INT(stuck->done, 0);
    T_EQ_INT(atomic_load(&n_orphaned), 0);
    sem_post(&gate); /* the lookup returns long after: orphan, never done */
    sem_wait(&orphaned);
    T_EQ_INT(atomic_load(&n_orphaned), 1);
    T_EQ_INT(stuck->done, 0);
    T_EQ_INT(stuck->status, 77);
    ev_loop_destroy(loop);
    free(stuck);
}
