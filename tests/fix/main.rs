//! Fixing Flow: planned actions, the journal, crash recovery, the lock and one-person runs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../support/app.rs"]
pub mod app_support;
#[path = "../support/fix.rs"]
pub mod fix_support;

mod apply;
mod crash;
mod journal;
mod lock;
mod user;
