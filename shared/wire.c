/* wire.c: framing, encoders, HMAC authentication and the incremental frame decoder of the
 * agent <-> control plane protocol (wire.h, PROTOCOL.md). */
#include "wire.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hmac.h"

#define JSON_MAX_DEPTH 32

static const char *const type_names[] = {
    "?",   "HELLO",   "HELLO_ACK",      "SERIES_DEF", "SAMPLES",
    "ACK", "COMMAND", "COMMAND_RESULT", "HEARTBEAT",
};

const char *wire_type_name(int t) {
    if (t < 1 || t > WIRE_TYPE_MAX) return "?";
    return type_names[t];
}

int wire_node_valid(const char *p, size_t len) {
    if (len == 0 || len > 63) return 0;
    for (size_t i = 0; i < len; i++) {
        char c = p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

int wire_workload_valid(const char *p, size_t len) {
    if (len == 0 || len > WIRE_WORKLOAD_MAX) return 0;
    for (size_t i = 0; i < len; i++) {
        char c = p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* ---- encoding ---------------------------------------------------------------------------- */

static int buf_grow(wire_buf *b, size_t need) {
    if (b->len + need <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + need)
        cap *= 2;
    uint8_t *p = realloc(b->data, cap);
    if (!p) return -ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

static int buf_write(void *data, const char *src, size_t len) {
    wire_buf *b = data;
    if (b->oom) return -1;
    if (buf_grow(b, len) < 0) {
        b->oom = 1;
        return -1;
    }
    memcpy(b->data + b->len, src, len);
    b->len += len;
    return 0;
}

void wire_buf_init(wire_buf *b) {
    memset(b, 0, sizeof *b);
    msgpack_packer_init(&b->pk, b, buf_write);
}

void wire_buf_fini(wire_buf *b) {
    if (!b) return;
    free(b->data);
    memset(b, 0, sizeof *b);
}

void wire_buf_consume(wire_buf *b, size_t n) {
    if (n >= b->len) {
        b->len = 0;
    } else {
        memmove(b->data, b->data + n, b->len - n);
        b->len -= n;
    }
    b->frame_start = b->len;
}

void wire_pack_str(msgpack_packer *pk, const char *s) {
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

void wire_pack_kstr(msgpack_packer *pk, const char *key, const char *val) {
    wire_pack_str(pk, key);
    wire_pack_str(pk, val);
}

void wire_pack_kuint(msgpack_packer *pk, const char *key, uint64_t val) {
    wire_pack_str(pk, key);
    msgpack_pack_uint64(pk, val);
}

void wire_pack_kbin(msgpack_packer *pk, const char *key, const void *data, size_t len) {
    wire_pack_str(pk, key);
    msgpack_pack_bin(pk, len);
    msgpack_pack_bin_body(pk, data, len);
}

void wire_frame_begin(wire_buf *b, enum wire_type t, uint64_t seq, uint32_t nfields) {
    b->frame_start = b->len;
    b->oom = 0;
    static const char zero[4];
    buf_write(b, zero, 4);
    msgpack_pack_map(&b->pk, nfields);
    wire_pack_kuint(&b->pk, "v", WIRE_VERSION);
    wire_pack_kuint(&b->pk, "t", (uint64_t)t);
    wire_pack_kuint(&b->pk, "seq", seq);
}

void wire_frame_abort(wire_buf *b) {
    b->len = b->frame_start;
    b->oom = 0;
}

long wire_frame_end(wire_buf *b, size_t max_frame) {
    if (b->oom) {
        wire_frame_abort(b);
        return -ENOMEM;
    }
    size_t payload = b->len - b->frame_start - 4;
    if (payload > max_frame || payload > WIRE_MAX_FRAME_LIMIT) {
        wire_frame_abort(b);
        return -EMSGSIZE;
    }
    uint8_t *h = b->data + b->frame_start;
    h[0] = (uint8_t)(payload >> 24);
    h[1] = (uint8_t)(payload >> 16);
    h[2] = (uint8_t)(payload >> 8);
    h[3] = (uint8_t)payload;
    long total = (long)(payload + 4);
    b->frame_start = b->len;
    return total;
}

static void pack_json_depth(msgpack_packer *pk, const cJSON *j, int depth) {
    if (!j || depth > JSON_MAX_DEPTH) {
        msgpack_pack_nil(pk);
        return;
    }
    if (cJSON_IsObject(j)) {
        uint32_t n = 0;
        for (const cJSON *c = j->child; c; c = c->next)
            n++;
        msgpack_pack_map(pk, n);
        for (const cJSON *c = j->child; c; c = c->next) {
            wire_pack_str(pk, c->string ? c->string : "");
            pack_json_depth(pk, c, depth + 1);
        }
    } else if (cJSON_IsArray(j)) {
        uint32_t n = 0;
        for (const cJSON *c = j->child; c; c = c->next)
            n++;
        msgpack_pack_array(pk, n);
        for (const cJSON *c = j->child; c; c = c->next)
            pack_json_depth(pk, c, depth + 1);
    } else if (cJSON_IsString(j)) {
        wire_pack_str(pk, j->valuestring);
    } else if (cJSON_IsNumber(j)) {
        double d = j->valuedouble;
        if (isfinite(d) && d == floor(d) && fabs(d) < 9.0e15)
            msgpack_pack_int64(pk, (int64_t)d);
        else
            msgpack_pack_double(pk, d);
    } else if (cJSON_IsTrue(j)) {
        msgpack_pack_true(pk);
    } else if (cJSON_IsFalse(j)) {
        msgpack_pack_false(pk);
    } else {
        msgpack_pack_nil(pk);
    }
}

void wire_pack_json(msgpack_packer *pk, const struct cJSON *j) {
    pack_json_depth(pk, j, 0);
}

void wire_samples_begin(wire_buf *b, uint64_t seq, uint32_t nseries) {
    wire_frame_begin(b, WIRE_SAMPLES, seq, 4);
    wire_pack_str(&b->pk, "s");
    msgpack_pack_array(&b->pk, nseries);
}

int wire_samples_series(wire_buf *b, uint32_t id, const int64_t *ts_ms, const double *v,
                        uint32_t n) {
    if (n == 0) return -EINVAL;
    for (uint32_t i = 1; i < n; i++)
        if (ts_ms[i] < ts_ms[i - 1]) return -EINVAL;
    msgpack_packer *pk = &b->pk;
    msgpack_pack_array(pk, 4);
    msgpack_pack_uint32(pk, id);
    msgpack_pack_int64(pk, ts_ms[0]);
    msgpack_pack_array(pk, n);
    msgpack_pack_uint64(pk, 0);
    for (uint32_t i = 1; i < n; i++)
        msgpack_pack_uint64(pk, (uint64_t)(ts_ms[i] - ts_ms[i - 1]));
    msgpack_pack_array(pk, n);
    for (uint32_t i = 0; i < n; i++)
        msgpack_pack_double(pk, v[i]);
    return 0;
}

void wire_series_def_begin(wire_buf *b, uint64_t seq, uint32_t n) {
    wire_frame_begin(b, WIRE_SERIES_DEF, seq, 4);
    wire_pack_str(&b->pk, "s");
    msgpack_pack_array(&b->pk, n);
}

void wire_series_def_add(wire_buf *b, uint32_t id, const char *metric, const char *const *labels) {
    msgpack_packer *pk = &b->pk;
    uint32_t n = 1;
    for (size_t i = 0; labels && labels[i] && labels[i + 1]; i += 2)
        n++;
    msgpack_pack_array(pk, 2);
    msgpack_pack_uint32(pk, id);
    msgpack_pack_map(pk, n);
    wire_pack_kstr(pk, "__name__", metric);
    for (size_t i = 0; labels && labels[i] && labels[i + 1]; i += 2)
        wire_pack_kstr(pk, labels[i], labels[i + 1]);
}

long wire_enc_hello_challenge(wire_buf *b, uint64_t seq, const char *version,
                              const uint8_t nonce[WIRE_NONCE_LEN], uint64_t heartbeat_ms,
                              size_t max_frame) {
    wire_frame_begin(b, WIRE_HELLO, seq, 8);
    wire_pack_kstr(&b->pk, "role", "controlplane");
    wire_pack_kstr(&b->pk, "version", version);
    wire_pack_kbin(&b->pk, "nonce", nonce, WIRE_NONCE_LEN);
    wire_pack_kuint(&b->pk, "heartbeat_ms", heartbeat_ms);
    wire_pack_kuint(&b->pk, "max_frame", max_frame);
    return wire_frame_end(b, max_frame);
}

long wire_enc_hello_agent(wire_buf *b, uint64_t seq, const char *node, const char *version,
                          const uint8_t nonce[WIRE_NONCE_LEN], const uint8_t mac[WIRE_MAC_LEN],
                          size_t max_frame) {
    wire_frame_begin(b, WIRE_HELLO, seq, 8);
    wire_pack_kstr(&b->pk, "role", "agent");
    wire_pack_kstr(&b->pk, "node", node);
    wire_pack_kstr(&b->pk, "version", version);
    wire_pack_kbin(&b->pk, "nonce", nonce, WIRE_NONCE_LEN);
    wire_pack_kbin(&b->pk, "mac", mac, WIRE_MAC_LEN);
    return wire_frame_end(b, max_frame);
}

long wire_enc_hello_ack(wire_buf *b, uint64_t seq, const uint8_t mac[WIRE_MAC_LEN],
                        uint64_t last_seq, size_t max_frame) {
    wire_frame_begin(b, WIRE_HELLO_ACK, seq, 5);
    wire_pack_kbin(&b->pk, "mac", mac, WIRE_MAC_LEN);
    wire_pack_kuint(&b->pk, "last_seq", last_seq);
    return wire_frame_end(b, max_frame);
}

long wire_enc_ack(wire_buf *b, uint64_t seq, uint64_t ack, size_t max_frame) {
    wire_frame_begin(b, WIRE_ACK, seq, 4);
    wire_pack_kuint(&b->pk, "ack", ack);
    return wire_frame_end(b, max_frame);
}

long wire_enc_command(wire_buf *b, uint64_t seq, const char *id, const char *action,
                      const struct cJSON *args, size_t max_frame) {
    return wire_enc_command_fenced(b, seq, id, action, args, NULL, 0, max_frame);
}

long wire_enc_command_fenced(wire_buf *b, uint64_t seq, const char *id, const char *action,
                             const struct cJSON *args, const char *workload, uint64_t token,
                             size_t max_frame) {
    int fenced = workload != NULL;
    wire_frame_begin(b, WIRE_COMMAND, seq, 6 + (uint32_t)fenced);
    wire_pack_kstr(&b->pk, "id", id);
    wire_pack_kstr(&b->pk, "action", action);
    wire_pack_str(&b->pk, "args");
    if (args && cJSON_IsObject(args))
        wire_pack_json(&b->pk, args);
    else
        msgpack_pack_map(&b->pk, 0);
    if (fenced) {
        wire_pack_str(&b->pk, "fence");
        msgpack_pack_map(&b->pk, 2);
        wire_pack_kstr(&b->pk, "workload", workload);
        wire_pack_kuint(&b->pk, "token", token);
    }
    return wire_frame_end(b, max_frame);
}

long wire_enc_command_result(wire_buf *b, uint64_t seq, const char *id, int ok, const char *error,
                             const struct cJSON *result, size_t max_frame) {
    uint32_t n = 5 + (error != NULL) + (result != NULL);
    wire_frame_begin(b, WIRE_COMMAND_RESULT, seq, n);
    wire_pack_kstr(&b->pk, "id", id);
    wire_pack_str(&b->pk, "ok");
    if (ok)
        msgpack_pack_true(&b->pk);
    else
        msgpack_pack_false(&b->pk);
    if (error) wire_pack_kstr(&b->pk, "error", error);
    if (result) {
        wire_pack_str(&b->pk, "result");
        if (cJSON_IsObject(result))
            wire_pack_json(&b->pk, result);
        else
            msgpack_pack_map(&b->pk, 0);
    }
    return wire_frame_end(b, max_frame);
}

long wire_enc_heartbeat(wire_buf *b, uint64_t seq, int64_t ts_ms, uint64_t spool_drops,
                        uint64_t queued_bytes, size_t max_frame) {
    wire_frame_begin(b, WIRE_HEARTBEAT, seq, 6);
    wire_pack_str(&b->pk, "ts");
    msgpack_pack_int64(&b->pk, ts_ms);
    wire_pack_kuint(&b->pk, "spool_drops", spool_drops);
    wire_pack_kuint(&b->pk, "queued", queued_bytes);
    return wire_frame_end(b, max_frame);
}

/* ---- authentication ---------------------------------------------------------------------- */

int wire_auth_mac(const void *token, size_t token_len, const char *role,
                  const uint8_t nonce_a[WIRE_NONCE_LEN], const uint8_t nonce_b[WIRE_NONCE_LEN],
                  const char *node, uint8_t mac[WIRE_MAC_LEN]) {
    uint8_t msg[16 + 2 * WIRE_NONCE_LEN + 64];
    size_t rl = strlen(role), nl = strlen(node);
    if (rl > 15 || nl > 63) return -EINVAL;
    size_t off = 0;
    memcpy(msg, role, rl);
    off = rl;
    msg[off++] = 0;
    memcpy(msg + off, nonce_a, WIRE_NONCE_LEN);
    off += WIRE_NONCE_LEN;
    memcpy(msg + off, nonce_b, WIRE_NONCE_LEN);
    off += WIRE_NONCE_LEN;
    memcpy(msg + off, node, nl);
    off += nl;
    return tide_hmac_sha256(token, token_len, msg, off, mac);
}

int wire_mac_equal(const uint8_t a[WIRE_MAC_LEN], const uint8_t b[WIRE_MAC_LEN]) {
    return tide_ct_equal(a, b, WIRE_MAC_LEN);
}

int wire_nonce(uint8_t nonce[WIRE_NONCE_LEN]) {
    size_t got = 0;
    while (got < WIRE_NONCE_LEN) {
        ssize_t r = getrandom(nonce + got, WIRE_NONCE_LEN - got, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        got += (size_t)r;
    }
    return 0;
}

int wire_token_load(const char *path, char **token, size_t *len, char *err, size_t errlen) {
    int rc = 0;
    char *buf = NULL;
    /* O_NONBLOCK: opening a FIFO must not wait for a writer (start-up would hang silently) */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        rc = -errno;
        snprintf(err, errlen, "token file %s: %s", path, strerror(errno));
        return rc;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        snprintf(err, errlen, "token file %s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = -EINVAL;
        snprintf(err, errlen, "token file %s is not a regular file", path);
        goto out;
    }
    if (st.st_mode & 0004) {
        rc = -EPERM;
        snprintf(err, errlen, "token file %s is readable by others (mode %04o): chmod o-r it", path,
                 (unsigned)(st.st_mode & 07777));
        goto out;
    }
    if (st.st_size > 4096) {
        rc = -EFBIG;
        snprintf(err, errlen, "token file %s is larger than 4096 bytes", path);
        goto out;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        rc = -ENOMEM;
        snprintf(err, errlen, "token file %s: out of memory", path);
        goto out;
    }
    ssize_t n = read(fd, buf, (size_t)st.st_size);
    if (n < 0) {
        rc = -errno;
        snprintf(err, errlen, "token file %s: %s", path, strerror(errno));
        goto out;
    }
    size_t l = (size_t)n;
    if (l > 0 && buf[l - 1] == '\n') l--;
    if (l > 0 && buf[l - 1] == '\r') l--;
    buf[l] = 0;
    if (l < 16) {
        rc = -EINVAL;
        snprintf(err, errlen, "token file %s: token is %zu bytes, at least 16 are needed", path, l);
        goto out;
    }
    /* 16 spaces or one byte repeated is no secret: ask for some variety (a random token of
     * 16 bytes from base64 or hex has 8 or more different bytes with near certainty) */
    int seen[256] = {0}, distinct = 0, blank = 1;
    for (size_t i = 0; i < l; i++) {
        unsigned char ch = (unsigned char)buf[i];
        distinct += !seen[ch]++;
        if (ch != ' ' && ch != '\t') blank = 0;
    }
    if (blank || distinct < 8) {
        rc = -EINVAL;
        snprintf(err, errlen,
                 "token file %s: the token has only %d different bytes%s: use a random one "
                 "(e.g. openssl rand -hex 32)",
                 path, distinct, blank ? " and is blank" : "");
        goto out;
    }
    *token = buf;
    *len = l;
    buf = NULL;
out:
    free(buf);
    close(fd);
    return rc;
}

/* ---- decoding ---------------------------------------------------------------------------- */

int wire_decoder_init(wire_decoder *d, size_t max_frame) {
    memset(d, 0, sizeof *d);
    if (max_frame == 0 || max_frame > WIRE_MAX_FRAME_LIMIT) max_frame = WIRE_MAX_FRAME_DEFAULT;
    if (!msgpack_zone_init(&d->zone, 2048)) return -ENOMEM;
    d->max_frame = max_frame; /* also marks the decoder initialised for _fini */
    return 0;
}

void wire_decoder_fini(wire_decoder *d) {
    if (!d || !d->max_frame) return; /* never initialised, or finished already */
    free(d->buf);
    msgpack_zone_destroy(&d->zone);
    memset(d, 0, sizeof *d);
}

void wire_decoder_set_max(wire_decoder *d, size_t max_frame) {
    if (max_frame == 0 || max_frame > WIRE_MAX_FRAME_LIMIT) max_frame = WIRE_MAX_FRAME_DEFAULT;
    if (d->max_frame) d->max_frame = max_frame;
}

size_t wire_decoder_pending(const wire_decoder *d) {
    return d->end - d->start;
}

void wire_decoder_shrink(wire_decoder *d, size_t keep) {
    if (d->start != d->end || d->cap <= keep) return;
    free(d->buf);
    d->buf = NULL;
    d->cap = d->start = d->end = 0;
    /* The zone keeps its largest chunk on clear; start over with a small one. */
    msgpack_zone_destroy(&d->zone);
    if (!msgpack_zone_init(&d->zone, 2048)) {
        d->max_frame = 0; /* nothing left to free */
        snprintf(d->err, sizeof d->err, "out of memory");
        d->failed = 1;
    }
}

uint8_t *wire_decoder_reserve(wire_decoder *d, size_t want, size_t *avail) {
    size_t limit = d->max_frame + 4;
    if (want == 0) want = 1;
    if (d->start > 0 && (d->start == d->end || d->cap - d->end < want)) {
        memmove(d->buf, d->buf + d->start, d->end - d->start);
        d->end -= d->start;
        d->start = 0;
    }
    if (d->cap - d->end < want) {
        size_t need = d->end + want;
        /* Never beyond one maximum frame plus whatever little is already buffered past it. */
        if (need > limit && d->end < limit) need = limit;
        if (need < d->end + 1) need = d->end + 1;
        size_t cap = d->cap ? d->cap : 1024;
        while (cap < need)
            cap *= 2;
        if (cap > limit && need <= limit) cap = limit;
        if (cap < need) cap = need;
        uint8_t *p = realloc(d->buf, cap);
        if (!p) {
            *avail = 0;
            return NULL;
        }
        d->buf = p;
        d->cap = cap;
    }
    *avail = d->cap - d->end;
    return d->buf + d->end;
}

void wire_decoder_consumed(wire_decoder *d, size_t n) {
    d->end += n;
}

int wire_decoder_feed(wire_decoder *d, const void *data, size_t len) {
    while (len > 0) {
        size_t avail;
        uint8_t *p = wire_decoder_reserve(d, len, &avail);
        if (!p) return -ENOMEM;
        size_t n = len < avail ? len : avail;
        memcpy(p, data, n);
        wire_decoder_consumed(d, n);
        data = (const uint8_t *)data + n;
        len -= n;
    }
    return 0;
}

static enum wire_decode_result fail(wire_decoder *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static enum wire_decode_result fail(wire_decoder *d, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->err, sizeof d->err, fmt, ap);
    va_end(ap);
    d->failed = 1;
    return WIRE_ERROR;
}

static const msgpack_object *map_get(const msgpack_object *map, const char *key) {
    size_t kl = strlen(key);
    const msgpack_object_map *m = &map->via.map;
    for (uint32_t i = 0; i < m->size; i++) {
        const msgpack_object *k = &m->ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == kl &&
            memcmp(k->via.str.ptr, key, kl) == 0)
            return &m->ptr[i].val;
    }
    return NULL;
}

/* Reads a non-negative integer. 1 ok, 0 missing/wrong type. */
static int get_uint(const msgpack_object *o, uint64_t *out) {
    if (!o) return 0;
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        *out = o->via.u64;
        return 1;
    }
    return 0;
}

static int get_int(const msgpack_object *o, int64_t *out) {
    if (!o) return 0;
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        if (o->via.u64 > INT64_MAX) return 0;
        *out = (int64_t)o->via.u64;
        return 1;
    }
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *out = o->via.i64;
        return 1;
    }
    return 0;
}

static int get_str(const msgpack_object *o, wire_str *s) {
    if (!o || o->type != MSGPACK_OBJECT_STR) return 0;
    s->p = o->via.str.ptr;
    s->len = o->via.str.size;
    return 1;
}

static const uint8_t *get_bin(const msgpack_object *o, uint32_t len) {
    if (!o || o->type != MSGPACK_OBJECT_BIN || o->via.bin.size != len) return NULL;
    return (const uint8_t *)o->via.bin.ptr;
}

static int is_str(const wire_str *s, const char *lit) {
    size_t l = strlen(lit);
    return s->len == l && memcmp(s->p, lit, l) == 0;
}

static enum wire_decode_result check_hello(wire_decoder *d, wire_msg *m) {
    const msgpack_object *r = m->root;
    memset(&m->u.hello, 0, sizeof m->u.hello);
    if (!get_str(map_get(r, "role"), &m->u.hello.role))
        return fail(d, "HELLO: 'role' missing or not a string");
    if (!(m->u.hello.nonce = get_bin(map_get(r, "nonce"), WIRE_NONCE_LEN)))
        return fail(d, "HELLO: 'nonce' missing or not %d bytes of bin", WIRE_NONCE_LEN);
    const msgpack_object *ver = map_get(r, "version");
    if (ver && !get_str(ver, &m->u.hello.version))
        return fail(d, "HELLO: 'version' is not a string");
    if (is_str(&m->u.hello.role, "agent")) {
        if (!get_str(map_get(r, "node"), &m->u.hello.node))
            return fail(d, "HELLO: 'node' missing or not a string");
        if (!wire_node_valid(m->u.hello.node.p, m->u.hello.node.len))
            return fail(d, "HELLO: node name is not 1-63 characters of [A-Za-z0-9._-]");
        if (!(m->u.hello.mac = get_bin(map_get(r, "mac"), WIRE_MAC_LEN)))
            return fail(d, "HELLO: 'mac' missing or not %d bytes of bin", WIRE_MAC_LEN);
    } else if (is_str(&m->u.hello.role, "controlplane")) {
        const msgpack_object *hb = map_get(r, "heartbeat_ms");
        if (hb && !get_uint(hb, &m->u.hello.heartbeat_ms))
            return fail(d, "HELLO: 'heartbeat_ms' is not a non-negative integer");
        const msgpack_object *mf = map_get(r, "max_frame");
        if (mf && !get_uint(mf, &m->u.hello.max_frame))
            return fail(d, "HELLO: 'max_frame' is not a non-negative integer");
    } else {
        return fail(d, "HELLO: unknown role (expected \"agent\" or \"controlplane\")");
    }
    return WIRE_FRAME;
}

static enum wire_decode_result check_series_def(wire_decoder *d, wire_msg *m) {
    const msgpack_object *s = map_get(m->root, "s");
    if (!s || s->type != MSGPACK_OBJECT_ARRAY)
        return fail(d, "SERIES_DEF: 's' missing or not an array");
    for (uint32_t i = 0; i < s->via.array.size; i++) {
        const msgpack_object *e = &s->via.array.ptr[i];
        uint64_t id;
        if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size != 2)
            return fail(d, "SERIES_DEF: entry %u is not [id, labels]", i);
        if (!get_uint(&e->via.array.ptr[0], &id) || id > UINT32_MAX)
            return fail(d, "SERIES_DEF: entry %u: id is not a 32-bit unsigned integer", i);
        const msgpack_object *l = &e->via.array.ptr[1];
        if (l->type != MSGPACK_OBJECT_MAP)
            return fail(d, "SERIES_DEF: entry %u: labels are not a map", i);
        if (l->via.map.size > WIRE_MAX_LABELS)
            return fail(d, "SERIES_DEF: entry %u has %u labels (at most %d)", i, l->via.map.size,
                        WIRE_MAX_LABELS);
        int has_name = 0;
        for (uint32_t k = 0; k < l->via.map.size; k++) {
            const msgpack_object_kv *kv = &l->via.map.ptr[k];
            if (kv->key.type != MSGPACK_OBJECT_STR || kv->val.type != MSGPACK_OBJECT_STR ||
                kv->key.via.str.size == 0 || kv->key.via.str.size > 128 ||
                kv->val.via.str.size > 1024)
                return fail(d,
                            "SERIES_DEF: entry %u: label %u is not a string pair (name 1-128, "
                            "value 0-1024 bytes)",
                            i, k);
            if (kv->key.via.str.size == 8 && memcmp(kv->key.via.str.ptr, "__name__", 8) == 0)
                has_name = 1;
        }
        if (!has_name) return fail(d, "SERIES_DEF: entry %u has no '__name__' label", i);
    }
    m->u.series_def.defs = s;
    m->u.series_def.n = s->via.array.size;
    return WIRE_FRAME;
}

static int is_number(const msgpack_object *o) {
    return o->type == MSGPACK_OBJECT_FLOAT64 || o->type == MSGPACK_OBJECT_FLOAT32 ||
           o->type == MSGPACK_OBJECT_POSITIVE_INTEGER || o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER;
}

static double number_of(const msgpack_object *o) {
    switch (o->type) {
    case MSGPACK_OBJECT_FLOAT64:
    case MSGPACK_OBJECT_FLOAT32:
        return o->via.f64;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        return (double)o->via.u64;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return (double)o->via.i64;
    default:
        return NAN;
    }
}

/* Timestamps: base + cumulative deltas must stay within +-2^62 ms (no overflow later). */
#define TS_LIMIT ((int64_t)1 << 62)

static enum wire_decode_result check_samples(wire_decoder *d, wire_msg *m) {
    const msgpack_object *s = map_get(m->root, "s");
    if (!s || s->type != MSGPACK_OBJECT_ARRAY)
        return fail(d, "SAMPLES: 's' missing or not an array");
    uint64_t total = 0;
    for (uint32_t i = 0; i < s->via.array.size; i++) {
        const msgpack_object *e = &s->via.array.ptr[i];
        if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size != 4)
            return fail(d, "SAMPLES: run %u is not [id, base_ts, deltas, values]", i);
        const msgpack_object *f = e->via.array.ptr;
        uint64_t id;
        int64_t ts;
        if (!get_uint(&f[0], &id) || id > UINT32_MAX)
            return fail(d, "SAMPLES: run %u: id is not a 32-bit unsigned integer", i);
        if (!get_int(&f[1], &ts) || ts <= -TS_LIMIT || ts >= TS_LIMIT)
            return fail(d, "SAMPLES: run %u: base_ts is not an integer in range", i);
        if (f[2].type != MSGPACK_OBJECT_ARRAY || f[3].type != MSGPACK_OBJECT_ARRAY)
            return fail(d, "SAMPLES: run %u: deltas and values must be arrays", i);
        uint32_t n = f[2].via.array.size;
        if (n == 0 || n != f[3].via.array.size)
            return fail(d, "SAMPLES: run %u: %u deltas but %u values (need equal, >= 1)", i, n,
                        f[3].via.array.size);
        const msgpack_object *dl = f[2].via.array.ptr, *vl = f[3].via.array.ptr;
        for (uint32_t k = 0; k < n; k++) {
            if (dl[k].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
                dl[k].via.u64 >= (uint64_t)TS_LIMIT)
                return fail(d, "SAMPLES: run %u: delta %u is not a non-negative integer", i, k);
            ts += (int64_t)dl[k].via.u64;
            if (ts >= TS_LIMIT) return fail(d, "SAMPLES: run %u: timestamp overflow", i);
            if (!is_number(&vl[k]))
                return fail(d, "SAMPLES: run %u: value %u is not a number", i, k);
        }
        total += n;
    }
    m->u.samples.runs = s;
    m->u.samples.nruns = s->via.array.size;
    m->u.samples.nsamples = total;
    return WIRE_FRAME;
}

static enum wire_decode_result check_message(wire_decoder *d, wire_msg *m) {
    const msgpack_object *r = m->root;
    const msgpack_object *o;
    switch (m->t) {
    case WIRE_HELLO:
        return check_hello(d, m);
    case WIRE_HELLO_ACK:
        if (!(m->u.hello_ack.mac = get_bin(map_get(r, "mac"), WIRE_MAC_LEN)))
            return fail(d, "HELLO_ACK: 'mac' missing or not %d bytes of bin", WIRE_MAC_LEN);
        m->u.hello_ack.last_seq = 0;
        o = map_get(r, "last_seq");
        if (o && !get_uint(o, &m->u.hello_ack.last_seq))
            return fail(d, "HELLO_ACK: 'last_seq' is not a non-negative integer");
        return WIRE_FRAME;
    case WIRE_SERIES_DEF:
        return check_series_def(d, m);
    case WIRE_SAMPLES:
        return check_samples(d, m);
    case WIRE_ACK:
        if (!get_uint(map_get(r, "ack"), &m->u.ack.ack))
            return fail(d, "ACK: 'ack' missing or not a non-negative integer");
        return WIRE_FRAME;
    case WIRE_COMMAND:
        if (!get_str(map_get(r, "id"), &m->u.command.id) || m->u.command.id.len == 0 ||
            m->u.command.id.len > 128)
            return fail(d, "COMMAND: 'id' missing or not a 1-128 byte string");
        if (!get_str(map_get(r, "action"), &m->u.command.action) || m->u.command.action.len == 0 ||
            m->u.command.action.len > 64)
            return fail(d, "COMMAND: 'action' missing or not a 1-64 byte string");
        o = map_get(r, "args");
        if (o && o->type != MSGPACK_OBJECT_MAP && o->type != MSGPACK_OBJECT_NIL)
            return fail(d, "COMMAND: 'args' is not a map");
        m->u.command.args = (o && o->type == MSGPACK_OBJECT_MAP) ? o : NULL;
        m->u.command.workload.p = "";
        m->u.command.workload.len = 0;
        m->u.command.fence = 0;
        o = map_get(r, "fence");
        if (o && o->type != MSGPACK_OBJECT_NIL) {
            if (o->type != MSGPACK_OBJECT_MAP)
                return fail(d, "COMMAND: 'fence' is not a map {workload, token}");
            if (!get_str(map_get(o, "workload"), &m->u.command.workload) ||
                !wire_workload_valid(m->u.command.workload.p, m->u.command.workload.len))
                return fail(d,
                            "COMMAND: 'fence.workload' is not 1-%d characters of "
                            "[A-Za-z0-9._-]",
                            WIRE_WORKLOAD_MAX);
            if (!get_uint(map_get(o, "token"), &m->u.command.fence))
                return fail(d, "COMMAND: 'fence.token' missing or not a non-negative integer");
        }
        return WIRE_FRAME;
    case WIRE_COMMAND_RESULT:
        if (!get_str(map_get(r, "id"), &m->u.command_result.id) ||
            m->u.command_result.id.len == 0 || m->u.command_result.id.len > 128)
            return fail(d, "COMMAND_RESULT: 'id' missing or not a 1-128 byte string");
        o = map_get(r, "ok");
        if (!o || o->type != MSGPACK_OBJECT_BOOLEAN)
            return fail(d, "COMMAND_RESULT: 'ok' missing or not a boolean");
        m->u.command_result.ok = o->via.boolean;
        m->u.command_result.error.p = "";
        m->u.command_result.error.len = 0;
        o = map_get(r, "error");
        if (o && o->type != MSGPACK_OBJECT_NIL && !get_str(o, &m->u.command_result.error))
            return fail(d, "COMMAND_RESULT: 'error' is not a string");
        o = map_get(r, "result");
        if (o && o->type != MSGPACK_OBJECT_MAP && o->type != MSGPACK_OBJECT_NIL)
            return fail(d, "COMMAND_RESULT: 'result' is not a map");
        m->u.command_result.result = (o && o->type == MSGPACK_OBJECT_MAP) ? o : NULL;
        return WIRE_FRAME;
    case WIRE_HEARTBEAT:
        memset(&m->u.heartbeat, 0, sizeof m->u.heartbeat);
        o = map_get(r, "ts");
        if (o && !get_int(o, &m->u.heartbeat.ts_ms))
            return fail(d, "HEARTBEAT: 'ts' is not an integer");
        o = map_get(r, "spool_drops");
        if (o && !get_uint(o, &m->u.heartbeat.spool_drops))
            return fail(d, "HEARTBEAT: 'spool_drops' is not a non-negative integer");
        o = map_get(r, "queued");
        if (o && !get_uint(o, &m->u.heartbeat.queued_bytes))
            return fail(d, "HEARTBEAT: 'queued' is not a non-negative integer");
        return WIRE_FRAME;
    }
    return fail(d, "unknown message type %d", (int)m->t);
}

/* Walks the msgpack bytes before msgpack-c unpacks them: msgpack-c allocates a container's
 * declared element count up front, so a 10-byte frame claiming 2^32 elements would ask for
 * 64 GB. Every element needs at least one byte, so the outstanding element count may never
 * exceed the bytes left; nesting is limited to JSON_MAX_DEPTH. Returns 0, or -1 with the
 * reason in why. */
static int scan_msgpack(const uint8_t *p, size_t len, const char **why) {
    uint64_t stack[JSON_MAX_DEPTH + 2];
    int depth = 0;
    uint64_t outstanding = 1;
    size_t pos = 0;
    stack[0] = 1;
    while (depth >= 0) {
        if (stack[depth] == 0) {
            depth--;
            continue;
        }
        if (pos >= len) {
            *why = "truncated";
            return -1;
        }
        stack[depth]--;
        outstanding--;
        uint8_t b = p[pos++];
        uint64_t skip = 0, push = 0;
        int container = 0;
        size_t lenbytes = 0;
        if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
            skip = 0;
        } else if (b >= 0x80 && b <= 0x8f) {
            container = 1;
            push = 2 * (uint64_t)(b & 0x0f);
        } else if (b >= 0x90 && b <= 0x9f) {
            container = 1;
            push = b & 0x0f;
        } else if (b >= 0xa0 && b <= 0xbf) {
            skip = b & 0x1f;
        } else {
            switch (b) {
            case 0xc4:
            case 0xd9:
                lenbytes = 1;
                break; /* bin8, str8 */
            case 0xc5:
            case 0xda:
                lenbytes = 2;
                break; /* bin16, str16 */
            case 0xc6:
            case 0xdb:
                lenbytes = 4;
                break; /* bin32, str32 */
            case 0xc7:
                lenbytes = 1;
                skip = 1;
                break; /* ext8 (+type) */
            case 0xc8:
                lenbytes = 2;
                skip = 1;
                break;
            case 0xc9:
                lenbytes = 4;
                skip = 1;
                break;
            case 0xca:
                skip = 4;
                break;
            case 0xcb:
                skip = 8;
                break;
            case 0xcc:
            case 0xd0:
                skip = 1;
                break;
            case 0xcd:
            case 0xd1:
                skip = 2;
                break;
            case 0xce:
            case 0xd2:
                skip = 4;
                break;
            case 0xcf:
            case 0xd3:
                skip = 8;
                break;
            case 0xd4:
                skip = 2;
                break;
            case 0xd5:
                skip = 3;
                break;
            case 0xd6:
                skip = 5;
                break;
            case 0xd7:
                skip = 9;
                break;
            case 0xd8:
                skip = 17;
                break;
            case 0xdc:
            case 0xde:
                container = 1;
                lenbytes = 2;
                break;
            case 0xdd:
            case 0xdf:
                container = 1;
                lenbytes = 4;
                break;
            default:
                *why = "malformed";
                return -1;
            }
            if (lenbytes) {
                if (len - pos < lenbytes) {
                    *why = "truncated";
                    return -1;
                }
                uint64_t n = 0;
                for (size_t i = 0; i < lenbytes; i++)
                    n = (n << 8) | p[pos + i];
                pos += lenbytes;
                if (container)
                    push = (b == 0xde || b == 0xdf) ? 2 * n : n;
                else
                    skip += n;
            }
        }
        if (container) {
            outstanding += push;
            if (outstanding > len - pos) {
                *why = "a container claims more elements than the frame holds";
                return -1;
            }
            if (push > 0) {
                if (depth + 1 > JSON_MAX_DEPTH) {
                    *why = "nesting deeper than 32 levels";
                    return -1;
                }
                stack[++depth] = push;
            }
        } else {
            if (skip > len - pos) {
                *why = "truncated";
                return -1;
            }
            pos += skip;
        }
    }
    if (pos < len) {
        *why = "extra";
        return (int)(len - pos);
    }
    return 0;
}

