/* workload_ops.h: the live side of workloads in the control plane: the applied specs (kept in
 * <data_dir>/workloads/NAME.yaml, reloaded at start), a controller per workload that runs the
 * portrait engine and the planner every syncPeriodSeconds on observations of its metrics, and
 * the ops commands behind `tidectl apply/get workloads/describe/events/delete`.
 *
 * Observations and training history come from the store (read on the loop) or, with
 * --prometheus, from the store merged with Prometheus for selectors and from Prometheus alone
 * for other PromQL, read on a worker thread per sync so that the loop never waits for HTTP; a
 * failed read is replaced by the last good values, a fetch that overruns a sync leaves that
 * sync to the last good observation, and both are reported (status, `prometheus` events).
 *
 * Ops commands (JSON args -> data):
 *   workload-apply    {"yaml": TEXT}   ->
 * {"name","result":"created"|"configured"|"unchanged","generation"} an invalid spec -> error
 * (status 2) listing every problem, nothing changed workload-list     {}               ->
 * [{"name","namespace","target","mode","min","max","need",
 *                                            "provisioned","online","starting","standby",...}]
 *   workload-describe {"name"}         -> {"spec":{...},"status","observation","prometheus",
 *                                            "prometheus_error","metrics_offset_seconds",
 *                                            "metrics":{"utilization"|"replicas"|"traffic":{"source",
 *                                            "read_at","stale","error",...}},"last_fit":{...},
 *                                            "portrait":[...],"replicas":[...],"events":[...],"actions":[...]}
 *   workload-events   {"name"?,"limit"?} -> [{"time","workload","kind","text"}] oldest first
 *   workload-delete   {"name"}         -> {"name","result":"deleted"}
 *
 * Executors (Kubernetes API, HAProxy, systemd through agents) arrive with later issues: they
 * register per target kind with workload_executor_register(). A workload whose target kind has
 * no executor yet is planned in Preview (it records what it would do); describe says so. */
#ifndef TIDE_WORKLOAD_OPS_H
#define TIDE_WORKLOAD_OPS_H

#include <cjson/cJSON.h>

#include "scaling/planner.h"
#include "spec/workload.h"

struct controlplane;

/* Carries out one action for a workload; returns 0 when accepted (the outcome is reported
 * later with workload_action_done) or -errno. */
typedef int (*workload_executor_fn)(struct controlplane *cp, const workload_spec *spec,
                                    const planner_action *a);
void workload_executor_register(wl_target_kind kind, workload_executor_fn fn);

/* An executor reports an action's outcome (ignored when the workload or replica is gone). */
void workload_action_done(struct controlplane *cp, const char *workload, const char *replica,
                          planner_action_kind kind, int ok);

/* Every workload's figures for /metrics and the web page (loop thread only): the list
 * summary (need, provisioned, replicas by state), scale_up_ahead_seconds, portrait_t0/step,
 * in_control (provider name driving step 0), providers [{name, type, in_control, fallback,
 * model, forecast {t0, step, quantile, median[], upper[], live_wape, scored}}],
 * events_by_kind {KIND: count}, actions_by_kind [{action, result: sent|failed, count}]
 * (outcomes reported by executors come with them), last_fit, last_fetch_ms. */
cJSON *workload_metrics_json(struct controlplane *cp);

/* What the web page (/ui) plots, from `since` (unix s) on (loop thread only): the list summary,
 * observation, status, traffic_name, traffic {t0, step, values[]} (the history the controller
 * read, per minute), forecast {provider, t0, step, quantile, median[], upper[]} of the first
 * predictive provider with one, history [[t, need, provisioned, online, starting, activating,
 * cutoff, standby]] after each sync (need/provisioned -1 before the first portrait; the last
 * 1440 syncs), events [{time, kind, text}] (the last 200). */
cJSON *workload_ui_json(struct controlplane *cp, int64_t since);

#endif
