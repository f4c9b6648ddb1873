//! Running pip, in a sandbox of its own.
//!
//! pip needs the package index, so it cannot run inside an execution sandbox; instead it runs
//! under [`super::confine`] (its own uid or user namespace, pid namespace, Landlock, no network
//! when offline, rlimits, a time limit that kills everything it started), with an empty
//! environment (only `PATH`, a private `HOME`/`TMPDIR`, and proxy variables if the service has
//! them — never anything else of the service's), and wheels only unless source builds are
//! allowed (building a source distribution runs its code). Two runs per request: a dry run
//! that resolves the full set of packages (so the policy sees every dependency) and names each
//! wheel's sha256, then the install of exactly those wheels (`--no-deps --require-hashes`) into
//! pip's scratch directory, from which the service copies them into the store
//! ([`super::store`]).

use std::{
    os::unix::fs::DirBuilderExt,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use serde::Deserialize;

use super::confine::{Confinement, url_port};
use super::name::{Requirement, normalize};
use crate::config::PackageSettings;

/// How pip is run.
#[derive(Debug, Clone)]
pub(crate) struct Pip {
    python: PathBuf,
    index_url: Option<String>,
    wheel_dir: Option<PathBuf>,
    offline: bool,
    allow_source_builds: bool,
    timeout: Duration,
    /// Host ids pip runs as when the service is root.
    run_as: Option<(u32, u32)>,
    /// TCP ports pip may connect to: the index's and the proxies'.
    ports: Vec<u16>,
}

/// One package of a resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pin {
    pub name: String,
    pub version: String,
    /// sha256 (hex) of the wheel the resolution chose, when pip named it.
    pub sha256: Option<String>,
}

impl Pin {
    pub(crate) fn spec(&self) -> String {
        format!("{}=={}", self.name, self.version)
    }
}

#[derive(Deserialize)]
struct Report {
    #[serde(default)]
    install: Vec<ReportItem>,
}

#[derive(Deserialize)]
struct ReportItem {
    metadata: ReportMetadata,
    #[serde(default)]
    download_info: Option<DownloadInfo>,
}

#[derive(Deserialize)]
struct DownloadInfo {
    #[serde(default)]
    archive_info: Option<ArchiveInfo>,
}

#[derive(Deserialize)]
struct ArchiveInfo {
    /// `sha256=<hex>`.
    #[serde(default)]
    hash: Option<String>,
}

impl ReportItem {
    fn sha256(&self) -> Option<String> {
        let hash = self
            .download_info
            .as_ref()?
            .archive_info
            .as_ref()?
            .hash
            .as_deref()?;
        let hex = hash.strip_prefix("sha256=")?;
        (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| hex.to_ascii_lowercase())
    }
}

#[derive(Deserialize)]
struct ReportMetadata {
    name: String,
    version: String,
}

/// Environment variables passed through to pip: proxies only.
const PASSED_THROUGH: &[&str] = &[
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
];

impl Pip {
    pub(crate) fn new(
        python: &Path,
        settings: &PackageSettings,
        run_as: Option<(u32, u32)>,
    ) -> Self {
        let mut ports: Vec<u16> = PASSED_THROUGH
            .iter()
            .filter_map(|name| std::env::var(name).ok())
            .filter_map(|url| url_port(&url))
            .collect();
        ports.push(
            settings
                .index_url
                .as_deref()
                .and_then(url_port)
                .unwrap_or(443),
        );
        ports.sort_unstable();
        ports.dedup();
        Self {
            python: python.to_owned(),
            index_url: settings.index_url.clone(),
            wheel_dir: settings.wheel_dir.clone(),
            offline: settings.offline,
            allow_source_builds: settings.allow_source_builds,
            timeout: settings.install_timeout,
            run_as,
            ports,
        }
    }

    /// How pip is confined, for `/ready`.
    pub(crate) fn describe(&self) -> serde_json::Value {
        let landlock = crate::isolation::landlock_rules::Availability::detect();
        serde_json::json!({
            "runs_as": match self.run_as {
                Some((uid, _)) => format!("uid {uid}"),
                None => "the service's uid, in a user namespace of its own".into(),
            },
            "namespaces": if self.offline { "pid (own /proc), mount, ipc, net (no network)" } else { "pid (own /proc), mount, ipc" },
            "landlock": landlock.describe(),
            "tcp_connect_ports": if self.offline { Vec::new() } else { self.ports.clone() },
            "timeout_seconds": self.timeout.as_secs(),
            "source_builds": self.allow_source_builds,
        })
    }

