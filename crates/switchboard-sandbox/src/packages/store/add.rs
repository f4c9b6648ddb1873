//! Adding what pip installed in its scratch directory to the store.
//!
//! pip (or a source build it ran) may still have left processes behind, and its scratch
//! directory is its uid's: anything in it may be a link to a secret, may change while read,
//! or may claim to be something else. So nothing there is trusted: each file the `RECORD`
//! lists is opened with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` (a link anywhere in
//! the path is refused, not followed), must be a regular file, and is hashed as it is copied;
//! the copy is what is compared and installed.

use std::{
    collections::{BTreeMap, HashMap},
    ffi::CString,
    fs::{self, File},
    io::{self, Read, Write},
    os::{
        fd::{AsRawFd, FromRawFd, OwnedFd},
        unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt},
    },
    path::Path,
};

use sha2::{Digest, Sha256};

use super::{Distribution, FileEntry, Manifest, Store, record, save, verify::remove_empty};
use crate::{
    packages::{name::normalize, pip::Pin},
    state::StateDir,
};

/// Largest `RECORD` or `METADATA` read.
const MAX_TEXT: u64 = 16 << 20;
/// Largest install (all files of one request together).
const MAX_BYTES: u64 = 4 << 30;

/// One distribution to add: its pin, metadata directory and files.
struct Plan<'a> {
    pin: &'a Pin,
    entries: Vec<record::Entry>,
}

fn open_dir(path: &Path) -> Result<OwnedFd, String> {
    let c = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| format!("{} is not a usable path", path.display()))?;
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: a NUL-terminated path; the descriptor is owned at once.
    let fd = unsafe { libc::open(c.as_ptr(), flags) };
    if fd < 0 {
        return Err(format!(
            "{}: {}",
            path.display(),
            io::Error::last_os_error()
        ));
    }
    // SAFETY: a descriptor just opened, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Open `path` beneath `root` for reading, refusing any symbolic link on the way and anything
/// that is not a regular file.
fn open_beneath(root: &OwnedFd, path: &str) -> Result<File, String> {
    let c = CString::new(path).map_err(|_| format!("'{path}' holds a NUL"))?;
    // SAFETY: a plain C struct, valid when zeroed (its fields are set below).
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: openat2 with a NUL-terminated path, a directory descriptor we hold and a
    // properly sized `open_how`.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root.as_raw_fd(),
            c.as_ptr(),
            &raw const how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        let error = io::Error::last_os_error();
        return Err(match error.raw_os_error() {
            Some(libc::ELOOP | libc::EXDEV) => format!("{path} is or passes through a link"),
            Some(libc::ENOSYS) => {
                "the kernel lacks openat2 (Linux 5.6+ is required to install packages safely)"
                    .into()
            }
            _ => format!("{path}: {error}"),
        });
    }
    // SAFETY: a descriptor just opened, owned by nobody else.
    let file = File::from(unsafe { OwnedFd::from_raw_fd(fd as i32) });
    let meta = file.metadata().map_err(|e| format!("{path}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("{path} is not a regular file"));
    }
    Ok(file)
}

fn read_text(root: &OwnedFd, path: &str) -> Result<String, String> {
    let mut text = String::new();
    open_beneath(root, path)?
        .take(MAX_TEXT)
        .read_to_string(&mut text)
        .map_err(|e| format!("{path}: {e}"))?;
    Ok(text)
}

/// The distributions pip installed in `staging`: normalized name → (metadata directory,
/// version), from each `*.dist-info/METADATA`.
fn dist_infos(root: &OwnedFd, staging: &Path) -> Result<HashMap<String, (String, String)>, String> {
    let mut found = HashMap::new();
    let entries = fs::read_dir(staging).map_err(|e| format!("{}: {e}", staging.display()))?;
    for entry in entries.flatten() {
        let dir = entry.file_name().to_string_lossy().into_owned();
        if !dir.ends_with(".dist-info") {
            continue;
        }
        let metadata = read_text(root, &format!("{dir}/METADATA"))?;
        let field = |key: &str| {
            metadata
                .lines()
                .take_while(|l| !l.is_empty())
                .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_owned()))
        };
        let (Some(name), Some(version)) = (field("Name:"), field("Version:")) else {
            return Err(format!("{dir}/METADATA names no distribution or version"));
        };
        let name = normalize(&name).map_err(|e| format!("{dir}: {e}"))?;
        found.insert(name, (dir, version));
    }
    Ok(found)
}

