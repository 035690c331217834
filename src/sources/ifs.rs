//! IFS Cloud users through the OData `Users` entity set.
//!
//! Pages with `$top`/`$skip` ordered by `Identity`; when a response carries
//! `@odata.nextLink`, that link is followed instead. A server may cap its
//! pages below `$top` without saying so, so a short page is never taken as
//! the end: only an empty page or the `@odata.count` of the first page
//! (`$count=true`) ends a listing. With the count known, the remaining
//! pages are fetched concurrently (`ifs.concurrency`). `Active` comes
//! either as a boolean or as the enum strings `"TRUE"`/`"FALSE"`.

use crate::auth::AccessTokenSource;
use crate::config::IfsConfig;
use crate::model::{IfsUser, NormalizedId};
use crate::sources::http::{
    error_path, join_path, redacted_url, require_secure, same_origin, Auth, ErrorShape,
    HttpSettings, ServiceClient,
};
use crate::sources::ifs_row::{IfsRow, Scalar};
use crate::sources::{ListingLimits, SourceError, SourceErrorKind, System};
use compact_str::CompactString;
use futures::stream::{self, StreamExt};
use hashbrown::hash_table::{Entry, HashTable};
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use rustc_hash::FxBuildHasher;
use serde::Deserialize;
use std::collections::HashSet;
use std::fmt;
use std::hash::BuildHasher;
use std::sync::Arc;
use url::Url;

/// Characters percent-encoded in an OData query value: spaces become `%20`
/// (never `+`, which some OData servers read literally), `&`, `=`, `+`, `#`
/// and `%` are escaped; `,`, `$`, `@`, `:` and `/` stay readable (the URL
/// parser itself encodes `'` as `%27`).
const QUERY_VALUE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'&')
    .add(b'+')
    .add(b'<')
    .add(b'=')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b']')
    .add(b'\\')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// One OData page.
#[derive(Deserialize)]
struct ODataPage {
    value: Vec<IfsRow>,
    #[serde(rename = "@odata.nextLink", default)]
    next_link: Option<String>,
    #[serde(rename = "@odata.count", default)]
    count: Option<u64>,
}

/// The users of one listing so far, unique by `Identity`.
#[derive(Default)]
struct Collected {
    users: Vec<IfsUser>,
    /// Positions in `users`, hashed by identity: 8 bytes a slot instead of
    /// a set of identity strings (24), ~15 MiB less at a million users.
    identities: HashTable<usize>,
}

/// The most users room is made for up front from a page's `@odata.count`
/// (the server's word: a larger count still works, the tables then grow).
const MAX_PRESIZED_USERS: u64 = 2_000_000;

impl Collected {
    /// Room for `count` users (capped at [`MAX_PRESIZED_USERS`]): a table
    /// that grows re-hashes every identity it holds, each a read of a user
    /// somewhere in memory (~2 % of a million-user run's CPU).
    fn reserve(&mut self, count: u64) {
        let n = count.min(MAX_PRESIZED_USERS) as usize;
        self.users.reserve(n.saturating_sub(self.users.len()));
        let users = &self.users;
        self.identities
            .reserve(n.saturating_sub(self.identities.len()), |&i| {
                FxBuildHasher.hash_one(users[i].identity())
            });
    }

    /// Adds `user` unless a user with its identity is there (then it is
    /// given back).
    fn insert(&mut self, user: IfsUser) -> Result<(), IfsUser> {
        let users = &self.users;
        let hash = |identity: &str| FxBuildHasher.hash_one(identity);
        let entry = self.identities.entry(
            hash(user.identity()),
            |&i| users[i].identity() == user.identity(),
            |&i| hash(users[i].identity()),
        );
        match entry {
            Entry::Occupied(_) => Err(user),
            Entry::Vacant(slot) => {
                slot.insert(users.len());
                self.users.push(user);
                Ok(())
            }
        }
    }
}

/// Reads IFS users.
pub struct IfsSource {
    api: ServiceClient,
    tokens: Arc<dyn AccessTokenSource>,
    users_url: Url,
    directory_id_field: String,
    email_field: Option<String>,
    page_size: u32,
    limits: ListingLimits,
}

