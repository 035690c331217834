//! A run that lost its lock (its heartbeat went stale and the next run took
//! over) writes nothing: every write checks ownership in its transaction.

use crate::store_support;

use idrecon::model::ActionStatus;
use idrecon::report::{Mode, Trigger};
use idrecon::store::{JournalState, LockHolder, Store, StoreError, HEARTBEAT_STALE_AFTER};
use store_support::{aad_user, at, fresh_store, rename, report};

fn lost(err: StoreError) {
    assert!(matches!(err, StoreError::LockLost { .. }), "{err:?}");
    assert!(err.to_string().contains("instance next-run"), "{err}");
}

#[tokio::test]
async fn a_run_that_lost_its_lock_cannot_write_over_the_next_run() {
    let (_dir, _path, store) = fresh_store().await;
    let old = LockHolder::current("scheduled run");
    store
        .acquire_lock(&old, at(0), chrono::Duration::hours(1))
        .await
        .unwrap();
    let old_run = store
        .begin_run(&old, Trigger::Schedule, Mode::Apply, at(0))
        .await
        .unwrap();
    let old_users: Vec<_> = (0..5).map(aad_user).collect();
    let entry = store
        .journal_pending(
            &old,
            old_run,
            0,
            &rename("a", "b", ActionStatus::Planned),
            at(1),
        )
        .await
        .unwrap();

    // The old run hangs; its heartbeat goes stale and the next run takes over.
    let next = LockHolder {
        instance_id: "next-run".into(),
        pid: 1,
        host: old.host.clone(),
        label: "reconcile".into(),
    };
    let later = at(HEARTBEAT_STALE_AFTER.as_secs() as i64 + 1);
    store
        .acquire_lock(&next, later, chrono::Duration::hours(1))
        .await
        .unwrap();
    let next_users: Vec<_> = (10..20).map(aad_user).collect();
    store
        .replace_azure_snapshot(&next, "users", &next_users, Some("next-link"))
        .await
        .unwrap();

    // The old run wakes up: each of its writes is refused.
    lost(
        store
            .replace_azure_snapshot(&old, "users", &old_users, Some("old-link"))
            .await
            .unwrap_err(),
    );
    lost(
        store
            .apply_azure_delta(&old, "users", &old_users, &[], "old-link")
            .await
            .unwrap_err(),
    );
    lost(store.clear_azure_snapshot(&old, "users").await.unwrap_err());
    lost(
        store
            .journal_pending(
                &old,
                old_run,
                1,
                &rename("c", "d", ActionStatus::Planned),
                later,
            )
            .await
            .unwrap_err(),
    );
    lost(
        store
            .journal_finish(&old, entry, JournalState::Applied, None, later)
            .await
            .unwrap_err(),
    );
    lost(
        store
            .finish_run(&old, &report(old_run, at(0), vec![]))
            .await
            .unwrap_err(),
    );
    lost(
        store
            .set_run_person(&old, old_run, "someone")
            .await
            .unwrap_err(),
    );
    lost(
        store
            .close_interrupted_runs(&old, old_run + 1, "x", later)
            .await
            .unwrap_err(),
    );
    lost(
        store
            .begin_run(&old, Trigger::Schedule, Mode::Apply, later)
            .await
            .unwrap_err(),
    );

    // The next run's snapshot and the journal are as the next run left them.
    let snap = store.load_azure_snapshot("users").await.unwrap().unwrap();
    assert_eq!(snap.users, next_users);
    assert_eq!(snap.delta_link.as_deref(), Some("next-link"));
    let journal = store.journal_for_run(old_run).await.unwrap();
    assert_eq!(journal.len(), 1);
    assert_eq!(journal[0].state, JournalState::Pending);
    assert_eq!(store.list_runs(10).await.unwrap().len(), 1);
}
