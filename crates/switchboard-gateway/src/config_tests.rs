//! Unit tests of [`super`]: defaults, validation messages, the file and command-line forms.

use super::*;

fn raw(upstreams: &[&str]) -> RawConfig {
    RawConfig {
        upstreams: Some(
            upstreams
                .iter()
                .map(|s| parse_upstream_arg(s).expect("has ="))
                .collect(),
        ),
        ..Default::default()
    }
}

#[test]
fn defaults_are_code_executor_and_time_client() {
    let config = Config::from_parts(RawConfig::default(), HttpSettings::default()).expect("ok");
    let names: Vec<_> = config.upstreams.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["code-executor", "time-client"]);
    assert_eq!(config.listen, DEFAULT_LISTEN);
}

#[test]
fn bad_names_and_urls_are_one_line_errors_naming_the_setting() {
    for (input, needle) in [
        ("bad name=http://x/mcp", "not an upstream name"),
        (
            "a-very-long-upstream-name-that-is-too-long=http://x/mcp",
            "1 to 32",
        ),
        ("ok=ftp://x/mcp", "scheme 'ftp'"),
        ("ok=not a url", "not a usable URL"),
    ] {
        let err = Config::from_parts(raw(&[input]), HttpSettings::default())
            .expect_err(input)
            .to_string();
        assert!(err.contains("--upstream / MCP_SERVER_UPSTREAMS"), "{err}");
        assert!(err.contains(needle), "{input}: {err}");
        assert!(!err.contains('\n'));
    }
    let err = Config::from_parts(
        raw(&["a=http://x/mcp", "a=http://y/mcp"]),
        Default::default(),
    )
    .expect_err("duplicate")
    .to_string();
    assert!(err.contains("listed twice"), "{err}");
    assert!(parse_upstream_arg("no-equals-sign").is_err());
}

#[test]
fn file_form_accepts_strings_and_tables_with_overrides() {
    let file = switchboard_runtime::config::ConfigFile::parse(
        std::path::Path::new("t.toml"),
        "[mcp-server]\nupstreams = [\"a=http://127.0.0.1:1/mcp\", { name = \"b\", url = \"http://127.0.0.1:2/mcp\", call_timeout_seconds = 2.5 }]\n",
    )
    .expect("toml");
    let raw: RawConfig =
        switchboard_runtime::config::layer(&RawConfig::default(), Some(&file), "mcp-server")
            .expect("layers");
    let config = Config::from_parts(raw, HttpSettings::default()).expect("valid");
    assert_eq!(config.upstreams[0].call_timeout, DEFAULT_CALL_TIMEOUT);
    assert_eq!(
        config.upstreams[1].call_timeout,
        Duration::from_millis(2500)
    );

    let file = switchboard_runtime::config::ConfigFile::parse(
        std::path::Path::new("t.toml"),
        "[mcp-server]\nupstreams = [{ name = \"b\", url = \"http://x/mcp\", timeout = 1 }]\n",
    )
    .expect("toml");
    let err = switchboard_runtime::config::layer(&RawConfig::default(), Some(&file), "mcp-server")
        .expect_err("unknown key")
        .to_string();
    assert!(err.contains("unknown field `timeout`"), "{err}");
}

#[test]
fn command_line_form_round_trips_through_layering() {
    let cli = raw(&["t=http://127.0.0.1:9/mcp"]);
    let merged: RawConfig =
        switchboard_runtime::config::layer(&cli, None, "mcp-server").expect("ok");
    assert_eq!(merged.upstreams, cli.upstreams);
}
