//! A service whose error text echoes the request (body, query,
//! `Authorization`) never gets a configured secret into an error message:
//! it is masked before anything is logged, stored, reported or mailed.

use crate::hostile::{Cue, Hostile};
use crate::{azure, flow, settings, AZURE_SECRET, AZURE_TOKEN, FLOW_PASSWORD};
use base64::Engine as _;
use idrecon::auth::{AccessTokenSource, ClientCredentials};
use idrecon::net::redact::Redactor;
use idrecon::sources::flow::FlowHttp;
use idrecon::sources::http::HttpSettings;
use secrecy::SecretString;

fn masking(secrets: &[&str]) -> HttpSettings {
    let redactor = Redactor::default();
    for s in secrets {
        redactor.add(&SecretString::from(s.to_string()));
    }
    redactor.add_basic("svc_idrecon", &SecretString::from(FLOW_PASSWORD));
    HttpSettings {
        redactor,
        ..settings()
    }
}

#[tokio::test]
async fn an_idp_echoing_the_client_secret_does_not_get_it_into_the_error() {
    let server = Hostile::start().await;
    server.on(AZURE_TOKEN, vec![Cue::Echo(400)]);
    let settings = masking(&[AZURE_SECRET]);
    let tokens = ClientCredentials::azure(&azure(&server), reqwest::Client::new())
        .unwrap()
        .with_settings(&settings);
    let err = tokens.access_token().await.unwrap_err();
    let text = format!("{err} {err:?}");
    let encoded: String = url::form_urlencoded::byte_serialize(AZURE_SECRET.as_bytes()).collect();
    // The echo really carried the secret (form-encoded)…
    assert!(server.hits(AZURE_TOKEN)[0].body.contains(&encoded));
    // …and the error shows where it was, masked.
    assert!(text.contains("[redacted]"), "{text}");
    assert!(
        !text.contains(AZURE_SECRET) && !text.contains(&encoded),
        "{text}"
    );
}

#[tokio::test]
async fn a_flow_endpoint_echoing_basic_credentials_does_not_get_them_into_the_error() {
    let server = Hostile::start().await;
    server.on("/flow/users", vec![Cue::Echo(400)]);
    let settings = masking(&[FLOW_PASSWORD]);
    let api = FlowHttp::new(&flow(&server), reqwest::Client::new(), &settings).unwrap();
    let err = api.fetch_all().await.unwrap_err();
    let text = format!("{err} {err:?}");
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("svc_idrecon:{FLOW_PASSWORD}"));
    assert!(server.hits("/flow/users")[0]
        .header("authorization")
        .unwrap()
        .contains(&basic));
    assert!(
        !text.contains(&basic) && !text.contains(FLOW_PASSWORD),
        "{text}"
    );
    assert!(text.contains("[redacted]"), "{text}");
}

#[tokio::test]
async fn service_text_is_cut_to_a_sane_length() {
    let server = Hostile::start().await;
    let long = "x".repeat(5000);
    server.on(
        "/flow/users",
        vec![Cue::Json(400, serde_json::json!({"error": long}))],
    );
    let api = FlowHttp::new(&flow(&server), reqwest::Client::new(), &settings()).unwrap();
    let err = api.fetch_all().await.unwrap_err();
    assert!(err.to_string().len() < 800, "{}", err.to_string().len());
}

#[tokio::test]
async fn the_connectors_built_from_a_config_mask_its_secrets() {
    use idrecon::config::Config;
    use idrecon::sources::live::LiveSources;
    use idrecon::sources::Sources;

    let server = Hostile::start().await;
    server.on(crate::AZURE_TOKEN, vec![Cue::Echo(401)]);
    server.on("/flow/users", vec![Cue::Echo(400)]);
    let dir = tempfile::tempdir().unwrap();
    let base = server.origin();
    let text = format!(
        r#"
[store]
url = "sqlite://{db}"
[azure]
tenant_id = "contoso.onmicrosoft.com"
client_id = "app-id"
client_secret = "{AZURE_SECRET}"
login_url = "{base}/login"
graph_url = "{base}/graph"
[ifs]
url = "{base}/ifs"
issuer_url = "{base}/auth/realms/prod"
client_id = "ifs-client"
client_secret = "{ifs_secret}"
users_path = "Users"
directory_id_field = "WebUser"
[flow]
source = "http"
url = "{base}/flow"
username = "svc_idrecon"
password = "{FLOW_PASSWORD}"
[report]
send = "never"
"#,
        db = dir.path().join("idrecon.db").display(),
        ifs_secret = crate::IFS_SECRET,
    );
    let cfg = Config::from_toml_str(&text, &Default::default(), dir.path()).unwrap();
    let sources = LiveSources::with_settings(&cfg, &settings()).unwrap();
    let azure = sources.fetch_azure(None).await.unwrap_err();
    let flow = sources.fetch_flow().await.unwrap_err();
    let encoded: String = url::form_urlencoded::byte_serialize(AZURE_SECRET.as_bytes()).collect();
    assert!(server.hits(crate::AZURE_TOKEN)[0].body.contains(&encoded));
    for err in [azure.to_string(), flow.to_string()] {
        assert!(err.contains("[redacted]"), "{err}");
        for secret in [AZURE_SECRET, encoded.as_str(), FLOW_PASSWORD] {
            assert!(!err.contains(secret), "{secret} in {err}");
        }
    }
}
