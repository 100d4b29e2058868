/* tsdb_wal.c: write-ahead log segments, group commit on a worker thread, snapshots, replay. */
#include "store/tsdb_wal.h"

#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SEGMENT_MAX_BYTES (64u << 20) /* bounds replay memory and keeps deletion granular */
#define WAL_MAGIC "TIDEWAL\x02"       /* segment header of format 2 */
#define WAL_MAGIC_LEN 8
#define HDR_V1 8     /* format 1: u32 len, u32 crc32c(payload) */
#define HDR_V2 12    /* format 2: u32 len, u32 crc32c(payload), u32 crc32c(the 8 bytes before) */
#define RETRY_MS 500 /* after a write error, try again this often */

/* ---- CRC32C ---- */

static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;
static int crc_hw;

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0x82F63B78u & -(c & 1));
        crc_table[0][i] = c;
    }
    for (int t = 1; t < 8; t++)
        for (int i = 0; i < 256; i++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xff];
#if defined(__x86_64__)
    crc_hw = __builtin_cpu_supports("sse4.2");
#endif
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc_sse(uint32_t crc, const uint8_t *p,
                                                          size_t n) {
    uint64_t c = crc;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = __builtin_ia32_crc32di(c, w);
        p += 8;
        n -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (n--)
        c32 = __builtin_ia32_crc32qi(c32, *p++);
    return c32;
}
#endif

uint32_t tsdb__crc32c(uint32_t crc, const void *data, size_t len) {
    pthread_once(&crc_once, crc_init);
    const uint8_t *p = data;
    crc = ~crc;
#if defined(__x86_64__)
    if (crc_hw) return ~crc_sse(crc, p, len);
#endif
    while (len >= 8) {
        uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                             (uint32_t)p[3] << 24);
        crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
              crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^ crc_table[3][p[4]] ^
              crc_table[2][p[5]] ^ crc_table[1][p[6]] ^ crc_table[0][p[7]];
        p += 8;
        len -= 8;
    }
    while (len--)
        crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xff];
    return ~crc;
}

/* ---- state ---- */

enum { ITEM_BLOCK, ITEM_SNAPSHOT };

typedef struct item {
    int kind;
    int sealed;   /* the worker took it: the loop appends to a new block */
    uint64_t seg; /* segment (block) or wal_from (snapshot) */
    uint8_t *buf;
    size_t len, cap, off; /* off: bytes already written */
    uint64_t lsn_end;     /* lsn after the block's last record */
    int64_t first_ms;     /* when the first record was queued */
    void *snap;           /* snapshot: the store's capture, encoded by the worker */
    int status;           /* snapshot: result, once finished */
    int finished;         /* snapshot: moved to the finished list */
    struct item *next;
} item;

typedef struct pending {
    uint64_t lsn;
    tsdb_durable_fn fn;
    void *arg;
} pending;

struct tsdb_wal {
    tsdb_wal_options opt;
    char *dir;
    int lock_fd;
    pthread_t thread;
    int thread_started;
    pthread_mutex_t mu;
    pthread_cond_t wake; /* worker waits for work */
    pthread_cond_t done; /* waiters for durability */
    item *head, *tail;
    item *fin;        /* snapshots the worker is done with, for snapshot_done */
    uint64_t seg_cur; /* segment new records go to */
    size_t seg_bytes; /* bytes queued for seg_cur */
    uint64_t lsn_queued, lsn_durable;
    int err;
    char errtext[200];
    int stop, syncing;
    /* worker only */
    int fd;
    uint64_t fd_seg;
    /* loop side */
    pending *pend;
    size_t npend, cap_pend;
    struct ev_loop *loop;
    ev_async async;
    ev_timer snap_timer;
    /* stats */
    _Atomic uint64_t wal_bytes, wal_written, fsyncs, fsync_ns_total, fsync_ns_max, snapshots,
        snapshot_errors;
    _Atomic int64_t last_snapshot_ms;
};

static int64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void seg_path(const tsdb_wal *w, char *buf, size_t len, uint64_t seg) {
    snprintf(buf, len, "%s/wal-%016" PRIx64 ".log", w->dir, seg);
}

static void snap_path(const tsdb_wal *w, char *buf, size_t len, uint64_t n, const char *ext) {
    snprintf(buf, len, "%s/snapshot-%016" PRIx64 ".%s", w->dir, n, ext);
}

/* 1 when name is exactly PREFIX<16 hex digits>SUFFIX; *n gets the number. */
static int parse_name(const char *name, const char *prefix, const char *suffix, uint64_t *n) {
    size_t pl = strlen(prefix), sl = strlen(suffix);
    if (strlen(name) != pl + 16 + sl || strncmp(name, prefix, pl) != 0 ||
        strcmp(name + pl + 16, suffix) != 0)
        return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < 16; i++) {
        char c = name[pl + i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) return 0;
        v = v << 4 | (uint64_t)d;
    }
    *n = v;
    return 1;
}

static int fsync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -errno;
    int rc = fsync(fd) ? -errno : 0;
    close(fd);
    return rc;
}

/* ---- worker ---- */

static void set_error_locked(tsdb_wal *w, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_error_locked(tsdb_wal *w, int err, const char *fmt, ...) {
    int first = w->err == 0;
    w->err = err;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->errtext, sizeof w->errtext, fmt, ap);
    va_end(ap);
    if (first)
        log_error("tsdb", "%s; not acknowledging new samples until it can write again", w->errtext);
}

