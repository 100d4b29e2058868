/* cluster.c: the cluster module: membership, spec mirror and workload ownership in etcd (see
 * cluster.h). */
#include "cluster/cluster.h"

#include "cluster/etcd.h"
#include "cluster/ring.h"
#include "cp.h"
#include "log.h"
#include "work.h"

#include <errno.h>
#include <ev.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_MEMBERS 256
#define QUEUE_MAX_BYTES (64u << 20) /* events waiting for the loop (backpressure beyond) */
#define RANGE_PAGE 500              /* key-values per range request of a full resync */
#define TXN_QUEUE_MAX 65536         /* ownership txns waiting (one per workload at most) */

/* ---- clocks --------------------------------------------------------------------------- */

/* Runs through suspends and SIGSTOP: the lease expires in etcd meanwhile, so must our proof. */
static int64_t boot_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_BOOTTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- events from the watch thread to the loop ------------------------------------------ */

enum { EV_PUT, EV_DEL, EV_RESET_BEGIN, EV_RESET_END };

typedef struct cl_ev {
    struct cl_ev *next;
    int type;
    char *key; /* without the prefix */
    char *value;
    size_t vlen;
    int64_t mod_rev, create_rev, lease;
} cl_ev;

/* ---- the loop's mirror -------------------------------------------------------------- */

typedef struct cl_member {
    char name[CLUSTER_NAME_MAX];
    char http[128];
    int64_t lease;
    int64_t started_ms; /* wall ms the member says it started */
    int64_t ttl_left;   /* seconds, from the keep-alive thread's timetolive; -2 unknown */
    int stale;          /* during a resync */
} cl_member;

typedef struct cl_wl {
    struct cl_wl *next;
    char *name;
    char *yaml;
    size_t yaml_len;
    int64_t spec_rev;
    int has_spec, stale_spec;
    char owner[CLUSTER_NAME_MAX];
    int64_t owner_lease, owner_rev;
    int has_owner, stale_owner;
    int pending;   /* a txn is under way */
    int releasing; /* a release was decided: not acting */
} cl_wl;

/* state the keep-alive thread publishes (under mu) */
typedef struct ka_state {
    int64_t lease;        /* 0: none */
    int64_t ttl_s;        /* as granted */
    int64_t proven_until; /* boot ms */
    int64_t last_ok;      /* boot ms of the last confirmed keep-alive (sent at) */
    int member_ok;        /* the member key is on this lease */
    uint64_t losses, failures;
    char err[300];
} ka_state;

typedef struct cluster {
    struct controlplane *cp;
    char me[CLUSTER_NAME_MAX];
    char prefix[256]; /* with a trailing '/' */
    size_t plen;
    etcd_opts opts;
    int64_t ttl_s, margin_ms;

    pthread_mutex_t mu; /* the queue, ka, member leases and cond */
    pthread_cond_t cond;
    cl_ev *qhead, **qtail;
    size_t qbytes;
    ka_state ka;
    int64_t member_leases[MAX_MEMBERS]; /* loop -> keep-alive thread: whose TTL to read */
    int64_t member_ttl[MAX_MEMBERS];    /* keep-alive thread -> loop */
    int nmember_leases;
    atomic_int quit, watch_stop;
    pthread_t ka_thread, watch_thread;
    int ka_started, watch_started;
    ev_async wake;
    ev_timer tick;
    work_pool *txn_pool;
    etcd *txn_etcd;  /* used by the txn pool's one thread only */
    etcd *spec_etcd; /* cluster_spec_store/remove, under spec_mu */
    pthread_mutex_t spec_mu;

    /* loop side */
    cl_member members[MAX_MEMBERS];
    int nmembers;
    int in_reset;
    cl_wl **buckets;
    size_t nbuckets, nwl;
    const cluster_spec_sink *sink;
    char live_sig[4096];    /* the member set the last rebalance saw, for join/leave reports */
    int proven;             /* the lease was provable at the last check */
    int64_t lease_seen;     /* lease at the last check */
    int64_t unproven_since; /* wall ms since when it is not (the module's start at first) */
    int64_t started_boot;   /* boot ms the module started */
    /* reports and counters */
    int64_t rb_at;
    int rb_before, rb_after, rb_moved, rb_workloads;
    uint64_t acquired, released, stepdowns, watch_restarts, resyncs, txn_errors;
    uint64_t etcd_failovers;
    char watch_err[300];
} cluster;

/* ---- small helpers ------------------------------------------------------------------------ */

static uint64_t fnv(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static cl_wl *wl_get(cluster *c, const char *name, int create) {
    if (!c->buckets) {
        if (!create) return NULL;
        c->nbuckets = 1024;
        c->buckets = calloc(c->nbuckets, sizeof *c->buckets);
        if (!c->buckets) return NULL;
    }
    size_t b = fnv(name) & (c->nbuckets - 1);
    for (cl_wl *w = c->buckets[b]; w; w = w->next)
        if (strcmp(w->name, name) == 0) return w;
    if (!create) return NULL;
    if (c->nwl >= c->nbuckets) { /* grow: load factor 1 */
        size_t nb = c->nbuckets * 2;
        cl_wl **nbk = calloc(nb, sizeof *nbk);
        if (nbk) {
            for (size_t i = 0; i < c->nbuckets; i++)
                for (cl_wl *w = c->buckets[i], *nx; w; w = nx) {
                    nx = w->next;
                    size_t k = fnv(w->name) & (nb - 1);
                    w->next = nbk[k];
                    nbk[k] = w;
                }
            free(c->buckets);
            c->buckets = nbk;
            c->nbuckets = nb;
            b = fnv(name) & (nb - 1);
        }
    }
    cl_wl *w = calloc(1, sizeof *w);
    if (!w || !(w->name = strdup(name))) {
        free(w);
        return NULL;
    }
    w->next = c->buckets[b];
    c->buckets[b] = w;
    c->nwl++;
    return w;
}

/* Drops w when nothing refers to it any more (no spec, no owner, no txn). */
static void wl_maybe_drop(cluster *c, cl_wl *w) {
    if (w->has_spec || w->has_owner || w->pending) return;
    size_t b = fnv(w->name) & (c->nbuckets - 1);
    for (cl_wl **pp = &c->buckets[b]; *pp; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            free(w->name);
            free(w->yaml);
            free(w);
            c->nwl--;
            return;
        }
}

#define FOR_EACH_WL(c, w)                                                                          \
    for (size_t b_ = 0; b_ < (c)->nbuckets; b_++)                                                  \
        for (cl_wl *w = (c)->buckets[b_], *nx_ = w ? w->next : NULL; w;                            \
             w = nx_, nx_ = w ? w->next : NULL)

static void ka_snapshot(cluster *c, ka_state *out) {
    pthread_mutex_lock(&c->mu);
    *out = c->ka;
    pthread_mutex_unlock(&c->mu);
}

static int lease_proven(const ka_state *k, int64_t now) {
    return k->lease != 0 && now < k->proven_until;
}

static char *key_of(cluster *c, const char *kind, const char *name) {
    size_t n = c->plen + strlen(kind) + strlen(name) + 2;
    char *k = malloc(n);
    if (k) snprintf(k, n, "%s%s/%s", c->prefix, kind, name);
    return k;
}

static int valid_name(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n >= CLUSTER_NAME_MAX) return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              strchr("._:/-", *s)))
            return 0;
    return 1;
}

