//! Guarded package installation into the managed site-packages.
//!
//! A request is validated ([`name`]), judged by the [`policy`] — refused, held for an
//! operator, or allowed — then resolved and installed by [`pip`], one install at a time. Every
//! decision is an audit event: a `tracing` event with target `switchboard_sandbox::audit` and
//! always the same fields (`action`, `decision`, `package`, `version`, `reason`,
//! `approval_id`, `actor`, `dependencies`), so a log pipeline can index them.
//!
//! Held requests wait until approved or rejected through the admin endpoints (bearer token).
//! They are kept in `pending-approvals.json` in the service's state directory
//! ([`crate::state`]; never in the managed directory, which pip's uid owns), mode 0600,
//! replaced atomically on every change, and read back at start, so a restart loses none; if
//! that file cannot be written, they are kept in memory and the error is logged.

mod approval;
mod confine;
pub(crate) mod name;
mod pending;
pub(crate) mod pip;
pub(crate) mod policy;
mod store;

pub use approval::AdminError;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::Mutex,
    time::{SystemTime, UNIX_EPOCH},
};

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family},
};
use serde::{Deserialize, Serialize};
use switchboard_protocol::sandbox::{InstallOutcome, InstallRequest, InstallStatus};

use crate::{config::PackageSettings, state::StateDir};
use name::Requirement;
use pending::{PENDING_FILE, load_pending, migrate_legacy, write_pending};
use pip::{Pin, Pip};
use policy::{Policy, Verdict};
use store::Store;

/// Most requests held for approval at once; more are refused until some are decided.
const MAX_PENDING: usize = 100;

type PendingMap = BTreeMap<String, (Requirement, Pending)>;

/// A request held for an operator.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    pub id: String,
    pub package: String,
    pub version: Option<String>,
    pub reason: String,
    /// Seconds since the Unix epoch.
    pub requested_at: u64,
}

/// An installed distribution.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Installed {
    pub name: String,
    pub version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct DecisionLabel {
    pub decision: &'static str,
}

pub(crate) struct Packages {
    policy: Policy,
    pip: Pip,
    dir: PathBuf,
    /// What is installed: the service's own manifest, checked at start.
    store: Store,
    admin_token: Option<String>,
    pending: Mutex<PendingMap>,
    /// Where `pending` is kept across restarts.
    state: StateDir,
    /// One pip at a time: installs share the target directory.
    installing: tokio::sync::Mutex<()>,
    decisions: Family<DecisionLabel, Counter>,
}

fn audit(
    action: &str,
    decision: &str,
    requirement: (&str, Option<&str>),
    reason: Option<&str>,
    approval_id: Option<&str>,
    actor: &str,
    dependencies: &[Pin],
) {
    let dependencies = dependencies
        .iter()
        .map(Pin::spec)
        .collect::<Vec<_>>()
        .join(",");
    tracing::info!(
        target: "switchboard_sandbox::audit",
        action,
        decision,
        package = requirement.0,
        version = requirement.1.unwrap_or(""),
        reason = reason.unwrap_or(""),
        approval_id = approval_id.unwrap_or(""),
        actor,
        dependencies = %dependencies,
        "package decision"
    );
}

impl Packages {
    /// `state`: the service's state directory, where held requests are kept.
    pub(crate) fn new(
        python: &Path,
        settings: &PackageSettings,
        run_as: Option<(u32, u32)>,
        state: StateDir,
        decisions: Family<DecisionLabel, Counter>,
    ) -> Self {
        migrate_legacy(&settings.dir, &state);
        Self {
            policy: Policy::new(settings.blocked.as_deref(), &settings.suspicious),
            pip: Pip::new(python, settings, run_as),
            dir: settings.dir.clone(),
            store: Store::open(settings.dir.clone(), &state),
            admin_token: settings.admin_token.clone(),
            pending: Mutex::new(load_pending(&state)),
            state,
            installing: tokio::sync::Mutex::new(()),
            decisions,
        }
    }

