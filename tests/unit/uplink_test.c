/* uplink_test.c: the agent's connection (agent/uplink.c) against a control plane played by a
 * thread of this test (real TCP on loopback, real handshake): a name lookup that blocks for
 * 2 s never stalls the libev loop and the agent connects once it answers; a lookup slower
 * than connect_timeout fails that attempt and a later one re-resolves; every reconnect
 * resolves again; each resolved address is tried in turn; numeric addresses need no lookup. */
#include "agent.h"
#include "log.h"
#include "test.h"
#include "wire.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char TOKEN[] = "uplink-test-token";

/* ---- the control plane: accepts `conns` connections one after the other, runs the
 * handshake on each, then closes the first `drop` of them at once (so that the agent
 * reconnects) and keeps the others open until the agent closes them ---- */

typedef struct fake_cp {
    int lfd, port;
    int conns, drop;
    atomic_int handshakes;
    pthread_t th;
} fake_cp;

static int read_frame(int fd, wire_decoder *d, wire_msg *m) {
    for (;;) {
        enum wire_decode_result r = wire_decoder_next(d, m);
        if (r == WIRE_FRAME) return 0;
        if (r == WIRE_ERROR) return -1;
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 10000) != 1) return -1;
        size_t avail;
        uint8_t *buf = wire_decoder_reserve(d, 4096, &avail);
        ssize_t n = buf ? recv(fd, buf, avail, 0) : -1;
        if (n <= 0) return -1;
        wire_decoder_consumed(d, (size_t)n);
    }
}

static int send_all(int fd, wire_buf *b) {
    size_t off = 0;
    while (off < b->len) {
        ssize_t n = send(fd, b->data + off, b->len - off, MSG_NOSIGNAL);
        if (n <= 0) return -1;
        off += (size_t)n;
    }
    wire_buf_consume(b, b->len);
    return 0;
}

static void serve_one(fake_cp *cp, int fd, int drop) {
    wire_decoder d;
    wire_buf out;
    wire_buf_init(&out);
    if (wire_decoder_init(&d, 1 << 20) < 0) return;
    uint8_t nonce[WIRE_NONCE_LEN], agent_nonce[WIRE_NONCE_LEN], mac[WIRE_MAC_LEN];
    char node[64];
    wire_msg m;
    wire_nonce(nonce);
    if (wire_enc_hello_challenge(&out, 1, "fake", nonce, 0, 1 << 20) < 0 || send_all(fd, &out) < 0)
        goto out;
    if (read_frame(fd, &d, &m) < 0 || m.t != WIRE_HELLO || !m.u.hello.mac) goto out;
    snprintf(node, sizeof node, "%.*s", (int)m.u.hello.node.len, m.u.hello.node.p);
    memcpy(agent_nonce, m.u.hello.nonce, WIRE_NONCE_LEN);
    wire_auth_mac(TOKEN, strlen(TOKEN), "agent", nonce, agent_nonce, node, mac);
    if (!wire_mac_equal(mac, m.u.hello.mac)) goto out;
    wire_auth_mac(TOKEN, strlen(TOKEN), "controlplane", agent_nonce, nonce, node, mac);
    if (wire_enc_hello_ack(&out, 2, mac, 0, 1 << 20) < 0 || send_all(fd, &out) < 0) goto out;
    atomic_fetch_add(&cp->handshakes, 1);
    if (drop) goto out;
    while (read_frame(fd, &d, &m) == 0) { /* whatever the agent sends, until it closes */
    }
out:
    wire_decoder_fini(&d);
    wire_buf_fini(&out);
    close(fd);
}

static void *cp_main(void *arg) {
    fake_cp *cp = arg;
    for (int i = 0; i < cp->conns; i++) {
        struct pollfd p = {cp->lfd, POLLIN, 0};
        if (poll(&p, 1, 15000) != 1) break;
        int fd = accept(cp->lfd, NULL, NULL);
        if (fd < 0) break;
        serve_one(cp, fd, i < cp->drop);
    }
    return NULL;
}

