//! The one way the tests start idrecon against the simulator, in the spirit
//! of zero2prod's `spawn_app`: a generated tenant served by the real
//! simulator on 127.0.0.1:0, the configuration the simulator renders
//! (edited as the test asks) written into a temporary directory next to a
//! real SQLite store, and the calls the tests make on it: runs in this
//! process through `worker::reconcile`, the real binary, the store, the
//! journal, the simulator's write counts.

use idrecon::clock::SystemClock;
use idrecon::config::Config;
use idrecon::job::{RunError, RunOutcome, RunRequest};
use idrecon::model::{Cause, FindingKind};
use idrecon::report::{Report, Trigger};
use idrecon::sim::generate::{generate, GeneratedTenant};
use idrecon::sim::{FaultPlan, SimHandle, SimSettings, Simulator};
use idrecon::sources::http::HttpSettings;
use idrecon::sources::live::LiveSources;
use idrecon::sources::retry::RetryPolicy;
use idrecon::store::{JournalEntry, SqliteStore, Store};
use idrecon::worker::reconcile;
use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::str::FromStr;
use std::time::Duration;
use tempfile::TempDir;

/// One finding as the tests compare them: (kind, cause, key).
pub type FindingId = (FindingKind, Option<Cause>, String);

/// A config text edit of a test.
type Edit<'a> = Box<dyn FnOnce(String) -> String + 'a>;

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
        ..HttpSettings::default()
    }
}

/// The simulator, a temporary directory with the config file and the
/// store, and the configuration as idrecon reads it.
pub struct TestApp {
    pub sim: Simulator,
    pub handle: SimHandle,
    /// The tenant the simulator serves and what a default run must find.
    pub generated: GeneratedTenant,
    /// Holds the config file, the store and any file the test writes.
    pub dir: TempDir,
    pub store_url: String,
    pub db_path: PathBuf,
    pub config_path: PathBuf,
    /// The config file's text (the simulator's, with the test's edits).
    pub config_text: String,
    /// The `IDRECON__…` overrides of the test.
    env: HashMap<String, String>,
    /// Retries of the connectors of in-process runs.
    http: HttpSettings,
}

/// Builds a [`TestApp`] step by step.
pub struct TestAppBuilder<'a> {
    people: usize,
    seed: u64,
    faults: FaultPlan,
    settings: SimSettings,
    edits: Vec<Edit<'a>>,
    env: HashMap<String, String>,
    http: HttpSettings,
}

impl<'a> TestAppBuilder<'a> {
    /// Faults the simulator injects (its `--faults` syntax).
    pub fn faults(mut self, spec: &str) -> Self {
        self.faults = FaultPlan::from_str(spec).expect("valid fault spec");
        self
    }

    pub fn settings(mut self, f: impl FnOnce(&mut SimSettings)) -> Self {
        f(&mut self.settings);
        self
    }

    /// Edits the config file's text (edits apply in order).
    pub fn edit(mut self, f: impl FnOnce(String) -> String + 'a) -> Self {
        self.edits.push(Box::new(f));
        self
    }

    /// A config override as `IDRECON__SECTION__KEY` would give it.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.insert(key.to_string(), value.to_string());
        self
    }

    /// Retries of the connectors of in-process runs.
    pub fn http(mut self, http: HttpSettings) -> Self {
        self.http = http;
        self
    }

    pub async fn start(self) -> TestApp {
        let generated = generate(self.people, self.seed);
        let loopback: SocketAddr = ([127, 0, 0, 1], 0).into();
        let sim = Simulator::start_with_settings(
            generated.tenant.clone(),
            self.faults,
            self.settings,
            loopback,
        )
        .await
        .expect("simulator starts");
        let dir = tempfile::tempdir().expect("temp dir");
        let db_path = dir.path().join("idrecon.db");
        let store_url = format!("sqlite://{}", db_path.display());
        let config_text = self
            .edits
            .into_iter()
            .fold(sim.config_toml(&store_url), |text, edit| edit(text));
        let config_path = dir.path().join("idrecon.toml");
        std::fs::write(&config_path, &config_text).expect("config written");
        TestApp {
            handle: sim.handle(),
            sim,
            generated,
            dir,
            store_url,
            db_path,
            config_path,
            config_text,
            env: self.env,
            http: self.http,
        }
    }
}

impl TestApp {
    /// Starts building an app for `people` generated people (seed `seed`).
    pub fn builder<'a>(people: usize, seed: u64) -> TestAppBuilder<'a> {
        TestAppBuilder {
            people,
            seed,
            faults: FaultPlan::default(),
            settings: SimSettings::default(),
            edits: Vec::new(),
            env: HashMap::new(),
            http: test_http_settings(),
        }
    }

