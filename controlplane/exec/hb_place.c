/* hb_place.c: placement of a new HAProxyBackend replica (node, port, slot); see hb_place.h. */
#include "exec/hb_place.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

long hb_slot_number(const char *prefix, const char *s) {
    size_t pl = strlen(prefix);
    if (strncmp(s, prefix, pl) != 0) return -1;
    s += pl;
    if (!*s || *s == '0') return -1; /* HAProxy numbers template slots from 1, no leading 0 */
    long v = 0;
    for (; *s; s++) {
        if (!isdigit((unsigned char)*s) || v > 100000000) return -1;
        v = v * 10 + (*s - '0');
    }
    return v;
}

int hb_place_node(const wl_target *t, const unsigned char *node_up, const hb_replica_view *reps,
                  size_t n_reps, hb_placement *out, char *why, size_t whylen) {
    const wl_replica_template *r = &t->replica;
    /* the node: fewest replicas among the connected ones */
    int best = -1;
    size_t best_n = 0;
    for (int i = 0; i < t->n_nodes; i++) {
        if (!node_up[i]) continue;
        size_t n = 0;
        for (size_t k = 0; k < n_reps; k++)
            n += strcmp(reps[k].node, t->nodes[i]) == 0;
        long span = (long)r->port_last - r->port_first + 1;
        if ((long)n >= span) continue; /* every port of the node taken */
        if (best < 0 || n < best_n) {
            best = i;
            best_n = n;
        }
    }
    if (best < 0) {
        size_t o = (size_t)snprintf(why, whylen, "no connected node with a free port among");
        for (int i = 0; i < t->n_nodes && o < whylen; i++)
            o += (size_t)snprintf(why + o, whylen - o, "%s%s", i ? ", " : " ", t->nodes[i]);
        return -ENOSPC;
    }
    /* the port: lowest unused on that node */
    int port = -1;
    for (int p = r->port_first; p <= r->port_last && port < 0; p++) {
        int used = 0;
        for (size_t k = 0; k < n_reps && !used; k++)
            used = reps[k].port == p && strcmp(reps[k].node, t->nodes[best]) == 0;
        if (!used) port = p;
    }
    if (port < 0) { /* not reached: the node was chosen with fewer replicas than ports */
        snprintf(why, whylen, "no free port in %d-%d on %s", r->port_first, r->port_last,
                 t->nodes[best]);
        return -ENOSPC;
    }
    out->node = best;
    out->port = port;
    return 0;
}

int hb_place_slot(const wl_target *t, const hb_replica_view *reps, size_t n_reps,
                  const hb_slot_view *slots, size_t n_slots, hb_placement *out, char *why,
                  size_t whylen) {
    /* the slot: lowest-numbered one neither busy nor held by a replica */
    int slot = -1;
    long slot_no = 0;
    size_t total = 0;
    for (size_t s = 0; s < n_slots; s++) {
        long no = hb_slot_number(t->haproxy_prefix, slots[s].server);
        if (no < 0) continue;
        total++;
        if (slots[s].busy) continue;
        int held = 0;
        for (size_t k = 0; k < n_reps && !held; k++)
            held = strcmp(reps[k].slot, slots[s].server) == 0;
        if (held) continue;
        if (slot < 0 || no < slot_no) {
            slot = (int)s;
            slot_no = no;
        }
    }
    if (slot < 0) {
        snprintf(why, whylen, "no free slot %s* in backend %s (%zu slots, all taken)",
                 t->haproxy_prefix, t->name, total);
        return -ENOSPC;
    }
    out->slot = slot;
    return 0;
}

int hb_place(const wl_target *t, const unsigned char *node_up, const hb_replica_view *reps,
             size_t n_reps, const hb_slot_view *slots, size_t n_slots, hb_placement *out, char *why,
             size_t whylen) {
    hb_placement pl;
    int rc = hb_place_node(t, node_up, reps, n_reps, &pl, why, whylen);
    if (rc == 0) rc = hb_place_slot(t, reps, n_reps, slots, n_slots, &pl, why, whylen);
    if (rc == 0) *out = pl;
    return rc;
}
