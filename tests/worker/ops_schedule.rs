//! Schedule parsing, next times across DST changes, and the worker loop
//! driven by a manual clock.

use crate::clock_support;
use chrono::{DateTime, Datelike, Utc, Weekday};
use chrono_tz::Tz;
use idrecon::clock::Clock;
use idrecon::schedule::{run_scheduled, Schedule, ScheduleError};

use clock_support::ManualClock;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("bad test time {s}: {e}"))
        .with_timezone(&Utc)
}

fn rfc(t: DateTime<Tz>) -> String {
    t.to_rfc3339()
}

/// Every time of `schedule` in `[from, until)`, in the schedule's zone.
fn times_between(schedule: &Schedule, from: &str, until: &str) -> Vec<String> {
    let until = utc(until);
    let mut out = Vec::new();
    let mut t = utc(from);
    loop {
        t = schedule.next_after(t);
        if t >= until {
            return out;
        }
        out.push(rfc(t.with_timezone(&schedule.timezone())));
    }
}

// ---------------------------------------------------------------- parsing

#[test]
fn unknown_time_zone_is_refused_naming_the_key() {
    let err = Schedule::parse("0 2 * * *", "Europe/Stokholm").unwrap_err();
    assert_eq!(
        err,
        ScheduleError::UnknownTimeZone("Europe/Stokholm".into())
    );
    assert!(
        err.to_string()
            .starts_with("schedule.timezone: unknown time zone \"Europe/Stokholm\""),
        "{err}"
    );
}

#[test]
fn quartz_six_field_expression_is_refused_with_a_clear_message() {
    for quartz in ["0 0 2 * * ?", "0 0 2 ? * MON", "0 0 2 * * ? 2026"] {
        let err = Schedule::parse(quartz, "UTC").unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("schedule.cron: "), "{text}");
        assert!(text.contains("expected 5"), "{text}");
        assert!(text.contains("Quartz"), "{text}");
    }
    let err = Schedule::parse("0 2 * *", "UTC").unwrap_err();
    assert_eq!(
        err,
        ScheduleError::FieldCount {
            expression: "0 2 * *".into(),
            fields: 4
        }
    );
}

#[test]
fn invalid_fields_and_impossible_dates_are_refused() {
    for bad in [
        "60 2 * * *",
        "0 24 * * *",
        "0 2 * * 8",
        "0 2 32 * *",
        "x 2 * * *",
        "0 2 * 13 *",
    ] {
        match Schedule::parse(bad, "UTC") {
            Err(ScheduleError::InvalidCron { expression, reason }) => {
                assert_eq!(expression, bad);
                assert!(!reason.is_empty());
            }
            other => panic!("{bad:?} should be an invalid cron, got {other:?}"),
        }
    }
    let err = Schedule::parse("0 0 30 2 *", "UTC").unwrap_err();
    assert_eq!(
        err.to_string(),
        "schedule.cron: \"0 0 30 2 *\" never matches a real date"
    );
}

#[test]
fn names_ranges_steps_lists_and_aliases_parse() {
    for ok in [
        "0 2 * * *",
        "*/15 1-5 * * mon-fri",
        "0 2 1,15 jan,jul *",
        "30 2 * * SUN",
        "@daily",
        "  0 2 * * *  ",
    ] {
        assert!(Schedule::parse(ok, "Europe/Stockholm").is_ok(), "{ok:?}");
    }
    let s = Schedule::parse("  0 2 * * *  ", " UTC ").unwrap();
    assert_eq!(s.expression(), "0 2 * * *");
    assert_eq!(s.timezone(), chrono_tz::UTC);
}

// ------------------------------------------------------------- weekdays

#[test]
fn sunday_is_0_and_7_and_sun() {
    let from = utc("2026-01-01T00:00:00Z");
    let zero = Schedule::parse("0 2 * * 0", "UTC")
        .unwrap()
        .upcoming(from, 6);
    let seven = Schedule::parse("0 2 * * 7", "UTC")
        .unwrap()
        .upcoming(from, 6);
    let name = Schedule::parse("0 2 * * sun", "UTC")
        .unwrap()
        .upcoming(from, 6);
    assert_eq!(zero, seven);
    assert_eq!(zero, name);
    assert_eq!(zero.len(), 6);
    assert_eq!(rfc(zero[0]), "2026-01-04T02:00:00+00:00");
    assert!(zero.iter().all(|t| t.weekday() == Weekday::Sun));
    // A range ending in 7 includes Sunday: Saturday and Sunday.
    let weekend = Schedule::parse("0 2 * * 6-7", "UTC")
        .unwrap()
        .upcoming(from, 4);
    let days: Vec<Weekday> = weekend.iter().map(|t| t.weekday()).collect();
    assert_eq!(
        days,
        [Weekday::Sat, Weekday::Sun, Weekday::Sat, Weekday::Sun]
    );
}

