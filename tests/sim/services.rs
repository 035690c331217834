//! The simulated services against a real HTTP client: paging, $select,
//! auth and error shapes, delta, IFS filters, Flow writes, sendMail.

use crate::sim_support;

use idrecon::sim::generate::{generate, FLOW_USERS_GROUP_ID};
use idrecon::sim::{
    IfsActiveFormat, IfsPaging, AZURE_CLIENT_ID, FLOW_USERNAME, IFS_CLIENT_ID, IFS_CLIENT_SECRET,
    MAIL_SENDER, TENANT,
};
use serde_json::{json, Value};
use sim_support::*;
use std::collections::HashSet;
use std::time::Duration;

fn ids(pages: &[Value], field: &str) -> Vec<String> {
    pages
        .iter()
        .flat_map(|p| p["value"].as_array().unwrap().iter())
        .map(|u| u[field].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn graph_users_paging_returns_everyone_once_with_select() {
    let generated = generate(2500, 11);
    let expected: HashSet<String> = generated
        .tenant
        .azure
        .iter()
        .map(|u| u.id().to_string())
        .collect();
    let sim = start(generated.tenant).await;
    let base = sim.base_url();
    let client = client();
    let token = graph_token(&client, &base).await;

    let first =
        format!("{base}/graph/v1.0/users?$select=id,userPrincipalName,accountEnabled&$top=999");
    let pages = walk_graph(&client, &token, &first).await;
    assert_eq!(pages.len(), expected.len().div_ceil(999));
    let got = ids(&pages, "id");
    assert_eq!(got.len(), expected.len(), "no duplicates, nobody missing");
    assert_eq!(got.iter().cloned().collect::<HashSet<_>>(), expected);
    for page in &pages[..pages.len() - 1] {
        let next = page["@odata.nextLink"].as_str().unwrap();
        assert!(next.starts_with(&base), "absolute nextLink: {next}");
        assert!(next.contains("$skiptoken="));
    }
    assert!(pages.last().unwrap().get("@odata.nextLink").is_none());
    // $select: exactly the selected properties
    for user in pages[0]["value"].as_array().unwrap() {
        let mut keys: Vec<&str> = user
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        keys.sort();
        assert_eq!(keys, ["accountEnabled", "id", "userPrincipalName"]);
    }

    // default page size 100, default property set without accountEnabled
    let page: Value = client
        .get(format!("{base}/graph/v1.0/users"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["value"].as_array().unwrap().len(), 100);
    assert!(page["value"][0].get("accountEnabled").is_none());
    assert!(page["value"][0].get("mail").is_some());
    sim.shutdown().await;
}

#[tokio::test]
async fn graph_rejects_bad_queries_in_graph_shape() {
    let sim = start(small_tenant()).await;
    let base = sim.base_url();
    let client = client();
    let token = graph_token(&client, &base).await;
    for (query, code) in [
        ("$top=1000", "Request_UnsupportedQuery"),
        ("$top=0", "Request_UnsupportedQuery"),
        ("$select=id,frob", "BadRequest"),
        ("$skiptoken=garbage", "Request_BadRequest"),
        (
            "$filter=userType%20eq%20%27Member%27",
            "Request_UnsupportedQuery",
        ),
    ] {
        let response = client
            .get(format!("{base}/graph/v1.0/users?{query}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{query}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{query}");
        assert!(body["error"]["message"].is_string());
        assert!(body["error"]["innerError"]["request-id"].is_string());
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn graph_auth_is_enforced() {
    let sim = start(small_tenant()).await;
    let base = sim.base_url();
    let client = client();
    let url = format!("{base}/graph/v1.0/users");
    let ifs = ifs_token(&client, &base).await;
    for token in [None, Some("not-a-token"), Some(ifs.as_str())] {
        let mut request = client.get(&url);
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401);
        assert!(response.headers().contains_key("www-authenticate"));
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "InvalidAuthenticationToken");
    }
    // tokens expire
    sim.handle()
        .update_settings(|s| s.azure_token_lifetime = Duration::from_millis(200));
    let short = graph_token(&client, &base).await;
    let ok = client.get(&url).bearer_auth(&short).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let expired = client.get(&url).bearer_auth(&short).send().await.unwrap();
    assert_eq!(expired.status(), 401);
    let body: Value = expired.json().await.unwrap();
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("expired"));
    sim.shutdown().await;
}

async fn login(
    client: &reqwest::Client,
    base: &str,
    tenant: &str,
    form: &[(&str, &str)],
) -> (u16, Value) {
    let response = client
        .post(format!("{base}/azure-login/{tenant}/oauth2/v2.0/token"))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn azure_login_errors_are_aadsts_shaped() {
    let sim = start(small_tenant()).await;
    let base = sim.base_url();
    let client = client();
    let scope = ("scope", "https://graph.microsoft.com/.default");
    let grant = ("grant_type", "client_credentials");
    let id = ("client_id", AZURE_CLIENT_ID);
    /// tenant, form, status, error, AADSTS code
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, u16, &'a str, u64);
    let cases: Vec<Case> = vec![
        (
            TENANT,
            vec![grant, id, scope, ("client_secret", "wrong")],
            401,
            "invalid_client",
            7000215,
        ),
        (
            "fabrikam.onmicrosoft.com",
            vec![grant, id, scope, ("client_secret", "x")],
            400,
            "invalid_request",
            90002,
        ),
        (
            TENANT,
            vec![grant, ("client_id", "nope"), scope, ("client_secret", "x")],
            400,
            "unauthorized_client",
            700016,
        ),
        (
            TENANT,
            vec![grant, id, ("client_secret", "x")],
            400,
            "invalid_request",
            900144,
        ),
        (
            TENANT,
            vec![grant, id, ("scope", "User.Read"), ("client_secret", "x")],
            400,
            "invalid_scope",
            1002012,
        ),
        (
            TENANT,
            vec![("grant_type", "password"), id, scope],
            400,
            "unsupported_grant_type",
            70003,
        ),
        (
            TENANT,
            vec![grant, id, scope],
            400,
            "invalid_client",
            7000216,
        ),
        (
            TENANT,
            vec![
                grant,
                id,
                scope,
                ("client_assertion", "a.b.c"),
                ("client_assertion_type", "bogus"),
            ],
            400,
            "invalid_request",
            50027,
        ),
    ];
    for (tenant, form, status, error, code) in cases {
        let (got_status, body) = login(&client, &base, tenant, &form).await;
        assert_eq!(got_status, status, "{form:?}: {body}");
        assert_eq!(body["error"], error, "{form:?}");
        assert_eq!(body["error_codes"], json!([code]), "{form:?}");
        let description = body["error_description"].as_str().unwrap();
        assert!(
            description.starts_with(&format!("AADSTS{code}:")),
            "{description}"
        );
        assert!(body["trace_id"].is_string() && body["correlation_id"].is_string());
    }
    // national-cloud style scopes are fine as long as they end in /.default
    let (status, body) = login(
        &client,
        &base,
        idrecon::sim::TENANT_GUID,
        &[
            grant,
            id,
            ("scope", "https://microsoftgraph.chinacloudapi.cn/.default"),
            ("client_secret", idrecon::sim::AZURE_CLIENT_SECRET),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3599);
    sim.shutdown().await;
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn cert_der(pem_text: &str) -> Vec<u8> {
    pem::parse_many(pem_text)
        .unwrap()
        .into_iter()
        .find(|p| p.tag() == "CERTIFICATE")
        .unwrap()
        .contents()
        .to_vec()
}

fn assertion(
    key_pem: &str,
    thumbprint: &str,
    alg: jsonwebtoken::Algorithm,
    aud: &str,
    lifetime: u64,
) -> String {
    let mut header = jsonwebtoken::Header::new(alg);
    header.x5t_s256 = Some(thumbprint.to_string());
    signed(key_pem, header, aud, lifetime)
}

fn signed(key_pem: &str, header: jsonwebtoken::Header, aud: &str, lifetime: u64) -> String {
    let claims = json!({
        "aud": aud, "iss": AZURE_CLIENT_ID, "sub": AZURE_CLIENT_ID,
        "jti": uuid::Uuid::new_v4().to_string(),
        "nbf": now(), "iat": now(), "exp": now() + lifetime,
    });
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(key_pem.as_bytes()).unwrap();
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

#[tokio::test]
async fn azure_login_accepts_certificate_assertions() {
    let app = include_str!("fixtures/app.pem");
    let other = include_str!("fixtures/other_app.pem");
    let thumb = idrecon::sim::thumbprint_s256(&cert_der(app));
    let other_thumb = idrecon::sim::thumbprint_s256(&cert_der(other));
    let sim = start(small_tenant()).await;
    let base = sim.base_url();
    let client = client();
    let aud = token_url(&base);
    let post = |jwt: String| {
        let client = client.clone();
        let base = base.clone();
        async move {
            login(
                &client,
                &base,
                TENANT,
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", AZURE_CLIENT_ID),
                    ("scope", "https://graph.microsoft.com/.default"),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", &jwt),
                ],
            )
            .await
        }
    };
    use jsonwebtoken::Algorithm::{PS256, RS256};
    // Nothing registered: structure only.
    let (status, body) = post(assertion(app, &thumb, PS256, &aud, 300)).await;
    assert_eq!(status, 200, "{body}");
    // Lifetime over 10 minutes, wrong audience.
    let (status, body) = post(assertion(app, &thumb, PS256, &aud, 900)).await;
    assert_eq!(
        (status, body["error_codes"][0].as_u64()),
        (401, Some(700024))
    );
    let (status, body) = post(assertion(
        app,
        &thumb,
        PS256,
        "https://login.microsoftonline.com/x/oauth2/v2.0/token",
        300,
    ))
    .await;
    assert_eq!(
        (status, body["error_codes"][0].as_u64()),
        (401, Some(50012))
    );

    sim.handle().register_certificate(app).unwrap();
    // The two forms MSAL sends: PS256 + x5t#S256, RS256 + x5t (SHA-1).
    let (status, body) = post(assertion(app, &thumb, PS256, &aud, 300)).await;
    assert_eq!(status, 200, "PS256 + x5t#S256: {body}");
    assert!(body["access_token"].is_string());
    let mut rs256_sha1 = jsonwebtoken::Header::new(RS256);
    rs256_sha1.x5t = Some(idrecon::sim::thumbprint_sha1(&cert_der(app)));
    let (status, body) = post(signed(app, rs256_sha1, &aud, 300)).await;
    assert_eq!(status, 200, "RS256 + x5t: {body}");
    // RS256 with only x5t#S256: never sent by MSAL, reported to fail.
    let (status, body) = post(assertion(app, &thumb, RS256, &aud, 300)).await;
    assert_eq!(
        (status, body["error_codes"][0].as_u64()),
        (401, Some(700027)),
        "{body}"
    );
    // Signed by another key, claiming the registered thumbprint.
    let (status, body) = post(assertion(other, &thumb, PS256, &aud, 300)).await;
    assert_eq!(status, 401);
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("signature"));
    // A certificate that is not registered.
    let (status, body) = post(assertion(other, &other_thumb, PS256, &aud, 300)).await;
    assert_eq!(status, 401);
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("not registered"));
    // Garbage PEM is refused by the registration API.
    assert!(sim.handle().register_certificate("nope").is_err());
    sim.shutdown().await;
}

#[tokio::test]
async fn graph_delta_initial_changes_removals_and_expiry() {
    // Pages of 2, without the replays and initial removals (fidelity.rs
    // covers those), so every entry can be counted.
    let settings = idrecon::sim::SimSettings {
        graph_delta_page_size: 2,
        graph_delta_replay_every: 0,
        graph_delta_initial_removed: 0,
        ..Default::default()
    };
    let sim = idrecon::sim::Simulator::start_with_settings(
        small_tenant(),
        Default::default(),
        settings,
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let base = sim.base_url();
    let client = client();
    let token = graph_token(&client, &base).await;
    let handle = sim.handle();

    // Initial round in the service's pages of 2 whatever $top and Prefer
    // say, graph-rs-sdk's `delta()` spelling.
    let mut url = format!("{base}/graph/v1.0/users/delta()?$select=id,displayName&$top=999");
    let mut seen = Vec::new();
    let mut delta_link = None;
    let mut pages = 0;
    while delta_link.is_none() {
        let page: Value = client
            .get(&url)
            .bearer_auth(&token)
            .header("Prefer", "odata.maxpagesize=999")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        pages += 1;
        for user in page["value"].as_array().unwrap() {
            // $select remembered across pages
            assert_eq!(user.as_object().unwrap().len(), 2, "{user}");
            seen.push(user["id"].as_str().unwrap().to_string());
        }
        match (page.get("@odata.nextLink"), page.get("@odata.deltaLink")) {
            (Some(next), None) => url = next.as_str().unwrap().to_string(),
            (None, Some(delta)) => delta_link = Some(delta.as_str().unwrap().to_string()),
            other => panic!("page must carry exactly one link: {other:?}"),
        }
    }
    assert_eq!(pages, 3);
    seen.sort();
    assert_eq!(seen, ["id-1", "id-2", "id-3", "id-4", "id-5"]);
    let delta_link = delta_link.unwrap();
    assert!(delta_link.contains("$deltatoken="));

    // Nothing changed: empty.
    let page: Value = client
        .get(&delta_link)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["value"], json!([]));

    // Change one, delete one, add one, soft-delete one (one page each).
    handle.update_settings(|s| s.graph_delta_page_size = 100);
    handle.update_azure(|users| {
        users
            .iter_mut()
            .find(|u| u.id() == "id-1")
            .unwrap()
            .edit(|fields| fields.display_name = Some("Renamed".into()));
        users.retain(|u| u.id() != "id-2");
        users.push(aad("id-6", "new@contoso.com"));
    });
    assert!(handle.soft_delete_azure("id-4"));
    let page: Value = client
        .get(&delta_link)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let value = page["value"].as_array().unwrap();
    assert_eq!(value.len(), 4, "{page}");
    let find = |id: &str| value.iter().find(|v| v["id"] == id).unwrap().clone();
    assert_eq!(find("id-1")["displayName"], "Renamed");
    assert_eq!(find("id-6")["displayName"], "User id-6");
    assert_eq!(find("id-2")["@removed"]["reason"], "deleted");
    assert_eq!(find("id-4")["@removed"]["reason"], "changed");
    let next_delta = page["@odata.deltaLink"].as_str().unwrap().to_string();

    // Restore: appears again as a user.
    assert!(handle.restore_azure("id-4"));
    let page: Value = client
        .get(&next_delta)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["value"].as_array().unwrap().len(), 1);
    assert_eq!(page["value"][0]["id"], "id-4");

    // $deltatoken=latest: nothing now, a link for later.
    let page: Value = client
        .get(format!("{base}/graph/v1.0/users/delta?$deltatoken=latest"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["value"], json!([]));
    assert!(page["@odata.deltaLink"].is_string());

    // Expired tokens: 410 syncStateNotFound.
    handle.expire_delta_tokens();
    let response = client
        .get(&next_delta)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 410);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "syncStateNotFound");
    // A fresh initial round works.
    let response = client
        .get(format!("{base}/graph/v1.0/users/delta"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    sim.shutdown().await;
}

#[tokio::test]
async fn graph_group_members_and_single_user() {
    let sim = start(small_tenant()).await;
    let base = sim.base_url();
    let client = client();
    let token = graph_token(&client, &base).await;

    let pages = walk_graph(
        &client,
        &token,
        &format!("{base}/graph/v1.0/groups/group-1/transitiveMembers/microsoft.graph.user?$select=id,mail&$top=1"),
    )
    .await;
    let mut members = ids(&pages, "id");
    members.sort();
    assert_eq!(members, ["id-1", "id-3"], "the deleted member is skipped");
    let response = client
        .get(format!(
            "{base}/graph/v1.0/groups/nope/transitiveMembers/microsoft.graph.user"
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"]["code"],
        "Request_ResourceNotFound"
    );

    // UPN with an apostrophe, raw and percent-encoded; object ID; unknown.
    for path in [
        "o'brien@contoso.com",
        "o%27brien@contoso.com",
        "O'Brien@Contoso.com",
        "id-2",
    ] {
        let response = client
            .get(format!(
                "{base}/graph/v1.0/users/{path}?$select=userPrincipalName"
            ))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["id"], "id-2");
        assert_eq!(body["userPrincipalName"], "o'brien@contoso.com");
        assert!(body.get("mail").is_none());
    }
    let encoded = format!("{base}/graph/v1.0/users/%C3%A5sa.%C3%B6berg%40contoso.com");
    let body: Value = client
        .get(encoded)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["id"], "id-3");
    let response = client
        .get(format!("{base}/graph/v1.0/users/nobody@contoso.com"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"]["code"],
        "Request_ResourceNotFound"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn generated_group_lists_in_scope_users() {
    let generated = generate(1200, 3);
    let group = generated.tenant.groups[FLOW_USERS_GROUP_ID].clone();
    let sim = start(generated.tenant).await;
    let base = sim.base_url();
    let client = client();
    let token = graph_token(&client, &base).await;
    let pages = walk_graph(
        &client,
        &token,
        &format!("{base}/graph/v1.0/groups/{FLOW_USERS_GROUP_ID}/transitiveMembers/microsoft.graph.user?$top=999"),
    )
    .await;
    let got: HashSet<String> = ids(&pages, "id").into_iter().collect();
    assert_eq!(got, group.into_iter().collect::<HashSet<_>>());
    sim.shutdown().await;
}

#[tokio::test]
async fn send_mail_is_validated_and_stored() {
    let sim = start(small_tenant()).await;
    let base = sim.base_url();
    let client = client();
    let token = graph_token(&client, &base).await;
    let message = json!({"message": {
        "subject": "idrecon report",
        "body": {"contentType": "HTML", "content": "<p>3 findings</p>"},
        "toRecipients": [{"emailAddress": {"address": "iam-admins@contoso.com"}}],
        "attachments": [{"@odata.type": "#microsoft.graph.fileAttachment", "name": "findings.csv",
                         "contentType": "text/csv", "contentBytes": "a2luZCxjYXVzZQo="}]},
        "saveToSentItems": false});
    let response = client
        .post(format!("{base}/graph/v1.0/users/{MAIL_SENDER}/sendMail"))
        .bearer_auth(&token)
        .json(&message)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    assert_eq!(response.text().await.unwrap(), "");
    assert_eq!(sim.handle().sent_mail(), vec![message.clone()]);
    assert_eq!(sim.handle().sent_mail_with_sender()[0].sender, MAIL_SENDER);

    let mut no_recipients = message.clone();
    no_recipients["message"]["toRecipients"] = json!([]);
    for (sender, body, status, code) in [
        (
            "nobody@contoso.com",
            message.clone(),
            404,
            "ErrorInvalidUser",
        ),
        (MAIL_SENDER, no_recipients, 400, "ErrorInvalidRecipients"),
        (MAIL_SENDER, json!("text"), 400, "BadRequest"),
    ] {
        let response = client
            .post(format!("{base}/graph/v1.0/users/{sender}/sendMail"))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status);
        assert_eq!(
            response.json::<Value>().await.unwrap()["error"]["code"],
            code
        );
    }
    // An Azure user can send too (by object ID).
    let response = client
        .post(format!("{base}/graph/v1.0/users/id-1/sendMail"))
        .bearer_auth(&token)
        .json(&message)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    // Unauthenticated: 401.
    let response = client
        .post(format!("{base}/graph/v1.0/users/{MAIL_SENDER}/sendMail"))
        .json(&message)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(sim.handle().sent_mail().len(), 2);
    sim.shutdown().await;
}

#[tokio::test]
async fn ifs_iam_discovery_and_token_errors() {
    let sim = start(small_tenant()).await;
    let base = sim.base_url();
    let client = client();
    let discovery: Value = client
        .get(format!(
            "{base}/ifs/auth/realms/prod/.well-known/openid-configuration"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["issuer"], format!("{base}/ifs/auth/realms/prod"));
    let endpoint = discovery["token_endpoint"].as_str().unwrap().to_string();
    let response = client
        .get(format!(
            "{base}/ifs/auth/realms/test/.well-known/openid-configuration"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);

    // client_secret_basic works as well as the form.
    let response = client
        .post(&endpoint)
        .basic_auth(IFS_CLIENT_ID, Some(IFS_CLIENT_SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");

    for (form, status, error) in [
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", IFS_CLIENT_ID),
                ("client_secret", "wrong"),
            ],
            401,
            "unauthorized_client",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", "other"),
                ("client_secret", IFS_CLIENT_SECRET),
            ],
            401,
            "invalid_client",
        ),
        (
            vec![
                ("client_id", IFS_CLIENT_ID),
                ("client_secret", IFS_CLIENT_SECRET),
            ],
            400,
            "invalid_request",
        ),
        (
            vec![("grant_type", "password"), ("client_id", IFS_CLIENT_ID)],
            400,
            "unsupported_grant_type",
        ),
    ] {
        let response = client.post(&endpoint).form(&form).send().await.unwrap();
        assert_eq!(response.status(), status, "{form:?}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], error);
        assert!(body["error_description"].is_string());
    }
    sim.shutdown().await;
}

async fn ifs_page(client: &reqwest::Client, base: &str, token: &str, query: &str) -> (u16, Value) {
    let response = client
        .get(format!("{base}{IFS_USERS}?{query}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn ifs_paging_select_and_active_formats() {
    let generated = generate(3000, 5);
    let expected: Vec<String> = {
        let mut v: Vec<String> = generated
            .tenant
            .ifs
            .iter()
            .map(|u| u.identity().to_string())
            .collect();
        v.sort();
        v
    };
    let sim = start(generated.tenant).await;
    let base = sim.base_url();
    let client = client();
    let token = ifs_token(&client, &base).await;

    // $top/$skip ordered by Identity until a short page.
    let mut got = Vec::new();
    let mut skip = 0;
    let mut saw_bool = false;
    let mut saw_text = false;
    loop {
        let (status, page) = ifs_page(
            &client, &base, &token,
            &format!("$select=Identity,Description,WebUser,Active&$orderby=Identity&$top=1000&$skip={skip}"),
        ).await;
        assert_eq!(status, 200);
        assert!(page["@odata.context"]
            .as_str()
            .unwrap()
            .contains("$metadata#Users"));
        assert!(page.get("@odata.nextLink").is_none());
        let value = page["value"].as_array().unwrap();
        for user in value {
            got.push(user["Identity"].as_str().unwrap().to_string());
            match &user["Active"] {
                Value::Bool(_) => saw_bool = true,
                Value::String(s) => {
                    assert!(s == "TRUE" || s == "FALSE");
                    saw_text = true
                }
                other => panic!("Active {other}"),
            }
        }
        if value.len() < 1000 {
            break;
        }
        skip += 1000;
    }
    assert_eq!(got, expected, "every user once, in Identity order");
    assert!(saw_bool && saw_text, "both Active forms occur");

    // $select honoured (annotations aside).
    let (_, page) = ifs_page(&client, &base, &token, "$select=Identity&$top=3").await;
    for user in page["value"].as_array().unwrap() {
        let data: Vec<&String> = user
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| !k.starts_with('@') && *k != "luname" && *k != "keyref")
            .collect();
        assert_eq!(data, ["Identity"]);
    }
    let (status, body) = ifs_page(&client, &base, &token, "$select=Identity,Email").await;
    assert_eq!(status, 400);
    assert!(body["error"]["message"].as_str().unwrap().contains("Email"));

    // Switch to boolean Active and next-link paging.
    sim.handle().update_settings(|s| {
        s.ifs_active_format = IfsActiveFormat::Bool;
        s.ifs_paging = IfsPaging::NextLink;
    });
    let mut url = format!("{base}{IFS_USERS}?$select=Identity,Active&$orderby=Identity&$top=700");
    let mut got = Vec::new();
    loop {
        let page: Value = client
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for user in page["value"].as_array().unwrap() {
            assert!(user["Active"].is_boolean());
            got.push(user["Identity"].as_str().unwrap().to_string());
        }
        match page["@odata.nextLink"].as_str() {
            Some(next) => url = next.to_string(),
            None => break,
        }
    }
    assert_eq!(got, expected);
    sim.shutdown().await;
}

#[tokio::test]
async fn ifs_filters_and_auth() {
    let sim = start(small_tenant()).await;
    let base = sim.base_url();
    let client = client();
    let token = ifs_token(&client, &base).await;
    let identities = |page: &Value| -> Vec<String> {
        page["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["Identity"].as_str().unwrap().to_string())
            .collect()
    };
    let cases = [
        ("WebUser eq 'o''brien@contoso.com'", vec!["OBRIEN"]),
        ("Identity eq 'JDOE'", vec!["JDOE"]),
        ("tolower(WebUser) eq 'åsa.öberg@contoso.com'", vec!["ASA"]),
        ("WebUser eq 'JDOE@contoso.com'", vec![]),
        ("WebUser eq null", vec!["NODIR"]),
        ("Active eq false", vec!["ASA"]),
    ];
    for (filter, want) in cases {
        let query = format!(
            "$filter={}",
            url::form_urlencoded::byte_serialize(filter.as_bytes()).collect::<String>()
        );
        let (status, page) = ifs_page(&client, &base, &token, &query).await;
        assert_eq!(status, 200, "{filter}: {page}");
        assert_eq!(identities(&page), want, "{filter}");
    }
    // Malformed: OData error.
    let (status, body) = ifs_page(
        &client,
        &base,
        &token,
        "$filter=WebUser%20eq%20%27unterminated",
    )
    .await;
    assert_eq!(status, 400);
    assert!(body["error"]["code"].is_string());
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("unterminated"));
    for query in ["$orderby=Description", "$expand=Roles"] {
        let (status, body) = ifs_page(&client, &base, &token, query).await;
        assert_eq!(status, 400, "{query}");
        assert!(body["error"]["message"].is_string());
    }

    // Auth: missing, Azure token, wrong.
    let graph = graph_token(&client, &base).await;
    for bad in ["", graph.as_str(), "x"] {
        let mut request = client.get(format!("{base}{IFS_USERS}"));
        if !bad.is_empty() {
            request = request.bearer_auth(bad);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "UNAUTHORIZED");
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn flow_paging_and_auth() {
    let generated = generate(2000, 9);
    let expected: Vec<String> = generated
        .tenant
        .flow
        .iter()
        .map(|u| u.user_id().to_string())
        .collect();
    let sim = start(generated.tenant).await;
    let base = sim.base_url();
    let client = client();
    let mut url = format!("{base}/flow/users");
    let mut got = Vec::new();
    let mut pages = 0;
    loop {
        let page: Value = flow_get(&client, &url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        pages += 1;
        for user in page["users"].as_array().unwrap() {
            for key in ["userId", "name", "email", "active", "type", "syncSource"] {
                assert!(user.get(key).is_some(), "{key} in {user}");
            }
            got.push(user["userId"].as_str().unwrap().to_string());
        }
        match page["nextCursor"].as_str() {
            Some(cursor) => url = format!("{base}/flow/users?cursor={cursor}"),
            None => {
                assert!(page["nextCursor"].is_null());
                break;
            }
        }
    }
    assert_eq!(got, expected);
    assert_eq!(pages, expected.len().div_ceil(500));

    for request in [
        client.get(format!("{base}/flow/users")),
        client
            .get(format!("{base}/flow/users"))
            .basic_auth(FLOW_USERNAME, Some("wrong")),
        client
            .post(format!("{base}/flow/users/rename"))
            .basic_auth("someone", Some("x"))
            .json(&json!({"userId":"a","newUserId":"b"})),
    ] {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401);
        assert!(response.headers().contains_key("www-authenticate"));
        let body: Value = response.json().await.unwrap();
        assert!(body["error"].is_string());
    }
    let response = flow_get(&client, &format!("{base}/flow/users?cursor=bogus"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    sim.shutdown().await;
}

#[tokio::test]
async fn flow_rename_and_deactivate_semantics() {
    let sim = start(small_tenant()).await;
    let base = sim.base_url();
    let client = client();
    let handle = sim.handle();
    let rename = |from: &str, to: &str| {
        flow_post(
            &client,
            &format!("{base}/flow/users/rename"),
            json!({"userId": from, "newUserId": to}),
        )
        .send()
    };

    let response = rename("jdoe", "jdoe@contoso.com").await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"userId": "jdoe@contoso.com"})
    );
    // The same rename again (a retry after a lost answer): 200 with the new
    // ID and no second write (deploy/flow/README.md §3).
    let response = rename("jdoe", "jdoe@contoso.com").await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"userId": "jdoe@contoso.com"})
    );
    assert_eq!(handle.rename_count("jdoe@contoso.com"), 1);
    // Source unknown now (renamed away), target not there either.
    let response = rename("jdoe", "x@contoso.com").await.unwrap();
    assert_eq!(response.status(), 404);
    assert!(response.json::<Value>().await.unwrap()["error"].is_string());
    // Target taken, compared case-insensitively.
    let response = rename("asmith", "taken@contoso.com").await.unwrap();
    assert_eq!(response.status(), 409);
    assert!(response.json::<Value>().await.unwrap()["error"]
        .as_str()
        .unwrap()
        .contains("taken"));
    // Case-sensitive Flow lets it through.
    handle.update_settings(|s| s.flow_ids_case_insensitive = false);
    assert_eq!(
        rename("asmith", "taken@contoso.com")
            .await
            .unwrap()
            .status(),
        200
    );
    handle.update_settings(|s| s.flow_ids_case_insensitive = true);
    // Bad bodies.
    let response = flow_post(
        &client,
        &format!("{base}/flow/users/rename"),
        json!({"userId": "bjones"}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), 400);

    assert_eq!(handle.rename_count("jdoe"), 1);
    assert_eq!(handle.rename_count("jdoe@contoso.com"), 1);
    assert_eq!(handle.rename_count("asmith"), 1);
    assert_eq!(handle.rename_count("bjones"), 0);

    let deactivate = |id: &str| {
        flow_post(
            &client,
            &format!("{base}/flow/users/deactivate"),
            json!({"userId": id}),
        )
        .send()
    };
    assert_eq!(deactivate("bjones").await.unwrap().status(), 200);
    assert_eq!(deactivate("nobody").await.unwrap().status(), 404);
    assert_eq!(handle.write_counts(), (2, 1));
    assert_eq!(handle.deactivate_count("bjones"), 1);
    let users = handle.flow_users();
    assert!(!users
        .iter()
        .find(|u| u.user_id() == "bjones")
        .unwrap()
        .active());
    assert!(users.iter().any(|u| u.user_id() == "jdoe@contoso.com"));
    assert_eq!(handle.flow_writes().len(), 3);
    assert_eq!(handle.request_count("/flow/users/rename"), 6);
    sim.shutdown().await;
}

#[tokio::test]
async fn config_toml_points_at_the_simulator() {
    let sim = start(small_tenant()).await;
    let text = sim.config_toml("sqlite:///tmp/idrecon-test.db");
    let value: toml::Value = toml::from_str(&text).unwrap();
    let base = sim.base_url();
    assert!(base.starts_with("http://127.0.0.1:"));
    assert_eq!(
        value["azure"]["graph_url"].as_str().unwrap(),
        format!("{base}/graph")
    );
    assert_eq!(
        value["flow"]["url"].as_str().unwrap(),
        format!("{base}/flow")
    );
    assert_eq!(value["ifs"]["url"].as_str().unwrap(), format!("{base}/ifs"));
    assert_eq!(
        value["store"]["url"].as_str().unwrap(),
        "sqlite:///tmp/idrecon-test.db"
    );
    // The credentials in it work.
    let client = client();
    let response = client
        .post(format!(
            "{}/{}/oauth2/v2.0/token",
            value["azure"]["login_url"].as_str().unwrap(),
            value["azure"]["tenant_id"].as_str().unwrap()
        ))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", value["azure"]["client_id"].as_str().unwrap()),
            (
                "client_secret",
                value["azure"]["client_secret"].as_str().unwrap(),
            ),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = client
        .get(format!("{}/users", value["flow"]["url"].as_str().unwrap()))
        .basic_auth(
            value["flow"]["username"].as_str().unwrap(),
            value["flow"]["password"].as_str(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    sim.shutdown().await;
}
