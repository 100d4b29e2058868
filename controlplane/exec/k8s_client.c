/* k8s_client.c: blocking Kubernetes API calls for worker threads (k8s_client.h), on libcurl:
 * one easy handle per call, a shared token bucket, deadlines and a stop flag that the progress
 * callback and the limiter's wait both honour. */
#include "exec/k8s_client.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <inttypes.h>

#include "bearer.h"
#include "exec/k8s.h"

struct k8s_client {
    k8s_creds creds;
    k8s_client_opts opts;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC: the limiter's wait, woken by stop */
    k8s_bucket bucket;
    atomic_int stopped;
    k8s_stats stats; /* under mu */
};

__attribute__((format(printf, 3, 4))) static int errf(char *err, size_t errlen, const char *fmt,
                                                      ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return 0;
}

int64_t k8s_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void k8s_bucket_init(k8s_bucket *b, double qps, int burst, int64_t now_ms) {
    b->qps = qps > 0 ? qps : 5;
    b->burst = burst > 0 ? burst : 10;
    b->tokens = b->burst;
    b->last_ms = now_ms;
}

int64_t k8s_bucket_take(k8s_bucket *b, int64_t now_ms) {
    if (now_ms > b->last_ms) {
        b->tokens += (double)(now_ms - b->last_ms) * b->qps / 1000.0;
        if (b->tokens > b->burst) b->tokens = b->burst;
        b->last_ms = now_ms;
    }
    if (b->tokens >= 1) {
        b->tokens -= 1;
        return 0;
    }
    int64_t wait = (int64_t)((1 - b->tokens) * 1000.0 / b->qps) + 1;
    return wait > 0 ? wait : 1;
}

static int dup_blob(char **dst, const char *src, size_t len) {
    *dst = NULL;
    if (!src) return 0;
    *dst = malloc(len + 1);
    if (!*dst) return -ENOMEM;
    memcpy(*dst, src, len);
    (*dst)[len] = 0;
    return 0;
}

int k8s_client_new(const k8s_creds *creds, const k8s_client_opts *opts, k8s_client **out, char *err,
                   size_t errlen) {
    *out = NULL;
    if (!creds->server[0]) {
        errf(err, errlen, "Kubernetes client: no API server address");
        return -EINVAL;
    }
    if (creds->tls_server_name[0]) {
        errf(err, errlen, "Kubernetes client: tls-server-name is not supported (%s)",
             creds->source);
        return -EINVAL;
    }
    k8s_client *c = calloc(1, sizeof *c);
    if (!c) return -ENOMEM;
    c->creds = *creds;
    c->creds.ca_pem = c->creds.cert_pem = c->creds.key_pem = NULL;
    if (dup_blob(&c->creds.ca_pem, creds->ca_pem, creds->ca_pem_len) < 0 ||
        dup_blob(&c->creds.cert_pem, creds->cert_pem, creds->cert_pem_len) < 0 ||
        dup_blob(&c->creds.key_pem, creds->key_pem, creds->key_pem_len) < 0) {
        k8s_creds_free(&c->creds);
        free(c);
        errf(err, errlen, "Kubernetes client: out of memory");
        return -ENOMEM;
    }
    if (opts) c->opts = *opts;
    if (c->opts.timeout_ms <= 0) c->opts.timeout_ms = 10000;
    if (c->opts.max_conflicts <= 0) c->opts.max_conflicts = 8;
    k8s_bucket_init(&c->bucket, c->opts.qps, c->opts.burst, k8s_now_ms());
    pthread_mutex_init(&c->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cv, &ca);
    pthread_condattr_destroy(&ca);
    *out = c;
    return 0;
}

void k8s_client_stop(k8s_client *c) {
    if (!c) return;
    pthread_mutex_lock(&c->mu);
    atomic_store(&c->stopped, 1);
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

void k8s_client_free(k8s_client *c) {
    if (!c) return;
    k8s_creds_free(&c->creds);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

const char *k8s_client_server(const k8s_client *c) {
    return c->creds.server;
}

void k8s_client_stats(k8s_client *c, k8s_stats *out) {
    pthread_mutex_lock(&c->mu);
    *out = c->stats;
    pthread_mutex_unlock(&c->mu);
}

static void stat_add(k8s_client *c, uint64_t *field, uint64_t v) {
    pthread_mutex_lock(&c->mu);
    *field += v;
    pthread_mutex_unlock(&c->mu);
}

/* Waits for a token of the limiter. 0, -ETIMEDOUT (the deadline comes first), -ECANCELED. */
static int limiter_wait(k8s_client *c, int64_t deadline_ms) {
    int64_t t0 = k8s_now_ms();
    pthread_mutex_lock(&c->mu);
    int rc = 0;
    for (;;) {
        if (atomic_load(&c->stopped)) {
            rc = -ECANCELED;
            break;
        }
        int64_t now = k8s_now_ms(), wait = k8s_bucket_take(&c->bucket, now);
        if (wait == 0) break;
        if (now + wait > deadline_ms) {
            rc = -ETIMEDOUT;
            break;
        }
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += wait / 1000;
        ts.tv_nsec += (wait % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&c->cv, &c->mu, &ts);
    }
    c->stats.throttled_ms += (uint64_t)(k8s_now_ms() - t0);
    if (rc == 0) c->stats.requests++;
    pthread_mutex_unlock(&c->mu);
    return rc;
}

typedef struct xfer {
    k8s_client *c;
    char *p;
    size_t len;
    int too_big;
    /* streaming (watch): lines go to on_line instead of accumulating */
    int (*on_line)(void *arg, const char *line, size_t len);
    void *line_arg;
    int line_rc;
} xfer;

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud) {
    xfer *x = ud;
    size_t n = size * nmemb;
    if (x->len + n > K8S_MAX_JSON) {
        x->too_big = 1;
        return 0;
    }
    char *q = realloc(x->p, x->len + n + 1);
    if (!q) return 0;
    memcpy(q + x->len, ptr, n);
    x->p = q;
    x->len += n;
    x->p[x->len] = 0;
    if (x->on_line) { /* hand over complete lines, keep the rest */
        size_t start = 0;
        for (size_t i = 0; i < x->len; i++) {
            if (x->p[i] != '\n') continue;
            x->p[i] = 0;
            if (i > start) {
                int r = x->on_line(x->line_arg, x->p + start, i - start);
                if (r) {
                    x->line_rc = r;
                    return 0; /* ends the transfer */
                }
            }
            start = i + 1;
        }
        memmove(x->p, x->p + start, x->len - start);
        x->len -= start;
        x->p[x->len] = 0;
    }
    return n;
}

static int on_progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c2, curl_off_t d) {
    (void)a;
    (void)b;
    (void)c2;
    (void)d;
    xfer *x = ud;
    return atomic_load(&x->c->stopped) ? 1 : 0;
}

