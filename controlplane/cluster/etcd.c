/* etcd.c: a blocking etcd v3 JSON gateway client over libcurl (see etcd.h). */
#include "cluster/etcd.h"

#include "strbuf.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct etcd {
    char *url[ETCD_MAX_ENDPOINTS];
    int n, cur;
    CURL *c;
    char *ca, *cert, *key, *user, *pwfile;
    int64_t timeout_ms;
    char token[512]; /* etcd's simple or JWT auth token, "" none yet */
    uint64_t failovers;
};

static char *dup_or_null(const char *s) {
    return s && s[0] ? strdup(s) : NULL;
}

int etcd_endpoints_check(const char *list, char *err, size_t errlen) {
    if (!list || !list[0]) return 0;
    int n = 0;
    const char *p = list;
    while (*p) {
        size_t len = strcspn(p, ",");
        while (len && (*p == ' ')) {
            p++;
            len--;
        }
        size_t l = len;
        while (l && p[l - 1] == ' ')
            l--;
        if (l == 0 || (strncmp(p, "http://", 7) != 0 && strncmp(p, "https://", 8) != 0) || l < 9 ||
            l > 2000) {
            snprintf(err, errlen, "endpoint '%.*s' is not an http:// or https:// URL", (int)l, p);
            return -EINVAL;
        }
        if (++n > ETCD_MAX_ENDPOINTS) {
            snprintf(err, errlen, "more than %d endpoints", ETCD_MAX_ENDPOINTS);
            return -EINVAL;
        }
        p += len;
        if (*p == ',') p++;
    }
    return 0;
}

void etcd_free(etcd *e) {
    if (!e) return;
    for (int i = 0; i < e->n; i++)
        free(e->url[i]);
    if (e->c) curl_easy_cleanup(e->c);
    free(e->ca);
    free(e->cert);
    free(e->key);
    free(e->user);
    free(e->pwfile);
    free(e);
}

int etcd_new(const etcd_opts *o, etcd **out, char *err, size_t errlen) {
    *out = NULL;
    int rc = etcd_endpoints_check(o->endpoints, err, errlen);
    if (rc < 0) return rc;
    etcd *e = calloc(1, sizeof *e);
    if (!e) goto oom;
    e->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 2000;
    const char *p = o->endpoints;
    while (p && *p) {
        size_t len = strcspn(p, ",");
        const char *s = p;
        size_t l = len;
        while (l && *s == ' ') {
            s++;
            l--;
        }
        while (l && (s[l - 1] == ' ' || s[l - 1] == '/'))
            l--;
        if (l && !(e->url[e->n++] = strndup(s, l))) goto oom;
        p += len;
        if (*p == ',') p++;
    }
    if (e->n == 0) {
        snprintf(err, errlen, "no etcd endpoint given");
        etcd_free(e);
        return -EINVAL;
    }
    e->ca = dup_or_null(o->ca_file);
    e->cert = dup_or_null(o->cert_file);
    e->key = dup_or_null(o->key_file);
    e->user = dup_or_null(o->user);
    e->pwfile = dup_or_null(o->password_file);
    if ((o->ca_file && o->ca_file[0] && !e->ca) || (o->user && o->user[0] && !e->user) ||
        !(e->c = curl_easy_init()))
        goto oom;
    *out = e;
    return 0;
oom:
    snprintf(err, errlen, "etcd client: out of memory");
    etcd_free(e);
    return -ENOMEM;
}

const char *etcd_endpoint(const etcd *e) {
    return e ? e->url[e->cur] : "";
}

uint64_t etcd_failovers(const etcd *e) {
    return e ? e->failovers : 0;
}

/* ---- one request ---------------------------------------------------------------------- */

typedef struct sink {
    strbuf b;
    int over;
} sink;

static size_t on_body(char *p, size_t sz, size_t n, void *arg) {
    sink *s = arg;
    if (s->b.n + sz * n > ETCD_MAX_BODY) {
        s->over = 1;
        return 0;
    }
    strbuf_append(&s->b, p, sz * n);
    return s->b.oom ? 0 : sz * n;
}

static void setup(etcd *e, CURL *c, const char *url, const char *body, struct curl_slist **hdr) {
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)e->timeout_ms);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPIDLE, 5L);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPINTVL, 2L);
    if (e->ca) curl_easy_setopt(c, CURLOPT_CAINFO, e->ca);
    if (e->cert) curl_easy_setopt(c, CURLOPT_SSLCERT, e->cert);
    if (e->key) curl_easy_setopt(c, CURLOPT_SSLKEY, e->key);
    *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    if (e->token[0] && *hdr) {
        char h[600];
        snprintf(h, sizeof h, "Authorization: %s", e->token);
        struct curl_slist *n = curl_slist_append(*hdr, h);
        if (n) *hdr = n;
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, *hdr);
}