/* A new (empty, or holding a torn part of the header) segment gets the format header; an
 * existing one is left as it is. 0 or -errno. */
static int start_segment(tsdb_wal *w, int fd) {
    struct stat st;
    if (fstat(fd, &st) != 0) return -errno;
    if (st.st_size >= (off_t)WAL_MAGIC_LEN) return 0;
    if (st.st_size > 0 && ftruncate(fd, 0) != 0) return -errno;
    size_t off = 0;
    while (off < WAL_MAGIC_LEN) {
        ssize_t n = write(fd, WAL_MAGIC + off, WAL_MAGIC_LEN - off);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -errno;
        off += (size_t)n;
    }
    atomic_fetch_add(&w->wal_bytes, (uint64_t)WAL_MAGIC_LEN);
    return 0;
}

/* Writes the rest of a block to its segment and fsyncs it. 0 or -errno (what[] says where). */
static int write_block(tsdb_wal *w, item *it, char *what, size_t whatlen) {
    char path[4096];
    seg_path(w, path, sizeof path, it->seg);
    if (w->fd >= 0 && w->fd_seg != it->seg) {
        if (fdatasync(w->fd) != 0) {
            snprintf(what, whatlen, "wal: fsync previous segment");
            return -errno;
        }
        close(w->fd);
        w->fd = -1;
    }
    if (w->fd < 0) {
        int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
        if (fd < 0) {
            snprintf(what, whatlen, "wal: create %s", path);
            return -errno;
        }
        w->fd = fd;
        w->fd_seg = it->seg;
        int rc = start_segment(w, fd);
        if (rc) {
            snprintf(what, whatlen, "wal: write the header of %s", path);
            return rc;
        }
        rc = fsync_dir(w->dir);
        if (rc) {
            snprintf(what, whatlen, "wal: fsync %s", w->dir);
            return rc;
        }
    }
    while (it->off < it->len) {
        ssize_t n = write(w->fd, it->buf + it->off, it->len - it->off);
        if (n < 0) {
            if (errno == EINTR) continue;
            snprintf(what, whatlen, "wal: write %s", path);
            return -errno;
        }
        it->off += (size_t)n;
        atomic_fetch_add(&w->wal_bytes, (uint64_t)n);
        atomic_fetch_add(&w->wal_written, (uint64_t)n);
    }
    int64_t t0 = mono_ns();
    if (fdatasync(w->fd) != 0) {
        snprintf(what, whatlen, "wal: fsync %s", path);
        return -errno;
    }
    uint64_t dt = (uint64_t)(mono_ns() - t0);
    atomic_fetch_add(&w->fsyncs, 1);
    atomic_fetch_add(&w->fsync_ns_total, dt);
    uint64_t mx = atomic_load(&w->fsync_ns_max);
    while (dt > mx && !atomic_compare_exchange_weak(&w->fsync_ns_max, &mx, dt)) {
    }
    return 0;
}

/* The newest snapshot numbered below `below`, or `below` itself when there is none. */
static uint64_t previous_snapshot(tsdb_wal *w, uint64_t below) {
    DIR *d = opendir(w->dir);
    if (!d) return 0; /* keep everything */
    struct dirent *de;
    uint64_t best = below;
    int found = 0;
    while ((de = readdir(d)) != NULL) {
        uint64_t n;
        if (parse_name(de->d_name, "snapshot-", ".snap", &n) && n < below && (!found || n > best)) {
            best = n;
            found = 1;
        }
    }
    closedir(d);
    return found ? best : 0;
}

/* Removes segments and snapshots numbered below `keep_from`. */
static void remove_old(tsdb_wal *w, uint64_t keep_from) {
    DIR *d = opendir(w->dir);
    if (!d) return;
    struct dirent *de;
    char path[4096];
    while ((de = readdir(d)) != NULL) {
        uint64_t n;
        int is_seg = parse_name(de->d_name, "wal-", ".log", &n);
        int is_snap = !is_seg && parse_name(de->d_name, "snapshot-", ".snap", &n);
        if ((!is_seg && !is_snap) || n >= keep_from) continue;
        snprintf(path, sizeof path, "%s/%s", w->dir, de->d_name);
        struct stat st;
        if (is_seg && stat(path, &st) == 0) atomic_fetch_sub(&w->wal_bytes, (uint64_t)st.st_size);
        if (is_seg && w->fd >= 0 && w->fd_seg == n) {
            close(w->fd);
            w->fd = -1;
        }
        unlink(path);
    }
    closedir(d);
}

