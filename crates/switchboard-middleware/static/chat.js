// Switchboard chat page: POST /chat with stream: true and render the typed SSE events.
// Plain JavaScript, no build step; every piece of server text goes in with textContent (the
// answer through renderMarkdown in markdown.js, which builds DOM nodes, never HTML).
//
// The page is one conversation (a random conversation_id sent with every message), so the
// code it runs shares one sandbox session; "New" and leaving the page end it.
"use strict";

const log = document.getElementById("log");
const form = document.getElementById("form");
const input = document.getElementById("input");
const send = document.getElementById("send");
const statusLine = document.getElementById("status");
const history = [];
let conversationId = newConversationId();

// Random, from getRandomValues (crypto.randomUUID needs a secure context; http://host does not).
function newConversationId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return "page-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// Tell the middleware the conversation is over (its sandbox session can go). Best effort:
// `keepalive` lets the request outlive the page.
function endConversation() {
  fetch(`/conversations/${conversationId}`, { method: "DELETE", keepalive: true }).catch(() => {});
}

// Pictures are shown only as data: URLs of these types with plain base64 content; an <img>
// runs no script, SVG included.
const IMAGE_TYPES = new Set(["image/png", "image/jpeg", "image/gif", "image/webp", "image/svg+xml"]);
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const MAX_IMAGE_BASE64 = 16 * 1024 * 1024;

function showImages(view, images) {
  for (const image of images || []) {
    const mime = String(image.mime_type || "").toLowerCase();
    const data = String(image.data || "");
    if (!IMAGE_TYPES.has(mime) || data.length > MAX_IMAGE_BASE64 || !BASE64.test(data)) continue;
    const figure = el("figure", "tool-image");
    figure.dataset.testid = "tool-image";
    const img = el("img");
    img.alt = String(image.name || "image");
    img.src = `data:${mime};base64,${data}`;
    figure.append(img, el("figcaption", "", img.alt));
    view.images.append(figure);
  }
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function pretty(value) {
  if (typeof value === "string") {
    try { return JSON.stringify(JSON.parse(value), null, 2); } catch (_) { return value; }
  }
  return JSON.stringify(value, null, 2);
}

function scrollDown() { log.scrollTop = log.scrollHeight; }

async function refreshStatus() {
  try {
    const health = await (await fetch("/health")).json();
    const deps = health.dependencies || {};
    const gateway = deps.gateway || {};
    const llm = deps.llm || {};
    const tools = gateway.ready ? `${(gateway.detail.tools || []).length} tools` : "gateway unreachable";
    const mode = llm.detail && llm.detail.mode === "llm"
      ? `LLM ${llm.detail.model}${llm.ready ? "" : " (unreachable)"}`
      : "offline planner (no LLM configured)";
    statusLine.textContent = `${mode} · ${tools}`;
  } catch (e) {
    statusLine.textContent = "middleware unreachable";
  }
}

function addUser(text) {
  log.append(el("div", "msg user", text));
  scrollDown();
}

function addAssistant() {
  const box = el("div", "msg assistant");
  box.dataset.testid = "assistant";
  const tools = el("div", "tools");
  const text = el("div", "text markdown");
  const images = el("div", "images");
  const meta = el("div", "meta");
  box.append(tools, text, images, meta);
  log.append(box);
  return { box, tools, text, images, meta, calls: new Map(), pending: 0 };
}

// Render the answer as Markdown, at most once per frame while it streams in.
function showAnswer(view, answer, now) {
  view.answer = answer;
  if (now) { cancelAnimationFrame(view.pending); renderMarkdown(answer, view.text); return; }
  if (view.pending) return;
  view.pending = requestAnimationFrame(() => {
    view.pending = 0;
    renderMarkdown(view.answer, view.text);
    scrollDown();
  });
}

function toolStarted(view, ev) {
  const card = el("details", "tool-call");
  card.dataset.testid = "tool-call";
  const summary = el("summary");
  summary.append(el("span", "tool-name", ev.name), el("span", "tool-state", "running…"));
  card.append(summary, el("div", "label", "arguments"), el("pre", "tool-args", pretty(ev.arguments)));
  view.tools.append(card);
  view.calls.set(ev.id, card);
  scrollDown();
}

// A code tool running as an MCP task: its status while it runs (text only, never HTML).
function toolProgress(view, ev) {
  const card = view.calls.get(ev.id);
  if (!card) return;
  const seconds = (ev.elapsed_ms / 1000).toFixed(1);
  card.querySelector(".tool-state").textContent =
    `${ev.status}${ev.message ? `: ${ev.message}` : ""} · ${seconds} s`;
  card.dataset.task = ev.task_id;
}

function toolFinished(view, ev) {
  let card = view.calls.get(ev.id);
  if (!card) { toolStarted(view, ev); card = view.calls.get(ev.id); }
  card.querySelector(".tool-state").textContent =
    `${ev.is_error ? "failed" : "done"} in ${ev.duration_ms.toFixed(1)} ms`;
  if (ev.is_error) card.classList.add("failed");
  card.append(el("div", "label", "result"), el("pre", "tool-result", ev.result));
  if ((ev.images || []).length) card.append(el("div", "label", `${ev.images.length} picture(s), shown below the answer`));
  showImages(view, ev.images);
  card.open = true;
  scrollDown();
}

// Parse an SSE byte stream into {event, data} records.
async function* sseEvents(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) yield { event, data: data.join("\n") };
    }
  }
}

