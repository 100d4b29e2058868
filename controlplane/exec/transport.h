/* transport.h: one node action on one replica, with the traffic steps around it: the
 * sequences the `tidectl node-action` ops command and the executors share. With a Kubernetes
 * pod (its readiness gate carries the replica's traffic, k8s.h), drain and standby first set
 * the gate to False (Services stop sending new connections) and then run on the agent; activate
 * runs on the agent first (thaw, warm-up, HAProxy ready) and sets the gate to True last. Without
 * a pod the action goes to the agent alone (HAProxy, when named in args, is spoken to there).
 *
 * The action names, their arguments and default deadlines are shared/actions.h's; the agent's
 * result is waited for up to the action's deadline plus EXEC_MARGIN_MS, so that the agent's own
 * deadline fires first and its error (with details) is what is reported. */
#ifndef TIDE_EXEC_TRANSPORT_H
#define TIDE_EXEC_TRANSPORT_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

struct controlplane;

#define EXEC_MARGIN_MS 5000

/* Called exactly once per exec_node_action() that returned 0, from the loop, never from inside
 * exec_node_action(): ok = 1 with data (the agent's result, plus "readiness" with a pod), or
 * ok = 0 with error and, when the action got that far, data with its details; status classes
 * the failure: 1 the action failed, 2 the request was refused as invalid (an unknown pod, a
 * patch the API rejects as invalid). data is owned by the callee (may be NULL). */
typedef void (*exec_action_done_fn)(void *arg, int ok, int status, cJSON *data, const char *error);
/* status of an action the agent refused by fencing (a newer control plane owns the workload):
 * data then holds "fenced": {workload, token, seen}; exec_fenced_seen() reads seen. */
#define EXEC_STATUS_FENCED 3
uint64_t exec_fenced_seen(const cJSON *data);

typedef struct exec_action exec_action;

/* Starts ACTION on NODE's agent with args (borrowed, copied; NULL = {}), through pod
 * ("NAMESPACE/NAME", NULL = none). Checks the action and args against the shared schema first.
 * Returns 0 with done to come (and *handle set when handle is not NULL), or -EINVAL (unknown
 * action, bad args, bad pod reference, a pod with an action other than drain, standby or
 * activate: the warmup action alone sends no traffic through the Service, while activate's own
 * "warmup" runs before the gate is set True) / -ENOMEM with err; done is then not
 * called. */
int exec_node_action(struct controlplane *cp, const char *node, const char *action,
                     const cJSON *args, const char *pod, exec_action_done_fn done, void *arg,
                     exec_action **handle, char *err, size_t errlen);

/* The caller is no longer interested: done will not be called. What is under way (the agent's
 * command, a readiness patch) runs to its end and its answer is dropped. NULL is ignored. Call it
 * only before done was called. */
void exec_node_action_cancel(exec_action *a);

/* exec_node_action with a fence: the agent's command carries (workload, token) (PROTOCOL.md
 * "Fencing"); a refusal by fencing is reported with status EXEC_STATUS_FENCED. A pod's
 * readiness-gate patch goes out unfenced here (the Kubernetes executor fences its own writes).
 * workload NULL: exactly exec_node_action. */
int exec_node_action_fenced(struct controlplane *cp, const char *node, const char *action,
                            const cJSON *args, const char *pod, const char *workload,
                            uint64_t token, exec_action_done_fn done, void *arg,
                            exec_action **handle, char *err, size_t errlen);

#endif