/* ---- the keep-alive thread ---------------------------------------------------------------- */

static log_ratelimit ka_rl = LOG_RATELIMIT_INIT(10000, 3);

static char *member_value(cluster *c) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", c->me);
    cJSON_AddStringToObject(o, "http", c->cp->cfg.http ? c->cp->cfg.http : "");
    cJSON_AddStringToObject(o, "listen", c->cp->cfg.listen ? c->cp->cfg.listen : "");
    cJSON_AddNumberToObject(o, "pid", (double)getpid());
    cJSON_AddNumberToObject(o, "started", (double)c->cp->started_wall_ms);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* Waits up to ms or until quit. */
static void ka_wait(cluster *c, int64_t ms) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&c->mu);
    if (!atomic_load(&c->quit)) pthread_cond_timedwait(&c->cond, &c->mu, &ts);
    pthread_mutex_unlock(&c->mu);
}

static void *ka_main(void *arg) {
    cluster *c = arg;
    etcd *e = NULL;
    char err[600];
    if (etcd_new(&c->opts, &e, err, sizeof err) < 0) {
        log_error("cluster", "keep-alive: %s", err);
        return NULL;
    }
    int64_t lease = 0, ttl = 0;
    int member_ok = 0;
    uint64_t failovers = 0;
    char *mval = member_value(c);
    char *mkey = key_of(c, "members", c->me);
    while (!atomic_load(&c->quit) && mval && mkey) {
        int64_t sent = boot_ms();
        int rc = 0, lost = 0;
        if (!lease) {
            rc = etcd_lease_grant(e, c->ttl_s, &lease, &ttl, err, sizeof err);
            if (rc == 0) {
                member_ok = 0;
                log_info("cluster", "lease %llx granted (TTL %lld s) by %s",
                         (unsigned long long)lease, (long long)ttl, etcd_endpoint(e));
            } else {
                lease = 0;
            }
        } else {
            int64_t t = 0;
            rc = etcd_lease_keepalive(e, lease, &t, err, sizeof err);
            if (rc == 0 && t <= 0) {
                lost = 1;
                log_warn("cluster",
                         "lease %llx is gone in etcd (expired while this control plane could "
                         "not renew it): its ownerships went with it; joining again",
                         (unsigned long long)lease);
            } else if (rc == 0) {
                ttl = t;
            }
        }
        if (rc == 0 && !lost && !member_ok) {
            char perr[600];
            if (etcd_put(e, mkey, mval, strlen(mval), lease, NULL, perr, sizeof perr) == 0)
                member_ok = 1;
            else
                log_limited(&ka_rl, LOG_WARN, "cluster", "member key %s: %s", mkey, perr);
        }
        pthread_mutex_lock(&c->mu);
        if (lost) {
            c->ka.losses++;
            c->ka.lease = 0;
            c->ka.proven_until = 0;
            c->ka.member_ok = 0;
            lease = 0;
        } else if (rc == 0) {
            c->ka.lease = lease;
            c->ka.ttl_s = ttl;
            c->ka.last_ok = sent;
            c->ka.proven_until = sent + ttl * 1000 - c->margin_ms;
            c->ka.member_ok = member_ok;
            c->ka.err[0] = 0;
        } else {
            c->ka.failures++;
            snprintf(c->ka.err, sizeof c->ka.err, "%.290s", err);
        }
        int nl = c->nmember_leases;
        int64_t leases[MAX_MEMBERS];
        memcpy(leases, c->member_leases, sizeof leases);
        pthread_mutex_unlock(&c->mu);
        if (rc < 0) log_limited(&ka_rl, LOG_WARN, "cluster", "lease keep-alive: %s", err);
        /* the others' lease ages for status (one timetolive each: a few members) */
        if (rc == 0 && !lost) {
            int64_t ttls[MAX_MEMBERS];
            for (int i = 0; i < nl; i++) {
                char terr[300];
                if (etcd_lease_ttl(e, leases[i], &ttls[i], terr, sizeof terr) < 0) ttls[i] = -2;
            }
            pthread_mutex_lock(&c->mu);
            if (nl == c->nmember_leases &&
                memcmp(leases, c->member_leases, nl * sizeof *leases) == 0)
                memcpy(c->member_ttl, ttls, nl * sizeof *ttls);
            pthread_mutex_unlock(&c->mu);
        }
        if (etcd_failovers(e) != failovers) { /* the watch follows to a member that answers */
            failovers = etcd_failovers(e);
            atomic_store(&c->watch_stop, 1);
        }
        ev_async_send(c->cp->loop, &c->wake);
        if (lost) continue; /* a new lease at once */
        /* a third of the TTL: two keep-alives may fail before the proof lapses */
        int64_t next = rc == 0 ? ttl * 1000 / 3 : 500;
        int64_t spent = boot_ms() - sent;
        if (next > spent) ka_wait(c, next - spent);
    }
    if (lease) { /* a clean leave: the others take over at once instead of after the TTL */
        if (etcd_lease_revoke(e, lease, err, sizeof err) == 0)
            log_info("cluster", "left: lease %llx revoked", (unsigned long long)lease);
        else
            log_warn("cluster", "leaving: revoking lease %llx: %s", (unsigned long long)lease, err);
    }
    free(mval);
    free(mkey);
    etcd_free(e);
    return NULL;
}

/* ---- the watch thread ------------------------------------------------------------------- */

static log_ratelimit watch_rl = LOG_RATELIMIT_INIT(10000, 3);

static void queue_push(cluster *c, cl_ev *ev) {
    pthread_mutex_lock(&c->mu);
    while (c->qbytes > QUEUE_MAX_BYTES && !atomic_load(&c->quit))
        pthread_cond_wait(&c->cond, &c->mu);
    ev->next = NULL;
    *c->qtail = ev;
    c->qtail = &ev->next;
    c->qbytes += sizeof *ev + ev->vlen + (ev->key ? strlen(ev->key) : 0);
    pthread_mutex_unlock(&c->mu);
}

static void push_marker(cluster *c, int type) {
    cl_ev *ev = calloc(1, sizeof *ev);
    if (!ev) return;
    ev->type = type;
    queue_push(c, ev);
}

