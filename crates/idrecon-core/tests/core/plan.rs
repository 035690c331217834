//! Planning (docs/semantics.md §7): actions, order, blocking, thresholds.

use crate::common as core_common;

use core_common::*;
use idrecon_core::model::{ActionKind, ActionStatus, Finding, FindingKind, FlowUser};
use idrecon_core::reconcile::{plan, reconcile, MatchOptions, PlanOptions};

fn open() -> PlanOptions {
    PlanOptions {
        max_changes: 1000,
        max_change_percent: 100.0,
        ..PlanOptions::default()
    }
}

fn users(ids: &[&str]) -> Vec<FlowUser> {
    ids.iter().map(|id| flow(id)).collect()
}

fn planned(p: &idrecon_core::reconcile::Plan) -> Vec<(String, Option<String>)> {
    p.executable()
        .map(|a| (a.flow_user_id.clone(), a.new_flow_user_id.clone()))
        .collect()
}

#[test]
fn id_mismatch_becomes_a_rename_to_the_raw_directory_id() {
    let s = snap(
        vec![az("a1", "jdoe@contoso.com")],
        vec![ifs("JDOE", "JDoe@Contoso.com")],
        vec![flow("jdoe")],
    );
    let mut findings = reconcile(&s, &MatchOptions::default()).findings;
    let p = plan(&s.flow, &mut findings, &open());
    assert_eq!(
        planned(&p),
        vec![("jdoe".into(), Some("JDoe@Contoso.com".into()))]
    );
    assert_eq!(findings[0].action, ActionKind::Rename);
    assert_eq!(findings[0].action_status, Some(ActionStatus::Planned));
    assert!(p.threshold.is_none());
}

#[test]
fn chains_are_ordered_so_each_target_is_free() {
    let flow_users = users(&["a", "b", "c"]);
    // a → b needs b → c first, which needs c → d first.
    let mut findings = vec![mismatch("a", "B"), mismatch("b", "C"), mismatch("c", "d")];
    let p = plan(&flow_users, &mut findings, &open());
    assert_eq!(
        planned(&p),
        vec![
            ("c".into(), Some("d".into())),
            ("b".into(), Some("C".into())),
            ("a".into(), Some("B".into())),
        ]
    );
    assert!(findings
        .iter()
        .all(|f| f.action_status == Some(ActionStatus::Planned)));
}

#[test]
fn cycles_are_blocked_with_the_reason() {
    let flow_users = users(&["a", "b", "x"]);
    let mut findings = vec![mismatch("a", "b"), mismatch("b", "A"), mismatch("x", "z")];
    let p = plan(&flow_users, &mut findings, &open());
    assert_eq!(planned(&p), vec![("x".into(), Some("z".into()))]);
    assert_eq!(p.actions.len(), 3);
    for a in &p.actions[1..] {
        assert_eq!(a.status, ActionStatus::Blocked);
        let err = a.error.as_deref().unwrap_or("");
        assert!(err.contains("cycle") && err.contains("'a' → 'b'"), "{err}");
    }
    findings.pop();
    for f in &findings {
        assert_eq!(f.action_status, Some(ActionStatus::Blocked));
        assert!(f.detail.contains("Not renamed:"), "{}", f.detail);
    }
}

#[test]
fn two_renames_into_one_id_are_blocked() {
    let flow_users = users(&["a", "b", "c"]);
    let mut findings = vec![
        mismatch("a", "t@x"),
        mismatch("b", "T@X"),
        mismatch("c", "d"),
    ];
    let p = plan(&flow_users, &mut findings, &open());
    assert_eq!(planned(&p), vec![("c".into(), Some("d".into()))]);
    let blocked: Vec<_> = p
        .actions
        .iter()
        .filter(|a| a.status == ActionStatus::Blocked)
        .collect();
    assert_eq!(blocked.len(), 2);
    assert!(blocked[0]
        .error
        .as_deref()
        .unwrap_or("")
        .contains("2 renames want the ID"));
}

#[test]
fn target_held_by_a_user_who_stays_is_blocked_case_insensitively() {
    let flow_users = users(&["a", "jdoe@x"]);
    let mut findings = vec![mismatch("a", "JDOE@X")];
    let p = plan(&flow_users, &mut findings, &open());
    assert_eq!(p.executable().count(), 0);
    assert!(p.actions[0]
        .error
        .as_deref()
        .unwrap_or("")
        .contains("taken by Flow user 'jdoe@x'"));
    // A case-sensitive Flow sees a free ID.
    let mut findings = vec![mismatch("a", "JDOE@X")];
    let cs = PlanOptions {
        flow_case_insensitive: false,
        ..open()
    };
    let p = plan(&flow_users, &mut findings, &cs);
    assert_eq!(p.executable().count(), 1);
}

#[test]
fn waiting_on_a_blocked_rename_blocks() {
    // a → b, but b's own rename collides with c's.
    let flow_users = users(&["a", "b", "c"]);
    let mut findings = vec![mismatch("a", "b"), mismatch("b", "t"), mismatch("c", "t")];
    let p = plan(&flow_users, &mut findings, &open());
    assert_eq!(p.executable().count(), 0);
    let a = p.actions.iter().find(|x| x.flow_user_id == "a").expect("a");
    assert!(
        a.error.as_deref().unwrap_or("").contains("blocked"),
        "{:?}",
        a.error
    );
}

#[test]
fn renaming_only_the_case_of_ones_own_id_is_allowed() {
    let flow_users = users(&["jdoe@x"]);
    let mut findings = vec![mismatch("jdoe@x", "JDoe@x")];
    let p = plan(&flow_users, &mut findings, &open());
    assert_eq!(planned(&p), vec![("jdoe@x".into(), Some("JDoe@x".into()))]);
}

