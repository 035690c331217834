//! Classification (docs/semantics.md §5): exactly one state per person, a
//! cause for every differing ID, and a [`Finding`] with a sentence an admin
//! can act on for every non-OK person.

use super::correlate::{AmbiguousLink, Link, Person};
use super::index::local_part;
use super::parallel::{in_parallel, per_half};
use super::{MatchOptions, Outcome};
use crate::model::{
    AadUser, Cause, Finding, FindingKind, FlowMatchRule, FlowUser, IfsMatchRule, IfsUser,
    NormalizedId, Snapshots,
};
use crate::permute::permute;
use std::cmp::Ordering;
use std::fmt::Write as _;

/// The one state a person ends in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PersonState {
    /// In scope, nothing to do.
    Ok,
    /// Not counted (guest, machine user, only inactive records, an Azure user
    /// using neither IFS nor Flow, …).
    OutOfScope,
    /// In scope and wrong: becomes a finding.
    Finding {
        kind: FindingKind,
        cause: Option<Cause>,
    },
}

/// Gives every person exactly one state and a finding for each non-OK one.
///
/// `people` must come from [`correlate`](super::correlate) on the same
/// `snapshots` and options.
pub fn classify(snapshots: &Snapshots, people: &[Person], opts: &MatchOptions) -> Outcome {
    let mut outcome = classify_unsorted(snapshots, people, opts);
    sort_findings(&mut outcome.findings);
    outcome
}

/// [`classify`] with the findings in no particular order (sort them with
/// [`sort_findings`]; the people are no longer needed for that).
///
/// In two passes: the states of all people, then each finding written
/// straight into its place in one vector sized once. Collecting each
/// thread's findings and then joining them held every finding twice, for
/// a moment, at the run's peak.
pub(crate) fn classify_unsorted(
    snapshots: &Snapshots,
    people: &[Person],
    opts: &MatchOptions,
) -> Outcome {
    // People are independent here: on a large tenant each core takes a
    // share. The findings are sorted afterwards, so the outcome is the same.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    let parts: Vec<&[Person]> = if threads < 2 || people.len() < PARALLEL_FROM {
        vec![people]
    } else {
        people.chunks(people.len().div_ceil(threads)).collect()
    };
    let states: Vec<States> = in_parallel(
        parts
            .iter()
            .map(|&part| move || states(snapshots, part, opts)),
    );
    let total = states.iter().map(|s| s.findings.len()).sum();
    // Placeholders (no text, nothing allocated) that the findings replace.
    let mut findings = vec![Finding::new(FindingKind::Conflict); total];
    let mut rest = findings.as_mut_slice();
    let mut fills = Vec::with_capacity(parts.len());
    for (&part, part_states) in parts.iter().zip(&states) {
        let (slots, tail) = rest.split_at_mut(part_states.findings.len());
        rest = tail;
        fills.push(move || {
            for (slot, &(i, kind, cause)) in slots.iter_mut().zip(&part_states.findings) {
                *slot = finding(snapshots, &part[i as usize], kind, cause);
            }
        });
    }
    in_parallel(fills);
    Outcome {
        people: states.iter().map(|s| s.people).sum(),
        ok: states.iter().map(|s| s.ok).sum(),
        findings,
    }
}

/// People from which [`classify`] shares the work among threads.
const PARALLEL_FROM: usize = 50_000;

/// The states of some people: the counts, and which of them (by position)
/// become findings of which kind.
struct States {
    people: u64,
    ok: u64,
    findings: Vec<(u32, FindingKind, Option<Cause>)>,
}

fn states(snapshots: &Snapshots, people: &[Person], opts: &MatchOptions) -> States {
    let mut states = States {
        people: 0,
        ok: 0,
        findings: Vec::new(),
    };
    for (i, person) in people.iter().enumerate() {
        match person_state(snapshots, person, opts) {
            PersonState::OutOfScope => {}
            PersonState::Ok => {
                states.people += 1;
                states.ok += 1;
            }
            PersonState::Finding { kind, cause } => {
                states.people += 1;
                states.findings.push((i as u32, kind, cause));
            }
        }
    }
    states
}

