//! Azure AD users through Microsoft Graph, sent with graph-rs-sdk.
//!
//! The SDK builds and sends the requests (`users().list_user()`,
//! `users().delta()`, `group(id).transitive_members()`, and `custom()` with
//! the URL replaced for `@odata.nextLink`/`@odata.deltaLink`). Its `paging()`
//! stream is never used: a 429 in the middle of a listing would end that
//! stream without an error. Every page here is one request whose status is
//! checked, retried with backoff honouring `Retry-After`, and re-authorised
//! once after a 401. Tokens come from [`crate::auth`] through a small
//! [`ClientApplication`] bridge, so the login URL stays configurable.

use crate::auth::AccessTokenSource;
use crate::config::AzureConfig;
use crate::model::AadUser;
use crate::sources::http::{
    check_status, error_path, join_path, parse_json, redacted_url, require_secure, same_origin,
    transport_error, ErrorShape, HttpSettings, Idempotency,
};
use crate::sources::retry::{run_authorized, AttemptError, RetryPolicy};
use crate::sources::{AadChange, AzureFetch, SourceError, SourceErrorKind, System};
use async_trait::async_trait;
use graph_core::identity::ForceTokenRefresh;
use graph_rs_sdk::error::{AuthExecutionError, AuthExecutionResult, AuthorizationFailure};
use graph_rs_sdk::http::{Method, Url};
use graph_rs_sdk::identity::{AllowedHostValidator, ClientApplication, HostIs};
use graph_rs_sdk::{GraphClient, GraphClientConfiguration, GraphFailure, GraphResult, ODataQuery};
use idrecon_core::delta::apply_delta;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use secrecy::ExposeSecret;
use serde::Deserialize;
use std::collections::HashSet;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

/// The user properties idrecon reads.
pub const USER_SELECT: [&str; 8] = [
    "id",
    "userPrincipalName",
    "mail",
    "displayName",
    "accountEnabled",
    "employeeId",
    "onPremisesSamAccountName",
    "userType",
];

/// Largest page Graph serves for users.
const PAGE_SIZE: &str = "999";

/// Characters left as they are in a user key path segment: unreserved
/// characters and `@`. Everything else (`'`, `#`, `+`, `/`, `%`, spaces,
/// non-ASCII) is percent-encoded.
const USER_KEY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'@');

/// Hands tokens from an [`AccessTokenSource`] to graph-rs-sdk.
#[derive(Clone)]
struct TokenBridge(Arc<dyn AccessTokenSource>);

#[async_trait]
impl ClientApplication for TokenBridge {
    fn get_token_silent(&mut self) -> AuthExecutionResult<String> {
        Err(AuthExecutionError::Authorization(
            AuthorizationFailure::RequiredValue {
                name: "access_token".into(),
                message: Some("idrecon only uses the async Graph client".into()),
            },
        ))
    }

    async fn get_token_silent_async(&mut self) -> AuthExecutionResult<String> {
        self.0
            .access_token()
            .await
            .map(|t| t.expose_secret().to_string())
            .map_err(|e| {
                AuthExecutionError::Authorization(AuthorizationFailure::RequiredValue {
                    name: "access_token".into(),
                    message: Some(e.to_string()),
                })
            })
    }

    fn with_force_token_refresh(&mut self, _force: ForceTokenRefresh) {}
}

/// One page of a Graph collection.
#[derive(Deserialize)]
struct GraphPage {
    value: Vec<serde_json::Value>,
    #[serde(rename = "@odata.nextLink", default)]
    next_link: Option<String>,
    #[serde(rename = "@odata.deltaLink", default)]
    delta_link: Option<String>,
}

/// Reads Azure AD users from Microsoft Graph.
pub struct GraphSource {
    client: GraphClient,
    tokens: Arc<dyn AccessTokenSource>,
    retry: RetryPolicy,
    /// `{graph_url}/v1.0`: every link Graph hands back must share its origin.
    endpoint: Url,
    group_id: Option<String>,
    include_guests: bool,
}

impl fmt::Debug for GraphSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GraphSource")
            .field("endpoint", &redacted_url(&self.endpoint))
            .field("group_id", &self.group_id)
            .field("include_guests", &self.include_guests)
            .finish_non_exhaustive()
    }
}

