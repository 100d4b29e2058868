/* alertrule.h: the alert rule spec (YAML, `kind: AlertRule`), applied and stored like a
 * workload (tidectl apply -f, get alertrules, describe alertrule NAME, delete alertrule NAME).
 *
 *   predict   a metric's forecast (model, quantile) crosses a threshold within the horizon
 *   anomaly   the online anomaly detector (models/anomaly.h) flags the metric's newest points
 *   workload  built-in conditions of a workload: out of replicas ahead, predictive fallback,
 *             stability checker fired
 *
 * Parsing is pure (a buffer in, a struct out) and validation complete: every problem with its
 * field path and line (as workload.h), unknown fields rejected by name. Durations are
 * Prometheus durations ("90s", "10m", "6h", "1d", "1h30m") or whole seconds.
 * Annotations are templates: {{ $value }}, {{ $threshold }}, {{ $crossingTime }} (RFC 3339,
 * UTC), {{ $crossingIn }} (e.g. "2h10m"), {{ $score }}, {{ $expected }}, {{ $rule }},
 * {{ $labels.NAME }}; an unknown variable is a problem at apply time. */
#ifndef TIDE_ALERTRULE_H
#define TIDE_ALERTRULE_H

#include "spec/workload.h"

#include <stddef.h>
#include <stdint.h>

#define AR_MAX_LABELS 16
#define AR_LABEL_MAX 256  /* a label value, with its NUL */
#define AR_ANNOT_MAX 1024 /* an annotation template, with its NUL */
#define AR_MAX_HORIZON_STEPS 2880
#define AR_MAX_HISTORY_STEPS 11000 /* what one query_range returns per series */

typedef enum ar_type { AR_PREDICT = 0, AR_ANOMALY, AR_WORKLOAD } ar_type;

/* type workload: the built-in conditions of a workload a rule switches on */
enum {
    AR_COND_OUT_OF_REPLICAS = 1, /* demand above maxReplicas within the portrait ahead */
    AR_COND_FALLBACK = 2,        /* a predictive provider runs on the reactive fallback */
    AR_COND_STABILITY = 4,       /* a stability checker rolled back or paused a step */
    AR_COND_ALL = 7,
};

typedef struct ar_label {
    char name[WL_NAME_MAX];
    char value[AR_LABEL_MAX];
} ar_label;

typedef struct ar_annotation {
    char name[WL_NAME_MAX];
    char value[AR_ANNOT_MAX];
} ar_annotation;

typedef struct alertrule_spec {
    char name[WL_NAME_MAX]; /* metadata.name; also the alerts' alertname */
    ar_type type;
    wl_source metric;      /* selector over the store, or PromQL (Prometheus) */
    int64_t interval_s;    /* evaluation period (default 60) */
    int64_t step_s;        /* resolution the metric is read and modelled at (default 60) */
    int64_t history_s;     /* history read for fitting / learning (default 7 days) */
    int64_t for_s;         /* active this long before firing (predict 300, anomaly 0) */
    int64_t keep_firing_s; /* firing this long after it stops being active (default 0) */
    char severity[WL_NAME_MAX];
    ar_label labels[AR_MAX_LABELS];
    int n_labels;
    ar_annotation annotations[AR_MAX_LABELS];
    int n_annotations;
    /* predict */
    char model[WL_NAME_MAX]; /* forecast.h model name, default "auto" */
    int64_t horizon_s;       /* default 6 h */
    int64_t retrain_s;       /* refit period, default 1 day */
    double threshold;
    int below;       /* direction: 0 above (default), 1 below */
    double quantile; /* tested forecast quantile: default 0.9 above, 0.1 below */
    /* workload */
    char workload[WL_NAME_MAX];
    unsigned conditions; /* AR_COND_* bits */
    /* anomaly */
    int sensitivity;        /* 0 low, 1 medium (default), 2 high */
    double score_threshold; /* from sensitivity: 0.5, 0.4 (the detector's default), 0.3 */
} alertrule_spec;

/* Fills the defaults into a zeroed spec (type predict). */
void ar_defaults(alertrule_spec *s);

/* Parses and validates one YAML document. Returns 0 with *out filled, -EINVAL (every problem
 * appended to probs, which may be NULL), or -ENOMEM. */
int ar_parse(const char *buf, size_t len, alertrule_spec *out, wl_problems *probs);

/* The `kind` of a YAML document's top-level mapping into out ("" when there is none or the
 * text is not YAML): how tidectl apply tells an AlertRule from a Workload. */
void ar_doc_kind(const char *buf, size_t len, char *out, size_t outlen);

const char *ar_type_name(ar_type t);
/* "low", "medium", "high" */
const char *ar_sensitivity_name(int s);
/* "outOfReplicas", "fallback", "stability" for one AR_COND_* bit */
const char *ar_condition_name(unsigned bit);

/* The values a template may use; NULL/NaN ones expand to "". */
typedef struct ar_vars {
    double value, threshold, score, expected; /* NaN = not known */
    int64_t crossing_time;                    /* unix s, 0 = none */
    int64_t now;                              /* for $crossingIn */
    const char *rule;
    const char *const *label_names, *const *label_values;
    size_t n_labels;
} ar_vars;

/* Expands a template into out (always NUL-terminated, cut at outlen). Returns 0, or -EINVAL
 * with why naming the first unknown variable or unclosed {{ (then out holds the text as far as
 * it got). vars NULL only checks the template. */
int ar_template_expand(const char *tmpl, const ar_vars *vars, char *out, size_t outlen, char *why,
                       size_t whylen);

/* "2h10m", "45m", "30s": a duration of whole seconds, largest units first. */
void ar_format_duration(int64_t s, char *out, size_t outlen);

#endif
