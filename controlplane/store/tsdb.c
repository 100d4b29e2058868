/* tsdb.c: the control plane's time-series store: series index, per-series compressed rings at
 * raw, 1-minute and 10-minute resolution, source sequence numbers, and (with a data directory)
 * the WAL and snapshots of tsdb_wal.c. */
#include "store/tsdb.h"

#include "store/tsdb_chunk.h"
#include "store/tsdb_wal.h"

#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <ev.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_RET_RAW_S (2 * 86400)
#define DEFAULT_RET_1M_S (35 * 86400)   /* a month of minutes plus slack: weekly models */
#define DEFAULT_RET_10M_S (400 * 86400) /* more than a year: yearly seasonality */
#define DEFAULT_SNAPSHOT_S 300
#define DEFAULT_GROUP_COMMIT_MS 5
#define MAX_LABELS 64
#define MAX_LABEL_LEN 4096
/* Series the retention sweep looks at per tick (1 s): a few ms of the loop at most, and the
 * default max_series (500,000) is swept in half a minute. */
#define SWEEP_PER_TICK 16384

typedef struct tier {
    tsdb_chunk *ring; /* ring of chunks, oldest at head; the newest one is open */
    size_t head, count, cap;
    int64_t res_ms;
    int64_t retention_ms;
    int open; /* a bucket is being filled (downsampled tiers) */
    int64_t bstart;
    double sum, count_, min, max;
} tier;

typedef struct series {
    uint32_t id;
    size_t nlabels;
    tsdb_label *labels; /* sorted by name; strings in the same allocation */
    char *key;          /* canonical key */
    size_t keylen;
    uint64_t hash;
    int has_last;
    int64_t last_ts;
    int64_t created_ms; /* wall clock when created or restored (not persisted) */
    uint64_t samples;
    tier t[TSDB_NRES];
} series;

/* A source's batches: `pending` is the highest seq appended, `seq` the highest committed (by
 * tsdb_when_durable, which logs a COMMIT record). Only committed seqs are persisted and
 * reported, so a batch spread over several appends never counts as stored half-way. */
typedef struct source_ent {
    char *name;
    uint64_t seq;
    uint64_t pending;
    int dirty;
} source_ent;

struct tsdb {
    tsdb_options opt;
    char *dir;
    pthread_rwlock_t lock;
    series **series; /* index id-1 */
    uint32_t nseries, cap_series;
    uint32_t *index; /* open addressing: series id or 0 */
    size_t index_cap;
    source_ent *sources; /* open addressing by name hash */
    size_t nsources, sources_cap;
    char **dirty; /* names of sources with pending > seq */
    size_t ndirty, cap_dirty;
    int64_t ret_ms[TSDB_NRES];
    tsdb_wal *wal;
    _Atomic uint64_t samples_appended, samples_dropped, append_errors, series_refused;
    uint8_t *rec; /* scratch for encoding WAL records */
    size_t rec_cap;
    int64_t *fts; /* scratch: the samples of an append that are kept */
    double *fv;
    size_t f_cap;
    /* snapshots the WAL worker is still encoding; while any is, chunk buffers retention lets
     * go are parked in `deferred` (a capture may reference them) and freed once none is */
    int snap_inflight;
    void **deferred;
    size_t ndeferred, cap_deferred;
    /* removal of series with no point left inside retention (tsdb_expire): ids are never
     * reused (db->series[id - 1] is NULL once removed); the removed series' labels and key
     * wait in `grave` until no reader that may hold them (tsdb_read_begin) and no snapshot
     * capture that borrows them is left */
    uint32_t nlive;
    _Atomic uint64_t series_removed;
    uint32_t sweep_cursor;
    ev_timer sweep;
    struct grave_ent {
        series *s;
        uint64_t epoch;
    } * grave;
    size_t ngrave, cap_grave;
    _Atomic uint64_t epoch;
    _Atomic int64_t active[2];
    int reclaim_parity; /* -1: no flip waiting */
    uint64_t reclaim_below;
    tsdb_removed_fn removed_fn;
    void *removed_arg;
};

static const int64_t res_len[TSDB_NRES] = {0, 60000, 600000};

static int64_t wall_ms(void);
static int series_remove(tsdb *db, uint32_t id, int log);

int64_t tsdb_res_ms(int res) {
    return (res >= 0 && res < TSDB_NRES) ? res_len[res] : 0;
}

static uint64_t fnv1a(const void *p, size_t n) {
    const uint8_t *b = p;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

/* The string lives in a per-thread buffer until this thread's next call. */
const char *tsdb_status(const tsdb *db) {
    static _Thread_local char buf[256];
    if (!db) return "closed";
    if (!db->wal) return db->opt.dir ? "ok" : "ok (memory only)";
    tsdb__wal_status(db->wal, buf, sizeof buf);
    return buf;
}

/* ---- label canonicalisation ---- */

static int label_cmp(const void *a, const void *b) {
    const tsdb_label *x = a, *y = b;
    return strcmp(x->name, y->name);
}

/* Builds the canonical key of a label set (sorted copy in `sorted`). 0 or -EINVAL. */
static int canon(const tsdb_label *labels, size_t n, tsdb_label *sorted, char **key,
                 size_t *keylen) {
    if (n == 0 || n > MAX_LABELS) return -EINVAL;
    int has_name = 0;
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        if (!labels[i].name || !labels[i].value || !labels[i].name[0]) return -EINVAL;
        size_t ln = strlen(labels[i].name), lv = strlen(labels[i].value);
        if (ln > MAX_LABEL_LEN || lv > MAX_LABEL_LEN) return -EINVAL;
        if (strcmp(labels[i].name, "__name__") == 0) {
            if (!labels[i].value[0]) return -EINVAL;
            has_name = 1;
        }
        sorted[i] = labels[i];
        len += ln + lv + 2;
    }
    if (!has_name) return -EINVAL;
    qsort(sorted, n, sizeof *sorted, label_cmp);
    for (size_t i = 1; i < n; i++)
        if (strcmp(sorted[i - 1].name, sorted[i].name) == 0) return -EINVAL;
    char *k = malloc(len ? len : 1);
    if (!k) return -ENOMEM;
    char *p = k;
    for (size_t i = 0; i < n; i++) {
        size_t ln = strlen(sorted[i].name) + 1, lv = strlen(sorted[i].value) + 1;
        memcpy(p, sorted[i].name, ln);
        p += ln;
        memcpy(p, sorted[i].value, lv);
        p += lv;
    }
    *key = k;
    *keylen = len;
    return 0;
}

static uint32_t index_find(const tsdb *db, const char *key, size_t keylen, uint64_t h) {
    if (!db->index_cap) return 0;
    size_t mask = db->index_cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        uint32_t id = db->index[i];
        if (!id) return 0;
        const series *s = db->series[id - 1];
        if (s->hash == h && s->keylen == keylen && memcmp(s->key, key, keylen) == 0) return id;
    }
}

static void index_put(tsdb *db, uint32_t id, uint64_t h) {
    size_t mask = db->index_cap - 1;
    size_t i = h & mask;
    while (db->index[i])
        i = (i + 1) & mask;
    db->index[i] = id;
}

static int index_grow(tsdb *db) {
    if ((db->nlive + 1) * 2 <= db->index_cap) return 0; /* removed ids take no slot */
    size_t ncap = db->index_cap ? db->index_cap * 2 : 1024;
    uint32_t *ni = calloc(ncap, sizeof *ni);
    if (!ni) return -ENOMEM;
    free(db->index);
    db->index = ni;
    db->index_cap = ncap;
    for (uint32_t i = 0; i < db->nseries; i++)
        if (db->series[i]) index_put(db, db->series[i]->id, db->series[i]->hash);
    return 0;
}

/* Removes id from the index (linear probing: the entries after it that would no longer be
 * found are shifted back). */
static void index_del(tsdb *db, uint32_t id, uint64_t h) {
    size_t mask = db->index_cap - 1;
    size_t i = h & mask;
    while (db->index[i] != id) {
        if (!db->index[i]) return;
        i = (i + 1) & mask;
    }
    for (size_t j = (i + 1) & mask; db->index[j]; j = (j + 1) & mask) {
        size_t home = db->series[db->index[j] - 1]->hash & mask;
        /* the entry at j may move to i when its home is not in (i, j] (cyclically) */
        int in = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (in) continue;
        db->index[i] = db->index[j];
        i = j;
    }
    db->index[i] = 0;
}

static void tier_fini(tier *t) {
    for (size_t i = 0; i < t->count; i++)
        tsdb_chunk_fini(&t->ring[(t->head + i) % t->cap]);
    free(t->ring);
}

static void series_free(series *s) {
    if (!s) return;
    for (int r = 0; r < TSDB_NRES; r++)
        tier_fini(&s->t[r]);
    free(s->key);
    free(s->labels);
    free(s);
}

