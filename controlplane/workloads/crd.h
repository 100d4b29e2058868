/* crd.h: Workloads as Kubernetes custom resources (deploy/crds/workload.yaml: group tide.io,
 * version v1alpha1, a status subresource). When a Kubernetes API is configured
 * (k8s_configured), the workloads module lists and watches the Workload objects of every
 * namespace (resourceVersion, bookmarks, 410 Gone -> relist: k8s_watch) on a thread of its own;
 * each object is validated by the spec parser and applied like `tidectl apply` (not persisted:
 * the API server is their store; deleting the object deletes the workload; a relist drops the
 * ones gone meanwhile), and .status is written back (a merge patch of workloads/status, off the
 * loop, only when it changed):
 *   observedGeneration, online, cutoff, standby, desired (the portrait's need now),
 *   nextChange {time, replicas} (the portrait's next change), lastDecision {time, from, to,
 *   reason}, conditions:
 *     Ready            True when the spec is valid and applied and (with an executor) the
 *                      inventory is in; False with InvalidSpec, NameConflict, Preview, Inventory
 *     Scaling          True while the online replicas differ from the need (ScalingUp/Down)
 *     PredictiveActive True while a predictive provider drives the portrait
 *     FallbackReactive True while a predictive provider fell back (its reason)
 * Workloads applied with `tidectl apply` keep working with or without Kubernetes; an object
 * whose name a tidectl-applied workload already has is refused (NameConflict). */
#ifndef TIDE_WORKLOADS_CRD_H
#define TIDE_WORKLOADS_CRD_H

#include <stddef.h>

struct cp_workloads;

/* Starts the watch when a Kubernetes API is configured. 0 or -errno with err. */
int crd_start(struct cp_workloads *w, char *err, size_t errlen);
/* Ends the watch (stops the Kubernetes client: call it at shutdown only) and frees. */
void crd_stop(struct cp_workloads *w);

#endif
