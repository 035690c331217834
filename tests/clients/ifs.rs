//! IFS OData users against a mock IFS (IAM discovery + token + Users):
//! $skip paging, nextLink mode, both forms of Active, $filter escaping.

use crate::clients_support;

use clients_support::*;
use idrecon::auth::ClientCredentials;
use idrecon::config::IfsConfig;
use idrecon::sources::ifs::IfsSource;
use idrecon::sources::{SourceErrorKind, System};
use serde_json::json;
use std::sync::Arc;

/// IAM discovery and token on the mock; everything else goes to `odata`.
async fn start(odata: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> Mock {
    Mock::start(move |r| match r.path.as_str() {
        "/auth/realms/prod/.well-known/openid-configuration" => Reply::json(
            200,
            json!({
                "issuer": format!("{}/auth/realms/prod", r.origin()),
                "token_endpoint": format!("{}/auth/realms/prod/protocol/openid-connect/token", r.origin()),
            }),
        ),
        "/auth/realms/prod/protocol/openid-connect/token" => token_reply("ifs-token", 300),
        _ => {
            if r.bearer().as_deref() != Some("ifs-token") {
                return Reply::json(401, json!({"error": {"code": "Unauthorized", "message": "no token"}}));
            }
            odata(r)
        }
    })
    .await
}

fn source_with(mock: &Mock, page_size: u32, edit: impl FnOnce(&mut IfsConfig)) -> IfsSource {
    let mut cfg = ifs_config(mock, page_size);
    edit(&mut cfg);
    let http = reqwest::Client::new();
    let tokens = ClientCredentials::ifs(&cfg, http.clone())
        .unwrap()
        .with_retry(fast_retry());
    IfsSource::new(&cfg, Arc::new(tokens), http, &fast_settings()).unwrap()
}

fn ifs_user(
    identity: &str,
    web_user: Option<&str>,
    active: serde_json::Value,
) -> serde_json::Value {
    json!({"Identity": identity, "Description": format!("Name of {identity}"), "WebUser": web_user, "Active": active})
}

/// 7 users served with $top/$skip.
fn all_users() -> Vec<serde_json::Value> {
    (1..=7)
        .map(|i| {
            let active = if i % 2 == 0 {
                json!("TRUE")
            } else {
                json!(true)
            };
            ifs_user(
                &format!("USER{i}"),
                Some(&format!("user{i}@contoso.com")),
                active,
            )
        })
        .collect()
}

#[tokio::test]
async fn skip_paging_reads_every_page_in_order() {
    let mock = start(|r: &Recorded| {
        if r.path != IFS_USERS_PATH {
            return Reply::json(
                404,
                json!({"error": {"code": "NotFound", "message": "no such entity set"}}),
            );
        }
        let top: usize = r.param("$top").unwrap().parse().unwrap();
        let skip: usize = r.param("$skip").unwrap().parse().unwrap();
        let value: Vec<_> = all_users().into_iter().skip(skip).take(top).collect();
        Reply::json(200, json!({"@odata.context": "x", "value": value}))
    })
    .await;
    let users = source_with(&mock, 3, |_| {}).fetch_all().await.unwrap();
    let identities: Vec<_> = users.iter().map(|u| u.identity.as_str()).collect();
    assert_eq!(
        identities,
        ["USER1", "USER2", "USER3", "USER4", "USER5", "USER6", "USER7"]
    );
    assert!(
        users.iter().all(|u| u.active),
        "bool and \"TRUE\" both read"
    );
    assert_eq!(users[0].directory_id.as_deref(), Some("user1@contoso.com"));
    assert_eq!(users[0].description.as_deref(), Some("Name of USER1"));
    let pages = mock.hits(IFS_USERS_PATH);
    assert_eq!(pages.len(), 3, "3 + 3 + 1");
    let q = &pages[0];
    assert_eq!(
        q.param("$select").as_deref(),
        Some("Identity,Description,WebUser,Active")
    );
    assert_eq!(q.param("$orderby").as_deref(), Some("Identity"));
    assert_eq!(q.param("$top").as_deref(), Some("3"));
    assert_eq!(pages[2].param("$skip").as_deref(), Some("6"));
    // `$` names are sent literally, as OData documents them.
    assert!(q.raw_query.as_deref().unwrap().starts_with("$select="));
}

#[tokio::test]
async fn an_exactly_full_last_page_ends_on_the_empty_page_after_it() {
    let mock = start(|r: &Recorded| {
        let skip: usize = r.param("$skip").unwrap().parse().unwrap();
        let value: Vec<_> = all_users().into_iter().take(6).skip(skip).take(3).collect();
        Reply::json(200, json!({"value": value}))
    })
    .await;
    let users = source_with(&mock, 3, |_| {}).fetch_all().await.unwrap();
    assert_eq!(users.len(), 6);
    assert_eq!(mock.hits(IFS_USERS_PATH).len(), 3);
}

#[tokio::test]
async fn next_links_are_followed_when_present() {
    let mock = start(|r: &Recorded| {
        match r.param("$skiptoken").as_deref() {
            None => Reply::json(
                200,
                json!({
                    "value": all_users()[..2],
                    "@odata.nextLink": format!("{}{IFS_USERS_PATH}?$skiptoken=A", r.origin())
                }),
            ),
            // A relative link works too.
            Some("A") => Reply::json(
                200,
                json!({
                    "value": all_users()[2..5],
                    "@odata.nextLink": "Users?$skiptoken=B"
                }),
            ),
            // In link mode a short page without a link is the end, whatever its size.
            Some(_) => Reply::json(200, json!({"value": all_users()[5..]})),
        }
    })
    .await;
    let users = source_with(&mock, 2, |_| {}).fetch_all().await.unwrap();
    assert_eq!(users.len(), 7);
    let hits = mock.hits(IFS_USERS_PATH);
    assert_eq!(hits.len(), 3);
    assert_eq!(hits[2].param("$skiptoken").as_deref(), Some("B"));
    assert!(hits[1].param("$skip").is_none(), "the link replaces $skip");
}

#[tokio::test]
async fn active_as_false_string_and_optional_email() {
    let mock = start(|_| {
        Reply::json(200, json!({"value": [
            {"Identity": "JDOE", "Description": null, "WebUser": null, "Active": "FALSE", "Email": "jdoe@contoso.com"},
            {"Identity": "ASMITH", "Description": "Anna", "WebUser": "anna@contoso.com", "Active": false, "Email": null}
        ]}))
    })
    .await;
    let src = source_with(&mock, 100, |c| c.email_field = Some("Email".into()));
    let users = src.fetch_all().await.unwrap();
    assert!(!users[0].active && !users[1].active);
    assert_eq!(users[0].directory_id, None);
    assert_eq!(users[0].email.as_deref(), Some("jdoe@contoso.com"));
    assert_eq!(users[1].email, None);
    assert_eq!(
        mock.hits(IFS_USERS_PATH)[0].param("$select").as_deref(),
        Some("Identity,Description,WebUser,Active,Email")
    );
}

#[tokio::test]
async fn a_bad_active_value_names_the_identity() {
    let mock = start(|_| {
        Reply::json(200, json!({"value": [ifs_user("OK", None, json!(true)), ifs_user("WEIRD", None, json!("Maybe"))]}))
    })
    .await;
    let err = source_with(&mock, 100, |_| {})
        .fetch_all()
        .await
        .unwrap_err();
    assert_eq!(err.system, System::Ifs);
    assert_eq!(err.kind, SourceErrorKind::InvalidPayload);
    assert!(
        err.message.contains("WEIRD") && err.message.contains("Maybe"),
        "{err}"
    );
    assert_eq!(err.path.as_deref(), Some(IFS_USERS_PATH));
}

#[tokio::test]
async fn a_service_that_ignores_skip_is_caught() {
    let mock = start(|_| Reply::json(200, json!({"value": all_users()[..2]}))).await;
    let err = source_with(&mock, 2, |_| {}).fetch_all().await.unwrap_err();
    assert_eq!(err.kind, SourceErrorKind::InvalidPayload);
    assert!(
        err.message.contains("USER1") && err.message.contains("twice"),
        "{err}"
    );
}

#[tokio::test]
async fn filter_by_directory_id_doubles_quotes() {
    let mock = start(|r: &Recorded| {
        if r.param("$filter").as_deref() == Some("WebUser eq 'o''brien@contoso.com'") {
            Reply::json(
                200,
                json!({"value": [ifs_user("OBRIEN", Some("o'brien@contoso.com"), json!(true))]}),
            )
        } else {
            Reply::json(200, json!({"value": []}))
        }
    })
    .await;
    let src = source_with(&mock, 100, |_| {});
    let found = src
        .fetch_by_directory_id("o'brien@contoso.com")
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].identity, "OBRIEN");
    let raw = mock.hits(IFS_USERS_PATH)[0].raw_query.clone().unwrap();
    // Spaces as %20 (never `+`), quotes percent-encoded by the URL parser.
    assert!(
        raw.contains("$filter=WebUser%20eq%20%27o%27%27brien@contoso.com%27"),
        "{raw}"
    );
    assert!(src
        .fetch_by_directory_id("nobody@contoso.com")
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn odata_errors_carry_the_code_and_retry_on_5xx() {
    let calls = std::sync::atomic::AtomicUsize::new(0);
    let mock = start(move |_| {
        if calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            Reply::json(502, json!({"error": {"code": "BadGateway", "message": "upstream"}}))
        } else {
            Reply::json(400, json!({"error": {"code": "ODATA_QUERY_INVALID", "message": "Unknown property WebUser"}}))
        }
    })
    .await;
    let err = source_with(&mock, 100, |_| {})
        .fetch_all()
        .await
        .unwrap_err();
    assert_eq!(err.kind, SourceErrorKind::Http);
    assert_eq!(err.status, Some(400));
    assert_eq!(err.code.as_deref(), Some("ODATA_QUERY_INVALID"));
    assert!(
        err.to_string().contains("Unknown property WebUser"),
        "{err}"
    );
    assert_eq!(mock.hits(IFS_USERS_PATH).len(), 2, "502 retried, 400 not");
}

#[tokio::test]
async fn bad_field_names_in_config_are_refused() {
    let mock = start(|_| Reply::json(200, json!({"value": []}))).await;
    let mut cfg = ifs_config(&mock, 100);
    cfg.directory_id_field = "WebUser eq 'x'".into();
    let http = reqwest::Client::new();
    let tokens = ClientCredentials::ifs(&cfg, http.clone()).unwrap();
    let err = IfsSource::new(&cfg, Arc::new(tokens), http, &fast_settings()).unwrap_err();
    assert_eq!(err.kind, SourceErrorKind::Config);
}
