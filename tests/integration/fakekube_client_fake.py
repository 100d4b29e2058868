"""fakekube_client_fake: the FAKE Kubernetes API server (tests/fakekube/fakekube.py) proven with
Debian's python3-kubernetes (the official client, its own models and Watch): the Scale
subresource (read: status.selector a string, resourceVersion the Deployment's; replace with a
stale resourceVersion -> 409 Conflict with Kubernetes' message and reason; with none -> an
unconditional update; merge patch of spec.replicas), one global increasing resourceVersion,
generation vs observedGeneration, list + watch (ADDED/MODIFIED/DELETED, BOOKMARK objects that
carry only a resourceVersion, 410 Expired for a compacted resourceVersion, resuming from a
bookmark's resourceVersion), pod label/annotation patches and pods/status condition patches
(Ready follows the readiness gate), the ReplicaSet's deletion order (unassigned/pending before
running, not ready before ready, pod-deletion-cost), StatefulSet ordinals created in order,
deletion with grace (deletionTimestamp, SIGTERM, then DELETED, process and cgroup gone),
custom resources with a status subresource, autoscaling/v2 HPAs.
"""
# timeout: 150
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _tidetest import Run, free_port, SRC  # noqa: E402

try:
    from kubernetes import client, config, watch
    from kubernetes.client.rest import ApiException
except ImportError:
    print("skipped: python3-kubernetes not installed (scripts/setup.sh installs it)")
    sys.exit(77)

if os.geteuid() != 0 or not os.access("/sys/fs/cgroup/unified/cgroup.procs", os.W_OK):
    print("skipped: needs root and a writable cgroup v2 (unified) mount")
    sys.exit(77)

FK = os.path.join(SRC, "tests", "fakekube", "fakekube.py")
CONFLICT = ('Operation cannot be fulfilled on deployments.apps "web": the object has been modified; '
            "please apply your changes to the latest version and try again")


def fail(msg):
    raise AssertionError(msg)


def wait(cond, what, secs=30):
    end = time.time() + secs
    while time.time() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    fail("timed out waiting for " + what)


