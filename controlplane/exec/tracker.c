/* tracker.c: pending executor actions and completion matching (tracker.h). A flat array in
 * start order: the number pending is small (bounded by max_pending) and every operation is a
 * scan, which keeps removal order-preserving and the code obvious. */
#include "exec/tracker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct exec_tracker {
    exec_pending *p;
    size_t n, cap;
    uint64_t next_seq;
};

exec_tracker *exec_tracker_new(size_t max_pending) {
    if (max_pending < 1) return NULL;
    exec_tracker *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->p = calloc(max_pending, sizeof *t->p);
    if (!t->p) {
        free(t);
        return NULL;
    }
    t->cap = max_pending;
    t->next_seq = 1;
    return t;
}

void exec_tracker_free(exec_tracker *t) {
    if (!t) return;
    free(t->p);
    free(t);
}

static int name_ok(const char *w) {
    return w && w[0] && strlen(w) < EXEC_WORKLOAD_MAX;
}

static void remove_at(exec_tracker *t, size_t i) {
    memmove(&t->p[i], &t->p[i + 1], (t->n - i - 1) * sizeof *t->p);
    t->n--;
}

int exec_tracker_busy(const exec_tracker *t, const char *workload, const char *replica) {
    for (size_t i = 0; i < t->n; i++)
        if (!strcmp(t->p[i].workload, workload) && !strcmp(t->p[i].replica, replica)) return 1;
    return 0;
}

int exec_tracker_begin(exec_tracker *t, const char *workload, uint64_t generation,
                       const char *replica, const char *action, int64_t now_ms, int timeout_ms,
                       void *handle, uint64_t *seq) {
    if (!name_ok(workload) || !tide_replica_id_valid(replica) || generation == 0 || !action ||
        strlen(action) >= sizeof t->p[0].action || timeout_ms < 0)
        return -EINVAL;
    if (exec_tracker_busy(t, workload, replica)) return -EBUSY;
    if (t->n == t->cap) return -ENOSPC;
    exec_pending *p = &t->p[t->n++];
    memset(p, 0, sizeof *p);
    snprintf(p->workload, sizeof p->workload, "%s", workload);
    snprintf(p->replica, sizeof p->replica, "%s", replica);
    snprintf(p->action, sizeof p->action, "%s", action);
    p->generation = generation;
    p->seq = t->next_seq++;
    p->started_ms = now_ms;
    p->deadline_ms = now_ms + timeout_ms;
    p->handle = handle;
    *seq = p->seq;
    return 0;
}

int exec_tracker_complete(exec_tracker *t, const char *workload, uint64_t generation, uint64_t seq,
                          exec_pending *out) {
    for (size_t i = 0; i < t->n; i++) {
        exec_pending *p = &t->p[i];
        if (p->seq != seq) continue;
        /* seqs are unique: this is the one entry it can be */
        if (p->generation != generation || strcmp(p->workload, workload)) return 0;
        if (out) *out = *p;
        remove_at(t, i);
        return 1;
    }
    return 0;
}

int exec_tracker_forget(exec_tracker *t, const char *workload, uint64_t keep_generation,
                        exec_pending_fn cancel, void *arg) {
    int n = 0;
    for (size_t i = 0; i < t->n;) {
        exec_pending *p = &t->p[i];
        if (strcmp(p->workload, workload) ||
            (keep_generation != 0 && p->generation == keep_generation)) {
            i++;
            continue;
        }
        exec_pending gone = *p;
        remove_at(t, i);
        if (cancel) cancel(arg, &gone);
        n++;
    }
    return n;
}

int exec_tracker_expire(exec_tracker *t, int64_t now_ms, exec_pending_fn fn, void *arg) {
    int n = 0;
    for (size_t i = 0; i < t->n;) {
        if (t->p[i].deadline_ms > now_ms) {
            i++;
            continue;
        }
        exec_pending gone = t->p[i];
        remove_at(t, i);
        if (fn) fn(arg, &gone);
        n++;
    }
    return n;
}

size_t exec_tracker_count(const exec_tracker *t, const char *workload) {
    size_t n = 0;
    for (size_t i = 0; i < t->n; i++)
        if (!workload || !strcmp(t->p[i].workload, workload)) n++;
    return n;
}

void exec_tracker_each(const exec_tracker *t, const char *workload, exec_pending_fn fn, void *arg) {
    for (size_t i = 0; i < t->n; i++)
        if (!workload || !strcmp(t->p[i].workload, workload)) fn(arg, &t->p[i]);
}
