//! Requests held for approval, kept across restarts in the service's state directory
//! ([`crate::state`]), never in the managed directory: that one belongs to pip's uid.

use std::{
    os::{fd::AsFd, unix::fs::OpenOptionsExt},
    path::Path,
};

use super::{MAX_PENDING, Pending, PendingMap, name};
use crate::state::{StateDir, read_trusted, rename_at, unlink_at};

/// The file in the state directory that keeps held requests across restarts.
pub(super) const PENDING_FILE: &str = "pending-approvals.json";
/// Where versions before the state directory kept them: in the managed directory.
pub(super) const LEGACY_PENDING_FILE: &str = ".switchboard-pending.json";
/// Largest pending file read back (100 requests take a few KiB).
const MAX_PENDING_FILE_BYTES: u64 = 1024 * 1024;

/// Move the held requests an earlier version kept in the managed directory into the state
/// directory. Any process of pip's uid can put anything under that name (a link to a host
/// file, a file of its own), so it is read only if it is a regular file of the service's uid
/// with a single link; anything else is renamed aside unread, with a warning.
pub(super) fn migrate_legacy(packages_dir: &Path, state: &StateDir) {
    let Ok(dir) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(packages_dir)
    else {
        return;
    };
    let legacy = packages_dir.join(LEGACY_PENDING_FILE);
    let target = state.file(PENDING_FILE);
    match read_trusted(dir.as_fd(), LEGACY_PENDING_FILE, MAX_PENDING_FILE_BYTES) {
        Ok(None) => {}
        Ok(Some(bytes)) => {
            let outcome = match state.read(PENDING_FILE, MAX_PENDING_FILE_BYTES) {
                Ok(Some(_)) => Ok("dropped: the state directory already has newer ones"),
                _ => state.write(PENDING_FILE, &bytes).map(|()| "moved"),
            };
            match outcome {
                Ok(what) => {
                    let _ = unlink_at(dir.as_fd(), LEGACY_PENDING_FILE);
                    tracing::warn!(
                        from = %legacy.display(),
                        to = %target.display(),
                        "requests held for approval by an earlier version: {what}"
                    );
                }
                Err(error) => tracing::error!(
                    from = %legacy.display(),
                    to = %target.display(),
                    %error,
                    "cannot move the requests held for approval by an earlier version; they are not loaded"
                ),
            }
        }
        Err(error) => {
            let aside = format!("{LEGACY_PENDING_FILE}.untrusted");
            let moved = rename_at(dir.as_fd(), LEGACY_PENDING_FILE, &aside).is_ok();
            tracing::warn!(
                file = %legacy.display(),
                %error,
                set_aside = moved.then(|| packages_dir.join(&aside).display().to_string()),
                "ignored a file of held requests in the packages directory that the service cannot trust"
            );
        }
    }
}

/// Read the held requests saved by an earlier run. Entries whose name or version no longer
/// validate are dropped with a warning; an unreadable file is set aside (renamed with
/// `.unreadable`) so that nothing in it is overwritten, and the run starts with none.
pub(super) fn load_pending(state: &StateDir) -> PendingMap {
    let path = state.file(PENDING_FILE);
    let read = || -> Result<Option<Vec<Pending>>, String> {
        match state.read(PENDING_FILE, MAX_PENDING_FILE_BYTES) {
            Ok(Some(bytes)) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| e.to_string()),
            Ok(None) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    };
    let entries = match read() {
        Ok(Some(entries)) => entries,
        Ok(None) => return PendingMap::new(),
        Err(error) => {
            let aside = format!("{PENDING_FILE}.unreadable");
            let moved = state.rename(PENDING_FILE, &aside).is_ok();
            tracing::error!(
                file = %path.display(),
                %error,
                set_aside = moved.then(|| state.file(&aside).display().to_string()),
                "cannot read the requests held for approval by an earlier run; starting with none"
            );
            return PendingMap::new();
        }
    };
    let mut pending = PendingMap::new();
    for entry in entries.into_iter().take(MAX_PENDING) {
        match name::parse(&entry.package, entry.version.as_deref()) {
            Ok(requirement) => {
                pending.insert(entry.id.clone(), (requirement, entry));
            }
            Err(reason) => tracing::warn!(
                file = %path.display(),
                id = %entry.id,
                package = %entry.package,
                %reason,
                "dropped a saved request held for approval"
            ),
        }
    }
    if !pending.is_empty() {
        tracing::info!(
            count = pending.len(),
            file = %path.display(),
            "requests held for approval by an earlier run are waiting again"
        );
    }
    pending
}

