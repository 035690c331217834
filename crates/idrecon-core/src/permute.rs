//! Reordering a slice in place by a permutation: the step after sorting
//! positions (or small keys) instead of large records, so that each record
//! moves once. Used by the core's finding sort and the simulator's tenant
//! sort.

/// Puts `items[order[k]]` at position `k`, cycle by cycle, in place.
/// `order` must be a permutation of `0..items.len()`.
pub fn permute<T>(items: &mut [T], mut order: Vec<usize>) {
    const DONE: usize = usize::MAX;
    for start in 0..order.len() {
        let mut k = start;
        loop {
            let from = std::mem::replace(&mut order[k], DONE);
            if from == DONE || from == start {
                break;
            }
            // Position `k` takes its item; the item that was there (the
            // cycle's first) moves on to `from`, which is filled next.
            items.swap(k, from);
            k = from;
        }
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// In-place permutation is the definition: position k takes item order[k].
        #[test]
        fn permute_puts_every_item_where_the_order_says(
            order in (0..40usize).prop_flat_map(|n| Just((0..n).collect::<Vec<_>>()).prop_shuffle())
        ) {
            let items: Vec<usize> = (100..100 + order.len()).collect();
            let expected: Vec<usize> = order.iter().map(|&k| items[k]).collect();
            let mut permuted = items;
            permute(&mut permuted, order);
            prop_assert_eq!(permuted, expected);
        }
    }
}
