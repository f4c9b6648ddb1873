"""The five scenarios of issue 7 (the first, the gateway's hop, in gateway_hop.py). Each returns
a section dict and appends headline items.

Every number comes from a load run in this process's lifetime; a service that is missing or
failed makes its rows "not measured" with the reason.
"""

import json

from . import load, startup
from .context import TIME_ARGS, Context, _diff, _ratio, _why
from .gateway_hop import gateway_overhead

HELLO = json.dumps({"code": "print('hello')"})
COLD_PYTHON = ["/usr/bin/python3", "-c", "print('hello')"]


def fastmcp(ctx: Context) -> dict:
    section = {"id": 2, "title": "The same tool on the official Python MCP SDK (FastMCP + uvicorn)",
               "runs": [], "notes": [
                   "FastMCP from `mcp` 1.30.0 (pinned in bench/python/requirements.txt) in a venv "
                   "under target/, served by uvicorn with the SDK's defaults; the tool returns the "
                   "same structured output as ours. Our time-client rows are in scenario 1."]}
    for concurrency in (1, 32):
        direct = ctx.mcp("FastMCP direct", "fastmcp", "get_current_time", TIME_ARGS, concurrency,
                         ["fastmcp"], expect="datetime")
        via = ctx.mcp("FastMCP through our gateway", "gateway-fastmcp", "get_current_time", TIME_ARGS,
                      concurrency, ["gateway-fastmcp", "fastmcp"], expect="datetime")
        section["runs"] += [direct, via]
        ours = ctx.shared.get(f"time-direct-c{concurrency}", {"label": "time-client", "not_measured": "not measured"})
        ratio = _ratio(load.rps(ours), load.rps(direct))
        ctx.add(2, f"time-client ÷ FastMCP req/s, c={concurrency}", ratio, "×", "ratio",
                ">= 20×" if concurrency == 32 else "", None if ratio is None or concurrency != 32 else ratio >= 20,
                _why(ours, direct), digits=1)
        if concurrency == 32:
            ctx.add(2, "FastMCP CPU ÷ time-client CPU per call, c=32",
                    _ratio(load.cpu(direct, "fastmcp"), load.cpu(ours, "time-client")), "×", "ratio",
                    not_measured=_why(ours, direct), digits=1)
        p50_ratio = _ratio(load.p50(direct), load.p50(ours))
        ctx.add(2, f"FastMCP ÷ time-client p50, c={concurrency}", p50_ratio, "×", "ratio",
                not_measured=_why(ours, direct), digits=1)
        if concurrency == 1:
            # At c=32 the gateway's bounded, multiplexed session changes how FastMCP is loaded,
            # so a difference of p50s says nothing about the gateway's own cost there.
            added = _diff(load.p50(via), load.p50(direct))
            ctx.add(2, "gateway added p50 in front of FastMCP, c=1", added, "µs", "difference (same run)",
                    not_measured=_why(direct, via))
    _every_service_lists(ctx, section)
    return section


# The MCP services of ours, each with the tool list it answers (what --expect looks for).
LISTING = [("time-client", "get_current_time"), ("sandbox", "execute_code"),
           ("code-executor", "execute_code"), ("mcp-server", "get_current_time")]


def _every_service_lists(ctx: Context, section: dict) -> None:
    """Every MCP service of ours against FastMCP on the same request: `tools/list` on one client
    session shared by 32 workers. The sandbox's and code-executor's tools run Python, so a
    tools/call would measure the interpreter; tools/list measures the serving path itself.
    Raw JSON-RPC (loadgen --raw): decoding our 14 KB lists into rmcp's types cost the load
    generator ~160 µs per list on the same two cores, three times what the servers spent, so
    the typed client measured itself more than the servers (FastMCP's one-tool list is short)."""
    baseline = ctx.mcp("FastMCP tools/list, one session shared by 32 workers, raw", "fastmcp", None, None, 32,
                       ["fastmcp"], expect="get_current_time", shared_session=True, raw=True)
    section["runs"].append(baseline)
    for service, expect in LISTING:
        sample = [service] + (["sandbox"] if service == "code-executor" else [])
        ours = ctx.mcp(f"{service} tools/list, one session shared by 32 workers, raw", service, None, None, 32,
                       sample, expect=expect, shared_session=True, raw=True)
        section["runs"].append(ours)
        ratio = _ratio(load.rps(ours), load.rps(baseline))
        ctx.add(2, f"{service} ÷ FastMCP tools/list req/s, one shared session, c=32", ratio, "×", "ratio",
                ">= 20×", None if ratio is None else ratio >= 20, _why(ours, baseline), digits=1)


