//! LiveSources built from a whole Config against one mock serving Azure
//! login + Graph, IFS IAM + OData and the Flow endpoint: the three systems
//! fetched concurrently, delta fallback, group scope, CSV mode.

use crate::clients_support;

use clients_support::*;
use idrecon::config::{
    Config, FixConfig, FlowSourceKind, LimitsConfig, MailTransport, MatchingConfig, ReportConfig,
    SafetyConfig, SendPolicy, ServerConfig, StoreConfig, TlsConfig,
};
use idrecon::schedule::Schedule;
use idrecon::sources::live::LiveSources;
use idrecon::sources::{AzureFetch, Sources};
use serde_json::json;

fn config(mock: &Mock) -> Config {
    Config {
        store: StoreConfig {
            url: "sqlite://unused.db".into(),
        },
        azure: azure_config(mock, secret()),
        ifs: ifs_config(mock, 100),
        flow: flow_config(mock),
        matching: MatchingConfig::default(),
        fix: FixConfig::default(),
        schedule: Schedule::parse("0 2 * * *", "UTC").unwrap(),
        report: ReportConfig {
            send: SendPolicy::Never,
            to: vec![],
            from: None,
            transport: MailTransport::Smtp,
            smtp_url: None,
            smtp_username: None,
            smtp_password: None,
            tenant_label: None,
            findings_exit_code: 2,
        },
        server: ServerConfig::default(),
        limits: LimitsConfig::default(),
        tls: TlsConfig::default(),
        safety: SafetyConfig::default(),
    }
}

/// Every system on one mock. Graph delta links with `$deltatoken=OLD` are expired.
async fn everything() -> Mock {
    Mock::start(|r| {
        let path = r.path.as_str();
        if path == azure_token_path() {
            return token_reply("aad-token", 3599);
        }
        if path == "/auth/realms/prod/.well-known/openid-configuration" {
            return Reply::json(
                200,
                json!({
                    "issuer": format!("{}/auth/realms/prod", r.origin()),
                    "token_endpoint": format!("{}/auth/realms/prod/token", r.origin()),
                }),
            );
        }
        if path == "/auth/realms/prod/token" {
            return token_reply("ifs-token", 300);
        }
        if path.starts_with("/graph/v1.0/users/delta") {
            return match r.param("$deltatoken").as_deref() {
                Some("OLD") => Reply::json(410, json!({"error": {"code": "syncStateNotFound", "message": "expired"}})),
                Some("latest") => Reply::json(200, json!({
                    "value": [],
                    "@odata.deltaLink": format!("{}/graph/v1.0/users/delta()?$deltatoken=NEW", r.origin())
                })),
                _ => Reply::json(200, json!({
                    "value": [],
                    "@odata.deltaLink": format!("{}/graph/v1.0/users/delta()?$deltatoken=NEW", r.origin())
                })),
            };
        }
        if path == "/graph/v1.0/users" {
            return Reply::json(200, json!({"value": [graph_user("1", "jdoe@contoso.com")]}))
                .delayed(std::time::Duration::from_millis(300));
        }
        if path.starts_with("/graph/v1.0/groups/") {
            return Reply::json(200, json!({"value": [graph_user("2", "member@contoso.com")]}));
        }
        if path == IFS_USERS_PATH {
            // One user, and the count that says so (no second page needed).
            return Reply::json(200, json!({"@odata.count": 1, "value": [{"Identity": "JDOE", "Description": "John", "WebUser": "jdoe@contoso.com", "Active": true}]}))
                .delayed(std::time::Duration::from_millis(300));
        }
        if path == "/flow/users" {
            return Reply::json(200, json!({"users": [{"userId": "jdoe", "active": true, "type": "Full", "syncSource": null}], "nextCursor": null}))
                .delayed(std::time::Duration::from_millis(300));
        }
        Reply::json(404, json!({"error": {"code": "NotFound", "message": path}}))
    })
    .await
}

#[tokio::test]
async fn the_three_systems_are_fetched_concurrently() {
    let mock = everything().await;
    let live = LiveSources::with_settings(&config(&mock), &fast_settings()).unwrap();
    assert_eq!(live.azure_scope(), "users");
    assert!(live.flow_writer().is_some());
    let debug = format!("{live:?}");
    for secret in [SECRET, "ifs-secret-value", "flow-password-value"] {
        assert!(!debug.contains(secret), "Debug shows {secret}: {debug}");
    }
    let started = std::time::Instant::now();
    let (azure, ifs, flow) =
        tokio::join!(live.fetch_azure(None), live.fetch_ifs(), live.fetch_flow());
    // Each answer takes 300 ms; concurrently that is well under the 900 ms of a sequence.
    assert!(
        started.elapsed() < std::time::Duration::from_millis(850),
        "{:?}",
        started.elapsed()
    );
    match azure.unwrap() {
        AzureFetch::Full {
            users, delta_link, ..
        } => {
            assert_eq!(users[0].user_principal_name(), "jdoe@contoso.com");
            assert!(delta_link.unwrap().ends_with("$deltatoken=NEW"));
        }
        other => panic!("expected a full round, got {other:?}"),
    }
    assert_eq!(ifs.unwrap()[0].directory_id(), Some("jdoe@contoso.com"));
    assert_eq!(flow.unwrap()[0].user_id(), "jdoe");
}

