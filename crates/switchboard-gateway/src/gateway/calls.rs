//! Admitting one tool call — MCP or REST alike: the policy's decision (see
//! [`super::admission`]), the audit log's fail-closed check, and the audit record written when
//! the call ends.

use rmcp::model::CallToolRequestParams;
use switchboard_runtime::{audit::Record, auth::Identity};

use super::Gateway;
use crate::{
    policy::{ToolPermits, limits::OverLimit},
    upstream::Owner,
};

/// Why a call may not run (already recorded in the audit log).
#[derive(Debug)]
pub enum Refused {
    /// The policy does not let this caller call this tool (or install this package); the
    /// reason names what is missing.
    Denied(String),
    /// The arguments ask for more than the caller's roles allow (`execute_code`'s
    /// `timeout_seconds`): a tool error saying the limit and the role.
    Limited(String),
    /// Over a per-tool rate or in-flight limit of the policy: retry later.
    Overloaded(OverLimit),
    /// `--audit-fail-closed` and the audit log cannot be written.
    AuditUnavailable(String),
}

impl Refused {
    /// The audit record's outcome.
    fn outcome(&self) -> &'static str {
        match self {
            Refused::Denied(_) | Refused::Limited(_) => "denied",
            Refused::Overloaded(_) | Refused::AuditUnavailable(_) => "refused",
        }
    }

    /// The sentence that says why.
    pub fn reason(&self) -> &str {
        match self {
            Refused::Denied(why) | Refused::Limited(why) | Refused::AuditUnavailable(why) => why,
            Refused::Overloaded(over) => &over.why,
        }
    }
}

impl Gateway {
    /// Let `identity` call `request` (routed in `owner`'s catalog), or say why not: the audit record of the call is begun
    /// here and written by [`CallAudit::finish`] when it ends (or here, when refused). The
    /// policy may add to the arguments (an `execute_code` timeout).
    pub fn admit_call(
        &self,
        identity: Option<&Identity>,
        owner: &Owner,
        request: &mut CallToolRequestParams,
        span: &tracing::Span,
    ) -> Result<CallAudit<'_>, Refused> {
        let mut audit = CallAudit::start(self, identity, request, span);
        if let Some(permissions) = self.permissions(identity) {
            match self.police(&permissions, owner, request) {
                Ok(permits) => audit.permits = permits,
                Err(refused) => {
                    audit.finish(refused.outcome(), Some(refused.reason()));
                    return Err(refused);
                }
            }
        }
        // With --audit-fail-closed, a call the log could not record does not run.
        if let Err(unavailable) = self.audit().available() {
            let why = unavailable.to_string();
            audit.finish("refused", Some(&why));
            return Err(Refused::AuditUnavailable(why));
        }
        Ok(audit)
    }
}

/// The audit record of one tool call, begun before it runs and written when it ends; it also
/// holds the call's place under the policy's in-flight limits until then.
pub struct CallAudit<'a> {
    gateway: &'a Gateway,
    record: Option<Record>,
    started: std::time::Instant,
    permits: ToolPermits,
}

impl<'a> CallAudit<'a> {
    fn start(
        gateway: &'a Gateway,
        identity: Option<&Identity>,
        request: &CallToolRequestParams,
        span: &tracing::Span,
    ) -> Self {
        let record = gateway.audit().enabled().then(|| {
            let nobody = Identity::anonymous();
            let none = serde_json::Map::new();
            let arguments = request.arguments.as_ref().unwrap_or(&none);
            let mut record = Record::new(
                crate::SERVICE,
                "tools/call",
                identity.unwrap_or(&nobody),
                "ok",
            )
            .with_target(request.name.to_string())
            .with_arguments(arguments);
            if let Some(trace) = switchboard_runtime::propagation::trace_id(span) {
                record = record.with_trace_id(trace.to_string());
            }
            record
        });
        Self {
            gateway,
            record,
            started: std::time::Instant::now(),
            permits: ToolPermits::default(),
        }
    }

    /// Write the record with the call's `outcome` (and `detail` for errors and refusals).
    pub fn finish(self, outcome: &'static str, detail: Option<&str>) {
        let _ended = self.permits;
        let Some(mut record) = self.record else {
            return;
        };
        record.outcome = outcome;
        if let Some(detail) = detail {
            record = record.with_detail(detail);
        }
        // A failing log is reported by `available` before the next call; this one has run.
        let _ = self
            .gateway
            .audit()
            .record(record.with_duration(self.started.elapsed()));
    }
}
