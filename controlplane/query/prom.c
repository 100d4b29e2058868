/* prom.c: Prometheus /api/v1/query_range client (libcurl easy handles driven by a per-call
 * multi handle on the calling thread, so that prom_cancel() can wake them). Loop code calls
 * it from a worker (shared/work.h). */
#include "query/prom.h"

#include "bearer.h"
#include "log.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BACKOFF_MS 60000
#define MAX_BODY (512u << 20)

struct prom {
    char *url;
    char *auth_header;
    char *ca_file;
    int insecure;
    int64_t timeout_ms, backoff_ms, max_points;
    int retries;
    pthread_mutex_t mu;
    uint64_t requests, errors, retries_done;
    int up;
    int64_t down_until_ms, down_for_ms;
    char last_error[256];
    /* prom_cancel(): set once at shutdown; every request in flight has its multi handle in
     * `active` (under mu) so that the canceller can wake its curl_multi_poll(). */
    _Atomic int cancelled;
    struct active_req *active;
    _Atomic int calls; /* threads inside prom_query_range (prom_free refuses while any is) */
};

typedef struct active_req {
    CURLM *m;
    struct active_req *next;
} active_req;

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

int prom_new(prom **out, const prom_options *o, char *err, size_t errlen) {
    *out = NULL;
    if (!o->url || (strncmp(o->url, "http://", 7) != 0 && strncmp(o->url, "https://", 8) != 0)) {
        snprintf(err, errlen, "prometheus URL \"%s\": must start with http:// or https://",
                 o->url ? o->url : "");
        return -EINVAL;
    }
    if (o->ca_file) {
        FILE *f = fopen(o->ca_file, "r");
        if (!f) {
            snprintf(err, errlen, "prometheus CA file %s: %s", o->ca_file, strerror(errno));
            return -errno;
        }
        fclose(f);
    }
    pthread_once(&curl_once, curl_init_once);
    prom *p = calloc(1, sizeof *p);
    if (!p) goto nomem;
    pthread_mutex_init(&p->mu, NULL);
    p->url = strdup(o->url);
    if (!p->url) goto nomem;
    size_t ul = strlen(p->url);
    while (ul > 1 && p->url[ul - 1] == '/')
        p->url[--ul] = 0;
    char *token = NULL;
    if (o->bearer_token && o->bearer_token[0])
        token = strdup(o->bearer_token);
    else if (o->bearer_token_file && o->bearer_token_file[0]) {
        char buf[8192];
        if (bearer_read(o->bearer_token_file, "prometheus bearer token file", buf, sizeof buf, err,
                        errlen) < 0) {
            prom_free(p);
            return -EINVAL;
        }
        token = strdup(buf);
        explicit_bzero(buf, sizeof buf);
        if (!token) goto nomem;
    }
    if (token) {
        size_t n = strlen(token) + 32;
        p->auth_header = malloc(n);
        if (p->auth_header) snprintf(p->auth_header, n, "Authorization: Bearer %s", token);
        free(token);
        if (!p->auth_header) goto nomem;
    }
    if (o->ca_file && !(p->ca_file = strdup(o->ca_file))) goto nomem;
    p->insecure = o->insecure_skip_verify;
    p->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 10000;
    p->retries = o->retries == 0 ? 2 : (o->retries < 0 ? 0 : o->retries);
    p->backoff_ms = o->backoff_ms > 0 ? o->backoff_ms : 200;
    p->max_points = o->max_points > 0 ? o->max_points : 11000;
    p->up = 1;
    *out = p;
    return 0;
nomem:
    prom_free(p);
    snprintf(err, errlen, "prometheus: out of memory");
    return -ENOMEM;
}

