//! Retries for calls to the external systems: exponential backoff with
//! jitter (the `backon` crate), honouring `Retry-After`, bounded both in the
//! number of attempts and in the total time spent waiting.
//!
//! An operation reports each failed attempt as an [`AttemptError`]: the
//! final [`SourceError`] plus a [`RetryHint`] saying whether trying again
//! can help. [`with_retries`] drives the attempts; [`run_authorized`] adds
//! the "401 → forget the token and try once more" rule on top.

use crate::net::token::AccessTokenSource;
use crate::sources::{SourceError, SourceErrorKind};
use backon::{ExponentialBuilder, Retryable};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// How hard to try before giving up on one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (so `max_retries + 1` attempts at most).
    pub max_retries: usize,
    /// First backoff delay; doubles each retry (plus jitter).
    pub min_delay: Duration,
    /// Upper bound of one backoff delay.
    pub max_delay: Duration,
    /// Upper bound of the total time spent waiting between attempts,
    /// including waits asked for by `Retry-After`. A `Retry-After` that would
    /// exceed it ends the retries at once.
    pub max_total_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 6,
            min_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_total_wait: Duration::from_secs(180),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries (useful for one-shot probes).
    pub fn none() -> Self {
        RetryPolicy {
            max_retries: 0,
            ..RetryPolicy::default()
        }
    }

    fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.max_retries)
            .with_jitter()
    }
}

/// Whether a failed attempt is worth repeating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryHint {
    /// Permanent (4xx other than 429, bad payload, bad config): give up now.
    Never,
    /// Transient: retry after the backoff delay.
    Backoff,
    /// Transient and the service said when (`Retry-After`).
    After(Duration),
}

/// One failed attempt: the error to report if it stays failed, and whether
/// to try again.
#[derive(Debug, Clone)]
pub struct AttemptError {
    pub error: SourceError,
    pub hint: RetryHint,
}

impl AttemptError {
    /// A failure that retrying cannot fix.
    pub fn fatal(error: SourceError) -> Self {
        AttemptError {
            error,
            hint: RetryHint::Never,
        }
    }

    /// A transient failure.
    pub fn transient(error: SourceError, retry_after: Option<Duration>) -> Self {
        AttemptError {
            error,
            hint: retry_after.map_or(RetryHint::Backoff, RetryHint::After),
        }
    }

    fn is_retryable(&self) -> bool {
        !matches!(self.hint, RetryHint::Never)
    }
}

impl From<SourceError> for AttemptError {
    fn from(error: SourceError) -> Self {
        AttemptError::fatal(error)
    }
}

/// The longest `Retry-After` taken at its word; a longer one (up to
/// `u64::MAX` seconds from a hostile server) counts as this long, which is
/// beyond any retry budget, so the request fails at once as throttled.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// Reads `Retry-After` as delta-seconds or as an HTTP-date (relative to `now`),
/// capped at [`MAX_RETRY_AFTER`]. A date in the past means "now" (zero);
/// anything unreadable is ignored.
pub fn parse_retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let wait = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        // More digits than a u64 holds is still "very long".
        Err(_) if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => MAX_RETRY_AFTER,
        Err(_) => {
            let when = httpdate::parse_http_date(value).ok()?;
            when.duration_since(now).unwrap_or(Duration::ZERO)
        }
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// Runs `op` until it succeeds, fails permanently, or the policy's attempts
/// or total waiting time are used up. The returned error is the last
/// attempt's; when retries ran out it says how many attempts were made, and
/// an exhausted 429 becomes [`SourceErrorKind::Throttled`].
pub async fn with_retries<T, F, Fut>(policy: &RetryPolicy, mut op: F) -> Result<T, SourceError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, AttemptError>>,
{
    let started = Instant::now();
    let attempts = AtomicU32::new(0);
    let max_total_wait = policy.max_total_wait;
    let counted = || {
        attempts.fetch_add(1, Ordering::Relaxed);
        op()
    };
    let result = counted
        .retry(policy.backoff())
        .sleep(tokio::time::sleep)
        .when(AttemptError::is_retryable)
        .adjust(|err: &AttemptError, backoff: Option<Duration>| {
            // `None` from the backoff means the attempts are used up.
            let backoff = backoff?;
            let wait = match err.hint {
                RetryHint::After(after) => after,
                _ => backoff,
            };
            if started.elapsed().saturating_add(wait) > max_total_wait {
                return None;
            }
            Some(wait)
        })
        .notify(|err: &AttemptError, wait: Duration| {
            tracing::warn!(
                system = err.error.system.as_str(),
                error = %err.error,
                wait_ms = wait.as_millis() as u64,
                "transient failure, retrying"
            );
        })
        .await;
    result.map_err(|failed| {
        let mut error = failed.error;
        if failed.hint != RetryHint::Never {
            let n = attempts.load(Ordering::Relaxed);
            error.message = format!("{} (gave up after {n} attempts)", error.message);
            if error.status == Some(429) {
                error.kind = SourceErrorKind::Throttled;
            }
        }
        error
    })
}

