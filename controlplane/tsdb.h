/* tsdb.h: the control plane's time series store: per-series ring buffers at several
 * resolutions (raw, 1 min, 10 min; sum/count/min/max per bucket), a WAL with a CRC per record
 * and group commit, periodic snapshots, replay on open.
 *
 * Threading: every call is made from the control plane's loop thread, except where noted.
 * Durability: ingest appends a batch, then asks tsdb_when_durable() to call back once every
 * record appended so far is on disk; only then does it acknowledge the agent. The loop never
 * waits for fsync itself. */
#ifndef TIDE_TSDB_H
#define TIDE_TSDB_H

#include <stddef.h>
#include <stdint.h>

struct ev_loop;
typedef struct tsdb tsdb;

typedef struct tsdb_options {
    const char *dir;           /* data directory; NULL = memory only (tests, tidectl tools) */
    struct ev_loop *loop;      /* loop the durability callbacks run on (NULL: run inline) */
    int64_t retention_raw_s;   /* 0 = default */
    int64_t retention_1m_s;    /* 0 = default */
    int64_t retention_10m_s;   /* 0 = default */
    int64_t snapshot_every_s;  /* 0 = default */
    int64_t group_commit_ms;   /* longest wait before an fsync; 0 = default */
} tsdb_options;

typedef struct tsdb_label {
    const char *name;
    const char *value;
} tsdb_label;

/* Opens (and replays) the store. Returns 0, or -errno with err naming the file and problem. */
int tsdb_open(tsdb **out, const tsdb_options *opt, char *err, size_t errlen);
/* Flushes, writes nothing more, frees; accepts NULL. */
void tsdb_close(tsdb *db);

/* Finds or creates the series with these labels (one of them "__name__"); order does not
 * matter. *id is stable for the life of the data directory. 0 or -errno. */
int tsdb_series(tsdb *db, const tsdb_label *labels, size_t n, uint32_t *id);

/* Appends n samples (unix ms timestamps, ascending) to a series and logs them to the WAL.
 * `source`/`seq` (may be NULL/0) record which agent batch this was, so that after a restart
 * tsdb_source_seq() tells the highest batch already stored and resends are dropped.
 * Returns 0, -ENOSPC/-EIO when the WAL cannot be written (nothing was stored then). */
int tsdb_append(tsdb *db, const char *source, uint64_t seq, uint32_t id, const int64_t *ts_ms,
                const double *v, size_t n);

/* Highest `seq` stored for `source` (0 if none). */
uint64_t tsdb_source_seq(const tsdb *db, const char *source);

typedef void (*tsdb_durable_fn)(void *arg, int status /* 0 or -errno */);
/* Calls fn(arg, 0) on the loop once everything appended before this call is durable, or
 * fn(arg, -errno) when writing it failed. */
void tsdb_when_durable(tsdb *db, tsdb_durable_fn fn, void *arg);

/* Status for tidectl/metrics: a short human string ("ok", "wal: No space left on device"). */
const char *tsdb_status(const tsdb *db);

#endif
