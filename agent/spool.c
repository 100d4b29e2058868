/* spool.c: the agent's bounded on-disk spool of unacknowledged batches (see spool.h).
 *
 * On disk: DIR/seg-<first seq, 20 digits>.spool files, each a run of frames
 *   magic u32 | seq u64 | len u32 | crc u32 | payload[len]      (little endian)
 * where crc is CRC-32C over seq, len and the payload; DIR/acked, the highest acknowledged seq
 * as text; DIR/lock, flock'ed by the owner. In memory: only the list of segments (first and
 * last seq, size, frame counts) and two cursors into them, one where acknowledged frames end
 * and one where the last read stopped: memory does not grow with the frames held, and reading
 * the spool oldest first costs one pass over it. */
#include "spool.h"

#include "errmsg.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
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
    uint64_t name; /* the file's name: seq of its first frame when created */
    uint64_t first_seq, last_seq;
    uint64_t bytes;        /* file size */
    uint64_t nframes;      /* frames in the file */
    uint64_t acked_frames; /* leading frames with seq <= acked_seq ... */
    uint64_t ack_off;      /* ... and the offset right after them */
    uint64_t next_unacked; /* seq of the frame at ack_off (when ack_off < bytes) */
} seg;

struct spool {
    char dir[PATH_MAX - 64];
    uint64_t max_bytes, seg_max;
    seg *segs;
    size_t nsegs, segcap;
    int wfd;       /* segment being appended to (the last one), or -1 */
    int lockfd;    /* DIR/lock, flock'ed while open */
    int ack_dirty; /* acked_seq not yet written (no segment needed it) */
    uint64_t total_bytes;
    uint64_t unacked; /* frames held with seq > acked_seq */
    /* read cursor: the frame after the last one spool_read_next returned */
    uint64_t rd_name, rd_off, rd_prev_seq;
    int rd_valid;
    spool_stats st;
};

/* ---- CRC-32C (Castagnoli), reflected, table-driven ---------------------------------------- */
static uint32_t crc_table[256];

static void crc_init(void) {
    if (crc_table[1]) return;
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
        crc_table[i] = c;
    }
}

static uint32_t crc32c(uint32_t crc, const void *data, size_t n) {
    const uint8_t *p = data;
    crc = ~crc;
    while (n--)
        crc = crc_table[(crc ^ *p++) & 0xffu] ^ (crc >> 8);
    return ~crc;
}

static void put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get32(const uint8_t *p) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}
static uint64_t get64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
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

/* Reads the header of the frame at off in an open segment file. Returns 1 with *seq and *len
 * when it is a well-formed header whose payload fits in the file, 0 when not (end of the
 * valid data), -errno on a read error. */
static int read_header(int fd, uint64_t off, uint64_t size, uint64_t max_len, uint8_t hdr[HDR_LEN],
                       uint64_t *seq, uint32_t *len) {
    if (off + HDR_LEN > size) return 0;
    ssize_t n = pread(fd, hdr, HDR_LEN, (off_t)off);
    if (n < 0) return -errno;
    if (n != (ssize_t)HDR_LEN || get32(hdr) != SPOOL_MAGIC) return 0;
    *seq = get64(hdr + 4);
    *len = get32(hdr + 12);
    if (*len > max_len || off + HDR_LEN + *len > size) return 0;
    return 1;
}

/* Reads and checks a frame's payload into a malloc'd buffer. 1 ok, 0 CRC mismatch, -errno. */
static int read_payload(int fd, uint64_t off, const uint8_t hdr[HDR_LEN], uint32_t len,
                        void **out) {
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) return -ENOMEM;
    if (len && pread(fd, buf, len, (off_t)(off + HDR_LEN)) != (ssize_t)len) {
        free(buf);
        return 0;
    }
    if (frame_crc(hdr, buf, len) != get32(hdr + 16)) {
        free(buf);
        return 0;
    }
    *out = buf;
    return 1;
}

static int open_seg(const spool *sp, const seg *g, int flags) {
    char path[PATH_MAX];
    seg_path(sp, g->name, path, sizeof path);
    return open(path, flags | O_CLOEXEC);
}

/* Moves g's ack cursor over its frames with seq <= acked_seq (reading their headers from
 * where it stopped), keeping sp->unacked in step. */
static void advance_ack(spool *sp, seg *g) {
    if (g->acked_frames == g->nframes || g->next_unacked > sp->st.acked_seq) return;
    if (g->last_seq <= sp->st.acked_seq) { /* all of it: no need to read */
        sp->unacked -= g->nframes - g->acked_frames;
        g->acked_frames = g->nframes;
        g->ack_off = g->bytes;
        return;
    }
    int fd = open_seg(sp, g, O_RDONLY);
    if (fd < 0) return; /* retried at the next ack */
    uint8_t hdr[HDR_LEN];
    uint64_t seq;
    uint32_t len;
    while (g->acked_frames < g->nframes &&
           read_header(fd, g->ack_off, g->bytes, sp->max_bytes, hdr, &seq, &len) == 1) {
        g->next_unacked = seq;
        if (seq > sp->st.acked_seq) break;
        g->ack_off += HDR_LEN + len;
        g->acked_frames++;
        sp->unacked--;
    }
    close(fd);
}

