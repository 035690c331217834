//! Every fault kind of `--faults` is observable by a real client.

use crate::sim_support;

use idrecon::sim::faults::FaultPlan;
use serde_json::{json, Value};
use sim_support::*;
use std::time::{Duration, Instant, SystemTime};

fn plan(spec: &str) -> FaultPlan {
    spec.parse().unwrap()
}

/// Five Azure users → pages of two: page 1, 2, 3.
fn graph_page_url(base: &str) -> String {
    format!("{base}/graph/v1.0/users?$select=id&$top=2")
}

async fn next_link(client: &reqwest::Client, token: &str, url: &str) -> String {
    let page: Value = client
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    page["@odata.nextLink"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn throttling_with_retry_after_seconds_then_success() {
    let sim = start_with(small_tenant(), plan("graph:429=3@2x2")).await;
    let base = sim.base_url();
    let client = client();
    let token = graph_token(&client, &base).await;
    let page2 = next_link(&client, &token, &graph_page_url(&base)).await;
    for _ in 0..2 {
        let response = client.get(&page2).bearer_auth(&token).send().await.unwrap();
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()["retry-after"], "3");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "TooManyRequests");
    }
    let response = client.get(&page2).bearer_auth(&token).send().await.unwrap();
    assert_eq!(response.status(), 200, "the burst is over");
    sim.shutdown().await;
}

#[tokio::test]
async fn throttling_with_retry_after_http_date() {
    let sim = start_with(small_tenant(), plan("graph:429=date+30@1,ifs:503=7@1")).await;
    let base = sim.base_url();
    let client = client();
    let token = graph_token(&client, &base).await;
    let response = client
        .get(graph_page_url(&base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    let date = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .to_string();
    let when = httpdate::parse_http_date(&date).unwrap();
    let ahead = when.duration_since(SystemTime::now()).unwrap();
    assert!(
        ahead > Duration::from_secs(20) && ahead <= Duration::from_secs(31),
        "{date}"
    );

    let ifs = ifs_token(&client, &base).await;
    let response = client
        .get(format!("{base}{IFS_USERS}"))
        .bearer_auth(&ifs)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "7");
    let body: Value = response.json().await.unwrap();
    assert!(body["error"]["code"].is_string() && body["error"]["message"].is_string());
    sim.shutdown().await;
}

#[tokio::test]
async fn server_error_burst_on_ifs_first_page() {
    let sim = start_with(small_tenant(), plan("ifs:500@1x2")).await;
    let base = sim.base_url();
    let client = client();
    let token = ifs_token(&client, &base).await;
    let url = format!("{base}{IFS_USERS}?$orderby=Identity&$top=2&$skip=0");
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(
            client
                .get(&url)
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
        );
    }
    assert_eq!(statuses, [500, 500, 200]);
    // page 2 ($skip=2) was never affected
    sim.handle().set_faults(plan("ifs:500@2"));
    let first = client.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(first.status(), 200);
    let second = client
        .get(format!(
            "{base}{IFS_USERS}?$orderby=Identity&$top=2&$skip=2"
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), 500);
    sim.shutdown().await;
}

#[tokio::test]
async fn slow_pages_are_slow() {
    let sim = start_with(small_tenant(), plan("flow:slow=400@1")).await;
    let base = sim.base_url();
    let client = client();
    let started = Instant::now();
    let response = flow_get(&client, &format!("{base}/flow/users"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(400));
    let started = Instant::now();
    flow_get(&client, &format!("{base}/flow/users"))
        .send()
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_millis(400), "used up");
    sim.shutdown().await;
}

#[tokio::test]
async fn dropped_connection_gives_a_transport_error() {
    let sim = start_with(small_tenant(), plan("graph:drop@2")).await;
    let base = sim.base_url();
    let client = client();
    let token = graph_token(&client, &base).await;
    let page2 = next_link(&client, &token, &graph_page_url(&base)).await;
    let result = match client.get(&page2).bearer_auth(&token).send().await {
        Err(e) => Err(e),
        Ok(response) => response.bytes().await.map(|_| ()),
    };
    assert!(result.is_err(), "no complete response");
    let response = client.get(&page2).bearer_auth(&token).send().await.unwrap();
    assert_eq!(response.status(), 200);
    sim.shutdown().await;
}

