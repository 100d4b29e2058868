/* report.c: the agent's sink (collector.h): series defined by label set, samples gathered per
 * series and cut into SAMPLES batches after each collection round; the queue of batches not
 * yet acknowledged by the control plane, resent after a reconnect, with the spill seam to the
 * on-disk spool when it grows too large. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "collect/collector.h"
#include "log.h"
#include "vclock.h"
#include "wire.h"

/* Resends stop filling the socket-side buffer at this size and continue when it drains, so a
 * large backlog never sits in memory twice. */
#define PUMP_HIGH_WATER (1u << 20)
/* Series definitions per SERIES_DEF frame. */
#define DEFS_PER_FRAME 512
/* Estimated encoded bytes per sample, to cut a batch before it outgrows a frame. */
#define BYTES_PER_SAMPLE 16

/* One allocation per series (the agent holds thousands: 11 per cgroup): the key follows the
 * struct, and the one sample a series normally gets between two flushes (one per collection
 * round) is stored inline; arrays are allocated only while more are pending. */
typedef struct series {
    uint32_t id;
    uint32_t keylen;
    uint8_t forgotten, dirty;
    uint32_t n, cap;       /* pending samples; cap 0: the inline one */
    uint64_t forgotten_at; /* next_seq when forgotten: purged once that is acknowledged */
    int64_t ts1;           /* the inline sample */
    double v1;
    int64_t *ts; /* more than one pending: arrays of cap */
    double *v;
    char key[]; /* metric \0 k1 \0 v1 \0 ... \0\0: identity */
} series;

/* The label pointers of s's key (k,v,...,NULL) into lv of WIRE_MAX_LABELS * 2 + 1. */
static const char *const *series_labels(const series *s, const char **lv) {
    const char *p = s->key + strlen(s->key) + 1;
    size_t n = 0;
    while (*p && n < WIRE_MAX_LABELS * 2) {
        lv[n++] = p;
        p += strlen(p) + 1;
    }
    lv[n] = NULL;
    return lv;
}

/* An encoded batch, shared by the queues of every control plane it goes to. */
typedef struct frame_ref {
    uint32_t refs;
    size_t len;
    uint8_t data[];
} frame_ref;

typedef struct batch {
    uint64_t seq;
    frame_ref *f;
    struct batch *next;
} batch;

struct agent_sink {
    struct report *r;
};

#define TOMB ((series *)1)

/* One control plane's view of the batches: what it has not acknowledged yet, where its resend
 * stands, and its spill (its own spool directory). */
typedef struct link_q {
    batch *head, *tail, *send_next;
    size_t queued_bytes, nbatches;
    uint64_t acked, cursor, drops;
    int spill_pending; /* the spill may hold batches not yet sent on this connection */
    int spill_set;
    report_spill spill;
} link_q;

struct report {
    struct agent *ag;
    struct agent_sink sink;
    series **tab; /* open addressing by id; NULL empty, TOMB deleted */
    size_t cap, used, live, nforgotten;
    series **dirty;
    size_t ndirty, dirty_cap, pending;
    uint64_t next_seq, drops;
    int nlinks;
    link_q q[AGENT_MAX_CONTROLPLANES];
    wire_buf enc;
    log_ratelimit rl;
};

static uplink *link_up(const report *r, int link) {
    return link < r->ag->nups ? r->ag->ups[link] : NULL;
}

/* The largest payload every control plane accepts (own when none said less). */
static size_t max_frame_all(const report *r) {
    size_t m = (size_t)r->ag->cfg.max_frame_bytes;
    for (int i = 0; i < r->nlinks; i++)
        m = uplink_max_frame(link_up(r, i), m);
    return m;
}

/* The lowest acknowledgement over the control planes: what every one of them holds. */
static uint64_t acked_all(const report *r) {
    uint64_t a = r->q[0].acked;
    for (int i = 1; i < r->nlinks; i++)
        if (r->q[i].acked < a) a = r->q[i].acked;
    return a;
}

static uint32_t fnv1a(const char *p, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)p[i];
        h *= 16777619u;
    }
    return h;
}

static uint32_t mix(uint32_t x) {
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    return x;
}

/* Slot holding id, or the first usable slot for it (*found = 0). */
static size_t slot_of(const report *r, uint32_t id, int *found) {
    size_t mask = r->cap - 1, first_free = SIZE_MAX;
    for (size_t i = mix(id) & mask;; i = (i + 1) & mask) {
        series *s = r->tab[i];
        if (!s) {
            *found = 0;
            return first_free != SIZE_MAX ? first_free : i;
        }
        if (s == TOMB) {
            if (first_free == SIZE_MAX) first_free = i;
        } else if (s->id == id) {
            *found = 1;
            return i;
        }
    }
}

