#!/usr/bin/python3
"""fakekube: a FAKE Kubernetes API server for Tide's tests (no kube-apiserver can be installed on
these machines). It serves the part of the API that Tide's Kubernetes executor and real clients
(kubectl, python3-kubernetes) use, the way kube-apiserver and the controllers answer it:

- discovery (/api, /api/v1, /apis, /apis/G/V, /version, /openapi/v3) so kubectl maps kinds;
- one global, increasing resourceVersion; create/get/list/update/merge and strategic merge
  PATCH/delete; metadata.generation bumped on spec changes, status.observedGeneration by the
  emulated controllers; a PUT with a stale resourceVersion -> 409 Conflict with Kubernetes'
  message; an empty resourceVersion -> unconditional update;
- apps/v1 Deployments (through an emulated ReplicaSet, ranked deletion as the ReplicaSet
  controller does it: unassigned, pending, not ready, pod-deletion-cost, doubled up, ready for
  less time, more restarts, newer), StatefulSets (ordinals; OrderedReady creates one at a time
  and removes the highest ordinal first), the autoscaling/v1 Scale subresource;
- pods whose containers are real processes placed in kubepods-style cgroups on this machine
  (cgroupfs or systemd driver layout) after a start delay, readiness gates (Ready only when every
  gate condition is True), pods/status patches, deletion with grace (deletionTimestamp, SIGTERM,
  SIGKILL at the end of the grace period, then DELETED);
- list + watch (ADDED/MODIFIED/DELETED/BOOKMARK; a watch from a resourceVersion older than the
  event window gets an ERROR event with a 410 Expired Status, as the watch cache answers);
- CustomResourceDefinitions (apiextensions.k8s.io/v1) served at once, with a status subresource
  and structural-schema validation (type, required, enum, bounds, pattern, pruning of unknown
  fields unless x-kubernetes-preserve-unknown-fields); autoscaling/v2 HorizontalPodAutoscalers as
  stored objects.

usage: fakekube.py --port P [--token T] [--tls-cert C --tls-key K] [--state-dir D]
                   [--start-delay S] [--node N] [--cgroup-base B] [--cgroup-driver cgroupfs|systemd]
                   [--bookmark-interval S] [--event-window N]
       fakekube.py --cleanup D      (kills the pods' processes and removes their cgroups)
Admin (tests only, not part of the Kubernetes API): POST /fake/compact drops the event history
(every older resourceVersion then gets 410); POST /fake/slow?ms=N delays every API answer by N
ms (0 = off); POST /fake/interfere?n=N makes a second writer change the Deployment/StatefulSet
just before each of the next N updates (PUT) of one, so they meet 409; POST /fake/expire-watches also ends every live
watch with 410 (a watcher that fell out of the watch cache's window); GET /fake/pods lists
pod -> pid, cgroup.
"""
import argparse
import base64
import copy
import hashlib
import json
import math
import os
import re
import signal
import ssl
import subprocess
import sys
import threading
import time
import traceback
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

MAX_BODY = 3 << 20  # kube-apiserver's request size limit is 3 MiB

# ---------------------------------------------------------------------------------------------
# resource registry


class Res:
    def __init__(self, group, version, plural, kind, namespaced=True, subresources=(), short=(),
                 verbs=None, crd=None, singular=None):
        self.group, self.version, self.plural, self.kind = group, version, plural, kind
        self.namespaced = namespaced
        self.subresources = set(subresources)
        self.short = list(short)
        self.singular = singular or kind.lower()
        self.verbs = verbs or ["create", "delete", "get", "list", "patch", "update", "watch"]
        self.crd = crd  # the CRD object's spec.versions[i] for custom resources

    @property
    def api_version(self):
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def gr(self):  # "deployments.apps", as in Kubernetes' messages
        return f"{self.plural}.{self.group}" if self.group else self.plural


RESOURCES = {}  # (group, version, plural) -> Res


def register(r):
    RESOURCES[(r.group, r.version, r.plural)] = r


for r in [
    Res("", "v1", "namespaces", "Namespace", namespaced=False, short=["ns"]),
    Res("", "v1", "nodes", "Node", namespaced=False, short=["no"]),
    Res("", "v1", "pods", "Pod", subresources=["status"], short=["po"]),
    Res("", "v1", "services", "Service", short=["svc"]),
    Res("", "v1", "configmaps", "ConfigMap", short=["cm"]),
    Res("", "v1", "events", "Event", short=["ev"]),
    Res("apps", "v1", "deployments", "Deployment", subresources=["status", "scale"], short=["deploy"]),
    Res("apps", "v1", "statefulsets", "StatefulSet", subresources=["status", "scale"], short=["sts"]),
    Res("apps", "v1", "replicasets", "ReplicaSet", subresources=["status", "scale"], short=["rs"]),
    Res("autoscaling", "v1", "horizontalpodautoscalers", "HorizontalPodAutoscaler",
        subresources=["status"], short=["hpa"]),
    Res("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler",
        subresources=["status"], short=["hpa"]),
    Res("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition",
        namespaced=False, subresources=["status"], short=["crd", "crds"]),
]:
    register(r)

# storage: one table per (group, plural); versions of one group share it (autoscaling v1/v2)
STORE = {}  # (group, plural) -> {(ns, name): obj}
LOCK = threading.RLock()
CHANGED = threading.Condition(LOCK)
RV = [1000]
EVENTS = []  # (rv, type, group, plural, obj)
EVENT_FLOOR = [1000]  # events with rv <= floor are gone; watching from below it -> 410
EXPIRE_GEN = [0]  # bumped by /fake/expire-watches: live watches end with 410
SLOW_MS = [0]  # /fake/slow?ms=N: every API answer waits this long first (a slow API server)
INTERFERE = [0]  # /fake/interfere?n=N: a second writer changes the object before the next N PUTs
ARGS = None
PROCS = {}  # pod uid -> {"proc": Popen, "cgroups": [...], "container": id}


def now_iso(t=None):
    return datetime.fromtimestamp(time.time() if t is None else t, timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def parse_iso(s):
    try:
        return datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
    except (TypeError, ValueError):
        return None


def table(group, plural):
    return STORE.setdefault((group, plural), {})


def next_rv():
    RV[0] += 1
    return str(RV[0])


def record(typ, res, obj):
    """Appends a watch event (under LOCK) and wakes the watchers."""
    EVENTS.append((int(obj["metadata"]["resourceVersion"]), typ, res.group, res.plural,
                   copy.deepcopy(obj)))
    if len(EVENTS) > ARGS.event_window:
        drop = len(EVENTS) - ARGS.event_window
        EVENT_FLOOR[0] = EVENTS[drop - 1][0]
        del EVENTS[:drop]
    CHANGED.notify_all()


def status_obj(code, reason, message, details=None):
    o = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
         "message": message, "reason": reason, "code": code}
    if details is not None:
        o["details"] = details
    return o


class ApiError(Exception):
    def __init__(self, code, reason, message, details=None):
        super().__init__(message)
        self.status = status_obj(code, reason, message, details)


def not_found(res, name):
    return ApiError(404, "NotFound", f'{res.gr} "{name}" not found',
                    {"name": name, "group": res.group, "kind": res.plural})


def conflict(res, name):
    return ApiError(409, "Conflict",
                    f'Operation cannot be fulfilled on {res.gr} "{name}": the object has been '
                    "modified; please apply your changes to the latest version and try again",
                    {"name": name, "group": res.group, "kind": res.plural})


def invalid(res, name, causes):
    msg = f'{res.kind} "{name}" is invalid: ' + ", ".join(
        f"{c['field']}: {c['message']}" for c in causes)
    return ApiError(422, "Invalid", msg, {"name": name, "group": res.group, "kind": res.kind,
                                          "causes": causes})


# ---------------------------------------------------------------------------------------------
# labels and selectors


def selector_string(sel):
    """metav1.LabelSelector -> the string form Kubernetes prints (Scale.status.selector)."""
    if not sel:
        return ""
    parts = []
    reqs = [(k, "=", [v]) for k, v in (sel.get("matchLabels") or {}).items()]
    for e in sel.get("matchExpressions") or []:
        op = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}[e["operator"]]
        reqs.append((e["key"], op, sorted(e.get("values") or [])))
    for k, op, vals in sorted(reqs, key=lambda r: r[0]):
        if op == "=":
            parts.append(f"{k}={vals[0]}")
        elif op in ("in", "notin"):
            parts.append(f"{k} {op} ({','.join(vals)})")
        elif op == "exists":
            parts.append(k)
        else:
            parts.append("!" + k)
    return ",".join(parts)


def parse_label_selector(s):
    """The label selector query syntax -> predicate. Raises ValueError."""
    reqs = []
    i, n = 0, len(s)
    while i < n:
        m = re.match(r"\s*(!?)\s*([A-Za-z0-9_./-]+)\s*(==|=|!=|\s+in\s+|\s+notin\s+)?\s*", s[i:])
        if not m or not m.group(2):
            raise ValueError(f"unable to parse requirement: {s[i:]!r}")
        neg, key, op = m.group(1), m.group(2), (m.group(3) or "").strip()
        i += m.end()
        if neg:
            if op:
                raise ValueError(f"unable to parse requirement: {s!r}")
            reqs.append((key, "!", None))
        elif not op:
            reqs.append((key, "exists", None))
        elif op in ("in", "notin"):
            m2 = re.match(r"\(([^)]*)\)\s*", s[i:])
            if not m2:
                raise ValueError(f"unable to parse requirement: found {s[i:]!r}, expected: '('")
            vals = {v.strip() for v in m2.group(1).split(",")}
            i += m2.end()
            reqs.append((key, op, vals))
        else:
            m2 = re.match(r"([A-Za-z0-9_.-]*)\s*", s[i:])
            reqs.append((key, "!=" if op == "!=" else "=", m2.group(1)))
            i += m2.end()
        if i < n:
            if s[i] != ",":
                raise ValueError(f"unable to parse requirement: {s!r}")
            i += 1

    def match(labels):
        for k, op, v in reqs:
            has = k in labels
            if op == "exists" and not has or op == "!" and has:
                return False
            if op == "=" and labels.get(k) != v or op == "!=" and has and labels[k] == v:
                return False
            if op == "in" and (not has or labels[k] not in v):
                return False
            if op == "notin" and has and labels[k] in v:
                return False
        return True
    return match


