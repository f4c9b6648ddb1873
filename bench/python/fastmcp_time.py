"""get_current_time on the official MCP Python SDK (FastMCP over Streamable HTTP, uvicorn).

The baseline of bench/run.sh: the same tool as Switchboard's time-client, with the same
structured output, written the way the SDK's documentation writes a server. Defaults of the SDK
are kept (SSE answers, stateful sessions, DNS-rebinding protection for 127.0.0.1), as ours are.

    python fastmcp_time.py --port 18103      # MCP at /mcp, readiness at /ready
"""

import argparse
import datetime
import zoneinfo

import uvicorn
from mcp.server.fastmcp import FastMCP
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse


class CurrentTime(BaseModel):
    timezone: str
    datetime: str
    utc_offset: str
    day_of_week: str
    is_dst: bool


def build(host: str, port: int) -> FastMCP:
    mcp = FastMCP("fastmcp-time", host=host, port=port, log_level="WARNING")

    @mcp.tool()
    def get_current_time(timezone: str = "UTC") -> CurrentTime:
        """Get the current date and time in an IANA time zone (default UTC)."""
        try:
            zone = zoneinfo.ZoneInfo(timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown time zone {timezone!r}") from error
        now = datetime.datetime.now(zone)
        offset = now.utcoffset() or datetime.timedelta(0)
        minutes = int(offset.total_seconds()) // 60
        sign = "-" if minutes < 0 else "+"
        hours, rest = divmod(abs(minutes), 60)
        return CurrentTime(
            timezone=timezone,
            datetime=now.isoformat(),
            utc_offset=f"{sign}{hours:02}:{rest:02}",
            day_of_week=now.strftime("%A"),
            is_dst=bool(now.dst()),
        )

    @mcp.custom_route("/ready", methods=["GET"])
    async def ready(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ready"})

    return mcp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8103)
    args = parser.parse_args()
    mcp = build(args.host, args.port)
    uvicorn.run(mcp.streamable_http_app(), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
