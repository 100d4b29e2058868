/* wire.h: the agent <-> control plane wire protocol: framing, message encoding and an
 * incremental, allocation-bounded frame decoder (see shared/PROTOCOL.md for the bytes).
 *
 * A frame is a 4-byte big-endian payload length followed by exactly one msgpack map. Every
 * map carries "v" (protocol version), "t" (message type) and "seq". Pure code: no I/O, no
 * logging; errors are returned and described in a caller's buffer. */
#ifndef TIDE_WIRE_H
#define TIDE_WIRE_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#define WIRE_VERSION 1
/* Default largest payload accepted or produced (the 4-byte header not counted). */
#define WIRE_MAX_FRAME_DEFAULT (4u << 20)
/* Absolute cap for any configured maximum. */
#define WIRE_MAX_FRAME_LIMIT (64u << 20)
/* Largest payload a control plane accepts before the peer authenticated: a HELLO is ~150
 * bytes, so unauthenticated peers cannot make it reserve megabytes each. */
#define WIRE_HANDSHAKE_MAX_FRAME 4096u
#define WIRE_NONCE_LEN 32
#define WIRE_MAC_LEN 32    /* HMAC-SHA256 */
#define WIRE_MAX_LABELS 64 /* labels per series, "__name__" included */
/* Workload names in a COMMAND's fence (the control plane's names are shorter). */
#define WIRE_WORKLOAD_MAX 127

enum wire_type {
    WIRE_HELLO = 1,
    WIRE_HELLO_ACK = 2,
    WIRE_SERIES_DEF = 3,
    WIRE_SAMPLES = 4,
    WIRE_ACK = 5,
    WIRE_COMMAND = 6,
    WIRE_COMMAND_RESULT = 7,
    WIRE_HEARTBEAT = 8,
};
#define WIRE_TYPE_MAX 8

/* "HELLO", "SAMPLES", ...; "?" for anything else. */
const char *wire_type_name(int t);

/* ---- encoding ---------------------------------------------------------------------------- */

/* A growable byte buffer holding zero or more complete frames ready to write. */
typedef struct wire_buf {
    uint8_t *data;
    size_t len; /* bytes held */
    size_t cap;
    size_t frame_start; /* offset of the frame being built */
    int oom;            /* an allocation failed while building the current frame */
    msgpack_packer pk;  /* packs into this buffer */
} wire_buf;

void wire_buf_init(wire_buf *b);
void wire_buf_fini(wire_buf *b);
/* Drops the first n bytes (written to the socket). */
void wire_buf_consume(wire_buf *b, size_t n);

/* Starts a frame: reserves the length and opens a map of `nfields` entries of which the first
 * three (v, t, seq) are written here; the caller packs the remaining nfields-3 key/value
 * pairs with b->pk (or the wire_pack_* helpers) and then calls wire_frame_end(). */
void wire_frame_begin(wire_buf *b, enum wire_type t, uint64_t seq, uint32_t nfields);
/* Finishes the frame: fills in its length. Returns the frame's total size (header included),
 * -ENOMEM if an allocation failed (the partial frame is removed), or -EMSGSIZE if the payload
 * exceeds max_frame (removed too). */
long wire_frame_end(wire_buf *b, size_t max_frame);
/* Removes a frame being built (after a packing error of the caller's own). */
void wire_frame_abort(wire_buf *b);

void wire_pack_str(msgpack_packer *pk, const char *s);
void wire_pack_kstr(msgpack_packer *pk, const char *key, const char *val);
void wire_pack_kuint(msgpack_packer *pk, const char *key, uint64_t val);
void wire_pack_kbin(msgpack_packer *pk, const char *key, const void *data, size_t len);
/* Packs a cJSON value as msgpack (objects -> maps, arrays, strings, numbers as int64 when
 * integral else float64, bools, null). Nesting deeper than 32 levels is packed as nil. */
struct cJSON;
void wire_pack_json(msgpack_packer *pk, const struct cJSON *j);

/* SAMPLES builder: one frame holding runs of samples per series (series id, base timestamp,
 * timestamp deltas, values), NOT a map per sample. Usage:
 *   wire_samples_begin(b, seq, nseries); then for each series
 *   wire_samples_series(b, id, base_ts_ms, ts, values, n); then wire_frame_end(). */
void wire_samples_begin(wire_buf *b, uint64_t seq, uint32_t nseries);
/* ts must be ascending (deltas >= 0); returns 0 or -EINVAL when not. */
int wire_samples_series(wire_buf *b, uint32_t id, const int64_t *ts_ms, const double *v,
                        uint32_t n);

