/* replica_action.h: the node actions on one replica -- drain, standby, activate, warm-up -- as
 * state machines on a libev loop, independent of how the command arrived. agent/action_*.c
 * register them with the agent's command dispatcher (AGENT_ACTION); tests and benchmarks run
 * them directly.
 *
 * Arguments (a JSON object; every key optional unless the action needs it):
 *   "cgroup"          replica cgroup path as /proc/PID/cgroup shows it (standby, activate)
 *   "endpoint"        "ADDR:PORT" the replica serves on (drain: connections; warm-up target)
 *   "haproxy_socket"  HAProxy runtime API socket path    } both or neither
 *   "haproxy_server"  "BACKEND/SERVER"                    }
 *   "timeout_ms"      deadline of the whole action (drain 30000, standby 10000,
 *                     activate 10000 + warm-up time, warmup: its duration + 10000)
 *   "wait_connections" drain: also wait for the endpoint's established connections to reach
 *                     zero (default: true when there is no HAProxy server, else false, since
 *                     HAProxy keeps idle pooled connections to a drained server)
 *   "force"           standby: freeze even if the HAProxy server still takes traffic
 *   "warmup"          activate: a warm-up spec (see warmup.h); for the warmup action the spec
 *                     keys may also be given at the top level
 *
 * Every action is idempotent (draining a drained server, freezing a frozen cgroup, thawing a
 * thawed one succeed at once and say "already": true) and touches only the replica named. */
#ifndef TIDE_REPLICA_ACTION_H
#define TIDE_REPLICA_ACTION_H

#include <cjson/cJSON.h>

struct ev_loop;

/* Called exactly once, possibly from inside replica_action_run() (bad arguments) or later from
 * the loop: ok = 1 with result, or ok = 0 with error and, when the action got that far,
 * result details. The callee owns result (may be NULL). */
typedef void (*replica_action_done_fn)(void *arg, int ok, cJSON *result, const char *error);

/* Runs action "drain", "standby", "activate" or "warmup" with args on loop. */
void replica_action_run(struct ev_loop *loop, const char *action, const cJSON *args,
                        replica_action_done_fn done, void *arg);

/* Stops every action under way (their watchers, HAProxy connections, warm-up transfers; a
 * memory reclaim in progress is waited for) and frees them without calling done. Returns how
 * many were stopped. For the agent's shutdown. */
int replica_action_cancel_all(void);

#endif
