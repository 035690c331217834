//! Typed configuration (docs/contract.md, "Configuration").
//!
//! The struct shapes below are the interface the rest of the crate codes
//! against. [`Config::load`] / [`Config::from_toml_str`] read the TOML file,
//! apply `IDRECON__SECTION__KEY` environment overrides, read `*_file`
//! secrets, fill in defaults and validate every value. Every validation error
//! names the offending `section.key` (see [`ConfigError`]).
//!
//! docs/configuration.md is the user-facing description of every key.

use crate::model::{FlowMatchRule, IfsMatchRule};
use secrecy::SecretString;
use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
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

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// Why a configuration could not be loaded. Every variant maps to exit code 3
/// (see `crate::error`).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value is missing, has the wrong type or fails validation.
    /// `key` is `section.key` (or the environment variable's name for a
    /// malformed `IDRECON__…` variable).
    #[error("{key}: {message}")]
    Invalid { key: String, message: String },
    /// The config file does not exist and no `IDRECON__…` variables are set.
    #[error(
        "config file {} not found (give --config PATH, set IDRECON_CONFIG, \
         or configure through IDRECON__SECTION__KEY environment variables)",
        path.display()
    )]
    NotFound { path: PathBuf },
    /// The config file exists but could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML. `line` and `column` are 1-based.
    #[error("{origin}:{line}:{column}: invalid TOML: {message}")]
    Parse {
        /// The file path, or `<config>` for text given directly.
        origin: String,
        line: usize,
        column: usize,
        message: String,
    },
}

impl ConfigError {
    /// A validation error for `key` (`section.key`).
    pub fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.into(),
            message: message.into(),
        }
    }

    /// The `section.key` (or environment variable) an [`ConfigError::Invalid`]
    /// error is about.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { key, .. } => Some(key),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------
// Schema: every key, its section and its type
// ---------------------------------------------------------------------------

/// The TOML type a key takes; environment overrides are converted to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ValueKind {
    String,
    Integer,
    Float,
    Bool,
    /// An array of strings; from the environment, comma separated.
    StringList,
}

impl ValueKind {
    fn describe(self) -> &'static str {
        match self {
            ValueKind::String => "a string",
            ValueKind::Integer => "an integer",
            ValueKind::Float => "a number",
            ValueKind::Bool => "true or false",
            ValueKind::StringList => "a list of strings",
        }
    }
}

use ValueKind as K;

/// Every section and key idrecon understands (docs/contract.md plus additions).
const SCHEMA: &[(&str, &[(&str, ValueKind)])] = &[
    ("store", &[("url", K::String)]),
    (
        "azure",
        &[
            ("tenant_id", K::String),
            ("client_id", K::String),
            ("client_secret", K::String),
            ("client_secret_file", K::String),
            ("certificate_file", K::String),
            ("login_url", K::String),
            ("graph_url", K::String),
            ("group_id", K::String),
            ("include_guests", K::Bool),
            ("allow_insecure_http", K::Bool),
        ],
    ),
    (
        "ifs",
        &[
            ("url", K::String),
            ("issuer_url", K::String),
            ("client_id", K::String),
            ("client_secret", K::String),
            ("client_secret_file", K::String),
            ("users_path", K::String),
            ("directory_id_field", K::String),
            ("email_field", K::String),
            ("page_size", K::Integer),
            ("allow_insecure_http", K::Bool),
        ],
    ),
    (
        "flow",
        &[
            ("source", K::String),
            ("url", K::String),
            ("username", K::String),
            ("password", K::String),
            ("password_file", K::String),
            ("csv_path", K::String),
            ("case_insensitive_ids", K::Bool),
            ("allow_insecure_http", K::Bool),
        ],
    ),
    (
        "matching",
        &[
            ("case_sensitive", K::Bool),
            ("ifs_rules", K::StringList),
            ("flow_rules", K::StringList),
        ],
    ),
    (
        "fix",
        &[
            ("enabled", K::Bool),
            ("max_changes", K::Integer),
            ("max_change_percent", K::Float),
            ("deactivate_orphans", K::Bool),
        ],
    ),
    ("schedule", &[("cron", K::String), ("timezone", K::String)]),
    (
        "report",
        &[
            ("send", K::String),
            ("to", K::StringList),
            ("from", K::String),
            ("transport", K::String),
            ("smtp_url", K::String),
            ("smtp_username", K::String),
            ("smtp_password", K::String),
            ("smtp_password_file", K::String),
            ("tenant_label", K::String),
            ("allow_insecure_http", K::Bool),
        ],
    ),
    ("server", &[("listen", K::String)]),
];

