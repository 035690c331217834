//! Fuzzing (proptest) of everything that reads outside input: the config
//! loader (TOML text and `IDRECON__…` overrides), the Graph/IFS/Flow page
//! parsers (bodies from a scripted server on port 0) and the Flow CSV
//! reader. Each must never panic, and every refusal must name what was
//! wrong. Case counts keep the whole set to seconds in CI; raise them with
//! `PROPTEST_CASES` for a longer run. (The simulator's `$filter` parser is
//! fuzzed in its own crate, `ifs_filter::fuzz`.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../support/app.rs"]
pub mod app_support;

mod config;
mod flow_csv;
mod pages;

use proptest::prelude::*;

/// Cases per fuzzer: `PROPTEST_CASES` when set, else `default`.
pub fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A runner for `cases(default)` cases, without a regressions file (the
/// cases found are fixed and kept as plain tests).
pub fn runner(default: u32) -> proptest::test_runner::TestRunner {
    proptest::test_runner::TestRunner::new(proptest::test_runner::Config {
        cases: cases(default),
        failure_persistence: None,
        ..proptest::test_runner::Config::default()
    })
}

/// Text that looks like what hostile or broken input holds: any string,
/// control characters, huge numbers, quotes, very long runs.
pub fn nasty_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[ -~]{0,40}",
        prop::sample::select(vec![
            String::new(),
            "\u{1b}]0;x\u{7}".to_string(),
            "\0".to_string(),
            "'\"\\".to_string(),
            "18446744073709551615".to_string(),
            "-9223372036854775809".to_string(),
            "1e400".to_string(),
            "NaN".to_string(),
            "x".repeat(100_000),
            "\u{feff}".to_string(),
            "é\u{301}".to_string(),
        ]),
    ]
}
