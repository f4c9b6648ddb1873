#!/usr/bin/env bash
# Multi-host test: Switchboard's services on separate hosts — Linux network namespaces on this
# machine, each with its own address, plugged into one virtual switch (a bridge in a namespace
# of its own) by veth links. Nothing of the machine's own network is touched.
#
#   scripts/multihost-test.sh                        # as root; needs ip (iproute2), curl, jq,
#                                                    # python3 with PyYAML
#   scripts/multihost-test.sh --with-code-executor   # also the code-executor and its sandbox
#
#   host       address        runs
#   client     10.213.0.2     the checks (switchboard tools/call, switchboard-loadgen, curl)
#   gw         10.213.0.10    switchboard mcp-server, upstreams time-a and time-b
#   time-a     10.213.0.11    switchboard time-client (default zone Europe/Berlin)
#   time-b     10.213.0.12    switchboard time-client (default zone Asia/Tokyo)
#   sandbox    10.213.0.13    switchboard sandbox                (--with-code-executor)
#   code-exec  10.213.0.14    switchboard code-executor, a third upstream of the gateway
#   mw         10.213.0.15    switchboard middleware, in front of the gateway
#
# Authentication is on, wired as the deployment files wire it: deploy/make-secrets.sh makes the
# keys, tokens and starter policy (into the log directory), and each service gets the
# authentication settings deploy/compose/docker-compose.yml gives it, with the paths of its
# secret mounts pointing at those files (scripts/deploy_checks.py compose-env). The gateway
# calls its upstreams with its own key, as deploy/compose/mcp-server.toml does. Before the
# rounds it checks: a call without a key, or with a wrong one, gets 401 from the gateway and
# the middleware; a user's key is refused by a tool service (only the gateway's key is
# admitted there); /health, /ready and /metrics answer every service without a key; a tool
# call through the middleware with the example user's key succeeds (with --with-code-executor:
# execute_code through middleware -> gateway -> code-executor -> sandbox), and the gateway's
# audit log names that user, delegated by the middleware; the starter policy refuses the user
# install_package; the sandbox's pending packages answer the operator's key and refuse none;
# the sandbox reads its admin token from the file the compose file names
# (SANDBOX_ADMIN_TOKEN=file:...): with that token a rejection of an unknown request is 404, with
# another 401.
# Every other call of the test is made with the example user's key.
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
# The compose file whose authentication settings the services get (another one: to try a change).
COMPOSE=${SWITCHBOARD_COMPOSE_FILE:-deploy/compose/docker-compose.yml}
NET=10.213.0           # the switch's /24; host N is $NET.N
RUN=sbmh$$             # prefix of this run's namespace names
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
  fail "build first: cargo build -p switchboard && cargo build -p switchboard-loadgen"
