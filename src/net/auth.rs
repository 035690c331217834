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
use crate::net::client::{Auth, HttpSettings};
use crate::net::client::{ErrorShape, Idempotency, Payload, ServiceClient};
use crate::net::origin::{join_path, redacted_url, require_secure, same_origin};
use crate::net::retry::{with_retries, RetryPolicy};
pub use crate::net::token::AccessTokenSource;
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

/// `client_assertion_type` for a JWT signed with the app's certificate.
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Lifetime of a client assertion (Azure accepts at most 10 minutes).
const ASSERTION_LIFETIME_SECS: u64 = 600;
/// Refresh this long before expiry (or at half the lifetime when shorter).
const REFRESH_MARGIN: Duration = Duration::from_secs(60);
/// Assumed lifetime when a token response has no `expires_in`.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);
/// Longest lifetime believed: a token endpoint answering
/// `expires_in: 18446744073709551615` gets its token refreshed daily.
const MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// How the IFS client proves its secret at the token endpoint
/// (`ifs.token_auth_method`; RFC 6749 §2.3.1): `Auto` follows discovery's
/// `token_endpoint_auth_methods_supported` — HTTP Basic when offered (or
/// when the list is absent, the OpenID default), the form body otherwise.
pub use crate::config::TokenAuthMethod;

/// The RFC 8414 name of a method.
fn method_name(method: TokenAuthMethod) -> &'static str {
    match method {
        TokenAuthMethod::Auto => "auto",
        TokenAuthMethod::Basic => "client_secret_basic",
        TokenAuthMethod::Post => "client_secret_post",
    }
}

/// How the client proves who it is.
enum Credential {
    Secret(SecretString),
    Certificate(CertificateKey),
}

/// The private key and the SHA-256 thumbprint of the certificate from a PEM file.
///
/// The assertion is formed as Microsoft's MSAL libraries form it for a
/// confidential client today: `alg` PS256 with the `x5t#S256` thumbprint
/// (RS256 with only `x5t#S256` has been reported to fail with AADSTS700027).
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
        found: OnceCell<Discovered>,
    },
}

