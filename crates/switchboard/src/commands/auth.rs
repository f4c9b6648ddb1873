//! `switchboard auth new-key NAME`: a new API key, and the entry that admits it.
//!
//! The key is printed once and stored nowhere; the keys file holds only its SHA-256, so
//! reading that file (or a backup of it) admits nobody.

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: AuthCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum AuthCommand {
    /// Make a key for NAME: the key on stdout's first line, then the `[[key]]` entry to add
    /// to the --api-keys file (reread by every service within a second).
    NewKey {
        /// The caller's name: its identity in logs and audit lines.
        name: String,
        /// Groups the caller belongs to, comma-separated.
        #[arg(long, value_delimiter = ',', value_name = "GROUPS")]
        groups: Vec<String>,
        /// When the key stops working (RFC 3339, e.g. 2027-06-01T00:00:00Z).
        #[arg(long, value_name = "TIME")]
        expires: Option<String>,
    },
}

pub fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        AuthCommand::NewKey {
            name,
            groups,
            expires,
        } => {
            let (key, entry) = switchboard_runtime::auth::api_keys::new_key_with(
                &name,
                &groups,
                expires.as_deref(),
            )?;
            outln!("{key}");
            outln!("# add to the API keys file (the key above is not stored anywhere):");
            out!("{entry}");
            Ok(())
        }
    }
}
