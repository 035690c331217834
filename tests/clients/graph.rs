//! Graph users through graph-rs-sdk against a mock Azure login + Graph:
//! paging by nextLink, throttling and transient errors, 401 → re-auth once,
//! bad payloads, delta rounds, group scope, single-user look-ups.

use crate::clients_support;

use clients_support::*;
use idrecon::auth::ClientCredentials;
use idrecon::config::AzureConfig;
use idrecon::sources::graph::GraphSource;
use idrecon::sources::{AadChange, AzureFetch, ListingLimits, SourceErrorKind, System};
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

const USERS: &str = "/graph/v1.0/users";

/// Answers the token endpoint with `tok-1`, `tok-2`, …; everything else goes to `graph`.
async fn start(graph: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> Mock {
    let issued = AtomicUsize::new(0);
    Mock::start(move |r| {
        if r.path == azure_token_path() {
            let n = issued.fetch_add(1, Ordering::SeqCst) + 1;
            return token_reply(&format!("tok-{n}"), 3599);
        }
        graph(r)
    })
    .await
}

fn source_with(mock: &Mock, edit: impl FnOnce(&mut AzureConfig)) -> GraphSource {
    let mut cfg = azure_config(mock, secret());
    edit(&mut cfg);
    let tokens = ClientCredentials::azure(&cfg, reqwest::Client::new())
        .unwrap()
        .with_retry(fast_retry());
    GraphSource::new(&cfg, Arc::new(tokens), &fast_settings()).unwrap()
}

fn source(mock: &Mock) -> GraphSource {
    source_with(mock, |_| {})
}

fn page(r: &Recorded, users: Vec<serde_json::Value>, next: Option<&str>) -> Reply {
    let mut body = json!({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users", "value": users});
    if let Some(token) = next {
        body["@odata.nextLink"] = json!(format!("{}{USERS}?$skiptoken={token}", r.origin()));
    }
    Reply::json(200, body)
}

fn graph_error(status: u16, code: &str) -> Reply {
    Reply::json(
        status,
        json!({"error": {"code": code, "message": format!("{code} happened"), "innerError": {"request-id": "r1"}}}),
    )
}

/// Three pages; the second answers `second_page` first (by call count), then normally.
fn three_pages(first_tries_of_page2: Vec<Reply>) -> impl Fn(&Recorded) -> Reply + Send + Sync {
    let failures = std::sync::Mutex::new(
        first_tries_of_page2
            .into_iter()
            .collect::<std::collections::VecDeque<_>>(),
    );
    move |r: &Recorded| match r.param("$skiptoken").as_deref() {
        None => page(
            r,
            vec![
                graph_user("1", "a@contoso.com"),
                graph_user("2", "b@contoso.com"),
            ],
            Some("P2"),
        ),
        Some("P2") => {
            if let Some(reply) = failures.lock().unwrap().pop_front() {
                return reply;
            }
            page(
                r,
                vec![
                    graph_user("3", "c@contoso.com"),
                    graph_user("4", "d@contoso.com"),
                ],
                Some("P3"),
            )
        }
        Some("P3") => {
            let mut guest = graph_user("6", "jane_fabrikam.com#EXT#@contoso.onmicrosoft.com");
            guest["userType"] = json!("Guest");
            page(r, vec![graph_user("5", "e@contoso.com"), guest], None)
        }
        Some(_) => graph_error(400, "BadRequest"),
    }
}

fn ids(users: &[idrecon::model::AadUser]) -> Vec<&str> {
    users.iter().map(|u| u.id()).collect()
}

#[tokio::test]
async fn full_listing_walks_every_next_link() {
    let mock = start(three_pages(vec![])).await;
    let users = source(&mock).fetch_full().await.unwrap();
    assert_eq!(
        ids(&users),
        ["1", "2", "3", "4", "5"],
        "guest dropped, all pages read"
    );
    let graph = mock.hits("/graph");
    assert_eq!(graph.len(), 3);
    let first = &graph[0];
    assert_eq!(first.path, USERS);
    assert_eq!(first.param("$top").as_deref(), Some("999"));
    assert_eq!(
        first.param("$select").as_deref(),
        Some("id,userPrincipalName,mail,displayName,accountEnabled,employeeId,onPremisesSamAccountName,userType")
    );
    assert!(graph.iter().all(|r| r.bearer().as_deref() == Some("tok-1")));
    assert_eq!(mock.hits("/login").len(), 1, "one token for all pages");
}

#[tokio::test]
async fn guests_are_kept_when_included() {
    let mock = start(three_pages(vec![])).await;
    let users = source_with(&mock, |c| c.include_guests = true)
        .fetch_full()
        .await
        .unwrap();
    assert_eq!(ids(&users), ["1", "2", "3", "4", "5", "6"]);
}

#[tokio::test]
async fn throttling_with_retry_after_seconds_is_waited_out() {
    let mock = start(three_pages(vec![
        graph_error(429, "TooManyRequests").header("Retry-After", "1")
    ]))
    .await;
    let started = Instant::now();
    let users = source(&mock).fetch_full().await.unwrap();
    assert_eq!(users.len(), 5);
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "waited {:?}",
        started.elapsed()
    );
    assert_eq!(mock.hits("/graph").len(), 4);
}

#[tokio::test]
async fn throttling_with_retry_after_http_date_is_waited_out() {
    let when = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(2));
    let mock = start(three_pages(vec![
        graph_error(429, "TooManyRequests").header("Retry-After", &when)
    ]))
    .await;
    let started = Instant::now();
    let users = source(&mock).fetch_full().await.unwrap();
    assert_eq!(users.len(), 5);
    // Second resolution: at least one whole second remains of the two.
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "waited {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_burst_of_503_then_success() {
    let mock = start(three_pages(vec![
        graph_error(503, "ServiceUnavailable"),
        graph_error(503, "ServiceUnavailable"),
        graph_error(504, "GatewayTimeout"),
    ]))
    .await;
    let users = source(&mock).fetch_full().await.unwrap();
    assert_eq!(users.len(), 5);
    assert_eq!(mock.hits("/graph").len(), 6);
}

#[tokio::test]
async fn exhausted_retries_fail_the_listing_with_a_clean_error() {
    let always = (0..10)
        .map(|_| graph_error(429, "TooManyRequests"))
        .collect::<Vec<_>>();
    let mock = start(three_pages(always)).await;
    let err = source(&mock).fetch_full().await.unwrap_err();
    assert_eq!(err.system, System::Azure);
    assert_eq!(err.kind, SourceErrorKind::Throttled);
    assert_eq!(err.status, Some(429));
    assert_eq!(err.code.as_deref(), Some("TooManyRequests"));
    assert_eq!(err.path.as_deref(), Some(USERS));
    let text = err.to_string();
    assert!(
        text.contains("Azure AD") && text.contains(USERS) && text.contains("TooManyRequests"),
        "{text}"
    );
    assert!(text.contains("gave up after 4 attempts"), "{text}");
    for leak in [SECRET, "tok-1", "skiptoken", "P2"] {
        assert!(!text.contains(leak), "error text leaks {leak}: {text}");
        assert!(
            !format!("{err:?}").contains(leak),
            "error debug leaks {leak}"
        );
    }
    // 1 + 3 retries of page 2, nothing after it.
    assert_eq!(mock.hits("/graph").len(), 5);
}

#[tokio::test]
async fn forbidden_is_not_retried() {
    let mock = start(|_| graph_error(403, "Authorization_RequestDenied")).await;
    let err = source(&mock).fetch_full().await.unwrap_err();
    assert_eq!(err.kind, SourceErrorKind::Auth);
    assert_eq!(err.code.as_deref(), Some("Authorization_RequestDenied"));
    assert_eq!(mock.hits("/graph").len(), 1);
}

#[tokio::test]
async fn unauthorized_mid_listing_reauthenticates_once() {
    let mock = start(|r: &Recorded| {
        let stale = r.bearer().as_deref() == Some("tok-1");
        match r.param("$skiptoken").as_deref() {
            None => page(r, vec![graph_user("1", "a@contoso.com")], Some("P2")),
            Some("P2") if stale => graph_error(401, "InvalidAuthenticationToken"),
            Some(_) => page(r, vec![graph_user("2", "b@contoso.com")], None),
        }
    })
    .await;
    let users = source(&mock).fetch_full().await.unwrap();
    assert_eq!(ids(&users), ["1", "2"]);
    assert_eq!(mock.hits("/login").len(), 2);
    let graph = mock.hits("/graph");
    assert_eq!(graph.last().unwrap().bearer().as_deref(), Some("tok-2"));
}

#[tokio::test]
async fn persistent_unauthorized_gives_up_after_one_reauthentication() {
    let mock = start(|_| graph_error(401, "InvalidAuthenticationToken")).await;
    let err = source(&mock).fetch_full().await.unwrap_err();
    assert_eq!(err.kind, SourceErrorKind::Auth);
    assert_eq!(err.status, Some(401));
    assert_eq!(err.code.as_deref(), Some("InvalidAuthenticationToken"));
    assert_eq!(mock.hits("/login").len(), 2);
    assert_eq!(mock.hits("/graph").len(), 2);
}

#[tokio::test]
async fn invalid_json_is_invalid_payload() {
    let mock = start(|_| Reply::text(200, "<html>proxy login</html>")).await;
    let err = source(&mock).fetch_full().await.unwrap_err();
    assert_eq!(err.kind, SourceErrorKind::InvalidPayload);
    assert!(err.message.contains("expected"), "{err}");

    let mock = start(|_| Reply::json(200, json!({"value": "not a list"}))).await;
    let err = source(&mock).fetch_full().await.unwrap_err();
    assert_eq!(err.kind, SourceErrorKind::InvalidPayload);
    assert!(err.message.contains("invalid type"), "{err}");

    let mock =
        start(|_| Reply::json(200, json!({"value": [{"id": "9", "accountEnabled": true}]}))).await;
    let err = source(&mock).fetch_full().await.unwrap_err();
    assert_eq!(err.kind, SourceErrorKind::InvalidPayload);
    assert!(
        err.message.contains("user 9") && err.message.contains("userPrincipalName"),
        "{err}"
    );
}

#[tokio::test]
async fn a_next_link_to_another_host_is_refused() {
    let mock = start(|r: &Recorded| {
        let _ = r;
        Reply::json(
            200,
            json!({"value": [graph_user("1", "a@contoso.com")], "@odata.nextLink": "https://evil.example/v1.0/users?$skiptoken=x"}),
        )
    })
    .await;
    let err = source(&mock).fetch_full().await.unwrap_err();
    assert_eq!(err.kind, SourceErrorKind::InvalidPayload);
    assert!(err.message.contains("evil.example"), "{err}");
}

#[tokio::test]
async fn a_repeating_next_link_is_refused() {
    let mock =
        start(|r: &Recorded| page(r, vec![graph_user("1", "a@contoso.com")], Some("LOOP"))).await;
    let err = source(&mock).fetch_full().await.unwrap_err();
    assert_eq!(err.kind, SourceErrorKind::InvalidPayload);
    assert!(err.message.contains("repeats"), "{err}");
}

#[tokio::test]
async fn group_scope_lists_transitive_user_members() {
    let gid = "0f0e0d0c-1111-2222-3333-444455556666";
    let mock = start(move |r: &Recorded| {
        if r.path == format!("/graph/v1.0/groups/{gid}/transitiveMembers/microsoft.graph.user") {
            Reply::json(200, json!({"value": [graph_user("7", "g@contoso.com")]}))
        } else {
            graph_error(404, "Request_ResourceNotFound")
        }
    })
    .await;
    let src = source_with(&mock, |c| c.group_id = Some(gid.to_string()));
    assert_eq!(src.scope(), format!("group:{gid}"));
    let users = src.fetch_full().await.unwrap();
    assert_eq!(ids(&users), ["7"]);
}

fn delta_path(r: &Recorded) -> bool {
    r.path == "/graph/v1.0/users/delta()" || r.path == "/graph/v1.0/users/delta"
}

#[tokio::test]
async fn first_listing_takes_a_latest_delta_link_then_lists_users_by_999() {
    let mock = start(|r: &Recorded| {
        if delta_path(r) {
            assert_eq!(r.param("$deltatoken").as_deref(), Some("latest"));
            assert!(r.param("$select").unwrap().contains("onPremisesSamAccountName"));
            return Reply::json(200, json!({
                "value": [],
                "@odata.deltaLink": format!("{}/graph/v1.0/users/delta?$deltatoken=T1", r.origin())
            }));
        }
        if r.path != USERS {
            return graph_error(404, "Request_ResourceNotFound");
        }
        match r.param("$skiptoken").as_deref() {
            None => {
                assert_eq!(r.param("$top").as_deref(), Some("999"));
                page(r, vec![graph_user("1", "a@contoso.com"), graph_user("2", "b@contoso.com")], Some("P2"))
            }
            Some(_) => page(r, vec![graph_user("3", "c@contoso.com")], None),
        }
    })
    .await;
    let fetched = source(&mock).fetch_delta(None).await.unwrap();
    let AzureFetch::Full {
        users,
        delta_link,
        fallback,
    } = fetched
    else {
        panic!("a first round is a full listing")
    };
    assert_eq!(ids(&users), ["1", "2", "3"]);
    assert!(delta_link.unwrap().ends_with("$deltatoken=T1"));
    assert_eq!(fallback, None);
    // The "from now on" link comes first, so no change made during the
    // listing is missed; then two listing pages.
    let graph: Vec<_> = mock
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/graph"))
        .collect();
    assert_eq!(graph.len(), 3);
    assert!(delta_path(&graph[0]));
    assert_eq!(graph[1].path, USERS);
}

#[tokio::test]
async fn delta_with_a_stored_link_returns_changes() {
    let mock = start(|r: &Recorded| {
        assert_eq!(r.param("$deltatoken").as_deref(), Some("T1"));
        let mut guest = graph_user("8", "x_ext.com#EXT#@contoso.onmicrosoft.com");
        guest["userType"] = json!("Guest");
        Reply::json(200, json!({
            "value": [
                graph_user("2", "b@contoso.com"),
                {"id": "3", "@removed": {"reason": "deleted"}},
                {"id": "4", "@removed": {"reason": "changed"}},
                guest
            ],
            "@odata.deltaLink": format!("{}/graph/v1.0/users/delta()?$deltatoken=T2", r.origin())
        }))
    })
    .await;
    let link = format!("{}graph/v1.0/users/delta()?$deltatoken=T1", mock.base);
    let fetched = source(&mock).fetch_delta(Some(&link)).await.unwrap();
    let AzureFetch::Delta {
        changes,
        delta_link,
    } = fetched
    else {
        panic!("a stored link yields changes")
    };
    assert!(delta_link.ends_with("$deltatoken=T2"));
    assert_eq!(changes.len(), 4);
    assert!(matches!(&changes[0], AadChange::Upsert(u) if u.id() == "2"));
    assert_eq!(
        changes[1],
        AadChange::Removed {
            id: "3".into(),
            reason: "deleted".into()
        }
    );
    assert_eq!(
        changes[2],
        AadChange::Removed {
            id: "4".into(),
            reason: "changed".into()
        }
    );
    assert_eq!(
        changes[3],
        AadChange::Removed {
            id: "8".into(),
            reason: "guest".into()
        }
    );
}

#[tokio::test]
async fn expired_delta_links_say_so() {
    let mock = start(|_| graph_error(410, "Gone")).await;
    let link = format!("{}graph/v1.0/users/delta()?$deltatoken=OLD", mock.base);
    let err = source(&mock).fetch_delta(Some(&link)).await.unwrap_err();
    assert_eq!(err.kind, SourceErrorKind::DeltaExpired);
    assert!(!err.to_string().contains("OLD"), "{err}");

    let mock = start(|_| graph_error(400, "syncStateNotFound")).await;
    let link = format!("{}graph/v1.0/users/delta()?$deltatoken=OLD", mock.base);
    let err = source(&mock).fetch_delta(Some(&link)).await.unwrap_err();
    assert_eq!(err.kind, SourceErrorKind::DeltaExpired);
    assert_eq!(err.code.as_deref(), Some("syncStateNotFound"));
}

/// Every documented way Graph says a delta token is gone (external-apis.md,
/// "Delta"): each is a delta expiry, so the caller lists in full once.
#[tokio::test]
async fn every_delta_expiry_form_is_a_delta_expiry() {
    for (status, code, location) in [
        (410, "Gone", true),
        (410, "syncStateNotFound", false),
        (400, "syncStateNotFound", false),
        (400, "syncStateInvalid", false),
        (400, "resyncRequired", false),
        (404, "syncStateNotFound", false),
        (409, "resyncRequired", false),
    ] {
        let mock = start(move |r: &Recorded| {
            let reply = graph_error(status, code);
            if location {
                let fresh = format!("{}/graph/v1.0/users/delta", r.origin());
                reply.header("location", &fresh)
            } else {
                reply
            }
        })
        .await;
        let link = format!("{}graph/v1.0/users/delta?$deltatoken=OLD", mock.base);
        let err = source(&mock).fetch_delta(Some(&link)).await.unwrap_err();
        assert_eq!(
            err.kind,
            SourceErrorKind::DeltaExpired,
            "{status} {code}: {err}"
        );
    }
    // Other client errors stay what they are.
    let mock = start(|_| graph_error(400, "Request_BadRequest")).await;
    let link = format!("{}graph/v1.0/users/delta?$deltatoken=OLD", mock.base);
    let err = source(&mock).fetch_delta(Some(&link)).await.unwrap_err();
    assert_eq!(err.kind, SourceErrorKind::Http);
}

/// Graph pages whose `$skiptoken` is `P2` answer `Directory_ExpiredPageToken`
/// the first `expired` times they are asked for.
fn listing_with_expiring_page(expired: usize) -> impl Fn(&Recorded) -> Reply + Send + Sync {
    let left = AtomicUsize::new(expired);
    move |r: &Recorded| match r.param("$skiptoken").as_deref() {
        None => page(r, vec![graph_user("1", "a@contoso.com")], Some("P2")),
        Some("P2") => {
            if left.load(Ordering::SeqCst) > 0 {
                left.fetch_sub(1, Ordering::SeqCst);
                return graph_error(400, "Directory_ExpiredPageToken");
            }
            page(r, vec![graph_user("2", "b@contoso.com")], None)
        }
        Some(_) => graph_error(400, "BadRequest"),
    }
}

#[tokio::test]
async fn an_expired_page_token_restarts_the_walk_from_its_first_page() {
    let mock = start(listing_with_expiring_page(1)).await;
    let users = source(&mock).fetch_full().await.unwrap();
    assert_eq!(ids(&users), ["1", "2"], "nothing twice, nothing lost");
    let firsts = mock
        .hits(USERS)
        .iter()
        .filter(|r| r.param("$skiptoken").is_none())
        .count();
    assert_eq!(firsts, 2, "the walk started again from its first page");
}

#[tokio::test]
async fn page_tokens_that_keep_expiring_end_the_listing_after_two_restarts() {
    let mock = start(listing_with_expiring_page(usize::MAX)).await;
    let err = source(&mock).fetch_full().await.unwrap_err();
    assert_eq!(err.code.as_deref(), Some("Directory_ExpiredPageToken"));
    assert!(err.message.contains("2 fresh starts"), "{err}");
    assert_eq!(mock.hits(USERS).len(), 6, "three walks of two pages");
}

#[tokio::test]
async fn an_endless_next_link_chain_stops_at_max_pages() {
    let mock = start(|r: &Recorded| {
        let n: u64 = r
            .param("$skiptoken")
            .map(|t| t.parse().unwrap())
            .unwrap_or(0);
        page(
            r,
            vec![graph_user(&n.to_string(), &format!("u{n}@contoso.com"))],
            Some(&(n + 1).to_string()),
        )
    })
    .await;
    let src = source(&mock).with_limits(ListingLimits {
        max_pages: 25,
        ..ListingLimits::default()
    });
    let err = src.fetch_full().await.unwrap_err();
    assert_eq!(err.kind, SourceErrorKind::InvalidPayload);
    assert!(err.message.contains("limits.max_pages = 25"), "{err}");
    assert_eq!(mock.hits(USERS).len(), 25);
}

#[tokio::test]
async fn a_stored_delta_link_for_another_origin_is_never_sent_and_asks_for_a_full_listing() {
    let mock = start(|_| graph_error(500, "unused")).await;
    // The same server under another name (graph_url changed from 127.0.0.1 to localhost).
    let port = mock.base.port().unwrap();
    for link in [
        "https://elsewhere.example/v1.0/users/delta()?$deltatoken=x".to_string(),
        format!("http://localhost:{port}/graph/v1.0/users/delta?$deltatoken=x"),
    ] {
        let err = source(&mock).fetch_delta(Some(&link)).await.unwrap_err();
        assert_eq!(err.kind, SourceErrorKind::DeltaExpired, "{err}");
        assert!(
            err.message.contains("instead of the configured Graph URL"),
            "{err}"
        );
    }
    assert!(mock.hits("/graph").is_empty());
}

#[tokio::test]
async fn id_only_group_members_name_the_missing_permission() {
    let gid = "0f0e0d0c-1111-2222-3333-444455556666";
    let mock = start(|r: &Recorded| {
        Reply::json(
            200,
            json!({"value": [{
            "@odata.type": "#microsoft.graph.user", "id": "7",
            "userPrincipalName": null, "mail": null, "displayName": null,
            "accountEnabled": null, "employeeId": null,
            "onPremisesSamAccountName": null, "userType": null
        }], "@odata.context": format!("{}/x", r.origin())}),
        )
    })
    .await;
    let src = source_with(&mock, |c| c.group_id = Some(gid.to_string()));
    for err in [
        src.fetch_full().await.unwrap_err(),
        src.probe().await.unwrap_err(),
    ] {
        assert_eq!(err.kind, SourceErrorKind::Auth);
        assert!(err.message.contains("User.Read.All"), "{err}");
    }
}

#[tokio::test]
async fn dot_segments_are_never_user_keys() {
    let mock = start(|_| graph_error(500, "unused")).await;
    for key in [".", "..", "...", " .. "] {
        let err = source(&mock).fetch_one(key).await.unwrap_err();
        assert_eq!(err.kind, SourceErrorKind::Config, "{key}");
    }
    assert!(mock.hits("/graph").is_empty());
}

#[tokio::test]
async fn fetch_one_encodes_the_upn_and_maps_404_to_none() {
    let mock = start(|r: &Recorded| match r.path.as_str() {
        "/graph/v1.0/users/o%27brien%2Btest@contoso.com" => {
            Reply::json(200, graph_user("5", "o'brien+test@contoso.com"))
        }
        _ => graph_error(404, "Request_ResourceNotFound"),
    })
    .await;
    let src = source(&mock);
    let user = src
        .fetch_one("o'brien+test@contoso.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.id(), "5");
    assert!(src.fetch_one("nobody@contoso.com").await.unwrap().is_none());
    let hit = &mock.hits("/graph")[0];
    assert!(hit
        .param("$select")
        .unwrap()
        .starts_with("id,userPrincipalName"));
}

#[tokio::test]
async fn fetch_one_encodes_guest_upns() {
    let mock = start(|r: &Recorded| {
        if r.path == "/graph/v1.0/users/jane_fabrikam.com%23EXT%23@contoso.onmicrosoft.com" {
            let mut guest = graph_user("9", "jane_fabrikam.com#EXT#@contoso.onmicrosoft.com");
            guest["userType"] = json!("Guest");
            Reply::json(200, guest)
        } else {
            graph_error(404, "Request_ResourceNotFound")
        }
    })
    .await;
    let upn = "jane_fabrikam.com#EXT#@contoso.onmicrosoft.com";
    assert!(
        source(&mock).fetch_one(upn).await.unwrap().is_none(),
        "guests out of scope"
    );
    let with_guests = source_with(&mock, |c| c.include_guests = true);
    assert_eq!(with_guests.fetch_one(upn).await.unwrap().unwrap().id(), "9");
}

#[tokio::test]
async fn a_delta_link_for_another_origin_is_never_stored() {
    let mock = start(|r: &Recorded| {
        if delta_path(r) {
            return Reply::json(
                200,
                json!({"value": [], "@odata.deltaLink": "https://elsewhere.example/v1.0/users/delta?$deltatoken=T1"}),
            );
        }
        page(r, vec![graph_user("1", "a@contoso.com")], None)
    })
    .await;
    let err = source(&mock).fetch_delta(None).await.unwrap_err();
    assert_eq!(err.kind, SourceErrorKind::InvalidPayload);
    assert!(
        err.message
            .contains("@odata.deltaLink points at https://elsewhere.example"),
        "{err}"
    );
    assert!(!err.to_string().contains("T1"), "{err}");
}
