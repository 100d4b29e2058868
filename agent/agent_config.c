/* agent_config.c: tide-agent's config table, its loader (defaults, --config FILE, flags) and
 * the AGENT_MODULE registry. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "version.h"
#include "agent.h"
#include "fence.h"
#include "vclock.h"
#include "wire.h"

#define F(field) offsetof(struct agent_config, field)

/* cgroup_prefix's syntax, checked with the configuration (exit 2) rather than by a collector
 * that then fails and is retried forever: "controller=PATH|self,...", controller one of cpu,
 * cpuacct, memory, pids, PATH absolute. (Whether PATH or self resolves is the collector's.) */
static int valid_cgroup_prefix(const void *value, char *err, size_t errlen) {
    static const char *const names[] = {"cpuacct", "cpu", "memory", "pids"};
    const char *p = *(const char *const *)value;
    while (p && *p) {
        const char *comma = strchr(p, ',');
        size_t l = comma ? (size_t)(comma - p) : strlen(p);
        const char *eq = memchr(p, '=', l);
        if (!eq) {
            snprintf(err, errlen, "'%.*s': expected controller=PATH or controller=self", (int)l, p);
            return -EINVAL;
        }
        size_t nl = (size_t)(eq - p), vl = l - nl - 1;
        int known = 0;
        for (size_t i = 0; i < sizeof names / sizeof *names; i++)
            known |= strlen(names[i]) == nl && !memcmp(p, names[i], nl);
        if (!known) {
            snprintf(err, errlen, "'%.*s': unknown controller (cpu, cpuacct, memory, pids)", (int)l,
                     p);
            return -EINVAL;
        }
        if (!(vl == 4 && !memcmp(eq + 1, "self", 4)) && (vl == 0 || eq[1] != '/')) {
            snprintf(err, errlen, "'%.*s': the path must start with '/' (or be self)", (int)l, p);
            return -EINVAL;
        }
        p = comma ? comma + 1 : p + l;
    }
    return 0;
}

int agent_cp_list(const char *list, char out[][AGENT_CP_ADDR_MAX], char *err, size_t errlen) {
    int n = 0;
    const char *p = list ? list : "";
    for (;;) {
        while (*p == ' ')
            p++;
        const char *comma = strchr(p, ',');
        size_t l = comma ? (size_t)(comma - p) : strlen(p);
        while (l > 0 && p[l - 1] == ' ')
            l--;
        if (l == 0) {
            snprintf(err, errlen, "entry %d of '%s' is empty (expected ADDR:PORT[,ADDR:PORT...])",
                     n + 1, list ? list : "");
            return -EINVAL;
        }
        if (n == AGENT_MAX_CONTROLPLANES) {
            snprintf(err, errlen, "more than %d control planes in '%s'", AGENT_MAX_CONTROLPLANES,
                     list);
            return -EINVAL;
        }
        if (l >= AGENT_CP_ADDR_MAX) {
            snprintf(err, errlen, "entry %d is longer than %d bytes", n + 1, AGENT_CP_ADDR_MAX - 1);
            return -EINVAL;
        }
        char one[AGENT_CP_ADDR_MAX], host[256];
        memcpy(one, p, l);
        one[l] = 0;
        int port;
        if (cfg_split_hostport(one, host, sizeof host, &port) < 0) {
            snprintf(err, errlen, "entry %d '%s' is not ADDR:PORT", n + 1, one);
            return -EINVAL;
        }
        for (int i = 0; i < n; i++)
            if (!strcmp(out[i], one)) {
                snprintf(err, errlen, "'%s' is listed twice", one);
                return -EINVAL;
            }
        memcpy(out[n++], one, l + 1);
        if (!comma) return n;
        p = comma + 1;
    }
}

static int valid_cp_list(const void *value, char *err, size_t errlen) {
    char tmp[AGENT_MAX_CONTROLPLANES][AGENT_CP_ADDR_MAX];
    return agent_cp_list(*(const char *const *)value, tmp, err, errlen) < 0 ? -EINVAL : 0;
}

