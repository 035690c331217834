//! Properties of the core on random tenants drawn from a small pool of
//! colliding IDs (case variants, composed/decomposed letters, ß, İ/ı, …).

use crate::common as core_common;

use compact_str::{format_compact, CompactString};
use idrecon_core::model::{
    AadUser, AadUserFields, ActionKind, ActionStatus, Finding, FindingKind, FlowMatchRule,
    FlowUser, FlowUserFields, IfsMatchRule, IfsUser, IfsUserFields, NormalizedId, Snapshots,
};
use idrecon_core::reconcile::{
    classify, correlate, person_state, plan, plan_with, reconcile, reconcile_for_plan,
    reconcile_prepared, AzureForms, FlowForms, FlowFormsByPage, IfsForms, IfsLinks, MatchOptions,
    PersonState, PlanOptions, Prepared,
};
use proptest::prelude::*;
use proptest::sample::{select, subsequence};
use std::collections::HashSet;

const NAMES: &[&str] = &[
    "jdoe",
    "JDoe",
    "jdoe@contoso.com",
    "JDOE@Contoso.com",
    " jdoe@contoso.com ",
    "asa@x.se",
    "Åsa@x.se",
    "A\u{30a}sa@x.se",
    "straße@x.de",
    "STRASSE@x.de",
    "İpek@x.tr",
    "i\u{307}pek@x.tr",
    "ırmak@x.tr",
    "o'brien@x.ie",
    "obj-1",
    "OBJ-1",
    "b@x",
    "c@x",
    "",
];
const OBJECT_IDS: &[&str] = &["obj-1", "OBJ-1", "obj-2", "jdoe", "g-3"];
const IDENTITIES: &[&str] = &["A", "B", "C", "D", "E"];

fn name() -> impl Strategy<Value = CompactString> {
    select(NAMES).prop_map(CompactString::from)
}

fn aad() -> impl Strategy<Value = AadUser> {
    (
        select(OBJECT_IDS),
        name(),
        proptest::option::of(name()),
        proptest::option::of(name()),
        prop::bool::weighted(0.85),
        proptest::option::of(select(&["Guest", "Member"][..])),
    )
        .prop_map(|(id, upn, mail, sam, enabled, user_type)| {
            AadUser::from(AadUserFields {
                id: id.into(),
                user_principal_name: upn,
                mail,
                display_name: None,
                account_enabled: enabled,
                employee_id: None,
                on_premises_sam_account_name: sam,
                user_type: user_type.map(CompactString::from),
            })
        })
}

fn ifs_user() -> impl Strategy<Value = IfsUser> {
    (
        select(IDENTITIES),
        proptest::option::of(name()),
        prop::bool::weighted(0.8),
    )
        .prop_map(|(identity, dir, active)| {
            IfsUser::from(IfsUserFields {
                identity: identity.into(),
                description: None,
                directory_id: dir,
                active,
                email: None,
            })
        })
}

fn flow_user() -> impl Strategy<Value = FlowUser> {
    (
        name(),
        proptest::option::of(name()),
        prop::bool::weighted(0.8),
        prop::bool::weighted(0.1),
        prop::bool::weighted(0.2),
    )
        .prop_map(|(id, email, active, machine, synced)| {
            FlowUser::from(FlowUserFields {
                user_id: id,
                name: None,
                email,
                active,
                user_type: if machine { "Machine" } else { "Full" }.into(),
                sync_source: synced.then(|| "AzureAD".into()),
            })
        })
}

fn snapshots() -> impl Strategy<Value = Snapshots> {
    (
        prop::collection::vec(aad(), 0..8),
        prop::collection::vec(ifs_user(), 0..8),
        prop::collection::vec(flow_user(), 0..8),
    )
        .prop_map(|(azure, ifs, flow)| Snapshots { azure, ifs, flow })
}

fn options() -> impl Strategy<Value = MatchOptions> {
    (
        any::<bool>(),
        any::<bool>(),
        subsequence(IfsMatchRule::DEFAULT_ORDER.to_vec(), 0..=4).prop_shuffle(),
        subsequence(FlowMatchRule::DEFAULT_ORDER.to_vec(), 0..=7).prop_shuffle(),
        any::<bool>(),
    )
        .prop_map(
            |(case_sensitive, include_guests, ifs_rules, flow_rules, defaults)| {
                if defaults {
                    MatchOptions {
                        case_sensitive,
                        include_guests,
                        ..MatchOptions::default()
                    }
                } else {
                    MatchOptions {
                        case_sensitive,
                        include_guests,
                        ifs_rules,
                        flow_rules,
                    }
                }
            },
        )
}

