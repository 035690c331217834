//! One reconcile job (not the `run` command, which is the scheduled worker),
//! start to finish: take the lock, fetch the three
//! sources concurrently, refuse to conclude anything from partial data,
//! correlate/classify/plan, apply (only when asked), store, and hand back the
//! report. The CLI, the scheduled worker, the demo and the tests all call
//! [`run_once`].

use crate::apply;
use crate::clock::Clock;
use crate::config::Config;
use crate::model::{AadUser, ActionStatus, FlowUser, IfsUser, Snapshots};
use crate::progress::{Fetched, RunProgress, Stage};
use crate::reconcile::{
    self, AzureForms, FlowForms, FlowFormsByPage, IfsForms, IfsLinks, MatchOptions, PlanOptions,
    Prepared,
};
use crate::report::{Mode, Report, RunStatus, SourceSummary, Summary, Trigger};
use crate::sources::{AzureFetch, FlowWriter, SourceError, SourceErrorKind, Sources, System};
use crate::store::{
    hold_with_heartbeat, AzureSnapshot, LockHolder, Store, StoreError, HEARTBEAT_INTERVAL,
};
use chrono::{DateTime, Utc};
use std::time::Instant;
use tracing::Instrument;

/// What the caller asks of one run.
#[derive(Clone, Debug)]
pub struct RunRequest {
    pub trigger: Trigger,
    /// Apply the plan (`--apply`, or a scheduled run with `fix.enabled`).
    pub apply: bool,
    /// Ignore the stored delta link and list Azure AD in full.
    pub full: bool,
    /// `--max-changes N` for this run only.
    pub max_changes_override: Option<u32>,
    /// `--user UPN_OR_ID`: only this person (fetched by key, not listed).
    pub person: Option<String>,
    /// `--allow-drop`: go on although a source lists more than
    /// `safety.max_source_drop_percent` fewer users than the last completed run.
    pub allow_drop: bool,
}

impl RunRequest {
    pub fn manual() -> Self {
        RunRequest {
            trigger: Trigger::Manual,
            apply: false,
            full: false,
            max_changes_override: None,
            person: None,
            allow_drop: false,
        }
    }
}

/// The parts a run works with.
pub struct RunContext<'a> {
    pub config: &'a Config,
    pub store: &'a dyn Store,
    pub sources: &'a dyn Sources,
    /// Needed only to apply; `None` for a CSV Flow source.
    pub flow_writer: Option<&'a dyn FlowWriter>,
    /// `users` or `group:<id>`: which stored Azure snapshot a delta applies to.
    pub azure_scope: String,
    /// The time of the lock's lease, the journal and the run.
    pub clock: &'a dyn Clock,
    /// Checked between actions: a shutdown request stops taking new work.
    pub should_stop: &'a (dyn Fn() -> bool + Send + Sync),
    /// Told about sources read, reconciling and applying (terminal
    /// progress of interactive runs); `None` reports nothing.
    pub progress: Option<&'a dyn RunProgress>,
}

impl RunContext<'_> {
    fn report_progress(&self, f: impl FnOnce(&dyn RunProgress)) {
        if let Some(p) = self.progress {
            f(p);
        }
    }
}

/// Why a run could not even start or be recorded.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Another run holds the store lock (exit 4).
    #[error(transparent)]
    LockHeld(StoreError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Other(String),
}

/// Seconds each source took to deliver, for metrics.
#[derive(Clone, Debug, Default)]
pub struct FetchTimings {
    pub seconds: Vec<(System, f64)>,
}

/// The finished run: the report as stored, plus timings for metrics.
#[derive(Clone, Debug)]
pub struct RunOutcome {
    pub report: Report,
    pub timings: FetchTimings,
    /// For one-person runs: what was looked up where, in words.
    pub steps: Vec<String>,
}

const LOCK_LEASE_MINUTES: i64 = 60;

/// The most Flow users room is made for up front (from the last run's count).
const MAX_EXPECTED_FLOW_USERS: usize = 2_000_000;

/// Why an apply run without a Flow writer stops.
const CSV_IS_READ_ONLY: &str = "fixes need the Flow endpoint (flow.source = \"http\"); flow.source = \"csv\" reads an export and cannot change Flow: run without --apply (and with fix.enabled = false), or configure the Flow endpoint";

