//! Mailing the run report: over SMTP ([`smtp`], lettre) or Microsoft Graph
//! `sendMail` ([`graph`]), and the rule of when to mail ([`policy`]).
//!
//! Errors name the transport, the host or Graph path and what the operator
//! must change; they never carry a password or a token.

pub mod graph;
pub mod policy;
pub mod smtp;

use crate::auth::AccessTokenSource;
use crate::config::{MailTransport, ReportConfig};
use crate::net::tls::TlsSettings;
use crate::report::email::MailContent;
use crate::sources::SourceError;
use url::Url;

pub use graph::send_graph;
pub use policy::should_send;
pub use smtp::send_smtp;

/// Why a report mail was not sent.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// A `[report]` setting is missing or unusable.
    #[error("mail configuration: {0}")]
    Config(String),

    /// A sender or recipient address cannot be parsed.
    #[error("mail configuration: invalid address in report.{field}: {address:?}: {reason}")]
    InvalidAddress {
        field: &'static str,
        address: String,
        reason: String,
    },

    /// The message could not be assembled.
    #[error("mail: could not build the message: {0}")]
    Build(String),

    /// The SMTP server refused the login, or offers no usable login method.
    #[error(
        "SMTP ({security}) {host}:{port}: login as {username:?} failed: {reason}; \
         check report.smtp_username and report.smtp_password"
    )]
    SmtpAuth {
        host: String,
        port: u16,
        security: &'static str,
        username: String,
        reason: String,
    },

    /// Connecting, TLS, or the SMTP dialogue failed.
    #[error("SMTP ({security}) {host}:{port}: {reason}")]
    Smtp {
        host: String,
        port: u16,
        security: &'static str,
        reason: String,
    },

    /// No access token for Graph.
    #[error("Graph sendMail: could not get an access token: {0}")]
    GraphToken(#[source] SourceError),

    /// The request to Graph did not complete (connect, timeout, TLS).
    #[error("Graph sendMail POST {path}: {reason}")]
    GraphTransport { path: String, reason: String },

    /// Graph answered with something other than 202 Accepted.
    #[error(
        "Graph sendMail POST {path}: HTTP {status}{}: {message}{}",
        .code.as_ref().map(|c| format!(" [{c}]")).unwrap_or_default(),
        .hint.map(|h| format!(" ({h})")).unwrap_or_default()
    )]
    GraphStatus {
        path: String,
        status: u16,
        /// Graph's `error.code`, e.g. `ErrorAccessDenied`.
        code: Option<String>,
        message: String,
        /// What the operator should do, for the codes idrecon knows.
        hint: Option<&'static str>,
    },
}

/// What the Graph transport needs beyond `[report]`: the Graph client, base
/// URL and the app's token source (shared with the Azure AD source).
pub struct GraphMailer<'a> {
    pub http: &'a reqwest::Client,
    pub graph_url: &'a Url,
    pub tokens: &'a dyn AccessTokenSource,
}

/// Sends `content` with the transport `cfg.transport` names.
///
/// `graph` must be given for `transport = "graph"`; it is ignored for SMTP.
///
/// `tls` adds the CAs of `tls.ca_file` to what SMTP trusts.
pub async fn send_report_mail(
    cfg: &ReportConfig,
    content: &MailContent,
    graph: Option<&GraphMailer<'_>>,
    tls: &TlsSettings,
) -> Result<(), MailError> {
    match cfg.transport {
        MailTransport::Smtp => {
            smtp::send_smtp_trusting(cfg, content, smtp::DEFAULT_SMTP_TIMEOUT, tls).await
        }
        MailTransport::Graph => {
            let graph = graph.ok_or_else(|| {
                MailError::Config(
                    "report.transport = \"graph\" needs the [azure] section (Graph URL and app credentials)"
                        .into(),
                )
            })?;
            let from = cfg.from.as_deref().ok_or_else(|| {
                MailError::Config(
                    "report.from is not set: Graph sends as that mailbox (user id or UPN)".into(),
                )
            })?;
            send_graph(
                graph.http,
                graph.graph_url,
                graph.tokens,
                from,
                &cfg.to,
                content,
            )
            .await
        }
    }
}
