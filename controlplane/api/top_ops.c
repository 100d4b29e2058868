/* top_ops.c: the "top" ops command: the latest value of every agent cgroup and node metric
 * in the store, one row per (node, cgroup), for `tidectl top`.
 *
 * args: {"node": "NAME" (optional), "max_age_ms": N (optional, default 300000)}
 * data: {"cgroups": [{"node", "cgroup", "kind", "qos"?, "pod_uid"?, "container_id"?,
 *                     "service"?, "ts", <metric without "cgroup_">: value, ...}, ...],
 *        "nodes": [{"node", "ts", <metric without "node_">: value, ...}, ...]}
 * Rows are sorted by node, then by cpu_usage_cores (highest first); a metric whose newest
 * sample is older than max_age_ms (a vanished cgroup) is left out, and so is a row left
 * without metrics. */
#include "cp.h"
#include "api/ops.h"
#include "store/tsdb.h"

#include "log.h"

#include <stdlib.h>
#include <string.h>

#define TOP_DEFAULT_MAX_AGE_MS 300000

typedef struct top_row {
    char *key; /* node \0 cgroup */
    cJSON *obj;
    double cpu;
    int is_node;
} top_row;

typedef struct top_rows {
    top_row *v;
    size_t n, cap;
} top_rows;

static const char *label(const tsdb_label *l, size_t n, const char *name) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(l[i].name, name) == 0) return l[i].value;
    return NULL;
}

/* The row for (node, cgroup); cgroup NULL for the node row. Linear over rows: a few thousand
 * rows at most, and this runs on request only. */
static int row_is(const top_row *r, const char *node, size_t nl, const char *cgroup) {
    if (r->is_node != !cgroup || strcmp(r->key, node) != 0) return 0;
    return !cgroup || strcmp(r->key + nl + 1, cgroup) == 0;
}

static top_row *row_for(top_rows *rows, const char *node, const char *cgroup) {
    size_t nl = strlen(node), cl = cgroup ? strlen(cgroup) : 0;
    /* A cgroup's series usually have neighbouring ids: search from the newest row. */
    for (size_t i = rows->n; i-- > 0;)
        if (row_is(&rows->v[i], node, nl, cgroup)) return &rows->v[i];
    if (rows->n == rows->cap) {
        size_t cap = rows->cap ? rows->cap * 2 : 64;
        top_row *nv = realloc(rows->v, cap * sizeof *nv);
        if (!nv) return NULL;
        rows->v = nv;
        rows->cap = cap;
    }
    top_row *r = &rows->v[rows->n];
    memset(r, 0, sizeof *r);
    r->key = malloc(nl + cl + 2);
    r->obj = cJSON_CreateObject();
    if (!r->key || !r->obj) {
        free(r->key);
        cJSON_Delete(r->obj);
        return NULL;
    }
    memcpy(r->key, node, nl + 1);
    if (cgroup) memcpy(r->key + nl + 1, cgroup, cl + 1);
    r->is_node = !cgroup;
    r->cpu = -1;
    cJSON_AddStringToObject(r->obj, "node", node);
    if (cgroup) cJSON_AddStringToObject(r->obj, "cgroup", cgroup);
    rows->n++;
    return r;
}

/* Keys start with the node name and its NUL: strcmp orders by node. Then CPU, highest first. */
static int cmp_rows(const void *a, const void *b) {
    const top_row *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    if (c != 0) return c;
    return x->cpu < y->cpu ? 1 : x->cpu > y->cpu ? -1 : 0;
}

