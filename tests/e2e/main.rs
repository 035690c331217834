//! End to end: the binary and the library against the simulator — findings, delta runs, faults, the Flow CSV and mail.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../support/app.rs"]
pub mod app_support;
#[path = "../support/e2e.rs"]
pub mod e2e_support;
#[path = "../support/smtp.rs"]
pub mod smtp_support;

mod binary;
mod delta;
mod exit_codes;
mod faults;
mod findings;
mod flow_csv;
mod listings;
mod mail;
mod output_file;
mod snapshot;
