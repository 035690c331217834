//! Shared set-up for the `fix_*` tests: a generated tenant served by the
//! real simulator on port 0, a config file pointing at it, a real SQLite
//! store in a temporary directory, and helpers to run reconcile in-process
//! or as the real binary.

use idrecon::clock::SystemClock;
use idrecon::config::Config;
use idrecon::job::{RunError, RunOutcome, RunRequest};
use idrecon::model::{Action, ActionKind, ActionStatus, FindingKind, FlowUser};
use idrecon::report::{Report, Trigger};
use idrecon::sim::faults::FaultPlan;
use idrecon::sim::generate::{generate, GeneratedTenant};
use idrecon::sim::{SimHandle, Simulator};
use idrecon::sources::http::HttpSettings;
use idrecon::sources::live::LiveSources;
use idrecon::sources::retry::RetryPolicy;
use idrecon::store::{JournalEntry, JournalState, SqliteStore, Store};
use idrecon::worker::{live_sources, reconcile};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tempfile::TempDir;

/// One simulated tenant with its config file and store.
pub struct Env {
    pub sim: Simulator,
    pub handle: SimHandle,
    pub generated: GeneratedTenant,
    pub dir: TempDir,
    pub store_url: String,
    pub db_path: PathBuf,
    pub config_path: PathBuf,
    pub config_text: String,
}

/// Config edits for a test (applied to the simulator's rendered config).
#[derive(Clone, Debug, Default)]
pub struct Tweaks {
    pub deactivate_orphans: bool,
    pub max_changes: Option<u32>,
    pub max_change_percent: Option<f64>,
}

impl Env {
    /// Generates `people` people with `seed`, serves them with `faults`.
    pub async fn start(people: usize, seed: u64, faults: &str, tweaks: Tweaks) -> Env {
        let generated = generate(people, seed);
        let faults: FaultPlan = faults.parse().expect("fault spec");
        let sim = Simulator::start(generated.tenant.clone(), faults, ([127, 0, 0, 1], 0).into())
            .await
            .expect("simulator starts");
        let handle = sim.handle();
        let dir = tempfile::tempdir().expect("temp dir");
        let db_path = dir.path().join("idrecon.db");
        let store_url = format!("sqlite://{}", db_path.display());
        let mut text = sim.config_toml(&store_url);
        // The simulator's config mails on findings; these tests do not mail.
        text = text.replace("send = \"on_findings\"", "send = \"never\"");
        if tweaks.deactivate_orphans {
            text = replace_once(
                &text,
                "deactivate_orphans = false",
                "deactivate_orphans = true",
            );
        }
        if let Some(n) = tweaks.max_changes {
            text = replace_once(&text, "max_changes = 25", &format!("max_changes = {n}"));
        }
        if let Some(p) = tweaks.max_change_percent {
            text = replace_once(
                &text,
                "max_change_percent = 5.0",
                &format!("max_change_percent = {p:.1}"),
            );
        }
        let config_path = dir.path().join("idrecon.toml");
        std::fs::write(&config_path, &text).expect("write config");
        Env {
            sim,
            handle,
            generated,
            dir,
            store_url,
            db_path,
            config_path,
            config_text: text,
        }
    }

    pub fn config(&self) -> Config {
        Config::from_toml_str(&self.config_text, &HashMap::new(), self.dir.path())
            .expect("config loads")
    }

    pub async fn store(&self) -> SqliteStore {
        SqliteStore::open(&self.store_url)
            .await
            .expect("store opens")
    }

    /// One run in this process, as `idrecon reconcile` does it but with
    /// quick retries (a fault that never clears fails in well under a second).
    pub async fn run(&self, request: RunRequest) -> RunOutcome {
        self.try_run(request).await.expect("run starts")
    }

