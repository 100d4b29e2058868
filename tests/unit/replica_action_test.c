/* replica_action_test.c: cgroup path resolution (captured mountinfo and /proc/PID/cgroup),
 * and standby/activate/drain run on a libev loop against real cgroups and a real child process
 * (skipped when cgroups cannot be created here), plus the clear errors for a cgroup that does
 * not exist, a missing HAProxy socket and bad arguments. */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <ev.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "actions/replica_action.h"
#include "actions/replica_cgroup.h"
#include "fixture.h"
#include "test.h"

TEST(rcg_mountinfo_hybrid) {
    size_t len;
    char *t = fixture_slurp("node_actions/mountinfo_hybrid.txt", &len), err[256];
    T_ASSERT(t);
    rcg_hierarchies hs;
    T_EQ_INT(rcg_parse_mountinfo(t, len, &hs, err, sizeof err), 0);
    T_EQ_INT(hs.n, 10);
    T_EQ_STR(hs.h[0].mount, "/sys/fs/cgroup/cpu");
    T_EQ_STR(hs.h[0].options, "rw,cpu");
    T_EQ_INT(hs.h[9].v2, 1);
    T_EQ_STR(hs.h[9].mount, "/sys/fs/cgroup/unified");
    T_EQ_INT(rcg_parse_mountinfo("1 2 3\n", 6, &hs, err, sizeof err), -EINVAL);
    T_EQ_STR(err, "mountinfo line 1 is malformed");
    /* pure v2 with a bind mount of the same hierarchy: one hierarchy */
    const char *v2 =
        "30 23 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"
        "99 30 0:26 /x /mnt/cg rw - cgroup2 cgroup2 rw,nsdelegate\n";
    T_EQ_INT(rcg_parse_mountinfo(v2, strlen(v2), &hs, err, sizeof err), 0);
    T_EQ_INT(hs.n, 1);
    T_EQ_STR(hs.h[0].mount, "/sys/fs/cgroup");
    T_EQ_INT(rcg_favordynmods(&hs), 0);
    /* favordynmods among the super options (v2 and v1); a per-mount option of that name is not */
    const char *fdm =
        "30 23 0:26 / /sys/fs/cgroup/unified rw shared:4 - cgroup2 cgroup2 rw,favordynmods\n";
    T_EQ_INT(rcg_parse_mountinfo(fdm, strlen(fdm), &hs, err, sizeof err), 0);
    T_EQ_INT(hs.h[0].favordynmods, 1);
    T_EQ_INT(rcg_favordynmods(&hs), 1);
    const char *fdm1 = "31 23 0:27 / /sys/fs/cgroup/freezer rw,favordynmods - cgroup cgroup "
                       "rw,freezer\n32 23 0:28 / /sys/fs/cgroup/cpu rw - cgroup cgroup "
                       "rw,cpu,favordynmods\n";
    T_EQ_INT(rcg_parse_mountinfo(fdm1, strlen(fdm1), &hs, err, sizeof err), 0);
    T_EQ_INT(hs.n, 2);
    T_EQ_INT(hs.h[0].favordynmods, 0);
    T_EQ_INT(hs.h[1].favordynmods, 1);
    T_EQ_STR(hs.h[1].options, "rw,cpu,favordynmods");
    const char *esc = "41 31 0:38 / /sys/fs/cg\\040x rw - cgroup2 cgroup2 rw\n";
    T_EQ_INT(rcg_parse_mountinfo(esc, strlen(esc), &hs, err, sizeof err), 0);
    T_EQ_STR(hs.h[0].mount, "/sys/fs/cg x");
}

TEST(rcg_proc_cgroup_hybrid) {
    size_t len;
    char *t = fixture_slurp("node_actions/proc_pid_cgroup_hybrid.txt", &len), path[256];
    T_ASSERT(t);
    rcg_hierarchy mem = {.v2 = 0, .options = "rw,memory"}, v2 = {.v2 = 1},
                  both = {.options = "rw,cpu,cpuacct"};
    T_EQ_INT(rcg_parse_proc_cgroup(t, len, &mem, path, sizeof path), 0);
    T_ASSERT(strncmp(path, "/process_api/", 13) == 0);
    T_EQ_INT(rcg_parse_proc_cgroup(t, len, &v2, path, sizeof path), 0);
    T_EQ_STR(path, "/");
    const char *combined =
        "3:cpu,cpuacct:/system.slice/web@3.service\n0::/system.slice/web@3.service\n";
    T_EQ_INT(rcg_parse_proc_cgroup(combined, strlen(combined), &both, path, sizeof path), 0);
    T_EQ_STR(path, "/system.slice/web@3.service");
    T_EQ_INT(rcg_parse_proc_cgroup(combined, strlen(combined), &mem, path, sizeof path), -ENOENT);
    T_EQ_INT(rcg_parse_proc_cgroup("garbage\n", 8, &mem, path, sizeof path), -EINVAL);
}