/* SERIES_DEF builder: wire_series_def_begin(b, seq, n), then n times wire_series_def_add()
 * (labels: "k1","v1",...,NULL; the metric goes in as "__name__"), then wire_frame_end(). */
void wire_series_def_begin(wire_buf *b, uint64_t seq, uint32_t n);
void wire_series_def_add(wire_buf *b, uint32_t id, const char *metric, const char *const *labels);

/* One-call encoders of the other messages. Each appends one frame and returns its size, or
 * -ENOMEM / -EMSGSIZE (nothing appended). The control plane's HELLO also announces max_frame
 * as the largest payload it accepts. */
long wire_enc_hello_challenge(wire_buf *b, uint64_t seq, const char *version,
                              const uint8_t nonce[WIRE_NONCE_LEN], uint64_t heartbeat_ms,
                              size_t max_frame);
long wire_enc_hello_agent(wire_buf *b, uint64_t seq, const char *node, const char *version,
                          const uint8_t nonce[WIRE_NONCE_LEN], const uint8_t mac[WIRE_MAC_LEN],
                          size_t max_frame);
long wire_enc_hello_ack(wire_buf *b, uint64_t seq, const uint8_t mac[WIRE_MAC_LEN],
                        uint64_t last_seq, size_t max_frame);
long wire_enc_ack(wire_buf *b, uint64_t seq, uint64_t ack, size_t max_frame);
long wire_enc_command(wire_buf *b, uint64_t seq, const char *id, const char *action,
                      const struct cJSON *args, size_t max_frame);
/* The same with a fence (PROTOCOL.md): workload (wire_workload_valid) and its fencing token;
 * workload NULL sends no fence (as wire_enc_command). */
long wire_enc_command_fenced(wire_buf *b, uint64_t seq, const char *id, const char *action,
                             const struct cJSON *args, const char *workload, uint64_t token,
                             size_t max_frame);
long wire_enc_command_result(wire_buf *b, uint64_t seq, const char *id, int ok, const char *error,
                             const struct cJSON *result, size_t max_frame);
long wire_enc_heartbeat(wire_buf *b, uint64_t seq, int64_t ts_ms, uint64_t spool_drops,
                        uint64_t queued_bytes, size_t max_frame);

/* Node names: 1..63 bytes of [A-Za-z0-9._-]. 1 valid, 0 not. */
int wire_node_valid(const char *p, size_t len);
/* Workload names in a fence: 1..WIRE_WORKLOAD_MAX bytes of [A-Za-z0-9._-]. 1 valid, 0 not. */
int wire_workload_valid(const char *p, size_t len);

/* ---- authentication ---------------------------------------------------------------------- */

/* mac = HMAC-SHA256(key = token, msg = role || 0x00 || nonce_a || nonce_b || node).
 * The agent proves with role "agent", nonce_a = the control plane's challenge, nonce_b = its own;
 * the control plane answers with role "controlplane" and the nonces swapped. 0 or -EIO. */
int wire_auth_mac(const void *token, size_t token_len, const char *role,
                  const uint8_t nonce_a[WIRE_NONCE_LEN], const uint8_t nonce_b[WIRE_NONCE_LEN],
                  const char *node, uint8_t mac[WIRE_MAC_LEN]);
/* Constant-time comparison of two MACs: 1 equal, 0 not. */
int wire_mac_equal(const uint8_t a[WIRE_MAC_LEN], const uint8_t b[WIRE_MAC_LEN]);
/* Fills a nonce from the kernel's random source. 0 or -errno. */
int wire_nonce(uint8_t nonce[WIRE_NONCE_LEN]);

/* Reads a token file: strips one trailing newline; refuses an empty token, one shorter than
 * 16 bytes, or a file readable by others (mode & 0004). 0 or -errno with err naming the file. */
int wire_token_load(const char *path, char **token, size_t *len, char *err, size_t errlen);

/* ---- decoding ---------------------------------------------------------------------------- */

/* A decoded message. Strings and binaries point into the decoder's buffer and are valid
 * until the next wire_decoder_next(), _reserve() or _feed() call: copy out what must be kept. */
typedef struct wire_str {
    const char *p; /* not NUL-terminated */
    uint32_t len;
} wire_str;

