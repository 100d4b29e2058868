/* cmd_backtest.c: `tidectl backtest`: runs the forecast benchmark protocol on a CSV locally
 * (no control plane needed) and prints a table or JSON, optionally an SVG plot. */
#include "offline/backtest.h"
#include "cli_table.h"
#include "models/forecast.h"
#include "offline/series_csv.h"
#include "tidectl.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BT_USAGE                                                                                   \
    "backtest --data FILE.csv --task scale-1h|day-ahead --model NAME[,NAME...]|auto|all\n"         \
    "         [--json] [--plot OUT.svg] [--seed N] [--threads N] [--strict]\n"                     \
    "         [--duplicates sum|mean] [--sort] [--max-epochs N] [--max-fit-seconds S]\n"           \
    "         [--verbose]\n"                                                                       \
    "  Runs the forecast benchmark protocol on FILE.csv (timestamp,value) without a control\n"     \
    "  plane (models: listed below; `all` runs every one). Progress on a terminal's stderr,\n"     \
    "  none when piped or with --quiet.\n"                                                         \
    "  --strict turns CSV repairs (gaps, duplicates, off-grid timestamps) into errors.\n"          \
    "  --sort sorts rows out of timestamp order (reported as a repair; refused without it).\n"     \
    "  --max-epochs caps the networks' training (early stopping also applies);\n"                  \
    "  --max-fit-seconds aborts a network fit that runs longer, as an error (default: none)."

static const cli_cmd bt_cmd = {"backtest", BT_USAGE};

/* The model list comes from the forecaster table so that it can never miss one. */
static void bt_help(FILE *f) {
    fprintf(f, "models:");
    for (size_t i = 0; fc_model_names[i]; i++)
        fprintf(f, " %s", fc_model_names[i]);
    fprintf(f, "\n");
}

/* Splits "a,b,c" (or "all") into names; returns the count (at most max). */
static size_t split_models(char *list, const char **names, size_t max) {
    size_t n = 0;
    if (strcmp(list, "all") == 0) {
        for (size_t i = 0; fc_model_names[i] && n < max; i++)
            names[n++] = fc_model_names[i];
        return n;
    }
    for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok && n < max;
         tok = strtok_r(NULL, ",", &save))
        if (*tok) names[n++] = tok;
    return n;
}

/* One {"name", "origins"} entry of used_online. */
static void add_used(cJSON *arr, const char *name, size_t origins) {
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "name", name);
    cJSON_AddNumberToObject(e, "origins", (double)origins);
    cJSON_AddItemToArray(arr, e);
}

static cJSON *result_json(const bt_result *r, const char *requested) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", requested);
    cJSON_AddStringToObject(o, "used", r->model);
    cJSON_AddNumberToObject(o, "mae", r->mae);
    cJSON_AddNumberToObject(o, "rmse", r->rmse);
    cJSON_AddNumberToObject(o, "wape", r->wape);
    cJSON_AddNumberToObject(o, "mase", r->mase);
    cJSON_AddNumberToObject(o, "under", r->under);
    cJSON_AddNumberToObject(o, "p90_coverage", r->p90_coverage);
    cJSON_AddNumberToObject(o, "pinball_p90", r->pinball_p90);
    cJSON_AddNumberToObject(o, "fit_seconds", r->fit_seconds);
    cJSON_AddNumberToObject(o, "predict_seconds", r->predict_seconds);
    cJSON_AddNumberToObject(o, "train_windows_per_s", r->train_windows_per_s);
    cJSON_AddNumberToObject(o, "points", (double)r->points);
    cJSON *u = cJSON_AddArrayToObject(o, "used_online");
    for (size_t i = 0; i < r->n_used; i++)
        add_used(u, r->used[i].name, r->used[i].origins);
    if (r->used_other) add_used(u, "other", r->used_other);
    return o;
}

/* A line under the table for a model whose forecasts did not all use the fit's choice (auto's
 * online choice): what they used, at how many of the origins. */
static void print_used(const bt_result *r, size_t origins) {
    if (r->n_used == 0 || (r->n_used == 1 && strcmp(r->used[0].name, r->model) == 0)) return;
    printf("%s: the forecasts used", r->model);
    for (size_t i = 0; i < r->n_used; i++)
        printf("%s %s at %zu", i ? "," : "", r->used[i].name, r->used[i].origins);
    if (r->used_other) printf(", others at %zu", r->used_other);
    printf(" of %zu origins (the online choice)\n", origins);
}