static int curl_errno(CURLcode cc) {
    switch (cc) {
    case CURLE_OPERATION_TIMEDOUT:
        return -ETIMEDOUT;
    case CURLE_COULDNT_CONNECT:
        return -ECONNREFUSED;
    case CURLE_OUT_OF_MEMORY:
        return -ENOMEM;
    default:
        return -EIO;
    }
}

/* One POST to endpoint ep: 0 with the answer and its HTTP status, or -errno (transport). */
static int post(etcd *e, int ep, const char *path, const char *body, sink *s, long *status,
                char *err, size_t errlen) {
    char url[2100];
    snprintf(url, sizeof url, "%s%s", e->url[ep], path);
    struct curl_slist *hdr = NULL;
    setup(e, e->c, url, body, &hdr);
    curl_easy_setopt(e->c, CURLOPT_TIMEOUT_MS, (long)e->timeout_ms);
    curl_easy_setopt(e->c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e->c, CURLOPT_WRITEDATA, s);
    CURLcode cc = curl_easy_perform(e->c);
    curl_slist_free_all(hdr);
    *status = 0;
    if (cc != CURLE_OK) {
        if (s->over)
            snprintf(err, errlen, "%.160s: answer larger than %u bytes", url, ETCD_MAX_BODY);
        else
            snprintf(err, errlen, "%.160s: %s", url, curl_easy_strerror(cc));
        return s->over ? -EMSGSIZE : curl_errno(cc);
    }
    curl_easy_getinfo(e->c, CURLINFO_RESPONSE_CODE, status);
    return 0;
}

static int authenticate(etcd *e, int ep, char *err, size_t errlen) {
    char pw[512] = "";
    if (e->pwfile) {
        FILE *f = fopen(e->pwfile, "r");
        if (!f) {
            snprintf(err, errlen, "%s: %s", e->pwfile, strerror(errno));
            return -errno;
        }
        size_t n = fread(pw, 1, sizeof pw - 1, f);
        fclose(f);
        pw[n] = 0;
        pw[strcspn(pw, "\r\n")] = 0;
    }
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "name", e->user);
    cJSON_AddStringToObject(b, "password", pw);
    char *body = cJSON_PrintUnformatted(b);
    cJSON_Delete(b);
    memset(pw, 0, sizeof pw);
    if (!body) return -ENOMEM;
    sink s = {0};
    long st;
    e->token[0] = 0;
    int rc = post(e, ep, "/v3/auth/authenticate", body, &s, &st, err, errlen);
    free(body);
    if (rc == 0) {
        cJSON *r = s.b.p ? cJSON_ParseWithLength(s.b.p, s.b.n) : NULL;
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(r, "token");
        if (st == 200 && cJSON_IsString(t) && strlen(t->valuestring) < sizeof e->token) {
            snprintf(e->token, sizeof e->token, "%s", t->valuestring);
        } else {
            int code;
            char msg[200] = "no token in the answer";
            if (s.b.p) etcd_error_parse(s.b.p, s.b.n, &code, msg, sizeof msg);
            snprintf(err, errlen, "%s: authentication as %s failed: %s", e->url[ep], e->user, msg);
            rc = -EACCES;
        }
        cJSON_Delete(r);
    }
    strbuf_fini(&s.b);
    return rc;
}

/* A gRPC status that another member may not share: no leader there, a timeout, unavailable. */
static int try_next(long status, int code, const char *msg) {
    return status == 503 || status == 504 || code == 14 || code == 4 || strstr(msg, "no leader") ||
           strstr(msg, "timed out") || strstr(msg, "not capable");
}

/* POSTs body to path on the current endpoint, then the others: 0 with the answer in *out
 * (malloc'd, *len bytes), or -errno with err. */
