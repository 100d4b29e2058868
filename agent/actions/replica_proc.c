/* replica_proc.c: replica processes: start from a template, watch, adopt, report, stop
 * (replica_proc.h). Runs on the agent's loop; the only blocking calls are small file reads and
 * writes under the replica directory and cgroupfs, and one spawn (clone with CLONE_VFORK) per
 * start. */
#include "actions/replica_proc.h"

#include <errno.h>
#include <dirent.h>
#include <ev.h>
#include <stdarg.h>
#include <fcntl.h>
#include <grp.h>
#include <math.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <pthread.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "actions.h"
#include "actions/replica_cgroup.h"
#include "log.h"
#include "vclock.h"

#define POLL_S 0.02       /* cgroup emptiness checks while stopping */
#define PROBE_MAX_MS 2000 /* one readiness request at most */
#define KILL_WAIT_MS 5000 /* after SIGKILL, for the cgroup to empty and go */
#define MAX_REPLICAS 4096 /* on one node */

enum state { S_STARTING, S_READY, S_RUNNING, S_STOPPING, S_EXITED };
static const char *const state_names[] = {"starting", "ready", "running", "stopping", "exited"};

typedef struct start_job start_job;
typedef struct stop_job stop_job;

typedef struct replica {
    replica_record r;
    enum state state;
    int adopted;
    int child; /* our own child: waitpid gives its status */
    int pidfd;
    ev_io pidw;
    start_job *start;
    stop_job *stop;
    struct replica *next;
} replica;

static struct {
    struct ev_loop *loop;
    int open;
    char dir[512];
    char parent[256];
    char node[64];
    int lockfd;
    int nreplicas;
    replica *list;
} M = {.lockfd = -1};

static int64_t mono_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static long long wall_ms(void) {
    return (long long)tide_now_wall_ms(); /* trace time under a virtual clock */
}

static double ms3(double ms) {
    return round(ms * 1000) / 1000;
}

static replica *find(const char *id) {
    for (replica *r = M.list; r; r = r->next)
        if (!strcmp(r->r.id, id)) return r;
    return NULL;
}

static void unlink_replica(replica *rep) {
    for (replica **pp = &M.list; *pp; pp = &(*pp)->next)
        if (*pp == rep) {
            *pp = rep->next;
            M.nreplicas--;
            return;
        }
}

static void unwatch(replica *rep) {
    if (rep->pidfd >= 0) {
        ev_io_stop(M.loop, &rep->pidw);
        close(rep->pidfd);
        rep->pidfd = -1;
    }
}

static void replica_free(replica *rep) {
    unwatch(rep);
    replica_record_fini(&rep->r);
    free(rep);
}

/* ---- small files ------------------------------------------------------------------------- */

static int write_file(const char *path, const char *val) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    ssize_t n = write(fd, val, strlen(val));
    int e = n < 0 ? -errno : 0;
    close(fd);
    return e;
}

static int dir_write(const char *dir, const char *file, const char *val) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, file);
    return write_file(p, val);
}

static int path_exists(const char *dir, const char *file) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, file);
    return access(p, F_OK) == 0;
}

/* pids listed in DIR/cgroup.procs, at most cap; -errno when unreadable */
static int read_procs(const char *dir, pid_t *pids, int cap) {
    char p[1024];
    snprintf(p, sizeof p, "%s/cgroup.procs", dir);
    FILE *f = fopen(p, "re");
    if (!f) return -errno;
    int n = 0;
    long v;
    while (n < cap && fscanf(f, "%ld", &v) == 1)
        pids[n++] = (pid_t)v;
    fclose(f);
    return n;
}

static void rec_path(const char *id, char *out, size_t cap, const char *suffix) {
    snprintf(out, cap, "%s/%s%s", M.dir, id, suffix);
}

/* /proc/PID/stat field 22 (start time in clock ticks since boot), 0 when the process is gone */
static unsigned long long proc_starttime(long pid) {
    char p[64], buf[1024];
    snprintf(p, sizeof p, "/proc/%ld/stat", pid);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = 0;
    char *s = strrchr(buf, ')');
    if (!s) return 0;
    s++;
    for (int field = 2; field < 21 && s; field++)
        s = strchr(s + 1, ' ');
    return s ? strtoull(s + 1, NULL, 10) : 0;
}

/* ---- records ------------------------------------------------------------------------------ */

static int sig_from_name(const char *s) {
    if (!strncmp(s, "SIG", 3)) s += 3;
    static const struct {
        const char *n;
        int s;
    } t[] = {{"TERM", SIGTERM}, {"INT", SIGINT},   {"QUIT", SIGQUIT}, {"HUP", SIGHUP},
             {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"KILL", SIGKILL}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (!strcmp(s, t[i].n)) return t[i].s;
    return SIGTERM;
}

static cJSON *record_json(const replica *rep) {
    const replica_record *r = &rep->r;
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "id", r->id);
    cJSON_AddStringToObject(o, "cgroup", r->cgroup);
    cJSON_AddNumberToObject(o, "pid", (double)r->pid);
    char st[32];
    snprintf(st, sizeof st, "%llu", r->starttime);
    cJSON_AddStringToObject(o, "starttime", st);
    cJSON_AddNumberToObject(o, "stop_signal", r->stop_signal);
    cJSON_AddNumberToObject(o, "grace_ms", (double)r->grace_ms);
    cJSON_AddNumberToObject(o, "port", r->port);
    cJSON_AddNumberToObject(o, "started_at", (double)r->started_at);
    cJSON_AddNumberToObject(o, "ready_at", (double)r->ready_at);
    cJSON_AddNumberToObject(o, "startup_ms", r->startup_ms);
    cJSON_AddBoolToObject(o, "exited", r->exited);
    cJSON_AddNumberToObject(o, "exit_status", r->exit_status);
    cJSON_AddBoolToObject(o, "stopping", r->stopping);
    if (r->labels) cJSON_AddItemToObject(o, "labels", cJSON_Duplicate(r->labels, 1));
    cJSON *d = cJSON_AddArrayToObject(o, "dirs");
    for (int i = 0; d && i < r->ndirs; i++)
        cJSON_AddItemToArray(d, cJSON_CreateString(r->dirs[i]));
    return o;
}

/* Writes DIR/ID.json through a temporary file and rename(): a crash leaves the old record or the
 * new one, never half of one. No fsync: the record must survive the agent, not the node (a
 * node that crashes takes its replicas with it). */
static int record_save(const replica *rep) {
    cJSON *o = record_json(rep);
    char *text = o ? cJSON_Print(o) : NULL;
    cJSON_Delete(o);
    if (!text) return -ENOMEM;
    char tmp[800], dst[800];
    rec_path(rep->r.id, dst, sizeof dst, ".json");
    snprintf(tmp, sizeof tmp, "%s/.%s.json.tmp", M.dir, rep->r.id);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int rc = 0;
    if (fd < 0) {
        rc = -errno;
    } else {
        size_t len = strlen(text);
        if (write(fd, text, len) != (ssize_t)len) rc = errno ? -errno : -EIO;
        if (close(fd) < 0 && !rc) rc = -errno;
        if (!rc && rename(tmp, dst) < 0) rc = -errno;
        if (rc) unlink(tmp);
    }
    free(text);
    if (rc)
        log_error("replicas", "replica %s: writing its record %s: %s", rep->r.id, dst,
                  strerror(-rc));
    return rc;
}

static void record_remove(const char *id) {
    char p[800];
    rec_path(id, p, sizeof p, ".json");
    unlink(p);
    rec_path(id, p, sizeof p, ".log");
    unlink(p);
}

void replica_record_fini(replica_record *rec) {
    cJSON_Delete(rec->labels);
    rec->labels = NULL;
}

