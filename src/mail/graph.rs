//! The report mail through Microsoft Graph `sendMail`
//! (docs/external-apis.md, "Send mail"): for tenants without an SMTP relay.
//!
//! `POST {graph_url}/v1.0/users/{from}/sendMail` (the URL from
//! [`graph_api_url`], like every Graph URL) with the HTML body, the
//! recipients and the CSV as a `fileAttachment`; Graph answers
//! `202 Accepted`. It goes through the shared HTTP layer
//! ([`crate::net`]): 429 and 503 are retried (bounded, honouring
//! `Retry-After`), a 401 refreshes the token once, nothing is redirected.

use super::MailError;
use crate::net::client::{Auth, ErrorShape, Idempotency, Payload, ServiceClient};
use crate::net::retry::RetryPolicy;
use crate::net::token::AccessTokenSource;
use crate::report::email::MailContent;
use crate::sources::graph::graph_api_url;
use crate::sources::{SourceError, SourceErrorKind, System};
use base64::Engine;
use lettre::message::Mailbox;
use reqwest::{Method, StatusCode};
use std::time::Duration;
use url::Url;

/// How long one sendMail request may take.
pub const GRAPH_SEND_TIMEOUT: Duration = Duration::from_secs(60);
/// Retries after the first attempt for 429 / 503.
const MAX_RETRIES: usize = 4;

/// How sendMail is retried: a few times, never for minutes.
fn mail_retry() -> RetryPolicy {
    RetryPolicy {
        max_retries: MAX_RETRIES,
        min_delay: Duration::from_millis(500),
        max_delay: Duration::from_secs(30),
        max_total_wait: Duration::from_secs(240),
    }
}

