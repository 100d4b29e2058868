/* k8s.h: the control plane's small Kubernetes API client: sets a pod's readiness-gate
 * condition (PATCH /api/v1/namespaces/NS/pods/NAME/status with a strategic merge patch of
 * status.conditions, merged by "type") from a worker thread, reporting back on the loop.
 *
 * The patch goes through the control plane's client (below: k8s_kubeconfig, the service account,
 * or k8s_api_url + k8s_token_file (read at every request: projected service account tokens
 * rotate) + k8s_ca_file), with k8s_readiness_condition and k8s_timeout. The pod must
 * list the condition in spec.readinessGates; while it is "False" the pod is not Ready and
 * Services' endpoints leave it out. RBAC: patch on pods/status. */
#ifndef TIDE_K8S_H
#define TIDE_K8S_H

#include <stddef.h>
#include <stdint.h>

struct controlplane;

#define K8S_NS_MAX 64    /* a namespace is a DNS-1123 label: at most 63 bytes */
#define K8S_NAME_MAX 254 /* a pod name is a DNS-1123 subdomain: at most 253 bytes */

/* Parses "NAMESPACE/NAME" (both DNS-1123: lower-case letters, digits, '-', and '.' in the
 * name; alphanumeric at both ends). Returns 0, or -EINVAL with err saying what is wrong. */
int k8s_pod_ref_parse(const char *ref, char ns[K8S_NS_MAX], char name[K8S_NAME_MAX], char *err,
                      size_t errlen);

/* The strategic merge patch body that sets condition `type` to "True"/"False" (status 1/0),
 * with reason, message and lastTransitionTime (now_wall_ms, RFC 3339 UTC). Caller frees;
 * NULL on ENOMEM. Pure. */
char *k8s_condition_patch(const char *type, int status, const char *reason, const char *message,
                          int64_t now_wall_ms);

/* Finds status.conditions[type == `type`].status ("True", "False", "Unknown") in a pod JSON
 * object (what the API returns for the patch). Returns 0 with status copied, -ENOENT when the
 * pod has no such condition, -EINVAL when body is not a pod object. Pure. */
int k8s_pod_condition(const char *body, size_t len, const char *type, char *status, size_t cap);

typedef struct k8s_patch_result {
    long http_status;          /* 0 when no answer arrived */
    double ms;                 /* request to answer */
    char condition_status[16]; /* the condition as the answer shows it, "" if absent */
    uint64_t fenced_seen;      /* rc -ESTALE: the newer fencing token the pod records */
} k8s_patch_result;

/* rc 0: the API accepted the patch and its answer shows the condition with the wanted
 * status; -errno with err otherwise (-ENOENT pod not found, -EACCES 401/403, -EINVAL 4xx
 * rejections, -EIO other answers, -ETIMEDOUT, -ECANCELED at shutdown). Called from the loop,
 * never from inside k8s_set_condition(). */
typedef void (*k8s_done_fn)(void *arg, int rc, const k8s_patch_result *res, const char *err);

/* Patches the readiness-gate condition (cp->cfg.k8s_readiness_condition) of pod NS/NAME to
 * "True" (ready = 1) or "False" with message. Returns 0 (done will be called), or -errno with
 * err (-ENOMEM, -EAGAIN no thread; done is not called then). */
int k8s_set_condition(struct controlplane *cp, const char *ns, const char *name, int ready,
                      const char *message, k8s_done_fn done, void *arg, char *err, size_t errlen);
/* The same under workload's fencing token (k8s_client.h "fencing of writes"; token 0: as
 * above): the pod is read first, refused with -ESTALE (res->fenced_seen) when it records a
 * newer token, stamped with ours, and patched with its resourceVersion as a precondition. */
int k8s_set_condition_fenced(struct controlplane *cp, const char *ns, const char *name, int ready,
                             const char *message, uint64_t token, k8s_done_fn done, void *arg,
                             char *err, size_t errlen);

/* ---- the executor's client (k8s_client.h), run off the loop -------------------------------- */

struct k8s_client;

/* The control plane's Kubernetes client, made at start from k8s_kubeconfig (+ k8s_context), or
 * in a pod from the service account (KUBERNETES_SERVICE_HOST/PORT with the default
 * k8s_api_url), or from k8s_api_url/k8s_token_file/k8s_ca_file; k8s_qps/k8s_burst limit it and
 * k8s_timeout bounds each call. NULL before start. */
struct k8s_client *k8s_client_of(struct controlplane *cp);
/* 1 when a Kubernetes API was configured (k8s_kubeconfig, a k8s_api_url other than the default,
 * or the service account of a pod): the Deployment/StatefulSet executor acts only then. Set at
 * the k8s module's start. */
int k8s_configured(void);
/* Where the client's credentials came from ("kubeconfig PATH", "in-cluster service account"). */
const char *k8s_client_source(struct controlplane *cp);

/* run(client, arg) on a worker thread (blocking k8s_client calls, each bounded by its deadline),
 * then after(arg, rc) on the loop with run's result; -ECANCELED when cancelled at shutdown
 * before it ran. 0, or -errno with err (-EAGAIN queue full, -ENODEV no client): after is not
 * called then. */
typedef int (*k8s_run_fn)(struct k8s_client *c, void *arg);
typedef void (*k8s_after_fn)(void *arg, int rc);
int k8s_offloop(struct controlplane *cp, k8s_run_fn run, k8s_after_fn after, void *arg, char *err,
                size_t errlen);

/* Does another scaler own Deployment/StatefulSet ns/name (an autoscaling/v2 HPA or a KEDA
 * ScaledObject whose scaleTargetRef names it)? The executor calls this before it acts in Auto
 * mode. done(arg, rc, reason) on the loop: rc 0 = none (Auto may act); 1 = owned, reason says
 * by whom ("HorizontalPodAutoscaler shop/web scales Deployment shop/web: Auto refused (delete
 * it or run Tide in Preview)"); < 0 = cannot tell (reason says why; refuse Auto as well).
 * Returns 0, or -errno with err (done not called). */
typedef void (*k8s_owner_fn)(void *arg, int rc, const char *reason);
int k8s_check_owner(struct controlplane *cp, int statefulset, const char *ns, const char *name,
                    k8s_owner_fn done, void *arg, char *err, size_t errlen);

#endif
