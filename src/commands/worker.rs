//! `idrecon run`: the long-running worker. Reconciles at every time of
//! `schedule.cron` in `schedule.timezone` (never two runs at once), applies
//! fixes when `fix.enabled`, mails each report as `report.send` says, serves
//! `/healthz`, `/metrics` and the run history pages on `server.listen`
//! when set, and stops cleanly
//! on SIGINT/SIGTERM: no new run or action starts, the current action
//! finishes and is journalled, then the process exits 0.

use super::common::{load_config, open_store};
use super::reconcile::{graph_sender, live_sources};
use crate::cli::Cli;
use crate::config::Config;
use crate::error::{AppError, ExitCode};
use crate::job::{run_once, RunContext, RunError, RunRequest};
use crate::model::ActionStatus;
use crate::notify::{self, GraphSender, MailOutcome};
use crate::report::{Report, Trigger};
use crate::schedule::{install_signal_handlers, run_scheduled, Clock, Schedule, SystemClock};
use crate::server::{StatusServer, StatusState};
use crate::sources::live::LiveSources;
use crate::store::Store;
use crate::web::auth::Access;
use crate::web::HistoryPages;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Everything the worker runs with, built once and shared by every run.
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

/// `idrecon run`: loads the configuration, then [`work`]s until a signal.
pub async fn run(cli: &Cli) -> Result<ExitCode, AppError> {
    let cfg = load_config(cli)?;
    let store = open_store(&cfg.store.url).await?;
    let sources = live_sources(&cfg)?;
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
        config: &cfg,
        store: &store,
        sources: &sources,
        schedule: &cfg.schedule,
        clock: &SystemClock,
        status: StatusState::new(),
    };
    work(&worker, shutdown, server).await;
    store.close().await;
    Ok(ExitCode::Ok)
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
    let writer = worker.sources.flow_writer();
    let clock = || worker.clock.now();
    let should_stop = || shutdown.is_cancelled();
    let ctx = RunContext {
        config: worker.config,
        store: worker.store,
        sources: worker.sources,
        flow_writer: writer.as_deref(),
        azure_scope: worker.sources.azure_scope(),
        clock: &clock,
        should_stop: &should_stop,
        progress: None,
    };
    let request = RunRequest {
        trigger: Trigger::Schedule,
        apply: worker.config.fix.enabled,
        ..RunRequest::manual()
    };
    let outcome = match run_once(&ctx, &request).await {
        Ok(outcome) => outcome,
        Err(RunError::LockHeld(e)) => {
            tracing::warn!(error = %e, "scheduled run skipped: another run holds the store lock");
            return;
        }
        Err(e) => {
            tracing::error!(error = %e, "scheduled run could not be started or recorded");
            return;
        }
    };
    let report = outcome.report;
    worker.status.record_run(&report, &outcome.timings.seconds);
    let mail = notify::mail_run(worker.config, worker.store, &report, graph).await;
    log_summary(&report, &mail);
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
    let status = format!("{:?}", report.status).to_lowercase();
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
