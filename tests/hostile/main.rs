//! idrecon against hostile servers (tests/support/hostile.rs): redirects,
//! huge and gzip-bomb bodies, numeric extremes, slow drips, HTML where JSON
//! was expected, echoed secrets, foreign token endpoints. For each, idrecon
//! aborts cleanly or copes; it never panics, never sends a credential to
//! another origin and never prints a secret.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../support/hostile.rs"]
pub mod hostile;

mod bodies;
mod ifs_login;
mod numbers;
mod proxy;
mod redirects;
mod secrets;
mod tls;

use idrecon::config::{AzureConfig, AzureCredential, FlowConfig, FlowSourceKind, IfsConfig};
use idrecon::sources::http::HttpSettings;
use idrecon::sources::retry::RetryPolicy;
use secrecy::SecretString;
use std::time::Duration;

pub const AZURE_SECRET: &str = "azure-Secret/value+42";
pub const IFS_SECRET: &str = "ifs-Secret value&42";
pub const FLOW_PASSWORD: &str = "flow-Pass:word 42";

/// Quick retries, so a test that exhausts them stays short.
pub fn settings() -> HttpSettings {
    HttpSettings {
        retry: RetryPolicy {
            max_retries: 2,
            min_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
            max_total_wait: Duration::from_secs(5),
        },
        ..HttpSettings::default()
    }
}

/// Azure against `server`: login under `/login`, Graph under `/graph`.
pub fn azure(server: &hostile::Hostile) -> AzureConfig {
    AzureConfig {
        tenant_id: "contoso.onmicrosoft.com".into(),
        client_id: "app-id".into(),
        credential: AzureCredential::Secret(SecretString::from(AZURE_SECRET)),
        login_url: server.url("/login"),
        graph_url: server.url("/graph"),
        group_id: None,
        include_guests: false,
        allow_insecure_http: false,
    }
}

pub const AZURE_TOKEN: &str = "/login/contoso.onmicrosoft.com/oauth2/v2.0/token";

/// IFS against `server`: OData under `/ifs`, IAM under `/auth/realms/prod`.
pub fn ifs(server: &hostile::Hostile) -> IfsConfig {
    IfsConfig {
        url: server.url("/ifs"),
        issuer_url: server.url("/auth/realms/prod"),
        client_id: "NC Flow/Reconciler".into(),
        client_secret: SecretString::from(IFS_SECRET),
        users_path: "Users".into(),
        directory_id_field: "WebUser".into(),
        email_field: None,
        page_size: 100,
        concurrency: 1,
        token_auth_method: Default::default(),
        allow_insecure_http: false,
    }
}

pub fn flow(server: &hostile::Hostile) -> FlowConfig {
    FlowConfig {
        source: FlowSourceKind::Http,
        url: Some(server.url("/flow")),
        username: Some("svc_idrecon".into()),
        password: Some(SecretString::from(FLOW_PASSWORD)),
        csv_path: None,
        case_insensitive_ids: true,
        allow_insecure_http: false,
    }
}

pub fn token(value: &str) -> hostile::Cue {
    hostile::Cue::Json(
        200,
        serde_json::json!({"token_type": "Bearer", "expires_in": 3599, "access_token": value}),
    )
}

pub fn graph_user(id: &str, upn: &str) -> serde_json::Value {
    serde_json::json!({"id": id, "userPrincipalName": upn, "accountEnabled": true, "userType": "Member"})
}
