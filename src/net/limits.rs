//! Caps on what a service may hand idrecon: the size of one response body,
//! measured after decompression (so a gzip bomb trips it after a few
//! megabytes, not a gigabyte), and the length of one user field.
//!
//! Defaults are [`DEFAULT_MAX_BODY_BYTES`] and [`DEFAULT_MAX_FIELD_CHARS`];
//! `[limits]` in the configuration changes them (docs/deployment.md).

use crate::net::origin::error_path;
use crate::sources::{SourceError, SourceErrorKind, System};
use reqwest::Response;

/// Largest response body read, after decompression: 64 MiB (a Graph page of
/// 999 users is about 1 MiB).
pub const DEFAULT_MAX_BODY_BYTES: u64 = 64 * 1024 * 1024;
/// Longest text field of a user accepted (UPN, name, mail, IDs).
pub const DEFAULT_MAX_FIELD_CHARS: usize = 1024;

/// The caps in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `limits.max_body_bytes`.
    pub max_body_bytes: u64,
    /// `limits.max_field_chars`.
    pub max_field_chars: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_field_chars: DEFAULT_MAX_FIELD_CHARS,
        }
    }
}

/// Why a body could not be read whole.
#[derive(Debug)]
pub enum BodyError {
    /// The body grew past the limit: the error names host and limit.
    TooLarge(SourceError),
    /// The connection failed while reading.
    Transport(reqwest::Error),
}

impl Limits {
    /// `[limits]` of the configuration.
    pub fn from_config(cfg: &crate::config::LimitsConfig) -> Limits {
        Limits {
            max_body_bytes: cfg.max_body_bytes,
            max_field_chars: usize::try_from(cfg.max_field_chars).unwrap_or(usize::MAX),
        }
    }

    /// Reads `response`'s body chunk by chunk (decompressed by reqwest),
    /// stopping as soon as it exceeds `max_body_bytes`.
    pub async fn read_body(
        &self,
        system: System,
        mut response: Response,
    ) -> Result<Vec<u8>, BodyError> {
        let url = response.url().clone();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(BodyError::Transport)? {
            if (body.len() as u64).saturating_add(chunk.len() as u64) > self.max_body_bytes {
                let mut e = SourceError::new(
                    system,
                    SourceErrorKind::InvalidPayload,
                    format!(
                        "the answer from {} is larger than limits.max_body_bytes ({} bytes, counted after decompression); \
                         raise the limit only if the service really sends pages that large",
                        url.host_str().unwrap_or("?"),
                        self.max_body_bytes
                    ),
                );
                e.path = Some(error_path(&url));
                return Err(BodyError::TooLarge(e));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// Refuses a user field longer than `max_field_chars`: `user` names
    /// the user (its ID, as far as known), `field` the property.
    pub fn check_field(
        &self,
        system: System,
        user: &str,
        field: &str,
        value: &str,
    ) -> Result<(), SourceError> {
        // A character is at least one byte, so a value of no more bytes than
        // the limit passes without decoding it (nearly every value, and
        // this runs for every field of millions of users). Otherwise
        // counting stops at the limit, so a huge value costs no more than
        // a short one.
        if value.len() <= self.max_field_chars || value.chars().nth(self.max_field_chars).is_none()
        {
            return Ok(());
        }
        let shown: String = user.chars().take(80).collect();
        Err(SourceError::new(
            system,
            SourceErrorKind::InvalidPayload,
            format!(
                "user {shown}: {field} is longer than limits.max_field_chars ({} characters)",
                self.max_field_chars
            ),
        ))
    }

    /// [`Limits::check_field`] for several optional fields of one user.
    pub fn check_fields<'a>(
        &self,
        system: System,
        user: &str,
        fields: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
    ) -> Result<(), SourceError> {
        for (field, value) in fields {
            if let Some(value) = value {
                self.check_field(system, user, field, value)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_up_to_the_limit_pass() {
        let limits = Limits {
            max_field_chars: 4,
            ..Limits::default()
        };
        assert!(limits
            .check_field(System::Flow, "u", "name", "äöüß")
            .is_ok());
        let e = limits
            .check_field(System::Flow, "u", "name", "äöüßx")
            .unwrap_err();
        assert!(e.message.contains("limits.max_field_chars (4"), "{e}");
        // ASCII: the byte count decides alone.
        assert!(limits
            .check_field(System::Flow, "u", "name", "abcd")
            .is_ok());
        assert!(limits
            .check_field(System::Flow, "u", "name", "abcde")
            .is_err());
        assert!(limits
            .check_field(System::Flow, "u", "name", "abcä")
            .is_ok());
    }
}
