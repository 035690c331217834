//! Planning fixes (docs/semantics.md §7): an action for every finding,
//! renames ordered so each target is free when it runs, unsafe renames
//! blocked with the reason, and the change limits checked.

use super::index::{push_normal, Indexed};
use super::parallel::per_half;
use super::prepare::{FlowIds, FlowUserId};
use crate::model::{Action, ActionKind, ActionStatus, Finding, FindingKind, FlowUser};
use rustc_hash::FxHashMap;
use std::collections::VecDeque;
use std::fmt;

/// Settings of the planner (config `[fix]` and `flow.case_insensitive_ids`).
#[derive(Clone, Debug, PartialEq)]
pub struct PlanOptions {
    /// Deactivate Flow users of disabled or missing Azure users.
    pub deactivate_orphans: bool,
    /// Flow compares user IDs ignoring case (its default).
    pub flow_case_insensitive: bool,
    /// Most actions one run may send.
    pub max_changes: u32,
    /// Most actions one run may send, in percent of all Flow users.
    pub max_change_percent: f64,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            deactivate_orphans: false,
            flow_case_insensitive: true,
            max_changes: 25,
            max_change_percent: 5.0,
        }
    }
}

/// The plan is larger than a limit allows: nothing may be applied.
#[derive(Clone, Debug, PartialEq)]
pub struct ThresholdExceeded {
    /// Actions that would be sent (renames + enabled deactivations, not blocked).
    pub changes: u64,
    /// All Flow users in the snapshot.
    pub flow_users: u64,
    pub max_changes: u32,
    pub max_change_percent: f64,
}

impl ThresholdExceeded {
    /// The changes as a percentage of the Flow users.
    pub fn percent(&self) -> f64 {
        if self.flow_users == 0 {
            100.0
        } else {
            self.changes as f64 * 100.0 / self.flow_users as f64
        }
    }

    /// Over `fix.max_changes`.
    pub fn over_max_changes(&self) -> bool {
        self.changes > u64::from(self.max_changes)
    }

    /// Over `fix.max_change_percent`.
    pub fn over_max_percent(&self) -> bool {
        self.changes > 0
            && self.changes as f64 > self.max_change_percent / 100.0 * self.flow_users as f64
    }

    /// `Some` when `changes` actions for `flow_users` Flow users are over a
    /// limit of `opts`.
    pub fn check(changes: u64, flow_users: u64, opts: &PlanOptions) -> Option<Self> {
        let t = ThresholdExceeded {
            changes,
            flow_users,
            max_changes: opts.max_changes,
            max_change_percent: opts.max_change_percent,
        };
        (t.over_max_changes() || t.over_max_percent()).then_some(t)
    }
}

impl fmt::Display for ThresholdExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the plan has {} changes for {} Flow users ({:.1}%), over ",
            self.changes,
            self.flow_users,
            self.percent()
        )?;
        match (self.over_max_changes(), self.over_max_percent()) {
            (true, true) => write!(
                f,
                "fix.max_changes = {} and fix.max_change_percent = {}",
                self.max_changes, self.max_change_percent
            )?,
            (true, false) => write!(f, "fix.max_changes = {}", self.max_changes)?,
            _ => write!(f, "fix.max_change_percent = {}", self.max_change_percent)?,
        }
        write!(
            f,
            "; nothing was changed. If these changes are intended, raise fix.max_changes / \
             fix.max_change_percent, or allow them for one run with `--apply --max-changes {}`",
            self.changes
        )
    }
}

impl std::error::Error for ThresholdExceeded {}

/// The actions of one run.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Planned actions in a safe execution order, then skipped and blocked
    /// ones (for the report).
    pub actions: Vec<Action>,
    /// Set when a limit is exceeded; every action is then skipped.
    pub threshold: Option<ThresholdExceeded>,
}

impl Plan {
    /// The actions to execute, in order.
    pub fn executable(&self) -> impl Iterator<Item = &Action> {
        self.actions
            .iter()
            .filter(|a| a.status == ActionStatus::Planned)
    }
}

