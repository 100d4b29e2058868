/* cgroup_collect.c: per-cgroup sampling (see cgroup_collect.h) and its registration as the
 * agent's "cgroup" collector. */
#include "collect/cgroup_collect.h"

#include "collect/cgroup_discover.h"
#include "collect/cgroup_parse.h"
#include "errmsg.h"
#include "log.h"
#include "rate.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MOD "cgroup"

/* The files read per cgroup. */
enum cg_file {
    F_CPUACCT_USAGE, /* v1 cpuacct.usage */
    F_CPU_STAT,      /* v1 cpu.stat (throttling) or v2 cpu.stat (usage + throttling) */
    F_MEM_USAGE,     /* memory.usage_in_bytes / memory.current */
    F_MEM_STAT,
    F_PIDS,
    F_PSI_CPU,
    F_PSI_MEM,
    F_COUNT
};

/* Metrics, defined once (memcached THREAD_STATS_FIELDS style). */
#define CGC_METRICS(X)                                                                             \
    X(M_CPU, "cgroup_cpu_usage_cores")                                                             \
    X(M_THR_PERIODS, "cgroup_cpu_throttled_periods_per_second")                                    \
    X(M_THR_TIME, "cgroup_cpu_throttled_seconds_per_second")                                       \
    X(M_MEM_USAGE, "cgroup_memory_usage_bytes")                                                    \
    X(M_MEM_WS, "cgroup_memory_working_set_bytes")                                                 \
    X(M_MEM_RSS, "cgroup_memory_rss_bytes")                                                        \
    X(M_PIDS, "cgroup_pids")                                                                       \
    X(M_PSI_CPU_SOME, "cgroup_cpu_pressure_some")                                                  \
    X(M_PSI_CPU_FULL, "cgroup_cpu_pressure_full")                                                  \
    X(M_PSI_MEM_SOME, "cgroup_memory_pressure_some")                                               \
    X(M_PSI_MEM_FULL, "cgroup_memory_pressure_full")

#define X_ENUM(e, name) e,
enum cg_metric { CGC_METRICS(X_ENUM) M_COUNT };
#define X_NAME(e, name) name,
static const char *const metric_names[M_COUNT] = {CGC_METRICS(X_NAME)};

/* Rate counters per cgroup. */
enum { R_CPU, R_THR_PERIODS, R_THR_TIME, R_PSI0, R_COUNT = R_PSI0 + 4 };

enum ctl { C_CPUACCT, C_CPU, C_MEMORY, C_PIDS, C_V2, C_COUNT };

struct v2ent;

typedef struct target {
    char *rel;
    cgd_info info;
    struct v2ent *v2only; /* hybrid: a cgroup of the v2 mount alone, read from there */
    int fd[F_COUNT];
    uint32_t id[M_COUNT];
    uint32_t defined; /* bit per metric: series defined */
    rate_counter rate[R_COUNT];
    unsigned age;           /* rounds since added */
    unsigned slot;          /* staggers the detail reads */
    uint64_t inactive_file; /* from the last memory.stat */
    int have_inactive;
    struct target *next;
} target;

/* Hybrid hosts: a cgroup that discovery found in the v2 mount. It is sampled from there (its
 * own target) only while the primary (v1) hierarchy has no cgroup of the same path. */
typedef struct v2ent {
    char *rel;
    enum cgd_kind kind;
    target *t; /* NULL while the v1 twin is sampled */
    struct v2ent *next;
} v2ent;

struct cgc {
    cgd_mounts mounts;
    char prefix[C_COUNT][CGD_PATH_MAX]; /* below the mount, before rel ("" = none) */
    const char *dir[C_COUNT];           /* mount point per controller ("" = absent) */
    cgd *disc;
    cgd *disc_v2; /* hybrid: the v2 mount, for cgroups that exist only there */
    v2ent *v2;
    int v2_changed; /* either watcher reported a change: reconcile the v2-only targets */
    target *targets;
    unsigned detail_every, next_slot;
    const cgc_out *out; /* during a round */
    cgc_stats st;
    log_ratelimit rl_read, rl_parse, rl_gone, rl_sink;
    int warned_rescan; /* discovery fell back to full walks: said once */
};

