//! Pictures a program produces come back with its result: matplotlib figures left open and
//! PNG/SVG files written to /work/outputs/, in a session and in a one-shot run, with numpy and
//! matplotlib installed through the package API from the pinned wheels (no index).

mod common;

use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};
use switchboard_protocol::sandbox::ExecutionResult;

async fn execute(sandbox: &common::Running, body: Value) -> ExecutionResult {
    let response = sandbox
        .http
        .post(sandbox.url("/execute"))
        .json(&body)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    response.json().await.expect("an ExecutionResult")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn charts_come_back_as_pictures() {
    let wheels = common::wheels::scientific();
    let sandbox = common::start_with(move |mut config, _| {
        config.pool_size = 2;
        config.limits.memory_bytes = 1 << 30;
        let mut packages = config.packages.clone().with_wheel_dir(wheels, true);
        packages.install_timeout = Duration::from_secs(600);
        config.packages = packages;
        config
    })
    .await;
    for (package, version) in [("numpy", "2.4.6"), ("matplotlib", "3.11.2")] {
        let response = sandbox
            .http
            .post(sandbox.url("/packages"))
            .json(&json!({ "package": package, "version": version }))
            .send()
            .await
            .expect("sent");
        let outcome: Value = response.json().await.expect("JSON");
        assert_eq!(outcome["status"], "installed", "{outcome}");
    }

    // A session: the data in one call, the chart in the next.
    let created: Value = sandbox
        .http
        .post(sandbox.url("/sessions"))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON");
    let id = created["session_id"].as_str().expect("id");
    let first = execute(
        &sandbox,
        json!({"session_id": id, "timeout_seconds": 60,
               "code": "import numpy as np\nxs = np.linspace(0, 6.3, 50)\nys = np.sin(xs)"}),
    )
    .await;
    assert!(first.success, "{first:?}");
    assert!(first.images.is_empty());
    let chart = execute(
        &sandbox,
        json!({"session_id": id, "timeout_seconds": 60,
               "code": "import matplotlib.pyplot as plt\nplt.plot(xs, ys)\nplt.title('sine')\nplt.show()"}),
    )
    .await;
    assert!(chart.success, "{chart:?}");
    assert_eq!(chart.images.len(), 1, "{chart:?}");
    let image = &chart.images[0];
    assert_eq!(
        (image.name.as_str(), image.mime_type.as_str()),
        ("figure-1.png", "image/png")
    );
    let png = base64::engine::general_purpose::STANDARD
        .decode(image.content_base64.as_deref().expect("content"))
        .expect("base64");
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 5000,
        "{} bytes",
        png.len()
    );
    // Shown figures are closed: the next call returns no picture unless it draws one.
    let after = execute(
        &sandbox,
        json!({"session_id": id, "code": "print(len(ys))"}),
    )
    .await;
    assert_eq!((after.stdout.as_str(), after.images.len()), ("50\n", 0));

    // One-shot: a saved SVG is returned, and no duplicate of the open figure.
    let once = execute(
        &sandbox,
        json!({"timeout_seconds": 60, "code": "import os\nimport matplotlib.pyplot as plt\nos.makedirs('/work/outputs')\nplt.bar(['a', 'b'], [1, 2])\nplt.savefig('/work/outputs/bars.svg')"}),
    )
    .await;
    assert!(once.success, "{once:?}");
    assert_eq!(once.images.len(), 1, "{once:?}");
    assert_eq!(once.images[0].mime_type, "image/svg+xml");
    let svg = base64::engine::general_purpose::STANDARD
        .decode(once.images[0].content_base64.as_deref().expect("content"))
        .expect("base64");
    assert!(String::from_utf8_lossy(&svg).contains("<svg"));
}
