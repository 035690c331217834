//! Simulated Flow endpoint (docs/contract.md, "Flow endpoint"): the machine
//! workflows an admin publishes — list users with a cursor, rename,
//! deactivate — behind basic auth of a Flow machine user.

use super::config::{FLOW_PASSWORD, FLOW_USERNAME};
use super::faults::{FaultKind, FaultTarget};
use super::server::{
    apply_early_fault, dropped_connection, error_response, json_response, listing_response,
    parse_query, query_param, unauthorized_flow, ErrorShape, Shared,
};
use super::state::{read, write, FlowWriteOutcome};
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use base64::Engine;
use idrecon_core::model::FlowUser;
use serde::Serialize;
use serde_json::{json, Value};

pub(crate) fn routes() -> Router<Shared> {
    Router::new()
        .route("/flow/users", get(list))
        .route("/flow/users/rename", post(rename))
        .route("/flow/users/deactivate", post(deactivate))
}

/// True when the request carries the machine user's basic auth.
fn authorized(headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, value) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("basic").then_some(value.trim())
        })
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .is_some_and(|pair| pair == format!("{FLOW_USERNAME}:{FLOW_PASSWORD}"))
}

fn flow_error(status: StatusCode, message: &str) -> Response {
    error_response(ErrorShape::Flow, status, "", message)
}

/// A Flow user in the endpoint's JSON shape.
#[derive(Serialize)]
struct FlowUserJson<'a> {
    #[serde(rename = "userId")]
    user_id: &'a str,
    name: Option<&'a str>,
    email: Option<&'a str>,
    active: bool,
    #[serde(rename = "type")]
    user_type: &'a str,
    #[serde(rename = "syncSource")]
    sync_source: Option<&'a str>,
}

impl<'a> From<&'a FlowUser> for FlowUserJson<'a> {
    fn from(u: &'a FlowUser) -> Self {
        FlowUserJson {
            user_id: u.user_id(),
            name: u.name(),
            email: u.email(),
            active: u.active(),
            user_type: u.user_type(),
            sync_source: u.sync_source(),
        }
    }
}

#[derive(Serialize)]
struct ListBody<'a> {
    users: Vec<FlowUserJson<'a>>,
    #[serde(rename = "nextCursor")]
    next_cursor: Option<String>,
}

fn decode_cursor(cursor: &str) -> Option<(usize, u32)> {
    let plain = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()?;
    let plain = String::from_utf8(plain).ok()?;
    let (offset, page) = plain.strip_prefix("c|")?.split_once('|')?;
    Some((offset.parse().ok()?, page.parse().ok()?))
}

async fn list(
    State(state): State<Shared>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    if !authorized(&headers) {
        return unauthorized_flow();
    }
    let query = parse_query(raw.as_deref());
    let (offset, page) = match query_param(&query, "cursor").filter(|c| !c.is_empty()) {
        None => (0, 1),
        Some(c) => match decode_cursor(c) {
            Some(x) => x,
            None => return flow_error(StatusCode::BAD_REQUEST, &format!("invalid cursor '{c}'")),
        },
    };
    let decision = state.fault_for_page(FaultTarget::Flow, page, |k| {
        !matches!(k, FaultKind::ExpireDelta | FaultKind::DropAfter)
    });
    let late = match apply_early_fault(decision, ErrorShape::Flow, || {}).await {
        Ok(l) => l,
        Err(r) => return r,
    };
    let page_size = state.settings().flow_page_size.max(1);
    let body = {
        let flow = read(&state.flow);
        let users: &[FlowUser] = if late.empty { &[] } else { &flow.users };
        let start = offset.min(users.len());
        let end = offset.saturating_add(page_size).min(users.len());
        let next_cursor = (end < users.len()).then(|| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(format!("c|{end}|{}", page + 1).as_bytes())
        });
        serde_json::to_vec(&ListBody {
            users: users[start..end].iter().map(FlowUserJson::from).collect(),
            next_cursor,
        })
        .unwrap_or_default()
    };
    listing_response(body, late)
}

/// Reads the JSON body and the named string fields.
fn read_fields<const N: usize>(body: &Bytes, names: [&str; N]) -> Result<[String; N], Response> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| flow_error(StatusCode::BAD_REQUEST, &format!("body is not JSON: {e}")))?;
    let mut out: [String; N] = std::array::from_fn(|_| String::new());
    for (slot, name) in out.iter_mut().zip(names) {
        match value.get(name).and_then(Value::as_str) {
            Some(s) if !s.trim().is_empty() => *slot = s.to_string(),
            _ => {
                return Err(flow_error(
                    StatusCode::BAD_REQUEST,
                    &format!("field '{name}' (non-empty string) is required"),
                ))
            }
        }
    }
    Ok(out)
}

/// Authorisation and faults shared by the write endpoints; `Ok(drop_after)`.
async fn write_preamble(state: &Shared, headers: &HeaderMap) -> Result<bool, Response> {
    if !authorized(headers) {
        return Err(unauthorized_flow());
    }
    let decision = state.fault_for_request(FaultTarget::FlowWrite);
    apply_early_fault(decision, ErrorShape::Flow, || {})
        .await
        .map(|late| late.drop_after)
}

async fn rename(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let drop_after = match write_preamble(&state, &headers).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let [user_id, new_user_id] = match read_fields(&body, ["userId", "newUserId"]) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let ci = state.settings().flow_ids_case_insensitive;
    let outcome = {
        let mut flow = write(&state.flow);
        match flow.rename(&user_id, &new_user_id, ci) {
            // deploy/flow/README.md §3: a repeated rename (the source is
            // gone, the new ID exists) answers 200 with the new ID.
            FlowWriteOutcome::NotFound if flow.has_user(&new_user_id, ci) => FlowWriteOutcome::Done,
            other => other,
        }
    };
    if drop_after {
        return dropped_connection();
    }
    match outcome {
        FlowWriteOutcome::Done => json_response(StatusCode::OK, &json!({"userId": new_user_id})),
        FlowWriteOutcome::NotFound => flow_error(
            StatusCode::NOT_FOUND,
            &format!("user '{user_id}' not found"),
        ),
        FlowWriteOutcome::Taken => flow_error(
            StatusCode::CONFLICT,
            &format!("user ID '{new_user_id}' is already taken"),
        ),
    }
}

async fn deactivate(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let drop_after = match write_preamble(&state, &headers).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let [user_id] = match read_fields(&body, ["userId"]) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let ci = state.settings().flow_ids_case_insensitive;
    let outcome = write(&state.flow).deactivate(&user_id, ci);
    if drop_after {
        return dropped_connection();
    }
    match outcome {
        FlowWriteOutcome::Done => {
            json_response(StatusCode::OK, &json!({"userId": user_id, "active": false}))
        }
        _ => flow_error(
            StatusCode::NOT_FOUND,
            &format!("user '{user_id}' not found"),
        ),
    }
}
