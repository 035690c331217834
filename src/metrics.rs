//! Prometheus metrics of the worker, encoded in the OpenMetrics text format
//! by `prometheus-client` (served on `GET /metrics` by [`crate::server`]).
//!
//! | metric | type | labels | meaning |
//! |---|---|---|---|
//! | `idrecon_runs_total` | counter | `status` | runs finished, by `completed` / `aborted` / `failed` |
//! | `idrecon_findings` | gauge | `kind` | findings of the last completed run, every kind present (0 when none) |
//! | `idrecon_actions_total` | counter | `status` | actions of all runs, by action status |
//! | `idrecon_source_fetch_seconds` | gauge | `source` | how long the last run took to read each source |
//! | `idrecon_source_users` | gauge | `source` | users each source delivered in the last run where it was complete |
//! | `idrecon_last_success_timestamp_seconds` | gauge | | Unix time the last completed run finished (0 before any) |

use crate::model::FindingKind;
use crate::report::{Report, RunStatus};
use crate::sources::System;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use std::sync::atomic::AtomicU64;
use strum::IntoEnumIterator;

/// The content type of [`Metrics::encode`]'s output. Prometheus asks for
/// OpenMetrics first in its `Accept` header and parses the body by this type.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabel {
    source: &'static str,
}

/// The metric registry and handles to each metric.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    runs_total: Family<StatusLabel, Counter>,
    findings: Family<KindLabel, Gauge>,
    actions_total: Family<StatusLabel, Counter>,
    source_fetch_seconds: Family<SourceLabel, Gauge<f64, AtomicU64>>,
    source_users: Family<SourceLabel, Gauge>,
    last_success_timestamp_seconds: Gauge<f64, AtomicU64>,
}

fn run_status_label(status: RunStatus) -> &'static str {
    status.as_str()
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every metric registered and every known label value
    /// present (at 0), so dashboards and alerts see stable series from the
    /// first scrape.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("idrecon");
        let runs_total = Family::<StatusLabel, Counter>::default();
        let findings = Family::<KindLabel, Gauge>::default();
        let actions_total = Family::<StatusLabel, Counter>::default();
        let source_fetch_seconds = Family::<SourceLabel, Gauge<f64, AtomicU64>>::default();
        let source_users = Family::<SourceLabel, Gauge>::default();
        let last_success_timestamp_seconds = Gauge::<f64, AtomicU64>::default();

        registry.register(
            "runs",
            "Reconciliation runs finished, by status",
            runs_total.clone(),
        );
        registry.register(
            "findings",
            "Findings of the last completed run, by kind",
            findings.clone(),
        );
        registry.register(
            "actions",
            "Actions of all runs, by action status",
            actions_total.clone(),
        );
        registry.register_with_unit(
            "source_fetch",
            "Time the last run took to read each source",
            Unit::Seconds,
            source_fetch_seconds.clone(),
        );
        registry.register(
            "source_users",
            "Users each source delivered in the last run where it was complete",
            source_users.clone(),
        );
        registry.register_with_unit(
            "last_success_timestamp",
            "Unix time the last completed run finished",
            Unit::Seconds,
            last_success_timestamp_seconds.clone(),
        );

        for status in RunStatus::iter() {
            let _ = runs_total.get_or_create(&StatusLabel {
                status: run_status_label(status),
            });
        }
        for kind in FindingKind::iter() {
            let _ = findings.get_or_create(&KindLabel {
                kind: kind.as_str(),
            });
        }

        Metrics {
            registry,
            runs_total,
            findings,
            actions_total,
            source_fetch_seconds,
            source_users,
            last_success_timestamp_seconds,
        }
    }

    /// Takes one finished run into account.
    ///
    /// Findings and source user counts are only replaced by a completed run:
    /// an aborted or failed run computed no findings from partial data, so
    /// the last trustworthy numbers stay. `fetch_seconds` is recorded for
    /// whichever sources it lists.
    pub fn record_run(&self, report: &Report, fetch_seconds: &[(System, f64)]) {
        self.runs_total
            .get_or_create(&StatusLabel {
                status: run_status_label(report.status),
            })
            .inc();
        for action in &report.actions {
            self.actions_total
                .get_or_create(&StatusLabel {
                    status: action.status.as_str(),
                })
                .inc();
        }
        for (system, seconds) in fetch_seconds {
            if seconds.is_finite() && *seconds >= 0.0 {
                self.source_fetch_seconds
                    .get_or_create(&SourceLabel {
                        source: system.as_str(),
                    })
                    .set(*seconds);
            }
        }
        if report.status != RunStatus::Completed {
            return;
        }
        for kind in FindingKind::iter() {
            let count = report.summary.by_kind.get(&kind).copied().unwrap_or(0);
            self.findings
                .get_or_create(&KindLabel {
                    kind: kind.as_str(),
                })
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }
        for system in System::iter() {
            let source = match system {
                System::Azure => &report.sources.azure,
                System::Ifs => &report.sources.ifs,
                System::Flow => &report.sources.flow,
            };
            if source.complete {
                self.source_users
                    .get_or_create(&SourceLabel {
                        source: system.as_str(),
                    })
                    .set(i64::try_from(source.users).unwrap_or(i64::MAX));
            }
        }
        let finished = report.finished_at.unwrap_or(report.started_at);
        let seconds =
            finished.timestamp() as f64 + f64::from(finished.timestamp_subsec_millis()) / 1000.0;
        self.last_success_timestamp_seconds.set(seconds);
    }

    /// The OpenMetrics text exposition (ends with `# EOF`); serve it with
    /// [`OPENMETRICS_CONTENT_TYPE`].
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}
