//! IFS IAM login against hostile or strict identity providers: the
//! discovery document must name the configured issuer and a token endpoint
//! on the issuer's origin; the client authenticates as discovery offers
//! (HTTP Basic first, RFC 6749 §2.3.1); a refused secret is sent once, not
//! retried, and the error says what to check.

use crate::hostile::{Cue, Hostile, Seen};
use crate::{ifs, settings, IFS_SECRET};
use idrecon::auth::{AccessTokenSource, ClientCredentials};
use idrecon::sources::ifs::IfsSource;
use idrecon::sources::SourceErrorKind;
use secrecy::ExposeSecret;
use std::sync::Arc;

const DISCOVERY: &str = "/auth/realms/prod/.well-known/openid-configuration";
const TOKEN: &str = "/auth/realms/prod/protocol/openid-connect/token";

fn discovery(server: &Hostile, token_origin: &str, methods: Option<&[&str]>) -> Cue {
    let mut doc = serde_json::json!({
        "issuer": format!("{}/auth/realms/prod", server.origin()),
        "token_endpoint": format!("{token_origin}{TOKEN}"),
    });
    if let Some(methods) = methods {
        doc["token_endpoint_auth_methods_supported"] = serde_json::json!(methods);
    }
    Cue::Json(200, doc)
}

fn form_has_secret(seen: &Seen) -> bool {
    seen.form().get("client_secret").map(String::as_str) == Some(IFS_SECRET)
}

#[tokio::test]
async fn a_token_endpoint_on_another_origin_never_gets_the_secret() {
    let server = Hostile::start().await;
    let foreign = Hostile::start().await;
    server.on(DISCOVERY, vec![discovery(&server, &foreign.origin(), None)]);
    foreign.on(TOKEN, vec![crate::token("stolen")]);
    let tokens = ClientCredentials::ifs(&ifs(&server), reqwest::Client::new()).unwrap();
    let err = tokens.access_token().await.unwrap_err();
    assert_eq!(err.kind, SourceErrorKind::Auth);
    assert!(
        err.to_string().contains("not on the issuer's origin"),
        "{err}"
    );
    assert!(
        foreign.requests().is_empty(),
        "the secret went to {}",
        foreign.origin()
    );
}

#[tokio::test]
async fn a_discovery_document_for_another_issuer_is_refused() {
    let server = Hostile::start().await;
    server.on(
        DISCOVERY,
        vec![Cue::Json(
            200,
            serde_json::json!({
                "issuer": "https://evil.example/auth/realms/prod",
                "token_endpoint": server.url(TOKEN).to_string(),
            }),
        )],
    );
    let tokens = ClientCredentials::ifs(&ifs(&server), reqwest::Client::new()).unwrap();
    let err = tokens.access_token().await.unwrap_err();
    assert!(
        err.to_string()
            .contains("not the configured ifs.issuer_url"),
        "{err}"
    );
    assert!(server.hits(TOKEN).is_empty());
}

#[tokio::test]
async fn basic_authentication_is_used_when_discovery_offers_it() {
    let server = Hostile::start().await;
    server.on(
        DISCOVERY,
        vec![discovery(
            &server,
            &server.origin(),
            Some(&["client_secret_basic", "client_secret_post"]),
        )],
    );
    server.on(TOKEN, vec![crate::token("ifs-token")]);
    let tokens = ClientCredentials::ifs(&ifs(&server), reqwest::Client::new()).unwrap();
    assert_eq!(
        tokens.access_token().await.unwrap().expose_secret(),
        "ifs-token"
    );
    let seen = &server.hits(TOKEN)[0];
    assert!(
        !form_has_secret(seen),
        "the secret is not in the body: {}",
        seen.body
    );
    // RFC 6749 §2.3.1: each part form-urlencoded, then base64.
    let expected = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        "NC+Flow%2FReconciler:ifs-Secret+value%2642",
    );
    assert_eq!(
        seen.header("authorization"),
        Some(format!("Basic {expected}"))
    );
}

#[tokio::test]
async fn the_form_body_is_used_when_only_post_is_offered() {
    let server = Hostile::start().await;
    server.on(
        DISCOVERY,
        vec![discovery(
            &server,
            &server.origin(),
            Some(&["client_secret_post"]),
        )],
    );
    server.on(TOKEN, vec![crate::token("ifs-token")]);
    let tokens = ClientCredentials::ifs(&ifs(&server), reqwest::Client::new()).unwrap();
    tokens.access_token().await.unwrap();
    let seen = &server.hits(TOKEN)[0];
    assert!(form_has_secret(seen), "{}", seen.body);
    assert_eq!(seen.header("authorization"), None);
}

#[tokio::test]
async fn a_rejected_secret_is_sent_once_and_the_error_says_what_to_check() {
    let server = Hostile::start().await;
    server.on(
        DISCOVERY,
        vec![discovery(
            &server,
            &server.origin(),
            Some(&["client_secret_basic"]),
        )],
    );
    server.on(
        TOKEN,
        vec![Cue::Json(401, serde_json::json!({"error": "invalid_client", "error_description": "Invalid client credentials"}))],
    );
    let cfg = ifs(&server);
    let settings = settings();
    let http = reqwest::Client::new();
    let tokens = ClientCredentials::ifs(&cfg, http.clone())
        .unwrap()
        .with_settings(&settings);
    let source = IfsSource::new(&cfg, Arc::new(tokens), http, &settings).unwrap();
    let err = source.fetch_all().await.unwrap_err();
    assert_eq!(err.kind, SourceErrorKind::Auth);
    let text = err.to_string();
    assert!(text.contains("check the client secret"), "{text}");
    assert!(
        text.contains("client_secret_basic"),
        "names the method: {text}"
    );
    assert_eq!(
        server.hits(TOKEN).len(),
        1,
        "the rejected secret was sent again"
    );
}

#[tokio::test]
async fn token_auth_method_post_overrides_discovery() {
    let server = Hostile::start().await;
    server.on(
        DISCOVERY,
        vec![discovery(
            &server,
            &server.origin(),
            Some(&["client_secret_basic", "client_secret_post"]),
        )],
    );
    server.on(TOKEN, vec![crate::token("ifs-token")]);
    let mut cfg = ifs(&server);
    cfg.token_auth_method = idrecon::config::TokenAuthMethod::Post;
    let tokens = ClientCredentials::ifs(&cfg, reqwest::Client::new()).unwrap();
    tokens.access_token().await.unwrap();
    let seen = &server.hits(TOKEN)[0];
    assert!(form_has_secret(seen), "{}", seen.body);
    assert_eq!(seen.header("authorization"), None);
}
