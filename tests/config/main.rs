//! Configuration: loading, validation, env overrides, the example file, the CLI, `check`, and keeping secrets out of logs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../support/app.rs"]
pub mod app_support;
#[path = "../support/smtp.rs"]
pub mod smtp_support;
#[path = "../support/worker.rs"]
pub mod worker_support;

mod check_command;
mod cli;
mod example;
mod hardening_keys;
mod load;
mod logs_secrets;