/// The state of one person (§5, first rule that applies).
pub fn person_state(snapshots: &Snapshots, person: &Person, opts: &MatchOptions) -> PersonState {
    let finding = |kind, cause| PersonState::Finding { kind, cause };
    let ifs = person.ifs().map(|i| &snapshots.ifs[i as usize]);
    let flow = person.flow().map(|f| &snapshots.flow[f as usize]);
    let ifs_active = ifs.is_some_and(|u| u.active());
    let flow_active = flow.is_some_and(|u| u.active());
    match person.link {
        Link::Excluded(_) => PersonState::OutOfScope,
        Link::Ambiguous => finding(FindingKind::Ambiguous, None),
        Link::DuplicateDirectoryId => finding(FindingKind::DuplicateDirectoryId, None),
        Link::DirectoryIdMissing => finding(FindingKind::DirectoryIdMissing, None),
        Link::Orphan if ifs_active || flow_active => finding(FindingKind::NotInAzure, None),
        Link::Orphan => PersonState::OutOfScope,
        Link::Linked => {
            let Some(azure) = person.azure().map(|a| &snapshots.azure[a as usize]) else {
                return PersonState::OutOfScope;
            };
            if !azure.account_enabled() {
                return if flow_active {
                    finding(FindingKind::DisabledInAzure, None)
                } else {
                    PersonState::OutOfScope
                };
            }
            match (ifs, flow) {
                (None, None) => PersonState::OutOfScope,
                (Some(_), None) if ifs_active => finding(FindingKind::MissingInFlow, None),
                (None, Some(_)) if flow_active => finding(FindingKind::MissingInIfs, None),
                (Some(_), None) | (None, Some(_)) => PersonState::OutOfScope,
                (Some(_), Some(_)) if person.flow_id_agrees => PersonState::Ok,
                (Some(ifs), Some(flow)) => {
                    let expected = ifs.directory_id().unwrap_or("");
                    let cause =
                        mismatch_cause(flow.user_id(), expected, azure, opts.case_sensitive);
                    let kind = if flow.is_sync_managed() {
                        FindingKind::SyncManaged
                    } else if person.expected_id_holder().is_some() {
                        FindingKind::Conflict
                    } else {
                        FindingKind::IdMismatch
                    };
                    finding(kind, Some(cause))
                }
            }
        }
    }
}

/// Why the Flow ID `flow_id` differs from the expected `expected` (§5
/// "Causes", first that applies).
pub fn mismatch_cause(
    flow_id: &str,
    expected: &str,
    azure: &AadUser,
    case_sensitive: bool,
) -> Cause {
    let norm = |raw: &str| NormalizedId::with_mode(raw, case_sensitive);
    let present = |raw: Option<&str>| raw.map(norm).filter(|n| !n.is_empty());
    let f = norm(flow_id);
    if case_sensitive && NormalizedId::new(flow_id) == NormalizedId::new(expected) {
        return Cause::CaseOnly;
    }
    let is_f = |n: &Option<NormalizedId>| n.as_ref() == Some(&f);
    if f.is_empty() {
        return Cause::Other;
    }
    let e = norm(expected);
    let upn = present(Some(azure.user_principal_name()));
    let mail = present(azure.mail());
    if is_f(&present(local_part(expected)))
        || is_f(&present(local_part(azure.user_principal_name())))
    {
        return Cause::DomainStripped;
    }
    let e_is = |n: &Option<NormalizedId>| n.as_ref() == Some(&e);
    if (is_f(&mail) && e_is(&upn)) || (is_f(&upn) && e_is(&mail)) {
        return Cause::MailVsUpn;
    }
    if is_f(&present(azure.on_premises_sam_account_name())) {
        return Cause::SamAccountName;
    }
    let id = azure.id().trim();
    if !id.is_empty() && flow_id.trim().eq_ignore_ascii_case(id) {
        return Cause::ObjectId;
    }
    Cause::Other
}

