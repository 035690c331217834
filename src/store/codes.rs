//! The snake_case names the store writes for enums of the shared model,
//! and the checked conversions between counts and SQLite integers.

use super::error::StoreError;
use crate::model::{ActionKind, ActionStatus, Cause, FindingKind, FindingStatus};
use crate::report::{Mode, Trigger};

pub(crate) fn trigger_str(trigger: Trigger) -> &'static str {
    match trigger {
        Trigger::Manual => "manual",
        Trigger::Schedule => "schedule",
    }
}

pub(crate) fn parse_trigger(s: &str) -> Result<Trigger, StoreError> {
    match s {
        "manual" => Ok(Trigger::Manual),
        "schedule" => Ok(Trigger::Schedule),
        _ => Err(corrupt("runs.trigger_kind", s)),
    }
}

pub(crate) fn mode_str(mode: Mode) -> &'static str {
    match mode {
        Mode::Report => "report",
        Mode::Apply => "apply",
    }
}

pub(crate) fn parse_mode(s: &str) -> Result<Mode, StoreError> {
    match s {
        "report" => Ok(Mode::Report),
        "apply" => Ok(Mode::Apply),
        _ => Err(corrupt("runs.mode", s)),
    }
}

pub(crate) fn parse_finding_status(s: &str) -> Result<FindingStatus, StoreError> {
    match s {
        "new" => Ok(FindingStatus::New),
        "persisting" => Ok(FindingStatus::Persisting),
        _ => Err(corrupt("findings.status", s)),
    }
}

pub(crate) fn parse_finding_kind(what: &'static str, s: &str) -> Result<FindingKind, StoreError> {
    FindingKind::parse(s).ok_or_else(|| corrupt(what, s))
}

pub(crate) fn parse_cause(what: &'static str, s: &str) -> Result<Cause, StoreError> {
    Cause::parse(s).ok_or_else(|| corrupt(what, s))
}

pub(crate) fn parse_action_kind(what: &'static str, s: &str) -> Result<ActionKind, StoreError> {
    ActionKind::parse(s).ok_or_else(|| corrupt(what, s))
}

pub(crate) fn parse_action_status(what: &'static str, s: &str) -> Result<ActionStatus, StoreError> {
    ActionStatus::parse(s).ok_or_else(|| corrupt(what, s))
}

pub(crate) fn corrupt(what: &'static str, value: &str) -> StoreError {
    StoreError::Corrupt {
        what,
        value: value.to_string(),
    }
}

/// A count as an SQLite integer.
pub(crate) fn to_db(what: &'static str, value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::OutOfRange { what, value })
}

/// A stored count back as `u64`; negative values are corrupt.
pub(crate) fn from_db(what: &'static str, value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| corrupt(what, &value.to_string()))
}

/// A position in a list as an SQLite integer (lists never get near `i64::MAX`).
pub(crate) fn seq(index: usize) -> i64 {
    i64::try_from(index).unwrap_or(i64::MAX)
}
