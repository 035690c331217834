//! Helpers shared by the simulator's integration tests.

use compact_str::format_compact;
use idrecon::model::{AadUser, AadUserFields, FlowUser, FlowUserFields, IfsUser, IfsUserFields};
use idrecon::sim::{
    FaultPlan, Simulator, Tenant, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET, FLOW_PASSWORD,
    FLOW_USERNAME, IFS_CLIENT_ID, IFS_CLIENT_SECRET, TENANT,
};
use serde_json::Value;
use std::collections::HashMap;

pub const IFS_USERS: &str = "/ifs/main/ifsapplications/projection/v1/UserHandling.svc/Users";

pub fn aad(id: &str, upn: &str) -> AadUser {
    AadUser::from(AadUserFields {
        id: id.into(),
        user_principal_name: upn.into(),
        mail: Some(upn.into()),
        display_name: Some(format_compact!("User {id}")),
        account_enabled: true,
        employee_id: None,
        on_premises_sam_account_name: Some(format_compact!("sam{id}")),
        user_type: Some("Member".into()),
    })
}

pub fn ifs(identity: &str, web_user: Option<&str>, active: bool) -> IfsUser {
    IfsUser::from(IfsUserFields {
        identity: identity.into(),
        description: Some(format_compact!("Person {identity}")),
        directory_id: web_user.map(Into::into),
        active,
        email: None,
    })
}

pub fn flow(id: &str) -> FlowUser {
    FlowUser::from(FlowUserFields {
        user_id: id.into(),
        name: Some(format_compact!("Flow {id}")),
        email: None,
        active: true,
        user_type: "Full".into(),
        sync_source: None,
    })
}

/// A small hand-made tenant: 5 Azure users (one with an apostrophe), 4 IFS
/// users, 4 Flow users, one group.
pub fn small_tenant() -> Tenant {
    let mut groups = HashMap::new();
    groups.insert(
        "group-1".to_string(),
        vec!["id-1".to_string(), "id-3".to_string(), "gone".to_string()],
    );
    Tenant {
        azure: vec![
            aad("id-1", "jdoe@contoso.com"),
            aad("id-2", "o'brien@contoso.com"),
            aad("id-3", "åsa.öberg@contoso.com"),
            aad("id-4", "asmith@contoso.com"),
            aad("id-5", "bjones@contoso.com"),
        ],
        ifs: vec![
            ifs("JDOE", Some("jdoe@contoso.com"), true),
            ifs("OBRIEN", Some("o'brien@contoso.com"), true),
            ifs("ASA", Some("åsa.öberg@contoso.com"), false),
            ifs("NODIR", None, true),
        ],
        flow: vec![
            flow("jdoe"),
            flow("Taken@Contoso.com"),
            flow("asmith"),
            flow("bjones"),
        ],
        groups,
    }
}

pub async fn start(tenant: Tenant) -> Simulator {
    start_with(tenant, FaultPlan::default()).await
}

pub async fn start_with(tenant: Tenant, faults: FaultPlan) -> Simulator {
    Simulator::start(tenant, faults, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("simulator starts")
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .unwrap()
}

pub fn token_url(base: &str) -> String {
    format!("{base}/azure-login/{TENANT}/oauth2/v2.0/token")
}

pub async fn graph_token(client: &reqwest::Client, base: &str) -> String {
    let response = client
        .post(token_url(base))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", AZURE_CLIENT_ID),
            ("client_secret", AZURE_CLIENT_SECRET),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_string()
}

pub async fn ifs_token(client: &reqwest::Client, base: &str) -> String {
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
    let endpoint = discovery["token_endpoint"].as_str().unwrap();
    let response = client
        .post(endpoint)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", IFS_CLIENT_ID),
            ("client_secret", IFS_CLIENT_SECRET),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["expires_in"], 300);
    body["access_token"].as_str().unwrap().to_string()
}

pub fn flow_get(client: &reqwest::Client, url: &str) -> reqwest::RequestBuilder {
    client
        .get(url)
        .basic_auth(FLOW_USERNAME, Some(FLOW_PASSWORD))
}

pub fn flow_post(client: &reqwest::Client, url: &str, body: Value) -> reqwest::RequestBuilder {
    client
        .post(url)
        .basic_auth(FLOW_USERNAME, Some(FLOW_PASSWORD))
        .json(&body)
}

/// Follows `@odata.nextLink` from `first`; returns every page's JSON.
pub async fn walk_graph(client: &reqwest::Client, token: &str, first: &str) -> Vec<Value> {
    let mut pages = Vec::new();
    let mut url = Some(first.to_string());
    while let Some(u) = url {
        let response = client.get(&u).bearer_auth(token).send().await.unwrap();
        assert_eq!(response.status(), 200, "GET {u}");
        let page: Value = response.json().await.unwrap();
        url = page["@odata.nextLink"].as_str().map(str::to_owned);
        pages.push(page);
        assert!(pages.len() < 100_000, "paging does not end");
    }
    pages
}
