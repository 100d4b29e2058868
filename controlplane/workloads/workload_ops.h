/* workload_ops.h: the ops commands behind `tidectl apply/get workloads/describe/events/delete`
 * (JSON args -> data), registered with OPS_COMMAND; nothing to call from C.
 *
 *   workload-apply    {"yaml": TEXT}   -> {"name","result":"created"|"configured"|"unchanged",
 *                                          "generation"}; an invalid spec -> error (status 2)
 *                                          listing every problem, nothing changed
 *   workload-list     {}               -> [{"name","namespace","target","mode","min","max",
 *                                          "need","provisioned","online","starting","standby",...}]
 *   workload-describe {"name"}         -> {"spec":{...},"status","observation","prometheus",
 *                                          "prometheus_error","metrics_offset_seconds",
 *                                          "metrics":{"utilization"|"replicas"|"traffic":{"source",
 *                                          "read_at","stale","error",...}},"last_fit":{...},
 *                                          "portrait":[...],"replicas":[...],"events":[...],
 *                                          "actions":[...]}
 *   workload-events   {"name"?,"limit"?} -> [{"time","workload","kind","text"}] oldest first
 *   workload-delete   {"name"}         -> {"name","result":"deleted"} */
#ifndef TIDE_WORKLOAD_OPS_H
#define TIDE_WORKLOAD_OPS_H
#endif
