//! The report mail through Microsoft Graph `sendMail`
//! (docs/external-apis.md, "Send mail"): for tenants without an SMTP relay.
//!
//! `POST {graph_url}/v1.0/users/{from}/sendMail` with the HTML body, the
//! recipients and the CSV as a `fileAttachment`; Graph answers
//! `202 Accepted`. 429 and 503 are retried (bounded, honouring
//! `Retry-After`); a 401 refreshes the token once.

use super::MailError;
use crate::auth::AccessTokenSource;
use crate::report::email::MailContent;
use backon::{ExponentialBuilder, Retryable};
use base64::Engine;
use lettre::message::Mailbox;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde::Deserialize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};
use url::Url;

/// How long one sendMail request may take.
pub const GRAPH_SEND_TIMEOUT: Duration = Duration::from_secs(60);
/// Retries after the first attempt for 429 / 503.
const MAX_RETRIES: usize = 4;
/// The longest `Retry-After` idrecon waits for once.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);

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
    let path = url.path().to_string();
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

    let token_refreshed = AtomicBool::new(false);
    let attempt = || async {
        let token = tokens.access_token().await.map_err(|e| Attempt {
            error: MailError::GraphToken(e),
            retry: false,
            retry_after: None,
        })?;
        let response = http
            .post(url.clone())
            .bearer_auth(token.expose_secret())
            .timeout(GRAPH_SEND_TIMEOUT)
            .json(&body)
            .send()
            .await
            .map_err(|e| Attempt {
                error: MailError::GraphTransport {
                    path: path.clone(),
                    reason: transport_reason(e),
                },
                retry: false,
                retry_after: None,
            })?;
        let status = response.status();
        if status == StatusCode::ACCEPTED {
            return Ok(());
        }
        let retry_after = retry_after(response.headers());
        let text = response.text().await.unwrap_or_default();
        let (code, message) = graph_error(&text);
        let hint = hint(status, code.as_deref());
        let retry = match status {
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => true,
            StatusCode::UNAUTHORIZED => {
                // A cached token may have been revoked or expired early: one fresh try.
                let first = !token_refreshed.swap(true, Ordering::SeqCst);
                if first {
                    tokens.invalidate().await;
                }
                first
            }
            _ => false,
        };
        Err(Attempt {
            error: MailError::GraphStatus {
                path: path.clone(),
                status: status.as_u16(),
                code,
                message,
                hint,
            },
            retry,
            retry_after,
        })
    };

    let result = attempt
        .retry(
            ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(500))
                .with_max_delay(Duration::from_secs(30))
                .with_max_times(MAX_RETRIES)
                .with_jitter(),
        )
        .when(|a: &Attempt| a.retry)
        .adjust(|a: &Attempt, next: Option<Duration>| {
            next.map(|d| a.retry_after.map_or(d, |ra| ra.min(MAX_RETRY_AFTER)))
        })
        .notify(|a: &Attempt, wait: Duration| {
            tracing::warn!(error = %a.error, ?wait, "Graph sendMail: retrying");
        })
        .await;
    match result {
        Ok(()) => {
            tracing::info!(path = %path, recipients = to.len(), "report mail accepted by Graph");
            Ok(())
        }
        Err(a) => Err(a.error),
    }
}

/// One failed attempt, with whether (and when) to try again.
struct Attempt {
    error: MailError,
    retry: bool,
    retry_after: Option<Duration>,
}

/// `{graph_url}/v1.0/users/{sender}/sendMail`, the sender percent-encoded
/// as one path segment.
fn send_mail_url(graph_url: &Url, sender: &str) -> Result<Url, MailError> {
    let mut url = graph_url.clone();
    url.set_query(None);
    url.set_fragment(None);
    url.path_segments_mut()
        .map_err(|()| {
            MailError::Config(format!(
                "azure.graph_url {graph_url} cannot take a path (expected e.g. https://graph.microsoft.com)"
            ))
        })?
        .pop_if_empty()
        .extend(["v1.0", "users", sender, "sendMail"]);
    Ok(url)
}

/// The bare address of `Name <addr>`, or the trimmed input (a UPN or an
/// object ID) when it is not in that form.
fn mailbox_address(from: &str) -> String {
    match from.trim().parse::<Mailbox>() {
        Ok(mailbox) => mailbox.email.to_string(),
        Err(_) => from.trim().to_string(),
    }
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(SystemTime::now()).unwrap_or_default())
}

#[derive(Deserialize)]
struct GraphErrorBody {
    error: GraphErrorInner,
}

#[derive(Deserialize)]
struct GraphErrorInner {
    code: Option<String>,
    message: Option<String>,
}

/// Graph's `error.code` and `error.message`, or the start of a non-JSON body.
fn graph_error(body: &str) -> (Option<String>, String) {
    match serde_json::from_str::<GraphErrorBody>(body) {
        Ok(b) => (
            b.error.code,
            b.error.message.unwrap_or_else(|| "no message".into()),
        ),
        Err(_) => {
            let trimmed = body.trim();
            let message = if trimmed.is_empty() {
                "empty response body".to_string()
            } else {
                let short: String = trimmed.chars().take(200).collect();
                format!("unexpected response body: {short}")
            };
            (None, message)
        }
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

/// A reqwest error without the URL (the path is reported separately).
fn transport_reason(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let e = e.without_url();
    let mut reason = format!("{kind}: {e}");
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        reason.push_str(&format!(": {s}"));
        source = s.source();
    }
    reason
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

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        let later = SystemTime::now() + Duration::from_secs(30);
        h.insert(RETRY_AFTER, httpdate::fmt_http_date(later).parse().unwrap());
        let d = retry_after(&h).unwrap();
        assert!(
            d <= Duration::from_secs(30) && d >= Duration::from_secs(28),
            "{d:?}"
        );
        h.insert(RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn graph_error_body_is_parsed_or_quoted() {
        let (code, msg) =
            graph_error(r#"{"error":{"code":"ErrorAccessDenied","message":"Access is denied."}}"#);
        assert_eq!(code.as_deref(), Some("ErrorAccessDenied"));
        assert_eq!(msg, "Access is denied.");
        let (code, msg) = graph_error("<html>bad gateway</html>");
        assert_eq!(code, None);
        assert!(msg.contains("bad gateway"));
    }
}
