"""What the harness can start: each service on its fixed loopback port, started on first use.

A service whose subcommand the release binary does not have yet is reported as
"not measured: <service> not built yet"; one that fails to start, with the tail of its log.
"""

import json
import subprocess
import time
import urllib.error
import urllib.request

from .load import LOADGEN
from .procs import ROOT, TARGET, Service, StartError, tree_rss_kib

SWITCHBOARD = TARGET / "release" / "switchboard"
VENV_PYTHON = TARGET / "bench-venv" / "bin" / "python"
HOST = "127.0.0.1"

# Fixed loopback ports, away from the defaults (8000-8004) so a running `switchboard up` does
# not collide; the same offsets as docs/design.md's table.
PORTS = {
    "mcp-server": 18600,
    "sandbox": 18601,
    "middleware": 18602,
    "time-client": 18603,
    "code-executor": 18604,
    "gateway-auth": 18605,
    "gateway-jwt": 18606,
    "gateway-shared": 18607,
    "gateway-fastmcp": 18610,
    "fastmcp": 18613,
    "scripted-llm": 18620,
    "jwt-issuer": 18621,
    "fixed-http": 18622,
    "forward-hop": 18623,
}
UP_BASE_PORT = 18700

# Which subcommand of the binary each of our services needs.
SUBCOMMAND = {
    "time-client": "time-client",
    "mcp-server": "mcp-server",
    "gateway-fastmcp": "mcp-server",
    "gateway-auth": "mcp-server",
    "gateway-jwt": "mcp-server",
    "gateway-shared": "mcp-server",
    "sandbox": "sandbox",
    "code-executor": "code-executor",
    "middleware": "middleware",
}

# Processes started for comparison, not services of ours (no memory target applies).
NOT_OURS = ("fastmcp", "scripted-llm", "jwt-issuer", "fixed-http", "forward-hop")

# Seconds to let a freshly ready service settle before its idle memory is read.
SETTLE_SECONDS = 0.5


def url(name: str, path: str = "") -> str:
    return f"http://{HOST}:{PORTS[name]}{path}"


def mcp_url(name: str) -> str:
    return url(name, "/mcp")


def has_subcommand(subcommand: str) -> bool:
    """Whether the release binary has this subcommand (its --help succeeds)."""
    done = subprocess.run(
        [str(SWITCHBOARD), subcommand, "--help"], capture_output=True, text=True, check=False
    )
    return done.returncode == 0


class Services:
    """Starts services on demand, remembers failures, records idle memory."""

    def __init__(self, memory: dict):
        self.memory = memory
        self.running: dict[str, Service] = {}
        self.failed: dict[str, str] = {}
        self.subcommands = {sub: has_subcommand(sub) for sub in set(SUBCOMMAND.values())}

    def missing(self, *names: str) -> str | None:
        """The "not measured" reason if any of these services' subcommands is not built yet."""
        absent = sorted({SUBCOMMAND[n] for n in names if n in SUBCOMMAND and not self.subcommands[SUBCOMMAND[n]]})
        if absent:
            return "not measured: " + ", ".join(f"{sub} not built yet" for sub in absent)
        return None

    def get(self, name: str) -> Service | None:
        """The running service, started if needed; None if it cannot run (see `reason`)."""
        if name in self.running:
            return self.running[name]
        if name in self.failed or self.missing(name):
            return None
        if name not in SPECS:
            self.failed[name] = f"not measured: bench/benchlib/services.py has no start recipe for {name} yet"
            return None
        try:
            for dependency in DEPENDS.get(name, lambda _: [])(self):
                if self.get(dependency) is None:
                    raise StartError(f"needs {dependency}: {self.reason(dependency)}")
            argv, ready_path, env = SPECS[name](self)
            service = Service(name, argv, url(name, ready_path), env).start()
            self.running[name] = service
            wait_for_tools(service, TOOLS.get(name, lambda _: [])(self))
            settle(name)
        except StartError as error:
            if name in self.running:
                self.running.pop(name).stop()
            self.failed[name] = f"not measured: {error}"
            print(f"  {self.failed[name]}", flush=True)
            return None
        entry = self.memory.setdefault(name, {})
        entry["idle_kib"] = service.memory().get("VmRSS")
        entry["ours"] = name not in NOT_OURS
        if name == "sandbox":
            total, count = tree_rss_kib(service.pid)
            self.memory["sandbox with its pre-started interpreters"] = {
                "idle_kib": total, "processes": count + 1, "ours": False}
        print(f"  started {name} (pid {service.pid}) in {service.ready_seconds * 1000:.0f} ms", flush=True)
        return service

    def reason(self, name: str) -> str:
        return self.missing(name) or self.failed.get(name) or f"not measured: {name} not started"

    def pids(self, *names: str) -> dict[str, int]:
        return {n: self.running[n].pid for n in names if n in self.running}

    def stop_all(self) -> None:
        for name, service in list(self.running.items()):
            hwm = service.memory().get("VmHWM")
            if hwm is not None:
                self.memory.setdefault(name, {})["hwm_kib"] = hwm
            service.stop()
            del self.running[name]


