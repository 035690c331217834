//! Executes a plan against Flow with a journal that survives a crash.
//!
//! Every action is written to the store as `pending` before it is sent and
//! marked `applied` or `failed` when Flow answers. A run killed at any
//! instant leaves `pending` entries; [`resume_pending`] settles them by
//! looking at Flow's current state instead of blindly sending again, so no
//! action is ever sent twice or lost.

use crate::model::{Action, ActionKind, ActionStatus, FlowUser, NormalizedId};
use crate::report::Report;
use crate::sources::{FlowWriteError, FlowWriter};
use crate::store::{JournalEntry, JournalState, Store, StoreError};
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// Why applying could not go on (single action failures are not errors:
/// they are recorded on the action and the run goes on with the next).
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("reading Flow's current users: {0}")]
    Flow(String),
}

/// Sends every `planned` action of `report` in order, journalling each one,
/// and records the outcome on the action and on its finding. `should_stop`
/// is checked between actions: once it says stop, the remaining actions are
/// left `skipped` (the current one always finishes and is journalled).
pub async fn execute(
    store: &dyn Store,
    writer: &dyn FlowWriter,
    report: &mut Report,
    clock: &(dyn Fn() -> DateTime<Utc> + Send + Sync),
    should_stop: &(dyn Fn() -> bool + Send + Sync),
) -> Result<ApplyCounts, ApplyError> {
    let mut counts = ApplyCounts::default();
    for seq in 0..report.actions.len() {
        if report.actions[seq].status != ActionStatus::Planned {
            continue;
        }
        if should_stop() {
            let action = &mut report.actions[seq];
            action.status = ActionStatus::Skipped;
            action.error = Some("not sent: idrecon was asked to stop".into());
            counts.skipped += 1;
            continue;
        }
        let action = report.actions[seq].clone();
        let journal_id = store
            .journal_pending(report.run_id, seq as i64, &action, clock())
            .await?;
        let result = send(writer, &action).await;
        let (status, error) = match result {
            Ok(()) => (ActionStatus::Applied, None),
            Err(e) => (ActionStatus::Failed, Some(e.to_string())),
        };
        let state = if status == ActionStatus::Applied {
            JournalState::Applied
        } else {
            JournalState::Failed
        };
        store
            .journal_finish(journal_id, state, error.as_deref(), clock())
            .await?;
        match status {
            ActionStatus::Applied => {
                counts.applied += 1;
                tracing::info!(kind = action.kind.as_str(), from = %action.flow_user_id, to = ?action.new_flow_user_id, "applied");
            }
            _ => {
                counts.failed += 1;
                tracing::warn!(kind = action.kind.as_str(), from = %action.flow_user_id, error = ?error, "action failed");
            }
        }
        let entry = &mut report.actions[seq];
        entry.status = status;
        entry.error = error.clone();
        mark_finding(report, &action, status, error.as_deref());
    }
    Ok(counts)
}

/// How many actions ended in each state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ApplyCounts {
    pub applied: u64,
    pub failed: u64,
    pub skipped: u64,
}

async fn send(writer: &dyn FlowWriter, action: &Action) -> Result<(), FlowWriteError> {
    match action.kind {
        ActionKind::Rename => {
            let Some(target) = action.new_flow_user_id.as_deref() else {
                return Err(FlowWriteError::Other(crate::sources::SourceError::new(
                    crate::sources::System::Flow,
                    crate::sources::SourceErrorKind::Config,
                    "rename without a target ID",
                )));
            };
            writer.rename(&action.flow_user_id, target).await
        }
        ActionKind::Deactivate => writer.deactivate(&action.flow_user_id).await,
        ActionKind::None => Ok(()),
    }
}

fn mark_finding(report: &mut Report, action: &Action, status: ActionStatus, error: Option<&str>) {
    for f in report.findings.iter_mut() {
        if f.action == action.kind
            && f.flow_user_id.as_deref() == Some(action.flow_user_id.as_str())
        {
            f.action_status = Some(status);
            if let Some(e) = error {
                if !f.detail.is_empty() {
                    f.detail.push(' ');
                }
                f.detail.push_str(&format!("Flow refused: {e}"));
            }
        }
    }
}

/// What resuming found for one journal entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resumed {
    /// Flow already shows the change: it was sent before the crash.
    AlreadyApplied,
    /// Not yet done: sent now.
    SentNow,
    /// Cannot be completed any more (source gone, target taken).
    Failed(String),
}

