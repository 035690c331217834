//! The stored Azure snapshot: full replace, delta apply, clear, scopes,
//! and bulk sizes (timed at full scale by the ignored test).

use crate::store_support;

use compact_str::{format_compact, CompactString};
use idrecon::model::{AadUser, Finding, FindingKind};
use idrecon::report::{Mode, Trigger};
use idrecon::store::{SqliteStore, Store, StoreError};
use std::time::Instant;
use store_support::{aad_user, at, fresh_locked_store, me, report};

fn sorted(mut users: Vec<AadUser>) -> Vec<AadUser> {
    users.sort_by(|a, b| a.id().cmp(b.id()));
    users
}

#[tokio::test]
async fn replace_then_delta_then_clear() {
    let (_dir, _path, store) = fresh_locked_store().await;
    assert_eq!(store.load_azure_snapshot("users").await.unwrap(), None);

    let users: Vec<AadUser> = (1..=5).map(aad_user).collect();
    store
        .replace_azure_snapshot(&me(), "users", &users, Some("https://graph/delta?token=1"))
        .await
        .unwrap();
    let snap = store.load_azure_snapshot("users").await.unwrap().unwrap();
    assert_eq!(snap.users, sorted(users.clone()));
    assert_eq!(
        snap.delta_link.as_deref(),
        Some("https://graph/delta?token=1")
    );

    // Delta: user 2 renamed and disabled, user 6 added, users 3 and 5 removed
    // (plus an ID that was never there, which is harmless).
    let mut changed = aad_user(2);
    changed.edit(|fields| {
        fields.user_principal_name = "renamed@contoso.com".into();
        fields.account_enabled = false;
        fields.mail = None;
    });
    let added = aad_user(6);
    store
        .apply_azure_delta(
            &me(),
            "users",
            &[changed.clone(), added.clone()],
            &[
                aad_user(3).id().into(),
                aad_user(5).id().into(),
                "not-there".into(),
            ],
            "https://graph/delta?token=2",
        )
        .await
        .unwrap();
    let snap = store.load_azure_snapshot("users").await.unwrap().unwrap();
    assert_eq!(
        snap.users,
        sorted(vec![aad_user(1), changed, aad_user(4), added])
    );
    assert_eq!(
        snap.delta_link.as_deref(),
        Some("https://graph/delta?token=2")
    );

    // A full listing without a delta link replaces everything.
    let fresh: Vec<AadUser> = vec![aad_user(9)];
    store
        .replace_azure_snapshot(&me(), "users", &fresh, None)
        .await
        .unwrap();
    let snap = store.load_azure_snapshot("users").await.unwrap().unwrap();
    assert_eq!(snap.users, fresh);
    assert_eq!(snap.delta_link, None);

    store.clear_azure_snapshot(&me(), "users").await.unwrap();
    assert_eq!(store.load_azure_snapshot("users").await.unwrap(), None);
}

#[tokio::test]
async fn empty_snapshot_is_kept_apart_from_no_snapshot() {
    let (_dir, _path, store) = fresh_locked_store().await;
    store
        .replace_azure_snapshot(&me(), "users", &[], Some("link"))
        .await
        .unwrap();
    let snap = store.load_azure_snapshot("users").await.unwrap().unwrap();
    assert!(snap.users.is_empty());
    assert_eq!(snap.delta_link.as_deref(), Some("link"));
}

#[tokio::test]
async fn scopes_are_independent_and_delta_needs_a_snapshot() {
    let (_dir, _path, store) = fresh_locked_store().await;
    let group = "group:11111111-2222-3333-4444-555555555555";
    store
        .replace_azure_snapshot(&me(), "users", &[aad_user(1), aad_user(2)], Some("a"))
        .await
        .unwrap();
    store
        .replace_azure_snapshot(&me(), group, &[aad_user(2)], Some("b"))
        .await
        .unwrap();
    store
        .apply_azure_delta(&me(), group, &[], &[aad_user(2).id().into()], "b2")
        .await
        .unwrap();
    assert_eq!(
        store
            .load_azure_snapshot("users")
            .await
            .unwrap()
            .unwrap()
            .users,
        vec![aad_user(1), aad_user(2)]
    );
    assert!(store
        .load_azure_snapshot(group)
        .await
        .unwrap()
        .unwrap()
        .users
        .is_empty());

    let err = store
        .apply_azure_delta(&me(), "group:other", &[aad_user(1)], &[], "c")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NoSnapshot(_)), "{err:?}");
    assert!(err.to_string().contains("group:other"), "{err}");
    // Nothing was written for the refused scope.
    assert_eq!(
        store.load_azure_snapshot("group:other").await.unwrap(),
        None
    );
}

