/* k8s_exec.h: the executor of Deployment and StatefulSet targets (exec/k8s_fleet.h does the
 * Kubernetes side, exec/transport.h the agent's): registered for both kinds when a Kubernetes
 * API is configured (k8s_kubeconfig, a k8s_api_url other than the default, or the service
 * account of a pod); without one such workloads stay in Preview as before.
 *
 * Per workload in Auto mode, before its first decision:
 *   - another scaler on the target (an autoscaling/v2 HPA or a KEDA ScaledObject) refuses Auto:
 *     no decision is made, and the workload's observation says who owns the target and what to
 *     do (checked again every minute);
 *   - the inventory: the fleet rebuilt from the API server alone (pods of the Scale's selector;
 *     their tide.io/state and tide.io/replica; pods without them are adopted as they are), so a
 *     restarted control plane continues where the cluster is (level-triggered).
 * Actions: START raises .spec.replicas by one and claims the next new pod for the replica (it
 * is Online once its containers are ready and its readiness gate is set True); CUTOFF sets the
 * gate False and has the node's agent drain the pod's endpoint (podIP:containerPort; without a
 * container port the gate alone drains it); STANDBY freezes the pod's cgroup on its node's agent
 * (the path from the agent's kubepods discovery); ACTIVATE thaws it, then sets the gate True;
 * RESTORE sets the gate True; DELETE makes exactly that pod go (k8s_fleet_delete). For a
 * StatefulSet the pod acted on is the highest ordinal in the replica's state (the lowest for
 * ACTIVATE): the planner's replica id moves to that pod (tide.io/replica is swapped), so the pods
 * a scale-in removes are always the ones cut off and frozen. Every Kubernetes call runs off the
 * loop (k8s_offloop) with a deadline. */
#ifndef TIDE_WORKLOADS_K8S_EXEC_H
#define TIDE_WORKLOADS_K8S_EXEC_H

#include <stdint.h>

struct cp_workloads;
struct workload_entry;

/* Registers the executor when a Kubernetes API is configured. 0 or -ENOMEM. */
int k8s_exec_start(struct cp_workloads *w);
/* Cancels what is under way (answers still to come are dropped) and frees. */
void k8s_exec_stop(struct cp_workloads *w);

/* Before a decision of e (a Deployment/StatefulSet workload): 0 = decide now; 1 = not now
 * (inventory under way, Auto refused, ...; e->observe says why). */
int k8s_exec_prepare(struct cp_workloads *w, struct workload_entry *e, int64_t now);

#endif
