/* hb_args.h: the node-action arguments the HAProxyBackend executor sends, built from the spec's
 * target: replica-start from the replica template, replica-stop, haproxy-slots and haproxy-slot.
 * Each result passes tide_action_args_check (shared/actions.h) for its action. */
#ifndef TIDE_HB_ARGS_H
#define TIDE_HB_ARGS_H

#include "spec/workload.h"

#include <cjson/cJSON.h>
#include <stdint.h>

/* replica-start {id, port, command, env, cwd, user, cpu_quota, memory_bytes, readiness,
 * stop_signal, grace_ms, labels {workload, generation}}. NULL when out of memory. */
cJSON *hb_start_args(const wl_target *t, const char *id, int port, const char *workload,
                     uint64_t generation);
/* replica-stop {id, signal, grace_ms}. */
cJSON *hb_stop_args(const wl_target *t, const char *id);
/* haproxy-slots {haproxy_socket, backend}. */
cJSON *hb_slots_args(const wl_target *t);
/* haproxy-slot {haproxy_socket, haproxy_server "BACKEND/SERVER", addr?, port?, state?}:
 * addr NULL and port <= 0 leave the address alone, state NULL the state. */
cJSON *hb_slot_args(const wl_target *t, const char *server, const char *addr, int port,
                    const char *state);
/* activate {cgroup, endpoint "ADDR:PORT" ("[V6]:PORT"), warmup {...}}: endpoint and warmup
 * only when the spec has a warm-up (w->enabled) and addr/port are known; the agent then thaws,
 * sends the warm-up to endpoint, and only then reports the replica activated. Shared by the
 * HAProxyBackend and Kubernetes executors. NULL when out of memory. */
cJSON *hb_activate_args(const wl_warmup *w, const char *cgroup, const char *addr, int port);
/* The agent's warm-up spec object (agent/actions/warmup.h keys) from w. NULL when out of
 * memory. */
cJSON *hb_warmup_json(const wl_warmup *w);
/* What a warm-up adds to an activate's deadline: its duration plus one request timeout (ms);
 * 0 when w is not enabled. */
int hb_warmup_ms(const wl_warmup *w);
/* {requests, errors, duration_ms} from an activate result's "warmup", or NULL when it has
 * none (or out of memory): the figures an executor's event reports. */
cJSON *hb_warmup_summary(const cJSON *activate_result);

#endif