static int listen_loopback(int *port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 8) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &al) < 0) {
        if (fd >= 0) close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

static int cp_start(fake_cp *cp, int conns, int drop) {
    memset(cp, 0, sizeof *cp);
    cp->conns = conns;
    cp->drop = drop;
    cp->lfd = listen_loopback(&cp->port);
    if (cp->lfd < 0) return -1;
    return pthread_create(&cp->th, NULL, cp_main, cp) == 0 ? 0 : -1;
}

static void cp_stop(fake_cp *cp) {
    pthread_join(cp->th, NULL);
    close(cp->lfd);
}

/* ---- scripted name lookups ---- */

static atomic_int lookups;
static int lookup_block_ms;   /* the first lookup blocks this long */
static int lookup_fail_first; /* ... and then fails with EAI_AGAIN (a dead DNS server) */
static int addr_ports[2];     /* answers 127.0.0.1 with these ports (0: the asked port) */

static void scripted_free(struct addrinfo *res) {
    while (res) {
        struct addrinfo *next = res->ai_next;
        free(res->ai_addr);
        free(res);
        res = next;
    }
}

static int scripted_resolve(const char *host, const char *port, const struct addrinfo *hints,
                            struct addrinfo **res) {
    (void)hints;
    int n = atomic_fetch_add(&lookups, 1);
    if (strcmp(host, "tide-controlplane.test") != 0) return EAI_NONAME;
    if (n == 0 && lookup_block_ms) {
        usleep((useconds_t)lookup_block_ms * 1000);
        if (lookup_fail_first) return EAI_AGAIN;
    }
    *res = NULL;
    struct addrinfo **tail = res;
    for (int i = 0; i < 2; i++) {
        int p = addr_ports[i] ? addr_ports[i] : (i == 0 ? atoi(port) : 0);
        if (!p) break;
        struct addrinfo *ai = calloc(1, sizeof *ai);
        struct sockaddr_in *sa = calloc(1, sizeof *sa);
        if (!ai || !sa) {
            free(ai);
            free(sa);
            scripted_free(*res);
            return EAI_MEMORY;
        }
        sa->sin_family = AF_INET;
        sa->sin_port = htons((uint16_t)p);
        sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ai->ai_family = AF_INET;
        ai->ai_socktype = SOCK_STREAM;
        ai->ai_addr = (struct sockaddr *)sa;
        ai->ai_addrlen = sizeof *sa;
        *tail = ai;
        tail = &ai->ai_next;
    }
    return 0;
}

static void script(int block_ms, int fail_first, int port0, int port1) {
    atomic_store(&lookups, 0);
    lookup_block_ms = block_ms;
    lookup_fail_first = fail_first;
    addr_ports[0] = port0;
    addr_ports[1] = port1;
    uplink_resolver rv = {scripted_resolve, scripted_free};
    uplink_set_resolver(&rv);
}

/* ---- the agent side: a loop with a 20 ms ticker standing in for sampling ---- */

typedef struct run {
    struct agent ag;
    char target[300];
    ev_timer tick;
    int64_t started, last_tick, max_gap, ready_at;
    int ticks, want_handshakes;
    fake_cp *cp;
} run;

static void on_tick(struct ev_loop *loop, ev_timer *w, int revents) {
    (void)revents;
    run *r = (run *)((char *)w - offsetof(run, tick));
    int64_t now = tide_now_mono_ms();
    if (now - r->last_tick > r->max_gap) r->max_gap = now - r->last_tick;
    r->last_tick = now;
    r->ticks++;
    if (uplink_ready(r->ag.ups[0]) && atomic_load(&r->cp->handshakes) >= r->want_handshakes) {
        r->ready_at = now - r->started;
        ev_break(loop, EVBREAK_ALL);
    } else if (now - r->started > 10000) {
        ev_break(loop, EVBREAK_ALL); /* the test fails on ready_at */
    }
}

static int run_agent(run *r, const char *host, fake_cp *cp, int64_t connect_timeout_ms,
                     int want_handshakes) {
    char err[256];
    memset(&r->ag, 0, sizeof r->ag);
    r->ag.loop = ev_loop_new(EVFLAG_AUTO);
    snprintf(r->target, sizeof r->target, "%s:%d", host, cp->port);
    snprintf(r->ag.node, sizeof r->ag.node, "uplink-test");
    r->ag.cfg.controlplane = r->target;
    r->ag.cfg.max_frame_bytes = 1 << 20;
    r->ag.cfg.queue_max_bytes = 1 << 20;
    r->ag.cfg.reconnect_min_ms = 50;
    r->ag.cfg.reconnect_max_ms = 100;
    r->ag.cfg.connect_timeout_ms = connect_timeout_ms;
    r->ag.token = (char *)TOKEN;
    r->ag.token_len = strlen(TOKEN);
    r->cp = cp;
    r->want_handshakes = want_handshakes;
    r->ticks = 0;
    r->max_gap = 0;
    r->ready_at = -1;
    if (report_init(&r->ag, err, sizeof err) < 0 || uplink_start(&r->ag, err, sizeof err) < 0) {
        fprintf(stderr, "setup: %s\n", err);
        return -1;
    }
    ev_timer_init(&r->tick, on_tick, 0.02, 0.02);
    ev_timer_start(r->ag.loop, &r->tick);
    r->started = r->last_tick = tide_now_mono_ms();
    ev_run(r->ag.loop, 0);
    ev_timer_stop(r->ag.loop, &r->tick);
    uplink_stop(&r->ag);
    report_fini(&r->ag);
    ev_loop_destroy(r->ag.loop);
    return 0;
}

TEST(uplink_slow_lookup_does_not_stall_the_loop) {
    fake_cp cp;
    T_EQ_INT(cp_start(&cp, 1, 0), 0);
    script(2000, 0, 0, 0);
    run r;
    T_EQ_INT(run_agent(&r, "tide-controlplane.test", &cp, 5000, 1), 0);
    cp_stop(&cp);
    fprintf(stderr, "ready after %lld ms; %d ticks, longest gap %lld ms\n", (long long)r.ready_at,
            r.ticks, (long long)r.max_gap);
    T_ASSERT(r.ready_at >= 1900); /* connected once the lookup answered ... */
    T_ASSERT(r.ready_at < 5000);  /* ... not after a timeout */
    T_ASSERT(r.ticks >= 50);      /* the loop kept turning: ~100 ticks of 20 ms in 2 s */
    T_ASSERT(r.max_gap < 500);    /* a blocking lookup would show one gap of 2,000 ms */
    T_EQ_INT(atomic_load(&lookups), 1);
    uplink_set_resolver(NULL);
}

TEST(uplink_lookup_timeout_fails_the_attempt_and_a_later_one_resolves) {
    fake_cp cp;
    T_EQ_INT(cp_start(&cp, 1, 0), 0);
    /* the first lookup hangs 1.5 s and fails (a dead DNS server); connect_timeout is 300 ms */
    script(1500, 1, 0, 0);
    run r;
    T_EQ_INT(run_agent(&r, "tide-controlplane.test", &cp, 300, 1), 0);
    cp_stop(&cp);
    fprintf(stderr, "ready after %lld ms; longest gap %lld ms; %d lookups\n", (long long)r.ready_at,
            (long long)r.max_gap, atomic_load(&lookups));
    T_ASSERT(r.ready_at >= 1400);
    T_ASSERT(r.ready_at < 5000);
    T_ASSERT(r.max_gap < 500);
    /* attempts during the hung lookup wait for it instead of piling up threads; after it
     * failed, a new lookup answered */
    T_EQ_INT(atomic_load(&lookups), 2);
    uplink_set_resolver(NULL);
}

TEST(uplink_every_reconnect_resolves_again) {
    fake_cp cp;
    T_EQ_INT(cp_start(&cp, 3, 2), 0); /* drops the first two after the handshake */
    script(0, 0, 0, 0);
    run r;
    T_EQ_INT(run_agent(&r, "tide-controlplane.test", &cp, 2000, 3), 0);
    T_ASSERT(r.ready_at >= 0);
    T_EQ_INT(atomic_load(&cp.handshakes), 3);
    T_EQ_INT(atomic_load(&lookups), 3); /* one per connection attempt */
    cp_stop(&cp);
    uplink_set_resolver(NULL);
}

TEST(uplink_tries_each_address_in_turn) {
    fake_cp cp;
    T_EQ_INT(cp_start(&cp, 1, 0), 0);
    int dead_port;
    int dead = listen_loopback(&dead_port);
    T_ASSERT(dead >= 0);
    close(dead); /* nothing listens there now: refused */
    script(0, 0, dead_port, cp.port);
    run r;
    T_EQ_INT(run_agent(&r, "tide-controlplane.test", &cp, 2000, 1), 0);
    cp_stop(&cp);
    T_ASSERT(r.ready_at >= 0);
    T_ASSERT(r.ready_at < 1000); /* the second address at once, not after a backoff */
    T_EQ_INT(atomic_load(&lookups), 1);
    uplink_set_resolver(NULL);
}

TEST(uplink_numeric_address_needs_no_lookup) {
    fake_cp cp;
    T_EQ_INT(cp_start(&cp, 1, 0), 0);
    script(0, 0, 0, 0);
    run r;
    T_EQ_INT(run_agent(&r, "127.0.0.1", &cp, 2000, 1), 0);
    cp_stop(&cp);
    T_ASSERT(r.ready_at >= 0);
    T_EQ_INT(atomic_load(&lookups), 0);
    uplink_set_resolver(NULL);
}

TEST(uplink_stop_during_a_lookup_leaves_it_behind_safely) {
    fake_cp cp;
    T_EQ_INT(cp_start(&cp, 0, 0), 0);
    script(300, 0, 0, 0);
    struct agent ag;
    char err[256];
    char target[64];
    memset(&ag, 0, sizeof ag);
    ag.loop = ev_loop_new(EVFLAG_AUTO);
    snprintf(target, sizeof target, "tide-controlplane.test:%d", cp.port);
    ag.cfg.controlplane = target;
    ag.cfg.max_frame_bytes = 1 << 20;
    ag.cfg.queue_max_bytes = 1 << 20;
    ag.cfg.reconnect_min_ms = 50;
    ag.cfg.reconnect_max_ms = 100;
    ag.cfg.connect_timeout_ms = 5000;
    T_EQ_INT(report_init(&ag, err, sizeof err), 0);
    T_EQ_INT(uplink_start(&ag, err, sizeof err), 0);
    ev_run(ag.loop, EVRUN_NOWAIT); /* the first attempt starts the lookup thread */
    int64_t deadline = tide_now_mono_ms() + 2000;
    while (atomic_load(&lookups) == 0 && tide_now_mono_ms() < deadline) {
        ev_run(ag.loop, EVRUN_NOWAIT);
        usleep(5000);
    }
    T_EQ_INT(atomic_load(&lookups), 1);
    uplink_stop(&ag); /* the thread still sleeps in the lookup */
    report_fini(&ag);
    ev_loop_destroy(ag.loop);
    usleep(500000); /* it answers into the abandoned request and frees it (ASan watches) */
    cp_stop(&cp);
    uplink_set_resolver(NULL);
}
