//! A hostile HTTP server for the hardening tests: one axum server on
//! 127.0.0.1:0 that answers each path from a script of misbehaviours
//! ([`Cue`]) and records every request it gets, so a test can prove what
//! idrecon sent (never a credential to the wrong origin) and what it did
//! with the answer (abort cleanly, or cope).
//!
//! A path's cues are played in order; the last one repeats. Paths without
//! a script answer 404 with an OData error body.

use axum::body::{to_bytes, Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Router;
use std::collections::HashMap;
use std::io::Write as _;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use url::Url;

/// One way to (mis)behave for one request.
#[derive(Clone, Debug)]
pub enum Cue {
    /// A well-formed JSON answer.
    Json(u16, serde_json::Value),
    /// A JSON answer with extra headers (e.g. a huge `Retry-After`).
    JsonWith(u16, Vec<(String, String)>, serde_json::Value),
    /// `302 Found` to `location` (usually another origin).
    Redirect(String),
    /// A gzip-compressed JSON users page whose single user's
    /// `userPrincipalName` inflates to `inflated` bytes (the body on the
    /// wire is about a thousandth of that).
    GzipBomb { inflated: usize },
    /// A `200` body of `bytes` bytes streamed in 64 KiB chunks, starting
    /// like a JSON page (`{"value":[{"userPrincipalName":"aaaa…`).
    HugeBody { bytes: usize },
    /// `chunks` pieces of `chunk`, one every `every`.
    SlowDrip {
        chunk: String,
        chunks: usize,
        every: Duration,
    },
    /// An HTML page (a login portal or proxy error) with the given status.
    Html(u16),
    /// An error of the given status whose text repeats the request: its
    /// body, query and `Authorization` header, as a careless IdP does.
    Echo(u16),
}

/// One request the server received.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: String,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    /// Decoded `application/x-www-form-urlencoded` body.
    pub fn form(&self) -> HashMap<String, String> {
        url::form_urlencoded::parse(self.body.as_bytes())
            .into_owned()
            .collect()
    }
}

type Script = Arc<Mutex<HashMap<String, Vec<Cue>>>>;

/// The hostile server.
pub struct Hostile {
    pub base: Url,
    script: Script,
    log: Arc<Mutex<Vec<Seen>>>,
}

