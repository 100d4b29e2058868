/* cmd_simulate.c: `tidectl simulate`: replays a traffic trace through the scaling brain (the
 * same portrait, HPA and planner code as the control plane) against a simulated fleet. */
#include "cli_table.h"
#include "offline/series_csv.h"
#include "offline/sim.h"
#include "tidectl.h"
#include "scaling/hpa.h"
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
    "         [--activation S] [--standby-cost F] [--slo-delay S] [--queue-timeout S]\n"           \
    "         [--metric-window S] [--service-capacity C] [--static-replicas N]\n"                  \
    "         [--minutes OUT.csv] [--settle S|rule]\n"                                             \
    "         [--sort] [--json] [--plot OUT.svg] [--verbose]\n"                                    \
    "  Replays TRAFFIC.csv (timestamp,value: demand per step) against a simulated fleet and\n"     \
    "  reports overload minutes, minutes above the target, replica-minutes and scale actions\n"    \
    "  per policy. The last --eval-days are evaluated; models fit on the data before them.\n"      \
    "  Demand the online replicas cannot serve waits in a queue; --slo-delay S (trace seconds)\n"  \
    "  reports the minutes whose traffic's p99 wait is above S, or with failed traffic.\n"         \
    "  --sort sorts rows out of timestamp order (reported as a repair; refused without it)."

static const cli_cmd sim_cmd = {"simulate", SIM_USAGE};

static int parse_num(const char *s, double lo, double hi, double *out) {
    char *end;
    double v = strtod(s, &end);
    if (!*s || *end || !isfinite(v) || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

static cJSON *result_json(const sim_result *r, const sim_config *cfg) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "policy", sim_policy_name(r->policy));
    cJSON_AddNumberToObject(o, "overload_minutes", round(r->overload_minutes * 100) / 100);
    cJSON_AddNumberToObject(o, "above_target_minutes", round(r->above_target_minutes * 100) / 100);
    cJSON_AddNumberToObject(o, "replica_minutes", round(r->replica_minutes * 10) / 10);
    cJSON_AddNumberToObject(o, "scale_actions", (double)r->scale_actions);
    cJSON_AddNumberToObject(o, "replica_actions", (double)r->replica_actions);
    cJSON_AddNumberToObject(o, "online_replica_minutes", round(r->online_minutes * 10) / 10);
    cJSON_AddNumberToObject(o, "standby_replica_minutes", round(r->standby_minutes * 10) / 10);
    cJSON_AddNumberToObject(o, "standby_cost", cfg->standby_cost);
    cJSON_AddNumberToObject(o, "peak_online", r->peak_online);
    cJSON_AddNumberToObject(o, "mean_utilization", round(r->mean_utilization * 100) / 100);
    cJSON_AddNumberToObject(o, "evaluated_minutes", r->evaluated_minutes);
    cJSON_AddNumberToObject(o, "capacity", r->capacity);
    cJSON_AddNumberToObject(o, "static_replicas", r->static_replicas);
    cJSON_AddNumberToObject(o, "service_capacity", r->service_capacity);
    cJSON_AddNumberToObject(o, "metric_window_s", cfg->metric_window);
    cJSON_AddNumberToObject(o, "settle_s", cfg->settle_seconds);
    if (cfg->slo_delay > 0)
        cJSON_AddNumberToObject(o, "slo_delay_s", cfg->slo_delay);
    else
        cJSON_AddNullToObject(o, "slo_delay_s");
    if (cfg->queue_timeout > 0)
        cJSON_AddNumberToObject(o, "queue_timeout_s", cfg->queue_timeout);
    else
        cJSON_AddNullToObject(o, "queue_timeout_s");
    cJSON_AddNumberToObject(o, "backlog_max_s", round(r->backlog_max_s * 100) / 100);
    cJSON_AddNumberToObject(o, "queue_minutes", round(r->queue_minutes * 100) / 100);
    cJSON_AddNumberToObject(o, "failed_traffic", round(r->failed * 100) / 100);
    cJSON_AddNumberToObject(o, "traffic", round(r->traffic * 100) / 100);
    if (r->slo_assessed) {
        cJSON_AddNumberToObject(o, "slo_violation_minutes", r->slo_violation_minutes);
        cJSON *m = cJSON_AddArrayToObject(o, "slo_violation_times");
        for (size_t i = 0; m && i < r->n_slo_minutes; i++)
            cJSON_AddItemToArray(m, cJSON_CreateNumber((double)r->slo_minutes[i]));
    } else {
        cJSON_AddNullToObject(o, "slo_violation_minutes");
        cJSON_AddNullToObject(o, "slo_violation_times");
    }
    if (r->policy == SIM_TIDE) {
        cJSON_AddStringToObject(o, "model", r->model);
        cJSON_AddNumberToObject(o, "fallback_syncs", (double)r->fallback_syncs);
        cJSON_AddNumberToObject(o, "guard_fallback_syncs", (double)r->guard_syncs);
        if (r->first_fallback[0])
            cJSON_AddStringToObject(o, "first_fallback", r->first_fallback);
        else
            cJSON_AddNullToObject(o, "first_fallback");
        cJSON_AddNumberToObject(o, "fit_seconds", round(r->fit_seconds * 1000) / 1000);
        cJSON_AddNumberToObject(o, "fits", r->fits);
    }
    return o;
}

