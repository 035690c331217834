//! The read-only run history pages of `idrecon run` (served beside
//! `/healthz` and `/metrics` when `server.listen` is set):
//!
//! - `/`: every recent run (status, trigger, counts, new/resolved) and an
//!   inline-SVG chart of findings by kind over the last 30 completed runs;
//! - `/runs/{id}`: the run's HTML report (the same page as the mail);
//! - `/runs/{id}.csv`, `/runs/{id}.json`: downloads.
//!
//! Security: see [`auth`] (loopback only unless `server.auth_token`) and
//! [`csp`] (strict Content-Security-Policy). Everything shown is escaped by
//! minijinja's HTML auto-escaping; nothing on the pages can change anything.

pub mod auth;
pub mod chart;
pub mod csp;

use crate::model::FindingKind;
use crate::report::{self, Format, Report};
use crate::store::{RunRow, RunState, Store, StoreError};
use auth::Access;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chart::{ChartRun, CHART_RUNS};
use minijinja::{context, Environment, UndefinedBehavior};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// How many runs `/` lists.
pub const LISTED_RUNS: u32 = 100;

const TEMPLATE_NAME: &str = "history.html";
const TEMPLATE: &str = include_str!("templates/history.html");

/// What the history pages read from, and who may read them.
#[derive(Clone)]
pub struct HistoryPages {
    store: Arc<dyn Store>,
    access: Access,
    /// Findings by kind of finished runs, which never change: the chart
    /// loads each run's report once.
    by_kind: Arc<Mutex<HashMap<i64, BTreeMap<FindingKind, u64>>>>,
}

impl std::fmt::Debug for HistoryPages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HistoryPages")
            .field("access", &self.access)
            .finish_non_exhaustive()
    }
}

impl HistoryPages {
    /// Pages over `store` with the access rule `access`.
    pub fn new(store: Arc<dyn Store>, access: Access) -> Self {
        HistoryPages {
            store,
            access,
            by_kind: Arc::default(),
        }
    }

    /// The routes `/` and `/runs/{id}[.csv|.json]`, behind the access check
    /// and with the security headers on every response.
    pub fn router(self) -> Router {
        Router::new()
            .route("/", get(history))
            .route("/runs/{file}", get(run_file))
            .layer(middleware::from_fn_with_state(self.clone(), guard))
            .with_state(self)
    }

    fn by_kind_cache(&self) -> std::sync::MutexGuard<'_, HashMap<i64, BTreeMap<FindingKind, u64>>> {
        // Plain data, consistent at every point: a panic elsewhere leaves it usable.
        self.by_kind
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Refuses requests the access rule does not allow; adds the headers every
/// history response carries.
async fn guard(State(pages): State<HistoryPages>, request: Request, next: Next) -> Response {
    let mut response = match &pages.access {
        Access::LoopbackOnly => next.run(request).await,
        Access::Refused => (
            StatusCode::FORBIDDEN,
            "The run history is only served on a loopback address unless server.auth_token is set.\n",
        )
            .into_response(),
        Access::Token(token) => {
            let header = request
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok());
            if auth::authorized(header, token) {
                next.run(request).await
            } else {
                let mut r = (StatusCode::UNAUTHORIZED, "Authorization required.\n").into_response();
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"idrecon\", charset=\"UTF-8\""),
                );
                r
            }
        }
    };
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(csp::DOWNLOAD),
        );
    }
    response
}

/// One row of the runs table.
#[derive(Serialize)]
struct RunLine {
    id: i64,
    started: String,
    trigger: &'static str,
    mode: &'static str,
    status: &'static str,
    abort_reason: Option<String>,
    person: Option<String>,
    people: u64,
    findings: u64,
    new: u64,
    resolved: u64,
    actions_applied: u64,
    actions_failed: u64,
    /// Finished runs have a report to show.
    viewable: bool,
}

impl RunLine {
    fn of(r: &RunRow) -> Self {
        RunLine {
            id: r.id,
            started: r.started_at.format("%Y-%m-%d %H:%M:%S").to_string(),
            trigger: match r.trigger {
                report::Trigger::Manual => "manual",
                report::Trigger::Schedule => "scheduled",
            },
            mode: match r.mode {
                report::Mode::Report => "report",
                report::Mode::Apply => "apply",
            },
            status: r.status.as_str(),
            abort_reason: r.abort_reason.clone(),
            person: r.person.clone(),
            people: r.people,
            findings: r.findings,
            new: r.new,
            resolved: r.resolved,
            actions_applied: r.actions_applied,
            actions_failed: r.actions_failed,
            viewable: r.status != RunState::Running,
        }
    }
}

