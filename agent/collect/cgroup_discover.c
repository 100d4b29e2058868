/* cgroup_discover.c: cgroup layout detection, path classification and the inotify-driven
 * watcher that keeps the set of sampled cgroups current (see cgroup_discover.h). */
#include "collect/cgroup_discover.h"

#include "errmsg.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

const char *cgd_layout_name(enum cgd_layout l) {
    switch (l) {
    case CGD_LAYOUT_V1:
        return "v1";
    case CGD_LAYOUT_V2:
        return "v2";
    case CGD_LAYOUT_HYBRID:
        return "hybrid";
    default:
        return "none";
    }
}

const char *cgd_kind_name(enum cgd_kind k) {
    switch (k) {
    case CGD_KIND_POD:
        return "pod";
    case CGD_KIND_CONTAINER:
        return "container";
    case CGD_KIND_SERVICE:
        return "service";
    case CGD_KIND_KUBE_OTHER:
        return "kubepods";
    case CGD_KIND_SYSTEMD_OTHER:
        return "slice";
    default:
        return "cgroup";
    }
}

/* ---- mountinfo ------------------------------------------------------------------------------ */

/* Copies a mountinfo field into out, undoing the kernel's octal escapes (\040, \011, \012,
 * \134). Returns 0, or -EINVAL when it does not fit or an escape is bad. */
static int unescape(const char *s, size_t n, char *out, size_t outlen) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '\\') {
            if (i + 3 >= n) return -EINVAL;
            int v = 0;
            for (int k = 1; k <= 3; k++) {
                char d = s[i + (size_t)k];
                if (d < '0' || d > '7') return -EINVAL;
                v = v * 8 + (d - '0');
            }
            if (v == 0 || v > 255) return -EINVAL;
            c = (char)v;
            i += 3;
        }
        if (o + 1 >= outlen) return -EINVAL;
        out[o++] = c;
    }
    out[o] = '\0';
    return 0;
}

/* Does the comma-separated list contain name exactly? */
static int opt_has(const char *list, size_t n, const char *name) {
    size_t l = strlen(name);
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && list[j] != ',')
            j++;
        if (j - i == l && memcmp(list + i, name, l) == 0) return 1;
        i = j + 1;
    }
    return 0;
}

int cgd_parse_mountinfo(const char *buf, size_t len, cgd_mounts *m, char *err, size_t errlen) {
    memset(m, 0, sizeof *m);
    const char *p = buf, *end = buf + len;
    int lineno = 0, any_v1 = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        lineno++;
        /* Fields: id parent maj:min root mountpoint options [optional...] - fstype source super */
        const char *f[64];
        size_t fl[64];
        int nf = 0;
        const char *q = p;
        while (q < le && nf < 64) {
            while (q < le && *q == ' ')
                q++;
            if (q >= le) break;
            const char *s = q;
            while (q < le && *q != ' ')
                q++;
            f[nf] = s;
            fl[nf] = (size_t)(q - s);
            nf++;
        }
        p = nl ? nl + 1 : end;
        if (nf == 0) continue;
        int dash = -1;
        for (int i = 6; i < nf; i++)
            if (fl[i] == 1 && f[i][0] == '-') {
                dash = i;
                break;
            }
        if (nf < 7 || dash < 0 || dash + 4 > nf) {
            /* Only cgroup lines matter; anything else that is malformed is skipped unless it
             * mentions cgroup, so a garbled cgroup line is never silently ignored. */
            if (memmem(f[0], (size_t)(le - f[0]), "cgroup", 6))
                return errmsg(err, errlen, -EINVAL, "mountinfo line %d: malformed mount line",
                              lineno);
            continue;
        }
        const char *fs = f[dash + 1];
        size_t fsl = fl[dash + 1];
        int v2 = fsl == 7 && memcmp(fs, "cgroup2", 7) == 0;
        int v1 = fsl == 6 && memcmp(fs, "cgroup", 6) == 0;
        if (!v1 && !v2) continue;
        char mp[CGD_PATH_MAX];
        if (unescape(f[4], fl[4], mp, sizeof mp) < 0 || mp[0] != '/')
            return errmsg(err, errlen, -EINVAL, "mountinfo line %d: bad mount point", lineno);
        if (v2) {
            if (!m->v2[0]) strcpy(m->v2, mp);
            continue;
        }
        const char *so = f[dash + 3];
        size_t sol = fl[dash + 3];
        struct {
            const char *name;
            char *dst;
        } ctl[] = {{"cpu", m->cpu},
                   {"cpuacct", m->cpuacct},
                   {"memory", m->memory},
                   {"pids", m->pids},
                   {"freezer", m->freezer}};
        for (size_t i = 0; i < sizeof ctl / sizeof ctl[0]; i++) {
            if (opt_has(so, sol, ctl[i].name) && !ctl[i].dst[0]) {
                strcpy(ctl[i].dst, mp);
                any_v1 = 1;
            }
        }
    }
    if (any_v1 && m->v2[0])
        m->layout = CGD_LAYOUT_HYBRID;
    else if (any_v1)
        m->layout = CGD_LAYOUT_V1;
    else if (m->v2[0])
        m->layout = CGD_LAYOUT_V2;
    else
        m->layout = CGD_LAYOUT_NONE;
    return 0;
}

