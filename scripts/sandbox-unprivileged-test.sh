#!/usr/bin/env bash
# The sandbox's hostile-program suite with the service as an unprivileged uid.
#
#   scripts/sandbox-unprivileged-test.sh     # as root (it makes and delegates the cgroups)
#
# `cargo test` runs these tests as root (workers as host uid 65533, pip as 65534). Here the same
# test binaries (tests/security.rs, hardening.rs, execute.rs, seccomp_allowlist.rs,
# package_store.rs) run as uid 10001 with no capabilities, as deploy/kubernetes runs the
# service: every sandbox a test starts is an unprivileged one (user namespaces it owns, workers
# under its own uid, pip in a user namespace of its own). Its cgroups are delegated to that uid
# the way systemd's Delegate= or a container runtime does it (a group per hierarchy owned by
# the uid, with its cgroup.procs/subtree_control/threads), so no layer is missing and nothing
# runs weaker: the suite must pass unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."

run_uid=${SANDBOX_TEST_UID:-10001}
name=switchboard-unprivileged-$$
say() { printf '[unprivileged] %s\n' "$*"; }
[ "$(id -u)" = 0 ] || { echo "run as root (it delegates cgroups to uid $run_uid)" >&2; exit 1; }
command -v jq >/dev/null && command -v setpriv >/dev/null || { echo "needs jq and setpriv" >&2; exit 1; }

mapfile -t binaries < <(
  cargo test -p switchboard-sandbox --no-run --message-format=json \
    --test security --test hardening --test execute --test seccomp_allowlist --test package_store |
    jq -r 'select(.reason == "compiler-artifact" and .executable != null) | .executable'
)
[ ${#binaries[@]} = 5 ] || { echo "expected 5 test binaries, got: ${binaries[*]}" >&2; exit 1; }

# --- cgroups delegated to the uid ------------------------------------------------------------
groups=()
delegate() { # DIR: a group owned by the uid, as a delegating manager leaves it
  mkdir "$1"
  groups+=("$1")
  chown "$run_uid" "$1"
  for file in cgroup.procs cgroup.subtree_control cgroup.threads tasks; do
    if [ -e "$1/$file" ]; then chown "$run_uid" "$1/$file"; fi
  done
}
cleanup() {
  local group
  for group in "${groups[@]}"; do
    # Deepest first: whatever the service left (it removes its own groups as it stops).
    find "$group" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
}
trap cleanup EXIT

v2=$(findmnt -n -t cgroup2 -o TARGET | head -n 1)
[ -n "$v2" ] || { echo "no cgroup v2 hierarchy is mounted" >&2; exit 1; }
v2_self=$(awk -F: '$1 == "0" { print $3 }' /proc/self/cgroup)
v2_self=${v2_self%/}
join=("$v2$v2_self/$name")
delegate "$v2$v2_self/$name"
for controller in memory pids cpu; do
  if grep -qw "$controller" "$v2$v2_self/cgroup.controllers" 2>/dev/null; then
    echo "+$controller" >"$v2$v2_self/cgroup.subtree_control"
    echo "+$controller" >"$v2$v2_self/$name/cgroup.subtree_control" 2>/dev/null || true
    say "$controller: cgroup v2 ($v2$v2_self/$name)"
    continue
  fi
  mount_point=$(findmnt -n -t cgroup -o TARGET,OPTIONS |
    awk -v c="$controller" '{ n = split($2, o, ","); for (i = 1; i <= n; i++) if (o[i] == c) { print $1; exit } }')
  [ -n "$mount_point" ] || { echo "no hierarchy has the $controller controller" >&2; exit 1; }
  self=$(awk -F: -v c="$controller" '{ n = split($2, o, ","); for (i = 1; i <= n; i++) if (o[i] == c) print $3 }' /proc/self/cgroup)
  self=${self%/}
  delegate "$mount_point$self/$name"
  join+=("$mount_point$self/$name")
  say "$controller: cgroup v1 ($mount_point$self/$name)"
done

# --- the suite, as the uid, in those groups --------------------------------------------------
failed=0
for binary in "${binaries[@]}"; do
  say "$(basename "$binary") as uid $run_uid"
  # A subshell joins the groups and becomes the test binary; the script stays outside them, so
  # it can remove them afterwards.
  if ! (
    for group in "${join[@]}"; do echo "$BASHPID" >"$group/cgroup.procs"; done
    exec setpriv --reuid="$run_uid" --regid="$run_uid" --clear-groups --inh-caps=-all \
      --bounding-set=-all env -i PATH=/usr/bin:/bin HOME=/tmp TMPDIR=/tmp "$binary" --test-threads=2
  ); then
    failed=$((failed + 1))
  fi
done
[ "$failed" = 0 ] || { say "FAILED: $failed test binaries"; exit 1; }
say "PASS: the hostile-program suite as uid $run_uid"
