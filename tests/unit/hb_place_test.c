/* hb_place_test.c: placement of new HAProxyBackend replicas (exec/hb_place.h). */
#include "test.h"
#include "exec/hb_place.h"

#include <errno.h>
#include <stdio.h>

static wl_target *target3(void) {
    static wl_target t;
    memset(&t, 0, sizeof t);
    t.kind = WL_TARGET_HAPROXY_BACKEND;
    snprintf(t.name, sizeof t.name, "web");
    snprintf(t.haproxy_prefix, sizeof t.haproxy_prefix, "r");
    t.n_nodes = 3;
    snprintf(t.nodes[0], WL_NAME_MAX, "a");
    snprintf(t.nodes[1], WL_NAME_MAX, "b");
    snprintf(t.nodes[2], WL_NAME_MAX, "c");
    t.replica.port_first = 9000;
    t.replica.port_last = 9002;
    return &t;
}

TEST(hb_slot_number_parses_template_names) {
    T_EQ_INT(hb_slot_number("r", "r12"), 12);
    T_EQ_INT(hb_slot_number("r", "r1"), 1);
    T_EQ_INT(hb_slot_number("r", "r"), -1);
    T_EQ_INT(hb_slot_number("r", "r01"), -1);
    T_EQ_INT(hb_slot_number("r", "rx1"), -1);
    T_EQ_INT(hb_slot_number("r", "web1"), -1);
    T_EQ_INT(hb_slot_number("web", "web7"), 7);
    T_EQ_INT(hb_slot_number("r", "r99999999999999999999"), -1);
}

TEST(hb_place_least_loaded_connected_node_lowest_port_and_slot) {
    wl_target *t = target3();
    unsigned char up[3] = {1, 1, 1};
    hb_replica_view reps[] = {{"a", 9000, "r2"}, {"a", 9001, "r1"}, {"b", 9000, "r10"}};
    hb_slot_view slots[] = {{"r1", 0}, {"r2", 0}, {"r10", 0}, {"r3", 0}, {"r11", 0}, {"other", 0}};
    hb_placement pl;
    char why[200];
    /* c has none: c, port 9000, slot r3 (lowest free number, not r11) */
    T_EQ_INT(hb_place(t, up, reps, 3, slots, 6, &pl, why, sizeof why), 0);
    T_EQ_INT(pl.node, 2);
    T_EQ_INT(pl.port, 9000);
    T_EQ_STR(slots[pl.slot].server, "r3");
    /* c down: b (1 replica) before a (2); b's 9000 is taken */
    up[2] = 0;
    T_EQ_INT(hb_place(t, up, reps, 3, slots, 6, &pl, why, sizeof why), 0);
    T_EQ_INT(pl.node, 1);
    T_EQ_INT(pl.port, 9001);
    /* r3 busy (something else holds it): r11 */
    slots[3].busy = 1;
    T_EQ_INT(hb_place(t, up, reps, 3, slots, 6, &pl, why, sizeof why), 0);
    T_EQ_STR(slots[pl.slot].server, "r11");
    /* every slot taken */
    slots[4].busy = 1;
    T_EQ_INT(hb_place(t, up, reps, 3, slots, 6, &pl, why, sizeof why), -ENOSPC);
    T_ASSERT(strstr(why, "no free slot r* in backend web (5 slots, all taken)") != NULL);
}

TEST(hb_place_full_nodes_and_no_connected_node) {
    wl_target *t = target3();
    unsigned char up[3] = {1, 1, 0};
    /* a holds all 3 ports, b has 9000 and 9002: b gets 9001 although a sorts first */
    hb_replica_view reps[] = {
        {"a", 9000, ""}, {"a", 9001, ""}, {"a", 9002, ""}, {"b", 9000, ""}, {"b", 9002, ""}};
    hb_slot_view slots[] = {{"r1", 0}};
    hb_placement pl;
    char why[200];
    T_EQ_INT(hb_place(t, up, reps, 5, slots, 1, &pl, why, sizeof why), 0);
    T_EQ_INT(pl.node, 1);
    T_EQ_INT(pl.port, 9001);
    up[1] = 0;
    T_EQ_INT(hb_place(t, up, reps, 5, slots, 1, &pl, why, sizeof why), -ENOSPC);
    T_EQ_STR(why, "no connected node with a free port among a, b, c");
    up[0] = up[1] = up[2] = 0;
    T_EQ_INT(hb_place(t, up, NULL, 0, slots, 1, &pl, why, sizeof why), -ENOSPC);
}
