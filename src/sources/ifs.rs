//! IFS Cloud users through the OData `Users` entity set.
//!
//! Pages with `$top`/`$skip` ordered by `Identity`; when a response carries
//! `@odata.nextLink`, that link is followed instead. `Active` comes either
//! as a boolean or as the enum strings `"TRUE"`/`"FALSE"`.

use crate::auth::AccessTokenSource;
use crate::config::IfsConfig;
use crate::model::IfsUser;
use crate::sources::http::{
    error_path, join_path, redacted_url, require_secure, same_origin, Auth, ErrorShape,
    HttpSettings, ServiceClient,
};
use crate::sources::{SourceError, SourceErrorKind, System};
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use serde::Deserialize;
use std::collections::HashSet;
use std::fmt;
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
    value: Vec<serde_json::Value>,
    #[serde(rename = "@odata.nextLink", default)]
    next_link: Option<String>,
}

/// Reads IFS users.
pub struct IfsSource {
    api: ServiceClient,
    tokens: Arc<dyn AccessTokenSource>,
    users_url: Url,
    directory_id_field: String,
    email_field: Option<String>,
    page_size: u32,
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
        })
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
    pub async fn fetch_all(&self) -> Result<Vec<IfsUser>, SourceError> {
        let mut users = Vec::new();
        let mut identities = HashSet::new();
        let mut seen_links = HashSet::new();
        let mut skip: u64 = 0;
        let mut url = self.page_url(skip);
        let mut link_mode = false;
        loop {
            let page: ODataPage = self
                .api
                .get_json(&url, Auth::Bearer(self.tokens.as_ref()))
                .await?;
            let count = page.value.len();
            for value in page.value {
                let user = self.user_from_value(value, &url)?;
                if !identities.insert(user.identity.clone()) {
                    let mut e = SourceError::new(
                        System::Ifs,
                        SourceErrorKind::InvalidPayload,
                        format!(
                            "user {} was delivered twice: the service's paging is inconsistent",
                            user.identity
                        ),
                    );
                    e.path = Some(error_path(&url));
                    return Err(e);
                }
                users.push(user);
            }
            if let Some(next) = page.next_link {
                link_mode = true;
                if !seen_links.insert(next.clone()) {
                    return Err(SourceError::new(
                        System::Ifs,
                        SourceErrorKind::InvalidPayload,
                        "@odata.nextLink repeats: the listing would never end",
                    ));
                }
                url = self.checked_link(&next, &url)?;
                continue;
            }
            if link_mode || count < self.page_size as usize {
                break;
            }
            skip += u64::from(self.page_size);
            url = self.page_url(skip);
        }
        tracing::debug!(users = users.len(), "IFS listing complete");
        Ok(users)
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
            self.user_from_value(value, &url)?;
        }
        Ok(count)
    }

    fn page_url(&self, skip: u64) -> Url {
        self.query_url(&[
            ("$select", self.select()),
            ("$orderby", "Identity".to_string()),
            ("$top", self.page_size.to_string()),
            ("$skip", skip.to_string()),
        ])
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

    /// The users whose Directory ID equals `id` (`$filter`, `'` doubled).
    pub async fn fetch_by_directory_id(&self, id: &str) -> Result<Vec<IfsUser>, SourceError> {
        let url = self.query_url(&[
            ("$select", self.select()),
            (
                "$filter",
                format!(
                    "{} eq {}",
                    self.directory_id_field,
                    odata_string_literal(id)
                ),
            ),
        ]);
        let page: ODataPage = self
            .api
            .get_json(&url, Auth::Bearer(self.tokens.as_ref()))
            .await?;
        page.value
            .into_iter()
            .map(|v| self.user_from_value(v, &url))
            .collect()
    }

    /// One user from its JSON. Errors name the Identity.
    fn user_from_value(&self, value: serde_json::Value, url: &Url) -> Result<IfsUser, SourceError> {
        let invalid = |message: String| {
            let mut e = SourceError::new(System::Ifs, SourceErrorKind::InvalidPayload, message);
            e.path = Some(error_path(url));
            e
        };
        let identity = match value.get("Identity") {
            Some(serde_json::Value::String(s)) if !s.trim().is_empty() => s.clone(),
            _ => return Err(invalid("a user has no Identity (string)".to_string())),
        };
        let optional_text = |field: &str| -> Result<Option<String>, SourceError> {
            match value.get(field) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
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
        let active = match value.get("Active") {
            Some(serde_json::Value::Bool(b)) => *b,
            Some(serde_json::Value::String(s)) if s.eq_ignore_ascii_case("TRUE") => true,
            Some(serde_json::Value::String(s)) if s.eq_ignore_ascii_case("FALSE") => false,
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
                    ("Description", description.as_deref()),
                    (self.directory_id_field.as_str(), directory_id.as_deref()),
                    ("email", email.as_deref()),
                ],
            )
            .map_err(|mut e| {
                e.path = Some(error_path(url));
                e
            })?;
        Ok(IfsUser {
            identity,
            description,
            directory_id,
            active,
            email,
        })
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
