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
    auth::{AuthArgs, AuthSettings},
    config::{ConfigFile, layer},
    http::HttpArgs,
};
use tokio::net::TcpListener;

/// The shared `[http]` and `[auth]` settings: flags/env over the file.
pub fn http_settings(
    args: &HttpArgs,
    auth: &AuthArgs,
    file: Option<&ConfigFile>,
) -> anyhow::Result<HttpSettings> {
    let auth = AuthSettings::try_from(layer(auth, file, "auth")?)?;
    Ok(HttpSettings::try_from(layer(args, file, "http")?)?.with_auth(auth))
}

/// Bind a listener, with an error that says which service and address; refused beyond
/// loopback without authentication (unless explicitly allowed).
pub async fn bind(
    service: &str,
    addr: SocketAddr,
    auth: &AuthSettings,
) -> anyhow::Result<TcpListener> {
    auth.check_exposure(service, addr)?;
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("{service}: cannot listen on {addr}"))
}
