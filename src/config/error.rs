//! Why a configuration could not be loaded. Every variant maps to exit code 3
//! (see `crate::error`).

use std::path::PathBuf;

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value is missing, has the wrong type or fails validation.
    /// `key` is `section.key` (or the environment variable's name for a
    /// malformed or unknown `IDRECON__…` variable).
    #[error("{key}: {message}")]
    Invalid { key: String, message: String },
    /// The config file does not exist and no `IDRECON__…` variables are set.
    #[error(
        "config file {} not found (give --config PATH, set IDRECON_CONFIG, \
         or configure through IDRECON__SECTION__KEY environment variables)",
        path.display()
    )]
    NotFound { path: PathBuf },
    /// The config file exists but could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML. `line` and `column` are 1-based.
    #[error("{origin}:{line}:{column}: invalid TOML: {message}")]
    Parse {
        /// The file path, or `<config>` for text given directly.
        origin: String,
        line: usize,
        column: usize,
        message: String,
    },
}

impl ConfigError {
    /// A validation error for `key` (`section.key`).
    pub fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.into(),
            message: message.into(),
        }
    }

    /// The `section.key` (or environment variable) an [`ConfigError::Invalid`]
    /// error is about.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { key, .. } => Some(key),
            _ => None,
        }
    }
}
