//! The service's environment (API keys!) is invisible to programs. Its own test binary with a
//! single test, so that setting the secret in this process's environment races with nothing.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

mod common;

const SECRET: &str = "sk-switchboard-test-secret-5f1d0c";

#[test]
fn the_services_environment_is_invisible() {
    // SAFETY: this binary has exactly one test, and no other thread exists yet that could read
    // the environment concurrently (the runtime is built below).
    unsafe { std::env::set_var("OPENAI_API_KEY", SECRET) };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let sandbox = common::start().await;
        let service = std::process::id();
        let code = format!(
            r#"import os, glob
print("env", dict(os.environ))
found = []
for path in glob.glob("/proc/*/environ") + ["/proc/{service}/environ", "/proc/self/environ", "/proc/1/environ"]:
    try:
        found.append((path, open(path, "rb").read()))
    except OSError as e:
        found.append((path, type(e).__name__))
print(found)
"#
        );
        let r = sandbox.run(&code).await;
        assert!(r.success, "{r:?}");
        assert!(!r.stdout.contains(SECRET) && !r.stderr.contains(SECRET), "{}", r.stdout);
        assert!(!r.stdout.contains("OPENAI_API_KEY"), "{}", r.stdout);
        assert!(r.stdout.contains(&format!("('/proc/{service}/environ', 'FileNotFoundError')")), "{}", r.stdout);
    });
}