TEST(rcg_path_checks) {
    char err[256];
    T_EQ_INT(rcg_check_path("/system.slice/web@3.service", err, sizeof err), 0);
    T_EQ_INT(rcg_check_path("system.slice", err, sizeof err), -EINVAL);
    T_EQ_INT(rcg_check_path("/a/../b", err, sizeof err), -EINVAL);
    T_EQ_STR(err, "cgroup path '/a/../b' has an empty, '.' or '..' component");
    T_EQ_INT(rcg_check_path("/a//b", err, sizeof err), -EINVAL);
    T_EQ_INT(rcg_check_path("/", err, sizeof err), -EINVAL);
    T_EQ_STR(err, "cgroup path '/' is the root of every hierarchy: name the replica's own cgroup");
}

/* ---- actions on a loop ---- */

typedef struct outcome {
    int called, ok;
    cJSON *result;
    char error[1024];
} outcome;

static void on_done(void *arg, int ok, cJSON *result, const char *error) {
    outcome *o = arg;
    o->called++;
    o->ok = ok;
    o->result = result;
    snprintf(o->error, sizeof o->error, "%s", error ? error : "");
}

static void run(const char *action, const char *json, outcome *o) {
    struct ev_loop *loop = ev_default_loop(0);
    cJSON *args = cJSON_Parse(json);
    memset(o, 0, sizeof *o);
    replica_action_run(loop, action, args, on_done, o);
    while (!o->called)
        ev_run(loop, EVRUN_ONCE);
    ev_run(loop, EVRUN_NOWAIT);
    cJSON_Delete(args);
}

static double num(const cJSON *o, const char *k) {
    return cJSON_GetNumberValue(cJSON_GetObjectItem(o, k));
}

TEST(action_errors_are_clear) {
    outcome o;
    run("standby", "{\"cgroup\": \"/tide-no-such-cgroup-7\"}", &o);
    T_EQ_INT(o.called, 1);
    T_EQ_INT(o.ok, 0);
    T_ASSERT(strstr(o.error, "cgroup /tide-no-such-cgroup-7 not found in any hierarchy"));
    cJSON_Delete(o.result);
    run("drain", "{\"haproxy_socket\": \"/tmp/tide-no-such.sock\", \"haproxy_server\": \"be/s1\"}",
        &o);
    T_EQ_INT(o.ok, 0);
    T_EQ_STR(o.error, "haproxy socket /tmp/tide-no-such.sock missing");
    cJSON_Delete(o.result);
    run("drain", "{}", &o);
    T_EQ_INT(o.ok, 0);
    T_ASSERT(strstr(o.error, "drain needs an HAProxy server"));
    run("drain", "{\"endpoint\": \"127.0.0.1\"}", &o);
    T_EQ_STR(o.error, "endpoint '127.0.0.1' has no port (want ADDR:PORT)");
    run("standby", "{\"cgroup\": \"/x\", \"bogus\": 1}", &o);
    T_EQ_STR(o.error, "unknown argument \"bogus\"");
    run("activate", "{\"cgroup\": \"/x\", \"haproxy_server\": \"be/s1\"}", &o);
    T_EQ_STR(o.error, "\"haproxy_socket\" and \"haproxy_server\" go together");
    run("reboot", "{}", &o);
    T_EQ_STR(o.error, "unknown node action 'reboot' (drain, standby, activate, warmup)");
    run("warmup", "{\"endpoint\": \"127.0.0.1:1\", \"rate\": -3}", &o);
    T_EQ_STR(o.error, "warm-up: \"rate\" must be a number in [0.1, 100000]");
}

TEST(action_drain_endpoint_without_connections) {
    /* nothing listens on this port: no connections, so the drain is clean at once */
    outcome o;
    run("drain", "{\"endpoint\": \"127.0.0.1:1\", \"timeout_ms\": 2000}", &o);
    T_EQ_INT(o.ok, 1);
    T_ASSERT(cJSON_IsTrue(cJSON_GetObjectItem(o.result, "clean")));
    T_EQ_INT(num(o.result, "connections"), 0);
    T_ASSERT(num(o.result, "drain_ms") < 1000);
    cJSON_Delete(o.result);
}

