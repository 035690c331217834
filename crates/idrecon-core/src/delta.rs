//! Azure AD delta changes and how they apply to a stored snapshot (pure).
//!
//! A Graph users delta round delivers upserts and `@removed` entries; the
//! same user may appear more than once in one round, and the last entry
//! wins (docs/external-apis.md, "Delta").

use crate::model::AadUser;
use std::collections::{BTreeMap, HashMap};

/// One change from a Graph users delta round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AadChange {
    /// Added or changed: the full user (idrecon does not send `Prefer: return=minimal`).
    Upsert(AadUser),
    /// `@removed` with reason `changed` (soft-deleted) or `deleted`.
    Removed { id: String, reason: String },
}

impl AadChange {
    /// The Azure object ID the change is about.
    pub fn id(&self) -> &str {
        match self {
            AadChange::Upsert(u) => &u.id,
            AadChange::Removed { id, .. } => id,
        }
    }
}

/// Applies delta changes to a snapshot: upserts replace (or add) by object
/// ID, removals drop; when a user appears more than once the last change
/// wins. Order: existing users keep their place, new ones are appended.
pub fn apply_delta(users: Vec<AadUser>, changes: Vec<AadChange>) -> Vec<AadUser> {
    let mut slots: Vec<Option<AadUser>> = Vec::with_capacity(users.len() + changes.len());
    let mut index: HashMap<String, usize> = HashMap::with_capacity(users.len());
    for user in users {
        index.insert(user.id.to_ascii_lowercase(), slots.len());
        slots.push(Some(user));
    }
    for change in changes {
        match change {
            AadChange::Upsert(user) => match index.get(&user.id.to_ascii_lowercase()) {
                Some(&i) => slots[i] = Some(user),
                None => {
                    index.insert(user.id.to_ascii_lowercase(), slots.len());
                    slots.push(Some(user));
                }
            },
            AadChange::Removed { id, .. } => {
                if let Some(&i) = index.get(&id.to_ascii_lowercase()) {
                    slots[i] = None;
                }
            }
        }
    }
    slots.into_iter().flatten().collect()
}

/// Splits a delta round into the net upserts and the removed IDs (the last
/// change per ID wins), in ID order: what the stored snapshot must write.
pub fn split_changes(changes: &[AadChange]) -> (Vec<AadUser>, Vec<String>) {
    let mut last: BTreeMap<&str, &AadChange> = BTreeMap::new();
    for c in changes {
        last.insert(c.id(), c);
    }
    let mut upserts = Vec::new();
    let mut removed = Vec::new();
    for c in last.into_values() {
        match c {
            AadChange::Upsert(u) => upserts.push(u.clone()),
            AadChange::Removed { id, .. } => removed.push(id.clone()),
        }
    }
    (upserts, removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str, upn: &str) -> AadUser {
        AadUser {
            id: id.into(),
            user_principal_name: upn.into(),
            mail: None,
            display_name: None,
            account_enabled: true,
            employee_id: None,
            on_premises_sam_account_name: None,
            user_type: Some("Member".into()),
        }
    }

    #[test]
    fn apply_delta_last_change_wins_and_removed_drops() {
        let base = vec![user("1", "a@x"), user("2", "b@x"), user("3", "c@x")];
        let changes = vec![
            AadChange::Upsert(user("2", "b1@x")),
            AadChange::Upsert(user("4", "d@x")),
            AadChange::Removed {
                id: "3".into(),
                reason: "deleted".into(),
            },
            AadChange::Upsert(user("2", "b2@x")),
            AadChange::Removed {
                id: "4".into(),
                reason: "changed".into(),
            },
            AadChange::Upsert(user("4", "d2@x")),
            AadChange::Removed {
                id: "404".into(),
                reason: "deleted".into(),
            },
        ];
        let out = apply_delta(base, changes);
        let upns: Vec<_> = out.iter().map(|u| u.user_principal_name.as_str()).collect();
        assert_eq!(upns, ["a@x", "b2@x", "d2@x"]);
    }

    #[test]
    fn split_changes_keeps_the_last_change_per_id() {
        let changes = vec![
            AadChange::Upsert(user("2", "b@x")),
            AadChange::Removed {
                id: "2".into(),
                reason: "changed".into(),
            },
            AadChange::Upsert(user("1", "a@x")),
        ];
        let (up, removed) = split_changes(&changes);
        assert_eq!(up.len(), 1);
        assert_eq!(up[0].id, "1");
        assert_eq!(removed, ["2"]);
    }
}
