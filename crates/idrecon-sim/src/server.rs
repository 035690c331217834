//! The HTTP server: one axum router with a path prefix per simulated
//! service, plus what the services share — query parsing, error bodies in
//! each service's shape, and turning a fault decision into a response.

use super::faults::{FaultDecision, FaultKind, RetryAfter};
use super::state::SimState;
use super::{azure, flow, graph, ifs};
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

pub(crate) type Shared = Arc<SimState>;

/// The complete router of the simulator.
pub(crate) fn router(state: Shared) -> Router {
    Router::new()
        .merge(azure::routes())
        .merge(graph::routes())
        .merge(ifs::routes())
        .merge(flow::routes())
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .with_state(state)
}

async fn count_requests(State(state): State<Shared>, request: Request, next: Next) -> Response {
    state.count_request(request.uri().path());
    next.run(request).await
}

async fn not_found(request: Request) -> Response {
    let message = format!(
        "no simulated endpoint at {} {}",
        request.method(),
        request.uri().path()
    );
    // Graph answers unknown segments in its own error shape.
    if request.uri().path().starts_with("/graph/") {
        return error_response(
            ErrorShape::Graph,
            StatusCode::BAD_REQUEST,
            "BadRequest",
            &format!("Resource not found for the segment. ({message})"),
        );
    }
    json_response(StatusCode::NOT_FOUND, &json!({ "error": message }))
}

/// `innerError.date` as Graph writes it: ISO 8601 without a zone, e.g.
/// `2022-12-22T08:00:18` (never an HTTP-date; Microsoft's SDKs parse it as
/// a date-time).
pub(crate) fn graph_error_date() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string()
}

/// Which service's error body to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ErrorShape {
    /// `{"error":{"code","message","innerError":{…}}}`
    Graph,
    /// `{"error":{"code","message"}}`
    OData,
    /// `{"error":"…"}`
    Flow,
    /// `{"error":"…","error_description":"…"}` (Azure login, IFS IAM)
    OAuth,
}

/// `http://HOST` from the request's `Host` header (so links work however
/// the client reached us), else the simulator's base URL.
pub(crate) fn origin(headers: &HeaderMap, state: &SimState) -> String {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_graphic()))
        .map(|h| format!("http://{h}"))
        .unwrap_or_else(|| state.base_url.clone())
}

/// Query pairs, percent-decoded (`+` is a space, as in every web server).
pub(crate) fn parse_query(raw: Option<&str>) -> Vec<(String, String)> {
    raw.map(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    })
    .unwrap_or_default()
}

/// The value of a query option; OData option names are case-insensitive.
pub(crate) fn query_param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The first `$` option of the query that is not in `allowed`. The
/// simulator refuses such options rather than silently ignoring them, so a
/// client relying on one notices that the simulator cannot stand in for it.
pub(crate) fn unsupported_option<'a>(
    query: &'a [(String, String)],
    allowed: &[&str],
) -> Option<&'a str> {
    query
        .iter()
        .map(|(k, _)| k.as_str())
        .find(|k| k.starts_with('$') && !allowed.iter().any(|a| a.eq_ignore_ascii_case(k)))
}

/// Percent-encodes a query value.
pub(crate) fn encode_query_value(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// The bearer token of the request, if any.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Parses an `application/x-www-form-urlencoded` body.
pub(crate) fn parse_form(body: &Bytes) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub(crate) fn form_value<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

pub(crate) fn json_response(status: StatusCode, value: &serde_json::Value) -> Response {
    bytes_response(status, serde_json::to_vec(value).unwrap_or_default())
}

pub(crate) fn bytes_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

/// An error in the given service's shape.
pub(crate) fn error_response(
    shape: ErrorShape,
    status: StatusCode,
    code: &str,
    message: &str,
) -> Response {
    let body = match shape {
        ErrorShape::Graph => json!({"error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": graph_error_date(),
                "request-id": uuid::Uuid::new_v4().to_string(),
                "client-request-id": uuid::Uuid::new_v4().to_string(),
            }
        }}),
        ErrorShape::OData => json!({"error": {"code": code, "message": message}}),
        ErrorShape::Flow => json!({"error": message}),
        ErrorShape::OAuth => json!({"error": code, "error_description": message}),
    };
    json_response(status, &body)
}

/// What is left to do after the early faults were handled.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct LateFault {
    /// Serve an empty listing.
    pub empty: bool,
    /// `badjson` / `truncate`: spoil the body.
    pub corrupt: Option<FaultKind>,
    /// `expire-delta` (Graph delta requests only).
    pub expire_delta: bool,
    /// `drop-after`: do the work, then drop the connection.
    pub drop_after: bool,
}