/* Writes a snapshot image atomically. 0 or -errno. */
static int write_snapshot(tsdb_wal *w, item *it) {
    char tmp[4096], final[4096];
    snap_path(w, tmp, sizeof tmp, it->seg, "tmp");
    snap_path(w, final, sizeof final, it->seg, "snap");
    uint32_t crc = tsdb__crc32c(0, it->buf, it->len);
    uint8_t crcb[4] = {(uint8_t)crc, (uint8_t)(crc >> 8), (uint8_t)(crc >> 16),
                       (uint8_t)(crc >> 24)};
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) return -errno;
    int rc = 0;
    const uint8_t *parts[2] = {it->buf, crcb};
    size_t lens[2] = {it->len, 4};
    for (int k = 0; k < 2 && !rc; k++) {
        size_t off = 0;
        while (off < lens[k]) {
            ssize_t n = write(fd, parts[k] + off, lens[k] - off);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) {
                rc = -errno;
                break;
            }
            off += (size_t)n;
        }
    }
    if (!rc && fsync(fd) != 0) rc = -errno;
    close(fd);
    if (!rc && rename(tmp, final) != 0) rc = -errno;
    if (!rc) rc = fsync_dir(w->dir);
    if (rc) {
        unlink(tmp);
        return rc;
    }
    /* two snapshots stay, with every segment from the older one on: a damaged newest
     * snapshot is then replaced by the older one and the WAL after it, losing nothing */
    remove_old(w, previous_snapshot(w, it->seg));
    return 0;
}

static void abs_deadline(struct timespec *ts, int64_t ms) {
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
}

static void *worker(void *arg) {
    tsdb_wal *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->head && !w->stop) {
            if (!w->err) {
                pthread_cond_wait(&w->wake, &w->mu);
                continue;
            }
            /* failed with nothing queued (e.g. unwritable at start): probe the directory */
            struct timespec ts;
            abs_deadline(&ts, RETRY_MS);
            pthread_cond_timedwait(&w->wake, &w->mu, &ts);
            if (w->head || w->stop || !w->err) continue;
            char path[4096];
            uint64_t seg = w->seg_cur;
            pthread_mutex_unlock(&w->mu);
            seg_path(w, path, sizeof path, seg);
            int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
            if (fd >= 0 && start_segment(w, fd) != 0) {
                close(fd);
                fd = -1;
            }
            pthread_mutex_lock(&w->mu);
            if (fd >= 0 && w->lock_fd < 0) { /* started unwritable: take the lock now */
                char lock[4200];
                snprintf(lock, sizeof lock, "%s/LOCK", w->dir);
                w->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
                if (w->lock_fd >= 0 && flock(w->lock_fd, LOCK_EX | LOCK_NB) != 0) {
                    log_error("tsdb", "%s: in use by another process; staying read-only", lock);
                    close(fd);
                    fd = -1;
                }
            }
            if (fd >= 0) {
                if (w->fd >= 0) close(w->fd);
                w->fd = fd;
                w->fd_seg = seg;
                log_info("tsdb", "WAL writable again (%s resolved); acknowledging again",
                         w->errtext);
                w->err = 0;
                w->errtext[0] = 0;
                if (w->loop) ev_async_send(w->loop, &w->async);
            }
        }
        if (!w->head) break;
        item *it = w->head;
        /* group commit: let records gather for a while unless someone waits */
        if (it->kind == ITEM_BLOCK && !it->sealed && w->opt.group_commit_ms > 0 && !w->stop &&
            !w->syncing) {
            int64_t age = tide_now_mono_ms() - it->first_ms;
            if (age < w->opt.group_commit_ms && it->len < (1u << 20)) {
                struct timespec ts;
                abs_deadline(&ts, w->opt.group_commit_ms - age);
                pthread_cond_timedwait(&w->wake, &w->mu, &ts);
                continue;
            }
        }
        it->sealed = 1;
        pthread_mutex_unlock(&w->mu);

        char what[4200] = "";
        int rc;
        if (it->kind == ITEM_BLOCK) {
            rc = write_block(w, it, what, sizeof what);
        } else {
            rc = w->opt.encode(w->opt.arg, it->snap, &it->buf, &it->len);
            if (!rc) rc = write_snapshot(w, it);
            free(it->buf);
            it->buf = NULL;
            it->status = rc;
            if (rc) {
                atomic_fetch_add(&w->snapshot_errors, 1);
                log_warn("tsdb", "snapshot %s/snapshot-%016" PRIx64 ": %s (the WAL is kept)",
                         w->dir, it->seg, strerror(-rc));
            } else {
                atomic_fetch_add(&w->snapshots, 1);
                atomic_store(&w->last_snapshot_ms, tide_now_wall_ms());
            }
            rc = 0; /* a failed snapshot is retried by the next timer tick, not here */
        }

        pthread_mutex_lock(&w->mu);
        if (rc == 0) {
            w->head = it->next;
            if (!w->head) w->tail = NULL;
            if (it->kind == ITEM_BLOCK) {
                w->lsn_durable = it->lsn_end;
                free(it->buf);
                free(it);
            } else { /* handed back to the loop, which releases the capture */
                it->finished = 1;
                it->next = w->fin;
                w->fin = it;
            }
            if (w->err) {
                log_info("tsdb", "WAL writable again (%s resolved); acknowledging again",
                         w->errtext);
                w->err = 0;
                w->errtext[0] = 0;
            }
        } else {
            set_error_locked(w, rc, "%s: %s", what, strerror(-rc));
        }
        pthread_cond_broadcast(&w->done);
        if (w->loop) ev_async_send(w->loop, &w->async);
        if (rc != 0) {
            if (w->stop) break;
            struct timespec ts;
            abs_deadline(&ts, RETRY_MS);
            pthread_cond_timedwait(&w->wake, &w->mu, &ts);
        }
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* ---- loop side ---- */

int tsdb__wal_error(tsdb_wal *w) {
    pthread_mutex_lock(&w->mu);
    int e = w->err;
    pthread_mutex_unlock(&w->mu);
    return e;
}

