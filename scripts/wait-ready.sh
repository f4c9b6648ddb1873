#!/usr/bin/env bash
# Wait until URL answers 200, up to SECONDS (default 30). For scripts only: tests never poll.
set -euo pipefail
url=${1:?usage: scripts/wait-ready.sh URL [SECONDS]}
deadline=$(( $(date +%s) + ${2:-30} ))
until curl -fsS -o /dev/null "$url" 2>/dev/null; do
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "not ready after ${2:-30}s: $url" >&2
    curl -sS "$url" >&2 || true
    exit 1
  fi
  sleep 0.1
done
