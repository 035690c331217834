//! The texts of one record in one heap allocation.
//!
//! A million users of each system are in memory at once. As separate
//! strings, every user cost its struct of 24-byte string headers plus one
//! allocation per text too long to sit inline (an object ID, a UPN, a mail
//! address): about 280 bytes per Azure user. Packed, the texts of a user
//! are one `Box<str>` with the end of each field in it: one allocation and
//! a 48-byte record, about 200 bytes per Azure user (README, Performance).

/// `SPLITS + 1` optional texts, stored one after the other in one string,
/// and the record's one yes/no field (enabled, active).
///
/// The last field ends where the string ends, so only the `SPLITS` ends
/// before it are stored; the flag sits in what would be padding. An Azure
/// user is 48 bytes, an IFS user 32 (a separate `bool` field would add 8:
/// Rust does not place a field in a nested struct's padding).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct PackedTexts<const SPLITS: usize> {
    /// The texts of the present fields, in field order.
    text: Box<str>,
    /// Where each field but the last ends in `text`; a field starts where
    /// the previous one ends. An absent field is empty.
    ends: [u32; SPLITS],
    /// Bit `i` is set when field `i` is present (`Some`, possibly empty).
    present: u16,
    flag: bool,
}

impl<const SPLITS: usize> PackedTexts<SPLITS> {
    /// Packs `fields`, which should be `SPLITS + 1` long: missing ones read
    /// as absent, extra ones are not kept. `None` stays distinct from
    /// `Some("")`.
    ///
    /// A record's texts together must stay under 4 GiB, which no page a
    /// source accepts can hold; beyond that a field reads as empty (never a
    /// panic, see [`Self::get`]).
    pub(crate) fn new(fields: &[Option<&str>], flag: bool) -> Self {
        const { assert!(SPLITS < 16, "`present` holds 16 bits") };
        let fields = &fields[..fields.len().min(SPLITS + 1)];
        let total: usize = fields.iter().flatten().map(|text| text.len()).sum();
        let mut text = String::with_capacity(total);
        let mut ends = [0u32; SPLITS];
        let mut present = 0u16;
        for (i, field) in fields.iter().enumerate() {
            if let Some(field) = field {
                text.push_str(field);
                present |= 1 << i;
            }
            if let Some(end) = ends.get_mut(i) {
                *end = u32::try_from(text.len()).unwrap_or(u32::MAX);
            }
        }
        PackedTexts {
            text: text.into_boxed_str(),
            ends,
            present,
            flag,
        }
    }

    /// Field `i`: `None` when absent.
    pub(crate) fn get(&self, i: usize) -> Option<&str> {
        if i > SPLITS || self.present & (1 << i) == 0 {
            return None;
        }
        let start = match i.checked_sub(1) {
            Some(before) => self.ends[before] as usize,
            None => 0,
        };
        let end = self
            .ends
            .get(i)
            .map_or(self.text.len(), |&end| end as usize);
        // Always a char boundary (each field was pushed whole); `get`
        // rather than indexing so that even an impossible range cannot panic.
        Some(self.text.get(start..end).unwrap_or_default())
    }

    /// Field `i` of a field that is always present: empty when absent.
    pub(crate) fn text(&self, i: usize) -> &str {
        self.get(i).unwrap_or_default()
    }

    /// The record's yes/no field.
    pub(crate) fn flag(&self) -> bool {
        self.flag
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn absent_and_empty_stay_apart_and_the_record_is_small() {
        let packed = PackedTexts::<2>::new(&[Some(""), None, Some("Åsa")], true);
        assert_eq!(packed.get(0), Some(""));
        assert_eq!(packed.get(1), None);
        assert_eq!(packed.get(2), Some("Åsa"));
        assert_eq!(packed.text(1), "");
        assert_eq!(packed.get(3), None, "past the last field");
        assert!(packed.flag());
        let short = PackedTexts::<2>::new(&[Some("a")], false);
        assert_eq!(
            (short.get(0), short.get(1), short.get(2)),
            (Some("a"), None, None)
        );
        let long = PackedTexts::<1>::new(&[Some("a"), Some("b"), Some("c")], false);
        assert_eq!(
            (long.get(0), long.get(1), long.get(2)),
            (Some("a"), Some("b"), None)
        );
    }

    proptest! {
        /// Every field reads back as it was given, and equal fields give
        /// equal records (the derived `PartialEq` relies on it).
        #[test]
        fn fields_read_back_as_given(
            fields in proptest::array::uniform5(proptest::option::of(any::<String>())),
            flag in any::<bool>(),
        ) {
            let borrowed = fields.each_ref().map(|f| f.as_deref());
            let packed = PackedTexts::<4>::new(&borrowed, flag);
            for (i, field) in fields.iter().enumerate() {
                prop_assert_eq!(packed.get(i), field.as_deref());
            }
            prop_assert_eq!(packed.flag(), flag);
            prop_assert!(packed == PackedTexts::<4>::new(&borrowed, flag));
        }
    }
}