def settle(name: str) -> None:
    """Give a just-ready service a moment before reading its idle memory."""
    time.sleep(SETTLE_SECONDS)


def wait_for_tools(service, tools: list[str], timeout: float = 20.0) -> None:
    """For a gateway: wait until GET /api/tools lists `tools` as available (its /ready says only
    that one upstream is up)."""
    if not tools:
        return
    tools_url = service.ready_url.rsplit("/", 1)[0] + "/api/tools"
    deadline = time.perf_counter() + timeout
    listed: set = set()
    while time.perf_counter() < deadline:
        try:
            with urllib.request.urlopen(tools_url, timeout=2) as response:
                listed = {t["name"] for t in json.load(response)["tools"] if t.get("available")}
        except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError, KeyError):
            listed = set()
        if set(tools) <= listed:
            return
        time.sleep(0.05)
    raise StartError(f"{service.name} did not list {sorted(set(tools) - listed)} within {timeout:.0f} s {service.log_tail()}")


def listen(name: str) -> list[str]:
    return ["--listen", f"{HOST}:{PORTS[name]}"]


def _gateway_upstreams(services: "Services") -> list[str]:
    """The gateway of scenarios 1 and 3: the time-client, and the code-executor once it exists."""
    names = ["time-client"] + (["code-executor"] if services.subcommands["code-executor"] else [])
    return names


def _gateway(services: "Services"):
    upstreams = [f"--upstream={n}={mcp_url(n)}" for n in _gateway_upstreams(services)]
    return [str(SWITCHBOARD), "mcp-server", *listen("mcp-server"), *upstreams], "/ready", None


# The API key and the JWT the harness made for the gateways with authentication on.
AUTH = {"key": None, "jwt": None}
AUTH_DIR = TARGET / "bench-auth"
POLICY = '[roles.time]\ntools = ["get_current_time"]\n\n[[grants]]\nroles = ["time"]\nsubjects = ["bench"]\n'


def _jwt_issuer(_services: "Services"):
    AUTH_DIR.mkdir(parents=True, exist_ok=True)
    argv = [str(VENV_PYTHON), str(ROOT / "bench" / "python" / "jwt_issuer.py"), "--host", HOST,
            "--port", str(PORTS["jwt-issuer"]), "--token-file", str(AUTH_DIR / "token"),
            "--audience", mcp_url("gateway-jwt")]
    return argv, "/jwks.json", None


def _gateway_jwt(_services: "Services"):
    """The gateway of scenario 1 with bearer JWTs (ES256, JWKS fetched once and cached) and the
    same policy as `_gateway_auth`."""
    AUTH["jwt"] = (AUTH_DIR / "token").read_text().strip()
    (AUTH_DIR / "policy.toml").write_text(POLICY)
    argv = [str(SWITCHBOARD), "mcp-server", *listen("gateway-jwt"), f"--upstream=time-client={mcp_url('time-client')}",
            "--jwks-url", url("jwt-issuer", "/jwks.json"), "--jwt-issuer", "bench-issuer",
            "--jwt-audience", mcp_url("gateway-jwt"), "--jwt-algorithms", "ES256",
            "--policy", str(AUTH_DIR / "policy.toml")]
    return argv, "/ready", None


