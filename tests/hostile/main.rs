//! idrecon against hostile servers (tests/support/hostile.rs): redirects,
//! huge and gzip-bomb bodies, numeric extremes, slow drips, HTML where JSON
//! was expected, echoed secrets, foreign token endpoints. For each, idrecon
//! aborts cleanly or copes; it never panics, never sends a credential to
//! another origin and never prints a secret.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../support/hostile.rs"]
pub mod hostile;

mod redirects;
