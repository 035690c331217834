//! Bodies are capped after decompression (`limits.max_body_bytes`) and user
//! fields by length (`limits.max_field_chars`): a gzip bomb or a huge page
//! ends the fetch with an error naming the host and the limit.

use crate::hostile::{Cue, Hostile};
use crate::{azure, graph_user, settings, AZURE_TOKEN};
use idrecon::auth::ClientCredentials;
use idrecon::net::limits::Limits;
use idrecon::sources::graph::GraphSource;
use idrecon::sources::http::HttpSettings;
use idrecon::sources::SourceErrorKind;
use std::sync::Arc;

fn graph(server: &Hostile, settings: &HttpSettings) -> GraphSource {
    let cfg = azure(server);
    let tokens = Arc::new(
        ClientCredentials::azure(&cfg, reqwest::Client::new())
            .unwrap()
            .with_settings(settings),
    );
    GraphSource::new(&cfg, tokens, settings).unwrap()
}

fn small_limits() -> HttpSettings {
    HttpSettings {
        limits: Limits {
            max_body_bytes: 1024 * 1024,
            max_field_chars: 64,
        },
        ..settings()
    }
}

#[tokio::test]
async fn a_gzip_bomb_is_stopped_at_the_decompressed_limit() {
    let server = Hostile::start().await;
    server.on(AZURE_TOKEN, vec![crate::token("t1")]);
    server.on(
        "/graph/v1.0/users",
        vec![Cue::GzipBomb {
            inflated: 16 * 1024 * 1024,
        }],
    );
    let err = graph(&server, &small_limits())
        .fetch_full()
        .await
        .unwrap_err();
    assert_eq!(err.kind, SourceErrorKind::InvalidPayload, "{err}");
    let text = err.to_string();
    assert!(
        text.contains("limits.max_body_bytes (1048576 bytes"),
        "{text}"
    );
    assert!(text.contains("127.0.0.1"), "names the host: {text}");
    assert_eq!(server.hits("/graph/v1.0/users").len(), 1, "not retried");
}

#[tokio::test]
async fn a_huge_plain_body_is_stopped_at_the_limit() {
    let server = Hostile::start().await;
    server.on(AZURE_TOKEN, vec![crate::token("t1")]);
    server.on(
        "/graph/v1.0/users",
        vec![Cue::HugeBody {
            bytes: 8 * 1024 * 1024,
        }],
    );
    let err = graph(&server, &small_limits())
        .fetch_full()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("limits.max_body_bytes"), "{err}");
}

#[tokio::test]
async fn an_overlong_user_field_is_refused_by_name() {
    let server = Hostile::start().await;
    server.on(AZURE_TOKEN, vec![crate::token("t1")]);
    let long = format!("{}@contoso.com", "a".repeat(100));
    server.on(
        "/graph/v1.0/users",
        vec![Cue::Json(200, serde_json::json!({"value": [graph_user("1", "ok@contoso.com"), graph_user("2", &long)]}))],
    );
    let err = graph(&server, &small_limits())
        .fetch_full()
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("user 2: userPrincipalName is longer than limits.max_field_chars (64"),
        "{text}"
    );
}

#[tokio::test]
async fn html_where_json_was_expected_is_a_clear_error() {
    let server = Hostile::start().await;
    server.on(AZURE_TOKEN, vec![crate::token("t1")]);
    server.on("/graph/v1.0/users", vec![Cue::Html(200)]);
    let err = graph(&server, &settings()).fetch_full().await.unwrap_err();
    assert_eq!(err.kind, SourceErrorKind::InvalidPayload);
    assert!(err.to_string().contains("not the expected JSON"), "{err}");
}

#[tokio::test]
async fn an_overlong_flow_field_is_refused_by_name() {
    let server = Hostile::start().await;
    let name = "N".repeat(100);
    server.on(
        "/flow/users",
        vec![Cue::Json(
            200,
            serde_json::json!({"users": [
            {"userId": "anna", "name": name, "active": true, "type": "Standard"}
        ], "nextCursor": null}),
        )],
    );
    let api = idrecon::sources::flow::FlowHttp::new(
        &crate::flow(&server),
        reqwest::Client::new(),
        &small_limits(),
    )
    .unwrap();
    let err = api.fetch_all().await.unwrap_err();
    assert!(
        err.to_string()
            .contains("user anna: name is longer than limits.max_field_chars"),
        "{err}"
    );
}

#[tokio::test]
async fn a_slow_drip_times_out_cleanly() {
    let server = Hostile::start().await;
    server.on(
        "/flow/users",
        vec![Cue::SlowDrip {
            chunk: " ".into(),
            chunks: 100,
            every: std::time::Duration::from_millis(50),
        }],
    );
    let settings = HttpSettings {
        request_timeout: std::time::Duration::from_millis(300),
        ..settings()
    };
    let http =
        idrecon::sources::http::build_client(idrecon::sources::System::Flow, &settings).unwrap();
    let api =
        idrecon::sources::flow::FlowHttp::new(&crate::flow(&server), http, &settings).unwrap();
    let err = api.fetch_all().await.unwrap_err();
    assert_eq!(err.kind, SourceErrorKind::Transport, "{err}");
    assert!(
        err.to_string().contains("gave up after 3 attempts"),
        "{err}"
    );
}
