//! Code-interpreter sessions over REST: state that persists, owners kept apart, limits that
//! end a session with a reason, idle reaping, files in and out, pictures back.

mod common;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchboard_protocol::sandbox::ExecutionResult;

use common::Running;

async fn create(sandbox: &Running, owner: &str) -> String {
    let response = sandbox
        .http
        .post(sandbox.url("/sessions"))
        .header("x-switchboard-owner", owner)
        .send()
        .await
        .expect("request sent");
    assert_eq!(response.status(), 201, "{:?}", response.text().await);
    let info: Value = response.json().await.expect("JSON");
    info["session_id"].as_str().expect("an id").to_owned()
}

/// `POST /execute` in `session` as `owner`: status and body.
async fn run_in(sandbox: &Running, owner: &str, session: &str, code: &str) -> (u16, Value) {
    run_body(
        sandbox,
        owner,
        json!({"code": code, "session_id": session, "timeout_seconds": 5}),
    )
    .await
}

async fn run_body(sandbox: &Running, owner: &str, body: Value) -> (u16, Value) {
    let response = sandbox
        .http
        .post(sandbox.url("/execute"))
        .header("x-switchboard-owner", owner)
        .json(&body)
        .send()
        .await
        .expect("request sent");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn result(body: Value) -> ExecutionResult {
    serde_json::from_value(body).expect("an ExecutionResult")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_keeps_its_state_for_its_owner_only() {
    let sandbox = common::start().await;
    let id = create(&sandbox, "alice").await;
    let (status, body) = run_in(
        &sandbox,
        "alice",
        &id,
        "import math\nx = 21\nopen('/work/note', 'w').write('kept')",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (_, body) = run_in(
        &sandbox,
        "alice",
        &id,
        "print(x * 2, math.pi > 3, open('/work/note').read())",
    )
    .await;
    let second = result(body);
    assert_eq!(second.stdout, "42 True kept\n", "{second:?}");
    assert!(second.success);

    // Another owner, and a one-shot run, see nothing of it.
    let (status, body) = run_in(&sandbox, "mallory", &id, "print(x)").await;
    assert_eq!(status, 404, "{body}");
    assert!(body.to_string().contains("not yours"), "{body}");
    let other = create(&sandbox, "mallory").await;
    let (_, body) = run_in(
        &sandbox,
        "mallory",
        &other,
        "import os\nprint('x' in globals(), os.listdir('/work'))",
    )
    .await;
    assert_eq!(result(body).stdout, "False []\n");
    let one_shot = sandbox
        .run("import os\nprint('x' in globals(), os.listdir('/work'))")
        .await;
    assert_eq!(one_shot.stdout, "False []\n");

    // An exception or sys.exit is the program's end, not the session's.
    let (_, body) = run_in(&sandbox, "alice", &id, "raise ValueError('boom')").await;
    let failed = result(body);
    assert!(
        !failed.success && failed.stderr.contains("ValueError: boom"),
        "{failed:?}"
    );
    let (_, body) = run_in(&sandbox, "alice", &id, "import sys\nsys.exit(3)").await;
    assert_eq!(result(body).exit_code, Some(3));
    let (_, body) = run_in(&sandbox, "alice", &id, "print(x)").await;
    assert_eq!(result(body).stdout, "21\n");

    // Listed for its owner only; closed, it says so.
    let mine: Value = sandbox
        .http
        .get(sandbox.url("/sessions"))
        .header("x-switchboard-owner", "alice")
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON");
    assert_eq!(mine["sessions"].as_array().map(Vec::len), Some(1), "{mine}");
    assert_eq!(mine["sessions"][0]["executions"], 5);
    let closed: Value = sandbox
        .http
        .delete(sandbox.url(&format!("/sessions/{id}")))
        .header("x-switchboard-owner", "alice")
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON");
    assert_eq!(closed["closed"], true, "{closed}");
    let (status, body) = run_in(&sandbox, "alice", &id, "print(x)").await;
    assert_eq!(status, 410, "{body}");
    assert!(body.to_string().contains("closed"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_end_a_run_or_the_session_with_a_reason() {
    let sandbox = common::start_with(|mut c, _| {
        c.limits.memory_bytes = 128 << 20;
        c
    })
    .await;
    let id = create(&sandbox, "bob").await;
    let (_, body) = run_in(&sandbox, "bob", &id, "y = 'still here'").await;
    assert!(result(body).success);

    // Over its time: interrupted, and the session lives on.
    let (_, body) = run_in(
        &sandbox,
        "bob",
        &id,
        "import time\nwhile True: time.sleep(0.01)",
    )
    .await;
    let slow = result(body);
    assert!(slow.timed_out && slow.session_ended.is_none(), "{slow:?}");
    assert!(slow.stderr.contains("KeyboardInterrupt"), "{slow:?}");
    // Children it started are gone; the variables are not.
    let (_, body) = run_in(
        &sandbox,
        "bob",
        &id,
        "import subprocess\nsubprocess.Popen(['/usr/bin/python3', '-c', 'import time; time.sleep(60)'])\nprint('started')",
    )
    .await;
    assert_eq!(result(body).stdout, "started\n");
    let (_, body) = run_in(
        &sandbox,
        "bob",
        &id,
        "import os\nprint(y, len([p for p in os.listdir('/proc') if p.isdigit()]))",
    )
    .await;
    assert_eq!(result(body).stdout, "still here 1\n");

    // A program that will not be interrupted ends the session.
    let (_, body) = run_in(&sandbox, "bob", &id, "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True: time.sleep(0.01)").await;
    let stuck = result(body);
    assert!(stuck.session_ended.is_some(), "{stuck:?}");
    let (status, body) = run_in(&sandbox, "bob", &id, "print(y)").await;
    assert_eq!(status, 410, "{body}");
    assert!(body.to_string().contains("did not stop"), "{body}");

    // Memory: the whole session's.
    let id = create(&sandbox, "bob").await;
    let (_, body) = run_in(&sandbox, "bob", &id, "keep = bytearray(60 << 20)").await;
    assert!(result(body).success);
    let (_, body) = run_in(
        &sandbox,
        "bob",
        &id,
        "more = bytearray(100 << 20)\nmore[::4096] = b'x' * len(more[::4096])",
    )
    .await;
    let oom = result(body);
    // Touching the pages brings in the cgroup's OOM killer, which ends the interpreter.
    assert!(oom.memory_exceeded, "{oom:?}");
    let why = oom.session_ended.as_deref().unwrap_or_default();
    assert!(why.contains("memory limit"), "{oom:?}");
    let (status, body) = run_in(&sandbox, "bob", &id, "print(1)").await;
    assert_eq!(status, 410, "{body}");
    assert!(body.to_string().contains("memory limit"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sessions_are_reaped_and_caps_hold() {
    let sandbox = common::start_with(|mut c, _| {
        c.sessions.max_per_caller = 2;
        c.sessions.max_sessions = 3;
        c
    })
    .await;
    let response = sandbox
        .http
        .post(sandbox.url("/sessions"))
        .header("x-switchboard-owner", "carol")
        .json(&json!({"idle_timeout_seconds": 1}))
        .send()
        .await
        .expect("sent");
    let id = response.json::<Value>().await.expect("JSON")["session_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let _second = create(&sandbox, "carol").await;
    let third = sandbox
        .http
        .post(sandbox.url("/sessions"))
        .header("x-switchboard-owner", "carol")
        .send()
        .await
        .expect("sent");
    assert_eq!(third.status(), 429);
    let _dave = create(&sandbox, "dave").await;
    let full = sandbox
        .http
        .post(sandbox.url("/sessions"))
        .header("x-switchboard-owner", "erin")
        .send()
        .await
        .expect("sent");
    assert_eq!(full.status(), 503);

    // Looking a session up is not using it: poll until the sweeper has ended it.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let response = sandbox
            .http
            .get(sandbox.url(&format!("/sessions/{id}")))
            .header("x-switchboard-owner", "carol")
            .send()
            .await
            .expect("sent");
        if response.status() == 410 {
            let body = response.text().await.expect("body");
            assert!(body.contains("idle"), "{body}");
            break;
        }
        assert!(Instant::now() < deadline, "never reaped");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, _) = run_in(&sandbox, "carol", &id, "print(1)").await;
    assert_eq!(status, 410);
    let ready = sandbox.get("/ready").await;
    assert_eq!(
        ready["dependencies"]["sessions"]["detail"]["open"], 2,
        "{ready}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_go_in_and_come_out_and_hostile_names_are_refused() {
    let sandbox = common::start().await;
    let id = create(&sandbox, "fay").await;
    let put = |name: &str, body: &'static [u8]| {
        sandbox
            .http
            .put(sandbox.url(&format!("/sessions/{id}/files/{name}")))
            .header("x-switchboard-owner", "fay")
            .body(body)
            .send()
    };
    let response = put("data/in.csv", b"a,b\n1,2\n").await.expect("sent");
    assert_eq!(response.status(), 201);
    let (_, body) = run_in(&sandbox, "fay", &id, "import os\nprint(open('/work/data/in.csv').read().split()[1])\nos.makedirs('/work/outputs', exist_ok=True)\nopen('/work/outputs/sum.txt', 'w').write('3')").await;
    let ran = result(body);
    assert_eq!(ran.stdout, "1,2\n");
    assert_eq!(ran.files.len(), 1, "{ran:?}");
    assert_eq!(ran.files[0].name, "outputs/sum.txt");
    assert_eq!(ran.files[0].content_base64.as_deref(), Some("Mw=="));
    // Later runs hand back what they write or change, not what an earlier run left.
    for (code, expected) in [
        (
            "open('/work/outputs/new.txt', 'w').write('n')",
            Some("outputs/new.txt"),
        ),
        (
            "open('/work/outputs/new.txt', 'a').write('n')",
            Some("outputs/new.txt"),
        ),
        ("print('nothing written')", None),
    ] {
        let (_, body) = run_in(&sandbox, "fay", &id, code).await;
        let again = result(body);
        let names: Vec<&str> = again.files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, expected.into_iter().collect::<Vec<_>>(), "{code}");
    }
    let listing: Value = sandbox
        .http
        .get(sandbox.url(&format!("/sessions/{id}/files")))
        .header("x-switchboard-owner", "fay")
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON");
    let names: Vec<&str> = listing["files"]
        .as_array()
        .map(|f| f.iter().filter_map(|f| f["name"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        names.contains(&"data/in.csv") && names.contains(&"outputs/sum.txt"),
        "{listing}"
    );
    let download = sandbox
        .http
        .get(sandbox.url(&format!("/sessions/{id}/files/outputs/sum.txt")))
        .header("x-switchboard-owner", "fay")
        .send()
        .await
        .expect("sent");
    assert_eq!(download.status(), 200);
    assert_eq!(download.text().await.expect("body"), "3");

    for hostile in ["..%2Fx", "a/..%2F..%2Fetc", "nul%00byte", &"x".repeat(300)] {
        let response = put(hostile, b"x").await.expect("sent");
        assert_eq!(
            response.status(),
            400,
            "{hostile}: {:?}",
            response.text().await
        );
    }
    // A link the program made is not followed out of /work (nor to the program's own files).
    run_in(
        &sandbox,
        "fay",
        &id,
        "import os\nos.symlink('/etc/passwd', '/work/link')",
    )
    .await;
    let link = sandbox
        .http
        .get(sandbox.url(&format!("/sessions/{id}/files/link")))
        .header("x-switchboard-owner", "fay")
        .send()
        .await
        .expect("sent");
    assert_eq!(link.status(), 400);
    let missing = sandbox
        .http
        .get(sandbox.url(&format!("/sessions/{id}/files/none")))
        .header("x-switchboard-owner", "fay")
        .send()
        .await
        .expect("sent");
    assert_eq!(missing.status(), 404);

    // One-shot runs take input files and hand back what they write to /work/outputs/.
    let (status, body) = run_body(
        &sandbox,
        "fay",
        json!({
            "code": "import os\nos.makedirs('/work/outputs')\nopen('/work/outputs/b.bin','wb').write(open('/work/in.bin','rb').read()[::-1])",
            "files": [{"name": "in.bin", "content_base64": "AQID"}]
        }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let once = result(body);
    assert_eq!(
        once.files[0].content_base64.as_deref(),
        Some("AwIB"),
        "{once:?}"
    );
    let (status, body) = run_body(
        &sandbox,
        "fay",
        json!({"code": "pass", "files": [{"name": "../x", "content": "x"}]}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
}

/// A request whose caller goes away half-way does not leave its answer behind for the next
/// one: the abandoned program runs on in its session, and the next program sees what it did
/// and gets its own output, not the abandoned one's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_run_does_not_answer_the_next_one() {
    let sandbox = common::start().await;
    let id = create(&sandbox, "alice").await;
    let abandoned = run_in(
        &sandbox,
        "alice",
        &id,
        "import time\ntime.sleep(1.5)\nx = 41\nprint('abandoned')",
    );
    // Dropped (its connection closed) while the program sleeps.
    assert!(
        tokio::time::timeout(Duration::from_millis(500), abandoned)
            .await
            .is_err(),
        "the first program is still running"
    );
    let (status, body) = run_in(&sandbox, "alice", &id, "print(x + 1)").await;
    assert_eq!(status, 200, "{body}");
    let next = result(body);
    assert_eq!(next.stdout, "42\n", "{next:?}");
}
