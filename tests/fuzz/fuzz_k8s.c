/* fuzz_k8s.c: libFuzzer target for what the Kubernetes client reads from outside: the API's
 * answer (k8s_pod_condition) and a pod reference from the operator (k8s_pod_ref_parse). The
 * first byte picks the parser; the input is not NUL-terminated for the answer parser. */
#include "exec/k8s.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    size_t n = size - 1;
    char st[16];
    if (data[0] & 1) {
        char *buf = malloc(n ? n : 1);
        if (!buf) return 0;
        memcpy(buf, data + 1, n);
        k8s_pod_condition(buf, n, "tide.io/serving", st, sizeof st);
        free(buf);
    } else {
        char *s = malloc(n + 1);
        if (!s) return 0;
        memcpy(s, data + 1, n);
        s[n] = 0;
        char ns[K8S_NS_MAX], name[K8S_NAME_MAX], err[512];
        k8s_pod_ref_parse(s, ns, name, err, sizeof err);
        free(s);
    }
    return 0;
}
