/* replica_cgroup.c: resolve a replica's cgroup in every hierarchy, freeze/thaw, reclaim memory. */
#include "actions/replica_cgroup.h"
#include "work.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define container_of(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))

/* ---- parsers ---------------------------------------------------------------------------- */

/* Copies whitespace-separated word starting at *p (within end) to buf, decoding the octal
 * escapes mountinfo uses (\040 for a space). Returns 0, or -1 when there is no word or it does
 * not fit. */
static int take_word(const char **p, const char *end, char *buf, size_t cap) {
    const char *s = *p;
    while (s < end && *s == ' ')
        s++;
    if (s >= end) return -1;
    size_t o = 0;
    while (s < end && *s != ' ') {
        char c = *s++;
        if (c == '\\' && end - s >= 3 && s[0] >= '0' && s[0] <= '3' && s[1] >= '0' && s[1] <= '7' &&
            s[2] >= '0' && s[2] <= '7') {
            c = (char)((s[0] - '0') * 64 + (s[1] - '0') * 8 + (s[2] - '0'));
            s += 3;
        }
        if (o + 1 >= cap) return -1;
        buf[o++] = c;
    }
    buf[o] = '\0';
    *p = s;
    return 0;
}

static int tokens_subset(const char *list, size_t n, const char *opts);

int rcg_parse_mountinfo(const char *text, size_t len, rcg_hierarchies *hs, char *err,
                        size_t errlen) {
    size_t pos = 0;
    int lineno = 0;
    hs->n = 0;
    while (pos < len) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        const char *end = nl ? nl : text + len;
        pos = (size_t)(end - text) + (nl ? 1 : 0);
        lineno++;
        if (end == line) continue;
        char w[256], mnt[256], fstype[64];
        const char *p = line;
        /* id, parent, maj:min, root, mount point */
        if (take_word(&p, end, w, sizeof w) || take_word(&p, end, w, sizeof w) ||
            take_word(&p, end, w, sizeof w) || take_word(&p, end, w, sizeof w))
            goto bad;
        if (take_word(&p, end, mnt, sizeof mnt)) {
            /* a mount point longer than we keep cannot be a cgroup hierarchy we use: skip it */
            continue;
        }
        /* per-mount options, optional fields, then "-" */
        for (;;) {
            if (take_word(&p, end, w, sizeof w)) goto bad;
            if (strcmp(w, "-") == 0) break;
        }
        if (take_word(&p, end, fstype, sizeof fstype)) goto bad;
        int v2 = strcmp(fstype, "cgroup2") == 0;
        if (!v2 && strcmp(fstype, "cgroup") != 0) continue;
        char source[256], opts[256];
        if (take_word(&p, end, source, sizeof source) || take_word(&p, end, opts, sizeof opts))
            goto bad;
        /* the same hierarchy mounted again (a bind mount) adds nothing: keep the first */
        int dup = 0;
        for (int i = 0; i < hs->n; i++)
            dup |= hs->h[i].v2 == v2 && (v2 || strcmp(hs->h[i].options, opts) == 0);
        if (dup || hs->n >= RCG_MAX_HIER) continue;
        rcg_hierarchy *h = &hs->h[hs->n++];
        h->v2 = v2;
        snprintf(h->mount, sizeof h->mount, "%s", mnt);
        snprintf(h->options, sizeof h->options, "%s", v2 ? "" : opts);
        h->favordynmods = tokens_subset("favordynmods", 12, opts);
        continue;
    bad:
        snprintf(err, errlen, "mountinfo line %d is malformed", lineno);
        return -EINVAL;
    }
    return 0;
}

/* Is every comma-separated token of list among the comma-separated tokens of opts? */
static int tokens_subset(const char *list, size_t n, const char *opts) {
    if (n == 0) return 0;
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && list[j] != ',')
            j++;
        size_t tl = j - i;
        int found = 0;
        for (const char *o = opts; *o;) {
            const char *c = strchr(o, ',');
            size_t ol = c ? (size_t)(c - o) : strlen(o);
            if (ol == tl && memcmp(o, list + i, tl) == 0) {
                found = 1;
                break;
            }
            if (!c) break;
            o = c + 1;
        }
        if (!found || tl == 0) return 0;
        i = j + 1;
    }
    return 1;
}

int rcg_parse_proc_cgroup(const char *text, size_t len, const rcg_hierarchy *h, char *path,
                          size_t cap) {
    size_t pos = 0;
    while (pos < len) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos;
        pos += n + (nl ? 1 : 0);
        if (n == 0) continue;
        const char *c1 = memchr(line, ':', n);
        const char *c2 = c1 ? memchr(c1 + 1, ':', n - (size_t)(c1 + 1 - line)) : NULL;
        if (!c1 || !c2) return -EINVAL;
        size_t cl = (size_t)(c2 - c1 - 1);
        int match = h->v2 ? (cl == 0 && c1 - line == 1 && line[0] == '0')
                          : tokens_subset(c1 + 1, cl, h->options);
        if (!match) continue;
        size_t pl = n - (size_t)(c2 + 1 - line);
        if (pl + 1 > cap || pl == 0 || c2[1] != '/') return -EINVAL;
        memcpy(path, c2 + 1, pl);
        path[pl] = '\0';
        return 0;
    }
    return -ENOENT;
}

