//! The awkward parts of the real services that the simulator reproduces by
//! default (docs/simulator.md, "Behaviour"): delta pages of the service's
//! own size, replays, `@removed` in the first round, omitted properties,
//! delta tokens that expire after 7 days of simulated time, Graph error
//! dates in ISO 8601, lenient sendMail and assertion checks.

use crate::sim_support;

use compact_str::format_compact;
use idrecon::sim::generate::generate;
use idrecon::sim::{AZURE_CLIENT_ID, MAIL_SENDER, TENANT};
use serde_json::{json, Value};
use sim_support::*;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

async fn get(
    client: &reqwest::Client,
    token: &str,
    url: &str,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let response = client.get(url).bearer_auth(token).send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, headers, body)
}

/// Walks a delta round from `first`: (pages, delta link).
async fn delta_round(client: &reqwest::Client, token: &str, first: &str) -> (Vec<Value>, String) {
    let mut pages = Vec::new();
    let mut url = first.to_string();
    loop {
        let (status, _, page) = get(client, token, &url).await;
        assert_eq!(status, 200, "GET {url}: {page}");
        pages.push(page.clone());
        match (page.get("@odata.nextLink"), page.get("@odata.deltaLink")) {
            (Some(next), None) => url = next.as_str().unwrap().to_string(),
            (None, Some(delta)) => return (pages, delta.as_str().unwrap().to_string()),
            other => panic!("a page carries exactly one link: {other:?}"),
        }
        assert!(pages.len() < 1000, "delta round does not end");
    }
}

#[tokio::test]
async fn delta_rounds_have_service_pages_replays_removals_and_omitted_properties() {
    let generated = generate(300, 5);
    let azure = generated.tenant.azure.clone();
    let sim = start(generated.tenant).await;
    let base = sim.base_url();
    let client = client();
    let token = graph_token(&client, &base).await;

    let first = format!(
        "{base}/graph/v1.0/users/delta?$select=id,userPrincipalName,mail,employeeId,accountEnabled&$top=7"
    );
    let (pages, delta_link) = delta_round(&client, &token, &first).await;
    let sizes: Vec<usize> = pages
        .iter()
        .map(|p| p["value"].as_array().unwrap().len())
        .collect();
    // $top is not supported on users delta: the service's pages of 100.
    assert!(
        sizes[..sizes.len() - 1].iter().all(|&n| n == 100),
        "{sizes:?}"
    );
    let entries: Vec<&Value> = pages
        .iter()
        .flat_map(|p| p["value"].as_array().unwrap())
        .collect();

    // @removed entries already in the first round.
    let removed: Vec<&Value> = entries
        .iter()
        .copied()
        .filter(|e| e.get("@removed").is_some())
        .collect();
    assert!(
        !removed.is_empty(),
        "the initial round carries @removed entries"
    );
    assert!(removed.iter().all(|e| e["@removed"]["reason"] == "deleted"));

    // Replays: some users come twice; every user at least once.
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for e in entries.iter().filter(|e| e.get("@removed").is_none()) {
        *seen.entry(e["id"].as_str().unwrap()).or_default() += 1;
    }
    assert_eq!(seen.len(), azure.len());
    assert!(seen.values().any(|&n| n > 1), "some user is replayed");

    // Never-set properties are omitted, not null.
    let without_id = azure
        .iter()
        .find(|u| u.employee_id().is_none())
        .expect("a user without employeeId");
    let entry = entries.iter().find(|e| e["id"] == without_id.id()).unwrap();
    assert!(entry.get("employeeId").is_none(), "{entry}");
    assert!(entries
        .iter()
        .all(|e| e.as_object().unwrap().values().all(|v| !v.is_null())));
    let with_mail = azure.iter().find(|u| u.mail().is_some()).unwrap();
    let entry = entries.iter().find(|e| e["id"] == with_mail.id()).unwrap();
    assert_eq!(entry["mail"].as_str(), with_mail.mail());

    // A change round replays too, and a user listing still sends nulls.
    let handle = sim.handle();
    handle.update_azure(|users| {
        for u in users.iter_mut().take(120) {
            u.edit(|fields| fields.display_name = Some(format_compact!("{} (changed)", fields.id)));
        }
    });
    let (pages, _) = delta_round(&client, &token, &delta_link).await;
    let ids: Vec<&str> = pages
        .iter()
        .flat_map(|p| p["value"].as_array().unwrap())
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    let distinct: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(distinct.len(), 120);
    assert!(ids.len() > 120, "replays in a change round");
    let (_, _, page) = get(
        &client,
        &token,
        &format!(
            "{base}/graph/v1.0/users/{}?$select=id,employeeId",
            without_id.id()
        ),
    )
    .await;
    assert_eq!(page["employeeId"], Value::Null);
    assert!(page.get("employeeId").is_some());
    sim.shutdown().await;
}

