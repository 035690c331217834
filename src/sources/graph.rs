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
use crate::model::{AadUser, AadUserFields};
use crate::net::client::{build_client, Auth, ErrorShape, HttpSettings, ServiceClient};
use crate::net::limits::Limits;
use crate::net::origin::{error_path, redacted_url, require_secure, same_origin};
use crate::net::token::AccessTokenSource;
use crate::sources::{AadChange, AzureFetch, ListingLimits, SourceError, SourceErrorKind, System};
use compact_str::CompactString;
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

/// How many times a walk starts again from its first page after Graph
/// said its `$skiptoken` expired (`Directory_ExpiredPageToken`) before
/// giving up.
const MAX_WALK_RESTARTS: u32 = 2;

/// Graph's code for a `$skiptoken` that expired in the middle of a walk.
const EXPIRED_PAGE_TOKEN: &str = "Directory_ExpiredPageToken";

/// A user entry of a users, group-members or delta page, as Graph sends it:
/// parsed straight from the page, never through an intermediate JSON tree.
/// Properties Graph never set are omitted (`None`), as are the properties
/// of an `@removed` entry.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireUser {
    #[serde(default)]
    id: Option<CompactString>,
    #[serde(rename = "@removed", default)]
    removed: Option<WireRemoved>,
    #[serde(default)]
    user_principal_name: Option<CompactString>,
    #[serde(default)]
    mail: Option<CompactString>,
    #[serde(default)]
    display_name: Option<CompactString>,
    #[serde(default)]
    account_enabled: Option<bool>,
    #[serde(default)]
    employee_id: Option<CompactString>,
    #[serde(default)]
    on_premises_sam_account_name: Option<CompactString>,
    #[serde(default)]
    user_type: Option<CompactString>,
}

#[derive(Deserialize)]
struct WireRemoved {
    #[serde(default)]
    reason: Option<String>,
}

/// One page of a Graph collection.
#[derive(Deserialize)]
struct GraphPage {
    value: Vec<WireUser>,
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
    limits: ListingLimits,
    /// `limits.max_field_chars` (and the body limit, in `api`).
    field_limits: Limits,
}

/// Why a walk stopped early.
enum WalkStop {
    /// Graph said the `$skiptoken` of a later page expired: start again.
    PageTokenExpired(SourceError),
    Failed(SourceError),
}

