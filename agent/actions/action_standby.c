/* action_standby.c: registers the "standby" node action (agent/actions/replica_action.c does the
 * work). */
#include "actions/action.h"
#include "actions/replica_action.h"

static void standby_done(void *arg, int ok, cJSON *result, const char *error) {
    action_done(arg, ok, result, error);
}

static void standby_run(action_call *call, const cJSON *args) {
    replica_action_run(action_loop(call), "standby", args, standby_done, call);
}

AGENT_ACTION(standby, "standby", standby_run)
