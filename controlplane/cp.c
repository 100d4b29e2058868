/* cp.c: the control plane's module registry (CP_MODULE start/stop hooks) and the `status`
 * ops command. */
#include "version.h"
#include "cp.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agents/agents.h"
#include "log.h"
#include "api/ops.h"
#include "store/tsdb.h"
#include "workloads/workloads.h"
#include "cluster/cluster.h"

#define MAX_MODULES 64

static struct {
    const char *name;
    const char *after;
    cp_module_start_fn start;
    cp_module_stop_fn stop;
    int started;
} modules[MAX_MODULES];
static int nmodules;
static int order[MAX_MODULES]; /* start order (cp_module_order), valid once started */
static int nordered;

void cp_module_register(const char *name, const char *after, cp_module_start_fn start,
                        cp_module_stop_fn stop) {
    if (nmodules == MAX_MODULES) {
        fprintf(stderr, "controlplane: more than %d modules registered\n", MAX_MODULES);
        abort();
    }
    modules[nmodules].name = name;
    modules[nmodules].after = after ? after : "";
    modules[nmodules].start = start;
    modules[nmodules].stop = stop;
    nmodules++;
}

/* Does module j's name appear in list (comma-separated, blanks around names ignored)? */
static int names_module(const char *list, const char *name) {
    size_t nl = strlen(name);
    const char *p = list;
    while (*p) {
        while (*p == ',' || *p == ' ' || *p == '\t')
            p++;
        const char *q = p;
        while (*q && *q != ',' && *q != ' ' && *q != '\t')
            q++;
        if ((size_t)(q - p) == nl && nl && strncmp(p, name, nl) == 0) return 1;
        p = q;
    }
    return 0;
}

int cp_module_order(const char *const *names, const char *const *after, int n, int *out, char *err,
                    size_t errlen) {
    if (n < 0 || n > MAX_MODULES) {
        snprintf(err, errlen, "%d modules, at most %d", n, MAX_MODULES);
        return -EINVAL;
    }
    /* every name in an after list must be a module */
    for (int i = 0; i < n; i++) {
        const char *p = after[i] ? after[i] : "";
        while (*p) {
            while (*p == ',' || *p == ' ' || *p == '\t')
                p++;
            const char *q = p;
            while (*q && *q != ',' && *q != ' ' && *q != '\t')
                q++;
            if (q > p) {
                int found = 0;
                for (int j = 0; j < n && !found; j++)
                    found = strlen(names[j]) == (size_t)(q - p) &&
                            strncmp(names[j], p, (size_t)(q - p)) == 0;
                if (!found) {
                    snprintf(err, errlen, "module %s: after \"%.*s\", which is no module", names[i],
                             (int)(q - p), p);
                    return -EINVAL;
                }
            }
            p = q;
        }
    }
    unsigned char placed[MAX_MODULES] = {0};
    for (int k = 0; k < n; k++) {
        int pick = -1;
        for (int i = 0; i < n && pick < 0; i++) { /* the first whose dependencies are placed */
            if (placed[i]) continue;
            int ready = 1;
            for (int j = 0; j < n && ready; j++)
                if (j != i && !placed[j] && names_module(after[i] ? after[i] : "", names[j]))
                    ready = 0;
            if (ready && !names_module(after[i] ? after[i] : "", names[i])) pick = i;
        }
        if (pick < 0) {
            size_t off = (size_t)snprintf(err, errlen, "modules in a cycle of after= lists:");
            for (int i = 0; i < n && off < errlen; i++)
                if (!placed[i]) off += (size_t)snprintf(err + off, errlen - off, " %s", names[i]);
            return -EINVAL;
        }
        placed[pick] = 1;
        out[k] = pick;
    }
    return 0;
}

int cp_modules_start(struct controlplane *cp, char *err, size_t errlen) {
    const char *names[MAX_MODULES], *after[MAX_MODULES];
    for (int i = 0; i < nmodules; i++) {
        names[i] = modules[i].name;
        after[i] = modules[i].after;
    }
    char why[512] = "";
    int rc = cp_module_order(names, after, nmodules, order, why, sizeof why);
    if (rc < 0) {
        snprintf(err, errlen, "module order: %s", why);
        return rc;
    }
    nordered = nmodules;
    for (int k = 0; k < nordered; k++) {
        int i = order[k];
        if (modules[i].start) {
            why[0] = 0;
            rc = modules[i].start(cp, why, sizeof why);
            if (rc < 0) {
                snprintf(err, errlen, "module %s: %s", modules[i].name, why);
                cp_modules_stop(cp);
                return rc;
            }
        }
        modules[i].started = 1;
        log_debug("controlplane", "module %s started", modules[i].name);
    }
    return 0;
}

void cp_modules_stop(struct controlplane *cp) {
    for (int k = nordered - 1; k >= 0; k--) {
        int i = order[k];
        if (!modules[i].started) continue;
        if (modules[i].stop) modules[i].stop(cp);
        modules[i].started = 0;
        log_debug("controlplane", "module %s stopped", modules[i].name);
    }
}

static void cmd_status(ops_request *req, const cJSON *args) {
    (void)args;
    struct controlplane *cp = ops_cp(req);
    cJSON *o = cJSON_CreateObject();
    int64_t now = tide_now_wall_ms();
    cJSON_AddStringToObject(o, "version", TIDE_VERSION);
    cJSON_AddNumberToObject(o, "pid", (double)getpid());
    cJSON_AddNumberToObject(o, "started", (double)cp->started_wall_ms);
    cJSON_AddNumberToObject(o, "uptime_s", (double)(now - cp->started_wall_ms) / 1000.0);
    cJSON_AddStringToObject(o, "listen", cp->cfg.listen);
    cJSON_AddStringToObject(o, "socket", cp->cfg.socket_path);
    cJSON_AddStringToObject(o, "data_dir", cp->cfg.data_dir);
    cJSON_AddStringToObject(o, "store", cp->db ? tsdb_status(cp->db) : "not open");
    cJSON *t = cp_agents_totals_json(cp);
    if (t) cJSON_AddItemToObject(o, "agents", t);
    cJSON_AddNumberToObject(o, "workload_applies_pending", workloads_applies_pending(cp));
    cJSON_AddNumberToObject(o, "workload_decisions", (double)workloads_decisions(cp));
    cJSON_AddNumberToObject(o, "ops_parses_pending", ops_parses_pending(cp));
    cJSON *cl = cluster_status_json(cp);
    if (cl) cJSON_AddItemToObject(o, "cluster", cl);
    cJSON *mods = cJSON_AddArrayToObject(o, "modules");
    for (int k = 0; k < nordered; k++) /* in start order */
        if (modules[order[k]].started)
            cJSON_AddItemToArray(mods, cJSON_CreateString(modules[order[k]].name));
    ops_reply(req, o);
}

OPS_COMMAND(status, "status", "status: daemon, store and agent totals", cmd_status)
