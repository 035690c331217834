//! Executes a plan against Flow with a journal that survives a crash.
//!
//! Every action is written to the store as `pending` before it is sent and
//! marked `applied` or `failed` when Flow answers. A run killed at any
//! instant leaves `pending` entries; [`resume_pending`] settles them by
//! looking at Flow's current state instead of blindly sending again, so no
//! action is ever sent twice or lost.
//!
//! When Flow's answer leaves the outcome open (the connection dropped, a
//! 5xx from a gateway), the action is checked against Flow's current users
//! before it is called failed; when even that check fails, the entry stays
//! `pending` and the next applying run settles it.
//!
//! While applying, the run lock's lease is renewed as time goes on; a run
//! that finds it no longer holds the lock stops sending at once.

use crate::clock::Clock;
use crate::model::{Action, ActionKind, ActionStatus, FlowUser, NormalizedId};
use crate::report::Report;
use crate::sources::{FlowWriteError, FlowWriter, SourceErrorKind};
use crate::store::{JournalEntry, JournalState, LockHolder, Store, StoreError};
use std::collections::HashMap;

/// Why applying could not go on (single action failures are not errors:
/// they are recorded on the action and the run goes on with the next).
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("reading Flow's current users: {0}")]
    Flow(String),
    /// The run lock could not be renewed: another run may be applying now,
    /// so this one stopped sending.
    #[error("the run lock was lost, so no further action was sent: {0}")]
    LockLost(String),
}

/// The run lock held while applying and how long each renewal lasts.
#[derive(Clone, Copy, Debug)]
pub struct HeldLock<'a> {
    pub holder: &'a LockHolder,
    pub lease: chrono::Duration,
}

impl HeldLock<'_> {
    /// The lease is renewed once a quarter of it has passed.
    fn renew_after(&self) -> chrono::Duration {
        self.lease / 4
    }
}

/// How applying should treat Flow's IDs and the run lock.
#[derive(Clone, Copy, Debug)]
pub struct ApplyOptions<'a> {
    /// `flow.case_insensitive_ids`: how Flow compares user IDs.
    pub flow_case_insensitive: bool,
    /// The run lock: renewed as time goes on, and named in every journal
    /// write (the store refuses them once another run holds the lock).
    pub lock: HeldLock<'a>,
}

