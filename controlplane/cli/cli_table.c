/* cli_table.c: JSON accessors, option parsing, usage errors and the call-or-print-JSON step
 * shared by the tidectl commands (cli_table.h). */
#include "cli_table.h"

#include <stdarg.h>
#include <stdio.h>

double cli_num(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

int cli_has_num(const cJSON *o, const char *k) {
    return cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(o, k));
}

const char *cli_str(const cJSON *o, const char *k, const char *missing) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : missing;
}

int cli_usage_error(const cli_cmd *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "tidectl %s: ", cmd->name);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nusage: tidectl %s\n", cmd->usage);
    va_end(ap);
    return 2;
}

int cli_getopt(const cli_cmd *cmd, int argc, char **argv, const struct option *longopts, int *json,
               int *status) {
    opterr = 0;
    for (;;) {
        int c = getopt_long(argc, argv, "", longopts, NULL);
        switch (c) {
        case 'j':
            *json = 1;
            continue;
        case 'h':
            printf("usage: tidectl %s\n", cmd->usage);
            *status = 0;
            return CLI_OPT_EXIT;
        case '?':
            *status = cli_usage_error(cmd, "unknown or incomplete option '%s'", argv[optind - 1]);
            return CLI_OPT_EXIT;
        default:
            return c;
        }
    }
}

int cli_call(const tidectl_ctx *ctx, const char *cmd, cJSON *args, int json, cJSON **data) {
    *data = NULL;
    cJSON *d = NULL;
    int rc = tidectl_call(ctx, cmd, args, &d);
    if (rc != 0) return rc;
    if (json) {
        tidectl_print_json(d);
        cJSON_Delete(d);
        return 0;
    }
    *data = d;
    return 0;
}
