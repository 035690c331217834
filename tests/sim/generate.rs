//! The generator: deterministic, realistic proportions, a consistent
//! expected-findings list.

use idrecon::model::{Cause, FindingKind, NormalizedId};
use idrecon::sim::generate::{generate, Archetype, FLOW_USERS_GROUP_ID};
use std::collections::{HashMap, HashSet};
use std::time::Instant;

#[test]
fn same_seed_same_tenant_other_seed_other_tenant() {
    let a = generate(3000, 42);
    let b = generate(3000, 42);
    let c = generate(3000, 43);
    assert_eq!(a.tenant, b.tenant);
    assert_eq!(a.expected, b.expected);
    assert_ne!(a.tenant.azure, c.tenant.azure);
}

fn count(archetypes: &[(Archetype, usize)], which: &[Archetype]) -> usize {
    archetypes
        .iter()
        .filter(|(a, _)| which.contains(a))
        .map(|(_, n)| n)
        .sum()
}

#[test]
fn proportions_are_roughly_as_intended() {
    let people = 20_000;
    let g = generate(people, 7);
    let counts = &g.archetype_counts;
    assert_eq!(counts.iter().map(|(_, n)| n).sum::<usize>(), people);
    let in_scope: usize = counts
        .iter()
        .filter(|(a, _)| !a.is_out_of_scope())
        .map(|(_, n)| n)
        .sum();
    let consistent: usize = counts
        .iter()
        .filter(|(a, _)| a.is_consistent())
        .map(|(_, n)| n)
        .sum();
    let share = consistent as f64 / in_scope as f64;
    assert!((0.82..0.88).contains(&share), "consistent share {share}");
    // Every archetype occurs, each near its weight.
    for (archetype, weight) in Archetype::WEIGHTS {
        let n = counts.iter().find(|(a, _)| *a == archetype).unwrap().1;
        let expected = people as f64 * weight as f64 / 1000.0;
        assert!(n > 0, "{archetype:?} missing");
        assert!(
            (n as f64 - expected).abs() < 5.0 * expected.sqrt() + 3.0,
            "{archetype:?}: {n} vs {expected}"
        );
    }
    // Sources are of realistic relative size.
    let azure = g.tenant.azure.len() as f64;
    assert!(g.tenant.ifs.len() as f64 / azure > 0.75);
    assert!(g.tenant.flow.len() as f64 / azure > 0.75);
    // Drift: most mismatches are domain stripping (the root-cause advice case).
    let by_cause = |c: Cause| g.expected.iter().filter(|f| f.cause == Some(c)).count();
    let with_cause = g.expected.iter().filter(|f| f.cause.is_some()).count();
    assert!(by_cause(Cause::DomainStripped) * 2 > with_cause);
    for cause in [Cause::MailVsUpn, Cause::SamAccountName, Cause::ObjectId] {
        assert!(by_cause(cause) > 0, "{cause:?}");
    }
}