int tsdb__wal_status(tsdb_wal *w, char *buf, size_t len) {
    pthread_mutex_lock(&w->mu);
    int e = w->err;
    snprintf(buf, len, "%s", e ? w->errtext : "ok");
    pthread_mutex_unlock(&w->mu);
    return e;
}

int tsdb__wal_append(tsdb_wal *w, const uint8_t *rec, size_t len) {
    if (len == 0 || len > TSDB_WAL_MAX_RECORD) return -EINVAL;
    size_t total = len + HDR_V2;
    pthread_mutex_lock(&w->mu);
    if (w->err) {
        int e = w->err;
        pthread_mutex_unlock(&w->mu);
        return e;
    }
    if (w->seg_bytes >= SEGMENT_MAX_BYTES) {
        w->seg_cur++;
        w->seg_bytes = 0;
    }
    item *it = w->tail;
    int fresh = 0;
    if (!it || it->kind != ITEM_BLOCK || it->sealed || it->seg != w->seg_cur) {
        it = calloc(1, sizeof *it);
        if (!it) {
            pthread_mutex_unlock(&w->mu);
            return -ENOMEM;
        }
        it->kind = ITEM_BLOCK;
        it->seg = w->seg_cur;
        it->first_ms = tide_now_mono_ms();
        fresh = 1;
    }
    if (it->len + total > it->cap) {
        size_t ncap = it->cap ? it->cap : 65536;
        while (ncap < it->len + total)
            ncap *= 2;
        uint8_t *nb = realloc(it->buf, ncap);
        if (!nb) {
            if (fresh) free(it);
            pthread_mutex_unlock(&w->mu);
            return -ENOMEM;
        }
        it->buf = nb;
        it->cap = ncap;
    }
    uint32_t crc = tsdb__crc32c(0, rec, len);
    uint8_t *p = it->buf + it->len;
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)((uint32_t)len >> (8 * i));
    for (int i = 0; i < 4; i++)
        p[4 + i] = (uint8_t)(crc >> (8 * i));
    uint32_t hcrc = tsdb__crc32c(0, p, 8);
    for (int i = 0; i < 4; i++)
        p[8 + i] = (uint8_t)(hcrc >> (8 * i));
    memcpy(p + HDR_V2, rec, len);
    it->len += total;
    w->seg_bytes += total;
    w->lsn_queued += total;
    it->lsn_end = w->lsn_queued;
    if (fresh) {
        if (w->tail)
            w->tail->next = it;
        else
            w->head = it;
        w->tail = it;
        pthread_cond_signal(&w->wake);
    }
    pthread_mutex_unlock(&w->mu);
    return 0;
}

uint64_t tsdb__wal_rotate(tsdb_wal *w) {
    pthread_mutex_lock(&w->mu);
    uint64_t n = ++w->seg_cur;
    w->seg_bytes = 0;
    pthread_mutex_unlock(&w->mu);
    return n;
}

/* Calls snapshot_done for every snapshot the worker has finished. Loop thread (or the only
 * thread without a loop, or close after the worker stopped). */
static void finish_snapshots(tsdb_wal *w) {
    pthread_mutex_lock(&w->mu);
    item *fin = w->fin;
    w->fin = NULL;
    pthread_mutex_unlock(&w->mu);
    while (fin) {
        item *n = fin->next;
        w->opt.snapshot_done(w->opt.arg, fin->snap, fin->status);
        free(fin);
        fin = n;
    }
}

int tsdb__wal_snapshot(tsdb_wal *w, void *snap, uint64_t wal_from) {
    item *it = calloc(1, sizeof *it);
    if (!it) {
        atomic_fetch_add(&w->snapshot_errors, 1);
        return -ENOMEM;
    }
    it->kind = ITEM_SNAPSHOT;
    it->sealed = 1;
    it->seg = wal_from;
    it->snap = snap;
    pthread_mutex_lock(&w->mu);
    if (w->tail)
        w->tail->next = it;
    else
        w->head = it;
    w->tail = it;
    pthread_cond_signal(&w->wake);
    if (!w->loop) {
        w->syncing++; /* no group-commit wait for the blocks ahead of it */
        while (!it->finished && w->thread_started && !w->err)
            pthread_cond_wait(&w->done, &w->mu);
        w->syncing--;
    }
    pthread_mutex_unlock(&w->mu);
    if (!w->loop) finish_snapshots(w);
    return 0;
}

int tsdb__wal_sync(tsdb_wal *w) {
    pthread_mutex_lock(&w->mu);
    uint64_t target = w->lsn_queued;
    w->syncing++;
    pthread_cond_signal(&w->wake);
    while (w->lsn_durable < target && !w->err && w->thread_started)
        pthread_cond_wait(&w->done, &w->mu);
    int rc = w->lsn_durable >= target ? 0 : (w->err ? w->err : -EIO);
    w->syncing--;
    pthread_mutex_unlock(&w->mu);
    return rc;
}

