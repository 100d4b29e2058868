/* k8s_client.h: the Kubernetes API client the executor uses, with blocking calls meant for
 * worker threads (never the event loop; k8s.h runs them off the loop): every call has a
 * deadline and passes a client-side rate limiter (token bucket, qps/burst as client-go's), and
 * a client can be stopped, which cancels whatever waits or transfers.
 *
 * - the scale subresource: GET, then PUT with the resourceVersion read; a 409 Conflict re-reads
 *   and re-applies the intended change (computed again from what was read), up to a bound, then
 *   fails saying so: a change is never dropped silently;
 * - pods by label selector, merge patches of their labels/annotations, readiness-gate condition
 *   patches of pods/status;
 * - list + watch of a collection (resourceVersion, bookmarks, 410 Gone -> relist);
 * - whether another scaler owns a target (autoscaling/v2 HPA, KEDA ScaledObject). */
#ifndef TIDE_K8S_CLIENT_H
#define TIDE_K8S_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "exec/k8s_creds.h"
#include "exec/k8s_json.h"

typedef struct k8s_client k8s_client;

typedef struct k8s_client_opts {
    double qps;        /* sustained requests per second (client-go: 5) */
    int burst;         /* bucket size (client-go: 10) */
    long timeout_ms;   /* per call when the caller gives no deadline */
    int max_conflicts; /* 409s re-read and re-applied before giving up (default 8) */
} k8s_client_opts;

/* Token bucket (pure, for the limiter and its tests): capacity burst, refilled at qps. */
typedef struct k8s_bucket {
    double tokens, qps;
    int burst;
    int64_t last_ms;
} k8s_bucket;
void k8s_bucket_init(k8s_bucket *b, double qps, int burst, int64_t now_ms);
/* Takes a token at now_ms if there is one (returns 0) or returns how many ms until there is
 * (nothing taken). */
int64_t k8s_bucket_take(k8s_bucket *b, int64_t now_ms);

/* Copies creds (the blobs too). 0, or -errno with err. */
int k8s_client_new(const k8s_creds *creds, const k8s_client_opts *opts, k8s_client **out, char *err,
                   size_t errlen);
/* Cancels waits and transfers under way (they fail with -ECANCELED) and refuses new calls;
 * thread-safe. k8s_client_free after every caller is done. */
void k8s_client_stop(k8s_client *c);
void k8s_client_free(k8s_client *c);
const char *k8s_client_server(const k8s_client *c);

typedef struct k8s_stats {
    uint64_t requests, conflicts, throttled_ms, relists, bookmarks, events;
} k8s_stats;
void k8s_client_stats(k8s_client *c, k8s_stats *out);

/* Monotonic milliseconds; deadlines are absolute on this clock (0 = opts.timeout_ms from now). */
int64_t k8s_now_ms(void);

typedef struct k8s_resp {
    long status; /* HTTP status */
    char *body;  /* malloc'd, NUL-terminated (may be NULL); caller frees */
    size_t len;
} k8s_resp;

/* One request (path starts with '/', query included). rc 0: an answer arrived (any status);
 * -ETIMEDOUT past the deadline, -ECANCELED stopped, -EIO transport, -EACCES unreadable token.
 * Sets err for rc < 0. */
int k8s_request(k8s_client *c, const char *method, const char *path, const char *content_type,
                const char *body, int64_t deadline_ms, k8s_resp *r, char *err, size_t errlen);

/* The error of an answer that is not 2xx as -errno with err "VERB PATH: HTTP 409 Conflict:
 * message": -ENOENT 404, -EACCES 401/403, -EAGAIN 409/429, -EINVAL other 4xx, -EIO 5xx. */
int k8s_answer_error(const char *what, const k8s_resp *r, char *err, size_t errlen);

/* ---- fencing of writes (README "Fencing") ----------------------------------------------
 * A write with a fence (token > 0) reads the object first and is refused (-ESTALE, err
 * "fenced: ... records token H, ours is T", seen = H) when the object's annotation
 * tide.io/fence already records a higher token: a newer control plane owns the workload. The
 * write itself carries metadata.resourceVersion as read (a precondition: a 409 re-reads, checks
 * the fence again and re-applies, as the scale update does) and sets the annotation to the
 * token. Pods' status patches cannot set annotations: the pod is stamped by a metadata patch
 * first when it records a lower token. A Deployment's or StatefulSet's replicas are then
 * written with a merge patch of the object itself (not the scale subresource), so that the
 * count and the token change in one write. NULL or token 0: unfenced, exactly as before. */
#define K8S_FENCE_ANNOTATION "tide.io/fence"
typedef struct k8s_fence {
    uint64_t token; /* ours */
    uint64_t seen;  /* out: the higher token a refusal found */
} k8s_fence;

typedef enum k8s_scalable { K8S_DEPLOYMENT = 0, K8S_STATEFULSET } k8s_scalable;
const char *k8s_scalable_resource(k8s_scalable k); /* "deployments" / "statefulsets" */
const char *k8s_scalable_kind(k8s_scalable k);     /* "Deployment" / "StatefulSet" */

int k8s_scale_get(k8s_client *c, k8s_scalable kind, const char *ns, const char *name,
                  int64_t deadline_ms, k8s_scale *out, char *err, size_t errlen);

