/* k8s_client_fake_test.c: the Kubernetes client (exec/k8s_client.h) against the FAKE API server
 * (tests/fakekube/fakekube.py, itself proven with kubectl and python3-kubernetes), reached
 * through a kubeconfig file: the scale subresource read and written with its resourceVersion,
 * conflicts from a second writer re-read and re-applied (a relative change computed again), a
 * writer that never stops -> -EAGAIN that says so; pods by the Scale's selector, label and
 * readiness-gate patches; another scaler (HPA v2, KEDA ScaledObject) found; list + watch with
 * bookmarks, and a relist after 410 (compaction); stop cancels a watch. Plus the pure parts:
 * the token bucket, kubeconfig parsing and its errors. Skips without /usr/bin/python3. */
#include "test.h"
#include "exec/k8s_client.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>

/* ---- pure ------------------------------------------------------------------------------- */

TEST(k8s_fake_bucket_limits_rate_and_burst) {
    k8s_bucket b;
    k8s_bucket_init(&b, 5, 2, 1000);
    T_EQ_INT(k8s_bucket_take(&b, 1000), 0);
    T_EQ_INT(k8s_bucket_take(&b, 1000), 0);
    int64_t w = k8s_bucket_take(&b, 1000);
    T_ASSERT(w >= 199 && w <= 201);
    T_ASSERT(k8s_bucket_take(&b, 1100) > 0); /* half a token */
    T_EQ_INT(k8s_bucket_take(&b, 1200), 0);
    /* a long idle time refills to burst, not beyond */
    T_EQ_INT(k8s_bucket_take(&b, 100000), 0);
    T_EQ_INT(k8s_bucket_take(&b, 100000), 0);
    T_ASSERT(k8s_bucket_take(&b, 100000) > 0);
}

static const char *KC =
    "apiVersion: v1\nkind: Config\ncurrent-context: a\n"
    "clusters:\n- name: c1\n  cluster:\n    server: https://10.0.0.1:6443/\n"
    "    certificate-authority: ca.pem\n"
    "- name: c2\n  cluster: {server: 'http://127.0.0.1:1', "
    "certificate-authority-data: aGVsbG8=, insecure-skip-tls-verify: true}\n"
    "users:\n- name: u1\n  user: {token: abc, client-certificate-data: Y2VydA==,"
    " client-key-data: a2V5}\n"
    "- name: u2\n  user: {tokenFile: /run/t}\n"
    "- name: u3\n  user: {exec: {command: aws}}\n"
    "contexts:\n- name: a\n  context: {cluster: c1, user: u1, namespace: shop}\n"
    "- name: b\n  context: {cluster: c2, user: u2}\n"
    "- name: x\n  context: {cluster: c2, user: u3}\n"
    "- name: y\n  context: {cluster: nope, user: u1}\n";

TEST(k8s_fake_kubeconfig_parse) {
    k8s_creds c;
    char err[512];
    T_EQ_INT(k8s_kubeconfig_parse(KC, strlen(KC), "/etc/kube", NULL, &c, err, sizeof err), 0);
    T_EQ_STR(c.server, "https://10.0.0.1:6443");
    T_EQ_STR(c.ca_file, "/etc/kube/ca.pem"); /* relative to the file, as kubectl does */
    T_EQ_STR(c.token, "abc");
    T_EQ_STR(c.namespace_, "shop");
    T_ASSERT(c.cert_pem && c.cert_pem_len == 4 && !memcmp(c.cert_pem, "cert", 4));
    T_ASSERT(c.key_pem && c.key_pem_len == 3);
    k8s_creds_free(&c);
    T_EQ_INT(k8s_kubeconfig_parse(KC, strlen(KC), "/etc/kube", "b", &c, err, sizeof err), 0);
    T_EQ_STR(c.server, "http://127.0.0.1:1");
    T_ASSERT(c.ca_pem && !strcmp(c.ca_pem, "hello") && c.insecure);
    T_EQ_STR(c.token_file, "/run/t");
    k8s_creds_free(&c);
    T_EQ_INT(k8s_kubeconfig_parse(KC, strlen(KC), ".", "x", &c, err, sizeof err), -EINVAL);
    T_ASSERT(strstr(err, "users[2].user.exec: credential plugins are not supported"));
    T_EQ_INT(k8s_kubeconfig_parse(KC, strlen(KC), ".", "y", &c, err, sizeof err), -EINVAL);
    T_ASSERT(strstr(err, "clusters: no entry named \"nope\""));
    T_EQ_INT(k8s_kubeconfig_parse(KC, strlen(KC), ".", "zz", &c, err, sizeof err), -EINVAL);
    T_ASSERT(strstr(err, "contexts: no entry named \"zz\""));
    const char *bad = "clusters: [\n";
    T_EQ_INT(k8s_kubeconfig_parse(bad, strlen(bad), ".", NULL, &c, err, sizeof err), -EINVAL);
    T_ASSERT(strstr(err, "YAML syntax at line"));
    const char *b64 = "current-context: a\nclusters: [{name: c, cluster: {server: 'https://x', "
                      "certificate-authority-data: '!!!'}}]\ncontexts: [{name: a, context: "
                      "{cluster: c}}]\n";
    T_EQ_INT(k8s_kubeconfig_parse(b64, strlen(b64), ".", NULL, &c, err, sizeof err), -EINVAL);
    T_ASSERT(strstr(err, "clusters[0].cluster.certificate-authority-data: not valid base64"));
}

