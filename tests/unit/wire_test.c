/* wire_test.c: framing, every message type round trip, decoder errors and incremental feeding
 * of shared/wire. */
#include "test.h"
#include "wire.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static wire_decoder dec;

/* Feeds buf one byte at a time and expects exactly one frame at the very end. */
static int decode_bytewise(const uint8_t *p, size_t n, wire_msg *m) {
    for (size_t i = 0; i < n; i++) {
        if (wire_decoder_feed(&dec, p + i, 1) < 0) return -100;
        int r = wire_decoder_next(&dec, m);
        if (i + 1 < n && r != WIRE_NEED_MORE) return -200 - (int)i;
        if (i + 1 == n) return r;
    }
    return -300;
}

TEST(wire_samples_round_trip_bytewise) {
    wire_buf b;
    wire_buf_init(&b);
    int64_t ts[5] = {1700000000000, 1700000001000, 1700000001000, 1700000002500, 1700000009000};
    double v[5] = {1.5, -2.25, 0, 1e300, 42};
    int64_t ts2[1] = {-5};
    double v2[1] = {7};
    wire_samples_begin(&b, 77, 2);
    T_EQ_INT(wire_samples_series(&b, 3, ts, v, 5), 0);
    T_EQ_INT(wire_samples_series(&b, 4000000000u, ts2, v2, 1), 0);
    long n = wire_frame_end(&b, WIRE_MAX_FRAME_DEFAULT);
    T_ASSERT(n > 0 && (size_t)n == b.len);
    /* compact: well under 16 bytes per sample (5+1 samples, header and keys included) */
    T_ASSERT(n < 110);
    T_EQ_INT(wire_decoder_init(&dec, 1024), 0);
    wire_msg m;
    T_EQ_INT(decode_bytewise(b.data, b.len, &m), WIRE_FRAME);
    T_EQ_INT(m.t, WIRE_SAMPLES);
    T_EQ_INT(m.seq, 77);
    T_EQ_INT(m.u.samples.nruns, 2);
    T_EQ_INT(m.u.samples.nsamples, 6);
    uint32_t id;
    int64_t ots[8];
    double ov[8];
    size_t cnt;
    T_EQ_INT(wire_samples_run(&m, 0, &id, ots, ov, 8, &cnt), 0);
    T_EQ_INT(id, 3);
    T_EQ_INT(cnt, 5);
    for (int i = 0; i < 5; i++) {
        T_EQ_INT(ots[i], ts[i]);
        T_ASSERT(ov[i] == v[i]);
    }
    T_EQ_INT(wire_samples_run(&m, 1, &id, ots, ov, 8, &cnt), 0);
    T_EQ_INT(id, 4000000000u);
    T_EQ_INT(ots[0], -5);
    T_EQ_INT(wire_samples_run(&m, 0, &id, ots, ov, 2, &cnt), -ENOBUFS);
    T_EQ_INT(wire_decoder_next(&dec, &m), WIRE_NEED_MORE);
    T_EQ_INT(wire_decoder_pending(&dec), 0);
    /* descending timestamps are refused by the encoder */
    int64_t bad[2] = {10, 5};
    wire_samples_begin(&b, 78, 1);
    T_EQ_INT(wire_samples_series(&b, 1, bad, v, 2), -EINVAL);
    wire_frame_abort(&b);
    wire_decoder_fini(&dec);
    wire_buf_fini(&b);
}

