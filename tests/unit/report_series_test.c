/* report_series_test.c: what the agent's sink (agent/report.c) holds per series: samples
 * stored inline (one per round) and in arrays (several before a flush) come out of the batch
 * exactly, in order, and a series costs a bounded number of heap bytes (the agent keeps
 * thousands of them: 11 per sampled cgroup). */
#include "agent.h"
#include "collect/collector.h"
#include "test.h"
#include "wire.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct frames {
    int n;
    void *f[8];
    size_t len[8];
} frames;

static int keep_put(void *ctx, uint64_t seq, const void *frame, size_t len) {
    frames *fr = ctx;
    (void)seq;
    if (fr->n == 8) return -ENOSPC;
    fr->f[fr->n] = malloc(len);
    memcpy(fr->f[fr->n], frame, len);
    fr->len[fr->n++] = len;
    return 0;
}
static int none_next(void *ctx, uint64_t after, uint64_t *seq, void **frame, size_t *len) {
    (void)ctx, (void)after, (void)seq, (void)frame, (void)len;
    return 0;
}

/* Decodes SAMPLES frame fr into "id:ts=v,ts=v;..." in out. */
static void runs_of(const void *frame, size_t len, uint32_t ids[3], char *out, size_t outlen) {
    wire_decoder d;
    wire_msg m;
    out[0] = '\0';
    T_EQ_INT(wire_decoder_init(&d, 1 << 20), 0);
    T_EQ_INT(wire_decoder_feed(&d, frame, len), 0);
    T_EQ_INT(wire_decoder_next(&d, &m), WIRE_FRAME);
    T_ASSERT(m.t == WIRE_SAMPLES);
    size_t o = 0;
    for (uint32_t i = 0; i < m.u.samples.nruns; i++) {
        uint32_t id;
        int64_t ts[16];
        double v[16];
        size_t n;
        T_EQ_INT(wire_samples_run(&m, i, &id, ts, v, 16, &n), 0);
        char name = '?';
        for (int k = 0; k < 3; k++)
            if (ids[k] == id) name = (char)('A' + k);
        o += (size_t)snprintf(out + o, outlen - o, "%s%c:", i ? ";" : "", name);
        for (size_t k = 0; k < n; k++)
            o += (size_t)snprintf(out + o, outlen - o, "%s%lld=%g", k ? "," : "", (long long)ts[k],
                                  v[k]);
    }
    wire_decoder_fini(&d);
}

TEST(report_inline_and_array_samples_come_out_exactly) {
    struct agent ag;
    char err[256], got[512];
    memset(&ag, 0, sizeof ag);
    ag.cfg.max_frame_bytes = 1 << 20;
    ag.cfg.queue_max_bytes = 1; /* every batch goes to the spill at once: we read it there */
    T_EQ_INT(report_init(&ag, err, sizeof err), 0);
    frames fr = {0};
    report_spill sp = {.ctx = &fr, .put = keep_put, .next = none_next};
    report_set_spill(ag.rep, 0, &sp);
    agent_sink *s = report_sink(ag.rep);
    const char *la[] = {"cgroup", "/a", NULL}, *lb[] = {"cgroup", "/b", "kind", "pod", NULL};
    uint32_t ids[3];
    T_EQ_INT(sink_series(s, "m_a", la, &ids[0]), 0);
    T_EQ_INT(sink_series(s, "m_b", lb, &ids[1]), 0);
    T_EQ_INT(sink_series(s, "m_c", NULL, &ids[2]), 0);
    /* round 1: A one sample, B six (past the inline one and a realloc), C one */
    T_EQ_INT(sink_put(s, ids[0], 1000, 1.5), 0);
    for (int i = 0; i < 6; i++)
        T_EQ_INT(sink_put(s, ids[1], 1000 + i, 10 + i), 0);
    T_EQ_INT(sink_put(s, ids[1], 999, 1), -EINVAL); /* older than B's last, in the arrays */
    T_EQ_INT(sink_put(s, ids[2], 1000, -2), 0);
    T_EQ_INT(sink_put(s, ids[2], 999, 1), -EINVAL); /* older than C's inline one */
    report_flush(ag.rep);
    /* round 2: B is back to one inline sample, then two */
    T_EQ_INT(sink_put(s, ids[1], 2000, 7), 0);
    report_flush(ag.rep);
    T_EQ_INT(sink_put(s, ids[1], 3000, 8), 0);
    T_EQ_INT(sink_put(s, ids[1], 3001, 9), 0);
    report_flush(ag.rep);
    T_EQ_INT(fr.n, 3);
    runs_of(fr.f[0], fr.len[0], ids, got, sizeof got);
    T_EQ_STR(got, "A:1000=1.5;B:1000=10,1001=11,1002=12,1003=13,1004=14,1005=15;C:1000=-2");
    runs_of(fr.f[1], fr.len[1], ids, got, sizeof got);
    T_EQ_STR(got, "B:2000=7");
    runs_of(fr.f[2], fr.len[2], ids, got, sizeof got);
    T_EQ_STR(got, "B:3000=8,3001=9");
    for (int i = 0; i < fr.n; i++)
        free(fr.f[i]);
    report_fini(&ag);
}

TEST(report_series_cost_bounded_heap_bytes) {
    struct agent ag;
    char err[256];
    memset(&ag, 0, sizeof ag);
    ag.cfg.max_frame_bytes = 1 << 20;
    ag.cfg.queue_max_bytes = 1 << 20;
    T_EQ_INT(report_init(&ag, err, sizeof err), 0);
    enum { N = 5500 }; /* 500 cgroups x 11 metrics */
    size_t before = mallinfo2().uordblks;
    for (int i = 0; i < N; i++) {
        char metric[64], rel[64];
        snprintf(metric, sizeof metric, "cgroup_metric_number_%02d", i % 11);
        snprintf(rel, sizeof rel, "/tide-bench-agent-12345/c%d", i / 11);
        const char *labels[] = {"cgroup", rel, "kind", "cgroup", NULL};
        uint32_t id;
        T_EQ_INT(sink_series(report_sink(ag.rep), metric, labels, &id), 0);
        T_EQ_INT(sink_put(report_sink(ag.rep), id, 1000, i), 0);
    }
    size_t after = mallinfo2().uordblks;
    report_flush(ag.rep);
    report_fini(&ag);
    if (after <= before) test_skip("mallinfo2 does not count this allocator (sanitizer build)");
    double per = (double)(after - before) / N;
    printf("  %.0f heap bytes per series (key of ~72 bytes included)\n", per);
    /* the struct, its key and one pending sample in one block, plus the table slot */
    T_ASSERT(per < 200);
}
