//! Databases written by earlier builds open with this one: the migrations
//! that changed how data is laid out keep every value.

use crate::store_support;

use idrecon::model::{
    AadUser, ActionKind, ActionStatus, Cause, Finding, FindingKind, FindingStatus,
};
use idrecon::store::{SqliteStore, Store};
use std::path::Path;
use store_support::aad_user;
use strum::IntoEnumIterator;

fn sorted(mut users: Vec<AadUser>) -> Vec<AadUser> {
    users.sort_by(|a, b| a.id().cmp(b.id()));
    users
}

/// A new database file at `path` with the migrations up to `version` only,
/// as an earlier build left it.
async fn database_at_schema(path: &Path, version: i64) -> sqlx::SqlitePool {
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .unwrap();
    let all = sqlx::migrate!("./migrations");
    let earlier = sqlx::migrate::Migrator {
        migrations: std::borrow::Cow::Owned(
            all.migrations
                .iter()
                .filter(|m| m.version <= version)
                .cloned()
                .collect(),
        ),
        ..sqlx::migrate!("./migrations")
    };
    earlier.run(&pool).await.unwrap();
    pool
}

/// A database written by a build before schema 5 kept one row per user;
/// opening it with this build turns those rows into pages, and every
/// user (odd characters, absent fields, disabled accounts) reads back.
#[tokio::test]
async fn snapshot_rows_of_schema_4_become_pages() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let mut users: Vec<AadUser> = (0..6_001).map(aad_user).collect();
    users[3].edit(|fields| fields.display_name = Some("Åsa \"Ø\" 李 🙂 \u{1f}\t end ".into()));
    users[4].edit(|fields| {
        fields.mail = None;
        fields.user_type = None;
    });
    {
        let pool = database_at_schema(&path, 4).await;
        sqlx::query(
            "INSERT INTO azure_snapshots (scope, delta_link, updated_at) \
             VALUES ('users', 'old-link', '2024-05-01T02:00:00Z')",
        )
        .execute(&pool)
        .await
        .unwrap();
        for u in &users {
            sqlx::query(
                "INSERT INTO azure_users (scope, id, user_principal_name, mail, display_name, \
                 account_enabled, employee_id, on_premises_sam_account_name, user_type) \
                 VALUES ('users', ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(u.id())
            .bind(u.user_principal_name())
            .bind(u.mail())
            .bind(u.display_name())
            .bind(u.account_enabled())
            .bind(u.employee_id())
            .bind(u.on_premises_sam_account_name())
            .bind(u.user_type())
            .execute(&pool)
            .await
            .unwrap();
        }
        pool.close().await;
    }
    let store = SqliteStore::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let snap = store.load_azure_snapshot("users").await.unwrap().unwrap();
    assert_eq!(snap.delta_link.as_deref(), Some("old-link"));
    assert_eq!(snap.users, sorted(users));
    store.close().await;
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let pages: i64 = sqlx::query_scalar("SELECT count(*) FROM azure_user_pages")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(pages, 2);
}

/// Schema 5 kept one row per finding; opening it with this build turns them
/// into chunks, and every finding (every kind, cause, status, action and
/// action status, absent fields, odd characters) and every key reads back.
#[tokio::test]
async fn finding_rows_of_schema_5_become_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let kinds: Vec<FindingKind> = FindingKind::iter().collect();
    let causes: Vec<Option<Cause>> = std::iter::once(None)
        .chain(Cause::iter().map(Some))
        .collect();
    let statuses: Vec<FindingStatus> = FindingStatus::iter().collect();
    let actions: Vec<ActionKind> = ActionKind::iter().collect();
    let action_statuses: Vec<Option<ActionStatus>> = std::iter::once(None)
        .chain(ActionStatus::iter().map(Some))
        .collect();
    let findings: Vec<Finding> = (0..1_500usize)
        .map(|n| {
            let mut f = Finding::new(kinds[n % kinds.len()]);
            f.cause = causes[n % causes.len()];
            f.status = statuses[n % statuses.len()];
            f.aad_id = (n % 4 != 0).then(|| format!("{n:08x}-0000-4000-8000-000000000000"));
            f.upn = Some(format!("user{n}@contoso.com"));
            f.display_name = (n % 5 != 0).then(|| format!("Åsa \"{n}\" 李 🙂\t\\ end"));
            f.ifs_identity = (n % 3 != 0).then(|| format!("USER{n}"));
            f.ifs_directory_id = Some(format!("user{n}@contoso.com"));
            f.flow_user_id = (n % 2 == 0).then(|| format!("user{n}"));
            f.expected_flow_user_id = None;
            f.action = actions[n % actions.len()];
            f.action_status = action_statuses[n % action_statuses.len()];
            f.detail = format!("detail {n}: null, true, 1e5, [], {{}}");
            f
        })
        .collect();
    {
        let pool = database_at_schema(&path, 5).await;
        sqlx::query(
            "INSERT INTO runs (id, schema_version, trigger_kind, mode, status, started_at, finished_at) \
             VALUES (1, 1, 'manual', 'report', 'completed', '2024-05-01T02:00:00Z', '2024-05-01T02:00:42Z')",
        )
        .execute(&pool)
        .await
        .unwrap();
        for (seq, f) in findings.iter().enumerate() {
            sqlx::query(
                "INSERT INTO findings (run_id, seq, finding_key, kind, cause, status, aad_id, upn, \
                 display_name, ifs_identity, ifs_directory_id, flow_user_id, expected_flow_user_id, \
                 action, action_status, detail) \
                 VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(seq as i64)
            .bind(f.key())
            .bind(f.kind.as_str())
            .bind(f.cause.map(Cause::as_str))
            .bind(f.status.as_str())
            .bind(f.aad_id.as_deref())
            .bind(f.upn.as_deref())
            .bind(f.display_name.as_deref())
            .bind(f.ifs_identity.as_deref())
            .bind(f.ifs_directory_id.as_deref())
            .bind(f.flow_user_id.as_deref())
            .bind(f.expected_flow_user_id.as_deref())
            .bind(f.action.as_str())
            .bind(f.action_status.map(|s| s.as_str()))
            .bind(f.detail.as_str())
            .execute(&pool)
            .await
            .unwrap();
        }
        pool.close().await;
    }
    let store = SqliteStore::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let report = store.load_report(1).await.unwrap().unwrap();
    assert_eq!(report.findings, findings);
    let (previous, keys) = store.previous_open_findings(2).await.unwrap().unwrap();
    assert_eq!(previous, 1);
    let expected: std::collections::HashSet<String> = findings.iter().map(Finding::key).collect();
    assert_eq!(keys, expected);
    store.close().await;
}