/* A key-value of the prefix as an event (the value moves into it). 0 or -ENOMEM. */
static int push_kv(cluster *c, int deleted, etcd_kv *kv) {
    if (kv->key_len < c->plen || memcmp(kv->key, c->prefix, c->plen) != 0) return 0;
    cl_ev *ev = calloc(1, sizeof *ev);
    if (!ev || !(ev->key = strdup(kv->key + c->plen))) {
        free(ev);
        return -ENOMEM;
    }
    ev->type = deleted ? EV_DEL : EV_PUT;
    ev->value = kv->value;
    ev->vlen = kv->value_len;
    kv->value = NULL;
    ev->mod_rev = kv->mod_revision;
    ev->create_rev = kv->create_revision;
    ev->lease = kv->lease;
    queue_push(c, ev);
    return 0;
}

typedef struct watch_ctx {
    cluster *c;
    int64_t rev;   /* everything up to it has been queued */
    int compacted; /* a full resync is needed */
} watch_ctx;

static int on_watch_msg(void *arg, const etcd_watch_msg *m) {
    watch_ctx *w = arg;
    if (m->canceled) {
        if (m->compact_revision > 0) w->compacted = 1;
        log_warn("cluster", "watch canceled by etcd: %s%s", m->cancel_reason,
                 m->compact_revision > 0 ? " (history compacted: reading everything again)" : "");
        return 1;
    }
    for (size_t i = 0; i < m->n; i++) {
        etcd_kv kv = m->ev[i].kv; /* value moved out, the rest freed with m */
        push_kv(w->c, m->ev[i].deleted, &kv);
        m->ev[i].kv.value = kv.value;
        if (kv.mod_revision > w->rev) w->rev = kv.mod_revision;
    }
    if (m->n == 0 && !m->created && m->revision > w->rev) w->rev = m->revision; /* progress */
    if (m->n) ev_async_send(w->c->cp->loop, &w->c->wake);
    return atomic_load(&w->c->quit) ? 1 : 0;
}

/* A paged range of the whole prefix at one revision, queued between reset markers. */
static int resync(cluster *c, etcd *e, int64_t *rev, char *err, size_t errlen) {
    size_t elen, flen = c->plen;
    char *end = etcd_prefix_end(c->prefix, c->plen, &elen);
    char *from = malloc(c->plen + 1);
    if (from) memcpy(from, c->prefix, c->plen + 1);
    int64_t at = 0;
    int rc = end && from ? 0 : -ENOMEM, begun = 0;
    while (rc == 0) {
        etcd_range r;
        rc = etcd_range_get(e, from, flen, end, elen, at, RANGE_PAGE, &r, err, errlen);
        if (rc < 0) {
            etcd_range_free(&r);
            break;
        }
        if (!begun) {
            push_marker(c, EV_RESET_BEGIN);
            begun = 1;
            at = r.revision;
        }
        for (size_t i = 0; i < r.n && rc == 0; i++)
            rc = push_kv(c, 0, &r.kvs[i]);
        if (rc == 0 && r.more && r.n > 0) { /* the next page: from the last key + "\0" on */
            const etcd_kv *last = &r.kvs[r.n - 1];
            char *nf = malloc(last->key_len + 1);
            if (!nf) {
                rc = -ENOMEM;
            } else {
                memcpy(nf, last->key, last->key_len);
                nf[last->key_len] = 0;
                free(from);
                from = nf;
                flen = last->key_len + 1;
            }
            etcd_range_free(&r);
            continue;
        }
        etcd_range_free(&r);
        break;
    }
    if (begun) push_marker(c, EV_RESET_END);
    if (rc == 0) *rev = at;
    if (rc == -ENOMEM) snprintf(err, errlen, "out of memory");
    free(end);
    free(from);
    return rc;
}

static void *watch_main(void *arg) {
    cluster *c = arg;
    etcd *e = NULL;
    char err[600];
    if (etcd_new(&c->opts, &e, err, sizeof err) < 0) {
        log_error("cluster", "watch: %s", err);
        return NULL;
    }
    size_t elen;
    char *end = etcd_prefix_end(c->prefix, c->plen, &elen);
    watch_ctx w = {.c = c};
    int need_resync = 1;
    while (end && !atomic_load(&c->quit)) {
        if (need_resync) {
            int64_t rev = 0;
            if (resync(c, e, &rev, err, sizeof err) < 0) {
                log_limited(&watch_rl, LOG_WARN, "cluster", "reading %s: %s", c->prefix, err);
                pthread_mutex_lock(&c->mu);
                snprintf(c->watch_err, sizeof c->watch_err, "%.290s", err);
                pthread_mutex_unlock(&c->mu);
                ka_wait(c, 500);
                continue;
            }
            ev_async_send(c->cp->loop, &c->wake);
            w.rev = rev;
            need_resync = 0;
            pthread_mutex_lock(&c->mu);
            c->resyncs++;
            c->watch_err[0] = 0;
            pthread_mutex_unlock(&c->mu);
        }
        atomic_store(&c->watch_stop, 0);
        w.compacted = 0;
        int rc = etcd_watch(e, c->prefix, end, elen, w.rev + 1, on_watch_msg, &w, &c->watch_stop,
                            /* idle_ms = */ 0, err, sizeof err);
        if (atomic_load(&c->quit)) break;
        pthread_mutex_lock(&c->mu);
        c->watch_restarts++;
        if (rc < 0) snprintf(c->watch_err, sizeof c->watch_err, "%.290s", err);
        pthread_mutex_unlock(&c->mu);
        if (w.compacted) need_resync = 1;
        if (rc < 0) {
            log_limited(&watch_rl, LOG_WARN, "cluster", "watch: %s (resuming at revision %lld)",
                        err, (long long)(w.rev + 1));
            ka_wait(c, 300);
        }
    }
    free(end);
    etcd_free(e);
    return NULL;
}

/* ---- ownership txns on the pool's one thread ------------------------------------------- */

typedef struct txn_one {
    char name[CLUSTER_NAME_MAX * 2];
    int64_t rev; /* release: the key's revision; result: the create revision */
    int rc, ok;
    etcd_kv holder; /* acquire lost: the key that exists */
} txn_one;

/* Acquisitions go in batches (one txn creating up to ETCD_TXN_MAX keys when none exists: a
 * take-over of a dead member's ~W/N workloads is a few txns, not one per workload); when a
 * batch finds a key that exists, each of its keys is tried alone. Releases go one by one. */
typedef struct txn_job {
    work w; /* first */
    cluster *c;
    int release;
    int64_t lease;
    size_t n;
    txn_one one[ETCD_TXN_MAX];
    char err[300];
} txn_job;