/// Whether adding `plans` would let one distribution take over another's files or modules.
fn conflicts(manifest: &Manifest, plans: &[Plan<'_>]) -> Result<(), String> {
    let replaced = |name: &str| plans.iter().any(|p| p.pin.name == name);
    let mut paths: HashMap<&str, &str> = HashMap::new();
    let mut modules: HashMap<&str, Vec<(&str, bool)>> = HashMap::new();
    for (name, dist) in manifest.distributions.iter().filter(|(n, _)| !replaced(n)) {
        for path in dist.files.keys() {
            paths.insert(path, name);
            let claims = record::claims_module(path);
            modules
                .entry(record::top_key(path))
                .or_default()
                .push((name, claims));
        }
    }
    for plan in plans {
        let name = plan.pin.name.as_str();
        for entry in &plan.entries {
            if let Some(owner) = paths.get(entry.path.as_str()).filter(|o| **o != name) {
                return Err(format!(
                    "{} would overwrite {} of {owner}",
                    plan.pin.spec(),
                    entry.path
                ));
            }
            let key = record::top_key(&entry.path);
            let claims = plan
                .entries
                .iter()
                .any(|e| record::top_key(&e.path) == key && record::claims_module(&e.path));
            if let Some((owner, _)) = modules
                .get(key)
                .into_iter()
                .flatten()
                .find(|(owner, theirs)| *owner != name && (*theirs || claims))
            {
                return Err(format!(
                    "{} would add to the module '{key}', which {owner} installed",
                    plan.pin.spec()
                ));
            }
        }
        for entry in &plan.entries {
            paths.insert(&entry.path, name);
            let claims = record::claims_module(&entry.path);
            modules
                .entry(record::top_key(&entry.path))
                .or_default()
                .push((name, claims));
        }
    }
    Ok(())
}

/// Create the directories above `target` (mode 0755); errors name `path`.
fn make_parent(target: &Path, path: &str) -> Result<(), String> {
    match target.parent() {
        Some(parent) => fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(parent)
            .map_err(|e| format!("{path}: {e}")),
        None => Ok(()),
    }
}

/// Copy one file from the scratch directory into `incoming`, hashing it.
fn copy(
    root: &OwnedFd,
    incoming: &Path,
    entry: &record::Entry,
    budget: &mut u64,
) -> Result<FileEntry, String> {
    let path = entry.path.as_str();
    let mut source = open_beneath(root, path)?;
    let executable = source
        .metadata()
        .map(|m| m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false);
    let target = incoming.join(path);
    make_parent(&target, path)?;
    let mut out = File::options()
        .write(true)
        .create_new(true)
        .mode(if executable { 0o755 } else { 0o644 })
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&target)
        .map_err(|e| format!("{path}: {e}"))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 << 10];
    let mut size = 0u64;
    loop {
        let n = source
            .read(&mut buffer)
            .map_err(|e| format!("{path}: {e}"))?;
        if n == 0 {
            break;
        }
        size += n as u64;
        if size > *budget {
            return Err(format!("the install is larger than {MAX_BYTES} bytes"));
        }
        hasher.update(&buffer[..n]);
        out.write_all(&buffer[..n])
            .map_err(|e| format!("{path}: {e}"))?;
    }
    *budget -= size;
    let digest: [u8; 32] = hasher.finalize().into();
    match entry.sha256 {
        Some(expected) if expected != digest => {
            return Err(format!("{path} does not match the hash its RECORD gives"));
        }
        None if !record::may_lack_hash(path) => {
            return Err(format!("RECORD gives no hash for {path}"));
        }
        _ => {}
    }
    Ok(FileEntry {
        sha256: switchboard_runtime::hex(&digest),
        size,
        executable,
    })
}

