/* k8s_creds.h: where the Kubernetes API is and how to authenticate to it: the in-cluster
 * service account (KUBERNETES_SERVICE_HOST/PORT, the projected token and CA under
 * /var/run/secrets/kubernetes.io/serviceaccount) or a kubeconfig file (its current context:
 * cluster server, certificate-authority[-data], insecure-skip-tls-verify, tls-server-name; user
 * token, tokenFile, client-certificate[-data]/client-key[-data]; context namespace), parsed
 * with libyaml. Credential plugins (exec, auth-provider) are refused by name: Tide runs them
 * nowhere. Pure except for reading the files named. */
#ifndef TIDE_K8S_CREDS_H
#define TIDE_K8S_CREDS_H

#include <stddef.h>

#define K8S_PATH_MAX 1024
#define K8S_TOKEN_MAX 8192
#define K8S_KUBECONFIG_MAX (1u << 20) /* a kubeconfig with many clusters stays far below */

typedef struct k8s_creds {
    char server[K8S_PATH_MAX]; /* https://host:port, no trailing '/' */
    char ca_file[K8S_PATH_MAX];
    char *ca_pem; /* certificate-authority-data, decoded (malloc'd) */
    size_t ca_pem_len;
    int insecure; /* insecure-skip-tls-verify */
    char tls_server_name[256];
    char token[K8S_TOKEN_MAX];     /* a static token (kubeconfig user.token) */
    char token_file[K8S_PATH_MAX]; /* read at every request (rotation) */
    char cert_file[K8S_PATH_MAX], key_file[K8S_PATH_MAX];
    char *cert_pem, *key_pem; /* client-certificate-data / client-key-data, decoded */
    size_t cert_pem_len, key_pem_len;
    char namespace_[64]; /* the context's (or the service account's) namespace; may be "" */
    char source[K8S_PATH_MAX + 64]; /* "kubeconfig PATH context NAME", "in-cluster", ... */
} k8s_creds;

void k8s_creds_free(k8s_creds *c); /* frees the decoded blobs; the struct stays usable */

/* Parses a kubeconfig document held in buf (dir: the file's directory, against which relative
 * paths resolve, as kubectl resolves them); context NULL or "" = current-context. 0, or
 * -EINVAL with err naming the field ("users[0].user.exec: credential plugins are not
 * supported"). */
int k8s_kubeconfig_parse(const char *buf, size_t len, const char *dir, const char *context,
                         k8s_creds *out, char *err, size_t errlen);
/* Reads and parses a kubeconfig file; -errno for a file that cannot be read. */
int k8s_kubeconfig_load(const char *path, const char *context, k8s_creds *out, char *err,
                        size_t errlen);

/* The in-cluster service account: server from KUBERNETES_SERVICE_HOST/PORT (getenv), token and
 * CA files under sa_dir (NULL: /var/run/secrets/kubernetes.io/serviceaccount), namespace from
 * its namespace file. -ENOENT with err when not running in a pod. */
int k8s_in_cluster(const char *sa_dir, k8s_creds *out, char *err, size_t errlen);

/* Base64 (standard alphabet, padding optional, whitespace skipped). Returns the decoded length
 * (out malloc'd, NUL-terminated) or -EINVAL. */
long k8s_base64_decode(const char *in, size_t len, char **out);

#endif
