//! The sandbox in a container whose cgroup is delegated to it starts with every layer enforced
//! and nothing accepted as weaker; without the delegation it refuses to start. The container
//! is made as runtimes make it (see `delegated_cgroup/container.rs`), the service running in it
//! as uid 10001 without capabilities.
//!
//! Memory, pids and CPU come from cgroup v2 where the host's v2 hierarchy has them (the case
//! of every container runtime that delegates). On a hybrid host such as the one this was
//! written on (v1 `memory`, `pids`, `cpu`; a v2 hierarchy with none of them, and the v1
//! `memory` hierarchy held by the machine's own init) they come from v1 groups delegated the
//! same way, while v2 gives the container's group and `cgroup.kill`; the test says so on
//! stdout. The v2 path (the service moving itself into a leaf to enable the controllers)
//! then runs in `cgroup::delegated`'s unit test only, with a controller v2 has here; this
//! test runs it whole on a host whose v2 hierarchy has memory, pids and cpu.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

mod common;
#[path = "delegated_cgroup/container.rs"]
mod container;

use std::{
    os::unix::fs::MetadataExt,
    path::PathBuf,
    time::{Duration, Instant},
};

use common::procs;
use container::{CONTROLLERS, Host, SERVICE_DIR, SERVICE_UID, URL_LINE, has};
use serde_json::{Value, json};
use switchboard_protocol::sandbox::ExecutionResult;
use switchboard_sandbox::{Config, SandboxService};

const MAX_PROCESSES: u64 = 16;
const MEMORY: u64 = 96 << 20;

/// The service half: runs only in the child that `container::start` starts, and serves until
/// its stdin closes.
#[test]
fn service_half() {
    let Some(dir) = std::env::var_os(SERVICE_DIR) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut config = Config::with_packages_dir(PathBuf::from(dir).join("site"));
        config.pool_size = 2;
        config.limits.memory_bytes = MEMORY;
        config.limits.max_processes = MAX_PROCESSES;
        config.limits.cpus = 0.5;
        // Refuses to start (and so panics here, with the reason) if a layer is missing.
        let server = switchboard_testkit::spawn::<SandboxService>(config).await;
        println!("\n{URL_LINE}{}", server.url());
        let stdin = || std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new());
        tokio::task::spawn_blocking(stdin).await.unwrap().unwrap();
        server.shutdown().await.unwrap();
    });
}

