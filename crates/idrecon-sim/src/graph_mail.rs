//! Simulated Graph `POST /users/{sender}/sendMail`: checks the body the way
//! Graph does, keeps every accepted message for tests, answers `202`.

use super::config::MAIL_SENDER;
use super::faults::FaultTarget;
use super::graph::check_auth;
use super::server::{apply_early_fault, bearer, error_response, ErrorShape, Shared};
use super::state::{lock, read, SentMail};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::Value;

/// Graph refuses `sendMail` requests above 4 MB (larger attachments need an
/// upload session).
pub(crate) const MAX_MAIL_REQUEST_BYTES: usize = 4 * 1024 * 1024;

fn bad(code: &str, message: impl AsRef<str>) -> Response {
    error_response(
        ErrorShape::Graph,
        StatusCode::BAD_REQUEST,
        code,
        message.as_ref(),
    )
}

pub(crate) async fn send_mail(
    State(state): State<Shared>,
    Path(sender): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(r) = check_auth(&state, &headers) {
        return r;
    }
    let decision = state.fault_for_request(FaultTarget::Mail);
    let presented = bearer(&headers).map(str::to_owned);
    if let Err(r) = apply_early_fault(decision, ErrorShape::Graph, || {
        if let Some(t) = presented {
            lock(&state.azure_tokens).expire(&t);
        }
    })
    .await
    {
        return r;
    }
    let known_sender = sender.eq_ignore_ascii_case(MAIL_SENDER) || {
        let azure = read(&state.azure);
        azure.find_by_id(&sender).is_some()
            || azure.users.iter().any(|u| {
                u.user_principal_name().eq_ignore_ascii_case(&sender)
                    || u.mail().is_some_and(|m| m.eq_ignore_ascii_case(&sender))
            })
    };
    if !known_sender {
        return error_response(
            ErrorShape::Graph,
            StatusCode::NOT_FOUND,
            "ErrorInvalidUser",
            &format!("The requested user '{sender}' is invalid."),
        );
    }
    let bytes = match axum::body::to_bytes(body, MAX_MAIL_REQUEST_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            return error_response(
                ErrorShape::Graph,
                StatusCode::PAYLOAD_TOO_LARGE,
                "ErrorRequestEntityTooLarge",
                "The request exceeds the 4 MB limit of sendMail; use an upload session for large attachments.",
            )
        }
    };
    let body: Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => {
            return bad(
                "BadRequest",
                format!("Unable to read JSON request payload: {e}"),
            )
        }
    };
    if let Err(r) = validate(&body) {
        return r;
    }
    lock(&state.mail).push(SentMail { sender, body });
    StatusCode::ACCEPTED.into_response()
}

