//! Simulated Azure AD login: the OAuth 2.0 client-credentials token
//! endpoint `POST /azure-login/{tenant}/oauth2/v2.0/token`, with client
//! secret or certificate assertion, and AADSTS-shaped errors.

use super::assertion;
use super::config::{AZURE_CLIENT_ID, AZURE_CLIENT_SECRET, TENANT, TENANT_GUID};
use super::faults::FaultTarget;
use super::server::{
    apply_early_fault, form_value, json_response, origin, parse_form, ErrorShape, Shared,
};
use super::state::{lock, read};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde_json::json;

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

pub(crate) fn routes() -> Router<Shared> {
    Router::new()
        .route("/azure-login/{tenant}/oauth2/v2.0/token", post(token))
        .route(
            "/azure-login/{tenant}/v2.0/.well-known/openid-configuration",
            get(openid_configuration),
        )
}

fn known_tenant(tenant: &str) -> bool {
    tenant.eq_ignore_ascii_case(TENANT) || tenant.eq_ignore_ascii_case(TENANT_GUID)
}

/// The tenant's OpenID configuration (Microsoft identity platform v2.0),
/// which MSAL reads to find the token endpoint.
async fn openid_configuration(
    State(state): State<Shared>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !known_tenant(&tenant) {
        return aadsts(
            StatusCode::BAD_REQUEST,
            "invalid_tenant",
            90002,
            &format!("Tenant '{tenant}' not found."),
        );
    }
    let base = format!("{}/azure-login/{tenant}", origin(&headers, &state));
    json_response(
        StatusCode::OK,
        &json!({
            "issuer": format!("{base}/v2.0"),
            "token_endpoint": format!("{base}/oauth2/v2.0/token"),
            "authorization_endpoint": format!("{base}/oauth2/v2.0/authorize"),
            "device_authorization_endpoint": format!("{base}/oauth2/v2.0/devicecode"),
            "jwks_uri": format!("{base}/discovery/v2.0/keys"),
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "tenant_region_scope": "EU",
        }),
    )
}

/// An AADSTS error body, as `login.microsoftonline.com` sends it.
fn aadsts(status: StatusCode, error: &str, code: u32, message: &str) -> Response {
    let trace_id = uuid::Uuid::new_v4().to_string();
    let correlation_id = uuid::Uuid::new_v4().to_string();
    let timestamp = chrono::Utc::now().format("%Y-%m-%d %H:%M:%SZ").to_string();
    json_response(
        status,
        &json!({
            "error": error,
            "error_description": format!(
                "AADSTS{code}: {message} Trace ID: {trace_id} Correlation ID: {correlation_id} Timestamp: {timestamp}"
            ),
            "error_codes": [code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
        }),
    )
}

fn missing(parameter: &str) -> Response {
    aadsts(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        900144,
        &format!("The request body must contain the following parameter: '{parameter}'."),
    )
}

async fn token(
    State(state): State<Shared>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let decision = state.fault_for_request(FaultTarget::Login);
    if let Err(response) = apply_early_fault(decision, ErrorShape::OAuth, || {}).await {
        return response;
    }
    if !known_tenant(&tenant) {
        return aadsts(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            &format!("Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."),
        );
    }
    let form = parse_form(&body);
    match form_value(&form, "grant_type") {
        None => return missing("grant_type"),
        Some("client_credentials") => {}
        Some(other) => {
            return aadsts(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                70003,
                &format!("The app requested an unsupported grant type '{other}'."),
            )
        }
    }
    let Some(client_id) = form_value(&form, "client_id") else {
        return missing("client_id");
    };
    if client_id != AZURE_CLIENT_ID {
        return aadsts(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            &format!("Application with identifier '{client_id}' was not found in the directory '{TENANT}'."),
        );
    }
    let Some(scope) = form_value(&form, "scope") else {
        return missing("scope");
    };
    if !scope.ends_with("/.default") || scope.split_whitespace().count() != 1 {
        return aadsts(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            1002012,
            &format!("The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."),
        );
    }

    let secret = form_value(&form, "client_secret");
    let assertion = form_value(&form, "client_assertion");
    match (secret, assertion) {
        (Some(_), Some(_)) => {
            return aadsts(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                700030,
                "Only one of 'client_secret' and 'client_assertion' may be presented.",
            )
        }
        (None, None) => {
            return aadsts(
                StatusCode::BAD_REQUEST,
                "invalid_client",
                7000216,
                "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.",
            )
        }
        (Some(secret), None) => {
            if secret != AZURE_CLIENT_SECRET {
                return aadsts(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    7000215,
                    &format!("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{AZURE_CLIENT_ID}'."),
                );
            }
        }
        (None, Some(assertion)) => {
            match form_value(&form, "client_assertion_type") {
                Some(JWT_BEARER) => {}
                None => return missing("client_assertion_type"),
                Some(other) => {
                    return aadsts(
                        StatusCode::BAD_REQUEST,
                        "invalid_request",
                        50027,
                        &format!("client_assertion_type '{other}' is not supported; use '{JWT_BEARER}'."),
                    )
                }
            }
            let path = format!("/azure-login/{tenant}/oauth2/v2.0/token");
            let urls = vec![
                format!("{}{path}", origin(&headers, &state)),
                format!("{}{path}", state.base_url),
            ];
            let certificates = read(&state.certificates).clone();
            let result = assertion::validate(
                assertion,
                client_id,
                &urls,
                &certificates,
                &mut lock(&state.used_jtis),
            );
            if let Err(e) = result {
                let status = if e.unauthorized {
                    StatusCode::UNAUTHORIZED
                } else {
                    StatusCode::BAD_REQUEST
                };
                return aadsts(status, "invalid_client", e.aadsts, &e.message);
            }
        }
    }

    let lifetime = state.settings().azure_token_lifetime;
    let access_token = lock(&state.azure_tokens).issue(lifetime);
    json_response(
        StatusCode::OK,
        &json!({
            "token_type": "Bearer",
            "expires_in": lifetime.as_secs(),
            "ext_expires_in": lifetime.as_secs(),
            "access_token": access_token,
        }),
    )
}
