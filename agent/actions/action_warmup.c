/* action_warmup.c: registers the "warmup" node action (agent/actions/replica_action.c does the
 * work). */
#include "actions/action.h"
#include "actions/replica_action.h"

static void warmup_done(void *arg, int ok, cJSON *result, const char *error) {
    action_done(arg, ok, result, error);
}

static void warmup_run(action_call *call, const cJSON *args) {
    replica_action_run(action_loop(call), "warmup", args, warmup_done, call);
}

AGENT_ACTION(warmup, "warmup", warmup_run)