const cfg_key agent_config_table[] = {
    /* The control plane's own default listen address: a single-machine setup needs no flag. */
    /* Several control planes (high availability, README "Several control planes"): the agent
     * reports to each, with its own connection, ack and spool. */
    {"controlplane", CFG_STR, F(controlplane), "127.0.0.1:7470", 0, 0, valid_cp_list, 0,
     "ADDR:PORT of the control plane, or a comma-separated list of them (at most 8)"},
    /* Empty means the host name, which is what operators call the node anyway. */
    {"node", CFG_STR, F(node), "", 0, 0, NULL, 0,
     "node name (1-63 of [A-Za-z0-9._-]; default: host name)"},
    /* Installed by the operator next to the control plane's (same token). */
    {"token_file", CFG_STR, F(token_file), "/etc/tide/token", 0, 0, cfg_valid_nonempty, 0,
     "file holding the pre-shared token"},
    {"log_level", CFG_STR, F(log_level), "info", 0, 0, cfg_valid_log_level, 1,
     "debug, info, warn, error or off"},
    /* 1 s resolves request bursts that minute averages hide; 100 ms is the floor below which
     * reading cgroup files costs more than it tells. */
    {"interval", CFG_DURATION, F(interval_ms), "1s", 100, 3600000, NULL, 1,
     "sampling interval (at least 100ms)"},
    /* 64 MiB holds hours of one node's samples while the control plane is away. */
    {"queue_max_bytes", CFG_BYTES, F(queue_max_bytes), "64M", 65536, (int64_t)1 << 40, NULL, 0,
     "unacknowledged batches kept in memory; older ones go to the spool or are dropped"},
    /* Must not exceed the control plane's max_frame_bytes (same default). */
    {"max_frame_bytes", CFG_BYTES, F(max_frame_bytes), "4M", 4096, WIRE_MAX_FRAME_LIMIT, NULL, 0,
     "largest frame sent (batches are cut to fit)"},
    /* Reconnects start fast (a control plane restart takes ~1 s) and back off to 30 s so that
     * 1,000 agents do not hammer a control plane that is down. */
    {"reconnect_min", CFG_DURATION, F(reconnect_min_ms), "200ms", 10, 600000, NULL, 0,
     "first reconnect delay (doubles per failure, with jitter)"},
    {"reconnect_max", CFG_DURATION, F(reconnect_max_ms), "30s", 100, 3600000, NULL, 0,
     "longest reconnect delay"},
    /* Covers a slow handshake on a loaded machine; a black-holed address fails within it. */
    {"connect_timeout", CFG_DURATION, F(connect_timeout_ms), "10s", 100, 600000, NULL, 0,
     "connect plus handshake must finish within this"},
    /* cgroup sampling (cgroup_collect.c). Kubernetes pods/containers and systemd services are
     * what a node runs; other trees are opt-in, since "/" can hold thousands of cgroups. */
    {"cgroup_roots", CFG_STR, F(cgroup_roots), "", 0, 0, NULL, 0,
     "comma-separated extra cgroup roots to sample (every cgroup below, e.g. /tide)"},
    {"cgroup_include", CFG_STR, F(cgroup_include), "", 0, 0, NULL, 0,
     "comma-separated globs over cgroup paths: sample only matching ones (empty: all)"},
    {"cgroup_exclude", CFG_STR, F(cgroup_exclude), "", 0, 0, NULL, 0,
     "comma-separated globs over cgroup paths never sampled"},
    {"cgroup_kubernetes", CFG_BOOL, F(cgroup_kubernetes), "true", 0, 0, NULL, 0,
     "sample pods and containers under kubepods / kubepods.slice"},
    {"cgroup_systemd", CFG_BOOL, F(cgroup_systemd), "true", 0, 0, NULL, 0,
     "sample *.service cgroups under system.slice"},
    /* Hosts that put every process in a nested v1 memory cgroup: memory=self. */
    {"cgroup_prefix", CFG_STR, F(cgroup_prefix), "", 0, 0, valid_cgroup_prefix, 0,
     "v1 only: controller=PATH|self,... where that controller's cgroups sit below PATH"},
    /* memory.stat alone costs ~8.5 us per cgroup: every 10th round keeps 500 cgroups at 1 s
     * under 0.5% of a core (measured 0.45%, 0.55% at 5); counters stay exact, gauges (RSS,
     * pids) and the working set's inactive-file part are at most 10 rounds old. */
    {"cgroup_detail_every", CFG_INT, F(cgroup_detail_every), "10", 1, 600, NULL, 0,
     "read memory.stat, cpu.stat, pids, PSI every Nth round (1 = every round)"},
    /* Off by default: a spool is per agent (it is locked) and outlives the process, so it is
     * chosen by the deployment (systemd: /var/lib/tide-agent/spool, the StateDirectory). */
    {"spool_dir", CFG_STR, F(spool_dir), "", 0, 0, NULL, 0,
     "directory of the on-disk spool for unacknowledged batches (\"\" = none)"},
    /* 256 MiB: hours of 500 cgroups at 1 s (~30 KB/s encoded), small on any node's disk. */
    {"spool_max_bytes", CFG_BYTES, F(spool_max_bytes), "256M", 65536, (int64_t)1 << 40, NULL, 0,
     "bound of the spool; when full the oldest batches are dropped and counted"},
    /* Loopback: the kubelet probes a hostNetwork DaemonSet's pod on the node's own addresses
     * including 127.0.0.1, and /metrics need not be exposed beyond the node. 9471 is one above
     * the control plane's agent port. */
    {"http_listen", CFG_STR, F(http_listen), "127.0.0.1:9471", 0, 0, NULL, 0,
     "ADDR:PORT of the agent's /healthz, /livez and /metrics (\"\" = none)"},
    /* Off by default, like the spool: the records outlive the agent and are chosen by the
     * deployment (systemd: /var/lib/tide-agent/replicas, the StateDirectory). */
    {"replica_dir", CFG_STR, F(replica_dir), "", 0, 0, NULL, 0,
     "directory of the records of replica processes this agent starts (\"\" = no replica-start)"},
    {"replica_cgroup", CFG_STR, F(replica_cgroup), "/tide-replicas", 0, 0, NULL, 0,
     "parent cgroup of the replica processes' cgroups (one per replica: PARENT/ID)"},
    /* Off by default like the spool (chosen by the deployment; systemd: /var/lib/tide-agent,
     * the StateDirectory): without it the fencing tokens are kept in memory only, and a
     * restarted agent forgets which control plane owns a workload now. */
    {"state_dir", CFG_STR, F(state_dir), "", 0, 0, NULL, 0,
     "directory of the agent's state: the fencing tokens per workload (\"\" = memory only)"},
    /* A node acts for far fewer workloads than this; 4,096 lines are ~0.6 MB at most. */
    {"fence_max_workloads", CFG_INT, F(fence_max_workloads), "4096", FENCE_MAX_MIN, FENCE_MAX_LIMIT,
     NULL, 0, "workloads whose fencing token is remembered (beyond: the least recently used goes)"},
    /* A month: far beyond any pause or partition a stale owner could come back from, short
     * enough that deleted workloads leave the table. */
    {"fence_expiry", CFG_DURATION, F(fence_expiry_ms), "720h", 60000, (int64_t)1 << 45, NULL, 0,
     "a workload's fencing token unused this long is forgotten"},
    /* Off by default: only the agent on an HAProxy host has a socket to read. */
    {"haproxy_stats", CFG_STR, F(haproxy_stats), "", 0, 0, NULL, 0,
     "HAProxy stats socket: sample each proxy's requests, sessions, queue (\"\" = off)"},
    /* The virtual clock (vclock.h) is for benchmarks and tests that replay a trace faster
     * than real time; off by default (rate 1, no origin = the real clock). */
    {"clock_rate", CFG_STR, F(clock_rate), "1", 0, 0, vclock_valid_rate, 0,
     "virtual clock: trace seconds per real second (benchmarks; default 1 = real time)"},
    {"clock_origin", CFG_STR, F(clock_origin), "", 0, 0, vclock_valid_instant, 0,
     "virtual clock: trace time (unix s or UTC) at the anchor (default: the real time)"},
    {"clock_anchor", CFG_STR, F(clock_anchor), "", 0, 0, vclock_valid_instant, 0,
     "virtual clock: real time (unix s or UTC) at which the trace is at clock_origin"},
    CFG_END,
};