static int64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Which controller directory and file name each file lives in, for this layout (a v2-only
 * target of a hybrid host: all in the v2 mount). */
static int file_where(const cgc *c, const target *t, enum cg_file f, enum ctl *ctl,
                      const char **name) {
    int v1cpu = c->dir[C_CPU][0] != '\0';
    if (t->v2only) {
        static const char *const v2name[F_COUNT] = {
            [F_CPU_STAT] = "cpu.stat",    [F_MEM_USAGE] = "memory.current",
            [F_MEM_STAT] = "memory.stat", [F_PIDS] = "pids.current",
            [F_PSI_CPU] = "cpu.pressure", [F_PSI_MEM] = "memory.pressure"};
        *ctl = C_V2;
        *name = v2name[f];
        return v2name[f] != NULL && c->dir[C_V2][0] != '\0';
    }
    switch (f) {
    case F_CPUACCT_USAGE:
        *ctl = C_CPUACCT;
        *name = "cpuacct.usage";
        return c->dir[C_CPUACCT][0] != '\0';
    case F_CPU_STAT:
        if (v1cpu)
            *ctl = C_CPU;
        else
            *ctl = C_V2;
        *name = "cpu.stat";
        return c->dir[*ctl][0] != '\0';
    case F_MEM_USAGE:
        if (c->dir[C_MEMORY][0]) {
            *ctl = C_MEMORY;
            *name = "memory.usage_in_bytes";
        } else {
            *ctl = C_V2;
            *name = "memory.current";
        }
        return c->dir[*ctl][0] != '\0';
    case F_MEM_STAT:
        *ctl = c->dir[C_MEMORY][0] ? C_MEMORY : C_V2;
        *name = "memory.stat";
        return c->dir[*ctl][0] != '\0';
    case F_PIDS:
        *ctl = c->dir[C_PIDS][0] ? C_PIDS : C_V2;
        *name = "pids.current";
        return c->dir[*ctl][0] != '\0';
    case F_PSI_CPU:
        *ctl = C_V2;
        *name = "cpu.pressure";
        return c->dir[C_V2][0] != '\0';
    case F_PSI_MEM:
        *ctl = C_V2;
        *name = "memory.pressure";
        return c->dir[C_V2][0] != '\0';
    default:
        return 0;
    }
}

static int file_path(const cgc *c, const target *t, enum cg_file f, char *out, size_t outlen,
                     const char **name) {
    enum ctl ctl;
    if (!file_where(c, t, f, &ctl, name)) return -ENOENT;
    const char *rel = strcmp(t->rel, "/") == 0 ? "" : t->rel;
    int n = snprintf(out, outlen, "%s%s%s/%s", c->dir[ctl], c->prefix[ctl], rel, *name);
    return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

/* Opens the target's files that are not open yet. Missing ones stay -1 (retried later). */
static void open_files(cgc *c, target *t) {
    for (int f = 0; f < F_COUNT; f++) {
        if (t->fd[f] >= 0) continue;
        char path[CGD_PATH_MAX * 3];
        const char *name;
        if (file_path(c, t, (enum cg_file)f, path, sizeof path, &name) < 0) continue;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            t->fd[f] = fd;
        } else if (errno != ENOENT && errno != ENODEV) {
            c->st.read_errors++;
            log_limited(&c->rl_read, LOG_WARN, MOD, "cannot open %s: %s (skipped)", path,
                        strerror(errno));
        }
    }
}

static void close_files(target *t) {
    for (int f = 0; f < F_COUNT; f++) {
        if (t->fd[f] >= 0) close(t->fd[f]);
        t->fd[f] = -1;
    }
}

static void forget_series(cgc *c, target *t) {
    for (int m = 0; m < M_COUNT; m++)
        if (t->defined & (1u << m)) c->out->forget(c->out->ctx, t->id[m]);
    t->defined = 0;
}

static void target_free(target *t) {
    if (!t) return;
    close_files(t);
    free(t->rel);
    free(t);
}