static series *find_id(const report *r, uint32_t id) {
    if (!r->cap) return NULL;
    int found;
    size_t i = slot_of(r, id, &found);
    return found ? r->tab[i] : NULL;
}

static int grow_table(report *r) {
    if (r->cap && (r->used + 1) * 4 < r->cap * 3) return 0;
    size_t cap = r->cap ? r->cap * 2 : 256;
    if (r->live * 2 < r->cap) cap = r->cap; /* mostly tombstones: rehash in place size */
    series **old = r->tab;
    size_t ocap = r->cap;
    r->tab = calloc(cap, sizeof *r->tab);
    if (!r->tab) {
        r->tab = old;
        return -ENOMEM;
    }
    r->cap = cap;
    r->used = 0;
    for (size_t i = 0; i < ocap; i++)
        if (old[i] && old[i] != TOMB) {
            int found;
            r->tab[slot_of(r, old[i]->id, &found)] = old[i];
            r->used++;
        }
    free(old);
    return 0;
}

static void series_free(series *s) {
    if (!s) return;
    free(s->ts);
    free(s->v);
    free(s);
}

int sink_series(agent_sink *sk, const char *metric, const char *const *labels, uint32_t *id) {
    report *r = sk->r;
    size_t nl = 0, keylen = strlen(metric) + 1;
    /* The control plane's limits (PROTOCOL.md): a series it would refuse is refused here, so
     * that one bad label set cannot make every connection fail. */
    if (keylen < 2 || keylen > 1025) return -EINVAL;
    for (; labels && labels[nl] && labels[nl + 1]; nl += 2) {
        size_t kl = strlen(labels[nl]), vl = strlen(labels[nl + 1]);
        if (kl == 0 || kl > 128 || vl > 1024) return -EINVAL;
        keylen += kl + vl + 2;
    }
    if (nl / 2 + 1 > WIRE_MAX_LABELS) return -E2BIG;
    keylen += 1;
    series *s = calloc(1, sizeof *s + keylen);
    if (!s) return -ENOMEM;
    char *key = s->key, *p = key;
    p = stpcpy(p, metric) + 1;
    for (size_t i = 0; i < nl; i += 2) {
        p = stpcpy(p, labels[i]) + 1;
        p = stpcpy(p, labels[i + 1]) + 1;
    }
    *p = 0;
    if (grow_table(r) < 0) {
        free(s);
        return -ENOMEM;
    }
    /* The id is the label set's hash, probing upwards on a collision: stable across agent
     * restarts, so batches spooled before a restart still name the right series. */
    uint32_t cand = fnv1a(key, keylen);
    for (;; cand++) {
        series *o = find_id(r, cand);
        if (!o) break;
        if (o->keylen == keylen && memcmp(o->key, key, keylen) == 0) {
            free(s);
            if (o->forgotten) {
                o->forgotten = 0;
                r->nforgotten--;
            }
            *id = o->id;
            return 0;
        }
    }
    s->id = cand;
    s->keylen = (uint32_t)keylen;
    int found;
    size_t slot = slot_of(r, cand, &found);
    if (!r->tab[slot]) r->used++;
    r->tab[slot] = s;
    r->live++;
    *id = cand;
    /* A series born while connected is defined at once (otherwise at the next connect), on
     * every connection that is up. */
    for (int l = 0; l < r->nlinks; l++) {
        uplink *u = link_up(r, l);
        if (!uplink_ready(u)) continue;
        wire_series_def_begin(&r->enc, uplink_next_seq(u), 1);
        const char *lv[WIRE_MAX_LABELS * 2 + 1];
        wire_series_def_add(&r->enc, s->id, s->key, series_labels(s, lv));
        long n = wire_frame_end(&r->enc, (size_t)r->ag->cfg.max_frame_bytes);
        if (n > 0) uplink_send(u, r->enc.data, (size_t)n);
        wire_buf_consume(&r->enc, r->enc.len);
    }
    return 0;
}