/* Creates series `id` from a sorted label set and its key (the key is taken over). */
static int series_add(tsdb *db, uint32_t id, size_t n, char *key, size_t keylen, uint64_t h) {
    if (id != db->nseries + 1) {
        free(key);
        return -EBADMSG;
    }
    int rc = index_grow(db);
    if (rc) {
        free(key);
        return rc;
    }
    if (db->nseries == db->cap_series) {
        uint32_t ncap = db->cap_series ? db->cap_series * 2 : 256;
        series **ns = realloc(db->series, ncap * sizeof *ns);
        if (!ns) {
            free(key);
            return -ENOMEM;
        }
        db->series = ns;
        db->cap_series = ncap;
    }
    series *s = calloc(1, sizeof *s);
    tsdb_label *labels = malloc(n * sizeof *labels + keylen);
    if (!s || !labels) {
        free(s);
        free(labels);
        free(key);
        return -ENOMEM;
    }
    char *strs = (char *)(labels + n);
    memcpy(strs, key, keylen);
    for (size_t i = 0; i < n; i++) {
        labels[i].name = strs;
        strs += strlen(strs) + 1;
        labels[i].value = strs;
        strs += strlen(strs) + 1;
    }
    s->id = id;
    s->created_ms = wall_ms();
    s->nlabels = n;
    s->labels = labels;
    s->key = key;
    s->keylen = keylen;
    s->hash = h;
    for (int r = 0; r < TSDB_NRES; r++) {
        s->t[r].res_ms = res_len[r];
        s->t[r].retention_ms = db->ret_ms[r];
    }
    db->series[db->nseries++] = s;
    db->nlive++;
    index_put(db, id, h);
    return 0;
}

/* Takes id (the next one) as the slot of a removed series (snapshot restore). */
static int series_add_vacant(tsdb *db, uint32_t id) {
    if (id != db->nseries + 1) return -EBADMSG;
    if (db->nseries == db->cap_series) {
        uint32_t ncap = db->cap_series ? db->cap_series * 2 : 256;
        series **ns = realloc(db->series, ncap * sizeof *ns);
        if (!ns) return -ENOMEM;
        db->series = ns;
        db->cap_series = ncap;
    }
    db->series[db->nseries++] = NULL;
    return 0;
}

/* ---- little-endian record helpers ---- */

static void put_u16(uint8_t **p, uint16_t v) {
    (*p)[0] = (uint8_t)v;
    (*p)[1] = (uint8_t)(v >> 8);
    *p += 2;
}
static void put_u32(uint8_t **p, uint32_t v) {
    for (int i = 0; i < 4; i++)
        (*p)[i] = (uint8_t)(v >> (8 * i));
    *p += 4;
}
static void put_u64(uint8_t **p, uint64_t v) {
    for (int i = 0; i < 8; i++)
        (*p)[i] = (uint8_t)(v >> (8 * i));
    *p += 8;
}
static void put_f64(uint8_t **p, double d) {
    uint64_t u;
    memcpy(&u, &d, 8);
    put_u64(p, u);
}