TEST(wire_all_types_round_trip) {
    wire_buf b;
    wire_buf_init(&b);
    uint8_t nonce[WIRE_NONCE_LEN], mac[WIRE_MAC_LEN];
    memset(nonce, 7, sizeof nonce);
    memset(mac, 9, sizeof mac);
    cJSON *args = cJSON_Parse("{\"server\":\"web1\",\"deadline_ms\":5000,\"f\":0.5,"
                              "\"nested\":{\"a\":[1,true,null,\"x\"]}}");
    const char *labels[] = {"pod", "web-1", "ns", "prod", NULL};
    T_ASSERT(wire_enc_hello_challenge(&b, 1, "cp 1", nonce, 5000, 1 << 20) > 0);
    T_ASSERT(wire_enc_hello_agent(&b, 1, "node-a.1", "agent 1", nonce, mac, 1 << 20) > 0);
    T_ASSERT(wire_enc_hello_ack(&b, 2, mac, 99, 1 << 20) > 0);
    wire_series_def_begin(&b, 3, 1);
    wire_series_def_add(&b, 12, "cpu_usage", labels);
    T_ASSERT(wire_frame_end(&b, 1 << 20) > 0);
    T_ASSERT(wire_enc_ack(&b, 4, 123456, 1 << 20) > 0);
    T_ASSERT(wire_enc_command(&b, 5, "c-1", "drain", args, 1 << 20) > 0);
    T_ASSERT(wire_enc_command_result(&b, 6, "c-1", 0, "no such server", args, 1 << 20) > 0);
    T_ASSERT(wire_enc_heartbeat(&b, 7, 1700000000000, 3, 4096, 1 << 20) > 0);
    T_EQ_INT(wire_decoder_init(&dec, 1 << 20), 0);
    T_EQ_INT(wire_decoder_feed(&dec, b.data, b.len), 0);
    wire_msg m;
    T_EQ_INT(wire_decoder_next(&dec, &m), WIRE_FRAME);
    T_EQ_INT(m.t, WIRE_HELLO);
    T_ASSERT(m.u.hello.role.len == 12 && m.u.hello.mac == NULL);
    T_EQ_INT(m.u.hello.heartbeat_ms, 5000);
    T_EQ_INT(m.u.hello.max_frame, 1 << 20);
    T_ASSERT(memcmp(m.u.hello.nonce, nonce, WIRE_NONCE_LEN) == 0);
    T_EQ_INT(wire_decoder_next(&dec, &m), WIRE_FRAME);
    T_ASSERT(m.u.hello.node.len == 8 && memcmp(m.u.hello.node.p, "node-a.1", 8) == 0);
    T_ASSERT(m.u.hello.mac && memcmp(m.u.hello.mac, mac, WIRE_MAC_LEN) == 0);
    T_EQ_INT(wire_decoder_next(&dec, &m), WIRE_FRAME);
    T_EQ_INT(m.t, WIRE_HELLO_ACK);
    T_EQ_INT(m.u.hello_ack.last_seq, 99);
    T_EQ_INT(wire_decoder_next(&dec, &m), WIRE_FRAME);
    T_EQ_INT(m.t, WIRE_SERIES_DEF);
    uint32_t id;
    const msgpack_object *l;
    T_EQ_INT(wire_series_def_get(&m, 0, &id, &l), 0);
    T_EQ_INT(id, 12);
    T_EQ_INT(l->via.map.size, 3);
    T_EQ_INT(wire_decoder_next(&dec, &m), WIRE_FRAME);
    T_EQ_INT(m.u.ack.ack, 123456);
    T_EQ_INT(wire_decoder_next(&dec, &m), WIRE_FRAME);
    T_EQ_INT(m.t, WIRE_COMMAND);
    cJSON *back = wire_object_to_json(m.u.command.args);
    T_ASSERT(back && cJSON_Compare(back, args, 1));
    cJSON_Delete(back);
    T_EQ_INT(wire_decoder_next(&dec, &m), WIRE_FRAME);
    T_EQ_INT(m.t, WIRE_COMMAND_RESULT);
    T_EQ_INT(m.u.command_result.ok, 0);
    T_ASSERT(m.u.command_result.error.len == 14);
    T_ASSERT(m.u.command_result.result != NULL);
    T_EQ_INT(wire_decoder_next(&dec, &m), WIRE_FRAME);
    T_EQ_INT(m.t, WIRE_HEARTBEAT);
    T_EQ_INT(m.seq, 7);
    T_EQ_INT(m.u.heartbeat.spool_drops, 3);
    T_EQ_INT(m.u.heartbeat.queued_bytes, 4096);
    T_EQ_INT(wire_decoder_next(&dec, &m), WIRE_NEED_MORE);
    cJSON_Delete(args);
    wire_decoder_fini(&dec);
    wire_buf_fini(&b);
}

/* Builds a raw frame around a msgpack payload written by fn. */
static size_t raw_frame(uint8_t *out, const char *payload, size_t n) {
    out[0] = (uint8_t)(n >> 24);
    out[1] = (uint8_t)(n >> 16);
    out[2] = (uint8_t)(n >> 8);
    out[3] = (uint8_t)n;
    memcpy(out + 4, payload, n);
    return n + 4;
}