#[test]
fn one_to_five_is_monday_to_friday() {
    // 2026-01-02 is a Friday.
    let from = utc("2026-01-02T12:00:00Z");
    let s = Schedule::parse("0 2 * * 1-5", "UTC").unwrap();
    let got: Vec<String> = s.upcoming(from, 6).into_iter().map(rfc).collect();
    assert_eq!(
        got,
        [
            "2026-01-05T02:00:00+00:00", // Mon
            "2026-01-06T02:00:00+00:00",
            "2026-01-07T02:00:00+00:00",
            "2026-01-08T02:00:00+00:00",
            "2026-01-09T02:00:00+00:00", // Fri
            "2026-01-12T02:00:00+00:00", // Mon again
        ]
    );
    let named = Schedule::parse("0 2 * * mon-fri", "UTC").unwrap();
    assert_eq!(named.upcoming(from, 6), s.upcoming(from, 6));
}

#[test]
fn upcoming_is_in_the_zone_and_strictly_after_from() {
    let s = Schedule::parse("0 2 * * *", "Europe/Stockholm").unwrap();
    // Exactly a scheduled instant: the next one is the following day.
    let got: Vec<String> = s
        .upcoming(utc("2026-06-01T00:00:00Z"), 2)
        .into_iter()
        .map(rfc)
        .collect();
    assert_eq!(
        got,
        ["2026-06-02T02:00:00+02:00", "2026-06-03T02:00:00+02:00"]
    );
    assert_eq!(
        s.next_after(utc("2026-12-01T00:59:59Z")),
        utc("2026-12-01T01:00:00Z")
    );
}

// -------------------------------------------------------------------- DST

#[test]
fn spring_forward_nightly_run_happens_exactly_once() {
    // 2026-03-29 in Stockholm: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist.
    let s = Schedule::parse("30 2 * * *", "Europe/Stockholm").unwrap();
    let got = times_between(&s, "2026-03-27T12:00:00Z", "2026-03-31T12:00:00Z");
    assert_eq!(
        got,
        [
            "2026-03-28T02:30:00+01:00",
            "2026-03-29T03:00:00+02:00", // moved to the first instant after the gap
            "2026-03-30T02:30:00+02:00",
            "2026-03-31T02:30:00+02:00",
        ]
    );
}

#[test]
fn fall_back_nightly_run_happens_exactly_once() {
    // 2026-10-25 in Stockholm: 03:00 CEST goes back to 02:00 CET; 02:30 occurs twice.
    let s = Schedule::parse("30 2 * * *", "Europe/Stockholm").unwrap();
    let got = times_between(&s, "2026-10-23T12:00:00Z", "2026-10-27T12:00:00Z");
    assert_eq!(
        got,
        [
            "2026-10-24T02:30:00+02:00",
            "2026-10-25T02:30:00+02:00", // the first 02:30 only
            "2026-10-26T02:30:00+01:00",
            "2026-10-27T02:30:00+01:00",
        ]
    );
    // Asked from inside the repeated hour (02:10 CET, after the first 02:30
    // ran), the next run is tomorrow, not the second 02:30 and not a past time.
    assert_eq!(
        s.next_after(utc("2026-10-25T01:10:00Z")),
        utc("2026-10-26T01:30:00Z")
    );
    assert_eq!(
        s.next_after(utc("2026-10-25T00:30:00Z")),
        utc("2026-10-26T01:30:00Z")
    );
}

#[test]
fn croner_alone_returns_a_past_instant_inside_the_repeated_hour() {
    // Evidence for the guard in Schedule::next_after: croner resolves an
    // ambiguous wall-clock time to its earlier instant even when that is
    // before the search start. If croner changes this, this test tells.
    let cron = croner::Cron::new("30 2 * * *").parse().unwrap();
    let tz: Tz = "Europe/Stockholm".parse().unwrap();
    let start = utc("2026-10-25T01:10:00Z").with_timezone(&tz); // 02:10 CET
    let next = cron.find_next_occurrence(&start, false).unwrap();
    assert_eq!(next.with_timezone(&Utc), utc("2026-10-25T00:30:00Z"));
    assert!(next < start);
    // And in the spring gap croner moves 02:30 to 03:00 CEST.
    let start = utc("2026-03-28T23:00:00Z").with_timezone(&tz);
    let next = cron.find_next_occurrence(&start, false).unwrap();
    assert_eq!(rfc(next), "2026-03-29T03:00:00+02:00");
}

