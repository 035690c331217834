//! idrecon-core: the pure part of idrecon — the domain model, the rules that
//! link records into people, classify them and plan the fixes, and the
//! helpers that turn source deltas into snapshots.
//!
//! Nothing in this crate does I/O or reads a clock: data in, data out. The
//! compiler enforces it — this crate depends on no async runtime, HTTP
//! client or database (`cargo tree -p idrecon-core`). The rules are those of
//! `docs/semantics.md`.

pub mod delta;
pub mod model;
pub mod permute;
pub mod reconcile;
pub mod safety;