/// Sends every `planned` action of `report` in order, journalling each one,
/// and records the outcome on the action and on its finding. `should_stop`
/// is checked between actions: once it says stop, the remaining actions are
/// left `skipped` (the current one always finishes and is journalled).
///
/// On `Err` (store failure, lock lost) every action not yet sent is marked
/// `skipped` with the reason; actions already sent keep their outcome.
pub async fn execute(
    store: &dyn Store,
    writer: &dyn FlowWriter,
    report: &mut Report,
    clock: &dyn Clock,
    should_stop: &(dyn Fn() -> bool + Send + Sync),
    options: &ApplyOptions<'_>,
) -> Result<ApplyCounts, ApplyError> {
    let mut counts = ApplyCounts::default();
    let mut renewed_at = clock.now();
    for seq in 0..report.actions.len() {
        if report.actions[seq].status != ActionStatus::Planned {
            continue;
        }
        if should_stop() {
            skip_rest(
                report,
                seq,
                "not sent: idrecon was asked to stop",
                &mut counts,
            );
            break;
        }
        let lock = &options.lock;
        let now = clock.now();
        if now - renewed_at >= lock.renew_after() {
            if let Err(e) = store.renew_lock(lock.holder, now, lock.lease).await {
                let reason = format!("not sent: the run lock was lost ({e})");
                skip_rest(report, seq, &reason, &mut counts);
                return Err(ApplyError::LockLost(e.to_string()));
            }
            renewed_at = now;
        }
        let action = report.actions[seq].clone();
        let journal_id = match store
            .journal_pending(lock.holder, report.run_id, seq as i64, &action, clock.now())
            .await
        {
            Ok(id) => id,
            Err(e @ StoreError::LockLost { .. }) => {
                let reason = format!("not sent: the run lock was lost ({e})");
                skip_rest(report, seq, &reason, &mut counts);
                return Err(ApplyError::LockLost(e.to_string()));
            }
            Err(e) => {
                let reason = format!("not sent: the action could not be journalled ({e})");
                skip_rest(report, seq, &reason, &mut counts);
                return Err(e.into());
            }
        };
        let sent = send_checked(writer, &action, options.flow_case_insensitive, false).await;
        let (status, error) = match &sent {
            Sent::Applied => (ActionStatus::Applied, None),
            Sent::Failed(e) => (ActionStatus::Failed, Some(e.clone())),
            Sent::Unknown(e) => (ActionStatus::Failed, Some(e.clone())),
        };
        let journalled = match &sent {
            Sent::Applied => Some((JournalState::Applied, None)),
            Sent::Failed(e) => Some((JournalState::Failed, Some(e.as_str()))),
            // Left pending: the next applying run checks Flow and settles it.
            Sent::Unknown(_) => None,
        };
        if let Some((state, journal_error)) = journalled {
            if let Err(e) = store
                .journal_finish(lock.holder, journal_id, state, journal_error, clock.now())
                .await
            {
                // Flow has answered; the entry stays pending and the next
                // applying run settles it by looking at Flow.
                record(report, seq, &action, status, error.as_deref(), &mut counts);
                if matches!(e, StoreError::LockLost { .. }) {
                    let reason = format!("not sent: the run lock was lost ({e})");
                    skip_rest(report, seq + 1, &reason, &mut counts);
                    return Err(ApplyError::LockLost(e.to_string()));
                }
                let reason = format!("not sent: the journal could not be updated ({e})");
                skip_rest(report, seq + 1, &reason, &mut counts);
                return Err(e.into());
            }
        }
        record(report, seq, &action, status, error.as_deref(), &mut counts);
    }
    Ok(counts)
}

/// Records the outcome of the action at `seq` on it and on its finding.
fn record(
    report: &mut Report,
    seq: usize,
    action: &Action,
    status: ActionStatus,
    error: Option<&str>,
    counts: &mut ApplyCounts,
) {
    match status {
        ActionStatus::Applied => {
            counts.applied += 1;
            tracing::info!(kind = action.kind.as_str(), from = %action.flow_user_id, to = ?action.new_flow_user_id, "applied");
        }
        _ => {
            counts.failed += 1;
            tracing::warn!(kind = action.kind.as_str(), from = %action.flow_user_id, to = ?action.new_flow_user_id, error = ?error, "action failed");
        }
    }
    let entry = &mut report.actions[seq];
    entry.status = status;
    entry.error = error.map(str::to_string);
    mark_finding(report, action, status, error);
}

/// Marks every still-planned action from `from` on as skipped with `reason`.
fn skip_rest(report: &mut Report, from: usize, reason: &str, counts: &mut ApplyCounts) {
    for action in report.actions.iter_mut().skip(from) {
        if action.status == ActionStatus::Planned {
            action.status = ActionStatus::Skipped;
            action.error = Some(reason.to_string());
            counts.skipped += 1;
        }
    }
    let skipped: Vec<Action> = report
        .actions
        .iter()
        .skip(from)
        .filter(|a| a.status == ActionStatus::Skipped && a.error.as_deref() == Some(reason))
        .cloned()
        .collect();
    for action in skipped {
        mark_finding(report, &action, ActionStatus::Skipped, None);
    }
}

/// How many actions ended in each state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ApplyCounts {
    pub applied: u64,
    /// Refused by Flow, or with an outcome not known yet (journal left pending).
    pub failed: u64,
    pub skipped: u64,
}

/// What sending one action came to.
enum Sent {
    Applied,
    /// Flow refused, or surely did not act; the service's message.
    Failed(String),
    /// Flow may or may not have acted and checking failed too.
    Unknown(String),
}