static const char *decode_error(const uint8_t *p, size_t n, size_t max) {
    static char err[sizeof dec.err];
    wire_msg m;
    wire_decoder_init(&dec, max);
    wire_decoder_feed(&dec, p, n);
    int r = wire_decoder_next(&dec, &m);
    snprintf(err, sizeof err, "%s", r == WIRE_ERROR ? dec.err : r == WIRE_FRAME ? "FRAME" : "MORE");
    /* an error is sticky */
    if (r == WIRE_ERROR && wire_decoder_next(&dec, &m) != WIRE_ERROR)
        snprintf(err, sizeof err, "not sticky");
    wire_decoder_fini(&dec);
    return err;
}

TEST(wire_decoder_rejects_bad_frames) {
    uint8_t f[256];
    /* oversize length: refused from the header alone, before the body arrives */
    const uint8_t big[4] = {0x00, 0x10, 0x00, 0x00};
    T_EQ_STR(decode_error(big, 4, 1024), "frame length 1048576 exceeds the maximum of 1024 bytes");
    const uint8_t zero[4] = {0, 0, 0, 0};
    T_EQ_STR(decode_error(zero, 4, 1024), "empty frame (length 0)");
    /* malformed msgpack: 0xc1 is never used */
    size_t n = raw_frame(f, "\xc1", 1);
    T_EQ_STR(decode_error(f, n, 1024), "malformed msgpack in a frame of 1 bytes");
    /* not a map */
    n = raw_frame(f, "\x93\x01\x02\x03", 4);
    T_EQ_STR(decode_error(f, n, 1024), "frame does not hold a msgpack map");
    /* trailing bytes inside the frame */
    n = raw_frame(f, "\x80\x80", 2);
    T_EQ_STR(decode_error(f, n, 1024), "1 bytes after the msgpack map inside a frame of 2");
    /* truncated map inside a complete frame */
    n = raw_frame(f, "\x81\xa1v\xcd\x01", 5);
    T_EQ_STR(decode_error(f, n, 1024), "frame of 5 bytes holds a truncated msgpack value");
    /* a container claiming more elements than bytes left (msgpack-c would allocate 64 GB) */
    n = raw_frame(f, "\x81\xa1s\xdd\xff\xff\xff\xff\x00", 9);
    T_EQ_STR(decode_error(f, n, 1024), "malformed msgpack in a frame of 9 bytes: a container "
                                       "claims more elements than the frame holds");
    /* nesting beyond 32 levels */
    char deep[40];
    memset(deep, 0x91, 39);
    deep[39] = 0x01;
    n = raw_frame(f, deep, 40);
    T_EQ_STR(decode_error(f, n, 1024),
             "malformed msgpack in a frame of 40 bytes: nesting deeper than 32 levels");
    /* unknown version: {v:9, t:8, seq:1} */
    n = raw_frame(f, "\x83\xa1v\x09\xa1t\x08\xa3seq\x01", 12);
    T_EQ_STR(decode_error(f, n, 1024), "unsupported protocol version 9 (this side speaks 1)");
    /* unknown type */
    n = raw_frame(f, "\x83\xa1v\x01\xa1t\x63\xa3seq\x01", 12);
    T_EQ_STR(decode_error(f, n, 1024), "unknown message type 99");
    /* missing seq */
    n = raw_frame(f, "\x82\xa1v\x01\xa1t\x08", 7);
    T_EQ_STR(decode_error(f, n, 1024), "HEARTBEAT: 'seq' missing or not an unsigned integer");
    /* heartbeat ok with only the three common fields */
    n = raw_frame(f, "\x83\xa1v\x01\xa1t\x08\xa3seq\x01", 12);
    T_EQ_STR(decode_error(f, n, 1024), "FRAME");
    /* SERIES_DEF with 65 labels: refused (the control plane copies labels to its stack) */
    {
        wire_buf b;
        wire_buf_init(&b);
        const char *many[2 * 65 + 1];
        char names[65][16];
        for (int i = 0; i < 65; i++) {
            snprintf(names[i], sizeof names[i], "l%d", i);
            many[2 * i] = names[i];
            many[2 * i + 1] = "v";
        }
        many[130] = NULL;
        wire_series_def_begin(&b, 1, 1);
        wire_series_def_add(&b, 1, "m", many);
        T_ASSERT(wire_frame_end(&b, 1 << 20) > 0);
        T_EQ_STR(decode_error(b.data, b.len, 1 << 20),
                 "SERIES_DEF: entry 0 has 66 labels (at most 64)");
        wire_buf_fini(&b);
    }
    /* half a frame is "need more", not an error */
    T_EQ_STR(decode_error(f, n - 1, 1024), "MORE");
    /* SAMPLES with mismatched arrays: {v:1,t:4,seq:1,s:[[1,0,[0,1],[1.0]]]} */
    n = raw_frame(f, "\x84\xa1v\x01\xa1t\x04\xa3seq\x01\xa1s\x91\x94\x01\x00\x92\x00\x01\x91\x01",
                  23);
    T_EQ_STR(decode_error(f, n, 1024), "SAMPLES: run 0: 2 deltas but 1 values (need equal, >= 1)");
}

