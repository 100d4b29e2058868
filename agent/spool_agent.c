/* spool_agent.c: plugs the on-disk spool (spool.h) into the reporting queue's spill seam
 * (report_spill in agent.h): batches the memory queue evicts go to disk instead of being
 * dropped, are resent oldest first after a reconnect, and are deleted once acknowledged. A
 * batch that cannot be spooled (I/O error) is dropped by the queue and counted there; batches
 * the spool itself drops when full are counted by it; both reach HEARTBEAT's spool_drops. */
#include "agent.h"
#include "log.h"
#include "spool.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define MOD "spool"

static log_ratelimit spool_rl = LOG_RATELIMIT_INIT(10000, 5);

static int spill_put(void *ctx, uint64_t seq, const void *frame, size_t len) {
    char err[256];
    spool_stats before, after;
    spool_get_stats(ctx, &before);
    int rc = spool_append(ctx, seq, frame, len, err, sizeof err);
    if (rc < 0) {
        log_limited(&spool_rl, LOG_WARN, MOD, "%s", err);
        return rc;
    }
    spool_get_stats(ctx, &after);
    if (after.dropped_frames > before.dropped_frames)
        log_limited(&spool_rl, LOG_WARN, MOD,
                    "spool full: dropped %llu oldest unsent batch(es), %llu in all since start",
                    (unsigned long long)(after.dropped_frames - before.dropped_frames),
                    (unsigned long long)after.dropped_frames);
    return 0;
}

static int spill_next(void *ctx, uint64_t after, uint64_t *seq, void **frame, size_t *len) {
    return spool_read_next(ctx, after, seq, frame, len);
}

static void spill_ack(void *ctx, uint64_t acked) {
    int rc = spool_ack(ctx, acked);
    if (rc < 0)
        log_limited(&spool_rl, LOG_WARN, MOD, "cannot record ack %llu: %s",
                    (unsigned long long)acked, strerror(-rc));
}

static uint64_t spill_drops(void *ctx) {
    spool_stats st;
    spool_get_stats(ctx, &st);
    return st.dropped_frames;
}

static void spill_close(void *ctx) {
    spool_close(ctx);
}

/* The spool directory of control plane `link`: spool_dir itself with one control plane (as
 * before several were possible: existing spools stay where they are), else
 * spool_dir/cp-HOST_PORT (characters other than [A-Za-z0-9.-] as '_'). */
static void link_dir(const struct agent *ag, int link, char *out, size_t cap) {
    if (ag->cfg.ncps <= 1) {
        snprintf(out, cap, "%s", ag->cfg.spool_dir);
        return;
    }
    char name[AGENT_CP_ADDR_MAX];
    snprintf(name, sizeof name, "%s", ag->cfg.cps[link]);
    for (char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '-'))
            *p = '_';
    snprintf(out, cap, "%s/cp-%s", ag->cfg.spool_dir, name);
}

static void spool_module_stop(struct agent *ag) {
    /* the spools are closed by report_fini (spill close) */
    for (int i = 0; i < AGENT_MAX_CONTROLPLANES; i++)
        ag->spools[i] = NULL;
}

static int spool_module_start(struct agent *ag, char *err, size_t errlen) {
    const char *dir = ag->cfg.spool_dir;
    if (!dir || !*dir) {
        log_info(MOD, "no spool_dir: batches beyond queue_max_bytes are dropped and counted");
        return 0;
    }
    int n = report_links(ag->rep);
    if (n > 1 && mkdir(dir, 0700) < 0 && errno != EEXIST) {
        int e = errno;
        snprintf(err, errlen, "spool_dir %s: %s", dir, strerror(e));
        return -e;
    }
    for (int l = 0; l < n; l++) {
        char path[1024];
        link_dir(ag, l, path, sizeof path);
        spool *sp = NULL;
        int rc = spool_open(&sp, path, (uint64_t)ag->cfg.spool_max_bytes, err, errlen);
        if (rc < 0) return rc; /* those opened are closed by report_fini */
        spool_stats st;
        spool_get_stats(sp, &st);
        log_info(MOD, "spool %s%s%s: %llu unacknowledged batch(es), %llu bytes held (bound %lld)%s",
                 path, n > 1 ? " of control plane " : "", n > 1 ? ag->cfg.cps[l] : "",
                 (unsigned long long)st.frames, (unsigned long long)st.bytes,
                 (long long)ag->cfg.spool_max_bytes,
                 st.corrupt_frames ? "; a torn or corrupt tail was cut" : "");
        report_spill spill = {sp, spill_put, spill_next, spill_ack, spill_drops, spill_close};
        report_set_spill(ag->rep, l, &spill);
        ag->spools[l] = sp; /* read by agent_http.c for /metrics and /healthz */
    }
    return 0;
}

AGENT_MODULE(spool, "spool", spool_module_start, spool_module_stop)
