//! `reconcile --apply` against the real simulator and a real SQLite store:
//! what gets renamed (and to what), what never does, the safety limits,
//! incomplete sources, single failures, and what the report, the JSON and
//! `history` say about it.

use crate::fix_support;

use compact_str::CompactString;
use fix_support::*;
use idrecon::commands::exit_code_for;
use idrecon::error::ExitCode;
use idrecon::model::{
    ActionKind, ActionStatus, FindingKind, FindingStatus, FlowUser, FlowUserFields,
};
use idrecon::report::{Format, Mode, RunStatus};
use idrecon::store::{JournalState, Store};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

const PEOPLE: usize = 2000;
const SEED: u64 = 7;

fn by_id(users: &[FlowUser]) -> HashMap<CompactString, FlowUser> {
    users
        .iter()
        .map(|u| (u.user_id().into(), u.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_renames_each_mismatch_to_the_exact_directory_id_and_nothing_else() {
    let env = fix_app(PEOPLE, SEED, "", Tweaks::default()).await;
    let original = env.handle.flow_users();

    let before = env.report_only().await;
    assert_eq!(before.status, RunStatus::Completed);
    // The generator's own account of the tenant is the oracle.
    let mismatch_keys = expected_keys(&env.generated, FindingKind::IdMismatch);
    assert!(mismatch_keys.len() >= 50, "tenant too small to mean much");
    assert_eq!(
        finding_keys(&before, FindingKind::IdMismatch),
        mismatch_keys
    );
    let renames = planned_renames(&before);
    assert_eq!(renames.len(), mismatch_keys.len(), "every mismatch planned");
    assert_eq!(env.writes(), (0, 0), "report mode writes nothing");

    let applied = env.apply(Some(10_000)).await;
    assert_eq!(
        applied.status,
        RunStatus::Completed,
        "{:?}",
        applied.abort_reason
    );
    assert_eq!(applied.mode, Mode::Apply);
    assert_eq!(
        planned_renames(&before),
        applied
            .actions
            .iter()
            .filter(|a| a.kind == ActionKind::Rename)
            .map(|a| (a.flow_user_id.clone(), a.new_flow_user_id.clone().unwrap()))
            .collect::<Vec<_>>(),
        "the apply run planned the same renames in the same order"
    );
    for a in &applied.actions {
        match a.kind {
            ActionKind::Rename => assert_eq!(a.status, ActionStatus::Applied, "{a:?}"),
            ActionKind::Deactivate => {
                assert_eq!(a.status, ActionStatus::Skipped, "{a:?}");
                assert!(a
                    .error
                    .as_deref()
                    .unwrap_or("")
                    .contains("deactivate_orphans"));
            }
            ActionKind::None => {}
        }
    }
    assert_eq!(
        env.writes(),
        (renames.len() as u64, 0),
        "one rename per mismatch, no deactivation without fix.deactivate_orphans"
    );

    // Flow now is exactly the old Flow with those renames, nothing else changed.
    assert_eq!(
        sorted(env.handle.flow_users()),
        renamed(&original, &renames)
    );
    // Each target is the IFS Directory ID as IFS stores it (raw, original casing).
    let ifs: HashMap<CompactString, Option<CompactString>> = env
        .handle
        .ifs_users()
        .into_iter()
        .map(|u| (u.identity().into(), u.directory_id().map(Into::into)))
        .collect();
    let now = by_id(&env.handle.flow_users());
    for f in before
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::IdMismatch)
    {
        let identity = f.ifs_identity.as_deref().expect("mismatch has an IFS user");
        let directory_id = ifs[identity].clone().expect("IFS user has a Directory ID");
        assert!(
            now.contains_key(directory_id.as_str()),
            "Flow has no user '{directory_id}' (IFS {identity})"
        );
        assert_eq!(env.handle.rename_count(&directory_id), 1);
        let old = f.flow_user_id.as_deref().unwrap();
        assert!(!now.contains_key(old) || old == directory_id);
    }
    // AD-synced Flow users are never touched.
    let synced: Vec<&FlowUser> = original
        .iter()
        .filter(|u| u.sync_source().is_some())
        .collect();
    assert!(!synced.is_empty());
    for u in synced {
        assert_eq!(env.handle.rename_count(u.user_id()), 0, "{}", u.user_id());
        assert_eq!(now.get(u.user_id()), Some(u), "synced user changed");
    }
    assert!(before
        .findings
        .iter()
        .any(|f| f.kind == FindingKind::SyncManaged));
    // A conflict (a machine user holds the person's Directory ID) plans no
    // rename, and --apply renames nothing into (or out of) the machine user's ID.
    let conflicts: Vec<_> = before
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::Conflict)
        .collect();
    assert_eq!(
        finding_keys(&before, FindingKind::Conflict),
        expected_keys(&env.generated, FindingKind::Conflict)
    );
    assert!(!conflicts.is_empty(), "the tenant has a conflict");
    for f in conflicts {
        assert_eq!(f.action, ActionKind::None, "{f:?}");
        assert_eq!(f.action_status, None, "{f:?}");
        let target = f.expected_flow_user_id.clone().expect("expected ID");
        let own = f.flow_user_id.clone().expect("own Flow user");
        let holder = original
            .iter()
            .find(|u| u.user_id().eq_ignore_ascii_case(&target))
            .expect("someone holds the expected ID");
        assert!(holder.is_machine(), "{holder:?}");
        assert!(
            applied.actions.iter().all(|a| a.flow_user_id != own
                && a.flow_user_id != holder.user_id()
                && !a
                    .new_flow_user_id
                    .as_deref()
                    .is_some_and(|t| t.eq_ignore_ascii_case(&target))),
            "{:?}",
            applied.actions
        );
        assert_eq!(env.handle.rename_count(holder.user_id()), 0);
        assert_eq!(env.handle.rename_count(&own), 0);
        assert_eq!(
            now.get(holder.user_id()),
            Some(holder),
            "machine user changed"
        );
        assert!(
            now.contains_key(own.as_str()),
            "{own} still has its drifted ID"
        );
    }

    // The JSON report and the stored report carry each action's status.
    let json: serde_json::Value =
        serde_json::from_str(&idrecon::report::render(&applied, Format::Json).unwrap()).unwrap();
    let statuses: Vec<(&str, &str)> = json["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["kind"].as_str().unwrap(), a["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == ("rename", "applied"))
            .count(),
        renames.len()
    );
    for f in json["findings"].as_array().unwrap() {
        if f["kind"] == "id_mismatch" {
            assert_eq!(f["action_status"], "applied", "{f}");
        }
    }
    let store = env.store().await;
    let stored = store.load_report(applied.run_id).await.unwrap().unwrap();
    assert_eq!(stored.actions, applied.actions);
    // The journal: one applied entry per rename, nothing pending.
    let journal = store.journal_for_run(applied.run_id).await.unwrap();
    assert_eq!(journal.len(), renames.len());
    assert!(journal.iter().all(|e| e.state == JournalState::Applied));
    store.close().await;

    // A report-only run afterwards: no mismatch left, the rest persisting.
    let after = env.report_only().await;
    assert_eq!(
        finding_keys(&after, FindingKind::IdMismatch),
        Vec::<String>::new()
    );
    assert_eq!(after.summary.resolved_since_last_run, renames.len() as u64);
    assert_eq!(after.summary.new, 0);
    assert_eq!(after.summary.persisting, after.findings.len() as u64);
    assert_eq!(
        after.findings.len(),
        before.findings.len() - renames.len(),
        "only the mismatches went away"
    );
    assert_eq!(env.writes(), (renames.len() as u64, 0));
    env.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deactivate_orphans_deactivates_exactly_the_orphans() {
    let tweaks = Tweaks {
        deactivate_orphans: true,
        ..Tweaks::default()
    };
    let env = fix_app(PEOPLE, SEED, "", tweaks).await;
    let original = env.handle.flow_users();
    let before = env.report_only().await;
    let renames = planned_renames(&before);
    let deactivations: Vec<String> =
        actions_of(&before, ActionKind::Deactivate, ActionStatus::Planned)
            .into_iter()
            .map(|a| a.flow_user_id)
            .collect();
    // Every orphan finding with an active Flow user, and nothing else.
    let active_before = by_id(&original);
    let mut orphans: Vec<String> = before
        .findings
        .iter()
        .filter(|f| {
            matches!(
                f.kind,
                FindingKind::DisabledInAzure | FindingKind::NotInAzure
            )
        })
        .filter_map(|f| f.flow_user_id.clone())
        .filter(|id| active_before[id.as_str()].active())
        .collect();
    orphans.sort();
    assert!(!orphans.is_empty());
    let mut planned = deactivations.clone();
    planned.sort();
    assert_eq!(planned, orphans);
    for id in &deactivations {
        assert!(
            active_before[id.as_str()].active(),
            "{id} is already inactive"
        );
    }

    let applied = env.apply(Some(10_000)).await;
    assert_eq!(
        applied.status,
        RunStatus::Completed,
        "{:?}",
        applied.abort_reason
    );
    assert_eq!(
        env.writes(),
        (renames.len() as u64, deactivations.len() as u64)
    );
    let mut expected = renamed(&original, &renames);
    let gone: HashSet<&str> = deactivations.iter().map(String::as_str).collect();
    for u in &mut expected {
        if gone.contains(u.user_id()) {
            u.edit(|fields| fields.active = false);
        }
    }
    assert_eq!(sorted(env.handle.flow_users()), expected);
    for id in &deactivations {
        assert_eq!(env.handle.deactivate_count(id), 1, "{id}");
    }
    assert!(applied
        .actions
        .iter()
        .filter(|a| a.kind == ActionKind::Deactivate)
        .all(|a| a.status == ActionStatus::Applied));

    let after = env.report_only().await;
    assert!(after
        .findings
        .iter()
        .all(|f| f.kind != FindingKind::IdMismatch && f.kind != FindingKind::DisabledInAzure));
    env.sim.shutdown().await;
}

/// The number the abort reason suggests for `--max-changes`.
fn suggested_max_changes(reason: &str) -> u32 {
    let tail = reason
        .split("--apply --max-changes ")
        .nth(1)
        .expect("reason names --max-changes");
    tail.trim_end_matches(|c: char| !c.is_ascii_digit())
        .parse()
        .expect("a number follows --max-changes")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_max_changes_nothing_is_applied_and_the_reason_says_how_to_allow_it() {
    let tweaks = Tweaks {
        max_changes: Some(25),
        max_change_percent: Some(100.0),
        ..Tweaks::default()
    };
    let env = fix_app(PEOPLE, SEED, "", tweaks).await;
    let before = env.report_only().await;
    let changes = planned_renames(&before).len();
    assert!(changes > 25);
    // Report mode is not stopped by the limit, but says applying would be.
    assert_eq!(before.status, RunStatus::Completed);
    assert!(
        before
            .advice
            .iter()
            .any(|a| a.contains(&format!("--apply --max-changes {changes}"))),
        "{:?}",
        before.advice
    );

    let report = env.apply(None).await;
    assert_eq!(report.status, RunStatus::Aborted);
    assert_eq!(exit_code_for(&report), ExitCode::Aborted);
    let reason = report.abort_reason.clone().unwrap();
    assert!(reason.contains("fix.max_changes = 25"), "{reason}");
    assert!(!reason.contains("max_change_percent ="), "{reason}");
    assert_eq!(suggested_max_changes(&reason), changes as u32);
    assert_eq!(env.writes(), (0, 0));
    assert!(!report.actions.is_empty());
    assert!(
        report
            .actions
            .iter()
            .all(|a| a.status == ActionStatus::Skipped),
        "every action skipped"
    );
    assert!(env.journal().await.is_empty(), "nothing journalled");

    // The real binary: exit 4, the reason on stderr.
    let out = env.binary(&["reconcile", "--apply", "--format", "json"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("--max-changes"));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["status"], "aborted");
    assert_eq!(env.writes(), (0, 0));

    // Doing what the reason says works, and applies exactly that many.
    let allowed = env.apply(Some(suggested_max_changes(&reason))).await;
    assert_eq!(
        allowed.status,
        RunStatus::Completed,
        "{:?}",
        allowed.abort_reason
    );
    assert_eq!(env.writes(), (changes as u64, 0));
    env.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_max_change_percent_nothing_is_applied() {
    let tweaks = Tweaks {
        max_changes: Some(10_000),
        max_change_percent: Some(1.0),
        ..Tweaks::default()
    };
    let env = fix_app(PEOPLE, SEED, "", tweaks).await;
    let report = env.apply(None).await;
    assert_eq!(report.status, RunStatus::Aborted);
    assert_eq!(exit_code_for(&report), ExitCode::Aborted);
    let reason = report.abort_reason.clone().unwrap();
    assert!(reason.contains("fix.max_change_percent = 1"), "{reason}");
    assert!(!reason.contains("fix.max_changes ="), "{reason}");
    assert!(reason.contains("--max-changes"), "{reason}");
    assert_eq!(env.writes(), (0, 0));
    assert!(report
        .actions
        .iter()
        .all(|a| a.status == ActionStatus::Skipped));
    // The stored run says so too, and history counts no applied action.
    let store = env.store().await;
    let runs = store.list_runs(10).await.unwrap();
    assert_eq!(runs[0].status.as_str(), "aborted");
    assert_eq!(runs[0].actions_applied, 0);
    store.close().await;
    env.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incomplete_source_never_leads_to_a_write() {
    for fault in ["ifs:500x*", "flow:503@2x*", "graph:drop@2x*"] {
        let env = fix_app(PEOPLE, SEED, fault, Tweaks::default()).await;
        let report = env.apply(Some(10_000)).await;
        assert_eq!(report.status, RunStatus::Aborted, "{fault}");
        assert_eq!(exit_code_for(&report), ExitCode::Aborted, "{fault}");
        let reason = report.abort_reason.clone().unwrap();
        assert!(
            reason.contains("incomplete source data"),
            "{fault}: {reason}"
        );
        assert!(report.actions.is_empty(), "{fault}: nothing concluded");
        assert!(report.findings.is_empty(), "{fault}: nothing concluded");
        assert_eq!(env.writes(), (0, 0), "{fault}");
        assert_eq!(env.handle.request_count("/flow/users/"), 0, "{fault}");
        assert!(env.journal().await.is_empty(), "{fault}");
        env.sim.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_refused_action_fails_with_flows_message_and_the_others_go_on() {
    // The first write is slow, so Flow can change under the running apply.
    let env = fix_app(PEOPLE, SEED, "flow-write:slow=400@1", Tweaks::default()).await;
    let original = env.handle.flow_users();
    let before = env.report_only().await;
    let renames = planned_renames(&before);
    assert!(renames.len() > 10);
    // Someone takes the target of the 4th rename, and removes the source of the 6th.
    let (taken_from, taken_to) = renames[3].clone();
    let (gone_from, _) = renames[5].clone();

    let handle = env.handle.clone();
    let (intruder_to, gone) = (taken_to.clone(), gone_from.clone());
    let meddler = tokio::spawn(async move {
        while handle.request_count("/flow/users/rename") == 0 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        handle.update_flow(|users| {
            users.retain(|u| u.user_id() != gone);
            users.push(FlowUser::from(FlowUserFields {
                user_id: intruder_to.into(),
                name: Some("Someone Else".into()),
                email: None,
                active: true,
                user_type: "Full".into(),
                sync_source: None,
            }));
        });
    });
    let report = env.apply(Some(10_000)).await;
    meddler.await.unwrap();

    assert_eq!(
        report.status,
        RunStatus::Completed,
        "{:?}",
        report.abort_reason
    );
    assert_eq!(exit_code_for(&report), ExitCode::FindingsOpen);
    let rename_actions: Vec<_> = report
        .actions
        .iter()
        .filter(|a| a.kind == ActionKind::Rename)
        .collect();
    let failed: Vec<_> = rename_actions
        .iter()
        .filter(|a| a.status == ActionStatus::Failed)
        .collect();
    assert_eq!(failed.len(), 2, "{failed:?}");
    let conflict = failed
        .iter()
        .find(|a| a.flow_user_id == taken_from)
        .expect("the rename into the taken ID failed");
    // Ours, then Flow's own message (the simulator's 409/404 `error` text).
    assert_eq!(
        conflict.error.as_deref().unwrap(),
        format!(
            "Flow: user ID {taken_to} is already taken \
             (Flow said: \"user ID '{taken_to}' is already taken\")"
        ),
        "{conflict:?}"
    );
    let missing = failed
        .iter()
        .find(|a| a.flow_user_id == gone_from)
        .expect("the rename of the removed user failed");
    assert_eq!(
        missing.error.as_deref().unwrap(),
        format!("Flow: user {gone_from} not found (Flow said: \"user '{gone_from}' not found\")"),
        "{missing:?}"
    );
    assert_eq!(
        rename_actions
            .iter()
            .filter(|a| a.status == ActionStatus::Applied)
            .count(),
        renames.len() - 2
    );
    assert_eq!(env.writes().0, renames.len() as u64 - 2);
    // Flow holds every other rename; the two refused ones left as they were.
    let ok: Vec<(String, String)> = renames
        .iter()
        .filter(|(f, _)| *f != taken_from && *f != gone_from)
        .cloned()
        .collect();
    let now = by_id(&env.handle.flow_users());
    for (from, to) in &ok {
        assert!(
            now.contains_key(to.as_str()) && !now.contains_key(from.as_str()),
            "{from} -> {to}"
        );
    }
    assert!(now.contains_key(taken_from.as_str()));
    assert_eq!(now[taken_to.as_str()].name(), Some("Someone Else"));
    assert_eq!(original.len(), now.len());
    // The finding carries the refusal too.
    let finding = report
        .findings
        .iter()
        .find(|f| f.flow_user_id.as_deref() == Some(taken_from.as_str()))
        .unwrap();
    assert_eq!(finding.action_status, Some(ActionStatus::Failed));
    assert!(
        finding.detail.contains(&format!(
            "(Flow said: \"user ID '{taken_to}' is already taken\")"
        )),
        "{}",
        finding.detail
    );

    // The journal agrees, with Flow's error.
    let journal = env.journal().await;
    assert_eq!(in_state(&journal, JournalState::Pending).len(), 0);
    let journal_failed = in_state(&journal, JournalState::Failed);
    assert_eq!(journal_failed.len(), 2);
    assert!(journal_failed
        .iter()
        .any(|e| e.action.flow_user_id == taken_from
            && e.error
                .as_deref()
                .unwrap()
                .contains("Flow said: \"user ID '")));
    assert_eq!(
        in_state(&journal, JournalState::Applied).len(),
        renames.len() - 2
    );

    // `idrecon history` shows the counts of the apply run.
    let out = env.binary(&["history", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let runs: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let run = runs
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == report.run_id)
        .unwrap();
    assert_eq!(run["mode"], "apply");
    assert_eq!(run["actions_applied"], renames.len() as u64 - 2);
    assert_eq!(run["actions_failed"], 2);
    // The table (80 columns off a terminal): the run's first line holds its
    // counts in the "actions applied/failed" column.
    let table = stdout(&env.binary(&["history", "--format", "table"]));
    let header: Vec<String> = table
        .lines()
        .nth(1)
        .unwrap()
        .split('┆')
        .map(|c| {
            c.trim_matches(|c: char| c == '│' || c.is_whitespace())
                .to_string()
        })
        .collect();
    assert_eq!(header.len(), 8, "{table}");
    let cells: Vec<String> = table
        .lines()
        .find(|l| l.starts_with(&format!("│ {} ", report.run_id)))
        .unwrap_or_else(|| panic!("the apply run in the table:\n{table}"))
        .split('┆')
        .map(|c| {
            c.trim_matches(|c: char| c == '│' || c.is_whitespace())
                .to_string()
        })
        .collect();
    assert_eq!(cells[6], format!("{}/2", renames.len() - 2), "{table}");
    // The next run still reports the person whose rename was refused.
    let after = env.report_only().await;
    assert!(after
        .findings
        .iter()
        .any(|f| f.flow_user_id.as_deref() == Some(taken_from.as_str())));
    assert!(after
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::IdMismatch)
        .all(|f| f.status == FindingStatus::Persisting));
    env.sim.shutdown().await;
}
