/* fuzz_k8s_json.c: libFuzzer target for what the Kubernetes executor decodes from the API server
 * (exec/k8s_json.h): a Scale, a Pod, a list, a watch event line, a Status, a list of scalers.
 * The first byte picks the decoder; the rest is the body, not NUL-terminated. */
#include "exec/k8s_json.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int count_item(void *arg, const char *json, size_t len) {
    k8s_pod p;
    char err[128];
    (void)k8s_pod_parse(json, len, "tide.io/serving", &p, err, sizeof err);
    ++*(int *)arg;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    size_t n = size - 1;
    char *buf = malloc(n ? n : 1);
    if (!buf) return 0;
    memcpy(buf, data + 1, n);
    char err[256], rv[K8S_RV_MAX], reason[64], msg[256], owner[300];
    int code, items = 0;
    switch (data[0] % 6) {
    case 0: {
        k8s_scale s;
        k8s_scale_parse(buf, n, &s, err, sizeof err);
        break;
    }
    case 1: {
        k8s_pod p;
        k8s_pod_parse(buf, n, "tide.io/serving", &p, err, sizeof err);
        break;
    }
    case 2:
        k8s_list_parse(buf, n, 1000, count_item, &items, rv, err, sizeof err);
        break;
    case 3: {
        k8s_event ev;
        if (k8s_event_parse(buf, n, &ev, err, sizeof err) == 0) free(ev.object);
        break;
    }
    case 4:
        k8s_status_parse(buf, n, &code, reason, sizeof reason, msg, sizeof msg);
        break;
    default:
        k8s_scalers_find(buf, n, "Deployment", "web", "HorizontalPodAutoscaler", owner,
                         sizeof owner, err, sizeof err);
    }
    free(buf);
    return 0;
}
