//! Typed configuration (contract.md, "Configuration").
//!
//! SKELETON: the struct shapes below are the interface the rest of the crate
//! codes against. Loading (TOML + `IDRECON__SECTION__KEY` env overrides +
//! `*_file` secrets), defaults and validation are filled in by the config work.

use crate::model::{FlowMatchRule, IfsMatchRule};
use secrecy::SecretString;
use std::path::PathBuf;
use url::Url;

#[derive(Debug, Clone)]
pub struct Config {
    pub store: StoreConfig,
    pub azure: AzureConfig,
    pub ifs: IfsConfig,
    pub flow: FlowConfig,
    pub matching: MatchingConfig,
    pub fix: FixConfig,
    pub schedule: ScheduleConfig,
    pub report: ReportConfig,
    pub server: ServerConfig,
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
    pub allow_insecure_http: bool,
}

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

#[derive(Debug, Clone)]
pub struct ScheduleConfig {
    pub cron: String,
    pub timezone: String,
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
    pub smtp_url: Option<String>,
    pub smtp_username: Option<String>,
    pub smtp_password: Option<SecretString>,
    /// Shown in mail subjects, e.g. `contoso`.
    pub tenant_label: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct ServerConfig {
    pub listen: Option<std::net::SocketAddr>,
}
