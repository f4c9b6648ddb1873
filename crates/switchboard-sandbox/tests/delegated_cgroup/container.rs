//! A container as a runtime makes one for the sandbox when its cgroup is delegated to it
//! (deploy/README.md, "The sandbox's kernel permissions"): its own cgroup namespace,
//! `/sys/fs/cgroup` mounted writable, and the container's cgroup chowned by runc to the uid the
//! container runs as (the directory and the files `/sys/kernel/cgroup/delegate` lists), the
//! container's processes in it. Made here as root: a group per hierarchy (chowned, or not, to
//! [`SERVICE_UID`]) and the service started as that uid without capabilities, inside the
//! groups, in a new cgroup and mount namespace whose `/sys/fs/cgroup` holds only fresh mounts
//! of those hierarchies, so that the groups are their roots. All of that is done between fork
//! and exec; what is executed is the test binary again, running the service.

use std::{
    ffi::CString,
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// The uid the image and the Kubernetes manifest run the sandbox as.
pub const SERVICE_UID: u32 = 10001;
/// Set (to the service's directory) in the child that runs the service.
pub const SERVICE_DIR: &str = "SWITCHBOARD_SANDBOX_DELEGATED_DIR";
/// What the child prints before the service's URL.
pub const URL_LINE: &str = "DELEGATED_SANDBOX_URL=";
pub const CONTROLLERS: [&str; 3] = ["memory", "pids", "cpu"];

/// A cgroup file system mounted on the host.
pub struct Hierarchy {
    pub point: PathBuf,
    /// `None` for cgroup2, else the v1 mount's options (`rw,memory`).
    pub options: Option<String>,
}

pub fn has(options: &str, controller: &str) -> bool {
    options.split(',').any(|o| o == controller)
}

/// The host's hierarchies, and which of [`CONTROLLERS`] cgroup v2 gives.
pub struct Host {
    pub all: Vec<Hierarchy>,
    pub from_v2: Vec<&'static str>,
    pub from_v1: Vec<&'static str>,
}

impl Host {
    /// As root: the hierarchies, with what the v2 root offers enabled for its children (as a
    /// runtime's parent groups have them; the root may have processes, so that always works).
    pub fn probe() -> Self {
        // SAFETY: plain getter.
        let euid = unsafe { libc::geteuid() };
        assert_eq!(
            euid, 0,
            "delegating cgroups to uid {SERVICE_UID} needs root"
        );
        let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let mut all = Vec::new();
        for line in table.lines() {
            let (left, right) = line.split_once(" - ").unwrap();
            let right: Vec<&str> = right.split(' ').collect();
            let point = PathBuf::from(left.split(' ').nth(4).unwrap());
            match right[0] {
                "cgroup2" => all.push(Hierarchy {
                    point,
                    options: None,
                }),
                "cgroup" => all.push(Hierarchy {
                    point,
                    options: Some(right[2].to_owned()),
                }),
                _ => {}
            }
        }
        let v2 = all.iter().find(|h| h.options.is_none()).expect(
            "a cgroup v2 hierarchy is mounted: a container's cgroup is delegated only on v2",
        );
        assert!(
            all.iter().all(|h| h.point.starts_with("/sys/fs/cgroup")),
            "the hierarchies are under /sys/fs/cgroup"
        );
        let offered = std::fs::read_to_string(v2.point.join("cgroup.controllers")).unwrap();
        let from_v2: Vec<&str> = CONTROLLERS
            .into_iter()
            .filter(|c| offered.split_whitespace().any(|o| o == *c))
            .collect();
        for controller in &from_v2 {
            let control = v2.point.join("cgroup.subtree_control");
            std::fs::write(control, format!("+{controller}")).unwrap();
        }
        let from_v1 = CONTROLLERS
            .into_iter()
            .filter(|c| !from_v2.contains(c))
            .collect();
        Self {
            all,
            from_v2,
            from_v1,
        }
    }

    pub fn v2(&self) -> &Hierarchy {
        self.all.iter().find(|h| h.options.is_none()).unwrap()
    }

    /// The hierarchy `controller` is had from.
    pub fn of(&self, controller: &str) -> &Hierarchy {
        if self.from_v2.contains(&controller) {
            return self.v2();
        }
        let v1 = self.all.iter().find(|h| {
            h.options
                .as_deref()
                .is_some_and(|options| has(options, controller))
        });
        v1.unwrap_or_else(|| panic!("{controller}: no hierarchy on this host has it"))
    }
}

/// The groups made for one container, removed (bottom up) when dropped.
#[derive(Default)]
struct Groups {
    dirs: Vec<PathBuf>,
}

impl Groups {
    /// Make `dir`; with `files`, delegate it to [`SERVICE_UID`] as runc (v2) or systemd (v1) do.
    fn make(&mut self, dir: PathBuf, files: Option<&[String]>) {
        std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        self.dirs.push(dir.clone());
        let Some(files) = files else { return };
        std::os::unix::fs::chown(&dir, Some(SERVICE_UID), None).unwrap();
        for file in files.iter().map(|f| dir.join(f)).filter(|f| f.exists()) {
            std::os::unix::fs::chown(&file, Some(SERVICE_UID), None).unwrap();
        }
    }
}

impl Drop for Groups {
    fn drop(&mut self) {
        fn remove(dir: &Path) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                if entry.path().is_dir() {
                    remove(&entry.path());
                }
            }
            // Processes of a killed service take a moment to leave.
            let deadline = Instant::now() + Duration::from_secs(10);
            while std::fs::remove_dir(dir).is_err() && dir.exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        for dir in &self.dirs {
            remove(dir);
        }
    }
}

