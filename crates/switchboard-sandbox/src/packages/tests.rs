//! Decisions that compare pins: a request matches a held or installed pin by PEP 440 equality.

use super::*;

/// Packages in `dir` (state in `dir.state`), with a python that does not exist: any attempt to
/// run pip fails.
fn packages(dir: &Path) -> Packages {
    let settings = PackageSettings::new(dir.to_owned()).with_suspicious(vec!["held-pkg".into()]);
    let state = settings.state_dir().expect("a default state directory");
    Packages::new(
        Path::new("/nonexistent/python3"),
        &settings,
        None,
        StateDir::open(&state).expect("a state directory"),
        Family::default(),
    )
}

fn request(package: &str, version: Option<&str>) -> InstallRequest {
    InstallRequest {
        package: package.into(),
        version: version.map(str::to_owned),
    }
}

#[tokio::test]
async fn a_held_pin_matches_an_equal_pin_spelled_differently() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let packages = packages(dir.path());
    let held = packages.request(&request("held-pkg==1.0", None)).await;
    assert_eq!(held.status, InstallStatus::PendingApproval, "{held:?}");
    let id = held.approval_id.clone().expect("an approval id");

    // `==1.0.0` is the pin the operator is already asked about, not a second request.
    let again = packages.request(&request("Held_Pkg", Some("1.0.0"))).await;
    assert_eq!(again.status, InstallStatus::PendingApproval, "{again:?}");
    assert_eq!(again.approval_id.as_deref(), Some(id.as_str()));
    assert!(again.message.contains("Already waiting"), "{again:?}");
    assert_eq!(packages.pending_list().len(), 1);

    // A pre-release of the same release is another version, so another request.
    let other = packages.request(&request("held-pkg==1.0rc1", None)).await;
    assert_eq!(other.status, InstallStatus::PendingApproval, "{other:?}");
    assert_ne!(other.approval_id.as_deref(), Some(id.as_str()));
    assert_eq!(other.version.as_deref(), Some("1.0rc1"));
    assert_eq!(packages.pending_list().len(), 2);
}

#[tokio::test]
async fn an_installed_version_satisfies_an_equal_pin() {
    // Installed, as the service's manifest says (a dist-info on disk alone means nothing).
    let dir = tempfile::tempdir().expect("temporary directory");
    let info = dir.path().join("demo_pkg-1.0.dist-info");
    std::fs::create_dir(&info).expect("dist-info directory");
    let metadata = "Metadata-Version: 2.1\nName: Demo_Pkg\nVersion: 1.0\n";
    std::fs::write(info.join("METADATA"), metadata).expect("METADATA");
    let state = PackageSettings::new(dir.path().to_owned())
        .state_dir()
        .expect("a default state directory");
    let manifest = serde_json::json!({"distributions": {"demo-pkg": {
        "version": "1.0",
        "wheel_sha256": null,
        "files": {"demo_pkg-1.0.dist-info/METADATA": {
            "sha256": switchboard_runtime::hex(&<sha2::Sha256 as sha2::Digest>::digest(metadata)),
            "size": metadata.len(),
            "executable": false,
        }},
    }}});
    StateDir::open(&state)
        .expect("a state directory")
        .write(store::MANIFEST_FILE, manifest.to_string().as_bytes())
        .expect("manifest written");
    let packages = packages(dir.path());

    let outcome = packages.request(&request("demo-pkg==1.0.0", None)).await;
    assert_eq!(outcome.status, InstallStatus::Installed, "{outcome:?}");
    assert_eq!(outcome.installed, ["demo-pkg==1.0"]);
    assert!(outcome.message.contains("already installed"), "{outcome:?}");

    // 1.0.post1 is not 1.0: pip is run for it (and fails here, having no python).
    let newer = packages
        .request(&request("demo-pkg", Some("1.0.post1")))
        .await;
    assert_eq!(newer.status, InstallStatus::Failed, "{newer:?}");
}
