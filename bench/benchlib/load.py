"""Running switchboard-loadgen and collecting its JSON report plus the memory of the loaded pids."""

import json
import subprocess

from .procs import TARGET, MemorySampler, cpu_seconds

LOADGEN = TARGET / "release" / "switchboard-loadgen"


class Settings:
    """Warm-up and measured seconds of every load run."""

    def __init__(self, duration: float, warmup: float):
        self.duration = duration
        self.warmup = warmup


def run(
    settings: Settings,
    label: str,
    mode: str,
    target: list[str],
    concurrency: int,
    sample: dict[str, int],
    memory: dict,
    expect: str | None = None,
    rate: float | None = None,
) -> dict:
    """One load run. Returns {"label", "concurrency", "report"} or {"label", "not_measured"}.

    `sample` maps process names to pids whose VmRSS is sampled during the run; the peaks are
    folded into `memory[name]["load_peak_kib"]`.
    """
    argv = [str(LOADGEN), mode]
    if mode == "process":
        options, command = target[: target.index("--")], target[target.index("--") :]
    else:
        options, command = target, []
    argv += options
    argv += ["-c", str(concurrency), "--duration", str(settings.duration), "--warmup", str(settings.warmup)]
    if expect is not None:
        argv += ["--expect", expect]
    if rate is not None:
        argv += ["--rate", str(rate)]
    argv += command
    timeout = settings.duration + settings.warmup + 60
    cpu_before = {name: cpu_seconds(pid) for name, pid in sample.items()}
    with MemorySampler(sample) as sampler:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"label": label, "concurrency": concurrency, "not_measured": f"not measured: load run exceeded {timeout:.0f} s"}
    for name, peak in sampler.peaks.items():
        entry = memory.setdefault(name, {})
        entry["load_peak_kib"] = max(entry.get("load_peak_kib", 0), peak)
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"label": label, "concurrency": concurrency, "not_measured": f"not measured: loadgen failed: {reason}"}
    served = report["requests"] + report["errors"] + report.get("warmup_requests", 0)
    cpu_per_request = {}
    for name, pid in sample.items():
        before, after = cpu_before.get(name), cpu_seconds(pid)
        if before is not None and after is not None and served:
            cpu_per_request[name] = (after - before) * 1e6 / served
    print(
        f"  {label:<52} c={concurrency:<3} {report['throughput_per_second']:>9.0f}/s  "
        f"p50 {report['latency_us']['p50']:>8.0f} µs  p99 {report['latency_us']['p99']:>8.0f} µs  "
        f"errors {report['errors']}",
        flush=True,
    )
    return {"label": label, "concurrency": concurrency, "report": report, "cpu_us_per_request": cpu_per_request}


def cpu(run: dict, name: str) -> float | None:
    """CPU µs per request that process `name` used in the run, or None."""
    if load_errors(run):
        return None
    return run.get("cpu_us_per_request", {}).get(name)


def load_errors(run: dict) -> bool:
    """Whether the run was not measured, had errors, or measured nothing."""
    report = run.get("report")
    return not report or bool(report["errors"]) or not report["requests"]


def p50(run: dict) -> float | None:
    """The run's p50 in µs, or None if it was not measured or had errors."""
    return None if load_errors(run) else run["report"]["latency_us"]["p50"]


def rps(run: dict) -> float | None:
    """The run's requests/s, or None if it was not measured or had errors."""
    return None if load_errors(run) else run["report"]["throughput_per_second"]