TEST(k8s_fake_json_decoders) {
    k8s_scale s;
    char err[256];
    const char *sc = "{\"kind\":\"Scale\",\"apiVersion\":\"autoscaling/v1\",\"metadata\":{\"name\":"
                     "\"web\",\"namespace\":\"shop\",\"resourceVersion\":\"42\"},\"spec\":{"
                     "\"replicas\":3},\"status\":{\"replicas\":2,\"selector\":\"app=web\"}}";
    T_EQ_INT(k8s_scale_parse(sc, strlen(sc), &s, err, sizeof err), 0);
    T_EQ_INT(s.spec_replicas, 3);
    T_EQ_STR(s.selector, "app=web");
    T_EQ_STR(s.resource_version, "42");
    const char *sel = "{\"kind\":\"Scale\",\"metadata\":{\"name\":\"w\",\"resourceVersion\":\"1\"},"
                      "\"status\":{\"selector\":{\"matchLabels\":{}}}}";
    T_EQ_INT(k8s_scale_parse(sel, strlen(sel), &s, err, sizeof err), -EINVAL);
    T_ASSERT(strstr(err, "status.selector is not a string"));
    k8s_event ev;
    const char *bm = "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Pod\",\"apiVersion\":\"v1\","
                     "\"metadata\":{\"resourceVersion\":\"77\",\"creationTimestamp\":null}}}";
    T_EQ_INT(k8s_event_parse(bm, strlen(bm), &ev, err, sizeof err), 0);
    T_EQ_INT(ev.type, K8S_EV_BOOKMARK);
    T_EQ_STR(ev.resource_version, "77");
    T_ASSERT(ev.object == NULL);
    const char *gone = "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410,"
                       "\"reason\":\"Expired\",\"message\":\"too old resource version: 5 (9)\"}}";
    T_EQ_INT(k8s_event_parse(gone, strlen(gone), &ev, err, sizeof err), 0);
    T_EQ_INT(ev.type, K8S_EV_ERROR);
    T_EQ_INT(ev.code, 410);
    const char *pod = "{\"metadata\":{\"name\":\"db-2\",\"namespace\":\"s\",\"uid\":\"u\","
                      "\"labels\":{\"statefulset.kubernetes.io/pod-name\":\"db-2\","
                      "\"tide.io/state\":\"standby\"},\"annotations\":{"
                      "\"controller.kubernetes.io/pod-deletion-cost\":\"-5\"},"
                      "\"deletionTimestamp\":\"2026-01-01T00:00:00Z\"},\"spec\":{\"nodeName\":"
                      "\"n1\"},\"status\":{\"phase\":\"Running\",\"conditions\":[{\"type\":"
                      "\"Ready\",\"status\":\"False\"},{\"type\":\"tide.io/serving\","
                      "\"status\":\"False\"}]}}";
    k8s_pod p;
    T_EQ_INT(k8s_pod_parse(pod, strlen(pod), "tide.io/serving", &p, err, sizeof err), 0);
    T_EQ_INT(p.ordinal, 2);
    T_EQ_INT(p.deletion_cost, -5);
    T_EQ_STR(p.state, "standby");
    T_EQ_STR(p.node, "n1");
    T_EQ_INT(p.phase, K8S_PHASE_RUNNING);
    T_EQ_INT(p.gate, 0);
    T_EQ_INT(p.terminating, 1);
    char owner[128];
    const char *keda = "{\"items\":[{\"kind\":\"ScaledObject\",\"metadata\":{\"name\":\"so\","
                       "\"namespace\":\"s\"},\"spec\":{\"scaleTargetRef\":{\"name\":\"web\"}}}]}";
    T_EQ_INT(k8s_scalers_find(keda, strlen(keda), "Deployment", "web", "ScaledObject", owner,
                              sizeof owner, err, sizeof err),
             1);
    T_EQ_STR(owner, "ScaledObject s/so");
    T_EQ_INT(k8s_scalers_find(keda, strlen(keda), "StatefulSet", "web", "ScaledObject", owner,
                              sizeof owner, err, sizeof err),
             0);
    char esc[64];
    T_EQ_INT(k8s_url_escape("app in (a,b),!x", esc, sizeof esc), 0);
    T_EQ_STR(esc, "app%20in%20%28a%2Cb%29%2C%21x");
}