int cgd_read_mountinfo(const char *path, cgd_mounts *m, char *err, size_t errlen) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = -errno;
        return errmsg(err, errlen, e, "cannot open %s: %s", path, strerror(-e));
    }
    size_t cap = 16384, len = 0;
    char *buf = malloc(cap);
    if (!buf) {
        close(fd);
        return errmsg(err, errlen, -ENOMEM, "out of memory reading %s", path);
    }
    int rc = 0;
    for (;;) {
        if (len == cap) {
            if (cap >= (16u << 20)) {
                rc = errmsg(err, errlen, -EFBIG, "%s is larger than 16 MB", path);
                break;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                rc = errmsg(err, errlen, -ENOMEM, "out of memory reading %s", path);
                break;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0) {
            if (errno == EINTR) continue;
            rc = -errno;
            errmsg(err, errlen, rc, "cannot read %s: %s", path, strerror(-rc));
            break;
        }
        if (n == 0) break;
        len += (size_t)n;
    }
    close(fd);
    if (rc == 0) rc = cgd_parse_mountinfo(buf, len, m, err, errlen);
    free(buf);
    return rc;
}

const char *cgd_primary(const cgd_mounts *m) {
    if (m->cpuacct[0]) return m->cpuacct;
    if (m->cpu[0]) return m->cpu;
    return m->v2;
}

/* ---- classification ------------------------------------------------------------------------ */

static int starts(const char *s, size_t n, const char *pre) {
    size_t l = strlen(pre);
    return n >= l && memcmp(s, pre, l) == 0;
}
static int ends(const char *s, size_t n, const char *suf) {
    size_t l = strlen(suf);
    return n >= l && memcmp(s + n - l, suf, l) == 0;
}

static void copy_n(char *dst, size_t dstlen, const char *s, size_t n) {
    if (n >= dstlen) n = dstlen - 1;
    memcpy(dst, s, n);
    dst[n] = '\0';
}

static int is_qos(const char *s, size_t n) {
    return (n == 9 && memcmp(s, "burstable", 9) == 0) ||
           (n == 10 && memcmp(s, "besteffort", 10) == 0);
}

