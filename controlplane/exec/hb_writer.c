/* hb_writer.c: records written on a worker thread (hb_writer.h). */
#include "exec/hb_writer.h"

#include "log.h"
#include "work.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HB_WRITER_PATH_MAX 1024
#define HB_WRITER_QUEUE 4096 /* files with a write waiting for the thread */

typedef struct waiter {
    struct waiter *next;
    hb_writer_cb cb;
    void *arg;
    uint64_t need; /* the version of the file that holds the waiter's text */
} waiter;

typedef struct wjob wjob;

typedef struct wentry {
    struct wentry *next;
    char path[HB_WRITER_PATH_MAX];
    char *queued;    /* the newest text, waiting for the next write */
    uint64_t ver;    /* versions put */
    wjob *job;       /* the write under way */
    waiter *waiters; /* in put order */
} wentry;

struct wjob {
    work w; /* first */
    hb_writer *owner;
    wentry *e;
    char *text;
    uint64_t ver;
    int phase; /* 0: write and rename (the waiters' point), 1: fsync */
    int rc;
};

struct hb_writer {
    work_pool *pool;
    wentry *files;
    int closing;
};

/* Writes text to PATH.tmp (fsync'ed when sync), then renames it over path. */
static int write_rename(const char *path, const char *text, int sync) {
    char tmp[HB_WRITER_PATH_MAX + 8];
    if (strlen(path) >= HB_WRITER_PATH_MAX) return -ENAMETOOLONG;
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) return -errno;
    size_t len = strlen(text), off = 0;
    int rc = 0;
    while (off < len) {
        ssize_t n = write(fd, text + off, len - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            rc = n < 0 ? -errno : -EIO;
            break;
        }
        off += (size_t)n;
    }
    if (rc == 0 && sync && fsync(fd) < 0) rc = -errno;
    if (close(fd) < 0 && rc == 0) rc = -errno;
    if (rc == 0 && rename(tmp, path) < 0) rc = -errno;
    if (rc < 0) unlink(tmp);
    return rc;
}

/* fsync of path's content and of its directory's entry. */
static int make_durable(const char *path) {
    char dir[HB_WRITER_PATH_MAX];
    int rc = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    if (fsync(fd) < 0) rc = -errno;
    close(fd);
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        dir[1] = 0;
    else if (slash)
        *slash = 0;
    else
        snprintf(dir, sizeof dir, ".");
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        if (fsync(dfd) < 0 && rc == 0) rc = -errno;
        close(dfd);
    }
    return rc;
}

int hb_writer_write_now(const char *path, const char *text) {
    int rc = write_rename(path, text, 1);
    return rc < 0 ? rc : make_durable(path);
}

static void log_failure(const char *path, int rc) {
    log_error("exec",
              "cannot write the record %s: %s (the fleet is reconciled at the next start "
              "all the same; the record only adds what it cannot show)",
              path, strerror(-rc));
}

static void entry_maybe_free(hb_writer *w, wentry *e) {
    if (e->job || e->queued || e->waiters) return;
    for (wentry **pp = &w->files; *pp; pp = &(*pp)->next)
        if (*pp == e) {
            *pp = e->next;
            break;
        }
    free(e);
}

/* Detaches the waiters whose text is in version ver (in put order: versions ascend). */
static waiter *take_waiters(wentry *e, uint64_t ver) {
    waiter *head = NULL, **tail = &head;
    while (e->waiters && e->waiters->need <= ver) {
        waiter *wt = e->waiters;
        e->waiters = wt->next;
        wt->next = NULL;
        *tail = wt;
        tail = &wt->next;
    }
    return head;
}

/* Calls and frees a detached list, last of all: a callback may put again (or forget), so
 * nothing of the entry is touched after the first one. */
static void wake(hb_writer *w, waiter *list, int rc) {
    while (list) {
        waiter *wt = list;
        list = wt->next;
        if (!w->closing) wt->cb(wt->arg, rc);
        free(wt);
    }
}

static void job_run(work *wk) {
    wjob *j = (wjob *)wk;
    j->rc = j->phase == 0 ? write_rename(j->e->path, j->text, 0) : make_durable(j->e->path);
}

static void start_job(hb_writer *w, wentry *e);

