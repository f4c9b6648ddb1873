//! Where the host refuses user namespaces, the sandbox refuses to start, saying what is missing
//! and how to grant it. A custom test binary (no libtest): it runs itself again with a seccomp
//! filter that refuses `clone`/`unshare` with CLONE_NEWUSER — what a restrictive container
//! profile does — and checks that child's verdict.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

mod common;

use std::collections::BTreeMap;

use seccompiler::{
    SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
};
use switchboard_runtime::Metrics;
use switchboard_sandbox::{Config, Error, Sandbox};
use tokio_util::sync::CancellationToken;

const INNER: &str = "SWITCHBOARD_SANDBOX_REFUSE_INNER";

fn main() {
    if std::env::var_os(INNER).is_some() {
        std::process::exit(inner());
    }
    let name = "refuses_to_start_when_user_namespaces_are_refused";
    print!("test {name} ... ");
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .env(INNER, "1")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the sandbox must not start; it said: {said}"
    );
    for needle in [
        "the sandbox refuses to start",
        "Operation not permitted",
        "user namespaces are refused",
        "user.max_user_namespaces",
        "seccomp",
    ] {
        assert!(said.contains(needle), "missing {needle:?} in: {said}");
    }
    println!("ok");
}

/// Refuse new user namespaces to this process, then try to start a sandbox. Exit 0 when it
/// refused with an isolation error (printed), 1 otherwise.
fn inner() -> i32 {
    let newuser = libc::CLONE_NEWUSER as u64;
    let rule = || {
        SeccompRule::new(vec![
            SeccompCondition::new(
                0,
                SeccompCmpArgLen::Qword,
                SeccompCmpOp::MaskedEq(newuser),
                newuser,
            )
            .unwrap(),
        ])
        .unwrap()
    };
    let rules: BTreeMap<i64, Vec<SeccompRule>> = [
        (libc::SYS_clone, vec![rule()]),
        (libc::SYS_unshare, vec![rule()]),
    ]
    .into_iter()
    .collect();
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        std::env::consts::ARCH.try_into().unwrap(),
    )
    .unwrap();
    let program: seccompiler::BpfProgram = filter.try_into().unwrap();
    seccompiler::apply_filter_all_threads(&program).unwrap();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = common::shared_tempdir();
        let config = Config::with_packages_dir(dir.path().join("site"));
        let metrics = Metrics::new(switchboard_sandbox::SERVICE);
        match Sandbox::start(&config, &metrics, CancellationToken::new()).await {
            Ok(_) => {
                println!("STARTED although user namespaces are refused");
                1
            }
            Err(error @ Error::Isolation(_)) => {
                println!("{error}");
                0
            }
            Err(other) => {
                println!("wrong error: {other}");
                1
            }
        }
    })
}