/// Sleeps for the decision's delay, then either answers the request with
/// the fault (status, drop, expired token) or says what remains to apply.
/// `expire_token` is called for the `expire-token` fault (revoke the token).
pub(crate) async fn apply_early_fault(
    decision: FaultDecision,
    shape: ErrorShape,
    expire_token: impl FnOnce(),
) -> Result<LateFault, Response> {
    if !decision.delay.is_zero() {
        tokio::time::sleep(decision.delay).await;
    }
    let mut late = LateFault::default();
    match decision.fault {
        None => {}
        Some(FaultKind::Status {
            status,
            retry_after,
        }) => return Err(status_fault(shape, status, retry_after)),
        Some(FaultKind::Drop) => return Err(dropped_connection()),
        Some(FaultKind::DropAfter) => late.drop_after = true,
        Some(FaultKind::ExpireToken) => {
            expire_token();
            return Err(match shape {
                ErrorShape::Graph => error_response(
                    shape,
                    StatusCode::UNAUTHORIZED,
                    "InvalidAuthenticationToken",
                    "Lifetime validation failed, the token is expired.",
                ),
                ErrorShape::Flow => unauthorized_flow(),
                _ => error_response(
                    shape,
                    StatusCode::UNAUTHORIZED,
                    "UNAUTHORIZED",
                    "The access token has expired.",
                ),
            });
        }
        Some(FaultKind::ExpireDelta) => late.expire_delta = true,
        Some(FaultKind::ExpirePage) => return Err(expired_page_token(shape)),
        Some(FaultKind::Empty) => late.empty = true,
        Some(k @ (FaultKind::BadJson | FaultKind::Truncate)) => late.corrupt = Some(k),
        Some(FaultKind::Slow(_)) => {}
    }
    Ok(late)
}

/// `401` of the Flow endpoint.
pub(crate) fn unauthorized_flow() -> Response {
    let mut response = error_response(
        ErrorShape::Flow,
        StatusCode::UNAUTHORIZED,
        "",
        "authentication required: basic auth of the Flow machine user",
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"Flow\""),
    );
    response
}

/// Graph's answer to a `$skiptoken` that expired in the middle of a walk
/// (docs/simulator.md, "Faults").
fn expired_page_token(shape: ErrorShape) -> Response {
    error_response(
        shape,
        StatusCode::BAD_REQUEST,
        "Directory_ExpiredPageToken",
        "The specified page token value has expired and can no longer be included in your request.",
    )
}

fn status_fault(shape: ErrorShape, status: u16, retry_after: Option<RetryAfter>) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let (graph_code, message) = match status {
        429 => (
            "TooManyRequests",
            "Too many requests. Please retry after the time given in Retry-After.",
        ),
        503 => (
            "serviceNotAvailable",
            "The service is temporarily unavailable.",
        ),
        504 => ("UnknownError", "Gateway timeout."),
        500 => ("generalException", "An internal server error occurred."),
        _ => ("UnknownError", "Simulated failure."),
    };
    let mut response = match shape {
        ErrorShape::Graph => error_response(shape, code, graph_code, message),
        ErrorShape::OData => error_response(shape, code, &status.to_string(), message),
        ErrorShape::Flow => error_response(shape, code, "", message),
        ErrorShape::OAuth => error_response(
            shape,
            code,
            if status >= 500 {
                "temporarily_unavailable"
            } else {
                "invalid_request"
            },
            message,
        ),
    };
    if let Some(value) = retry_after.and_then(|r| HeaderValue::from_str(&retry_after_value(r)).ok())
    {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

fn retry_after_value(r: RetryAfter) -> String {
    match r {
        RetryAfter::Seconds(s) => s.to_string(),
        RetryAfter::HttpDate(s) => {
            httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(s))
        }
    }
}

/// A response whose body fails at once: the server closes the connection
/// without sending a complete response.
pub(crate) fn dropped_connection() -> Response {
    let stream = futures::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "simulated dropped connection",
        ))
    });
    Response::new(Body::from_stream(stream))
}

/// A `200` JSON response, spoiled if the fault says so.
pub(crate) fn listing_response(body: Vec<u8>, late: LateFault) -> Response {
    match late.corrupt {
        Some(FaultKind::Truncate) => {
            let cut = body.len() / 2;
            bytes_response(StatusCode::OK, body[..cut].to_vec())
        }
        Some(FaultKind::BadJson) => bytes_response(
            StatusCode::OK,
            b"<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>".to_vec(),
        ),
        _ => bytes_response(StatusCode::OK, body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_parsing() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&h), None);
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("bearer  "));
        assert_eq!(bearer(&h), None);
    }

    #[test]
    fn query_is_decoded_and_case_insensitive() {
        let q = parse_query(Some(
            "%24select=id%2Cmail&$TOP=5&$filter=WebUser+eq+%27a%2Bb%27",
        ));
        assert_eq!(query_param(&q, "$select"), Some("id,mail"));
        assert_eq!(query_param(&q, "$top"), Some("5"));
        assert_eq!(query_param(&q, "$filter"), Some("WebUser eq 'a+b'"));
    }
}