int replica_record_parse(const char *text, size_t len, replica_record *rec, char *err,
                         size_t errlen) {
    memset(rec, 0, sizeof *rec);
    rec->exit_status = -1;
    if (len > (1u << 20)) {
        snprintf(err, errlen, "record larger than 1 MiB");
        return -EINVAL;
    }
    cJSON *o = cJSON_ParseWithLength(text, len);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        snprintf(err, errlen, "not a JSON object");
        return -EINVAL;
    }
    int rc = -EINVAL;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id");
    const cJSON *cg = cJSON_GetObjectItemCaseSensitive(o, "cgroup");
    const cJSON *pid = cJSON_GetObjectItemCaseSensitive(o, "pid");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "starttime");
    const cJSON *dirs = cJSON_GetObjectItemCaseSensitive(o, "dirs");
    const cJSON *labels = cJSON_GetObjectItemCaseSensitive(o, "labels");
    char cgerr[128];
    if (!cJSON_IsString(id) || !tide_replica_id_valid(id->valuestring)) {
        snprintf(err, errlen, "\"id\" missing or not a replica id");
    } else if (!cJSON_IsString(cg) || rcg_check_path(cg->valuestring, cgerr, sizeof cgerr)) {
        snprintf(err, errlen, "\"cgroup\" missing or not a cgroup path");
    } else if (!cJSON_IsNumber(pid) || pid->valuedouble < 0 || pid->valuedouble > 4194304) {
        snprintf(err, errlen, "\"pid\" missing or out of range");
    } else if (!cJSON_IsString(st)) {
        snprintf(err, errlen, "\"starttime\" missing");
    } else if (!cJSON_IsArray(dirs) || cJSON_GetArraySize(dirs) > 8) {
        snprintf(err, errlen, "\"dirs\" missing or more than 8");
    } else if (labels && !cJSON_IsObject(labels)) {
        snprintf(err, errlen, "\"labels\" not an object");
    } else {
        rc = 0;
        snprintf(rec->id, sizeof rec->id, "%s", id->valuestring);
        snprintf(rec->cgroup, sizeof rec->cgroup, "%s", cg->valuestring);
        rec->pid = (long)pid->valuedouble;
        rec->starttime = strtoull(st->valuestring, NULL, 10);
        const cJSON *it;
        cJSON_ArrayForEach(it, dirs) {
            if (!cJSON_IsString(it) || it->valuestring[0] != '/' ||
                strlen(it->valuestring) >= sizeof rec->dirs[0] || strstr(it->valuestring, "/..") ||
                strncmp(it->valuestring, "/sys/fs/cgroup/", 15)) {
                snprintf(err, errlen, "\"dirs\": an entry that is not a cgroup directory");
                rc = -EINVAL;
                break;
            }
            snprintf(rec->dirs[rec->ndirs++], sizeof rec->dirs[0], "%s", it->valuestring);
        }
        const cJSON *v;
        double d;
#define NUMF(key, field, lo, hi)                                                                   \
    v = cJSON_GetObjectItemCaseSensitive(o, key);                                                  \
    d = cJSON_IsNumber(v) ? v->valuedouble : 0;                                                    \
    rec->field = d >= (lo) && d <= (hi) ? d : 0;
        NUMF("stop_signal", stop_signal, 1, 64)
        NUMF("grace_ms", grace_ms, 0, 3600000)
        NUMF("port", port, 0, 65535)
        NUMF("started_at", started_at, 0, 1e15)
        NUMF("ready_at", ready_at, 0, 1e15)
        NUMF("startup_ms", startup_ms, 0, 1e12)
#undef NUMF
        v = cJSON_GetObjectItemCaseSensitive(o, "exit_status");
        rec->exit_status = cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 512
                               ? (int)v->valuedouble
                               : -1;
        rec->exited = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "exited"));
        rec->stopping = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "stopping"));
        if (!rec->stop_signal) rec->stop_signal = SIGTERM;
        if (rc == 0 && labels) rec->labels = cJSON_Duplicate(labels, 1);
    }
    cJSON_Delete(o);
    return rc;
}

/* ---- cgroups ------------------------------------------------------------------------------ */

/* 1 when DIR's processes are all gone (every created directory's cgroup.procs empty or the
 * directory gone) */
static int cgroup_empty(const replica *rep) {
    pid_t p[4];
    for (int i = 0; i < rep->r.ndirs; i++)
        if (read_procs(rep->r.dirs[i], p, 4) > 0) return 0;
    return 1;
}

static int signal_all(const replica *rep, int sig) {
    enum { CAP = 4096 };
    pid_t *p = malloc(CAP * sizeof *p);
    int sent = 0;
    if (!p) return 0;
    for (int i = 0; i < rep->r.ndirs; i++) {
        int n = read_procs(rep->r.dirs[i], p, CAP);
        for (int k = 0; k < n; k++)
            if (kill(p[k], sig) == 0) sent++;
        if (n > 0) break; /* every hierarchy lists the same processes */
    }
    free(p);
    return sent;
}

static void thaw(const replica *rep) {
    for (int i = 0; i < rep->r.ndirs; i++) {
        if (path_exists(rep->r.dirs[i], "cgroup.freeze"))
            dir_write(rep->r.dirs[i], "cgroup.freeze", "0");
        if (path_exists(rep->r.dirs[i], "freezer.state"))
            dir_write(rep->r.dirs[i], "freezer.state", "THAWED");
    }
}

static int frozen(const replica *rep) {
    char buf[512];
    for (int i = 0; i < rep->r.ndirs; i++) {
        if (rcg_read_small(rep->r.dirs[i], "cgroup.events", buf, sizeof buf) > 0 &&
            strstr(buf, "frozen 1"))
            return 1;
        if (rcg_read_small(rep->r.dirs[i], "freezer.state", buf, sizeof buf) > 0 &&
            !strncmp(buf, "FROZEN", 6))
            return 1;
    }
    return 0;
}

static void kill_all(const replica *rep) {
    thaw(rep);
    for (int i = 0; i < rep->r.ndirs; i++)
        if (path_exists(rep->r.dirs[i], "cgroup.kill"))
            dir_write(rep->r.dirs[i], "cgroup.kill", "1");
    signal_all(rep, SIGKILL);
}

/* Removes the created directories; 0 when all are gone, else -errno of the first that stays. */
static int cgroup_remove(replica *rep) {
    int rc = 0;
    for (int i = rep->r.ndirs - 1; i >= 0; i--) {
        if (rmdir(rep->r.dirs[i]) == 0 || errno == ENOENT) continue;
        if (!rc) rc = -errno;
    }
    return rc;
}

/* Restores a memory limit a standby lowered (persisted): at stop, so that the record goes. */
static void memlimit_forget(const replica *rep) {
    replica_cgroup rc;
    char err[256];
    int64_t restored;
    if (rcg_resolve(rep->r.cgroup, NULL, &rc, err, sizeof err) == 0)
        rcg_memory_limit_restore(&rc, &restored, err, sizeof err);
}

/* Does the v1 mount option list hold one of the controllers a replica gets a cgroup in? */
static int wanted_v1(const char *options) {
    static const char *const want[] = {"freezer", "memory",       "cpu", "cpuacct",
                                       "pids",    "name=systemd", NULL};
    char buf[256];
    snprintf(buf, sizeof buf, "%s", options);
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
        for (int i = 0; want[i]; i++)
            if (!strcmp(t, want[i])) return 1;
    return 0;
}

static int has_opt(const char *options, const char *opt) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", options);
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
        if (!strcmp(t, opt)) return 1;
    return 0;
}

static int mkdir_p(const char *path) {
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0755) < 0 && errno != EEXIST) return -errno;
        *p = '/';
    }
    if (mkdir(buf, 0755) < 0 && errno != EEXIST) return -errno;
    return 0;
}

/* Creates the replica's cgroup in every wanted hierarchy and applies the limits. Fills
 * rep->r.dirs. Returns 0 or -errno with err. */
static int cgroup_create(replica *rep, double cpu_quota, double memory_bytes, char *err,
                         size_t errlen) {
    rcg_hierarchies hs;
    int rc0 = rcg_read_hierarchies(&hs, err, errlen);
    if (rc0) return rc0;
    int cpu_done = cpu_quota <= 0, mem_done = memory_bytes <= 0;
    rep->r.ndirs = 0;
    for (int i = 0; i < hs.n && rep->r.ndirs < 8; i++) {
        const rcg_hierarchy *h = &hs.h[i];
        if (!h->v2 && !wanted_v1(h->options)) continue;
        char dir[800];
        snprintf(dir, sizeof dir, "%s%s", h->mount, rep->r.cgroup);
        int rc = mkdir_p(dir);
        if (rc) {
            snprintf(err, errlen, "creating cgroup %s: %s", dir, strerror(-rc));
            return rc;
        }
        snprintf(rep->r.dirs[rep->r.ndirs++], sizeof rep->r.dirs[0], "%s", dir);
        char val[64];
        if (!cpu_done &&
            ((!h->v2 && has_opt(h->options, "cpu")) || (h->v2 && path_exists(dir, "cpu.max")))) {
            long quota = (long)(cpu_quota * 100000);
            if (quota < 1000) quota = 1000;
            if (h->v2) {
                snprintf(val, sizeof val, "%ld 100000", quota);
                rc = dir_write(dir, "cpu.max", val);
            } else {
                rc = dir_write(dir, "cpu.cfs_period_us", "100000");
                snprintf(val, sizeof val, "%ld", quota);
                if (!rc) rc = dir_write(dir, "cpu.cfs_quota_us", val);
            }
            if (rc) {
                snprintf(err, errlen, "cgroup %s: setting the CPU quota: %s", dir, strerror(-rc));
                return rc;
            }
            cpu_done = 1;
        }
        if (!mem_done && ((!h->v2 && has_opt(h->options, "memory")) ||
                          (h->v2 && path_exists(dir, "memory.max")))) {
            snprintf(val, sizeof val, "%.0f", memory_bytes);
            rc = dir_write(dir, h->v2 ? "memory.max" : "memory.limit_in_bytes", val);
            if (rc) {
                snprintf(err, errlen, "cgroup %s: setting the memory limit: %s", dir,
                         strerror(-rc));
                return rc;
            }
            mem_done = 1;
        }
    }
    if (rep->r.ndirs == 0) {
        snprintf(err, errlen, "no cgroup hierarchy mounted to hold a replica");
        return -ENOENT;
    }
    if (!cpu_done || !mem_done) {
        snprintf(err, errlen, "%s requested but no %s controller is available on this node",
                 !cpu_done ? "cpu_quota" : "memory_bytes", !cpu_done ? "cpu" : "memory");
        return -EOPNOTSUPP;
    }
    return 0;
}