    pub(crate) fn describe(&self) -> serde_json::Value {
        serde_json::json!({
            "dir": self.dir,
            "blocked": self.policy.blocked_count(),
            "suspicious": self.policy.suspicious_count(),
            "approvals": if self.admin_token.is_some() { "enabled" } else { "disabled: no admin token" },
            "pending": self.pending_list().len(),
            "state_dir": self.state.path(),
            "pending_file": self.state.file(PENDING_FILE),
            "store": self.store.describe(),
            "installer": self.pip.describe(),
        })
    }

    /// What is installed, from the service's manifest (never from what is found on disk).
    pub(crate) fn installed(&self) -> Vec<Installed> {
        self.store.installed()
    }

    /// Write the held requests to the pending file (called with the lock held, so writes
    /// happen in the order of the changes). A failure is logged; the requests stay in memory.
    fn save_pending(&self, pending: &PendingMap) {
        if let Err(error) = write_pending(&self.state, pending) {
            tracing::error!(
                file = %self.state.file(PENDING_FILE).display(),
                %error,
                "cannot save the requests held for approval; they are kept in memory only and a restart would lose them"
            );
        }
    }

    fn count(&self, decision: &'static str) {
        self.decisions
            .get_or_create(&DecisionLabel { decision })
            .inc();
    }

    fn outcome(
        &self,
        status: InstallStatus,
        requirement: (&str, Option<&str>),
        reason: Option<String>,
        approval_id: Option<String>,
        installed: Vec<String>,
        message: String,
    ) -> InstallOutcome {
        self.count(match status {
            InstallStatus::Installed => "installed",
            InstallStatus::Rejected => "rejected",
            InstallStatus::PendingApproval => "pending_approval",
            InstallStatus::Failed => "failed",
        });
        InstallOutcome {
            status,
            package: requirement.0.to_owned(),
            version: requirement.1.map(str::to_owned),
            reason,
            approval_id,
            installed,
            message,
        }
    }

    /// Decide on a request from a client (`POST /packages`, `install_package`).
    pub(crate) async fn request(&self, request: &InstallRequest) -> InstallOutcome {
        let requirement = match name::parse(&request.package, request.version.as_deref()) {
            Ok(r) => r,
            Err(reason) => {
                let key = (request.package.trim(), request.version.as_deref());
                let message = format!("Not installed: {reason}.");
                return self.refuse(key, reason, &[], message);
            }
        };
        let key = requirement.key();
        match self.policy.check(&requirement.name) {
            Verdict::Block(reason) => {
                let message = format!("Not installed: {} is blocked ({reason}).", requirement.name);
                self.refuse(key, reason, &[], message)
            }
            Verdict::Hold(reason) => self.hold(&requirement, reason, &[]),
            Verdict::Allow => self.install(&requirement, false, None).await,
        }
    }

