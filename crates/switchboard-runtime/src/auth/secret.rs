//! Secret settings (tokens, keys): given as `env:NAME`, `file:PATH` (a Kubernetes Secret mount)
//! or the value itself, and never printed.

use std::sync::Arc;

use crate::Error;

/// A secret value. `Debug` shows `Secret(***)`, so a settings struct that holds one can still
/// derive it without the value reaching logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Arc<str>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl Secret {
    pub fn new(value: impl Into<Arc<str>>) -> Self {
        Self(value.into())
    }

    /// `source` read now: `env:NAME` is that environment variable, `file:PATH` that file's
    /// text without its final newline, anything else the value itself. Errors name `setting`
    /// and never hold the value.
    pub fn resolve(setting: &str, source: &str) -> Result<Self, Error> {
        let value = if let Some(name) = source.strip_prefix("env:") {
            std::env::var(name).map_err(|_| {
                Error::Config(format!("{setting}: environment variable {name} is not set"))
            })?
        } else if let Some(path) = source.strip_prefix("file:") {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Error::Config(format!("{setting}: cannot read {path}: {e}")))?;
            text.strip_suffix('\n')
                .unwrap_or(&text)
                .trim_end_matches('\r')
                .to_owned()
        } else {
            source.to_owned()
        };
        if value.is_empty() {
            return Err(Error::Config(format!("{setting}: the value is empty")));
        }
        Ok(Self(value.into()))
    }

    /// The value itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `Authorization: Bearer <secret>`, marked sensitive (hidden from `Debug` and HPACK).
    pub fn bearer_header(&self) -> Result<http::HeaderValue, Error> {
        let mut value = http::HeaderValue::from_str(&format!("Bearer {}", self.0))
            .map_err(|_| Error::Config("a token has characters not allowed in a header".into()))?;
        value.set_sensitive(true);
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_come_from_files_variables_or_themselves_and_stay_out_of_debug() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("token");
        std::fs::write(&path, "from-a-file\n").expect("write");
        let from_file = Secret::resolve("t", &format!("file:{}", path.display())).expect("file");
        assert_eq!(from_file.expose(), "from-a-file");
        assert_eq!(
            Secret::resolve("t", "env:PATH").expect("env").expose(),
            std::env::var("PATH").expect("PATH")
        );
        assert_eq!(
            Secret::resolve("t", "plain").expect("plain").expose(),
            "plain"
        );
        assert_eq!(format!("{from_file:?}"), "Secret(***)");
        let err = Secret::resolve("sandbox_token", "env:SWITCHBOARD_NO_SUCH_VARIABLE")
            .expect_err("unset");
        assert!(err.to_string().starts_with("sandbox_token: "), "{err}");
        assert!(Secret::resolve("t", "").is_err());
        assert!(Secret::resolve("t", "file:/nonexistent/token").is_err());
    }
}