static void txn_run(work *wk) {
    txn_job *j = (txn_job *)wk;
    cluster *c = j->c;
    char *keys[ETCD_TXN_MAX];
    size_t nk = 0;
    for (; nk < j->n; nk++)
        if (!(keys[nk] = key_of(c, "owners", j->one[nk].name))) break;
    if (nk < j->n) {
        for (size_t i = 0; i < j->n; i++)
            j->one[i].rc = -ENOMEM;
        goto out;
    }
    if (!j->release && j->n > 1) {
        int created = 0;
        int64_t rev = 0;
        int rc = etcd_create_all(c->txn_etcd, (const char *const *)keys, j->n, c->me, strlen(c->me),
                                 j->lease, &created, &rev, j->err, sizeof j->err);
        if (rc < 0 || created) {
            for (size_t i = 0; i < j->n; i++) {
                j->one[i].rc = rc;
                j->one[i].ok = created;
                j->one[i].rev = rev;
            }
            goto out;
        }
    }
    for (size_t i = 0; i < j->n; i++) {
        txn_one *o = &j->one[i];
        if (j->release)
            o->rc = etcd_delete(c->txn_etcd, keys[i], o->rev, &o->ok, NULL, j->err, sizeof j->err);
        else
            o->rc = etcd_create(c->txn_etcd, keys[i], c->me, strlen(c->me), j->lease, &o->ok,
                                &o->rev, &o->holder, j->err, sizeof j->err);
    }
out:
    for (size_t i = 0; i < nk; i++)
        free(keys[i]);
}

static log_ratelimit txn_rl = LOG_RATELIMIT_INIT(10000, 5);

static void txn_done(work *wk, int status) {
    txn_job *j = (txn_job *)wk;
    cluster *c = j->c;
    for (size_t i = 0; i < j->n; i++) {
        txn_one *o = &j->one[i];
        cl_wl *w = wl_get(c, o->name, 0);
        if (w) w->pending = 0;
        if (status < 0 || o->rc < 0) {
            if (status == 0) {
                c->txn_errors++;
                log_limited(&txn_rl, LOG_WARN, "cluster", "%s ownership of %s: %s",
                            j->release ? "releasing" : "taking", o->name, j->err);
            }
            if (w && j->release) w->releasing = 0; /* tried again by the next rebalance */
        } else if (w && !j->release) {
            /* the watch may have delivered a newer owner meanwhile (this completion runs on the
             * loop after the worker's txn): what is newer than the answer stays */
            if (o->ok) c->acquired++;
            if (w->has_owner && (o->ok ? o->rev : o->holder.create_revision) < w->owner_rev) {
                /* stale answer: keep the newer owner */
            } else if (o->ok) { /* ours, as the watch will say too */
                w->has_owner = 1;
                snprintf(w->owner, sizeof w->owner, "%s", c->me);
                w->owner_lease = j->lease;
                w->owner_rev = o->rev;
            } else if (o->holder.key) {
                w->has_owner = 1;
                snprintf(w->owner, sizeof w->owner, "%s", o->holder.value);
                w->owner_lease = o->holder.lease;
                w->owner_rev = o->holder.create_revision;
            }
        } else if (w) {
            w->releasing = 0;
            c->released++;
            /* only the key this release deleted: when the watch has already delivered the next
             * owner's key (a newer revision), clearing it would leave the workload unowned in
             * this member's view for good (seen: 1 of 3,000 after a join) */
            if (w->owner_rev == o->rev) w->has_owner = 0;
        }
        etcd_kv_fini(&o->holder);
        if (w && status == 0) wl_maybe_drop(c, w);
    }
    free(j);
}

/* Queues a txn job for the workloads gathered in *jp (acquire or release) and starts over. */
static void txn_flush(cluster *c, txn_job **jp) {
    txn_job *j = *jp;
    *jp = NULL;
    if (!j || j->n == 0) {
        free(j);
        return;
    }
    if (work_submit(c->txn_pool, &j->w, txn_run, txn_done) < 0) { /* the next rebalance */
        for (size_t i = 0; i < j->n; i++) {
            cl_wl *w = wl_get(c, j->one[i].name, 0);
            if (w) w->releasing = 0;
        }
        free(j);
        return;
    }
    for (size_t i = 0; i < j->n; i++) {
        cl_wl *w = wl_get(c, j->one[i].name, 0);
        if (!w) continue;
        w->pending = 1;
        if (j->release) w->releasing = 1;
    }
}

/* Adds w to the batch *jp (a new one when none), flushing it when full. */
static void txn_add(cluster *c, txn_job **jp, cl_wl *w, int release, int64_t lease) {
    if (!*jp) {
        *jp = calloc(1, sizeof **jp);
        if (!*jp) return;
        (*jp)->c = c;
        (*jp)->release = release;
        (*jp)->lease = lease;
    }
    txn_one *o = &(*jp)->one[(*jp)->n++];
    snprintf(o->name, sizeof o->name, "%s", w->name);
    o->rev = w->owner_rev;
    if (release) w->releasing = 1; /* not acting from now on */
    if ((*jp)->n == (release ? 1 : ETCD_TXN_MAX)) txn_flush(c, jp);
}

/* ---- the mirror on the loop --------------------------------------------------------------- */

static cl_member *member_find(cluster *c, const char *name) {
    for (int i = 0; i < c->nmembers; i++)
        if (strcmp(c->members[i].name, name) == 0) return &c->members[i];
    return NULL;
}

static void apply_member(cluster *c, const cl_ev *ev, const char *name) {
    cl_member *m = member_find(c, name);
    if (ev->type == EV_DEL) {
        if (m) *m = c->members[--c->nmembers];
        return;
    }
    if (!m) {
        if (c->nmembers == MAX_MEMBERS || !valid_name(name)) return;
        m = &c->members[c->nmembers++];
        memset(m, 0, sizeof *m);
        snprintf(m->name, sizeof m->name, "%s", name);
        m->ttl_left = -2;
    }
    m->stale = 0;
    m->lease = ev->lease;
    cJSON *v = cJSON_ParseWithLength(ev->value ? ev->value : "", ev->vlen);
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(v, "http");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(v, "started");
    snprintf(m->http, sizeof m->http, "%s", cJSON_IsString(h) ? h->valuestring : "");
    m->started_ms = cJSON_IsNumber(st) ? (int64_t)st->valuedouble : 0;
    cJSON_Delete(v);
}

static void apply_owner(cluster *c, const cl_ev *ev, const char *name) {
    cl_wl *w = wl_get(c, name, ev->type == EV_PUT);
    if (!w) return;
    if (ev->type == EV_DEL) {
        /* a deletion older than what we hold (our own txn already replaced it) is ignored */
        if (w->has_owner && ev->mod_rev && w->owner_rev > ev->mod_rev) return;
        w->has_owner = 0;
        wl_maybe_drop(c, w);
        return;
    }
    if (w->has_owner && w->owner_rev > ev->create_rev) return; /* stale */
    w->has_owner = 1;
    w->stale_owner = 0;
    snprintf(w->owner, sizeof w->owner, "%s", ev->value ? ev->value : "");
    w->owner_lease = ev->lease;
    w->owner_rev = ev->create_rev;
}

