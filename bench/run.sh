#!/usr/bin/env bash
# Switchboard's benchmarks, one command: build in release mode, set up the Python baseline,
# start every service on loopback, run the load, write bench/results/latest.{md,json}.
#
#   bench/run.sh                      # everything, ~5-10 minutes on 2 cores
#   bench/run.sh --only 1,2           # some scenarios
#   bench/run.sh --duration 1 --warmup 0.3 --output target/bench-try/latest   # a quick try
#
# Services run as separate processes (subcommands of target/release/switchboard) on ports
# 18600-18720; logs go to target/bench-logs/. See bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
command_line="bench/run.sh${*:+ $*}"

echo "=== build (release) ==="
cargo build --release -p switchboard -p switchboard-loadgen

echo "=== Python baseline (official MCP SDK) in target/bench-venv ==="
venv=${CARGO_TARGET_DIR:-target}/bench-venv
stamp=$venv/.requirements
if ! cmp -s bench/python/requirements.txt "$stamp" 2>/dev/null; then
  rm -rf "$venv"
  if ! /usr/bin/python3 -c 'import ensurepip' 2>/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
  fi
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r bench/python/requirements.txt
  cp bench/python/requirements.txt "$stamp"
fi

echo "=== run ==="
exec /usr/bin/python3 bench/harness.py --command "$command_line" "$@"