static void job_done(work *wk, int status) {
    wjob *j = (wjob *)wk;
    hb_writer *w = j->owner;
    wentry *e = j->e;
    /* cancelled (the pool drains at hb_writer_free): written here, on the loop's thread */
    int rc = status < 0 ? hb_writer_write_now(e->path, j->text) : j->rc;
    if (rc < 0) log_failure(e->path, rc);
    waiter *ready = take_waiters(e, j->ver);
    if (status == 0 && rc == 0 && j->phase == 0) {
        /* in place for every reader (a restarted control plane reads it): the waiters go on;
         * then the same job makes it durable (a newer text waits for that) */
        j->phase = 1;
        if (work_submit(w->pool, &j->w, job_run, job_done) < 0) {
            rc = make_durable(e->path);
            if (rc < 0) log_failure(e->path, rc);
            j->phase = 2;
        }
        if (j->phase == 1) {
            wake(w, ready, rc);
            return;
        }
    }
    e->job = NULL;
    free(j->text);
    free(j);
    if (e->queued)
        start_job(w, e); /* a newer text arrived meanwhile */
    else
        entry_maybe_free(w, e);
    wake(w, ready, rc);
}

/* Hands e's queued text to the thread (written at once here when it cannot take it). */
static void start_job(hb_writer *w, wentry *e) {
    wjob *j = calloc(1, sizeof *j);
    int rc = -ENOMEM;
    if (j) {
        j->owner = w;
        j->e = e;
        j->text = e->queued;
        j->ver = e->ver;
        e->queued = NULL;
        e->job = j;
        rc = w->closing ? -ESHUTDOWN : work_submit(w->pool, &j->w, job_run, job_done);
        if (rc == 0) return;
        e->job = NULL;
        e->queued = j->text;
        free(j);
    }
    /* no thread for it (queue full, out of memory, shutting down): on the loop */
    char *text = e->queued;
    e->queued = NULL;
    rc = hb_writer_write_now(e->path, text);
    free(text);
    if (rc < 0) log_failure(e->path, rc);
    waiter *ready = take_waiters(e, e->ver);
    entry_maybe_free(w, e);
    wake(w, ready, rc);
}

int hb_writer_new(struct ev_loop *loop, hb_writer **out) {
    hb_writer *w = calloc(1, sizeof *w);
    if (!w) return -ENOMEM;
    int rc = work_pool_new(loop, 1, HB_WRITER_QUEUE, &w->pool);
    if (rc < 0) {
        free(w);
        return rc;
    }
    *out = w;
    return 0;
}

void hb_writer_free(hb_writer *w) {
    if (!w) return;
    w->closing = 1;
    work_pool_drain(w->pool); /* the write under way ends; queued ones are written by job_done */
    while (w->files) {        /* texts that waited behind a write */
        wentry *e = w->files;
        w->files = e->next;
        if (e->queued) {
            int rc = hb_writer_write_now(e->path, e->queued);
            if (rc < 0) log_failure(e->path, rc);
        }
        while (e->waiters) {
            waiter *wt = e->waiters;
            e->waiters = wt->next;
            free(wt);
        }
        free(e->queued);
        free(e);
    }
    work_pool_free(w->pool);
    free(w);
}

static wentry *entry_get(hb_writer *w, const char *path) {
    for (wentry *e = w->files; e; e = e->next)
        if (!strcmp(e->path, path)) return e;
    wentry *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    snprintf(e->path, sizeof e->path, "%s", path);
    e->next = w->files;
    w->files = e;
    return e;
}

int hb_writer_put(hb_writer *w, const char *path, char *text, hb_writer_cb cb, void *arg) {
    if (strlen(path) >= HB_WRITER_PATH_MAX) {
        free(text);
        return -ENAMETOOLONG;
    }
    wentry *e = entry_get(w, path);
    waiter *wt = cb ? calloc(1, sizeof *wt) : NULL;
    if (!e || (cb && !wt)) {
        free(text);
        free(wt);
        if (e) entry_maybe_free(w, e);
        return -ENOMEM;
    }
    free(e->queued); /* never written: this text supersedes it */
    e->queued = text;
    e->ver++;
    if (wt) {
        wt->cb = cb;
        wt->arg = arg;
        wt->need = e->ver;
        waiter **pp = &e->waiters;
        while (*pp)
            pp = &(*pp)->next;
        *pp = wt;
    }
    if (!e->job) start_job(w, e);
    return 0;
}

void hb_writer_forget(hb_writer *w, void *arg) {
    for (wentry *e = w->files, *next; e; e = next) {
        next = e->next;
        for (waiter **pp = &e->waiters; *pp;) {
            waiter *wt = *pp;
            if (wt->arg == arg) {
                *pp = wt->next;
                free(wt);
            } else {
                pp = &wt->next;
            }
        }
        entry_maybe_free(w, e);
    }
}

const char *hb_writer_pending(hb_writer *w, const char *path) {
    for (wentry *e = w->files; e; e = e->next)
        if (!strcmp(e->path, path)) return e->queued ? e->queued : e->job ? e->job->text : NULL;
    return NULL;
}
