//! Checking the store against the manifest at start.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs::{self, File},
    io::{self, Read},
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::Path,
};

use sha2::{Digest, Sha256};

use super::{Check, FileEntry, Manifest, Refused};

/// How many removed paths `/ready` names.
const EXAMPLES: usize = 10;

/// The sha256 (hex) and size of what `file` holds from here on.
pub(super) fn hash(file: &mut impl Read) -> io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 << 10];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        size += n as u64;
    }
    Ok((switchboard_runtime::hex(&hasher.finalize()), size))
}

/// What is on disk under `dir`: regular files (relative path → executable bit), and every
/// other entry that is not a directory (links, devices, FIFOs).
fn walk(dir: &Path) -> (BTreeMap<String, bool>, Vec<String>, Vec<String>) {
    let mut files = BTreeMap::new();
    let mut others = Vec::new();
    let mut dirs = Vec::new();
    let mut stack = vec![String::new()];
    while let Some(relative) = stack.pop() {
        let Ok(entries) = fs::read_dir(dir.join(&relative)) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = if relative.is_empty() {
                name
            } else {
                format!("{relative}/{name}")
            };
            match entry.file_type() {
                Ok(t) if t.is_dir() => {
                    dirs.push(path.clone());
                    stack.push(path);
                }
                Ok(t) if t.is_file() => {
                    let executable = entry
                        .metadata()
                        .map(|m| m.permissions().mode() & 0o111 != 0)
                        .unwrap_or(false);
                    files.insert(path, executable);
                }
                _ => others.push(path),
            }
        }
    }
    (files, others, dirs)
}

fn check_file(
    dir: &Path,
    path: &str,
    entry: &FileEntry,
    on_disk: Option<&bool>,
) -> Result<(), String> {
    if on_disk.is_none() {
        return Err(format!("{path} is missing or not a regular file"));
    }
    let mut file = File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(dir.join(path))
        .map_err(|e| format!("{path}: {e}"))?;
    let (sha256, size) = hash(&mut file).map_err(|e| format!("{path}: {e}"))?;
    if sha256 != entry.sha256 || size != entry.size {
        return Err(format!("{path} differs from what was installed"));
    }
    Ok(())
}

/// Check `dir` against `manifest`: drop distributions whose files changed, delete what nobody
/// installed, remove directories left empty.
pub(super) fn verify(dir: &Path, manifest: &mut Manifest) -> Check {
    let (on_disk, others, mut dirs) = walk(dir);
    let mut check = Check::default();
    manifest.distributions.retain(|name, dist| {
        let failure = dist
            .files
            .iter()
            .find_map(|(path, entry)| check_file(dir, path, entry, on_disk.get(path)).err());
        match failure {
            None => true,
            Some(reason) => {
                check.refused.push(Refused {
                    name: name.clone(),
                    version: dist.version.clone(),
                    reason,
                });
                false
            }
        }
    });
    let owned: BTreeSet<&str> = manifest
        .distributions
        .values()
        .flat_map(|d| d.files.keys().map(String::as_str))
        .collect();
    for path in on_disk
        .keys()
        .filter(|p| !owned.contains(p.as_str()))
        .chain(&others)
    {
        if fs::remove_file(dir.join(path)).is_ok() {
            check.removed += 1;
            if check.removed_examples.len() < EXAMPLES {
                check.removed_examples.push(path.clone());
            }
        }
    }
    remove_empty(dir, &mut dirs);
    check.distributions = manifest.distributions.len();
    check.files = owned.len();
    check
}

/// Remove the directories in `dirs` (relative to `dir`) that are empty, deepest first.
pub(super) fn remove_empty(dir: &Path, dirs: &mut [String]) {
    dirs.sort_by_key(|d| std::cmp::Reverse(d.matches('/').count()));
    for relative in dirs.iter() {
        // Fails, as it should, when the directory still holds something.
        let _ = fs::remove_dir(dir.join(relative));
    }
}