impl From<SourceError> for WalkStop {
    fn from(e: SourceError) -> Self {
        WalkStop::Failed(e)
    }
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
            limits: ListingLimits::default(),
            field_limits: settings.limits,
        })
    }

    /// The same reader with other listing bounds (`limits.max_pages`).
    pub fn with_limits(mut self, limits: ListingLimits) -> Self {
        self.limits = limits;
        self
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
        self.walk(&self.first_listing_page(PAGE_SIZE), &mut changes)
            .await?;
        Ok(self.scoped_users(changes))
    }

    /// Reads one user (or one member of the group): proves that the token
    /// is accepted and that the app may list users (`idrecon check`).
    /// Returns how many users the page held (0 or 1).
    pub async fn probe(&self) -> Result<usize, SourceError> {
        let page: GraphPage = self.get_page(&self.first_listing_page("1")).await?;
        let path = self.listing_path();
        for wire in page.value.iter() {
            check_readable(wire, &path, self.group_id.is_some())?;
        }
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

    /// A delta query. Without a link, a full listing plus a delta link for
    /// the next run: `$deltatoken=latest` is taken first (no users, a link
    /// "from now on"), then `/users` is listed in pages of 999, so every
    /// change made during the listing still comes with the next delta
    /// ([`AzureFetch::Full`]). With the stored link, only the changes since
    /// ([`AzureFetch::Delta`]). A link that expired, or that no longer
    /// fits `graph_url`, is [`SourceErrorKind::DeltaExpired`]: the caller
    /// lists in full once.
    pub async fn fetch_delta(&self, delta_link: Option<&str>) -> Result<AzureFetch, SourceError> {
        let Some(link) = delta_link else {
            let delta_link = self.latest_delta_link().await?;
            let mut changes = Vec::new();
            self.walk(&self.first_listing_page(PAGE_SIZE), &mut changes)
                .await?;
            return Ok(AzureFetch::Full {
                users: self.scoped_users(changes),
                delta_link: Some(delta_link),
                fallback: None,
            });
        };
        let url = self
            .checked_link(link, "the stored delta link")
            .map_err(|mut e| {
                // A link for another origin (graph_url changed, say from
                // 127.0.0.1 to localhost) is never sent; a full listing
                // replaces it.
                e.kind = SourceErrorKind::DeltaExpired;
                e
            })?;
        let mut changes = Vec::new();
        let new_link = self
            .walk(&url, &mut changes)
            .await
            .map_err(mark_delta_expired)?
            .ok_or_else(|| no_delta_link(&url))?;
        Ok(AzureFetch::Delta {
            changes: self.scoped_changes(changes),
            delta_link: new_link,
        })
    }

    /// `GET /users/delta?$select=…&$deltatoken=latest`: no users, and the
    /// delta link that reports every change from now on.
    async fn latest_delta_link(&self) -> Result<String, SourceError> {
        let mut url = graph_api_url(&self.graph_url, &["users", "delta"]);
        url.set_query(Some(&format!(
            "$select={}&$deltatoken=latest",
            USER_SELECT.join(",")
        )));
        // Any users it did send are covered by the listing that follows.
        let mut ignored = Vec::new();
        self.walk(&url, &mut ignored)
            .await?
            .ok_or_else(|| no_delta_link(&url))
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
        // `.` and `..` are path segments the URL would resolve away
        // (`/users/.` is `/users/`, `/users/..` is `/v1.0/`), in any
        // percent-encoding: no user has such a key.
        if key.chars().all(|c| c == '.') {
            return Err(SourceError::new(
                System::Azure,
                SourceErrorKind::Config,
                format!("{key:?} is not a user principal name or object ID"),
            ));
        }
        let mut url = graph_api_url(&self.graph_url, &["users", key]);
        url.set_query(Some(&format!("$select={}", USER_SELECT.join(","))));
        let wire: WireUser = match self.get_page(&url).await {
            Ok(wire) => wire,
            Err(e) if e.status == Some(404) => return Ok(None),
            Err(e) => return Err(e),
        };
        let path = error_path(&url);
        check_readable(&wire, &path, false)?;
        let user = user_from_wire(wire, &path)?;
        self.check_fields(&user)?;
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

    /// Walks a collection from its first request through every
    /// `@odata.nextLink`, collecting each entry as a change. Returns the
    /// final `@odata.deltaLink`, if any. When Graph says a later page's
    /// `$skiptoken` expired, the walk starts again from its first page (at
    /// most [`MAX_WALK_RESTARTS`] times), with what it had collected dropped.
    async fn walk(
        &self,
        first: &Url,
        changes: &mut Vec<AadChange>,
    ) -> Result<Option<String>, SourceError> {
        let mut restarts = 0;
        loop {
            changes.clear();
            match self.walk_once(first, changes).await {
                Ok(link) => return Ok(link),
                Err(WalkStop::Failed(e)) => return Err(e),
                Err(WalkStop::PageTokenExpired(mut e)) => {
                    if restarts >= MAX_WALK_RESTARTS {
                        e.message = format!(
                            "the listing's page token expired again after {restarts} fresh starts from the first page: {}",
                            e.message
                        );
                        return Err(e);
                    }
                    restarts += 1;
                    tracing::warn!(
                        restarts,
                        "Graph: a page token expired in the middle of a listing; starting again from the first page"
                    );
                }
            }
        }
    }

    /// One walk from the first page to the last (see [`Self::walk`]).
    async fn walk_once(
        &self,
        first: &Url,
        changes: &mut Vec<AadChange>,
    ) -> Result<Option<String>, WalkStop> {
        let mut page: GraphPage = self.get_page(first).await?;
        let mut seen = HashSet::new();
        let mut pages = 1u64;
        let path = self.listing_path();
        loop {
            changes.reserve(page.value.len());
            for wire in std::mem::take(&mut page.value) {
                changes.push(self.change_from_wire(wire, &path)?);
            }
            let Some(next) = page.next_link.take() else {
                tracing::debug!(pages, entries = changes.len(), "Graph listing complete");
                // Stored and sent with a token on the next run: it must
                // point at the configured Graph origin too.
                if let Some(link) = &page.delta_link {
                    self.checked_link(link, "@odata.deltaLink")?;
                }
                return Ok(page.delta_link);
            };
            if !seen.insert(next.clone()) {
                return Err(SourceError::new(
                    System::Azure,
                    SourceErrorKind::InvalidPayload,
                    format!(
                        "@odata.nextLink repeats after {pages} pages: the listing would never end"
                    ),
                )
                .into());
            }
            if pages >= self.limits.max_pages {
                return Err(self.limits.exceeded(System::Azure, &path).into());
            }
            let url = self.checked_link(&next, "@odata.nextLink")?;
            page = match self.get_page(&url).await {
                Ok(page) => page,
                Err(e) if is_expired_page_token(&e) => return Err(WalkStop::PageTokenExpired(e)),
                Err(e) => return Err(e.into()),
            };
            pages += 1;
        }
    }

    /// The listing's path for errors: `/users` or the group's members.
    fn listing_path(&self) -> String {
        let base = self.endpoint.path().trim_end_matches('/');
        match &self.group_id {
            Some(group) => format!("{base}/groups/{group}/transitiveMembers"),
            None => format!("{base}/users"),
        }
    }

    /// One entry of a users page (or of a delta page) as a change.
    fn change_from_wire(&self, wire: WireUser, path: &str) -> Result<AadChange, SourceError> {
        if let Some(removed) = wire.removed {
            let id = wire.id.ok_or_else(|| {
                SourceError::new(
                    System::Azure,
                    SourceErrorKind::InvalidPayload,
                    "a removed entry in a delta page has no id",
                )
            })?;
            let reason = removed.reason.unwrap_or_else(|| "deleted".to_string());
            return Ok(AadChange::Removed {
                id: id.into(),
                reason,
            });
        }
        check_readable(&wire, path, self.group_id.is_some())?;
        let user = user_from_wire(wire, path)?;
        self.check_fields(&user)?;
        Ok(AadChange::Upsert(user))
    }

    /// A user's text fields within `limits.max_field_chars`.
    fn check_fields(&self, user: &AadUser) -> Result<(), SourceError> {
        self.field_limits.check_fields(
            System::Azure,
            user.id(),
            [
                ("id", Some(user.id())),
                ("userPrincipalName", Some(user.user_principal_name())),
                ("mail", user.mail()),
                ("displayName", user.display_name()),
                ("employeeId", user.employee_id()),
                (
                    "onPremisesSamAccountName",
                    user.on_premises_sam_account_name(),
                ),
            ],
        )
    }

    /// One page (or object): retried on throttling and transient errors, a
    /// new token after a 401, the status checked, the body read within the
    /// limit and parsed.
    async fn get_page<T: serde::de::DeserializeOwned>(&self, url: &Url) -> Result<T, SourceError> {
        self.api
            .get_json(url, Auth::Bearer(self.tokens.as_ref()))
            .await
    }

    /// The users of a complete listing (last entry wins), guests dropped
    /// unless included.
    fn scoped_users(&self, changes: Vec<AadChange>) -> Vec<AadUser> {
        self.scoped(apply_delta(Vec::new(), changes))
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
                    id: user.id().into(),
                    reason: "guest".to_string(),
                },
                other => other,
            })
            .collect()
    }
}

