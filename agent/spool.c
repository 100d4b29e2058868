/* spool.c: the agent's bounded on-disk spool of unacknowledged batches (see spool.h).
 *
 * On disk: DIR/seg-<first seq, 20 digits>.spool files, each a run of frames
 *   magic u32 | seq u64 | len u32 | crc u32 | payload[len]      (little endian)
 * where crc is CRC-32C over seq, len and the payload; and DIR/acked, the highest acknowledged
 * seq as text. In memory: the list of segments and an index of the unacknowledged frames
 * (seq, segment, offset, length), so reads never scan. */
#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define SPOOL_MAGIC 0x31505354u /* "TSP1" */
#define HDR_LEN 20u

typedef struct seg {
    uint64_t first_seq, last_seq;
    uint64_t bytes;   /* file size */
    uint64_t nframes; /* frames in the file */
} seg;

typedef struct frame_ix {
    uint64_t seq;
    uint64_t first_seq_of_seg; /* identifies the segment file */
    uint64_t off;
    uint32_t len;
} frame_ix;

struct spool {
    char dir[PATH_MAX - 64];
    uint64_t max_bytes, seg_max;
    seg *segs;
    size_t nsegs, segcap;
    frame_ix *ix; /* unacknowledged frames, ascending seq; live entries are ix[ixhead..ixlen) */
    size_t ixhead, ixlen, ixcap;
    int wfd;      /* segment being appended to (the last one), or -1 */
    int lockfd;   /* DIR/lock, flock'ed while open */
    int ack_dirty; /* acked_seq not yet written (no segment needed it) */
    uint64_t total_bytes;
    spool_stats st;
};

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int rc, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* ---- CRC-32C (Castagnoli), reflected, table-driven ---------------------------------------- */
static uint32_t crc_table[256];

static void crc_init(void) {
    if (crc_table[1]) return;
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
        crc_table[i] = c;
    }
}

static uint32_t crc32c(uint32_t crc, const void *data, size_t n) {
    const uint8_t *p = data;
    crc = ~crc;
    while (n--) crc = crc_table[(crc ^ *p++) & 0xffu] ^ (crc >> 8);
    return ~crc;
}

static void put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get32(const uint8_t *p) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}
static uint64_t get64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static uint32_t frame_crc(const uint8_t *hdr, const void *payload, size_t len) {
    uint32_t c = crc32c(0, hdr + 4, 12); /* seq + len */
    return crc32c(c, payload, len);
}

static void seg_path(const spool *sp, uint64_t first_seq, char *out, size_t outlen) {
    snprintf(out, outlen, "%s/seg-%020" PRIu64 ".spool", sp->dir, first_seq);
}

/* ---- in-memory lists ---------------------------------------------------------------------- */

static int segs_push(spool *sp, seg s) {
    if (sp->nsegs == sp->segcap) {
        size_t nc = sp->segcap ? sp->segcap * 2 : 16;
        seg *n = realloc(sp->segs, nc * sizeof *n);
        if (!n) return -ENOMEM;
        sp->segs = n;
        sp->segcap = nc;
    }
    sp->segs[sp->nsegs++] = s;
    return 0;
}

static int ix_push(spool *sp, frame_ix f) {
    if (sp->ixlen == sp->ixcap) {
        if (sp->ixhead > 0) { /* compact before growing */
            memmove(sp->ix, sp->ix + sp->ixhead, (sp->ixlen - sp->ixhead) * sizeof *sp->ix);
            sp->ixlen -= sp->ixhead;
            sp->ixhead = 0;
        }
        if (sp->ixlen == sp->ixcap) {
            size_t nc = sp->ixcap ? sp->ixcap * 2 : 256;
            frame_ix *n = realloc(sp->ix, nc * sizeof *n);
            if (!n) return -ENOMEM;
            sp->ix = n;
            sp->ixcap = nc;
        }
    }
    sp->ix[sp->ixlen++] = f;
    return 0;
}

static void ix_drop_through(spool *sp, uint64_t seq) {
    while (sp->ixhead < sp->ixlen && sp->ix[sp->ixhead].seq <= seq) sp->ixhead++;
    if (sp->ixhead == sp->ixlen) sp->ixhead = sp->ixlen = 0;
}

static uint64_t ix_count(const spool *sp) { return sp->ixlen - sp->ixhead; }

