//! Running reconciles: one now (`idrecon reconcile`, `demo`), or one at every
//! time of `schedule.cron` in `schedule.timezone` (`idrecon run`, never two
//! at once). Both go through [`reconcile`]. The scheduled worker applies
//! fixes when `fix.enabled`, mails each report as `report.send` says, serves
//! `/healthz` and `/metrics` on `server.listen` when set, and stops cleanly
//! on SIGINT/SIGTERM: no new run or action starts, the current action
//! finishes and is journalled, then it returns.

use crate::clock::{Clock, SystemClock};
use crate::config::{Config, ConfigError};
use crate::error::AppError;
use crate::job::{run_once, RunContext, RunError, RunOutcome, RunRequest};
use crate::model::ActionStatus;
use crate::notify::{self, GraphSender, MailOutcome};
use crate::progress::{RunProgress, TerminalProgress};
use crate::report::{Report, Trigger};
use crate::schedule::{install_signal_handlers, run_scheduled, Schedule};
use crate::server::{StatusServer, StatusState};
use crate::sources::http::{build_client, HttpSettings};
use crate::sources::live::LiveSources;
use crate::sources::{SourceError, SourceErrorKind, System};
use crate::store::{SqliteStore, Store};
use crate::web::auth::Access;
use crate::web::HistoryPages;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Everything the scheduled worker runs with, built once and shared by every run.
pub struct Worker<'a> {
    pub config: &'a Config,
    pub store: &'a dyn Store,
    pub sources: &'a LiveSources,
    pub schedule: &'a Schedule,
    /// The real clock in production; tests drive a manual one.
    pub clock: &'a dyn Clock,
    /// What `/healthz` and `/metrics` show; updated after every run.
    pub status: StatusState,
}

/// One reconcile with the live connectors: the single path of a run now and
/// of every scheduled run. `should_stop` is checked between actions;
/// `progress` hears about sources read and actions applied.
pub async fn reconcile(
    config: &Config,
    store: &dyn Store,
    sources: &LiveSources,
    clock: &dyn Clock,
    should_stop: &(dyn Fn() -> bool + Send + Sync),
    progress: Option<&dyn RunProgress>,
    request: &RunRequest,
) -> Result<RunOutcome, RunError> {
    let writer = sources.flow_writer();
    let ctx = RunContext {
        config,
        store,
        sources,
        flow_writer: writer.as_deref(),
        azure_scope: sources.azure_scope(),
        clock,
        should_stop,
        progress,
    };
    run_once(&ctx, request).await
}

/// One run now against `sources` with the given store (`idrecon reconcile`,
/// `demo`): spinners on an interactive terminal, never stopped early, "lock
/// held" mapped to exit 4.
pub async fn reconcile_now(
    cfg: &Config,
    store: &dyn Store,
    sources: &LiveSources,
    request: &RunRequest,
) -> Result<RunOutcome, AppError> {
    let never_stop = || false;
    // Spinners on an interactive terminal only; one-person runs read no listings.
    let progress = if request.person.is_none() {
        TerminalProgress::for_stderr()
    } else {
        None
    };
    let progress = progress.as_ref().map(|p| p as &dyn RunProgress);
    match reconcile(
        cfg,
        store,
        sources,
        &SystemClock,
        &never_stop,
        progress,
        request,
    )
    .await
    {
        Ok(outcome) => Ok(outcome),
        Err(RunError::LockHeld(e)) => Err(AppError::Aborted(e.to_string())),
        Err(e) => Err(AppError::Other(anyhow::anyhow!("{e}"))),
    }
}

/// Builds the live connectors; configuration problems are exit 3.
pub fn live_sources(cfg: &Config) -> Result<LiveSources, AppError> {
    LiveSources::from_config(cfg).map_err(source_setup_error)
}

fn source_setup_error(e: SourceError) -> AppError {
    if e.kind == SourceErrorKind::Config {
        AppError::Config(ConfigError::invalid(e.system.as_str(), e.message))
    } else {
        AppError::Other(anyhow::anyhow!("{e}"))
    }
}

/// What the Graph mail transport needs from the live connectors.
pub fn graph_sender(sources: &LiveSources) -> Option<GraphSender> {
    let http = build_client(System::Azure, &HttpSettings::default()).ok()?;
    Some(GraphSender {
        http,
        tokens: sources.azure_tokens(),
    })
}

/// `idrecon run` once the configuration and the store are open: builds
/// the connectors, binds the status server (`/healthz`, `/metrics` and the
/// run history pages), then [`work`]s at every time of `schedule.cron`
/// until SIGINT or SIGTERM.
pub async fn run_until_signalled(cfg: &Config, store: &SqliteStore) -> Result<(), AppError> {
    let sources = live_sources(cfg)?;
    let shutdown = CancellationToken::new();
    install_signal_handlers(shutdown.clone())
        .map_err(|e| AppError::Other(anyhow::anyhow!("cannot listen for SIGINT/SIGTERM: {e}")))?;
    let server = match cfg.server.listen {
        Some(listen) => {
            let server = StatusServer::bind(listen)
                .await
                .map_err(|e| AppError::Other(anyhow::anyhow!("{e}")))?;
            let access = Access::for_listener(server.local_addr(), cfg.server.auth_token.clone());
            if matches!(access, Access::Refused) {
                tracing::warn!(
                    listen = %server.local_addr(),
                    "the run history pages are refused on a non-loopback address without server.auth_token"
                );
            }
            Some(server.with_history(HistoryPages::new(Arc::new(store.clone()), access)))
        }
        None => None,
    };
    let worker = Worker {
        config: cfg,
        store,
        sources: &sources,
        schedule: &cfg.schedule,
        clock: &SystemClock,
        status: StatusState::new(),
    };
    work(&worker, shutdown, server).await;
    Ok(())
}