void cgd_classify(const char *rel, cgd_info *out) {
    memset(out, 0, sizeof *out);
    out->kind = CGD_KIND_CGROUP;
    /* Split into components. */
    const char *c[16];
    size_t cl[16];
    int n = 0;
    const char *p = rel;
    while (*p && n < 16) {
        while (*p == '/')
            p++;
        if (!*p) break;
        const char *s = p;
        while (*p && *p != '/')
            p++;
        c[n] = s;
        cl[n] = (size_t)(p - s);
        n++;
    }
    for (int i = 0; i < n; i++) {
        /* cgroupfs driver: kubepods[/qos]/pod<uid>[/<container>] */
        if (cl[i] == 8 && memcmp(c[i], "kubepods", 8) == 0) {
            int j = i + 1;
            out->kind = CGD_KIND_KUBE_OTHER;
            snprintf(out->qos, sizeof out->qos, "guaranteed");
            if (j < n && is_qos(c[j], cl[j])) {
                copy_n(out->qos, sizeof out->qos, c[j], cl[j]);
                j++;
            }
            if (j >= n) return;
            if (!starts(c[j], cl[j], "pod") || cl[j] == 3) {
                out->kind = CGD_KIND_CGROUP;
                out->qos[0] = '\0';
                return;
            }
            copy_n(out->pod_uid, sizeof out->pod_uid, c[j] + 3, cl[j] - 3);
            out->kind = CGD_KIND_POD;
            j++;
            if (j < n) {
                copy_n(out->container_id, sizeof out->container_id, c[j], cl[j]);
                out->kind = j + 1 == n ? CGD_KIND_CONTAINER : CGD_KIND_CGROUP;
            }
            return;
        }
        /* systemd driver: kubepods.slice[/kubepods-<qos>.slice]/kubepods[-<qos>]-pod<uid>.slice
         * [/<runtime>-<id>.scope] */
        if (cl[i] == 14 && memcmp(c[i], "kubepods.slice", 14) == 0) {
            int j = i + 1;
            out->kind = CGD_KIND_KUBE_OTHER;
            snprintf(out->qos, sizeof out->qos, "guaranteed");
            if (j < n && starts(c[j], cl[j], "kubepods-") && ends(c[j], cl[j], ".slice") &&
                is_qos(c[j] + 9, cl[j] - 9 - 6)) {
                copy_n(out->qos, sizeof out->qos, c[j] + 9, cl[j] - 15);
                j++;
            }
            if (j >= n) return;
            const char *pod = NULL; /* the last "-pod" of the component */
            for (const char *q = c[j]; q + 4 <= c[j] + cl[j]; q++)
                if (memcmp(q, "-pod", 4) == 0) pod = q + 1;
            if (!starts(c[j], cl[j], "kubepods-") || !pod || !ends(c[j], cl[j], ".slice")) {
                out->kind = CGD_KIND_CGROUP;
                out->qos[0] = '\0';
                return;
            }
            size_t ul = (size_t)(c[j] + cl[j] - 6 - (pod + 3));
            copy_n(out->pod_uid, sizeof out->pod_uid, pod + 3, ul);
            for (char *u = out->pod_uid; *u; u++)
                if (*u == '_') *u = '-';
            out->kind = CGD_KIND_POD;
            j++;
            if (j < n) {
                const char *s = c[j];
                size_t l = cl[j];
                if (ends(s, l, ".scope")) l -= 6;
                const char *dash = NULL;
                for (size_t k = 0; k < l; k++)
                    if (s[k] == '-') dash = s + k;
                if (dash) {
                    l -= (size_t)(dash + 1 - s);
                    s = dash + 1;
                }
                copy_n(out->container_id, sizeof out->container_id, s, l);
                out->kind = j + 1 == n ? CGD_KIND_CONTAINER : CGD_KIND_CGROUP;
            }
            return;
        }
        if (cl[i] == 12 && memcmp(c[i], "system.slice", 12) == 0) {
            if (i + 1 == n) {
                out->kind = CGD_KIND_SYSTEMD_OTHER;
            } else if (ends(c[i + 1], cl[i + 1], ".service")) {
                copy_n(out->service, sizeof out->service, c[i + 1], cl[i + 1]);
                out->kind = i + 2 == n ? CGD_KIND_SERVICE : CGD_KIND_SYSTEMD_OTHER;
            }
            return;
        }
    }
}

int cgd_filter(const char *rel, const char *const *include, size_t ninclude,
               const char *const *exclude, size_t nexclude) {
    int keep = ninclude == 0;
    for (size_t i = 0; i < ninclude && !keep; i++)
        if (fnmatch(include[i], rel, 0) == 0) keep = 1;
    for (size_t i = 0; i < nexclude && keep; i++)
        if (fnmatch(exclude[i], rel, 0) == 0) keep = 0;
    return keep;
}

/* ---- the watcher --------------------------------------------------------------------------- */

enum root_type { ROOT_KUBE, ROOT_SYSTEMD, ROOT_EXTRA };

typedef struct root {
    char *rel;
    enum root_type type;
    int max_depth;
    int present;
} root;

typedef struct node {
    char *rel;
    int wd;
    int root;     /* index into roots */
    int depth;    /* below its root */
    int reported; /* reported as added */
    int seen;     /* rescan mark */
    struct node *next_rel, *next_wd;
} node;

struct cgd {
    char *base;
    root *roots;
    size_t nroots;
    char **include, **exclude;
    size_t ninclude, nexclude;
    int ifd;
    node **by_rel, **by_wd;
    size_t nbuckets, nnodes;
    int need_rescan;
    int first;
    cgd_stats st;
};

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ULL;
    while (*s)
        h = (h ^ (uint8_t)*s++) * 1099511628211ULL;
    return h;
}

