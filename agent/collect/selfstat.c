/* selfstat.c: the built-in collector "self": the agent's own process CPU time
 * (tide_agent_cpu_seconds_total), one real sample per interval even on a node without
 * workloads, so every agent proves the whole path from sampling to the store. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent.h"
#include "collect/collector.h"

typedef struct selfstat {
    int defined;
    uint32_t id;
} selfstat;

static int self_init(void **state, const struct agent_config *cfg, char *err, size_t errlen) {
    (void)cfg;
    selfstat *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    *state = s;
    return 0;
}

static int self_sample(void *state, agent_sink *sink, int64_t now_ms, char *err, size_t errlen) {
    selfstat *s = state;
    struct timespec ts;
    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) < 0) {
        int e = errno;
        snprintf(err, errlen, "clock_gettime(CLOCK_PROCESS_CPUTIME_ID): %s", strerror(e));
        return -e;
    }
    if (!s->defined) {
        int rc = sink_series(sink, "tide_agent_cpu_seconds_total", NULL, &s->id);
        if (rc < 0) {
            snprintf(err, errlen, "defining the series: %s", strerror(-rc));
            return rc;
        }
        s->defined = 1;
    }
    int rc = sink_put(sink, s->id, now_ms, (double)ts.tv_sec + ts.tv_nsec / 1e9);
    if (rc < 0) {
        snprintf(err, errlen, "queueing the sample: %s", strerror(-rc));
        return rc;
    }
    return 0;
}

static void self_fini(void *state) {
    free(state);
}

static const collector_ops self_ops = {
    .name = "self",
    .init = self_init,
    .sample = self_sample,
    .fini = self_fini,
};

AGENT_COLLECTOR(self, &self_ops)