    fn hold(
        &self,
        requirement: &Requirement,
        reason: String,
        dependencies: &[Pin],
    ) -> InstallOutcome {
        let key = requirement.key();
        let mut pending = match self.pending.lock() {
            Ok(p) => p,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some((id, _)) = pending.iter().find(|(_, (r, _))| r == requirement) {
            let id = id.clone();
            drop(pending);
            return self.outcome(
                InstallStatus::PendingApproval,
                key,
                Some(reason),
                Some(id.clone()),
                Vec::new(),
                format!("Already waiting for an operator's approval (id {id}); it cannot be used until then."),
            );
        }
        if pending.len() >= MAX_PENDING {
            drop(pending);
            let reason = format!("too many requests are waiting for approval ({MAX_PENDING})");
            let message = format!("Not installed: {reason}.");
            return self.refuse(key, reason, dependencies, message);
        }
        let id = uuid::Uuid::new_v4().simple().to_string();
        let requested_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        pending.insert(
            id.clone(),
            (
                requirement.clone(),
                Pending {
                    id: id.clone(),
                    package: requirement.name.clone(),
                    version: key.1.map(str::to_owned),
                    reason: reason.clone(),
                    requested_at,
                },
            ),
        );
        self.save_pending(&pending);
        drop(pending);
        audit(
            "request",
            "pending_approval",
            key,
            Some(&reason),
            Some(&id),
            "client",
            dependencies,
        );
        self.outcome(
            InstallStatus::PendingApproval,
            key,
            Some(reason),
            Some(id.clone()),
            Vec::new(),
            format!("Held for an operator's approval (id {id}); the package cannot be used until it is approved."),
        )
    }

    /// Resolve, check every package of the resolution, install.
    async fn install(
        &self,
        requirement: &Requirement,
        approved: bool,
        approval_id: Option<&str>,
    ) -> InstallOutcome {
        let key = requirement.key();
        let actor = if approved { "operator" } else { "client" };
        let action = if approved { "approve" } else { "request" };
        if let Some(installed) = self.installed().into_iter().find(|i| {
            i.name == requirement.name
                && requirement
                    .version
                    .as_ref()
                    .is_none_or(|v| v.matches(&i.version))
        }) {
            let pin = format!("{}=={}", installed.name, installed.version);
            audit(
                action,
                "installed",
                key,
                Some("already installed"),
                approval_id,
                actor,
                &[],
            );
            return self.outcome(
                InstallStatus::Installed,
                (key.0, Some(&installed.version)),
                None,
                approval_id.map(str::to_owned),
                vec![pin.clone()],
                format!("{pin} is already installed; programs can import it."),
            );
        }
        let _one_at_a_time = self.installing.lock().await;
        let pins = match self.pip.resolve(requirement).await {
            Ok(pins) => pins,
            Err(reason) => return self.failed(action, key, reason, approval_id, actor),
        };
        for pin in pins.iter().filter(|p| p.name != requirement.name) {
            match self.policy.check(&pin.name) {
                Verdict::Block(why) => {
                    let reason = format!("it requires {}, which is blocked ({why})", pin.spec());
                    audit(
                        action,
                        "rejected",
                        key,
                        Some(&reason),
                        approval_id,
                        actor,
                        &pins,
                    );
                    return self.outcome(
                        InstallStatus::Rejected,
                        key,
                        Some(reason.clone()),
                        None,
                        Vec::new(),
                        format!("Not installed: {reason}."),
                    );
                }
                Verdict::Hold(why) if !approved => {
                    let reason =
                        format!("it requires {}, which needs approval ({why})", pin.spec());
                    return self.hold(requirement, reason, &pins);
                }
                _ => {}
            }
        }
        let add = |target: &Path| self.store.add(&self.state, target, &pins);
        if let Err(reason) = self.pip.install(&pins, add).await {
            return self.failed(action, key, reason, approval_id, actor);
        }
        let version = pins
            .iter()
            .find(|p| p.name == requirement.name)
            .map(|p| p.version.clone())
            .or_else(|| key.1.map(str::to_owned));
        let specs: Vec<String> = pins.iter().map(Pin::spec).collect();
        audit(
            action,
            "installed",
            (key.0, version.as_deref()),
            None,
            approval_id,
            actor,
            &pins,
        );
        self.outcome(
            InstallStatus::Installed,
            (key.0, version.as_deref()),
            None,
            approval_id.map(str::to_owned),
            specs.clone(),
            format!(
                "Installed {}; programs can import it now.",
                specs.join(", ")
            ),
        )
    }

    /// Refuse a client's request: audit and count the refusal, and say why.
    fn refuse(
        &self,
        key: (&str, Option<&str>),
        reason: String,
        dependencies: &[Pin],
        message: String,
    ) -> InstallOutcome {
        audit(
            "request",
            "rejected",
            key,
            Some(&reason),
            None,
            "client",
            dependencies,
        );
        self.outcome(
            InstallStatus::Rejected,
            key,
            Some(reason),
            None,
            Vec::new(),
            message,
        )
    }

    fn failed(
        &self,
        action: &str,
        key: (&str, Option<&str>),
        reason: String,
        approval_id: Option<&str>,
        actor: &str,
    ) -> InstallOutcome {
        audit(
            action,
            "failed",
            key,
            Some(&reason),
            approval_id,
            actor,
            &[],
        );
        self.outcome(
            InstallStatus::Failed,
            key,
            Some(reason.clone()),
            approval_id.map(str::to_owned),
            Vec::new(),
            format!("Installing {} failed: {reason}", key.0),
        )
    }
}

#[cfg(test)]
mod tests;
