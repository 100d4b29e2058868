/* etcd_json_test.c: the etcd v3 JSON gateway bodies (cluster/etcd_json.h) on answers as etcd
 * 3.4 sends them (copied from a live gateway), and the rendezvous ring (cluster/ring.h): a
 * join or leave moves at most ~1/N of the workloads, and they spread evenly. */
#include "cluster/etcd_json.h"
#include "cluster/ring.h"
#include "test.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

TEST(etcd_b64_round_trip) {
    const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar", "/tide/owners/w1"};
    const char *out[] = {"",         "Zg==",     "Zm8=",     "Zm9v",
                         "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy", "L3RpZGUvb3duZXJzL3cx"};
    for (int i = 0; i < 8; i++) {
        char *e = etcd_b64_encode(in[i], strlen(in[i]));
        T_EQ_STR(e, out[i]);
        char *d;
        size_t n;
        T_EQ_INT(etcd_b64_decode(e, strlen(e), 100, &d, &n), 0);
        T_EQ_INT(n, strlen(in[i]));
        T_EQ_STR(d, in[i]);
        free(d);
        free(e);
    }
    char *d;
    size_t n;
    T_EQ_INT(etcd_b64_decode("Zm9", 3, 100, &d, &n), -EINVAL);    /* not a multiple of 4 */
    T_EQ_INT(etcd_b64_decode("Zm*v", 4, 100, &d, &n), -EINVAL);   /* a bad character */
    T_EQ_INT(etcd_b64_decode("Z=9v", 4, 100, &d, &n), -EINVAL);   /* padding in the middle */
    T_EQ_INT(etcd_b64_decode("Zm9vYmFy", 8, 5, &d, &n), -EINVAL); /* longer than max */
    unsigned char bin[3] = {0, 0xff, 0x80};                       /* binary bytes survive */
    char *e = etcd_b64_encode(bin, 3);
    T_EQ_INT(etcd_b64_decode(e, strlen(e), 10, &d, &n), 0);
    T_EQ_INT(n, 3);
    T_ASSERT(memcmp(d, bin, 3) == 0);
    free(d);
    free(e);
}

TEST(etcd_prefix_end) {
    size_t n;
    char *e = etcd_prefix_end("/tide/", 6, &n);
    T_EQ_INT(n, 6);
    T_EQ_STR(e, "/tide0");
    free(e);
    char ff[3] = {'a', (char)0xff, 0};
    e = etcd_prefix_end(ff, 2, &n);
    T_EQ_INT(n, 1);
    T_EQ_INT(e[0], 'b');
    free(e);
}

TEST(etcd_range_answer) {
    /* etcd 3.4's gateway: int64 as strings, zero values (lease, a second key's value) left out */
    const char *a =
        "{\"header\":{\"cluster_id\":\"14841639068965178418\",\"member_id\":"
        "\"10276657743932975437\","
        "\"revision\":\"42\",\"raft_term\":\"2\"},\"kvs\":[{\"key\":\"L3RpZGUvc3BlY3MvdzE=\","
        "\"create_revision\":\"5\",\"mod_revision\":\"41\",\"version\":\"3\",\"value\":\"YQ==\"},"
        "{\"key\":\"L3RpZGUvb3duZXJzL3cx\",\"create_revision\":\"7\",\"mod_revision\":\"7\","
        "\"version\":\"1\",\"lease\":\"7587863094744414478\"}],\"more\":true,\"count\":\"9\"}";
    etcd_range r;
    char err[200];
    T_EQ_INT(etcd_range_parse(a, strlen(a), 10, &r, err, sizeof err), 0);
    T_EQ_INT(r.revision, 42);
    T_EQ_INT(r.n, 2);
    T_EQ_INT(r.more, 1);
    T_EQ_INT(r.count, 9);
    T_EQ_STR(r.kvs[0].key, "/tide/specs/w1");
    T_EQ_STR(r.kvs[0].value, "a");
    T_EQ_INT(r.kvs[0].mod_revision, 41);
    T_EQ_STR(r.kvs[1].value, "");
    T_EQ_INT(r.kvs[1].lease, 7587863094744414478ll);
    etcd_range_free(&r);
    /* an empty range: no kvs at all */
    const char *e = "{\"header\":{\"revision\":\"3\"}}";
    T_EQ_INT(etcd_range_parse(e, strlen(e), 10, &r, err, sizeof err), 0);
    T_EQ_INT(r.n, 0);
    etcd_range_free(&r);
    /* hostile: a bad key, too many kvs, a revision that is no number */
    const char *b = "{\"header\":{\"revision\":\"1\"},\"kvs\":[{\"key\":\"!!!!\"}]}";
    T_EQ_INT(etcd_range_parse(b, strlen(b), 10, &r, err, sizeof err), -EINVAL);
    T_ASSERT(strstr(err, "kvs[0].key") != NULL);
    etcd_range_free(&r);
    T_EQ_INT(etcd_range_parse(a, strlen(a), 1, &r, err, sizeof err), -EINVAL);
    etcd_range_free(&r);
    const char *c = "{\"header\":{\"revision\":\"12x\"}}";
    T_EQ_INT(etcd_range_parse(c, strlen(c), 10, &r, err, sizeof err), -EINVAL);
    etcd_range_free(&r);
    T_EQ_INT(etcd_range_parse("[1]", 3, 10, &r, err, sizeof err), -EINVAL);
    etcd_range_free(&r);
}