    /// [`Env::run`], returning a run that could not start as `Err`.
    pub async fn try_run(&self, request: RunRequest) -> Result<RunOutcome, RunError> {
        let cfg = self.config();
        let store = self.store().await;
        let sources = LiveSources::with_settings(&cfg, &quick_http()).expect("sources");
        let never_stop = || false;
        let outcome = reconcile(
            &cfg,
            &store,
            &sources,
            &SystemClock,
            &never_stop,
            None,
            &request,
        )
        .await;
        store.close().await;
        outcome
    }

    /// The live connectors with the production retry policy.
    pub fn live_sources(&self) -> LiveSources {
        live_sources(&self.config()).expect("sources")
    }

    pub async fn report_only(&self) -> Report {
        self.run(RunRequest::manual()).await.report
    }

    pub async fn apply(&self, max_changes: Option<u32>) -> Report {
        self.run(apply_request(max_changes)).await.report
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

    /// Every journal entry, oldest first.
    pub async fn journal(&self) -> Vec<JournalEntry> {
        journal_entries(&self.db_path).await
    }

    /// Total (renames, deactivations) the simulator performed.
    pub fn writes(&self) -> (u64, u64) {
        self.handle.write_counts()
    }
}

/// Timeouts as in production, retries quick and few.
pub fn quick_http() -> HttpSettings {
    HttpSettings {
        retry: RetryPolicy {
            max_retries: 2,
            min_delay: std::time::Duration::from_millis(10),
            max_delay: std::time::Duration::from_millis(50),
            max_total_wait: std::time::Duration::from_secs(2),
        },
        ..HttpSettings::default()
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

pub fn apply_request(max_changes: Option<u32>) -> RunRequest {
    RunRequest {
        trigger: Trigger::Manual,
        apply: true,
        full: false,
        max_changes_override: max_changes,
        person: None,
    }
}

fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "config has no '{from}'");
    text.replacen(from, to, 1)
}

/// The planned renames (from, to) of a report, in plan order.
pub fn planned_renames(report: &Report) -> Vec<(String, String)> {
    actions_of(report, ActionKind::Rename, ActionStatus::Planned)
        .into_iter()
        .map(|a| (a.flow_user_id, a.new_flow_user_id.expect("rename target")))
        .collect()
}

pub fn actions_of(report: &Report, kind: ActionKind, status: ActionStatus) -> Vec<Action> {
    report
        .actions
        .iter()
        .filter(|a| a.kind == kind && a.status == status)
        .cloned()
        .collect()
}

/// Keys of the generator's expected findings of `kind`.
pub fn expected_keys(generated: &GeneratedTenant, kind: FindingKind) -> Vec<String> {
    let mut keys: Vec<String> = generated
        .expected
        .iter()
        .filter(|e| e.kind == kind)
        .map(|e| e.key.clone())
        .collect();
    keys.sort();
    keys
}

/// Keys of a report's findings of `kind`.
pub fn finding_keys(report: &Report, kind: FindingKind) -> Vec<String> {
    let mut keys: Vec<String> = report
        .findings
        .iter()
        .filter(|f| f.kind == kind)
        .map(|f| f.key())
        .collect();
    keys.sort();
    keys
}

/// `users` with `renames` applied, sorted by ID: what Flow must look like.
pub fn renamed(users: &[FlowUser], renames: &[(String, String)]) -> Vec<FlowUser> {
    let map: HashMap<&str, &str> = renames
        .iter()
        .map(|(f, t)| (f.as_str(), t.as_str()))
        .collect();
    let mut out: Vec<FlowUser> = users
        .iter()
        .cloned()
        .map(|mut u| {
            if let Some(to) = map.get(u.user_id.as_str()) {
                u.user_id = (*to).to_string();
            }
            u
        })
        .collect();
    out.sort_by(|a, b| a.user_id.cmp(&b.user_id));
    out
}

pub fn sorted(mut users: Vec<FlowUser>) -> Vec<FlowUser> {
    users.sort_by(|a, b| a.user_id.cmp(&b.user_id));
    users
}

/// Journal entries in `state`.
pub fn in_state(journal: &[JournalEntry], state: JournalState) -> Vec<&JournalEntry> {
    journal.iter().filter(|e| e.state == state).collect()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}
