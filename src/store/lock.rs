//! Who holds the run lock, and when a holder may be taken over.
//!
//! Each process has one instance ID (a random UUID), so a lock is owned by
//! a process run, not by a PID: in a container idrecon is PID 1 after every
//! restart, and PIDs mean nothing across hosts anyway. The holder renews a
//! heartbeat while it runs ([`hold_with_heartbeat`]); a lock whose lease ran
//! out, or whose heartbeat is older than [`HEARTBEAT_STALE_AFTER`], belongs
//! to a process that died or hangs, and may be taken over.

use super::{Store, StoreError};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use std::fmt;
use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

/// How often a running holder renews its heartbeat.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(30);

/// How old a heartbeat may get before its lock may be taken over: six
/// missed beats. Generous, because a beat waits for this process's own
/// writes (one writer connection) and for SQLite's write lock, which a long
/// snapshot save holds.
pub const HEARTBEAT_STALE_AFTER: Duration = Duration::from_secs(6 * 30);

/// The process holding (or asking for) the run lock.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct LockHolder {
    /// This process run's random ID: what ownership is decided on.
    pub instance_id: String,
    /// For people reading the lock; not used to decide ownership.
    pub pid: u32,
    pub host: String,
    /// What the holder is doing, e.g. `reconcile` or `run (scheduled)`.
    pub label: String,
}

impl LockHolder {
    /// This process on this host.
    pub fn current(label: impl Into<String>) -> Self {
        LockHolder {
            instance_id: this_instance().to_string(),
            pid: std::process::id(),
            host: this_host(),
            label: label.into(),
        }
    }
}

impl fmt::Display for LockHolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pid {} on host {}", self.pid, self.host)?;
        if !self.label.is_empty() {
            write!(f, " ({})", self.label)?;
        }
        write!(f, ", instance {}", self.instance_id)
    }
}

/// The lock as stored: its holder, lease and last heartbeat.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LockInfo {
    pub holder: LockHolder,
    pub acquired_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub heartbeat_at: DateTime<Utc>,
}

impl LockInfo {
    /// When this lock may be taken over if its holder stays silent: the
    /// heartbeat going stale or the lease running out, whichever is first.
    pub fn free_at(&self) -> DateTime<Utc> {
        free_at(self.heartbeat_at, self.expires_at)
    }
}

impl fmt::Display for LockInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} since {} (last heartbeat {}, lease until {})",
            self.holder,
            self.acquired_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            self.heartbeat_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            self.expires_at.to_rfc3339_opts(SecondsFormat::Secs, true)
        )
    }
}

/// The instance ID of this process, the same for every lock it takes.
fn this_instance() -> &'static str {
    static INSTANCE: OnceLock<String> = OnceLock::new();
    INSTANCE.get_or_init(|| uuid::Uuid::new_v4().to_string())
}

/// The name of this machine as the lock records it.
fn this_host() -> String {
    hostname::get()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| String::from("unknown-host"))
}

/// When a lock with this heartbeat and lease may be taken over.
pub(crate) fn free_at(heartbeat_at: DateTime<Utc>, expires_at: DateTime<Utc>) -> DateTime<Utc> {
    let stale_after =
        chrono::Duration::from_std(HEARTBEAT_STALE_AFTER).unwrap_or(chrono::Duration::MAX);
    heartbeat_at
        .checked_add_signed(stale_after)
        .unwrap_or(expires_at)
        .min(expires_at)
}

/// Whether the stored lock `current` may be taken over at `now`: its lease
/// expired, or its heartbeat is older than [`HEARTBEAT_STALE_AFTER`]
/// (whatever its PID and host say). A live holder, this very process
/// included, keeps its heartbeat fresh and is never taken over.
pub(crate) fn may_take_over(current: &LockInfo, now: DateTime<Utc>) -> bool {
    now >= current.free_at()
}

/// Runs `work` while renewing the heartbeat of the lock `holder` holds
/// every `interval` (the value written is `clock()`), and returns what
/// `work` returns. Both are polled together, so a beat waiting for the
/// writer connection never stalls `work`. A failed beat is logged; the
/// run's own writes check ownership themselves and stop it if the lock
/// was lost.
pub async fn hold_with_heartbeat<T>(
    store: &dyn Store,
    holder: &LockHolder,
    clock: &dyn crate::clock::Clock,
    interval: Duration,
    work: impl Future<Output = T>,
) -> T {
    let beat = async {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match store.heartbeat_lock(holder, clock.now()).await {
                Ok(()) => {}
                Err(e @ StoreError::LockLost { .. }) => {
                    tracing::error!(error = %e, "the run lock was taken over; this run's writes will be refused");
                    return;
                }
                Err(e) => tracing::warn!(error = %e, "could not renew the run lock's heartbeat"),
            }
        }
    };
    tokio::pin!(work);
    tokio::pin!(beat);
    let mut beating = true;
    loop {
        tokio::select! {
            out = &mut work => return out,
            () = &mut beat, if beating => beating = false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn info(expires_in_secs: i64, heartbeat_age_secs: i64) -> (LockInfo, DateTime<Utc>) {
        let t0 = Utc.with_ymd_and_hms(2024, 5, 1, 2, 0, 0).unwrap();
        let now = t0 + chrono::Duration::seconds(600);
        let info = LockInfo {
            holder: LockHolder {
                instance_id: "11111111-2222-4333-8444-555555555555".into(),
                pid: 1,
                host: "container".into(),
                label: "reconcile".into(),
            },
            acquired_at: t0,
            expires_at: t0 + chrono::Duration::seconds(expires_in_secs),
            heartbeat_at: now - chrono::Duration::seconds(heartbeat_age_secs),
        };
        (info, now)
    }

    #[test]
    fn fresh_heartbeat_and_lease_keep_the_lock() {
        let (current, now) = info(3600, 10);
        assert!(!may_take_over(&current, now));
    }

    #[test]
    fn stale_heartbeat_frees_the_lock_whatever_the_pid() {
        let stale = HEARTBEAT_STALE_AFTER.as_secs() as i64;
        let (current, now) = info(3600, stale - 1);
        assert!(!may_take_over(&current, now));
        let (current, now) = info(3600, stale);
        assert!(may_take_over(&current, now));
    }

    #[test]
    fn expired_lease_frees_the_lock_even_with_a_fresh_heartbeat() {
        let (current, now) = info(600, 0);
        assert!(may_take_over(&current, now));
    }

    #[test]
    fn one_instance_id_per_process() {
        let a = LockHolder::current("a");
        let b = LockHolder::current("b");
        assert_eq!(a.instance_id, b.instance_id);
        assert!(uuid::Uuid::parse_str(&a.instance_id).is_ok());
    }

    #[test]
    fn display_names_pid_host_label_and_instance() {
        let holder = LockHolder {
            instance_id: "abc".into(),
            pid: 42,
            host: "web01".into(),
            label: "run".into(),
        };
        assert_eq!(
            holder.to_string(),
            "pid 42 on host web01 (run), instance abc"
        );
    }
}
