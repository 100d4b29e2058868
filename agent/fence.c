/* fence.c: the agent's table of fencing tokens per workload, its file codec and its atomic
 * persistence (fence.h). */
#include "fence.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FENCE_HEADER "tide-fence 1\n"
/* "<20 digits> <20 digits> <name>\n" */
#define FENCE_LINE_MAX (20 + 1 + 20 + 1 + WIRE_WORKLOAD_MAX + 1)

void fence_init(fence_table *t, size_t max, int64_t expiry_s) {
    memset(t, 0, sizeof *t);
    t->max = max < FENCE_MAX_MIN ? FENCE_MAX_MIN : max > FENCE_MAX_LIMIT ? FENCE_MAX_LIMIT : max;
    t->expiry_s = expiry_s > 0 ? expiry_s : 1;
}

void fence_fini(fence_table *t) {
    if (!t) return;
    free(t->e);
    t->e = NULL;
    t->n = t->cap = 0;
}

static fence_entry *find(const fence_table *t, const char *workload) {
    for (size_t i = 0; i < t->n; i++)
        if (!strcmp(t->e[i].workload, workload)) return &t->e[i];
    return NULL;
}

uint64_t fence_get(const fence_table *t, const char *workload) {
    const fence_entry *e = find(t, workload);
    return e ? e->token : 0;
}

fence_verdict fence_check(const fence_table *t, const char *workload, uint64_t token,
                          uint64_t *seen) {
    uint64_t held = fence_get(t, workload);
    if (seen) *seen = held;
    if (token < held) return FENCE_STALE;
    return token > held ? FENCE_NEWER : FENCE_ACCEPT;
}

static void drop(fence_table *t, size_t i) {
    t->e[i] = t->e[--t->n];
}

static void expire(fence_table *t, int64_t now_s) {
    for (size_t i = 0; i < t->n;)
        if (t->e[i].used_s < now_s - t->expiry_s) {
            drop(t, i);
            t->expired++;
        } else {
            i++;
        }
}

static size_t least_used(const fence_table *t) {
    size_t lo = 0;
    for (size_t i = 1; i < t->n; i++)
        if (t->e[i].used_s < t->e[lo].used_s) lo = i;
    return lo;
}

/* Inserts or raises without expiry (the decoder's and fence_record's common part). */
static int put(fence_table *t, const char *workload, uint64_t token, int64_t used_s) {
    fence_entry *e = find(t, workload);
    if (e) {
        if (token > e->token) e->token = token;
        if (used_s > e->used_s) e->used_s = used_s;
        return 0;
    }
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        if (cap > t->max) cap = t->max;
        if (cap <= t->n) cap = t->n + 1;
        fence_entry *ne = realloc(t->e, cap * sizeof *ne);
        if (!ne) return -ENOMEM;
        t->e = ne;
        t->cap = cap;
    }
    e = &t->e[t->n++];
    snprintf(e->workload, sizeof e->workload, "%s", workload);
    e->token = token;
    e->used_s = used_s;
    return 0;
}

int fence_record(fence_table *t, const char *workload, uint64_t token, int64_t now_s) {
    if (token == 0 || !wire_workload_valid(workload, strlen(workload))) return -EINVAL;
    expire(t, now_s);
    if (!find(t, workload) && t->n >= t->max) {
        drop(t, least_used(t));
        t->evicted++;
    }
    return put(t, workload, token, now_s);
}

int fence_encode(const fence_table *t, char **out, size_t *len) {
    size_t cap = sizeof FENCE_HEADER + (t->n + 1) * (FENCE_LINE_MAX + 1) + 32;
    char *b = malloc(cap);
    if (!b) return -ENOMEM;
    size_t n = (size_t)snprintf(b, cap, "%s", FENCE_HEADER);
    for (size_t i = 0; i < t->n; i++)
        n += (size_t)snprintf(b + n, cap - n, "%" PRIu64 " %" PRId64 " %s\n", t->e[i].token,
                              t->e[i].used_s, t->e[i].workload);
    n += (size_t)snprintf(b + n, cap - n, "end %zu\n", t->n);
    *out = b;
    *len = n;
    return 0;
}

size_t fence_file_max(size_t max) {
    return sizeof FENCE_HEADER + (max + 1) * (FENCE_LINE_MAX + 1) + 32;
}

/* A decimal number of at most 20 digits in [p, end) ending at a space; *pp after the space. */
static int parse_u64(const char **pp, const char *end, uint64_t *v) {
    const char *p = *pp;
    uint64_t x = 0;
    int digits = 0;
    while (p < end && *p >= '0' && *p <= '9') {
        uint64_t d = (uint64_t)(*p - '0');
        if (x > (UINT64_MAX - d) / 10) return -1;
        x = x * 10 + d;
        p++;
        digits++;
    }
    if (digits == 0 || digits > 20 || (digits > 1 && **pp == '0')) return -1;
    *v = x;
    *pp = p;
    return 0;
}

