//! The pure core: correlation, classification, planning, new/persisting status and advice, with properties.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod delta;
mod plan;
mod properties;
mod reconcile;
mod status_advice;
