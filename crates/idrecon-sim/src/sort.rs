//! Stable sorting of large records (a million 176-byte Azure users) by a
//! text key. `slice::sort_by` moves every record many times and follows a
//! pointer to the key on each comparison (over a second at a million
//! users); here each record's key prefix is read once, the small
//! (prefix, position) pairs are sorted, and each record is moved once.

use idrecon_core::permute::permute;
use std::cmp::Ordering;

/// Sorts `records` like `records.sort_by(|a, b| cmp(key(a), key(b)))`
/// (stable), where `fold` maps each byte of a key the way `cmp` compares
/// it: `cmp` must order keys by their folded bytes, then by length (as
/// `str::cmp` does, and [`cmp_id`](super::state::cmp_id)).
pub(crate) fn sort_by_text_key<T>(
    records: &mut [T],
    key: impl Fn(&T) -> &str,
    fold: impl Fn(u8) -> u8,
    cmp: impl Fn(&str, &str) -> Ordering,
) {
    // The first 16 folded bytes, big-endian and zero-padded: a smaller
    // prefix is a smaller key; equal prefixes leave it to `cmp`, then to
    // the position (which keeps the sort stable).
    let prefix = |text: &str| {
        let mut bytes = [0u8; 16];
        for (slot, &b) in bytes.iter_mut().zip(text.as_bytes()) {
            *slot = fold(b);
        }
        u128::from_be_bytes(bytes)
    };
    let mut order: Vec<(u128, usize)> = records
        .iter()
        .enumerate()
        .map(|(i, r)| (prefix(key(r)), i))
        .collect();
    order.sort_unstable_by(|x, y| {
        x.0.cmp(&y.0)
            .then_with(|| cmp(key(&records[x.1]), key(&records[y.1])))
            .then(x.1.cmp(&y.1))
    });
    permute(records, order.into_iter().map(|(_, i)| i).collect());
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn caseless(a: &str, b: &str) -> Ordering {
        a.bytes()
            .map(|c| c.to_ascii_lowercase())
            .cmp(b.bytes().map(|c| c.to_ascii_lowercase()))
    }

    /// Keys that share long prefixes, differ only in case or length, hold
    /// NUL bytes and repeat (so stability shows).
    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            "[aAbB\u{0}]{0,20}",
            "0d45e29c-d6f3-41dc-bfaa-[0-9a-fA-F]{0,12}",
            "[a-z0-9é]{0,40}",
        ]
    }

    proptest! {
        #[test]
        fn sorts_like_a_stable_sort_by(keys in proptest::collection::vec(key(), 0..200)) {
            // (key, original position): the position shows the order of equal keys.
            let records: Vec<(String, usize)> =
                keys.into_iter().enumerate().map(|(i, k)| (k, i)).collect();

            let mut expected = records.clone();
            expected.sort_by(|a, b| caseless(&a.0, &b.0));
            let mut got = records.clone();
            sort_by_text_key(&mut got, |r| &r.0, |b| b.to_ascii_lowercase(), caseless);
            prop_assert_eq!(&got, &expected);

            let mut expected = records.clone();
            expected.sort_by(|a, b| a.0.cmp(&b.0));
            let mut got = records;
            sort_by_text_key(&mut got, |r| &r.0, |b| b, str::cmp);
            prop_assert_eq!(&got, &expected);
        }
    }
}
