//! One derived string per record (a normal form, an object-ID key), for a
//! whole source at once, in as little memory as a million records allow.
//!
//! Most derived forms are the raw value itself (an ID that is already
//! trimmed and lower case) or its ASCII lower case (`John.Doe@…`). Those
//! are not copied: the column only notes which of the two it is and reads
//! the raw value from the record when asked, so it must always be given the
//! records it was built from. Only the other forms are stored, all in one
//! string; per record the column keeps one `u64`.

use super::index::push_normal;
use std::marker::PhantomData;

/// The raw value a column derives its forms from.
pub(crate) trait Field {
    type Record;
    fn raw(record: &Self::Record) -> Option<&str>;
}

/// The form of one record, without copying.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Form<'a> {
    /// The form itself.
    Text(&'a str),
    /// The ASCII lower case of this (raw) text.
    Lower(&'a str),
}

impl<'a> Form<'a> {
    /// No form (no value, or one that derives to nothing).
    pub(crate) fn is_empty(self) -> bool {
        match self {
            Form::Text(s) | Form::Lower(s) => s.is_empty(),
        }
    }

    /// Whether the form is exactly `key`.
    pub(crate) fn is(self, key: &str) -> bool {
        match self {
            Form::Text(s) => s == key,
            Form::Lower(raw) => {
                raw.len() == key.len()
                    && raw
                        .bytes()
                        .zip(key.bytes())
                        .all(|(r, k)| r.to_ascii_lowercase() == k)
            }
        }
    }

    /// The form as text, written to `scratch` when it has to be lowered.
    pub(crate) fn as_str<'s>(self, scratch: &'s mut String) -> &'s str
    where
        'a: 's,
    {
        match self {
            Form::Text(s) => s,
            Form::Lower(raw) => {
                scratch.clear();
                scratch.push_str(raw);
                scratch.make_ascii_lowercase();
                scratch
            }
        }
    }
}

/// The kind of a record's form, in the top two bits of its word; the other
/// bits are the end of the stored text so far (the start of the next
/// stored form).
/// 64 bits, not 32: with 32 the stored text of one column could outgrow
/// its 30-bit offsets (a million records of long non-ASCII values), and
/// nothing a source sends may stop a run with a panic.
const KIND_SHIFT: u32 = 62;
const STORED: u64 = 0;
const RAW: u64 = 1 << KIND_SHIFT;
const LOWER: u64 = 2 << KIND_SHIFT;
const OFFSET: u64 = (1 << KIND_SHIFT) - 1;

/// The derived forms of the records of one source (`F`'s values).
pub(crate) struct Column<F: Field> {
    /// The forms that are neither the raw value nor its lower case.
    text: String,
    words: Vec<u64>,
    field: PhantomData<fn() -> F>,
}

impl<F: Field> Column<F> {
    /// The column of `records`: `form` appends the derived form of a raw value.
    pub(crate) fn build(records: &[F::Record], form: impl Fn(&str, &mut String)) -> Self {
        let mut column = Column::with_capacity(records.len());
        for record in records {
            column.push(record, true, &form);
        }
        column.shrink();
        column
    }

    /// A column of normal forms (`≈`).
    pub(crate) fn normal(records: &[F::Record], case_sensitive: bool) -> Self {
        Self::build(records, |raw, out| push_normal(raw, case_sensitive, out))
    }

    /// A column where every record has no form (a field no rule needs).
    pub(crate) fn empty(n: usize) -> Self {
        Column {
            text: String::new(),
            words: vec![STORED; n],
            field: PhantomData,
        }
    }

