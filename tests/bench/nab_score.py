#!/usr/bin/env python3
"""nab_score.py: scores anomaly detections by the Numenta Anomaly Benchmark's rules (NAB v1.1,
nab/sweeper.py and the normalization in nab/runner.py), standard profile by default.

Usage: nab_score.py --windows nab_anomaly_windows.json [--json] RESULT.csv...
Each RESULT.csv has the columns `timestamp,value,anomaly_score,anomaly` (what
`tidectl anomaly --format nab` writes) and is named after the data file it scores (its base name,
e.g. nab_nyc_taxi.csv, is the key into the windows file). `anomaly` = 1 is a detection.

The rules, as NAB applies them:
- Probationary period: the first min(floor(0.15 n), 0.15 * 5000) rows of a file are not scored
  (detections there count for nothing; a window lying wholly inside it is not counted).
- Window rows (timestamps within [start, end] of a labelled window): a detection at row i of a
  window whose last row is R and which has W rows is worth tp * S(-(R - i + 1) / W) / S(-1), where
  S(x) = 2 / (1 + exp(5 x)) - 1 (the scaled sigmoid; S(x) = -1 for x >= 3). Only the best
  (earliest) detection of a window counts; a window without a detection costs -fn.
- Any other detection is a false positive worth fp * S(|R' - i| / (W' - 1)), R', W' the last row
  and width of the closest window before it, or -fp when no window precedes it.
- Corpus score = 100 (raw - null) / (perfect - null), raw summed over the files, null = -fn per
  counted window (the null detector), perfect = tp per window.
Profiles (cost matrices) from NAB's config/profiles.json: standard (tp 1, fp 0.11, fn 1),
reward_low_FP_rate (1, 0.22, 1), reward_low_FN_rate (1, 0.11, 2).
"""
import argparse, csv, json, math, os, sys
from datetime import datetime, timezone

PROFILES = {
    "standard": (1.0, 0.11, 1.0),
    "reward_low_FP_rate": (1.0, 0.22, 1.0),
    "reward_low_FN_rate": (1.0, 0.11, 2.0),
}


def scaled_sigmoid(x):
    if x >= 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * x)) - 1.0


def parse_ts(s):
    s = s.strip()
    for fmt in ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S"):
        try:
            return int(datetime.strptime(s, fmt).replace(tzinfo=timezone.utc).timestamp())
        except ValueError:
            pass
    return int(float(s))


def probationary_length(n, percent=0.15):
    return min(math.floor(percent * n), percent * 5000)


def score_file(ts, det, windows, tp_w, fp_w, fn_w):
    """Returns (raw score, counted windows, detail dict) for one file."""
    n = len(ts)
    prob = probationary_length(n)
    index = {t: i for i, t in enumerate(ts)}
    wins = []
    for a, b in windows:
        if a not in index or b not in index:
            raise ValueError("window %s..%s: timestamps not in the data" % (a, b))
        wins.append((index[a], index[b]))
    wins.sort()
    max_tp = scaled_sigmoid(-1.0)
    best = {}          # window number -> best weighted score
    counted = set()    # windows with at least one scorable row
    fp_score, fps, tps = 0.0, 0, 0
    wi, cur, prev = 0, None, None
    for i in range(n):
        if cur is None and wi < len(wins) and i == wins[wi][0]:
            cur = wi
            wi += 1
        if cur is not None:
            left, right = wins[cur]
            width = float(right - left + 1)
            s = scaled_sigmoid(-(right - i + 1) / width) * tp_w / max_tp
        elif prev is None:
            s = scaled_sigmoid(3.0) * fp_w
        else:
            pl, pr = wins[prev]
            s = scaled_sigmoid(abs(pr - i) / float(pr - pl)) * fp_w
        if i >= prob:
            if cur is not None:
                counted.add(cur)
                if det[i]:
                    best[cur] = max(best.get(cur, -fn_w), s)
            elif det[i]:
                fp_score += s
                fps += 1
        if cur is not None and i == wins[cur][1]:
            prev, cur = cur, None
    raw = fp_score
    detail = {"windows": len(counted), "detected": 0, "false_positives": fps, "fp_score": fp_score,
              "window_scores": []}
    for w in sorted(counted):
        if w in best and best[w] > -fn_w:
            raw += best[w]
            detail["detected"] += 1
            detail["window_scores"].append(round(best[w], 4))
        else:
            raw -= fn_w
            detail["window_scores"].append(-fn_w)
    detail["raw"] = raw
    return raw, len(counted), detail


def load_result(path):
    ts, det = [], []
    with open(path, newline="") as f:
        rd = csv.reader(f)
        head = next(rd)
        cols = [c.strip() for c in head]
        try:
            it, ia = cols.index("timestamp"), cols.index("anomaly")
        except ValueError:
            raise ValueError("%s: header must name timestamp and anomaly columns" % path)
        for line, row in enumerate(rd, 2):
            if not row:
                continue
            ts.append(parse_ts(row[it]))
            a = row[ia].strip()
            if a not in ("0", "1"):
                raise ValueError("%s line %d: anomaly must be 0 or 1, not %r" % (path, line, a))
            det.append(a == "1")
    return ts, det


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--windows", required=True)
    ap.add_argument("--profile", default="standard", choices=sorted(PROFILES))
    ap.add_argument("--json", action="store_true")
    ap.add_argument("results", nargs="+")
    a = ap.parse_args()
    tp_w, fp_w, fn_w = PROFILES[a.profile]
    labels = json.load(open(a.windows))
    total_raw, total_windows, files = 0.0, 0, {}
    for path in a.results:
        key = os.path.basename(path)
        if key not in labels:
            sys.exit("nab_score: %s: no windows for %s in %s" % (path, key, a.windows))
        ts, det = load_result(path)
        wins = [(parse_ts(s), parse_ts(e)) for s, e in labels[key]]
        raw, nw, detail = score_file(ts, det, wins, tp_w, fp_w, fn_w)
        total_raw += raw
        total_windows += nw
        files[key] = detail
    null = -fn_w * total_windows
    perfect = tp_w * total_windows
    score = 100.0 * (total_raw - null) / (perfect - null) if perfect != null else 0.0
    out = {"profile": a.profile, "score": score, "raw": total_raw, "null": null, "perfect": perfect,
           "files": files}
    if a.json:
        print(json.dumps(out, indent=1))
    else:
        for k, d in files.items():
            print("  %-46s raw %7.3f  windows %d/%d  FP %3d (%.3f)  %s" % (
                k, d["raw"], d["detected"], d["windows"], d["false_positives"], d["fp_score"],
                d["window_scores"]))
        print("NAB score (%s profile): %.2f  (raw %.3f, null %.0f, perfect %.0f)" % (
            a.profile, score, total_raw, null, perfect))


if __name__ == "__main__":
    main()
