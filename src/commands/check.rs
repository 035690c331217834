//! `idrecon check`: validates the configuration (exit 3 naming the bad
//! key), signs in to each system and reads one page of users, tests the mail
//! transport without sending, looks at the store, and prints the next five
//! scheduled times. Changes nothing: no run, no mail, no migration, no lock.
//!
//! Each check is one line, `✔` or `✘`, and a failure says in plain words
//! what to change (a missing Graph permission, a rejected secret, …).
//! Exit 0 only when every check passed, 1 otherwise.

use super::common::load_config;
use crate::auth::{AccessTokenSource, ClientCredentials};
use crate::cli::Cli;
use crate::config::{Config, ConfigError, FlowSourceKind, MailTransport, SendPolicy};
use crate::error::{AppError, ExitCode};
use crate::mail::graph::{check_graph_sender, SenderCheck};
use crate::mail::smtp::test_smtp_connection;
use crate::mail::MailError;
use crate::net::tls::TlsSettings;
use crate::schedule::Schedule;
use crate::sources::flow::FlowHttp;
use crate::sources::flow_csv::FlowCsv;
use crate::sources::graph::GraphSource;
use crate::sources::http::{build_client, HttpSettings};
use crate::sources::ifs::IfsSource;
use crate::sources::retry::RetryPolicy;
use crate::sources::{SourceError, SourceErrorKind, System};
use crate::store::{schema_status, SchemaStatus};
use chrono::{DateTime, Utc};
use std::error::Error as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// How many scheduled times `check` prints.
pub const UPCOMING_RUNS: usize = 5;

/// How long the SMTP test may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(20);

/// The outcome of one check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckLine {
    /// What was checked, e.g. `Azure AD sign-in`.
    pub name: String,
    pub ok: bool,
    /// What was found; for a failure, what to change.
    pub detail: String,
}

impl CheckLine {
    fn pass(name: &str, detail: impl Into<String>) -> Self {
        CheckLine {
            name: name.to_string(),
            ok: true,
            detail: detail.into(),
        }
    }

    fn fail(name: &str, detail: impl Into<String>) -> Self {
        CheckLine {
            name: name.to_string(),
            ok: false,
            detail: detail.into(),
        }
    }
}

/// `idrecon check`.
pub async fn run(cli: &Cli) -> Result<ExitCode, AppError> {
    let cfg = load_config(cli)?;
    let source = if cli.config.exists() {
        format!("{} is valid", cli.config.display())
    } else {
        "valid (from IDRECON__ environment variables)".to_string()
    };
    let mut lines = vec![CheckLine::pass("configuration", source)];
    lines.extend(check_all(&cfg, &check_settings()).await?);
    let text = render(&lines, &cfg.schedule, Utc::now());
    super::common::write_output(&text, None)?;
    Ok(if lines.iter().all(|l| l.ok) {
        ExitCode::Ok
    } else {
        ExitCode::Failure
    })
}

/// Timeouts and retries for the checks: a throttled or briefly unavailable
/// service gets a second chance, but nothing waits for minutes.
pub fn check_settings() -> HttpSettings {
    HttpSettings {
        connect_timeout: Duration::from_secs(10),
        request_timeout: Duration::from_secs(30),
        retry: RetryPolicy {
            max_retries: 2,
            min_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(5),
            max_total_wait: Duration::from_secs(15),
        },
        ..HttpSettings::default()
    }
}

/// Runs every check of `cfg` (besides the configuration itself, which is
/// valid once it loaded). `Err` only for a setting a connector cannot be
/// built from (exit 3); every other problem is a failed line.
pub async fn check_all(cfg: &Config, settings: &HttpSettings) -> Result<Vec<CheckLine>, AppError> {
    let settings = &settings.for_config(cfg);
    let http = build_client(System::Azure, settings).map_err(setup_error)?;
    let azure_tokens: Arc<ClientCredentials> = Arc::new(
        ClientCredentials::azure(&cfg.azure, http.clone())
            .map_err(setup_error)?
            .with_settings(settings),
    );
    let graph =
        GraphSource::new(&cfg.azure, azure_tokens.clone(), settings).map_err(setup_error)?;
    let ifs_tokens: Arc<ClientCredentials> = Arc::new(
        ClientCredentials::ifs(&cfg.ifs, http.clone())
            .map_err(setup_error)?
            .with_settings(settings),
    );
    let ifs = IfsSource::new(&cfg.ifs, ifs_tokens.clone(), http.clone(), settings)
        .map_err(setup_error)?;
    let flow = match cfg.flow.source {
        FlowSourceKind::Http => FlowCheck::Http(Box::new(
            FlowHttp::new(&cfg.flow, http.clone(), settings).map_err(setup_error)?,
        )),
        FlowSourceKind::Csv => match &cfg.flow.csv_path {
            Some(path) => FlowCheck::Csv(FlowCsv::new(path.clone())),
            None => {
                return Err(AppError::Config(ConfigError::invalid(
                    "flow.csv_path",
                    "flow.source = \"csv\" needs flow.csv_path",
                )))
            }
        },
    };

    let (azure, ifs_lines, flow_line) = tokio::join!(
        check_azure(cfg, azure_tokens.as_ref(), &graph),
        check_ifs(ifs_tokens.as_ref(), &ifs),
        check_flow(&flow),
    );
    let azure_signed_in = azure.first().is_some_and(|l| l.ok);
    let mut lines = azure;
    lines.extend(ifs_lines);
    lines.push(flow_line);
    let graph_mail =
        azure_signed_in.then_some((&http, azure_tokens.as_ref() as &dyn AccessTokenSource));
    lines.push(check_mail(cfg, graph_mail).await);
    lines.push(check_store(&cfg.store.url).await);
    Ok(lines)
}

