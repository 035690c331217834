//! New / persisting / resolved against the previous completed run
//! (docs/semantics.md §6).

use crate::model::{Finding, FindingStatus};
use std::collections::HashSet;

/// Marks each finding `persisting` if its key was open after the previous
/// completed run, otherwise `new`, and returns how many of those previous
/// keys are no longer open (`resolved_since_last_run`).
pub fn mark_new_and_persisting(
    findings: &mut [Finding],
    previous_open_keys: &HashSet<String>,
) -> u64 {
    let mut current: HashSet<String> = HashSet::with_capacity(findings.len());
    for finding in findings.iter_mut() {
        let key = finding.key();
        finding.status = if previous_open_keys.contains(&key) {
            FindingStatus::Persisting
        } else {
            FindingStatus::New
        };
        current.insert(key);
    }
    previous_open_keys
        .iter()
        .filter(|key| !current.contains(*key))
        .count() as u64
}
