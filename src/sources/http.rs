//! The HTTP behaviour shared by every connector: one reqwest client (rustls,
//! timeouts), turning responses into typed results or [`SourceError`]s that
//! name the system, the URL path, the status and the service's error code —
//! never a query string, a host credential, a secret or a token.

use crate::auth::AccessTokenSource;
use crate::sources::retry::{parse_retry_after, run_authorized, AttemptError, RetryPolicy};
use crate::sources::{SourceError, SourceErrorKind, System};
use reqwest::{Method, Response, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use std::time::{Duration, SystemTime};
use url::Url;

/// Longest piece of a service's own error text carried into an error.
const MAX_SERVICE_TEXT: usize = 300;

/// Timeouts and retry policy of the connectors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSettings {
    /// Time allowed to open a connection (TCP + TLS).
    pub connect_timeout: Duration,
    /// Time allowed for one whole request, body included.
    pub request_timeout: Duration,
    pub retry: RetryPolicy,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            retry: RetryPolicy::default(),
        }
    }
}

/// Builds the reqwest client every connector shares (rustls, timeouts, a
/// user agent naming idrecon, no redirects across hosts).
pub fn build_client(
    system: System,
    settings: &HttpSettings,
) -> Result<reqwest::Client, SourceError> {
    reqwest::Client::builder()
        .use_rustls_tls()
        .connect_timeout(settings.connect_timeout)
        .timeout(settings.request_timeout)
        .user_agent(concat!("idrecon/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| {
            SourceError::new(
                system,
                SourceErrorKind::Config,
                format!("cannot build the HTTP client: {e}"),
            )
        })
}

/// Refuses a plain-`http` URL to anything but a loopback host unless the
/// configuration allows it (docs/contract.md, "Configuration").
pub fn require_secure(
    system: System,
    what: &str,
    url: &Url,
    allow_insecure: bool,
) -> Result<(), SourceError> {
    if url.scheme() == "https" {
        return Ok(());
    }
    if url.scheme() != "http" {
        return Err(SourceError::new(
            system,
            SourceErrorKind::Config,
            format!(
                "{what} must be an http(s) URL, got scheme {:?}",
                url.scheme()
            ),
        ));
    }
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    if loopback || allow_insecure {
        Ok(())
    } else {
        Err(SourceError::new(
            system,
            SourceErrorKind::Config,
            format!(
                "{what} uses plain http to a non-loopback host ({}); use https or set allow_insecure_http = true",
                url.host_str().unwrap_or("?")
            ),
        ))
    }
}

/// The part of a URL that may appear in errors and logs: the path only (no
/// query with skip or delta tokens, no user info, no host).
pub fn error_path(url: &Url) -> String {
    url.path().to_string()
}

/// A URL fit for `Debug` and logs: no user info, no query, no fragment.
pub fn redacted_url(url: &Url) -> String {
    format!("{}{}", url.origin().ascii_serialization(), url.path())
}

/// Whether two URLs point at the same scheme, host and port (so a link
/// handed back by a service does not send our credentials elsewhere).
pub fn same_origin(a: &Url, b: &Url) -> bool {
    a.origin() == b.origin()
}

/// Appends path segments to a base URL, keeping the base's own path
/// (`https://h/ifs` + `a/b` → `https://h/ifs/a/b`).
pub fn join_path(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    let joined = format!(
        "{}/{}",
        base.path().trim_end_matches('/'),
        path.trim_start_matches('/')
    );
    url.set_path(&joined);
    url.set_query(None);
    url.set_fragment(None);
    url
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

/// Passes a success response through; turns any other status into an
/// [`AttemptError`] carrying the path, status and the service's error code.
pub async fn check_status(
    system: System,
    method: &Method,
    shape: ErrorShape,
    idempotency: Idempotency,
    response: Response,
) -> Result<Response, AttemptError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let path = error_path(response.url());
    let retry_after = parse_retry_after(response.headers(), SystemTime::now());
    // A body that cannot be read is not worth more than the status itself.
    let body = response.bytes().await.unwrap_or_default();
    let (code, service_message) = service_error(shape, &body);
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
    let error = SourceError {
        system,
        kind,
        path: Some(path),
        status: Some(status.as_u16()),
        code,
        message,
    };
    if is_transient_status(status, idempotency) {
        Err(AttemptError::transient(error, retry_after))
    } else {
        Err(AttemptError::fatal(error))
    }
}

