/* work.c: worker threads that finish on the event loop (see work.h). */
#include "work.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>

enum { W_FREE, W_QUEUED, W_RUNNING, W_FINISHED, W_ABANDONED };

struct work_pool {
    struct ev_loop *loop;
    ev_async async;
    pthread_mutex_t mu;
    pthread_cond_t cv;      /* a queued item or shutdown, for the workers */
    pthread_cond_t idle_cv; /* a running item finished, for drain */
    work *qhead, *qtail;    /* queued, FIFO */
    work *dhead, *dtail;    /* finished or cancelled, waiting for done on the loop */
    pthread_t *threads;
    work **current; /* the item each thread runs, NULL none */
    int nthreads, max_threads, idle, running;
    int running_abandonable; /* of running, items drain does not wait for */
    int refs;                /* the owner + the detached threads still running an item */
    size_t queued, max_queued;
    int shutdown, drained;
};

static void pool_destroy(work_pool *p) {
    pthread_cond_destroy(&p->idle_cv);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p->current);
    free(p->threads);
    free(p);
}

static void push(work **head, work **tail, work *w) {
    w->next = NULL;
    if (*tail)
        (*tail)->next = w;
    else
        *head = w;
    *tail = w;
}

static work *pop(work **head, work **tail) {
    work *w = *head;
    if (w) {
        *head = w->next;
        if (!*head) *tail = NULL;
        w->next = NULL;
    }
    return w;
}

static void *worker(void *arg) {
    work_pool *p = arg;
    pthread_mutex_lock(&p->mu);
    int self = 0; /* grow() stored our id before we could take the lock */
    while (self < p->nthreads && !pthread_equal(p->threads[self], pthread_self()))
        self++;
    for (;;) {
        while (!p->qhead && !p->shutdown) {
            p->idle++;
            pthread_cond_wait(&p->cv, &p->mu);
            p->idle--;
        }
        if (p->shutdown && !p->qhead) break;
        work *w = pop(&p->qhead, &p->qtail);
        p->queued--;
        w->state = W_RUNNING;
        p->running++;
        if (w->orphan) p->running_abandonable++;
        p->current[self] = w;
        pthread_mutex_unlock(&p->mu);
        w->run(w);
        pthread_mutex_lock(&p->mu);
        p->current[self] = NULL;
        p->running--;
        if (w->orphan) p->running_abandonable--;
        if (w->state == W_ABANDONED) { /* the owner is gone: release the item and end */
            int last = --p->refs == 0;
            pthread_mutex_unlock(&p->mu);
            w->orphan(w);
            if (last) pool_destroy(p);
            return NULL;
        }
        w->state = W_FINISHED;
        w->status = 0;
        push(&p->dhead, &p->dtail, w);
        ev_async_send(p->loop, &p->async);
        pthread_cond_broadcast(&p->idle_cv);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* Calls done for everything finished or cancelled, outside the lock, in order. */
static void deliver(work_pool *p) {
    pthread_mutex_lock(&p->mu);
    work *list = p->dhead;
    p->dhead = p->dtail = NULL;
    pthread_mutex_unlock(&p->mu);
    while (list) {
        work *next = list->next;
        int status = list->status;
        list->state = W_FREE;
        list->next = NULL;
        list->done(list, status); /* may free list */
        list = next;
    }
}

static void on_async(struct ev_loop *loop, ev_async *a, int revents) {
    (void)loop;
    (void)revents;
    deliver((work_pool *)((char *)a - offsetof(work_pool, async)));
}

int work_pool_new(struct ev_loop *loop, int max_threads, int max_queued, work_pool **out) {
    *out = NULL;
    if (!loop || max_threads < 1 || max_queued < 0) return -EINVAL;
    work_pool *p = calloc(1, sizeof *p);
    if (!p) return -ENOMEM;
    p->threads = calloc((size_t)max_threads, sizeof *p->threads);
    p->current = calloc((size_t)max_threads, sizeof *p->current);
    if (!p->threads || !p->current) {
        free(p->threads);
        free(p->current);
        free(p);
        return -ENOMEM;
    }
    p->refs = 1;
    p->loop = loop;
    p->max_threads = max_threads;
    p->max_queued = (size_t)max_queued;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    pthread_cond_init(&p->idle_cv, NULL);
    ev_async_init(&p->async, on_async);
    ev_async_start(loop, &p->async);
    ev_unref(loop);
    *out = p;
    return 0;
}

/* Starts one more thread with every signal blocked (the loop's thread handles signals). Called
 * with the lock held. */
static int grow(work_pool *p) {
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&p->threads[p->nthreads], NULL, worker, p);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc) return -rc;
    p->nthreads++;
    return 0;
}

