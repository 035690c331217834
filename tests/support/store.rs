//! Shared helpers of the store tests: a store on a fresh file in a temp
//! directory, and builders for reports, findings, actions and Azure users.

use chrono::{DateTime, TimeZone, Utc};
use compact_str::format_compact;
use idrecon::model::{
    AadUser, AadUserFields, Action, ActionKind, ActionStatus, Cause, Finding, FindingKind,
    FindingStatus,
};
use idrecon::report::{
    Mode, Report, RunStatus, SourceSummary, SourcesSummary, Summary, Trigger, SCHEMA_VERSION,
};
use idrecon::store::{LockHolder, SqliteStore, Store};
use std::collections::BTreeMap;
use std::path::PathBuf;
use tempfile::TempDir;

/// A store on `<tempdir>/idrecon.db`; keep the `TempDir` alive as long as the store.
pub async fn fresh_store() -> (TempDir, PathBuf, SqliteStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("idrecon.db");
    let store = SqliteStore::open(&format!("sqlite://{}", path.display()))
        .await
        .expect("open store");
    (dir, path, store)
}

/// The lock holder of this test process (every holder of one process shares
/// its instance ID, so any label owns what another label of it took).
pub fn me() -> LockHolder {
    LockHolder::current("store test")
}

/// [`fresh_store`] with the run lock held by [`me`], as a run holds it
/// while it writes.
pub async fn fresh_locked_store() -> (TempDir, PathBuf, SqliteStore) {
    let (dir, path, store) = fresh_store().await;
    store
        .acquire_lock(&me(), at(0), chrono::Duration::days(365))
        .await
        .expect("take the run lock");
    (dir, path, store)
}

/// A fixed instant with sub-second precision, `secs` after a base time.
pub fn at(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 2, 0, 0).unwrap()
        + chrono::Duration::seconds(secs)
        + chrono::Duration::nanoseconds(123_456_789)
}

/// An `id_mismatch` finding for the Azure user `aad_id`.
pub fn mismatch(aad_id: &str, flow_id: &str, directory_id: &str) -> Finding {
    let mut f = Finding::new(FindingKind::IdMismatch);
    f.cause = Some(Cause::DomainStripped);
    f.aad_id = Some(aad_id.to_string());
    f.upn = Some(directory_id.to_string());
    f.display_name = Some(format!("Person {aad_id}"));
    f.ifs_identity = Some(aad_id.to_ascii_uppercase());
    f.ifs_directory_id = Some(directory_id.to_string());
    f.flow_user_id = Some(flow_id.to_string());
    f.expected_flow_user_id = Some(directory_id.to_string());
    f.action = ActionKind::Rename;
    f.action_status = Some(ActionStatus::Planned);
    f.detail = format!("Flow ID {flow_id} differs from Directory ID {directory_id}");
    f
}

pub fn rename(from: &str, to: &str, status: ActionStatus) -> Action {
    Action {
        kind: ActionKind::Rename,
        flow_user_id: from.to_string(),
        new_flow_user_id: Some(to.to_string()),
        status,
        error: None,
    }
}

/// A completed report of `run_id` whose summary counts match `findings`.
pub fn report(run_id: i64, started_at: DateTime<Utc>, findings: Vec<Finding>) -> Report {
    let mut by_kind = BTreeMap::new();
    let mut by_cause = BTreeMap::new();
    for f in &findings {
        *by_kind.entry(f.kind).or_insert(0u64) += 1;
        if let Some(c) = f.cause {
            *by_cause.entry(c).or_insert(0u64) += 1;
        }
    }
    let new = findings
        .iter()
        .filter(|f| f.status == FindingStatus::New)
        .count() as u64;
    let total = findings.len() as u64;
    Report {
        schema_version: SCHEMA_VERSION,
        run_id,
        trigger: Trigger::Manual,
        mode: Mode::Report,
        status: RunStatus::Completed,
        abort_reason: None,
        started_at,
        finished_at: Some(started_at + chrono::Duration::seconds(42)),
        sources: SourcesSummary {
            azure: SourceSummary {
                users: 1200,
                complete: true,
                delta: Some(false),
            },
            ifs: SourceSummary {
                users: 1100,
                complete: true,
                delta: None,
            },
            flow: SourceSummary {
                users: 1000,
                complete: true,
                delta: None,
            },
        },
        summary: Summary {
            people: 1250 + total,
            ok: 1250,
            findings: total,
            by_kind,
            by_cause,
            new,
            persisting: total - new,
            resolved_since_last_run: 0,
        },
        advice: vec![],
        findings,
        actions: vec![],
    }
}

/// An enabled member user with every field set.
pub fn aad_user(n: u64) -> AadUser {
    AadUser::from(AadUserFields {
        id: format_compact!("{n:08x}-0000-4000-8000-{n:012x}"),
        user_principal_name: format_compact!("user{n}@contoso.com"),
        mail: Some(format_compact!("User{n}@contoso.com")),
        display_name: Some(format_compact!("User Number {n}")),
        account_enabled: n % 17 != 0,
        employee_id: Some(format_compact!("E{n:07}")),
        on_premises_sam_account_name: (n % 3 == 0).then(|| format_compact!("user{n}")),
        user_type: Some(if n % 50 == 0 { "Guest" } else { "Member" }.into()),
    })
}