static int perform(k8s_client *c, const char *method, const char *path, const char *content_type,
                   const char *body, int64_t deadline_ms, xfer *x, long *status, char *err,
                   size_t errlen) {
    if (deadline_ms <= 0) deadline_ms = k8s_now_ms() + c->opts.timeout_ms;
    char what[320];
    snprintf(what, sizeof what, "%s %.300s", method, path);
    int rc = limiter_wait(c, deadline_ms);
    if (rc == -ECANCELED) return (void)errf(err, errlen, "%s: client stopped", what), rc;
    if (rc == -ETIMEDOUT)
        return (void)errf(err, errlen, "%s: deadline passed waiting for the client rate limit",
                          what),
               rc;
    char url[K8S_PATH_MAX + 4096];
    int n = snprintf(url, sizeof url, "%s%s", c->creds.server, path);
    if (n < 0 || (size_t)n >= sizeof url)
        return (void)errf(err, errlen, "%s: URL too long", what), -EINVAL;
    struct curl_slist *hdr = NULL;
    char auth[K8S_TOKEN_MAX + 32];
    auth[0] = 0;
    if (c->creds.token_file[0]) {
        char tok[K8S_TOKEN_MAX], e2[600];
        if ((rc = bearer_read(c->creds.token_file, "Kubernetes token", tok, sizeof tok, e2,
                              sizeof e2)) < 0) {
            errf(err, errlen, "%s: %s", what, e2);
            return -EACCES;
        }
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", tok);
        explicit_bzero(tok, sizeof tok);
    } else if (c->creds.token[0])
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", c->creds.token);
    if (auth[0]) hdr = curl_slist_append(hdr, auth);
    explicit_bzero(auth, sizeof auth);
    char ct[128];
    if (content_type) {
        snprintf(ct, sizeof ct, "Content-Type: %s", content_type);
        hdr = curl_slist_append(hdr, ct);
    }
    hdr = curl_slist_append(hdr, "Accept: application/json");
    CURL *h = curl_easy_init();
    if (!h || !hdr) {
        curl_slist_free_all(hdr);
        curl_easy_cleanup(h);
        return (void)errf(err, errlen, "%s: out of memory", what), -ENOMEM;
    }
    int64_t left = deadline_ms - k8s_now_ms();
    if (left < 1) left = 1;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)left);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_USERAGENT, "tide-controlplane");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, x);
    if (c->creds.ca_file[0]) curl_easy_setopt(h, CURLOPT_CAINFO, c->creds.ca_file);
    if (c->creds.ca_pem) {
        struct curl_blob bl = {c->creds.ca_pem, c->creds.ca_pem_len, CURL_BLOB_NOCOPY};
        curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &bl);
    }
    if (c->creds.insecure) {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (c->creds.cert_file[0]) curl_easy_setopt(h, CURLOPT_SSLCERT, c->creds.cert_file);
    if (c->creds.key_file[0]) curl_easy_setopt(h, CURLOPT_SSLKEY, c->creds.key_file);
    if (c->creds.cert_pem) {
        struct curl_blob bl = {c->creds.cert_pem, c->creds.cert_pem_len, CURL_BLOB_NOCOPY};
        curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &bl);
    }
    if (c->creds.key_pem) {
        struct curl_blob bl = {c->creds.key_pem, c->creds.key_pem_len, CURL_BLOB_NOCOPY};
        curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &bl);
    }
    char cerr[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
    CURLcode cc = curl_easy_perform(h);
    *status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    curl_easy_cleanup(h);
    curl_slist_free_all(hdr);
    if (cc == CURLE_OK) return 0;
    if (x->line_rc) return x->line_rc; /* the stream's consumer ended it */
    if (cc == CURLE_ABORTED_BY_CALLBACK || atomic_load(&c->stopped))
        return (void)errf(err, errlen, "%s: client stopped", what), -ECANCELED;
    if (cc == CURLE_OPERATION_TIMEDOUT)
        return (void)errf(err, errlen, "%s: no answer within the deadline (%s)", what, cerr),
               -ETIMEDOUT;
    if (x->too_big)
        return (void)errf(err, errlen, "%s: answer larger than %u bytes", what, K8S_MAX_JSON),
               -EFBIG;
    errf(err, errlen, "%s: %s: %s", what, curl_easy_strerror(cc), cerr[0] ? cerr : "no details");
    return -EIO;
}

