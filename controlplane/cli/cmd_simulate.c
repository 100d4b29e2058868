/* cmd_simulate.c: `tidectl simulate`: replays a traffic trace through the scaling brain (the
 * same portrait, HPA and planner code as the control plane) against a simulated fleet. */
#include "cli_table.h"
#include "offline/series_csv.h"
#include "offline/sim.h"
#include "tidectl.h"
#include "spec/workload.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIM_USAGE                                                                                  \
    "simulate --data TRAFFIC.csv --spec FILE --policy tide|hpa|static|all [--policy ...]\n"        \
    "         [--eval-days 7] [--peak-replicas N | --capacity C] [--cold-start S]\n"               \
    "         [--activation S] [--standby-cost F] [--json] [--plot OUT.svg] [--verbose]\n"         \
    "  Replays TRAFFIC.csv (timestamp,value: demand per step) against a simulated fleet and\n"     \
    "  reports overload minutes, minutes above the target, replica-minutes and scale actions\n"    \
    "  per policy. The last --eval-days are evaluated; models fit on the data before them."

static const cli_cmd sim_cmd = {"simulate", SIM_USAGE};

static int parse_num(const char *s, double lo, double hi, double *out) {
    char *end;
    double v = strtod(s, &end);
    if (!*s || *end || !isfinite(v) || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

static cJSON *result_json(const sim_result *r, double standby_cost) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "policy", sim_policy_name(r->policy));
    cJSON_AddNumberToObject(o, "overload_minutes", round(r->overload_minutes * 100) / 100);
    cJSON_AddNumberToObject(o, "above_target_minutes", round(r->above_target_minutes * 100) / 100);
    cJSON_AddNumberToObject(o, "replica_minutes", round(r->replica_minutes * 10) / 10);
    cJSON_AddNumberToObject(o, "scale_actions", (double)r->scale_actions);
    cJSON_AddNumberToObject(o, "replica_actions", (double)r->replica_actions);
    cJSON_AddNumberToObject(o, "online_replica_minutes", round(r->online_minutes * 10) / 10);
    cJSON_AddNumberToObject(o, "standby_replica_minutes", round(r->standby_minutes * 10) / 10);
    cJSON_AddNumberToObject(o, "standby_cost", standby_cost);
    cJSON_AddNumberToObject(o, "peak_online", r->peak_online);
    cJSON_AddNumberToObject(o, "mean_utilization", round(r->mean_utilization * 100) / 100);
    cJSON_AddNumberToObject(o, "evaluated_minutes", r->evaluated_minutes);
    cJSON_AddNumberToObject(o, "capacity", r->capacity);
    cJSON_AddNumberToObject(o, "static_replicas", r->static_replicas);
    if (r->policy == SIM_TIDE) {
        cJSON_AddStringToObject(o, "model", r->model);
        cJSON_AddNumberToObject(o, "fallback_syncs", (double)r->fallback_syncs);
        cJSON_AddNumberToObject(o, "fit_seconds", round(r->fit_seconds * 1000) / 1000);
        cJSON_AddNumberToObject(o, "fits", r->fits);
    }
    return o;
}

