//! The SQLite store: opening, runs, journal, lock and the Azure snapshot.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../support/store.rs"]
pub mod store_support;

mod checkpoint;
mod disk_full;
mod fencing;
mod journal;
mod lock;
mod open;
mod runs;
mod schema;
mod snapshot;
mod upgrade;
