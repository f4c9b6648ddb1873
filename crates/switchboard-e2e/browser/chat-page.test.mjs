// The middleware's chat page in headless Chromium: send a message, see the streamed answer
// and the tool calls with their arguments and results.
//
//   node chat-page.test.mjs http://127.0.0.1:8002
//
// Needs a running system whose gateway offers execute_code and get_current_time (e.g.
// `switchboard up`), Debian's chromium (/usr/bin/chromium, or $CHROMIUM) and playwright-core
// (`npm ci` here). Works with the offline planner and with an LLM alike: it checks what the
// page shows, not who wrote the answer.
import { chromium } from "playwright-core";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const base = (process.argv[2] || process.env.SWITCHBOARD_MIDDLEWARE_URL || "http://127.0.0.1:8002").replace(/\/$/, "");
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const patience = Number(process.env.PATIENCE_MS || 60000);

const failures = [];
function check(ok, what) {
  console.log(`${ok ? "ok  " : "FAIL"} ${what}`);
  if (!ok) failures.push(what);
}

const userDataDir = mkdtempSync(join(tmpdir(), "switchboard-chromium-"));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath,
  headless: true,
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
  ],
});
const problems = [];
try {
  const page = context.pages()[0] || (await context.newPage());
  page.on("console", (m) => { if (m.type() === "error") problems.push(`console: ${m.text()}`); });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));

  await page.goto(`${base}/`);
  check((await page.title()) === "Switchboard chat", "the page loads");
  await page.waitForFunction(() => document.getElementById("status").textContent !== "checking…", null, { timeout: patience });
  const status = await page.textContent("#status");
  check(/tools/.test(status) && !/unreachable/.test(status), `the status line shows the tools: "${status}"`);

  // 1. Code and the time in one message.
  await page.fill("#input", "Execute: print('Hello') and tell me the time");
  await page.click("#send");
  const answer = page.locator('[data-testid="assistant"]').nth(0);
  await answer.locator(".text").waitFor({ timeout: patience });
  await page.waitForSelector('[data-testid="assistant"][data-done]', { timeout: patience });
  check((await answer.getAttribute("data-done")) === "true", "the answer completes without an error");
  const text = await answer.locator(".text").textContent();
  check(text.includes("Hello"), `the answer carries the code output: ${JSON.stringify(text.slice(0, 200))}`);
  check(/\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/.test(text), "the answer carries the current time");

  const cards = answer.locator('[data-testid="tool-call"]');
  const names = await cards.locator(".tool-name").allTextContents();
  check(names.some((n) => n.endsWith("execute_code")) && names.some((n) => n.endsWith("get_current_time")),
    `both tool calls are shown: ${names.join(", ")}`);
  const exec = cards.filter({ has: page.locator(".tool-name", { hasText: "execute_code" }) }).first();
  check((await exec.locator(".tool-args").textContent()).includes("print('Hello')"), "the code call shows its arguments");
  check((await exec.locator(".tool-result").textContent()).includes("Hello"), "the code call shows its result");
  const time = cards.filter({ has: page.locator(".tool-name", { hasText: "get_current_time" }) }).first();
  check(/\d{4}-\d{2}-\d{2}T/.test(await time.locator(".tool-result").textContent()), "the time call shows its result");
  const states = await cards.locator(".tool-state").allTextContents();
  check(states.every((s) => /^done in [\d.]+ ms$/.test(s)), `each call shows how it ended: ${states.join("; ")}`);

  // 2. The conversation goes on in the same page.
  await page.fill("#input", "What time is it in Asia/Tokyo?");
  await page.press("#input", "Enter");
  const second = page.locator('[data-testid="assistant"]').nth(1);
  await second.waitFor({ timeout: patience });
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="assistant"][data-done]').length === 2, null, { timeout: patience });
  check((await second.locator(".text").textContent()).includes("+09:00"), "a second message is answered (Tokyo time)");
  check((await page.locator(".msg.user").count()) === 2, "both user messages stay on the page");
} catch (error) {
  failures.push(`the run stopped: ${error.message}`);
  console.log(`FAIL ${error.message}`);
} finally {
  await context.close();
  rmSync(userDataDir, { recursive: true, force: true });
}
check(problems.length === 0, `no console errors${problems.length ? ": " + problems.join("; ") : ""}`);
if (failures.length) {
  console.log(`\n${failures.length} check(s) failed`);
  process.exit(1);
}
console.log("\nchat page: all checks passed");
