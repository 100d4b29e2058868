/* ring.c: rendezvous hashing of workloads over members (see ring.h). */
#include "cluster/ring.h"

#include <string.h>

/* FNV-1a over member, a separator and workload, then splitmix64's finalizer: FNV alone
 * spreads short, similar names poorly in the high bits. */
uint64_t ring_score(const char *member, const char *workload) {
    uint64_t h = 1469598103934665603ull;
    for (const unsigned char *p = (const unsigned char *)member; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    h = (h ^ 0xffu) * 1099511628211ull;
    for (const unsigned char *p = (const unsigned char *)workload; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    h ^= h >> 31;
    return h;
}

int ring_owner(const char *const *members, int n, const char *workload) {
    int best = -1;
    uint64_t bs = 0;
    for (int i = 0; i < n; i++) {
        uint64_t s = ring_score(members[i], workload);
        if (best < 0 || s > bs || (s == bs && strcmp(members[i], members[best]) < 0)) {
            best = i;
            bs = s;
        }
    }
    return best;
}
