//! When `idrecon run` reconciles: a standard 5-field crontab expression in an
//! IANA time zone, the worker loop that fires the job at those times without
//! ever overlapping two runs, and the signal handling that stops it cleanly.
//!
//! Cron parsing and matching is croner's (POSIX/Vixie semantics: 5 fields,
//! Sunday = 0 or 7, names, ranges, steps, lists; `@daily` and friends).
//! Around daylight-saving changes the rule is *every matching wall-clock time
//! runs once*:
//!
//! - spring forward (the time does not exist, e.g. 02:30 on 2026-03-29 in
//!   Europe/Stockholm): croner moves it to the first instant after the gap
//!   (03:00 local), so the nightly run still happens once;
//! - fall back (the time occurs twice, e.g. 02:30 on 2026-10-25): the run
//!   happens at the first occurrence only. croner resolves the ambiguous time
//!   to its earlier instant; when asked for the next time from inside the
//!   repeated hour it hands back that earlier (already past) instant, which
//!   [`Schedule::next_after`] skips instead of firing twice.

use crate::clock::Clock;
use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;
use std::future::Future;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// A schedule that cannot be used; the message names the config key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("schedule.cron: {expression:?} has {fields} fields; expected 5 (minute hour day-of-month month day-of-week). Seconds and Quartz-style 6/7-field expressions are not supported")]
    FieldCount { expression: String, fields: usize },
    #[error("schedule.cron: {expression:?} is not a valid crontab expression: {reason}")]
    InvalidCron { expression: String, reason: String },
    #[error("schedule.cron: {expression:?} never matches a real date")]
    NeverMatches { expression: String },
    #[error("schedule.timezone: unknown time zone {0:?} (expected an IANA name such as \"Europe/Stockholm\" or \"UTC\")")]
    UnknownTimeZone(String),
}

/// A crontab expression bound to a time zone.
#[derive(Debug, Clone)]
pub struct Schedule {
    expression: String,
    cron: Cron,
    timezone: Tz,
}

/// Upper bound on the candidates [`Schedule::next_after`] looks at while
/// stepping over already-past instants of a repeated (fall-back) hour. A
/// repeated hour holds at most 60 minute-matches, so this is never reached
/// by a valid schedule; it only guards against looping forever.
const MAX_PAST_CANDIDATES: usize = 1_000;

impl Schedule {
    /// Parses `cron` (5 fields, crontab semantics) and `timezone` (IANA name).
    pub fn parse(cron: &str, timezone: &str) -> Result<Schedule, ScheduleError> {
        let expression = cron.trim();
        let fields = expression.split_whitespace().count();
        let is_alias = fields == 1 && expression.starts_with('@');
        if fields != 5 && !is_alias {
            return Err(ScheduleError::FieldCount {
                expression: expression.to_string(),
                fields,
            });
        }
        // croner's defaults are the POSIX ones: 5 fields (6 only with
        // `with_seconds_optional`, which we do not enable), Sunday = 0 or 7
        // (Quartz numbering only with `with_alternative_weekdays`), and
        // day-of-month OR day-of-week when both are restricted.
        let parsed = Cron::new(expression)
            .parse()
            .map_err(|e| ScheduleError::InvalidCron {
                expression: expression.to_string(),
                reason: e.to_string(),
            })?;
        let tz: Tz = timezone
            .trim()
            .parse()
            .map_err(|_| ScheduleError::UnknownTimeZone(timezone.to_string()))?;
        let schedule = Schedule {
            expression: expression.to_string(),
            cron: parsed,
            timezone: tz,
        };
        // `0 0 30 2 *` parses but never fires; refuse it rather than sleep forever.
        let anchor = Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).single();
        let matches = anchor.is_some_and(|a| schedule.next_occurrence(a).is_some());
        if !matches {
            return Err(ScheduleError::NeverMatches {
                expression: expression.to_string(),
            });
        }
        Ok(schedule)
    }

    /// The expression as configured (trimmed).
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The time zone the expression is read in.
    pub fn timezone(&self) -> Tz {
        self.timezone
    }

    /// The first scheduled instant strictly after `t`.
    ///
    /// A schedule accepted by [`Schedule::parse`] always has one (up to
    /// croner's search limit, the year 5000); past that this returns
    /// [`DateTime::<Utc>::MAX_UTC`], i.e. "never".
    pub fn next_after(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        self.next_occurrence(t)
            .map(|local| local.with_timezone(&Utc))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// The next `n` scheduled times after `from`, in the schedule's zone
    /// (what `idrecon check` prints).
    pub fn upcoming(&self, from: DateTime<Utc>, n: usize) -> Vec<DateTime<Tz>> {
        let mut times = Vec::with_capacity(n);
        let mut cursor = from;
        while times.len() < n {
            match self.next_occurrence(cursor) {
                Some(local) => {
                    cursor = local.with_timezone(&Utc);
                    times.push(local);
                }
                None => break,
            }
        }
        times
    }

    /// The next matching wall-clock time after `t`, as an instant in the zone.
    fn next_occurrence(&self, t: DateTime<Utc>) -> Option<DateTime<Tz>> {
        let mut from = t.with_timezone(&self.timezone);
        for _ in 0..MAX_PAST_CANDIDATES {
            let candidate = self.cron.find_next_occurrence(&from, false).ok()?;
            if candidate.with_timezone(&Utc) > t {
                return Some(candidate);
            }
            // A wall-clock time of a repeated (fall-back) hour whose first
            // occurrence is already past: it ran then, do not run it twice.
            // croner searches by local wall-clock time, so continuing from
            // the candidate moves strictly forward.
            from = candidate;
        }
        None
    }
}

