//! OAuth2 client credentials (client secret or certificate JWT assertion)
//! with a token cache, shared by Graph and IFS.
//!
//! `AccessTokenSource` is the interface other modules (Graph mail sender,
//! sources) code against; [`ClientCredentials`] is its implementation for
//! Azure AD (Microsoft identity platform v2.0) and IFS IAM (Keycloak, token
//! endpoint discovered from the issuer).
//!
//! One `ClientCredentials` serves one audience (Graph, or IFS) and caches
//! that audience's token: it is refreshed shortly before it expires (60 s
//! margin, or half the lifetime when that is short), forgotten on
//! [`AccessTokenSource::invalidate`] (after a 401), and concurrent callers
//! share one refresh.

use crate::config::{AzureConfig, AzureCredential, IfsConfig};
use crate::sources::http::{
    join_path, redacted_url, require_secure, ErrorShape, Idempotency, Payload, ServiceClient,
};
use crate::sources::retry::{with_retries, RetryPolicy};
use crate::sources::{SourceError, SourceErrorKind, System};
use async_trait::async_trait;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{Mutex, OnceCell};
use url::Url;

/// Something that hands out a valid bearer token for one audience.
#[async_trait]
pub trait AccessTokenSource: Send + Sync {
    /// A cached token, or a fresh one when the cached one is near expiry.
    async fn access_token(&self) -> Result<SecretString, SourceError>;
    /// Forget the cached token (after a 401), so the next call fetches anew.
    async fn invalidate(&self);
}

/// `client_assertion_type` for a JWT signed with the app's certificate.
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Lifetime of a client assertion (Azure accepts at most 10 minutes).
const ASSERTION_LIFETIME_SECS: u64 = 600;
/// Refresh this long before expiry (or at half the lifetime when shorter).
const REFRESH_MARGIN: Duration = Duration::from_secs(60);
/// Assumed lifetime when a token response has no `expires_in`.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);

/// How the client proves who it is.
enum Credential {
    Secret(SecretString),
    Certificate(CertificateKey),
}

/// The private key and the SHA-256 thumbprint of the certificate from a PEM file.
struct CertificateKey {
    key: EncodingKey,
    /// base64url(SHA-256(DER certificate)), the `x5t#S256` header.
    x5t_s256: String,
}

impl CertificateKey {
    /// Reads a PEM file holding the private key (PKCS#8 or PKCS#1, RSA) and
    /// the certificate.
    fn from_pem_file(system: System, path: &Path) -> Result<Self, SourceError> {
        let config_err = |msg: String| SourceError::new(system, SourceErrorKind::Config, msg);
        let text = std::fs::read(path).map_err(|e| {
            config_err(format!(
                "cannot read certificate file {}: {e}",
                path.display()
            ))
        })?;
        let blocks = pem::parse_many(&text).map_err(|e| {
            config_err(format!(
                "certificate file {} is not PEM: {e}",
                path.display()
            ))
        })?;
        if blocks.iter().any(|b| b.tag() == "ENCRYPTED PRIVATE KEY") {
            return Err(config_err(format!(
                "certificate file {}: the private key is encrypted; store it unencrypted with mode 0600",
                path.display()
            )));
        }
        let key_block = blocks
            .iter()
            .find(|b| b.tag() == "PRIVATE KEY" || b.tag() == "RSA PRIVATE KEY")
            .ok_or_else(|| {
                config_err(format!(
                    "certificate file {} holds no private key (PRIVATE KEY or RSA PRIVATE KEY block)",
                    path.display()
                ))
            })?;
        let cert_block = blocks
            .iter()
            .find(|b| b.tag() == "CERTIFICATE")
            .ok_or_else(|| {
                config_err(format!(
                    "certificate file {} holds no CERTIFICATE block",
                    path.display()
                ))
            })?;
        let key = EncodingKey::from_rsa_pem(pem::encode(key_block).as_bytes()).map_err(|e| {
            config_err(format!(
                "certificate file {}: the private key is not a usable RSA key: {e}",
                path.display()
            ))
        })?;
        let thumbprint = Sha256::digest(cert_block.contents());
        Ok(CertificateKey {
            key,
            x5t_s256: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(thumbprint),
        })
    }
}

/// Where tokens come from.
enum TokenEndpoint {
    Fixed(Url),
    /// Found at `{issuer}/.well-known/openid-configuration`, then remembered.
    Discovered {
        issuer: Url,
        found: OnceCell<Url>,
    },
}