/* ---- process exit -------------------------------------------------------------------------- */

static void start_fail(start_job *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void on_exit_seen(replica *rep) {
    int status = -1;
    if (rep->child) {
        int st;
        /* the pidfd said it exited: the wait cannot block beyond the moment its status is
         * posted (a WNOHANG wait alone could find it not yet waitable and lose the status) */
        pid_t w;
        while ((w = waitpid((pid_t)rep->r.pid, &st, 0)) < 0 && errno == EINTR) {
        }
        if (w == (pid_t)rep->r.pid) status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        rep->child = 0;
    }
    unwatch(rep);
    rep->r.exited = 1;
    rep->r.exit_status = status;
    if (rep->state != S_STOPPING) {
        rep->state = S_EXITED;
        log_warn("replicas", "replica %s (pid %ld) exited, status %d", rep->r.id, rep->r.pid,
                 status);
        record_save(rep);
    }
    if (rep->start) start_fail(rep->start, "exited with status %d before it was ready", status);
}

static void pid_cb(struct ev_loop *loop, ev_io *w, int revents) {
    (void)loop;
    (void)revents;
    replica *rep = (replica *)((char *)w - offsetof(replica, pidw));
    on_exit_seen(rep);
}

/* Watches the process through a pidfd. 0, or -errno (the process is already gone: ESRCH). */
static int watch(replica *rep) {
    int fd = (int)syscall(SYS_pidfd_open, (pid_t)rep->r.pid, 0);
    if (fd < 0) return -errno;
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    rep->pidfd = fd;
    ev_io_init(&rep->pidw, pid_cb, fd, EV_READ);
    ev_io_start(M.loop, &rep->pidw);
    return 0;
}

/* ---- start --------------------------------------------------------------------------------- */

struct start_job {
    replica *rep;
    replica_proc_done_fn done;
    void *arg;
    int64_t t0_us, exec_us, deadline_us;
    double setup_ms; /* command in -> spawn: arguments, cgroups, record */
    /* spawn to exec in steps (CLOCK_MONOTONIC, us; 0 unknown): the child ran, it was in its
     * cgroups, it called execve (the agent resumed at exec_us) */
    int64_t child_us, moved_us, execve_us;
    int64_t late_us;    /* the agent's steps after the exec done (nice, v1 cpu cgroup) */
    char late_err[300]; /* one of them failed: the start fails once the exec is confirmed */
    int errfd;
    ev_io errw;
    ev_timer deadline, tick;
    /* readiness */
    int has_ready;
    char path[2100];
    int interval_ms;
    int probe_fd;
    ev_io probe_w;
    int probe_sent;
    char req[2400];
    size_t req_len, req_off;
    char resp[64];
    size_t resp_len;
    int probes;
    int adopted; /* a readiness check of a replica adopted before it was ready */
    char last[160];
};

static void probe_close(start_job *s) {
    if (s->probe_fd >= 0) {
        ev_io_stop(M.loop, &s->probe_w);
        close(s->probe_fd);
        s->probe_fd = -1;
    }
}

static void start_job_free(start_job *s) {
    probe_close(s);
    ev_timer_stop(M.loop, &s->deadline);
    ev_timer_stop(M.loop, &s->tick);
    if (s->errfd >= 0) {
        ev_io_stop(M.loop, &s->errw);
        close(s->errfd);
    }
    if (s->rep) s->rep->start = NULL;
    free(s);
}

/* The last lines (up to ~400 bytes) of the replica's log, for an error message. */
static void log_tail(const char *id, char *out, size_t cap) {
    char p[800], buf[401];
    out[0] = 0;
    rec_path(id, p, sizeof p, ".log");
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    off_t end = lseek(fd, 0, SEEK_END);
    off_t from = end > 400 ? end - 400 : 0;
    ssize_t n = pread(fd, buf, 400, from);
    close(fd);
    if (n <= 0) return;
    buf[n] = 0;
    char *s = buf;
    if (from > 0 && strchr(s, '\n')) s = strchr(s, '\n') + 1;
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = 0;
    for (char *c = s; *c; c++)
        if (*c == '\n') *c = '|';
    snprintf(out, cap, "%s", s);
}

/* Fails the start: kills what runs, removes the cgroups and the record, reports why. */
static void start_fail(start_job *s, const char *fmt, ...) {
    char msg[700], tail[420];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    replica *rep = s->rep;
    log_tail(rep->r.id, tail, sizeof tail);
    char full[1400];
    snprintf(full, sizeof full, "replica %s: %s%s%s", rep->r.id, msg, tail[0] ? "; its log: " : "",
             tail);
    cJSON *res = cJSON_CreateObject();
    if (res) {
        cJSON_AddStringToObject(res, "id", rep->r.id);
        cJSON_AddNumberToObject(res, "pid", (double)rep->r.pid);
        cJSON_AddNumberToObject(res, "probes", s->probes);
        cJSON_AddNumberToObject(res, "elapsed_ms", ms3((double)(mono_us() - s->t0_us) / 1000));
        if (rep->r.exit_status >= 0)
            cJSON_AddNumberToObject(res, "exit_status", rep->r.exit_status);
    }
    log_warn("replicas", "%s", full);
    replica_proc_done_fn done = s->done;
    void *arg = s->arg;
    rep->state = S_STOPPING;
    kill_all(rep);
    /* the killed processes leave within microseconds; what still lingers is removed by a
     * replica-stop (the record stays for it) */
    int64_t until = mono_us() + 200000;
    while (!cgroup_empty(rep) && mono_us() < until)
        usleep(2000);
    s->rep = NULL;
    rep->start = NULL;
    start_job_free(s);
    if (cgroup_empty(rep) && cgroup_remove(rep) == 0) {
        record_remove(rep->r.id);
        unlink_replica(rep);
        replica_free(rep);
    } else {
        rep->state = S_EXITED;
        rep->r.exited = 1;
        record_save(rep);
    }
    done(arg, 0, res, full);
}

static void start_ok(start_job *s) {
    replica *rep = s->rep;
    int64_t now = mono_us();
    rep->state = S_READY;
    rep->r.ready_at = wall_ms();
    /* adopted: the exec instant died with the old agent; the record's start time stands in.
     * Start-up times are trace time (a virtual clock's rate scales the real interval). */
    rep->r.startup_ms = s->adopted ? (double)(rep->r.ready_at - rep->r.started_at)
                                   : ms3((double)(now - s->exec_us) / 1000 * vclock_rate());
    cJSON *res = cJSON_CreateObject();
    if (res) {
        cJSON_AddStringToObject(res, "id", rep->r.id);
        cJSON_AddNumberToObject(res, "pid", (double)rep->r.pid);
        cJSON_AddStringToObject(res, "cgroup", rep->r.cgroup);
        cJSON_AddStringToObject(res, "node", M.node);
        if (rep->r.port) cJSON_AddNumberToObject(res, "port", rep->r.port);
        cJSON_AddNumberToObject(res, "exec_ms", ms3((double)(s->exec_us - s->t0_us) / 1000));
        if (!s->adopted) cJSON_AddNumberToObject(res, "setup_ms", ms3(s->setup_ms));
        if (!s->adopted && s->child_us && s->moved_us && s->execve_us) {
            cJSON *st = cJSON_AddObjectToObject(res, "exec_steps");
            cJSON_AddNumberToObject(st, "child_ms", ms3((double)(s->child_us - s->t0_us) / 1000));
            cJSON_AddNumberToObject(st, "cgroups_ms",
                                    ms3((double)(s->moved_us - s->child_us) / 1000));
            cJSON_AddNumberToObject(st, "prepare_ms",
                                    ms3((double)(s->execve_us - s->moved_us) / 1000));
            cJSON_AddNumberToObject(st, "execve_ms",
                                    ms3((double)(s->exec_us - s->execve_us) / 1000));
            cJSON_AddNumberToObject(st, "after_exec_ms",
                                    ms3((double)(s->late_us - s->exec_us) / 1000));
        }
        cJSON_AddNumberToObject(res, "exec_mono_ms", ms3((double)s->exec_us / 1000));
        cJSON_AddNumberToObject(res, "startup_ms", rep->r.startup_ms);
        cJSON_AddNumberToObject(res, "ready_ms", ms3((double)(now - s->t0_us) / 1000));
        cJSON_AddNumberToObject(res, "probes", s->probes);
        if (s->adopted) cJSON_AddBoolToObject(res, "adopted", 1);
        char p[800];
        rec_path(rep->r.id, p, sizeof p, ".log");
        cJSON_AddStringToObject(res, "log", p);
    }
    if (!s->adopted && s->child_us && s->moved_us && s->execve_us)
        log_info(
            "replicas",
            "replica %s ready: pid %ld, cgroup %s, start-up %.1f ms; spawn to exec %.1f ms "
            "(child ran %.1f, cgroup moves %.1f, prepare %.1f, execve %.1f); after the exec "
            "%.2f ms",
            rep->r.id, rep->r.pid, rep->r.cgroup, rep->r.startup_ms,
            (double)(s->exec_us - s->t0_us) / 1000, (double)(s->child_us - s->t0_us) / 1000,
            (double)(s->moved_us - s->child_us) / 1000, (double)(s->execve_us - s->moved_us) / 1000,
            (double)(s->exec_us - s->execve_us) / 1000, (double)(s->late_us - s->exec_us) / 1000);
    else
        log_info("replicas", "replica %s ready: pid %ld, cgroup %s, start-up %.1f ms", rep->r.id,
                 rep->r.pid, rep->r.cgroup, rep->r.startup_ms);
    replica_proc_done_fn done = s->done;
    void *arg = s->arg;
    start_job_free(s);
    /* the answer first (it leaves at once), then the record: a crash in between leaves a
     * record without ready_at, which the restarted agent adopts and checks for readiness */
    done(arg, 1, res, NULL);
    record_save(rep);
}

int replica_http_status(const char *buf, size_t len) {
    static const char pre[] = "HTTP/1.";
    size_t pl = sizeof pre - 1;
    for (size_t i = 0; i < len && i < pl; i++)
        if (buf[i] != pre[i]) return -EINVAL;
    if (len < 12) return 0;
    if (buf[7] < '0' || buf[7] > '9' || buf[8] != ' ') return -EINVAL;
    int code = 0;
    for (int i = 9; i < 12; i++) {
        if (buf[i] < '0' || buf[i] > '9') return -EINVAL;
        code = code * 10 + (buf[i] - '0');
    }
    if (code < 100 || code > 599) return -EINVAL;
    return code;
}

static void probe_schedule(start_job *s, double after_s);

static void probe_done(start_job *s, int status, const char *why) {
    probe_close(s);
    if (status >= 200 && status < 400) {
        start_ok(s);
        return;
    }
    if (status > 0)
        snprintf(s->last, sizeof s->last, "HTTP %d", status);
    else
        snprintf(s->last, sizeof s->last, "%s", why);
    probe_schedule(s, s->interval_ms / 1000.0);
}

static void probe_io(struct ev_loop *loop, ev_io *w, int revents) {
    (void)loop;
    (void)revents;
    start_job *s = (start_job *)((char *)w - offsetof(start_job, probe_w));
    if (!s->probe_sent) {
        int e = 0;
        socklen_t el = sizeof e;
        getsockopt(s->probe_fd, SOL_SOCKET, SO_ERROR, &e, &el);
        if (e) {
            probe_done(s, 0, strerror(e));
            return;
        }
        ssize_t n = send(s->probe_fd, s->req + s->req_off, s->req_len - s->req_off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno != EAGAIN) probe_done(s, 0, strerror(errno));
            return;
        }
        s->req_off += (size_t)n;
        if (s->req_off < s->req_len) return;
        s->probe_sent = 1;
        ev_io_stop(M.loop, &s->probe_w);
        ev_io_set(&s->probe_w, s->probe_fd, EV_READ);
        ev_io_start(M.loop, &s->probe_w);
        return;
    }
    ssize_t n = recv(s->probe_fd, s->resp + s->resp_len, sizeof s->resp - s->resp_len, 0);
    if (n < 0 && errno == EAGAIN) return;
    if (n <= 0) {
        probe_done(s, 0, n == 0 ? "connection closed before a status line" : strerror(errno));
        return;
    }
    s->resp_len += (size_t)n;
    int st = replica_http_status(s->resp, s->resp_len);
    if (st == 0 && s->resp_len < sizeof s->resp) return;
    probe_done(s, st > 0 ? st : 0, "not an HTTP response");
}

