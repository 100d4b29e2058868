/* nodekeys.c: the per-node agent key table, its file and new keys (nodekeys.h). */
#include "agents/nodekeys.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hmac.h"
#include "wire.h"

#define HEADER "tide-node-keys 1"

static int is_hex_key(const char *p, size_t len) {
    if (len != NODEKEY_LEN) return 0;
    for (size_t i = 0; i < len; i++)
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f'))) return 0;
    return 1;
}

/* Index of node in the sorted table, or where it would go (*found = 0). */
static size_t find_pos(const nodekeys *k, const char *node, int *found) {
    size_t lo = 0, hi = k->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(k->v[mid].node, node);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = 0;
    return lo;
}

const nodekey *nodekeys_find(const nodekeys *k, const char *node) {
    int found;
    size_t i = find_pos(k, node, &found);
    return found ? &k->v[i] : NULL;
}

int nodekeys_set(nodekeys *k, const char *node, const char *key, int64_t now_ms) {
    size_t nl = strlen(node);
    if (!wire_node_valid(node, nl) || (key && !is_hex_key(key, strlen(key)))) return -EINVAL;
    int found;
    size_t i = find_pos(k, node, &found);
    if (!found) {
        if (k->n >= NODEKEYS_MAX) return -ENOSPC;
        if (k->n == k->cap) {
            size_t cap = k->cap ? k->cap * 2 : 16;
            nodekey *v = realloc(k->v, cap * sizeof *v);
            if (!v) return -ENOMEM;
            k->v = v;
            k->cap = cap;
        }
        memmove(&k->v[i + 1], &k->v[i], (k->n - i) * sizeof *k->v);
        k->n++;
        memset(&k->v[i], 0, sizeof k->v[i]);
        memcpy(k->v[i].node, node, nl + 1);
    }
    nodekey *e = &k->v[i];
    e->revoked = key == NULL;
    e->created_ms = now_ms;
    snprintf(e->key, sizeof e->key, "%s", key ? key : "");
    return 0;
}

void nodekeys_fini(nodekeys *k) {
    if (!k) return;
    if (k->v) memset(k->v, 0, k->cap * sizeof *k->v); /* keys do not linger in freed memory */
    free(k->v);
    memset(k, 0, sizeof *k);
}

int nodekeys_copy(nodekeys *dst, const nodekeys *src) {
    memset(dst, 0, sizeof *dst);
    if (!src->n) return 0;
    dst->v = malloc(src->n * sizeof *dst->v);
    if (!dst->v) return -ENOMEM;
    memcpy(dst->v, src->v, src->n * sizeof *dst->v);
    dst->n = dst->cap = src->n;
    return 0;
}

/* One line's fields, split at single spaces (at most 5). */
static int split(const char *p, size_t len, const char **f, size_t *fl, int max) {
    int n = 0;
    size_t i = 0;
    while (i <= len) {
        size_t s = i;
        while (i < len && p[i] != ' ')
            i++;
        if (n == max) return max + 1;
        f[n] = p + s;
        fl[n] = i - s;
        n++;
        i++;
    }
    return n;
}

static int parse_ms(const char *p, size_t len, int64_t *out) {
    if (len == 0 || len > 18) return -1;
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9') return -1;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return 0;
}

int nodekeys_parse(const char *text, size_t len, nodekeys *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (len > NODEKEYS_MAX_FILE) {
        snprintf(err, errlen, "%zu bytes, more than the %u allowed", len, NODEKEYS_MAX_FILE);
        return -EINVAL;
    }
    int header = 0;
    size_t lineno = 0, off = 0;
    while (off < len) {
        const char *line = text + off;
        const char *nl = memchr(line, '\n', len - off);
        size_t ll = nl ? (size_t)(nl - line) : len - off;
        off += ll + (nl ? 1 : 0);
        lineno++;
        if (ll == 0 || line[0] == '#') continue;
        if (memchr(line, 0, ll) || memchr(line, '\r', ll) || memchr(line, '\t', ll)) {
            snprintf(err, errlen, "line %zu: control character", lineno);
            return -EINVAL;
        }
        if (!header) {
            if (ll != strlen(HEADER) || memcmp(line, HEADER, ll) != 0) {
                snprintf(err, errlen, "line %zu: expected the header \"%s\"", lineno, HEADER);
                return -EINVAL;
            }
            header = 1;
            continue;
        }
        const char *f[5];
        size_t fl[5];
        int nf = split(line, ll, f, fl, 4);
        if (nf < 3 || nf > 4) {
            snprintf(err, errlen, "line %zu: expected NODE key|revoked CREATED_MS [KEY]", lineno);
            return -EINVAL;
        }
        if (!wire_node_valid(f[0], fl[0])) {
            snprintf(err, errlen,
                     "line %zu: node name '%.*s' is not 1-63 characters of [A-Za-z0-9._-]", lineno,
                     (int)(fl[0] < 64 ? fl[0] : 64), f[0]);
            return -EINVAL;
        }
        char node[64];
        memcpy(node, f[0], fl[0]);
        node[fl[0]] = 0;
        int64_t created;
        if (parse_ms(f[2], fl[2], &created) < 0) {
            snprintf(err, errlen, "line %zu: node %s: created time is not unix milliseconds",
                     lineno, node);
            return -EINVAL;
        }
        int revoked = fl[1] == 7 && !memcmp(f[1], "revoked", 7);
        int keyed = fl[1] == 3 && !memcmp(f[1], "key", 3);
        char key[NODEKEY_LEN + 1];
        if (keyed && nf == 4 && is_hex_key(f[3], fl[3])) {
            memcpy(key, f[3], NODEKEY_LEN);
            key[NODEKEY_LEN] = 0;
        } else if (!(revoked && nf == 3)) {
            snprintf(err, errlen,
                     "line %zu: node %s: expected \"key CREATED_MS\" and 64 lowercase hex digits, "
                     "or \"revoked CREATED_MS\"",
                     lineno, node);
            return -EINVAL;
        }
        if (nodekeys_find(out, node)) {
            snprintf(err, errlen, "line %zu: node %s listed twice", lineno, node);
            return -EINVAL;
        }
        int rc = nodekeys_set(out, node, revoked ? NULL : key, created);
        memset(key, 0, sizeof key);
        if (rc == -ENOSPC) {
            snprintf(err, errlen, "line %zu: more than %d nodes", lineno, NODEKEYS_MAX);
            return -EINVAL;
        }
        if (rc < 0) {
            snprintf(err, errlen, "out of memory");
            return rc;
        }
    }
    return 0;
}