impl fmt::Debug for IfsSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IfsSource")
            .field("users_url", &redacted_url(&self.users_url))
            .field("directory_id_field", &self.directory_id_field)
            .field("email_field", &self.email_field)
            .field("page_size", &self.page_size)
            .finish_non_exhaustive()
    }
}

/// An OData property name from the configuration: letters, digits, `_`.
fn check_field(name: &str, key: &str) -> Result<String, SourceError> {
    let name = name.trim();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(SourceError::new(
            System::Ifs,
            SourceErrorKind::Config,
            format!("{key} {name:?} is not an OData property name"),
        ));
    }
    Ok(name.to_string())
}

/// Quotes a string literal for `$filter`: `'` doubled, wrapped in `'`.
pub fn odata_string_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

impl IfsSource {
    /// An IFS reader for `cfg`, with tokens from `tokens` (see
    /// [`crate::auth::ClientCredentials::ifs`]) and the shared client `http`.
    pub fn new(
        cfg: &IfsConfig,
        tokens: Arc<dyn AccessTokenSource>,
        http: reqwest::Client,
        settings: &HttpSettings,
    ) -> Result<Self, SourceError> {
        require_secure(System::Ifs, "ifs.url", &cfg.url, cfg.allow_insecure_http)?;
        if cfg.page_size == 0 {
            return Err(SourceError::new(
                System::Ifs,
                SourceErrorKind::Config,
                "ifs.page_size must be at least 1",
            ));
        }
        let users_path = cfg.users_path.trim();
        if users_path.is_empty() || users_path.contains('?') || users_path.contains('#') {
            return Err(SourceError::new(
                System::Ifs,
                SourceErrorKind::Config,
                format!("ifs.users_path {users_path:?} must be a plain path"),
            ));
        }
        Ok(IfsSource {
            api: ServiceClient::from_settings(System::Ifs, http, settings, ErrorShape::OData),
            tokens,
            users_url: join_path(&cfg.url, users_path),
            directory_id_field: check_field(&cfg.directory_id_field, "ifs.directory_id_field")?,
            email_field: cfg
                .email_field
                .as_deref()
                .filter(|f| !f.trim().is_empty())
                .map(|f| check_field(f, "ifs.email_field"))
                .transpose()?,
            page_size: cfg.page_size,
            limits: ListingLimits::default(),
        })
    }

    /// The same reader with other listing bounds (`limits.max_pages`,
    /// `ifs.concurrency`).
    pub fn with_limits(mut self, limits: ListingLimits) -> Self {
        self.limits = limits;
        self
    }

    fn select(&self) -> String {
        let mut fields = vec![
            "Identity",
            "Description",
            self.directory_id_field.as_str(),
            "Active",
        ];
        if let Some(email) = &self.email_field {
            fields.push(email);
        }
        fields.join(",")
    }

    /// The users URL with the given `(name, value)` query options; values
    /// are percent-encoded, names (`$select`, …) are kept as written.
    fn query_url(&self, options: &[(&str, String)]) -> Url {
        let mut url = self.users_url.clone();
        let query = options
            .iter()
            .map(|(name, value)| format!("{name}={}", utf8_percent_encode(value, QUERY_VALUE)))
            .collect::<Vec<_>>()
            .join("&");
        url.set_query(Some(&query));
        url
    }

