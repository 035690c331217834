//! The interface between the HTTP layer and whatever hands out bearer
//! tokens: [`crate::net::client`] asks it for a token and tells it when a
//! token was refused; [`crate::net::auth`] implements it. Neither module
//! needs the other's internals.

use crate::sources::SourceError;
use async_trait::async_trait;
use secrecy::SecretString;

/// Something that hands out a valid bearer token for one audience.
#[async_trait]
pub trait AccessTokenSource: Send + Sync {
    /// A cached token, or a fresh one when the cached one is near expiry.
    async fn access_token(&self) -> Result<SecretString, SourceError>;
    /// Forget the cached token (after a 401), so the next call fetches anew.
    async fn invalidate(&self);
}
