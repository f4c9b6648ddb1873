//! Which packages may be installed: refused (blocklist), held for an operator (suspicious),
//! or allowed.
//!
//! Besides the configured lists, a name one edit away from a widely used package
//! (`reqeusts`, `numpyy`) is held: typosquatting is how most malicious packages reach people,
//! and an operator can approve a genuine near-namesake in one call.

use std::collections::BTreeMap;

use super::name::normalize;

/// What the policy says about one name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    Allow,
    Block(String),
    Hold(String),
}

/// Names refused unless the operator configures another list: packages published to steal
/// credentials or keys and later removed from the index, kept so the names cannot be
/// re-registered and installed.
const BUILT_IN_BLOCKED: &[(&str, &str)] = &[
    (
        "jeilyfish",
        "a known malicious typosquat of jellyfish (stole SSH and GPG keys)",
    ),
    (
        "python3-dateutil",
        "a known malicious typosquat of python-dateutil (stole SSH and GPG keys)",
    ),
    (
        "colourama",
        "a known malicious typosquat of colorama (hijacked cryptocurrency addresses)",
    ),
    ("acqusition", "a known malicious typosquat of acquisition"),
    ("urlib3", "a known malicious typosquat of urllib3"),
    (
        "urllib",
        "a known malicious package named after the standard library's urllib",
    ),
    ("setup-tools", "a known malicious typosquat of setuptools"),
    (
        "bzip",
        "a known malicious package named after the standard library's bz2",
    ),
    (
        "crypt",
        "a known malicious package named after the standard library's crypt",
    ),
    (
        "telnet",
        "a known malicious package named after the standard library's telnetlib",
    ),
    (
        "noblesse",
        "a known malicious package (stole credit card data and Discord tokens)",
    ),
    (
        "noblesse2",
        "a known malicious package (stole credit card data and Discord tokens)",
    ),
    (
        "noblessev2",
        "a known malicious package (stole credit card data and Discord tokens)",
    ),
    (
        "genesisbot",
        "a known malicious package (stole credit card data and Discord tokens)",
    ),
    (
        "pytagora",
        "a known malicious package (remote code execution)",
    ),
    (
        "pytagora2",
        "a known malicious package (remote code execution)",
    ),
];

/// Widely used packages whose near-misses are held as likely typosquats.
const POPULAR: &[&str] = &[
    "numpy",
    "pandas",
    "requests",
    "scipy",
    "matplotlib",
    "scikit-learn",
    "sympy",
    "pillow",
    "beautifulsoup4",
    "pyyaml",
    "jinja2",
    "flask",
    "django",
    "urllib3",
    "certifi",
    "charset-normalizer",
    "python-dateutil",
    "attrs",
    "setuptools",
    "cryptography",
    "colorama",
    "jellyfish",
    "networkx",
    "seaborn",
    "statsmodels",
    "openpyxl",
    "tabulate",
    "regex",
    "pydantic",
    "aiohttp",
    "boto3",
    "torch",
    "tensorflow",
    "keras",
    "simplejson",
    "orjson",
    "click",
    "pytest",
    "httpx",
    "plotly",
    "polars",
    "pyarrow",
    "opencv-python",
    "lxml",
];

#[derive(Debug, Clone)]
pub(crate) struct Policy {
    blocked: BTreeMap<String, String>,
    suspicious: BTreeMap<String, String>,
}

/// Parse `name` or `name: reason` entries into normalized names with reasons. An entry whose
/// name is not a valid package name could never match a request (requests are validated
/// first), so it is left out with a warning rather than kept as a rule that does nothing.
fn entries(list: &[String], default_reason: &str) -> BTreeMap<String, String> {
    list.iter()
        .filter_map(|entry| {
            let (name, reason) = match entry.split_once(':') {
                Some((n, r)) if !r.trim().is_empty() => (n.trim(), r.trim().to_owned()),
                Some((n, _)) => (n.trim(), default_reason.to_owned()),
                None => (entry.trim(), default_reason.to_owned()),
            };
            if name.is_empty() {
                return None;
            }
            match normalize(name) {
                Ok(name) => Some((name, reason)),
                Err(error) => {
                    tracing::warn!(entry = %entry, %error, "ignored a package policy entry");
                    None
                }
            }
        })
        .collect()
}

