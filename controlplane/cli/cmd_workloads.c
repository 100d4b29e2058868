/* cmd_workloads.c: `tidectl apply -f FILE`, `get workloads`, `describe NAME`, `events [NAME]`,
 * `delete NAME`: workload specs and their decisions, through the ops socket. */
#include "cli_table.h"
#include "cmd_alerts.h"
#include "tidectl.h"
#include "spec/alertrule.h"
#include "spec/workload.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *str(const cJSON *o, const char *k) {
    return cli_str(o, k, "");
}

static const char *stamp(double unix_s, char *buf, size_t len) {
    time_t t = (time_t)unix_s;
    struct tm tmv;
    gmtime_r(&t, &tmv);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tmv);
    return buf;
}

static int usage(const char *cmd, const char *msg, const char *u) {
    fprintf(stderr, "tidectl %s: %s\nusage: tidectl %s\n", cmd, msg, u);
    return 2;
}

/* Strips a trailing "--json" (tidectl.c also accepts it after the subcommand). */
static int take_json(tidectl_ctx *ctx, int *argc, char **argv) {
    for (int i = 1; i < *argc; i++)
        if (strcmp(argv[i], "--json") == 0) {
            ctx->json = 1;
            memmove(&argv[i], &argv[i + 1], (size_t)(*argc - i - 1) * sizeof *argv);
            (*argc)--;
            i--;
        }
    return 0;
}

#define APPLY_USAGE                                                                                \
    "apply -f FILE [--json]   validate and apply a workload spec or alert rule (FILE - = stdin)"

static int cmd_apply(tidectl_ctx *ctx, int argc, char **argv) {
    take_json(ctx, &argc, argv);
    if (argc != 3 || (strcmp(argv[1], "-f") != 0 && strcmp(argv[1], "--filename") != 0))
        return usage("apply", "expected -f FILE", APPLY_USAGE);
    const char *path = argv[2];
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "tidectl apply: %s: %s\n", path, strerror(errno));
        return 2;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (len + 1 >= cap) {
            if (cap >= (1u << 20)) {
                fprintf(stderr, "tidectl apply: %s: larger than 1 MiB\n", path);
                free(buf);
                if (f != stdin) fclose(f);
                return 2;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) break;
            buf = nb;
            cap *= 2;
        }
        size_t r = fread(buf + len, 1, cap - len - 1, f);
        len += r;
        if (r == 0) break;
    }
    int ferr = ferror(f);
    if (f != stdin) fclose(f);
    if (!buf || ferr) {
        fprintf(stderr, "tidectl apply: %s: cannot read\n", path);
        free(buf);
        return 2;
    }
    buf[len] = 0;
    if (strlen(buf) != len) {
        fprintf(stderr, "tidectl apply: %s: contains a NUL byte; not a YAML text file\n", path);
        free(buf);
        return 2;
    }
    char kind[64];
    ar_doc_kind(buf, len, kind, sizeof kind);
    if (!strcmp(kind, "AlertRule")) {
        int arc = cli_alertrule_apply(ctx, path, buf, len);
        free(buf);
        return arc;
    }
    /* validate here too: every problem is printed, however many (the control plane checks
     * again and is the authority) */
    workload_spec spec;
    wl_problems probs;
    wl_problems_init(&probs);
    if (wl_parse(buf, len, &spec, &probs) < 0) {
        char *txt = wl_problems_format(&probs);
        fprintf(stderr,
                "tidectl apply: %s: invalid workload spec, %zu problem%s (nothing applied):\n%s",
                path, probs.n, probs.n == 1 ? "" : "s", txt ? txt : "");
        free(txt);
        wl_problems_fini(&probs);
        free(buf);
        return 2;
    }
    wl_problems_fini(&probs);
    cJSON *args = cJSON_CreateObject();
    cJSON_AddStringToObject(args, "yaml", buf);
    free(buf);
    cJSON *data = NULL;
    int rc = cli_call(ctx, "workload-apply", args, ctx->json, &data);
    if (rc != 0 || !data) return rc;
    printf("workload/%s %s (generation %.0f)\n", str(data, "name"), str(data, "result"),
           cli_num(data, "generation"));
    if (*str(data, "note")) printf("note: %s\n", str(data, "note"));
    cJSON_Delete(data);
    return 0;
}

#define GET_USAGE                                                                                  \
    "get workloads|alertrules [--json]   workloads: mode, bounds, need now/ahead, "                \
    "online/starting/standby; alert rules: type, state, alerts\n"                                  \
    "  get replicas NAME [--json]   the replicas of workload NAME: node, HAProxy server, pid, "    \
    "state, since"

