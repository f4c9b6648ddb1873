use switchboard_runtime::auth::Method;

use super::*;

pub(super) fn who(subject: &str, groups: &[&str], scopes: &[&str]) -> Identity {
    Identity {
        subject: subject.into(),
        method: Method::Jwt,
        groups: groups.iter().map(|g| g.to_string()).collect(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        via: None,
    }
}

pub(super) fn policy(text: &str) -> (tempfile::TempDir, Result<Policy, Error>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("policy.toml");
    std::fs::write(&path, text).expect("write");
    let policy = Policy::load(&path);
    (dir, policy)
}

const POLICY: &str = r#"
[roles.reader]
tools = ["get_current_time", "time-client_*"]
[roles.coder]
upstreams = ["code-executor"]
[roles.nothing]

[[grants]]
roles = ["reader"]
subjects = ["*"]
[[grants]]
roles = ["coder"]
groups = ["dev"]
[[grants]]
roles = ["coder"]
scopes = ["tools:code"]
"#;

#[test]
fn roles_come_from_subjects_groups_and_scopes_and_the_rest_is_denied() {
    let (_dir, policy) = policy(POLICY);
    let policy = policy.expect("loads");
    // (caller, tool, upstream, allowed)
    let matrix = [
        (
            who("bob", &[], &[]),
            "get_current_time",
            "time-client",
            true,
        ),
        (
            who("bob", &[], &[]),
            "time-client_convert_time",
            "time-client",
            true,
        ),
        (who("bob", &[], &[]), "execute_code", "code-executor", false),
        (
            who("alice", &["dev"], &[]),
            "execute_code",
            "code-executor",
            true,
        ),
        (
            who("carol", &[], &["tools:code"]),
            "install_package",
            "code-executor",
            true,
        ),
        (
            who("carol", &[], &["tools:read"]),
            "install_package",
            "code-executor",
            false,
        ),
        (who("alice", &["dev"], &[]), "echo", "everything", false),
    ];
    for (caller, tool, upstream, allowed) in matrix {
        let permissions = policy.for_caller(&caller);
        assert_eq!(
            permissions.allows(tool, upstream),
            allowed,
            "{} calling {tool}",
            caller.subject
        );
        if !allowed {
            let why = permissions.denial(tool);
            assert!(why.contains(&caller.subject) && why.contains(tool), "{why}");
        }
    }
}

#[test]
fn malformed_policies_name_the_problem() {
    for (text, says) in [
        (
            "[[grants]]\nroles = [\"ghost\"]\nsubjects = [\"*\"]\n",
            "role 'ghost'",
        ),
        ("[roles.r]\n[[grants]]\nroles = [\"r\"]\n", "names nobody"),
        ("[roles.r]\ntool = [\"x\"]\n", "unknown field"),
        ("[roles", "policy.toml"),
    ] {
        let (_dir, policy) = policy(text);
        let err = policy.expect_err("refused").to_string();
        assert!(
            err.contains(says) && err.contains("--policy"),
            "{text}: {err}"
        );
    }
}

#[test]
fn a_changed_policy_applies_and_a_broken_one_keeps_the_last_good_one() {
    let (dir, policy) = policy(POLICY);
    let policy = policy.expect("loads");
    let bob = who("bob", &[], &[]);
    assert!(
        !policy
            .for_caller(&bob)
            .allows("execute_code", "code-executor")
    );
    let path = dir.path().join("policy.toml");
    let tmp = dir.path().join("policy.tmp");
    std::fs::write(
        &tmp,
        format!("{POLICY}\n[[grants]]\nroles = [\"coder\"]\nsubjects = [\"bob\"]\n"),
    )
    .expect("write");
    std::fs::rename(&tmp, &path).expect("rename");
    policy.look_again();
    assert!(
        policy
            .for_caller(&bob)
            .allows("execute_code", "code-executor")
    );
    std::fs::write(&tmp, "[roles").expect("write");
    std::fs::rename(&tmp, &path).expect("rename");
    policy.look_again();
    assert!(
        policy
            .for_caller(&bob)
            .allows("execute_code", "code-executor"),
        "the last good policy stays"
    );
}

#[test]
fn patterns_match_whole_names_with_stars_anywhere() {
    for (pattern, name, expected) in [
        ("*", "", true),
        ("*", "anything", true),
        ("get_*", "get_current_time", true),
        ("get_*", "forget_it", false),
        ("*_time", "get_current_time", true),
        ("a*b*c", "aXbYc", true),
        ("a*b*c", "aXbY", false),
        ("exact", "exact", true),
        ("exact", "exactly", false),
        ("**", "x", true),
    ] {
        assert_eq!(matches(pattern, name), expected, "{pattern} ~ {name}");
    }
}
