//! Packages named in `preinstall` are installed at start through the package API's checks
//! (so they are in the verified store's manifest), and `/ready` waits for them.

mod common;

use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preinstalled_packages_are_there_when_ready() {
    let wheels = common::shared_tempdir();
    common::wheels::build(
        wheels.path(),
        "chartkit",
        "1.0.0",
        "NAME = 'chartkit'\n",
        &[],
    );
    common::wheels::build(wheels.path(), "colourama", "1.0.0", "", &[]);
    let dir = wheels.path().to_owned();
    let sandbox = common::start_with(move |mut config, _| {
        let mut packages = config.packages.clone().with_wheel_dir(dir, true);
        // A blocked name is refused like any request: preinstalling is not a way around it.
        packages.preinstall = vec!["chartkit==1.0.0".into(), "colourama==1.0.0".into()];
        config.packages = packages;
        config
    })
    .await;
    let ready = sandbox.get("/ready").await;
    let done: &Value = &ready["dependencies"]["preinstall"];
    assert_eq!(done["ready"], true, "{ready}");
    assert_eq!(done["detail"][0]["status"], "installed", "{ready}");
    assert_eq!(done["detail"][1]["status"], "rejected", "{ready}");
    let ran = sandbox.run("import chartkit\nprint(chartkit.NAME)").await;
    assert_eq!(ran.stdout, "chartkit\n", "{ran:?}");
}
