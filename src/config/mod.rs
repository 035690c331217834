//! Configuration: the TOML file and `IDRECON__SECTION__KEY` environment
//! overrides, layered with figment into one serde tree ([`raw`]), then
//! converted with `TryFrom` into the typed [`Config`] whose values are
//! parsed once: URLs, the [`Schedule`](crate::schedule::Schedule), the SMTP
//! endpoint, durations, paths resolved against the config file's directory
//! and secrets (inline, from the environment or from `*_file`) as
//! `SecretString`. Every error names the offending `section.key` and, for
//! an environment override, the variable (see [`ConfigError`]).
//!
//! docs/configuration.md is the user-facing description of every key.

mod convert;
mod error;
mod load;
mod loose;
pub mod raw;
mod secret;
pub mod smtp_url;
mod typed;

pub use convert::{
    validate_store_url, DEFAULT_CRON, DEFAULT_IFS_USERS_PATH, DEFAULT_STORE_URL, DEFAULT_TIMEZONE,
};
pub use error::ConfigError;
pub use load::{process_env, ENV_PREFIX};
pub use raw::all_keys;
pub use smtp_url::{SmtpEndpoint, SmtpSecurity, SmtpUrlError};
pub use typed::*;