/// Runs one reconcile. Returns the report for every run that started,
/// whether it completed, aborted for safety or failed; `Err` only when the
/// run could not be started or recorded at all.
pub async fn run_once(ctx: &RunContext<'_>, req: &RunRequest) -> Result<RunOutcome, RunError> {
    let holder = LockHolder::current(match req.trigger {
        Trigger::Manual => "reconcile",
        Trigger::Schedule => "scheduled run",
    });
    let lease = chrono::Duration::minutes(LOCK_LEASE_MINUTES);
    match ctx
        .store
        .acquire_lock(&holder, ctx.clock.now(), lease)
        .await
    {
        Ok(()) => {}
        Err(e @ StoreError::LockHeld { .. }) => return Err(RunError::LockHeld(e)),
        Err(e) => return Err(e.into()),
    }
    // The heartbeat tells other processes this run is alive; once it stops
    // (the process was killed) the lock can be taken over well before the
    // lease ends, whatever PID the holder had.
    let result = hold_with_heartbeat(
        ctx.store,
        &holder,
        ctx.clock,
        HEARTBEAT_INTERVAL,
        run_locked(ctx, req, &holder, lease),
    )
    .await;
    if let Err(e) = ctx.store.release_lock(&holder).await {
        tracing::warn!(error = %e, "could not release the run lock; it expires with its lease");
    }
    result
}

async fn run_locked(
    ctx: &RunContext<'_>,
    req: &RunRequest,
    holder: &LockHolder,
    lease: chrono::Duration,
) -> Result<RunOutcome, RunError> {
    let mode = if req.apply { Mode::Apply } else { Mode::Report };
    let started_at = ctx.clock.now();
    let run_id = ctx
        .store
        .begin_run(holder, req.trigger, mode, started_at)
        .await?;
    let span = tracing::info_span!("run", run_id, trigger = ?req.trigger, mode = ?mode);
    run_started(ctx, req, holder, lease, run_id, mode, started_at)
        .instrument(span)
        .await
}

/// The run after it got its id: everything inside the run's tracing span.
async fn run_started(
    ctx: &RunContext<'_>,
    req: &RunRequest,
    holder: &LockHolder,
    lease: chrono::Duration,
    run_id: i64,
    mode: Mode,
    started_at: DateTime<Utc>,
) -> Result<RunOutcome, RunError> {
    let mut report = Report::started(run_id, req.trigger, mode, trunc(started_at));
    let mut timings = FetchTimings::default();
    let mut steps = Vec::new();

    // Holding the lock, any other run still `running` ended without
    // finishing (killed, crashed): say so instead of leaving it running.
    let interrupted = ctx
        .store
        .close_interrupted_runs(
            holder,
            run_id,
            &format!(
                "interrupted: the process ended before the run finished (noticed by run #{run_id})"
            ),
            started_at,
        )
        .await?;
    if !interrupted.is_empty() {
        tracing::warn!(runs = ?interrupted, "earlier runs ended without finishing; marked failed");
    }

    match reconcile_and_apply(
        ctx,
        req,
        &mut report,
        &mut timings,
        &mut steps,
        holder,
        lease,
    )
    .await
    {
        Ok(()) => {}
        Err(Stop::Aborted(reason)) => {
            tracing::warn!(run_id, %reason, "run aborted for safety");
            report.status = RunStatus::Aborted;
            report.abort_reason = Some(reason);
        }
        Err(Stop::Failed(reason)) => {
            tracing::error!(run_id, %reason, "run failed");
            report.status = RunStatus::Failed;
            report.abort_reason = Some(reason);
        }
    }
    if !interrupted.is_empty() {
        let runs = interrupted
            .iter()
            .map(|r| format!("#{r}"))
            .collect::<Vec<_>>()
            .join(", ");
        report.advice.push(format!(
            "Run(s) {runs} ended without finishing (the process was killed or crashed) and are now marked failed; actions they had journalled are settled by the next applying run."
        ));
    }
    report.finished_at = Some(trunc(ctx.clock.now()));
    match ctx.store.finish_run(holder, &report).await {
        Ok(()) => {}
        Err(e @ StoreError::LockLost { .. }) => {
            // Another run holds the lock now, so this run stores nothing
            // (that run marks this one interrupted); the caller still gets
            // the report, saying so.
            tracing::error!(run_id, error = %e, "the run lock was lost; the report is not stored");
            let note = format!("this report was not stored: {e}");
            report.abort_reason = Some(match report.abort_reason.take() {
                Some(reason) => format!("{reason}; {note}"),
                None => note,
            });
            if report.status == RunStatus::Completed {
                report.status = RunStatus::Aborted;
            }
        }
        Err(e) => return Err(e.into()),
    }
    crate::memory::log_phase("run stored");
    Ok(RunOutcome {
        report,
        timings,
        steps,
    })
}

/// How a run stopped early.
enum Stop {
    /// Safety stop: incomplete source, threshold exceeded (exit 4).
    Aborted(String),
    /// Anything else (exit 1).
    Failed(String),
}

impl From<StoreError> for Stop {
    fn from(e: StoreError) -> Self {
        Stop::Failed(format!("store: {e}"))
    }
}

