#!/usr/bin/env bash
# setup.sh: install the Debian packages Tide needs to build, test and demo (idempotent).
# Run as root it installs what is missing with apt-get; otherwise it names what is missing and fails.
set -euo pipefail

# Build: compiler, libraries of the design card, and the libraries they lean on.
BUILD_PKGS="build-essential pkg-config clang libclang-rt-14-dev libev-dev libmsgpack-dev
 libcurl4-openssl-dev libopenblas-dev libcgroup-dev libssl-dev libmicrohttpd-dev libyaml-dev
 libxgboost-dev libsystemd-dev libcjson-dev libicu-dev libre2-dev"
# Tests and demo: the real components the integration tests start on loopback (etcd: the
# high-availability tests run a 3-member cluster); the Debian
# packaging tools of `make deb` and its test (debhelper, dpkg-dev, fakeroot, lintian), and man
# with groff for the man page checks.
TEST_PKGS="prometheus prometheus-alertmanager haproxy wrk socat clang-format
 netcat-openbsd yamllint valgrind iproute2 procps curl python3 python3-msgpack python3-yaml systemd
 openssl python3-kubernetes chromium etcd-server etcd-client
 debhelper dpkg-dev fakeroot lintian man-db groff-base"

want="$BUILD_PKGS"
[ "${1:-}" = "--build-only" ] || want="$want $TEST_PKGS"
# kubectl proves the fake Kubernetes API server (tests/fakekube): the machine's own when it has
# one (Debian's kubernetes-client then conflicts with it on /usr/bin/kubectl), else Debian's.
[ "${1:-}" = "--build-only" ] || command -v kubectl >/dev/null 2>&1 || want="$want kubernetes-client"

# One dpkg-query for all: this runs at every `make`, so it must stay fast. dpkg-query exits 1
# when any package named is not installed at all: that is the case this script exists for, so
# its status is not an error here (under pipefail it would end the script before installing).
# shellcheck disable=SC2086
status=$(dpkg-query -W -f='${Package} ${Status}\n' $want 2>/dev/null || true)
installed=" $(printf '%s\n' "$status" | awk '/ ok installed$/{printf "%s ", $1}')"
missing=""
# (a shell match, not `printf | grep -q` under pipefail: grep -q leaving early made printf die
# of SIGPIPE now and then, and a package that is installed counted as missing)
for p in $want; do
    case "$installed" in *" $p "*) ;; *) missing="$missing $p" ;; esac
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
    echo "setup: missing Debian packages:$missing" >&2
    echo "setup: run 'sudo scripts/setup.sh' (or apt-get install them) and try again" >&2
    exit 1
fi
echo "setup: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
# An old or empty package list finds nothing: refresh it once before installing.
if ! apt-get update -q >&2; then
    echo "setup: apt-get update failed; these packages are still missing:$missing" >&2
    exit 1
fi
# shellcheck disable=SC2086
if ! apt-get install -y -q --no-install-recommends $missing >&2; then
    echo "setup: apt-get install failed; these packages are still missing:$missing" >&2
    exit 1
fi
