"""Scenario 1: the gateway's hop. tools/call get_current_time direct to the time-client and
through the gateway (plain, with authentication, with one shared upstream session), on both
protocol revisions, with one client session per worker and one for all, against the floor of
one extra loopback HTTP round trip measured in the same run."""

import json

from . import load, services
from .context import TIME_ARGS, Context, _diff, _ratio, _why


def gateway_overhead(ctx: Context) -> dict:
    section = {"id": 1, "title": "tools/call get_current_time: direct to the time-client vs through the gateway",
               "runs": [], "notes": [
                   "Gateway added p50 = p50(through gateway) − p50(direct), from adjacent runs; the "
                   "throughput ratio is gateway ÷ direct. Rows without a protocol in their label are "
                   "MCP 2025-11-25 sessions, one client session per worker.",
                   "Loopback floor: `switchboard-loadgen fixed` answers every POST with one fixed JSON "
                   "body the size of a get_current_time result; `switchboard-loadgen forward` passes "
                   "each request on to it (axum in, reqwest out, nothing parsed) and the answer back. "
                   "The floor = p50(through the hop) − p50(fixed direct): what one extra loopback HTTP "
                   "round trip costs on this machine in this run. The gateway's added p50 is given as a "
                   "multiple of it.",
                   "Protocol 2026-07-28: the load generator asks `server/discover` once per worker, then "
                   "sends stateless requests (no session id, the lifecycle in each request's `_meta`). "
                   "Rows marked raw JSON-RPC repeat both revisions with `loadgen mcp --raw` (a session "
                   "opened by hand, or `server/discover` and each request with its lifecycle `_meta` "
                   "and Mcp-Method/Mcp-Name headers; only each answer's envelope read): rmcp's client "
                   "spends more of the shared cores on a 2026-07-28 call than on a session call, the "
                   "raw client the same on both, so the raw ratio is the servers' own.",
                   "One client session shared by 32 workers: the load generator opens one MCP session "
                   "and every worker sends on it (rmcp multiplexes the requests over up to 32 HTTP "
                   "connections), the way the gateway talks to an upstream.",
                   "API key + policy: a second gateway, identical but for --api-keys and --policy, "
                   "called with the key; JWT + policy: a third, with --jwks-url (ES256, the key set "
                   "fetched once and cached) instead of keys, called with a JWT. Their added p50 and "
                   "gateway CPU per call are differences from the plain gateway's run just before.",
                   "One shared upstream session: a fourth gateway, identical but for its time-client "
                   "upstream configured shared_session = true, so every client's calls go over one "
                   "upstream session as before clients got their own. Per-client upstream sessions "
                   "added p50 and gateway CPU per call = the plain gateway's run minus this one."]}
    for concurrency in (1, 32):
        floor_direct, floor_hop = loopback_floor(ctx, section, concurrency)
        direct = ctx.mcp("time-client direct", "time-client", "get_current_time", TIME_ARGS, concurrency,
                         ["time-client"], expect="datetime")
        via = ctx.mcp("time-client through gateway", "mcp-server", "get_current_time", TIME_ARGS, concurrency,
                      ["mcp-server", "time-client"], expect="datetime")
        # The same gateway with one upstream session for every client (the time-client keeps
        # sessions, so the plain gateway gives each client one of its own).
        ctx.services.get("gateway-shared")
        shared = ctx.mcp("time-client through gateway, one shared upstream session", "gateway-shared",
                         "get_current_time", TIME_ARGS, concurrency, ["gateway-shared", "time-client"],
                         expect="datetime")
        section["runs"] += [direct, via, shared]
        ctx.shared[f"time-direct-c{concurrency}"] = direct
        ctx.shared[f"time-gateway-c{concurrency}"] = via
        ctx.add(1, f"per-client upstream sessions added p50, c={concurrency}",
                _diff(load.p50(via), load.p50(shared)), "µs", "difference (same run)",
                not_measured=_why(shared, via))
        ctx.add(1, f"per-client upstream sessions added gateway CPU per call, c={concurrency}",
                _diff(load.cpu(via, "mcp-server"), load.cpu(shared, "gateway-shared")), "µs",
                "difference (same run)", not_measured=_why(shared, via), digits=0)
        # The same gateway with an API key checked per request and a policy per call.
        ctx.services.get("gateway-auth")
        authed = ctx.mcp("time-client through gateway, API key + policy", "gateway-auth", "get_current_time",
                         TIME_ARGS, concurrency, ["gateway-auth", "time-client"], expect="datetime",
                         bearer=services.AUTH["key"])
        section["runs"].append(authed)
        ctx.add(1, f"API key + policy added p50, c={concurrency}", _diff(load.p50(authed), load.p50(via)), "µs",
                "difference (same run)", not_measured=_why(via, authed))
        # And with a bearer JWT (ES256) checked against a cached JWKS.
        ctx.services.get("gateway-jwt")
        jwt_run = ctx.mcp("time-client through gateway, JWT + policy", "gateway-jwt", "get_current_time",
                          TIME_ARGS, concurrency, ["gateway-jwt", "time-client"], expect="datetime",
                          bearer=services.AUTH["jwt"])
        section["runs"].append(jwt_run)
        ctx.add(1, f"JWT + policy added p50, c={concurrency}", _diff(load.p50(jwt_run), load.p50(via)), "µs",
                "difference (same run)", not_measured=_why(via, jwt_run))
        if concurrency == 1:
            for label, run, name in (("API key", authed, "gateway-auth"), ("JWT", jwt_run, "gateway-jwt")):
                added_cpu = _diff(load.cpu(run, name), load.cpu(via, "mcp-server"))
                ctx.add(1, f"{label} + policy added gateway CPU per call, c=1", added_cpu, "µs",
                        "difference (same run)", "< 20 µs", None if added_cpu is None else added_cpu < 20,
                        _why(via, run), digits=0)
        modern_direct, modern_via = protocol_2026(ctx, section, concurrency, direct, via)
        added = _diff(load.p50(via), load.p50(direct))
        ctx.add(1, f"gateway added p50, c={concurrency}", added, "µs", "difference (same run)",
                "< 100 µs" if concurrency == 1 else "", None if added is None else
                (added < 100 if concurrency == 1 else None), _why(direct, via))
        ratio = _ratio(load.rps(via), load.rps(direct))
        ctx.add(1, f"gateway ÷ direct req/s, c={concurrency}", ratio, "×", "ratio",
                ">= 0.8×" if concurrency == 32 else "",
                None if ratio is None or concurrency != 32 else ratio >= 0.8, _why(direct, via), digits=2)
        # The hop's own work per call against a hop that does nothing but pass bytes on: CPU
        # time, which moves much less than latency on a shared machine.
        ctx.add(1, f"gateway CPU ÷ loopback hop CPU per call, c={concurrency}",
                _ratio(load.cpu(via, "mcp-server"), load.cpu(floor_hop, "forward-hop")), "×",
                "ratio (same run, CPU time)", digits=2, not_measured=_why(floor_hop, via))
        if concurrency == 1:
            floor = _diff(load.p50(floor_hop), load.p50(floor_direct))
            ctx.add(1, "loopback floor: one extra HTTP round trip added p50, c=1", floor, "µs",
                    "difference (same run)", not_measured=_why(floor_direct, floor_hop))
            multiple = _ratio(added, floor) if floor is not None and floor > 0 else None
            ctx.add(1, "gateway added p50 ÷ loopback floor, c=1", multiple, "×", "ratio (same run)", "<= 2×",
                    None if multiple is None else multiple <= 2, _why(floor_direct, floor_hop, direct, via), digits=2)
            modern_added = _diff(load.p50(modern_via), load.p50(modern_direct))
            ctx.add(1, "gateway added p50, protocol 2026-07-28, c=1", modern_added, "µs", "difference (same run)",
                    not_measured=_why(modern_direct, modern_via))
            gateway_cpu = load.cpu(via, "mcp-server")
            ctx.add(1, "gateway CPU per call, c=1", gateway_cpu, "µs", "absolute (CPU time, steadier than latency)",
                    not_measured=_why(direct, via), digits=0)
            ctx.add(1, "gateway CPU ÷ time-client CPU per call, c=1",
                    _ratio(gateway_cpu, load.cpu(direct, "time-client")), "×", "ratio", digits=2,
                    not_measured=_why(direct, via))
            # The gateway's REST route: the same upstream leg without an MCP session in front,
            # which shows how the added time splits between the two sides of the gateway.
            section["runs"].append(ctx.http(
                "time-client through gateway REST (POST /api/tools/get_current_time)", "mcp-server",
                "/api/tools/get_current_time", TIME_ARGS, 1, ["mcp-server", "time-client"], expect="datetime"))
        else:
            ctx.add(1, "loopback floor: through one forwarding hop ÷ direct req/s, c=32",
                    _ratio(load.rps(floor_hop), load.rps(floor_direct)), "×", "ratio (same run)", digits=2,
                    not_measured=_why(floor_direct, floor_hop))
            one_session(ctx, section, concurrency)
    return section