def selector_match(sel, labels):
    if not sel:
        return False
    return parse_label_selector(selector_string(sel))(labels or {})


def field_value(obj, path):
    cur = obj
    for p in path.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(p)
    return "" if cur is None else str(cur)


def parse_field_selector(s):
    reqs = []
    for part in filter(None, s.split(",")):
        m = re.match(r"^([A-Za-z.]+)(==|=|!=)(.*)$", part)
        if not m:
            raise ValueError(f"invalid selector: '{part}'; can't understand '{part}'")
        reqs.append((m.group(1), m.group(2) == "!=", m.group(3)))
    return lambda o: all((field_value(o, k) != v) if ne else (field_value(o, k) == v)
                         for k, ne, v in reqs)


# ---------------------------------------------------------------------------------------------
# patches


def merge_patch(target, patch):
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    target = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            target.pop(k, None)
        else:
            target[k] = merge_patch(target.get(k), v)
    return target


# patchMergeKey of the lists Tide and the tests touch (from the Kubernetes API types)
MERGE_KEYS = {"containers": "name", "initContainers": "name", "conditions": "type",
              "env": "name", "ports": "containerPort", "volumes": "name",
              "volumeMounts": "mountPath", "readinessGates": "conditionType",
              "imagePullSecrets": "name", "tolerations": None, "finalizers": None}


