/* cgroup_discover_test.c: layout detection from real and hand-made mountinfo, Kubernetes and
 * systemd path classification, include/exclude globs, and the watcher on a fake cgroup tree
 * under $TMPDIR and on real cgroups (cgroupfs v1 and v2 on this host). */
#include "collect/cgroup_discover.h"
#include "fixture.h"
#include "test.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char fbuf[65536];
static long fx(const char *name) {
    return fixture_read("cgroup", name, fbuf, sizeof fbuf);
}

TEST(cgd_mountinfo_real_hybrid) {
    long n = fx("proc/mountinfo-hybrid");
    T_ASSERT(n > 0);
    cgd_mounts m;
    char err[128];
    T_EQ_INT(cgd_parse_mountinfo(fbuf, (size_t)n, &m, err, sizeof err), 0);
    T_EQ_STR(cgd_layout_name(m.layout), "hybrid");
    T_EQ_STR(m.v2, "/sys/fs/cgroup/unified");
    T_EQ_STR(m.cpu, "/sys/fs/cgroup/cpu");
    T_EQ_STR(m.cpuacct, "/sys/fs/cgroup/cpuacct");
    T_EQ_STR(m.memory, "/sys/fs/cgroup/memory");
    T_EQ_STR(m.pids, "/sys/fs/cgroup/pids");
    T_EQ_STR(m.freezer, "/sys/fs/cgroup/freezer");
    T_EQ_STR(cgd_primary(&m), "/sys/fs/cgroup/cpuacct");
}

TEST(cgd_mountinfo_pure_v2) {
    long n = fx("v2/mountinfo");
    cgd_mounts m;
    char err[128];
    T_EQ_INT(cgd_parse_mountinfo(fbuf, (size_t)n, &m, err, sizeof err), 0);
    T_EQ_INT(m.layout, CGD_LAYOUT_V2);
    T_EQ_STR(m.v2, "/sys/fs/cgroup");
    T_EQ_STR(m.cpu, "");
    T_EQ_STR(cgd_primary(&m), "/sys/fs/cgroup");
}

TEST(cgd_mountinfo_v1_combined_cpu_cpuacct) {
    long n = fx("v1/mountinfo-combined");
    cgd_mounts m;
    char err[128];
    T_EQ_INT(cgd_parse_mountinfo(fbuf, (size_t)n, &m, err, sizeof err), 0);
    T_EQ_INT(m.layout, CGD_LAYOUT_V1);
    T_EQ_STR(m.cpu, "/sys/fs/cgroup/cpu,cpuacct");
    T_EQ_STR(m.cpuacct, "/sys/fs/cgroup/cpu,cpuacct");
    T_EQ_STR(m.memory, "/sys/fs/cgroup/memory");
    T_EQ_STR(m.v2, "");
}

TEST(cgd_mountinfo_escapes_and_errors) {
    const char *t = "40 31 0:38 / /mnt/my\\040cg rw - cgroup2 cgroup2 rw\n";
    cgd_mounts m;
    char err[128];
    T_EQ_INT(cgd_parse_mountinfo(t, strlen(t), &m, err, sizeof err), 0);
    T_EQ_STR(m.v2, "/mnt/my cg");
    t = "40 31 0:38 / /x rw cgroup2 cgroup2\n"; /* no separator */
    T_EQ_INT(cgd_parse_mountinfo(t, strlen(t), &m, err, sizeof err), -EINVAL);
    T_EQ_STR(err, "mountinfo line 1: malformed mount line");
    t = "40 31 0:38 / /bad\\09 rw - cgroup2 cgroup2 rw\n";
    T_EQ_INT(cgd_parse_mountinfo(t, strlen(t), &m, err, sizeof err), -EINVAL);
    t = "22 1 259:1 / / rw - ext4 /dev/sda rw\n";
    T_EQ_INT(cgd_parse_mountinfo(t, strlen(t), &m, err, sizeof err), 0);
    T_EQ_INT(m.layout, CGD_LAYOUT_NONE);
    T_EQ_INT(cgd_read_mountinfo("/nonexistent/mountinfo", &m, err, sizeof err), -ENOENT);
    T_ASSERT(strstr(err, "/nonexistent/mountinfo") != NULL);
}

TEST(cgd_mountinfo_this_host) {
    cgd_mounts m;
    char err[128];
    T_EQ_INT(cgd_read_mountinfo("/proc/self/mountinfo", &m, err, sizeof err), 0);
    if (m.layout == CGD_LAYOUT_NONE) test_skip("no cgroup mounted here");
    T_ASSERT(cgd_primary(&m)[0] == '/');
}