static node *find_rel(const cgd *d, const char *rel) {
    for (node *n = d->by_rel[hash_str(rel) & (d->nbuckets - 1)]; n; n = n->next_rel)
        if (strcmp(n->rel, rel) == 0) return n;
    return NULL;
}

static node *find_wd(const cgd *d, int wd) {
    if (wd < 0) return NULL;
    for (node *n = d->by_wd[(size_t)wd & (d->nbuckets - 1)]; n; n = n->next_wd)
        if (n->wd == wd) return n;
    return NULL;
}

static void wd_link(cgd *d, node *n) {
    if (n->wd < 0) return;
    size_t b = (size_t)n->wd & (d->nbuckets - 1);
    n->next_wd = d->by_wd[b];
    d->by_wd[b] = n;
}

static void wd_unlink(cgd *d, node *n) {
    if (n->wd < 0) return;
    node **pp = &d->by_wd[(size_t)n->wd & (d->nbuckets - 1)];
    while (*pp && *pp != n)
        pp = &(*pp)->next_wd;
    if (*pp) *pp = n->next_wd;
}

static int grow(cgd *d) {
    size_t nb = d->nbuckets * 2;
    node **r = calloc(nb, sizeof *r), **w = calloc(nb, sizeof *w);
    if (!r || !w) {
        free(r);
        free(w);
        return -ENOMEM;
    }
    for (size_t i = 0; i < d->nbuckets; i++) {
        node *n = d->by_rel[i];
        while (n) {
            node *next = n->next_rel;
            size_t b = hash_str(n->rel) & (nb - 1);
            n->next_rel = r[b];
            r[b] = n;
            if (n->wd >= 0) {
                size_t bw = (size_t)n->wd & (nb - 1);
                n->next_wd = w[bw];
                w[bw] = n;
            }
            n = next;
        }
    }
    free(d->by_rel);
    free(d->by_wd);
    d->by_rel = r;
    d->by_wd = w;
    d->nbuckets = nb;
    return 0;
}

static char *join_rel(const char *parent, const char *name) {
    size_t pl = strlen(parent), nl = strlen(name);
    int slash = !(pl == 1 && parent[0] == '/');
    char *s = malloc(pl + (size_t)slash + nl + 1);
    if (!s) return NULL;
    memcpy(s, parent, pl);
    if (slash) s[pl] = '/';
    memcpy(s + pl + (size_t)slash, name, nl + 1);
    return s;
}

