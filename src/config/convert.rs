//! The conversion from the raw tree ([`RawConfig`]) to the typed
//! [`Config`]: defaults, validation and parsing of every value. Every error
//! names the key (`section.key`) and, when the value came from an
//! `IDRECON__…` variable, that variable.

use super::error::ConfigError;
use super::loose::{Loose, LooseKind};
use super::raw::*;
use super::secret::{non_empty, read_secret_file};
use super::smtp_url::SmtpEndpoint;
use super::typed::*;
use crate::model::{FlowMatchRule, IfsMatchRule};
use crate::schedule::{Schedule, ScheduleError};
use secrecy::SecretString;
use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use url::Url;

/// Default `store.url`.
pub const DEFAULT_STORE_URL: &str = "sqlite://idrecon.db";
/// Default `schedule.cron`: every day at 02:00.
pub const DEFAULT_CRON: &str = "0 2 * * *";
/// Default `schedule.timezone`.
pub const DEFAULT_TIMEZONE: &str = "UTC";
/// Default `ifs.users_path`.
pub const DEFAULT_IFS_USERS_PATH: &str =
    "main/ifsapplications/projection/v1/UserHandling.svc/Users";

/// The merged raw tree plus what the conversion needs to know about it.
#[derive(Debug)]
pub struct Layered {
    pub raw: RawConfig,
    /// `section.key` → the `IDRECON__…` variable that set it.
    pub env_origins: HashMap<String, String>,
    /// Relative paths are resolved against this (the config file's directory).
    pub base_dir: PathBuf,
}

impl TryFrom<Layered> for Config {
    type Error = ConfigError;

    fn try_from(layered: Layered) -> Result<Config, ConfigError> {
        let Layered {
            raw,
            env_origins,
            base_dir,
        } = layered;
        let cx = Context {
            origins: &env_origins,
            base_dir: &base_dir,
        };
        let store = cx.store(raw.store)?;
        let azure = cx.azure(raw.azure)?;
        let ifs = cx.ifs(raw.ifs)?;
        let flow = cx.flow(raw.flow)?;
        let matching = cx.matching(raw.matching)?;
        let fix = cx.fix(raw.fix)?;
        let schedule = cx.schedule(raw.schedule)?;
        let report = cx.report(raw.report, &azure)?;
        let server = cx.server(raw.server)?;
        let limits = cx.limits(raw.limits)?;
        let tls = cx.tls(raw.tls)?;
        let safety = cx.safety(raw.safety)?;
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
            limits,
            tls,
            safety,
        })
    }
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

/// Reads raw values into typed ones; every error names the key (and the
/// environment variable, when the value came from one).
struct Context<'a> {
    origins: &'a HashMap<String, String>,
    base_dir: &'a Path,
}

/// A string; empty counts as not set.
fn text(value: Option<String>) -> Option<String> {
    value.filter(|s| !s.is_empty())
}