static void probe_start(start_job *s) {
    s->probes++;
    s->probe_sent = 0;
    s->req_off = 0;
    s->resp_len = 0;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        probe_done(s, 0, strerror(errno));
        return;
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s->rep->r.port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->probe_fd = fd;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0 && errno != EINPROGRESS) {
        probe_done(s, 0, strerror(errno));
        return;
    }
    ev_io_init(&s->probe_w, probe_io, fd, EV_WRITE);
    ev_io_start(M.loop, &s->probe_w);
    /* one request at most PROBE_MAX_MS */
    ev_timer_stop(M.loop, &s->tick);
    ev_timer_set(&s->tick, PROBE_MAX_MS / 1000.0, 0);
    ev_timer_start(M.loop, &s->tick);
}

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents) {
    (void)loop;
    (void)revents;
    start_job *s = (start_job *)((char *)w - offsetof(start_job, tick));
    if (s->probe_fd >= 0)
        probe_done(s, 0, "no answer within 2 s");
    else
        probe_start(s);
}

static void probe_schedule(start_job *s, double after_s) {
    ev_timer_stop(M.loop, &s->tick);
    ev_timer_set(&s->tick, after_s, 0);
    ev_timer_start(M.loop, &s->tick);
}

static void deadline_cb(struct ev_loop *loop, ev_timer *w, int revents) {
    (void)loop;
    (void)revents;
    start_job *s = (start_job *)((char *)w - offsetof(start_job, deadline));
    start_fail(s, "not ready after %.0f ms (%d readiness checks; last: %s)",
               (double)(mono_us() - s->t0_us) / 1000, s->probes, s->last[0] ? s->last : "none");
}

/* The child's report on the error pipe: what it was doing and errno. */
typedef struct child_err {
    int stage, err;
} child_err;
static const char *const stages[] = {"?",
                                     "setsid",
                                     "joining its cgroup",
                                     "redirecting stdio",
                                     "changing directory",
                                     "dropping to the user",
                                     "exec"};

static void errpipe_cb(struct ev_loop *loop, ev_io *w, int revents) {
    (void)loop;
    (void)revents;
    start_job *s = (start_job *)((char *)w - offsetof(start_job, errw));
    child_err ce;
    ssize_t n = read(s->errfd, &ce, sizeof ce);
    if (n < 0 && errno == EAGAIN) return;
    ev_io_stop(M.loop, &s->errw);
    close(s->errfd);
    s->errfd = -1;
    replica *rep = s->rep;
    if (n == (ssize_t)sizeof ce) {
        start_fail(s, "%s failed: %s", stages[ce.stage > 0 && ce.stage < 7 ? ce.stage : 0],
                   strerror(ce.err));
        return;
    }
    /* EOF: exec succeeded (the pipe closed on exec) */
    if (s->late_err[0]) {
        start_fail(s, "%s", s->late_err);
        return;
    }
    if (!s->exec_us) s->exec_us = mono_us(); /* spawn_child took it when the child exec'd */
    rep->r.starttime = proc_starttime(rep->r.pid);
    record_save(rep);
    if (!s->has_ready) {
        start_ok(s);
        return;
    }
    probe_start(s);
}

/* The child runs on the agent's memory until it execs (CLONE_VM | CLONE_VFORK, as
 * posix_spawn does): no sanitizer bookkeeping there, nothing written but its own stack. */
#define CHILD_FN __attribute__((no_sanitize("address", "undefined"), noinline))