async fn reconcile_and_apply(
    ctx: &RunContext<'_>,
    req: &RunRequest,
    report: &mut Report,
    timings: &mut FetchTimings,
    steps: &mut Vec<String>,
    holder: &LockHolder,
    lease: chrono::Duration,
) -> Result<(), Stop> {
    let cfg = ctx.config;

    // Refused before anything is read: otherwise the run would fetch and
    // plan, and then stop at the threshold or at the first write.
    if req.apply && ctx.flow_writer.is_none() {
        return Err(Stop::Failed(CSV_IS_READ_ONLY.to_string()));
    }

    // Actions left pending by a run that was killed are settled first, so a
    // new plan never races an old half-sent one. Report mode never writes:
    // it only says that some are waiting.
    let mut resumed_note = None;
    if req.apply {
        if let Some(writer) = ctx.flow_writer {
            let resumed = apply::resume_pending(
                ctx.store,
                holder,
                writer,
                ctx.clock,
                cfg.flow.case_insensitive_ids,
            )
            .await
            .map_err(|e| Stop::Aborted(format!("resuming the journal of an earlier run: {e}")))?;
            resumed_note = apply::describe_resumed(&resumed);
        }
    } else {
        resumed_note = pending_note(&ctx.store.pending_journal().await?);
    }

    let match_opts = MatchOptions {
        case_sensitive: cfg.matching.case_sensitive,
        include_guests: cfg.azure.include_guests,
        ifs_rules: cfg.matching.ifs_rules.clone(),
        flow_rules: cfg.matching.flow_rules.clone(),
    };
    // The previous run's findings are read while the sources are fetched.
    let previous = ctx.store.previous_open_findings(report.run_id);
    let (fetched, previous) = match &req.person {
        Some(person) => {
            ctx.store
                .set_run_person(holder, report.run_id, person)
                .await?;
            let (fetched, previous) =
                tokio::join!(fetch_person(ctx, person, report, steps), previous);
            let (snapshots, id) = fetched?;
            ((snapshots, Some(id), None, Prepared::default()), previous?)
        }
        None => {
            // The last completed run's counts size Flow's indexes and check
            // the listings (no run completes meanwhile: this one holds the lock).
            let previous_counts = ctx.store.last_completed_source_counts().await?;
            let expected_flow = previous_counts
                .as_ref()
                .map_or(0, |counts| usize::try_from(counts.flow).unwrap_or(0))
                .min(MAX_EXPECTED_FLOW_USERS);
            let (fetched, previous) = tokio::join!(
                fetch_all(ctx, req, &match_opts, expected_flow, report, timings),
                previous
            );
            let (snapshots, azure_update, prepared) = fetched?;
            if let Some(prev) = previous_counts {
                refuse_sudden_empty("Azure AD", snapshots.azure.len(), prev.azure)?;
                refuse_sudden_empty("IFS", snapshots.ifs.len(), prev.ifs)?;
                refuse_sudden_empty("Flow", snapshots.flow.len(), prev.flow)?;
                if req.allow_drop {
                    tracing::warn!("--allow-drop: source listings are not compared with the last completed run");
                } else {
                    let listed = [
                        ("Azure AD", snapshots.azure.len(), prev.azure),
                        ("IFS", snapshots.ifs.len(), prev.ifs),
                        ("Flow", snapshots.flow.len(), prev.flow),
                    ];
                    refuse_source_drop(&listed, cfg.safety.max_source_drop_percent)?;
                }
            }
            refuse_empty_azure(&snapshots)?;
            ((snapshots, None, Some(azure_update), prepared), previous?)
        }
    };
    let (snapshots, person_id, azure_update, prepared) = fetched;
    crate::memory::log_phase("sources fetched and checked");
    let snapshots = std::sync::Arc::new(snapshots);

    // `--max-changes N` replaces both limits for this run. In report mode
    // nothing is sent, so the limits do not stop the run; the report says
    // whether applying would stop at them.
    let limits = PlanOptions {
        deactivate_orphans: cfg.fix.deactivate_orphans,
        flow_case_insensitive: cfg.flow.case_insensitive_ids,
        max_changes: req.max_changes_override.unwrap_or(cfg.fix.max_changes),
        max_change_percent: if req.max_changes_override.is_some() {
            100.0
        } else {
            cfg.fix.max_change_percent
        },
    };
    let plan_opts = if req.apply {
        limits.clone()
    } else {
        PlanOptions {
            max_changes: u32::MAX,
            max_change_percent: 100.0,
            ..limits.clone()
        }
    };

    ctx.report_progress(|p| p.stage(Stage::Reconciling));
    let reconciled = {
        let snapshots = snapshots.clone();
        tokio::task::spawn_blocking(move || {
            let (mut outcome, flow_ids, mut keys) =
                reconcile::reconcile_for_plan(&snapshots, &match_opts, prepared);
            crate::memory::log_phase("correlated and classified");
            let mut previous_keys = previous.map(|(_, keys)| keys).unwrap_or_default();
            if let Some(id) = &person_id {
                reconcile::focus_on_person(&mut outcome, &mut keys, &mut previous_keys, id);
            }
            let (plan, resolved) = reconcile::plan_and_mark(
                &snapshots.flow,
                &mut outcome.findings,
                &keys,
                &previous_keys,
                &plan_opts,
                Some(flow_ids),
            );
            // The keys (~13 MiB each at 130k findings) are not needed for
            // storing the run.
            drop((keys, previous_keys));
            crate::memory::log_phase("reconciled (correlate, classify, plan)");
            (outcome, plan, resolved, snapshots.flow.len())
        })
    };
    // Only a listing that passed the checks above becomes the stored
    // snapshot (an empty one stored would make every later delta run start
    // from nobody). It is written while the core works, off the critical path.
    let stored = async {
        match azure_update {
            Some(update) => {
                store_azure_update(ctx, holder, update, &snapshots.azure).await?;
                crate::memory::log_phase("Azure snapshot stored");
                Ok::<(), Stop>(())
            }
            None => Ok(()),
        }
    };
    let (reconciled, stored) = tokio::join!(reconciled, stored);
    // Freeing millions of users' strings takes a while: not on the way to
    // storing the run and handing back the report.
    tokio::task::spawn_blocking(move || drop(snapshots));
    stored?;
    let (outcome, plan, resolved, flow_users) =
        reconciled.map_err(|e| Stop::Failed(format!("reconciliation task: {e}")))?;

    // The actions `apply::execute` would send (planned ones, in order).
    let executable = plan.executable().count() as u64;
    // Notes made while fetching (a delta fallback) follow the findings' advice.
    let fetch_notes = std::mem::take(&mut report.advice);
    report.advice = reconcile::advice(&outcome.findings);
    report.advice.extend(fetch_notes);
    report.advice.extend(resumed_note);
    if !req.apply {
        let would_send = executable;
        if let Some(check) =
            reconcile::ThresholdExceeded::check(would_send, flow_users as u64, &limits)
        {
            report.advice.push(format!(
                "Applying this plan would stop at the safety limit: {would_send} changes for {flow_users} Flow users ({:.1}%) is over fix.max_changes = {} or fix.max_change_percent = {}. Fix the root cause above first, or allow it for one run with `--apply --max-changes {would_send}`.",
                check.percent(),
                limits.max_changes,
                limits.max_change_percent
            ));
        }
    }
    report.summary = summarise(&outcome, resolved);
    report.findings = outcome.findings;
    report.actions = plan.actions;

    if let Some(exceeded) = plan.threshold {
        return Err(Stop::Aborted(exceeded.to_string()));
    }
    if !req.apply {
        return Ok(());
    }
    let Some(writer) = ctx.flow_writer else {
        return Err(Stop::Failed(CSV_IS_READ_ONLY.to_string()));
    };
    ctx.store
        .renew_lock(holder, ctx.clock.now(), lease)
        .await
        .map_err(Stop::from)?;
    // `execute` asks `should_stop` once before each action it sends, so
    // counting the "go on" answers numbers the action being sent.
    let total = executable;
    let sending = std::sync::atomic::AtomicU64::new(0);
    let should_stop = || {
        let stop = (ctx.should_stop)();
        if !stop {
            let current = sending.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            ctx.report_progress(|p| p.stage(Stage::Applying { current, total }));
        }
        stop
    };
    let options = apply::ApplyOptions {
        flow_case_insensitive: cfg.flow.case_insensitive_ids,
        lock: apply::HeldLock { holder, lease },
    };
    apply::execute(ctx.store, writer, report, ctx.clock, &should_stop, &options)
        .await
        .map_err(|e| match e {
            apply::ApplyError::LockLost(_) => Stop::Aborted(format!("applying fixes: {e}")),
            other => Stop::Failed(format!("applying fixes: {other}")),
        })?;
    Ok(())
}