/// Sends `content` as the mailbox `from` (a user ID or UPN, or
/// `Name <upn>`) to `to`, through Graph at `graph_url` with a token from
/// `tokens` (the app needs the Mail.Send application permission).
pub async fn send_graph(
    http: &reqwest::Client,
    graph_url: &Url,
    tokens: &dyn AccessTokenSource,
    from: &str,
    to: &[String],
    content: &MailContent,
) -> Result<(), MailError> {
    let sender = mailbox_address(from);
    if sender.is_empty() {
        return Err(MailError::Config(
            "report.from is empty: Graph sends as that mailbox".into(),
        ));
    }
    if to.is_empty() {
        return Err(MailError::Config(
            "report.to is empty: no one to mail the report to".into(),
        ));
    }
    let recipients = to
        .iter()
        .map(|address| {
            address
                .trim()
                .parse::<Mailbox>()
                .map(|m| serde_json::json!({"emailAddress": {"address": m.email.to_string()}}))
                .map_err(|e| MailError::InvalidAddress {
                    field: "to",
                    address: address.clone(),
                    reason: e.to_string(),
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let url = send_mail_url(graph_url, &sender)?;
    let body = serde_json::json!({
        "message": {
            "subject": content.subject,
            "body": {"contentType": "HTML", "content": content.html},
            "toRecipients": recipients,
            "attachments": [{
                "@odata.type": "#microsoft.graph.fileAttachment",
                "name": content.csv_name,
                "contentType": "text/csv",
                "contentBytes": base64::engine::general_purpose::STANDARD.encode(content.csv.as_bytes()),
            }],
        },
        "saveToSentItems": false,
    });
    // A login failure is reported as such, before anything is sent.
    tokens.access_token().await.map_err(MailError::GraphToken)?;
    let api = ServiceClient::new(System::Azure, http.clone(), mail_retry(), ErrorShape::OData);
    api.call(
        Method::POST,
        &url,
        &Payload::Json(body),
        Auth::Bearer(tokens),
        Idempotency::Unsafe,
    )
    .await
    .map_err(|e| graph_mail_error(&url, e))?;
    tracing::info!(path = %url.path(), recipients = to.len(), "report mail accepted by Graph");
    Ok(())
}

/// What `idrecon check` learnt about mailing through Graph.
#[derive(Debug)]
pub enum SenderCheck {
    /// The mailbox exists; sendMail with an empty message was refused as
    /// malformed, not as forbidden (so the app may send).
    Ready,
    /// The mailbox exists, but sendMail answered 403: Mail.Send is missing.
    NoMailSend(MailError),
}

/// `idrecon check` for Graph mail: the sender mailbox must exist
/// (`GET /users/{from}`), and a sendMail with an empty message (which
/// Graph refuses without sending anything) must not answer 403.
pub async fn check_graph_sender(
    http: &reqwest::Client,
    graph_url: &Url,
    tokens: &dyn AccessTokenSource,
    from: &str,
) -> Result<SenderCheck, MailError> {
    let sender = mailbox_address(from);
    let mut url = graph_api_url(graph_url, &["users", &sender]);
    url.set_query(Some("$select=id,mail"));
    tokens.access_token().await.map_err(MailError::GraphToken)?;
    let api = ServiceClient::new(
        System::Azure,
        http.clone(),
        RetryPolicy::none(),
        ErrorShape::OData,
    );
    api.get_json::<serde_json::Value>(&url, Auth::Bearer(tokens))
        .await
        .map_err(|e| graph_mail_error(&url, e))?;
    let send_url = send_mail_url(graph_url, &sender)?;
    let probe = api
        .call(
            Method::POST,
            &send_url,
            &Payload::Json(serde_json::json!({})),
            Auth::Bearer(tokens),
            Idempotency::Unsafe,
        )
        .await;
    match probe {
        Err(e) if e.status == Some(403) => {
            Ok(SenderCheck::NoMailSend(graph_mail_error(&send_url, e)))
        }
        _ => Ok(SenderCheck::Ready),
    }
}

/// A failed Graph call as a [`MailError`] with the operator's hint.
fn graph_mail_error(url: &Url, e: SourceError) -> MailError {
    let path = url.path().to_string();
    match e.status {
        Some(status) => {
            let hint = StatusCode::from_u16(status)
                .ok()
                .and_then(|s| hint(s, e.code.as_deref()));
            MailError::GraphStatus {
                path,
                status,
                code: e.code,
                message: e.message,
                hint,
            }
        }
        None if e.kind == SourceErrorKind::Transport => MailError::GraphTransport {
            path,
            reason: e.message,
        },
        None => MailError::GraphTransport {
            path,
            reason: e.to_string(),
        },
    }
}

/// `{graph_url}/v1.0/users/{sender}/sendMail`, the sender percent-encoded
/// as one path segment.
fn send_mail_url(graph_url: &Url, sender: &str) -> Result<Url, MailError> {
    if graph_url.cannot_be_a_base() {
        return Err(MailError::Config(format!(
            "azure.graph_url {graph_url} cannot take a path (expected e.g. https://graph.microsoft.com)"
        )));
    }
    Ok(graph_api_url(graph_url, &["users", sender, "sendMail"]))
}

/// The bare address of `Name <addr>`, or the trimmed input (a UPN or an
/// object ID) when it is not in that form.
fn mailbox_address(from: &str) -> String {
    match from.trim().parse::<Mailbox>() {
        Ok(mailbox) => mailbox.email.to_string(),
        Err(_) => from.trim().to_string(),
    }
}

/// What the operator should do about a Graph refusal.
fn hint(status: StatusCode, code: Option<&str>) -> Option<&'static str> {
    match (status.as_u16(), code) {
        (403, _) | (_, Some("ErrorAccessDenied" | "Authorization_RequestDenied")) => Some(
            "the app needs the Mail.Send application permission with admin consent; \
             an Exchange application access policy, if used, must include the sender mailbox",
        ),
        (401, _) => Some("Graph refused the token: check the app credentials in [azure]"),
        (404, _)
        | (
            _,
            Some(
                "ErrorInvalidUser"
                | "MailboxNotEnabledForRESTAPI"
                | "ResourceNotFound"
                | "Request_ResourceNotFound",
            ),
        ) => Some("report.from must be an existing user with an Exchange Online mailbox"),
        (400, Some("ErrorInvalidRecipients")) => Some("check the addresses in report.to"),
        (429 | 503, _) => Some("Graph is throttling or unavailable; retries were exhausted"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_percent_encodes_the_sender_and_keeps_a_base_path() {
        let base = Url::parse("http://127.0.0.1:8080/graph/").unwrap();
        let url = send_mail_url(&base, "a b#EXT#@contoso.com").unwrap();
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:8080/graph/v1.0/users/a%20b%23EXT%23@contoso.com/sendMail"
        );
        let base = Url::parse("https://graph.microsoft.com").unwrap();
        let url = send_mail_url(&base, "x/y?z").unwrap();
        assert_eq!(
            url.as_str(),
            "https://graph.microsoft.com/v1.0/users/x%2Fy%3Fz/sendMail"
        );
        // Written with the version, as many admins do: not /v1.0/v1.0.
        let base = Url::parse("https://graph.microsoft.com/v1.0/").unwrap();
        let url = send_mail_url(&base, "a@contoso.com").unwrap();
        assert_eq!(
            url.as_str(),
            "https://graph.microsoft.com/v1.0/users/a@contoso.com/sendMail"
        );
    }

    #[test]
    fn sender_in_name_form_is_reduced_to_its_address() {
        assert_eq!(
            mailbox_address("idrecon <idrecon@contoso.com>"),
            "idrecon@contoso.com"
        );
        assert_eq!(
            mailbox_address(" 3f1c0000-0000-0000-0000-000000000000 "),
            "3f1c0000-0000-0000-0000-000000000000"
        );
    }
}