async function ask(text) {
  history.push({ role: "user", content: text });
  addUser(text);
  const view = addAssistant();
  view.meta.textContent = "thinking…";
  let answer = "";
  try {
    const response = await fetch("/chat", {
      method: "POST",
      headers: { "content-type": "application/json", "accept": "text/event-stream" },
      body: JSON.stringify({ messages: history, stream: true, conversation_id: conversationId }),
    });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      throw new Error((body.error && body.error.message) || `HTTP ${response.status}`);
    }
    for await (const { event, data } of sseEvents(response)) {
      const ev = JSON.parse(data);
      if (event === "text") { answer += ev.delta; showAnswer(view, answer, false); }
      else if (event === "tool_call_started") toolStarted(view, ev);
      else if (event === "tool_call_progress") toolProgress(view, ev);
      else if (event === "tool_call_finished") toolFinished(view, ev);
      else if (event === "done") {
        answer = ev.response;
        showAnswer(view, answer, true);
        const source = ev.source === "offline_planner" ? "offline planner" : ev.model;
        const tokens = ev.usage.total_tokens ? ` · ${ev.usage.total_tokens} tokens` : "";
        const warn = (ev.warnings || []).length ? ` · ${ev.warnings.join("; ")}` : "";
        view.meta.textContent = `${source} · ${ev.tool_calls.length} tool call(s)${tokens}${warn}`;
        view.box.dataset.done = "true";
      } else if (event === "error") {
        throw new Error(ev.message);
      }
    }
    history.push({ role: "assistant", content: answer });
  } catch (e) {
    view.box.classList.add("error");
    cancelAnimationFrame(view.pending);
    view.text.textContent = `Error: ${e.message}`;
    view.meta.textContent = "";
    view.box.dataset.done = "error";
    history.pop();
  }
  scrollDown();
}

form.addEventListener("submit", async (e) => {
  e.preventDefault();
  const text = input.value.trim();
  if (!text || send.disabled) return;
  input.value = "";
  send.disabled = true;
  try { await ask(text); } finally { send.disabled = false; input.focus(); }
});

input.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); form.requestSubmit(); }
});

document.getElementById("clear").addEventListener("click", () => {
  endConversation();
  conversationId = newConversationId();
  history.length = 0;
  log.replaceChildren();
  input.focus();
});

window.addEventListener("pagehide", endConversation);

refreshStatus();
