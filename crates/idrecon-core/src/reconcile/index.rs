//! Normal forms computed once per record, stored compactly, and hash
//! indexes over them. This is where the core spends most of its time on a
//! large tenant, so it avoids one allocation per value: every normal form of
//! one field lives in a single string ([`Column`]) and the indexes hold
//! record numbers hashed by that text ([`MultiIndex`]).

use crate::model::NormalizedId;
use hashbrown::hash_table::{Entry, HashTable};
use rustc_hash::FxBuildHasher;
use std::hash::BuildHasher;

/// "No record": the end of a chain, an unset owner.
pub(crate) const NONE: u32 = u32::MAX;

/// Appends the normal form of `raw` to `out`: exactly
/// `NormalizedId::with_mode(raw, case_sensitive)`, without allocating for
/// ASCII input (there NFC changes nothing and the full case fold is ASCII
/// lower case).
pub(crate) fn push_normal(raw: &str, case_sensitive: bool, out: &mut String) {
    let trimmed = trim(raw);
    if trimmed.is_ascii() {
        let start = out.len();
        out.push_str(trimmed);
        if !case_sensitive {
            out[start..].make_ascii_lowercase();
        }
    } else if case_sensitive {
        out.push_str(NormalizedId::case_sensitive(trimmed).as_str());
    } else if !crate::model::latin::fold_into(trimmed, out) {
        out.push_str(&NormalizedId::caseless(trimmed));
    }
}

/// `str::trim` (Unicode white space), without decoding characters when the
/// ends are ASCII.
pub(crate) fn trim(raw: &str) -> &str {
    let bytes = raw.as_bytes();
    let space = |c: u8| matches!(c, b'\t' | b'\n' | b'\x0B' | b'\x0C' | b'\r' | b' ');
    let mut start = 0;
    let mut end = bytes.len();
    while start < end && space(bytes[start]) {
        start += 1;
    }
    while end > start && space(bytes[end - 1]) {
        end -= 1;
    }
    if start < end && (!bytes[start].is_ascii() || !bytes[end - 1].is_ascii()) {
        // A non-ASCII end may be Unicode white space (e.g. U+00A0).
        return raw.trim();
    }
    raw.get(start..end).unwrap_or_else(|| raw.trim())
}

/// Appends `raw` trimmed and ASCII lower-cased: the form in which object IDs
/// are compared (`=` in docs/semantics.md).
pub(crate) fn push_ascii_key(raw: &str, out: &mut String) {
    let start = out.len();
    out.push_str(trim(raw));
    out[start..].make_ascii_lowercase();
}

/// The text before the last `@`, trimmed; `None` without an `@` or when empty.
pub(crate) fn local_part(id: &str) -> Option<&str> {
    let at = id.rfind('@')?;
    let local = id[..at].trim();
    (!local.is_empty()).then_some(local)
}

/// One derived string per record (empty = no value), all in one buffer.
pub(crate) struct Column {
    text: String,
    ends: Vec<usize>,
}

impl Column {
    /// Builds the column for `n` records: `value(i)` is the raw value of
    /// record `i`, `form` appends its derived form.
    pub(crate) fn build<'a>(
        n: usize,
        value: impl Fn(usize) -> Option<&'a str>,
        form: impl Fn(&str, &mut String),
    ) -> Self {
        let bytes = (0..n).filter_map(&value).map(str::len).sum();
        let mut builder = ColumnBuilder::with_capacity(n, bytes);
        for i in 0..n {
            builder.push(value(i), &form);
        }
        builder.finish()
    }

    /// A column of normal forms (`≈`).
    pub(crate) fn normal<'a>(
        n: usize,
        value: impl Fn(usize) -> Option<&'a str>,
        case_sensitive: bool,
    ) -> Self {
        Self::build(n, value, |raw, out| push_normal(raw, case_sensitive, out))
    }

    /// A column where every record has no value (a field no rule needs).
    pub(crate) fn empty(n: usize) -> Self {
        Column {
            text: String::new(),
            ends: vec![0; n],
        }
    }

    /// The derived form of record `i` (empty when it has none).
    pub(crate) fn get(&self, i: u32) -> &str {
        let i = i as usize;
        let end = self.ends.get(i).copied().unwrap_or(0);
        let start = if i == 0 {
            0
        } else {
            self.ends.get(i - 1).copied().unwrap_or(0)
        };
        self.text.get(start..end).unwrap_or("")
    }

    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }
}

/// Builds a [`Column`] one record at a time (several columns can then be
/// filled in one pass over the records).
pub(crate) struct ColumnBuilder {
    text: String,
    ends: Vec<usize>,
}

impl ColumnBuilder {
    /// Room for `n` records whose raw values are `bytes` long in all.
    ///
    /// Sized from the raw values (normal forms are about as long; a little
    /// slack for the few that fold longer, like `ß` → `ss`): at a million
    /// records a guess that is too small doubles a buffer of tens of MiB,
    /// copying it and touching fresh pages.
    pub(crate) fn with_capacity(n: usize, bytes: usize) -> Self {
        ColumnBuilder {
            text: String::with_capacity(bytes.saturating_add(bytes / 64)),
            ends: Vec::with_capacity(n),
        }
    }

    /// Appends the next record's derived form (`None`: no value).
    pub(crate) fn push(&mut self, raw: Option<&str>, form: impl Fn(&str, &mut String)) {
        if let Some(raw) = raw {
            form(raw, &mut self.text);
        }
        self.ends.push(self.text.len());
    }