typedef struct rd {
    const uint8_t *p, *end;
    int bad;
} rd;
static uint64_t get_n(rd *r, int n) {
    if (r->bad || r->end - r->p < n) {
        r->bad = 1;
        return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v |= (uint64_t)r->p[i] << (8 * i);
    r->p += n;
    return v;
}
static double get_f64(rd *r) {
    uint64_t u = get_n(r, 8);
    double d;
    memcpy(&d, &u, 8);
    return d;
}
static const char *get_str(rd *r, size_t *len) {
    size_t n = (size_t)get_n(r, 2);
    if (r->bad || (size_t)(r->end - r->p) < n) {
        r->bad = 1;
        return NULL;
    }
    const char *s = (const char *)r->p;
    r->p += n;
    *len = n;
    return s;
}

static int rec_reserve(tsdb *db, size_t n) {
    if (n <= db->rec_cap) return 0;
    size_t ncap = db->rec_cap ? db->rec_cap : 4096;
    while (ncap < n)
        ncap *= 2;
    uint8_t *nb = realloc(db->rec, ncap);
    if (!nb) return -ENOMEM;
    db->rec = nb;
    db->rec_cap = ncap;
    return 0;
}

/* ---- sources ---- */

static source_ent *source_slot(const tsdb *db, const char *name) {
    if (!db->sources_cap) return NULL;
    size_t mask = db->sources_cap - 1;
    for (size_t i = fnv1a(name, strlen(name)) & mask;; i = (i + 1) & mask) {
        source_ent *e = &db->sources[i];
        if (!e->name || strcmp(e->name, name) == 0) return e;
    }
}

/* Records seq for a source: committed (replay, snapshot) or pending (append). */
static int source_set(tsdb *db, const char *name, uint64_t seq, int pending) {
    if ((db->nsources + 1) * 2 > db->sources_cap) {
        size_t ncap = db->sources_cap ? db->sources_cap * 2 : 64;
        source_ent *ns = calloc(ncap, sizeof *ns);
        if (!ns) return -ENOMEM;
        source_ent *old = db->sources;
        size_t ocap = db->sources_cap;
        db->sources = ns;
        db->sources_cap = ncap;
        for (size_t i = 0; i < ocap; i++)
            if (old[i].name) *source_slot(db, old[i].name) = old[i];
        free(old);
    }
    source_ent *e = source_slot(db, name);
    if (!e->name) {
        e->name = strdup(name);
        if (!e->name) return -ENOMEM;
        db->nsources++;
    }
    if (!pending) {
        if (seq > e->seq) e->seq = seq;
        if (seq > e->pending) e->pending = seq;
        return 0;
    }
    if (seq > e->pending) e->pending = seq;
    if (e->pending > e->seq && !e->dirty) {
        if (db->ndirty == db->cap_dirty) {
            size_t ncap = db->cap_dirty ? db->cap_dirty * 2 : 16;
            char **nd = realloc(db->dirty, ncap * sizeof *nd);
            if (!nd) return -ENOMEM;
            db->dirty = nd;
            db->cap_dirty = ncap;
        }
        db->dirty[db->ndirty++] = e->name;
        e->dirty = 1;
    }
    return 0;
}

uint64_t tsdb_source_seq(const tsdb *db, const char *source) {
    if (!db || !source) return 0;
    tsdb *m = (tsdb *)db;
    pthread_rwlock_rdlock(&m->lock);
    const source_ent *e = source_slot(db, source);
    uint64_t seq = (e && e->name) ? e->seq : 0;
    pthread_rwlock_unlock(&m->lock);
    return seq;
}

/* ---- tiers ---- */

/* Frees a chunk retention dropped, or parks its buffer while a snapshot capture may still
 * reference it. 0, or -ENOMEM (the chunk is then kept). */
static int chunk_drop(tsdb *db, tsdb_chunk *c) {
    if (db->snap_inflight && c->buf) {
        if (db->ndeferred == db->cap_deferred) {
            size_t ncap = db->cap_deferred ? db->cap_deferred * 2 : 64;
            void **nd = realloc(db->deferred, ncap * sizeof *nd);
            if (!nd) return -ENOMEM;
            db->deferred = nd;
            db->cap_deferred = ncap;
        }
        db->deferred[db->ndeferred++] = c->buf;
        c->buf = NULL;
    }
    tsdb_chunk_fini(c);
    return 0;
}

static int tier_push(tsdb *db, tier *t, int64_t ts, const double *v, int nfields) {
    tsdb_chunk *last = t->count ? &t->ring[(t->head + t->count - 1) % t->cap] : NULL;
    if (last && !last->sealed && last->n < TSDB_CHUNK_MAX) return tsdb_chunk_append(last, ts, v);
    if (last) tsdb_chunk_seal(last);
    /* retention: drop sealed chunks entirely older than newest - retention */
    while (t->count > 0) {
        tsdb_chunk *old = &t->ring[t->head];
        if (old->last_ts >= ts - t->retention_ms || chunk_drop(db, old)) break;
        t->head = (t->head + 1) % t->cap;
        t->count--;
    }
    if (t->count == t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 4;
        tsdb_chunk *nr = malloc(ncap * sizeof *nr);
        if (!nr) return -ENOMEM;
        for (size_t i = 0; i < t->count; i++)
            nr[i] = t->ring[(t->head + i) % t->cap];
        free(t->ring);
        t->ring = nr;
        t->cap = ncap;
        t->head = 0;
    }
    tsdb_chunk *c = &t->ring[(t->head + t->count) % t->cap];
    int rc = tsdb_chunk_init(c, nfields);
    if (rc) return rc;
    t->count++;
    return tsdb_chunk_append(c, ts, v);
}

static int tier_bucket_add(tsdb *db, tier *t, int64_t ts, double v) {
    int64_t b = ts - (((ts % t->res_ms) + t->res_ms) % t->res_ms);
    if (t->open && b == t->bstart) {
        t->sum += v;
        t->count_ += 1;
        if (v < t->min) t->min = v;
        if (v > t->max) t->max = v;
        return 0;
    }
    if (t->open) {
        double rec[4] = {t->sum, t->count_, t->min, t->max};
        int rc = tier_push(db, t, t->bstart, rec, 4);
        if (rc) return rc;
    }
    t->open = 1;
    t->bstart = b;
    t->sum = v;
    t->count_ = 1;
    t->min = v;
    t->max = v;
    return 0;
}

/* Applies accepted samples (ascending, after last_ts) to the series' tiers. */
static int series_apply(tsdb *db, series *s, const int64_t *ts, const double *v, size_t n) {
    for (size_t i = 0; i < n; i++) {
        int rc = tier_push(db, &s->t[TSDB_RAW], ts[i], &v[i], 1);
        if (!rc) rc = tier_bucket_add(db, &s->t[TSDB_1M], ts[i], v[i]);
        if (!rc) rc = tier_bucket_add(db, &s->t[TSDB_10M], ts[i], v[i]);
        if (rc) return rc;
        s->has_last = 1;
        s->last_ts = ts[i];
        s->samples++;
    }
    return 0;
}

/* ---- WAL records ---- */

enum { REC_SERIES = 1, REC_SAMPLES = 2, REC_COMMIT = 3, REC_REMOVE = 4 };

/* SERIES record: u32 id, u16 label count, u32 key length, canonical key. */
static int log_series(tsdb *db, uint32_t id, size_t nlabels, const char *key, size_t keylen) {
    if (!db->wal) return 0;
    int rc = rec_reserve(db, 1 + 4 + 2 + 4 + keylen);
    if (rc) return rc;
    uint8_t *p = db->rec;
    *p++ = REC_SERIES;
    put_u32(&p, id);
    put_u16(&p, (uint16_t)nlabels);
    put_u32(&p, (uint32_t)keylen);
    memcpy(p, key, keylen);
    p += keylen;
    return tsdb__wal_append(db->wal, db->rec, (size_t)(p - db->rec));
}

/* The canonical key of a label set (caller frees *key), its hash, and the id of the series that
 * has it (0: none). 0 or the -errno of canon(). */
static int series_find(tsdb *db, const tsdb_label *labels, size_t n, char **key, size_t *keylen,
                       uint64_t *h, uint32_t *found) {
    tsdb_label sorted[MAX_LABELS];
    int rc = canon(labels, n, sorted, key, keylen);
    if (rc) return rc;
    *h = fnv1a(*key, *keylen);
    pthread_rwlock_rdlock(&db->lock);
    *found = index_find(db, *key, *keylen, *h);
    pthread_rwlock_unlock(&db->lock);
    return 0;
}

int tsdb_series(tsdb *db, const tsdb_label *labels, size_t n, uint32_t *id) {
    if (!db || !labels || !id) return -EINVAL;
    char *key;
    size_t keylen;
    uint64_t h;
    uint32_t found;
    int rc = series_find(db, labels, n, &key, &keylen, &h, &found);
    if (rc) return rc;
    if (found) {
        free(key);
        *id = found;
        return 0;
    }
    if (db->opt.max_series && db->nlive >= db->opt.max_series) {
        free(key);
        db->series_refused++;
        return -EDQUOT;
    }
    uint32_t nid = db->nseries + 1;
    rc = log_series(db, nid, n, key, keylen); /* logged first: nothing half-created */
    if (rc) {
        free(key);
        db->append_errors++;
        return rc;
    }
    pthread_rwlock_wrlock(&db->lock);
    rc = series_add(db, nid, n, key, keylen, h);
    pthread_rwlock_unlock(&db->lock);
    if (rc) return rc;
    *id = nid;
    return 0;
}

int tsdb_series_lookup(tsdb *db, const tsdb_label *labels, size_t n, uint32_t *id) {
    if (!db || !labels || !id) return -EINVAL;
    char *key;
    size_t keylen;
    uint64_t h;
    uint32_t found;
    int rc = series_find(db, labels, n, &key, &keylen, &h, &found);
    if (rc) return rc;
    free(key);
    if (!found) return -ENOENT;
    *id = found;
    return 0;
}

int tsdb_append(tsdb *db, const char *source, uint64_t seq, uint32_t id, const int64_t *ts_ms,
                const double *v, size_t n) {
    if (!db || (n && (!ts_ms || !v))) return -EINVAL;
    if (id == 0 || id > db->nseries || !db->series[id - 1]) return -ENOENT;
    size_t slen = source ? strlen(source) : 0;
    if (slen > MAX_LABEL_LEN) return -EINVAL;
    if (db->wal) {
        int err = tsdb__wal_error(db->wal);
        if (err) {
            db->append_errors++;
            return err;
        }
    }
    series *s = db->series[id - 1];
    /* keep the samples that are strictly after the series' newest one and the previous kept */
    if (n > db->f_cap) {
        size_t ncap = db->f_cap ? db->f_cap : 1024;
        while (ncap < n)
            ncap *= 2;
        int64_t *nt = realloc(db->fts, ncap * sizeof *nt);
        if (nt) db->fts = nt;
        double *nv = realloc(db->fv, ncap * sizeof *nv);
        if (nv) db->fv = nv;
        if (!nt || !nv) return -ENOMEM;
        db->f_cap = ncap;
    }
    int64_t last = s->has_last ? s->last_ts : INT64_MIN;
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        if (ts_ms[i] <= last) continue;
        last = ts_ms[i];
        db->fts[kept] = ts_ms[i];
        db->fv[kept++] = v[i];
    }
    if (kept < n) db->samples_dropped += n - kept;
    if (db->wal && (kept || (source && seq))) {
        size_t need = 1 + 4 + 2 + slen + 8 + 4 + kept * 16;
        int rc = rec_reserve(db, need);
        if (rc) return rc;
        uint8_t *p = db->rec;
        *p++ = REC_SAMPLES;
        put_u32(&p, id);
        put_u16(&p, (uint16_t)slen);
        if (slen) memcpy(p, source, slen);
        p += slen;
        put_u64(&p, seq);
        put_u32(&p, (uint32_t)kept);
        for (size_t i = 0; i < kept; i++) {
            put_u64(&p, (uint64_t)db->fts[i]);
            put_f64(&p, db->fv[i]);
        }
        rc = tsdb__wal_append(db->wal, db->rec, (size_t)(p - db->rec));
        if (rc) {
            db->append_errors++;
            return rc;
        }
    }
    pthread_rwlock_wrlock(&db->lock);
    int rc = series_apply(db, s, db->fts, db->fv, kept);
    if (!rc && source && seq) rc = source_set(db, source, seq, /* pending = */ 1);
    pthread_rwlock_unlock(&db->lock);
    if (!rc) db->samples_appended += kept;
    return rc;
}

/* ---- removal of series with nothing left inside retention ---- */

/* The daemon's wall clock (shared/log.h): the virtual clock's trace time when one is set, so
 * retention counts in the same time as the samples' timestamps. */
static int64_t wall_ms(void) {
    return tide_now_wall_ms();
}

void tsdb_set_removed_hook(tsdb *db, tsdb_removed_fn fn, void *arg) {
    db->removed_fn = fn;
    db->removed_arg = arg;
}

unsigned tsdb_read_begin(tsdb *db) {
    for (;;) {
        uint64_t e = atomic_load(&db->epoch);
        unsigned p = (unsigned)(e & 1);
        atomic_fetch_add(&db->active[p], 1);
        if (atomic_load(&db->epoch) == e) return p;
        atomic_fetch_sub(&db->active[p], 1); /* a flip came between: register in the new one */
    }
}

void tsdb_read_end(tsdb *db, unsigned token) {
    atomic_fetch_sub(&db->active[token & 1], 1);
}

/* Frees what removed series left once nobody can hold it: every reader that began before the
 * series were removed has ended (the epoch was flipped after the removal and the readers of
 * the old parity are gone) and no snapshot capture (which borrows keys) is in flight. Loop
 * thread; never waits. */
static void grave_reclaim(tsdb *db) {
    if (db->snap_inflight || !db->ngrave) return;
    if (db->reclaim_parity < 0) {
        uint64_t e = atomic_load(&db->epoch);
        db->reclaim_below = e + 1; /* removed at epoch <= e */
        db->reclaim_parity = (int)(e & 1);
        atomic_store(&db->epoch, e + 1);
    }
    if (atomic_load(&db->active[db->reclaim_parity]) != 0) return;
    size_t kept = 0;
    for (size_t i = 0; i < db->ngrave; i++) {
        if (db->grave[i].epoch < db->reclaim_below)
            series_free(db->grave[i].s);
        else
            db->grave[kept++] = db->grave[i];
    }
    db->ngrave = kept;
    db->reclaim_parity = -1;
}

/* Removes series id (live): logs a REMOVE record when log (not during replay), tells the hook,
 * takes it out of the index and the id table, frees its chunks and parks its labels for
 * grave_reclaim. 0, or -ENOMEM / the WAL's error (nothing changed then). */
