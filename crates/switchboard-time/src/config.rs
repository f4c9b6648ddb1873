//! Settings of the time-client.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};
use switchboard_runtime::{Error, HttpSettings, config::parse_socket_addr};

/// Default listen address (docs/design.md: time-client on 8003).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8003";

/// Settings as given on the command line, in the environment or in `[time-client]`.
#[derive(Debug, Clone, Default, clap::Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Address to listen on [default: 127.0.0.1:8003].
    #[arg(long, env = "TIME_CLIENT_LISTEN", value_parser = parse_socket_addr, value_name = "IP:PORT")]
    pub listen: Option<SocketAddr>,
    /// IANA time zone used when a call names none [default: UTC].
    #[arg(long, env = "TIME_CLIENT_DEFAULT_TIMEZONE", value_name = "ZONE")]
    pub default_timezone: Option<String>,
}

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub default_timezone: String,
    pub http: HttpSettings,
}

impl Config {
    pub fn from_parts(raw: RawConfig, http: HttpSettings) -> Result<Self, Error> {
        let default_timezone = raw.default_timezone.unwrap_or_else(|| "UTC".to_owned());
        if let Err(message) = crate::clock::zone(&default_timezone) {
            return Err(Error::Config(format!(
                "default_timezone (--default-timezone / TIME_CLIENT_DEFAULT_TIMEZONE): {message}"
            )));
        }
        let listen = match raw.listen {
            Some(addr) => addr,
            None => DEFAULT_LISTEN
                .parse()
                .map_err(|e| Error::Config(format!("built-in listen address: {e}")))?,
        };
        Ok(Self {
            listen,
            default_timezone,
            http,
        })
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8003)),
            default_timezone: "UTC".to_owned(),
            http: HttpSettings::default(),
        }
    }
}
