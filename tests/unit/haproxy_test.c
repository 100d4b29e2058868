/* haproxy_test.c: HAProxy runtime API reply parsers on output captured from HAProxy 2.6.12. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actions/haproxy.h"
#include "fixture.h"
#include "test.h"

TEST(haproxy_stat_real_output) {
    size_t len;
    char *t = fixture_slurp("node_actions/show_stat_load.csv", &len), err[256];
    T_ASSERT(t);
    haproxy_server_stat st;
    T_EQ_INT(haproxy_stat_find(t, len, "be", "s1", &st, err, sizeof err), 0);
    T_EQ_INT(st.scur, 1);
    T_EQ_STR(st.status, "UP");
    T_ASSERT(st.stot >= 1);
    T_EQ_INT(haproxy_stat_find(t, len, "be", "BACKEND", &st, err, sizeof err), 0);
    T_EQ_INT(st.scur, 3);
}

TEST(haproxy_stat_drain_and_unknown) {
    size_t len;
    char *t = fixture_slurp("node_actions/show_stat_drain.csv", &len), err[256];
    T_ASSERT(t);
    haproxy_server_stat st;
    T_EQ_INT(haproxy_stat_find(t, len, "be", "s1", &st, err, sizeof err), 0);
    T_EQ_STR(st.status, "DRAIN");
    T_EQ_INT(st.scur, 0);
    T_EQ_INT(haproxy_stat_find(t, len, "be", "s9", &st, err, sizeof err), -ENOENT);
    T_EQ_STR(err, "haproxy server 's9' not found in backend 'be'");
    T_EQ_INT(haproxy_stat_find(t, len, "nope", "s1", &st, err, sizeof err), -ENOENT);
    T_EQ_STR(err, "haproxy backend 'nope' not found");
}

TEST(haproxy_stat_bad_input) {
    char err[256];
    haproxy_server_stat st;
    T_EQ_INT(haproxy_stat_find("No such proxy.\n\n", 16, "be", "s1", &st, err, sizeof err),
             -EINVAL);
    T_EQ_INT(haproxy_stat_find("", 0, "be", "s1", &st, err, sizeof err), -EINVAL);
    const char *noscur = "# pxname,svname,status\nbe,s1,UP\n";
    T_EQ_INT(haproxy_stat_find(noscur, strlen(noscur), "be", "s1", &st, err, sizeof err), -EINVAL);
    T_EQ_STR(err, "show stat: header lacks scur");
    const char *badscur = "# pxname,svname,scur,status\nbe,s1,x,UP\n";
    T_EQ_INT(haproxy_stat_find(badscur, strlen(badscur), "be", "s1", &st, err, sizeof err),
             -EINVAL);
    T_EQ_STR(err, "show stat: line 2 (be/s1): bad scur");
    const char *shortrow = "# pxname,svname,scur,status\nbe,s1\n";
    T_EQ_INT(haproxy_stat_find(shortrow, strlen(shortrow), "be", "s1", &st, err, sizeof err),
             -EINVAL);
    /* quoted fields holding commas; columns found by name in any order */
    const char *q = "# status,scur,svname,pxname\r\n\"UP, sort of\",7,\"s,1\",be\r\n";
    T_EQ_INT(haproxy_stat_find(q, strlen(q), "be", "s,1", &st, err, sizeof err), 0);
    T_EQ_INT(st.scur, 7);
    T_EQ_STR(st.status, "UP, sort of");
}

TEST(haproxy_servers_state_real_output) {
    size_t len;
    char *t = fixture_slurp("node_actions/show_servers_state.txt", &len), err[256];
    T_ASSERT(t);
    haproxy_server_state st;
    T_EQ_INT(haproxy_servers_state_find(t, len, "be", "s2", &st, err, sizeof err), 0);
    T_EQ_INT(st.op_state, 2);
    T_EQ_INT(st.admin_state, 0);
    T_EQ_INT(haproxy_servers_state_find(t, len, "be", "zz", &st, err, sizeof err), -ENOENT);
    T_EQ_INT(haproxy_servers_state_find("1\n3 be 1 s1\n", 12, "be", "s1", &st, err, sizeof err),
             -EINVAL);
}

