/* agents.h: the control plane's agent side: the TCP listener, one connection state machine
 * per agent, the agents table shown by `tidectl agents`, ingest of SAMPLES into the store, and
 * commands sent to a node's agent (drain, standby, ... routed by the ops handlers).
 *
 * Everything runs on the control plane's loop thread. */
#ifndef TIDE_AGENTS_H
#define TIDE_AGENTS_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

struct controlplane;
typedef struct cp_agents cp_agents;

/* Result of a command: ok = 1 with the agent's result object (may be NULL, borrowed: copy what
 * you keep), or ok = 0 with error ("unknown node 'x'", "node 'x' is not connected", "timed
 * out after N ms", "agent disconnected", or the agent's own error text; result may then still
 * carry the agent's details). Called exactly once for every cp_agent_command() that did not
 * return -ENOMEM, always from the loop and never from inside cp_agent_command() itself. */
typedef void (*cp_command_done_fn)(void *arg, int ok, const cJSON *result, const char *error);

/* Sends COMMAND {id, action, args} to the connected agent of `node` and calls done with its
 * COMMAND_RESULT, or with an error on timeout (timeout_ms > 0; <= 0 means 30 s), disconnect,
 * or when no agent of that name is connected. Takes ownership of args (may be NULL: empty
 * map). Returns 0 when the command was queued (done will be called later); -ENOENT (unknown
 * or disconnected node) or a frame-encoding error, and done is still called, asynchronously,
 * with the reason; or -ENOMEM when the command could not even be recorded (out of memory, or
 * the agent side was never started): done is then NOT called and the caller must report the
 * failure itself. */
int cp_agent_command(struct controlplane *cp, const char *node, const char *action, cJSON *args,
                     int timeout_ms, cp_command_done_fn done, void *arg);
/* The same with a fence (PROTOCOL.md "Fencing"): the command carries workload and its fencing
 * token; an agent that has seen a higher token for workload refuses it (ok = 0, the result
 * then holds {"fenced": {workload, token, seen}}). workload NULL: as cp_agent_command. */
int cp_agent_command_fenced(struct controlplane *cp, const char *node, const char *action,
                            cJSON *args, int timeout_ms, const char *workload, uint64_t token,
                            cp_command_done_fn done, void *arg);

/* Starts listening on cp->cfg.listen. 0 or -errno with err filled ("listen 127.0.0.1:7470:
 * Address already in use"). */
int cp_agents_start(struct controlplane *cp, char *err, size_t errlen);
/* Takes an already connected, non-blocking socket as a new agent connection (the listener's
 * accept path; also benchmarks and socket activation). On success the fd is owned by the
 * control plane; returns 0 or -ENOMEM (the caller still owns fd). */
int cp_agents_adopt(struct controlplane *cp, int fd, const char *address);
/* Closes every connection and the listener, fails pending commands with "shutting down",
 * frees everything. Accepts a cp whose agents were never started. */
void cp_agents_stop(struct controlplane *cp);

/* The agents table as JSON (array of objects, one per node ever seen since start):
 * node, agent_version, address, connected (bool), connected_since (unix ms), last_heartbeat
 * (unix ms, 0 = none), samples, bytes, protocol_errors, spool_drops, queued_bytes, last_seq. */
cJSON *cp_agents_json(struct controlplane *cp);
/* Totals for `tidectl status`: connections, agents_connected, protocol_errors (all, also
 * connections that never said who they are), rejected_auth, samples, bytes. */
cJSON *cp_agents_totals_json(struct controlplane *cp);
/* One node's agent: 1 connected (host: the address it connects from, without the port),
 * 0 seen but not connected now (*since_ms: wall ms it disconnected), -ENOENT never seen since
 * the control plane started. host/since_ms may be NULL. */
int cp_agent_node(struct controlplane *cp, const char *node, char *host, size_t hostlen,
                  int64_t *since_ms);
/* Agents connected now (the "agents_connected" of the totals), without building JSON. */
int64_t cp_agents_connected(struct controlplane *cp);

#endif