    /// Every IFS user: `$top`/`$skip` pages ordered by `Identity`, or the
    /// service's `@odata.nextLink` chain when it sends one.
    ///
    /// The first page asks for `$count=true`. With the count known, the
    /// other pages are fetched `ifs.concurrency` at a time, each at the
    /// offset the first page's size implies; a short page before the count
    /// is reached (a silent page cap) ends that and the listing goes on one
    /// page at a time from the rows received. Without a count, only an
    /// empty page ends it. The count is checked at the end.
    pub async fn fetch_all(&self) -> Result<Vec<IfsUser>, SourceError> {
        let mut got = Collected::default();
        let mut first_url = self.page_url(0, true);
        let first = match self.get_page(&first_url).await {
            // A service that refuses `$count` is paged to its empty page.
            Err(e) if e.status == Some(400) => {
                tracing::warn!(error = %e, "IFS refused $count=true; paging on to an empty page instead");
                first_url = self.page_url(0, false);
                self.get_page(&first_url).await?
            }
            other => other?,
        };
        let count = first.count;
        got.reserve(count.unwrap_or(0));
        let first_rows = first.value.len() as u64;
        let mut requests = 1u64;
        if let Some(next) = first.next_link.clone() {
            self.add_page(&mut got, first, &first_url)?;
            self.follow_links(&mut got, next, first_url, requests)
                .await?;
            self.check_count(&got, count)?;
            return Ok(got.users);
        }
        self.add_page(&mut got, first, &first_url)?;
        let mut offset = first_rows;
        if first_rows > 0 {
            if let Some(total) = count.filter(|&c| c > first_rows) {
                // The first page's size is what the server serves per page
                // (capped or not): the other pages are at its multiples.
                let step = first_rows;
                let offsets: Vec<u64> =
                    (1..).map(|k| k * step).take_while(|&o| o < total).collect();
                if offsets.len() as u64 + 1 > self.limits.max_pages {
                    return Err(self.limits.exceeded(System::Ifs, self.users_url.path()));
                }
                let concurrency = self.limits.ifs_concurrency.max(1);
                let mut pages = stream::iter(offsets)
                    .map(|skip| async move {
                        let url = self.page_url(skip, false);
                        self.get_page(&url).await.map(|page| (skip, url, page))
                    })
                    .buffered(concurrency);
                while let Some(result) = pages.next().await {
                    let (skip, url, page) = result?;
                    requests += 1;
                    if page.next_link.is_some() {
                        return Err(self.inconsistent(
                            &url,
                            "the service sent @odata.nextLink on a $skip page only after the first page".to_string(),
                        ));
                    }
                    let rows = page.value.len() as u64;
                    self.add_page(&mut got, page, &url)?;
                    offset = skip + rows;
                    if rows < step && offset < total {
                        // A silent cap below the first page's size: what
                        // follows is at other offsets. Go on one by one.
                        tracing::debug!(skip, rows, step, "IFS page shorter than the ones before; paging on from the rows received");
                        break;
                    }
                }
            }
            offset = self.page_on(&mut got, offset, count, requests).await?;
        }
        self.check_count(&got, count)?;
        tracing::debug!(users = got.users.len(), offset, "IFS listing complete");
        Ok(got.users)
    }

    /// Pages one at a time from `offset`, each at the rows received so
    /// far, until the count is reached or a page comes back empty.
    async fn page_on(
        &self,
        got: &mut Collected,
        mut offset: u64,
        count: Option<u64>,
        mut requests: u64,
    ) -> Result<u64, SourceError> {
        loop {
            if count.is_some_and(|total| offset >= total) {
                return Ok(offset);
            }
            if requests >= self.limits.max_pages {
                return Err(self.limits.exceeded(System::Ifs, self.users_url.path()));
            }
            let url = self.page_url(offset, false);
            let page = self.get_page(&url).await?;
            requests += 1;
            if page.next_link.is_some() {
                return Err(self.inconsistent(
                    &url,
                    "the service sent @odata.nextLink on a $skip page only after the first page"
                        .to_string(),
                ));
            }
            let rows = page.value.len() as u64;
            if rows == 0 {
                return Ok(offset);
            }
            self.add_page(got, page, &url)?;
            offset += rows;
        }
    }

    /// Follows the server's `@odata.nextLink` chain to its end.
    async fn follow_links(
        &self,
        got: &mut Collected,
        mut next: String,
        mut url: Url,
        mut requests: u64,
    ) -> Result<(), SourceError> {
        let mut seen_links = HashSet::new();
        loop {
            if !seen_links.insert(next.clone()) {
                return Err(self.inconsistent(
                    &url,
                    "@odata.nextLink repeats: the listing would never end".to_string(),
                ));
            }
            if requests >= self.limits.max_pages {
                return Err(self.limits.exceeded(System::Ifs, self.users_url.path()));
            }
            url = self.checked_link(&next, &url)?;
            let page = self.get_page(&url).await?;
            requests += 1;
            let link = page.next_link.clone();
            self.add_page(got, page, &url)?;
            match link {
                Some(link) => next = link,
                None => return Ok(()),
            }
        }
    }