with Run(logs=("fakekube.log",)) as run:
    port = free_port()
    state = run.path("fk")
    os.makedirs(state)
    fk = subprocess.Popen(["/usr/bin/python3", FK, "--port", str(port), "--token", "tok", "--state-dir", state,
                           "--start-delay", "0.6", "--bookmark-interval", "0.3", "--event-window", "100000"],
                          stdout=open(run.path("fakekube.log"), "w"), stderr=subprocess.STDOUT)
    run.procs.append(fk)

    def stop_fake():
        if fk.poll() is None:
            fk.send_signal(signal.SIGTERM)
            try:
                fk.wait(timeout=10)
            except subprocess.TimeoutExpired:
                fk.kill()
        subprocess.run(["/usr/bin/python3", FK, "--cleanup", state])
    run.exits.append(stop_fake)

    cfg = client.Configuration()
    cfg.host = f"http://127.0.0.1:{port}"
    cfg.api_key = {"authorization": "Bearer tok"}
    api = client.ApiClient(cfg)
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    ext, crs = client.ApiextensionsV1Api(api), client.CustomObjectsApi(api)

    def up():
        try:
            return core.list_namespace().items
        except Exception:
            return None
    wait(up, "the fake to answer")
    ns = "shop"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))

    # ---- watch pods from the start: every event in order ------------------------------------
    rv0 = core.list_namespaced_pod(ns).metadata.resource_version
    events, bookmarks = [], []
    stop_watch = threading.Event()

    watch_error = []

    def watcher():
        try:
            watch_loop()
        except Exception as e:  # reported by the main thread
            watch_error.append(repr(e))

    def watch_loop():
        w = watch.Watch()
        for ev in w.stream(core.list_namespaced_pod, ns, resource_version=rv0, allow_watch_bookmarks=True,
                           timeout_seconds=120):
            if ev["type"] == "BOOKMARK":
                bookmarks.append(ev["raw_object"])
                events.append(("BOOKMARK", None, int(ev["raw_object"]["metadata"]["resourceVersion"]), False))
            else:
                o = ev["object"]
                events.append((ev["type"], o.metadata.name, int(o.metadata.resource_version),
                               bool(o.metadata.deletion_timestamp)))
            if stop_watch.is_set():
                w.stop()
    wt = threading.Thread(target=watcher, daemon=True)
    wt.start()

    # ---- Deployment, Scale ------------------------------------------------------------------
    labels = {"app": "web"}
    dep = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="web"),
        spec=client.V1DeploymentSpec(
            replicas=2, selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[client.V1Container(name="web", image="web:1")],
                                      readiness_gates=[client.V1PodReadinessGate(condition_type="tide.io/serving")],
                                      termination_grace_period_seconds=5))))
    d = apps.create_namespaced_deployment(ns, dep)
    assert d.metadata.generation == 1, d.metadata
    wait(lambda: len([p for p in core.list_namespaced_pod(ns, label_selector="app=web").items
                      if p.status.phase == "Running"]) == 2, "2 running pods")
    d = apps.read_namespaced_deployment("web", ns)
    sc = apps.read_namespaced_deployment_scale("web", ns)
    assert isinstance(sc, client.V1Scale), type(sc)
    assert sc.status.selector == "app=web" and isinstance(sc.status.selector, str), sc.status
    assert sc.metadata.resource_version == d.metadata.resource_version, (sc.metadata, d.metadata)
    assert sc.spec.replicas == 2 and sc.status.replicas == 2, sc
    # a second writer moves the object on; our stale Scale is refused
    apps.patch_namespaced_deployment("web", ns, {"metadata": {"labels": {"writer": "two"}}})
    sc.spec.replicas = 3
    try:
        apps.replace_namespaced_deployment_scale("web", ns, sc)
        fail("a stale Scale PUT was accepted")
    except ApiException as e:
        body = json.loads(e.body)
        assert e.status == 409 and body["reason"] == "Conflict" and body["message"] == CONFLICT, (e.status, e.body)
        assert body["details"] == {"name": "web", "group": "apps", "kind": "deployments"}, body
    # re-read, re-apply: accepted; then no resourceVersion = unconditional
    sc = apps.read_namespaced_deployment_scale("web", ns)
    sc.spec.replicas = 3
    sc2 = apps.replace_namespaced_deployment_scale("web", ns, sc)
    assert sc2.spec.replicas == 3 and int(sc2.metadata.resource_version) > int(sc.metadata.resource_version)
    apps.patch_namespaced_deployment("web", ns, {"metadata": {"labels": {"writer": "three"}}})
    sc2.metadata.resource_version = None
    assert apps.replace_namespaced_deployment_scale("web", ns, sc2).spec.replicas == 3
    # merge patch of the scale
    assert apps.patch_namespaced_deployment_scale("web", ns, {"spec": {"replicas": 4}}).spec.replicas == 4
    d = apps.read_namespaced_deployment("web", ns)
    assert d.spec.replicas == 4 and d.metadata.generation == 3, d.metadata.generation  # 2 spec changes
    wait(lambda: apps.read_namespaced_deployment("web", ns).status.observed_generation == 3, "observedGeneration 3")
    pods = wait(lambda: [p for p in core.list_namespaced_pod(ns, label_selector="app=web").items
                         if p.status.phase == "Running"] if len(core.list_namespaced_pod(ns, label_selector="app=web").items) == 4 and
                all(p.status.phase == "Running" for p in core.list_namespaced_pod(ns, label_selector="app=web").items) else None,
                "4 running pods")
    print("scale: V1Scale, selector string, object's resourceVersion; stale PUT 409 Conflict; unconditional PUT; merge patch")

    # ---- pods: label/annotation patch, status condition patch, readiness gate ---------------
    p0 = pods[0].metadata.name
    core.patch_namespaced_pod(p0, ns, {"metadata": {"labels": {"tide.io/state": "online"},
                                                    "annotations": {"tide.io/since": "x"}}})
    p = core.read_namespaced_pod(p0, ns)
    assert p.metadata.labels["tide.io/state"] == "online" and p.metadata.annotations["tide.io/since"] == "x"
    ready = {c.type: c.status for c in p.status.conditions}
    assert ready["Ready"] == "False" and ready["ContainersReady"] == "True", ready  # gate missing
    for q in pods:
        core.patch_namespaced_pod_status(q.metadata.name, ns, {"status": {"conditions": [
            {"type": "tide.io/serving", "status": "True", "reason": "TideActive"}]}})
    p = core.read_namespaced_pod(p0, ns)
    assert {c.type: c.status for c in p.status.conditions}["Ready"] == "True"
    wait(lambda: (apps.read_namespaced_deployment("web", ns).status.ready_replicas or 0) == 4, "4 ready")
    # gate False on one pod: not Ready; cost on another
    notready, cheap = pods[1].metadata.name, pods[2].metadata.name
    core.patch_namespaced_pod_status(notready, ns, {"status": {"conditions": [
        {"type": "tide.io/serving", "status": "False", "reason": "TideDrained"}]}})
    for q in pods:
        core.patch_namespaced_pod(q.metadata.name, ns, {"metadata": {"annotations": {
            "controller.kubernetes.io/pod-deletion-cost": "-10" if q.metadata.name == cheap else "10"}}})
    apps.patch_namespaced_deployment_scale("web", ns, {"spec": {"replicas": 2}})

    def names():
        return sorted(q.metadata.name for q in core.list_namespaced_pod(ns, label_selector="app=web").items
                      if not q.metadata.deletion_timestamp)
    left = wait(lambda: names() if len(names()) == 2 else None, "2 pods left")
    assert notready not in left and cheap not in left, (left, notready, cheap)
    print("pods: label/annotation and status patches; Ready follows the gate; scale-in removed the not-ready pod, then the cheapest")

    # ---- deletion with grace ------------------------------------------------------------------
    procs = json.loads(urllib.request.urlopen(urllib.request.Request(
        f"http://127.0.0.1:{port}/fake/pods", headers={"Authorization": "Bearer tok"})).read())
    victim = left[0]
    pid, cg = procs[victim]["pid"], procs[victim]["pod_cgroup"]
    assert os.path.isdir(cg)
    core.delete_namespaced_pod(victim, ns, grace_period_seconds=5)
    gone = wait(lambda: victim not in [q.metadata.name for q in core.list_namespaced_pod(ns).items], "the pod to go")
    assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z", "process left"
    wait(lambda: not os.path.isdir(cg), "the pod cgroup to go")
    assert not watch_error, watch_error
    dels = [e for e in events if e[1] == victim]
    assert dels[-1][0] == "DELETED" and any(e[0] == "MODIFIED" and e[3] for e in dels), dels
    wait(lambda: len(names()) == 2, "the ReplicaSet to replace the deleted pod")
    print("delete: deletionTimestamp (MODIFIED), SIGTERM, DELETED; process and cgroup gone; replaced")

    # ---- StatefulSet ordinals in order --------------------------------------------------------
    sts = client.V1StatefulSet(
        metadata=client.V1ObjectMeta(name="db"),
        spec=client.V1StatefulSetSpec(
            replicas=3, service_name="db", selector=client.V1LabelSelector(match_labels={"app": "db"}),
            template=client.V1PodTemplateSpec(metadata=client.V1ObjectMeta(labels={"app": "db"}),
                                              spec=client.V1PodSpec(containers=[client.V1Container(name="db", image="db:1")]))))
    apps.create_namespaced_stateful_set(ns, sts)
    wait(lambda: (apps.read_namespaced_stateful_set("db", ns).status.ready_replicas or 0) == 3, "sts ready")
    added = [e[1] for e in events if e[0] == "ADDED" and e[1].startswith("db-")]
    assert added == ["db-0", "db-1", "db-2"], added
    apps.patch_namespaced_stateful_set_scale("db", ns, {"spec": {"replicas": 1}})
    wait(lambda: [q.metadata.name for q in core.list_namespaced_pod(ns, label_selector="app=db").items] == ["db-0"], "sts at 1")
    # the listing can show db-0 alone before the watch thread has read the second DELETED
    db_deleted = lambda: [e[1] for e in events if e[0] == "DELETED" and e[1].startswith("db-")]
    wait(lambda: len(db_deleted()) >= 2, "the watch to see both sts deletes")
    deleted = db_deleted()
    assert deleted == ["db-2", "db-1"], deleted
    print("statefulset: ADDED db-0, db-1, db-2 in order; scale-in DELETED db-2 then db-1")

    # ---- watch: one increasing resourceVersion, bookmarks, 410 -------------------------------
    wait(lambda: len(bookmarks) >= 2, "bookmarks")
    # object events strictly increase; a bookmark is never behind what came before it and
    # never ahead of what comes after it
    rvs = [e[2] for e in events if e[0] != "BOOKMARK"]
    assert rvs == sorted(rvs) and len(set(rvs)) == len(rvs), "resourceVersions not increasing"
    for i, e in enumerate(events):
        if e[0] == "BOOKMARK":
            assert all(x[2] <= e[2] for x in events[:i]), ("bookmark behind", events[:i + 1])
            assert all(x[2] > e[2] for x in events[i + 1:] if x[0] != "BOOKMARK"), ("bookmark ahead", e)
    b = bookmarks[-1]
    assert set(b) == {"kind", "apiVersion", "metadata"} and b["kind"] == "Pod", b
    assert set(b["metadata"]) <= {"resourceVersion", "creationTimestamp", "annotations"}, b
    stop_watch.set()
    # resume from the bookmark: nothing is replayed before it
    brv = b["metadata"]["resourceVersion"]
    core.patch_namespaced_pod("db-0", ns, {"metadata": {"labels": {"resumed": "1"}}})
    w = watch.Watch()
    got = []
    for ev in w.stream(core.list_namespaced_pod, ns, resource_version=brv, timeout_seconds=5):
        got.append((ev["type"], ev["object"].metadata.name))
        if ev["object"].metadata.name == "db-0":
            w.stop()
    assert got and got[-1] == ("MODIFIED", "db-0") and all(int(brv) < 10**12 for _ in got), got
    # compaction: an old resourceVersion is gone (410 Expired)
    urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/fake/compact", method="POST",
                                                  headers={"Authorization": "Bearer tok"}))
    try:
        for ev in watch.Watch().stream(core.list_namespaced_pod, ns, resource_version=rv0, timeout_seconds=5):
            fail(f"an event from a compacted resourceVersion: {ev['type']}")
        fail("no 410 for a compacted resourceVersion")
    except ApiException as e:
        assert e.status == 410 and "too old resource version" in str(e.reason), (e.status, e.reason)
    # relist and watch again from the list's resourceVersion works
    lst = core.list_namespaced_pod(ns)
    assert int(lst.metadata.resource_version) >= rvs[-1]
    print(f"watch: {len(rvs)} events with increasing resourceVersions, {len(bookmarks)} bookmarks (rv only), "
          "resume from a bookmark, 410 Expired after compaction")

    # ---- CRD with a status subresource, HPA v2 -------------------------------------------------
    import yaml
    crd = yaml.safe_load(open(os.path.join(SRC, "deploy", "crds", "workload.yaml")))
    ext.create_custom_resource_definition(crd)
    got = ext.read_custom_resource_definition("workloads.tide.io")
    assert any(c.type == "Established" and c.status == "True" for c in got.status.conditions)
    wl = {"apiVersion": "tide.io/v1alpha1", "kind": "Workload", "metadata": {"name": "web"},
          "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                   "maxReplicas": 8, "unknownField": 1}, "status": {"online": 99}}
    o = crs.create_namespaced_custom_object("tide.io", "v1alpha1", ns, "workloads", wl)
    assert "unknownField" not in o["spec"] and "status" not in o, o  # pruned; status ignored on create
    o = crs.patch_namespaced_custom_object_status("tide.io", "v1alpha1", ns, "workloads", "web",
                                                  {"status": {"online": 2, "standby": 1}})
    assert o["status"] == {"online": 2, "standby": 1} and o["metadata"]["generation"] == 1, o
    o["spec"]["maxReplicas"] = 9
    o2 = crs.replace_namespaced_custom_object("tide.io", "v1alpha1", ns, "workloads", "web", o)
    assert o2["metadata"]["generation"] == 2 and o2["status"]["online"] == 2, o2
    try:
        crs.replace_namespaced_custom_object("tide.io", "v1alpha1", ns, "workloads", "web", o)
        fail("stale custom object update accepted")
    except ApiException as e:
        assert e.status == 409 and json.loads(e.body)["reason"] == "Conflict", e.body
    try:
        bad = dict(wl, metadata={"name": "bad"}, spec={"maxReplicas": 0, "mode": "Sometimes"})
        crs.create_namespaced_custom_object("tide.io", "v1alpha1", ns, "workloads", bad)
        fail("invalid Workload accepted")
    except ApiException as e:
        body = json.loads(e.body)
        assert e.status == 422 and body["reason"] == "Invalid", e.body
        fields = sorted(c["field"] for c in body["details"]["causes"])
        assert fields == ["spec.maxReplicas", "spec.mode"], fields
    # this client (22.6) predates autoscaling/v2 models: the generic API speaks it
    hpa = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web"},
           "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                    "minReplicas": 1, "maxReplicas": 4}}
    crs.create_namespaced_custom_object("autoscaling", "v2", ns, "horizontalpodautoscalers", hpa)
    h = crs.list_namespaced_custom_object("autoscaling", "v2", ns, "horizontalpodautoscalers")["items"]
    assert [x["spec"]["scaleTargetRef"]["name"] for x in h] == ["web"], h
    print("crd: Established, unknown fields pruned, status subresource separate (generation on spec only), "
          "409 on stale update, 422 Invalid with causes; HPA v2 listed")
    apps.delete_namespaced_deployment("web", ns)
    apps.delete_namespaced_stateful_set("db", ns)
    wait(lambda: not core.list_namespaced_pod(ns).items, "all pods gone")
    print("PASS")