const UPNS: &[&str] = &[
    "jdoe@contoso.com",
    "JDOE@Contoso.com",
    "asa@x.se",
    "A\u{30a}sa@x.se",
    "straße@x.de",
    "STRASSE@x.de",
    "İpek@x.tr",
    "ırmak@x.tr",
    "o'brien@x.ie",
    "b@x",
    "c@x",
];

/// People present in several systems with typical drift between the IDs,
/// plus random noise: mismatches, chains and collisions are common.
fn tenant() -> impl Strategy<Value = Snapshots> {
    let person = (
        select(OBJECT_IDS),
        select(UPNS),
        proptest::option::of(select(UPNS)),
        select(IDENTITIES),
        0u8..4,
        0u8..8,
        prop::bool::weighted(0.15),
    );
    (prop::collection::vec(person, 0..6), snapshots()).prop_map(|(people, mut s)| {
        for (id, upn, mail, identity, dir_kind, flow_kind, synced) in people {
            let mut a = core_common::az(id, upn);
            a.edit(|fields| fields.mail = mail.map(CompactString::from));
            a.edit(|fields| {
                fields.on_premises_sam_account_name = Some(format_compact!("{identity}01"))
            });
            let dir = match dir_kind {
                0 => Some(upn.to_string()),
                1 => Some(upn.to_uppercase()),
                2 => mail.map(String::from),
                _ => None,
            };
            let local = upn.split('@').next().unwrap_or(upn).to_string();
            let flow_id = match flow_kind {
                0 => dir.clone(),
                1 => Some(local),
                2 => Some(upn.to_lowercase()),
                3 => mail.map(String::from),
                4 => Some(id.to_uppercase()),
                5 => Some(format!("{identity}01")),
                6 => Some(local.to_uppercase()),
                _ => None,
            };
            if let Some(dir) = dir {
                s.ifs.push(core_common::ifs(identity, &dir));
            }
            if let Some(flow_id) = flow_id {
                let mut f = core_common::flow(&flow_id);
                f.edit(|fields| fields.sync_source = synced.then(|| "AzureAD".into()));
                s.flow.push(f);
            }
            s.azure.push(a);
        }
        s
    })
}

fn any_tenant() -> impl Strategy<Value = Snapshots> {
    prop_oneof![snapshots(), tenant()]
}

/// Snapshots plus a shuffled copy.
fn shuffled_pair() -> impl Strategy<Value = (Snapshots, Snapshots)> {
    any_tenant().prop_flat_map(|s| {
        (
            Just(s.azure.clone()).prop_shuffle(),
            Just(s.ifs.clone()).prop_shuffle(),
            Just(s.flow.clone()).prop_shuffle(),
        )
            .prop_map(move |(azure, ifs, flow)| (s.clone(), Snapshots { azure, ifs, flow }))
    })
}

fn flow_key(id: &str, case_insensitive: bool) -> NormalizedId {
    NormalizedId::with_mode(id, !case_insensitive)
}

/// Applies the executable actions to a model of Flow, checking that no
/// rename goes into a taken ID (which is what keeps IDs unique). Returns the
/// new IDs of the renamed users.
fn apply(
    flow: &mut [FlowUser],
    plan: &idrecon_core::reconcile::Plan,
    case_insensitive: bool,
) -> Result<Vec<String>, TestCaseError> {
    let mut renamed = Vec::new();
    for action in plan.executable() {
        let source = flow.iter().position(|u| u.user_id() == action.flow_user_id);
        let Some(source) = source else {
            return Err(TestCaseError::fail(format!(
                "{} not in Flow",
                action.flow_user_id
            )));
        };
        match action.kind {
            ActionKind::Rename => {
                let to = action.new_flow_user_id.clone().unwrap_or_default();
                let key = flow_key(&to, case_insensitive);
                let taken = flow
                    .iter()
                    .enumerate()
                    .any(|(i, u)| i != source && flow_key(u.user_id(), case_insensitive) == key);
                prop_assert!(
                    !taken,
                    "rename {} → {to} into a taken ID",
                    action.flow_user_id
                );
                flow[source].edit(|fields| fields.user_id = to.as_str().into());
                renamed.push(to);
            }
            ActionKind::Deactivate => flow[source].edit(|fields| fields.active = false),
            ActionKind::None => prop_assert!(false, "action of kind none"),
        }
    }
    Ok(renamed)
}