enum wire_decode_result wire_decoder_next(wire_decoder *d, wire_msg *m) {
    if (d->failed) return WIRE_ERROR;
    size_t have = d->end - d->start;
    if (have < 4) return WIRE_NEED_MORE;
    const uint8_t *h = d->buf + d->start;
    size_t len = ((size_t)h[0] << 24) | ((size_t)h[1] << 16) | ((size_t)h[2] << 8) | h[3];
    if (len > d->max_frame)
        return fail(d, "frame length %zu exceeds the maximum of %zu bytes", len, d->max_frame);
    if (len == 0) return fail(d, "empty frame (length 0)");
    if (have < 4 + len) return WIRE_NEED_MORE;

    const char *payload = (const char *)h + 4;
    size_t off = 0;
    const char *why = NULL;
    int sc = scan_msgpack(h + 4, len, &why);
    if (sc > 0) return fail(d, "%d bytes after the msgpack map inside a frame of %zu", sc, len);
    if (sc < 0 && strcmp(why, "truncated") == 0)
        return fail(d, "frame of %zu bytes holds a truncated msgpack value", len);
    if (sc < 0 && strcmp(why, "malformed") == 0)
        return fail(d, "malformed msgpack in a frame of %zu bytes", len);
    if (sc < 0) return fail(d, "malformed msgpack in a frame of %zu bytes: %s", len, why);
    msgpack_zone_clear(&d->zone);
    msgpack_unpack_return ur = msgpack_unpack(payload, len, &off, &d->zone, &d->root);
    switch (ur) {
    case MSGPACK_UNPACK_SUCCESS:
        break;
    case MSGPACK_UNPACK_EXTRA_BYTES:
        return fail(d, "%zu bytes after the msgpack map inside a frame of %zu", len - off, len);
    case MSGPACK_UNPACK_CONTINUE:
        return fail(d, "frame of %zu bytes holds a truncated msgpack value", len);
    case MSGPACK_UNPACK_NOMEM_ERROR:
        return fail(d, "out of memory decoding a frame of %zu bytes", len);
    default:
        return fail(d, "malformed msgpack in a frame of %zu bytes", len);
    }
    d->start += 4 + len;
    memset(m, 0, sizeof *m);
    m->frame_bytes = 4 + len;
    m->root = &d->root;
    if (d->root.type != MSGPACK_OBJECT_MAP) return fail(d, "frame does not hold a msgpack map");
    uint64_t v, t;
    if (!get_uint(map_get(m->root, "v"), &v))
        return fail(d, "'v' (protocol version) missing or not an unsigned integer");
    if (v != WIRE_VERSION)
        return fail(d, "unsupported protocol version %llu (this side speaks %d)",
                    (unsigned long long)v, WIRE_VERSION);
    if (!get_uint(map_get(m->root, "t"), &t))
        return fail(d, "'t' (message type) missing or not an unsigned integer");
    if (t < 1 || t > WIRE_TYPE_MAX)
        return fail(d, "unknown message type %llu", (unsigned long long)t);
    if (!get_uint(map_get(m->root, "seq"), &m->seq))
        return fail(d, "%s: 'seq' missing or not an unsigned integer", wire_type_name((int)t));
    m->v = (int)v;
    m->t = (enum wire_type)t;
    return check_message(d, m);
}

