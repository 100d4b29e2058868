/* k8s_test.c: the Kubernetes client's pure parts: pod references, the strategic merge patch
 * body of a readiness-gate condition, and reading the condition back from a Pod answer. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "exec/k8s.h"
#include "test.h"

TEST(pod_ref_parse) {
    char ns[K8S_NS_MAX], name[K8S_NAME_MAX], err[256];
    T_EQ_INT(k8s_pod_ref_parse("shop/web-7d9f.a", ns, name, err, sizeof err), 0);
    T_EQ_STR(ns, "shop");
    T_EQ_STR(name, "web-7d9f.a");
    T_EQ_INT(k8s_pod_ref_parse("shop", ns, name, err, sizeof err), -EINVAL);
    T_ASSERT(strstr(err, "must be NAMESPACE/NAME"));
    T_EQ_INT(k8s_pod_ref_parse("Shop/web", ns, name, err, sizeof err), -EINVAL);
    T_ASSERT(strstr(err, "namespace 'Shop'"));
    T_EQ_INT(k8s_pod_ref_parse("shop/", ns, name, err, sizeof err), -EINVAL);
    T_EQ_INT(k8s_pod_ref_parse("shop/web/x", ns, name, err, sizeof err), -EINVAL);
    T_ASSERT(strstr(err, "name 'web/x'"));
    T_EQ_INT(k8s_pod_ref_parse("-shop/web", ns, name, err, sizeof err), -EINVAL);
    T_EQ_INT(k8s_pod_ref_parse("shop/web-", ns, name, err, sizeof err), -EINVAL);
    T_EQ_INT(k8s_pod_ref_parse("shop/a..b", ns, name, err, sizeof err), -EINVAL);
    char longns[80];
    memset(longns, 'a', 64);
    strcpy(longns + 64, "/web");
    T_EQ_INT(k8s_pod_ref_parse(longns, ns, name, err, sizeof err), -EINVAL);
}

TEST(condition_patch_body) {
    /* 2026-11-21T08:00:00Z */
    char *s =
        k8s_condition_patch("tide.io/serving", 0, "TideDrained", "drain by tide", 1795248000000LL);
    T_ASSERT(s);
    cJSON *j = cJSON_Parse(s);
    T_ASSERT(j);
    T_EQ_INT(cJSON_GetArraySize(j), 1); /* only "status": a pods/status patch */
    cJSON *conds = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "status"), "conditions");
    T_EQ_INT(cJSON_GetArraySize(conds), 1);
    cJSON *c = cJSON_GetArrayItem(conds, 0);
    T_EQ_STR(cJSON_GetObjectItem(c, "type")->valuestring, "tide.io/serving");
    T_EQ_STR(cJSON_GetObjectItem(c, "status")->valuestring, "False");
    T_EQ_STR(cJSON_GetObjectItem(c, "reason")->valuestring, "TideDrained");
    T_EQ_STR(cJSON_GetObjectItem(c, "lastTransitionTime")->valuestring, "2026-11-21T08:00:00Z");
    cJSON_Delete(j);
    free(s);
    s = k8s_condition_patch("x.io/y", 1, NULL, NULL, 0);
    T_ASSERT(strstr(s, "\"status\":\"True\"") && !strstr(s, "reason"));
    free(s);
}

TEST(condition_from_pod) {
    const char *pod =
        "{\"kind\":\"Pod\",\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"False\"},"
        "{\"type\":\"tide.io/serving\",\"status\":\"True\"}]}}";
    char st[16];
    T_EQ_INT(k8s_pod_condition(pod, strlen(pod), "tide.io/serving", st, sizeof st), 0);
    T_EQ_STR(st, "True");
    T_EQ_INT(k8s_pod_condition(pod, strlen(pod), "Ready", st, sizeof st), 0);
    T_EQ_STR(st, "False");
    T_EQ_INT(k8s_pod_condition(pod, strlen(pod), "other", st, sizeof st), -ENOENT);
    const char *status = "{\"kind\":\"Status\",\"code\":404}";
    T_EQ_INT(k8s_pod_condition(status, strlen(status), "Ready", st, sizeof st), -EINVAL);
    T_EQ_INT(k8s_pod_condition("{", 1, "Ready", st, sizeof st), -EINVAL);
    const char *odd = "{\"kind\":\"Pod\",\"status\":{\"conditions\":{\"type\":\"Ready\"}}}";
    T_EQ_INT(k8s_pod_condition(odd, strlen(odd), "Ready", st, sizeof st), -ENOENT);
}