static void fleet_table(const cJSON *fleet, const char *indent) {
    cli_tab *tab = cli_tab_new("lllllrlll");
    const char *hdr[] = {"REPLICA", "STATE",  "NODE",  "ADDRESS", "SERVER",
                         "PID",     "CGROUP", "SINCE", "DOING"};
    for (size_t i = 0; i < sizeof hdr / sizeof hdr[0]; i++)
        cli_tab_add(tab, "%s%s", i == 0 ? indent : "", hdr[i]);
    const cJSON *r;
    cJSON_ArrayForEach(r, fleet) {
        char ts[32];
        cli_tab_add(tab, "%s%s", indent, str(r, "id"));
        cli_tab_add(tab, "%s", str(r, "state"));
        cli_tab_add(tab, "%s", str(r, "node"));
        cli_tab_add(tab, "%s:%.0f", str(r, "addr"), cli_num(r, "port"));
        cli_tab_add(tab, "%s%s%s%s", *str(r, "server") ? str(r, "server") : "-",
                    *str(r, "haproxy_status") ? " (" : "", str(r, "haproxy_status"),
                    *str(r, "haproxy_status") ? ")" : "");
        cli_tab_add(tab, "%.0f", cli_num(r, "pid"));
        cli_tab_add(tab, "%s", *str(r, "cgroup") ? str(r, "cgroup") : "-");
        cli_tab_add(tab, "%s", stamp(cli_num(r, "since") / 1000, ts, sizeof ts));
        cli_tab_add(tab, "%s", *str(r, "doing") ? str(r, "doing") : "-");
    }
    cli_tab_print(tab, stdout);
}

static int cmd_get(tidectl_ctx *ctx, int argc, char **argv) {
    take_json(ctx, &argc, argv);
    if (argc == 2 && (!strcmp(argv[1], "alertrules") || !strcmp(argv[1], "alertrule")))
        return cli_alertrule_list(ctx);
    if (argc == 3 && (!strcmp(argv[1], "replicas") || !strcmp(argv[1], "replica"))) {
        cJSON *args = cJSON_CreateObject();
        cJSON_AddStringToObject(args, "name", argv[2]);
        cJSON *fleet = NULL;
        int rc = cli_call(ctx, "workload-replicas", args, ctx->json, &fleet);
        if (rc != 0 || !fleet) return rc;
        if (cJSON_GetArraySize(fleet) == 0)
            printf("no replicas\n");
        else
            fleet_table(fleet, "");
        cJSON_Delete(fleet);
        return 0;
    }
    if (argc != 2 || (strcmp(argv[1], "workloads") != 0 && strcmp(argv[1], "workload") != 0))
        return usage("get", "\"workloads\", \"alertrules\" or \"replicas NAME\" can be listed",
                     GET_USAGE);
    cJSON *data = NULL;
    int rc = cli_call(ctx, "workload-list", NULL, ctx->json, &data);
    if (rc != 0 || !data) return rc;
    cli_tab *tab = cli_tab_new("llllrrrrrrr");
    const char *hdr[] = {"NAME", "NAMESPACE", "TARGET", "MODE",     "MIN",    "MAX",
                         "NEED", "AHEAD",     "ONLINE", "STARTING", "STANDBY"};
    for (size_t i = 0; i < sizeof hdr / sizeof hdr[0]; i++)
        cli_tab_add(tab, "%s", hdr[i]);
    const cJSON *o;
    cJSON_ArrayForEach(o, data) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "target");
        const cJSON *nj = cJSON_GetObjectItemCaseSensitive(o, "need");
        const cJSON *pj = cJSON_GetObjectItemCaseSensitive(o, "provisioned");
        cli_tab_add(tab, "%s", str(o, "name"));
        cli_tab_add(tab, "%s", str(o, "namespace"));
        cli_tab_add(tab, "%s/%s", str(t, "kind"),
                    *str(t, "name") ? str(t, "name") : str(t, "unit"));
        cli_tab_add(tab, "%s%s", str(o, "effective_mode"),
                    cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "paused")) ? ",paused" : "");
        cli_tab_add(tab, "%.0f", cli_num(o, "min"));
        cli_tab_add(tab, "%.0f", cli_num(o, "max"));
        if (cJSON_IsNumber(nj))
            cli_tab_add(tab, "%.0f", nj->valuedouble);
        else
            cli_tab_add(tab, "-");
        if (cJSON_IsNumber(pj))
            cli_tab_add(tab, "%.0f", pj->valuedouble);
        else
            cli_tab_add(tab, "-");
        cli_tab_add(tab, "%.0f", cli_num(o, "online"));
        cli_tab_add(tab, "%.0f", cli_num(o, "starting"));
        cli_tab_add(tab, "%.0f", cli_num(o, "standby"));
    }
    cli_tab_print(tab, stdout);
    cJSON_Delete(data);
    return 0;
}

