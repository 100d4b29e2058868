/* bench_node_actions.c: runs node actions outside the agent, on a libev loop of its own.
 *
 *   bench_node_actions run ACTION 'JSON-ARGS'   runs one action (drain, standby, activate,
 *       warmup) exactly as the agent would and prints {"ok":..,"data":..,"error":..} on one line;
 *       exit 0 on success, 1 on failure, 2 on bad usage. tests/integration/node_actions.sh and
 *       tests/bench/node_actions.sh drive it.
 *   bench_node_actions [N]   with no action: standby then activate a busy 64 MB process in a
 *       cgroup of its own N times (default 200) and prints freeze/thaw figures (needs root and
 *       the cgroup mounts; prints "skipped" otherwise). */
#include <errno.h>
#include <ev.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "actions/replica_action.h"

typedef struct outcome {
    int called, ok;
    cJSON *result;
    char error[1024];
} outcome;

static void on_done(void *arg, int ok, cJSON *result, const char *error) {
    outcome *o = arg;
    o->called = 1;
    o->ok = ok;
    o->result = result;
    snprintf(o->error, sizeof o->error, "%s", error ? error : "");
}

static void run_one(struct ev_loop *loop, const char *action, const cJSON *args, outcome *o) {
    memset(o, 0, sizeof *o);
    replica_action_run(loop, action, args, on_done, o);
    while (!o->called)
        ev_run(loop, EVRUN_ONCE);
}

static int cmd_run(const char *action, const char *json) {
    cJSON *args = cJSON_Parse(json);
    if (!args) {
        fprintf(stderr, "bench_node_actions: args are not JSON: %s\n", json);
        return 2;
    }
    outcome o;
    run_one(ev_default_loop(0), action, args, &o);
    cJSON *out = cJSON_CreateObject();
    cJSON_AddBoolToObject(out, "ok", o.ok);
    if (o.result) cJSON_AddItemToObject(out, "data", o.result);
    if (!o.ok) cJSON_AddStringToObject(out, "error", o.error);
    char *s = cJSON_PrintUnformatted(out);
    printf("%s\n", s);
    free(s);
    cJSON_Delete(out);
    cJSON_Delete(args);
    return o.ok ? 0 : 1;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int write_file(const char *dir, const char *file, const char *val) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, file);
    FILE *f = fopen(p, "w");
    if (!f) return -1;
    fputs(val, f);
    return fclose(f) == 0 ? 0 : -1;
}

static int cmd_freeze_bench(int n) {
    char rel[64], v2[256], v1[256], pidbuf[32];
    snprintf(rel, sizeof rel, "/tide-bench-%d", (int)getpid());
    snprintf(v2, sizeof v2, "/sys/fs/cgroup/unified%s", rel);
    snprintf(v1, sizeof v1, "/sys/fs/cgroup/freezer%s", rel);
    if (geteuid() != 0 || mkdir(v2, 0755) != 0) {
        printf("bench_node_actions: skipped (needs root and /sys/fs/cgroup/unified)\n");
        return 0;
    }
    mkdir(v1, 0755); /* optional: activate thaws both freezers */
    int gate[2];
    if (pipe(gate) != 0) return 1;
    pid_t child = fork();
    if (child == 0) {
        char c;
        close(gate[1]);
        if (read(gate[0], &c, 1) != 1) _exit(1); /* placed in the cgroup by the parent first */
        size_t sz = 64u << 20;
        volatile char *m = malloc(sz);
        for (size_t i = 0; m && i < sz; i += 4096)
            m[i] = 1;
        for (volatile unsigned long x = 0;; x++) {
        }
    }
    snprintf(pidbuf, sizeof pidbuf, "%d", (int)child);
    write_file(v2, "cgroup.procs", pidbuf);
    write_file(v1, "cgroup.procs", pidbuf);
    close(gate[0]);
    if (write(gate[1], "g", 1) != 1) perror("bench_node_actions: gate");
    close(gate[1]);
    usleep(300000);
    struct ev_loop *loop = ev_default_loop(0);
    cJSON *args = cJSON_CreateObject();
    cJSON_AddStringToObject(args, "cgroup", rel);
    double *fr = calloc((size_t)n, sizeof *fr), *th = calloc((size_t)n, sizeof *th);
    double *fz = calloc((size_t)n, sizeof *fz);
    int failures = 0;
    for (int i = 0; i < n && fr && th && fz; i++) {
        outcome o;
        run_one(loop, "standby", args, &o);
        if (!o.ok) failures++;
        fr[i] = cJSON_GetNumberValue(cJSON_GetObjectItem(o.result, "total_ms"));
        fz[i] = cJSON_GetNumberValue(cJSON_GetObjectItem(o.result, "freeze_ms"));
        cJSON_Delete(o.result);
        run_one(loop, "activate", args, &o);
        if (!o.ok) failures++;
        th[i] = cJSON_GetNumberValue(cJSON_GetObjectItem(o.result, "total_ms"));
        cJSON_Delete(o.result);
    }
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    rmdir(v2);
    rmdir(v1);
    cJSON_Delete(args);
    if (!fr || !th || !fz) return 1;
    qsort(fr, (size_t)n, sizeof *fr, cmp_double);
    qsort(fz, (size_t)n, sizeof *fz, cmp_double);
    qsort(th, (size_t)n, sizeof *th, cmp_double);
    int p99 = (int)((n * 99 + 99) / 100) - 1;
    printf("standby (freeze + reclaim, 64 MB busy process), %d runs: p50 %.3f ms  p99 %.3f ms  max "
           "%.3f ms\n",
           n, fr[(n - 1) / 2], fr[p99], fr[n - 1]);
    printf("  of which freeze: p50 %.3f ms  p99 %.3f ms (the rest is memory.force_empty)\n",
           fz[(n - 1) / 2], fz[p99]);
    printf("activate (thaw, no HAProxy), %d runs: p50 %.3f ms  p99 %.3f ms  max %.3f ms\n", n,
           th[(n - 1) / 2], th[p99], th[n - 1]);
    printf("failures: %d\n", failures);
    free(fr);
    free(th);
    free(fz);
    return failures ? 1 : 0;
}

int main(int argc, char **argv) {
    log_threshold = LOG_WARN; /* one line per action would drown the figures */
    if (argc >= 2 && strcmp(argv[1], "run") == 0) {
        if (argc != 4) {
            fprintf(stderr, "usage: bench_node_actions run ACTION 'JSON-ARGS'\n");
            return 2;
        }
        return cmd_run(argv[2], argv[3]);
    }
    int n = argc >= 2 ? atoi(argv[1]) : 200;
    if (n < 1 || n > 100000) {
        fprintf(stderr, "usage: bench_node_actions [N] | run ACTION 'JSON-ARGS'\n");
        return 2;
    }
    return cmd_freeze_bench(n);
}
