//! How a run's findings are kept in SQLite (schema 6): chunks of
//! [`FINDINGS_PER_CHUNK`] findings in report order, each with the JSON
//! array of their keys and the JSON array of the findings themselves (see
//! migrations/0006_finding_chunks.sql). A row per finding cost SQLite ~1 s
//! per run at 130k findings; a run's findings are only ever read whole (a
//! report) or as their keys (the next run's new / persisting / resolved).

use super::codes::{parse_name, to_db};
use super::error::{QueryContext, StoreError};
use crate::model::{ActionKind, ActionStatus, Cause, Finding, FindingKind, FindingStatus};
use futures::TryStreamExt;
use sqlx::SqliteConnection;
use std::collections::HashSet;

/// Findings per chunk: ~0.5 MB of JSON.
const FINDINGS_PER_CHUNK: usize = 1_000;

/// One stored finding as written: the fields of [`Finding`] in order, enums
/// by their names.
type StoredFindingRef<'a> = (
    &'static str,
    Option<&'static str>,
    &'static str,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
    &'static str,
    Option<&'static str>,
    &'a str,
);

/// One stored finding as read: enums as text, so that a name this version
/// does not know is an error naming the field and the value.
#[derive(serde::Deserialize)]
struct StoredFinding(
    String,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
    String,
);

fn stored(f: &Finding) -> StoredFindingRef<'_> {
    (
        f.kind.as_str(),
        f.cause.map(Cause::as_str),
        f.status.as_str(),
        f.aad_id.as_deref(),
        f.upn.as_deref(),
        f.display_name.as_deref(),
        f.ifs_identity.as_deref(),
        f.ifs_directory_id.as_deref(),
        f.flow_user_id.as_deref(),
        f.expected_flow_user_id.as_deref(),
        f.action.as_str(),
        f.action_status.map(|s| s.as_str()),
        f.detail.as_str(),
    )
}

impl TryFrom<StoredFinding> for Finding {
    type Error = StoreError;

    fn try_from(row: StoredFinding) -> Result<Self, StoreError> {
        let StoredFinding(
            kind,
            cause,
            status,
            aad_id,
            upn,
            display_name,
            ifs_identity,
            ifs_directory_id,
            flow_user_id,
            expected_flow_user_id,
            action,
            action_status,
            detail,
        ) = row;
        Ok(Finding {
            kind: parse_name::<FindingKind>("findings.kind", &kind)?,
            cause: cause
                .map(|c| parse_name::<Cause>("findings.cause", &c))
                .transpose()?,
            status: parse_name::<FindingStatus>("findings.status", &status)?,
            aad_id,
            upn,
            display_name,
            ifs_identity,
            ifs_directory_id,
            flow_user_id,
            expected_flow_user_id,
            action: parse_name::<ActionKind>("findings.action", &action)?,
            action_status: action_status
                .map(|s| parse_name::<ActionStatus>("findings.action_status", &s))
                .transpose()?,
            detail,
        })
    }
}

fn json_error(what: &'static str) -> impl Fn(serde_json::Error) -> StoreError {
    move |e| StoreError::Corrupt {
        what,
        value: e.to_string(),
    }
}

/// Saves the findings of run `run_id` (none stored for it yet).
pub(super) async fn insert(
    conn: &mut SqliteConnection,
    run_id: i64,
    findings: &[Finding],
) -> Result<(), StoreError> {
    let mut chunks = findings.chunks(FINDINGS_PER_CHUNK).enumerate();
    let mut next = chunks.next().map(encode).transpose()?;
    while let Some((chunk_no, keys, rows)) = next.take() {
        let insert = sqlx::query(
            "INSERT INTO finding_chunks (run_id, chunk, keys, findings) VALUES (?, ?, ?, ?)",
        )
        .bind(run_id)
        .bind(to_db("finding chunk", chunk_no as u64)?)
        .bind(keys)
        .bind(rows)
        .execute(&mut *conn);
        // SQLite stores one chunk on its connection's thread while this one
        // encodes the next: the first poll of `insert` hands it over.
        let (inserted, encoded) =
            futures::join!(insert, async { chunks.next().map(encode).transpose() });
        inserted.during("saving the findings of a run")?;
        next = encoded?;
    }
    Ok(())
}

/// Chunk `chunk_no`'s keys and findings as JSON, as stored.
fn encode((chunk_no, chunk): (usize, &[Finding])) -> Result<(usize, String, String), StoreError> {
    let as_json = json_error("findings (as JSON for SQLite)");
    let keys: Vec<String> = chunk.iter().map(Finding::key).collect();
    let keys = serde_json::to_string(&keys).map_err(&as_json)?;
    let rows: Vec<StoredFindingRef<'_>> = chunk.iter().map(stored).collect();
    let rows = serde_json::to_string(&rows).map_err(&as_json)?;
    Ok((chunk_no, keys, rows))
}

/// The findings of run `run_id`, in order.
pub(super) async fn load(
    conn: &mut SqliteConnection,
    run_id: i64,
) -> Result<Vec<Finding>, StoreError> {
    let mut findings = Vec::new();
    each_chunk(
        conn,
        run_id,
        "SELECT findings FROM finding_chunks WHERE run_id = ? ORDER BY chunk",
        ("finding_chunks.findings", "reading the findings of a run"),
        |rows: Vec<StoredFinding>| {
            findings.reserve(rows.len());
            for row in rows {
                findings.push(Finding::try_from(row)?);
            }
            Ok(())
        },
    )
    .await?;
    Ok(findings)
}

/// The keys of the findings of run `run_id`.
pub(super) async fn load_keys(
    conn: &mut SqliteConnection,
    run_id: i64,
) -> Result<HashSet<String>, StoreError> {
    let mut keys = HashSet::new();
    each_chunk(
        conn,
        run_id,
        "SELECT keys FROM finding_chunks WHERE run_id = ? ORDER BY chunk",
        (
            "finding_chunks.keys",
            "reading the findings of the previous run",
        ),
        |chunk: Vec<String>| {
            keys.extend(chunk);
            Ok(())
        },
    )
    .await?;
    Ok(keys)
}

/// Hands each chunk `select` reads for run `run_id`, parsed, to `each`, one
/// chunk of text held at a time. `(what, during)`: the column and the
/// activity that errors name.
async fn each_chunk<T: serde::de::DeserializeOwned>(
    conn: &mut SqliteConnection,
    run_id: i64,
    select: &'static str,
    (what, during): (&'static str, &'static str),
    mut each: impl FnMut(Vec<T>) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut chunks = sqlx::query_scalar::<_, String>(select)
        .bind(run_id)
        .fetch(&mut *conn);
    while let Some(chunk) = chunks.try_next().await.during(during)? {
        each(serde_json::from_str(&chunk).map_err(json_error(what))?)?;
        // Let the other work of the task run (see `azure_pages::load`).
        tokio::task::yield_now().await;
    }
    Ok(())
}