/// The error for a delta walk that ended without `@odata.deltaLink`.
fn no_delta_link(url: &Url) -> SourceError {
    let mut e = SourceError::new(
        System::Azure,
        SourceErrorKind::InvalidPayload,
        "the last delta page carries no @odata.deltaLink",
    );
    e.path = Some(error_path(url));
    e
}

/// `400 Directory_ExpiredPageToken`: the `$skiptoken` of a page expired.
fn is_expired_page_token(err: &SourceError) -> bool {
    err.status == Some(400)
        && err
            .code
            .as_deref()
            .is_some_and(|c| c.eq_ignore_ascii_case(EXPIRED_PAGE_TOKEN))
}

/// Whether a delta error is one of the forms Graph uses for a sync state
/// (delta token) it no longer has: `410 Gone` (with a `Location` to start
/// over), or a 4xx with a code such as `syncStateNotFound`,
/// `syncStateInvalid` or `resyncRequired` (docs/external-apis.md, "Delta").
pub fn is_delta_expiry(err: &SourceError) -> bool {
    let Some(status) = err.status else {
        return false;
    };
    if status == 410 {
        return true;
    }
    if !(400..500).contains(&status) || matches!(status, 401 | 403 | 429) {
        return false;
    }
    err.code.as_deref().is_some_and(|code| {
        let code = code.to_ascii_lowercase();
        code.contains("syncstate")
            || code.contains("resync")
            || code.contains("expireddeltatoken")
            || code.contains("invaliddeltatoken")
    })
}

/// Marks an expired delta link as [`SourceErrorKind::DeltaExpired`]: a
/// full listing is needed.
fn mark_delta_expired(mut err: SourceError) -> SourceError {
    if is_delta_expiry(&err) {
        err.kind = SourceErrorKind::DeltaExpired;
        err.message = format!(
            "the stored delta link has expired, a full listing is needed: {}",
            err.message
        );
    }
    err
}

