"""The benchmark harness behind bench/run.sh (which builds first; run that, not this).

Starts each service as its own process on a fixed loopback port, runs switchboard-loadgen
against it and its baseline in the same run, and writes bench/results/latest.{md,json}.
Standard library only.
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

from benchlib import load, render, scenarios
from benchlib.procs import ROOT, stop_all
from benchlib.services import Services

RESULTS = ROOT / "bench" / "results"


def machine() -> dict:
    cpu = "unknown CPU"
    with open("/proc/cpuinfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo", encoding="ascii") as info:
        total_kib = int(next(line for line in info if line.startswith("MemTotal")).split()[1])
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": total_kib / 1024 / 1024,
        "kernel": platform.release(),
    }


def commit() -> str:
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           capture_output=True, text=True)
    return head.stdout.strip() + (" (with uncommitted changes)" if dirty.stdout.strip() else "")


def main() -> int:
    parser = argparse.ArgumentParser(description="Run Switchboard's benchmarks (use bench/run.sh).")
    parser.add_argument("--duration", type=float, default=4.0, help="measured seconds per load run")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per load run")
    parser.add_argument("--only", default="", help="comma-separated scenario numbers, e.g. 1,2")
    parser.add_argument("--command", default="bench/run.sh", help="the command line to record")
    parser.add_argument("--output", default=str(RESULTS / "latest"), help="path without extension")
    args = parser.parse_args()
    only = {int(n) for n in args.only.split(",") if n.strip()}

    settings = load.Settings(args.duration, args.warmup)
    memory: dict = {}
    headline: list = []
    services = Services(memory)
    ctx = scenarios.Context(settings, services, memory, headline)
    sections = []
    started = datetime.datetime.now(datetime.timezone.utc)
    load_before = os.getloadavg()[0]
    try:
        for number, scenario in enumerate(scenarios.ALL, start=1):
            if only and number not in only:
                continue
            print(f"scenario {number}: {scenario.__name__}", flush=True)
            sections.append(scenario(ctx))
    finally:
        services.stop_all()
        stop_all()
    results = {
        "date": started.strftime("%Y-%m-%d %H:%M UTC"),
        "machine": dict(machine(), load_average_before=load_before, load_average_after=os.getloadavg()[0]),
        "commit": commit(),
        "command": args.command,
        "settings": {"duration_seconds": args.duration, "warmup_seconds": args.warmup},
        "headline": headline,
        "scenarios": sections,
        "memory": memory,
    }
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.with_suffix(".json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    output.with_suffix(".md").write_text(render.markdown(results) + "\n")
    print(f"wrote {output.with_suffix('.md')} and {output.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
