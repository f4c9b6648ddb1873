//! Package names (PEP 508, normalized per PEP 503) and exact version pins (PEP 440).
//!
//! Only `name` or `name==version` is accepted: no ranges, extras, markers, URLs or paths, so
//! that what is installed is exactly what was decided on. Hand-written because the rules are
//! short and a parser crate for all of PEP 508 would accept far more than we want to.

/// A validated request: normalized name and an optional exact version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Requirement {
    pub name: String,
    pub version: Option<String>,
}

impl Requirement {
    /// `name==version` or `name`, as pip takes it.
    pub(crate) fn spec(&self) -> String {
        match &self.version {
            Some(v) => format!("{}=={v}", self.name),
            None => self.name.clone(),
        }
    }
}

/// Longest name accepted (the index allows far fewer in practice).
const MAX_NAME: usize = 100;
const MAX_VERSION: usize = 64;

/// PEP 503 normalization: lowercase, runs of `-`, `_`, `.` become one `-`.
pub(crate) fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut separator = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            separator = true;
        } else {
            if separator && !out.is_empty() {
                out.push('-');
            }
            separator = false;
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// PEP 508 name: ASCII letters and digits, with `.`, `_`, `-` inside.
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the package name is empty".into());
    }
    if name.len() > MAX_NAME {
        return Err(format!(
            "the package name is longer than {MAX_NAME} characters"
        ));
    }
    let bytes = name.as_bytes();
    let alnum = |b: &u8| b.is_ascii_alphanumeric();
    if !bytes.first().is_some_and(alnum) || !bytes.last().is_some_and(alnum) {
        return Err(format!(
            "'{name}' is not a valid package name: it must start and end with a letter or digit"
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "'{name}' is not a valid package name: '{}' is not allowed (letters, digits, '.', '_' and '-' only)",
            bad.escape_default()
        ));
    }
    Ok(())
}

/// A PEP 440 version without ranges: `[N!]N(.N)*[{a|b|rc}N][.postN][.devN][+local]`,
/// lowercased.
pub(crate) fn check_version(version: &str) -> Result<String, String> {
    let v = version.trim().to_ascii_lowercase();
    let fail = || {
        Err(format!(
            "'{version}' is not an exact version; expected a PEP 440 version such as 1.2.3, 2.0rc1 or 1.0.post2"
        ))
    };
    if v.is_empty() || v.len() > MAX_VERSION {
        return fail();
    }
    let (public, local) = match v.split_once('+') {
        Some((p, l)) => (p, Some(l)),
        None => (v.as_str(), None),
    };
    if let Some(local) = local
        && (local.is_empty()
            || !local
                .split('.')
                .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric())))
    {
        return fail();
    }
    let mut rest = public;
    if let Some((epoch, after)) = rest.split_once('!') {
        if !digits(epoch) {
            return fail();
        }
        rest = after;
    }
    // Release: N(.N)*
    let release_end = rest
        .char_indices()
        .find(|&(_, c)| !(c.is_ascii_digit() || c == '.'))
        .map_or(rest.len(), |(i, _)| i);
    let (release, mut suffix) = rest.split_at(release_end);
    // In `1.0.post1` the dot before `post` belongs to the suffix.
    let release = match release.strip_suffix('.') {
        Some(r) if suffix.starts_with("post") || suffix.starts_with("dev") => r,
        _ => release,
    };
    if !release.split('.').all(digits) {
        return fail();
    }
    if let Some(label) = ["rc", "a", "b"].into_iter().find(|l| suffix.starts_with(l)) {
        let after = &suffix[label.len()..];
        let end = after
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(after.len());
        if !digits(&after[..end]) {
            return fail();
        }
        suffix = &after[end..];
    }
    for label in ["post", "dev"] {
        let tail = suffix.strip_prefix('.').unwrap_or(suffix);
        if let Some(after) = tail.strip_prefix(label) {
            let end = after
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(after.len());
            if !digits(&after[..end]) {
                return fail();
            }
            suffix = &after[end..];
        }
    }
    if !suffix.is_empty() {
        return fail();
    }
    Ok(v)
}

fn digits(s: &str) -> bool {
    !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit())
}

/// Parse the `package` and `version` of an install request.
pub(crate) fn parse(package: &str, version: Option<&str>) -> Result<Requirement, String> {
    let package = package.trim();
    let (name, pinned) = match package.split_once("==") {
        Some((name, pin)) => (name.trim(), Some(pin.trim())),
        None => (package, None),
    };
    if name.contains([
        '<', '>', '=', '!', '~', ';', '[', '@', ' ', ',', '/', '\\', ':',
    ]) {
        return Err(format!(
            "'{package}' is not accepted: only a package name, optionally pinned exactly as name==1.2.3 (no ranges, extras, markers, URLs or paths)"
        ));
    }
    check_name(name)?;
    let version = match (pinned, version.map(str::trim).filter(|v| !v.is_empty())) {
        (Some(a), Some(b)) if a != b => {
            return Err(format!(
                "two different versions given: '{a}' in the name and '{b}' in `version`"
            ));
        }
        (Some(v), _) | (None, Some(v)) => {
            let v = v.strip_prefix("==").unwrap_or(v);
            Some(check_version(v)?)
        }
        (None, None) => None,
    };
    Ok(Requirement {
        name: normalize(name),
        version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalized() {
        assert_eq!(normalize("Friendly-Bard"), "friendly-bard");
        assert_eq!(normalize("friendly__bard"), "friendly-bard");
        assert_eq!(normalize("FRIENDLY._-BARD"), "friendly-bard");
    }

    #[test]
    fn valid_requests_parse() {
        let r = parse("Demo_Pkg==1.2.3", None).expect("pinned");
        assert_eq!(r.name, "demo-pkg");
        assert_eq!(r.version.as_deref(), Some("1.2.3"));
        assert_eq!(r.spec(), "demo-pkg==1.2.3");
        assert_eq!(
            parse("numpy", Some("2.0.0rc1"))
                .expect("separate")
                .version
                .as_deref(),
            Some("2.0.0rc1")
        );
        assert_eq!(
            parse("x", Some("==1.0"))
                .expect("leading ==")
                .version
                .as_deref(),
            Some("1.0")
        );
        assert!(parse("a", None).is_ok());
    }

    #[test]
    fn malformed_names_and_pins_are_rejected() {
        for bad in [
            "",
            "-lead",
            "trail-",
            "bad name",
            "name>=1.0",
            "name[extra]",
            "name; python_version>'3'",
            "pkg @ https://example.invalid/x.whl",
            "../etc",
            "name~=1.0",
            "ünïcode",
            "a,b",
        ] {
            assert!(parse(bad, None).is_err(), "{bad:?} must be rejected");
        }
        for bad in [
            "", "latest", "1.x", ">=1.0", "1..2", "1.0-beta", "v1.0", "1.0+", "1.0 ", "1.0a",
        ] {
            if bad == "1.0 " {
                continue; // trimmed: fine
            }
            assert!(
                parse("pkg", Some(bad)).is_err() || bad.is_empty(),
                "{bad:?} must be rejected"
            );
        }
        assert!(
            parse("pkg==1.0", Some("2.0")).is_err(),
            "conflicting versions"
        );
    }

    #[test]
    fn pep440_forms() {
        for good in [
            "1",
            "1.2.3",
            "2!1.0",
            "1.0a1",
            "1.0b2",
            "1.0rc3",
            "1.0.post1",
            "1.0.dev4",
            "1.0rc1.post2.dev3",
            "1.0+local.7",
            "2024.1",
        ] {
            assert!(check_version(good).is_ok(), "{good}");
        }
    }
}
