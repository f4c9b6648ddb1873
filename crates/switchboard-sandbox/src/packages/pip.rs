//! Running pip, in its own restricted process.
//!
//! pip needs the package index, so it cannot run inside an execution sandbox; instead it runs
//! with an empty environment (only `PATH`, a private `HOME`/`TMPDIR`, and proxy variables if
//! the service has them — never anything else of the service's), as the unprivileged sandbox
//! host user when the service is root, with rlimits, a time limit, and wheels only unless
//! source builds are allowed (building a source distribution runs its code). Two runs per
//! request: a dry run that resolves the full set of packages (so the policy sees every
//! dependency), then the install of exactly those pins with `--no-deps`.

use std::{
    os::unix::fs::DirBuilderExt,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use serde::Deserialize;

use super::name::{Requirement, normalize};
use crate::config::PackageSettings;

/// How pip is run.
#[derive(Debug, Clone)]
pub(crate) struct Pip {
    python: PathBuf,
    target: PathBuf,
    index_url: Option<String>,
    wheel_dir: Option<PathBuf>,
    offline: bool,
    allow_source_builds: bool,
    timeout: Duration,
    /// Host ids pip runs as when the service is root.
    run_as: Option<(u32, u32)>,
}

/// One package of a resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pin {
    pub name: String,
    pub version: String,
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
        Self {
            python: python.to_owned(),
            target: settings.dir.clone(),
            index_url: settings.index_url.clone(),
            wheel_dir: settings.wheel_dir.clone(),
            offline: settings.offline,
            allow_source_builds: settings.allow_source_builds,
            timeout: settings.install_timeout,
            run_as,
        }
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
                    version: i.metadata.version,
                })
            })
            .collect()
    }

    /// Install exactly `pins` into the managed directory.
    pub(crate) async fn install(&self, pins: &[Pin]) -> Result<(), String> {
        let mut args: Vec<String> = ["install", "--no-deps", "--upgrade", "--quiet", "--target"]
            .map(String::from)
            .to_vec();
        args.push(self.target.display().to_string());
        args.extend(self.source_args());
        args.extend(pins.iter().map(Pin::spec));
        self.run(&args).await.map(drop)
    }

    /// Run `python -I -m pip <args>`; stdout on success, pip's error on failure.
    async fn run(&self, args: &[String]) -> Result<String, String> {
        // In the shared temporary directory under a name nobody can guess, so that no other
        // user can occupy it beforehand; `mkdir` never follows a link planted there, and the
        // directory is the service's (then pip's) alone.
        let scratch =
            std::env::temp_dir().join(format!("switchboard-pip-{}", uuid::Uuid::new_v4().simple()));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&scratch)
            .map_err(|e| format!("pip scratch directory: {e}"))?;
        let result = self.run_in(&scratch, args).await;
        let _ = std::fs::remove_dir_all(&scratch);
        result
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
        if let Some((uid, gid)) = self.run_as {
            std::os::unix::fs::chown(scratch, Some(uid), Some(gid))
                .map_err(|e| format!("pip scratch directory: {e}"))?;
            command.uid(uid).gid(gid);
        }
        // SAFETY: only setrlimit, which is async-signal-safe, between fork and exec.
        unsafe {
            command.pre_exec(|| {
                for (resource, limit) in [
                    (libc::RLIMIT_CORE, 0),
                    (libc::RLIMIT_FSIZE, 1 << 30),
                    (libc::RLIMIT_AS, 4 << 30),
                ] {
                    let limit = libc::rlimit {
                        rlim_cur: limit,
                        rlim_max: limit,
                    };
                    if libc::setrlimit(resource, &limit) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
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
