//! The simulator itself: the services it fakes, its fault plan, the generator and scale.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../support/sim.rs"]
pub mod sim_support;

mod faults;
mod fidelity;
mod generate;
mod scale;
mod services;
