/* action_shutdown.c: stops the node actions still under way when the agent shuts down (their
 * watchers, HAProxy connections and warm-up transfers), before the loop goes away. The
 * dispatcher releases the calls themselves. */
#include "agent.h"
#include "log.h"
#include "actions/replica_action.h"

static void node_actions_stop(struct agent *ag) {
    (void)ag;
    int n = replica_action_cancel_all();
    if (n) log_info("action", "%d node action(s) stopped at shutdown", n);
}

AGENT_MODULE(node_actions, "node-actions", NULL, node_actions_stop)