int k8s_request(k8s_client *c, const char *method, const char *path, const char *content_type,
                const char *body, int64_t deadline_ms, k8s_resp *r, char *err, size_t errlen) {
    memset(r, 0, sizeof *r);
    xfer x = {.c = c};
    int rc = perform(c, method, path, content_type, body, deadline_ms, &x, &r->status, err, errlen);
    if (rc < 0) {
        free(x.p);
        return rc;
    }
    r->body = x.p;
    r->len = x.len;
    return 0;
}

int k8s_answer_error(const char *what, const k8s_resp *r, char *err, size_t errlen) {
    int code = 0;
    char reason[64] = "", msg[512] = "";
    if (!r->body ||
        k8s_status_parse(r->body, r->len, &code, reason, sizeof reason, msg, sizeof msg) < 0)
        snprintf(msg, sizeof msg, "%.200s", r->body ? r->body : "(no body)");
    errf(err, errlen, "%s: HTTP %ld%s%s: %s", what, r->status, reason[0] ? " " : "", reason, msg);
    long s = r->status;
    return s == 404               ? -ENOENT
           : s == 401 || s == 403 ? -EACCES
           : s == 409 || s == 429 ? -EAGAIN
           : s >= 400 && s < 500  ? -EINVAL
                                  : -EIO;
}

const char *k8s_scalable_resource(k8s_scalable k) {
    return k == K8S_STATEFULSET ? "statefulsets" : "deployments";
}
const char *k8s_scalable_kind(k8s_scalable k) {
    return k == K8S_STATEFULSET ? "StatefulSet" : "Deployment";
}

static void scale_path(char *out, size_t cap, k8s_scalable kind, const char *ns, const char *name) {
    snprintf(out, cap, "/apis/apps/v1/namespaces/%s/%s/%s/scale", ns, k8s_scalable_resource(kind),
             name);
}

int k8s_scale_get(k8s_client *c, k8s_scalable kind, const char *ns, const char *name,
                  int64_t deadline_ms, k8s_scale *out, char *err, size_t errlen) {
    char path[512], what[560];
    scale_path(path, sizeof path, kind, ns, name);
    snprintf(what, sizeof what, "GET %s", path);
    k8s_resp r;
    int rc = k8s_request(c, "GET", path, NULL, NULL, deadline_ms, &r, err, errlen);
    if (rc < 0) return rc;
    if (r.status != 200)
        rc = k8s_answer_error(what, &r, err, errlen);
    else {
        char e2[256];
        rc = k8s_scale_parse(r.body, r.len, out, e2, sizeof e2);
        if (rc < 0) errf(err, errlen, "%s: %s", what, e2);
    }
    free(r.body);
    return rc;
}

int k8s_scale_update(k8s_client *c, k8s_scalable kind, const char *ns, const char *name,
                     k8s_want_fn want, void *arg, int64_t deadline_ms, k8s_scale_result *res,
                     char *err, size_t errlen) {
    memset(res, 0, sizeof *res);
    if (deadline_ms <= 0) deadline_ms = k8s_now_ms() + c->opts.timeout_ms;
    char path[512], what[560];
    scale_path(path, sizeof path, kind, ns, name);
    snprintf(what, sizeof what, "PUT %s", path);
    for (;;) {
        k8s_scale cur;
        int rc = k8s_scale_get(c, kind, ns, name, deadline_ms, &cur, err, errlen);
        if (rc < 0) return rc;
        res->before = cur.spec_replicas;
        int target = want(arg, &cur, err, errlen);
        if (target < 0) return -ECANCELED;
        if (target == cur.spec_replicas) { /* nothing to write */
            res->after = target;
            snprintf(res->resource_version, sizeof res->resource_version, "%s",
                     cur.resource_version);
            return 0;
        }
        char *body = k8s_scale_body(ns, name, cur.resource_version, target);
        if (!body) return (void)errf(err, errlen, "%s: out of memory", what), -ENOMEM;
        k8s_resp r;
        rc = k8s_request(c, "PUT", path, "application/json", body, deadline_ms, &r, err, errlen);
        free(body);
        if (rc < 0) return rc;
        if (r.status == 409) {
            free(r.body);
            res->conflicts++;
            stat_add(c, &c->stats.conflicts, 1);
            if (res->conflicts > c->opts.max_conflicts) {
                errf(err, errlen,
                     "%s: gave up after %d conflicts (another writer keeps changing %s %s/%s); "
                     "replicas stay %d, wanted %d",
                     what, res->conflicts, k8s_scalable_kind(kind), ns, name, cur.spec_replicas,
                     target);
                return -EAGAIN;
            }
            continue; /* re-read and re-apply the intended change */
        }
        if (r.status != 200 && r.status != 201) {
            rc = k8s_answer_error(what, &r, err, errlen);
            free(r.body);
            return rc;
        }
        k8s_scale after;
        char e2[256];
        rc = k8s_scale_parse(r.body, r.len, &after, e2, sizeof e2);
        free(r.body);
        if (rc < 0) return (void)errf(err, errlen, "%s: %s", what, e2), rc;
        res->after = after.spec_replicas;
        snprintf(res->resource_version, sizeof res->resource_version, "%s", after.resource_version);
        if (after.spec_replicas != target)
            return (void)errf(err, errlen, "%s: accepted, but spec.replicas is %d, not %d", what,
                              after.spec_replicas, target),
                   -EIO;
        return 0;
    }
}

