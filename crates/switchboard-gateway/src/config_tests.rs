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

fn from_file(toml: &str) -> Result<Config, Error> {
    let file = switchboard_runtime::config::ConfigFile::parse(std::path::Path::new("t.toml"), toml)
        .expect("toml");
    let raw: RawConfig =
        switchboard_runtime::config::layer(&RawConfig::default(), Some(&file), "mcp-server")?;
    Config::from_parts(raw, HttpSettings::default())
}

#[test]
fn stdio_upstreams_from_the_command_line_and_the_file() {
    let config = Config::from_parts(
        raw(&["time=stdio:sh -c true", "web=http://127.0.0.1:1/mcp"]),
        HttpSettings::default(),
    )
    .expect("valid");
    let stdio = config.upstreams[0].stdio.as_ref().expect("stdio");
    assert_eq!(stdio.command, "sh");
    assert_eq!(stdio.args, ["-c", "true"]);
    assert_eq!(config.upstreams[0].url, "stdio:sh -c true");
    assert!(config.upstreams[1].stdio.is_none());

    let config = from_file(
        "[mcp-server]\nupstreams = [{ name = \"time\", command = \"/bin/sh\", args = [\"-c\", \"exec cat\"], env = { TZ = \"UTC\" }, cwd = \"/\" }]\n",
    )
    .expect("valid");
    let stdio = config.upstreams[0].stdio.as_ref().expect("stdio");
    assert_eq!(stdio.args, ["-c", "exec cat"], "arguments with spaces");
    assert_eq!(stdio.env.get("TZ").map(String::as_str), Some("UTC"));
    assert_eq!(stdio.cwd.as_deref(), Some(std::path::Path::new("/")));
}

#[test]
fn bad_stdio_upstreams_are_refused_at_start() {
    for (input, needle) in [
        ("t=stdio:", "names no command"),
        (
            "t=stdio:no-such-program-anywhere --flag",
            "not an executable",
        ),
        ("t=stdio:/etc", "not an executable"),
    ] {
        let err = Config::from_parts(raw(&[input]), HttpSettings::default())
            .expect_err(input)
            .to_string();
        assert!(err.contains(needle), "{input}: {err}");
    }
    for (toml, needle) in [
        ("{ name = \"t\" }", "needs url"),
        (
            "{ name = \"t\", url = \"http://x/mcp\", command = \"sh\" }",
            "not both",
        ),
        (
            "{ name = \"t\", url = \"http://x/mcp\", args = [\"x\"] }",
            "belong to a stdio upstream",
        ),
        (
            "{ name = \"t\", command = \"sh\", cwd = \"/no/such/dir\" }",
            "not a directory",
        ),
        (
            "{ name = \"t\", command = \"sh\", env = { \"A=B\" = \"x\" } }",
            "not an environment variable name",
        ),
    ] {
        let err = from_file(&format!("[mcp-server]\nupstreams = [{toml}]\n"))
            .expect_err(toml)
            .to_string();
        assert!(err.contains(needle), "{toml}: {err}");
    }
}
