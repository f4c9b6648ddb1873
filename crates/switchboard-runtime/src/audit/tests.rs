use std::path::{Path, PathBuf};

use super::*;
use super::{record::MAX_DETAIL, writer::numbered};
use crate::auth::Identity;

use clap::Parser;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);

fn file_settings(path: &Path, max_bytes: u64, keep: usize, fail_closed: bool) -> AuditSettings {
    AuditSettings {
        sink: Some(Sink::File {
            path: path.to_owned(),
            max_bytes,
            keep,
        }),
        fail_closed,
    }
}

fn numbered_record(n: usize) -> Record {
    Record::new("test", "tools/call", &Identity::anonymous(), "ok").with_detail(format!("{n}"))
}

/// The records of one file, parsed; a missing file has none.
fn lines(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect()
}

/// The `detail` numbers of `path.<keep>` ... `path.1`, `path`: oldest first.
fn numbers_over_all_files(path: &Path, keep: usize) -> Vec<usize> {
    let mut files: Vec<PathBuf> = (1..=keep).rev().map(|n| numbered(path, n)).collect();
    files.push(path.to_owned());
    files
        .iter()
        .flat_map(|file| lines(file))
        .map(|v| v["detail"].as_str().expect("detail").parse().expect("n"))
        .collect()
}

#[test]
fn lines_are_json_with_fields_in_order_and_arguments_only_as_a_digest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("audit.jsonl");
    let audit = Audit::start(&file_settings(&path, 1 << 20, 5, false)).expect("starts");
    assert!(audit.enabled());
    let who = Identity {
        subject: "alice".into(),
        method: crate::auth::Method::Jwt,
        groups: vec![],
        scopes: vec![],
        via: None,
    };
    let arguments = json!({"query": "select 1", "password": "hunter2-very-secret"});
    let full = Record::new("gateway", "tools/call", &who, "denied")
        .with_source("10.0.0.7:5123")
        .with_target("sql.run")
        .with_arguments(&arguments)
        .with_detail("policy: not in group db")
        .with_duration(Duration::from_micros(1500))
        .with_trace_id("4bf92f3577b34da6a3ce929d0e0e4736");
    audit.record(full).expect("recorded");
    audit
        .record(Record::new(
            "gateway",
            "authenticate",
            &Identity::anonymous(),
            "refused",
        ))
        .expect("recorded");
    assert!(audit.flush(WAIT));

    let text = std::fs::read_to_string(&path).expect("read");
    assert!(!text.contains("hunter2"), "arguments leaked: {text}");
    let raw: Vec<&str> = text.lines().collect();
    assert_eq!(raw.len(), 2, "{text}");
    let order = [
        "time",
        "service",
        "action",
        "identity",
        "method",
        "source",
        "target",
        "arguments_sha256",
        "outcome",
        "detail",
        "duration_ms",
        "trace_id",
    ];
    let positions: Vec<usize> = order
        .iter()
        .map(|key| raw[0].find(&format!("\"{key}\":")).expect(key))
        .collect();
    assert!(positions.is_sorted(), "fields out of order: {}", raw[0]);

    let records = lines(&path);
    let first = &records[0];
    assert_eq!(first["identity"], "alice");
    assert_eq!(first["method"], "jwt");
    assert_eq!(first["outcome"], "denied");
    assert_eq!(first["duration_ms"], 1.5);
    assert_eq!(first["arguments_sha256"], digest(&arguments).as_str());
    let time = first["time"].as_str().expect("time");
    assert!(time.parse::<jiff::Timestamp>().is_ok(), "{time}");
    assert!(
        time.ends_with('Z') && time.len() == "2025-01-01T00:00:00.000Z".len(),
        "{time}"
    );
    // `None`s are left out, not written as null.
    let second = records[1].as_object().expect("object");
    let keys: Vec<&str> = second.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["action", "identity", "method", "outcome", "service", "time"]
    );
    assert_eq!(second["method"], "anonymous");
}