void prom_free(prom *p) {
    if (!p) return;
    int calls = atomic_load(&p->calls);
    if (calls) { /* freeing it now would be a use after free in their threads */
        fprintf(stderr,
                "prom_free: %d quer%s still running on %s: a user of the client stops after it "
                "(module order, cp.h)\n",
                calls, calls == 1 ? "y" : "ies", p->url);
        abort();
    }
    free(p->url);
    free(p->auth_header);
    free(p->ca_file);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

void prom_result_fini(prom_result *r) {
    if (!r) return;
    for (size_t i = 0; i < r->n; i++) {
        prom_series *s = &r->s[i];
        for (size_t k = 0; k < s->nlabels; k++) {
            free(s->names[k]);
            free(s->values[k]);
        }
        free(s->names);
        free(s->values);
        free(s->ts_ms);
        free(s->v);
    }
    free(r->s);
    r->s = NULL;
    r->n = 0;
}

typedef struct body {
    char *p;
    size_t n, cap;
    int too_big;
} body;

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud) {
    body *b = ud;
    size_t n = size * nmemb;
    if (b->n + n + 1 > MAX_BODY) {
        b->too_big = 1;
        return 0;
    }
    if (b->n + n + 1 > b->cap) {
        size_t ncap = b->cap ? b->cap : 65536;
        while (ncap < b->n + n + 1)
            ncap *= 2;
        char *np = realloc(b->p, ncap);
        if (!np) return 0;
        b->p = np;
        b->cap = ncap;
    }
    memcpy(b->p + b->n, ptr, n);
    b->n += n;
    b->p[b->n] = 0;
    return n;
}

static int label_cmp(const void *a, const void *b) {
    const char *const *x = a, *const *y = b;
    return strcmp(*x, *y);
}

/* Finds or adds the series with this label set in out. */
static prom_series *series_for(prom_result *out, const cJSON *metric) {
    size_t nl = (size_t)cJSON_GetArraySize(metric);
    const char **names = calloc(nl ? nl : 1, sizeof *names);
    if (!names) return NULL;
    size_t k = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, metric) {
        if (!cJSON_IsString(it) || !it->string) continue;
        names[k++] = it->string;
    }
    nl = k;
    qsort(names, nl, sizeof *names, label_cmp);
    for (size_t i = 0; i < out->n; i++) {
        prom_series *s = &out->s[i];
        if (s->nlabels != nl) continue;
        size_t j = 0;
        for (; j < nl; j++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(metric, names[j]);
            if (strcmp(s->names[j], names[j]) != 0 || strcmp(s->values[j], v->valuestring) != 0)
                break;
        }
        if (j == nl) {
            free(names);
            return s;
        }
    }
    prom_series *ns = realloc(out->s, (out->n + 1) * sizeof *ns);
    if (!ns) {
        free(names);
        return NULL;
    }
    out->s = ns;
    prom_series *s = &out->s[out->n];
    memset(s, 0, sizeof *s);
    s->names = calloc(nl ? nl : 1, sizeof *s->names);
    s->values = calloc(nl ? nl : 1, sizeof *s->values);
    if (!s->names || !s->values) {
        free(s->names);
        free(s->values);
        free(names);
        return NULL;
    }
    out->n++;
    for (size_t j = 0; j < nl; j++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(metric, names[j]);
        s->names[j] = strdup(names[j]);
        s->values[j] = strdup(v->valuestring);
        s->nlabels = j + 1;
        if (!s->names[j] || !s->values[j]) {
            free(names);
            return NULL;
        }
    }
    free(names);
    return s;
}

/* Parses one query_range response body into out (appending points). 0, -EINVAL with
 * Prometheus's error, -EIO for a malformed body. */
