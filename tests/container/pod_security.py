#!/usr/bin/env python3
"""Check images/kubernetes/pod.yaml against the Kubernetes Pod Security
Standards, "restricted" profile (baseline included), rule by rule as
https://kubernetes.io/docs/concepts/security/pod-security-standards/ lists
them. No cluster needed; tests/run.sh runs it.

  pod_security.py [FILE]     exit 0: every Pod passes; 1: the rules it breaks

It also checks itself: the root-with-capabilities variant that pod.yaml
documents must break exactly "Running as Non-root" and "Capabilities".
"""
import copy
import os
import sys

import yaml

BASELINE_CAPS = {"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
                 "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"}
RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                      "persistentVolumeClaim", "projected", "secret"}


def containers(spec):
    return spec.get("initContainers", []) + spec.get("containers", []) + spec.get("ephemeralContainers", [])


def violations(pod):
    spec = pod["spec"]
    psc = spec.get("securityContext", {}) or {}
    bad = []

    def rule(name, ok, why):
        if not ok:
            bad.append("%s: %s" % (name, why))

    # --- baseline
    rule("Host Namespaces", not any(spec.get(k) for k in ("hostNetwork", "hostPID", "hostIPC")), "host namespace shared")
    for c in containers(spec):
        sc = c.get("securityContext", {}) or {}
        rule("Privileged Containers", not sc.get("privileged"), "%s is privileged" % c["name"])
        add = set((sc.get("capabilities", {}) or {}).get("add", []) or [])
        rule("Capabilities (baseline)", add <= BASELINE_CAPS, "%s adds %s" % (c["name"], sorted(add - BASELINE_CAPS)))
        rule("Host Ports", not any(p.get("hostPort") for p in c.get("ports", [])), "%s uses a hostPort" % c["name"])
        rule("/proc Mount Type", sc.get("procMount", "Default") == "Default", "%s procMount" % c["name"])
        for s in (sc, psc):
            rule("Seccomp (baseline)", (s.get("seccompProfile", {}) or {}).get("type") != "Unconfined",
                 "Unconfined seccomp")
    rule("HostPath Volumes", not any("hostPath" in v for v in spec.get("volumes", [])), "hostPath volume")

    # --- restricted
    for v in spec.get("volumes", []):
        kinds = set(v) - {"name"}
        rule("Volume Types", kinds <= RESTRICTED_VOLUMES, "volume %s is %s" % (v["name"], sorted(kinds)))
    pod_nonroot = psc.get("runAsNonRoot") is True
    pod_seccomp = (psc.get("seccompProfile", {}) or {}).get("type") in ("RuntimeDefault", "Localhost")
    rule("Running as Non-root user", psc.get("runAsUser", 1) != 0, "Pod runAsUser is 0")
    for c in containers(spec):
        sc = c.get("securityContext", {}) or {}
        n = c["name"]
        rule("Privilege Escalation", sc.get("allowPrivilegeEscalation") is False,
             "%s: allowPrivilegeEscalation must be false" % n)
        nonroot = sc.get("runAsNonRoot", pod_nonroot if "runAsNonRoot" not in sc else None)
        rule("Running as Non-root", nonroot is True, "%s: runAsNonRoot must be true" % n)
        rule("Running as Non-root user", sc.get("runAsUser", 1) != 0, "%s: runAsUser is 0" % n)
        seccomp = (sc.get("seccompProfile", {}) or {}).get("type")
        rule("Seccomp", seccomp in ("RuntimeDefault", "Localhost") or (seccomp is None and pod_seccomp),
             "%s: seccompProfile must be RuntimeDefault or Localhost" % n)
        caps = sc.get("capabilities", {}) or {}
        rule("Capabilities", "ALL" in (caps.get("drop") or []), "%s: must drop ALL" % n)
        rule("Capabilities", set(caps.get("add") or []) <= {"NET_BIND_SERVICE"},
             "%s: adds %s (only NET_BIND_SERVICE allowed)" % (n, sorted(set(caps.get("add") or []))))
    return bad


def root_variant(pod):
    """pod.yaml's documented other mode: agent-init as root with capabilities."""
    p = copy.deepcopy(pod)
    p["spec"]["securityContext"].pop("runAsNonRoot", None)
    for k in ("runAsUser", "runAsGroup"):
        p["spec"]["securityContext"].pop(k, None)
    for c in containers(p["spec"]):
        sc = c.setdefault("securityContext", {})
        sc.pop("runAsNonRoot", None)
        sc["runAsUser"] = 0
        sc["capabilities"] = {"drop": ["ALL"], "add": ["CHOWN", "DAC_OVERRIDE", "FOWNER", "SETUID",
                                                          "SETGID", "SETPCAP", "KILL"]}
    return p


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "images", "kubernetes", "pod.yaml")
    with open(path) as f:
        pods = [d for d in yaml.safe_load_all(f) if d and d.get("kind") == "Pod"]
    if not pods:
        print("pod_security: no Pod in %s" % path)
        return 1
    failed = 0
    for pod in pods:
        name = pod["metadata"]["name"]
        bad = violations(pod)
        for b in bad:
            print("pod_security: %s breaks restricted: %s" % (name, b))
        failed += bool(bad)
        rules = sorted({b.split(":")[0] for b in violations(root_variant(pod))})
        want = ["Capabilities", "Running as Non-root", "Running as Non-root user"]
        if rules != want:
            print("pod_security: self-check: the root variant of %s broke %s, expected %s" % (name, rules, want))
            failed += 1
        if not bad:
            print("pod_security: %s passes restricted (root variant breaks: %s)" % (name, ", ".join(rules)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