#[test]
fn expected_findings_match_the_archetypes() {
    let g = generate(20_000, 3);
    let c = &g.archetype_counts;
    let mut by_kind: HashMap<FindingKind, usize> = HashMap::new();
    for f in &g.expected {
        *by_kind.entry(f.kind).or_default() += 1;
    }
    let kind = |k: FindingKind| by_kind.get(&k).copied().unwrap_or(0);
    use Archetype as A;
    assert_eq!(
        kind(FindingKind::IdMismatch),
        count(
            c,
            &[
                A::DomainStripped,
                A::MailVsUpn,
                A::IfsMailFlowUpn,
                A::SamAccountName,
                A::ObjectIdAsFlowId
            ]
        )
    );
    assert_eq!(
        kind(FindingKind::SyncManaged),
        count(c, &[A::DomainStrippedSynced, A::SamAccountNameSynced])
    );
    assert_eq!(
        kind(FindingKind::MissingInFlow),
        count(c, &[A::MissingInFlow])
    );
    assert_eq!(
        kind(FindingKind::MissingInIfs),
        count(c, &[A::MissingInIfs, A::DirectoryIdMissingWithAzure])
    );
    assert_eq!(
        kind(FindingKind::NotInAzure),
        count(
            c,
            &[
                A::LeaverIfsAndFlow,
                A::LeaverFlowOnly,
                A::LeaverIfsOnly,
                A::GuestWithFlow
            ]
        ),
        "the Flow candidates of an ambiguous person are not orphans (semantics.md §3)"
    );
    assert_eq!(
        kind(FindingKind::DisabledInAzure),
        count(c, &[A::DisabledInAzure])
    );
    assert_eq!(kind(FindingKind::Ambiguous), count(c, &[A::Ambiguous]));
    assert_eq!(
        kind(FindingKind::DirectoryIdMissing),
        count(c, &[A::DirectoryIdMissing, A::DirectoryIdMissingWithAzure])
    );
    assert_eq!(
        kind(FindingKind::DuplicateDirectoryId),
        count(c, &[A::DuplicateDirectoryId, A::DuplicateDirectoryIdLeaver])
    );
    assert_eq!(
        kind(FindingKind::Conflict),
        count(c, &[A::ConflictWithMachineUser])
    );
    assert!(count(c, &[A::ConflictWithMachineUser]) > 0);

    // Keys are unique and their anchors exist in the tenant.
    let keys: HashSet<&str> = g.expected.iter().map(|f| f.key.as_str()).collect();
    assert_eq!(keys.len(), g.expected.len());
    let aad: HashSet<String> = g
        .tenant
        .azure
        .iter()
        .map(|u| u.id().to_ascii_lowercase())
        .collect();
    let ifs: HashSet<String> = g
        .tenant
        .ifs
        .iter()
        .map(|u| NormalizedId::new(u.identity()).as_str().to_string())
        .collect();
    let flow: HashSet<String> = g
        .tenant
        .flow
        .iter()
        .map(|u| NormalizedId::new(u.user_id()).as_str().to_string())
        .collect();
    for f in &g.expected {
        let (kind, anchor) = f.key.split_once('|').unwrap();
        assert_eq!(kind.parse::<FindingKind>().ok(), Some(f.kind));
        let ok = if let Some(id) = anchor.strip_prefix("aad:") {
            aad.contains(id)
        } else if let Some(identity) = anchor.strip_prefix("ifs:") {
            // duplicate groups join their identities
            identity.split(", ").all(|i| ifs.contains(i))
        } else if let Some(id) = anchor.strip_prefix("flow:") {
            flow.contains(id)
        } else {
            false
        };
        assert!(ok, "anchor of {} not in the tenant", f.key);
        assert_eq!(
            f.cause.is_some(),
            matches!(
                f.kind,
                FindingKind::IdMismatch | FindingKind::SyncManaged | FindingKind::Conflict
            ),
            "{}",
            f.key
        );
    }
}

#[test]
fn tenant_contains_the_tricky_shapes() {
    let g = generate(5000, 1);
    let upns: Vec<&str> = g
        .tenant
        .azure
        .iter()
        .map(|u| u.user_principal_name())
        .collect();
    assert!(upns.iter().any(|u| u.contains('\'')), "apostrophes");
    assert!(upns.iter().any(|u| !u.is_ascii()), "non-ASCII UPNs");
    assert!(upns.iter().any(|u| u.contains("#EXT#")), "guests");
    assert!(g.tenant.azure.iter().any(|u| !u.account_enabled()));
    assert!(g.tenant.flow.iter().any(|u| u.is_machine()));
    assert!(g
        .tenant
        .flow
        .iter()
        .any(|u| u.user_id() == idrecon::sim::FLOW_USERNAME && u.is_machine()));
    assert!(g.tenant.flow.iter().any(|u| u.is_sync_managed()));
    assert!(g.tenant.ifs.iter().any(|u| u.directory_id().is_none()));
    // Some Directory IDs are stored decomposed (NFD) and equal their UPN only after normalisation.
    assert!(g.tenant.ifs.iter().any(|u| u
        .directory_id()
        .is_some_and(|d| d.chars().any(|c| ('\u{300}'..='\u{36f}').contains(&c)))));
    // Case-only differences that are fine by default.
    let dirs: HashSet<&str> = g
        .tenant
        .ifs
        .iter()
        .filter_map(|u| u.directory_id())
        .collect();
    assert!(
        g.tenant
            .flow
            .iter()
            .any(|f| !dirs.contains(f.user_id())
                && dirs.contains(f.user_id().to_lowercase().as_str()))
    );
    assert!(!g.tenant.groups[FLOW_USERS_GROUP_ID].is_empty());
}

