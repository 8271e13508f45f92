#!/usr/bin/env python3
"""Check images/compose.yaml's mounts (tests/run.sh runs it; no engine needed):

- /workspace is $WORKSPACE or, unset, a declared named volume: never a
  relative host path ("." is the compose file's folder, images/);
- each harness service mounts a volume at /var/lib/agent-vault/proxy (the
  images turn the credential proxy on; its state_dir);
- each service mounts its own harness's state only (the same sets as
  tests/container/containers.py's STATE_VOLUMES, which the container cases
  run with), plus /run and /tmp.
"""
import os
import re
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
# /pi-agent everywhere: the default policy's Pi seed makes agent-init require it.
OWN = {"pi": {"/pi-agent"}, "claude": {"/claude", "/home/agent", "/home/agent/.local/claude-code", "/pi-agent"},
       "opencode": {"/home/agent", "/pi-agent"}, "base": {"/pi-agent"}}
STATE = {"/pi-agent", "/claude", "/home/agent", "/home/agent/.local/claude-code"}


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "images", "compose.yaml")
    with open(path) as f:
        doc = yaml.safe_load(f)
    bad = []
    declared = set(doc.get("volumes") or {})
    for name, svc in doc["services"].items():
        targets = {}
        for v in svc.get("volumes") or []:
            m = re.match(r"(\$\{[^}]*\}[^:]*|[^:]+):([^:]+)", v)
            targets[m.group(2)] = m.group(1)
        for t in svc.get("tmpfs") or []:
            targets[t.split(":")[0]] = "tmpfs"
        for must in ("/run", "/tmp"):
            if targets.get(must) != "tmpfs":
                bad.append("%s: %s is not a tmpfs" % (name, must))
        ws = targets.get("/workspace")
        if name != "base":
            m = re.fullmatch(r"\$\{WORKSPACE:-([A-Za-z0-9_-]+)\}", ws or "")
            if not m or m.group(1) not in declared:
                bad.append("%s: /workspace is %r, not ${WORKSPACE:-<declared volume>}" % (name, ws))
        if name != "base" and targets.get("/var/lib/agent-vault/proxy") in (None, "tmpfs"):
            # the images turn the proxy on: its state_dir needs a volume on a read-only root
            bad.append("%s: no volume at /var/lib/agent-vault/proxy (vault-proxy's state_dir)" % name)
        mounted_state = set(targets) & STATE
        if mounted_state != OWN[name]:
            bad.append("%s: state mounts %s, its harness needs %s" % (name, sorted(mounted_state), sorted(OWN[name])))
    for b in bad:
        print("compose_check: %s" % b)
    if not bad:
        print("compose_check: %s: %d services, each with its own state mounts only" % (path, len(doc["services"])))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
