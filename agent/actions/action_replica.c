/* action_replica.c: registers the replica process actions "replica-start", "replica-stop" and
 * "replicas" (agent/actions/replica_proc.c does the work) and opens the replica directory at
 * agent start when replica_dir is set: replicas a previous agent started are adopted before the
 * agent connects. */
#include <stdio.h>

#include "actions/action.h"
#include "actions/replica_proc.h"
#include "agent.h"
#include "log.h"

static void replica_done(void *arg, int ok, cJSON *result, const char *error) {
    action_done(arg, ok, result, error);
}

static void start_run(action_call *call, const cJSON *args) {
    replica_proc_run("replica-start", args, replica_done, call);
}
static void stop_run(action_call *call, const cJSON *args) {
    replica_proc_run("replica-stop", args, replica_done, call);
}
static void list_run(action_call *call, const cJSON *args) {
    replica_proc_run("replicas", args, replica_done, call);
}

AGENT_ACTION(replica_start, "replica-start", start_run)
AGENT_ACTION(replica_stop, "replica-stop", stop_run)
AGENT_ACTION(replicas, "replicas", list_run)

static int replicas_start(struct agent *ag, char *err, size_t errlen) {
    if (!ag->cfg.replica_dir || !ag->cfg.replica_dir[0]) return 0;
    return replica_proc_open(ag->loop, ag->cfg.replica_dir, ag->cfg.replica_cgroup, ag->node, err,
                             errlen);
}

static void replicas_stop(struct agent *ag) {
    (void)ag;
    replica_proc_close();
}

AGENT_MODULE(replicas, "replicas", replicas_start, replicas_stop)
