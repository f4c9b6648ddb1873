//! What the policy lets one tool call do: whether the caller may call the tool at all, the
//! rules of its roles for the code-executor's `execute_code` (a limit on `timeout_seconds`)
//! and `install_package` (which package names), and the per-tool rate limits.

use rmcp::model::{CallToolRequestParams, JsonObject};
use serde_json::Value;

use super::{Gateway, Refused};
use crate::{
    policy::{Permissions, ToolPermits},
    upstream::Owner,
};

/// The upstream names (not the gateway's) of the tools with rules of their own.
pub const EXECUTE_CODE: &str = "execute_code";
pub const INSTALL_PACKAGE: &str = "install_package";
/// `execute_code`'s argument limited by `[roles.X.execute_code] max_timeout_seconds`.
const TIMEOUT: &str = "timeout_seconds";

impl Gateway {
    /// Judge a call by `permissions`: refused with the reason, or admitted with the permits
    /// of its in-flight limits (held until it ends). An `execute_code` call without a
    /// `timeout_seconds` gets the role's limit as its timeout. A tool the gateway does not
    /// know is left to the call, which says so.
    pub(super) fn police(
        &self,
        permissions: &Permissions,
        owner: &Owner,
        request: &mut CallToolRequestParams,
    ) -> Result<ToolPermits, Refused> {
        let catalog = self.catalog_for(owner);
        let tool = request.name.to_string();
        let Some(route) = catalog.tool_routes.get(&tool) else {
            return Ok(ToolPermits::default());
        };
        let upstream = &self.inner.upstreams[route.upstream].config.name;
        if !permissions.allows(&tool, upstream) {
            return Err(Refused::Denied(permissions.denial(&tool)));
        }
        match route.original.as_ref() {
            EXECUTE_CODE => limit_timeout(permissions, &tool, upstream, &mut request.arguments)?,
            INSTALL_PACKAGE => {
                let package = request
                    .arguments
                    .as_ref()
                    .and_then(|arguments| arguments.get("package"))
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if !permissions.may_install(&tool, upstream, package) {
                    return Err(Refused::Denied(permissions.install_denial(&tool, package)));
                }
            }
            _ => {}
        }
        permissions.admit_tool(&tool).map_err(Refused::Overloaded)
    }
}

/// Hold `execute_code`'s `timeout_seconds` to the caller's limit: a larger one is refused,
/// a missing one set to the limit.
fn limit_timeout(
    permissions: &Permissions,
    tool: &str,
    upstream: &str,
    arguments: &mut Option<JsonObject>,
) -> Result<(), Refused> {
    let Some(limit) = permissions.timeout_limit(tool, upstream) else {
        return Ok(());
    };
    let (max, role) = (limit.max_seconds, &limit.role);
    let arguments = arguments.get_or_insert_with(JsonObject::new);
    let asked = match arguments.get(TIMEOUT) {
        None | Some(Value::Null) => {
            arguments.insert(TIMEOUT.into(), Value::from(max));
            return Ok(());
        }
        Some(Value::Number(number)) => number.as_f64(),
        Some(_) => None,
    };
    match asked {
        Some(seconds) if seconds <= max => Ok(()),
        Some(seconds) => Err(Refused::Limited(format!(
            "policy limit: '{tool}' may run for at most {max} s for this caller (role '{role}', [roles.{role}.execute_code] max_timeout_seconds); {TIMEOUT} = {seconds} asks for more. Call it again with {TIMEOUT} of at most {max}, or leave it out."
        ))),
        None => Err(Refused::Limited(format!(
            "policy limit: '{tool}' takes {TIMEOUT} as a number of seconds, at most {max} for this caller (role '{role}')"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use switchboard_runtime::auth::{Identity, Method};

    use super::*;
    use crate::policy::Policy;

    fn limited(text: &str) -> (tempfile::TempDir, Permissions) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("policy.toml");
        std::fs::write(&path, text).expect("write");
        let caller = Identity {
            subject: "alice".into(),
            method: Method::ApiKey,
            groups: Vec::new(),
            scopes: Vec::new(),
            via: None,
        };
        let permissions = Policy::load(&path).expect("loads").for_caller(&caller);
        (dir, permissions)
    }

    fn judge(permissions: &Permissions, arguments: Value) -> (Result<(), String>, Value) {
        let mut arguments = arguments.as_object().cloned();
        let verdict = limit_timeout(permissions, "execute_code", "code", &mut arguments)
            .map_err(|refused| refused.reason().to_owned());
        (verdict, Value::from(arguments))
    }

    #[test]
    fn timeouts_over_the_limit_are_refused_and_a_missing_one_is_the_limit() {
        let (_dir, coder) = limited(
            "[roles.coder]\ntools = [\"execute_code\"]\n[roles.coder.execute_code]\nmax_timeout_seconds = 30\n[[grants]]\nroles = [\"coder\"]\nsubjects = [\"alice\"]\n",
        );
        let (verdict, arguments) = judge(&coder, json!({"code": "1", "timeout_seconds": 30}));
        assert!(
            verdict.is_ok() && arguments["timeout_seconds"] == 30,
            "{arguments}"
        );
        for missing in [
            json!({"code": "1"}),
            json!({"code": "1", "timeout_seconds": null}),
        ] {
            let (verdict, arguments) = judge(&coder, missing);
            assert!(
                verdict.is_ok() && arguments["timeout_seconds"] == 30.0,
                "{arguments}"
            );
        }
        let (verdict, _) = judge(&coder, json!({"code": "1", "timeout_seconds": 30.5}));
        let why = verdict.expect_err("over");
        assert!(
            why.contains("at most 30 s") && why.contains("role 'coder'"),
            "{why}"
        );
        let (verdict, _) = judge(&coder, json!({"code": "1", "timeout_seconds": "10"}));
        let why = verdict.expect_err("not a number");
        assert!(why.contains("as a number of seconds"), "{why}");

        // A role that may call it with no limit: nothing is checked or added.
        let (_dir, free) = limited(
            "[roles.free]\nupstreams = [\"code\"]\n[[grants]]\nroles = [\"free\"]\nsubjects = [\"*\"]\n",
        );
        let (verdict, arguments) = judge(&free, json!({"code": "1", "timeout_seconds": 3600}));
        assert!(verdict.is_ok() && arguments["timeout_seconds"] == 3600);
        let (verdict, arguments) = judge(&free, json!({"code": "1"}));
        assert!(verdict.is_ok() && arguments.get("timeout_seconds").is_none());
    }
}
