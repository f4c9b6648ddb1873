//! Hostile programs against the sandbox's mounts: what `/proc` tells about the host, executing
//! what a program wrote, and read-only trees. (Submounts under a read-only tree need a changed
//! host: `tests/submounts.rs`.) Like `tests/security.rs`, each test runs its programs through
//! the service and then checks that nothing they started is left.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

mod common;

use common::{Running, procs};
use serde_json::json;
use switchboard_protocol::sandbox::ExecutionResult;

static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn sandbox(exec_scratch: bool) -> Running {
    procs::become_subreaper();
    common::start_with(|mut config, _| {
        config.pool_size = 2;
        config.allow_exec_scratch = exec_scratch;
        config
    })
    .await
}

async fn run(sandbox: &Running, code: &str) -> ExecutionResult {
    let r = sandbox
        .run_with(json!({ "code": code, "timeout_seconds": 20 }))
        .await;
    assert!(r.success, "{r:?}");
    let strays = procs::strays();
    assert!(strays.is_empty(), "processes left behind: {strays:#?}");
    r
}

/// Files of `/proc` that describe the host read as nothing; the parts that change kernel
/// state are read-only mounts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proc_tells_nothing_about_the_host() {
    let _turn = TURN.lock().await;
    let s = sandbox(false).await;
    let code = r#"import os
for path in ["/proc/cmdline", "/proc/sys/kernel/random/boot_id", "/proc/config.gz", "/proc/keys",
             "/proc/timer_list", "/proc/interrupts", "/proc/kcore", "/proc/sched_debug"]:
    try:
        data = open(path, "rb").read()
        print(path, "read", len(data), data[:200])
    except OSError as e:
        print(path, "error", e.errno)
print("acpi", os.listdir("/proc/acpi") if os.path.isdir("/proc/acpi") else "absent")
for path in ["/proc/sys/kernel/hostname", "/proc/sys/vm/drop_caches", "/proc/sysrq-trigger"]:
    try:
        open(path, "w").write("1")
        print(path, "WRITTEN")
    except OSError as e:
        print(path, "write refused", e.errno)
options = {}
for line in open("/proc/self/mountinfo"):
    fields = line.split()
    options[fields[4]] = fields[5]  # the last mount at a point is the one seen
for point in ["/", "/usr", "/packages", "/proc/sys", "/proc/bus", "/proc/fs", "/proc/irq",
              "/tmp", "/work", "/dev/shm"]:
    print("mount", point, options.get(point))
"#;
    let r = run(&s, code).await;
    let out = &r.stdout;
    for line in out.lines().filter(|l| l.contains(" read ")) {
        assert!(line.contains(" read 0 "), "nothing of the host: {line}");
    }
    for secret in ["/proc/cmdline", "/proc/sys/kernel/random/boot_id"] {
        let host = std::fs::read_to_string(secret).unwrap();
        assert!(
            !out.contains(host.trim()),
            "{secret} of the host leaks: {out}"
        );
    }
    if std::path::Path::new("/proc/config.gz").exists() {
        assert!(
            out.contains("/proc/config.gz read 0 ") || out.contains("/proc/config.gz error"),
            "{out}"
        );
    }
    assert!(
        out.contains("acpi []") || out.contains("acpi absent"),
        "{out}"
    );
    assert!(!out.contains("WRITTEN"), "{out}");
    for point in [
        "/",
        "/usr",
        "/packages",
        "/proc/sys",
        "/proc/bus",
        "/proc/fs",
        "/proc/irq",
    ] {
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("mount {point} ")))
            .unwrap();
        // Entries some kernels lack may be absent; whatever is there is read-only.
        let optional = ["/proc/bus", "/proc/fs", "/proc/irq"].contains(&point);
        assert!(
            line.contains(" ro,") || optional && line.ends_with(" None"),
            "{line}"
        );
    }
    for scratch in ["/tmp", "/work", "/dev/shm"] {
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("mount {scratch} ")))
            .unwrap();
        assert!(line.contains(" rw,") && line.contains("noexec"), "{line}");
    }
}

/// Executables and shared objects a program writes to its scratch space do not run; the
/// interpreter, extension modules from /usr and /packages, ctypes callbacks and POSIX
/// semaphores (files in /dev/shm) still work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn written_files_do_not_execute() {
    let _turn = TURN.lock().await;
    let s = sandbox(false).await;
    // An extension module in the managed packages, as pip would install one.
    let found = run(&s, "import _bz2\nprint(_bz2.__file__)").await;
    let module = std::path::PathBuf::from(found.stdout.trim());
    let package = common::site(&s).join("extdemo");
    std::fs::create_dir_all(&package).unwrap();
    std::fs::write(package.join("__init__.py"), "").unwrap();
    std::fs::copy(&module, package.join(module.file_name().unwrap())).unwrap();

    let code = r##"import ctypes, multiprocessing, os, shutil, subprocess, _bz2
for d in ["/tmp", "/work", "/dev/shm"]:
    exe, script = d + "/true", d + "/script"
    shutil.copy("/usr/bin/true", exe)
    open(script, "w").write("#!/bin/sh\necho hi\n")
    for path in (exe, script):
        os.chmod(path, 0o755)
        try:
            subprocess.run([path])
            print(path, "RAN")
        except PermissionError as e:
            print(path, "refused", e.errno)
    library = d + "/" + os.path.basename(_bz2.__file__)
    shutil.copy(_bz2.__file__, library)
    try:
        ctypes.CDLL(library)
        print(library, "LOADED")
    except OSError as e:
        print(library, "refused")
print("usr binary", subprocess.run(["/usr/bin/true"]).returncode)
import extdemo._bz2
print("extension from", os.path.dirname(extdemo._bz2.__file__))
numbers = (ctypes.c_int * 4)(3, 1, 4, 2)
compare = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int))
ctypes.CDLL(None).qsort(numbers, 4, ctypes.sizeof(ctypes.c_int), compare(lambda a, b: a[0] - b[0]))
print("callback", list(numbers))
lock = multiprocessing.Lock()
with lock:
    print("semaphore ok")
"##;
    let r = run(&s, code).await;
    let out = &r.stdout;
    assert!(!out.contains("RAN") && !out.contains("LOADED"), "{out}");
    assert_eq!(
        out.matches("refused 13").count(),
        6,
        "EACCES for each: {out}"
    );
    assert_eq!(out.matches(".so refused").count(), 3, "{out}");
    for expected in [
        "usr binary 0",
        "extension from /packages/extdemo",
        "callback [1, 2, 3, 4]",
        "semaphore ok",
    ] {
        assert!(out.contains(expected), "{expected:?} missing: {out}");
    }
}

/// `allow_exec_scratch` keeps the old behaviour for programs that need it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_from_scratch_when_allowed() {
    let _turn = TURN.lock().await;
    let s = sandbox(true).await;
    let r = run(
        &s,
        "import os, shutil, subprocess\nshutil.copy('/usr/bin/true', '/tmp/true')\nos.chmod('/tmp/true', 0o755)\nprint('ran', subprocess.run(['/tmp/true']).returncode)",
    )
    .await;
    assert_eq!(r.stdout, "ran 0\n", "{r:?}");
}
