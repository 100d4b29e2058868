/* cgroup_discover.h: finds the cgroups the agent samples and notices when they come and go.
 *
 * Three parts:
 *  - cgd_parse_mountinfo: which cgroup layout the host has (v1, v2 or hybrid) and where each
 *    controller is mounted, from /proc/self/mountinfo text (pure).
 *  - cgd_classify: what a cgroup path is (a Kubernetes pod or container under the kubepods
 *    hierarchy of the cgroupfs or systemd driver, a systemd service, or a plain cgroup) and its
 *    labels: QoS class, pod UID, container id, service (pure).
 *  - cgd_*: a watcher over one hierarchy that walks the configured roots once and then follows
 *    changes with inotify (cgroupfs reports mkdir/rmdir to inotify; a full rescan of 500
 *    cgroups costs ~8 ms, far above the agent's budget), so a new cgroup is picked up and a
 *    vanished one dropped at the next cgd_poll. Roots that do not exist yet are looked for at
 *    every poll; an inotify queue overflow or a failed watch falls back to a full rescan. */
#ifndef TIDE_CGROUP_DISCOVER_H
#define TIDE_CGROUP_DISCOVER_H

#include <stddef.h>
#include <stdint.h>

#define CGD_PATH_MAX 512

enum cgd_layout { CGD_LAYOUT_NONE = 0, CGD_LAYOUT_V1, CGD_LAYOUT_V2, CGD_LAYOUT_HYBRID };
const char *cgd_layout_name(enum cgd_layout l); /* "none", "v1", "v2", "hybrid" */

/* Mount points ("" when absent). A v1 hierarchy mounted with several controllers (e.g.
 * "cpu,cpuacct") fills each of them with the same path. */
typedef struct cgd_mounts {
    enum cgd_layout layout;
    char v2[CGD_PATH_MAX];
    char cpu[CGD_PATH_MAX];
    char cpuacct[CGD_PATH_MAX];
    char memory[CGD_PATH_MAX];
    char pids[CGD_PATH_MAX];
    char freezer[CGD_PATH_MAX];
} cgd_mounts;

/* Parses /proc/self/mountinfo text. Returns 0 (layout NONE when no cgroup is mounted), or
 * -EINVAL with err naming the line when a cgroup line is garbled. Mount points with escaped
 * characters (\040 for a space) are unescaped. */
int cgd_parse_mountinfo(const char *buf, size_t len, cgd_mounts *m, char *err, size_t errlen);
/* Reads and parses the file at path (normally /proc/self/mountinfo). 0 or -errno with err. */
int cgd_read_mountinfo(const char *path, cgd_mounts *m, char *err, size_t errlen);

/* The hierarchy whose directory tree defines the cgroups: v1 cpuacct (else cpu) when present,
 * else the v2 mount. Returns "" when there is none. */
const char *cgd_primary(const cgd_mounts *m);

enum cgd_kind {
    CGD_KIND_CGROUP = 0, /* a cgroup under an extra root */
    CGD_KIND_POD,
    CGD_KIND_CONTAINER,
    CGD_KIND_SERVICE,
    CGD_KIND_KUBE_OTHER,    /* kubepods itself, a QoS level: not sampled by default */
    CGD_KIND_SYSTEMD_OTHER, /* system.slice itself, or below a service: not sampled */
};
const char *cgd_kind_name(enum cgd_kind k); /* "cgroup", "pod", "container", "service", ... */

typedef struct cgd_info {
    enum cgd_kind kind;
    char qos[16];           /* "guaranteed", "burstable", "besteffort" (pods, containers) */
    char pod_uid[64];       /* with dashes, also for the systemd driver's underscores */
    char container_id[128]; /* the runtime's id, without "cri-containerd-"/".scope" */
    char service[128];      /* "nginx.service" */
} cgd_info;

/* Classifies a cgroup path relative to the hierarchy root ("/kubepods/burstable/pod<uid>/<id>",
 * "/kubepods.slice/kubepods-pod<uid>.slice/cri-containerd-<id>.scope",
 * "/system.slice/nginx.service", ...). Always succeeds; unknown shapes are CGD_KIND_CGROUP. */
void cgd_classify(const char *rel, cgd_info *out);

/* Glob matching used by include/exclude patterns: fnmatch(3) without FNM_PATHNAME, so '*'
 * also matches '/'. Returns 1 when rel is kept: it matches an include pattern (or there are
 * none) and no exclude pattern. */
int cgd_filter(const char *rel, const char *const *include, size_t ninclude,
               const char *const *exclude, size_t nexclude);

typedef struct cgd_config {
    const char *base;         /* hierarchy mount to walk, e.g. /sys/fs/cgroup/cpuacct */
    int kubernetes;           /* look under /kubepods and /kubepods.slice */
    int systemd;              /* look under /system.slice for *.service */
    const char *const *roots; /* extra roots ("/tide", "/"), every cgroup below kept */
    size_t nroots;
    const char *const *include; /* globs over the relative path */
    size_t ninclude;
    const char *const *exclude;
    size_t nexclude;
    int max_depth; /* below an extra root; 0 means 8 */
} cgd_config;

typedef struct cgd cgd;

/* Creates a watcher (no I/O yet: the first cgd_poll walks the roots). The config's strings
 * are copied. Returns 0 or -errno (-ENOMEM; inotify failures only degrade to rescans). */
int cgd_new(cgd **out, const cgd_config *cfg, char *err, size_t errlen);
void cgd_free(cgd *d);

/* Called for each change: added = 1 for a cgroup to sample (rel starts with '/', info says
 * what it is), 0 for one that vanished. Strings are valid during the call only. */
typedef void (*cgd_change_fn)(void *ctx, const char *rel, const cgd_info *info, int added);

/* Applies what changed since the last call (the first call reports every cgroup). Returns
 * the number of changes reported, or -errno on a failure that needs a log line; failures of
 * single directories (removed while walked, permissions) are skipped and counted in
 * cgd_stats. */
int cgd_poll(cgd *d, cgd_change_fn fn, void *ctx);

/* Forces the next cgd_poll to rescan everything (e.g. after a read said a cgroup is gone
 * while inotify was silent). */
void cgd_request_rescan(cgd *d);

typedef struct cgd_stats {
    uint64_t tracked;     /* directories watched */
    uint64_t sampled;     /* cgroups reported as added and not removed */
    uint64_t rescans;     /* full walks, the first one included */
    uint64_t events;      /* inotify events handled */
    uint64_t walk_errors; /* directories that could not be read */
    int inotify;          /* 1 while inotify is in use, 0 when degraded to rescans */
} cgd_stats;
void cgd_get_stats(const cgd *d, cgd_stats *st);

#endif