/* Deletes the oldest segment. `dropped`: its unacknowledged frames count as dropped. */
static void drop_oldest_seg(spool *sp, int dropped) {
    seg s = sp->segs[0];
    if (sp->nsegs == 1 && sp->wfd >= 0) {
        close(sp->wfd);
        sp->wfd = -1;
    }
    char path[PATH_MAX];
    seg_path(sp, s.first_seq, path, sizeof path);
    unlink(path);
    if (dropped) {
        /* Unacknowledged frames of this segment: the index entries belonging to it. */
        while (sp->ixhead < sp->ixlen && sp->ix[sp->ixhead].first_seq_of_seg == s.first_seq) {
            sp->st.dropped_frames++;
            sp->st.dropped_bytes += HDR_LEN + sp->ix[sp->ixhead].len;
            sp->ixhead++;
        }
        if (sp->ixhead == sp->ixlen) sp->ixhead = sp->ixlen = 0;
    }
    sp->total_bytes -= s.bytes;
    memmove(sp->segs, sp->segs + 1, (sp->nsegs - 1) * sizeof *sp->segs);
    sp->nsegs--;
}

/* ---- ack file ----------------------------------------------------------------------------- */

static int write_acked(spool *sp) {
    char path[PATH_MAX], tmp[PATH_MAX], text[32];
    snprintf(path, sizeof path, "%s/acked", sp->dir);
    snprintf(tmp, sizeof tmp, "%s/acked.tmp", sp->dir);
    int n = snprintf(text, sizeof text, "%" PRIu64 "\n", sp->st.acked_seq);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return -errno;
    if (write(fd, text, (size_t)n) != n) {
        int e = errno ? -errno : -EIO;
        close(fd);
        unlink(tmp);
        return e;
    }
    close(fd);
    if (rename(tmp, path) < 0) return -errno;
    return 0;
}

static void read_acked(spool *sp) {
    char path[PATH_MAX], text[32] = {0};
    snprintf(path, sizeof path, "%s/acked", sp->dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    if (n <= 0) return;
    char *end = NULL;
    unsigned long long v = strtoull(text, &end, 10);
    if (end != text && (*end == '\n' || *end == '\0')) sp->st.acked_seq = v;
}

/* ---- open: scan segments ------------------------------------------------------------------ */

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Scans one segment file, indexing its valid frames and cutting a torn or corrupt tail. */
static int scan_segment(spool *sp, uint64_t first_seq) {
    char path[PATH_MAX];
    seg_path(sp, first_seq, path, sizeof path);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) return -errno;
    struct stat stb;
    if (fstat(fd, &stb) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    uint64_t size = (uint64_t)stb.st_size, off = 0;
    seg s = {0, 0, 0, 0};
    uint8_t hdr[HDR_LEN];
    uint8_t *payload = NULL;
    size_t pcap = 0;
    int rc = 0;
    while (off + HDR_LEN <= size) {
        if (pread(fd, hdr, HDR_LEN, (off_t)off) != (ssize_t)HDR_LEN) break;
        uint64_t seq = get64(hdr + 4);
        uint32_t len = get32(hdr + 12);
        if (get32(hdr) != SPOOL_MAGIC || len > sp->max_bytes || off + HDR_LEN + len > size) break;
        if (len > pcap) {
            uint8_t *np = realloc(payload, len);
            if (!np) {
                rc = -ENOMEM;
                goto out;
            }
            payload = np;
            pcap = len;
        }
        if (len && pread(fd, payload, len, (off_t)(off + HDR_LEN)) != (ssize_t)len) break;
        if (frame_crc(hdr, payload, len) != get32(hdr + 16)) break;
        /* Sequences must keep growing across the whole spool. */
        if (seq <= sp->st.last_seq && sp->st.last_seq != 0) break;
        if (s.nframes == 0) s.first_seq = seq;
        s.last_seq = seq;
        s.nframes++;
        sp->st.last_seq = seq;
        if (seq > sp->st.acked_seq) {
            rc = ix_push(sp, (frame_ix){seq, first_seq, off, len});
            if (rc < 0) goto out;
        }
        off += HDR_LEN + len;
    }
    if (off < size) { /* torn or corrupt tail: keep what is good */
        sp->st.corrupt_frames++;
        if (ftruncate(fd, (off_t)off) < 0) {
            rc = -errno;
            goto out;
        }
    }
    s.bytes = off;
    if (s.nframes == 0) {
        unlink(path);
        goto out;
    }
    /* The file keeps its name; index entries refer to it by that name's seq. */
    s.first_seq = first_seq;
    rc = segs_push(sp, s);
    if (rc == 0) sp->total_bytes += s.bytes;
out:
    free(payload);
    close(fd);
    return rc;
}

static int mkdir_p(const char *dir) {
    char tmp[PATH_MAX];
    if (strlen(dir) >= sizeof tmp) return -ENAMETOOLONG;
    strcpy(tmp, dir);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(tmp, 0700) < 0 && errno != EEXIST) return -errno;
        *p = '/';
    }
    if (mkdir(tmp, 0700) < 0 && errno != EEXIST) return -errno;
    struct stat st;
    if (stat(tmp, &st) < 0) return -errno;
    if (!S_ISDIR(st.st_mode)) return -ENOTDIR;
    return 0;
}

