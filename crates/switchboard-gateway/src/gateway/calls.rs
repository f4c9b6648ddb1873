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
        name_the_caller(identity, request);
        Ok(audit)
    }
}

/// Name the caller to the upstream: the upstream knows only the gateway's own credential, so
/// without this every user of the gateway would be one caller there — one owner of the
/// code-executor's tasks and sandbox sessions. Only the subject goes (not groups or scopes),
/// and only for an authenticated caller; what the client put under the key is replaced, since
/// the gateway has already decided who the caller is (a delegate's user included).
fn name_the_caller(identity: Option<&Identity>, request: &mut CallToolRequestParams) {
    name_in(identity, &mut request.meta);
}

/// [`name_the_caller`] in the `_meta` of any request (the tasks requests too).
pub fn name_in(identity: Option<&Identity>, meta: &mut Option<rmcp::model::RequestMetaObject>) {
    use switchboard_runtime::auth::{Method, ON_BEHALF_OF};
    match identity.filter(|i| i.method != Method::Anonymous) {
        Some(identity) => {
            let meta = meta.get_or_insert_with(|| rmcp::model::JsonObject::new().into());
            meta.0.0.insert(
                ON_BEHALF_OF.to_owned(),
                serde_json::json!({ "subject": identity.subject }),
            );
        }
        None => {
            if let Some(meta) = meta.as_mut() {
                meta.0.0.remove(ON_BEHALF_OF);
            }
        }
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

#[cfg(test)]
mod tests {
    use rmcp::model::CallToolRequestParams;
    use serde_json::json;
    use switchboard_runtime::auth::{Identity, Method, ON_BEHALF_OF};

    use super::name_the_caller;

    fn request(meta: Option<serde_json::Value>) -> CallToolRequestParams {
        let mut request = json!({"name": "run"});
        if let Some(meta) = meta {
            request["_meta"] = meta;
        }
        serde_json::from_value(request).unwrap()
    }

    fn named(request: &CallToolRequestParams) -> Option<serde_json::Value> {
        request.meta.as_ref()?.0.0.get(ON_BEHALF_OF).cloned()
    }

    #[test]
    fn an_authenticated_caller_is_named_and_replaces_what_the_client_claimed() {
        let alice = Identity {
            subject: "alice".into(),
            method: Method::ApiKey,
            groups: vec!["admins".into()],
            scopes: vec![],
            via: None,
        };
        let mut claimed = request(Some(
            json!({ ON_BEHALF_OF: {"subject": "mallory"}, "progressToken": 1 }),
        ));
        name_the_caller(Some(&alice), &mut claimed);
        // Only the subject: groups are the gateway's business.
        assert_eq!(named(&claimed), Some(json!({"subject": "alice"})));
        let meta = serde_json::to_value(&claimed).unwrap()["_meta"].clone();
        assert_eq!(meta["progressToken"], json!(1));

        let mut bare = request(None);
        name_the_caller(Some(&alice), &mut bare);
        assert_eq!(named(&bare), Some(json!({"subject": "alice"})));
    }

    #[test]
    fn an_anonymous_caller_names_nobody() {
        let mut claimed = request(Some(json!({ ON_BEHALF_OF: {"subject": "mallory"} })));
        name_the_caller(Some(&Identity::anonymous()), &mut claimed);
        assert_eq!(named(&claimed), None);
        let mut none = request(Some(json!({ ON_BEHALF_OF: {"subject": "mallory"} })));
        name_the_caller(None, &mut none);
        assert_eq!(named(&none), None);
    }
}
