#!/usr/bin/env bash
# The sandbox benchmark: print('hello') through the sandbox's REST API and through the
# code-executor's MCP tool (each call a fresh isolated interpreter), beside a cold
# `/usr/bin/python3 -c "print('hello')"` start measured in the same run. Two kinds of run:
#   - paced: one call every 1/RATE s, one at a time (switchboard-loadgen --rate): the latency
#     of one call while the pool keeps up;
#   - saturated: switchboard-loadgen's closed loop with c calls in flight: executions per
#     second, and the latency when every call waits for the pool to start an interpreter.
# Writes bench/sandbox/results/latest.{md,json}.
#
#   bench/sandbox/run.sh                                         # ~2 minutes after the build
#   DURATION=2 WARMUP=0.5 PACED_REQUESTS=100 bench/sandbox/run.sh  # a quick try
set -euo pipefail
cd "$(dirname "$0")/../.."
duration=${DURATION:-5}
warmup=${WARMUP:-1}
concurrency=${CONCURRENCY:-"1 2 4"}
rate=${RATE:-20}
paced_requests=${PACED_REQUESTS:-300}
work=target/bench-sandbox
out=bench/sandbox/results
mkdir -p "$work" "$out"
rm -f "$work"/*.json

echo "=== build (release) ==="
cargo build --release -p switchboard -p switchboard-loadgen
bin=target/release/switchboard
loadgen=target/release/switchboard-loadgen

sandbox_port=18801
executor_port=18804
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

echo "=== start sandbox and code-executor ==="
"$bin" sandbox --listen "127.0.0.1:$sandbox_port" --packages-dir "$PWD/$work/site" \
  > "$work/sandbox.log" 2>&1 &
pids+=($!)
scripts/wait-ready.sh "http://127.0.0.1:$sandbox_port/ready" 60
"$bin" code-executor --listen "127.0.0.1:$executor_port" \
  --sandbox-url "http://127.0.0.1:$sandbox_port" > "$work/code-executor.log" 2>&1 &
pids+=($!)
scripts/wait-ready.sh "http://127.0.0.1:$executor_port/ready" 60
curl -fsS "http://127.0.0.1:$sandbox_port/ready" > "$work/ready.json"

hello='{"code":"print('"'"'hello'"'"')"}'
echo "=== paced, $rate/s: cold, sandbox REST, code-executor MCP ==="
paced=(-c 1 --rate "$rate" --requests "$paced_requests" --warmup "$warmup" --expect hello)
"$loadgen" process "${paced[@]}" --output "$work/paced-cold.json" \
  -- /usr/bin/python3 -c "print('hello')" > /dev/null
"$loadgen" http "${paced[@]}" --output "$work/paced-rest.json" \
  --url "http://127.0.0.1:$sandbox_port/execute" --body "$hello" > /dev/null
"$loadgen" mcp "${paced[@]}" --output "$work/paced-mcp.json" \
  --url "http://127.0.0.1:$executor_port/mcp" --tool execute_code --arguments "$hello" > /dev/null
# A code-interpreter session: the warm-up takes its first call; the rest run in the same
# interpreter. Then its memory, idle, as its cgroup measures it.
session=$(curl -fsS -X POST "http://127.0.0.1:$sandbox_port/sessions" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["session_id"])')
"$loadgen" http "${paced[@]}" --output "$work/paced-session.json" \
  --url "http://127.0.0.1:$sandbox_port/execute" \
  --body '{"code":"print('"'"'hello'"'"')","session_id":"'"$session"'"}' > /dev/null
curl -fsS "http://127.0.0.1:$sandbox_port/sessions/$session" > "$work/session.json"
curl -fsS -X DELETE "http://127.0.0.1:$sandbox_port/sessions/$session" > /dev/null

load=(--duration "$duration" --warmup "$warmup" --expect hello)
for c in $concurrency; do
  echo "=== c=$c: cold /usr/bin/python3 -c ==="
  "$loadgen" process -c "$c" "${load[@]}" --output "$work/cold-c$c.json" \
    -- /usr/bin/python3 -c "print('hello')" > /dev/null
  echo "=== c=$c: sandbox REST POST /execute ==="
  "$loadgen" http -c "$c" "${load[@]}" --output "$work/rest-c$c.json" \
    --url "http://127.0.0.1:$sandbox_port/execute" --body "$hello" > /dev/null
  echo "=== c=$c: code-executor MCP execute_code ==="
  "$loadgen" mcp -c "$c" "${load[@]}" --output "$work/mcp-c$c.json" \
    --url "http://127.0.0.1:$executor_port/mcp" --tool execute_code --arguments "$hello" > /dev/null
done
curl -fsS "http://127.0.0.1:$sandbox_port/metrics" > "$work/metrics.txt"

/usr/bin/python3 bench/sandbox/report.py "$work" "$out" \
  "bench/sandbox/run.sh (DURATION=$duration WARMUP=$warmup CONCURRENCY='$concurrency' RATE=$rate PACED_REQUESTS=$paced_requests)" "$rate"
cat "$out/latest.md"