struct Rename {
    finding: usize,
    source: Option<u32>,
    from: String,
    to: String,
    to_key: String,
    blocked: Option<String>,
    /// Renames that must run first (they free this rename's target).
    after: Vec<usize>,
}

/// Sets every finding's `action` / `action_status` and returns the actions:
/// planned ones in a safe order, then skipped, then blocked ones.
pub fn plan(flow_users: &[FlowUser], findings: &mut [Finding], opts: &PlanOptions) -> Plan {
    plan_with(flow_users, findings, opts, None)
}

/// [`plan`] with the Flow users already indexed by ID (by correlation,
/// see [`FlowIds`]); an index of other users or in the other comparison is
/// ignored and made again.
pub fn plan_with(
    flow_users: &[FlowUser],
    findings: &mut [Finding],
    opts: &PlanOptions,
    flow_ids: Option<FlowIds>,
) -> Plan {
    let case_sensitive = !opts.flow_case_insensitive;
    let flow_key = |raw: &str| {
        let mut key = String::new();
        push_normal(raw, case_sensitive, &mut key);
        key
    };
    // Flow users by their ID under Flow's own comparison.
    let holders = FlowIds::fitting(flow_ids, flow_users, case_sensitive).index;
    let named = named_flow_users(findings, flow_users, &holders, case_sensitive);

    let mut renames: Vec<Rename> = Vec::new();
    // (finding, flow user ID, status, reason)
    let mut deactivations: Vec<(usize, String, ActionStatus, Option<String>)> = Vec::new();
    for (index, finding) in findings.iter_mut().enumerate() {
        finding.action = ActionKind::None;
        finding.action_status = None;
        match (
            finding.kind,
            finding.flow_user_id.as_deref(),
            finding.expected_flow_user_id.as_deref(),
        ) {
            (FindingKind::IdMismatch, Some(from), Some(to)) => {
                let source = named[index];
                renames.push(Rename {
                    finding: index,
                    source,
                    from: from.to_string(),
                    to: to.to_string(),
                    to_key: flow_key(to),
                    blocked: source
                        .is_none()
                        .then(|| format!("Flow user '{from}' is not in the Flow snapshot")),
                    after: Vec::new(),
                });
            }
            (FindingKind::DisabledInAzure | FindingKind::NotInAzure, Some(id), _) => {
                let user = named[index].map(|u| &flow_users[u as usize]);
                if user.is_some_and(|u| !u.active()) {
                    continue; // already inactive: nothing to do
                }
                let (status, reason) = if user.is_none() {
                    (
                        ActionStatus::Blocked,
                        Some(format!("Flow user '{id}' is not in the Flow snapshot")),
                    )
                } else if opts.deactivate_orphans {
                    (ActionStatus::Planned, None)
                } else {
                    (
                        ActionStatus::Skipped,
                        Some(
                            "fix.deactivate_orphans is off (set it to true to let idrecon \
                             deactivate such Flow users)"
                                .to_string(),
                        ),
                    )
                };
                deactivations.push((index, id.to_string(), status, reason));
            }
            _ => {}
        }
    }

    order_renames(&mut renames, &holders, flow_users);
    let mut order: Vec<usize> = Vec::new();
    topological_order(&mut renames, &mut order);

    // Assemble: planned renames in order, planned deactivations, then the rest.
    let mut actions: Vec<(Option<usize>, Action)> = Vec::new();
    for &r in &order {
        let rename = &renames[r];
        actions.push((
            Some(rename.finding),
            rename_action(rename, ActionStatus::Planned),
        ));
    }
    for (index, id, status, reason) in &deactivations {
        if *status == ActionStatus::Planned {
            actions.push((Some(*index), deactivate_action(id, *status, reason.clone())));
        }
    }
    for (index, id, status, reason) in &deactivations {
        if *status == ActionStatus::Skipped {
            actions.push((Some(*index), deactivate_action(id, *status, reason.clone())));
        }
    }
    let mut blocked: Vec<(usize, Action)> = renames
        .iter()
        .filter(|r| r.blocked.is_some())
        .map(|r| (r.finding, rename_action(r, ActionStatus::Blocked)))
        .chain(
            deactivations
                .iter()
                .filter(|d| d.2 == ActionStatus::Blocked)
                .map(|(index, id, status, reason)| {
                    (*index, deactivate_action(id, *status, reason.clone()))
                }),
        )
        .collect();
    blocked.sort_by_key(|(index, _)| *index);
    actions.extend(blocked.into_iter().map(|(i, a)| (Some(i), a)));

    let changes = actions
        .iter()
        .filter(|(_, a)| a.status == ActionStatus::Planned)
        .count() as u64;
    let threshold = ThresholdExceeded::check(changes, flow_users.len() as u64, opts);
    if let Some(t) = &threshold {
        let reason = format!("not applied: {t}");
        for (_, action) in actions.iter_mut() {
            if action.status == ActionStatus::Planned {
                action.status = ActionStatus::Skipped;
                action.error = Some(reason.clone());
            }
        }
    }

    for (index, action) in &actions {
        let Some(finding) = index.and_then(|i| findings.get_mut(i)) else {
            continue;
        };
        finding.action = action.kind;
        finding.action_status = Some(action.status);
        if let Some(reason) = &action.error {
            let verb = match (action.kind, action.status) {
                (ActionKind::Rename, ActionStatus::Blocked) => "Not renamed",
                (ActionKind::Rename, _) => "Rename skipped",
                (_, ActionStatus::Blocked) => "Not deactivated",
                _ => "Deactivation skipped",
            };
            if !finding.detail.is_empty() {
                finding.detail.push(' ');
            }
            finding.detail.push_str(&format!("{verb}: {reason}."));
        }
    }
    Plan {
        actions: actions.into_iter().map(|(_, a)| a).collect(),
        threshold,
    }
}

