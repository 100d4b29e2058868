/* action.h: node actions (drain, standby, activate, warm-up, ...) that the control plane sends
 * as COMMAND messages and the agent answers with COMMAND_RESULT.
 *
 * An action module registers a handler with AGENT_ACTION(). The agent's command dispatcher
 * converts the COMMAND's `args` map to JSON, calls the handler on the agent's loop and sends
 * the COMMAND_RESULT when the handler calls action_done() (exactly once, now or later from the
 * loop: actions with deadlines must not block it). Commands are idempotent: the dispatcher
 * answers a repeated command id with the stored result, and handlers must make repeating an
 * action harmless (draining a drained server succeeds at once). */
#ifndef TIDE_ACTION_H
#define TIDE_ACTION_H

#include <cjson/cJSON.h>

struct ev_loop;
typedef struct action_call action_call;

typedef void (*action_fn)(action_call *call, const cJSON *args);

void action_register(const char *name, action_fn fn);

#define AGENT_ACTION(ident, name, fn)                                                              \
    __attribute__((constructor)) static void action_reg_##ident(void) {                            \
        action_register((name), (fn));                                                             \
    }

struct ev_loop *action_loop(action_call *call);
const char *action_id(const action_call *call);
/* Finishes the call: ok = 1 success, 0 failure (error says why, NULL when ok). `result` (owned
 * by the callee, may be NULL) carries timings and details as a JSON object. */
void action_done(action_call *call, int ok, cJSON *result, const char *error);

#endif