TEST(cgd_classify_kubernetes_cgroupfs) {
    cgd_info i;
    cgd_classify("/kubepods/burstable/pod6f1b2c3d-4e5f-4a7b-8c9d-0e1f2a3b4c5d/3c1f7a2b9d8e", &i);
    T_EQ_STR(cgd_kind_name(i.kind), "container");
    T_EQ_STR(i.qos, "burstable");
    T_EQ_STR(i.pod_uid, "6f1b2c3d-4e5f-4a7b-8c9d-0e1f2a3b4c5d");
    T_EQ_STR(i.container_id, "3c1f7a2b9d8e");
    cgd_classify("/kubepods/besteffort/pod1234", &i);
    T_EQ_INT(i.kind, CGD_KIND_POD);
    T_EQ_STR(i.qos, "besteffort");
    T_EQ_STR(i.pod_uid, "1234");
    cgd_classify("/kubepods/pod9999/abc", &i); /* guaranteed pods sit right under kubepods */
    T_EQ_INT(i.kind, CGD_KIND_CONTAINER);
    T_EQ_STR(i.qos, "guaranteed");
    T_EQ_STR(i.pod_uid, "9999");
    cgd_classify("/kubepods/burstable", &i);
    T_EQ_INT(i.kind, CGD_KIND_KUBE_OTHER);
    cgd_classify("/kubepods", &i);
    T_EQ_INT(i.kind, CGD_KIND_KUBE_OTHER);
}

TEST(cgd_classify_kubernetes_systemd) {
    cgd_info i;
    cgd_classify("/kubepods.slice/kubepods-burstable.slice/"
                 "kubepods-burstable-pod6f1b2c3d_4e5f_4a7b_8c9d_0e1f2a3b4c5d.slice/"
                 "cri-containerd-3c1f7a2b9d8e4f6a.scope",
                 &i);
    T_EQ_INT(i.kind, CGD_KIND_CONTAINER);
    T_EQ_STR(i.qos, "burstable");
    T_EQ_STR(i.pod_uid, "6f1b2c3d-4e5f-4a7b-8c9d-0e1f2a3b4c5d");
    T_EQ_STR(i.container_id, "3c1f7a2b9d8e4f6a");
    cgd_classify("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-podab_cd.slice",
                 &i);
    T_EQ_INT(i.kind, CGD_KIND_POD);
    T_EQ_STR(i.qos, "besteffort");
    T_EQ_STR(i.pod_uid, "ab-cd");
    cgd_classify("/kubepods.slice/kubepods-pod77.slice/crio-fe01.scope", &i);
    T_EQ_INT(i.kind, CGD_KIND_CONTAINER);
    T_EQ_STR(i.qos, "guaranteed");
    T_EQ_STR(i.pod_uid, "77");
    T_EQ_STR(i.container_id, "fe01");
    cgd_classify("/kubepods.slice/kubepods-burstable.slice", &i);
    T_EQ_INT(i.kind, CGD_KIND_KUBE_OTHER);
}

TEST(cgd_classify_systemd_and_plain) {
    cgd_info i;
    cgd_classify("/system.slice/nginx.service", &i);
    T_EQ_INT(i.kind, CGD_KIND_SERVICE);
    T_EQ_STR(i.service, "nginx.service");
    cgd_classify("/system.slice/nginx.service/worker", &i);
    T_EQ_INT(i.kind, CGD_KIND_SYSTEMD_OTHER);
    cgd_classify("/system.slice/foo.mount", &i);
    T_EQ_INT(i.kind, CGD_KIND_CGROUP);
    cgd_classify("/tide/web-1", &i);
    T_EQ_INT(i.kind, CGD_KIND_CGROUP);
    cgd_classify("/", &i);
    T_EQ_INT(i.kind, CGD_KIND_CGROUP);
}

TEST(cgd_filter_globs) {
    const char *inc[] = {"/tide/*", "/system.slice/*.service"};
    const char *exc[] = {"*/scratch*"};
    T_EQ_INT(cgd_filter("/tide/web/1", inc, 2, exc, 1), 1);
    T_EQ_INT(cgd_filter("/tide/scratch-3", inc, 2, exc, 1), 0);
    T_EQ_INT(cgd_filter("/other", inc, 2, exc, 1), 0);
    T_EQ_INT(cgd_filter("/other", NULL, 0, NULL, 0), 1);
    T_EQ_INT(cgd_filter("/system.slice/a.service", inc, 2, NULL, 0), 1);
}