impl Policy {
    /// `blocked: None` uses the built-in list.
    pub(crate) fn new(blocked: Option<&[String]>, suspicious: &[String]) -> Self {
        let blocked = match blocked {
            Some(list) => entries(list, "on the operator's blocklist"),
            None => BUILT_IN_BLOCKED
                .iter()
                .map(|(n, r)| ((*n).to_owned(), (*r).to_owned()))
                .collect(),
        };
        Self {
            blocked,
            suspicious: entries(
                suspicious,
                "on the operator's list of packages that need approval",
            ),
        }
    }

    /// The verdict for a normalized name.
    pub(crate) fn check(&self, name: &str) -> Verdict {
        if let Some(reason) = self.blocked.get(name) {
            return Verdict::Block(reason.clone());
        }
        if let Some(reason) = self.suspicious.get(name) {
            return Verdict::Hold(reason.clone());
        }
        if let Some(popular) = POPULAR
            .iter()
            .find(|p| p.len() >= 5 && **p != name && one_edit_apart(p, name))
        {
            return Verdict::Hold(format!(
                "'{name}' is one letter away from the popular package '{popular}' and may be a typosquat"
            ));
        }
        Verdict::Allow
    }

    pub(crate) fn blocked_count(&self) -> usize {
        self.blocked.len()
    }

    pub(crate) fn suspicious_count(&self) -> usize {
        self.suspicious.len()
    }
}

/// Whether `a` becomes `b` by one insertion, deletion, substitution or swap of neighbours.
fn one_edit_apart(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len().abs_diff(b.len()) > 1 {
        return false;
    }
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let (ra, rb) = (&a[prefix..], &b[prefix..]);
    match (ra.len(), rb.len()) {
        (0, 0) => false,
        (x, y) if x == y => {
            ra[1..] == rb[1..] // substitution
                || (x >= 2 && ra[0] == rb[1] && ra[1] == rb[0] && ra[2..] == rb[2..]) // swap
        }
        (x, y) if x > y => ra[1..] == *rb,
        _ => rb[1..] == *ra,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_blocklist_and_typosquats() {
        let policy = Policy::new(None, &[]);
        assert!(matches!(policy.check("colourama"), Verdict::Block(_)));
        assert!(matches!(policy.check("reqeusts"), Verdict::Hold(_)), "swap");
        assert!(
            matches!(policy.check("numpyy"), Verdict::Hold(_)),
            "insertion"
        );
        assert!(
            matches!(policy.check("pandsa"), Verdict::Hold(_)),
            "swap at end"
        );
        assert_eq!(policy.check("requests"), Verdict::Allow);
        assert_eq!(policy.check("demo-pkg"), Verdict::Allow);
        assert_eq!(
            policy.check("numba"),
            Verdict::Allow,
            "two edits from numpy"
        );
    }

    #[test]
    fn configured_lists_replace_and_add() {
        let policy = Policy::new(
            Some(&["Evil_Pkg: steals tokens".to_owned(), "plain".to_owned()]),
            &["needs-review".to_owned()],
        );
        assert_eq!(
            policy.check("evil-pkg"),
            Verdict::Block("steals tokens".into())
        );
        assert!(matches!(policy.check("plain"), Verdict::Block(r) if r.contains("blocklist")));
        assert!(matches!(policy.check("needs-review"), Verdict::Hold(_)));
        assert_eq!(
            policy.check("noblesse"),
            Verdict::Allow,
            "the built-in list was replaced"
        );
    }

    #[test]
    fn entries_that_are_not_package_names_are_ignored() {
        let policy = Policy::new(
            Some(&["Good.Name".to_owned(), "not a name: why".to_owned()]),
            &[],
        );
        assert_eq!(policy.blocked_count(), 1);
        assert!(matches!(policy.check("good-name"), Verdict::Block(_)));
    }

    #[test]
    fn edit_distance_one() {
        assert!(one_edit_apart("numpy", "nunpy"));
        assert!(one_edit_apart("numpy", "numy"));
        assert!(one_edit_apart("numpy", "nmupy"));
        assert!(!one_edit_apart("numpy", "numpy"));
        assert!(!one_edit_apart("numpy", "scipy"));
    }
}
