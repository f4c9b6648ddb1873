//! Reading a message: the programs in it and whether (and where) it asks for the time. The
//! rules are in the [planner's](super) notes.

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
    let (first, below) = after.split_once('\n').unwrap_or((after, ""));
    // Inline code in backticks: `print(1)` and tell me the time.
    if let Some(rest) = first.trim().strip_prefix('`')
        && !rest.starts_with('`')
        && let Some((code, tail)) = rest.split_once('`')
    {
        return (vec![code.to_owned()], format!("{before} {tail} {below}"));
    }
    // The program is everything after the marker: the rest of its line and every line below
    // (indentation kept), so that a program typed over several lines runs whole.
    let program = if first.trim().is_empty() {
        below.to_owned()
    } else if below.trim().is_empty() {
        first.trim().to_owned()
    } else {
        format!("{}\n{below}", first.trim_start())
    };
    let program = program.trim_start_matches(['\n', '\r']).trim_end();
    // A request in plain language may follow on the program's last line: "... and tell me
    // the time" (see `request_start`); it is prose, not code.
    let last_start = program.rfind('\n').map_or(0, |i| i + 1);
    let (code, clause) = match request_start(&program[last_start..]) {
        Some(cut) => program.split_at(last_start + cut),
        None => (program, ""),
    };
    let mut code = code.trim_end();
    if !code.contains('\n') {
        // "Execute: print(5)." — the sentence's full stop is not part of the program.
        code = code.trim_end_matches(['.', ',']).trim_end();
    }
    (
        if code.trim().is_empty() {
            Vec::new()
        } else {
            vec![code.to_owned()]
        },
        format!("{before} {clause}"),
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
    fn the_whole_program_after_the_marker_runs() {
        let p = plan("Execute: x = 21\nprint(x * 2)");
        assert_eq!(p.code, ["x = 21\nprint(x * 2)"]);
        assert_eq!(p.time_zones, None);
        let p =
            plan("Execute: for i in range(2):\n    print(i)\nprint('done') and tell me the time");
        assert_eq!(p.code, ["for i in range(2):\n    print(i)\nprint('done')"]);
        assert_eq!(p.time_zones, Some(vec![]));
        // A conjunction inside a string of the last line stays code.
        let p = plan("Run: a = 1\nprint('a and tell me the time')");
        assert_eq!(p.code, ["a = 1\nprint('a and tell me the time')"]);
        assert_eq!(p.time_zones, None);
        let p = plan("What time is it in Asia/Tokyo? Execute: print(1)\nprint(2)");
        assert_eq!(p.code, ["print(1)\nprint(2)"]);
        assert_eq!(p.time_zones, Some(vec!["Asia/Tokyo".to_owned()]));
        let p = plan("Execute: print(5).");
        assert_eq!(p.code, ["print(5)"]);
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
