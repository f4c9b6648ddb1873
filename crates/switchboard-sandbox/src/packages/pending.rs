//! Requests held for approval, kept across restarts in `.switchboard-pending.json` in the
//! managed directory.

use std::path::Path;

use super::{MAX_PENDING, Pending, PendingMap, name};

/// The file in the managed directory that keeps held requests across restarts.
pub(super) const PENDING_FILE: &str = ".switchboard-pending.json";
/// Largest pending file read back (100 requests take a few KiB).
const MAX_PENDING_FILE_BYTES: u64 = 1024 * 1024;

/// Read the held requests saved by an earlier run. Entries whose name or version no longer
/// validate are dropped with a warning; an unreadable file is set aside (renamed with
/// `.unreadable`) so that nothing in it is overwritten, and the run starts with none.
pub(super) fn load_pending(path: &Path) -> PendingMap {
    let read = || -> Result<Option<Vec<Pending>>, String> {
        let file = match std::fs::File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.to_string()),
        };
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(
            &mut std::io::Read::take(file, MAX_PENDING_FILE_BYTES + 1),
            &mut bytes,
        )
        .map_err(|e| e.to_string())?;
        if bytes.len() as u64 > MAX_PENDING_FILE_BYTES {
            return Err(format!("larger than {MAX_PENDING_FILE_BYTES} bytes"));
        }
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| e.to_string())
    };
    let entries = match read() {
        Ok(Some(entries)) => entries,
        Ok(None) => return PendingMap::new(),
        Err(error) => {
            let aside = path.with_extension("json.unreadable");
            let moved = std::fs::rename(path, &aside).is_ok();
            tracing::error!(
                file = %path.display(),
                %error,
                set_aside = moved.then(|| aside.display().to_string()),
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

/// Replace the pending file atomically: write a temporary file (mode 0600), then rename.
pub(super) fn write_pending(path: &Path, pending: &PendingMap) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let entries: Vec<&Pending> = pending.values().map(|(_, p)| p).collect();
    let bytes = serde_json::to_vec_pretty(&entries).map_err(std::io::Error::other)?;
    let temporary = path.with_extension("json.tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)?;
    file.write_all(&bytes)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn pending_requests_round_trip_and_bad_entries_are_dropped() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join(PENDING_FILE);
        assert!(load_pending(&path).is_empty(), "no file: none held");
        let mut held = PendingMap::new();
        for (id, package) in [("a", "good-pkg"), ("b", "bad name!")] {
            // Built directly: `name::parse` would refuse the bad name the file may still hold.
            let requirement = name::Requirement {
                name: package.into(),
                version: Some(name::ExactVersion::parse("1.0").expect("a version")),
            };
            held.insert(id.into(), (requirement, entry(id, package)));
        }
        write_pending(&path, &held).expect("written");
        let mode = std::fs::metadata(&path).expect("exists").permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
        let loaded = load_pending(&path);
        assert_eq!(loaded.keys().collect::<Vec<_>>(), ["a"]);
        assert_eq!(loaded["a"].0.spec(), "good-pkg==1.0");
    }

    #[test]
    fn an_unreadable_file_is_set_aside_not_overwritten() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join(PENDING_FILE);
        std::fs::write(&path, b"{ not json").expect("written");
        assert!(load_pending(&path).is_empty());
        assert!(!path.exists());
        let aside = dir.path().join(".switchboard-pending.json.unreadable");
        assert_eq!(std::fs::read(aside).expect("set aside"), b"{ not json");
    }
}