int rcg_check_path(const char *rel, char *err, size_t errlen) {
    if (!rel || rel[0] != '/') {
        snprintf(err, errlen, "cgroup path '%s' must start with '/' (as /proc/PID/cgroup shows it)",
                 rel ? rel : "");
        return -EINVAL;
    }
    size_t len = strlen(rel);
    if (len == 1) {
        snprintf(err, errlen,
                 "cgroup path '/' is the root of every hierarchy: name the replica's own cgroup");
        return -EINVAL;
    }
    if (len > RCG_PATH_MAX - 256) {
        snprintf(err, errlen, "cgroup path longer than %d bytes", RCG_PATH_MAX - 256);
        return -EINVAL;
    }
    for (const char *p = rel + 1; *p;) {
        const char *s = strchr(p, '/');
        size_t n = s ? (size_t)(s - p) : strlen(p);
        if ((n == 0 && s) || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.')) {
            snprintf(err, errlen, "cgroup path '%s' has an empty, '.' or '..' component", rel);
            return -EINVAL;
        }
        for (size_t i = 0; i < n; i++) {
            if ((unsigned char)p[i] < ' ') {
                snprintf(err, errlen, "cgroup path has a control character at offset %d",
                         (int)(p + i - rel));
                return -EINVAL;
            }
        }
        if (!s) break;
        p = s + 1;
    }
    return 0;
}

/* ---- file helpers ----------------------------------------------------------------------- */

