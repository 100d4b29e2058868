/* cgroup_parse_test.c: the cgroup and /proc parsers on real v1/hybrid files copied from this
 * machine, hand-made pure-v2 files, and garbled input. */
#include "collect/cgroup_parse.h"
#include "fixture.h"
#include "test.h"

#include <errno.h>
#include <stdlib.h>

/* Reads tests/fixtures/cgroup/NAME into a static buffer; returns its length or -1. */
static char fbuf[65536];
static long fx(const char *name) {
    return fixture_read("cgroup", name, fbuf, sizeof fbuf);
}

TEST(cgp_v1_cpuacct_usage) {
    long n = fx("v1/cpuacct.usage");
    T_ASSERT(n > 0);
    uint64_t v = 0;
    char err[128];
    T_EQ_INT(cgp_parse_u64(fbuf, (size_t)n, "cpuacct.usage", &v, err, sizeof err), 0);
    T_EQ_INT(v, 1278293245);
}

TEST(cgp_v1_cpu_stat_throttling) {
    long n = fx("v1/cpu.stat");
    T_ASSERT(n > 0);
    cgp_cpu_stat s;
    char err[128];
    T_EQ_INT(cgp_parse_cpu_stat(fbuf, (size_t)n, &s, err, sizeof err), 0);
    T_EQ_INT(s.nr_periods, 25);
    T_EQ_INT(s.nr_throttled, 24);
    T_EQ_INT(s.throttled_ns, 1193346008ULL);
    T_ASSERT(!(s.have & CGP_CPU_USAGE));
    T_ASSERT(s.have & CGP_CPU_THROTTLED_TIME);
}

TEST(cgp_v2_hybrid_cpu_stat_usage_only) {
    /* On this hybrid host the v2 cpu.stat has usage but no throttling (cpu is a v1 controller). */
    long n = fx("v2-hybrid/cpu.stat");
    T_ASSERT(n > 0);
    cgp_cpu_stat s;
    char err[128];
    T_EQ_INT(cgp_parse_cpu_stat(fbuf, (size_t)n, &s, err, sizeof err), 0);
    T_EQ_INT(s.usage_ns, 1278293000ULL);
    T_EQ_INT(s.have, CGP_CPU_USAGE);
}

TEST(cgp_v2_cpu_stat_full) {
    long n = fx("v2/cpu.stat");
    T_ASSERT(n > 0);
    cgp_cpu_stat s;
    char err[128];
    T_EQ_INT(cgp_parse_cpu_stat(fbuf, (size_t)n, &s, err, sizeof err), 0);
    T_EQ_INT(s.usage_ns, 8734126551000ULL);
    T_EQ_INT(s.nr_periods, 182553);
    T_EQ_INT(s.nr_throttled, 41207);
    T_EQ_INT(s.throttled_ns, 3917263208000ULL);
}

TEST(cgp_v1_memory_stat_working_set) {
    long n = fx("v1/memory.stat");
    T_ASSERT(n > 0);
    cgp_mem_stat m;
    char err[128];
    T_EQ_INT(cgp_parse_memory_stat(fbuf, (size_t)n, &m, err, sizeof err), 0);
    uint64_t rss = 0, inact = 0;
    T_EQ_INT(cgp_mem_rss(&m, &rss), 0);
    T_EQ_INT(rss, 46878720);
    T_EQ_INT(cgp_mem_inactive_file(&m, &inact), 0);
    T_EQ_INT(inact, 8388608);
    n = fx("v1/memory.usage_in_bytes");
    uint64_t usage = 0;
    T_EQ_INT(cgp_parse_u64(fbuf, (size_t)n, "memory.usage_in_bytes", &usage, err, sizeof err), 0);
    T_EQ_INT(cgp_working_set(usage, inact), 56414208 - 8388608);
}

TEST(cgp_v1_prefers_hierarchical_totals) {
    const char *t = "rss 100\ninactive_file 10\ntotal_rss 500\ntotal_inactive_file 70\n";
    cgp_mem_stat m;
    char err[128];
    T_EQ_INT(cgp_parse_memory_stat(t, strlen(t), &m, err, sizeof err), 0);
    uint64_t v = 0;
    cgp_mem_rss(&m, &v);
    T_EQ_INT(v, 500);
    cgp_mem_inactive_file(&m, &v);
    T_EQ_INT(v, 70);
}

TEST(cgp_v2_memory_stat) {
    long n = fx("v2/memory.stat");
    T_ASSERT(n > 0);
    cgp_mem_stat m;
    char err[128];
    T_EQ_INT(cgp_parse_memory_stat(fbuf, (size_t)n, &m, err, sizeof err), 0);
    uint64_t rss = 0, inact = 0;
    T_EQ_INT(cgp_mem_rss(&m, &rss), 0);
    T_EQ_INT(rss, 157286400);
    T_EQ_INT(cgp_mem_inactive_file(&m, &inact), 0);
    T_EQ_INT(inact, 62914560);
    n = fx("v2/memory.current");
    uint64_t cur = 0;
    T_EQ_INT(cgp_parse_u64(fbuf, (size_t)n, "memory.current", &cur, err, sizeof err), 0);
    T_EQ_INT(cgp_working_set(cur, inact), 257949696 - 62914560);
}

