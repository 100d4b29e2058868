"""deploy_manifests: the Kubernetes manifests in deploy/ are consistent and usable offline (no API
server here: structure is checked by this test, not by kubectl): yamllint clean; selectors match
pod labels; Services point at named container ports; every referenced ConfigMap, Secret,
ServiceAccount and ClusterRole exists; every flag the containers pass is one the binaries accept
(--help); and the daemon configs in the ConfigMap load in the real daemons, which then serve.
"""
# timeout: 60
import glob, os, shutil, subprocess, sys, tempfile, time
import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _freeport as freeport  # noqa: E402

SRC = os.environ.get("TIDE_SRC", os.getcwd())
BIN = os.environ.get("TIDE_BIN", os.path.join(SRC, "bin"))
os.chdir(SRC)


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


r = subprocess.run(["yamllint", "-s", "-c", "deploy/.yamllint", "deploy/"], capture_output=True, text=True)
if r.returncode != 0:
    fail("yamllint:\n" + r.stdout + r.stderr)

docs = []
for path in sorted(glob.glob("deploy/*.yaml")):
    if path.endswith("prometheus-scrape.yaml") or path.endswith("kustomization.yaml"):
        continue
    for d in yaml.safe_load_all(open(path)):
        if d:
            docs.append((path, d))
by_kind = {}
for path, d in docs:
    for key in ("apiVersion", "kind", "metadata"):
        if key not in d:
            fail(f"{path}: object without {key}")
    by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d

kust = yaml.safe_load(open("deploy/kustomization.yaml"))
for res in kust["resources"]:
    if not os.path.exists(os.path.join("deploy", res)):
        fail(f"kustomization names missing file {res}")

flags_ok = {}
for prog in ("tide-controlplane", "tide-agent"):
    out = subprocess.run([os.path.join(BIN, prog), "--help"], capture_output=True, text=True)
    flags_ok[prog] = out.stdout + out.stderr

workloads = list(by_kind.get("Deployment", {}).values()) + list(by_kind.get("DaemonSet", {}).values())
if len(workloads) != 2:
    fail(f"expected the control plane Deployment and the agent DaemonSet, found {len(workloads)}")
for w in workloads:
    name = w["metadata"]["name"]
    tmpl = w["spec"]["template"]
    labels = tmpl["metadata"]["labels"]
    for k, v in w["spec"]["selector"]["matchLabels"].items():
        if labels.get(k) != v:
            fail(f"{name}: selector {k}={v} does not match the pod template labels")
    sa = tmpl["spec"].get("serviceAccountName")
    if sa not in by_kind.get("ServiceAccount", {}):
        fail(f"{name}: service account {sa} is not defined")
    for vol in tmpl["spec"].get("volumes", []):
        if "configMap" in vol and vol["configMap"]["name"] not in by_kind.get("ConfigMap", {}):
            fail(f"{name}: ConfigMap {vol['configMap']['name']} is not defined")
        if "secret" in vol and vol["secret"]["secretName"] not in by_kind.get("Secret", {}):
            fail(f"{name}: Secret {vol['secret']['secretName']} is not defined")
    vol_names = {v["name"] for v in tmpl["spec"].get("volumes", [])}
    for c in tmpl["spec"]["containers"]:
        prog = os.path.basename(c["command"][0])
        for m in c.get("volumeMounts", []):
            if m["name"] not in vol_names:
                fail(f"{name}: mount of undefined volume {m['name']}")
        for a in c.get("args", []):
            flag = a.split("=", 1)[0]
            key = flag[2:].replace("-", "_")
            if not flag.startswith("--") or (flag not in flags_ok[prog] and f"  {key} " not in flags_ok[prog]):
                fail(f"{name}: {prog} does not accept {flag}")

for svc in by_kind.get("Service", {}).values():
    sel = svc["spec"]["selector"]
    targets = [w for w in workloads if all(w["spec"]["template"]["metadata"]["labels"].get(k) == v for k, v in sel.items())]
    if len(targets) != 1:
        fail(f"Service {svc['metadata']['name']} selects {len(targets)} workloads")
    ports = {p["name"] for c in targets[0]["spec"]["template"]["spec"]["containers"] for p in c.get("ports", [])}
    for p in svc["spec"]["ports"]:
        if p["targetPort"] not in ports:
            fail(f"Service {svc['metadata']['name']}: targetPort {p['targetPort']} is not a container port")

for b in by_kind.get("ClusterRoleBinding", {}).values():
    if b["roleRef"]["name"] not in by_kind.get("ClusterRole", {}):
        fail(f"ClusterRoleBinding {b['metadata']['name']}: no ClusterRole {b['roleRef']['name']}")
    for s in b["subjects"]:
        if s["name"] not in by_kind.get("ServiceAccount", {}):
            fail(f"ClusterRoleBinding {b['metadata']['name']}: no ServiceAccount {s['name']}")

# kustomize renders the whole set (the CRD included), RBAC grants what the Kubernetes executor
# uses, and the NetworkPolicy names the control plane's container ports.
if shutil.which("kubectl"):
    r = subprocess.run(["kubectl", "kustomize", "deploy/"], capture_output=True, text=True)
    if r.returncode != 0:
        fail("kubectl kustomize deploy/:\n" + r.stderr)
    kinds = [d["kind"] for d in yaml.safe_load_all(r.stdout) if d]
    for k in ("CustomResourceDefinition", "NetworkPolicy", "ClusterRole", "Deployment", "DaemonSet"):
        if k not in kinds:
            fail(f"kubectl kustomize deploy/ renders no {k}")