static target *target_add(cgc *c, const char *rel, const cgd_info *info, v2ent *v2only) {
    target *t = calloc(1, sizeof *t);
    if (!t || !(t->rel = strdup(rel))) {
        free(t);
        log_limited(&c->rl_read, LOG_ERROR, MOD, "out of memory adding %s", rel);
        return NULL;
    }
    t->info = *info;
    t->v2only = v2only;
    t->slot = c->next_slot++;
    for (int f = 0; f < F_COUNT; f++)
        t->fd[f] = -1;
    open_files(c, t);
    t->next = c->targets;
    c->targets = t;
    c->st.cgroups++;
    if (v2only) c->st.v2_only++;
    log_debug(MOD, "sampling %s (%s%s)", rel, cgd_kind_name(info->kind),
              v2only ? ", v2 mount only" : "");
    return t;
}

/* Takes t out of the list, forgets its series and frees it. */
static void target_drop(cgc *c, target *t) {
    for (target **pp = &c->targets; *pp; pp = &(*pp)->next) {
        if (*pp != t) continue;
        *pp = t->next;
        break;
    }
    forget_series(c, t);
    if (t->v2only) {
        t->v2only->t = NULL;
        c->st.v2_only--;
    }
    target_free(t);
    c->st.cgroups--;
}

static void on_change(void *ctx, const char *rel, const cgd_info *info, int added) {
    cgc *c = ctx;
    c->v2_changed = 1;
    if (added) {
        target_add(c, rel, info, NULL);
        return;
    }
    for (target *t = c->targets; t; t = t->next) {
        if (t->v2only || strcmp(t->rel, rel) != 0) continue;
        target_drop(c, t);
        log_debug(MOD, "cgroup %s is gone", rel);
        return;
    }
}

