//! The validated configuration the rest of the crate codes against: every
//! value parsed once (URLs, the schedule, the SMTP endpoint, durations,
//! paths resolved against the config file's directory, secrets as
//! [`SecretString`]). Built from the raw tree by `super::convert`.

use super::smtp_url::SmtpEndpoint;
use crate::model::{FlowMatchRule, IfsMatchRule};
use crate::schedule::Schedule;
use secrecy::SecretString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use url::Url;

#[derive(Debug, Clone)]
pub struct Config {
    pub store: StoreConfig,
    pub azure: AzureConfig,
    pub ifs: IfsConfig,
    pub flow: FlowConfig,
    pub matching: MatchingConfig,
    pub fix: FixConfig,
    /// `schedule.cron` in `schedule.timezone`, parsed.
    pub schedule: Schedule,
    pub report: ReportConfig,
    pub server: ServerConfig,
    pub limits: LimitsConfig,
    pub tls: TlsConfig,
    pub safety: SafetyConfig,
}

#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// `sqlite://path` (created if missing, mode 0600).
    pub url: String,
}

#[derive(Debug, Clone)]
pub enum AzureCredential {
    Secret(SecretString),
    /// PEM file holding the private key and the certificate.
    Certificate(PathBuf),
}

#[derive(Debug, Clone)]
pub struct AzureConfig {
    pub tenant_id: String,
    pub client_id: String,
    pub credential: AzureCredential,
    pub login_url: Url,
    pub graph_url: Url,
    /// Only transitive members of this group, when set.
    pub group_id: Option<String>,
    pub include_guests: bool,
    pub allow_insecure_http: bool,
}

/// How idrecon authenticates to the IFS token endpoint (`ifs.token_auth_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TokenAuthMethod {
    /// Follow the issuer's discovery document.
    #[default]
    Auto,
    /// `client_secret_basic`: HTTP Basic with the client ID and secret.
    Basic,
    /// `client_secret_post`: the client ID and secret in the form body.
    Post,
}

#[derive(Debug, Clone)]
pub struct IfsConfig {
    pub url: Url,
    pub issuer_url: Url,
    pub client_id: String,
    pub client_secret: SecretString,
    pub users_path: String,
    pub directory_id_field: String,
    /// Optional e-mail field of the user projection.
    pub email_field: Option<String>,
    pub page_size: u32,
    /// Requests to IFS at once (1..=32).
    pub concurrency: u32,
    pub token_auth_method: TokenAuthMethod,
    pub allow_insecure_http: bool,
}

/// Default `ifs.concurrency`.
pub const DEFAULT_IFS_CONCURRENCY: u32 = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowSourceKind {
    Http,
    Csv,
}

#[derive(Debug, Clone)]
pub struct FlowConfig {
    pub source: FlowSourceKind,
    pub url: Option<Url>,
    pub username: Option<String>,
    pub password: Option<SecretString>,
    pub csv_path: Option<PathBuf>,
    /// Whether Flow compares user IDs case-insensitively (collisions in planning).
    pub case_insensitive_ids: bool,
    pub allow_insecure_http: bool,
}

#[derive(Debug, Clone)]
pub struct MatchingConfig {
    pub case_sensitive: bool,
    /// Order of the Azure ↔ IFS rules (default: upn, mail, object_id, sam_account_name).
    pub ifs_rules: Vec<IfsMatchRule>,
    /// Order of the Azure ↔ Flow rules (default: docs/semantics.md §3).
    pub flow_rules: Vec<FlowMatchRule>,
}

impl Default for MatchingConfig {
    fn default() -> Self {
        MatchingConfig {
            case_sensitive: false,
            ifs_rules: IfsMatchRule::DEFAULT_ORDER.to_vec(),
            flow_rules: FlowMatchRule::DEFAULT_ORDER.to_vec(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct FixConfig {
    pub enabled: bool,
    pub max_changes: u32,
    pub max_change_percent: f64,
    pub deactivate_orphans: bool,
}

impl Default for FixConfig {
    fn default() -> Self {
        FixConfig {
            enabled: false,
            max_changes: 25,
            max_change_percent: 5.0,
            deactivate_orphans: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendPolicy {
    Always,
    OnFindings,
    OnChange,
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailTransport {
    Smtp,
    Graph,
}

#[derive(Debug, Clone)]
pub struct ReportConfig {
    pub send: SendPolicy,
    pub to: Vec<String>,
    pub from: Option<String>,
    pub transport: MailTransport,
    /// The server of `report.smtp_url`, parsed.
    pub smtp_url: Option<SmtpEndpoint>,
    pub smtp_username: Option<String>,
    pub smtp_password: Option<SecretString>,
    /// Shown in mail subjects, e.g. `contoso`.
    pub tenant_label: Option<String>,
    /// The exit code of a completed run with findings still open.
    pub findings_exit_code: u8,
}

/// Default `report.findings_exit_code`.
pub const DEFAULT_FINDINGS_EXIT_CODE: u8 = 2;

#[derive(Debug, Clone, Default)]
pub struct ServerConfig {
    pub listen: Option<SocketAddr>,
    /// Bearer token the status server asks for, when set.
    pub auth_token: Option<SecretString>,
}

/// Bounds on what one run reads from the services (`[limits]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitsConfig {
    /// Largest response body, after decompression, in bytes.
    pub max_body_bytes: u64,
    /// Longest text field kept from a service, in characters.
    pub max_field_chars: u32,
    /// Most pages read from one listing.
    pub max_pages: u32,
    /// How long a run's whole fetch phase may take.
    pub fetch_deadline: Duration,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_body_bytes: 64 * 1024 * 1024,
            max_field_chars: 1024,
            max_pages: 100_000,
            fetch_deadline: Duration::from_secs(2 * 60 * 60),
        }
    }
}

/// TLS trust beyond the OS store and the web roots (`[tls]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsConfig {
    /// An extra PEM bundle of CA certificates; checked to exist and hold at
    /// least one certificate at load time.
    pub ca_file: Option<PathBuf>,
}

/// Safety thresholds beyond `[fix]` (`[safety]`).
#[derive(Debug, Clone, PartialEq)]
pub struct SafetyConfig {
    /// A run stops when a source returns this many percent fewer users than
    /// the last complete run saw.
    pub max_source_drop_percent: f64,
}

impl Default for SafetyConfig {
    fn default() -> Self {
        SafetyConfig {
            max_source_drop_percent: 20.0,
        }
    }
}
