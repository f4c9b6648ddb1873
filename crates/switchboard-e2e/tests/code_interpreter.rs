//! The code interpreter through the chat (issue 16), over the real gateway, code-executor and
//! sandbox: whole programs from the offline planner, one sandbox session per conversation
//! (with the planner and with a scripted LLM), pictures in `/chat` answers, and the chat page
//! rendering Markdown safely and showing pictures in headless Chromium.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

mod common;

use common::{call, client, post};
use serde_json::{Value, json};
use switchboard_e2e::{Llm, System};
use switchboard_testkit::Reply;

/// A Python program that writes a 4x3 red PNG to /work/outputs/ (no packages needed); the same
/// as the browser test's.
const PNG_PROGRAM: &str = r"import os, struct, zlib
def chunk(kind, data):
    return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff)
rows = b''.join(b'\x00' + b'\xff\x00\x00' * 4 for _ in range(3))
png = b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', 4, 3, 8, 2, 0, 0, 0)) + chunk(b'IDAT', zlib.compress(rows)) + chunk(b'IEND', b'')
os.makedirs('/work/outputs', exist_ok=True)
open('/work/outputs/red.png', 'wb').write(png)
print('drew red.png')";

/// Ask in conversation `id` (none: a conversation of one request) and return the answer.
async fn ask(system: &System, id: Option<&str>, message: &str) -> Value {
    let mut body = json!({ "message": message });
    if let Some(id) = id {
        body["conversation_id"] = json!(id);
    }
    let (status, answer) = post(&system.middleware, "/chat", body).await;
    assert_eq!(status, 200, "{answer}");
    answer
}

async fn end(system: &System, id: &str) {
    let response = client()
        .delete(format!("{}/conversations/{id}", system.middleware))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
}

/// A program typed over several lines after `Execute:` runs whole, and a request in plain
/// language at the end of its last line is still understood.
#[tokio::test]
async fn planner_runs_a_whole_program_typed_after_execute() {
    let system = System::start(Llm::Offline).await;
    let answer = ask(&system, None, "Execute: x = 6\nprint(x * 7)").await;
    let exec = call(&answer, "execute_code");
    assert_eq!(exec["arguments"]["code"], "x = 6\nprint(x * 7)");
    assert_eq!(exec["structured_content"]["stdout"], "42\n", "{exec}");

    let answer = ask(
        &system,
        None,
        "Execute: for i in range(2):\n    print(i)\nprint('Hello') and tell me the time",
    )
    .await;
    let exec = call(&answer, "execute_code");
    assert_eq!(
        exec["structured_content"]["stdout"], "0\n1\nHello\n",
        "{exec}"
    );
    assert_eq!(call(&answer, "get_current_time")["is_error"], false);
}

/// Two messages of one conversation run in one sandbox session: a variable the first sets is
/// there in the second. Ending the conversation closes the session: the same id then starts
/// afresh, and the variable is gone.
#[tokio::test]
async fn planner_runs_a_two_step_program_in_one_conversation() {
    let system = System::start(Llm::Offline).await;
    let first = ask(&system, Some("two-steps"), "Execute: x = 21").await;
    assert_eq!(first["conversation_id"], "two-steps");
    let set = call(&first, "execute_code");
    assert_eq!(set["is_error"], false, "{set}");
    let session = set["arguments"]["session_id"].as_str().unwrap().to_owned();

    let second = ask(&system, Some("two-steps"), "Execute: print(x * 2)").await;
    let print = call(&second, "execute_code");
    assert_eq!(print["arguments"]["session_id"], session.as_str());
    assert_eq!(print["structured_content"]["stdout"], "42\n", "{print}");
    assert!(
        second["response"].as_str().unwrap().contains("42"),
        "{second}"
    );

    end(&system, "two-steps").await;
    let third = ask(&system, Some("two-steps"), "Execute: print(x)").await;
    let again = call(&third, "execute_code");
    assert_ne!(again["arguments"]["session_id"], session.as_str());
    assert_eq!(again["is_error"], true, "{again}");
    assert!(
        again["structured_content"]["stderr"]
            .as_str()
            .unwrap()
            .contains("NameError"),
        "{again}"
    );

    // Another conversation does not see this one's variables.
    let other = ask(&system, Some("another"), "Execute: print('x' in globals())").await;
    assert_eq!(
        call(&other, "execute_code")["structured_content"]["stdout"],
        "False\n"
    );
}

