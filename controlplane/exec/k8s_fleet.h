/* k8s_fleet.h: a Deployment's or StatefulSet's replicas as Tide keeps them in the cluster, and
 * the Kubernetes-side steps of the executor's actions. Blocking calls on a k8s_client (worker
 * threads only: k8s_offloop), each bounded by its deadline.
 *
 * State lives in the cluster, not in the control plane: every pod Tide manages carries
 *   label      tide.io/state    starting | online | cutoff | standby | deleting
 *   annotation tide.io/replica  the planner's replica id the pod stands for
 *   annotation tide.io/since    when the state was set (unix ms)
 * so a restarted control plane rebuilds its fleet from the API server alone (level-triggered).
 *
 * The replica count Kubernetes sees is online + cutoff + standby (+ starting + deleting still
 * running): frozen pods are running pods. A pod is made to go by marking it (state deleting,
 * pod-deletion-cost the lowest int32, readiness gate False: the ReplicaSet controller deletes
 * not-ready pods and then the lowest cost first) and then lowering .spec.replicas by the marked
 * pods that are not going yet; a StatefulSet removes its highest ordinals, so only pods that are
 * the highest ordinals can be removed (k8s_fleet_delete refuses others, naming the pod in the
 * way). Both are computed again from what a re-read shows, after a 409 Conflict too. */
#ifndef TIDE_K8S_FLEET_H
#define TIDE_K8S_FLEET_H

#include <stddef.h>
#include <stdint.h>

#include "exec/k8s_client.h"

typedef enum k8s_tstate {
    K8S_TS_NONE = 0, /* no tide.io/state label (a pod Tide has not adopted yet) */
    K8S_TS_STARTING,
    K8S_TS_ONLINE,
    K8S_TS_CUTOFF,
    K8S_TS_STANDBY,
    K8S_TS_DELETING,
} k8s_tstate;

/* "starting", ...; "" for NONE. */
const char *k8s_tstate_name(k8s_tstate s);
/* The state a label value names; NONE for "" or an unknown value. */
k8s_tstate k8s_tstate_parse(const char *label);

typedef struct k8s_fleet {
    k8s_scalable kind;
    char ns[64], name[254];
    k8s_scale scale;
    k8s_pod *pods; /* the pods of the Scale's selector that have not terminated (phase not
                      Succeeded/Failed); terminating ones (deletionTimestamp) included */
    size_t n;
} k8s_fleet;

/* Reads the Scale and the pods of its status.selector (gate_type: the readiness-gate condition).
 * 0 with f filled (k8s_fleet_free it), or -errno with err. */
int k8s_fleet_read(k8s_client *c, k8s_scalable kind, const char *ns, const char *name,
                   const char *gate_type, int64_t deadline_ms, k8s_fleet *f, char *err,
                   size_t errlen);
void k8s_fleet_free(k8s_fleet *f);

/* ---- pure ---------------------------------------------------------------------------------- */

/* The pod's state: its label, or (no label) online when Ready, starting otherwise. */
k8s_tstate k8s_pod_tstate(const k8s_pod *p);
/* The pod standing for replica id (annotation tide.io/replica, or its own name when it has
 * none), not terminating; NULL when none. */
const k8s_pod *k8s_fleet_find(const k8s_fleet *f, const char *replica);
/* The replica id a pod stands for: its annotation, or its name. */
const char *k8s_pod_replica(const k8s_pod *p);

/* The .spec.replicas that makes exactly the pods marked deleting go, given spec_replicas as
 * read: live = pods not terminating, marked = those of them in state deleting; the controller
 * already removes live - spec_replicas pods (the marked ones first), so the count is lowered by
 * marked - (live - spec_replicas) more when that is positive. StatefulSet: the highest
 * ordinals go, so replicas drop to the lowest ordinal of the unbroken run of marked (or absent)
 * ordinals at the top; a marked pod below an unmarked one stays, and *blocker (may be NULL)
 * names the first unmarked pod in its way (NULL when none is). */
int k8s_fleet_delete_target(const k8s_fleet *f, int spec_replicas, const k8s_pod **blocker);

/* StatefulSet: the pod in state st with the highest (highest = 1) or lowest ordinal, not
 * terminating and not standing for one of the nskip replica ids in skip (replicas with an action
 * under way); NULL when none. */
const k8s_pod *k8s_fleet_ordinal_pick(const k8s_fleet *f, k8s_tstate st, int highest,
                                      const char (*skip)[K8S_REPLICA_MAX], size_t nskip);

/* ---- writes -------------------------------------------------------------------------------- */
/* Every write takes the workload's fence (k8s_client.h; NULL or token 0: unfenced): a pod or
 * the Deployment/StatefulSet recording a newer token refuses it with -ESTALE. */

/* Sets the pod's tide.io/state (and tide.io/replica when replica is not NULL, tide.io/since to
 * now_wall_ms) with a merge patch of its metadata; out (may be NULL) gets the pod as answered. */
int k8s_fleet_mark(k8s_client *c, const char *ns, const char *pod, k8s_tstate st,
                   const char *replica, int64_t now_wall_ms, const char *gate_type,
                   k8s_fence *fence, int64_t deadline_ms, k8s_pod *out, char *err, size_t errlen);

/* Raises .spec.replicas by n (a relative change, computed again after a conflict). */
int k8s_fleet_grow(k8s_client *c, k8s_scalable kind, const char *ns, const char *name, int n,
                   k8s_fence *fence, int64_t deadline_ms, k8s_scale_result *res, char *err,
                   size_t errlen);

/* Makes the pods named go: each gets state deleting, pod-deletion-cost -2147483648 and its
 * readiness gate False (NotReady), then .spec.replicas is lowered to k8s_fleet_delete_target of
 * a fresh read (again after each conflict). A StatefulSet pod that is not among the highest
 * ordinals is refused before anything is written: -EINVAL with err naming the pod in its way.
 * f: the fleet as read (its pods are looked up by name; one not there any more counts as gone).
 * 0 with res (before/after), or -errno with err. */
int k8s_fleet_delete(k8s_client *c, const k8s_fleet *f, const char *const *pods, size_t n,
                     const char *gate_type, int64_t now_wall_ms, k8s_fence *fence,
                     int64_t deadline_ms, k8s_scale_result *res, char *err, size_t errlen);

#endif
