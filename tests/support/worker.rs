//! Helpers shared by the worker, check and log tests (which start the
//! simulator through [`crate::app_support::TestApp`]): config edits, fast
//! HTTP retries, polling, and a manual clock for the scheduler.

use chrono::{DateTime, Utc};
use idrecon::sources::http::HttpSettings;
use idrecon::sources::retry::RetryPolicy;
use std::time::Duration;

/// Replaces `from` (which must occur) with `to`.
pub fn replace(text: String, from: &str, to: &str) -> String {
    assert!(text.contains(from), "config has no {from:?}");
    text.replace(from, to)
}

/// `[fix] enabled = true` with limits that let every planned action through.
pub fn enable_fixes(text: String) -> String {
    let text = replace(text, "enabled = false", "enabled = true");
    let text = replace(text, "max_changes = 25", "max_changes = 10000");
    replace(
        text,
        "max_change_percent = 5.0",
        "max_change_percent = 100.0",
    )
}

/// Retries that take milliseconds, not minutes.
pub fn fast_http() -> HttpSettings {
    HttpSettings {
        connect_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(20),
        retry: RetryPolicy {
            max_retries: 1,
            min_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
            max_total_wait: Duration::from_secs(1),
        },
        ..HttpSettings::default()
    }
}

pub fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("bad test time {s}: {e}"))
        .with_timezone(&Utc)
}

/// Polls `f` every 20 ms for at most 30 s.
pub async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..1500 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

/// A plain HTTP GET returning status and body.
pub async fn get(url: &str) -> (u16, String) {
    let response = reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}