/// How a cause reads inside a sentence.
pub(crate) fn cause_phrase(cause: Cause) -> &'static str {
    match cause {
        Cause::CaseOnly => "they differ only in letter case",
        Cause::DomainStripped => "the Flow ID lacks the domain",
        Cause::MailVsUpn => "one is the mail address, the other the UPN",
        Cause::SamAccountName => "the Flow ID is the on-premises sAMAccountName",
        Cause::ObjectId => "the Flow ID is the Azure object ID",
        Cause::Other => "no known pattern",
    }
}

/// The most names a detail sentence lists before "and N more".
const MAX_NAMES: usize = 10;

fn name_list(mut names: Vec<String>) -> String {
    let extra = names.len().saturating_sub(MAX_NAMES);
    names.truncate(MAX_NAMES);
    let mut text = names.join(", ");
    if extra > 0 {
        let _ = write!(text, " and {extra} more");
    }
    text
}

fn ifs_name(u: &IfsUser) -> String {
    match u.directory_id().map(str::trim) {
        Some(dir) if !dir.is_empty() => format!("{} ('{}')", u.identity(), dir),
        _ => u.identity().to_string(),
    }
}

fn flow_name(u: &FlowUser) -> String {
    format!("'{}'", u.user_id())
}

fn azure_name(u: &AadUser) -> String {
    if u.user_principal_name().trim().is_empty() {
        format!("object {}", u.id())
    } else {
        u.user_principal_name().to_string()
    }
}

fn ifs_rule_name(rule: IfsMatchRule) -> &'static str {
    match rule {
        IfsMatchRule::Upn => "Directory ID = UPN",
        IfsMatchRule::Mail => "Directory ID = mail",
        IfsMatchRule::ObjectId => "Directory ID = object ID",
        IfsMatchRule::SamAccountName => "Directory ID = sAMAccountName",
    }
}

fn flow_rule_name(rule: FlowMatchRule) -> &'static str {
    match rule {
        FlowMatchRule::IfsDirectoryId => "user ID = IFS Directory ID",
        FlowMatchRule::Upn => "user ID = UPN",
        FlowMatchRule::Mail => "user ID = mail",
        FlowMatchRule::ObjectId => "user ID = object ID",
        FlowMatchRule::UpnLocalPart => "user ID = UPN without domain",
        FlowMatchRule::SamAccountName => "user ID = sAMAccountName",
        FlowMatchRule::Email => "Flow e-mail = mail",
    }
}

/// The finding of a non-OK person, every report field filled.
fn finding(s: &Snapshots, p: &Person, kind: FindingKind, cause: Option<Cause>) -> Finding {
    let azure = p.azure().map(|a| &s.azure[a as usize]);
    let ifs = p.ifs().map(|i| &s.ifs[i as usize]);
    let flow = p.flow().map(|f| &s.flow[f as usize]);
    let mut f = Finding::new(kind);
    f.cause = cause;
    if let Some(a) = azure {
        f.aad_id = Some(a.id().to_string());
        f.upn = Some(a.user_principal_name().to_string());
    }
    f.display_name = azure
        .and_then(|a| a.display_name())
        .or_else(|| ifs.and_then(|u| u.description()))
        .or_else(|| flow.and_then(|u| u.name()))
        .map(str::to_string);
    let dir = ifs
        .and_then(|u| u.directory_id())
        .map(str::trim)
        .filter(|d| !d.is_empty());
    if kind == FindingKind::DuplicateDirectoryId {
        let identities: Vec<&str> = p.all_ifs().map(|i| s.ifs[i as usize].identity()).collect();
        f.ifs_identity = Some(identities.join(", "));
    } else {
        f.ifs_identity = ifs.map(|u| u.identity().to_string());
    }
    f.ifs_directory_id = ifs.and_then(|u| u.directory_id().map(str::to_string));
    f.flow_user_id = flow.map(|u| u.user_id().to_string());
    f.expected_flow_user_id = dir.map(str::to_string);
    f.detail = detail(s, p, kind, cause, azure, ifs, flow, dir);
    f
}