static int call(etcd *e, const char *path, const char *body, char **out, size_t *len, char *err,
                size_t errlen) {
    *out = NULL;
    *len = 0;
    char why[ETCD_MAX_ENDPOINTS][240];
    int last = -EIO;
    for (int k = 0; k < e->n; k++) {
        int ep = (e->cur + k) % e->n;
        why[k][0] = 0;
        for (int attempt = 0; attempt < 2; attempt++) {
            if (e->user && !e->token[0]) {
                int rc = authenticate(e, ep, why[k], sizeof why[k]);
                if (rc < 0) {
                    last = rc;
                    break;
                }
            }
            sink s = {0};
            long st;
            int rc = post(e, ep, path, body, &s, &st, why[k], sizeof why[k]);
            if (rc < 0) {
                strbuf_fini(&s.b);
                last = rc;
                break;
            }
            if (st == 200) {
                if (ep != e->cur) {
                    e->failovers++;
                    e->cur = ep;
                }
                *len = s.b.n;
                *out = s.b.p ? s.b.p : calloc(1, 1);
                return *out ? 0 : -ENOMEM;
            }
            int code = 0;
            char msg[200] = "";
            if (!s.b.p || !etcd_error_parse(s.b.p, s.b.n, &code, msg, sizeof msg))
                snprintf(msg, sizeof msg, "HTTP status %ld", st);
            strbuf_fini(&s.b);
            snprintf(why[k], sizeof why[k], "%s%s: %s", e->url[ep], path, msg);
            if (e->user && (code == 16 || strstr(msg, "auth token") || strstr(msg, "token"))) {
                e->token[0] = 0; /* expired or invalidated: authenticate again, once */
                last = -EACCES;
                continue;
            }
            last = -EPROTO;
            if (!try_next(st, code, msg)) {
                snprintf(err, errlen, "%s", why[k]);
                return -EPROTO;
            }
            break;
        }
    }
    size_t off = 0;
    err[0] = 0;
    for (int k = 0; k < e->n && off + 4 < errlen; k++)
        off += (size_t)snprintf(err + off, errlen - off, "%s%s", k ? "; " : "", why[k]);
    return last;
}

/* ---- requests --------------------------------------------------------------------------- */

static void add_b64(cJSON *o, const char *name, const void *p, size_t n) {
    char *b = etcd_b64_encode(p, n);
    cJSON_AddStringToObject(o, name, b ? b : "");
    free(b);
}

static void add_i64(cJSON *o, const char *name, int64_t v) {
    char s[24];
    snprintf(s, sizeof s, "%lld", (long long)v);
    cJSON_AddStringToObject(o, name, s);
}

/* Sends o (consumed) to path; 0 with the answer or -errno. */
static int send_json(etcd *e, const char *path, cJSON *o, char **out, size_t *len, char *err,
                     size_t errlen) {
    char *body = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!body) {
        snprintf(err, errlen, "%s: out of memory", path);
        return -ENOMEM;
    }
    int rc = call(e, path, body, out, len, err, errlen);
    free(body);
    return rc;
}

int etcd_lease_grant(etcd *e, int64_t ttl_s, int64_t *id, int64_t *ttl, char *err, size_t errlen) {
    cJSON *o = cJSON_CreateObject();
    add_i64(o, "TTL", ttl_s);
    char *a;
    size_t n;
    int rc = send_json(e, "/v3/lease/grant", o, &a, &n, err, errlen);
    if (rc == 0) rc = etcd_lease_parse(a, n, id, ttl, err, errlen);
    if (rc == 0 && (*id == 0 || *ttl <= 0)) {
        snprintf(err, errlen, "lease grant: no lease in the answer");
        rc = -EPROTO;
    }
    free(a);
    return rc;
}

int etcd_lease_keepalive(etcd *e, int64_t id, int64_t *ttl, char *err, size_t errlen) {
    cJSON *o = cJSON_CreateObject();
    add_i64(o, "ID", id);
    char *a;
    size_t n;
    int64_t got;
    int rc = send_json(e, "/v3/lease/keepalive", o, &a, &n, err, errlen);
    if (rc == 0) rc = etcd_lease_parse(a, n, &got, ttl, err, errlen);
    if (*ttl < 0) *ttl = 0;
    free(a);
    return rc;
}

int etcd_lease_revoke(etcd *e, int64_t id, char *err, size_t errlen) {
    cJSON *o = cJSON_CreateObject();
    add_i64(o, "ID", id);
    char *a;
    size_t n;
    int rc = send_json(e, "/v3/lease/revoke", o, &a, &n, err, errlen);
    free(a);
    return rc;
}

