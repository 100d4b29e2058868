/* tracker.h: the actions an executor has under way, and the rule that matches their
 * completions. An action is known by (workload, generation, seq): the workload's name, the
 * generation of its spec the action was decided under (a re-apply makes a new one), and a
 * sequence number this tracker hands out. A completion is accepted only when that exact triple
 * is still pending, never by replica name: a late answer from an old generation, or for an
 * action that was cancelled, is recognised as stale and dropped, even when a new replica of the
 * same name exists by then.
 *
 * forget() cancels what a re-apply (other generations) or a delete (all) leaves behind, through
 * the caller's cancel callback (e.g. exec_node_action_cancel on the transport handle); expire()
 * removes what passed its deadline so the caller can report it failed; busy() tells whether a
 * replica already has an action under way (one at a time per replica, as the agent also
 * enforces). Pure bookkeeping: no loop, no I/O; time is passed in. Bounded: at most max_pending
 * actions. */
#ifndef TIDE_EXEC_TRACKER_H
#define TIDE_EXEC_TRACKER_H

#include <stddef.h>
#include <stdint.h>

#include "actions.h"

#define EXEC_WORKLOAD_MAX 128 /* workload names, NUL included */

typedef struct exec_pending {
    char workload[EXEC_WORKLOAD_MAX];
    uint64_t generation, seq;
    char replica[TIDE_REPLICA_ID_MAX + 1];
    char action[32];
    int64_t started_ms, deadline_ms;
    void *handle; /* the caller's: what cancel needs (a transport handle) */
} exec_pending;

typedef struct exec_tracker exec_tracker;

/* NULL on ENOMEM. max_pending >= 1. */
exec_tracker *exec_tracker_new(size_t max_pending);
void exec_tracker_free(exec_tracker *t);

/* Registers an action decided under (workload, generation) on replica. Returns 0 with *seq set
 * (> 0, increasing), -EBUSY when the replica already has one pending, -ENOSPC at max_pending,
 * -EINVAL for a workload name that is empty or too long, a bad replica id, a generation of 0 or
 * an action name longer than 31 bytes. */
int exec_tracker_begin(exec_tracker *t, const char *workload, uint64_t generation,
                       const char *replica, const char *action, int64_t now_ms, int timeout_ms,
                       void *handle, uint64_t *seq);

/* A completion arrived for (workload, generation, seq): 1 when it is pending (removed, *out
 * filled when out is not NULL), 0 when stale (unknown, cancelled, expired, or another
 * generation). */
int exec_tracker_complete(exec_tracker *t, const char *workload, uint64_t generation, uint64_t seq,
                          exec_pending *out);

typedef void (*exec_pending_fn)(void *arg, const exec_pending *p);

/* Removes the pending actions of workload whose generation is not keep_generation (a re-apply:
 * pass the new generation) or all of them (a delete: pass 0), calling cancel (may be NULL) for
 * each before it goes. Returns how many. */
int exec_tracker_forget(exec_tracker *t, const char *workload, uint64_t keep_generation,
                        exec_pending_fn cancel, void *arg);

/* Removes every action whose deadline is <= now_ms, calling fn for each. Returns how many. */
int exec_tracker_expire(exec_tracker *t, int64_t now_ms, exec_pending_fn fn, void *arg);

/* 1 when replica of workload has an action pending, else 0. */
int exec_tracker_busy(const exec_tracker *t, const char *workload, const char *replica);

/* Pending actions of workload (NULL: all). */
size_t exec_tracker_count(const exec_tracker *t, const char *workload);

/* Calls fn for each pending action of workload (NULL: all), oldest first. */
void exec_tracker_each(const exec_tracker *t, const char *workload, exec_pending_fn fn, void *arg);

#endif