/// Graph answers a member of a group with only `@odata.type` and `id`,
/// every other property null or absent, when the app may read group
/// memberships (`GroupMember.Read.All`) but not users (`User.Read.All`).
/// That is a missing permission, never data: nothing is concluded from it.
fn check_readable(wire: &WireUser, path: &str, group: bool) -> Result<(), SourceError> {
    let unreadable = wire.user_principal_name.is_none()
        && wire.account_enabled.is_none()
        && wire.display_name.is_none()
        && wire.mail.is_none();
    if !unreadable {
        return Ok(());
    }
    let mut e = SourceError::new(
        System::Azure,
        SourceErrorKind::Auth,
        format!(
            "Graph sent user {} without any of its properties (only its id){}: the app registration lacks the application permission User.Read.All; grant it (with admin consent) and run again",
            wire.id.as_deref().unwrap_or("(without id)"),
            if group {
                ", as it does for group members when only GroupMember.Read.All is granted"
            } else {
                ""
            }
        ),
    );
    e.path = Some(path.to_string());
    Err(e)
}

/// A user from its wire form; errors name the user's id when it has one.
fn user_from_wire(wire: WireUser, path: &str) -> Result<AadUser, SourceError> {
    let invalid = |what: &str, id: Option<&str>| {
        let mut e = SourceError::new(
            System::Azure,
            SourceErrorKind::InvalidPayload,
            format!(
                "user {} is not a valid user object: {what}",
                id.unwrap_or("(without id)")
            ),
        );
        e.path = Some(path.to_string());
        e
    };
    let id = match wire.id {
        Some(id) if !id.trim().is_empty() => id,
        _ => return Err(invalid("it has no id", None)),
    };
    let user_principal_name = match wire.user_principal_name {
        Some(upn) if !upn.trim().is_empty() => upn,
        _ => return Err(invalid("missing field `userPrincipalName`", Some(&id))),
    };
    Ok(AadUser::from(AadUserFields {
        id,
        user_principal_name,
        mail: wire.mail,
        display_name: wire.display_name,
        // Always set by Graph; absent only when never set, which Entra
        // treats as enabled.
        account_enabled: wire.account_enabled.unwrap_or(true),
        employee_id: wire.employee_id,
        on_premises_sam_account_name: wire.on_premises_sam_account_name,
        user_type: wire.user_type,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;

    fn wire(json: serde_json::Value) -> WireUser {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn removed_entries_and_bad_users() {
        let src = source_for("https://graph.microsoft.com").unwrap();
        let removed = wire(serde_json::json!({"id": "9", "@removed": {"reason": "changed"}}));
        assert_eq!(
            src.change_from_wire(removed, "/users").unwrap(),
            AadChange::Removed {
                id: "9".into(),
                reason: "changed".into()
            }
        );
        let bad = wire(serde_json::json!({"id": "7", "accountEnabled": true}));
        let err = src.change_from_wire(bad, "/users").unwrap_err();
        assert_eq!(err.kind, SourceErrorKind::InvalidPayload);
        assert!(err.message.contains("user 7"), "{err}");
        assert!(err.message.contains("userPrincipalName"), "{err}");
    }

    #[test]
    fn id_only_members_are_a_missing_permission() {
        let src = source_for("https://graph.microsoft.com").unwrap();
        let bare = wire(serde_json::json!({
            "@odata.type": "#microsoft.graph.user", "id": "5",
            "userPrincipalName": null, "accountEnabled": null, "mail": null
        }));
        let err = src.change_from_wire(bare, "/users").unwrap_err();
        assert_eq!(err.kind, SourceErrorKind::Auth);
        assert!(err.message.contains("User.Read.All"), "{err}");
    }

    #[test]
    fn every_documented_delta_expiry_form_is_recognised() {
        let err = |status: u16, code: &str| {
            let mut e = SourceError::new(System::Azure, SourceErrorKind::Http, "x");
            e.status = Some(status);
            e.code = Some(code.to_string()).filter(|c| !c.is_empty());
            e
        };
        for (status, code) in [
            (410, ""),
            (410, "Gone"),
            (400, "syncStateNotFound"),
            (400, "syncStateInvalid"),
            (400, "resyncRequired"),
            (404, "syncStateNotFound"),
            (409, "resyncRequired"),
        ] {
            assert!(is_delta_expiry(&err(status, code)), "{status} {code}");
        }
        for (status, code) in [
            (400, "BadRequest"),
            (403, "syncStateNotFound"),
            (500, "syncStateNotFound"),
            (429, "TooManyRequests"),
        ] {
            assert!(!is_delta_expiry(&err(status, code)), "{status} {code}");
        }
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