/// What discovery found: the token endpoint and how to authenticate there.
#[derive(Clone)]
struct Discovered {
    token_url: Url,
    method: TokenAuthMethod,
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
    #[serde(default)]
    issuer: Option<String>,
    token_endpoint: String,
    #[serde(default)]
    token_endpoint_auth_methods_supported: Option<Vec<String>>,
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
    /// `ifs.token_auth_method` (Azure: always the form body).
    auth_method: TokenAuthMethod,
    api: ServiceClient,
    cache: Mutex<Option<CachedToken>>,
    /// The token endpoint refused the client's credentials (and when):
    /// asking again soon with the same secret cannot help and only sends
    /// it once more.
    rejected: Mutex<Option<(Instant, SourceError)>>,
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
            auth_method: TokenAuthMethod::Post,
            api: ServiceClient::new(system, http, RetryPolicy::default(), ErrorShape::OAuth),
            cache: Mutex::new(None),
            rejected: Mutex::new(None),
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
            auth_method: cfg.token_auth_method,
            api: ServiceClient::new(system, http, RetryPolicy::default(), ErrorShape::OAuth),
            cache: Mutex::new(None),
            rejected: Mutex::new(None),
        })
    }

    /// Uses `policy` for token and discovery requests.
    pub fn with_retry(mut self, policy: RetryPolicy) -> Self {
        self.api = self.api.with_retry(policy);
        self
    }

    /// Uses the retry policy, limits and secret masking of `settings`.
    pub fn with_settings(mut self, settings: &HttpSettings) -> Self {
        let http = self.api.http_client().clone();
        self.api = ServiceClient::from_settings(self.system, http, settings, ErrorShape::OAuth);
        self
    }

    /// The token endpoint and the client authentication method to use
    /// there (discovering them if needed).
    async fn token_endpoint(&self) -> Result<Discovered, SourceError> {
        match &self.endpoint {
            TokenEndpoint::Fixed(url) => Ok(Discovered {
                token_url: url.clone(),
                method: self.auth_method,
            }),
            TokenEndpoint::Discovered { issuer, found } => found
                .get_or_try_init(|| self.discover(issuer))
                .await
                .cloned(),
        }
    }

    /// Reads the issuer's OpenID configuration. Its `issuer` must be the
    /// configured one and its `token_endpoint` on the issuer's origin
    /// (OpenID Connect Discovery §4.3): the client secret goes nowhere else.
    async fn discover(&self, issuer: &Url) -> Result<Discovered, SourceError> {
        let url = join_path(issuer, ".well-known/openid-configuration");
        let config: OpenIdConfiguration = self
            .api
            .get_json(&url, Auth::None)
            .await
            .map_err(|e| self.auth_error(e, "OpenID discovery failed"))?;
        let refuse = |message: String| {
            let mut err = SourceError::new(self.system, SourceErrorKind::Auth, message);
            err.path = Some(url.path().to_string());
            self.api.masked(err)
        };
        let configured = issuer.as_str().trim_end_matches('/');
        match config.issuer.as_deref().map(|i| i.trim_end_matches('/')) {
            Some(found) if found == configured => {}
            Some(found) => {
                let shown: String = found.chars().take(200).collect();
                return Err(refuse(format!(
                    "OpenID discovery: the document names issuer {shown:?}, not the configured ifs.issuer_url {configured:?}; \
                     fix ifs.issuer_url (it must be the realm URL exactly)"
                )));
            }
            None => {
                return Err(refuse(
                    "OpenID discovery: the document names no issuer".to_string(),
                ))
            }
        }
        let endpoint = Url::parse(&config.token_endpoint).map_err(|e| {
            refuse(format!(
                "OpenID discovery: token_endpoint is not a URL: {e}"
            ))
        })?;
        if !same_origin(&endpoint, issuer) {
            return Err(refuse(format!(
                "OpenID discovery: token_endpoint is on {}, not on the issuer's origin {}; \
                 refusing to send the client secret there",
                endpoint.origin().ascii_serialization(),
                issuer.origin().ascii_serialization()
            )));
        }
        require_secure(
            self.system,
            "discovered token_endpoint",
            &endpoint,
            self.allow_insecure_http,
        )?;
        let offered = config.token_endpoint_auth_methods_supported;
        let offers = |name: &str| {
            offered
                .as_ref()
                .is_none_or(|list| list.iter().any(|m| m == name))
        };
        let method = match self.auth_method {
            TokenAuthMethod::Auto if offers("client_secret_basic") => TokenAuthMethod::Basic,
            TokenAuthMethod::Auto => TokenAuthMethod::Post,
            configured => configured,
        };
        tracing::debug!(
            system = self.system.as_str(),
            method = method_name(method),
            "token endpoint discovered"
        );
        Ok(Discovered {
            token_url: endpoint,
            method,
        })
    }

    /// Marks any failure to obtain a token as [`SourceErrorKind::Auth`].
    fn auth_error(&self, mut err: SourceError, what: &str) -> SourceError {
        if err.kind != SourceErrorKind::Config {
            err.kind = SourceErrorKind::Auth;
        }
        err.message = format!("{what}: {}", err.message);
        err
    }

    /// The form of one token request (a fresh assertion each time). With
    /// [`TokenAuthMethod::Basic`], the client ID and secret go in the
    /// `Authorization` header instead ([`Self::basic_credentials`]).
    fn token_form(
        &self,
        token_url: &Url,
        method: TokenAuthMethod,
    ) -> Result<Vec<(String, String)>, SourceError> {
        let mut form = vec![("grant_type".to_string(), "client_credentials".to_string())];
        if method != TokenAuthMethod::Basic {
            form.push(("client_id".to_string(), self.client_id.clone()));
        }
        if let Some(scope) = &self.scope {
            form.push(("scope".to_string(), scope.clone()));
        }
        match &self.credential {
            Credential::Secret(_) if method == TokenAuthMethod::Basic => {}
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

    /// RFC 6749 §2.3.1: the client ID and secret, each
    /// `application/x-www-form-urlencoded`, as HTTP Basic user and password.
    fn basic_credentials(&self) -> Option<(String, SecretString)> {
        let Credential::Secret(secret) = &self.credential else {
            return None;
        };
        let encode =
            |v: &str| url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
        Some((
            encode(&self.client_id),
            SecretString::from(encode(secret.expose_secret())),
        ))
    }

    /// A JWT signed with the certificate's key, as MSAL forms it: PS256
    /// with the `x5t#S256` thumbprint.
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

    /// Asks the token endpoint for a new token. A refusal of the client's
    /// credentials is not retried, and is remembered (see `rejected`).
    async fn fetch_token(&self) -> Result<CachedToken, SourceError> {
        if let Some((at, rejection)) = self.rejected.lock().await.clone() {
            if at.elapsed() < REJECTION_MEMORY {
                return Err(rejection);
            }
        }
        let Discovered { token_url, method } = self.token_endpoint().await?;
        let basic = match method {
            TokenAuthMethod::Basic => self.basic_credentials(),
            _ => None,
        };
        let started = Instant::now();
        let response: Result<TokenResponse, SourceError> =
            with_retries(self.api.retry_policy(), || async {
                let form = self.token_form(&token_url, method)?;
                let auth = match &basic {
                    Some((username, password)) => Auth::Basic { username, password },
                    None => Auth::None,
                };
                let response = self
                    .api
                    .attempt(
                        &Method::POST,
                        &token_url,
                        &Payload::Form(form),
                        auth,
                        Idempotency::Safe,
                    )
                    .await?;
                self.api.read_json(Idempotency::Safe, response).await
            })
            .await
            .map_err(|e| {
                let rejected = is_credential_rejection(&e);
                let mut e = self.auth_error(e, "token request failed");
                if rejected {
                    e.message = format!("{}; {}", e.message, self.rejection_hint(method));
                }
                e
            });
        let response = match response {
            Ok(response) => response,
            Err(e) => {
                if is_credential_rejection(&e) {
                    *self.rejected.lock().await = Some((Instant::now(), e.clone()));
                }
                return Err(e);
            }
        };
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
        let lifetime = parse_expires_in(response.expires_in.as_ref())
            .unwrap_or(DEFAULT_LIFETIME)
            .min(MAX_LIFETIME);
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
        let token = SecretString::from(response.access_token);
        // An error text that echoes the token is masked like a configured secret.
        self.api.redactor().add(&token);
        Ok(CachedToken {
            token,
            refresh_at: started
                .checked_add(lifetime.saturating_sub(margin))
                .unwrap_or(started),
        })
    }

    /// What to check when the token endpoint refused the client.
    fn rejection_hint(&self, method: TokenAuthMethod) -> String {
        match (&self.credential, method) {
            (Credential::Certificate(_), _) => {
                "check the certificate registered for the app (azure.certificate_file) and azure.client_id".to_string()
            }
            (Credential::Secret(_), TokenAuthMethod::Basic) => format!(
                "check the client secret and client ID; the secret was sent as HTTP Basic ({}): if the client is registered for client_secret_post, set ifs.token_auth_method = \"post\"",
                method_name(method)
            ),
            (Credential::Secret(_), _) => format!(
                "check the client secret and client ID; the secret was sent in the form body ({}){}",
                method_name(method),
                if self.system == System::Ifs {
                    ": if the client is registered for client_secret_basic, set ifs.token_auth_method = \"basic\""
                } else {
                    ""
                }
            ),
        }
    }
}

/// How long a refusal of the client's credentials is remembered: longer
/// than one run's fetch, shorter than the time between scheduled runs.
const REJECTION_MEMORY: Duration = Duration::from_secs(15 * 60);

/// Whether the token endpoint refused the client itself (RFC 6749 §5.2
/// `invalid_client`, or a 401), rather than failing for a while.
fn is_credential_rejection(e: &SourceError) -> bool {
    e.status == Some(401)
        || (e.status == Some(400)
            && matches!(
                e.code.as_deref(),
                Some("invalid_client" | "unauthorized_client")
            ))
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
