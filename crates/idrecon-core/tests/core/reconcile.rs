//! Correlation and classification: every finding kind and cause
//! (docs/semantics.md §0–§5).

use crate::common as core_common;

use core_common::*;
use idrecon_core::model::{
    AadUser, Cause, FindingKind, FlowMatchRule, FlowUser, IfsMatchRule, IfsUser, Snapshots,
};
use idrecon_core::reconcile::{
    classify, correlate, person_state, reconcile, Link, MatchOptions, Outcome, PersonState,
};

const UPN: &str = "jdoe@contoso.com";

fn case_sensitive() -> MatchOptions {
    MatchOptions {
        case_sensitive: true,
        ..MatchOptions::default()
    }
}

#[test]
fn equal_ids_ignoring_case_are_ok() {
    let s = snap(
        vec![az("a1", UPN)],
        vec![ifs("JDOE", UPN)],
        vec![flow("JDoe@Contoso.COM ")],
    );
    let o = run(&s);
    assert_eq!((o.people, o.ok), (1, 1));
    assert!(o.findings.is_empty(), "{:#?}", o.findings);
}

#[test]
fn domain_stripped_mismatch_carries_every_report_field() {
    let mut a = az("A1", UPN);
    a.edit(|fields| fields.display_name = Some("John Doe".into()));
    let s = snap(
        vec![a],
        vec![ifs("JDOE", "JDoe@contoso.com")],
        vec![flow("jdoe")],
    );
    let o = run(&s);
    assert_eq!((o.people, o.ok), (1, 0));
    let f = only(&o, FindingKind::IdMismatch);
    assert_eq!(f.cause, Some(Cause::DomainStripped));
    assert_eq!(f.aad_id.as_deref(), Some("A1"));
    assert_eq!(f.upn.as_deref(), Some(UPN));
    assert_eq!(f.display_name.as_deref(), Some("John Doe"));
    assert_eq!(f.ifs_identity.as_deref(), Some("JDOE"));
    assert_eq!(f.ifs_directory_id.as_deref(), Some("JDoe@contoso.com"));
    assert_eq!(f.flow_user_id.as_deref(), Some("jdoe"));
    // The exact raw Directory ID, original casing.
    assert_eq!(f.expected_flow_user_id.as_deref(), Some("JDoe@contoso.com"));
    assert!(
        f.detail
            .contains("rename the Flow user to 'JDoe@contoso.com'"),
        "{}",
        f.detail
    );
}

#[test]
fn mail_vs_upn_cause() {
    let mut a = az("a1", "john.doe@contoso.com");
    a.edit(|fields| fields.mail = Some("jdoe@contoso.com".into()));
    let s = snap(
        vec![a],
        vec![ifs("JDOE", "john.doe@contoso.com")],
        vec![flow("JDOE@contoso.com")],
    );
    let f = run(&s).findings;
    assert_eq!(f.len(), 1);
    assert_eq!(
        (f[0].kind, f[0].cause),
        (FindingKind::IdMismatch, Some(Cause::MailVsUpn))
    );
}

#[test]
fn sam_account_name_cause() {
    let mut a = az("a1", UPN);
    a.edit(|fields| fields.on_premises_sam_account_name = Some("JD01".into()));
    let s = snap(vec![a], vec![ifs("JDOE", UPN)], vec![flow("jd01")]);
    let f = run(&s).findings;
    assert_eq!(
        (f[0].kind, f[0].cause),
        (FindingKind::IdMismatch, Some(Cause::SamAccountName))
    );
}

#[test]
fn object_id_cause_and_rule_ignore_ascii_case() {
    let id = "3f1c0a7e-1111-2222-3333-444455556666";
    let s = snap(
        vec![az(id, UPN)],
        vec![ifs("JDOE", UPN)],
        vec![flow(&id.to_uppercase())],
    );
    for opts in [MatchOptions::default(), case_sensitive()] {
        let f = reconcile(&s, &opts).findings;
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(
            (f[0].kind, f[0].cause),
            (FindingKind::IdMismatch, Some(Cause::ObjectId))
        );
    }
}

