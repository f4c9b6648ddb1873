//! Layered configuration.
//!
//! Each setting can come from, in order of precedence: a command-line flag, its environment
//! variable (both handled by clap), a section of an optional TOML file (`--config`), and
//! finally the service's default. A service declares its settings once, as a struct deriving
//! `clap::Args` + `Serialize` + `Deserialize` with every field an `Option`; [`layer`] merges the
//! command line over the file section, and the service's `TryFrom<RawConfig> for Config`
//! validates the result and fills defaults.
//!
//! Every error is one line that names the setting and the accepted form.

use std::path::{Path, PathBuf};

use serde::{Serialize, de::DeserializeOwned};

use crate::Error;

/// A parsed TOML configuration file: one table per service (`[time-client]`, `[mcp-server]`,
/// ...) plus shared tables such as `[http]`.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    path: PathBuf,
    table: toml::Table,
}

impl ConfigFile {
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::Config(format!("config file {}: cannot read: {e}", path.display()))
        })?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self, Error> {
        let table: toml::Table = toml::from_str(text).map_err(|e| {
            Error::Config(format!(
                "config file {}: not valid TOML: {}",
                path.display(),
                e.to_string().replace('\n', " ")
            ))
        })?;
        Ok(Self {
            path: path.to_owned(),
            table,
        })
    }

    /// Fail on a top-level section nobody reads (most likely a typo).
    pub fn check_sections(&self, known: &[&str]) -> Result<(), Error> {
        match self.table.keys().find(|k| !known.contains(&k.as_str())) {
            Some(unknown) => Err(Error::Config(format!(
                "config file {}: unknown section [{unknown}]; expected one of {}",
                self.path.display(),
                known
                    .iter()
                    .map(|k| format!("[{k}]"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
            None => Ok(()),
        }
    }
}

/// Merge the command-line/environment values of `cli` over section `section` of `file`.
///
/// `T` is a settings struct whose fields are `Option`s (absent on the command line = `None`).
/// Unknown keys in the file section are an error (use `#[serde(deny_unknown_fields)]`).
pub fn layer<T>(cli: &T, file: Option<&ConfigFile>, section: &str) -> Result<T, Error>
where
    T: Serialize + DeserializeOwned,
{
    let cli_value = serde_json::to_value(cli)
        .map_err(|e| Error::Config(format!("[{section}]: cannot read settings: {e}")))?;
    let Some(file) = file else {
        return serde_json::from_value(cli_value)
            .map_err(|e| Error::Config(format!("[{section}]: {e}")));
    };
    let mut merged = match file.table.get(section) {
        None => serde_json::Value::Object(Default::default()),
        Some(toml::Value::Table(t)) => serde_json::to_value(t).map_err(|e| {
            Error::Config(format!(
                "config file {}: [{section}]: {e}",
                file.path.display()
            ))
        })?,
        Some(_) => {
            return Err(Error::Config(format!(
                "config file {}: `{section}` must be a table, written [{section}]",
                file.path.display()
            )));
        }
    };
    if let (serde_json::Value::Object(into), serde_json::Value::Object(from)) =
        (&mut merged, cli_value)
    {
        for (key, value) in from {
            if !value.is_null() {
                into.insert(key, value);
            }
        }
    }
    serde_path_to_error::deserialize(merged).map_err(|e| {
        let path = e.path().to_string();
        Error::Config(format!(
            "config file {}: [{section}] {}: {}",
            file.path.display(),
            if path == "." { "" } else { path.as_str() },
            e.inner()
        ))
    })
}

/// A positive, finite number of seconds as a [`std::time::Duration`]; `setting` names it in
/// the error.
pub fn seconds(setting: &str, value: f64) -> Result<std::time::Duration, Error> {
    if value.is_finite() && value > 0.0 && value < 1e9 {
        Ok(std::time::Duration::from_secs_f64(value))
    } else {
        Err(Error::Config(format!(
            "{setting}: '{value}' is not a duration; expected a positive number of seconds, e.g. 2.5"
        )))
    }
}

/// A clap value parser for `HOST:PORT` socket addresses whose error says what is accepted.
pub fn parse_socket_addr(value: &str) -> Result<std::net::SocketAddr, String> {
    value.parse().map_err(|_| {
        format!("'{value}' is not an address; expected IP:PORT, e.g. 127.0.0.1:8003 or [::1]:8003")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Demo {
        listen: Option<std::net::SocketAddr>,
        limit: Option<u32>,
    }

    fn file(text: &str) -> ConfigFile {
        ConfigFile::parse(Path::new("test.toml"), text).expect("valid toml")
    }

    #[test]
    fn command_line_wins_over_file_and_file_fills_gaps() {
        let f = file("[svc]\nlisten = \"127.0.0.1:1\"\nlimit = 7\n");
        let cli = Demo {
            listen: Some("127.0.0.1:2".parse().expect("addr")),
            limit: None,
        };
        let merged = layer(&cli, Some(&f), "svc").expect("merges");
        assert_eq!(merged.listen, cli.listen);
        assert_eq!(merged.limit, Some(7));
    }

    #[test]
    fn file_errors_name_file_section_and_key() {
        let f = file("[svc]\nlimit = \"many\"\n");
        let err = layer(&Demo::default(), Some(&f), "svc").expect_err("bad type");
        let msg = err.to_string();
        assert!(
            msg.contains("test.toml") && msg.contains("[svc]") && msg.contains("limit"),
            "{msg}"
        );
        assert!(!msg.contains('\n'));
        let f = file("[svc]\nlimt = 1\n");
        let msg = layer(&Demo::default(), Some(&f), "svc")
            .expect_err("typo")
            .to_string();
        assert!(msg.contains("unknown field `limt`"), "{msg}");
    }

    #[test]
    fn unknown_sections_are_reported() {
        let f = file("[sbx]\n");
        let msg = f
            .check_sections(&["sandbox"])
            .expect_err("typo")
            .to_string();
        assert!(msg.contains("[sbx]") && msg.contains("[sandbox]"), "{msg}");
    }

    #[test]
    fn durations_must_be_positive() {
        assert!(seconds("x", 0.0).is_err());
        assert!(seconds("x", f64::NAN).is_err());
        assert_eq!(
            seconds("x", 1.5).ok(),
            Some(std::time::Duration::from_millis(1500))
        );
    }
}