static int want_abs(void *arg, const k8s_scale *cur, char *err, size_t errlen) {
    (void)cur;
    (void)err;
    (void)errlen;
    return *(int *)arg;
}

int k8s_scale_set(k8s_client *c, k8s_scalable kind, const char *ns, const char *name, int replicas,
                  int64_t deadline_ms, k8s_scale_result *res, char *err, size_t errlen) {
    return k8s_scale_update(c, kind, ns, name, want_abs, &replicas, deadline_ms, res, err, errlen);
}

typedef struct pod_acc {
    k8s_pod *v;
    size_t n, cap;
    const char *gate;
    char err[256];
} pod_acc;

static int pod_item(void *arg, const char *json, size_t len) {
    pod_acc *a = arg;
    if (a->n == a->cap) {
        size_t nc = a->cap ? a->cap * 2 : 16;
        k8s_pod *q = realloc(a->v, nc * sizeof *q);
        if (!q) return -ENOMEM;
        a->v = q;
        a->cap = nc;
    }
    int rc = k8s_pod_parse(json, len, a->gate, &a->v[a->n], a->err, sizeof a->err);
    if (rc < 0) return rc;
    a->n++;
    return 0;
}

int k8s_pods_list(k8s_client *c, const char *ns, const char *selector, const char *gate_type,
                  int64_t deadline_ms, k8s_pod **pods, size_t *n, char rv[K8S_RV_MAX], char *err,
                  size_t errlen) {
    *pods = NULL;
    *n = 0;
    char sel[3 * K8S_SELECTOR_MAX + 1], path[4096], what[4200];
    if (k8s_url_escape(selector ? selector : "", sel, sizeof sel) < 0)
        return (void)errf(err, errlen, "pods of %s: selector too long", ns), -EINVAL;
    snprintf(path, sizeof path, "/api/v1/namespaces/%s/pods%s%s", ns,
             sel[0] ? "?labelSelector=" : "", sel);
    snprintf(what, sizeof what, "GET %s", path);
    k8s_resp r;
    int rc = k8s_request(c, "GET", path, NULL, NULL, deadline_ms, &r, err, errlen);
    if (rc < 0) return rc;
    if (r.status != 200) {
        rc = k8s_answer_error(what, &r, err, errlen);
        free(r.body);
        return rc;
    }
    pod_acc a = {.gate = gate_type};
    char e2[256] = "";
    rc = k8s_list_parse(r.body, r.len, 10000, pod_item, &a, rv, e2, sizeof e2);
    free(r.body);
    if (rc < 0) {
        errf(err, errlen, "%s: %s", what, a.err[0] ? a.err : e2[0] ? e2 : strerror(-rc));
        free(a.v);
        return rc;
    }
    *pods = a.v;
    *n = a.n;
    return 0;
}

static int pod_answer(const char *what, k8s_resp *r, const char *gate, k8s_pod *out, char *err,
                      size_t errlen) {
    int rc;
    if (r->status != 200)
        rc = k8s_answer_error(what, r, err, errlen);
    else if (out) {
        char e2[256];
        rc = k8s_pod_parse(r->body, r->len, gate, out, e2, sizeof e2);
        if (rc < 0) errf(err, errlen, "%s: %s", what, e2);
    } else
        rc = 0;
    free(r->body);
    return rc;
}

int k8s_pod_patch_meta(k8s_client *c, const char *ns, const char *name, const char *patch,
                       const char *gate_type, int64_t deadline_ms, k8s_pod *out, char *err,
                       size_t errlen) {
    char path[512], what[560];
    snprintf(path, sizeof path, "/api/v1/namespaces/%s/pods/%s", ns, name);
    snprintf(what, sizeof what, "PATCH %s", path);
    k8s_resp r;
    int rc = k8s_request(c, "PATCH", path, "application/merge-patch+json", patch, deadline_ms, &r,
                         err, errlen);
    if (rc < 0) return rc;
    return pod_answer(what, &r, gate_type, out, err, errlen);
}

int k8s_pod_set_gate(k8s_client *c, const char *ns, const char *name, const char *type, int on,
                     const char *reason, const char *message, int64_t now_wall_ms,
                     int64_t deadline_ms, k8s_pod *out, char *err, size_t errlen) {
    char path[512], what[560];
    snprintf(path, sizeof path, "/api/v1/namespaces/%s/pods/%s/status", ns, name);
    snprintf(what, sizeof what, "PATCH %s", path);
    char *body = k8s_condition_patch(type, on, reason, message, now_wall_ms);
    if (!body) return (void)errf(err, errlen, "%s: out of memory", what), -ENOMEM;
    k8s_resp r;
    int rc = k8s_request(c, "PATCH", path, "application/strategic-merge-patch+json", body,
                         deadline_ms, &r, err, errlen);
    free(body);
    if (rc < 0) return rc;
    k8s_pod tmp;
    rc = pod_answer(what, &r, type, out ? out : &tmp, err, errlen);
    if (rc == 0 && (out ? out : &tmp)->gate != on)
        return (void)errf(err, errlen, "%s: accepted, but the pod does not show %s = %s", what,
                          type, on ? "True" : "False"),
               -EIO;
    return rc;
}

