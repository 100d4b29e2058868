/* spool_test.c: the on-disk spool: round trip, ack, restart, bound with oldest-first drops,
 * torn tails and corrupt frames, refused input. Works in a fresh directory under $TMPDIR. */
#include "spool.h"
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[256];

static void fresh_dir(void) {
    const char *t = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/spool_test.XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(dir)) dir[0] = '\0';
}

static void rm_dir(void) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

/* A payload of n bytes whose content depends on seq. */
static void payload(uint64_t seq, uint8_t *buf, size_t n) {
    for (size_t i = 0; i < n; i++)
        buf[i] = (uint8_t)(seq * 31 + i);
}

static int read_expect(spool *sp, uint64_t after, uint64_t want_seq, size_t want_len) {
    uint64_t seq = 0;
    void *data = NULL;
    size_t len = 0;
    int rc = spool_read_next(sp, after, &seq, &data, &len);
    if (rc != 1) return 0;
    uint8_t exp[4096];
    payload(want_seq, exp, want_len);
    int ok = seq == want_seq && len == want_len && memcmp(data, exp, len) == 0;
    free(data);
    return ok;
}

TEST(spool_round_trip_and_ack) {
    fresh_dir();
    T_ASSERT(dir[0]);
    spool *sp = NULL;
    char err[200];
    T_EQ_INT(spool_open(&sp, dir, 1 << 20, err, sizeof err), 0);
    uint8_t buf[300];
    for (uint64_t s = 1; s <= 10; s++) {
        payload(s, buf, 100 + s);
        T_EQ_INT(spool_append(sp, s, buf, 100 + s, err, sizeof err), 0);
    }
    T_ASSERT(read_expect(sp, 0, 1, 101));
    T_ASSERT(read_expect(sp, 4, 5, 105));
    T_ASSERT(read_expect(sp, 9, 10, 110));
    uint64_t seq;
    void *d;
    size_t l;
    T_EQ_INT(spool_read_next(sp, 10, &seq, &d, &l), 0);
    T_EQ_INT(spool_ack(sp, 6), 0);
    T_ASSERT(read_expect(sp, 0, 7, 107)); /* acknowledged frames are never returned */
    spool_stats st;
    spool_get_stats(sp, &st);
    T_EQ_INT(st.frames, 4);
    T_EQ_INT(st.first_seq, 7);
    T_EQ_INT(st.last_seq, 10);
    T_EQ_INT(st.acked_seq, 6);
    T_EQ_INT(st.dropped_frames, 0);
    T_EQ_INT(spool_ack(sp, 10), 0);
    spool_get_stats(sp, &st);
    T_EQ_INT(st.frames, 0);
    T_EQ_INT(st.bytes, 0); /* fully acknowledged segments are deleted */
    T_EQ_INT(spool_read_next(sp, 0, &seq, &d, &l), 0);
    spool_close(sp);
    rm_dir();
}

TEST(spool_survives_restart) {
    fresh_dir();
    spool *sp = NULL;
    char err[200];
    T_EQ_INT(spool_open(&sp, dir, 1 << 20, err, sizeof err), 0);
    uint8_t buf[200];
    for (uint64_t s = 100; s < 150; s++) {
        payload(s, buf, 150);
        T_EQ_INT(spool_append(sp, s, buf, 150, err, sizeof err), 0);
    }
    T_EQ_INT(spool_ack(sp, 119), 0);
    spool_close(sp);
    T_EQ_INT(spool_open(&sp, dir, 1 << 20, err, sizeof err), 0);
    spool_stats st;
    spool_get_stats(sp, &st);
    T_EQ_INT(st.acked_seq, 119);
    T_EQ_INT(st.frames, 30);
    T_EQ_INT(st.first_seq, 120);
    T_EQ_INT(st.last_seq, 149);
    T_ASSERT(read_expect(sp, 0, 120, 150));
    T_ASSERT(read_expect(sp, 148, 149, 150));
    /* Sequences continue above the last one. */
    payload(149, buf, 150);
    T_EQ_INT(spool_append(sp, 149, buf, 150, err, sizeof err), -EINVAL);
    payload(150, buf, 150);
    T_EQ_INT(spool_append(sp, 150, buf, 150, err, sizeof err), 0);
    spool_close(sp);
    rm_dir();
}