/* Deletes leading segments holding only acknowledged frames. */
static void drop_acked_segs(spool *sp) {
    while (sp->nsegs > 0 && sp->segs[0].last_seq <= sp->st.acked_seq) drop_oldest_seg(sp, 0);
}

int spool_open(spool **out, const char *dir, uint64_t max_bytes, char *err, size_t errlen) {
    *out = NULL;
    crc_init();
    if (max_bytes < SPOOL_MIN_BYTES)
        return fail(err, errlen, -EINVAL, "spool: size %" PRIu64 " is below the minimum %u",
                    max_bytes, SPOOL_MIN_BYTES);
    spool *sp = calloc(1, sizeof *sp);
    if (!sp) return fail(err, errlen, -ENOMEM, "spool: out of memory");
    sp->wfd = -1;
    sp->lockfd = -1;
    if (strlen(dir) >= sizeof sp->dir) {
        free(sp);
        return fail(err, errlen, -ENAMETOOLONG, "spool: directory name too long");
    }
    strcpy(sp->dir, dir);
    sp->max_bytes = max_bytes;
    sp->seg_max = max_bytes / 8;
    int rc = mkdir_p(dir);
    if (rc < 0) {
        free(sp);
        return fail(err, errlen, rc, "spool: cannot create %s: %s", dir, strerror(-rc));
    }
    char lockpath[PATH_MAX];
    snprintf(lockpath, sizeof lockpath, "%s/lock", dir);
    sp->lockfd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (sp->lockfd < 0 || flock(sp->lockfd, LOCK_EX | LOCK_NB) < 0) {
        rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
        spool_close(sp);
        return fail(err, errlen, rc, "spool: %s %s", dir,
                    rc == -EBUSY ? "is in use by another agent" : strerror(-rc));
    }
    read_acked(sp);
    DIR *d = opendir(dir);
    if (!d) {
        rc = -errno;
        spool_close(sp);
        return fail(err, errlen, rc, "spool: cannot open %s: %s", dir, strerror(-rc));
    }
    uint64_t *firsts = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        unsigned long long fs;
        char tail[16];
        if (sscanf(de->d_name, "seg-%20llu.%15s", &fs, tail) != 2 || strcmp(tail, "spool") != 0)
            continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 32;
            uint64_t *nf = realloc(firsts, nc * sizeof *nf);
            if (!nf) {
                rc = -ENOMEM;
                break;
            }
            firsts = nf;
            cap = nc;
        }
        firsts[n++] = fs;
    }
    closedir(d);
    if (rc == 0) {
        if (n > 1) qsort(firsts, n, sizeof *firsts, cmp_u64);
        for (size_t i = 0; i < n && rc == 0; i++) rc = scan_segment(sp, firsts[i]);
    }
    free(firsts);
    if (rc < 0) {
        spool_close(sp);
        return fail(err, errlen, rc, "spool: cannot read %s: %s", dir, strerror(-rc));
    }
    if (sp->st.acked_seq > sp->st.last_seq) sp->st.last_seq = sp->st.acked_seq;
    drop_acked_segs(sp);
    /* A bound lowered since the last run: keep the newest data that fits. */
    while (sp->total_bytes > sp->max_bytes && sp->nsegs > 0) drop_oldest_seg(sp, 1);
    *out = sp;
    return 0;
}

void spool_close(spool *sp) {
    if (!sp) return;
    if (sp->wfd >= 0) {
        fdatasync(sp->wfd);
        close(sp->wfd);
    }
    if (sp->lockfd >= 0) close(sp->lockfd);
    free(sp->segs);
    free(sp->ix);
    free(sp);
}

