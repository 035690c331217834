//! The status server of `idrecon run` (`server.listen`): `GET /healthz` for
//! liveness/alerting and `GET /metrics` for Prometheus.
//!
//! `/healthz` answers 200 while the last run completed (and before any run,
//! as `starting`), 503 when the last run aborted or failed:
//!
//! ```json
//! {"status":"ok","last_run":{"id":42,"status":"completed","finished_at":"2026-11-26T02:00:07Z"},"next_run":"2026-11-27T01:00:00Z"}
//! ```
//!
//! `/metrics` is the OpenMetrics text of [`crate::metrics::Metrics`].
//!
//! With [`StatusServer::with_history`], the same listener also serves the
//! read-only run history pages of [`crate::web`] (`/`, `/runs/{id}`).

use crate::metrics::{Metrics, OPENMETRICS_CONTENT_TYPE};
use crate::report::{Report, RunStatus};
use crate::sources::System;
use crate::web::HistoryPages;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The last finished run, as `/healthz` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastRun {
    pub id: i64,
    pub status: RunStatus,
    #[serde(with = "crate::report::timestamp_opt")]
    pub finished_at: Option<DateTime<Utc>>,
}

/// Overall state of the worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// The last run completed.
    Ok,
    /// The last run aborted or failed.
    Degraded,
    /// No run has finished since the worker started.
    Starting,
}

/// The body of `/healthz`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub status: HealthStatus,
    pub last_run: Option<LastRun>,
    #[serde(with = "crate::report::timestamp_opt")]
    pub next_run: Option<DateTime<Utc>>,
}

impl Health {
    /// `ok` and `starting` are healthy (HTTP 200); `degraded` is not (503).
    pub fn is_healthy(&self) -> bool {
        self.status != HealthStatus::Degraded
    }
}

#[derive(Debug, Default)]
struct Progress {
    last_run: Option<LastRun>,
    next_run: Option<DateTime<Utc>>,
}

#[derive(Debug, Default)]
struct Shared {
    progress: Mutex<Progress>,
    metrics: Metrics,
}

/// What the worker tells the status server; cheap to clone (one `Arc`).
#[derive(Clone, Debug, Default)]
pub struct StatusState {
    shared: Arc<Shared>,
}

impl StatusState {
    /// A fresh state: no run yet (`starting`), every metric at 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a finished run: its id, status and end time for `/healthz`,
    /// and its numbers for `/metrics` (see [`Metrics::record_run`]).
    pub fn record_run(&self, report: &Report, fetch_seconds: &[(System, f64)]) {
        self.shared.metrics.record_run(report, fetch_seconds);
        self.progress().last_run = Some(LastRun {
            id: report.run_id,
            status: report.status,
            finished_at: report.finished_at,
        });
    }

    /// Sets the time of the next scheduled run (`None`: none planned).
    pub fn set_next_run(&self, next_run: Option<DateTime<Utc>>) {
        self.progress().next_run = next_run;
    }

    /// The current health, as `/healthz` reports it.
    pub fn health(&self) -> Health {
        let progress = self.progress();
        let status = match progress.last_run.as_ref().map(|r| r.status) {
            None => HealthStatus::Starting,
            Some(RunStatus::Completed) => HealthStatus::Ok,
            Some(RunStatus::Aborted | RunStatus::Failed) => HealthStatus::Degraded,
        };
        Health {
            status,
            last_run: progress.last_run.clone(),
            next_run: progress.next_run,
        }
    }

    /// The metrics behind `/metrics`.
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    fn progress(&self) -> MutexGuard<'_, Progress> {
        // The guarded data is plain values that are always consistent, so a
        // panic elsewhere while holding the lock does not make them unusable.
        self.shared
            .progress
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The status routes (`/healthz`, `/metrics`) over `state`.
pub fn router(state: StatusState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn healthz(State(state): State<StatusState>) -> Response {
    let health = state.health();
    let code = if health.is_healthy() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(health)).into_response()
}

async fn metrics(State(state): State<StatusState>) -> Response {
    match state.metrics().encode() {
        Ok(text) => ([(header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)], text).into_response(),
        Err(_) => {
            tracing::error!("could not encode the metrics");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "could not encode the metrics\n",
            )
                .into_response()
        }
    }
}

/// A status server bound to its address but not yet serving; lets a caller
/// bind port 0 and learn the real port before serving.
#[derive(Debug)]
pub struct StatusServer {
    listener: TcpListener,
    local_addr: SocketAddr,
    history: Option<HistoryPages>,
}

impl StatusServer {
    /// Binds `listen`; the error names `server.listen` and the address.
    pub async fn bind(listen: SocketAddr) -> std::io::Result<StatusServer> {
        let listener = TcpListener::bind(listen).await.map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("server.listen: cannot listen on {listen}: {e}"),
            )
        })?;
        let local_addr = listener.local_addr()?;
        Ok(StatusServer {
            listener,
            local_addr,
            history: None,
        })
    }

    /// Also serves the run history pages (`/`, `/runs/{id}[.csv|.json]`).
    pub fn with_history(mut self, pages: HistoryPages) -> Self {
        self.history = Some(pages);
        self
    }

    /// The address actually bound (the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` is cancelled, then finishes open requests and returns.
    pub async fn run(self, state: StatusState, shutdown: CancellationToken) -> std::io::Result<()> {
        let app = match self.history {
            Some(pages) => {
                tracing::info!(listen = %self.local_addr, "status server listening (/healthz, /metrics, run history at /)");
                router(state).merge(pages.router())
            }
            None => {
                tracing::info!(listen = %self.local_addr, "status server listening (/healthz, /metrics)");
                router(state)
            }
        };
        axum::serve(self.listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await
    }
}

/// Binds `listen` and serves `/healthz` and `/metrics` until `shutdown` is
/// cancelled. Give it its own token (cancelled after the worker stopped) to
/// keep answering while the last run finishes.
pub async fn serve(
    listen: SocketAddr,
    state: StatusState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    StatusServer::bind(listen).await?.run(state, shutdown).await
}
