#!/usr/bin/env python3
"""ha_owners.py ETCD_URL PREFIX N OUT: follows a group of control planes in etcd (its v3 JSON
gateway) for tests/bench/ha_etcd.sh and appends to OUT, as it happens, one line per change of
the group's state:

    T_MS MEMBERS OWNED_BY_LIVE PLACED

T_MS: wall-clock ms of the watch event that made the change; MEMBERS: the live members
(member keys, comma-separated, sorted); OWNED_BY_LIVE: how many of the N workloads have an
owner key held by a live member; PLACED: how many are held by their rendezvous owner among the
live members (controlplane/cluster/ring.c, the same hash), i.e. where they settle. A failover
is over at the first line after the kill whose members lack the killed one and whose
OWNED_BY_LIVE is N: the owners' txns that created the keys are what lets them act (from their
next one-second tick); a rejoin is over when PLACED is N with the member back. Reading etcd's own watch stream times
the take-over without asking the busy control planes (tidectl status through their loops)."""
import base64
import http.client
import json
import sys
import time
import urllib.parse
import urllib.request


def b64(s):
    return base64.b64encode(s.encode()).decode()


def unb64(s):
    return base64.b64decode(s).decode(errors="replace") if s else ""


M64 = (1 << 64) - 1


def ring_score(member, workload):
    """cluster/ring.c's ring_score: FNV-1a over member, 0xff, workload; splitmix64's finalizer."""
    h = 1469598103934665603
    for c in member.encode() + b"\xff" + workload.encode():
        h = ((h ^ c) * 1099511628211) & M64
    h ^= h >> 30
    h = (h * 0xbf58476d1ce4e5b9) & M64
    h ^= h >> 27
    h = (h * 0x94d049bb133111eb) & M64
    h ^= h >> 31
    return h


def ring_owner(members, workload):
    best, bs = None, 0
    for m in sorted(members):
        sc = ring_score(m, workload)
        if best is None or sc > bs:
            best, bs = m, sc
    return best


def prefix_end(p):
    return p[:-1] + chr(ord(p[-1]) + 1)


def main():
    url, prefix, n, out = sys.argv[1], sys.argv[2].rstrip("/") + "/", int(sys.argv[3]), sys.argv[4]
    members, owners = set(), {}
    # the state now (paged), then the watch from the next revision
    key, rev = prefix, 0
    while True:
        body = {"key": b64(key), "range_end": b64(prefix_end(prefix)), "limit": 1000}
        if rev:
            body["revision"] = rev
        r = json.load(urllib.request.urlopen(url + "/v3/kv/range", json.dumps(body).encode()))
        rev = rev or int(r["header"]["revision"])
        kvs = r.get("kvs", [])
        for kv in kvs:
            k = unb64(kv["key"])[len(prefix):]
            if k.startswith("members/"):
                members.add(k[8:])
            elif k.startswith("owners/"):
                owners[k[7:]] = unb64(kv.get("value", ""))
        if not r.get("more"):
            break
        key = unb64(kvs[-1]["key"]) + "\0"
    u = urllib.parse.urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port)
    req = {"create_request": {"key": b64(prefix), "range_end": b64(prefix_end(prefix)),
                              "start_revision": rev + 1}}
    conn.request("POST", "/v3/watch", json.dumps(req), {"Content-Type": "application/json"})
    resp = conn.getresponse()
    f = open(out, "a", buffering=1)
    last = None

    winners = {"members": None, "map": {}}

    def winner(w):
        if winners["members"] != members:
            winners["members"] = set(members)
            winners["map"] = {}
        m = winners["map"].get(w)
        if m is None:
            m = winners["map"][w] = ring_owner(members, w)
        return m

    def note():
        nonlocal last
        live = sum(1 for m in owners.values() if m in members)
        placed = sum(1 for w, m in owners.items() if m in members and m == winner(w))
        state = (",".join(sorted(members)), live, placed)
        if state != last:
            last = state
            f.write("%d %s %d %d\n" % (time.time() * 1000, state[0] or "-", live, placed))

    note()
    buf = b""
    while True:
        chunk = resp.read1(65536)
        if not chunk:
            return
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            if not line.strip():
                continue
            for ev in json.loads(line).get("result", {}).get("events", []):
                kv = ev["kv"]
                k = unb64(kv["key"])[len(prefix):]
                dele = ev.get("type") == "DELETE"
                if k.startswith("members/"):
                    (members.discard if dele else members.add)(k[8:])
                elif k.startswith("owners/"):
                    if dele:
                        owners.pop(k[7:], None)
                    else:
                        owners[k[7:]] = unb64(kv.get("value", ""))
            note()


if __name__ == "__main__":
    main()