    async fn get_page(&self, url: &Url) -> Result<ODataPage, SourceError> {
        self.api
            .get_json(url, Auth::Bearer(self.tokens.as_ref()))
            .await
    }

    /// Adds a page's users, de-duplicated by `Identity` (a user can move
    /// between pages while they are read). A non-empty page of nothing but
    /// users already seen means the service ignores `$skip`.
    fn add_page(&self, got: &mut Collected, page: ODataPage, url: &Url) -> Result<(), SourceError> {
        let rows = page.value.len();
        let mut first_repeat = None;
        let mut new = 0usize;
        got.users.reserve(rows);
        for value in page.value {
            let user = self.user_from_row(value, url)?;
            match got.insert(user) {
                Ok(()) => new += 1,
                Err(repeat) => {
                    if first_repeat.is_none() {
                        first_repeat = Some(CompactString::from(repeat.identity()));
                    }
                }
            }
        }
        match first_repeat {
            Some(identity) if new == 0 => Err(self.inconsistent(
                url,
                format!(
                    "user {identity} was delivered twice (a whole page of users already read): the service's paging is inconsistent"
                ),
            )),
            _ => Ok(()),
        }
    }

    /// The users listed must be as many as the first page's `@odata.count`.
    fn check_count(&self, got: &Collected, count: Option<u64>) -> Result<(), SourceError> {
        match count {
            Some(total) if total != got.users.len() as u64 => Err(self.inconsistent(
                &self.users_url,
                format!(
                    "the service counted {total} users (@odata.count) but its pages held {}: the listing is incomplete or changed while it was read",
                    got.users.len()
                ),
            )),
            _ => Ok(()),
        }
    }

    fn inconsistent(&self, url: &Url, message: String) -> SourceError {
        let mut e = SourceError::new(System::Ifs, SourceErrorKind::InvalidPayload, message);
        e.path = Some(error_path(url));
        e
    }

    /// Reads one user (`$top=1`): proves that the token is accepted and
    /// that the client may read users (`idrecon check`). Returns how many
    /// users the page held (0 or 1).
    pub async fn probe(&self) -> Result<usize, SourceError> {
        let url = self.query_url(&[("$select", self.select()), ("$top", "1".to_string())]);
        let page: ODataPage = self
            .api
            .get_json(&url, Auth::Bearer(self.tokens.as_ref()))
            .await?;
        let count = page.value.len();
        for value in page.value {
            self.user_from_row(value, &url)?;
        }
        Ok(count)
    }

    fn page_url(&self, skip: u64, count: bool) -> Url {
        let mut options = vec![
            ("$select", self.select()),
            ("$orderby", "Identity".to_string()),
            ("$top", self.page_size.to_string()),
            ("$skip", skip.to_string()),
        ];
        if count {
            options.push(("$count", "true".to_string()));
        }
        self.query_url(&options)
    }

    /// Resolves a next link (absolute or relative to the current page) and
    /// keeps it on the configured IFS host.
    fn checked_link(&self, link: &str, current: &Url) -> Result<Url, SourceError> {
        let url = current.join(link).map_err(|e| {
            SourceError::new(
                System::Ifs,
                SourceErrorKind::InvalidPayload,
                format!("@odata.nextLink is not a URL: {e}"),
            )
        })?;
        if !same_origin(&url, &self.users_url) {
            let mut e = SourceError::new(
                System::Ifs,
                SourceErrorKind::InvalidPayload,
                format!(
                    "@odata.nextLink points at {} instead of the configured IFS URL",
                    url.origin().ascii_serialization()
                ),
            );
            e.path = Some(error_path(&url));
            return Err(e);
        }
        Ok(url)
    }

