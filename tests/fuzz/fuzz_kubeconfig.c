/* fuzz_kubeconfig.c: libFuzzer target for the kubeconfig parser (exec/k8s_creds.h, libyaml):
 * the whole input is the file; the current context and a named one are both resolved. */
#include "exec/k8s_creds.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[512];
    k8s_creds c;
    if (k8s_kubeconfig_parse((const char *)data, size, "/etc/kube", NULL, &c, err, sizeof err) == 0)
        k8s_creds_free(&c);
    if (k8s_kubeconfig_parse((const char *)data, size, NULL, "fake", &c, err, sizeof err) == 0)
        k8s_creds_free(&c);
    char *out;
    long r = k8s_base64_decode((const char *)data, size, &out);
    if (r >= 0) free(out);
    return 0;
}
