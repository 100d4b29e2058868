/* cgroup_collect_test.c: the cgroup sampler over a fake hybrid hierarchy under $TMPDIR (a
 * mountinfo pointing at plain directories holding real fixture files): metrics and labels,
 * counter rates, garbled files skipped and counted, cgroups coming and going, prefixes. */
#include "collect/cgroup_collect.h"
#include "test.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* ---- a recording sink ------------------------------------------------------------------------ */
typedef struct rec_series {
    char metric[64];
    char labels[512];
    double last;
    int nput;
    int forgotten;
} rec_series;

typedef struct rec {
    rec_series s[256];
    uint32_t n;
} rec;

static int rec_series_fn(void *ctx, const char *metric, const char *const *labels, uint32_t *id) {
    rec *r = ctx;
    if (r->n >= 256) return -ENOSPC;
    rec_series *s = &r->s[r->n];
    memset(s, 0, sizeof *s);
    snprintf(s->metric, sizeof s->metric, "%s", metric);
    size_t o = 0;
    for (int i = 0; labels[i]; i += 2)
        o += (size_t)snprintf(s->labels + o, sizeof s->labels - o, "%s%s=%s", i ? "," : "",
                              labels[i], labels[i + 1]);
    *id = r->n++;
    return 0;
}
static int rec_put(void *ctx, uint32_t id, int64_t ts, double v) {
    rec *r = ctx;
    (void)ts;
    if (id >= r->n) return -EINVAL;
    r->s[id].last = v;
    r->s[id].nput++;
    return 0;
}
static void rec_forget(void *ctx, uint32_t id) {
    rec *r = ctx;
    if (id < r->n) r->s[id].forgotten = 1;
}

static rec_series *find(rec *r, const char *metric, const char *cgroup) {
    char want[300];
    snprintf(want, sizeof want, "cgroup=%s,", cgroup);
    for (uint32_t i = 0; i < r->n; i++)
        if (strcmp(r->s[i].metric, metric) == 0 && strncmp(r->s[i].labels, want, strlen(want)) == 0)
            return &r->s[i];
    return NULL;
}

/* ---- the fake hierarchy ---------------------------------------------------------------------- */
static char base[256];

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...) {
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    if (system(cmd) != 0) fprintf(stderr, "command failed: %s\n", cmd);
}

