/* nodekeys.h: the control plane's per-node agent keys: a table node -> key (or "revoked"), its
 * text file (DATA_DIR/node_keys, mode 0600), and new keys from the kernel's random source.
 *
 * A node with a key must authenticate with that key (the HMAC handshake of shared/PROTOCOL.md,
 * keyed by the node key instead of the cluster token), so that no other credential can speak
 * for that node; a revoked node is refused until it gets a new key. Pure except for
 * nodekeys_new_key (getrandom), nodekeys_load and nodekeys_save (file I/O: call them off the
 * event loop, or at start-up). Never logs.
 *
 * File format, one line per node, '#' lines and blank lines ignored:
 *     tide-node-keys 1
 *     NODE key CREATED_MS HEX64
 *     NODE revoked CREATED_MS
 * NODE is 1-63 bytes of [A-Za-z0-9._-]; CREATED_MS the unix time in ms the key was issued or
 * revoked at; HEX64 the key, 64 lowercase hex digits (32 random bytes). */
#ifndef TIDE_NODEKEYS_H
#define TIDE_NODEKEYS_H

#include <stddef.h>
#include <stdint.h>

#define NODEKEY_LEN 64               /* hex digits of a key: also the HMAC key's bytes */
#define NODEKEYS_MAX 65536           /* nodes in the table: far above a cluster's nodes */
#define NODEKEYS_MAX_FILE (8u << 20) /* a full table is ~6 MB */

typedef struct nodekey {
    char node[64];
    int revoked;
    int64_t created_ms;
    char key[NODEKEY_LEN + 1]; /* "" when revoked */
} nodekey;

typedef struct nodekeys { /* sorted by node name */
    nodekey *v;
    size_t n, cap;
} nodekeys;

/* Parses the file's text (len bytes, need not be NUL-terminated) into out (initialized here;
 * free with nodekeys_fini, also on error). 0, or -EINVAL with err naming the line and what is
 * wrong ("line 3: node name 'a b' is not 1-63 characters of [A-Za-z0-9._-]"), or -ENOMEM. A
 * node listed twice, more than NODEKEYS_MAX nodes or a text over NODEKEYS_MAX_FILE bytes are
 * errors. */
int nodekeys_parse(const char *text, size_t len, nodekeys *out, char *err, size_t errlen);
/* The table as file text (malloc'd, NUL-terminated, caller frees). 0 or -ENOMEM. */
int nodekeys_format(const nodekeys *k, char **text, size_t *len);
/* The entry of node, or NULL. */
const nodekey *nodekeys_find(const nodekeys *k, const char *node);
/* Sets node's entry (created or replaced): key (NODEKEY_LEN hex digits) or NULL for revoked.
 * 0, -EINVAL (bad node name or key), -ENOSPC (NODEKEYS_MAX nodes) or -ENOMEM. */
int nodekeys_set(nodekeys *k, const char *node, const char *key, int64_t now_ms);
/* A deep copy of src into dst (initialized here). 0 or -ENOMEM (dst then empty). */
int nodekeys_copy(nodekeys *dst, const nodekeys *src);
void nodekeys_fini(nodekeys *k);

/* A new key: 32 bytes from getrandom(2) as 64 lowercase hex digits. 0 or -errno. */
int nodekeys_new_key(char key[NODEKEY_LEN + 1]);
/* A short public id of a key (the first 6 bytes of HMAC-SHA256(key, "tide node key id") in
 * hex) to tell keys apart in listings without showing them. 0 or -EIO. */
int nodekeys_key_id(const char *key, char id[13]);

/* Reads path into out. A missing file is an empty table (0). 0, or -errno / -EINVAL with err
 * naming the file (and line). */
int nodekeys_load(const char *path, nodekeys *out, char *err, size_t errlen);
/* Writes the table to path atomically (PATH.tmp, fsync, rename, fsync of the directory),
 * mode 0600. 0 or -errno. */
int nodekeys_save(const char *path, const nodekeys *k);

#endif