static void apply_spec(cluster *c, cl_ev *ev, const char *name) {
    cl_wl *w = wl_get(c, name, ev->type == EV_PUT);
    if (!w) return;
    if (ev->type == EV_DEL) {
        int had = w->has_spec;
        w->has_spec = 0;
        free(w->yaml);
        w->yaml = NULL;
        if (had && c->sink) c->sink->del(c->sink->ctx, name);
        wl_maybe_drop(c, w);
        return;
    }
    w->stale_spec = 0;
    if (w->has_spec && w->spec_rev >= ev->mod_rev) return;
    free(w->yaml);
    w->yaml = ev->value; /* moved */
    w->yaml_len = ev->vlen;
    ev->value = NULL;
    w->spec_rev = ev->mod_rev;
    w->has_spec = 1;
    if (c->sink) c->sink->put(c->sink->ctx, name, w->yaml, w->yaml_len, w->spec_rev);
}

static void apply_event(cluster *c, cl_ev *ev) {
    if (ev->type == EV_RESET_BEGIN) {
        c->in_reset = 1;
        for (int i = 0; i < c->nmembers; i++)
            c->members[i].stale = 1;
        FOR_EACH_WL(c, w) {
            w->stale_spec = w->has_spec;
            w->stale_owner = w->has_owner;
        }
        return;
    }
    if (ev->type == EV_RESET_END) { /* what the full read no longer had is gone */
        c->in_reset = 0;
        for (int i = 0; i < c->nmembers;)
            if (c->members[i].stale)
                c->members[i] = c->members[--c->nmembers];
            else
                i++;
        FOR_EACH_WL(c, w) {
            cl_ev del = {.type = EV_DEL};
            if (w->stale_owner && !w->pending) {
                w->stale_owner = 0;
                w->has_owner = 0;
            }
            if (w->stale_spec) {
                w->stale_spec = 0;
                w->has_spec = 1;
                apply_spec(c, &del, w->name); /* may free w */
                continue;
            }
            wl_maybe_drop(c, w);
        }
        return;
    }
    const char *k = ev->key;
    if (strncmp(k, "members/", 8) == 0)
        apply_member(c, ev, k + 8);
    else if (strncmp(k, "owners/", 7) == 0 && k[7])
        apply_owner(c, ev, k + 7);
    else if (strncmp(k, "specs/", 6) == 0 && k[6])
        apply_spec(c, ev, k + 6);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The live members (sorted names) into names; the count. */
static int live_members(cluster *c, const char **names) {
    int n = 0;
    for (int i = 0; i < c->nmembers; i++)
        names[n++] = c->members[i].name;
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    return n;
}

/* Is this control plane the rendezvous owner of w among names? */
static int desired_self(cluster *c, const char *const *names, int n, const char *wl) {
    int i = ring_owner(names, n, wl);
    return i >= 0 && strcmp(names[i], c->me) == 0;
}

static void rebalance(cluster *c) {
    if (c->in_reset) return; /* a full read under way: wait for its end */
    ka_state ks;
    ka_snapshot(c, &ks);
    const char *names[MAX_MEMBERS];
    int n = live_members(c, names);
    /* a member set that changed: report how many workloads change owner */
    char sig[sizeof c->live_sig];
    size_t off = 0;
    sig[0] = 0;
    for (int i = 0; i < n && off < sizeof sig; i++)
        off += (size_t)snprintf(sig + off, sizeof sig - off, "%s\n", names[i]);
    if (strcmp(sig, c->live_sig) != 0) {
        const char *old[MAX_MEMBERS];
        int no = 0;
        char copy[sizeof c->live_sig];
        memcpy(copy, c->live_sig, sizeof copy);
        for (char *save = NULL, *t = strtok_r(copy, "\n", &save); t && no < MAX_MEMBERS;
             t = strtok_r(NULL, "\n", &save))
            old[no++] = t;
        int moved = 0, total = 0;
        FOR_EACH_WL(c, w) {
            if (!w->has_spec) continue;
            total++;
            int a = ring_owner(old, no, w->name), b = ring_owner(names, n, w->name);
            if (a < 0 || b < 0 || strcmp(old[a], names[b]) != 0) moved++;
        }
        if (c->live_sig[0] || n) {
            c->rb_at = tide_now_wall_ms();
            c->rb_before = no;
            c->rb_after = n;
            c->rb_moved = moved;
            c->rb_workloads = total;
            log_info("cluster", "members %d -> %d: %d of %d workloads change owner", no, n, moved,
                     total);
        }
        memcpy(c->live_sig, sig, sizeof sig);
        pthread_mutex_lock(&c->mu);
        c->nmember_leases = 0;
        for (int i = 0; i < c->nmembers; i++)
            c->member_leases[c->nmember_leases++] = c->members[i].lease;
        pthread_mutex_unlock(&c->mu);
    }
    int proven = lease_proven(&ks, boot_ms());
    txn_job *acq = NULL, *rel = NULL;
    FOR_EACH_WL(c, w) {
        if (w->pending || w->releasing) continue;
        int mine =
            w->has_owner && ks.lease && w->owner_lease == ks.lease && strcmp(w->owner, c->me) == 0;
        int want = w->has_spec && ks.member_ok && desired_self(c, names, n, w->name);
        if (mine && !want)
            txn_add(c, &rel, w, /* release = */ 1, ks.lease);
        else if (!w->has_owner && want && proven)
            txn_add(c, &acq, w, /* release = */ 0, ks.lease);
    }
    txn_flush(c, &acq);
    txn_flush(c, &rel);
}

/* Lease proof transitions: said once each way (log, counter; workloads add their events). */
static void check_proof(cluster *c) {
    ka_state ks;
    ka_snapshot(c, &ks);
    int64_t now = boot_ms();
    int proven = lease_proven(&ks, now);
    /* a lease replaced between two checks was lost (a pause or a cut past its TTL, then a new
     * grant by the keep-alive thread before this check ran): a step-down all the same */
    if (proven && c->proven && c->lease_seen && ks.lease != c->lease_seen) {
        c->stepdowns++;
        log_warn("cluster",
                 "%s: not acting for any workload: the lease cannot be proven (lease %llx lost, "
                 "replaced by %llx before this check ran)",
                 c->me, (unsigned long long)c->lease_seen, (unsigned long long)ks.lease);
        c->proven = 0;
        c->unproven_since = tide_now_wall_ms();
    }
    if (proven != c->proven) {
        if (!proven) {
            c->stepdowns++;
            log_warn("cluster",
                     "%s: not acting for any workload: the lease cannot be proven (last keep-alive "
                     "confirmed %lld ms ago, TTL %lld s, margin %lld ms)%s%s",
                     c->me, ks.last_ok ? (long long)(now - ks.last_ok) : -1LL, (long long)ks.ttl_s,
                     (long long)c->margin_ms, ks.err[0] ? ": " : "", ks.err);
        } else {
            log_info("cluster", "%s: lease %llx proven again: acting for the workloads it owns",
                     c->me, (unsigned long long)ks.lease);
        }
        c->proven = proven;
        if (!proven) c->unproven_since = tide_now_wall_ms();
    }
    c->lease_seen = ks.lease;
}

static void on_wake(struct ev_loop *loop, ev_async *a, int revents) {
    (void)loop, (void)revents;
    cluster *c = (cluster *)((char *)a - offsetof(cluster, wake));
    pthread_mutex_lock(&c->mu);
    cl_ev *q = c->qhead;
    c->qhead = NULL;
    c->qtail = &c->qhead;
    c->qbytes = 0;
    for (int i = 0; i < c->nmembers && i < c->nmember_leases; i++)
        if (c->member_leases[i] == c->members[i].lease) c->members[i].ttl_left = c->member_ttl[i];
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->mu);
    while (q) {
        cl_ev *nx = q->next;
        apply_event(c, q);
        free(q->key);
        free(q->value);
        free(q);
        q = nx;
    }
    check_proof(c);
    rebalance(c);
}

