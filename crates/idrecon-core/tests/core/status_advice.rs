//! New / persisting / resolved (docs/semantics.md §6) and root-cause advice.

use crate::common as core_common;

use core_common::*;
use idrecon_core::model::{Cause, Finding, FindingKind, FindingStatus};
use idrecon_core::reconcile::{advice, mark_new_and_persisting};
use std::collections::HashSet;

fn with_cause(kind: FindingKind, cause: Cause, n: usize) -> Vec<Finding> {
    (0..n)
        .map(|i| {
            let mut f = Finding::new(kind);
            f.cause = Some(cause);
            f.aad_id = Some(format!("{kind}-{cause}-{i}"));
            f
        })
        .collect()
}

#[test]
fn findings_open_last_run_persist_others_are_new() {
    let mut findings = vec![mismatch("jdoe", "jdoe@x"), mismatch("asa", "asa@x")];
    let mut previous = HashSet::new();
    previous.insert(findings[0].key());
    previous.insert("missing_in_flow|aad:gone".to_string());
    previous.insert("not_in_azure|flow:old".to_string());
    let resolved = mark_new_and_persisting(&mut findings, &previous);
    assert_eq!(resolved, 2);
    assert_eq!(findings[0].status, FindingStatus::Persisting);
    assert_eq!(findings[1].status, FindingStatus::New);
}

#[test]
fn key_ignores_object_id_case_and_flow_id_form() {
    let mut f = Finding::new(FindingKind::NotInAzure);
    f.flow_user_id = Some(" JDoe ".into());
    let mut previous = HashSet::new();
    previous.insert("not_in_azure|flow:jdoe".to_string());
    let mut findings = vec![f];
    assert_eq!(mark_new_and_persisting(&mut findings, &previous), 0);
    assert_eq!(findings[0].status, FindingStatus::Persisting);
    // A persisting status from a stale value is reset when the key is new.
    let mut findings = vec![findings[0].clone()];
    assert_eq!(mark_new_and_persisting(&mut findings, &HashSet::new()), 0);
    assert_eq!(findings[0].status, FindingStatus::New);
}

#[test]
fn same_person_with_another_kind_is_new() {
    let mut f = mismatch("jdoe", "jdoe@x");
    let mut previous = HashSet::new();
    previous.insert(f.key());
    f.kind = FindingKind::Conflict;
    let mut findings = vec![f];
    assert_eq!(mark_new_and_persisting(&mut findings, &previous), 1);
    assert_eq!(findings[0].status, FindingStatus::New);
}

#[test]
fn advice_names_the_setting_when_one_cause_dominates() {
    let mut findings = with_cause(FindingKind::IdMismatch, Cause::DomainStripped, 40);
    findings.extend(with_cause(
        FindingKind::SyncManaged,
        Cause::DomainStripped,
        8,
    ));
    findings.extend(with_cause(FindingKind::IdMismatch, Cause::CaseOnly, 12));
    // Other kinds with causes do not count.
    findings.extend(with_cause(FindingKind::Conflict, Cause::CaseOnly, 50));
    let a = advice(&findings);
    assert_eq!(a.len(), 2, "{a:#?}");
    assert!(
        a[0].starts_with("48 of 60 mismatches are Flow IDs without the domain"),
        "{}",
        a[0]
    );
    assert!(a[0].contains("include domain") && a[0].contains("claim mapping"));
    assert!(a[1].starts_with("8 Flow users with a wrong ID are maintained by Flow's AD sync"));
}

#[test]
fn one_sentence_per_cause_type() {
    for (cause, words) in [
        (Cause::DomainStripped, "include domain"),
        (Cause::CaseOnly, "matching.case_sensitive"),
        (Cause::MailVsUpn, "same attribute"),
        (Cause::SamAccountName, "sAMAccountName"),
        (Cause::ObjectId, "'oid'"),
    ] {
        let a = advice(&with_cause(FindingKind::IdMismatch, cause, 3));
        assert_eq!(a.len(), 1, "{cause}: {a:?}");
        assert!(a[0].starts_with("3 of 3 mismatches"), "{}", a[0]);
        assert!(a[0].contains(words), "{cause}: {}", a[0]);
    }
    assert!(advice(&with_cause(FindingKind::IdMismatch, Cause::Other, 10)).is_empty());
}

#[test]
fn no_advice_below_the_limits() {
    // Two findings are too few; half of 10 is enough, 4 of 10 is not.
    assert!(advice(&with_cause(FindingKind::IdMismatch, Cause::ObjectId, 2)).is_empty());
    let mut findings = with_cause(FindingKind::IdMismatch, Cause::ObjectId, 5);
    findings.extend(with_cause(FindingKind::IdMismatch, Cause::Other, 5));
    assert_eq!(advice(&findings).len(), 1);
    let mut findings = with_cause(FindingKind::IdMismatch, Cause::ObjectId, 4);
    findings.extend(with_cause(FindingKind::IdMismatch, Cause::Other, 6));
    assert!(advice(&findings).is_empty());
    assert!(advice(&with_cause(FindingKind::SyncManaged, Cause::Other, 2)).is_empty());
}
