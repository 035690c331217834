//! The Flow endpoint (mock with basic auth) and the Flow CSV export:
//! cursor paging, rename/deactivate outcomes, CSV rows good and bad.

use crate::clients_support;

use base64::Engine as _;
use clients_support::*;
use idrecon::sources::flow::FlowHttp;
use idrecon::sources::flow_csv::FlowCsv;
use idrecon::sources::{FlowWriteError, FlowWriter, SourceErrorKind, System};
use serde_json::json;

fn basic_ok(r: &Recorded) -> bool {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("svc_idrecon:flow-password-value")
    );
    r.headers.get("authorization").and_then(|h| h.to_str().ok()) == Some(expected.as_str())
}

async fn start(handler: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> Mock {
    Mock::start(move |r| {
        if !basic_ok(r) {
            return Reply::json(401, json!({"error": "bad credentials"}));
        }
        handler(r)
    })
    .await
}

fn flow(mock: &Mock) -> FlowHttp {
    FlowHttp::new(&flow_config(mock), reqwest::Client::new(), &fast_settings()).unwrap()
}

fn flow_user(id: &str, sync: Option<&str>) -> serde_json::Value {
    json!({"userId": id, "name": format!("Name {id}"), "email": format!("{id}@contoso.com"), "active": true, "type": "Full", "syncSource": sync})
}

#[tokio::test]
async fn listing_follows_next_cursor_until_null() {
    let mock = start(|r: &Recorded| {
        assert_eq!(r.path, "/flow/users");
        match r.param("cursor").as_deref() {
            None => Reply::json(200, json!({"users": [flow_user("jdoe", Some("AzureAD")), flow_user("asmith", None)], "nextCursor": "c2"})),
            Some("c2") => Reply::json(200, json!({"users": [flow_user("bob", None)], "nextCursor": "c3"})),
            Some("c3") => Reply::json(200, json!({"users": [], "nextCursor": null})),
            Some(_) => Reply::json(400, json!({"error": "unknown cursor"})),
        }
    })
    .await;
    let users = flow(&mock).fetch_all().await.unwrap();
    let ids: Vec<_> = users.iter().map(|u| u.user_id()).collect();
    assert_eq!(ids, ["jdoe", "asmith", "bob"]);
    assert_eq!(users[0].sync_source(), Some("AzureAD"));
    assert!(users[0].is_sync_managed() && !users[1].is_sync_managed());
    assert_eq!(users[1].email(), Some("asmith@contoso.com"));
    assert_eq!(mock.hits("/flow").len(), 3);
}

#[tokio::test]
async fn a_cursor_loop_is_an_error() {
    let mock = start(|r: &Recorded| {
        let next = if r.param("cursor").as_deref() == Some("a") {
            "b"
        } else {
            "a"
        };
        Reply::json(
            200,
            json!({"users": [flow_user("x", None)], "nextCursor": next}),
        )
    })
    .await;
    let err = flow(&mock).fetch_all().await.unwrap_err();
    assert_eq!(err.system, System::Flow);
    assert_eq!(err.kind, SourceErrorKind::InvalidPayload);
    assert!(err.message.contains("nextCursor repeats"), "{err}");
}

#[tokio::test]
async fn wrong_credentials_name_the_service_error_but_not_the_password() {
    let mock = Mock::start(|_| Reply::json(401, json!({"error": "bad credentials"}))).await;
    let err = flow(&mock).fetch_all().await.unwrap_err();
    assert_eq!(err.kind, SourceErrorKind::Auth);
    assert_eq!(err.status, Some(401));
    assert_eq!(err.code.as_deref(), Some("bad credentials"));
    assert!(!err.to_string().contains("flow-password-value"));
    assert!(!format!("{:?}", flow(&mock)).contains("flow-password-value"));
}

#[tokio::test]
async fn a_user_without_type_is_invalid_payload() {
    let mock = start(|_| {
        Reply::json(
            200,
            json!({"users": [{"userId": "x", "active": true}], "nextCursor": null}),
        )
    })
    .await;
    let err = flow(&mock).fetch_all().await.unwrap_err();
    assert_eq!(err.kind, SourceErrorKind::InvalidPayload);
    assert!(err.message.contains("type"), "{err}");
}

/// A Flow with users `jdoe` and `taken`.
fn rename_handler(r: &Recorded) -> Reply {
    let body = r.json();
    match r.path.as_str() {
        "/flow/users/rename" => {
            let from = body["userId"].as_str().unwrap_or("");
            let to = body["newUserId"].as_str().unwrap_or("");
            if from != "jdoe" {
                Reply::json(404, json!({"error": format!("user {from} not found")}))
            } else if to == "taken" {
                Reply::json(409, json!({"error": "user exists"}))
            } else if to == "taken-quietly" {
                Reply::text(409, "")
            } else {
                Reply::json(200, json!({"userId": to}))
            }
        }
        "/flow/users/deactivate" => {
            if body["userId"] == "jdoe" {
                Reply::json(200, json!({}))
            } else {
                Reply::json(404, json!({"error": "not found"}))
            }
        }
        _ => Reply::json(404, json!({"error": "no route"})),
    }
}

#[tokio::test]
async fn rename_outcomes() {
    let mock = start(rename_handler).await;
    let flow = flow(&mock);
    flow.rename("jdoe", "jdoe@contoso.com").await.unwrap();
    let sent = mock.hits("/flow/users/rename")[0].json();
    assert_eq!(
        sent,
        json!({"userId": "jdoe", "newUserId": "jdoe@contoso.com"})
    );
    // Flow's own error text is kept and shown after ours.
    let err = flow.rename("ghost", "ghost@contoso.com").await.unwrap_err();
    match &err {
        FlowWriteError::NotFound { user_id, message } => {
            assert_eq!(user_id, "ghost");
            assert_eq!(message.as_deref(), Some("user ghost not found"));
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        r#"Flow: user ghost not found (Flow said: "user ghost not found")"#
    );
    let err = flow.rename("jdoe", "taken").await.unwrap_err();
    match &err {
        FlowWriteError::Conflict { user_id, message } => {
            assert_eq!(user_id, "taken");
            assert_eq!(message.as_deref(), Some("user exists"));
        }
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        r#"Flow: user ID taken is already taken (Flow said: "user exists")"#
    );
    // Without a body there is nothing of Flow's to quote.
    let err = flow.rename("jdoe", "taken-quietly").await.unwrap_err();
    assert!(
        matches!(&err, FlowWriteError::Conflict { user_id, message: None } if user_id == "taken-quietly"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "Flow: user ID taken-quietly is already taken"
    );
}

#[tokio::test]
async fn a_rename_answered_with_another_id_is_an_error() {
    let mock = start(|_| Reply::json(200, json!({"userId": "something-else"}))).await;
    let err = flow(&mock)
        .rename("jdoe", "jdoe@contoso.com")
        .await
        .unwrap_err();
    assert!(
        matches!(err, FlowWriteError::Other(ref e) if e.kind == SourceErrorKind::InvalidPayload),
        "{err:?}"
    );
}

#[tokio::test]
async fn deactivate_outcomes() {
    let mock = start(rename_handler).await;
    let flow = flow(&mock);
    flow.deactivate("jdoe").await.unwrap();
    let err = flow.deactivate("ghost").await.unwrap_err();
    assert!(
        matches!(&err, FlowWriteError::NotFound { user_id, message } if user_id == "ghost" && message.as_deref() == Some("not found")),
        "{err:?}"
    );
    assert!(
        err.to_string().ends_with(r#"(Flow said: "not found")"#),
        "{err}"
    );
}

#[tokio::test]
async fn writes_are_not_repeated_after_an_ambiguous_500() {
    let mock = start(|_| Reply::json(500, json!({"error": "workflow crashed"}))).await;
    let err = flow(&mock)
        .rename("jdoe", "jdoe@contoso.com")
        .await
        .unwrap_err();
    let FlowWriteError::Other(e) = err else {
        panic!("expected Other")
    };
    assert_eq!(e.status, Some(500));
    assert_eq!(e.code.as_deref(), Some("workflow crashed"));
    assert_eq!(e.path.as_deref(), Some("/flow/users/rename"));
    assert_eq!(
        mock.hits("/flow").len(),
        1,
        "a write that may have happened is not resent"
    );
}

#[tokio::test]
async fn writes_are_retried_when_throttled() {
    let calls = std::sync::atomic::AtomicUsize::new(0);
    let mock = start(move |r| {
        if calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            Reply::json(429, json!({"error": "slow down"})).header("Retry-After", "0")
        } else {
            rename_handler(r)
        }
    })
    .await;
    flow(&mock)
        .rename("jdoe", "jdoe@contoso.com")
        .await
        .unwrap();
    assert_eq!(mock.hits("/flow").len(), 2);
}

fn csv_file(content: &str) -> (tempfile::TempDir, FlowCsv) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flow-users.csv");
    std::fs::write(&path, content).unwrap();
    (dir, FlowCsv::new(path))
}

#[tokio::test]
async fn csv_export_is_read() {
    let (_dir, csv) = csv_file(
        "\u{feff}userId,name,email,active,type,syncSource\n\
         jdoe,John Doe,jdoe@contoso.com,true,Full,AzureAD\n\
         \"smith, anna\",\"Smith, Anna\",,0,Full,\n\
         svc_bot,,,yes,Machine,\n\
         old,Old One,old@contoso.com,NO,Full,\n",
    );
    let users = csv.fetch_all().await.unwrap();
    assert_eq!(users.len(), 4);
    assert_eq!(users[0].user_id(), "jdoe");
    assert!(users[0].active() && users[0].is_sync_managed());
    assert_eq!(users[1].user_id(), "smith, anna");
    assert_eq!(users[1].email(), None);
    assert!(!users[1].active());
    assert!(users[2].is_machine() && users[2].active());
    assert!(!users[3].active());
}

#[tokio::test]
async fn csv_columns_may_come_in_any_order() {
    let (_dir, csv) =
        csv_file("type,active,userId,syncSource,email,name\nFull,1,jdoe,,jdoe@contoso.com,John\n");
    let users = csv.fetch_all().await.unwrap();
    assert_eq!(users[0].user_id(), "jdoe");
    assert_eq!(users[0].name(), Some("John"));
}

#[tokio::test]
async fn a_bad_csv_row_names_line_and_column() {
    let mut content = String::from("userId,name,email,active,type,syncSource\n");
    for i in 0..5 {
        content.push_str(&format!("u{i},User {i},u{i}@contoso.com,true,Full,\n"));
    }
    content.push_str("u5,User 5,u5@contoso.com,maybe,Full,\n");
    let (_dir, csv) = csv_file(&content);
    let err = csv.fetch_all().await.unwrap_err();
    assert_eq!(err.kind, SourceErrorKind::File);
    assert_eq!(err.system, System::Flow);
    assert!(
        err.message
            .contains("flow-users.csv line 7, column active: expected true/false, got \"maybe\""),
        "{err}"
    );
}

#[tokio::test]
async fn csv_structural_problems_are_named() {
    let (_dir, csv) = csv_file("userId,name,email,active,syncSource\njdoe,J,j@x,true,\n");
    let err = csv.fetch_all().await.unwrap_err();
    assert!(err.message.contains("no column \"type\""), "{err}");

    let (_dir, csv) = csv_file("userId,name,email,active,type,syncSource\njdoe,J,j@x,true\n");
    let err = csv.fetch_all().await.unwrap_err();
    assert!(err.message.contains("flow-users.csv line 2"), "{err}");

    let (_dir, csv) = csv_file("userId,name,email,active,type,syncSource\n,J,j@x,true,Full,\n");
    let err = csv.fetch_all().await.unwrap_err();
    assert!(err.message.contains("line 2, column userId"), "{err}");

    let missing = FlowCsv::new("/nonexistent/flow-users.csv");
    let err = missing.fetch_all().await.unwrap_err();
    assert_eq!(err.kind, SourceErrorKind::File);
    assert!(err.message.contains("/nonexistent/flow-users.csv"), "{err}");
}

#[tokio::test]
async fn an_endless_fresh_cursor_stops_at_max_pages() {
    let mock = start(|r: &Recorded| {
        let n: u64 = r.param("cursor").map(|c| c.parse().unwrap()).unwrap_or(0);
        Reply::json(
            200,
            json!({"users": [flow_user(&format!("u{n}"), None)], "nextCursor": (n + 1).to_string()}),
        )
    })
    .await;
    let src = flow(&mock).with_limits(idrecon::sources::ListingLimits {
        max_pages: 30,
        ..Default::default()
    });
    let err = src.fetch_all().await.unwrap_err();
    assert_eq!(err.system, System::Flow);
    assert!(err.message.contains("limits.max_pages = 30"), "{err}");
    assert_eq!(mock.hits("/flow/users").len(), 30);
}