TEST(cgp_working_set_clamps_at_zero) {
    T_EQ_INT(cgp_working_set(10, 20), 0);
}

TEST(cgp_memory_stat_missing_keys) {
    const char *t = "cache 5\n";
    cgp_mem_stat m;
    char err[128];
    T_EQ_INT(cgp_parse_memory_stat(t, strlen(t), &m, err, sizeof err), 0);
    uint64_t v;
    T_EQ_INT(cgp_mem_rss(&m, &v), -ENOENT);
    T_EQ_INT(cgp_mem_inactive_file(&m, &v), -ENOENT);
}

TEST(cgp_pids_current) {
    long n = fx("v1/pids.current");
    uint64_t v = 0;
    char err[128];
    T_EQ_INT(cgp_parse_u64(fbuf, (size_t)n, "pids.current", &v, err, sizeof err), 0);
    T_EQ_INT(v, 1);
    n = fx("v2/pids.current");
    T_EQ_INT(cgp_parse_u64(fbuf, (size_t)n, "pids.current", &v, err, sizeof err), 0);
    T_EQ_INT(v, 23);
}

TEST(cgp_psi_real_hybrid) {
    long n = fx("v2-hybrid/cpu.pressure");
    T_ASSERT(n > 0);
    cgp_psi p;
    char err[128];
    T_EQ_INT(cgp_parse_psi(fbuf, (size_t)n, &p, err, sizeof err), 0);
    T_ASSERT(p.has_some && p.has_full);
    T_NEAR(p.some_avg10, 8.51, 1e-9);
    T_NEAR(p.some_avg300, 0.32, 1e-9);
    T_EQ_INT(p.some_total_us, 1204938);
    T_EQ_INT(p.full_total_us, 1204720);
}

TEST(cgp_psi_v2_memory_and_some_only) {
    long n = fx("v2/memory.pressure");
    cgp_psi p;
    char err[128];
    T_EQ_INT(cgp_parse_psi(fbuf, (size_t)n, &p, err, sizeof err), 0);
    T_NEAR(p.full_avg10, 0.31, 1e-9);
    T_EQ_INT(p.full_total_us, 645993);
    n = fx("v2/cpu.pressure-nofull");
    T_EQ_INT(cgp_parse_psi(fbuf, (size_t)n, &p, err, sizeof err), 0);
    T_ASSERT(p.has_some && !p.has_full);
    T_EQ_INT(p.some_total_us, 3318);
}

TEST(cgp_proc_cgroup_hybrid) {
    long n = fx("proc/cgroup");
    T_ASSERT(n > 0);
    char path[256], err[128];
    T_EQ_INT(cgp_proc_cgroup_path(fbuf, (size_t)n, "memory", path, sizeof path, err, sizeof err),
             0);
    T_EQ_STR(path, "/process_api/17a34b5a6aa72bece9f3be504f06a84c/tidefix");
    T_EQ_INT(cgp_proc_cgroup_path(fbuf, (size_t)n, "cpuacct", path, sizeof path, err, sizeof err),
             0);
    T_EQ_STR(path, "/tidefix");
    T_EQ_INT(cgp_proc_cgroup_path(fbuf, (size_t)n, "", path, sizeof path, err, sizeof err), 0);
    T_EQ_STR(path, "/tidefix");
    T_EQ_INT(cgp_proc_cgroup_path(fbuf, (size_t)n, "hugetlb", path, sizeof path, err, sizeof err),
             -ENOENT);
}

TEST(cgp_proc_cgroup_combined_controllers_and_v2) {
    const char *t = "4:cpu,cpuacct:/kubepods/besteffort/podx\n0::/system.slice/a.service\n";
    char path[256], err[128];
    T_EQ_INT(cgp_proc_cgroup_path(t, strlen(t), "cpuacct", path, sizeof path, err, sizeof err), 0);
    T_EQ_STR(path, "/kubepods/besteffort/podx");
    T_EQ_INT(cgp_proc_cgroup_path(t, strlen(t), "cpu", path, sizeof path, err, sizeof err), 0);
    T_EQ_INT(cgp_proc_cgroup_path(t, strlen(t), "", path, sizeof path, err, sizeof err), 0);
    T_EQ_STR(path, "/system.slice/a.service");
    long n = fx("v2/proc-cgroup");
    T_EQ_INT(cgp_proc_cgroup_path(fbuf, (size_t)n, "", path, sizeof path, err, sizeof err), 0);
    T_ASSERT(strncmp(path, "/kubepods.slice/", 16) == 0);
}

