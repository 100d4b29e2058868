/* k8s_creds.c: kubeconfig (libyaml document API) and in-cluster credentials (k8s_creds.h). */
#include "exec/k8s_creds.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

__attribute__((format(printf, 3, 4))) static int bad(char *err, size_t errlen, const char *fmt,
                                                     ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

void k8s_creds_free(k8s_creds *c) {
    if (!c) return;
    if (c->key_pem) explicit_bzero(c->key_pem, c->key_pem_len);
    free(c->ca_pem);
    free(c->cert_pem);
    free(c->key_pem);
    c->ca_pem = c->cert_pem = c->key_pem = NULL;
    c->ca_pem_len = c->cert_pem_len = c->key_pem_len = 0;
    explicit_bzero(c->token, sizeof c->token);
}

long k8s_base64_decode(const char *in, size_t len, char **out) {
    *out = NULL;
    char *o = malloc(len / 4 * 3 + 4);
    if (!o) return -ENOMEM;
    unsigned acc = 0;
    int bits = 0, pad = 0;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)in[i];
        int v;
        if (ch >= 'A' && ch <= 'Z')
            v = ch - 'A';
        else if (ch >= 'a' && ch <= 'z')
            v = ch - 'a' + 26;
        else if (ch >= '0' && ch <= '9')
            v = ch - '0' + 52;
        else if (ch == '+')
            v = 62;
        else if (ch == '/')
            v = 63;
        else if (ch == '=') {
            pad++;
            continue;
        } else if (ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t')
            continue;
        else {
            free(o);
            return -EINVAL;
        }
        if (pad) { /* data after padding */
            free(o);
            return -EINVAL;
        }
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            o[n++] = (char)((acc >> bits) & 0xff);
        }
    }
    if (bits >= 6 || pad > 2) { /* a lone 6-bit group encodes no byte */
        free(o);
        return -EINVAL;
    }
    o[n] = 0;
    *out = o;
    return (long)n;
}

/* ---- the YAML document ---------------------------------------------------------------------- */

typedef struct yctx {
    yaml_document_t *doc;
    char *err;
    size_t errlen;
} yctx;

static yaml_node_t *ynode(yctx *y, int id) {
    return yaml_document_get_node(y->doc, id);
}

static const char *yscalar(yaml_node_t *n) {
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static yaml_node_t *yget(yctx *y, yaml_node_t *map, const char *key) {
    if (!map || map->type != YAML_MAPPING_NODE) return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        const char *k = yscalar(ynode(y, p->key));
        if (k && !strcmp(k, key)) return ynode(y, p->value);
    }
    return NULL;
}

/* Copies scalar field key of map (path for errors). 0, -ENOENT absent, -EINVAL otherwise. */
static int ystr(yctx *y, yaml_node_t *map, const char *key, const char *path, char *out,
                size_t cap) {
    yaml_node_t *v = yget(y, map, key);
    out[0] = 0;
    if (!v) return -ENOENT;
    const char *s = yscalar(v);
    if (!s) return bad(y->err, y->errlen, "%s.%s: must be a string", path, key);
    if (strlen(s) >= cap)
        return bad(y->err, y->errlen, "%s.%s: longer than %zu bytes", path, key, cap - 1);
    memcpy(out, s, strlen(s) + 1);
    return 0;
}

/* The entry of list `list` (clusters, users, contexts) named `name`, its inner map (key
 * `inner`) in *out and its index in *idx. */