#[test]
fn the_digest_is_the_hex_sha256_of_the_json_whatever_the_key_order() {
    assert_eq!(
        digest(&json!({})),
        "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    );
    let sent: serde_json::Value =
        serde_json::from_str(r#"{"b": [true, null], "a": 1}"#).expect("json");
    // sha256 of `{"a":1,"b":[true,null]}`: keys sorted, no spaces.
    assert_eq!(
        digest(&sent),
        "1cc69c7fa23616ca2ec3ee70d24390a6225c8832db8a4c814c7e0e7f942f8668"
    );
}

#[test]
fn a_long_detail_is_cut_on_a_character_boundary() {
    let record = numbered_record(0).with_detail("é".repeat(MAX_DETAIL));
    let detail = record.detail.expect("detail");
    assert!(detail.len() <= MAX_DETAIL && detail.chars().all(|c| c == 'é'));
}

#[test]
fn rotation_loses_no_record_and_keeps_at_most_keep_old_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("audit.jsonl");
    let line_len = serde_json::to_vec(&numbered_record(10))
        .expect("json")
        .len() as u64
        + 1;
    // Room for two records per file (the numbers below 100 are as long or shorter).
    let max_bytes = 2 * line_len + 1;

    // Enough old files for every record: all of them are there, in order.
    let audit = Audit::start(&file_settings(&path, max_bytes, 10, false)).expect("starts");
    for n in 10..20 {
        audit.record(numbered_record(n)).expect("recorded");
    }
    assert!(audit.flush(WAIT));
    assert_eq!(
        numbers_over_all_files(&path, 10),
        (10..20).collect::<Vec<_>>()
    );
    assert!(numbered(&path, 4).exists() && !numbered(&path, 5).exists());
    drop(audit);

    // Fewer old files than needed: the oldest go, the rest stay whole and in order.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("audit.jsonl");
    let audit = Audit::start(&file_settings(&path, max_bytes, 2, false)).expect("starts");
    for n in 10..35 {
        audit.record(numbered_record(n)).expect("recorded");
    }
    assert!(audit.flush(WAIT));
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["audit.jsonl", "audit.jsonl.1", "audit.jsonl.2"]);
    for file in [path.clone(), numbered(&path, 1), numbered(&path, 2)] {
        let size = std::fs::metadata(&file).expect("size").len();
        assert!(size <= max_bytes, "{} has {size} bytes", file.display());
    }
    let kept = numbers_over_all_files(&path, 2);
    assert_eq!(kept, (35 - kept.len()..35).collect::<Vec<_>>());
    assert!(kept.len() >= 5, "{kept:?}");
    assert_eq!((audit.dropped(), audit.failed_writes()), (0, 0));
}

/// A writer held at its gate with a queue of 2: of 10 records, at most 3 fit (one taken by the
/// writer, two queued), the rest are dropped.
fn fill_a_held_queue(fail_closed: bool) -> (tempfile::TempDir, Audit, Arc<Gate>, Vec<String>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("audit.jsonl");
    let gate = Arc::new(Gate::default());
    gate.set_closed(true);
    let settings = file_settings(&path, 1 << 20, 1, fail_closed);
    let audit = Audit::spawn(&settings, 2, Some(gate.clone())).expect("starts");
    let refused = (0..10)
        .filter_map(|n| audit.record(numbered_record(n)).err())
        .map(|e| e.to_string())
        .collect();
    (dir, audit, gate, refused)
}

#[test]
fn a_full_queue_drops_and_counts_and_refuses_only_when_fail_closed() {
    for fail_closed in [false, true] {
        let (dir, audit, gate, refused) = fill_a_held_queue(fail_closed);
        let dropped = audit.dropped();
        assert!((7..=8).contains(&dropped), "dropped {dropped}");
        let expected_refusals = if fail_closed { dropped } else { 0 };
        assert_eq!(refused.len() as u64, expected_refusals, "{refused:?}");
        assert!(
            refused.iter().all(|m| m.contains("queue is full")),
            "{refused:?}"
        );
        gate.set_closed(false);
        assert!(audit.flush(WAIT));
        let written = lines(&dir.path().join("audit.jsonl")).len() as u64;
        assert_eq!(written + dropped, 10);
        // Room again: recorded, not refused.
        audit.record(numbered_record(10)).expect("room again");
        assert_eq!(audit.failed_writes(), 0);
    }
}

#[test]
fn a_failing_sink_refuses_records_only_when_fail_closed() {
    // Every write to /dev/full fails with ENOSPC, though it opens fine.
    let full = Path::new("/dev/full");
    for fail_closed in [false, true] {
        let audit = Audit::start(&file_settings(full, 1 << 20, 1, fail_closed)).expect("starts");
        // Nothing has failed yet: the first record is accepted either way.
        audit.record(numbered_record(0)).expect("not failing yet");
        assert!(audit.flush(WAIT));
        assert_eq!(audit.failed_writes(), 1);
        let second = audit.record(numbered_record(1));
        if fail_closed {
            let message = second.expect_err("fails closed").to_string();
            assert!(message.contains("the last write failed"), "{message}");
        } else {
            second.expect("fail open");
        }
        // Still tried: the failure is counted per record.
        assert!(audit.flush(WAIT));
        assert_eq!(audit.failed_writes(), 2);
    }
}