/* Deletes the oldest segment. `dropped`: its unacknowledged frames count as dropped. */
static void drop_oldest_seg(spool *sp, int dropped) {
    seg s = sp->segs[0];
    if (sp->nsegs == 1 && sp->wfd >= 0) {
        close(sp->wfd);
        sp->wfd = -1;
    }
    char path[PATH_MAX];
    seg_path(sp, s.name, path, sizeof path);
    unlink(path);
    uint64_t unacked = s.nframes - s.acked_frames;
    if (dropped) {
        sp->st.dropped_frames += unacked;
        sp->st.dropped_bytes += s.bytes - s.ack_off;
    }
    sp->unacked -= unacked;
    if (sp->rd_valid && sp->rd_name == s.name) sp->rd_valid = 0;
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

/* Scans one segment file: counts its valid frames and cuts a torn or corrupt tail. */
static int scan_segment(spool *sp, uint64_t name) {
    char path[PATH_MAX];
    seg_path(sp, name, path, sizeof path);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) return -errno;
    struct stat stb;
    if (fstat(fd, &stb) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    uint64_t size = (uint64_t)stb.st_size, off = 0;
    seg g = {.name = name};
    uint8_t hdr[HDR_LEN];
    int rc = 0, acked_run = 1;
    for (;;) {
        uint64_t seq;
        uint32_t len;
        int h = read_header(fd, off, size, sp->max_bytes, hdr, &seq, &len);
        if (h < 0) {
            rc = h;
            goto out;
        }
        if (h == 0) break;
        void *payload = NULL;
        int p = read_payload(fd, off, hdr, len, &payload);
        if (p < 0) {
            rc = p;
            goto out;
        }
        free(payload);
        /* Sequences must keep growing across the whole spool. */
        if (p == 0 || (sp->st.last_seq != 0 && seq <= sp->st.last_seq)) break;
        if (g.nframes == 0) g.first_seq = seq;
        g.last_seq = seq;
        g.nframes++;
        sp->st.last_seq = seq;
        off += HDR_LEN + len;
        if (acked_run && seq <= sp->st.acked_seq) {
            g.acked_frames++;
            g.ack_off = off;
        } else {
            if (acked_run) g.next_unacked = seq;
            acked_run = 0;
            sp->unacked++;
        }
    }
    if (off < size) { /* torn or corrupt tail: keep what is good */
        sp->st.corrupt_frames++;
        if (ftruncate(fd, (off_t)off) < 0) {
            rc = -errno;
            goto out;
        }
    }
    g.bytes = off;
    if (g.nframes == 0) {
        unlink(path);
        goto out;
    }
    rc = segs_push(sp, g);
    if (rc == 0)
        sp->total_bytes += g.bytes;
    else
        sp->unacked -= g.nframes - g.acked_frames;
out:
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
    while (sp->nsegs > 0 && sp->segs[0].last_seq <= sp->st.acked_seq)
        drop_oldest_seg(sp, 0);
}

int spool_open(spool **out, const char *dir, uint64_t max_bytes, char *err, size_t errlen) {
    *out = NULL;
    crc_init();
    if (max_bytes < SPOOL_MIN_BYTES)
        return errmsg(err, errlen, -EINVAL, "spool: size %" PRIu64 " is below the minimum %u",
                      max_bytes, SPOOL_MIN_BYTES);
    spool *sp = calloc(1, sizeof *sp);
    if (!sp) return errmsg(err, errlen, -ENOMEM, "spool: out of memory");
    sp->wfd = -1;
    sp->lockfd = -1;
    if (strlen(dir) >= sizeof sp->dir) {
        free(sp);
        return errmsg(err, errlen, -ENAMETOOLONG, "spool: directory name too long");
    }
    strcpy(sp->dir, dir);
    sp->max_bytes = max_bytes;
    sp->seg_max = max_bytes / 8;
    int rc = mkdir_p(dir);
    if (rc < 0) {
        free(sp);
        return errmsg(err, errlen, rc, "spool: cannot create %s: %s", dir, strerror(-rc));
    }
    char lockpath[PATH_MAX];
    snprintf(lockpath, sizeof lockpath, "%s/lock", dir);
    sp->lockfd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (sp->lockfd < 0 || flock(sp->lockfd, LOCK_EX | LOCK_NB) < 0) {
        rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
        spool_close(sp);
        return errmsg(err, errlen, rc, "spool: %s %s", dir,
                      rc == -EBUSY ? "is in use by another agent" : strerror(-rc));
    }
    read_acked(sp);
    DIR *d = opendir(dir);
    if (!d) {
        rc = -errno;
        spool_close(sp);
        return errmsg(err, errlen, rc, "spool: cannot open %s: %s", dir, strerror(-rc));
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
        for (size_t i = 0; i < n && rc == 0; i++)
            rc = scan_segment(sp, firsts[i]);
    }
    free(firsts);
    if (rc < 0) {
        spool_close(sp);
        return errmsg(err, errlen, rc, "spool: cannot read %s: %s", dir, strerror(-rc));
    }
    if (sp->st.acked_seq > sp->st.last_seq) sp->st.last_seq = sp->st.acked_seq;
    drop_acked_segs(sp);
    /* A bound lowered since the last run: keep the newest data that fits. */
    while (sp->total_bytes > sp->max_bytes && sp->nsegs > 0)
        drop_oldest_seg(sp, 1);
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
    int rc = segs_push(sp, (seg){.name = seq, .first_seq = seq}); /* named after its first frame */
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
        return errmsg(err, errlen, -EMSGSIZE,
                      "spool: frame of %zu bytes exceeds a quarter of the spool (%" PRIu64 ")", len,
                      sp->max_bytes);
    if (seq <= sp->st.last_seq)
        return errmsg(err, errlen, -EINVAL, "spool: seq %" PRIu64 " is not above the last %" PRIu64,
                      seq, sp->st.last_seq);
    while (sp->nsegs > 0 && sp->total_bytes + fsz > sp->max_bytes)
        drop_oldest_seg(sp, 1);
    seg *cur = sp->nsegs ? &sp->segs[sp->nsegs - 1] : NULL;
    if (sp->wfd < 0 || !cur || cur->bytes + fsz > sp->seg_max) {
        if (sp->ack_dirty && write_acked(sp) == 0) sp->ack_dirty = 0;
        int rc = roll(sp, seq);
        if (rc < 0)
            return errmsg(err, errlen, rc, "spool: cannot create a segment in %s: %s", sp->dir,
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
        return errmsg(err, errlen, e, "spool: write to %s failed: %s", sp->dir, strerror(-e));
    }
    if (cur->nframes == 0) cur->first_seq = seq;
    if (cur->acked_frames == cur->nframes) cur->next_unacked = seq;
    cur->last_seq = seq;
    cur->nframes++;
    cur->bytes += fsz;
    sp->total_bytes += fsz;
    sp->unacked++;
    sp->st.last_seq = seq;
    return 0;
}

int spool_read_next(spool *sp, uint64_t after_seq, uint64_t *seq, void **data, size_t *len) {
    if (after_seq < sp->st.acked_seq) after_seq = sp->st.acked_seq;
    for (size_t i = 0; i < sp->nsegs; i++) {
        seg *g = &sp->segs[i];
        if (g->last_seq <= after_seq || g->nframes == 0) continue;
        /* Where to start: the read cursor when it is in this segment and not past after_seq,
         * else the end of the acknowledged frames. */
        uint64_t off = g->ack_off;
        if (sp->rd_valid && sp->rd_name == g->name && sp->rd_prev_seq <= after_seq &&
            sp->rd_off > off)
            off = sp->rd_off;
        int fd = open_seg(sp, g, O_RDONLY);
        if (fd < 0) return -errno;
        for (;;) {
            uint8_t hdr[HDR_LEN];
            uint64_t s;
            uint32_t l;
            int h = read_header(fd, off, g->bytes, sp->max_bytes, hdr, &s, &l);
            if (h < 0) {
                close(fd);
                return h;
            }
            if (h == 0) { /* damaged since it was written: skip the rest of this segment */
                if (off < g->bytes) sp->st.corrupt_frames++;
                break;
            }
            uint64_t next = off + HDR_LEN + l;
            if (s > after_seq) {
                void *buf = NULL;
                int p = read_payload(fd, off, hdr, l, &buf);
                if (p < 0) {
                    close(fd);
                    return p;
                }
                if (p == 1) {
                    close(fd);
                    *seq = s;
                    *data = buf;
                    *len = l;
                    sp->rd_valid = 1;
                    sp->rd_name = g->name;
                    sp->rd_off = next;
                    sp->rd_prev_seq = s;
                    return 1;
                }
                sp->st.corrupt_frames++; /* CRC no longer holds: skip this frame */
                after_seq = s;
            }
            off = next;
        }
        close(fd);
    }
    return 0;
}

int spool_ack(spool *sp, uint64_t acked) {
    if (acked <= sp->st.acked_seq) return 0;
    sp->st.acked_seq = acked;
    drop_acked_segs(sp);
    if (sp->nsegs > 0) advance_ack(sp, &sp->segs[0]);
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
    st->frames = sp->unacked;
    st->bytes = sp->total_bytes;
    st->first_seq = 0;
    for (size_t i = 0; i < sp->nsegs && sp->unacked; i++) {
        const seg *g = &sp->segs[i];
        if (g->acked_frames < g->nframes) {
            st->first_seq = g->acked_frames ? g->next_unacked : g->first_seq;
            break;
        }
    }
}
