/* action_activate.c: registers the "activate" node action (agent/actions/replica_action.c does the
 * work).
 */
#include "actions/action.h"
#include "actions/replica_action.h"

static void activate_done(void *arg, int ok, cJSON *result, const char *error) {
    action_done(arg, ok, result, error);
}

static void activate_run(action_call *call, const cJSON *args) {
    replica_action_run(action_loop(call), "activate", args, activate_done, call);
}

AGENT_ACTION(activate, "activate", activate_run)
