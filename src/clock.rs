//! The one source of "now" and of waiting: the worker loop, the run lock's
//! lease and the action journal all read it, so tests drive time through a
//! manual clock instead of waiting real hours.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::time::Duration;

/// The current time and a way to wait for a later one.
#[async_trait]
pub trait Clock: Send + Sync {
    /// The current wall-clock time.
    fn now(&self) -> DateTime<Utc>;
    /// Returns once [`Clock::now`] has reached `deadline` (at once if it has).
    async fn sleep_until(&self, deadline: DateTime<Utc>);
}

/// The real clock.
///
/// Sleeps in naps of at most 30 seconds and re-reads the wall clock after
/// each, so a clock step (NTP) or a suspended machine does not make a run
/// late by the time the machine was asleep.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

const LONGEST_NAP: Duration = Duration::from_secs(30);

#[async_trait]
impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    async fn sleep_until(&self, deadline: DateTime<Utc>) {
        loop {
            let remaining = deadline - Utc::now();
            let Ok(remaining) = remaining.to_std() else {
                return; // deadline reached (negative remaining)
            };
            if remaining.is_zero() {
                return;
            }
            tokio::time::sleep(remaining.min(LONGEST_NAP)).await;
        }
    }
}
