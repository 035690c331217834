//! The HTTP behaviour shared by every connector, the token sources and the
//! Graph mail sender: one reqwest client (rustls with the trust roots of
//! [`crate::net::tls`], timeouts, decompression, no redirects, no
//! `Referer`), and [`ServiceClient`], which sends a request, reads the body
//! within [`Limits`], and turns the answer into a typed result or a
//! [`SourceError`] naming the system, the URL path, the status and the
//! service's error code — never a query string, a host credential, a
//! secret or a token (service text passes the [`Redactor`]).

use crate::net::limits::{BodyError, Limits};
use crate::net::origin::error_path;
use crate::net::redact::Redactor;
use crate::net::retry::{parse_retry_after, run_authorized, AttemptError, RetryPolicy};
use crate::net::tls::{is_certificate_error, TlsSettings};
use crate::net::token::AccessTokenSource;
use crate::sources::{SourceError, SourceErrorKind, System};
use reqwest::{Method, Response, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use std::time::{Duration, SystemTime};
use url::Url;

/// Longest piece of a service's own error text carried into an error.
const MAX_SERVICE_TEXT: usize = 500;

/// Timeouts, retry policy, limits, trust roots and secret masking of the
/// HTTP layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSettings {
    /// Time allowed to open a connection (TCP + TLS).
    pub connect_timeout: Duration,
    /// Time allowed for one whole request, body included.
    pub request_timeout: Duration,
    pub retry: RetryPolicy,
    pub limits: Limits,
    pub tls: TlsSettings,
    /// Masks configured secrets in error texts ([`Redactor::from_config`]).
    pub redactor: Redactor,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            retry: RetryPolicy::default(),
            limits: Limits::default(),
            tls: TlsSettings::default(),
            redactor: Redactor::default(),
        }
    }
}

impl HttpSettings {
    /// These timeouts and retries with the limits (`[limits]`), trust roots
    /// (`[tls]`) and secrets of `cfg`; the secrets are added to this
    /// settings' [`Redactor`], which stays shared.
    pub fn for_config(&self, cfg: &crate::config::Config) -> HttpSettings {
        self.redactor.add_config(cfg);
        HttpSettings {
            limits: Limits::from_config(&cfg.limits),
            tls: TlsSettings::from_config(cfg),
            ..self.clone()
        }
    }
}

/// Builds the reqwest client every connector shares: rustls trusting the
/// web roots, the OS store and `tls.ca_file`; timeouts; a user agent naming
/// idrecon; gzip/deflate decoded (and then measured by [`Limits`]); no
/// redirects and no `Referer` (a URL may carry a delta or skip token);
/// `HTTPS_PROXY`/`NO_PROXY` honoured (reqwest's system proxy).
pub fn build_client(
    system: System,
    settings: &HttpSettings,
) -> Result<reqwest::Client, SourceError> {
    let builder = reqwest::Client::builder()
        .use_rustls_tls()
        .connect_timeout(settings.connect_timeout)
        .timeout(settings.request_timeout)
        .user_agent(concat!("idrecon/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .referer(false)
        .gzip(true)
        .deflate(true);
    let builder = settings
        .tls
        .apply_to_reqwest(builder)
        .map_err(|e| SourceError::new(system, SourceErrorKind::Config, e.to_string()))?;
    builder.build().map_err(|e| {
        SourceError::new(
            system,
            SourceErrorKind::Config,
            format!("cannot build the HTTP client: {e}"),
        )
    })
}

/// How a service spells its errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorShape {
    /// Graph and IFS OData: `{"error":{"code":"…","message":"…"}}`.
    OData,
    /// OAuth token endpoints: `{"error":"invalid_client","error_description":"AADSTS…"}`.
    OAuth,
    /// The Flow endpoint: `{"error":"…"}`.
    Flow,
}

/// Whether a request may be repeated after an ambiguous failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotency {
    /// Reads: retried on 429, 5xx gateway errors and transport failures.
    Safe,
    /// Writes: retried only when the service certainly did not act on it
    /// (429, 503, connection refused before sending).
    Unsafe,
}

