//! Numeric extremes: a token that "never expires" and a `Retry-After` of
//! `u64::MAX` seconds are handled without overflow (they used to panic).

use crate::hostile::{Cue, Hostile};
use crate::{azure, settings, AZURE_TOKEN};
use idrecon::auth::{AccessTokenSource, ClientCredentials};
use idrecon::sources::graph::GraphSource;
use idrecon::sources::SourceErrorKind;
use secrecy::ExposeSecret;
use std::sync::Arc;

#[tokio::test]
async fn a_token_lifetime_of_u64_max_seconds_is_used_not_a_panic() {
    let server = Hostile::start().await;
    server.on(
        AZURE_TOKEN,
        vec![Cue::Json(
            200,
            serde_json::json!({"token_type": "Bearer", "expires_in": u64::MAX, "access_token": "t1"}),
        )],
    );
    let tokens = ClientCredentials::azure(&azure(&server), reqwest::Client::new()).unwrap();
    assert_eq!(tokens.access_token().await.unwrap().expose_secret(), "t1");
    assert_eq!(tokens.access_token().await.unwrap().expose_secret(), "t1");
    assert_eq!(server.hits(AZURE_TOKEN).len(), 1, "the token is cached");
}

#[tokio::test]
async fn a_retry_after_of_u64_max_seconds_ends_the_retries_as_throttled() {
    let server = Hostile::start().await;
    server.on(AZURE_TOKEN, vec![crate::token("t1")]);
    server.on(
        "/graph/v1.0/users",
        vec![Cue::JsonWith(
            429,
            vec![("retry-after".into(), u64::MAX.to_string())],
            serde_json::json!({"error": {"code": "TooManyRequests", "message": "slow down"}}),
        )],
    );
    let cfg = azure(&server);
    let settings = settings();
    let tokens = Arc::new(
        ClientCredentials::azure(&cfg, reqwest::Client::new())
            .unwrap()
            .with_settings(&settings),
    );
    let graph = GraphSource::new(&cfg, tokens, &settings).unwrap();
    let err = graph.fetch_full().await.unwrap_err();
    assert_eq!(err.kind, SourceErrorKind::Throttled, "{err}");
    assert_eq!(
        server.hits("/graph/v1.0/users").len(),
        1,
        "no retry waits for ever"
    );
}