TEST(haproxy_set_reply) {
    char err[256];
    T_EQ_INT(haproxy_set_reply_check("\n", 1, err, sizeof err), 0);
    T_EQ_INT(haproxy_set_reply_check("", 0, err, sizeof err), 0);
    T_EQ_INT(haproxy_set_reply_check("No such server.\n\n", 17, err, sizeof err), -ENOENT);
    T_EQ_STR(err, "haproxy: No such server.");
    T_EQ_INT(haproxy_set_reply_check("Require 'backend/server'.\n", 26, err, sizeof err), -EINVAL);
}

/* replies of HAProxy 2.6.12 to two commands sent at once ("set ... state ready; show stat") */
TEST(haproxy_reply_split_two_commands) {
    size_t fl = 99, ro = 99;
    const char *ok = "\n# pxname,svname\nweb,r1\n\n"; /* set answered nothing */
    T_EQ_INT(haproxy_reply_split(ok, strlen(ok), &fl, &ro), 0);
    T_EQ_INT((int)fl, 0);
    T_EQ_INT((int)ro, 1);
    T_EQ_STR(ok + ro, "# pxname,svname\nweb,r1\n\n");
    const char *bad = "No such server.\n\n# pxname,svname\n\n";
    T_EQ_INT(haproxy_reply_split(bad, strlen(bad), &fl, &ro), 0);
    T_EQ_INT((int)fl, 16); /* "No such server.\n" */
    T_EQ_STR(bad + ro, "# pxname,svname\n\n");
    char err[256];
    T_EQ_INT(haproxy_set_reply_check(bad, fl, err, sizeof err), -ENOENT);
    const char *both = "no need to change the addr\n\n\n"; /* addr; state: both answered */
    T_EQ_INT(haproxy_reply_split(both, strlen(both), &fl, &ro), 0);
    T_EQ_INT((int)fl, 27);
    T_EQ_STR(both + ro, "\n");
    T_EQ_INT(haproxy_reply_split("cut short", 9, &fl, &ro), -EINVAL);
    T_EQ_INT(haproxy_reply_split("", 0, &fl, &ro), -EINVAL);
}

TEST(haproxy_server_ref) {
    char be[HAPROXY_NAME_MAX], srv[HAPROXY_NAME_MAX], err[256];
    T_EQ_INT(haproxy_parse_server_ref("web/s3", be, srv, err, sizeof err), 0);
    T_EQ_STR(be, "web");
    T_EQ_STR(srv, "s3");
    T_EQ_INT(haproxy_parse_server_ref("web", be, srv, err, sizeof err), -EINVAL);
    T_EQ_STR(err, "haproxy server 'web' is not BACKEND/SERVER");
    T_EQ_INT(haproxy_parse_server_ref("/s1", be, srv, err, sizeof err), -EINVAL);
    T_EQ_INT(haproxy_parse_server_ref("be/", be, srv, err, sizeof err), -EINVAL);
    T_EQ_INT(haproxy_parse_server_ref("be/s1; shutdown sessions", be, srv, err, sizeof err),
             -EINVAL);
    T_EQ_INT(haproxy_parse_server_ref("be/a/b", be, srv, err, sizeof err), -EINVAL);
}

/* `show servers state web` of HAProxy 2.6.12 with `server-template r 1-4 127.0.0.1:1 disabled`
 * after `set server web/r2 addr 127.0.0.1 port 8081` and `state ready` */
TEST(haproxy_servers_state_list_template) {
    const char *t =
        "1\n"
        "# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight "
        "srv_iweight srv_time_since_last_change srv_check_status srv_check_result "
        "srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id "
        "srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr "
        "srv_agent_port\n"
        "3 web 1 r1 127.0.0.1 0 5 1 1 1 1 0 0 14 0 0 0 - 1 - 0 0 - - 0\n"
        "3 web 2 r2 127.0.0.1 2 4 1 1 0 1 0 2 6 0 0 0 - 8081 - 0 0 - - 0\n"
        "3 web 3 r3 127.0.0.1 0 5 1 1 1 1 0 0 14 0 0 0 - 1 - 0 0 - - 0\n"
        "4 api 1 a1 10.0.0.1 2 0 1 1 1 1 0 0 14 0 0 0 - 80 - 0 0 - - 0\n\n";
    haproxy_slot s[4];
    int n;
    char err[256];
    T_EQ_INT(haproxy_servers_state_list(t, strlen(t), "web", s, 4, &n, err, sizeof err), 0);
    T_EQ_INT(n, 3);
    T_EQ_STR(s[1].name, "r2");
    T_EQ_STR(s[1].addr, "127.0.0.1");
    T_EQ_INT(s[1].port, 8081);
    T_EQ_INT(s[1].op_state, 2);
    T_EQ_INT(s[0].admin_state, 5);
    T_EQ_INT(haproxy_servers_state_list(t, strlen(t), "web", s, 2, &n, err, sizeof err), -E2BIG);
    T_EQ_INT(haproxy_servers_state_list(t, strlen(t), "zz", s, 4, &n, err, sizeof err), -ENOENT);
    T_EQ_STR(err, "haproxy backend 'zz' not found");
    const char *nob = "Can't find backend.\n";
    T_EQ_INT(haproxy_servers_state_list(nob, strlen(nob), "zz", s, 4, &n, err, sizeof err),
             -ENOENT);
    T_EQ_INT(haproxy_servers_state_list("1\n", 2, "web", s, 4, &n, err, sizeof err), -EINVAL);
    const char *bad = "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state "
                      "srv_port\n3 web 1 r1 127.0.0.1 x 5 1\n";
    T_EQ_INT(haproxy_servers_state_list(bad, strlen(bad), "web", s, 4, &n, err, sizeof err),
             -EINVAL);
}