ssize_t rcg_read_small(const char *dir, const char *file, char *buf, size_t cap) {
    char path[RCG_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    size_t n = 0;
    while (n + 1 < cap) {
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            close(fd);
            return -e;
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = '\0';
    return (ssize_t)n;
}

static int write_str(const char *dir, const char *file, const char *val) {
    char path[RCG_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    ssize_t w = write(fd, val, strlen(val));
    int e = w < 0 ? errno : 0;
    close(fd);
    return -e;
}

static int file_exists(const char *dir, const char *file) {
    char path[RCG_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    return access(path, F_OK) == 0;
}

static int dir_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* "key value" line of a flat-keyed file; returns the value or -1. */
static long long keyed_value(const char *text, const char *key) {
    size_t kl = strlen(key);
    for (const char *p = text; p && *p;) {
        if (strncmp(p, key, kl) == 0 && p[kl] == ' ') return strtoll(p + kl + 1, NULL, 10);
        p = strchr(p, '\n');
        if (p) p++;
    }
    return -1;
}

/* ---- resolution ------------------------------------------------------------------------- */

static void hierarchy_name(const rcg_hierarchy *h, char *buf, size_t cap) {
    if (h->v2) {
        snprintf(buf, cap, "unified");
        return;
    }
    /* the options minus the generic ones: "rw,cpu,cpuacct" -> "cpu,cpuacct" */
    size_t o = 0;
    buf[0] = '\0';
    for (const char *p = h->options; *p;) {
        const char *c = strchr(p, ',');
        size_t n = c ? (size_t)(c - p) : strlen(p);
        int generic = (n == 2 && (!memcmp(p, "rw", 2) || !memcmp(p, "ro", 2))) ||
                      (n >= 14 && !memcmp(p, "clone_children", 14)) ||
                      (n >= 8 && !memcmp(p, "noprefix", 8)) || (n >= 5 && !memcmp(p, "xattr", 5)) ||
                      (n >= 14 && !memcmp(p, "release_agent=", 14)) ||
                      (n >= 14 && !memcmp(p, "cpuset_v2_mode", 14));
        if (!generic && o + n + 2 < cap) {
            if (o) buf[o++] = ',';
            memcpy(buf + o, p, n);
            o += n;
            buf[o] = '\0';
        }
        if (!c) break;
        p = c + 1;
    }
    if (!buf[0]) snprintf(buf, cap, "%s", h->mount);
}

static int has_controller(const rcg_hierarchy *h, const char *ctl) {
    return !h->v2 && tokens_subset(ctl, strlen(ctl), h->options);
}

/* A pid of the replica from the first hierarchy where it has processes, or 0. */
static long member_pid(const replica_cgroup *rc) {
    char buf[64];
    for (int i = 0; i < rc->n; i++) {
        if (!rc->at[i].dir[0]) continue;
        if (rcg_read_small(rc->at[i].dir, "cgroup.procs", buf, sizeof buf) > 0) {
            long pid = strtol(buf, NULL, 10);
            if (pid > 0) return pid;
        }
    }
    return 0;
}

int rcg_read_hierarchies(rcg_hierarchies *hs, char *err, size_t errlen) {
    /* mountinfo of a Kubernetes node can hold thousands of mounts: read it whole */
    size_t cap = 65536, n = 0;
    char *buf = NULL;
    int fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "/proc/self/mountinfo: %s", strerror(e));
        return -e;
    }
    for (;;) {
        if (!buf || cap - n < 4096) {
            char *nb = cap <= (16u << 20) ? realloc(buf, buf ? cap *= 2 : cap) : NULL;
            if (!nb) {
                free(buf);
                close(fd);
                snprintf(err, errlen, "/proc/self/mountinfo: too large or out of memory");
                return -ENOMEM;
            }
            buf = nb;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            int e = errno;
            free(buf);
            close(fd);
            snprintf(err, errlen, "/proc/self/mountinfo: %s", strerror(e));
            return -e;
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    close(fd);
    int rc = rcg_parse_mountinfo(buf, n, hs, err, errlen);
    free(buf);
    return rc;
}

int rcg_favordynmods(const rcg_hierarchies *hs) {
    for (int i = 0; i < hs->n; i++)
        if (hs->h[i].favordynmods) return 1;
    return 0;
}

int rcg_resolve(const char *rel, const rcg_hierarchies *hs, replica_cgroup *rc, char *err,
                size_t errlen) {
    rcg_hierarchies own;
    int rc_ = rcg_check_path(rel, err, errlen);
    if (rc_) return rc_;
    if (!hs) {
        if ((rc_ = rcg_read_hierarchies(&own, err, errlen))) return rc_;
        hs = &own;
    }
    memset(rc, 0, sizeof *rc);
    snprintf(rc->rel, sizeof rc->rel, "%s", rel);
    rc->freezer = rc->memory = rc->unified = -1;
    int found = 0;
    for (int i = 0; i < hs->n; i++) {
        const rcg_hierarchy *h = &hs->h[i];
        rc->at[i].v2 = h->v2;
        hierarchy_name(h, rc->at[i].name, sizeof rc->at[i].name);
        char d[RCG_PATH_MAX];
        snprintf(d, sizeof d, "%s%s", h->mount, strcmp(rel, "/") == 0 ? "" : rel);
        if (dir_exists(d)) {
            snprintf(rc->at[i].dir, sizeof rc->at[i].dir, "%s", d);
            found++;
        }
        if (h->v2)
            rc->unified = i;
        else if (has_controller(h, "freezer"))
            rc->freezer = i;
        else if (has_controller(h, "memory"))
            rc->memory = i;
    }
    rc->n = hs->n;
    if (!found) {
        size_t o =
            (size_t)snprintf(err, errlen, "cgroup %s not found in any hierarchy (looked in", rel);
        for (int i = 0; i < rc->n && o < errlen; i++)
            o += (size_t)snprintf(err + o, errlen - o, "%s %s", i ? "," : "", rc->at[i].name);
        if (o < errlen)
            snprintf(err + o, errlen - o, "%s)", rc->n ? "" : " none: no cgroup mounts");
        return -ENOENT;
    }
    /* hierarchies where the path is absent: follow a member process there */
    long pid = member_pid(rc);
    if (pid > 0) {
        char pbuf[8192], dir[32];
        snprintf(dir, sizeof dir, "/proc/%ld", pid);
        ssize_t n = rcg_read_small(dir, "cgroup", pbuf, sizeof pbuf);
        for (int i = 0; n > 0 && i < rc->n; i++) {
            if (rc->at[i].dir[0]) continue;
            char p[RCG_PATH_MAX - 256];
            if (rcg_parse_proc_cgroup(pbuf, (size_t)n, &hs->h[i], p, sizeof p) != 0) continue;
            char d[RCG_PATH_MAX];
            snprintf(d, sizeof d, "%s%s", hs->h[i].mount, strcmp(p, "/") == 0 ? "" : p);
            /* only the replica's own cgroup, nested deeper (".../REL"), counts: a process that
             * sits in a cgroup shared with others (the hierarchy's root, a parent slice) must
             * not make us freeze or reclaim that shared cgroup */
            size_t pl = strlen(p), rl = strlen(rel);
            if (pl > rl && strcmp(p + pl - rl, rel) == 0 && dir_exists(d))
                snprintf(rc->at[i].dir, sizeof rc->at[i].dir, "%s", d);
        }
    }
    return 0;
}

cJSON *rcg_json(const replica_cgroup *rc) {
    cJSON *o = cJSON_CreateObject();
    for (int i = 0; o && i < rc->n; i++)
        if (rc->at[i].dir[0]) cJSON_AddStringToObject(o, rc->at[i].name, rc->at[i].dir);
    return o;
}

int64_t rcg_memory(const replica_cgroup *rc) {
    char buf[64];
    ssize_t n = -ENOENT;
    if (rc->unified >= 0 && rc->at[rc->unified].dir[0])
        n = rcg_read_small(rc->at[rc->unified].dir, "memory.current", buf, sizeof buf);
    if (n < 0 && rc->memory >= 0 && rc->at[rc->memory].dir[0])
        n = rcg_read_small(rc->at[rc->memory].dir, "memory.usage_in_bytes", buf, sizeof buf);
    if (n < 0) return n;
    return strtoll(buf, NULL, 10);
}

/* ---- freeze / thaw ---------------------------------------------------------------------- */

struct rcg_freeze_op {
    ev_timer poll;
    struct ev_loop *loop;
    int freeze;
    int use_v2, use_v1; /* which freezers this op wrote / waits on */
    char v2dir[RCG_PATH_MAX], v1dir[RCG_PATH_MAX];
    char rel[RCG_PATH_MAX];
    int64_t start_us, deadline_us;
    int already;
    rcg_freeze_done_fn done;
    void *arg;
};

static int64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* 1 when the v2 cgroup reports frozen == want, 0 when not yet, -errno on read failure. */
static int v2_state_is(const char *dir, int want) {
    char buf[256];
    ssize_t n = rcg_read_small(dir, "cgroup.events", buf, sizeof buf);
    if (n < 0) return (int)n;
    long long f = keyed_value(buf, "frozen");
    return f < 0 ? -EIO : (f == want);
}

/* v1 freezer.state: 1 when it equals want ("FROZEN"/"THAWED"), 0 otherwise, -errno. */
static int v1_state_is(const char *dir, const char *want) {
    char buf[64];
    ssize_t n = rcg_read_small(dir, "freezer.state", buf, sizeof buf);
    if (n < 0) return (int)n;
    return strncmp(buf, want, strlen(want)) == 0;
}

/* Checks both used freezers; 1 done, 0 pending, -errno. */
static int op_check(rcg_freeze_op *op) {
    int ok = 1;
    if (op->use_v2) {
        int r = v2_state_is(op->v2dir, op->freeze);
        if (r < 0) return r;
        ok &= r;
    }
    if (op->use_v1) {
        int r = v1_state_is(op->v1dir, op->freeze ? "FROZEN" : "THAWED");
        if (r < 0) return r;
        ok &= r;
    }
    return ok;
}

static void op_thaw_back(rcg_freeze_op *op) {
    if (op->use_v2) write_str(op->v2dir, "cgroup.freeze", "0");
    if (op->use_v1) write_str(op->v1dir, "freezer.state", "THAWED");
}

static void freeze_poll_cb(struct ev_loop *loop, ev_timer *w, int revents) {
    (void)revents;
    rcg_freeze_op *op = container_of(w, rcg_freeze_op, poll);
    int r = op_check(op);
    int64_t t = now_us();
    char err[RCG_PATH_MAX + 200];
    if (r == 0 && t < op->deadline_us) return; /* repeat timer keeps polling */
    ev_timer_stop(loop, &op->poll);
    rcg_freeze_result res = {
        .freezer = op->use_v2 && op->use_v1 ? "v2+v1"
                   : op->use_v2             ? "v2"
                                            : "v1",
        .already = op->already,
        .ms = (double)(t - op->start_us) / 1000.0,
    };
    if (r == 1) {
        op->done(op->arg, 0, &res, NULL);
    } else if (r < 0) {
        if (r == -ENOENT)
            snprintf(err, sizeof err, "cgroup %s disappeared while %s", op->rel,
                     op->freeze ? "freezing" : "thawing");
        else
            snprintf(err, sizeof err, "cgroup %s: reading freezer state: %s", op->rel,
                     strerror(-r));
        op->done(op->arg, r, &res, err);
    } else {
        if (op->freeze) op_thaw_back(op);
        snprintf(err, sizeof err, "cgroup %s: %s did not complete within %.0f ms%s", op->rel,
                 op->freeze ? "freeze" : "thaw", (double)(op->deadline_us - op->start_us) / 1000.0,
                 op->freeze ? " (thawed back)" : "");
        op->done(op->arg, -ETIMEDOUT, &res, err);
    }
    free(op);
}

int rcg_freeze_start(struct ev_loop *loop, const replica_cgroup *rc, int freeze, int deadline_ms,
                     rcg_freeze_done_fn done, void *arg, rcg_freeze_op **opp, char *err,
                     size_t errlen) {
    const char *v2 =
        rc->unified >= 0 && rc->at[rc->unified].dir[0] ? rc->at[rc->unified].dir : NULL;
    const char *v1 =
        rc->freezer >= 0 && rc->at[rc->freezer].dir[0] ? rc->at[rc->freezer].dir : NULL;
    if (v2 && !file_exists(v2, "cgroup.freeze")) v2 = NULL; /* the root cgroup has none */
    if (v1 && !file_exists(v1, "freezer.state")) v1 = NULL;
    if (!v2 && !v1) {
        snprintf(err, errlen,
                 "cgroup %s: no freezer (neither v2 cgroup.freeze nor a v1 freezer cgroup)",
                 rc->rel);
        return -ENOTSUP;
    }
    rcg_freeze_op *op = calloc(1, sizeof *op);
    if (!op) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    op->loop = loop;
    op->freeze = freeze;
    op->done = done;
    op->arg = arg;
    snprintf(op->rel, sizeof op->rel, "%s", rc->rel);
    if (v2) snprintf(op->v2dir, sizeof op->v2dir, "%s", v2);
    if (v1) snprintf(op->v1dir, sizeof op->v1dir, "%s", v1);
    if (freeze) {
        /* v2 when its cgroup holds the processes, else the v1 freezer */
        int v2_populated = 0;
        if (v2) {
            char buf[256];
            if (rcg_read_small(v2, "cgroup.events", buf, sizeof buf) > 0)
                v2_populated = keyed_value(buf, "populated") == 1;
        }
        op->use_v2 = v2 && (v2_populated || !v1);
        op->use_v1 = !op->use_v2;
    } else {
        /* thaw whatever is frozen: either freezer may have been used */
        op->use_v2 = v2 != NULL;
        op->use_v1 = v1 != NULL;
    }
    int r = op_check(op);
    if (r < 0) {
        snprintf(err, errlen, "cgroup %s: reading freezer state: %s", rc->rel, strerror(-r));
        free(op);
        return r == -ENOENT ? -ENOENT : r;
    }
    op->start_us = now_us();
    op->already = r == 1;
    if (!op->already) {
        int w = 0;
        if (op->use_v2 && (w = write_str(v2, "cgroup.freeze", freeze ? "1" : "0")) < 0) {
            snprintf(err, errlen, "cgroup %s: writing %s/cgroup.freeze: %s", rc->rel, v2,
                     strerror(-w));
        } else if (op->use_v1 &&
                   (w = write_str(v1, "freezer.state", freeze ? "FROZEN" : "THAWED")) < 0) {
            snprintf(err, errlen, "cgroup %s: writing %s/freezer.state: %s", rc->rel, v1,
                     strerror(-w));
        }
        if (w < 0) {
            if (freeze) op_thaw_back(op);
            free(op);
            return w;
        }
    }
    op->deadline_us = op->start_us + (int64_t)(deadline_ms > 0 ? deadline_ms : 5000) * 1000;
    /* first check at once (small cgroups are frozen by the time the write returns), then
     * every millisecond */
    ev_timer_init(&op->poll, freeze_poll_cb, 0., 0.001);
    ev_timer_start(loop, &op->poll);
    if (opp) *opp = op;
    return 0;
}

void rcg_freeze_cancel(rcg_freeze_op *op) {
    if (!op) return;
    ev_timer_stop(op->loop, &op->poll);
    if (op->freeze) op_thaw_back(op);
    free(op);
}

/* ---- reclaim ---------------------------------------------------------------------------- */

/* Reclaims run on a pool of the module's, made on first use on the agent's loop and freed by
 * rcg_reclaim_shutdown(): a write to memory.reclaim blocks while the kernel works. */
#define RECLAIM_THREADS 2
#define RECLAIM_QUEUE 64
static work_pool *reclaim_pool;
static struct ev_loop *reclaim_loop;

struct rcg_reclaim_op {
    work w; /* first */
    ev_timer deadline;
    struct ev_loop *loop;
    char v2dir[RCG_PATH_MAX], v1dir[RCG_PATH_MAX];
    char rel[RCG_PATH_MAX];
    rcg_reclaim_result res;
    int rc;
    char err[RCG_PATH_MAX + 128];
    int reported;  /* done was called (deadline) */
    int cancelled; /* rcg_reclaim_cancel: freed when the pool hands it back, done not called */
    rcg_reclaim_done_fn done;
    void *arg;
    int64_t start_us;
    int64_t deadline_us; /* the thread stops lowering a v1 limit at this time */
};

static int64_t read_i64(const char *dir, const char *file) {
    char buf[64];
    ssize_t n = rcg_read_small(dir, file, buf, sizeof buf);
    if (n < 0) return n;
    return strtoll(buf, NULL, 10);
}

static int host_has_swap(void) {
    char buf[8192];
    ssize_t n = rcg_read_small("/proc", "meminfo", buf, sizeof buf);
    if (n <= 0) return 0;
    const char *p = strstr(buf, "SwapTotal:");
    return p && strtoll(p + 10, NULL, 10) > 0;
}

/* ---- v1 with swap: a lowered memory.limit_in_bytes ------------------------------------------
 * The original limit of each cgroup whose limit standby lowered is kept here until activate
 * restores it (a repeated standby keeps the first original, never a lowered value). A restore
 * while the reclaim thread is still stepping asks it to stop; whichever of the two writes last,
 * the limit ends at the original: the thread rewrites it when it sees the request. */

typedef struct lim_rec {
    char dir[RCG_PATH_MAX];
    int64_t original;
    int stepping;          /* a reclaim thread is lowering it now */
    int restore_requested; /* activate restored it meanwhile: the thread restores again */
    struct lim_rec *next;
} lim_rec;

static pthread_mutex_t lim_mu = PTHREAD_MUTEX_INITIALIZER;
static lim_rec *lim_recs;
static void lim_unpersist(const struct lim_rec *rec);

static lim_rec *lim_find(const char *dir) {
    for (lim_rec *r = lim_recs; r; r = r->next)
        if (!strcmp(r->dir, dir)) return r;
    return NULL;
}

static void lim_unlink(lim_rec *rec) {
    for (lim_rec **pp = &lim_recs; *pp; pp = &(*pp)->next)
        if (*pp == rec) {
            *pp = rec->next;
            lim_unpersist(rec);
            return;
        }
}
/* Where the records are persisted ("" = memory only): one file per lowered limit, named by a
 * hash of the memory directory, holding "ORIGINAL\nDIR\n". */
static char lim_store[512];

static void lim_file(const char *dir, char *out, size_t cap) {
    uint64_t h = 1469598103934665603ULL;
    for (const char *c = dir; *c; c++)
        h = (h ^ (unsigned char)*c) * 1099511628211ULL;
    snprintf(out, cap, "%s/%016llx.lim", lim_store, (unsigned long long)h);
}

/* Under lim_mu. Written through a temporary file and rename(). */
static void lim_persist(const lim_rec *rec) {
    if (!lim_store[0]) return;
    char path[700], tmp[720];
    lim_file(rec->dir, path, sizeof path);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "we");
    if (!f) return;
    int ok = fprintf(f, "%lld\n%s\n", (long long)rec->original, rec->dir) > 0;
    ok &= fclose(f) == 0;
    if (!ok || rename(tmp, path) < 0) unlink(tmp);
}

/* Under lim_mu. */
static void lim_unpersist(const lim_rec *rec) {
    if (!lim_store[0]) return;
    char path[700];
    lim_file(rec->dir, path, sizeof path);
    unlink(path);
}

int rcg_limit_store_open(const char *dir, char *err, size_t errlen) {
    if (strlen(dir) >= sizeof lim_store - 32) {
        snprintf(err, errlen, "memory limit store %s: path too long", dir);
        return -ENAMETOOLONG;
    }
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        int e = errno;
        snprintf(err, errlen, "memory limit store %s: %s", dir, strerror(e));
        return -e;
    }
    DIR *d = opendir(dir);
    if (!d) {
        int e = errno;
        snprintf(err, errlen, "memory limit store %s: %s", dir, strerror(e));
        return -e;
    }
    pthread_mutex_lock(&lim_mu);
    snprintf(lim_store, sizeof lim_store, "%s", dir);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l != 20 || strcmp(de->d_name + 16, ".lim")) continue;
        char path[700], buf[RCG_PATH_MAX + 64];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        FILE *f = fopen(path, "re");
        if (!f) continue;
        size_t got = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[got] = 0;
        char *nl = strchr(buf, '\n');
        char *end = NULL;
        long long orig = strtoll(buf, &end, 10);
        if (!nl || end != nl || orig <= 0) continue;
        char *dn = nl + 1, *nl2 = strchr(dn, '\n');
        if (!nl2 || dn[0] != '/' || (size_t)(nl2 - dn) >= RCG_PATH_MAX) continue;
        *nl2 = 0;
        if (lim_find(dn)) continue;
        lim_rec *rec = calloc(1, sizeof *rec);
        if (!rec) break;
        snprintf(rec->dir, sizeof rec->dir, "%s", dn);
        rec->original = orig;
        rec->next = lim_recs;
        lim_recs = rec;
        n++;
    }
    pthread_mutex_unlock(&lim_mu);
    closedir(d);
    return n;
}

