#!/usr/bin/env bash
# promql_prometheus.sh: Tide's PromQL engine against a real Prometheus on the same 1,000 series
# x 8 days, in the same run (issue 17); see promql_prometheus.py. Needs prometheus and promtool
# (scripts/setup.sh installs them), build/bench/bench_tsdb and bin/tide-controlplane; about
# 1.2 GB of disk in /tmp while it runs and 3-5 minutes.
set -u
cd "$(dirname "$0")/../.."
for t in prometheus promtool; do
    command -v $t >/dev/null || { echo "promql_prometheus: $t not installed, skipped"; exit 0; }
done
exec python3 -u tests/bench/promql_prometheus.py