static int parse_body(const char *text, prom_result *out, char *err, size_t errlen) {
    cJSON *root = cJSON_Parse(text);
    if (!root) {
        snprintf(err, errlen, "response is not JSON");
        return -EIO;
    }
    int rc = -EIO;
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(root, "status");
    if (!cJSON_IsString(status)) {
        snprintf(err, errlen, "response has no \"status\"");
        goto out;
    }
    if (strcmp(status->valuestring, "success") != 0) {
        const cJSON *et = cJSON_GetObjectItemCaseSensitive(root, "errorType");
        const cJSON *em = cJSON_GetObjectItemCaseSensitive(root, "error");
        snprintf(err, errlen, "%s: %s", cJSON_IsString(et) ? et->valuestring : "error",
                 cJSON_IsString(em) ? em->valuestring : "(no message)");
        rc = (cJSON_IsString(et) && strcmp(et->valuestring, "bad_data") == 0) ? -EINVAL : -EIO;
        goto out;
    }
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data");
    const cJSON *rt = cJSON_GetObjectItemCaseSensitive(data, "resultType");
    const cJSON *result = cJSON_GetObjectItemCaseSensitive(data, "result");
    if (!cJSON_IsString(rt) || strcmp(rt->valuestring, "matrix") != 0 || !cJSON_IsArray(result)) {
        snprintf(err, errlen, "response is not a matrix");
        goto out;
    }
    const cJSON *r;
    cJSON_ArrayForEach(r, result) {
        const cJSON *metric = cJSON_GetObjectItemCaseSensitive(r, "metric");
        const cJSON *values = cJSON_GetObjectItemCaseSensitive(r, "values");
        if (!cJSON_IsObject(metric) || !cJSON_IsArray(values)) {
            snprintf(err, errlen, "result without metric/values");
            goto out;
        }
        prom_series *s = series_for(out, metric);
        if (!s) {
            rc = -ENOMEM;
            snprintf(err, errlen, "out of memory");
            goto out;
        }
        size_t add = (size_t)cJSON_GetArraySize(values);
        int64_t *nt = realloc(s->ts_ms, (s->n + add + 1) * sizeof *nt);
        if (nt) s->ts_ms = nt;
        double *nv = realloc(s->v, (s->n + add + 1) * sizeof *nv);
        if (nv) s->v = nv;
        if (!nt || !nv) {
            rc = -ENOMEM;
            snprintf(err, errlen, "out of memory");
            goto out;
        }
        const cJSON *pt;
        cJSON_ArrayForEach(pt, values) {
            const cJSON *t = cJSON_GetArrayItem(pt, 0), *v = cJSON_GetArrayItem(pt, 1);
            if (!cJSON_IsNumber(t) || !cJSON_IsString(v)) {
                snprintf(err, errlen, "malformed point");
                goto out;
            }
            char *end;
            double d = strtod(v->valuestring, &end);
            if (end == v->valuestring || *end) {
                snprintf(err, errlen, "malformed value \"%.40s\"", v->valuestring);
                goto out;
            }
            s->ts_ms[s->n] = (int64_t)llround(t->valuedouble * 1000.0);
            s->v[s->n++] = d;
        }
    }
    rc = 0;
out:
    cJSON_Delete(root);
    return rc;
}

static int is_cancelled(prom *p) {
    return atomic_load(&p->cancelled);
}

/* Runs c to completion on the multi handle m, waiting in curl_multi_poll() so that
 * prom_cancel() can wake it. CURLE_ABORTED_BY_CALLBACK when cancelled. */
static CURLcode perform(prom *p, CURLM *m, CURL *c) {
    if (curl_multi_add_handle(m, c) != CURLM_OK) return CURLE_FAILED_INIT;
    CURLcode cc = CURLE_OK;
    int running = 1, done = 0;
    while (!done) {
        if (is_cancelled(p)) {
            cc = CURLE_ABORTED_BY_CALLBACK;
            break;
        }
        if (curl_multi_perform(m, &running) != CURLM_OK) {
            cc = CURLE_FAILED_INIT;
            break;
        }
        int left;
        CURLMsg *msg;
        while ((msg = curl_multi_info_read(m, &left)))
            if (msg->msg == CURLMSG_DONE && msg->easy_handle == c) {
                cc = msg->data.result;
                done = 1;
            }
        if (done || !running) break;
        /* libcurl's own timeouts end the wait too; 1 s is only an upper bound */
        if (curl_multi_poll(m, NULL, 0, 1000, NULL) != CURLM_OK) {
            cc = CURLE_FAILED_INIT;
            break;
        }
    }
    curl_multi_remove_handle(m, c);
    return cc;
}

/* Sleeps ms, or less when cancelled (the wait is a wakeable curl_multi_poll). */
static void pause_ms(prom *p, CURLM *m, int64_t ms) {
    int64_t until = tide_now_mono_ms() + ms;
    for (int64_t left = ms; left > 0 && !is_cancelled(p); left = until - tide_now_mono_ms())
        curl_multi_poll(m, NULL, 0, (int)left, NULL);
}