fi
mkdir -p "$OUT"
rm -f "$OUT"/*.log "$OUT"/*.json "$OUT"/*.jsonl "$OUT"/*.toml
rm -rf "$OUT/secrets"

# --- credentials: what an operator makes with deploy/make-secrets.sh ----------------------
SECRETS=$OUT/secrets
SWITCHBOARD_BIN=$BIN deploy/make-secrets.sh --dir "$SECRETS" >"$OUT/make-secrets.log" ||
  fail "deploy/make-secrets.sh failed: $(cat "$OUT/make-secrets.log")"
# The starter policy names the deployment's upstreams; this test's time-clients are time-a and
# time-b. The rest of the policy is as generated.
cat >>"$SECRETS/mcp-server/policy.toml" <<'EOF'

# Added by scripts/multihost-test.sh: its time-clients are the upstreams time-a and time-b.
[roles.multihost-time]
upstreams = ["time-a", "time-b"]

[[grants]]
roles = ["multihost-time"]
groups = ["users"]
EOF
USER_KEY=$(cat "$SECRETS/keys/example-user.key")
OPERATOR_KEY=$(cat "$SECRETS/keys/operator.key")
# The switchboard CLI (tools, call) sends it on every request.
export SWITCHBOARD_TOKEN=file:$SECRETS/keys/example-user.key
AUTH=(-H "Authorization: Bearer $USER_KEY")

# --- cleanup: only what this run created --------------------------------------------------
declare -a PIDS=()
# shellcheck source=scripts/lib/netns.sh
source scripts/lib/netns.sh
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
declare -A PID=()

make_switch

# serve HOST SUBCOMMAND PORT [ARGS...]: run a switchboard service on HOST at its address,
# accepting its address as Host header, with the authentication settings the compose file
# gives that service (its API keys file, its tokens, the gateway's policy and delegates).
# `ip netns exec` execs the binary: $! is its pid.
serve() {
  local host=$1 subcommand=$2 port=$3 auth_env
  shift 3
  auth_env=$(scripts/deploy_checks.py compose-env "$COMPOSE" "$subcommand" "$SECRETS") ||
    fail "cannot read $subcommand's authentication settings from the compose file"
  grep -q '^SWITCHBOARD_API_KEYS=' <<<"$auth_env" || fail "the compose file gives $subcommand no API keys"
  local -a env_args
  mapfile -t env_args <<<"$auth_env"
  ip netns exec "$RUN-$host" env SWITCHBOARD_ALLOWED_HOSTS="${ADDR[$host]}" "${env_args[@]}" \
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
add_host mw 15
GW_URL=http://${ADDR[gw]}:8000
MW_URL=http://${ADDR[mw]}:8002

# --- services -----------------------------------------------------------------------------
# Tool services, and the gateway's upstream list: tables in its configuration file, each
# with the gateway's own key as deploy/compose/mcp-server.toml has it (an upstream's headers
# can only be given in the file). A further service is a host here, a line in UPSTREAMS, and
# its /ready URL in READY; the rounds below are written per upstream name and need no change.
upstream() {
  printf '  { name = "%s", url = "%s", headers = { Authorization = "file:%s" } },\n' \
    "$1" "$2" "$SECRETS/mcp-server/upstream-authorization"
}
serve time-a time-client 8003 --default-timezone Europe/Berlin
serve time-b time-client 8003 --default-timezone Asia/Tokyo
UPSTREAMS=$(upstream time-a "http://${ADDR[time-a]}:8003/mcp"; upstream time-b "http://${ADDR[time-b]}:8003/mcp")
READY=("http://${ADDR[time-a]}:8003/ready" "http://${ADDR[time-b]}:8003/ready")
if [ "$WITH_CODE_EXECUTOR" = 1 ]; then
  add_host sandbox 13
  add_host code-exec 14
  # The isolation layers this host cannot enforce (no writable cgroup here, say) are allowed
  # to be missing: this test is about the network and the credentials between hosts; the
  # sandbox's own tests cover its isolation. Where the host has them, they are enforced.
  serve sandbox sandbox 8001 --allow-weaker-isolation cgroups
  # Short timeouts, so a cut sandbox is reported within the round's deadline.
  serve code-exec code-executor 8004 --sandbox-url "http://${ADDR[sandbox]}:8001" \
    --connect-timeout-seconds 1 --execute-timeout-seconds 5
  UPSTREAMS+=$'\n'$(upstream code-executor "http://${ADDR[code-exec]}:8004/mcp")
  READY+=("http://${ADDR[sandbox]}:8001/ready" "http://${ADDR[code-exec]}:8004/ready")
fi
printf '[mcp-server]\nupstreams = [\n%s\n]\n' "$UPSTREAMS" >"$OUT/gateway.toml"
serve gw mcp-server 8000 --config "$OUT/gateway.toml" --audit-log "$OUT/gw-audit.jsonl" \
  --health-interval-seconds 1 --connect-timeout-seconds 1 --call-timeout-seconds 10

for url in "${READY[@]}"; do
  on client "$PWD/scripts/wait-ready.sh" "$url" 60 || fail "$url did not become ready"
done
on client "$PWD/scripts/wait-ready.sh" "$GW_URL/ready" 30 || fail "the gateway did not become ready"
# The middleware is ready once the gateway answers its tools/list, made with its own key.
serve mw middleware 8002 --gateway-url "$GW_URL/mcp"
on client "$PWD/scripts/wait-ready.sh" "$MW_URL/ready" 30 || fail "the middleware did not become ready"
STARTED=$(date +%s)

# --- what the gateway says ----------------------------------------------------------------
api_tools() { on client curl -fsS --max-time 5 "${AUTH[@]}" "$GW_URL/api/tools"; }
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

# --- authentication, as deployed ----------------------------------------------------------
# status METHOD URL [CURL ARGS...]: the HTTP status of one request from the client host.
status() {
  local method=$1 url=$2
  shift 2
  on client curl -s -o /dev/null -w '%{http_code}' --max-time 10 -X "$method" "$@" "$url"
}
INIT='{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"multihost","version":"1"}}}'
MCP_HEADERS=(-H 'content-type: application/json' -H 'accept: application/json, text/event-stream')
for check in "no key|" "a wrong key|Authorization: Bearer sbk_not-a-key"; do
  what=${check%%|*}
  header=()
  [ -n "${check#*|}" ] && header=(-H "${check#*|}")
  got=$(status POST "$GW_URL/mcp" "${MCP_HEADERS[@]}" "${header[@]}" -d "$INIT")
  [ "$got" = 401 ] || fail "the gateway's /mcp answered $got to $what, expected 401"
  got=$(status POST "$GW_URL/api/tools/$TOOL_A" -H 'content-type: application/json' "${header[@]}" -d '{}')
  [ "$got" = 401 ] || fail "the gateway's REST tool call answered $got to $what, expected 401"
  got=$(status POST "$MW_URL/execute" -H 'content-type: application/json' "${header[@]}" \
    -d "{\"name\": \"$TOOL_A\"}")
  [ "$got" = 401 ] || fail "the middleware's /execute answered $got to $what, expected 401"
done
on client curl -s -o /dev/null -D - -X POST "${MCP_HEADERS[@]}" -d "$INIT" "$GW_URL/mcp" |
  grep -qi '^www-authenticate: Bearer' || fail "the gateway's 401 has no WWW-Authenticate: Bearer"
if error=$(on client env -u SWITCHBOARD_TOKEN "$BIN" tools --gateway-url "$GW_URL/mcp" 2>&1); then
  fail "switchboard tools without a key listed the gateway's tools: $error"
fi
# Behind the gateway only the gateway's key is admitted: a user's key is refused there.
got=$(status POST "http://${ADDR[time-a]}:8003/mcp" "${MCP_HEADERS[@]}" "${AUTH[@]}" -d "$INIT")
[ "$got" = 401 ] || fail "time-a answered $got to the user's key, expected 401 (only the gateway's key)"
say "no key or a wrong one: 401 from the gateway (MCP and REST) and the middleware; a user's key: 401 from a tool service"

# The probes and /metrics stay open: the orchestrator's checks and Prometheus carry no key.
declare -A PORT=([gw]=8000 [time-a]=8003 [time-b]=8003 [sandbox]=8001 [code-exec]=8004 [mw]=8002)
for host in "${!PID[@]}"; do
  for path in /health /ready /metrics; do
    got=$(status GET "http://${ADDR[$host]}:${PORT[$host]}$path")
    [ "$got" = 200 ] || fail "$host's $path answered $got without a key, expected 200"
  done
done
say "/health, /ready, /metrics: 200 without a key on all ${#PID[@]} services"

# A tool call through the middleware, with the user's key; the middleware calls the gateway
# with its own key on the user's behalf.
mw_execute() {
  on client curl -fsS --max-time 30 "${AUTH[@]}" -H 'content-type: application/json' \
    -d "$1" "$MW_URL/execute"
}
answer=$(mw_execute "{\"name\": \"$TOOL_A\"}") || fail "the middleware's /execute of $TOOL_A failed"
jq -e '.is_error == false and (.result | contains("Europe/Berlin"))' <<<"$answer" >/dev/null ||
  fail "the middleware's /execute of $TOOL_A did not answer from time-a: $answer"
CHAIN="middleware -> gateway -> time-a"
if [ "$WITH_CODE_EXECUTOR" = 1 ]; then
  answer=$(mw_execute '{"name": "execute_code", "parameters": {"code": "print(6 * 7)"}}') ||
    fail "the middleware's /execute of execute_code failed"
  jq -e '.is_error == false and .structured_content.stdout == "42\n"' <<<"$answer" >/dev/null ||
    fail "execute_code through the middleware did not print 42: $answer"
  CHAIN="$CHAIN; middleware -> gateway -> code-executor -> sandbox"
  # The starter policy gives users execute_code but not install_package.
  if error=$(on client "$BIN" call install_package '{"package": "six"}' --gateway-url "$GW_URL/mcp" 2>&1); then
    fail "the policy let example-user call install_package: $error"
  fi
  grep -q 'example-user' <<<"$error" || fail "the policy's refusal does not name the caller: $error"
  # The sandbox admits the operator (package approvals), and refuses callers without a key.
  got=$(on client curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $OPERATOR_KEY" \
    "http://${ADDR[sandbox]}:8001/packages/pending")
  [ "$got" = 200 ] || fail "the sandbox's /packages/pending answered $got to the operator's key"
  got=$(status GET "http://${ADDR[sandbox]}:8001/packages/pending")
  [ "$got" = 401 ] || fail "the sandbox's /packages/pending answered $got without a key, expected 401"
  # The admin token, given as file:PATH like the compose file gives it: the token in that file
  # is accepted (an unknown request is then 404), another one is not (401).
  grep -q '^SANDBOX_ADMIN_TOKEN=file:' <(scripts/deploy_checks.py compose-env "$COMPOSE" sandbox "$SECRETS") ||
    fail "the compose file does not give the sandbox its admin token as file:PATH"
  reject_unknown() {
    status POST "http://${ADDR[sandbox]}:8001/packages/pending/no-such-request/reject" \
      -H "Authorization: Bearer $OPERATOR_KEY" -H "X-Admin-Token: $1"
  }
  got=$(reject_unknown "$(cat "$SECRETS/sandbox/admin-token")")
  [ "$got" = 404 ] || fail "the sandbox answered $got to the admin token of its file, expected 404 (accepted, no such request)"
  got=$(reject_unknown "sba_not-the-admin-token-0000000000")
  [ "$got" = 401 ] || fail "the sandbox answered $got to a wrong admin token, expected 401"
  say "the starter policy refuses example-user install_package; the sandbox admits the operator's key and the admin token of its file"
fi
# The gateway judged (and recorded) the person, not the middleware.
audited() {
  jq -e -s --arg t "$1" 'any(.[]; .action == "tools/call" and .target == $t
    and .identity == "example-user" and .method == "delegated" and .via == "middleware" and .outcome == "ok")' \
    "$OUT/gw-audit.jsonl" >/dev/null
}
wait_for "the gateway's audit record of example-user's $TOOL_A via the middleware" 5 audited "$TOOL_A" >/dev/null
say "with keys: $CHAIN; the gateway's audit log: example-user, delegated by the middleware"

# --- cut, check, restore ------------------------------------------------------------------
# round NAME CUT RESTORE: cut time-b off with the command CUT, check the degradation, restore
# with RESTORE, check the healing.
round() {
  local name=$1 cut=$2 restore=$3 load_pid detect heal error
  say "round '$name': cutting time-b off ($cut)"
  eval "$cut"
  # time-a's calls from the moment of the cut until well after the gateway noticed.
  on client "$LOADGEN" mcp --url "$GW_URL/mcp" --tool "$TOOL_A" -c 2 --warmup 0 \
    --duration "$((DETECT_LIMIT / 2))" --expect Europe/Berlin --bearer "$USER_KEY" \
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
    --duration "$((DETECT_LIMIT / 2))" --expect Europe/Berlin --bearer "$USER_KEY" \
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
for host in "${!PID[@]}"; do
  kill -0 "${PID[$host]}" 2>/dev/null || fail "$host's process is gone"
  uptime=$(on client curl -fsS "http://${ADDR[$host]}:${PORT[$host]}/health" |
    jq -r '.uptime_seconds | floor')
  # Whole seconds on both sides: allow one for rounding.
  [ "$((uptime + 1))" -ge "$(($(date +%s) - STARTED))" ] || fail "$host restarted (uptime ${uptime}s)"
done
say "PASS: cutting one upstream degraded only its tools; restoring it healed the system without restarts"
