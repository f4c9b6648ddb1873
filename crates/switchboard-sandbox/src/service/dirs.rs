//! The service's directories: the managed packages (its own) and its state directory.

use std::{
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::Path,
};

use crate::{Error, PackageSettings, state::StateDir};

/// Create the managed site-packages directory, the service's own (mode 0755).
pub(super) fn prepare_packages_dir(dir: &Path) -> Result<(), Error> {
    let setting = "packages_dir (--packages-dir / SANDBOX_PACKAGES_DIR)";
    if !dir.is_absolute() {
        return Err(Error::Config(format!(
            "{setting}: '{}' must be an absolute path",
            dir.display()
        )));
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::Config(format!("{setting}: cannot create {}: {e}", dir.display())))?;
    // The store is the service's alone (see packages::store): pip installs elsewhere and the
    // service copies verified files in. A directory handed to pip's uid by an older version
    // is taken back; its contents are checked against the manifest at start.
    let meta = std::fs::symlink_metadata(dir)
        .map_err(|e| Error::Config(format!("{setting}: {}: {e}", dir.display())))?;
    if !meta.is_dir() {
        return Err(Error::Config(format!(
            "{setting}: {} is not a directory",
            dir.display()
        )));
    }
    // SAFETY: plain getters.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    if meta.uid() != uid {
        std::os::unix::fs::chown(dir, Some(uid), Some(gid)).map_err(|e| {
            Error::Config(format!(
                "{setting}: {} belongs to uid {}, and the service (uid {uid}) cannot take it: {e}",
                dir.display(),
                meta.uid()
            ))
        })?;
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| Error::Config(format!("{setting}: {}: {e}", dir.display())))?;
    Ok(())
}

/// Open the service's state directory (see [`crate::state`]). It must lie outside the packages
/// directory, which pip's uid owns and programs see; checked before anything is created, and
/// again on the resolved path.
pub(super) fn open_state_dir(packages: &PackageSettings) -> Result<StateDir, Error> {
    let setting = "state_dir (--state-dir / SANDBOX_STATE_DIR)";
    let real_packages = std::fs::canonicalize(&packages.dir).unwrap_or(packages.dir.clone());
    let check = |state: &Path| {
        let overlaps = [&packages.dir, &real_packages]
            .iter()
            .any(|p| state.starts_with(p) || p.starts_with(state));
        if overlaps {
            return Err(Error::Config(format!(
                "{setting}: {} must lie outside the packages directory {}",
                state.display(),
                packages.dir.display()
            )));
        }
        Ok(())
    };
    let dir = packages.state_dir()?;
    check(&dir)?;
    let state = StateDir::open(&dir).map_err(|e| Error::Config(format!("{setting}: {e}")))?;
    check(state.path())?;
    Ok(state)
}
