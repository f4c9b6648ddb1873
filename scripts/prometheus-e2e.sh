#!/usr/bin/env bash
# End to end: a real Prometheus server (Debian's package) scrapes `switchboard up`; tool calls
# through the gateway and straight to the time-client must show up as rising counters in
# Prometheus' HTTP API, the alert rules must evaluate without errors on the real series, and
# every dashboard query must be valid PromQL (the core panels non-empty).
#
#   cargo build -p switchboard && scripts/prometheus-e2e.sh
#
# Synchronisation: `switchboard up` reports readiness on stdout (scripts/lib). Prometheus scrapes
# on its own schedule (every second here), so the script polls its API until a deadline; that
# is the only way to learn that a scrape happened.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out=$root/target/prometheus-e2e
rm -rf "$out"
mkdir -p "$out/tsdb"
command -v prometheus >/dev/null || { echo "prometheus-e2e: prometheus is missing (apt-get install prometheus)" >&2; exit 1; }

# shellcheck source=scripts/lib/switchboard-up.sh
source scripts/lib/switchboard-up.sh
prom_pid=
cleanup() {
  [ -n "$prom_pid" ] && { kill "$prom_pid" 2>/dev/null || true; wait "$prom_pid" 2>/dev/null || true; }
  stop_switchboard_up
}
trap cleanup EXIT

start_switchboard_up "$out/up.log"
gateway=$(service_url mcp-server) || { echo "prometheus-e2e: switchboard up has no mcp-server" >&2; exit 1; }
time_client=$(service_url time-client) || { echo "prometheus-e2e: switchboard up has no time-client" >&2; exit 1; }

# --- Prometheus: one job per service (as in deploy/compose), the real alert rules -----------
{
  echo "global:"
  echo "  scrape_interval: 1s"
  echo "  scrape_timeout: 900ms"
  echo "  evaluation_interval: 1s"
  echo "rule_files:"
  echo "  - $root/deploy/compose/prometheus/alerts.yml"
  echo "scrape_configs:"
  for entry in "${UP_SERVICES[@]}"; do
    read -r name base <<<"$entry"
    echo "  - job_name: $name"
    echo "    static_configs:"
    echo "      - targets: [\"${base#http://}\"]"
  done
} >"$out/prometheus.yml"
promtool check config "$out/prometheus.yml" >/dev/null
prom_port=$(free_port)
prom="http://127.0.0.1:$prom_port"
prometheus --config.file="$out/prometheus.yml" --storage.tsdb.path="$out/tsdb" \
  --web.listen-address="127.0.0.1:$prom_port" >"$out/prometheus.log" 2>&1 &
prom_pid=$!

# Query Prometheus; prints the JSON answer.
query() { curl -fsS --get "$prom/api/v1/query" --data-urlencode "query=$1"; }
# The single value of an instant query, 0 when it has no series yet.
value() {
  query "$1" | /usr/bin/python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(float(r[0]["value"][1]) if r else 0.0)'
}
# Poll until the shell condition "$@" holds or SECONDS pass.
eventually() {
  local seconds=$1 what=$2; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@"; do
    if [ $SECONDS -ge $deadline ]; then
      echo "prometheus-e2e: timed out after ${seconds}s waiting for: $what" >&2
      return 1
    fi
    sleep 0.2
  done
  echo "ok: $what"
}

prometheus_ready() { curl -fsS -o /dev/null "$prom/-/ready" 2>/dev/null; }
eventually 60 "Prometheus ready" prometheus_ready

all_targets_up() {
  curl -fsS "$prom/api/v1/targets" | /usr/bin/python3 -c '
import json, sys
targets = json.load(sys.stdin)["data"]["activeTargets"]
want = int(sys.argv[1])
up = [t for t in targets if t["health"] == "up"]
sys.exit(0 if len(targets) == want and len(up) == want else 1)' "${#UP_SERVICES[@]}"
}
eventually 30 "all ${#UP_SERVICES[@]} services scraped and up" all_targets_up
curl -fsS "$prom/api/v1/targets" >"$out/targets.json"

# --- Tool calls make the counters rise -------------------------------------------------------
gw_ok='sum(mcp_tool_calls_total{job="mcp-server", service="mcp-server", tool="get_current_time", outcome="ok"})'
gw_err='sum(mcp_tool_calls_total{job="mcp-server", service="mcp-server", tool="get_current_time", outcome="tool_error"})'
tc_ok='sum(mcp_tool_calls_total{job="time-client", service="time-client", tool="get_current_time", outcome="ok"})'
http_mcp='sum(http_requests_total{job="mcp-server", route="/mcp"})'
before_gw_ok=$(value "$gw_ok")
before_gw_err=$(value "$gw_err")
before_tc_ok=$(value "$tc_ok")
before_http=$(value "$http_mcp")
echo "before: gateway ok=$before_gw_ok tool_error=$before_gw_err, time-client ok=$before_tc_ok, gateway /mcp requests=$before_http"

