//! One module per client subcommand, [`service`] for the five services, [`up`] for all of them.
//! Each service subcommand turns its arguments (flags, environment, config file) into
//! the service's validated `Config`, binds the listener and calls the service crate's `serve`.

pub mod auth;
pub mod call;
pub mod chat;
pub mod probe;
pub mod service;
pub mod tools;
pub mod up;

use std::net::SocketAddr;

use anyhow::Context as _;
use switchboard_runtime::{
    HttpSettings,
    audit::{Audit, AuditArgs, AuditSettings},
    auth::{AuthArgs, AuthSettings},
    config::{ConfigFile, layer},
    http::HttpArgs,
};
use tokio::net::TcpListener;

/// The settings every service shares, each from its own section: `[http]`, `[auth]`,
/// `[audit]` (flags/env over the file). Starts the audit log's writer: one per process.
pub fn http_settings(
    shared: &SharedArgs,
    file: Option<&ConfigFile>,
) -> anyhow::Result<HttpSettings> {
    let auth = AuthSettings::try_from(layer(&shared.auth, file, "auth")?)?;
    let audit = AuditSettings::try_from(layer(&shared.audit, file, "audit")?)?;
    Ok(HttpSettings::try_from(layer(&shared.http, file, "http")?)?
        .with_auth(auth)
        .with_audit(Audit::start(&audit)?))
}

/// The flags of the settings every service shares.
#[derive(Debug, clap::Args)]
pub struct SharedArgs {
    #[command(flatten)]
    pub http: HttpArgs,
    #[command(flatten)]
    pub auth: AuthArgs,
    #[command(flatten)]
    pub audit: AuditArgs,
}

/// Bind a listener, with an error that says which service and address; refused beyond
/// loopback without authentication (unless explicitly allowed).
pub async fn bind(
    service: &str,
    addr: SocketAddr,
    http: &HttpSettings,
) -> anyhow::Result<TcpListener> {
    http.check_exposure(service, addr)?;
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("{service}: cannot listen on {addr}"))
}
