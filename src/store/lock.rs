//! Who holds the run lock, and when a holder may be taken over.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use std::fmt;

/// The process holding (or asking for) the run lock.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct LockHolder {
    pub pid: u32,
    pub host: String,
    /// What the holder is doing, e.g. `reconcile` or `run (scheduled)`.
    pub label: String,
}

impl LockHolder {
    /// This process on this host.
    pub fn current(label: impl Into<String>) -> Self {
        LockHolder {
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
        Ok(())
    }
}

/// The lock as stored: its holder and lease.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LockInfo {
    pub holder: LockHolder,
    pub acquired_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl fmt::Display for LockInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} since {} (lease until {})",
            self.holder,
            self.acquired_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            self.expires_at.to_rfc3339_opts(SecondsFormat::Secs, true)
        )
    }
}

/// The name of this machine as the lock records it.
fn this_host() -> String {
    hostname::get()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| String::from("unknown-host"))
}

/// Whether a process with this ID exists on this machine. IDs that cannot be
/// a process (0, or beyond `i32`) are not alive; a process we may not signal
/// (`EPERM`) is.
#[cfg(unix)]
pub fn pid_is_alive(pid: u32) -> bool {
    use nix::errno::Errno;
    use nix::sys::signal::kill;
    use nix::unistd::Pid;

    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    if raw <= 0 {
        return false;
    }
    match kill(Pid::from_raw(raw), None) {
        Ok(()) => true,
        Err(Errno::ESRCH) => false,
        Err(_) => true,
    }
}

/// Without Unix signals a process cannot be probed without unsafe Win32
/// calls, so every holder counts as alive except IDs that cannot be a
/// process: a lock left by a crashed run is taken over when its lease
/// expires, never early.
#[cfg(not(unix))]
pub fn pid_is_alive(pid: u32) -> bool {
    pid != 0 && pid != u32::MAX
}

/// Whether `asking` may take the lock from the stored `current` at `now`:
/// the lease expired, or the holder was a process on the same host that
/// no longer exists.
pub(crate) fn may_take_over(current: &LockInfo, asking: &LockHolder, now: DateTime<Utc>) -> bool {
    if now >= current.expires_at {
        return true;
    }
    current.holder.host == asking.host && !pid_is_alive(current.holder.pid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn info(pid: u32, host: &str, expires_in_secs: i64) -> LockInfo {
        let t0 = Utc.with_ymd_and_hms(2024, 5, 1, 2, 0, 0).unwrap();
        LockInfo {
            holder: LockHolder {
                pid,
                host: host.into(),
                label: "reconcile".into(),
            },
            acquired_at: t0,
            expires_at: t0 + chrono::Duration::seconds(expires_in_secs),
        }
    }

    #[test]
    fn this_process_is_alive_and_pid_zero_is_not() {
        assert!(pid_is_alive(std::process::id()));
        assert!(!pid_is_alive(0));
        assert!(!pid_is_alive(u32::MAX));
    }

    #[test]
    fn live_holder_with_lease_is_kept() {
        let me = LockHolder::current("x");
        let current = info(std::process::id(), &me.host, 600);
        assert!(!may_take_over(&current, &me, current.acquired_at));
        // expired lease: taken over even though the holder lives
        assert!(may_take_over(
            &current,
            &me,
            current.expires_at + chrono::Duration::seconds(1)
        ));
    }

    #[test]
    fn display_names_pid_host_and_label() {
        let holder = LockHolder {
            pid: 42,
            host: "web01".into(),
            label: "run".into(),
        };
        assert_eq!(holder.to_string(), "pid 42 on host web01 (run)");
    }
}