/// Every configuration key as `section.key`, in schema order (used by the
/// docs/example completeness tests and by `idrecon check`).
pub fn all_keys() -> Vec<String> {
    SCHEMA
        .iter()
        .flat_map(|(section, keys)| keys.iter().map(move |(key, _)| format!("{section}.{key}")))
        .collect()
}

fn section_keys(section: &str) -> Option<&'static [(&'static str, ValueKind)]> {
    SCHEMA
        .iter()
        .find(|(name, _)| *name == section)
        .map(|(_, keys)| *keys)
}

fn key_kind(section: &str, key: &str) -> Option<ValueKind> {
    section_keys(section)?
        .iter()
        .find(|(name, _)| *name == key)
        .map(|(_, kind)| *kind)
}

/// Prefix of the environment variables that override config keys.
pub const ENV_PREFIX: &str = "IDRECON__";

/// Default `store.url`.
pub const DEFAULT_STORE_URL: &str = "sqlite://idrecon.db";
/// Default `schedule.cron`: every day at 02:00.
pub const DEFAULT_CRON: &str = "0 2 * * *";
/// Default `schedule.timezone`.
pub const DEFAULT_TIMEZONE: &str = "UTC";

/// The process environment as a map, for [`Config::load`]. Variables whose
/// name or value is not valid UTF-8 are left out.
pub fn process_env() -> HashMap<String, String> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

fn is_override_var(name: &str) -> bool {
    name.get(..ENV_PREFIX.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(ENV_PREFIX))
}

// ---------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------