#[test]
fn other_cause_when_linked_by_flow_email() {
    let mut a = az("a1", UPN);
    a.edit(|fields| fields.mail = Some("john@contoso.com".into()));
    let mut fl = flow("johnny");
    fl.edit(|fields| fields.email = Some("JOHN@contoso.com".into()));
    let s = snap(vec![a], vec![ifs("JDOE", UPN)], vec![fl]);
    let f = run(&s).findings;
    assert_eq!(
        (f[0].kind, f[0].cause),
        (FindingKind::IdMismatch, Some(Cause::Other))
    );
}

#[test]
fn case_sensitive_mode_reports_case_only() {
    let mut a = az("a1", UPN);
    a.edit(|fields| fields.mail = Some(UPN.into()));
    let mut fl = flow("JDoe@Contoso.com");
    fl.edit(|fields| fields.email = Some(UPN.into()));
    let s = snap(vec![a], vec![ifs("JDOE", UPN)], vec![fl]);
    let f = reconcile(&s, &case_sensitive()).findings;
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(
        (f[0].kind, f[0].cause),
        (FindingKind::IdMismatch, Some(Cause::CaseOnly))
    );
    // The same data is fine when case does not matter.
    assert!(run(&s).findings.is_empty());
}

#[test]
fn sync_managed_flow_user_gets_upstream_advice_not_rename() {
    let mut fl = flow("jdoe");
    fl.edit(|fields| fields.sync_source = Some("AzureAD".into()));
    let s = snap(vec![az("a1", UPN)], vec![ifs("JDOE", UPN)], vec![fl]);
    let o = run(&s);
    let f = only(&o, FindingKind::SyncManaged);
    assert_eq!(f.cause, Some(Cause::DomainStripped));
    assert!(
        f.detail.contains("AD sync") && f.detail.contains("include domain"),
        "{}",
        f.detail
    );
    assert!(!o.findings.iter().any(|f| f.kind == FindingKind::IdMismatch));
}

#[test]
fn conflict_when_expected_id_is_held_by_a_machine_user() {
    let mut machine = flow("JDOE@contoso.com");
    machine.edit(|fields| fields.user_type = "Machine".into());
    let s = snap(
        vec![az("a1", UPN)],
        vec![ifs("JDOE", UPN)],
        vec![flow("jdoe"), machine],
    );
    let o = run(&s);
    assert_eq!(kinds(&o), vec![FindingKind::Conflict]);
    let f = &o.findings[0];
    assert_eq!(f.flow_user_id.as_deref(), Some("jdoe"));
    assert!(
        f.detail.contains("'JDOE@contoso.com' already has that ID"),
        "{}",
        f.detail
    );
}

#[test]
fn ifs_directory_id_rule_always_comes_first() {
    // Configured with the local part first and without ifs_directory_id at
    // all, the already-correct Flow user still wins.
    let opts = MatchOptions {
        flow_rules: vec![FlowMatchRule::UpnLocalPart],
        ..MatchOptions::default()
    };
    let s = snap(
        vec![az("a1", UPN)],
        vec![ifs("JDOE", UPN)],
        vec![flow("jdoe"), flow(UPN)],
    );
    let o = reconcile(&s, &opts);
    assert_eq!((o.people, o.ok), (2, 1));
    assert_eq!(kinds(&o), vec![FindingKind::NotInAzure]);
    assert_eq!(o.findings[0].flow_user_id.as_deref(), Some("jdoe"));
    assert_eq!(
        idrecon_core::reconcile::effective_flow_rules(&[
            FlowMatchRule::Upn,
            FlowMatchRule::IfsDirectoryId,
            FlowMatchRule::Upn
        ]),
        vec![FlowMatchRule::IfsDirectoryId, FlowMatchRule::Upn]
    );
}

#[test]
fn missing_in_flow_only_for_active_ifs_users() {
    let mut inactive = ifs("OLD", "old@contoso.com");
    inactive.edit(|fields| fields.active = false);
    let s = snap(
        vec![az("a1", UPN), az("a2", "old@contoso.com")],
        vec![ifs("JDOE", UPN), inactive],
        vec![],
    );
    let o = run(&s);
    assert_eq!(o.people, 1);
    let f = only(&o, FindingKind::MissingInFlow);
    assert_eq!(f.expected_flow_user_id.as_deref(), Some(UPN));
    assert!(f.detail.contains("create Flow user"), "{}", f.detail);
}

