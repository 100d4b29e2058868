"""deploy_crd_fake: the Workload CRD's OpenAPI v3 schema (deploy/crds/workload.yaml) held to the
spec validator (controlplane/spec/workload.c, run offline by `tidectl simulate --spec`), with the
structural-schema validation of the FAKE API server (tests/fakekube/fakekube.py, proven against
kubectl elsewhere) standing in for kube-apiserver's:
  - the fixture that uses every field of a spec, as a tide.io/v1alpha1 object, loses nothing to
    pruning (the schema knows every field the parser knows) and both accept it; with
    scaleTargetRef instead of target, both accept it too;
  - every numeric bound of the schema, one past it: both refuse; at it: the schema accepts and
    the spec validator has no complaint about that field;
  - every enum: a value outside it is refused by both; each value inside is accepted by the schema
    and the validator has no complaint about that field;
  - a missing required field (maxReplicas, a provider's type, a checker's action): both refuse.
"""
# timeout: 400
import copy
import importlib.util
import os
import subprocess
import sys
import tempfile

import yaml

SRC = os.environ.get("TIDE_SRC", os.getcwd())
BIN = os.environ.get("TIDE_BIN", os.path.join(SRC, "bin"))
spec = importlib.util.spec_from_file_location("fakekube", os.path.join(SRC, "tests", "fakekube", "fakekube.py"))
fk = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fk)

crd = yaml.safe_load(open(os.path.join(SRC, "deploy", "crds", "workload.yaml")))
SCHEMA = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
base = yaml.safe_load(open(os.path.join(SRC, "tests", "fixtures", "workload", "full.yaml")))
base["apiVersion"] = "tide.io/v1alpha1"
work = tempfile.mkdtemp(prefix="tide-crd.")


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def schema_check(doc):
    """(causes, pruned document) as the fake API server (and kube-apiserver) would see it."""
    d = copy.deepcopy(doc)
    meta = d.pop("metadata", None)
    d.pop("apiVersion", None), d.pop("kind", None)
    sch = dict(SCHEMA, properties={k: v for k, v in SCHEMA["properties"].items()
                                   if k not in ("metadata", "apiVersion", "kind")})
    causes = []
    fk.schema_validate(sch, d, "", causes)
    d["metadata"] = meta
    return causes, d


def tide_check(doc):
    """Problems the spec validator reports ([] = valid), as `path: message` lines."""
    path = os.path.join(work, "w.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(doc, f, sort_keys=False)
    r = subprocess.run([os.path.join(BIN, "tidectl"), "simulate", "--data", "/nonexistent-tide.csv",
                        "--spec", path, "--policy", "tide"], capture_output=True, text=True)
    if "invalid workload spec" in r.stderr:
        return [l for l in r.stderr.splitlines()[1:] if l.strip()]
    if "nonexistent-tide.csv" not in r.stderr:
        fail(f"unexpected answer from the spec validator: {r.stderr}")
    return []


def get(doc, path):
    cur = doc
    for p in path:
        cur = cur[p]
    return cur


def put(doc, path, value):
    d = copy.deepcopy(doc)
    cur = d
    for p in path[:-1]:
        cur = cur[p]
    if value is None:
        del cur[path[-1]]
    else:
        cur[path[-1]] = value
    return d


def dotted(path):
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (("." if out else "") + p)
    return out


def leaves(schema, doc, path=()):
    """(path, schema) of every leaf present in doc."""
    if isinstance(doc, dict) and "properties" in schema:
        for k, v in doc.items():
            if k in schema["properties"]:
                yield from leaves(schema["properties"][k], v, path + (k,))
    elif isinstance(doc, list) and "items" in schema:
        for i, v in enumerate(doc):
            yield from leaves(schema["items"], v, path + (i,))
    else:
        yield path, schema


try:
    # 1. every field known to both
    causes, pruned = schema_check(base)
    if causes:
        fail(f"the schema refuses the every-field fixture: {causes}")
    if pruned["spec"] != base["spec"]:
        fail("the schema prunes fields the spec validator knows: "
             f"{yaml.safe_dump(base['spec'])} became {yaml.safe_dump(pruned['spec'])}")
    if tide_check(base):
        fail(f"the spec validator refuses the fixture as tide.io/v1alpha1: {tide_check(base)}")
    ref = put(base, ("spec", "target"), None)
    ref["spec"]["scaleTargetRef"] = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}
    if schema_check(ref)[0] or tide_check(ref):
        fail(f"scaleTargetRef form refused: {schema_check(ref)[0]} {tide_check(ref)}")
    checked = 0
    spec_leaves = [(p, s) for p, s in leaves(SCHEMA, base) if p and p[0] == "spec"]
    for path, s in spec_leaves:
        name = dotted(path)
        # 2. numeric bounds
        if s.get("type") in ("integer", "number"):
            step = 1 if s["type"] == "integer" else 1e-6
            for bound, outside, excl in (("minimum", -step, "exclusiveMinimum"), ("maximum", step, "exclusiveMaximum")):
                if bound not in s:
                    continue
                b = s[bound]
                if s["type"] == "number" and abs(b) >= 1e14:
                    continue  # beyond a double's step of 1e-6
                bad_v = b if s.get(excl) else b + outside
                bad = put(base, path, int(bad_v) if s["type"] == "integer" else bad_v)
                sc, tc = schema_check(bad)[0], tide_check(bad)
                if not sc or not tc:
                    fail(f"{name} = {bad_v}: schema {'refuses' if sc else 'accepts'}, spec validator "
                         f"{'refuses' if tc else 'accepts'}: they must both refuse")
                if not s.get(excl):
                    ok = put(base, path, b)
                    if name == "spec.minReplicas":  # cross-field: minReplicas <= maxReplicas
                        ok["spec"]["maxReplicas"] = max(b, 1)
                    sc, tc = schema_check(ok)[0], tide_check(ok)
                    if sc or any(l.startswith(name + " ") for l in tc):
                        fail(f"{name} = {b} (the bound): schema {sc}, spec validator {tc}")
                checked += 1
        # 3. enums
        if "enum" in s:
            bad = put(base, path, "Bogus")
            if not schema_check(bad)[0] or not tide_check(bad):
                fail(f"{name} = Bogus: not refused by both")
            for v in s["enum"]:
                ok = put(base, path, v)
                sc, tc = schema_check(ok)[0], tide_check(ok)
                if sc or any(l.startswith(name + " ") for l in tc):
                    fail(f"{name} = {v}: schema {sc}, spec validator {tc}")
            checked += 1
    # 4. required fields
    for path in (("spec", "maxReplicas"), ("spec", "providers", 0, "type"), ("spec", "stabilityCheckers", 0, "action"),
                 ("spec", "behavior", "scaleUp", "policies", 0, "periodSeconds")):
        bad = put(base, path, None)
        if not schema_check(bad)[0] or not tide_check(bad):
            fail(f"{dotted(path)} missing: not refused by both ({schema_check(bad)[0]}, {tide_check(bad)})")
        checked += 1
    if checked < 40:
        fail(f"only {checked} constraints checked: the walk missed the schema")
    print(f"schema and spec validator agree on {checked} constraints; the every-field fixture loses nothing to pruning")
finally:
    subprocess.run(["rm", "-rf", work])