/* The intended change, computed from the scale as read: the replicas wanted, or -1 to give up
 * (err says why). Called once per attempt (again after each conflict). */
typedef int (*k8s_want_fn)(void *arg, const k8s_scale *cur, char *err, size_t errlen);

typedef struct k8s_scale_result {
    int before, after; /* spec.replicas read last, and written (== before: no write) */
    int conflicts;     /* 409s met and re-applied */
    char resource_version[K8S_RV_MAX]; /* after the write */
} k8s_scale_result;

/* GET the scale, PUT want() with its resourceVersion; on 409 re-read and re-apply, at most
 * opts.max_conflicts times and within the deadline, then -EAGAIN "gave up after N conflicts".
 * 0 with res filled. */
int k8s_scale_update(k8s_client *c, k8s_scalable kind, const char *ns, const char *name,
                     k8s_want_fn want, void *arg, int64_t deadline_ms, k8s_scale_result *res,
                     char *err, size_t errlen);
/* The same under a fence (see above; fence NULL or token 0: k8s_scale_update). */
int k8s_scale_update_fenced(k8s_client *c, k8s_scalable kind, const char *ns, const char *name,
                            k8s_want_fn want, void *arg, k8s_fence *fence, int64_t deadline_ms,
                            k8s_scale_result *res, char *err, size_t errlen);
/* k8s_scale_update to an absolute count. */
int k8s_scale_set(k8s_client *c, k8s_scalable kind, const char *ns, const char *name, int replicas,
                  int64_t deadline_ms, k8s_scale_result *res, char *err, size_t errlen);

/* Pods of namespace ns matching a label selector (Kubernetes' string syntax, as
 * Scale.status.selector gives it). *pods malloc'd (caller frees), at most 10000. */
int k8s_pods_list(k8s_client *c, const char *ns, const char *selector, const char *gate_type,
                  int64_t deadline_ms, k8s_pod **pods, size_t *n, char rv[K8S_RV_MAX], char *err,
                  size_t errlen);

/* Merge patch of a pod's metadata (k8s_meta_patch's body); out (may be NULL) gets the pod. */
int k8s_pod_patch_meta(k8s_client *c, const char *ns, const char *name, const char *patch,
                       const char *gate_type, int64_t deadline_ms, k8s_pod *out, char *err,
                       size_t errlen);
/* The same under a fence (see above). */
int k8s_pod_patch_meta_fenced(k8s_client *c, const char *ns, const char *name, const char *patch,
                              const char *gate_type, k8s_fence *fence, int64_t deadline_ms,
                              k8s_pod *out, char *err, size_t errlen);

/* Sets the readiness-gate condition `type` of a pod to True/False (strategic merge patch of
 * pods/status, merged by type); out (may be NULL) gets the pod as answered. */
int k8s_pod_set_gate(k8s_client *c, const char *ns, const char *name, const char *type, int on,
                     const char *reason, const char *message, int64_t now_wall_ms,
                     int64_t deadline_ms, k8s_pod *out, char *err, size_t errlen);
/* The same under a fence (see above). */
int k8s_pod_set_gate_fenced(k8s_client *c, const char *ns, const char *name, const char *type,
                            int on, const char *reason, const char *message, int64_t now_wall_ms,
                            k8s_fence *fence, int64_t deadline_ms, k8s_pod *out, char *err,
                            size_t errlen);

/* Another scaler on kind/ns/name? 1 with owner ("HorizontalPodAutoscaler shop/web"), 0 none,
 * -errno when it cannot be told (err says why: Auto must then be refused too). A missing API
 * (404: no KEDA installed, no autoscaling/v2) counts as none for that API. */
int k8s_scaler_owner(k8s_client *c, k8s_scalable kind, const char *ns, const char *name,
                     int64_t deadline_ms, char *owner, size_t ocap, char *err, size_t errlen);

/* ---- list + watch ---------------------------------------------------------------------- */

typedef enum k8s_watch_what {
    K8S_W_RESET = 0, /* a (re)list starts: forget every object known (then ADDED for each) */
    K8S_W_ADDED,
    K8S_W_MODIFIED,
    K8S_W_DELETED,
    K8S_W_SYNCED, /* the list is complete (after RESET + its ADDED) */
} k8s_watch_what;

/* obj: the object's JSON (NULL for RESET/SYNCED). Nonzero ends the watch with that code. */
typedef int (*k8s_watch_fn)(void *arg, k8s_watch_what what, const char *obj, size_t len);

/* Lists `collection` (a path such as /api/v1/namespaces/shop/pods, optional label selector)
 * and watches it from the list's resourceVersion with bookmarks; a watch that ends is resumed
 * from the last resourceVersion seen (bookmarks included); 410 Gone (an expired version) ->
 * RESET and relist. Runs until k8s_client_stop (returns -ECANCELED), cb returns nonzero, or
 * until_ms (monotonic, 0 = forever) passes (returns 0). Failed requests back off (100 ms
 * doubling to 10 s). */
int k8s_watch(k8s_client *c, const char *collection, const char *selector, k8s_watch_fn cb,
              void *arg, int64_t until_ms, char *err, size_t errlen);

#endif
