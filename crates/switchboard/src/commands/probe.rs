//! `switchboard probe URL`: succeed when URL answers 2xx, fail (exit 2) otherwise.
//!
//! Container health checks run a command inside the container, and the release image has no
//! shell and no curl (a smaller image is a smaller attack surface), so the binary probes its
//! own `/ready` or `/health`: `switchboard probe http://127.0.0.1:8003/ready`.

#[derive(Debug, clap::Args)]
pub struct Args {
    /// URL to GET, e.g. http://127.0.0.1:8003/ready.
    pub url: String,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 3.0, value_name = "SECONDS")]
    pub timeout: f64,
}

/// Prints the status on success; the error names the status and body, or why there was none.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let timeout = switchboard_runtime::config::seconds("--timeout", args.timeout)?;
    let client = reqwest::Client::builder().timeout(timeout).build()?;
    let response = client
        .get(&args.url)
        .send()
        .await
        .map_err(|error| anyhow::anyhow!("{}: {error}", args.url))?;
    let status = response.status();
    if status.is_success() {
        outln!("{} {status}", args.url);
        return Ok(());
    }
    let body = response.text().await.unwrap_or_default();
    anyhow::bail!("{} {status} {}", args.url, body.trim())
}
