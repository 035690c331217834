//! Normal forms, and hash indexes over the columns of them
//! ([`Column`]). This is where the core spends most of its time on a large
//! tenant, so it avoids one allocation per value: the indexes hold record
//! numbers hashed by their form ([`Indexed`]).

use super::column::{Column, Field, Form};
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

/// A column and the index of its records by their form: every record
/// whose form is a key, several records per key allowed.
///
/// The table holds the most recently inserted record of each key and
/// `next` chains to the others. Slots are record numbers; a key is the
/// record's form, so the table needs no strings of its own (4 bytes a slot
/// instead of a map of borrowed strings, 24) and the column and its index
/// can live in one value. Like the column, it must always be given the
/// records it was built from.
pub(crate) struct Indexed<F: Field> {
    column: Column<F>,
    heads: HashTable<u32>,
    next: Vec<u32>,
}

fn hash(key: &str) -> u64 {
    FxBuildHasher.hash_one(key)
}

/// The hash of a form: that of its text.
fn hash_form(form: Form<'_>) -> u64 {
    match form {
        Form::Text(text) => hash(text),
        Form::Lower(raw) => hash(&raw.to_ascii_lowercase()),
    }
}

impl<F: Field> Indexed<F> {
    /// Indexes every record of `column` (made from `records`) with a
    /// non-empty form.
    pub(crate) fn new(column: Column<F>, records: &[F::Record]) -> Self {
        let n = column.len();
        let mut index = Indexed {
            heads: HashTable::with_capacity(column.filled()),
            next: vec![NONE; n],
            column,
        };
        let mut scratch = String::new();
        for i in 0..n as u32 {
            index.insert(records, i, &mut scratch);
        }
        index
    }

    /// No records yet, room for about `capacity`: filled by
    /// [`Self::extend`] while the source is still arriving.
    pub(crate) fn growing(capacity: usize) -> Self {
        Indexed {
            column: Column::with_capacity(capacity),
            heads: HashTable::with_capacity(capacity),
            next: Vec::with_capacity(capacity),
        }
    }

    /// Adds the records of `records` past those already indexed (`records`
    /// starts with the ones given before), with their forms made by `form`
    /// (every record's when `included`, else none). The result is the index
    /// [`Self::new`] makes of the whole column, whatever the steps.
    pub(crate) fn extend(
        &mut self,
        records: &[F::Record],
        included: bool,
        form: impl Fn(&str, &mut String),
    ) {
        let mut scratch = String::new();
        for i in self.column.len()..records.len() {
            self.column.push(&records[i], included, &form);
            self.next.push(NONE);
            self.insert(records, i as u32, &mut scratch);
        }
    }

    /// Gives back what the column's stored text does not use.
    pub(crate) fn shrink(&mut self) {
        self.column.shrink();
    }

    /// Puts record `i` (already in the column) at the head of its key's
    /// chain, if it has a form.
    fn insert(&mut self, records: &[F::Record], i: u32, scratch: &mut String) {
        let column = &self.column;
        let form = column.form(records, i);
        if form.is_empty() {
            return;
        }
        let key = form.as_str(scratch);
        let entry = self.heads.entry(
            hash(key),
            |&other| column.form(records, other).is(key),
            |&other| hash_form(column.form(records, other)),
        );
        match entry {
            Entry::Occupied(mut e) => {
                self.next[i as usize] = std::mem::replace(e.get_mut(), i);
            }
            Entry::Vacant(e) => {
                e.insert(i);
            }
        }
    }

    /// The form of record `i` (empty when it has none).
    pub(crate) fn form<'a>(&'a self, records: &'a [F::Record], i: u32) -> Form<'a> {
        self.column.form(records, i)
    }

    /// Every record whose form is `key` (in no particular order).
    pub(crate) fn get(&self, records: &[F::Record], key: &str) -> Chain<'_> {
        let head = if key.is_empty() {
            NONE
        } else {
            self.heads
                .find(hash(key), |&other| self.column.form(records, other).is(key))
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
    use crate::reconcile::column::tests::Plain;

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
        let raw: Vec<Option<String>> = ["A", "b", "", "a", "B ", "c"]
            .iter()
            .map(|s| Some(s.to_string()))
            .collect();
        let col = Column::<Plain>::build(&raw, |raw, out| push_normal(raw, false, out));
        let mut scratch = String::new();
        assert_eq!(col.form(&raw, 0).as_str(&mut scratch), "a");
        assert_eq!(col.form(&raw, 2).as_str(&mut scratch), "");
        assert_eq!(col.form(&raw, 4).as_str(&mut scratch), "b");
        let index = Indexed::new(col, &raw);
        let mut a: Vec<u32> = index.get(&raw, "a").collect();
        a.sort_unstable();
        assert_eq!(a, vec![0, 3]);
        assert_eq!(index.get(&raw, "").count(), 0);
        assert_eq!(index.get(&raw, "c").collect::<Vec<_>>(), vec![5]);
        assert_eq!(index.get(&raw, "zz").count(), 0);
        let mut shared: Vec<String> = index
            .shared_keys()
            .map(|i| index.form(&raw, i).as_str(&mut scratch).to_string())
            .collect();
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
    use crate::reconcile::column::tests::Plain;
    use proptest::prelude::*;

    proptest! {
        /// Looking a key up finds exactly the records whose normal form it
        /// is, whether the column stores the form or reads the raw value.
        #[test]
        fn index_finds_exactly_the_records_of_a_key(
            raws in proptest::collection::vec(
                proptest::option::of(prop_oneof![
                    "[aAbB ]{0,3}",
                    "[aAéÉ\u{301}ß]{0,3}",
                ]),
                0..24,
            ),
            cs in any::<bool>(),
        ) {
            let normal = |raw: &str| NormalizedId::with_mode(raw, cs).as_str().to_string();
            let index = Indexed::new(Column::<Plain>::normal(&raws, cs), &raws);
            let forms: Vec<String> = raws
                .iter()
                .map(|raw| raw.as_deref().map(normal).unwrap_or_default())
                .collect();
            for key in forms.iter().chain([&"a".to_string(), &"A".to_string()]) {
                let mut found: Vec<u32> = index.get(&raws, key).collect();
                found.sort_unstable();
                let expected: Vec<u32> = (0..raws.len() as u32)
                    .filter(|&i| !key.is_empty() && forms[i as usize] == *key)
                    .collect();
                prop_assert_eq!(found, expected);
            }
        }

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
