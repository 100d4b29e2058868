/* ops.h: the control plane's ops socket (unix, mode 0660) that tidectl talks to.
 *
 * Protocol: each request and each response is one frame, a 4-byte big-endian length followed
 * by a UTF-8 JSON object (at most OPS_MAX_FRAME bytes).
 *   request:  {"cmd": "agents", "args": {...}}
 *   response: {"ok": true, "data": <any JSON>}
 *          or {"ok": false, "error": "what went wrong", "status": 2, "data": <object>}
 *             ("data" only when the failure has details, e.g. a node action's result object)
 * "status" is the exit status tidectl should use (2 = bad request/input, 1 = failure).
 *
 * Modules register their commands themselves with OPS_COMMAND(); the daemon links every
 * controlplane object directly, so the constructors run. A handler replies exactly once,
 * either before it returns or later from the event loop (e.g. when an agent answers a
 * COMMAND): keep the ops_request pointer until then. If the tidectl connection closes
 * first, the late reply is dropped silently. */
#ifndef TIDE_OPS_H
#define TIDE_OPS_H

#include <cjson/cJSON.h>
#include <stddef.h>

#define OPS_MAX_FRAME (64u << 20)

typedef struct ops_request ops_request;
struct controlplane; /* defined by controlplane/cp.h */

typedef void (*ops_handler_fn)(ops_request *req, const cJSON *args);

/* Parses and checks one request frame's JSON: an object with a "cmd" string, "args" an object
 * or null or absent, no NUL anywhere (raw or \u0000). 0 with *root (caller frees), *cmd and
 * *args (NULL when absent or null) pointing into it, or -EINVAL with err. */
int ops_parse_request(const char *text, size_t len, cJSON **root, const char **cmd,
                      const cJSON **args, char *err, size_t errlen);

/* Registers a command; called from constructors before main(). */
void ops_register(const char *cmd, ops_handler_fn fn, const char *help);

#define OPS_COMMAND(ident, name, help, fn)                                                         \
    __attribute__((constructor)) static void ops_reg_##ident(void) {                               \
        ops_register((name), (fn), (help));                                                        \
    }

/* Large requests being parsed off the loop or waiting to be (tidectl status). */
int ops_parses_pending(struct controlplane *cp);

/* The control plane this request is served by. */
struct controlplane *ops_cp(ops_request *req);

/* Replies {"ok":true,"data":data}; takes ownership of data (NULL means JSON null). */
void ops_reply(ops_request *req, cJSON *data);
/* Replies {"ok":false,"error":...,"status":status}. */
void ops_reply_error(ops_request *req, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Replies {"ok":false,"error":...,"status":status,"data":data}: a failure that keeps its
 * details (what a node action got done before its deadline). Takes ownership of data (NULL:
 * no "data" key, as ops_reply_error). */
void ops_reply_error_data(ops_request *req, int status, cJSON *data, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