/* Real cgroups: a child process in /tide-ut-PID under freezer, unified and (nested) memory. */
static char cg_dirs[3][1024];
static int cg_n;

static int cg_setup(pid_t child, char *rel, size_t cap) {
    char self[4096];
    FILE *f = fopen("/proc/self/cgroup", "r");
    char memrel[512] = "";
    if (!f) return -1;
    while (fgets(self, sizeof self, f)) {
        char *c = strstr(self, ":memory:");
        if (c) {
            snprintf(memrel, sizeof memrel, "%s", c + 8);
            memrel[strcspn(memrel, "\n")] = '\0';
            if (strcmp(memrel, "/") == 0) memrel[0] = '\0';
        }
    }
    fclose(f);
    snprintf(rel, cap, "/tide-ut-%d", (int)getpid());
    snprintf(cg_dirs[0], sizeof cg_dirs[0], "/sys/fs/cgroup/freezer%s", rel);
    snprintf(cg_dirs[1], sizeof cg_dirs[1], "/sys/fs/cgroup/unified%s", rel);
    snprintf(cg_dirs[2], sizeof cg_dirs[2], "/sys/fs/cgroup/memory%s%s", memrel, rel);
    cg_n = 0;
    for (int i = 0; i < 3; i++) {
        if (mkdir(cg_dirs[i], 0755) != 0) return -1;
        cg_n++;
        char p[1200];
        snprintf(p, sizeof p, "%.1000s/cgroup.procs", cg_dirs[i]);
        FILE *w = fopen(p, "w");
        if (!w) return -1;
        fprintf(w, "%d\n", (int)child);
        if (fclose(w) != 0) return -1;
    }
    return 0;
}

static void cg_teardown(pid_t child) {
    char p[1200];
    for (int i = 0; i < cg_n; i++) {
        snprintf(p, sizeof p, "%.1000s/%s", cg_dirs[i],
                 i == 0   ? "freezer.state"
                 : i == 1 ? "cgroup.freeze"
                          : "x");
        FILE *w = i < 2 ? fopen(p, "w") : NULL;
        if (w) {
            fputs(i == 0 ? "THAWED" : "0", w);
            fclose(w);
        }
    }
    if (child > 0) {
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
    }
    for (int i = cg_n - 1; i >= 0; i--)
        rmdir(cg_dirs[i]);
    cg_n = 0;
}

static long long usage_usec(void) {
    char buf[512];
    if (rcg_read_small(cg_dirs[1], "cpu.stat", buf, sizeof buf) < 0) return -1;
    char *p = strstr(buf, "usage_usec ");
    return p ? atoll(p + 11) : -1;
}