TEST(haproxy_stat_proxies_real_output) {
    size_t len;
    char *t = fixture_slurp("node_actions/show_stat_load.csv", &len), err[256];
    T_ASSERT(t);
    haproxy_proxy_stat p[4];
    int n, seen;
    T_EQ_INT(haproxy_stat_proxies(t, len, p, 4, &n, &seen, err, sizeof err), 0);
    T_EQ_INT(n, 2);
    T_EQ_INT(seen, 2);
    T_EQ_STR(p[0].name, "fe");
    T_EQ_INT(p[0].backend, 0);
    T_EQ_INT((long)p[0].req_tot, 1037);
    T_EQ_INT((long)p[0].scur, 3);
    T_EQ_INT((long)p[0].qcur, -1); /* a frontend has no queue: HAProxy leaves it empty */
    T_EQ_STR(p[1].name, "be");
    T_EQ_INT(p[1].backend, 1);
    T_EQ_INT((long)p[1].req_tot, 1033);
    T_EQ_INT((long)p[1].qcur, 0);
    T_EQ_INT((long)p[1].hrsp_5xx, 0);
    /* too small an array: the first rows, and how many there were */
    T_EQ_INT(haproxy_stat_proxies(t, len, p, 1, &n, &seen, err, sizeof err), 0);
    T_EQ_INT(n, 1);
    T_EQ_INT(seen, 2);
}

TEST(haproxy_stat_proxies_bad_input) {
    char err[256];
    haproxy_proxy_stat p[4];
    int n, seen;
    T_EQ_INT(haproxy_stat_proxies("", 0, p, 4, &n, &seen, err, sizeof err), -EINVAL);
    T_EQ_STR(err, "show stat: empty reply (no header)");
    const char *nohdr = "Unknown command.\n";
    T_EQ_INT(haproxy_stat_proxies(nohdr, strlen(nohdr), p, 4, &n, &seen, err, sizeof err), -EINVAL);
    const char *nosv = "# pxname,scur\nfe,1\n";
    T_EQ_INT(haproxy_stat_proxies(nosv, strlen(nosv), p, 4, &n, &seen, err, sizeof err), -EINVAL);
    T_EQ_STR(err, "show stat: header lacks svname");
    const char *neg = "# pxname,svname,scur,req_tot\nfe,FRONTEND,1,-5\n";
    T_EQ_INT(haproxy_stat_proxies(neg, strlen(neg), p, 4, &n, &seen, err, sizeof err), -EINVAL);
    T_EQ_STR(err, "show stat: line 2 (frontend fe): a counter is not a whole number");
    /* a name HAProxy would not accept (a quote) is skipped but counted; tcp: no req_tot */
    const char *odd = "# pxname,svname,scur,req_tot\n\"a\"\"b\",FRONTEND,1,2\ntcp,BACKEND,4,\n"
                      "tcp,srv1,4,\n";
    T_EQ_INT(haproxy_stat_proxies(odd, strlen(odd), p, 4, &n, &seen, err, sizeof err), 0);
    T_EQ_INT(n, 1);
    T_EQ_INT(seen, 2);
    T_EQ_STR(p[0].name, "tcp");
    T_EQ_INT((long)p[0].req_tot, -1);
    T_EQ_INT((long)p[0].scur, 4);
}
