/* cp_module_test.c: the module registry's start order (cp_module_order, cp.h). */
#include "cp.h"
#include "test.h"

#include <errno.h>
#include <string.h>

static int pos(const int *order, int n, int module) {
    for (int k = 0; k < n; k++)
        if (order[k] == module) return k;
    return -1;
}

TEST(cp_module_order_users_start_after_the_prometheus_client) {
    /* the daemon's modules in link order: http sorts before query/prom_module.c */
    const char *names[] = {"http", "k8s", "prometheus", "workloads"};
    const char *after[] = {"prometheus", "", "", "prometheus"};
    int order[4];
    char err[256] = "";
    T_EQ_INT(cp_module_order(names, after, 4, order, err, sizeof err), 0);
    int prom = pos(order, 4, 2);
    T_ASSERT(prom >= 0 && prom < pos(order, 4, 0)); /* before http */
    T_ASSERT(prom < pos(order, 4, 3));              /* before workloads */
    /* otherwise registration order: k8s first, http before workloads */
    T_EQ_INT(order[0], 1);
    T_EQ_INT(order[1], 2);
    T_EQ_INT(order[2], 0);
    T_EQ_INT(order[3], 3);
}

TEST(cp_module_order_lists_and_chains) {
    const char *names[] = {"c", "b", "a", "d"};
    const char *after[] = {" a , b", "a", NULL, ""};
    int order[4];
    char err[256] = "";
    T_EQ_INT(cp_module_order(names, after, 4, order, err, sizeof err), 0);
    T_EQ_INT(order[0], 2); /* a */
    T_EQ_INT(order[1], 1); /* b */
    T_EQ_INT(order[2], 0); /* c */
    T_EQ_INT(order[3], 3); /* d */
}

TEST(cp_module_order_refuses_unknown_names_and_cycles) {
    int order[3];
    char err[256] = "";
    const char *n1[] = {"http", "workloads"};
    const char *a1[] = {"", "prometheus"};
    T_EQ_INT(cp_module_order(n1, a1, 2, order, err, sizeof err), -EINVAL);
    T_ASSERT(strstr(err, "workloads") && strstr(err, "\"prometheus\""));
    const char *n2[] = {"a", "b", "c"};
    const char *a2[] = {"b", "a", ""};
    T_EQ_INT(cp_module_order(n2, a2, 3, order, err, sizeof err), -EINVAL);
    T_EQ_STR(err, "modules in a cycle of after= lists: a b"); /* c is not in it */
    const char *n3[] = {"self"};
    const char *a3[] = {"self"};
    T_EQ_INT(cp_module_order(n3, a3, 1, order, err, sizeof err), -EINVAL);
    /* a name that is a prefix of another is not it */
    const char *n4[] = {"prom", "prometheus"};
    const char *a4[] = {"prometheus", ""};
    T_EQ_INT(cp_module_order(n4, a4, 2, order, err, sizeof err), 0);
    T_EQ_INT(order[0], 1);
}