void rcg_limit_store_close(void) {
    pthread_mutex_lock(&lim_mu);
    lim_store[0] = 0;
    pthread_mutex_unlock(&lim_mu);
}

static int write_i64(const char *dir, const char *file, int64_t v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", (long long)v);
    return write_str(dir, file, buf);
}

/* What a frozen replica cannot give up: its unevictable (mlocked) pages, and a few MiB of
 * kernel memory and page tables that usage_in_bytes also counts. */
static int64_t v1_floor_bytes(const char *dir) {
    char buf[8192];
    int64_t unevictable = 0;
    if (rcg_read_small(dir, "memory.stat", buf, sizeof buf) > 0) {
        long long v = keyed_value(buf, "total_unevictable");
        if (v > 0) unevictable = v;
    }
    return RCG_V1_FLOOR_BYTES + unevictable;
}

/* Lowers the v1 limit step by step (a quarter of the usage above the floor, at least 4 MiB)
 * toward the floor; each write makes the kernel reclaim down to it, swapping anonymous memory
 * out. Stops at the floor, when the kernel cannot go lower (EBUSY), when a step frees less
 * than 1 MiB, at the deadline, or when activate restored the limit meanwhile. Fills the
 * limit figures of op->res; returns 0 or -errno with op->err. */
static int v1_lower_limit(rcg_reclaim_op *op, const char *dir) {
    int64_t cur = read_i64(dir, "memory.limit_in_bytes");
    if (cur < 0) {
        snprintf(op->err, sizeof op->err, "cgroup %s: reading memory.limit_in_bytes: %s", op->rel,
                 strerror((int)-cur));
        return (int)cur;
    }
    pthread_mutex_lock(&lim_mu);
    lim_rec *rec = lim_find(dir);
    if (!rec && (rec = calloc(1, sizeof *rec))) {
        snprintf(rec->dir, sizeof rec->dir, "%s", dir);
        rec->original = cur;
        rec->next = lim_recs;
        lim_recs = rec;
        lim_persist(rec);
    }
    if (rec) {
        rec->stepping = 1;
        rec->restore_requested = 0;
    }
    pthread_mutex_unlock(&lim_mu);
    if (!rec) {
        snprintf(op->err, sizeof op->err, "cgroup %s: out of memory", op->rel);
        return -ENOMEM;
    }
    op->res.limit_original_bytes = rec->original;
    int64_t floor = v1_floor_bytes(dir);
    int64_t usage = read_i64(dir, "memory.usage_in_bytes");
    int64_t limit = cur;
    int rc = 0;
    while (usage > floor && now_us() < op->deadline_us) {
        pthread_mutex_lock(&lim_mu);
        int stop = rec->restore_requested;
        pthread_mutex_unlock(&lim_mu);
        if (stop) break;
        int64_t step = (usage - floor) / 4;
        if (step < RCG_V1_STEP_MIN_BYTES) step = RCG_V1_STEP_MIN_BYTES;
        int64_t target = usage - step < floor ? floor : usage - step;
        int w = write_i64(dir, "memory.limit_in_bytes", target);
        op->res.limit_steps++;
        if (w == -EBUSY) break; /* the kernel cannot reclaim further (swappiness 0, swap full) */
        if (w < 0) {
            rc = w;
            snprintf(op->err, sizeof op->err,
                     "cgroup %s: lowering memory.limit_in_bytes to %lld: %s", op->rel,
                     (long long)target, strerror(-w));
            break;
        }
        limit = target;
        int64_t after = read_i64(dir, "memory.usage_in_bytes");
        if (after < 0 || usage - after < (1 << 20)) break;
        usage = after;
    }
    pthread_mutex_lock(&lim_mu);
    rec->stepping = 0;
    if (rec->restore_requested) {
        /* activate came while we stepped: its restore may predate our last write */
        write_i64(dir, "memory.limit_in_bytes", rec->original);
        limit = rec->original;
        lim_unlink(rec);
        free(rec);
    }
    pthread_mutex_unlock(&lim_mu);
    op->res.limit_after_bytes = limit;
    return rc;
}