/// What report mode says about journalled actions an interrupted applying
/// run left pending (it does not touch them: settling them may write).
fn pending_note(pending: &[crate::store::JournalEntry]) -> Option<String> {
    if pending.is_empty() {
        return None;
    }
    let mut runs: Vec<i64> = pending.iter().map(|e| e.run_id).collect();
    runs.sort_unstable();
    runs.dedup();
    let runs = runs
        .iter()
        .map(|r| format!("#{r}"))
        .collect::<Vec<_>>()
        .join(", ");
    Some(format!(
        "{} action(s) journalled by earlier applying run(s) {runs} are still pending (the run was interrupted or Flow's answer was lost): Flow may or may not show them done (this report reflects Flow as it is now). The next `idrecon reconcile --apply` checks each against Flow and settles it without sending anything twice.",
        pending.len()
    ))
}

/// Azure AD is who the people are: with no Azure users at all, every IFS and
/// Flow user would look like a leaver. That is a broken listing (or a wrong
/// `azure.group_id`), never a real tenant, even on a first run.
fn refuse_empty_azure(snapshots: &Snapshots) -> Result<(), Stop> {
    if snapshots.azure.is_empty() && !(snapshots.ifs.is_empty() && snapshots.flow.is_empty()) {
        return Err(Stop::Aborted(format!(
            "Azure AD returned 0 users while IFS has {} and Flow {}; refusing to call everyone a leaver \
             (check azure.group_id and the app's Graph permissions)",
            snapshots.ifs.len(),
            snapshots.flow.len()
        )));
    }
    Ok(())
}

