//! Resources, prompts, the code-executor's rules and per-tool rate limits of the policy.

use std::time::{Duration, Instant};

use super::{
    Item,
    code::{TimeoutLimit, package_name},
    tests::{policy, who},
};

const POLICY: &str = r#"
[roles.reader]
tools = ["get_current_time"]
resources = ["demo://resource/static/*", "demo://resource/dynamic/text/*"]
prompts = ["simple-prompt", "args-*"]

[roles.coder]
upstreams = ["code-executor"]
install_package = ["NumPy", "pandas*", "scikit_learn"]
[roles.coder.execute_code]
max_timeout_seconds = 30

[roles.long-runner]
tools = ["execute_code"]
[roles.long-runner.execute_code]
max_timeout_seconds = 120

[roles.unlimited-coder]
tools = ["execute_code"]

[roles.limit-only]
install_package = ["*"]
[roles.limit-only.execute_code]
max_timeout_seconds = 1000

[[grants]]
roles = ["reader"]
subjects = ["*"]
[[grants]]
roles = ["coder"]
groups = ["dev"]
[[grants]]
roles = ["long-runner"]
groups = ["batch"]
[[grants]]
roles = ["unlimited-coder"]
groups = ["ops"]
[[grants]]
roles = ["limit-only"]
subjects = ["bob"]

[limits."execute_*"]
rate_per_second = 1
burst = 2
[limits."slow_tool"]
max_in_flight = 1
"#;

#[test]
fn resources_and_prompts_need_a_matching_pattern_and_are_named_when_refused() {
    let (_dir, policy) = policy(POLICY);
    let policy = policy.expect("loads");
    let bob = policy.for_caller(&who("bob", &[], &[]));
    for (item, allowed) in [
        (Item::Resource("demo://resource/static/document/a.md"), true),
        (
            Item::Resource("demo://resource/dynamic/text/{resourceId}"),
            true,
        ),
        (Item::Resource("demo://resource/dynamic/blob/1"), false),
        (Item::Resource("file:///secret"), false),
        (Item::Prompt("simple-prompt"), true),
        (Item::Prompt("args-prompt"), true),
        (Item::Prompt("resource-prompt"), false),
        // A resource pattern grants no prompt of that name, nor the reverse.
        (Item::Prompt("demo://resource/static/x"), false),
        (Item::Resource("simple-prompt"), false),
    ] {
        assert_eq!(bob.may_use(item), allowed, "{item:?}");
    }
    let why = bob.denial_of(Item::Resource("file:///secret"));
    assert!(
        why.contains("'bob'")
            && why.contains("no role with resource 'file:///secret'")
            && why.contains("`resources`"),
        "{why}"
    );
    let why = bob.denial_of(Item::Prompt("resource-prompt"));
    assert!(
        why.contains("prompt 'resource-prompt'") && why.contains("`prompts`"),
        "{why}"
    );
}

#[test]
fn roles_without_resources_or_prompts_grant_none() {
    let (_dir, policy) = policy(
        "[roles.tools]\nupstreams = [\"*\"]\ntools = [\"*\"]\n[[grants]]\nroles = [\"tools\"]\nsubjects = [\"*\"]\n",
    );
    let anyone = policy.expect("loads").for_caller(&who("x", &[], &[]));
    assert!(anyone.allows("echo", "everything"));
    assert!(!anyone.may_use(Item::Resource("demo://resource/static/document/a.md")));
    assert!(!anyone.may_use(Item::Prompt("simple-prompt")));
    assert!(!anyone.may_install("install_package", "code-executor", "numpy"));
}

#[test]
fn the_most_generous_role_that_may_call_execute_code_sets_its_timeout_limit() {
    let (_dir, policy) = policy(POLICY);
    let policy = policy.expect("loads");
    let limit = |groups: &[&str]| {
        policy
            .for_caller(&who("alice", groups, &[]))
            .timeout_limit("execute_code", "code-executor")
    };
    let at_most = |max_seconds: f64, role: &str| {
        Some(TimeoutLimit {
            max_seconds,
            role: role.into(),
        })
    };
    assert_eq!(limit(&["dev"]), at_most(30.0, "coder"));
    assert_eq!(limit(&["dev", "batch"]), at_most(120.0, "long-runner"));
    // A role that may call it without a limit: none.
    assert_eq!(limit(&["dev", "ops"]), None);
    // A role with a limit that does not let the caller call the tool does not count: bob's
    // `limit-only` names 1000 s but grants no tool.
    let bob = policy.for_caller(&who("bob", &["dev"], &[]));
    assert_eq!(
        bob.timeout_limit("execute_code", "code-executor"),
        at_most(30.0, "coder")
    );
}

