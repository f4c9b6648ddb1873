//! The offline planner: answers explicit requests when no LLM is configured, so the system
//! works out of the box.
//!
//! It understands two things in the last user message:
//! - code to run: every fenced block (```` ```python ... ``` ````), or else the code after
//!   `Execute:` / `Run:` — on the same line up to a trailing request such as "and tell me the
//!   time", or the lines below when the marker ends its line;
//! - a question about the time: the words *time*, *clock*, *date* or *today* outside the
//!   code, with IANA zones (`Europe/Berlin`), `UTC`, or cities that name a zone ("Tokyo",
//!   "New York" → `America/New_York`) in the message.
//!
//! Everything it finds runs concurrently through the same dispatcher as LLM tool calls. Every
//! answer starts by saying it came from the offline planner and ends with how to configure
//! a real LLM.

use std::time::Instant;

use serde_json::{Value, json};
use switchboard_protocol::sandbox::ExecutionResult;

use crate::gateway::User;
use crate::{
    conversation::current_catalog,
    dispatch,
    events::{ChatAnswer, ChatEvent, EventSink, Source, ToolCallRecord},
    llm::{Message, Role, ToolCall, Usage},
    state::Shared,
};

/// The model name the planner reports.
pub const MODEL: &str = "offline-planner";

/// How to leave the planner behind; ends every planner answer.
pub const CONFIGURE_HINT: &str = "To have a real LLM answer, set LLM_BASE_URL and LLM_MODEL_NAME (plus LLM_API_KEY if the API needs one) and restart, e.g. LLM_BASE_URL=http://localhost:11434/v1 LLM_MODEL_NAME=llama3.1 for Ollama, or LLM_BASE_URL=https://api.openai.com/v1 LLM_MODEL_NAME=gpt-4o-mini LLM_API_KEY=sk-... for OpenAI.";

/// What the planner found in a message.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Programs to run, in order of appearance.
    pub code: Vec<String>,
    /// `Some(zones)` when the time was asked for; an empty list means the default zone.
    pub time_zones: Option<Vec<String>>,
}

/// Words that start a request in plain language after the code ("... and tell me the time").
const REQUEST_WORDS: &[&str] = &[
    "tell", "what", "what's", "whats", "show", "give", "also", "please", "let", "check", "report",
    "display", "when", "then", "get", "and",
];

/// Read a message.
pub fn plan(message: &str) -> Plan {
    let (code, prose) = extract_code(message);
    let words: Vec<String> = prose
        .split(|c: char| !(c.is_alphanumeric() || c == '/' || c == '_' || c == '-' || c == '\''))
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect();
    let asks_time = words.iter().any(|w| {
        matches!(
            w.to_lowercase().trim_matches('\''),
            "time" | "clock" | "date" | "today"
        )
    });
    let time_zones = asks_time.then(|| {
        let mut zones: Vec<String> = Vec::new();
        for word in &words {
            let w = word.trim_matches(|c: char| c == '\'' || c == '-');
            let is_zone = (w.contains('/')
                && w.split('/')
                    .all(|p| p.starts_with(|c: char| c.is_ascii_uppercase())))
                || w == "UTC"
                || w == "GMT";
            if is_zone && !zones.iter().any(|z| z == w) {
                zones.push(w.to_owned());
            }
        }
        for zone in zones_named_by_city(&words) {
            if !zones.contains(&zone) {
                zones.push(zone);
            }
        }
        zones
    });
    Plan { code, time_zones }
}

/// The regions whose zones are named after cities (`Etc/...`, `SystemV/...` and aliases such
/// as `US/Pacific` are left out).
const CITY_REGIONS: &[&str] = &[
    "Africa",
    "America",
    "Antarctica",
    "Asia",
    "Atlantic",
    "Australia",
    "Europe",
    "Indian",
    "Pacific",
];

/// City name (lower case, `_` as a space) to IANA zone, from the time-zone database compiled
/// into the binary: "tokyo" → `Asia/Tokyo`, "new york" → `America/New_York`.
fn city_zones() -> &'static std::collections::HashMap<String, String> {
    static CITIES: std::sync::OnceLock<std::collections::HashMap<String, String>> =
        std::sync::OnceLock::new();
    CITIES.get_or_init(|| {
        let mut names: Vec<String> = jiff::tz::db()
            .available()
            .map(|n| n.as_str().to_owned())
            .filter(|n| CITY_REGIONS.iter().any(|r| n.starts_with(&format!("{r}/"))))
            .collect();
        names.sort();
        let mut map = std::collections::HashMap::new();
        for name in names {
            if let Some(city) = name.rsplit('/').next() {
                map.entry(city.replace('_', " ").to_lowercase())
                    .or_insert(name.clone());
            }
        }
        map
    })
}

/// Zones named by a capitalised city in `words` (longest match first, up to three words).
fn zones_named_by_city(words: &[String]) -> Vec<String> {
    let cities = city_zones();
    let mut found = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let starts_upper = words[i].starts_with(|c: char| c.is_uppercase());
        let matched = (1..=3).rev().find_map(|n| {
            let window = words.get(i..i + n)?;
            let key = window.join(" ").to_lowercase();
            cities.get(&key).map(|zone| (n, zone.clone()))
        });
        match matched {
            Some((n, zone)) if starts_upper => {
                found.push(zone);
                i += n;
            }
            _ => i += 1,
        }
    }
    found
}

