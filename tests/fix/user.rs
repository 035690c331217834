//! `idrecon reconcile --user UPN_OR_ID [--apply]` with the real binary:
//! exactly one person is looked up (by key where the API allows), fixed,
//! and explained step by step, without disturbing the next full run.

use crate::fix_support;

use fix_support::*;
use idrecon::model::{FindingKind, FindingStatus};
use idrecon::report::RunStatus;

const PEOPLE: usize = 800;
const SEED: u64 = 11;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_person_with_an_apostrophe_is_fixed_alone_and_the_next_full_run_is_undisturbed() {
    let env = fix_app(PEOPLE, SEED, "", Tweaks::default()).await;
    let original = env.handle.flow_users();
    let baseline = env.report_only().await;
    assert_eq!(baseline.status, RunStatus::Completed);
    let person = baseline
        .findings
        .iter()
        .find(|f| {
            f.kind == FindingKind::IdMismatch
                && f.upn.as_deref().is_some_and(|u| u.contains('\''))
                && f.action_status == Some(idrecon::model::ActionStatus::Planned)
        })
        .expect("the tenant has a mismatch for a UPN with an apostrophe")
        .clone();
    let upn = person.upn.clone().unwrap();
    let from = person.flow_user_id.clone().unwrap();
    let to = person.ifs_directory_id.clone().unwrap();
    let others = baseline.findings.len() - 1;
    assert!(others > 10);
    let delta_requests = env.handle.request_count("/graph/v1.0/users/delta");

    let out = env.binary(&["reconcile", "--user", &upn, "--apply", "--format", "json"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["status"], "completed");
    assert_eq!(report["mode"], "apply");
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{report:#}");
    assert_eq!(findings[0]["upn"], upn.as_str());
    assert_eq!(findings[0]["action_status"], "applied");
    let actions = report["actions"].as_array().unwrap();
    assert_eq!(actions.len(), 1, "{report:#}");
    assert_eq!(actions[0]["status"], "applied");

    // Exactly one rename, of this person, to the exact Directory ID.
    assert_eq!(env.writes(), (1, 0));
    assert_eq!(env.handle.rename_count(&to), 1);
    assert_eq!(
        sorted(env.handle.flow_users()),
        renamed(&original, &[(from.clone(), to.clone())])
    );

    // The steps, numbered, on stderr: Graph by key, IFS $filter, Flow list.
    let steps: Vec<&str> = err
        .lines()
        .filter(|l| l.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .collect();
    assert!(steps.len() >= 3, "{err}");
    for (n, step) in steps.iter().enumerate() {
        assert!(step.starts_with(&format!("{}. ", n + 1)), "{step}");
    }
    assert!(
        steps[0].contains("Azure AD: found") && steps[0].contains(&upn),
        "{err}"
    );
    assert!(
        steps
            .iter()
            .any(|s| s.contains(&format!("IFS: Directory ID = '{upn}'"))),
        "{err}"
    );
    assert!(steps.last().unwrap().contains("Flow: read"), "{err}");
    // Looked up by key: no Azure listing or delta round was made.
    assert_eq!(
        env.handle.request_count("/graph/v1.0/users/delta"),
        delta_requests
    );

    // The next full run compares with the last full run, not with the
    // one-person run: the other findings persist, this one is resolved.
    let next = env.report_only().await;
    assert_eq!(next.findings.len(), others);
    assert_eq!(next.summary.new, 0, "{:?}", next.summary);
    assert!(next
        .findings
        .iter()
        .all(|f| f.status == FindingStatus::Persisting));
    assert_eq!(next.summary.resolved_since_last_run, 1);
    assert!(next
        .findings
        .iter()
        .all(|f| f.upn.as_deref() != Some(upn.as_str())));
    assert_eq!(env.writes(), (1, 0));

    // history names the one-person run.
    let history: serde_json::Value =
        serde_json::from_str(&stdout(&env.binary(&["history", "--format", "json"]))).unwrap();
    let run = history
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == report["run_id"])
        .unwrap();
    assert_eq!(run["person"], upn.as_str());
    assert_eq!(run["actions_applied"], 1);
    env.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_user_is_a_clear_error_and_changes_nothing() {
    let env = fix_app(PEOPLE, SEED, "", Tweaks::default()).await;
    let out = env.binary(&[
        "reconcile",
        "--user",
        "nobody.at.all@contoso.com",
        "--apply",
        "--format",
        "json",
    ]);
    let err = stderr(&out);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert_ne!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("Azure AD has no user nobody.at.all@contoso.com"),
        "{err}"
    );
    assert_eq!(env.writes(), (0, 0));
    assert_eq!(env.handle.request_count("/flow/users/"), 0);
    env.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_person_in_report_mode_explains_and_writes_nothing() {
    let env = fix_app(PEOPLE, SEED, "", Tweaks::default()).await;
    let baseline = env.report_only().await;
    let person = baseline
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::IdMismatch && f.aad_id.is_some())
        .unwrap()
        .clone();
    // By object ID this time.
    let id = person.aad_id.clone().unwrap();
    let out = env.binary(&["reconcile", "--user", &id, "--format", "json"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["findings"].as_array().unwrap().len(), 1);
    assert_eq!(report["findings"][0]["action_status"], "planned");
    assert!(stderr(&out).contains("1. Azure AD: found"));
    assert_eq!(env.writes(), (0, 0));
    env.sim.shutdown().await;
}