/// Settles actions left `pending` by a run that was killed. Each is checked
/// against Flow's current users first and only sent when Flow does not show
/// it done, so nothing is sent twice and nothing is lost.
pub async fn resume_pending(
    store: &dyn Store,
    writer: &dyn FlowWriter,
    clock: &(dyn Fn() -> DateTime<Utc> + Send + Sync),
) -> Result<Vec<(JournalEntry, Resumed)>, ApplyError> {
    let pending = store.pending_journal().await?;
    if pending.is_empty() {
        return Ok(Vec::new());
    }
    tracing::warn!(
        count = pending.len(),
        "resuming actions left pending by an interrupted run"
    );
    let users = writer
        .list()
        .await
        .map_err(|e| ApplyError::Flow(e.to_string()))?;
    let mut index: HashMap<NormalizedId, FlowUser> = users
        .into_iter()
        .map(|u| (NormalizedId::new(&u.user_id), u))
        .collect();
    let mut out = Vec::with_capacity(pending.len());
    for entry in pending {
        let verdict = settle(&entry.action, &index);
        let resumed = match verdict {
            Verdict::Done => Resumed::AlreadyApplied,
            Verdict::Impossible(reason) => Resumed::Failed(reason),
            Verdict::Send => match send(writer, &entry.action).await {
                Ok(()) => Resumed::SentNow,
                Err(e) => Resumed::Failed(e.to_string()),
            },
        };
        let (state, error) = match &resumed {
            Resumed::AlreadyApplied | Resumed::SentNow => (JournalState::Applied, None),
            Resumed::Failed(reason) => (JournalState::Failed, Some(reason.clone())),
        };
        store
            .journal_finish(entry.id, state, error.as_deref(), clock())
            .await?;
        if state == JournalState::Applied {
            apply_to_index(&mut index, &entry.action);
        }
        tracing::info!(journal_id = entry.id, run_id = entry.run_id, outcome = ?resumed, "resumed journalled action");
        out.push((entry, resumed));
    }
    Ok(out)
}

enum Verdict {
    Done,
    Send,
    Impossible(String),
}

fn settle(action: &Action, index: &HashMap<NormalizedId, FlowUser>) -> Verdict {
    let from = NormalizedId::new(&action.flow_user_id);
    match action.kind {
        ActionKind::Rename => {
            let Some(target) = action.new_flow_user_id.as_deref() else {
                return Verdict::Impossible("rename without a target ID".into());
            };
            let to = NormalizedId::new(target);
            let source = index.get(&from);
            let dest = index.get(&to);
            if from == to {
                // A case-only rename: done when the exact new spelling is there.
                return match source {
                    Some(u) if u.user_id == target => Verdict::Done,
                    Some(_) => Verdict::Send,
                    None => Verdict::Impossible(format!(
                        "Flow user {} no longer exists",
                        action.flow_user_id
                    )),
                };
            }
            match (source, dest) {
                (None, Some(_)) => Verdict::Done,
                (Some(_), None) => Verdict::Send,
                (None, None) => Verdict::Impossible(format!(
                    "neither {} nor {target} exists in Flow any more",
                    action.flow_user_id
                )),
                (Some(_), Some(_)) => Verdict::Impossible(format!(
                    "{target} is now taken by another Flow user; not renaming {}",
                    action.flow_user_id
                )),
            }
        }
        ActionKind::Deactivate => match index.get(&from) {
            Some(u) if !u.active => Verdict::Done,
            Some(_) => Verdict::Send,
            None => Verdict::Impossible(format!(
                "Flow user {} no longer exists",
                action.flow_user_id
            )),
        },
        ActionKind::None => Verdict::Done,
    }
}

fn apply_to_index(index: &mut HashMap<NormalizedId, FlowUser>, action: &Action) {
    let from = NormalizedId::new(&action.flow_user_id);
    match action.kind {
        ActionKind::Rename => {
            if let (Some(mut user), Some(target)) =
                (index.remove(&from), action.new_flow_user_id.clone())
            {
                user.user_id = target.clone();
                index.insert(NormalizedId::new(&target), user);
            }
        }
        ActionKind::Deactivate => {
            if let Some(u) = index.get_mut(&from) {
                u.active = false;
            }
        }
        ActionKind::None => {}
    }
}