fn say_where_controllers_come_from(host: &Host) {
    if host.from_v1.is_empty() {
        println!("memory, pids and cpu come from the delegated cgroup v2 group");
    } else {
        println!(
            "HYBRID HOST: cgroup v2 here has none of {:?}; they come from v1 groups delegated to uid {SERVICE_UID}, v2 gives the container's group and cgroup.kill (a container needs them on v2: deploy/README.md)",
            host.from_v1
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_delegation_the_service_refuses_to_start() {
    let host = Host::probe();
    let name = format!("sb-undelegated-test.{}", std::process::id());
    let Err(refusal) = container::start(&host, &name, false).await else {
        panic!("started in cgroups owned by root, as uid {SERVICE_UID}");
    };
    println!("refused, as it must be: {refusal}");
    for needed in [
        "the sandbox refuses to start",
        "isolation layers 'memory', 'pids', 'cpu' are not enforceable",
        "Permission denied",
    ] {
        assert!(refusal.contains(needed), "{needed:?} missing in: {refusal}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delegated_cgroup_enforces_every_layer() {
    let host = Host::probe();
    say_where_controllers_come_from(&host);
    let name = format!("sb-delegated-test.{}", std::process::id());
    let service = container::start(&host, &name, true)
        .await
        .unwrap_or_else(|e| panic!("did not start as uid {SERVICE_UID} in delegated cgroups: {e}"));
    let http = reqwest::Client::new();

    let ready = http.get(format!("{}/ready", service.url)).send().await;
    let ready = ready.unwrap();
    assert_eq!(ready.status(), 200);
    let ready: Value = ready.json().await.unwrap();
    let isolation = &ready["dependencies"]["isolation"]["detail"];
    println!("isolation: {isolation:#}");
    assert_eq!(isolation["status"], "enforced", "{isolation:#}");
    let layers = ["memory", "swap", "pids", "cpu", "landlock"];
    for layer in layers.into_iter().chain(["seccomp", "namespaces"]) {
        let state = &isolation["layers"][layer]["state"];
        assert_eq!(state, "enforced", "{layer}: {isolation:#}");
    }
    let cgroups = &isolation["cgroups"];
    for controller in CONTROLLERS {
        let shown = cgroups[controller].as_str().unwrap_or_default();
        let v2 = host.from_v2.contains(&controller);
        let expected = if v2 {
            "v2 /sys/fs/cgroup"
        } else {
            "v1 /sys/fs/cgroup"
        };
        assert!(shown.starts_with(expected), "{controller}: {cgroups:#}");
    }
    assert!(cgroups["kill"].is_string(), "v2 cgroup.kill: {cgroups:#}");
    // A group that hands controllers to its children has no processes: to enable them the
    // service moved itself into a leaf (needed only when v2 gives any of them).
    if host.from_v2.is_empty() {
        assert_eq!(cgroups["service_moved_to"], Value::Null, "{cgroups:#}");
    } else {
        assert!(cgroups["service_moved_to"].is_string(), "{cgroups:#}");
        let leaf = service.v2_group.join("switchboard-sandbox-service");
        let in_leaf = std::fs::read_to_string(leaf.join("cgroup.procs")).unwrap();
        let service_pid = service.pid.to_string();
        assert!(in_leaf.lines().any(|p| p == service_pid), "{in_leaf}");
        let left = std::fs::read_to_string(service.v2_group.join("cgroup.procs"));
        assert_eq!(left.unwrap(), "");
    }
    let run = |code: &str, timeout: f64| {
        let (http, url) = (http.clone(), format!("{}/execute", service.url));
        let body = json!({ "code": code, "timeout_seconds": timeout });
        tokio::spawn(async move {
            let response = http.post(url).json(&body).send().await.unwrap();
            assert_eq!(response.status(), 200);
            response.json::<ExecutionResult>().await.unwrap()
        })
    };

    // A program runs in the workers' groups under the delegated ones.
    let own = run("print(open('/proc/self/cgroup').read())", 10.0);
    let own = own.await.unwrap();
    assert!(own.success, "{own:?}");
    assert!(own.stdout.contains("/switchboard-sandbox."), "{own:?}");

    // Processes until refused, then held while the host reads the program's groups.
    let held = run(HOLD, 60.0);
    let deadline = Instant::now() + Duration::from_secs(30);
    let program = loop {
        let found = procs::descendants(std::process::id() as i32)
            .into_iter()
            .map(|(p, _)| p.pid)
            .find(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|comm| comm.trim_end() == "sb-held")
            });
        if let Some(pid) = found {
            break pid;
        }
        let waiting = !held.is_finished() && Instant::now() < deadline;
        assert!(waiting, "the program never held: {:?}", held.await);
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let groups = std::fs::read_to_string(format!("/proc/{program}/cgroup")).unwrap();
    let group_of = |controller: &str| -> PathBuf {
        let line = groups.lines().find(|l| {
            let listed = l.split(':').nth(1).unwrap_or_default();
            if host.from_v2.contains(&controller) {
                listed.is_empty()
            } else {
                has(listed, controller)
            }
        });
        let path = line.and_then(|l| l.splitn(3, ':').nth(2)).unwrap();
        host.of(controller).point.join(path.trim_start_matches('/'))
    };
    let read = |controller: &str, dir: &PathBuf, v2: &str, v1: &str| {
        let file = dir.join(if host.from_v2.contains(&controller) {
            v2
        } else {
            v1
        });
        std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
            .trim()
            .to_owned()
    };
    let (pids, memory, cpu) = (group_of("pids"), group_of("memory"), group_of("cpu"));
    let pids_max = read("pids", &pids, "pids.max", "pids.max");
    let pids_current = read("pids", &pids, "pids.current", "pids.current");
    let memory_max = read("memory", &memory, "memory.max", "memory.limit_in_bytes");
    let cpu_max = read("cpu", &cpu, "cpu.max", "cpu.cfs_quota_us");
    let owners: Vec<u32> = [&pids, &memory, &cpu]
        .iter()
        .map(|d| std::fs::metadata(d).unwrap().uid())
        .collect();
    // SAFETY: signalling the held program found above (it waits for this signal).
    unsafe { libc::kill(program, libc::SIGUSR1) };
    let held = held.await.unwrap();
    println!(
        "held: {held:?}; pids {pids_max} / {pids_current}, memory {memory_max}, cpu {cpu_max}"
    );
    assert!(held.stdout.ends_with("released\n"), "{held:?}");
    assert!(
        held.stdout.contains("Resource temporarily unavailable"),
        "{held:?}"
    );
    let children: u64 = held.stdout.split(' ').next().unwrap().parse().unwrap();
    assert!(children < MAX_PROCESSES, "{held:?}");
    assert_eq!(pids_max, MAX_PROCESSES.to_string(), "{}", pids.display());
    assert_eq!(
        pids_current,
        (children + 1).to_string(),
        "the program and its children"
    );
    assert_eq!(memory_max, MEMORY.to_string(), "{}", memory.display());
    assert!(cpu_max.starts_with("50000"), "{cpu_max}");
    assert_eq!(
        owners, [SERVICE_UID; 3],
        "the service made the workers' groups"
    );

    // Memory well over the limit: the memory group's OOM killer ends it (SIGKILL), where the
    // address-space rlimit that stands in without one would raise MemoryError.
    let hog = run(
        "chunks = []\nwhile True:\n    chunks.append(b'x' * (8 << 20))",
        30.0,
    );
    let hog = hog.await.unwrap();
    assert!(
        hog.memory_exceeded && !hog.timed_out && !hog.success,
        "{hog:?}"
    );
    assert_eq!(hog.signal.as_deref(), Some("SIGKILL"), "{hog:?}");

    let normal = run("print(6 * 7)", 10.0).await.unwrap();
    assert_eq!(normal.stdout, "42\n", "{normal:?}");
    service.stop().await;
}

/// Forks until refused (the children sleep), then renames itself and waits for SIGUSR1.
const HOLD: &str = r#"import ctypes, os, signal, time
libc = ctypes.CDLL(None, use_errno=True)
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
n = 0
try:
    while True:
        if os.fork() == 0:
            time.sleep(120)
            os._exit(0)
        n += 1
except OSError as e:
    print(n, "children, then", e.strerror, flush=True)
libc.prctl(15, b"sb-held", 0, 0, 0)
signal.sigwait({signal.SIGUSR1})
print("released")
"#;