# Paced rate for latency with a warm pool: well below what the sandbox refills on 2 cores.
PACED = 20


def execute_code(ctx: Context) -> dict:
    section = {"id": 3, "title": "execute_code print('hello'): gateway → code-executor → sandbox vs a cold Python start",
               "runs": [], "notes": [
                   "Cold start: `/usr/bin/python3 -c \"print('hello')\"` spawned by the load generator "
                   "(fork/exec, wait, read stdout), unisolated — what a sandbox without a pre-started "
                   "pool pays at least, before any isolation.",
                   f"**Paced** rows send {PACED} executions/s, below what the sandbox's pool refills: each "
                   "call finds a pre-started interpreter, which is the latency a user sees. **Closed-loop** "
                   "rows send as fast as answers come: every execution then waits for a fresh interpreter "
                   "(each serves exactly one), so they measure the pool's refill capacity (executions/s), "
                   "not its latency. The sandbox's CPU includes its interpreters' (reaped children); CPU per "
                   "request is higher in paced rows, where every request wakes idle threads."]}
    paced_chain = ctx.mcp(f"execute_code through the gateway, paced {PACED}/s", "mcp-server", "execute_code",
                          HELLO, 1, ["mcp-server", "code-executor", "sandbox"], expect="hello", rate=PACED)
    paced_cold = load.run(ctx.settings, f"cold /usr/bin/python3 -c print('hello'), paced {PACED}/s", "process",
                          ["--", *COLD_PYTHON], 1, {}, ctx.memory, expect="hello", rate=PACED)
    # Where the time of one execution goes: the same call one hop and two hops shorter.
    section["runs"] += [
        paced_chain,
        paced_cold,
        ctx.mcp(f"execute_code direct to the code-executor, paced {PACED}/s", "code-executor", "execute_code",
                HELLO, 1, ["code-executor", "sandbox"], expect="hello", rate=PACED),
        ctx.http(f"sandbox REST direct (POST /execute), paced {PACED}/s", "sandbox", "/execute", HELLO, 1,
                 ["sandbox"], expect="hello", rate=PACED),
    ]
    chain_rows, cold_rows = {}, {}
    for concurrency in (1, 2, 4, 8):
        chain = ctx.mcp("execute_code through the gateway, closed loop", "mcp-server", "execute_code", HELLO,
                        concurrency, ["mcp-server", "code-executor", "sandbox"], expect="hello")
        cold = load.run(ctx.settings, "cold /usr/bin/python3 -c print('hello'), closed loop", "process",
                        ["--", *COLD_PYTHON], concurrency, {}, ctx.memory, expect="hello")
        section["runs"] += [chain, cold]
        chain_rows[concurrency], cold_rows[concurrency] = chain, cold
    value = load.p50(paced_chain)
    ctx.add(3, f"execute_code p50 through the chain, paced {PACED}/s", None if value is None else value / 1000,
            "ms", "absolute (noisy)", "< 5 ms", None if value is None else value < 5000, _why(paced_chain),
            digits=2)
    ctx.add(3, f"cold start p50 ÷ chain p50, paced {PACED}/s", _ratio(load.p50(paced_cold), value), "×", "ratio",
            not_measured=_why(paced_chain, paced_cold))
    for concurrency in (1, 8):
        ctx.add(3, f"chain ÷ cold executions/s, closed loop, c={concurrency}",
                _ratio(load.rps(chain_rows[concurrency]), load.rps(cold_rows[concurrency])), "×", "ratio",
                not_measured=_why(chain_rows[concurrency], cold_rows[concurrency]), digits=2)
    return section


