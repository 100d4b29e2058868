/* exec_tracker_test.c: completions matched by (workload, generation, seq), never by replica
 * name; re-apply and delete cancel what is pending; deadlines; one action per replica; bounds. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "exec/tracker.h"
#include "test.h"

typedef struct seen {
    int n;
    char last[512];
    void *handle;
} seen;

static void note(void *arg, const exec_pending *p) {
    seen *s = arg;
    s->n++;
    snprintf(s->last, sizeof s->last, "%s/%s#%llu", p->workload, p->replica,
             (unsigned long long)p->seq);
    s->handle = p->handle;
}

TEST(tracker_complete_matches_the_triple) {
    exec_tracker *t = exec_tracker_new(8);
    T_ASSERT(t);
    uint64_t a, b;
    int h1, h2;
    T_EQ_INT(exec_tracker_begin(t, "web", 3, "web-1", "replica-start", 1000, 5000, &h1, &a), 0);
    T_EQ_INT(exec_tracker_begin(t, "web", 3, "web-2", "activate", 1000, 5000, &h2, &b), 0);
    T_ASSERT(b > a);
    exec_pending p;
    T_EQ_INT(exec_tracker_complete(t, "web", 2, a, &p), 0);   /* another generation */
    T_EQ_INT(exec_tracker_complete(t, "api", 3, a, &p), 0);   /* another workload */
    T_EQ_INT(exec_tracker_complete(t, "web", 3, 999, &p), 0); /* unknown seq */
    T_EQ_INT(exec_tracker_complete(t, "web", 3, a, &p), 1);
    T_EQ_STR(p.replica, "web-1");
    T_EQ_STR(p.action, "replica-start");
    T_ASSERT(p.handle == &h1);
    T_EQ_INT(exec_tracker_complete(t, "web", 3, a, &p), 0); /* only once */
    T_EQ_INT((int)exec_tracker_count(t, NULL), 1);
    exec_tracker_free(t);
}

TEST(tracker_reapply_makes_old_completions_stale) {
    exec_tracker *t = exec_tracker_new(8);
    uint64_t old, fresh;
    seen s = {0};
    T_EQ_INT(exec_tracker_begin(t, "web", 1, "web-1", "replica-start", 0, 5000, NULL, &old), 0);
    /* re-apply: generation 2 keeps nothing of 1 */
    T_EQ_INT(exec_tracker_forget(t, "web", 2, note, &s), 1);
    T_EQ_INT(s.n, 1);
    T_EQ_STR(s.last, "web/web-1#1");
    /* a new replica of the same name under generation 2 */
    T_EQ_INT(exec_tracker_begin(t, "web", 2, "web-1", "replica-start", 10, 5000, NULL, &fresh), 0);
    /* the late answer of generation 1 does not land on it */
    T_EQ_INT(exec_tracker_complete(t, "web", 1, old, NULL), 0);
    T_EQ_INT(exec_tracker_busy(t, "web", "web-1"), 1);
    T_EQ_INT(exec_tracker_complete(t, "web", 2, fresh, NULL), 1);
    T_EQ_INT(exec_tracker_busy(t, "web", "web-1"), 0);
    exec_tracker_free(t);
}

TEST(tracker_delete_cancels_all_of_a_workload_only) {
    exec_tracker *t = exec_tracker_new(8);
    uint64_t s1, s2, s3;
    int hw;
    seen s = {0};
    T_EQ_INT(exec_tracker_begin(t, "web", 1, "web-1", "drain", 0, 100, &hw, &s1), 0);
    T_EQ_INT(exec_tracker_begin(t, "web", 2, "web-2", "drain", 0, 100, &hw, &s2), 0);
    T_EQ_INT(exec_tracker_begin(t, "api", 1, "api-1", "drain", 0, 100, NULL, &s3), 0);
    T_EQ_INT(exec_tracker_forget(t, "web", 0, note, &s), 2);
    T_ASSERT(s.handle == &hw);
    T_EQ_INT((int)exec_tracker_count(t, "web"), 0);
    T_EQ_INT((int)exec_tracker_count(t, "api"), 1);
    T_EQ_INT(exec_tracker_complete(t, "web", 1, s1, NULL), 0);
    T_EQ_INT(exec_tracker_complete(t, "api", 1, s3, NULL), 1);
    exec_tracker_free(t);
}

TEST(tracker_deadlines) {
    exec_tracker *t = exec_tracker_new(8);
    uint64_t a, b;
    seen s = {0};
    T_EQ_INT(exec_tracker_begin(t, "web", 1, "web-1", "standby", 1000, 500, NULL, &a), 0);
    T_EQ_INT(exec_tracker_begin(t, "web", 1, "web-2", "standby", 1000, 2000, NULL, &b), 0);
    T_EQ_INT(exec_tracker_expire(t, 1499, note, &s), 0);
    T_EQ_INT(exec_tracker_expire(t, 1500, note, &s), 1);
    T_EQ_STR(s.last, "web/web-1#1");
    T_EQ_INT(exec_tracker_complete(t, "web", 1, a, NULL), 0); /* expired: stale */
    T_EQ_INT(exec_tracker_complete(t, "web", 1, b, NULL), 1);
    exec_tracker_free(t);
}

TEST(tracker_bounds_and_one_action_per_replica) {
    exec_tracker *t = exec_tracker_new(2);
    uint64_t q;
    char longname[EXEC_WORKLOAD_MAX + 1];
    memset(longname, 'w', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    T_EQ_INT(exec_tracker_begin(t, "web", 1, "web-1", "drain", 0, 1, NULL, &q), 0);
    T_EQ_INT(exec_tracker_begin(t, "web", 1, "web-1", "standby", 0, 1, NULL, &q), -EBUSY);
    T_EQ_INT(exec_tracker_begin(t, "web", 1, "web-2", "drain", 0, 1, NULL, &q), 0);
    T_EQ_INT(exec_tracker_begin(t, "web", 1, "web-3", "drain", 0, 1, NULL, &q), -ENOSPC);
    T_EQ_INT(exec_tracker_begin(t, longname, 1, "x", "drain", 0, 1, NULL, &q), -EINVAL);
    T_EQ_INT(exec_tracker_begin(t, "", 1, "x", "drain", 0, 1, NULL, &q), -EINVAL);
    T_EQ_INT(exec_tracker_begin(t, "web", 0, "x", "drain", 0, 1, NULL, &q), -EINVAL);
    T_EQ_INT(exec_tracker_begin(t, "web", 1, "../x", "drain", 0, 1, NULL, &q), -EINVAL);
    /* a replica id of a Kubernetes pod name's full length fits */
    exec_tracker *u = exec_tracker_new(1);
    char id[TIDE_REPLICA_ID_MAX + 1];
    memset(id, 'p', TIDE_REPLICA_ID_MAX);
    id[TIDE_REPLICA_ID_MAX] = 0;
    T_EQ_INT(exec_tracker_begin(u, "web", 1, id, "replica-start", 0, 1, NULL, &q), 0);
    T_EQ_INT(exec_tracker_busy(u, "web", id), 1);
    exec_tracker_free(u);
    exec_tracker_free(t);
    T_ASSERT(exec_tracker_new(0) == NULL);
}
