//! The three systems idrecon reads (and Flow, which it may write), behind
//! small traits so the run, the tests, the demo and the benchmarks share the
//! same core. Implementations: `graph` (Azure AD), `ifs`, `flow` (HTTP
//! endpoint and CSV export).

pub mod flow;
pub mod flow_csv;
pub mod graph;
pub mod ifs;
pub mod ifs_row;
pub mod live;

/// The shared HTTP layer under the paths the connectors have always used
/// (it lives in [`crate::net`]).
pub mod http {
    pub use crate::net::client::*;
    pub use crate::net::origin::*;
}
pub use crate::net::retry;

use crate::config::{Config, LimitsConfig, DEFAULT_IFS_CONCURRENCY};
use crate::model::{AadUser, FlowUser, IfsUser};
use async_trait::async_trait;
use std::fmt;
use std::time::Duration;

/// Bounds every listing keeps (`limits.max_pages`, `limits.fetch_deadline`,
/// `ifs.concurrency`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListingLimits {
    /// Most pages one listing may take; more is an error, never a loop.
    pub max_pages: u64,
    /// Longest a run's fetch of one system may take, retries and waits
    /// included (the three are fetched at once, so this bounds the phase).
    pub fetch_deadline: Duration,
    /// IFS `$skip` pages in flight at once (at least 1).
    pub ifs_concurrency: usize,
}

impl Default for ListingLimits {
    fn default() -> Self {
        let limits = LimitsConfig::default();
        ListingLimits {
            max_pages: u64::from(limits.max_pages),
            fetch_deadline: limits.fetch_deadline,
            ifs_concurrency: DEFAULT_IFS_CONCURRENCY as usize,
        }
    }
}

impl ListingLimits {
    /// `limits.max_pages`, `limits.fetch_deadline` and `ifs.concurrency`.
    pub fn from_config(cfg: &Config) -> Self {
        ListingLimits {
            max_pages: u64::from(cfg.limits.max_pages),
            fetch_deadline: cfg.limits.fetch_deadline,
            ifs_concurrency: cfg.ifs.concurrency.max(1) as usize,
        }
    }

    /// The error for a listing that went past `max_pages` pages.
    pub fn exceeded(&self, system: System, path: &str) -> SourceError {
        let mut e = SourceError::new(
            system,
            SourceErrorKind::InvalidPayload,
            format!(
                "the listing did not end within limits.max_pages = {} pages (the service keeps handing out next pages); nothing was concluded. Raise limits.max_pages only if the directory really is that large",
                self.max_pages
            ),
        );
        e.path = Some(path.to_string());
        e
    }

    /// Runs one fetch of `system` within `fetch_deadline`.
    pub async fn within_deadline<T>(
        &self,
        system: System,
        fetch: impl std::future::Future<Output = Result<T, SourceError>>,
    ) -> Result<T, SourceError> {
        match tokio::time::timeout(self.fetch_deadline, fetch).await {
            Ok(result) => result,
            Err(_) => Err(SourceError::new(
                system,
                SourceErrorKind::Transport,
                format!(
                    "reading did not finish within limits.fetch_deadline = {:?}; nothing was concluded. The service is too slow or keeps the listing going",
                    self.fetch_deadline
                ),
            )),
        }
    }
}

/// Which external system an error or a count belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, strum::IntoStaticStr, strum::EnumIter)]
#[strum(serialize_all = "lowercase")]
pub enum System {
    Azure,
    Ifs,
    Flow,
}

impl System {
    /// The config section and metrics label (`azure`, `ifs`, `flow`);
    /// [`fmt::Display`] is the name people know (`Azure AD`, …).
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl fmt::Display for System {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            System::Azure => "Azure AD",
            System::Ifs => "IFS",
            System::Flow => "Flow",
        })
    }
}