static int series_remove(tsdb *db, uint32_t id, int log) {
    series *s = db->series[id - 1];
    if (db->snap_inflight) return -EBUSY; /* a capture may borrow its chunks: next tick */
    if (db->ngrave == db->cap_grave) {
        size_t ncap = db->cap_grave ? db->cap_grave * 2 : 64;
        struct grave_ent *ng = realloc(db->grave, ncap * sizeof *ng);
        if (!ng) return -ENOMEM;
        db->grave = ng;
        db->cap_grave = ncap;
    }
    if (log && db->wal) {
        int rc = rec_reserve(db, 1 + 4);
        if (rc) return rc;
        uint8_t *p = db->rec;
        *p++ = REC_REMOVE;
        put_u32(&p, id);
        rc = tsdb__wal_append(db->wal, db->rec, (size_t)(p - db->rec));
        if (rc) return rc;
    }
    if (db->removed_fn) db->removed_fn(db->removed_arg, id, s->labels, s->nlabels);
    pthread_rwlock_wrlock(&db->lock);
    index_del(db, id, s->hash);
    db->series[id - 1] = NULL;
    db->nlive--;
    pthread_rwlock_unlock(&db->lock);
    for (int r = 0; r < TSDB_NRES; r++) { /* no reader can reach the chunks any more */
        tier *t = &s->t[r];
        for (size_t k = 0; k < t->count; k++)
            tsdb_chunk_fini(&t->ring[(t->head + k) % t->cap]);
        free(t->ring);
        memset(t, 0, sizeof *t);
    }
    db->grave[db->ngrave++] = (struct grave_ent){s, atomic_load(&db->epoch)};
    db->series_removed++;
    return 0;
}

/* Whether tier t holds anything older than cutoff that expiry would drop. */
static int tier_has_expired(const tier *t, int64_t cutoff) {
    if (t->count && t->ring[t->head].last_ts < cutoff) return 1;
    return t->res_ms && t->open && t->bstart + t->res_ms <= cutoff && !t->count;
}

/* Drops the chunks of t whose newest point is older than cutoff (the open one too) and an
 * open bucket that ended before it. Under the write lock. */
static void tier_expire(tsdb *db, tier *t, int64_t cutoff) {
    while (t->count > 0) {
        tsdb_chunk *old = &t->ring[t->head];
        if (old->last_ts >= cutoff) break;
        if (chunk_drop(db, old)) break; /* cannot park the buffer now: next tick */
        t->head = (t->head + 1) % t->cap;
        t->count--;
    }
    if (t->res_ms && t->open && t->bstart + t->res_ms <= cutoff && !t->count) t->open = 0;
    if (!t->count && !t->open && t->ring) {
        free(t->ring);
        t->ring = NULL;
        t->cap = t->head = 0;
    }
}

int tsdb_expire(tsdb *db, int64_t now_ms, uint32_t max_series) {
    int removed = 0;
    for (uint32_t n = 0; n < max_series && n < db->nseries; n++) {
        if (db->sweep_cursor >= db->nseries) db->sweep_cursor = 0;
        uint32_t id = ++db->sweep_cursor;
        series *s = db->series[id - 1];
        if (!s) continue;
        int any = 0, empty = 1;
        for (int r = 0; r < TSDB_NRES; r++)
            any |= tier_has_expired(&s->t[r], now_ms - s->t[r].retention_ms);
        if (any) {
            pthread_rwlock_wrlock(&db->lock);
            for (int r = 0; r < TSDB_NRES; r++)
                tier_expire(db, &s->t[r], now_ms - s->t[r].retention_ms);
            pthread_rwlock_unlock(&db->lock);
        }
        for (int r = 0; r < TSDB_NRES && empty; r++)
            empty = !s->t[r].count && !s->t[r].open;
        /* nothing left: gone once its newest sample (or, never given one, its creation) is
         * older than the raw retention too */
        if (empty && (s->has_last ? s->last_ts : s->created_ms) < now_ms - db->ret_ms[TSDB_RAW] &&
            series_remove(db, id, /* log = */ 1) == 0)
            removed++;
    }
    grave_reclaim(db);
    return removed;
}

static void on_sweep(struct ev_loop *loop, ev_timer *w, int revents) {
    (void)loop;
    (void)revents;
    tsdb *db = (tsdb *)((char *)w - offsetof(tsdb, sweep));
    tsdb_expire(db, wall_ms(), SWEEP_PER_TICK);
}

/* Applies one WAL record during replay. */
static int replay_record(void *arg, const uint8_t *rec, size_t len) {
    tsdb *db = arg;
    rd r = {rec, rec + len, 0};
    int type = (int)get_n(&r, 1);
    if (type == REC_SERIES) {
        uint32_t id = (uint32_t)get_n(&r, 4);
        size_t n = (size_t)get_n(&r, 2);
        size_t keylen = (size_t)get_n(&r, 4);
        if (r.bad || n == 0 || n > MAX_LABELS || keylen == 0 || (size_t)(r.end - r.p) != keylen ||
            r.p[keylen - 1] != 0)
            return -EBADMSG;
        size_t strs = 0;
        for (size_t k = 0; k < keylen; k++)
            strs += r.p[k] == 0;
        if (strs != n * 2) return -EBADMSG;
        if (id <= db->nseries) return 0; /* already in the snapshot */
        char *key = malloc(keylen);
        if (!key) return -ENOMEM;
        memcpy(key, r.p, keylen);
        return series_add(db, id, n, key, keylen, fnv1a(key, keylen));
    }
    if (type == REC_SAMPLES) {
        uint32_t id = (uint32_t)get_n(&r, 4);
        size_t slen;
        const char *src = get_str(&r, &slen);
        uint64_t seq = get_n(&r, 8);
        size_t n = (size_t)get_n(&r, 4);
        if (r.bad || id == 0 || id > db->nseries || (size_t)(r.end - r.p) != n * 16)
            return -EBADMSG;
        series *s = db->series[id - 1];
        if (!s) return 0; /* removed later (the snapshot says so): nothing to restore */
        int64_t last = s->has_last ? s->last_ts : INT64_MIN;
        for (size_t i = 0; i < n; i++) {
            int64_t ts = (int64_t)get_n(&r, 8);
            double v = get_f64(&r);
            if (ts <= last) continue; /* already in the snapshot */
            int rc = series_apply(db, s, &ts, &v, 1);
            if (rc) return rc;
            last = ts;
        }
        (void)src; /* a source's seq counts once a COMMIT record names it */
        (void)seq;
        return 0;
    }
    if (type == REC_REMOVE) {
        uint32_t id = (uint32_t)get_n(&r, 4);
        if (r.bad || r.p != r.end || id == 0 || id > db->nseries) return -EBADMSG;
        return db->series[id - 1] ? series_remove(db, id, /* log = */ 0) : 0;
    }
    if (type == REC_COMMIT) {
        size_t n = (size_t)get_n(&r, 2);
        for (size_t i = 0; i < n; i++) {
            size_t sl;
            const char *nm = get_str(&r, &sl);
            uint64_t seq = get_n(&r, 8);
            if (r.bad || sl == 0 || sl > MAX_LABEL_LEN) return -EBADMSG;
            char name[MAX_LABEL_LEN + 1];
            memcpy(name, nm, sl);
            name[sl] = 0;
            int rc = source_set(db, name, seq, /* pending = */ 0);
            if (rc) return rc;
        }
        return r.p == r.end ? 0 : -EBADMSG;
    }
    return -EBADMSG;
}

/* ---- snapshots ---- */

static int buf_grow(uint8_t **buf, size_t *cap, size_t len, size_t more) {
    if (len + more <= *cap) return 0;
    size_t ncap = *cap ? *cap : 65536;
    while (ncap < len + more)
        ncap *= 2;
    uint8_t *nb = realloc(*buf, ncap);
    if (!nb) return -ENOMEM;
    *buf = nb;
    *cap = ncap;
    return 0;
}

#define SNAP_MAGIC "TIDESNP3"    /* TIDESNP2 plus removed series (key length 0) */
#define SNAP_MAGIC_V2 "TIDESNP2" /* still read */

/* A snapshot capture, taken on the loop and serialised by the WAL worker. Taking it copies
 * per series its head state (newest timestamp, open buckets) and per chunk its header, which
 * is short work proportional to the number of series and chunks, never to the samples: a
 * sealed chunk's buffer never changes again, so the capture borrows it (retention parks such
 * buffers in db->deferred until no capture is in flight); a chunk still open is copied. */
typedef struct snap_tier {
    int open;
    int64_t bstart;
    double sum, count_, min, max;
    size_t nchunks;
    tsdb_chunk *chunks; /* in snapshot.chunks; cap != 0 marks a buffer the capture owns */
} snap_tier;

typedef struct snap_series {
    const char *key; /* the series' own key: lives as long as the store */
    size_t keylen, nlabels;
    int has_last;
    int64_t last_ts;
    uint64_t samples;
    snap_tier t[TSDB_NRES];
} snap_series;

typedef struct snap_source {
    const char *name; /* the source table's own string: lives as long as the store */
    uint64_t seq;
} snap_source;

typedef struct snapshot {
    uint64_t wal_from;
    uint32_t nseries;
    snap_series *series;
    size_t nchunks; /* chunk headers filled in (owned buffers among them are freed) */
    tsdb_chunk *chunks;
    size_t nsources;
    snap_source *sources;
} snapshot;

