//! The report mail through Graph `sendMail` against a small axum mock of
//! Graph on port 0: request shape, bearer token, 202, refusals, throttling.

use async_trait::async_trait;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine;
use idrecon::auth::AccessTokenSource;
use idrecon::mail::{send_graph, MailError};
use idrecon::report::email::MailContent;
use idrecon::sources::{SourceError, SourceErrorKind, System};
use secrecy::SecretString;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use url::Url;

/// A scripted answer of the mock.
struct Reply {
    status: StatusCode,
    retry_after: Option<&'static str>,
    body: &'static str,
}

impl Reply {
    fn accepted() -> Self {
        Reply {
            status: StatusCode::ACCEPTED,
            retry_after: None,
            body: "",
        }
    }
}

/// One request the mock received.
#[derive(Clone, Debug)]
struct Seen {
    path: String,
    authorization: Option<String>,
    content_type: Option<String>,
    body: Vec<u8>,
}

#[derive(Default)]
struct Mock {
    script: Mutex<VecDeque<Reply>>,
    seen: Mutex<Vec<Seen>>,
}

async fn graph_handler(
    State(mock): State<Arc<Mock>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    mock.seen.lock().unwrap().push(Seen {
        path: uri.path().to_string(),
        authorization: header("authorization"),
        content_type: header("content-type"),
        body: body.to_vec(),
    });
    let reply = mock.script.lock().unwrap().pop_front();
    match reply {
        Some(r) => {
            let mut response = (r.status, r.body).into_response();
            if let Some(ra) = r.retry_after {
                response
                    .headers_mut()
                    .insert("retry-after", ra.parse().unwrap());
            }
            if !r.body.is_empty() {
                response
                    .headers_mut()
                    .insert("content-type", "application/json".parse().unwrap());
            }
            response
        }
        None => (StatusCode::INTERNAL_SERVER_ERROR, "script exhausted").into_response(),
    }
}

