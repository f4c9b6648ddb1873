//! The package store: the directory programs import from (`/packages`), written only by the
//! service, described by the service's own manifest.
//!
//! What used to be trusted was whatever `*.dist-info` pip left in a directory pip's uid owned:
//! one allowed wheel could replace another distribution's modules, forge a distribution
//! ("numpy 1.26.4 is already installed"), or plant files the service would read. Now:
//!
//! - the directory belongs to the service (mode 0755); pip installs into a scratch directory
//!   of its own, in its own sandbox ([`super::confine`]), and the service copies the result in;
//! - only files a distribution's `RECORD` lists are copied, each opened beneath the scratch
//!   directory without following any link (`openat2`), hashed while copied and compared with
//!   `RECORD` (and the wheel itself was pinned by hash, `--require-hashes`);
//! - a distribution may not install another's metadata directory, overwrite another's file, or
//!   add files to a module another distribution owns (a top-level module file or regular
//!   package; namespace packages are shared file by file);
//! - the manifest (`packages-manifest.json` in the state directory: each distribution's
//!   version, wheel hash and every file's sha256) is the truth for "what is installed";
//! - at start every file is checked against it: a distribution with a changed or missing file
//!   is removed and reported on `/ready` (`packages.store.refused`), and every file the manifest
//!   does not list is deleted and counted (`packages.store.removed`).

mod add;
mod record;
mod verify;

use std::{collections::BTreeMap, path::PathBuf, sync::Mutex};

use serde::{Deserialize, Serialize};

use super::Installed;
use crate::state::StateDir;

pub(crate) const MANIFEST_FILE: &str = "packages-manifest.json";
/// Largest manifest read back (the scientific stack's is about 1 MB).
const MAX_MANIFEST_BYTES: u64 = 64 << 20;

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub(crate) struct Manifest {
    pub distributions: BTreeMap<String, Distribution>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Distribution {
    pub version: String,
    /// sha256 (hex) of the wheel pip installed, when the resolution named it.
    pub wheel_sha256: Option<String>,
    /// Path (relative to the store) → the file.
    pub files: BTreeMap<String, FileEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct FileEntry {
    pub sha256: String,
    pub size: u64,
    pub executable: bool,
}

/// What the check at start found.
#[derive(Debug, Default, Clone, Serialize)]
pub(crate) struct Check {
    pub distributions: usize,
    pub files: usize,
    /// Distributions removed because a file changed: name, version, why.
    pub refused: Vec<Refused>,
    /// Files nobody installed, deleted.
    pub removed: usize,
    /// The first few of them, for the operator.
    pub removed_examples: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Refused {
    pub name: String,
    pub version: String,
    pub reason: String,
}

pub(crate) struct Store {
    dir: PathBuf,
    manifest: Mutex<Manifest>,
    check: Check,
}

impl Store {
    /// Read the manifest from `state` and check `dir` against it (see the module docs).
    pub(crate) fn open(dir: PathBuf, state: &StateDir) -> Self {
        let mut manifest = match state.read(MANIFEST_FILE, MAX_MANIFEST_BYTES) {
            Ok(Some(bytes)) => match serde_json::from_slice(&bytes) {
                Ok(manifest) => manifest,
                Err(error) => {
                    tracing::error!(%error, "the package manifest is not readable; every installed file is treated as unknown and removed");
                    Manifest::default()
                }
            },
            Ok(None) => Manifest::default(),
            Err(error) => {
                tracing::error!(%error, "the package manifest cannot be read; every installed file is treated as unknown and removed");
                Manifest::default()
            }
        };
        let before = manifest.distributions.len();
        let check = verify::verify(&dir, &mut manifest);
        if manifest.distributions.len() != before {
            save(state, &manifest);
        }
        for refused in &check.refused {
            tracing::error!(
                package = %refused.name,
                version = %refused.version,
                reason = %refused.reason,
                "an installed package does not match what was installed and was removed; install it again"
            );
        }
        if check.removed > 0 {
            tracing::error!(
                files = check.removed,
                examples = ?check.removed_examples,
                "files in the package store that no installed package lists were removed"
            );
        }
        Self {
            dir,
            manifest: Mutex::new(manifest),
            check,
        }
    }

    fn manifest(&self) -> std::sync::MutexGuard<'_, Manifest> {
        match self.manifest.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// What is installed, from the manifest.
    pub(crate) fn installed(&self) -> Vec<Installed> {
        self.manifest()
            .distributions
            .iter()
            .map(|(name, d)| Installed {
                name: name.clone(),
                version: d.version.clone(),
            })
            .collect()
    }

    pub(crate) fn describe(&self) -> serde_json::Value {
        let manifest = self.manifest();
        serde_json::json!({
            "owner": "the service (pip installs into a scratch directory; the service copies verified files in)",
            "distributions": manifest.distributions.len(),
            "files": manifest.distributions.values().map(|d| d.files.len()).sum::<usize>(),
            "checked_at_start": &self.check,
        })
    }
}

/// Write the manifest; a failure is logged (the files stay; the next start removes what the
/// manifest on disk does not list).
fn save(state: &StateDir, manifest: &Manifest) {
    let written = serde_json::to_vec(manifest)
        .map_err(std::io::Error::other)
        .and_then(|bytes| state.write(MANIFEST_FILE, &bytes));
    if let Err(error) = written {
        tracing::error!(file = %state.file(MANIFEST_FILE).display(), %error, "cannot save the package manifest");
    }
}

#[cfg(test)]
mod tests;