impl GraphSource {
    /// A Graph reader for `cfg`, with tokens from `tokens` (see
    /// [`crate::auth::ClientCredentials::azure`]).
    pub fn new(
        cfg: &AzureConfig,
        tokens: Arc<dyn AccessTokenSource>,
        settings: &HttpSettings,
    ) -> Result<Self, SourceError> {
        require_secure(
            System::Azure,
            "azure.graph_url",
            &cfg.graph_url,
            cfg.allow_insecure_http,
        )?;
        let endpoint = if cfg
            .graph_url
            .path()
            .trim_end_matches('/')
            .ends_with("/v1.0")
        {
            join_path(&cfg.graph_url, "")
        } else {
            join_path(&cfg.graph_url, "v1.0")
        };
        let endpoint = Url::parse(endpoint.as_str().trim_end_matches('/')).map_err(|e| {
            SourceError::new(
                System::Azure,
                SourceErrorKind::Config,
                format!("azure.graph_url is not usable: {e}"),
            )
        })?;
        if let Some(group) = &cfg.group_id {
            if group.trim().is_empty() || !group.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
            {
                return Err(SourceError::new(
                    System::Azure,
                    SourceErrorKind::Config,
                    format!("azure.group_id {group:?} is not a group object ID (GUID)"),
                ));
            }
        }
        let configuration = GraphClientConfiguration::new()
            .client_application(TokenBridge(tokens.clone()))
            .timeout(settings.request_timeout)
            .connect_timeout(settings.connect_timeout)
            .https_only(endpoint.scheme() == "https");
        let mut client = GraphClient::from(configuration);
        // `use_endpoint` panics on hosts outside Microsoft's list; a
        // simulator or a proxy host goes through the test-util override.
        match AllowedHostValidator::default().validate_url(&endpoint) {
            HostIs::Valid if endpoint.scheme() == "https" => client.use_endpoint(&endpoint),
            _ => client.use_test_endpoint(&endpoint),
        }
        Ok(GraphSource {
            client,
            tokens,
            retry: settings.retry.clone(),
            endpoint,
            group_id: cfg.group_id.clone().filter(|g| !g.trim().is_empty()),
            include_guests: cfg.include_guests,
        })
    }

    /// `"users"`, or `"group:<id>"` when only a group's members are read.
    pub fn scope(&self) -> String {
        match &self.group_id {
            Some(id) => format!("group:{id}"),
            None => "users".to_string(),
        }
    }

    /// Whether a group scope is configured (delta queries cover all users only).
    pub fn has_group_scope(&self) -> bool {
        self.group_id.is_some()
    }

    /// Every user (or every transitive user member of the group), guests
    /// dropped unless configured.
    pub async fn fetch_full(&self) -> Result<Vec<AadUser>, SourceError> {
        let mut changes = Vec::new();
        let first = || self.first_listing_page(PAGE_SIZE);
        self.walk(first, &mut changes).await?;
        Ok(self.scoped(apply_delta(Vec::new(), changes)))
    }

    /// Reads one user (or one member of the group): proves that the token
    /// is accepted and that the app may list users (`idrecon check`).
    /// Returns how many users the page held (0 or 1).
    pub async fn probe(&self) -> Result<usize, SourceError> {
        let first = || self.first_listing_page("1");
        let page: GraphPage = self.get_page(&first).await?;
        Ok(page.value.len())
    }