#[test]
fn sub_daily_schedules_across_dst_run_each_wall_clock_time_once() {
    let s = Schedule::parse("0 * * * *", "Europe/Stockholm").unwrap();
    // Fall back: 02:00 local happens twice; it runs at the first one only.
    let got = times_between(&s, "2026-10-24T22:30:00Z", "2026-10-25T03:30:00Z");
    assert_eq!(
        got,
        [
            "2026-10-25T01:00:00+02:00",
            "2026-10-25T02:00:00+02:00",
            "2026-10-25T03:00:00+01:00",
            "2026-10-25T04:00:00+01:00",
        ]
    );
    // Spring forward: 02:00 does not exist and is folded into 03:00.
    let got = times_between(&s, "2026-03-28T23:30:00Z", "2026-03-29T02:30:00Z");
    assert_eq!(
        got,
        [
            "2026-03-29T01:00:00+01:00",
            "2026-03-29T03:00:00+02:00",
            "2026-03-29T04:00:00+02:00",
        ]
    );
}

// ------------------------------------------------------ the worker loop

/// A job whose start times are recorded and which, when `hold` is set,
/// waits for a permit from `release` before finishing.
#[derive(Clone)]
struct TestJob {
    clock: Arc<ManualClock>,
    started: mpsc::UnboundedSender<DateTime<Utc>>,
    finished: Arc<Mutex<Vec<DateTime<Utc>>>>,
    release: Arc<Semaphore>,
    hold: bool,
}

impl TestJob {
    fn new(
        clock: &Arc<ManualClock>,
        hold: bool,
    ) -> (TestJob, mpsc::UnboundedReceiver<DateTime<Utc>>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            TestJob {
                clock: clock.clone(),
                started: tx,
                finished: Arc::new(Mutex::new(Vec::new())),
                release: Arc::new(Semaphore::new(0)),
                hold,
            },
            rx,
        )
    }

    async fn run(self) {
        let started = self.clock.now();
        let _ = self.started.send(started);
        if self.hold {
            if let Ok(permit) = self.release.acquire().await {
                permit.forget();
            }
        }
        self.finished.lock().unwrap().push(started);
    }
}

/// Waits (at most 5 real seconds) until `n` runs have finished.
async fn wait_finished(job: &TestJob, n: usize) {
    for _ in 0..1000 {
        if job.finished.lock().unwrap().len() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("{n} runs did not finish");
}

fn spawn_loop(
    schedule: Schedule,
    clock: Arc<ManualClock>,
    token: CancellationToken,
    job: TestJob,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        run_scheduled(&schedule, token, clock.as_ref(), || job.clone().run()).await;
    })
}

async fn next_start(rx: &mut mpsc::UnboundedReceiver<DateTime<Utc>>) -> DateTime<Utc> {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("the job did not start")
        .expect("job channel closed")
}

/// Captures tracing output of the current thread (tests use the
/// current-thread runtime, so the spawned loop logs on this thread).
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogBuffer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
    fn install(&self) -> tracing::subscriber::DefaultGuard {
        let writer = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        tracing::subscriber::set_default(subscriber)
    }
}

#[tokio::test]
async fn jobs_fire_at_the_scheduled_times_including_across_dst() {
    let schedule = Schedule::parse("0 2 * * *", "Europe/Stockholm").unwrap();
    let clock = ManualClock::new(utc("2026-03-27T12:00:00Z"));
    let (job, mut started) = TestJob::new(&clock, false);
    let token = CancellationToken::new();
    let handle = spawn_loop(schedule, clock.clone(), token.clone(), job.clone());

    let expected = [
        utc("2026-03-28T01:00:00Z"), // 02:00 CET
        utc("2026-03-29T01:00:00Z"), // 02:00 does not exist: 03:00 CEST
        utc("2026-03-30T00:00:00Z"), // 02:00 CEST
    ];
    for due in expected {
        clock.wait_for_sleeper(due).await;
        // One second early: nothing runs.
        clock.set(due - chrono::Duration::seconds(1));
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(started.try_recv().is_err(), "ran before {due}");
        clock.set(due);
        assert_eq!(next_start(&mut started).await, due);
    }
    wait_finished(&job, 3).await;
    clock.wait_for_sleeper(utc("2026-03-31T00:00:00Z")).await;
    assert_eq!(job.finished.lock().unwrap().as_slice(), expected);

    token.cancel();
    tokio::time::timeout(Duration::from_secs(5), handle)
        .await
        .expect("loop did not stop while idle")
        .unwrap();
}