/* ---- accessors --------------------------------------------------------------------------- */

int wire_series_def_get(const wire_msg *m, uint32_t i, uint32_t *id,
                        const msgpack_object **labels) {
    if (m->t != WIRE_SERIES_DEF || i >= m->u.series_def.n) return -EINVAL;
    const msgpack_object *e = &m->u.series_def.defs->via.array.ptr[i];
    *id = (uint32_t)e->via.array.ptr[0].via.u64;
    *labels = &e->via.array.ptr[1];
    return 0;
}

int wire_samples_run(const wire_msg *m, uint32_t i, uint32_t *id, int64_t *ts, double *v,
                     size_t cap, size_t *n) {
    if (m->t != WIRE_SAMPLES || i >= m->u.samples.nruns) return -EINVAL;
    const msgpack_object *f = m->u.samples.runs->via.array.ptr[i].via.array.ptr;
    uint32_t cnt = f[2].via.array.size;
    *id = (uint32_t)f[0].via.u64;
    *n = cnt;
    if (!ts && !v) return 0;
    if (cap < cnt) return -ENOBUFS;
    int64_t t = f[1].type == MSGPACK_OBJECT_NEGATIVE_INTEGER ? f[1].via.i64 : (int64_t)f[1].via.u64;
    const msgpack_object *dl = f[2].via.array.ptr, *vl = f[3].via.array.ptr;
    for (uint32_t k = 0; k < cnt; k++) {
        t += (int64_t)dl[k].via.u64;
        if (ts) ts[k] = t;
        if (v) v[k] = vl[k].type == MSGPACK_OBJECT_FLOAT64 ? vl[k].via.f64 : number_of(&vl[k]);
    }
    return 0;
}