/// Runs `worker` at every scheduled time until `shutdown` is cancelled,
/// serving `/healthz` and `/metrics` on `server` meanwhile (until the last
/// run has finished). Returns once stopped; a run in progress is finished
/// first (its remaining actions are skipped, none is cut off).
pub async fn work(worker: &Worker<'_>, shutdown: CancellationToken, server: Option<StatusServer>) {
    let server_stop = CancellationToken::new();
    let server_task =
        server.map(|s| tokio::spawn(s.run(worker.status.clone(), server_stop.clone())));
    let first = worker.schedule.next_after(worker.clock.now());
    worker.status.set_next_run(Some(first));
    tracing::info!(
        cron = worker.schedule.expression(),
        timezone = %worker.schedule.timezone(),
        apply = worker.config.fix.enabled,
        next_run = %first.with_timezone(&worker.schedule.timezone()),
        "worker started"
    );

    let graph = graph_sender(worker.sources);
    let graph = graph.as_ref();
    let stop = &shutdown;
    run_scheduled(worker.schedule, shutdown.clone(), worker.clock, move || {
        scheduled_run(worker, stop, graph)
    })
    .await;

    server_stop.cancel();
    if let Some(task) = server_task {
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "the status server stopped with an error"),
            Err(e) => tracing::warn!(error = %e, "the status server task failed"),
        }
    }
    tracing::info!("worker stopped");
}

/// One scheduled run: reconcile (applying when `fix.enabled`), record it
/// for `/healthz` and `/metrics`, mail the report, log a summary line. The
/// next run time shown by `/healthz` is updated last, once all is done.
async fn scheduled_run(
    worker: &Worker<'_>,
    shutdown: &CancellationToken,
    graph: Option<&GraphSender>,
) {
    reconcile_and_mail(worker, shutdown, graph).await;
    let next = worker.schedule.next_after(worker.clock.now());
    worker.status.set_next_run(Some(next));
}

async fn reconcile_and_mail(
    worker: &Worker<'_>,
    shutdown: &CancellationToken,
    graph: Option<&GraphSender>,
) {
    let should_stop = || shutdown.is_cancelled();
    let request = RunRequest {
        trigger: Trigger::Schedule,
        apply: worker.config.fix.enabled,
        ..RunRequest::manual()
    };
    let outcome = reconcile(
        worker.config,
        worker.store,
        worker.sources,
        worker.clock,
        &should_stop,
        None,
        &request,
    )
    .await;
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(RunError::LockHeld(e)) => {
            tracing::warn!(error = %e, "scheduled run skipped: another run holds the store lock");
            return;
        }
        Err(e) => {
            tracing::error!(error = %e, "scheduled run could not be started or recorded");
            worker.status.record_failure(format!(
                "the scheduled run could not be started or recorded: {e}"
            ));
            return;
        }
    };
    let report = outcome.report;
    worker.status.record_run(&report, &outcome.timings.seconds);
    let mail = notify::mail_run(worker.config, worker.store, &report, graph).await;
    log_summary(&report, &mail);
    // The worker is idle until the next run: the best time to move what
    // this run wrote into the database file.
    checkpoint_after_run(worker.store).await;
}

/// Copies the WAL into the database file after a run, so that the next
/// run's start need not (it would, if this failed).
pub async fn checkpoint_after_run(store: &dyn Store) {
    if let Err(e) = store.checkpoint().await {
        tracing::warn!(error = %e, "could not checkpoint the store's write-ahead log; the next run does it");
    }
}

/// The one line a scheduled run leaves in the log.
fn log_summary(report: &Report, mail: &MailOutcome) {
    let count = |status: ActionStatus| report.actions.iter().filter(|a| a.status == status).count();
    let mail = match mail {
        MailOutcome::Sent => "sent".to_string(),
        MailOutcome::NotNeeded => "not needed".to_string(),
        MailOutcome::Failed(e) => format!("failed: {e}"),
    };
    let s = &report.summary;
    let status = report.status.as_str();
    let line = format!(
        "scheduled run {} {status}: {} people, {} findings ({} new, {} resolved since the last run), actions {} applied / {} failed / {} skipped, mail {mail}",
        report.run_id,
        s.people,
        s.findings,
        s.new,
        s.resolved_since_last_run,
        count(ActionStatus::Applied),
        count(ActionStatus::Failed),
        count(ActionStatus::Skipped),
    );
    match &report.abort_reason {
        None => tracing::info!(run_id = report.run_id, status, "{line}"),
        Some(reason) => tracing::warn!(run_id = report.run_id, status, %reason, "{line}"),
    }
}
