//! The Flow endpoint (docs/contract.md, "Flow endpoint"): machine workflows the
//! admin publishes, called with basic auth. Lists users page by page
//! (`nextCursor`), renames and deactivates them.

use crate::config::FlowConfig;
use crate::model::{FlowUser, FlowUserFields};
use crate::sources::http::{
    join_path, redacted_url, require_secure, Auth, ErrorShape, HttpSettings, Idempotency, Payload,
    ServiceClient,
};
use crate::sources::{
    FlowWriteError, FlowWriter, ListingLimits, SourceError, SourceErrorKind, System,
};
use async_trait::async_trait;
use compact_str::CompactString;
use reqwest::Method;
use secrecy::SecretString;
use serde::Deserialize;
use std::collections::HashSet;
use std::fmt;
use url::Url;

/// A user as the Flow endpoint sends it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FlowUserWire {
    user_id: CompactString,
    #[serde(default)]
    name: Option<CompactString>,
    #[serde(default)]
    email: Option<CompactString>,
    active: bool,
    #[serde(rename = "type")]
    user_type: CompactString,
    #[serde(default)]
    sync_source: Option<CompactString>,
}

impl From<FlowUserWire> for FlowUser {
    fn from(w: FlowUserWire) -> Self {
        let non_empty = |s: Option<CompactString>| s.filter(|v| !v.trim().is_empty());
        FlowUser::from(FlowUserFields {
            user_id: w.user_id,
            name: non_empty(w.name),
            email: non_empty(w.email),
            active: w.active,
            user_type: w.user_type,
            sync_source: non_empty(w.sync_source),
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UsersPage {
    users: Vec<FlowUserWire>,
    #[serde(default)]
    next_cursor: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RenameResult {
    #[serde(default)]
    user_id: Option<String>,
}

/// The Flow endpoint over HTTP with basic auth.
pub struct FlowHttp {
    api: ServiceClient,
    base: Url,
    username: String,
    password: SecretString,
    /// `limits.max_pages` (only the page bound applies to Flow here).
    max_pages: u64,
}

impl fmt::Debug for FlowHttp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlowHttp")
            .field("base", &redacted_url(&self.base))
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .finish()
    }
}

impl FlowHttp {
    /// A client for `flow.url` with the machine user's basic credentials.
    pub fn new(
        cfg: &FlowConfig,
        http: reqwest::Client,
        settings: &HttpSettings,
    ) -> Result<Self, SourceError> {
        let missing = |key: &str| {
            SourceError::new(
                System::Flow,
                SourceErrorKind::Config,
                format!("flow.source = \"http\" needs {key}"),
            )
        };
        let base = cfg.url.clone().ok_or_else(|| missing("flow.url"))?;
        require_secure(System::Flow, "flow.url", &base, cfg.allow_insecure_http)?;
        let username = cfg
            .username
            .clone()
            .filter(|u| !u.trim().is_empty())
            .ok_or_else(|| missing("flow.username"))?;
        let password = cfg
            .password
            .clone()
            .ok_or_else(|| missing("flow.password"))?;
        Ok(FlowHttp {
            api: ServiceClient::from_settings(System::Flow, http, settings, ErrorShape::Flow),
            base,
            username,
            password,
            max_pages: ListingLimits::default().max_pages,
        })
    }

    /// The same client with other listing bounds (`limits.max_pages`).
    pub fn with_limits(mut self, limits: ListingLimits) -> Self {
        self.max_pages = limits.max_pages;
        self
    }

    fn auth(&self) -> Auth<'_> {
        Auth::Basic {
            username: &self.username,
            password: &self.password,
        }
    }

    /// Every Flow user, following `nextCursor` until it is null.
    pub async fn fetch_all(&self) -> Result<Vec<FlowUser>, SourceError> {
        let mut users = Vec::new();
        self.fetch_pages(|page| users.extend(page)).await?;
        Ok(users)
    }

    /// Every Flow user, a page at a time: `each` gets each page's users once
    /// they are read and checked (the listing is complete only on `Ok`).
    pub async fn fetch_pages(
        &self,
        mut each: impl FnMut(Vec<FlowUser>),
    ) -> Result<(), SourceError> {
        let users_url = join_path(&self.base, "users");
        let mut listed = 0usize;
        let mut cursors = HashSet::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0u64;
        loop {
            if pages >= self.max_pages {
                let limits = ListingLimits {
                    max_pages: self.max_pages,
                    ..ListingLimits::default()
                };
                return Err(limits.exceeded(System::Flow, users_url.path()));
            }
            pages += 1;
            let mut url = users_url.clone();
            if let Some(c) = &cursor {
                url.query_pairs_mut().append_pair("cursor", c);
            }
            let page: UsersPage = self.api.get_json(&url, self.auth()).await?;
            let mut users = Vec::with_capacity(page.users.len());
            for wire in page.users {
                let user = FlowUser::from(wire);
                self.api.limits().check_fields(
                    System::Flow,
                    user.user_id(),
                    [
                        ("userId", Some(user.user_id())),
                        ("name", user.name()),
                        ("email", user.email()),
                        ("type", Some(user.user_type())),
                        ("syncSource", user.sync_source()),
                    ],
                )?;
                users.push(user);
            }
            listed += users.len();
            each(users);
            match page.next_cursor.filter(|c| !c.is_empty()) {
                None => break,
                Some(next) => {
                    if !cursors.insert(next.clone()) {
                        let mut e = SourceError::new(
                            System::Flow,
                            SourceErrorKind::InvalidPayload,
                            format!(
                                "nextCursor repeats after {} pages: the listing would never end",
                                cursors.len()
                            ),
                        );
                        e.path = Some(users_url.path().to_string());
                        return Err(e);
                    }
                    cursor = Some(next);
                }
            }
        }
        tracing::debug!(users = listed, "Flow listing complete");
        Ok(())
    }

    /// Reads the first page of users: proves that the endpoint answers and
    /// accepts the machine user (`idrecon check`). Returns the page's size.
    pub async fn probe(&self) -> Result<usize, SourceError> {
        let url = join_path(&self.base, "users");
        let page: UsersPage = self.api.get_json(&url, self.auth()).await?;
        Ok(page.users.len())
    }

    /// A write: 404 → not found, 409 → conflict (both with Flow's own
    /// error text); retried only when the service surely did not act (429,
    /// 503, no connection).
    async fn write(
        &self,
        path: &str,
        body: serde_json::Value,
        subject: &str,
        target: &str,
    ) -> Result<Vec<u8>, FlowWriteError> {
        let url = join_path(&self.base, path);
        self.api
            .call(
                Method::POST,
                &url,
                &Payload::Json(body),
                self.auth(),
                Idempotency::Unsafe,
            )
            .await
            .map_err(|e| match e.status {
                // Flow's `{"error":"…"}` text is the error's code (ErrorShape::Flow).
                Some(404) => FlowWriteError::NotFound {
                    user_id: subject.to_string(),
                    message: e.code,
                },
                Some(409) => FlowWriteError::Conflict {
                    user_id: target.to_string(),
                    message: e.code,
                },
                _ => FlowWriteError::Other(e),
            })
    }
}

#[async_trait]
impl FlowWriter for FlowHttp {
    async fn rename(&self, user_id: &str, new_user_id: &str) -> Result<(), FlowWriteError> {
        let body = self
            .write(
                "users/rename",
                serde_json::json!({ "userId": user_id, "newUserId": new_user_id }),
                user_id,
                new_user_id,
            )
            .await?;
        // The answer names the new ID; if it names another, the rename did not do what we asked.
        let path = join_path(&self.base, "users/rename").path().to_string();
        if let Ok(result) = serde_json::from_slice::<RenameResult>(&body) {
            if let Some(reported) = result.user_id {
                if reported != new_user_id {
                    let mut e = SourceError::new(
                        System::Flow,
                        SourceErrorKind::InvalidPayload,
                        format!(
                            "rename of {user_id} to {new_user_id} answered with user ID {reported}"
                        ),
                    );
                    e.path = Some(path);
                    return Err(FlowWriteError::Other(e));
                }
            }
        }
        Ok(())
    }

    async fn deactivate(&self, user_id: &str) -> Result<(), FlowWriteError> {
        self.write(
            "users/deactivate",
            serde_json::json!({ "userId": user_id }),
            user_id,
            user_id,
        )
        .await
        .map(|_| ())
    }

    async fn list(&self) -> Result<Vec<FlowUser>, SourceError> {
        self.fetch_all().await
    }
}
