/* bench_ingest.c: ingest throughput of the control plane's real agent path: one authenticated
 * connection (a socketpair adopted by controlplane/agents/agents.c) streams SAMPLES batches that
 * are decoded, appended to the per-series memory store and acknowledged once durable. One thread
 * runs both ends on one libev loop, so the figure is samples per CPU-second of one core (the
 * sending side, included, only copies pre-encoded frames). The reference measured in the same run:
 * msgpack-c packing and unpacking a 6-field map per record (a map per sample). Goal: >= 3 M
 * samples/s. */
#include <errno.h>
#include <ev.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "agents/agents.h"
#include "cp.h"
#include "log.h"
#include "store/tsdb.h"
#include "wire.h"

#define NSERIES 100
#define PER_SERIES 100 /* samples per series per batch: 10,000 samples per batch */
#define NBATCH 400     /* 4 M samples */
#define GOAL 3.0e6

static const char TOKEN[] = "bench-token-0123456789abcdef";

static struct {
    int fd;
    ev_io rio, wio;
    wire_decoder dec;
    wire_buf out; /* handshake frames */
    uint8_t *frames;
    size_t frames_len, sent;
    uint64_t last_seq, acked;
    int ready;
    double t0, t1;
    uint8_t nonce[WIRE_NONCE_LEN];
} cl;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void client_write(struct ev_loop *loop) {
    while (cl.out.len) {
        ssize_t n = write(cl.fd, cl.out.data, cl.out.len);
        if (n < 0) {
            if (errno == EAGAIN) goto wait;
            perror("bench: write");
            exit(1);
        }
        wire_buf_consume(&cl.out, (size_t)n);
    }
    while (cl.ready && cl.sent < cl.frames_len) {
        ssize_t n = write(cl.fd, cl.frames + cl.sent, cl.frames_len - cl.sent);
        if (n < 0) {
            if (errno == EAGAIN) goto wait;
            perror("bench: write");
            exit(1);
        }
        cl.sent += (size_t)n;
    }
    ev_io_stop(loop, &cl.wio);
    return;
wait:
    ev_io_start(loop, &cl.wio);
}

static void on_client_write(struct ev_loop *loop, ev_io *w, int revents) {
    (void)w;
    (void)revents;
    client_write(loop);
}

static void on_client_read(struct ev_loop *loop, ev_io *w, int revents) {
    (void)w;
    (void)revents;
    size_t avail;
    uint8_t *p = wire_decoder_reserve(&cl.dec, 4096, &avail);
    ssize_t n = read(cl.fd, p, avail);
    if (n <= 0) {
        if (n < 0 && errno == EAGAIN) return;
        fprintf(stderr, "bench: control plane closed the connection\n");
        exit(1);
    }
    wire_decoder_consumed(&cl.dec, (size_t)n);
    wire_msg m;
    while (wire_decoder_next(&cl.dec, &m) == WIRE_FRAME) {
        if (m.t == WIRE_HELLO) {
            uint8_t mac[WIRE_MAC_LEN];
            wire_nonce(cl.nonce);
            wire_auth_mac(TOKEN, strlen(TOKEN), "agent", m.u.hello.nonce, cl.nonce, "bench", mac);
            wire_enc_hello_agent(&cl.out, 1, "bench", "bench", cl.nonce, mac, 1 << 20);
            client_write(loop);
        } else if (m.t == WIRE_HELLO_ACK) {
            cl.ready = 1;
            cl.t0 = now_s();
            client_write(loop);
        } else if (m.t == WIRE_ACK) {
            cl.acked = m.u.ack.ack;
            if (cl.acked == cl.last_seq) {
                cl.t1 = now_s();
                ev_break(loop, EVBREAK_ALL);
            }
        }
    }
}

/* SERIES_DEF for NSERIES, then NBATCH SAMPLES batches with ascending timestamps. */
static void build_frames(void) {
    wire_buf b;
    wire_buf_init(&b);
    wire_series_def_begin(&b, 2, NSERIES);
    for (uint32_t s = 0; s < NSERIES; s++) {
        char pod[32];
        snprintf(pod, sizeof pod, "pod-%u", s);
        const char *labels[] = {"pod", pod, "namespace", "bench", NULL};
        wire_series_def_add(&b, s + 1, "cpu_usage_seconds", labels);
    }
    wire_frame_end(&b, 1 << 20);
    int64_t ts[PER_SERIES];
    double v[PER_SERIES];
    int64_t t = 1700000000000;
    for (int k = 0; k < NBATCH; k++) {
        wire_samples_begin(&b, (uint64_t)k + 1, NSERIES);
        for (uint32_t s = 0; s < NSERIES; s++) {
            for (int i = 0; i < PER_SERIES; i++) {
                ts[i] = t + (int64_t)i * 1000;
                v[i] = 0.25 + (double)((s * 7 + (uint32_t)i * 13 + (uint32_t)k) % 1000) / 997.0;
            }
            wire_samples_series(&b, s + 1, ts, v, PER_SERIES);
        }
        if (wire_frame_end(&b, 4 << 20) < 0) {
            fprintf(stderr, "bench: batch does not fit a frame\n");
            exit(1);
        }
        t += PER_SERIES * 1000;
    }
    cl.frames = b.data;
    cl.frames_len = b.len;
    cl.last_seq = NBATCH;
}