impl Hostile {
    pub async fn start() -> Hostile {
        let script: Script = Arc::default();
        let log: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let (script_for_server, log_for_server) = (script.clone(), log.clone());
        let app = Router::new().fallback(move |request: Request| {
            let script = script_for_server.clone();
            let log = log_for_server.clone();
            async move {
                let (parts, body) = request.into_parts();
                let body = to_bytes(body, 1024 * 1024).await.unwrap_or_default();
                let seen = Seen {
                    method: parts.method.to_string(),
                    path: parts.uri.path().to_string(),
                    query: parts.uri.query().map(str::to_string),
                    headers: parts.headers.clone(),
                    body: String::from_utf8_lossy(&body).into_owned(),
                };
                log.lock().unwrap().push(seen.clone());
                let cue = {
                    let mut script = script.lock().unwrap();
                    match script.get_mut(&seen.path) {
                        Some(cues) if cues.len() > 1 => Some(cues.remove(0)),
                        Some(cues) => cues.first().cloned(),
                        None => None,
                    }
                };
                match cue {
                    Some(cue) => perform(cue, &seen),
                    None => json(
                        404,
                        &[],
                        serde_json::json!({"error": {"code": "Request_ResourceNotFound", "message": "no script for this path"}}),
                    ),
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Hostile {
            base: Url::parse(&format!("http://{addr}")).unwrap(),
            script,
            log,
        }
    }

    /// Plays `cues` (in order, the last repeating) for requests to `path`.
    pub fn on(&self, path: &str, cues: Vec<Cue>) -> &Self {
        self.script.lock().unwrap().insert(path.to_string(), cues);
        self
    }

    /// `{base}{path}`.
    pub fn url(&self, path: &str) -> Url {
        self.base.join(path).unwrap()
    }

    /// `http://127.0.0.1:port`.
    pub fn origin(&self) -> String {
        self.base.origin().ascii_serialization()
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.log.lock().unwrap().clone()
    }

    /// Requests to exactly `path`.
    pub fn hits(&self, path: &str) -> Vec<Seen> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }
}

fn json(status: u16, headers: &[(String, String)], value: serde_json::Value) -> Response {
    let mut response = Response::builder()
        .status(StatusCode::from_u16(status).unwrap())
        .header("content-type", "application/json");
    for (k, v) in headers {
        response = response.header(k, v);
    }
    response.body(Body::from(value.to_string())).unwrap()
}

fn perform(cue: Cue, seen: &Seen) -> Response {
    match cue {
        Cue::Json(status, value) => json(status, &[], value),
        Cue::JsonWith(status, headers, value) => json(status, &headers, value),
        Cue::Redirect(location) => Response::builder()
            .status(StatusCode::FOUND)
            .header("location", location)
            .body(Body::empty())
            .unwrap(),
        Cue::GzipBomb { inflated } => Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "application/json")
            .header("content-encoding", "gzip")
            .body(Body::from(gzip_bomb(inflated)))
            .unwrap(),
        Cue::HugeBody { bytes } => {
            let head = br#"{"value":[{"userPrincipalName":""#;
            let chunk = Bytes::from(vec![b'a'; 64 * 1024]);
            let mut remaining = bytes.saturating_sub(head.len());
            let mut pieces = vec![Bytes::from_static(head)];
            while remaining > 0 {
                let n = remaining.min(chunk.len());
                pieces.push(chunk.slice(..n));
                remaining -= n;
            }
            let stream = futures::stream::iter(pieces.into_iter().map(Ok::<_, std::io::Error>));
            Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "application/json")
                .body(Body::from_stream(stream))
                .unwrap()
        }
        Cue::SlowDrip {
            chunk,
            chunks,
            every,
        } => {
            let stream = futures::stream::unfold(0usize, move |n| {
                let chunk = chunk.clone();
                async move {
                    if n == chunks {
                        return None;
                    }
                    tokio::time::sleep(every).await;
                    Some((Ok::<_, std::io::Error>(Bytes::from(chunk)), n + 1))
                }
            });
            Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "application/json")
                .body(Body::from_stream(stream))
                .unwrap()
        }
        Cue::Html(status) => Response::builder()
            .status(StatusCode::from_u16(status).unwrap())
            .header("content-type", "text/html")
            .body(Body::from(
                "<!DOCTYPE html><html><head><title>Sign in</title></head><body><form>Proxy login</form></body></html>",
            ))
            .unwrap(),
        Cue::Echo(status) => {
            let echoed = format!(
                "invalid request {} ?{} authorization={} body={}",
                seen.path,
                seen.query.as_deref().unwrap_or(""),
                seen.header("authorization").unwrap_or_default(),
                seen.body
            );
            json(
                status,
                &[],
                // Where OAuth, Flow and OData put their error text.
                serde_json::json!({
                    "error": echoed,
                    "error_description": echoed,
                    "message": echoed,
                }),
            )
        }
    }
}

/// A gzip stream of a users page whose UPN is `inflated` bytes of `a`,
/// built once per size.
fn gzip_bomb(inflated: usize) -> Bytes {
    static CACHE: OnceLock<Mutex<HashMap<usize, Bytes>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Mutex::default);
    if let Some(bytes) = cache.lock().unwrap().get(&inflated) {
        return bytes.clone();
    }
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder
        .write_all(br#"{"value":[{"id":"1","userPrincipalName":""#)
        .unwrap();
    let block = vec![b'a'; 64 * 1024];
    let mut remaining = inflated;
    while remaining > 0 {
        let n = remaining.min(block.len());
        encoder.write_all(&block[..n]).unwrap();
        remaining -= n;
    }
    encoder
        .write_all(br#"","accountEnabled":true,"userType":"Member"}]}"#)
        .unwrap();
    let bytes = Bytes::from(encoder.finish().unwrap());
    cache.lock().unwrap().insert(inflated, bytes.clone());
    bytes
}
