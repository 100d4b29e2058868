/* main.c: tide-agent: loads the configuration (exit 2 on any problem), then runs the uplink to
 * the control plane, the collectors and the action dispatcher on one libev loop until
 * SIGTERM/SIGINT (SIGHUP reloads the reloadable keys), and stops every watcher before exiting. */
#include <errno.h>
#include <ev.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "version.h"
#include "agent.h"
#include "daemon.h"
#include "log.h"
#include "notify.h"
#include "vclock.h"
#include "wire.h"

/* The one global of this binary (STYLE.md). */
static struct agent agent;

static int saved_argc;
static char **saved_argv;

/* SIGHUP: reads the configuration again; reloadable keys (log_level, interval) take effect
 * now, the others are reported. A bad file keeps the running configuration. */
static void on_hup(struct ev_loop *loop, ev_signal *w, int revents) {
    (void)loop;
    (void)w;
    (void)revents;
    struct agent_config fresh;
    char err[1024];
    int rc = agent_config_load(&fresh, saved_argc, saved_argv, err, sizeof err);
    if (rc != 0) {
        log_error("agent", "reload: %s (the running configuration is kept)", err);
    } else {
        int n = cfg_reload(agent_config_table, &agent.cfg, &fresh, "agent");
        log_threshold = log_level_parse(agent.cfg.log_level);
        collect_set_interval(agent.col, agent.cfg.interval_ms);
        log_info("agent", "reload: %d key(s) differ from the running configuration", n);
    }
    agent_config_free(&fresh);
}

int main(int argc, char **argv) {
    char err[1024] = "";
    int status = 1;
    int rc = agent_config_load(&agent.cfg, argc, argv, err, sizeof err);
    if (rc != 0) {
        if (rc < 0) fprintf(stderr, "tide-agent: %s\n", err);
        agent_config_free(&agent.cfg);
        return rc < 0 ? 2 : 0;
    }
    log_threshold = log_level_parse(agent.cfg.log_level);
    vclock_spec clock;
    if (vclock_parse(agent.cfg.clock_rate, agent.cfg.clock_origin, agent.cfg.clock_anchor, &clock,
                     err, sizeof err) < 0 ||
        vclock_install(&clock, err, sizeof err) < 0) {
        fprintf(stderr, "tide-agent: %s\n", err);
        agent_config_free(&agent.cfg);
        return 2;
    }
    if (agent.cfg.node[0]) {
        snprintf(agent.node, sizeof agent.node, "%s", agent.cfg.node);
    } else if (gethostname(agent.node, sizeof agent.node) < 0 || !agent.node[0] ||
               !wire_node_valid(agent.node, strlen(agent.node))) {
        fprintf(stderr, "tide-agent: the host name is not usable as a node name: set --node\n");
        agent_config_free(&agent.cfg);
        return 2;
    }
    if (wire_token_load(agent.cfg.token_file, &agent.token, &agent.token_len, err, sizeof err) <
        0) {
        fprintf(stderr, "tide-agent: %s\n", err);
        agent_config_free(&agent.cfg);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    agent.loop = ev_default_loop(EVFLAG_AUTO);
    saved_argc = argc;
    saved_argv = argv;
    daemon_watchers watchers;
    daemon_watchers_start(&watchers, agent.loop, "agent", on_hup);

    if (report_init(&agent, err, sizeof err) < 0 || dispatch_init(&agent, err, sizeof err) < 0 ||
        agent_modules_start(&agent, err, sizeof err) < 0 ||
        uplink_start(&agent, err, sizeof err) < 0 || collect_start(&agent, err, sizeof err) < 0) {
        log_error("agent", "%s", err);
        goto out;
    }
    log_info("agent", "tide-agent %s node %s, control plane%s %s, interval %lld ms", TIDE_VERSION,
             agent.node, agent.cfg.ncps > 1 ? "s" : "", agent.cfg.controlplane,
             (long long)agent.cfg.interval_ms);
    if (vclock_on()) {
        char what[160];
        vclock_describe(what, sizeof what);
        log_info("agent", "%s", what);
    }
    notify_ready("sampling");
    ev_run(agent.loop, 0);
    status = 0;
out:
    collect_stop(&agent);
    uplink_stop(&agent);
    agent_modules_stop(&agent);
    dispatch_fini(&agent);
    report_fini(&agent);
    daemon_watchers_stop(&watchers, agent.loop);
    ev_loop_destroy(agent.loop);
    free(agent.token);
    agent_config_free(&agent.cfg);
    if (status == 0) log_info("agent", "stopped cleanly");
    return status;
}
