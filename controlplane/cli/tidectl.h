/* tidectl.h: subcommand registration and the ops-socket client used by every tidectl command.
 *
 * A command lives in its own file controlplane/cli/cmd_NAME.c and registers itself with
 * TIDECTL_COMMAND(); tidectl.c parses the global options (--socket PATH, --json, --quiet,
 * --help, --version) and dispatches; `NAME --help` and `help NAME` are answered there for every
 * command (rc 0) before the command sees its arguments. Exit statuses: 0 success, 1 failure
 * reported by the control plane or the command, 2 usage error, bad input, or control plane
 * unreachable. */
#ifndef TIDE_TIDECTL_H
#define TIDE_TIDECTL_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdio.h>

#define TIDECTL_DEFAULT_SOCKET "/run/tide/controlplane.sock"

typedef struct tidectl_ctx {
    const char *socket_path; /* --socket, $TIDE_SOCKET, or TIDECTL_DEFAULT_SOCKET */
    int json;                /* --json given (globally or after the subcommand) */
    int quiet;               /* --quiet given: no progress output on stderr */
} tidectl_ctx;

/* Runs a subcommand: argv[0] is the subcommand name, global options already removed.
 * Returns the process exit status. */
typedef int (*tidectl_cmd_fn)(tidectl_ctx *ctx, int argc, char **argv);

void tidectl_register(const char *name, tidectl_cmd_fn fn, const char *usage);

/* Extra help text for a command (printed after its usage by `tidectl help NAME` and
 * `tidectl NAME --help`), e.g. lists that are built at run time. */
typedef void (*tidectl_help_fn)(FILE *f);
void tidectl_register_help(const char *name, tidectl_help_fn fn);
#define TIDECTL_HELP(ident, name, fn)                                                              \
    __attribute__((constructor)) static void tidectl_help_##ident(void) {                          \
        tidectl_register_help((name), (fn));                                                       \
    }

/* Whether progress lines belong on stderr: a terminal there and no --quiet. */
int tidectl_progress_wanted(const tidectl_ctx *ctx);

#define TIDECTL_COMMAND(ident, name, usage, fn)                                                    \
    __attribute__((constructor)) static void tidectl_reg_##ident(void) {                           \
        tidectl_register((name), (fn), (usage));                                                   \
    }

/* Sends {"cmd":cmd,"args":args} to the control plane (takes ownership of args, may be NULL)
 * and waits for the answer. On success returns 0 and sets *data (caller frees with
 * cJSON_Delete). On failure prints the reason to stderr and returns the exit status to use:
 * 2 with "cannot reach control plane at PATH: <reason>" when the socket cannot be used,
 * or the status the control plane sent. */
int tidectl_call(const tidectl_ctx *ctx, const char *cmd, cJSON *args, cJSON **data);
/* As tidectl_call, and on a failure the control plane sent with details ("data" next to
 * "error", e.g. a node action's partial result) sets *error_data to them (caller frees; NULL
 * when there are none or error_data is NULL). */
int tidectl_call_detail(const tidectl_ctx *ctx, const char *cmd, cJSON *args, cJSON **data,
                        cJSON **error_data);

/* Prints JSON (pretty, newline-terminated) to stdout: what --json prints. Bytes that are not
 * UTF-8 (a cgroup or file name in Latin-1) are printed as U+FFFD, so the output is always
 * valid UTF-8 JSON. */
void tidectl_print_json(const cJSON *j);

#endif
