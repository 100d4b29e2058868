/* etcd.h: a blocking client of the etcd v3 JSON gateway over libcurl, for the cluster module's
 * own threads (never the event loop). Several endpoints with failover: a request that fails in
 * transport, times out or finds a member without a leader is tried on the next endpoint, each
 * endpoint at most once per call; the one that answered is used first from then on. TLS (CA,
 * client certificate and key) and etcd's user/password authentication (a token from
 * /v3/auth/authenticate, renewed when etcd says it is invalid). Answers are bounded
 * (ETCD_MAX_BODY); every call takes at most the configured timeout per endpoint tried.
 *
 * One etcd handle per thread (it holds a curl handle and the current endpoint): not
 * thread-safe. */
#ifndef TIDE_ETCD_H
#define TIDE_ETCD_H

#include "cluster/etcd_json.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define ETCD_MAX_ENDPOINTS 16

typedef struct etcd_opts {
    const char *endpoints;                      /* comma-separated http(s):// base URLs */
    const char *ca_file, *cert_file, *key_file; /* "" or NULL = none */
    const char *user, *password_file;           /* "" or NULL = no authentication */
    int64_t timeout_ms;                         /* per request and endpoint */
} etcd_opts;

typedef struct etcd etcd;

/* Checks an endpoint list: 1 to ETCD_MAX_ENDPOINTS http:// or https:// URLs. 0 or -EINVAL
 * with err naming the bad one. */
int etcd_endpoints_check(const char *list, char *err, size_t errlen);

/* 0 with *out, or -EINVAL/-ENOMEM with err. The password file is read at every
 * authentication (it may rotate). */
int etcd_new(const etcd_opts *o, etcd **out, char *err, size_t errlen);
void etcd_free(etcd *e);
/* The endpoint the last call used (for logs and status). */
const char *etcd_endpoint(const etcd *e);
/* Calls made to an endpoint other than the previous one's (a failover), since etcd_new. */
uint64_t etcd_failovers(const etcd *e);

/* Every call returns 0, or -errno with err naming the endpoint(s) and what failed:
 * -ETIMEDOUT / -ECONNREFUSED / -EIO (transport, every endpoint tried), -EPROTO (etcd answered
 * with an error: the message is in err), -EINVAL (an answer that could not be decoded). */

int etcd_lease_grant(etcd *e, int64_t ttl_s, int64_t *id, int64_t *ttl, char *err, size_t errlen);
/* One keep-alive: *ttl = the lease's TTL again, or 0 when the lease is gone (expired or
 * revoked). */
int etcd_lease_keepalive(etcd *e, int64_t id, int64_t *ttl, char *err, size_t errlen);
int etcd_lease_revoke(etcd *e, int64_t id, char *err, size_t errlen);
/* Remaining seconds of a lease (-1 when it is gone). */
int etcd_lease_ttl(etcd *e, int64_t id, int64_t *remaining, char *err, size_t errlen);

/* Puts key = value (lease 0: none). *revision (may be NULL) = the store revision of the put. */
int etcd_put(etcd *e, const char *key, const void *value, size_t vlen, int64_t lease,
             int64_t *revision, char *err, size_t errlen);
/* Puts key = value unless it holds exactly value already: *changed 1 (and *revision the put's)
 * or 0 (and *revision the key's mod_revision). */
int etcd_put_if_changed(etcd *e, const char *key, const void *value, size_t vlen, int *changed,
                        int64_t *revision, char *err, size_t errlen);
/* Creates key = value with lease when no such key exists (a txn comparing its
 * create_revision with 0): *created 1 and *revision its create revision, or 0 and *holder
 * the key that exists (when holder is not NULL; free with etcd_kv_fini). */
int etcd_create(etcd *e, const char *key, const void *value, size_t vlen, int64_t lease,
                int *created, int64_t *revision, etcd_kv *holder, char *err, size_t errlen);
/* Creates all n keys = value with lease in one txn when none of them exists (at most
 * ETCD_TXN_MAX): *created 1 and *revision the create revision of all, or 0 (nothing written:
 * at least one exists). */
#define ETCD_TXN_MAX 100 /* etcd's --max-txn-ops defaults to 128 */
int etcd_create_all(etcd *e, const char *const *keys, size_t n, const void *value, size_t vlen,
                    int64_t lease, int *created, int64_t *revision, char *err, size_t errlen);
/* Deletes key when its mod_revision is mod_revision (0: whatever it is): *deleted 1 or 0. */
int etcd_delete(etcd *e, const char *key, int64_t mod_revision, int *deleted, int64_t *revision,
                char *err, size_t errlen);
/* The keys in [key, range_end) (key_len bytes: a key may hold a NUL; range_end NULL: key
 * alone) at revision (0: the newest), at most limit (0: ETCD_MAX_KVS) of them, from key on. */
int etcd_range_get(etcd *e, const char *key, size_t key_len, const char *range_end,
                   size_t range_end_len, int64_t revision, size_t limit, etcd_range *out, char *err,
                   size_t errlen);

/* Watches [key, range_end) from start_revision: fn is called for every message of the
 * stream (created, events, progress, cancel) and may return nonzero to end the watch. Returns
 * when fn asks to, when *stop becomes nonzero (checked at least once a second), when the
 * stream ends or breaks (-EIO/-ETIMEDOUT), or when no byte came for idle_ms (-ETIMEDOUT;
 * 0: no limit). 0 when ended by fn or stop. */
typedef int (*etcd_watch_fn)(void *arg, const etcd_watch_msg *m);
int etcd_watch(etcd *e, const char *key, const char *range_end, size_t range_end_len,
               int64_t start_revision, etcd_watch_fn fn, void *arg, atomic_int *stop,
               int64_t idle_ms, char *err, size_t errlen);

#endif