/// Runs `job` at every time of `schedule` until `shutdown` is cancelled.
///
/// - Runs never overlap: a time that comes due while the previous run is
///   still going is skipped, with a `warn` naming the skipped time.
/// - On shutdown while idle, returns at once. On shutdown during a run, no
///   new run is started; the current one is awaited (not cancelled: the job
///   watches the same token itself and finishes or journals its current
///   action), then this returns.
pub async fn run_scheduled<F, Fut>(
    schedule: &Schedule,
    shutdown: CancellationToken,
    clock: &dyn Clock,
    mut job: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let tz = schedule.timezone();
    let mut due = schedule.next_after(clock.now());
    loop {
        if due == DateTime::<Utc>::MAX_UTC {
            warn!(
                cron = schedule.expression(),
                "the schedule has no further time; waiting for shutdown"
            );
            shutdown.cancelled().await;
            return;
        }
        info!(next_run = %due.with_timezone(&tz), "waiting for the next scheduled run");
        while clock.now() < due {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => {
                    info!("shutdown requested while idle; stopping");
                    return;
                }
                () = clock.sleep_until(due) => {}
            }
        }
        if shutdown.is_cancelled() {
            info!("shutdown requested; not starting the scheduled run");
            return;
        }

        info!(scheduled_for = %due.with_timezone(&tz), "scheduled run starting");
        let mut pending = schedule.next_after(due);
        let run = job();
        tokio::pin!(run);
        let mut stopping = false;
        loop {
            if stopping {
                run.as_mut().await;
                break;
            }
            tokio::select! {
                biased;
                () = run.as_mut() => break,
                () = shutdown.cancelled() => {
                    info!("shutdown requested; waiting for the current run to finish");
                    stopping = true;
                }
                () = clock.sleep_until(pending), if pending != DateTime::<Utc>::MAX_UTC => {
                    warn!(
                        skipped = %pending.with_timezone(&tz),
                        running_since = %due.with_timezone(&tz),
                        "scheduled time skipped: the previous run is still going"
                    );
                    pending = schedule.next_after(pending);
                }
            }
        }
        info!(scheduled_for = %due.with_timezone(&tz), "scheduled run finished");
        if shutdown.is_cancelled() {
            info!("stopping after the current run");
            return;
        }
        // Times that came due while the run was finishing were overlapped too.
        let finished = clock.now();
        while pending < finished {
            warn!(
                skipped = %pending.with_timezone(&tz),
                running_since = %due.with_timezone(&tz),
                "scheduled time skipped: the previous run is still going"
            );
            pending = schedule.next_after(pending);
        }
        due = pending;
    }
}

/// Cancels `token` on SIGINT or SIGTERM (Ctrl-C on non-Unix systems).
///
/// Must be called inside a tokio runtime. The handlers are installed before
/// this returns; the first signal cancels the token, later ones are ignored
/// (the service manager's stop timeout, then SIGKILL, still applies).
pub fn install_signal_handlers(token: CancellationToken) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        tokio::spawn(async move {
            let name = tokio::select! {
                _ = interrupt.recv() => "SIGINT",
                _ = terminate.recv() => "SIGTERM",
                () = token.cancelled() => return,
            };
            info!(
                signal = name,
                "stop requested: finishing the current work, then exiting"
            );
            token.cancel();
        });
    }
    #[cfg(not(unix))]
    {
        tokio::spawn(async move {
            tokio::select! {
                result = tokio::signal::ctrl_c() => {
                    if let Err(e) = result {
                        warn!(error = %e, "cannot listen for Ctrl-C");
                        return;
                    }
                }
                () = token.cancelled() => return,
            }
            info!("Ctrl-C received: finishing the current work, then exiting");
            token.cancel();
        });
    }
    Ok(())
}
