"""Start-up time: `switchboard up` until every /ready is 200, against FastMCP's start-up."""

import queue
import statistics
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from .procs import LOGS, ROOT, memory_kib, stop_process
from .services import HOST, SWITCHBOARD, UP_BASE_PORT, VENV_PYTHON

REPEATS = 5
TIMEOUT = 30.0
FASTMCP_STARTUP_PORT = 18614


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def _up_once() -> tuple[float, list[str], int, subprocess.Popen]:
    """Start `switchboard up`; return seconds until it reported every service ready, the
    services' base URLs, its idle RSS (KiB) and the process (still running)."""
    LOGS.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    process = subprocess.Popen(
        [str(SWITCHBOARD), "up", "--host", HOST, "--base-port", str(UP_BASE_PORT)],
        stdout=subprocess.PIPE,
        stderr=open(LOGS / "up.log", "wb"),
        stdin=subprocess.DEVNULL,
        text=True,
    )
    # A thread reads the lines: a select() on a buffered pipe can miss lines already buffered.
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(l) for l in process.stdout] + [lines.put(None)], daemon=True).start()
    urls = []
    deadline = start + TIMEOUT
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.perf_counter()))
        except queue.Empty:
            stop_process(process)
            raise RuntimeError(f"`switchboard up` not ready after {TIMEOUT:.0f} s (see {LOGS}/up.log)") from None
        if line is None:
            raise RuntimeError(f"`switchboard up` exited with {process.wait()} (see {LOGS}/up.log)")
        if line.startswith("switchboard is up"):
            elapsed = time.perf_counter() - start
            break
        parts = line.split()
        if len(parts) >= 3 and parts[-1] == "ready":
            address = urllib.parse.urlsplit(parts[1])
            urls.append(f"{address.scheme}://{address.netloc}")
    not_ready = [u for u in urls if not _ready(f"{u}/ready")]
    if not urls or not_ready:
        stop_process(process)
        raise RuntimeError(f"`switchboard up` said ready but /ready is not 200 at {not_ready or 'any URL'}")
    time.sleep(0.5)
    rss = memory_kib(process.pid).get("VmRSS", 0)
    return elapsed, urls, rss, process


def measure_up(memory: dict) -> dict:
    """Median over REPEATS starts of `switchboard up` (all services it has, one process)."""
    times, rss_values, urls = [], [], []
    try:
        for _ in range(REPEATS):
            elapsed, urls, rss, process = _up_once()
            times.append(elapsed * 1000)
            rss_values.append(rss)
            stop_process(process)
    except RuntimeError as error:
        return {"not_measured": f"not measured: {error}"}
    memory["switchboard up (all services, one process)"] = {
        "idle_kib": int(statistics.median(rss_values)),
        "ours": True,
    }
    return {"median_ms": statistics.median(times), "runs_ms": times, "services": len(urls), "urls": urls}


def measure_fastmcp() -> dict:
    """Median over 3 starts of the FastMCP baseline until its /ready is 200 (polled every 2 ms)."""
    if not VENV_PYTHON.exists():
        return {"not_measured": "not measured: the Python venv is missing"}
    times = []
    for _ in range(3):
        start = time.perf_counter()
        process = subprocess.Popen(
            [str(VENV_PYTHON), str(ROOT / "bench" / "python" / "fastmcp_time.py"),
             "--host", HOST, "--port", str(FASTMCP_STARTUP_PORT)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
        )
        try:
            while not _ready(f"http://{HOST}:{FASTMCP_STARTUP_PORT}/ready"):
                if process.poll() is not None or time.perf_counter() - start > TIMEOUT:
                    return {"not_measured": "not measured: FastMCP did not start"}
                time.sleep(0.002)
            times.append((time.perf_counter() - start) * 1000)
        finally:
            stop_process(process)
    return {"median_ms": statistics.median(times), "runs_ms": times}


def table(ours: dict, baseline: dict) -> list[str]:
    def row(name: str, result: dict) -> str:
        if "median_ms" not in result:
            return f"| {name} | {result.get('not_measured', 'not measured')} | |"
        runs = ", ".join(f"{t:.0f}" for t in result["runs_ms"])
        return f"| {name} | {result['median_ms']:.0f} | {runs} |"

    services = ours.get("services")
    plural = "service" if services == 1 else "services"
    label = f"`switchboard up` ({services} {plural}) until every /ready is 200" if services else "`switchboard up`"
    return [
        "| start-up | median ms | runs ms |",
        "|---|---:|---|",
        row(label, ours),
        row("FastMCP + uvicorn until /ready is 200", baseline),
    ]