#[tokio::test]
async fn duplicate_ids_in_a_listing_keep_the_last() {
    let (_dir, _path, store) = fresh_locked_store().await;
    let mut again = aad_user(1);
    again.edit(|fields| fields.display_name = Some("Later copy".into()));
    store
        .replace_azure_snapshot(&me(), "users", &[aad_user(1), again.clone()], None)
        .await
        .unwrap();
    let snap = store.load_azure_snapshot("users").await.unwrap().unwrap();
    assert_eq!(snap.users, vec![again]);
}

#[tokio::test]
async fn delta_link_alone_says_whether_a_snapshot_exists() {
    let (_dir, _path, store) = fresh_locked_store().await;
    assert_eq!(store.load_azure_delta_link("users").await.unwrap(), None);
    store
        .replace_azure_snapshot(&me(), "users", &[aad_user(1)], None)
        .await
        .unwrap();
    assert_eq!(
        store.load_azure_delta_link("users").await.unwrap(),
        Some(None)
    );
    store
        .apply_azure_delta(&me(), "users", &[], &[], "https://graph/delta?token=7")
        .await
        .unwrap();
    assert_eq!(
        store.load_azure_delta_link("users").await.unwrap(),
        Some(Some("https://graph/delta?token=7".to_string()))
    );
}

#[tokio::test]
async fn update_writes_only_the_given_rows_and_may_drop_the_link() {
    let (_dir, _path, store) = fresh_locked_store().await;
    let users: Vec<AadUser> = (1..=4).map(aad_user).collect();
    store
        .replace_azure_snapshot(&me(), "users", &users, Some("a"))
        .await
        .unwrap();
    let mut changed = aad_user(3);
    changed.edit(|fields| fields.employee_id = None);
    store
        .update_azure_snapshot(
            &me(),
            "users",
            &[changed.clone()],
            &[aad_user(1).id().into()],
            None,
        )
        .await
        .unwrap();
    let snap = store.load_azure_snapshot("users").await.unwrap().unwrap();
    assert_eq!(snap.users, vec![aad_user(2), changed, aad_user(4)]);
    assert_eq!(snap.delta_link, None);

    let err = store
        .update_azure_snapshot(&me(), "group:none", &[aad_user(1)], &[], None)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NoSnapshot(_)), "{err:?}");
    assert_eq!(
        store.load_azure_delta_link("group:none").await.unwrap(),
        None
    );
}

/// Users travel to and from SQLite as JSON arrays: every character a
/// directory may hold comes back exactly, and an empty string stays apart
/// from an absent value.
#[tokio::test]
async fn every_character_survives_the_round_trip() {
    let (_dir, _path, store) = fresh_locked_store().await;
    let mut odd = aad_user(1);
    odd.edit(|fields| {
        fields.user_principal_name = "o'brien\"x\\y@contoso.com".into();
        fields.display_name = Some("Åsa Øster 李 🙂 \u{0}\u{1f}\t\n end ".into());
        fields.mail = Some(CompactString::default());
        fields.employee_id = None;
        fields.on_premises_sam_account_name = Some("   ".into());
        fields.user_type = Some("1e5".into());
    });
    let mut numeric = aad_user(2);
    numeric.edit(|fields| {
        fields.id = "12345".into();
        fields.user_principal_name = "null".into();
        fields.display_name = Some("true".into());
    });
    let users = vec![odd.clone(), numeric.clone()];
    store
        .replace_azure_snapshot(&me(), "users", &users, None)
        .await
        .unwrap();
    let snap = store.load_azure_snapshot("users").await.unwrap().unwrap();
    assert_eq!(snap.users, sorted(users));
    store
        .apply_azure_delta(&me(), "users", &[odd.clone()], &["12345".to_string()], "l")
        .await
        .unwrap();
    let snap = store.load_azure_snapshot("users").await.unwrap().unwrap();
    assert_eq!(snap.users, vec![odd]);
}

