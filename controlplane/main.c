/* main.c: tide-controlplane: loads the configuration (exit 2 on any problem, before binding
 * anything), opens the store, starts the agent listener, the ops socket and the registered
 * modules on one libev loop, reloads reloadable keys on SIGHUP, and shuts all of it down
 * cleanly on SIGTERM/SIGINT. */
#include <errno.h>
#include <ev.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "version.h"
#include "agents/agents.h"
#include "cp.h"
#include "daemon.h"
#include "log.h"
#include "notify.h"
#include "store/tsdb.h"
#include "vclock.h"
#include "wire.h"

/* The one global of this binary (STYLE.md); everything else gets a pointer to it. */
static struct controlplane cp;

static int saved_argc;
static char **saved_argv;

/* SIGHUP: reads the configuration again (file and flags); reloadable keys take effect now,
 * the others are reported. A bad file keeps the running configuration. */
static void on_hup(struct ev_loop *loop, ev_signal *w, int revents) {
    (void)loop;
    (void)w;
    (void)revents;
    struct cp_config fresh;
    char err[1024];
    int rc = cp_config_load(&fresh, saved_argc, saved_argv, err, sizeof err);
    if (rc != 0) {
        log_error("controlplane", "reload: %s (the running configuration is kept)", err);
    } else {
        int n = cfg_reload(cp_config_table, &cp.cfg, &fresh, "controlplane");
        log_threshold = log_level_parse(cp.cfg.log_level);
        log_info("controlplane", "reload: %d key(s) differ from the running configuration", n);
    }
    cp_config_free(&fresh);
}

int main(int argc, char **argv) {
    char err[1024] = "";
    int status = 1;
    int rc = cp_config_load(&cp.cfg, argc, argv, err, sizeof err);
    if (rc == 1) {
        cp_config_free(&cp.cfg);
        return 0;
    }
    if (rc < 0) {
        fprintf(stderr, "tide-controlplane: %s\n", err);
        cp_config_free(&cp.cfg);
        return 2;
    }
    log_threshold = log_level_parse(cp.cfg.log_level);
    vclock_spec clock;
    if (vclock_parse(cp.cfg.clock_rate, cp.cfg.clock_origin, cp.cfg.clock_anchor, &clock, err,
                     sizeof err) < 0 ||
        vclock_install(&clock, err, sizeof err) < 0) {
        fprintf(stderr, "tide-controlplane: %s\n", err);
        cp_config_free(&cp.cfg);
        return 2;
    }
    if (wire_token_load(cp.cfg.token_file, &cp.token, &cp.token_len, err, sizeof err) < 0) {
        fprintf(stderr, "tide-controlplane: %s\n", err);
        cp_config_free(&cp.cfg);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    cp.started_wall_ms = tide_now_wall_ms();
    cp.loop = ev_default_loop(EVFLAG_AUTO);
    saved_argc = argc;
    saved_argv = argv;
    daemon_watchers watchers;
    daemon_watchers_start(&watchers, cp.loop, "controlplane", on_hup);

    if (mkdir(cp.cfg.data_dir, 0750) < 0 && errno != EEXIST) {
        log_error("controlplane", "data dir %s: %s", cp.cfg.data_dir, strerror(errno));
        goto out;
    }
    tsdb_options topt = {.dir = cp.cfg.data_dir,
                         .loop = cp.loop,
                         .retention_raw_s = cp.cfg.retention_raw_ms / 1000,
                         .retention_1m_s = cp.cfg.retention_1m_ms / 1000,
                         .retention_10m_s = cp.cfg.retention_10m_ms / 1000,
                         .snapshot_every_s = cp.cfg.snapshot_interval_ms / 1000,
                         .max_series = (uint32_t)cp.cfg.max_series};
    if (tsdb_open(&cp.db, &topt, err, sizeof err) < 0) {
        log_error("controlplane", "store: %s", err);
        goto out;
    }
    if (cp_agents_start(&cp, err, sizeof err) < 0 || ops_server_start(&cp, err, sizeof err) < 0 ||
        cp_modules_start(&cp, err, sizeof err) < 0) {
        log_error("controlplane", "%s", err);
        goto out;
    }
    log_info("controlplane", "tide-controlplane %s ready (agents %s, ops %s, data %s)",
             TIDE_VERSION, cp.cfg.listen, cp.cfg.socket_path, cp.cfg.data_dir);
    if (vclock_on()) {
        char what[160];
        vclock_describe(what, sizeof what);
        log_info("controlplane", "%s", what);
    }
    notify_ready("serving agents");
    ev_run(cp.loop, 0);
    status = 0;
out:
    /* Agents first: pending node commands fail with "shutting down" while the modules and ops
     * clients that wait for them still exist. */
    cp_agents_stop(&cp);
    cp_modules_stop(&cp);
    ops_server_stop(&cp);
    tsdb_close(cp.db);
    cp.db = NULL;
    daemon_watchers_stop(&watchers, cp.loop);
    ev_loop_destroy(cp.loop);
    free(cp.token);
    cp_config_free(&cp.cfg);
    if (status == 0) log_info("controlplane", "stopped cleanly");
    return status;
}
