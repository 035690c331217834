//! The one HTTP layer of idrecon, shared by the connectors
//! ([`crate::sources`]), the token sources ([`auth`]) and the Graph mail
//! sender ([`crate::mail`]), so each policy exists once:
//!
//! - [`client`]: the reqwest client (rustls, timeouts, no redirects, no
//!   `Referer`, decompression) and [`client::ServiceClient`], which sends,
//!   checks statuses and reads bodies into typed results or errors;
//! - [`retry`]: backoff honouring a bounded `Retry-After`, 401 → new token once;
//! - [`auth`]: OAuth2 client credentials (secret or certificate) for Azure
//!   AD and IFS IAM, with a token cache;
//! - [`token`]: the token-source interface between `client` and `auth`;
//! - [`limits`]: the caps on response bodies (after decompression) and on
//!   the length of user fields;
//! - [`origin`]: where requests and links may go;
//! - [`tls`]: the trust roots (web roots, the OS store, `tls.ca_file`);
//! - [`redact`]: masking of configured secrets in every error text.

pub mod auth;
pub mod client;
pub mod limits;
pub mod origin;
pub mod redact;
pub mod retry;
pub mod tls;
pub mod token;