def _gateway_auth(_services: "Services"):
    """The gateway of scenario 1 with authentication (an API key, checked per request) and a
    policy (checked per call and per list) on: what identity and access cost per call."""
    made = subprocess.run([str(SWITCHBOARD), "auth", "new-key", "bench"], capture_output=True, text=True,
                          check=False)
    if made.returncode != 0:
        raise StartError(f"switchboard auth new-key failed: {made.stderr.strip()}")
    key, _, entry = made.stdout.partition("\n")
    directory = AUTH_DIR
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "keys.toml").write_text(entry)
    (directory / "policy.toml").write_text(POLICY)
    AUTH["key"] = key.strip()
    argv = [str(SWITCHBOARD), "mcp-server", *listen("gateway-auth"), f"--upstream=time-client={mcp_url('time-client')}",
            "--api-keys", str(directory / "keys.toml"), "--policy", str(directory / "policy.toml")]
    return argv, "/ready", None


def _gateway_shared(_services: "Services"):
    """The gateway of scenario 1 with its time-client upstream configured `shared_session`: one
    upstream session for every client, as before each client got its own (what per-client
    upstream sessions cost per call is the plain gateway's run minus this one)."""
    AUTH_DIR.mkdir(parents=True, exist_ok=True)
    config = AUTH_DIR / "gateway-shared.toml"
    config.write_text(
        '[mcp-server]\nupstreams = [{ name = "time-client", url = "%s", shared_session = true }]\n'
        % mcp_url("time-client"))
    argv = [str(SWITCHBOARD), "--config", str(config), "mcp-server", *listen("gateway-shared")]
    return argv, "/ready", None


def _gateway_fastmcp(_services: "Services"):
    argv = [str(SWITCHBOARD), "mcp-server", "--listen", f"{HOST}:{PORTS['gateway-fastmcp']}",
            f"--upstream=fastmcp={mcp_url('fastmcp')}"]
    return argv, "/ready", None


# name -> (services) -> (argv, readiness path, extra environment)
SPECS = {
    "time-client": lambda _: ([str(SWITCHBOARD), "time-client", *listen("time-client")], "/ready", None),
    "fastmcp": lambda _: (
        [str(VENV_PYTHON), str(ROOT / "bench" / "python" / "fastmcp_time.py"), "--host", HOST,
         "--port", str(PORTS["fastmcp"])],
        "/ready",
        None,
    ),
    "scripted-llm": lambda _: ([str(LOADGEN), "scripted-llm", *listen("scripted-llm")], "/v1/models", None),
    # The loopback floor of scenario 1: a fixed JSON answer, and one forwarding hop in front of
    # it (both answer any path, so readiness is any 200).
    "fixed-http": lambda _: ([str(LOADGEN), "fixed", *listen("fixed-http")], "/ready", None),
    "forward-hop": lambda _: ([str(LOADGEN), "forward", *listen("forward-hop"), "--to", url("fixed-http")],
                             "/ready", None),
    "mcp-server": _gateway,
    "gateway-fastmcp": _gateway_fastmcp,
    "gateway-auth": _gateway_auth,
    "gateway-jwt": _gateway_jwt,
    "gateway-shared": _gateway_shared,
    "jwt-issuer": _jwt_issuer,
    "sandbox": lambda _: ([str(SWITCHBOARD), "sandbox", *listen("sandbox")], "/ready", None),
    "code-executor": lambda _: (
        [str(SWITCHBOARD), "code-executor", *listen("code-executor"), "--sandbox-url", url("sandbox")],
        "/ready",
        None,
    ),
    "middleware": lambda _: (
        [str(SWITCHBOARD), "middleware", *listen("middleware"), "--gateway-url", mcp_url("mcp-server")],
        "/ready",
        {"LLM_BASE_URL": url("scripted-llm", "/v1"), "LLM_MODEL_NAME": "scripted", "LLM_PROVIDER": "openai"},
    ),
}

# Services that must be running before this one starts.
DEPENDS = {
    "mcp-server": _gateway_upstreams,
    "middleware": lambda _: ["scripted-llm", "mcp-server"],
    "code-executor": lambda _: ["sandbox"],
    "gateway-fastmcp": lambda _: ["fastmcp"],
    "gateway-auth": lambda _: ["time-client"],
    "gateway-jwt": lambda _: ["time-client", "jwt-issuer"],
    "gateway-shared": lambda _: ["time-client"],
    "forward-hop": lambda _: ["fixed-http"],
}

# Tools a gateway must list as available before it is used.
TOOLS = {
    "mcp-server": lambda services: ["get_current_time"]
    + (["execute_code"] if services.subcommands["code-executor"] else []),
    "gateway-fastmcp": lambda _: ["get_current_time"],
    "gateway-shared": lambda _: ["get_current_time"],
}
