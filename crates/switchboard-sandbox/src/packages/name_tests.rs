use super::*;

/// The reason a request is refused, or a panic naming the request that was accepted.
fn refused(package: &str, version: Option<&str>) -> String {
    match parse(package, version) {
        Ok(r) => panic!("{package:?} / {version:?} was accepted as {}", r.spec()),
        Err(reason) => reason,
    }
}

fn version_of(package: &str, version: Option<&str>) -> String {
    match parse(package, version) {
        Ok(r) => r.key().1.unwrap_or("").to_owned(),
        Err(reason) => panic!("{package:?} / {version:?} was refused: {reason}"),
    }
}

#[test]
fn names_are_normalized() {
    for (given, normalized) in [
        ("Friendly-Bard", "friendly-bard"),
        ("friendly__bard", "friendly-bard"),
        ("FRIENDLY._-BARD", "friendly-bard"),
    ] {
        assert_eq!(normalize(given).as_deref(), Ok(normalized));
        let r = parse(given, None).expect("a valid name");
        assert_eq!(r.name, normalized);
    }
    assert!(normalize("").is_err(), "empty");
    assert!(normalize("bad name").is_err());
}

#[test]
fn valid_requests_parse() {
    let r = parse("Demo_Pkg==1.2.3", None).expect("pinned");
    assert_eq!(r.key(), ("demo-pkg", Some("1.2.3")));
    assert_eq!(r.spec(), "demo-pkg==1.2.3");
    assert_eq!(version_of("numpy", Some("2.0.0rc1")), "2.0.0rc1");
    assert_eq!(version_of("x", Some("==1.0")), "1.0", "leading ==");
    assert_eq!(version_of("x", Some(" 1.0 ")), "1.0", "trimmed");
    assert_eq!(
        version_of(" demo-pkg == 1.0 ", None),
        "1.0",
        "PEP 508 spacing"
    );
    assert_eq!(parse("a", None).map(|r| r.spec()), Ok("a".to_owned()));
    assert_eq!(parse("a", Some("")).map(|r| r.spec()), Ok("a".to_owned()));
}

#[test]
fn pre_post_dev_releases_epochs_and_local_versions_are_accepted() {
    // Every spelling PEP 440 allows, shown in its normalised form (what pip is given).
    for (given, normalized) in [
        ("1.0rc1", "1.0rc1"),
        ("1.0RC1", "1.0rc1"),
        ("1.0-rc.1", "1.0rc1"),
        ("1.0c1", "1.0rc1"),
        ("1.0a", "1.0a0"),
        ("1.0-beta", "1.0b0"),
        ("1.0.post1", "1.0.post1"),
        ("1.0-1", "1.0.post1"),
        ("1.0.dev4", "1.0.dev4"),
        ("1.0rc1.post2.dev3", "1.0rc1.post2.dev3"),
        ("2!1.0", "2!1.0"),
        ("v1.0", "1.0"),
        ("1.0+local.7", "1.0+local.7"),
        ("2024.1", "2024.1"),
        ("1", "1"),
    ] {
        assert_eq!(
            version_of("pkg", Some(given)),
            normalized,
            "version {given}"
        );
        let pinned = format!("pkg=={given}");
        assert_eq!(version_of(&pinned, None), normalized, "{pinned}");
    }
    // The case the hand-written grammar got wrong for some spellings of the same version.
    let r = parse("numpy==1.0rc1", None).expect("a pre-release pin");
    assert_eq!(r.spec(), "numpy==1.0rc1");
}

#[test]
fn pins_compare_as_pep440_versions_not_strings() {
    let held = parse("pkg==1.0", None).expect("pinned");
    for same in ["1.0.0", "1", "1.0.0.0", "==1.0.0"] {
        let request = parse("PKG", Some(same)).expect("pinned");
        assert_eq!(held, request, "==1.0 is the same pin as {same}");
    }
    assert_ne!(held, parse("pkg==1.0rc1", None).expect("pre-release"));
    assert_ne!(held, parse("pkg==1.0.post1", None).expect("post-release"));
    assert_ne!(held, parse("pkg==1!1.0", None).expect("epoch"));
    assert_ne!(held, parse("pkg", None).expect("unpinned"));
    assert_eq!(
        parse("pkg==1.0", Some("1.0.0")).map(|r| r.spec()),
        Ok("pkg==1.0".to_owned()),
        "the same version given twice is no conflict"
    );
}

