//! The report mail over SMTP (lettre, rustls), to the server of
//! `report.smtp_url` as the configuration parsed it
//! ([`SmtpEndpoint`]). A login over `tls=none` is refused unless the host
//! is loopback.
//!
//! Credentials come from `report.smtp_username` / `report.smtp_password`,
//! never from the URL.

use super::MailError;
use crate::config::{ReportConfig, SmtpEndpoint, SmtpSecurity};
use crate::report::email::MailContent;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;
use std::time::Duration;

/// How long the whole SMTP conversation (connect, TLS, login, message) may
/// take before the send fails.
pub const DEFAULT_SMTP_TIMEOUT: Duration = Duration::from_secs(60);

/// A failure talking to `endpoint`.
fn endpoint_error(endpoint: &SmtpEndpoint, reason: impl Into<String>) -> MailError {
    MailError::Smtp {
        host: endpoint.host.clone(),
        port: endpoint.port,
        security: endpoint.security.as_str(),
        reason: reason.into(),
    }
}

/// Builds the report message: `multipart/mixed` of a
/// `multipart/alternative` (text/plain, text/html) and the CSV attachment.
/// `from` and each of `to` may be `addr@host` or `Name <addr@host>`.
pub fn build_message(
    from: &str,
    to: &[String],
    content: &MailContent,
) -> Result<Message, MailError> {
    let from: Mailbox = from.trim().parse().map_err(|e| MailError::InvalidAddress {
        field: "from",
        address: from.to_string(),
        reason: format!("{e}"),
    })?;
    if to.is_empty() {
        return Err(MailError::Config(
            "report.to is empty: no one to mail the report to".into(),
        ));
    }
    let mut builder = Message::builder()
        .from(from)
        .subject(content.subject.as_str());
    for address in to {
        let mailbox: Mailbox = address
            .trim()
            .parse()
            .map_err(|e| MailError::InvalidAddress {
                field: "to",
                address: address.clone(),
                reason: format!("{e}"),
            })?;
        builder = builder.to(mailbox);
    }
    let csv_type = ContentType::parse("text/csv; charset=utf-8")
        .map_err(|e| MailError::Build(format!("CSV content type: {e}")))?;
    let body = MultiPart::mixed()
        .multipart(MultiPart::alternative_plain_html(
            content.text.clone(),
            content.html.clone(),
        ))
        // As bytes, so lettre sends the CSV base64-encoded exactly as rendered
        // (a String body would have its line endings rewritten to CRLF).
        .singlepart(
            Attachment::new(content.csv_name.clone())
                .body(content.csv.clone().into_bytes(), csv_type),
        );
    builder
        .multipart(body)
        .map_err(|e| MailError::Build(e.to_string()))
}

/// Sends `content` through the server of `report.smtp_url`, from
/// `report.from` to `report.to`, logging in when `report.smtp_username` is
/// set. The whole conversation may take [`DEFAULT_SMTP_TIMEOUT`].
pub async fn send_smtp(cfg: &ReportConfig, content: &MailContent) -> Result<(), MailError> {
    send_smtp_with_timeout(cfg, content, DEFAULT_SMTP_TIMEOUT).await
}

/// [`send_smtp`] with another limit for the whole conversation.
pub async fn send_smtp_with_timeout(
    cfg: &ReportConfig,
    content: &MailContent,
    timeout: Duration,
) -> Result<(), MailError> {
    let endpoint = endpoint_of(cfg)?;
    let from = cfg.from.as_deref().ok_or_else(|| {
        MailError::Config("report.from is not set: the sender address of the report mail".into())
    })?;
    let message = build_message(from, &cfg.to, content)?;
    let transport = transport_for(cfg, &endpoint, timeout)?;
    let username = cfg.smtp_username.clone().unwrap_or_default();

    tracing::debug!(
        host = %endpoint.host,
        port = endpoint.port,
        security = endpoint.security.as_str(),
        recipients = cfg.to.len(),
        "sending report mail over SMTP"
    );
    // lettre's own timeout covers only the TCP connect; a server that
    // accepts and then stalls is cut off by this one.
    let sent = match tokio::time::timeout(timeout, transport.send(message)).await {
        Ok(sent) => sent,
        Err(_) => {
            return Err(endpoint_error(
                &endpoint,
                format!("timed out after {timeout:?} (no complete SMTP conversation)"),
            ))
        }
    };
    match sent {
        Ok(response) => {
            tracing::info!(
                host = %endpoint.host,
                code = %response.code(),
                "report mail accepted by the SMTP server"
            );
            Ok(())
        }
        Err(e) if is_auth_refusal(&e) => Err(MailError::SmtpAuth {
            host: endpoint.host.clone(),
            port: endpoint.port,
            security: endpoint.security.as_str(),
            username,
            reason: if e.status().is_some() {
                format!("the server refused it ({e})")
            } else {
                "the server offers no login method idrecon can use (AUTH PLAIN or LOGIN); \
                 many servers offer one only after STARTTLS"
                    .to_string()
            },
        }),
        Err(e) if e.is_timeout() => Err(endpoint_error(
            &endpoint,
            format!("timed out after {timeout:?}: {e}"),
        )),
        Err(e) => Err(endpoint_error(&endpoint, e.to_string())),
    }
}