static int full_path(const cgd *d, const char *rel, char *out, size_t outlen) {
    int n = snprintf(out, outlen, "%s%s", d->base, strcmp(rel, "/") == 0 ? "" : rel);
    return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

/* Should this node be reported, and with which info? */
static int wanted(const cgd *d, const node *n, cgd_info *info) {
    cgd_classify(n->rel, info);
    const root *r = &d->roots[n->root];
    int ok;
    switch (r->type) {
    case ROOT_KUBE:
        ok = info->kind == CGD_KIND_POD || info->kind == CGD_KIND_CONTAINER;
        break;
    case ROOT_SYSTEMD:
        ok = info->kind == CGD_KIND_SERVICE;
        break;
    default:
        ok = 1;
        if (info->kind == CGD_KIND_KUBE_OTHER || info->kind == CGD_KIND_SYSTEMD_OTHER)
            info->kind = CGD_KIND_CGROUP;
        break;
    }
    return ok && cgd_filter(n->rel, (const char *const *)d->include, d->ninclude,
                            (const char *const *)d->exclude, d->nexclude);
}

static void remove_node(cgd *d, node *n, cgd_change_fn fn, void *ctx, int *changes) {
    if (n->reported) {
        fn(ctx, n->rel, NULL, 0);
        d->st.sampled--;
        (*changes)++;
    }
    if (n->wd >= 0 && d->ifd >= 0) inotify_rm_watch(d->ifd, n->wd); /* EINVAL if gone: fine */
    wd_unlink(d, n);
    node **pp = &d->by_rel[hash_str(n->rel) & (d->nbuckets - 1)];
    while (*pp && *pp != n)
        pp = &(*pp)->next_rel;
    if (*pp) *pp = n->next_rel;
    d->nnodes--;
    free(n->rel);
    free(n);
}

/* Removes rel and everything below it. */
static void remove_subtree(cgd *d, const char *rel, cgd_change_fn fn, void *ctx, int *changes) {
    size_t l = strlen(rel);
    int is_root = strcmp(rel, "/") == 0;
    for (size_t i = 0; i < d->nbuckets; i++) {
        node *n = d->by_rel[i];
        while (n) {
            node *next = n->next_rel;
            if (is_root || strcmp(n->rel, rel) == 0 ||
                (strncmp(n->rel, rel, l) == 0 && n->rel[l] == '/'))
                remove_node(d, n, fn, ctx, changes);
            n = next;
        }
    }
}

#define WATCH_MASK                                                                                 \
    (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_ONLYDIR)

/* Adds (or, during a rescan, marks) the directory rel and walks below it. */
static int walk(cgd *d, const char *rel, int rootix, int depth, cgd_change_fn fn, void *ctx,
                int *changes) {
    char path[CGD_PATH_MAX * 2];
    if (full_path(d, rel, path, sizeof path) < 0) {
        d->st.walk_errors++;
        return 0;
    }
    node *n = find_rel(d, rel);
    if (n) {
        n->seen = 1;
    } else {
        if (d->nnodes + 1 > d->nbuckets && grow(d) < 0) return -ENOMEM;
        n = calloc(1, sizeof *n);
        if (!n || !(n->rel = strdup(rel))) {
            free(n);
            return -ENOMEM;
        }
        n->wd = -1;
        n->root = rootix;
        n->depth = depth;
        n->seen = 1;
        size_t b = hash_str(rel) & (d->nbuckets - 1);
        n->next_rel = d->by_rel[b];
        d->by_rel[b] = n;
        d->nnodes++;
    }
    /* Watch before listing, so a child made in between is seen one way or the other. A
     * directory at the depth limit needs no watch (its removal shows up in its parent's),
     * except a root, whose parent is not watched. */
    int leaf = depth >= d->roots[rootix].max_depth;
    if (n->wd < 0 && d->ifd >= 0 && (!leaf || depth == 0)) {
        int wd = inotify_add_watch(d->ifd, path, WATCH_MASK);
        if (wd >= 0) {
            n->wd = wd;
            wd_link(d, n);
        } else if (errno == ENOENT || errno == ENOTDIR) {
            int dummy = 0;
            remove_node(d, n, fn, ctx, &dummy); /* vanished before we got to it */
            return 0;
        } else {
            /* Out of watches (ENOSPC) or similar: degrade to rescans at every poll. */
            close(d->ifd);
            d->ifd = -1;
            d->st.inotify = 0;
        }
    }
    if (!n->reported) {
        cgd_info info;
        if (wanted(d, n, &info)) {
            n->reported = 1;
            d->st.sampled++;
            (*changes)++;
            fn(ctx, n->rel, &info, 1);
        }
    }
    if (leaf) return 0;
    DIR *dir = opendir(path);
    if (!dir) {
        if (errno != ENOENT) d->st.walk_errors++;
        return 0;
    }
    struct dirent *de;
    int rc = 0;
    while (rc == 0 && (de = readdir(dir)) != NULL) {
        if (de->d_name[0] == '.') continue;
        int isdir = de->d_type == DT_DIR;
        if (de->d_type == DT_UNKNOWN) {
            struct stat stb;
            isdir = fstatat(dirfd(dir), de->d_name, &stb, AT_SYMLINK_NOFOLLOW) == 0 &&
                    S_ISDIR(stb.st_mode);
        }
        if (!isdir) continue;
        char *child = join_rel(rel, de->d_name);
        if (!child) {
            rc = -ENOMEM;
            break;
        }
        node *c = find_rel(d, child);
        if (c && c->root != rootix)
            c->seen = 1; /* claimed by an earlier root */
        else
            rc = walk(d, child, rootix, depth + 1, fn, ctx, changes);
        free(child);
    }
    closedir(dir);
    return rc;
}

static int walk_root(cgd *d, size_t i, cgd_change_fn fn, void *ctx, int *changes) {
    char path[CGD_PATH_MAX * 2];
    struct stat stb;
    if (full_path(d, d->roots[i].rel, path, sizeof path) < 0 || stat(path, &stb) < 0 ||
        !S_ISDIR(stb.st_mode)) {
        d->roots[i].present = 0;
        return 0;
    }
    d->roots[i].present = 1;
    node *n = find_rel(d, d->roots[i].rel);
    if (n && (size_t)n->root != i) return 0; /* nested in an earlier root */
    return walk(d, d->roots[i].rel, (int)i, 0, fn, ctx, changes);
}

static int rescan(cgd *d, cgd_change_fn fn, void *ctx, int *changes) {
    d->st.rescans++;
    for (size_t i = 0; i < d->nbuckets; i++)
        for (node *n = d->by_rel[i]; n; n = n->next_rel)
            n->seen = 0;
    for (size_t i = 0; i < d->nroots; i++) {
        int rc = walk_root(d, i, fn, ctx, changes);
        if (rc < 0) return rc;
    }
    for (size_t i = 0; i < d->nbuckets; i++) {
        node *n = d->by_rel[i];
        while (n) {
            node *next = n->next_rel;
            if (!n->seen) remove_node(d, n, fn, ctx, changes);
            n = next;
        }
    }
    return 0;
}

static int handle_events(cgd *d, cgd_change_fn fn, void *ctx, int *changes) {
    char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        ssize_t len = read(d->ifd, buf, sizeof buf);
        if (len < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) return 0;
            return -errno;
        }
        if (len == 0) return 0;
        for (char *p = buf; p < buf + len;) {
            struct inotify_event *ev = (struct inotify_event *)p;
            p += sizeof *ev + ev->len;
            d->st.events++;
            if (ev->mask & IN_Q_OVERFLOW) {
                d->need_rescan = 1;
                continue;
            }
            node *parent = find_wd(d, ev->wd);
            if (!parent) continue;
            if (ev->mask & IN_DELETE_SELF) {
                /* A watched directory went away without us seeing its parent's event:
                 * that is a root (whose parent is not watched). */
                if (parent->depth == 0) d->roots[parent->root].present = 0;
                char *rel = strdup(parent->rel);
                if (!rel) return -ENOMEM;
                remove_subtree(d, rel, fn, ctx, changes);
                free(rel);
                continue;
            }
            if (!(ev->mask & IN_ISDIR) || ev->len == 0) continue;
            char *child = join_rel(parent->rel, ev->name);
            if (!child) return -ENOMEM;
            int rc = 0;
            if (ev->mask & (IN_CREATE | IN_MOVED_TO)) {
                if (!find_rel(d, child) && parent->depth < d->roots[parent->root].max_depth)
                    rc = walk(d, child, parent->root, parent->depth + 1, fn, ctx, changes);
            } else if (ev->mask & (IN_DELETE | IN_MOVED_FROM)) {
                remove_subtree(d, child, fn, ctx, changes);
            }
            free(child);
            if (rc < 0) return rc;
        }
    }
}