int sink_put(agent_sink *sk, uint32_t id, int64_t ts_ms, double value) {
    report *r = sk->r;
    series *s = find_id(r, id);
    if (!s || s->forgotten) return -ENOENT;
    if (s->n > 0 && ts_ms < (s->cap ? s->ts[s->n - 1] : s->ts1)) return -EINVAL;
    if (s->n > 0 && s->n >= s->cap) {
        uint32_t cap = s->cap ? s->cap * 2 : 4;
        int64_t *ts = realloc(s->ts, cap * sizeof *ts);
        if (!ts) return -ENOMEM;
        s->ts = ts;
        double *v = realloc(s->v, cap * sizeof *v);
        if (!v) return -ENOMEM;
        s->v = v;
        if (!s->cap) { /* the inline sample moves into the arrays */
            ts[0] = s->ts1;
            v[0] = s->v1;
        }
        s->cap = cap;
    }
    if (!s->dirty) {
        if (r->ndirty == r->dirty_cap) {
            size_t cap = r->dirty_cap ? r->dirty_cap * 2 : 64;
            series **d = realloc(r->dirty, cap * sizeof *d);
            if (!d) return -ENOMEM;
            r->dirty = d;
            r->dirty_cap = cap;
        }
        r->dirty[r->ndirty++] = s;
        s->dirty = 1;
    }
    if (s->cap) {
        s->ts[s->n] = ts_ms;
        s->v[s->n] = value;
    } else {
        s->ts1 = ts_ms;
        s->v1 = value;
    }
    s->n++;
    r->pending++;
    /* Cut the batch before it could outgrow a frame. */
    if ((r->pending + r->ndirty) * BYTES_PER_SAMPLE + 64 > max_frame_all(r) / 2) report_flush(r);
    return 0;
}

void sink_forget(agent_sink *sk, uint32_t id) {
    report *r = sk->r;
    series *s = find_id(r, id);
    if (!s || s->forgotten) return;
    s->forgotten = 1;
    s->forgotten_at = r->next_seq;
    r->nforgotten++;
}

/* Removes forgotten series whose last samples are acknowledged. */
static void purge_forgotten(report *r) {
    if (!r->nforgotten) return;
    uint64_t acked = acked_all(r); /* every control plane holds the series' last samples */
    for (size_t i = 0; i < r->cap; i++) {
        series *s = r->tab[i];
        if (!s || s == TOMB || !s->forgotten || s->dirty || s->forgotten_at > acked) continue;
        r->tab[i] = TOMB;
        r->live--;
        r->nforgotten--;
        series_free(s);
    }
}

static void frame_unref(frame_ref *f) {
    if (f && --f->refs == 0) free(f);
}

static void batch_free(batch *b) {
    if (!b) return;
    frame_unref(b->f);
    free(b);
}

/* Takes link l's oldest batch out of memory: to its spill when there is one, else dropped. */
static void evict_oldest(report *r, int l) {
    link_q *q = &r->q[l];
    batch *b = q->head;
    q->head = b->next;
    if (!q->head) q->tail = NULL;
    if (q->send_next == b) q->send_next = b->next;
    q->queued_bytes -= b->f->len;
    q->nbatches--;
    int rc = -ENOSPC;
    if (q->spill_set) rc = q->spill.put(q->spill.ctx, b->seq, b->f->data, b->f->len);
    if (rc == 0) {
        if (b->seq > q->cursor) q->spill_pending = 1;
    } else {
        q->drops++;
        log_limited(&r->rl, LOG_WARN, "report",
                    "queue over %lld bytes: dropped unsent batch %llu%s%s (%s)",
                    (long long)r->ag->cfg.queue_max_bytes, (unsigned long long)b->seq,
                    r->nlinks > 1 ? " of control plane " : "",
                    r->nlinks > 1 ? uplink_name(link_up(r, l)) : "",
                    q->spill_set ? strerror(-rc) : "no spool");
    }
    batch_free(b);
}