static void put_file(const char *rel, const char *text) {
    char p[600];
    snprintf(p, sizeof p, "%s%s", base, rel);
    FILE *f = fopen(p, "w");
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

/* Makes cgroup REL in every fake controller, with the real fixture files. memory sits below
 * /nested (like this host's processes). */
static void make_cgroup(const char *rel) {
    const char *fx = test_fixture("cgroup");
    sh("mkdir -p '%s/cpuacct%s' '%s/cpu%s' '%s/memory/nested%s' '%s/pids%s' '%s/unified%s'", base,
       rel, base, rel, base, rel, base, rel, base, rel);
    sh("cp '%s/v1/cpuacct.usage' '%s/cpuacct%s/' && cp '%s/v1/cpu.stat' '%s/cpu%s/' && "
       "cp '%s/v1/memory.stat' '%s/v1/memory.usage_in_bytes' '%s/memory/nested%s/' && "
       "cp '%s/v1/pids.current' '%s/pids%s/' && cp '%s/v2-hybrid/cpu.pressure' "
       "'%s/v2-hybrid/memory.pressure' '%s/unified%s/'",
       fx, base, rel, fx, base, rel, fx, fx, base, rel, fx, base, rel, fx, fx, base, rel);
}

static const char *write_mountinfo(void) {
    static char path[300];
    snprintf(path, sizeof path, "%s/mountinfo", base);
    FILE *f = fopen(path, "w");
    if (!f) return NULL;
    fprintf(f, "32 31 0:29 / %s/cpu rw,relatime - cgroup cgroup rw,cpu\n", base);
    fprintf(f, "33 31 0:30 / %s/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n", base);
    fprintf(f, "35 31 0:32 / %s/memory rw,relatime - cgroup cgroup rw,memory\n", base);
    fprintf(f, "39 31 0:36 / %s/pids rw,relatime - cgroup cgroup rw,pids\n", base);
    fprintf(f, "41 31 0:38 / %s/unified rw,relatime - cgroup2 cgroup2 rw\n", base);
    fclose(f);
    return path;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

TEST(cgc_fake_hybrid_tree) {
    const char *t = getenv("TMPDIR");
    snprintf(base, sizeof base, "%s/cgc_test.XXXXXX", t && *t ? t : "/tmp");
    T_ASSERT(mkdtemp(base) != NULL);
    make_cgroup("/kubepods/burstable/podu1/c1");
    make_cgroup("/app");
    sh("mkdir -p '%s/cpuacct/kubepods/burstable/podu1'", base);
    const char *roots[] = {"/app"};
    cgc_config cfg = {.mountinfo = write_mountinfo(),
                      .kubernetes = 1,
                      .roots = roots,
                      .nroots = 1,
                      .prefix = "memory=/nested",
                      .detail_every = 1};
    cgc *c = NULL;
    char err[200];
    T_EQ_INT(cgc_new(&c, &cfg, err, sizeof err), 0);
    T_EQ_STR(cgc_layout(c), "hybrid");
    static rec r;
    memset(&r, 0, sizeof r);
    cgc_out out = {&r, rec_series_fn, rec_put, rec_forget};
    double t0 = now_s();
    T_EQ_INT(cgc_sample(c, &out, 1000, err, sizeof err), 0);
    double t1 = now_s();
    /* Gauges come at once; values from the real fixtures. */
    rec_series *ws = find(&r, "cgroup_memory_working_set_bytes", "/kubepods/burstable/podu1/c1");
    T_ASSERT(ws != NULL);
    T_NEAR(ws->last, 56414208 - 8388608, 0);
    T_ASSERT(strstr(ws->labels, "kind=container,qos=burstable,pod_uid=u1,container_id=c1") != NULL);
    rec_series *rss = find(&r, "cgroup_memory_rss_bytes", "/app");
    T_ASSERT(rss != NULL);
    T_NEAR(rss->last, 46878720, 0);
    T_ASSERT(strstr(rss->labels, "kind=cgroup") != NULL);
    rec_series *pids = find(&r, "cgroup_pids", "/app");
    T_ASSERT(pids != NULL);
    T_NEAR(pids->last, 1, 0);
    /* The pod cgroup exists only in cpuacct: sampled, without memory series. */
    T_ASSERT(find(&r, "cgroup_memory_usage_bytes", "/kubepods/burstable/podu1") == NULL);
    /* Rates need a second reading. */
    T_ASSERT(find(&r, "cgroup_cpu_usage_cores", "/app") == NULL);

    /* 0.1 s of CPU, 12 more throttled periods, 0.05 s throttled, 0.02 s of CPU stall. */
    usleep(200000);
    put_file("/cpuacct/app/cpuacct.usage", "1378293245\n");
    put_file("/cpu/app/cpu.stat",
             "nr_periods 45\nnr_throttled 36\nthrottled_time 1243346008\nnr_bursts 0\n");
    put_file("/unified/app/cpu.pressure", "some avg10=8.51 avg60=1.53 avg300=0.32 total=1224938\n"
                                          "full avg10=8.51 avg60=1.53 avg300=0.32 total=1204720\n");
    /* A garbled memory.stat: skipped and counted, the other metrics still come. */
    put_file("/memory/nested/app/memory.stat", "rss 12x\n");
    double t2 = now_s();
    T_EQ_INT(cgc_sample(c, &out, 2000, err, sizeof err), 0);
    double t3 = now_s();
    double dt_min = t2 - t1, dt_max = t3 - t0;
    rec_series *cpu = find(&r, "cgroup_cpu_usage_cores", "/app");
    T_ASSERT(cpu != NULL);
    T_ASSERT(cpu->last >= 0.1 / dt_max - 1e-9 && cpu->last <= 0.1 / dt_min + 1e-9);
    rec_series *thr = find(&r, "cgroup_cpu_throttled_periods_per_second", "/app");
    T_ASSERT(thr != NULL);
    T_ASSERT(thr->last >= 12 / dt_max - 1e-9 && thr->last <= 12 / dt_min + 1e-9);
    rec_series *thrt = find(&r, "cgroup_cpu_throttled_seconds_per_second", "/app");
    T_ASSERT(thrt != NULL);
    T_ASSERT(thrt->last >= 0.05 / dt_max - 1e-9 && thrt->last <= 0.05 / dt_min + 1e-9);
    rec_series *psi = find(&r, "cgroup_cpu_pressure_some", "/app");
    T_ASSERT(psi != NULL);
    T_ASSERT(psi->last >= 0.02 / dt_max - 1e-9 && psi->last <= 0.02 / dt_min + 1e-9);
    rec_series *psif = find(&r, "cgroup_cpu_pressure_full", "/app");
    T_ASSERT(psif != NULL);
    T_NEAR(psif->last, 0, 0);
    T_EQ_INT(rss->nput, 1); /* not updated from the garbled file */
    T_EQ_INT(pids->nput, 2);
    cgc_stats st;
    cgc_get_stats(c, &st);
    T_EQ_INT(st.parse_errors, 1);
    T_EQ_INT(st.cgroups, 3);

    /* A counter that goes backwards (cgroup recreated under the same name): no spike. */
    put_file("/cpuacct/app/cpuacct.usage", "5\n");
    int before = cpu->nput;
    T_EQ_INT(cgc_sample(c, &out, 3000, err, sizeof err), 0);
    T_EQ_INT(cpu->nput, before);
    cgc_get_stats(c, &st);
    T_EQ_INT(st.resets, 1);

    /* A new container appears and the app cgroup goes (from every hierarchy): both within one
     * round. */
    make_cgroup("/kubepods/burstable/podu1/c2");
    sh("rm -rf '%s/cpuacct/app' '%s/unified/app'", base, base);
    T_EQ_INT(cgc_sample(c, &out, 4000, err, sizeof err), 0);
    T_ASSERT(find(&r, "cgroup_memory_working_set_bytes", "/kubepods/burstable/podu1/c2") != NULL);
    T_EQ_INT(cpu->forgotten, 1);
    T_EQ_INT(rss->forgotten, 1);
    T_EQ_INT(ws->forgotten, 0);
    cgc_get_stats(c, &st);
    T_EQ_INT(st.cgroups, 3);
    T_EQ_INT(st.v2_only, 0);

    /* A pod that exists only in the v2 mount (no v1 twin): sampled from its v2 files, CPU from
     * cpu.stat usage_usec (1 s of CPU more), PSI; no memory.current / pids.current there. */
    const char *fx = test_fixture("cgroup");
    sh("mkdir -p '%s/unified/kubepods/burstable/podv2' && cp '%s/v2-hybrid/cpu.stat' "
       "'%s/v2-hybrid/cpu.pressure' '%s/unified/kubepods/burstable/podv2/'",
       base, fx, fx, base);
    double t4 = now_s();
    T_EQ_INT(cgc_sample(c, &out, 5000, err, sizeof err), 0);
    double t5 = now_s();
    cgc_get_stats(c, &st);
    T_EQ_INT(st.cgroups, 4);
    T_EQ_INT(st.v2_only, 1);
    usleep(200000);
    put_file("/unified/kubepods/burstable/podv2/cpu.stat",
             "usage_usec 2278293\nuser_usec 1135455\nsystem_usec 142838\nnice_usec 0\n");
    double t6 = now_s();
    T_EQ_INT(cgc_sample(c, &out, 6000, err, sizeof err), 0);
    double t7 = now_s();
    rec_series *v2cpu = find(&r, "cgroup_cpu_usage_cores", "/kubepods/burstable/podv2");
    T_ASSERT(v2cpu != NULL);
    T_ASSERT(v2cpu->last >= 1.0 / (t7 - t4) - 1e-9 && v2cpu->last <= 1.0 / (t6 - t5) + 1e-9);
    T_ASSERT(strstr(v2cpu->labels, "kind=pod,qos=burstable,pod_uid=v2") != NULL);
    T_ASSERT(find(&r, "cgroup_cpu_pressure_some", "/kubepods/burstable/podv2") != NULL);
    T_ASSERT(find(&r, "cgroup_memory_usage_bytes", "/kubepods/burstable/podv2") == NULL);
    /* Its v1 twin appears: read from v1 from then on (same series), not twice. */
    make_cgroup("/kubepods/burstable/podv2");
    T_EQ_INT(cgc_sample(c, &out, 7000, err, sizeof err), 0);
    cgc_get_stats(c, &st);
    T_EQ_INT(st.cgroups, 4);
    T_EQ_INT(st.v2_only, 0);
    T_ASSERT(find(&r, "cgroup_memory_usage_bytes", "/kubepods/burstable/podv2") != NULL);
    /* The v1 twin goes, the v2 cgroup stays: sampled from v2 again. */
    sh("rm -rf '%s/cpuacct/kubepods/burstable/podv2'", base);
    T_EQ_INT(cgc_sample(c, &out, 8000, err, sizeof err), 0);
    cgc_get_stats(c, &st);
    T_EQ_INT(st.cgroups, 4);
    T_EQ_INT(st.v2_only, 1);
    /* And it goes from v2 too. */
    sh("rm -rf '%s/unified/kubepods/burstable/podv2'", base);
    T_EQ_INT(cgc_sample(c, &out, 9000, err, sizeof err), 0);
    cgc_get_stats(c, &st);
    T_EQ_INT(st.cgroups, 3);
    T_EQ_INT(st.v2_only, 0);
    T_EQ_INT(v2cpu->forgotten, 1);
    cgc_free(c);
    sh("rm -rf '%s'", base);
}

TEST(cgc_detail_files_every_nth_round) {
    const char *t = getenv("TMPDIR");
    snprintf(base, sizeof base, "%s/cgc_test.XXXXXX", t && *t ? t : "/tmp");
    T_ASSERT(mkdtemp(base) != NULL);
    make_cgroup("/app");
    const char *roots[] = {"/app"};
    cgc_config cfg = {.mountinfo = write_mountinfo(),
                      .roots = roots,
                      .nroots = 1,
                      .prefix = "memory=/nested",
                      .detail_every = 3};
    cgc *c = NULL;
    char err[200];
    T_EQ_INT(cgc_new(&c, &cfg, err, sizeof err), 0);
    static rec r;
    memset(&r, 0, sizeof r);
    cgc_out out = {&r, rec_series_fn, rec_put, rec_forget};
    for (int i = 0; i < 7; i++)
        T_EQ_INT(cgc_sample(c, &out, 1000 * (i + 1), err, sizeof err), 0);
    /* Every round: usage and working set (with the last inactive_file); every third round (and
     * the first): RSS and pids. */
    rec_series *usage = find(&r, "cgroup_memory_usage_bytes", "/app");
    rec_series *ws = find(&r, "cgroup_memory_working_set_bytes", "/app");
    rec_series *rss = find(&r, "cgroup_memory_rss_bytes", "/app");
    rec_series *pids = find(&r, "cgroup_pids", "/app");
    rec_series *cpu = find(&r, "cgroup_cpu_usage_cores", "/app");
    T_ASSERT(usage && ws && rss && pids && cpu);
    T_EQ_INT(usage->nput, 7);
    T_EQ_INT(ws->nput, 7);
    T_EQ_INT(cpu->nput, 6);
    T_ASSERT(rss->nput >= 2 && rss->nput <= 4);
    T_EQ_INT(pids->nput, rss->nput);
    T_NEAR(ws->last, 56414208 - 8388608, 0);
    cgc_free(c);
    sh("rm -rf '%s'", base);
}

TEST(cgc_bad_config) {
    const char *t = getenv("TMPDIR");
    snprintf(base, sizeof base, "%s/cgc_test.XXXXXX", t && *t ? t : "/tmp");
    T_ASSERT(mkdtemp(base) != NULL);
    cgc_config cfg = {.mountinfo = write_mountinfo(), .prefix = "memory"};
    cgc *c = NULL;
    char err[200];
    T_EQ_INT(cgc_new(&c, &cfg, err, sizeof err), -EINVAL);
    T_EQ_STR(err, "cgroup prefix 'memory': expected controller=path");
    cfg.prefix = "blkio=/x";
    T_EQ_INT(cgc_new(&c, &cfg, err, sizeof err), -EINVAL);
    T_ASSERT(strstr(err, "unknown controller") != NULL);
    cfg.prefix = "memory=self";
    cfg.proc_self_cgroup = test_fixture("cgroup/proc/cgroup");
    T_EQ_INT(cgc_new(&c, &cfg, err, sizeof err), 0);
    cgc_free(c);
    put_file("/mountinfo", "22 1 259:1 / / rw - ext4 /dev/sda rw\n");
    cfg.prefix = NULL;
    T_EQ_INT(cgc_new(&c, &cfg, err, sizeof err), -ENOENT);
    T_EQ_STR(err, "no cgroup hierarchy is mounted");
    sh("rm -rf '%s'", base);
}

/* A pure cgroup v2 host (fixtures written by hand from the kernel's v2 formats): CPU usage
 * comes from cpu.stat's usage_usec (read every round), throttling from the same file, memory
 * from memory.current and the v2 memory.stat, systemd services discovered. */
TEST(cgc_fake_pure_v2_tree) {
    const char *t = getenv("TMPDIR");
    snprintf(base, sizeof base, "%s/cgc_test.XXXXXX", t && *t ? t : "/tmp");
    T_ASSERT(mkdtemp(base) != NULL);
    const char *fx = test_fixture("cgroup/v2");
    const char *svc = "/system.slice/web.service";
    sh("mkdir -p '%s/cg%s' && cp '%s/cpu.stat' '%s/memory.current' '%s/memory.stat' "
       "'%s/pids.current' '%s/cpu.pressure' '%s/memory.pressure' '%s/cg%s/'",
       base, svc, fx, fx, fx, fx, fx, fx, base, svc);
    char mi[300];
    snprintf(mi, sizeof mi, "%s/mountinfo", base);
    FILE *f = fopen(mi, "w");
    T_ASSERT(f != NULL);
    fprintf(f, "26 23 0:24 / %s/cg rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n", base);
    fclose(f);
    cgc_config cfg = {.mountinfo = mi, .systemd = 1, .detail_every = 1};
    cgc *c = NULL;
    char err[200];
    T_EQ_INT(cgc_new(&c, &cfg, err, sizeof err), 0);
    T_EQ_STR(cgc_layout(c), "v2");
    static rec r;
    memset(&r, 0, sizeof r);
    cgc_out out = {&r, rec_series_fn, rec_put, rec_forget};
    T_EQ_INT(cgc_sample(c, &out, 1000, err, sizeof err), 0);
    rec_series *ws = find(&r, "cgroup_memory_working_set_bytes", svc);
    T_ASSERT(ws != NULL);
    T_NEAR(ws->last, 257949696 - 62914560, 0);
    T_ASSERT(strstr(ws->labels, "kind=service,service=web.service") != NULL);
    rec_series *rss = find(&r, "cgroup_memory_rss_bytes", svc);
    T_ASSERT(rss != NULL);
    T_NEAR(rss->last, 157286400, 0);
    T_NEAR(find(&r, "cgroup_pids", svc)->last, 23, 0);
    /* One second of CPU (usage_usec + 1e6) and 250 ms more throttling. */
    usleep(100000);
    char p[600];
    snprintf(p, sizeof p, "%s/cg%s/cpu.stat", base, svc);
    f = fopen(p, "w");
    T_ASSERT(f != NULL);
    fprintf(f, "usage_usec 8735126551\nuser_usec 1\nsystem_usec 1\nnr_periods 182563\n"
               "nr_throttled 41210\nthrottled_usec 3917513208\n");
    fclose(f);
    T_EQ_INT(cgc_sample(c, &out, 2000, err, sizeof err), 0);
    rec_series *cpu = find(&r, "cgroup_cpu_usage_cores", svc);
    rec_series *thr = find(&r, "cgroup_cpu_throttled_seconds_per_second", svc);
    T_ASSERT(cpu != NULL && thr != NULL);
    /* Rates over the (unknown but equal) interval: 1 s CPU vs 0.25 s throttled = 4:1. */
    T_NEAR(cpu->last / thr->last, 4.0, 1e-6);
    T_ASSERT(cpu->last > 0.5 && cpu->last < 10.5);
    cgc_free(c);
    sh("rm -rf '%s'", base);
}