/// The report of `check`: one line per check, then the next scheduled times.
pub fn render(lines: &[CheckLine], schedule: &Schedule, now: DateTime<Utc>) -> String {
    let mut out = String::new();
    for line in lines {
        let mark = if line.ok { '✔' } else { '✘' };
        out.push_str(&format!("{mark} {}: {}\n", line.name, line.detail));
    }
    out.push_str(&format!(
        "Next {UPCOMING_RUNS} runs ({} in {}):\n",
        schedule.expression(),
        schedule.timezone()
    ));
    for time in schedule.upcoming(now, UPCOMING_RUNS) {
        out.push_str(&format!("  {}\n", time.format("%a %Y-%m-%d %H:%M %Z")));
    }
    let failed = lines.iter().filter(|l| !l.ok).count();
    if failed == 0 {
        out.push_str("All checks passed.\n");
    } else {
        out.push_str(&format!(
            "{failed} check{} failed.\n",
            if failed == 1 { "" } else { "s" }
        ));
    }
    out
}

/// A connector that cannot be built from the configuration (exit 3).
fn setup_error(e: SourceError) -> AppError {
    if e.kind == SourceErrorKind::Config {
        AppError::Config(ConfigError::invalid(e.system.as_str(), e.message))
    } else {
        AppError::Other(anyhow::anyhow!("{e}"))
    }
}

enum FlowCheck {
    Http(Box<FlowHttp>),
    Csv(FlowCsv),
}

fn users(n: usize) -> &'static str {
    if n == 1 {
        "user"
    } else {
        "users"
    }
}

async fn check_azure(
    cfg: &Config,
    tokens: &dyn AccessTokenSource,
    graph: &GraphSource,
) -> Vec<CheckLine> {
    const LOGIN: &str = "Azure AD sign-in";
    const READ: &str = "Azure AD users (Microsoft Graph)";
    if let Err(e) = tokens.access_token().await {
        return vec![
            CheckLine::fail(LOGIN, explain_azure_login(&e)),
            CheckLine::fail(READ, "not tried: no Azure AD token"),
        ];
    }
    let login = CheckLine::pass(
        LOGIN,
        format!(
            "app {} got a token from tenant {}",
            cfg.azure.client_id, cfg.azure.tenant_id
        ),
    );
    let scope = match &cfg.azure.group_id {
        Some(group) if !group.trim().is_empty() => format!("members of group {group}"),
        _ => "users".to_string(),
    };
    let read = match graph.probe().await {
        Ok(n) => CheckLine::pass(
            READ,
            format!("read {scope} ({n} {} on a one-user page)", users(n)),
        ),
        Err(e) => CheckLine::fail(READ, explain_graph(&e, cfg.azure.group_id.as_deref())),
    };
    vec![login, read]
}

async fn check_ifs(tokens: &dyn AccessTokenSource, ifs: &IfsSource) -> Vec<CheckLine> {
    const LOGIN: &str = "IFS IAM sign-in";
    const READ: &str = "IFS users (OData)";
    if let Err(e) = tokens.access_token().await {
        return vec![
            CheckLine::fail(LOGIN, explain_ifs_login(&e)),
            CheckLine::fail(READ, "not tried: no IFS token"),
        ];
    }
    let login = CheckLine::pass(LOGIN, "token endpoint discovered, token issued");
    let read = match ifs.probe().await {
        Ok(n) => CheckLine::pass(
            READ,
            format!("read users ({n} {} on a one-user page)", users(n)),
        ),
        Err(e) => CheckLine::fail(READ, explain_ifs_read(&e)),
    };
    vec![login, read]
}