/// The count `query` reads, straight from the database file (not through
/// the store).
async fn rows_of(path: &std::path::Path, query: &str) -> i64 {
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let n: i64 = sqlx::query_scalar(query).fetch_one(&pool).await.unwrap();
    pool.close().await;
    n
}

/// Deltas are kept as one row per changed user next to the pages, and
/// folded into new pages once they are many; either way the snapshot reads
/// back as the listing with every change applied.
#[tokio::test]
async fn deltas_stay_rows_until_they_are_many_then_fold_into_pages() {
    let (_dir, path, store) = fresh_locked_store().await;
    let mut expected: Vec<AadUser> = (0..12_000).map(aad_user).collect();
    store
        .replace_azure_snapshot(&me(), "users", &expected, Some("l0"))
        .await
        .unwrap();
    let pages = "SELECT count(*) FROM azure_user_pages WHERE scope = 'users'";
    let changes = "SELECT count(*) FROM azure_user_changes WHERE scope = 'users'";
    assert_eq!(rows_of(&path, pages).await, 3, "5,000 users per page");

    // A small delta: 50 updated, 20 removed, 30 added.
    let updated: Vec<AadUser> = (0..50)
        .map(|n| {
            let mut u = aad_user(n * 7);
            u.edit(|fields| fields.display_name = Some(format_compact!("Renamed {n}")));
            u
        })
        .chain((20_000..20_030).map(aad_user))
        .collect();
    let removed: Vec<String> = (0..20)
        .map(|n| aad_user(5_000 + n).id().to_string())
        .collect();
    store
        .apply_azure_delta(&me(), "users", &updated, &removed, "l1")
        .await
        .unwrap();
    expected.retain(|u| !removed.iter().any(|r| r.as_str() == u.id()));
    for u in &updated {
        match expected.iter_mut().find(|e| e.id() == u.id()) {
            Some(e) => *e = u.clone(),
            None => expected.push(u.clone()),
        }
    }
    let expected = sorted(expected);
    assert_eq!(
        rows_of(&path, changes).await,
        100,
        "one row per changed user"
    );
    let snap = store.load_azure_snapshot("users").await.unwrap().unwrap();
    assert_eq!(snap.users, expected);
    assert_eq!(snap.delta_link.as_deref(), Some("l1"));

    // 1,000 more changed users: 1,100 rows would be over 5 % of 12,010.
    let mut expected = expected;
    let more: Vec<AadUser> = expected
        .iter()
        .skip(3_000)
        .take(1_000)
        .map(|u| {
            let mut u = u.clone();
            u.edit(|fields| fields.account_enabled = !fields.account_enabled);
            u
        })
        .collect();
    store
        .apply_azure_delta(&me(), "users", &more, &[], "l2")
        .await
        .unwrap();
    for (e, m) in expected.iter_mut().skip(3_000).zip(&more) {
        *e = m.clone();
    }
    assert_eq!(rows_of(&path, changes).await, 0, "folded into the pages");
    assert_eq!(
        rows_of(
            &path,
            "SELECT sum(count) FROM azure_user_pages WHERE scope = 'users'"
        )
        .await,
        expected.len() as i64
    );
    let snap = store.load_azure_snapshot("users").await.unwrap().unwrap();
    assert_eq!(snap.users, expected);
    assert_eq!(snap.delta_link.as_deref(), Some("l2"));
}