static int yfind(yctx *y, yaml_node_t *root, const char *list, const char *inner, const char *name,
                 yaml_node_t **out, int *idx) {
    yaml_node_t *l = yget(y, root, list);
    if (!l || l->type != YAML_SEQUENCE_NODE)
        return bad(y->err, y->errlen, "%s: missing or not a list", list);
    int i = 0;
    for (yaml_node_item_t *it = l->data.sequence.items.start; it < l->data.sequence.items.top;
         it++, i++) {
        yaml_node_t *e = ynode(y, *it);
        const char *n = yscalar(yget(y, e, "name"));
        if (n && !strcmp(n, name)) {
            *out = yget(y, e, inner);
            *idx = i;
            if (!*out || (*out)->type != YAML_MAPPING_NODE)
                return bad(y->err, y->errlen, "%s[%d].%s: missing or not a mapping", list, i,
                           inner);
            return 0;
        }
    }
    return bad(y->err, y->errlen, "%s: no entry named \"%s\"", list, name);
}

static int resolve(const char *dir, const char *p, char *out, size_t cap, yctx *y,
                   const char *what) {
    int n = (p[0] == '/' || !dir || !*dir) ? snprintf(out, cap, "%s", p)
                                           : snprintf(out, cap, "%s/%s", dir, p);
    if (n < 0 || (size_t)n >= cap) return bad(y->err, y->errlen, "%s: path too long", what);
    return 0;
}

/* field-data (base64) into *blob */
static int ydata(yctx *y, yaml_node_t *map, const char *key, const char *path, char **blob,
                 size_t *blen) {
    yaml_node_t *v = yget(y, map, key);
    if (!v) return 0;
    const char *s = yscalar(v);
    if (!s) return bad(y->err, y->errlen, "%s.%s: must be a string", path, key);
    char *o;
    long n = k8s_base64_decode(s, strlen(s), &o);
    if (n == -ENOMEM) return bad(y->err, y->errlen, "%s.%s: out of memory", path, key);
    if (n < 0) return bad(y->err, y->errlen, "%s.%s: not valid base64", path, key);
    free(*blob);
    *blob = o;
    *blen = (size_t)n;
    return 0;
}