static void on_tick(struct ev_loop *loop, ev_timer *t, int revents) {
    (void)loop, (void)revents;
    cluster *c = (cluster *)((char *)t - offsetof(cluster, tick));
    check_proof(c);
    rebalance(c);
}

/* ---- the API ------------------------------------------------------------------------------- */

int cluster_enabled(const struct controlplane *cp) {
    return cp && cp->cluster != NULL;
}

void cluster_set_spec_sink(struct controlplane *cp, const cluster_spec_sink *s) {
    cluster *c = cp->cluster;
    if (!c) return;
    c->sink = s;
    if (s) FOR_EACH_WL(c, w) {
            if (w->has_spec) s->put(s->ctx, w->name, w->yaml, w->yaml_len, w->spec_rev);
        }
}

const char *cluster_member(const struct controlplane *cp) {
    return cp && cp->cluster ? cp->cluster->me : NULL;
}

int cluster_lease_alert(struct controlplane *cp, int64_t *since_ms, char *summary, size_t len) {
    cluster *c = cp ? cp->cluster : NULL;
    if (!c || c->proven) return 0;
    int64_t now = boot_ms();
    /* at start the first lease takes a moment: only a start that cannot join within the TTL
     * is a stop worth an alert; after a step-down, at once */
    if (c->stepdowns == 0 && now - c->started_boot < c->ttl_s * 1000) return 0;
    ka_state ks;
    ka_snapshot(c, &ks);
    *since_ms = c->unproven_since;
    if (ks.last_ok)
        snprintf(summary, len,
                 "%s: not acting for any workload: its etcd lease cannot be proven (last "
                 "keep-alive confirmed %.1f s ago, TTL %lld s, margin %.1f s): etcd unreachable "
                 "or without quorum?%s%.200s",
                 c->me, (double)(now - ks.last_ok) / 1000, (long long)c->ttl_s,
                 (double)c->margin_ms / 1000, ks.err[0] ? " " : "", ks.err);
    else
        snprintf(summary, len,
                 "%s: not acting for any workload: no lease from etcd (not a member)%s%.200s",
                 c->me, ks.err[0] ? ": " : "", ks.err);
    return 1;
}

int cluster_may_act(struct controlplane *cp, const char *workload, uint64_t *fence, char *why,
                    size_t whylen) {
    cluster *c = cp->cluster;
    *fence = 0;
    if (!c) return 1;
    ka_state ks;
    ka_snapshot(c, &ks);
    int64_t now = boot_ms();
    if (!ks.lease) {
        snprintf(why, whylen, "no lease in etcd yet (not a member)%s%.200s", ks.err[0] ? ": " : "",
                 ks.err);
        return 0;
    }
    if (!lease_proven(&ks, now)) {
        snprintf(why, whylen,
                 "lease not proven for %.1f s (keep-alive confirmed %.1f s ago, TTL %lld s): "
                 "etcd unreachable?%s%.200s",
                 (double)(now - ks.proven_until) / 1000, (double)(now - ks.last_ok) / 1000,
                 (long long)ks.ttl_s, ks.err[0] ? " " : "", ks.err);
        return 0;
    }
    cl_wl *w = wl_get(c, workload, 0);
    if (!w || !w->has_owner) {
        snprintf(why, whylen, "no owner yet");
        return 0;
    }
    if (strcmp(w->owner, c->me) != 0 || w->owner_lease != ks.lease) {
        snprintf(why, whylen, "owned by %s",
                 strcmp(w->owner, c->me) ? w->owner : "an earlier lease of this control plane");
        return 0;
    }
    if (w->releasing) {
        snprintf(why, whylen, "handing over to another member");
        return 0;
    }
    *fence = (uint64_t)w->owner_rev;
    return 1;
}

int cluster_owns(struct controlplane *cp, const char *workload) {
    cluster *c = cp->cluster;
    if (!c) return 1;
    cl_wl *w = wl_get(c, workload, 0);
    if (!w) return 0;
    if (w->pending) return 1; /* a txn under way (taking it, or giving it up) */
    ka_state ks;
    ka_snapshot(c, &ks);
    return w->has_owner && ks.lease && w->owner_lease == ks.lease && strcmp(w->owner, c->me) == 0;
}

int cluster_owner(struct controlplane *cp, const char *workload, char *name, size_t namelen,
                  char *http, size_t httplen, int *self) {
    cluster *c = cp->cluster;
    cl_wl *w = c ? wl_get(c, workload, 0) : NULL;
    if (!w || !w->has_owner) return -ENOENT;
    snprintf(name, namelen, "%s", w->owner);
    cl_member *m = member_find(c, w->owner);
    snprintf(http, httplen, "%s", m ? m->http : "");
    *self = strcmp(w->owner, c->me) == 0;
    return 0;
}

int cluster_spec_store(struct controlplane *cp, const char *name, const char *yaml, size_t len,
                       int *changed, int64_t *rev, char *err, size_t errlen) {
    cluster *c = cp->cluster;
    char *key = key_of(c, "specs", name);
    if (!key) return -ENOMEM;
    pthread_mutex_lock(&c->spec_mu);
    int rc = etcd_put_if_changed(c->spec_etcd, key, yaml, len, changed, rev, err, errlen);
    pthread_mutex_unlock(&c->spec_mu);
    free(key);
    return rc;
}

