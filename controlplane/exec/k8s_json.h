/* k8s_json.h: the Kubernetes API objects the executor reads, decoded from JSON (pure: a buffer
 * in, a struct out, no I/O): the autoscaling/v1 Scale, a Pod (identity, node, phase, readiness,
 * Tide's state label and the deletion-cost annotation), a list's items and resourceVersion, one
 * watch event line (ADDED/MODIFIED/DELETED/BOOKMARK/ERROR), a Status (code, reason, message),
 * and the scalers that own a target (autoscaling/v2 HorizontalPodAutoscalers and KEDA
 * ScaledObjects whose scaleTargetRef names it). Every decoder bounds what it copies and reports
 * what was wrong with the field's path. */
#ifndef TIDE_K8S_JSON_H
#define TIDE_K8S_JSON_H

#include <stddef.h>
#include <stdint.h>

#define K8S_RV_MAX 32            /* resourceVersion: an opaque string, etcd revisions in practice */
#define K8S_UID_MAX 40           /* a UUID */
#define K8S_NODE_MAX 254         /* a node name is a DNS-1123 subdomain */
#define K8S_SELECTOR_MAX 1024    /* Scale.status.selector, a label selector string */
#define K8S_STATE_MAX 32         /* the tide.io/state label value */
#define K8S_MAX_JSON (16u << 20) /* a list of thousands of pods stays below this */

/* The labels and annotations Tide keeps its state in (level-triggered: the cluster holds it). */
#define K8S_LABEL_STATE "tide.io/state"
#define K8S_ANNOT_SINCE "tide.io/since"
#define K8S_ANNOT_DELETION_COST "controller.kubernetes.io/pod-deletion-cost"
#define K8S_ANNOT_REPLICA "tide.io/replica" /* the planner's replica id this pod carries */
#define K8S_REPLICA_MAX 254                 /* a replica id (shared/actions.h), NUL included */

typedef struct k8s_scale {
    char name[254];
    char namespace_[64];
    char resource_version[K8S_RV_MAX];
    int spec_replicas;   /* -1 when absent */
    int status_replicas; /* 0 when absent */
    char selector[K8S_SELECTOR_MAX];
} k8s_scale;

/* Decodes an autoscaling/v1 Scale. 0, or -EINVAL with err ("Scale: status.selector: must be a
 * string"). */
int k8s_scale_parse(const char *buf, size_t len, k8s_scale *out, char *err, size_t errlen);
/* The body of a PUT of the scale subresource: kind Scale, metadata {name, namespace,
 * resourceVersion (omitted when rv is "" or NULL: unconditional)}, spec.replicas. Caller frees. */
char *k8s_scale_body(const char *ns, const char *name, const char *rv, int replicas);

typedef enum k8s_phase {
    K8S_PHASE_UNKNOWN = 0,
    K8S_PHASE_PENDING,
    K8S_PHASE_RUNNING,
    K8S_PHASE_SUCCEEDED,
    K8S_PHASE_FAILED,
} k8s_phase;

typedef struct k8s_pod {
    char name[254];
    char namespace_[64];
    char uid[K8S_UID_MAX];
    char resource_version[K8S_RV_MAX];
    char node[K8S_NODE_MAX];
    k8s_phase phase;
    int ready;                     /* condition Ready is True */
    int containers_ready;          /* condition ContainersReady is True */
    int gate;                      /* the readiness-gate condition: 1 True, 0 False, -1 absent */
    int terminating;               /* metadata.deletionTimestamp set */
    char state[K8S_STATE_MAX];     /* label tide.io/state, "" when absent */
    int64_t deletion_cost;         /* annotation pod-deletion-cost, 0 when absent or invalid */
    char replica[K8S_REPLICA_MAX]; /* annotation tide.io/replica, "" when absent */
    int64_t since_ms;              /* annotation tide.io/since (unix ms), 0 when absent */
    char qos[16];                  /* status.qosClass ("Guaranteed", "Burstable", "BestEffort") */
    char ip[46];                   /* status.podIP, "" before it has one */
    int port;                      /* the first container's first containerPort, 0 none */
    int ordinal; /* StatefulSet pods: label apps.kubernetes.io/pod-index (or the -N of
                  * statefulset.kubernetes.io/pod-name); -1 otherwise */
} k8s_pod;

/* Decodes a Pod object (a cJSON node or a buffer). gate_type names the readiness-gate
 * condition (e.g. "tide.io/serving"). 0, or -EINVAL with err. */
int k8s_pod_parse(const char *buf, size_t len, const char *gate_type, k8s_pod *out, char *err,
                  size_t errlen);

/* A list (PodList, ...): calls item(arg, json, len) for each element (its JSON text, NUL-
 * terminated) and copies metadata.resourceVersion. At most max_items items (-E2BIG past it).
 * 0, -EINVAL with err, or the first nonzero item() result. */
typedef int (*k8s_item_fn)(void *arg, const char *json, size_t len);
int k8s_list_parse(const char *buf, size_t len, size_t max_items, k8s_item_fn item, void *arg,
                   char rv[K8S_RV_MAX], char *err, size_t errlen);

typedef enum k8s_event_type {
    K8S_EV_ADDED = 1,
    K8S_EV_MODIFIED,
    K8S_EV_DELETED,
    K8S_EV_BOOKMARK,
    K8S_EV_ERROR,
} k8s_event_type;

typedef struct k8s_event {
    k8s_event_type type;
    char resource_version[K8S_RV_MAX]; /* the object's (a bookmark's: where to resume) */
    int code;                          /* ERROR: the Status code (410 = resourceVersion gone) */
    char message[256];                 /* ERROR: the Status message */
    char *object;                      /* the object's JSON (malloc'd; caller frees), or NULL */
    size_t object_len;
} k8s_event;

/* Decodes one watch line ({"type":..., "object":{...}}). 0 (caller frees ev->object), or
 * -EINVAL with err. */
int k8s_event_parse(const char *line, size_t len, k8s_event *ev, char *err, size_t errlen);

/* A Status object's code, reason and message (the body of an error answer); 0, or -ENOENT when
 * the body is not a Status. */
int k8s_status_parse(const char *buf, size_t len, int *code, char *reason, size_t rcap,
                     char *message, size_t mcap);

/* Does a list of HorizontalPodAutoscalers or KEDA ScaledObjects hold one whose
 * spec.scaleTargetRef names kind/name (KEDA: kind defaults to Deployment, apiVersion to apps/v1
 * when absent)? item_kind names the items' kind (list items of built-in types carry none).
 * Returns 1 with owner = "HorizontalPodAutoscaler shop/web" etc., 0 when none,
 * -EINVAL with err for a body that is not such a list. */
int k8s_scalers_find(const char *buf, size_t len, const char *kind, const char *name,
                     const char *item_kind, char *owner, size_t ocap, char *err, size_t errlen);

/* A merge patch of metadata.labels and metadata.annotations: keys[i] = vals[i] (vals[i] NULL:
 * remove the key); is_label[i] picks labels or annotations. Caller frees; NULL on ENOMEM. */
char *k8s_meta_patch(const char *const *keys, const char *const *vals, const int *is_label, int n);

/* Label selector values (Kubernetes' syntax) for a URL query: percent-encodes everything but
 * unreserved characters. Returns 0, or -ENAMETOOLONG when out is too small. */
int k8s_url_escape(const char *in, char *out, size_t cap);

#endif
