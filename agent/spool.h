/* spool.h: the agent's bounded on-disk spool of unacknowledged report batches.
 *
 * While the control plane is away, the reporting queue spills its encoded batches here; after
 * a reconnect it resends them oldest first and drops them once the control plane acknowledges
 * their sequence. The spool lives in a directory of segment files ("seg-<first seq>.spool",
 * each a run of frames: magic, seq, length, CRC-32C of header+payload, payload), so it
 * survives an agent restart; spool_open() rescans the segments, keeps every frame whose CRC
 * holds and cuts a torn tail written by a crash.
 *
 * The spool is bounded by bytes: when an append would exceed the bound, whole segments of the
 * OLDEST data are deleted and their frames counted as dropped (spool_stats.dropped_frames).
 * Appending never waits for the control plane and never fsyncs (only spool_close does), so
 * sampling is never blocked by a full or slow spool: the spool survives an agent crash or
 * restart through the page cache; after a machine crash the CRCs cut whatever was torn.
 *
 * Sequences are the caller's (the reporting queue's batch sequence); they must grow strictly
 * with each append, also across restarts: after spool_open, continue above
 * spool_stats.last_seq (which is at least the persisted acked_seq). Not thread-safe: use it from
 * the agent loop only. */
#ifndef TIDE_SPOOL_H
#define TIDE_SPOOL_H

#include <stddef.h>
#include <stdint.h>

typedef struct spool spool;

typedef struct spool_stats {
    uint64_t frames;         /* frames held now */
    uint64_t bytes;          /* bytes held on disk now (headers included) */
    uint64_t first_seq;      /* oldest held seq (0 when empty) */
    uint64_t last_seq;       /* newest seq ever appended (0 before the first) */
    uint64_t acked_seq;      /* highest seq acknowledged (persisted across restarts) */
    uint64_t dropped_frames; /* frames deleted unsent because the spool was full (since open) */
    uint64_t dropped_bytes;  /* their bytes */
    uint64_t corrupt_frames; /* frames skipped at open because their CRC or header was bad */
} spool_stats;

/* Opens (creating it if needed, mode 0700) the spool in `dir`, bounded to max_bytes on disk
 * (at least SPOOL_MIN_BYTES). Existing segments are scanned and validated. On success *out
 * owns the spool (free with spool_close). Returns 0, or -errno with err filled
 * (e.g. -ENOTDIR, -EACCES, -EINVAL for a bound below SPOOL_MIN_BYTES, -EBUSY when another
 * process has the spool open: the directory is locked with flock on DIR/lock). */
#define SPOOL_MIN_BYTES (64u * 1024u)
int spool_open(spool **out, const char *dir, uint64_t max_bytes, char *err, size_t errlen);

/* Closes the spool (fdatasync of the segment being written); accepts NULL. Frames stay on disk. */
void spool_close(spool *sp);

/* Appends one frame. seq must be greater than every seq appended before (-EINVAL otherwise);
 * a frame larger than a quarter of the bound is refused with -EMSGSIZE. When the bound would
 * be exceeded, the oldest segments are dropped and counted first. Returns 0 or -errno
 * (I/O errors: the frame is not held, the caller keeps or drops it). */
int spool_append(spool *sp, uint64_t seq, const void *data, size_t len, char *err, size_t errlen);

/* Reads the oldest held frame with seq > after_seq into *data (malloc'd, caller frees) and
 * *len, and its seq into *seq. Returns 1 when a frame was read, 0 when none is left, or
 * -errno (a frame whose CRC no longer holds on re-read is skipped and counted as corrupt). */
int spool_read_next(spool *sp, uint64_t after_seq, uint64_t *seq, void **data, size_t *len);

/* Marks every frame with seq <= acked as acknowledged: they are never returned again, and
 * segments holding only acknowledged frames are deleted. The ack point is persisted in the
 * spool directory so a restarted agent does not resend them. Returns 0 or -errno. */
int spool_ack(spool *sp, uint64_t acked);

/* Fills *st with the current counters. */
void spool_get_stats(const spool *sp, spool_stats *st);

#endif
