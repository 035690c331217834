//! The JSON rendering against docs/contract.md: every key, in order, with the
//! documented names and values; plus the `render(report, Format)` dispatch.

use crate::report_fixture;

use idrecon::model::{ActionStatus, Cause, FindingKind};
use idrecon::report::{self, csv, html, json, table, Format, Report};
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{json, Value};
use std::fmt;
use strum::IntoEnumIterator;

/// A JSON document that remembers the order of object keys.
#[derive(Debug)]
enum Ordered {
    Object(Vec<(String, Ordered)>),
    Array(Vec<Ordered>),
    Scalar,
}

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Ordered;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
                let mut entries = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Ordered>()? {
                    entries.push((k, v));
                }
                Ok(Ordered::Object(entries))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Ordered, A::Error> {
                let mut items = Vec::new();
                while let Some(v) = seq.next_element::<Ordered>()? {
                    items.push(v);
                }
                Ok(Ordered::Array(items))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
            fn visit_str<E>(self, _: &str) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
            fn visit_unit<E>(self) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
        }
        d.deserialize_any(V)
    }
}

impl Ordered {
    fn keys(&self) -> Vec<&str> {
        match self {
            Ordered::Object(entries) => entries.iter().map(|(k, _)| k.as_str()).collect(),
            other => panic!("not an object: {other:?}"),
        }
    }

    fn get(&self, key: &str) -> &Ordered {
        match self {
            Ordered::Object(entries) => entries
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v)
                .unwrap_or_else(|| panic!("no key {key}")),
            other => panic!("not an object: {other:?}"),
        }
    }

    fn items(&self) -> &[Ordered] {
        match self {
            Ordered::Array(items) => items,
            other => panic!("not an array: {other:?}"),
        }
    }
}

const REPORT_KEYS: [&str; 13] = [
    "schema_version",
    "run_id",
    "trigger",
    "mode",
    "status",
    "abort_reason",
    "started_at",
    "finished_at",
    "sources",
    "summary",
    "advice",
    "findings",
    "actions",
];
const ACTION_KEYS: [&str; 5] = [
    "kind",
    "flow_user_id",
    "new_flow_user_id",
    "status",
    "error",
];
const SUMMARY_KEYS: [&str; 8] = [
    "people",
    "ok",
    "findings",
    "by_kind",
    "by_cause",
    "new",
    "persisting",
    "resolved_since_last_run",
];

fn rendered(report: &Report) -> String {
    json::render(report).expect("the JSON rendering")
}

#[test]
fn completed_run_snapshot() {
    insta::assert_snapshot!("json_completed", rendered(&report_fixture::completed()));
}

#[test]
fn aborted_run_snapshot() {
    insta::assert_snapshot!("json_aborted", rendered(&report_fixture::aborted()));
}

#[test]
fn keys_are_the_contracts_in_the_contracts_order() {
    let text = rendered(&report_fixture::completed());
    let doc: Ordered = serde_json::from_str(&text).expect("valid JSON");
    assert_eq!(doc.keys(), REPORT_KEYS);
    let sources = doc.get("sources");
    assert_eq!(sources.keys(), ["azure", "ifs", "flow"]);
    assert_eq!(sources.get("azure").keys(), ["users", "complete", "delta"]);
    assert_eq!(sources.get("ifs").keys(), ["users", "complete"]);
    assert_eq!(sources.get("flow").keys(), ["users", "complete"]);
    assert_eq!(doc.get("summary").keys(), SUMMARY_KEYS);
    let findings = doc.get("findings").items();
    assert_eq!(findings.len(), 14);
    for f in findings {
        assert_eq!(f.keys(), csv::COLUMNS);
    }
    let actions = doc.get("actions").items();
    assert_eq!(actions.len(), 7);
    for a in actions {
        assert_eq!(a.keys(), ACTION_KEYS);
    }
}

