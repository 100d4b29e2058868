/* node_collect_test.c: node totals from real /proc fixtures and from this host's /proc. */
#include "collect/node_collect.h"
#include "test.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

typedef struct rec {
    char metric[16][64];
    double last[16];
    uint32_t n;
} rec;

static int rseries(void *ctx, const char *metric, const char *const *labels, uint32_t *id) {
    rec *r = ctx;
    if (labels[0] != NULL || r->n >= 16) return -EINVAL;
    snprintf(r->metric[r->n], 64, "%s", metric);
    *id = r->n++;
    return 0;
}
static int rput(void *ctx, uint32_t id, int64_t ts, double v) {
    rec *r = ctx;
    (void)ts;
    r->last[id] = v;
    return 0;
}
static void rforget(void *ctx, uint32_t id) {
    (void)ctx, (void)id;
}

static double val(const rec *r, const char *metric) {
    for (uint32_t i = 0; i < r->n; i++)
        if (strcmp(r->metric[i], metric) == 0) return r->last[i];
    return -1;
}

TEST(nodec_fixtures) {
    nodec *n = NULL;
    char err[200];
    char dir[512];
    snprintf(dir, sizeof dir, "%s", test_fixture("cgroup/proc"));
    T_EQ_INT(nodec_new(&n, dir, err, sizeof err), 0);
    rec r = {0};
    cgc_out out = {&r, rseries, rput, rforget};
    T_EQ_INT(nodec_sample(n, &out, 1000, err, sizeof err), 0);
    T_NEAR(val(&r, "node_cpu_count"), 2, 0);
    T_NEAR(val(&r, "node_memory_total_bytes"), 24684084.0 * 1024, 0);
    T_NEAR(val(&r, "node_memory_used_bytes"), (24684084.0 - 24302628.0) * 1024, 0);
    T_NEAR(val(&r, "node_load1"), 0.02, 1e-9);
    T_NEAR(val(&r, "node_cpu_usage_cores"), -1, 0); /* needs two readings */
    /* Same file again: zero busy ticks in between. */
    usleep(10000);
    T_EQ_INT(nodec_sample(n, &out, 2000, err, sizeof err), 0);
    T_NEAR(val(&r, "node_cpu_usage_cores"), 0, 0);
    T_NEAR(val(&r, "node_agent_rounds_total"), 2, 0);
    nodec_free(n);
    T_EQ_INT(nodec_new(&n, "/nonexistent", err, sizeof err), -ENOENT);
    T_EQ_STR(err, "cannot open /nonexistent/stat: No such file or directory");
}

TEST(nodec_this_host) {
    nodec *n = NULL;
    char err[200];
    T_EQ_INT(nodec_new(&n, NULL, err, sizeof err), 0);
    rec r = {0};
    cgc_out out = {&r, rseries, rput, rforget};
    T_EQ_INT(nodec_sample(n, &out, 1000, err, sizeof err), 0);
    /* Burn ~50 ms of CPU so the busy rate is visibly above zero. */
    volatile double x = 0;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    do {
        for (int i = 0; i < 100000; i++)
            x += i;
        clock_gettime(CLOCK_MONOTONIC, &b);
    } while ((b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec) < 100000000L);
    T_EQ_INT(nodec_sample(n, &out, 2000, err, sizeof err), 0);
    double cores = val(&r, "node_cpu_usage_cores");
    T_ASSERT(cores > 0.2 && cores <= ncpu + 0.5);
    T_NEAR(val(&r, "node_cpu_count"), ncpu, 0);
    T_ASSERT(val(&r, "node_memory_available_bytes") > 0);
    nodec_free(n);
}