#define DESCRIBE_USAGE                                                                             \
    "describe NAME | alertrule NAME [--json]   a workload: portrait ahead, replica states, last "  \
    "decisions and actions; an alert rule: its series, values and alerts"

static int cmd_describe(tidectl_ctx *ctx, int argc, char **argv) {
    take_json(ctx, &argc, argv);
    if (argc == 3 && !strcmp(argv[1], "alertrule")) return cli_alertrule_describe(ctx, argv[2]);
    if (argc != 2) return usage("describe", "expected one workload name", DESCRIBE_USAGE);
    cJSON *args = cJSON_CreateObject();
    cJSON_AddStringToObject(args, "name", argv[1]);
    cJSON *d = NULL;
    int rc = cli_call(ctx, "workload-describe", args, ctx->json, &d);
    if (rc != 0 || !d) return rc;
    char ts[32];
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(d, "target");
    printf("Name:        %s\nNamespace:   %s\nTarget:      %s %s%s%s\n", str(d, "name"),
           str(d, "namespace"), str(t, "kind"), *str(t, "namespace") ? str(t, "namespace") : "",
           *str(t, "namespace") ? "/" : "", *str(t, "name") ? str(t, "name") : str(t, "unit"));
    const cJSON *hap = cJSON_GetObjectItemCaseSensitive(t, "haproxy");
    if (cJSON_IsObject(hap)) {
        printf("HAProxy:     node %s, socket %s, slots %s* of backend %s\n", str(hap, "node"),
               str(hap, "socket"), str(hap, "server_prefix"), str(t, "name"));
        const cJSON *rp = cJSON_GetObjectItemCaseSensitive(t, "replica");
        const cJSON *cmd = cJSON_GetObjectItemCaseSensitive(rp, "command"), *w;
        printf("Replica:    ");
        cJSON_ArrayForEach(w, cmd) printf(" %s", cJSON_IsString(w) ? w->valuestring : "?");
        printf("\n             ports %.0f-%.0f on", cli_num(rp, "port_first"),
               cli_num(rp, "port_last"));
        const cJSON *nodes = cJSON_GetObjectItemCaseSensitive(t, "nodes");
        cJSON_ArrayForEach(w, nodes) printf(" %s", cJSON_IsString(w) ? w->valuestring : "?");
        printf("\n");
    }
    printf("Mode:        %s (running as %s)%s\n", str(d, "mode"), str(d, "effective_mode"),
           cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(d, "paused")) ? ", paused" : "");
    if (*str(d, "note")) printf("Note:        %s\n", str(d, "note"));
    const cJSON *own = cJSON_GetObjectItemCaseSensitive(d, "owner"); /* with etcd (HA) */
    if (cJSON_IsObject(own) && !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(own, "self")))
        printf("Owner:       %s (http %s): it decides and acts for this workload; its decisions, "
               "replicas and events are there\n",
               str(own, "member"), str(own, "http"));
    else if (cJSON_IsObject(own))
        printf("Owner:       this control plane (%s), fencing token %.0f%s%s\n", str(own, "member"),
               cli_num(d, "fence"), *str(d, "not_acting") ? "; not acting: " : "",
               str(d, "not_acting"));
    else if (cJSON_IsNull(own))
        printf("Owner:       none yet (%s)\n", str(d, "not_acting"));
    printf("Replicas:    min %.0f, max %.0f; online %.0f, starting %.0f, activating %.0f, cutoff "
           "%.0f, standby %.0f\n",
           cli_num(d, "min"), cli_num(d, "max"), cli_num(d, "online"), cli_num(d, "starting"),
           cli_num(d, "activating"), cli_num(d, "cutoff"), cli_num(d, "standby"));
    printf("Target util: %.0f%%   scale-up-ahead: %.0fs   generation %.0f\n",
           cli_num(d, "target_utilization"), cli_num(d, "scale_up_ahead_seconds"),
           cli_num(d, "generation"));
    printf("Observation: %s\n", str(d, "observation"));
    printf("Prometheus:  %s", str(d, "prometheus"));
    if (cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(d, "last_fetch_ms")))
        printf(" (this workload's last fetch took %.0f ms)", cli_num(d, "last_fetch_ms"));
    printf("\n");
    const cJSON *mo = cJSON_GetObjectItemCaseSensitive(d, "metrics"), *m;
    int first = 1;
    cJSON_ArrayForEach(m, mo) {
        const char *expr = *str(m, "selector") ? str(m, "selector") : str(m, "query");
        char src[40];
        snprintf(src, sizeof src, "%s%s", *str(m, "source") ? str(m, "source") : "(not read)",
                 cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(m, "stale")) ? " (stale)" : "");
        printf("%-13s%-12s %-18s %s%s%s\n", first ? "Metrics:" : "", m->string, src, expr,
               *str(m, "error") ? "\n               error: " : "", str(m, "error"));
        first = 0;
    }
    if (cli_num(d, "metrics_offset_seconds") > 0)
        printf("Offset:      metrics read as they were %.0f s ago\n",
               cli_num(d, "metrics_offset_seconds"));
    const cJSON *lf = cJSON_GetObjectItemCaseSensitive(d, "last_fit");
    if (cJSON_IsObject(lf)) {
        char a[32], b[32];
        printf("Last fit:    %s on %.0f minutes of traffic from %s, %s .. %s (%.0f model%s, %.0f "
               "failed)\n",
               stamp(cli_num(lf, "time"), ts, sizeof ts), cli_num(lf, "points"), str(lf, "source"),
               stamp(cli_num(lf, "history_start"), a, sizeof a),
               stamp(cli_num(lf, "history_end"), b, sizeof b), cli_num(lf, "models"),
               cli_num(lf, "models") == 1 ? "" : "s", cli_num(lf, "failed"));
    } else {
        printf("Last fit:    (none yet)\n");
    }
    if (*str(d, "status")) printf("Providers:   %s\n", str(d, "status"));
    const cJSON *pv;
    cJSON_ArrayForEach(pv, cJSON_GetObjectItemCaseSensitive(d, "providers")) {
        if (strcmp(str(pv, "type"), "predictive") != 0) continue;
        const cJSON *lm = cJSON_GetObjectItemCaseSensitive(pv, "live_mase");
        char score[96];
        if (cJSON_IsNumber(lm))
            snprintf(score, sizeof score, "live MASE %.2f over the last day (%s naive)",
                     lm->valuedouble, lm->valuedouble > 1 ? "worse than" : "at or better than");
        else
            snprintf(score, sizeof score, "live MASE not yet (%.0f points scored)",
                     cli_num(pv, "live_points"));
        const char *online = str(pv, "model_online");
        int moved = *online && strcmp(online, str(pv, "model")) != 0; /* auto's online choice */
        printf("Forecast:    %s (%s%s%s): %s%s%s\n", str(pv, "name"),
               *str(pv, "model") ? str(pv, "model") : "no model", moved ? ", now " : "",
               moved ? online : "", score, *str(pv, "fallback") ? "; falls back: " : "",
               str(pv, "fallback"));
    }
    const cJSON *pa = cJSON_GetObjectItemCaseSensitive(d, "portrait");
    if (cJSON_IsArray(pa)) {
        printf("\nPortrait ahead (changes only):\n  %-20s %8s %8s  %-14s %10s\n", "TIME", "NEEDED",
               "REPLICAS", "SOURCE", "TRAFFIC");
        double last_n = -1, last_r = -1;
        int i = 0, n = cJSON_GetArraySize(pa);
        const cJSON *s;
        cJSON_ArrayForEach(s, pa) {
            double nd = cli_num(s, "needed"), rp = cli_num(s, "replicas");
            if (nd != last_n || rp != last_r || i == n - 1) {
                char tr[24] = "-";
                if (cJSON_GetObjectItemCaseSensitive(s, "traffic"))
                    snprintf(tr, sizeof tr, "%.1f", cli_num(s, "traffic"));
                printf("  %-20s %8.0f %8.0f  %-14s %10s\n",
                       stamp(cli_num(s, "time"), ts, sizeof ts), nd, rp,
                       *str(s, "source") ? str(s, "source") : "(minimum)", tr);
            }
            last_n = nd;
            last_r = rp;
            i++;
        }
    }
    const cJSON *ra = cJSON_GetObjectItemCaseSensitive(d, "replicas"), *r;
    printf("\nReplica states:\n");
    if (cJSON_GetArraySize(ra) == 0) printf("  (none known yet)\n");
    cJSON_ArrayForEach(r, ra) printf("  %-32s %-11s since %s\n", str(r, "id"), str(r, "state"),
                                     stamp(cli_num(r, "since"), ts, sizeof ts));
    const cJSON *fleet = cJSON_GetObjectItemCaseSensitive(d, "fleet");
    if (cJSON_IsArray(fleet)) {
        printf("\nFleet (what the executor runs):\n");
        if (cJSON_GetArraySize(fleet) == 0)
            printf("  (none)\n");
        else
            fleet_table(fleet, "  ");
    }
    if (*str(d, "inventory")) printf("Inventory:   %s\n", str(d, "inventory"));
    const cJSON *ea = cJSON_GetObjectItemCaseSensitive(d, "events"), *e;
    printf("\nLast decisions:\n");
    if (cJSON_GetArraySize(ea) == 0) printf("  (none yet)\n");
    cJSON_ArrayForEach(e, ea) printf("  %s  %-11s %s\n", stamp(cli_num(e, "time"), ts, sizeof ts),
                                     str(e, "kind"), str(e, "text"));
    const cJSON *aa = cJSON_GetObjectItemCaseSensitive(d, "actions"), *a;
    if (cJSON_GetArraySize(aa) > 0) {
        printf("\nLast actions:\n");
        cJSON_ArrayForEach(a, aa)
            printf("  %s  %-9s %-24s %s (%s)\n", stamp(cli_num(a, "time"), ts, sizeof ts),
                   str(a, "action"), str(a, "replica"), str(a, "reason"), str(a, "result"));
    }
    cJSON_Delete(d);
    return 0;
}