impl Config {
    /// Reads the config file at `path`, applies `IDRECON__SECTION__KEY`
    /// overrides from `env` and validates the result. Relative `*_file` and
    /// `csv_path` paths are taken relative to the file's directory.
    ///
    /// A missing file is [`ConfigError::NotFound`] unless `env` holds at
    /// least one `IDRECON__…` variable: then the configuration is taken from
    /// the environment alone (relative paths relative to the working
    /// directory), and validation errors say that the file was not found.
    pub fn load(path: &Path, env: &HashMap<String, String>) -> Result<Config, ConfigError> {
        let base_dir = path.parent().unwrap_or(Path::new(""));
        match std::fs::read_to_string(path) {
            Ok(text) => parse_config(&text, env, base_dir, &path.display().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if !env.keys().any(|k| is_override_var(k)) {
                    return Err(ConfigError::NotFound {
                        path: path.to_path_buf(),
                    });
                }
                parse_config("", env, Path::new(""), "<environment>").map_err(|e| match e {
                    ConfigError::Invalid { key, message } => ConfigError::Invalid {
                        key,
                        message: format!(
                            "{message} (config file {} not found; configuration taken from \
                             IDRECON__ environment variables only)",
                            path.display()
                        ),
                    },
                    other => other,
                })
            }
            Err(source) => Err(ConfigError::Io {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Parses `text` as a config file, applies overrides from `env` and
    /// validates. Relative `*_file` and `csv_path` paths are resolved
    /// against `base_dir`.
    pub fn from_toml_str(
        text: &str,
        env: &HashMap<String, String>,
        base_dir: &Path,
    ) -> Result<Config, ConfigError> {
        parse_config(text, env, base_dir, "<config>")
    }
}

fn parse_config(
    text: &str,
    env: &HashMap<String, String>,
    base_dir: &Path,
    origin: &str,
) -> Result<Config, ConfigError> {
    let mut table: toml::Table = toml::from_str(text).map_err(|e| {
        let (line, column) = e
            .span()
            .map(|span| line_column(text, span.start))
            .unwrap_or((1, 1));
        ConfigError::Parse {
            origin: origin.to_string(),
            line,
            column,
            message: e.message().trim().lines().collect::<Vec<_>>().join("; "),
        }
    })?;
    check_known_keys(&table)?;
    let origins = apply_env_overrides(&mut table, env)?;
    let reader = Reader {
        table: &table,
        origins: &origins,
        base_dir,
    };
    build(&reader)
}

/// 1-based line and column of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let column = before
        .get(line_start..)
        .map_or(1, |l| l.chars().count() + 1);
    (line, column)
}

fn check_known_keys(table: &toml::Table) -> Result<(), ConfigError> {
    for (section, value) in table {
        let Some(keys) = section_keys(section) else {
            let known: Vec<&str> = SCHEMA.iter().map(|(name, _)| *name).collect();
            return Err(ConfigError::invalid(
                section.as_str(),
                format!("unknown section (known sections: {})", known.join(", ")),
            ));
        };
        let toml::Value::Table(entries) = value else {
            return Err(ConfigError::invalid(
                section.as_str(),
                format!("must be a table ([{section}]), found {}", value.type_str()),
            ));
        };
        for key in entries.keys() {
            if keys.iter().any(|(name, _)| name == key) {
                continue;
            }
            let hint = keys
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(key))
                .map(|(name, _)| format!(" (did you mean `{name}`? keys are lower case)"))
                .unwrap_or_default();
            return Err(ConfigError::invalid(
                format!("{section}.{key}"),
                format!("unknown key{hint}"),
            ));
        }
    }
    Ok(())
}

/// Applies `IDRECON__SECTION__KEY` variables to `table`; returns which
/// `section.key` came from which variable (for error messages).
fn apply_env_overrides(
    table: &mut toml::Table,
    env: &HashMap<String, String>,
) -> Result<HashMap<String, String>, ConfigError> {
    let mut vars: Vec<(&String, &String)> =
        env.iter().filter(|(k, _)| is_override_var(k)).collect();
    vars.sort();
    let mut origins = HashMap::new();
    for (name, raw) in vars {
        let rest = name.get(ENV_PREFIX.len()..).unwrap_or_default();
        let parts: Vec<&str> = rest.split("__").collect();
        let [section, key] = parts.as_slice() else {
            return Err(ConfigError::invalid(
                name.as_str(),
                "expected the form IDRECON__SECTION__KEY (e.g. IDRECON__AZURE__CLIENT_SECRET)",
            ));
        };
        let section = section.to_ascii_lowercase();
        let key = key.to_ascii_lowercase();
        let Some(kind) = key_kind(&section, &key) else {
            return Err(ConfigError::invalid(
                name.as_str(),
                format!("unknown configuration key `{section}.{key}`"),
            ));
        };
        let full_key = format!("{section}.{key}");
        let value = env_value(kind, raw).map_err(|message| {
            ConfigError::invalid(full_key.as_str(), format!("{message} (from {name})"))
        })?;
        let entry = table
            .entry(section.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        // check_known_keys already refused non-table sections.
        if let toml::Value::Table(section_table) = entry {
            section_table.insert(key, value);
        }
        origins.insert(full_key, name.clone());
    }
    Ok(origins)
}

/// Converts an environment variable's text to the TOML type of its key.
fn env_value(kind: ValueKind, raw: &str) -> Result<toml::Value, String> {
    let trimmed = raw.trim();
    match kind {
        ValueKind::String => Ok(toml::Value::String(raw.to_string())),
        ValueKind::Integer => trimmed
            .parse::<i64>()
            .map(toml::Value::Integer)
            .map_err(|_| format!("expected an integer, got {trimmed:?}")),
        ValueKind::Float => match trimmed.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(toml::Value::Float(v)),
            _ => Err(format!("expected a number, got {trimmed:?}")),
        },
        ValueKind::Bool => match trimmed.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(toml::Value::Boolean(true)),
            "false" | "0" | "no" | "off" => Ok(toml::Value::Boolean(false)),
            _ => Err(format!("expected true or false, got {trimmed:?}")),
        },
        ValueKind::StringList => Ok(toml::Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.to_string()))
                .collect(),
        )),
    }
}

// ---------------------------------------------------------------------------
// Typed access with key-named errors
// ---------------------------------------------------------------------------

/// Reads typed values out of the merged table; every error names the key
/// (and the environment variable, when the value came from one).
struct Reader<'a> {
    table: &'a toml::Table,
    origins: &'a HashMap<String, String>,
    base_dir: &'a Path,
}

