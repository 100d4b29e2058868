/* fuzz_tsdb_wal.c: libFuzzer target for WAL replay and salvage: the input is written as the
 * only segment of a fresh data directory, which `tidectl store verify` reads (salvage: every
 * damaged stretch skipped), then the store opens it (strict: a torn tail cut, damage
 * refused). Neither may crash, leak, or read outside the file. */
#include "store/tsdb.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];

static void empty_dir(void) {
    DIR *d = opendir(dir);
    if (!d) abort();
    struct dirent *de;
    char p[400];
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') continue;
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        unlink(p);
    }
    closedir(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/tide-fuzz-wal.XXXXXX");
        if (!mkdtemp(dir)) abort();
    }
    char p[128];
    snprintf(p, sizeof p, "%s/wal-0000000000000000.log", dir);
    FILE *f = fopen(p, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    fclose(f);
    tsdb_salvage_report rep;
    char err[512];
    (void)tsdb_salvage(dir, NULL, NULL, &rep, err, sizeof err);
    tsdb *db;
    tsdb_options o = {.dir = dir, .snapshot_every_s = 3600};
    if (tsdb_open(&db, &o, err, sizeof err) == 0) tsdb_close(db);
    empty_dir();
    return 0;
}