impl Context<'_> {
    fn err(&self, key: &str, message: impl fmt::Display) -> ConfigError {
        match self.origins.get(key) {
            Some(var) => ConfigError::invalid(key, format!("{message} (set by {var})")),
            None => ConfigError::invalid(key, message.to_string()),
        }
    }

    /// A boolean, integer, number or list: text only from the environment.
    fn loose<T: LooseKind>(
        &self,
        key: &str,
        value: Option<Loose<T>>,
    ) -> Result<Option<T>, ConfigError> {
        match value {
            None => Ok(None),
            Some(Loose::Typed(v)) => Ok(Some(v)),
            Some(Loose::Text(s)) => match self.origins.get(key) {
                Some(var) => T::from_text(&s)
                    .map(Some)
                    .map_err(|m| ConfigError::invalid(key, format!("{m} (from {var})"))),
                None => Err(ConfigError::invalid(
                    key,
                    format!("expected {}, found string", T::EXPECTED),
                )),
            },
        }
    }

    fn bool(
        &self,
        key: &str,
        value: Option<Loose<bool>>,
        default: bool,
    ) -> Result<bool, ConfigError> {
        Ok(self.loose(key, value)?.unwrap_or(default))
    }

    fn int_in<T>(
        &self,
        key: &str,
        value: Option<Loose<i128>>,
        default: T,
        min: T,
        max: T,
    ) -> Result<T, ConfigError>
    where
        T: Copy + fmt::Display + TryFrom<i128> + PartialOrd,
    {
        match self.loose(key, value)? {
            None => Ok(default),
            Some(i) => T::try_from(i)
                .ok()
                .filter(|v| *v >= min && *v <= max)
                .ok_or_else(|| self.err(key, format!("must be between {min} and {max}"))),
        }
    }

    fn f64_in(
        &self,
        key: &str,
        value: Option<Loose<f64>>,
        default: f64,
        min: f64,
        max: f64,
    ) -> Result<f64, ConfigError> {
        match self.loose(key, value)? {
            None => Ok(default),
            Some(v) if v.is_finite() && (min..=max).contains(&v) => Ok(v),
            Some(_) => Err(self.err(key, format!("must be between {min} and {max}"))),
        }
    }

    fn required(&self, key: &str, value: Option<String>) -> Result<String, ConfigError> {
        text(value).ok_or_else(|| self.err(key, "is required"))
    }

    /// A path, resolved against the config file's directory when relative.
    fn path(&self, value: Option<String>) -> Option<PathBuf> {
        text(value).map(|p| self.base_dir.join(p))
    }

    /// An http(s) URL; `http://` only for loopback hosts unless allowed.
    fn url(
        &self,
        key: &str,
        value: Option<String>,
        allow_insecure_http: bool,
    ) -> Result<Option<Url>, ConfigError> {
        let Some(text) = text(value) else {
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

    fn required_url(
        &self,
        key: &str,
        value: Option<String>,
        allow_insecure_http: bool,
    ) -> Result<Url, ConfigError> {
        self.url(key, value, allow_insecure_http)?
            .ok_or_else(|| self.err(key, "is required"))
    }

    /// A secret given inline (`key`) or as a file (`file_key`); never both.
    fn secret(
        &self,
        (key, inline): (&str, Option<SecretString>),
        (file_key, file): (&str, Option<String>),
    ) -> Result<Option<SecretString>, ConfigError> {
        match (non_empty(inline), self.path(file)) {
            (Some(_), Some(_)) => Err(self.err(
                file_key,
                format!("cannot be combined with {key}; set only one of them"),
            )),
            (Some(value), None) => Ok(Some(value)),
            (None, Some(path)) => self.secret_file(file_key, &path).map(Some),
            (None, None) => Ok(None),
        }
    }

    fn secret_file(&self, key: &str, path: &Path) -> Result<SecretString, ConfigError> {
        read_secret_file(path).map_err(|e| self.err(key, e))
    }

    fn list(
        &self,
        key: &str,
        value: Option<Loose<Vec<String>>>,
    ) -> Result<Option<Vec<String>>, ConfigError> {
        self.loose(key, value)
    }

    // ----- sections -----

    fn store(&self, raw: RawStore) -> Result<StoreConfig, ConfigError> {
        let url = text(raw.url).unwrap_or_else(crate::paths::default_store_url);
        validate_store_url(&url).map_err(|m| self.err("store.url", m))?;
        Ok(StoreConfig { url })
    }

    fn require<T>(&self, section: &str, raw: Option<T>) -> Result<T, ConfigError> {
        raw.ok_or_else(|| self.err(section, format!("required section [{section}] is missing")))
    }

    fn azure(&self, raw: Option<RawAzure>) -> Result<AzureConfig, ConfigError> {
        let raw = self.require("azure", raw)?;
        let allow_insecure_http =
            self.bool("azure.allow_insecure_http", raw.allow_insecure_http, false)?;
        let tenant_id = self.required("azure.tenant_id", raw.tenant_id)?;
        if !tenant_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        {
            return Err(self.err(
                "azure.tenant_id",
                "must be a tenant ID (GUID) or a domain such as contoso.onmicrosoft.com",
            ));
        }
        let client_id = self.required("azure.client_id", raw.client_id)?;

        const CHOICES: &str =
            "set exactly one of azure.client_secret, azure.client_secret_file, azure.certificate_file";
        let inline = non_empty(raw.client_secret);
        let secret_file = self.path(raw.client_secret_file);
        let certificate = self.path(raw.certificate_file);
        let set: Vec<&str> = [
            ("azure.client_secret", inline.is_some()),
            ("azure.client_secret_file", secret_file.is_some()),
            ("azure.certificate_file", certificate.is_some()),
        ]
        .iter()
        .filter(|(_, is_set)| *is_set)
        .map(|(key, _)| *key)
        .collect();
        if let [first, second, ..] = set.as_slice() {
            return Err(self.err(
                second,
                format!("cannot be combined with {first}; {CHOICES}"),
            ));
        }
        let credential = match (inline, secret_file, certificate) {
            (Some(secret), _, _) => AzureCredential::Secret(secret),
            (None, Some(path), _) => {
                AzureCredential::Secret(self.secret_file("azure.client_secret_file", &path)?)
            }
            (None, None, Some(path)) => {
                if let Err(e) = std::fs::File::open(&path) {
                    return Err(self.err(
                        "azure.certificate_file",
                        format!("cannot read certificate file {}: {e}", path.display()),
                    ));
                }
                AzureCredential::Certificate(path)
            }
            (None, None, None) => {
                return Err(self.err(
                    "azure.client_secret",
                    format!("a credential is required: {CHOICES}"),
                ))
            }
        };
        let login_url = self
            .url("azure.login_url", raw.login_url, allow_insecure_http)?
            .map_or_else(|| default_url("https://login.microsoftonline.com"), Ok)?;
        let graph_url = self
            .url("azure.graph_url", raw.graph_url, allow_insecure_http)?
            .map_or_else(|| default_url("https://graph.microsoft.com"), Ok)?;
        Ok(AzureConfig {
            tenant_id,
            client_id,
            credential,
            login_url,
            graph_url,
            group_id: text(raw.group_id),
            include_guests: self.bool("azure.include_guests", raw.include_guests, false)?,
            allow_insecure_http,
        })
    }

    fn ifs(&self, raw: Option<RawIfs>) -> Result<IfsConfig, ConfigError> {
        let raw = self.require("ifs", raw)?;
        let allow_insecure_http =
            self.bool("ifs.allow_insecure_http", raw.allow_insecure_http, false)?;
        let url = self.required_url("ifs.url", raw.url, allow_insecure_http)?;
        let issuer_url =
            self.required_url("ifs.issuer_url", raw.issuer_url, allow_insecure_http)?;
        let client_id = self.required("ifs.client_id", raw.client_id)?;
        let client_secret = self
            .secret(
                ("ifs.client_secret", raw.client_secret),
                ("ifs.client_secret_file", raw.client_secret_file),
            )?
            .ok_or_else(|| {
                self.err(
                    "ifs.client_secret",
                    "is required (or set ifs.client_secret_file)",
                )
            })?;
        let users_path = text(raw.users_path).unwrap_or_else(|| DEFAULT_IFS_USERS_PATH.to_string());
        if users_path.contains("://") || users_path.contains('?') {
            return Err(self.err(
                "ifs.users_path",
                "must be a path relative to ifs.url (no scheme, host or query)",
            ));
        }
        let directory_id_field =
            text(raw.directory_id_field).unwrap_or_else(|| "WebUser".to_string());
        if !is_identifier(&directory_id_field) {
            return Err(self.err(
                "ifs.directory_id_field",
                "must be an OData property name (letters, digits, _)",
            ));
        }
        let email_field = text(raw.email_field);
        if let Some(field) = &email_field {
            if !is_identifier(field) {
                return Err(self.err(
                    "ifs.email_field",
                    "must be an OData property name (letters, digits, _)",
                ));
            }
        }
        let token_auth_method = match text(raw.token_auth_method).as_deref() {
            None | Some("auto") => TokenAuthMethod::Auto,
            Some("basic") => TokenAuthMethod::Basic,
            Some("post") => TokenAuthMethod::Post,
            Some(other) => {
                return Err(self.err(
                    "ifs.token_auth_method",
                    format!("must be \"auto\", \"basic\" or \"post\", got {other:?}"),
                ))
            }
        };
        Ok(IfsConfig {
            url,
            issuer_url,
            client_id,
            client_secret,
            users_path,
            directory_id_field,
            email_field,
            page_size: self.int_in("ifs.page_size", raw.page_size, 1000, 1, 100_000)?,
            concurrency: self.int_in(
                "ifs.concurrency",
                raw.concurrency,
                DEFAULT_IFS_CONCURRENCY,
                1,
                32,
            )?,
            token_auth_method,
            allow_insecure_http,
        })
    }

    fn flow(&self, raw: Option<RawFlow>) -> Result<FlowConfig, ConfigError> {
        let raw = self.require("flow", raw)?;
        let allow_insecure_http =
            self.bool("flow.allow_insecure_http", raw.allow_insecure_http, false)?;
        let source = match text(raw.source).as_deref().unwrap_or("http") {
            "http" => FlowSourceKind::Http,
            "csv" => FlowSourceKind::Csv,
            other => {
                return Err(self.err(
                    "flow.source",
                    format!("must be \"http\" or \"csv\", got {other:?}"),
                ))
            }
        };
        let url = self.url("flow.url", raw.url, allow_insecure_http)?;
        let username = text(raw.username);
        let password = self.secret(
            ("flow.password", raw.password),
            ("flow.password_file", raw.password_file),
        )?;
        let csv_path = self.path(raw.csv_path);
        match source {
            FlowSourceKind::Http => {
                if url.is_none() {
                    return Err(self.err("flow.url", "is required when flow.source = \"http\""));
                }
                if username.is_none() {
                    return Err(
                        self.err("flow.username", "is required when flow.source = \"http\"")
                    );
                }
                if password.is_none() {
                    return Err(self.err(
                        "flow.password",
                        "is required when flow.source = \"http\" (or set flow.password_file)",
                    ));
                }
            }
            FlowSourceKind::Csv => {
                if csv_path.is_none() {
                    return Err(self.err("flow.csv_path", "is required when flow.source = \"csv\""));
                }
            }
        }
        Ok(FlowConfig {
            source,
            url,
            username,
            password,
            csv_path,
            case_insensitive_ids: self.bool(
                "flow.case_insensitive_ids",
                raw.case_insensitive_ids,
                true,
            )?,
            allow_insecure_http,
        })
    }

    /// A list of rule names (snake_case serde names of `T`).
    fn rules<T>(
        &self,
        key: &str,
        value: Option<Loose<Vec<String>>>,
        all: &[T],
    ) -> Result<Option<Vec<T>>, ConfigError>
    where
        T: serde::de::DeserializeOwned + serde::Serialize + PartialEq + Copy,
    {
        let Some(names) = self.list(key, value)? else {
            return Ok(None);
        };
        let known: Vec<String> = all
            .iter()
            .filter_map(|rule| match serde_json::to_value(rule) {
                Ok(serde_json::Value::String(s)) => Some(s),
                _ => None,
            })
            .collect();
        let mut rules: Vec<T> = Vec::with_capacity(names.len());
        for name in names {
            let rule: T =
                serde_json::from_value(serde_json::Value::String(name.clone())).map_err(|_| {
                    self.err(
                        key,
                        format!("unknown rule {name:?} (known rules: {})", known.join(", ")),
                    )
                })?;
            if rules.contains(&rule) {
                return Err(self.err(key, format!("rule {name:?} is listed twice")));
            }
            rules.push(rule);
        }
        if rules.is_empty() {
            return Err(self.err(key, "must list at least one rule"));
        }
        Ok(Some(rules))
    }

    fn matching(&self, raw: RawMatching) -> Result<MatchingConfig, ConfigError> {
        let default = MatchingConfig::default();
        Ok(MatchingConfig {
            case_sensitive: self.bool(
                "matching.case_sensitive",
                raw.case_sensitive,
                default.case_sensitive,
            )?,
            ifs_rules: self
                .rules(
                    "matching.ifs_rules",
                    raw.ifs_rules,
                    &IfsMatchRule::DEFAULT_ORDER,
                )?
                .unwrap_or(default.ifs_rules),
            flow_rules: self
                .rules(
                    "matching.flow_rules",
                    raw.flow_rules,
                    &FlowMatchRule::DEFAULT_ORDER,
                )?
                .unwrap_or(default.flow_rules),
        })
    }

    fn fix(&self, raw: RawFix) -> Result<FixConfig, ConfigError> {
        let default = FixConfig::default();
        Ok(FixConfig {
            enabled: self.bool("fix.enabled", raw.enabled, default.enabled)?,
            max_changes: self.int_in(
                "fix.max_changes",
                raw.max_changes,
                default.max_changes,
                0,
                u32::MAX,
            )?,
            max_change_percent: self.f64_in(
                "fix.max_change_percent",
                raw.max_change_percent,
                default.max_change_percent,
                0.0,
                100.0,
            )?,
            deactivate_orphans: self.bool(
                "fix.deactivate_orphans",
                raw.deactivate_orphans,
                default.deactivate_orphans,
            )?,
        })
    }

    fn schedule(&self, raw: RawSchedule) -> Result<Schedule, ConfigError> {
        let cron = text(raw.cron).unwrap_or_else(|| DEFAULT_CRON.to_string());
        let timezone = text(raw.timezone).unwrap_or_else(|| DEFAULT_TIMEZONE.to_string());
        Schedule::parse(&cron, &timezone).map_err(|e| match e {
            ScheduleError::FieldCount { expression, fields } => self.err(
                "schedule.cron",
                format!(
                    "not a valid 5-field crontab expression ({expression:?} has {fields} fields; \
                     seconds and Quartz-style 6/7-field expressions are not supported)"
                ),
            ),
            ScheduleError::InvalidCron { reason, .. } => self.err(
                "schedule.cron",
                format!("not a valid 5-field crontab expression ({reason})"),
            ),
            ScheduleError::NeverMatches { expression } => self.err(
                "schedule.cron",
                format!("{expression:?} never matches a real date"),
            ),
            ScheduleError::UnknownTimeZone(zone) => self.err(
                "schedule.timezone",
                format!("{zone:?} is not an IANA time zone (e.g. Europe/Stockholm, UTC)"),
            ),
        })
    }

    fn mailbox(&self, key: &str, address: &str) -> Result<(), ConfigError> {
        address
            .parse::<lettre::message::Mailbox>()
            .map(|_| ())
            .map_err(|e| self.err(key, format!("{address:?} is not an e-mail address ({e})")))
    }

    fn report(&self, raw: RawReport, azure: &AzureConfig) -> Result<ReportConfig, ConfigError> {
        let allow_insecure_http =
            self.bool("report.allow_insecure_http", raw.allow_insecure_http, false)?;
        let to = self.list("report.to", raw.to)?.unwrap_or_default();
        for address in &to {
            self.mailbox("report.to", address)?;
        }
        let send = match text(raw.send).as_deref() {
            None if to.is_empty() => SendPolicy::Never,
            None | Some("on_findings") => SendPolicy::OnFindings,
            Some("always") => SendPolicy::Always,
            Some("on_change") => SendPolicy::OnChange,
            Some("never") => SendPolicy::Never,
            Some(other) => {
                return Err(self.err(
                    "report.send",
                    format!("must be one of always, on_findings, on_change, never; got {other:?}"),
                ))
            }
        };
        let from = text(raw.from);
        if let Some(address) = &from {
            self.mailbox("report.from", address)?;
        }
        let transport = match text(raw.transport).as_deref().unwrap_or("smtp") {
            "smtp" => MailTransport::Smtp,
            "graph" => MailTransport::Graph,
            other => {
                return Err(self.err(
                    "report.transport",
                    format!("must be \"smtp\" or \"graph\", got {other:?}"),
                ))
            }
        };
        let smtp_url = match text(raw.smtp_url) {
            None => None,
            Some(url) => Some(
                smtp_endpoint(&url, allow_insecure_http)
                    .map_err(|m| self.err("report.smtp_url", m))?,
            ),
        };
        let smtp_username = text(raw.smtp_username);
        let smtp_password = self.secret(
            ("report.smtp_password", raw.smtp_password),
            ("report.smtp_password_file", raw.smtp_password_file),
        )?;
        match (&smtp_username, &smtp_password) {
            (Some(_), None) => return Err(self.err(
                "report.smtp_password",
                "is required when report.smtp_username is set (or set report.smtp_password_file)",
            )),
            (None, Some(_)) => {
                return Err(self.err(
                    "report.smtp_username",
                    "is required when report.smtp_password is set",
                ))
            }
            _ => {}
        }
        if send != SendPolicy::Never {
            let why = "is required unless report.send = \"never\"";
            if to.is_empty() {
                return Err(self.err("report.to", why));
            }
            if from.is_none() {
                return Err(self.err("report.from", why));
            }
            if transport == MailTransport::Smtp && smtp_url.is_none() {
                return Err(self.err(
                    "report.smtp_url",
                    "is required when report.transport = \"smtp\" and report.send is not \"never\"",
                ));
            }
        }
        let tenant_label =
            text(raw.tenant_label).unwrap_or_else(|| default_tenant_label(&azure.tenant_id));
        let findings_exit_code = self.int_in(
            "report.findings_exit_code",
            raw.findings_exit_code,
            DEFAULT_FINDINGS_EXIT_CODE,
            0,
            u8::MAX,
        )?;
        if matches!(findings_exit_code, 1 | 3 | 4) {
            return Err(self.err(
                "report.findings_exit_code",
                format!(
                    "must not be {findings_exit_code}: 1, 3 and 4 mean a failed run, a configuration error and an aborted run"
                ),
            ));
        }
        Ok(ReportConfig {
            send,
            to,
            from,
            transport,
            smtp_url,
            smtp_username,
            smtp_password,
            tenant_label: Some(tenant_label),
            findings_exit_code,
        })
    }

    fn server(&self, raw: RawServer) -> Result<ServerConfig, ConfigError> {
        let listen = match text(raw.listen) {
            None => None,
            Some(text) => Some(text.parse::<SocketAddr>().map_err(|_| {
                self.err(
                    "server.listen",
                    format!("{text:?} is not an address:port (e.g. 127.0.0.1:9464 or [::1]:9464)"),
                )
            })?),
        };
        let auth_token = self.secret(
            ("server.auth_token", raw.auth_token),
            ("server.auth_token_file", raw.auth_token_file),
        )?;
        Ok(ServerConfig { listen, auth_token })
    }

    fn limits(&self, raw: RawLimits) -> Result<LimitsConfig, ConfigError> {
        let default = LimitsConfig::default();
        let fetch_deadline = match text(raw.fetch_deadline) {
            None => default.fetch_deadline,
            Some(text) => {
                let deadline = humantime::parse_duration(text.trim()).map_err(|e| {
                    self.err(
                        "limits.fetch_deadline",
                        format!("{text:?} is not a duration such as \"2h\" or \"90m\" ({e})"),
                    )
                })?;
                if deadline.is_zero() {
                    return Err(self.err("limits.fetch_deadline", "must be longer than zero"));
                }
                deadline
            }
        };
        Ok(LimitsConfig {
            max_body_bytes: self.int_in(
                "limits.max_body_bytes",
                raw.max_body_bytes,
                default.max_body_bytes,
                1,
                i64::MAX as u64,
            )?,
            max_field_chars: self.int_in(
                "limits.max_field_chars",
                raw.max_field_chars,
                default.max_field_chars,
                1,
                1_000_000,
            )?,
            max_pages: self.int_in(
                "limits.max_pages",
                raw.max_pages,
                default.max_pages,
                1,
                u32::MAX,
            )?,
            fetch_deadline,
        })
    }

    fn tls(&self, raw: RawTls) -> Result<TlsConfig, ConfigError> {
        let Some(path) = self.path(raw.ca_file) else {
            return Ok(TlsConfig::default());
        };
        let bytes = std::fs::read(&path).map_err(|e| {
            self.err(
                "tls.ca_file",
                format!("cannot read CA bundle {}: {e}", path.display()),
            )
        })?;
        let blocks = pem::parse_many(&bytes).map_err(|e| {
            self.err(
                "tls.ca_file",
                format!("{} is not a PEM file ({e})", path.display()),
            )
        })?;
        if !blocks.iter().any(|b| b.tag() == "CERTIFICATE") {
            return Err(self.err(
                "tls.ca_file",
                format!(
                    "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                    path.display()
                ),
            ));
        }
        Ok(TlsConfig {
            ca_file: Some(path),
        })
    }

    fn safety(&self, raw: RawSafety) -> Result<SafetyConfig, ConfigError> {
        let default = SafetyConfig::default();
        Ok(SafetyConfig {
            max_source_drop_percent: self.f64_in(
                "safety.max_source_drop_percent",
                raw.max_source_drop_percent,
                default.max_source_drop_percent,
                0.0,
                100.0,
            )?,
        })
    }
}

fn default_url(text: &str) -> Result<Url, ConfigError> {
    Url::parse(text).map_err(|e| ConfigError::invalid(text, format!("built-in default URL: {e}")))
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

/// `report.smtp_url` as the sender will use it: an `smtp://` / `smtps://`
/// URL without a password, encrypted (smtps or STARTTLS required) unless the
/// host is loopback or `report.allow_insecure_http` is set.
fn smtp_endpoint(text: &str, allow_insecure: bool) -> Result<SmtpEndpoint, String> {
    let url = Url::parse(text.trim()).map_err(|e| format!("not a URL ({e})"))?;
    if url.scheme() != "smtp" && url.scheme() != "smtps" {
        return Err("must be an smtp:// or smtps:// URL".to_string());
    }
    if url.password().is_some() {
        return Err(
            "must not contain a password; use report.smtp_password or report.smtp_password_file"
                .to_string(),
        );
    }
    let endpoint = SmtpEndpoint::parse(text).map_err(|e| format!("not a usable SMTP URL ({e})"))?;
    if !endpoint.security.is_encrypted() && !allow_insecure && !endpoint.is_loopback() {
        return Err(
            "SMTP that may go unencrypted (tls=opportunistic or tls=none) is only allowed for \
             loopback hosts unless report.allow_insecure_http = true"
                .to_string(),
        );
    }
    Ok(endpoint)
}

/// `localhost`, 127.0.0.0/8 or ::1.
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