# A tools/call request as a client POSTs it, for the loopback floor's runs (the fixed server
# does not read it; it makes the request as large as the real one).
TIME_CALL = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                        "params": {"name": "get_current_time", "arguments": {"timezone": "UTC"}}})


def loopback_floor(ctx: Context, section: dict, concurrency: int) -> tuple[dict, dict]:
    """The fixed JSON server direct and through one forwarding hop (see the section's notes)."""
    direct = ctx.http("loopback floor: fixed JSON answer, direct", "fixed-http", "/mcp", TIME_CALL, concurrency,
                      ["fixed-http"], expect="datetime")
    hop = ctx.http("loopback floor: fixed JSON answer through one forwarding hop", "forward-hop", "/mcp",
                   TIME_CALL, concurrency, ["forward-hop", "fixed-http"], expect="datetime")
    section["runs"] += [direct, hop]
    return direct, hop


def protocol_2026(ctx: Context, section: dict, concurrency: int, direct: dict, via: dict) -> tuple[dict, dict]:
    """Stateless 2026-07-28 requests direct and through the gateway, against the session runs
    just before: through the gateway they should cost the same (within 5 %). Then both
    revisions again as raw JSON-RPC (loadgen --raw): rmcp's client spends more on a 2026-07-28
    call than on a session call, and on two shared cores that alone lowers the measured rate;
    the raw client costs the same for both, so its ratio is the servers' own."""
    modern = "2026-07-28"
    modern_direct = ctx.mcp(f"time-client direct, protocol {modern}", "time-client", "get_current_time", TIME_ARGS,
                            concurrency, ["time-client"], expect="datetime", protocol=modern)
    modern_via = ctx.mcp(f"time-client through gateway, protocol {modern}", "mcp-server", "get_current_time",
                         TIME_ARGS, concurrency, ["mcp-server", "time-client"], expect="datetime", protocol=modern)
    section["runs"] += [modern_direct, modern_via]
    raw = {}
    for protocol in ("2025-11-25", modern):
        for where, service, sample in (("direct", "time-client", ["time-client"]),
                                       ("through gateway", "mcp-server", ["mcp-server", "time-client"])):
            raw[(protocol, where)] = ctx.mcp(f"time-client {where}, protocol {protocol}, raw JSON-RPC", service,
                                             "get_current_time", TIME_ARGS, concurrency, sample, expect="datetime",
                                             protocol=protocol, raw=True)
            section["runs"].append(raw[(protocol, where)])
    # p50 at c=1 (latency of one call), req/s at c=32 (what the path sustains). The target is
    # that 2026-07-28 is no slower (by more than 5 %): faster is not a miss.
    measure, of = (load.p50, "p50") if concurrency == 1 else (load.rps, "req/s")

    def no_slower(ratio):
        if ratio is None:
            return None
        return ratio <= 1.05 if of == "p50" else ratio >= 0.95

    for where, new, old, target in (("through the gateway", modern_via, via, True),
                                    ("direct", modern_direct, direct, False),
                                    ("through the gateway, raw JSON-RPC", raw[(modern, "through gateway")],
                                     raw[("2025-11-25", "through gateway")], True),
                                    ("direct, raw JSON-RPC", raw[(modern, "direct")], raw[("2025-11-25", "direct")],
                                     False)):
        ratio = _ratio(measure(new), measure(old))
        ctx.add(1, f"{modern} ÷ 2025-11-25 session {of} {where}, c={concurrency}", ratio, "×", "ratio (same run)",
                "at most 5 % slower" if target else "", no_slower(ratio) if target else None, _why(old, new),
                digits=3)
    new, old = raw[(modern, "through gateway")], raw[("2025-11-25", "through gateway")]
    ctx.add(1, f"{modern} ÷ 2025-11-25 gateway CPU per call, raw JSON-RPC, c={concurrency}",
            _ratio(load.cpu(new, "mcp-server"), load.cpu(old, "mcp-server")), "×", "ratio (same run)",
            not_measured=_why(old, new), digits=3)
    return modern_direct, modern_via


def one_session(ctx: Context, section: dict, concurrency: int) -> None:
    """Every worker on one client session, direct and through the gateway."""
    label = f"one client session shared by {concurrency} workers"
    direct = ctx.mcp(f"time-client direct, {label}", "time-client", "get_current_time", TIME_ARGS, concurrency,
                     ["time-client"], expect="datetime", shared_session=True)
    via = ctx.mcp(f"time-client through gateway, {label}", "mcp-server", "get_current_time", TIME_ARGS,
                  concurrency, ["mcp-server", "time-client"], expect="datetime", shared_session=True)
    section["runs"] += [direct, via]
    ratio = _ratio(load.rps(via), load.rps(direct))
    ctx.add(1, f"gateway ÷ direct req/s, {label}, c={concurrency}", ratio, "×", "ratio", ">= 0.8×",
            None if ratio is None else ratio >= 0.8, _why(direct, via), digits=2)
    ctx.add(1, f"gateway added p50, {label}, c={concurrency}", _diff(load.p50(via), load.p50(direct)), "µs",
            "difference (same run)", not_measured=_why(direct, via))