    /// The configuration idrecon runs with (read when asked: a test may
    /// write a config idrecon refuses and only run the binary on it).
    pub fn config(&self) -> Config {
        Config::from_toml_str(&self.config_text, &self.env, self.dir.path())
            .expect("the test's config is valid")
    }

    /// Replaces the `IDRECON__…` overrides of the configuration.
    pub fn reconfigure(&mut self, env: &HashMap<String, String>) {
        self.env = env.clone();
    }

    /// The store (opened, and created and migrated the first time).
    pub async fn store(&self) -> SqliteStore {
        SqliteStore::open(&self.store_url)
            .await
            .expect("store opens")
    }

    /// The live connectors with the test's retries.
    pub fn sources(&self) -> LiveSources {
        LiveSources::with_settings(&self.config(), &self.http).expect("connectors build")
    }

    /// One run in this process, as `idrecon reconcile` does it but with
    /// the test's retries; panics only when it could not start at all.
    pub async fn reconcile(&self, request: &RunRequest) -> RunOutcome {
        self.try_reconcile(request).await.expect("run starts")
    }

    /// [`TestApp::reconcile`], returning a run that could not start as `Err`.
    pub async fn try_reconcile(&self, request: &RunRequest) -> Result<RunOutcome, RunError> {
        let cfg = self.config();
        let store = self.store().await;
        let sources = self.sources();
        let never_stop = || false;
        let outcome = reconcile(
            &cfg,
            &store,
            &sources,
            &SystemClock,
            &never_stop,
            None,
            request,
        )
        .await;
        store.close().await;
        outcome
    }

    /// One report-mode run.
    pub async fn report_only(&self) -> Report {
        self.reconcile(&RunRequest::manual()).await.report
    }

    /// One run with `--apply` (and `--max-changes`).
    pub async fn apply(&self, max_changes: Option<u32>) -> Report {
        self.reconcile(&apply_request(max_changes)).await.report
    }

    /// `idrecon --config FILE ARGS…` as a finished child process.
    /// (Waits without holding up the simulator: call from a multi-thread runtime.)
    pub fn binary(&self, args: &[&str]) -> Output {
        finish(self.command(args))
    }

    /// `idrecon --config FILE ARGS…`, not started.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_idrecon"));
        cmd.arg("--config")
            .arg(&self.config_path)
            .args(["--log-format", "json"])
            .args(args)
            .env_remove("RUST_LOG")
            .env_remove("IDRECON_CONFIG");
        cmd
    }

    /// Every journal entry (all runs), oldest first.
    pub async fn journal(&self) -> Vec<JournalEntry> {
        journal_entries(&self.db_path).await
    }

    /// Total (renames, deactivations) the simulator performed.
    pub fn writes(&self) -> (u64, u64) {
        self.handle.write_counts()
    }

    /// A path inside the app's temporary directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// What the generator says a default run must find.
    pub fn expected_ids(&self) -> BTreeSet<FindingId> {
        self.generated
            .expected
            .iter()
            .map(|f| (f.kind, f.cause, f.key.clone()))
            .collect()
    }
}

/// Starts an app with no faults, the simulator's config and default settings.
pub async fn spawn_app(people: usize, seed: u64) -> TestApp {
    TestApp::builder(people, seed).start().await
}

/// A manual run with `--apply` (and `--max-changes`).
pub fn apply_request(max_changes: Option<u32>) -> RunRequest {
    RunRequest {
        trigger: Trigger::Manual,
        apply: true,
        full: false,
        max_changes_override: max_changes,
        person: None,
        allow_drop: false,
    }
}

/// Runs `cmd` to its end; the runtime's other tasks (the simulator) go on.
pub fn finish(mut cmd: Command) -> Output {
    tokio::task::block_in_place(|| cmd.output()).expect("idrecon binary runs")
}

/// Reads every journal entry (all runs) straight from the database file.
pub async fn journal_entries(db: &Path) -> Vec<JournalEntry> {
    let store = SqliteStore::open(&format!("sqlite://{}", db.display()))
        .await
        .expect("store opens");
    let runs = store.list_runs(10_000).await.expect("runs");
    let mut all = Vec::new();
    for r in runs {
        all.extend(store.journal_for_run(r.id).await.expect("journal"));
    }
    store.close().await;
    all.sort_by_key(|e| e.id);
    all
}

/// Replaces the first `from` (which must occur) with `to`.
pub fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "config has no {from:?}");
    text.replacen(from, to, 1)
}