/* Completes the callbacks whose records are durable, or all of them on an error. */
static void complete_pending(tsdb_wal *w, int final) {
    pthread_mutex_lock(&w->mu);
    uint64_t durable = w->lsn_durable;
    int err = w->err;
    pthread_mutex_unlock(&w->mu);
    size_t k = 0;
    while (k < w->npend && (w->pend[k].lsn <= durable || err || final))
        k++;
    if (!k) return;
    pending *ready = malloc(k * sizeof *ready);
    if (!ready) return; /* retried at the next wake-up */
    memcpy(ready, w->pend, k * sizeof *ready);
    memmove(w->pend, w->pend + k, (w->npend - k) * sizeof *ready);
    w->npend -= k;
    for (size_t i = 0; i < k; i++) {
        int st = ready[i].lsn <= durable ? 0 : (err ? err : -ECANCELED);
        ready[i].fn(ready[i].arg, st);
    }
    free(ready);
}

static void on_async(struct ev_loop *loop, ev_async *a, int revents) {
    (void)loop;
    (void)revents;
    tsdb_wal *w = (tsdb_wal *)((char *)a - offsetof(tsdb_wal, async));
    complete_pending(w, /* final = */ 0);
    finish_snapshots(w);
}

static void on_snap_timer(struct ev_loop *loop, ev_timer *t, int revents) {
    (void)loop;
    (void)revents;
    tsdb_wal *w = (tsdb_wal *)((char *)t - offsetof(tsdb_wal, snap_timer));
    w->opt.snapshot(w->opt.arg);
}

void tsdb__wal_when_durable(tsdb_wal *w, tsdb_durable_fn fn, void *arg) {
    if (!w->loop) {
        fn(arg, tsdb__wal_sync(w));
        return;
    }
    pthread_mutex_lock(&w->mu);
    uint64_t lsn = w->lsn_queued;
    pthread_mutex_unlock(&w->mu);
    if (w->npend == w->cap_pend) {
        size_t ncap = w->cap_pend ? w->cap_pend * 2 : 64;
        pending *np = realloc(w->pend, ncap * sizeof *np);
        if (!np) {
            fn(arg, -ENOMEM);
            return;
        }
        w->pend = np;
        w->cap_pend = ncap;
    }
    w->pend[w->npend++] = (pending){lsn, fn, arg};
    ev_async_send(w->loop, &w->async); /* answers already-durable requests on the next turn */
}

void tsdb__wal_stats(tsdb_wal *w, tsdb_stats *st) {
    st->wal_bytes = atomic_load(&w->wal_bytes);
    st->wal_written = atomic_load(&w->wal_written);
    st->fsyncs = atomic_load(&w->fsyncs);
    st->fsync_seconds_total = (double)atomic_load(&w->fsync_ns_total) / 1e9;
    st->fsync_seconds_max = (double)atomic_load(&w->fsync_ns_max) / 1e9;
    st->snapshots = atomic_load(&w->snapshots);
    st->snapshot_errors = atomic_load(&w->snapshot_errors);
    st->last_snapshot_ms = atomic_load(&w->last_snapshot_ms);
    st->durable_ok = tsdb__wal_error(w) == 0;
}

/* ---- open: restore and replay ---- */

static int read_file(const char *path, uint8_t **out, size_t *len) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    size_t n = (size_t)st.st_size;
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    size_t off = 0;
    while (off < n) {
        ssize_t r = read(fd, buf + off, n - off);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            int e = r < 0 ? -errno : -EIO;
            free(buf);
            close(fd);
            return e;
        }
        off += (size_t)r;
    }
    close(fd);
    *out = buf;
    *len = n;
    return 0;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* NULL when a complete, intact record (header size hdr) starts at off; else why not. *rlen
 * gets the payload length when the header itself is intact (0 otherwise). */
static const char *check_record(const uint8_t *b, size_t len, size_t off, size_t hdr,
                                uint32_t *rlen) {
    *rlen = 0;
    size_t left = len - off;
    if (left < hdr) return "truncated header";
    uint32_t l = le32(b + off), crc = le32(b + off + 4);
    if (hdr == HDR_V2 && tsdb__crc32c(0, b + off, 8) != le32(b + off + 8))
        return "header checksum mismatch";
    if (l == 0 || l > TSDB_WAL_MAX_RECORD) return "bad record length";
    *rlen = l;
    if (l > left - hdr) return "truncated record";
    if (tsdb__crc32c(0, b + off + hdr, l) != crc) return "checksum mismatch";
    return NULL;
}

/* The first offset at or after `from` where an intact record starts, or len. */
static size_t next_valid(const uint8_t *b, size_t len, size_t from, size_t hdr) {
    uint32_t rlen;
    for (size_t o = from; o + hdr <= len; o++)
        if (!check_record(b, len, o, hdr, &rlen)) return o;
    return len;
}

#define MAX_REPORT_LINES 50 /* per segment; the totals count everything */

