/* procstat.h: the process's own resource figures, as Prometheus's process_* series name them
 * (both daemons export them on /metrics). Read from /proc/self; Linux only. */
#ifndef TIDE_PROCSTAT_H
#define TIDE_PROCSTAT_H

#include <stddef.h>

typedef struct procstat {
    double cpu_seconds;        /* user + system CPU time */
    double resident_bytes;     /* RSS */
    double virtual_bytes;      /* address space */
    double open_fds;           /* entries in /proc/self/fd */
    double max_fds;            /* soft RLIMIT_NOFILE */
    double start_time_seconds; /* unix time the process started */
    double threads;
} procstat;

/* Fills *out. 0, or -errno when /proc/self/stat cannot be read (fields it could not read are
 * left at 0). */
int procstat_read(procstat *out);

/* Appends the process_* series (HELP, TYPE and value for each) to buf (NUL-terminated, at
 * most len bytes); returns the length written or that would have been written, as snprintf. */
int procstat_format(const procstat *ps, char *buf, size_t len);

#endif