int rcg_memory_limit_restore(const replica_cgroup *rc, int64_t *restored, char *err,
                             size_t errlen) {
    const char *dir = rc->memory >= 0 && rc->at[rc->memory].dir[0] ? rc->at[rc->memory].dir : NULL;
    if (!dir) return 0;
    pthread_mutex_lock(&lim_mu);
    lim_rec *rec = lim_find(dir);
    if (!rec) {
        pthread_mutex_unlock(&lim_mu);
        return 0;
    }
    int w = write_i64(dir, "memory.limit_in_bytes", rec->original);
    if (w < 0) {
        snprintf(err, errlen, "cgroup %s: restoring memory.limit_in_bytes to %lld: %s", rc->rel,
                 (long long)rec->original, strerror(-w));
        if (w == -ENOENT) { /* the cgroup is gone: nothing left to restore */
            lim_unlink(rec);
            free(rec);
        }
        pthread_mutex_unlock(&lim_mu);
        return w;
    }
    *restored = rec->original;
    if (rec->stepping) {
        rec->restore_requested = 1; /* the thread frees it */
    } else {
        lim_unlink(rec);
        free(rec);
    }
    pthread_mutex_unlock(&lim_mu);
    return 1;
}

static void reclaim_run(work *wk) {
    rcg_reclaim_op *op = (rcg_reclaim_op *)wk;
    if (!op->v2dir[0] && !op->v1dir[0]) return; /* method "none": figures filled at start */
    const char *dir, *usage_file;
    if (op->v2dir[0]) {
        dir = op->v2dir;
        usage_file = "memory.current";
        op->res.method = "memory.reclaim";
    } else {
        dir = op->v1dir;
        usage_file = "memory.usage_in_bytes";
        op->res.method = op->res.swap ? "memory.limit_in_bytes" : "memory.force_empty";
    }
    int64_t before = read_i64(dir, usage_file);
    if (before < 0) {
        op->rc = (int)before;
        snprintf(op->err, sizeof op->err, "cgroup %s: reading %s: %s", op->rel, usage_file,
                 strerror((int)-before));
        goto out;
    }
    op->res.before_bytes = before;
    int w;
    if (op->v2dir[0]) {
        char amount[32];
        snprintf(amount, sizeof amount, "%lld", (long long)before);
        w = write_str(dir, "memory.reclaim", amount);
        if (w == -EAGAIN) w = 0; /* reclaimed less than asked: the figures say how much */
    } else if (op->res.swap) {
        if ((w = v1_lower_limit(op, dir)) < 0) {
            op->rc = w;
            goto out;
        }
    } else {
        w = write_str(dir, "memory.force_empty", "0");
    }
    if (w < 0) {
        op->rc = w;
        snprintf(op->err, sizeof op->err, "cgroup %s: %s: %s", op->rel, op->res.method,
                 strerror(-w));
        goto out;
    }
    int64_t after = read_i64(dir, usage_file);
    op->res.after_bytes = after < 0 ? before : after;
    op->res.reclaimed_bytes = before > op->res.after_bytes ? before - op->res.after_bytes : 0;
out:
    op->res.ms = (double)(now_us() - op->start_us) / 1000.0;
}

