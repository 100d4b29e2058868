/* bench_cgroup_sample.c: cost of sampling 500 real cgroups every second with the agent's
 * cgroup sampler (agent/collect/cgroup_collect.c), in this process: CPU share of one core from
 * getrusage over the run (goal <= 0.5%), per-cgroup cost in microseconds, peak RSS, and, as a
 * reference measured in the same run, libcgroup's cgroup_get_cgroup per cgroup.
 *
 * Creates /<hier>/tide-bench-<pid>/cN in cpu, cpuacct, pids, v2 and memory (below this
 * process's own memory cgroup, as on this host), removes them at exit (also on SIGINT/TERM).
 * Env: TIDE_BENCH_SECONDS (default 60), TIDE_BENCH_CGROUPS (default 500). Skips (exit 0 with
 * a note) when cgroups cannot be created. */
#include "collect/cgroup_collect.h"
#include "collect/cgroup_discover.h"
#include "collect/cgroup_parse.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <libcgroup.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char dirs[5][600];
static int ndirs, ncg;
static volatile sig_atomic_t stop;

static void cleanup(void) {
    char p[3100];
    for (int d = 0; d < ndirs; d++) {
        for (int i = 0; i < ncg; i++) {
            snprintf(p, sizeof p, "%s/c%d", dirs[d], i);
            rmdir(p);
        }
        rmdir(dirs[d]);
    }
}

static void on_sig(int s) {
    (void)s;
    stop = 1;
}

static uint64_t nput;
static int s_series(void *ctx, const char *m, const char *const *l, uint32_t *id) {
    (void)ctx, (void)m, (void)l;
    static uint32_t next;
    *id = next++;
    return 0;
}
static int s_put(void *ctx, uint32_t id, int64_t ts, double v) {
    (void)ctx, (void)id, (void)ts, (void)v;
    nput++;
    return 0;
}
static void s_forget(void *ctx, uint32_t id) {
    (void)ctx, (void)id;
}

static double mono(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}
static double user_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
}
static double cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

