/* cgroup_collect.h: the per-cgroup sampler behind the "cgroup" collector.
 *
 * Each round it applies discovery's changes (agent/collect/cgroup_discover.h), then for every
 * sampled cgroup reads its files with pread() on descriptors kept open (2-8 us per file with 500
 * cgroups, against ~600-800 us per cgroup for libcgroup's cgroup_get_cgroup) and emits:
 *   cgroup_cpu_usage_cores                     rate of cpuacct.usage (v1) or usage_usec (v2)
 *   cgroup_cpu_throttled_periods_per_second    rate of cpu.stat nr_throttled
 *   cgroup_cpu_throttled_seconds_per_second    rate of throttled_time / throttled_usec
 *   cgroup_memory_usage_bytes                  memory.usage_in_bytes / memory.current
 *   cgroup_memory_working_set_bytes            usage minus (total_)inactive_file
 *   cgroup_memory_rss_bytes                    (total_)rss (v1) or anon (v2)
 *   cgroup_pids                                pids.current
 *   cgroup_{cpu,memory}_pressure_{some,full}  share of time stalled (0..1) over the
 *                                              interval, from the PSI totals (v2 only)
 * with labels cgroup (path below the hierarchy root), kind, and qos/pod_uid/container_id for
 * Kubernetes pods and containers or service for systemd services. A series is defined the
 * first time it has a value; rates need two readings, so they start one round after a cgroup
 * appears.
 *
 * CPU and memory usage are read every round; the costlier "detail" files (memory.stat at
 * ~8.5 us, cpu.stat, pids.current, *.pressure) every detail_every-th round (default 10),
 * staggered over the cgroups so every round costs the same. Counter rates stay exact (they
 * span more time); the working set is each round's usage minus the inactive file bytes of
 * the last memory.stat. Reading everything every second would cost ~26 us per cgroup here,
 * 2.6x the 0.5%-of-a-core budget at 500 cgroups.
 *
 * On a hybrid host (v1 controllers plus a v2 mount) discovery also watches the v2 mount: a
 * cgroup that exists only there (no v1 twin of the same path) is sampled from its v2 files:
 * cgroup_cpu_usage_cores from cpu.stat usage_usec every round, throttling, memory.current /
 * memory.stat and pids.current when the v2 mount has those controllers, and PSI. When a v1
 * twin appears it is read from v1 instead (same labels, so the same series).
 *
 * A cgroup whose files vanish (removed mid-read: ENODEV/ENOENT) is dropped and its series
 * forgotten (files of another hierarchy than the walked one are only closed and looked for
 * again); a garbled or unreadable file skips that metric for the round. Both log at a
 * limited rate. */
#ifndef TIDE_CGROUP_COLLECT_H
#define TIDE_CGROUP_COLLECT_H

#include <stddef.h>
#include <stdint.h>

/* Where values go: the agent's sink in the daemon, a recorder in tests and the benchmark. */
typedef struct cgc_out {
    void *ctx;
    int (*series)(void *ctx, const char *metric, const char *const *labels, uint32_t *id);
    int (*put)(void *ctx, uint32_t id, int64_t ts_ms, double value);
    void (*forget)(void *ctx, uint32_t id);
} cgc_out;

typedef struct cgc_config {
    const char *mountinfo;        /* NULL = /proc/self/mountinfo */
    const char *proc_self_cgroup; /* NULL = /proc/self/cgroup (for "self" prefixes) */
    int kubernetes, systemd;      /* discover kubepods and system.slice services */
    const char *const *roots;     /* extra roots */
    size_t nroots;
    const char *const *include, *const *exclude;
    size_t ninclude, nexclude;
    /* v1 only: "controller=path[,controller=path]" where the cgroups of that controller sit
     * below path instead of the hierarchy root; path "self" = the agent's own cgroup of that
     * controller (hosts that put every process in a nested memory cgroup). NULL = none. */
    const char *prefix;
    int detail_every; /* 0 = 10; 1 reads every file every round */
} cgc_config;

typedef struct cgc cgc;

/* Detects the layout, prepares discovery. 0 or -errno with err filled (no cgroup hierarchy
 * mounted, bad prefix). */
int cgc_new(cgc **out, const cgc_config *cfg, char *err, size_t errlen);
void cgc_free(cgc *c);

/* One round at now_ms (unix ms; rates use the monotonic clock). Returns 0, or -errno with err
 * filled when discovery itself failed (single cgroups' failures are logged, not returned). */
int cgc_sample(cgc *c, const cgc_out *out, int64_t now_ms, char *err, size_t errlen);

typedef struct cgc_stats {
    uint64_t cgroups; /* sampled now */
    uint64_t rounds;
    uint64_t files_read;
    uint64_t read_errors;  /* unreadable files (not counting vanished cgroups) */
    uint64_t parse_errors; /* garbled files */
    uint64_t vanished;     /* cgroups dropped, or one hierarchy's files closed, because they
                              disappeared mid-read (ENODEV) */
    uint64_t resets;       /* counters that went backwards */
    uint64_t v2_only;      /* of cgroups: hybrid hosts' cgroups of the v2 mount alone */
} cgc_stats;
void cgc_get_stats(const cgc *c, cgc_stats *st);

/* The layout in use, for the start-up log line ("hybrid", ...). */
const char *cgc_layout(const cgc *c);

#endif
