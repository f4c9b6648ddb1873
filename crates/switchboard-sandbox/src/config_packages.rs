//! Package install settings (part of [`super::Config`]).

use std::{path::PathBuf, time::Duration};

use switchboard_runtime::Error;

use super::setting;

/// Package install settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PackageSettings {
    pub dir: PathBuf,
    /// The service's own state (held requests); `None`: [`PackageSettings::state_dir`]'s
    /// default, next to `dir`.
    pub state_dir: Option<PathBuf>,
    pub index_url: Option<String>,
    pub wheel_dir: Option<PathBuf>,
    pub offline: bool,
    /// `None`: the built-in list.
    pub blocked: Option<Vec<String>>,
    pub suspicious: Vec<String>,
    pub admin_token: Option<String>,
    pub allow_source_builds: bool,
    pub install_timeout: Duration,
    /// Exact pins installed at start.
    pub preinstall: Vec<String>,
}

impl PackageSettings {
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            state_dir: None,
            index_url: None,
            wheel_dir: None,
            offline: false,
            blocked: None,
            suspicious: Vec::new(),
            admin_token: None,
            allow_source_builds: false,
            install_timeout: Duration::from_secs(300),
            preinstall: Vec::new(),
        }
    }
    pub fn with_state_dir(mut self, dir: PathBuf) -> Self {
        self.state_dir = Some(dir);
        self
    }
    /// The state directory: as configured, else the packages directory's path with `.state`
    /// appended (a sibling, so that it is not inside the directory pip's uid owns).
    pub fn state_dir(&self) -> Result<PathBuf, Error> {
        if let Some(dir) = &self.state_dir {
            return Ok(dir.clone());
        }
        match self.dir.file_name() {
            Some(name) => {
                let mut name = name.to_owned();
                name.push(".state");
                Ok(self.dir.with_file_name(name))
            }
            None => Err(Error::Config(format!(
                "{}: no default for packages_dir '{}'; set a directory",
                setting("state_dir", "state-dir"),
                self.dir.display()
            ))),
        }
    }
    pub fn with_wheel_dir(mut self, dir: PathBuf, offline: bool) -> Self {
        self.wheel_dir = Some(dir);
        self.offline = offline;
        self
    }
    pub fn with_index_url(mut self, url: impl Into<String>) -> Self {
        self.index_url = Some(url.into());
        self
    }
    pub fn with_blocked(mut self, entries: Vec<String>) -> Self {
        self.blocked = Some(entries);
        self
    }
    pub fn with_suspicious(mut self, entries: Vec<String>) -> Self {
        self.suspicious = entries;
        self
    }
    pub fn with_admin_token(mut self, token: impl Into<String>) -> Self {
        self.admin_token = Some(token.into());
        self
    }
}

/// Where packages go when not configured.
pub fn default_packages_dir() -> Result<PathBuf, Error> {
    // SAFETY: plain getter.
    if unsafe { libc::geteuid() } == 0 {
        return Ok(PathBuf::from("/var/lib/switchboard/site-packages"));
    }
    match std::env::var_os("HOME") {
        Some(home) if !home.is_empty() => {
            Ok(PathBuf::from(home).join(".local/share/switchboard/site-packages"))
        }
        _ => Err(Error::Config(format!(
            "{}: no default without $HOME; set a directory",
            setting("packages_dir", "packages-dir")
        ))),
    }
}