#[tokio::test]
async fn bad_and_truncated_json() {
    let sim = start_with(small_tenant(), plan("ifs:badjson@1,flow:truncate@1")).await;
    let base = sim.base_url();
    let client = client();
    let token = ifs_token(&client, &base).await;
    let response = client
        .get(format!("{base}{IFS_USERS}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.json::<Value>().await.is_err());
    let response = flow_get(&client, &format!("{base}/flow/users"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(text.starts_with("{\"users\":["), "{text}");
    assert!(serde_json::from_str::<Value>(&text).is_err());
    // next time fine
    let response = flow_get(&client, &format!("{base}/flow/users"))
        .send()
        .await
        .unwrap();
    assert!(response.json::<Value>().await.is_ok());
    sim.shutdown().await;
}

#[tokio::test]
async fn access_token_expires_mid_listing() {
    let sim = start_with(
        small_tenant(),
        plan("graph:expire-token@2,ifs:expire-token@1"),
    )
    .await;
    let base = sim.base_url();
    let client = client();
    let token = graph_token(&client, &base).await;
    let page2 = next_link(&client, &token, &graph_page_url(&base)).await;
    let response = client.get(&page2).bearer_auth(&token).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"]["code"],
        "InvalidAuthenticationToken"
    );
    // The old token stays expired; a new one continues the listing.
    let response = client.get(&page2).bearer_auth(&token).send().await.unwrap();
    assert_eq!(response.status(), 401);
    let fresh = graph_token(&client, &base).await;
    let response = client.get(&page2).bearer_auth(&fresh).send().await.unwrap();
    assert_eq!(response.status(), 200);

    let ifs = ifs_token(&client, &base).await;
    let response = client
        .get(format!("{base}{IFS_USERS}"))
        .bearer_auth(&ifs)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let response = client
        .get(format!("{base}{IFS_USERS}"))
        .bearer_auth(&ifs)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401, "expired for good");
    sim.shutdown().await;
}

#[tokio::test]
async fn expired_delta_token_fault() {
    let sim = start_with(small_tenant(), plan("graph:expire-delta")).await;
    let base = sim.base_url();
    let client = client();
    let token = graph_token(&client, &base).await;
    // An initial round is not a delta-token request: unaffected.
    let page: Value = client
        .get(format!("{base}/graph/v1.0/users/delta"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let delta = page["@odata.deltaLink"].as_str().unwrap().to_string();
    let response = client.get(&delta).bearer_auth(&token).send().await.unwrap();
    assert_eq!(response.status(), 410);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"]["code"],
        "syncStateNotFound"
    );
    let response = client.get(&delta).bearer_auth(&token).send().await.unwrap();
    assert_eq!(response.status(), 200, "count 1 used up");
    sim.shutdown().await;
}

#[tokio::test]
async fn empty_listings() {
    let sim = start_with(small_tenant(), plan("flow:empty,graph:empty,ifs:empty")).await;
    let base = sim.base_url();
    let client = client();
    let page: Value = flow_get(&client, &format!("{base}/flow/users"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page, json!({"users": [], "nextCursor": null}));
    let token = graph_token(&client, &base).await;
    let page: Value = client
        .get(format!("{base}/graph/v1.0/users"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["value"], json!([]));
    assert!(page.get("@odata.nextLink").is_none());
    let ifs = ifs_token(&client, &base).await;
    let page: Value = client
        .get(format!("{base}{IFS_USERS}"))
        .bearer_auth(&ifs)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["value"], json!([]));
    // once only
    let page: Value = flow_get(&client, &format!("{base}/flow/users"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["users"].as_array().unwrap().len(), 4);
    sim.shutdown().await;
}

#[tokio::test]
async fn write_faults_before_and_after_the_write() {
    let sim = start_with(
        small_tenant(),
        plan("flow-write:500@1,flow-write:drop-after@2,flow-write:drop@3"),
    )
    .await;
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
    // 1st write: 500, nothing done
    let response = rename("jdoe", "jdoe@contoso.com").await.unwrap();
    assert_eq!(response.status(), 500);
    assert!(response.json::<Value>().await.unwrap()["error"].is_string());
    assert_eq!(handle.rename_count("jdoe"), 0);
    // 2nd write: done, but the answer is lost
    let outcome = match rename("jdoe", "jdoe@contoso.com").await {
        Err(e) => Err(e),
        Ok(r) => r.bytes().await.map(|_| ()),
    };
    assert!(outcome.is_err());
    assert_eq!(handle.rename_count("jdoe@contoso.com"), 1);
    // 3rd write: dropped before anything happened
    let outcome = match rename("asmith", "asmith@contoso.com").await {
        Err(e) => Err(e),
        Ok(r) => r.bytes().await.map(|_| ()),
    };
    assert!(outcome.is_err());
    assert_eq!(handle.rename_count("asmith"), 0);
    assert_eq!(handle.write_counts(), (1, 0));
    sim.shutdown().await;
}

#[tokio::test]
async fn login_faults_and_request_counts() {
    let sim = start_with(small_tenant(), plan("login:503=5@1,iam:500@1")).await;
    let base = sim.base_url();
    let client = client();
    let response = client
        .post(token_url(&base))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "5");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    let _ = graph_token(&client, &base).await; // 2nd request succeeds
    let response = client
        .post(format!(
            "{base}/ifs/auth/realms/prod/protocol/openid-connect/token"
        ))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    let handle = sim.handle();
    assert_eq!(handle.request_count("/azure-login"), 2);
    assert_eq!(handle.request_count("/ifs/auth"), 1);
    assert_eq!(handle.request_count("/graph"), 0);
    sim.shutdown().await;
}

#[tokio::test]
async fn the_documented_example_spec_runs() {
    // graph:429@2x3 → page 2 three times 429, etc.
    let spec = "graph:429@2x3,ifs:500@1x2,flow:slow=200@3,graph:drop@4,ifs:badjson@2,graph:expire-token@3,flow:empty";
    let generated = idrecon::sim::generate::generate(300, 1);
    let sim = start_with(generated.tenant, plan(spec)).await;
    let base = sim.base_url();
    let client = client();
    let token = graph_token(&client, &base).await;
    let first = format!("{base}/graph/v1.0/users?$select=id&$top=50");
    let page2 = next_link(&client, &token, &first).await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(
            client
                .get(&page2)
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
        );
    }
    assert_eq!(statuses, [429, 429, 429, 200]);
    let page: Value = client
        .get(&page2)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let page3 = page["@odata.nextLink"].as_str().unwrap().to_string();
    assert_eq!(
        client
            .get(&page3)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let page: Value = client
        .get(&page2)
        .bearer_auth(&graph_token(&client, &base).await)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(page["value"].as_array().unwrap().len() == 50);
    let flow: Value = flow_get(&client, &format!("{base}/flow/users"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(flow["users"], json!([]));
    sim.shutdown().await;
}
