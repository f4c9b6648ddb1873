"""Turn the results dictionary into bench/results/latest.md."""


def _num(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


def _mib(kib: int | None) -> str:
    return "—" if kib is None else f"{kib / 1024:.1f}"


def _cpu(per_process: dict) -> str:
    return ", ".join(f"{name} {value:,.0f}" for name, value in per_process.items())


def run_table(runs: list[dict]) -> list[str]:
    lines = [
        "| run | conc. | req/s | p50 µs | p90 µs | p99 µs | max µs | ok | errors | server CPU µs/req |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for run in runs:
        report = run.get("report")
        if report is None:
            cells = [run["label"], str(run.get("concurrency", "")), run["not_measured"]] + [""] * 7
            lines.append("| " + " | ".join(cells) + " |")
            continue
        lat = report["latency_us"]
        errors = str(report["errors"])
        if report["errors"]:
            errors += f" ({report.get('first_error') or ''})"
        lines.append(
            f"| {run['label']} | {report['concurrency']} | {_num(report['throughput_per_second'])} "
            f"| {_num(lat['p50'])} | {_num(lat['p90'])} | {_num(lat['p99'])} | {_num(lat['max'])} "
            f"| {report['requests']} | {errors} | {_cpu(run.get('cpu_us_per_request', {}))} |"
        )
    return lines


def headline_table(items: list[dict]) -> list[str]:
    lines = [
        "| scenario | measure | value | kind | target | met |",
        "|---|---|---:|---|---|---|",
    ]
    for item in items:
        value = item.get("value")
        shown = item.get("not_measured") or f"{_num(value, item.get('digits', 1))} {item.get('unit', '')}".strip()
        met = item.get("met")
        met_text = "—" if met is None else ("yes" if met else "**no**")
        lines.append(
            f"| {item['scenario']} | {item['name']} | {shown} | {item.get('kind', '')} "
            f"| {item.get('target', '')} | {met_text} |"
        )
    return lines


def memory_table(memory: dict) -> list[str]:
    lines = [
        "| process | idle RSS MiB | peak RSS under load MiB | VmHWM MiB | under 30 MiB idle |",
        "|---|---:|---:|---:|---|",
    ]
    for name, m in memory.items():
        idle = m.get("idle_kib")
        target = "—" if idle is None or not m.get("ours") else ("yes" if idle < 30 * 1024 else "**no**")
        lines.append(
            f"| {name} | {_mib(idle)} | {_mib(m.get('load_peak_kib'))} | {_mib(m.get('hwm_kib'))} | {target} |"
        )
    return lines


def markdown(results: dict) -> str:
    machine = results["machine"]
    out = [
        "# Switchboard benchmark results",
        "",
        f"- date: {results['date']}",
        f"- machine: {machine['cores']} cores ({machine['cpu']}), {machine['memory_gib']:.1f} GiB memory, "
        f"Linux {machine['kernel']}; 1-minute load average {machine['load_average_before']:.2f} before the run, "
        f"{machine['load_average_after']:.2f} after (above ~0.2 before means something else was running)",
        f"- commit: {results['commit']}",
        f"- command: `{results['command']}`",
        f"- each load run: {results['settings']['warmup_seconds']} s warm-up, then "
        f"{results['settings']['duration_seconds']} s measured; closed loop (a worker sends its next "
        "request when the previous one is answered), one MCP session or HTTP connection per worker "
        "unless the row says otherwise",
        "",
        "**How to read this.** Ratios and differences between two runs of the same table were measured "
        "minutes apart on the same machine and are what to compare (stable). Absolute latencies, "
        "requests/s and start-up times are noisy: they depend on the machine listed above and on whatever "
        "else ran on it, and the load generator runs on the same cores as the services it loads. A service that is not built yet is listed "
        "as *not measured*, never estimated.",
        "",
        "## Headline",
        "",
        *headline_table(results["headline"]),
        "",
    ]
    for scenario in results["scenarios"]:
        out += [f"## {scenario['id']}. {scenario['title']}", ""]
        for note in scenario.get("notes", []):
            out += [note, ""]
        if scenario.get("runs"):
            out += [*run_table(scenario["runs"]), ""]
        if scenario.get("extra"):
            out += [*scenario["extra"], ""]
    out += ["## Memory (VmRSS / VmHWM from /proc/PID/status)", "", *memory_table(results["memory"]), ""]
    return "\n".join(out)