/// Sends `action`; when the answer leaves open whether Flow acted (or
/// `verify_every_failure` is set), checks Flow's current users before
/// calling it failed.
async fn send_checked(
    writer: &dyn FlowWriter,
    action: &Action,
    flow_case_insensitive: bool,
    verify_every_failure: bool,
) -> Sent {
    let error = match send(writer, action).await {
        Ok(()) => return Sent::Applied,
        Err(e) => e,
    };
    if !(verify_every_failure || outcome_is_open(&error)) {
        return Sent::Failed(error.to_string());
    }
    match writer.list().await {
        Ok(users) => {
            let index = FlowIndex::new(users, flow_case_insensitive);
            match index.settle(action) {
                Verdict::Done => {
                    tracing::warn!(from = %action.flow_user_id, error = %error, "Flow answered with an error but shows the action done");
                    Sent::Applied
                }
                Verdict::Send | Verdict::Impossible(_) => Sent::Failed(error.to_string()),
            }
        }
        Err(list_error) => Sent::Unknown(format!(
            "{error}; whether Flow acted is unknown (checking failed: {list_error}); the next applying run checks Flow and settles it"
        )),
    }
}

/// Whether Flow may have acted although the call failed: the connection
/// broke or a server error came back. 404/409/429 and bad requests are
/// answers that it did not.
fn outcome_is_open(error: &FlowWriteError) -> bool {
    match error {
        FlowWriteError::NotFound { .. } | FlowWriteError::Conflict { .. } => false,
        FlowWriteError::Other(e) => match e.kind {
            SourceErrorKind::Transport => true,
            SourceErrorKind::Http => e.status.is_none_or(|s| s >= 500),
            _ => false,
        },
    }
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
    /// Cannot be completed any more (source gone, target taken), or Flow refused it.
    Failed(String),
    /// Sent now, but whether Flow acted is still unknown; left pending.
    StillPending(String),
}

/// Settles actions left `pending` by a run that was killed. Each is checked
/// against Flow's current users first and only sent when Flow does not show
/// it done, so nothing is sent twice and nothing is lost. A send that fails
/// is checked against Flow once more (a request of the killed run may have
/// landed late).
pub async fn resume_pending(
    store: &dyn Store,
    holder: &LockHolder,
    writer: &dyn FlowWriter,
    clock: &dyn Clock,
    flow_case_insensitive: bool,
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
    let mut index = FlowIndex::new(users, flow_case_insensitive);
    let mut out = Vec::with_capacity(pending.len());
    for entry in pending {
        let resumed = match index.settle(&entry.action) {
            Verdict::Done => Resumed::AlreadyApplied,
            Verdict::Impossible(reason) => Resumed::Failed(reason),
            Verdict::Send => {
                match send_checked(writer, &entry.action, flow_case_insensitive, true).await {
                    Sent::Applied => Resumed::SentNow,
                    Sent::Failed(e) => Resumed::Failed(e),
                    Sent::Unknown(e) => Resumed::StillPending(e),
                }
            }
        };
        let journalled = match &resumed {
            Resumed::AlreadyApplied | Resumed::SentNow => Some((JournalState::Applied, None)),
            Resumed::Failed(reason) => Some((JournalState::Failed, Some(reason.as_str()))),
            Resumed::StillPending(_) => None,
        };
        if let Some((state, error)) = journalled {
            store
                .journal_finish(holder, entry.id, state, error, clock.now())
                .await?;
            if state == JournalState::Applied {
                index.apply(&entry.action);
            }
        }
        tracing::info!(journal_id = entry.id, run_id = entry.run_id, outcome = ?resumed, "resumed journalled action");
        out.push((entry, resumed));
    }
    Ok(out)
}