static void snapshot_free(snapshot *sn) {
    if (!sn) return;
    for (size_t i = 0; i < sn->nchunks; i++)
        if (sn->chunks[i].cap) free(sn->chunks[i].buf);
    free(sn->chunks);
    free(sn->series);
    free(sn->sources);
    free(sn);
}

/* Loop thread (the only writer, so no lock is needed to read the store). 0 or -ENOMEM. */
static int snapshot_capture(tsdb *db, uint64_t wal_from, snapshot **out) {
    snapshot *sn = calloc(1, sizeof *sn);
    if (!sn) return -ENOMEM;
    sn->wal_from = wal_from;
    size_t total = 0;
    for (uint32_t i = 0; i < db->nseries; i++)
        for (int r = 0; r < TSDB_NRES && db->series[i]; r++)
            total += db->series[i]->t[r].count;
    sn->series = malloc((db->nseries ? db->nseries : 1) * sizeof *sn->series);
    sn->chunks = malloc((total ? total : 1) * sizeof *sn->chunks);
    sn->sources = malloc((db->nsources ? db->nsources : 1) * sizeof *sn->sources);
    if (!sn->series || !sn->chunks || !sn->sources) goto nomem;
    for (uint32_t i = 0; i < db->nseries; i++) {
        const series *s = db->series[i];
        snap_series *o = &sn->series[i];
        if (!s) { /* removed: the id stays taken */
            memset(o, 0, sizeof *o);
            continue;
        }
        o->key = s->key;
        o->keylen = s->keylen;
        o->nlabels = s->nlabels;
        o->has_last = s->has_last;
        o->last_ts = s->last_ts;
        o->samples = s->samples;
        for (int r = 0; r < TSDB_NRES; r++) {
            const tier *t = &s->t[r];
            snap_tier *ot = &o->t[r];
            ot->open = t->open;
            ot->bstart = t->bstart;
            ot->sum = t->sum;
            ot->count_ = t->count_;
            ot->min = t->min;
            ot->max = t->max;
            ot->nchunks = t->count;
            ot->chunks = sn->chunks + sn->nchunks;
            if (!t->count) continue;
            size_t a = t->cap - t->head < t->count ? t->cap - t->head : t->count;
            memcpy(ot->chunks, t->ring + t->head, a * sizeof *ot->chunks);
            memcpy(ot->chunks + a, t->ring, (t->count - a) * sizeof *ot->chunks);
            for (size_t k = 0; k < t->count; k++) {
                tsdb_chunk *c = &ot->chunks[k];
                if (c->sealed) {
                    c->cap = 0; /* borrowed */
                } else {        /* still growing (and reallocated when sealed): copied */
                    uint32_t nbytes = (c->nbits + 7) / 8;
                    uint8_t *b = malloc(nbytes ? nbytes : 1);
                    if (!b) goto nomem;
                    memcpy(b, c->buf, nbytes);
                    c->buf = b;
                    c->cap = nbytes ? nbytes : 1;
                }
                sn->nchunks++;
            }
        }
    }
    sn->nseries = db->nseries;
    for (size_t i = 0; i < db->sources_cap; i++) {
        const source_ent *e = &db->sources[i];
        if (!e->name) continue;
        sn->sources[sn->nsources++] = (snap_source){e->name, e->seq};
    }
    *out = sn;
    return 0;
nomem:
    snapshot_free(sn);
    return -ENOMEM;
}

/* WAL worker: serialises a capture into a malloc'd image. Reads nothing but the capture, the
 * immutable keys and source names, and the sealed chunk buffers it borrows. */
static int snapshot_encode(void *arg, void *snap, uint8_t **out, size_t *outlen) {
    (void)arg;
    const snapshot *sn = snap;
    uint8_t *buf = NULL, *p;
    size_t cap = 0, len = 0;
    int rc = 0;
#define NEED(k)                                                                                    \
    do {                                                                                           \
        if ((rc = buf_grow(&buf, &cap, len, (k))) != 0) goto fail;                                 \
        p = buf + len;                                                                             \
    } while (0)
#define DONE() (len = (size_t)(p - buf))
    NEED(32);
    memcpy(p, SNAP_MAGIC, 8);
    p += 8;
    put_u64(&p, sn->wal_from);
    put_u32(&p, sn->nseries);
    put_u32(&p, (uint32_t)sn->nsources);
    DONE();
    for (uint32_t i = 0; i < sn->nseries; i++) {
        const snap_series *s = &sn->series[i];
        NEED(64 + s->keylen);
        put_u32(&p, (uint32_t)s->keylen);
        if (!s->keylen) { /* a removed series: its id only */
            DONE();
            continue;
        }
        memcpy(p, s->key, s->keylen);
        p += s->keylen;
        put_u16(&p, (uint16_t)s->nlabels);
        *p++ = (uint8_t)s->has_last;
        put_u64(&p, (uint64_t)s->last_ts);
        put_u64(&p, s->samples);
        DONE();
        for (int r = 0; r < TSDB_NRES; r++) {
            const snap_tier *t = &s->t[r];
            NEED(64);
            *p++ = (uint8_t)t->open;
            put_u64(&p, (uint64_t)t->bstart);
            put_f64(&p, t->sum);
            put_f64(&p, t->count_);
            put_f64(&p, t->min);
            put_f64(&p, t->max);
            put_u32(&p, (uint32_t)t->nchunks);
            DONE();
            for (size_t k = 0; k < t->nchunks; k++) {
                const tsdb_chunk *c = &t->chunks[k];
                uint32_t nbytes = (c->nbits + 7) / 8;
                NEED(128 + nbytes);
                put_u32(&p, c->nbits);
                put_u16(&p, c->n);
                *p++ = c->nfields;
                *p++ = c->sealed;
                put_u64(&p, (uint64_t)c->first_ts);
                put_u64(&p, (uint64_t)c->last_ts);
                put_u64(&p, (uint64_t)c->prev_delta);
                for (int j = 0; j < 4; j++) {
                    put_u64(&p, c->prev_bits[j]);
                    *p++ = c->prev_lead[j];
                    *p++ = c->prev_trail[j];
                    *p++ = c->prev_k[j];
                }
                for (int j = 0; j < 2; j++) {
                    *p++ = c->n_valid[j];
                    put_u64(&p, (uint64_t)c->n_prev[j]);
                }
                memcpy(p, c->buf, nbytes);
                p += nbytes;
                DONE();
            }
        }
    }
    for (size_t i = 0; i < sn->nsources; i++) {
        const snap_source *e = &sn->sources[i];
        size_t sl = strlen(e->name);
        NEED(16 + sl);
        put_u16(&p, (uint16_t)sl);
        memcpy(p, e->name, sl);
        p += sl;
        put_u64(&p, e->seq);
        DONE();
    }
    *out = buf;
    *outlen = len;
    return 0;
fail:
    free(buf);
    return rc;
#undef NEED
#undef DONE
}

/* Loop thread: the worker is done with a capture; buffers parked for it may go now. */
static void snapshot_done(void *arg, void *snap, int status) {
    tsdb *db = arg;
    (void)status; /* counted and logged by the WAL */
    snapshot_free(snap);
    if (--db->snap_inflight > 0) return;
    for (size_t i = 0; i < db->ndeferred; i++)
        free(db->deferred[i]);
    db->ndeferred = 0;
}