static void report(FILE *out, unsigned *lines, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void report(FILE *out, unsigned *lines, const char *fmt, ...) {
    if (!out) return;
    if (lines && ++*lines > MAX_REPORT_LINES) {
        if (*lines == MAX_REPORT_LINES + 1) fprintf(out, "  ... (more findings counted below)\n");
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vfprintf(out, fmt, ap);
    va_end(ap);
    fputc('\n', out);
}

/* Walks one segment's records, replaying the intact ones.
 * Strict (rep == NULL): a partial record at the end of the last segment (nothing intact
 * after it) is a torn write, *torn_at gets its offset; any other damage is -EBADMSG with err
 * naming the file and offset, and a record that cannot be applied fails too.
 * Salvage (rep != NULL, findings to out if not NULL): damage and records that cannot be applied are
 * reported and skipped; the walk resumes at the next intact record. */
static int walk_segment(tsdb_wal *w, const char *path, const uint8_t *buf, size_t len, int last,
                        FILE *out, tsdb_wal_report *rep, size_t *torn_at, char *err,
                        size_t errlen) {
    *torn_at = SIZE_MAX;
    unsigned lines = 0;
    size_t hdr = HDR_V1, off = 0;
    uint32_t rlen;
    if (len == 0) return 0;
    if (len >= WAL_MAGIC_LEN && memcmp(buf, WAL_MAGIC, WAL_MAGIC_LEN) == 0) {
        hdr = HDR_V2;
        off = WAL_MAGIC_LEN;
    } else if (len < WAL_MAGIC_LEN && memcmp(buf, WAL_MAGIC, len) == 0) {
        return 0; /* a header cut short: no record was ever written after it */
    } else if (len >= WAL_MAGIC_LEN + HDR_V2 &&
               !check_record(buf, len, WAL_MAGIC_LEN, HDR_V2, &rlen)) {
        if (!rep) {
            snprintf(err, errlen,
                     "%s: damaged segment header (intact records follow); nothing was changed: "
                     "see `tidectl store verify`",
                     path);
            return -EBADMSG;
        }
        report(out, &lines, "%s: damaged segment header (8 bytes, no data lost)", path);
        rep->damaged_regions++;
        hdr = HDR_V2;
        off = WAL_MAGIC_LEN;
    }
    while (off < len) {
        const char *why = check_record(buf, len, off, hdr, &rlen);
        if (why) {
            size_t nxt = next_valid(buf, len, off + 1, hdr);
            if (nxt == len && last) { /* nothing intact after it: a write cut short */
                *torn_at = off;
                if (rep) rep->torn_bytes += len - off;
                report(out, &lines,
                       "%s: torn tail at offset %zu (%s): %zu bytes of a write that was never "
                       "acknowledged",
                       path, off, why, len - off);
                break;
            }
            if (!rep) {
                snprintf(err, errlen,
                         "%s: corrupt record at offset %zu (%s), %zu bytes follow; %s; nothing "
                         "was changed: check with `tidectl store verify`, salvage with "
                         "`tidectl store repair`",
                         path, off, why, len - off,
                         nxt < len ? "intact records follow, so this is damage, not a torn write"
                                   : "not the last segment, so this is damage, not a torn write");
                return -EBADMSG;
            }
            rep->damaged_regions++;
            rep->bytes_lost += nxt - off;
            if (hdr == HDR_V2 && rlen && off + hdr + rlen == nxt)
                report(out, &lines,
                       "%s: LOST one record at offset %zu (%s): %" PRIu32 " bytes of payload", path,
                       off, why, rlen);
            else
                report(out, &lines,
                       "%s: LOST bytes %zu-%zu (%zu bytes, %s at %zu): the records in them "
                       "cannot be read",
                       path, off, nxt, nxt - off, why, off);
            off = nxt;
            continue;
        }
        int rc = w->opt.replay(w->opt.arg, buf + off + hdr, rlen);
        if (rc) {
            if (!rep) {
                snprintf(err, errlen, "%s: record at offset %zu cannot be applied: %s", path, off,
                         strerror(-rc));
                return rc;
            }
            if (rc == -ENOMEM) {
                snprintf(err, errlen, "%s: out of memory", path);
                return rc;
            }
            rep->records_unapplied++;
            report(out, &lines,
                   "%s: LOST the intact record at offset %zu: cannot be applied (%s; e.g. "
                   "samples of a series whose definition was lost)",
                   path, off, strerror(-rc));
        } else if (rep) {
            rep->records++;
        }
        off += hdr + rlen;
    }
    return 0;
}

/* Replays one segment. A torn tail of the last segment is cut off (strict mode only). */
static int replay_segment(tsdb_wal *w, uint64_t seg, int last, FILE *out, tsdb_wal_report *rep,
                          char *err, size_t errlen) {
    char path[4096];
    seg_path(w, path, sizeof path, seg);
    uint8_t *buf;
    size_t len;
    int rc = read_file(path, &buf, &len);
    if (rc) {
        snprintf(err, errlen, "%s: %s", path, strerror(-rc));
        return rc;
    }
    size_t torn_at;
    rc = walk_segment(w, path, buf, len, last, out, rep, &torn_at, err, errlen);
    free(buf);
    if (rc) return rc;
    if (rep) rep->segments++;
    if (torn_at != SIZE_MAX && !rep) {
        log_warn("tsdb",
                 "%s: torn tail at offset %zu: %zu bytes of a write that was never "
                 "acknowledged dropped",
                 path, torn_at, len - torn_at);
        if (truncate(path, (off_t)torn_at) != 0)
            log_warn("tsdb", "truncate %s: %s", path, strerror(errno));
        len = torn_at;
    }
    atomic_fetch_add(&w->wal_bytes, (uint64_t)len);
    return 0;
}

static int mkdir_p(const char *dir) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", dir);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(tmp, 0750) != 0 && errno != EEXIST) return -errno;
        *p = '/';
    }
    if (mkdir(tmp, 0750) != 0 && errno != EEXIST) return -errno;
    return 0;
}

static int cmp_u64_desc(const void *a, const void *b) {
    return -cmp_u64(a, b);
}