static void usage(void) {
    printf(
        "usage: tide-agent [--config FILE] [--controlplane ADDR:PORT] [--node NAME]\n"
        "                  [--token-file FILE] [--interval DURATION] [--log-level LEVEL]\n"
        "                  [--KEY VALUE ...]\n\n"
        "Every config key can be set in the file (`key = value`) or as --KEY (with '-' for '_');\n"
        "flags override the file. Keys:\n");
    for (const cfg_key *k = agent_config_table; k->key; k++)
        printf("  %-18s %s (default %s)\n", k->key, k->help, k->def && *k->def ? k->def : "\"\"");
    printf("\nexit status: 0 clean shutdown, 1 runtime failure, 2 bad configuration\n");
}

int agent_config_load(struct agent_config *cfg, int argc, char **argv, char *err, size_t errlen) {
    memset(cfg, 0, sizeof *cfg);
    int rc = cfg_load_args(agent_config_table, cfg, argc, argv, err, errlen);
    if (rc == CFG_ARGS_HELP) {
        usage();
        return 1;
    }
    if (rc == CFG_ARGS_VERSION) {
        printf("tide-agent %s (wire protocol %d)\n", TIDE_VERSION, WIRE_VERSION);
        return 1;
    }
    if (rc < 0) return rc;
    vclock_spec clock; /* the three keys together (an anchor alone is refused) */
    if (vclock_parse(cfg->clock_rate, cfg->clock_origin, cfg->clock_anchor, &clock, err, errlen) <
        0)
        return -EINVAL;
    if (cfg->reconnect_max_ms < cfg->reconnect_min_ms) {
        snprintf(err, errlen, "key 'reconnect_max' (%lld ms) is below 'reconnect_min' (%lld ms)",
                 (long long)cfg->reconnect_max_ms, (long long)cfg->reconnect_min_ms);
        return -EINVAL;
    }
    cfg->ncps = agent_cp_list(cfg->controlplane, cfg->cps, err, errlen);
    if (cfg->ncps < 0) {
        char why[512];
        snprintf(why, sizeof why, "%s", err);
        snprintf(err, errlen, "key 'controlplane': %s", why);
        return -EINVAL;
    }
    if (cfg->node[0] && !wire_node_valid(cfg->node, strlen(cfg->node))) {
        snprintf(err, errlen, "key 'node': '%s' is not 1-63 characters of [A-Za-z0-9._-]",
                 cfg->node);
        return -EINVAL;
    }
    return 0;
}