/// Replace the pending file atomically (see [`StateDir::write`]).
pub(super) fn write_pending(state: &StateDir, pending: &PendingMap) -> std::io::Result<()> {
    let entries: Vec<&Pending> = pending.values().map(|(_, p)| p).collect();
    let bytes = serde_json::to_vec_pretty(&entries).map_err(std::io::Error::other)?;
    state.write(PENDING_FILE, &bytes)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn entry(id: &str, package: &str) -> Pending {
        Pending {
            id: id.into(),
            package: package.into(),
            version: Some("1.0".into()),
            reason: "held".into(),
            requested_at: 1,
        }
    }

    fn state_in(dir: &Path) -> StateDir {
        StateDir::open(&dir.join("state")).expect("a state directory")
    }

    #[test]
    fn pending_requests_round_trip_and_bad_entries_are_dropped() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let state = state_in(dir.path());
        assert!(load_pending(&state).is_empty(), "no file: none held");
        let mut held = PendingMap::new();
        for (id, package) in [("a", "good-pkg"), ("b", "bad name!")] {
            // Built directly: `name::parse` would refuse the bad name the file may still hold.
            let requirement = name::Requirement {
                name: package.into(),
                version: Some(name::ExactVersion::parse("1.0").expect("a version")),
            };
            held.insert(id.into(), (requirement, entry(id, package)));
        }
        write_pending(&state, &held).expect("written");
        let mode = std::fs::metadata(state.file(PENDING_FILE))
            .expect("exists")
            .permissions();
        assert_eq!(mode.mode() & 0o777, 0o600);
        let loaded = load_pending(&state);
        assert_eq!(loaded.keys().collect::<Vec<_>>(), ["a"]);
        assert_eq!(loaded["a"].0.spec(), "good-pkg==1.0");
    }

    #[test]
    fn an_unreadable_file_is_set_aside_not_overwritten() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let state = state_in(dir.path());
        std::fs::write(state.file(PENDING_FILE), b"{ not json").expect("written");
        assert!(load_pending(&state).is_empty());
        assert!(!state.file(PENDING_FILE).exists());
        let aside = state.file("pending-approvals.json.unreadable");
        assert_eq!(std::fs::read(aside).expect("set aside"), b"{ not json");
    }

    #[test]
    fn a_trusted_legacy_file_moves_and_an_untrusted_one_is_set_aside_unread() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let site = dir.path().join("site");
        std::fs::create_dir(&site).expect("created");
        let state = state_in(dir.path());
        let saved = serde_json::to_vec(&[entry("a", "good-pkg")]).expect("json");
        std::fs::write(site.join(LEGACY_PENDING_FILE), &saved).expect("written");
        migrate_legacy(&site, &state);
        assert!(!site.join(LEGACY_PENDING_FILE).exists(), "moved away");
        assert_eq!(load_pending(&state).keys().collect::<Vec<_>>(), ["a"]);

        // A link planted under the old name is neither read nor followed.
        let canary = dir.path().join("canary");
        std::fs::write(&canary, &saved).expect("written");
        std::os::unix::fs::symlink(&canary, site.join(LEGACY_PENDING_FILE)).expect("symlink");
        write_pending(&state, &PendingMap::new()).expect("written");
        migrate_legacy(&site, &state);
        assert!(
            load_pending(&state).is_empty(),
            "nothing read through the link"
        );
        let aside = site.join(".switchboard-pending.json.untrusted");
        assert!(
            std::fs::symlink_metadata(aside)
                .expect("set aside")
                .is_symlink()
        );
        assert_eq!(std::fs::read(&canary).expect("readable"), saved);
    }
}