static int push_u64(uint64_t **v, size_t *n, size_t *cap, uint64_t x) {
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        uint64_t *nv = realloc(*v, nc * sizeof *nv);
        if (!nv) return -ENOMEM;
        *v = nv;
        *cap = nc;
    }
    (*v)[(*n)++] = x;
    return 0;
}

/* Reads snapshot n; 0 with its image (checksum verified, trailer cut), -EBADMSG when damaged,
 * or -errno. */
static int read_snapshot(tsdb_wal *w, uint64_t n, uint8_t **buf, size_t *len) {
    char path[4096];
    snap_path(w, path, sizeof path, n, "snap");
    int rc = read_file(path, buf, len);
    if (rc) return rc;
    if (*len < 4 || tsdb__crc32c(0, *buf, *len - 4) != le32(*buf + *len - 4)) {
        free(*buf);
        *buf = NULL;
        return -EBADMSG;
    }
    *len -= 4;
    return 0;
}

/* Restores the newest intact snapshot and replays the segments from it on.
 * Strict (rep == NULL): a damaged newest snapshot is set aside (renamed .damaged) for the one
 * before it, whose WAL is kept for this; damage anywhere else stops with err and changes
 * nothing. Salvage (rep != NULL): reads only, reports, and keeps whatever is intact. */
static int restore_and_replay(tsdb_wal *w, FILE *out, tsdb_wal_report *rep, char *err,
                              size_t errlen) {
    DIR *d = opendir(w->dir);
    if (!d) {
        int e = -errno;
        snprintf(err, errlen, "%s: %s", w->dir, strerror(errno));
        return e;
    }
    uint64_t *segs = NULL, *snaps = NULL;
    size_t nseg = 0, capseg = 0, nsnap = 0, capsnap = 0;
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d)) != NULL && !rc) {
        uint64_t n;
        if (parse_name(de->d_name, "wal-", ".log", &n)) {
            rc = push_u64(&segs, &nseg, &capseg, n);
        } else if (parse_name(de->d_name, "snapshot-", ".snap", &n)) {
            rc = push_u64(&snaps, &nsnap, &capsnap, n);
        } else if (!rep && parse_name(de->d_name, "snapshot-", ".tmp", &n)) {
            char tmp[4200]; /* a snapshot a crash interrupted: never renamed, never used */
            snprintf(tmp, sizeof tmp, "%s/%s", w->dir, de->d_name);
            if (unlink(tmp) == 0) log_info("tsdb", "removed unfinished %s", tmp);
        }
    }
    closedir(d);
    if (rc) {
        snprintf(err, errlen, "tsdb: out of memory");
        goto out;
    }
    if (nseg) qsort(segs, nseg, sizeof *segs, cmp_u64);
    if (nsnap) qsort(snaps, nsnap, sizeof *snaps, cmp_u64_desc);
    uint64_t wal_from = 0;
    for (size_t i = 0; i < nsnap; i++) {
        char path[4096];
        snap_path(w, path, sizeof path, snaps[i], "snap");
        uint8_t *buf = NULL;
        size_t len = 0;
        rc = read_snapshot(w, snaps[i], &buf, &len);
        if (rc == -EBADMSG) {
            if (rep) rep->snapshots_damaged++;
            report(out, NULL, "%s: DAMAGED (checksum mismatch)", path);
            if (!rep && (i > 0 || nsnap < 2)) {
                snprintf(err, errlen,
                         "%s: checksum mismatch (damaged snapshot) and no intact snapshot "
                         "before it; nothing was changed: check with `tidectl store verify`, "
                         "salvage with `tidectl store repair`",
                         path);
                goto out;
            }
            continue;
        }
        if (rc) {
            snprintf(err, errlen, "%s: %s", path, strerror(-rc));
            goto out;
        }
        rc = w->opt.restore(w->opt.arg, buf, len, &wal_from);
        free(buf);
        if (rc) {
            snprintf(err, errlen, "%s: cannot be restored: %s", path, strerror(-rc));
            goto out;
        }
        if (wal_from != snaps[i]) {
            snprintf(err, errlen, "%s: names segment %" PRIu64 " inside", path, wal_from);
            rc = -EBADMSG;
            goto out;
        }
        if (rep) rep->snapshots_ok++;
        report(out, NULL, "%s: ok (restored)", path);
        if (i > 0 && !rep) { /* strict: the newest was damaged; set it aside, keep evidence */
            char bad[4096], aside[4200];
            snap_path(w, bad, sizeof bad, snaps[0], "snap");
            snprintf(aside, sizeof aside, "%s.damaged", bad);
            if (rename(bad, aside) != 0) {
                rc = -errno;
                snprintf(err, errlen, "%s: damaged, cannot be set aside: %s", bad, strerror(errno));
                goto out;
            }
            log_error("tsdb",
                      "%s: checksum mismatch (damaged snapshot), kept as %s; restored the "
                      "snapshot before it (%s) and replaying the WAL from there: nothing lost",
                      bad, aside, path);
        }
        for (size_t k = i + 1; k < nsnap && rep; k++) {
            char older[4096];
            snap_path(w, older, sizeof older, snaps[k], "snap");
            report(out, NULL, "%s: older snapshot, not needed", older);
        }
        break;
    }
    if (nsnap && rep && !rep->snapshots_ok) {
        rep->snapshot_lost = 1;
        report(out, NULL,
               "no intact snapshot: LOST what only the snapshots held; replaying every "
               "segment there is");
    }
    /* the last segment holding records: a torn write can only be there */
    size_t last = nseg;
    for (size_t i = nseg; i-- > 0;) {
        if (segs[i] < wal_from) break;
        char path[4096];
        struct stat st;
        seg_path(w, path, sizeof path, segs[i]);
        if (stat(path, &st) == 0 && st.st_size <= (off_t)WAL_MAGIC_LEN) continue;
        last = i;
        break;
    }
    uint64_t next = wal_from;
    for (size_t i = 0; i < nseg; i++) {
        if (segs[i] < wal_from) { /* covered by the snapshot; kept for the one before it */
            char path[4096];
            struct stat st;
            seg_path(w, path, sizeof path, segs[i]);
            if (!rep && stat(path, &st) == 0) atomic_fetch_add(&w->wal_bytes, (uint64_t)st.st_size);
            continue;
        }
        rc = replay_segment(w, segs[i], i == last, out, rep, err, errlen);
        if (rc) goto out;
        next = segs[i] + 1;
    }
    w->seg_cur = next;
