/* etcd_json.c: etcd v3 JSON gateway bodies decoded and encoded without I/O (see etcd_json.h). */
#include "cluster/etcd_json.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *etcd_b64_encode(const void *in, size_t n) {
    const unsigned char *p = in;
    if (n > (SIZE_MAX - 1) / 4 * 3 - 3) return NULL;
    char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;
    if (!out) return NULL;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
        *o++ = B64[v >> 18];
        *o++ = B64[v >> 12 & 63];
        *o++ = B64[v >> 6 & 63];
        *o++ = B64[v & 63];
    }
    if (n - i == 1) {
        unsigned v = (unsigned)p[i] << 16;
        *o++ = B64[v >> 18];
        *o++ = B64[v >> 12 & 63];
        *o++ = '=';
        *o++ = '=';
    } else if (n - i == 2) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8;
        *o++ = B64[v >> 18];
        *o++ = B64[v >> 12 & 63];
        *o++ = B64[v >> 6 & 63];
        *o++ = '=';
    }
    *o = 0;
    return out;
}

static int b64_val(unsigned char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

int etcd_b64_decode(const char *in, size_t n, size_t max, char **out, size_t *outlen) {
    *out = NULL;
    *outlen = 0;
    if (n % 4) return -EINVAL;
    size_t pad = 0;
    if (n >= 1 && in[n - 1] == '=') pad++;
    if (n >= 2 && in[n - 2] == '=') pad++;
    size_t len = n / 4 * 3 - pad;
    if (len > max) return -EINVAL;
    char *buf = malloc(len + 1);
    if (!buf) return -ENOMEM;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        for (int k = 0; k < 4; k++) {
            unsigned char c = (unsigned char)in[i + k];
            /* '=' only as the padding of the last group */
            if (c == '=' && i + 4 == n && k >= 4 - (int)pad) {
                v[k] = 0;
                continue;
            }
            if ((v[k] = b64_val(c)) < 0) {
                free(buf);
                return -EINVAL;
            }
        }
        unsigned t =
            (unsigned)v[0] << 18 | (unsigned)v[1] << 12 | (unsigned)v[2] << 6 | (unsigned)v[3];
        unsigned char b[3] = {(unsigned char)(t >> 16), (unsigned char)(t >> 8), (unsigned char)t};
        for (int k = 0; k < 3 && o < len; k++)
            buf[o++] = (char)b[k];
    }
    buf[len] = 0;
    *out = buf;
    *outlen = len;
    return 0;
}

char *etcd_prefix_end(const char *prefix, size_t len, size_t *outlen) {
    char *end = malloc(len + 1);
    if (!end) return NULL;
    memcpy(end, prefix, len);
    for (size_t i = len; i-- > 0;) {
        if ((unsigned char)end[i] < 0xff) {
            end[i] = (char)((unsigned char)end[i] + 1);
            end[i + 1] = 0;
            *outlen = i + 1;
            return end;
        }
    }
    end[0] = 0; /* every key from prefix on */
    *outlen = 1;
    return end;
}

int etcd_json_int64(const cJSON *obj, const char *name, int64_t *v) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, name);
    *v = 0;
    if (!j || cJSON_IsNull(j)) return 0;
    if (cJSON_IsNumber(j)) {
        if (!(j->valuedouble >= -9.2e18 && j->valuedouble <= 9.2e18)) return -EINVAL;
        *v = (int64_t)j->valuedouble;
        return 0;
    }
    if (!cJSON_IsString(j) || !j->valuestring[0] || strlen(j->valuestring) > 20) return -EINVAL;
    const char *s = j->valuestring;
    int neg = *s == '-';
    if (neg) s++;
    if (!*s) return -EINVAL;
    uint64_t u = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return -EINVAL;
        uint64_t d = (uint64_t)(*s - '0');
        if (u > (UINT64_MAX - d) / 10) return -EINVAL;
        u = u * 10 + d;
    }
    /* lease and member IDs are uint64 in etcd's proto, int64 in its JSON: both fit 64 bits */
    if (neg) {
        if (u > (uint64_t)INT64_MAX + 1) return -EINVAL;
        *v = u == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)u;
    } else {
        *v = (int64_t)u; /* two's complement of a uint64 ID above INT64_MAX */
    }
    return 0;
}

void etcd_kv_fini(etcd_kv *kv) {
    if (!kv) return;
    free(kv->key);
    free(kv->value);
    memset(kv, 0, sizeof *kv);
}

static cJSON *parse(const char *buf, size_t len, const char *what, char *err, size_t errlen) {
    if (len > ETCD_MAX_BODY) {
        snprintf(err, errlen, "%s: answer of %zu bytes, more than the %u accepted", what, len,
                 ETCD_MAX_BODY);
        return NULL;
    }
    cJSON *root = cJSON_ParseWithLength(buf, len);
    if (!root || !cJSON_IsObject(root)) {
        snprintf(err, errlen, "%s: not a JSON object", what);
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

/* a base64 field into (*out, *outlen); absent = "" (etcd omits empty values) */
static int b64_field(const cJSON *o, const char *name, size_t max, char **out, size_t *outlen,
                     const char *where, char *err, size_t errlen) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!j) {
        *out = calloc(1, 1);
        *outlen = 0;
        return *out ? 0 : -ENOMEM;
    }
    int rc = cJSON_IsString(j)
                 ? etcd_b64_decode(j->valuestring, strlen(j->valuestring), max, out, outlen)
                 : -EINVAL;
    if (rc < 0)
        snprintf(err, errlen, "%s.%s: %s", where, name,
                 rc == -ENOMEM ? "out of memory" : "not base64 (or too long)");
    return rc;
}

