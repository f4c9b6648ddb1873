// A small Markdown renderer for the chat page: fenced code, headings, lists, tables, block
// quotes, rules, paragraphs; inline code, emphasis, strike-through and links.
//
// Safety: it builds DOM nodes only (createElement, textContent). No string from the model or a
// tool is ever parsed as HTML, so `<script>` or `<img onerror>` in an answer shows as text.
// Links are made only for absolute http(s) and mailto URLs, and open in a new tab without
// access to this page (rel="noopener noreferrer"); anything else (javascript:, data:,
// relative paths) stays plain text. It is bounded: text over MD_MAX_CHARS is shown as plain
// text, and nesting (quotes, lists, emphasis) stops at MD_MAX_DEPTH.
"use strict";

const MD_MAX_CHARS = 200000;
const MD_MAX_DEPTH = 6;

const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([^`\s]*)[^`]*$/;
const HEADING = /^ {0,3}(#{1,6})(?:\s+(.*?))?(?:\s+#+)?\s*$/;
const RULE = /^ {0,3}([-*_])(?:\s*\1){2,}\s*$/;
const QUOTE = /^ {0,3}>\s?(.*)$/;
const ITEM = /^(\s*)([-*+]|\d{1,9}[.)])\s+(.*)$/;
const TABLE_DELIMITER = /^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$/;

function mdEl(tag, text) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  return node;
}

// The URL to link to, or null when `raw` is not an absolute http(s) or mailto URL.
function safeHref(raw) {
  const text = raw.trim();
  if (!/^(https?:\/\/|mailto:)/i.test(text)) return null;
  try {
    const url = new URL(text);
    return ["http:", "https:", "mailto:"].includes(url.protocol) ? url.href : null;
  } catch (_) {
    return null;
  }
}

// A link to `href` (already checked by safeHref) showing `label`: Markdown, or plain text.
function link(href, label, depth, plainLabel) {
  const a = mdEl("a");
  a.href = href;
  a.target = "_blank";
  a.rel = "noopener noreferrer";
  if (plainLabel) a.textContent = label;
  else renderInline(label, a, depth + 1, true);
  return a;
}

// The index of the `)` that ends a link destination starting at `from` (parentheses inside it
// balanced, as in `alert(1)`), or -1.
function destinationEnd(text, from) {
  let open = 0;
  for (let i = from; i < text.length && i < from + 2048; i++) {
    const c = text[i];
    if (c === "\n") return -1;
    if (c === "(") open++;
    else if (c === ")") { if (open === 0) return i; open--; }
  }
  return -1;
}

// The index of the `close` that ends an inline span opened before `from`, or -1.
function closing(text, close, from) {
  for (let i = from; i <= text.length - close.length; i++) {
    if (text[i] === "\\") { i++; continue; }
    if (text.startsWith(close, i)) return i;
  }
  return -1;
}

const EMPHASIS = [["**", "strong"], ["__", "strong"], ["~~", "del"], ["*", "em"], ["_", "em"]];

