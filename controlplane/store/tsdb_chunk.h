/* tsdb_chunk.h: compressed, append-only chunks of timestamped records for the store: delta-of-
 * delta timestamps, and per value either "same as the reference", a decimal delta (the value is
 * n / 10^k exactly, k <= 7: small integer deltas for decimal data such as 85.835), or the
 * XOR'd double of the Gorilla scheme. One field (raw samples) or four fields (downsampled
 * buckets: sum, count, min, max; min and max are referenced to the bucket's mean).
 *
 * A chunk holds at most TSDB_CHUNK_MAX records; the encoder appends to a growable byte buffer
 * and tsdb_chunk_seal() trims it. Decoding is sequential with a cursor. Not thread-safe by
 * itself: the store serialises writers and readers. */
#ifndef TIDE_TSDB_CHUNK_H
#define TIDE_TSDB_CHUNK_H

#include <stddef.h>
#include <stdint.h>

#define TSDB_CHUNK_MAX 720

typedef struct tsdb_chunk {
    uint8_t *buf;    /* bit stream, MSB first */
    uint32_t cap;    /* bytes allocated */
    uint32_t nbits;  /* bits written */
    uint16_t n;      /* records */
    uint8_t nfields; /* 1 or 4 */
    uint8_t sealed;
    int64_t first_ts, last_ts;
    /* encoder state (meaningless once sealed, kept so a restored chunk can keep growing) */
    int64_t prev_delta;
    uint64_t prev_bits[4];
    uint8_t prev_lead[4], prev_trail[4];
    uint8_t prev_k[4];  /* decimal scale last used per field */
    uint8_t n_valid[2]; /* fields 0 and 1: the previous value is n_prev / 10^prev_k */
    int64_t n_prev[2];
} tsdb_chunk;

/* Starts an empty chunk with 1 or 4 fields. Returns 0 or -ENOMEM. */
int tsdb_chunk_init(tsdb_chunk *c, int nfields);
void tsdb_chunk_fini(tsdb_chunk *c);
/* Appends one record (ts strictly greater than the last one). For four fields, v holds
 * sum, count, min, max. Returns 0, -ENOSPC when the chunk is full, -ENOMEM. */
int tsdb_chunk_append(tsdb_chunk *c, int64_t ts, const double *v);
/* Trims the buffer to its used size; the chunk takes no more records. */
void tsdb_chunk_seal(tsdb_chunk *c);
/* Bytes this chunk occupies in memory (buffer + struct). */
size_t tsdb_chunk_bytes(const tsdb_chunk *c);

typedef struct tsdb_chunk_iter {
    const tsdb_chunk *c;
    uint32_t pos; /* bit position */
    uint16_t i;   /* records decoded */
    int64_t ts, delta;
    uint64_t bits[4];
    uint8_t lead[4], trail[4];
    uint8_t k[4];
    uint8_t n_valid[2];
    int64_t n_prev[2];
    uint8_t bad; /* a malformed record was met: every later call fails */
} tsdb_chunk_iter;

void tsdb_chunk_iter_init(tsdb_chunk_iter *it, const tsdb_chunk *c);
/* Decodes the next record into *ts and v[nfields]. Returns 1, or 0 at the end, or -EBADMSG
 * when the stream is malformed (only possible for chunks restored from a damaged snapshot). */
int tsdb_chunk_next(tsdb_chunk_iter *it, int64_t *ts, double *v);
/* Decodes up to max records: ts[i] and v[i * nfields ...]. Returns how many (0 at the end), or
 * -EBADMSG when the stream is malformed at the first record asked for; the records before a
 * malformed one are returned first and the call after them fails. */
int tsdb_chunk_next_n(tsdb_chunk_iter *it, int64_t *ts, double *v, size_t max);

#endif
