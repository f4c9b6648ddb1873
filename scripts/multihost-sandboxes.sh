#!/usr/bin/env bash
# Several sandboxes behind one code-executor, each sandbox on a host of its own (Linux network
# namespaces on this machine on one virtual switch, as scripts/multihost-test.sh builds them).
#
#   scripts/multihost-sandboxes.sh       # as root; needs ip (iproute2), curl, jq; debug build
#
#   host     address        runs
#   client   10.214.0.2     switchboard-loadgen
#   ce       10.214.0.10    two code-executors: :8004 -> sb1 only, :8005 -> sb1, sb2, sb3
#   sb1-3    10.214.0.11-13 switchboard sandbox
#
# Each sandbox admits SANDBOX_SLOTS (2) programs at once (`--max-concurrent`), as a host with
# a core or two of its own would be configured; more wait in its queue.
#
# 1. Throughput at c=8 through the code-executor with one sandbox, then with three, in the
#    same run, for two programs:
#    a. print('hello'), bound by CPU: every "host" shares this machine's cores, so the ratio
#       says how well the code-executor spreads the load and what it costs, not what three
#       machines would give (it cannot be above 1 much on 2 cores);
#    b. a program that waits 0.25 s (I/O, a remote call), bound by each sandbox's slots: the
#       capacity three sandboxes add, which does not need cores of their own (target > 1:
#       close to 3 when the code-executor spreads well).
# 2. A crash under load: slow programs (0.3 s each) at c=8 through the three, SIGKILL to sb2
#    while they run. Only executions in flight on sb2 may fail (read from the code-executor's
#    /ready just before the kill); every later call succeeds on sb1 and sb3.
#
# The services run with authentication off inside these private namespaces (they are not
# reachable from the machine's network). Logs: ${CARGO_TARGET_DIR:-target}/multihost-sandboxes/.
set -euo pipefail
cd "$(dirname "$0")/.."

target=${CARGO_TARGET_DIR:-target}
BIN=${SWITCHBOARD_BIN:-$target/debug/switchboard}
LOADGEN=${SWITCHBOARD_LOADGEN_BIN:-$target/debug/switchboard-loadgen}
DURATION=${DURATION:-5}
SANDBOX_SLOTS=${SANDBOX_SLOTS:-2}
OUT=$target/multihost-sandboxes
RUN=sbx$$
NET=10.214.0
PIDS=()
# shellcheck source=scripts/lib/netns.sh
source scripts/lib/netns.sh