static int submit(work_pool *p, work *w, work_run_fn run, work_done_fn done,
                  work_orphan_fn orphan) {
    if (!p || !w || !run || !done) return -EINVAL;
    pthread_mutex_lock(&p->mu);
    int rc = 0;
    if (p->shutdown) {
        rc = -ESHUTDOWN;
    } else if (p->queued + (size_t)p->running >= (size_t)p->max_threads + p->max_queued) {
        rc = -EAGAIN;
    } else {
        /* one more thread when every idle one already has an item waiting for it */
        if (p->idle <= (int)p->queued && p->nthreads < p->max_threads) {
            int g = grow(p);
            if (g < 0 && p->nthreads == 0) rc = g;
        }
        if (rc == 0) {
            w->run = run;
            w->done = done;
            w->orphan = orphan;
            w->status = 0;
            w->state = W_QUEUED;
            push(&p->qhead, &p->qtail, w);
            p->queued++;
            pthread_cond_signal(&p->cv);
        }
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

int work_submit(work_pool *p, work *w, work_run_fn run, work_done_fn done) {
    return submit(p, w, run, done, NULL);
}

int work_submit_abandonable(work_pool *p, work *w, work_run_fn run, work_done_fn done,
                            work_orphan_fn orphan) {
    if (!orphan) return -EINVAL;
    return submit(p, w, run, done, orphan);
}

int work_cancel(work_pool *p, work *w) {
    pthread_mutex_lock(&p->mu);
    int rc = -ENOENT;
    for (work **pp = &p->qhead, *prev = NULL; *pp; prev = *pp, pp = &(*pp)->next) {
        if (*pp != w) continue;
        *pp = w->next;
        if (p->qtail == w) p->qtail = prev;
        p->queued--;
        w->state = W_FINISHED;
        w->status = -ECANCELED;
        push(&p->dhead, &p->dtail, w);
        ev_async_send(p->loop, &p->async);
        rc = 0;
        break;
    }
    if (rc == -ENOENT && (w->state == W_RUNNING || w->state == W_FINISHED)) rc = -EBUSY;
    pthread_mutex_unlock(&p->mu);
    return rc;
}

size_t work_pool_load(work_pool *p) {
    pthread_mutex_lock(&p->mu);
    size_t n = p->queued + (size_t)p->running;
    pthread_mutex_unlock(&p->mu);
    return n;
}

void work_pool_drain(work_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->shutdown = 1;
    work *w;
    while ((w = pop(&p->qhead, &p->qtail))) {
        p->queued--;
        w->state = W_FINISHED;
        w->status = -ECANCELED;
        push(&p->dhead, &p->dtail, w);
    }
    pthread_cond_broadcast(&p->cv);
    while (p->running - p->running_abandonable > 0)
        pthread_cond_wait(&p->idle_cv, &p->mu);
    for (int i = 0; i < p->nthreads; i++) /* what still runs now is abandoned */
        if (p->current[i] && p->current[i]->state == W_RUNNING) {
            p->current[i]->state = W_ABANDONED;
            p->refs++; /* its thread releases the pool when it is done */
        }
    pthread_mutex_unlock(&p->mu);
    deliver(p);
}

void work_pool_free(work_pool *p) {
    if (!p) return;
    work_pool_drain(p);
    ev_ref(p->loop);
    ev_async_stop(p->loop, &p->async);
    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < p->nthreads; i++) {
        if (p->current[i] && p->current[i]->state == W_ABANDONED) {
            pthread_detach(p->threads[i]); /* it releases its item and ends by itself */
            continue;
        }
        pthread_mutex_unlock(&p->mu);
        pthread_join(p->threads[i], NULL);
        pthread_mutex_lock(&p->mu);
    }
    int last = --p->refs == 0;
    pthread_mutex_unlock(&p->mu);
    if (last) pool_destroy(p);
}
