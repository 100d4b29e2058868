/* config_test.c: shared/config: defaults, file parsing, units, bounds, unknown keys and the
 * error messages that name the key and the line. */
#include "bearer.h"
#include "config.h"
#include "cp.h"
#include "test.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct tcfg {
    char *addr;
    int64_t n, ms, bytes;
    int flag;
};

static const cfg_key tab[] = {
    {"addr", CFG_STR, offsetof(struct tcfg, addr), "127.0.0.1:1", 0, 0, cfg_valid_hostport, 0, "a"},
    {"n", CFG_INT, offsetof(struct tcfg, n), "5", 1, 10, NULL, 0, "n"},
    {"wait", CFG_DURATION, offsetof(struct tcfg, ms), "2s", 0, 0, NULL, 1, "w"},
    {"size", CFG_BYTES, offsetof(struct tcfg, bytes), "4M", 0, 0, NULL, 0, "s"},
    {"flag", CFG_BOOL, offsetof(struct tcfg, flag), "false", 0, 0, NULL, 0, "f"},
    CFG_END,
};

static const char *write_tmp(const char *text) {
    static char path[64];
    snprintf(path, sizeof path, "/tmp/tide-config-test.XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0) return NULL;
    size_t n = strlen(text);
    if (write(fd, text, n) != (ssize_t)n) n = 0;
    close(fd);
    return path;
}

TEST(config_defaults_and_file) {
    struct tcfg c = {0};
    char err[256];
    T_EQ_INT(cfg_defaults(tab, &c, err, sizeof err), 0);
    T_EQ_STR(c.addr, "127.0.0.1:1");
    T_EQ_INT(c.ms, 2000);
    T_EQ_INT(c.bytes, 4 << 20);
    const char *p = write_tmp("# comment\n\n  addr = \"[::1]:7470\"\nn=7\nwait = 250ms\n"
                              "size = 64k\nflag = yes\n");
    T_ASSERT(p);
    T_EQ_INT(cfg_load_file(tab, &c, p, err, sizeof err), 0);
    unlink(p);
    T_EQ_STR(c.addr, "[::1]:7470");
    T_EQ_INT(c.n, 7);
    T_EQ_INT(c.ms, 250);
    T_EQ_INT(c.bytes, 65536);
    T_EQ_INT(c.flag, 1);
    cfg_free(tab, &c);
    T_ASSERT(c.addr == NULL);
}

TEST(config_errors_name_key_and_line) {
    struct tcfg c = {0};
    char err[512], want[512];
    T_EQ_INT(cfg_defaults(tab, &c, err, sizeof err), 0);
    const char *p = write_tmp("n = 3\nbogus = 1\n");
    T_EQ_INT(cfg_load_file(tab, &c, p, err, sizeof err), -ENOENT);
    snprintf(want, sizeof want, "%s:2: unknown key 'bogus'", p);
    T_EQ_STR(err, want);
    unlink(p);
    p = write_tmp("\n\nn = 11\n");
    T_EQ_INT(cfg_load_file(tab, &c, p, err, sizeof err), -EINVAL);
    snprintf(want, sizeof want, "%s:3: key 'n': 11 is out of range [1, 10]", p);
    T_EQ_STR(err, want);
    unlink(p);
    p = write_tmp("wait = soon\n");
    T_EQ_INT(cfg_load_file(tab, &c, p, err, sizeof err), -EINVAL);
    snprintf(want, sizeof want,
             "%s:1: key 'wait': 'soon' is not a duration (e.g. 500ms, 5s, 2m, 1h)", p);
    T_EQ_STR(err, want);
    unlink(p);
    p = write_tmp("addr = nohost\n");
    T_EQ_INT(cfg_load_file(tab, &c, p, err, sizeof err), -EINVAL);
    snprintf(want, sizeof want, "%s:1: key 'addr': 'nohost' is not ADDR:PORT (e.g. 127.0.0.1:7470)",
             p);
    T_EQ_STR(err, want);
    unlink(p);
    p = write_tmp("just words\n");
    T_EQ_INT(cfg_load_file(tab, &c, p, err, sizeof err), -EINVAL);
    snprintf(want, sizeof want, "%s:1: expected 'key = value', got 'just words'", p);
    T_EQ_STR(err, want);
    unlink(p);
    T_EQ_INT(cfg_set(tab, &c, "flag", "maybe", "--flag", err, sizeof err), -EINVAL);
    T_EQ_STR(err, "--flag: key 'flag': 'maybe' is not a boolean (true/false)");
    T_EQ_INT(cfg_load_file(tab, &c, "/nonexistent/x.conf", err, sizeof err), -ENOENT);
    T_EQ_STR(err, "/nonexistent/x.conf: No such file or directory");
    /* a failed set leaves the old value */
    T_EQ_STR(c.addr, "127.0.0.1:1");
    cfg_free(tab, &c);
}

TEST(config_split_hostport) {
    char h[64];
    int port;
    T_EQ_INT(cfg_split_hostport("10.0.0.1:80", h, sizeof h, &port), 0);
    T_EQ_STR(h, "10.0.0.1");
    T_EQ_INT(port, 80);
    T_EQ_INT(cfg_split_hostport("[fe80::1]:7470", h, sizeof h, &port), 0);
    T_EQ_STR(h, "fe80::1");
    T_EQ_INT(cfg_split_hostport("a:b:1", h, sizeof h, &port), -EINVAL);
    T_EQ_INT(cfg_split_hostport("host:70000", h, sizeof h, &port), -EINVAL);
    T_EQ_INT(cfg_split_hostport(":80", h, sizeof h, &port), -EINVAL);
}

static int diffs_seen;
static void count_diff(const cfg_key *k, void *arg) {
    (void)k;
    (void)arg;
    diffs_seen++;
}

TEST(config_diff_and_copy) {
    struct tcfg a = {0}, b = {0};
    char err[256];
    T_EQ_INT(cfg_defaults(tab, &a, err, sizeof err), 0);
    T_EQ_INT(cfg_defaults(tab, &b, err, sizeof err), 0);
    T_EQ_INT(cfg_diff(tab, &a, &b, NULL, NULL), 0);
    T_EQ_INT(cfg_set(tab, &b, "wait", "9s", "t", err, sizeof err), 0);
    T_EQ_INT(cfg_set(tab, &b, "addr", "10.0.0.1:9", "t", err, sizeof err), 0);
    diffs_seen = 0;
    T_EQ_INT(cfg_diff(tab, &a, &b, count_diff, NULL), 2);
    T_EQ_INT(diffs_seen, 2);
    T_EQ_INT(cfg_copy_key(cfg_find(tab, "addr"), &a, &b), 0);
    T_EQ_STR(a.addr, "10.0.0.1:9");
    T_EQ_INT(cfg_diff(tab, &a, &b, NULL, NULL), 1);
    cfg_free(tab, &a);
    cfg_free(tab, &b);
}

/* SIGHUP: the reloadable key (wait) is applied, the other (addr) only reported. */
TEST(config_reload_applies_only_reloadable_keys) {
    struct tcfg run = {0}, fresh = {0};
    char err[256];
    T_EQ_INT(cfg_defaults(tab, &run, err, sizeof err), 0);
    T_EQ_INT(cfg_defaults(tab, &fresh, err, sizeof err), 0);
    T_EQ_INT(cfg_set(tab, &fresh, "wait", "9s", "t", err, sizeof err), 0);
    T_EQ_INT(cfg_set(tab, &fresh, "addr", "10.0.0.1:9", "t", err, sizeof err), 0);
    T_EQ_INT(cfg_reload(tab, &run, &fresh, "test"), 2);
    T_EQ_INT(run.ms, 9000);
    T_EQ_STR(run.addr, "127.0.0.1:1");
    T_EQ_INT(cfg_reload(tab, &run, &fresh, "test"), 1); /* addr still differs */
    cfg_free(tab, &run);
    cfg_free(tab, &fresh);
}

TEST(config_load_args_file_then_flags) {
    struct tcfg c = {0};
    char err[256] = "";
    const char *p = write_tmp("n = 3\nwait = 1s\n");
    T_ASSERT(p);
    char path[64];
    snprintf(path, sizeof path, "%s", p);
    /* flags win over the file wherever they stand */
    char *argv[] = {"prog", "--n=9", "--config", path, "--size", "1k", NULL};
    int rc = cfg_load_args(tab, &c, 6, argv, err, sizeof err);
    unlink(path);
    T_EQ_INT(rc, 0);
    T_EQ_INT(c.n, 9);
    T_EQ_INT(c.ms, 1000);
    T_EQ_INT(c.bytes, 1024);
    T_EQ_STR(c.addr, "127.0.0.1:1");
    cfg_free(tab, &c);

    char *help[] = {"prog", "--n", "2", "-h", NULL};
    T_EQ_INT(cfg_load_args(tab, &c, 4, help, err, sizeof err), CFG_ARGS_HELP);
    cfg_free(tab, &c);
    char *version[] = {"prog", "--version", NULL};
    T_EQ_INT(cfg_load_args(tab, &c, 2, version, err, sizeof err), CFG_ARGS_VERSION);
    cfg_free(tab, &c);

    char *unknown[] = {"prog", "--nn=1", NULL};
    T_EQ_INT(cfg_load_args(tab, &c, 2, unknown, err, sizeof err), -EINVAL);
    T_EQ_STR(err, "unknown option '--nn' (see --help)");
    cfg_free(tab, &c);
    char *novalue[] = {"prog", "--n", NULL};
    T_EQ_INT(cfg_load_args(tab, &c, 2, novalue, err, sizeof err), -EINVAL);
    T_EQ_STR(err, "option '--n' needs a value");
    cfg_free(tab, &c);
    char *range[] = {"prog", "--n", "11", NULL};
    T_EQ_INT(cfg_load_args(tab, &c, 3, range, err, sizeof err), -EINVAL);
    T_EQ_STR(err, "--n: key 'n': 11 is out of range [1, 10]");
    cfg_free(tab, &c);
    char *stray[] = {"prog", "n=1", NULL};
    T_EQ_INT(cfg_load_args(tab, &c, 2, stray, err, sizeof err), -EINVAL);
    T_EQ_STR(err, "unexpected argument 'n=1' (see --help)");
    cfg_free(tab, &c);
}

/* bearer_read: trailing newline trimmed; empty, missing and too long files named. */
TEST(bearer_read_trims_and_refuses) {
    char tok[16], err[256];
    const char *p = write_tmp("abc123\n");
    T_EQ_INT(bearer_read(p, "test token file", tok, sizeof tok, err, sizeof err), 0);
    T_EQ_STR(tok, "abc123");
    unlink(p);
    p = write_tmp("\n");
    T_EQ_INT(bearer_read(p, "test token file", tok, sizeof tok, err, sizeof err), -EINVAL);
    T_ASSERT(strstr(err, "is empty") != NULL);
    unlink(p);
    p = write_tmp("0123456789abcdefXYZ");
    T_EQ_INT(bearer_read(p, "test token file", tok, sizeof tok, err, sizeof err), -EFBIG);
    T_ASSERT(strstr(err, "longer than 15 bytes") != NULL);
    unlink(p);
    p = write_tmp("0123456789abcde\n"); /* exactly fits once the newline goes */
    T_EQ_INT(bearer_read(p, "test token file", tok, sizeof tok, err, sizeof err), 0);
    T_EQ_STR(tok, "0123456789abcde");
    unlink(p);
    T_EQ_INT(bearer_read("/nonexistent/tok", "test token file", tok, sizeof tok, err, sizeof err),
             -ENOENT);
    T_ASSERT(strstr(err, "test token file /nonexistent/tok") != NULL);
}

/* Issue 18: an unbalanced quote in a config value was accepted, `retention_raw 0` silently
 * meant 48 h, and `--prometheus file://...` failed only after the listeners were bound. */
TEST(config_unbalanced_quote_zero_retention_and_file_url_are_refused) {
    struct tcfg c = {0};
    char err[512];
    T_EQ_INT(cfg_defaults(tab, &c, err, sizeof err), 0);
    const char *p = write_tmp("addr = \"127.0.0.1:2\n");
    T_EQ_INT(cfg_load_file(tab, &c, p, err, sizeof err), -EINVAL);
    T_ASSERT(strstr(err, ":1: unbalanced quote in the value of 'addr'") != NULL);
    unlink(p);
    p = write_tmp("addr = '127.0.0.1:3'\n");
    T_EQ_INT(cfg_load_file(tab, &c, p, err, sizeof err), 0);
    T_EQ_STR(c.addr, "127.0.0.1:3");
    unlink(p);
    cfg_free(tab, &c);
    struct cp_config cc;
    char *a1[] = {"tide-controlplane", "--retention-raw", "0", NULL};
    T_EQ_INT(cp_config_load(&cc, 3, a1, err, sizeof err), -EINVAL);
    cp_config_free(&cc);
    T_ASSERT(strstr(err, "below the minimum 60000 ms") != NULL);
    char *a2[] = {"tide-controlplane", "--prometheus", "file:///tmp/x", NULL};
    T_EQ_INT(cp_config_load(&cc, 3, a2, err, sizeof err), -EINVAL);
    cp_config_free(&cc);
    T_ASSERT(strstr(err, "not an http:// or https:// URL") != NULL);
}