int main(void) {
    const char *e = getenv("TIDE_BENCH_SECONDS");
    int secs = e ? atoi(e) : 60;
    e = getenv("TIDE_BENCH_CGROUPS");
    ncg = e ? atoi(e) : 500;
    if (secs < 2) secs = 2;
    log_threshold = LOG_WARN;
    cgd_mounts m;
    char err[300];
    if (cgd_read_mountinfo("/proc/self/mountinfo", &m, err, sizeof err) < 0 ||
        m.layout == CGD_LAYOUT_NONE) {
        printf("bench_cgroup_sample: skipped (no cgroups: %s)\n", err);
        return 0;
    }
    /* This process's memory cgroup, where memory children must go on this host. */
    char self[8192], memself[512] = "";
    int fd = open("/proc/self/cgroup", O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, self, sizeof self) : -1;
    if (fd >= 0) close(fd);
    if (n > 0)
        cgp_proc_cgroup_path(self, (size_t)n, "memory", memself, sizeof memself, err, sizeof err);
    if (strcmp(memself, "/") == 0) memself[0] = '\0';
    char root[64];
    snprintf(root, sizeof root, "/tide-bench-%d", (int)getpid());
    const char *hier[5] = {m.cpuacct, m.cpu, m.pids, m.v2, m.memory};
    for (int h = 0; h < 5; h++) {
        if (!hier[h][0]) continue;
        int dup = 0;
        for (int k = 0; k < h; k++)
            dup |= strcmp(hier[k], hier[h]) == 0;
        if (dup) continue;
        snprintf(dirs[ndirs], sizeof dirs[ndirs], "%s%s%s", hier[h], h == 4 ? memself : "", root);
        ndirs++;
    }
    atexit(cleanup);
    signal(SIGINT, on_sig);
    signal(SIGTERM, on_sig);
    for (int d = 0; d < ndirs; d++) {
        if (mkdir(dirs[d], 0755) < 0) {
            printf("bench_cgroup_sample: skipped (cannot create %s: %s)\n", dirs[d],
                   strerror(errno));
            ndirs = d;
            return 0;
        }
        for (int i = 0; i < ncg; i++) {
            char p[3100];
            snprintf(p, sizeof p, "%s/c%d", dirs[d], i);
            if (mkdir(p, 0755) < 0) {
                printf("bench_cgroup_sample: cannot create %s: %s\n", p, strerror(errno));
                return 1;
            }
        }
    }
    const char *roots[] = {root};
    char prefix[600];
    snprintf(prefix, sizeof prefix, "memory=%s", memself[0] ? memself : "/");
    cgc_config cfg = {.roots = roots, .nroots = 1, .prefix = prefix};
    cgc *c = NULL;
    if (cgc_new(&c, &cfg, err, sizeof err) < 0) {
        printf("bench_cgroup_sample: %s\n", err);
        return 1;
    }
    cgc_out out = {NULL, s_series, s_put, s_forget};
    /* Round 0: discovery walks the tree and opens every file (measured apart). */
    double t0 = mono(), c0 = cpu_s();
    cgc_sample(c, &out, 0, err, sizeof err);
    double first_ms = (mono() - t0) * 1e3, first_cpu_ms = (cpu_s() - c0) * 1e3;
    cgc_stats st;
    cgc_get_stats(c, &st);
    printf("layout %s, %llu cgroups sampled, %d hierarchies; first round (discovery + opens): "
           "%.1f ms wall, %.1f ms CPU\n",
           cgc_layout(c), (unsigned long long)st.cgroups, ndirs, first_ms, first_cpu_ms);

    double start = mono(), cstart = cpu_s(), ustart = user_s(), busy = 0;
    int rounds = 0;
    uint64_t files0 = st.files_read;
    while (!stop && mono() - start < secs) {
        double a = mono();
        cgc_sample(c, &out, (int64_t)(a * 1000), err, sizeof err);
        busy += mono() - a;
        rounds++;
        double next = start + rounds;
        double now = mono();
        if (next > now) usleep((useconds_t)((next - now) * 1e6));
    }
    double wall = mono() - start, cpu = cpu_s() - cstart, user = user_s() - ustart;
    cgc_get_stats(c, &st);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double per_cg_us = busy / rounds / (double)st.cgroups * 1e6;
    double per_cg_cpu_us = cpu / rounds / (double)st.cgroups * 1e6;
    printf("sampling %llu cgroups every 1 s for %.0f s (%d rounds): CPU %.3f%% of one core "
           "(goal <= 0.5%%), %.2f us wall / %.2f us CPU per cgroup per round, %.2f us per file, "
           "%llu values/round, peak RSS %.1f MB (goal < 10 MB), read errors %llu; "
           "user %.0f%% / kernel %.0f%% of the CPU time\n",
           (unsigned long long)st.cgroups, wall, rounds, cpu / wall * 100.0, per_cg_us,
           per_cg_cpu_us, busy / (double)(st.files_read - files0) * 1e6,
           (unsigned long long)(nput / (uint64_t)(rounds + 1)), ru.ru_maxrss / 1024.0,
           (unsigned long long)st.read_errors, user / cpu * 100, (cpu - user) / cpu * 100);
    cgc_free(c);

    /* Reference: libcgroup's cgroup_get_cgroup on the same cgroups (cpuacct hierarchy). */
    if (cgroup_init() == 0) {
        int nref = ncg < 50 ? ncg : 50;
        double a = mono();
        int ok = 0;
        for (int i = 0; i < nref; i++) {
            char name[128];
            snprintf(name, sizeof name, "%s/c%d", root + 1, i);
            struct cgroup *cg = cgroup_new_cgroup(name);
            if (cg && cgroup_get_cgroup(cg) == 0) ok++;
            cgroup_free(&cg);
        }
        double ref_us = (mono() - a) / nref * 1e6;
        if (ok == nref)
            printf("reference: libcgroup cgroup_get_cgroup %.1f us per cgroup (%.0fx the sampler's "
                   "%.2f us)\n",
                   ref_us, ref_us / per_cg_us, per_cg_us);
        else
            printf("reference: libcgroup cgroup_get_cgroup failed on %d of %d cgroups\n", nref - ok,
                   nref);
    }
    return 0;
}