/// Split a message into the programs in it and the rest.
fn extract_code(message: &str) -> (Vec<String>, String) {
    let fenced: Vec<&str> = message.split("```").collect();
    if fenced.len() >= 3 {
        let mut code = Vec::new();
        let mut prose = String::new();
        for (i, part) in fenced.iter().enumerate() {
            if i % 2 == 1 && i + 1 < fenced.len() {
                // Drop a language tag on the opening line (```python).
                let body = match part.split_once('\n') {
                    Some((tag, rest)) if !tag.trim().contains(' ') => rest,
                    _ => part,
                };
                if !body.trim().is_empty() {
                    code.push(body.trim_matches('\n').to_owned());
                }
            } else {
                prose.push_str(part);
                prose.push(' ');
            }
        }
        return (code, prose);
    }
    let lower = message.to_ascii_lowercase();
    let marker = ["execute:", "run:"]
        .iter()
        .filter_map(|m| lower.find(m).map(|at| (at, m.len())))
        .min();
    let Some((at, len)) = marker else {
        return (Vec::new(), message.to_owned());
    };
    let before = &message[..at];
    let after = &message[at + len..];
    let (line, below) = after.split_once('\n').unwrap_or((after, ""));
    if line.trim().is_empty() {
        let code = below.trim_matches('\n').to_owned();
        return (
            if code.trim().is_empty() {
                Vec::new()
            } else {
                vec![code]
            },
            before.to_owned(),
        );
    }
    let line = line.trim();
    // Inline code in backticks: `print(1)` and tell me the time.
    if let Some(rest) = line.strip_prefix('`')
        && let Some((code, tail)) = rest.split_once('`')
    {
        return (vec![code.to_owned()], format!("{before} {tail} {below}"));
    }
    let cut = request_start(line).unwrap_or(line.len());
    let code = line[..cut]
        .trim()
        .trim_end_matches(['.', ','])
        .trim_end()
        .to_owned();
    let prose = format!("{before} {} {below}", &line[cut..]);
    (
        if code.is_empty() {
            Vec::new()
        } else {
            vec![code]
        },
        prose,
    )
}