void agent_config_free(struct agent_config *cfg) {
    cfg_free(agent_config_table, cfg);
}

#define MAX_MODULES 32
static struct {
    const char *name;
    agent_module_start_fn start;
    agent_module_stop_fn stop;
    int started;
} modules[MAX_MODULES];
static int nmodules;

void agent_module_register(const char *name, agent_module_start_fn start,
                           agent_module_stop_fn stop) {
    if (nmodules == MAX_MODULES) {
        fprintf(stderr, "tide-agent: more than %d modules registered\n", MAX_MODULES);
        abort();
    }
    modules[nmodules].name = name;
    modules[nmodules].start = start;
    modules[nmodules].stop = stop;
    nmodules++;
}

int agent_modules_start(struct agent *ag, char *err, size_t errlen) {
    for (int i = 0; i < nmodules; i++) {
        char why[512] = "";
        if (modules[i].start) {
            int rc = modules[i].start(ag, why, sizeof why);
            if (rc < 0) {
                snprintf(err, errlen, "module %s: %s", modules[i].name, why);
                agent_modules_stop(ag);
                return rc;
            }
        }
        modules[i].started = 1;
    }
    return 0;
}

void agent_modules_stop(struct agent *ag) {
    for (int i = nmodules - 1; i >= 0; i--) {
        if (!modules[i].started) continue;
        if (modules[i].stop) modules[i].stop(ag);
        modules[i].started = 0;
    }
}
