/* fence.h: the agent's memory of fencing tokens: for each workload, the highest token any
 * control plane sent with a command for it (PROTOCOL.md, "Fencing"). A command carrying an
 * older token comes from a control plane that lost the workload (a paused or partitioned old
 * owner) and is refused; token 0 (a control plane without high availability) is accepted only
 * while no non-zero token was seen for that workload.
 *
 * The table is bounded (max workloads: when full, the entry used least recently goes) and
 * entries not used for `expiry_s` are dropped, so the workloads of a long-gone fleet do not
 * stay forever. It survives an agent restart: fence_save() writes it to a file atomically
 * (temporary file, fsync, rename, fsync of the directory), and fence_load() reads it back.
 * A token only rises on an ownership change, so a write is rare (never per command).
 *
 * The file is text, one entry a line, checked strictly when read back:
 *   tide-fence 1
 *   <token> <last used, unix s> <workload>
 *   ...
 *   end <number of entries>
 * The codec (fence_encode / fence_decode) is pure, the rest is file I/O. Not thread-safe:
 * the agent's loop only. */
#ifndef TIDE_AGENT_FENCE_H
#define TIDE_AGENT_FENCE_H

#include <stddef.h>
#include <stdint.h>

#include "wire.h"

/* Bounds of the configuration keys (agent_config.c). */
#define FENCE_MAX_MIN 16
#define FENCE_MAX_LIMIT 1000000

typedef struct fence_entry {
    char workload[WIRE_WORKLOAD_MAX + 1];
    uint64_t token; /* > 0 */
    int64_t used_s; /* unix s of the last command that carried it */
} fence_entry;

typedef struct fence_table {
    fence_entry *e; /* unordered */
    size_t n, cap;
    size_t max;       /* entries at most */
    int64_t expiry_s; /* an entry unused this long is dropped */
    uint64_t evicted; /* entries dropped because the table was full (since start) */
    uint64_t expired; /* entries dropped for age (since start) */
} fence_table;

/* max in [FENCE_MAX_MIN, FENCE_MAX_LIMIT], expiry_s > 0. */
void fence_init(fence_table *t, size_t max, int64_t expiry_s);
void fence_fini(fence_table *t);

typedef enum fence_verdict {
    FENCE_ACCEPT = 0, /* not older than what was seen: run it (nothing to record) */
    FENCE_NEWER = 1,  /* newer than what was seen: run it once fence_record()+save succeed */
    FENCE_STALE = -1, /* older than what was seen: refuse it */
} fence_verdict;

/* The verdict for a command of workload carrying token; *seen gets the highest token held for
 * it (0 none). Pure: changes nothing. */
fence_verdict fence_check(const fence_table *t, const char *workload, uint64_t token,
                          uint64_t *seen);

/* Records that a command of workload with token (> 0) runs at now_s: raises the entry (never
 * lowers it), refreshes its use time, drops expired entries and, when a new entry would exceed
 * max, the one used least recently. 0, or -ENOMEM / -EINVAL (token 0, invalid name). */
int fence_record(fence_table *t, const char *workload, uint64_t token, int64_t now_s);

/* The highest token held for workload (0 none). */
uint64_t fence_get(const fence_table *t, const char *workload);

/* Appends the file's text for t to a malloc'd buffer (*out, *len; caller frees). 0 or -ENOMEM. */
int fence_encode(const fence_table *t, char **out, size_t *len);

/* Parses a file's text into t (emptied first; t's max and expiry_s are kept): entries older
 * than expiry_s at now_s are dropped, and beyond max the least recently used ones. A
 * workload listed twice keeps the higher token. 0, or -EINVAL with err naming the line and
 * what is wrong (t is then empty), or -ENOMEM. */
int fence_decode(fence_table *t, const char *buf, size_t len, int64_t now_s, char *err,
                 size_t errlen);

/* The largest file fence_load() reads for a table of max entries. */
size_t fence_file_max(size_t max);

/* Reads `path` into t: a missing file is an empty table (0). 0, or -errno with err naming the
 * file (unreadable, too large, or its content invalid: fence_decode's message). */
int fence_load(fence_table *t, const char *path, int64_t now_s, char *err, size_t errlen);

/* Writes t to `path` atomically (PATH.tmp, fsync, rename, fsync of the directory). 0, or
 * -errno with err naming the file and the step. */
int fence_save(const fence_table *t, const char *path, char *err, size_t errlen);

#endif
