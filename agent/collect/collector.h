/* collector.h: how sampling modules plug into tide-agent.
 *
 * A collector is {name, init, sample, fini}. The agent calls sample() every interval on its
 * loop; the collector reads what it measures and puts values into the sink. A collector that
 * fails (returns < 0) is retried with a growing delay and logs at a limited rate: it never
 * stops the agent. Collectors register themselves with AGENT_COLLECTOR(); the agent links its
 * objects directly, so the constructors run. */
#ifndef TIDE_COLLECTOR_H
#define TIDE_COLLECTOR_H

#include <stddef.h>
#include <stdint.h>

struct agent_config; /* agent/agent.h */
typedef struct agent_sink agent_sink;

/* Finds or defines the series for metric + labels (labels: "k1","v1","k2","v2",...,NULL);
 * the id is stable while the agent runs and is defined to the control plane once per
 * connection. Returns 0 or -errno. */
int sink_series(agent_sink *s, const char *metric, const char *const *labels, uint32_t *id);
/* Queues one sample for sending (timestamp: unix milliseconds). Returns 0 or -errno. */
int sink_put(agent_sink *s, uint32_t id, int64_t ts_ms, double value);
/* Says a series is gone (its cgroup vanished): it is no longer sent and its id may be reused
 * only after a reconnect. */
void sink_forget(agent_sink *s, uint32_t id);

typedef struct collector_ops {
    const char *name;
    /* Allocates the collector's state; 0 or -errno with err filled. */
    int (*init)(void **state, const struct agent_config *cfg, char *err, size_t errlen);
    /* One sampling round at now_ms (unix ms). 0, or -errno with err filled. */
    int (*sample)(void *state, agent_sink *sink, int64_t now_ms, char *err, size_t errlen);
    /* Frees the state; accepts NULL. */
    void (*fini)(void *state);
} collector_ops;

void collector_register(const collector_ops *ops);

/* The agent's loop, for a collector whose sample() starts non-blocking I/O (its replies are put
 * into the sink later, from the loop); NULL before the collectors start. */
struct ev_loop;
struct ev_loop *collector_loop(void);

#define AGENT_COLLECTOR(ident, ops_ptr)                                                            \
    __attribute__((constructor)) static void collector_reg_##ident(void) {                         \
        collector_register(ops_ptr);                                                               \
    }

#endif