#define EVENTS_USAGE "events [NAME] [--limit N] [--json]   decision events (all workloads or one)"

static int cmd_events(tidectl_ctx *ctx, int argc, char **argv) {
    take_json(ctx, &argc, argv);
    const char *name = NULL;
    long limit = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--limit") == 0 && i + 1 < argc) {
            char *end;
            limit = strtol(argv[++i], &end, 10);
            if (*end || limit < 1 || limit > 100000)
                return usage("events", "--limit: 1..100000", EVENTS_USAGE);
        } else if (argv[i][0] == '-' || name) {
            return usage("events", "unexpected argument", EVENTS_USAGE);
        } else {
            name = argv[i];
        }
    }
    cJSON *args = cJSON_CreateObject();
    if (name) cJSON_AddStringToObject(args, "name", name);
    if (limit) cJSON_AddNumberToObject(args, "limit", (double)limit);
    cJSON *data = NULL;
    int rc = cli_call(ctx, "workload-events", args, ctx->json, &data);
    if (rc != 0 || !data) return rc;
    char ts[32];
    const cJSON *e;
    cli_tab *tab = cli_tab_new("llll");
    cJSON_ArrayForEach(e, data) {
        cli_tab_add(tab, "%s", stamp(cli_num(e, "time"), ts, sizeof ts));
        cli_tab_add(tab, "%s", str(e, "workload"));
        cli_tab_add(tab, "%s", str(e, "kind"));
        cli_tab_add(tab, "%s", str(e, "text"));
    }
    cli_tab_print(tab, stdout);
    cJSON_Delete(data);
    return 0;
}

