#!/usr/bin/env bash
# Multi-host test: Switchboard's services on separate hosts — Linux network namespaces on this
# machine, each with its own address, plugged into one virtual switch (a bridge in a namespace
# of its own) by veth links. Nothing of the machine's own network is touched.
#
#   scripts/multihost-test.sh                        # as root; needs ip (iproute2), curl, jq
#   scripts/multihost-test.sh --with-code-executor   # also the code-executor and its sandbox
#
#   host       address        runs
#   client     10.213.0.2     the checks (switchboard tools/call, switchboard-loadgen, curl)
#   gw         10.213.0.10    switchboard mcp-server, upstreams time-a and time-b
#   time-a     10.213.0.11    switchboard time-client (default zone Europe/Berlin)
#   time-b     10.213.0.12    switchboard time-client (default zone Asia/Tokyo)
#   sandbox    10.213.0.13    switchboard sandbox                (--with-code-executor)
#   code-exec  10.213.0.14    switchboard code-executor, a third upstream of the gateway
#
# Two rounds cut the gateway off from time-b: unplugging time-b's cable at the switch (packets
# vanish; connections hang until timeouts) and a blackhole route on the gateway's host (sends
# fail at once). Each round checks that time-b's tools leave the gateway's MCP tool list and
# REST /api/tools marks them unavailable, that time-a's tool calls keep succeeding throughout
# (a load run from the moment of the cut until after detection, no error allowed), that a call
# to time-b's tool fails fast with a clear error, and that after restoring the link time-b's
# tools come back and answer — with every process still the one started at the beginning (no
# restarts). The gateway notices through its health checks (1 s interval here), so the script
# polls /api/tools until a deadline. With --with-code-executor, execute_code must answer
# through gateway -> code-executor -> sandbox across three hosts, and a third round unplugs the
# sandbox: the code-executor stays listed, execute_code fails with an error naming the
# sandbox, the code-executor's /ready turns 503, time-a's calls still all succeed, and after
# the repair execute_code runs again.
#
# Cleanup: a trap stops every process this script started (by pid) and deletes every
# namespace it created, however the script ends. Logs: ${CARGO_TARGET_DIR:-target}/multihost/.
set -euo pipefail
cd "$(dirname "$0")/.."
WITH_CODE_EXECUTOR=0
case "${1:-}" in
  --with-code-executor) WITH_CODE_EXECUTOR=1 ;;
  "") ;;
  *) echo "usage: $0 [--with-code-executor]" >&2; exit 2 ;;
esac

target=${CARGO_TARGET_DIR:-target}
BIN=${SWITCHBOARD_BIN:-$target/debug/switchboard}
LOADGEN=${SWITCHBOARD_LOADGEN_BIN:-$target/debug/switchboard-loadgen}
OUT=$target/multihost
NET=10.213.0           # the switch's /24; host N is $NET.N
RUN=sbmh$$             # prefix of this run's namespace names
SW=$RUN-switch         # the switch's namespace, with bridge br0
DETECT_LIMIT=20        # seconds for the gateway to notice a cut or a repair