    /// The form of record `i` of `records` (the records the column was
    /// built from; empty when it has none).
    pub(crate) fn form<'a>(&'a self, records: &'a [F::Record], i: u32) -> Form<'a> {
        let i = i as usize;
        let word = self.words.get(i).copied().unwrap_or(STORED);
        let raw = || records.get(i).and_then(F::raw).unwrap_or("");
        match word & !OFFSET {
            RAW => Form::Text(raw()),
            LOWER => Form::Lower(raw()),
            _ => {
                let start = match i.checked_sub(1) {
                    Some(previous) => self.words.get(previous).map_or(0, |w| w & OFFSET),
                    None => 0,
                };
                let text = self.text.get(start as usize..(word & OFFSET) as usize);
                Form::Text(text.unwrap_or(""))
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.words.len()
    }

    /// How many records have a form (from the words alone: a form that is
    /// the raw value or its lower case is never empty).
    pub(crate) fn filled(&self) -> usize {
        let mut previous_end = 0;
        self.words
            .iter()
            .filter(|&&word| {
                let start = std::mem::replace(&mut previous_end, word & OFFSET);
                word & !OFFSET != STORED || start != previous_end
            })
            .count()
    }
}

impl<F: Field> Column<F> {
    /// No records yet, room for `n`.
    pub(crate) fn with_capacity(n: usize) -> Self {
        Column {
            text: String::new(),
            words: Vec::with_capacity(n),
            field: PhantomData,
        }
    }

    /// Appends the form of the next record (none if not `included`): a
    /// column is filled one record at a time, so several columns can be
    /// filled in one pass, or while their source is still arriving.
    pub(crate) fn push(
        &mut self,
        record: &F::Record,
        included: bool,
        form: impl Fn(&str, &mut String),
    ) {
        let start = self.text.len();
        let mut kind = STORED;
        if let Some(raw) = F::raw(record).filter(|_| included) {
            form(raw, &mut self.text);
            let derived = &self.text.as_bytes()[start..];
            if !derived.is_empty() {
                if derived == raw.as_bytes() {
                    kind = RAW;
                } else if is_lower_case_of(derived, raw.as_bytes()) {
                    kind = LOWER;
                }
            }
            if kind != STORED {
                self.text.truncate(start);
            }
        }
        // A `usize` length always fits 62 bits.
        let end = self.text.len() as u64 & OFFSET;
        self.words.push(end | kind);
    }

    /// Gives back what the stored text does not use, when that is much.
    pub(crate) fn shrink(&mut self) {
        // Shrinking copies the buffer: only worth it when much is unused.
        if self.text.capacity() - self.text.len() > self.text.len() / 8 {
            self.text.shrink_to_fit();
        }
    }
}

/// `derived` is the ASCII lower case of `raw`.
fn is_lower_case_of(derived: &[u8], raw: &[u8]) -> bool {
    derived.len() == raw.len()
        && derived
            .iter()
            .zip(raw)
            .all(|(&d, &r)| d == r.to_ascii_lowercase())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A column over plain optional strings.
    pub(crate) struct Plain;

    impl Field for Plain {
        type Record = Option<String>;
        fn raw(record: &Option<String>) -> Option<&str> {
            record.as_deref()
        }
    }

    fn lower_trimmed(raw: &str, out: &mut String) {
        out.push_str(&raw.trim().to_ascii_lowercase());
    }

    #[test]
    fn forms_are_stored_only_when_they_differ_from_the_raw_value() {
        let records: Vec<Option<String>> = ["a", "B", " c ", "", "Dé"]
            .iter()
            .map(|s| Some(s.to_string()))
            .chain([None])
            .collect();
        let column = Column::<Plain>::build(&records, lower_trimmed);
        let mut scratch = String::new();
        let forms: Vec<String> = (0..records.len() as u32)
            .map(|i| column.form(&records, i).as_str(&mut scratch).to_string())
            .collect();
        assert_eq!(forms, ["a", "b", "c", "", "dé", ""]);
        assert!(matches!(column.form(&records, 0), Form::Text("a")));
        assert!(matches!(column.form(&records, 1), Form::Lower("B")));
        assert!(matches!(column.form(&records, 4), Form::Lower("Dé")));
        assert_eq!(column.text, "c");
        assert!(column.form(&records, 3).is_empty());
        assert!(column.form(&records, 5).is_empty());
        assert!(column.form(&records, 1).is("b"));
        assert!(!column.form(&records, 1).is("B"));
        assert!(!column.form(&records, 1).is("bb"));
        assert_eq!(column.form(&records, 99).as_str(&mut scratch), "");
        assert_eq!(column.filled(), 4);
    }

    #[test]
    fn a_record_left_out_has_no_form() {
        let records = vec![Some("X".to_string()), Some("y".to_string())];
        let mut column = Column::<Plain>::with_capacity(2);
        column.push(&records[0], false, lower_trimmed);
        column.push(&records[1], true, lower_trimmed);
        assert!(column.form(&records, 0).is_empty());
        assert!(column.form(&records, 1).is("y"));
    }
}

#[cfg(test)]
mod properties {
    use super::tests::Plain;
    use super::*;
    use crate::reconcile::index::push_normal;
    use proptest::prelude::*;

    proptest! {
        /// Whatever the column stores or borrows, every record's form is
        /// the one the form function derives.
        #[test]
        fn every_form_is_the_derived_one(
            raws in proptest::collection::vec(
                proptest::option::of(prop_oneof![
                    "[a-zA-Z .@]{0,8}",
                    any::<String>(),
                ]),
                0..24,
            ),
            cs in any::<bool>(),
        ) {
            let normal = |raw: &str, out: &mut String| push_normal(raw, cs, out);
            let column = Column::<Plain>::build(&raws, normal);
            let mut scratch = String::new();
            for (i, raw) in raws.iter().enumerate() {
                let mut expected = String::new();
                if let Some(raw) = raw {
                    normal(raw, &mut expected);
                }
                let form = column.form(&raws, i as u32);
                prop_assert!(form.is(&expected));
                prop_assert_eq!(form.is_empty(), expected.is_empty());
                prop_assert_eq!(form.as_str(&mut scratch), expected.as_str());
                let other = raws.get(i + 1).cloned().flatten().unwrap_or_default();
                prop_assert_eq!(form.is(&other), other == expected);
            }
            let filled = (0..raws.len() as u32).filter(|&i| !column.form(&raws, i).is_empty()).count();
            prop_assert_eq!(column.filled(), filled);
        }
    }
}
