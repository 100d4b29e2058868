/* hb_args.c: node-action arguments of the HAProxyBackend executor; see hb_args.h. */
#include "exec/hb_args.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* cJSON_Add* return NULL on allocation failure; one check at the end covers them through
 * the count of keys expected. */
static cJSON *finish(cJSON *o, int ok) {
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

cJSON *hb_start_args(const wl_target *t, const char *id, int port, const char *workload,
                     uint64_t generation) {
    const wl_replica_template *r = &t->replica;
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    int ok = cJSON_AddStringToObject(o, "id", id) && cJSON_AddNumberToObject(o, "port", port);
    cJSON *cmd = cJSON_AddArrayToObject(o, "command");
    ok = ok && cmd;
    for (int i = 0; ok && i < r->n_command; i++) {
        cJSON *w = cJSON_CreateString(r->command[i]);
        ok = w && cJSON_AddItemToArray(cmd, w);
    }
    if (ok && r->n_env) {
        cJSON *env = cJSON_AddObjectToObject(o, "env");
        ok = env != NULL;
        for (int i = 0; ok && i < r->n_env; i++)
            ok = cJSON_AddStringToObject(env, r->env[i].name, r->env[i].value) != NULL;
    }
    if (ok && r->cwd[0]) ok = cJSON_AddStringToObject(o, "cwd", r->cwd) != NULL;
    if (ok && r->user[0]) ok = cJSON_AddStringToObject(o, "user", r->user) != NULL;
    if (ok && r->cpu_cores > 0) ok = cJSON_AddNumberToObject(o, "cpu_quota", r->cpu_cores) != NULL;
    if (ok && r->memory_bytes > 0)
        ok = cJSON_AddNumberToObject(o, "memory_bytes", (double)r->memory_bytes) != NULL;
    if (ok && r->readiness_path[0]) {
        cJSON *rd = cJSON_AddObjectToObject(o, "readiness");
        ok = rd && cJSON_AddStringToObject(rd, "path", r->readiness_path) &&
             cJSON_AddNumberToObject(rd, "timeout_ms", r->readiness_timeout_seconds * 1000.0);
    }
    if (ok)
        ok = cJSON_AddStringToObject(o, "stop_signal", r->stop_signal) &&
             cJSON_AddNumberToObject(o, "grace_ms", r->grace_seconds * 1000.0);
    if (ok) {
        char gen[24];
        snprintf(gen, sizeof gen, "%" PRIu64, generation);
        cJSON *l = cJSON_AddObjectToObject(o, "labels");
        ok = l && cJSON_AddStringToObject(l, "workload", workload) &&
             cJSON_AddStringToObject(l, "generation", gen);
    }
    return finish(o, ok);
}

cJSON *hb_stop_args(const wl_target *t, const char *id) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    int ok = cJSON_AddStringToObject(o, "id", id) &&
             cJSON_AddStringToObject(o, "signal", t->replica.stop_signal) &&
             cJSON_AddNumberToObject(o, "grace_ms", t->replica.grace_seconds * 1000.0);
    return finish(o, ok);
}

cJSON *hb_slots_args(const wl_target *t) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    int ok = cJSON_AddStringToObject(o, "haproxy_socket", t->haproxy_socket) &&
             cJSON_AddStringToObject(o, "backend", t->name);
    return finish(o, ok);
}

cJSON *hb_slot_args(const wl_target *t, const char *server, const char *addr, int port,
                    const char *state) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    char ref[WL_NAME_MAX + 1 + 128];
    snprintf(ref, sizeof ref, "%s/%s", t->name, server);
    int ok = cJSON_AddStringToObject(o, "haproxy_socket", t->haproxy_socket) &&
             cJSON_AddStringToObject(o, "haproxy_server", ref);
    if (ok && addr) ok = cJSON_AddStringToObject(o, "addr", addr) != NULL;
    if (ok && port > 0) ok = cJSON_AddNumberToObject(o, "port", port) != NULL;
    if (ok && state) ok = cJSON_AddStringToObject(o, "state", state) != NULL;
    return finish(o, ok);
}

cJSON *hb_warmup_json(const wl_warmup *w) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    int ok = cJSON_AddStringToObject(o, "method", w->method) &&
             cJSON_AddStringToObject(o, "path", w->path) &&
             cJSON_AddNumberToObject(o, "rate", w->rate) &&
             cJSON_AddNumberToObject(o, "duration_ms", w->duration_ms) &&
             cJSON_AddNumberToObject(o, "max_inflight", w->max_inflight) &&
             cJSON_AddNumberToObject(o, "request_timeout_ms", w->request_timeout_ms);
    if (ok && w->start_rate > 0)
        ok = cJSON_AddNumberToObject(o, "start_rate", w->start_rate) != NULL;
    if (ok && w->ramp_ms >= 0) ok = cJSON_AddNumberToObject(o, "ramp_ms", w->ramp_ms) != NULL;
    if (ok && w->has_body) ok = cJSON_AddStringToObject(o, "body", w->body) != NULL;
    if (ok && w->n_headers) {
        cJSON *h = cJSON_AddArrayToObject(o, "headers");
        ok = h != NULL;
        for (int i = 0; ok && i < w->n_headers; i++) {
            cJSON *s = cJSON_CreateString(w->headers[i]);
            ok = s && cJSON_AddItemToArray(h, s);
        }
    }
    return finish(o, ok);
}

int hb_warmup_ms(const wl_warmup *w) {
    return w->enabled ? w->duration_ms + w->request_timeout_ms : 0;
}

cJSON *hb_activate_args(const wl_warmup *w, const char *cgroup, const char *addr, int port) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    int ok = cJSON_AddStringToObject(o, "cgroup", cgroup) != NULL;
    if (ok && w && w->enabled && addr && addr[0] && port > 0) {
        char ep[WL_ADDR_MAX + 16];
        if (strchr(addr, ':'))
            snprintf(ep, sizeof ep, "[%s]:%d", addr, port);
        else
            snprintf(ep, sizeof ep, "%s:%d", addr, port);
        cJSON *wj = hb_warmup_json(w);
        ok = cJSON_AddStringToObject(o, "endpoint", ep) && wj &&
             cJSON_AddItemToObject(o, "warmup", wj);
        if (!ok) cJSON_Delete(wj);
    }
    return finish(o, ok);
}

cJSON *hb_warmup_summary(const cJSON *res) {
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(res, "warmup");
    if (!cJSON_IsObject(w)) return NULL;
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    static const char *const keys[] = {"requests", "errors", "duration_ms"};
    int ok = 1;
    for (size_t i = 0; ok && i < sizeof keys / sizeof *keys; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(w, keys[i]);
        if (cJSON_IsNumber(v)) ok = cJSON_AddNumberToObject(o, keys[i], v->valuedouble) != NULL;
    }
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(w, "error");
    if (ok && cJSON_IsString(e)) ok = cJSON_AddStringToObject(o, "error", e->valuestring) != NULL;
    return finish(o, ok);
}
