//! The worker: schedule, progress, /healthz and /metrics, signals, the process as a whole.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../support/app.rs"]
pub mod app_support;
#[path = "../support/clock.rs"]
pub mod clock_support;
#[path = "../support/worker.rs"]
pub mod worker_support;

mod history_browser;
mod ops_schedule;
mod ops_server;
mod ops_signals;
mod parts;
mod process;
mod progress;
mod schedule;