static void reclaim_done(work *wk, int status) {
    rcg_reclaim_op *op = (rcg_reclaim_op *)wk;
    ev_timer_stop(op->loop, &op->deadline);
    if (status < 0 && !op->cancelled && !op->reported) {
        op->rc = status;
        snprintf(op->err, sizeof op->err, "cgroup %s: reclaim cancelled: the agent is stopping",
                 op->rel);
    }
    if (!op->reported && !op->cancelled)
        op->done(op->arg, op->rc, &op->res, op->rc ? op->err : NULL);
    free(op);
}

static void reclaim_deadline_cb(struct ev_loop *loop, ev_timer *w, int revents) {
    (void)loop;
    (void)revents;
    rcg_reclaim_op *op = container_of(w, rcg_reclaim_op, deadline);
    rcg_reclaim_result res = {
        .method = op->v2dir[0]   ? "memory.reclaim"
                  : op->res.swap ? "memory.limit_in_bytes"
                                 : "memory.force_empty",
        .limit_original_bytes = -1,
        .limit_after_bytes = -1,
        .swap = op->res.swap,
        .before_bytes = -1,
        .after_bytes = -1,
        .reclaimed_bytes = 0,
        .ms = (double)(now_us() - op->start_us) / 1000.0,
        .timed_out = 1,
    };
    op->reported = 1;
    /* the worker still owns op; reclaim_done frees it when the kernel returns */
    op->done(op->arg, 0, &res, NULL);
}

