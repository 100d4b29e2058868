/* fence_test.c: the agent's fencing-token table (agent/fence.c): ordering (older refused,
 * equal and newer accepted, 0 only before any token), persistence (atomic file, read back,
 * damage refused with the line named), expiry of unused entries and the bound on workloads;
 * and the COMMAND fence on the wire (shared/wire.c). */
#include "fence.h"
#include "test.h"
#include "wire.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

TEST(fence_older_tokens_refused_zero_only_before_any) {
    fence_table t;
    fence_init(&t, 64, 86400);
    uint64_t seen = 99;
    /* nothing seen: a control plane without HA (token 0) is obeyed */
    T_EQ_INT(fence_check(&t, "web", 0, &seen), FENCE_ACCEPT);
    T_EQ_INT(seen, 0);
    T_EQ_INT(fence_check(&t, "web", 5, &seen), FENCE_NEWER);
    T_EQ_INT(fence_record(&t, "web", 5, 1000), 0);
    T_EQ_INT(fence_check(&t, "web", 5, &seen), FENCE_ACCEPT);
    T_EQ_INT(seen, 5);
    T_EQ_INT(fence_check(&t, "web", 4, &seen), FENCE_STALE);
    T_EQ_INT(fence_check(&t, "web", 0, &seen), FENCE_STALE); /* 0 after a token: refused */
    T_EQ_INT(fence_check(&t, "web", 6, &seen), FENCE_NEWER);
    /* per workload: another one is unaffected */
    T_EQ_INT(fence_check(&t, "api", 0, &seen), FENCE_ACCEPT);
    T_EQ_INT(fence_check(&t, "api", 1, &seen), FENCE_NEWER);
    /* record never lowers */
    T_EQ_INT(fence_record(&t, "web", 3, 1001), 0);
    T_EQ_INT(fence_get(&t, "web"), 5);
    T_EQ_INT(fence_record(&t, "web", 0, 1001), -EINVAL);
    T_EQ_INT(fence_record(&t, "bad name", 1, 1001), -EINVAL);
    fence_fini(&t);
}

TEST(fence_bound_drops_least_recently_used_and_expiry_old_ones) {
    fence_table t;
    fence_init(&t, 16, 3600);
    char name[32];
    for (int i = 0; i < 16; i++) {
        snprintf(name, sizeof name, "w%d", i);
        T_EQ_INT(fence_record(&t, name, 10 + (uint64_t)i, 1000 + i), 0);
    }
    T_EQ_INT(t.n, 16);
    T_EQ_INT(fence_record(&t, "w0", 10, 2000), 0); /* w0 used again: w1 is now the oldest */
    T_EQ_INT(fence_record(&t, "new", 7, 2001), 0);
    T_EQ_INT(t.n, 16);
    T_EQ_INT(t.evicted, 1);
    T_EQ_INT(fence_get(&t, "w1"), 0);
    T_EQ_INT(fence_get(&t, "w0"), 10);
    T_EQ_INT(fence_get(&t, "new"), 7);
    /* an hour and more later every entry not used since is dropped */
    T_EQ_INT(fence_record(&t, "late", 1, 2001 + 3600), 0);
    T_EQ_INT(t.n, 2); /* "new" (used at 2001, just within the hour) and "late" */
    T_EQ_INT(fence_get(&t, "new"), 7);
    T_EQ_INT(fence_get(&t, "w0"), 0);
    T_EQ_INT(t.expired, 15);
    fence_fini(&t);
}

static const char *tmpdir(void) {
    static char d[64];
    snprintf(d, sizeof d, "/tmp/tide-fence-test.XXXXXX");
    return mkdtemp(d);
}

