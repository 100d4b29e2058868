/* fuzz_spool.c: libFuzzer target for the spool's recovery path: the input becomes a segment
 * file (and, from its first bytes, an "acked" file) in a fresh spool directory, which
 * spool_open() must scan without crashing or reading out of bounds, keeping only frames
 * whose CRC holds; every frame it keeps is then read back and the spool appended to. */
#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];

static void write_file(const char *name, const uint8_t *d, size_t n) {
    char p[128];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) return;
    if (n && write(fd, d, n) < 0) n = 0;
    close(fd);
}

/* Empties the spool directory (the spool names its files itself). */
static void empty_dir(void) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.') unlinkat(dirfd(d), de->d_name, 0);
    closedir(d);
}

static void remove_dir(void) {
    empty_dir();
    rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/fuzz_spool.%d", (int)getpid());
        atexit(remove_dir);
    }
    empty_dir();
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) return 0;
    size_t ack_len = size > 0 ? data[0] % 12 : 0;
    if (ack_len > size - (size > 0)) ack_len = size - (size > 0);
    if (size > 0) write_file("acked", data + 1, ack_len);
    size_t off = size > 0 ? 1 + ack_len : 0;
    write_file("seg-00000000000000000001.spool", data + off, size - off);
    spool *sp = NULL;
    char err[256];
    if (spool_open(&sp, dir, 1 << 20, err, sizeof err) == 0) {
        uint64_t after = 0, seq;
        void *frame;
        size_t len;
        int guard = 0;
        while (guard++ < 10000 && spool_read_next(sp, after, &seq, &frame, &len) == 1) {
            free(frame);
            after = seq;
        }
        spool_stats st;
        spool_get_stats(sp, &st);
        spool_append(sp, st.last_seq + 1, "x", 1, err, sizeof err);
        spool_ack(sp, st.last_seq);
        spool_close(sp);
    }
    return 0;
}
