//! The shared HTTP layer on its own: transport failures (refused
//! connections, timeouts) are retried and reported without the query string.

use crate::clients_support;

use clients_support::*;
use idrecon::sources::http::{build_client, Auth, ErrorShape, HttpSettings, ServiceClient};
use idrecon::sources::{SourceErrorKind, System};
use std::time::Duration;

#[tokio::test]
async fn refused_connections_are_retried_then_reported_without_the_query() {
    // A port that was just free: nothing listens there.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let settings = fast_settings();
    let api = ServiceClient::new(
        System::Ifs,
        build_client(System::Ifs, &settings).unwrap(),
        settings.retry.clone(),
        ErrorShape::OData,
    );
    let url = url::Url::parse(&format!(
        "http://127.0.0.1:{port}/ifs/Users?$skiptoken=SENSITIVE"
    ))
    .unwrap();
    let err = api
        .get_json::<serde_json::Value>(&url, Auth::None)
        .await
        .unwrap_err();
    assert_eq!(err.kind, SourceErrorKind::Transport);
    assert_eq!(err.path.as_deref(), Some("/ifs/Users"));
    let text = err.to_string();
    assert!(text.contains("could not connect"), "{text}");
    assert!(text.contains("gave up after 4 attempts"), "{text}");
    assert!(
        !text.contains("SENSITIVE") && !text.contains("skiptoken"),
        "{text}"
    );
}

#[tokio::test]
async fn slow_answers_time_out_and_are_retried() {
    let mock = Mock::start(|_| Reply::text(200, "{}").delayed(Duration::from_millis(800))).await;
    let settings = HttpSettings {
        request_timeout: Duration::from_millis(150),
        ..fast_settings()
    };
    let api = ServiceClient::new(
        System::Flow,
        build_client(System::Flow, &settings).unwrap(),
        settings.retry.clone(),
        ErrorShape::Flow,
    );
    let err = api
        .get_json::<serde_json::Value>(&mock.url("/flow/users?cursor=abc"), Auth::None)
        .await
        .unwrap_err();
    assert_eq!(err.kind, SourceErrorKind::Transport);
    assert!(err.to_string().contains("timed out"), "{err}");
    assert!(!err.to_string().contains("cursor=abc"), "{err}");
    assert_eq!(mock.hits("/flow").len(), 4);
}