/* Async-signal-safe decimal. */
CHILD_FN static void fmt_long(long v, char *out) {
    char tmp[24];
    int n = 0;
    if (v == 0) tmp[n++] = '0';
    while (v > 0) {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    }
    for (int i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    out[n] = 0;
}

/* CLOCK_MONOTONIC in us through the vDSO (async-signal-safe). */
CHILD_FN static int64_t child_mono_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

/* What the child needs, read from the agent's memory; the child writes back only the instants
 * of its steps (the agent reads them once it resumes, after the exec). */
typedef struct child_args {
    int errfd, logfd;
    char *const *procs;
    int nprocs;
    const char *cwd;
    int drop;
    uid_t uid;
    gid_t gid;
    const gid_t *groups;
    int ngroups;
    char *const *argv, *const *envp;
    int64_t child_us, moved_us, execve_us; /* written by the child */
} child_args;

/* In the child, until exec: only async-signal-safe calls, and raw system calls for the
 * credentials (glibc's setuid and friends would signal every thread of the agent, whose memory
 * the child shares). Signals come blocked (spawn_child); handlers go back to the default before
 * they are unblocked. Never returns. */
CHILD_FN static int child_main(void *arg) {
    child_args *a = arg;
    a->child_us = child_mono_us();
    child_err ce = {0, 0};
    char pid_s[24];
    fmt_long((long)syscall(SYS_getpid), pid_s);
    size_t pl = 0;
    while (pid_s[pl])
        pl++;
    if (setsid() < 0) {
        ce.stage = 1;
        goto fail;
    }
    for (int i = 0; i < a->nprocs; i++) {
        int fd = open(a->procs[i], O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, pid_s, pl) < 0) {
            ce.stage = 2;
            goto fail;
        }
        close(fd);
    }
    a->moved_us = child_mono_us();
    for (int sig = 1; sig < NSIG; sig++)
        signal(sig, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (nul < 0 || dup2(nul, 0) < 0 || dup2(a->logfd, 1) < 0 || dup2(a->logfd, 2) < 0) {
        ce.stage = 3;
        goto fail;
    }
    if (chdir(a->cwd) < 0) {
        ce.stage = 4;
        goto fail;
    }
    if (a->drop && (syscall(SYS_setgroups, (size_t)a->ngroups, a->groups) < 0 ||
                    syscall(SYS_setgid, a->gid) < 0 || syscall(SYS_setuid, a->uid) < 0)) {
        ce.stage = 5;
        goto fail;
    }
    syscall(SYS_close_range, 3u, ~0u, 4u /* CLOSE_RANGE_CLOEXEC */);
    a->execve_us = child_mono_us();
    execve(a->argv[0], a->argv, (char *const *)a->envp);
    ce.stage = 6;
fail:
    ce.err = errno;
    if (write(a->errfd, &ce, sizeof ce) < 0) _exit(126);
    _exit(127);
}

/* Starts the child as posix_spawn does: CLONE_VM | CLONE_VFORK, so the agent resumes once the
 * child has exec'd (or failed): no copy of the agent's memory map, and no wait for the
 * scheduler to run a forked child and then the agent again (tens of milliseconds each on a
 * busy host). The pid, or -1 with errno. */
static pid_t spawn_child(child_args *a) {
    size_t ss = 64 * 1024;
    char *stack =
        mmap(NULL, ss, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED) return -1;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid = clone(child_main, stack + ss, CLONE_VM | CLONE_VFORK | SIGCHLD, a);
    int e = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    munmap(stack, ss);
    errno = e;
    return pid;
}

/* Moves the replica, just exec'd, into its v1 cpu cgroup (rep->r.dirs[i]). Entering a cpu
 * cgroup makes the kernel reschedule the moved task in its new group: done by the child before
 * its exec, the child (and the agent, suspended until the exec) waited there for a CPU at the
 * group's weight instead of the agent's, tens of ms on a busy node. Here the agent moves the
 * replica and goes on. The replica runs outside its cpu cgroup only from its exec to this
 * write; whatever it forked meanwhile is in its other cgroups (the child entered them before
 * the exec) and is moved too: a fork either finished before the replica's move (then it is
 * listed there) or inherits the new cgroup. A failure is kept in s->late_err. */
static void cpu_late(replica *rep, int i, start_job *s) {
    char v[24];
    snprintf(v, sizeof v, "%ld", rep->r.pid);
    int rc = dir_write(rep->r.dirs[i], "cgroup.procs", v);
    if (rc == -ESRCH) return; /* gone (its exec failed): the pipe and pidfd report it */
    if (rc) {
        snprintf(s->late_err, sizeof s->late_err, "entering its cgroup %s: %s", rep->r.dirs[i],
                 strerror(-rc));
        return;
    }
    enum { CAP = 1024 };
    pid_t *pids = malloc(CAP * sizeof *pids);
    int other = i == 0 ? 1 : 0; /* another hierarchy the child entered itself */
    int n = pids && other < rep->r.ndirs ? read_procs(rep->r.dirs[other], pids, CAP) : 0;
    for (int k = 0; k < n; k++) {
        if (pids[k] == (pid_t)rep->r.pid) continue;
        snprintf(v, sizeof v, "%ld", (long)pids[k]);
        rc = dir_write(rep->r.dirs[i], "cgroup.procs", v);
        if (rc && rc != -ESRCH) {
            snprintf(s->late_err, sizeof s->late_err, "moving its process %ld into %s: %s",
                     (long)pids[k], rep->r.dirs[i], strerror(-rc));
            break;
        }
    }
    free(pids);
}

/* Finds prog in PATH (the agent's), as execvp would; absolute or relative paths as given. */
static int resolve_prog(const char *prog, char *out, size_t cap) {
    if (strchr(prog, '/')) {
        snprintf(out, cap, "%s", prog);
        return access(out, X_OK) == 0 ? 0 : -errno;
    }
    const char *path = getenv("PATH");
    if (!path || !*path) path = "/usr/local/bin:/usr/bin:/bin";
    int last = -ENOENT;
    while (*path) {
        const char *e = strchr(path, ':');
        size_t l = e ? (size_t)(e - path) : strlen(path);
        snprintf(out, cap, "%.*s/%s", (int)l, l ? path : ".", prog);
        if (access(out, X_OK) == 0) return 0;
        if (errno != ENOENT) last = -errno;
        path += l + (e ? 1 : 0);
    }
    return last;
}

/* The deadline and the readiness check of a start job (args as replica-start's). */
static void start_setup(start_job *s, const cJSON *args, int port) {
    const cJSON *ready = cJSON_GetObjectItemCaseSensitive(args, "readiness");
    int timeout = tide_action_timeout_ms(TIDE_ACT_REPLICA_START, args) - TIDE_START_EXTRA_MS;
    if (cJSON_GetObjectItemCaseSensitive(args, "timeout_ms"))
        timeout = tide_action_timeout_ms(TIDE_ACT_REPLICA_START, args);
    if (timeout < 1) timeout = 1;
    s->deadline_us = s->t0_us + (int64_t)timeout * 1000;
    if (ready) {
        s->has_ready = 1;
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(ready, "path");
        const cJSON *iv = cJSON_GetObjectItemCaseSensitive(ready, "interval_ms");
        snprintf(s->path, sizeof s->path, "%s", p ? p->valuestring : "/");
        s->interval_ms = iv ? (int)iv->valuedouble : TIDE_READY_INTERVAL_MS;
        s->req_len = (size_t)snprintf(s->req, sizeof s->req,
                                      "GET %s HTTP/1.0\r\nHost: 127.0.0.1:%d\r\nUser-Agent: "
                                      "tide-agent\r\nConnection: close\r\n\r\n",
                                      s->path, port);
    }
    ev_timer_init(&s->deadline, deadline_cb, timeout / 1000.0, 0);
    ev_timer_start(M.loop, &s->deadline);
    ev_timer_init(&s->tick, tick_cb, 0, 0);
}

static void run_start(const cJSON *args, replica_proc_done_fn done, void *arg) {
    char err[1024];
    int64_t in_us = mono_us();
    const char *id = cJSON_GetObjectItemCaseSensitive(args, "id")->valuestring;
    replica *old = find(id);
    if (old && old->state == S_RUNNING && !old->r.ready_at && !old->r.stopping) {
        /* adopted before it was ready (the agent restarted during its start): the process runs,
         * so it is not started again; its readiness is checked as a start would */
        const cJSON *portj = cJSON_GetObjectItemCaseSensitive(args, "port");
        if (portj && (int)portj->valuedouble != old->r.port) {
            snprintf(err, sizeof err, "replica %s exists and serves on port %d, not %d", id,
                     old->r.port, (int)portj->valuedouble);
            done(arg, 0, NULL, err);
            return;
        }
        start_job *s = calloc(1, sizeof *s);
        if (!s) {
            done(arg, 0, NULL, "out of memory");
            return;
        }
        s->rep = old;
        old->start = s;
        old->state = S_STARTING;
        s->done = done;
        s->arg = arg;
        s->probe_fd = -1;
        s->errfd = -1;
        s->adopted = 1;
        s->t0_us = s->exec_us = mono_us();
        start_setup(s, args, old->r.port);
        log_info("replicas", "replica %s: adopted before it was ready: checking its readiness", id);
        if (s->has_ready)
            probe_start(s);
        else
            start_ok(s);
        return;
    }
    if (old) {
        if (old->state == S_READY || old->state == S_RUNNING) {
            cJSON *res = record_json(old);
            if (res) {
                cJSON_AddBoolToObject(res, "already", 1);
                cJSON_AddStringToObject(res, "state", state_names[old->state]);
            }
            done(arg, 1, res, NULL);
        } else {
            snprintf(err, sizeof err, "replica %s exists and is %s: %s", id,
                     state_names[old->state],
                     old->state == S_STARTING ? "its start is under way"
                                              : "stop it first (replica-stop)");
            done(arg, 0, NULL, err);
        }
        return;
    }
    if (M.nreplicas >= MAX_REPLICAS) {
        snprintf(err, sizeof err, "this node already runs %d replicas", MAX_REPLICAS);
        done(arg, 0, NULL, err);
        return;
    }
    const cJSON *portj = cJSON_GetObjectItemCaseSensitive(args, "port");
    int port = cJSON_IsNumber(portj) ? (int)portj->valuedouble : -1;
    const cJSON *ready = cJSON_GetObjectItemCaseSensitive(args, "readiness");
    if (ready && port < 0) {
        done(arg, 0, NULL, "a readiness check needs \"port\"");
        return;
    }
    /* expand the command and the environment */
    const cJSON *cmd = cJSON_GetObjectItemCaseSensitive(args, "command");
    const cJSON *env = cJSON_GetObjectItemCaseSensitive(args, "env");
    int argc = cJSON_GetArraySize(cmd), envc = env ? cJSON_GetArraySize(env) : 0;
    char **argv = calloc((size_t)argc + 1, sizeof *argv);
    char **envp = calloc((size_t)envc + 8, sizeof *envp);
    char *arena = malloc(TIDE_REPLICA_CMDLINE_MAX);
    char *procs[8] = {0};
    int nprocs = 0, ok = argv && envp && arena, logfd = -1, pipefd[2] = {-1, -1};
    int late_cpu = -1; /* index in rep->r.dirs of the v1 cpu hierarchy (entered after the exec) */
    size_t used = 0;
    replica *rep = NULL;
    start_job *s = NULL;
    if (!ok) snprintf(err, sizeof err, "out of memory");
    const cJSON *it;
    int k = 0;
    cJSON_ArrayForEach(it, cmd) {
        if (!ok) break;
        int n = tide_template_expand(it->valuestring, id, port, M.node, arena + used,
                                     TIDE_REPLICA_CMDLINE_MAX - used, err, sizeof err);
        if (n < 0) {
            ok = 0;
            break;
        }
        argv[k++] = arena + used;
        used += (size_t)n + 1;
    }
    /* the environment: a clean one (the agent's may hold secrets), the spec's entries on top */
    char prog[4096];
    const cJSON *user = cJSON_GetObjectItemCaseSensitive(args, "user");
    struct passwd pw, *pwp = NULL;
    char pwbuf[4096];
    gid_t groups[64];
    int ngroups = 64;
    if (ok && user) {
        int e = getpwnam_r(user->valuestring, &pw, pwbuf, sizeof pwbuf, &pwp);
        if (!pwp) {
            snprintf(err, sizeof err, "user '%s' %s", user->valuestring,
                     e ? strerror(e) : "does not exist");
            ok = 0;
        } else if (getgrouplist(pw.pw_name, pw.pw_gid, groups, &ngroups) < 0) {
            ngroups = 64;
        }
    }
    int ne = 0;
    if (ok) {
        char fixed[5][600];
        snprintf(fixed[0], sizeof fixed[0],
                 "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        snprintf(fixed[1], sizeof fixed[1], "HOME=%s", pwp ? pw.pw_dir : "/");
        snprintf(fixed[2], sizeof fixed[2], "TIDE_REPLICA_ID=%s", id);
        snprintf(fixed[3], sizeof fixed[3], "TIDE_NODE=%s", M.node);
        snprintf(fixed[4], sizeof fixed[4], "TIDE_REPLICA_PORT=%d", port > 0 ? port : 0);
        for (int i = 0; i < 5 && ok; i++) {
            size_t l = strlen(fixed[i]);
            if (used + l + 1 > TIDE_REPLICA_CMDLINE_MAX) {
                snprintf(err, sizeof err, "command and environment longer than %d bytes",
                         TIDE_REPLICA_CMDLINE_MAX);
                ok = 0;
                break;
            }
            memcpy(arena + used, fixed[i], l + 1);
            envp[ne++] = arena + used;
            used += l + 1;
        }
        cJSON_ArrayForEach(it, env) {
            if (!ok) break;
            size_t nl = strlen(it->string);
            if (used + nl + 2 > TIDE_REPLICA_CMDLINE_MAX) {
                snprintf(err, sizeof err, "command and environment longer than %d bytes",
                         TIDE_REPLICA_CMDLINE_MAX);
                ok = 0;
                break;
            }
            char *e = arena + used;
            memcpy(e, it->string, nl);
            e[nl] = '=';
            int n = tide_template_expand(it->valuestring, id, port, M.node, e + nl + 1,
                                         TIDE_REPLICA_CMDLINE_MAX - used - nl - 1, err, sizeof err);
            if (n < 0) {
                ok = 0;
                break;
            }
            /* a later entry of the same name replaces an earlier one (PATH, HOME) */
            for (int i = 0; i < ne; i++)
                if (!strncmp(envp[i], e, nl + 1)) envp[i] = envp[--ne];
            envp[ne++] = e;
            used += nl + 1 + (size_t)n + 1;
        }
    }
    if (ok) {
        int rc = resolve_prog(argv[0], prog, sizeof prog);
        if (rc) {
            snprintf(err, sizeof err, "program '%s': %s", argv[0], strerror(-rc));
            ok = 0;
        } else {
            argv[0] = prog; /* argv[0] of the process is the path */
        }
    }
    const cJSON *cwdj = cJSON_GetObjectItemCaseSensitive(args, "cwd");
    const char *cwd = cwdj ? cwdj->valuestring : "/";
    if (ok && cwdj && access(cwd, X_OK) < 0) {
        snprintf(err, sizeof err, "working directory '%s': %s", cwd, strerror(errno));
        ok = 0;
    }
    if (ok && !(rep = calloc(1, sizeof *rep))) {
        snprintf(err, sizeof err, "out of memory");
        ok = 0;
    }
    if (ok) {
        rep->pidfd = -1;
        rep->state = S_STARTING;
        snprintf(rep->r.id, sizeof rep->r.id, "%s", id);
        snprintf(rep->r.cgroup, sizeof rep->r.cgroup, "%s/%s", M.parent, id);
        const cJSON *sig = cJSON_GetObjectItemCaseSensitive(args, "stop_signal");
        rep->r.stop_signal = sig ? sig_from_name(sig->valuestring) : SIGTERM;
        const cJSON *g = cJSON_GetObjectItemCaseSensitive(args, "grace_ms");
        rep->r.grace_ms = g ? (long)g->valuedouble : TIDE_STOP_GRACE_MS;
        rep->r.port = port > 0 ? port : 0;
        rep->r.exit_status = -1;
        rep->r.started_at = wall_ms();
        const cJSON *labels = cJSON_GetObjectItemCaseSensitive(args, "labels");
        if (labels) rep->r.labels = cJSON_Duplicate(labels, 1);
        const cJSON *cq = cJSON_GetObjectItemCaseSensitive(args, "cpu_quota");
        const cJSON *mb = cJSON_GetObjectItemCaseSensitive(args, "memory_bytes");
        rep->next = M.list;
        M.list = rep;
        M.nreplicas++;
        if (cgroup_create(rep, cq ? cq->valuedouble : 0, mb ? mb->valuedouble : 0, err,
                          sizeof err)) {
            ok = 0;
        } else {
            for (int i = 0; i < rep->r.ndirs; i++) {
                /* a v1 cpu cgroup is entered after the exec, by the agent (cpu_late) */
                if (late_cpu < 0 && path_exists(rep->r.dirs[i], "cpu.cfs_quota_us")) {
                    late_cpu = i;
                    continue;
                }
                procs[nprocs] = malloc(sizeof rep->r.dirs[0] + 16);
                if (!procs[nprocs]) {
                    ok = 0;
                    snprintf(err, sizeof err, "out of memory");
                    break;
                }
                snprintf(procs[nprocs], sizeof rep->r.dirs[0] + 16, "%s/cgroup.procs",
                         rep->r.dirs[i]);
                nprocs++;
            }
        }
    }
    char logp[800];
    if (ok) {
        rec_path(id, logp, sizeof logp, ".log");
        logfd = open(logp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
        if (logfd < 0) {
            snprintf(err, sizeof err, "opening its log %s: %s", logp, strerror(errno));
            ok = 0;
        }
    }
    if (ok && pipe2(pipefd, O_CLOEXEC) < 0) {
        snprintf(err, sizeof err, "pipe: %s", strerror(errno));
        ok = 0;
    }
    if (ok && !(s = calloc(1, sizeof *s))) {
        snprintf(err, sizeof err, "out of memory");
        ok = 0;
    }
    if (ok && record_save(rep)) {
        snprintf(err, sizeof err, "cannot write its record under %s", M.dir);
        ok = 0;
    }
    if (ok) {
        s->t0_us = mono_us();
        s->setup_ms = (double)(s->t0_us - in_us) / 1000;
        child_args ca = {.errfd = pipefd[1],
                         .logfd = logfd,
                         .procs = procs,
                         .nprocs = nprocs,
                         .cwd = cwd,
                         .drop = pwp != NULL,
                         .uid = pwp ? pw.pw_uid : 0,
                         .gid = pwp ? pw.pw_gid : 0,
                         .groups = groups,
                         .ngroups = ngroups,
                         .argv = argv,
                         .envp = envp};
        errno = 0;
        int agent_nice = getpriority(PRIO_PROCESS, 0);
        int unraise = errno == 0 && agent_nice < 0;
        pid_t pid = spawn_child(&ca);
        if (pid < 0) {
            snprintf(err, sizeof err, "clone: %s", strerror(errno));
            ok = 0;
        } else {
            /* the child has exec'd or failed by now (CLONE_VFORK): the pipe tells which */
            s->exec_us = mono_us();
            s->child_us = ca.child_us;
            s->moved_us = ca.moved_us;
            s->execve_us = ca.execve_us;
            rep->r.pid = pid;
            rep->child = 1;
            /* a replica never runs above nice 0: an agent raised above it (the unit's Nice=-5,
             * so that its actions are not queued behind the node's work) does not pass that on
             * to the work itself; a nice >= 0 is inherited as it is. Done here, after the exec,
             * so that the child runs up to its exec at the agent's priority. */
            if (unraise && setpriority(PRIO_PROCESS, (id_t)pid, 0) < 0 && errno != ESRCH)
                snprintf(s->late_err, sizeof s->late_err, "setting its nice to 0: %s",
                         strerror(errno));
            if (late_cpu >= 0 && !s->late_err[0]) cpu_late(rep, late_cpu, s);
            s->late_us = mono_us();
        }
    }
    if (pipefd[1] >= 0) close(pipefd[1]);
    if (logfd >= 0) close(logfd);
    for (int i = 0; i < nprocs; i++)
        free(procs[i]);
    free(argv);
    free(envp);
    free(arena);
    if (!ok) {
        if (pipefd[0] >= 0) close(pipefd[0]);
        free(s);
        if (rep) {
            cgroup_remove(rep);
            record_remove(rep->r.id);
            unlink_replica(rep);
            replica_free(rep);
        }
        char msg[1200];
        snprintf(msg, sizeof msg, "replica %s: %s", id, err);
        log_warn("replicas", "%s", msg);
        done(arg, 0, NULL, msg);
        return;
    }
    record_save(rep);
    s->rep = rep;
    rep->start = s;
    s->done = done;
    s->arg = arg;
    s->probe_fd = -1;
    s->errfd = pipefd[0];
    fcntl(s->errfd, F_SETFL, O_NONBLOCK);
    start_setup(s, args, port);
    ev_io_init(&s->errw, errpipe_cb, s->errfd, EV_READ);
    ev_io_start(M.loop, &s->errw);
    if (watch(rep) < 0) on_exit_seen(rep); /* gone already: reported through start_fail */
}

/* ---- stop ---------------------------------------------------------------------------------- */

struct stop_job {
    replica *rep;
    replica_proc_done_fn done;
    void *arg;
    int64_t t0_us, grace_until_us, kill_until_us;
    int sig, killed;
    ev_timer poll;
};

static void stop_finish(stop_job *j, int ok, const char *error) {
    replica *rep = j->rep;
    ev_timer_stop(M.loop, &j->poll);
    cJSON *res = cJSON_CreateObject();
    if (res) {
        cJSON_AddStringToObject(res, "id", rep->r.id);
        cJSON_AddNumberToObject(res, "pid", (double)rep->r.pid);
        cJSON_AddNumberToObject(res, "signal", j->sig);
        cJSON_AddBoolToObject(res, "killed", j->killed);
        cJSON_AddNumberToObject(res, "exit_status", rep->r.exit_status);
        cJSON_AddNumberToObject(res, "stop_ms", ms3((double)(mono_us() - j->t0_us) / 1000));
    }
    replica_proc_done_fn done = j->done;
    void *arg = j->arg;
    rep->stop = NULL;
    free(j);
    if (ok) {
        log_info("replicas", "replica %s stopped%s", rep->r.id,
                 cJSON_IsTrue(cJSON_GetObjectItem(res, "killed")) ? " (killed after its grace)"
                                                                  : "");
        record_remove(rep->r.id);
        unlink_replica(rep);
        replica_free(rep);
    }
    done(arg, ok, res, error);
}

static void stop_poll(struct ev_loop *loop, ev_timer *w, int revents) {
    (void)loop;
    (void)revents;
    stop_job *j = (stop_job *)((char *)w - offsetof(stop_job, poll));
    replica *rep = j->rep;
    int64_t now = mono_us();
    if (cgroup_empty(rep)) {
        if (rep->pidfd >= 0) on_exit_seen(rep); /* reap our child now rather than later */
        int rc = cgroup_remove(rep);
        if (rc == 0) {
            stop_finish(j, 1, NULL);
            return;
        }
        if (now > j->kill_until_us) {
            char e[600];
            snprintf(e, sizeof e, "replica %s: processes gone but its cgroup stays: %s", rep->r.id,
                     strerror(-rc));
            stop_finish(j, 0, e);
            return;
        }
    } else if (!j->killed && now >= j->grace_until_us) {
        log_info("replicas", "replica %s: still running after %ld ms grace: killing", rep->r.id,
                 rep->r.grace_ms);
        kill_all(rep);
        j->killed = 1;
        j->kill_until_us = now + (int64_t)KILL_WAIT_MS * 1000;
    } else if (j->killed && now > j->kill_until_us) {
        char e[400];
        snprintf(e, sizeof e, "replica %s: processes remain %d ms after SIGKILL", rep->r.id,
                 KILL_WAIT_MS);
        stop_finish(j, 0, e);
        return;
    }
    ev_timer_set(&j->poll, POLL_S, 0);
    ev_timer_start(M.loop, &j->poll);
}

static void run_stop(const cJSON *args, replica_proc_done_fn done, void *arg) {
    const char *id = cJSON_GetObjectItemCaseSensitive(args, "id")->valuestring;
    replica *rep = find(id);
    if (!rep) {
        cJSON *res = cJSON_CreateObject();
        if (res) {
            cJSON_AddStringToObject(res, "id", id);
            cJSON_AddBoolToObject(res, "already", 1);
        }
        done(arg, 1, res, NULL);
        return;
    }
    if (rep->stop) {
        char e[400];
        snprintf(e, sizeof e, "replica %s: a stop is already under way", id);
        done(arg, 0, NULL, e);
        return;
    }
    if (rep->start) {
        /* a stop wins over a start under way: that start fails, its caller learns why */
        start_job *s = rep->start;
        rep->start = NULL;
        s->rep = NULL;
        replica_proc_done_fn sd = s->done;
        void *sa = s->arg;
        start_job_free(s);
        char e[400];
        snprintf(e, sizeof e, "replica %s: stopped while starting", id);
        sd(sa, 0, NULL, e);
    }
    stop_job *j = calloc(1, sizeof *j);
    if (!j) {
        done(arg, 0, NULL, "out of memory");
        return;
    }
    const cJSON *sig = cJSON_GetObjectItemCaseSensitive(args, "signal");
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(args, "grace_ms");
    if (g) rep->r.grace_ms = (long)g->valuedouble;
    j->rep = rep;
    j->done = done;
    j->arg = arg;
    j->sig = sig ? sig_from_name(sig->valuestring) : rep->r.stop_signal;
    j->t0_us = mono_us();
    j->grace_until_us = j->t0_us + (int64_t)rep->r.grace_ms * 1000;
    j->kill_until_us = j->grace_until_us + (int64_t)KILL_WAIT_MS * 1000;
    rep->stop = j;
    rep->state = S_STOPPING;
    rep->r.stopping = 1;
    record_save(rep);
    memlimit_forget(rep);
    thaw(rep);
    int n = signal_all(rep, j->sig);
    log_info("replicas", "replica %s: signal %d sent to %d process(es), grace %ld ms", id, j->sig,
             n, rep->r.grace_ms);
    if (j->sig == SIGKILL) j->killed = 1;
    ev_timer_init(&j->poll, stop_poll, 0, 0);
    ev_timer_start(M.loop, &j->poll);
}

/* ---- inventory ------------------------------------------------------------------------------ */

static cJSON *replica_json(const replica *rep) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "id", rep->r.id);
    cJSON_AddNumberToObject(o, "pid", (double)rep->r.pid);
    cJSON_AddStringToObject(o, "cgroup", rep->r.cgroup);
    cJSON_AddStringToObject(o, "state", state_names[rep->state]);
    cJSON_AddBoolToObject(o, "frozen", rep->state != S_EXITED && frozen(rep));
    cJSON_AddBoolToObject(o, "adopted", rep->adopted);
    if (rep->r.port) cJSON_AddNumberToObject(o, "port", rep->r.port);
    cJSON_AddNumberToObject(o, "started_at", (double)rep->r.started_at);
    if (rep->r.ready_at) cJSON_AddNumberToObject(o, "ready_at", (double)rep->r.ready_at);
    if (rep->r.startup_ms > 0) cJSON_AddNumberToObject(o, "startup_ms", rep->r.startup_ms);
    if (rep->state == S_EXITED) cJSON_AddNumberToObject(o, "exit_status", rep->r.exit_status);
    if (rep->r.labels) cJSON_AddItemToObject(o, "labels", cJSON_Duplicate(rep->r.labels, 1));
    return o;
}

static void run_list(const cJSON *args, replica_proc_done_fn done, void *arg) {
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(args, "id");
    cJSON *res = cJSON_CreateObject();
    cJSON *arr = res ? cJSON_AddArrayToObject(res, "replicas") : NULL;
    if (!arr) {
        cJSON_Delete(res);
        done(arg, 0, NULL, "out of memory");
        return;
    }
    cJSON_AddStringToObject(res, "node", M.node);
    for (replica *r = M.list; r; r = r->next)
        if (!id || !strcmp(id->valuestring, r->r.id)) cJSON_AddItemToArray(arr, replica_json(r));
    done(arg, 1, res, NULL);
}

void replica_proc_run(const char *action, const cJSON *args, replica_proc_done_fn done, void *arg) {
    char err[512];
    int a = tide_action_find(action);
    if (a != TIDE_ACT_REPLICA_START && a != TIDE_ACT_REPLICA_STOP && a != TIDE_ACT_REPLICAS) {
        snprintf(err, sizeof err, "not a replica process action: '%s'", action);
        done(arg, 0, NULL, err);
        return;
    }
    if (tide_action_args_check(a, args, err, sizeof err)) {
        done(arg, 0, NULL, err);
        return;
    }
    if (!M.open) {
        done(arg, 0, NULL,
             "replica processes are off on this node: set replica_dir in the agent's config");
        return;
    }
    if (a == TIDE_ACT_REPLICA_START)
        run_start(args, done, arg);
    else if (a == TIDE_ACT_REPLICA_STOP)
        run_stop(args, done, arg);
    else
        run_list(args, done, arg);
}

/* ---- open / adopt / close ------------------------------------------------------------------ */

/* 1 when the recorded pid sits in the replica's own cgroup (checked in the first directory). */
/* Is the replica's pid in its cgroup of hierarchy d? */
static int in_dir(const replica *rep, int d) {
    enum { CAP = 256 };
    pid_t p[CAP];
    int n = read_procs(rep->r.dirs[d], p, CAP);
    for (int i = 0; i < n; i++)
        if (p[i] == (pid_t)rep->r.pid) return 1;
    return 0;
}

/* In the replica's cgroups (any hierarchy: the v1 cpu one is entered after the exec). */
static int in_cgroup(const replica *rep) {
    for (int d = 0; d < rep->r.ndirs; d++)
        if (in_dir(rep, d)) return 1;
    return 0;
}

/* An adopted replica whose agent died between its exec and the move into its v1 cpu cgroup
 * (cpu_late) is moved there now. */
static void complete_cgroups(const replica *rep) {
    for (int d = 0; d < rep->r.ndirs; d++) {
        if (in_dir(rep, d)) continue;
        char v[24];
        snprintf(v, sizeof v, "%ld", rep->r.pid);
        int rc = dir_write(rep->r.dirs[d], "cgroup.procs", v);
        if (rc)
            log_warn("replicas", "adopted replica %s: entering %s: %s", rep->r.id, rep->r.dirs[d],
                     strerror(-rc));
        else
            log_info("replicas", "adopted replica %s entered %s (its agent died before)", rep->r.id,
                     rep->r.dirs[d]);
    }
}

static void adopt(const char *file) {
    char p[800];
    snprintf(p, sizeof p, "%s/%s", M.dir, file);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    char *buf = malloc(1 << 20);
    ssize_t n = buf ? read(fd, buf, 1 << 20) : -1;
    close(fd);
    replica *rep = calloc(1, sizeof *rep);
    char err[256];
    if (n <= 0 || !rep || replica_record_parse(buf, (size_t)n, &rep->r, err, sizeof err)) {
        log_error("replicas", "record %s unreadable (%s): left in place, not adopted", p,
                  n <= 0 ? "empty" : err);
        free(buf);
        if (rep) replica_free(rep);
        return;
    }
    free(buf);
    rep->pidfd = -1;
    rep->adopted = 1;
    if (find(rep->r.id)) {
        replica_free(rep);
        return;
    }
    rep->next = M.list;
    M.list = rep;
    M.nreplicas++;
    if (rep->r.pid > 0 && !rep->r.exited && !rep->r.starttime && in_cgroup(rep)) {
        /* the old agent died between fork and exec: the process is the one in our cgroup */
        rep->r.starttime = proc_starttime(rep->r.pid);
    }
    int alive = rep->r.pid > 0 && !rep->r.exited && rep->r.starttime &&
                proc_starttime(rep->r.pid) == rep->r.starttime;
    if (alive && watch(rep) == 0) {
        complete_cgroups(rep);
        rep->state = rep->r.stopping ? S_RUNNING : rep->r.ready_at ? S_READY : S_RUNNING;
        log_info("replicas", "adopted replica %s: pid %ld, cgroup %s, %s%s", rep->r.id, rep->r.pid,
                 rep->r.cgroup, state_names[rep->state], frozen(rep) ? " (frozen)" : "");
    } else {
        rep->state = S_EXITED;
        rep->r.exited = 1;
        log_warn("replicas", "replica %s (pid %ld) is gone: reported as exited until stopped",
                 rep->r.id, rep->r.pid);
        record_save(rep);
    }
}

int replica_proc_open(struct ev_loop *loop, const char *dir, const char *cgroup_parent,
                      const char *node, char *err, size_t errlen) {
    if (strlen(dir) >= 400 || dir[0] != '/') {
        snprintf(err, errlen, "replica_dir '%s' must be an absolute path of at most 399 bytes",
                 dir);
        return -EINVAL;
    }
    if (rcg_check_path(cgroup_parent, err, errlen) || strlen(cgroup_parent) >= 200) {
        snprintf(err, errlen, "replica_cgroup '%s' must be an absolute cgroup path (< 200 bytes)",
                 cgroup_parent);
        return -EINVAL;
    }
    int rc = mkdir_p(dir);
    if (rc) {
        snprintf(err, errlen, "replica_dir %s: %s", dir, strerror(-rc));
        return rc;
    }
    char lp[600];
    snprintf(lp, sizeof lp, "%s/.lock", dir);
    int fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0) {
        rc = -errno;
        snprintf(err, errlen, "replica_dir %s: %s", dir,
                 rc == -EWOULDBLOCK ? "locked by another agent" : strerror(-rc));
        if (fd >= 0) close(fd);
        return rc;
    }
    char ml[600];
    snprintf(ml, sizeof ml, "%s/memlimits", dir);
    if ((rc = rcg_limit_store_open(ml, err, errlen)) < 0) {
        close(fd);
        return rc;
    }
    M.loop = loop;
    M.lockfd = fd;
    snprintf(M.dir, sizeof M.dir, "%s", dir);
    snprintf(M.parent, sizeof M.parent, "%s", cgroup_parent);
    snprintf(M.node, sizeof M.node, "%s", node);
    M.open = 1;
    /* adopt what the records name: ID.json (a leftover .ID.json.tmp is ignored) */
    DIR *d = opendir(dir);
    if (!d) {
        rc = -errno;
        snprintf(err, errlen, "replica_dir %s: %s", dir, strerror(-rc));
        replica_proc_close();
        return rc;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (de->d_name[0] == '.' || l < 6 || strcmp(de->d_name + l - 5, ".json")) continue;
        adopt(de->d_name);
    }
    closedir(d);
    log_info("replicas", "replica dir %s: %d replica(s) adopted, cgroups under %s", dir,
             M.nreplicas, cgroup_parent);
    /* without favordynmods a replica's move into its cgroups takes the kernel's global
     * threadgroup lock for writing: it waits for an RCU grace period and for every fork and
     * exit under way on the node (README "Faster replica starts: favordynmods") */
    rcg_hierarchies hs;
    char e2[256];
    if (rcg_read_hierarchies(&hs, e2, sizeof e2) == 0 && hs.n > 0 && !rcg_favordynmods(&hs))
        log_info("replicas",
                 "no cgroup hierarchy is mounted with favordynmods: each replica start waits "
                 "for an RCU grace period and for the node's forks and exits when it enters its "
                 "cgroups (tens to hundreds of ms on a busy node); README \"Faster replica starts: "
                 "favordynmods\"");
    return 0;
}

void replica_proc_close(void) {
    if (!M.open) return;
    while (M.list) {
        replica *rep = M.list;
        M.list = rep->next;
        if (rep->start) {
            rep->start->rep = NULL;
            start_job_free(rep->start);
        }
        if (rep->stop) {
            ev_timer_stop(M.loop, &rep->stop->poll);
            free(rep->stop);
        }
        replica_free(rep);
    }
    M.nreplicas = 0;
    rcg_limit_store_close();
    if (M.lockfd >= 0) close(M.lockfd);
    M.lockfd = -1;
    M.open = 0;
}
