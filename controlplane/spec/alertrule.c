/* alertrule.c: parses and validates alert rule specs (see alertrule.h). */
#include "spec/alertrule.h"
#include "spec/spec_yaml.h"

#include "models/forecast.h"
#include "query/query.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <yaml.h>

static const char *const type_names[] = {"predict", "anomaly", "workload", NULL};
static const char *const cond_names[] = {"outOfReplicas", "fallback", "stability", NULL};
static const char *const sens_names[] = {"low", "medium", "high", NULL};
static const double sens_threshold[] = {0.5, 0.4, 0.3};

const char *ar_type_name(ar_type t) {
    return t == AR_WORKLOAD ? "workload" : t == AR_ANOMALY ? "anomaly" : "predict";
}

const char *ar_condition_name(unsigned bit) {
    return bit == AR_COND_OUT_OF_REPLICAS ? cond_names[0]
           : bit == AR_COND_FALLBACK      ? cond_names[1]
           : bit == AR_COND_STABILITY     ? cond_names[2]
                                          : "?";
}

const char *ar_sensitivity_name(int s) {
    return s >= 0 && s <= 2 ? sens_names[s] : "?";
}

void ar_defaults(alertrule_spec *s) {
    memset(s, 0, sizeof *s);
    s->type = AR_PREDICT;
    s->interval_s = 60;       /* Prometheus's usual evaluation interval */
    s->step_s = 60;           /* the store's 1-minute buckets */
    s->history_s = 7 * 86400; /* a week: daily and weekly patterns, 10080 points at 1 min */
    s->for_s = 300;           /* a forecast must hold for 5 evaluations before it pages */
    s->keep_firing_s = 0;
    snprintf(s->severity, sizeof s->severity, "warning");
    snprintf(s->model, sizeof s->model, "auto");
    s->horizon_s = 6 * 3600; /* "will run out within 6 hours", the classic */
    s->retrain_s = 86400;
    s->quantile = 0.9;
    s->sensitivity = 1;
    s->score_threshold = sens_threshold[1];
}

/* A duration: whole seconds, a Prometheus duration ("10m", "1h30m") or a bare number of
 * seconds, in [lo, hi] seconds. */
static int get_dur(wl_yctx *c, const char *path, yaml_node_t *n, int64_t lo, int64_t hi,
                   int64_t *out) {
    const char *s = wl__scalar(n);
    int64_t ms = 0;
    if (s && lo == 0 && s[0] == '0' && s[strspn(s, "0")] != '.' &&
        strspn(s + strspn(s, "0"), "smhdwy") == strlen(s + strspn(s, "0")) &&
        strlen(s + strspn(s, "0")) <= 1) { /* "0", "0s", "0m": none */
        *out = 0;
        return 0;
    }
    if (!s || query_parse_duration(s, &ms) < 0) {
        wl__prob(c, path, n, "must be a duration such as 90s, 10m, 6h or 1d, got \"%.40s\"",
                 s ? s : "(not a string)");
        return -1;
    }
    if (ms % 1000) {
        wl__prob(c, path, n, "must be whole seconds, got \"%.40s\"", s);
        return -1;
    }
    if (ms / 1000 < lo || ms / 1000 > hi) {
        char a[32], b[32];
        ar_format_duration(lo, a, sizeof a);
        ar_format_duration(hi, b, sizeof b);
        wl__prob(c, path, n, "must be in %s..%s, got \"%.40s\"", a, b, s);
        return -1;
    }
    *out = ms / 1000;
    return 0;
}

/* Prometheus label names: [a-zA-Z_][a-zA-Z0-9_]*, and not reserved (__...). */
static int label_name_ok(const char *s) {
    if (!(isalpha((unsigned char)*s) || *s == '_')) return 0;
    for (const char *p = s; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '_')) return 0;
    return strncmp(s, "__", 2) != 0;
}

