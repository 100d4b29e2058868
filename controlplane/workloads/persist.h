/* persist.h: the applied workload specs on disk, one <dir>/NAME.yaml each, written atomically
 * (temporary file, fsync, rename) and read back at start. */
#ifndef TIDE_WORKLOADS_PERSIST_H
#define TIDE_WORKLOADS_PERSIST_H

#include <stddef.h>

#define PERSIST_MAX_YAML (1u << 20) /* largest spec text accepted and read back */

/* Writes yaml as <dir>/<name>.yaml, replacing it atomically. 0 or -errno. */
int persist_save(const char *dir, const char *name, const char *yaml);

/* Removes <dir>/<name>.yaml; one that is not there is no error. 0 or -errno. */
int persist_remove(const char *dir, const char *name);

/* Calls fn for each <dir>/NAME.yaml with its path and text (at most PERSIST_MAX_YAML - 1 bytes,
 * NUL-terminated, valid during the call). Unreadable files and a missing dir are skipped. */
typedef void (*persist_load_fn)(void *ctx, const char *path, const char *yaml, size_t len);
void persist_load(const char *dir, persist_load_fn fn, void *ctx);

#endif
