/* procstat_test.c: process_* figures read from /proc/self match what the process knows. */
#include "procstat.h"
#include "test.h"

#include <fcntl.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

TEST(procstat_reads_own_process) {
    procstat a, b;
    T_EQ_INT(procstat_read(&a), 0);
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    T_ASSERT(fd >= 0);
    /* burn a little CPU and touch 8 MiB so both counters can only grow */
    size_t sz = 8u << 20;
    volatile char *m = malloc(sz);
    T_ASSERT(m != NULL);
    for (size_t i = 0; i < sz; i += 4096)
        m[i] = 1;
    volatile double x = 0;
    for (clock_t t0 = clock(); clock() - t0 < CLOCKS_PER_SEC / 20;)
        x += 1;
    T_EQ_INT(procstat_read(&b), 0);
    close(fd);
    free((void *)m);
    T_EQ_INT(b.open_fds, a.open_fds + 1);
    T_ASSERT(b.cpu_seconds >= a.cpu_seconds && b.cpu_seconds > 0);
    T_ASSERT(b.resident_bytes >= 8e6 && b.virtual_bytes >= b.resident_bytes);
    T_ASSERT(b.max_fds >= b.open_fds && b.threads >= 1);
    double now = (double)time(NULL);
    T_ASSERT(b.start_time_seconds > now - 3600 && b.start_time_seconds <= now + 1);
    char buf[2048];
    int n = procstat_format(&b, buf, sizeof buf);
    T_ASSERT(n > 0 && (size_t)n < sizeof buf);
    T_ASSERT(strstr(buf, "\nprocess_open_fds ") != NULL);
}