TEST(fence_persists_atomically_and_reads_back) {
    const char *dir = tmpdir();
    T_ASSERT(dir);
    char path[128], err[512];
    snprintf(path, sizeof path, "%s/fence", dir);
    fence_table t, u;
    fence_init(&t, 64, 86400 * 30);
    fence_init(&u, 64, 86400 * 30);
    T_EQ_INT(fence_load(&u, path, 5000, err, sizeof err), 0); /* missing: empty */
    T_EQ_INT(u.n, 0);
    T_EQ_INT(fence_record(&t, "web", 18446744073709551615ull, 4000), 0);
    T_EQ_INT(fence_record(&t, "api.v2_x-y", 42, 4001), 0);
    T_EQ_INT(fence_save(&t, path, err, sizeof err), 0);
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    T_ASSERT(access(tmp, F_OK) != 0); /* renamed into place */
    T_EQ_INT(fence_load(&u, path, 5000, err, sizeof err), 0);
    T_EQ_INT(u.n, 2);
    T_ASSERT(fence_get(&u, "web") == 18446744073709551615ull);
    T_EQ_INT(fence_get(&u, "api.v2_x-y"), 42);
    /* expired entries are not loaded */
    fence_table old;
    fence_init(&old, 64, 500);
    T_EQ_INT(fence_load(&old, path, 4700, err, sizeof err), 0);
    T_EQ_INT(old.n, 0);
    fence_fini(&old);
    /* a smaller bound keeps the most recently used */
    fence_table small;
    fence_init(&small, 16, 86400);
    char name[32];
    for (int i = 0; i < 20; i++) {
        snprintf(name, sizeof name, "w%02d", i);
        T_EQ_INT(fence_record(&t, name, 1, 4100 + i), 0);
    }
    T_EQ_INT(fence_save(&t, path, err, sizeof err), 0);
    T_EQ_INT(fence_load(&small, path, 5000, err, sizeof err), 0);
    T_EQ_INT(small.n, 16);
    T_EQ_INT(fence_get(&small, "w19"), 1);
    T_EQ_INT(fence_get(&small, "web"), 0); /* used least recently */
    fence_fini(&small);
    /* a torn or damaged file is refused, naming the line */
    FILE *f = fopen(path, "w");
    T_ASSERT(f);
    fputs("tide-fence 1\n7 4000 web\n", f);
    fclose(f);
    T_EQ_INT(fence_load(&u, path, 5000, err, sizeof err), -EINVAL);
    T_ASSERT(strstr(err, "no end line") != NULL);
    T_EQ_INT(u.n, 0);
    f = fopen(path, "w");
    fputs("tide-fence 1\n7 4000 web\nx 1 api\nend 2\n", f);
    fclose(f);
    T_EQ_INT(fence_load(&u, path, 5000, err, sizeof err), -EINVAL);
    T_ASSERT(strstr(err, "line 3") != NULL);
    f = fopen(path, "w");
    fputs("tide-fence 1\n7 4000 web\nend 2\n", f);
    fclose(f);
    T_EQ_INT(fence_load(&u, path, 5000, err, sizeof err), -EINVAL);
    T_ASSERT(strstr(err, "end says 2") != NULL);
    /* listed twice: the higher token */
    f = fopen(path, "w");
    fputs("tide-fence 1\n7 4000 web\n9 3999 web\n8 4001 web\nend 3\n", f);
    fclose(f);
    T_EQ_INT(fence_load(&u, path, 5000, err, sizeof err), 0);
    T_EQ_INT(fence_get(&u, "web"), 9);
    /* an unwritable place says so */
    char bad[160];
    snprintf(bad, sizeof bad, "%s/no/such/dir/fence", dir);
    T_ASSERT(fence_save(&t, bad, err, sizeof err) < 0);
    T_ASSERT(strstr(err, "open") != NULL);
    fence_fini(&t);
    fence_fini(&u);
    unlink(path);
    rmdir(dir);
}

TEST(fence_command_on_the_wire_is_optional_and_checked) {
    wire_buf b;
    wire_buf_init(&b);
    cJSON *args = cJSON_CreateObject();
    long n1 = wire_enc_command_fenced(&b, 1, "c1", "ping", args, "web", 77, 1 << 20);
    long n2 = wire_enc_command(&b, 2, "c2", "ping", args, 1 << 20);
    T_ASSERT(n1 > 0 && n2 > 0);
    wire_decoder d;
    T_EQ_INT(wire_decoder_init(&d, 1 << 20), 0);
    T_EQ_INT(wire_decoder_feed(&d, b.data, b.len), 0);
    wire_msg m;
    T_EQ_INT(wire_decoder_next(&d, &m), WIRE_FRAME);
    T_EQ_INT(m.u.command.workload.len, 3);
    T_ASSERT(!memcmp(m.u.command.workload.p, "web", 3));
    T_EQ_INT(m.u.command.fence, 77);
    T_EQ_INT(wire_decoder_next(&d, &m), WIRE_FRAME);
    T_EQ_INT(m.u.command.workload.len, 0); /* an older control plane: no fence */
    T_EQ_INT(m.u.command.fence, 0);
    wire_decoder_fini(&d);
    /* a bad workload name in the fence is a protocol error */
    wire_buf_consume(&b, b.len);
    T_ASSERT(wire_enc_command_fenced(&b, 3, "c3", "ping", args, "bad name", 1, 1 << 20) > 0);
    T_EQ_INT(wire_decoder_init(&d, 1 << 20), 0);
    T_EQ_INT(wire_decoder_feed(&d, b.data, b.len), 0);
    T_EQ_INT(wire_decoder_next(&d, &m), WIRE_ERROR);
    T_ASSERT(strstr(d.err, "fence.workload") != NULL);
    wire_decoder_fini(&d);
    cJSON_Delete(args);
    wire_buf_fini(&b);
}
