/* tsdb_chunk.c: Gorilla-style compression of timestamped records (see tsdb_chunk.h). */
#include "tsdb_chunk.h"

#include <errno.h>
#include <math.h>
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

static uint64_t load_be(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return __builtin_bswap64(v);
}

static void store_be(uint8_t *p, uint64_t v) {
    v = __builtin_bswap64(v);
    memcpy(p, &v, 8);
}

/* Writes the low n bits (1..64) of v at bit position *pos. The buffer is zeroed ahead and has
 * at least 8 spare bytes past the position (tsdb_chunk_append reserves them). */
static void put(uint8_t *buf, uint32_t *pos, uint64_t v, int n) {
    if (n > 56) {
        put(buf, pos, v >> 32, n - 32);
        put(buf, pos, v & 0xffffffffu, 32);
        return;
    }
    uint32_t at = *pos >> 3;
    int off = (int)(*pos & 7);
    uint64_t w = load_be(buf + at);
    w |= (v & ((1ull << n) - 1)) << (64 - off - n);
    store_be(buf + at, w);
    *pos += (uint32_t)n;
}

/* Reads n bits (1..64); returns -1 when that would pass `limit`. The buffer has 8 readable
 * bytes past `limit` (chunks keep that padding). */
static int get(const uint8_t *buf, uint32_t *pos, uint32_t limit, int n, uint64_t *out) {
    if ((uint64_t)*pos + (uint64_t)n > limit) return -1;
    if (n > 56) {
        uint64_t hi = 0, lo = 0;
        get(buf, pos, limit, n - 32, &hi);
        get(buf, pos, limit, 32, &lo);
        *out = (hi << 32) | lo;
        return 0;
    }
    uint64_t w = load_be(buf + (*pos >> 3)) << (*pos & 7);
    *out = w >> (64 - n);
    *pos += (uint32_t)n;
    return 0;
}

static const double pow10_tab[8] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000};
#define DEC_LIMIT 4.0e15 /* |n| stays well inside the 2^53 exact-integer range */

/* n with n / 10^k == x exactly (bitwise), for this k; 0 if x is not such a decimal. */
static int dec_at(double x, int k, int64_t *n) {
    double s = x * pow10_tab[k];
    if (!(s > -DEC_LIMIT && s < DEC_LIMIT)) return 0;
    int64_t m = llround(s);
    double back = (double)m / pow10_tab[k];
    if (dbits(back) != dbits(x)) return 0;
    *n = m;
    return 1;
}

static int ref_int(double ref, int k, int64_t *n) {
    double s = ref * pow10_tab[k];
    if (!(s > -DEC_LIMIT && s < DEC_LIMIT)) return 0;
    *n = llround(s);
    return 1;
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

/* Value encoding, after the reference r (previous value of the field, or the bucket mean):
 *   0                          x == r
 *   10 s [kkk] D               x == n / 10^k: s=0 same k as last time, else 3 bits of k;
 *                              D = zigzag(n - round(r * 10^k)) as 0+7 | 10+16 | 11+32 bits
 *   11 0 bits                  XOR with r in the previous window
 *   11 1 lllll mmmmmm bits     XOR with r: leading zeros, length-1, meaningful bits */
static void put_value(tsdb_chunk *c, int j, uint64_t x, uint64_t ref) {
    uint64_t xr = x ^ ref;
    if (xr == 0) {
        put(c->buf, &c->nbits, 0, 1);
        return;
    }
    double xv = bitsd(x), rv = bitsd(ref);
    int64_t n, rn;
    int k = c->prev_k[j], found = dec_at(xv, k, &n) && ref_int(rv, k, &rn);
    for (int t = 0; !found && t < 8; t++)
        if (t != c->prev_k[j] && dec_at(xv, t, &n) && ref_int(rv, t, &rn)) {
            k = t;
            found = 1;
        }
    if (found) {
        uint64_t d = (uint64_t)n - (uint64_t)rn;
        uint64_t zz = (d << 1) ^ (uint64_t)((int64_t)d >> 63);
        int bits = zz < (1u << 7) ? 1 : zz < (1u << 16) ? 2 : zz < (1ull << 32) ? 3 : 4;
        /* a decimal pays off unless the delta needs the 64-bit form */
        if (bits < 4) {
            put(c->buf, &c->nbits, 2, 2);
            if (k == c->prev_k[j]) put(c->buf, &c->nbits, 0, 1);
            else {
                put(c->buf, &c->nbits, 1, 1);
                put(c->buf, &c->nbits, (uint64_t)k, 3);
                c->prev_k[j] = (uint8_t)k;
            }
            if (bits == 1) {
                put(c->buf, &c->nbits, 0, 1);
                put(c->buf, &c->nbits, zz, 7);
            } else if (bits == 2) {
                put(c->buf, &c->nbits, 2, 2);
                put(c->buf, &c->nbits, zz, 16);
            } else {
                put(c->buf, &c->nbits, 3, 2);
                put(c->buf, &c->nbits, zz, 32);
            }
            return;
        }
    }
    int lead = __builtin_clzll(xr), trail = __builtin_ctzll(xr);
    if (lead > 31) lead = 31;
    put(c->buf, &c->nbits, 3, 2);
    if (c->prev_lead[j] != NO_WINDOW && lead >= c->prev_lead[j] && trail >= c->prev_trail[j]) {
        int len = 64 - c->prev_lead[j] - c->prev_trail[j];
        put(c->buf, &c->nbits, 0, 1);
        put(c->buf, &c->nbits, xr >> c->prev_trail[j], len);
        return;
    }
    int len = 64 - lead - trail;
    put(c->buf, &c->nbits, 1, 1);
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
    uint32_t used = ((c->nbits + 7) >> 3) + 8; /* the bit reader loads 8 bytes at a time */
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
    if (b == 0) { /* decimal */
        if (get(c->buf, &it->pos, c->nbits, 1, &b)) return -EBADMSG;
        if (b) {
            uint64_t k;
            if (get(c->buf, &it->pos, c->nbits, 3, &k)) return -EBADMSG;
            it->k[j] = (uint8_t)k;
        }
        int ones = 0;
        while (ones < 2) {
            if (get(c->buf, &it->pos, c->nbits, 1, &b)) return -EBADMSG;
            if (b == 0) break;
            ones++;
        }
        static const int widths[3] = {7, 16, 32};
        uint64_t zz;
        if (get(c->buf, &it->pos, c->nbits, widths[ones], &zz)) return -EBADMSG;
        int64_t rn;
        if (!ref_int(bitsd(ref), it->k[j], &rn)) return -EBADMSG;
        int64_t d = (int64_t)(zz >> 1) ^ -(int64_t)(zz & 1);
        int64_t n = (int64_t)((uint64_t)rn + (uint64_t)d);
        *x = dbits((double)n / pow10_tab[it->k[j]]);
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