#[test]
fn missing_in_ifs_only_for_active_flow_users() {
    let mut inactive = flow("old@contoso.com");
    inactive.edit(|fields| fields.active = false);
    let s = snap(
        vec![az("a1", UPN), az("a2", "old@contoso.com")],
        vec![],
        vec![flow("JDOE@contoso.com"), inactive],
    );
    let o = run(&s);
    assert_eq!(o.people, 1);
    assert_eq!(
        only(&o, FindingKind::MissingInIfs).aad_id.as_deref(),
        Some("a1")
    );
}

#[test]
fn azure_users_without_ifs_or_flow_are_out_of_scope() {
    let s = snap(
        vec![az("a1", UPN), az("a2", "x@contoso.com")],
        vec![],
        vec![],
    );
    let o = run(&s);
    assert_eq!((o.people, o.ok, o.findings.len()), (0, 0, 0));
}

#[test]
fn not_in_azure_for_lone_records_and_ifs_with_flow() {
    let mut gone_flow = flow("gone@contoso.com");
    gone_flow.edit(|fields| fields.active = false);
    let mut gone_ifs = ifs("GONE", "gone@contoso.com");
    gone_ifs.edit(|fields| fields.active = false);
    let s = snap(
        vec![],
        vec![
            ifs("LEFT", "left@contoso.com"),
            ifs("ALONE", "alone@contoso.com"),
            gone_ifs,
        ],
        vec![flow("LEFT@contoso.com"), flow("orphan"), gone_flow],
    );
    let o = run(&s);
    assert_eq!(o.people, 3, "{:#?}", o.findings);
    assert_eq!(kinds(&o), vec![FindingKind::NotInAzure; 3]);
    let both = o
        .findings
        .iter()
        .find(|f| f.ifs_identity.as_deref() == Some("LEFT"))
        .expect("IFS+Flow person");
    // IFS and Flow without Azure are one person.
    assert_eq!(both.flow_user_id.as_deref(), Some("LEFT@contoso.com"));
    assert!(o
        .findings
        .iter()
        .any(|f| f.flow_user_id.as_deref() == Some("orphan") && f.ifs_identity.is_none()));
}

#[test]
fn disabled_azure_account_with_active_flow_user() {
    let mut a = az("a1", UPN);
    a.edit(|fields| fields.account_enabled = false);
    let s = snap(vec![a.clone()], vec![ifs("JDOE", UPN)], vec![flow(UPN)]);
    let o = run(&s);
    let f = only(&o, FindingKind::DisabledInAzure);
    assert_eq!(f.flow_user_id.as_deref(), Some(UPN));
    assert!(f.detail.contains("deactivate the Flow user"));
    // Inactive Flow user, or no Flow user: nothing to do.
    let mut inactive = flow(UPN);
    inactive.edit(|fields| fields.active = false);
    let o = run(&snap(
        vec![a.clone()],
        vec![ifs("JDOE", UPN)],
        vec![inactive],
    ));
    assert_eq!((o.people, o.findings.len()), (0, 0));
    let o = run(&snap(vec![a], vec![ifs("JDOE", UPN)], vec![]));
    assert_eq!((o.people, o.findings.len()), (0, 0));
}

#[test]
fn directory_id_missing_only_for_active_users() {
    let mut inactive = ifs("OLD", "");
    inactive.edit(|fields| fields.active = false);
    let mut none = ifs("NONE", "");
    none.edit(|fields| fields.directory_id = None);
    let s = snap(
        vec![],
        vec![ifs("EMPTY", ""), ifs("BLANK", "  "), none, inactive],
        vec![],
    );
    let o = run(&s);
    assert_eq!(kinds(&o), vec![FindingKind::DirectoryIdMissing; 3]);
    assert_eq!(o.people, 3);
}

#[test]
fn duplicate_directory_ids_form_one_person_with_azure_and_flow() {
    let mut inactive = ifs("JDOE2", "JDOE@CONTOSO.COM");
    inactive.edit(|fields| fields.active = false);
    let s = snap(
        vec![az("a1", UPN)],
        vec![ifs("JDOE", UPN), inactive],
        vec![flow(UPN)],
    );
    let o = run(&s);
    assert_eq!(o.people, 1);
    let f = only(&o, FindingKind::DuplicateDirectoryId);
    assert_eq!(f.ifs_identity.as_deref(), Some("JDOE, JDOE2"));
    assert_eq!(f.ifs_directory_id.as_deref(), Some(UPN));
    assert_eq!(f.aad_id.as_deref(), Some("a1"));
    assert_eq!(f.flow_user_id.as_deref(), Some(UPN));
    assert!(f.detail.contains("JDOE, JDOE2 share"), "{}", f.detail);
}

