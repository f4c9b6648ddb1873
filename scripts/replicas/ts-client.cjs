// The official TypeScript SDK (@modelcontextprotocol/sdk 1.x, protocol 2025-11-25 with a
// session) as one client of scripts/replicas-haproxy.sh: one session for the whole run, calls
// in a loop until STOP_FILE exists, then one JSON report on stdout.
//
//   NODE_PATH=<dir>/node_modules node ts-client.cjs URL STOP_FILE CALLS_FILE
//
// Each call is appended to CALLS_FILE as it ends, one JSON line with its start and end (ms
// since the epoch) and its error, so the script can follow the run and tell calls in flight
// when a gateway was killed from any other failure. Every
// second call is the everything server's long-running operation with a progress token.
'use strict';
const fs = require('fs');
const { Client } = require('@modelcontextprotocol/sdk/client/index.js');
const { StreamableHTTPClientTransport } = require('@modelcontextprotocol/sdk/client/streamableHttp.js');
const { ToolListChangedNotificationSchema } = require('@modelcontextprotocol/sdk/types.js');

async function main() {
  const [url, stopFile, callsFile] = process.argv.slice(2);
  const transport = new StreamableHTTPClientTransport(new URL(url));
  const client = new Client({ name: 'switchboard-replicas-ts', version: '1.0.0' });
  let listChanged = 0;
  client.setNotificationHandler(ToolListChangedNotificationSchema, async () => {
    listChanged += 1;
  });
  await client.connect(transport);
  const session = transport.sessionId;
  const protocol = transport.protocolVersion;
  let calls = 0;
  const record = (call) => {
    calls += 1;
    fs.appendFileSync(callsFile, JSON.stringify(call) + '\n');
  };
  let progress = 0;
  for (let i = 0; !fs.existsSync(stopFile); i++) {
    const start = Date.now();
    const slow = i % 2 === 1;
    try {
      const result = slow
        ? await client.callTool(
            { name: 'trigger-long-running-operation', arguments: { duration: 0.5, steps: 2 } },
            undefined,
            { onprogress: () => { progress += 1; }, timeout: 10000 },
          )
        : await client.callTool({ name: 'get_current_time', arguments: { timezone: 'UTC' } }, undefined, { timeout: 10000 });
      record({ start, end: Date.now(), ok: !result.isError, error: result.isError ? JSON.stringify(result.content) : null });
    } catch (error) {
      record({ start, end: Date.now(), ok: false, error: String(error && error.message) });
    }
  }
  const report = {
    client: 'typescript',
    protocol,
    session_at_start: session,
    session_at_end: transport.sessionId,
    progress_notifications: progress,
    list_changed: listChanged,
    calls,
    calls_file: callsFile,
  };
  process.stdout.write(JSON.stringify(report) + '\n');
  await client.close();
}

main().catch((error) => {
  process.stderr.write(`${error && error.stack}\n`);
  process.exit(1);
});
