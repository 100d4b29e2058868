#!/usr/bin/env bash
# make_install.sh: `make install` honours DESTDIR and PREFIX everywhere: binaries, units in
# PREFIX/lib/systemd/system whose ExecStart= and Documentation= point into PREFIX (nothing left
# at /usr/local), sysusers/tmpfiles, man pages tidectl(1), tide-agent(8), tide-controlplane(8)
# that groff renders without a warning, and bash completion that completes commands, options
# and models with the installed tidectl; the installed units pass systemd-analyze verify.
# timeout: 120
source "$(dirname "$0")/lib.sh"

D=$W/root
PFX=/opt/tide-test
make -s -C "$TIDE_SRC" NODEPS=1 B="$TIDE_BUILD" BIN="$TIDE_BIN" DESTDIR="$D" PREFIX="$PFX" install \
    > "$W/make.log" 2>&1 || fail "make install: $(tail -5 "$W/make.log")"
for f in bin/tide-agent bin/tide-controlplane bin/tidectl lib/systemd/system/tide-agent.service \
    lib/systemd/system/tide-controlplane.service lib/sysusers.d/tide.conf lib/tmpfiles.d/tide.conf \
    share/man/man1/tidectl.1 share/man/man8/tide-agent.8 share/man/man8/tide-controlplane.8 \
    share/bash-completion/completions/tidectl share/doc/tide/README.md; do
    [ -f "$D$PFX/$f" ] || fail "not installed: $PFX/$f"
done
[ -z "$(find "$D" -path "$D$PFX" -prune -o -type f -print)" ] || fail "files outside PREFIX: $(find "$D" -path "$D$PFX" -prune -o -type f -print)"
for u in tide-agent tide-controlplane; do
    unit=$D$PFX/lib/systemd/system/$u.service
    ! grep -q /usr/local "$unit" || fail "$u.service still names /usr/local: $(grep /usr/local "$unit")"
    grep -q "^ExecStart=$PFX/bin/$u " "$unit" || fail "$u ExecStart: $(grep ExecStart "$unit")"
    grep -q "^Documentation=man:$u(8) file:$PFX/share/doc/tide/README.md$" "$unit" \
        || fail "$u Documentation: $(grep Documentation "$unit")"
    if command -v systemd-analyze > /dev/null; then
        sed "s#$PFX/bin#$D$PFX/bin#" "$unit" > "$W/$u.service"
        out=$(cd "$W" && MANPATH=$D$PFX/share/man systemd-analyze verify "./$u.service" 2>&1) \
            || fail "$u verify: $out"
        [ -z "$out" ] || fail "$u verify complained: $out"
    fi
done
for m in man1/tidectl.1 man8/tide-agent.8 man8/tide-controlplane.8; do
    out=$(LC_ALL=C.UTF-8 groff -man -ww -z -Tutf8 "$D$PFX/share/man/$m" 2>&1)
    [ -z "$out" ] || fail "$m: groff warns: $out"
    MANWIDTH=80 man -l "$D$PFX/share/man/$m" 2>/dev/null | grep >/dev/null "SEE ALSO" || fail "$m does not render"
done
# completion: the installed script with the installed tidectl
out=$(bash -c 'source "$1"; T=$2
COMP_WORDS=("$T" ba); COMP_CWORD=1; _tidectl; echo "${COMPREPLY[*]}"
COMP_WORDS=("$T" backtest --mo); COMP_CWORD=2; _tidectl; echo "${COMPREPLY[*]}"
COMP_WORDS=("$T" backtest --model p); COMP_CWORD=3; _tidectl; echo "${COMPREPLY[*]}"
COMP_WORDS=("$T" --js); COMP_CWORD=1; _tidectl; echo "${COMPREPLY[*]}"
COMP_WORDS=("$T" query --st); COMP_CWORD=2; _tidectl; echo "${COMPREPLY[*]}"' _ \
    "$D$PFX/share/bash-completion/completions/tidectl" "$D$PFX/bin/tidectl")
[ "$out" = $'backtest\n--model\nprofile\n--json\n--start --step' ] || fail "completion: $out"
echo "make_install: ok"