static int kv_parse(const cJSON *o, etcd_kv *kv, const char *where, char *err, size_t errlen) {
    memset(kv, 0, sizeof *kv);
    if (!cJSON_IsObject(o)) {
        snprintf(err, errlen, "%s: not an object", where);
        return -EINVAL;
    }
    int rc = b64_field(o, "key", ETCD_MAX_KEY, &kv->key, &kv->key_len, where, err, errlen);
    if (rc == 0)
        rc = b64_field(o, "value", ETCD_MAX_VALUE, &kv->value, &kv->value_len, where, err, errlen);
    if (rc < 0) return rc == -ENOMEM ? rc : -EINVAL;
    static const char *const names[] = {"create_revision", "mod_revision", "version", "lease"};
    int64_t *dst[] = {&kv->create_revision, &kv->mod_revision, &kv->version, &kv->lease};
    for (int i = 0; i < 4; i++)
        if (etcd_json_int64(o, names[i], dst[i]) < 0) {
            snprintf(err, errlen, "%s.%s: not an int64", where, names[i]);
            return -EINVAL;
        }
    return 0;
}

static int header_revision(const cJSON *root, int64_t *rev, const char *what, char *err,
                           size_t errlen) {
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(root, "header");
    if (etcd_json_int64(h, "revision", rev) < 0) {
        snprintf(err, errlen, "%s: header.revision: not an int64", what);
        return -EINVAL;
    }
    return 0;
}

/* kvs array into (*kvs, *n) */
static int kvs_parse(const cJSON *arr, size_t max, etcd_kv **kvs, size_t *n, const char *what,
                     char *err, size_t errlen) {
    *kvs = NULL;
    *n = 0;
    if (!arr) return 0;
    if (!cJSON_IsArray(arr)) {
        snprintf(err, errlen, "%s: kvs: not an array", what);
        return -EINVAL;
    }
    int cnt = cJSON_GetArraySize(arr);
    if ((size_t)cnt > max) {
        snprintf(err, errlen, "%s: %d key-values, more than the %zu accepted", what, cnt, max);
        return -EINVAL;
    }
    if (cnt == 0) return 0;
    *kvs = calloc((size_t)cnt, sizeof **kvs);
    if (!*kvs) return -ENOMEM;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) {
        char where[48];
        snprintf(where, sizeof where, "%s: kvs[%zu]", what, *n);
        int rc = kv_parse(it, &(*kvs)[*n], where, err, errlen);
        (*n)++; /* freed with the rest, also when half parsed */
        if (rc < 0) return rc;
    }
    return 0;
}

int etcd_range_parse(const char *buf, size_t len, size_t max_kvs, etcd_range *out, char *err,
                     size_t errlen) {
    memset(out, 0, sizeof *out);
    cJSON *root = parse(buf, len, "range", err, errlen);
    if (!root) return -EINVAL;
    int rc = header_revision(root, &out->revision, "range", err, errlen);
    if (rc == 0)
        rc = kvs_parse(cJSON_GetObjectItemCaseSensitive(root, "kvs"), max_kvs, &out->kvs, &out->n,
                       "range", err, errlen);
    if (rc == 0 && etcd_json_int64(root, "count", &out->count) < 0) {
        snprintf(err, errlen, "range: count: not an int64");
        rc = -EINVAL;
    }
    out->more = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "more"));
    cJSON_Delete(root);
    return rc;
}

void etcd_range_free(etcd_range *r) {
    if (!r) return;
    for (size_t i = 0; i < r->n; i++)
        etcd_kv_fini(&r->kvs[i]);
    free(r->kvs);
    memset(r, 0, sizeof *r);
}

int etcd_txn_parse(const char *buf, size_t len, int *succeeded, int64_t *revision, etcd_kv *kv,
                   char *err, size_t errlen) {
    *succeeded = 0;
    *revision = 0;
    if (kv) memset(kv, 0, sizeof *kv);
    cJSON *root = parse(buf, len, "txn", err, errlen);
    if (!root) return -EINVAL;
    int rc = header_revision(root, revision, "txn", err, errlen);
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(root, "succeeded");
    if (s && !cJSON_IsBool(s)) {
        snprintf(err, errlen, "txn: succeeded: not a boolean");
        rc = -EINVAL;
    }
    *succeeded = cJSON_IsTrue(s);
    const cJSON *resp = cJSON_GetObjectItemCaseSensitive(root, "responses");
    const cJSON *r0 = cJSON_IsArray(resp) ? cJSON_GetArrayItem(resp, 0) : NULL;
    const cJSON *rr = cJSON_GetObjectItemCaseSensitive(r0, "response_range");
    const cJSON *kvs = cJSON_GetObjectItemCaseSensitive(rr, "kvs");
    if (rc == 0 && kv && cJSON_IsArray(kvs) && cJSON_GetArraySize(kvs) > 0)
        rc = kv_parse(cJSON_GetArrayItem(kvs, 0), kv, "txn: responses[0].response_range.kvs[0]",
                      err, errlen);
    cJSON_Delete(root);
    return rc;
}