int cluster_spec_remove(struct controlplane *cp, const char *name, int *deleted, char *err,
                        size_t errlen) {
    cluster *c = cp->cluster;
    char *key = key_of(c, "specs", name);
    if (!key) return -ENOMEM;
    int64_t rev;
    pthread_mutex_lock(&c->spec_mu);
    etcd_range r;
    int rc = etcd_range_get(c->spec_etcd, key, strlen(key), NULL, 0, 0, 1, &r, err, errlen);
    *deleted = rc == 0 && r.n > 0;
    etcd_range_free(&r);
    int ok;
    if (rc == 0 && *deleted) rc = etcd_delete(c->spec_etcd, key, 0, &ok, &rev, err, errlen);
    pthread_mutex_unlock(&c->spec_mu);
    free(key);
    return rc;
}

/* counts of workloads per owner, and the ones owned here / moving / unowned */
typedef struct counts {
    int owns[MAX_MEMBERS];
    int total, unowned, here, other;
} counts;

static void count(cluster *c, counts *k) {
    memset(k, 0, sizeof *k);
    FOR_EACH_WL(c, w) {
        if (!w->has_spec) continue;
        k->total++;
        cl_member *m = w->has_owner ? member_find(c, w->owner) : NULL;
        if (!w->has_owner)
            k->unowned++;
        else if (m)
            k->owns[m - c->members]++;
        else
            k->other++; /* an owner whose member key is gone: its lease is expiring */
        if (w->has_owner && strcmp(w->owner, c->me) == 0) k->here++;
    }
}

cJSON *cluster_status_json(struct controlplane *cp) {
    cluster *c = cp->cluster;
    if (!c) return NULL;
    ka_state ks;
    ka_snapshot(c, &ks);
    int64_t now = boot_ms();
    counts k;
    count(c, &k);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "member", c->me);
    cJSON_AddStringToObject(o, "prefix", c->prefix);
    cJSON_AddStringToObject(o, "endpoints", c->opts.endpoints);
    char lid[24];
    snprintf(lid, sizeof lid, "%llx", (unsigned long long)ks.lease);
    cJSON_AddStringToObject(o, "lease", lid);
    cJSON_AddNumberToObject(o, "lease_ttl_s", (double)(ks.ttl_s ? ks.ttl_s : c->ttl_s));
    if (ks.last_ok)
        cJSON_AddNumberToObject(o, "lease_age_s", (double)(now - ks.last_ok) / 1000);
    else
        cJSON_AddNullToObject(o, "lease_age_s");
    cJSON_AddBoolToObject(o, "lease_proven", lease_proven(&ks, now));
    cJSON_AddNumberToObject(o, "clock_skew_margin_ms", (double)c->margin_ms);
    cJSON_AddBoolToObject(o, "member_registered", ks.member_ok);
    if (ks.err[0]) cJSON_AddStringToObject(o, "etcd_error", ks.err);
    pthread_mutex_lock(&c->mu);
    if (c->watch_err[0]) cJSON_AddStringToObject(o, "watch_error", c->watch_err);
    cJSON_AddNumberToObject(o, "watch_restarts", (double)c->watch_restarts);
    cJSON_AddNumberToObject(o, "resyncs", (double)c->resyncs);
    cJSON_AddNumberToObject(o, "keepalive_failures", (double)ks.failures);
    pthread_mutex_unlock(&c->mu);
    cJSON_AddNumberToObject(o, "lease_losses", (double)ks.losses);
    cJSON_AddNumberToObject(o, "stepdowns", (double)c->stepdowns);
    cJSON_AddNumberToObject(o, "acquired", (double)c->acquired);
    cJSON_AddNumberToObject(o, "released", (double)c->released);
    cJSON_AddNumberToObject(o, "txn_errors", (double)c->txn_errors);
    cJSON_AddNumberToObject(o, "workloads", k.total);
    cJSON_AddNumberToObject(o, "owned_here", k.here);
    cJSON_AddNumberToObject(o, "unowned", k.unowned);
    cJSON *ms = cJSON_AddArrayToObject(o, "members");
    for (int i = 0; i < c->nmembers; i++) {
        cl_member *m = &c->members[i];
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "name", m->name);
        cJSON_AddStringToObject(j, "http", m->http);
        cJSON_AddBoolToObject(j, "self", strcmp(m->name, c->me) == 0);
        cJSON_AddNumberToObject(j, "owns", k.owns[i]);
        snprintf(lid, sizeof lid, "%llx", (unsigned long long)m->lease);
        cJSON_AddStringToObject(j, "lease", lid);
        if (strcmp(m->name, c->me) == 0 && ks.last_ok)
            cJSON_AddNumberToObject(j, "lease_ttl_left_s",
                                    (double)(ks.ttl_s * 1000 - (now - ks.last_ok)) / 1000);
        else if (m->ttl_left >= -1)
            cJSON_AddNumberToObject(j, "lease_ttl_left_s", (double)m->ttl_left);
        if (m->started_ms) cJSON_AddNumberToObject(j, "started", (double)m->started_ms);
        cJSON_AddItemToArray(ms, j);
    }
    if (c->rb_at) {
        cJSON *r = cJSON_AddObjectToObject(o, "last_rebalance");
        cJSON_AddNumberToObject(r, "at", (double)c->rb_at);
        cJSON_AddNumberToObject(r, "members_before", c->rb_before);
        cJSON_AddNumberToObject(r, "members_after", c->rb_after);
        cJSON_AddNumberToObject(r, "moved", c->rb_moved);
        cJSON_AddNumberToObject(r, "workloads", c->rb_workloads);
    }
    return o;
}

static void gauge(strbuf *b, const char *name, const char *help, const char *type, double v) {
    strbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help, name, type, name, v);
}