// Render inline Markdown of `text` into `parent`; `inLink`: no links inside (a link's label).
function renderInline(text, parent, depth, inLink) {
  if (depth > MD_MAX_DEPTH) { parent.append(text); return; }
  let plain = "";
  const flush = () => { if (plain) { parent.append(plain); plain = ""; } };
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === "\\" && i + 1 < text.length && /[!-\/:-@\[-`{-~]/.test(text[i + 1])) {
      plain += text[i + 1]; i += 2; continue;
    }
    if (c === "\n") { flush(); parent.append(mdEl("br")); i++; continue; }
    if (c === "`") {
      let ticks = 1;
      while (text[i + ticks] === "`") ticks++;
      const end = text.indexOf("`".repeat(ticks), i + ticks);
      if (end > 0) {
        flush();
        parent.append(mdEl("code", text.slice(i + ticks, end).replace(/^ (.*) $/s, "$1")));
        i = end + ticks; continue;
      }
      plain += "`".repeat(ticks); i += ticks; continue;
    }
    if (c === "[") {
      const close = closing(text, "](", i + 1);
      const end = close >= 0 ? destinationEnd(text, close + 2) : -1;
      if (end > 0 && !/[\]\n]/.test(text.slice(i + 1, close))) {
        const label = text.slice(i + 1, close);
        const href = safeHref(text.slice(close + 2, end));
        flush();
        if (href && !inLink) parent.append(link(href, label, depth, false));
        else renderInline(label, parent, depth + 1, inLink);
        i = end + 1; continue;
      }
    }
    const auto = /^https?:\/\/[^\s<>()\[\]]+[^\s<>()\[\].,;:!?'"]/.exec(text.slice(i, i + 2048));
    if (auto && !inLink && (i === 0 || /[\s(]/.test(text[i - 1]))) {
      const href = safeHref(auto[0]);
      if (href) { flush(); parent.append(link(href, auto[0], depth, true)); i += auto[0].length; continue; }
    }
    const emphasis = EMPHASIS.find(([mark]) => text.startsWith(mark, i));
    if (emphasis) {
      const [mark, tag] = emphasis;
      const after = text[i + mark.length];
      // `_` inside a word (snake_case) is not emphasis; an opener must touch its text.
      const wordBefore = i > 0 && /\w/.test(text[i - 1]);
      const opens = after !== undefined && !/\s/.test(after) && !(mark[0] === "_" && wordBefore);
      const end = opens ? closing(text, mark, i + mark.length + 1) : -1;
      const endOk = end > 0 && !/\s/.test(text[end - 1])
        && !(mark[0] === "_" && /\w/.test(text[end + mark.length] || ""));
      if (endOk) {
        flush();
        const node = mdEl(tag);
        renderInline(text.slice(i + mark.length, end), node, depth + 1, inLink);
        parent.append(node);
        i = end + mark.length; continue;
      }
      plain += mark; i += mark.length; continue;
    }
    plain += c; i++;
  }
  flush();
}

// The cells of a table row: split on `|` outside code spans, `\|` kept as a bar.
function cells(line) {
  let row = line.trim();
  if (row.startsWith("|")) row = row.slice(1);
  if (row.endsWith("|") && !row.endsWith("\\|")) row = row.slice(0, -1);
  const out = [];
  let cell = "", code = false;
  for (let i = 0; i < row.length; i++) {
    const c = row[i];
    if (c === "\\" && row[i + 1] === "|") { cell += "|"; i++; continue; }
    if (c === "`") code = !code;
    if (c === "|" && !code) { out.push(cell.trim()); cell = ""; continue; }
    cell += c;
  }
  out.push(cell.trim());
  return out;
}

function startsBlock(lines, i) {
  const line = lines[i];
  return FENCE.test(line) || HEADING.test(line) || RULE.test(line) || QUOTE.test(line)
    || ITEM.test(line) || (line.includes("|") && i + 1 < lines.length && TABLE_DELIMITER.test(lines[i + 1]));
}

function renderTable(lines, i, parent, depth) {
  const head = cells(lines[i]);
  const aligns = cells(lines[i + 1]).map((d) =>
    d.startsWith(":") && d.endsWith(":") ? "center" : d.endsWith(":") ? "right" : d.startsWith(":") ? "left" : "");
  const table = mdEl("table");
  const row = (values, tag) => {
    const tr = mdEl("tr");
    head.forEach((_, n) => {
      const cell = mdEl(tag);
      if (aligns[n]) cell.style.textAlign = aligns[n];
      renderInline(values[n] || "", cell, depth + 1);
      tr.append(cell);
    });
    return tr;
  };
  const thead = mdEl("thead");
  thead.append(row(head, "th"));
  const tbody = mdEl("tbody");
  i += 2;
  while (i < lines.length && lines[i].trim() && lines[i].includes("|")) {
    tbody.append(row(cells(lines[i]), "td"));
    i++;
  }
  table.append(thead, tbody);
  parent.append(table);
  return i;
}

function renderList(lines, i, parent, depth) {
  const first = ITEM.exec(lines[i]);
  const indent = first[1].length;
  const ordered = /\d/.test(first[2]);
  const list = mdEl(ordered ? "ol" : "ul");
  if (ordered && parseInt(first[2], 10) !== 1) list.start = parseInt(first[2], 10);
  while (i < lines.length) {
    const item = ITEM.exec(lines[i]);
    if (!item || item[1].length !== indent || /\d/.test(item[2]) !== ordered) break;
    const body = [item[3]];
    i++;
    // Lines indented past the marker, or text right below, belong to the item.
    while (i < lines.length) {
      const line = lines[i];
      const lead = line.length - line.trimStart().length;
      if (!line.trim()) {
        if (i + 1 < lines.length && lines[i + 1].trim() && lines[i + 1].length - lines[i + 1].trimStart().length > indent) {
          body.push(""); i++; continue;
        }
        break;
      }
      if (lead > indent) { body.push(line.slice(Math.min(lead, indent + 2))); i++; continue; }
      if (ITEM.test(line) || startsBlock(lines, i)) break;
      body.push(line); i++;
    }
    const li = mdEl("li");
    renderBlocks(body.join("\n"), li, depth + 1);
    // A one-paragraph item shows its text without paragraph spacing.
    if (li.childNodes.length === 1 && li.firstChild.tagName === "P") li.replaceChildren(...li.firstChild.childNodes);
    list.append(li);
    while (i < lines.length && !lines[i].trim() && i + 1 < lines.length && ITEM.test(lines[i + 1])) i++;
  }
  parent.append(list);
  return i;
}

// Render block-level Markdown of `text` into `parent`.
function renderBlocks(text, parent, depth) {
  if (depth > MD_MAX_DEPTH) { parent.append(mdEl("p", text)); return; }
  const lines = text.split("\n");
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (!line.trim()) { i++; continue; }
    let m;
    if ((m = FENCE.exec(line))) {
      const mark = m[1];
      const code = [];
      i++;
      while (i < lines.length && !(lines[i].trim().startsWith(mark[0].repeat(mark.length)) && /^ {0,3}(`{3,}|~{3,})\s*$/.test(lines[i]))) {
        code.push(lines[i]); i++;
      }
      i++; // the closing fence (or the end of a text still streaming in)
      const pre = mdEl("pre");
      const node = mdEl("code", code.join("\n"));
      const language = m[2].replace(/[^\w+#.-]/g, "");
      if (language) node.className = `language-${language}`;
      pre.append(node);
      parent.append(pre);
      continue;
    }
    if ((m = HEADING.exec(line))) {
      const h = mdEl(`h${m[1].length}`);
      renderInline(m[2] || "", h, depth + 1);
      parent.append(h);
      i++; continue;
    }
    if (RULE.test(line)) { parent.append(mdEl("hr")); i++; continue; }
    if (line.includes("|") && i + 1 < lines.length && TABLE_DELIMITER.test(lines[i + 1])) {
      i = renderTable(lines, i, parent, depth); continue;
    }
    if (QUOTE.test(line)) {
      const quoted = [];
      while (i < lines.length && (m = QUOTE.exec(lines[i]))) { quoted.push(m[1]); i++; }
      const quote = mdEl("blockquote");
      renderBlocks(quoted.join("\n"), quote, depth + 1);
      parent.append(quote);
      continue;
    }
    if (ITEM.test(line)) { i = renderList(lines, i, parent, depth); continue; }
    const paragraph = [line.trim()];
    i++;
    while (i < lines.length && lines[i].trim() && !startsBlock(lines, i)) { paragraph.push(lines[i].trim()); i++; }
    const p = mdEl("p");
    renderInline(paragraph.join("\n"), p, depth + 1);
    parent.append(p);
  }
}

// Replace the content of `target` with `source` rendered as Markdown.
function renderMarkdown(source, target) {
  const text = String(source).replace(/\r\n?/g, "\n");
  if (text.length > MD_MAX_CHARS) {
    const plain = mdEl("p", text);
    plain.className = "plain";
    target.replaceChildren(plain);
    return;
  }
  const fragment = document.createDocumentFragment();
  renderBlocks(text, fragment, 0);
  target.replaceChildren(fragment);
}
