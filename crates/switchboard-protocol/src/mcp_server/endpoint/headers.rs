//! Which requests' headers the endpoint may answer itself: rmcp's `Host` rule, and the media
//! types of `Content-Type` and `Accept`.

use http::{HeaderMap, HeaderValue, header, uri::Authority};

/// rmcp's Host rule: the `Host` header must parse as an authority whose host (and port, when
/// the allowed entry names one) matches an allowed entry; an empty list or `*` allows any.
pub(super) struct AllowedHosts(Option<Vec<(String, Option<u16>)>>);

impl AllowedHosts {
    pub(super) fn new(allowed: &[String]) -> Self {
        if allowed.is_empty() || allowed.iter().any(|h| h == "*") {
            return Self(None);
        }
        Self(Some(
            allowed
                .iter()
                .map(|entry| entry.trim())
                .filter(|entry| !entry.is_empty())
                .map(|entry| match Authority::try_from(entry) {
                    Ok(authority) => (normalize_host(authority.host()), authority.port_u16()),
                    Err(_) => (normalize_host(entry), None),
                })
                .collect(),
        ))
    }

    /// Whether rmcp would accept this request's `Host` (without a `Host` header: not known
    /// here, so no).
    pub(super) fn allow(&self, headers: &HeaderMap) -> bool {
        let Some(authority) = headers
            .get(header::HOST)
            .and_then(|host| host.to_str().ok())
            .and_then(|host| Authority::try_from(host).ok())
        else {
            return false;
        };
        let Some(allowed) = &self.0 else {
            return true;
        };
        let host = normalize_host(authority.host());
        let port = authority.port_u16();
        allowed
            .iter()
            .any(|(h, p)| *h == host && p.is_none_or(|p| Some(p) == port))
    }
}

fn normalize_host(host: &str) -> String {
    host.trim_matches('[')
        .trim_matches(']')
        .to_ascii_lowercase()
}

pub(super) fn media_type_is(value: &HeaderValue, expected: &str) -> bool {
    value.to_str().is_ok_and(|value| {
        value
            .split(';')
            .next()
            .is_some_and(|essence| essence.trim().eq_ignore_ascii_case(expected))
    })
}

/// Whether `Accept` plainly names both JSON and SSE (anything with parameters, such as
/// weights, is left to rmcp's full parser).
pub(super) fn accepts_json_and_sse(headers: &HeaderMap) -> bool {
    let (mut json, mut sse) = (false, false);
    for value in headers.get_all(header::ACCEPT) {
        let Ok(value) = value.to_str() else {
            return false;
        };
        for range in value.split(',') {
            let range = range.trim();
            if range.contains(';') {
                return false;
            }
            json |= range.eq_ignore_ascii_case("application/json");
            sse |= range.eq_ignore_ascii_case("text/event-stream");
        }
    }
    json && sse
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    http::HeaderName::from_static(k),
                    HeaderValue::from_static(v),
                )
            })
            .collect()
    }

    #[test]
    fn hosts_follow_rmcps_rule() {
        let any = AllowedHosts::new(&[]);
        assert!(any.allow(&headers(&[("host", "anything:1234")])));
        assert!(!any.allow(&headers(&[("host", "bad host")])), "malformed");
        assert!(!any.allow(&headers(&[])), "missing");
        let local = AllowedHosts::new(&["localhost".into(), "127.0.0.1:8000".into()]);
        assert!(local.allow(&headers(&[("host", "LOCALHOST:9")])));
        assert!(local.allow(&headers(&[("host", "127.0.0.1:8000")])));
        assert!(!local.allow(&headers(&[("host", "127.0.0.1:8001")])));
        assert!(!local.allow(&headers(&[("host", "evil.example")])));
        let v6 = AllowedHosts::new(&["[::1]".into()]);
        assert!(v6.allow(&headers(&[("host", "[::1]:8000")])));
    }

    #[test]
    fn accept_must_name_both_without_parameters() {
        assert!(accepts_json_and_sse(&headers(&[(
            "accept",
            "text/event-stream, application/json"
        )])));
        assert!(!accepts_json_and_sse(&headers(&[(
            "accept",
            "application/json"
        )])));
        assert!(!accepts_json_and_sse(&headers(&[(
            "accept",
            "application/json, text/event-stream;q=0"
        )])));
    }
}
