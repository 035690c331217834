//! IFS OData users against a mock IFS (IAM discovery + token + Users):
//! $skip paging, nextLink mode, both forms of Active, $filter escaping.

use crate::clients_support;

use clients_support::*;
use idrecon::auth::ClientCredentials;
use idrecon::config::IfsConfig;
use idrecon::sources::ifs::IfsSource;
use idrecon::sources::{SourceErrorKind, System};
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use url::Url;

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
        let mut body = json!({"@odata.context": "x", "value": value});
        if r.param("$count").as_deref() == Some("true") {
            body["@odata.count"] = json!(7);
        }
        Reply::json(200, body)
    })
    .await;
    let users = source_with(&mock, 3, |_| {}).fetch_all().await.unwrap();
    let identities: Vec<_> = users.iter().map(|u| u.identity()).collect();
    assert_eq!(
        identities,
        ["USER1", "USER2", "USER3", "USER4", "USER5", "USER6", "USER7"]
    );
    assert!(
        users.iter().all(|u| u.active()),
        "bool and \"TRUE\" both read"
    );
    assert_eq!(users[0].directory_id(), Some("user1@contoso.com"));
    assert_eq!(users[0].description(), Some("Name of USER1"));
    let mut pages = mock.hits(IFS_USERS_PATH);
    assert_eq!(
        pages.len(),
        3,
        "3 + 3 + 1, the short last page confirmed by @odata.count"
    );
    assert_eq!(pages[0].param("$count").as_deref(), Some("true"));
    // Pages after the first may arrive in any order (fetched concurrently).
    pages[1..].sort_by_key(|p| p.param("$skip").unwrap().parse::<u32>().unwrap());
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
    let mock = start(|r: &Recorded| {
        if r.param("$skip").as_deref() != Some("0") {
            return Reply::json(200, json!({"value": []}));
        }
        Reply::json(200, json!({"value": [
            {"Identity": "JDOE", "Description": null, "WebUser": null, "Active": "FALSE", "Email": "jdoe@contoso.com"},
            {"Identity": "ASMITH", "Description": "Anna", "WebUser": "anna@contoso.com", "Active": false, "Email": null}
        ]}))
    })
    .await;
    let src = source_with(&mock, 100, |c| c.email_field = Some("Email".into()));
    let users = src.fetch_all().await.unwrap();
    assert!(!users[0].active() && !users[1].active());
    assert_eq!(users[0].directory_id(), None);
    assert_eq!(users[0].email(), Some("jdoe@contoso.com"));
    assert_eq!(users[1].email(), None);
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
        if r.param("$filter").as_deref() == Some("tolower(WebUser) eq 'o''brien@contoso.com'") {
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
    assert_eq!(found[0].identity(), "OBRIEN");
    let raw = mock.hits(IFS_USERS_PATH)[0].raw_query.clone().unwrap();
    // Spaces as %20 (never `+`), quotes percent-encoded by the URL parser.
    assert!(
        raw.contains("$filter=tolower(WebUser)%20eq%20%27o%27%27brien@contoso.com%27"),
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
    // 502 retried; the 400 is not retried, only asked once more without
    // `$count` (a service may refuse that option), which fails the same way.
    let hits = mock.hits(IFS_USERS_PATH);
    assert_eq!(hits.len(), 3, "502 retried, 400 not");
    assert_eq!(hits[1].param("$count").as_deref(), Some("true"));
    assert_eq!(hits[2].param("$count"), None);
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

/// `n` users `U001`… served by `$top`/`$skip`, at most `cap(skip)` per page,
/// with `@odata.count` when `$count=true` and `count` says so.
fn capped(
    n: usize,
    count: bool,
    cap: impl Fn(usize) -> usize + Send + Sync + 'static,
) -> impl Fn(&Recorded) -> Reply + Send + Sync {
    move |r: &Recorded| {
        let top: usize = r.param("$top").unwrap().parse().unwrap();
        let skip: usize = r.param("$skip").unwrap().parse().unwrap();
        let value: Vec<_> = (skip..n)
            .take(top.min(cap(skip)))
            .map(|i| {
                ifs_user(
                    &format!("U{i:03}"),
                    Some(&format!("u{i}@contoso.com")),
                    json!(true),
                )
            })
            .collect();
        let mut body = json!({"value": value});
        if count && r.param("$count").as_deref() == Some("true") {
            body["@odata.count"] = json!(n);
        }
        Reply::json(200, body)
    }
}

fn identities(users: &[idrecon::model::IfsUser]) -> Vec<String> {
    let mut ids: Vec<String> = users.iter().map(|u| u.identity().to_string()).collect();
    ids.sort();
    ids
}

fn expected(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("U{i:03}")).collect()
}

#[tokio::test]
async fn a_short_page_without_a_count_is_not_the_end() {
    // The server serves 3 rows whatever $top says, and no count.
    let mock = start(capped(20, false, |_| 3)).await;
    let users = source_with(&mock, 10, |_| {}).fetch_all().await.unwrap();
    assert_eq!(identities(&users), expected(20));
    // 7 pages of rows (3 × 6 + 2), then the empty page that ends it.
    assert_eq!(mock.hits(IFS_USERS_PATH).len(), 8);
}

#[tokio::test]
async fn a_cap_that_changes_mid_listing_is_caught_up_from_the_rows_received() {
    // Full pages of 10 at first, then only 4 per page from offset 30.
    let mock = start(capped(57, true, |skip| if skip < 30 { 10 } else { 4 })).await;
    let src = source_with(&mock, 10, |_| {}).with_limits(idrecon::sources::ListingLimits {
        ifs_concurrency: 3,
        ..Default::default()
    });
    let users = src.fetch_all().await.unwrap();
    assert_eq!(
        identities(&users),
        expected(57),
        "nobody lost, nobody twice"
    );
}

#[tokio::test]
async fn a_silent_cap_with_a_count_is_paged_at_the_cap() {
    let mock = start(capped(50, true, |_| 7)).await;
    let users = source_with(&mock, 20, |_| {}).fetch_all().await.unwrap();
    assert_eq!(identities(&users), expected(50));
    let mut skips: Vec<u32> = mock
        .hits(IFS_USERS_PATH)
        .iter()
        .map(|r| r.param("$skip").unwrap().parse().unwrap())
        .collect();
    skips.sort();
    assert_eq!(
        skips,
        [0, 7, 14, 21, 28, 35, 42, 49],
        "the count ends it: no empty page"
    );
}

#[tokio::test]
async fn pages_that_end_before_the_count_are_an_error() {
    // @odata.count says 30, the pages hold 25.
    let mock = start(|r: &Recorded| {
        let skip: usize = r.param("$skip").unwrap().parse().unwrap();
        let value: Vec<_> = (skip..25)
            .take(10)
            .map(|i| ifs_user(&format!("U{i:03}"), None, json!(true)))
            .collect();
        Reply::json(200, json!({"value": value, "@odata.count": 30}))
    })
    .await;
    let err = source_with(&mock, 10, |_| {})
        .fetch_all()
        .await
        .unwrap_err();
    assert_eq!(err.kind, SourceErrorKind::InvalidPayload);
    assert!(
        err.message.contains("30") && err.message.contains("25"),
        "{err}"
    );
}

#[tokio::test]
async fn endless_full_pages_stop_at_max_pages() {
    // Every page is full of users never seen before, and there is no count.
    let mock = start(|r: &Recorded| {
        let skip: usize = r.param("$skip").unwrap().parse().unwrap();
        let value: Vec<_> = (skip..skip + 2)
            .map(|i| ifs_user(&format!("U{i:09}"), None, json!(true)))
            .collect();
        Reply::json(200, json!({"value": value}))
    })
    .await;
    let src = source_with(&mock, 2, |_| {}).with_limits(idrecon::sources::ListingLimits {
        max_pages: 40,
        ..Default::default()
    });
    let err = src.fetch_all().await.unwrap_err();
    assert!(err.message.contains("limits.max_pages = 40"), "{err}");
    assert_eq!(mock.hits(IFS_USERS_PATH).len(), 40);
}

#[tokio::test]
async fn endless_next_links_stop_at_max_pages() {
    let mock = start(|r: &Recorded| {
        let n: u64 = r
            .param("$skiptoken")
            .map(|t| t.parse().unwrap())
            .unwrap_or(0);
        Reply::json(
            200,
            json!({
                "value": [ifs_user(&format!("U{n:09}"), None, json!(true))],
                "@odata.nextLink": format!("{}{IFS_USERS_PATH}?$skiptoken={}", r.origin(), n + 1)
            }),
        )
    })
    .await;
    let src = source_with(&mock, 2, |_| {}).with_limits(idrecon::sources::ListingLimits {
        max_pages: 15,
        ..Default::default()
    });
    let err = src.fetch_all().await.unwrap_err();
    assert!(err.message.contains("limits.max_pages = 15"), "{err}");
    assert_eq!(mock.hits(IFS_USERS_PATH).len(), 15);
}

#[tokio::test]
async fn the_directory_id_lookup_ignores_case_and_puts_the_exact_match_first() {
    let mock = start(|r: &Recorded| {
        assert_eq!(
            r.param("$filter").as_deref(),
            Some("tolower(WebUser) eq 'jdoe@contoso.com'")
        );
        Reply::json(
            200,
            json!({"value": [
                ifs_user("JDOE2", Some("JDoe@Contoso.com"), json!(true)),
                ifs_user("JDOE", Some("jdoe@contoso.com"), json!(true)),
            ]}),
        )
    })
    .await;
    let found = source_with(&mock, 100, |_| {})
        .fetch_by_directory_id("jdoe@contoso.com")
        .await
        .unwrap();
    let ids: Vec<_> = found.iter().map(|u| u.identity()).collect();
    assert_eq!(ids, ["JDOE", "JDOE2"]);
}

/// An IFS whose pages after the first wait at a barrier until `wanted` of
/// them are in flight at once (a service that a sequential client would
/// never get past: after 10 s alone it answers 503), recording the most
/// requests it ever had open together.
async fn barrier_ifs(users: usize, page: usize, wanted: usize) -> (Url, Arc<AtomicUsize>) {
    use axum::extract::{Query, State};
    use axum::routing::{get, post};
    use std::collections::HashMap;
    #[derive(Clone)]
    struct Shared {
        barrier: Arc<tokio::sync::Barrier>,
        open: Arc<AtomicUsize>,
        most: Arc<AtomicUsize>,
        users: usize,
        page: usize,
    }
    async fn users_page(
        State(s): State<Shared>,
        Query(q): Query<HashMap<String, String>>,
    ) -> axum::response::Response {
        use axum::response::IntoResponse;
        let skip: usize = q["$skip"].parse().unwrap();
        let now = s.open.fetch_add(1, Ordering::SeqCst) + 1;
        s.most.fetch_max(now, Ordering::SeqCst);
        if skip > 0 {
            let waited =
                tokio::time::timeout(std::time::Duration::from_secs(10), s.barrier.wait()).await;
            if waited.is_err() {
                s.open.fetch_sub(1, Ordering::SeqCst);
                return (axum::http::StatusCode::SERVICE_UNAVAILABLE, "alone").into_response();
            }
        }
        let value: Vec<_> = (skip..s.users)
            .take(s.page)
            .map(|i| ifs_user(&format!("U{i:03}"), None, json!(true)))
            .collect();
        s.open.fetch_sub(1, Ordering::SeqCst);
        axum::Json(json!({"value": value, "@odata.count": s.users})).into_response()
    }
    let most = Arc::new(AtomicUsize::new(0));
    let shared = Shared {
        barrier: Arc::new(tokio::sync::Barrier::new(wanted)),
        open: Arc::new(AtomicUsize::new(0)),
        most: most.clone(),
        users,
        page,
    };
    let app = axum::Router::new()
        .route(
            "/auth/realms/prod/.well-known/openid-configuration",
            get(|headers: axum::http::HeaderMap| async move {
                let host = headers["host"].to_str().unwrap().to_string();
                axum::Json(json!({
                    "issuer": format!("http://{host}/auth/realms/prod"),
                    "token_endpoint": format!("http://{host}/auth/realms/prod/token"),
                }))
            }),
        )
        .route(
            "/auth/realms/prod/token",
            post(|| async {
                axum::Json(
                    json!({"token_type": "Bearer", "expires_in": 300, "access_token": "ifs-token"}),
                )
            }),
        )
        .route(IFS_USERS_PATH, get(users_page))
        .with_state(shared);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (Url::parse(&format!("http://{addr}")).unwrap(), most)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_after_the_first_are_fetched_ifs_concurrency_at_a_time() {
    // 1 + 8 pages of 5: the 8 later pages pass the barrier in two groups of 4.
    let (base, most) = barrier_ifs(45, 5, 4).await;
    let cfg = IfsConfig {
        url: base.join("/ifs").unwrap(),
        issuer_url: base.join("/auth/realms/prod").unwrap(),
        client_id: "NC_Flow_Reconciler".into(),
        client_secret: secrecy::SecretString::from("ifs-secret-value"),
        users_path: "main/ifsapplications/projection/v1/UserHandling.svc/Users".into(),
        directory_id_field: "WebUser".into(),
        email_field: None,
        page_size: 5,
        concurrency: 4,
        token_auth_method: idrecon::config::TokenAuthMethod::Auto,
        allow_insecure_http: false,
    };
    let http = reqwest::Client::new();
    let tokens = ClientCredentials::ifs(&cfg, http.clone()).unwrap();
    let mut settings = fast_settings();
    settings.request_timeout = std::time::Duration::from_secs(30);
    settings.retry.max_retries = 0;
    let src = IfsSource::new(&cfg, Arc::new(tokens), http, &settings)
        .unwrap()
        .with_limits(idrecon::sources::ListingLimits {
            ifs_concurrency: 4,
            ..Default::default()
        });
    let users = src.fetch_all().await.unwrap();
    assert_eq!(identities(&users), expected(45));
    assert_eq!(
        most.load(Ordering::SeqCst),
        4,
        "never more than ifs.concurrency at once"
    );
}

#[tokio::test]
async fn a_service_that_refuses_count_is_paged_to_its_empty_page() {
    let users = capped(12, false, |_| 5);
    let mock = start(move |r: &Recorded| {
        if r.param("$count").is_some() {
            return Reply::json(
                400,
                json!({"error": {"code": "ODP_BAD_REQUEST", "message": "$count is not supported"}}),
            );
        }
        users(r)
    })
    .await;
    let found = source_with(&mock, 5, |_| {}).fetch_all().await.unwrap();
    assert_eq!(identities(&found), expected(12));
    // The refused count, then 5 + 5 + 2 and the empty page.
    assert_eq!(mock.hits(IFS_USERS_PATH).len(), 5);
}
