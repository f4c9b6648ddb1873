//! Choosing the exposition format of `GET /metrics`, and the Prometheus text format 0.0.4.
//!
//! `prometheus-client` writes only OpenMetrics text. Prometheus servers ask for OpenMetrics
//! first and get it unchanged. Other readers get the Prometheus text format 0.0.4, which is
//! what `promtool check metrics`, older scrapers and `curl | grep` expect. In that format the
//! `# HELP`/`# TYPE` lines of a counter must name the sample (`x_total`, not `x`), there is no
//! `# EOF` and no exemplars. A promtool run over OpenMetrics output fails with
//! `x_total no help text`, because its parser sees `x_total` as a separate, untyped metric.
//!
//! Why a rewrite by hand: `prometheus-client` 0.26 has no 0.0.4 encoder (upstream issue
//! client_rust#51). The rewrite is line by line over output this crate produced itself.

use std::collections::HashMap;

/// Content type of OpenMetrics text, as served to clients that ask for it.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// Content type of the Prometheus text format 0.0.4.
pub const PROMETHEUS_TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Whether an `Accept` header value asks for OpenMetrics (with a quality above zero).
/// Prometheus servers send `application/openmetrics-text;version=1.0.0,...,text/plain;q=0.5`.
pub fn accepts_openmetrics(accept: &str) -> bool {
    accept.split(',').any(|range| {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default();
        media.eq_ignore_ascii_case("application/openmetrics-text")
            && !parts.any(|param| {
                param
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f64>().ok())
                    .is_some_and(|q| q <= 0.0)
            })
    })
}

/// Rewrite OpenMetrics text (as `prometheus-client` writes it) into Prometheus text 0.0.4:
/// counter and info families take their sample name in `# HELP`/`# TYPE`, info becomes a
/// gauge, `unknown` becomes `untyped`, `# UNIT` and `# EOF` lines and exemplars are dropped.
pub fn openmetrics_to_prometheus(openmetrics: &str) -> String {
    // First pass: each family's type, since `# HELP` comes before `# TYPE`.
    let kinds: HashMap<&str, &str> = openmetrics.lines().filter_map(type_line).collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some((name, kind)) = type_line(line) {
            let (name, kind) = match kind {
                "counter" => (format!("{name}_total"), "counter"),
                "info" => (format!("{name}_info"), "gauge"),
                "unknown" => (name.to_owned(), "untyped"),
                "stateset" => (name.to_owned(), "gauge"),
                "gaugehistogram" => (name.to_owned(), "untyped"),
                other => (name.to_owned(), other),
            };
            out.push_str(&format!("# TYPE {name} {kind}\n"));
        } else if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            let suffix = match kinds.get(name) {
                Some(&"counter") => "_total",
                Some(&"info") => "_info",
                _ => "",
            };
            out.push_str(&format!("# HELP {name}{suffix} {help}\n"));
        } else if line.starts_with('#') || line.is_empty() {
            out.push_str(line);
            out.push('\n');
        } else {
            out.push_str(without_exemplar(line));
            out.push('\n');
        }
    }
    out
}

/// `# TYPE name kind` split into name and kind.
fn type_line(line: &str) -> Option<(&str, &str)> {
    line.strip_prefix("# TYPE ")?.split_once(' ')
}

/// A sample line without its exemplar (` # {...} value [timestamp]` after the value). The
/// label set is skipped quote-aware, since label values may contain ` # `.
fn without_exemplar(line: &str) -> &str {
    // The name ends at the first space or `{`; only a `{` there opens a label set.
    let labels_end = match line
        .find([' ', '{'])
        .filter(|&i| line[i..].starts_with('{'))
    {
        Some(open) => {
            let mut in_quotes = false;
            let mut escaped = false;
            let mut end = None;
            for (i, c) in line[open..].char_indices() {
                match (in_quotes, escaped, c) {
                    (true, true, _) => escaped = false,
                    (true, false, '\\') => escaped = true,
                    (_, false, '"') => in_quotes = !in_quotes,
                    (false, _, '}') => {
                        end = Some(open + i + 1);
                        break;
                    }
                    _ => {}
                }
            }
            end.unwrap_or(line.len())
        }
        None => 0,
    };
    match line[labels_end..].find(" # ") {
        Some(at) => &line[..labels_end + at],
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_servers_get_openmetrics_others_text() {
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert!(accepts_openmetrics(prometheus));
        assert!(accepts_openmetrics("Application/OpenMetrics-Text"));
        assert!(!accepts_openmetrics("*/*"));
        assert!(!accepts_openmetrics("text/plain"));
        assert!(!accepts_openmetrics("application/openmetrics-text; q=0"));
        assert!(!accepts_openmetrics(""));
    }

    #[test]
    fn counters_name_their_samples_and_eof_goes() {
        let om = "# HELP http_requests HTTP requests.\n\
                  # TYPE http_requests counter\n\
                  http_requests_total{route=\"/a\"} 3\n\
                  # HELP up Whether up.\n\
                  # TYPE up gauge\n\
                  up 1\n\
                  # HELP build Build.\n\
                  # TYPE build info\n\
                  build_info{version=\"1\"} 1\n\
                  # HELP d_seconds Duration.\n\
                  # TYPE d_seconds histogram\n\
                  # UNIT d_seconds seconds\n\
                  d_seconds_bucket{le=\"+Inf\"} 1\n\
                  # EOF\n";
        let text = openmetrics_to_prometheus(om);
        assert_eq!(
            text,
            "# HELP http_requests_total HTTP requests.\n\
             # TYPE http_requests_total counter\n\
             http_requests_total{route=\"/a\"} 3\n\
             # HELP up Whether up.\n\
             # TYPE up gauge\n\
             up 1\n\
             # HELP build_info Build.\n\
             # TYPE build_info gauge\n\
             build_info{version=\"1\"} 1\n\
             # HELP d_seconds Duration.\n\
             # TYPE d_seconds histogram\n\
             d_seconds_bucket{le=\"+Inf\"} 1\n"
        );
    }

    #[test]
    fn exemplars_are_dropped_but_label_values_kept() {
        assert_eq!(
            without_exemplar(r#"x_total{a="p # {q}\" }"} 2 # {trace_id="abc"} 1.0"#),
            r#"x_total{a="p # {q}\" }"} 2"#
        );
        assert_eq!(without_exemplar("x_total 2 # {id=\"1\"} 1.0"), "x_total 2");
        assert_eq!(without_exemplar("x_total 2"), "x_total 2");
    }
}