#[test]
fn duplicate_group_without_azure_takes_its_flow_user() {
    let s = snap(
        vec![],
        vec![ifs("B", "x@contoso.com"), ifs("A", "X@contoso.com")],
        vec![flow("x@CONTOSO.com")],
    );
    let o = run(&s);
    assert_eq!(kinds(&o), vec![FindingKind::DuplicateDirectoryId]);
    assert_eq!(o.findings[0].ifs_identity.as_deref(), Some("A, B"));
    assert_eq!(
        o.findings[0].ifs_directory_id.as_deref(),
        Some("X@contoso.com")
    );
    assert_eq!(o.findings[0].flow_user_id.as_deref(), Some("x@CONTOSO.com"));
}

#[test]
fn guests_are_excluded_unless_included() {
    let guest_upn = "jane_fabrikam.com#EXT#@contoso.onmicrosoft.com";
    let mut typed_guest = az("g2", "bob@contoso.com");
    typed_guest.edit(|fields| fields.user_type = Some("Guest".into()));
    let s = snap(
        vec![az("g1", guest_upn), typed_guest],
        vec![ifs("JANE", guest_upn)],
        vec![flow(guest_upn), flow("bob@contoso.com")],
    );
    let o = run(&s);
    // Without the guests, their records have no Azure user.
    assert_eq!(kinds(&o), vec![FindingKind::NotInAzure; 2]);
    assert!(o.findings.iter().all(|f| f.aad_id.is_none()));
    let opts = MatchOptions {
        include_guests: true,
        ..MatchOptions::default()
    };
    let o = reconcile(&s, &opts);
    assert_eq!(kinds(&o), vec![FindingKind::MissingInIfs]);
    assert_eq!((o.people, o.ok), (2, 1));
}

#[test]
fn apostrophes_and_non_ascii_letters() {
    let upn = "o'brien@contoso.com";
    let s = snap(
        vec![az("a1", upn), az("a2", "Åsa.Öberg@contoso.se")],
        vec![ifs("OBRIEN", upn), ifs("ASA", "åsa.öberg@contoso.se")],
        // Decomposed Å (A + ring) and upper case: still the same ID.
        vec![
            flow("O'Brien@Contoso.com"),
            flow("A\u{30a}SA.ÖBERG@CONTOSO.SE"),
        ],
    );
    let o = run(&s);
    assert_eq!((o.people, o.ok), (2, 2), "{:#?}", o.findings);

    let s = snap(
        vec![az("a2", "Åsa.Öberg@contoso.se")],
        vec![ifs("ASA", "åsa.öberg@contoso.se")],
        vec![flow("ÅSA.ÖBERG")],
    );
    let f = run(&s).findings;
    assert_eq!(
        (f[0].kind, f[0].cause),
        (FindingKind::IdMismatch, Some(Cause::DomainStripped))
    );
    assert_eq!(
        f[0].expected_flow_user_id.as_deref(),
        Some("åsa.öberg@contoso.se")
    );
}

#[test]
fn turkish_i_and_german_sharp_s_under_full_case_folding() {
    // ß folds to ss; İ (dotted capital I) folds to i + combining dot, which
    // is not plain i; dotless ı stays dotless.
    let s = snap(
        vec![
            az("a1", "strasse@x.de"),
            az("a2", "i\u{307}pek@x.tr"),
            az("a3", "ırmak@x.tr"),
        ],
        vec![
            ifs("S", "STRASSE@x.de"),
            ifs("I", "i\u{307}pek@x.tr"),
            ifs("R", "ırmak@x.tr"),
        ],
        vec![flow("Straße@X.DE"), flow("İPEK@x.tr"), flow("IRMAK@x.tr")],
    );
    let o = run(&s);
    assert_eq!(o.ok, 2, "{:#?}", o.findings);
    assert_eq!(o.people, 4);
    // "IRMAK" folds to "irmak", not "ırmak": that person's Flow user is
    // not found by ID, so it is missing in Flow and the Flow user is an orphan.
    let mut k = kinds(&o);
    k.sort();
    assert_eq!(k, vec![FindingKind::MissingInFlow, FindingKind::NotInAzure]);
}

