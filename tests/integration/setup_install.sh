#!/usr/bin/env bash
# setup_install.sh: the fresh-machine install path of scripts/setup.sh, with dpkg-query, apt-get
# and id played by stand-ins on PATH (CI's machine already has every package, so the real branch
# is exercised by .ci/run removing one package; this covers the rest):
#   - one package reported missing (dpkg-query exits 1, as it does then) -> apt-get installs
#     exactly that package after an update;
#   - apt-get failing -> a message naming the packages still missing and exit 1;
#   - everything installed, as root or not -> apt-get is never called, exit 0;
#   - not root with a package missing -> the package is named, exit 1, apt-get never called.
# timeout: 30
source "$(dirname "$0")/lib.sh"

SETUP="$TIDE_SRC/scripts/setup.sh"
mkdir -p "$W/stub"
# dpkg-query -W -f=FMT PKG...: every package installed except those in $W/missing (exit 1
# when one is missing, like the real one for a package that is not installed at all)
cat > "$W/stub/dpkg-query" <<STUB
#!/usr/bin/env bash
rc=0
for p in "\$@"; do
    case "\$p" in -*) continue ;; esac
    if grep -qx "\$p" "$W/missing" 2>/dev/null; then
        echo "dpkg-query: no packages found matching \$p" >&2; rc=1
    else
        printf '%s install ok installed\n' "\$p"
    fi
done
exit \$rc
STUB
# apt-get ARGS...: appends its arguments to $W/apt.calls; fails when $W/apt.fail exists
cat > "$W/stub/apt-get" <<STUB
#!/usr/bin/env bash
echo "\$*" >> "$W/apt.calls"
[ -e "$W/apt.fail" ] && { echo "E: Unable to locate package" >&2; exit 100; }
exit 0
STUB
# id -u: the uid in $W/uid
cat > "$W/stub/id" <<STUB
#!/usr/bin/env bash
[ "\$1" = -u ] && { cat "$W/uid"; exit 0; }
exec /usr/bin/id "\$@"
STUB
chmod +x "$W/stub/"*
run_setup() { PATH="$W/stub:$PATH" "$SETUP" > "$W/out" 2>&1; }

# 1. root, one package missing: exactly that one is installed
echo 0 > "$W/uid"; echo socat > "$W/missing"; rm -f "$W/apt.calls"
run_setup || fail "setup failed with one package missing: $(cat "$W/out")"
grep -q "^update" "$W/apt.calls" || fail "no apt-get update before the install: $(cat "$W/apt.calls")"
inst=$(grep "^install" "$W/apt.calls") || fail "apt-get install not called: $(cat "$W/out")"
pkgs=$(echo "$inst" | tr ' ' '\n' | grep -v '^-' | grep -v '^install$' | tr '\n' ' ')
[ "$pkgs" = "socat " ] || fail "apt-get install was asked for '$pkgs', not exactly 'socat'"
echo "ok: one missing package -> apt-get $inst"

# 2. root, two missing, apt-get fails: both named, exit 1
printf 'socat\nwrk\n' > "$W/missing"; rm -f "$W/apt.calls"; touch "$W/apt.fail"
if run_setup; then fail "setup succeeded although apt-get failed"; fi
grep -q "still missing:.*socat.*wrk\|still missing:.*wrk.*socat" "$W/out" \
    || fail "the failure does not name the missing packages: $(cat "$W/out")"
echo "ok: apt failure -> $(grep 'still missing' "$W/out")"
rm -f "$W/apt.fail"

# 3. everything installed, root and not root: no apt-get at all
: > "$W/missing"
for uid in 0 1000; do
    echo $uid > "$W/uid"; rm -f "$W/apt.calls"
    run_setup || fail "setup failed with everything installed (uid $uid): $(cat "$W/out")"
    [ ! -e "$W/apt.calls" ] || fail "apt-get called with everything installed (uid $uid): $(cat "$W/apt.calls")"
done
echo "ok: everything installed -> no apt-get (root and not)"

# 4. not root, one missing: named, exit 1, no apt-get
echo 1000 > "$W/uid"; echo haproxy > "$W/missing"; rm -f "$W/apt.calls"
if run_setup; then fail "setup succeeded as non-root with a package missing"; fi
grep -q "missing Debian packages: haproxy" "$W/out" || fail "haproxy not named: $(cat "$W/out")"
[ ! -e "$W/apt.calls" ] || fail "apt-get called as non-root"
echo "ok: non-root -> $(head -1 "$W/out")"

# 5. a plain make with everything installed never calls setup/apt: the Makefile's default goal
# does not run scripts/setup.sh
grep -n 'scripts/setup.sh' "$TIDE_SRC/Makefile" | grep -v '^[0-9]*:#' | grep >/dev/null 'shell' \
    && fail "the Makefile runs scripts/setup.sh at parse time (every make)"
make -C "$TIDE_SRC" -n all 2>/dev/null | grep >/dev/null 'setup.sh' && fail "make all runs scripts/setup.sh"
echo "ok: plain make does not run setup.sh"
