"""The official MCP Python SDK (2.x) as one client of scripts/replicas-haproxy.sh.

    python py-client.py URL MODE STOP_FILE CALLS_FILE

MODE "legacy" keeps one 2025-11-25 session for the whole run (the SDK does not re-initialize:
a session a replica could not serve would fail every later call); "auto" negotiates 2026-07-28,
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

    async with Client(url, mode=mode) as client:
        i = 0
        while not os.path.exists(stop_file):
            start = now_ms()
            try:
                if i % 2 == 1:
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
            i += 1
        protocol = client.protocol_version
    print(
        json.dumps(
            {
                "client": f"python-{mode}",
                "protocol": protocol,
                "progress_notifications": progress,
                "calls": calls,
                "calls_file": calls_file,
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]))
