//! idrecon: keeps Flow User IDs equal to IFS Directory IDs, with Azure AD as
//! the source of who people are.
//!
//! The binary (`src/main.rs`) is a thin shell over this library; the tests,
//! the demo and the benchmarks call the same functions.

pub mod apply;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod error;
pub mod file_safety;
pub mod job;
pub mod logging;
pub mod mail;
pub mod memory;
pub mod metrics;
pub mod net;
pub mod notify;
pub mod paths;
pub mod progress;
pub mod report;
pub mod schedule;
pub mod server;
pub mod snapshot;
pub mod sources;
pub mod store;
pub mod web;
pub mod worker;

// The token sources live in the HTTP layer; `idrecon::auth` stays their path.
pub use net::auth;

// The pure core and the simulator live in their own crates (the compiler
// then enforces that the core does no I/O); re-exported under their old
// paths so callers write `idrecon::model`, `idrecon::reconcile`, `idrecon::sim`.
pub use idrecon_core::{delta, model, reconcile};
#[cfg(feature = "sim")]
pub use idrecon_sim as sim;