async fn check_flow(flow: &FlowCheck) -> CheckLine {
    match flow {
        FlowCheck::Http(flow) => {
            const NAME: &str = "Flow endpoint";
            match flow.probe().await {
                Ok(n) => CheckLine::pass(
                    NAME,
                    format!("read the first page of users ({n} {})", users(n)),
                ),
                Err(e) => CheckLine::fail(NAME, explain_flow(&e)),
            }
        }
        FlowCheck::Csv(csv) => {
            const NAME: &str = "Flow CSV export";
            match csv.fetch_all().await {
                Ok(list) => CheckLine::pass(
                    NAME,
                    format!(
                        "{} parses: {} {} (report only: fixes need the Flow endpoint)",
                        csv.path().display(),
                        list.len(),
                        users(list.len())
                    ),
                ),
                Err(e) => CheckLine::fail(NAME, e.to_string()),
            }
        }
    }
}

/// `graph`: the HTTP client and the Azure token source, when signed in.
async fn check_mail(
    cfg: &Config,
    graph: Option<(&reqwest::Client, &dyn AccessTokenSource)>,
) -> CheckLine {
    const NAME: &str = "report mail";
    let report = &cfg.report;
    if report.send == SendPolicy::Never {
        return CheckLine::pass(NAME, "not sent (report.send = \"never\")");
    }
    if report.to.is_empty() {
        return CheckLine::pass(NAME, "not sent (report.to is empty)");
    }
    match report.transport {
        MailTransport::Smtp => {
            let target = report
                .smtp_url
                .as_ref()
                .map(|e| format!("{}:{} ({})", e.host, e.port, e.security.as_str()))
                .unwrap_or_else(|| "the SMTP server".to_string());
            match test_smtp_connection(report, SMTP_TIMEOUT, &TlsSettings::from_config(cfg)).await {
                Ok(()) => CheckLine::pass(
                    NAME,
                    format!(
                        "SMTP {target} accepted the connection{} (no mail sent)",
                        if report.smtp_username.is_some() {
                            " and the login"
                        } else {
                            ""
                        }
                    ),
                ),
                Err(e) => CheckLine::fail(NAME, e.to_string()),
            }
        }
        MailTransport::Graph => {
            let Some(from) = report.from.as_deref() else {
                return CheckLine::fail(
                    NAME,
                    "report.from is not set: Graph sends as that mailbox",
                );
            };
            let Some((http, tokens)) = graph else {
                return CheckLine::fail(
                    NAME,
                    "Graph sendMail needs the Azure AD token, which could not be obtained (see above)",
                );
            };
            match check_graph_sender(http, &cfg.azure.graph_url, tokens, from).await {
                Ok(SenderCheck::Ready) => CheckLine::pass(
                    NAME,
                    format!("Graph: the sender mailbox {from} exists and sendMail is not forbidden (no mail sent)"),
                ),
                Ok(SenderCheck::NoMailSend(e)) => CheckLine::fail(
                    NAME,
                    format!("Graph: the sender mailbox {from} exists, but sendMail is forbidden: {e}"),
                ),
                Err(MailError::GraphStatus { status: 404, .. }) => CheckLine::fail(
                    NAME,
                    format!("Graph has no user {from}: report.from must be an existing user with an Exchange Online mailbox"),
                ),
                Err(e) => CheckLine::fail(NAME, e.to_string()),
            }
        }
    }
}

/// Looks at the store without changing it: the file (or, when missing,
/// its directory) and whether every migration of this build is applied.
async fn check_store(url: &str) -> CheckLine {
    const NAME: &str = "store";
    let path = match crate::store::database_path(url) {
        Ok(p) => p,
        Err(e) => return CheckLine::fail(NAME, e.to_string()),
    };
    if !path.exists() {
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        return if dir.is_dir() {
            CheckLine::pass(
                NAME,
                format!(
                    "{} does not exist yet; the first run (or `idrecon migrate`) creates it",
                    path.display()
                ),
            )
        } else {
            CheckLine::fail(
                NAME,
                format!(
                    "{} cannot be created: directory {} does not exist",
                    path.display(),
                    dir.display()
                ),
            )
        };
    }
    match schema_status(&path).await {
        // The database's own words (not this crate's wrapping of them).
        Err(e) => CheckLine::fail(
            NAME,
            format!(
                "cannot open {}: {}",
                path.display(),
                e.source().map_or_else(|| e.to_string(), |s| s.to_string())
            ),
        ),
        Ok(SchemaStatus::Newer { unknown }) => CheckLine::fail(
            NAME,
            format!(
                "{} was migrated by a newer idrecon ({unknown} migration{} this version does not know); use that version",
                path.display(),
                if unknown == 1 { "" } else { "s" }
            ),
        ),
        Ok(SchemaStatus::Pending { pending }) => CheckLine::fail(
            NAME,
            format!(
                "{} opens, but {pending} migration{} pending: run `idrecon migrate`",
                path.display(),
                if pending == 1 { " is" } else { "s are" }
            ),
        ),
        Ok(SchemaStatus::UpToDate { migrations }) => CheckLine::pass(
            NAME,
            format!(
                "{} opens, schema up to date ({migrations} migrations)",
                path.display()
            ),
        ),
    }
}