TEST(cgp_proc_stat_real) {
    long n = fx("proc/stat");
    T_ASSERT(n > 0);
    cgp_proc_stat s;
    char err[128];
    T_EQ_INT(cgp_parse_proc_stat(fbuf, (size_t)n, &s, err, sizeof err), 0);
    T_EQ_INT(s.ncpu, 2);
    T_EQ_INT(s.user, 2276);
    T_EQ_INT(s.idle, 49787);
    T_EQ_INT(s.steal, 15);
    T_EQ_INT(cgp_proc_stat_busy(&s), 2276 + 2041 + 45 + 15);
    T_EQ_INT(cgp_proc_stat_total(&s), 2276 + 2041 + 45 + 15 + 49787 + 244);
}

TEST(cgp_meminfo_real) {
    long n = fx("proc/meminfo");
    cgp_meminfo m;
    char err[128];
    T_EQ_INT(cgp_parse_meminfo(fbuf, (size_t)n, &m, err, sizeof err), 0);
    T_EQ_INT(m.total, 24684084ULL * 1024);
    T_EQ_INT(m.available, 24302628ULL * 1024);
    T_EQ_INT(m.have & CGP_MI_CACHED, CGP_MI_CACHED);
}

TEST(cgp_loadavg_real) {
    long n = fx("proc/loadavg");
    cgp_loadavg l;
    char err[128];
    T_EQ_INT(cgp_parse_loadavg(fbuf, (size_t)n, &l, err, sizeof err), 0);
    T_NEAR(l.load1, 0.02, 1e-9);
    T_NEAR(l.load5, 0.06, 1e-9);
    T_EQ_INT(l.running, 2);
    T_EQ_INT(l.total, 92);
}

/* Garbled input: a clear error naming the file, line and offending text; never a crash. */
TEST(cgp_garbled_errors_name_what_and_where) {
    char err[160];
    cgp_cpu_stat s;
    const char *t = "nr_periods 25\nnr_throttled twelve\n";
    T_EQ_INT(cgp_parse_cpu_stat(t, strlen(t), &s, err, sizeof err), -EINVAL);
    T_EQ_STR(err, "cpu.stat line 2: value of \"nr_throttled\" is not a number: \"twelve\"");
    cgp_mem_stat m;
    t = "cache 9035776\nrss\n";
    T_EQ_INT(cgp_parse_memory_stat(t, strlen(t), &m, err, sizeof err), -EINVAL);
    T_EQ_STR(err, "memory.stat line 2: key \"rss\" has no value");
    uint64_t v;
    T_EQ_INT(cgp_parse_u64("12x\n", 4, "cpuacct.usage", &v, err, sizeof err), -EINVAL);
    T_EQ_STR(err, "cpuacct.usage line 1: not a number: \"12x\"");
    T_EQ_INT(cgp_parse_u64("99999999999999999999\n", 21, "memory.current", &v, err, sizeof err),
             -EINVAL);
    T_ASSERT(strstr(err, "out of range") != NULL);
    T_EQ_INT(cgp_parse_u64("", 0, "pids.current", &v, err, sizeof err), -EINVAL);
    T_EQ_STR(err, "pids.current: empty file");
    T_EQ_INT(cgp_parse_u64("max\n", 4, "pids.current", &v, err, sizeof err), -EINVAL);
    cgp_psi p;
    t = "some avg10=abc avg60=0.72 avg300=0.67 total=4267527\n";
    T_EQ_INT(cgp_parse_psi(t, strlen(t), &p, err, sizeof err), -EINVAL);
    T_EQ_STR(err, "pressure line 1: bad value for \"avg10\": \"abc\"");
    t = "partial avg10=1.00 total=3\n";
    T_EQ_INT(cgp_parse_psi(t, strlen(t), &p, err, sizeof err), -EINVAL);
    cgp_proc_stat ps;
    t = "intr 1 2 3\n";
    T_EQ_INT(cgp_parse_proc_stat(t, strlen(t), &ps, err, sizeof err), -EINVAL);
    T_EQ_STR(err, "stat: no aggregate \"cpu\" line");
    cgp_loadavg l;
    T_EQ_INT(cgp_parse_loadavg("0.1 0.2\n", 8, &l, err, sizeof err), -EINVAL);
    T_EQ_INT(cgp_parse_loadavg("0.1 0.2 0.3 7\n", 14, &l, err, sizeof err), -EINVAL);
    char path[64];
    t = "garbage\n";
    T_EQ_INT(cgp_proc_cgroup_path(t, strlen(t), "memory", path, sizeof path, err, sizeof err),
             -EINVAL);
    T_EQ_STR(err, "cgroup line 1: expected id:controllers:path");
    cgp_meminfo mi;
    t = "MemTotal: lots kB\n";
    T_EQ_INT(cgp_parse_meminfo(t, strlen(t), &mi, err, sizeof err), -EINVAL);
}

TEST(cgp_not_nul_terminated) {
    /* The value ends exactly at the buffer's end: no read past it (ASan checks). */
    char *b = malloc(3);
    memcpy(b, "123", 3);
    uint64_t v = 0;
    char err[64];
    T_EQ_INT(cgp_parse_u64(b, 3, "x", &v, err, sizeof err), 0);
    T_EQ_INT(v, 123);
    free(b);
}
