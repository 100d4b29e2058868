/* cli_table.h: what the tidectl commands share to read the control plane's JSON answers, parse
 * their options and report usage errors, so that every command speaks alike. */
#ifndef TIDE_CLI_TABLE_H
#define TIDE_CLI_TABLE_H

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>

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

/* ---- tables whose columns fit their longest cell ---- */

/* A table built cell by cell, printed with each column as wide as its widest cell (in UTF-8
 * code points; bytes that are not UTF-8 are printed as U+FFFD). align holds one character per
 * column: 'l' left, 'r' right. Columns are separated by two spaces; the last column is not
 * padded. At most CLI_TAB_MAX_COLS columns; cells are copied. */
#define CLI_TAB_MAX_COLS 24
typedef struct cli_tab cli_tab;
cli_tab *cli_tab_new(const char *align);
/* Appends one cell (printf format) to the current row; a row ends after strlen(align) cells. */
void cli_tab_add(cli_tab *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints every row to f and frees the table (NULL is a no-op). */
void cli_tab_print(cli_tab *t, FILE *f);

/* ---- times on the command line ---- */

/* Parses a time argument into unix milliseconds: unix seconds ("1700000000", "1700000000.5"),
 * RFC 3339 ("2026-12-07T10:00:00Z", offsets and fractions allowed), "now", "now-DURATION",
 * "now+DURATION" or "-DURATION" (DURATION as query_parse_duration takes it: 90s, 15m, 1h30m, 2d,
 * 1w, or plain seconds after "now-"). A bare negative number is unix seconds, as Prometheus
 * reads it. 0 or -EINVAL. */
int cli_parse_time(const char *s, int64_t now_ms, int64_t *ms);

/* ---- progress on a terminal ---- */

/* A line on stderr that says what a long command is doing and for how long, redrawn every
 * second by a thread while the work runs; nothing at all when stderr is not a terminal or
 * --quiet was given. */
typedef struct cli_progress cli_progress;
cli_progress *cli_progress_start(const tidectl_ctx *ctx, const char *what);
/* Changes the text of the live line (the clock restarts). */
void cli_progress_set(cli_progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Ends the live line with a permanent one ("TEXT: done in 12.3 s" style, printf format). */
void cli_progress_note(cli_progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Clears the live line and stops the thread (NULL is a no-op). */
void cli_progress_stop(cli_progress *p);
