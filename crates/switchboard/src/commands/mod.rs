//! One module per client subcommand, [`service`] for the five services, [`up`] for all of them.
//! Each service subcommand turns its arguments (flags, environment, config file) into
//! the service's validated `Config`, binds the listener and calls the service crate's `serve`.

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
    config::{ConfigFile, layer},
    http::HttpArgs,
};
use tokio::net::TcpListener;

/// The shared `[http]` settings: flags/env over the file.
pub fn http_settings(args: &HttpArgs, file: Option<&ConfigFile>) -> anyhow::Result<HttpSettings> {
    Ok(HttpSettings::try_from(layer(args, file, "http")?)?)
}

/// Bind a listener, with an error that says which service and address.
pub async fn bind(service: &str, addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("{service}: cannot listen on {addr}"))
}