/// Saves `users` snapshot users and a run of `findings` findings, checks
/// everything came back, and returns the timings.
async fn bulk(store: &SqliteStore, users: u64, findings: usize) -> Vec<(&'static str, f64)> {
    let mut timings = Vec::new();
    let all: Vec<AadUser> = (0..users).map(aad_user).collect();

    let t = Instant::now();
    store
        .replace_azure_snapshot(&me(), "users", &all, Some("link-1"))
        .await
        .unwrap();
    timings.push(("replace snapshot (empty before)", t.elapsed().as_secs_f64()));

    let t = Instant::now();
    store
        .replace_azure_snapshot(&me(), "users", &all, Some("link-2"))
        .await
        .unwrap();
    timings.push(("replace snapshot (full before)", t.elapsed().as_secs_f64()));

    let t = Instant::now();
    let snap = store.load_azure_snapshot("users").await.unwrap().unwrap();
    timings.push(("load snapshot", t.elapsed().as_secs_f64()));
    assert_eq!(snap.users.len() as u64, users);
    assert_eq!(snap.delta_link.as_deref(), Some("link-2"));
    let mut expected = all.clone();
    expected.sort_by(|a, b| a.id().cmp(b.id()));
    assert!(snap.users == expected, "snapshot differs after reload");

    // A delta touching 1% of the users.
    let step = 100;
    let upserts: Vec<AadUser> = (0..users)
        .step_by(step)
        .map(|n| {
            let mut u = aad_user(n);
            u.edit(|fields| fields.display_name = Some(format_compact!("Changed {n}")));
            u
        })
        .collect();
    let removed: Vec<String> = (1..users)
        .step_by(step)
        .map(|n| aad_user(n).id().into())
        .collect();
    let t = Instant::now();
    store
        .apply_azure_delta(&me(), "users", &upserts, &removed, "link-3")
        .await
        .unwrap();
    timings.push(("apply 1% delta", t.elapsed().as_secs_f64()));
    let snap = store.load_azure_snapshot("users").await.unwrap().unwrap();
    assert_eq!(snap.users.len() as u64, users - removed.len() as u64);

    let findings: Vec<Finding> = (0..findings)
        .map(|n| {
            let mut f = store_support::mismatch(
                aad_user(n as u64).id(),
                &format!("user{n}"),
                &format!("user{n}@contoso.com"),
            );
            if n % 7 == 0 {
                f.kind = FindingKind::MissingInFlow;
            }
            f
        })
        .collect();
    let run = store
        .begin_run(&me(), Trigger::Schedule, Mode::Report, at(0))
        .await
        .unwrap();
    let r = report(run, at(0), findings);
    let t = Instant::now();
    store.finish_run(&me(), &r).await.unwrap();
    timings.push(("finish_run (findings)", t.elapsed().as_secs_f64()));

    let t = Instant::now();
    let loaded = store.load_report(run).await.unwrap().unwrap();
    timings.push(("load_report", t.elapsed().as_secs_f64()));
    assert!(loaded == r, "report differs after reload");

    let next = store
        .begin_run(&me(), Trigger::Schedule, Mode::Report, at(100))
        .await
        .unwrap();
    let t = Instant::now();
    let (prev, keys) = store.previous_open_findings(next).await.unwrap().unwrap();
    timings.push(("previous_open_findings", t.elapsed().as_secs_f64()));
    assert_eq!(prev, run);
    assert_eq!(keys.len(), r.findings.len());
    timings
}

/// Crosses statement boundaries (10,000 users per snapshot batch, 10,000
/// findings per INSERT).
#[tokio::test]
async fn bulk_snapshot_and_findings_round_trip() {
    let (_dir, _path, store) = fresh_locked_store().await;
    for (what, secs) in bulk(&store, 20_011, 12_003).await {
        println!("{what:<34} {secs:>8.3} s");
    }
}

/// Full scale: `cargo test --test store_snapshot -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "full-scale timing (1,000,000 users, 200,000 findings); slow in debug builds"]
async fn bulk_timing_one_million_users_200k_findings() {
    let (_dir, path, store) = fresh_locked_store().await;
    let timings = bulk(&store, 1_000_000, 200_000).await;
    for (what, secs) in &timings {
        println!("{what:<34} {secs:>8.2} s");
    }
    store.close().await;
    let size = std::fs::metadata(&path).unwrap().len();
    println!("database file size {:.1} MiB", size as f64 / 1048576.0);
}
