//! Whose session a request may reach: the authenticated caller (method and subject), narrowed
//! by the opaque `X-Switchboard-Owner` it sends (the code-executor names its own caller there),
//! or, on the MCP face with authentication off, the MCP session. The parts are kept apart (a
//! JSON array), so that no subject can pass for another.

use switchboard_runtime::auth::{Identity, Method};

/// The header a trusted caller narrows ownership with.
pub const OWNER_HEADER: &str = "x-switchboard-owner";

/// The owner key of a request.
pub(crate) fn owner(
    identity: Option<&Identity>,
    mcp_session: Option<&str>,
    narrowed: Option<&str>,
) -> String {
    let mut parts: Vec<&str> = match identity.filter(|i| i.method != Method::Anonymous) {
        Some(identity) => vec![identity.method.as_str(), identity.subject.as_str()],
        None => match mcp_session {
            Some(session) => vec!["session", session],
            None => vec!["anonymous"],
        },
    };
    if let Some(narrowed) = narrowed.filter(|n| !n.is_empty()) {
        parts.extend(["for", narrowed]);
    }
    serde_json::to_string(&parts).unwrap_or_else(|_| "[\"anonymous\"]".into())
}

/// The owner of a REST request.
pub(crate) fn of_request(identity: Option<&Identity>, headers: &axum::http::HeaderMap) -> String {
    let narrowed = headers.get(OWNER_HEADER).map(header_text);
    owner(identity, None, narrowed.as_deref())
}

/// A header's value as text. One that is not visible ASCII is not ignored (that would widen
/// the owner to the caller alone): its bytes are written in hex after a NUL, which no
/// visible-ASCII value contains, so it cannot pass for another.
pub(crate) fn header_text(value: &axum::http::HeaderValue) -> String {
    match value.to_str() {
        Ok(text) => text.to_owned(),
        Err(_) => format!("\0{}", switchboard_runtime::hex(value.as_bytes())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_that_is_not_ascii_still_narrows() {
        let mut headers = axum::http::HeaderMap::new();
        let value = axum::http::HeaderValue::from_bytes(b"caf\xc3\xa9").expect("a header value");
        headers.insert(OWNER_HEADER, value);
        let narrowed = of_request(None, &headers);
        assert_ne!(narrowed, owner(None, None, None));
        assert!(narrowed.contains("636166c3a9"), "{narrowed}");
    }

    #[test]
    fn owners_keep_their_parts_apart() {
        let anonymous = owner(None, None, None);
        assert_eq!(anonymous, r#"["anonymous"]"#);
        assert_ne!(owner(None, Some("a"), None), owner(None, Some("b"), None));
        assert_ne!(
            owner(None, None, Some("x\",\"for")),
            owner(None, None, Some("x"))
        );
        let alice = Identity {
            subject: "alice".into(),
            method: Method::ApiKey,
            groups: vec![],
            scopes: vec![],
            via: None,
        };
        assert_eq!(
            owner(Some(&alice), Some("ignored"), Some("bob")),
            r#"["api_key","alice","for","bob"]"#
        );
    }
}
