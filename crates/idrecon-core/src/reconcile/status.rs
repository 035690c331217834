//! New / persisting / resolved against the previous completed run
//! (docs/semantics.md §6).

use super::parallel::per_half;
use crate::model::{Finding, FindingStatus};
use rustc_hash::FxHashSet;
use std::collections::HashSet;

/// Marks each finding `persisting` if its key was open after the previous
/// completed run, otherwise `new`, and returns how many of those previous
/// keys are no longer open (`resolved_since_last_run`).
pub fn mark_new_and_persisting(
    findings: &mut [Finding],
    previous_open_keys: &HashSet<String>,
) -> u64 {
    let keys = super::classify::keys_of(findings);
    let (statuses, resolved) = new_or_persisting(&keys, previous_open_keys);
    for (finding, status) in findings.iter_mut().zip(statuses) {
        finding.status = status;
    }
    resolved
}

/// [`mark_new_and_persisting`] from the findings' keys alone (`keys[i]` is
/// the key of finding `i`): the status of each, and how many previous keys
/// are no longer open. Needing no findings, it can run while the plan
/// changes them.
pub fn new_or_persisting(
    keys: &[String],
    previous_open_keys: &HashSet<String>,
) -> (Vec<FindingStatus>, u64) {
    // Only the previous keys still open are remembered, borrowed: a set of
    // every current key (a string each) was ~14 MiB at 130k findings.
    let still_open = std::sync::Mutex::new(FxHashSet::default());
    // Each key is looked up on its own: on a large run, two threads share them.
    let statuses = per_half(keys, |part| {
        let mut open_here: FxHashSet<&str> = FxHashSet::default();
        let statuses = part
            .iter()
            .map(|key| match previous_open_keys.get(key) {
                Some(key) => {
                    open_here.insert(key.as_str());
                    FindingStatus::Persisting
                }
                None => FindingStatus::New,
            })
            .collect();
        // A poisoned lock only means the other half panicked, which
        // `per_half` passes on anyway.
        let mut still_open = still_open.lock().unwrap_or_else(|e| e.into_inner());
        still_open.extend(open_here);
        statuses
    });
    let still_open = still_open.into_inner().unwrap_or_else(|e| e.into_inner());
    (
        statuses,
        (previous_open_keys.len() - still_open.len()) as u64,
    )
}
