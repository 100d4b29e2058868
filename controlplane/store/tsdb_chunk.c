/* tsdb_chunk.c: Gorilla-style compression of timestamped records (see tsdb_chunk.h). */
#include "store/tsdb_chunk.h"

#include <errno.h>
#include <malloc.h>
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

static const double pow10_tab[8] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000};
#define DEC_LIMIT 4.0e15 /* |n| stays well inside the 2^53 exact-integer range */

/* n with n / 10^k == x exactly (bitwise), for this k; 0 if x is not such a decimal. */
/* Rounds half away from zero without a libm call; encoder and decoder share it, and the
 * encoder checks the round trip, so it only needs to be deterministic. */
static inline int64_t round_i(double s) {
    return (int64_t)(s >= 0 ? s + 0.5 : s - 0.5);
}

/* n and off with bits(x) == bits(n / 10^k) + off, |off| <= 2 (decimal data that went through
 * float arithmetic, like 51.846000000000004, is a decimal plus an ulp or two); 0 if x is not
 * such a decimal at this k. */
static int dec_at(double x, int k, int64_t *n, int *off) {
    double s = x * pow10_tab[k];
    if (!(s > -DEC_LIMIT && s < DEC_LIMIT)) return 0;
    int64_t m = round_i(s);
    double back = (double)m / pow10_tab[k];
    int64_t d = (int64_t)(dbits(x) - dbits(back));
    if (d < -2 || d > 2 || ((dbits(x) ^ dbits(back)) >> 63)) return 0;
    *n = m;
    *off = (int)d;
    return 1;
}

static int ref_int(double ref, int k, int64_t *n) {
    double s = ref * pow10_tab[k];
    if (!(s > -DEC_LIMIT && s < DEC_LIMIT)) return 0;
    *n = round_i(s);
    return 1;
}

int tsdb_chunk_init(tsdb_chunk *c, int nfields) {
    memset(c, 0, sizeof *c);
    c->nfields = (uint8_t)(nfields == 4 ? 4 : 1);
    c->cap = 64;
    c->buf = calloc(1, c->cap);
    if (!c->buf) return -ENOMEM;
    for (int j = 0; j < 4; j++)
        c->prev_lead[j] = NO_WINDOW;
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
 *   10 s [kkk] D U             x == n / 10^k (+ U ulps): s=0 same k as last time, else 3
 *                              bits of k; D = zigzag(n - round(r * 10^k)) as 0+7 | 10+13 |
 *                              110+18 | 111+32 bits; U = 0 (exact) | 1 cc (+1, -1, +2, -2)
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
    int off = 0, k = c->prev_k[j], found = 0;
    if (dec_at(xv, k, &n, &off)) {
        /* the previous value's integer, if it was a decimal at this scale (fields 0, 1) */
        if (j < 2 && c->n_valid[j]) {
            rn = c->n_prev[j];
            found = 1;
        } else
            found = ref_int(rv, k, &rn);
    }
    for (int t = 0; !found && t < 8; t++)
        if (t != c->prev_k[j] && dec_at(xv, t, &n, &off) && ref_int(rv, t, &rn)) {
            k = t;
            found = 1;
        }
    if (found) {
        uint64_t d = (uint64_t)n - (uint64_t)rn;
        uint64_t zz = (d << 1) ^ (uint64_t)((int64_t)d >> 63);
        int bits = zz < (1u << 7)      ? 1
                   : zz < (1u << 13)   ? 2
                   : zz < (1u << 18)   ? 3
                   : zz < (1ull << 32) ? 4
                                       : 5;
        /* a decimal pays off unless the delta needs the 64-bit form */
        if (bits < 5) {
            put(c->buf, &c->nbits, 2, 2);
            if (k == c->prev_k[j])
                put(c->buf, &c->nbits, 0, 1);
            else {
                put(c->buf, &c->nbits, 1, 1);
                put(c->buf, &c->nbits, (uint64_t)k, 3);
                c->prev_k[j] = (uint8_t)k;
            }
            if (j < 2) {
                c->n_valid[j] = 1;
                c->n_prev[j] = n;
            }
            static const int prefix[5] = {0, 0, 2, 6, 7}, plen[5] = {0, 1, 2, 3, 3};
            static const int width[5] = {0, 7, 13, 18, 32};
            put(c->buf, &c->nbits, (uint64_t)prefix[bits], plen[bits]);
            put(c->buf, &c->nbits, zz, width[bits]);
            if (off == 0)
                put(c->buf, &c->nbits, 0, 1);
            else {
                static const int code[5] = {3, 1, 0, 0, 2}; /* off -2,-1,_,+1,+2 */
                put(c->buf, &c->nbits, 1, 1);
                put(c->buf, &c->nbits, (uint64_t)code[off + 2], 2);
            }
            return;
        }
    }
    if (j < 2) c->n_valid[j] = 0;
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
    return dbits(count == 1 || count == 0 ? sum : sum / count);
}