/* ---- the watcher ---------------------------------------------------------------------------- */

typedef struct changes {
    char lines[64][700];
    int n;
} changes;

static void on_change(void *ctx, const char *rel, const cgd_info *info, int added) {
    changes *c = ctx;
    if (c->n >= 64) return;
    if (added)
        snprintf(c->lines[c->n++], 700, "+%s %s %s %s %s %s", rel, cgd_kind_name(info->kind),
                 info->qos[0] ? info->qos : "-", info->pod_uid[0] ? info->pod_uid : "-",
                 info->container_id[0] ? info->container_id : "-",
                 info->service[0] ? info->service : "-");
    else
        snprintf(c->lines[c->n++], 700, "-%s", rel);
}

static int has(const changes *c, const char *line) {
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->lines[i], line) == 0) return 1;
    return 0;
}

static char base[256];

static void mk(const char *rel) {
    char p[600];
    snprintf(p, sizeof p, "mkdir -p '%s%s'", base, rel);
    if (system(p) != 0) fprintf(stderr, "mkdir %s failed\n", p);
}
static void rm(const char *rel) {
    char p[600];
    snprintf(p, sizeof p, "rm -rf '%s%s'", base, rel);
    if (system(p) != 0) fprintf(stderr, "rm %s failed\n", p);
}

TEST(cgd_watch_fake_tree) {
    const char *t = getenv("TMPDIR");
    snprintf(base, sizeof base, "%s/cgd_test.XXXXXX", t && *t ? t : "/tmp");
    T_ASSERT(mkdtemp(base) != NULL);
    mk("/kubepods/burstable/podaaa/c1");
    mk("/kubepods/burstable/podaaa/c2");
    mk("/kubepods/podggg/c9");
    mk("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-podb_b.slice/"
       "cri-containerd-ee.scope");
    mk("/system.slice/nginx.service");
    mk("/system.slice/user.slice");
    mk("/tide/web/a");
    mk("/tide/scratch");
    /* A file beside the cgroups, like cgroupfs's control files: ignored. */
    char fpath[600];
    snprintf(fpath, sizeof fpath, "%s/kubepods/burstable/podaaa/cpu.stat", base);
    FILE *f = fopen(fpath, "w");
    T_ASSERT(f != NULL);
    fclose(f);

    const char *roots[] = {"/tide/", "/missing"};
    const char *exc[] = {"/tide/scratch*"};
    cgd_config cfg = {.base = base,
                      .kubernetes = 1,
                      .systemd = 1,
                      .roots = roots,
                      .nroots = 2,
                      .exclude = exc,
                      .nexclude = 1};
    cgd *d = NULL;
    char err[128];
    T_EQ_INT(cgd_new(&d, &cfg, err, sizeof err), 0);
    changes c = {0};
    int n = cgd_poll(d, on_change, &c);
    T_EQ_INT(n, 11);
    T_ASSERT(has(&c, "+/kubepods/burstable/podaaa pod burstable aaa - -"));
    T_ASSERT(has(&c, "+/kubepods/burstable/podaaa/c1 container burstable aaa c1 -"));
    T_ASSERT(has(&c, "+/kubepods/burstable/podaaa/c2 container burstable aaa c2 -"));
    T_ASSERT(has(&c, "+/kubepods/podggg pod guaranteed ggg - -"));
    T_ASSERT(has(&c, "+/kubepods/podggg/c9 container guaranteed ggg c9 -"));
    T_ASSERT(has(&c, "+/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-podb_b.slice "
                     "pod besteffort b-b - -"));
    T_ASSERT(has(&c, "+/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-podb_b.slice/"
                     "cri-containerd-ee.scope container besteffort b-b ee -"));
    T_ASSERT(has(&c, "+/system.slice/nginx.service service - - - nginx.service"));
    T_ASSERT(has(&c, "+/tide cgroup - - - -"));
    T_ASSERT(has(&c, "+/tide/web cgroup - - - -"));
    T_ASSERT(has(&c, "+/tide/web/a cgroup - - - -"));
    T_ASSERT(!has(&c, "+/tide/scratch cgroup - - - -"));

    /* Nothing changed: nothing reported. */
    c.n = 0;
    T_EQ_INT(cgd_poll(d, on_change, &c), 0);

    /* A new container, a removed one, a new pod with its container, and the missing root. */
    mk("/kubepods/burstable/podaaa/c3");
    rm("/kubepods/burstable/podaaa/c1");
    mk("/kubepods/besteffort/podnew/cx");
    mk("/missing/m1");
    c.n = 0;
    T_EQ_INT(cgd_poll(d, on_change, &c), 6);
    T_ASSERT(has(&c, "+/kubepods/burstable/podaaa/c3 container burstable aaa c3 -"));
    T_ASSERT(has(&c, "-/kubepods/burstable/podaaa/c1"));
    T_ASSERT(has(&c, "+/kubepods/besteffort/podnew pod besteffort new - -"));
    T_ASSERT(has(&c, "+/kubepods/besteffort/podnew/cx container besteffort new cx -"));
    T_ASSERT(has(&c, "+/missing cgroup - - - -"));
    T_ASSERT(has(&c, "+/missing/m1 cgroup - - - -"));

    /* A whole root vanishes, then comes back. */
    rm("/kubepods.slice");
    c.n = 0;
    T_EQ_INT(cgd_poll(d, on_change, &c), 2);
    T_ASSERT(
        has(&c, "-/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-podb_b.slice"));
    mk("/kubepods.slice/kubepods-podq.slice");
    c.n = 0;
    T_EQ_INT(cgd_poll(d, on_change, &c), 1);
    T_ASSERT(has(&c, "+/kubepods.slice/kubepods-podq.slice pod guaranteed q - -"));

    /* A forced rescan finds the same set: no changes. */
    cgd_request_rescan(d);
    c.n = 0;
    T_EQ_INT(cgd_poll(d, on_change, &c), 0);
    cgd_stats st;
    cgd_get_stats(d, &st);
    T_EQ_INT(st.sampled, 14);
    T_EQ_INT(st.inotify, 1);
    T_EQ_INT(st.rescans, 2);
    cgd_free(d);
    rm("");
}

