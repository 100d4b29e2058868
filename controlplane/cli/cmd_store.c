/* cmd_store.c: `tidectl store verify DIR` and `tidectl store repair DIR NEWDIR`: check a
 * control plane data directory offline (snapshots, every WAL record), and salvage every intact
 * record of a damaged one into a new directory, reporting exactly what was lost. Neither
 * changes DIR; both read it without the control plane (verify may run while it does). */
#include "cli_table.h"
#include "store/tsdb.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define STORE_USAGE                                                                                \
    "store verify DIR [--json] | store repair DIR NEWDIR [--json]\n"                               \
    "  verify: reads the data directory DIR (snapshots and every WAL record) and reports\n"        \
    "  damage; exit 0 when nothing is lost (a torn write at the end was never acknowledged),\n"    \
    "  1 when something is. repair: writes every intact record of DIR into NEWDIR (which must\n"   \
    "  not exist or be empty) and reports exactly what was lost; start the control plane with\n"   \
    "  --data-dir NEWDIR (or move it into place). DIR is never changed."

static const cli_cmd store_cmd = {"store", STORE_USAGE};

static cJSON *report_json(const char *dir, const char *dst, const tsdb_salvage_report *r) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "dir", dir);
    if (dst) cJSON_AddStringToObject(o, "repaired_into", dst);
    cJSON_AddBoolToObject(o, "lost_data", tsdb_salvage_lost(r));
    cJSON_AddNumberToObject(o, "snapshots_ok", (double)r->snapshots_ok);
    cJSON_AddNumberToObject(o, "snapshots_damaged", (double)r->snapshots_damaged);
    cJSON_AddBoolToObject(o, "snapshot_lost", r->snapshot_lost);
    cJSON_AddNumberToObject(o, "segments", (double)r->segments);
    cJSON_AddNumberToObject(o, "records", (double)r->records);
    cJSON_AddNumberToObject(o, "records_unapplied", (double)r->records_unapplied);
    cJSON_AddNumberToObject(o, "damaged_regions", (double)r->damaged_regions);
    cJSON_AddNumberToObject(o, "bytes_lost", (double)r->bytes_lost);
    cJSON_AddNumberToObject(o, "torn_bytes", (double)r->torn_bytes);
    cJSON_AddNumberToObject(o, "series", (double)r->series);
    cJSON_AddNumberToObject(o, "samples", (double)r->samples);
    return o;
}

static int cmd_store(tidectl_ctx *ctx, int argc, char **argv) {
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int json = ctx->json, status, c;
    optind = 1;
    while ((c = cli_getopt(&store_cmd, argc, argv, longopts, &json, &status)) != -1)
        if (c == CLI_OPT_EXIT) return status;
    if (optind >= argc) return cli_usage_error(&store_cmd, "verify or repair?");
    const char *what = argv[optind];
    int repair = strcmp(what, "repair") == 0;
    if (!repair && strcmp(what, "verify") != 0)
        return cli_usage_error(&store_cmd, "unknown action '%s' (verify or repair)", what);
    int want = repair ? 3 : 2;
    if (argc - optind != want)
        return cli_usage_error(&store_cmd,
                               repair ? "repair takes DIR and NEWDIR" : "verify takes one DIR");
    const char *dir = argv[optind + 1], *dst = repair ? argv[optind + 2] : NULL;
    tsdb_salvage_report rep;
    char err[1024] = "";
    /* findings go to stderr with --json (stdout holds the JSON), else to stdout */
    int rc = tsdb_salvage(dir, dst, json ? stderr : stdout, &rep, err, sizeof err);
    if (rc) {
        fprintf(stderr, "tidectl store %s: %s\n", what, err);
        return rc == -ENOENT || rc == -ENOTDIR || rc == -EACCES ? 2 : 1;
    }
    int lost = tsdb_salvage_lost(&rep);
    if (json) {
        cJSON *o = report_json(dir, dst, &rep);
        tidectl_print_json(o);
        cJSON_Delete(o);
    } else {
        printf("%s: %" PRIu64 " series, %" PRIu64 " samples; %" PRIu64
               " snapshot(s) intact, %" PRIu64 " damaged; %" PRIu64 " WAL segment(s), %" PRIu64
               " records replayed\n",
               dir, rep.series, rep.samples, rep.snapshots_ok, rep.snapshots_damaged, rep.segments,
               rep.records);
        if (rep.torn_bytes)
            printf("torn write at the end: %" PRIu64
                   " bytes never acknowledged (dropped at start-up, not a loss)\n",
                   rep.torn_bytes);
        if (lost)
            printf("LOST: %" PRIu64 " damaged region(s) of %" PRIu64 " bytes, %" PRIu64
                   " intact record(s) that could not be applied%s\n",
                   rep.damaged_regions, rep.bytes_lost, rep.records_unapplied,
                   rep.snapshot_lost ? ", and what only the snapshots held" : "");
        else
            printf("nothing lost\n");
        if (dst)
            printf("wrote %s: start the control plane with --data-dir %s\n", dst, dst);
        else if (lost)
            printf("the control plane will not start on %s; salvage it with: tidectl store "
                   "repair %s NEWDIR\n",
                   dir, dir);
    }
    if (repair) return 0;
    return lost ? 1 : 0;
}

TIDECTL_COMMAND(store, "store", STORE_USAGE, cmd_store)