int k8s_scaler_owner(k8s_client *c, k8s_scalable kind, const char *ns, const char *name,
                     int64_t deadline_ms, char *owner, size_t ocap, char *err, size_t errlen) {
    static const char *const apis[] = {"/apis/autoscaling/v2", "/apis/autoscaling/v1",
                                       "/apis/keda.sh/v1alpha1"};
    static const char *const res[] = {"horizontalpodautoscalers", "horizontalpodautoscalers",
                                      "scaledobjects"};
    int hpa_seen = 0;
    for (int i = 0; i < 3; i++) {
        if (i == 1 && hpa_seen) continue; /* v1 is only the fallback of a cluster without v2 */
        char path[512], what[560];
        snprintf(path, sizeof path, "%s/namespaces/%s/%s", apis[i], ns, res[i]);
        snprintf(what, sizeof what, "GET %s", path);
        k8s_resp r;
        int rc = k8s_request(c, "GET", path, NULL, NULL, deadline_ms, &r, err, errlen);
        if (rc < 0) return rc;
        if (r.status == 404) { /* that API is not served here */
            free(r.body);
            continue;
        }
        if (i == 0) hpa_seen = 1;
        if (r.status != 200) {
            rc = k8s_answer_error(what, &r, err, errlen);
            free(r.body);
            return rc;
        }
        char e2[256];
        rc = k8s_scalers_find(r.body, r.len, k8s_scalable_kind(kind), name,
                              i < 2 ? "HorizontalPodAutoscaler" : "ScaledObject", owner, ocap, e2,
                              sizeof e2);
        free(r.body);
        if (rc < 0) return (void)errf(err, errlen, "%s: %s", what, e2), rc;
        if (rc == 1) return 1;
    }
    return 0;
}

/* ---- list + watch ------------------------------------------------------------------------ */

typedef struct wctx {
    k8s_client *c;
    k8s_watch_fn cb;
    void *arg;
    char rv[K8S_RV_MAX];
    int gone; /* 410 seen */
    int cb_rc;
    char err[512];
} wctx;

static int list_item(void *arg, const char *json, size_t len) {
    wctx *w = arg;
    int r = w->cb(w->arg, K8S_W_ADDED, json, len);
    if (r) w->cb_rc = r;
    return r;
}

#define W_STOP_GONE 1000001 /* internal: end the stream, relist */

static int on_line(void *arg, const char *line, size_t len) {
    wctx *w = arg;
    k8s_event ev;
    char e2[256];
    if (k8s_event_parse(line, len, &ev, e2, sizeof e2) < 0) {
        snprintf(w->err, sizeof w->err, "watch: %s", e2);
        return -EPROTO;
    }
    int r = 0;
    switch (ev.type) {
    case K8S_EV_ERROR:
        if (ev.code == 410) {
            w->gone = 1;
            r = W_STOP_GONE;
        } else {
            snprintf(w->err, sizeof w->err, "watch: ERROR %d: %s", ev.code, ev.message);
            r = -EIO;
        }
        break;
    case K8S_EV_BOOKMARK:
        snprintf(w->rv, sizeof w->rv, "%s", ev.resource_version);
        stat_add(w->c, &w->c->stats.bookmarks, 1);
        break;
    default:
        snprintf(w->rv, sizeof w->rv, "%s", ev.resource_version);
        stat_add(w->c, &w->c->stats.events, 1);
        r = w->cb(w->arg,
                  ev.type == K8S_EV_ADDED      ? K8S_W_ADDED
                  : ev.type == K8S_EV_MODIFIED ? K8S_W_MODIFIED
                                               : K8S_W_DELETED,
                  ev.object, ev.object_len);
        if (r) w->cb_rc = r;
    }
    free(ev.object);
    return r;
}

