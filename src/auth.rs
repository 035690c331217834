//! OAuth2 client credentials (client secret or certificate JWT assertion)
//! with a token cache, shared by Graph and IFS.
//!
//! SKELETON: `AccessTokenSource` is the interface other modules (Graph mail
//! sender, sources) code against; the implementations come with the
//! connectors work.

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