def strategic_merge(target, patch, field=None):
    """Strategic merge patch: like a merge patch, except that lists with a patchMergeKey merge
    element-wise by that key; $patch: delete/replace and $setElementOrder/$retainKeys/
    $deleteFromPrimitiveList directives are honoured or dropped as the server does."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: v for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    target = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if k.startswith("$setElementOrder/") or k == "$retainKeys":
            continue
        if k.startswith("$deleteFromPrimitiveList/"):
            name = k.split("/", 1)[1]
            target[name] = [x for x in target.get(name) or [] if x not in v]
            continue
        if v is None:
            target.pop(k, None)
        elif isinstance(v, list) and MERGE_KEYS.get(k) and all(isinstance(e, dict) for e in v):
            key = MERGE_KEYS[k]
            cur = copy.deepcopy(target.get(k) or [])
            for e in v:
                idx = next((i for i, x in enumerate(cur) if x.get(key) == e.get(key)), None)
                if e.get("$patch") == "delete":
                    if idx is not None:
                        cur.pop(idx)
                elif idx is None:
                    cur.append({a: b for a, b in e.items() if a != "$patch"})
                else:
                    cur[idx] = strategic_merge(cur[idx], e, k)
            target[k] = cur
        elif isinstance(v, dict):
            r = strategic_merge(target.get(k), v, k)
            if r is None:
                target.pop(k, None)
            else:
                target[k] = r
        else:
            target[k] = copy.deepcopy(v)
    return target


def json_patch(target, ops):
    """RFC 6902 (add, remove, replace, test)."""
    doc = copy.deepcopy(target)

    def walk(path):
        parts = [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]]
        cur = doc
        for p in parts[:-1]:
            cur = cur[int(p)] if isinstance(cur, list) else cur[p]
        return cur, parts[-1]
    for op in ops:
        parent, last = walk(op["path"])
        o = op["op"]
        if o == "test":
            got = parent[int(last)] if isinstance(parent, list) else parent.get(last)
            if got != op["value"]:
                raise ApiError(422, "Invalid", f"the server rejected our request due to an error in our request: test failed at {op['path']}")
        elif o in ("add", "replace"):
            if isinstance(parent, list):
                if last == "-":
                    parent.append(op["value"])
                elif o == "add":
                    parent.insert(int(last), op["value"])
                else:
                    parent[int(last)] = op["value"]
            else:
                if o == "replace" and last not in parent:
                    raise ApiError(422, "Invalid", f"the server rejected our request due to an error in our request: replace operation does not apply: doc is missing key: {op['path']}")
                parent[last] = op["value"]
        elif o == "remove":
            if isinstance(parent, list):
                parent.pop(int(last))
            else:
                if last not in parent:
                    raise ApiError(422, "Invalid", f"the server rejected our request due to an error in our request: remove operation does not apply: doc is missing path: {op['path']}")
                del parent[last]
        else:
            raise ApiError(400, "BadRequest", f"unexpected operation {o!r}")
    return doc


# ---------------------------------------------------------------------------------------------
# structural schema validation for custom resources (the part of it CRDs commonly use)


def schema_validate(schema, value, path, causes, prune=True):
    """Validates value in place against an OpenAPI v3 structural schema; unknown fields are
    pruned (as the API server does) unless x-kubernetes-preserve-unknown-fields."""
    if schema is None:
        return value
    if value is None:
        if schema.get("nullable"):
            return value
        causes.append({"reason": "FieldValueRequired", "field": path or ".", "message": "Required value"})
        return value
    t = schema.get("type")
    tname = {dict: "object", list: "array", str: "string", bool: "boolean"}.get(type(value))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        tname = "integer" if (isinstance(value, int) or float(value).is_integer()) else "number"
    if schema.get("x-kubernetes-int-or-string"):
        if tname not in ("integer", "string"):
            causes.append({"reason": "FieldValueTypeInvalid", "field": path or ".",
                           "message": f'Invalid value: "{tname}": {path} in body must be of type integer-or-string: "{tname}"'})
            return value
        t = tname
    if t and not (t == tname or (t == "number" and tname == "integer")):
        causes.append({"reason": "FieldValueTypeInvalid", "field": path or ".",
                       "message": f'Invalid value: "{tname}": {path or "."} in body must be of type {t}: "{tname}"'})
        return value
    if "enum" in schema and value not in schema["enum"]:
        sup = ", ".join(json.dumps(x) for x in schema["enum"])
        causes.append({"reason": "FieldValueNotSupported", "field": path,
                       "message": f"Unsupported value: {json.dumps(value)}: supported values: {sup}"})
    if tname in ("integer", "number"):
        lo, hi = schema.get("minimum"), schema.get("maximum")
        if lo is not None and schema.get("exclusiveMinimum") and value <= lo:
            causes.append({"reason": "FieldValueInvalid", "field": path,
                           "message": f"Invalid value: {value}: {path} in body should be greater than {lo}"})
        elif lo is not None and value < lo:
            causes.append({"reason": "FieldValueInvalid", "field": path,
                           "message": f"Invalid value: {value}: {path} in body should be greater than or equal to {lo}"})
        if hi is not None and schema.get("exclusiveMaximum") and value >= hi:
            causes.append({"reason": "FieldValueInvalid", "field": path,
                           "message": f"Invalid value: {value}: {path} in body should be less than {hi}"})
        elif hi is not None and value > hi:
            causes.append({"reason": "FieldValueInvalid", "field": path,
                           "message": f"Invalid value: {value}: {path} in body should be less than or equal to {hi}"})
    if tname == "string":
        if "pattern" in schema and not re.search(schema["pattern"], value):
            causes.append({"reason": "FieldValueInvalid", "field": path,
                           "message": f'Invalid value: "{value}": {path} in body should match \'{schema["pattern"]}\''})
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            causes.append({"reason": "FieldValueTooLong", "field": path,
                           "message": f"Too long: may not be longer than {schema['maxLength']}"})
        if "minLength" in schema and len(value) < schema["minLength"]:
            causes.append({"reason": "FieldValueInvalid", "field": path,
                           "message": f"Invalid value: \"{value}\": {path} in body should be at least {schema['minLength']} chars long"})
    if tname == "array":
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            causes.append({"reason": "FieldValueTooMany", "field": path,
                           "message": f"Too many: {len(value)}: must have at most {schema['maxItems']} items"})
        if "minItems" in schema and len(value) < schema["minItems"]:
            causes.append({"reason": "FieldValueInvalid", "field": path,
                           "message": f"Invalid value: {len(value)}: {path} in body should have at least {schema['minItems']} items"})
        for i, e in enumerate(value):
            value[i] = schema_validate(schema.get("items"), e, f"{path}[{i}]", causes, prune)
    if tname == "object":
        props = schema.get("properties")
        for req in schema.get("required") or []:
            if req not in value:
                causes.append({"reason": "FieldValueRequired", "field": f"{path}.{req}" if path else req,
                               "message": "Required value"})
        if "minProperties" in schema and len(value) < schema["minProperties"]:
            causes.append({"reason": "FieldValueInvalid", "field": path,
                           "message": f"Invalid value: {len(value)}: {path} in body should have at least {schema['minProperties']} properties"})
        addl = schema.get("additionalProperties")
        for k in list(value):
            sub = f"{path}.{k}" if path else k
            if props is not None and k in props:
                value[k] = schema_validate(props[k], value[k], sub, causes, prune)
            elif isinstance(addl, dict):
                value[k] = schema_validate(addl, value[k], sub, causes, prune)
            elif prune and not schema.get("x-kubernetes-preserve-unknown-fields") and not (
                    path == "" and k in ("apiVersion", "kind", "metadata")):
                del value[k]
    return value


# ---------------------------------------------------------------------------------------------
# object lifecycle


def new_meta(obj, res, ns):
    md = obj.setdefault("metadata", {})
    if not md.get("name") and md.get("generateName"):
        md["name"] = md["generateName"] + uuid.uuid4().hex[:5]
    md["uid"] = str(uuid.uuid4())
    md["creationTimestamp"] = now_iso()
    if res.namespaced:
        md["namespace"] = ns
    else:
        md.pop("namespace", None)
    if res.plural not in ("pods", "events", "namespaces", "nodes", "services", "configmaps"):
        md["generation"] = 1
    obj["apiVersion"] = res.api_version
    obj["kind"] = res.kind


def name_ok(name, res):
    if res.plural == "namespaces":
        return re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", name or "") is not None
    return name is not None and len(name) <= 253 and re.fullmatch(
        r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*", name) is not None


def spec_of(obj):
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def validate_builtin(res, obj):
    name = obj["metadata"].get("name", "")
    causes = []
    if res.plural in ("deployments", "statefulsets", "replicasets"):
        sp = obj.get("spec") or {}
        sel = sp.get("selector")
        tl = ((sp.get("template") or {}).get("metadata") or {}).get("labels") or {}
        if not sel:
            causes.append({"reason": "FieldValueRequired", "field": "spec.selector", "message": "Required value"})
        elif not selector_match(sel, tl):
            causes.append({"reason": "FieldValueInvalid", "field": "spec.template.metadata.labels",
                           "message": f"Invalid value: {json.dumps(tl)}: `selector` does not match template `labels`"})
        r = sp.get("replicas", 1)
        if not isinstance(r, int) or r < 0:
            causes.append({"reason": "FieldValueInvalid", "field": "spec.replicas",
                           "message": f"Invalid value: {r}: must be greater than or equal to 0"})
        if res.plural == "statefulsets" and not sp.get("serviceName") and sp.get("serviceName") is not None:
            pass
    if res.plural == "pods":
        if not ((obj.get("spec") or {}).get("containers")):
            causes.append({"reason": "FieldValueRequired", "field": "spec.containers", "message": "Required value"})
    if res.plural == "customresourcedefinitions":
        sp = obj.get("spec") or {}
        want = f"{(sp.get('names') or {}).get('plural')}.{sp.get('group')}"
        if name != want:
            causes.append({"reason": "FieldValueInvalid", "field": "metadata.name",
                           "message": f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group'})
        if not any(v.get("storage") for v in sp.get("versions") or []):
            causes.append({"reason": "FieldValueInvalid", "field": "spec.versions",
                           "message": "Invalid value: must have exactly one version marked as storage version"})
    if causes:
        raise invalid(res, name, causes)


def defaults(res, obj):
    sp = obj.setdefault("spec", {}) if res.plural in ("deployments", "statefulsets", "replicasets", "pods") else None
    if res.plural in ("deployments", "statefulsets", "replicasets"):
        sp.setdefault("replicas", 1)
        sp.setdefault("revisionHistoryLimit", 10)
        if res.plural == "deployments":
            sp.setdefault("strategy", {"type": "RollingUpdate",
                                       "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
            sp.setdefault("progressDeadlineSeconds", 600)
        if res.plural == "statefulsets":
            sp.setdefault("podManagementPolicy", "OrderedReady")
            sp.setdefault("updateStrategy", {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
        # StatefulSetStatus/ReplicaSetStatus.replicas have no omitempty: always there
        obj.setdefault("status", {} if res.plural == "deployments" else
                       {"replicas": 0, "availableReplicas": 0} if res.plural == "statefulsets" else {"replicas": 0})
    if res.plural == "pods":
        sp.setdefault("terminationGracePeriodSeconds", 30)
        sp.setdefault("restartPolicy", "Always")
        obj.setdefault("status", {"phase": "Pending", "qosClass": qos_class(sp)})
    if res.plural == "customresourcedefinitions":
        register_crd(obj)


def qos_class(spec):
    req = lim = False
    guaranteed = True
    for c in spec.get("containers") or []:
        r = (c.get("resources") or {})
        rq, lm = r.get("requests") or {}, r.get("limits") or {}
        req |= bool(rq) or bool(lm)
        lim |= bool(lm)
        if not (lm.get("cpu") and lm.get("memory")) or any(rq.get(k, lm.get(k)) != lm.get(k) for k in ("cpu", "memory")):
            guaranteed = False
    if not req:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def register_crd(crd):
    sp = crd.get("spec") or {}
    names = sp.get("names") or {}
    for v in sp.get("versions") or []:
        if not v.get("served"):
            continue
        register(Res(sp.get("group"), v["name"], names.get("plural"), names.get("kind"),
                     namespaced=sp.get("scope", "Namespaced") == "Namespaced",
                     subresources=list((v.get("subresources") or {}).keys()),
                     short=names.get("shortNames") or [], singular=names.get("singular"), crd=v))
    crd["status"] = {"acceptedNames": copy.deepcopy(names), "storedVersions":
                     [v["name"] for v in sp.get("versions") or [] if v.get("storage")],
                     "conditions": [{"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
                                     "message": "no conflicts found", "lastTransitionTime": now_iso()},
                                    {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
                                     "message": "the initial names have been accepted", "lastTransitionTime": now_iso()}]}


def unregister_crd(crd):
    sp = crd.get("spec") or {}
    for v in sp.get("versions") or []:
        RESOURCES.pop((sp.get("group"), v["name"], (sp.get("names") or {}).get("plural")), None)
    STORE.pop((sp.get("group"), (sp.get("names") or {}).get("plural")), None)


def validate_cr(res, obj):
    schema = ((res.crd or {}).get("schema") or {}).get("openAPIV3Schema")
    if not schema:
        return
    causes = []
    # ObjectMeta is the server's own (never pruned by the CRD schema); apiVersion/kind too
    sch = dict(schema, properties={k: v for k, v in (schema.get("properties") or {}).items()
                                   if k not in ("metadata", "apiVersion", "kind")})
    keep = {k: obj.pop(k) for k in ("metadata", "apiVersion", "kind") if k in obj}
    schema_validate(sch, obj, "", causes)
    obj.update(keep)
    if causes:
        raise invalid(res, obj["metadata"].get("name", ""), causes)


def put_object(res, ns, obj, typ):
    """Stores obj with a new resourceVersion and records the event (under LOCK)."""
    obj["metadata"]["resourceVersion"] = next_rv()
    table(res.group, res.plural)[(ns if res.namespaced else "", obj["metadata"]["name"])] = obj
    record(typ, res, obj)
    return obj


def get_object(res, ns, name):
    return table(res.group, res.plural).get((ns if res.namespaced else "", name))


def remove_object(res, ns, obj):
    obj["metadata"]["resourceVersion"] = next_rv()
    table(res.group, res.plural).pop((ns if res.namespaced else "", obj["metadata"]["name"]), None)
    record("DELETED", res, obj)
    if res.plural == "customresourcedefinitions":
        unregister_crd(obj)
    # garbage collection of dependents (background propagation)
    uid = obj["metadata"]["uid"]
    for (g, p), tab in list(STORE.items()):
        for (ons, oname), o in list(tab.items()):
            if any(r.get("uid") == uid for r in o["metadata"].get("ownerReferences") or []):
                dres = next((r for r in RESOURCES.values() if r.group == g and r.plural == p), None)
                if dres is not None:
                    delete_object(dres, ons, o, None)


def delete_object(res, ns, obj, grace):
    """DELETE: pods go through graceful termination; everything else goes at once."""
    if res.plural == "pods":
        if obj["metadata"].get("deletionTimestamp"):
            if grace is not None and grace < obj["metadata"].get("deletionGracePeriodSeconds", 30):
                obj["metadata"]["deletionGracePeriodSeconds"] = grace
                put_object(res, ns, obj, "MODIFIED")
            return obj
        if grace is None:
            grace = obj["spec"].get("terminationGracePeriodSeconds", 30)
        if not obj["spec"].get("nodeName") or grace == 0 or obj["metadata"]["uid"] not in PROCS:
            remove_object(res, ns, obj)
            stop_pod_process(obj["metadata"]["uid"], 0)
            return obj
        obj["metadata"]["deletionTimestamp"] = now_iso(time.time() + grace)
        obj["metadata"]["deletionGracePeriodSeconds"] = grace
        put_object(res, ns, obj, "MODIFIED")
        stop_pod_process(obj["metadata"]["uid"], grace)
        return obj
    remove_object(res, ns, obj)
    return obj


# ---------------------------------------------------------------------------------------------
# pods as real processes in kubepods-style cgroups


def cgroup_base():
    if ARGS.cgroup_base:
        return ARGS.cgroup_base
    for b in ("/sys/fs/cgroup/unified", "/sys/fs/cgroup"):
        if os.path.exists(os.path.join(b, "cgroup.procs")) and os.path.exists(os.path.join(b, "cgroup.subtree_control")):
            return b
    return None


def pod_cgroup_dirs(pod, container_id):
    """The pod's and its container's cgroup, relative to the v2 base, as the kubelet names them."""
    uid = pod["metadata"]["uid"]
    qos = pod["status"].get("qosClass", "BestEffort")
    if ARGS.cgroup_driver == "systemd":
        u = uid.replace("-", "_")
        if qos == "Guaranteed":
            pod_dir = f"kubepods.slice/kubepods-pod{u}.slice"
        else:
            q = qos.lower()
            pod_dir = f"kubepods.slice/kubepods-{q}.slice/kubepods-{q}-pod{u}.slice"
        return pod_dir, f"{pod_dir}/cri-containerd-{container_id}.scope"
    pod_dir = f"kubepods/pod{uid}" if qos == "Guaranteed" else f"kubepods/{qos.lower()}/pod{uid}"
    return pod_dir, f"{pod_dir}/{container_id}"


def state_note(line):
    if ARGS.state_dir:
        with open(os.path.join(ARGS.state_dir, "fakekube-cgroups.txt"), "a") as f:
            f.write(line + "\n")


def start_pod_process(pod):
    """Starts the pod's first container as a process in its container cgroup; returns "" or why not."""
    base = cgroup_base()
    c = (pod["spec"].get("containers") or [{}])[0]
    cid = hashlib.sha256((pod["metadata"]["uid"] + c.get("name", "")).encode()).hexdigest()
    argv = list(c.get("command") or []) + list(c.get("args") or [])
    if not argv or not ARGS.run_commands:
        argv = ["/bin/sleep", "infinity"]
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "POD_NAME": pod["metadata"]["name"],
           "POD_NAMESPACE": pod["metadata"]["namespace"], "POD_UID": pod["metadata"]["uid"],
           "HOSTNAME": pod["metadata"]["name"]}
    for e in c.get("env") or []:
        if "value" in e:
            env[e["name"]] = str(e["value"])
    cgs = []
    if base:
        pod_dir, ctr_dir = pod_cgroup_dirs(pod, cid)
        pd, cd = os.path.join(base, pod_dir), os.path.join(base, ctr_dir)
        for attempt in range(20):  # a parent may be rmdir'd by another fake between mkdir calls
            try:
                os.makedirs(cd, exist_ok=True)
                break
            except FileNotFoundError:
                time.sleep(0.01)
        state_note(f"{pod['metadata']['uid']} {pd} {cd}")
        cgs = [cd, pd]
        wrapper = ["/bin/sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', cd] + argv
    else:
        wrapper = argv
    log = open(os.path.join(ARGS.state_dir, f"pod-{pod['metadata']['name']}.log"), "ab") if ARGS.state_dir else subprocess.DEVNULL
    try:
        p = subprocess.Popen(wrapper, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                             start_new_session=True, close_fds=True)
    except OSError as e:
        return f"{argv[0]}: {e}"
    finally:
        if log is not subprocess.DEVNULL:
            log.close()
    PROCS[pod["metadata"]["uid"]] = {"proc": p, "cgroups": cgs, "container": cid, "stop_at": None,
                                     "name": pod["metadata"]["name"]}
    return ""


def kill_cgroup(cd):
    try:
        if os.path.exists(os.path.join(cd, "cgroup.kill")):
            with open(os.path.join(cd, "cgroup.kill"), "w") as f:
                f.write("1")
        else:
            with open(os.path.join(cd, "cgroup.freeze"), "w") as f:
                f.write("0")
            for pid in open(os.path.join(cd, "cgroup.procs")).read().split():
                os.kill(int(pid), signal.SIGKILL)
    except OSError:
        pass


def rmdir_quiet(d, tries=50):
    for _ in range(tries):
        try:
            os.rmdir(d)
            return True
        except FileNotFoundError:
            return True
        except OSError:
            time.sleep(0.02)
    return False


def stop_pod_process(uid, grace):
    """SIGTERM now (a frozen pod gets it when thawed, as under a real runtime), SIGKILL when the
    grace period ends; grace 0 kills at once."""
    pr = PROCS.get(uid)
    if not pr:
        return
    if grace == 0:
        finish_pod_process(uid)
        return
    try:
        os.killpg(pr["proc"].pid, signal.SIGTERM)
    except OSError:
        pass
    pr["stop_at"] = time.time() + grace


def finish_pod_process(uid):
    pr = PROCS.pop(uid, None)
    if not pr:
        return
    for cd in pr["cgroups"][:1]:
        kill_cgroup(cd)
    try:
        os.killpg(pr["proc"].pid, signal.SIGKILL)
    except OSError:
        pass
    try:
        pr["proc"].wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass
    for d in pr["cgroups"]:
        rmdir_quiet(d)


def cleanup_all():
    for uid in list(PROCS):
        finish_pod_process(uid)
    base = cgroup_base()
    if base:
        for d in ("kubepods/besteffort", "kubepods/burstable", "kubepods",
                  "kubepods.slice/kubepods-besteffort.slice", "kubepods.slice/kubepods-burstable.slice",
                  "kubepods.slice"):
            rmdir_quiet(os.path.join(base, d), tries=1)  # only when empty: others may share it


def cleanup_state_dir(d):
    """--cleanup: for a fake that was killed without its own cleanup."""
    path = os.path.join(d, "fakekube-cgroups.txt")
    if not os.path.exists(path):
        return
    for line in open(path).read().splitlines():
        parts = line.split()
        if len(parts) != 3:
            continue
        _, pd, cd = parts
        if os.path.isdir(cd):
            kill_cgroup(cd)
            for _ in range(100):
                try:
                    if not open(os.path.join(cd, "cgroup.procs")).read().strip():
                        break
                except OSError:
                    break
                time.sleep(0.02)
        rmdir_quiet(cd)
        rmdir_quiet(pd)


# ---------------------------------------------------------------------------------------------
# controllers: ReplicaSet, Deployment, StatefulSet, kubelet


def cond_status(obj, typ):
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == typ:
            return c.get("status")
    return None


def pod_ready(p):
    return cond_status(p, "Ready") == "True"


def set_cond(conds, typ, status, reason=None, message=None):
    c = next((x for x in conds if x.get("type") == typ), None)
    if c is None:
        c = {"type": typ, "status": status, "lastProbeTime": None, "lastTransitionTime": now_iso()}
        conds.append(c)
    elif c.get("status") != status:
        c["status"] = status
        c["lastTransitionTime"] = now_iso()
    if reason:
        c["reason"] = reason
    if message:
        c["message"] = message


POD_RES = RESOURCES[("", "v1", "pods")]


def kubelet_ready_cond(p):
    """Ready = ContainersReady and every readiness gate condition True (a missing gate: False)."""
    conds = p["status"].setdefault("conditions", [])
    ok = cond_status(p, "ContainersReady") == "True"
    gates_ok = True
    for g in p["spec"].get("readinessGates") or []:
        if cond_status(p, g["conditionType"]) != "True":
            gates_ok = False
    if not ok:
        set_cond(conds, "Ready", "False", "ContainersNotReady", "containers with unready status")
    elif not gates_ok:
        set_cond(conds, "Ready", "False", "ReadinessGatesNotReady", "corresponding condition of pod readiness gate is not true")
    else:
        set_cond(conds, "Ready", "True")
        c = next(x for x in conds if x["type"] == "Ready")
        c.pop("reason", None)
        c.pop("message", None)


def kubelet_tick(now):
    """Schedules pending pods, starts their processes after the start delay, reaps exits and
    finishes graceful deletions."""
    for (ns, name), p in list(table("", "pods").items()):
        md, sp, st = p["metadata"], p["spec"], p["status"]
        uid = md["uid"]
        if md.get("deletionTimestamp"):
            pr = PROCS.get(uid)
            if pr is None or pr["proc"].poll() is not None or (pr["stop_at"] and now >= pr["stop_at"]):
                finish_pod_process(uid)
                remove_object(POD_RES, ns, p)
            continue
        created = parse_iso(md.get("creationTimestamp")) or now
        born = md.get("_fake_created", created)
        if not sp.get("nodeName"):
            if now - born >= ARGS.start_delay / 2:
                sp["nodeName"] = ARGS.node
                st["conditions"] = [{"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                                     "lastTransitionTime": now_iso()}]
                put_object(POD_RES, ns, p, "MODIFIED")
            continue
        if st.get("phase") == "Pending" and now - born >= ARGS.start_delay and uid not in PROCS:
            why = start_pod_process(p)
            conds = st.setdefault("conditions", [])
            c0 = (sp.get("containers") or [{}])[0]
            if why:
                st["containerStatuses"] = [{"name": c0.get("name", ""), "ready": False, "restartCount": 0,
                                            "image": c0.get("image", ""), "imageID": "",
                                            "state": {"waiting": {"reason": "CreateContainerError", "message": why}}}]
            else:
                pr = PROCS[uid]
                st["phase"] = "Running"
                st["startTime"] = now_iso()
                st["hostIP"] = "127.0.0.1"
                st["podIP"] = "127.0.0.1"
                st["containerStatuses"] = [{"name": c0.get("name", ""), "ready": True, "restartCount": 0,
                                            "started": True, "image": c0.get("image", ""),
                                            "imageID": "fake.local/" + c0.get("image", "") + "@sha256:" +
                                            hashlib.sha256(c0.get("image", "").encode()).hexdigest(),
                                            "containerID": "containerd://" + pr["container"],
                                            "state": {"running": {"startedAt": now_iso()}}}]
                set_cond(conds, "Initialized", "True")
                set_cond(conds, "ContainersReady", "True")
                kubelet_ready_cond(p)
            put_object(POD_RES, ns, p, "MODIFIED")
            continue
        pr = PROCS.get(uid)
        if st.get("phase") == "Running" and pr is not None and pr["proc"].poll() is not None:
            rc = pr["proc"].returncode
            finish_pod_process(uid)
            st["phase"] = "Succeeded" if rc == 0 else "Failed"
            for cs in st.get("containerStatuses") or []:
                cs["ready"] = False
                cs["state"] = {"terminated": {"exitCode": rc if rc >= 0 else 128 - rc, "finishedAt": now_iso()}}
            set_cond(st.setdefault("conditions", []), "ContainersReady", "False")
            kubelet_ready_cond(p)
            put_object(POD_RES, ns, p, "MODIFIED")


def owned_pods(owner):
    uid = owner["metadata"]["uid"]
    return [p for (ns, _), p in table("", "pods").items()
            if ns == owner["metadata"]["namespace"] and
            any(r.get("uid") == uid and r.get("controller") for r in p["metadata"].get("ownerReferences") or [])]


def owner_ref(owner, kind, api_version):
    return {"apiVersion": api_version, "kind": kind, "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}


def create_pod_from_template(owner, kind, api_version, name, extra_labels, hostname=None):
    tmpl = copy.deepcopy(owner["spec"].get("template") or {})
    md = tmpl.get("metadata") or {}
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "labels": dict(md.get("labels") or {}, **extra_labels),
                        "annotations": dict(md.get("annotations") or {}),
                        "ownerReferences": [owner_ref(owner, kind, api_version)]},
           "spec": tmpl.get("spec") or {"containers": []}}
    if not pod["metadata"]["annotations"]:
        del pod["metadata"]["annotations"]
    if hostname:
        pod["spec"]["hostname"] = hostname
        if owner["spec"].get("serviceName"):
            pod["spec"]["subdomain"] = owner["spec"]["serviceName"]
    ns = owner["metadata"]["namespace"]
    new_meta(pod, POD_RES, ns)
    defaults(POD_RES, pod)
    pod["metadata"]["_fake_created"] = time.time()
    put_object(POD_RES, ns, pod, "ADDED")
    return pod


def deletion_cost(p):
    v = (p["metadata"].get("annotations") or {}).get("controller.kubernetes.io/pod-deletion-cost")
    try:
        n = int(v)
        return n if -2147483648 <= n <= 2147483647 else 0
    except (TypeError, ValueError):
        return 0


def ready_time(p):
    for c in p["status"].get("conditions") or []:
        if c.get("type") == "Ready" and c.get("status") == "True":
            return parse_iso(c.get("lastTransitionTime"))
    return None


def max_restarts(p):
    return max([c.get("restartCount", 0) for c in p["status"].get("containerStatuses") or []] or [0])


def rank_for_deletion(pods, related, now):
    """The ReplicaSet controller's order (controller.ActivePodsWithRanks): pods first in the
    result are deleted first."""
    phase_ord = {"Pending": 0, "Unknown": 1, "Running": 2}
    node_count = {}
    for p in related:
        n = p["spec"].get("nodeName")
        if n:
            node_count[n] = node_count.get(n, 0) + 1

    def rank(p):
        n = p["spec"].get("nodeName")
        return node_count.get(n, 0) if n else 0

    def log_rank(t):
        d = (now - t) * 1e9
        return int(math.log2(d)) if d > 0 else -1

    import functools

    def less(a, b):
        na, nb = a["spec"].get("nodeName") or "", b["spec"].get("nodeName") or ""
        if na != nb and (not na or not nb):
            return -1 if not na else 1
        pa, pb = phase_ord.get(a["status"].get("phase"), 3), phase_ord.get(b["status"].get("phase"), 3)
        if pa != pb:
            return -1 if pa < pb else 1
        ra, rb = pod_ready(a), pod_ready(b)
        if ra != rb:
            return -1 if not ra else 1
        ca, cb = deletion_cost(a), deletion_cost(b)
        if ca != cb:
            return -1 if ca < cb else 1
        ka, kb = rank(a), rank(b)
        if ka != kb:
            return -1 if ka > kb else 1
        if ra and rb:
            ta, tb = ready_time(a), ready_time(b)
            if ta != tb:
                if ta is None or tb is None:
                    return -1 if ta is None else 1  # empty ready time first
                d = log_rank(ta) - log_rank(tb)
                if d == 0:
                    return -1 if a["metadata"]["uid"] < b["metadata"]["uid"] else 1
                return -1 if d < 0 else 1
        xa, xb = max_restarts(a), max_restarts(b)
        if xa != xb:
            return -1 if xa > xb else 1
        ta, tb = a["metadata"].get("_fake_created", 0), b["metadata"].get("_fake_created", 0)
        if ta != tb:
            return -1 if ta > tb else 1  # newer first
        return 0
    return sorted(pods, key=functools.cmp_to_key(less))


def active(p):
    return not p["metadata"].get("deletionTimestamp") and p["status"].get("phase") not in ("Succeeded", "Failed")


def replicaset_tick(now):
    rs_res = RESOURCES[("apps", "v1", "replicasets")]
    for (ns, name), rs in list(table("apps", "replicasets").items()):
        pods = owned_pods(rs)
        act = [p for p in pods if active(p)]
        want = rs["spec"].get("replicas", 1)
        if len(act) < want:
            for _ in range(want - len(act)):
                create_pod_from_template(rs, "ReplicaSet", "apps/v1", f"{name}-{uuid.uuid4().hex[:5]}",
                                         {})
        elif len(act) > want:
            for p in rank_for_deletion(act, act, now)[:len(act) - want]:
                delete_object(POD_RES, ns, p, None)
        pods = [p for p in owned_pods(rs) if active(p)]
        st = {"replicas": len(pods), "fullyLabeledReplicas": len(pods),
              "readyReplicas": sum(pod_ready(p) for p in pods),
              "availableReplicas": sum(pod_ready(p) for p in pods),
              "observedGeneration": rs["metadata"].get("generation", 1)}
        if not st["readyReplicas"]:
            del st["readyReplicas"]
        if not st["availableReplicas"]:
            del st["availableReplicas"]
        if rs.get("status") != st:
            rs["status"] = st
            put_object(rs_res, ns, rs, "MODIFIED")


def template_hash(tmpl):
    return hashlib.sha256(json.dumps(tmpl, sort_keys=True).encode()).hexdigest()[:10]


def deployment_tick(now):
    d_res = RESOURCES[("apps", "v1", "deployments")]
    rs_res = RESOURCES[("apps", "v1", "replicasets")]
    for (ns, name), d in list(table("apps", "deployments").items()):
        h = template_hash(d["spec"].get("template"))
        mine = [rs for (rns, _), rs in table("apps", "replicasets").items() if rns == ns and any(
            r.get("uid") == d["metadata"]["uid"] for r in rs["metadata"].get("ownerReferences") or [])]
        cur = next((rs for rs in mine if rs["metadata"]["labels"].get("pod-template-hash") == h), None)
        want = 0 if d["spec"].get("paused") else d["spec"].get("replicas", 1)
        if d["spec"].get("paused"):
            want = cur["spec"]["replicas"] if cur else 0
        if cur is None:
            tmpl = copy.deepcopy(d["spec"].get("template") or {})
            tmpl.setdefault("metadata", {}).setdefault("labels", {})["pod-template-hash"] = h
            sel = copy.deepcopy(d["spec"].get("selector") or {})
            sel.setdefault("matchLabels", {})["pod-template-hash"] = h
            cur = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
                   "metadata": {"name": f"{name}-{h}", "labels": dict(tmpl["metadata"]["labels"]),
                                "annotations": {"deployment.kubernetes.io/revision": str(len(mine) + 1)},
                                "ownerReferences": [owner_ref(d, "Deployment", "apps/v1")]},
                   "spec": {"replicas": want, "selector": sel, "template": tmpl}}
            new_meta(cur, rs_res, ns)
            cur["status"] = {"replicas": 0}
            put_object(rs_res, ns, cur, "ADDED")
        elif cur["spec"]["replicas"] != want:
            cur["spec"]["replicas"] = want
            cur["metadata"]["generation"] += 1
            put_object(rs_res, ns, cur, "MODIFIED")
        for rs in mine:  # older templates: scaled to 0 (the end state of a rollout)
            if rs is not cur and rs["spec"]["replicas"] != 0:
                rs["spec"]["replicas"] = 0
                rs["metadata"]["generation"] += 1
                put_object(rs_res, ns, rs, "MODIFIED")
        pods = [p for rs in mine + ([cur] if cur not in mine else []) for p in owned_pods(rs) if active(p)]
        upd = [p for p in owned_pods(cur) if active(p)]
        ready = sum(pod_ready(p) for p in pods)
        st = {"observedGeneration": d["metadata"].get("generation", 1), "replicas": len(pods),
              "updatedReplicas": len(upd), "readyReplicas": ready, "availableReplicas": ready,
              "unavailableReplicas": max(0, len(pods) - ready)}
        for k in ("readyReplicas", "availableReplicas", "unavailableReplicas", "updatedReplicas", "replicas"):
            if not st[k]:
                del st[k]
        old_conds = (d.get("status") or {}).get("conditions") or []
        conds = copy.deepcopy(old_conds)
        set_cond(conds, "Available", "True" if ready >= want else "False",
                 "MinimumReplicasAvailable" if ready >= want else "MinimumReplicasUnavailable",
                 "Deployment has minimum availability." if ready >= want else "Deployment does not have minimum availability.")
        st["conditions"] = conds
        if {k: v for k, v in (d.get("status") or {}).items()} != st:
            d["status"] = st
            put_object(d_res, ns, d, "MODIFIED")


def statefulset_tick(now):
    s_res = RESOURCES[("apps", "v1", "statefulsets")]
    for (ns, name), s in list(table("apps", "statefulsets").items()):
        want = s["spec"].get("replicas", 1)
        ordered = s["spec"].get("podManagementPolicy", "OrderedReady") == "OrderedReady"
        pods = {p["metadata"]["name"]: p for p in owned_pods(s)}
        rev = f"{name}-{template_hash(s['spec'].get('template'))}"
        # create missing ordinals below want, in order
        for i in range(want):
            pn = f"{name}-{i}"
            p = pods.get(pn)
            if p is None:
                create_pod_from_template(s, "StatefulSet", "apps/v1", pn,
                                         {"statefulset.kubernetes.io/pod-name": pn,
                                          "apps.kubernetes.io/pod-index": str(i),
                                          "controller-revision-hash": rev}, hostname=pn)
                if ordered:
                    break
            elif ordered and (not active(p) or not pod_ready(p)):
                break
        # remove ordinals >= want, highest first
        extra = sorted([p for p in pods.values() if int(p["metadata"]["name"].rsplit("-", 1)[1]) >= want],
                       key=lambda p: -int(p["metadata"]["name"].rsplit("-", 1)[1]))
        if ordered:
            terminating = any(p["metadata"].get("deletionTimestamp") for p in extra)
            if extra and not terminating:
                delete_object(POD_RES, ns, extra[0], None)
        else:
            for p in extra:
                if not p["metadata"].get("deletionTimestamp"):
                    delete_object(POD_RES, ns, p, None)
        cur = [p for p in owned_pods(s) if active(p)]
        ready = sum(pod_ready(p) for p in cur)
        st = {"observedGeneration": s["metadata"].get("generation", 1), "replicas": len(cur),
              "readyReplicas": ready, "availableReplicas": ready, "currentReplicas": len(cur),
              "updatedReplicas": len(cur), "currentRevision": rev, "updateRevision": rev,
              "collisionCount": 0}
        for k in ("readyReplicas", "currentReplicas", "updatedReplicas"):
            if not st[k]:
                del st[k]
        if s.get("status") != st:
            s["status"] = st
            put_object(s_res, ns, s, "MODIFIED")


def controller_loop():
    while True:
        time.sleep(0.05)
        try:
            with LOCK:
                now = time.time()
                kubelet_tick(now)
                deployment_tick(now)
                replicaset_tick(now)
                statefulset_tick(now)
        except Exception:
            traceback.print_exc()
            sys.stderr.flush()


# ---------------------------------------------------------------------------------------------
# scale subresource


def scale_of(res, obj):
    sel = obj["spec"].get("selector")
    md = obj["metadata"]
    return {"kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {"name": md["name"], "namespace": md["namespace"], "uid": md["uid"],
                         "resourceVersion": md["resourceVersion"],
                         "creationTimestamp": md["creationTimestamp"]},
            "spec": {"replicas": obj["spec"].get("replicas", 1)},
            "status": {"replicas": (obj.get("status") or {}).get("replicas", 0),
                       "selector": selector_string(sel)}}