/// Starts the mock with `script`; returns its base URL (with a path prefix,
/// as the simulator serves Graph under one) and the shared state.
async fn start_graph_mock(script: Vec<Reply>) -> (Url, Arc<Mock>) {
    let mock = Arc::new(Mock {
        script: Mutex::new(script.into()),
        seen: Mutex::default(),
    });
    let app = Router::new()
        .fallback(graph_handler)
        .with_state(mock.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    let url = Url::parse(&format!("http://{addr}/graph")).unwrap();
    (url, mock)
}

/// Hands out `token-1`, and `token-2` after an invalidation.
#[derive(Default)]
struct TestTokens {
    invalidations: AtomicUsize,
    fail: bool,
}

#[async_trait]
impl AccessTokenSource for TestTokens {
    async fn access_token(&self) -> Result<SecretString, SourceError> {
        if self.fail {
            return Err(SourceError::new(
                System::Azure,
                SourceErrorKind::Auth,
                "client secret expired",
            ));
        }
        let n = self.invalidations.load(Ordering::SeqCst) + 1;
        Ok(SecretString::from(format!("token-{n}")))
    }

    async fn invalidate(&self) {
        self.invalidations.fetch_add(1, Ordering::SeqCst);
    }
}

fn content() -> MailContent {
    MailContent {
        subject: "idrecon: 12 new mismatches (95 open) \u{2014} contoso".into(),
        text: "12 new mismatches".into(),
        html: "<p>&lt;script&gt; Åsa Öberg</p>".into(),
        csv_name: "idrecon-run-42.csv".into(),
        csv: "kind,display_name\r\nid_mismatch,Åsa Öberg\r\n".into(),
    }
}

fn recipients() -> Vec<String> {
    vec![
        "iam-admins@contoso.com".into(),
        "Åsa Öberg <asa.oberg@contoso.com>".into(),
    ]
}

#[tokio::test]
async fn send_mail_posts_the_documented_body_with_the_bearer_token() {
    let (graph_url, mock) = start_graph_mock(vec![Reply::accepted()]).await;
    let tokens = TestTokens::default();
    let content = content();

    send_graph(
        &reqwest::Client::new(),
        &graph_url,
        &tokens,
        "idrecon <idrecon@contoso.com>",
        &recipients(),
        &content,
    )
    .await
    .expect("202 is success");

    let seen = mock.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let request = &seen[0];
    assert_eq!(
        request.path,
        "/graph/v1.0/users/idrecon@contoso.com/sendMail"
    );
    assert_eq!(request.authorization.as_deref(), Some("Bearer token-1"));
    assert!(request
        .content_type
        .as_deref()
        .is_some_and(|c| c.starts_with("application/json")));

    let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
    let csv_b64 = body["message"]["attachments"][0]["contentBytes"]
        .as_str()
        .expect("contentBytes");
    let csv = base64::engine::general_purpose::STANDARD
        .decode(csv_b64)
        .expect("valid base64");
    assert_eq!(csv, content.csv.as_bytes());
    let expected = serde_json::json!({
        "message": {
            "subject": "idrecon: 12 new mismatches (95 open) \u{2014} contoso",
            "body": {"contentType": "HTML", "content": "<p>&lt;script&gt; Åsa Öberg</p>"},
            "toRecipients": [
                {"emailAddress": {"address": "iam-admins@contoso.com"}},
                {"emailAddress": {"address": "asa.oberg@contoso.com"}}
            ],
            "attachments": [{
                "@odata.type": "#microsoft.graph.fileAttachment",
                "name": "idrecon-run-42.csv",
                "contentType": "text/csv",
                "contentBytes": csv_b64
            }]
        },
        "saveToSentItems": false
    });
    assert_eq!(body, expected);
}

#[tokio::test]
async fn access_denied_says_the_app_needs_mail_send() {
    let (graph_url, mock) = start_graph_mock(vec![Reply {
        status: StatusCode::FORBIDDEN,
        retry_after: None,
        body: r#"{"error":{"code":"ErrorAccessDenied","message":"Access is denied. Check credentials and try again."}}"#,
    }])
    .await;

    let err = send_graph(
        &reqwest::Client::new(),
        &graph_url,
        &TestTokens::default(),
        "idrecon@contoso.com",
        &recipients(),
        &content(),
    )
    .await
    .unwrap_err();

    let text = err.to_string();
    match &err {
        MailError::GraphStatus { status, code, .. } => {
            assert_eq!(*status, 403);
            assert_eq!(code.as_deref(), Some("ErrorAccessDenied"));
        }
        other => panic!("unexpected error {other:?}"),
    }
    assert!(text.contains("Graph sendMail"), "{text}");
    assert!(
        text.contains("/graph/v1.0/users/idrecon@contoso.com/sendMail"),
        "{text}"
    );
    assert!(text.contains("ErrorAccessDenied"), "{text}");
    assert!(text.contains("Mail.Send application permission"), "{text}");
    assert!(!text.contains("token-1"), "{text}");
    assert_eq!(mock.seen.lock().unwrap().len(), 1, "a 403 is not retried");
}

#[tokio::test]
async fn throttled_then_accepted_succeeds_after_retry_after() {
    let (graph_url, mock) = start_graph_mock(vec![
        Reply {
            status: StatusCode::TOO_MANY_REQUESTS,
            retry_after: Some("1"),
            body: r#"{"error":{"code":"TooManyRequests","message":"Please retry again later."}}"#,
        },
        Reply::accepted(),
    ])
    .await;

    let started = Instant::now();
    send_graph(
        &reqwest::Client::new(),
        &graph_url,
        &TestTokens::default(),
        "idrecon@contoso.com",
        &recipients(),
        &content(),
    )
    .await
    .expect("accepted after one retry");

    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "Retry-After: 1 was honoured ({:?})",
        started.elapsed()
    );
    let seen = mock.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].body, seen[1].body, "the same mail is sent again");
}