say() { printf '[multihost] %s\n' "$*"; }
fail() {
  printf '[multihost] FAIL: %s\n' "$*" >&2
  for log in "$OUT"/*.log; do
    [ -f "$log" ] || continue
    printf '\n--- %s (last 30 lines) ---\n' "$log" >&2
    tail -n 30 "$log" >&2
  done
  exit 1
}

[ "$(id -u)" = 0 ] || fail "needs root (it creates network namespaces)"
for tool in ip curl jq; do
  command -v "$tool" >/dev/null || fail "needs $tool"
done
if [ ! -x "$BIN" ] || [ ! -x "$LOADGEN" ]; then
  fail "build first: cargo build -p switchboard -p switchboard-loadgen"
fi
mkdir -p "$OUT"
rm -f "$OUT"/*.log "$OUT"/*.json

# --- cleanup: only what this run created --------------------------------------------------
declare -a PIDS=() NAMESPACES=()
cleanup() {
  local status=$?
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  for ns in "${NAMESPACES[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- hosts --------------------------------------------------------------------------------
declare -A ADDR=() PID=()

ip netns add "$SW"
NAMESPACES+=("$SW")
ip -n "$SW" link add br0 type bridge
ip -n "$SW" link set br0 up

# add_host NAME N: a namespace $RUN-NAME whose eth0 is $NET.N/24, cabled to switch port NAME.
add_host() {
  local name=$1 ns=$RUN-$1 addr=$NET.$2
  ip netns add "$ns"
  NAMESPACES+=("$ns")
  ip -n "$ns" link set lo up
  ip -n "$SW" link add "$name" type veth peer name eth0 netns "$ns"
  ip -n "$SW" link set "$name" master br0
  ip -n "$SW" link set "$name" up
  ip -n "$ns" addr add "$addr/24" dev eth0
  ip -n "$ns" link set eth0 up
  ADDR[$name]=$addr
}

# on HOST COMMAND...: run COMMAND on HOST.
on() {
  local host=$1
  shift
  ip netns exec "$RUN-$host" "$@"
}

# serve HOST SUBCOMMAND PORT [ARGS...]: run a switchboard service on HOST at its address,
# accepting its address as Host header. `ip netns exec` execs the binary: $! is its pid.
# Unauthenticated, said explicitly (a non-loopback address is refused otherwise): this test is
# about the network; crates/switchboard/tests/auth.rs covers authentication.
serve() {
  local host=$1 subcommand=$2 port=$3
  shift 3
  ip netns exec "$RUN-$host" env SWITCHBOARD_ALLOWED_HOSTS="${ADDR[$host]}" \
    SWITCHBOARD_ALLOW_UNAUTHENTICATED=true \
    "$BIN" "$subcommand" --listen "${ADDR[$host]}:$port" "$@" >"$OUT/$host.log" 2>&1 &
  PID[$host]=$!
  PIDS+=("$!")
}

# wait_for WHAT SECONDS COMMAND...: until COMMAND succeeds; prints the seconds it took.
wait_for() {
  local what=$1 limit=$2 start elapsed
  shift 2
  start=${EPOCHREALTIME/./}
  until "$@" >/dev/null 2>&1; do
    if [ $((${EPOCHREALTIME/./} - start)) -gt $((limit * 1000000)) ]; then
      fail "$what: not within ${limit}s"
    fi
    sleep 0.2
  done
  elapsed=$((${EPOCHREALTIME/./} - start))
  printf '%d.%d' $((elapsed / 1000000)) $((elapsed / 100000 % 10))
}

add_host client 2
add_host gw 10
add_host time-a 11
add_host time-b 12
GW_URL=http://${ADDR[gw]}:8000

# --- services -----------------------------------------------------------------------------
# Tool services, and the gateway's upstream list. A further service is a host here, its
# address in UPSTREAMS, and its /ready URL in READY; the rounds below are written per upstream
# name and need no change.
serve time-a time-client 8003 --default-timezone Europe/Berlin
serve time-b time-client 8003 --default-timezone Asia/Tokyo
UPSTREAMS=(
  --upstream "time-a=http://${ADDR[time-a]}:8003/mcp"
  --upstream "time-b=http://${ADDR[time-b]}:8003/mcp"
)
READY=("http://${ADDR[time-a]}:8003/ready" "http://${ADDR[time-b]}:8003/ready")
if [ "$WITH_CODE_EXECUTOR" = 1 ]; then
  add_host sandbox 13
  add_host code-exec 14
  serve sandbox sandbox 8001
  # Short timeouts, so a cut sandbox is reported within the round's deadline.
  serve code-exec code-executor 8004 --sandbox-url "http://${ADDR[sandbox]}:8001" \
    --connect-timeout-seconds 1 --execute-timeout-seconds 5
  UPSTREAMS+=(--upstream "code-executor=http://${ADDR[code-exec]}:8004/mcp")
  READY+=("http://${ADDR[sandbox]}:8001/ready" "http://${ADDR[code-exec]}:8004/ready")
fi
serve gw mcp-server 8000 "${UPSTREAMS[@]}" \
  --health-interval-seconds 1 --connect-timeout-seconds 1 --call-timeout-seconds 10

for url in "${READY[@]}"; do
  on client "$PWD/scripts/wait-ready.sh" "$url" 60 || fail "$url did not become ready"
done
on client "$PWD/scripts/wait-ready.sh" "$GW_URL/ready" 30 || fail "the gateway did not become ready"
STARTED=$(date +%s)

# --- what the gateway says ----------------------------------------------------------------
api_tools() { on client curl -fsS --max-time 5 "$GW_URL/api/tools"; }
mcp_tool_names() { on client "$BIN" tools --json --gateway-url "$GW_URL/mcp" | jq -r '.[].name'; }

# upstream_is NAME up|down: REST shows NAME's status and its tools as (un)available, and the
# MCP tools/list has (or lacks) every one of them.
upstream_is() {
  local name=$1 want=$2 available=false tools listed
  [ "$want" = up ] && available=true
  tools=$(api_tools) || return 1
  jq -e --arg n "$name" --arg s "$want" --argjson a "$available" \
    '(.upstreams[] | select(.name == $n) | .status == $s)
     and ([.tools[] | select(.upstream == $n)] | length > 0 and all(.available == $a))' \
    <<<"$tools" >/dev/null || return 1
  listed=$(mcp_tool_names) || return 1
  for tool in $(jq -r --arg n "$name" '.tools[] | select(.upstream == $n) | .name' <<<"$tools"); do
    if grep -qxF "$tool" <<<"$listed"; then
      [ "$want" = up ] || return 1
    else
      [ "$want" = down ] || return 1
    fi
  done
}

# tool_of UPSTREAM ORIGINAL: the public name of UPSTREAM's tool ORIGINAL (prefixed on collision).
tool_of() {
  api_tools | jq -r --arg n "$1" --arg t "$2" \
    '.tools[] | select(.upstream == $n and (.name == $t or (.name | endswith("_" + $t)))) | .name' |
    head -n1
}

# zone_of TOOL: call TOOL through the gateway's MCP endpoint; print the zone it answered for.
zone_of() {
  on client "$BIN" call "$1" '{}' --json --gateway-url "$GW_URL/mcp" | jq -er '.structuredContent.timezone'
}

wait_for "both upstreams up" "$DETECT_LIMIT" upstream_is time-a up >/dev/null
wait_for "both upstreams up" "$DETECT_LIMIT" upstream_is time-b up >/dev/null
TOOL_A=$(tool_of time-a get_current_time)
TOOL_B=$(tool_of time-b get_current_time)
if [ -z "$TOOL_A" ] || [ -z "$TOOL_B" ] || [ "$TOOL_A" = "$TOOL_B" ]; then
  fail "expected a get_current_time of each upstream, got '$TOOL_A' and '$TOOL_B'"
fi
[ "$(zone_of "$TOOL_A")" = Europe/Berlin ] || fail "$TOOL_A did not answer from time-a"
[ "$(zone_of "$TOOL_B")" = Asia/Tokyo ] || fail "$TOOL_B did not answer from time-b"
say "federated over the switch: $TOOL_A -> time-a (${ADDR[time-a]}), $TOOL_B -> time-b (${ADDR[time-b]})"

# run_code: execute_code through the gateway; prints the program's stdout.
run_code() {
  on client "$BIN" call execute_code '{"code": "print(6 * 7)"}' --json --gateway-url "$GW_URL/mcp" |
    jq -er 'select(.isError != true) | .structuredContent.stdout'
}
if [ "$WITH_CODE_EXECUTOR" = 1 ]; then
  wait_for "the code-executor's tools listed" "$DETECT_LIMIT" upstream_is code-executor up >/dev/null
  [ "$(run_code)" = 42 ] || fail "execute_code did not answer 42 through gateway -> code-executor -> sandbox"
  say "execute_code answers across three hosts: gw -> code-exec (${ADDR[code-exec]}) -> sandbox (${ADDR[sandbox]})"
fi

# --- cut, check, restore ------------------------------------------------------------------
# round NAME CUT RESTORE: cut time-b off with the command CUT, check the degradation, restore
# with RESTORE, check the healing.
round() {
  local name=$1 cut=$2 restore=$3 load_pid detect heal error
  say "round '$name': cutting time-b off ($cut)"
  eval "$cut"
  # time-a's calls from the moment of the cut until well after the gateway noticed.
  on client "$LOADGEN" mcp --url "$GW_URL/mcp" --tool "$TOOL_A" -c 2 --warmup 0 \
    --duration "$((DETECT_LIMIT / 2))" --expect Europe/Berlin \
    --output "$OUT/load-$name.json" >"$OUT/load-$name.log" 2>&1 &
  load_pid=$!
  PIDS+=("$load_pid")
  detect=$(wait_for "time-b's tools leave the list ($name)" "$DETECT_LIMIT" upstream_is time-b down)
  upstream_is time-a up || fail "time-a's tools left the list while time-b was cut ($name)"
  # A call to time-b's tool fails fast and says why.
  if error=$(on client timeout 10 "$BIN" call "$TOOL_B" '{}' --gateway-url "$GW_URL/mcp" 2>&1); then
    fail "$TOOL_B answered while time-b was cut off ($name): $error"
  fi
  grep -qiE 'down|unavailable|unreachable' <<<"$error" ||
    fail "the error for $TOOL_B does not say time-b is down ($name): $error"
  wait "$load_pid" || fail "time-a's calls failed while time-b was cut ($name); see $OUT/load-$name.log"
  jq -e '.errors == 0 and .requests > 0' "$OUT/load-$name.json" >/dev/null ||
    fail "the load report shows errors or no requests ($name)"
  say "  time-b down in ${detect}s; time-a meanwhile: $(jq -r '"\(.requests) calls, 0 errors, p50 \(.latency_us.p50) µs, p99 \(.latency_us.p99) µs"' "$OUT/load-$name.json")"
  say "  $TOOL_B fails fast: $(head -n1 <<<"$error")"

  eval "$restore"
  heal=$(wait_for "time-b's tools come back ($name)" "$DETECT_LIMIT" upstream_is time-b up)
  [ "$(zone_of "$TOOL_B")" = Asia/Tokyo ] || fail "$TOOL_B does not answer after the repair ($name)"
  [ "$(zone_of "$TOOL_A")" = Europe/Berlin ] || fail "$TOOL_A does not answer after the repair ($name)"
  say "  restored; time-b's tools back and answering in ${heal}s"
}

round unplug "ip -n $SW link set time-b down" "ip -n $SW link set time-b up"
round blackhole "ip -n $RUN-gw route add blackhole ${ADDR[time-b]}/32" \
  "ip -n $RUN-gw route del blackhole ${ADDR[time-b]}/32"

# sandbox_round: unplug the sandbox; only execute_code may suffer, and it must say why.
sandbox_round() {
  local load_pid error ready_after heal
  say "round 'sandbox': unplugging the sandbox"
  ip -n "$SW" link set sandbox down
  on client "$LOADGEN" mcp --url "$GW_URL/mcp" --tool "$TOOL_A" -c 2 --warmup 0 \
    --duration "$((DETECT_LIMIT / 2))" --expect Europe/Berlin \
    --output "$OUT/load-sandbox.json" >"$OUT/load-sandbox.log" 2>&1 &
  load_pid=$!
  PIDS+=("$load_pid")
  if error=$(on client timeout 30 "$BIN" call execute_code '{"code": "print(1)"}' \
    --gateway-url "$GW_URL/mcp" 2>&1); then
    fail "execute_code answered with the sandbox unplugged: $error"
  fi
  grep -qi 'sandbox' <<<"$error" || fail "the execute_code error does not name the sandbox: $error"
  code_exec_not_ready() {
    [ "$(on client curl -s -o /dev/null -w '%{http_code}' "http://${ADDR[code-exec]}:8004/ready")" = 503 ]
  }
  ready_after=$(wait_for "the code-executor's /ready reports the sandbox" "$DETECT_LIMIT" code_exec_not_ready)
  upstream_is code-executor up || fail "the code-executor left the list although it still answers MCP"
  upstream_is time-b up || fail "time-b left the list while the sandbox was unplugged"
  wait "$load_pid" || fail "time-a's calls failed while the sandbox was unplugged; see $OUT/load-sandbox.log"
  say "  execute_code fails and says why: $(head -n1 <<<"$error")"
  say "  code-executor /ready 503 after ${ready_after}s; time-a meanwhile: $(jq -r '"\(.requests) calls, \(.errors) errors"' "$OUT/load-sandbox.json")"
  ip -n "$SW" link set sandbox up
  heal=$(wait_for "execute_code runs again" "$DETECT_LIMIT" run_code)
  say "  restored; execute_code runs again in ${heal}s"
}
if [ "$WITH_CODE_EXECUTOR" = 1 ]; then
  sandbox_round
fi

# --- no restarts --------------------------------------------------------------------------
declare -A PORT=([gw]=8000 [time-a]=8003 [time-b]=8003 [sandbox]=8001 [code-exec]=8004)
for host in "${!PID[@]}"; do
  kill -0 "${PID[$host]}" 2>/dev/null || fail "$host's process is gone"
  uptime=$(on client curl -fsS "http://${ADDR[$host]}:${PORT[$host]}/health" |
    jq -r '.uptime_seconds | floor')
  # Whole seconds on both sides: allow one for rounding.
  [ "$((uptime + 1))" -ge "$(($(date +%s) - STARTED))" ] || fail "$host restarted (uptime ${uptime}s)"
done
say "PASS: cutting one upstream degraded only its tools; restoring it healed the system without restarts"