/* The reference: msgpack-c packs and unpacks one 6-field map per record. */
static double msgpack_map_rate(void) {
    const int n = 1000000;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_unpacked up;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_unpacked_init(&up);
    volatile double sink = 0;
    double t0 = cpu_s();
    for (int i = 0; i < n; i++) {
        msgpack_sbuffer_clear(&sb);
        msgpack_pack_map(&pk, 6);
        msgpack_pack_str_with_body(&pk, "pod", 3);
        msgpack_pack_str_with_body(&pk, "web-7d9f8-abcde", 15);
        msgpack_pack_str_with_body(&pk, "ts", 2);
        msgpack_pack_int64(&pk, 1700000000000 + i);
        msgpack_pack_str_with_body(&pk, "cpu_ns", 6);
        msgpack_pack_uint64(&pk, 123456789ull + (unsigned)i);
        msgpack_pack_str_with_body(&pk, "mem", 3);
        msgpack_pack_uint64(&pk, 512ull << 20);
        msgpack_pack_str_with_body(&pk, "rps", 3);
        msgpack_pack_double(&pk, 1234.5 + i);
        msgpack_pack_str_with_body(&pk, "frozen", 6);
        msgpack_pack_false(&pk);
        size_t off = 0;
        if (msgpack_unpack_next(&up, sb.data, sb.size, &off) != MSGPACK_UNPACK_SUCCESS) abort();
        sink += up.data.via.map.ptr[4].val.via.f64;
    }
    double dt = cpu_s() - t0;
    (void)sink;
    msgpack_unpacked_destroy(&up);
    msgpack_sbuffer_destroy(&sb);
    return n / dt;
}

int main(void) {
    log_threshold = LOG_WARN;
    static struct controlplane cp;
    cp.loop = ev_default_loop(0);
    cp.cfg.listen = "127.0.0.1:0";
    cp.cfg.max_frame_bytes = 4 << 20;
    cp.cfg.handshake_timeout_ms = 10000;
    cp.cfg.idle_timeout_ms = 60000;
    cp.cfg.heartbeat_ms = 5000;
    cp.cfg.max_agents = 4;
    cp.token = (char *)TOKEN;
    cp.token_len = strlen(TOKEN);
    char err[512];
    tsdb_options topt = {.dir = NULL, .loop = NULL};
    if (tsdb_open(&cp.db, &topt, err, sizeof err) < 0 ||
        cp_agents_start(&cp, err, sizeof err) < 0) {
        fprintf(stderr, "bench: %s\n", err);
        return 1;
    }
    build_frames();
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0) return 1;
    int sz = 4 << 20;
    setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    cl.fd = sv[1];
    wire_decoder_init(&cl.dec, 1 << 20);
    wire_buf_init(&cl.out);
    ev_io_init(&cl.rio, on_client_read, cl.fd, EV_READ);
    ev_io_init(&cl.wio, on_client_write, cl.fd, EV_WRITE);
    ev_io_start(cp.loop, &cl.rio);
    if (cp_agents_adopt(&cp, sv[0], "bench") < 0) return 1;

    double c0 = cpu_s();
    ev_run(cp.loop, 0);
    double cpu = cpu_s() - c0;
    double total = (double)NSERIES * PER_SERIES * NBATCH;
    double wall = cl.t1 - cl.t0;
    /* Per CPU-second of this one thread (both ends included): the machine is shared, so wall
     * time also counts time spent descheduled. */
    double rate = total / cpu;
    double ref = msgpack_map_rate();
    printf("ingest: %.0f samples, cpu %.3f s on one thread (wall %.3f s): %.2f M samples/s per "
           "core (wall rate %.2f M/s), %.1f bytes/sample on the wire\n",
           total, cpu, wall, rate / 1e6, total / wall / 1e6, (double)cl.frames_len / total);
    printf("reference: msgpack-c 6-field map pack+unpack %.2f M records/s -> ingest is %.2fx "
           "the map-per-sample rate\n",
           ref / 1e6, rate / ref);
    printf("goal >= %.1f M samples/s: %s\n", GOAL / 1e6, rate >= GOAL ? "met" : "NOT met");

    ev_io_stop(cp.loop, &cl.rio);
    ev_io_stop(cp.loop, &cl.wio);
    close(cl.fd);
    cp_agents_stop(&cp);
    tsdb_close(cp.db);
    wire_decoder_fini(&cl.dec);
    wire_buf_fini(&cl.out);
    free(cl.frames);
    ev_loop_destroy(cp.loop);
    return rate >= GOAL ? 0 : 1;
}
