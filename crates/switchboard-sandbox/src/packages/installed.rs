//! What is installed: the distributions in the managed directory.

use super::{Installed, Packages, name};

impl Packages {
    /// Distributions in the managed directory, from their `*.dist-info/METADATA`.
    pub(crate) fn installed(&self) -> Vec<Installed> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut found: Vec<Installed> = entries
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".dist-info"))
            .filter_map(|e| {
                let metadata = std::fs::read_to_string(e.path().join("METADATA")).ok()?;
                let field = |key: &str| {
                    metadata
                        .lines()
                        .take_while(|l| !l.is_empty())
                        .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_owned()))
                };
                Some(Installed {
                    // A distribution whose name is not a valid PEP 508 name was not put there
                    // by this service, and no request could name it: left out.
                    name: name::normalize(&field("Name:")?).ok()?,
                    version: field("Version:")?,
                })
            })
            .collect();
        found.sort_by(|a, b| a.name.cmp(&b.name));
        found
    }
}
