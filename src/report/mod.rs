//! The run report: the data of docs/contract.md's JSON (`schema_version` 1) and
//! its renderings (terminal table, JSON, CSV, HTML) and e-mail.

use crate::model::{Action, Cause, Finding, FindingKind};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub mod email;

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[derive(strum::Display, strum::EnumString, strum::IntoStaticStr, strum::EnumIter)]
#[strum(serialize_all = "snake_case")]
pub enum Trigger {
    Manual,
    Schedule,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[derive(strum::Display, strum::EnumString, strum::IntoStaticStr, strum::EnumIter)]
#[strum(serialize_all = "snake_case")]
pub enum Mode {
    Report,
    Apply,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[derive(strum::Display, strum::EnumString, strum::IntoStaticStr, strum::EnumIter)]
#[strum(serialize_all = "snake_case")]
pub enum RunStatus {
    Completed,
    Aborted,
    Failed,
}

impl Trigger {
    /// The snake_case name of the JSON report and the store.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl Mode {
    /// The snake_case name of the JSON report and the store.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl RunStatus {
    /// The snake_case name of the JSON report and the store.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SourceSummary {
    pub users: u64,
    pub complete: bool,
    /// Only for Azure: whether this run used a delta query.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub delta: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SourcesSummary {
    pub azure: SourceSummary,
    pub ifs: SourceSummary,
    pub flow: SourceSummary,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Summary {
    pub people: u64,
    pub ok: u64,
    pub findings: u64,
    pub by_kind: BTreeMap<FindingKind, u64>,
    pub by_cause: BTreeMap<Cause, u64>,
    pub new: u64,
    pub persisting: u64,
    pub resolved_since_last_run: u64,
}

/// Everything one run produced; serialises to exactly the contract's JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema_version: u32,
    pub run_id: i64,
    pub trigger: Trigger,
    pub mode: Mode,
    pub status: RunStatus,
    pub abort_reason: Option<String>,
    #[serde(with = "crate::report::timestamp")]
    pub started_at: DateTime<Utc>,
    #[serde(with = "crate::report::timestamp_opt")]
    pub finished_at: Option<DateTime<Utc>>,
    pub sources: SourcesSummary,
    pub summary: Summary,
    pub advice: Vec<String>,
    pub findings: Vec<Finding>,
    pub actions: Vec<Action>,
}

impl Report {
    /// The report of a run that just started: status `completed` until
    /// something stops it, no sources read, nothing found yet.
    pub fn started(run_id: i64, trigger: Trigger, mode: Mode, started_at: DateTime<Utc>) -> Self {
        Report {
            schema_version: SCHEMA_VERSION,
            run_id,
            trigger,
            mode,
            status: RunStatus::Completed,
            abort_reason: None,
            started_at,
            finished_at: None,
            sources: SourcesSummary::default(),
            summary: Summary::default(),
            advice: Vec::new(),
            findings: Vec::new(),
            actions: Vec::new(),
        }
    }
}

/// RFC 3339 with whole seconds and `Z`, as in the contract.
pub mod timestamp {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Secs, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

/// Like [`timestamp`], for an optional time (`null` when absent).
pub mod timestamp_opt {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Secs, true)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        let s = Option::<String>::deserialize(d)?;
        s.map(|s| {
            DateTime::parse_from_rfc3339(&s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(serde::de::Error::custom)
        })
        .transpose()
    }
}

pub mod csv;
pub mod format;
pub mod html;
pub mod json;
pub(crate) mod labels;
pub mod table;
pub mod terminal;
pub mod text;

pub use format::{render, Format, ReportError, UnknownFormat};
