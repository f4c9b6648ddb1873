//! Operator decisions on held requests: the admin token, approve (which installs), reject.

use switchboard_protocol::sandbox::{InstallOutcome, InstallStatus};

use super::{Packages, Pending, audit, name::Requirement};

/// Why an admin call was refused.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(
        "no admin token is configured (--admin-token / SANDBOX_ADMIN_TOKEN), so nothing can be approved"
    )]
    NotConfigured,
    #[error("missing or wrong admin token")]
    Unauthorized,
    #[error("no pending request with id {0}")]
    NotFound(String),
}

impl Packages {
    fn check_token(&self, token: Option<&str>, action: &str, id: &str) -> Result<(), AdminError> {
        let Some(expected) = &self.admin_token else {
            audit(
                action,
                "refused",
                ("", None),
                Some("no admin token configured"),
                Some(id),
                "operator",
                &[],
            );
            return Err(AdminError::NotConfigured);
        };
        if !token.is_some_and(|t| constant_time_eq(t.as_bytes(), expected.as_bytes())) {
            audit(
                action,
                "refused",
                ("", None),
                Some("missing or wrong admin token"),
                Some(id),
                "operator",
                &[],
            );
            self.count("approval_refused");
            return Err(AdminError::Unauthorized);
        }
        Ok(())
    }

    fn take_pending(&self, id: &str) -> Option<Requirement> {
        let mut pending = match self.pending.lock() {
            Ok(p) => p,
            Err(poisoned) => poisoned.into_inner(),
        };
        let taken = pending.remove(id).map(|(r, _)| r);
        if taken.is_some() {
            self.save_pending(&pending);
        }
        taken
    }

    /// Approve a held request (admin): installs it.
    pub(crate) async fn approve(
        &self,
        id: &str,
        token: Option<&str>,
    ) -> Result<InstallOutcome, AdminError> {
        self.check_token(token, "approve", id)?;
        let requirement = self
            .take_pending(id)
            .ok_or_else(|| AdminError::NotFound(id.to_owned()))?;
        self.count("approved");
        Ok(self.install(&requirement, true, Some(id)).await)
    }

    /// Reject a held request (admin).
    pub(crate) fn reject(
        &self,
        id: &str,
        token: Option<&str>,
    ) -> Result<InstallOutcome, AdminError> {
        self.check_token(token, "reject", id)?;
        let requirement = self
            .take_pending(id)
            .ok_or_else(|| AdminError::NotFound(id.to_owned()))?;
        let key = requirement.key();
        let reason = "rejected by an operator".to_owned();
        audit(
            "reject",
            "rejected",
            key,
            Some(&reason),
            Some(id),
            "operator",
            &[],
        );
        Ok(self.outcome(
            InstallStatus::Rejected,
            key,
            Some(reason),
            Some(id.to_owned()),
            Vec::new(),
            format!("Not installed: {} was rejected by an operator.", key.0),
        ))
    }

    pub(crate) fn pending_list(&self) -> Vec<Pending> {
        let pending = match self.pending.lock() {
            Ok(p) => p,
            Err(poisoned) => poisoned.into_inner(),
        };
        pending.values().map(|(_, p)| p.clone()).collect()
    }
}

/// Compare secrets without an early exit, so timing does not tell how much of a guess was
/// right. (Eight lines; not worth a dependency.)
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i % b.len().max(1)).copied().unwrap_or(0));
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_exactly() {
        assert!(constant_time_eq(b"secret-token-123", b"secret-token-123"));
        assert!(!constant_time_eq(b"secret-token-124", b"secret-token-123"));
        assert!(!constant_time_eq(b"secret", b"secret-token-123"));
        assert!(!constant_time_eq(b"", b"x"));
    }
}
