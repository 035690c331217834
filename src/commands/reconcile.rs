//! `idrecon reconcile`: one run now, report mode unless `--apply`.

use super::common::{emit_report, exit_code_for, load_config, open_store, report_format};
use crate::cli::{Cli, ReconcileArgs};
use crate::config::{Config, ConfigError};
use crate::error::{AppError, ExitCode};
use crate::job::{run_once, RunContext, RunError, RunRequest};
use crate::notify::{self, GraphSender};
use crate::progress::{RunProgress, TerminalProgress};
use crate::report::terminal::escape_controls;
use crate::report::Trigger;
use crate::sources::live::LiveSources;
use crate::sources::{SourceError, SourceErrorKind};
use crate::store::Store;

pub async fn run(cli: &Cli, args: &ReconcileArgs) -> Result<ExitCode, AppError> {
    let cfg = load_config(cli)?;
    let store = open_store(&cfg.store.url).await?;
    let sources = live_sources(&cfg)?;
    let request = RunRequest {
        trigger: Trigger::Manual,
        apply: args.apply,
        full: args.full,
        max_changes_override: args.max_changes,
        person: args.user.clone(),
        allow_drop: args.allow_drop,
    };
    let outcome = run_with(&cfg, &store, &sources, &request).await?;
    for (n, step) in outcome.steps.iter().enumerate() {
        eprintln!("{}. {}", n + 1, escape_controls(step));
    }
    let report = outcome.report;
    if let Some(reason) = &report.abort_reason {
        let reason = escape_controls(reason);
        eprintln!(
            "idrecon: run {} {}: {reason}",
            report.run_id,
            match report.status {
                crate::report::RunStatus::Aborted => "aborted",
                crate::report::RunStatus::Failed => "failed",
                crate::report::RunStatus::Completed => "completed",
            }
        );
    }
    emit_report(
        &report,
        report_format(args.format),
        args.output.as_deref(),
        args.all,
    )?;
    if args.email {
        let graph = graph_sender(&sources);
        notify::mail_run(&cfg, &store, &report, graph.as_ref()).await;
    }
    // The flag wins over report.findings_exit_code (default 2).
    let findings_exit_code = args
        .findings_exit_code
        .unwrap_or(cfg.report.findings_exit_code);
    Ok(exit_code_for(&report).with_findings_code(findings_exit_code))
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
    Some(GraphSender {
        http: sources.http_client(),
        tokens: sources.azure_tokens(),
    })
}

/// One run against `sources` with the given store; maps "lock held" to exit 4.
pub async fn run_with(
    cfg: &Config,
    store: &dyn Store,
    sources: &LiveSources,
    request: &RunRequest,
) -> Result<crate::job::RunOutcome, AppError> {
    let writer = sources.flow_writer();
    let clock = chrono::Utc::now;
    let never_stop = || false;
    // Spinners on an interactive terminal only; one-person runs read no listings.
    let progress = if request.person.is_none() {
        TerminalProgress::for_stderr()
    } else {
        None
    };
    let ctx = RunContext {
        config: cfg,
        store,
        sources,
        flow_writer: writer.as_deref(),
        azure_scope: sources.azure_scope(),
        clock: &clock,
        should_stop: &never_stop,
        progress: progress.as_ref().map(|p| p as &dyn RunProgress),
    };
    match run_once(&ctx, request).await {
        Ok(outcome) => Ok(outcome),
        Err(RunError::LockHeld(e)) => Err(AppError::Aborted(e.to_string())),
        Err(e) => Err(AppError::Other(anyhow::anyhow!("{e}"))),
    }
}