int fence_decode(fence_table *t, const char *buf, size_t len, int64_t now_s, char *err,
                 size_t errlen) {
    t->n = 0;
    size_t hl = sizeof FENCE_HEADER - 1;
    if (len < hl || memcmp(buf, FENCE_HEADER, hl) != 0) {
        snprintf(err, errlen, "line 1: not a tide-fence 1 file");
        return -EINVAL;
    }
    const char *p = buf + hl, *end = buf + len;
    int lineno = 1, ended = 0;
    uint64_t listed = 0;
    while (p < end) {
        lineno++;
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) {
            snprintf(err, errlen, "line %d: no newline (a torn file?)", lineno);
            goto bad;
        }
        if (ended) {
            snprintf(err, errlen, "line %d: text after the end line", lineno);
            goto bad;
        }
        uint64_t token, used;
        const char *q = p;
        if ((size_t)(nl - p) > 4 && !memcmp(p, "end ", 4)) {
            q = p + 4;
            uint64_t count;
            if (parse_u64(&q, nl, &count) < 0 || q != nl) {
                snprintf(err, errlen, "line %d: 'end' needs the entry count", lineno);
                goto bad;
            }
            if (count != listed) {
                snprintf(err, errlen, "line %d: end says %" PRIu64 " entries, %" PRIu64 " listed",
                         lineno, count, listed);
                goto bad;
            }
            ended = 1;
            p = nl + 1;
            continue;
        }
        if (parse_u64(&q, nl, &token) < 0 || q >= nl || *q != ' ' || token == 0) {
            snprintf(err, errlen, "line %d: expected '<token> <unix s> <workload>', token > 0",
                     lineno);
            goto bad;
        }
        q++;
        if (parse_u64(&q, nl, &used) < 0 || q >= nl || *q != ' ' || used > INT64_MAX) {
            snprintf(err, errlen, "line %d: the time of last use is not a number", lineno);
            goto bad;
        }
        q++;
        if (!wire_workload_valid(q, (size_t)(nl - q))) {
            snprintf(err, errlen, "line %d: the workload is not 1-%d characters of [A-Za-z0-9._-]",
                     lineno, WIRE_WORKLOAD_MAX);
            goto bad;
        }
        char name[WIRE_WORKLOAD_MAX + 1];
        memcpy(name, q, (size_t)(nl - q));
        name[nl - q] = 0;
        listed++;
        if ((int64_t)used >= now_s - t->expiry_s) {
            if (!find(t, name) && t->n >= t->max) {
                size_t lo = least_used(t);
                if (t->e[lo].used_s < (int64_t)used) {
                    drop(t, lo);
                    t->evicted++;
                }
            }
            if (find(t, name) || t->n < t->max) {
                int rc = put(t, name, token, (int64_t)used);
                if (rc < 0) {
                    snprintf(err, errlen, "out of memory");
                    t->n = 0;
                    return rc;
                }
            }
        } else {
            t->expired++;
        }
        p = nl + 1;
    }
    if (!ended) {
        snprintf(err, errlen, "line %d: no end line (a torn file?)", lineno + 1);
        goto bad;
    }
    return 0;
bad:
    t->n = 0;
    return -EINVAL;
}

int fence_load(fence_table *t, const char *path, int64_t now_s, char *err, size_t errlen) {
    t->n = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return 0;
        int e = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        return -e;
    }
    size_t cap = fence_file_max(t->max);
    char *buf = malloc(cap + 1);
    if (!buf) {
        close(fd);
        snprintf(err, errlen, "%s: out of memory", path);
        return -ENOMEM;
    }
    size_t len = 0;
    int rc = 0;
    for (;;) {
        ssize_t n = read(fd, buf + len, cap + 1 - len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            rc = -errno;
            snprintf(err, errlen, "%s: read: %s", path, strerror(errno));
            break;
        }
        if (n == 0) break;
        len += (size_t)n;
        if (len > cap) {
            rc = -EFBIG;
            snprintf(err, errlen, "%s: larger than %zu bytes (the bound for %zu workloads)", path,
                     cap, t->max);
            break;
        }
    }
    close(fd);
    if (rc == 0) {
        char why[256];
        rc = fence_decode(t, buf, len, now_s, why, sizeof why);
        if (rc < 0) snprintf(err, errlen, "%s: %s", path, why);
    }
    free(buf);
    return rc;
}

int fence_save(const fence_table *t, const char *path, char *err, size_t errlen) {
    char *text = NULL;
    size_t len = 0;
    if (fence_encode(t, &text, &len) < 0) {
        snprintf(err, errlen, "%s: out of memory", path);
        return -ENOMEM;
    }
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
        free(text);
        snprintf(err, errlen, "%s: path too long", path);
        return -ENAMETOOLONG;
    }
    int rc = 0;
    const char *step = "open";
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = -errno;
        goto out;
    }
    step = "write";
    for (size_t off = 0; off < len;) {
        ssize_t n = write(fd, text + off, len - off);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            rc = -errno;
            break;
        }
        off += (size_t)n;
    }
    if (rc == 0 && fsync(fd) < 0) {
        step = "fsync";
        rc = -errno;
    }
    if (close(fd) < 0 && rc == 0) {
        step = "close";
        rc = -errno;
    }
    if (rc == 0 && rename(tmp, path) < 0) {
        step = "rename";
        rc = -errno;
    }
    if (rc == 0) { /* the rename itself must survive a crash */
        char dcopy[PATH_MAX];
        snprintf(dcopy, sizeof dcopy, "%s", path);
        int dfd = open(dirname(dcopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            if (fsync(dfd) < 0) {
                step = "fsync of the directory";
                rc = -errno;
            }
            close(dfd);
        }
    }
out:
    if (rc < 0) {
        snprintf(err, errlen, "%s: %s: %s", path, step, strerror(-rc));
        unlink(tmp);
    }
    free(text);
    return rc;
}