impl Store {
    /// Add the distributions `pins` that pip installed in `staging` (see the module docs).
    /// Nothing in the store changes unless every file of every pin checks out.
    pub(crate) fn add(&self, state: &StateDir, staging: &Path, pins: &[Pin]) -> Result<(), String> {
        let root = open_dir(staging)?;
        let mut infos = dist_infos(&root, staging)?;
        let mut plans = Vec::new();
        for pin in pins {
            let (info_dir, version) = infos
                .remove(&pin.name)
                .ok_or_else(|| format!("pip did not install {}", pin.spec()))?;
            if version != pin.version {
                return Err(format!(
                    "pip installed {} {version}, not {}",
                    pin.name,
                    pin.spec()
                ));
            }
            let entries = record::parse(&read_text(&root, &format!("{info_dir}/RECORD"))?)?;
            if let Some(foreign) = entries
                .iter()
                .map(|e| e.path.split('/').next().unwrap_or_default())
                .find(|top| record::is_metadata_dir(top) && *top != info_dir)
            {
                return Err(format!(
                    "{} installs {foreign}, the metadata of another distribution",
                    pin.spec()
                ));
            }
            plans.push(Plan { pin, entries });
        }
        if let Some(extra) = infos.keys().next() {
            return Err(format!("pip installed {extra}, which was not asked for"));
        }
        let mut manifest = self.manifest();
        conflicts(&manifest, &plans)?;

        let incoming = self
            .dir
            .join(format!(".incoming-{}", uuid::Uuid::new_v4().simple()));
        let result = self.copy_in(&root, &incoming, &plans, &mut manifest);
        let _ = fs::remove_dir_all(&incoming);
        result?;
        save(state, &manifest);
        Ok(())
    }

    fn copy_in(
        &self,
        root: &OwnedFd,
        incoming: &Path,
        plans: &[Plan<'_>],
        manifest: &mut Manifest,
    ) -> Result<(), String> {
        fs::DirBuilder::new()
            .mode(0o755)
            .create(incoming)
            .map_err(|e| format!("{}: {e}", incoming.display()))?;
        let mut budget = MAX_BYTES;
        let mut copied = Vec::new();
        for plan in plans {
            let mut files = BTreeMap::new();
            for entry in &plan.entries {
                files.insert(
                    entry.path.clone(),
                    copy(root, incoming, entry, &mut budget)?,
                );
            }
            copied.push((plan.pin, files));
        }
        // Every file checked out: move them into place (each rename replaces a file
        // atomically, so a running program sees the old file or the new one).
        let mut emptied = Vec::new();
        for (pin, files) in copied {
            for path in files.keys() {
                let target = self.dir.join(path);
                make_parent(&target, path)?;
                fs::rename(incoming.join(path), &target).map_err(|e| format!("{path}: {e}"))?;
            }
            let old = manifest.distributions.insert(
                pin.name.clone(),
                Distribution {
                    version: pin.version.clone(),
                    wheel_sha256: pin.sha256.clone(),
                    files,
                },
            );
            // Files of the version replaced that the new one does not have.
            if let (Some(old), Some(new)) = (old, manifest.distributions.get(&pin.name)) {
                for path in old.files.keys().filter(|p| !new.files.contains_key(*p)) {
                    let _ = fs::remove_file(self.dir.join(path));
                    let mut parent = Path::new(path).parent();
                    while let Some(dir) = parent.filter(|d| !d.as_os_str().is_empty()) {
                        emptied.push(dir.to_string_lossy().into_owned());
                        parent = dir.parent();
                    }
                }
            }
        }
        remove_empty(&self.dir, &mut emptied);
        Ok(())
    }
}
