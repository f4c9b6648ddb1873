#!/usr/bin/python3
"""Writes the Grafana dashboard deploy/compose/grafana/dashboards/switchboard.json.

    scripts/grafana-dashboard.py > deploy/compose/grafana/dashboards/switchboard.json

Why generated: twenty panels share one data source, one layout grid and a handful of query
shapes; written out by hand the JSON is 900 lines where a typo hides easily. CI checks the
committed JSON is this script's output, that every query is valid PromQL against a real
Prometheus and that the metric names exist (scripts/validate-deploy.sh, prometheus-e2e.sh).
"""

import json
DS = {"type": "prometheus", "uid": "prometheus"}
panels = []
y = 0
pid = 0
def row(title):
    global y, pid
    pid += 1
    panels.append({"type": "row", "title": title, "id": pid, "collapsed": False,
                   "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []})
    y += 1
def panel(title, desc, targets, kind="timeseries", unit="short", x=0, w=12, h=8, extra=None):
    global pid
    pid += 1
    p = {"type": kind, "title": title, "description": desc, "id": pid, "datasource": DS,
         "gridPos": {"h": h, "w": w, "x": x, "y": y},
         "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
         "options": {},
         "targets": [{"refId": chr(65 + i), "datasource": DS, "expr": e, "legendFormat": l}
                     for i, (e, l) in enumerate(targets)]}
    if kind == "timeseries":
        p["options"] = {"legend": {"displayMode": "table", "placement": "bottom", "calcs": ["mean", "max"]},
                        "tooltip": {"mode": "multi", "sort": "desc"}}
    if extra:
        for k, v in extra.items():
            p[k] = v
    panels.append(p)
def next_row(h=8):
    global y
    y += h

R = "$__rate_interval"
row("Overview")
panel("Services up", "1 when Prometheus can scrape the service (`up`).",
      [('up{job=~"mcp-server|sandbox|middleware|time-client|code-executor"}', "{{job}}")],
      kind="stat", x=0, w=8, h=5,
      extra={"options": {"colorMode": "background", "graphMode": "none", "textMode": "value_and_name",
                         "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}},
             "fieldConfig": {"defaults": {"unit": "short", "mappings": [
                 {"type": "value", "options": {"0": {"text": "down", "color": "red"}, "1": {"text": "up", "color": "green"}}}],
                 "thresholds": {"mode": "absolute", "steps": [{"color": "red", "value": None}, {"color": "green", "value": 1}]}},
                 "overrides": []}})
panel("Upstream health (gateway)", "`mcp_upstream_up`: 1 when the gateway has a working session with the upstream; its tools are listed only then.",
      [('mcp_upstream_up{service="mcp-server"}', "{{upstream}}")],
      kind="stat", x=8, w=8, h=5,
      extra={"options": {"colorMode": "background", "graphMode": "none", "textMode": "value_and_name",
                         "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}},
             "fieldConfig": {"defaults": {"unit": "short", "mappings": [
                 {"type": "value", "options": {"0": {"text": "down", "color": "red"}, "1": {"text": "up", "color": "green"}}}],
                 "thresholds": {"mode": "absolute", "steps": [{"color": "red", "value": None}, {"color": "green", "value": 1}]}},
                 "overrides": []}})
panel("Circuit breakers (gateway)", "`mcp_upstream_circuit_state`: 0 closed, 1 half-open (probing), 2 open (rejecting calls).",
      [('mcp_upstream_circuit_state{service="mcp-server"}', "{{upstream}}")],
      kind="stat", x=16, w=8, h=5,
      extra={"options": {"colorMode": "background", "graphMode": "none", "textMode": "value_and_name",
                         "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}},
             "fieldConfig": {"defaults": {"unit": "short", "mappings": [
                 {"type": "value", "options": {"0": {"text": "closed", "color": "green"}, "1": {"text": "half-open", "color": "orange"}, "2": {"text": "open", "color": "red"}}}],
                 "thresholds": {"mode": "absolute", "steps": [{"color": "green", "value": None}, {"color": "orange", "value": 1}, {"color": "red", "value": 2}]}},
                 "overrides": []}})
next_row(5)

row("Tool calls")
panel("Tool calls per second, by tool (gateway)", "Every tools/call routed by the gateway.",
      [(f'sum by (tool) (rate(mcp_tool_calls_total{{service="mcp-server"}}[{R}]))', "{{tool}}")],
      unit="reqps", x=0)
panel("Tool calls per second, by outcome (gateway)", "ok; tool_error (the tool answered isError, e.g. a program that raised); unavailable, timeout, transport_error, upstream_error, cancelled (the system failed).",
      [(f'sum by (outcome) (rate(mcp_tool_calls_total{{service="mcp-server"}}[{R}]))', "{{outcome}}")],
      unit="reqps", x=12)
next_row()
panel("Tool call latency p50 / p99, by upstream (gateway)", "From receiving a tools/call to having its answer.",
      [(f'histogram_quantile(0.5, sum by (le, upstream) (rate(mcp_tool_call_duration_seconds_bucket{{service="mcp-server"}}[{R}])))', "p50 {{upstream}}"),
       (f'histogram_quantile(0.99, sum by (le, upstream) (rate(mcp_tool_call_duration_seconds_bucket{{service="mcp-server"}}[{R}])))', "p99 {{upstream}}")],
      unit="s", x=0)
panel("Tool calls per second at the tool services", "Calls each tool service handled itself, by tool and outcome.",
      [(f'sum by (service, tool, outcome) (rate(mcp_tool_calls_total{{service!="mcp-server"}}[{R}]))', "{{service}} {{tool}} {{outcome}}")],
      unit="reqps", x=12)
next_row()

row("Errors")
panel("Tool call failure ratio, by upstream (gateway)", "Share of calls that failed in the system (not tool errors). Alert: SwitchboardToolCallFailures above 5%.",
      [(f'sum by (upstream) (rate(mcp_tool_calls_total{{service="mcp-server", outcome!~"ok|tool_error"}}[{R}])) / sum by (upstream) (rate(mcp_tool_calls_total{{service="mcp-server"}}[{R}]))', "{{upstream}}")],
      unit="percentunit", x=0)
panel("HTTP 5xx ratio, by service", "Share of HTTP responses with a 5xx status. Alert: SwitchboardHttpServerErrors above 5%.",
      [(f'sum by (service) (rate(http_requests_total{{status=~"5.."}}[{R}])) / sum by (service) (rate(http_requests_total[{R}]))', "{{service}}")],
      unit="percentunit", x=12)
next_row()
panel("HTTP requests per second, by service and status", "All routes, including /mcp, /ready and /metrics.",
      [(f'sum by (service, status) (rate(http_requests_total[{R}]))', "{{service}} {{status}}")],
      unit="reqps", x=0)
panel("HTTP latency p99, by service and route", "Time to the response head.",
      [(f'histogram_quantile(0.99, sum by (le, service, route) (rate(http_request_duration_seconds_bucket[{R}])))', "{{service}} {{route}}")],
      unit="s", x=12)
next_row()

row("Sandbox")
panel("Executions per second, by outcome", "Programs run by the sandbox: ok, error (non-zero exit), timeout, memory, output_limit, signal, rejected (bad request), unavailable.",
      [(f'sum by (outcome) (rate(sandbox_executions_total[{R}]))', "{{outcome}}")],
      unit="ops", x=0, w=8)
panel("Execution duration p50 / p99", "Wall time of one execution, interpreter hand-over to result.",
      [(f'histogram_quantile(0.5, sum by (le) (rate(sandbox_execution_duration_seconds_bucket[{R}])))', "p50"),
       (f'histogram_quantile(0.99, sum by (le) (rate(sandbox_execution_duration_seconds_bucket[{R}])))', "p99")],
      unit="s", x=8, w=8)
panel("Interpreter pool", "Pre-started isolated interpreters waiting for a program, against the pool size. 0 idle means every call waits for a start. Alert: SwitchboardSandboxPoolEmpty.",
      [('sum(sandbox_pool_idle_workers)', "idle"), ('sum(sandbox_pool_size)', "pool size")],
      unit="short", x=16, w=8)
next_row()
panel("Interpreter starts and failures", "Interpreters started, failed to start, and idle ones that died and were replaced.",
      [(f'sum(rate(sandbox_worker_starts_total[{R}]))', "started"),
       (f'sum(rate(sandbox_worker_start_failures_total[{R}]))', "start failures"),
       (f'sum(rate(sandbox_idle_worker_deaths_total[{R}]))', "idle deaths")],
      unit="ops", x=0, w=12)
panel("Package install decisions", "installed, rejected, pending_approval, failed, approved, approval_refused.",
      [(f'sum by (decision) (increase(sandbox_package_decisions_total[$__range]))', "{{decision}}")],
      kind="bargauge", unit="short", x=12, w=12)
next_row()

row("Chat")
panel("Chats per second, by source and outcome", "Answered by an LLM or by the offline planner.",
      [(f'sum by (endpoint, source, outcome) (rate(chat_requests_total[{R}]))', "{{endpoint}} {{source}} {{outcome}}")],
      unit="reqps", x=0, w=8)
panel("LLM requests, by outcome", "Requests from the middleware to the LLM API.",
      [(f'sum by (provider, outcome) (rate(llm_requests_total[{R}]))', "{{provider}} {{outcome}}")],
      unit="reqps", x=8, w=8)
panel("LLM latency p50 / p99", "One LLM request, streamed or not.",
      [(f'histogram_quantile(0.5, sum by (le) (rate(llm_request_duration_seconds_bucket[{R}])))', "p50"),
       (f'histogram_quantile(0.99, sum by (le) (rate(llm_request_duration_seconds_bucket[{R}])))', "p99")],
      unit="s", x=16, w=8)
next_row()

dash = {
    "uid": "switchboard-overview",
    "title": "Switchboard",
    "description": "Tool calls, latencies, errors, upstream health, the sandbox and the chat. Metrics: see README, /metrics of each service.",
    "tags": ["switchboard", "mcp"],
    "timezone": "browser",
    "editable": False,
    "graphTooltip": 1,
    "refresh": "10s",
    "schemaVersion": 39,
    "version": 1,
    "time": {"from": "now-1h", "to": "now"},
    "templating": {"list": []},
    "annotations": {"list": []},
    "links": [],
    "panels": panels,
}
print(json.dumps(dash, indent=2))