#[test]
fn generation_is_fast_enough_for_large_tenants() {
    // 200k people in a debug build; 1M in release takes a few seconds
    // (see the ignored test below).
    let started = Instant::now();
    let g = generate(200_000, 1);
    let elapsed = started.elapsed();
    assert_eq!(
        g.archetype_counts.iter().map(|(_, n)| n).sum::<usize>(),
        200_000
    );
    assert!(elapsed.as_secs() < 60, "took {elapsed:?}");
}

#[test]
#[ignore = "run with --release --ignored: 1M people"]
fn one_million_people() {
    let started = Instant::now();
    let g = generate(1_000_000, 1);
    let elapsed = started.elapsed();
    eprintln!(
        "1M people: {elapsed:?}; azure {} ifs {} flow {} expected {}",
        g.tenant.azure.len(),
        g.tenant.ifs.len(),
        g.tenant.flow.len(),
        g.expected.len()
    );
    assert!(elapsed.as_secs() < 10, "took {elapsed:?}");
}

/// The generator's `expected` is exactly what the core finds (in process,
/// no HTTP), for small tenants (one of each archetype) and larger drawn ones.
#[test]
fn expected_is_exactly_what_the_core_finds() {
    use idrecon::model::Snapshots;
    use idrecon::reconcile::{reconcile, MatchOptions};
    use std::collections::BTreeSet;
    for (people, seed) in [
        (Archetype::WEIGHTS.len(), 1),
        (100, 2),
        (300, 1),
        (300, 3),
        (2_000, 4),
        (20_000, 5),
    ] {
        let g = generate(people, seed);
        let snapshots = Snapshots {
            azure: g.tenant.azure.clone(),
            ifs: g.tenant.ifs.clone(),
            flow: g.tenant.flow.clone(),
        };
        let found: BTreeSet<(FindingKind, Option<Cause>, String)> =
            reconcile(&snapshots, &MatchOptions::default())
                .findings
                .iter()
                .map(|f| (f.kind, f.cause, f.key()))
                .collect();
        let want: BTreeSet<(FindingKind, Option<Cause>, String)> = g
            .expected
            .iter()
            .map(|f| (f.kind, f.cause, f.key.clone()))
            .collect();
        assert_eq!(
            found.difference(&want).collect::<Vec<_>>(),
            Vec::<&(FindingKind, Option<Cause>, String)>::new(),
            "{people} people, seed {seed}: found but not expected"
        );
        assert_eq!(
            want.difference(&found).collect::<Vec<_>>(),
            Vec::<&(FindingKind, Option<Cause>, String)>::new(),
            "{people} people, seed {seed}: expected but not found"
        );
    }
}

/// The one-of-each block holds the conflict archetype: its machine user
/// holds the person's Directory ID while the person's own Flow user lacks
/// the domain.
#[test]
fn small_tenants_contain_a_conflict_with_a_machine_user() {
    let g = generate(Archetype::WEIGHTS.len(), 9);
    let conflicts: Vec<_> = g
        .expected
        .iter()
        .filter(|f| f.kind == FindingKind::Conflict)
        .collect();
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    assert_eq!(conflicts[0].cause, Some(Cause::DomainStripped));
    let dirs: HashSet<NormalizedId> = g
        .tenant
        .ifs
        .iter()
        .filter_map(|u| u.directory_id().map(NormalizedId::new))
        .collect();
    let holders: Vec<_> = g
        .tenant
        .flow
        .iter()
        .filter(|u| u.is_machine() && dirs.contains(&NormalizedId::new(u.user_id())))
        .collect();
    assert_eq!(holders.len(), 1, "{holders:?}");
}
