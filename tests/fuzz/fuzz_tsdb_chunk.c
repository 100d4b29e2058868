/* fuzz_tsdb_chunk.c: libFuzzer target for the store's chunk decoder (the bytes a snapshot
 * restores) and, for the same input read as numbers, the encoder's round trip. The first byte
 * picks 1 or 4 fields and the record count; the rest is the bit stream, followed by exactly the
 * 8 bytes of padding chunks always carry, so ASan catches any read beyond. */
#include "store/tsdb_chunk.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > (1u << 16)) return 0;
    size_t n = size - 1;
    tsdb_chunk c;
    memset(&c, 0, sizeof c);
    c.buf = calloc(1, n + 8);
    if (!c.buf) return 0;
    memcpy(c.buf, data + 1, n);
    c.cap = (uint32_t)(n + 8);
    c.nbits = (uint32_t)(n * 8);
    c.nfields = (data[0] & 1) ? 4 : 1;
    c.n = (uint16_t)(1 + (data[0] >> 1) % TSDB_CHUNK_MAX);
    c.sealed = 1;
    tsdb_chunk_iter it;
    tsdb_chunk_iter_init(&it, &c);
    int64_t ts;
    double v[4];
    static int64_t one_ts[TSDB_CHUNK_MAX], many_ts[TSDB_CHUNK_MAX];
    static double one_v[TSDB_CHUNK_MAX * 4], many_v[TSDB_CHUNK_MAX * 4];
    size_t n1 = 0, n2 = 0, nf = c.nfields;
    while (tsdb_chunk_next(&it, &ts, v) == 1) {
        one_ts[n1] = ts;
        memcpy(&one_v[n1 * nf], v, nf * sizeof *v);
        n1++;
    }
    /* batches decode the same records */
    tsdb_chunk_iter_init(&it, &c);
    int got;
    while ((got = tsdb_chunk_next_n(&it, many_ts + n2, many_v + n2 * nf, 7)) > 0)
        n2 += (size_t)got;
    if (n1 != n2 || memcmp(one_ts, many_ts, n1 * sizeof *one_ts) ||
        memcmp(one_v, many_v, n1 * nf * sizeof *one_v))
        abort();
    free(c.buf);

    /* encoder round trip: the input as (timestamp delta, value) pairs must decode exactly */
    tsdb_chunk e;
    if (tsdb_chunk_init(&e, 1)) return 0;
    int64_t t = 0, tss[TSDB_CHUNK_MAX];
    double vals[TSDB_CHUNK_MAX];
    size_t k = 0;
    for (size_t off = 1; off + 12 <= size && k < TSDB_CHUNK_MAX; off += 12) {
        uint32_t d;
        memcpy(&d, data + off, 4);
        memcpy(&vals[k], data + off + 4, 8);
        t += 1 + (int64_t)d;
        tss[k] = t;
        if (tsdb_chunk_append(&e, t, &vals[k])) abort();
        k++;
    }
    tsdb_chunk_seal(&e);
    tsdb_chunk_iter_init(&it, &e);
    for (size_t i = 0; i < k; i++) {
        if (tsdb_chunk_next(&it, &ts, v) != 1 || ts != tss[i] || memcmp(&v[0], &vals[i], 8) != 0)
            abort();
    }
    tsdb_chunk_fini(&e);
    return 0;
}
