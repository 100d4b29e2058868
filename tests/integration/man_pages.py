# man_pages.py: the man pages cannot drift from the programs. tide-agent(8) and
# tide-controlplane(8) list exactly the keys, help lines and defaults of their --help
# (scripts/man-keys.sh --check) and every flag of their usage; tidectl(1) has an entry for
# exactly the commands of `tidectl --help`, naming every option each command's --help shows,
# and the global options. The default configuration files written from --help
# (scripts/default-conf.sh, the Debian conffiles) name every key and, uncommented, load.
# timeout: 60
import os
import re
import subprocess
import sys
import tempfile

BIN = os.environ.get("TIDE_BIN", os.path.abspath("bin"))
SRC = os.environ.get("TIDE_SRC", os.path.abspath("."))
failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL: " + msg)


def run(*args):
    p = subprocess.run(list(args), capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout, p.stderr


def plain(roff):
    """roff source as the words a reader sees: font escapes gone, \\- as -, quotes dropped."""
    t = re.sub(r"\\f[BIRP]", "", roff)
    t = t.replace("\\-", "-").replace("\\(aq", "'").replace("\\(dq", '"').replace("\\e", "\\")
    t = t.replace("\\&", "")
    t = re.sub(r"^\.(B|I|BI|BR|IR|RB|RI|IB)\s+", "", t, flags=re.M)
    return t.replace('"', "")


def flags(text):
    return set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", text))


# ---- daemons: the key list is --help's, every usage flag is in the page --------------------
for prog, page in (("tide-agent", "man/tide-agent.8"), ("tide-controlplane", "man/tide-controlplane.8")):
    rc, out, err = run(os.path.join(SRC, "scripts/man-keys.sh"), os.path.join(BIN, prog),
                       os.path.join(SRC, page), "--check")
    if rc != 0:
        fail(f"{page}: keys differ from {prog} --help:\n{err}")
    rc, help_text, _ = run(os.path.join(BIN, prog), "--help")
    if rc != 0:
        fail(f"{prog} --help: rc {rc}")
    usage = help_text.split("\n\n")[0]
    text = plain(open(os.path.join(SRC, page)).read())
    for f in sorted(flags(usage) - {"--KEY"}):
        if f not in text:
            fail(f"{page}: the usage flag {f} of {prog} --help is not in the page")
    for f in ("--help", "--version", "--config"):
        if f not in text:
            fail(f"{page}: {f} is not described")
    # the default configuration file: every key, and it loads once uncommented
    keys = re.findall(r"^  ([a-z][a-z0-9_]*) ", help_text, flags=re.M)
    rc, conf, err = run(os.path.join(SRC, "scripts/default-conf.sh"), os.path.join(BIN, prog),
                        f"/etc/tide/{prog[5:]}.conf")
    if rc != 0:
        fail(f"default-conf.sh {prog}: rc {rc}: {err}")
    named = re.findall(r"^#([a-z][a-z0-9_]*) = ", conf, flags=re.M)
    if named != keys:
        fail(f"default-conf.sh {prog}: keys {named} != --help's {keys}")
    with tempfile.NamedTemporaryFile("w", suffix=".conf") as f:
        f.write(re.sub(r"^#([a-z])", r"\1", conf, flags=re.M))
        f.flush()
        rc, out, err = run(os.path.join(BIN, prog), "--config", f.name, "--version")
        if rc != 0:
            fail(f"{prog}: its default configuration, uncommented, does not load: {err.strip()}")

# ---- tidectl: commands and their options ----------------------------------------------------
rc, top, _ = run(os.path.join(BIN, "tidectl"), "--help")
if rc != 0:
    fail(f"tidectl --help: rc {rc}")
commands = []
in_cmds = False
for line in top.splitlines():
    if line.startswith("commands:"):
        in_cmds = True
        continue
    if in_cmds:
        m = re.match(r"^  ([a-z][a-z0-9-]*)", line)
        if m and m.group(1) not in commands:
            commands.append(m.group(1))
        elif not line.strip():
            in_cmds = False
if len(commands) < 10:
    fail(f"tidectl --help lists only {commands}")

src = open(os.path.join(SRC, "man/tidectl.1")).read()
sections = {k.split()[0]: v for k, v in re.findall(r"^\.SH ([^\n]+)\n(.*?)(?=^\.SH |\Z)", src, flags=re.M | re.S)}
for s in ("SYNOPSIS", "DESCRIPTION", "OPTIONS", "COMMANDS", "EXIT", "FILES", "EXAMPLES"):
    if s not in sections:
        fail(f"tidectl.1 has no {s} section")
# COMMANDS: one .TP entry per command; its tag line's first word is the command
entries = {}
for ent in re.split(r"^\.TP\n", sections.get("COMMANDS", ""), flags=re.M)[1:]:
    body = plain(ent).strip()
    name = body.split()[0] if body else ""
    entries.setdefault(name, "")
    entries[name] += body + "\n"
for c in commands:
    if c not in entries:
        fail(f"tidectl.1: no entry for the command '{c}' (tidectl --help lists it)")
        continue
    rc, chelp, cerr = run(os.path.join(BIN, "tidectl"), c, "--help")
    if rc != 0:
        fail(f"tidectl {c} --help: rc {rc}")
    for f in sorted(flags(chelp) - {"--help", "--json", "--quiet"}):
        if f not in entries[c]:
            fail(f"tidectl.1: the entry of '{c}' does not name {f} (tidectl {c} --help does)")
for name in entries:
    if name not in commands:
        fail(f"tidectl.1: an entry for '{name}', which tidectl --help does not list")
opts_text = plain(sections.get("OPTIONS", ""))
global_opts = flags(top.split("commands:")[0].split("\n\n")[1]) if "\n\n" in top else set()
for f in sorted(global_opts | {"--socket", "--json", "--quiet", "--version", "--help"}):
    if f not in opts_text:
        fail(f"tidectl.1: the global option {f} is not in OPTIONS")
for short in re.findall(r"(?<![\w-])(-[a-zA-Z])\b", top.split("commands:")[0]):
    if short not in opts_text:
        fail(f"tidectl.1: the short option {short} is not in OPTIONS")

if failures:
    print(f"{len(failures)} failures")
    sys.exit(1)
print(f"man_pages: ok ({len(commands)} tidectl commands, two daemons' keys)")