/// A cached token and when to fetch the next one.
struct CachedToken {
    token: SecretString,
    refresh_at: Instant,
}

/// The claims of a certificate client assertion.
#[derive(Serialize)]
struct AssertionClaims<'a> {
    aud: &'a str,
    iss: &'a str,
    sub: &'a str,
    jti: String,
    nbf: u64,
    iat: u64,
    exp: u64,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct OpenIdConfiguration {
    token_endpoint: String,
}

/// OAuth2 client credentials grant for one audience, with a token cache.
pub struct ClientCredentials {
    system: System,
    client_id: String,
    credential: Credential,
    endpoint: TokenEndpoint,
    /// `scope` parameter (Azure: `{graph origin}/.default`; IFS: none).
    scope: Option<String>,
    allow_insecure_http: bool,
    api: ServiceClient,
    cache: Mutex<Option<CachedToken>>,
}

impl fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let endpoint = match &self.endpoint {
            TokenEndpoint::Fixed(url) => redacted_url(url),
            TokenEndpoint::Discovered { issuer, .. } => {
                format!("discovered from {}", redacted_url(issuer))
            }
        };
        f.debug_struct("ClientCredentials")
            .field("system", &self.system)
            .field("client_id", &self.client_id)
            .field(
                "credential",
                &match self.credential {
                    Credential::Secret(_) => "client secret [redacted]",
                    Credential::Certificate(_) => "certificate [redacted]",
                },
            )
            .field("token_endpoint", &endpoint)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl ClientCredentials {
    /// Azure AD: `POST {login_url}/{tenant}/oauth2/v2.0/token` with scope
    /// `{graph_url origin}/.default` (so national clouds work), client
    /// secret or certificate.
    pub fn azure(cfg: &AzureConfig, http: reqwest::Client) -> Result<Self, SourceError> {
        let system = System::Azure;
        require_secure(
            system,
            "azure.login_url",
            &cfg.login_url,
            cfg.allow_insecure_http,
        )?;
        require_secure(
            system,
            "azure.graph_url",
            &cfg.graph_url,
            cfg.allow_insecure_http,
        )?;
        let tenant = cfg.tenant_id.trim();
        if tenant.is_empty()
            || !tenant
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_')
        {
            return Err(SourceError::new(
                system,
                SourceErrorKind::Config,
                format!("azure.tenant_id {tenant:?} is not a tenant ID or domain name"),
            ));
        }
        let token_url = join_path(&cfg.login_url, &format!("{tenant}/oauth2/v2.0/token"));
        let credential = match &cfg.credential {
            AzureCredential::Secret(secret) => Credential::Secret(secret.clone()),
            AzureCredential::Certificate(path) => {
                Credential::Certificate(CertificateKey::from_pem_file(system, path)?)
            }
        };
        let scope = format!("{}/.default", cfg.graph_url.origin().ascii_serialization());
        Ok(ClientCredentials {
            system,
            client_id: cfg.client_id.clone(),
            credential,
            endpoint: TokenEndpoint::Fixed(token_url),
            scope: Some(scope),
            allow_insecure_http: cfg.allow_insecure_http,
            api: ServiceClient::new(system, http, RetryPolicy::default(), ErrorShape::OAuth),
            cache: Mutex::new(None),
        })
    }

    /// IFS IAM (Keycloak): token endpoint discovered from
    /// `{issuer_url}/.well-known/openid-configuration` on first use, client secret.
    pub fn ifs(cfg: &IfsConfig, http: reqwest::Client) -> Result<Self, SourceError> {
        let system = System::Ifs;
        require_secure(
            system,
            "ifs.issuer_url",
            &cfg.issuer_url,
            cfg.allow_insecure_http,
        )?;
        Ok(ClientCredentials {
            system,
            client_id: cfg.client_id.clone(),
            credential: Credential::Secret(cfg.client_secret.clone()),
            endpoint: TokenEndpoint::Discovered {
                issuer: cfg.issuer_url.clone(),
                found: OnceCell::new(),
            },
            scope: None,
            allow_insecure_http: cfg.allow_insecure_http,
            api: ServiceClient::new(system, http, RetryPolicy::default(), ErrorShape::OAuth),
            cache: Mutex::new(None),
        })
    }

    /// Uses `policy` for token and discovery requests.
    pub fn with_retry(mut self, policy: RetryPolicy) -> Self {
        let http = self.api.http_client().clone();
        self.api = ServiceClient::new(self.system, http, policy, ErrorShape::OAuth);
        self
    }

    /// The token endpoint (discovering it if needed).
    async fn token_url(&self) -> Result<Url, SourceError> {
        match &self.endpoint {
            TokenEndpoint::Fixed(url) => Ok(url.clone()),
            TokenEndpoint::Discovered { issuer, found } => found
                .get_or_try_init(|| self.discover(issuer))
                .await
                .cloned(),
        }
    }

    async fn discover(&self, issuer: &Url) -> Result<Url, SourceError> {
        let url = join_path(issuer, ".well-known/openid-configuration");
        let config: OpenIdConfiguration = self
            .api
            .get_json(&url, crate::sources::http::Auth::None)
            .await
            .map_err(|e| self.auth_error(e, "OpenID discovery failed"))?;
        let endpoint = Url::parse(&config.token_endpoint).map_err(|e| {
            let mut err = SourceError::new(
                self.system,
                SourceErrorKind::Auth,
                format!("OpenID discovery: token_endpoint is not a URL: {e}"),
            );
            err.path = Some(url.path().to_string());
            err
        })?;
        require_secure(
            self.system,
            "discovered token_endpoint",
            &endpoint,
            self.allow_insecure_http,
        )?;
        Ok(endpoint)
    }

    /// Marks any failure to obtain a token as [`SourceErrorKind::Auth`].
    fn auth_error(&self, mut err: SourceError, what: &str) -> SourceError {
        if err.kind != SourceErrorKind::Config {
            err.kind = SourceErrorKind::Auth;
        }
        err.message = format!("{what}: {}", err.message);
        err
    }

    /// The form of one token request (a fresh assertion each time).
    fn token_form(&self, token_url: &Url) -> Result<Vec<(String, String)>, SourceError> {
        let mut form = vec![
            ("grant_type".to_string(), "client_credentials".to_string()),
            ("client_id".to_string(), self.client_id.clone()),
        ];
        if let Some(scope) = &self.scope {
            form.push(("scope".to_string(), scope.clone()));
        }
        match &self.credential {
            Credential::Secret(secret) => {
                form.push((
                    "client_secret".to_string(),
                    secret.expose_secret().to_string(),
                ));
            }
            Credential::Certificate(cert) => {
                form.push(("client_assertion_type".to_string(), JWT_BEARER.to_string()));
                form.push((
                    "client_assertion".to_string(),
                    self.client_assertion(cert, token_url)?,
                ));
            }
        }
        Ok(form)
    }

    /// A JWT signed with the certificate's key, formed as MSAL forms it:
    /// PS256 with `x5t#S256` (RS256 with only `x5t#S256` has been reported
    /// to fail with AADSTS700027; docs/external-apis.md).
    fn client_assertion(
        &self,
        cert: &CertificateKey,
        token_url: &Url,
    ) -> Result<String, SourceError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs();
        let claims = AssertionClaims {
            aud: token_url.as_str(),
            iss: &self.client_id,
            sub: &self.client_id,
            jti: uuid::Uuid::new_v4().to_string(),
            nbf: now,
            iat: now,
            exp: now + ASSERTION_LIFETIME_SECS,
        };
        let mut header = Header::new(Algorithm::PS256);
        header.typ = Some("JWT".to_string());
        header.x5t_s256 = Some(cert.x5t_s256.clone());
        jsonwebtoken::encode(&header, &claims, &cert.key).map_err(|e| {
            SourceError::new(
                self.system,
                SourceErrorKind::Auth,
                format!("cannot sign the client assertion: {e}"),
            )
        })
    }

    /// Asks the token endpoint for a new token.
    async fn fetch_token(&self) -> Result<CachedToken, SourceError> {
        let token_url = self.token_url().await?;
        let started = Instant::now();
        let response: TokenResponse = with_retries(self.api.retry_policy(), || async {
            let form = self.token_form(&token_url)?;
            let response = self
                .api
                .attempt(
                    &Method::POST,
                    &token_url,
                    &Payload::Form(form),
                    crate::sources::http::Auth::None,
                    Idempotency::Safe,
                )
                .await?;
            crate::sources::http::read_json(self.system, Idempotency::Safe, response).await
        })
        .await
        .map_err(|e| self.auth_error(e, "token request failed"))?;
        if let Some(kind) = &response.token_type {
            if !kind.eq_ignore_ascii_case("bearer") {
                let mut err = SourceError::new(
                    self.system,
                    SourceErrorKind::Auth,
                    format!("token endpoint returned token_type {kind:?}, expected Bearer"),
                );
                err.path = Some(token_url.path().to_string());
                return Err(err);
            }
        }
        let lifetime = parse_expires_in(response.expires_in.as_ref()).unwrap_or(DEFAULT_LIFETIME);
        let margin = if lifetime >= REFRESH_MARGIN * 2 {
            REFRESH_MARGIN
        } else {
            lifetime / 2
        };
        tracing::debug!(
            system = self.system.as_str(),
            lifetime_s = lifetime.as_secs(),
            "obtained a new access token"
        );
        Ok(CachedToken {
            token: SecretString::from(response.access_token),
            refresh_at: started + lifetime - margin,
        })
    }
}

