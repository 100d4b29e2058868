/* tsdb_wal.h: the store's write-ahead log, group commit on a worker thread, snapshots, and
 * replay on open. Internal to tsdb.c (the record format is tsdb.c's business: this layer
 * frames opaque records with a length and a CRC32C).
 *
 * Files in the data directory:
 *   wal-<16 hex>.log    segments: format 2 (written since the header checksum came in):
 *                       "TIDEWAL\x02", then records [u32 len][u32 crc32c(payload)]
 *                       [u32 crc32c(the 8 header bytes before)][payload], LE. Format 1 (no
 *                       file header, records [u32 len][u32 crc32c(payload)][payload]) is
 *                       still read. The header checksum tells a torn write (a partial record
 *                       with nothing intact after it, at the end of the last segment) from
 *                       damage (anything else), which stops start-up and changes nothing.
 *   snapshot-<16 hex>.snap   full store image; its number is the first segment to replay after
 *                            it; written to .tmp, fsynced, renamed; trailing u32 crc32c.
 *                            The two newest are kept with every segment from the older one
 *                            on, so a damaged newest snapshot costs nothing.
 * Only the loop thread calls these, except where noted. */
#ifndef TIDE_TSDB_WAL_H
#define TIDE_TSDB_WAL_H

#include "store/tsdb.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define TSDB_WAL_MAX_RECORD (64u << 20)

typedef struct tsdb_wal tsdb_wal;

typedef struct tsdb_wal_options {
    const char *dir;
    struct ev_loop *loop;    /* NULL: tsdb__wal_when_durable() waits, no snapshot timer */
    int64_t group_commit_ms; /* the worker gathers records this long before write+fsync */
    int64_t snapshot_every_s;
    /* Restores a snapshot image into the empty store; sets *wal_from. 0 or -errno. */
    int (*restore)(void *arg, const uint8_t *data, size_t len, uint64_t *wal_from);
    /* Applies one replayed record. 0 or -errno (-EBADMSG: malformed). */
    int (*replay)(void *arg, const uint8_t *rec, size_t len);
    /* Called on the loop by the snapshot timer: the store calls rotate + snapshot. */
    void (*snapshot)(void *arg);
    /* Called on the WAL worker: serialises a snapshot the store captured (tsdb__wal_snapshot)
     * into a malloc'd image. Reads only the capture and what it references. 0 or -errno. */
    int (*encode)(void *arg, void *snap, uint8_t **buf, size_t *len);
    /* Called on the loop (or inline without one, or from tsdb__wal_close) once the worker is
     * done with a capture: status 0 when the snapshot is on disk, else -errno. The capture and
     * anything kept alive for it may be freed then. */
    void (*snapshot_done)(void *arg, void *snap, int status);
    void *arg;
} tsdb_wal_options;

/* Creates the directory if needed, restores the newest snapshot, replays the segments after
 * it (truncating a torn tail of the last one), starts a new segment and the worker.
 * 0 or -errno with err naming the file, and for a corrupt record its offset. */
int tsdb__wal_open(tsdb_wal **out, const tsdb_wal_options *opt, char *err, size_t errlen);
/* Writes and fsyncs everything queued, stops the worker, completes pending callbacks
 * (status 0 if durable, else the error), frees. */
void tsdb__wal_close(tsdb_wal *w);

/* The sticky write error (-ENOSPC, -EIO, ...) while the WAL cannot be written, else 0.
 * Thread-safe. */
int tsdb__wal_error(tsdb_wal *w);
/* Like tsdb__wal_error(), and fills buf with "ok" or the reason. Thread-safe. */
int tsdb__wal_status(tsdb_wal *w, char *buf, size_t len);

/* Queues one record (copied). 0, -EINVAL (too large), -ENOMEM, or the sticky error. */
int tsdb__wal_append(tsdb_wal *w, const uint8_t *rec, size_t len);
/* Starts a new segment for the records queued after this call; returns its number. */
uint64_t tsdb__wal_rotate(tsdb_wal *w);
/* Queues a snapshot capture that covers every segment before wal_from: the worker encodes it
 * (opt.encode), writes, fsyncs and renames it; once it is on disk, older segments and
 * snapshots are removed; then opt.snapshot_done(snap) runs on the loop. Without a loop this
 * waits for all of that and calls snapshot_done inline. 0, or -ENOMEM (snapshot_done is not
 * called then). */
int tsdb__wal_snapshot(tsdb_wal *w, void *snap, uint64_t wal_from);
/* Calls fn(arg, 0) on the loop once every record queued so far is on disk, or
 * fn(arg, -errno) if writing failed first. Without a loop: waits, then calls inline. */
void tsdb__wal_when_durable(tsdb_wal *w, tsdb_durable_fn fn, void *arg);
/* Blocks until everything queued is durable or failed; returns 0 or -errno. */
int tsdb__wal_sync(tsdb_wal *w);
/* Fills the WAL fields of st. Thread-safe. */
void tsdb__wal_stats(tsdb_wal *w, tsdb_stats *st);

typedef struct tsdb_wal_report {
    uint64_t snapshots_ok, snapshots_damaged;
    uint64_t segments, records; /* segments read, intact records applied */
    uint64_t records_unapplied; /* intact records that could not be applied (lost) */
    uint64_t damaged_regions;   /* damaged stretches skipped */
    uint64_t bytes_lost;        /* their bytes */
    uint64_t torn_bytes;        /* a torn write at the end: never acknowledged */
    int snapshot_lost;          /* snapshots exist but none is intact */
} tsdb_wal_report;

/* Reads opt->dir without changing anything: restores the newest intact snapshot into the
 * (empty) store, replays every intact record of the segments after it, skips damage and
 * records that cannot be applied, and writes one line per finding to out. 0 (whatever was
 * found: see rep) or -errno when the directory cannot be read. */
int tsdb__wal_salvage(const tsdb_wal_options *opt, FILE *out, tsdb_wal_report *rep, char *err,
                      size_t errlen);

/* CRC32C (Castagnoli), hardware-accelerated where the CPU has SSE4.2. */
uint32_t tsdb__crc32c(uint32_t crc, const void *data, size_t len);

#endif