static int parse_doc(yctx *y, const char *dir, const char *context, k8s_creds *out) {
    yaml_node_t *root = yaml_document_get_root_node(y->doc);
    if (!root || root->type != YAML_MAPPING_NODE)
        return bad(y->err, y->errlen, "kubeconfig: not a YAML mapping");
    const char *kind = yscalar(yget(y, root, "kind"));
    if (kind && strcmp(kind, "Config") != 0)
        return bad(y->err, y->errlen, "kind: \"%s\", not Config", kind);
    char ctxname[256];
    if (context && *context)
        snprintf(ctxname, sizeof ctxname, "%s", context);
    else {
        int r = ystr(y, root, "current-context", "kubeconfig", ctxname, sizeof ctxname);
        if (r == -ENOENT || (r == 0 && !ctxname[0]))
            return bad(y->err, y->errlen, "current-context: not set (name a context)");
        if (r < 0) return r;
    }
    yaml_node_t *ctx, *cluster, *user = NULL;
    int ci, ki, ui = -1;
    if (yfind(y, root, "contexts", "context", ctxname, &ctx, &ci) < 0) return -EINVAL;
    char path[96], cname[256], uname[256];
    snprintf(path, sizeof path, "contexts[%d].context", ci);
    if (ystr(y, ctx, "cluster", path, cname, sizeof cname) < 0 || !cname[0])
        return bad(y->err, y->errlen, "%s.cluster: missing", path);
    int r = ystr(y, ctx, "user", path, uname, sizeof uname);
    if (r == -EINVAL) return r;
    r = ystr(y, ctx, "namespace", path, out->namespace_, sizeof out->namespace_);
    if (r == -EINVAL) return r;
    if (yfind(y, root, "clusters", "cluster", cname, &cluster, &ki) < 0) return -EINVAL;
    snprintf(path, sizeof path, "clusters[%d].cluster", ki);
    if (ystr(y, cluster, "server", path, out->server, sizeof out->server) < 0 || !out->server[0])
        return bad(y->err, y->errlen, "%s.server: missing", path);
    if (strncmp(out->server, "https://", 8) != 0 && strncmp(out->server, "http://", 7) != 0)
        return bad(y->err, y->errlen, "%s.server: \"%s\" is not an http(s) URL", path, out->server);
    size_t sl = strlen(out->server);
    while (sl > 0 && out->server[sl - 1] == '/')
        out->server[--sl] = 0;
    char tmp[K8S_PATH_MAX];
    if ((r = ystr(y, cluster, "certificate-authority", path, tmp, sizeof tmp)) == -EINVAL) return r;
    if (r == 0 && resolve(dir, tmp, out->ca_file, sizeof out->ca_file, y, path) < 0) return -EINVAL;
    if (ydata(y, cluster, "certificate-authority-data", path, &out->ca_pem, &out->ca_pem_len) < 0)
        return -EINVAL;
    char flag[16];
    if ((r = ystr(y, cluster, "insecure-skip-tls-verify", path, flag, sizeof flag)) == -EINVAL)
        return r;
    out->insecure = r == 0 && !strcmp(flag, "true");
    if (ystr(y, cluster, "tls-server-name", path, out->tls_server_name,
             sizeof out->tls_server_name) == -EINVAL)
        return -EINVAL;
    if (ystr(y, cluster, "proxy-url", path, tmp, sizeof tmp) != -ENOENT)
        return bad(y->err, y->errlen, "%s.proxy-url: not supported (reach the server directly)",
                   path);
    if (!uname[0]) return 0; /* no user: anonymous */
    if (yfind(y, root, "users", "user", uname, &user, &ui) < 0) return -EINVAL;
    snprintf(path, sizeof path, "users[%d].user", ui);
    if (yget(y, user, "exec"))
        return bad(y->err, y->errlen,
                   "%s.exec: credential plugins are not supported (give Tide a service account "
                   "token: token or tokenFile)",
                   path);
    if (yget(y, user, "auth-provider"))
        return bad(y->err, y->errlen, "%s.auth-provider: not supported (use token or tokenFile)",
                   path);
    if (yget(y, user, "username") || yget(y, user, "password"))
        return bad(y->err, y->errlen,
                   "%s: basic authentication is not supported (removed from Kubernetes 1.19)",
                   path);
    if (ystr(y, user, "token", path, out->token, sizeof out->token) == -EINVAL) return -EINVAL;
    if ((r = ystr(y, user, "tokenFile", path, tmp, sizeof tmp)) == -EINVAL) return r;
    if (r == 0 && resolve(dir, tmp, out->token_file, sizeof out->token_file, y, path) < 0)
        return -EINVAL;
    if ((r = ystr(y, user, "client-certificate", path, tmp, sizeof tmp)) == -EINVAL) return r;
    if (r == 0 && resolve(dir, tmp, out->cert_file, sizeof out->cert_file, y, path) < 0)
        return -EINVAL;
    if ((r = ystr(y, user, "client-key", path, tmp, sizeof tmp)) == -EINVAL) return r;
    if (r == 0 && resolve(dir, tmp, out->key_file, sizeof out->key_file, y, path) < 0)
        return -EINVAL;
    if (ydata(y, user, "client-certificate-data", path, &out->cert_pem, &out->cert_pem_len) < 0 ||
        ydata(y, user, "client-key-data", path, &out->key_pem, &out->key_pem_len) < 0)
        return -EINVAL;
    int has_cert = out->cert_file[0] || out->cert_pem, has_key = out->key_file[0] || out->key_pem;
    if (has_cert != has_key)
        return bad(y->err, y->errlen,
                   "%s: a client certificate needs its key (and the key its "
                   "certificate)",
                   path);
    return 0;
}