void report_flush(report *r) {
    if (!r || r->ndirty == 0) return;
    struct agent *ag = r->ag;
    uint64_t seq = r->next_seq++;
    wire_samples_begin(&r->enc, seq, (uint32_t)r->ndirty);
    for (size_t i = 0; i < r->ndirty; i++) {
        series *s = r->dirty[i];
        if (s->cap) {
            wire_samples_series(&r->enc, s->id, s->ts, s->v, s->n);
            /* back to the inline sample: several per flush is the exception */
            free(s->ts);
            free(s->v);
            s->ts = NULL;
            s->v = NULL;
            s->cap = 0;
        } else {
            wire_samples_series(&r->enc, s->id, &s->ts1, &s->v1, s->n);
        }
        s->n = 0;
        s->dirty = 0;
    }
    size_t nsamples = r->pending;
    r->ndirty = 0;
    r->pending = 0;
    long n = wire_frame_end(&r->enc, max_frame_all(r));
    if (n < 0) {
        r->drops++;
        log_limited(&r->rl, LOG_ERROR, "report", "batch %llu of %zu samples not encodable: %s",
                    (unsigned long long)seq, nsamples, strerror((int)-n));
        wire_buf_consume(&r->enc, r->enc.len);
        return;
    }
    /* One copy of the frame, one queue entry per control plane. */
    frame_ref *f = malloc(sizeof *f + (size_t)n);
    batch *bs[AGENT_MAX_CONTROLPLANES] = {0};
    int ok = f != NULL;
    for (int l = 0; ok && l < r->nlinks; l++)
        ok = (bs[l] = malloc(sizeof *bs[l])) != NULL;
    if (!ok) {
        free(f);
        for (int l = 0; l < r->nlinks; l++)
            free(bs[l]);
        r->drops++;
        wire_buf_consume(&r->enc, r->enc.len);
        return;
    }
    memcpy(f->data, r->enc.data, (size_t)n);
    f->len = (size_t)n;
    f->refs = (uint32_t)r->nlinks;
    wire_buf_consume(&r->enc, r->enc.len);
    for (int l = 0; l < r->nlinks; l++) {
        link_q *q = &r->q[l];
        batch *b = bs[l];
        b->seq = seq;
        b->f = f;
        b->next = NULL;
        if (q->tail)
            q->tail->next = b;
        else
            q->head = b;
        q->tail = b;
        if (!q->send_next && uplink_ready(link_up(r, l))) q->send_next = b;
        q->queued_bytes += f->len;
        q->nbatches++;
        while (q->queued_bytes > (size_t)ag->cfg.queue_max_bytes && q->head)
            evict_oldest(r, l);
    }
    for (int l = 0; l < r->nlinks; l++)
        report_pump(r, l);
}

void report_pump(report *r, int l) {
    if (!r || l < 0 || l >= r->nlinks) return;
    struct agent *ag = r->ag;
    link_q *q = &r->q[l];
    uplink *u = link_up(r, l);
    while (uplink_ready(u) && uplink_backlog(u) < PUMP_HIGH_WATER) {
        if (q->spill_set && q->spill_pending) {
            uint64_t seq;
            void *frame = NULL;
            size_t len;
            int got = q->spill.next(q->spill.ctx, q->cursor, &seq, &frame, &len);
            if (got == 1 && seq > q->cursor) {
                int rc = uplink_send(u, frame, len);
                free(frame);
                if (rc < 0) return;
                q->cursor = seq;
                continue;
            }
            free(frame);
            if (got < 0)
                log_limited(&r->rl, LOG_WARN, "report", "spool read failed: %s", strerror(-got));
            q->spill_pending = 0; /* nothing more there: go on with memory */
            continue;
        }
        batch *b = q->send_next;
        while (b && b->seq <= q->cursor)
            b = b->next;
        if (!b) {
            q->send_next = NULL;
            return;
        }
        q->cursor = b->seq;
        q->send_next = b->next;
        if (b->f->len - 4 > uplink_max_frame(u, (size_t)ag->cfg.max_frame_bytes)) {
            /* Cut for a larger limit than this control plane accepts: it would close the
             * connection on every resend. Counted as dropped, never sent. */
            q->drops++;
            log_limited(&r->rl, LOG_ERROR, "report",
                        "batch %llu (%zu bytes) exceeds the control plane's max_frame_bytes "
                        "(%zu): dropped",
                        (unsigned long long)b->seq, b->f->len - 4,
                        uplink_max_frame(u, (size_t)ag->cfg.max_frame_bytes));
            continue;
        }
        if (uplink_send(u, b->f->data, b->f->len) < 0) {
            q->cursor = b->seq - 1; /* not sent after all */
            q->send_next = b;
            return;
        }
    }
}

int report_on_connect(report *r, int l, uint64_t last_seq) {
    struct agent *ag = r->ag;
    link_q *q = &r->q[l];
    uplink *u = link_up(r, l);
    if (last_seq >= r->next_seq) {
        log_warn("report",
                 "control plane %s holds batch %llu, newer than ours (%llu): the clock "
                 "went back? numbering continues above it",
                 uplink_name(u), (unsigned long long)last_seq, (unsigned long long)r->next_seq);
        r->next_seq = last_seq + 1;
    }
    report_on_ack(r, l, last_seq);
    /* Every series is defined again on a new connection, in frames of DEFS_PER_FRAME. */
    size_t i = 0;
    while (i < r->cap) {
        uint32_t n = 0;
        size_t j = i;
        for (; j < r->cap && n < DEFS_PER_FRAME; j++)
            if (r->tab[j] && r->tab[j] != TOMB) n++;
        if (n == 0) break;
        wire_series_def_begin(&r->enc, uplink_next_seq(u), n);
        for (; i < j; i++)
            if (r->tab[i] && r->tab[i] != TOMB) {
                const char *lv[WIRE_MAX_LABELS * 2 + 1];
                wire_series_def_add(&r->enc, r->tab[i]->id, r->tab[i]->key,
                                    series_labels(r->tab[i], lv));
            }
        long len = wire_frame_end(&r->enc, (size_t)ag->cfg.max_frame_bytes);
        if (len < 0) {
            wire_buf_consume(&r->enc, r->enc.len);
            return (int)len;
        }
        int rc = uplink_send(u, r->enc.data, (size_t)len);
        wire_buf_consume(&r->enc, r->enc.len);
        if (rc < 0) return rc;
    }
    q->cursor = q->acked;
    q->send_next = q->head;
    q->spill_pending = q->spill_set;
    report_pump(r, l);
    return 0;
}