    /// The first page of the listing: all users, or the transitive user
    /// members of the group, `top` at a time.
    fn first_listing_page(
        &self,
        top: &str,
    ) -> impl Future<Output = GraphResult<reqwest::Response>> + Send + '_ {
        match &self.group_id {
            Some(group) => self
                .client
                .group(group.as_str())
                .transitive_members()
                .list_transitive_members()
                .extend_path(&["microsoft.graph.user"])
                .select(&USER_SELECT)
                .top(top)
                .send(),
            None => self
                .client
                .users()
                .list_user()
                .select(&USER_SELECT)
                .top(top)
                .send(),
        }
    }

    /// A delta query: without a link, the initial full round
    /// ([`AzureFetch::Full`] with the new delta link); with the stored link,
    /// only the changes since ([`AzureFetch::Delta`]). An expired link is
    /// [`SourceErrorKind::DeltaExpired`].
    pub async fn fetch_delta(&self, delta_link: Option<&str>) -> Result<AzureFetch, SourceError> {
        let mut changes = Vec::new();
        let new_link = match delta_link {
            None => {
                let first = || self.client.users().delta().select(&USER_SELECT).send();
                self.walk(first, &mut changes).await?
            }
            Some(link) => {
                let url = self.checked_link(link, "stored delta link")?;
                let first = || self.send_to(&url);
                self.walk(first, &mut changes)
                    .await
                    .map_err(mark_delta_expired)?
            }
        };
        let new_link = new_link.ok_or_else(|| {
            let mut e = SourceError::new(
                System::Azure,
                SourceErrorKind::InvalidPayload,
                "the last delta page carries no @odata.deltaLink",
            );
            e.path = Some("/v1.0/users/delta".into());
            e
        })?;
        Ok(match delta_link {
            None => AzureFetch::Full {
                users: self.scoped(apply_delta(Vec::new(), changes)),
                delta_link: Some(new_link),
            },
            Some(_) => AzureFetch::Delta {
                changes: self.scoped_changes(changes),
                delta_link: new_link,
            },
        })
    }

    /// One user by object ID or UPN; `None` when Graph says 404 (or the user
    /// is a guest and guests are not included).
    pub async fn fetch_one(&self, upn_or_id: &str) -> Result<Option<AadUser>, SourceError> {
        let key = upn_or_id.trim();
        if key.is_empty() {
            return Err(SourceError::new(
                System::Azure,
                SourceErrorKind::Config,
                "cannot look up a user by an empty ID or UPN",
            ));
        }
        // Built by hand: the SDK's `user(id)` leaves `'` and `+` unencoded.
        let mut url = self.endpoint.clone();
        url.set_path(&format!(
            "{}/users/{}",
            self.endpoint.path().trim_end_matches('/'),
            utf8_percent_encode(key, USER_KEY)
        ));
        url.query_pairs_mut()
            .append_pair("$select", &USER_SELECT.join(","));
        let value = match self.get_page_value(|| self.send_to(&url)).await {
            Ok(value) => value,
            Err(e) if e.status == Some(404) => return Ok(None),
            Err(e) => return Err(e),
        };
        let user = user_from_value(value, error_path(&url).as_str())?;
        Ok(self.scoped(vec![user]).pop())
    }

    /// Sends a GET of an absolute URL through the SDK (`custom()` with the
    /// URL replaced): how next and delta links are followed.
    fn send_to(
        &self,
        url: &Url,
    ) -> impl Future<Output = GraphResult<reqwest::Response>> + Send + 'static {
        let mut handler = self.client.custom(Method::GET, None);
        *handler.as_mut() = url.clone();
        handler.send()
    }

    /// Parses a link Graph handed back (or the stored delta link) and makes
    /// sure it points at the configured Graph origin, so the token is never
    /// sent elsewhere.
    fn checked_link(&self, link: &str, what: &str) -> Result<Url, SourceError> {
        let url = Url::parse(link).map_err(|e| {
            SourceError::new(
                System::Azure,
                SourceErrorKind::InvalidPayload,
                format!("{what} is not a URL: {e}"),
            )
        })?;
        if !same_origin(&url, &self.endpoint) {
            let mut e = SourceError::new(
                System::Azure,
                SourceErrorKind::InvalidPayload,
                format!(
                    "{what} points at {} instead of the configured Graph URL {}",
                    url.origin().ascii_serialization(),
                    self.endpoint.origin().ascii_serialization()
                ),
            );
            e.path = Some(error_path(&url));
            return Err(e);
        }
        Ok(url)
    }

    /// Walks a collection from its first request through every
    /// `@odata.nextLink`, collecting each entry as a change. Returns the
    /// final `@odata.deltaLink`, if any.
    async fn walk<F, Fut>(
        &self,
        first: F,
        changes: &mut Vec<AadChange>,
    ) -> Result<Option<String>, SourceError>
    where
        F: Fn() -> Fut + Send + Sync,
        Fut: Future<Output = GraphResult<reqwest::Response>> + Send,
    {
        let mut page: GraphPage = self.get_page(&first).await?;
        let mut seen = HashSet::new();
        let mut pages = 1usize;
        loop {
            for value in std::mem::take(&mut page.value) {
                changes.push(change_from_value(value)?);
            }
            let Some(next) = page.next_link.take() else {
                tracing::debug!(pages, entries = changes.len(), "Graph listing complete");
                return Ok(page.delta_link);
            };
            if !seen.insert(next.clone()) {
                return Err(SourceError::new(
                    System::Azure,
                    SourceErrorKind::InvalidPayload,
                    format!(
                        "@odata.nextLink repeats after {pages} pages: the listing would never end"
                    ),
                ));
            }
            let url = self.checked_link(&next, "@odata.nextLink")?;
            page = self.get_page(&|| self.send_to(&url)).await?;
            pages += 1;
        }
    }

    /// One page: retried on throttling and transient errors, a new token
    /// after a 401, the status checked, the body parsed.
    async fn get_page<T, F, Fut>(&self, send: &F) -> Result<T, SourceError>
    where
        T: serde::de::DeserializeOwned,
        F: Fn() -> Fut + Send + Sync,
        Fut: Future<Output = GraphResult<reqwest::Response>> + Send,
    {
        run_authorized(Some(self.tokens.as_ref()), &self.retry, || async {
            // Fetch the token here first so a login failure keeps its own error.
            self.tokens.access_token().await?;
            let response = send().await.map_err(graph_failure)?;
            let response = check_status(
                System::Azure,
                &Method::GET,
                ErrorShape::OData,
                Idempotency::Safe,
                response,
            )
            .await?;
            let path = error_path(response.url());
            let body = response
                .bytes()
                .await
                .map_err(|e| transport_error(System::Azure, &path, Idempotency::Safe, e))?;
            parse_json(System::Azure, &path, &body).map_err(AttemptError::fatal)
        })
        .await
    }

    /// A single JSON object (not a collection).
    async fn get_page_value<F, Fut>(&self, send: F) -> Result<serde_json::Value, SourceError>
    where
        F: Fn() -> Fut + Send + Sync,
        Fut: Future<Output = GraphResult<reqwest::Response>> + Send,
    {
        self.get_page(&send).await
    }

    /// Drops guests unless they are included.
    fn scoped(&self, users: Vec<AadUser>) -> Vec<AadUser> {
        if self.include_guests {
            users
        } else {
            users.into_iter().filter(|u| !u.is_guest()).collect()
        }
    }

    /// Turns upserts of guests into removals unless guests are included (a
    /// member turned guest leaves the snapshot).
    fn scoped_changes(&self, changes: Vec<AadChange>) -> Vec<AadChange> {
        if self.include_guests {
            return changes;
        }
        changes
            .into_iter()
            .map(|change| match change {
                AadChange::Upsert(user) if user.is_guest() => AadChange::Removed {
                    id: user.id,
                    reason: "guest".to_string(),
                },
                other => other,
            })
            .collect()
    }
}

