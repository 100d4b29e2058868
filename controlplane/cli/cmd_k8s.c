/* cmd_k8s.c: `tidectl k8s info|get|scale|pods|owner [KIND/NAME] [-n NS] [--replicas N]`: the
 * control plane's Kubernetes client by hand (the "k8s" ops command): what the executor sees of a
 * Deployment or StatefulSet, a scale through the subresource, whether another scaler owns it. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/cli_table.h"
#include "cli/tidectl.h"

#define K8S_USAGE                                                                                  \
    "k8s info | k8s get|pods|owner KIND/NAME [-n|--namespace NS]\n"                                \
    "         | k8s scale KIND/NAME --replicas N [-n NS]"                                          \
    "         [--json]\n"                                                                          \
    "  The control plane's Kubernetes client (credentials from k8s_kubeconfig or the service\n"    \
    "  account, rate-limited, off its event loop): get = the Scale (replicas, selector,\n"         \
    "  resourceVersion); scale = GET + PUT with that version, conflicts re-read and re-applied;\n" \
    "  pods = the pods of the Scale's selector with node, readiness gate, tide.io/state and\n"     \
    "  deletion cost; owner = an HPA (autoscaling/v2) or KEDA ScaledObject on the same object\n"   \
    "  (Auto is refused then). KIND: deployment|deploy|statefulset|sts. NS default: default."

static const cli_cmd k8s_cmd = {"k8s", K8S_USAGE};

static void print_human(const char *op, const cJSON *d) {
#define S(k)                                                                                       \
    (cJSON_IsString(cJSON_GetObjectItem(d, k)) ? cJSON_GetObjectItem(d, k)->valuestring : "")
#define N(o, k) (cJSON_GetObjectItem(o, k) ? cJSON_GetObjectItem(o, k)->valuedouble : 0)
    if (!strcmp(op, "info")) {
        printf("server       %s\ncredentials  %s\nrate limit   %.0f/s, burst %.0f\n"
               "requests     %.0f (conflicts %.0f, throttled %.0f ms)\n",
               S("server"), S("credentials"), N(d, "qps"), N(d, "burst"), N(d, "requests"),
               N(d, "conflicts"), N(d, "throttled_ms"));
    } else if (!strcmp(op, "get")) {
        printf("%s %s/%s: replicas %.0f (status %.0f), selector %s, resourceVersion %s\n",
               S("kind"), S("namespace"), S("name"), N(d, "replicas"), N(d, "status_replicas"),
               S("selector"), S("resource_version"));
    } else if (!strcmp(op, "scale")) {
        printf("%s %s/%s: replicas %.0f -> %.0f (%.0f conflicts re-applied)\n", S("kind"),
               S("namespace"), S("name"), N(d, "before"), N(d, "after"), N(d, "conflicts"));
    } else if (!strcmp(op, "owner")) {
        const cJSON *o = cJSON_GetObjectItem(d, "owner");
        if (cJSON_IsString(o))
            printf("%s %s/%s is scaled by %s: Auto is refused\n", S("kind"), S("namespace"),
                   S("name"), o->valuestring);
        else
            printf("%s %s/%s: no other scaler\n", S("kind"), S("namespace"), S("name"));
    } else {
        printf("%-40s %-10s %-6s %-6s %-10s %6s  %s\n", "POD", "PHASE", "READY", "GATE", "STATE",
               "COST", "NODE");
        const cJSON *p;
        cJSON_ArrayForEach(p, cJSON_GetObjectItem(d, "pods")) {
            const cJSON *g = cJSON_GetObjectItem(p, "gate");
            const char *st = cJSON_GetObjectItem(p, "state")->valuestring;
            printf("%-40s %-10s %-6s %-6s %-10s %6.0f  %s\n",
                   cJSON_GetObjectItem(p, "name")->valuestring,
                   cJSON_IsTrue(cJSON_GetObjectItem(p, "terminating"))
                       ? "Terminating"
                       : cJSON_GetObjectItem(p, "phase")->valuestring,
                   cJSON_IsTrue(cJSON_GetObjectItem(p, "ready")) ? "yes" : "no",
                   cJSON_IsNull(g)   ? "-"
                   : cJSON_IsTrue(g) ? "True"
                                     : "False",
                   st[0] ? st : "-", N(p, "deletion_cost"),
                   cJSON_GetObjectItem(p, "node")->valuestring);
        }
    }
#undef S
#undef N
}

static int cmd_k8s(tidectl_ctx *ctx, int argc, char **argv) {
    static const struct option longopts[] = {{"namespace", required_argument, NULL, 'n'},
                                             {"replicas", required_argument, NULL, 'r'},
                                             {"json", no_argument, NULL, 'j'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    const char *ns = "default", *replicas = NULL;
    int json = ctx->json, exit_now, c;
    static char namespace_opt[] = "--namespace"; /* -n, as kubectl spells it */
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-n")) argv[i] = namespace_opt;
    optind = 1;
    while ((c = cli_getopt(&k8s_cmd, argc, argv, longopts, &json, &exit_now)) != -1) {
        if (c == CLI_OPT_EXIT) return exit_now;
        if (c == 'n') ns = optarg;
        if (c == 'r') replicas = optarg;
    }
    if (optind >= argc) return cli_usage_error(&k8s_cmd, "missing info|get|scale|pods|owner");
    const char *op = argv[optind++];
    cJSON *args = cJSON_CreateObject();
    if (!args) return 1;
    cJSON_AddStringToObject(args, "op", op);
    if (strcmp(op, "info") != 0) {
        if (optind >= argc) {
            cJSON_Delete(args);
            return cli_usage_error(&k8s_cmd, "%s needs KIND/NAME", op);
        }
        const char *ref = argv[optind++], *slash = strchr(ref, '/');
        if (!slash) {
            cJSON_Delete(args);
            return cli_usage_error(&k8s_cmd, "'%s' is not KIND/NAME", ref);
        }
        char kind[32];
        snprintf(kind, sizeof kind, "%.*s", (int)(slash - ref) < 31 ? (int)(slash - ref) : 31, ref);
        const char *k = !strcasecmp(kind, "deployment") || !strcasecmp(kind, "deploy") ||
                                !strcasecmp(kind, "deployments")
                            ? "Deployment"
                        : !strcasecmp(kind, "statefulset") || !strcasecmp(kind, "sts") ||
                                !strcasecmp(kind, "statefulsets")
                            ? "StatefulSet"
                            : NULL;
        if (!k) {
            cJSON_Delete(args);
            return cli_usage_error(&k8s_cmd, "kind '%s' is not deployment or statefulset", kind);
        }
        cJSON_AddStringToObject(args, "kind", k);
        cJSON_AddStringToObject(args, "namespace", ns);
        cJSON_AddStringToObject(args, "name", slash + 1);
    }
    if (!strcmp(op, "scale")) {
        char *end;
        long v = replicas ? strtol(replicas, &end, 10) : -1;
        if (!replicas || *end || v < 0 || v > 100000) {
            cJSON_Delete(args);
            return cli_usage_error(&k8s_cmd, "scale needs --replicas N (0..100000)");
        }
        cJSON_AddNumberToObject(args, "replicas", (double)v);
    }
    if (optind < argc) {
        cJSON_Delete(args);
        return cli_usage_error(&k8s_cmd, "unexpected argument '%s'", argv[optind]);
    }
    cJSON *data = NULL;
    int rc = cli_call(ctx, "k8s", args, json, &data);
    if (rc == 0 && data) print_human(op, data);
    cJSON_Delete(data);
    return rc;
}

TIDECTL_COMMAND(k8s, "k8s", K8S_USAGE, cmd_k8s)