int cgd_poll(cgd *d, cgd_change_fn fn, void *ctx) {
    int changes = 0, rc = 0;
    if (d->first || d->need_rescan || d->ifd < 0) {
        d->first = 0;
        d->need_rescan = 0;
        rc = rescan(d, fn, ctx, &changes);
        /* Events queued meanwhile stay queued: a child made after its directory was listed is
         * only known from them (handling one for a known directory changes nothing). */
        return rc < 0 ? rc : changes;
    }
    /* Roots: their parents are not watched, and cgroupfs does not always tell a watched
     * directory that it was removed, so look at each (a stat per root and poll). */
    for (size_t i = 0; i < d->nroots && rc == 0; i++) {
        if (!d->roots[i].present) {
            rc = walk_root(d, i, fn, ctx, &changes);
            continue;
        }
        char path[CGD_PATH_MAX * 2];
        struct stat stb;
        if (full_path(d, d->roots[i].rel, path, sizeof path) == 0 && stat(path, &stb) < 0 &&
            errno == ENOENT) {
            node *n = find_rel(d, d->roots[i].rel);
            d->roots[i].present = 0;
            if (n && (size_t)n->root == i) remove_subtree(d, d->roots[i].rel, fn, ctx, &changes);
        }
    }
    if (rc == 0) rc = handle_events(d, fn, ctx, &changes);
    if (rc == 0 && d->need_rescan) {
        d->need_rescan = 0;
        rc = rescan(d, fn, ctx, &changes);
    }
    return rc < 0 ? rc : changes;
}

void cgd_request_rescan(cgd *d) {
    d->need_rescan = 1;
}

void cgd_get_stats(const cgd *d, cgd_stats *st) {
    *st = d->st;
    st->tracked = d->nnodes;
}