/* Starts a new segment file for a frame with sequence seq. */
static int roll(spool *sp, uint64_t seq) {
    if (sp->wfd >= 0) {
        close(sp->wfd);
        sp->wfd = -1;
    }
    char path[PATH_MAX];
    seg_path(sp, seq, path, sizeof path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return -errno;
    int rc = segs_push(sp, (seg){seq, 0, 0, 0}); /* named after its first frame */
    if (rc < 0) {
        close(fd);
        unlink(path);
        return rc;
    }
    sp->wfd = fd;
    return 0;
}

int spool_append(spool *sp, uint64_t seq, const void *data, size_t len, char *err, size_t errlen) {
    uint64_t fsz = HDR_LEN + (uint64_t)len;
    if (fsz > sp->max_bytes / 4)
        return fail(err, errlen, -EMSGSIZE,
                    "spool: frame of %zu bytes exceeds a quarter of the spool (%" PRIu64 ")", len,
                    sp->max_bytes);
    if (seq <= sp->st.last_seq)
        return fail(err, errlen, -EINVAL, "spool: seq %" PRIu64 " is not above the last %" PRIu64,
                    seq, sp->st.last_seq);
    while (sp->nsegs > 0 && sp->total_bytes + fsz > sp->max_bytes) drop_oldest_seg(sp, 1);
    seg *cur = sp->nsegs ? &sp->segs[sp->nsegs - 1] : NULL;
    if (sp->wfd < 0 || !cur || cur->bytes + fsz > sp->seg_max) {
        if (sp->ack_dirty && write_acked(sp) == 0) sp->ack_dirty = 0;
        int rc = roll(sp, seq);
        if (rc < 0)
            return fail(err, errlen, rc, "spool: cannot create a segment in %s: %s", sp->dir,
                        strerror(-rc));
        cur = &sp->segs[sp->nsegs - 1];
    }
    uint8_t hdr[HDR_LEN];
    put32(hdr, SPOOL_MAGIC);
    put64(hdr + 4, seq);
    put32(hdr + 12, (uint32_t)len);
    put32(hdr + 16, frame_crc(hdr, data, len));
    struct iovec iov[2] = {{hdr, HDR_LEN}, {(void *)data, len}};
    ssize_t w = pwritev(sp->wfd, iov, 2, (off_t)cur->bytes);
    if (w != (ssize_t)fsz) {
        int e = w < 0 ? -errno : -ENOSPC;
        if (ftruncate(sp->wfd, (off_t)cur->bytes) < 0) { /* keep the file consistent */
            close(sp->wfd);
            sp->wfd = -1;
        }
        return fail(err, errlen, e, "spool: write to %s failed: %s", sp->dir, strerror(-e));
    }
    int rc = ix_push(sp, (frame_ix){seq, cur->first_seq, cur->bytes, (uint32_t)len});
    if (rc < 0) {
        /* Unindexed frame: cut it again so a restart does not resurrect it out of order. */
        if (ftruncate(sp->wfd, (off_t)cur->bytes) < 0) {
            close(sp->wfd);
            sp->wfd = -1;
        }
        return fail(err, errlen, rc, "spool: out of memory");
    }
    cur->last_seq = seq;
    cur->nframes++;
    cur->bytes += fsz;
    sp->total_bytes += fsz;
    sp->st.last_seq = seq;
    return 0;
}

int spool_read_next(spool *sp, uint64_t after_seq, uint64_t *seq, void **data, size_t *len) {
    if (after_seq < sp->st.acked_seq) after_seq = sp->st.acked_seq;
    for (;;) {
        /* Binary search for the first indexed frame with seq > after_seq. */
        size_t lo = sp->ixhead, hi = sp->ixlen;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (sp->ix[mid].seq <= after_seq) lo = mid + 1;
            else hi = mid;
        }
        if (lo >= sp->ixlen) return 0;
        frame_ix f = sp->ix[lo];
        char path[PATH_MAX];
        seg_path(sp, f.first_seq_of_seg, path, sizeof path);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) return -errno;
        uint8_t hdr[HDR_LEN];
        uint8_t *buf = malloc(f.len ? f.len : 1);
        if (!buf) {
            close(fd);
            return -ENOMEM;
        }
        int ok = pread(fd, hdr, HDR_LEN, (off_t)f.off) == (ssize_t)HDR_LEN &&
                 (f.len == 0 || pread(fd, buf, f.len, (off_t)(f.off + HDR_LEN)) == (ssize_t)f.len) &&
                 get32(hdr) == SPOOL_MAGIC && get64(hdr + 4) == f.seq && get32(hdr + 12) == f.len &&
                 frame_crc(hdr, buf, f.len) == get32(hdr + 16);
        close(fd);
        if (ok) {
            *seq = f.seq;
            *data = buf;
            *len = f.len;
            return 1;
        }
        free(buf);
        sp->st.corrupt_frames++;
        after_seq = f.seq; /* skip it, try the next */
    }
}

int spool_ack(spool *sp, uint64_t acked) {
    if (acked <= sp->st.acked_seq) return 0;
    sp->st.acked_seq = acked;
    ix_drop_through(sp, acked);
    drop_acked_segs(sp);
    /* The ack point on disk only matters for frames still on disk: with none, the control
     * plane's ACKs (one a second) cost no file writes. */
    if (sp->nsegs == 0) {
        sp->ack_dirty = 1;
        return 0;
    }
    sp->ack_dirty = 0;
    return write_acked(sp);
}

void spool_get_stats(const spool *sp, spool_stats *st) {
    *st = sp->st;
    st->frames = ix_count(sp);
    st->bytes = sp->total_bytes;
    st->first_seq = st->frames ? sp->ix[sp->ixhead].seq : 0;
}
