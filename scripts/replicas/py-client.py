"""The official MCP Python SDK (2.x) as one client of scripts/replicas-haproxy.sh.

    python py-client.py URL MODE STOP_FILE CALLS_FILE

MODE "legacy" keeps one 2025-11-25 session for the whole run (the SDK does not re-initialize:
a session a replica could not serve would fail every later call) unless the SDK itself ends it
(see main; counted as "reopened"); "auto" negotiates 2026-07-28,
whose requests carry no session. Calls in a loop until STOP_FILE exists, then prints one JSON
report; each call is appended to CALLS_FILE as it ends (one JSON line: start and end in ms since
the epoch, and its error). Every
second call is the everything server's long-running operation with a progress callback.
"""

import asyncio
import json
import os
import sys
import time

from mcp import Client


def now_ms() -> int:
    return int(time.time() * 1000)


async def main(url: str, mode: str, stop_file: str, calls_file: str) -> None:
    calls = 0

    def record(call: dict) -> None:
        nonlocal calls
        calls += 1
        with open(calls_file, "a") as f:
            f.write(json.dumps(call) + "\n")
    progress = 0

    async def on_progress(_progress, _total, _message) -> None:
        nonlocal progress
        progress += 1

    state = {"next": 0, "in_flight": None}
    reopened, protocol = 0, None
    while not os.path.exists(stop_file):
        # The SDK ends its whole session when the connection of a request in flight is cut
        # without an answer (httpx's RemoteProtocolError escapes its task group): the call in
        # flight on a killed gateway. That call is recorded as failed and a new session
        # opened; the report counts it, and the check allows it only for such a call.
        try:
            protocol = await run(url, mode, stop_file, record, on_progress, state)
        except Exception as e:  # noqa: BLE001 - the session died; counted
            if state["in_flight"] is not None:
                record({"start": state["in_flight"], "end": now_ms(), "ok": False,
                        "error": f"the SDK ended its session: {type(e).__name__}: {e}"})
                state["in_flight"] = None
            reopened += 1
            if reopened > 3:
                raise
    print(
        json.dumps(
            {
                "client": f"python-{mode}",
                "protocol": protocol,
                "progress_notifications": progress,
                "calls": calls,
                "calls_file": calls_file,
                "reopened": reopened,
            }
        )
    )


async def run(url, mode, stop_file, record, on_progress, state):
    """Call tools on one session until STOP_FILE exists; the negotiated protocol. `state`
    says which call is next and when the call in flight (if any) started."""
    async with Client(url, mode=mode) as client:
        while not os.path.exists(stop_file):
            start = now_ms()
            state["in_flight"] = start
            try:
                if state["next"] % 2 == 1:
                    result = await client.call_tool(
                        "trigger-long-running-operation",
                        {"duration": 0.5, "steps": 2},
                        read_timeout_seconds=10,
                        progress_callback=on_progress,
                    )
                else:
                    result = await client.call_tool(
                        "get_current_time", {"timezone": "UTC"}, read_timeout_seconds=10
                    )
                error = json.dumps([c.model_dump() for c in result.content]) if result.is_error else None
                record({"start": start, "end": now_ms(), "ok": not result.is_error, "error": error})
            except Exception as e:  # noqa: BLE001 - every failure is reported, none ends the run
                record({"start": start, "end": now_ms(), "ok": False, "error": f"{type(e).__name__}: {e}"})
            state["in_flight"] = None
            state["next"] += 1
        return client.protocol_version


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]))