impl Reader<'_> {
    fn err(&self, key: &str, message: impl fmt::Display) -> ConfigError {
        match self.origins.get(key) {
            Some(var) => ConfigError::invalid(key, format!("{message} (set by {var})")),
            None => ConfigError::invalid(key, message.to_string()),
        }
    }

    fn has_section(&self, section: &str) -> bool {
        self.table.contains_key(section)
    }

    fn raw(&self, key: &str) -> Option<&toml::Value> {
        let (section, name) = key.split_once('.')?;
        debug_assert!(key_kind(section, name).is_some(), "{key} not in SCHEMA");
        self.table.get(section)?.as_table()?.get(name)
    }

    fn type_error(&self, key: &str, kind: ValueKind, found: &toml::Value) -> ConfigError {
        self.err(
            key,
            format!("expected {}, found {}", kind.describe(), found.type_str()),
        )
    }

    /// A string value; empty strings count as not set.
    fn string(&self, key: &str) -> Result<Option<String>, ConfigError> {
        match self.raw(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) if s.is_empty() => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(self.type_error(key, ValueKind::String, other)),
        }
    }

    fn required_string(&self, key: &str) -> Result<String, ConfigError> {
        self.string(key)?
            .ok_or_else(|| self.err(key, "is required"))
    }

    fn string_or(&self, key: &str, default: &str) -> Result<String, ConfigError> {
        Ok(self.string(key)?.unwrap_or_else(|| default.to_string()))
    }

    fn bool(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        match self.raw(key) {
            None => Ok(default),
            Some(toml::Value::Boolean(b)) => Ok(*b),
            Some(other) => Err(self.type_error(key, ValueKind::Bool, other)),
        }
    }

    fn u32_in(&self, key: &str, default: u32, min: u32, max: u32) -> Result<u32, ConfigError> {
        match self.raw(key) {
            None => Ok(default),
            Some(toml::Value::Integer(i)) => u32::try_from(*i)
                .ok()
                .filter(|v| (min..=max).contains(v))
                .ok_or_else(|| self.err(key, format!("must be between {min} and {max}"))),
            Some(other) => Err(self.type_error(key, ValueKind::Integer, other)),
        }
    }

    fn f64_in(&self, key: &str, default: f64, min: f64, max: f64) -> Result<f64, ConfigError> {
        let value = match self.raw(key) {
            None => return Ok(default),
            Some(toml::Value::Float(f)) => *f,
            Some(toml::Value::Integer(i)) => *i as f64,
            Some(other) => return Err(self.type_error(key, ValueKind::Float, other)),
        };
        if value.is_finite() && (min..=max).contains(&value) {
            Ok(value)
        } else {
            Err(self.err(key, format!("must be between {min} and {max}")))
        }
    }

    fn list(&self, key: &str) -> Result<Option<Vec<String>>, ConfigError> {
        match self.raw(key) {
            None => Ok(None),
            Some(toml::Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    toml::Value::String(s) => Ok(s.clone()),
                    other => Err(self.err(
                        key,
                        format!(
                            "expected a list of strings, found an item of type {}",
                            other.type_str()
                        ),
                    )),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(other) => Err(self.type_error(key, ValueKind::StringList, other)),
        }
    }

    /// A path, resolved against the config file's directory when relative.
    fn path(&self, key: &str) -> Result<Option<PathBuf>, ConfigError> {
        Ok(self.string(key)?.map(|p| self.base_dir.join(p)))
    }

    /// An http(s) URL; `http://` only for loopback hosts unless allowed.
    fn url(&self, key: &str, allow_insecure_http: bool) -> Result<Option<Url>, ConfigError> {
        let Some(text) = self.string(key)? else {
            return Ok(None);
        };
        let url = Url::parse(&text).map_err(|e| self.err(key, format!("not a URL ({e})")))?;
        if url.scheme() != "https" && url.scheme() != "http" {
            return Err(self.err(key, "must be an https:// (or http://) URL"));
        }
        if url.host().is_none() {
            return Err(self.err(key, "URL has no host"));
        }
        if url.password().is_some() || !url.username().is_empty() {
            return Err(self.err(key, "must not contain a user name or password"));
        }
        if url.scheme() == "http" && !allow_insecure_http && !is_loopback(&url) {
            let section = key.split('.').next().unwrap_or(key);
            return Err(self.err(
                key,
                format!(
                    "http:// is only allowed for loopback hosts unless {section}.allow_insecure_http = true"
                ),
            ));
        }
        Ok(Some(url))
    }

    fn required_url(&self, key: &str, allow_insecure_http: bool) -> Result<Url, ConfigError> {
        self.url(key, allow_insecure_http)?
            .ok_or_else(|| self.err(key, "is required"))
    }

    /// A secret given inline (`key`) or as a file (`file_key`); never both.
    fn secret(&self, key: &str, file_key: &str) -> Result<Option<SecretString>, ConfigError> {
        let inline = self.string(key)?;
        let file = self.path(file_key)?;
        match (inline, file) {
            (Some(_), Some(_)) => Err(self.err(
                file_key,
                format!("cannot be combined with {key}; set only one of them"),
            )),
            (Some(value), None) => Ok(Some(SecretString::from(value))),
            (None, Some(path)) => self.read_secret_file(file_key, &path).map(Some),
            (None, None) => Ok(None),
        }
    }

    fn read_secret_file(&self, key: &str, path: &Path) -> Result<SecretString, ConfigError> {
        let content = std::fs::read_to_string(path).map_err(|e| {
            self.err(
                key,
                format!("cannot read secret file {}: {e}", path.display()),
            )
        })?;
        let value = content.trim_end_matches(['\n', '\r']);
        if value.is_empty() {
            return Err(self.err(key, format!("secret file {} is empty", path.display())));
        }
        Ok(SecretString::from(value.to_string()))
    }
}

