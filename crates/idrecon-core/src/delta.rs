//! Azure AD delta changes and how they apply to a stored snapshot (pure).
//!
//! A Graph users delta round delivers upserts and `@removed` entries; the
//! same user may appear more than once in one round, and the last entry
//! wins (docs/external-apis.md, "Delta").

use crate::model::AadUser;
use hashbrown::hash_table::{Entry, HashTable};
use rustc_hash::FxBuildHasher;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::BuildHasher;

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
            AadChange::Upsert(u) => u.id(),
            AadChange::Removed { id, .. } => id,
        }
    }
}

/// Applies delta changes to a snapshot: upserts replace (or add) by object
/// ID, removals drop; when a user appears more than once the last change
/// wins. Order: existing users keep their place, new ones are appended (in
/// the order of their first upsert).
///
/// Only the changed IDs are indexed, never the whole snapshot; an empty
/// round returns the snapshot as it is, and a round of distinct new users
/// (an initial full round) becomes the snapshot in place, without a second
/// copy of the users.
pub fn apply_delta(mut users: Vec<AadUser>, changes: Vec<AadChange>) -> Vec<AadUser> {
    const NONE: usize = usize::MAX;
    if changes.is_empty() {
        return users;
    }
    if users.is_empty()
        && changes.iter().all(|c| matches!(c, AadChange::Upsert(_)))
        && ids_distinct(&changes)
    {
        // A complete listing (no snapshot yet), each user once: the users
        // as they came. Checked without the map below, which at a million
        // users was ~150 MiB (a lower-cased ID string and an entry each).
        return upserted(changes).collect();
    }
    /// What the round says about one (lower-cased) ID.
    struct Net {
        /// The number of its last change: the one that counts.
        last: usize,
        /// The number of its first upsert: the place of a new user.
        first_upsert: usize,
        /// The stored user it applies to (the last one with this ID).
        stored: usize,
    }
    let mut net: HashMap<String, Net> = HashMap::with_capacity(changes.len());
    let mut only_upserts = true;
    for (n, change) in changes.iter().enumerate() {
        let upsert = matches!(change, AadChange::Upsert(_));
        only_upserts &= upsert;
        let entry = net.entry(change.id().to_ascii_lowercase()).or_insert(Net {
            last: n,
            first_upsert: NONE,
            stored: NONE,
        });
        entry.last = n;
        if upsert && entry.first_upsert == NONE {
            entry.first_upsert = n;
        }
    }
    let mut key = String::new();
    let mut any_stored = false;
    for (i, user) in users.iter().enumerate() {
        key.clear();
        key.push_str(user.id());
        key.make_ascii_lowercase();
        if let Some(entry) = net.get_mut(key.as_str()) {
            entry.stored = i;
            any_stored = true;
        }
    }
    if only_upserts && !any_stored && net.len() == changes.len() {
        // Distinct new users, each once: appended as they came.
        drop(net);
        users.extend(upserted(changes));
        return users;
    }
    let mut removed = Vec::new();
    let mut added = Vec::new();
    for (n, change) in changes.into_iter().enumerate() {
        key.clear();
        key.push_str(change.id());
        key.make_ascii_lowercase();
        let Some(entry) = net.get(key.as_str()) else {
            continue;
        };
        if entry.last != n {
            continue; // a later change of this ID counts
        }
        match change {
            AadChange::Upsert(user) if entry.stored != NONE => users[entry.stored] = user,
            AadChange::Upsert(user) => added.push((entry.first_upsert, user)),
            AadChange::Removed { .. } if entry.stored != NONE => removed.push(entry.stored),
            AadChange::Removed { .. } => {}
        }
    }
    if !removed.is_empty() {
        let mut gone = vec![false; users.len()];
        for i in removed {
            gone[i] = true;
        }
        let mut i = 0;
        users.retain(|_| {
            let keep = !gone[i];
            i += 1;
            keep
        });
    }
    added.sort_unstable_by_key(|(n, _)| *n);
    users.extend(added.into_iter().map(|(_, user)| user));
    users
}

