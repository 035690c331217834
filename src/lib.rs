//! idrecon: keeps Flow User IDs equal to IFS Directory IDs, with Azure AD as
//! the source of who people are.
//!
//! The binary (`src/main.rs`) is a thin shell over this library; the tests,
//! the demo and the benchmarks call the same functions.

pub mod apply;
pub mod auth;
pub mod cli;
pub mod commands;
pub mod config;
pub mod error;
pub mod logging;
pub mod mail;
pub mod metrics;
pub mod model;
pub mod notify;
pub mod progress;
pub mod reconcile;
pub mod report;
pub mod run;
pub mod schedule;
pub mod server;
pub mod sim;
pub mod sources;
pub mod store;
