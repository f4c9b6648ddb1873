//! Package requirements: names (PEP 508, normalised per PEP 503) and exact pins (PEP 440).
//!
//! Parsing and comparison come from `pep508_rs` (and the `pep440_rs` it re-exports), so every
//! PEP 440 spelling is accepted here (`1.0rc1`, `1.0-rc.1`, `1.0.post2`, `2!1.0`, `1.0+local`) and pins compare as PEP 440 versions (`1.0 == 1.0.0`). On top of the grammar,
//! the policy is narrower than PEP 508 on purpose: only `name` or `name==version` is
//! accepted — no ranges, extras, markers, URLs or paths — so that what is installed is exactly
//! what was decided on.

use std::{convert::Infallible, fmt, path::Path, str::FromStr};

use pep508_rs::{
    PackageName, Pep508ErrorSource, Pep508Url, VersionOrUrl,
    pep440_rs::{Operator, Version, VersionSpecifier},
};

/// Longest name accepted (the index allows far fewer in practice).
const MAX_NAME: usize = 100;
/// Longest version accepted, as given and as normalised.
const MAX_VERSION: usize = 64;
/// Longest `package` field handed to the parser (a name, a pin and some spaces fit easily).
const MAX_REQUIREMENT: usize = 256;

const ONLY_PINS: &str =
    "only a package name, optionally pinned exactly as name==1.2.3, is accepted";
const EXPECTED_VERSION: &str =
    "expected a PEP 440 version such as 1.2.3, 2.0rc1, 1.0.post2 or 1!2.0";

/// A validated request: normalised name and an optional exact version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Requirement {
    pub name: String,
    pub version: Option<ExactVersion>,
}

impl Requirement {
    /// `name==version` or `name`, as pip takes it.
    pub(crate) fn spec(&self) -> String {
        match &self.version {
            Some(v) => format!("{}=={v}", self.name),
            None => self.name.clone(),
        }
    }

    /// Name and version as shown in outcomes and audit events.
    pub(crate) fn key(&self) -> (&str, Option<&str>) {
        (&self.name, self.version.as_ref().map(ExactVersion::as_str))
    }
}

/// A PEP 440 version that a request is pinned to. Equal when the versions are equal under
/// PEP 440 (`1.0` and `1.0.0`, `1.0RC1` and `1.0rc1`), whatever their spelling.
#[derive(Debug, Clone)]
pub(crate) struct ExactVersion {
    /// The normalised spelling, kept so it can be lent as `&str` to outcomes and audit events.
    text: String,
    version: Version,
}

impl ExactVersion {
    fn new(version: Version) -> Result<Self, String> {
        let text = version.to_string();
        if text.len() > MAX_VERSION {
            return Err(format!(
                "the version is longer than {MAX_VERSION} characters"
            ));
        }
        Ok(Self { text, version })
    }

    /// A version as given in a request's `version` field: `1.2.3` or `==1.2.3`.
    pub(crate) fn parse(given: &str) -> Result<Self, String> {
        let trimmed = given.trim();
        let bare = trimmed.strip_prefix("==").unwrap_or(trimmed).trim();
        if bare.starts_with(['<', '>', '=', '!', '~']) {
            return Err(format!(
                "'{given}' is a range or comparison, not an exact version; {EXPECTED_VERSION}"
            ));
        }
        if bare.len() > MAX_VERSION {
            return Err(format!(
                "the version is longer than {MAX_VERSION} characters"
            ));
        }
        let version = Version::from_str(bare)
            .map_err(|e| format!("'{given}' is not an exact version ({e}); {EXPECTED_VERSION}"))?;
        Self::new(version)
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether an installed version is what `==self` asks for, by PEP 440's rules for `==`:
    /// `1.0` satisfies `==1.0.0`, and a local label (`+cpu`) is ignored unless the pin has one.
    /// A version that does not parse matches nothing (pip would then install the pin).
    pub(crate) fn matches(&self, installed: &str) -> bool {
        Version::from_str(installed.trim()).is_ok_and(|installed| {
            VersionSpecifier::equals_version(self.version.clone()).contains(&installed)
        })
    }
}

impl PartialEq for ExactVersion {
    fn eq(&self, other: &Self) -> bool {
        self.version == other.version
    }
}

impl Eq for ExactVersion {}

impl fmt::Display for ExactVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Stands for the URL or path after `name @`, which is dropped unparsed: every direct reference
/// is refused, so there is no reason to parse one (pep508_rs's own URL type would also expand
/// `${VARIABLES}` from the service's environment and resolve relative paths).
#[derive(Debug)]
struct DirectReference;

impl fmt::Display for DirectReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<direct reference>")
    }
}

