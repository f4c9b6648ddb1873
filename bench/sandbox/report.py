#!/usr/bin/python3
"""Turn the load generator's reports of bench/sandbox/run.sh into results/latest.{md,json}."""

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

work, out, command, RATE = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], float(sys.argv[4])

KINDS = [
    ("cold", "cold `/usr/bin/python3 -c` (unisolated, fork/exec/wait)"),
    ("rest", "sandbox REST `POST /execute`"),
    ("mcp", "code-executor MCP `execute_code`"),
    ("session", "sandbox REST `POST /execute` in one session (2nd and later calls)"),
]


def load(kind, c):
    path = work / f"{kind}-c{c}.json"
    return json.loads(path.read_text()) if path.exists() else None


levels = sorted({int(p.stem.split("-c")[1]) for p in work.glob("*-c*.json") if not p.stem.startswith("paced")})
paced = {k: json.loads((work / f"paced-{k}.json").read_text()) for k, _ in KINDS if (work / f"paced-{k}.json").exists()}
runs = {(k, c): load(k, c) for k, _ in KINDS for c in levels}


def ms(us):
    return f"{us / 1000:.2f}"


lines = [
    "# Sandbox benchmark: `print('hello')`",
    "",
    f"- date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
    f"- machine: {platform.machine()}, {os.cpu_count()} cores, Linux {platform.release()}",
    f"- commit: {subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True).stdout.strip()}",
    f"- command: `{command}`",
    f"- load average (1, 5, 15 min) at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
    "",
    "Every sandbox call runs the program in a fresh, fully isolated interpreter (new namespaces,",
    "pivot_root, seccomp, Landlock, cgroups) taken from the pre-started pool and destroyed after.",
    "The load generator keeps `c` requests in flight (closed loop) and shares the 2 cores with",
    "the services.",
    "",
    "## One call at a time, paced",
    "",
]
summary = []
if paced:
    rate = RATE
    lines += [
        f"One call every {1000 / rate:.0f} ms, one at a time: the pool keeps up, so this is the cost of one",
        "call with a fresh isolated interpreter (taken from the pool, program run, tree killed and reaped),",
        "beside a cold unisolated `python3 -c` start at the same pace.",
        "",
        "| path | requests | p50 ms | p90 ms | p99 ms | p50 vs cold | p99 vs cold |",
        "|---|---|---|---|---|---|---|",
    ]
    cold = paced.get("cold")
    for kind, label in KINDS:
        r = paced.get(kind)
        if r is None:
            continue
        lat = r["latency_us"]
        r50 = cold and lat["p50"] / cold["latency_us"]["p50"]
        r99 = cold and lat["p99"] / cold["latency_us"]["p99"]
        lines.append(f"| {label} | {r['requests']} ({r['errors']} errors) | {ms(lat['p50'])} | {ms(lat['p90'])} | {ms(lat['p99'])} | "
                     + (f"{r50:.2f}× | {r99:.2f}× |" if cold and kind != "cold" else "1 | 1 |"))
        summary.append({"run": "paced", "rate_per_second": rate, "path": kind, "requests": r["requests"], "errors": r["errors"],
                        "p50_ms": lat["p50"] / 1000, "p90_ms": lat["p90"] / 1000, "p99_ms": lat["p99"] / 1000,
                        "p50_ratio_to_cold": r50 if kind != "cold" else 1.0})
lines += [
    "",
    "## Saturated: closed loop, c calls in flight",
    "",
    "Every call is answered as fast as possible and the next sent at once, so the pool is always",
    "empty: executions per second is the rate at which isolated interpreters can be started, and the",
    "latency includes waiting for one.",
    "",
    "| c | path | requests | p50 ms | p90 ms | p99 ms | exec/s | p50 vs cold | exec/s vs cold |",
    "|---|---|---|---|---|---|---|---|---|",
]
for c in levels:
    cold = runs[("cold", c)]
    for kind, label in KINDS:
        r = runs[(kind, c)]
        if r is None:
            lines.append(f"| {c} | {label} | not measured | | | | | | |")
            continue
        lat = r["latency_us"]
        ratio_p50 = cold and lat["p50"] / cold["latency_us"]["p50"]
        ratio_tp = cold and r["throughput_per_second"] / cold["throughput_per_second"]
        lines.append(
            f"| {c} | {label} | {r['requests']} ({r['errors']} errors) | {ms(lat['p50'])} | {ms(lat['p90'])} | "
            f"{ms(lat['p99'])} | {r['throughput_per_second']:.0f} | "
            + (f"{ratio_p50:.2f}× | {ratio_tp:.2f}× |" if cold and kind != "cold" else "1 | 1 |")
        )
        summary.append({
            "run": "saturated", "concurrency": c, "path": kind, "requests": r["requests"], "errors": r["errors"],
            "p50_ms": lat["p50"] / 1000, "p90_ms": lat["p90"] / 1000, "p99_ms": lat["p99"] / 1000,
            "executions_per_second": r["throughput_per_second"],
            "p50_ratio_to_cold": ratio_p50 if kind != "cold" else 1.0,
            "throughput_ratio_to_cold": ratio_tp if kind != "cold" else 1.0,
        })
session_info = work / "session.json"
if session_info.exists() and paced.get("session") and paced.get("rest"):
    info = json.loads(session_info.read_text())
    ratio = paced["session"]["latency_us"]["p50"] / paced["rest"]["latency_us"]["p50"]
    memory = info.get("memory_bytes")
    lines += [
        "",
        f"In a session, the second and later calls: p50 {ratio:.2f}× a one-shot call's (same run).",
        "Memory of that session, idle after the calls (its cgroup's `memory.current`, absolute): "
        + (f"{memory / 2**20:.1f} MiB" if memory else "not measured (no memory cgroup)")
        + f" of its {info.get('memory_limit_bytes', 0) / 2**20:.0f} MiB limit.",
    ]
    summary.append({"run": "session", "p50_ratio_to_one_shot": ratio, "idle_memory_bytes": memory})
rest = paced.get("rest")
lines += [
    "",
    "Target: p50 under 5 ms through the sandbox with a fresh isolated interpreter per call — "
    + (f"measured {ms(rest['latency_us']['p50'])} ms (paced, sandbox REST)." if rest else "not measured."),
]
ready = work / "ready.json"
if ready.exists():
    isolation = json.loads(ready.read_text())["dependencies"]["isolation"]["detail"]
    lines += ["", "Isolation in force during the run (from `/ready`):", "", "```json",
              json.dumps(isolation, indent=2), "```"]
out.mkdir(parents=True, exist_ok=True)
(out / "latest.md").write_text("\n".join(lines) + "\n")
(out / "latest.json").write_text(json.dumps({"command": command, "runs": summary}, indent=2) + "\n")