int etcd_lease_ttl(etcd *e, int64_t id, int64_t *remaining, char *err, size_t errlen) {
    cJSON *o = cJSON_CreateObject();
    add_i64(o, "ID", id);
    char *a;
    size_t n;
    int64_t got;
    int rc = send_json(e, "/v3/lease/timetolive", o, &a, &n, err, errlen);
    if (rc == 0) rc = etcd_lease_parse(a, n, &got, remaining, err, errlen);
    free(a);
    return rc;
}

static cJSON *put_op(const char *key, const void *value, size_t vlen, int64_t lease) {
    cJSON *op = cJSON_CreateObject(), *p = cJSON_AddObjectToObject(op, "request_put");
    add_b64(p, "key", key, strlen(key));
    add_b64(p, "value", value, vlen);
    if (lease) add_i64(p, "lease", lease);
    return op;
}

static cJSON *range_op(const char *key) {
    cJSON *op = cJSON_CreateObject(), *r = cJSON_AddObjectToObject(op, "request_range");
    add_b64(r, "key", key, strlen(key));
    return op;
}

static cJSON *compare(const char *key, const char *target, const char *field, cJSON *val,
                      const char *result) {
    cJSON *c = cJSON_CreateObject();
    add_b64(c, "key", key, strlen(key));
    cJSON_AddStringToObject(c, "target", target);
    cJSON_AddItemToObject(c, field, val);
    cJSON_AddStringToObject(c, "result", result);
    return c;
}

static int txn(etcd *e, cJSON *o, int *succeeded, int64_t *revision, etcd_kv *kv, char *err,
               size_t errlen) {
    char *a;
    size_t n;
    int rc = send_json(e, "/v3/kv/txn", o, &a, &n, err, errlen);
    int64_t rev = 0;
    if (rc == 0) rc = etcd_txn_parse(a, n, succeeded, &rev, kv, err, errlen);
    if (revision) *revision = rev;
    free(a);
    return rc;
}

int etcd_put(etcd *e, const char *key, const void *value, size_t vlen, int64_t lease,
             int64_t *revision, char *err, size_t errlen) {
    cJSON *o = cJSON_CreateObject();
    add_b64(o, "key", key, strlen(key));
    add_b64(o, "value", value, vlen);
    if (lease) add_i64(o, "lease", lease);
    char *a;
    size_t n;
    int rc = send_json(e, "/v3/kv/put", o, &a, &n, err, errlen);
    if (rc == 0 && revision) {
        etcd_range r; /* a put answer is {"header":{...}}: the range decoder reads it */
        rc = etcd_range_parse(a, n, 0, &r, err, errlen);
        *revision = r.revision;
        etcd_range_free(&r);
    }
    free(a);
    return rc;
}

int etcd_put_if_changed(etcd *e, const char *key, const void *value, size_t vlen, int *changed,
                        int64_t *revision, char *err, size_t errlen) {
    cJSON *o = cJSON_CreateObject(), *cmp = cJSON_AddArrayToObject(o, "compare");
    char *b = etcd_b64_encode(value, vlen);
    cJSON_AddItemToArray(
        cmp, compare(key, "VALUE", "value", cJSON_CreateString(b ? b : ""), "NOT_EQUAL"));
    free(b);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(o, "success"), put_op(key, value, vlen, 0));
    cJSON_AddItemToArray(cJSON_AddArrayToObject(o, "failure"), range_op(key));
    etcd_kv kv;
    int rc = txn(e, o, changed, revision, &kv, err, errlen);
    if (rc == 0 && !*changed && kv.key) *revision = kv.mod_revision;
    /* a key that does not exist compares NOT_EQUAL as false in etcd: put it */
    if (rc == 0 && !*changed && !kv.key) {
        rc = etcd_put(e, key, value, vlen, 0, revision, err, errlen);
        *changed = rc == 0;
    }
    etcd_kv_fini(&kv);
    return rc;
}

int etcd_create(etcd *e, const char *key, const void *value, size_t vlen, int64_t lease,
                int *created, int64_t *revision, etcd_kv *holder, char *err, size_t errlen) {
    cJSON *o = cJSON_CreateObject(), *cmp = cJSON_AddArrayToObject(o, "compare");
    cJSON_AddItemToArray(
        cmp, compare(key, "CREATE", "create_revision", cJSON_CreateString("0"), "EQUAL"));
    cJSON_AddItemToArray(cJSON_AddArrayToObject(o, "success"), put_op(key, value, vlen, lease));
    cJSON_AddItemToArray(cJSON_AddArrayToObject(o, "failure"), range_op(key));
    etcd_kv kv;
    int rc = txn(e, o, created, revision, &kv, err, errlen);
    if (holder)
        *holder = kv;
    else
        etcd_kv_fini(&kv);
    return rc;
}