    /// The users whose Directory ID equals `id` whatever the letter case
    /// (`tolower(field) eq 'id in lower case'`, `'` doubled), exact matches
    /// first, as a full listing compares them. A service that refuses
    /// `tolower` (400) is asked for the exact value instead.
    pub async fn fetch_by_directory_id(&self, id: &str) -> Result<Vec<IfsUser>, SourceError> {
        let field = &self.directory_id_field;
        let lower = id.to_lowercase();
        // A full run compares Unicode case-folded IDs (`Straße` = `STRASSE`),
        // which `tolower` alone does not give: ask for the folded form too.
        let folded_id = NormalizedId::new(id);
        let mut folded = format!("tolower({field}) eq {}", odata_string_literal(&lower));
        if folded_id.as_str() != lower {
            folded.push_str(&format!(
                " or tolower({field}) eq {}",
                odata_string_literal(folded_id.as_str())
            ));
        }
        let mut users = match self.filtered(&folded).await {
            Err(e) if e.status == Some(400) => {
                tracing::warn!(error = %e, "IFS refused tolower() in $filter; looking up the exact Directory ID");
                self.filtered(&format!("{field} eq {}", odata_string_literal(id)))
                    .await?
            }
            other => other?,
        };
        // Stable: exact matches first, each group in the service's order.
        users.sort_by_key(|u| u.directory_id() != Some(id));
        Ok(users)
    }

    /// Every user matching a `$filter`, following `@odata.nextLink`.
    async fn filtered(&self, filter: &str) -> Result<Vec<IfsUser>, SourceError> {
        let url = self.query_url(&[("$select", self.select()), ("$filter", filter.to_string())]);
        let first = self.get_page(&url).await?;
        let mut got = Collected::default();
        let next = first.next_link.clone();
        self.add_page(&mut got, first, &url)?;
        if let Some(next) = next {
            self.follow_links(&mut got, next, url, 1).await?;
        }
        Ok(got.users)
    }

    /// One user from its entity. Errors name the Identity.
    fn user_from_row(&self, mut row: IfsRow, url: &Url) -> Result<IfsUser, SourceError> {
        let invalid = |message: String| {
            let mut e = SourceError::new(System::Ifs, SourceErrorKind::InvalidPayload, message);
            e.path = Some(error_path(url));
            e
        };
        let identity = match row.take("Identity") {
            Some(Scalar::Text(s)) if !s.trim().is_empty() => s,
            _ => return Err(invalid("a user has no Identity (string)".to_string())),
        };
        // Read, not taken: the configuration may name one property twice.
        let optional_text = |field: &str| -> Result<Option<&str>, SourceError> {
            match row.get(field) {
                None | Some(Scalar::Null) => Ok(None),
                Some(Scalar::Text(s)) => Ok(Some(s.as_str())),
                Some(other) => Err(invalid(format!(
                    "user {identity}: {field} should be a string, got {other}"
                ))),
            }
        };
        let description = optional_text("Description")?;
        let directory_id = optional_text(&self.directory_id_field)?;
        let email = match &self.email_field {
            Some(field) => optional_text(field)?,
            None => None,
        };
        let active = match row.get("Active") {
            Some(Scalar::Bool(b)) => *b,
            Some(Scalar::Text(s)) if s.eq_ignore_ascii_case("TRUE") => true,
            Some(Scalar::Text(s)) if s.eq_ignore_ascii_case("FALSE") => false,
            Some(other) => {
                return Err(invalid(format!(
                "user {identity}: Active should be true/false or \"TRUE\"/\"FALSE\", got {other}"
            )))
            }
            None => return Err(invalid(format!("user {identity}: Active is missing"))),
        };
        self.api
            .limits()
            .check_fields(
                System::Ifs,
                &identity,
                [
                    ("Identity", Some(identity.as_str())),
                    ("Description", description),
                    (self.directory_id_field.as_str(), directory_id),
                    ("email", email),
                ],
            )
            .map_err(|mut e| {
                e.path = Some(error_path(url));
                e
            })?;
        // Packed straight from the row's texts, with no copy of each first.
        Ok(IfsUser::new(
            &identity,
            description,
            directory_id,
            active,
            email,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_double_quotes() {
        assert_eq!(odata_string_literal("o'brien@x.com"), "'o''brien@x.com'");
        assert_eq!(odata_string_literal("''"), "''''''");
    }

    #[test]
    fn field_names_are_checked() {
        assert!(check_field("WebUser", "k").is_ok());
        assert!(check_field("Web User", "k").is_err());
        assert!(check_field("x eq 1", "k").is_err());
    }
}
