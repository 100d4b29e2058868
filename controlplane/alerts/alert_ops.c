/* alert_ops.c: the ops commands of alert rules: alertrule-apply, alertrule-list,
 * alertrule-describe, alertrule-delete and alerts (tidectl apply/get/describe/delete and
 * tidectl alerts). */
#include "alerts/alerts.h"

#include "api/ops.h"
#include "cp.h"
#include "workloads/persist.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *arg_str(const cJSON *args, const char *k) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(args, k);
    return cJSON_IsString(j) ? j->valuestring : NULL;
}

static struct cp_alerts *module(ops_request *req) {
    struct cp_alerts *a = ops_cp(req)->alerts;
    if (!a) ops_reply_error(req, 1, "the alerts module is not running");
    return a;
}

static void op_apply(ops_request *req, const cJSON *args) {
    struct cp_alerts *a = module(req);
    if (!a) return;
    const char *yaml = arg_str(args, "yaml");
    if (!yaml) {
        ops_reply_error(req, 2, "alertrule-apply needs args.yaml (the rule's text)");
        return;
    }
    if (strlen(yaml) > PERSIST_MAX_YAML) {
        ops_reply_error(req, 2, "rule is %zu bytes, more than the %u allowed", strlen(yaml),
                        PERSIST_MAX_YAML);
        return;
    }
    const char *result = NULL;
    unsigned long long gen = 0;
    char err[1200], name[64] = "";
    int rc = alerts_apply(a, yaml, &result, &gen, name, sizeof name, err, sizeof err);
    if (rc < 0) {
        ops_reply_error(req, rc == -EINVAL ? 2 : 1, "%s", err);
        return;
    }
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "name", name);
    cJSON_AddStringToObject(d, "result", result);
    cJSON_AddNumberToObject(d, "generation", (double)gen);
    ops_reply(req, d);
}

static void op_list(ops_request *req, const cJSON *args) {
    (void)args;
    struct cp_alerts *a = module(req);
    if (a) ops_reply(req, alerts_rules_json(a, NULL));
}

static void op_describe(ops_request *req, const cJSON *args) {
    struct cp_alerts *a = module(req);
    if (!a) return;
    const char *name = arg_str(args, "name");
    if (!name) {
        ops_reply_error(req, 2, "alertrule-describe needs args.name");
        return;
    }
    cJSON *r = alerts_rules_json(a, name);
    if (!r) {
        ops_reply_error(req, 2, "no alert rule named '%.100s'", name);
        return;
    }
    ops_reply(req, r);
}

static void op_delete(ops_request *req, const cJSON *args) {
    struct cp_alerts *a = module(req);
    if (!a) return;
    const char *name = arg_str(args, "name");
    if (!name) {
        ops_reply_error(req, 2, "alertrule-delete needs args.name");
        return;
    }
    char err[300];
    int rc = alerts_delete(a, name, err, sizeof err);
    if (rc < 0) {
        ops_reply_error(req, rc == -ENOENT ? 2 : 1, "%s", err);
        return;
    }
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "name", name);
    ops_reply(req, d);
}

static void op_alerts(ops_request *req, const cJSON *args) {
    (void)args;
    struct cp_alerts *a = module(req);
    if (a) ops_reply(req, alerts_alerts_json(a));
}

OPS_COMMAND(ar_apply, "alertrule-apply", "apply an alert rule: {yaml}", op_apply)
OPS_COMMAND(ar_list, "alertrule-list", "alert rules with their state (Prometheus's rule objects)",
            op_list)
OPS_COMMAND(ar_describe, "alertrule-describe", "one alert rule: {name}", op_describe)
OPS_COMMAND(ar_delete, "alertrule-delete", "delete alert rule {name}", op_delete)
OPS_COMMAND(ar_alerts, "alerts", "pending and firing alerts", op_alerts)