#define DELETE_USAGE                                                                               \
    "delete NAME | alertrule NAME [--json]   remove a workload or an alert rule and its stored "   \
    "spec"

static int cmd_delete(tidectl_ctx *ctx, int argc, char **argv) {
    take_json(ctx, &argc, argv);
    if (argc == 3 && !strcmp(argv[1], "alertrule")) return cli_alertrule_delete(ctx, argv[2]);
    if (argc != 2) return usage("delete", "expected one workload name", DELETE_USAGE);
    cJSON *args = cJSON_CreateObject();
    cJSON_AddStringToObject(args, "name", argv[1]);
    cJSON *data = NULL;
    int rc = cli_call(ctx, "workload-delete", args, ctx->json, &data);
    if (rc != 0 || !data) return rc;
    printf("workload/%s deleted\n", str(data, "name"));
    cJSON_Delete(data);
    return 0;
}

TIDECTL_COMMAND(apply, "apply", APPLY_USAGE, cmd_apply)
TIDECTL_COMMAND(get, "get", GET_USAGE, cmd_get)
TIDECTL_COMMAND(describe, "describe", DESCRIBE_USAGE, cmd_describe)
TIDECTL_COMMAND(events, "events", EVENTS_USAGE, cmd_events)
TIDECTL_COMMAND(delete, "delete", DELETE_USAGE, cmd_delete)
