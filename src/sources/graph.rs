//! Azure AD users through Microsoft Graph, over the shared HTTP layer
//! ([`crate::net`]): every page is one request whose status is checked,
//! whose body is read within the limits, retried with backoff honouring
//! `Retry-After`, and re-authorised once after a 401. No redirect is ever
//! followed (graph-rs-sdk's client follows two, so it is not used), and
//! every link Graph hands back must stay on the configured origin.
//!
//! Every Graph URL — listing, delta, group members, single user, and the
//! mail sender's `sendMail` — is built by [`graph_api_url`], whether
//! `azure.graph_url` is written as an origin or with `/v1.0`.

use crate::config::AzureConfig;
use crate::model::AadUser;
use crate::net::client::{build_client, Auth, ErrorShape, HttpSettings, ServiceClient};
use crate::net::limits::Limits;
use crate::net::origin::{error_path, redacted_url, require_secure, same_origin};
use crate::net::token::AccessTokenSource;
use crate::sources::{AadChange, AzureFetch, SourceError, SourceErrorKind, System};
use idrecon_core::delta::apply_delta;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::Deserialize;
use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use url::Url;

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

/// The Graph API version idrecon speaks.
const API_VERSION: &str = "v1.0";

/// Characters left as they are in a path segment: unreserved characters
/// and `@`. Everything else (`'`, `#`, `+`, `/`, `%`, spaces, non-ASCII) is
/// percent-encoded.
const USER_KEY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'@');