#[test]
fn two_flow_users_differing_only_in_case_are_ambiguous() {
    let s = snap(
        vec![az("a1", UPN)],
        vec![ifs("JDOE", UPN)],
        vec![flow("JDoe@contoso.com"), flow("jdoe@contoso.com")],
    );
    let o = run(&s);
    // One finding: the Flow users are named, not reported as orphans.
    assert_eq!(kinds(&o), vec![FindingKind::Ambiguous], "{:#?}", o.findings);
    let f = &o.findings[0];
    assert!(f.detail.contains("'JDoe@contoso.com'") && f.detail.contains("'jdoe@contoso.com'"));
    assert_eq!(f.ifs_identity.as_deref(), Some("JDOE"));
    let people = correlate(&s, &MatchOptions::default());
    let amb = people
        .iter()
        .find(|p| p.link == Link::Ambiguous)
        .expect("ambiguous person");
    assert_eq!(amb.all_flow().count(), 2);
}

#[test]
fn flow_user_matching_two_azure_users_equally_is_a_tie() {
    let mut a1 = az("b-2", "one@contoso.com");
    a1.edit(|fields| fields.mail = Some("shared@contoso.com".into()));
    let mut a2 = az("A-1", "two@contoso.com");
    a2.edit(|fields| fields.mail = Some("Shared@contoso.com".into()));
    let s = snap(
        vec![a1.clone(), a2.clone()],
        vec![],
        vec![flow("shared@contoso.com")],
    );
    let o = run(&s);
    assert_eq!(
        kinds(&o),
        vec![FindingKind::Ambiguous; 2],
        "{:#?}",
        o.findings
    );
    // The Flow user joins the tied Azure user with the smallest object ID.
    let holder: Vec<_> = o
        .findings
        .iter()
        .filter(|f| f.flow_user_id.is_some())
        .collect();
    assert_eq!(holder.len(), 1);
    assert_eq!(holder[0].aad_id.as_deref(), Some("A-1"));
    assert!(
        holder[0]
            .detail
            .contains("one@contoso.com, two@contoso.com")
            || holder[0]
                .detail
                .contains("two@contoso.com, one@contoso.com")
    );
    // Independent of input order.
    let swapped = snap(vec![a2, a1], vec![], vec![flow("shared@contoso.com")]);
    assert_eq!(run(&swapped), o);
}

#[test]
fn best_rank_wins_a_contested_flow_user() {
    let mut by_mail = az("a2", "other@contoso.com");
    by_mail.edit(|fields| fields.mail = Some(UPN.into()));
    let s = snap(
        vec![az("a1", UPN), by_mail],
        vec![ifs("JDOE", UPN)],
        vec![flow(UPN)],
    );
    let o = run(&s);
    // a1 (rank ifs_directory_id) wins; a2 loses the link and is out of scope.
    assert_eq!((o.people, o.ok, o.findings.len()), (1, 1, 0));
}

#[test]
fn best_rank_wins_a_contested_ifs_user() {
    let mut by_mail = az("a2", "other@contoso.com");
    by_mail.edit(|fields| fields.mail = Some(UPN.into()));
    let s = snap(vec![by_mail, az("a1", UPN)], vec![ifs("JDOE", UPN)], vec![]);
    let o = run(&s);
    assert_eq!(
        only(&o, FindingKind::MissingInFlow).aad_id.as_deref(),
        Some("a1")
    );
    assert_eq!(o.people, 1);
}

#[test]
fn machine_users_are_never_matched_nor_orphans() {
    let mut m = flow(UPN);
    m.edit(|fields| fields.user_type = "machine".into());
    let mut lone = flow("svc_idrecon");
    lone.edit(|fields| fields.user_type = "Machine".into());
    let s = snap(vec![az("a1", UPN)], vec![], vec![m, lone]);
    let o = run(&s);
    assert_eq!((o.people, o.findings.len()), (0, 0));
    let people = correlate(&s, &MatchOptions::default());
    assert_eq!(people.len(), 3);
    for p in &people {
        assert_eq!(
            person_state(&s, p, &MatchOptions::default()),
            PersonState::OutOfScope
        );
    }
}