static void handle_top(ops_request *req, const cJSON *args) {
    struct controlplane *cp = ops_cp(req);
    const char *want_node = NULL;
    double max_age = TOP_DEFAULT_MAX_AGE_MS;
    if (args) {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(args, "node");
        if (n && !cJSON_IsString(n)) {
            ops_reply_error(req, 2, "top: \"node\" must be a string");
            return;
        }
        if (n) want_node = n->valuestring;
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(args, "max_age_ms");
        if (a && (!cJSON_IsNumber(a) || a->valuedouble <= 0)) {
            ops_reply_error(req, 2, "top: \"max_age_ms\" must be a positive number");
            return;
        }
        if (a) max_age = a->valuedouble;
    }
    if (!cp->db) {
        ops_reply_error(req, 1, "top: the store is not open");
        return;
    }
    int64_t now = tide_now_wall_ms();
    top_rows rows = {0};
    uint32_t count = tsdb_series_count(cp->db);
    tsdb_points pts = {0};
    int oom = 0;
    for (uint32_t id = 1; id <= count && !oom; id++) {
        const tsdb_label *l;
        size_t nl;
        if (tsdb_series_labels(cp->db, id, &l, &nl) < 0) continue;
        const char *name = label(l, nl, "__name__"), *node = label(l, nl, "node");
        if (!name || !node) continue;
        int is_cg = strncmp(name, "cgroup_", 7) == 0, is_node = strncmp(name, "node_", 5) == 0;
        if (!is_cg && !is_node) continue;
        if (want_node && strcmp(node, want_node) != 0) continue;
        const char *cgroup = label(l, nl, "cgroup");
        if (is_cg && !cgroup) continue;
        tsdb_series_info info;
        if (tsdb_series_stat(cp->db, id, &info) < 0 || info.last_ms <= 0) continue;
        if ((double)(now - info.last_ms) > max_age) continue;
        pts.n = 0;
        if (tsdb_read(cp->db, id, TSDB_RAW, info.last_ms, info.last_ms, &pts) < 0 || pts.n == 0)
            continue;
        const tsdb_point *p = &pts.p[pts.n - 1];
        double v = p->count > 0 ? p->sum / p->count : p->sum;
        top_row *r = row_for(&rows, node, is_cg ? cgroup : NULL);
        if (!r) {
            oom = 1;
            break;
        }
        const char *metric = name + (is_cg ? 7 : 5);
        cJSON_DeleteItemFromObjectCaseSensitive(r->obj, metric);
        cJSON_AddNumberToObject(r->obj, metric, v);
        if (strcmp(metric, "cpu_usage_cores") == 0) r->cpu = v;
        cJSON *ts = cJSON_GetObjectItemCaseSensitive(r->obj, "ts");
        if (!ts)
            cJSON_AddNumberToObject(r->obj, "ts", (double)p->ts_ms);
        else if (ts->valuedouble < (double)p->ts_ms)
            cJSON_SetNumberValue(ts, (double)p->ts_ms);
        if (is_cg) {
            static const char *const keep[] = {"kind", "qos", "pod_uid", "container_id", "service"};
            for (size_t k = 0; k < sizeof keep / sizeof keep[0]; k++) {
                const char *lv = label(l, nl, keep[k]);
                if (lv && !cJSON_GetObjectItemCaseSensitive(r->obj, keep[k]))
                    cJSON_AddStringToObject(r->obj, keep[k], lv);
            }
        }
    }
    tsdb_points_fini(&pts);
    if (oom) {
        for (size_t i = 0; i < rows.n; i++) {
            free(rows.v[i].key);
            cJSON_Delete(rows.v[i].obj);
        }
        free(rows.v);
        ops_reply_error(req, 1, "top: out of memory");
        return;
    }
    if (rows.n > 1) qsort(rows.v, rows.n, sizeof *rows.v, cmp_rows);
    cJSON *data = cJSON_CreateObject();
    cJSON *cgs = cJSON_AddArrayToObject(data, "cgroups");
    cJSON *nodes = cJSON_AddArrayToObject(data, "nodes");
    for (size_t i = 0; i < rows.n; i++) {
        cJSON_AddItemToArray(rows.v[i].is_node ? nodes : cgs, rows.v[i].obj);
        free(rows.v[i].key);
    }
    free(rows.v);
    ops_reply(req, data);
}

OPS_COMMAND(
    top, "top",
    "latest usage per cgroup and node: {node?, max_age_ms?} -> {cgroups: [...], nodes: [...]}",
    handle_top)