/* Restores a snapshot into an empty store; *wal_from gets the first WAL segment to replay. */
static int snapshot_decode(void *arg, const uint8_t *data, size_t len, uint64_t *wal_from) {
    tsdb *db = arg;
    rd r = {data, data + len, 0};
    if (len < 8 || (memcmp(data, SNAP_MAGIC, 8) != 0 && memcmp(data, SNAP_MAGIC_V2, 8) != 0))
        return -EBADMSG;
    int v3 = memcmp(data, SNAP_MAGIC, 8) == 0;
    r.p += 8;
    *wal_from = get_n(&r, 8);
    uint32_t nseries = (uint32_t)get_n(&r, 4);
    uint32_t nsources = (uint32_t)get_n(&r, 4);
    if (r.bad) return -EBADMSG;
    for (uint32_t i = 0; i < nseries; i++) {
        size_t keylen = (size_t)get_n(&r, 4);
        if (!r.bad && keylen == 0 && v3) {
            int rc = series_add_vacant(db, i + 1);
            if (rc) return rc;
            continue;
        }
        if (r.bad || keylen == 0 || (size_t)(r.end - r.p) < keylen || r.p[keylen - 1] != 0)
            return -EBADMSG;
        char *key = malloc(keylen);
        if (!key) return -ENOMEM;
        memcpy(key, r.p, keylen);
        r.p += keylen;
        size_t nl = (size_t)get_n(&r, 2);
        size_t strs = 0;
        for (size_t k = 0; k < keylen; k++)
            strs += key[k] == 0;
        if (r.bad || nl == 0 || nl > MAX_LABELS || strs != nl * 2) {
            free(key);
            return -EBADMSG;
        }
        int rc = series_add(db, i + 1, nl, key, keylen, fnv1a(key, keylen));
        if (rc) return rc;
        series *s = db->series[i];
        s->has_last = (int)get_n(&r, 1);
        s->last_ts = (int64_t)get_n(&r, 8);
        s->samples = get_n(&r, 8);
        for (int t_ = 0; t_ < TSDB_NRES; t_++) {
            tier *t = &s->t[t_];
            t->open = (int)get_n(&r, 1);
            t->bstart = (int64_t)get_n(&r, 8);
            t->sum = get_f64(&r);
            t->count_ = get_f64(&r);
            t->min = get_f64(&r);
            t->max = get_f64(&r);
            size_t nc = (size_t)get_n(&r, 4);
            if (r.bad || nc > (size_t)(r.end - r.p)) return -EBADMSG;
            t->ring = calloc(nc ? nc : 1, sizeof *t->ring);
            if (!t->ring) return -ENOMEM;
            t->cap = nc ? nc : 1;
            for (size_t k = 0; k < nc; k++) {
                tsdb_chunk *c = &t->ring[k];
                c->nbits = (uint32_t)get_n(&r, 4);
                c->n = (uint16_t)get_n(&r, 2);
                c->nfields = (uint8_t)get_n(&r, 1);
                c->sealed = (uint8_t)get_n(&r, 1);
                c->first_ts = (int64_t)get_n(&r, 8);
                c->last_ts = (int64_t)get_n(&r, 8);
                c->prev_delta = (int64_t)get_n(&r, 8);
                for (int j = 0; j < 4; j++) {
                    c->prev_bits[j] = get_n(&r, 8);
                    c->prev_lead[j] = (uint8_t)get_n(&r, 1);
                    c->prev_trail[j] = (uint8_t)get_n(&r, 1);
                    c->prev_k[j] = (uint8_t)get_n(&r, 1);
                }
                for (int j = 0; j < 2; j++) {
                    c->n_valid[j] = (uint8_t)get_n(&r, 1);
                    c->n_prev[j] = (int64_t)get_n(&r, 8);
                }
                uint32_t nbytes = (c->nbits + 7) / 8;
                if (r.bad || (size_t)(r.end - r.p) < nbytes || c->n > TSDB_CHUNK_MAX ||
                    (c->nfields != 1 && c->nfields != 4))
                    return -EBADMSG;
                if (c->n == 0 || c->nbits > (uint32_t)c->n * 400 || c->prev_k[0] > 7 ||
                    c->prev_k[1] > 7 || c->prev_k[2] > 7 || c->prev_k[3] > 7)
                    return -EBADMSG;
                c->cap = nbytes + (c->sealed ? 8 : 64); /* reader padding / encoder room */
                c->buf = calloc(1, c->cap);
                if (!c->buf) return -ENOMEM;
                memcpy(c->buf, r.p, nbytes);
                r.p += nbytes;
                t->count++;
            }
        }
        if (r.bad) return -EBADMSG;
    }
    for (uint32_t i = 0; i < nsources; i++) {
        size_t sl;
        const char *nm = get_str(&r, &sl);
        uint64_t seq = get_n(&r, 8);
        if (r.bad || sl > MAX_LABEL_LEN) return -EBADMSG;
        char name[MAX_LABEL_LEN + 1];
        memcpy(name, nm, sl);
        name[sl] = 0;
        int rc = source_set(db, name, seq, /* pending = */ 0);
        if (rc) return rc;
    }
    return r.p == r.end ? 0 : -EBADMSG;
}

/* The periodic timer: skips a tick while the previous snapshot is still being written. */
static void take_snapshot(void *arg) {
    tsdb *db = arg;
    if (!db->snap_inflight) tsdb_snapshot(db);
}

int tsdb_snapshot(tsdb *db) {
    if (!db->wal) return -ENOTSUP;
    int rc = tsdb__wal_error(db->wal);
    if (rc) return rc;
    uint64_t from = tsdb__wal_rotate(db->wal);
    snapshot *sn;
    rc = snapshot_capture(db, from, &sn);
    if (rc) return rc;
    db->snap_inflight++;
    rc = tsdb__wal_snapshot(db->wal, sn, from); /* snapshot_done() releases sn */
    if (rc) {
        snapshot_free(sn);
        snapshot_done(db, NULL, rc);
    }
    return rc;
}

/* ---- open / close ---- */

int tsdb_open(tsdb **out, const tsdb_options *opt, char *err, size_t errlen) {
    *out = NULL;
    tsdb *db = calloc(1, sizeof *db);
    if (!db) {
        snprintf(err, errlen, "tsdb: out of memory");
        return -ENOMEM;
    }
    db->opt = *opt;
    int64_t ret_s[TSDB_NRES] = {opt->retention_raw_s ? opt->retention_raw_s : DEFAULT_RET_RAW_S,
                                opt->retention_1m_s ? opt->retention_1m_s : DEFAULT_RET_1M_S,
                                opt->retention_10m_s ? opt->retention_10m_s : DEFAULT_RET_10M_S};
    for (int r = 0; r < TSDB_NRES; r++) {
        if (ret_s[r] < 0) {
            snprintf(err, errlen, "tsdb: negative retention");
            free(db);
            return -EINVAL;
        }
        db->ret_ms[r] = ret_s[r] * 1000;
    }
    db->reclaim_parity = -1;
    if (!db->opt.snapshot_every_s) db->opt.snapshot_every_s = DEFAULT_SNAPSHOT_S;
    if (!db->opt.group_commit_ms) db->opt.group_commit_ms = DEFAULT_GROUP_COMMIT_MS;
    /* writers first: a stream of HTTP queries must not hold the loop's appends off */
    pthread_rwlockattr_t la;
    pthread_rwlockattr_init(&la);
    pthread_rwlockattr_setkind_np(&la, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&db->lock, &la);
    pthread_rwlockattr_destroy(&la);
    if (opt->dir) {
        db->dir = strdup(opt->dir);
        tsdb_wal_options wo = {
            .dir = opt->dir,
            .loop = opt->loop,
            .group_commit_ms = db->opt.group_commit_ms,
            .snapshot_every_s = db->opt.snapshot_every_s,
            .restore = snapshot_decode,
            .replay = replay_record,
            .snapshot = take_snapshot,
            .encode = snapshot_encode,
            .snapshot_done = snapshot_done,
            .arg = db,
        };
        int rc = db->dir ? tsdb__wal_open(&db->wal, &wo, err, errlen) : -ENOMEM;
        if (rc) {
            tsdb_close(db);
            return rc;
        }
    }
    if (opt->loop && opt->expire) { /* the retention sweep; does not keep the loop alive */
        ev_timer_init(&db->sweep, on_sweep, 1., 1.);
        ev_timer_start(opt->loop, &db->sweep);
        ev_unref(opt->loop);
    }
    *out = db;
    return 0;
}

void tsdb_close(tsdb *db) {
    if (!db) return;
    if (db->opt.loop && db->opt.expire && ev_is_active(&db->sweep)) {
        ev_ref(db->opt.loop);
        ev_timer_stop(db->opt.loop, &db->sweep);
    }
    if (db->wal) {
        if (!tsdb__wal_error(db->wal)) tsdb_snapshot(db); /* a quick restart next time */
        tsdb__wal_close(db->wal);                         /* ends every capture in flight */
    }
    for (size_t i = 0; i < db->ndeferred; i++)
        free(db->deferred[i]);
    free(db->deferred);
    for (uint32_t i = 0; i < db->nseries; i++)
        series_free(db->series[i]);
    free(db->series);
    for (size_t i = 0; i < db->ngrave; i++)
        series_free(db->grave[i].s);
    free(db->grave);
    free(db->index);
    for (size_t i = 0; i < db->sources_cap; i++)
        free(db->sources[i].name);
    free(db->sources);
    free(db->dirty);
    free(db->rec);
    free(db->fts);
    free(db->fv);
    free(db->dir);
    pthread_rwlock_destroy(&db->lock);
    free(db);
}

int tsdb_salvage_lost(const tsdb_salvage_report *rep) {
    return rep->snapshot_lost || rep->records_unapplied || rep->damaged_regions || rep->bytes_lost;
}

/* 0 when dir does not exist or is empty; -ENOTEMPTY / -ENOTDIR / -errno otherwise. */
static int dir_unused(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT ? 0 : -errno;
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) rc = -ENOTEMPTY;
    closedir(d);
    return rc;
}