static char **dup_list(const char *const *v, size_t n) {
    char **out = calloc(n ? n : 1, sizeof *out);
    if (!out) return NULL;
    for (size_t i = 0; i < n; i++) {
        if (!(out[i] = strdup(v[i]))) {
            for (size_t k = 0; k < i; k++)
                free(out[k]);
            free(out);
            return NULL;
        }
    }
    return out;
}

static int add_root(cgd *d, const char *rel, enum root_type t, int max_depth) {
    /* Normalise: leading '/', no trailing '/'. */
    char tmp[CGD_PATH_MAX];
    int n = snprintf(tmp, sizeof tmp, "%s%s", rel[0] == '/' ? "" : "/", rel);
    if (n < 0 || (size_t)n >= sizeof tmp) return -ENAMETOOLONG;
    while (n > 1 && tmp[n - 1] == '/')
        tmp[--n] = '\0';
    for (size_t i = 0; i < d->nroots; i++)
        if (strcmp(d->roots[i].rel, tmp) == 0) return 0;
    d->roots[d->nroots].rel = strdup(tmp);
    if (!d->roots[d->nroots].rel) return -ENOMEM;
    d->roots[d->nroots].type = t;
    d->roots[d->nroots].max_depth = max_depth;
    d->nroots++;
    return 0;
}

int cgd_new(cgd **out, const cgd_config *cfg, char *err, size_t errlen) {
    *out = NULL;
    if (!cfg->base || !cfg->base[0])
        return errmsg(err, errlen, -EINVAL, "cgroup discovery: no cgroup hierarchy to walk");
    cgd *d = calloc(1, sizeof *d);
    if (!d) return errmsg(err, errlen, -ENOMEM, "cgroup discovery: out of memory");
    d->ifd = -1;
    d->first = 1;
    d->nbuckets = 256;
    d->base = strdup(cfg->base);
    size_t blen = d->base ? strlen(d->base) : 0;
    while (blen > 1 && d->base[blen - 1] == '/')
        d->base[--blen] = '\0';
    d->roots = calloc(cfg->nroots + 3, sizeof *d->roots);
    d->by_rel = calloc(d->nbuckets, sizeof *d->by_rel);
    d->by_wd = calloc(d->nbuckets, sizeof *d->by_wd);
    d->include = dup_list(cfg->include, cfg->ninclude);
    d->exclude = dup_list(cfg->exclude, cfg->nexclude);
    d->ninclude = cfg->ninclude;
    d->nexclude = cfg->nexclude;
    int rc = 0;
    if (!d->base || !d->roots || !d->by_rel || !d->by_wd || !d->include || !d->exclude)
        rc = -ENOMEM;
    int depth = cfg->max_depth > 0 ? cfg->max_depth : 8;
    if (rc == 0 && cfg->kubernetes) rc = add_root(d, "/kubepods", ROOT_KUBE, 3);
    if (rc == 0 && cfg->kubernetes) rc = add_root(d, "/kubepods.slice", ROOT_KUBE, 3);
    if (rc == 0 && cfg->systemd) rc = add_root(d, "/system.slice", ROOT_SYSTEMD, 1);
    for (size_t i = 0; rc == 0 && i < cfg->nroots; i++)
        rc = add_root(d, cfg->roots[i], ROOT_EXTRA, depth);
    if (rc < 0) {
        cgd_free(d);
        return errmsg(err, errlen, rc, "cgroup discovery: %s", strerror(-rc));
    }
    d->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    d->st.inotify = d->ifd >= 0;
    *out = d;
    return 0;
}

void cgd_free(cgd *d) {
    if (!d) return;
    for (size_t i = 0; d->by_rel && i < d->nbuckets; i++) {
        node *n = d->by_rel[i];
        while (n) {
            node *next = n->next_rel;
            free(n->rel);
            free(n);
            n = next;
        }
    }
    if (d->ifd >= 0) close(d->ifd);
    for (size_t i = 0; d->roots && i < d->nroots; i++)
        free(d->roots[i].rel);
    for (size_t i = 0; d->include && i < d->ninclude; i++)
        free(d->include[i]);
    for (size_t i = 0; d->exclude && i < d->nexclude; i++)
        free(d->exclude[i]);
    free(d->include);
    free(d->exclude);
    free(d->roots);
    free(d->by_rel);
    free(d->by_wd);
    free(d->base);
    free(d);
}
