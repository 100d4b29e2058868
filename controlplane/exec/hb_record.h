/* hb_record.h: the small record the HAProxyBackend executor keeps per workload under
 * <data_dir>/exec/haproxy-backend/NAME.json: which replicas it started, where (node, address,
 * port, HAProxy slot, cgroup, pid) and in which state. After a restart the executor
 * reconciles it with what the agents and HAProxy report (the fleet is the truth; the record
 * names what the fleet cannot: the slot a replica was given, a start in progress).
 *
 * {"workload": NAME, "replicas": [{"id", "node", "addr", "port", "slot", "cgroup", "pid",
 *  "state" ("Starting", "Online", "Cutoff", "Standby", "Activating"), "since" (unix ms)}]}
 *
 * Pure: text in, text out. The decoder takes hostile input: bounded size, count and lengths;
 * every entry is checked and the first bad one is named. */
#ifndef TIDE_HB_RECORD_H
#define TIDE_HB_RECORD_H

#include "exec/executor.h"
#include "exec/hb_place.h"

#include <stddef.h>
#include <stdint.h>

#define HB_RECORD_MAX_BYTES (4 << 20)
#define HB_RECORD_MAX_REPLICAS 4096

typedef struct hb_rec_replica {
    char id[TIDE_REPLICA_ID_MAX + 1];
    char node[WL_NAME_MAX];
    char addr[WL_ADDR_MAX];
    int port;
    char slot[HB_SERVER_MAX];
    char cgroup[WL_PATH_MAX];
    long pid;
    exec_rstate state; /* never EXEC_RS_GONE in a record */
    int64_t since_ms;
} hb_rec_replica;

/* Parses text (len bytes) of the workload named: 0 with *out (malloc'd, *n entries; NULL when
 * none), or -EINVAL / -E2BIG / -ENOMEM with err naming what was wrong. */
int hb_record_parse(const char *text, size_t len, const char *workload, hb_rec_replica **out,
                    size_t *n, char *err, size_t errlen);
/* The record's text (malloc'd), NULL on ENOMEM. */
char *hb_record_format(const char *workload, const hb_rec_replica *r, size_t n);

#endif
