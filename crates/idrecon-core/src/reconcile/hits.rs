//! The first rule that finds anything for each Azure user (§2, §3), looked
//! up on several threads. The lookups are pure reads of the forms and
//! indexes and were most of correlate's time at a million users (a few
//! hash probes per user, each a cache miss); what is done with the hits
//! (claims, ties, ambiguity) stays sequential, in Azure order, so the
//! outcome does not depend on the number of threads.

use super::index::NONE;
use super::parallel::{in_parallel, MIN_RECORDS_FOR_THREADS};

/// What the first rule that found anything found.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Found {
    /// One target (an IFS user or duplicate group, or a Flow user).
    One(u32),
    /// Several candidates, sorted for the report.
    Several(Vec<u32>),
}

/// The hits of all Azure users, in Azure order.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Hits {
    /// Per Azure user: (target, rank of the rule), or (`NONE`, `NONE`) when
    /// no rule found exactly one target.
    pub one: Vec<(u32, u32)>,
    /// (Azure user, rank of the rule, candidates) where a rule found several.
    pub several: Vec<(u32, u32, Vec<u32>)>,
}

/// Buffers one thread's lookups reuse from one Azure user to the next.
#[derive(Default)]
pub(super) struct Buffers {
    /// A key that has to be written out.
    pub key: String,
    /// Any other text.
    pub scratch: String,
    /// The candidates of the rule being tried.
    pub candidates: Vec<u32>,
}

/// Runs `find(a, buffers)` for every in-scope Azure user `a`
/// of `0..n` (`in_scope[a]`): the rank of the first rule that found
/// anything, and what it found.
pub(super) fn first_hits<F>(n: usize, in_scope: &[bool], find: F) -> Hits
where
    F: Fn(u32, &mut Buffers) -> Option<(u32, Found)> + Sync,
{
    let threads = std::thread::available_parallelism()
        .map_or(1, |t| t.get().min(4))
        .min(n / MIN_RECORDS_FOR_THREADS)
        .max(1);
    first_hits_on(threads, n, in_scope, find)
}

/// [`first_hits`] on `threads` threads.
fn first_hits_on<F>(threads: usize, n: usize, in_scope: &[bool], find: F) -> Hits
where
    F: Fn(u32, &mut Buffers) -> Option<(u32, Found)> + Sync,
{
    let threads = threads.max(1);
    let per_thread = n.div_ceil(threads).max(1);
    let find = &find;
    let part = move |start: usize, end: usize| {
        let mut hits = Hits {
            one: Vec::with_capacity(end - start),
            several: Vec::new(),
        };
        let mut buffers = Buffers::default();
        for a in start..end {
            let hit = if in_scope.get(a).copied().unwrap_or(false) {
                find(a as u32, &mut buffers)
            } else {
                None
            };
            hits.one.push(match hit {
                Some((rank, Found::One(target))) => (target, rank),
                Some((rank, Found::Several(records))) => {
                    hits.several.push((a as u32, rank, records));
                    (NONE, NONE)
                }
                None => (NONE, NONE),
            });
        }
        hits
    };
    let parts = in_parallel(
        (0..n)
            .step_by(per_thread)
            .map(|start| move || part(start, (start + per_thread).min(n))),
    );
    let mut all = Hits {
        one: Vec::with_capacity(n),
        several: Vec::new(),
    };
    for mut part in parts {
        all.one.append(&mut part.one);
        all.several.append(&mut part.several);
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in for the rules: some users find nothing, some one target
    /// at some rank, some several candidates; the scratch buffers carry
    /// nothing from one user to the next.
    fn find(a: u32, buffers: &mut Buffers) -> Option<(u32, Found)> {
        let Buffers {
            scratch,
            candidates,
            ..
        } = buffers;
        scratch.clear();
        scratch.push_str(&a.to_string());
        candidates.clear();
        candidates.extend((0..a % 4).map(|k| a * 10 + k));
        match a % 7 {
            0 => None,
            1 | 2 => Some((a % 3, Found::Several(candidates.clone()))),
            _ => Some((a % 5, Found::One(a / 2 + scratch.len() as u32))),
        }
    }

    #[test]
    fn any_number_of_threads_gives_the_hits_of_one() {
        let n = 10_007;
        let in_scope: Vec<bool> = (0..n).map(|a| a % 11 != 3).collect();
        let one = first_hits_on(1, n, &in_scope, find);
        assert_eq!(one.one.len(), n);
        assert!(one.one.iter().any(|&(t, _)| t != NONE));
        assert!(!one.several.is_empty());
        assert!(one
            .several
            .iter()
            .all(|&(a, _, _)| in_scope[a as usize] && one.one[a as usize] == (NONE, NONE)));
        for threads in [2, 3, 4, 7, 64] {
            assert_eq!(
                first_hits_on(threads, n, &in_scope, find),
                one,
                "{threads} threads"
            );
        }
        // No users, or fewer than threads.
        assert_eq!(first_hits_on(4, 0, &[], find).one, Vec::new());
        assert_eq!(
            first_hits_on(4, 3, &in_scope[..3], find),
            first_hits_on(1, 3, &in_scope[..3], find)
        );
    }
}
