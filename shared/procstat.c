/* procstat.c: process_* figures from /proc/self (procstat.h). */
#include "procstat.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* Boot time (unix s) from /proc/stat's btime line; 0 when unknown. */
static double boot_time(void) {
    FILE *f = fopen("/proc/stat", "re");
    if (!f) return 0;
    char line[256];
    double bt = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "btime %lf", &bt) == 1) break;
    fclose(f);
    return bt;
}

int procstat_read(procstat *out) {
    memset(out, 0, sizeof *out);
    long tick = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    if (tick <= 0) tick = 100;
    if (page <= 0) page = 4096;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        out->max_fds = (double)rl.rlim_cur;
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        struct dirent *de;
        double n = 0;
        while ((de = readdir(d)))
            if (de->d_name[0] != '.') n++;
        closedir(d);
        out->open_fds = n - 1; /* the directory stream's own descriptor */
    }
    FILE *f = fopen("/proc/self/stat", "re");
    if (!f) return -errno;
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    /* the command name is in parentheses and may hold spaces and ')': fields follow the last */
    char *p = strrchr(buf, ')');
    if (!p) return -EINVAL;
    unsigned long utime, stime, vsize;
    unsigned long long starttime;
    long threads, rss;
    /* fields 3.. : state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime
     * stime cutime cstime priority nice num_threads itrealvalue starttime vsize rss */
    if (sscanf(p + 1,
               " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d %*d %*d %ld %*d "
               "%llu %lu %ld",
               &utime, &stime, &threads, &starttime, &vsize, &rss) != 6)
        return -EINVAL;
    out->cpu_seconds = (double)(utime + stime) / (double)tick;
    out->threads = (double)threads;
    out->virtual_bytes = (double)vsize;
    out->resident_bytes = (double)rss * (double)page;
    double bt = boot_time();
    if (bt > 0) out->start_time_seconds = bt + (double)starttime / (double)tick;
    return 0;
}

int procstat_format(const procstat *ps, char *buf, size_t len) {
    return snprintf(
        buf, len,
        "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
        "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total %.17g\n"
        "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
        "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %.17g\n"
        "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n"
        "# TYPE process_virtual_memory_bytes gauge\nprocess_virtual_memory_bytes %.17g\n"
        "# HELP process_open_fds Number of open file descriptors.\n"
        "# TYPE process_open_fds gauge\nprocess_open_fds %.17g\n"
        "# HELP process_max_fds Maximum number of open file descriptors.\n"
        "# TYPE process_max_fds gauge\nprocess_max_fds %.17g\n"
        "# HELP process_start_time_seconds Start time of the process since unix epoch in "
        "seconds.\n"
        "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds %.17g\n"
        "# HELP process_threads Number of OS threads in the process.\n"
        "# TYPE process_threads gauge\nprocess_threads %.17g\n",
        ps->cpu_seconds, ps->resident_bytes, ps->virtual_bytes, ps->open_fds, ps->max_fds,
        ps->start_time_seconds, ps->threads);
}