def middleware(ctx: Context) -> dict:
    section = {"id": 4, "title": "A chat turn through the middleware with a scripted LLM that answers at once",
               "runs": [], "notes": [
                   "The scripted LLM is `switchboard-loadgen scripted-llm` (OpenAI-compatible, answers "
                   "instantly). Overhead without tools = p50(/chat) − p50(one LLM request direct). With a "
                   "tool call the turn is two LLM requests and one gateway tools/call, so overhead = "
                   "p50(/chat) − 2 × p50(LLM direct) − p50(gateway tools/call, scenario 1)."]}
    tools = [{"type": "function", "function": {"name": "get_current_time", "description": "time",
                                               "parameters": {"type": "object", "properties": {}}}}]
    llm_body = json.dumps({"model": "scripted", "messages": [{"role": "user", "content": "hi"}], "tools": tools})
    plain = json.dumps({"messages": [{"role": "user", "content": "hi"}]})
    with_tool = json.dumps({"messages": [{"role": "user", "content": "use a tool to tell the time"}]})
    llm = ctx.http("scripted LLM direct", "scripted-llm", "/v1/chat/completions", llm_body, 1, ["scripted-llm"],
                   expect="hello")
    # The gateway and the LLM are sampled in the no-tool run too: CPU they use there is work
    # the middleware asks of them per turn (a tool listing, say).
    turn = ctx.http("/chat, no tool call", "middleware", "/chat", plain, 1,
                    ["middleware", "scripted-llm", "mcp-server"], expect="hello")
    tool_turn = ctx.http("/chat, one tool call", "middleware", "/chat", with_tool, 1,
                         ["middleware", "scripted-llm", "mcp-server", "time-client"], expect='"is_error":false')
    section["runs"] += [llm, turn, tool_turn]
    for concurrency in (8,):
        section["runs"] += [
            ctx.http("/chat, no tool call", "middleware", "/chat", plain, concurrency,
                     ["middleware", "scripted-llm", "mcp-server"], expect="hello"),
            ctx.http("/chat, one tool call", "middleware", "/chat", with_tool, concurrency,
                     ["middleware", "scripted-llm", "mcp-server", "time-client"], expect='"is_error":false'),
        ]
    ctx.add(4, "middleware CPU per turn, no tool, c=1", load.cpu(turn, "middleware"), "µs",
            "absolute (CPU time)", not_measured=_why(turn), digits=0)
    ctx.add(4, "middleware overhead per turn, no tool", _diff(load.p50(turn), load.p50(llm)), "µs",
            "difference (same run)", not_measured=_why(llm, turn))
    gateway = ctx.shared.get("time-gateway-c1")
    if gateway is None or load.p50(gateway) is None:
        gateway = ctx.mcp("get_current_time through the gateway (for the formula)", "mcp-server", "get_current_time",
                          TIME_ARGS, 1, ["mcp-server", "time-client"], expect="datetime")
        section["runs"].append(gateway)
    llm_p50, gateway_p50 = load.p50(llm), load.p50(gateway)
    overhead = None
    if None not in (load.p50(tool_turn), llm_p50, gateway_p50):
        overhead = load.p50(tool_turn) - 2 * llm_p50 - gateway_p50
    ctx.add(4, "middleware overhead per turn, one tool call", overhead, "µs", "difference (same run)",
            not_measured=_why(llm, tool_turn, gateway))
    return section


def resources(ctx: Context) -> dict:
    section = {"id": 5, "title": "Memory and start-up", "runs": [], "notes": [
        "Idle RSS is read 0.5 s after each service (a separate process) became ready, before any "
        "load; the peak is sampled every 50 ms during the load runs that went through it. The "
        "sandbox's pre-started interpreters are separate processes, not in its own row; the row "
        "\"sandbox with its pre-started interpreters\" adds them (an upper bound: pages they share "
        "are counted once per process)."]}
    for name in ("time-client", "mcp-server", "sandbox", "code-executor", "middleware", "fastmcp"):
        if ctx.services.missing(name) is None:
            ctx.services.get(name)
    ours = startup.measure_up(ctx.memory)
    baseline = startup.measure_fastmcp()
    section["extra"] = startup.table(ours, baseline)
    up_ms = ours.get("median_ms")
    ctx.add(5, "`switchboard up` until every /ready is 200", up_ms, "ms", "absolute (noisy)", "< 1000 ms",
            None if up_ms is None else up_ms < 1000, ours.get("not_measured"), digits=0)
    for name, entry in ctx.memory.items():
        if entry.get("ours") and entry.get("idle_kib") is not None:
            mib = entry["idle_kib"] / 1024
            ctx.add(5, f"{name} idle RSS", mib, "MiB", "absolute", "< 30 MiB", mib < 30)
    ctx.add(5, "FastMCP start ÷ `switchboard up` start", _ratio(baseline.get("median_ms"), up_ms), "×", "ratio",
            not_measured=ours.get("not_measured") or baseline.get("not_measured"))
    return section


ALL = [gateway_overhead, fastmcp, execute_code, middleware, resources]