/// A graph-rs-sdk failure before or while sending. reqwest errors keep
/// their transport classification (and lose their URL); other SDK errors are
/// described by kind only, since their text may carry request details.
fn graph_failure(err: GraphFailure) -> AttemptError {
    let reqwest_failure = |e: reqwest::Error| {
        let path = e.url().map(error_path).unwrap_or_default();
        transport_error(System::Azure, &path, Idempotency::Safe, e)
    };
    match err {
        GraphFailure::ReqwestError(e) => reqwest_failure(e),
        // The SDK sends through a boxed tower service, so a reqwest failure
        // (refused or dropped connection, timeout) arrives boxed in `Other`.
        GraphFailure::Other(boxed) if boxed.is::<reqwest::Error>() => match boxed.downcast() {
            Ok(e) => reqwest_failure(*e),
            Err(_) => AttemptError::fatal(SourceError::new(
                System::Azure,
                SourceErrorKind::Transport,
                "graph-rs-sdk could not send the request",
            )),
        },
        other => {
            let what = match &other {
                GraphFailure::PreFlightError { .. } => {
                    "could not prepare the request (token or parameters)"
                }
                GraphFailure::UrlParse(_) => "could not build the request URL",
                GraphFailure::Io(_) => "I/O error",
                _ => "could not send the request",
            };
            AttemptError::fatal(SourceError::new(
                System::Azure,
                SourceErrorKind::Transport,
                format!("graph-rs-sdk {what}"),
            ))
        }
    }
}

/// 410 Gone or code `syncStateNotFound`/`resyncRequired`: the delta link
/// has expired and a full round is needed.
fn mark_delta_expired(mut err: SourceError) -> SourceError {
    let expired_code = err.code.as_deref().is_some_and(|c| {
        c.eq_ignore_ascii_case("syncStateNotFound") || c.eq_ignore_ascii_case("resyncRequired")
    });
    if err.status == Some(410) || expired_code {
        err.kind = SourceErrorKind::DeltaExpired;
        err.message = format!(
            "the stored delta link has expired, a full listing is needed: {}",
            err.message
        );
    }
    err
}