#[test]
fn package_names_and_patterns_are_normalised_and_judged_by_the_roles_that_may_install() {
    for (given, name) in [
        ("numpy", "numpy"),
        ("  NumPy==1.26.4", "numpy"),
        ("Scikit_Learn", "scikit-learn"),
        ("zope.interface>=5", "zope-interface"),
        ("a__b--c", "a-b-c"),
        ("https://example.com/x.whl", "https"),
        ("../local", ""),
        ("", ""),
    ] {
        assert_eq!(package_name(given), name, "{given}");
    }
    let (_dir, policy) = policy(POLICY);
    let policy = policy.expect("loads");
    let alice = policy.for_caller(&who("alice", &["dev"], &[]));
    for (package, allowed) in [
        ("numpy", true),
        ("NUMPY==2.0", true),
        ("pandas", true),
        ("pandas-stubs", true),
        ("scikit-learn", true),
        ("requests", false),
        ("", false),
    ] {
        assert_eq!(
            alice.may_install("install_package", "code-executor", package),
            allowed,
            "{package}"
        );
    }
    let why = alice.install_denial("install_package", "Requests==2.0");
    assert!(
        why.contains("'alice'")
            && why.contains("package 'requests'")
            && why.contains("`install_package`"),
        "{why}"
    );
    // bob's `install_package = ["*"]` is in a role that may not call the tool: nothing.
    let bob = policy.for_caller(&who("bob", &[], &[]));
    assert!(!bob.may_install("install_package", "code-executor", "numpy"));
}

#[test]
fn per_tool_rate_limits_apply_per_caller_and_tool_and_recover() {
    let (_dir, policy) = policy(POLICY);
    let policy = policy.expect("loads");
    let alice = policy.for_caller(&who("alice", &[], &[]));
    assert!(alice.admit_tool("execute_code").is_ok());
    assert!(alice.admit_tool("execute_code").is_ok());
    let over = alice
        .admit_tool("execute_code")
        .err()
        .expect("the third is over the burst");
    assert!(over.retry_after > Duration::ZERO && over.retry_after <= Duration::from_secs(1));
    assert_eq!(over.retry_after_seconds(), 1);
    assert!(
        over.why.contains("'alice'")
            && over.why.contains("'execute_code'")
            && over.why.contains("[limits.\"execute_*\"]")
            && over.why.contains("retry after 1 s"),
        "{over:?}"
    );
    // Another tool of the pattern, another caller, a tool of no pattern: their own buckets.
    assert!(alice.admit_tool("execute_other").is_ok());
    let bob = policy.for_caller(&who("bob", &[], &[]));
    assert!(bob.admit_tool("execute_code").is_ok());
    for _ in 0..100 {
        assert!(alice.admit_tool("get_current_time").is_ok());
    }
    // Never a lockout: the bucket refills (polled, with a deadline).
    let deadline = Instant::now() + Duration::from_secs(10);
    while alice.admit_tool("execute_code").is_err() {
        assert!(Instant::now() < deadline, "the bucket never refilled");
        std::thread::yield_now();
    }
}

#[test]
fn in_flight_caps_hold_while_a_call_runs() {
    let (_dir, policy) = policy(POLICY);
    let policy = policy.expect("loads");
    let alice = policy.for_caller(&who("alice", &[], &[]));
    let running = alice.admit_tool("slow_tool").expect("first");
    let over = alice
        .admit_tool("slow_tool")
        .err()
        .expect("a second one while the first runs");
    assert!(
        over.why
            .contains("already has 1 calls of 'slow_tool' running"),
        "{over:?}"
    );
    assert!(
        policy
            .for_caller(&who("bob", &[], &[]))
            .admit_tool("slow_tool")
            .is_ok()
    );
    drop(running);
    assert!(
        alice.admit_tool("slow_tool").is_ok(),
        "released when it ends"
    );
}

#[test]
fn bad_limits_and_unknown_keys_are_refused_with_the_place() {
    for (text, says) in [
        (
            "[roles.r.execute_code]\nmax_timeout_seconds = 0\n",
            "roles.r.execute_code: max_timeout_seconds = 0",
        ),
        (
            "[roles.r.execute_code]\nmax_memory_mib = 512\n",
            "unknown field `max_memory_mib`",
        ),
        (
            "[roles.r]\nresource = [\"x\"]\n",
            "unknown field `resource`",
        ),
        ("[limits.\"x\"]\nburst = 3\n", "limits.\"x\": burst needs"),
        (
            "[limits.\"x\"]\nrate_per_second = -1\n",
            "limits.\"x\": rate_per_second = -1",
        ),
        (
            "[limits.\"x\"]\nrate_per_second = 1\nburst = 0\n",
            "burst must be at least 1",
        ),
        (
            "[limits.\"x\"]\nmax_in_flight = 0\n",
            "max_in_flight must be",
        ),
        ("[limits.\"x\"]\n", "set rate_per_second, max_in_flight"),
        ("[limits.\"x\"]\nrate = 1\n", "unknown field `rate`"),
    ] {
        let (_dir, policy) = policy(text);
        let err = policy.expect_err("refused").to_string();
        assert!(
            err.contains(says) && err.contains("--policy"),
            "{text}: {err}"
        );
    }
}