int etcd_lease_parse(const char *buf, size_t len, int64_t *id, int64_t *ttl, char *err,
                     size_t errlen) {
    *id = *ttl = 0;
    cJSON *root = parse(buf, len, "lease", err, errlen);
    if (!root) return -EINVAL;
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(root, "result");
    if (!o) o = root;
    int rc = 0;
    if (!cJSON_IsObject(o) || etcd_json_int64(o, "ID", id) < 0 ||
        etcd_json_int64(o, "TTL", ttl) < 0) {
        snprintf(err, errlen, "lease: ID or TTL: not an int64");
        rc = -EINVAL;
    }
    cJSON_Delete(root);
    return rc;
}

int etcd_watch_parse(const char *buf, size_t len, etcd_watch_msg *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    cJSON *root = parse(buf, len, "watch", err, errlen);
    if (!root) return -EINVAL;
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(root, "result");
    if (!cJSON_IsObject(r)) {
        int code;
        char msg[200];
        if (etcd_error_parse(buf, len, &code, msg, sizeof msg)) {
            snprintf(err, errlen, "watch: etcd error %d: %s", code, msg);
            cJSON_Delete(root);
            return -EPROTO;
        }
        snprintf(err, errlen, "watch: no result object");
        cJSON_Delete(root);
        return -EINVAL;
    }
    int rc = header_revision(r, &out->revision, "watch", err, errlen);
    out->created = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "created"));
    out->canceled = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "canceled"));
    if (rc == 0 && etcd_json_int64(r, "compact_revision", &out->compact_revision) < 0) {
        snprintf(err, errlen, "watch: compact_revision: not an int64");
        rc = -EINVAL;
    }
    const cJSON *why = cJSON_GetObjectItemCaseSensitive(r, "cancel_reason");
    if (cJSON_IsString(why))
        snprintf(out->cancel_reason, sizeof out->cancel_reason, "%s", why->valuestring);
    const cJSON *evs = cJSON_GetObjectItemCaseSensitive(r, "events");
    if (rc == 0 && evs) {
        int cnt = cJSON_IsArray(evs) ? cJSON_GetArraySize(evs) : -1;
        if (cnt < 0 || cnt > ETCD_MAX_KVS) {
            snprintf(err, errlen, "watch: events: not an array of at most %d", ETCD_MAX_KVS);
            rc = -EINVAL;
        } else if (cnt > 0 && !(out->ev = calloc((size_t)cnt, sizeof *out->ev))) {
            rc = -ENOMEM;
        }
        const cJSON *e;
        if (rc == 0) cJSON_ArrayForEach(e, evs) {
                char where[48];
                snprintf(where, sizeof where, "watch: events[%zu].kv", out->n);
                const cJSON *t = cJSON_GetObjectItemCaseSensitive(e, "type");
                etcd_event *dst = &out->ev[out->n++];
                if (t && (!cJSON_IsString(t) || (strcmp(t->valuestring, "PUT") != 0 &&
                                                 strcmp(t->valuestring, "DELETE") != 0))) {
                    snprintf(err, errlen, "watch: events[%zu].type: not PUT or DELETE", out->n - 1);
                    rc = -EINVAL;
                    break;
                }
                dst->deleted = t && strcmp(t->valuestring, "DELETE") == 0;
                if ((rc = kv_parse(cJSON_GetObjectItemCaseSensitive(e, "kv"), &dst->kv, where, err,
                                   errlen)) < 0)
                    break;
            }
    }
    cJSON_Delete(root);
    return rc;
}

void etcd_watch_msg_free(etcd_watch_msg *m) {
    if (!m) return;
    for (size_t i = 0; i < m->n; i++)
        etcd_kv_fini(&m->ev[i].kv);
    free(m->ev);
    memset(m, 0, sizeof *m);
}

int etcd_error_parse(const char *buf, size_t len, int *code, char *msg, size_t msglen) {
    *code = 0;
    if (msglen) msg[0] = 0;
    if (len > ETCD_MAX_BODY) return 0;
    cJSON *root = cJSON_ParseWithLength(buf, len);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "error");
    const cJSON *o = cJSON_IsObject(e) ? e : root; /* a stream's error is an object */
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(o, "code");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "message");
    if (!m) m = cJSON_IsString(e) ? e : NULL;
    int is = cJSON_IsObject(root) && e != NULL && (cJSON_IsNumber(c) || cJSON_IsString(m));
    if (is) {
        *code = cJSON_IsNumber(c) ? (int)c->valuedouble : 0;
        snprintf(msg, msglen, "%s", cJSON_IsString(m) ? m->valuestring : "?");
    }
    cJSON_Delete(root);
    return is;
}
