# shellcheck shell=bash
# Sourced by scripts that need the whole system running (validate-deploy.sh,
# prometheus-e2e.sh): start `switchboard up` on free ports and wait for its "is up" line.
#
#   source scripts/lib/switchboard-up.sh
#   start_switchboard_up LOGFILE       # sets UP_PID and UP_SERVICES ("name base_url" lines)
#   stop_switchboard_up
#
# Readiness is the event `switchboard up` itself reports: it prints one line per service once
# that service's /ready answers 200, then "switchboard is up". We read its stdout through a
# pipe and stop at that line; no polling, no sleeps.

SWITCHBOARD_BIN=${SWITCHBOARD_BIN:-target/debug/switchboard}

# Five consecutive free ports on 127.0.0.1 (the services keep their offsets from the base).
free_base_port() {
  /usr/bin/python3 - <<'PY'
import random, socket
for _ in range(200):
    base = random.randrange(20000, 60000)
    socks = []
    try:
        for off in range(5):
            s = socket.socket()
            s.bind(("127.0.0.1", base + off))
            socks.append(s)
    except OSError:
        continue
    finally:
        for s in socks:
            s.close()
    print(base)
    break
else:
    raise SystemExit("no five consecutive free ports")
PY
}

# A free port for one more server (Prometheus).
free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start_switchboard_up() {
  local log=$1 base fifo line
  base=$(free_base_port)
  fifo=$(mktemp -u)
  mkfifo "$fifo"
  SWITCHBOARD_LOG_FORMAT=json "$SWITCHBOARD_BIN" up --base-port "$base" >"$fifo" 2>"$log.stderr" &
  UP_PID=$!
  exec {UP_FD}<"$fifo"
  rm -f "$fifo"
  UP_SERVICES=()
  local up=0
  : >"$log"
  while IFS= read -r -t 120 line <&"$UP_FD"; do
    printf '%s\n' "$line" >>"$log"
    case $line in
      "switchboard is up"*) up=1; break ;;
      *" ready")
        # "<name>   http://127.0.0.1:PORT/<endpoint>  ready"
        read -r name url _ <<<"$line"
        UP_SERVICES+=("$name $(sed -E 's#^(https?://[^/]+).*#\1#' <<<"$url")")
        ;;
    esac
  done
  if [ "$up" -ne 1 ]; then
    echo "switchboard up did not come up (base port $base):" >&2
    cat "$log" "$log.stderr" >&2
    stop_switchboard_up
    return 1
  fi
  # Keep draining its stdout so it never blocks on a full pipe.
  cat <&"$UP_FD" >>"$log" &
  UP_DRAIN_PID=$!
  echo "switchboard up (pid $UP_PID) on base port $base: ${#UP_SERVICES[@]} services"
}

stop_switchboard_up() {
  if [ -n "${UP_PID:-}" ]; then
    kill -TERM "$UP_PID" 2>/dev/null || true
    wait "$UP_PID" 2>/dev/null || true
    UP_PID=
  fi
  if [ -n "${UP_DRAIN_PID:-}" ]; then
    wait "$UP_DRAIN_PID" 2>/dev/null || true
    UP_DRAIN_PID=
  fi
}

# MCP over Streamable HTTP with curl: initialize a session and print its id.
mcp_session() {
  local url=$1 sid
  sid=$(curl -fsS -D - -o /dev/null "$url" \
    -H 'content-type: application/json' -H 'accept: application/json, text/event-stream' \
    -d '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"switchboard-scripts","version":"1"}}}' \
    | awk 'tolower($1) == "mcp-session-id:" { print $2 }' | tr -d '\r')
  [ -n "$sid" ] || { echo "no MCP session from $url" >&2; return 1; }
  curl -fsS -o /dev/null "$url" -H "mcp-session-id: $sid" -H 'mcp-protocol-version: 2025-11-25' \
    -H 'content-type: application/json' -H 'accept: application/json, text/event-stream' \
    -d '{"jsonrpc":"2.0","method":"notifications/initialized"}'
  printf '%s\n' "$sid"
}

# tools/call NAME with ARGUMENTS (a JSON object) in session SID; prints the JSON-RPC response.
mcp_call() {
  local url=$1 sid=$2 id=$3 name=$4 arguments=$5
  curl -fsS "$url" -H "mcp-session-id: $sid" -H 'mcp-protocol-version: 2025-11-25' \
    -H 'content-type: application/json' -H 'accept: application/json, text/event-stream' \
    -d "{\"jsonrpc\":\"2.0\",\"id\":$id,\"method\":\"tools/call\",\"params\":{\"name\":\"$name\",\"arguments\":$arguments}}" \
    | sed -n 's/^data: //p; /^{/p' | grep '"id":'"$id"
}

# Base URL of a service started by start_switchboard_up, or nothing.
service_url() {
  local entry
  for entry in "${UP_SERVICES[@]}"; do
    [ "${entry%% *}" = "$1" ] && { printf '%s\n' "${entry#* }"; return 0; }
  done
  return 1
}