int k8s_kubeconfig_parse(const char *buf, size_t len, const char *dir, const char *context,
                         k8s_creds *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (len > K8S_KUBECONFIG_MAX)
        return bad(err, errlen, "kubeconfig: larger than %u bytes", K8S_KUBECONFIG_MAX);
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser)) return -ENOMEM;
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
    if (!yaml_parser_load(&parser, &doc)) {
        int rc = bad(err, errlen, "kubeconfig: YAML syntax at line %d column %d: %s",
                     (int)parser.problem_mark.line + 1, (int)parser.problem_mark.column + 1,
                     parser.problem ? parser.problem : "error");
        yaml_parser_delete(&parser);
        return rc;
    }
    /* aliases: libyaml's document shares nodes, so an alias bomb costs no memory here and
     * every lookup above is a bounded walk of one mapping or sequence */
    yctx y = {&doc, err, errlen};
    int rc = parse_doc(&y, dir, context, out);
    if (rc == 0)
        snprintf(out->source, sizeof out->source, "kubeconfig context %.200s",
                 context && *context ? context : "(current)");
    else
        k8s_creds_free(out);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return rc;
}

static int read_file(const char *path, size_t max, char **out, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return -errno;
    char *b = malloc(max + 1);
    if (!b) {
        fclose(f);
        return -ENOMEM;
    }
    size_t n = fread(b, 1, max + 1, f);
    int e = ferror(f) ? -EIO : 0;
    fclose(f);
    if (!e && n > max) e = -EFBIG;
    if (e) {
        free(b);
        return e;
    }
    b[n] = 0;
    *out = b;
    *len = n;
    return 0;
}

int k8s_kubeconfig_load(const char *path, const char *context, k8s_creds *out, char *err,
                        size_t errlen) {
    memset(out, 0, sizeof *out);
    char *buf;
    size_t len;
    int rc = read_file(path, K8S_KUBECONFIG_MAX, &buf, &len);
    if (rc < 0) {
        snprintf(err, errlen, "kubeconfig %s: %s", path,
                 rc == -EFBIG ? "larger than 1 MiB" : strerror(-rc));
        return rc;
    }
    char dir[K8S_PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    else
        snprintf(dir, sizeof dir, ".");
    char e2[512];
    rc = k8s_kubeconfig_parse(buf, len, dir, context, out, e2, sizeof e2);
    free(buf);
    if (rc < 0)
        snprintf(err, errlen, "kubeconfig %s: %s", path, e2);
    else
        snprintf(out->source, sizeof out->source, "kubeconfig %.900s", path);
    return rc;
}

int k8s_in_cluster(const char *sa_dir, k8s_creds *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    const char *host = getenv("KUBERNETES_SERVICE_HOST"), *port = getenv("KUBERNETES_SERVICE_PORT");
    if (!host || !*host || !port || !*port) {
        snprintf(err, errlen,
                 "not in a pod: KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT are not set "
                 "(give a kubeconfig)");
        return -ENOENT;
    }
    if (!sa_dir) sa_dir = "/var/run/secrets/kubernetes.io/serviceaccount";
    /* an IPv6 service address needs brackets */
    int n = strchr(host, ':')
                ? snprintf(out->server, sizeof out->server, "https://[%s]:%s", host, port)
                : snprintf(out->server, sizeof out->server, "https://%s:%s", host, port);
    if (n < 0 || (size_t)n >= sizeof out->server) {
        snprintf(err, errlen, "KUBERNETES_SERVICE_HOST is too long");
        return -EINVAL;
    }
    snprintf(out->token_file, sizeof out->token_file, "%.900s/token", sa_dir);
    snprintf(out->ca_file, sizeof out->ca_file, "%.900s/ca.crt", sa_dir);
    char nsf[K8S_PATH_MAX + 16], *ns;
    size_t nl;
    snprintf(nsf, sizeof nsf, "%.900s/namespace", sa_dir);
    if (read_file(nsf, 63, &ns, &nl) == 0) {
        while (nl > 0 && (ns[nl - 1] == '\n' || ns[nl - 1] == ' '))
            ns[--nl] = 0;
        snprintf(out->namespace_, sizeof out->namespace_, "%s", ns);
        free(ns);
    }
    snprintf(out->source, sizeof out->source, "in-cluster service account %.900s", sa_dir);
    return 0;
}