/// A source could not deliver a complete snapshot. Never carries a secret or
/// a token: `path` is the URL path only (no query with tokens, no host creds).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{system}: {message}{}{}{}", .path.as_ref().map(|p| format!(" (path {p})")).unwrap_or_default(), .status.map(|s| format!(" [HTTP {s}]")).unwrap_or_default(), .code.as_ref().map(|c| format!(" [code {c}]")).unwrap_or_default())]
pub struct SourceError {
    pub system: System,
    pub kind: SourceErrorKind,
    /// URL path of the failing request (no query string, no secrets).
    pub path: Option<String>,
    pub status: Option<u16>,
    /// The service's own error code (`TooManyRequests`, `syncStateNotFound`, …).
    pub code: Option<String>,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceErrorKind {
    /// Could not obtain a token, or the credentials were refused.
    Auth,
    /// Transport failure: connect, timeout, dropped connection.
    Transport,
    /// Non-success HTTP status after retries.
    Http,
    /// Body could not be parsed or lacked required fields.
    InvalidPayload,
    /// Throttled and the retry budget was exhausted.
    Throttled,
    /// The stored delta link expired: a full listing is needed.
    DeltaExpired,
    /// A file (CSV export) could not be read or has a bad row.
    File,
    /// The configuration does not allow this operation.
    Config,
}

impl SourceError {
    pub fn new(system: System, kind: SourceErrorKind, message: impl Into<String>) -> Self {
        SourceError {
            system,
            kind,
            path: None,
            status: None,
            code: None,
            message: message.into(),
        }
    }
}

pub use idrecon_core::delta::AadChange;

/// What `fetch_azure` delivered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AzureFetch {
    /// A complete listing. `delta_link` is the link for the next run's
    /// delta query, when one was taken. `fallback` says why a stored delta
    /// link could not be used (expired, or no longer on `graph_url`), when
    /// this full listing replaced a delta query.
    Full {
        users: Vec<AadUser>,
        delta_link: Option<String>,
        fallback: Option<String>,
    },
    /// Only the changes since the given delta link; apply them to the stored snapshot.
    Delta {
        changes: Vec<AadChange>,
        delta_link: String,
    },
}

/// What a one-person look-up (`reconcile --user`) found, and the requests
/// it made, in words for the operator.
#[derive(Clone, Debug, Default)]
pub struct PersonFetch {
    /// The Azure user (one, or none when not found), the IFS users whose
    /// Directory ID may be theirs, and every Flow user (the Flow endpoint has
    /// no search; conflicts need them all).
    pub snapshots: crate::model::Snapshots,
    pub steps: Vec<String>,
}

/// Where a Flow listing's pages go as they arrive ([`Sources::fetch_flow_pages`]).
pub type FlowPages = tokio::sync::mpsc::UnboundedSender<Vec<FlowUser>>;

/// Reads complete snapshots of the three systems. Each method returns every
/// user or an error; never a partial list (the pages
/// [`Sources::fetch_flow_pages`] hands over are a listing only once it
/// returns `Ok`).
#[async_trait]
pub trait Sources: Send + Sync {
    /// `delta_link`: the stored link of the previous run, or `None` for a full listing.
    async fn fetch_azure(&self, delta_link: Option<&str>) -> Result<AzureFetch, SourceError>;
    async fn fetch_ifs(&self) -> Result<Vec<IfsUser>, SourceError>;
    async fn fetch_flow(&self) -> Result<Vec<FlowUser>, SourceError>;
    /// [`Self::fetch_flow`], handing each page's users to `pages` as soon as
    /// it is read and checked, so a run can work on them while the next
    /// page is on the wire. The listing is complete only when this returns
    /// `Ok`; after an error, what was sent is not a listing. By default one
    /// page: the whole listing.
    async fn fetch_flow_pages(&self, pages: &FlowPages) -> Result<(), SourceError> {
        let users = self.fetch_flow().await?;
        // A closed receiver means the run stopped waiting for Flow.
        let _ = pages.send(users);
        Ok(())
    }
    /// Only what one person needs, fetched by key where the API allows
    /// (Graph `users/{upn}`, IFS `$filter`), like Entra's provision-on-demand.
    async fn fetch_person(&self, upn_or_id: &str) -> Result<PersonFetch, SourceError>;
}

/// Why a single write to Flow failed.
///
/// `message` is Flow's own error text (the `error` of its answer body), if
/// it sent one; the report and the journal show it after ours.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FlowWriteError {
    /// 404: the source user does not exist (any more).
    #[error("Flow: user {user_id} not found{}", flow_said(.message))]
    NotFound {
        user_id: String,
        message: Option<String>,
    },
    /// 409: the target ID (`user_id`) is taken.
    #[error("Flow: user ID {user_id} is already taken{}", flow_said(.message))]
    Conflict {
        user_id: String,
        message: Option<String>,
    },
    #[error(transparent)]
    Other(#[from] SourceError),
}

/// ` (Flow said: "…")`, or nothing when Flow gave no text.
fn flow_said(message: &Option<String>) -> String {
    match message.as_deref().map(str::trim) {
        Some(text) if !text.is_empty() => format!(" (Flow said: \"{text}\")"),
        _ => String::new(),
    }
}

/// Writes to Flow (the rename and deactivate calls of the Flow endpoint).
#[async_trait]
pub trait FlowWriter: Send + Sync {
    async fn rename(&self, user_id: &str, new_user_id: &str) -> Result<(), FlowWriteError>;
    async fn deactivate(&self, user_id: &str) -> Result<(), FlowWriteError>;
    /// The current Flow users (used to verify journalled actions on resume).
    async fn list(&self) -> Result<Vec<FlowUser>, SourceError>;
}