int etcd_create_all(etcd *e, const char *const *keys, size_t n, const void *value, size_t vlen,
                    int64_t lease, int *created, int64_t *revision, char *err, size_t errlen) {
    *created = 0;
    if (n == 0 || n > ETCD_TXN_MAX) {
        snprintf(err, errlen, "txn of %zu keys: 1 to %d allowed", n, ETCD_TXN_MAX);
        return -EINVAL;
    }
    cJSON *o = cJSON_CreateObject(), *cmp = cJSON_AddArrayToObject(o, "compare"),
          *ok = cJSON_AddArrayToObject(o, "success");
    for (size_t i = 0; i < n; i++) {
        cJSON_AddItemToArray(
            cmp, compare(keys[i], "CREATE", "create_revision", cJSON_CreateString("0"), "EQUAL"));
        cJSON_AddItemToArray(ok, put_op(keys[i], value, vlen, lease));
    }
    return txn(e, o, created, revision, NULL, err, errlen);
}

int etcd_delete(etcd *e, const char *key, int64_t mod_revision, int *deleted, int64_t *revision,
                char *err, size_t errlen) {
    cJSON *o = cJSON_CreateObject(), *cmp = cJSON_AddArrayToObject(o, "compare");
    if (mod_revision) {
        char s[24];
        snprintf(s, sizeof s, "%lld", (long long)mod_revision);
        cJSON_AddItemToArray(cmp,
                             compare(key, "MOD", "mod_revision", cJSON_CreateString(s), "EQUAL"));
    }
    cJSON *op = cJSON_CreateObject(), *d = cJSON_AddObjectToObject(op, "request_delete_range");
    add_b64(d, "key", key, strlen(key));
    cJSON_AddItemToArray(cJSON_AddArrayToObject(o, "success"), op);
    return txn(e, o, deleted, revision, NULL, err, errlen);
}

int etcd_range_get(etcd *e, const char *key, size_t key_len, const char *range_end,
                   size_t range_end_len, int64_t revision, size_t limit, etcd_range *out, char *err,
                   size_t errlen) {
    memset(out, 0, sizeof *out);
    if (!limit || limit > ETCD_MAX_KVS) limit = ETCD_MAX_KVS;
    cJSON *o = cJSON_CreateObject();
    add_b64(o, "key", key, key_len);
    if (range_end) add_b64(o, "range_end", range_end, range_end_len);
    if (revision) add_i64(o, "revision", revision);
    add_i64(o, "limit", (int64_t)limit);
    char *a;
    size_t n;
    int rc = send_json(e, "/v3/kv/range", o, &a, &n, err, errlen);
    if (rc == 0) rc = etcd_range_parse(a, n, limit, out, err, errlen);
    free(a);
    return rc;
}

/* ---- watch -------------------------------------------------------------------------------- */

typedef struct wstream {
    strbuf line;
    etcd_watch_fn fn;
    void *arg;
    atomic_int *stop;
    int ended;  /* fn asked to end */
    int failed; /* a line could not be decoded / too long */
    char err[240];
    struct timespec last;
    int64_t idle_ms;
    int idle;
    size_t bytes; /* received */
} wstream;

static int64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int feed_line(wstream *w, const char *p, size_t n) {
    if (n == 0) return 0;
    etcd_watch_msg m;
    int rc = etcd_watch_parse(p, n, &m, w->err, sizeof w->err);
    if (rc < 0) {
        etcd_watch_msg_free(&m);
        w->failed = 1;
        return -1;
    }
    if (w->fn(w->arg, &m)) w->ended = 1;
    etcd_watch_msg_free(&m);
    return w->ended ? -1 : 0;
}

static size_t on_watch(char *p, size_t sz, size_t n, void *arg) {
    wstream *w = arg;
    size_t len = sz * n;
    w->bytes += len;
    clock_gettime(CLOCK_MONOTONIC, &w->last);
    for (size_t i = 0; i < len;) {
        const char *nl = memchr(p + i, '\n', len - i);
        size_t take = nl ? (size_t)(nl - (p + i)) : len - i;
        if (w->line.n + take > ETCD_MAX_BODY) {
            snprintf(w->err, sizeof w->err, "watch: a message longer than %u bytes", ETCD_MAX_BODY);
            w->failed = 1;
            return 0;
        }
        strbuf_append(&w->line, p + i, take);
        if (w->line.oom) {
            snprintf(w->err, sizeof w->err, "watch: out of memory");
            w->failed = 1;
            return 0;
        }
        i += take;
        if (nl) {
            i++;
            int rc = feed_line(w, w->line.p, w->line.n);
            w->line.n = 0;
            if (rc < 0) return 0;
        }
    }
    return len;
}

