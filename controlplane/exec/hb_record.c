/* hb_record.c: the HAProxyBackend executor's record (hb_record.h). */
#include "exec/hb_record.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const state_names[] = {"Starting", "Online", "Cutoff", "Standby", "Activating"};

static int str_field(const cJSON *o, const char *key, char *dst, size_t cap, int required, size_t i,
                     char *err, size_t errlen) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v && !required) {
        dst[0] = 0;
        return 0;
    }
    if (!cJSON_IsString(v) || strlen(v->valuestring) >= cap || (required && !v->valuestring[0])) {
        snprintf(err, errlen, "replicas[%zu].%s must be a string of %s%zu bytes at most", i, key,
                 required ? "1 to " : "", cap - 1);
        return -EINVAL;
    }
    memcpy(dst, v->valuestring, strlen(v->valuestring) + 1);
    return 0;
}

static int num_field(const cJSON *o, const char *key, double lo, double hi, double *out, size_t i,
                     char *err, size_t errlen) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= lo && v->valuedouble <= hi)) {
        snprintf(err, errlen, "replicas[%zu].%s must be a number in [%.0f, %.0f]", i, key, lo, hi);
        return -EINVAL;
    }
    *out = v->valuedouble;
    return 0;
}

int hb_record_parse(const char *text, size_t len, const char *workload, hb_rec_replica **out,
                    size_t *n, char *err, size_t errlen) {
    *out = NULL;
    *n = 0;
    if (len > HB_RECORD_MAX_BYTES) {
        snprintf(err, errlen, "record of %zu bytes, more than %d", len, HB_RECORD_MAX_BYTES);
        return -E2BIG;
    }
    cJSON *root = cJSON_ParseWithLength(text, len);
    if (!root) {
        snprintf(err, errlen, "not valid JSON");
        return -EINVAL;
    }
    int rc = -EINVAL;
    hb_rec_replica *r = NULL;
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(root, "workload");
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, "replicas");
    if (!cJSON_IsObject(root) || !cJSON_IsString(w) || strcmp(w->valuestring, workload)) {
        snprintf(err, errlen, "not the record of workload %s", workload);
        goto out;
    }
    if (!cJSON_IsArray(arr)) {
        snprintf(err, errlen, "\"replicas\" must be an array");
        goto out;
    }
    int cnt = cJSON_GetArraySize(arr);
    if (cnt > HB_RECORD_MAX_REPLICAS) {
        snprintf(err, errlen, "%d replicas, more than %d", cnt, HB_RECORD_MAX_REPLICAS);
        rc = -E2BIG;
        goto out;
    }
    if (cnt > 0 && !(r = calloc((size_t)cnt, sizeof *r))) {
        snprintf(err, errlen, "out of memory");
        rc = -ENOMEM;
        goto out;
    }
    size_t i = 0;
    const cJSON *o;
    cJSON_ArrayForEach(o, arr) {
        hb_rec_replica *p = &r[i];
        double d;
        if (!cJSON_IsObject(o)) {
            snprintf(err, errlen, "replicas[%zu] must be an object", i);
            goto out;
        }
        if (str_field(o, "id", p->id, sizeof p->id, 1, i, err, errlen) ||
            str_field(o, "node", p->node, sizeof p->node, 1, i, err, errlen) ||
            str_field(o, "addr", p->addr, sizeof p->addr, 0, i, err, errlen) ||
            str_field(o, "slot", p->slot, sizeof p->slot, 0, i, err, errlen) ||
            str_field(o, "cgroup", p->cgroup, sizeof p->cgroup, 0, i, err, errlen))
            goto out;
        if (!tide_replica_id_valid(p->id)) {
            snprintf(err, errlen, "replicas[%zu].id is not a valid replica id", i);
            goto out;
        }
        for (size_t k = 0; k < i; k++)
            if (!strcmp(r[k].id, p->id)) {
                snprintf(err, errlen, "replicas[%zu].id %s given twice", i, p->id);
                goto out;
            }
        if (num_field(o, "port", 1, 65535, &d, i, err, errlen)) goto out;
        p->port = (int)d;
        if (num_field(o, "pid", 0, 4194304, &d, i, err, errlen)) goto out;
        p->pid = (long)d;
        if (num_field(o, "since", 0, 1e15, &d, i, err, errlen)) goto out;
        p->since_ms = (int64_t)d;
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "state");
        int found = -1;
        for (int k = 0; cJSON_IsString(st) && k < 5; k++)
            if (!strcmp(st->valuestring, state_names[k])) found = k;
        if (found < 0) {
            snprintf(err, errlen,
                     "replicas[%zu].state must be Starting, Online, Cutoff, Standby or Activating",
                     i);
            goto out;
        }
        p->state = (exec_rstate)found;
        i++;
    }
    *out = r;
    *n = i;
    r = NULL;
    rc = 0;
out:
    free(r);
    cJSON_Delete(root);
    return rc;
}

char *hb_record_format(const char *workload, const hb_rec_replica *r, size_t n) {
    cJSON *root = cJSON_CreateObject();
    cJSON *arr = root ? cJSON_AddArrayToObject(root, "replicas") : NULL;
    int ok = arr && cJSON_AddStringToObject(root, "workload", workload);
    for (size_t i = 0; ok && i < n; i++) {
        if (r[i].state > EXEC_RS_ACTIVATING) continue;
        cJSON *o = cJSON_CreateObject();
        ok = o && cJSON_AddItemToArray(arr, o) && cJSON_AddStringToObject(o, "id", r[i].id) &&
             cJSON_AddStringToObject(o, "node", r[i].node) &&
             cJSON_AddStringToObject(o, "addr", r[i].addr) &&
             cJSON_AddNumberToObject(o, "port", r[i].port) &&
             cJSON_AddStringToObject(o, "slot", r[i].slot) &&
             cJSON_AddStringToObject(o, "cgroup", r[i].cgroup) &&
             cJSON_AddNumberToObject(o, "pid", (double)r[i].pid) &&
             cJSON_AddStringToObject(o, "state", state_names[r[i].state]) &&
             cJSON_AddNumberToObject(o, "since", (double)r[i].since_ms);
    }
    char *s = ok ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    return s;
}
