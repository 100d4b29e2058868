/* node_collect.h: node totals from /proc, behind the agent's "node" collector.
 *
 * Each round reads /proc/stat, /proc/meminfo and /proc/loadavg (descriptors kept open, one
 * pread each) and emits, with no labels of its own (the control plane adds node):
 *   node_cpu_usage_cores        busy (non-idle, non-iowait) ticks per second / USER_HZ
 *   node_cpu_count              "cpuN" lines of /proc/stat
 *   node_memory_total_bytes, node_memory_available_bytes, node_memory_used_bytes (total -
 * available) node_load1                  1-minute load average node_agent_rounds_total     sampling
 * rounds since the agent started: a completeness check (the store's raw points of it == its last
 * value when nothing was lost or stored twice) */
#ifndef TIDE_NODE_COLLECT_H
#define TIDE_NODE_COLLECT_H

#include "collect/cgroup_collect.h" /* cgc_out */

#include <stddef.h>
#include <stdint.h>

typedef struct nodec nodec;

/* proc_dir: NULL for /proc (tests pass a directory holding stat, meminfo, loadavg).
 * 0 or -errno with err filled (a file that cannot be opened). */
int nodec_new(nodec **out, const char *proc_dir, char *err, size_t errlen);
void nodec_free(nodec *n);
/* One round; 0, or -errno with err filled when a file could not be read or parsed (the other
 * files' values are still emitted). */
int nodec_sample(nodec *n, const cgc_out *out, int64_t now_ms, char *err, size_t errlen);

#endif
