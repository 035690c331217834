//! A clock for scheduler tests: it only moves when the test sets it, and
//! records who sleeps until when, so a test can wait until the loop is idle
//! at an expected time. Shared by tests/ops_schedule.rs and the worker tests.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use idrecon::clock::Clock;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// A clock that only moves when the test sets it; records who sleeps until when.
pub struct ManualClock {
    now: watch::Sender<DateTime<Utc>>,
    sleepers: watch::Sender<Vec<DateTime<Utc>>>,
}

struct SleeperGuard<'a> {
    clock: &'a ManualClock,
    deadline: DateTime<Utc>,
}

impl Drop for SleeperGuard<'_> {
    fn drop(&mut self) {
        let deadline = self.deadline;
        self.clock.sleepers.send_modify(|v| {
            if let Some(i) = v.iter().position(|d| *d == deadline) {
                v.remove(i);
            }
        });
    }
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Arc<Self> {
        Arc::new(ManualClock {
            now: watch::channel(start).0,
            sleepers: watch::channel(Vec::new()).0,
        })
    }

    pub fn set(&self, t: DateTime<Utc>) {
        self.now.send_replace(t);
    }

    /// Waits (at most 30 real seconds) until something sleeps until `deadline`.
    pub async fn wait_for_sleeper(&self, deadline: DateTime<Utc>) {
        let mut rx = self.sleepers.subscribe();
        tokio::time::timeout(
            Duration::from_secs(30),
            rx.wait_for(|v| v.contains(&deadline)),
        )
        .await
        .unwrap_or_else(|_| {
            panic!(
                "nothing slept until {deadline}; sleepers: {:?}",
                self.sleepers.borrow()
            )
        })
        .unwrap();
    }
}

#[async_trait]
impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.borrow()
    }

    async fn sleep_until(&self, deadline: DateTime<Utc>) {
        self.sleepers.send_modify(|v| v.push(deadline));
        let _guard = SleeperGuard {
            clock: self,
            deadline,
        };
        let mut rx = self.now.subscribe();
        let _ = rx.wait_for(|now| *now >= deadline).await;
    }
}