impl Pep508Url for DirectReference {
    type Err = Infallible;

    fn parse_url(_url: &str, _working_dir: Option<&Path>) -> Result<Self, Self::Err> {
        Ok(Self)
    }
}

/// PEP 503 normalisation of a PEP 508 name: lowercase, runs of `-`, `_`, `.` become one `-`.
pub(crate) fn normalize(name: &str) -> Result<String, String> {
    let name = name.trim();
    // pep508_rs takes an empty string as a (normalised) name.
    if name.is_empty() {
        return Err("the package name is empty".into());
    }
    if name.len() > MAX_NAME {
        return Err(format!(
            "the package name is longer than {MAX_NAME} characters"
        ));
    }
    PackageName::from_str(name)
        .map(|n| n.to_string())
        .map_err(|_| {
            format!(
                "'{name}' is not a valid package name: it must start and end with a letter or digit and contain only letters, digits, '.', '_' and '-'"
            )
        })
}

/// Parse the `package` (`name` or `name==version`) and `version` of an install request.
pub(crate) fn parse(package: &str, version: Option<&str>) -> Result<Requirement, String> {
    let package = package.trim();
    if package.is_empty() {
        return Err("the package name is empty".into());
    }
    if package.len() > MAX_REQUIREMENT {
        return Err(format!(
            "the package is longer than {MAX_REQUIREMENT} characters"
        ));
    }
    // pep508_rs 0.9.2 panics (an `expect`) when a name or an extra ending in '.', '_' or '-' is
    // followed by anything (`trail- ==1.0`, `numpy[extra-]`), so a name at the start is
    // validated here first, and extras, refused anyway, are refused before they are parsed.
    let name_end = package
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        .unwrap_or(package.len());
    if package.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        normalize(&package[..name_end])?;
    }
    if package[name_end..].trim_start().starts_with('[') {
        return Err(extras_refused(package));
    }
    let parsed = pep508_rs::Requirement::<DirectReference>::from_str(package).map_err(|e| {
        match e.message {
            // A bare URL or path (`https://…/x.whl`, `../x`): pep508_rs suggests putting a
            // name before it, but `name @ url` is refused too, so say that instead.
            Pep508ErrorSource::UnsupportedRequirement(_) => {
                format!("'{package}' is a URL or a path; {ONLY_PINS} (no URLs or paths)")
            }
            // The message without pep508_rs's multi-line underline, which does not read well
            // in a JSON reason; the position says where instead.
            message => format!(
                "'{package}' is not a valid requirement: {message} (at character {}); {ONLY_PINS}",
                e.start + 1
            ),
        }
    })?;
    if !parsed.extras.is_empty() {
        return Err(extras_refused(package));
    }
    // A marker that always holds changes nothing; any other would make the request mean
    // different things in different environments.
    if !parsed.marker.is_true() {
        return Err(format!(
            "'{package}' has an environment marker; {ONLY_PINS} (no markers)"
        ));
    }
    let pinned = match &parsed.version_or_url {
        None => None,
        Some(VersionOrUrl::Url(_)) => {
            return Err(format!(
                "'{package}' is a direct reference (name @ URL or path); {ONLY_PINS} (no URLs or paths)"
            ));
        }
        Some(VersionOrUrl::VersionSpecifier(specifiers)) => match &**specifiers {
            [only] if *only.operator() == Operator::Equal => {
                Some(ExactVersion::new(only.version().clone())?)
            }
            _ => {
                return Err(format!(
                    "'{package}' is not an exact pin; {ONLY_PINS} (no ranges such as >=, ~=, != or ==1.*, no ===)"
                ));
            }
        },
    };
    let name = normalize(parsed.name.as_ref())?;
    let given = version
        .filter(|v| !v.trim().is_empty())
        .map(ExactVersion::parse)
        .transpose()?;
    let version = match (pinned, given) {
        (Some(a), Some(b)) if a != b => {
            return Err(format!(
                "two different versions given: '{a}' in the name and '{b}' in `version`"
            ));
        }
        (Some(v), _) | (None, Some(v)) => Some(v),
        (None, None) => None,
    };
    Ok(Requirement { name, version })
}

fn extras_refused(package: &str) -> String {
    format!(
        "'{package}' asks for extras; {ONLY_PINS} (no extras: request the packages an extra would add by name)"
    )
}

#[cfg(test)]
#[path = "name_tests.rs"]
mod tests;