out:
    free(segs);
    free(snaps);
    return rc;
}

int tsdb__wal_salvage(const tsdb_wal_options *opt, FILE *out, tsdb_wal_report *rep, char *err,
                      size_t errlen) {
    memset(rep, 0, sizeof *rep);
    tsdb_wal *w = calloc(1, sizeof *w);
    if (!w || !(w->dir = strdup(opt->dir))) {
        free(w);
        snprintf(err, errlen, "tsdb: out of memory");
        return -ENOMEM;
    }
    w->opt = *opt;
    w->fd = -1;
    w->lock_fd = -1;
    int rc = restore_and_replay(w, out, rep, err, errlen);
    free(w->dir);
    free(w);
    return rc;
}

int tsdb__wal_open(tsdb_wal **out, const tsdb_wal_options *opt, char *err, size_t errlen) {
    *out = NULL;
    tsdb_wal *w = calloc(1, sizeof *w);
    if (!w || !(w->dir = strdup(opt->dir))) {
        free(w);
        snprintf(err, errlen, "tsdb: out of memory");
        return -ENOMEM;
    }
    w->opt = *opt;
    w->fd = -1;
    w->lock_fd = -1;
    w->loop = opt->loop;
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->wake, &ca);
    pthread_cond_init(&w->done, &ca);
    pthread_condattr_destroy(&ca);
    int rc = mkdir_p(w->dir);
    if (rc) {
        snprintf(err, errlen, "%s: cannot create: %s", w->dir, strerror(-rc));
        goto fail;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/LOCK", w->dir);
    w->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    int lock_errno = errno;
    if (w->lock_fd >= 0 && flock(w->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        rc = -errno;
        snprintf(err, errlen, "%s: in use by another process (%s)", path, strerror(errno));
        goto fail;
    }
    rc = restore_and_replay(w, NULL, NULL, err, errlen);
    if (rc) goto fail;
    if (w->lock_fd < 0) /* unwritable directory: serve what was replayed, refuse appends */
        set_error_locked(w, -lock_errno, "wal: %s: %s", path, strerror(lock_errno));
    rc = pthread_create(&w->thread, NULL, worker, w);
    if (rc) {
        snprintf(err, errlen, "tsdb: cannot start the WAL thread: %s", strerror(rc));
        rc = -rc;
        goto fail;
    }
    w->thread_started = 1;
    if (w->loop) {
        ev_async_init(&w->async, on_async);
        ev_async_start(w->loop, &w->async);
        ev_unref(w->loop); /* the store alone does not keep the loop running */
        double every = (double)opt->snapshot_every_s;
        ev_timer_init(&w->snap_timer, on_snap_timer, every, every);
        ev_timer_start(w->loop, &w->snap_timer);
        ev_unref(w->loop);
    }
    *out = w;
    return 0;
fail:
    if (w->lock_fd >= 0) close(w->lock_fd);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->wake);
    pthread_cond_destroy(&w->done);
    free(w->dir);
    free(w);
    return rc;
}

void tsdb__wal_close(tsdb_wal *w) {
    if (!w) return;
    if (w->loop) {
        ev_ref(w->loop);
        ev_async_stop(w->loop, &w->async);
        ev_ref(w->loop);
        ev_timer_stop(w->loop, &w->snap_timer);
    }
    if (w->thread_started) {
        pthread_mutex_lock(&w->mu);
        w->stop = 1;
        pthread_cond_signal(&w->wake);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->thread, NULL);
        w->thread_started = 0;
    }
    complete_pending(w, /* final = */ 1);
    free(w->pend);
    finish_snapshots(w);
    while (w->head) {
        item *n = w->head->next;
        if (w->head->kind == ITEM_BLOCK && w->head->off < w->head->len)
            log_error("tsdb", "closing with %zu WAL bytes unwritten (%s)",
                      w->head->len - w->head->off, w->errtext);
        if (w->head->kind == ITEM_SNAPSHOT) /* never written: the worker stopped on an error */
            w->opt.snapshot_done(w->opt.arg, w->head->snap, -ECANCELED);
        free(w->head->buf);
        free(w->head);
        w->head = n;
    }
    if (w->fd >= 0) close(w->fd);
    if (w->lock_fd >= 0) close(w->lock_fd);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->wake);
    pthread_cond_destroy(&w->done);
    free(w->dir);
    free(w);
}