int k8s_watch(k8s_client *c, const char *collection, const char *selector, k8s_watch_fn cb,
              void *arg, int64_t until_ms, char *err, size_t errlen) {
    wctx w = {.c = c, .cb = cb, .arg = arg};
    char sel[3 * K8S_SELECTOR_MAX + 1], path[4096], what[4200];
    if (k8s_url_escape(selector ? selector : "", sel, sizeof sel) < 0)
        return (void)errf(err, errlen, "watch %s: selector too long", collection), -EINVAL;
    int64_t backoff = 100;
    int need_list = 1;
    for (;;) {
        if (atomic_load(&c->stopped))
            return (void)errf(err, errlen, "watch %s: client stopped", collection), -ECANCELED;
        int64_t now = k8s_now_ms();
        if (until_ms && now >= until_ms) return 0;
        int64_t dl = until_ms ? until_ms : now + 600000;
        int rc;
        if (need_list) {
            snprintf(path, sizeof path, "%s%s%s", collection, sel[0] ? "?labelSelector=" : "", sel);
            snprintf(what, sizeof what, "GET %s", path);
            k8s_resp r;
            rc = k8s_request(c, "GET", path, NULL, NULL,
                             dl < now + c->opts.timeout_ms ? dl : now + c->opts.timeout_ms, &r, err,
                             errlen);
            if (rc == 0 && r.status != 200) rc = k8s_answer_error(what, &r, err, errlen);
            if (rc == 0) {
                rc = cb(arg, K8S_W_RESET, NULL, 0);
                if (rc) {
                    free(r.body);
                    return rc;
                }
                char e2[256] = "";
                rc = k8s_list_parse(r.body, r.len, 100000, list_item, &w, w.rv, e2, sizeof e2);
                if (w.cb_rc) {
                    free(r.body);
                    return w.cb_rc;
                }
                if (rc < 0) errf(err, errlen, "%s: %s", what, e2);
                if (rc == 0 && (rc = cb(arg, K8S_W_SYNCED, NULL, 0)) != 0) {
                    free(r.body);
                    return rc;
                }
                if (rc == 0) stat_add(c, &c->stats.relists, 1);
            }
            free(r.body);
            if (rc == -ECANCELED) return rc;
            if (rc == 0) need_list = 0;
        } else {
            /* the server ends a watch after timeoutSeconds; resume from the last version */
            int64_t left = (dl - now) / 1000;
            long ts = left > 300 ? 300 : left < 1 ? 1 : (long)left;
            snprintf(
                path, sizeof path,
                "%s?watch=1&allowWatchBookmarks=true&resourceVersion=%s&timeoutSeconds=%ld%s%s",
                collection, w.rv, ts, sel[0] ? "&labelSelector=" : "", sel);
            snprintf(what, sizeof what, "GET %s", path);
            xfer x = {.c = c, .on_line = on_line, .line_arg = &w};
            long status = 0;
            w.err[0] = 0;
            w.gone = 0;
            int64_t wdl = now + (int64_t)ts * 1000 + 15000;
            if (until_ms && wdl > until_ms) wdl = until_ms;
            rc = perform(c, "GET", path, NULL, NULL, wdl, &x, &status, err, errlen);
            if (rc == 0 && status != 200) {
                k8s_resp r = {status, x.p, x.len};
                if (status == 410) w.gone = 1;
                rc = k8s_answer_error(what, &r, err, errlen);
                x.p = NULL;
                free(r.body);
            }
            free(x.p);
            if (w.cb_rc) return w.cb_rc;
            if (rc == -ECANCELED) return rc;
            if (rc == W_STOP_GONE || w.gone) {
                need_list = 1; /* the version is gone: relist (RESET) */
                rc = 0;
            } else if (rc == -ETIMEDOUT && until_ms && k8s_now_ms() >= until_ms)
                return 0;
            else if (rc == -ETIMEDOUT || rc == 0)
                rc = 0; /* the watch ended normally: resume */
            else if (w.err[0])
                errf(err, errlen, "%s", w.err);
        }
        if (rc == 0) {
            backoff = 100;
            continue;
        }
        /* a failed request: back off, then try again (a list if the version is unknown) */
        if (until_ms && k8s_now_ms() + backoff >= until_ms) return rc;
        pthread_mutex_lock(&c->mu);
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        t.tv_sec += backoff / 1000;
        t.tv_nsec += (backoff % 1000) * 1000000;
        if (t.tv_nsec >= 1000000000) {
            t.tv_sec++;
            t.tv_nsec -= 1000000000;
        }
        if (!atomic_load(&c->stopped)) pthread_cond_timedwait(&c->cv, &c->mu, &t);
        pthread_mutex_unlock(&c->mu);
        backoff = backoff * 2 > 10000 ? 10000 : backoff * 2;
    }
}

/* ---- fencing of writes (k8s_client.h) ------------------------------------------------------ */

static int fenced(const k8s_fence *fe) {
    return fe && fe->token > 0;
}

/* GETs the object at path, checks its fence annotation against ours, copies its
 * resourceVersion (and, with obj, hands over the parsed object). 0, -ESTALE (fe->seen set)
 * or another -errno, err filled. *recorded: the object's token (0 none). */
static int fence_read(k8s_client *c, const char *path, k8s_fence *fe, int64_t deadline_ms,
                      char rv[K8S_RV_MAX], uint64_t *recorded, cJSON **obj, char *err,
                      size_t errlen) {
    char what[560];
    snprintf(what, sizeof what, "GET %s", path);
    k8s_resp r;
    int rc = k8s_request(c, "GET", path, NULL, NULL, deadline_ms, &r, err, errlen);
    if (rc < 0) return rc;
    if (r.status != 200) {
        rc = k8s_answer_error(what, &r, err, errlen);
        free(r.body);
        return rc;
    }
    cJSON *o = cJSON_ParseWithLength(r.body ? r.body : "", r.len);
    free(r.body);
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(o, "metadata");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(md, "resourceVersion");
    if (!cJSON_IsString(v) || strlen(v->valuestring) >= K8S_RV_MAX) {
        cJSON_Delete(o);
        return (void)errf(err, errlen, "%s: no metadata.resourceVersion in the answer", what),
               -EINVAL;
    }
    snprintf(rv, K8S_RV_MAX, "%s", v->valuestring);
    const cJSON *an = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(md, "annotations"), K8S_FENCE_ANNOTATION);
    *recorded = 0;
    if (cJSON_IsString(an)) {
        char *end;
        errno = 0;
        unsigned long long t = strtoull(an->valuestring, &end, 10);
        if (errno || end == an->valuestring || *end) {
            cJSON_Delete(o);
            return (void)errf(err, errlen,
                              "%s: annotation %s is not a token ('%.40s'): not writing over it",
                              what, K8S_FENCE_ANNOTATION, an->valuestring),
                   -EINVAL;
        }
        *recorded = t;
    }
    if (*recorded > fe->token) {
        fe->seen = *recorded;
        cJSON_Delete(o);
        return (void)errf(err, errlen,
                          "fenced: %s records token %" PRIu64 ", ours is %" PRIu64
                          " (another control plane owns the workload)",
                          path, *recorded, fe->token),
               -ESTALE;
    }
    if (obj)
        *obj = o;
    else
        cJSON_Delete(o);
    return 0;
}

