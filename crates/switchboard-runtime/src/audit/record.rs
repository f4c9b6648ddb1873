//! One audit record and the digest of a call's arguments.

use std::time::Duration;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::auth::Identity;

/// Records waiting for the writer; past this, records are dropped rather than waited for.
pub(super) const CAPACITY: usize = 4096;
/// At most one log line per this period for each kind of trouble, not one per record.
pub(super) const LOG_EVERY: Duration = Duration::from_secs(10);
/// Longer details are cut: a record is a pointer to the service log, not a copy of it.
pub(super) const MAX_DETAIL: usize = 512;

/// One audit record. Serialized as one JSON object per line, fields in this order, `None`s
/// omitted.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    /// RFC 3339, UTC, milliseconds.
    pub time: String,
    pub service: &'static str,
    /// `tools/call`, `execute`, `package_request`, `approval`, `authenticate`, ...
    pub action: &'static str,
    /// The caller's subject (`anonymous` when authentication is off).
    pub identity: String,
    /// `jwt`, `api_key`, `anonymous` or `delegated`.
    pub method: &'static str,
    /// For a delegated identity, the caller that acted for it (the middleware).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    /// The remote address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Tool name, upstream or package.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Hex SHA-256 of the arguments ([`digest`]); never the arguments themselves.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arguments_sha256: Option<String>,
    /// `ok`, `error`, `denied` or `refused`.
    pub outcome: &'static str,
    /// A short reason for errors and denials.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
}

impl Record {
    pub fn new(
        service: &'static str,
        action: &'static str,
        identity: &Identity,
        outcome: &'static str,
    ) -> Self {
        Self {
            time: format!("{:.3}", jiff::Timestamp::now()),
            service,
            action,
            identity: identity.subject.clone(),
            method: identity.method.as_str(),
            via: identity.via.clone(),
            source: None,
            target: None,
            arguments_sha256: None,
            outcome,
            detail: None,
            duration_ms: None,
            trace_id: None,
        }
    }

    pub fn with_source(mut self, source: impl Into<String>) -> Self {
        self.source = Some(source.into());
        self
    }

    pub fn with_target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    /// Records the [`digest`] of `arguments`, never the arguments.
    pub fn with_arguments<T: Serialize + ?Sized>(mut self, arguments: &T) -> Self {
        self.arguments_sha256 = Some(digest(arguments));
        self
    }

    /// Cut to 512 bytes (on a character boundary).
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        let mut detail = detail.into();
        if detail.len() > MAX_DETAIL {
            let end = (0..=MAX_DETAIL).rev().find(|&i| detail.is_char_boundary(i));
            detail.truncate(end.unwrap_or(0));
        }
        self.detail = Some(detail);
        self
    }

    /// In milliseconds, to the microsecond.
    pub fn with_duration(mut self, duration: Duration) -> Self {
        self.duration_ms = Some(duration.as_micros() as f64 / 1000.0);
        self
    }

    /// The trace id of the span the caller runs in, if it has one.
    pub fn with_trace_id_of_current_span(self) -> Self {
        match crate::propagation::trace_id(&tracing::Span::current()) {
            Some(trace) => self.with_trace_id(trace.to_string()),
            None => self,
        }
    }

    pub fn with_trace_id(mut self, trace_id: impl Into<String>) -> Self {
        self.trace_id = Some(trace_id.into());
        self
    }
}

/// Hex SHA-256 of `serde_json::to_vec(value)`. Canonical because serde_json's maps are sorted
/// by key (its `preserve_order` feature is not in the tree; a test guards that), so the same
/// arguments always give the same digest whatever order the caller sent them in. Generic so
/// that a caller need not copy what it hashes into a `Value` first: a `String` or a
/// `Map<String, Value>` serializes exactly as the `Value` holding it.
pub fn digest<T: Serialize + ?Sized>(value: &T) -> String {
    // Serializing JSON values, maps with string keys and strings cannot fail.
    let json = serde_json::to_vec(value).unwrap_or_default();
    crate::hex(&Sha256::digest(json))
}