else:
    print("(kubectl not installed: kustomize rendering not checked)")
crd = yaml.safe_load(open("deploy/crds/workload.yaml"))
v = [x for x in crd["spec"]["versions"] if x["served"]]
if crd["spec"]["group"] != "tide.io" or [x["name"] for x in v] != ["v1alpha1"] or "status" not in v[0].get("subresources", {}):
    fail("the Workload CRD must serve tide.io/v1alpha1 with a status subresource")
rules = by_kind["ClusterRole"]["tide-controlplane"]["rules"]


def grants(group, resource, verb):
    return any(group in r["apiGroups"] and resource in r["resources"] and verb in r["verbs"] for r in rules)


for g, res, verbs in [("", "pods", ["get", "list", "watch", "patch"]), ("", "pods/status", ["patch"]),
                      ("apps", "deployments/scale", ["get", "update", "patch"]),
                      ("apps", "deployments", ["patch"]), ("apps", "statefulsets", ["patch"]),
                      ("apps", "statefulsets/scale", ["get", "update", "patch"]),
                      ("tide.io", "workloads", ["get", "list", "watch"]),
                      ("tide.io", "workloads/status", ["update", "patch"]),
                      ("autoscaling", "horizontalpodautoscalers", ["list"]), ("keda.sh", "scaledobjects", ["list"])]:
    for verb in verbs:
        if not grants(g, res, verb):
            fail(f"ClusterRole tide-controlplane does not grant {verb} on {res} ({g or 'core'})")
netpol = [d for _, d in docs if d["kind"] == "NetworkPolicy"]
if len(netpol) != 1:
    fail("expected one NetworkPolicy")
cp_dep = by_kind["Deployment"]["tide-controlplane"]
cp_ports = {p["name"] for c in cp_dep["spec"]["template"]["spec"]["containers"] for p in c.get("ports", [])}
np_sel = netpol[0]["spec"]["podSelector"]["matchLabels"]
if any(cp_dep["spec"]["template"]["metadata"]["labels"].get(k) != val for k, val in np_sel.items()):
    fail("the NetworkPolicy does not select the control plane's pods")
np_ports = {p["port"] for rule in netpol[0]["spec"]["ingress"] for p in rule.get("ports", [])}
if np_ports != cp_ports:
    fail(f"NetworkPolicy ports {sorted(np_ports)} are not the control plane's ports {sorted(cp_ports)}")

# The shipped daemon configs load in the real daemons (flags move the listeners to free
# loopback ports and the state to a temp dir, as the manifests' flags do in a cluster).
cm = by_kind["ConfigMap"]["tide-config"]["data"]
work = tempfile.mkdtemp(prefix="tide-deploy.")
procs = []


def port():
    return freeport.free_port()


def wait(cond, what, secs=20):
    end = time.time() + secs
    while time.time() < end:
        if cond():
            return
        time.sleep(0.05)
    fail("timed out waiting for " + what)


try:
    for name, text in cm.items():
        open(os.path.join(work, name), "w").write(text)
    tok = os.path.join(work, "token")
    open(tok, "w").write("deploy-test-token-0123456789abcdef\n"); os.chmod(tok, 0o600)
    ap, hp, sock = port(), port(), os.path.join(work, "cp.sock")
    cp = subprocess.Popen([os.path.join(BIN, "tide-controlplane"), "--config", os.path.join(work, "controlplane.conf"),
                           "--listen", f"127.0.0.1:{ap}", "--http", f"127.0.0.1:{hp}", "--socket", sock,
                           "--token-file", tok, "--data-dir", os.path.join(work, "data"),
                           "--prometheus", f"http://127.0.0.1:{port()}"],
                          stdout=open(os.path.join(work, "cp.log"), "w"), stderr=subprocess.STDOUT)
    procs.append(cp)
    ctl = [os.path.join(BIN, "tidectl"), "--socket", sock]
    wait(lambda: cp.poll() is not None or subprocess.run(ctl + ["status"], capture_output=True).returncode == 0,
         "the control plane with the shipped config")
    if cp.poll() is not None:
        fail("control plane exited with the shipped config:\n" + open(os.path.join(work, "cp.log")).read())
    ag = subprocess.Popen([os.path.join(BIN, "tide-agent"), "--config", os.path.join(work, "agent.conf"),
                           "--controlplane", f"127.0.0.1:{ap}", "--node", "deploy-node", "--token-file", tok,
                           "--spool-dir", os.path.join(work, "spool"), "--state-dir", os.path.join(work, "state")],
                          stdout=open(os.path.join(work, "agent.log"), "w"), stderr=subprocess.STDOUT)
    procs.append(ag)
    wait(lambda: ag.poll() is not None or b"deploy-node" in subprocess.run(ctl + ["agents", "--json"], capture_output=True).stdout,
         "the agent with the shipped config to connect")
    if ag.poll() is not None:
        fail("agent exited with the shipped config:\n" + open(os.path.join(work, "agent.log")).read())
    for p in procs:
        p.terminate()
    for p in procs:
        if p.wait(timeout=20) != 0:
            fail(f"{p.args[0]} exited with {p.returncode} on SIGTERM")
    print("manifests consistent; shipped configs load and serve")
finally:
    for p in procs:
        if p.poll() is None:
            p.kill()
    shutil.rmtree(work, ignore_errors=True)
