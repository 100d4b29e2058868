/* action_drain.c: registers the "drain" node action (agent/actions/replica_action.c does the work).
 */
#include "actions/action.h"
#include "actions/replica_action.h"

static void drain_done(void *arg, int ok, cJSON *result, const char *error) {
    action_done(arg, ok, result, error);
}

static void drain_run(action_call *call, const cJSON *args) {
    replica_action_run(action_loop(call), "drain", args, drain_done, call);
}

AGENT_ACTION(drain, "drain", drain_run)