#[test]
fn unknown_source_is_blocked() {
    let mut findings = vec![mismatch("ghost", "g@x")];
    let p = plan(&users(&["other"]), &mut findings, &open());
    assert_eq!(p.actions[0].status, ActionStatus::Blocked);
    assert!(p.actions[0]
        .error
        .as_deref()
        .unwrap_or("")
        .contains("not in the Flow snapshot"));
}

fn orphan(id: &str, kind: FindingKind) -> Finding {
    let mut f = Finding::new(kind);
    f.flow_user_id = Some(id.into());
    f
}

#[test]
fn deactivation_needs_the_setting() {
    let mut inactive = flow("old");
    inactive.edit(|fields| fields.active = false);
    let flow_users = vec![flow("gone"), flow("disabled"), inactive];
    let mut findings = vec![
        orphan("gone", FindingKind::NotInAzure),
        orphan("disabled", FindingKind::DisabledInAzure),
        orphan("old", FindingKind::NotInAzure),
        Finding::new(FindingKind::MissingInFlow),
    ];
    let p = plan(&flow_users, &mut findings, &open());
    assert_eq!(p.executable().count(), 0);
    assert_eq!(p.actions.len(), 2);
    for f in &findings[..2] {
        assert_eq!(f.action, ActionKind::Deactivate);
        assert_eq!(f.action_status, Some(ActionStatus::Skipped));
        assert!(f.detail.contains("fix.deactivate_orphans"), "{}", f.detail);
    }
    // Already inactive, or another kind: nothing to do.
    for f in &findings[2..] {
        assert_eq!((f.action, f.action_status), (ActionKind::None, None));
    }
    let enabled = PlanOptions {
        deactivate_orphans: true,
        ..open()
    };
    let p = plan(&flow_users, &mut findings, &enabled);
    assert_eq!(
        planned(&p),
        vec![("gone".into(), None), ("disabled".into(), None)]
    );
    assert!(p.actions.iter().all(|a| a.kind == ActionKind::Deactivate));
}

#[test]
fn other_kinds_get_no_action() {
    let mut findings: Vec<Finding> = [
        FindingKind::MissingInFlow,
        FindingKind::MissingInIfs,
        FindingKind::Ambiguous,
        FindingKind::Conflict,
        FindingKind::DirectoryIdMissing,
        FindingKind::DuplicateDirectoryId,
        FindingKind::SyncManaged,
    ]
    .into_iter()
    .map(|k| {
        let mut f = Finding::new(k);
        f.flow_user_id = Some("a".into());
        f.expected_flow_user_id = Some("b".into());
        f
    })
    .collect();
    let p = plan(&users(&["a"]), &mut findings, &open());
    assert!(p.actions.is_empty());
    assert!(findings
        .iter()
        .all(|f| f.action == ActionKind::None && f.action_status.is_none()));
}

#[test]
fn max_changes_exceeded_skips_everything() {
    let flow_users = users(&["a", "b", "c", "x", "y"]);
    let mut findings = vec![
        mismatch("a", "a@x"),
        mismatch("b", "b@x"),
        mismatch("c", "c@x"),
        // Blocked ones do not count.
        mismatch("x", "t"),
        mismatch("y", "t"),
    ];
    let opts = PlanOptions {
        max_changes: 2,
        ..open()
    };
    let p = plan(&flow_users, &mut findings, &opts);
    let t = p.threshold.clone().expect("threshold exceeded");
    assert_eq!((t.changes, t.flow_users, t.max_changes), (3, 5, 2));
    let text = t.to_string();
    assert!(text.contains("fix.max_changes = 2"), "{text}");
    assert!(!text.contains("fix.max_change_percent = 100"), "{text}");
    assert!(text.contains("--apply --max-changes 3"), "{text}");
    assert_eq!(p.executable().count(), 0);
    let statuses: Vec<ActionStatus> = p.actions.iter().map(|a| a.status).collect();
    assert_eq!(
        statuses,
        vec![
            ActionStatus::Skipped,
            ActionStatus::Skipped,
            ActionStatus::Skipped,
            ActionStatus::Blocked,
            ActionStatus::Blocked
        ]
    );
    assert_eq!(findings[0].action_status, Some(ActionStatus::Skipped));
    assert!(
        findings[0].detail.contains("Rename skipped"),
        "{}",
        findings[0].detail
    );
    // Exactly at the limit is allowed.
    let mut findings = vec![mismatch("a", "a@x"), mismatch("b", "b@x")];
    assert!(plan(&flow_users, &mut findings, &opts).threshold.is_none());
}

#[test]
fn max_change_percent_is_of_all_flow_users() {
    let ids: Vec<String> = (0..100).map(|i| format!("u{i}")).collect();
    let flow_users: Vec<FlowUser> = ids.iter().map(|id| flow(id)).collect();
    let opts = PlanOptions {
        max_changes: 1000,
        max_change_percent: 5.0,
        ..PlanOptions::default()
    };
    let mut five: Vec<Finding> = ids[..5]
        .iter()
        .map(|id| mismatch(id, &format!("{id}@x")))
        .collect();
    assert!(plan(&flow_users, &mut five, &opts).threshold.is_none());
    let mut six: Vec<Finding> = ids[..6]
        .iter()
        .map(|id| mismatch(id, &format!("{id}@x")))
        .collect();
    let t = plan(&flow_users, &mut six, &opts)
        .threshold
        .expect("over 5%");
    let text = t.to_string();
    assert!(text.contains("fix.max_change_percent = 5"), "{text}");
    assert!(text.contains("6.0%"), "{text}");
}