def custom_scale_of(res, obj):
    sc = (res.crd.get("subresources") or {}).get("scale") or {}

    def get(path):
        return field_value(obj, path.lstrip(".")) if path else ""
    md = obj["metadata"]
    out = {"kind": "Scale", "apiVersion": "autoscaling/v1",
           "metadata": {"name": md["name"], "namespace": md.get("namespace", ""), "uid": md["uid"],
                        "resourceVersion": md["resourceVersion"], "creationTimestamp": md["creationTimestamp"]},
           "spec": {"replicas": int(get(sc.get("specReplicasPath", "")) or 0)},
           "status": {"replicas": int(get(sc.get("statusReplicasPath", "")) or 0)}}
    if sc.get("labelSelectorPath"):
        out["status"]["selector"] = get(sc["labelSelectorPath"])
    return out


def set_path(obj, path, value):
    parts = path.lstrip(".").split(".")
    cur = obj
    for p in parts[:-1]:
        cur = cur.setdefault(p, {})
    cur[parts[-1]] = value


# ---------------------------------------------------------------------------------------------
# HTTP


def discovery_resources(group, version):
    out = []
    for r in RESOURCES.values():
        if r.group != group or r.version != version:
            continue
        e = {"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced, "kind": r.kind,
             "verbs": r.verbs}
        if r.short:
            e["shortNames"] = r.short
        if r.plural == "pods" or r.plural == "deployments":
            e["categories"] = ["all"]
        out.append(e)
        for sub in sorted(r.subresources):
            se = {"name": f"{r.plural}/{sub}", "singularName": "", "namespaced": r.namespaced,
                  "kind": "Scale" if sub == "scale" else r.kind, "verbs": ["get", "patch", "update"]}
            if sub == "scale":
                se["group"], se["version"] = "autoscaling", "v1"
            out.append(se)
    return out