TEST(spool_full_drops_oldest_and_counts) {
    fresh_dir();
    spool *sp = NULL;
    char err[200];
    const uint64_t max = 64 * 1024;
    T_EQ_INT(spool_open(&sp, dir, max, err, sizeof err), 0);
    uint8_t buf[1000];
    const uint64_t n = 400; /* ~400 KB into a 64 KB spool */
    for (uint64_t s = 1; s <= n; s++) {
        payload(s, buf, sizeof buf);
        T_EQ_INT(spool_append(sp, s, buf, sizeof buf, err, sizeof err), 0);
        spool_stats st;
        spool_get_stats(sp, &st);
        T_ASSERT(st.bytes <= max);
    }
    spool_stats st;
    spool_get_stats(sp, &st);
    T_ASSERT(st.dropped_frames > 0);
    T_EQ_INT(st.dropped_frames + st.frames, n); /* every frame is either held or counted */
    T_EQ_INT(st.dropped_bytes, st.dropped_frames * (sizeof buf + 20));
    T_EQ_INT(st.last_seq, n);
    T_ASSERT(st.frames >= 50); /* most of the bound still holds the newest data */
    /* The newest data is the data kept: the oldest held frame is followed by every later one. */
    uint64_t after = 0, count = 0, seq;
    void *d;
    size_t l;
    while (spool_read_next(sp, after, &seq, &d, &l) == 1) {
        T_EQ_INT(seq, count == 0 ? st.first_seq : after + 1);
        free(d);
        after = seq;
        count++;
    }
    T_EQ_INT(count, st.frames);
    T_EQ_INT(after, n);
    spool_close(sp);
    /* Dropping survives a reopen with a lower bound too: the newest data that fits is kept. */
    T_EQ_INT(spool_open(&sp, dir, max, err, sizeof err), 0);
    spool_get_stats(sp, &st);
    T_EQ_INT(st.last_seq, n);
    spool_close(sp);
    rm_dir();
}

/* Finds the only segment file in dir. */
static int seg_file(char *out, size_t outlen) {
    char cmd[400];
    snprintf(cmd, sizeof cmd, "ls '%s'/seg-*.spool", dir);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    int ok = fgets(out, (int)outlen, p) != NULL;
    pclose(p);
    if (!ok) return -1;
    out[strcspn(out, "\n")] = '\0';
    return 0;
}

TEST(spool_torn_tail_is_cut) {
    fresh_dir();
    spool *sp = NULL;
    char err[200];
    T_EQ_INT(spool_open(&sp, dir, 1 << 20, err, sizeof err), 0);
    uint8_t buf[100];
    for (uint64_t s = 1; s <= 5; s++) {
        payload(s, buf, sizeof buf);
        T_EQ_INT(spool_append(sp, s, buf, sizeof buf, err, sizeof err), 0);
    }
    spool_close(sp);
    char path[512];
    T_EQ_INT(seg_file(path, sizeof path), 0);
    struct stat stb;
    T_EQ_INT(stat(path, &stb), 0);
    T_EQ_INT(truncate(path, stb.st_size - 30), 0); /* a crash in the middle of frame 5 */
    T_EQ_INT(spool_open(&sp, dir, 1 << 20, err, sizeof err), 0);
    spool_stats st;
    spool_get_stats(sp, &st);
    T_EQ_INT(st.frames, 4);
    T_EQ_INT(st.last_seq, 4);
    T_EQ_INT(st.corrupt_frames, 1);
    T_ASSERT(read_expect(sp, 3, 4, sizeof buf));
    /* Appending continues cleanly after the cut. */
    payload(5, buf, sizeof buf);
    T_EQ_INT(spool_append(sp, 5, buf, sizeof buf, err, sizeof err), 0);
    spool_close(sp);
    T_EQ_INT(spool_open(&sp, dir, 1 << 20, err, sizeof err), 0);
    spool_get_stats(sp, &st);
    T_EQ_INT(st.frames, 5);
    T_ASSERT(read_expect(sp, 4, 5, sizeof buf));
    spool_close(sp);
    rm_dir();
}

TEST(spool_corrupt_byte_detected) {
    fresh_dir();
    spool *sp = NULL;
    char err[200];
    T_EQ_INT(spool_open(&sp, dir, 1 << 20, err, sizeof err), 0);
    uint8_t buf[100];
    for (uint64_t s = 1; s <= 3; s++) {
        payload(s, buf, sizeof buf);
        T_EQ_INT(spool_append(sp, s, buf, sizeof buf, err, sizeof err), 0);
    }
    char path[512];
    T_EQ_INT(seg_file(path, sizeof path), 0);
    int fd = open(path, O_WRONLY);
    T_ASSERT(fd >= 0);
    /* Flip a payload byte of frame 2 (frames are 120 bytes: 20 header + 100 payload). */
    uint8_t bad = 0xff;
    T_EQ_INT(pwrite(fd, &bad, 1, 120 + 20 + 50), 1);
    close(fd);
    /* A live spool skips it on read and counts it... */
    T_ASSERT(read_expect(sp, 1, 3, sizeof buf));
    spool_stats st;
    spool_get_stats(sp, &st);
    T_EQ_INT(st.corrupt_frames, 1);
    spool_close(sp);
    /* ...and a reopened one cuts the segment there. */
    T_EQ_INT(spool_open(&sp, dir, 1 << 20, err, sizeof err), 0);
    spool_get_stats(sp, &st);
    T_EQ_INT(st.frames, 1);
    T_EQ_INT(st.corrupt_frames, 1);
    spool_close(sp);
    rm_dir();
}

