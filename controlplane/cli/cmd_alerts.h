/* cmd_alerts.h: the alert-rule halves of tidectl apply/get/describe/delete (cmd_workloads.c
 * hands a document of kind AlertRule, or the resource name "alertrule(s)", over to these). */
#ifndef TIDE_CMD_ALERTS_H
#define TIDE_CMD_ALERTS_H

#include <stddef.h>

#include "tidectl.h"

/* apply: buf (len bytes, NUL-terminated) is an AlertRule read from path. Exit status. */
int cli_alertrule_apply(tidectl_ctx *ctx, const char *path, const char *buf, size_t len);
/* get alertrules: the table (or --json). */
int cli_alertrule_list(tidectl_ctx *ctx);
/* describe alertrule NAME */
int cli_alertrule_describe(tidectl_ctx *ctx, const char *name);
/* delete alertrule NAME */
int cli_alertrule_delete(tidectl_ctx *ctx, const char *name);

#endif