#[test]
fn several_ifs_candidates_outside_one_group_are_ambiguous() {
    // Only possible with case-sensitive matching: the object-ID rule ignores
    // ASCII case, the duplicate check does not.
    let opts = MatchOptions {
        case_sensitive: true,
        ifs_rules: vec![IfsMatchRule::ObjectId],
        ..MatchOptions::default()
    };
    let s = snap(
        vec![az("abc-1", UPN)],
        vec![ifs("X", "ABC-1"), ifs("Y", "abc-1")],
        vec![],
    );
    let o = reconcile(&s, &opts);
    assert_eq!(kinds(&o), vec![FindingKind::Ambiguous], "{:#?}", o.findings);
    assert!(
        o.findings[0].detail.contains("X ('ABC-1'), Y ('abc-1')"),
        "{}",
        o.findings[0].detail
    );
    // Case-insensitively they are one duplicate group, which the Azure user joins.
    let opts = MatchOptions {
        ifs_rules: vec![IfsMatchRule::ObjectId],
        ..MatchOptions::default()
    };
    let o = reconcile(&s, &opts);
    assert_eq!(kinds(&o), vec![FindingKind::DuplicateDirectoryId]);
    assert_eq!(o.findings[0].aad_id.as_deref(), Some("abc-1"));
}

#[test]
fn findings_are_sorted_by_kind_then_key() {
    let s = snap(
        vec![az("z", "z@x.se"), az("a", "a@x.se")],
        vec![ifs("Z", "z@x.se"), ifs("A", "a@x.se"), ifs("M", "")],
        vec![flow("z"), flow("a")],
    );
    let o = run(&s);
    let got: Vec<(FindingKind, String)> = o.findings.iter().map(|f| (f.kind, f.key())).collect();
    let mut sorted = got.clone();
    sorted.sort();
    assert_eq!(got, sorted);
    assert_eq!(
        kinds(&o),
        vec![
            FindingKind::IdMismatch,
            FindingKind::IdMismatch,
            FindingKind::DirectoryIdMissing
        ]
    );
}

/// On a tenant large enough for `classify` to share the people among
/// threads, the outcome is the one of classifying each person alone.
#[test]
fn classifying_in_parts_is_classifying_each_person() {
    let n = 60_000;
    let mut azure = Vec::new();
    let mut ifs_users = Vec::new();
    let mut flow_users = Vec::new();
    for k in 0..n {
        let upn = format!("user{k}@contoso.com");
        let mut a = az(&format!("obj-{k}"), &upn);
        a.edit(|fields| fields.account_enabled = k % 13 != 0);
        azure.push(a);
        if k % 11 != 0 {
            ifs_users.push(ifs(&format!("U{k}"), &upn));
        }
        match k % 7 {
            0 => {}
            1 => flow_users.push(flow(&format!("user{k}"))),
            _ => flow_users.push(flow(&upn)),
        }
    }
    let s = snap(azure, ifs_users, flow_users);
    let opts = MatchOptions::default();
    let people = correlate(&s, &opts);
    let whole = classify(&s, &people, &opts);

    let mut one_by_one = Outcome::default();
    for person in &people {
        let o = classify(&s, std::slice::from_ref(person), &opts);
        one_by_one.people += o.people;
        one_by_one.ok += o.ok;
        one_by_one.findings.extend(o.findings);
    }
    assert_eq!(whole.people, one_by_one.people);
    assert_eq!(whole.ok, one_by_one.ok);
    assert!(whole.findings.len() > 10_000, "{}", whole.findings.len());
    let mut each: Vec<String> = one_by_one
        .findings
        .iter()
        .map(|f| format!("{f:?}"))
        .collect();
    each.sort_unstable();
    let mut all: Vec<String> = whole.findings.iter().map(|f| format!("{f:?}")).collect();
    all.sort_unstable();
    assert!(all == each, "the findings differ");
    // And the parallel outcome is sorted as documented: by kind, then key.
    assert!(whole
        .findings
        .windows(2)
        .all(|w| (w[0].kind, w[0].key()) <= (w[1].kind, w[1].key())));
}