TEST(spool_refuses_bad_input) {
    fresh_dir();
    spool *sp = NULL;
    char err[200];
    T_EQ_INT(spool_open(&sp, dir, 1000, err, sizeof err), -EINVAL);
    T_ASSERT(strstr(err, "below the minimum") != NULL);
    T_EQ_INT(spool_open(&sp, dir, 64 * 1024, err, sizeof err), 0);
    static uint8_t big[20000];
    T_EQ_INT(spool_append(sp, 1, big, sizeof big, err, sizeof err), -EMSGSIZE);
    T_EQ_INT(spool_append(sp, 1, big, 10, err, sizeof err), 0);
    T_EQ_INT(spool_append(sp, 1, big, 10, err, sizeof err), -EINVAL);
    T_ASSERT(strstr(err, "not above the last") != NULL);
    /* One spool, one owner: a second open of the same directory is refused. */
    spool *sp2 = NULL;
    T_EQ_INT(spool_open(&sp2, dir, 64 * 1024, err, sizeof err), -EBUSY);
    T_ASSERT(strstr(err, "in use by another agent") != NULL);
    spool_close(sp);
    T_EQ_INT(spool_open(&sp2, dir, 64 * 1024, err, sizeof err), 0);
    spool_close(sp2);
    /* A file where the directory should be. */
    char file[300];
    snprintf(file, sizeof file, "%s/afile", dir);
    FILE *f = fopen(file, "w");
    T_ASSERT(f != NULL);
    fclose(f);
    T_EQ_INT(spool_open(&sp, file, 1 << 20, err, sizeof err), -ENOTDIR);
    T_ASSERT(strstr(err, "afile") != NULL);
    spool_close(NULL);
    rm_dir();
}

TEST(spool_partial_ack_then_full_counts_only_unacked) {
    fresh_dir();
    spool *sp = NULL;
    char err[200];
    T_EQ_INT(spool_open(&sp, dir, 64 * 1024, err, sizeof err), 0);
    /* 1020-byte frames: 8 per 8 KiB segment, 8 segments in the 64 KiB bound. */
    uint8_t buf[1000];
    for (uint64_t s = 1; s <= 8; s++) {
        payload(s, buf, sizeof buf);
        T_EQ_INT(spool_append(sp, s, buf, sizeof buf, err, sizeof err), 0);
    }
    T_EQ_INT(spool_ack(sp, 3), 0); /* part of the first segment */
    spool_stats st;
    spool_get_stats(sp, &st);
    T_EQ_INT(st.frames, 5);
    T_EQ_INT(st.first_seq, 4);
    T_ASSERT(read_expect(sp, 0, 4, sizeof buf));
    /* The partial ack survives a restart too. */
    spool_close(sp);
    T_EQ_INT(spool_open(&sp, dir, 64 * 1024, err, sizeof err), 0);
    spool_get_stats(sp, &st);
    T_EQ_INT(st.frames, 5);
    T_EQ_INT(st.first_seq, 4);
    T_EQ_INT(st.acked_seq, 3);
    /* Fill until the first segment goes: only its 5 unacknowledged frames count as dropped. */
    uint64_t s = 9;
    while (st.dropped_frames == 0 && s < 200) {
        payload(s, buf, sizeof buf);
        T_EQ_INT(spool_append(sp, s, buf, sizeof buf, err, sizeof err), 0);
        spool_get_stats(sp, &st);
        s++;
    }
    T_EQ_INT(st.dropped_frames, 5);
    T_EQ_INT(st.dropped_bytes, 5 * 1020);
    T_EQ_INT(st.frames + 3 + st.dropped_frames, s - 1);
    T_EQ_INT(st.first_seq, 9);
    T_ASSERT(read_expect(sp, 0, 9, sizeof buf));
    spool_close(sp);
    rm_dir();
}

TEST(spool_reads_in_order_with_rewind) {
    fresh_dir();
    spool *sp = NULL;
    char err[200];
    T_EQ_INT(spool_open(&sp, dir, 1 << 20, err, sizeof err), 0);
    uint8_t buf[3000];
    for (uint64_t s = 10; s < 400; s += 3) { /* gaps in the numbering, several segments */
        payload(s, buf, sizeof buf);
        T_EQ_INT(spool_append(sp, s, buf, sizeof buf, err, sizeof err), 0);
    }
    /* A first pass reads everything in order... */
    uint64_t after = 0, seq, n = 0;
    void *d;
    size_t l;
    while (spool_read_next(sp, after, &seq, &d, &l) == 1) {
        T_EQ_INT(seq, after == 0 ? 10 : after + 3);
        free(d);
        after = seq;
        n++;
    }
    T_EQ_INT(n, 130);
    /* ...and a resend after a reconnect starts again from wherever the caller says. */
    T_ASSERT(read_expect(sp, 100, 103, sizeof buf));
    T_ASSERT(read_expect(sp, 11, 13, sizeof buf));
    T_ASSERT(read_expect(sp, 0, 10, sizeof buf));
    T_EQ_INT(spool_ack(sp, 200), 0);
    T_ASSERT(read_expect(sp, 0, 202, sizeof buf));
    spool_close(sp);
    rm_dir();
}
