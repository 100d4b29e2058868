/* workload_view.h: what /metrics and the web page (/ui) show of the workloads, as JSON built
 * on the loop thread: counters of decision events and actions, and a ring of replicas by state
 * after each sync. */
#ifndef TIDE_WORKLOAD_VIEW_H
#define TIDE_WORKLOAD_VIEW_H

#include <cjson/cJSON.h>
#include <stdint.h>

struct controlplane;
struct workload_entry;

/* After each sync (sync.c): records replicas by state at `now` (unix s). */
void workload_view_note(struct workload_entry *e, int64_t now);

/* Every workload's figures for /metrics (loop thread only): the list summary (name,
 * namespace, min, max, need, provisioned, online, starting, activating, cutoff, standby),
 * scale_up_ahead_seconds, in_control (provider name driving step 0), providers [{name, type,
 * in_control, fallback, model, forecast {t0, step, quantile, median[], upper[], live_wape,
 * scored}}], events_by_kind {KIND: count}, actions_by_kind [{action, result: sent|failed,
 * count}] (outcomes reported by executors come with them), last_fit, last_fetch_ms. */
cJSON *workload_metrics_json(struct controlplane *cp);

/* What the web page plots from `since` (unix s) on (loop thread only): the summary, observation,
 * status, traffic_name, traffic {t0, step, values[]} (the history the controller read, per
 * minute), forecast {provider, t0, step, quantile, median[], upper[]} of the first predictive
 * provider with one, history [[t, need, provisioned, online, starting, activating, cutoff,
 * standby]] after each sync (need/provisioned -1 before the first portrait; the last 1440
 * syncs), events [{time, kind, text}] (the last 200). */
cJSON *workload_ui_json(struct controlplane *cp, int64_t since);

#endif