/// Person `i` of [`large_tenant`]: its Azure, IFS and Flow users. `i % 8`
/// picks the case: Flow ID `≈` the Directory ID (0); the UPN's local part
/// (1, a later rule); two Flow users with the Directory ID (2, ambiguous); a
/// machine user with it (3); no Flow user, but a mail that is the next
/// person's Flow ID (4: it loses that Flow user to the next person, whose
/// only better rule is the Directory ID); a Directory ID linked by
/// sAMAccountName (5); two IFS users sharing the Directory ID (6,
/// duplicate); the mail (7, a later rule). People of different groups of
/// eight share no ID.
fn person(i: usize) -> (Vec<AadUser>, Vec<IfsUser>, Vec<FlowUser>) {
    let upn = format!("user{i}@contoso.com");
    let mut azure = az(&format!("{i:08x}-0000-4000-8000-{i:012x}"), &upn);
    let mut ifs_users = vec![ifs(&format!("U{i}"), &upn)];
    let flow_users = match i % 8 {
        4 => {
            let next = format!("dir{}", i + 1);
            azure.edit(|f| f.mail = Some(next.as_str().into()));
            vec![]
        }
        5 => {
            let dir = format!("dir{i}");
            azure.edit(|f| f.on_premises_sam_account_name = Some(dir.as_str().into()));
            ifs_users = vec![ifs(&format!("U{i}"), &dir)];
            vec![flow(&dir.to_uppercase())]
        }
        0 => vec![flow(&upn.to_uppercase())],
        1 => vec![flow(&format!("user{i}"))],
        2 => vec![flow(&upn), flow(&format!(" {upn} "))],
        3 => {
            let mut machine = flow(&upn);
            machine.edit(|f| f.user_type = "Machine".into());
            vec![machine]
        }
        6 => {
            ifs_users.push(ifs(&format!("V{i}"), &upn));
            vec![flow(&upn)]
        }
        7 => {
            let mail = format!("mail{i}@contoso.com");
            azure.edit(|f| f.mail = Some(mail.as_str().into()));
            vec![flow(&mail)]
        }
        _ => vec![flow(&upn)],
    };
    (vec![azure], ifs_users, flow_users)
}

fn large_tenant(people: std::ops::Range<usize>) -> Snapshots {
    let mut s = snap(vec![], vec![], vec![]);
    for i in people {
        let (azure, ifs_users, flow_users) = person(i);
        s.azure.extend(azure);
        s.ifs.extend(ifs_users);
        s.flow.extend(flow_users);
    }
    s
}

/// A large tenant's lookups are shared among threads (§2 and §3's first
/// hits, §3's first rule in IFS order, the ID comparisons, the findings'
/// keys), a small one's are not: a tenant of independent people gives the
/// findings its slices give, reconciled one by one.
#[test]
fn a_large_tenant_gives_the_findings_of_its_slices() {
    const PEOPLE: usize = 48_000;
    const SLICE: usize = 1_000;
    let opts = MatchOptions::default();
    let whole = reconcile(&large_tenant(0..PEOPLE), &opts);

    let mut sliced = Outcome::default();
    for start in (0..PEOPLE).step_by(SLICE) {
        let part = reconcile(&large_tenant(start..start + SLICE), &opts);
        sliced.people += part.people;
        sliced.ok += part.ok;
        sliced.findings.extend(part.findings);
    }
    let in_order = |findings: &[idrecon_core::model::Finding]| {
        let mut all: Vec<String> = findings.iter().map(|f| format!("{f:?}")).collect();
        all.sort();
        all
    };
    assert_eq!((whole.people, whole.ok), (sliced.people, sliced.ok));
    assert_eq!(in_order(&whole.findings), in_order(&sliced.findings));
    // Every case is there: 2 of 8 people OK (0, 5), the others one finding each.
    assert_eq!(whole.ok, PEOPLE as u64 / 4);
    let kinds: std::collections::BTreeSet<FindingKind> =
        whole.findings.iter().map(|f| f.kind).collect();
    for kind in [
        FindingKind::IdMismatch,
        FindingKind::Ambiguous,
        FindingKind::MissingInFlow,
        FindingKind::DuplicateDirectoryId,
    ] {
        assert!(kinds.contains(&kind), "no {kind:?} finding: {kinds:?}");
    }
}