/* patch (a JSON object, may be NULL) with metadata.resourceVersion = rv and, when stamp, the
 * fence annotation = token. malloc'd text or NULL. */
static char *fence_patch(const char *patch, const char *rv, int stamp, uint64_t token) {
    cJSON *p = patch ? cJSON_Parse(patch) : cJSON_CreateObject();
    if (!p || !cJSON_IsObject(p)) {
        cJSON_Delete(p);
        return NULL;
    }
    cJSON *md = cJSON_GetObjectItemCaseSensitive(p, "metadata");
    if (!md) md = cJSON_AddObjectToObject(p, "metadata");
    cJSON_DeleteItemFromObjectCaseSensitive(md, "resourceVersion");
    cJSON_AddStringToObject(md, "resourceVersion", rv);
    if (stamp) {
        cJSON *an = cJSON_GetObjectItemCaseSensitive(md, "annotations");
        if (!an) an = cJSON_AddObjectToObject(md, "annotations");
        char t[24];
        snprintf(t, sizeof t, "%" PRIu64, token);
        cJSON_DeleteItemFromObjectCaseSensitive(an, K8S_FENCE_ANNOTATION);
        cJSON_AddStringToObject(an, K8S_FENCE_ANNOTATION, t);
    }
    char *txt = cJSON_PrintUnformatted(p);
    cJSON_Delete(p);
    return txt;
}

/* One fenced merge patch of the object at path: read, check, patch with the precondition;
 * a 409 goes round again (bounded). On 200 the answer is handed to *resp. */
static int fenced_merge(k8s_client *c, const char *path, const char *patch, k8s_fence *fe,
                        int64_t deadline_ms, k8s_resp *resp, char *err, size_t errlen) {
    char what[560];
    snprintf(what, sizeof what, "PATCH %s", path);
    for (int conflicts = 0;; conflicts++) {
        char rv[K8S_RV_MAX];
        uint64_t recorded;
        int rc = fence_read(c, path, fe, deadline_ms, rv, &recorded, NULL, err, errlen);
        if (rc < 0) return rc;
        char *body = fence_patch(patch, rv, 1, fe->token);
        if (!body) return (void)errf(err, errlen, "%s: out of memory or bad patch", what), -ENOMEM;
        rc = k8s_request(c, "PATCH", path, "application/merge-patch+json", body, deadline_ms, resp,
                         err, errlen);
        free(body);
        if (rc < 0) return rc;
        if (resp->status != 409) return 0;
        free(resp->body);
        stat_add(c, &c->stats.conflicts, 1);
        if (conflicts >= c->opts.max_conflicts)
            return (void)errf(err, errlen, "%s: gave up after %d conflicts", what, conflicts + 1),
                   -EAGAIN;
    }
}

int k8s_pod_patch_meta_fenced(k8s_client *c, const char *ns, const char *name, const char *patch,
                              const char *gate_type, k8s_fence *fence, int64_t deadline_ms,
                              k8s_pod *out, char *err, size_t errlen) {
    if (!fenced(fence))
        return k8s_pod_patch_meta(c, ns, name, patch, gate_type, deadline_ms, out, err, errlen);
    char path[512], what[560];
    snprintf(path, sizeof path, "/api/v1/namespaces/%s/pods/%s", ns, name);
    snprintf(what, sizeof what, "PATCH %s", path);
    k8s_resp r;
    int rc = fenced_merge(c, path, patch, fence, deadline_ms, &r, err, errlen);
    if (rc < 0) return rc;
    return pod_answer(what, &r, gate_type, out, err, errlen);
}

