/* metrics.h: the per-node and per-workload series of the control plane's /metrics, the
 * process_* series and tide_build_info, in the Prometheus text format (0.0.4).
 *
 * The node and workload figures live on the loop thread: http.c's one-second tick renders
 * them with metrics_render_loop() and keeps the text; the HTTP thread serves the latest. */
#ifndef TIDE_METRICS_H
#define TIDE_METRICS_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "strbuf.h"

/* Appends v as a label value: quotes, backslashes and newlines escaped, bytes that are not
 * UTF-8 as U+FFFD (the text format is UTF-8). */
void metrics_label(strbuf *b, const char *v);

/* The series of the agents table (cp_agents_json rows) and of the workloads
 * (workload_metrics_json), with now_ms the wall clock for ages. Executor and action outcome
 * series go in their own function here when the executors report them. */
void metrics_nodes(strbuf *b, const cJSON *agents, int64_t now_ms);
void metrics_workloads(strbuf *b, const cJSON *workloads, int64_t now_s);

/* process_* (procstat) and tide_build_info{version,compiler}. */
void metrics_process(strbuf *b);
void metrics_build_info(strbuf *b, const char *version);

#endif
