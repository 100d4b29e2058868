/* config.h: table-driven configuration for the daemons: one table of keys (name, type, target
 * offset, default, validator, reloadable, help), loaded from defaults, then a `key = value`
 * file, then command-line flags. Pure: fills err and returns -errno, never logs or exits.
 *
 * File format: one `key = value` per line; `#` starts a comment line; blank lines ignored;
 * values may be wrapped in double quotes. Unknown keys and bad values are errors naming the
 * file, line and key. */
#ifndef TIDE_CONFIG_H
#define TIDE_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum cfg_type {
    CFG_STR,      /* char * (malloc'd, freed by cfg_free) */
    CFG_INT,      /* int64_t */
    CFG_DURATION, /* int64_t milliseconds; accepts 250ms, 5s, 2m, 1h, or a bare number of ms */
    CFG_BYTES,    /* int64_t bytes; accepts 512, 64k, 4M, 1G (powers of 1024) */
    CFG_BOOL,     /* int: true/false/yes/no/on/off/1/0 */
};

/* A validator gets the parsed value's address; returns 0 or -EINVAL with err saying what is
 * wrong with the value (without the key, which the caller adds). */
typedef int (*cfg_validate_fn)(const void *value, char *err, size_t errlen);

typedef struct cfg_key {
    const char *key;
    enum cfg_type type;
    size_t offset;            /* of the target field in the config struct */
    const char *def;          /* default, in the same syntax as the file; NULL = empty string/0 */
    int64_t min, max;         /* numeric bounds (inclusive) when min < max */
    cfg_validate_fn validate; /* extra check, may be NULL */
    int reloadable;           /* may change on SIGHUP without a restart */
    const char *help;         /* one line for --help and the README */
} cfg_key;

#define CFG_END                                                                                    \
    { NULL, CFG_STR, 0, NULL, 0, 0, NULL, 0, NULL }

/* Sets every key to its default. 0 or -errno (a bad default is a programming error, reported). */
int cfg_defaults(const cfg_key *tab, void *target, char *err, size_t errlen);
/* Sets one key from text; `where` ("FILE:LINE" or "--flag") prefixes the error message:
 * "WHERE: unknown key 'x'" or "WHERE: key 'x': <reason>". 0, -ENOENT unknown key, -EINVAL. */
int cfg_set(const cfg_key *tab, void *target, const char *key, const char *value, const char *where,
            char *err, size_t errlen);
/* Loads a file. 0 or -errno with err ("FILE: No such file..." / "FILE:LINE: ..."). */
int cfg_load_file(const cfg_key *tab, void *target, const char *path, char *err, size_t errlen);
/* Loads from an open stream; `name` stands for the file in messages ("NAME:LINE: ..."). */
int cfg_load_stream(const cfg_key *tab, void *target, FILE *f, const char *path, char *err,
                    size_t errlen);
/* What cfg_load_args found besides keys: the caller prints its usage or version. */
enum { CFG_ARGS_HELP = 1, CFG_ARGS_VERSION = 2 };
/* A daemon's command line: defaults, then every `--config FILE` (or --config=FILE) in order,
 * then `--KEY VALUE` / `--KEY=VALUE` flags for any key ('-' may stand for '_'), which override
 * the files wherever they appear. argv[0] is skipped. Returns 0; CFG_ARGS_HELP for --help/-h
 * or CFG_ARGS_VERSION for --version when met before any error (nothing printed); or -errno
 * with err naming the file, line, flag or argument that was wrong. */
int cfg_load_args(const cfg_key *tab, void *target, int argc, char **argv, char *err,
                  size_t errlen);
/* Frees string values; the struct can then be reused. */
void cfg_free(const cfg_key *tab, void *target);
/* Compares two configurations key by key and calls fn for every key whose value differs.
 * Returns the number of differing keys. */
int cfg_diff(const cfg_key *tab, const void *a, const void *b,
             void (*fn)(const cfg_key *k, void *arg), void *arg);
/* Copies one key's value from src to dst (a string is duplicated, the old one freed).
 * 0 or -ENOMEM. */
int cfg_copy_key(const cfg_key *k, void *dst, const void *src);
/* SIGHUP for a daemon: every key whose value differs between running and fresh is either
 * copied into running (reloadable keys; logged "reload: KEY changed" under tag who) or
 * reported as taking effect after a restart. Returns the number of differing keys. */
int cfg_reload(const cfg_key *tab, void *running, const void *fresh, const char *who);
/* Finds a key, NULL if unknown. */
const cfg_key *cfg_find(const cfg_key *tab, const char *key);

/* Common validators. */
int cfg_valid_hostport(const void *value, char *err, size_t errlen); /* "ADDR:PORT" */
int cfg_valid_log_level(const void *value, char *err, size_t errlen);
int cfg_valid_nonempty(const void *value, char *err, size_t errlen);

/* Splits "ADDR:PORT" ("[v6]:PORT" too) into host (buffer) and port. 0 or -EINVAL. */
int cfg_split_hostport(const char *s, char *host, size_t hostlen, int *port);

#endif
