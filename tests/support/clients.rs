//! Shared pieces of the connector tests: a recording axum mock server on
//! 127.0.0.1:0 whose answers come from a closure, and config builders.

use axum::body::{to_bytes, Body};
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Router;
use idrecon::config::{
    AzureConfig, AzureCredential, FlowConfig, FlowSourceKind, IfsConfig, TokenAuthMethod,
};
use idrecon::sources::http::HttpSettings;
use idrecon::sources::retry::RetryPolicy;
use secrecy::SecretString;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use url::Url;

/// One request the mock received.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// The raw query string, as sent.
    pub raw_query: Option<String>,
    pub headers: HeaderMap,
    pub body: String,
}

impl Recorded {
    /// Decoded query parameters.
    pub fn query(&self) -> HashMap<String, String> {
        url::form_urlencoded::parse(self.raw_query.as_deref().unwrap_or("").as_bytes())
            .into_owned()
            .collect()
    }

    pub fn param(&self, key: &str) -> Option<String> {
        self.query().get(key).cloned()
    }

    /// Decoded `application/x-www-form-urlencoded` body.
    pub fn form(&self) -> HashMap<String, String> {
        url::form_urlencoded::parse(self.body.as_bytes())
            .into_owned()
            .collect()
    }

    /// The bearer token, if any.
    pub fn bearer(&self) -> Option<String> {
        self.headers
            .get("authorization")?
            .to_str()
            .ok()?
            .strip_prefix("Bearer ")
            .map(str::to_string)
    }

    /// `http://host:port` of the mock, from the Host header (for absolute links).
    pub fn origin(&self) -> String {
        let host = self
            .headers
            .get("host")
            .and_then(|h| h.to_str().ok())
            .unwrap_or("127.0.0.1");
        format!("http://{host}")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// What the mock answers.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub delay: Duration,
}

impl Reply {
    pub fn json(status: u16, value: serde_json::Value) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: value.to_string(),
            delay: Duration::ZERO,
        }
    }

    pub fn text(status: u16, body: &str) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: body.to_string(),
            delay: Duration::ZERO,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn delayed(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

type Handler = Arc<dyn Fn(&Recorded) -> Reply + Send + Sync>;

/// A mock HTTP server recording every request.
pub struct Mock {
    pub base: Url,
    log: Arc<Mutex<Vec<Recorded>>>,
}

impl Mock {
    pub async fn start(handler: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> Mock {
        let handler: Handler = Arc::new(handler);
        let log: Arc<Mutex<Vec<Recorded>>> = Arc::default();
        let log_for_server = log.clone();
        let app = Router::new().fallback(move |request: Request| {
            let handler = handler.clone();
            let log = log_for_server.clone();
            async move {
                let (parts, body) = request.into_parts();
                let body = to_bytes(body, 10 * 1024 * 1024).await.unwrap_or_default();
                let recorded = Recorded {
                    method: parts.method.to_string(),
                    path: parts.uri.path().to_string(),
                    raw_query: parts.uri.query().map(str::to_string),
                    headers: parts.headers.clone(),
                    body: String::from_utf8_lossy(&body).into_owned(),
                };
                log.lock().unwrap().push(recorded.clone());
                let reply = handler(&recorded);
                if !reply.delay.is_zero() {
                    tokio::time::sleep(reply.delay).await;
                }
                let mut response =
                    Response::builder().status(StatusCode::from_u16(reply.status).unwrap());
                for (k, v) in &reply.headers {
                    response = response.header(k, v);
                }
                response.body(Body::from(reply.body)).unwrap()
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Mock {
            base: Url::parse(&format!("http://{addr}")).unwrap(),
            log,
        }
    }

    /// `{base}{path}`.
    pub fn url(&self, path: &str) -> Url {
        self.base.join(path).unwrap()
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.log.lock().unwrap().clone()
    }

    /// Requests whose path starts with `prefix`.
    pub fn hits(&self, prefix: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.path.starts_with(prefix))
            .collect()
    }
}

/// Retries that keep the tests fast.
pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_retries: 3,
        min_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(40),
        max_total_wait: Duration::from_secs(10),
    }
}

pub fn fast_settings() -> HttpSettings {
    HttpSettings {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(5),
        retry: fast_retry(),
    }
}

pub const TENANT: &str = "contoso.onmicrosoft.com";
pub const CLIENT_ID: &str = "11111111-2222-3333-4444-555555555555";
pub const SECRET: &str = "very-secret-client-value-42";

/// Azure config against the mock: login under `/login`, Graph under `/graph`.
pub fn azure_config(mock: &Mock, credential: AzureCredential) -> AzureConfig {
    AzureConfig {
        tenant_id: TENANT.into(),
        client_id: CLIENT_ID.into(),
        credential,
        login_url: mock.url("/login"),
        graph_url: mock.url("/graph"),
        group_id: None,
        include_guests: false,
        allow_insecure_http: false,
    }
}

pub fn secret() -> AzureCredential {
    AzureCredential::Secret(SecretString::from(SECRET))
}

/// The Azure token path for [`azure_config`].
pub fn azure_token_path() -> String {
    format!("/login/{TENANT}/oauth2/v2.0/token")
}

/// IFS config against the mock: OData under `/ifs`, IAM under `/auth/realms/prod`.
pub fn ifs_config(mock: &Mock, page_size: u32) -> IfsConfig {
    IfsConfig {
        url: mock.url("/ifs"),
        issuer_url: mock.url("/auth/realms/prod"),
        client_id: "NC_Flow_Reconciler".into(),
        client_secret: SecretString::from("ifs-secret-value"),
        users_path: "main/ifsapplications/projection/v1/UserHandling.svc/Users".into(),
        directory_id_field: "WebUser".into(),
        email_field: None,
        page_size,
        concurrency: 4,
        token_auth_method: TokenAuthMethod::Auto,
        allow_insecure_http: false,
    }
}

pub const IFS_USERS_PATH: &str = "/ifs/main/ifsapplications/projection/v1/UserHandling.svc/Users";

pub fn flow_config(mock: &Mock) -> FlowConfig {
    FlowConfig {
        source: FlowSourceKind::Http,
        url: Some(mock.url("/flow")),
        username: Some("svc_idrecon".into()),
        password: Some(SecretString::from("flow-password-value")),
        csv_path: None,
        case_insensitive_ids: true,
        allow_insecure_http: false,
    }
}

/// A successful token answer.
pub fn token_reply(token: &str, expires_in: u64) -> Reply {
    Reply::json(
        200,
        serde_json::json!({"token_type": "Bearer", "expires_in": expires_in, "access_token": token}),
    )
}

/// A Graph user as JSON.
pub fn graph_user(id: &str, upn: &str) -> serde_json::Value {
    serde_json::json!({
        "id": id,
        "userPrincipalName": upn,
        "mail": upn,
        "displayName": format!("User {id}"),
        "accountEnabled": true,
        "employeeId": null,
        "onPremisesSamAccountName": null,
        "userType": "Member"
    })
}