#[tokio::test]
async fn unavailable_graph_is_retried_a_bounded_number_of_times() {
    let script = (0..10)
        .map(|_| Reply {
            status: StatusCode::SERVICE_UNAVAILABLE,
            retry_after: Some("0"),
            body: r#"{"error":{"code":"ServiceUnavailable","message":"try later"}}"#,
        })
        .collect();
    let (graph_url, mock) = start_graph_mock(script).await;

    let err = send_graph(
        &reqwest::Client::new(),
        &graph_url,
        &TestTokens::default(),
        "idrecon@contoso.com",
        &recipients(),
        &content(),
    )
    .await
    .unwrap_err();

    assert!(
        matches!(err, MailError::GraphStatus { status: 503, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("retries were exhausted"), "{err}");
    assert_eq!(mock.seen.lock().unwrap().len(), 5, "first try + 4 retries");
}

#[tokio::test]
async fn rejected_token_is_refreshed_once() {
    let (graph_url, mock) = start_graph_mock(vec![
        Reply {
            status: StatusCode::UNAUTHORIZED,
            retry_after: None,
            body: r#"{"error":{"code":"InvalidAuthenticationToken","message":"Access token has expired."}}"#,
        },
        Reply::accepted(),
    ])
    .await;
    let tokens = TestTokens::default();

    send_graph(
        &reqwest::Client::new(),
        &graph_url,
        &tokens,
        "idrecon@contoso.com",
        &recipients(),
        &content(),
    )
    .await
    .expect("accepted with a fresh token");

    assert_eq!(tokens.invalidations.load(Ordering::SeqCst), 1);
    let auth: Vec<Option<String>> = mock
        .seen
        .lock()
        .unwrap()
        .iter()
        .map(|s| s.authorization.clone())
        .collect();
    assert_eq!(
        auth,
        vec![Some("Bearer token-1".into()), Some("Bearer token-2".into())]
    );
}

#[tokio::test]
async fn token_refused_twice_is_an_error() {
    let unauthorized = || Reply {
        status: StatusCode::UNAUTHORIZED,
        retry_after: None,
        body: r#"{"error":{"code":"InvalidAuthenticationToken","message":"bad token"}}"#,
    };
    let (graph_url, mock) =
        start_graph_mock(vec![unauthorized(), unauthorized(), unauthorized()]).await;

    let err = send_graph(
        &reqwest::Client::new(),
        &graph_url,
        &TestTokens::default(),
        "idrecon@contoso.com",
        &recipients(),
        &content(),
    )
    .await
    .unwrap_err();

    assert!(
        matches!(err, MailError::GraphStatus { status: 401, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("InvalidAuthenticationToken"),
        "{err}"
    );
    assert_eq!(mock.seen.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn no_token_means_no_request() {
    let (graph_url, mock) = start_graph_mock(vec![Reply::accepted()]).await;
    let tokens = TestTokens {
        fail: true,
        ..TestTokens::default()
    };

    let err = send_graph(
        &reqwest::Client::new(),
        &graph_url,
        &tokens,
        "idrecon@contoso.com",
        &recipients(),
        &content(),
    )
    .await
    .unwrap_err();

    assert!(matches!(err, MailError::GraphToken(_)), "{err:?}");
    assert!(err.to_string().contains("client secret expired"), "{err}");
    assert!(mock.seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn unreachable_graph_is_an_error_naming_the_path() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let graph_url = Url::parse(&format!("http://127.0.0.1:{port}")).unwrap();

    let err = send_graph(
        &reqwest::Client::new(),
        &graph_url,
        &TestTokens::default(),
        "idrecon@contoso.com",
        &recipients(),
        &content(),
    )
    .await
    .unwrap_err();

    assert!(matches!(err, MailError::GraphTransport { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("/v1.0/users/idrecon@contoso.com/sendMail"),
        "{text}"
    );
    assert!(text.contains("could not connect"), "{text}");
}

#[tokio::test]
async fn bad_recipient_is_refused_before_sending() {
    let (graph_url, mock) = start_graph_mock(vec![Reply::accepted()]).await;

    let err = send_graph(
        &reqwest::Client::new(),
        &graph_url,
        &TestTokens::default(),
        "idrecon@contoso.com",
        &["nobody".to_string()],
        &content(),
    )
    .await
    .unwrap_err();

    assert!(
        matches!(err, MailError::InvalidAddress { field: "to", .. }),
        "{err:?}"
    );
    assert!(mock.seen.lock().unwrap().is_empty());
}
