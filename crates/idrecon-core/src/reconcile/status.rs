//! New / persisting / resolved against the previous completed run
//! (docs/semantics.md §6).

use super::parallel::{in_parallel, MIN_RECORDS_FOR_THREADS};
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
    // Each finding is looked up on its own: on a large run, two threads
    // share them (the order of the findings does not matter here).
    let per_thread = findings.len().div_ceil(2).max(MIN_RECORDS_FOR_THREADS);
    let mut parts = in_parallel(
        findings
            .chunks_mut(per_thread)
            .map(|part| move || mark(part, previous_open_keys)),
    );
    let mut still_open = parts.pop().unwrap_or_default();
    for part in parts {
        still_open.extend(part);
    }
    (previous_open_keys.len() - still_open.len()) as u64
}

/// Marks `findings` and returns the previous keys they still hold,
/// borrowed: a set of every current key (a string each) was ~14 MiB at
/// 130k findings.
fn mark<'k>(findings: &mut [Finding], previous_open_keys: &'k HashSet<String>) -> FxHashSet<&'k str> {
    let mut still_open = FxHashSet::default();
    let mut key = String::new();
    for finding in findings {
        finding.write_key(&mut key);
        finding.status = match previous_open_keys.get(&key) {
            Some(key) => {
                still_open.insert(key.as_str());
                FindingStatus::Persisting
            }
            None => FindingStatus::New,
        };
    }
    still_open
}