/// The service running in its container.
pub struct Container {
    pub url: String,
    pub pid: i32,
    /// The container's cgroup on the v2 hierarchy (host path).
    pub v2_group: PathBuf,
    child: tokio::process::Child,
    errors: PathBuf,
    drained: tokio::task::JoinHandle<Vec<String>>,
    _groups: Groups,
    _dir: tempfile::TempDir,
}

impl Container {
    /// Stop the service (close its stdin) and wait until it exits, cleanly.
    pub async fn stop(mut self) {
        let mut stdin = self.child.stdin.take().unwrap();
        stdin.shutdown().await.unwrap();
        drop(stdin);
        let wait = tokio::time::timeout(Duration::from_secs(30), self.child.wait());
        let status = wait.await.expect("the service stops within 30 s").unwrap();
        let rest = (&mut self.drained).await.unwrap();
        let log = std::fs::read_to_string(&self.errors).unwrap_or_default();
        assert!(
            status.success(),
            "the service's exit: {status}\n{rest:?}\n{log}"
        );
    }
}

fn c(s: impl AsRef<[u8]>) -> CString {
    CString::new(s.as_ref()).unwrap()
}

fn path(p: &Path) -> CString {
    c(p.as_os_str().as_encoded_bytes())
}

/// `Err` with errno for a failed call in the child before `exec`.
fn check(r: libc::c_int) -> std::io::Result<()> {
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Start the service in a container whose groups are named `name` and, with `delegate`,
/// delegated to it. `Err`: it did not start, with its error output.
pub async fn start(host: &Host, name: &str, delegate: bool) -> Result<Container, String> {
    let delegated: Vec<String> = std::fs::read_to_string("/sys/kernel/cgroup/delegate")
        .map(|list| list.lines().map(str::to_owned).collect())
        .unwrap_or_else(|_| {
            let files = ["cgroup.procs", "cgroup.subtree_control", "cgroup.threads"];
            files.map(String::from).to_vec()
        });
    let mut groups = Groups::default();
    let v2_group = host.v2().point.join(name);
    groups.make(v2_group.clone(), delegate.then_some(&delegated[..]));
    // The child's /sys/fs/cgroup: fresh mounts of the hierarchies (type, options).
    let mut join = vec![path(&v2_group.join("cgroup.procs"))];
    let mut mounts = vec![(path(&host.v2().point), c("cgroup2"), None)];
    let mut v1_done: Vec<&Path> = Vec::new();
    for controller in &host.from_v1 {
        let h = host.of(controller);
        if v1_done.contains(&h.point.as_path()) {
            continue;
        }
        v1_done.push(&h.point);
        let dir = h.point.join(name);
        let files = ["cgroup.procs", "tasks"].map(String::from);
        groups.make(dir.clone(), delegate.then_some(&files[..]));
        join.push(path(&dir.join("cgroup.procs")));
        mounts.push((path(&h.point), c("cgroup"), h.options.as_deref().map(c)));
    }
    let pure_v2 = host.v2().point == Path::new("/sys/fs/cgroup") && mounts.len() == 1;

    let dir = crate::common::shared_tempdir();
    std::os::unix::fs::chown(dir.path(), Some(SERVICE_UID), Some(SERVICE_UID)).unwrap();
    // Its log goes to a file: a pipe nobody reads could fill and stop it.
    let errors = dir.path().join("stderr");
    let mut command = tokio::process::Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", "service_half", "--nocapture", "--test-threads=1"])
        .env(SERVICE_DIR, dir.path())
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&errors).unwrap())
        .kill_on_drop(true);
    let cgroupfs = c("/sys/fs/cgroup");
    // SAFETY: only system calls on values prepared above, between fork and exec.
    unsafe {
        command.pre_exec(move || {
            // The runtime puts the container's processes in its cgroup.
            for procs in &join {
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                check(fd)?;
                let wrote = libc::write(fd, c"0".as_ptr().cast(), 1);
                libc::close(fd);
                check(wrote as libc::c_int)?;
            }
            check(libc::unshare(libc::CLONE_NEWCGROUP | libc::CLONE_NEWNS))?;
            let null: *const libc::c_char = std::ptr::null();
            let private = libc::MS_REC | libc::MS_PRIVATE;
            check(libc::mount(null, c"/".as_ptr(), null, private, null.cast()))?;
            check(libc::umount2(cgroupfs.as_ptr(), libc::MNT_DETACH))?;
            let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
            if !pure_v2 {
                let tmpfs = c"tmpfs".as_ptr();
                let mode = c"mode=755".as_ptr().cast();
                check(libc::mount(tmpfs, cgroupfs.as_ptr(), tmpfs, flags, mode))?;
            }
            for (point, fstype, options) in &mounts {
                if !pure_v2 {
                    check(libc::mkdir(point.as_ptr(), 0o755))?;
                }
                let data = options.as_ref().map_or(null, |o| o.as_ptr()).cast();
                let fs = fstype.as_ptr();
                check(libc::mount(fs, point.as_ptr(), fs, flags, data))?;
            }
            check(libc::setgroups(0, std::ptr::null()))?;
            check(libc::setresgid(SERVICE_UID, SERVICE_UID, SERVICE_UID))?;
            check(libc::setresuid(SERVICE_UID, SERVICE_UID, SERVICE_UID))?;
            check(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
        });
    }
    let mut child = command.spawn().unwrap();
    let pid = child.id().unwrap() as i32;
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = stdout.next_line().await.unwrap() {
            if let Some(at) = line.find(URL_LINE) {
                return Some(line[at + URL_LINE.len()..].trim().to_owned());
            }
        }
        None
    })
    .await
    .expect("the service neither started nor stopped within 60 s");
    let Some(url) = url else {
        let status = child.wait().await.unwrap();
        let log = std::fs::read_to_string(&errors).unwrap_or_default();
        return Err(format!("{status}\n{log}"));
    };
    // The rest of its output, so that it never waits on a full pipe.
    let drained = tokio::spawn(async move {
        let mut rest = Vec::new();
        while let Ok(Some(line)) = stdout.next_line().await {
            rest.push(line);
        }
        rest
    });
    Ok(Container {
        url,
        pid,
        v2_group,
        child,
        errors,
        drained,
        _groups: groups,
        _dir: dir,
    })
}