int tsdb_salvage(const char *src, const char *dst, FILE *out, tsdb_salvage_report *rep, char *err,
                 size_t errlen) {
    memset(rep, 0, sizeof *rep);
    DIR *probe = opendir(src);
    if (!probe) {
        int e = -errno;
        snprintf(err, errlen, "%s: %s", src, strerror(errno));
        return e;
    }
    closedir(probe);
    if (dst) {
        int rc = dir_unused(dst);
        if (rc) {
            snprintf(err, errlen, "%s: %s (the repair writes a new directory)", dst,
                     rc == -ENOTEMPTY ? "exists and is not empty" : strerror(-rc));
            return rc;
        }
    }
    const int64_t forever_s = (int64_t)1000 * 366 * 86400; /* keep everything */
    tsdb_options o = {
        .retention_raw_s = forever_s, .retention_1m_s = forever_s, .retention_10m_s = forever_s};
    tsdb *db;
    int rc = tsdb_open(&db, &o, err, errlen);
    if (rc) return rc;
    tsdb_wal_options wo = {
        .dir = src, .restore = snapshot_decode, .replay = replay_record, .arg = db};
    tsdb_wal_report wr;
    rc = tsdb__wal_salvage(&wo, out, &wr, err, errlen);
    rep->snapshots_ok = wr.snapshots_ok;
    rep->snapshots_damaged = wr.snapshots_damaged;
    rep->segments = wr.segments;
    rep->records = wr.records;
    rep->records_unapplied = wr.records_unapplied;
    rep->damaged_regions = wr.damaged_regions;
    rep->bytes_lost = wr.bytes_lost;
    rep->torn_bytes = wr.torn_bytes;
    rep->snapshot_lost = wr.snapshot_lost;
    rep->series = db->nseries;
    for (uint32_t i = 0; i < db->nseries; i++)
        rep->samples += db->series[i] ? db->series[i]->samples : 0;
    if (!rc && dst) {
        db->dir = strdup(dst);
        tsdb_wal_options dw = {
            .dir = dst,
            .group_commit_ms = 0,
            .snapshot_every_s = DEFAULT_SNAPSHOT_S,
            .restore = snapshot_decode,
            .replay = replay_record,
            .snapshot = take_snapshot,
            .encode = snapshot_encode,
            .snapshot_done = snapshot_done,
            .arg = db,
        };
        rc = db->dir ? tsdb__wal_open(&db->wal, &dw, err, errlen) : -ENOMEM;
        if (!rc) {
            rc = tsdb_snapshot(db);
            tsdb_stats st;
            tsdb_get_stats(db, &st);
            if (!rc && st.snapshots != 1) rc = st.durable_ok ? -EIO : tsdb__wal_error(db->wal);
            if (rc) snprintf(err, errlen, "%s: cannot write the snapshot: %s", dst, strerror(-rc));
            tsdb__wal_close(db->wal); /* not tsdb_close's second snapshot */
            db->wal = NULL;
        }
    }
    tsdb_close(db);
    return rc;
}

/* Commits the pending seqs of every source appended to since the last call: a COMMIT record
 * (u16 count, then name + u64 seq each) goes to the WAL ahead of the durability barrier. */
static int commit_sources(tsdb *db) {
    if (!db->ndirty) return 0;
    if (db->wal) {
        size_t need = 1 + 2;
        for (size_t i = 0; i < db->ndirty; i++)
            need += 2 + strlen(db->dirty[i]) + 8;
        int rc = rec_reserve(db, need);
        if (rc) return rc;
        uint8_t *p = db->rec;
        *p++ = REC_COMMIT;
        put_u16(&p, (uint16_t)db->ndirty);
        for (size_t i = 0; i < db->ndirty; i++) {
            const source_ent *e = source_slot(db, db->dirty[i]);
            size_t sl = strlen(e->name);
            put_u16(&p, (uint16_t)sl);
            memcpy(p, e->name, sl);
            p += sl;
            put_u64(&p, e->pending);
        }
        rc = tsdb__wal_append(db->wal, db->rec, (size_t)(p - db->rec));
        if (rc) return rc;
    }
    pthread_rwlock_wrlock(&db->lock);
    for (size_t i = 0; i < db->ndirty; i++) {
        source_ent *e = source_slot(db, db->dirty[i]);
        e->seq = e->pending;
        e->dirty = 0;
    }
    db->ndirty = 0;
    pthread_rwlock_unlock(&db->lock);
    return 0;
}

void tsdb_when_durable(tsdb *db, tsdb_durable_fn fn, void *arg) {
    int rc = commit_sources(db);
    if (rc) {
        fn(arg, rc);
        return;
    }
    if (!db->wal) {
        fn(arg, 0);
        return;
    }
    tsdb__wal_when_durable(db->wal, fn, arg);
}

/* ---- read side ---- */

void tsdb_points_fini(tsdb_points *pts) {
    if (!pts) return;
    free(pts->p);
    pts->p = NULL;
    pts->n = pts->cap = 0;
}

static int points_push(tsdb_points *o, int64_t ts, double sum, double count, double mn, double mx) {
    if (o->n == o->cap) {
        size_t ncap = o->cap ? o->cap * 2 : 256;
        tsdb_point *np = realloc(o->p, ncap * sizeof *np);
        if (!np) return -ENOMEM;
        o->p = np;
        o->cap = ncap;
    }
    o->p[o->n++] = (tsdb_point){ts, sum, count, mn, mx};
    return 0;
}

/* Step evaluation fed point by point (see tsdb_eval_step). */
typedef struct evalst {
    int64_t t, step, lookback;
    size_t k, n, have;
    double *v;
    int has_last;
    int64_t last_ts, first_seen, last_seen;
    double last_v;
} evalst;

static inline void eval_emit_before(evalst *e, int64_t ts) {
    while (e->k < e->n && e->t < ts) {
        if (e->has_last && e->last_ts > e->t - e->lookback) {
            e->v[e->k] = e->last_v;
            e->have++;
        } else
            e->v[e->k] = NAN;
        e->k++;
        e->t += e->step;
    }
}

static inline void eval_feed(evalst *e, int64_t ts, double sum, double count) {
    eval_emit_before(e, ts);
    e->has_last = 1;
    e->last_ts = ts;
    e->last_v = (count == 1 || count == 0) ? sum : sum / count;
    if (ts < e->first_seen) e->first_seen = ts;
    e->last_seen = ts;
}

/* Where a tier read goes: appended to points or to (time, value) arrays, or evaluated at
 * steps. */
typedef struct sink {
    tsdb_points *out;
    evalst *ev;
    tsdb_tv *tv;
} sink;

static int tv_grow(tsdb_tv *o, size_t need) {
    if (need <= o->cap) return 0;
    size_t ncap = o->cap ? o->cap * 2 : 1024;
    if (ncap < need) ncap = need;
    int64_t *nt = realloc(o->ts, ncap * sizeof *nt);
    if (!nt) return -ENOMEM;
    o->ts = nt;
    double *nv = realloc(o->v, ncap * sizeof *nv);
    if (!nv) return -ENOMEM;
    o->v = nv;
    o->cap = ncap;
    return 0;
}

static inline int sink_put(const sink *k, int64_t ts, double sum, double count, double mn,
                           double mx) {
    if (k->tv) {
        tsdb_tv *o = k->tv;
        if (o->n && o->ts[o->n - 1] >= ts) return 0; /* strictly increasing */
        if (o->n == o->cap && tv_grow(o, o->n + 1)) return -ENOMEM;
        o->ts[o->n] = ts;
        o->v[o->n++] = (count == 1 || count == 0) ? sum : sum / count;
        return 0;
    }
    if (k->ev) {
        eval_feed(k->ev, ts, sum, count);
        return 0;
    }
    return points_push(k->out, ts, sum, count, mn, mx);
}

/* Where a downsampled bucket [bstart, bstart + res) is stamped: at its end, or at `cap` (the
 * series' newest sample: the bucket still being filled) when that is earlier, so a bucket never
 * shows a value before the samples it holds were taken (buckets once stamped at their start
 * put up to 10 minutes of values before a series' first sample). Never before bstart. */
static inline int64_t bucket_stamp(int64_t bstart, int64_t res_ms, int64_t cap) {
    int64_t e = bstart + res_ms - 1;
    if (e > cap) e = cap;
    return e < bstart ? bstart : e;
}

/* Reads one tier; caller holds the reader lock. Buckets are selected by their stamp, given by
 * bucket_stamp(.., cap). */
static int tier_read(const tier *t, int64_t start, int64_t end, int64_t cap, const sink *out) {
    enum { BATCH = 128 }; /* records decoded per call */
    int64_t tsb[BATCH];
    double vb[BATCH * 4];
    for (size_t k = 0; k < t->count; k++) {
        const tsdb_chunk *c = &t->ring[(t->head + k) % t->cap];
        if (c->n == 0 || c->last_ts + t->res_ms < start) continue;
        if (c->first_ts > end) break;
        tsdb_chunk_iter it;
        tsdb_chunk_iter_init(&it, c);
        int got, past = 0;
        while (!past && (got = tsdb_chunk_next_n(&it, tsb, vb, BATCH)) > 0) {
            for (int i = 0; i < got; i++) {
                int64_t ts = tsb[i];
                int rc;
                if (c->nfields != 1) ts = bucket_stamp(ts, t->res_ms, cap);
                if (ts < start) continue;
                if (ts > end) {
                    past = 1;
                    break;
                }
                if (c->nfields == 1)
                    rc = sink_put(out, ts, vb[i], 1, vb[i], vb[i]);
                else
                    rc = sink_put(out, ts, vb[4 * i], vb[4 * i + 1], vb[4 * i + 2], vb[4 * i + 3]);
                if (rc) return rc;
            }
        }
        if (!past && got < 0) return got;
    }
    int64_t open_ts = t->res_ms && t->open ? bucket_stamp(t->bstart, t->res_ms, cap) : 0;
    if (t->res_ms && t->open && open_ts >= start && open_ts <= end)
        return sink_put(out, open_ts, t->sum, t->count_, t->min, t->max);
    return 0;
}

