#!/usr/bin/python3
"""The seccomp profile of the sandbox container: Docker's default profile plus what the
sandbox's own isolation needs.

    scripts/sandbox-seccomp.py generate MOBY_DEFAULT_JSON > deploy/seccomp/sandbox.json
    scripts/sandbox-seccomp.py check deploy/seccomp/sandbox.json

`generate` takes Docker's default profile (moby/profiles, seccomp/default.json) and allows,
for every process in the container and without CAP_SYS_ADMIN, the syscalls the sandbox uses to
build an execution's isolation: new namespaces (clone with CLONE_NEW* flags), mounting its
minimal root, tmpfs and /proc inside its own mount namespace (mount, umount2, pivot_root), and
naming its UTS namespace (sethostname). Nothing else: clone3 keeps answering ENOSYS (glibc
falls back to clone), unshare, setns and the new mount API stay as Docker has them.
Docker's profile allows these only to processes holding CAP_SYS_ADMIN (pivot_root not at all);
the sandbox runs with no capabilities, as an unprivileged user, and gets its privileges inside
the user namespace it creates. Every other rule of the default profile stays as it is.

Allowing them in the container does not let executed code use them: each execution installs
its own, stricter seccomp filter (no unshare/setns/mount/...), and seccomp filters stack.

`check` verifies a profile has that shape (CI runs it; it needs no Docker engine).
"""

import json
import sys

# What the sandbox's isolation needs beyond Docker's default profile, and no more: the launcher
# clones with CLONE_NEW* flags (clone, not clone3 or unshare), mounts its root, tmpfs and /proc,
# pivots into the root, detaches the old one, and names its UTS namespace.
# scripts/seccomp-emulate.py --without NAME shows each one is needed.
SANDBOX_SYSCALLS = [
    "clone",
    "mount",
    "pivot_root",
    "sethostname",
    "umount2",
]

# Must stay refused to a process without the capability (or always): escaping namespaces,
# loading kernel code, kernel keyrings, raw kernel tracing.
NEVER_UNCONDITIONAL = [
    "setns",
    "unshare",
    "clone3",
    "bpf",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "open_by_handle_at",
    "add_key",
    "request_key",
    "keyctl",
    "perf_event_open",
]

COMMENT = (
    "Switchboard sandbox: clone into new user/pid/mount/net/ipc/uts namespaces, mount a "
    "minimal root, tmpfs and /proc inside them and pivot_root into it, without CAP_SYS_ADMIN. "
    "Each execution adds its own stricter filter."
)


def generate(default_path):
    with open(default_path) as f:
        profile = json.load(f)
    wanted = set(SANDBOX_SYSCALLS)
    rules = []
    for rule in profile["syscalls"]:
        names = [n for n in rule["names"] if n not in wanted]
        if names:
            rules.append({**rule, "names": names})
    rules.insert(
        0, {"names": SANDBOX_SYSCALLS, "action": "SCMP_ACT_ALLOW", "comment": COMMENT}
    )
    profile["syscalls"] = rules
    json.dump(profile, sys.stdout, indent=2)
    sys.stdout.write("\n")


def unconditional(rule):
    return (
        rule.get("action") == "SCMP_ACT_ALLOW"
        and not rule.get("args")
        and not rule.get("includes")
        and not rule.get("excludes")
    )


def check(path):
    with open(path) as f:
        profile = json.load(f)
    problems = []
    if profile.get("defaultAction") not in ("SCMP_ACT_ERRNO", "SCMP_ACT_KILL_PROCESS"):
        problems.append(f"defaultAction is {profile.get('defaultAction')!r}, not a refusal")
    rules = profile.get("syscalls", [])
    allowed = {n for r in rules if unconditional(r) for n in r["names"]}
    for name in SANDBOX_SYSCALLS:
        if name not in allowed:
            problems.append(f"{name} is not allowed unconditionally")
        mentions = [r for r in rules if name in r["names"]]
        if len(mentions) != 1:
            problems.append(f"{name} appears in {len(mentions)} rules; expected exactly one")
    for name in NEVER_UNCONDITIONAL:
        if name in allowed:
            problems.append(f"{name} is allowed unconditionally")
    for rule in rules:
        if not str(rule.get("action", "")).startswith("SCMP_ACT_"):
            problems.append(f"rule with unknown action {rule.get('action')!r}")
    if problems:
        for p in problems:
            print(f"{path}: {p}", file=sys.stderr)
        sys.exit(1)
    print(f"{path}: ok ({len(rules)} rules, {len(allowed)} syscalls allowed unconditionally)")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "generate":
        generate(sys.argv[2])
    elif len(sys.argv) == 3 and sys.argv[1] == "check":
        check(sys.argv[2])
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