#[allow(clippy::too_many_arguments)]
fn detail(
    s: &Snapshots,
    p: &Person,
    kind: FindingKind,
    cause: Option<Cause>,
    azure: Option<&AadUser>,
    ifs: Option<&IfsUser>,
    flow: Option<&FlowUser>,
    dir: Option<&str>,
) -> String {
    let flow_id = flow.map(|u| u.user_id()).unwrap_or("");
    let expected = dir.unwrap_or("");
    let why = cause.map(cause_phrase).unwrap_or("");
    let who = azure.map(azure_name).unwrap_or_default();
    match kind {
        FindingKind::IdMismatch => format!(
            "Flow user '{flow_id}' should have the IFS Directory ID '{expected}' as its ID \
             ({why}): rename the Flow user to '{expected}'."
        ),
        FindingKind::SyncManaged => {
            let sync = flow.and_then(|u| u.sync_source()).unwrap_or("");
            format!(
                "Flow user '{flow_id}' should be '{expected}' ({why}), but it is maintained by \
                 Flow's AD sync ({sync}): change the sync's user ID setting (include domain) \
                 instead of renaming; the next sync would undo a rename."
            )
        }
        FindingKind::Conflict => {
            let holder = p
                .expected_id_holder()
                .map(|h| flow_name(&s.flow[h as usize]))
                .unwrap_or_default();
            format!(
                "Flow user '{flow_id}' should be '{expected}' ({why}), but Flow user {holder} \
                 already has that ID: decide which of the two belongs to {who}, then rename or \
                 remove the other by hand."
            )
        }
        FindingKind::MissingInFlow => format!(
            "IFS user {} (Directory ID '{expected}') has no Flow user: if {who} needs Flow, \
             create Flow user '{expected}'.",
            ifs.map(|u| u.identity()).unwrap_or("")
        ),
        FindingKind::MissingInIfs => format!(
            "Flow user '{flow_id}' of {who} has no IFS user with a matching Directory ID: set \
             the Directory ID of this person's IFS user (or create one) so that OpenID sign-in \
             from Flow to IFS works."
        ),
        FindingKind::NotInAzure => match (ifs, flow) {
            (Some(i), Some(_)) => format!(
                "IFS user {} and Flow user '{flow_id}' have no Azure AD user: if the person has \
                 left, deactivate both; otherwise check the Directory ID.",
                ifs_name(i)
            ),
            (Some(i), None) => format!(
                "IFS user {} has no Azure AD user: if the person has left, deactivate it; \
                 otherwise correct the Directory ID.",
                ifs_name(i)
            ),
            _ => format!(
                "Flow user '{flow_id}' has no Azure AD user: deactivate it if the person has left."
            ),
        },
        FindingKind::DisabledInAzure => format!(
            "The Azure AD account {who} is disabled but Flow user '{flow_id}' is still active: \
             deactivate the Flow user."
        ),
        FindingKind::DirectoryIdMissing => format!(
            "IFS user {} is active but has no Directory ID: set it (usually to the person's UPN) \
             so that OpenID sign-in works.",
            ifs.map(|u| u.identity()).unwrap_or("")
        ),
        FindingKind::DuplicateDirectoryId => {
            let names: Vec<String> = p
                .all_ifs()
                .map(|i| s.ifs[i as usize].identity().to_string())
                .collect();
            format!(
                "IFS users {} share the Directory ID '{expected}': give each its own Directory \
                 ID (or clear it on the stale one); sign-in can only reach one of them.",
                name_list(names)
            )
        }
        FindingKind::Ambiguous => ambiguous_detail(s, p, &who),
    }
}