/// Per finding, the Flow user its Flow ID names exactly (among those whose
/// ID `≈` it under Flow's comparison), for the findings a plan acts on.
/// One lookup each, cache misses at 100k findings, independent of each
/// other: two threads share them on a large run.
fn named_flow_users(
    findings: &[Finding],
    flow_users: &[FlowUser],
    holders: &Indexed<FlowUserId>,
    case_sensitive: bool,
) -> Vec<Option<u32>> {
    let find = |part: &[Finding]| {
        let mut key = String::new();
        part.iter()
            .map(|finding| {
                let acted_on = matches!(
                    finding.kind,
                    FindingKind::IdMismatch
                        | FindingKind::DisabledInAzure
                        | FindingKind::NotInAzure
                );
                let raw = finding.flow_user_id.as_deref().filter(|_| acted_on)?;
                key.clear();
                push_normal(raw, case_sensitive, &mut key);
                holders
                    .get(flow_users, &key)
                    .find(|&h| flow_users[h as usize].user_id() == raw)
            })
            .collect::<Vec<_>>()
    };
    per_half(findings, find)
}

fn rename_action(rename: &Rename, status: ActionStatus) -> Action {
    Action {
        kind: ActionKind::Rename,
        flow_user_id: rename.from.clone(),
        new_flow_user_id: Some(rename.to.clone()),
        status,
        error: rename.blocked.clone(),
    }
}

fn deactivate_action(id: &str, status: ActionStatus, error: Option<String>) -> Action {
    Action {
        kind: ActionKind::Deactivate,
        flow_user_id: id.to_string(),
        new_flow_user_id: None,
        status,
        error,
    }
}