    pub(crate) fn finish(mut self) -> Column {
        // Shrinking copies the buffer: only worth it when much is unused.
        if self.text.capacity() - self.text.len() > self.text.len() / 8 {
            self.text.shrink_to_fit();
        }
        Column {
            text: self.text,
            ends: self.ends,
        }
    }
}

/// A column and the index of its records by their text: every record whose
/// form is a key, several records per key allowed.
///
/// The table holds the most recently inserted record of each key and
/// `next` chains to the others. Slots are record numbers; a key is the
/// record's text in the column, so the table needs no strings of its own
/// (4 bytes a slot instead of a map of borrowed strings, 24) and the
/// column and its index can live in one value.
pub(crate) struct Indexed {
    column: Column,
    heads: HashTable<u32>,
    next: Vec<u32>,
}

fn hash(key: &str) -> u64 {
    FxBuildHasher.hash_one(key)
}

impl Indexed {
    /// Indexes every record of `column` with a non-empty form.
    pub(crate) fn new(column: Column) -> Self {
        let n = column.len();
        let mut previous_end = 0;
        let filled = column
            .ends
            .iter()
            .filter(|&&end| std::mem::replace(&mut previous_end, end) != end)
            .count();
        let mut heads = HashTable::with_capacity(filled);
        let mut next = vec![NONE; n];
        for i in 0..n as u32 {
            let key = column.get(i);
            if key.is_empty() {
                continue;
            }
            let entry = heads.entry(
                hash(key),
                |&other| column.get(other) == key,
                |&other| hash(column.get(other)),
            );
            match entry {
                Entry::Occupied(mut e) => {
                    next[i as usize] = std::mem::replace(e.get_mut(), i);
                }
                Entry::Vacant(e) => {
                    e.insert(i);
                }
            }
        }
        Indexed {
            column,
            heads,
            next,
        }
    }

    /// The form of record `i` (empty when it has none).
    pub(crate) fn text(&self, i: u32) -> &str {
        self.column.get(i)
    }

    /// Every record whose form is `key` (in no particular order).
    pub(crate) fn get(&self, key: &str) -> Chain<'_> {
        let head = if key.is_empty() {
            NONE
        } else {
            self.heads
                .find(hash(key), |&other| self.column.get(other) == key)
                .copied()
                .unwrap_or(NONE)
        };
        Chain {
            next: &self.next,
            current: head,
        }
    }

    /// One record of every key that more than one record shares.
    pub(crate) fn shared_keys(&self) -> impl Iterator<Item = u32> + '_ {
        self.heads
            .iter()
            .copied()
            .filter(|&head| self.next.get(head as usize).is_some_and(|&n| n != NONE))
    }
}

/// The records of one key.
pub(crate) struct Chain<'a> {
    next: &'a [u32],
    current: u32,
}

impl Iterator for Chain<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        if self.current == NONE {
            return None;
        }
        let item = self.current;
        self.current = self.next.get(item as usize).copied().unwrap_or(NONE);
        Some(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_normal_equals_normalized_id() {
        for raw in [
            "  JDoe@Contoso.COM ",
            "Straße",
            "İstanbul",
            "ı",
            "o'Brien@x.se",
            "rene\u{301}",
            "\u{a0}ABC\u{a0}",
            "",
        ] {
            for cs in [false, true] {
                let mut out = String::new();
                push_normal(raw, cs, &mut out);
                assert_eq!(
                    out,
                    NormalizedId::with_mode(raw, cs).as_str(),
                    "{raw:?} cs={cs}"
                );
            }
        }
    }

    #[test]
    fn trim_is_str_trim() {
        for raw in [
            "",
            " ",
            " a ",
            "\x0Ba\x0B",
            "\t\r\n a b \x0C",
            "\u{a0}a\u{a0}",
            " \u{2003}x",
            "ä ",
            " ä",
            "\u{85}",
            "\u{1c}a\u{1f}",
        ] {
            assert_eq!(trim(raw), raw.trim(), "{raw:?}");
        }
    }

    #[test]
    fn column_and_index_find_every_record_of_a_key() {
        let raw = ["A", "b", "", "a", "B ", "c"];
        let col = Column::normal(raw.len(), |i| Some(raw[i]), false);
        assert_eq!(col.get(0), "a");
        assert_eq!(col.get(2), "");
        assert_eq!(col.get(4), "b");
        let index = Indexed::new(col);
        let mut a: Vec<u32> = index.get("a").collect();
        a.sort_unstable();
        assert_eq!(a, vec![0, 3]);
        assert_eq!(index.get("").count(), 0);
        assert_eq!(index.get("c").collect::<Vec<_>>(), vec![5]);
        assert_eq!(index.get("zz").count(), 0);
        let mut shared: Vec<&str> = index.shared_keys().map(|i| index.text(i)).collect();
        shared.sort_unstable();
        assert_eq!(shared, vec!["a", "b"]);
    }

    #[test]
    fn local_part_is_before_the_last_at() {
        assert_eq!(local_part("a@b@c.se"), Some("a@b"));
        assert_eq!(local_part("jdoe"), None);
        assert_eq!(local_part("@x.se"), None);
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn trim_matches_str_trim(raw in any::<String>()) {
            prop_assert_eq!(trim(&raw), raw.trim());
        }

        #[test]
        fn push_normal_is_normalized_id(raw in any::<String>(), cs in any::<bool>()) {
            let mut out = String::from("prefix");
            push_normal(&raw, cs, &mut out);
            let expected = NormalizedId::with_mode(&raw, cs);
            prop_assert_eq!(&out[6..], expected.as_str());
        }
    }
}
