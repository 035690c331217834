//! Set-up of the fixing tests: a [`TestApp`] whose config mails nothing and
//! carries the test's fix limits, runs with quick retries, and helpers to
//! read plans, the journal and the binary's output.

use crate::app_support::{replace_once, TestApp};
use idrecon::model::{Action, ActionKind, ActionStatus, FindingKind, FlowUser};
use idrecon::report::Report;
use idrecon::sim::generate::GeneratedTenant;
use idrecon::sources::http::HttpSettings;
use idrecon::sources::retry::RetryPolicy;
use idrecon::store::{JournalEntry, JournalState};
use std::collections::HashMap;
use std::process::Output;

/// Config edits for a test (applied to the simulator's rendered config).
#[derive(Clone, Debug, Default)]
pub struct Tweaks {
    pub deactivate_orphans: bool,
    pub max_changes: Option<u32>,
    pub max_change_percent: Option<f64>,
}

/// `people` generated people (seed `seed`) served with `faults`, the
/// config edited by `tweaks`; in-process runs retry quickly.
pub async fn fix_app(people: usize, seed: u64, faults: &str, tweaks: Tweaks) -> TestApp {
    TestApp::builder(people, seed)
        .faults(faults)
        .http(quick_http())
        .edit(move |text| tweaks.apply(text))
        .start()
        .await
}

impl Tweaks {
    /// The simulator's config text with these edits.
    fn apply(&self, text: String) -> String {
        // The simulator's config mails on findings; these tests do not mail.
        let mut text = text.replace("send = \"on_findings\"", "send = \"never\"");
        if self.deactivate_orphans {
            text = replace_once(
                &text,
                "deactivate_orphans = false",
                "deactivate_orphans = true",
            );
        }
        if let Some(n) = self.max_changes {
            text = replace_once(&text, "max_changes = 25", &format!("max_changes = {n}"));
        }
        if let Some(p) = self.max_change_percent {
            text = replace_once(
                &text,
                "max_change_percent = 5.0",
                &format!("max_change_percent = {p:.1}"),
            );
        }
        text
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
            if let Some(to) = map.get(u.user_id()) {
                u.edit(|fields| fields.user_id = (*to).into());
            }
            u
        })
        .collect();
    out.sort_by(|a, b| a.user_id().cmp(b.user_id()));
    out
}

pub fn sorted(mut users: Vec<FlowUser>) -> Vec<FlowUser> {
    users.sort_by(|a, b| a.user_id().cmp(b.user_id()));
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