/// Shortens a service's text to something fit for an error line.
fn clip(text: &str) -> String {
    let first_line = text.lines().next().unwrap_or("").trim();
    if first_line.chars().count() <= MAX_SERVICE_TEXT {
        first_line.to_string()
    } else {
        let mut s: String = first_line.chars().take(MAX_SERVICE_TEXT).collect();
        s.push('…');
        s
    }
}

/// The service's error code and message from an error body, if it has the
/// expected shape.
pub fn service_error(shape: ErrorShape, body: &[u8]) -> (Option<String>, Option<String>) {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return (None, None);
    };
    let text = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_str()).map(clip);
    match shape {
        ErrorShape::OData => {
            let error = value.get("error");
            (
                text(error.and_then(|e| e.get("code"))),
                text(error.and_then(|e| e.get("message"))),
            )
        }
        ErrorShape::OAuth => (
            text(value.get("error")),
            text(value.get("error_description")),
        ),
        ErrorShape::Flow => (text(value.get("error")), None),
    }
}

fn is_transient_status(status: StatusCode, idempotency: Idempotency) -> bool {
    match idempotency {
        Idempotency::Safe => matches!(status.as_u16(), 429 | 500 | 502 | 503 | 504),
        Idempotency::Unsafe => matches!(status.as_u16(), 429 | 503),
    }
}

/// Largest error body read for its code and message.
const MAX_ERROR_BODY: u64 = 64 * 1024;

/// reqwest's error chain without the URL.
fn describe_reqwest_error(err: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut parts = Vec::new();
    let mut source = err.source();
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    if parts.is_empty() {
        // reqwest's own message names the URL; say what happened instead.
        if err.is_timeout() {
            "operation timed out".to_string()
        } else {
            "error sending request".to_string()
        }
    } else {
        clip(&parts.join(": "))
    }
}

/// Parses `body` as JSON of type `T`, naming the path on failure.
pub fn parse_json<T: DeserializeOwned>(
    system: System,
    path: &str,
    body: &[u8],
) -> Result<T, SourceError> {
    serde_json::from_slice(body).map_err(|e| {
        let mut error = SourceError::new(
            system,
            SourceErrorKind::InvalidPayload,
            format!("response is not the expected JSON: {e}"),
        );
        error.path = Some(path.to_string());
        error
    })
}

/// How a request authenticates.
#[derive(Clone, Copy)]
pub enum Auth<'a> {
    None,
    /// `Authorization: Bearer` from a token source (401 → new token, once).
    Bearer(&'a dyn AccessTokenSource),
    /// HTTP basic authentication.
    Basic {
        username: &'a str,
        password: &'a SecretString,
    },
}

impl<'a> Auth<'a> {
    /// The token source to refresh from after a 401 (bearer auth only).
    fn token_source(&self) -> Option<&'a dyn AccessTokenSource> {
        match *self {
            Auth::Bearer(tokens) => Some(tokens),
            _ => None,
        }
    }
}

/// What a request carries.
#[derive(Clone)]
pub enum Payload {
    Empty,
    Json(serde_json::Value),
    /// `application/x-www-form-urlencoded` pairs (may hold a secret: never logged).
    Form(Vec<(String, String)>),
}

/// A JSON-over-HTTP client for one system: shared reqwest client, retries,
/// error shape, body limit and secret masking.
#[derive(Clone)]
pub struct ServiceClient {
    system: System,
    http: reqwest::Client,
    retry: RetryPolicy,
    shape: ErrorShape,
    limits: Limits,
    redactor: Redactor,
}