/// The LLM's code runs in the conversation's session too, without the model knowing one
/// exists: the middleware puts the session into each `execute_code` call.
#[tokio::test]
async fn llm_code_runs_in_the_conversation_session() {
    let system = System::start(Llm::OpenAi(vec![
        Reply::tools([("execute_code", json!({"code": "x = 21"}))]),
        Reply::text("x is set."),
        Reply::tools([("execute_code", json!({"code": "print(x * 2)"}))]),
        Reply::echo("Result: "),
    ]))
    .await;
    let first = ask(&system, Some("llm-steps"), "Set x to 21").await;
    assert_eq!(call(&first, "execute_code")["is_error"], false, "{first}");
    let second = ask(&system, Some("llm-steps"), "Print x * 2").await;
    let print = call(&second, "execute_code");
    assert_eq!(print["structured_content"]["stdout"], "42\n", "{print}");
    assert!(second["response"].as_str().unwrap().contains("42"));
    // The model asked without a session; the call carried the conversation's.
    assert!(print["arguments"]["session_id"].as_str().is_some());
    end(&system, "llm-steps").await;
}

/// A picture the program draws comes back with its tool call: name, MIME type and the PNG as
/// base64.
#[tokio::test]
async fn pictures_come_back_with_the_tool_call() {
    let system = System::start(Llm::Offline).await;
    let answer = ask(&system, None, &format!("Execute:\n{PNG_PROGRAM}")).await;
    let exec = call(&answer, "execute_code");
    assert_eq!(exec["is_error"], false, "{exec}");
    let images = exec["images"].as_array().unwrap();
    assert_eq!(images.len(), 1, "{exec}");
    assert!(images[0]["name"].as_str().unwrap().ends_with("red.png"));
    assert_eq!(images[0]["mime_type"], "image/png");
    // "\x89PNG\r\n\x1a\n" in base64.
    assert!(
        images[0]["data"]
            .as_str()
            .unwrap()
            .starts_with("iVBORw0KGgo"),
        "{}",
        images[0]
    );
}

/// The Markdown the scripted LLM answers with: every block the page renders, and HTML and a
/// `javascript:` link that must stay text.
const MARKDOWN: &str = "## Results

Some **bold** text and inline `x = 1`.

```python
print('fenced')
```

- first item
- second item

| name | value |
|------|-------|
| a | 1 |
| b | 2 |

<script>window.__owned = 1</script>

<img src=x onerror=\"window.__owned = 2\">

[click me](javascript:window.__owned=3) and [the docs](https://example.com/docs).";

/// The chat page in headless Chromium (`browser/chat-page.test.mjs`, suite `render`): the
/// answer's Markdown is rendered, hostile HTML and links stay text, a picture a program drew
/// is shown, and the page's messages share one sandbox session.
#[tokio::test]
async fn chat_page_renders_markdown_safely_and_shows_pictures() {
    let system = System::start(Llm::OpenAi(vec![
        Reply::text(MARKDOWN),
        Reply::tools([("execute_code", json!({"code": PNG_PROGRAM}))]),
        Reply::text("Here is **the picture**."),
        Reply::tools([("execute_code", json!({"code": "x = 21"}))]),
        Reply::text("x is set."),
        Reply::tools([("execute_code", json!({"code": "print(x * 2)"}))]),
        Reply::echo("Result: "),
    ]))
    .await;
    let browser = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("browser");
    assert!(
        browser.join("node_modules/playwright-core").is_dir(),
        "playwright-core is not installed in {}: run scripts/install-test-deps.sh (or npm ci there)",
        browser.display()
    );
    let url = system.middleware.clone();
    let run = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .arg("chat-page.test.mjs")
            .arg(url)
            .current_dir(&browser)
            .env("CHAT_PAGE_SUITE", "render")
            .output()
    })
    .await
    .unwrap()
    .expect("node runs (install Node.js: scripts/install-test-deps.sh)");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success(),
        "the browser checks failed:\n{stdout}\n{stderr}"
    );
}
