/* node_collect.c: node totals from /proc (see node_collect.h). */
#include "collect/node_collect.h"

#include "collect/cgroup_parse.h"
#include "errmsg.h"
#include "rate.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NODE_METRICS(X)                                                                            \
    X(N_CPU, "node_cpu_usage_cores")                                                               \
    X(N_NCPU, "node_cpu_count")                                                                    \
    X(N_MEM_TOTAL, "node_memory_total_bytes")                                                      \
    X(N_MEM_AVAIL, "node_memory_available_bytes")                                                  \
    X(N_MEM_USED, "node_memory_used_bytes")                                                        \
    X(N_LOAD1, "node_load1")                                                                       \
    X(N_ROUNDS, "node_agent_rounds_total")

#define X_ENUM(e, name) e,
enum node_metric { NODE_METRICS(X_ENUM) N_COUNT };
#define X_NAME(e, name) name,
static const char *const metric_names[N_COUNT] = {NODE_METRICS(X_NAME)};

enum { P_STAT, P_MEMINFO, P_LOADAVG, P_COUNT };
static const char *const proc_files[P_COUNT] = {"stat", "meminfo", "loadavg"};

struct nodec {
    int fd[P_COUNT];
    uint32_t id[N_COUNT];
    uint32_t defined;
    rate_counter busy;
    long hz;
    uint64_t rounds;
};

int nodec_new(nodec **out, const char *proc_dir, char *err, size_t errlen) {
    *out = NULL;
    nodec *n = calloc(1, sizeof *n);
    if (!n) return errmsg(err, errlen, -ENOMEM, "out of memory");
    n->hz = sysconf(_SC_CLK_TCK);
    if (n->hz <= 0) n->hz = 100;
    for (int i = 0; i < P_COUNT; i++)
        n->fd[i] = -1;
    for (int i = 0; i < P_COUNT; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", proc_dir ? proc_dir : "/proc", proc_files[i]);
        n->fd[i] = open(path, O_RDONLY | O_CLOEXEC);
        if (n->fd[i] < 0) {
            int e = -errno;
            nodec_free(n);
            return errmsg(err, errlen, e, "cannot open %s: %s", path, strerror(-e));
        }
    }
    *out = n;
    return 0;
}

void nodec_free(nodec *n) {
    if (!n) return;
    for (int i = 0; i < P_COUNT; i++)
        if (n->fd[i] >= 0) close(n->fd[i]);
    free(n);
}

static int emit(nodec *n, const cgc_out *out, enum node_metric m, int64_t ts, double v) {
    if (!(n->defined & (1u << m))) {
        const char *labels[] = {NULL};
        int rc = out->series(out->ctx, metric_names[m], labels, &n->id[m]);
        if (rc < 0) return rc;
        n->defined |= 1u << m;
    }
    return out->put(out->ctx, n->id[m], ts, v);
}

int nodec_sample(nodec *n, const cgc_out *out, int64_t now_ms, char *err, size_t errlen) {
    static char buf[65536]; /* /proc/stat grows with CPUs and interrupts; one loop thread */
    int first_rc = 0;
    n->rounds++;
    int rrc = emit(n, out, N_ROUNDS, now_ms, (double)n->rounds);
    if (rrc < 0)
        first_rc = errmsg(err, errlen, rrc, "cannot queue node values: %s", strerror(-rrc));
    for (int i = 0; i < P_COUNT; i++) {
        ssize_t len = pread(n->fd[i], buf, sizeof buf, 0);
        if (len < 0 || (size_t)len == sizeof buf) {
            int e = len < 0 ? -errno : -EFBIG;
            if (first_rc == 0)
                first_rc =
                    errmsg(err, errlen, e, "cannot read /proc/%s: %s", proc_files[i], strerror(-e));
            continue;
        }
        char perr[160];
        int rc = 0;
        if (i == P_STAT) {
            cgp_proc_stat s;
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            int64_t ns = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
            rc = cgp_parse_proc_stat(buf, (size_t)len, &s, perr, sizeof perr);
            if (rc == 0) {
                double r;
                enum rate_result res = rate_update(&n->busy, cgp_proc_stat_busy(&s), ns, 0, &r);
                if (res == RATE_OK) rc = emit(n, out, N_CPU, now_ms, r / (double)n->hz);
                if (rc == 0) rc = emit(n, out, N_NCPU, now_ms, s.ncpu);
            }
        } else if (i == P_MEMINFO) {
            cgp_meminfo m;
            rc = cgp_parse_meminfo(buf, (size_t)len, &m, perr, sizeof perr);
            if (rc == 0) rc = emit(n, out, N_MEM_TOTAL, now_ms, (double)m.total);
            if (rc == 0 && (m.have & CGP_MI_AVAILABLE)) {
                rc = emit(n, out, N_MEM_AVAIL, now_ms, (double)m.available);
                if (rc == 0)
                    rc = emit(n, out, N_MEM_USED, now_ms,
                              (double)(m.total > m.available ? m.total - m.available : 0));
            }
        } else {
            cgp_loadavg l;
            rc = cgp_parse_loadavg(buf, (size_t)len, &l, perr, sizeof perr);
            if (rc == 0) rc = emit(n, out, N_LOAD1, now_ms, l.load1);
        }
        if (rc == -EINVAL && first_rc == 0)
            first_rc = errmsg(err, errlen, rc, "/proc/%s: %s", proc_files[i], perr);
        else if (rc < 0 && first_rc == 0)
            first_rc = errmsg(err, errlen, rc, "cannot queue node values: %s", strerror(-rc));
    }
    return first_rc;
}

/* ---- the agent's "node" collector --------------------------------------------------------- */

#include "agent.h"
#include "collect/collector.h"
#include "log.h"

static int out_series(void *ctx, const char *metric, const char *const *labels, uint32_t *id) {
    return sink_series(ctx, metric, labels, id);
}
static int out_put(void *ctx, uint32_t id, int64_t ts_ms, double v) {
    return sink_put(ctx, id, ts_ms, v);
}
static void out_forget(void *ctx, uint32_t id) {
    sink_forget(ctx, id);
}

static int node_init(void **state, const struct agent_config *cfg, char *err, size_t errlen) {
    (void)cfg;
    return nodec_new((nodec **)state, NULL, err, errlen);
}

static int node_sample(void *state, agent_sink *sink, int64_t now_ms, char *err, size_t errlen) {
    cgc_out out = {sink, out_series, out_put, out_forget};
    return nodec_sample(state, &out, now_ms, err, errlen);
}

static void node_fini(void *state) {
    nodec *n = state;
    if (n) log_info("node", "stopping after %llu sampling rounds", (unsigned long long)n->rounds);
    nodec_free(n);
}

static const collector_ops node_collector = {"node", node_init, node_sample, node_fini};
AGENT_COLLECTOR(node, &node_collector)