#[test]
fn the_log_recovers_when_its_directory_comes_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).expect("mkdir");
    let path = logs.join("audit.jsonl");
    // One record per file: every write rotates, then reopens the file.
    let audit = Audit::start(&file_settings(&path, 1, 1, true)).expect("starts");
    audit.record(numbered_record(0)).expect("written");
    assert!(audit.flush(WAIT));

    std::fs::remove_dir_all(&logs).expect("rmdir");
    audit
        .record(numbered_record(1))
        .expect("not known to fail yet");
    assert!(audit.flush(WAIT));
    assert_eq!(audit.failed_writes(), 1);
    assert!(audit.record(numbered_record(2)).is_err(), "fails closed");
    assert!(audit.flush(WAIT));
    assert_eq!(audit.failed_writes(), 2);

    std::fs::create_dir(&logs).expect("mkdir again");
    // Refused (the last write failed), but queued all the same: it is what clears the failure.
    let refused = audit.record(numbered_record(3));
    assert!(refused.is_err(), "{refused:?}");
    assert!(audit.flush(WAIT));
    audit.record(numbered_record(4)).expect("writing again");
    assert!(audit.flush(WAIT));
    assert_eq!(numbers_over_all_files(&path, 1), [3, 4]);
    assert_eq!(audit.failed_writes(), 2);
}

#[test]
fn the_writer_thread_ends_when_every_handle_is_dropped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("audit.jsonl");
    let audit = Audit::start(&file_settings(&path, 1 << 20, 1, false)).expect("starts");
    let shared = Arc::downgrade(&audit.inner.as_ref().expect("on").shared);
    let clone = audit.clone();
    audit.record(numbered_record(0)).expect("recorded");
    drop(audit);
    clone.record(numbered_record(1)).expect("recorded");
    drop(clone);
    // The writer holds the last reference; it lets go when its thread returns.
    let deadline = Instant::now() + WAIT;
    while shared.upgrade().is_some() {
        assert!(
            Instant::now() < deadline,
            "the writer thread is still running"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // What was queued before the last drop was still written.
    assert_eq!(numbers_over_all_files(&path, 1), [0, 1]);
}

#[test]
fn off_writes_nothing_and_never_refuses() {
    let audit = Audit::start(&AuditSettings::default()).expect("off");
    assert!(!audit.enabled() && !Audit::off().enabled());
    audit.record(numbered_record(0)).expect("ok");
    assert!(audit.flush(WAIT));
    assert_eq!((audit.dropped(), audit.failed_writes()), (0, 0));
}

#[derive(clap::Parser)]
struct Cli {
    #[command(flatten)]
    audit: AuditArgs,
}

fn parse(args: &[&str]) -> Result<AuditSettings, Error> {
    let cli = Cli::try_parse_from(std::iter::once("test").chain(args.iter().copied()))
        .expect("flags parse");
    AuditSettings::try_from(cli.audit)
}

#[test]
fn settings_default_to_off_and_dash_means_stdout() {
    let off = parse(&[]).expect("valid");
    assert!(off.sink.is_none() && !off.fail_closed);
    let stdout = parse(&["--audit-log", "-", "--audit-fail-closed"]).expect("valid");
    assert!(matches!(stdout.sink, Some(Sink::Stdout)));
    assert!(stdout.fail_closed);
    assert!(Audit::start(&stdout).expect("starts").enabled());

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("audit.jsonl");
    let file = parse(&["--audit-log", path.to_str().expect("utf-8")]).expect("valid");
    match file.sink {
        Some(Sink::File {
            path: p,
            max_bytes,
            keep,
        }) => assert_eq!((p, max_bytes, keep), (path.clone(), 100 * 1024 * 1024, 5)),
        other => panic!("{other:?}"),
    }
    assert!(path.exists(), "checked by opening it");
    let toml: AuditArgs =
        toml::from_str("audit_log = \"-\"\naudit_fail_closed = false").expect("toml");
    assert!(toml.audit_log.is_some_and(|p| p.as_os_str() == "-"));
    assert!(toml::from_str::<AuditArgs>("audit_logs = \"-\"").is_err());
}

#[test]
fn settings_errors_name_the_setting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nowhere/audit.jsonl");
    let cases = [
        (
            vec!["--audit-log", missing.to_str().expect("utf-8")],
            "audit_log (--audit-log / SWITCHBOARD_AUDIT_LOG): directory",
        ),
        (
            vec!["--audit-log", dir.path().to_str().expect("utf-8")],
            "audit_log (--audit-log / SWITCHBOARD_AUDIT_LOG): cannot open",
        ),
        (
            vec!["--audit-log", "-", "--audit-log-max-bytes", "0"],
            "audit_log_max_bytes (--audit-log-max-bytes / SWITCHBOARD_AUDIT_LOG_MAX_BYTES)",
        ),
    ];
    for (args, expected) in cases {
        let message = parse(&args).expect_err("invalid").to_string();
        assert!(message.starts_with(expected), "{message}");
    }
    let empty = AuditArgs {
        audit_log: Some(PathBuf::new()),
        ..AuditArgs::default()
    };
    let message = AuditSettings::try_from(empty)
        .expect_err("empty")
        .to_string();
    assert!(
        message.contains("SWITCHBOARD_AUDIT_LOG): empty"),
        "{message}"
    );
}