/// Where plain language starts after code on one line: at a conjunction or comma outside
/// strings and brackets that is followed by a request word.
fn request_start(line: &str) -> Option<usize> {
    let bytes = line.as_bytes();
    let mut depth = 0i32;
    let mut quote: Option<u8> = None;
    let mut escaped = false;
    for (i, &b) in bytes.iter().enumerate() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == q {
                quote = None;
            }
            continue;
        }
        match b {
            b'\'' | b'"' => quote = Some(b),
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth -= 1,
            b' ' | b',' | b';' if depth <= 0 => {
                let rest = &line[i..];
                let mut words = rest
                    .split(|c: char| c.is_whitespace() || c == ',' || c == ';')
                    .filter(|w| !w.is_empty());
                let first = words.next().map(str::to_ascii_lowercase);
                let second = words.next().map(str::to_ascii_lowercase);
                let is_request = match first.as_deref() {
                    Some("and" | "then" | "also" | "plus") => second
                        .as_deref()
                        .is_some_and(|w| REQUEST_WORDS.contains(&w) || w == "the" || w == "me"),
                    Some(w) if b != b' ' => REQUEST_WORDS.contains(&w),
                    _ => false,
                };
                if is_request {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Answer the conversation's last user message with the planner.
pub async fn run(
    state: &Shared,
    messages: &[Message],
    events: &EventSink,
    user: User<'_>,
) -> ChatAnswer {
    let clock = Instant::now();
    let last = messages
        .iter()
        .rev()
        .find(|m| m.role == Role::User)
        .map_or("", |m| m.content.as_str());
    let plan = plan(last);
    let mut answer = ChatAnswer {
        response: String::new(),
        tool_calls: Vec::new(),
        usage: Usage::default(),
        model: MODEL.to_owned(),
        source: Source::OfflinePlanner,
        llm_requests: 0,
        warnings: Vec::new(),
    };
    let mut lines = vec!["Offline planner (no LLM is configured).".to_owned()];
    if plan.code.is_empty() && plan.time_zones.is_none() {
        lines.push("I can run Python code — put it in a ```python fenced block or after \"Execute:\" or \"Run:\" — and tell the time (ask \"what time is it?\", optionally naming a zone such as Europe/Berlin). I found neither in your message.".to_owned());
    } else {
        let (catalog, warnings) = current_catalog(state, user).await;
        answer.warnings = warnings;
        let mut calls = Vec::new();
        let mut missing = Vec::new();
        let mut add = |base: &str, arguments: Value| match catalog.find_by_base_name(base) {
            Some(entry) => calls.push(ToolCall {
                id: format!("planner_{}", calls.len()),
                name: entry.llm_name.clone(),
                arguments: arguments.to_string(),
            }),
            None => missing.push(base.to_owned()),
        };
        for code in &plan.code {
            add("execute_code", json!({ "code": code }));
        }
        match plan.time_zones.as_deref() {
            Some([]) => add("get_current_time", json!({})),
            Some(zones) => zones
                .iter()
                .for_each(|z| add("get_current_time", json!({ "timezone": z }))),
            None => {}
        }
        let records = dispatch::run_calls(state, &catalog, &calls, clock, events, user).await;
        lines.extend(records.iter().map(describe));
        missing.dedup();
        for base in missing {
            lines.push(format!(
                "I could not use {base}: the gateway at {} offers no such tool right now{}.",
                state.gateway.url(),
                answer
                    .warnings
                    .first()
                    .map(|w| format!(" ({w})"))
                    .unwrap_or_default()
            ));
        }
        answer.tool_calls = records;
    }
    lines.push(CONFIGURE_HINT.to_owned());
    answer.response = lines.join("\n\n");
    events.emit(ChatEvent::Text {
        delta: answer.response.clone(),
    });
    answer
}

/// One sentence (and block) per tool call.
fn describe(record: &ToolCallRecord) -> String {
    let base = record
        .name
        .rsplit(['.', '/', ':'])
        .next()
        .unwrap_or(&record.name);
    if base.ends_with("execute_code") {
        let run = record
            .structured_content
            .clone()
            .and_then(|v| serde_json::from_value::<ExecutionResult>(v).ok());
        return match run {
            Some(run) => {
                let mut text = format!("Code output:\n```\n{}\n```", run.stdout.trim_end());
                if !run.stderr.trim().is_empty() {
                    text.push_str(&format!("\nstderr:\n```\n{}\n```", run.stderr.trim_end()));
                }
                if run.timed_out {
                    text.push_str("\nThe program was stopped: it ran out of time.");
                } else if !run.success {
                    text.push_str(&format!(
                        "\nThe program failed (exit code {}).",
                        run.exit_code
                            .map_or_else(|| "none".into(), |c| c.to_string())
                    ));
                }
                text
            }
            None if record.is_error => format!("Running the code failed: {}", record.result),
            None => format!("Code output:\n```\n{}\n```", record.result.trim_end()),
        };
    }
    if base.ends_with("get_current_time") {
        let s = record.structured_content.as_ref();
        let field = |k: &str| s.and_then(|s| s[k].as_str()).map(str::to_owned);
        return match (field("datetime"), field("timezone")) {
            (Some(datetime), Some(zone)) if !record.is_error => format!(
                "The current time in {zone} is {datetime}{}.",
                field("day_of_week")
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default()
            ),
            _ if record.is_error => format!("Getting the time failed: {}", record.result),
            _ => format!("The current time: {}", record.result),
        };
    }
    format!("{}: {}", record.name, record.result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execute_marker_stops_at_the_request_that_follows() {
        let p = plan("Execute: print('Hello') and tell me the time");
        assert_eq!(p.code, ["print('Hello')"]);
        assert_eq!(p.time_zones, Some(vec![]));
    }

    #[test]
    fn conjunctions_inside_code_stay_code() {
        let p = plan("Run: print('this and tell me') and print(1 and 2)");
        assert_eq!(p.code, ["print('this and tell me') and print(1 and 2)"]);
        assert_eq!(p.time_zones, None);
        let p = plan("run: x = [i for i in range(3)], then show the result");
        assert_eq!(p.code, ["x = [i for i in range(3)]"]);
    }

    #[test]
    fn fenced_blocks_and_lines_below_the_marker() {
        let p = plan(
            "Please run this:\n```python\nimport time\nprint(2+2)\n```\nWhat time is it in Europe/Berlin and Asia/Tokyo?",
        );
        assert_eq!(p.code, ["import time\nprint(2+2)"]);
        assert_eq!(
            p.time_zones,
            Some(vec!["Europe/Berlin".to_owned(), "Asia/Tokyo".to_owned()])
        );
        let p = plan("Execute:\nfor i in range(2):\n    print(i)\n");
        assert_eq!(p.code, ["for i in range(2):\n    print(i)"]);
        let p = plan("Execute: `print(5)` and give me the date.");
        assert_eq!(p.code, ["print(5)"]);
        assert!(p.time_zones.is_some());
    }

    #[test]
    fn plain_chat_finds_nothing_and_timeout_is_not_time() {
        assert_eq!(plan("hello there"), Plan::default());
        assert_eq!(plan("what is a timeout?").time_zones, None);
        assert_eq!(
            plan("what's the time in UTC?").time_zones,
            Some(vec!["UTC".to_owned()])
        );
    }

    #[test]
    fn cities_name_their_zones() {
        assert_eq!(
            plan("What time is it in Tokyo and in New York?").time_zones,
            Some(vec!["Asia/Tokyo".to_owned(), "America/New_York".to_owned()])
        );
        assert_eq!(
            plan("tell me the time in Sao Paulo, please").time_zones,
            Some(vec!["America/Sao_Paulo".to_owned()])
        );
        // Lower-case words are not taken for cities ("time", "date", ...).
        assert_eq!(plan("what time is it?").time_zones, Some(vec![]));
    }
}
