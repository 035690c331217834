//! Shared set-up of the end-to-end tests: a generated tenant served by the
//! real simulator on 127.0.0.1:0, a real SQLite store in a temporary
//! directory, the configuration the simulator renders (parsed by
//! `Config::from_toml_str`), the live connectors with short retry timings,
//! and runs through `worker::reconcile_now`.

use idrecon::config::Config;
use idrecon::error::AppError;
use idrecon::job::{RunOutcome, RunRequest};
use idrecon::model::{Cause, FindingKind};
use idrecon::report::Report;
use idrecon::sim::generate::{generate, ExpectedFinding};
use idrecon::sim::{FaultPlan, SimHandle, SimSettings, Simulator};
use idrecon::sources::http::HttpSettings;
use idrecon::sources::live::LiveSources;
use idrecon::sources::retry::RetryPolicy;
use idrecon::store::SqliteStore;
use idrecon::worker::reconcile_now;
use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;
use tempfile::TempDir;

/// One finding as the tests compare them: (kind, cause, key).
pub type FindingId = (FindingKind, Option<Cause>, String);

/// Retries fast enough for tests, generous enough for `Retry-After: 1`
/// (and an HTTP-date a second or two ahead).
pub fn test_http_settings() -> HttpSettings {
    HttpSettings {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(5),
        retry: RetryPolicy {
            max_retries: 4,
            min_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
            max_total_wait: Duration::from_secs(5),
        },
    }
}

/// A simulator, a store and the connectors pointing at it.
pub struct App {
    pub sim: Simulator,
    pub handle: SimHandle,
    /// Holds the store and any files the test writes.
    pub dir: TempDir,
    pub store_url: String,
    pub store: SqliteStore,
    /// The simulator's configuration as rendered (before test edits).
    pub config_text: String,
    pub cfg: Config,
    pub sources: LiveSources,
    /// What the generator says a default run must find.
    pub expected: Vec<ExpectedFinding>,
}

/// Builds an [`App`] step by step.
pub struct AppBuilder {
    people: usize,
    seed: u64,
    faults: FaultPlan,
    settings: SimSettings,
    env: HashMap<String, String>,
    http: HttpSettings,
}

impl AppBuilder {
    pub fn faults(mut self, spec: &str) -> Self {
        self.faults = FaultPlan::from_str(spec).expect("valid fault spec");
        self
    }

    pub fn settings(mut self, f: impl FnOnce(&mut SimSettings)) -> Self {
        f(&mut self.settings);
        self
    }

    /// A config override as `IDRECON__SECTION__KEY` would give it.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.insert(key.to_string(), value.to_string());
        self
    }

    pub fn http(mut self, http: HttpSettings) -> Self {
        self.http = http;
        self
    }

    pub async fn start(self) -> App {
        let generated = generate(self.people, self.seed);
        let loopback: SocketAddr = ([127, 0, 0, 1], 0).into();
        let sim =
            Simulator::start_with_settings(generated.tenant, self.faults, self.settings, loopback)
                .await
                .expect("simulator starts");
        let dir = tempfile::tempdir().expect("temp dir");
        let store_url = format!("sqlite://{}", dir.path().join("e2e.db").display());
        let config_text = sim.config_toml(&store_url);
        let cfg = Config::from_toml_str(&config_text, &self.env, dir.path())
            .expect("the simulator's config is valid");
        let store = SqliteStore::open(&store_url).await.expect("store opens");
        let sources = LiveSources::with_settings(&cfg, &self.http).expect("connectors build");
        App {
            handle: sim.handle(),
            sim,
            dir,
            store_url,
            store,
            config_text,
            cfg,
            sources,
            expected: generated.expected,
        }
    }
}

/// Starts building an app for a generated tenant.
pub fn app(people: usize, seed: u64) -> AppBuilder {
    AppBuilder {
        people,
        seed,
        faults: FaultPlan::default(),
        settings: SimSettings::default(),
        env: HashMap::new(),
        http: test_http_settings(),
    }
}

/// Starts an app with no faults and default settings.
pub async fn spawn_app(people: usize, seed: u64) -> App {
    app(people, seed).start().await
}

impl App {
    /// One report-mode run.
    pub async fn run(&self) -> Report {
        self.run_request(&RunRequest::manual()).await.report
    }

    /// A run as asked; panics only when the run could not start at all.
    pub async fn run_request(&self, request: &RunRequest) -> RunOutcome {
        self.try_run(request).await.expect("run starts")
    }

    pub async fn try_run(&self, request: &RunRequest) -> Result<RunOutcome, AppError> {
        reconcile_now(&self.cfg, &self.store, &self.sources, request).await
    }

    /// Replaces the configuration (and rebuilds the connectors from it).
    pub fn reconfigure(&mut self, env: &HashMap<String, String>) {
        self.cfg = Config::from_toml_str(&self.config_text, env, self.dir.path())
            .expect("edited config is valid");
        self.sources =
            LiveSources::with_settings(&self.cfg, &test_http_settings()).expect("connectors build");
    }

    /// A path inside the app's temporary directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn expected_ids(&self) -> BTreeSet<FindingId> {
        self.expected
            .iter()
            .map(|f| (f.kind, f.cause, f.key.clone()))
            .collect()
    }
}

/// The findings of a report as comparable ids.
pub fn finding_ids(report: &Report) -> BTreeSet<FindingId> {
    report
        .findings
        .iter()
        .map(|f| (f.kind, f.cause, f.key()))
        .collect()
}

/// Panics with both differences listed line by line when the sets differ.
pub fn assert_same_findings(what: &str, got: &BTreeSet<FindingId>, want: &BTreeSet<FindingId>) {
    if got == want {
        return;
    }
    let show = |set: Vec<&FindingId>| {
        set.iter()
            .map(|(k, c, key)| {
                format!(
                    "    {} / {} / {key}",
                    k.as_str(),
                    c.map_or("-".to_string(), |c| format!("{c:?}"))
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let extra: Vec<_> = got.difference(want).collect();
    let missing: Vec<_> = want.difference(got).collect();
    panic!(
        "{what}: findings differ ({} found, {} expected)\n  found but not expected ({}):\n{}\n  expected but not found ({}):\n{}",
        got.len(),
        want.len(),
        extra.len(),
        show(extra),
        missing.len(),
        show(missing)
    );
}

/// The findings of a report by status (`new` / `persisting`).
pub fn keys_with_status(
    report: &Report,
    status: idrecon::model::FindingStatus,
) -> BTreeSet<String> {
    report
        .findings
        .iter()
        .filter(|f| f.status == status)
        .map(|f| f.key())
        .collect()
}

/// [`assert_same_findings`] against the generator's expectation: exactly
/// the expected findings, nothing more, nothing less.
pub fn assert_expected_findings(what: &str, app: &App, report: &Report) {
    assert_same_findings(what, &finding_ids(report), &app.expected_ids());
}
