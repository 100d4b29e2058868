/* report_test.c: the agent's reporting queue (agent/report.c) without a connection: series ids
 * are stable hashes, rounds become batches with growing seq, the memory bound evicts the
 * oldest batches to the spill seam (or drops and counts them), ACKs free batches. */
#include "agent.h"
#include "collect/collector.h"
#include "test.h"
#include "wire.h"

#include <errno.h>
#include <stdlib.h>

typedef struct fake_spill {
    int puts, fail;
    uint64_t seqs[64];
    uint64_t acked;
} fake_spill;

static int fs_put(void *ctx, uint64_t seq, const void *frame, size_t len) {
    fake_spill *f = ctx;
    (void)frame;
    (void)len;
    if (f->fail) return -EIO;
    if (f->puts < 64) f->seqs[f->puts] = seq;
    f->puts++;
    return 0;
}
static int fs_next(void *ctx, uint64_t after, uint64_t *seq, void **frame, size_t *len) {
    (void)ctx;
    (void)after;
    (void)seq;
    (void)frame;
    (void)len;
    return 0;
}
static void fs_ack(void *ctx, uint64_t acked) {
    ((fake_spill *)ctx)->acked = acked;
}

static void setup(struct agent *ag, int64_t queue_max) {
    char err[256];
    memset(ag, 0, sizeof *ag);
    ag->cfg.max_frame_bytes = 1 << 20;
    ag->cfg.queue_max_bytes = queue_max;
    report_init(ag, err, sizeof err);
}

TEST(report_series_ids_are_stable_hashes) {
    struct agent a1, a2;
    setup(&a1, 1 << 20);
    setup(&a2, 1 << 20);
    const char *l1[] = {"pod", "web-1", NULL};
    const char *l2[] = {"pod", "web-2", NULL};
    uint32_t x, y, z, x2;
    T_EQ_INT(sink_series(report_sink(a1.rep), "cpu", l1, &x), 0);
    T_EQ_INT(sink_series(report_sink(a1.rep), "cpu", l2, &y), 0);
    T_EQ_INT(sink_series(report_sink(a1.rep), "cpu", l1, &z), 0);
    T_ASSERT(x != y);
    T_EQ_INT(x, z);
    /* another agent process names the same label set with the same id (spooled batches
     * survive a restart) */
    T_EQ_INT(sink_series(report_sink(a2.rep), "cpu", l2, &x2), 0);
    T_EQ_INT(x2, y);
    T_EQ_INT(sink_put(report_sink(a1.rep), 12345, 1, 1.0), -ENOENT);
    T_EQ_INT(sink_put(report_sink(a1.rep), x, 2000, 1.0), 0);
    T_EQ_INT(sink_put(report_sink(a1.rep), x, 1000, 1.0), -EINVAL); /* backwards in time */
    report_fini(&a1);
    report_fini(&a2);
}

TEST(report_rounds_become_batches_and_acks_free_them) {
    struct agent ag;
    setup(&ag, 1 << 20);
    uint32_t id;
    T_EQ_INT(sink_series(report_sink(ag.rep), "m", NULL, &id), 0);
    T_EQ_INT(report_queued_bytes(ag.rep), 0);
    report_flush(ag.rep); /* nothing pending: no batch */
    T_EQ_INT(report_queued_bytes(ag.rep), 0);
    for (int r = 0; r < 5; r++) {
        T_EQ_INT(sink_put(report_sink(ag.rep), id, 1000 * r, r), 0);
        report_flush(ag.rep);
    }
    uint64_t q5 = report_queued_bytes(ag.rep);
    T_ASSERT(q5 > 0);
    /* acknowledging everything frees everything; the seq of batches is wall-clock based */
    report_on_ack(ag.rep, 0, UINT64_MAX / 2);
    T_EQ_INT(report_queued_bytes(ag.rep), 0);
    T_EQ_INT(report_drops(ag.rep), 0);
    report_fini(&ag);
}

TEST(report_memory_bound_spills_oldest_or_drops) {
    struct agent ag;
    setup(&ag, 65536);
    uint32_t id;
    T_EQ_INT(sink_series(report_sink(ag.rep), "m", NULL, &id), 0);
    /* ~1,000 samples per round: ~9 KB per batch, the bound holds about 7 */
    int64_t t = 0;
    for (int r = 0; r < 20; r++) {
        for (int i = 0; i < 1000; i++)
            T_EQ_INT(sink_put(report_sink(ag.rep), id, t++, i * 0.5), 0);
        report_flush(ag.rep);
    }
    T_ASSERT(report_queued_bytes(ag.rep) <= 65536);
    uint64_t drops = report_drops(ag.rep);
    T_ASSERT(drops >= 10); /* no spill: the oldest were dropped and counted */
    fake_spill fs = {0};
    report_spill sp = {&fs, fs_put, fs_next, fs_ack, NULL, NULL};
    report_set_spill(ag.rep, 0, &sp);
    for (int r = 0; r < 5; r++) {
        for (int i = 0; i < 1000; i++)
            T_EQ_INT(sink_put(report_sink(ag.rep), id, t++, i), 0);
        report_flush(ag.rep);
    }
    T_EQ_INT(report_drops(ag.rep), drops); /* spilled, not dropped */
    T_ASSERT(fs.puts >= 5);
    for (int i = 1; i < fs.puts && i < 64; i++)
        T_ASSERT(fs.seqs[i] > fs.seqs[i - 1]);
    fs.fail = 1;
    for (int i = 0; i < 1000; i++)
        T_EQ_INT(sink_put(report_sink(ag.rep), id, t++, i), 0);
    report_flush(ag.rep);
    T_EQ_INT(report_drops(ag.rep), drops + 1); /* the spill refused: dropped and counted */
    report_on_ack(ag.rep, 0, 5);
    T_EQ_INT(fs.acked, 5);
    report_fini(&ag);
}

TEST(report_forgotten_series_go_after_their_ack) {
    struct agent ag;
    setup(&ag, 1 << 20);
    uint32_t id, again;
    T_EQ_INT(sink_series(report_sink(ag.rep), "gone", NULL, &id), 0);
    T_EQ_INT(sink_put(report_sink(ag.rep), id, 1, 1), 0);
    report_flush(ag.rep);
    sink_forget(report_sink(ag.rep), id);
    T_EQ_INT(sink_put(report_sink(ag.rep), id, 2, 1), -ENOENT);
    /* defined again before being purged: the same id comes back */
    T_EQ_INT(sink_series(report_sink(ag.rep), "gone", NULL, &again), 0);
    T_EQ_INT(again, id);
    sink_forget(report_sink(ag.rep), id);
    report_on_ack(ag.rep, 0, UINT64_MAX / 2);
    T_EQ_INT(sink_put(report_sink(ag.rep), id, 3, 1), -ENOENT);
    report_fini(&ag);
}
