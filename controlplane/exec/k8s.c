/* k8s.c: Kubernetes API client of the control plane (k8s.h): readiness-gate condition patches
 * sent through the module's client (its credentials, rate limit and stop) like the client's
 * other calls, all on the module's worker pool (shared/work.h), results delivered on the loop;
 * the module's stop waits for whatever is still under way. */
#include "exec/k8s.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cp.h"
#include "exec/k8s_client.h"
#include "log.h"
#include "work.h"

struct cp_k8s {
    struct controlplane *cp;
    k8s_client *client;
    work_pool *pool; /* the client's calls and the readiness patches, off the loop */
    char source[K8S_PATH_MAX + 64];
};

/* A bounded pool: calls wait in the client's rate limiter anyway; 4 threads keep a slow
 * answer from holding up the others, 256 queued bound the memory of a burst. */
#define K8S_POOL_THREADS 4
#define K8S_POOL_QUEUE 256

typedef struct k8s_job {
    work w; /* first: the done callback gets the job back */
    k8s_client *client;
    /* input, copied */
    char type[256];
    char ns[K8S_NS_MAX], name[K8S_NAME_MAX];
    char *body;
    int ready;
    long timeout_ms;
    uint64_t token; /* fencing token, 0 = unfenced */
    char message[256];
    /* output, written by job_run on a worker */
    int rc;
    k8s_patch_result res;
    char err[1024];
    k8s_done_fn done;
    void *arg;
} k8s_job;

/* ---- pure parts ------------------------------------------------------------------------ */

static int dns_label_ok(const char *s, size_t n, int dots) {
    if (n == 0) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (alnum) continue;
        if (c == '-' || (dots && c == '.')) {
            if (i == 0 || i == n - 1) return 0;
            if (c == '.' && s[i - 1] == '.') return 0;
            continue;
        }
        return 0;
    }
    return 1;
}

int k8s_pod_ref_parse(const char *ref, char ns[K8S_NS_MAX], char name[K8S_NAME_MAX], char *err,
                      size_t errlen) {
    const char *slash = ref ? strchr(ref, '/') : NULL;
    if (!slash) {
        snprintf(err, errlen, "pod '%s' must be NAMESPACE/NAME", ref ? ref : "");
        return -EINVAL;
    }
    size_t nl = (size_t)(slash - ref), ml = strlen(slash + 1);
    if (nl >= K8S_NS_MAX || !dns_label_ok(ref, nl, 0)) {
        snprintf(err, errlen,
                 "pod '%s': namespace '%.*s' is not a DNS-1123 label (a-z, 0-9, '-', "
                 "at most 63)",
                 ref, (int)nl, ref);
        return -EINVAL;
    }
    if (ml >= K8S_NAME_MAX || !dns_label_ok(slash + 1, ml, 1)) {
        snprintf(err, errlen,
                 "pod '%s': name '%s' is not a DNS-1123 subdomain (a-z, 0-9, '-', '.', "
                 "at most 253)",
                 ref, slash + 1);
        return -EINVAL;
    }
    memcpy(ns, ref, nl);
    ns[nl] = 0;
    memcpy(name, slash + 1, ml + 1);
    return 0;
}

char *k8s_condition_patch(const char *type, int status, const char *reason, const char *message,
                          int64_t now_wall_ms) {
    char when[32];
    time_t t = (time_t)(now_wall_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    cJSON *root = cJSON_CreateObject();
    cJSON *st = cJSON_AddObjectToObject(root, "status");
    cJSON *conds = cJSON_AddArrayToObject(st, "conditions");
    cJSON *c = cJSON_CreateObject();
    cJSON_AddItemToArray(conds, c);
    cJSON_AddStringToObject(c, "type", type);
    cJSON_AddStringToObject(c, "status", status ? "True" : "False");
    if (reason && *reason) cJSON_AddStringToObject(c, "reason", reason);
    if (message && *message) cJSON_AddStringToObject(c, "message", message);
    cJSON_AddStringToObject(c, "lastTransitionTime", when);
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return s;
}

int k8s_pod_condition(const char *body, size_t len, const char *type, char *status, size_t cap) {
    cJSON *root = cJSON_ParseWithLength(body, len);
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(root, "kind");
    if (!cJSON_IsObject(root) || !cJSON_IsString(kind) || strcmp(kind->valuestring, "Pod")) {
        cJSON_Delete(root);
        return -EINVAL;
    }
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(root, "status");
    const cJSON *conds = cJSON_GetObjectItemCaseSensitive(st, "conditions");
    const cJSON *c;
    int rc = -ENOENT;
    cJSON_ArrayForEach(c, conds) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(c, "type");
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(c, "status");
        if (cJSON_IsString(t) && !strcmp(t->valuestring, type) && cJSON_IsString(s)) {
            snprintf(status, cap, "%s", s->valuestring);
            rc = 0;
            break;
        }
    }
    cJSON_Delete(root);
    return rc;
}