fn ambiguous_detail(s: &Snapshots, p: &Person, who: &str) -> String {
    let mut parts: Vec<String> = Vec::new();
    let azure_names = |azure: &[u32]| {
        name_list(
            azure
                .iter()
                .map(|&a| azure_name(&s.azure[a as usize]))
                .collect(),
        )
    };
    if let Some(amb) = p.ambiguity() {
        match &amb.ifs {
            Some(AmbiguousLink::Candidates { rule, records }) => parts.push(format!(
                "IFS users {} all match {who} ({})",
                name_list(
                    records
                        .iter()
                        .map(|&i| ifs_name(&s.ifs[i as usize]))
                        .collect()
                ),
                ifs_rule_name(*rule)
            )),
            Some(AmbiguousLink::Tie {
                rule,
                record,
                azure,
            }) => parts.push(format!(
                "IFS user {} matches Azure users {} equally ({})",
                ifs_name(&s.ifs[*record as usize]),
                azure_names(azure),
                ifs_rule_name(*rule)
            )),
            None => {}
        }
        match &amb.flow {
            Some(AmbiguousLink::Candidates { rule, records }) => parts.push(format!(
                "Flow users {} all match {who} ({})",
                name_list(
                    records
                        .iter()
                        .map(|&f| flow_name(&s.flow[f as usize]))
                        .collect()
                ),
                flow_rule_name(*rule)
            )),
            Some(AmbiguousLink::Tie {
                rule,
                record,
                azure,
            }) => parts.push(format!(
                "Flow user {} matches Azure users {} equally ({})",
                flow_name(&s.flow[*record as usize]),
                azure_names(azure),
                flow_rule_name(*rule)
            )),
            None => {}
        }
    }
    format!(
        "{}: make the IDs unique so that exactly one record matches; ambiguous people are never \
         fixed automatically.",
        parts.join("; ")
    )
}

/// Sorts by kind, then key, then every other field (a total order, so the
/// result never depends on the input order), and hands back the findings'
/// keys ([`Finding::key`]) in their new order.
///
/// Sorts positions and then moves the findings into place, instead of
/// sorting the findings themselves: at 100k+ findings of ~200 bytes, a
/// keyed copy of them and the sort's scratch half were tens of MiB at the
/// run's peak.
pub(crate) fn sort_findings(findings: &mut [Finding]) -> Vec<String> {
    let mut keys = keys_of(findings);
    let mut order: Vec<usize> = (0..findings.len()).collect();
    order.sort_by(|&x, &y| {
        let (a, b) = (&findings[x], &findings[y]);
        a.kind
            .cmp(&b.kind)
            .then_with(|| keys[x].cmp(&keys[y]))
            .then_with(|| compare_fields(a, b))
    });
    permute(&mut keys, order.clone());
    permute(findings, order);
    keys
}

/// The keys of `findings`, in their order; on a large run, two threads
/// share the work.
pub(crate) fn keys_of(findings: &[Finding]) -> Vec<String> {
    per_half(findings, |part| part.iter().map(Finding::key).collect())
}

fn compare_fields(a: &Finding, b: &Finding) -> Ordering {
    a.cause
        .cmp(&b.cause)
        .then_with(|| a.aad_id.cmp(&b.aad_id))
        .then_with(|| a.upn.cmp(&b.upn))
        .then_with(|| a.ifs_identity.cmp(&b.ifs_identity))
        .then_with(|| a.ifs_directory_id.cmp(&b.ifs_directory_id))
        .then_with(|| a.flow_user_id.cmp(&b.flow_user_id))
        .then_with(|| a.expected_flow_user_id.cmp(&b.expected_flow_user_id))
        .then_with(|| a.display_name.cmp(&b.display_name))
        .then_with(|| a.detail.cmp(&b.detail))
}