static int on_watch_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut,
                             curl_off_t un) {
    (void)dt, (void)dn, (void)ut, (void)un;
    wstream *w = arg;
    if (w->stop && atomic_load(w->stop)) return 1;
    if (w->idle_ms > 0) {
        int64_t last = (int64_t)w->last.tv_sec * 1000 + w->last.tv_nsec / 1000000;
        if (mono_ms() - last > w->idle_ms) {
            w->idle = 1;
            return 1;
        }
    }
    return 0;
}

int etcd_watch(etcd *e, const char *key, const char *range_end, size_t range_end_len,
               int64_t start_revision, etcd_watch_fn fn, void *arg, atomic_int *stop,
               int64_t idle_ms, char *err, size_t errlen) {
    cJSON *o = cJSON_CreateObject(), *c = cJSON_AddObjectToObject(o, "create_request");
    add_b64(c, "key", key, strlen(key));
    if (range_end) add_b64(c, "range_end", range_end, range_end_len);
    if (start_revision) add_i64(c, "start_revision", start_revision);
    cJSON_AddBoolToObject(c, "progress_notify", 1);
    char *body = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!body) return -ENOMEM;
    int rc = -EIO;
    char why[600] = "";
    size_t off = 0;
    for (int k = 0; k < e->n; k++) {
        int ep = (e->cur + k) % e->n;
        if (e->user && !e->token[0]) {
            char aerr[240];
            if ((rc = authenticate(e, ep, aerr, sizeof aerr)) < 0) {
                off += (size_t)snprintf(why + off, sizeof why - off, "%s; ", aerr);
                if (off >= sizeof why) off = sizeof why - 1;
                continue;
            }
        }
        char url[2100];
        snprintf(url, sizeof url, "%s/v3/watch", e->url[ep]);
        wstream w = {.fn = fn, .arg = arg, .stop = stop, .idle_ms = idle_ms};
        clock_gettime(CLOCK_MONOTONIC, &w.last);
        struct curl_slist *hdr = NULL;
        setup(e, e->c, url, body, &hdr);
        curl_easy_setopt(e->c, CURLOPT_WRITEFUNCTION, on_watch);
        curl_easy_setopt(e->c, CURLOPT_WRITEDATA, &w);
        curl_easy_setopt(e->c, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(e->c, CURLOPT_XFERINFOFUNCTION, on_watch_progress);
        curl_easy_setopt(e->c, CURLOPT_XFERINFODATA, &w);
        CURLcode cc = curl_easy_perform(e->c);
        curl_slist_free_all(hdr);
        long st = 0;
        curl_easy_getinfo(e->c, CURLINFO_RESPONSE_CODE, &st);
        if (w.line.n && !w.ended && !w.failed && cc == CURLE_OK)
            feed_line(&w, w.line.p, w.line.n); /* a last message without its newline */
        strbuf_fini(&w.line);
        int got_data = w.bytes > 0 && st == 200;
        if (w.ended || (stop && atomic_load(stop))) {
            rc = 0;
            why[0] = 0;
            break;
        }
        if (w.failed) {
            snprintf(err, errlen, "%.160s: %.200s", url, w.err);
            free(body);
            return -EPROTO;
        }
        if (w.idle) {
            snprintf(err, errlen, "%.160s: no message for %lld ms", url, (long long)idle_ms);
            rc = -ETIMEDOUT;
        } else if (cc != CURLE_OK) {
            snprintf(err, errlen, "%.160s: %s", url, curl_easy_strerror(cc));
            rc = curl_errno(cc);
        } else {
            snprintf(err, errlen, "%.160s: the stream ended (HTTP status %ld)", url, st);
            rc = -EIO;
        }
        if (st == 200 && got_data) { /* it was serving: let the caller resume the watch */
            if (ep != e->cur) {
                e->failovers++;
                e->cur = ep;
            }
            free(body);
            return rc;
        }
        off += (size_t)snprintf(why + off, sizeof why - off, "%s; ", err);
        if (off >= sizeof why) off = sizeof why - 1;
    }
    free(body);
    if (why[0]) snprintf(err, errlen, "%s", why);
    return rc;
}