fn refuse_sudden_empty(system: &str, now: usize, before: i64) -> Result<(), Stop> {
    if now == 0 && before > 0 {
        return Err(Stop::Aborted(format!(
            "{system} returned 0 users but the last completed run saw {before}; refusing to conclude anything from what looks like a broken listing"
        )));
    }
    Ok(())
}

/// Refuses a run in which a source lists more than `max_percent` fewer
/// users than the last completed run saw (`listed`: the source, its users
/// now, its users then); the reason names each source, by how much it
/// shrank, the setting, and how to allow it for one run.
fn refuse_source_drop(listed: &[(&str, usize, i64)], max_percent: f64) -> Result<(), Stop> {
    let drops: Vec<String> = listed
        .iter()
        .filter_map(|&(system, now, before)| {
            let before = u64::try_from(before).unwrap_or(0);
            idrecon_core::safety::source_drop(before, now as u64, max_percent).map(|drop| {
                format!(
                    "{system} listed {} users but the last completed run saw {} ({:.1}% fewer)",
                    drop.now,
                    drop.before,
                    drop.percent()
                )
            })
        })
        .collect();
    if drops.is_empty() {
        return Ok(());
    }
    Err(Stop::Aborted(format!(
        "{}: more than safety.max_source_drop_percent = {max_percent}% fewer; refusing to conclude anything from what looks like a broken listing. If the drop is real, allow it for one run with `idrecon reconcile --allow-drop`",
        drops.join("; ")
    )))
}

/// What a run's Azure fetch changes in the stored snapshot, written only
/// once the fetched data passed the safety checks.
enum AzureUpdate {
    /// A complete listing and no stored snapshot: the run's Azure users
    /// become the snapshot.
    Replace { delta_link: Option<String> },
    /// Only these rows change (a delta, or the difference between the
    /// stored snapshot and a complete listing), and the link is replaced.
    Changes {
        upserts: Vec<AadUser>,
        removed: Vec<String>,
        delta_link: Option<String>,
    },
}

async fn store_azure_update(
    ctx: &RunContext<'_>,
    holder: &LockHolder,
    update: AzureUpdate,
    users: &[AadUser],
) -> Result<(), Stop> {
    match update {
        AzureUpdate::Replace { delta_link } => {
            ctx.store
                .replace_azure_snapshot(holder, &ctx.azure_scope, users, delta_link.as_deref())
                .await?
        }
        AzureUpdate::Changes {
            upserts,
            removed,
            delta_link,
        } => {
            ctx.store
                .update_azure_snapshot(
                    holder,
                    &ctx.azure_scope,
                    &upserts,
                    &removed,
                    delta_link.as_deref(),
                )
                .await?
        }
    }
    Ok(())
}

