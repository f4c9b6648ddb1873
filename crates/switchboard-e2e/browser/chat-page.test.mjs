// The middleware's chat page in headless Chromium: send a message, see the streamed answer
// and the tool calls with their arguments and results.
//
//   node chat-page.test.mjs http://127.0.0.1:8002
//   CHAT_PAGE_SUITE=render node chat-page.test.mjs http://127.0.0.1:40123
//
// Needs a running system whose gateway offers execute_code and get_current_time (e.g.
// `switchboard up`), Debian's chromium (/usr/bin/chromium, or $CHROMIUM) and playwright-core
// (`npm ci` here). The default suite works with the offline planner and with an LLM alike: it
// checks what the page shows, not who wrote the answer; it also runs a two-step program in
// one conversation (the page's sandbox session) and shows a picture a program drew.
//
// The `render` suite is run by tests/code_interpreter.rs against a middleware whose scripted
// LLM answers in Markdown with hostile HTML in it, then draws a picture, then runs a program
// in two steps: it checks the Markdown rendering, that nothing from the model runs, and the
// image.
import { chromium } from "playwright-core";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const base = (process.argv[2] || process.env.SWITCHBOARD_MIDDLEWARE_URL || "http://127.0.0.1:8002").replace(/\/$/, "");
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const patience = Number(process.env.PATIENCE_MS || 60000);
const suite = process.env.CHAT_PAGE_SUITE || "planner";

// A Python program that writes a 4x3 red PNG to /work/outputs/ (no packages needed).
const PNG_PROGRAM = [
  "import os, struct, zlib",
  "def chunk(kind, data):",
  "    return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff)",
  "rows = b''.join(b'\\x00' + b'\\xff\\x00\\x00' * 4 for _ in range(3))",
  "png = b'\\x89PNG\\r\\n\\x1a\\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', 4, 3, 8, 2, 0, 0, 0)) + chunk(b'IDAT', zlib.compress(rows)) + chunk(b'IEND', b'')",
  "os.makedirs('/work/outputs', exist_ok=True)",
  "open('/work/outputs/red.png', 'wb').write(png)",
  "print('drew red.png')",
].join("\n");

const failures = [];
function check(ok, what) {
  console.log(`${ok ? "ok  " : "FAIL"} ${what}`);
  if (!ok) failures.push(what);
}

// Send `text` and wait until its answer (the n-th, from 0) is complete.
async function send(page, text, n) {
  await page.fill("#input", text);
  await page.click("#send");
  await page.waitForFunction((n) => document.querySelectorAll('[data-testid="assistant"][data-done]').length > n, n, { timeout: patience });
  const answer = page.locator('[data-testid="assistant"]').nth(n);
  check((await answer.getAttribute("data-done")) === "true", `answer ${n + 1} completes without an error`);
  return answer;
}

// Every picture of an answer has loaded and is a real image (its decoded width is not 0).
async function picturesLoaded(answer) {
  const images = answer.locator('[data-testid="tool-image"] img');
  await images.first().waitFor({ timeout: patience });
  return images.evaluateAll((all) => Promise.all(all.map((img) => img.decode().then(
    () => img.naturalWidth, () => 0))));
}

