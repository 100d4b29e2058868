/* persist.c: applied workload specs on disk (see persist.h). */
#include "workloads/persist.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int persist_save(const char *dir, const char *name, const char *yaml) {
    char path[1200], tmp[1210];
    snprintf(path, sizeof path, "%s/%s.yaml", dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) return -errno;
    size_t len = strlen(yaml), off = 0;
    while (off < len) {
        ssize_t n = write(fd, yaml + off, len - off);
        if (n < 0) {
            if (errno == EINTR) continue;
            int e = -errno;
            close(fd);
            unlink(tmp);
            return e;
        }
        off += (size_t)n;
    }
    if (fsync(fd) < 0 || close(fd) < 0) {
        int e = -errno;
        unlink(tmp);
        return e;
    }
    if (rename(tmp, path) < 0) {
        int e = -errno;
        unlink(tmp);
        return e;
    }
    return 0;
}

int persist_remove(const char *dir, const char *name) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s.yaml", dir, name);
    if (unlink(path) < 0 && errno != ENOENT) return -errno;
    return 0;
}

void persist_load(const char *dir, persist_load_fn fn, void *ctx) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l < 6 || strcmp(de->d_name + l - 5, ".yaml") != 0) continue;
        char path[1400];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        FILE *f = fopen(path, "rb");
        if (!f) continue;
        char *buf = malloc(PERSIST_MAX_YAML);
        size_t n = buf ? fread(buf, 1, PERSIST_MAX_YAML - 1, f) : 0;
        fclose(f);
        if (!buf) continue;
        buf[n] = 0;
        fn(ctx, path, buf, n);
        free(buf);
    }
    closedir(d);
}