/// `expected_flow`: about how many Flow users will come (the last run's
/// count, capped), to size Flow's indexes; they grow beyond it.
async fn fetch_all(
    ctx: &RunContext<'_>,
    req: &RunRequest,
    opts: &MatchOptions,
    expected_flow: usize,
    report: &mut Report,
    timings: &mut FetchTimings,
) -> Result<(Snapshots, AzureUpdate, Prepared), Stop> {
    // The delta link is all the fetch needs to start; the stored users
    // (for a delta, or to write only what a full listing changed) load
    // while the sources are fetched.
    let stored_link = ctx.store.load_azure_delta_link(&ctx.azure_scope).await?;
    let delta_link = if req.full {
        None
    } else {
        stored_link.clone().flatten()
    };
    let stored = async {
        match stored_link {
            Some(_) => ctx.store.load_azure_snapshot(&ctx.azure_scope).await,
            None => Ok(None),
        }
    }
    .instrument(tracing::info_span!("stored snapshot"));

    let timed = |system: System, start: Instant| (system, start.elapsed().as_secs_f64());
    let azure = async {
        let start = Instant::now();
        ctx.report_progress(|p| p.source_started(System::Azure));
        // An expired (or foreign) stored link is replaced by one full
        // listing inside the source, which says why in `fallback`.
        let result = ctx.sources.fetch_azure(delta_link.as_deref()).await;
        let fetched = match &result {
            Ok(AzureFetch::Full { users, .. }) => Fetched::Users(users.len() as u64),
            Ok(AzureFetch::Delta { changes, .. }) => Fetched::Changes(changes.len() as u64),
            Err(_) => Fetched::Failed,
        };
        ctx.report_progress(|p| p.source_finished(System::Azure, fetched));
        (result, timed(System::Azure, start))
    }
    .instrument(tracing::info_span!("source", system = "azure"));
    // The run's Azure users need the stored ones too (a delta applies to
    // them); as soon as both are there, their forms are prepared.
    let azure = async {
        let ((fetched, timing), stored) = tokio::join!(azure, stored);
        let listing = match (fetched, stored) {
            (_, Err(e)) => Err(AzureStop::Store(e)),
            (Err(e), Ok(_)) => Err(AzureStop::Source(e)),
            (Ok(fetched), Ok(stored)) => match azure_listing(fetched, stored) {
                Ok(mut listing) => {
                    let (users, forms) =
                        prepared(std::mem::take(&mut listing.users), opts, AzureForms::new).await;
                    listing.users = users;
                    Ok((listing, forms))
                }
                Err(stop) => Err(AzureStop::Listing(stop)),
            },
        };
        (listing, timing)
    };
    let listed = |system: System, users: Option<usize>| {
        let fetched = users.map_or(Fetched::Failed, |n| Fetched::Users(n as u64));
        ctx.report_progress(|p| p.source_finished(system, fetched));
    };
    let ifs = async {
        let start = Instant::now();
        ctx.report_progress(|p| p.source_started(System::Ifs));
        let result = ctx.sources.fetch_ifs().await;
        listed(System::Ifs, result.as_ref().ok().map(Vec::len));
        let timing = timed(System::Ifs, start);
        let result = match result {
            Ok(users) => Ok(prepared(users, opts, IfsForms::new).await),
            Err(e) => Err(e),
        };
        (result, timing)
    }
    .instrument(tracing::info_span!("source", system = "ifs"));
    let flow = async {
        let start = Instant::now();
        ctx.report_progress(|p| p.source_started(System::Flow));
        let (pages, received) = tokio::sync::mpsc::unbounded_channel();
        let fetched = async {
            let result = ctx.sources.fetch_flow_pages(&pages).await;
            // The listing is over: the forms can be finished.
            drop(pages);
            result
        };
        let (result, by_page) = tokio::join!(fetched, flow_by_page(received, opts, expected_flow));
        let result = match (result, by_page) {
            (Ok(()), Ok(listing)) => Ok(listing),
            (Err(e), _) => Err(e),
            (Ok(()), Err(e)) => Err(SourceError::new(
                System::Flow,
                SourceErrorKind::InvalidPayload,
                format!("Flow's users were read but could not be collected: {e}"),
            )),
        };
        listed(
            System::Flow,
            result.as_ref().ok().map(|(users, _)| users.len()),
        );
        (result, timed(System::Flow, start))
    }
    .instrument(tracing::info_span!("source", system = "flow"));
    // §2 (Azure ↔ IFS) needs only these two: it is decided as soon as both
    // are there, usually while Flow is still on the wire.
    let azure_and_ifs = async {
        let ((mut azure, ta), (mut ifs, ti)) = tokio::join!(azure, ifs);
        let links = match (&mut azure, &mut ifs) {
            (Ok((listing, azure_forms)), Ok((ifs_users, ifs_forms))) => {
                ifs_links(&mut listing.users, azure_forms, ifs_users, ifs_forms, opts).await
            }
            _ => None,
        };
        ((azure, ta), (ifs, ti), links)
    };
    // Whatever an earlier run left in the WAL (one that was killed before
    // its checkpoint) goes into the database file now, while the sources
    // are on the wire (commits never wait for it).
    let checkpoint = async {
        if let Err(e) = ctx.store.checkpoint().await {
            tracing::warn!(error = %e, "could not checkpoint the store's write-ahead log; the next run tries again");
        }
    };
    let (((azure, ta), (ifs, ti), ifs_links), (flow, tf), ()) =
        tokio::join!(azure_and_ifs, flow, checkpoint);
    timings.seconds = vec![ta, ti, tf];

    let mut errors: Vec<SourceError> = Vec::new();
    let azure = match azure {
        Err(AzureStop::Store(e)) => return Err(e.into()),
        Err(AzureStop::Source(e)) => {
            errors.push(e);
            None
        }
        Err(AzureStop::Listing(stop)) => Some(Err(stop)),
        Ok(listing) => Some(Ok(listing)),
    };
    let ifs = ifs.map_err(|e| errors.push(e)).ok();
    let flow = flow.map_err(|e| errors.push(e)).ok();

    report.sources.ifs = SourceSummary {
        users: ifs.as_ref().map_or(0, |(v, _)| v.len() as u64),
        complete: ifs.is_some(),
        delta: None,
    };
    report.sources.flow = SourceSummary {
        users: flow.as_ref().map_or(0, |(v, _)| v.len() as u64),
        complete: flow.is_some(),
        delta: None,
    };
    report.sources.azure.complete = azure.is_some();
    report.sources.azure.delta = Some(matches!(&azure, Some(Ok((l, _))) if l.delta));

    if !errors.is_empty() {
        let reason = errors
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("; ");
        return Err(Stop::Aborted(format!(
            "incomplete source data, nothing was concluded or changed: {reason}"
        )));
    }
    let (Some(azure), Some((ifs, ifs_forms)), Some((flow, flow_forms))) = (azure, ifs, flow) else {
        return Err(Stop::Failed("a source delivered nothing".into()));
    };
    let (listing, azure_forms) = azure?;
    if let Some(why) = listing.fallback {
        report.advice.push(format!(
            "Azure AD was listed in full instead of by delta query (delta: false): {why}. The new delta link is stored; the next run reads only the changes."
        ));
    }
    report.sources.azure.users = listing.users.len() as u64;

    Ok((
        Snapshots {
            azure: listing.users,
            ifs,
            flow,
        },
        listing.update,
        Prepared {
            azure: azure_forms,
            ifs: ifs_forms,
            flow: flow_forms,
            ifs_links,
        },
    ))
}