/// [`with_retries`], plus: when the result is HTTP 401 and a token source is
/// given, the cached token is dropped and the whole operation runs once more
/// with a fresh token.
pub async fn run_authorized<T, F, Fut>(
    tokens: Option<&dyn AccessTokenSource>,
    policy: &RetryPolicy,
    mut op: F,
) -> Result<T, SourceError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, AttemptError>>,
{
    match with_retries(policy, &mut op).await {
        Err(err) if err.status == Some(401) => match tokens {
            Some(tokens) => {
                tracing::info!(
                    system = err.system.as_str(),
                    "401 from the service: fetching a new token and retrying once"
                );
                tokens.invalidate().await;
                with_retries(policy, &mut op).await
            }
            None => Err(err),
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::System;
    use reqwest::header::HeaderValue;
    use std::cell::Cell;

    fn fast() -> RetryPolicy {
        RetryPolicy {
            max_retries: 3,
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
            max_total_wait: Duration::from_secs(5),
        }
    }

    fn err(status: u16) -> SourceError {
        let mut e = SourceError::new(System::Ifs, SourceErrorKind::Http, "boom");
        e.status = Some(status);
        e
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(parse_retry_after(&h, now), Some(Duration::from_secs(7)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        h.insert(RETRY_AFTER, HeaderValue::from_str(&later).unwrap());
        assert_eq!(parse_retry_after(&h, now), Some(Duration::from_secs(30)));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(30));
        h.insert(RETRY_AFTER, HeaderValue::from_str(&past).unwrap());
        assert_eq!(parse_retry_after(&h, now), Some(Duration::ZERO));
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(parse_retry_after(&h, now), None);
    }

    #[tokio::test]
    async fn transient_then_success() {
        let calls = Cell::new(0);
        let out = with_retries(&fast(), || {
            calls.set(calls.get() + 1);
            let n = calls.get();
            async move {
                if n < 3 {
                    Err(AttemptError::transient(err(503), None))
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(out.unwrap(), 3);
    }

    #[tokio::test]
    async fn fatal_is_not_retried() {
        let calls = Cell::new(0);
        let out: Result<(), _> = with_retries(&fast(), || {
            calls.set(calls.get() + 1);
            async { Err(AttemptError::fatal(err(404))) }
        })
        .await;
        assert_eq!(calls.get(), 1);
        assert_eq!(out.unwrap_err().message, "boom");
    }

    #[tokio::test]
    async fn exhausted_429_is_throttled() {
        let calls = Cell::new(0);
        let out: Result<(), _> = with_retries(&fast(), || {
            calls.set(calls.get() + 1);
            async { Err(AttemptError::transient(err(429), None)) }
        })
        .await;
        let e = out.unwrap_err();
        assert_eq!(calls.get(), 4);
        assert_eq!(e.kind, SourceErrorKind::Throttled);
        assert!(e.message.contains("gave up after 4 attempts"), "{e}");
    }

    #[tokio::test]
    async fn retry_after_beyond_budget_gives_up_at_once() {
        let calls = Cell::new(0);
        let started = Instant::now();
        let out: Result<(), _> = with_retries(&fast(), || {
            calls.set(calls.get() + 1);
            async {
                Err(AttemptError::transient(
                    err(429),
                    Some(Duration::from_secs(3600)),
                ))
            }
        })
        .await;
        assert!(out.is_err());
        assert_eq!(calls.get(), 1);
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