def group_versions():
    groups = {}
    for r in RESOURCES.values():
        if r.group:
            groups.setdefault(r.group, [])
            if r.version not in groups[r.group]:
                groups[r.group].append(r.version)
    out = []
    for g, vs in sorted(groups.items()):
        vs = sorted(vs, key=lambda v: (not v.startswith("v1") and not v.startswith("v2"), v), reverse=False)
        pref = max(vs, key=lambda v: (v.count("alpha") == 0 and v.count("beta") == 0, v))
        out.append({"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in vs],
                    "preferredVersion": {"groupVersion": f"{g}/{pref}", "version": pref}})
    return out


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *a):
        if ARGS.verbose:
            sys.stderr.write("%s %s\n" % (self.command, self.path))

    def send_json(self, code, obj):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        if ARGS.request_log:
            with open(ARGS.request_log, "a") as f:
                f.write(json.dumps({"method": self.command, "path": self.path, "status": code,
                                    "content_type": self.headers.get("Content-Type"),
                                    "body": getattr(self, "_body_text", None)}) + "\n")

    def read_raw(self):
        """The request body, Content-Length or chunked (kubectl replace --raw streams it)."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            raw = b""
            while True:
                line = self.rfile.readline(100)
                try:
                    n = int(line.split(b";")[0].strip() or b"0", 16)
                except ValueError:
                    raise ApiError(400, "BadRequest", "malformed chunked request body")
                if n == 0:
                    while self.rfile.readline(1000) not in (b"\r\n", b"\n", b""):
                        pass
                    return raw
                if len(raw) + n > MAX_BODY:
                    raise ApiError(413, "RequestEntityTooLarge", "Request entity too large: limit is 3145728")
                raw += self.rfile.read(n)
                self.rfile.readline(10)
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_BODY:
            raise ApiError(413, "RequestEntityTooLarge", "Request entity too large: limit is 3145728")
        return self.rfile.read(n) if n else b""

    def read_body(self):
        raw = self.read_raw()
        self._body_text = raw.decode("utf-8", "replace") if raw else None
        if not raw:
            return None
        ct = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        if ct == "application/vnd.kubernetes.protobuf":
            raise ApiError(415, "UnsupportedMediaType", "this fake decodes JSON bodies only, not application/vnd.kubernetes.protobuf (kubectl create NAMESPACE sends protobuf: use kubectl apply -f)")
        if ct in ("application/yaml", "application/apply-patch+yaml"):
            raise ApiError(415, "UnsupportedMediaType", f'the body of the request was in an unknown format - accepted media types include: application/json (this fake does not decode {ct})')
        try:
            return json.loads(raw)
        except ValueError as e:
            raise ApiError(400, "BadRequest", f"the object provided is unrecognized (must be of type JSON): {e}")

    def handle_any(self):
        self._body_text = None
        try:
            if ARGS.token and self.headers.get("Authorization") != "Bearer " + ARGS.token:
                self.read_raw()  # keep-alive framing
                return self.send_json(401, status_obj(401, "Unauthorized", "Unauthorized"))
            self.dispatch()
        except ApiError as e:
            self.send_json(e.status["code"], e.status)
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as e:
            traceback.print_exc()
            try:
                self.send_json(500, status_obj(500, "InternalError", f"fake: {e}"))
            except OSError:
                pass

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any

    def dispatch(self):
        u = urlsplit(self.path)
        q = {k: v[-1] for k, v in parse_qs(u.query, keep_blank_values=True).items()}
        parts = [p for p in u.path.split("/") if p]
        if u.path in ("/healthz", "/readyz", "/livez"):
            data = b"ok"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(data)
            return
        if u.path == "/version":
            return self.send_json(200, {"major": "1", "minor": "32", "gitVersion": "v1.32.0-fake",
                                        "platform": "linux/amd64"})
        if parts[:1] == ["fake"]:
            return self.fake_admin(parts[1:], q)
        if SLOW_MS[0] and not parse_bool(q.get("watch")):
            time.sleep(SLOW_MS[0] / 1000.0)
        if parts[:1] == ["openapi"]:
            return self.openapi(parts[1:])
        with LOCK:
            if parts == ["api"]:
                return self.send_json(200, {"kind": "APIVersions", "versions": ["v1"],
                                            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]})
            if parts == ["apis"]:
                return self.send_json(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": group_versions()})
            if parts == ["api", "v1"]:
                return self.send_json(200, {"kind": "APIResourceList", "groupVersion": "v1",
                                            "resources": discovery_resources("", "v1")})
            if len(parts) == 2 and parts[0] == "apis":
                g = next((x for x in group_versions() if x["name"] == parts[1]), None)
                if g is None:
                    raise ApiError(404, "NotFound", "the server could not find the requested resource")
                return self.send_json(200, dict(kind="APIGroup", apiVersion="v1", **g))
            if len(parts) == 3 and parts[0] == "apis":
                rs = discovery_resources(parts[1], parts[2])
                if not rs:
                    raise ApiError(404, "NotFound", "the server could not find the requested resource")
                return self.send_json(200, {"kind": "APIResourceList", "apiVersion": "v1",
                                            "groupVersion": f"{parts[1]}/{parts[2]}", "resources": rs})
            if parts[:2] == ["api", "v1"]:
                group, version, rest = "", "v1", parts[2:]
            elif parts[:1] == ["apis"] and len(parts) >= 4:
                group, version, rest = parts[1], parts[2], parts[3:]
            else:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            ns = None
            if len(rest) >= 3 and rest[0] == "namespaces":
                ns, rest = rest[1], rest[2:]
            elif len(rest) >= 2 and rest[0] == "namespaces" and (group, version, "namespaces") in RESOURCES:
                pass
            res = RESOURCES.get((group, version, rest[0])) if rest else None
            if res is None:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            name = rest[1] if len(rest) > 1 else None
            sub = rest[2] if len(rest) > 2 else None
            if len(rest) > 3 or (sub and sub not in res.subresources):
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            if ns is not None and not res.namespaced:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            if res.namespaced and ns is not None and res.plural != "namespaces" and \
                    self.command in ("POST", "PUT") and get_object(RESOURCES[("", "v1", "namespaces")], None, ns) is None:
                raise ApiError(404, "NotFound", f'namespaces "{ns}" not found',
                               {"name": ns, "kind": "namespaces"})
        if self.command == "GET" and name is None and parse_bool(q.get("watch")):
            return self.watch(res, ns, q)
        with LOCK:
            if self.command == "GET" and name is None:
                return self.list(res, ns, q)
            if self.command == "POST" and name is None:
                return self.create(res, ns, self.read_body(), q)
            if name is None and self.command == "DELETE":
                raise ApiError(405, "MethodNotAllowed", "this fake does not implement deletecollection")
            if name is None:
                raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
            if res.namespaced and ns is None:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            obj = get_object(res, ns, name)
            if self.command == "GET":
                if obj is None:
                    raise not_found(res, name)
                return self.send_json(200, self.view(res, obj, sub))
            if self.command == "DELETE":
                body = self.read_body() or {}
                if obj is None:
                    raise not_found(res, name)
                pre = body.get("preconditions") or {}
                if pre.get("uid") and pre["uid"] != obj["metadata"]["uid"]:
                    raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {res.gr} "{name}": Precondition failed: UID in precondition: {pre["uid"]}, UID in object meta: {obj["metadata"]["uid"]}')
                if pre.get("resourceVersion") and pre["resourceVersion"] != obj["metadata"]["resourceVersion"]:
                    raise conflict(res, name)
                grace = body.get("gracePeriodSeconds", q.get("gracePeriodSeconds"))
                grace = int(grace) if grace not in (None, "") else None
                out = delete_object(res, ns, obj, grace)
                if res.plural == "pods" or res.crd is not None:
                    return self.send_json(200, self.view(res, out, None))
                return self.send_json(200, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                            "status": "Success", "details": {"name": name, "group": res.group,
                                                                              "kind": res.plural, "uid": out["metadata"]["uid"]}})
            if obj is None:
                raise not_found(res, name)
            body = self.read_body()
            if self.command == "PUT":
                return self.update(res, ns, obj, sub, body, q)
            if self.command == "PATCH":
                return self.patch(res, ns, obj, sub, body, q)
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    # -- views -----------------------------------------------------------------------------------

    def view(self, res, obj, sub):
        if sub == "scale":
            return custom_scale_of(res, obj) if res.crd is not None else scale_of(res, obj)
        return clean(obj)

    def wants_table(self):
        return "as=Table" in (self.headers.get("Accept") or "")

    def list(self, res, ns, q):
        items = [o for (ons, _), o in sorted(table(res.group, res.plural).items())
                 if ns is None or ons == ns]
        if q.get("labelSelector"):
            try:
                m = parse_label_selector(q["labelSelector"])
            except ValueError as e:
                raise ApiError(400, "BadRequest", f"unable to parse requirement: {e}")
            items = [o for o in items if m(o["metadata"].get("labels") or {})]
        if q.get("fieldSelector"):
            try:
                fm = parse_field_selector(q["fieldSelector"])
            except ValueError as e:
                raise ApiError(400, "BadRequest", str(e))
            items = [o for o in items if fm(o)]
        out_items = []
        for o in items:
            c = clean(o)
            if res.crd is None:
                c.pop("kind", None)
                c.pop("apiVersion", None)
            out_items.append(c)
        if self.wants_table():
            return self.send_json(200, self.as_table(res, items))
        self.send_json(200, {"kind": res.kind + "List", "apiVersion": res.api_version,
                             "metadata": {"resourceVersion": str(RV[0])}, "items": out_items})

    def as_table(self, res, items):
        cols = [{"name": "Name", "type": "string", "format": "name", "description": "Name", "priority": 0}]
        extra = []
        if res.plural in ("deployments", "statefulsets", "replicasets"):
            cols.append({"name": "Ready", "type": "string", "format": "", "description": "ready/desired", "priority": 0})
            extra = [lambda o: f"{(o.get('status') or {}).get('readyReplicas', 0)}/{o['spec'].get('replicas', 1)}"]
        elif res.plural == "pods":
            cols += [{"name": "Ready", "type": "string", "format": "", "description": "", "priority": 0},
                     {"name": "Status", "type": "string", "format": "", "description": "", "priority": 0},
                     {"name": "Node", "type": "string", "format": "", "description": "", "priority": 0}]
            extra = [lambda o: "1/1" if pod_ready(o) else "0/1",
                     lambda o: "Terminating" if o["metadata"].get("deletionTimestamp") else o["status"].get("phase", ""),
                     lambda o: o["spec"].get("nodeName") or "<none>"]
        cols.append({"name": "Age", "type": "string", "format": "", "description": "", "priority": 0})
        rows = []
        for o in items:
            age = int(time.time() - (parse_iso(o["metadata"].get("creationTimestamp")) or time.time()))
            rows.append({"cells": [o["metadata"]["name"]] + [f(o) for f in extra] + [f"{age}s"],
                         "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                    "metadata": clean(o)["metadata"]}})
        return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": str(RV[0])},
                "columnDefinitions": cols, "rows": rows}

    # -- writes ----------------------------------------------------------------------------------

    def create(self, res, ns, obj, q):
        if not isinstance(obj, dict):
            raise ApiError(400, "BadRequest", "the object provided is unrecognized (must be a JSON object)")
        if obj.get("kind") and obj.get("kind") != res.kind:
            raise ApiError(400, "BadRequest", f"the API version in the data ({obj.get('apiVersion')}) does not match the expected API version ({res.api_version})")
        obj.setdefault("metadata", {})
        if res.namespaced and ns is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if res.namespaced:
            bns = obj["metadata"].get("namespace")
            if bns and bns != ns:
                raise ApiError(400, "BadRequest", "the namespace of the provided object does not match the namespace sent on the request")
        for k in ("resourceVersion", "uid", "creationTimestamp", "deletionTimestamp", "generation"):
            obj["metadata"].pop(k, None)
        new_meta(obj, res, ns)
        name = obj["metadata"].get("name")
        if not name:
            raise invalid(res, "", [{"reason": "FieldValueRequired", "field": "metadata.name",
                                     "message": "Required value: name or generateName is required"}])
        if not name_ok(name, res):
            raise invalid(res, name, [{"reason": "FieldValueInvalid", "field": "metadata.name",
                                       "message": f'Invalid value: "{name}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, \'-\' or \'.\', and must start and end with an alphanumeric character'}])
        if get_object(res, ns, name) is not None:
            raise ApiError(409, "AlreadyExists", f'{res.gr} "{name}" already exists',
                           {"name": name, "group": res.group, "kind": res.plural})
        if res.crd is not None:
            if "status" in res.subresources:
                obj.pop("status", None)
            validate_cr(res, obj)
        else:
            validate_builtin(res, obj)
        if q.get("dryRun") == "All":
            return self.send_json(201, clean(obj))
        if res.plural in ("deployments", "statefulsets", "replicasets", "pods", "customresourcedefinitions"):
            defaults(res, obj)
        if res.plural == "pods":
            obj["metadata"]["_fake_created"] = time.time()
        put_object(res, ns, obj, "ADDED")
        self.send_json(201, clean(obj))

    def commit(self, res, ns, old, new, sub, q, code=200):
        """Applies the rules every update follows, then stores new (or answers unchanged)."""
        name = old["metadata"]["name"]
        md = new.setdefault("metadata", {})
        for k in ("uid", "creationTimestamp", "namespace", "name", "deletionTimestamp",
                  "deletionGracePeriodSeconds", "generation", "_fake_created"):
            if k in old["metadata"]:
                md[k] = old["metadata"][k]
            else:
                md.pop(k, None)
        new["apiVersion"], new["kind"] = res.api_version, res.kind
        has_status_sub = "status" in res.subresources
        if sub == "status":
            st = new.get("status")
            new = {**copy.deepcopy(old), "status": st}
            # metadata changes through /status: labels and annotations are ignored like spec
        elif has_status_sub:
            new["status"] = copy.deepcopy(old.get("status"))
            if new["status"] is None:
                new.pop("status", None)
        if res.crd is not None:
            validate_cr(res, new)
        else:
            validate_builtin(res, new)
        if spec_of(new) != spec_of(old) and "generation" in old["metadata"]:
            new["metadata"]["generation"] = old["metadata"]["generation"] + 1
        if res.plural == "customresourcedefinitions":
            unregister_crd(old)
            defaults(res, new)
        if q.get("dryRun") == "All":
            return self.send_json(200, self.view(res, new, sub if sub == "scale" else None))
        strip = dict(new, metadata={k: v for k, v in new["metadata"].items() if k != "resourceVersion"})
        was = dict(old, metadata={k: v for k, v in old["metadata"].items() if k != "resourceVersion"})
        if strip == was:  # no-op updates keep the resourceVersion and send no event
            return self.send_json(200, self.view(res, old, sub))
        if res.plural == "pods" and (new.get("status") or {}).get("conditions"):
            kubelet_ready_cond(new)
        put_object(res, ns, new, "MODIFIED")
        return self.send_json(code, self.view(res, new, sub))

    def update(self, res, ns, obj, sub, body, q):
        if INTERFERE[0] > 0 and res.plural in ("deployments", "statefulsets"):
            # another writer got there first: a real change, a new resourceVersion, an event
            INTERFERE[0] -= 1
            obj["metadata"].setdefault("labels", {})["fake.tide.io/second-writer"] = str(RV[0])
            put_object(res, ns, obj, "MODIFIED")
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the object provided is unrecognized (must be a JSON object)")
        name = obj["metadata"]["name"]
        bmd = body.get("metadata") or {}
        if bmd.get("name") and bmd["name"] != name:
            raise ApiError(400, "BadRequest", "the name of the object (%s) does not match the name on the URL (%s)" % (bmd["name"], name))
        rv = bmd.get("resourceVersion", "")
        if rv and rv != obj["metadata"]["resourceVersion"]:
            raise conflict(res, name)
        if not rv and res.plural in ("customresourcedefinitions",) or (not rv and res.crd is not None):
            # custom resources and CRDs require a resourceVersion on update, as the real server does
            raise invalid(res, name, [{"reason": "FieldValueInvalid", "field": "metadata.resourceVersion",
                                       "message": "Invalid value: 0x0: must be specified for an update"}])
        if sub == "scale":
            if body.get("kind") not in (None, "Scale"):
                raise ApiError(400, "BadRequest", "the object provided is unrecognized (must be of type Scale)")
            r = (body.get("spec") or {}).get("replicas", 0)
            if not isinstance(r, int) or r < 0:
                raise invalid(res, name,
                              [{"reason": "FieldValueInvalid", "field": "spec.replicas",
                                "message": f"Invalid value: {r}: must be greater than or equal to 0"}])
            new = copy.deepcopy(obj)
            if res.crd is not None:
                set_path(new, ((res.crd.get("subresources") or {}).get("scale") or {}).get("specReplicasPath", ".spec.replicas"), r)
            else:
                new["spec"]["replicas"] = r
            return self.commit(res, ns, obj, new, "scale", q)
        new = copy.deepcopy(body)
        return self.commit(res, ns, obj, new, sub, q)

    def patch(self, res, ns, obj, sub, body, q):
        ct = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        base = self.view(res, obj, sub)
        if ct == "application/merge-patch+json":
            if not isinstance(body, dict):
                raise ApiError(400, "BadRequest", "error decoding patch: not a JSON object")
            new = merge_patch(base, body)
        elif ct == "application/strategic-merge-patch+json":
            if res.crd is not None:
                raise ApiError(415, "UnsupportedMediaType", "strategic merge patch is not supported for custom resources")
            if not isinstance(body, dict):
                raise ApiError(400, "BadRequest", "error decoding patch: not a JSON object")
            new = strategic_merge(base, body)
        elif ct == "application/json-patch+json":
            if not isinstance(body, list):
                raise ApiError(400, "BadRequest", "error decoding patch: json: cannot unmarshal object into Go value of type jsonpatch.Patch")
            try:
                new = json_patch(base, body)
            except (KeyError, IndexError, ValueError, TypeError) as e:
                raise ApiError(422, "Invalid", f"the server rejected our request due to an error in our request: {e}")
        else:
            raise ApiError(415, "UnsupportedMediaType", f'the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (this fake: not apply-patch), got "{ct}"')
        rv = (new.get("metadata") or {}).get("resourceVersion")
        brv = ((body if isinstance(body, dict) else {}).get("metadata") or {}).get("resourceVersion")
        if brv and brv != obj["metadata"]["resourceVersion"]:
            raise conflict(res, obj["metadata"]["name"])
        if sub == "scale":
            r = (new.get("spec") or {}).get("replicas")
            if not isinstance(r, int) or r < 0:
                raise invalid(res, obj["metadata"]["name"], [{"reason": "FieldValueInvalid", "field": "spec.replicas",
                                                              "message": f"Invalid value: {r}: must be greater than or equal to 0"}])
            upd = copy.deepcopy(obj)
            if res.crd is not None:
                set_path(upd, ((res.crd.get("subresources") or {}).get("scale") or {}).get("specReplicasPath", ".spec.replicas"), r)
            else:
                upd["spec"]["replicas"] = r
            return self.commit(res, ns, obj, upd, "scale", q)
        del rv
        return self.commit(res, ns, obj, new, sub, q)

    # -- watch -----------------------------------------------------------------------------------

    def watch(self, res, ns, q):
        sel = None
        if q.get("labelSelector"):
            try:
                sel = parse_label_selector(q["labelSelector"])
            except ValueError as e:
                raise ApiError(400, "BadRequest", str(e))
        fsel = parse_field_selector(q["fieldSelector"]) if q.get("fieldSelector") else None
        bookmarks = parse_bool(q.get("allowWatchBookmarks"))
        timeout = float(q.get("timeoutSeconds") or ARGS.watch_timeout)
        deadline = time.time() + timeout
        rv_s = q.get("resourceVersion", "")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def emit(ev):
            data = (json.dumps(ev) + "\n").encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        def matches(g, p, o):
            if g != res.group or p != res.plural:
                return False
            if ns is not None and o["metadata"].get("namespace") != ns:
                return False
            if sel and not sel(o["metadata"].get("labels") or {}):
                return False
            if fsel and not fsel(o):
                return False
            return True

        def api_obj(o):
            c = clean(o)
            c["apiVersion"], c["kind"] = res.api_version, res.kind
            return c
        try:
            with LOCK:
                if rv_s in ("", "0"):
                    # "any": synthetic ADDED for the current state, then changes
                    pos = RV[0]
                    initial = [o for (ons, _), o in sorted(table(res.group, res.plural).items())
                               if matches(res.group, res.plural, o)]
                else:
                    try:
                        pos = int(rv_s)
                    except ValueError:
                        raise ApiError(400, "BadRequest", f'invalid resource version "{rv_s}"')
                    initial = []
                    if pos < EVENT_FLOOR[0]:
                        emit({"type": "ERROR", "object": status_obj(
                            410, "Expired", f"too old resource version: {pos} ({EVENT_FLOOR[0] + 1})")})
                        self.wfile.write(b"0\r\n\r\n")
                        return
            gen = EXPIRE_GEN[0]
            for o in initial:
                emit({"type": "ADDED", "object": api_obj(o)})
            last_bm = time.time()
            while True:
                with LOCK:
                    while True:
                        if pos < EVENT_FLOOR[0] or gen != EXPIRE_GEN[0]:
                            evs = None
                            break
                        evs = [e for e in EVENTS if e[0] > pos]
                        if evs or time.time() >= deadline:
                            break
                        if bookmarks and time.time() - last_bm >= ARGS.bookmark_interval:
                            break
                        CHANGED.wait(timeout=min(0.2, max(0.01, deadline - time.time())))
                    cur = RV[0]
                if evs is None:
                    emit({"type": "ERROR", "object": status_obj(
                        410, "Expired", f"too old resource version: {pos} ({EVENT_FLOOR[0] + 1})")})
                    break
                for rv, typ, g, p, o in evs:
                    pos = rv
                    if matches(g, p, o):
                        emit({"type": typ, "object": api_obj(o)})
                if time.time() >= deadline:
                    break
                if bookmarks and time.time() - last_bm >= ARGS.bookmark_interval:
                    pos = max(pos, cur)
                    emit({"type": "BOOKMARK", "object": {"kind": res.kind, "apiVersion": res.api_version,
                                                         "metadata": {"resourceVersion": str(pos), "creationTimestamp": None}}})
                    last_bm = time.time()
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            self.close_connection = True

    # -- fake administration ---------------------------------------------------------------------

    def fake_admin(self, parts, q):
        with LOCK:
            if parts == ["interfere"] and self.command == "POST":
                INTERFERE[0] = int(q.get("n") or 0)
                return self.send_json(200, {"interfere": INTERFERE[0]})
            if parts == ["slow"] and self.command == "POST":
                SLOW_MS[0] = int(q.get("ms") or 0)
                return self.send_json(200, {"slowMs": SLOW_MS[0]})
            if parts == ["compact"] and self.command == "POST":
                EVENT_FLOOR[0] = RV[0]
                EVENTS.clear()
                CHANGED.notify_all()
                return self.send_json(200, {"compactedTo": RV[0]})
            if parts == ["expire-watches"] and self.command == "POST":
                # as when a watcher falls out of the watch cache's window: every live watch ends
                # with 410 and its last resourceVersion is too old to resume from
                next_rv()
                EVENT_FLOOR[0] = RV[0]
                EVENTS.clear()
                EXPIRE_GEN[0] += 1
                CHANGED.notify_all()
                return self.send_json(200, {"expiredAt": RV[0]})
            if parts == ["pods"] and self.command == "GET":
                out = {}
                for uid, pr in PROCS.items():
                    out[pr["name"]] = {"uid": uid, "pid": pr["proc"].pid, "cgroup": pr["cgroups"][0] if pr["cgroups"] else "",
                                       "pod_cgroup": pr["cgroups"][1] if pr["cgroups"] else ""}
                return self.send_json(200, out)
        raise ApiError(404, "NotFound", "no such fake admin endpoint")

    def openapi(self, parts):
        # kubectl asks /openapi/v3 to learn whether the server validates fields itself
        # (fieldValidation); this fake validates custom resources and accepts the parameter.
        if parts == ["v3"]:
            paths = {}
            with LOCK:
                for g in [""] + [x["name"] for x in group_versions()]:
                    for r in RESOURCES.values():
                        if r.group == g:
                            key = f"api/{r.version}" if not g else f"apis/{g}/{r.version}"
                            paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash=fake{RV[0]}"}
            return self.send_json(200, {"paths": paths})
        if parts and parts[0] == "v3":
            key = "/".join(parts[1:])
            doc = {"openapi": "3.0.0", "info": {"title": "Kubernetes (fake)", "version": "v1.32.0"},
                   "paths": {}, "components": {"schemas": {}}}
            with LOCK:
                for r in RESOURCES.values():
                    k = f"api/{r.version}" if not r.group else f"apis/{r.group}/{r.version}"
                    if k != key:
                        continue
                    base = f"/{k}/namespaces/{{namespace}}/{r.plural}/{{name}}" if r.namespaced else f"/{k}/{r.plural}/{{name}}"
                    params = [{"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": True}}]
                    gvk = {"x-kubernetes-group-version-kind": {"group": r.group, "version": r.version, "kind": r.kind}}
                    doc["paths"][base] = {"patch": dict(gvk, parameters=params), "put": dict(gvk, parameters=params)}
                    doc["paths"][base.rsplit("/", 1)[0]] = {"post": dict(gvk, parameters=params)}
            return self.send_json(200, doc)
        raise ApiError(404, "NotFound", "the server could not find the requested resource")


def parse_bool(v):
    """Go's strconv.ParseBool, as the API server reads boolean query parameters."""
    return v in ("1", "t", "T", "TRUE", "true", "True")