/// Why the Azure side of a fetch gave no users.
enum AzureStop {
    /// The stored snapshot could not be read.
    Store(StoreError),
    /// Graph failed (the run aborts with the other sources' errors).
    Source(SourceError),
    /// What Graph sent does not fit what is stored.
    Listing(Stop),
}

/// A run's Azure users and what they change in the stored snapshot.
struct AzureListing {
    users: Vec<AadUser>,
    update: AzureUpdate,
    /// Read by delta query.
    delta: bool,
    /// Why a stored delta link was not used.
    fallback: Option<String>,
}

/// The run's Azure users from what Graph sent and what is stored.
fn azure_listing(fetched: AzureFetch, stored: Option<AzureSnapshot>) -> Result<AzureListing, Stop> {
    match fetched {
        AzureFetch::Full {
            users,
            delta_link,
            fallback,
        } => {
            let update = match stored {
                Some(stored) => {
                    let (upserts, removed) =
                        idrecon_core::delta::diff_snapshots(&stored.users, &users);
                    AzureUpdate::Changes {
                        upserts,
                        removed,
                        delta_link,
                    }
                }
                None => AzureUpdate::Replace { delta_link },
            };
            Ok(AzureListing {
                users,
                update,
                delta: false,
                fallback,
            })
        }
        AzureFetch::Delta {
            changes,
            delta_link,
        } => {
            let Some(stored) = stored else {
                return Err(Stop::Failed(
                    "Azure AD sent changes but no stored snapshot exists; run with --full".into(),
                ));
            };
            let (upserts, removed) = idrecon_core::delta::split_changes(&changes);
            let users = idrecon_core::delta::apply_delta(stored.users, changes);
            Ok(AzureListing {
                users,
                update: AzureUpdate::Changes {
                    upserts,
                    removed,
                    delta_link: Some(delta_link),
                },
                delta: true,
                fallback: None,
            })
        }
    }
}

/// One source's forms (see `reconcile::prepare`), computed on a blocking
/// thread as soon as the source arrived, while the others are still on the
/// wire. If computing panicked, there are no forms and the core computes them.
async fn prepared<T, F>(
    records: Vec<T>,
    opts: &MatchOptions,
    forms: fn(&[T], &MatchOptions) -> F,
) -> (Vec<T>, Option<F>)
where
    T: Clone + Send + Sync + 'static,
    F: Send + 'static,
{
    let opts = opts.clone();
    on_blocking_thread(records, move |records| forms(records, &opts), Vec::clone).await
}

/// Flow's users as their pages arrive, with their forms made a page at a
/// time on a blocking thread ([`FlowFormsByPage`]). If making the forms
/// panicked, the users are all still there, without forms: the core makes
/// them. `Err` only when the blocking thread itself was lost.
async fn flow_by_page(
    mut pages: tokio::sync::mpsc::UnboundedReceiver<Vec<FlowUser>>,
    opts: &MatchOptions,
    expected: usize,
) -> Result<(Vec<FlowUser>, Option<FlowForms>), tokio::task::JoinError> {
    let opts = opts.clone();
    tokio::task::spawn_blocking(move || {
        let mut users: Vec<FlowUser> = Vec::with_capacity(expected);
        let mut forms = Some(FlowFormsByPage::new(&opts, expected));
        while let Some(page) = pages.blocking_recv() {
            users.extend(page);
            if let Some(mut by_page) = forms.take() {
                let users = &users;
                forms = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
                    by_page.extend(users);
                    by_page
                }))
                .ok();
            }
        }
        let forms = forms.and_then(|by_page| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| by_page.finish(&users))).ok()
        });
        (users, forms)
    })
    .await
}

