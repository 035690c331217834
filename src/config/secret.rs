//! Secrets given inline (in the file or an `IDRECON__…` variable) or as a
//! `*_file` path. A file's content minus its trailing newline is the secret;
//! errors name the key and the path, never the content.

use secrecy::{ExposeSecret, SecretString};
use std::path::Path;

/// Why a secret file cannot be used (the caller adds the key).
#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    #[error("cannot read secret file {path}: {source}")]
    Unreadable {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("secret file {path} is empty")]
    Empty { path: String },
}

/// Reads the secret in `path`.
pub fn read_secret_file(path: &Path) -> Result<SecretString, SecretFileError> {
    let content = std::fs::read_to_string(path).map_err(|source| SecretFileError::Unreadable {
        path: path.display().to_string(),
        source,
    })?;
    let value = content.trim_end_matches(['\n', '\r']);
    if value.is_empty() {
        return Err(SecretFileError::Empty {
            path: path.display().to_string(),
        });
    }
    Ok(SecretString::from(value.to_string()))
}

/// An inline secret; an empty one counts as not set.
pub fn non_empty(secret: Option<SecretString>) -> Option<SecretString> {
    secret.filter(|s| !s.expose_secret().is_empty())
}
