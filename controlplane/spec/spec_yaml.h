/* spec_yaml.h: the YAML walking helpers the spec parsers share (workload.c holds them; the
 * alert rule parser, alertrule.c, uses them too): problems with field path and line, mappings
 * checked against their known fields, typed scalars, metric sources. Internal to spec/. */
#ifndef TIDE_SPEC_YAML_H
#define TIDE_SPEC_YAML_H

#include "spec/workload.h"

#include <stddef.h>
#include <yaml.h>

/* One document being walked: its problems and a budget of nodes (aliases can make a small
 * document huge). */
typedef struct wl_yctx {
    yaml_document_t *doc;
    wl_problems *probs;
    int nprob;
    long budget; /* nodes left to visit */
} wl_yctx;

/* Adds "path (line of n): msg" (n may be NULL: no line). */
void wl__prob(wl_yctx *c, const char *path, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The scalar text of n, NULL when n is not a scalar. */
const char *wl__scalar(const yaml_node_t *n);
/* Node idx of the document, NULL when the budget is spent. */
yaml_node_t *wl__node(wl_yctx *c, int idx);
/* Matches mapping n's keys against known[] (NULL-terminated) into vals[]; unknown and
 * duplicate keys are problems. 0 when n is a mapping, -1 (a problem) when not. */
int wl__fields(wl_yctx *c, const char *path, yaml_node_t *n, const char *const *known,
               yaml_node_t **vals);
/* Typed scalars: 0, or -1 with a problem naming path. */
int wl__get_str(wl_yctx *c, const char *path, yaml_node_t *n, char *out, size_t outlen);
int wl__get_int(wl_yctx *c, const char *path, yaml_node_t *n, long lo, long hi, int *out);
int wl__get_num(wl_yctx *c, const char *path, yaml_node_t *n, double lo, double hi, int open_lo,
                double *out);
int wl__get_bool(wl_yctx *c, const char *path, yaml_node_t *n, int *out);
int wl__get_enum(wl_yctx *c, const char *path, yaml_node_t *n, const char *const *names, int *out);
/* A metric source {name?, selector | query}, checked with the query parser. */
void wl__get_source(wl_yctx *c, const char *path, yaml_node_t *n, wl_source *src);
/* A name of letters, digits, '-', '_' and '.', starting with a letter or digit? */
int wl__name_ok(const char *s);
/* Scans the text as events: 1 when no collection nests deeper than 64 levels (or on a syntax
 * error, left to the loader), 0 too deep (*line set), -ENOMEM. */
int wl__depth_ok(const char *buf, size_t len, int *line);
/* Sorts problems by line (problems without a line last). */
void wl__problems_sort(wl_problems *p);

#endif