TEST(cgd_watch_real_cgroups) {
    cgd_mounts m;
    char err[128];
    if (cgd_read_mountinfo("/proc/self/mountinfo", &m, err, sizeof err) < 0 ||
        m.layout == CGD_LAYOUT_NONE)
        test_skip("no cgroup hierarchy mounted");
    const char *hier[2] = {cgd_primary(&m), m.v2};
    for (int h = 0; h < 2; h++) {
        if (!hier[h][0] || (h == 1 && hier[1] == hier[0])) continue;
        snprintf(base, sizeof base, "%s", hier[h]);
        char root[64];
        snprintf(root, sizeof root, "/tide-cgd-test-%d", (int)getpid());
        char p[700];
        snprintf(p, sizeof p, "%s%s", base, root);
        if (mkdir(p, 0755) < 0) test_skip("cannot create cgroups here (not root?)");
        const char *roots[] = {root};
        cgd_config cfg = {.base = base, .roots = roots, .nroots = 1};
        cgd *d = NULL;
        T_EQ_INT(cgd_new(&d, &cfg, err, sizeof err), 0);
        changes c = {0};
        T_EQ_INT(cgd_poll(d, on_change, &c), 1);
        char child[720];
        snprintf(child, sizeof child, "%s/a", p);
        T_EQ_INT(mkdir(child, 0755), 0);
        c.n = 0;
        int n1 = cgd_poll(d, on_change, &c);
        T_EQ_INT(rmdir(child), 0);
        int n2 = cgd_poll(d, on_change, &c);
        T_EQ_INT(rmdir(p), 0);
        int n3 = cgd_poll(d, on_change, &c);
        cgd_free(d);
        T_EQ_INT(n1, 1);
        T_EQ_INT(n2, 1);
        T_EQ_INT(n3, 1);
        char want[200];
        snprintf(want, sizeof want, "+%s/a cgroup - - - -", root);
        T_ASSERT(has(&c, want));
        snprintf(want, sizeof want, "-%s/a", root);
        T_ASSERT(has(&c, want));
        snprintf(want, sizeof want, "-%s", root);
        T_ASSERT(has(&c, want));
    }
}

/* Found by fuzz_cgroup_parse: a cgroup line whose separator is followed by only two fields
 * read past the field array. */
TEST(cgd_mountinfo_short_tail_after_separator) {
    const char *t = "40 31 0:38 / /x rw - cgroup cgroup\n";
    cgd_mounts m;
    char err[128];
    T_EQ_INT(cgd_parse_mountinfo(t, strlen(t), &m, err, sizeof err), -EINVAL);
    T_EQ_STR(err, "mountinfo line 1: malformed mount line");
}
