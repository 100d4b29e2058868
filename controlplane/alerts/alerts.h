/* alerts.h: the alert rules of the control plane (the "alerts" module): the applied rules
 * (kept in <data_dir>/alertrules/NAME.yaml, reloaded at start), their evaluation every
 * spec.interval on worker threads (reading the metric through the store and Prometheus,
 * fitting and running the forecaster, scoring with the anomaly detector: the loop never waits
 * for any of it), each alert's pending/firing/resolved state (models/alerting.h), delivery to
 * the Alertmanagers (amclient.h), and what the HTTP listener serves: /api/v1/alerts and
 * /api/v1/rules in Prometheus's shape, and the alert series of /metrics.
 *
 * One alert per series the rule's metric returns (at most ALERTS_MAX_SERIES per rule), its
 * labels: the series' labels without __name__, the rule's labels, alertname (the rule's name)
 * and severity. */
#ifndef TIDE_ALERTS_H
#define TIDE_ALERTS_H

#include <cjson/cJSON.h>
#include <stddef.h>

#define ALERTS_MODULE_NAME "alerts"
#define ALERTS_MAX_SERIES 32 /* an anomaly detector takes ~2 MB: 64 MB per rule at most */
#define ALERTS_MAX_RULES 1024

struct controlplane;

/* The bodies of GET /api/v1/alerts and /api/v1/rules (Prometheus's JSON), and the alert
 * series of /metrics, malloc'd copies of what the loop rendered last (NULL: no alerts module
 * or out of memory). Thread-safe (called from the HTTP threads). */
char *alerts_api_alerts(struct controlplane *cp);
char *alerts_api_rules(struct controlplane *cp);
char *alerts_metrics_text(struct controlplane *cp);

/* ---- inside alerts/ (alert_ops.c) ---------------------------------------------------- */

struct cp_alerts;
/* Applies a rule's YAML (validated again here): 0 with *result "created", "configured" or
 * "unchanged", *generation and the rule's name; -EINVAL with err listing the problems;
 * -errno with err. */
int alerts_apply(struct cp_alerts *a, const char *yaml, const char **result,
                 unsigned long long *generation, char *name, size_t namelen, char *err,
                 size_t errlen);
/* Deletes a rule (its firing alerts are sent resolved). 0, -ENOENT, or -errno with err. */
int alerts_delete(struct cp_alerts *a, const char *name, char *err, size_t errlen);
/* The rules as JSON (Prometheus's rule objects with a "tide" member each); name NULL: all,
 * else that one (NULL when there is no such rule). Caller frees. */
cJSON *alerts_rules_json(struct cp_alerts *a, const char *name);
/* The pending and firing alerts as JSON (Prometheus's alert objects). Caller frees. */
cJSON *alerts_alerts_json(struct cp_alerts *a);

#endif