#[tokio::test]
async fn an_overrunning_job_causes_skips_never_an_overlap() {
    let logs = LogBuffer::default();
    let _log_guard = logs.install();
    let schedule = Schedule::parse("*/10 * * * *", "UTC").unwrap();
    let clock = ManualClock::new(utc("2026-05-04T00:00:30Z"));
    let (job, mut started) = TestJob::new(&clock, true);
    let token = CancellationToken::new();
    let handle = spawn_loop(schedule, clock.clone(), token.clone(), job.clone());

    clock.wait_for_sleeper(utc("2026-05-04T00:10:00Z")).await;
    clock.set(utc("2026-05-04T00:10:00Z"));
    assert_eq!(next_start(&mut started).await, utc("2026-05-04T00:10:00Z"));

    // 00:20 comes while the 00:10 run is still going: skipped and logged.
    clock.wait_for_sleeper(utc("2026-05-04T00:20:00Z")).await;
    clock.set(utc("2026-05-04T00:20:00Z"));
    clock.wait_for_sleeper(utc("2026-05-04T00:30:00Z")).await;
    assert!(
        started.try_recv().is_err(),
        "a second run overlapped the first"
    );
    let text = logs.text();
    assert!(
        text.contains("scheduled time skipped") && text.contains("skipped=2026-05-04 00:20:00 UTC"),
        "{text}"
    );

    // Jump past 00:30 and 00:40 and finish the run at 00:45: both skipped,
    // the next run is 00:50.
    clock.set(utc("2026-05-04T00:45:00Z"));
    job.release.add_permits(1);
    clock.wait_for_sleeper(utc("2026-05-04T00:50:00Z")).await;
    assert!(started.try_recv().is_err());
    clock.set(utc("2026-05-04T00:50:00Z"));
    assert_eq!(next_start(&mut started).await, utc("2026-05-04T00:50:00Z"));
    job.release.add_permits(1);
    wait_finished(&job, 2).await;
    clock.wait_for_sleeper(utc("2026-05-04T01:00:00Z")).await;

    let text = logs.text();
    for skipped in ["00:20:00", "00:30:00", "00:40:00"] {
        let line = format!("skipped=2026-05-04 {skipped} UTC");
        assert_eq!(text.matches(&line).count(), 1, "{line} in:\n{text}");
    }
    assert_eq!(text.matches("scheduled time skipped").count(), 3, "{text}");
    assert_eq!(
        job.finished.lock().unwrap().as_slice(),
        [utc("2026-05-04T00:10:00Z"), utc("2026-05-04T00:50:00Z")]
    );

    token.cancel();
    tokio::time::timeout(Duration::from_secs(5), handle)
        .await
        .expect("loop did not stop")
        .unwrap();
}

#[tokio::test]
async fn shutdown_during_a_run_waits_for_it_and_starts_no_other() {
    let schedule = Schedule::parse("0 * * * *", "UTC").unwrap();
    let clock = ManualClock::new(utc("2026-05-04T00:30:00Z"));
    let (job, mut started) = TestJob::new(&clock, true);
    let token = CancellationToken::new();
    let handle = spawn_loop(schedule, clock.clone(), token.clone(), job.clone());

    clock.wait_for_sleeper(utc("2026-05-04T01:00:00Z")).await;
    clock.set(utc("2026-05-04T01:00:00Z"));
    assert_eq!(next_start(&mut started).await, utc("2026-05-04T01:00:00Z"));

    token.cancel();
    // Time passes beyond the next scheduled time while the run finishes.
    clock.set(utc("2026-05-04T02:30:00Z"));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !handle.is_finished(),
        "returned before the running job finished"
    );
    assert!(job.finished.lock().unwrap().is_empty());

    job.release.add_permits(1);
    tokio::time::timeout(Duration::from_secs(5), handle)
        .await
        .expect("loop did not stop after the job finished")
        .unwrap();
    assert_eq!(
        job.finished.lock().unwrap().as_slice(),
        [utc("2026-05-04T01:00:00Z")]
    );
    assert!(
        started.try_recv().is_err(),
        "a new run started after shutdown"
    );
}

#[tokio::test]
async fn shutdown_while_idle_returns_without_running() {
    let schedule = Schedule::parse("0 2 * * *", "UTC").unwrap();
    let clock = ManualClock::new(utc("2026-05-04T00:00:00Z"));
    let (job, mut started) = TestJob::new(&clock, false);
    let token = CancellationToken::new();
    let handle = spawn_loop(schedule, clock.clone(), token.clone(), job);
    clock.wait_for_sleeper(utc("2026-05-04T02:00:00Z")).await;
    token.cancel();
    tokio::time::timeout(Duration::from_secs(5), handle)
        .await
        .expect("loop did not stop")
        .unwrap();
    assert!(started.try_recv().is_err());
}

#[tokio::test]
async fn system_clock_sleep_until_waits_for_the_wall_clock() {
    use idrecon::clock::SystemClock;
    let clock = SystemClock;
    let deadline = clock.now() + chrono::Duration::milliseconds(150);
    clock.sleep_until(deadline).await;
    assert!(clock.now() >= deadline);
    // A past deadline returns at once.
    let past = clock.now() - chrono::Duration::seconds(10);
    tokio::time::timeout(Duration::from_millis(50), clock.sleep_until(past))
        .await
        .expect("past deadline should return at once");
}
