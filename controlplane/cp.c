/* cp.c: the control plane's module registry (CP_MODULE start/stop hooks) and the `status`
 * ops command. */
#include "version.h"
#include "cp.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "agents/agents.h"
#include "log.h"
#include "api/ops.h"
#include "store/tsdb.h"

#define MAX_MODULES 64

static struct {
    const char *name;
    cp_module_start_fn start;
    cp_module_stop_fn stop;
    int started;
} modules[MAX_MODULES];
static int nmodules;

void cp_module_register(const char *name, cp_module_start_fn start, cp_module_stop_fn stop) {
    if (nmodules == MAX_MODULES) {
        fprintf(stderr, "controlplane: more than %d modules registered\n", MAX_MODULES);
        abort();
    }
    modules[nmodules].name = name;
    modules[nmodules].start = start;
    modules[nmodules].stop = stop;
    nmodules++;
}

int cp_modules_start(struct controlplane *cp, char *err, size_t errlen) {
    for (int i = 0; i < nmodules; i++) {
        if (modules[i].start) {
            char why[512] = "";
            int rc = modules[i].start(cp, why, sizeof why);
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
    for (int i = nmodules - 1; i >= 0; i--) {
        if (!modules[i].started) continue;
        if (modules[i].stop) modules[i].stop(cp);
        modules[i].started = 0;
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
    cJSON *mods = cJSON_AddArrayToObject(o, "modules");
    for (int i = 0; i < nmodules; i++)
        if (modules[i].started) cJSON_AddItemToArray(mods, cJSON_CreateString(modules[i].name));
    ops_reply(req, o);
}

OPS_COMMAND(status, "status", "status: daemon, store and agent totals", cmd_status)