int k8s_pod_set_gate_fenced(k8s_client *c, const char *ns, const char *name, const char *type,
                            int on, const char *reason, const char *message, int64_t now_wall_ms,
                            k8s_fence *fence, int64_t deadline_ms, k8s_pod *out, char *err,
                            size_t errlen) {
    if (!fenced(fence))
        return k8s_pod_set_gate(c, ns, name, type, on, reason, message, now_wall_ms, deadline_ms,
                                out, err, errlen);
    char path[512], spath[560], what[600];
    snprintf(path, sizeof path, "/api/v1/namespaces/%s/pods/%s", ns, name);
    snprintf(spath, sizeof spath, "%s/status", path);
    snprintf(what, sizeof what, "PATCH %s", spath);
    char *cond = k8s_condition_patch(type, on, reason, message, now_wall_ms);
    if (!cond) return (void)errf(err, errlen, "%s: out of memory", what), -ENOMEM;
    int rc;
    for (int conflicts = 0;; conflicts++) {
        char rv[K8S_RV_MAX];
        uint64_t recorded;
        rc = fence_read(c, path, fence, deadline_ms, rv, &recorded, NULL, err, errlen);
        if (rc < 0) break;
        k8s_resp r;
        if (recorded < fence->token) { /* stamp the pod first (status patches cannot) */
            char *stamp = fence_patch(NULL, rv, 1, fence->token);
            rc = stamp ? k8s_request(c, "PATCH", path, "application/merge-patch+json", stamp,
                                     deadline_ms, &r, err, errlen)
                       : -ENOMEM;
            free(stamp);
            if (rc < 0) break;
            if (r.status == 409) {
                free(r.body);
                if (conflicts >= c->opts.max_conflicts) {
                    rc = -EAGAIN;
                    errf(err, errlen, "%s: gave up after %d conflicts", what, conflicts + 1);
                    break;
                }
                continue;
            }
            k8s_pod stamped;
            rc = pod_answer(what, &r, type, &stamped, err, errlen);
            if (rc < 0) break;
            snprintf(rv, sizeof rv, "%s", stamped.resource_version);
        }
        char *body = fence_patch(cond, rv, 0, 0);
        rc = body ? k8s_request(c, "PATCH", spath, "application/strategic-merge-patch+json", body,
                                deadline_ms, &r, err, errlen)
                  : -ENOMEM;
        free(body);
        if (rc < 0) break;
        if (r.status == 409) {
            free(r.body);
            stat_add(c, &c->stats.conflicts, 1);
            if (conflicts >= c->opts.max_conflicts) {
                rc = -EAGAIN;
                errf(err, errlen, "%s: gave up after %d conflicts", what, conflicts + 1);
                break;
            }
            continue;
        }
        k8s_pod tmp;
        rc = pod_answer(what, &r, type, out ? out : &tmp, err, errlen);
        if (rc == 0 && (out ? out : &tmp)->gate != on) {
            errf(err, errlen, "%s: accepted, but the pod does not show %s = %s", what, type,
                 on ? "True" : "False");
            rc = -EIO;
        }
        break;
    }
    if (rc == -ENOMEM) errf(err, errlen, "%s: out of memory", what);
    free(cond);
    return rc;
}

int k8s_scale_update_fenced(k8s_client *c, k8s_scalable kind, const char *ns, const char *name,
                            k8s_want_fn want, void *arg, k8s_fence *fence, int64_t deadline_ms,
                            k8s_scale_result *res, char *err, size_t errlen) {
    if (!fenced(fence))
        return k8s_scale_update(c, kind, ns, name, want, arg, deadline_ms, res, err, errlen);
    memset(res, 0, sizeof *res);
    if (deadline_ms <= 0) deadline_ms = k8s_now_ms() + c->opts.timeout_ms;
    char path[512], what[560];
    snprintf(path, sizeof path, "/apis/apps/v1/namespaces/%s/%s/%s", ns,
             k8s_scalable_resource(kind), name);
    snprintf(what, sizeof what, "PATCH %s", path);
    for (;;) {
        char rv[K8S_RV_MAX];
        uint64_t recorded;
        /* the fence and the version from the object, the count and selector from its Scale */
        int rc = fence_read(c, path, fence, deadline_ms, rv, &recorded, NULL, err, errlen);
        if (rc < 0) return rc;
        k8s_scale cur;
        rc = k8s_scale_get(c, kind, ns, name, deadline_ms, &cur, err, errlen);
        if (rc < 0) return rc;
        res->before = cur.spec_replicas;
        int target = want(arg, &cur, err, errlen);
        if (target < 0) return -ECANCELED;
        if (target == cur.spec_replicas && recorded == fence->token) { /* nothing to write */
            res->after = target;
            snprintf(res->resource_version, sizeof res->resource_version, "%s", rv);
            return 0;
        }
        char patch[64];
        snprintf(patch, sizeof patch, "{\"spec\":{\"replicas\":%d}}", target);
        char *body = fence_patch(patch, rv, 1, fence->token);
        if (!body) return (void)errf(err, errlen, "%s: out of memory", what), -ENOMEM;
        k8s_resp r;
        rc = k8s_request(c, "PATCH", path, "application/merge-patch+json", body, deadline_ms, &r,
                         err, errlen);
        free(body);
        if (rc < 0) return rc;
        if (r.status == 409) { /* changed since the read (or the version differs): again */
            free(r.body);
            res->conflicts++;
            stat_add(c, &c->stats.conflicts, 1);
            if (res->conflicts > c->opts.max_conflicts)
                return (void)errf(err, errlen,
                                  "%s: gave up after %d conflicts (another writer keeps changing "
                                  "%s %s/%s); replicas stay %d, wanted %d",
                                  what, res->conflicts, k8s_scalable_kind(kind), ns, name,
                                  cur.spec_replicas, target),
                       -EAGAIN;
            continue;
        }
        if (r.status != 200) {
            rc = k8s_answer_error(what, &r, err, errlen);
            free(r.body);
            return rc;
        }
        cJSON *o = cJSON_ParseWithLength(r.body ? r.body : "", r.len);
        free(r.body);
        const cJSON *rep = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(o, "spec"), "replicas");
        const cJSON *nrv = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(o, "metadata"), "resourceVersion");
        res->after = cJSON_IsNumber(rep) ? rep->valueint : -1;
        if (cJSON_IsString(nrv))
            snprintf(res->resource_version, sizeof res->resource_version, "%s", nrv->valuestring);
        cJSON_Delete(o);
        if (res->after != target)
            return (void)errf(err, errlen, "%s: accepted, but spec.replicas is %d, not %d", what,
                              res->after, target),
                   -EIO;
        return 0;
    }
}
