//! What a scheduled-worker test drives: the parts a [`Worker`] borrows (the
//! test app's config, store and sources, its schedule, a manual clock and
//! the status `/healthz` shows), built once instead of in every test.

use crate::app_support::TestApp;
use crate::clock_support::ManualClock;
use chrono::{DateTime, Utc};
use idrecon::config::Config;
use idrecon::schedule::Schedule;
use idrecon::server::StatusState;
use idrecon::sources::live::LiveSources;
use idrecon::store::SqliteStore;
use idrecon::worker::Worker;
use std::sync::Arc;

pub struct WorkerParts {
    pub cfg: Config,
    pub store: SqliteStore,
    pub sources: LiveSources,
    pub schedule: Schedule,
    pub clock: Arc<ManualClock>,
    pub status: StatusState,
}

impl WorkerParts {
    /// The parts for `env`, the clock standing at `now`.
    pub async fn new(env: &TestApp, now: DateTime<Utc>) -> Self {
        let cfg = env.config();
        let schedule = cfg.schedule.clone();
        WorkerParts {
            store: env.store().await,
            sources: env.sources(),
            schedule,
            clock: ManualClock::new(now),
            status: StatusState::new(),
            cfg,
        }
    }

    pub fn worker(&self) -> Worker<'_> {
        Worker {
            config: &self.cfg,
            store: &self.store,
            sources: &self.sources,
            schedule: &self.schedule,
            clock: self.clock.as_ref(),
            status: self.status.clone(),
        }
    }
}