#[tokio::test]
async fn delta_tokens_expire_after_seven_days_of_simulated_time() {
    let sim = start(small_tenant()).await;
    let base = sim.base_url();
    let client = client();
    let token = graph_token(&client, &base).await;
    let handle = sim.handle();
    let (_, delta_link) = delta_round(
        &client,
        &token,
        &format!("{base}/graph/v1.0/users/delta?$select=id,mail"),
    )
    .await;
    handle.advance_clock(Duration::from_secs(6 * 24 * 3600));
    let (status, _, body) = get(&client, &token, &delta_link).await;
    assert_eq!(status, 200, "six days old: still valid {body}");
    let fresh_link = body["@odata.deltaLink"].as_str().unwrap().to_string();

    handle.advance_clock(Duration::from_secs(24 * 3600 + 1));
    let (status, headers, body) = get(&client, &token, &delta_link).await;
    assert_eq!(status, 410, "{body}");
    assert_eq!(body["error"]["code"], "syncStateNotFound");
    // The Location header starts a fresh round with the same $select.
    let location = headers["location"].to_str().unwrap().to_string();
    assert!(location.contains("/users/delta"), "{location}");
    let (pages, _) = delta_round(&client, &token, &location).await;
    assert!(pages[0]["value"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e.get("userPrincipalName").is_none() && e.get("@removed").is_none()));
    // The link issued a day later is still young enough.
    let (status, _, _) = get(&client, &token, &fresh_link).await;
    assert_eq!(status, 200);
    sim.shutdown().await;
}

/// `innerError.date` is ISO 8601 without a zone, as Graph sends it.
fn assert_graph_error(body: &Value, code: &str) {
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].is_string());
    let date = body["error"]["innerError"]["date"].as_str().unwrap();
    chrono::NaiveDateTime::parse_from_str(date, "%Y-%m-%dT%H:%M:%S")
        .unwrap_or_else(|e| panic!("innerError.date {date:?} is not ISO 8601: {e}"));
    assert!(body["error"]["innerError"]["request-id"].is_string());
}

#[tokio::test]
async fn graph_errors_carry_iso_8601_dates_and_graph_shape() {
    let sim = start(small_tenant()).await;
    let base = sim.base_url();
    let client = client();
    let token = graph_token(&client, &base).await;
    for (url, status, code) in [
        (
            format!("{base}/graph/v1.0/users?$top=5000"),
            400,
            "Request_UnsupportedQuery",
        ),
        (
            format!("{base}/graph/v1.0/users?$select=frob"),
            400,
            "BadRequest",
        ),
        (
            format!("{base}/graph/v1.0/users/nobody@contoso.com"),
            404,
            "Request_ResourceNotFound",
        ),
        (
            format!("{base}/graph/v1.0/users/delta?$deltatoken=bogus"),
            410,
            "syncStateNotFound",
        ),
        (
            format!("{base}/graph/v1.0/users?$skiptoken=bogus"),
            400,
            "Request_BadRequest",
        ),
        (format!("{base}/graph/v1.0/nonsense"), 400, "BadRequest"),
    ] {
        let (got, _, body) = get(&client, &token, &url).await;
        assert_eq!(got, status, "{url}: {body}");
        assert_graph_error(&body, code);
    }
    let (got, _, body) = get(&client, "not-a-token", &format!("{base}/graph/v1.0/users")).await;
    assert_eq!(got, 401);
    assert_graph_error(&body, "InvalidAuthenticationToken");
    sim.shutdown().await;
}

#[tokio::test]
async fn send_mail_accepts_save_to_sent_items_as_a_string() {
    let sim = start(small_tenant()).await;
    let base = sim.base_url();
    let client = client();
    let token = graph_token(&client, &base).await;
    // Microsoft's own sendMail example.
    let body = json!({
        "message": {
            "subject": "Meet for lunch?",
            "body": {"contentType": "Text", "content": "The new cafeteria is open."},
            "toRecipients": [{"emailAddress": {"address": "frannis@contoso.com"}}]
        },
        "saveToSentItems": "false"
    });
    let response = client
        .post(format!("{base}/graph/v1.0/users/{MAIL_SENDER}/sendMail"))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    assert_eq!(sim.handle().sent_mail(), vec![body]);
    sim.shutdown().await;
}

#[tokio::test]
async fn login_accepts_an_assertion_without_nbf_and_with_fractional_dates() {
    let app = include_str!("fixtures/app.pem");
    let der = pem::parse_many(app)
        .unwrap()
        .into_iter()
        .find(|p| p.tag() == "CERTIFICATE")
        .unwrap()
        .contents()
        .to_vec();
    let sim = start(small_tenant()).await;
    sim.handle().register_certificate(app).unwrap();
    let base = sim.base_url();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    // As MSAL Python forms it: RS256 + padded x5t, iat/exp as floats, no nbf.
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    // MSAL Python keeps the base64 padding of the thumbprint.
    header.x5t = Some(format!("{}=", idrecon::sim::thumbprint_sha1(&der)));
    let claims = json!({"aud": token_url(&base), "iss": AZURE_CLIENT_ID, "sub": AZURE_CLIENT_ID,
        "jti": uuid::Uuid::new_v4().to_string(), "iat": now, "exp": now + 600.0});
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(app.as_bytes()).unwrap();
    let jwt = jsonwebtoken::encode(&header, &claims, &key).unwrap();
    let response = client()
        .post(token_url(&base))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", AZURE_CLIENT_ID),
            ("scope", "https://graph.microsoft.com/.default"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", &jwt),
        ])
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    // The tenant's OpenID configuration names the token endpoint MSAL uses.
    let config: Value = client()
        .get(format!(
            "{base}/azure-login/{TENANT}/v2.0/.well-known/openid-configuration"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(config["token_endpoint"], token_url(&base));
    sim.shutdown().await;
}