impl std::fmt::Debug for ServiceClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceClient")
            .field("system", &self.system)
            .field("retry", &self.retry)
            .field("shape", &self.shape)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl ServiceClient {
    /// A client with the default limits and no secrets to mask.
    pub fn new(
        system: System,
        http: reqwest::Client,
        retry: RetryPolicy,
        shape: ErrorShape,
    ) -> Self {
        ServiceClient {
            system,
            http,
            retry,
            shape,
            limits: Limits::default(),
            redactor: Redactor::default(),
        }
    }

    /// A client with the retry policy, limits and redactor of `settings`.
    pub fn from_settings(
        system: System,
        http: reqwest::Client,
        settings: &HttpSettings,
        shape: ErrorShape,
    ) -> Self {
        ServiceClient {
            limits: settings.limits,
            redactor: settings.redactor.clone(),
            ..ServiceClient::new(system, http, settings.retry.clone(), shape)
        }
    }

    /// The same client with another retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn system(&self) -> System {
        self.system
    }

    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// The shared reqwest client.
    pub fn http_client(&self) -> &reqwest::Client {
        &self.http
    }

    /// `GET url` → JSON `T`, with retries (and a fresh token after a 401).
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        url: &Url,
        auth: Auth<'_>,
    ) -> Result<T, SourceError> {
        self.call_json(Method::GET, url, &Payload::Empty, auth, Idempotency::Safe)
            .await
    }

    /// Sends a request with retries and reads a JSON answer of type `T`.
    pub async fn call_json<T: DeserializeOwned>(
        &self,
        method: Method,
        url: &Url,
        payload: &Payload,
        auth: Auth<'_>,
        idempotency: Idempotency,
    ) -> Result<T, SourceError> {
        run_authorized(auth.token_source(), &self.retry, || async {
            let response = self
                .attempt(&method, url, payload, auth, idempotency)
                .await?;
            self.read_json(idempotency, response).await
        })
        .await
    }

    /// Sends a request with retries; returns the success body (within the
    /// body limit).
    pub async fn call(
        &self,
        method: Method,
        url: &Url,
        payload: &Payload,
        auth: Auth<'_>,
        idempotency: Idempotency,
    ) -> Result<Vec<u8>, SourceError> {
        run_authorized(auth.token_source(), &self.retry, || async {
            let response = self
                .attempt(&method, url, payload, auth, idempotency)
                .await?;
            self.read_body(idempotency, response).await
        })
        .await
    }

    /// One attempt, no retries: send and check the status.
    pub async fn attempt(
        &self,
        method: &Method,
        url: &Url,
        payload: &Payload,
        auth: Auth<'_>,
        idempotency: Idempotency,
    ) -> Result<Response, AttemptError> {
        let path = error_path(url);
        let mut request = self
            .http
            .request(method.clone(), url.clone())
            .header(reqwest::header::ACCEPT, "application/json");
        match auth {
            Auth::None => {}
            Auth::Bearer(tokens) => {
                let token = tokens.access_token().await?;
                request = request.bearer_auth(token.expose_secret());
            }
            Auth::Basic { username, password } => {
                request = request.basic_auth(username, Some(password.expose_secret()));
            }
        }
        match payload {
            Payload::Empty => {}
            Payload::Json(body) => request = request.json(body),
            Payload::Form(pairs) => request = request.form(pairs),
        }
        let response = request
            .send()
            .await
            .map_err(|e| self.transport_error(url, &path, idempotency, e))?;
        self.check_status(method, idempotency, response).await
    }

    /// Reads a success body within `limits.max_body_bytes`.
    pub async fn read_body(
        &self,
        idempotency: Idempotency,
        response: Response,
    ) -> Result<Vec<u8>, AttemptError> {
        let url = response.url().clone();
        match self.limits.read_body(self.system, response).await {
            Ok(body) => Ok(body),
            Err(BodyError::TooLarge(e)) => Err(AttemptError::fatal(e)),
            Err(BodyError::Transport(e)) => {
                Err(self.transport_error(&url, &error_path(&url), idempotency, e))
            }
        }
    }

    /// Reads a success body as JSON of type `T`; anything else is
    /// [`SourceErrorKind::InvalidPayload`] with serde's explanation.
    pub async fn read_json<T: DeserializeOwned>(
        &self,
        idempotency: Idempotency,
        response: Response,
    ) -> Result<T, AttemptError> {
        let path = error_path(response.url());
        let body = self.read_body(idempotency, response).await?;
        parse_json(self.system, &path, &body).map_err(|e| AttemptError::fatal(self.masked(e)))
    }

    /// Passes a success response through; turns any other status into an
    /// [`AttemptError`] carrying the path, status and the service's error
    /// code and text (clipped, secrets masked).
    pub async fn check_status(
        &self,
        method: &Method,
        idempotency: Idempotency,
        response: Response,
    ) -> Result<Response, AttemptError> {
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let path = error_path(response.url());
        let retry_after = parse_retry_after(response.headers(), SystemTime::now());
        // Only the origin of a redirect target is shown: its URL may carry tokens.
        let redirected_to = status.is_redirection().then(|| {
            response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .and_then(|l| response.url().join(l).ok())
                .map(|u| u.origin().ascii_serialization())
                .unwrap_or_else(|| "an unnamed location".to_string())
        });
        // A body that cannot be read is not worth more than the status itself.
        let limits = Limits {
            max_body_bytes: MAX_ERROR_BODY,
            ..self.limits
        };
        let body = limits
            .read_body(self.system, response)
            .await
            .unwrap_or_default();
        let (code, service_message) = service_error(self.shape, &body);
        let kind = match status.as_u16() {
            401 | 403 => SourceErrorKind::Auth,
            _ => SourceErrorKind::Http,
        };
        let mut message = format!(
            "{method} failed with {} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        )
        .trim_end()
        .to_string();
        if let Some(text) = service_message {
            message.push_str(": ");
            message.push_str(&text);
        }
        if let Some(target) = redirected_to {
            message.push_str(&format!(
                ": redirected to {target}; redirects are never followed (check the configured URL)"
            ));
        }
        let error = self.masked(SourceError {
            system: self.system,
            kind,
            path: Some(path),
            status: Some(status.as_u16()),
            code,
            message,
        });
        if is_transient_status(status, idempotency) {
            Err(AttemptError::transient(error, retry_after))
        } else {
            Err(AttemptError::fatal(error))
        }
    }

    /// Turns a transport failure into an [`AttemptError`]; the URL (with
    /// its query) is removed from reqwest's message. A certificate failure
    /// is never retried: it names the host and `tls.ca_file`.
    pub fn transport_error(
        &self,
        url: &Url,
        path: &str,
        idempotency: Idempotency,
        err: reqwest::Error,
    ) -> AttemptError {
        if is_certificate_error(&err) {
            let mut error = SourceError::new(
                self.system,
                SourceErrorKind::Transport,
                format!(
                    "the TLS certificate of {} is not trusted ({}); add its CA to tls.ca_file or to the system trust store",
                    url.host_str().unwrap_or("?"),
                    describe_reqwest_error(&err)
                ),
            );
            error.path = Some(path.to_string());
            return AttemptError::fatal(self.masked(error));
        }
        let what = if err.is_timeout() {
            "timed out"
        } else if err.is_connect() {
            "could not connect"
        } else if err.is_body() || err.is_decode() {
            "connection dropped while reading the response"
        } else {
            "request failed"
        };
        let retryable = match idempotency {
            Idempotency::Safe => {
                err.is_timeout() || err.is_connect() || err.is_request() || err.is_body()
            }
            Idempotency::Unsafe => err.is_connect(),
        };
        let detail = describe_reqwest_error(&err);
        let mut error = SourceError::new(
            self.system,
            SourceErrorKind::Transport,
            format!("{what}: {detail}"),
        );
        error.path = Some(path.to_string());
        let error = self.masked(error);
        if retryable {
            AttemptError::transient(error, None)
        } else {
            AttemptError::fatal(error)
        }
    }

    /// `error` with every configured secret masked in its texts.
    pub fn masked(&self, mut error: SourceError) -> SourceError {
        error.message = self.redactor.mask(&error.message);
        error.code = error.code.map(|c| self.redactor.mask(&c));
        error
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_errors_by_shape() {
        let odata = br#"{"error":{"code":"TooManyRequests","message":"slow down"}}"#;
        assert_eq!(
            service_error(ErrorShape::OData, odata),
            (Some("TooManyRequests".into()), Some("slow down".into()))
        );
        let oauth = br#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.\r\nTrace ID: x"}"#;
        assert_eq!(
            service_error(ErrorShape::OAuth, oauth),
            (
                Some("invalid_client".into()),
                Some("AADSTS7000215: Invalid client secret provided.".into())
            )
        );
        assert_eq!(
            service_error(ErrorShape::Flow, br#"{"error":"target taken"}"#),
            (Some("target taken".into()), None)
        );
        assert_eq!(service_error(ErrorShape::OData, b"<html>"), (None, None));
    }
}
