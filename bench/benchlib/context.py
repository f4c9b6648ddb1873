"""What every scenario shares: the context that starts runs and collects headline items, and
the arithmetic of differences and ratios that stay None when a run was not measured."""

import json

from . import load
from .services import Services, mcp_url, url

TIME_ARGS = json.dumps({"timezone": "UTC"})


class Context:
    def __init__(self, settings: load.Settings, services: Services, memory: dict, headline: list):
        self.settings = settings
        self.services = services
        self.memory = memory
        self.headline = headline
        self.shared: dict = {}

    def mcp(self, label, service, tool, arguments, concurrency, sample, expect=None, rate=None, bearer=None,
            protocol=None, shared_session=False, raw=False):
        """A tools/call run against `service`'s /mcp (tools/list when `tool` is None), or a
        not-measured row. `protocol` is the loadgen's --protocol (its default, 2025-11-25
        sessions, when None); `shared_session` sends every worker's calls on one client session;
        `raw` sends raw JSON-RPC and reads only the answers' envelopes (loadgen --raw)."""
        if self.services.get(service) is None:
            return {"label": label, "concurrency": concurrency, "not_measured": self.services.reason(service)}
        for name in sample:
            if self.services.get(name) is None:
                return {"label": label, "concurrency": concurrency, "not_measured": self.services.reason(name)}
        if tool is None:
            target = ["--url", mcp_url(service), "--list-tools"]
        else:
            target = ["--url", mcp_url(service), "--tool", tool, "--arguments", arguments]
        if bearer:
            target += ["--bearer", bearer]
        if protocol:
            target += ["--protocol", protocol]
        if shared_session:
            target.append("--shared-session")
        if raw:
            target.append("--raw")
        return load.run(self.settings, label, "mcp", target, concurrency, self.services.pids(*sample),
                        self.memory, expect, rate)

    def http(self, label, service, path, body, concurrency, sample, expect=None, rate=None):
        """A JSON POST run against `service`, or a not-measured row."""
        for name in [service, *sample]:
            if self.services.get(name) is None:
                return {"label": label, "concurrency": concurrency, "not_measured": self.services.reason(name)}
        target = ["--url", url(service, path), "--body", body]
        return load.run(self.settings, label, "http", target, concurrency, self.services.pids(*sample),
                        self.memory, expect, rate)

    def add(self, scenario, name, value, unit, kind, target=None, met=None, not_measured=None, digits=1):
        item = {"scenario": scenario, "name": name, "value": value, "unit": unit, "kind": kind,
                "target": target or "", "met": met, "digits": digits}
        if value is None:
            item["not_measured"] = not_measured or "not measured"
            item["met"] = None
        self.headline.append(item)


def _diff(a, b):
    return None if a is None or b is None else a - b


def _ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def _why(*runs) -> str:
    for run in runs:
        if "not_measured" in run:
            return run["not_measured"]
        if run["report"]["errors"]:
            return f"not measured: {run['label']} had errors"
    return "not measured"