#define CANCELLED_MSG "request cancelled (shutting down)"

/* One HTTP request with retries. 0 or -errno with err. */
static int fetch_chunk(prom *p, CURLM *m, CURL *c, const char *expr, int64_t s_ms, int64_t e_ms,
                       int64_t step_ms, prom_result *out, char *err, size_t errlen) {
    char *q = curl_easy_escape(c, expr, 0);
    if (!q) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    size_t ulen = strlen(p->url) + strlen(q) + 160;
    char *url = malloc(ulen);
    if (!url) {
        curl_free(q);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    snprintf(url, ulen, "%s/api/v1/query_range?query=%s&start=%.3f&end=%.3f&step=%.3f", p->url, q,
             (double)s_ms / 1000, (double)e_ms / 1000, (double)step_ms / 1000);
    curl_free(q);
    struct curl_slist *hdr = NULL;
    if (p->auth_header) hdr = curl_slist_append(hdr, p->auth_header);
    int rc = -EIO;
    int64_t delay = p->backoff_ms;
    for (int attempt = 0; attempt <= p->retries; attempt++) {
        if (attempt) {
            pthread_mutex_lock(&p->mu);
            p->retries_done++;
            pthread_mutex_unlock(&p->mu);
            pause_ms(p, m, delay);
            delay *= 2;
        }
        if (is_cancelled(p)) {
            rc = -ECANCELED;
            snprintf(err, errlen, "%s: " CANCELLED_MSG, p->url);
            break;
        }
        body b = {0};
        curl_easy_reset(c);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)p->timeout_ms);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                         (long)(p->timeout_ms < 5000 ? p->timeout_ms : 5000));
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
        curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
        if (hdr) curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
        if (p->ca_file) curl_easy_setopt(c, CURLOPT_CAINFO, p->ca_file);
        if (p->insecure) {
            curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
            curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
        }
        pthread_mutex_lock(&p->mu);
        p->requests++;
        pthread_mutex_unlock(&p->mu);
        CURLcode cc = perform(p, m, c);
        long code = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        int retry = 0;
        if (cc != CURLE_OK) {
            rc = cc == CURLE_OPERATION_TIMEDOUT         ? -ETIMEDOUT
                 : cc == CURLE_COULDNT_CONNECT          ? -ECONNREFUSED
                 : cc == CURLE_WRITE_ERROR && b.too_big ? -EFBIG
                 : cc == CURLE_ABORTED_BY_CALLBACK      ? -ECANCELED
                                                        : -EIO;
            if (rc == -ECANCELED)
                snprintf(err, errlen, "%s: " CANCELLED_MSG, p->url);
            else
                snprintf(err, errlen, "%s: %s", p->url, curl_easy_strerror(cc));
            retry = rc != -EFBIG && rc != -ECANCELED;
        } else if (code == 200 || code == 400 || code == 422) {
            rc = parse_body(b.p ? b.p : "", out, err, errlen);
            if (rc == 0 && code != 200) rc = -EIO;
            if (rc == -EIO && code == 200) retry = 1;
        } else {
            snprintf(err, errlen, "%s: HTTP %ld", p->url, code);
            rc = code == 401 || code == 403 ? -EACCES : -EIO;
            retry = code >= 500 || code == 429;
        }
        free(b.p);
        if (rc == 0 || !retry) break;
        log_debug("prom", "query_range attempt %d failed: %s", attempt + 1, err);
    }
    curl_slist_free_all(hdr);
    free(url);
    return rc;
}

