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
    assert!(foreign.requests().is_empty(), "the redirect was followed");
}