TEST(wire_decoder_many_frames_across_reads) {
    wire_buf b;
    wire_buf_init(&b);
    for (int i = 1; i <= 1000; i++)
        T_ASSERT(wire_enc_ack(&b, (uint64_t)i, (uint64_t)i * 3, 64) > 0);
    T_EQ_INT(wire_decoder_init(&dec, 64), 0);
    size_t off = 0;
    int got = 0;
    while (off < b.len) {
        size_t avail, chunk = 7;
        uint8_t *p = wire_decoder_reserve(&dec, chunk, &avail);
        T_ASSERT(p != NULL);
        if (chunk > b.len - off) chunk = b.len - off;
        if (chunk > avail) chunk = avail;
        memcpy(p, b.data + off, chunk);
        wire_decoder_consumed(&dec, chunk);
        off += chunk;
        wire_msg m;
        int r;
        while ((r = wire_decoder_next(&dec, &m)) == WIRE_FRAME) {
            got++;
            T_EQ_INT(m.seq, got);
            T_EQ_INT(m.u.ack.ack, (uint64_t)got * 3);
        }
        T_EQ_INT(r, WIRE_NEED_MORE);
    }
    T_EQ_INT(got, 1000);
    /* the buffer never grows beyond one maximum frame plus header */
    T_ASSERT(dec.cap <= 64 + 4);
    wire_decoder_fini(&dec);
    wire_buf_fini(&b);
}

