#!/usr/bin/env bash
# What running code as an MCP task costs a streamed chat: 40 streamed `/chat` requests
# "Execute: print(1)" through `switchboard up`, with MIDDLEWARE_TOOL_TASKS=true and =false,
# two interleaved rounds; reports the execute_code call's duration_ms (as the middleware saw
# it) p50/p90 per round. Absolute numbers of one machine: compare rounds of the same run.
#
#   bench/middleware/task-cost.sh        # needs curl, jq; uses target/debug/switchboard
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${SWITCHBOARD_BIN:-${CARGO_TARGET_DIR:-target}/debug/switchboard}
BASE=${BASE_PORT:-19100}
OUT=${CARGO_TARGET_DIR:-target}/task-cost
mkdir -p "$OUT"
[ -x "$BIN" ] || { echo "build first: cargo build -p switchboard" >&2; exit 1; }
run() { # TASKS OUTPUT
  MIDDLEWARE_TOOL_TASKS=$1 "$BIN" up --base-port "$BASE" >"$OUT/up-$1.log" 2>&1 &
  local pid=$! deadline=$((SECONDS + 60))
  until curl -fs -o /dev/null "http://127.0.0.1:$((BASE + 2))/ready"; do
    [ $SECONDS -lt $deadline ] || { echo "switchboard up not ready in 60 s" >&2; kill "$pid"; exit 1; }
    sleep 0.2
  done
  for _ in $(seq 1 40); do
    curl -sN -X POST "http://127.0.0.1:$((BASE + 2))/chat" -H 'content-type: application/json' \
      -d '{"message":"Execute: print(1)","stream":true}' |
      sed -n 's/^data: \({"type":"tool_call_finished".*\)/\1/p' | jq -r .duration_ms
  done >"$2"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
}
for round in 1 2; do
  run true "$OUT/task-$round.txt"
  run false "$OUT/plain-$round.txt"
done
for name in task-1 plain-1 task-2 plain-2; do
  sort -n "$OUT/$name.txt" |
    awk -v n="$name" '{a[NR] = $1} END {printf "%-8s n=%d p50=%.1f ms p90=%.1f ms\n", n, NR, a[int(NR / 2) + 1], a[int(NR * 0.9)]}'
done