/* Changes of the v2 mount on a hybrid host: remembered; reconcile_v2 decides what is sampled. */
static void on_change_v2(void *ctx, const char *rel, const cgd_info *info, int added) {
    cgc *c = ctx;
    c->v2_changed = 1;
    if (added) {
        v2ent *e = calloc(1, sizeof *e);
        if (!e || !(e->rel = strdup(rel))) {
            free(e);
            log_limited(&c->rl_read, LOG_ERROR, MOD, "out of memory adding %s", rel);
            return;
        }
        e->kind = info->kind;
        e->next = c->v2;
        c->v2 = e;
        return;
    }
    for (v2ent **pp = &c->v2; *pp; pp = &(*pp)->next) {
        v2ent *e = *pp;
        if (strcmp(e->rel, rel) != 0) continue;
        if (e->t) {
            target_drop(c, e->t);
            log_debug(MOD, "cgroup %s is gone (v2 mount)", rel);
        }
        *pp = e->next;
        free(e->rel);
        free(e);
        return;
    }
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A v2 cgroup gets its own target while the primary hierarchy has no cgroup of that path,
 * and loses it when one appears there (the series are the same: same labels). Runs in rounds
 * where discovery reported a change. */
static void reconcile_v2(cgc *c) {
    c->v2_changed = 0;
    if (!c->disc_v2) return;
    size_t n = 0, k = 0;
    for (target *t = c->targets; t; t = t->next)
        n += !t->v2only;
    const char **v = malloc((n ? n : 1) * sizeof *v);
    if (!v) {
        c->v2_changed = 1; /* try again next round */
        return;
    }
    for (target *t = c->targets; t; t = t->next)
        if (!t->v2only) v[k++] = t->rel;
    qsort(v, n, sizeof *v, cmp_str);
    for (v2ent *e = c->v2; e; e = e->next) {
        int twin = bsearch(&e->rel, v, n, sizeof *v, cmp_str) != NULL;
        if (twin && e->t) {
            target_drop(c, e->t);
        } else if (!twin && !e->t) {
            cgd_info info;
            cgd_classify(e->rel, &info);
            info.kind = e->kind;
            e->t = target_add(c, e->rel, &info, e);
        }
    }
    free(v);
}

/* Defines the series of metric m for t on first use. Returns 0 or -errno. */
static int ensure_series(cgc *c, target *t, enum cg_metric m) {
    if (t->defined & (1u << m)) return 0;
    const char *labels[16];
    int n = 0;
    labels[n++] = "cgroup";
    labels[n++] = t->rel;
    labels[n++] = "kind";
    labels[n++] = cgd_kind_name(t->info.kind);
    if (t->info.qos[0]) {
        labels[n++] = "qos";
        labels[n++] = t->info.qos;
    }
    if (t->info.pod_uid[0]) {
        labels[n++] = "pod_uid";
        labels[n++] = t->info.pod_uid;
    }
    if (t->info.container_id[0]) {
        labels[n++] = "container_id";
        labels[n++] = t->info.container_id;
    }
    if (t->info.service[0]) {
        labels[n++] = "service";
        labels[n++] = t->info.service;
    }
    labels[n] = NULL;
    int rc = c->out->series(c->out->ctx, metric_names[m], labels, &t->id[m]);
    if (rc < 0) return rc;
    t->defined |= 1u << m;
    return 0;
}

static void emit(cgc *c, target *t, enum cg_metric m, int64_t ts_ms, double v) {
    int rc = ensure_series(c, t, m);
    if (rc == 0) rc = c->out->put(c->out->ctx, t->id[m], ts_ms, v);
    if (rc < 0)
        log_limited(&c->rl_sink, LOG_WARN, MOD, "cannot queue %s of %s: %s", metric_names[m],
                    t->rel, strerror(-rc));
}

/* Reads one file; 0, -ENODEV when the cgroup is gone, other -errno. */
static int read_file(cgc *c, target *t, enum cg_file f, char *buf, size_t cap, size_t *len) {
    ssize_t n = pread(t->fd[f], buf, cap, 0);
    c->st.files_read++;
    if (n < 0) return errno == ENOENT ? -ENODEV : -errno;
    if ((size_t)n == cap) return -EFBIG;
    *len = (size_t)n;
    return 0;
}

/* Is file f in the hierarchy discovery walks for t (so its loss means the cgroup is gone)? */
static int file_is_primary(const cgc *c, const target *t, enum cg_file f) {
    enum ctl ctl;
    const char *name;
    if (!file_where(c, t, f, &ctl, &name)) return 0;
    return t->v2only ? ctl == C_V2 : c->dir[ctl] == cgd_primary(&c->mounts);
}

/* Handles a failed read: returns 1 when the cgroup is gone (caller drops it). A file of
 * another hierarchy that vanished (e.g. the v1 memory twin of the cgroup was removed) is
 * closed and looked for again later; the cgroup stays sampled. */
static int read_failed(cgc *c, target *t, enum cg_file f, int rc) {
    if (rc == -ENODEV && file_is_primary(c, t, f)) return 1;
    char path[CGD_PATH_MAX * 3];
    const char *name = "?";
    if (file_path(c, t, f, path, sizeof path, &name) < 0) snprintf(path, sizeof path, "%s", t->rel);
    if (rc == -ENODEV) {
        c->st.vanished++;
        log_limited(&c->rl_gone, LOG_INFO, MOD, "%s vanished while being read (skipped)", path);
    } else {
        c->st.read_errors++;
        log_limited(&c->rl_read, LOG_WARN, MOD, "cannot read %s: %s (skipped)", path,
                    strerror(-rc));
    }
    /* Reopen next round: the descriptor may have gone bad. */
    close(t->fd[f]);
    t->fd[f] = -1;
    return 0;
}

static void parse_failed(cgc *c, const target *t, const char *err) {
    c->st.parse_errors++;
    log_limited(&c->rl_parse, LOG_WARN, MOD, "cgroup %s: %s (skipped)", t->rel, err);
}

static void counter_rate(cgc *c, target *t, int r, enum cg_metric m, uint64_t v, int64_t ns,
                         double scale, int64_t ts_ms) {
    double rate;
    enum rate_result res = rate_update(&t->rate[r], v, ns, UINT64_MAX, &rate);
    if (res == RATE_OK || res == RATE_WRAP)
        emit(c, t, m, ts_ms, rate * scale);
    else if (res == RATE_RESET)
        c->st.resets++;
}

/* Samples one cgroup. Every round: CPU usage and memory usage (the working set uses the
 * inactive file bytes of the last memory.stat). Every detail_every-th round, staggered over
 * the cgroups so that rounds cost the same: memory.stat, cpu.stat throttling, pids and PSI
 * (counters stay exact: their rates just span more time). Returns 1 when it vanished. */
static int sample_target(cgc *c, target *t, int64_t ts_ms) {
    char buf[8192], err[200];
    size_t len = 0;
    int rc;
    int64_t ns = mono_ns();
    if ((t->age < 5 || t->age % 60 == 0) && t->age > 0) open_files(c, t);
    int detail = t->age == 0 || (c->st.rounds + t->slot) % c->detail_every == 0;
    t->age++;

    if (t->fd[F_CPUACCT_USAGE] >= 0) {
        rc = read_file(c, t, F_CPUACCT_USAGE, buf, sizeof buf, &len);
        uint64_t v;
        if (rc < 0) {
            if (read_failed(c, t, F_CPUACCT_USAGE, rc)) return 1;
        } else if (cgp_parse_u64(buf, len, "cpuacct.usage", &v, err, sizeof err) < 0) {
            parse_failed(c, t, err);
        } else {
            counter_rate(c, t, R_CPU, M_CPU, v, ns, 1e-9, ts_ms);
        }
    }
    /* v2 without cpuacct: usage comes from cpu.stat, so that is read every round. */
    if (t->fd[F_CPU_STAT] >= 0 && (detail || t->fd[F_CPUACCT_USAGE] < 0)) {
        rc = read_file(c, t, F_CPU_STAT, buf, sizeof buf, &len);
        cgp_cpu_stat s;
        if (rc < 0) {
            if (read_failed(c, t, F_CPU_STAT, rc)) return 1;
        } else if (cgp_parse_cpu_stat(buf, len, &s, err, sizeof err) < 0) {
            parse_failed(c, t, err);
        } else {
            if ((s.have & CGP_CPU_USAGE) && t->fd[F_CPUACCT_USAGE] < 0)
                counter_rate(c, t, R_CPU, M_CPU, s.usage_ns, ns, 1e-9, ts_ms);
            if (detail && (s.have & CGP_CPU_THROTTLED))
                counter_rate(c, t, R_THR_PERIODS, M_THR_PERIODS, s.nr_throttled, ns, 1.0, ts_ms);
            if (detail && (s.have & CGP_CPU_THROTTLED_TIME))
                counter_rate(c, t, R_THR_TIME, M_THR_TIME, s.throttled_ns, ns, 1e-9, ts_ms);
        }
    }
    uint64_t usage = 0;
    int have_usage = 0;
    if (t->fd[F_MEM_USAGE] >= 0) {
        rc = read_file(c, t, F_MEM_USAGE, buf, sizeof buf, &len);
        if (rc < 0) {
            if (read_failed(c, t, F_MEM_USAGE, rc)) return 1;
        } else if (cgp_parse_u64(buf, len, "memory usage", &usage, err, sizeof err) < 0) {
            parse_failed(c, t, err);
        } else {
            have_usage = 1;
            emit(c, t, M_MEM_USAGE, ts_ms, (double)usage);
        }
    }
    if (t->fd[F_MEM_STAT] >= 0 && detail) {
        rc = read_file(c, t, F_MEM_STAT, buf, sizeof buf, &len);
        cgp_mem_stat m;
        if (rc < 0) {
            if (read_failed(c, t, F_MEM_STAT, rc)) return 1;
        } else if (cgp_parse_memory_stat(buf, len, &m, err, sizeof err) < 0) {
            parse_failed(c, t, err);
        } else {
            uint64_t v;
            if (cgp_mem_rss(&m, &v) == 0) emit(c, t, M_MEM_RSS, ts_ms, (double)v);
            t->have_inactive = cgp_mem_inactive_file(&m, &t->inactive_file) == 0;
        }
    }
    if (have_usage && t->have_inactive)
        emit(c, t, M_MEM_WS, ts_ms, (double)cgp_working_set(usage, t->inactive_file));
    if (!detail) return 0;
    if (t->fd[F_PIDS] >= 0) {
        rc = read_file(c, t, F_PIDS, buf, sizeof buf, &len);
        uint64_t v;
        if (rc < 0) {
            if (read_failed(c, t, F_PIDS, rc)) return 1;
        } else if (cgp_parse_u64(buf, len, "pids.current", &v, err, sizeof err) < 0) {
            parse_failed(c, t, err);
        } else {
            emit(c, t, M_PIDS, ts_ms, (double)v);
        }
    }
    static const enum cg_file psi_files[2] = {F_PSI_CPU, F_PSI_MEM};
    static const enum cg_metric psi_metric[2] = {M_PSI_CPU_SOME, M_PSI_MEM_SOME};
    for (int i = 0; i < 2; i++) {
        enum cg_file f = psi_files[i];
        if (t->fd[f] < 0) continue;
        rc = read_file(c, t, f, buf, sizeof buf, &len);
        cgp_psi p;
        if (rc < 0) {
            if (read_failed(c, t, f, rc)) return 1;
        } else if (cgp_parse_psi(buf, len, &p, err, sizeof err) < 0) {
            parse_failed(c, t, err);
        } else {
            /* Totals are microseconds stalled: per second of wall time that is a share. */
            if (p.has_some)
                counter_rate(c, t, R_PSI0 + 2 * i, psi_metric[i], p.some_total_us, ns, 1e-6, ts_ms);
            if (p.has_full)
                counter_rate(c, t, R_PSI0 + 2 * i + 1, (enum cg_metric)(psi_metric[i] + 1),
                             p.full_total_us, ns, 1e-6, ts_ms);
        }
    }
    return 0;
}

int cgc_sample(cgc *c, const cgc_out *out, int64_t now_ms, char *err, size_t errlen) {
    c->out = out;
    int rc = cgd_poll(c->disc, on_change, c);
    if (rc < 0) {
        c->out = NULL;
        return errmsg(err, errlen, rc, "cgroup discovery failed: %s", strerror(-rc));
    }
    if (c->disc_v2) {
        rc = cgd_poll(c->disc_v2, on_change_v2, c);
        if (rc < 0) {
            c->out = NULL;
            return errmsg(err, errlen, rc, "cgroup discovery in %s failed: %s", c->mounts.v2,
                          strerror(-rc));
        }
    }
    if (c->v2_changed) reconcile_v2(c);
    if (!c->warned_rescan) {
        cgd_stats ds;
        cgd_get_stats(c->disc, &ds);
        if (!ds.inotify) {
            c->warned_rescan = 1;
            log_warn(MOD, "inotify is unavailable (out of watches? see "
                          "/proc/sys/fs/inotify/max_user_watches): cgroups are found by walking "
                          "the tree every round, which costs more CPU");
        }
    }
    for (target **pp = &c->targets; *pp;) {
        target *t = *pp;
        if (sample_target(c, t, now_ms)) {
            c->st.vanished++;
            log_limited(&c->rl_gone, LOG_INFO, MOD, "cgroup %s vanished while being read (dropped)",
                        t->rel);
            *pp = t->next;
            forget_series(c, t);
            if (t->v2only) {
                t->v2only->t = NULL; /* its v2 entry goes when the watcher sees it gone */
                c->st.v2_only--;
            }
            target_free(t);
            c->st.cgroups--;
            continue;
        }
        pp = &t->next;
    }
    c->st.rounds++;
    c->out = NULL;
    return 0;
}

/* Parses "ctl=path,ctl=path" into c->prefix. */
static int parse_prefix(cgc *c, const char *spec, const char *self_cgroup, char *err,
                        size_t errlen) {
    static const char *const names[C_COUNT] = {"cpuacct", "cpu", "memory", "pids", ""};
    const char *p = spec;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t l = comma ? (size_t)(comma - p) : strlen(p);
        const char *eq = memchr(p, '=', l);
        if (!eq)
            return errmsg(err, errlen, -EINVAL, "cgroup prefix '%.*s': expected controller=path",
                          (int)l, p);
        size_t nl = (size_t)(eq - p);
        int ctl = -1;
        for (int i = 0; i < C_V2; i++)
            if (strlen(names[i]) == nl && memcmp(p, names[i], nl) == 0) ctl = i;
        if (ctl < 0)
            return errmsg(err, errlen, -EINVAL,
                          "cgroup prefix '%.*s': unknown controller (cpu, cpuacct, memory, pids)",
                          (int)l, p);
        size_t vl = l - nl - 1;
        char val[CGD_PATH_MAX];
        if (vl == 0 || vl >= sizeof val)
            return errmsg(err, errlen, -EINVAL, "cgroup prefix '%.*s': bad path", (int)l, p);
        memcpy(val, eq + 1, vl);
        val[vl] = '\0';
        if (strcmp(val, "self") == 0) {
            char buf[8192];
            int fd = open(self_cgroup, O_RDONLY | O_CLOEXEC);
            if (fd < 0)
                return errmsg(err, errlen, -errno, "cgroup prefix: cannot open %s: %s", self_cgroup,
                              strerror(errno));
            ssize_t n = read(fd, buf, sizeof buf);
            close(fd);
            if (n < 0)
                return errmsg(err, errlen, -EIO, "cgroup prefix: cannot read %s", self_cgroup);
            char perr[160];
            int rc = cgp_proc_cgroup_path(buf, (size_t)n, names[ctl], val, sizeof val, perr,
                                          sizeof perr);
            if (rc < 0)
                return errmsg(err, errlen, rc, "cgroup prefix %s=self: %s", names[ctl],
                              rc == -ENOENT ? "controller not in /proc/self/cgroup" : perr);
        }
        if (val[0] != '/')
            return errmsg(err, errlen, -EINVAL, "cgroup prefix %s: path must start with '/'",
                          names[ctl]);
        size_t len = strlen(val);
        while (len > 0 && val[len - 1] == '/')
            val[--len] = '\0'; /* "/" -> "" */
        snprintf(c->prefix[ctl], sizeof c->prefix[ctl], "%s", val);
        p = comma ? comma + 1 : p + l;
    }
    return 0;
}

