/* tsdb_chunk.c: Gorilla-style compression of timestamped records (see tsdb_chunk.h). */
#include "tsdb_chunk.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define NO_WINDOW 0xff

static uint64_t dbits(double d) {
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

static double bitsd(uint64_t u) {
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

/* Writes the low n bits (1..64) of v at bit position *pos; the buffer is zeroed ahead. */
static void put(uint8_t *buf, uint32_t *pos, uint64_t v, int n) {
    while (n > 0) {
        uint32_t at = *pos >> 3;
        int room = 8 - (int)(*pos & 7);
        int take = n < room ? n : room;
        uint64_t bits = (v >> (n - take)) & ((1u << take) - 1);
        buf[at] |= (uint8_t)(bits << (room - take));
        *pos += (uint32_t)take;
        n -= take;
    }
}

/* Reads n bits (1..64); returns -1 when that would pass `limit`. */
static int get(const uint8_t *buf, uint32_t *pos, uint32_t limit, int n, uint64_t *out) {
    if ((uint64_t)*pos + (uint64_t)n > limit) return -1;
    uint64_t v = 0;
    while (n > 0) {
        uint32_t at = *pos >> 3;
        int room = 8 - (int)(*pos & 7);
        int take = n < room ? n : room;
        v = (v << take) | ((uint64_t)(buf[at] >> (room - take)) & ((1u << take) - 1));
        *pos += (uint32_t)take;
        n -= take;
    }
    *out = v;
    return 0;
}

int tsdb_chunk_init(tsdb_chunk *c, int nfields) {
    memset(c, 0, sizeof *c);
    c->nfields = (uint8_t)(nfields == 4 ? 4 : 1);
    c->cap = 64;
    c->buf = calloc(1, c->cap);
    if (!c->buf) return -ENOMEM;
    for (int j = 0; j < 4; j++) c->prev_lead[j] = NO_WINDOW;
    return 0;
}

void tsdb_chunk_fini(tsdb_chunk *c) {
    if (!c) return;
    free(c->buf);
    c->buf = NULL;
    c->cap = 0;
}

static void put_value(tsdb_chunk *c, int j, uint64_t x, uint64_t ref) {
    uint64_t xr = x ^ ref;
    if (xr == 0) {
        put(c->buf, &c->nbits, 0, 1);
        return;
    }
    int lead = __builtin_clzll(xr), trail = __builtin_ctzll(xr);
    if (lead > 31) lead = 31;
    if (c->prev_lead[j] != NO_WINDOW && lead >= c->prev_lead[j] && trail >= c->prev_trail[j]) {
        int len = 64 - c->prev_lead[j] - c->prev_trail[j];
        put(c->buf, &c->nbits, 2, 2);
        put(c->buf, &c->nbits, xr >> c->prev_trail[j], len);
        return;
    }
    int len = 64 - lead - trail;
    put(c->buf, &c->nbits, 3, 2);
    put(c->buf, &c->nbits, (uint64_t)lead, 5);
    put(c->buf, &c->nbits, (uint64_t)(len - 1), 6);
    put(c->buf, &c->nbits, xr >> trail, len);
    c->prev_lead[j] = (uint8_t)lead;
    c->prev_trail[j] = (uint8_t)trail;
}

/* min and max are XOR'd against this record's mean: equal for single-sample buckets. */
static uint64_t mean_ref(double sum, double count) {
    return dbits(count != 0 ? sum / count : sum);
}

int tsdb_chunk_append(tsdb_chunk *c, int64_t ts, const double *v) {
    if (c->sealed || c->n >= TSDB_CHUNK_MAX) return -ENOSPC;
    uint32_t need = (c->nbits >> 3) + 64;
    if (need > c->cap) {
        uint32_t ncap = c->cap * 2;
        while (ncap < need) ncap *= 2;
        uint8_t *nb = realloc(c->buf, ncap);
        if (!nb) return -ENOMEM;
        memset(nb + c->cap, 0, ncap - c->cap);
        c->buf = nb;
        c->cap = ncap;
    }
    if (c->n == 0) {
        put(c->buf, &c->nbits, (uint64_t)ts, 64);
        c->first_ts = ts;
        c->prev_delta = 0;
    } else {
        int64_t delta = ts - c->last_ts;
        int64_t dod = delta - c->prev_delta;
        uint64_t zz = ((uint64_t)dod << 1) ^ (uint64_t)(dod >> 63);
        if (zz == 0) {
            put(c->buf, &c->nbits, 0, 1);
        } else if (zz < (1u << 7)) {
            put(c->buf, &c->nbits, 2, 2);
            put(c->buf, &c->nbits, zz, 7);
        } else if (zz < (1u << 12)) {
            put(c->buf, &c->nbits, 6, 3);
            put(c->buf, &c->nbits, zz, 12);
        } else if (zz < (1u << 20)) {
            put(c->buf, &c->nbits, 14, 4);
            put(c->buf, &c->nbits, zz, 20);
        } else {
            put(c->buf, &c->nbits, 15, 4);
            put(c->buf, &c->nbits, zz, 64);
        }
        c->prev_delta = delta;
    }
    c->last_ts = ts;
    for (int j = 0; j < c->nfields; j++) {
        uint64_t x = dbits(v[j]);
        uint64_t ref = (j >= 2) ? mean_ref(v[0], v[1]) : c->prev_bits[j];
        put_value(c, j, x, ref);
        c->prev_bits[j] = x;
    }
    c->n++;
    return 0;
}

void tsdb_chunk_seal(tsdb_chunk *c) {
    if (c->sealed) return;
    c->sealed = 1;
    uint32_t used = (c->nbits + 7) >> 3;
    if (used == 0) used = 1;
    uint8_t *nb = realloc(c->buf, used);
    if (nb) {
        c->buf = nb;
        c->cap = used;
    }
}

size_t tsdb_chunk_bytes(const tsdb_chunk *c) {
    return sizeof *c + c->cap;
}

void tsdb_chunk_iter_init(tsdb_chunk_iter *it, const tsdb_chunk *c) {
    memset(it, 0, sizeof *it);
    it->c = c;
    for (int j = 0; j < 4; j++) it->lead[j] = NO_WINDOW;
}

static int get_value(tsdb_chunk_iter *it, int j, uint64_t ref, uint64_t *x) {
    const tsdb_chunk *c = it->c;
    uint64_t b;
    if (get(c->buf, &it->pos, c->nbits, 1, &b)) return -EBADMSG;
    if (b == 0) {
        *x = ref;
        return 0;
    }
    if (get(c->buf, &it->pos, c->nbits, 1, &b)) return -EBADMSG;
    uint64_t m;
    if (b == 0) {
        if (it->lead[j] == NO_WINDOW) return -EBADMSG;
        int len = 64 - it->lead[j] - it->trail[j];
        if (get(c->buf, &it->pos, c->nbits, len, &m)) return -EBADMSG;
        *x = ref ^ (m << it->trail[j]);
        return 0;
    }
    uint64_t lead, len1;
    if (get(c->buf, &it->pos, c->nbits, 5, &lead) || get(c->buf, &it->pos, c->nbits, 6, &len1))
        return -EBADMSG;
    int len = (int)len1 + 1;
    if ((int)lead + len > 64) return -EBADMSG;
    int trail = 64 - (int)lead - len;
    if (get(c->buf, &it->pos, c->nbits, len, &m)) return -EBADMSG;
    it->lead[j] = (uint8_t)lead;
    it->trail[j] = (uint8_t)trail;
    *x = ref ^ (m << trail);
    return 0;
}

int tsdb_chunk_next(tsdb_chunk_iter *it, int64_t *ts, double *v) {
    const tsdb_chunk *c = it->c;
    if (it->i >= c->n) return 0;
    uint64_t b;
    if (it->i == 0) {
        if (get(c->buf, &it->pos, c->nbits, 64, &b)) return -EBADMSG;
        it->ts = (int64_t)b;
        it->delta = 0;
    } else {
        int ones = 0;
        while (ones < 4) {
            if (get(c->buf, &it->pos, c->nbits, 1, &b)) return -EBADMSG;
            if (b == 0) break;
            ones++;
        }
        static const int widths[5] = {0, 7, 12, 20, 64};
        uint64_t zz = 0;
        if (ones > 0 && get(c->buf, &it->pos, c->nbits, widths[ones], &zz)) return -EBADMSG;
        int64_t dod = (int64_t)(zz >> 1) ^ -(int64_t)(zz & 1);
        it->delta += dod;
        it->ts += it->delta;
    }
    for (int j = 0; j < c->nfields; j++) {
        uint64_t ref = (j >= 2) ? mean_ref(v[0], v[1]) : it->bits[j];
        uint64_t x;
        if (get_value(it, j, ref, &x)) return -EBADMSG;
        it->bits[j] = x;
        v[j] = bitsd(x);
    }
    *ts = it->ts;
    it->i++;
    return 1;
}