fn distinct_in_flow(flow: Vec<FlowUser>, case_insensitive: bool) -> Vec<FlowUser> {
    let mut seen = HashSet::new();
    flow.into_iter()
        .filter(|u| seen.insert(flow_key(u.user_id(), case_insensitive)))
        .collect()
}

fn open_plan(case_insensitive: bool, deactivate: bool) -> PlanOptions {
    PlanOptions {
        deactivate_orphans: deactivate,
        flow_case_insensitive: case_insensitive,
        max_changes: u32::MAX,
        max_change_percent: 100.0,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// Forms and §2's links computed ahead change nothing: the same outcome
    /// with all of them prepared, and when they were made from other
    /// records or with other options (then they are ignored and computed
    /// again), links included.
    #[test]
    fn prepared_forms_give_the_same_outcome(
        s in any_tenant(),
        other in any_tenant(),
        opts in options(),
        other_opts in options(),
    ) {
        let plain = reconcile(&s, &opts);
        let azure = AzureForms::new(&s.azure, &opts);
        let ifs = IfsForms::new(&s.ifs, &opts);
        let ifs_links = IfsLinks::new(&s.azure, &azure, &s.ifs, &ifs, &opts);
        let prepared = Prepared {
            azure: Some(azure),
            ifs: Some(ifs),
            flow: Some(FlowForms::new(&s.flow, &opts)),
            ifs_links: Some(ifs_links),
        };
        prop_assert_eq!(&reconcile_prepared(&s, &opts, prepared), &plain);
        // Links made from forms of other records or options: those forms
        // are made again for the links.
        let stale_azure = AzureForms::new(&other.azure, &opts);
        let stale_ifs = IfsForms::new(&s.ifs, &other_opts);
        let from_stale_forms = IfsLinks::new(&s.azure, &stale_azure, &s.ifs, &stale_ifs, &opts);
        let prepared = Prepared {
            ifs_links: Some(from_stale_forms),
            ..Prepared::default()
        };
        prop_assert_eq!(&reconcile_prepared(&s, &opts, prepared), &plain);
        let other_azure = AzureForms::new(&other.azure, &opts);
        let other_ifs = IfsForms::new(&other.ifs, &opts);
        let stale = Prepared {
            azure: Some(stale_azure),
            ifs: Some(stale_ifs),
            flow: Some(FlowForms::new(&s.flow.clone(), &opts)),
            // Links of other records, and of these records with other options.
            ifs_links: Some(if s.azure.len() % 2 == 0 {
                IfsLinks::new(&other.azure, &other_azure, &other.ifs, &other_ifs, &opts)
            } else {
                let azure = AzureForms::new(&s.azure, &other_opts);
                let ifs = IfsForms::new(&s.ifs, &other_opts);
                IfsLinks::new(&s.azure, &azure, &s.ifs, &ifs, &other_opts)
            }),
        };
        prop_assert_eq!(&reconcile_prepared(&s, &opts, stale), &plain);
    }

    /// Flow's forms made a page at a time, however the pages are cut and
    /// whatever size was guessed, give the outcome and the plan of forms
    /// made at once; finished over fewer users than it was given, they are
    /// made anew.
    #[test]
    fn flow_forms_made_page_by_page_give_the_same_outcome(
        s in any_tenant(),
        opts in options(),
        cuts in proptest::collection::vec(0usize..64, 0..6),
        expected in 0usize..80,
        case_insensitive in any::<bool>(),
    ) {
        let plain = reconcile(&s, &opts);
        let mut by_page = FlowFormsByPage::new(&opts, expected);
        let mut ends: Vec<usize> = cuts.iter().map(|&c| c.min(s.flow.len())).collect();
        ends.sort_unstable();
        for end in ends {
            by_page.extend(&s.flow[..end]);
        }
        let forms = by_page.finish(&s.flow);
        let prepared = Prepared { flow: Some(forms), ..Prepared::default() };
        let (outcome, flow_ids, _) = reconcile_for_plan(&s, &opts, prepared);
        prop_assert_eq!(&outcome, &plain);
        // The plan reuses the index made page by page.
        let plan_opts = open_plan(case_insensitive, false);
        let mut expected_findings = plain.findings.clone();
        let expected_plan = plan(&s.flow, &mut expected_findings, &plan_opts);
        let mut findings = outcome.findings.clone();
        let got = plan_with(&s.flow, &mut findings, &plan_opts, Some(flow_ids));
        prop_assert_eq!(&got.actions, &expected_plan.actions);
        prop_assert_eq!(&findings, &expected_findings);

        if !s.flow.is_empty() {
            // The same list, one user shorter (same address): the forms
            // are made anew for it, not left with a user it no longer has.
            let mut shorter = s.clone();
            let mut by_page = FlowFormsByPage::new(&opts, expected);
            by_page.extend(&shorter.flow);
            shorter.flow.pop();
            let forms = by_page.finish(&shorter.flow);
            let prepared = Prepared { flow: Some(forms), ..Prepared::default() };
            prop_assert_eq!(
                &reconcile_prepared(&shorter, &opts, prepared),
                &reconcile(&shorter, &opts)
            );
        }
    }

    /// The plan with correlation's index of the Flow users is the plan
    /// without it, whether Flow compares IDs the way matching does (then
    /// the index is reused) or not (then it is made again), and an index of
    /// other Flow users is never used.
    #[test]
    fn correlations_flow_index_gives_the_same_plan(
        s in any_tenant(),
        other in any_tenant(),
        opts in options(),
        case_insensitive in any::<bool>(),
        deactivate in any::<bool>(),
    ) {
        let plan_opts = open_plan(case_insensitive, deactivate);
        let (outcome, flow_ids, _) = reconcile_for_plan(&s, &opts, Prepared::default());
        let mut plain = outcome.findings.clone();
        let expected = plan(&s.flow, &mut plain, &plan_opts);
        let mut reused = outcome.findings.clone();
        let got = plan_with(&s.flow, &mut reused, &plan_opts, Some(flow_ids));
        prop_assert_eq!(&got.actions, &expected.actions);
        prop_assert_eq!(&reused, &plain);
        let (_, foreign, _) = reconcile_for_plan(&other, &opts, Prepared::default());
        let mut findings = outcome.findings.clone();
        let got = plan_with(&s.flow, &mut findings, &plan_opts, Some(foreign));
        prop_assert_eq!(&got.actions, &expected.actions);
        prop_assert_eq!(&findings, &plain);
    }

    #[test]
    fn every_record_in_exactly_one_person_and_one_state(s in any_tenant(), opts in options()) {
        let people = correlate(&s, &opts);
        let mut azure = vec![0u32; s.azure.len()];
        let mut ifs = vec![0u32; s.ifs.len()];
        let mut flow = vec![0u32; s.flow.len()];
        for p in &people {
            let mut records = 0;
            if let Some(a) = p.azure() {
                azure[a as usize] += 1;
                records += 1;
            }
            for i in p.all_ifs() {
                ifs[i as usize] += 1;
                records += 1;
            }
            for f in p.all_flow() {
                flow[f as usize] += 1;
                records += 1;
            }
            prop_assert!(records > 0, "empty person {p:?}");
        }
        prop_assert!(azure.iter().chain(&ifs).chain(&flow).all(|&n| n == 1),
            "azure {azure:?} ifs {ifs:?} flow {flow:?}");

        let states: Vec<PersonState> = people.iter().map(|p| person_state(&s, p, &opts)).collect();
        let outcome = classify(&s, &people, &opts);
        let in_scope = states.iter().filter(|st| **st != PersonState::OutOfScope).count() as u64;
        let ok = states.iter().filter(|st| **st == PersonState::Ok).count() as u64;
        prop_assert_eq!(outcome.people, in_scope);
        prop_assert_eq!(outcome.ok, ok);
        prop_assert_eq!(outcome.findings.len() as u64, in_scope - ok);
        // Causes exactly on the three mismatch kinds.
        for f in &outcome.findings {
            let has_cause = matches!(f.kind, FindingKind::IdMismatch | FindingKind::SyncManaged | FindingKind::Conflict);
            prop_assert_eq!(f.cause.is_some(), has_cause, "{:?}", f);
            prop_assert!(!f.detail.is_empty());
        }
        prop_assert_eq!(reconcile(&s, &opts), outcome);
    }

    #[test]
    fn outcome_is_invariant_under_shuffling((s, shuffled) in shuffled_pair(), opts in options()) {
        prop_assert_eq!(reconcile(&s, &opts), reconcile(&shuffled, &opts));
    }

    #[test]
    fn normalized_id_is_idempotent(raw in any::<String>()) {
        let once = NormalizedId::new(&raw);
        prop_assert_eq!(NormalizedId::new(once.as_str()), once.clone());
        let cs = NormalizedId::case_sensitive(&raw);
        prop_assert_eq!(NormalizedId::case_sensitive(cs.as_str()), cs);
    }

    #[test]
    fn normalized_id_is_idempotent_on_tricky_letters(
        chars in prop::collection::vec(select(vec![
            'a', 'A', 'i', 'I', 'İ', 'ı', 'ß', 'ẞ', 's', 'ſ', 'K', '\u{212a}', '\u{212b}', 'Å',
            '\u{301}', '\u{307}', '\u{30a}', '\u{345}', 'ΐ', 'ǰ', 'ﬀ', 'ς', 'Σ', ' ', '\u{a0}', '@',
        ]), 0..12)
    ) {
        let raw: String = chars.into_iter().collect();
        let once = NormalizedId::new(&raw);
        prop_assert_eq!(NormalizedId::new(once.as_str()), once.clone());
        // Equal ignoring ASCII case ⇒ equal normal forms (the object-ID rule relies on it).
        prop_assert_eq!(NormalizedId::new(&raw.to_ascii_uppercase()), once);
    }

    #[test]
    fn planned_renames_never_go_into_a_taken_id(
        pool in subsequence(vec!["a", "A", "b", "B", "c", "d", "e@x", "E@X", "f", "Straße", "STRASSE"], 1..=11),
        wishes in prop::collection::vec((0usize..11, select(vec!["a", "A", "b", "B", "c", "d", "e@x", "E@X", "f", "g", "Straße", "strasse"])), 0..10),
        case_insensitive in any::<bool>(),
    ) {
        let flow_users = distinct_in_flow(
            pool.iter().map(|id| core_common::flow(id)).collect(),
            case_insensitive,
        );
        let mut sources = HashSet::new();
        let mut findings: Vec<Finding> = wishes
            .iter()
            .filter_map(|(i, to)| flow_users.get(i % flow_users.len()).map(|u| (u.user_id().to_string(), *to)))
            .filter(|(from, to)| from != to && sources.insert(from.clone()))
            .map(|(from, to)| core_common::mismatch(&from, to))
            .collect();
        let p = plan(&flow_users, &mut findings, &open_plan(case_insensitive, false));
        prop_assert!(p.threshold.is_none());
        prop_assert_eq!(p.actions.len(), findings.len());
        for a in &p.actions {
            prop_assert!(matches!(a.status, ActionStatus::Planned | ActionStatus::Blocked));
            prop_assert_eq!(a.status == ActionStatus::Blocked, a.error.is_some(), "{:?}", a);
        }
        for f in &findings {
            prop_assert_eq!(f.action, ActionKind::Rename);
            prop_assert!(f.action_status.is_some());
        }
        let mut model = flow_users.clone();
        apply(&mut model, &p, case_insensitive)?;
        let keys: HashSet<NormalizedId> =
            model.iter().map(|u| flow_key(u.user_id(), case_insensitive)).collect();
        prop_assert_eq!(keys.len(), model.len(), "IDs shared after applying: {:?}", model);
    }

}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

    #[test]
    fn after_applying_no_new_rename_for_those_people(
        s in tenant(),
        opts in options(),
        case_insensitive in any::<bool>(),
        deactivate in any::<bool>(),
    ) {
        let mut s = s;
        s.flow = distinct_in_flow(std::mem::take(&mut s.flow), case_insensitive);
        // People are told apart by their Azure object ID here, so the input
        // must keep the real systems' keys unique (Graph object IDs, IFS
        // identities; the connectors refuse duplicates before the core).
        let mut ids = HashSet::new();
        s.azure.retain(|u| ids.insert(u.id().trim().to_ascii_lowercase()));
        let mut identities = HashSet::new();
        s.ifs.retain(|u| identities.insert(u.identity().to_string()));
        let mut findings = reconcile(&s, &opts).findings;
        let plan_opts = open_plan(case_insensitive, deactivate);
        let p = plan(&s.flow, &mut findings, &plan_opts);
        let renamed_people: HashSet<String> = findings
            .iter()
            .filter(|f| f.action == ActionKind::Rename && f.action_status == Some(ActionStatus::Planned))
            .filter_map(|f| f.aad_id.clone())
            .collect();
        let mut after = s.clone();
        let renamed = apply(&mut after.flow, &p, case_insensitive)?;
        let mut again = reconcile(&after, &opts).findings;
        let p2 = plan(&after.flow, &mut again, &plan_opts);
        for a in p2.actions.iter().filter(|a| a.kind == ActionKind::Rename) {
            prop_assert!(!renamed.contains(&a.flow_user_id), "renamed again: {:?}", a);
        }
        for f in again.iter().filter(|f| f.action == ActionKind::Rename) {
            prop_assert!(
                !f.aad_id.as_ref().is_some_and(|id| renamed_people.contains(id)),
                "new rename for a fixed person: {:?}", f
            );
        }
    }
}