/* ---- against the fake ------------------------------------------------------------------- */

static pid_t fake_pid;
static int fake_port;
static char tmpdir[256];

static int free_port(void) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
    socklen_t l = sizeof a;
    bind(s, (struct sockaddr *)&a, sizeof a);
    getsockname(s, (struct sockaddr *)&a, &l);
    close(s);
    return ntohs(a.sin_port);
}

static void fake_stop(void) {
    if (fake_pid > 0) {
        kill(fake_pid, SIGTERM);
        waitpid(fake_pid, NULL, 0);
        fake_pid = 0;
    }
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (tmpdir[0] && system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", tmpdir);
    tmpdir[0] = 0;
}

/* Starts the fake (pods as plain processes, no cgroups) and returns a client through a
 * kubeconfig with a token; NULL (test skipped) without python3. */
static k8s_client *fake_start(void) {
    /* an assertion returns from its test before the test's own fake_stop: stop that one here,
     * and the last one at exit */
    static int registered;
    fake_stop();
    if (!registered) {
        atexit(fake_stop);
        registered = 1;
    }
    if (access("/usr/bin/python3", X_OK) != 0) {
        test_skip("no /usr/bin/python3 for the fake API server");
        return NULL;
    }
    snprintf(tmpdir, sizeof tmpdir, "/tmp/tide-k8sfake.XXXXXX");
    if (!mkdtemp(tmpdir)) return NULL;
    fake_port = free_port();
    char port[16], script[4096];
    snprintf(port, sizeof port, "%d", fake_port);
    snprintf(script, sizeof script, "%s", test_fixture("../fakekube/fakekube.py"));
    fake_pid = fork();
    if (fake_pid == 0) {
        char log[300];
        snprintf(log, sizeof log, "%s/fake.log", tmpdir);
        FILE *f = freopen(log, "w", stdout);
        (void)f;
        dup2(1, 2);
        execl("/usr/bin/python3", "python3", script, "--port", port, "--token", "t0k",
              "--no-cgroups", "--start-delay", "0.1", "--bookmark-interval", "0.2", (char *)NULL);
        _exit(127);
    }
    char kc[300];
    snprintf(kc, sizeof kc, "%s/kubeconfig", tmpdir);
    FILE *f = fopen(kc, "w");
    fprintf(f,
            "apiVersion: v1\nkind: Config\ncurrent-context: fake\n"
            "clusters: [{name: fake, cluster: {server: 'http://127.0.0.1:%d'}}]\n"
            "users: [{name: tide, user: {tokenFile: token}}]\n"
            "contexts: [{name: fake, context: {cluster: fake, user: tide, namespace: shop}}]\n",
            fake_port);
    fclose(f);
    snprintf(kc, sizeof kc, "%s/token", tmpdir);
    f = fopen(kc, "w");
    fprintf(f, "t0k\n");
    fclose(f);
    snprintf(kc, sizeof kc, "%s/kubeconfig", tmpdir);
    k8s_creds cr;
    char err[512];
    if (k8s_kubeconfig_load(kc, NULL, &cr, err, sizeof err) < 0) {
        test_fail(__FILE__, __LINE__, "kubeconfig: %s", err);
        return NULL;
    }
    k8s_client_opts o = {.qps = 200, .burst = 50, .timeout_ms = 10000, .max_conflicts = 3};
    k8s_client *c;
    int rc = k8s_client_new(&cr, &o, &c, err, sizeof err);
    k8s_creds_free(&cr);
    if (rc < 0) {
        test_fail(__FILE__, __LINE__, "client: %s", err);
        return NULL;
    }
    for (int i = 0; i < 200; i++) { /* up within 10 s */
        k8s_resp r;
        if (k8s_request(c, "GET", "/api/v1/namespaces", NULL, NULL, 0, &r, err, sizeof err) == 0 &&
            r.status == 200) {
            free(r.body);
            return c;
        }
        usleep(50000);
    }
    test_fail(__FILE__, __LINE__, "the fake API server did not come up");
    return c;
}

static int post(k8s_client *c, const char *path, const char *body) {
    k8s_resp r;
    char err[512];
    int rc = k8s_request(c, "POST", path, "application/json", body, 0, &r, err, sizeof err);
    if (rc == 0 && r.status != 201) rc = k8s_answer_error(path, &r, err, sizeof err);
    if (rc) fprintf(stderr, "POST %s: %s\n", path, err);
    free(r.body);
    return rc;
}

static int patch_labels(k8s_client *c, const char *path, const char *v) {
    char body[256], err[512];
    snprintf(body, sizeof body, "{\"metadata\":{\"labels\":{\"writer\":\"%s\"}}}", v);
    k8s_resp r;
    int rc =
        k8s_request(c, "PATCH", path, "application/merge-patch+json", body, 0, &r, err, sizeof err);
    free(r.body);
    return rc == 0 && r.status == 200 ? 0 : -1;
}

#define DEP "/apis/apps/v1/namespaces/shop/deployments"
static const char *WEB = "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{"
                         "\"name\":\"web\"},\"spec\":{\"replicas\":2,\"selector\":{\"matchLabels\":"
                         "{\"app\":\"web\"}},\"template\":{\"metadata\":{\"labels\":{\"app\":"
                         "\"web\"}},\"spec\":{\"readinessGates\":[{\"conditionType\":"
                         "\"tide.io/serving\"}],\"containers\":[{\"name\":\"w\",\"image\":"
                         "\"w\"}]}}}}";

typedef struct writer {
    k8s_client *c;
    int calls, interfere; /* the first `interfere` calls move the object on after our read */
} writer;

/* The intended change: one replica fewer than what is read (a relative change, so it must be
 * computed again from what a re-read shows). */
static int want_one_less(void *arg, const k8s_scale *cur, char *err, size_t errlen) {
    writer *w = arg;
    (void)err;
    (void)errlen;
    if (w->calls++ < w->interfere) {
        char v[16];
        snprintf(v, sizeof v, "%d", w->calls);
        patch_labels(w->c, DEP "/web", v); /* the second writer */
    }
    return cur->spec_replicas - 1;
}

TEST(k8s_fake_scale_conflicts_reapplied) {
    k8s_client *c = fake_start();
    if (!c || test_failed_now()) goto out;
    T_EQ_INT(post(c, "/api/v1/namespaces", "{\"metadata\":{\"name\":\"shop\"}}"), 0);
    T_EQ_INT(post(c, DEP, WEB), 0);
    char err[512];
    k8s_scale s;
    T_EQ_INT(k8s_scale_get(c, K8S_DEPLOYMENT, "shop", "web", 0, &s, err, sizeof err), 0);
    T_EQ_STR(s.selector, "app=web");
    T_EQ_INT(s.spec_replicas, 2);
    k8s_scale_result res;
    T_EQ_INT(k8s_scale_set(c, K8S_DEPLOYMENT, "shop", "web", 5, 0, &res, err, sizeof err), 0);
    T_EQ_INT(res.before, 2);
    T_EQ_INT(res.after, 5);
    /* the emulated controllers write status too (as real ones do): a PUT may meet a 409 from
     * them even without our second writer; it is re-applied all the same */
    /* two conflicts from a second writer: re-read, re-applied as "one less than now" */
    writer w = {c, 0, 2};
    T_EQ_INT(k8s_scale_update(c, K8S_DEPLOYMENT, "shop", "web", want_one_less, &w, 0, &res, err,
                              sizeof err),
             0);
    T_ASSERT(res.conflicts >= 2);
    T_EQ_INT(res.after, 4);
    T_EQ_INT(w.calls, res.conflicts + 1);
    T_EQ_INT(k8s_scale_get(c, K8S_DEPLOYMENT, "shop", "web", 0, &s, err, sizeof err), 0);
    T_EQ_INT(s.spec_replicas, 4);
    /* a writer that never stops: the change is refused loudly, not dropped */
    writer w2 = {c, 0, 1000};
    T_EQ_INT(k8s_scale_update(c, K8S_DEPLOYMENT, "shop", "web", want_one_less, &w2, 0, &res, err,
                              sizeof err),
             -EAGAIN);
    T_ASSERT(strstr(err, "gave up after 4 conflicts"));
    T_ASSERT(strstr(err, "replicas stay 4, wanted 3"));
    /* not found: clear */
    T_EQ_INT(k8s_scale_get(c, K8S_STATEFULSET, "shop", "nope", 0, &s, err, sizeof err), -ENOENT);
    T_ASSERT(strstr(err, "HTTP 404 NotFound: statefulsets.apps \"nope\" not found"));
    k8s_stats st;
    k8s_client_stats(c, &st);
    T_ASSERT(st.conflicts >= 6 && st.requests > 10);
out:
    if (c) k8s_client_free(c);
    fake_stop();
}

/* The annotation tide.io/fence of the object at path ("" none). */
static void fence_of(k8s_client *c, const char *path, char *out, size_t cap) {
    char err[512];
    k8s_resp r;
    out[0] = 0;
    if (k8s_request(c, "GET", path, NULL, NULL, 0, &r, err, sizeof err) < 0) return;
    const char *k = r.body ? strstr(r.body, "\"" K8S_FENCE_ANNOTATION "\": \"") : NULL;
    size_t kl = strlen("\"" K8S_FENCE_ANNOTATION "\": \"");
    if (!k && r.body) {
        k = strstr(r.body, "\"" K8S_FENCE_ANNOTATION "\":\"");
        kl--;
    }
    if (k) snprintf(out, cap, "%.*s", (int)strcspn(k + kl, "\""), k + kl);
    free(r.body);
}

/* Fencing of writes (README "Fencing"): a fenced write stamps tide.io/fence with its token
 * under a resourceVersion precondition (a second writer between read and write: re-read,
 * re-checked, re-applied); a lower token is refused (-ESTALE, the newer token reported) on the
 * Deployment and on pods (metadata and readiness-gate patches); a higher one takes over. */
TEST(k8s_fake_fenced_writes_refuse_older_tokens) {
    k8s_client *c = fake_start();
    if (!c || test_failed_now()) goto out;
    T_EQ_INT(post(c, "/api/v1/namespaces", "{\"metadata\":{\"name\":\"shop\"}}"), 0);
    T_EQ_INT(post(c, DEP, WEB), 0);
    char err[512], rv[K8S_RV_MAX], fence[32];
    k8s_scale_result res;
    k8s_fence f5 = {.token = 5}, f4 = {.token = 4}, f6 = {.token = 6};
    writer w = {c, 0, 2};
    T_EQ_INT(k8s_scale_update_fenced(c, K8S_DEPLOYMENT, "shop", "web", want_one_less, &w, &f5, 0,
                                     &res, err, sizeof err),
             0);
    T_ASSERT(res.conflicts >= 2); /* the precondition caught the second writer each time */
    T_EQ_INT(res.after, 1);
    fence_of(c, DEP "/web", fence, sizeof fence);
    T_EQ_STR(fence, "5");
    writer w1 = {c, 0, 0};
    T_EQ_INT(k8s_scale_update_fenced(c, K8S_DEPLOYMENT, "shop", "web", want_one_less, &w1, &f4, 0,
                                     &res, err, sizeof err),
             -ESTALE);
    T_EQ_INT(f4.seen, 5);
    T_ASSERT(strstr(err, "fenced:") && strstr(err, "records token 5, ours is 4"));
    T_EQ_INT(w1.calls, 0); /* refused before anything was computed or written */
    k8s_scale s;
    T_EQ_INT(k8s_scale_get(c, K8S_DEPLOYMENT, "shop", "web", 0, &s, err, sizeof err), 0);
    T_EQ_INT(s.spec_replicas, 1);
    /* pods */
    k8s_pod *pods = NULL;
    size_t n = 0;
    for (int i = 0; i < 200; i++) {
        free(pods);
        T_EQ_INT(k8s_pods_list(c, "shop", s.selector, "tide.io/serving", 0, &pods, &n, rv, err,
                               sizeof err),
                 0);
        if (n == 1 && pods[0].phase == K8S_PHASE_RUNNING) break;
        usleep(50000);
    }
    T_EQ_INT((int)n, 1);
    char path[512];
    snprintf(path, sizeof path, "/api/v1/namespaces/shop/pods/%s", pods[0].name);
    k8s_pod p;
    T_EQ_INT(k8s_pod_set_gate_fenced(c, "shop", pods[0].name, "tide.io/serving", 1, "TideActive",
                                     "on", 1700000000000, &f5, 0, &p, err, sizeof err),
             0);
    T_EQ_INT(p.gate, 1);
    fence_of(c, path, fence, sizeof fence);
    T_EQ_STR(fence, "5"); /* stamped before the status patch */
    f4.seen = 0;
    T_EQ_INT(k8s_pod_set_gate_fenced(c, "shop", pods[0].name, "tide.io/serving", 0, "TideDrained",
                                     "off", 1700000000000, &f4, 0, &p, err, sizeof err),
             -ESTALE);
    T_EQ_INT(f4.seen, 5);
    const char *patch = "{\"metadata\":{\"labels\":{\"tide.io/state\":\"cutoff\"}}}";
    T_EQ_INT(k8s_pod_patch_meta_fenced(c, "shop", pods[0].name, patch, "tide.io/serving", &f4, 0,
                                       &p, err, sizeof err),
             -ESTALE);
    /* a newer owner takes over; the old one is refused from then on */
    T_EQ_INT(k8s_pod_patch_meta_fenced(c, "shop", pods[0].name, patch, "tide.io/serving", &f6, 0,
                                       &p, err, sizeof err),
             0);
    T_EQ_STR(p.state, "cutoff");
    fence_of(c, path, fence, sizeof fence);
    T_EQ_STR(fence, "6");
    f5.seen = 0;
    T_EQ_INT(k8s_pod_set_gate_fenced(c, "shop", pods[0].name, "tide.io/serving", 0, "TideDrained",
                                     "off", 1700000000000, &f5, 0, &p, err, sizeof err),
             -ESTALE);
    T_EQ_INT(f5.seen, 6);
    /* unfenced (token 0, no high availability): as before, no read, no stamp */
    k8s_fence f0 = {0};
    T_EQ_INT(k8s_pod_set_gate_fenced(c, "shop", pods[0].name, "tide.io/serving", 0, "TideDrained",
                                     "off", 1700000000000, &f0, 0, &p, err, sizeof err),
             0);
    T_EQ_INT(p.gate, 0);
    free(pods);
out:
    if (c) k8s_client_free(c);
    fake_stop();
}

TEST(k8s_fake_pods_by_selector_patches_and_scalers) {
    k8s_client *c = fake_start();
    if (!c || test_failed_now()) goto out;
    T_EQ_INT(post(c, "/api/v1/namespaces", "{\"metadata\":{\"name\":\"shop\"}}"), 0);
    T_EQ_INT(post(c, DEP, WEB), 0);
    char err[512], rv[K8S_RV_MAX];
    k8s_scale s;
    T_EQ_INT(k8s_scale_get(c, K8S_DEPLOYMENT, "shop", "web", 0, &s, err, sizeof err), 0);
    k8s_pod *pods = NULL;
    size_t n = 0;
    for (int i = 0; i < 200; i++) {
        free(pods);
        T_EQ_INT(k8s_pods_list(c, "shop", s.selector, "tide.io/serving", 0, &pods, &n, rv, err,
                               sizeof err),
                 0);
        if (n == 2 && pods[0].phase == K8S_PHASE_RUNNING && pods[1].phase == K8S_PHASE_RUNNING)
            break;
        usleep(50000);
    }
    T_EQ_INT((int)n, 2);
    T_EQ_INT(pods[0].gate, -1);
    T_EQ_INT(pods[0].ready, 0); /* gate absent: not Ready */
    T_ASSERT(pods[0].node[0] && pods[0].uid[0]);
    const char *keys[] = {K8S_LABEL_STATE, K8S_ANNOT_DELETION_COST};
    const char *vals[] = {"cutoff", "-100"};
    int is_label[] = {1, 0};
    char *patch = k8s_meta_patch(keys, vals, is_label, 2);
    k8s_pod p;
    T_EQ_INT(k8s_pod_patch_meta(c, "shop", pods[0].name, patch, "tide.io/serving", 0, &p, err,
                                sizeof err),
             0);
    free(patch);
    T_EQ_STR(p.state, "cutoff");
    T_EQ_INT(p.deletion_cost, -100);
    T_EQ_INT(k8s_pod_set_gate(c, "shop", pods[1].name, "tide.io/serving", 1, "TideActive", "on",
                              1700000000000, 0, &p, err, sizeof err),
             0);
    T_EQ_INT(p.gate, 1);
    T_EQ_INT(p.ready, 1);
    T_EQ_INT(k8s_pod_set_gate(c, "shop", "nope", "tide.io/serving", 1, "TideActive", "on",
                              1700000000000, 0, &p, err, sizeof err),
             -ENOENT);
    free(pods);
    /* scalers: none, then an HPA (autoscaling/v2), then KEDA on a StatefulSet */
    char owner[256];
    T_EQ_INT(
        k8s_scaler_owner(c, K8S_DEPLOYMENT, "shop", "web", 0, owner, sizeof owner, err, sizeof err),
        0);
    T_EQ_INT(post(c, "/apis/autoscaling/v2/namespaces/shop/horizontalpodautoscalers",
                  "{\"metadata\":{\"name\":\"h\"},\"spec\":{\"scaleTargetRef\":{\"apiVersion\":"
                  "\"apps/v1\",\"kind\":\"Deployment\",\"name\":\"web\"},\"maxReplicas\":3}}"),
             0);
    T_EQ_INT(
        k8s_scaler_owner(c, K8S_DEPLOYMENT, "shop", "web", 0, owner, sizeof owner, err, sizeof err),
        1);
    T_EQ_STR(owner, "HorizontalPodAutoscaler shop/h");
    T_EQ_INT(k8s_scaler_owner(c, K8S_STATEFULSET, "shop", "web", 0, owner, sizeof owner, err,
                              sizeof err),
             0);
    T_EQ_INT(post(c, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                  "{\"metadata\":{\"name\":\"scaledobjects.keda.sh\"},\"spec\":{\"group\":"
                  "\"keda.sh\",\"scope\":\"Namespaced\",\"names\":{\"kind\":\"ScaledObject\","
                  "\"plural\":\"scaledobjects\",\"singular\":\"scaledobject\"},\"versions\":[{"
                  "\"name\":\"v1alpha1\",\"served\":true,\"storage\":true,\"schema\":{"
                  "\"openAPIV3Schema\":{\"type\":\"object\",\"x-kubernetes-preserve-unknown-"
                  "fields\":true}}}]}}"),
             0);
    T_EQ_INT(post(c, "/apis/keda.sh/v1alpha1/namespaces/shop/scaledobjects",
                  "{\"apiVersion\":\"keda.sh/v1alpha1\",\"kind\":\"ScaledObject\",\"metadata\":"
                  "{\"name\":\"so\"},\"spec\":{\"scaleTargetRef\":{\"kind\":\"StatefulSet\","
                  "\"name\":\"web\"}}}"),
             0);
    T_EQ_INT(k8s_scaler_owner(c, K8S_STATEFULSET, "shop", "web", 0, owner, sizeof owner, err,
                              sizeof err),
             1);
    T_EQ_STR(owner, "ScaledObject shop/so");
out:
    if (c) k8s_client_free(c);
    fake_stop();
}

typedef struct wstate {
    pthread_mutex_t mu;
    int resets, synced, added, modified, deleted, present;
    int rc;
    char err[512];
    k8s_client *c;
    int64_t until;
} wstate;

static int on_watch(void *arg, k8s_watch_what what, const char *obj, size_t len) {
    wstate *w = arg;
    (void)obj;
    (void)len;
    pthread_mutex_lock(&w->mu);
    switch (what) {
    case K8S_W_RESET:
        w->resets++;
        w->present = 0;
        break;
    case K8S_W_SYNCED:
        w->synced++;
        break;
    case K8S_W_ADDED:
        w->added++;
        w->present++;
        break;
    case K8S_W_MODIFIED:
        w->modified++;
        break;
    case K8S_W_DELETED:
        w->deleted++;
        w->present--;
        break;
    }
    pthread_mutex_unlock(&w->mu);
    return 0;
}

static void *watch_thread(void *arg) {
    wstate *w = arg;
    w->rc = k8s_watch(w->c, "/api/v1/namespaces/shop/pods", "app=web", on_watch, w, w->until,
                      w->err, sizeof w->err);
    return NULL;
}

static int wget(wstate *w, int *field) {
    pthread_mutex_lock(&w->mu);
    int v = *field;
    pthread_mutex_unlock(&w->mu);
    return v;
}

static int wait_for(wstate *w, int *field, int at_least) {
    for (int i = 0; i < 300; i++) {
        if (wget(w, field) >= at_least) return 1;
        usleep(50000);
    }
    return 0;
}

TEST(k8s_fake_watch_bookmarks_and_relist_after_410) {
    k8s_client *c = fake_start();
    if (!c || test_failed_now()) goto out;
    T_EQ_INT(post(c, "/api/v1/namespaces", "{\"metadata\":{\"name\":\"shop\"}}"), 0);
    T_EQ_INT(post(c, DEP, WEB), 0);
    wstate w = {.mu = PTHREAD_MUTEX_INITIALIZER, .c = c, .until = 0};
    pthread_t th;
    pthread_create(&th, NULL, watch_thread, &w);
    T_ASSERT(wait_for(&w, &w.synced, 1));
    T_ASSERT(wait_for(&w, &w.present, 2)); /* the ReplicaSet's two pods, listed or watched */
    char err[512];
    k8s_scale_result res;
    T_EQ_INT(k8s_scale_set(c, K8S_DEPLOYMENT, "shop", "web", 3, 0, &res, err, sizeof err), 0);
    T_ASSERT(wait_for(&w, &w.present, 3));
    T_ASSERT(wait_for(&w, &w.modified, 1));
    k8s_stats st;
    for (int i = 0; i < 100; i++) { /* bookmarks every 0.2 s move the resume point on */
        k8s_client_stats(c, &st);
        if (st.bookmarks >= 2) break;
        usleep(50000);
    }
    T_ASSERT(st.bookmarks >= 2);
    /* the watch falls out of the server's window: 410 -> RESET + relist */
    k8s_resp r;
    T_EQ_INT(k8s_request(c, "POST", "/fake/expire-watches", NULL, NULL, 0, &r, err, sizeof err), 0);
    free(r.body);
    T_EQ_INT(k8s_scale_set(c, K8S_DEPLOYMENT, "shop", "web", 1, 0, &res, err, sizeof err), 0);
    T_ASSERT(wait_for(&w, &w.resets, 2));
    T_ASSERT(wait_for(&w, &w.synced, 2));
    for (int i = 0; i < 200 && wget(&w, &w.present) != 1; i++)
        usleep(50000);
    T_EQ_INT(wget(&w, &w.present), 1); /* after the relist, the state is the cluster's */
    k8s_client_stats(c, &st);
    T_ASSERT(st.relists >= 2);
    /* stop ends the watch at once */
    k8s_client_stop(c);
    pthread_join(th, NULL);
    T_EQ_INT(w.rc, -ECANCELED);
out:
    if (c) k8s_client_free(c);
    fake_stop();
}
