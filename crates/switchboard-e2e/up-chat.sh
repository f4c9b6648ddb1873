#!/usr/bin/env bash
# The README's flow on a real `switchboard up` (no LLM configured, so the offline planner
# answers): `switchboard chat "Execute: print('Hello') and tell me the time"` prints the code
# output and the time, and the chat page works in headless Chromium (browser/).
#
#   crates/switchboard-e2e/up-chat.sh [BASE_PORT]     (after `cargo build -p switchboard`)
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=./target/debug/switchboard
base=${1:-18400}
middleware="http://127.0.0.1:$((base + 2))"
mkdir -p target
log=target/e2e-up-chat.log

# The sandbox preinstalls numpy and matplotlib from the pinned wheels (fetched by
# scripts/install-test-deps.sh), offline, so the page can show a matplotlib chart; `up` is
# ready once they are installed.
wheels=crates/switchboard-sandbox/tests/fixtures/wheels
if ! ls "$wheels"/matplotlib-*.whl > /dev/null 2>&1; then
  echo "FAIL: the scientific wheels are missing from $wheels: run scripts/install-test-deps.sh"; exit 1
fi
packages=$(mktemp -d /tmp/switchboard-up-chat.XXXXXX)
chmod 755 "$packages"

# Start `up` and read its stdout until it says it is up (or exits): a ready signal, no sleep.
fifo=$(mktemp -u); mkfifo "$fifo"
env -u LLM_BASE_URL -u LLM_API_KEY -u LLM_MODEL_NAME -u LLM_PROVIDER \
  SANDBOX_PACKAGES_DIR="$packages/site" SANDBOX_WHEEL_DIR="$PWD/$wheels" SANDBOX_OFFLINE=true \
  SANDBOX_PREINSTALL=numpy==2.4.6,matplotlib==3.11.2 SANDBOX_MEMORY_MIB=512 \
  "$bin" up --base-port "$base" --ready-timeout 600 > "$fifo" 2>"$log" &
up_pid=$!
trap 'kill -INT $up_pid 2>/dev/null || true; wait $up_pid 2>/dev/null || true; rm -rf "$fifo" "$packages"' EXIT
exec 3<"$fifo"
ready=0
while IFS= read -r -t 600 line <&3; do
  echo "$line"
  if [[ $line == "switchboard is up"* ]]; then ready=1; break; fi
done
if [ "$ready" != 1 ]; then
  echo "switchboard up did not come up; its log:"; tail -40 "$log"; exit 1
fi

echo "--- switchboard chat"
out=$(SWITCHBOARD_MIDDLEWARE_URL="$middleware" "$bin" chat "Execute: print('Hello') and tell me the time")
echo "$out"
grep -q '^\[tool\] execute_code ' <<<"$out" || { echo "FAIL: no execute_code call shown"; exit 1; }
grep -q '^\[tool\] get_current_time ' <<<"$out" || { echo "FAIL: no get_current_time call shown"; exit 1; }
grep -qx 'Hello' <<<"$out" || { echo "FAIL: the code output 'Hello' is missing"; exit 1; }
grep -q 'The current time in UTC is [0-9]\{4\}-' <<<"$out" || { echo "FAIL: the time is missing"; exit 1; }

echo "--- chat page in headless Chromium"
CHAT_PAGE_MATPLOTLIB=1 node crates/switchboard-e2e/browser/chat-page.test.mjs "$middleware"