TEST(action_standby_activate_real_cgroup) {
    if (geteuid() != 0 || access("/sys/fs/cgroup/freezer", W_OK) != 0 ||
        access("/sys/fs/cgroup/unified/cgroup.procs", W_OK) != 0) {
        test_skip("needs root and the hybrid cgroup mounts");
        return;
    }
    int pipefd[2], readyfd[2];
    T_ASSERT(pipe(pipefd) == 0);
    T_ASSERT(pipe(readyfd) == 0);
    pid_t child = fork();
    if (child == 0) {
        char c;
        close(pipefd[1]);
        close(readyfd[0]);
        if (read(pipefd[0], &c, 1) != 1) _exit(1); /* wait to be placed in the cgroups */
        size_t n = 32u << 20;
        volatile char *mem = malloc(n);
        for (size_t i = 0; mem && i < n; i += 4096)
            mem[i] = 1;
        if (write(readyfd[1], "r", 1) != 1) _exit(1); /* its memory is charged now */
        close(readyfd[1]);
        for (volatile unsigned long x = 0;; x++) {
        }
    }
    close(pipefd[0]);
    close(readyfd[1]);
    char rel[128], json[512];
    if (cg_setup(child, rel, sizeof rel) != 0) {
        close(pipefd[1]);
        cg_teardown(child);
        test_skip("cannot create cgroups here");
        return;
    }
    T_ASSERT(write(pipefd[1], "g", 1) == 1);
    close(pipefd[1]);
    /* wait until it has faulted its 32 MiB in (inside the cgroups), however loaded the machine */
    struct pollfd pr = {readyfd[0], POLLIN, 0};
    char rc_byte = 0;
    int ready = poll(&pr, 1, 30000) == 1 && read(readyfd[0], &rc_byte, 1) == 1;
    close(readyfd[0]);
    if (!ready) {
        cg_teardown(child);
        T_FAIL("the child did not fault its memory in within 30 s");
    }
    outcome o;
    snprintf(json, sizeof json, "{\"cgroup\": \"%s\"}", rel);
    run("standby", json, &o);
    if (!o.ok) {
        cg_teardown(child);
        T_FAIL("standby failed: %s", o.error);
    }
    char *s = cJSON_PrintUnformatted(o.result);
    printf("standby: %s\n", s);
    free(s);
    T_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(o.result, "freezer")), "v2");
    T_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(o.result, "reclaim_method")),
             "memory.force_empty");
    int mem_ok = num(o.result, "memory_after_bytes") >= (30 << 20); /* no swap: anon memory stays */
    cJSON_Delete(o.result);
    long long u0 = usage_usec();
    usleep(300000);
    long long u1 = usage_usec();
    int alive = kill(child, 0) == 0;
    run("standby", json, &o); /* idempotent */
    int again_ok = o.ok && cJSON_IsTrue(cJSON_GetObjectItem(o.result, "already"));
    cJSON_Delete(o.result);
    run("activate", json, &o);
    int act_ok = o.ok;
    double thaw_ms = num(o.result, "thaw_ms");
    s = cJSON_PrintUnformatted(o.result);
    printf("activate: %s\n", s);
    free(s);
    cJSON_Delete(o.result);
    long long u2 = usage_usec(); /* thawed, it spins again: await 50 ms of CPU (5 s bound: the
                                    machine may be loaded) */
    for (int i = 0; i < 250 && u2 - u1 <= 50000; i++) {
        usleep(20000);
        u2 = usage_usec();
    }
    run("activate", json, &o);
    int act_again = o.ok && cJSON_IsTrue(cJSON_GetObjectItem(o.result, "already"));
    cJSON_Delete(o.result);
    cg_teardown(child);
    T_ASSERT(mem_ok);
    T_ASSERT(alive);
    T_EQ_INT(u1 - u0, 0); /* frozen: no CPU at all */
    T_ASSERT(again_ok);
    T_ASSERT(act_ok);
    T_ASSERT(thaw_ms < 100);
    T_ASSERT(u2 - u1 > 50000); /* thawed: it spins again */
    T_ASSERT(act_again);
}

TEST(action_drain_deadline_and_conflict) {
    /* one live connection to the endpoint: the drain cannot finish before its deadline, and a
     * second action on the same replica meanwhile is refused */
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    T_ASSERT(ls >= 0 && bind(ls, (struct sockaddr *)&a, sizeof a) == 0 && listen(ls, 4) == 0);
    getsockname(ls, (struct sockaddr *)&a, &al);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    T_ASSERT(connect(c, (struct sockaddr *)&a, sizeof a) == 0);
    int s = accept(ls, NULL, NULL);
    char json[256];
    snprintf(
        json, sizeof json,
        "{\"cgroup\": \"/tide-ut-conflict\", \"endpoint\": \"127.0.0.1:%u\", \"timeout_ms\": 300}",
        ntohs(a.sin_port));
    struct ev_loop *loop = ev_default_loop(0);
    cJSON *args = cJSON_Parse(json);
    outcome drain, second;
    memset(&drain, 0, sizeof drain);
    replica_action_run(loop, "drain", args, on_done, &drain);
    cJSON_Delete(args);
    T_EQ_INT(drain.called, 0);
    run("standby", "{\"cgroup\": \"/tide-ut-conflict\"}", &second);
    T_EQ_INT(second.ok, 0);
    T_EQ_STR(second.error,
             "another action (drain) is under way on this replica: retry when it is done");
    while (!drain.called)
        ev_run(loop, EVRUN_ONCE);
    close(s);
    close(c);
    close(ls);
    T_EQ_INT(drain.ok, 0);
    T_EQ_STR(drain.error, "drain not clean after 300 ms: 0 sessions, 1 connections still open");
    T_ASSERT(cJSON_IsFalse(cJSON_GetObjectItem(drain.result, "clean")));
    T_ASSERT(num(drain.result, "drain_ms") >= 300);
    cJSON_Delete(drain.result);
}