int tsdb_chunk_append(tsdb_chunk *c, int64_t ts, const double *v) {
    if (c->sealed || c->n >= TSDB_CHUNK_MAX) return -ENOSPC;
    uint32_t need = (c->nbits >> 3) + 64;
    if (need > c->cap) {
        uint32_t ncap = c->cap * 2;
        while (ncap < need)
            ncap *= 2;
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
    return sizeof *c + (c->buf ? malloc_usable_size(c->buf) : 0);
}

void tsdb_chunk_iter_init(tsdb_chunk_iter *it, const tsdb_chunk *c) {
    memset(it, 0, sizeof *it);
    it->c = c;
    for (int j = 0; j < 4; j++)
        it->lead[j] = NO_WINDOW;
}

/* The decoder's bit reader: w holds the next `avail` bits MSB-first; refills load 8 bytes at
 * the bit position (chunks keep 8 bytes of padding past their bits, and a position past the
 * end stops the read). */
typedef struct bitrd {
    const uint8_t *buf;
    uint64_t w;
    int avail;
    uint32_t pos, limit;
} bitrd;

static inline int rd_refill(bitrd *r) {
    if (r->pos > r->limit) return -1;
    r->w = load_be(r->buf + (r->pos >> 3)) << (r->pos & 7);
    r->avail = 64 - (int)(r->pos & 7);
    return 0;
}

/* n in 1..56 */
static inline int rd_bits(bitrd *r, int n, uint64_t *v) {
    if (r->avail < n && rd_refill(r)) return -1;
    *v = r->w >> (64 - n);
    r->w <<= n;
    r->avail -= n;
    r->pos += (uint32_t)n;
    return 0;
}

static inline int rd_wide(bitrd *r, int n, uint64_t *v) {
    if (n <= 56) return rd_bits(r, n, v);
    uint64_t hi, lo;
    if (rd_bits(r, n - 32, &hi) || rd_bits(r, 32, &lo)) return -1;
    *v = (hi << 32) | lo;
    return 0;
}

static inline int rd_bit(bitrd *r) {
    if (r->avail < 1 && rd_refill(r)) return -1;
    int b = (int)(r->w >> 63);
    r->w <<= 1;
    r->avail--;
    r->pos++;
    return b;
}

/* Decodes one value against ref. The "same" and decimal forms (at most 44 bits) are read
 * from one refilled window without a check per bit; the XOR form bit group by bit group. */
static inline __attribute__((always_inline)) int get_value(tsdb_chunk_iter *it, bitrd *r, int j,
                                                           uint64_t ref, uint64_t *x) {
    if (r->avail < 44 && rd_refill(r)) return -EBADMSG;
    uint64_t w = r->w;
    if (!(w >> 63)) { /* the same as the reference */
        r->w <<= 1;
        r->avail--;
        r->pos++;
        *x = ref;
        return 0;
    }
    if ((w >> 62) == 2) { /* decimal: 10, new-scale bit [+ 3-bit scale], width prefix, delta,
                             ulp bit [+ 2-bit ulp code] */
        int used = 2;
        int newk = (int)((w << used) >> 63);
        used++;
        if (newk) {
            it->k[j] = (uint8_t)((w << used) >> 61);
            used += 3;
        }
        uint64_t t = w << used;
        int ones = !(t >> 63) ? 0 : !((t << 1) >> 63) ? 1 : !((t << 2) >> 63) ? 2 : 3;
        used += ones + (ones < 3);
        static const int widths[4] = {7, 13, 18, 32};
        uint64_t zz = (w << used) >> (64 - widths[ones]);
        used += widths[ones];
        int u = (int)((w << used) >> 63);
        used++;
        uint64_t ucode = 0;
        if (u) {
            ucode = (w << used) >> 62;
            used += 2;
        }
        r->w = w << used;
        r->avail -= used;
        r->pos += (uint32_t)used;
        static const int64_t uoff[4] = {1, -1, 2, -2};
        int64_t rn;
        if (j < 2 && it->n_valid[j] && !newk)
            rn = it->n_prev[j]; /* same scale as before */
        else if (!ref_int(bitsd(ref), it->k[j], &rn))
            return -EBADMSG;
        int64_t d = (int64_t)(zz >> 1) ^ -(int64_t)(zz & 1);
        int64_t n = (int64_t)((uint64_t)rn + (uint64_t)d);
        if (j < 2) {
            it->n_valid[j] = 1;
            it->n_prev[j] = n;
        }
        /* n / 1 is n exactly: no division for integers */
        double dv = it->k[j] ? (double)n / pow10_tab[it->k[j]] : (double)n;
        *x = dbits(dv) + (uint64_t)(u ? uoff[ucode] : 0);
        return 0;
    }
    r->w <<= 2; /* 11: the XOR form */
    r->avail -= 2;
    r->pos += 2;
    uint64_t m;
    int b;
    if (j < 2) it->n_valid[j] = 0;
    if ((b = rd_bit(r)) < 0) return -EBADMSG;
    if (b == 0) {
        if (it->lead[j] == NO_WINDOW) return -EBADMSG;
        int len = 64 - it->lead[j] - it->trail[j];
        if (rd_wide(r, len, &m)) return -EBADMSG;
        *x = ref ^ (m << it->trail[j]);
        return 0;
    }
    uint64_t lead, len1;
    if (rd_bits(r, 5, &lead) || rd_bits(r, 6, &len1)) return -EBADMSG;
    int len = (int)len1 + 1;
    if ((int)lead + len > 64) return -EBADMSG;
    int trail = 64 - (int)lead - len;
    if (rd_wide(r, len, &m)) return -EBADMSG;
    it->lead[j] = (uint8_t)lead;
    it->trail[j] = (uint8_t)trail;
    *x = ref ^ (m << trail);
    return 0;
}

/* One record at the reader's position into *ts and v[nfields]. 1, or -EBADMSG. */
static inline __attribute__((always_inline)) int
decode_rec(tsdb_chunk_iter *it, bitrd *r, int nfields, uint32_t nbits, int64_t *ts, double *v) {
    uint64_t b;
    if (it->i == 0) {
        if (rd_wide(r, 64, &b)) return -EBADMSG;
        it->ts = (int64_t)b;
        it->delta = 0;
    } else if (r->avail >= 1 && !(r->w >> 63)) { /* the regular interval: delta unchanged */
        r->w <<= 1;
        r->avail--;
        r->pos++;
        it->ts += it->delta;
    } else {
        int ones = 0, bit;
        while (ones < 4) {
            if ((bit = rd_bit(r)) < 0) return -EBADMSG;
            if (bit == 0) break;
            ones++;
        }
        static const int widths[5] = {0, 7, 12, 20, 64};
        uint64_t zz = 0;
        if (ones > 0 && rd_wide(r, widths[ones], &zz)) return -EBADMSG;
        int64_t dod = (int64_t)(zz >> 1) ^ -(int64_t)(zz & 1);
        it->delta += dod;
        it->ts += it->delta;
    }
    uint64_t mean = 0;
    for (int j = 0; j < nfields; j++) {
        if (j == 1 && r->avail >= 3 && (r->w >> 61) == 0) {
            /* the common bucket: count unchanged, min = max = mean (one sample) */
            r->w <<= 3;
            r->avail -= 3;
            r->pos += 3;
            v[1] = bitsd(it->bits[1]);
            mean = mean_ref(v[0], v[1]);
            it->bits[2] = it->bits[3] = mean;
            v[2] = v[3] = bitsd(mean);
            break;
        }
        if (j == 2) mean = mean_ref(v[0], v[1]);
        uint64_t ref = (j >= 2) ? mean : it->bits[j];
        uint64_t x;
        if (get_value(it, r, j, ref, &x)) return -EBADMSG;
        it->bits[j] = x;
        v[j] = bitsd(x);
    }
    if (r->pos > nbits) return -EBADMSG;
    *ts = it->ts;
    it->i++;
    return 1;
}

int tsdb_chunk_next_n(tsdb_chunk_iter *it, int64_t *ts, double *v, size_t max) {
    const tsdb_chunk *c = it->c;
    if (it->bad) return -EBADMSG;
    if (it->i >= c->n || !max) return 0;
    tsdb_chunk_iter l = *it; /* a local copy: its fields stay in registers */
    bitrd r = {c->buf, 0, 0, l.pos, c->nbits};
    if (rd_refill(&r)) return -EBADMSG;
    size_t k = 0, left = (size_t)(c->n - l.i);
    if (max > left) max = left;
    int rc = 0;
    if (c->nfields == 1) {
        for (; k < max; k++)
            if ((rc = decode_rec(&l, &r, 1, c->nbits, &ts[k], &v[k])) < 0) break;
    } else {
        for (; k < max; k++)
            if ((rc = decode_rec(&l, &r, 4, c->nbits, &ts[k], &v[4 * k])) < 0) break;
    }
    if (rc < 0) { /* the records before the damage are returned; the next call fails */
        it->bad = 1;
        return k ? (int)k : -EBADMSG;
    }
    l.pos = r.pos;
    *it = l;
    return (int)k;
}

int tsdb_chunk_next(tsdb_chunk_iter *it, int64_t *ts, double *v) {
    return tsdb_chunk_next_n(it, ts, v, 1);
}
