/* replica_proc.h: replica processes the agent starts, watches, reports and stops (node actions
 * "replica-start", "replica-stop", "replicas"; argument schema in shared/actions.h).
 *
 * A replica is a process started from a template in a cgroup of its own, CGROUP_PARENT/ID, in
 * every mounted hierarchy that confines or tracks it (v2 unified; v1 freezer, memory, cpu,
 * cpuacct, pids, name=systemd), in a session of its own: neither the agent's process group nor
 * its cgroups hold it, so an agent restart (or systemd stopping the agent's service) leaves it
 * running. Each replica has a record, DIR/ID.json (written to a temporary file and renamed), that
 * a restarted agent reads to adopt what still runs: a record whose process is gone (checked by
 * pid and the process's start time, so a reused pid is not mistaken for it) is reported as
 * exited until a replica-stop removes its cgroup. The memory limits a standby lowered on a
 * swap-backed v1 host are persisted under DIR/memlimits/ (replica_cgroup.h) and restored by the
 * next activate or stop, also after an agent restart.
 *
 * replica-start: expands {id}, {port}, {node} in the command words and environment values,
 * creates the cgroups and applies the limits (cpu_quota in cores, memory_bytes), spawns
 * (CLONE_VFORK); the child moves itself into the cgroups, starts a session, drops to the user,
 * changes directory, sends stdout/stderr to DIR/ID.log and execs. The result comes when the
 * readiness check (HTTP GET http://127.0.0.1:PORT/PATH answering 2xx or 3xx, every interval_ms)
 * passes, or at once without one: {id, pid, cgroup, port, setup_ms, exec_ms, ready_ms, startup_ms,
 * log}. A replica that exits or is not ready in time is killed, its cgroup removed, and the error
 * names why (exit status and the last lines of its log). Starting an id that runs and is ready
 * succeeds at once with "already": true.
 *
 * replica-stop: thaws it (a frozen process cannot act on a signal), restores a lowered memory
 * limit, sends the stop signal to every process of its cgroup, waits grace_ms for the cgroup to
 * empty, then kills what is left (cgroup.kill where the kernel has it, else SIGKILL to each),
 * removes the cgroups and the record: {id, signal, stop_ms, killed, exit_status}. Stopping an
 * unknown id succeeds with "already": true.
 *
 * replicas: {"replicas": [{id, pid, cgroup, state: starting|ready|running|stopping|exited,
 * frozen, adopted, port, started_at, ready_at, startup_ms, exit_status, labels}]}. */
#ifndef TIDE_REPLICA_PROC_H
#define TIDE_REPLICA_PROC_H

#include <cjson/cJSON.h>
#include <stddef.h>

struct ev_loop;

/* Opens the replica directory (created when missing; a lock file keeps a second agent out),
 * adopts the replicas its records name and starts watching them. cgroup_parent: "/tide-replicas"
 * style path. node: this node's name (for {node}). Returns 0 or -errno with err. */
int replica_proc_open(struct ev_loop *loop, const char *dir, const char *cgroup_parent,
                      const char *node, char *err, size_t errlen);
/* Stops watching (the replicas keep running) and frees; starts and stops under way are
 * abandoned without calling done. */
void replica_proc_close(void);

typedef void (*replica_proc_done_fn)(void *arg, int ok, cJSON *result, const char *error);

/* Runs "replica-start", "replica-stop" or "replicas" with args; done is called exactly once
 * (possibly from inside this call). */
void replica_proc_run(const char *action, const cJSON *args, replica_proc_done_fn done, void *arg);

/* Pure: the status code of an HTTP response's status line in buf ("HTTP/1.1 200 OK\r\n"):
 * 100..599, 0 when more bytes are needed, -EINVAL when it is not an HTTP status line. */
int replica_http_status(const char *buf, size_t len);

/* Pure: parses a replica record (the JSON of DIR/ID.json) into its fields; used by adoption and
 * by the fuzzer. Returns 0, or -EINVAL with err naming what was wrong. */
typedef struct replica_record {
    char id[256];
    char cgroup[768];
    long pid;
    unsigned long long starttime; /* /proc/PID/stat field 22 */
    int stop_signal;
    long grace_ms;
    int port;
    long long started_at, ready_at; /* unix ms; ready_at 0 = not ready yet */
    double startup_ms;
    int exited, exit_status; /* exit_status -1 unknown */
    int stopping;
    cJSON *labels;     /* owned; NULL when none */
    char dirs[8][800]; /* absolute cgroup directories created */
    int ndirs;
} replica_record;
int replica_record_parse(const char *text, size_t len, replica_record *rec, char *err,
                         size_t errlen);
void replica_record_fini(replica_record *rec);

#endif