/// A one-line account of what [`resume_pending`] did, for the report.
pub fn describe_resumed(resumed: &[(JournalEntry, Resumed)]) -> Option<String> {
    if resumed.is_empty() {
        return None;
    }
    let mut runs: Vec<i64> = resumed.iter().map(|(e, _)| e.run_id).collect();
    runs.sort_unstable();
    runs.dedup();
    let count = |f: fn(&Resumed) -> bool| resumed.iter().filter(|(_, r)| f(r)).count();
    let already = count(|r| matches!(r, Resumed::AlreadyApplied));
    let sent = count(|r| matches!(r, Resumed::SentNow));
    let failed = count(|r| matches!(r, Resumed::Failed(_)));
    let open = count(|r| matches!(r, Resumed::StillPending(_)));
    let runs = runs
        .iter()
        .map(|r| format!("#{r}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut text = format!(
        "{} action(s) left pending in the journal by earlier run(s) {runs} were checked against Flow before this run: {already} had been applied, {sent} were sent now, {failed} failed",
        resumed.len()
    );
    if open > 0 {
        text.push_str(&format!(
            ", {open} still could not be confirmed and stay pending for the next applying run"
        ));
    }
    text.push('.');
    Some(text)
}

enum Verdict {
    Done,
    Send,
    Impossible(String),
}

/// Flow's users by ID under Flow's own comparison.
struct FlowIndex {
    users: HashMap<NormalizedId, FlowUser>,
    case_insensitive: bool,
}

impl FlowIndex {
    fn new(users: Vec<FlowUser>, case_insensitive: bool) -> Self {
        let mut index = FlowIndex {
            users: HashMap::with_capacity(users.len()),
            case_insensitive,
        };
        for u in users {
            let key = index.key(u.user_id());
            index.users.insert(key, u);
        }
        index
    }

    fn key(&self, raw: &str) -> NormalizedId {
        if self.case_insensitive {
            NormalizedId::new(raw)
        } else {
            NormalizedId::case_sensitive(raw)
        }
    }

    /// Whether Flow shows `action` done, still to do, or no longer possible.
    fn settle(&self, action: &Action) -> Verdict {
        let from = self.key(&action.flow_user_id);
        match action.kind {
            ActionKind::Rename => {
                let Some(target) = action.new_flow_user_id.as_deref() else {
                    return Verdict::Impossible("rename without a target ID".into());
                };
                let to = self.key(target);
                let source = self.users.get(&from);
                let dest = self.users.get(&to);
                if from == to {
                    // A case-only rename: done when the exact new spelling is there.
                    return match source {
                        Some(u) if u.user_id() == target => Verdict::Done,
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
            ActionKind::Deactivate => match self.users.get(&from) {
                Some(u) if !u.active() => Verdict::Done,
                Some(_) => Verdict::Send,
                None => Verdict::Impossible(format!(
                    "Flow user {} no longer exists",
                    action.flow_user_id
                )),
            },
            ActionKind::None => Verdict::Done,
        }
    }

    /// Records a settled action so later entries see Flow as it is now.
    fn apply(&mut self, action: &Action) {
        let from = self.key(&action.flow_user_id);
        match action.kind {
            ActionKind::Rename => {
                if let Some(target) = action.new_flow_user_id.clone() {
                    if let Some(mut user) = self.users.remove(&from) {
                        user.edit(|fields| fields.user_id = target.as_str().into());
                        let key = self.key(&target);
                        self.users.insert(key, user);
                    }
                }
            }
            ActionKind::Deactivate => {
                if let Some(u) = self.users.get_mut(&from) {
                    u.edit(|fields| fields.active = false);
                }
            }
            ActionKind::None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::FlowUserFields;
    use crate::sources::{SourceError, System};

    fn user(id: &str, active: bool) -> FlowUser {
        FlowUser::from(FlowUserFields {
            user_id: id.into(),
            name: None,
            email: None,
            active,
            user_type: "Full".into(),
            sync_source: None,
        })
    }

    fn rename(from: &str, to: &str) -> Action {
        Action {
            kind: ActionKind::Rename,
            flow_user_id: from.into(),
            new_flow_user_id: Some(to.into()),
            status: ActionStatus::Planned,
            error: None,
        }
    }

    fn deactivate(id: &str) -> Action {
        Action {
            kind: ActionKind::Deactivate,
            flow_user_id: id.into(),
            new_flow_user_id: None,
            status: ActionStatus::Planned,
            error: None,
        }
    }

    fn verdict(users: &[FlowUser], ci: bool, action: &Action) -> &'static str {
        match FlowIndex::new(users.to_vec(), ci).settle(action) {
            Verdict::Done => "done",
            Verdict::Send => "send",
            Verdict::Impossible(_) => "impossible",
        }
    }

    #[test]
    fn a_rename_is_done_when_only_the_target_exists() {
        let a = rename("jdoe", "jdoe@contoso.com");
        assert_eq!(verdict(&[user("jdoe", true)], true, &a), "send");
        assert_eq!(verdict(&[user("JDOE@contoso.com", true)], true, &a), "done");
        assert_eq!(
            verdict(
                &[user("jdoe", true), user("jdoe@contoso.com", true)],
                true,
                &a
            ),
            "impossible"
        );
        assert_eq!(verdict(&[user("someone", true)], true, &a), "impossible");
    }

    #[test]
    fn a_case_only_rename_is_done_when_the_exact_spelling_is_there() {
        let a = rename("jdoe@contoso.com", "JDoe@contoso.com");
        assert_eq!(verdict(&[user("jdoe@contoso.com", true)], true, &a), "send");
        assert_eq!(verdict(&[user("JDoe@contoso.com", true)], true, &a), "done");
        assert_eq!(verdict(&[], true, &a), "impossible");
    }

    #[test]
    fn a_case_sensitive_flow_keeps_ids_differing_in_case_apart() {
        // Two distinct users; the rename of `abc` to `Abc` is not done
        // just because `ABC` exists.
        let users = [user("abc", true), user("ABC", true)];
        let a = rename("abc", "Abc");
        assert_eq!(verdict(&users, false, &a), "send");
        let done = [user("Abc", true), user("ABC", true)];
        assert_eq!(verdict(&done, false, &a), "done");
        // Under case-insensitive comparison `abc` and `ABC` are one ID.
        assert_eq!(verdict(&users, true, &a), "send");
    }

    #[test]
    fn a_deactivation_is_done_when_the_user_is_inactive() {
        let a = deactivate("leaver");
        assert_eq!(verdict(&[user("leaver", true)], true, &a), "send");
        assert_eq!(verdict(&[user("LEAVER", false)], true, &a), "done");
        assert_eq!(verdict(&[], true, &a), "impossible");
    }

    #[test]
    fn settled_actions_update_the_index_for_later_entries() {
        // A chain: b → c first, then a → b.
        let mut index = FlowIndex::new(vec![user("a", true), user("b", true)], true);
        let first = rename("b", "c");
        let second = rename("a", "b");
        assert!(matches!(index.settle(&second), Verdict::Impossible(_)));
        assert!(matches!(index.settle(&first), Verdict::Send));
        index.apply(&first);
        assert!(matches!(index.settle(&second), Verdict::Send));
        index.apply(&second);
        // IDs alone cannot tell the renamed `a` (now `b`) from the old `b`:
        // an entry checked this late is never sent again, only reported.
        assert!(matches!(index.settle(&first), Verdict::Impossible(_)));
    }

    #[test]
    fn only_broken_connections_and_server_errors_leave_the_outcome_open() {
        let http = |status: Option<u16>, kind| {
            let mut e = SourceError::new(System::Flow, kind, "x");
            e.status = status;
            FlowWriteError::Other(e)
        };
        assert!(outcome_is_open(&http(None, SourceErrorKind::Transport)));
        assert!(outcome_is_open(&http(Some(502), SourceErrorKind::Http)));
        assert!(!outcome_is_open(&http(Some(400), SourceErrorKind::Http)));
        assert!(!outcome_is_open(&http(
            Some(429),
            SourceErrorKind::Throttled
        )));
        assert!(!outcome_is_open(&http(Some(401), SourceErrorKind::Auth)));
        assert!(!outcome_is_open(&FlowWriteError::NotFound {
            user_id: "a".into(),
            message: None,
        }));
        assert!(!outcome_is_open(&FlowWriteError::Conflict {
            user_id: "b".into(),
            message: Some("user exists".into()),
        }));
    }
}