/// `{graph_url}/v1.0/{segments…}`: the one function that builds Graph URLs.
/// `graph_url` may be an origin (`https://graph.microsoft.com`), carry a
/// path prefix (a proxy or the simulator), or already end in `/v1.0`. Each
/// segment is percent-encoded as one path segment; `.` and `..` are
/// encoded too, so a user key never climbs the path.
pub fn graph_api_url(graph_url: &Url, segments: &[&str]) -> Url {
    let base = graph_url.path().trim_end_matches('/');
    let base = base.strip_suffix("/v1.0").unwrap_or(base);
    let mut path = format!("{base}/{API_VERSION}");
    for segment in segments {
        path.push('/');
        match *segment {
            "." => path.push_str("%2E"),
            ".." => path.push_str("%2E%2E"),
            other => path.extend(utf8_percent_encode(other, USER_KEY)),
        }
    }
    let mut url = graph_url.clone();
    url.set_path(&path);
    url.set_query(None);
    url.set_fragment(None);
    url
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
    api: ServiceClient,
    tokens: Arc<dyn AccessTokenSource>,
    /// `azure.graph_url` as configured.
    graph_url: Url,
    /// `{graph_url}/v1.0`: every link Graph hands back must share its origin.
    endpoint: Url,
    group_id: Option<String>,
    include_guests: bool,
    limits: Limits,
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
        if cfg.graph_url.cannot_be_a_base() {
            return Err(SourceError::new(
                System::Azure,
                SourceErrorKind::Config,
                "azure.graph_url cannot take a path (expected e.g. https://graph.microsoft.com)",
            ));
        }
        let endpoint = graph_api_url(&cfg.graph_url, &[]);
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
        let http = build_client(System::Azure, settings)?;
        Ok(GraphSource {
            api: ServiceClient::from_settings(System::Azure, http, settings, ErrorShape::OData),
            tokens,
            graph_url: cfg.graph_url.clone(),
            endpoint,
            group_id: cfg.group_id.clone().filter(|g| !g.trim().is_empty()),
            include_guests: cfg.include_guests,
            limits: settings.limits,
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
        self.walk(self.first_listing_page(PAGE_SIZE), &mut changes)
            .await?;
        Ok(self.scoped(apply_delta(Vec::new(), changes)))
    }

    /// Reads one user (or one member of the group): proves that the token
    /// is accepted and that the app may list users (`idrecon check`).
    /// Returns how many users the page held (0 or 1).
    pub async fn probe(&self) -> Result<usize, SourceError> {
        let page: GraphPage = self.get_page(&self.first_listing_page("1")).await?;
        Ok(page.value.len())
    }

    /// The first page of the listing: all users, or the transitive user
    /// members of the group, `top` at a time.
    fn first_listing_page(&self, top: &str) -> Url {
        let mut url = match &self.group_id {
            Some(group) => graph_api_url(
                &self.graph_url,
                &[
                    "groups",
                    group.as_str(),
                    "transitiveMembers",
                    "microsoft.graph.user",
                ],
            ),
            None => graph_api_url(&self.graph_url, &["users"]),
        };
        url.set_query(Some(&format!(
            "$select={}&$top={top}",
            USER_SELECT.join(",")
        )));
        url
    }

    /// A delta query: without a link, the initial full round
    /// ([`AzureFetch::Full`] with the new delta link); with the stored link,
    /// only the changes since ([`AzureFetch::Delta`]). An expired link is
    /// [`SourceErrorKind::DeltaExpired`].
    pub async fn fetch_delta(&self, delta_link: Option<&str>) -> Result<AzureFetch, SourceError> {
        let mut changes = Vec::new();
        let new_link = match delta_link {
            None => {
                let mut first = graph_api_url(&self.graph_url, &["users", "delta"]);
                first.set_query(Some(&format!("$select={}", USER_SELECT.join(","))));
                self.walk(first, &mut changes).await?
            }
            Some(link) => {
                let url = self.checked_link(link, "stored delta link")?;
                self.walk(url, &mut changes)
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
            e.path = Some(error_path(&graph_api_url(
                &self.graph_url,
                &["users", "delta"],
            )));
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
        let mut url = graph_api_url(&self.graph_url, &["users", key]);
        url.set_query(Some(&format!("$select={}", USER_SELECT.join(","))));
        let value: serde_json::Value = match self.get_page(&url).await {
            Ok(value) => value,
            Err(e) if e.status == Some(404) => return Ok(None),
            Err(e) => return Err(e),
        };
        let user = self.user_from_value(value, error_path(&url).as_str())?;
        Ok(self.scoped(vec![user]).pop())
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

    /// Walks a collection from its first page through every
    /// `@odata.nextLink`, collecting each entry as a change. Returns the
    /// final `@odata.deltaLink`, if any.
    async fn walk(
        &self,
        first: Url,
        changes: &mut Vec<AadChange>,
    ) -> Result<Option<String>, SourceError> {
        let mut page: GraphPage = self.get_page(&first).await?;
        let mut seen = HashSet::new();
        let mut pages = 1usize;
        loop {
            for value in std::mem::take(&mut page.value) {
                changes.push(self.change_from_value(value)?);
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
            page = self.get_page(&url).await?;
            pages += 1;
        }
    }

    /// One page (or object): retried on throttling and transient errors, a
    /// new token after a 401, the status checked, the body read within the
    /// limit and parsed.
    async fn get_page<T: serde::de::DeserializeOwned>(&self, url: &Url) -> Result<T, SourceError> {
        self.api
            .get_json(url, Auth::Bearer(self.tokens.as_ref()))
            .await
    }

    /// One entry of a users page (or of a delta page) as a change, its
    /// text fields within `limits.max_field_chars`.
    fn change_from_value(&self, value: serde_json::Value) -> Result<AadChange, SourceError> {
        let change = change_from_value(value)?;
        if let AadChange::Upsert(user) = &change {
            self.check_user(user)?;
        }
        Ok(change)
    }

    /// A user from its JSON, its text fields within `limits.max_field_chars`.
    fn user_from_value(
        &self,
        value: serde_json::Value,
        context: &str,
    ) -> Result<AadUser, SourceError> {
        let user = user_from_value(value, context)?;
        self.check_user(&user)?;
        Ok(user)
    }

    fn check_user(&self, user: &AadUser) -> Result<(), SourceError> {
        self.limits.check_fields(
            System::Azure,
            &user.id,
            [
                ("id", Some(user.id.as_str())),
                ("userPrincipalName", Some(user.user_principal_name.as_str())),
                ("mail", user.mail.as_deref()),
                ("displayName", user.display_name.as_deref()),
                ("employeeId", user.employee_id.as_deref()),
                (
                    "onPremisesSamAccountName",
                    user.on_premises_sam_account_name.as_deref(),
                ),
            ],
        )
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
    use async_trait::async_trait;

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
            assert_eq!(src.endpoint.as_str(), endpoint, "{graph_url}");
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