int rcg_reclaim_start(struct ev_loop *loop, const replica_cgroup *rc, int deadline_ms,
                      rcg_reclaim_done_fn done, void *arg, rcg_reclaim_op **opp, char *err,
                      size_t errlen) {
    const char *v2 =
        rc->unified >= 0 && rc->at[rc->unified].dir[0] ? rc->at[rc->unified].dir : NULL;
    const char *v1 = rc->memory >= 0 && rc->at[rc->memory].dir[0] ? rc->at[rc->memory].dir : NULL;
    if (v2 && !file_exists(v2, "memory.reclaim")) v2 = NULL;
    if (v1 && !file_exists(v1, "memory.force_empty")) v1 = NULL;
    rcg_reclaim_op *op = calloc(1, sizeof *op);
    if (!op) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    op->loop = loop;
    op->done = done;
    op->arg = arg;
    op->start_us = now_us();
    op->deadline_us = op->start_us + (int64_t)(deadline_ms > 0 ? deadline_ms : 10000) * 1000;
    op->res.swap = host_has_swap();
    op->res.limit_original_bytes = op->res.limit_after_bytes = -1;
    snprintf(op->rel, sizeof op->rel, "%s", rc->rel);
    if (v2) snprintf(op->v2dir, sizeof op->v2dir, "%s", v2);
    if (v1) snprintf(op->v1dir, sizeof op->v1dir, "%s", v1);
    if (!v2 && !v1) {
        /* nothing the kernel offers: report "none" (from the loop, through the pool) */
        op->res.method = "none";
        int64_t m = rcg_memory(rc);
        op->res.before_bytes = op->res.after_bytes = m < 0 ? -1 : m;
    }
    if (reclaim_pool && reclaim_loop != loop) rcg_reclaim_shutdown();
    int e = reclaim_pool ? 0 : work_pool_new(loop, RECLAIM_THREADS, RECLAIM_QUEUE, &reclaim_pool);
    if (e == 0) {
        reclaim_loop = loop;
        e = work_submit(reclaim_pool, &op->w, reclaim_run, reclaim_done);
    }
    if (e < 0) {
        free(op);
        snprintf(err, errlen, "reclaim: %s",
                 e == -EAGAIN ? "too many reclaims under way (64 waiting)" : strerror(-e));
        return e;
    }
    ev_timer_init(&op->deadline, reclaim_deadline_cb,
                  (deadline_ms > 0 ? deadline_ms : 10000) / 1000.0, 0.);
    ev_timer_start(loop, &op->deadline);
    if (opp) *opp = op;
    return 0;
}

void rcg_reclaim_cancel(rcg_reclaim_op *op) {
    if (!op) return;
    ev_timer_stop(op->loop, &op->deadline);
    op->cancelled =
        1; /* reclaim_done frees it: at once when queued, else when the kernel is done */
    work_cancel(reclaim_pool, &op->w);
}

void rcg_reclaim_shutdown(void) {
    work_pool_free(reclaim_pool); /* waits for the kernel's writes; cancelled ops are freed */
    reclaim_pool = NULL;
    reclaim_loop = NULL;
}
