/* replica_cgroup.h: a replica's cgroup as node actions see it: its path relative to the cgroup
 * root (as /proc/PID/cgroup shows it, e.g. /system.slice/web@3.service) resolved in every
 * mounted hierarchy (v1 freezer, memory, cpu, ... and the v2 unified one), freeze/thaw with a
 * deadline on the agent's loop, and memory reclaim in a helper thread (the kernel's reclaim
 * write can take long; the loop never waits for it).
 *
 * Resolution: in each hierarchy the directory MOUNT/PATH is used when it exists; otherwise (a
 * hierarchy where processes sit elsewhere, e.g. a nested memory cgroup) the path is taken from
 * /proc/PID/cgroup of one of the replica's processes found in another hierarchy, but only when
 * it ends with PATH (".../PATH"): a cgroup the process shares with others is never used. */
#ifndef TIDE_REPLICA_CGROUP_H
#define TIDE_REPLICA_CGROUP_H

#include <cjson/cJSON.h>
#include <ev.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define RCG_MAX_HIER 16
#define RCG_PATH_MAX 768

typedef struct rcg_hierarchy {
    int v2;            /* 1: the unified (cgroup2) hierarchy */
    char options[256]; /* super options of a v1 mount: "rw,freezer", "rw,cpu,cpuacct" */
    char mount[256];   /* "/sys/fs/cgroup/freezer" */
    int favordynmods;  /* mounted with favordynmods (the flag is kernel-wide once one has it) */
} rcg_hierarchy;

typedef struct rcg_hierarchies {
    int n;
    rcg_hierarchy h[RCG_MAX_HIER];
} rcg_hierarchies;

/* Pure parser of /proc/self/mountinfo text: fills hs with every cgroup (v1) and cgroup2 mount.
 * Returns 0 (hs->n may be 0), or -EINVAL with err naming the malformed line. */
int rcg_parse_mountinfo(const char *text, size_t len, rcg_hierarchies *hs, char *err,
                        size_t errlen);

/* Reads /proc/self/mountinfo (whole, up to 32 MiB) into hs. Returns 0 or -errno with err. */
int rcg_read_hierarchies(rcg_hierarchies *hs, char *err, size_t errlen);

/* 1 when one of hs's hierarchies is mounted with favordynmods, else 0. On Linux >= 6.1 the flag
 * is kernel-wide: moving a process into a cgroup (a write to cgroup.procs) no longer waits for an
 * RCU grace period (and on kernels with the per-threadgroup lock, 6.18 here, nor for the forks
 * and exits of other processes), at some cost to every fork and exit. Replica starts are the
 * moves that wait (README "Faster replica starts: favordynmods"). */
int rcg_favordynmods(const rcg_hierarchies *hs);

/* Pure parser of /proc/PID/cgroup text: copies into path the entry of hierarchy h (v2: the
 * "0::" line; v1: the line whose controller list is among h's mount options). Returns 0,
 * -ENOENT when no line matches, -EINVAL on a malformed line. */
int rcg_parse_proc_cgroup(const char *text, size_t len, const rcg_hierarchy *h, char *path,
                          size_t cap);

/* Checks a replica cgroup path: absolute, not the root itself, no "." or ".." component, no
 * empty component, at most RCG_PATH_MAX - 256 bytes. Returns 0 or -EINVAL with err. */
int rcg_check_path(const char *rel, char *err, size_t errlen);

typedef struct replica_cgroup {
    char rel[RCG_PATH_MAX];
    int n; /* hierarchies considered */
    struct {
        int v2;
        char name[64];          /* "unified", "freezer", "memory", "cpu,cpuacct" ... */
        char dir[RCG_PATH_MAX]; /* absolute directory, "" when not present there */
    } at[RCG_MAX_HIER];
    int freezer; /* index into at[] of the v1 freezer, -1 if none */
    int memory;  /* v1 memory, -1 if none */
    int unified; /* v2, -1 if none */
} replica_cgroup;

/* Resolves rel in the hierarchies hs (NULL: read /proc/self/mountinfo). Returns 0 when the
 * cgroup exists in at least one hierarchy; -ENOENT "cgroup /x not found in any hierarchy
 * (looked in freezer, memory, unified, ...)"; -EINVAL for a bad path. */
int rcg_resolve(const char *rel, const rcg_hierarchies *hs, replica_cgroup *rc, char *err,
                size_t errlen);

/* Where it was found, for results: {"unified": "/sys/fs/cgroup/unified/x", "freezer": ...}
 * (hierarchies where it is absent are left out). Caller owns the object; NULL on ENOMEM. */
cJSON *rcg_json(const replica_cgroup *rc);

/* ---- freeze / thaw on the loop ---- */

typedef struct rcg_freeze_result {
    const char *freezer; /* "v2", "v1" or "v2+v1" (thaw touches both) */
    int already;         /* it was already in the requested state: nothing written */
    double ms;           /* from the write to the confirmed state */
} rcg_freeze_result;

/* rc 0 with res, or -errno with err (cgroup gone, no freezer, deadline passed: a freeze that
 * did not complete in time is thawed back before reporting). */