/// §2's links of the Azure and IFS users, decided on a blocking thread
/// from their forms (`None` when either was not prepared, or deciding
/// panicked: the core then decides them itself).
async fn ifs_links(
    azure: &mut Vec<AadUser>,
    azure_forms: &mut Option<AzureForms>,
    ifs: &mut Vec<IfsUser>,
    ifs_forms: &mut Option<IfsForms>,
    opts: &MatchOptions,
) -> Option<IfsLinks> {
    if azure_forms.is_none() || ifs_forms.is_none() {
        return None;
    }
    type Parts = (
        Vec<AadUser>,
        Vec<IfsUser>,
        Option<AzureForms>,
        Option<IfsForms>,
    );
    let parts: Parts = (
        std::mem::take(azure),
        std::mem::take(ifs),
        azure_forms.take(),
        ifs_forms.take(),
    );
    let opts = opts.clone();
    let link = move |(azure, ifs, azure_forms, ifs_forms): &Parts| match (azure_forms, ifs_forms) {
        (Some(azure_forms), Some(ifs_forms)) => {
            Some(IfsLinks::new(azure, azure_forms, ifs, ifs_forms, &opts))
        }
        _ => None,
    };
    // Forms that could not be handed back are made again by the core.
    let again = |(azure, ifs, _, _): &Parts| (azure.clone(), ifs.clone(), None, None);
    let (parts, links) = on_blocking_thread(parts, link, again).await;
    (*azure, *ifs, *azure_forms, *ifs_forms) = parts;
    crate::memory::log_phase("Azure AD and IFS linked");
    links.flatten()
}

/// Runs `work` on `data` on a blocking thread (the sources fetched in the
/// same task go on meanwhile) and hands `data` back as it went, at the same
/// addresses: prepared forms and links remember them. `None` if `work`
/// panicked. The task holds `data` only while it runs, so taking it back
/// afterwards cannot fail; `copy` would make a copy if it ever did.
async fn on_blocking_thread<D, R>(
    data: D,
    work: impl FnOnce(&D) -> R + Send + 'static,
    copy: impl FnOnce(&D) -> D,
) -> (D, Option<R>)
where
    D: Send + Sync + 'static,
    R: Send + 'static,
{
    let data = std::sync::Arc::new(data);
    let task = {
        let data = std::sync::Arc::clone(&data);
        tokio::task::spawn_blocking(move || work(&data))
    };
    let result = task.await.ok();
    let data = std::sync::Arc::try_unwrap(data).unwrap_or_else(|shared| copy(&shared));
    (data, result)
}

/// Fetches one person (`--user`); returns the snapshots and the Azure object ID.
async fn fetch_person(
    ctx: &RunContext<'_>,
    person: &str,
    report: &mut Report,
    steps: &mut Vec<String>,
) -> Result<(Snapshots, String), Stop> {
    let fetched = ctx.sources.fetch_person(person).await.map_err(|e| {
        Stop::Aborted(format!(
            "incomplete source data for {person}, nothing was concluded or changed: {e}"
        ))
    })?;
    steps.extend(fetched.steps);
    let snapshots = fetched.snapshots;
    let summary = |n: usize| SourceSummary {
        users: n as u64,
        complete: true,
        delta: None,
    };
    report.sources.azure = SourceSummary {
        delta: Some(false),
        ..summary(snapshots.azure.len())
    };
    report.sources.ifs = summary(snapshots.ifs.len());
    report.sources.flow = summary(snapshots.flow.len());
    let Some(id) = snapshots.azure.first().map(|u| u.id().to_string()) else {
        return Err(Stop::Failed(format!("Azure AD has no user {person}")));
    };
    Ok((snapshots, id))
}

fn summarise(outcome: &reconcile::Outcome, resolved: u64) -> Summary {
    let mut s = Summary {
        people: outcome.people,
        ok: outcome.ok,
        findings: outcome.findings.len() as u64,
        resolved_since_last_run: resolved,
        ..Summary::default()
    };
    for f in &outcome.findings {
        *s.by_kind.entry(f.kind).or_default() += 1;
        if let Some(c) = f.cause {
            *s.by_cause.entry(c).or_default() += 1;
        }
        match f.status {
            crate::model::FindingStatus::New => s.new += 1,
            crate::model::FindingStatus::Persisting => s.persisting += 1,
        }
    }
    s
}

/// Findings still open after the run: everything not fixed by an applied action.
pub fn open_findings(report: &Report) -> usize {
    report
        .findings
        .iter()
        .filter(|f| f.action_status != Some(ActionStatus::Applied))
        .count()
}

fn trunc(t: DateTime<Utc>) -> DateTime<Utc> {
    use chrono::Timelike;
    t.with_nanosecond(0).unwrap_or(t)
}