TEST(etcd_txn_answer) {
    int ok;
    int64_t rev;
    etcd_kv kv;
    char err[200];
    const char *won = "{\"header\":{\"revision\":\"17\"},\"succeeded\":true,\"responses\":[{"
                      "\"response_put\":{\"header\":{\"revision\":\"17\"}}}]}";
    T_EQ_INT(etcd_txn_parse(won, strlen(won), &ok, &rev, &kv, err, sizeof err), 0);
    T_EQ_INT(ok, 1);
    T_EQ_INT(rev, 17);
    T_ASSERT(kv.key == NULL);
    /* lost: no "succeeded", the failure branch's range names the holder */
    const char *lost =
        "{\"header\":{\"revision\":\"18\"},\"responses\":[{\"response_range\":{\"header\":{"
        "\"revision\":\"18\"},\"kvs\":[{\"key\":\"L3RpZGUvb3duZXJzL3cx\",\"create_revision\":"
        "\"9\",\"mod_revision\":\"9\",\"version\":\"1\",\"value\":\"Y3Ay\",\"lease\":\"77\"}],"
        "\"count\":\"1\"}}]}";
    T_EQ_INT(etcd_txn_parse(lost, strlen(lost), &ok, &rev, &kv, err, sizeof err), 0);
    T_EQ_INT(ok, 0);
    T_EQ_STR(kv.value, "cp2");
    T_EQ_INT(kv.create_revision, 9);
    T_EQ_INT(kv.lease, 77);
    etcd_kv_fini(&kv);
    const char *bad = "{\"header\":{\"revision\":\"1\"},\"succeeded\":\"yes\"}";
    T_EQ_INT(etcd_txn_parse(bad, strlen(bad), &ok, &rev, &kv, err, sizeof err), -EINVAL);
    etcd_kv_fini(&kv);
}

TEST(etcd_lease_answers) {
    int64_t id, ttl;
    char err[200];
    const char *g =
        "{\"header\":{\"revision\":\"3\"},\"ID\":\"7587863094744414478\",\"TTL\":\"5\"}";
    T_EQ_INT(etcd_lease_parse(g, strlen(g), &id, &ttl, err, sizeof err), 0);
    T_EQ_INT(id, 7587863094744414478ll);
    T_EQ_INT(ttl, 5);
    const char *k = "{\"result\":{\"header\":{\"revision\":\"3\"},\"ID\":\"12\",\"TTL\":\"5\"}}";
    T_EQ_INT(etcd_lease_parse(k, strlen(k), &id, &ttl, err, sizeof err), 0);
    T_EQ_INT(ttl, 5);
    /* the keep-alive of an expired lease: TTL left out (zero) */
    const char *gone = "{\"result\":{\"header\":{\"revision\":\"3\"},\"ID\":\"12\"}}";
    T_EQ_INT(etcd_lease_parse(gone, strlen(gone), &id, &ttl, err, sizeof err), 0);
    T_EQ_INT(ttl, 0);
    /* a uint64 ID above INT64_MAX is kept as its two's complement */
    const char *big = "{\"ID\":\"18446744073709551615\",\"TTL\":\"5\"}";
    T_EQ_INT(etcd_lease_parse(big, strlen(big), &id, &ttl, err, sizeof err), 0);
    T_EQ_INT(id, -1);
    const char *over = "{\"ID\":\"18446744073709551616\",\"TTL\":\"5\"}";
    T_EQ_INT(etcd_lease_parse(over, strlen(over), &id, &ttl, err, sizeof err), -EINVAL);
}