say() { printf '[multihost-sandboxes] %s\n' "$*"; }
fail() {
  say "FAILED: $*"
  for log in "$OUT"/*.log; do
    [ -f "$log" ] && { echo "--- $log (last 20 lines)"; tail -n 20 "$log"; }
  done
  exit 1
}

[ "$(id -u)" = 0 ] || { echo "run as root (network namespaces)" >&2; exit 1; }
[ -x "$BIN" ] && [ -x "$LOADGEN" ] || fail "build first: cargo build -p switchboard && cargo build -p switchboard-loadgen"
command -v jq >/dev/null || fail "needs jq"
rm -rf "$OUT"
mkdir -p "$OUT"

cleanup() {
  for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  for ns in "${NAMESPACES[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
}
trap cleanup EXIT

make_switch
declare -A PID=()
# serve HOST NAME SUBCOMMAND PORT [ARGS...]
serve() {
  local host=$1 name=$2 subcommand=$3 port=$4
  shift 4
  ip netns exec "$RUN-$host" env SWITCHBOARD_ALLOWED_HOSTS="${ADDR[$host]}" \
    SWITCHBOARD_ALLOW_UNAUTHENTICATED=true \
    "$BIN" "$subcommand" --listen "${ADDR[$host]}:$port" "$@" >"$OUT/$name.log" 2>&1 &
  PID[$name]=$!
  PIDS+=("$!")
}
wait_ready() {
  local url=$1 host=$2 deadline=$((SECONDS + 60))
  until on "$host" curl -fs -o /dev/null "$url"; do
    [ $SECONDS -lt $deadline ] || fail "$url not ready within 60 s"
    sleep 0.2
  done
}

add_host client 2
add_host ce 10
add_host sb1 11
add_host sb2 12
add_host sb3 13

for sb in sb1 sb2 sb3; do
  mkdir -p "$OUT/$sb-site"
  # `ip netns exec` mounts a fresh /sys for the namespace, without /sys/fs/cgroup: the
  # per-execution cgroups cannot be made there (as in scripts/multihost-test.sh).
  serve "$sb" "$sb" sandbox 8001 --packages-dir "$PWD/$OUT/$sb-site" --allow-weaker-isolation cgroups \
    --max-concurrent "$SANDBOX_SLOTS" --pool-size "$SANDBOX_SLOTS"
done
for sb in sb1 sb2 sb3; do wait_ready "http://${ADDR[$sb]}:8001/ready" "$sb"; done
# Each code-executor keeps its tasks in a directory of its own (one service per directory).
serve ce ce-one code-executor 8004 --sandbox-url "http://${ADDR[sb1]}:8001" \
  --state-dir "$PWD/$OUT/ce-one-tasks"
serve ce ce-three code-executor 8005 --state-dir "$PWD/$OUT/ce-three-tasks" \
  --sandbox-url "http://${ADDR[sb1]}:8001" \
  --sandbox-url "http://${ADDR[sb2]}:8001" --sandbox-url "http://${ADDR[sb3]}:8001" \
  --sandbox-probe-seconds 0.2
wait_ready "http://${ADDR[ce]}:8004/ready" ce
wait_ready "http://${ADDR[ce]}:8005/ready" ce
say "three sandboxes and two code-executors up"

# --- 1. throughput at c=8, one sandbox against three ------------------------------------
hello='{"code":"print('"'"'hello'"'"')"}'
waits='{"code":"import time; time.sleep(0.25); print('"'"'hello'"'"')"}'
load() { # PORT OUTPUT ARGUMENTS
  on client "$LOADGEN" mcp -c 8 --duration "$DURATION" --warmup 1 --expect hello \
    --url "http://${ADDR[ce]}:$1/mcp" --tool execute_code --arguments "$3" \
    --output "$OUT/$2.json" >/dev/null
}
# compare NAME ARGUMENTS: one sandbox, then three; sets rate_one, rate_three, ratio.
compare() {
  load 8004 "$1-one" "$2"
  load 8005 "$1-three" "$2"
  local one_errors three_errors
  read -r rate_one one_errors < <(jq -r '"\(.throughput_per_second) \(.errors)"' "$OUT/$1-one.json")
  read -r rate_three three_errors < <(jq -r '"\(.throughput_per_second) \(.errors)"' "$OUT/$1-three.json")
  [ "$one_errors" = 0 ] && [ "$three_errors" = 0 ] ||
    fail "$1: errors under load: $one_errors (one sandbox), $three_errors (three)"
  ratio=$(jq -n --argjson a "$rate_three" --argjson b "$rate_one" '$a / $b * 100 | round / 100')
}
compare cpu "$hello"
one_rate=$rate_one three_rate=$rate_three cpu_ratio=$ratio
say "print('hello') (CPU-bound), c=8 executions/s: one sandbox $one_rate, three $three_rate: ratio ${cpu_ratio}x ($(nproc) cores shared by all)"
compare waits "$waits"
waits_one=$rate_one waits_three=$rate_three waits_ratio=$ratio
say "0.25 s waits ($SANDBOX_SLOTS slots a sandbox), c=8 executions/s: one sandbox $waits_one, three $waits_three: ratio ${waits_ratio}x"
# Three sandboxes hold three times the slots: at c=8 they must run clearly more than one does.
jq -en --argjson r "$waits_ratio" '$r > 1.5' >/dev/null ||
  fail "three sandboxes ran waiting programs only ${waits_ratio}x as fast as one"
spread=$(for sb in sb1 sb2 sb3; do
  on client curl -fsS "http://${ADDR[$sb]}:8001/metrics" |
    awk '/^sandbox_executions_total\{/ { n += $2 } END { printf "%d ", n }'
done)
say "executions per sandbox (sb1 sb2 sb3, both runs): $spread"
for n in $spread; do [ "$n" -gt 0 ] || fail "a sandbox ran nothing: $spread"; done

# --- 2. SIGKILL one sandbox under load --------------------------------------------------
slow='{"code":"import time; time.sleep(0.3); print('"'"'hello'"'"')"}'
on client "$LOADGEN" mcp -c 8 --duration 8 --warmup 0 --expect hello \
  --url "http://${ADDR[ce]}:8005/mcp" --tool execute_code --arguments "$slow" \
  --output "$OUT/crash.json" >/dev/null &
loadgen=$!
PIDS+=("$loadgen")
# Wait until sb2 has executions in flight, note how many, and kill it at once.
deadline=$((SECONDS + 30))
while :; do
  in_flight=$(on client curl -fsS "http://${ADDR[ce]}:8005/ready" |
    jq --arg url "http://${ADDR[sb2]}:8001" '.dependencies.sandbox.detail.sandboxes[] | select(.url == $url) | .in_flight')
  [ "${in_flight:-0}" -gt 0 ] && break
  [ $SECONDS -lt $deadline ] || fail "sb2 never had an execution in flight"
  sleep 0.05
done
kill -9 "${PID[sb2]}"
say "killed sb2 with $in_flight execution(s) in flight on it (read just before the kill)"
wait "$loadgen" || true
read -r requests errors < <(jq -r '"\(.requests) \(.errors)"' "$OUT/crash.json")
say "under the crash: $requests executions, $errors failed"
# What was sent to sb2 between the /ready read and the kill (a few ms) can fail too: allow 2.
[ "$errors" -le $((in_flight + 2)) ] ||
  fail "$errors executions failed; only those in flight on sb2 ($in_flight, +2 sent while it was killed) may"
[ "$requests" -gt 40 ] || fail "only $requests executions in 8 s at c=8"
# After the crash every call succeeds on the other two.
on client "$LOADGEN" mcp -c 4 --requests 40 --warmup 0 --expect hello \
  --url "http://${ADDR[ce]}:8005/mcp" --tool execute_code --arguments "$hello" \
  --output "$OUT/after.json" >/dev/null
after_errors=$(jq -r .errors "$OUT/after.json")
[ "$after_errors" = 0 ] || fail "$after_errors of 40 executions failed after the crash"
say "after the crash: 40 executions, 0 failed"

jq -n --argjson one "$one_rate" --argjson three "$three_rate" --argjson ratio "$cpu_ratio" \
  --argjson w1 "$waits_one" --argjson w3 "$waits_three" --argjson wr "$waits_ratio" \
  --argjson slots "$SANDBOX_SLOTS" \
  --argjson cores "$(nproc)" --argjson in_flight "$in_flight" --argjson crash_errors "$errors" \
  --argjson crash_requests "$requests" \
  '{c: 8, cores: $cores, slots_per_sandbox: $slots, cpu_bound: {one_sandbox_per_second: $one, three_sandboxes_per_second: $three, ratio: $ratio}, waiting_0_25_s: {one_sandbox_per_second: $w1, three_sandboxes_per_second: $w3, ratio: $wr}, crash: {in_flight_on_killed: $in_flight, requests: $crash_requests, failed: $crash_errors}}' \
  >"$OUT/summary.json"
say "PASS ($OUT/summary.json)"