// The README's flow (offline planner or LLM), a program in two steps, a picture.
async function plannerSuite(page) {
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

  // 3. One conversation, one sandbox session: a variable set by one message is there in the next.
  await send(page, "Execute: x = 21", 2);
  const fourth = await send(page, "Execute: print(x * 2)", 3);
  const text42 = await fourth.locator(".text").innerText();
  check(/\b42\b/.test(text42), `the second step sees the first step's variable: ${JSON.stringify(text42.slice(0, 200))}`);

  // 4. A picture the program drew is shown inline.
  const fifth = await send(page, `Execute:\n${PNG_PROGRAM}`, 4);
  const widths = await picturesLoaded(fifth);
  check(widths.length === 1 && widths[0] === 4, `the drawn PNG is shown (natural widths ${widths})`);

  // 5. A matplotlib chart, in the session (the data from one message, the plot in the next),
  // through middleware, gateway, code-executor and sandbox. up-chat.sh preinstalls numpy and
  // matplotlib from the pinned wheels (CHAT_PAGE_MATPLOTLIB=1).
  if (process.env.CHAT_PAGE_MATPLOTLIB === "1") {
    await send(page, "Execute: squares = [n * n for n in range(10)]", 5);
    const chart = await send(page, "Execute:\nimport matplotlib.pyplot as plt\nplt.plot(squares)\nplt.title('squares')\nplt.show()", 6);
    const chartWidths = await picturesLoaded(chart);
    // matplotlib's default figure: 6.4 x 4.8 inches at 100 dpi.
    check(chartWidths.length === 1 && chartWidths[0] === 640, `the matplotlib chart is shown (natural widths ${chartWidths})`);
  }

  // 6. A long execution runs as an MCP task: its card shows the task's status while it runs,
  // then how it ended.
  const n = await page.locator('[data-testid="assistant"]').count();
  await page.fill("#input", "Execute: import time\ntime.sleep(3)\nprint('slept')");
  await page.click("#send");
  const long = page.locator('[data-testid="assistant"]').nth(n);
  const card = long.locator('[data-testid="tool-call"]').first();
  await card.locator(".tool-state", { hasText: /^working/ }).waitFor({ timeout: patience });
  const running = await card.locator(".tool-state").textContent();
  check(/^working(: .+)? · [\d.]+ s$/.test(running) && !!(await card.getAttribute("data-task")),
    `a long execution shows its task's status while it runs: ${JSON.stringify(running)}`);
  await page.waitForFunction((n) => document.querySelectorAll('[data-testid="assistant"][data-done]').length > n, n, { timeout: patience });
  const ended = await card.locator(".tool-state").textContent();
  check(/^done in [\d.]+ ms$/.test(ended) && (await card.locator(".tool-result").textContent()).includes("slept"),
    `then how it ended: ${JSON.stringify(ended)}`);
}

// Markdown as people expect it, nothing from the model runs, pictures, sessions (scripted LLM).
async function renderSuite(page) {
  const first = await send(page, "Show me some Markdown", 0);
  const text = first.locator(".text");
  check((await text.locator("pre > code").count()) === 1, "a fenced code block is a <pre><code>");
  check((await text.locator("pre > code").textContent()).includes("print('fenced')"), "the code block keeps its code");
  check((await text.locator("ul > li").count()) === 2, "a list is a <ul> with its items");
  check((await text.locator("table th").count()) === 2 && (await text.locator("table td").count()) === 4, "a table is a <table>");
  check((await text.locator("h2").textContent()) === "Results", "a heading is a heading");
  check((await text.locator("strong").first().textContent()) === "bold", "emphasis is rendered");
  check((await text.locator("p code").first().textContent()) === "x = 1", "inline code is <code>");
  const content = await text.textContent();
  check(content.includes("<script>window.__owned = 1</script>"), "a <script> tag shows as text");
  check(content.includes("<img src=x onerror=\"window.__owned = 2\">"), "an <img onerror> shows as text");
  check((await text.locator("script, img, iframe").count()) === 0, "no element from the model's text reaches the DOM");
  check((await page.evaluate(() => window.__owned)) === undefined, "nothing from the model's text ran");
  const links = await text.locator("a").evaluateAll((all) => all.map((a) => ({ href: a.getAttribute("href"), rel: a.rel, target: a.target, text: a.textContent })));
  check(links.length === 1 && links[0].href === "https://example.com/docs" && links[0].rel === "noopener noreferrer" && links[0].target === "_blank",
    `only the https link is a link, opening safely: ${JSON.stringify(links)}`);
  check(content.includes("click me") && !links.some((l) => /^javascript:/i.test(l.href || "")), "a javascript: link is plain text");

  const second = await send(page, "Draw a red picture", 1);
  const widths = await picturesLoaded(second);
  check(widths.length === 1 && widths[0] === 4, `the tool's PNG is an <img> that decoded (natural widths ${widths})`);
  check((await second.locator(".text strong").textContent()) === "the picture", "the answer after a tool call is Markdown too");

  await send(page, "Set x to 21", 2);
  const fourth = await send(page, "Now print x * 2", 3);
  const text42 = await fourth.locator(".text").innerText();
  check(/\b42\b/.test(text42), `the page's conversation keeps one sandbox session: ${JSON.stringify(text42.slice(0, 300))}`);
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
  if (suite === "render") await renderSuite(page);
  else await plannerSuite(page);
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