/// The checks Graph applies to a `sendMail` body.
fn validate(body: &Value) -> Result<(), Response> {
    let object = body
        .as_object()
        .ok_or_else(|| bad("BadRequest", "The request body must be a JSON object."))?;
    for key in object.keys() {
        if key != "message" && key != "saveToSentItems" {
            return Err(bad(
                "BadRequest",
                format!("The property '{key}' does not exist on type 'microsoft.graph.sendMail'."),
            ));
        }
    }
    if let Some(save) = object.get("saveToSentItems") {
        // Graph reads `"false"`/`"true"` strings as booleans: Microsoft's
        // own sendMail example sends `"saveToSentItems": "false"`.
        let boolean = save.is_boolean()
            || save
                .as_str()
                .is_some_and(|s| s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false"));
        if !boolean {
            return Err(bad(
                "BadRequest",
                format!("Cannot convert the literal '{save}' to the expected type 'Edm.Boolean'."),
            ));
        }
    }
    let message = object
        .get("message")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("ErrorInvalidRequest", "The 'message' object is required."))?;
    if !message.get("subject").is_some_and(Value::is_string) {
        return Err(bad(
            "ErrorInvalidRequest",
            "message.subject must be a string.",
        ));
    }
    let content_body = message
        .get("body")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("ErrorInvalidRequest", "message.body is required."))?;
    let content_type = content_body
        .get("contentType")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !content_type.eq_ignore_ascii_case("html") && !content_type.eq_ignore_ascii_case("text") {
        return Err(bad(
            "ErrorInvalidRequest",
            format!("message.body.contentType '{content_type}' is not Text or HTML."),
        ));
    }
    if !content_body.get("content").is_some_and(Value::is_string) {
        return Err(bad(
            "ErrorInvalidRequest",
            "message.body.content must be a string.",
        ));
    }
    let mut recipients = 0;
    for field in ["toRecipients", "ccRecipients", "bccRecipients"] {
        let Some(list) = message.get(field) else {
            continue;
        };
        let list = list.as_array().ok_or_else(|| {
            bad(
                "ErrorInvalidRecipients",
                format!("{field} must be an array."),
            )
        })?;
        for recipient in list {
            let address = recipient
                .pointer("/emailAddress/address")
                .and_then(Value::as_str)
                .unwrap_or("");
            let valid = address.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty() && domain.contains('.') && !address.contains(char::is_whitespace)
            });
            if !valid {
                return Err(bad(
                    "ErrorInvalidRecipients",
                    format!("At least one recipient is not valid., Recipient '{address}' is not resolved. All recipients must be resolved before a message can be submitted."),
                ));
            }
            recipients += 1;
        }
    }
    if recipients == 0 {
        return Err(bad(
            "ErrorInvalidRecipients",
            "At least one recipient is required.",
        ));
    }
    if let Some(attachments) = message.get("attachments") {
        let list = attachments
            .as_array()
            .ok_or_else(|| bad("ErrorInvalidRequest", "attachments must be an array."))?;
        for (i, a) in list.iter().enumerate() {
            let kind = a.get("@odata.type").and_then(Value::as_str).unwrap_or("");
            if !kind.eq_ignore_ascii_case("#microsoft.graph.fileAttachment") {
                return Err(bad(
                    "ErrorInvalidRequest",
                    format!("attachment {i}: @odata.type '{kind}' is not #microsoft.graph.fileAttachment."),
                ));
            }
            let name = a.get("name").and_then(Value::as_str).unwrap_or("");
            if name.is_empty() {
                return Err(bad(
                    "ErrorInvalidRequest",
                    format!("attachment {i}: name is required."),
                ));
            }
            let content = a.get("contentBytes").and_then(Value::as_str).unwrap_or("");
            if base64::engine::general_purpose::STANDARD
                .decode(content)
                .is_err()
            {
                return Err(bad(
                    "ErrorInvalidRequest",
                    format!("attachment {i}: contentBytes is not valid base64."),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn good() -> Value {
        json!({"message":{"subject":"s","body":{"contentType":"HTML","content":"<p>x</p>"},
            "toRecipients":[{"emailAddress":{"address":"a@contoso.com"}}],
            "attachments":[{"@odata.type":"#microsoft.graph.fileAttachment","name":"r.csv","contentType":"text/csv","contentBytes":"YSxi"}]},
            "saveToSentItems":false})
    }

    #[test]
    fn accepts_the_documented_shape() {
        assert!(validate(&good()).is_ok());
    }

    #[test]
    fn accepts_save_to_sent_items_as_microsofts_example_sends_it() {
        for save in [json!("false"), json!("True"), json!(true)] {
            let mut v = good();
            v["saveToSentItems"] = save.clone();
            assert!(validate(&v).is_ok(), "{save}");
        }
        let mut v = good();
        v["saveToSentItems"] = json!("nope");
        assert!(validate(&v).is_err());
    }

    #[test]
    fn rejects_broken_bodies() {
        let mut cases = Vec::new();
        let mut v = good();
        v["message"]["toRecipients"] = json!([]);
        cases.push(v);
        let mut v = good();
        v["message"]["toRecipients"][0]["emailAddress"]["address"] = json!("nobody");
        cases.push(v);
        let mut v = good();
        v["message"]["attachments"][0]["contentBytes"] = json!("***");
        cases.push(v);
        let mut v = good();
        v["message"]["body"]["contentType"] = json!("markdown");
        cases.push(v);
        let mut v = good();
        v["extra"] = json!(1);
        cases.push(v);
        cases.push(json!({"saveToSentItems": false}));
        for case in cases {
            assert!(validate(&case).is_err(), "{case}");
        }
    }
}