#[test]
fn installed_versions_match_by_pep440_equality() {
    let pin = |v: &str| ExactVersion::parse(v).expect("a version");
    assert!(pin("1.0.0").matches("1.0"));
    assert!(pin("1.0").matches("1.0.0"));
    assert!(pin("1.0rc1").matches("1.0RC1"));
    assert!(pin("1.0").matches("1.0+cpu"), "==1.0 ignores local labels");
    assert!(!pin("1.0+cpu").matches("1.0"), "a local pin is exact");
    assert!(!pin("1.0").matches("1.0rc1"));
    assert!(!pin("1.0").matches("1.0.post1"));
    assert!(!pin("1.0").matches("not a version"));
}

#[test]
fn refusals_name_the_problem() {
    for (package, version, problem) in [
        ("", None, "empty"),
        ("   ", None, "empty"),
        ("numpy[extra]", None, "extras"),
        ("numpy[extra]==1.0", None, "extras"),
        // pep508_rs panics on these unless extras are refused before parsing.
        ("numpy[extra-]", None, "extras"),
        ("numpy [x, y_]==1.0", None, "extras"),
        ("numpy; python_version > '3'", None, "marker"),
        ("numpy==1.0; sys_platform == 'linux'", None, "marker"),
        (
            "pkg @ https://example.invalid/x.whl",
            None,
            "direct reference",
        ),
        ("pkg @ file:///etc/passwd", None, "direct reference"),
        ("https://example.invalid/x.whl", None, "URL or a path"),
        ("../../etc/passwd", None, "URL or a path"),
        ("/tmp/x.whl", None, "URL or a path"),
        ("name>=1.0", None, "not an exact pin"),
        ("name~=1.0", None, "not an exact pin"),
        ("name!=1.0", None, "not an exact pin"),
        ("name==1.*", None, "not an exact pin"),
        ("name===1.0", None, "not an exact pin"),
        ("name==1.0,==1.0", None, "not an exact pin"),
        ("name==1.0,<2", None, "not an exact pin"),
        ("bad name", None, "not a valid requirement"),
        ("-lead", None, "not a valid requirement"),
        ("trail-", None, "not a valid package name"),
        // pep508_rs panics on this one unless the name is checked first.
        ("trail- ==1.0", None, "not a valid package name"),
        ("trail_[x]", None, "not a valid package name"),
        ("trail.;x", None, "not a valid package name"),
        ("ünïcode", None, "not a valid requirement"),
        ("a,b", None, "not a valid requirement"),
        ("name==latest", None, "not a valid requirement"),
        ("pkg", Some("latest"), "not an exact version"),
        ("pkg", Some("1.x"), "not an exact version"),
        ("pkg", Some("1..2"), "not an exact version"),
        ("pkg", Some("1.0+"), "not an exact version"),
        ("pkg", Some("1.*"), "not an exact version"),
        ("pkg", Some(">=1.0"), "a range"),
        ("pkg", Some("~=1.0"), "a range"),
        ("pkg", Some("==>1.0"), "a range"),
        ("pkg==1.0", Some("2.0"), "two different versions"),
        ("pkg==1.0", Some("1.0rc1"), "two different versions"),
    ] {
        let reason = refused(package, version);
        assert!(
            reason.contains(problem),
            "{package:?} / {version:?}: {reason:?} should say {problem:?}"
        );
        assert!(!reason.contains('\n'), "one line: {reason:?}");
    }
}

#[test]
fn overlong_input_is_refused_before_parsing() {
    let long_name = "a".repeat(MAX_NAME + 1);
    assert!(refused(&long_name, None).contains("longer than"));
    let long_input = format!("a=={}", "1.".repeat(MAX_REQUIREMENT));
    assert!(refused(&long_input, None).contains("longer than"));
    let long_version = format!("1.{}", "0.".repeat(MAX_VERSION));
    assert!(refused("a", Some(&long_version)).contains("longer than"));
    assert!(
        refused("a", Some("99999999999999999999999999")).contains("not an exact version"),
        "a number too large for the parser"
    );
}