/* ---- the worker ------------------------------------------------------------------------- */

typedef struct buf {
    char *p;
    size_t len;
} buf;

/* The "message" of a Kubernetes Status object, or the start of the body. */
static void api_message(const buf *b, char *out, size_t cap) {
    cJSON *root = b->p ? cJSON_ParseWithLength(b->p, b->len) : NULL;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "message");
    if (cJSON_IsString(m))
        snprintf(out, cap, "%s", m->valuestring);
    else
        snprintf(out, cap, "%.200s", b->p ? b->p : "(no body)");
    cJSON_Delete(root);
}

static void job_run(work *w) {
    k8s_job *j = (k8s_job *)w;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char what[K8S_NS_MAX + K8S_NAME_MAX + 32], path[K8S_NS_MAX + K8S_NAME_MAX + 64];
    snprintf(what, sizeof what, "PATCH pods/%s/%s/status", j->ns, j->name);
    snprintf(path, sizeof path, "/api/v1/namespaces/%s/pods/%s/status", j->ns, j->name);
    /* through the module's client: the credentials it was made with (kubeconfig, service
     * account, or k8s_api_url + k8s_token_file + k8s_ca_file), its rate limit and its stop */
    k8s_resp r = {0};
    char err[900];
    if (j->token) { /* fenced: read, check, stamp, patch with the precondition */
        k8s_fence fe = {.token = j->token};
        k8s_pod pod;
        int frc = k8s_pod_set_gate_fenced(j->client, j->ns, j->name, j->type, j->ready,
                                          j->ready ? "TideActive" : "TideDrained", j->message,
                                          tide_now_wall_ms(), &fe, k8s_now_ms() + j->timeout_ms,
                                          &pod, err, sizeof err);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        j->res.ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
        j->rc = frc;
        j->res.fenced_seen = fe.seen;
        if (frc == 0) {
            j->res.http_status = 200;
            snprintf(j->res.condition_status, sizeof j->res.condition_status, "%s",
                     pod.gate == 1   ? "True"
                     : pod.gate == 0 ? "False"
                                     : "");
        } else {
            snprintf(j->err, sizeof j->err, "%s", err);
        }
        return;
    }
    int rc = k8s_request(j->client, "PATCH", path, "application/strategic-merge-patch+json",
                         j->body, k8s_now_ms() + j->timeout_ms, &r, err, sizeof err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    j->res.ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    buf b = {r.body, r.len};
    if (rc < 0) {
        j->rc = rc;
        snprintf(j->err, sizeof j->err, "%s", err);
        goto out;
    }
    j->res.http_status = r.status;
    long code = j->res.http_status;
    if (code < 200 || code > 299) {
        char msg[512];
        api_message(&b, msg, sizeof msg);
        j->rc = code == 404                  ? -ENOENT
                : code == 401 || code == 403 ? -EACCES
                : code >= 400 && code < 500  ? -EINVAL
                                             : -EIO;
        snprintf(j->err, sizeof j->err, "%s: HTTP %ld: %s", what, code, msg);
        goto out;
    }
    int r2 = k8s_pod_condition(b.p ? b.p : "", b.len, j->type, j->res.condition_status,
                               sizeof j->res.condition_status);
    const char *want = j->ready ? "True" : "False";
    if (r2 == -EINVAL) {
        j->rc = -EIO;
        snprintf(j->err, sizeof j->err, "%s: HTTP %ld but the answer is not a Pod object", what,
                 code);
    } else if (r2 < 0 || strcmp(j->res.condition_status, want)) {
        j->rc = -EIO;
        snprintf(j->err, sizeof j->err,
                 "%s: accepted, but the pod shows condition %s = '%s', not %s", what, j->type,
                 j->res.condition_status, want);
    }
out:
    free(b.p);
}

static void job_done(work *w, int status) {
    k8s_job *j = (k8s_job *)w;
    if (status == -ECANCELED) {
        j->rc = -ECANCELED;
        snprintf(j->err, sizeof j->err, "control plane shutting down");
    } else if (j->rc == 0)
        log_info("k8s", "pod %s/%s: %s = %s (%.1f ms)", j->ns, j->name, j->type,
                 j->ready ? "True" : "False", j->res.ms);
    else
        log_warn("k8s", "%s", j->err);
    k8s_done_fn done = j->done;
    void *arg = j->arg;
    k8s_patch_result res = j->res;
    char err[sizeof j->err];
    memcpy(err, j->err, sizeof err);
    int rc = j->rc;
    free(j->body);
    free(j);
    done(arg, rc, &res, rc ? err : NULL);
}

int k8s_set_condition(struct controlplane *cp, const char *ns, const char *name, int ready,
                      const char *message, k8s_done_fn done, void *arg, char *err, size_t errlen) {
    return k8s_set_condition_fenced(cp, ns, name, ready, message, 0, done, arg, err, errlen);
}

int k8s_set_condition_fenced(struct controlplane *cp, const char *ns, const char *name, int ready,
                             const char *message, uint64_t token, k8s_done_fn done, void *arg,
                             char *err, size_t errlen) {
    struct cp_k8s *k = cp->k8s;
    if (!k) {
        snprintf(err, errlen, "Kubernetes client not started");
        return -ENOMEM;
    }
    k8s_job *j = calloc(1, sizeof *j);
    if (!j) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    j->client = k->client;
    snprintf(j->type, sizeof j->type, "%s", cp->cfg.k8s_readiness_condition);
    snprintf(j->ns, sizeof j->ns, "%s", ns);
    snprintf(j->name, sizeof j->name, "%s", name);
    j->ready = ready;
    j->token = token;
    snprintf(j->message, sizeof j->message, "%s", message ? message : "");
    j->timeout_ms = (long)cp->cfg.k8s_timeout_ms;
    j->done = done;
    j->arg = arg;
    j->body = k8s_condition_patch(j->type, ready, ready ? "TideActive" : "TideDrained", message,
                                  tide_now_wall_ms());
    if (!j->body) {
        free(j);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    int rc = work_submit(k->pool, &j->w, job_run, job_done);
    if (rc < 0) {
        free(j->body);
        free(j);
        snprintf(err, errlen, "%s",
                 rc == -EAGAIN ? "too many Kubernetes calls waiting (256): try again"
                               : "Kubernetes worker pool is shut down");
        return rc;
    }
    return 0;
}

static int configured; /* k8s_configured(): one control plane per process */

/* The credentials: a kubeconfig when configured; in a pod (the service's environment and the
 * default URL) the service account; else the configured URL, token and CA files. */
static int k8s_resolve_creds(struct controlplane *cp, k8s_creds *cr, char *err, size_t errlen) {
    const struct cp_config *cfg = &cp->cfg;
    char e2[700];
    if (cfg->k8s_kubeconfig && cfg->k8s_kubeconfig[0]) {
        if (k8s_kubeconfig_load(cfg->k8s_kubeconfig, cfg->k8s_context, cr, e2, sizeof e2) < 0) {
            snprintf(err, errlen, "k8s_kubeconfig: %s", e2);
            return -EINVAL;
        }
        return 0;
    }
    if (!strcmp(cfg->k8s_api_url, "https://kubernetes.default.svc") &&
        getenv("KUBERNETES_SERVICE_HOST") && k8s_in_cluster(NULL, cr, e2, sizeof e2) == 0)
        return 0;
    memset(cr, 0, sizeof *cr);
    snprintf(cr->server, sizeof cr->server, "%s", cfg->k8s_api_url);
    size_t n = strlen(cr->server);
    while (n > 0 && cr->server[n - 1] == '/')
        cr->server[--n] = 0;
    snprintf(cr->token_file, sizeof cr->token_file, "%s", cfg->k8s_token_file);
    snprintf(cr->ca_file, sizeof cr->ca_file, "%s", cfg->k8s_ca_file);
    snprintf(cr->source, sizeof cr->source, "k8s_api_url %.900s", cr->server);
    return 0;
}

static int k8s_start(struct controlplane *cp, char *err, size_t errlen) {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(err, errlen, "k8s: curl_global_init failed");
        return -EIO;
    }
    struct cp_k8s *k = calloc(1, sizeof *k);
    if (!k) {
        snprintf(err, errlen, "k8s: out of memory");
        return -ENOMEM;
    }
    k->cp = cp;
    k8s_creds cr;
    int rc = k8s_resolve_creds(cp, &cr, err, errlen);
    if (rc == 0) {
        k8s_client_opts o = {.qps = (double)cp->cfg.k8s_qps,
                             .burst = (int)cp->cfg.k8s_burst,
                             .timeout_ms = (long)cp->cfg.k8s_timeout_ms};
        char e2[600];
        rc = k8s_client_new(&cr, &o, &k->client, e2, sizeof e2);
        if (rc < 0) snprintf(err, errlen, "k8s: %s", e2);
        snprintf(k->source, sizeof k->source, "%s", cr.source);
        k8s_creds_free(&cr);
    }
    if (rc == 0 && (rc = work_pool_new(cp->loop, K8S_POOL_THREADS, K8S_POOL_QUEUE, &k->pool)) < 0)
        snprintf(err, errlen, "k8s: worker pool: %s", strerror(-rc));
    if (rc < 0) {
        k8s_client_free(k->client);
        free(k);
        return rc;
    }
    log_info("k8s", "Kubernetes API %s (%s), %lld requests/s, burst %lld",
             k8s_client_server(k->client), k->source, (long long)cp->cfg.k8s_qps,
             (long long)cp->cfg.k8s_burst);
    cp->k8s = k;
    const struct cp_config *cfg = &cp->cfg;
    configured = (cfg->k8s_kubeconfig && cfg->k8s_kubeconfig[0]) ||
                 strcmp(cfg->k8s_api_url, "https://kubernetes.default.svc") != 0 ||
                 getenv("KUBERNETES_SERVICE_HOST") != NULL;
    return 0;
}

int k8s_configured(void) {
    return configured;
}

struct k8s_client *k8s_client_of(struct controlplane *cp) {
    return cp->k8s ? cp->k8s->client : NULL;
}

const char *k8s_client_source(struct controlplane *cp) {
    return cp->k8s ? cp->k8s->source : "";
}

typedef struct k8s_call {
    work w; /* first */
    k8s_client *client;
    k8s_run_fn run;
    k8s_after_fn after;
    void *arg;
    int rc;
} k8s_call;

static void call_run(work *w) {
    k8s_call *c = (k8s_call *)w;
    c->rc = c->run(c->client, c->arg);
}

static void call_done(work *w, int status) {
    k8s_call *c = (k8s_call *)w;
    k8s_after_fn after = c->after;
    void *arg = c->arg;
    int rc = status < 0 ? status : c->rc;
    free(c);
    after(arg, rc);
}

int k8s_offloop(struct controlplane *cp, k8s_run_fn run, k8s_after_fn after, void *arg, char *err,
                size_t errlen) {
    struct cp_k8s *k = cp->k8s;
    if (!k || !k->client) {
        snprintf(err, errlen, "Kubernetes client not started");
        return -ENODEV;
    }
    k8s_call *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    c->client = k->client;
    c->run = run;
    c->after = after;
    c->arg = arg;
    int rc = work_submit(k->pool, &c->w, call_run, call_done);
    if (rc < 0) {
        free(c);
        snprintf(err, errlen, "%s",
                 rc == -EAGAIN ? "too many Kubernetes calls waiting (256): try again"
                               : "Kubernetes worker pool is shut down");
    }
    return rc;
}

typedef struct owner_job {
    int statefulset;
    char ns[K8S_NS_MAX], name[K8S_NAME_MAX];
    char owner[320];
    char reason[1600];
    k8s_owner_fn done;
    void *arg;
} owner_job;

static int owner_run(k8s_client *c, void *arg) {
    owner_job *j = arg;
    char err[600];
    k8s_scalable kind = j->statefulset ? K8S_STATEFULSET : K8S_DEPLOYMENT;
    int rc =
        k8s_scaler_owner(c, kind, j->ns, j->name, 0, j->owner, sizeof j->owner, err, sizeof err);
    if (rc == 1)
        snprintf(j->reason, sizeof j->reason,
                 "%s scales %s %s/%s: Auto refused (two scalers on one object fight; delete it "
                 "or run this workload in Preview)",
                 j->owner, k8s_scalable_kind(kind), j->ns, j->name);
    else if (rc < 0)
        snprintf(j->reason, sizeof j->reason,
                 "cannot tell whether another scaler owns %s %s/%s: %s (Auto refused until it "
                 "can)",
                 k8s_scalable_kind(kind), j->ns, j->name, err);
    return rc;
}

static void owner_after(void *arg, int rc) {
    owner_job *j = arg;
    if (rc == -ECANCELED && !j->reason[0])
        snprintf(j->reason, sizeof j->reason, "control plane shutting down");
    j->done(j->arg, rc, rc == 0 ? "" : j->reason);
    free(j);
}

int k8s_check_owner(struct controlplane *cp, int statefulset, const char *ns, const char *name,
                    k8s_owner_fn done, void *arg, char *err, size_t errlen) {
    owner_job *j = calloc(1, sizeof *j);
    if (!j) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    j->statefulset = statefulset;
    snprintf(j->ns, sizeof j->ns, "%s", ns);
    snprintf(j->name, sizeof j->name, "%s", name);
    j->done = done;
    j->arg = arg;
    int rc = k8s_offloop(cp, owner_run, owner_after, j, err, errlen);
    if (rc < 0) free(j);
    return rc;
}

/* Requests under way are waited for (each is bounded by k8s_timeout) and reported as
 * cancelled, so their callers can answer and free what they hold. */
static void k8s_stop(struct controlplane *cp) {
    struct cp_k8s *k = cp->k8s;
    if (!k) return;
    /* the client's waits and transfers end at once; the pool then calls every done */
    k8s_client_stop(k->client);
    work_pool_free(k->pool);
    k8s_client_free(k->client);
    free(k);
    cp->k8s = NULL;
    configured = 0;
}

CP_MODULE(k8s, "k8s", k8s_start, k8s_stop)
