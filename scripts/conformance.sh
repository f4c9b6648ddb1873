#!/usr/bin/env bash
# Run the official MCP conformance suite against a Switchboard MCP endpoint.
#
#   scripts/conformance.sh URL [SCENARIO ...]
#
# Without scenarios, runs the ones that apply to a server offering only tools (see README,
# "MCP conformance"). Exits non-zero if any scenario fails. The suite is installed once into
# target/conformance (0.1.12: the newest release that runs on Node 20).
set -euo pipefail
url=${1:?usage: scripts/conformance.sh URL [SCENARIO ...]}
shift
scenarios=("$@")
if [ ${#scenarios[@]} -eq 0 ]; then
  scenarios=(server-initialize ping tools-list server-sse-multiple-streams server-sse-polling dns-rebinding-protection)
fi
root=$(cd "$(dirname "$0")/.." && pwd)
dir="$root/target/conformance"
if [ ! -x "$dir/node_modules/.bin/conformance" ]; then
  mkdir -p "$dir"
  (cd "$dir" && [ -f package.json ] || npm init -y >/dev/null)
  (cd "$dir" && npm install --no-audit --no-fund --silent @modelcontextprotocol/conformance@0.1.12)
fi
failed=()
for s in "${scenarios[@]}"; do
  out=$(cd "$dir" && timeout 120 ./node_modules/.bin/conformance server --url "$url" --scenario "$s" --suite all 2>&1) && rc=0 || rc=$?

  if [ "$rc" -eq 0 ]; then
    echo "conformance ok   $s"
  else
    echo "conformance FAIL $s"
    printf '%s\n' "$out" | tail -40
    failed+=("$s")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "conformance: ${#failed[@]} scenario(s) failed against $url: ${failed[*]}" >&2
  exit 1
fi
echo "conformance: all ${#scenarios[@]} scenarios passed against $url"
