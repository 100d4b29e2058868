/* cli_table.h: what the tidectl commands share to read the control plane's JSON answers, parse
 * their options and report usage errors, so that every command speaks alike. */
#ifndef TIDE_CLI_TABLE_H
#define TIDE_CLI_TABLE_H

#include <getopt.h>

#include "tidectl.h"

/* A subcommand as its messages name it: "tidectl NAME: ..." and "usage: tidectl USAGE". */
typedef struct cli_cmd {
    const char *name;
    const char *usage;
} cli_cmd;

/* The number at key k of object o, 0 when it is missing or not a number. */
double cli_num(const cJSON *o, const char *k);
/* Whether key k of object o holds a number. */
int cli_has_num(const cJSON *o, const char *k);
/* The string at key k of object o, or `missing` when it is absent or not a string. */
const char *cli_str(const cJSON *o, const char *k, const char *missing);

/* Prints "tidectl NAME: MESSAGE" and the command's usage to stderr; returns 2, the exit status
 * of a usage error. */
int cli_usage_error(const cli_cmd *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Returned by cli_getopt when the command is done: exit with *status. */
#define CLI_OPT_EXIT (-2)

/* getopt_long over a subcommand's argv (the caller sets optind = 1 first; getopt's own
 * messages are off), handling the options every command has: 'j' (--json) sets *json, 'h'
 * (--help) prints the usage to stdout and returns CLI_OPT_EXIT with *status 0, and an unknown
 * or incomplete option is a usage error (CLI_OPT_EXIT, *status 2). Returns the next other
 * option's val, or -1 after the last option (optind then indexes the first argument). */
int cli_getopt(const cli_cmd *cmd, int argc, char **argv, const struct option *longopts, int *json,
               int *status);

/* tidectl_call, then with json set prints the answer as --json does. Returns 0 with *data
 * set (caller frees) when the caller is to print the answer itself; 0 with *data NULL when it
 * was printed as JSON; or the exit status of a failed call (*data NULL). */
int cli_call(const tidectl_ctx *ctx, const char *cmd, cJSON *args, int json, cJSON **data);

#endif