def clean(o):
    """The object as the API shows it (the fake's private keys dropped)."""
    c = copy.deepcopy(o)
    c["metadata"].pop("_fake_created", None)
    return c


def ensure_namespace(name):
    res = RESOURCES[("", "v1", "namespaces")]
    if get_object(res, None, name) is None:
        o = {"metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
             "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}
        new_meta(o, res, None)
        put_object(res, None, o, "ADDED")


def main():
    global ARGS
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int)
    ap.add_argument("--token", default="")
    ap.add_argument("--tls-cert", default="")
    ap.add_argument("--tls-key", default="")
    ap.add_argument("--state-dir", default="")
    ap.add_argument("--start-delay", type=float, default=0.5)
    ap.add_argument("--node", default="fake-node")
    ap.add_argument("--cgroup-base", default="")
    ap.add_argument("--cgroup-driver", choices=["cgroupfs", "systemd"], default="cgroupfs")
    ap.add_argument("--no-cgroups", action="store_true", help="pods as processes without cgroups")
    ap.add_argument("--run-commands", action="store_true",
                    help="run the containers' command/args (default: /bin/sleep infinity)")
    ap.add_argument("--bookmark-interval", type=float, default=1.0)
    ap.add_argument("--watch-timeout", type=float, default=300.0)
    ap.add_argument("--event-window", type=int, default=10000)
    ap.add_argument("--request-log", default="")
    ap.add_argument("--cleanup", default="", metavar="STATE_DIR")
    ap.add_argument("--verbose", action="store_true")
    ARGS = ap.parse_args()
    if ARGS.cleanup:
        cleanup_state_dir(ARGS.cleanup)
        return
    if not ARGS.port:
        ap.error("--port is required")
    if ARGS.no_cgroups:
        ARGS.cgroup_base = ""
        globals()["cgroup_base"] = lambda: None
    with LOCK:
        for n in ("default", "kube-system", "kube-public"):
            ensure_namespace(n)
        nres = RESOURCES[("", "v1", "nodes")]
        node = {"metadata": {"name": ARGS.node, "labels": {"kubernetes.io/hostname": ARGS.node}},
                "status": {"conditions": [{"type": "Ready", "status": "True"}],
                           "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}]}}
        new_meta(node, nres, None)
        put_object(nres, None, node, "ADDED")
    srv = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
    srv.daemon_threads = True
    if ARGS.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(ARGS.tls_cert, ARGS.tls_key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)

    def stop(signum, frame):
        raise SystemExit(0)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    threading.Thread(target=controller_loop, daemon=True).start()
    print(f"fakekube listening on 127.0.0.1:{ARGS.port}", flush=True)
    try:
        srv.serve_forever()
    finally:
        with LOCK:
            cleanup_all()


if __name__ == "__main__":
    main()