TEST(etcd_watch_lines) {
    etcd_watch_msg m;
    char err[200];
    const char *created = "{\"result\":{\"header\":{\"revision\":\"20\"},\"created\":true}}";
    T_EQ_INT(etcd_watch_parse(created, strlen(created), &m, err, sizeof err), 0);
    T_EQ_INT(m.created, 1);
    T_EQ_INT(m.n, 0);
    etcd_watch_msg_free(&m);
    /* a PUT carries no "type"; a DELETE's kv has the key and the deletion's revision */
    const char *ev =
        "{\"result\":{\"header\":{\"revision\":\"22\"},\"events\":[{\"kv\":{\"key\":"
        "\"L3RpZGUvc3BlY3MvdzE=\",\"create_revision\":\"21\",\"mod_revision\":\"21\",\"version\":"
        "\"1\",\"value\":\"YQ==\"}},{\"type\":\"DELETE\",\"kv\":{\"key\":\"L3RpZGUvb3duZXJzL3cx\","
        "\"mod_revision\":\"22\"}}]}}";
    T_EQ_INT(etcd_watch_parse(ev, strlen(ev), &m, err, sizeof err), 0);
    T_EQ_INT(m.n, 2);
    T_EQ_INT(m.ev[0].deleted, 0);
    T_EQ_STR(m.ev[0].kv.key, "/tide/specs/w1");
    T_EQ_INT(m.ev[1].deleted, 1);
    T_EQ_INT(m.ev[1].kv.mod_revision, 22);
    etcd_watch_msg_free(&m);
    const char *comp = "{\"result\":{\"header\":{\"revision\":\"90\"},\"canceled\":true,"
                       "\"compact_revision\":\"50\",\"cancel_reason\":\"mvcc: required revision "
                       "has been compacted\"}}";
    T_EQ_INT(etcd_watch_parse(comp, strlen(comp), &m, err, sizeof err), 0);
    T_EQ_INT(m.canceled, 1);
    T_EQ_INT(m.compact_revision, 50);
    etcd_watch_msg_free(&m);
    const char *e = "{\"error\":{\"grpc_code\":14,\"http_code\":503,\"message\":\"etcdserver: no "
                    "leader\",\"http_status\":\"Service Unavailable\"}}";
    T_EQ_INT(etcd_watch_parse(e, strlen(e), &m, err, sizeof err), -EPROTO);
    T_ASSERT(strstr(err, "no leader") != NULL);
    etcd_watch_msg_free(&m);
    const char *t = "{\"result\":{\"header\":{\"revision\":\"1\"},\"events\":[{\"type\":\"X\"}]}}";
    T_EQ_INT(etcd_watch_parse(t, strlen(t), &m, err, sizeof err), -EINVAL);
    etcd_watch_msg_free(&m);
}

TEST(etcd_error_body) {
    int code;
    char msg[100];
    const char *a = "{\"error\":\"etcdserver: requested lease not found\",\"code\":5,\"message\":"
                    "\"etcdserver: requested lease not found\"}";
    T_EQ_INT(etcd_error_parse(a, strlen(a), &code, msg, sizeof msg), 1);
    T_EQ_INT(code, 5);
    T_EQ_STR(msg, "etcdserver: requested lease not found");
    T_EQ_INT(etcd_error_parse("{\"header\":{}}", 13, &code, msg, sizeof msg), 0);
}

/* W workloads over members m0..m(n-1): how many change owner when member `extra` joins. */
static int moved_on_join(int w, int n) {
    const char *names[16];
    char buf[16][16];
    for (int i = 0; i <= n; i++) {
        snprintf(buf[i], sizeof buf[i], "cp-%d", i);
        names[i] = buf[i];
    }
    int moved = 0;
    for (int k = 0; k < w; k++) {
        char wl[32];
        snprintf(wl, sizeof wl, "default/web-%d", k);
        int a = ring_owner(names, n, wl), b = ring_owner(names, n + 1, wl);
        if (a != b) {
            if (b != n) return -1; /* a workload moved between two members that stayed */
            moved++;
        }
    }
    return moved;
}

TEST(ring_join_leave_moves_one_nth) {
    /* a join moves only workloads to the new member, about W/(N+1) of them; a leave is the
     * same move backwards */
    for (int n = 1; n <= 8; n++) {
        int w = 3000, m = moved_on_join(w, n);
        T_ASSERT(m >= 0);
        double expect = (double)w / (n + 1);
        if (!(m <= 1.5 * expect && m >= 0.5 * expect))
            T_FAIL("join of member %d: %d of %d moved, expected about %.0f", n + 1, m, w, expect);
    }
}

TEST(ring_spreads_evenly) {
    const char *names[] = {"cp-a", "cp-b", "cp-c"};
    int count[3] = {0};
    for (int k = 0; k < 3000; k++) {
        char wl[32];
        snprintf(wl, sizeof wl, "w%d", k);
        count[ring_owner(names, 3, wl)]++;
    }
    for (int i = 0; i < 3; i++)
        T_ASSERT(count[i] > 850 && count[i] < 1150);
    T_EQ_INT(ring_owner(names, 0, "w"), -1);
}