TEST(action_standby_v1_freezer_only) {
    /* a replica only in the v1 freezer hierarchy: standby must use freezer.state */
    if (geteuid() != 0 || access("/sys/fs/cgroup/freezer", W_OK) != 0) {
        test_skip("needs root and a v1 freezer mount");
        return;
    }
    char rel[64], dir[128], json[256], buf[64];
    snprintf(rel, sizeof rel, "/tide-ut-v1-%d", (int)getpid());
    snprintf(dir, sizeof dir, "/sys/fs/cgroup/freezer%s", rel);
    if (mkdir(dir, 0755) != 0) {
        test_skip("cannot create a freezer cgroup here");
        return;
    }
    int gate[2];
    T_ASSERT(pipe(gate) == 0);
    pid_t child = fork();
    if (child == 0) {
        char c;
        close(gate[1]);
        if (read(gate[0], &c, 1) != 1) _exit(1);
        for (volatile unsigned long x = 0;; x++) {
        }
    }
    close(gate[0]);
    char procs[160];
    snprintf(procs, sizeof procs, "%s/cgroup.procs", dir);
    FILE *f = fopen(procs, "w");
    int placed = f && fprintf(f, "%d\n", (int)child) > 0;
    if (f) placed &= fclose(f) == 0;
    T_ASSERT(write(gate[1], "g", 1) == 1);
    close(gate[1]);
    outcome o = {0}, a = {0};
    snprintf(json, sizeof json, "{\"cgroup\": \"%s\"}", rel);
    if (placed) run("standby", json, &o);
    ssize_t n = rcg_read_small(dir, "freezer.state", buf, sizeof buf);
    int frozen = n > 0 && strncmp(buf, "FROZEN", 6) == 0;
    if (placed) run("activate", json, &a);
    n = rcg_read_small(dir, "freezer.state", buf, sizeof buf);
    int thawed = n > 0 && strncmp(buf, "THAWED", 6) == 0;
    FILE *t = fopen(procs, "r");
    if (t) fclose(t);
    char st[160];
    snprintf(st, sizeof st, "%s/freezer.state", dir);
    FILE *w = fopen(st, "w");
    if (w) {
        fputs("THAWED", w);
        fclose(w);
    }
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    rmdir(dir);
    T_ASSERT(placed);
    T_EQ_INT(o.ok, 1);
    T_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(o.result, "freezer")), "v1");
    T_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(o.result, "reclaim_method")), "none");
    T_ASSERT(frozen);
    T_EQ_INT(a.ok, 1);
    T_ASSERT(thawed);
    cJSON_Delete(o.result);
    cJSON_Delete(a.result);
}

TEST(action_cancel_all_at_shutdown) {
    /* a drain waiting on a live connection and a warm-up whose requests are never answered:
     * both are stopped without calling done and without leaking (ASan/valgrind runs) */
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    T_ASSERT(ls >= 0 && bind(ls, (struct sockaddr *)&a, sizeof a) == 0 && listen(ls, 16) == 0);
    getsockname(ls, (struct sockaddr *)&a, &al);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    T_ASSERT(connect(c, (struct sockaddr *)&a, sizeof a) == 0);
    int s = accept(ls, NULL, NULL);
    char json[256];
    struct ev_loop *loop = ev_default_loop(0);
    outcome d, w;
    memset(&d, 0, sizeof d);
    memset(&w, 0, sizeof w);
    snprintf(json, sizeof json, "{\"endpoint\": \"127.0.0.1:%u\", \"timeout_ms\": 5000}",
             ntohs(a.sin_port));
    cJSON *args = cJSON_Parse(json);
    replica_action_run(loop, "drain", args, on_done, &d);
    cJSON_Delete(args);
    snprintf(json, sizeof json,
             "{\"endpoint\": \"127.0.0.1:%u\", \"rate\": 50, \"duration_ms\": 3000}",
             ntohs(a.sin_port));
    args = cJSON_Parse(json);
    replica_action_run(loop, "warmup", args, on_done, &w);
    cJSON_Delete(args);
    for (int i = 0; i < 30; i++) { /* let the connections open and the requests go out */
        ev_run(loop, EVRUN_NOWAIT);
        usleep(2000);
    }
    T_EQ_INT(replica_action_cancel_all(), 2);
    T_EQ_INT(replica_action_cancel_all(), 0);
    T_EQ_INT(d.called, 0);
    T_EQ_INT(w.called, 0);
    ev_run(loop, EVRUN_NOWAIT);
    close(s);
    close(c);
    close(ls);
}
