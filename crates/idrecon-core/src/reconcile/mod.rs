//! The pure core: correlate records into people, classify each person,
//! plan the fixes. No I/O, no clock: everything comes in as arguments.
//!
//! The rules are those of `docs/semantics.md`:
//! [`correlate`] (§0–§4) links the records of the three snapshots into
//! [`Person`]s, [`classify`] (§5) gives every person exactly one state and
//! turns the non-OK ones into [`Finding`]s, [`plan`] (§7) turns findings into
//! safe, ordered [`Action`](crate::model::Action)s, [`advice`] aggregates
//! causes into settings to change and [`mark_new_and_persisting`] (§6)
//! compares with the previous run.

pub mod advice;
pub mod classify;
pub(crate) mod column;
pub mod correlate;
mod hits;
pub(crate) mod index;
mod parallel;
pub mod plan;
pub mod prepare;
pub mod status;

pub use advice::advice;
pub use classify::{classify, person_state, PersonState};
pub use correlate::{
    correlate, correlate_prepared, effective_flow_rules, Ambiguity, AmbiguousLink, Exclusion,
    IfsLinks, Link, More, Person,
};
pub use plan::{plan, plan_with, Plan, PlanOptions, ThresholdExceeded};
pub use prepare::{AzureForms, FlowForms, FlowFormsByPage, FlowIds, IfsForms, Prepared};
pub use status::{mark_new_and_persisting, new_or_persisting};

use crate::model::{Finding, FlowMatchRule, IfsMatchRule, Snapshots};

/// How records are matched (config section `[matching]` plus
/// `azure.include_guests`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatchOptions {
    /// `true`: IDs differing only in letter case are different (`≈` is then
    /// trim + NFC only).
    pub case_sensitive: bool,
    /// Keep Azure guests (`userType = Guest` or `#EXT#` UPNs) in scope.
    pub include_guests: bool,
    /// Azure ↔ IFS rules, best first (§2).
    pub ifs_rules: Vec<IfsMatchRule>,
    /// Azure ↔ Flow rules, best first (§3); `ifs_directory_id` is always
    /// tried first whatever this says (see [`effective_flow_rules`]).
    pub flow_rules: Vec<FlowMatchRule>,
}

impl Default for MatchOptions {
    fn default() -> Self {
        MatchOptions {
            case_sensitive: false,
            include_guests: false,
            ifs_rules: IfsMatchRule::DEFAULT_ORDER.to_vec(),
            flow_rules: FlowMatchRule::DEFAULT_ORDER.to_vec(),
        }
    }
}

/// The result of correlating and classifying one set of snapshots.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Outcome {
    /// Every in-scope person.
    pub people: u64,
    /// In-scope people without a finding.
    pub ok: u64,
    /// One finding per non-OK person, sorted by kind, then key (then every
    /// other field, so the order never depends on the input order).
    pub findings: Vec<Finding>,
}

/// Correlates and classifies: the findings of one run.
pub fn reconcile(snapshots: &Snapshots, opts: &MatchOptions) -> Outcome {
    reconcile_prepared(snapshots, opts, Prepared::default())
}

/// [`reconcile`] with per-source forms computed ahead (see [`prepare`]):
/// the same outcome, whatever was prepared.
pub fn reconcile_prepared(
    snapshots: &Snapshots,
    opts: &MatchOptions,
    prepared: Prepared,
) -> Outcome {
    reconcile_for_plan(snapshots, opts, prepared).0
}

/// [`reconcile_prepared`], handing back what [`plan_and_mark`] needs too:
/// correlation's index of the Flow users by ID (which [`plan_with`] uses
/// when Flow compares IDs the way matching does) and the findings' keys
/// ([`Finding::key`]), in the findings' order.
pub fn reconcile_for_plan(
    snapshots: &Snapshots,
    opts: &MatchOptions,
    prepared: Prepared,
) -> (Outcome, FlowIds, Vec<String>) {
    let (people, flow_ids) = correlate::correlate_keeping_flow_ids(snapshots, opts, prepared);
    let mut outcome = classify::classify_unsorted(snapshots, &people, opts);
    // The people are not needed for sorting: their memory goes first.
    drop(people);
    let keys = classify::sort_findings(&mut outcome.findings);
    (outcome, flow_ids, keys)
}

/// [`plan_with`] and [`mark_new_and_persisting`] at once (the plan changes
/// the findings, the marks need only their `keys`): the plan, and how many
/// of `previous_open_keys` are resolved.
pub fn plan_and_mark(
    flow_users: &[crate::model::FlowUser],
    findings: &mut [Finding],
    keys: &[String],
    previous_open_keys: &std::collections::HashSet<String>,
    opts: &PlanOptions,
    flow_ids: Option<FlowIds>,
) -> (Plan, u64) {
    let ((statuses, resolved), plan) = parallel::both(
        findings.len(),
        || new_or_persisting(keys, previous_open_keys),
        || plan_with(flow_users, findings, opts, flow_ids),
    );
    for (finding, status) in findings.iter_mut().zip(statuses) {
        finding.status = status;
    }
    (plan, resolved)
}

/// Narrows a run to one person (`reconcile --user`): only the findings about
/// the Azure user `aad_id` (and their `keys`, in the findings' order),
/// compared with only that person's previous finding keys (which end in
/// `|aad:{id}`, see docs/semantics.md §6).
pub fn focus_on_person(
    outcome: &mut Outcome,
    keys: &mut Vec<String>,
    previous_keys: &mut std::collections::HashSet<String>,
    aad_id: &str,
) {
    let about = |f: &Finding| f.aad_id.as_deref() == Some(aad_id);
    let mut kept = outcome.findings.iter().map(about);
    keys.retain(|_| kept.next().unwrap_or(false));
    outcome.findings.retain(about);
    outcome.people = 1;
    outcome.ok = u64::from(outcome.findings.is_empty());
    let anchor = format!("|aad:{}", aad_id.to_ascii_lowercase());
    previous_keys.retain(|k| k.ends_with(&anchor));
}