static int query_range(prom *p, const char *expr, int64_t start_ms, int64_t end_ms, int64_t step_ms,
                       prom_result *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (step_ms <= 0 || end_ms < start_ms) {
        snprintf(err, errlen, "bad range");
        return -EINVAL;
    }
    if (is_cancelled(p)) {
        snprintf(err, errlen, "%s: " CANCELLED_MSG, p->url);
        return -ECANCELED;
    }
    int64_t now = tide_now_mono_ms();
    pthread_mutex_lock(&p->mu);
    if (!p->up && now < p->down_until_ms) {
        snprintf(err, errlen, "%s (retrying in %.1f s)", p->last_error,
                 (double)(p->down_until_ms - now) / 1000);
        pthread_mutex_unlock(&p->mu);
        return -EAGAIN;
    }
    pthread_mutex_unlock(&p->mu);
    CURL *c = curl_easy_init();
    active_req act = {curl_multi_init(), NULL};
    if (!c || !act.m) {
        if (c) curl_easy_cleanup(c);
        if (act.m) curl_multi_cleanup(act.m);
        snprintf(err, errlen, "curl_easy_init failed");
        return -ENOMEM;
    }
    pthread_mutex_lock(&p->mu);
    act.next = p->active;
    p->active = &act;
    pthread_mutex_unlock(&p->mu);
    int64_t per = p->max_points - 1; /* steps per request: start..start+per*step */
    int rc = 0;
    for (int64_t s = start_ms; s <= end_ms && !rc; s += (per + 1) * step_ms) {
        int64_t e = s + per * step_ms;
        if (e > end_ms) e = end_ms;
        rc = fetch_chunk(p, act.m, c, expr, s, e, step_ms, out, err, errlen);
    }
    pthread_mutex_lock(&p->mu);
    for (active_req **pp = &p->active; *pp; pp = &(*pp)->next)
        if (*pp == &act) {
            *pp = act.next;
            break;
        }
    pthread_mutex_unlock(&p->mu);
    curl_multi_cleanup(act.m); /* after unlinking: prom_cancel() no longer wakes it */
    curl_easy_cleanup(c);
    pthread_mutex_lock(&p->mu);
    if (rc == -ECANCELED) {
        /* shutting down: neither an error of Prometheus nor a reason to back off */
    } else if (rc == 0 || rc == -EINVAL) {
        if (!p->up) log_info("prom", "%s answers again", p->url);
        p->up = 1;
        p->down_for_ms = 0;
    } else {
        p->errors++;
        if (p->up) log_warn("prom", "query_range failed: %s", err);
        p->up = 0;
        p->down_for_ms = p->down_for_ms ? p->down_for_ms * 2 : 1000;
        if (p->down_for_ms > MAX_BACKOFF_MS) p->down_for_ms = MAX_BACKOFF_MS;
        p->down_until_ms = tide_now_mono_ms() + p->down_for_ms;
        snprintf(p->last_error, sizeof p->last_error, "%s", err);
    }
    if (rc == -EINVAL) p->errors++;
    pthread_mutex_unlock(&p->mu);
    if (rc) prom_result_fini(out);
    return rc;
}

int prom_query_range(prom *p, const char *expr, int64_t start_ms, int64_t end_ms, int64_t step_ms,
                     prom_result *out, char *err, size_t errlen) {
    atomic_fetch_add(&p->calls, 1);
    int rc = query_range(p, expr, start_ms, end_ms, step_ms, out, err, errlen);
    atomic_fetch_sub(&p->calls, 1);
    return rc;
}

void prom_cancel(prom *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->cancelled, 1);
    int n = 0;
    for (active_req *a = p->active; a; a = a->next, n++)
        curl_multi_wakeup(a->m);
    pthread_mutex_unlock(&p->mu);
    if (n) log_info("prom", "cancelled %d request%s in flight to %s", n, n == 1 ? "" : "s", p->url);
}

void prom_get_stats(prom *p, prom_stats *st) {
    memset(st, 0, sizeof *st);
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    st->requests = p->requests;
    st->errors = p->errors;
    st->retries = p->retries_done;
    st->up = p->up;
    snprintf(st->last_error, sizeof st->last_error, "%s", p->up ? "" : p->last_error);
    pthread_mutex_unlock(&p->mu);
}

const char *prom_status(prom *p) {
    static _Thread_local char buf[400];
    if (!p) return "not configured";
    pthread_mutex_lock(&p->mu);
    if (p->up)
        snprintf(buf, sizeof buf, "ok");
    else {
        int64_t left = p->down_until_ms - tide_now_mono_ms();
        snprintf(buf, sizeof buf, "down: %s; next try in %.1f s", p->last_error,
                 left > 0 ? (double)left / 1000 : 0.0);
    }
    pthread_mutex_unlock(&p->mu);
    return buf;
}