/* labels / annotations: a mapping of label names to strings. */
static int get_map(wl_yctx *c, const char *path, yaml_node_t *n, ar_label *lv, ar_annotation *av,
                   int *count) {
    if (!n || n->type != YAML_MAPPING_NODE) {
        wl__prob(c, path, n, "must be a mapping of names to strings");
        return -1;
    }
    for (yaml_node_pair_t *pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
        yaml_node_t *k = wl__node(c, pr->key), *v = wl__node(c, pr->value);
        const char *key = wl__scalar(k);
        char sub[160];
        if (!key) {
            wl__prob(c, path, k, "keys must be plain strings");
            continue;
        }
        snprintf(sub, sizeof sub, "%s.%.100s", path, key);
        if (!label_name_ok(key) || strlen(key) >= WL_NAME_MAX) {
            wl__prob(c, sub, k,
                     "a name is letters, digits and '_' (not starting with a digit or \"__\"), "
                     "at most %d characters",
                     WL_NAME_MAX - 1);
            continue;
        }
        int dup = 0;
        for (int i = 0; i < *count; i++)
            dup |= strcmp(lv ? lv[i].name : av[i].name, key) == 0;
        if (dup) {
            wl__prob(c, sub, k, "duplicate name");
            continue;
        }
        if (*count == AR_MAX_LABELS) {
            wl__prob(c, sub, k, "more than %d entries", AR_MAX_LABELS);
            return -1;
        }
        if (lv) {
            if (!strcmp(key, "alertname") || !strcmp(key, "severity")) {
                wl__prob(c, sub, k, "\"%s\" is set by the rule (metadata.name, spec.severity)",
                         key);
                continue;
            }
            if (wl__get_str(c, sub, v, lv[*count].value, sizeof lv[*count].value) < 0) continue;
            snprintf(lv[*count].name, sizeof lv[*count].name, "%s", key);
        } else {
            if (wl__get_str(c, sub, v, av[*count].value, sizeof av[*count].value) < 0) continue;
            char why[160];
            if (ar_template_expand(av[*count].value, NULL, NULL, 0, why, sizeof why) < 0) {
                wl__prob(c, sub, v, "%s", why);
                continue;
            }
            snprintf(av[*count].name, sizeof av[*count].name, "%s", key);
        }
        (*count)++;
    }
    return 0;
}

static int model_known(const char *m) {
    for (int i = 0; fc_model_names[i]; i++)
        if (!strcmp(fc_model_names[i], m)) return 1;
    return 0;
}