#[test]
fn values_match_the_contract() {
    let text = rendered(&report_fixture::completed());
    assert!(text.ends_with("}\n"), "pretty JSON with a final newline");
    assert!(text.starts_with("{\n  \"schema_version\": 1,\n"), "{text}");
    let v: Value = serde_json::from_str(&text).expect("valid JSON");
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["run_id"], 42);
    assert_eq!(v["trigger"], "manual");
    assert_eq!(v["mode"], "apply");
    assert_eq!(v["status"], "completed");
    assert_eq!(v["abort_reason"], Value::Null);
    assert_eq!(v["started_at"], "2026-11-26T02:00:00Z");
    assert_eq!(v["finished_at"], "2026-11-26T02:00:07Z");
    assert_eq!(
        v["sources"],
        json!({"azure": {"users": 1200, "complete": true, "delta": false},
               "ifs": {"users": 900, "complete": true},
               "flow": {"users": 950, "complete": true}})
    );
    let s = &v["summary"];
    assert_eq!(s["people"], 1300);
    assert_eq!(s["ok"], 1286);
    assert_eq!(s["findings"], 14);
    assert_eq!(s["by_kind"]["id_mismatch"], 5);
    assert_eq!(s["by_kind"]["sync_managed"], 1);
    assert_eq!(s["by_cause"]["domain_stripped"], 2);
    assert_eq!(s["by_cause"]["case_only"], 1);
    assert_eq!(s["new"], 9);
    assert_eq!(s["persisting"], 5);
    assert_eq!(s["resolved_since_last_run"], 3);
    assert_eq!(v["advice"].as_array().map(Vec::len), Some(2));

    assert_eq!(
        v["findings"][0],
        json!({
            "kind": "id_mismatch",
            "cause": "domain_stripped",
            "status": "new",
            "aad_id": "3f1c9a2e-0b7d-4c5e-9a1f-2b3c4d5e6f70",
            "upn": "jdoe@contoso.com",
            "display_name": "John Doe",
            "ifs_identity": "JDOE",
            "ifs_directory_id": "jdoe@contoso.com",
            "flow_user_id": "jdoe",
            "expected_flow_user_id": "jdoe@contoso.com",
            "action": "rename",
            "action_status": "applied",
            "detail": "Flow ID is the UPN without its domain"
        })
    );
    // A finding without a cause, an action or a person: nulls, not missing keys.
    let orphan = &v["findings"][7];
    assert_eq!(orphan["kind"], "not_in_azure");
    assert_eq!(orphan["cause"], Value::Null);
    assert_eq!(orphan["aad_id"], Value::Null);
    assert_eq!(orphan["status"], "persisting");
    assert_eq!(orphan["action"], "deactivate");
    assert_eq!(orphan["action_status"], "skipped");
    let none = &v["findings"][5];
    assert_eq!(none["action"], "none");
    assert_eq!(none["action_status"], Value::Null);
    // Unicode is written as is (UTF-8), not as \u escapes.
    assert!(text.contains("\"Åsa Öberg\""));
    assert!(text.contains("\"李雷 (Li Lei)\""));
    assert_eq!(
        v["findings"][3]["display_name"],
        report_fixture::SCRIPT_NAME
    );

    assert_eq!(
        v["actions"][1],
        json!({"kind": "rename", "flow_user_id": "åsa.öberg@contoso.se",
               "new_flow_user_id": "Åsa.Öberg@contoso.se", "status": "failed",
               "error": "Flow answered 500: {\"error\":\"internal\"}"})
    );
    assert_eq!(
        v["actions"][6],
        json!({"kind": "deactivate", "flow_user_id": "leaver@contoso.com",
               "new_flow_user_id": null, "status": "applied", "error": null})
    );
}

#[test]
fn every_enum_value_is_the_contracts_spelling() {
    let report = report_fixture::completed();
    let v: Value = serde_json::from_str(&rendered(&report)).expect("valid JSON");
    let kinds: Vec<&str> = v["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["kind"].as_str())
        .collect();
    for kind in [
        "id_mismatch",
        "missing_in_flow",
        "missing_in_ifs",
        "not_in_azure",
        "disabled_in_azure",
        "ambiguous",
        "conflict",
        "directory_id_missing",
        "duplicate_directory_id",
        "sync_managed",
    ] {
        assert!(kinds.contains(&kind), "kind {kind} missing from {kinds:?}");
    }
    assert_eq!(
        FindingKind::iter().count(),
        10,
        "the contract names ten kinds"
    );
    let causes: Vec<&str> = v["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["cause"].as_str())
        .collect();
    for cause in [
        "case_only",
        "domain_stripped",
        "mail_vs_upn",
        "sam_account_name",
        "object_id",
        "other",
    ] {
        assert!(
            causes.contains(&cause),
            "cause {cause} missing from {causes:?}"
        );
        assert!(cause.parse::<Cause>().is_ok());
    }
    let statuses: Vec<&str> = v["actions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["status"].as_str())
        .collect();
    for status in ["planned", "applied", "failed", "skipped", "blocked"] {
        assert!(statuses.contains(&status), "status {status} missing");
        assert!(status.parse::<ActionStatus>().is_ok());
    }
}

#[test]
fn aborted_run_has_a_reason_and_empty_lists() {
    let text = rendered(&report_fixture::aborted());
    let v: Value = serde_json::from_str(&text).expect("valid JSON");
    assert_eq!(v["status"], "aborted");
    assert_eq!(v["trigger"], "schedule");
    assert_eq!(v["mode"], "report");
    assert!(v["abort_reason"]
        .as_str()
        .is_some_and(|r| r.starts_with("Flow source incomplete")));
    assert_eq!(v["findings"], json!([]));
    assert_eq!(v["actions"], json!([]));
    assert_eq!(v["advice"], json!([]));
    assert_eq!(v["sources"]["flow"]["complete"], false);
    assert_eq!(v["sources"]["azure"]["delta"], true);
    assert_eq!(v["summary"]["by_kind"], json!({}));
}

#[test]
fn unfinished_run_has_null_finished_at() {
    let mut report = report_fixture::aborted();
    report.finished_at = None;
    let v: Value = serde_json::from_str(&rendered(&report)).expect("valid JSON");
    assert_eq!(v["finished_at"], Value::Null);
}

#[test]
fn json_reads_back_to_the_same_report() {
    for report in [report_fixture::completed(), report_fixture::aborted()] {
        let back: Report = serde_json::from_str(&rendered(&report)).expect("reads back");
        assert_eq!(back, report);
    }
}

#[test]
fn streamed_json_is_the_rendered_json_byte_for_byte() {
    for report in [report_fixture::completed(), report_fixture::aborted()] {
        let mut streamed = Vec::new();
        json::write(&report, &mut streamed).expect("writes");
        assert_eq!(String::from_utf8(streamed).unwrap(), rendered(&report));
    }
}

#[test]
fn render_dispatches_to_each_format() {
    let r = report_fixture::completed();
    assert_eq!(report::render(&r, Format::Json).ok(), json::render(&r).ok());
    assert_eq!(report::render(&r, Format::Csv).ok(), csv::render(&r).ok());
    assert_eq!(report::render(&r, Format::Html).ok(), html::render(&r).ok());
    // Tests do not run on a terminal: the table is 80 columns wide.
    assert_eq!(
        report::render(&r, Format::Table).ok(),
        Some(table::render(&r, table::DEFAULT_WIDTH))
    );
}
