"""Processes the harness starts: services on loopback ports, their memory, their shutdown.

Every process is started by us and stopped by its own pid (SIGTERM, then SIGKILL after a grace
period); nothing is ever killed by name.
"""

import atexit
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Cargo's target directory: binaries, the Python venv and logs live there.
TARGET = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target").resolve()
LOGS = TARGET / "bench-logs"
WAIT_READY = ROOT / "scripts" / "wait-ready.sh"

_running: list["Service"] = []


class StartError(Exception):
    """A service did not start or did not become ready; the message carries its log's tail."""


def memory_kib(pid: int) -> dict:
    """VmRSS (resident now) and VmHWM (peak resident) of a process, in KiB; {} if it is gone."""
    values = {}
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    values[key] = int(rest.split()[0])
    except (FileNotFoundError, ProcessLookupError, ValueError):
        return {}
    return values


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (children, their children, ...), from /proc/*/stat."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def tree_rss_kib(pid: int) -> tuple[int, int]:
    """VmRSS of `pid` plus all its descendants (KiB), and how many descendants there are.
    Shared pages (the interpreter's code) are counted once per process, so this is an upper
    bound."""
    below = descendants(pid)
    total = sum(memory_kib(p).get("VmRSS", 0) for p in [pid, *below])
    return total, len(below)


def cpu_seconds(pid: int) -> float | None:
    """CPU time a process used (user + system), including its reaped children (the sandbox's
    interpreters), from /proc/PID/stat; None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    # After the command name: state is field 3, so utime..cstime (14..17) are [11:15].
    return sum(int(f) for f in fields[11:15]) / CLOCK_TICKS


class Service:
    """One started process with a readiness URL; its output goes to target/bench-logs/NAME.log."""

    def __init__(self, name: str, argv: list[str], ready_url: str, env: dict | None = None):
        self.name = name
        self.argv = argv
        self.ready_url = ready_url
        self.env = env
        self.process: subprocess.Popen | None = None
        self.log_path = LOGS / f"{name}.log"
        self.started_at = 0.0
        self.ready_seconds = 0.0

    def start(self, timeout: float = 30.0) -> "Service":
        LOGS.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "wb")
        env = dict(os.environ, **(self.env or {}))
        self.started_at = time.perf_counter()
        self.process = subprocess.Popen(
            self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )
        log.close()
        _running.append(self)
        ready = subprocess.run(
            [str(WAIT_READY), self.ready_url, str(int(timeout))],
            capture_output=True,
            text=True,
        )
        self.ready_seconds = time.perf_counter() - self.started_at
        if ready.returncode != 0 or self.process.poll() is not None:
            self.stop()
            raise StartError(f"{self.name} did not become ready: {ready.stderr.strip()} {self.log_tail()}")
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def memory(self) -> dict:
        return memory_kib(self.pid)

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except FileNotFoundError:
            return ""
        return ("| log: " + " / ".join(text[-lines:])) if text else ""

    def stop(self) -> None:
        stop_process(self.process)
        if self in _running:
            _running.remove(self)


def stop_process(process: subprocess.Popen | None, grace: float = 10.0) -> None:
    """SIGTERM the process (by its pid), SIGKILL it after `grace` seconds, reap it."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def stop_all() -> None:
    for service in list(_running):
        service.stop()


atexit.register(stop_all)


class MemorySampler:
    """Samples VmRSS of some pids every 50 ms in a thread; `peaks` holds the highest seen (KiB)."""

    def __init__(self, pids: dict[str, int], period: float = 0.05):
        self.pids = pids
        self.period = period
        self.peaks: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for name, pid in self.pids.items():
                rss = memory_kib(pid).get("VmRSS")
                if rss is not None:
                    self.peaks[name] = max(self.peaks.get(name, 0), rss)
            self._stop.wait(self.period)

    def __enter__(self) -> "MemorySampler":
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join()
