/* fuzz_cgroup_parse.c: libFuzzer target for every cgroup and /proc text parser, the
 * mountinfo parser and the cgroup path classifier. The first byte picks the parser; the rest
 * is the file's text (not NUL-terminated, so ASan catches any read past the end). */
#include "collect/cgroup_discover.h"
#include "collect/cgroup_parse.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int count_fn(void *ctx, int id, const char *ctl, const char *path) {
    (void)id;
    *(size_t *)ctx += strlen(ctl) + strlen(path);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    unsigned which = data[0] % 11;
    size_t n = size - 1;
    char *buf = malloc(n ? n : 1);
    if (!buf) return 0;
    memcpy(buf, data + 1, n);
    char err[160];
    uint64_t v;
    cgp_cpu_stat cs;
    cgp_mem_stat ms;
    cgp_psi psi;
    cgp_proc_stat ps;
    cgp_meminfo mi;
    cgp_loadavg la;
    size_t acc = 0;
    char path[128];
    switch (which) {
    case 0:
        cgp_parse_u64(buf, n, "cpuacct.usage", &v, err, sizeof err);
        break;
    case 1:
        cgp_parse_cpu_stat(buf, n, &cs, err, sizeof err);
        break;
    case 2:
        if (cgp_parse_memory_stat(buf, n, &ms, err, sizeof err) == 0) {
            uint64_t r = 0, i = 0;
            cgp_mem_rss(&ms, &r);
            cgp_mem_inactive_file(&ms, &i);
            (void)cgp_working_set(r, i);
        }
        break;
    case 3:
        cgp_parse_psi(buf, n, &psi, err, sizeof err);
        break;
    case 4:
        cgp_parse_proc_cgroup(buf, n, count_fn, &acc, err, sizeof err);
        break;
    case 5:
        cgp_proc_cgroup_path(buf, n, "memory", path, sizeof path, err, sizeof err);
        break;
    case 6:
        cgp_parse_proc_stat(buf, n, &ps, err, sizeof err);
        break;
    case 7:
        cgp_parse_meminfo(buf, n, &mi, err, sizeof err);
        break;
    case 8:
        cgp_parse_loadavg(buf, n, &la, err, sizeof err);
        break;
    case 9: {
        static cgd_mounts m;
        if (cgd_parse_mountinfo(buf, n, &m, err, sizeof err) == 0) (void)cgd_primary(&m);
        break;
    }
    case 10: {
        /* A cgroup path (NUL-terminated here, as discovery passes it). */
        char *rel = malloc(n + 1);
        if (!rel) break;
        memcpy(rel, buf, n);
        rel[n] = '\0';
        cgd_info info;
        cgd_classify(rel, &info);
        const char *pat[] = {"/kubepods/*", "*scope"};
        (void)cgd_filter(rel, pat, 1, pat + 1, 1);
        free(rel);
        break;
    }
    }
    free(buf);
    return 0;
}