/// `localhost`, 127.0.0.0/8 or ::1. For non-http schemes (`smtp://`) the
/// url crate keeps IP hosts as opaque text, so those are parsed here.
fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => {
            d.eq_ignore_ascii_case("localhost")
                || d.trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// An OData property name: letters, digits and `_`, not starting with a digit.
fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

// ---------------------------------------------------------------------------
// Building and validating each section
// ---------------------------------------------------------------------------

fn require_section(r: &Reader<'_>, section: &str) -> Result<(), ConfigError> {
    if r.has_section(section) {
        Ok(())
    } else {
        Err(r.err(section, format!("required section [{section}] is missing")))
    }
}

fn build(r: &Reader<'_>) -> Result<Config, ConfigError> {
    let store = build_store(r)?;
    let azure = build_azure(r)?;
    let ifs = build_ifs(r)?;
    let flow = build_flow(r)?;
    let matching = build_matching(r)?;
    let fix = build_fix(r)?;
    let schedule = build_schedule(r)?;
    let report = build_report(r, &azure)?;
    let server = build_server(r)?;
    Ok(Config {
        store,
        azure,
        ifs,
        flow,
        matching,
        fix,
        schedule,
        report,
        server,
    })
}

fn build_store(r: &Reader<'_>) -> Result<StoreConfig, ConfigError> {
    let url = r.string_or("store.url", DEFAULT_STORE_URL)?;
    validate_store_url(&url).map_err(|m| r.err("store.url", m))?;
    Ok(StoreConfig { url })
}

/// Checks that `url` is a SQLite URL (`sqlite://path`, `sqlite:path` or
/// `sqlite::memory:`). Also used for `--db`.
pub fn validate_store_url(url: &str) -> Result<(), String> {
    let Some(rest) = url.strip_prefix("sqlite:") else {
        return Err(format!(
            "must be a SQLite URL like sqlite://idrecon.db, got {url:?}"
        ));
    };
    let path = rest.strip_prefix("//").unwrap_or(rest);
    let path = path.split('?').next().unwrap_or_default();
    if path.is_empty() {
        return Err("SQLite URL has no file path (e.g. sqlite://idrecon.db)".to_string());
    }
    Ok(())
}

fn build_azure(r: &Reader<'_>) -> Result<AzureConfig, ConfigError> {
    require_section(r, "azure")?;
    let allow_insecure_http = r.bool("azure.allow_insecure_http", false)?;
    let tenant_id = r.required_string("azure.tenant_id")?;
    if !tenant_id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
    {
        return Err(r.err(
            "azure.tenant_id",
            "must be a tenant ID (GUID) or a domain such as contoso.onmicrosoft.com",
        ));
    }
    let client_id = r.required_string("azure.client_id")?;

    const CHOICES: &str =
        "set exactly one of azure.client_secret, azure.client_secret_file, azure.certificate_file";
    let inline = r.string("azure.client_secret")?;
    let secret_file = r.path("azure.client_secret_file")?;
    let certificate = r.path("azure.certificate_file")?;
    let set: Vec<&str> = [
        ("azure.client_secret", inline.is_some()),
        ("azure.client_secret_file", secret_file.is_some()),
        ("azure.certificate_file", certificate.is_some()),
    ]
    .iter()
    .filter(|(_, is_set)| *is_set)
    .map(|(key, _)| *key)
    .collect();
    if set.len() > 1 {
        return Err(r.err(
            set[1],
            format!("cannot be combined with {}; {CHOICES}", set[0]),
        ));
    }
    let credential = match (inline, secret_file, certificate) {
        (Some(secret), _, _) => AzureCredential::Secret(SecretString::from(secret)),
        (None, Some(path), _) => {
            AzureCredential::Secret(r.read_secret_file("azure.client_secret_file", &path)?)
        }
        (None, None, Some(path)) => {
            if let Err(e) = std::fs::File::open(&path) {
                return Err(r.err(
                    "azure.certificate_file",
                    format!("cannot read certificate file {}: {e}", path.display()),
                ));
            }
            AzureCredential::Certificate(path)
        }
        (None, None, None) => {
            return Err(r.err(
                "azure.client_secret",
                format!("a credential is required: {CHOICES}"),
            ))
        }
    };

    let login_url = r.url("azure.login_url", allow_insecure_http)?.map_or_else(
        || parse_default_url("https://login.microsoftonline.com"),
        Ok,
    )?;
    let graph_url = r
        .url("azure.graph_url", allow_insecure_http)?
        .map_or_else(|| parse_default_url("https://graph.microsoft.com"), Ok)?;
    Ok(AzureConfig {
        tenant_id,
        client_id,
        credential,
        login_url,
        graph_url,
        group_id: r.string("azure.group_id")?,
        include_guests: r.bool("azure.include_guests", false)?,
        allow_insecure_http,
    })
}

fn parse_default_url(text: &str) -> Result<Url, ConfigError> {
    Url::parse(text).map_err(|e| ConfigError::invalid(text, format!("built-in default URL: {e}")))
}

/// Default `ifs.users_path`.
pub const DEFAULT_IFS_USERS_PATH: &str =
    "main/ifsapplications/projection/v1/UserHandling.svc/Users";

fn build_ifs(r: &Reader<'_>) -> Result<IfsConfig, ConfigError> {
    require_section(r, "ifs")?;
    let allow_insecure_http = r.bool("ifs.allow_insecure_http", false)?;
    let url = r.required_url("ifs.url", allow_insecure_http)?;
    let issuer_url = r.required_url("ifs.issuer_url", allow_insecure_http)?;
    let client_id = r.required_string("ifs.client_id")?;
    let client_secret = r
        .secret("ifs.client_secret", "ifs.client_secret_file")?
        .ok_or_else(|| {
            r.err(
                "ifs.client_secret",
                "is required (or set ifs.client_secret_file)",
            )
        })?;
    let users_path = r.string_or("ifs.users_path", DEFAULT_IFS_USERS_PATH)?;
    if users_path.contains("://") || users_path.contains('?') {
        return Err(r.err(
            "ifs.users_path",
            "must be a path relative to ifs.url (no scheme, host or query)",
        ));
    }
    let directory_id_field = r.string_or("ifs.directory_id_field", "WebUser")?;
    if !is_identifier(&directory_id_field) {
        return Err(r.err(
            "ifs.directory_id_field",
            "must be an OData property name (letters, digits, _)",
        ));
    }
    let email_field = r.string("ifs.email_field")?;
    if let Some(field) = &email_field {
        if !is_identifier(field) {
            return Err(r.err(
                "ifs.email_field",
                "must be an OData property name (letters, digits, _)",
            ));
        }
    }
    Ok(IfsConfig {
        url,
        issuer_url,
        client_id,
        client_secret,
        users_path,
        directory_id_field,
        email_field,
        page_size: r.u32_in("ifs.page_size", 1000, 1, 100_000)?,
        allow_insecure_http,
    })
}

fn build_flow(r: &Reader<'_>) -> Result<FlowConfig, ConfigError> {
    require_section(r, "flow")?;
    let allow_insecure_http = r.bool("flow.allow_insecure_http", false)?;
    let source = match r.string_or("flow.source", "http")?.as_str() {
        "http" => FlowSourceKind::Http,
        "csv" => FlowSourceKind::Csv,
        other => {
            return Err(r.err(
                "flow.source",
                format!("must be \"http\" or \"csv\", got {other:?}"),
            ))
        }
    };
    let url = r.url("flow.url", allow_insecure_http)?;
    let username = r.string("flow.username")?;
    let password = r.secret("flow.password", "flow.password_file")?;
    let csv_path = r.path("flow.csv_path")?;
    match source {
        FlowSourceKind::Http => {
            if url.is_none() {
                return Err(r.err("flow.url", "is required when flow.source = \"http\""));
            }
            if username.is_none() {
                return Err(r.err("flow.username", "is required when flow.source = \"http\""));
            }
            if password.is_none() {
                return Err(r.err(
                    "flow.password",
                    "is required when flow.source = \"http\" (or set flow.password_file)",
                ));
            }
        }
        FlowSourceKind::Csv => {
            if csv_path.is_none() {
                return Err(r.err("flow.csv_path", "is required when flow.source = \"csv\""));
            }
        }
    }
    Ok(FlowConfig {
        source,
        url,
        username,
        password,
        csv_path,
        case_insensitive_ids: r.bool("flow.case_insensitive_ids", true)?,
        allow_insecure_http,
    })
}

/// Parses a list of rule names (snake_case serde names of `T`).
fn parse_rules<T>(r: &Reader<'_>, key: &str, all: &[T]) -> Result<Option<Vec<T>>, ConfigError>
where
    T: serde::de::DeserializeOwned + serde::Serialize + PartialEq + Copy,
{
    let Some(names) = r.list(key)? else {
        return Ok(None);
    };
    let known: Vec<String> = all
        .iter()
        .filter_map(|rule| match toml::Value::try_from(rule) {
            Ok(toml::Value::String(s)) => Some(s),
            _ => None,
        })
        .collect();
    let mut rules: Vec<T> = Vec::with_capacity(names.len());
    for name in names {
        let rule: T = toml::Value::String(name.clone()).try_into().map_err(|_| {
            r.err(
                key,
                format!("unknown rule {name:?} (known rules: {})", known.join(", ")),
            )
        })?;
        if rules.contains(&rule) {
            return Err(r.err(key, format!("rule {name:?} is listed twice")));
        }
        rules.push(rule);
    }
    if rules.is_empty() {
        return Err(r.err(key, "must list at least one rule"));
    }
    Ok(Some(rules))
}

fn build_matching(r: &Reader<'_>) -> Result<MatchingConfig, ConfigError> {
    let default = MatchingConfig::default();
    Ok(MatchingConfig {
        case_sensitive: r.bool("matching.case_sensitive", default.case_sensitive)?,
        ifs_rules: parse_rules(r, "matching.ifs_rules", &IfsMatchRule::DEFAULT_ORDER)?
            .unwrap_or(default.ifs_rules),
        flow_rules: parse_rules(r, "matching.flow_rules", &FlowMatchRule::DEFAULT_ORDER)?
            .unwrap_or(default.flow_rules),
    })
}

fn build_fix(r: &Reader<'_>) -> Result<FixConfig, ConfigError> {
    let default = FixConfig::default();
    Ok(FixConfig {
        enabled: r.bool("fix.enabled", default.enabled)?,
        max_changes: r.u32_in("fix.max_changes", default.max_changes, 0, u32::MAX)?,
        max_change_percent: r.f64_in(
            "fix.max_change_percent",
            default.max_change_percent,
            0.0,
            100.0,
        )?,
        deactivate_orphans: r.bool("fix.deactivate_orphans", default.deactivate_orphans)?,
    })
}

fn build_schedule(r: &Reader<'_>) -> Result<ScheduleConfig, ConfigError> {
    let cron = r.string_or("schedule.cron", DEFAULT_CRON)?;
    croner::Cron::new(&cron).parse().map_err(|e| {
        r.err(
            "schedule.cron",
            format!("not a valid 5-field crontab expression ({e})"),
        )
    })?;
    let timezone = r.string_or("schedule.timezone", DEFAULT_TIMEZONE)?;
    if timezone.parse::<chrono_tz::Tz>().is_err() {
        return Err(r.err(
            "schedule.timezone",
            format!("{timezone:?} is not an IANA time zone (e.g. Europe/Stockholm, UTC)"),
        ));
    }
    Ok(ScheduleConfig { cron, timezone })
}

fn build_report(r: &Reader<'_>, azure: &AzureConfig) -> Result<ReportConfig, ConfigError> {
    let allow_insecure_http = r.bool("report.allow_insecure_http", false)?;
    let to = r.list("report.to")?.unwrap_or_default();
    for address in &to {
        address.parse::<lettre::message::Mailbox>().map_err(|e| {
            r.err(
                "report.to",
                format!("{address:?} is not an e-mail address ({e})"),
            )
        })?;
    }
    let send = match r.string("report.send")?.as_deref() {
        None if to.is_empty() => SendPolicy::Never,
        None | Some("on_findings") => SendPolicy::OnFindings,
        Some("always") => SendPolicy::Always,
        Some("on_change") => SendPolicy::OnChange,
        Some("never") => SendPolicy::Never,
        Some(other) => {
            return Err(r.err(
                "report.send",
                format!("must be one of always, on_findings, on_change, never; got {other:?}"),
            ))
        }
    };
    let from = r.string("report.from")?;
    if let Some(address) = &from {
        address.parse::<lettre::message::Mailbox>().map_err(|e| {
            r.err(
                "report.from",
                format!("{address:?} is not an e-mail address ({e})"),
            )
        })?;
    }
    let transport = match r.string_or("report.transport", "smtp")?.as_str() {
        "smtp" => MailTransport::Smtp,
        "graph" => MailTransport::Graph,
        other => {
            return Err(r.err(
                "report.transport",
                format!("must be \"smtp\" or \"graph\", got {other:?}"),
            ))
        }
    };
    let smtp_url = r.string("report.smtp_url")?;
    if let Some(url) = &smtp_url {
        validate_smtp_url(url, allow_insecure_http).map_err(|m| r.err("report.smtp_url", m))?;
    }
    let smtp_username = r.string("report.smtp_username")?;
    let smtp_password = r.secret("report.smtp_password", "report.smtp_password_file")?;
    match (&smtp_username, &smtp_password) {
        (Some(_), None) => {
            return Err(r.err(
                "report.smtp_password",
                "is required when report.smtp_username is set (or set report.smtp_password_file)",
            ))
        }
        (None, Some(_)) => {
            return Err(r.err(
                "report.smtp_username",
                "is required when report.smtp_password is set",
            ))
        }
        _ => {}
    }
    if send != SendPolicy::Never {
        let why = "is required unless report.send = \"never\"";
        if to.is_empty() {
            return Err(r.err("report.to", why));
        }
        if from.is_none() {
            return Err(r.err("report.from", why));
        }
        if transport == MailTransport::Smtp && smtp_url.is_none() {
            return Err(r.err(
                "report.smtp_url",
                "is required when report.transport = \"smtp\" and report.send is not \"never\"",
            ));
        }
    }
    let tenant_label = r
        .string("report.tenant_label")?
        .unwrap_or_else(|| default_tenant_label(&azure.tenant_id));
    Ok(ReportConfig {
        send,
        to,
        from,
        transport,
        smtp_url,
        smtp_username,
        smtp_password,
        tenant_label: Some(tenant_label),
    })
}

/// `contoso.onmicrosoft.com` → `contoso`; anything else unchanged.
fn default_tenant_label(tenant_id: &str) -> String {
    const SUFFIX: &str = ".onmicrosoft.com";
    let cut = tenant_id.len().saturating_sub(SUFFIX.len());
    match tenant_id.get(cut..) {
        Some(tail) if cut > 0 && tail.eq_ignore_ascii_case(SUFFIX) => {
            tenant_id.get(..cut).unwrap_or(tenant_id).to_string()
        }
        _ => tenant_id.to_string(),
    }
}

/// An `smtp://` / `smtps://` URL the SMTP sender accepts
/// (`crate::mail::smtp::SmtpEndpoint`: `tls` = required | opportunistic |
/// none), without a password, and encrypted (smtps or `tls=required`)
/// unless the host is loopback or `report.allow_insecure_http` is set.
fn validate_smtp_url(text: &str, allow_insecure: bool) -> Result<(), String> {
    let url = Url::parse(text).map_err(|e| format!("not a URL ({e})"))?;
    if url.scheme() != "smtp" && url.scheme() != "smtps" {
        return Err("must be an smtp:// or smtps:// URL".to_string());
    }
    if url.password().is_some() {
        return Err(
            "must not contain a password; use report.smtp_password or report.smtp_password_file"
                .to_string(),
        );
    }
    // The sender's own parser, so every URL accepted here can be used (lettre's
    // `from_url` knows no `tls=none` and reads a missing `tls` differently).
    crate::mail::smtp::SmtpEndpoint::parse(text).map_err(|e| match e {
        crate::mail::MailError::Config(m) => format!(
            "not a usable SMTP URL ({})",
            m.trim_start_matches("report.smtp_url: ")
        ),
        other => format!("not a usable SMTP URL ({other})"),
    })?;
    let tls = url
        .query_pairs()
        .find(|(k, _)| k == "tls")
        .map(|(_, v)| v.into_owned());
    // As the sender reads it: smtps:// is implicit TLS, smtp:// without a
    // `tls` parameter (or with tls=required) must upgrade with STARTTLS.
    let encrypted = url.scheme() == "smtps" || matches!(tls.as_deref(), None | Some("required"));
    if !encrypted && !allow_insecure && !is_loopback(&url) {
        return Err(
            "SMTP that may go unencrypted (tls=opportunistic or tls=none) is only allowed for \
             loopback hosts unless report.allow_insecure_http = true"
                .to_string(),
        );
    }
    Ok(())
}

fn build_server(r: &Reader<'_>) -> Result<ServerConfig, ConfigError> {
    let listen = match r.string("server.listen")? {
        None => None,
        Some(text) => Some(text.parse::<SocketAddr>().map_err(|_| {
            r.err(
                "server.listen",
                format!("{text:?} is not an address:port (e.g. 127.0.0.1:9464 or [::1]:9464)"),
            )
        })?),
    };
    Ok(ServerConfig { listen })
}