/// `expires_in` as seconds: a number, or a string of digits (Azure v1 sends strings).
fn parse_expires_in(value: Option<&serde_json::Value>) -> Option<Duration> {
    match value? {
        serde_json::Value::Number(n) => n.as_u64().map(Duration::from_secs),
        serde_json::Value::String(s) => s.trim().parse::<u64>().ok().map(Duration::from_secs),
        _ => None,
    }
}

#[async_trait]
impl AccessTokenSource for ClientCredentials {
    async fn access_token(&self) -> Result<SecretString, SourceError> {
        // Holding the lock while fetching makes concurrent callers share one refresh.
        let mut cache = self.cache.lock().await;
        if let Some(cached) = cache.as_ref() {
            if Instant::now() < cached.refresh_at {
                return Ok(cached.token.clone());
            }
        }
        let fresh = self.fetch_token().await?;
        let token = fresh.token.clone();
        *cache = Some(fresh);
        Ok(token)
    }

    async fn invalidate(&self) {
        *self.cache.lock().await = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_in_number_or_string() {
        assert_eq!(
            parse_expires_in(Some(&serde_json::json!(3599))),
            Some(Duration::from_secs(3599))
        );
        assert_eq!(
            parse_expires_in(Some(&serde_json::json!("300"))),
            Some(Duration::from_secs(300))
        );
        assert_eq!(parse_expires_in(Some(&serde_json::json!(true))), None);
        assert_eq!(parse_expires_in(None), None);
    }

    #[test]
    fn azure_token_url_and_scope_follow_config() {
        let cfg = AzureConfig {
            tenant_id: "contoso.onmicrosoft.com".into(),
            client_id: "app".into(),
            credential: AzureCredential::Secret(SecretString::from("s3cr3t-value")),
            login_url: Url::parse("https://login.chinacloudapi.cn").unwrap(),
            graph_url: Url::parse("https://microsoftgraph.chinacloudapi.cn").unwrap(),
            group_id: None,
            include_guests: false,
            allow_insecure_http: false,
        };
        let cc = ClientCredentials::azure(&cfg, reqwest::Client::new()).unwrap();
        let TokenEndpoint::Fixed(url) = &cc.endpoint else {
            panic!("azure endpoint is fixed")
        };
        assert_eq!(
            url.as_str(),
            "https://login.chinacloudapi.cn/contoso.onmicrosoft.com/oauth2/v2.0/token"
        );
        assert_eq!(
            cc.scope.as_deref(),
            Some("https://microsoftgraph.chinacloudapi.cn/.default")
        );
        let debug = format!("{cc:?}");
        assert!(!debug.contains("s3cr3t-value"), "{debug}");
    }

    #[test]
    fn bad_tenant_is_a_config_error() {
        let cfg = AzureConfig {
            tenant_id: "../evil".into(),
            client_id: "app".into(),
            credential: AzureCredential::Secret(SecretString::from("x")),
            login_url: Url::parse("https://login.microsoftonline.com").unwrap(),
            graph_url: Url::parse("https://graph.microsoft.com").unwrap(),
            group_id: None,
            include_guests: false,
            allow_insecure_http: false,
        };
        let err = ClientCredentials::azure(&cfg, reqwest::Client::new()).unwrap_err();
        assert_eq!(err.kind, SourceErrorKind::Config);
    }
}
