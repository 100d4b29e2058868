/* etcd_json.h: what the etcd v3 JSON gateway sends and takes, decoded and encoded without I/O:
 * base64 (keys and values travel base64-encoded), int64 fields (sent as strings, zero values
 * omitted), a range answer's key-values, a txn's outcome, a lease grant or keep-alive, one
 * line of a watch stream and an error body. Every decoder bounds what it accepts (ETCD_MAX_*)
 * and says what was wrong and where in err. */
#ifndef TIDE_ETCD_JSON_H
#define TIDE_ETCD_JSON_H

#include <stddef.h>
#include <stdint.h>

#define ETCD_MAX_KEY 4096         /* a decoded key (Tide's are a prefix and a name) */
#define ETCD_MAX_VALUE (1u << 20) /* a decoded value: a workload spec is at most 1 MiB */
#define ETCD_MAX_KVS 10000        /* key-values in one range answer or watch message */
#define ETCD_MAX_BODY (64u << 20) /* one answer or watch line */

typedef struct etcd_kv {
    char *key; /* decoded, NUL-terminated (malloc'd) */
    size_t key_len;
    char *value; /* decoded, NUL-terminated (malloc'd; "" when absent) */
    size_t value_len;
    int64_t create_revision, mod_revision, version, lease;
} etcd_kv;

typedef struct etcd_range {
    int64_t revision; /* header.revision: the store's revision the answer is of */
    etcd_kv *kvs;
    size_t n;
    int more;      /* the answer stopped at the limit */
    int64_t count; /* keys in the whole range */
} etcd_range;

typedef struct etcd_event {
    int deleted; /* DELETE, else PUT */
    etcd_kv kv;  /* for a DELETE: key and mod_revision (the deletion's revision) */
} etcd_event;

typedef struct etcd_watch_msg {
    int64_t revision; /* header.revision */
    int created, canceled;
    int64_t compact_revision; /* > 0: the start revision was compacted away */
    char cancel_reason[160];
    etcd_event *ev;
    size_t n;
} etcd_watch_msg;

/* base64 (RFC 4648, padded). encode returns a malloc'd NUL-terminated text or NULL (ENOMEM).
 * decode returns 0 with *out malloc'd and NUL-terminated (*outlen bytes before the NUL), or
 * -EINVAL (not base64, or longer than max bytes decoded) or -ENOMEM. */
char *etcd_b64_encode(const void *in, size_t n);
int etcd_b64_decode(const char *in, size_t n, size_t max, char **out, size_t *outlen);

/* The end of the range of every key starting with prefix (the prefix with its last byte
 * incremented, carries propagated), malloc'd, as etcd's range_end wants it; "\0" (all keys)
 * for a prefix of only 0xff bytes. *outlen is its length. NULL on ENOMEM. */
char *etcd_prefix_end(const char *prefix, size_t len, size_t *outlen);

/* An int64 field as the gateway sends it: a string of digits (optionally '-') or a number;
 * absent = 0. 0 with *v set, -EINVAL when it is something else or out of range. */
struct cJSON;
int etcd_json_int64(const struct cJSON *obj, const char *name, int64_t *v);

void etcd_kv_fini(etcd_kv *kv);

/* A /v3/kv/range answer. 0, or -EINVAL with err ("range: kvs[3].key: not base64"). The caller
 * frees with etcd_range_free (also after an error). At most max_kvs key-values. */
int etcd_range_parse(const char *buf, size_t len, size_t max_kvs, etcd_range *out, char *err,
                     size_t errlen);
void etcd_range_free(etcd_range *r);

/* A /v3/kv/txn answer: succeeded (absent = false), header.revision and, when the first
 * response of the branch taken is a range with a key-value, that key-value in *kv (when kv is
 * not NULL; kv->key NULL otherwise; the caller frees with etcd_kv_fini). 0 or -EINVAL. */
int etcd_txn_parse(const char *buf, size_t len, int *succeeded, int64_t *revision, etcd_kv *kv,
                   char *err, size_t errlen);

/* A lease grant ({"ID","TTL"}) or keep-alive ({"result":{"ID","TTL"}}) answer: *id and *ttl
 * (seconds; 0 or absent when the lease is gone: a keep-alive of an expired lease). 0 or
 * -EINVAL. */
int etcd_lease_parse(const char *buf, size_t len, int64_t *id, int64_t *ttl, char *err,
                     size_t errlen);

/* One line of a /v3/watch stream ({"result":{...}}, or {"error":{...}}: -EPROTO with err).
 * 0 or -EINVAL/-EPROTO; free with etcd_watch_msg_free (also after an error). */
int etcd_watch_parse(const char *buf, size_t len, etcd_watch_msg *out, char *err, size_t errlen);
void etcd_watch_msg_free(etcd_watch_msg *m);

/* An error body ({"error":"...","code":N,"message":"..."}, or a stream's {"error":{...}}):
 * 1 with code and message filled when buf is one, 0 when not. */
int etcd_error_parse(const char *buf, size_t len, int *code, char *msg, size_t msglen);

#endif