    fn source_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if self.offline {
            args.push("--no-index".into());
        } else if let Some(url) = &self.index_url {
            args.extend(["--index-url".into(), url.clone()]);
        }
        if let Some(dir) = &self.wheel_dir {
            args.extend(["--find-links".into(), dir.display().to_string()]);
        }
        if !self.allow_source_builds {
            args.extend(["--only-binary".into(), ":all:".into()]);
        }
        args
    }

    /// Every package `requirement` needs, dependencies included (a dry run).
    pub(crate) async fn resolve(&self, requirement: &Requirement) -> Result<Vec<Pin>, String> {
        let mut args: Vec<String> = [
            "install",
            "--dry-run",
            "--ignore-installed",
            "--quiet",
            "--report",
            "-",
        ]
        .map(String::from)
        .to_vec();
        args.extend(self.source_args());
        args.push(requirement.spec());
        let stdout = self.run(&args).await?;
        // The report is the (pretty-printed) JSON object in stdout; skip any notice before it.
        let start = stdout
            .find('{')
            .ok_or("pip produced no resolution report")?;
        let report: Report = serde_json::Deserializer::from_str(&stdout[start..])
            .into_iter::<Report>()
            .next()
            .ok_or("pip produced no resolution report")?
            .map_err(|e| format!("pip's resolution report is not readable: {e}"))?;
        // A package whose name does not validate cannot be checked against the policy, so the
        // whole resolution is refused rather than that package skipped.
        report
            .install
            .into_iter()
            .map(|i| {
                let name = normalize(&i.metadata.name).map_err(|e| {
                    format!("pip's resolution includes a package that cannot be checked: {e}")
                })?;
                Ok(Pin {
                    name,
                    sha256: i.sha256(),
                    version: i.metadata.version,
                })
            })
            .collect()
    }

    /// Install exactly `pins` (by wheel hash, when every pin has one) into pip's scratch
    /// directory, then hand that directory (`target`) to `add` before it is removed.
    pub(crate) async fn install(
        &self,
        pins: &[Pin],
        add: impl FnOnce(&Path) -> Result<(), String>,
    ) -> Result<(), String> {
        let scratch = self.scratch()?;
        let target = scratch.join("target");
        let mut args: Vec<String> = ["install", "--no-deps", "--quiet", "--target"]
            .map(String::from)
            .to_vec();
        args.push(target.display().to_string());
        args.extend(self.source_args());
        if pins.iter().all(|p| p.sha256.is_some()) {
            let requirements: String = pins
                .iter()
                .map(|p| {
                    format!(
                        "{} --hash=sha256:{}\n",
                        p.spec(),
                        p.sha256.as_deref().unwrap_or_default()
                    )
                })
                .collect();
            let file = scratch.join("requirements.txt");
            std::fs::write(&file, requirements)
                .map_err(|e| format!("pip requirements file: {e}"))?;
            args.extend([
                "--require-hashes".into(),
                "-r".into(),
                file.display().to_string(),
            ]);
        } else {
            args.extend(pins.iter().map(Pin::spec));
        }
        let result = match self.run_in(&scratch, &args).await {
            Ok(_) => add(&target),
            Err(e) => Err(e),
        };
        let _ = std::fs::remove_dir_all(&scratch);
        result
    }

    /// Run `python -I -m pip <args>`; stdout on success, pip's error on failure.
    async fn run(&self, args: &[String]) -> Result<String, String> {
        let scratch = self.scratch()?;
        let result = self.run_in(&scratch, args).await;
        let _ = std::fs::remove_dir_all(&scratch);
        result
    }

    /// pip's scratch directory (its `HOME`, `TMPDIR` and install target): in the shared
    /// temporary directory under a name nobody can guess, so that no other user can occupy it
    /// beforehand; `mkdir` never follows a link planted there, and the directory is the
    /// service's (then pip's) alone.
    fn scratch(&self) -> Result<PathBuf, String> {
        let scratch =
            std::env::temp_dir().join(format!("switchboard-pip-{}", uuid::Uuid::new_v4().simple()));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&scratch)
            .map_err(|e| format!("pip scratch directory: {e}"))?;
        if let Some((uid, gid)) = self.run_as {
            std::os::unix::fs::chown(&scratch, Some(uid), Some(gid))
                .map_err(|e| format!("pip scratch directory: {e}"))?;
        }
        Ok(scratch)
    }

    async fn run_in(&self, scratch: &Path, args: &[String]) -> Result<String, String> {
        let mut command = tokio::process::Command::new(&self.python);
        command
            .args([
                "-I",
                "-m",
                "pip",
                "--disable-pip-version-check",
                "--no-input",
                "--no-cache-dir",
            ])
            .args(args)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", scratch)
            .env("TMPDIR", scratch)
            .env("LANG", "C.UTF-8")
            .current_dir(scratch)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for name in PASSED_THROUGH {
            if let Some(value) = std::env::var_os(name) {
                command.env(name, value);
            }
        }
        let mut confinement = Confinement::new(
            self.run_as,
            scratch,
            self.offline,
            &self.ports,
            self.timeout.as_secs().saturating_mul(2),
        );
        // SAFETY: `apply` makes raw system calls only, on values prepared here.
        unsafe {
            command.pre_exec(move || confinement.apply());
        }
        let child = command
            .spawn()
            .map_err(|e| format!("cannot run {} -m pip: {e}", self.python.display()))?;
        let output = match tokio::time::timeout(self.timeout, child.wait_with_output()).await {
            Ok(Ok(output)) => output,
            Ok(Err(e)) => return Err(format!("pip failed to run: {e}")),
            Err(_) => {
                return Err(format!(
                    "pip did not finish within {}s and was stopped",
                    self.timeout.as_secs()
                ));
            }
        };
        if output.status.success() {
            return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        let errors: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("ERROR:"))
            .map(|l| l.trim_start_matches("ERROR:").trim())
            .collect();
        let message = if errors.is_empty() {
            stderr.lines().rev().take(3).collect::<Vec<_>>().join(" / ")
        } else {
            errors.join(" ")
        };
        Err(format!(
            "pip failed ({}): {}",
            output.status,
            message.trim()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offline_means_no_index_and_wheels_only_by_default() {
        let settings =
            PackageSettings::new("/srv/site".into()).with_wheel_dir("/srv/wheels".into(), true);
        let pip = Pip::new(Path::new("/usr/bin/python3"), &settings, None);
        let args = pip.source_args();
        assert!(args.contains(&"--no-index".to_owned()));
        assert!(
            args.windows(2)
                .any(|w| w == ["--find-links", "/srv/wheels"])
        );
        assert!(args.windows(2).any(|w| w == ["--only-binary", ":all:"]));
    }
}
