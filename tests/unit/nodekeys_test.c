/* nodekeys_test.c: the per-node key table (controlplane/agents/nodekeys.c): set, find, the
 * file text round trip, every refusal of the parser with its line, save/load with mode 0600. */
#include "test.h"
#include "agents/nodekeys.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define K1 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define K2 "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"

TEST(nodekeys_set_find_format_parse) {
    nodekeys k = {0};
    T_EQ_INT(nodekeys_set(&k, "node-b", K1, 1000), 0);
    T_EQ_INT(nodekeys_set(&k, "node-a", K2, 2000), 0);
    T_EQ_INT(nodekeys_set(&k, "node-c", NULL, 3000), 0);
    T_EQ_INT(nodekeys_set(&k, "node-b", K2, 4000), 0); /* replaced */
    T_EQ_INT((int)k.n, 3);
    T_EQ_STR(k.v[0].node, "node-a"); /* sorted */
    const nodekey *b = nodekeys_find(&k, "node-b");
    T_ASSERT(b && !b->revoked && b->created_ms == 4000);
    T_EQ_STR(b->key, K2);
    T_ASSERT(nodekeys_find(&k, "node-c")->revoked);
    T_ASSERT(!nodekeys_find(&k, "node-d"));
    T_EQ_INT(nodekeys_set(&k, "bad name", K1, 1), -EINVAL);
    T_EQ_INT(nodekeys_set(&k, "x", "0123", 1), -EINVAL);
    T_EQ_INT(nodekeys_set(&k, "x",
                          "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef", 1),
             -EINVAL); /* uppercase is not what we write */
    char *text;
    size_t len;
    T_EQ_INT(nodekeys_format(&k, &text, &len), 0);
    T_EQ_STR(text, "tide-node-keys 1\nnode-a key 2000 " K2 "\nnode-b key 4000 " K2
                   "\nnode-c revoked 3000\n");
    nodekeys back;
    char err[200];
    T_EQ_INT(nodekeys_parse(text, len, &back, err, sizeof err), 0);
    T_EQ_INT((int)back.n, 3);
    T_EQ_STR(nodekeys_find(&back, "node-b")->key, K2);
    T_ASSERT(nodekeys_find(&back, "node-c")->revoked);
    free(text);
    nodekeys_fini(&back);
    nodekeys_fini(&k);
}

static void refused(const char *text, const char *want) {
    nodekeys k;
    char err[200] = "";
    int rc = nodekeys_parse(text, strlen(text), &k, err, sizeof err);
    nodekeys_fini(&k);
    if (rc != -EINVAL || !strstr(err, want)) {
        fprintf(stderr, "parse of %s: rc %d, err '%s', wanted '%s'\n", text, rc, err, want);
        T_ASSERT(0);
    }
}

TEST(nodekeys_parse_refusals) {
    nodekeys k;
    char err[200];
    T_EQ_INT(nodekeys_parse("", 0, &k, err, sizeof err), 0);
    T_EQ_INT((int)k.n, 0);
    nodekeys_fini(&k);
    T_EQ_INT(nodekeys_parse("# c\n\ntide-node-keys 1\n# x\n", 22, &k, err, sizeof err), 0);
    nodekeys_fini(&k);
    refused("tide-node-keys 2\n", "line 1: expected the header");
    refused("a key 1 " K1 "\n", "line 1: expected the header");
    refused("tide-node-keys 1\na b c\n", "line 2: node a: created time");
    refused("tide-node-keys 1\na key 12 " K1 " extra\n", "line 2: expected NODE");
    refused("tide-node-keys 1\na/b key 1 " K1 "\n", "line 2: node name 'a/b'");
    refused("tide-node-keys 1\na key 1 0123\n", "line 2: node a: expected");
    refused("tide-node-keys 1\na revoked 1 " K1 "\n", "line 2: node a: expected");
    refused("tide-node-keys 1\na key 1 " K1 "\na revoked 2\n", "line 3: node a listed twice");
    refused("tide-node-keys 1\r\n", "line 1: control character");
    refused("tide-node-keys 1\na key -1 " K1 "\n", "created time");
    refused("tide-node-keys 1\na key 1234567890123456789 " K1 "\n", "created time");
}

TEST(nodekeys_save_load_mode_and_key_id) {
    char dir[] = "/tmp/nodekeys_test.XXXXXX";
    T_ASSERT(mkdtemp(dir));
    char path[200];
    snprintf(path, sizeof path, "%s/node_keys", dir);
    nodekeys k = {0}, back;
    char err[300];
    T_EQ_INT(nodekeys_load(path, &back, err, sizeof err), 0); /* missing: empty */
    T_EQ_INT((int)back.n, 0);
    char key[NODEKEY_LEN + 1], key2[NODEKEY_LEN + 1];
    T_EQ_INT(nodekeys_new_key(key), 0);
    T_EQ_INT(nodekeys_new_key(key2), 0);
    T_ASSERT(strlen(key) == NODEKEY_LEN && strcmp(key, key2) != 0);
    T_EQ_INT(nodekeys_set(&k, "n1", key, 5), 0);
    T_EQ_INT(nodekeys_save(path, &k), 0);
    struct stat st;
    T_EQ_INT(stat(path, &st), 0);
    T_EQ_INT((int)(st.st_mode & 0777), 0600);
    T_EQ_INT(nodekeys_load(path, &back, err, sizeof err), 0);
    T_EQ_STR(nodekeys_find(&back, "n1")->key, key);
    char id[13], id2[13];
    T_EQ_INT(nodekeys_key_id(key, id), 0);
    T_EQ_INT(nodekeys_key_id(key2, id2), 0);
    T_ASSERT(strlen(id) == 12 && strcmp(id, id2) != 0 && !strstr(key, id));
    nodekeys_fini(&back);
    FILE *f = fopen(path, "w");
    fputs("tide-node-keys 1\nn1 key x\n", f);
    fclose(f);
    T_EQ_INT(nodekeys_load(path, &back, err, sizeof err), -EINVAL);
    T_ASSERT(strstr(err, path) && strstr(err, "line 2"));
    nodekeys_fini(&back);
    nodekeys_fini(&k);
    unlink(path);
    rmdir(dir);
}