#[tokio::test]
async fn an_expired_delta_link_falls_back_to_a_full_round() {
    let mock = everything().await;
    let live = LiveSources::with_settings(&config(&mock), &fast_settings()).unwrap();
    let old = format!("{}graph/v1.0/users/delta()?$deltatoken=OLD", mock.base);
    match live.fetch_azure(Some(&old)).await.unwrap() {
        AzureFetch::Full {
            users,
            delta_link,
            fallback,
        } => {
            assert_eq!(users.len(), 1);
            assert!(delta_link.unwrap().ends_with("NEW"));
            let why = fallback.expect("the reason for the full listing");
            assert!(why.contains("syncStateNotFound"), "{why}");
        }
        other => panic!("expected a full round, got {other:?}"),
    }
    let fresh = format!("{}graph/v1.0/users/delta()?$deltatoken=NEW", mock.base);
    assert!(matches!(
        live.fetch_azure(Some(&fresh)).await.unwrap(),
        AzureFetch::Delta { .. }
    ));
}

#[tokio::test]
async fn a_group_scope_lists_the_group_in_full() {
    let mock = everything().await;
    let mut cfg = config(&mock);
    cfg.azure.group_id = Some("0f0e0d0c-1111-2222-3333-444455556666".into());
    let live = LiveSources::with_settings(&cfg, &fast_settings()).unwrap();
    assert_eq!(
        live.azure_scope(),
        "group:0f0e0d0c-1111-2222-3333-444455556666"
    );
    match live.fetch_azure(Some("ignored")).await.unwrap() {
        AzureFetch::Full {
            users, delta_link, ..
        } => {
            assert_eq!(users[0].id(), "2");
            assert_eq!(delta_link, None);
        }
        other => panic!("expected a full listing, got {other:?}"),
    }
}

#[tokio::test]
async fn csv_mode_reads_the_file_and_offers_no_writer() {
    let mock = everything().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flow-users.csv");
    std::fs::write(
        &path,
        "userId,name,email,active,type,syncSource\njdoe,John,,true,Full,\n",
    )
    .unwrap();
    let mut cfg = config(&mock);
    cfg.flow.source = FlowSourceKind::Csv;
    cfg.flow.csv_path = Some(path);
    let live = LiveSources::with_settings(&cfg, &fast_settings()).unwrap();
    assert!(live.flow_writer().is_none());
    assert_eq!(live.fetch_flow().await.unwrap()[0].user_id(), "jdoe");
    assert!(mock.hits("/flow").is_empty());
}

#[tokio::test]
async fn insecure_remote_urls_are_refused() {
    let mock = everything().await;
    let mut cfg = config(&mock);
    cfg.flow.url = Some(url::Url::parse("http://flow.example.com/idrecon").unwrap());
    let err = LiveSources::with_settings(&cfg, &fast_settings()).unwrap_err();
    assert!(err.message.contains("allow_insecure_http"), "{err}");
    cfg.flow.allow_insecure_http = true;
    assert!(LiveSources::with_settings(&cfg, &fast_settings()).is_ok());
}

/// A Graph that hands out a fresh nextLink for ever, slowly.
async fn endless_graph() -> Mock {
    Mock::start(|r| {
        if r.path == azure_token_path() {
            return token_reply("aad-token", 3599);
        }
        if r.path.starts_with("/graph/v1.0/users/delta") {
            return Reply::json(200, json!({"value": [], "@odata.deltaLink": format!("{}/graph/v1.0/users/delta?$deltatoken=NEW", r.origin())}));
        }
        let n: u64 = r.param("$skiptoken").map(|t| t.parse().unwrap()).unwrap_or(0);
        Reply::json(200, json!({
            "value": [graph_user(&n.to_string(), &format!("u{n}@contoso.com"))],
            "@odata.nextLink": format!("{}/graph/v1.0/users?$skiptoken={}", r.origin(), n + 1)
        }))
        .delayed(std::time::Duration::from_millis(20))
    })
    .await
}

#[tokio::test]
async fn a_listing_that_never_ends_stops_at_the_fetch_deadline() {
    let mock = endless_graph().await;
    let limits = idrecon::sources::ListingLimits {
        fetch_deadline: std::time::Duration::from_millis(400),
        ..Default::default()
    };
    let live = LiveSources::with_limits(&config(&mock), &fast_settings(), limits).unwrap();
    let err = live.fetch_azure(None).await.unwrap_err();
    assert_eq!(err.system, idrecon::sources::System::Azure);
    assert!(err.message.contains("limits.fetch_deadline"), "{err}");
}

#[tokio::test]
async fn a_listing_that_never_ends_stops_at_max_pages() {
    let mock = endless_graph().await;
    let limits = idrecon::sources::ListingLimits {
        max_pages: 12,
        ..Default::default()
    };
    let live = LiveSources::with_limits(&config(&mock), &fast_settings(), limits).unwrap();
    let err = live.fetch_azure(None).await.unwrap_err();
    assert!(err.message.contains("limits.max_pages = 12"), "{err}");
    assert_eq!(
        mock.hits("/graph/v1.0/users").len(),
        1 + 12,
        "the latest link, then 12 pages"
    );
}