calls=7
sid=$(mcp_session "$gateway/mcp")
for i in $(seq 1 $calls); do
  mcp_call "$gateway/mcp" "$sid" "$i" get_current_time '{"timezone":"Asia/Tokyo"}' | grep -q '"isError":false'
done
mcp_call "$gateway/mcp" "$sid" 100 get_current_time '{"timezone":"Nowhere/Atlantis"}' | grep -q '"isError":true'
direct=3
sid=$(mcp_session "$time_client/mcp")
for i in $(seq 1 $direct); do
  mcp_call "$time_client/mcp" "$sid" "$i" get_current_time '{}' | grep -q '"isError":false'
done
echo "made $calls + 1 failing calls through the gateway, $direct straight to the time-client"

at_least() { /usr/bin/python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) >= float(sys.argv[2]) else 1)' "$(value "$1")" "$2"; }
plus() { /usr/bin/python3 -c 'import sys; print(float(sys.argv[1]) + float(sys.argv[2]))' "$1" "$2"; }
eventually 30 "gateway ok calls rose by $calls" at_least "$gw_ok" "$(plus "$before_gw_ok" $calls)"
eventually 30 "gateway tool_error calls rose by 1" at_least "$gw_err" "$(plus "$before_gw_err" 1)"
# Every gateway call reached the time-client (the failing one too, as a tool error there).
eventually 30 "time-client ok calls rose by $((calls + direct))" at_least "$tc_ok" "$(plus "$before_tc_ok" $((calls + direct)))"
eventually 30 "gateway /mcp HTTP requests rose" at_least "$http_mcp" "$(plus "$before_http" $((calls + 3)))"
eventually 30 "the gateway's latency histogram has the calls" \
  at_least 'sum(mcp_tool_call_duration_seconds_count{job="mcp-server", tool="get_current_time"})' "$((calls + 1))"
eventually 30 "upstream time-client is up in Prometheus" at_least 'mcp_upstream_up{upstream="time-client"}' 1
echo "after: gateway ok=$(value "$gw_ok") tool_error=$(value "$gw_err"), time-client ok=$(value "$tc_ok")"

# --- The alert rules evaluate cleanly on the real series --------------------------------------
rules_evaluated() {
  curl -fsS "$prom/api/v1/rules" | /usr/bin/python3 -c '
import json, sys
rules = [r for g in json.load(sys.stdin)["data"]["groups"] for r in g["rules"]]
bad = [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"]
if bad:
    print("rules with errors:", bad, file=sys.stderr)
    sys.exit(2)
sys.exit(0 if rules and all(not r["lastEvaluation"].startswith("0001") for r in rules) else 1)'
}
eventually 30 "every alert rule evaluated without error" rules_evaluated

# --- Every dashboard query is valid PromQL; the core panels have data ------------------------
/usr/bin/python3 - "$prom" deploy/compose/grafana/dashboards/switchboard.json <<'PY'
import json, sys, time, urllib.parse, urllib.request
prom, path = sys.argv[1], sys.argv[2]
# Panels whose series the running gateway and time-client must have produced by now. A rate()
# needs two scrapes of a series; Prometheus scrapes every second, so poll up to a deadline.
core = {
    "Services up",
    "Upstream health (gateway)",
    "Circuit breakers (gateway)",
    "Tool calls per second, by tool (gateway)",
    "Tool calls per second, by outcome (gateway)",
    "Tool call latency p50 / p99, by upstream (gateway)",
    "Tool calls per second at the tool services",
    "HTTP requests per second, by service and status",
}
queries = [(panel["title"], target["expr"].replace("$__rate_interval", "30s").replace("$__range", "5m"))
           for panel in json.load(open(path))["panels"] for target in panel.get("targets", [])]
deadline = time.monotonic() + 30
while True:
    invalid, empty_core, filled = [], [], 0
    for title, expr in queries:
        url = f"{prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        try:
            answer = json.load(urllib.request.urlopen(url, timeout=10))
        except Exception as error:  # an HTTP 400 is a PromQL error
            invalid.append(f"{title}: {expr}: {error}")
            continue
        if answer["data"]["result"]:
            filled += 1
        elif title in core:
            empty_core.append(f"{title}: no data for {expr}")
    if invalid or not empty_core or time.monotonic() > deadline:
        break
    time.sleep(0.5)
if invalid or empty_core:
    print("dashboard queries failed:", *invalid, *empty_core, sep="\n  ", file=sys.stderr)
    sys.exit(1)
print(f"ok: all {len(queries)} dashboard queries are valid PromQL; {filled} have data (all core panels)")
PY

echo; echo "prometheus-e2e: passed"