void report_on_ack(report *r, int l, uint64_t ack) {
    if (!r || l < 0 || l >= r->nlinks) return;
    link_q *q = &r->q[l];
    if (ack <= q->acked) return;
    q->acked = ack;
    while (q->head && q->head->seq <= ack) {
        batch *b = q->head;
        q->head = b->next;
        if (!q->head) q->tail = NULL;
        if (q->send_next == b) q->send_next = b->next;
        q->queued_bytes -= b->f->len;
        q->nbatches--;
        batch_free(b);
    }
    if (q->spill_set && q->spill.ack) q->spill.ack(q->spill.ctx, ack);
    purge_forgotten(r);
}

uint64_t report_link_drops(const report *r, int l) {
    if (!r || l < 0 || l >= r->nlinks) return 0;
    const link_q *q = &r->q[l];
    uint64_t d = q->drops + r->drops;
    if (q->spill_set && q->spill.drops) d += q->spill.drops(q->spill.ctx);
    return d;
}

uint64_t report_link_queued_bytes(const report *r, int l) {
    return r && l >= 0 && l < r->nlinks ? r->q[l].queued_bytes : 0;
}

uint64_t report_drops(const report *r) {
    if (!r) return 0;
    uint64_t d = 0;
    for (int l = 0; l < r->nlinks; l++)
        d += report_link_drops(r, l) - r->drops;
    return d + r->drops;
}

uint64_t report_queued_bytes(const report *r) {
    uint64_t b = 0;
    for (int l = 0; r && l < r->nlinks; l++)
        b += r->q[l].queued_bytes;
    return b;
}

int report_links(const report *r) {
    return r ? r->nlinks : 0;
}

void report_set_spill(report *r, int l, const report_spill *spill) {
    if (l < 0 || l >= r->nlinks) return;
    r->q[l].spill = *spill;
    r->q[l].spill_set = 1; /* what a previous run spooled is resent on the next connect */
}

struct agent_sink *report_sink(report *r) {
    return &r->sink;
}

int report_init(struct agent *ag, char *err, size_t errlen) {
    report *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    r->ag = ag;
    r->sink.r = r;
    /* Batch numbers start at the wall clock in milliseconds: they grow across agent restarts
     * without any state on disk (an agent cuts far fewer than 1,000 batches a second), so the
     * control plane's duplicate check (seq <= highest stored) never swallows a fresh batch
     * after a restart. Kept below 2^53 so JSON tools read them exactly. */
    r->next_seq = (uint64_t)vclock_real_ms(); /* real time even under a virtual clock */
    r->rl = (log_ratelimit)LOG_RATELIMIT_INIT(10000, 3);
    /* one queue per control plane of the list (one when the list was not parsed: tests) */
    r->nlinks = ag->cfg.ncps > 0 ? ag->cfg.ncps : 1;
    wire_buf_init(&r->enc);
    ag->rep = r;
    return 0;
}

void report_fini(struct agent *ag) {
    report *r = ag->rep;
    if (!r) return;
    /* Batches still unacknowledged at shutdown go to the spool, oldest first, so that the next
     * run resends them instead of losing them. */
    for (int l = 0; l < r->nlinks; l++) {
        link_q *q = &r->q[l];
        if (q->spill_set)
            while (q->head)
                evict_oldest(r, l);
        if (q->spill_set && q->spill.close) q->spill.close(q->spill.ctx);
        while (q->head) {
            batch *b = q->head;
            q->head = b->next;
            batch_free(b);
        }
    }
    for (size_t i = 0; i < r->cap; i++)
        if (r->tab[i] && r->tab[i] != TOMB) series_free(r->tab[i]);
    free(r->tab);
    free(r->dirty);
    wire_buf_fini(&r->enc);
    free(r);
    ag->rep = NULL;
}
