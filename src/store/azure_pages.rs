//! How a stored Azure snapshot's users are laid out in SQLite (schema 5):
//! a full listing as pages of [`USERS_PER_PAGE`] users, each one JSON array,
//! plus one row per user that a delta changed since (`azure_user_changes`,
//! which wins over the pages; see migrations/0005_snapshot_pages.sql). Writing and reading a million users one row
//! each cost SQLite ~3 s and ~2 s; pages cost a fraction of that, and the
//! snapshot is only ever read whole. A delta still writes only what changed.

use super::codes::to_db;
use super::error::{QueryContext, StoreError};
use crate::model::{AadUser, AadUserRef};
use compact_str::CompactString;
use futures::TryStreamExt;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};
use std::borrow::Cow;
use std::collections::HashMap;

/// Users per page: ~0.8 MB of JSON, small enough that reading holds one
/// page of text at a time next to the users, large enough that a million
/// users are ~200 rows.
const USERS_PER_PAGE: usize = 5_000;

/// The changes are folded into new pages once they are more than this share
/// of the snapshot (and at least [`MIN_CHANGES_TO_COMPACT`]): every load
/// reads them one by one, so they must stay few; folding rewrites all pages.
const COMPACT_SHARE: f64 = 0.05;
const MIN_CHANGES_TO_COMPACT: i64 = 1_000;

/// Changed users per INSERT (three values each, under SQLite's limit of
/// 32,766 bound values).
const CHANGES_PER_STATEMENT: usize = 10_000;

/// One stored Azure user: the fields of [`AadUser`] in order, as an array,
/// borrowed from the page's text where it holds no escapes.
#[derive(serde::Deserialize)]
struct StoredAadUser<'a>(
    #[serde(borrow)] Cow<'a, str>,
    #[serde(borrow)] Cow<'a, str>,
    #[serde(borrow)] Option<Cow<'a, str>>,
    #[serde(borrow)] Option<Cow<'a, str>>,
    bool,
    #[serde(borrow)] Option<Cow<'a, str>>,
    #[serde(borrow)] Option<Cow<'a, str>>,
    #[serde(borrow)] Option<Cow<'a, str>>,
);

/// [`StoredAadUser`] as it is written, borrowed from the user.
type StoredAadUserRef<'a> = (
    &'a str,
    &'a str,
    Option<&'a str>,
    Option<&'a str>,
    bool,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
);

fn stored(u: &AadUser) -> StoredAadUserRef<'_> {
    (
        u.id(),
        u.user_principal_name(),
        u.mail(),
        u.display_name(),
        u.account_enabled(),
        u.employee_id(),
        u.on_premises_sam_account_name(),
        u.user_type(),
    )
}

impl From<StoredAadUser<'_>> for AadUser {
    fn from(row: StoredAadUser<'_>) -> Self {
        let StoredAadUser(
            id,
            user_principal_name,
            mail,
            display_name,
            account_enabled,
            employee_id,
            on_premises_sam_account_name,
            user_type,
        ) = &row;
        AadUser::from(AadUserRef {
            id,
            user_principal_name,
            mail: mail.as_deref(),
            display_name: display_name.as_deref(),
            account_enabled: *account_enabled,
            employee_id: employee_id.as_deref(),
            on_premises_sam_account_name: on_premises_sam_account_name.as_deref(),
            user_type: user_type.as_deref(),
        })
    }
}

fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt {
        what: "Azure snapshot users (as JSON for SQLite)",
        value: e.to_string(),
    })
}

fn corrupt(e: serde_json::Error) -> StoreError {
    StoreError::Corrupt {
        what: "azure_user_pages",
        value: e.to_string(),
    }
}

/// Writes `users` (a complete listing) as the pages of `scope`, replacing
/// its pages and changes. Of two users with the same object ID the later
/// one is kept, as a delta's later update wins.
pub(super) async fn write_pages(
    conn: &mut SqliteConnection,
    scope: &str,
    users: &[AadUser],
) -> Result<(), StoreError> {
    clear(conn, scope).await?;
    let mut ordered: Vec<&AadUser> = users.iter().collect();
    // Stable, so of equal IDs the later one comes last and is kept.
    ordered.sort_by(|a, b| a.id().cmp(b.id()));
    let mut last_of_each: Vec<&AadUser> = Vec::with_capacity(ordered.len());
    for u in ordered {
        match last_of_each.last_mut() {
            Some(prev) if prev.id() == u.id() => *prev = u,
            _ => last_of_each.push(u),
        }
    }
    for (page, chunk) in last_of_each.chunks(USERS_PER_PAGE).enumerate() {
        let json = to_json(&chunk.iter().map(|u| stored(u)).collect::<Vec<_>>())?;
        sqlx::query("INSERT INTO azure_user_pages (scope, page, count, users) VALUES (?, ?, ?, ?)")
            .bind(scope)
            .bind(to_db("snapshot page", page as u64)?)
            .bind(to_db("users in a snapshot page", chunk.len() as u64)?)
            .bind(json)
            .execute(&mut *conn)
            .await
            .during("saving Azure snapshot users")?;
    }
    Ok(())
}

