//! Safety checks on what the sources listed, before anything is concluded
//! from it: a source that suddenly lists far fewer users than the last
//! completed run saw is much more likely a broken listing (a wrong group, a
//! lost permission, a half-synced export) than real leavers. Like Entra's
//! accidental-deletions threshold, but for inputs.

/// A source listed fewer users than the last completed run saw.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SourceDrop {
    /// Users the last completed run saw.
    pub before: u64,
    /// Users listed now.
    pub now: u64,
}

impl SourceDrop {
    /// How much smaller the listing is, in percent of `before` (0–100).
    pub fn percent(&self) -> f64 {
        if self.before == 0 {
            return 0.0;
        }
        self.before.saturating_sub(self.now) as f64 * 100.0 / self.before as f64
    }
}

/// The drop from `before` to `now` users when it is larger than
/// `max_percent` (a drop of exactly `max_percent` is allowed); `None` when
/// the listing did not shrink that much, or when there is nothing to compare
/// with (`before` is 0). A `max_percent` that is not a number refuses every
/// drop, so a broken setting errs on the safe side.
pub fn source_drop(before: u64, now: u64, max_percent: f64) -> Option<SourceDrop> {
    if before == 0 || now >= before {
        return None;
    }
    let drop = SourceDrop { before, now };
    let allowed = drop.percent() <= max_percent;
    (!allowed).then_some(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thirty_nine_to_one_is_refused() {
        let drop = source_drop(39, 1, 20.0).unwrap();
        assert!((drop.percent() - 97.435).abs() < 0.01, "{}", drop.percent());
    }

    #[test]
    fn exactly_the_limit_is_allowed_and_more_is_not() {
        assert_eq!(source_drop(100, 80, 20.0), None);
        assert!(source_drop(100, 79, 20.0).is_some());
    }

    #[test]
    fn growth_no_history_and_nan() {
        assert_eq!(source_drop(10, 12, 20.0), None);
        assert_eq!(source_drop(0, 0, 20.0), None);
        assert!(source_drop(10, 9, f64::NAN).is_some());
        assert_eq!(source_drop(10, 0, 100.0), None);
    }
}
