#!/usr/bin/env bash
# Install what the test suite needs, only what is missing (safe to run again):
#
# - system packages (Debian): Node.js and npm (the official TypeScript MCP SDK as a foreign
#   upstream; the browser test), tinyproxy and microsocks (real HTTP and SOCKS5 proxies for the
#   LLM client), Python 3 with pip at /usr/bin/python3 (the sandbox runs it; its package tests
#   run pip), Chromium (the chat page), redis-server (the gateway's shared result cache; its
#   tests start their own on a free port), haproxy and jq (gateway replicas behind a load
#   balancer);
# - pinned packages for the gateway's tests (the official TypeScript SDK, the reference MCP
#   servers everything and filesystem from npm, mcp-server-time from PyPI in a venv), and
#   playwright-core for the browser test.
#
#   scripts/install-test-deps.sh
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v node >/dev/null && command -v npm >/dev/null || need+=(nodejs npm)
command -v tinyproxy >/dev/null || need+=(tinyproxy-bin)
command -v microsocks >/dev/null || need+=(microsocks)
[ -x /usr/bin/python3 ] || need+=(python3)
# pip >= 22.2 (--dry-run --report), from the system Python the sandbox runs; venv for the
# gateway's Python stdio upstream (mcp-server-time).
/usr/bin/python3 -m pip --version >/dev/null 2>&1 || need+=(python3-pip)
/usr/bin/python3 -c 'import ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
command -v chromium >/dev/null || need+=(chromium)
command -v redis-server >/dev/null || need+=(redis-server)
# Three gateway replicas behind a real load balancer (scripts/replicas-haproxy.sh); jq reads
# its clients' call logs.
command -v haproxy >/dev/null || need+=(haproxy)
command -v jq >/dev/null || need+=(jq)

if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "the tests need these Debian packages: ${need[*]}" >&2
    echo "install them as root: apt-get install ${need[*]}   (or run this script as root)" >&2
    exit 1
  fi
  echo "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# The gateway's foreign upstreams: the TypeScript SDK, the reference servers, mcp-server-time.
crates/switchboard-gateway/tests/fixtures/install.sh

# The sandbox's seccomp allow-list test runs numpy, pandas and matplotlib from pinned wheels.
crates/switchboard-sandbox/tests/fixtures/scientific-wheels.sh

# The browser test's driver (playwright-core drives the system's Chromium; no browser download).
browser=crates/switchboard-e2e/browser
if [ -f "$browser/node_modules/.installed" ] && cmp -s "$browser/package-lock.json" "$browser/node_modules/.installed"; then
  echo "browser test: playwright-core already installed"
else
  (cd "$browser" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$browser/package-lock.json" "$browser/node_modules/.installed"
fi