/// Blocks collisions and taken targets, and records which renames must run
/// before which.
fn order_renames(renames: &mut [Rename], holders: &Indexed<FlowUserId>, flow_users: &[FlowUser]) {
    // Two or more renames into one ID: all blocked.
    let mut by_target: FxHashMap<String, Vec<usize>> = FxHashMap::default();
    for (r, rename) in renames.iter().enumerate() {
        by_target.entry(rename.to_key.clone()).or_default().push(r);
    }
    for same in by_target.values().filter(|v| v.len() > 1) {
        let names: Vec<String> = same
            .iter()
            .map(|&r| format!("'{}'", renames[r].from))
            .collect();
        for &r in same {
            let reason = format!(
                "{} renames want the ID '{}' (Flow users {})",
                same.len(),
                renames[r].to,
                names.join(", ")
            );
            renames[r].blocked.get_or_insert(reason);
        }
    }
    let rename_of: FxHashMap<u32, usize> = renames
        .iter()
        .enumerate()
        .filter_map(|(r, rename)| rename.source.map(|s| (s, r)))
        .collect();
    for rename in renames.iter_mut() {
        if rename.blocked.is_some() {
            continue;
        }
        let mut after = Vec::new();
        let mut taken_by = None;
        for h in holders.get(flow_users, &rename.to_key) {
            if Some(h) == rename.source {
                continue;
            }
            match rename_of.get(&h) {
                Some(&other) => after.push(other),
                None => {
                    taken_by = Some(h);
                    break;
                }
            }
        }
        if let Some(h) = taken_by {
            rename.blocked = Some(format!(
                "the ID '{}' is taken by Flow user '{}', which is not renamed away",
                rename.to,
                flow_users[h as usize].user_id()
            ));
        } else {
            after.sort_unstable();
            rename.after = after;
        }
    }
}

/// Orders the unblocked renames so every target is freed first; blocks
/// renames that wait for a blocked one and those in (or behind) a cycle.
fn topological_order(renames: &mut [Rename], order: &mut Vec<usize>) {
    let n = renames.len();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (r, rename) in renames.iter().enumerate() {
        if rename.blocked.is_none() {
            for &d in &rename.after {
                dependents[d].push(r);
            }
        }
    }
    // A rename waiting for a blocked one is blocked too.
    let mut work: Vec<usize> = (0..n).filter(|&r| renames[r].blocked.is_some()).collect();
    while let Some(b) = work.pop() {
        for &r in &dependents[b] {
            if renames[r].blocked.is_none() {
                renames[r].blocked = Some(format!(
                    "its target '{}' is held by '{}', whose own rename to '{}' is blocked",
                    renames[r].to, renames[b].from, renames[b].to
                ));
                work.push(r);
            }
        }
    }
    let mut waiting: Vec<usize> = renames.iter().map(|r| r.after.len()).collect();
    let mut ready: VecDeque<usize> = (0..n)
        .filter(|&r| renames[r].blocked.is_none() && waiting[r] == 0)
        .collect();
    let mut done = vec![false; n];
    while let Some(r) = ready.pop_front() {
        done[r] = true;
        order.push(r);
        for &d in &dependents[r] {
            waiting[d] -= 1;
            if waiting[d] == 0 && renames[d].blocked.is_none() {
                ready.push_back(d);
            }
        }
    }
    // What is left waits, directly or not, on a cycle.
    let left: Vec<usize> = (0..n)
        .filter(|&r| !done[r] && renames[r].blocked.is_none())
        .collect();
    let reasons: Vec<(usize, String)> = left
        .iter()
        .map(|&r| (r, cycle_reason(renames, &done, r)))
        .collect();
    for (r, reason) in reasons {
        renames[r].blocked = Some(reason);
    }
}

fn cycle_reason(renames: &[Rename], done: &[bool], start: usize) -> String {
    // Follow the first unfinished dependency; a walk back to `start` is a cycle.
    const MAX_WALK: usize = 1000;
    let mut path = vec![start];
    let mut seen: rustc_hash::FxHashSet<usize> = std::iter::once(start).collect();
    let mut current = start;
    while path.len() <= MAX_WALK {
        let Some(&next) = renames[current].after.iter().find(|&&d| !done[d]) else {
            break;
        };
        if next == start {
            let steps: Vec<String> = path
                .iter()
                .map(|&r| format!("'{}' → '{}'", renames[r].from, renames[r].to))
                .collect();
            return format!(
                "the renames form a cycle ({}); break it by hand with a temporary ID",
                steps.join(", ")
            );
        }
        if !seen.insert(next) {
            break;
        }
        path.push(next);
        current = next;
    }
    format!(
        "its target '{}' is only freed by renames that form a cycle",
        renames[start].to
    )
}