// ------------------------------------------------------------ explanations

fn is_unreachable(e: &SourceError) -> bool {
    e.kind == SourceErrorKind::Transport
}

/// Why Azure AD issued no token, in words.
pub fn explain_azure_login(e: &SourceError) -> String {
    let code = e.code.as_deref().unwrap_or("");
    let hint = if is_unreachable(e) {
        "cannot reach the Azure AD login endpoint (azure.login_url): check the network, proxy and firewall"
    } else if code == "invalid_client" {
        "Azure AD rejected the app's credentials: the client secret (azure.client_secret / client_secret_file) or certificate is wrong or expired"
    } else if code == "unauthorized_client" {
        "Azure AD does not know azure.client_id in tenant azure.tenant_id: check both"
    } else if e.message.contains("Tenant") || e.message.contains("90002") {
        "Azure AD does not know azure.tenant_id"
    } else {
        "Azure AD issued no token for the app"
    };
    format!("{hint} ({e})")
}

/// Why Graph refused to list users, in words.
pub fn explain_graph(e: &SourceError, group_id: Option<&str>) -> String {
    let code = e.code.as_deref().unwrap_or("");
    let hint = if is_unreachable(e) {
        "cannot reach Microsoft Graph (azure.graph_url): check the network, proxy and firewall"
            .to_string()
    } else if e.status.is_none() && e.kind == SourceErrorKind::Auth {
        // 200 with id-only members: GroupMember.Read.All without User.Read.All.
        "Microsoft Graph sent users without their properties: the app registration lacks application permission User.Read.All (GroupMember.Read.All alone shows only member IDs) — grant it with admin consent".to_string()
    } else if e.status == Some(403) || code == "Authorization_RequestDenied" {
        "the app registration lacks Microsoft Graph application permission User.Read.All (with azure.group_id, GroupMember.Read.All as well) — grant admin consent".to_string()
    } else if e.status == Some(401) {
        "Microsoft Graph did not accept the app's token: azure.login_url and azure.graph_url must belong to the same cloud".to_string()
    } else if e.status == Some(404) && group_id.is_some() {
        format!(
            "azure.group_id {} is not a group in this tenant",
            group_id.unwrap_or_default()
        )
    } else {
        "Microsoft Graph did not list users".to_string()
    };
    format!("{hint} ({e})")
}

/// Why IFS IAM issued no token, in words.
pub fn explain_ifs_login(e: &SourceError) -> String {
    let code = e.code.as_deref().unwrap_or("");
    let hint = if e.message.contains("OpenID discovery") {
        "cannot read the OpenID configuration below ifs.issuer_url: check the URL and the realm (namespace) at its end"
    } else if is_unreachable(e) {
        "cannot reach the IFS IAM token endpoint: check the network, proxy and firewall"
    } else if code == "unauthorized_client" {
        "the IAM client needs Service Accounts enabled (client credentials grant)"
    } else if code == "invalid_client" || e.status == Some(401) {
        "IFS IAM rejected ifs.client_id / ifs.client_secret"
    } else {
        "IFS IAM issued no token"
    };
    format!("{hint} ({e})")
}

/// Why IFS did not list users, in words.
pub fn explain_ifs_read(e: &SourceError) -> String {
    let hint = if is_unreachable(e) {
        "cannot reach IFS (ifs.url): check the network, proxy and firewall"
    } else if matches!(e.status, Some(401 | 403)) {
        "the IAM client needs Service Accounts enabled and a service user allowed to read users (a permission set granting the UserHandling projection)"
    } else if e.status == Some(404) {
        "ifs.url / ifs.users_path do not name the Users entity set"
    } else if e.status == Some(400) {
        "IFS refused the query: check ifs.directory_id_field and ifs.email_field"
    } else {
        "IFS did not list users"
    };
    format!("{hint} ({e})")
}

/// Why the Flow endpoint did not list users, in words.
pub fn explain_flow(e: &SourceError) -> String {
    let hint = if is_unreachable(e) {
        "cannot reach the Flow endpoint (flow.url): check the network, proxy and firewall"
    } else if e.status == Some(401) {
        "flow.username/password rejected by the Flow endpoint"
    } else if e.status == Some(403) {
        "the Flow machine user (flow.username) may not run the idrecon workflows"
    } else if e.status == Some(404) {
        "flow.url has no `users` workflow: publish the idrecon Flow endpoint (deploy/flow/README.md) and check flow.url"
    } else {
        "the Flow endpoint did not list users"
    };
    format!("{hint} ({e})")
}
