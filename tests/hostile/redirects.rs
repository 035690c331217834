//! Redirects are never followed: a 302 to another host is an error naming
//! the status, and the other host never sees a request (nor a `Referer`).

use crate::hostile::{Cue, Hostile};
use idrecon::sources::http::{build_client, Auth, ErrorShape, HttpSettings, ServiceClient};
use idrecon::sources::retry::RetryPolicy;
use idrecon::sources::System;

#[tokio::test]
async fn a_redirect_to_another_host_is_not_followed() {
    let server = Hostile::start().await;
    let foreign = Hostile::start().await;
    foreign.on(
        "/stolen",
        vec![Cue::Json(200, serde_json::json!({"value": []}))],
    );
    server.on(
        "/flow/users",
        vec![Cue::Redirect(foreign.url("/stolen").to_string())],
    );
    let settings = HttpSettings {
        retry: RetryPolicy::none(),
        ..HttpSettings::default()
    };
    let api = ServiceClient::new(
        System::Flow,
        build_client(System::Flow, &settings).unwrap(),
        settings.retry.clone(),
        ErrorShape::Flow,
    );
    let err = api
        .get_json::<serde_json::Value>(&server.url("/flow/users?cursor=SECRET"), Auth::None)
        .await
        .unwrap_err();
    assert_eq!(err.status, Some(302), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("redirected to {}", foreign.origin())),
        "{err}"
    );
    assert!(foreign.requests().is_empty(), "the redirect was followed");
}

#[tokio::test]
async fn graph_does_not_follow_a_redirect_nor_leak_the_delta_token() {
    use crate::{azure, settings, AZURE_TOKEN};
    use idrecon::auth::ClientCredentials;
    use idrecon::sources::graph::GraphSource;
    use std::sync::Arc;

    let server = Hostile::start().await;
    let foreign = Hostile::start().await;
    server.on(AZURE_TOKEN, vec![crate::token("graph-token")]);
    foreign.on(
        "/v1.0/users/delta",
        vec![Cue::Json(
            200,
            serde_json::json!({"value": [], "@odata.deltaLink": "x"}),
        )],
    );
    server.on(
        "/graph/v1.0/users/delta",
        vec![Cue::Redirect(foreign.url("/v1.0/users/delta").to_string())],
    );
    let cfg = azure(&server);
    let settings = settings();
    let tokens = Arc::new(
        ClientCredentials::azure(&cfg, reqwest::Client::new())
            .unwrap()
            .with_settings(&settings),
    );
    let graph = GraphSource::new(&cfg, tokens, &settings).unwrap();
    let link = server.url("/graph/v1.0/users/delta?$deltatoken=SECRET-DELTA");
    let err = graph.fetch_delta(Some(link.as_str())).await.unwrap_err();
    assert_eq!(err.status, Some(302), "{err}");
    assert!(
        foreign.requests().is_empty(),
        "the redirect was followed: {:?}",
        foreign.requests()
    );
    assert!(!err.to_string().contains("SECRET-DELTA"), "{err}");
}
