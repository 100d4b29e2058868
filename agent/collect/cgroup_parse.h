/* cgroup_parse.h: pure parsers for the cgroup (v1 and v2) and /proc files the agent samples.
 *
 * Each parser takes the file's text (buf, len; need not be NUL-terminated) and fills a
 * struct; nothing here does I/O, so tests feed fixtures from tests/fixtures/cgroup. Every
 * parser returns 0, or -EINVAL with err naming the file kind, the line and what was wrong
 * (e.g. "memory.stat line 3: value of 'rss' is not a number: \"12x\""). Unknown keys are
 * ignored, so newer kernels' extra lines never break parsing; a key we need that is missing
 * is not an error: the struct's `have` bits say which fields were present. */
#ifndef TIDE_CGROUP_PARSE_H
#define TIDE_CGROUP_PARSE_H

#include <stddef.h>
#include <stdint.h>

/* One unsigned integer on the first line: cpuacct.usage, memory.usage_in_bytes,
 * memory.current, pids.current. `what` names the file in errors. "max" is refused (-EINVAL):
 * use it for usage files, not limits. */
int cgp_parse_u64(const char *buf, size_t len, const char *what, uint64_t *out, char *err,
                  size_t errlen);

/* cpu.stat, v1 (nr_periods, nr_throttled, throttled_time in ns) or v2 (usage_usec,
 * nr_periods, nr_throttled, throttled_usec). Times are converted to ns. */
enum {
    CGP_CPU_USAGE = 1u << 0,
    CGP_CPU_PERIODS = 1u << 1,
    CGP_CPU_THROTTLED = 1u << 2,
    CGP_CPU_THROTTLED_TIME = 1u << 3,
};
typedef struct cgp_cpu_stat {
    unsigned have;
    uint64_t usage_ns; /* v2 usage_usec * 1000 */
    uint64_t nr_periods;
    uint64_t nr_throttled;
    uint64_t throttled_ns; /* v1 throttled_time, v2 throttled_usec * 1000 */
} cgp_cpu_stat;
int cgp_parse_cpu_stat(const char *buf, size_t len, cgp_cpu_stat *out, char *err, size_t errlen);

/* memory.stat, v1 (rss, total_rss, inactive_file, total_inactive_file) or v2 (anon,
 * inactive_file). All values in bytes. */
enum {
    CGP_MEM_RSS = 1u << 0,
    CGP_MEM_TOTAL_RSS = 1u << 1,
    CGP_MEM_ANON = 1u << 2,
    CGP_MEM_INACTIVE_FILE = 1u << 3,
    CGP_MEM_TOTAL_INACTIVE_FILE = 1u << 4,
};
typedef struct cgp_mem_stat {
    unsigned have;
    uint64_t rss, total_rss, anon, inactive_file, total_inactive_file;
} cgp_mem_stat;
int cgp_parse_memory_stat(const char *buf, size_t len, cgp_mem_stat *out, char *err, size_t errlen);

/* The values the agent reports from a memory.stat: RSS (v1 total_rss, else rss, else v2 anon)
 * and the inactive file bytes to subtract for the working set (v1 total_inactive_file, else
 * inactive_file). Each returns 0 and sets *out, or -ENOENT when the stat lacks it. */
int cgp_mem_rss(const cgp_mem_stat *m, uint64_t *out);
int cgp_mem_inactive_file(const cgp_mem_stat *m, uint64_t *out);
/* Working set = usage - inactive file, clamped at 0 (what the kubelet reports). */
uint64_t cgp_working_set(uint64_t usage, uint64_t inactive_file);

/* *.pressure (PSI): "some avg10=.. avg60=.. avg300=.. total=.." and, except for cpu on
 * older kernels, a "full ..." line. avg values are percentages; totals are microseconds. */
typedef struct cgp_psi {
    int has_some, has_full;
    double some_avg10, some_avg60, some_avg300;
    double full_avg10, full_avg60, full_avg300;
    uint64_t some_total_us, full_total_us;
} cgp_psi;
int cgp_parse_psi(const char *buf, size_t len, cgp_psi *out, char *err, size_t errlen);

/* /proc/<pid>/cgroup: lines "hierarchy-id:controller-list:path". Calls fn for each line
 * (controllers is "" for the v2 line "0::/path"); stops and returns fn's value when it is
 * non-zero. Strings passed to fn are NUL-terminated copies valid during the call only. */
typedef int (*cgp_proc_cgroup_fn)(void *ctx, int hier_id, const char *controllers,
                                  const char *path);
int cgp_parse_proc_cgroup(const char *buf, size_t len, cgp_proc_cgroup_fn fn, void *ctx, char *err,
                          size_t errlen);
/* Finds the path of one controller ("memory", or "" for the v2 line) in /proc/<pid>/cgroup
 * text into out. Returns 0, -ENOENT when absent, -ENAMETOOLONG, or -EINVAL when garbled. */
int cgp_proc_cgroup_path(const char *buf, size_t len, const char *controller, char *out,
                         size_t outlen, char *err, size_t errlen);

/* /proc/stat: the aggregate "cpu" line (USER_HZ ticks) and the number of "cpuN" lines. */
typedef struct cgp_proc_stat {
    uint64_t user, nice, system, idle, iowait, irq, softirq, steal;
    int ncpu;
} cgp_proc_stat;
int cgp_parse_proc_stat(const char *buf, size_t len, cgp_proc_stat *out, char *err, size_t errlen);
/* Busy ticks (everything but idle and iowait) and total ticks of a cgp_proc_stat. */
uint64_t cgp_proc_stat_busy(const cgp_proc_stat *s);
uint64_t cgp_proc_stat_total(const cgp_proc_stat *s);

/* /proc/meminfo: MemTotal, MemFree, MemAvailable, Buffers, Cached (converted to bytes). */
enum {
    CGP_MI_TOTAL = 1u << 0,
    CGP_MI_FREE = 1u << 1,
    CGP_MI_AVAILABLE = 1u << 2,
    CGP_MI_BUFFERS = 1u << 3,
    CGP_MI_CACHED = 1u << 4,
};
typedef struct cgp_meminfo {
    unsigned have;
    uint64_t total, free, available, buffers, cached;
} cgp_meminfo;
int cgp_parse_meminfo(const char *buf, size_t len, cgp_meminfo *out, char *err, size_t errlen);

/* /proc/loadavg: "0.52 0.48 0.45 2/345 12345". */
typedef struct cgp_loadavg {
    double load1, load5, load15;
    uint64_t running, total;
} cgp_loadavg;
int cgp_parse_loadavg(const char *buf, size_t len, cgp_loadavg *out, char *err, size_t errlen);

#endif