static void parse_spec(wl_yctx *c, yaml_node_t *n, alertrule_spec *s) {
    static const char *const k[] = {"type",        "metric",      "interval",      "step",
                                    "history",     "for",         "keepFiringFor", "severity",
                                    "labels",      "annotations", "model",         "horizon",
                                    "retrain",     "threshold",   "direction",     "quantile",
                                    "sensitivity", "workload",    "conditions",    NULL};
    enum {
        TYPE,
        METRIC,
        INTERVAL,
        STEP,
        HISTORY,
        FOR,
        KEEP,
        SEVERITY,
        LABELS,
        ANNOT,
        MODEL,
        HORIZON,
        RETRAIN,
        THRESHOLD,
        DIRECTION,
        QUANTILE,
        SENSITIVITY,
        WORKLOAD,
        CONDITIONS,
        NK
    };
    yaml_node_t *v[NK];
    if (wl__fields(c, "spec", n, k, v) < 0) return;
    int t = 0;
    if (!v[TYPE])
        wl__prob(c, "spec", n, "missing field \"type\" (predict or anomaly)");
    else if (wl__get_enum(c, "spec.type", v[TYPE], type_names, &t) == 0)
        s->type = (ar_type)t;
    if (s->type == AR_WORKLOAD) {
        if (v[METRIC]) wl__prob(c, "spec.metric", v[METRIC], "not for type workload");
        if (!v[WORKLOAD])
            wl__prob(c, "spec", n, "missing field \"workload\" (type workload)");
        else if (wl__get_str(c, "spec.workload", v[WORKLOAD], s->workload, sizeof s->workload) ==
                     0 &&
                 !wl__name_ok(s->workload))
            wl__prob(c, "spec.workload", v[WORKLOAD], "not a workload name");
        s->conditions = AR_COND_ALL;
        if (v[CONDITIONS]) {
            yaml_node_t *cn = v[CONDITIONS];
            if (cn->type != YAML_SEQUENCE_NODE ||
                cn->data.sequence.items.top == cn->data.sequence.items.start) {
                wl__prob(c, "spec.conditions", cn,
                         "must be a list of outOfReplicas, fallback, stability");
            } else {
                s->conditions = 0;
                int i = 0;
                for (yaml_node_item_t *it = cn->data.sequence.items.start;
                     it < cn->data.sequence.items.top; it++, i++) {
                    char sp[64];
                    snprintf(sp, sizeof sp, "spec.conditions[%d]", i);
                    int bit;
                    if (wl__get_enum(c, sp, wl__node(c, *it), cond_names, &bit) == 0)
                        s->conditions |= 1u << bit;
                }
            }
        }
    } else {
        if (v[WORKLOAD]) wl__prob(c, "spec.workload", v[WORKLOAD], "only for type workload");
        if (v[CONDITIONS]) wl__prob(c, "spec.conditions", v[CONDITIONS], "only for type workload");
        if (!v[METRIC])
            wl__prob(c, "spec", n, "missing field \"metric\" ({selector: ...} or {query: ...})");
        else
            wl__get_source(c, "spec.metric", v[METRIC], &s->metric);
    }
    if (v[INTERVAL]) get_dur(c, "spec.interval", v[INTERVAL], 1, 86400, &s->interval_s);
    if (v[STEP]) get_dur(c, "spec.step", v[STEP], 1, 86400, &s->step_s);
    if (v[HISTORY]) get_dur(c, "spec.history", v[HISTORY], 60, 400 * 86400, &s->history_s);
    if (s->type != AR_PREDICT)
        s->for_s = 0; /* the detector's statistics already smooth; a
                       * workload's conditions are decided by it */
    if (v[FOR]) get_dur(c, "spec.for", v[FOR], 0, 7 * 86400, &s->for_s);
    if (v[KEEP]) get_dur(c, "spec.keepFiringFor", v[KEEP], 0, 7 * 86400, &s->keep_firing_s);
    if (v[SEVERITY]) wl__get_str(c, "spec.severity", v[SEVERITY], s->severity, sizeof s->severity);
    if (v[LABELS]) get_map(c, "spec.labels", v[LABELS], s->labels, NULL, &s->n_labels);
    if (v[ANNOT]) get_map(c, "spec.annotations", v[ANNOT], NULL, s->annotations, &s->n_annotations);
    /* fields of the other type are named, not silently ignored */
    const int pred_only[] = {MODEL, HORIZON, RETRAIN, THRESHOLD, DIRECTION, QUANTILE};
    for (size_t i = 0; i < sizeof pred_only / sizeof *pred_only; i++)
        if (v[pred_only[i]] && s->type != AR_PREDICT) {
            char p[64];
            snprintf(p, sizeof p, "spec.%s", k[pred_only[i]]);
            wl__prob(c, p, v[pred_only[i]], "only for type predict");
            v[pred_only[i]] = NULL;
        }
    if (v[SENSITIVITY] && s->type != AR_ANOMALY) {
        wl__prob(c, "spec.sensitivity", v[SENSITIVITY], "only for type anomaly");
        v[SENSITIVITY] = NULL;
    }
    if (s->type == AR_PREDICT) {
        if (v[MODEL] && wl__get_str(c, "spec.model", v[MODEL], s->model, sizeof s->model) == 0 &&
            !model_known(s->model)) {
            char list[200] = "";
            for (int i = 0; fc_model_names[i]; i++) {
                size_t l = strlen(list);
                snprintf(list + l, sizeof list - l, "%s%s", i ? ", " : "", fc_model_names[i]);
            }
            wl__prob(c, "spec.model", v[MODEL], "unknown model \"%s\" (known: %s)", s->model, list);
        }
        if (v[HORIZON]) get_dur(c, "spec.horizon", v[HORIZON], 1, 30 * 86400, &s->horizon_s);
        if (v[RETRAIN]) get_dur(c, "spec.retrain", v[RETRAIN], 60, 30 * 86400, &s->retrain_s);
        if (!v[THRESHOLD])
            wl__prob(c, "spec", n, "missing field \"threshold\" (type predict)");
        else
            wl__get_num(c, "spec.threshold", v[THRESHOLD], -1e300, 1e300, 0, &s->threshold);
        static const char *const dirs[] = {"above", "below", NULL};
        if (v[DIRECTION]) wl__get_enum(c, "spec.direction", v[DIRECTION], dirs, &s->below);
        s->quantile = s->below ? 0.1 : 0.9;
        if (v[QUANTILE]) wl__get_num(c, "spec.quantile", v[QUANTILE], 0, 1, 1, &s->quantile);
        if (s->quantile >= 1) wl__prob(c, "spec.quantile", v[QUANTILE], "must be below 1");
        if (s->horizon_s / s->step_s > AR_MAX_HORIZON_STEPS || s->horizon_s < s->step_s)
            wl__prob(c, "spec.horizon", v[HORIZON] ? v[HORIZON] : n,
                     "must hold 1..%d steps of spec.step (%llds), got %llds", AR_MAX_HORIZON_STEPS,
                     (long long)s->step_s, (long long)s->horizon_s);
    } else if (v[SENSITIVITY] && wl__get_enum(c, "spec.sensitivity", v[SENSITIVITY], sens_names,
                                              &s->sensitivity) == 0) {
        s->score_threshold = sens_threshold[s->sensitivity];
    }
    if (s->history_s / s->step_s > AR_MAX_HISTORY_STEPS || s->history_s < 2 * s->step_s)
        wl__prob(c, "spec.history", v[HISTORY] ? v[HISTORY] : n,
                 "must hold 2..%d steps of spec.step (%llds), got %llds", AR_MAX_HISTORY_STEPS,
                 (long long)s->step_s, (long long)s->history_s);
}