static int cmd_backtest(tidectl_ctx *ctx, int argc, char **argv) {
    static const struct option longopts[] = {{"data", required_argument, NULL, 'd'},
                                             {"task", required_argument, NULL, 't'},
                                             {"model", required_argument, NULL, 'm'},
                                             {"json", no_argument, NULL, 'j'},
                                             {"plot", required_argument, NULL, 'p'},
                                             {"seed", required_argument, NULL, 's'},
                                             {"threads", required_argument, NULL, 'T'},
                                             {"strict", no_argument, NULL, 'S'},
                                             {"duplicates", required_argument, NULL, 'D'},
                                             {"sort", no_argument, NULL, 'O'},
                                             {"verbose", no_argument, NULL, 'v'},
                                             {"max-fit-seconds", required_argument, NULL, 'B'},
                                             {"max-epochs", required_argument, NULL, 'E'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    const char *data = NULL, *task_s = NULL, *plot = NULL;
    char *model_s = NULL;
    int json = ctx ? ctx->json : 0;
    series_csv_opts copts = {0};
    fc_options fopt = {0};
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        char *end = NULL;
        switch (c) {
        case 'd':
            data = optarg;
            break;
        case 't':
            task_s = optarg;
            break;
        case 'm':
            model_s = optarg;
            break;
        case 'j':
            json = 1;
            break;
        case 'p':
            plot = optarg;
            break;
        case 'S':
            copts.strict = 1;
            break;
        case 'O':
            copts.sort = 1;
            break;
        case 'v':
            fopt.verbose = 1;
            break;
        case 's':
            fopt.seed = strtoull(optarg, &end, 10);
            if (!end || *end) return cli_usage_error(&bt_cmd, "--seed needs a number");
            break;
        case 'T':
            fopt.threads = (int)strtol(optarg, &end, 10);
            if (!end || *end || fopt.threads < 1 || fopt.threads > 256)
                return cli_usage_error(&bt_cmd, "--threads needs a number from 1 to 256");
            break;
        case 'B':
            fopt.max_fit_seconds = strtod(optarg, &end);
            if (!end || *end || !(fopt.max_fit_seconds > 0))
                return cli_usage_error(&bt_cmd, "--max-fit-seconds needs a positive number");
            break;
        case 'E':
            fopt.max_epochs = (int)strtol(optarg, &end, 10);
            if (!end || *end || fopt.max_epochs < 1 || fopt.max_epochs > 100000)
                return cli_usage_error(&bt_cmd, "--max-epochs needs a number from 1 to 100000");
            break;
        case 'D':
            if (strcmp(optarg, "sum") == 0)
                copts.dup = SERIES_DUP_SUM;
            else if (strcmp(optarg, "mean") == 0)
                copts.dup = SERIES_DUP_MEAN;
            else
                return cli_usage_error(&bt_cmd, "--duplicates takes sum or mean");
            break;
        case 'h':
            printf("usage: tidectl " BT_USAGE "\n");
            bt_help(stdout);
            return 0;
        default:
            return cli_usage_error(&bt_cmd, "unknown or incomplete option %s",
                                   argv[optind - 1] ? argv[optind - 1] : "");
        }
    }
    if (optind < argc) return cli_usage_error(&bt_cmd, "unexpected argument \"%s\"", argv[optind]);
    if (!data) return cli_usage_error(&bt_cmd, "--data FILE.csv is required");
    if (!task_s) return cli_usage_error(&bt_cmd, "--task scale-1h|day-ahead is required");
    if (!model_s) return cli_usage_error(&bt_cmd, "--model NAME|auto is required");
    bt_task task;
    if (bt_task_parse(task_s, &task) != 0)
        return cli_usage_error(&bt_cmd, "--task takes scale-1h or day-ahead");
    char *models_buf = strdup(model_s);
    if (!models_buf) return 1;
    const char *names[16];
    size_t nmodels = split_models(models_buf, names, 16);
    if (nmodels == 0) {
        free(models_buf);
        return cli_usage_error(&bt_cmd, "--model names no model");
    }
    for (size_t i = 0; i < nmodels; i++) {
        int known = 0;
        for (size_t k = 0; fc_model_names[k]; k++)
            known |= strcmp(fc_model_names[k], names[i]) == 0;
        if (!known) {
            int st = cli_usage_error(&bt_cmd, "unknown model \"%s\"", names[i]);
            free(models_buf);
            return st;
        }
    }

    char err[512] = "";
    series_csv s;
    int rc = series_csv_load(data, &copts, &s, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "tidectl backtest: %s\n", err);
        free(models_buf);
        return 2;
    }
    char repairs[512];
    series_csv_describe_repairs(&s.stats, repairs, sizeof repairs);
    if (!json) series_csv_report(stderr, "tidectl backtest", data, &s.stats);
    fc_series native = {.y = s.y, .n = s.n, .t0 = s.t0, .step = s.step};
    bt_data d;
    rc = bt_prepare(&native, task, &d, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "tidectl backtest: %s: %s\n", data, err);
        series_csv_fini(&s);
        free(models_buf);
        return 2;
    }
    bt_result *res = calloc(nmodels, sizeof *res);
    int status = res ? 0 : 1;
    size_t done = 0;
    if (!json) { /* the header first: a long run shows what it is working on from the start */
        printf("data %s, task %s: step %llds, horizon %d, %zu origins, %zu training steps; %s\n",
               data, bt_task_name(task), (long long)d.step, d.horizon, d.n_origins, d.n_train,
               repairs);
        fflush(stdout);
    }
    cli_progress *prog = cli_progress_start(ctx, "backtest");
    for (; status == 0 && done < nmodels; done++) {
        if (fopt.verbose) fprintf(stderr, "backtest: %s ...\n", names[done]);
        cli_progress_set(prog, "[%zu/%zu] %s: fitting and forecasting %zu origins", done + 1,
                         nmodels, names[done], d.n_origins);
        rc = bt_run(&d, names[done], &fopt, plot != NULL, &res[done], err, sizeof err);
        if (rc != 0) {
            cli_progress_stop(prog);
            prog = NULL;
            fprintf(stderr, "tidectl backtest: model %s: %s\n", names[done], err);
            status = 1;
        } else {
            cli_progress_note(prog, "[%zu/%zu] %s done (fit %.1f s, predict %.1f s)", done + 1,
                              nmodels, res[done].model, res[done].fit_seconds,
                              res[done].predict_seconds);
        }
    }
    if (status == 0 && plot) cli_progress_set(prog, "plotting to %s", plot);
    if (status == 0 && plot) {
        char title[512];
        snprintf(title, sizeof title, "%s, task %s: actual vs forecast (band: point to p90)", data,
                 bt_task_name(task));
        rc = bt_plot_svg(plot, &d, res, nmodels, title, err, sizeof err);
        if (rc != 0) {
            fprintf(stderr, "tidectl backtest: plot: %s\n", err);
            status = 1;
        }
    }
    cli_progress_stop(prog);
    if (status == 0) {
        if (json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "data", data);
            cJSON_AddStringToObject(o, "task", bt_task_name(task));
            cJSON_AddNumberToObject(o, "step", (double)d.step);
            cJSON_AddNumberToObject(o, "horizon", d.horizon);
            cJSON_AddNumberToObject(o, "origins", (double)d.n_origins);
            cJSON_AddNumberToObject(o, "train_steps", (double)d.n_train);
            cJSON_AddNumberToObject(
                o, "test_start",
                (double)(s.t0 + (int64_t)(s.n - (size_t)(7 * 86400 / s.step)) * s.step));
            cJSON_AddStringToObject(o, "repairs", repairs);
            cJSON_AddStringToObject(o, "time_unit", series_csv_time_unit(&s.stats));
            cJSON *arr = cJSON_AddArrayToObject(o, "models");
            for (size_t i = 0; i < nmodels; i++)
                cJSON_AddItemToArray(arr, result_json(&res[i], names[i]));
            if (plot) cJSON_AddStringToObject(o, "plot", plot);
            tidectl_print_json(o);
            cJSON_Delete(o);
        } else {
            int w = 24; /* the model column fits the longest name (auto:a+b+c*1.05) */
            for (size_t i = 0; i < nmodels; i++)
                if ((int)strlen(res[i].model) > w) w = (int)strlen(res[i].model);
            printf("%-*s %10s %10s %7s %7s %7s %7s %7s %8s %9s %11s\n", w, "model", "MAE", "RMSE",
                   "WAPE", "MASE", "UNDER", "p90cov", "pin90", "fit_s", "predict_s", "windows/s");
            for (size_t i = 0; i < nmodels; i++)
                printf("%-*s %10.4g %10.4g %7.4f %7.4f %7.4f %7.4f %7.4f %8.3f %9.3f %11.0f\n", w,
                       res[i].model, res[i].mae, res[i].rmse, res[i].wape, res[i].mase,
                       res[i].under, res[i].p90_coverage, res[i].pinball_p90, res[i].fit_seconds,
                       res[i].predict_seconds, res[i].train_windows_per_s);
            for (size_t i = 0; i < nmodels; i++)
                print_used(&res[i], d.n_origins);
            if (plot) printf("plot written to %s\n", plot);
        }
    }
    for (size_t i = 0; res && i < nmodels; i++)
        bt_result_fini(&res[i]);
    free(res);
    bt_data_fini(&d);
    series_csv_fini(&s);
    free(models_buf);
    return status;
}

TIDECTL_COMMAND(backtest, "backtest", BT_USAGE, cmd_backtest)
TIDECTL_HELP(backtest, "backtest", bt_help)