int cgc_new(cgc **out, const cgc_config *cfg, char *err, size_t errlen) {
    *out = NULL;
    cgc *c = calloc(1, sizeof *c);
    if (!c) return errmsg(err, errlen, -ENOMEM, "out of memory");
    c->rl_read = (log_ratelimit)LOG_RATELIMIT_INIT(10000, 5);
    c->rl_parse = (log_ratelimit)LOG_RATELIMIT_INIT(10000, 5);
    c->rl_gone = (log_ratelimit)LOG_RATELIMIT_INIT(10000, 5);
    c->rl_sink = (log_ratelimit)LOG_RATELIMIT_INIT(10000, 5);
    c->detail_every = cfg->detail_every > 0 ? (unsigned)cfg->detail_every : 10;
    int rc = cgd_read_mountinfo(cfg->mountinfo ? cfg->mountinfo : "/proc/self/mountinfo",
                                &c->mounts, err, errlen);
    if (rc == 0 && c->mounts.layout == CGD_LAYOUT_NONE)
        rc = errmsg(err, errlen, -ENOENT, "no cgroup hierarchy is mounted");
    if (rc == 0 && cfg->prefix)
        rc = parse_prefix(c, cfg->prefix,
                          cfg->proc_self_cgroup ? cfg->proc_self_cgroup : "/proc/self/cgroup", err,
                          errlen);
    if (rc < 0) {
        free(c);
        return rc;
    }
    c->dir[C_CPUACCT] = c->mounts.cpuacct;
    c->dir[C_CPU] = c->mounts.cpu;
    c->dir[C_MEMORY] = c->mounts.memory;
    c->dir[C_PIDS] = c->mounts.pids;
    c->dir[C_V2] = c->mounts.v2;
    /* Discovery walks the primary hierarchy (v1 cpuacct/cpu, else v2). */
    cgd_config dc = {.base = cgd_primary(&c->mounts),
                     .kubernetes = cfg->kubernetes,
                     .systemd = cfg->systemd,
                     .roots = cfg->roots,
                     .nroots = cfg->nroots,
                     .include = cfg->include,
                     .ninclude = cfg->ninclude,
                     .exclude = cfg->exclude,
                     .nexclude = cfg->nexclude};
    rc = cgd_new(&c->disc, &dc, err, errlen);
    /* Hybrid: cgroups made in the v2 mount alone (not by systemd's mirroring) are sampled
     * from there; the ones with a v1 twin are read from v1 as before. */
    if (rc == 0 && c->mounts.layout == CGD_LAYOUT_HYBRID && c->mounts.v2[0] &&
        strcmp(dc.base, c->mounts.v2) != 0) {
        dc.base = c->mounts.v2;
        rc = cgd_new(&c->disc_v2, &dc, err, errlen);
    }
    if (rc < 0) {
        cgd_free(c->disc);
        free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void cgc_free(cgc *c) {
    if (!c) return;
    while (c->targets) {
        target *t = c->targets;
        c->targets = t->next;
        target_free(t);
    }
    while (c->v2) {
        v2ent *e = c->v2;
        c->v2 = e->next;
        free(e->rel);
        free(e);
    }
    cgd_free(c->disc);
    cgd_free(c->disc_v2);
    free(c);
}

void cgc_get_stats(const cgc *c, cgc_stats *st) {
    *st = c->st;
}

const char *cgc_layout(const cgc *c) {
    return cgd_layout_name(c->mounts.layout);
}

/* ---- the agent's "cgroup" collector ------------------------------------------------------- */

#include "agent.h"
#include "collect/collector.h"

/* Splits a comma-separated list in place into v (at most max entries, empty items skipped). */
static size_t split_list(char *s, const char **v, size_t max) {
    size_t n = 0;
    for (char *tok = strtok(s, ","); tok && n < max; tok = strtok(NULL, ",")) {
        while (*tok == ' ')
            tok++;
        size_t l = strlen(tok);
        while (l > 0 && tok[l - 1] == ' ')
            tok[--l] = '\0';
        if (*tok) v[n++] = tok;
    }
    return n;
}

#define LIST_MAX 64

typedef struct cg_collector {
    cgc *c;
    char *roots, *include, *exclude; /* split copies of the config strings */
    const char *rootv[LIST_MAX], *incv[LIST_MAX], *excv[LIST_MAX];
} cg_collector;

static int out_series(void *ctx, const char *metric, const char *const *labels, uint32_t *id) {
    return sink_series(ctx, metric, labels, id);
}
static int out_put(void *ctx, uint32_t id, int64_t ts_ms, double v) {
    return sink_put(ctx, id, ts_ms, v);
}
static void out_forget(void *ctx, uint32_t id) {
    sink_forget(ctx, id);
}

static void cg_fini(void *state) {
    cg_collector *g = state;
    if (!g) return;
    cgc_free(g->c);
    free(g->roots);
    free(g->include);
    free(g->exclude);
    free(g);
}

static int cg_init(void **state, const struct agent_config *cfg, char *err, size_t errlen) {
    cg_collector *g = calloc(1, sizeof *g);
    if (!g) return errmsg(err, errlen, -ENOMEM, "out of memory");
    g->roots = strdup(cfg->cgroup_roots ? cfg->cgroup_roots : "");
    g->include = strdup(cfg->cgroup_include ? cfg->cgroup_include : "");
    g->exclude = strdup(cfg->cgroup_exclude ? cfg->cgroup_exclude : "");
    if (!g->roots || !g->include || !g->exclude) {
        cg_fini(g);
        return errmsg(err, errlen, -ENOMEM, "out of memory");
    }
    cgc_config cc = {
        .kubernetes = cfg->cgroup_kubernetes,
        .systemd = cfg->cgroup_systemd,
        .roots = g->rootv,
        .nroots = split_list(g->roots, g->rootv, LIST_MAX),
        .include = g->incv,
        .ninclude = split_list(g->include, g->incv, LIST_MAX),
        .exclude = g->excv,
        .nexclude = split_list(g->exclude, g->excv, LIST_MAX),
        .prefix = cfg->cgroup_prefix && *cfg->cgroup_prefix ? cfg->cgroup_prefix : NULL,
        .detail_every = (int)cfg->cgroup_detail_every,
    };
    int rc = cgc_new(&g->c, &cc, err, errlen);
    if (rc < 0) {
        cg_fini(g);
        return rc;
    }
    log_info(MOD,
             "cgroup layout %s; kubernetes %s, systemd %s, %zu extra root(s), detail every %d "
             "round(s)",
             cgc_layout(g->c), cc.kubernetes ? "on" : "off", cc.systemd ? "on" : "off", cc.nroots,
             g->c->detail_every);
    *state = g;
    return 0;
}

static int cg_sample(void *state, agent_sink *sink, int64_t now_ms, char *err, size_t errlen) {
    cg_collector *g = state;
    cgc_out out = {sink, out_series, out_put, out_forget};
    return cgc_sample(g->c, &out, now_ms, err, errlen);
}

static const collector_ops cgroup_collector = {"cgroup", cg_init, cg_sample, cg_fini};
AGENT_COLLECTOR(cgroup, &cgroup_collector)
