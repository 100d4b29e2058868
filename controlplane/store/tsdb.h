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
#include <stdio.h>

struct ev_loop;
typedef struct tsdb tsdb;

typedef struct tsdb_options {
    const char *dir;          /* data directory; NULL = memory only (tests, tidectl tools) */
    struct ev_loop *loop;     /* loop the durability callbacks run on (NULL: run inline) */
    int64_t retention_raw_s;  /* 0 = default */
    int64_t retention_1m_s;   /* 0 = default */
    int64_t retention_10m_s;  /* 0 = default */
    int64_t snapshot_every_s; /* 0 = default */
    int64_t group_commit_ms;  /* longest wait before an fsync; 0 = default */
    uint32_t max_series;      /* tsdb_series() creates no series beyond this; 0 = no limit
                               * (what replay restores is never refused) */
    int expire;               /* with a loop: run tsdb_expire() every second on it (the
                               * control plane); 0: only explicit calls expire anything */
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
/* (tsdb_series returns -EDQUOT, and counts series_refused, when creating the series would go
 * beyond max_series.) */

/* Finds the series with these labels without creating it: 0 with *id, or -ENOENT. */
int tsdb_series_lookup(tsdb *db, const tsdb_label *labels, size_t n, uint32_t *id);

/* Appends n samples (unix ms timestamps, ascending) to a series and logs them to the WAL.
 * `source`/`seq` (may be NULL/0) record which agent batch this was, so that after a restart
 * tsdb_source_seq() tells the highest batch already stored and resends are dropped.
 * Samples at or before the series' newest timestamp (or not after the previous one in the
 * batch) are dropped and counted, so appending a resent or partly stored batch again is
 * harmless: a batch spread over several series is best re-appended whole after a crash.
 * Returns 0, -ENOENT (unknown id), or the errno of the failing WAL write (-ENOSPC, -EIO,
 * -EROFS, ...) while the WAL cannot be written (nothing was stored then; tsdb_status() says
 * why, and appends are accepted again by themselves once a retry succeeds). */
int tsdb_append(tsdb *db, const char *source, uint64_t seq, uint32_t id, const int64_t *ts_ms,
                const double *v, size_t n);

/* Highest `seq` stored for `source` (0 if none). */
uint64_t tsdb_source_seq(const tsdb *db, const char *source);

typedef void (*tsdb_durable_fn)(void *arg, int status /* 0 or -errno */);
/* Calls fn(arg, 0) on the loop once everything appended before this call is durable, or
 * fn(arg, -errno) when writing it failed. Memory only: calls fn(arg, 0) at once. With a
 * directory but no loop: waits for the fsync, then calls fn inline. Callbacks still pending
 * at tsdb_close() are called from it (0 if durable by then, else -errno). */
void tsdb_when_durable(tsdb *db, tsdb_durable_fn fn, void *arg);

/* Status for tidectl/metrics: a short human string ("ok", "wal: No space left on device"). */
const char *tsdb_status(const tsdb *db);

/* Queues a snapshot of the whole store now (the periodic timer does this every
 * snapshot_every_s, skipping a tick while the previous one is still being written); older WAL
 * segments are removed once it is on disk. The caller only captures the store (head state and
 * chunk headers, copies of open chunks: short, no serialising); the WAL worker serialises,
 * writes and fsyncs it. Without a loop, returns once it is written. 0, -ENOTSUP (memory only),
 * -ENOMEM, or the WAL's error. */
int tsdb_snapshot(tsdb *db);

/* ---- Checking and salvaging a data directory (tidectl store verify / repair). ---- */

typedef struct tsdb_salvage_report {
    uint64_t snapshots_ok, snapshots_damaged;
    uint64_t segments, records; /* WAL segments read, intact records applied */
    uint64_t records_unapplied; /* intact records that could not be applied: lost */
    uint64_t damaged_regions;   /* damaged stretches of the WAL skipped */
    uint64_t bytes_lost;        /* their bytes */
    uint64_t torn_bytes;        /* a torn write at the end: never acknowledged, not a loss */
    int snapshot_lost;          /* snapshots exist but none is intact */
    uint64_t series, samples;   /* what was salvaged */
} tsdb_salvage_report;

/* 1 when the report shows anything lost (damage, records that cannot be applied). */
int tsdb_salvage_lost(const tsdb_salvage_report *rep);

/* Reads the data directory `src` without changing it (it may be in use), restoring the newest
 * intact snapshot and every intact WAL record after it into memory; writes one line per
 * finding (file, offset, bytes, what was lost) to out (may be NULL). With dst (a directory
 * that must not exist or be empty), writes what was salvaged there as a fresh snapshot, ready
 * for `--data-dir dst`. 0 (see rep for what was found), or -errno with err (src unreadable,
 * dst not empty or not writable). Retention is not applied: nothing is dropped for age. */
int tsdb_salvage(const char *src, const char *dst, FILE *out, tsdb_salvage_report *rep, char *err,
                 size_t errlen);

/* ---- Read side. Everything below is thread-safe: the store takes a reader lock, so the
 * HTTP thread may query while the loop appends. ---- */

enum tsdb_res { TSDB_RAW = 0, TSDB_1M = 1, TSDB_10M = 2, TSDB_NRES = 3 };

/* One point: a raw sample (count 1, sum = min = max = value) or a downsampled bucket
 * [b, b + res), stamped at its end (b + res - 1 ms) or at the series' newest sample when that
 * is earlier (the bucket still being filled), so no value appears before the samples it
 * summarises. */
typedef struct tsdb_point {
    int64_t ts_ms;
    double sum, count, min, max;
} tsdb_point;

/* A growable array of points owned by the caller; zero-initialise, free with
 * tsdb_points_fini(). Reads append to it. */
typedef struct tsdb_points {
    tsdb_point *p;
    size_t n, cap;
} tsdb_points;
void tsdb_points_fini(tsdb_points *pts);

/* Resolution length in ms (0 for raw). */
int64_t tsdb_res_ms(int res);

/* Appends the points of series `id` at resolution `res` with start_ms <= ts <= end_ms, in
 * time order, to *out (including the bucket still being filled). 0, -ENOENT (no such series),
 * -ENOMEM, -EBADMSG (a damaged chunk; the points before it are kept). */
int tsdb_read(tsdb *db, uint32_t id, int res, int64_t start_ms, int64_t end_ms, tsdb_points *out);

/* Range scan for a query evaluated every step_ms: uses the coarsest resolution no longer
 * than the step, and for the part of [start_ms, end_ms] older than what that resolution
 * still holds, the next coarser one. *res_used gets the finest resolution used. Same
 * returns as tsdb_read(). */
int tsdb_read_step(tsdb *db, uint32_t id, int64_t step_ms, int64_t start_ms, int64_t end_ms,
                   tsdb_points *out, int *res_used);

/* Points as two parallel arrays: a raw sample's value or a bucket's mean (sum / count), owned
 * by the caller (zero-initialise; reuse across reads to save allocations; free both arrays).
 * Reads set n (the arrays keep their capacity). */
typedef struct tsdb_tv {
    int64_t *ts;
    double *v;
    size_t n, cap;
} tsdb_tv;

/* tsdb_read_step() into *out as (time, value) pairs, strictly increasing in time (a point not
 * newer than the one before it is dropped). Same returns; out->n is set on every return. */
int tsdb_read_step_tv(tsdb *db, uint32_t id, int64_t step_ms, int64_t start_ms, int64_t end_ms,
                      tsdb_tv *out, int *res_used);

/* Evaluates series `id` at the nsteps steps start_ms, start_ms + step_ms, ...: out[k] gets the
 * newest point in (t - lookback_ms, t] (a bucket's mean sum/count), NaN where there is none,
 * reading the rings as tsdb_read_step() does, without materialising points. *first_ms and
 * *last_ms (may be NULL) get the oldest and newest point read (INT64_MAX / INT64_MIN if none).
 * Returns the number of steps with a value, or -ENOENT, -EINVAL. */
int tsdb_eval_step(tsdb *db, uint32_t id, int64_t start_ms, int64_t step_ms, size_t nsteps,
                   int64_t lookback_ms, double *out, int64_t *first_ms, int64_t *last_ms);

/* Number of series ids handed out; ids run from 1 to this number, and the ids of removed
 * series (tsdb_expire) answer -ENOENT everywhere. */
uint32_t tsdb_series_count(tsdb *db);
/* Labels of series `id` (sorted by name). 0 or -ENOENT (no such id, or removed). The strings
 * stay valid on the loop's thread until it next runs tsdb_expire; on any other thread, until
 * the tsdb_read_end of a tsdb_read_begin made before this call. */
int tsdb_series_labels(tsdb *db, uint32_t id, const tsdb_label **labels, size_t *n);

typedef struct tsdb_series_info {
    uint64_t samples;          /* appended over the store's life (replay included) */
    int64_t first_ms, last_ms; /* oldest and newest point held, any resolution (0 if none) */
    size_t points[TSDB_NRES];  /* points held per resolution */
    size_t bytes[TSDB_NRES];   /* memory per resolution, chunk buffers and headers */
} tsdb_series_info;
int tsdb_series_stat(tsdb *db, uint32_t id, tsdb_series_info *info);

/* Readers on threads other than the loop's that keep label pointers (tsdb_series_labels)
 * beyond the call bracket their use with these: removed series' labels are freed only after
 * every reader that began before the removal has ended. Cheap (two atomic operations),
 * never blocks; pairs must not nest across threads. Returns the token for tsdb_read_end. */
unsigned tsdb_read_begin(tsdb *db);
void tsdb_read_end(tsdb *db, unsigned token);

/* ---- Retention: removal of series with nothing left ---- */

/* Loop thread. Looks at up to max_series series (round robin, continuing where the previous
 * call stopped): drops the chunks and buckets whose newest point is older than now_ms minus
 * their resolution's retention (counted from the wall clock, not from the series' own newest
 * sample), and removes a series with nothing left whose newest sample (or, never given one,
 * its creation) is older than the raw retention too: out of the index (a lookup or
 * tsdb_series() of its labels no longer finds it; tsdb_series() makes a new id), its id
 * answers -ENOENT, a REMOVE record in the WAL and its absence from later snapshots keep it
 * removed across restarts. Ids are never reused. With a loop the store calls this itself
 * every second (16,384 series a tick). Returns the number of series removed. */
int tsdb_expire(tsdb *db, int64_t now_ms, uint32_t max_series);
/* Called on the loop for every series removed (before its labels go), e.g. to keep per-node
 * counts; NULL to stop. Not called for removals replayed at open. */
typedef void (*tsdb_removed_fn)(void *arg, uint32_t id, const tsdb_label *labels, size_t n);
void tsdb_set_removed_hook(tsdb *db, tsdb_removed_fn fn, void *arg);

/* Store-wide counters for /metrics and tidectl. */
typedef struct tsdb_stats {
    uint64_t series;           /* live (not removed) series */
    uint64_t series_removed;   /* removed by retention since start */
    uint64_t samples_appended; /* accepted by tsdb_append */
    uint64_t samples_dropped;  /* at or before their series' newest timestamp */
    uint64_t append_errors;    /* appends refused (-ENOSPC/-EIO) */
    uint64_t series_refused;   /* new series refused for max_series */
    uint64_t points[TSDB_NRES];
    uint64_t bytes[TSDB_NRES];
    uint64_t wal_bytes;   /* size of the live WAL segments */
    uint64_t wal_written; /* bytes written to the WAL over the process' life */
    uint64_t fsyncs;
    double fsync_seconds_total; /* sum of fsync latencies */
    double fsync_seconds_max;
    uint64_t snapshots;
    uint64_t snapshot_errors;
    int64_t last_snapshot_ms; /* wall clock of the last good snapshot, 0 if none */
    int durable_ok;           /* 1 when the WAL is writable */
} tsdb_stats;
void tsdb_get_stats(tsdb *db, tsdb_stats *st);

#endif