typedef struct wire_msg {
    int v;
    enum wire_type t;
    uint64_t seq;
    size_t frame_bytes;         /* header + payload */
    const msgpack_object *root; /* the whole map */
    union {
        struct {              /* HELLO: from the control plane (challenge) or the agent (proof) */
            wire_str role;    /* "controlplane" | "agent" */
            wire_str node;    /* agent only */
            wire_str version; /* software version, free text */
            const uint8_t *nonce;  /* WIRE_NONCE_LEN bytes */
            const uint8_t *mac;    /* agent only: WIRE_MAC_LEN bytes, else NULL */
            uint64_t heartbeat_ms; /* control plane: heartbeat interval it expects (0 = none) */
            uint64_t max_frame;    /* control plane: largest payload it accepts (0 = unsaid) */
        } hello;
        struct {
            const uint8_t *mac; /* WIRE_MAC_LEN */
            uint64_t last_seq;  /* highest SAMPLES seq the control plane holds for this node */
        } hello_ack;
        struct {
            const msgpack_object *defs; /* array of [id, {label: value, ...}] */
            uint32_t n;
        } series_def;
        struct {
            const msgpack_object *runs; /* array of [id, base_ts, [deltas], [values]] */
            uint32_t nruns;
            uint64_t nsamples; /* total across runs */
        } samples;
        struct {
            uint64_t ack;
        } ack;
        struct {
            wire_str id;
            wire_str action;
            const msgpack_object *args; /* a map, or NULL when absent */
            wire_str workload;          /* the fence's workload; len 0: no fence */
            uint64_t fence;             /* its fencing token (0 with no fence) */
        } command;
        struct {
            wire_str id;
            int ok;
            wire_str error;               /* len 0 when absent */
            const msgpack_object *result; /* a map, or NULL */
        } command_result;
        struct {
            int64_t ts_ms;
            uint64_t spool_drops;  /* batches the agent dropped unsent, since it started */
            uint64_t queued_bytes; /* unacknowledged bytes it holds */
        } heartbeat;
    } u;
} wire_msg;

/* Series definition i of a SERIES_DEF message: its id, and a visitor over labels. */
int wire_series_def_get(const wire_msg *m, uint32_t i, uint32_t *id, const msgpack_object **labels);
/* Run i of a SAMPLES message: id, sample count; with ts/v non-NULL (room for *n) also the
 * absolute timestamps and values. Returns 0, or -ENOBUFS if cap < the run's length. */
int wire_samples_run(const wire_msg *m, uint32_t i, uint32_t *id, int64_t *ts, double *v,
                     size_t cap, size_t *n);

/* Converts a msgpack object to cJSON (maps with string keys -> objects, bin -> lowercase
 * hex string). Returns NULL on allocation failure or for depth > 32. Caller frees. */
struct cJSON *wire_object_to_json(const msgpack_object *o);

enum wire_decode_result {
    WIRE_NEED_MORE = 0, /* no complete frame buffered yet */
    WIRE_FRAME = 1,     /* *msg holds a frame */
    WIRE_ERROR = -1,    /* the stream is unusable: close the connection; err says why */
};

typedef struct wire_decoder {
    uint8_t *buf;
    size_t cap, start, end; /* bytes [start, end) are buffered and not yet decoded */
    size_t max_frame;
    msgpack_zone zone;
    msgpack_object root;
    int failed;
    char err[160];
} wire_decoder;

/* max_frame: the largest payload accepted (<= WIRE_MAX_FRAME_LIMIT). 0 or -ENOMEM. */
int wire_decoder_init(wire_decoder *d, size_t max_frame);
/* Frees the buffers; accepts a zeroed (never initialised) or already finished decoder. */
void wire_decoder_fini(wire_decoder *d);
/* Space for a read: returns a pointer to at least `want` free bytes (grows the buffer,
 * never beyond one maximum frame plus header), NULL on allocation failure. *avail gets the
 * room actually available. */
uint8_t *wire_decoder_reserve(wire_decoder *d, size_t want, size_t *avail);
/* Records that n bytes were read into the reserved space. */
void wire_decoder_consumed(wire_decoder *d, size_t n);
/* Copies bytes in (tests, fuzzing); 0 or -ENOMEM. */
int wire_decoder_feed(wire_decoder *d, const void *data, size_t len);
/* Decodes the next buffered frame. Returns WIRE_FRAME with *msg filled, WIRE_NEED_MORE, or
 * WIRE_ERROR with the reason in d->err (and every later call fails the same way). */
enum wire_decode_result wire_decoder_next(wire_decoder *d, wire_msg *msg);
/* Bytes buffered but not yet decoded (a stalled half frame shows here). */
size_t wire_decoder_pending(const wire_decoder *d);
/* Changes the largest payload accepted from now on (e.g. small until a peer authenticated). */
void wire_decoder_set_max(wire_decoder *d, size_t max_frame);
/* Gives back buffer memory above `keep` bytes when nothing is pending (idle connections). */
void wire_decoder_shrink(wire_decoder *d, size_t keep);

#endif