/// The users of the upserts among `changes`, in order.
fn upserted(changes: Vec<AadChange>) -> impl Iterator<Item = AadUser> {
    changes.into_iter().filter_map(|change| match change {
        AadChange::Upsert(user) => Some(user),
        AadChange::Removed { .. } => None,
    })
}

/// No two changes are about the same ID (compared ASCII case-insensitively,
/// as the map of [`apply_delta`] does): a table of change numbers hashed by
/// the lower-cased ID, 4 bytes a slot and no strings.
fn ids_distinct(changes: &[AadChange]) -> bool {
    let Ok(n) = u32::try_from(changes.len()) else {
        return false; // the general path decides
    };
    let hash = |id: &str, scratch: &mut String| {
        scratch.clear();
        scratch.push_str(id);
        scratch.make_ascii_lowercase();
        FxBuildHasher.hash_one(scratch.as_str())
    };
    let id = |c: u32| changes[c as usize].id();
    let mut seen: HashTable<u32> = HashTable::with_capacity(changes.len());
    let mut scratch = String::new();
    for c in 0..n {
        let entry = seen.entry(
            hash(id(c), &mut scratch),
            |&other| id(other).eq_ignore_ascii_case(id(c)),
            |&other| hash(id(other), &mut String::new()),
        );
        match entry {
            Entry::Occupied(_) => return false,
            Entry::Vacant(slot) => {
                slot.insert(c);
            }
        }
    }
    true
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

/// What turns the stored snapshot `stored` into the complete listing
/// `listing`: the users that are new or differ in any field (upserts, in
/// listing order) and the IDs of stored users the listing no longer has
/// (in stored order). IDs are compared exactly, as the store keys them. A
/// full listing thus rewrites only what changed.
pub fn diff_snapshots(stored: &[AadUser], listing: &[AadUser]) -> (Vec<AadUser>, Vec<String>) {
    let before: HashMap<&str, &AadUser> = stored.iter().map(|u| (u.id(), u)).collect();
    let upserts = listing
        .iter()
        .filter(|u| before.get(u.id()) != Some(u))
        .cloned()
        .collect();
    let now: HashSet<&str> = listing.iter().map(|u| u.id()).collect();
    let removed = stored
        .iter()
        .filter(|u| !now.contains(u.id()))
        .map(|u| u.id().to_string())
        .collect();
    (upserts, removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AadUserFields;

    fn user(id: &str, upn: &str) -> AadUser {
        AadUser::from(AadUserFields {
            id: id.into(),
            user_principal_name: upn.into(),
            mail: None,
            display_name: None,
            account_enabled: true,
            employee_id: None,
            on_premises_sam_account_name: None,
            user_type: Some("Member".into()),
        })
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
        let upns: Vec<_> = out.iter().map(|u| u.user_principal_name()).collect();
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
        assert_eq!(up[0].id(), "1");
        assert_eq!(removed, ["2"]);
    }

    #[test]
    fn diff_snapshots_names_only_what_changed() {
        let stored = vec![user("1", "a@x"), user("2", "b@x"), user("3", "c@x")];
        let mut disabled = user("2", "b@x");
        disabled.edit(|fields| fields.account_enabled = false);
        let listing = vec![user("1", "a@x"), disabled.clone(), user("4", "d@x")];
        let (upserts, removed) = diff_snapshots(&stored, &listing);
        assert_eq!(upserts, vec![disabled, user("4", "d@x")]);
        assert_eq!(removed, ["3"]);
        // Applying the diff to the stored snapshot gives the listing.
        let mut changes: Vec<AadChange> = upserts.into_iter().map(AadChange::Upsert).collect();
        changes.extend(removed.into_iter().map(|id| AadChange::Removed {
            id,
            reason: "deleted".into(),
        }));
        assert_eq!(apply_delta(stored.clone(), changes), listing);
        assert_eq!(diff_snapshots(&stored, &stored), (vec![], vec![]));
    }
}