/// Turns a transport failure into an [`AttemptError`]; the URL (with its
/// query) is removed from reqwest's message.
pub fn transport_error(
    system: System,
    path: &str,
    idempotency: Idempotency,
    err: reqwest::Error,
) -> AttemptError {
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
        system,
        SourceErrorKind::Transport,
        format!("{what}: {detail}"),
    );
    error.path = Some(path.to_string());
    if retryable {
        AttemptError::transient(error, None)
    } else {
        AttemptError::fatal(error)
    }
}

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

/// Reads a success body as JSON of type `T`; anything else is
/// [`SourceErrorKind::InvalidPayload`] with serde's explanation.
pub async fn read_json<T: DeserializeOwned>(
    system: System,
    idempotency: Idempotency,
    response: Response,
) -> Result<T, AttemptError> {
    let path = error_path(response.url());
    let body = response
        .bytes()
        .await
        .map_err(|e| transport_error(system, &path, idempotency, e))?;
    parse_json(system, &path, &body).map_err(AttemptError::fatal)
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

/// What a request carries.
#[derive(Clone)]
pub enum Payload {
    Empty,
    Json(serde_json::Value),
    /// `application/x-www-form-urlencoded` pairs (may hold a secret: never logged).
    Form(Vec<(String, String)>),
}

/// A JSON-over-HTTP client for one system: shared reqwest client, retries,
/// error shape.
#[derive(Clone)]
pub struct ServiceClient {
    system: System,
    http: reqwest::Client,
    retry: RetryPolicy,
    shape: ErrorShape,
}

impl std::fmt::Debug for ServiceClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceClient")
            .field("system", &self.system)
            .field("retry", &self.retry)
            .field("shape", &self.shape)
            .finish_non_exhaustive()
    }
}

impl ServiceClient {
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
        }
    }

    pub fn system(&self) -> System {
        self.system
    }

    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
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
        let tokens = match auth {
            Auth::Bearer(tokens) => Some(tokens),
            _ => None,
        };
        run_authorized(tokens, &self.retry, || async {
            let response = self
                .attempt(&method, url, payload, auth, idempotency)
                .await?;
            read_json(self.system, idempotency, response).await
        })
        .await
    }

    /// Sends a request with retries; returns the success response with its
    /// body unread.
    pub async fn call(
        &self,
        method: Method,
        url: &Url,
        payload: &Payload,
        auth: Auth<'_>,
        idempotency: Idempotency,
    ) -> Result<Response, SourceError> {
        let tokens = match auth {
            Auth::Bearer(tokens) => Some(tokens),
            _ => None,
        };
        run_authorized(tokens, &self.retry, || {
            self.attempt(&method, url, payload, auth, idempotency)
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
            .map_err(|e| transport_error(self.system, &path, idempotency, e))?;
        check_status(self.system, method, self.shape, idempotency, response).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_never_carry_queries_or_credentials() {
        let url = Url::parse("https://user:pw@graph.example/v1.0/users?$skiptoken=SECRET").unwrap();
        assert_eq!(error_path(&url), "/v1.0/users");
    }

    #[test]
    fn redacted_urls_drop_credentials_and_queries() {
        let url = Url::parse("https://svc:hunter2@flow.example/idrecon?key=abc").unwrap();
        assert_eq!(redacted_url(&url), "https://flow.example/idrecon");
    }

    #[test]
    fn join_keeps_base_path() {
        let base = Url::parse("http://127.0.0.1:1/ifs/").unwrap();
        assert_eq!(
            join_path(&base, "/main/Users").as_str(),
            "http://127.0.0.1:1/ifs/main/Users"
        );
        let base = Url::parse("https://h").unwrap();
        assert_eq!(join_path(&base, "a/b").as_str(), "https://h/a/b");
    }

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

    #[test]
    fn insecure_http_only_to_loopback_unless_allowed() {
        let local = Url::parse("http://127.0.0.1:8080/").unwrap();
        let remote = Url::parse("http://ifs.example.com/").unwrap();
        assert!(require_secure(System::Ifs, "ifs.url", &local, false).is_ok());
        let e = require_secure(System::Ifs, "ifs.url", &remote, false).unwrap_err();
        assert!(e.message.contains("allow_insecure_http"));
        assert!(require_secure(System::Ifs, "ifs.url", &remote, true).is_ok());
    }
}
