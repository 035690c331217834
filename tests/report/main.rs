//! The report formats (table, text, JSON, CSV, HTML) as snapshots of one fixture.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../support/report_fixture.rs"]
pub mod report_fixture;

mod csv;
mod html;
mod json;
mod table;
mod text;
