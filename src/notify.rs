//! Mailing a run's report: decide by `report.send`, build the content from
//! the renderers, send by SMTP or Graph, and record the outcome in the store
//! so a failed mail is shown in `history` and retried with the next run.

use crate::auth::AccessTokenSource;
use crate::config::{Config, MailTransport, SendPolicy};
use crate::mail::{self, GraphMailer, MailError};
use crate::net::redact::Redactor;
use crate::net::tls::TlsSettings;
use crate::report::email::MailContent;
use crate::report::{csv, html, text, Report, RunStatus};
use crate::store::{RunState, Store};
use chrono::Utc;
use std::sync::Arc;

/// What the Graph transport needs from the live connectors.
pub struct GraphSender {
    pub http: reqwest::Client,
    pub tokens: Arc<dyn AccessTokenSource>,
}

/// Whether the report of a run was mailed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MailOutcome {
    Sent,
    /// `report.send` said no.
    NotNeeded,
    /// Sending failed; recorded, and retried with the next run.
    Failed(String),
}

/// Builds the mail of `report`: HTML, plain text and the CSV attachment.
pub fn content(report: &Report, tenant_label: &str) -> Result<MailContent, MailError> {
    let html = html::render(report).map_err(|e| MailError::Build(e.to_string()))?;
    let csv = csv::render(report).map_err(|e| MailError::Build(e.to_string()))?;
    Ok(MailContent::new(
        report,
        tenant_label,
        text::render(report),
        html,
        csv,
    ))
}

/// Mails `report` if `report.send` asks for it (`force` ignores the policy
/// except `never`), records the outcome, and then retries the mails of
/// earlier runs that failed.
pub async fn mail_run(
    cfg: &Config,
    store: &dyn Store,
    report: &Report,
    graph: Option<&GraphSender>,
) -> MailOutcome {
    let previous = previous_status(store, report.run_id).await;
    if cfg.report.send == SendPolicy::Never || cfg.report.to.is_empty() {
        return MailOutcome::NotNeeded;
    }
    if !mail::should_send(cfg.report.send, report, previous) {
        tracing::info!(run_id = report.run_id, "report not mailed (report.send)");
        retry_failed(cfg, store, report.run_id, graph).await;
        return MailOutcome::NotNeeded;
    }
    let outcome = send_and_record(cfg, store, report, graph).await;
    retry_failed(cfg, store, report.run_id, graph).await;
    outcome
}

async fn send_and_record(
    cfg: &Config,
    store: &dyn Store,
    report: &Report,
    graph: Option<&GraphSender>,
) -> MailOutcome {
    let label = cfg.report.tenant_label.as_deref().unwrap_or("");
    let result = match content(report, label) {
        Ok(content) => send(cfg, &content, graph).await,
        Err(e) => Err(e),
    };
    let (sent, error) = match &result {
        Ok(()) => (true, None),
        // A server's reply may echo a credential: mask the configured secrets.
        Err(e) => (false, Some(Redactor::from_config(cfg).mask(&e.to_string()))),
    };
    if let Err(e) = store
        .record_mail(report.run_id, sent, error.as_deref(), Utc::now())
        .await
    {
        tracing::error!(run_id = report.run_id, error = %e, "could not record the mail outcome");
    }
    match error {
        None => {
            tracing::info!(run_id = report.run_id, to = ?cfg.report.to, "report mailed");
            MailOutcome::Sent
        }
        Some(e) => {
            tracing::error!(run_id = report.run_id, error = %e, "mailing the report failed; it is retried with the next run");
            MailOutcome::Failed(e)
        }
    }
}

async fn send(
    cfg: &Config,
    content: &MailContent,
    graph: Option<&GraphSender>,
) -> Result<(), MailError> {
    match (cfg.report.transport, graph) {
        (MailTransport::Graph, Some(g)) => {
            let mailer = GraphMailer {
                http: &g.http,
                graph_url: &cfg.azure.graph_url,
                tokens: g.tokens.as_ref(),
            };
            mail::send_report_mail(
                &cfg.report,
                content,
                Some(&mailer),
                &TlsSettings::from_config(cfg),
            )
            .await
        }
        _ => {
            mail::send_report_mail(&cfg.report, content, None, &TlsSettings::from_config(cfg)).await
        }
    }
}

/// How many earlier failed mails one run re-sends: the newest only.
///
/// Why: while mail is broken, every run adds a failed mail. Re-sending all
/// of them each run grows without bound and floods the inbox once mail
/// works again with reports that later ones superseded. The newest unsent
/// report is the one worth delivering (it is what the admin did not see);
/// older ones are given up (`history` shows them failed, "given up").
const MAIL_RETRIES_PER_RUN: usize = 1;

/// Sends again the newest earlier report whose mail failed, and gives up
/// on older ones (see [`MAIL_RETRIES_PER_RUN`]).
async fn retry_failed(cfg: &Config, store: &dyn Store, current: i64, graph: Option<&GraphSender>) {
    let pending: Vec<i64> = match store.runs_with_unsent_mail().await {
        Ok(p) => p.into_iter().filter(|id| *id != current).collect(),
        Err(e) => {
            tracing::warn!(error = %e, "could not list runs with unsent mail");
            return;
        }
    };
    let (superseded, retry) = pending.split_at(pending.len().saturating_sub(MAIL_RETRIES_PER_RUN));
    if let Some(newest) = pending.last() {
        if !superseded.is_empty() {
            let reason = format!("given up: not re-sent, the report of run #{newest} is newer");
            match store.give_up_mail(superseded, &reason, Utc::now()).await {
                Ok(()) => {
                    tracing::warn!(runs = ?superseded, newest, "gave up re-sending older failed mails")
                }
                Err(e) => tracing::warn!(error = %e, "could not record given-up mails"),
            }
        }
    }
    for &run_id in retry {
        match store.load_report(run_id).await {
            Ok(Some(report)) => {
                tracing::info!(run_id, "retrying the mail of an earlier run");
                let _ = send_and_record(cfg, store, &report, graph).await;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(run_id, error = %e, "could not load a report to re-mail"),
        }
    }
}

async fn previous_status(store: &dyn Store, run_id: i64) -> Option<RunStatus> {
    let runs = store.list_runs(5).await.ok()?;
    runs.into_iter()
        .filter(|r| r.id < run_id)
        .find_map(|r| match r.status {
            RunState::Completed => Some(RunStatus::Completed),
            RunState::Aborted => Some(RunStatus::Aborted),
            RunState::Failed => Some(RunStatus::Failed),
            RunState::Running => None,
        })
}