/// Whether lettre's error is the server refusing the login (535, 534, 538)
/// or lettre finding no login method the server offers.
fn is_auth_refusal(e: &lettre::transport::smtp::Error) -> bool {
    if let Some(code) = e.status() {
        return matches!(code.to_string().as_str(), "534" | "535" | "538");
    }
    e.is_client() && e.to_string().contains("authentication")
}

/// The server `report.smtp_url` names (which must be set).
fn endpoint_of(cfg: &ReportConfig) -> Result<SmtpEndpoint, MailError> {
    cfg.smtp_url.clone().ok_or_else(|| {
        MailError::Config("report.smtp_url is not set (needed for transport = \"smtp\")".into())
    })
}

/// The lettre transport to `endpoint` with the configured TLS and login.
fn transport_for(
    cfg: &ReportConfig,
    endpoint: &SmtpEndpoint,
    timeout: Duration,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, MailError> {
    let credentials = match (&cfg.smtp_username, &cfg.smtp_password) {
        (Some(user), Some(password)) if !user.trim().is_empty() => Some(Credentials::new(
            user.clone(),
            password.expose_secret().to_string(),
        )),
        (Some(user), None) if !user.trim().is_empty() => {
            return Err(MailError::Config(
                "report.smtp_username is set but report.smtp_password is not".into(),
            ))
        }
        (_, Some(_)) => {
            return Err(MailError::Config(
                "report.smtp_password is set but report.smtp_username is not".into(),
            ))
        }
        _ => None,
    };
    if credentials.is_some() && endpoint.security == SmtpSecurity::None && !endpoint.is_loopback() {
        return Err(MailError::Config(format!(
            "report.smtp_url uses tls=none to {}: refusing to send the SMTP password unencrypted \
             (use tls=required or smtps://)",
            endpoint.host
        )));
    }

    let mut builder =
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(endpoint.host.as_str())
            .port(endpoint.port)
            .timeout(Some(timeout));
    if endpoint.security != SmtpSecurity::None {
        let params = TlsParameters::new(endpoint.host.clone())
            .map_err(|e| endpoint_error(endpoint, format!("TLS setup: {e}")))?;
        builder = builder.tls(match endpoint.security {
            SmtpSecurity::StartTls => Tls::Required(params),
            SmtpSecurity::Opportunistic => Tls::Opportunistic(params),
            _ => Tls::Wrapper(params),
        });
    }
    if let Some(credentials) = credentials {
        builder = builder.credentials(credentials);
    }
    Ok(builder.build())
}

/// Connects to the server of `report.smtp_url`, says EHLO, upgrades with
/// STARTTLS or implicit TLS as configured, logs in when a username is set,
/// and quits — without sending anything (`idrecon check`).
pub async fn test_smtp_connection(cfg: &ReportConfig, timeout: Duration) -> Result<(), MailError> {
    let endpoint = endpoint_of(cfg)?;
    let transport = transport_for(cfg, &endpoint, timeout)?;
    let username = cfg.smtp_username.clone().unwrap_or_default();
    match tokio::time::timeout(timeout, transport.test_connection()).await {
        Err(_) => Err(endpoint_error(
            &endpoint,
            format!("timed out after {timeout:?} (no complete SMTP conversation)"),
        )),
        Ok(Ok(true)) => Ok(()),
        Ok(Ok(false)) => Err(endpoint_error(&endpoint, "the server did not answer NOOP")),
        Ok(Err(e)) if is_auth_refusal(&e) => Err(MailError::SmtpAuth {
            host: endpoint.host.clone(),
            port: endpoint.port,
            security: endpoint.security.as_str(),
            username,
            reason: format!("the server refused it ({e})"),
        }),
        Ok(Err(e)) => Err(endpoint_error(&endpoint, e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_rejects_bad_addresses_by_field() {
        let content = MailContent {
            subject: "s".into(),
            text: "t".into(),
            html: "h".into(),
            csv_name: "a.csv".into(),
            csv: "x".into(),
        };
        let err = build_message("not an address", &["a@b.c".into()], &content).unwrap_err();
        assert!(
            matches!(err, MailError::InvalidAddress { field: "from", .. }),
            "{err}"
        );
        let err = build_message("a@b.c", &["a@b.c".into(), "nope".into()], &content).unwrap_err();
        assert!(
            matches!(err, MailError::InvalidAddress { field: "to", .. }),
            "{err}"
        );
        let err = build_message("a@b.c", &[], &content).unwrap_err();
        assert!(err.to_string().contains("report.to is empty"), "{err}");
        assert!(build_message("idrecon <a@b.c>", &["x@y.z".into()], &content).is_ok());
    }
}