TEST(wire_encoder_enforces_max_frame) {
    wire_buf b;
    wire_buf_init(&b);
    T_ASSERT(wire_enc_ack(&b, 1, 1, 1024) > 0);
    size_t before = b.len;
    cJSON *args = cJSON_CreateObject();
    char big[2000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    cJSON_AddStringToObject(args, "blob", big);
    T_EQ_INT(wire_enc_command(&b, 2, "id", "x", args, 1024), -EMSGSIZE);
    T_EQ_INT(b.len, before);
    cJSON_Delete(args);
    wire_buf_fini(&b);
}

TEST(wire_auth_mac_binds_role_nonces_node) {
    const char *tok = "0123456789abcdef-secret";
    uint8_t a[WIRE_NONCE_LEN], c[WIRE_NONCE_LEN], m1[WIRE_MAC_LEN], m2[WIRE_MAC_LEN];
    T_EQ_INT(wire_nonce(a), 0);
    T_EQ_INT(wire_nonce(c), 0);
    T_ASSERT(memcmp(a, c, WIRE_NONCE_LEN) != 0);
    T_EQ_INT(wire_auth_mac(tok, strlen(tok), "agent", a, c, "n1", m1), 0);
    T_EQ_INT(wire_auth_mac(tok, strlen(tok), "agent", a, c, "n1", m2), 0);
    T_ASSERT(wire_mac_equal(m1, m2));
    T_EQ_INT(wire_auth_mac(tok, strlen(tok), "controlplane", c, a, "n1", m2), 0);
    T_ASSERT(!wire_mac_equal(m1, m2));
    T_EQ_INT(wire_auth_mac(tok, strlen(tok), "agent", a, c, "n2", m2), 0);
    T_ASSERT(!wire_mac_equal(m1, m2));
    T_EQ_INT(wire_auth_mac("other-token-0000", 16, "agent", a, c, "n1", m2), 0);
    T_ASSERT(!wire_mac_equal(m1, m2));
    T_ASSERT(wire_node_valid("web-1.example_2", 15));
    T_ASSERT(!wire_node_valid("bad node", 8));
    T_ASSERT(!wire_node_valid("", 0));
}

TEST(wire_token_load_checks_file) {
    char path[] = "/tmp/tide-wire-test.XXXXXX";
    int fd = mkstemp(path);
    T_ASSERT(fd >= 0);
    T_ASSERT(write(fd, "short\n", 6) == 6);
    char err[256], *tok = NULL;
    size_t len;
    T_EQ_INT(wire_token_load(path, &tok, &len, err, sizeof err), -EINVAL);
    T_ASSERT(ftruncate(fd, 0) == 0 && lseek(fd, 0, SEEK_SET) == 0);
    T_ASSERT(write(fd, "0123456789abcdefXYZ\n", 20) == 20);
    T_EQ_INT(wire_token_load(path, &tok, &len, err, sizeof err), 0);
    T_EQ_INT(len, 19);
    T_EQ_STR(tok, "0123456789abcdefXYZ");
    free(tok);
    T_ASSERT(fchmod(fd, 0644) == 0);
    T_EQ_INT(wire_token_load(path, &tok, &len, err, sizeof err), -EPERM);
    T_ASSERT(strstr(err, "readable by others") != NULL);
    close(fd);
    unlink(path);
    T_ASSERT(wire_token_load(path, &tok, &len, err, sizeof err) == -ENOENT);
}

/* Issue 18: tokens of 16 identical bytes or spaces were accepted, and a token file that is a
 * FIFO blocked start-up forever with nothing logged. */
TEST(wire_token_load_refuses_weak_tokens_and_fifos) {
    char path[] = "/tmp/tide-wire-test.XXXXXX";
    int fd = mkstemp(path);
    T_ASSERT(fd >= 0);
    char err[256], *tok = NULL;
    size_t len;
    static const char *const weak[] = {"aaaaaaaaaaaaaaaa\n", "                \n",
                                       "abababababababababab\n", "\t \t \t \t \t \t \t \t \n"};
    for (size_t i = 0; i < sizeof weak / sizeof *weak; i++) {
        T_ASSERT(ftruncate(fd, 0) == 0 && lseek(fd, 0, SEEK_SET) == 0);
        T_ASSERT(write(fd, weak[i], strlen(weak[i])) == (ssize_t)strlen(weak[i]));
        T_EQ_INT(wire_token_load(path, &tok, &len, err, sizeof err), -EINVAL);
        T_ASSERT(strstr(err, "different bytes") != NULL);
    }
    close(fd);
    unlink(path);
    T_EQ_INT(mkfifo(path, 0600), 0);
    T_EQ_INT(wire_token_load(path, &tok, &len, err, sizeof err), -EINVAL); /* at once */
    T_ASSERT(strstr(err, "not a regular file") != NULL);
    unlink(path);
}

TEST(wire_decoder_shrink_keeps_working) {
    wire_buf b;
    wire_buf_init(&b);
    int64_t ts[20000];
    double v[20000];
    for (int i = 0; i < 20000; i++) {
        ts[i] = i;
        v[i] = i;
    }
    wire_samples_begin(&b, 1, 1);
    T_EQ_INT(wire_samples_series(&b, 1, ts, v, 20000), 0);
    T_ASSERT(wire_frame_end(&b, 1 << 20) > 0);
    T_ASSERT(wire_enc_ack(&b, 2, 2, 1 << 20) > 0);
    T_EQ_INT(wire_decoder_init(&dec, 1 << 20), 0);
    T_EQ_INT(wire_decoder_feed(&dec, b.data, b.len), 0);
    wire_msg m;
    T_EQ_INT(wire_decoder_next(&dec, &m), WIRE_FRAME);
    T_EQ_INT(m.u.samples.nsamples, 20000);
    T_EQ_INT(wire_decoder_next(&dec, &m), WIRE_FRAME);
    T_ASSERT(dec.cap > 64 * 1024);
    wire_decoder_shrink(&dec, 64 * 1024);
    T_EQ_INT(dec.cap, 0);
    T_EQ_INT(wire_decoder_feed(&dec, b.data, b.len), 0);
    T_EQ_INT(wire_decoder_next(&dec, &m), WIRE_FRAME);
    T_EQ_INT(m.u.samples.nsamples, 20000);
    wire_decoder_fini(&dec);
    wire_buf_fini(&b);
}