/// Removes the pages and changes of `scope` (not its `azure_snapshots` row).
pub(super) async fn clear(conn: &mut SqliteConnection, scope: &str) -> Result<(), StoreError> {
    for statement in [
        "DELETE FROM azure_user_pages WHERE scope = ?",
        "DELETE FROM azure_user_changes WHERE scope = ?",
    ] {
        sqlx::query(statement)
            .bind(scope)
            .execute(&mut *conn)
            .await
            .during("clearing the previous Azure snapshot")?;
    }
    Ok(())
}

/// Records a delta of `scope`: `upserts` (later duplicates win), then
/// `removed_ids`. Folds all changes into new pages when they have grown
/// too many (see [`COMPACT_SHARE`]).
pub(super) async fn write_changes(
    conn: &mut SqliteConnection,
    scope: &str,
    upserts: &[AadUser],
    removed_ids: &[String],
) -> Result<(), StoreError> {
    let mut rows: Vec<(&str, Option<String>)> = Vec::with_capacity(upserts.len());
    for u in upserts {
        rows.push((u.id(), Some(to_json(&stored(u))?)));
    }
    rows.extend(removed_ids.iter().map(|id| (id.as_str(), None)));
    for chunk in rows.chunks(CHANGES_PER_STATEMENT) {
        let mut qb =
            QueryBuilder::<Sqlite>::new("INSERT INTO azure_user_changes (scope, id, user) ");
        qb.push_values(chunk, |mut row, (id, user)| {
            row.push_bind(scope)
                .push_bind(*id)
                .push_bind(user.as_deref());
        });
        // Rows go in order, so a later change of the same user wins.
        qb.push(" ON CONFLICT (scope, id) DO UPDATE SET user = excluded.user");
        qb.build()
            .persistent(false)
            .execute(&mut *conn)
            .await
            .during("saving the changes of an Azure delta")?;
    }
    compact_if_many(conn, scope).await
}

async fn compact_if_many(conn: &mut SqliteConnection, scope: &str) -> Result<(), StoreError> {
    let (changes, paged): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM azure_user_changes WHERE scope = ?1), \
         (SELECT coalesce(sum(count), 0) FROM azure_user_pages WHERE scope = ?1)",
    )
    .bind(scope)
    .fetch_one(&mut *conn)
    .await
    .during("counting the Azure snapshot changes")?;
    if changes < MIN_CHANGES_TO_COMPACT || (changes as f64) <= COMPACT_SHARE * paged as f64 {
        return Ok(());
    }
    tracing::debug!(
        scope,
        changes,
        paged,
        "folding the Azure snapshot changes into new pages"
    );
    let users = load(conn, scope).await?;
    write_pages(conn, scope, &users).await
}

/// Every user of `scope`, ordered by object ID: the pages with the changes
/// applied.
pub(super) async fn load(
    conn: &mut SqliteConnection,
    scope: &str,
) -> Result<Vec<AadUser>, StoreError> {
    // Sized up front: growing a million users by doubling would copy them
    // and hold two buffers at once.
    let (paged, changed): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT coalesce(sum(count), 0) FROM azure_user_pages WHERE scope = ?1), \
         (SELECT count(*) FROM azure_user_changes WHERE scope = ?1)",
    )
    .bind(scope)
    .fetch_one(&mut *conn)
    .await
    .during("counting the Azure snapshot users")?;
    let capacity = usize::try_from(paged.saturating_add(changed)).unwrap_or(0);
    let mut users: Vec<AadUser> = Vec::with_capacity(capacity);
    {
        // One page of text at a time.
        let mut pages = sqlx::query_scalar::<_, String>(
            "SELECT users FROM azure_user_pages WHERE scope = ? ORDER BY page",
        )
        .bind(scope)
        .fetch(&mut *conn);
        while let Some(page) = pages
            .try_next()
            .await
            .during("reading the Azure snapshot users")?
        {
            let rows: Vec<StoredAadUser> = serde_json::from_str(&page).map_err(corrupt)?;
            users.extend(rows.into_iter().map(AadUser::from));
            // The next page is often ready at once, and then nothing here
            // waits: without a yield, a run's sources, fetched in the same
            // task meanwhile, would stall until every page is parsed.
            tokio::task::yield_now().await;
        }
    }
    if changed > 0 {
        let changes: String = sqlx::query_scalar(
            "SELECT json_group_array(json_array(id, json(user))) \
             FROM azure_user_changes WHERE scope = ?",
        )
        .bind(scope)
        .fetch_one(&mut *conn)
        .await
        .during("reading the Azure snapshot changes")?;
        let changes: Vec<(CompactString, Option<StoredAadUser<'_>>)> =
            serde_json::from_str(&changes).map_err(corrupt)?;
        apply_changes(&mut users, changes);
    }
    Ok(users)
}

/// `users` (ordered by object ID) with `changes` applied: a changed user
/// replaces the stored one, a new one is added, a removed one goes.
fn apply_changes(
    users: &mut Vec<AadUser>,
    changes: Vec<(CompactString, Option<StoredAadUser<'_>>)>,
) {
    let mut changed: HashMap<CompactString, Option<AadUser>> = changes
        .into_iter()
        .map(|(id, user)| (id, user.map(AadUser::from)))
        .collect();
    users.retain_mut(|u| match changed.remove(u.id()) {
        None => true,
        Some(None) => false,
        Some(Some(new)) => {
            *u = new;
            true
        }
    });
    users.extend(changed.into_values().flatten());
    // Stable and run-aware: the pages' order plus a short tail costs
    // about one pass.
    users.sort_by(|a, b| a.id().cmp(b.id()));
}