int nodekeys_format(const nodekeys *k, char **text, size_t *len) {
    size_t cap = sizeof HEADER + 1 + k->n * (64 + 9 + 20 + NODEKEY_LEN + 3);
    char *p = malloc(cap);
    if (!p) return -ENOMEM;
    size_t n = (size_t)snprintf(p, cap, "%s\n", HEADER);
    for (size_t i = 0; i < k->n; i++) {
        const nodekey *e = &k->v[i];
        if (e->revoked)
            n += (size_t)snprintf(p + n, cap - n, "%s revoked %" PRId64 "\n", e->node,
                                  e->created_ms);
        else
            n += (size_t)snprintf(p + n, cap - n, "%s key %" PRId64 " %s\n", e->node, e->created_ms,
                                  e->key);
    }
    *text = p;
    *len = n;
    return 0;
}

int nodekeys_new_key(char key[NODEKEY_LEN + 1]) {
    uint8_t raw[NODEKEY_LEN / 2];
    size_t got = 0;
    while (got < sizeof raw) {
        ssize_t n = getrandom(raw + got, sizeof raw - got, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        got += (size_t)n;
    }
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < sizeof raw; i++) {
        key[2 * i] = hex[raw[i] >> 4];
        key[2 * i + 1] = hex[raw[i] & 15];
    }
    key[NODEKEY_LEN] = 0;
    memset(raw, 0, sizeof raw);
    return 0;
}

int nodekeys_key_id(const char *key, char id[13]) {
    static const char msg[] = "tide node key id";
    uint8_t mac[TIDE_HMAC_SHA256_LEN];
    if (tide_hmac_sha256(key, strlen(key), msg, sizeof msg - 1, mac) < 0) return -EIO;
    for (int i = 0; i < 6; i++)
        snprintf(id + 2 * i, 3, "%02x", mac[i]);
    return 0;
}

int nodekeys_load(const char *path, nodekeys *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ENOENT) return 0;
        int e = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        return -e;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > NODEKEYS_MAX_FILE) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", path,
                 e ? strerror(e) : "not a regular file of at most 8 MiB");
        close(fd);
        return e ? -e : -EINVAL;
    }
    size_t size = (size_t)st.st_size, got = 0;
    char *buf = malloc(size + 1);
    if (!buf) {
        close(fd);
        snprintf(err, errlen, "%s: out of memory", path);
        return -ENOMEM;
    }
    while (got < size) {
        ssize_t n = read(fd, buf + got, size - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += (size_t)n;
    }
    close(fd);
    char perr[200];
    int rc = nodekeys_parse(buf, got, out, perr, sizeof perr);
    memset(buf, 0, size);
    free(buf);
    if (rc < 0) {
        nodekeys_fini(out);
        snprintf(err, errlen, "%s: %s", path, perr);
    }
    return rc;
}

int nodekeys_save(const char *path, const nodekeys *k) {
    char *text;
    size_t len;
    int rc = nodekeys_format(k, &text, &len);
    if (rc < 0) return rc;
    char tmp[1200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        rc = -errno;
        goto out;
    }
    fchmod(fd, 0600); /* whatever an older file's mode was */
    for (size_t off = 0; off < len;) {
        ssize_t n = write(fd, text + off, len - off);
        if (n < 0) {
            if (errno == EINTR) continue;
            rc = -errno;
            close(fd);
            unlink(tmp);
            goto out;
        }
        off += (size_t)n;
    }
    if (fsync(fd) < 0 || close(fd) < 0) {
        rc = -errno;
        unlink(tmp);
        goto out;
    }
    if (rename(tmp, path) < 0) {
        rc = -errno;
        unlink(tmp);
        goto out;
    }
    char dir[1200];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) {
        *slash = 0;
        int dfd = open(slash == dir ? "/" : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
    }
out:
    memset(text, 0, len);
    free(text);
    return rc;
}
