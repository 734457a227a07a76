//! The runs table: one row per run segment, keyed by `(workflow_id,
//! first_seq)`, written in the transaction of every append from
//! [`AppendPlan::runs`](crate::store::AppendPlan::runs). It is an index of the
//! history, never its truth: whenever it disagrees with the events (a row
//! tampered with, a history written before schema version 2), it is rebuilt
//! from them, reading from the latest run it knows.

use sqlx::sqlite::SqliteConnection;

use super::errors::backend;
use sqlx::Row;

use super::rows::{column, run_from_row, to_u64};
use super::{read_events, stored_head};
use crate::ids::WorkflowId;
use crate::status::{RunSummary, WorkflowStatus};
use crate::store::{HistoryHead, Result, StoreError};
use crate::time::Timestamp;

pub(super) const RUN_COLUMNS: &str =
    "first_seq, run_id, parent_run_id, workflow_type, status, started_at, closed_at, last_seq";

/// The history's head (from the events) and its latest run (from the runs
/// table), in one statement: an append reads both, and each statement is a
/// round trip to SQLite's worker thread. The run is `Err` when its row does
/// not decode.
pub(super) async fn load_head_and_latest_run(
    conn: &mut SqliteConnection,
    workflow_id: &WorkflowId,
) -> Result<(u64, Result<Option<RunSummary>>)> {
    let sql = format!(
        "SELECT (SELECT COALESCE(MAX(seq), 0) FROM events WHERE workflow_id = ?1) AS head_seq, latest.*
         FROM (SELECT 1) LEFT JOIN (SELECT {RUN_COLUMNS} FROM runs WHERE workflow_id = ?1
                                    ORDER BY first_seq DESC LIMIT 1) AS latest ON 1"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(workflow_id.as_str())
        .fetch_one(&mut *conn)
        .await
        .map_err(backend)?;
    let location = || format!("{workflow_id} events");
    let head_seq = to_u64(column(&row, "head_seq", &location)?, "seq", &location)?;
    let first_seq: Option<i64> = row.try_get("first_seq").unwrap_or(None);
    let latest_run = match first_seq {
        None => Ok(None),
        Some(_) => run_from_row(workflow_id, &row).map(|run| Some(at_head(run, head_seq))),
    };
    Ok((head_seq, latest_run))
}

/// A running run as its row says, ending at the history's head.
///
/// An append that only extends the latest run does not write its row (one
/// statement less on every append): the row of a running run keeps the
/// `last_seq` it was written with, and the head is its real last seq. Rows
/// of ended runs are written by the append that ends them, and are exact.
pub(super) fn at_head(mut run: RunSummary, head_seq: u64) -> RunSummary {
    if run.status == WorkflowStatus::Running && run.last_seq <= head_seq {
        run.last_seq = head_seq;
    }
    run
}

/// The latest run of a history, as the runs table has it.
pub(super) async fn load_latest_run(
    conn: &mut SqliteConnection,
    workflow_id: &WorkflowId,
) -> Result<Option<RunSummary>> {
    let sql = format!(
        "SELECT {RUN_COLUMNS} FROM runs WHERE workflow_id = ?1 ORDER BY first_seq DESC LIMIT 1"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(workflow_id.as_str())
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)?;
    row.map(|row| run_from_row(workflow_id, &row)).transpose()
}

/// Every run of a history, oldest first, as the runs table has them.
pub(super) async fn load_runs(
    conn: &mut SqliteConnection,
    workflow_id: &WorkflowId,
) -> Result<Vec<RunSummary>> {
    let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE workflow_id = ?1 ORDER BY first_seq");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(workflow_id.as_str())
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?;
    rows.iter()
        .map(|row| run_from_row(workflow_id, row))
        .collect()
}

pub(super) async fn upsert_run(
    conn: &mut SqliteConnection,
    workflow_id: &WorkflowId,
    run: &RunSummary,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO runs
             (workflow_id, first_seq, run_id, parent_run_id, workflow_type, status, started_at, closed_at, last_seq)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (workflow_id, first_seq) DO UPDATE SET
             run_id = excluded.run_id,
             parent_run_id = excluded.parent_run_id,
             workflow_type = excluded.workflow_type,
             status = excluded.status,
             started_at = excluded.started_at,
             closed_at = excluded.closed_at,
             last_seq = excluded.last_seq",
    )
    .bind(workflow_id.as_str())
    // Seqs of an accepted plan fit: every stored seq was checked on the way in.
    .bind(i64::try_from(run.first_seq).unwrap_or(i64::MAX))
    .bind(run.run_id.to_string())
    .bind(run.parent_run_id.map(|parent| parent.to_string()))
    .bind(run.workflow_type.as_str())
    .bind(run.status.as_str())
    .bind(run.started_at.as_micros())
    .bind(run.closed_at.map(Timestamp::as_micros))
    .bind(i64::try_from(run.last_seq).unwrap_or(i64::MAX))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Where a history stands: its head read from the events themselves, its
/// latest run from the runs table, rebuilt from the events if the table
/// disagrees with them. The `bool` says whether the table was rewritten.
///
/// Errors concern this workflow only: [`StoreError::Corrupt`] when the
/// history has to be read and does not decode or does not begin with
/// `workflow_started`.
pub(super) async fn load_head(
    conn: &mut SqliteConnection,
    workflow_id: &WorkflowId,
) -> Result<(HistoryHead, bool)> {
    let (head_seq, latest_run) = load_head_and_latest_run(conn, workflow_id).await?;
    head_from(conn, workflow_id, head_seq, latest_run).await
}

/// The head of a history from what [`load_head_and_latest_run`] read,
/// rebuilding the runs of the history when they disagree with its events;
/// `true` when they were rebuilt.
pub(super) async fn head_from(
    conn: &mut SqliteConnection,
    workflow_id: &WorkflowId,
    head_seq: u64,
    latest_run: Result<Option<RunSummary>>,
) -> Result<(HistoryHead, bool)> {
    let hint = match latest_run {
        Ok(latest_run) => {
            let head = HistoryHead {
                head_seq,
                latest_run,
            };
            if head.is_consistent() {
                return Ok((head, false));
            }
            head.latest_run
        }
        // A damaged row of the index: the history knows better.
        Err(StoreError::Corrupt { .. }) => None,
        Err(error) => return Err(error),
    };
    let head = rebuild_runs(conn, workflow_id, head_seq, hint.as_ref()).await?;
    Ok((head, true))
}

/// Rewrites the runs of a history from its events, reading from `hint`'s
/// first seq when that is a run's start, else from seq 1.
async fn rebuild_runs(
    conn: &mut SqliteConnection,
    workflow_id: &WorkflowId,
    head_seq: u64,
    hint: Option<&RunSummary>,
) -> Result<HistoryHead> {
    let mut from = hint
        .map_or(1, |run| run.first_seq)
        .clamp(1, head_seq.max(1));
    loop {
        let events =
            read_events(conn, workflow_id, i64::try_from(from).unwrap_or(i64::MAX)).await?;
        let runs = match RunSummary::project(None, &events) {
            Ok(runs) => runs,
            // The hint did not point at a run's start: read it all.
            Err(_) if from > 1 => {
                from = 1;
                continue;
            }
            Err(not_started) => {
                return Err(StoreError::Corrupt {
                    location: format!("{workflow_id} history"),
                    reason: not_started.to_string(),
                });
            }
        };
        sqlx::query("DELETE FROM runs WHERE workflow_id = ?1 AND first_seq >= ?2")
            .bind(workflow_id.as_str())
            .bind(i64::try_from(from).unwrap_or(i64::MAX))
            .execute(&mut *conn)
            .await
            .map_err(backend)?;
        for run in &runs {
            upsert_run(conn, workflow_id, run).await.map_err(backend)?;
        }
        return Ok(HistoryHead {
            head_seq,
            latest_run: runs.last().cloned(),
        });
    }
}

/// Fills the runs table for every history written before it existed
/// (migration to schema version 2). A history that does not decode is left
/// without runs: it is reported by reconciliation, and an append to it fails
/// as corrupt, exactly as before the migration.
pub(super) async fn backfill_runs(conn: &mut SqliteConnection) -> Result<()> {
    let ids: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT workflow_id FROM events ORDER BY workflow_id")
            .fetch_all(&mut *conn)
            .await
            .map_err(backend)?;
    for raw_id in ids {
        // Ids are validated before they are written; an invalid one was
        // written behind the store's back and is left for an operator.
        let Ok(workflow_id) = WorkflowId::new(raw_id) else {
            continue;
        };
        let head_seq = stored_head(conn, &workflow_id).await?;
        match rebuild_runs(conn, &workflow_id, head_seq, None).await {
            Ok(_) | Err(StoreError::Corrupt { .. }) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}