int ar_parse(const char *buf, size_t len, alertrule_spec *out, wl_problems *probs) {
    ar_defaults(out);
    yaml_parser_t parser;
    yaml_document_t doc;
    wl_yctx c = {&doc, probs, 0, 100000};
    int line = 0, dok = wl__depth_ok(buf, len, &line);
    if (dok < 0) return dok;
    if (!dok) {
        wl__prob(&c, "(document)", NULL, "nested deeper than 64 levels at line %d", line);
        return -EINVAL;
    }
    if (!yaml_parser_initialize(&parser)) return -ENOMEM;
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
    if (!yaml_parser_load(&parser, &doc)) {
        wl__prob(&c, "(document)", NULL, "YAML syntax at line %d column %d: %s%s%s",
                 (int)parser.problem_mark.line + 1, (int)parser.problem_mark.column + 1,
                 parser.problem ? parser.problem : "error", parser.context ? " " : "",
                 parser.context ? parser.context : "");
        yaml_parser_delete(&parser);
        return -EINVAL;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    static const char *const k[] = {"apiVersion", "kind", "metadata", "spec", NULL};
    yaml_node_t *v[4];
    if (!root) {
        wl__prob(&c, "(document)", NULL, "empty document");
        goto done;
    }
    if (wl__fields(&c, "", root, k, v) < 0) goto done;
    if (!v[0])
        wl__prob(&c, "apiVersion", root, "missing (use tide/v1)");
    else if (!wl__scalar(v[0]) || strcmp(wl__scalar(v[0]), "tide/v1") != 0)
        wl__prob(&c, "apiVersion", v[0], "must be tide/v1");
    if (!v[1])
        wl__prob(&c, "kind", root, "missing (use AlertRule)");
    else if (!wl__scalar(v[1]) || strcmp(wl__scalar(v[1]), "AlertRule") != 0)
        wl__prob(&c, "kind", v[1], "must be AlertRule");
    if (!v[2]) {
        wl__prob(&c, "metadata", root, "missing (needs metadata.name)");
    } else {
        static const char *const mk[] = {"name", NULL};
        yaml_node_t *mv[1];
        if (wl__fields(&c, "metadata", v[2], mk, mv) == 0) {
            if (!mv[0])
                wl__prob(&c, "metadata", v[2], "missing field \"name\"");
            else if (wl__get_str(&c, "metadata.name", mv[0], out->name, sizeof out->name) == 0 &&
                     !wl__name_ok(out->name))
                wl__prob(&c, "metadata.name", mv[0],
                         "use letters, digits, '-', '_' and '.' only, starting with a letter or "
                         "digit");
        }
    }
    if (!v[3])
        wl__prob(&c, "spec", root, "missing");
    else
        parse_spec(&c, v[3], out);
    if (c.budget <= 0) wl__prob(&c, "(document)", NULL, "too many nodes (aliases expanding?)");
    yaml_document_t extra;
    if (yaml_parser_load(&parser, &extra)) {
        if (yaml_document_get_root_node(&extra))
            wl__prob(&c, "(document)", yaml_document_get_root_node(&extra),
                     "only one YAML document is allowed");
        yaml_document_delete(&extra);
    }
done:
    wl__problems_sort(probs);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return c.nprob ? -EINVAL : 0;
}

void ar_doc_kind(const char *buf, size_t len, char *out, size_t outlen) {
    out[0] = 0;
    int line = 0;
    if (wl__depth_ok(buf, len, &line) != 1) return;
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser)) return;
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
    if (yaml_parser_load(&parser, &doc)) {
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        if (root && root->type == YAML_MAPPING_NODE)
            for (yaml_node_pair_t *pr = root->data.mapping.pairs.start;
                 pr < root->data.mapping.pairs.top; pr++) {
                const char *key = wl__scalar(yaml_document_get_node(&doc, pr->key));
                const char *val = wl__scalar(yaml_document_get_node(&doc, pr->value));
                if (key && val && !strcmp(key, "kind")) {
                    snprintf(out, outlen, "%s", val);
                    break;
                }
            }
        yaml_document_delete(&doc);
    }
    yaml_parser_delete(&parser);
}