/* At most how many points tier_read(t, start, end, ..) gives: one allocation for them. */
static size_t tier_count(const tier *t, int64_t start, int64_t end) {
    size_t n = 1; /* the open bucket */
    for (size_t k = 0; k < t->count; k++) {
        const tsdb_chunk *c = &t->ring[(t->head + k) % t->cap];
        if (c->n == 0 || c->last_ts + t->res_ms < start) continue;
        if (c->first_ts > end) break;
        n += c->n;
    }
    return n;
}

static int64_t tier_oldest(const tier *t) {
    if (t->count) return t->ring[t->head].first_ts;
    if (t->res_ms && t->open) return t->bstart;
    return INT64_MAX;
}

int tsdb_read(tsdb *db, uint32_t id, int res, int64_t start_ms, int64_t end_ms, tsdb_points *out) {
    if (res < 0 || res >= TSDB_NRES) return -EINVAL;
    pthread_rwlock_rdlock(&db->lock);
    int rc = -ENOENT;
    sink k = {.out = out};
    if (id >= 1 && id <= db->nseries && db->series[id - 1])
        rc = tier_read(&db->series[id - 1]->t[res], start_ms, end_ms,
                       db->series[id - 1]->has_last ? db->series[id - 1]->last_ts : INT64_MAX, &k);
    pthread_rwlock_unlock(&db->lock);
    return rc;
}

/* The range scan behind tsdb_read_step and tsdb_eval_step. */
static int read_step(tsdb *db, uint32_t id, int64_t step_ms, int64_t start_ms, int64_t end_ms,
                     const sink *out, int *res_used) {
    /* a coarser tier only once a step spans ten of its buckets: finer data gives exact values
     * where the finer tier still holds it (a bucket's value is stamped at its end, so reading
     * buckets as long as the step would show every step the previous bucket's mean) */
    int res = TSDB_RAW;
    while (res + 1 < TSDB_NRES && res_len[res + 1] * 10 <= step_ms)
        res++;
    if (res_used) *res_used = res;
    pthread_rwlock_rdlock(&db->lock);
    if (id < 1 || id > db->nseries || !db->series[id - 1]) {
        pthread_rwlock_unlock(&db->lock);
        return -ENOENT;
    }
    const series *s = db->series[id - 1];
    /* fill the oldest part from coarser tiers, newest from the chosen one */
    int64_t upto = end_ms;
    int64_t bound[TSDB_NRES];
    for (int r = res; r < TSDB_NRES; r++)
        bound[r] = tier_oldest(&s->t[r]);
    int rc = 0;
    /* walk from the coarsest tier needed to the finest: each covers [start, next finer's oldest) */
    int coarsest = res;
    while (coarsest + 1 < TSDB_NRES && bound[coarsest] > start_ms &&
           bound[coarsest + 1] < bound[coarsest])
        coarsest++;
    int64_t from = start_ms;
    if (out->tv) { /* size the arrays once */
        size_t need = 0;
        for (int r = coarsest; r >= res; r--)
            need += tier_count(&s->t[r], start_ms, (r > res) ? bound[r - 1] - 1 : upto);
        if (tv_grow(out->tv, need)) rc = -ENOMEM;
    }
    for (int r = coarsest; r >= res && !rc; r--) {
        int64_t to = (r > res) ? bound[r - 1] - 1 : upto;
        /* buckets are selected by their stamp (their end): a coarse bucket that reaches into
         * the finer tier's span is left to the finer tier, which holds its samples */
        if (to >= from)
            rc = tier_read(&s->t[r], from, to, s->has_last ? s->last_ts : INT64_MAX, out);
        if (to + 1 > from) from = to + 1;
    }
    pthread_rwlock_unlock(&db->lock);
    return rc;
}

int tsdb_read_step(tsdb *db, uint32_t id, int64_t step_ms, int64_t start_ms, int64_t end_ms,
                   tsdb_points *out, int *res_used) {
    sink k = {.out = out};
    return read_step(db, id, step_ms, start_ms, end_ms, &k, res_used);
}

int tsdb_read_step_tv(tsdb *db, uint32_t id, int64_t step_ms, int64_t start_ms, int64_t end_ms,
                      tsdb_tv *out, int *res_used) {
    out->n = 0;
    sink k = {.tv = out};
    return read_step(db, id, step_ms, start_ms, end_ms, &k, res_used);
}

int tsdb_eval_step(tsdb *db, uint32_t id, int64_t start_ms, int64_t step_ms, size_t nsteps,
                   int64_t lookback_ms, double *out, int64_t *first_ms, int64_t *last_ms) {
    if (step_ms <= 0 || nsteps == 0) return -EINVAL;
    evalst e = {.t = start_ms,
                .step = step_ms,
                .lookback = lookback_ms,
                .n = nsteps,
                .v = out,
                .first_seen = INT64_MAX,
                .last_seen = INT64_MIN};
    sink k = {.ev = &e};
    int64_t end = start_ms + (int64_t)(nsteps - 1) * step_ms;
    int rc = read_step(db, id, step_ms, start_ms - lookback_ms, end, &k, NULL);
    if (rc && rc != -EBADMSG) return rc; /* a damaged chunk: what came before it is used */
    eval_emit_before(&e, INT64_MAX);
    if (first_ms) *first_ms = e.first_seen;
    if (last_ms) *last_ms = e.last_seen;
    return (int)(e.have > INT32_MAX ? INT32_MAX : e.have);
}

uint32_t tsdb_series_count(tsdb *db) {
    pthread_rwlock_rdlock(&db->lock);
    uint32_t n = db->nseries;
    pthread_rwlock_unlock(&db->lock);
    return n;
}

int tsdb_series_labels(tsdb *db, uint32_t id, const tsdb_label **labels, size_t *n) {
    pthread_rwlock_rdlock(&db->lock);
    int rc = -ENOENT;
    if (id >= 1 && id <= db->nseries && db->series[id - 1]) {
        *labels = db->series[id - 1]->labels;
        *n = db->series[id - 1]->nlabels;
        rc = 0;
    }
    pthread_rwlock_unlock(&db->lock);
    return rc;
}

static void tier_stat(const tier *t, size_t *points, size_t *bytes) {
    size_t p = 0, b = (t->cap - t->count) * sizeof(tsdb_chunk); /* ring slots, used or not */
    for (size_t k = 0; k < t->count; k++) {
        const tsdb_chunk *c = &t->ring[(t->head + k) % t->cap];
        p += c->n;
        b += tsdb_chunk_bytes(c); /* header + allocation as malloc sized it */
    }
    if (t->res_ms && t->open) p++;
    *points = p;
    *bytes = b;
}

int tsdb_series_stat(tsdb *db, uint32_t id, tsdb_series_info *info) {
    memset(info, 0, sizeof *info);
    pthread_rwlock_rdlock(&db->lock);
    if (id < 1 || id > db->nseries || !db->series[id - 1]) {
        pthread_rwlock_unlock(&db->lock);
        return -ENOENT;
    }
    const series *s = db->series[id - 1];
    info->samples = s->samples;
    /* the oldest data: a coarser ring counts only where it reaches back beyond the finer
     * one by a whole bucket (counted from the bucket's start here) */
    int64_t oldest = INT64_MAX;
    for (int r = 0; r < TSDB_NRES; r++) {
        tier_stat(&s->t[r], &info->points[r], &info->bytes[r]);
        int64_t o = tier_oldest(&s->t[r]);
        if (o != INT64_MAX && (oldest == INT64_MAX || o + res_len[r] <= oldest)) oldest = o;
    }
    if (s->has_last) {
        info->first_ms = oldest;
        info->last_ms = s->last_ts;
    }
    pthread_rwlock_unlock(&db->lock);
    return 0;
}

void tsdb_get_stats(tsdb *db, tsdb_stats *st) {
    memset(st, 0, sizeof *st);
    pthread_rwlock_rdlock(&db->lock);
    st->series = db->nlive;
    for (uint32_t i = 0; i < db->nseries; i++)
        for (int r = 0; r < TSDB_NRES && db->series[i]; r++) {
            size_t p, b;
            tier_stat(&db->series[i]->t[r], &p, &b);
            st->points[r] += p;
            st->bytes[r] += b;
        }
    pthread_rwlock_unlock(&db->lock);
    st->samples_appended = db->samples_appended;
    st->samples_dropped = db->samples_dropped;
    st->append_errors = db->append_errors;
    st->series_refused = db->series_refused;
    st->series_removed = db->series_removed;
    st->durable_ok = 1;
    if (db->wal) tsdb__wal_stats(db->wal, st);
}