typedef void (*rcg_freeze_done_fn)(void *arg, int rc, const rcg_freeze_result *res,
                                   const char *err);

typedef struct rcg_freeze_op rcg_freeze_op;

/* Freezes (freeze = 1) or thaws (0) the replica and polls until the kernel confirms (v2
 * cgroup.events "frozen 1"/"frozen 0"; v1 freezer.state FROZEN/THAWED) or deadline_ms passes.
 * Freeze uses v2 when the unified cgroup holds processes, else the v1 freezer; thaw clears both.
 * Returns 0 and calls done later from the loop (never from this call), or -errno with err and
 * does not call done. *op (may be NULL) lets the caller cancel. */
int rcg_freeze_start(struct ev_loop *loop, const replica_cgroup *rc, int freeze, int deadline_ms,
                     rcg_freeze_done_fn done, void *arg, rcg_freeze_op **op, char *err,
                     size_t errlen);
/* Stops the operation without calling done (a pending freeze is thawed back). NULL ok. */
void rcg_freeze_cancel(rcg_freeze_op *op);

/* ---- memory reclaim in a helper thread ---- */

/* v1 with swap: the limit is lowered toward this (plus the cgroup's unevictable pages), in
 * steps of a quarter of the usage above it, at least RCG_V1_STEP_MIN_BYTES. */
#define RCG_V1_FLOOR_BYTES (4LL << 20)
#define RCG_V1_STEP_MIN_BYTES (4LL << 20)

typedef struct rcg_reclaim_result {
    const char *method; /* "memory.reclaim", "memory.limit_in_bytes" (v1 with swap),
                           "memory.force_empty" (v1 without swap) or "none" */
    int64_t before_bytes, after_bytes, reclaimed_bytes;
    int swap; /* the host has swap: anonymous memory can be reclaimed too */
    double ms;
    int timed_out;                /* deadline passed before the kernel finished; figures so far */
    int64_t limit_original_bytes; /* memory.limit_in_bytes method: the limit activate restores */
    int64_t limit_after_bytes;    /* ... and the lowered limit left in place; both -1 otherwise */
    int limit_steps;              /* limit writes made */
} rcg_reclaim_result;

typedef void (*rcg_reclaim_done_fn)(void *arg, int rc, const rcg_reclaim_result *res,
                                    const char *err);
typedef struct rcg_reclaim_op rcg_reclaim_op;

/* Reclaims the replica's memory where the kernel offers it (v2 memory.reclaim; v1 with swap:
 * memory.limit_in_bytes lowered step by step toward the floor, pushing anonymous memory to swap,
 * the original kept for rcg_memory_limit_restore(); v1 without swap: memory.force_empty, which
 * drops page cache only; with no memory cgroup, method "none" and 0 bytes). Usage is read before
 * and after, on a worker pool of the module's (made on the first call on loop). done is called
 * from the loop when the kernel finished, or at deadline_ms with timed_out set (the worker then
 * finishes on its own and cleans up). Returns 0 or -errno with err (done not called). */
int rcg_reclaim_start(struct ev_loop *loop, const replica_cgroup *rc, int deadline_ms,
                      rcg_reclaim_done_fn done, void *arg, rcg_reclaim_op **op, char *err,
                      size_t errlen);
/* Stops a reclaim without calling done and without waiting: a queued one is dropped, one the
 * kernel is working on is freed when its write returns. Call it only before done was called.
 * NULL ok. */
void rcg_reclaim_cancel(rcg_reclaim_op *op);
/* Frees the reclaim pool: waits for the kernel's writes still under way (they cannot be
 * interrupted; at agent shutdown that is acceptable) and calls what is left of their done.
 * The next rcg_reclaim_start makes a new pool. */
void rcg_reclaim_shutdown(void);

/* Restores the v1 memory.limit_in_bytes a standby lowered (also while its reclaim thread still
 * steps: the thread then stops and restores too). Returns 1 with *restored set, 0 when no
 * lowered limit is recorded for this cgroup (never lowered, or already restored: idempotent),
 * or -errno with err. The record lives in the agent's memory and, once rcg_limit_store_open()
 * named a directory, in a file there too, so a restarted agent still restores it. */
int rcg_memory_limit_restore(const replica_cgroup *rc, int64_t *restored, char *err, size_t errlen);

/* Persists the lowered-limit records in dir (created when missing): every record made from now
 * on is written there, removed when restored, and the records found there are loaded (a
 * restarted agent's view of what its predecessor lowered). Returns how many were loaded, or
 * -errno with err. */
int rcg_limit_store_open(const char *dir, char *err, size_t errlen);
/* Stops persisting (the files stay for the next agent). */
void rcg_limit_store_close(void);

/* Current memory usage in bytes of the replica (v2 memory.current, else v1
 * memory.usage_in_bytes), or -errno. */
int64_t rcg_memory(const replica_cgroup *rc);

/* Reads a small file fully into buf (NUL-terminated). Returns length or -errno. */
ssize_t rcg_read_small(const char *dir, const char *file, char *buf, size_t cap);

#endif