/* --minutes OUT.csv: one row per policy and minute of the evaluated span. */
static int write_minutes(const char *path, const sim_result *res, int n, char *err, size_t errlen) {
    FILE *f = fopen(path, "w");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    fputs("policy,minute,traffic,served,failed,late,online,max_wait_s,slo_violation\n", f);
    for (int i = 0; i < n; i++)
        for (size_t k = 0; k < res[i].nminutes; k++) {
            const double *m = &res[i].minutes[k * SIM_MINUTE_FIELDS];
            fprintf(f, "%s,%lld,%.4f,%.4f,%.4f,%.4f,%.3f,%.3f,%s\n", sim_policy_name(res[i].policy),
                    (long long)(res[i].t0 + (int64_t)k * 60), m[SIM_M_TRAFFIC], m[SIM_M_SERVED],
                    m[SIM_M_FAILED], m[SIM_M_LATE], m[SIM_M_ONLINE], m[SIM_M_WAIT],
                    res[i].slo_assessed ? (m[SIM_M_VIOLATION] > 0 ? "1" : "0") : "");
        }
    int bad = ferror(f);
    bad |= fclose(f) != 0;
    if (bad) {
        snprintf(err, errlen, "%s: write failed", path);
        return -1;
    }
    return 0;
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
                                             {"slo-delay", required_argument, NULL, 'L'},
                                             {"queue-timeout", required_argument, NULL, 'Q'},
                                             {"metric-window", required_argument, NULL, 'W'},
                                             {"service-capacity", required_argument, NULL, 'S'},
                                             {"minutes", required_argument, NULL, 'M'},
                                             {"static-replicas", required_argument, NULL, 'R'},
                                             {"settle", required_argument, NULL, 'T'},
                                             {"json", no_argument, NULL, 'j'},
                                             {"sort", no_argument, NULL, 'O'},
                                             {"plot", required_argument, NULL, 'P'},
                                             {"verbose", no_argument, NULL, 'v'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    const char *data = NULL, *spec_path = NULL, *plot = NULL, *minutes_path = NULL;
    int json = ctx ? ctx->json : 0;
    sim_policy pol[8];
    int npol = 0, settle_rule = 0;
    sim_config cfg;
    sim_config_defaults(&cfg);
    series_csv_opts copts = {0};
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
        case 'L':
            if (parse_num(optarg, 1e-3, 86400, &v) < 0)
                return cli_usage_error(&sim_cmd,
                                       "--slo-delay: seconds of trace time, 0.001..86400");
            cfg.slo_delay = v;
            break;
        case 'Q':
            if (parse_num(optarg, 0, 86400, &v) < 0)
                return cli_usage_error(
                    &sim_cmd, "--queue-timeout: seconds of trace time, 0..86400 (0: none)");
            cfg.queue_timeout = v;
            break;
        case 'S':
            if (parse_num(optarg, 1e-9, 1e15, &v) < 0)
                return cli_usage_error(&sim_cmd, "--service-capacity: a positive number (traffic "
                                                 "per replica per step)");
            cfg.service_capacity = v;
            break;
        case 'T':
            if (strcmp(optarg, "rule") == 0) {
                settle_rule = 1;
                break;
            }
            if (parse_num(optarg, 0, 86400, &v) < 0 || v != floor(v))
                return cli_usage_error(&sim_cmd,
                                       "--settle: whole seconds 0..86400, or 'rule' (the control "
                                       "plane's: max(2 x sync, sync + --metric-window))");
            cfg.settle_seconds = (int)v;
            settle_rule = 0;
            break;
        case 'R':
            if (parse_num(optarg, 1, 100000, &v) < 0 || v != floor(v))
                return cli_usage_error(&sim_cmd, "--static-replicas: an integer 1..100000");
            cfg.static_replicas = (int)v;
            break;
        case 'M':
            minutes_path = optarg;
            break;
        case 'W':
            if (parse_num(optarg, 0, 3600, &v) < 0 || v != floor(v))
                return cli_usage_error(&sim_cmd, "--metric-window: whole seconds 0..3600");
            cfg.metric_window = (int)v;
            break;
        case 'j':
            json = 1;
            break;
        case 'O':
            copts.sort = 1;
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
    if (wl_load(spec_path, &spec, &probs) < 0) {
        char *txt = wl_problems_format(&probs);
        fprintf(stderr, "tidectl simulate: %s: invalid workload spec:\n%s", spec_path,
                txt ? txt : "");
        free(txt);
        wl_problems_fini(&probs);
        return 2;
    }
    wl_problems_fini(&probs);
    if (settle_rule) /* the live control plane's own rule, from the spec's sync period */
        cfg.settle_seconds =
            hpa_settle_seconds(spec.sync_seconds > 0 ? spec.sync_seconds : 15, cfg.metric_window);
    series_csv csv;
    char err[512];
    if (series_csv_load(data, &copts, &csv, err, sizeof err) < 0) {
        fprintf(stderr, "tidectl simulate: %s\n", err);
        return 2;
    }
    series_csv_report(stderr, "tidectl simulate", data, &csv.stats);
    sim_trace tr = {csv.y, csv.n, csv.t0, csv.step};
    cfg.record = plot != NULL || minutes_path != NULL;
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
            cJSON_AddItemToArray(arr, result_json(&res[i], &cfg));
        tidectl_print_json(arr);
        cJSON_Delete(arr);
    } else if (rc == 0) {
        printf("evaluated %.0f minutes (last %d day%s of %s), capacity %.3f per replica per step, "
               "target %.0f%%\n",
               res[0].evaluated_minutes, cfg.eval_days, cfg.eval_days == 1 ? "" : "s", data,
               res[0].capacity, spec.target_utilization);
        printf("%-8s %12s %14s %15s %13s %11s %9s %13s %8s\n", "policy", "overload_min",
               "above_target", "replica_min", "scale_actions", "peak_online", "mean_util",
               "backlog_max_s", "slo_min");
        for (int i = 0; i < done; i++) {
            char slo[32] = "-";
            if (res[i].slo_assessed)
                snprintf(slo, sizeof slo, "%.0f", res[i].slo_violation_minutes);
            printf("%-8s %12.1f %14.1f %15.1f %13ld %11d %8.1f%% %13.1f %8s\n",
                   sim_policy_name(res[i].policy), res[i].overload_minutes,
                   res[i].above_target_minutes, res[i].replica_minutes, res[i].scale_actions,
                   res[i].peak_online, res[i].mean_utilization, res[i].backlog_max_s, slo);
        }
        if (cfg.slo_delay > 0)
            printf("slo_min: minutes where more than 1%% of the traffic waited over %g s in the "
                   "queue or more than 0.1%% failed%s\n",
                   cfg.slo_delay, cfg.queue_timeout > 0 ? "" : " (no queue timeout)");
        const sim_result *t = NULL, *h = NULL, *st = NULL;
        for (int i = 0; i < done; i++) {
            if (res[i].policy == SIM_TIDE) t = &res[i];
            if (res[i].policy == SIM_HPA) h = &res[i];
            if (res[i].policy == SIM_STATIC) st = &res[i];
        }
        if (t)
            printf("tide: model %s (%d fit%s, %.2fs), %ld syncs fell back to reactive (%ld by "
                   "the live guard)%s%s\n",
                   t->model, t->fits, t->fits == 1 ? "" : "s", t->fit_seconds, t->fallback_syncs,
                   t->guard_syncs, t->first_fallback[0] ? "; first: " : "", t->first_fallback);
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
    if (rc == 0 && minutes_path && write_minutes(minutes_path, res, done, err, sizeof err) < 0) {
        fprintf(stderr, "tidectl simulate: --minutes: %s\n", err);
        rc = 1;
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
