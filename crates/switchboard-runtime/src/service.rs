//! [`Service`]: what a service crate offers to whoever runs it — the CLI's subcommands and
//! `switchboard up`, and the test harness in `switchboard-testkit`. Each service crate
//! implements it once, for a unit struct of its own, so a runner is generic over services
//! instead of relying on every crate happening to define items of the same names.

use std::net::SocketAddr;

use serde::{Serialize, de::DeserializeOwned};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{Error, HttpSettings};

/// The future [`Service::serve`] returns: boxed, so the trait stays usable as a bound without
/// naming each crate's `async fn` type.
pub use futures::future::BoxFuture;

/// A service: its name, its settings in raw and validated form, and how to serve it.
pub trait Service {
    /// The service's name: its config-file section, metric `service` label and log name.
    const NAME: &'static str;
    /// Its settings as flags and environment variables, also read from its config-file
    /// section (hence the serde bounds: the file layer merges through serialization).
    type Raw: clap::Args + clap::FromArgMatches + Serialize + DeserializeOwned;
    /// Its validated settings.
    type Config;
    /// Validate `raw` together with the shared HTTP settings.
    fn from_parts(raw: Self::Raw, http: HttpSettings) -> Result<Self::Config, Error>;
    /// The address `config` asks to listen on. Runners may bind another one (tests bind
    /// port 0) and hand that listener to [`Service::serve`]; nothing else reads this field.
    fn listen(config: &Self::Config) -> SocketAddr;
    /// Serve on `listener`, bound by the caller, until `shutdown` is cancelled.
    fn serve(
        listener: TcpListener,
        config: Self::Config,
        shutdown: CancellationToken,
    ) -> BoxFuture<'static, Result<(), Error>>;
}