/// One entry of a users page (or of a delta page) as a change.
fn change_from_value(value: serde_json::Value) -> Result<AadChange, SourceError> {
    if let Some(removed) = value.get("@removed") {
        let id = value
            .get("id")
            .and_then(|v| v.as_str())
            .ok_or_else(|| {
                SourceError::new(
                    System::Azure,
                    SourceErrorKind::InvalidPayload,
                    "a removed entry in a delta page has no id",
                )
            })?
            .to_string();
        let reason = removed
            .get("reason")
            .and_then(|r| r.as_str())
            .unwrap_or("deleted")
            .to_string();
        return Ok(AadChange::Removed { id, reason });
    }
    user_from_value(value, "users").map(AadChange::Upsert)
}

/// A user from its JSON; errors name the user's id when it has one.
fn user_from_value(value: serde_json::Value, context: &str) -> Result<AadUser, SourceError> {
    let id = value.get("id").and_then(|v| v.as_str()).map(str::to_string);
    serde_json::from_value::<AadUser>(value).map_err(|e| {
        SourceError::new(
            System::Azure,
            SourceErrorKind::InvalidPayload,
            format!(
                "{context}: user {} is not a valid user object: {e}",
                id.as_deref().unwrap_or("(without id)")
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removed_entries_and_bad_users() {
        let removed = serde_json::json!({"id": "9", "@removed": {"reason": "changed"}});
        assert_eq!(
            change_from_value(removed).unwrap(),
            AadChange::Removed {
                id: "9".into(),
                reason: "changed".into()
            }
        );
        let bad = serde_json::json!({"id": "7", "accountEnabled": true});
        let err = change_from_value(bad).unwrap_err();
        assert_eq!(err.kind, SourceErrorKind::InvalidPayload);
        assert!(err.message.contains("user 7"), "{err}");
        assert!(err.message.contains("userPrincipalName"), "{err}");
    }

    struct NoTokens;

    #[async_trait]
    impl AccessTokenSource for NoTokens {
        async fn access_token(&self) -> Result<secrecy::SecretString, SourceError> {
            Err(SourceError::new(
                System::Azure,
                SourceErrorKind::Auth,
                "none",
            ))
        }
        async fn invalidate(&self) {}
    }

    fn source_for(graph_url: &str) -> Result<GraphSource, SourceError> {
        let cfg = AzureConfig {
            tenant_id: "t".into(),
            client_id: "c".into(),
            credential: crate::config::AzureCredential::Secret(secrecy::SecretString::from("s")),
            login_url: Url::parse("https://login.microsoftonline.us").unwrap(),
            graph_url: Url::parse(graph_url).unwrap(),
            group_id: None,
            include_guests: false,
            allow_insecure_http: false,
        };
        GraphSource::new(&cfg, Arc::new(NoTokens), &HttpSettings::default())
    }

    #[test]
    fn endpoints_for_clouds_proxies_and_simulators_never_panic() {
        for (graph_url, endpoint) in [
            (
                "https://graph.microsoft.com",
                "https://graph.microsoft.com/v1.0",
            ),
            (
                "https://graph.microsoft.us/",
                "https://graph.microsoft.us/v1.0",
            ),
            (
                "https://microsoftgraph.chinacloudapi.cn",
                "https://microsoftgraph.chinacloudapi.cn/v1.0",
            ),
            (
                "https://graph.microsoft.com/v1.0",
                "https://graph.microsoft.com/v1.0",
            ),
            (
                "https://graph-proxy.corp.example/ms",
                "https://graph-proxy.corp.example/ms/v1.0",
            ),
            (
                "http://127.0.0.1:8080/graph",
                "http://127.0.0.1:8080/graph/v1.0",
            ),
        ] {
            let src = source_for(graph_url).unwrap();
            assert_eq!(src.client.url().as_str(), endpoint, "{graph_url}");
        }
        let err = source_for("http://graph.example.com").unwrap_err();
        assert_eq!(err.kind, SourceErrorKind::Config);
    }

    #[test]
    fn user_keys_are_fully_encoded() {
        let enc = utf8_percent_encode("o'brien+x#EXT#@contoso.com", USER_KEY).to_string();
        assert_eq!(enc, "o%27brien%2Bx%23EXT%23@contoso.com");
    }
}