void ar_format_duration(int64_t s, char *out, size_t outlen) {
    static const struct {
        int64_t n;
        char u;
    } units[] = {{7 * 86400, 'w'}, {86400, 'd'}, {3600, 'h'}, {60, 'm'}, {1, 's'}};
    size_t off = 0;
    out[0] = 0;
    if (s <= 0) {
        snprintf(out, outlen, "0s");
        return;
    }
    for (size_t i = 0; i < sizeof units / sizeof *units && off < outlen; i++)
        if (s >= units[i].n) {
            int w = snprintf(out + off, outlen - off, "%lld%c", (long long)(s / units[i].n),
                             units[i].u);
            if (w < 0) break;
            off += (size_t)w;
            s %= units[i].n;
        }
}

/* Appends text to out at *off, cut at outlen - 1. */
static void put(char *out, size_t outlen, size_t *off, const char *text, size_t n) {
    if (!out || outlen == 0) return;
    if (*off + n >= outlen) n = outlen - 1 - *off;
    memcpy(out + *off, text, n);
    *off += n;
    out[*off] = 0;
}

static void put_num(char *out, size_t outlen, size_t *off, double v) {
    char b[48] = "";
    if (!isnan(v)) snprintf(b, sizeof b, "%.6g", v);
    put(out, outlen, off, b, strlen(b));
}

int ar_template_expand(const char *tmpl, const ar_vars *vars, char *out, size_t outlen, char *why,
                       size_t whylen) {
    size_t off = 0;
    if (out && outlen) out[0] = 0;
    const char *p = tmpl;
    while (*p) {
        const char *open = strstr(p, "{{");
        if (!open) {
            put(out, outlen, &off, p, strlen(p));
            break;
        }
        put(out, outlen, &off, p, (size_t)(open - p));
        const char *close = strstr(open + 2, "}}");
        if (!close) {
            snprintf(why, whylen, "unclosed {{ at character %d", (int)(open - tmpl) + 1);
            return -EINVAL;
        }
        const char *a = open + 2, *b = close;
        while (a < b && isspace((unsigned char)*a))
            a++;
        while (b > a && isspace((unsigned char)b[-1]))
            b--;
        char name[128];
        size_t n = (size_t)(b - a);
        if (n == 0 || n >= sizeof name) {
            snprintf(why, whylen, "empty or overlong {{ }} at character %d",
                     (int)(open - tmpl) + 1);
            return -EINVAL;
        }
        memcpy(name, a, n);
        name[n] = 0;
        int known = 1;
        if (!strcmp(name, "$value")) {
            if (vars) put_num(out, outlen, &off, vars->value);
        } else if (!strcmp(name, "$threshold")) {
            if (vars) put_num(out, outlen, &off, vars->threshold);
        } else if (!strcmp(name, "$score")) {
            if (vars) put_num(out, outlen, &off, vars->score);
        } else if (!strcmp(name, "$expected")) {
            if (vars) put_num(out, outlen, &off, vars->expected);
        } else if (!strcmp(name, "$rule")) {
            if (vars && vars->rule) put(out, outlen, &off, vars->rule, strlen(vars->rule));
        } else if (!strcmp(name, "$crossingTime")) {
            if (vars && vars->crossing_time > 0) {
                char ts[32];
                time_t t = (time_t)vars->crossing_time;
                struct tm tmv;
                gmtime_r(&t, &tmv);
                strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tmv);
                put(out, outlen, &off, ts, strlen(ts));
            }
        } else if (!strcmp(name, "$crossingIn")) {
            if (vars && vars->crossing_time > 0) {
                char d[48];
                ar_format_duration(vars->crossing_time - vars->now, d, sizeof d);
                put(out, outlen, &off, d, strlen(d));
            }
        } else if (!strncmp(name, "$labels.", 8) && label_name_ok(name + 8)) {
            for (size_t i = 0; vars && i < vars->n_labels; i++)
                if (!strcmp(vars->label_names[i], name + 8)) {
                    put(out, outlen, &off, vars->label_values[i], strlen(vars->label_values[i]));
                    break;
                }
        } else {
            known = 0;
        }
        if (!known) {
            snprintf(why, whylen,
                     "unknown template variable {{ %.60s }} (known: $value, $threshold, "
                     "$crossingTime, $crossingIn, $score, $expected, $rule, $labels.NAME)",
                     name);
            return -EINVAL;
        }
        p = close + 2;
    }
    return 0;
}
