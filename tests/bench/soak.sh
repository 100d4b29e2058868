#!/usr/bin/env bash
# soak.sh: the bounded soak of issue 18 (tests/bench/soak.py; SOAK_SECONDS, default 600).
set -eu
cd "$(dirname "$0")/../.."
export TIDE_BIN=${TIDE_BIN:-$(pwd)/bin}
exec /usr/bin/python3 tests/bench/soak.py