void cluster_metrics(struct controlplane *cp, strbuf *b) {
    cluster *c = cp->cluster;
    if (!c) return;
    ka_state ks;
    ka_snapshot(c, &ks);
    int64_t now = boot_ms();
    counts k;
    count(c, &k);
    /* member names are checked at start and in the mirror (valid_name): no escaping needed */
    strbuf_printf(b,
                  "# HELP tide_cluster_info This control plane's member name in etcd.\n"
                  "# TYPE tide_cluster_info gauge\ntide_cluster_info{member=\"%s\"} 1\n",
                  c->me);
    gauge(b, "tide_cluster_members", "Live control planes (member keys in etcd).", "gauge",
          c->nmembers);
    gauge(b, "tide_cluster_lease_proven",
          "1 while this control plane can prove its etcd lease (it acts only then).", "gauge",
          lease_proven(&ks, now));
    gauge(b, "tide_cluster_lease_age_seconds",
          "Seconds since the last keep-alive etcd confirmed (-1: none yet).", "gauge",
          ks.last_ok ? (double)(now - ks.last_ok) / 1000 : -1);
    gauge(b, "tide_cluster_lease_losses_total", "Leases found expired in etcd.", "counter",
          (double)ks.losses);
    gauge(b, "tide_cluster_keepalive_failures_total", "Keep-alives that failed.", "counter",
          (double)ks.failures);
    gauge(b, "tide_cluster_stepdowns_total",
          "Times this control plane stopped acting because its lease could not be proven.",
          "counter", (double)c->stepdowns);
    gauge(b, "tide_cluster_acquired_total", "Workload ownerships taken.", "counter",
          (double)c->acquired);
    gauge(b, "tide_cluster_released_total", "Workload ownerships handed over.", "counter",
          (double)c->released);
    gauge(b, "tide_cluster_workloads", "Workload specs in etcd.", "gauge", k.total);
    gauge(b, "tide_cluster_workloads_unowned", "Workloads no live member owns right now.", "gauge",
          k.unowned);
    gauge(b, "tide_cluster_rebalance_moved",
          "Workloads that changed owner at the last membership change.", "gauge", c->rb_moved);
    strbuf_printf(b, "# HELP tide_cluster_workloads_owned Workloads each member owns.\n"
                     "# TYPE tide_cluster_workloads_owned gauge\n");
    for (int i = 0; i < c->nmembers; i++)
        strbuf_printf(b, "tide_cluster_workloads_owned{member=\"%s\"} %d\n", c->members[i].name,
                      k.owns[i]);
}

/* ---- start and stop ---------------------------------------------------------------------- */

static void cl_free(cluster *c) {
    if (!c) return;
    while (c->qhead) {
        cl_ev *q = c->qhead;
        c->qhead = q->next;
        free(q->key);
        free(q->value);
        free(q);
    }
    FOR_EACH_WL(c, w) {
        free(w->name);
        free(w->yaml);
        free(w);
    }
    free(c->buckets);
    etcd_free(c->txn_etcd);
    etcd_free(c->spec_etcd);
    pthread_mutex_destroy(&c->spec_mu);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static void cl_stop(struct controlplane *cp) {
    cluster *c = cp->cluster;
    if (!c) return;
    ev_timer_stop(cp->loop, &c->tick);
    pthread_mutex_lock(&c->mu);
    atomic_store(&c->quit, 1);
    atomic_store(&c->watch_stop, 1);
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->mu);
    work_pool_free(c->txn_pool); /* txns under way finish (bounded by etcd_timeout) */
    c->txn_pool = NULL;
    if (c->watch_started) pthread_join(c->watch_thread, NULL);
    if (c->ka_started) pthread_join(c->ka_thread, NULL); /* revokes the lease: a clean leave */
    ev_ref(cp->loop); /* undoes the start's ev_unref before the watcher stops */
    ev_async_stop(cp->loop, &c->wake);
    cp->cluster = NULL;
    cl_free(c);
}

static int cl_start(struct controlplane *cp, char *err, size_t errlen) {
    const struct cp_config *cfg = &cp->cfg;
    if (!cfg->etcd_endpoints || !cfg->etcd_endpoints[0]) return 0; /* alone, as before */
    cluster *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    c->cp = cp;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cond, NULL);
    pthread_mutex_init(&c->spec_mu, NULL);
    c->qtail = &c->qhead;
    c->started_boot = boot_ms();
    c->unproven_since = tide_now_wall_ms();
    if (cfg->etcd_member_name && cfg->etcd_member_name[0]) {
        snprintf(c->me, sizeof c->me, "%s", cfg->etcd_member_name);
    } else {
        char host[64] = "";
        gethostname(host, sizeof host - 1);
        snprintf(c->me, sizeof c->me, "%s/%s", host,
                 cfg->http && cfg->http[0] ? cfg->http : cfg->listen);
    }
    if (!valid_name(c->me)) {
        snprintf(err, errlen,
                 "member name '%s' must be 1 to %d of A-Z a-z 0-9 . _ : / - (set etcd_member_name)",
                 c->me, CLUSTER_NAME_MAX - 1);
        cl_free(c);
        return -EINVAL;
    }
    snprintf(c->prefix, sizeof c->prefix, "%s/", cfg->etcd_prefix);
    c->plen = strlen(c->prefix);
    c->ttl_s = (cfg->etcd_lease_ttl_ms + 999) / 1000;
    c->margin_ms = cfg->etcd_clock_skew_margin_ms;
    /* acting needs a proof younger than TTL - margin; keep-alives come every TTL/3, so the
     * margin must leave room for at least one more of them */
    if (c->margin_ms > c->ttl_s * 1000 / 2) {
        snprintf(err, errlen,
                 "etcd_clock_skew_margin (%lld ms) must be at most half of etcd_lease_ttl (%lld s)",
                 (long long)c->margin_ms, (long long)c->ttl_s);
        cl_free(c);
        return -EINVAL;
    }
    c->opts = (etcd_opts){cfg->etcd_endpoints, cfg->etcd_ca_file, cfg->etcd_cert_file,
                          cfg->etcd_key_file,  cfg->etcd_user,    cfg->etcd_password_file,
                          cfg->etcd_timeout_ms};
    int rc = etcd_new(&c->opts, &c->txn_etcd, err, errlen);
    if (rc == 0) rc = etcd_new(&c->opts, &c->spec_etcd, err, errlen);
    if (rc == 0) {
        rc = work_pool_new(cp->loop, /* threads = */ 1, TXN_QUEUE_MAX, &c->txn_pool);
        if (rc < 0) snprintf(err, errlen, "txn worker: %s", strerror(-rc));
    }
    if (rc < 0) {
        cl_free(c);
        return rc;
    }
    ev_async_init(&c->wake, on_wake);
    ev_async_start(cp->loop, &c->wake);
    ev_unref(cp->loop);
    /* four times a second: a lapsing proof is noticed (and said) well within the margin */
    ev_timer_init(&c->tick, on_tick, 0.25, 0.25);
    ev_timer_start(cp->loop, &c->tick);
    cp->cluster = c;
    if ((rc = pthread_create(&c->ka_thread, NULL, ka_main, c)) == 0) c->ka_started = 1;
    if (rc == 0 && (rc = pthread_create(&c->watch_thread, NULL, watch_main, c)) == 0)
        c->watch_started = 1;
    if (rc != 0) {
        snprintf(err, errlen, "cannot start a thread: %s", strerror(rc));
        cl_stop(cp);
        return -rc;
    }
    log_info("cluster", "member %s of %s%s (lease TTL %lld s, margin %lld ms)", c->me,
             cfg->etcd_endpoints, c->prefix, (long long)c->ttl_s, (long long)c->margin_ms);
    return 0;
}

CP_MODULE(cluster, CLUSTER_MODULE_NAME, cl_start, cl_stop)