static int cmd_simulate(tidectl_ctx *ctx, int argc, char **argv) {
    static const struct option longopts[] = {{"data", required_argument, NULL, 'd'},
                                             {"spec", required_argument, NULL, 's'},
                                             {"policy", required_argument, NULL, 'p'},
                                             {"eval-days", required_argument, NULL, 'e'},
                                             {"peak-replicas", required_argument, NULL, 'N'},
                                             {"capacity", required_argument, NULL, 'C'},
                                             {"cold-start", required_argument, NULL, 'c'},
                                             {"activation", required_argument, NULL, 'a'},
                                             {"standby-cost", required_argument, NULL, 'f'},
                                             {"json", no_argument, NULL, 'j'},
                                             {"plot", required_argument, NULL, 'P'},
                                             {"verbose", no_argument, NULL, 'v'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    const char *data = NULL, *spec_path = NULL, *plot = NULL;
    int json = ctx ? ctx->json : 0;
    sim_policy pol[8];
    int npol = 0;
    sim_config cfg;
    sim_config_defaults(&cfg);
    double v;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'd':
            data = optarg;
            break;
        case 's':
            spec_path = optarg;
            break;
        case 'p':
            if (strcmp(optarg, "all") == 0) {
                npol = 0;
                for (int i = 0; i < 3; i++)
                    pol[npol++] = (sim_policy)i;
            } else {
                sim_policy p;
                if (sim_policy_parse(optarg, &p) < 0)
                    return cli_usage_error(&sim_cmd, "--policy: use tide, hpa, static or all");
                int dup = 0;
                for (int i = 0; i < npol; i++)
                    dup |= pol[i] == p;
                if (!dup && npol < 8) pol[npol++] = p;
            }
            break;
        case 'e':
            if (parse_num(optarg, 1, 365, &v) < 0 || v != floor(v))
                return cli_usage_error(&sim_cmd, "--eval-days: a whole number of days 1..365");
            cfg.eval_days = (int)v;
            break;
        case 'N':
            if (parse_num(optarg, 1, 100000, &v) < 0 || v != floor(v))
                return cli_usage_error(&sim_cmd, "--peak-replicas: an integer 1..100000");
            cfg.peak_replicas = (int)v;
            break;
        case 'C':
            if (parse_num(optarg, 1e-9, 1e15, &v) < 0)
                return cli_usage_error(
                    &sim_cmd, "--capacity: a positive number (traffic per replica per step)");
            cfg.capacity = v;
            break;
        case 'c':
            if (parse_num(optarg, 0, 86400, &v) < 0 || v != floor(v))
                return cli_usage_error(&sim_cmd, "--cold-start: whole seconds 0..86400");
            cfg.cold_start = (int)v;
            break;
        case 'a':
            if (parse_num(optarg, 0, 86400, &v) < 0 || v != floor(v))
                return cli_usage_error(&sim_cmd, "--activation: whole seconds 0..86400");
            cfg.activation = (int)v;
            break;
        case 'f':
            if (parse_num(optarg, 0, 1, &v) < 0)
                return cli_usage_error(&sim_cmd, "--standby-cost: a fraction 0..1");
            cfg.standby_cost = v;
            break;
        case 'j':
            json = 1;
            break;
        case 'P':
            plot = optarg;
            break;
        case 'v':
            cfg.verbose = 1;
            break;
        case 'h':
            printf("usage: tidectl " SIM_USAGE "\n");
            return 0;
        default:
            return cli_usage_error(&sim_cmd, "unknown or incomplete option %s", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_error(&sim_cmd, "unexpected argument");
    if (!data) return cli_usage_error(&sim_cmd, "--data is required");
    if (!spec_path) return cli_usage_error(&sim_cmd, "--spec is required");
    if (npol == 0)
        return cli_usage_error(&sim_cmd, "--policy is required (tide, hpa, static or all)");
    if (cfg.capacity > 0 && cfg.peak_replicas > 0)
        return cli_usage_error(&sim_cmd, "give --peak-replicas or --capacity, not both");
    if (!(cfg.capacity > 0) && cfg.peak_replicas <= 0) cfg.peak_replicas = 20;

    workload_spec spec;
    wl_problems probs;
    wl_problems_init(&probs);
    if (workload_load(spec_path, &spec, &probs) < 0) {
        char *txt = wl_problems_format(&probs);
        fprintf(stderr, "tidectl simulate: %s: invalid workload spec:\n%s", spec_path,
                txt ? txt : "");
        free(txt);
        wl_problems_fini(&probs);
        return 2;
    }
    wl_problems_fini(&probs);
    series_csv csv;
    char err[512];
    if (series_csv_load(data, NULL, &csv, err, sizeof err) < 0) {
        fprintf(stderr, "tidectl simulate: %s\n", err);
        return 2;
    }
    sim_trace tr = {csv.y, csv.n, csv.t0, csv.step};
    cfg.record = plot != NULL;
    sim_result res[8];
    int rc = 0, done = 0;
    for (int i = 0; i < npol; i++) {
        err[0] = 0;
        int r = sim_run(&cfg, &spec, &tr, pol[i], &res[i], err, sizeof err);
        if (r < 0) {
            fprintf(stderr, "tidectl simulate: policy %s: %s\n", sim_policy_name(pol[i]), err);
            rc = r == -EINVAL ? 2 : 1;
            break;
        }
        done++;
    }
    if (rc == 0 && json) {
        cJSON *arr = cJSON_CreateArray();
        for (int i = 0; i < done; i++)
            cJSON_AddItemToArray(arr, result_json(&res[i], cfg.standby_cost));
        tidectl_print_json(arr);
        cJSON_Delete(arr);
    } else if (rc == 0) {
        printf("evaluated %.0f minutes (last %d day%s of %s), capacity %.3f per replica per step, "
               "target %.0f%%\n",
               res[0].evaluated_minutes, cfg.eval_days, cfg.eval_days == 1 ? "" : "s", data,
               res[0].capacity, spec.target_utilization);
        printf("%-8s %12s %14s %15s %13s %11s %9s\n", "policy", "overload_min", "above_target",
               "replica_min", "scale_actions", "peak_online", "mean_util");
        for (int i = 0; i < done; i++)
            printf("%-8s %12.1f %14.1f %15.1f %13ld %11d %8.1f%%\n", sim_policy_name(res[i].policy),
                   res[i].overload_minutes, res[i].above_target_minutes, res[i].replica_minutes,
                   res[i].scale_actions, res[i].peak_online, res[i].mean_utilization);
        const sim_result *t = NULL, *h = NULL, *st = NULL;
        for (int i = 0; i < done; i++) {
            if (res[i].policy == SIM_TIDE) t = &res[i];
            if (res[i].policy == SIM_HPA) h = &res[i];
            if (res[i].policy == SIM_STATIC) st = &res[i];
        }
        if (t)
            printf("tide: model %s (%d fit%s, %.2fs), %ld syncs fell back to reactive\n", t->model,
                   t->fits, t->fits == 1 ? "" : "s", t->fit_seconds, t->fallback_syncs);
        const sim_result *ref[2] = {h, st};
        for (int k = 0; t && k < 2; k++)
            if (ref[k] && ref[k]->replica_minutes > 0) {
                printf("tide vs %s: overload ", sim_policy_name(ref[k]->policy));
                if (ref[k]->overload_minutes > 0)
                    printf("%.3fx", t->overload_minutes / ref[k]->overload_minutes);
                else
                    printf("%.1f vs 0 min", t->overload_minutes);
                printf(", replica-minutes %.3fx\n", t->replica_minutes / ref[k]->replica_minutes);
            }
    }
    if (rc == 0 && plot) {
        if (sim_plot_svg(plot, res, (size_t)done, err, sizeof err) < 0) {
            fprintf(stderr, "tidectl simulate: plot: %s\n", err);
            rc = 1;
        }
    }
    for (int i = 0; i < done; i++)
        sim_result_fini(&res[i]);
    series_csv_fini(&csv);
    return rc;
}

TIDECTL_COMMAND(simulate, "simulate", SIM_USAGE, cmd_simulate)