fn server_error(what: &str, e: &dyn std::fmt::Display) -> Response {
    tracing::error!(error = %e, "run history: {what}");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("Could not {what}; see the idrecon log.\n"),
    )
        .into_response()
}

fn html_page(html: String) -> Response {
    let policy = csp::for_page(&html);
    let mut response = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response();
    if let Ok(value) = HeaderValue::from_str(&policy) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, value);
    }
    response
}

async fn history(State(pages): State<HistoryPages>) -> Response {
    let runs = match pages.store.list_runs(LISTED_RUNS).await {
        Ok(runs) => runs,
        Err(e) => return server_error("read the run history", &e),
    };
    let chart = match chart_runs(&pages, &runs).await {
        Ok(chart) => chart::build(&chart),
        Err(e) => return server_error("read the findings of recent runs", &e),
    };
    let lines: Vec<RunLine> = runs.iter().map(RunLine::of).collect();
    match render_history(&lines, &chart) {
        Ok(html) => html_page(html),
        Err(e) => server_error("render the run history", &e),
    }
}

/// Findings by kind of the last [`CHART_RUNS`] completed runs over the whole
/// tenant (one-person runs left out), oldest first.
async fn chart_runs(pages: &HistoryPages, runs: &[RunRow]) -> Result<Vec<ChartRun>, StoreError> {
    let mut chosen: Vec<&RunRow> = runs
        .iter()
        .filter(|r| r.status == RunState::Completed && r.person.is_none())
        .take(CHART_RUNS)
        .collect();
    chosen.reverse();
    let mut out = Vec::with_capacity(chosen.len());
    for r in chosen {
        let cached = pages.by_kind_cache().get(&r.id).cloned();
        let by_kind = match cached {
            Some(by_kind) => by_kind,
            None => {
                let Some(report) = pages.store.load_report(r.id).await? else {
                    continue;
                };
                let by_kind = report.summary.by_kind;
                pages.by_kind_cache().insert(r.id, by_kind.clone());
                by_kind
            }
        };
        out.push(ChartRun {
            run_id: r.id,
            by_kind,
        });
    }
    Ok(out)
}

fn render_history(runs: &[RunLine], chart: &chart::Chart) -> Result<String, minijinja::Error> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.add_template(TEMPLATE_NAME, TEMPLATE)?;
    env.get_template(TEMPLATE_NAME)?.render(context! {
        runs => runs,
        chart => chart,
        chart_runs => CHART_RUNS,
        version => env!("CARGO_PKG_VERSION"),
    })
}

/// `/runs/{id}`, `/runs/{id}.csv`, `/runs/{id}.json`.
async fn run_file(State(pages): State<HistoryPages>, Path(file): Path<String>) -> Response {
    let (id, format) = match file.rsplit_once('.') {
        Some((id, "csv")) => (id, Format::Csv),
        Some((id, "json")) => (id, Format::Json),
        Some(_) => return not_found(),
        None => (file.as_str(), Format::Html),
    };
    let Ok(run_id) = id.parse::<i64>() else {
        return not_found();
    };
    let report = match pages.store.load_report(run_id).await {
        Ok(Some(report)) => report,
        Ok(None) => return not_found(),
        Err(StoreError::RunNotFinished(_)) => {
            return (StatusCode::CONFLICT, "This run has not finished yet.\n").into_response()
        }
        Err(e) => return server_error("read the run", &e),
    };
    let text = match report::render(&report, format) {
        Ok(text) => text,
        Err(e) => return server_error("render the run", &e),
    };
    match format {
        Format::Html => html_page(text),
        Format::Csv => download(&report, text, "text/csv; charset=utf-8", "csv"),
        _ => download(&report, text, "application/json", "json"),
    }
}

fn download(report: &Report, text: String, content_type: &'static str, ext: &str) -> Response {
    let disposition = format!(
        "attachment; filename=\"idrecon-run-{}.{ext}\"",
        report.run_id
    );
    let mut response = ([(header::CONTENT_TYPE, content_type)], text).into_response();
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "No such run.\n").into_response()
}
