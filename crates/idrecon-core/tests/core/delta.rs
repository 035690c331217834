//! Applying a Graph delta round: the indexed `apply_delta` and the
//! snapshot difference `diff_snapshots` against plain reference versions,
//! on random rounds over a small pool of colliding IDs.

use compact_str::CompactString;
use idrecon_core::delta::{apply_delta, diff_snapshots, AadChange};
use idrecon_core::model::{AadUser, AadUserFields};
use proptest::prelude::*;
use proptest::sample::select;
use std::collections::HashMap;

const IDS: &[&str] = &["a-1", "A-1", "b-2", "c-3", "C-3", "d-4", "e-5"];
const UPNS: &[&str] = &["x@c", "y@c", "z@c"];

fn user(id: &str, upn: &str, enabled: bool) -> AadUser {
    AadUser::from(AadUserFields {
        id: id.into(),
        user_principal_name: upn.into(),
        mail: None,
        display_name: None,
        account_enabled: enabled,
        employee_id: None,
        on_premises_sam_account_name: None,
        user_type: Some("Member".into()),
    })
}

fn users() -> impl Strategy<Value = Vec<AadUser>> {
    prop::collection::vec(
        (select(IDS), select(UPNS), any::<bool>()).prop_map(|(i, u, e)| user(i, u, e)),
        0..8,
    )
}

fn changes() -> impl Strategy<Value = Vec<AadChange>> {
    prop::collection::vec(
        prop_oneof![
            (select(IDS), select(UPNS), any::<bool>())
                .prop_map(|(i, u, e)| AadChange::Upsert(user(i, u, e))),
            select(IDS).prop_map(|i| AadChange::Removed {
                id: i.into(),
                reason: "deleted".into()
            }),
        ],
        0..10,
    )
}

/// The plain version: a slot per user and an index of the whole snapshot
/// (IDs compared case-insensitively, the last stored user of an ID takes
/// its changes, new users appended at their first upsert).
fn reference(users: Vec<AadUser>, changes: Vec<AadChange>) -> Vec<AadUser> {
    let mut slots: Vec<Option<AadUser>> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for user in users {
        index.insert(user.id().to_ascii_lowercase(), slots.len());
        slots.push(Some(user));
    }
    for change in changes {
        match change {
            AadChange::Upsert(user) => match index.get(&user.id().to_ascii_lowercase()) {
                Some(&i) => slots[i] = Some(user),
                None => {
                    index.insert(user.id().to_ascii_lowercase(), slots.len());
                    slots.push(Some(user));
                }
            },
            AadChange::Removed { id, .. } => {
                if let Some(&i) = index.get(id.to_ascii_lowercase().as_str()) {
                    slots[i] = None;
                }
            }
        }
    }
    slots.into_iter().flatten().collect()
}

proptest! {
    #[test]
    fn apply_delta_is_the_reference(users in users(), changes in changes()) {
        prop_assert_eq!(
            apply_delta(users.clone(), changes.clone()),
            reference(users, changes)
        );
    }

    /// A complete listing (no snapshot, only upserts) takes its own path
    /// when every ID is distinct; with case variants or repeats it must not.
    #[test]
    fn a_complete_listing_is_the_reference(
        listing in prop::collection::vec(
            (select(IDS), select(UPNS), any::<bool>()).prop_map(|(i, u, e)| user(i, u, e)),
            0..6,
        )
    ) {
        let changes: Vec<AadChange> = listing.into_iter().map(AadChange::Upsert).collect();
        prop_assert_eq!(
            apply_delta(Vec::new(), changes.clone()),
            reference(Vec::new(), changes)
        );
    }

    #[test]
    fn a_snapshot_plus_its_difference_is_the_listing(stored in users(), listing in users()) {
        // The store keys users by exact ID: one user per ID on either side.
        let unique = |users: Vec<AadUser>| {
            let mut seen = std::collections::HashSet::new();
            users.into_iter().filter(|u| seen.insert(u.id().to_string())).collect::<Vec<_>>()
        };
        let (stored, listing) = (unique(stored), unique(listing));
        let (upserts, removed) = diff_snapshots(&stored, &listing);
        let mut after: HashMap<CompactString, AadUser> =
            stored.into_iter().map(|u| (u.id().into(), u)).collect();
        for id in &removed {
            prop_assert!(after.remove(id.as_str()).is_some());
        }
        for u in upserts {
            after.insert(u.id().into(), u);
        }
        let mut after: Vec<AadUser> = after.into_values().collect();
        after.sort_by(|a, b| a.id().cmp(b.id()));
        let mut want = listing;
        want.sort_by(|a, b| a.id().cmp(b.id()));
        prop_assert_eq!(after, want);
    }
}
