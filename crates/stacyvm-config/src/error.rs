//! Configuration errors. Every error names the file or the key it is about.

use std::fmt;
use std::path::PathBuf;

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// An explicitly requested config file does not exist.
    #[error("config file {}: not found", path.display())]
    NotFound {
        /// The requested path.
        path: PathBuf,
    },
    /// The config file exists but could not be read.
    #[error("config file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The config file is not valid YAML (or its top level is not a mapping).
    #[error("{}", YamlDisplay(self))]
    Yaml {
        /// The file, when the text came from one.
        file: Option<PathBuf>,
        /// 1-based line of the error, when known.
        line: Option<usize>,
        /// 1-based column of the error, when known.
        column: Option<usize>,
        /// The parser's message.
        message: String,
    },
    /// A key has a value of the wrong type or one that fails validation.
    #[error("config key {key}: {message}")]
    Invalid {
        /// Dotted key path, e.g. `defaults.ttl`.
        key: String,
        /// What is wrong (mentions the environment variable when the value came from one).
        message: String,
    },
}

impl ConfigError {
    /// Shorthand for [`ConfigError::Invalid`].
    pub fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid { key: key.into(), message: message.into() }
    }

    /// The key this error is about, for [`ConfigError::Invalid`].
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { key, .. } => Some(key),
            _ => None,
        }
    }

    pub(crate) fn yaml(file: Option<PathBuf>, err: &serde_yaml::Error) -> Self {
        let location = err.location();
        ConfigError::Yaml {
            file,
            line: location.as_ref().map(|l| l.line()),
            column: location.as_ref().map(|l| l.column()),
            message: err.to_string(),
        }
    }
}

struct YamlDisplay<'a>(&'a ConfigError);

impl fmt::Display for YamlDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ConfigError::Yaml { file, line, column, message } = self.0 else {
            return Ok(());
        };
        let name = file.as_ref().map_or_else(|| "<config>".to_string(), |p| p.display().to_string());
        write!(f, "config file {name}")?;
        if let Some(line) = line {
            write!(f, ":{line}")?;
            if let Some(column) = column {
                write!(f, ":{column}")?;
            }
        }
        write!(f, ": invalid YAML: {message}")
    }
}
