//! The action journal: pending before sending, applied/failed after, and
//! pending entries found again after a crash.

use crate::store_support;

use idrecon::model::{Action, ActionKind, ActionStatus};
use idrecon::report::{Mode, Trigger};
use idrecon::store::{JournalState, SqliteStore, Store, StoreError};
use store_support::{at, fresh_locked_store, me, rename};

#[tokio::test]
async fn pending_then_applied_or_failed() {
    let (_dir, _path, store) = fresh_locked_store().await;
    let run = store
        .begin_run(&me(), Trigger::Manual, Mode::Apply, at(0))
        .await
        .unwrap();
    let first = rename("jdoe", "jdoe@contoso.com", ActionStatus::Planned);
    let second = Action {
        kind: ActionKind::Deactivate,
        flow_user_id: "gone".into(),
        new_flow_user_id: None,
        status: ActionStatus::Planned,
        error: None,
    };
    let id1 = store
        .journal_pending(&me(), run, 0, &first, at(1))
        .await
        .unwrap();
    let id2 = store
        .journal_pending(&me(), run, 1, &second, at(2))
        .await
        .unwrap();
    assert!(id2 > id1);
    assert_eq!(store.pending_journal().await.unwrap().len(), 2);

    store
        .journal_finish(&me(), id1, JournalState::Applied, None, at(3))
        .await
        .unwrap();
    store
        .journal_finish(
            &me(),
            id2,
            JournalState::Failed,
            Some("HTTP 409: taken"),
            at(4),
        )
        .await
        .unwrap();
    assert!(store.pending_journal().await.unwrap().is_empty());

    let entries = store.journal_for_run(run).await.unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].id, id1);
    assert_eq!(entries[0].seq, 0);
    assert_eq!(entries[0].action, first);
    assert_eq!(entries[0].state, JournalState::Applied);
    assert_eq!(entries[0].error, None);
    assert_eq!(entries[0].created_at, at(1));
    assert_eq!(entries[0].finished_at, Some(at(3)));
    assert_eq!(entries[1].action, second);
    assert_eq!(entries[1].state, JournalState::Failed);
    assert_eq!(entries[1].error.as_deref(), Some("HTTP 409: taken"));
    assert_eq!(entries[1].finished_at, Some(at(4)));
}

#[tokio::test]
async fn pending_entries_survive_a_crash() {
    let (_dir, path, store) = fresh_locked_store().await;
    let run1 = store
        .begin_run(&me(), Trigger::Schedule, Mode::Apply, at(0))
        .await
        .unwrap();
    let run2 = store
        .begin_run(&me(), Trigger::Schedule, Mode::Apply, at(10))
        .await
        .unwrap();
    let done = store
        .journal_pending(
            &me(),
            run1,
            0,
            &rename("a", "a@c.com", ActionStatus::Planned),
            at(1),
        )
        .await
        .unwrap();
    store
        .journal_finish(&me(), done, JournalState::Applied, None, at(2))
        .await
        .unwrap();
    let stuck1 = store
        .journal_pending(
            &me(),
            run1,
            1,
            &rename("b", "b@c.com", ActionStatus::Planned),
            at(3),
        )
        .await
        .unwrap();
    let stuck2 = store
        .journal_pending(
            &me(),
            run2,
            0,
            &rename("c", "c@c.com", ActionStatus::Planned),
            at(11),
        )
        .await
        .unwrap();
    // Crash: no finish_run, no close; the process just lets go of the store.
    drop(store);

    let reopened = SqliteStore::open(path.to_str().unwrap()).await.unwrap();
    let pending = reopened.pending_journal().await.unwrap();
    let ids: Vec<i64> = pending.iter().map(|e| e.id).collect();
    assert_eq!(ids, vec![stuck1, stuck2]);
    assert_eq!(pending[0].run_id, run1);
    assert_eq!(pending[0].state, JournalState::Pending);
    assert_eq!(pending[0].finished_at, None);
    assert_eq!(pending[0].action.flow_user_id, "b");
    assert_eq!(pending[1].run_id, run2);

    // Resume: verify and settle them; nothing is pending any more.
    reopened
        .journal_finish(&me(), stuck1, JournalState::Applied, None, at(20))
        .await
        .unwrap();
    reopened
        .journal_finish(
            &me(),
            stuck2,
            JournalState::Failed,
            Some("user gone"),
            at(21),
        )
        .await
        .unwrap();
    assert!(reopened.pending_journal().await.unwrap().is_empty());
}

/// Set for the child process of `pending_entry_survives_a_killed_process`.
const CHILD_DB_ENV: &str = "IDRECON_STORE_TEST_CHILD_DB";

/// Run only as a child process: journals one action and dies on the spot
/// (SIGABRT: no destructors, no close, no checkpoint).
#[tokio::test]
#[ignore = "helper process of pending_entry_survives_a_killed_process"]
async fn child_journals_then_aborts() {
    let path = std::env::var(CHILD_DB_ENV).expect("run by the parent test only");
    let store = SqliteStore::open(&path).await.unwrap();
    store
        .acquire_lock(&me(), at(0), chrono::Duration::hours(1))
        .await
        .unwrap();
    let run = store
        .begin_run(&me(), Trigger::Schedule, Mode::Apply, at(0))
        .await
        .unwrap();
    store
        .journal_pending(
            &me(),
            run,
            0,
            &rename("jdoe", "jdoe@contoso.com", ActionStatus::Planned),
            at(1),
        )
        .await
        .unwrap();
    std::process::abort();
}

#[tokio::test]
async fn pending_entry_survives_a_killed_process() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("idrecon.db");
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "journal::child_journals_then_aborts",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env(CHILD_DB_ENV, &path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success(), "the child should have died: {status:?}");

    let store = SqliteStore::open(path.to_str().unwrap()).await.unwrap();
    let pending = store.pending_journal().await.unwrap();
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(pending[0].action.flow_user_id, "jdoe");
    assert_eq!(
        pending[0].action.new_flow_user_id.as_deref(),
        Some("jdoe@contoso.com")
    );
    assert_eq!(pending[0].state, JournalState::Pending);
}

#[tokio::test]
async fn journal_for_unknown_run_or_entry_is_an_error() {
    let (_dir, _path, store) = fresh_locked_store().await;
    let err = store
        .journal_pending(
            &me(),
            77,
            0,
            &rename("a", "b", ActionStatus::Planned),
            at(0),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::RunNotFound(77)), "{err:?}");
    let err = store
        .journal_finish(&me(), 5, JournalState::Applied, None, at(0))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::JournalEntryNotFound(5)),
        "{err:?}"
    );
}