static cJSON *to_json_depth(const msgpack_object *o, int depth) {
    static const char hex[] = "0123456789abcdef";
    if (depth > JSON_MAX_DEPTH) return NULL;
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return cJSON_CreateNull();
    case MSGPACK_OBJECT_BOOLEAN:
        return cJSON_CreateBool(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        return cJSON_CreateNumber((double)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return cJSON_CreateNumber((double)o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return cJSON_CreateNumber(o->via.f64);
    case MSGPACK_OBJECT_STR: {
        char *s = malloc((size_t)o->via.str.size + 1);
        if (!s) return NULL;
        memcpy(s, o->via.str.ptr, o->via.str.size);
        s[o->via.str.size] = 0;
        cJSON *j = cJSON_CreateString(s);
        free(s);
        return j;
    }
    case MSGPACK_OBJECT_BIN: {
        char *s = malloc((size_t)o->via.bin.size * 2 + 1);
        if (!s) return NULL;
        for (uint32_t i = 0; i < o->via.bin.size; i++) {
            s[2 * i] = hex[(uint8_t)o->via.bin.ptr[i] >> 4];
            s[2 * i + 1] = hex[(uint8_t)o->via.bin.ptr[i] & 15];
        }
        s[o->via.bin.size * 2] = 0;
        cJSON *j = cJSON_CreateString(s);
        free(s);
        return j;
    }
    case MSGPACK_OBJECT_ARRAY: {
        cJSON *a = cJSON_CreateArray();
        if (!a) return NULL;
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            cJSON *c = to_json_depth(&o->via.array.ptr[i], depth + 1);
            if (!c) {
                cJSON_Delete(a);
                return NULL;
            }
            cJSON_AddItemToArray(a, c);
        }
        return a;
    }
    case MSGPACK_OBJECT_MAP: {
        cJSON *m = cJSON_CreateObject();
        if (!m) return NULL;
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const msgpack_object_kv *kv = &o->via.map.ptr[i];
            if (kv->key.type != MSGPACK_OBJECT_STR) {
                cJSON_Delete(m);
                return NULL;
            }
            cJSON *c = to_json_depth(&kv->val, depth + 1);
            char *k = malloc((size_t)kv->key.via.str.size + 1);
            if (!c || !k) {
                cJSON_Delete(c);
                free(k);
                cJSON_Delete(m);
                return NULL;
            }
            memcpy(k, kv->key.via.str.ptr, kv->key.via.str.size);
            k[kv->key.via.str.size] = 0;
            cJSON_AddItemToObject(m, k, c);
            free(k);
        }
        return m;
    }
    default:
        return NULL;
    }
}

struct cJSON *wire_object_to_json(const msgpack_object *o) {
    return to_json_depth(o, 0);
}
