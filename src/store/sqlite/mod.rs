//! The SQLite backend: the embedded default store, one file per node.
//!
//! Durability: the database runs in WAL mode with `synchronous = FULL` by
//! default, so a commit returns only after the WAL is fsynced and an
//! acknowledged append survives SIGKILL and power loss. (`NORMAL` would only
//! survive a process crash, which is why it is an explicit opt-out.)
//!
//! Concurrency: every write goes through one dedicated connection and starts
//! with `BEGIN IMMEDIATE`, so a transaction takes the write lock before it reads
//! the head it is about to check; a deferred transaction could read, lose the
//! race for the lock to another process and fail with `SQLITE_BUSY` instead of
//! waiting. Reads use a separate pool: WAL lets them run beside the writer on
//! their own snapshot. An append checks its `expected_seq` against the head of
//! the events themselves (`MAX(seq)` on the primary key), never against the
//! visibility row, which is a projection the append rewrites. The
//! `(workflow_id, seq)` primary key is the last line of defence: two events can
//! never share a seq, and a violation is reported as
//! [`StoreError::SequenceConflict`], exactly as on every other backend.
//!
//! Isolation: each request of a group commit runs in its own savepoint, so a
//! request that fails (a row of its workflow that does not decode, a statement
//! that fails) is rolled back and answered alone, with its error's kind.
//!
//! The schema is created and migrated by the store itself; its version lives in
//! the `aion_schema` table.

mod attempts;
mod errors;
mod lock;
mod rows;
mod runs;
mod schema;
mod visibility;

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{Connection, QueryBuilder, Sqlite, Transaction};

use self::errors::{backend, describe_open_error, is_unique_violation};
use self::lock::{FileLock, LockError};
use self::rows::{event_from_row, raw_key, run_from_row, summary_from_row, timer_from_row, to_u64};
use self::runs::{
    at_head, head_from, load_head, load_head_and_latest_run, load_latest_run, load_runs, upsert_run,
};
pub use self::schema::SCHEMA_VERSION;
use self::schema::{MAYBE_RUNNING, migrate};
use super::{
    AppendPlan, AppendRequest, DEADLINE_COMMAND, EventLog, HistoryHead, ReconcileReport, Result,
    RunningPage, Store, StoreError, TimerCursor, TimerEffect, TimerEntry, TimerPage, TimerStore,
    VisibilityStore, current_run_of, plan_append,
};
use crate::codec;
use crate::event::{AttributeKind, RecordedEvent};
use crate::faults::{self, Point};
use crate::ids::{RunId, TimerId, WorkflowId};
use crate::status::{RunSummary, WorkflowStatus, WorkflowSummary, run_chain};
use crate::time::Timestamp;
use crate::visibility::{ListCursor, ListFilter, ListPage, SearchAttributes, project_attributes};

const BACKEND: &str = "sqlite";

/// The first 16 bytes of every SQLite 3 database file.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// Bytes the WAL file is truncated to after a checkpoint.
const WAL_SIZE_LIMIT: u64 = 4 * 1024 * 1024;

/// Rows per multi-row `INSERT` into `events`: large batches cost a few
/// statements instead of one per event, while staying far below SQLite's
/// limit on bound parameters (6 per row).
const EVENT_ROWS_PER_INSERT: usize = 64;

const SUMMARY_COLUMNS: &str =
    "workflow_id, workflow_type, run_id, status, started_at, closed_at, updated_at, head_seq";

/// How to open a [`SqliteStore`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SqliteOptions {
    /// `synchronous = FULL` (the default): every commit is fsynced, so an
    /// acknowledged append survives power loss. `false` selects `NORMAL`,
    /// which survives a process crash but may lose the latest commits on
    /// power loss.
    pub synchronous_full: bool,
    /// Connections in the read pool (at least 1).
    pub readers: u32,
    /// How long a statement waits for a lock held by another connection or
    /// process before failing with a (transient) backend error.
    pub busy_timeout: Duration,
    /// Take the store's exclusive lock (the default): a second store on the
    /// same database file, through any path (symlink, hard link), in this
    /// process or another, is refused with [`StoreError::InUse`] until this
    /// one closes. `false` only for tools and tests that share a file on
    /// purpose; SQLite still keeps its data consistent.
    pub exclusive: bool,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            synchronous_full: true,
            readers: 4,
            busy_timeout: Duration::from_secs(5),
            exclusive: true,
        }
    }
}

/// The SQLite backend. Cheap to share behind an `Arc`; all methods take `&self`.
#[derive(Debug)]
pub struct SqliteStore {
    path: PathBuf,
    /// Exactly one connection: SQLite has one writer at a time anyway, and
    /// queueing in the pool is cheaper than contending for the file lock.
    writer: SqlitePool,
    readers: SqlitePool,
    closed: AtomicBool,
    /// Released by [`Store::close`] (or when the store is dropped).
    lock: Mutex<Option<FileLock>>,
}

impl SqliteStore {
    /// Opens the database file at `path`, creating it if it does not exist,
    /// and creates or migrates the schema.
    ///
    /// Never creates directories: a missing parent directory is an error. A
    /// file that is not a SQLite database is refused without being written.
    /// A schema newer than this build understands gives
    /// [`StoreError::SchemaTooNew`].
    pub async fn open(path: impl AsRef<Path>, options: SqliteOptions) -> Result<SqliteStore> {
        let path = path.as_ref();
        let open_error = |reason: String| StoreError::Open {
            backend: BACKEND,
            location: path.display().to_string(),
            reason,
        };
        if options.readers == 0 {
            return Err(open_error(
                "SqliteOptions.readers must be at least 1".into(),
            ));
        }
        check_parent(path).map_err(open_error)?;
        let lock = if options.exclusive {
            // The lock is on the file itself, so it must exist before SQLite
            // writes a byte (an empty file is an empty database to SQLite).
            match File::options().write(true).create_new(true).open(path) {
                Ok(_) => {}
                Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(error) => return Err(open_error(format!("cannot create the file: {error}"))),
            }
            match lock::lock(path) {
                Ok(lock) => Some(lock),
                Err(LockError::InUse) => {
                    return Err(StoreError::InUse {
                        location: path.display().to_string(),
                    });
                }
                Err(LockError::Failed(reason)) => return Err(open_error(reason)),
            }
        } else {
            if path.exists() {
                lock::descriptor(path).map_err(open_error)?;
            }
            None
        };

        let synchronous = if options.synchronous_full {
            SqliteSynchronous::Full
        } else {
            SqliteSynchronous::Normal
        };
        let base = SqliteConnectOptions::new()
            .filename(path)
            .busy_timeout(options.busy_timeout)
            .synchronous(synchronous);

        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            // Keep the writer (and its statement cache) for the store's life.
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(
                base.clone()
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    // A large commit grows the WAL to its size; without a
                    // limit the file keeps that size after the checkpoint, a
                    // second copy of every large payload on disk.
                    .pragma("journal_size_limit", WAL_SIZE_LIMIT.to_string()),
            )
            .await
            .map_err(|error| open_error(describe_open_error(&error)))?;
        if let Err(error) = migrate(&writer).await {
            writer.close().await;
            return Err(error);
        }

        // `query_only` guards against a write slipping onto a reader, where it
        // would bypass the single-writer discipline.
        let readers = match SqlitePoolOptions::new()
            .max_connections(options.readers)
            .connect_with(base.pragma("query_only", "ON"))
            .await
        {
            Ok(readers) => readers,
            Err(error) => {
                writer.close().await;
                return Err(open_error(describe_open_error(&error)));
            }
        };

        Ok(SqliteStore {
            path: path.to_owned(),
            writer,
            readers,
            closed: AtomicBool::new(false),
            lock: Mutex::new(lock),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn ensure_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(StoreError::Closed)
        } else {
            Ok(())
        }
    }

    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>> {
        self.ensure_open()?;
        self.writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(backend)
    }

    /// Whether one workflow's runs rows and visibility row agree with its
    /// history, read on a reader's snapshot (no write lock taken).
    async fn is_consistent(&self, workflow_id: &WorkflowId) -> Result<bool> {
        let mut tx = self.readers.begin().await.map_err(backend)?;
        let head_seq = stored_head(&mut tx, workflow_id).await?;
        let Ok(latest_run) = load_latest_run(&mut tx, workflow_id).await else {
            return Ok(false);
        };
        let latest_run = latest_run.map(|run| at_head(run, head_seq));
        let head = HistoryHead {
            head_seq,
            latest_run,
        };
        if !head.is_consistent() {
            return Ok(false);
        }
        let expected = expected_summary(&mut tx, workflow_id, &head).await?;
        Ok(load_summary(&mut tx, workflow_id).await.ok().flatten() == expected)
    }

    /// The workflows with ids in `(after, until]` whose runs index and
    /// visibility row agree with their history, found with two statements
    /// for the whole range: a restart with many workflows checks them page
    /// by page instead of one by one. A workflow not returned is checked
    /// (and repaired) alone.
    async fn consistent_in(
        &self,
        after: Option<&WorkflowId>,
        until: Option<&WorkflowId>,
    ) -> Result<std::collections::HashSet<WorkflowId>> {
        let range = |query: &mut QueryBuilder<Sqlite>, column: &str| {
            if let Some(after) = after {
                query
                    .push(format!(" AND {column} > "))
                    .push_bind(after.as_str().to_owned());
            }
            if let Some(until) = until {
                query
                    .push(format!(" AND {column} <= "))
                    .push_bind(until.as_str().to_owned());
            }
        };
        let mut tx = self.readers.begin().await.map_err(backend)?;
        let mut heads = QueryBuilder::<Sqlite>::new(format!(
            "SELECT h.workflow_id, h.head_seq, e.recorded_at AS head_at, {}
             FROM (SELECT workflow_id, MAX(seq) AS head_seq FROM events WHERE 1 = 1",
            runs::RUN_COLUMNS
                .split(", ")
                .map(|c| format!("r.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        range(&mut heads, "workflow_id");
        heads.push(
            " GROUP BY workflow_id) AS h
             JOIN events AS e ON e.workflow_id = h.workflow_id AND e.seq = h.head_seq
             LEFT JOIN runs AS r ON r.workflow_id = h.workflow_id
                 AND r.first_seq = (SELECT MAX(first_seq) FROM runs WHERE runs.workflow_id = h.workflow_id)",
        );
        let heads = heads.build().fetch_all(&mut *tx).await.map_err(backend)?;
        let mut summaries = QueryBuilder::<Sqlite>::new(format!(
            "SELECT {SUMMARY_COLUMNS} FROM workflows WHERE 1 = 1"
        ));
        range(&mut summaries, "workflow_id");
        let summaries: std::collections::HashMap<
            String,
            std::result::Result<WorkflowSummary, StoreError>,
        > = summaries
            .build()
            .fetch_all(&mut *tx)
            .await
            .map_err(backend)?
            .iter()
            .map(|row| (raw_key(row, "workflow_id"), summary_from_row(row)))
            .collect();
        let mut consistent = std::collections::HashSet::new();
        for row in &heads {
            let Ok(workflow_id) = WorkflowId::new(raw_key(row, "workflow_id")) else {
                continue;
            };
            let Ok(head_seq) = sqlx::Row::try_get::<i64, _>(row, "head_seq") else {
                continue;
            };
            let Ok(head_at) = sqlx::Row::try_get::<i64, _>(row, "head_at") else {
                continue;
            };
            let Ok(run) = run_from_row(&workflow_id, row) else {
                continue;
            };
            let head_seq = u64::try_from(head_seq).unwrap_or(0);
            let head = HistoryHead {
                head_seq,
                latest_run: Some(at_head(run, head_seq)),
            };
            let Some(run) = head.latest_run.as_ref().filter(|_| head.is_consistent()) else {
                continue;
            };
            let expected =
                WorkflowSummary::of_run(workflow_id.clone(), run, Timestamp::from_micros(head_at));
            if matches!(summaries.get(workflow_id.as_str()), Some(Ok(row)) if *row == expected) {
                consistent.insert(workflow_id);
            }
        }
        Ok(consistent)
    }

    /// Repairs one workflow's runs and visibility row from its history, in a
    /// write transaction so that no append slips between read and write.
    /// Returns whether anything was rewritten.
    async fn repair(&self, workflow_id: &WorkflowId) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let (head, runs_rewritten) = load_head(&mut tx, workflow_id).await?;
        let expected = expected_summary(&mut tx, workflow_id, &head).await?;
        let current = load_summary(&mut tx, workflow_id).await.ok().flatten();
        let row_rewritten = current != expected;
        if row_rewritten {
            match &expected {
                Some(row) => upsert_summary(&mut tx, row).await.map_err(backend)?,
                None => delete_summary(&mut tx, workflow_id)
                    .await
                    .map_err(backend)?,
            }
        }
        // The latest run's attributes, from its own events.
        let attributes = match &head.latest_run {
            Some(run) => {
                let from = i64::try_from(run.first_seq).unwrap_or(i64::MAX);
                project_attributes(&read_events(&mut tx, workflow_id, from).await?)
            }
            None => SearchAttributes::new(),
        };
        let attributes_rewritten = visibility::repair_attributes(
            &mut tx,
            workflow_id,
            expected.as_ref(),
            &attributes,
            row_rewritten,
        )
        .await?;
        tx.commit().await.map_err(backend)?;
        Ok(runs_rewritten || row_rewritten || attributes_rewritten)
    }
}

/// The visibility row a consistent `head` projects to: the latest run, the
/// head seq and the head event's time.
async fn expected_summary(
    conn: &mut SqliteConnection,
    workflow_id: &WorkflowId,
    head: &HistoryHead,
) -> Result<Option<WorkflowSummary>> {
    let Some(run) = &head.latest_run else {
        return Ok(None);
    };
    let updated_at: Option<i64> =
        sqlx::query_scalar("SELECT recorded_at FROM events WHERE workflow_id = ?1 AND seq = ?2")
            .bind(workflow_id.as_str())
            .bind(i64::try_from(head.head_seq).unwrap_or(i64::MAX))
            .fetch_optional(&mut *conn)
            .await
            .map_err(backend)?;
    let updated_at = updated_at.ok_or_else(|| StoreError::Corrupt {
        location: format!("{workflow_id} seq {}", head.head_seq),
        reason: "the head event has no recorded_at".into(),
    })?;
    Ok(Some(WorkflowSummary::of_run(
        workflow_id.clone(),
        run,
        Timestamp::from_micros(updated_at),
    )))
}

async fn delete_summary(conn: &mut SqliteConnection, workflow_id: &WorkflowId) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM workflows WHERE workflow_id = ?1")
        .bind(workflow_id.as_str())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Runs a page query for `limit` rows and, while the last row's key does
/// not make a cursor (it does not decode), asks again for more, so that a
/// page always ends on a row the next page can start after. Returns the rows
/// and whether the walk reached the end.
async fn fetch_page<F, Fut>(
    limit: usize,
    mut fetch: F,
    ends_cleanly: impl Fn(&SqliteRow) -> bool,
) -> Result<(Vec<SqliteRow>, bool)>
where
    F: FnMut(i64) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<SqliteRow>>>,
{
    let mut asked = limit.max(1);
    loop {
        let rows = fetch(i64::try_from(asked).unwrap_or(i64::MAX)).await?;
        if rows.len() < asked {
            return Ok((rows, true));
        }
        if rows.last().is_some_and(&ends_cleanly) {
            return Ok((rows, false));
        }
        asked = asked.saturating_mul(2);
    }
}

/// Checks the directory before anything touches the disk, so that the common
/// mistake gives a clear message and leaves the disk as it was.
fn check_parent(path: &Path) -> std::result::Result<(), String> {
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    match std::fs::metadata(parent) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(format!("{} is not a directory", parent.display())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Err(format!(
            "the directory {} does not exist (Aion does not create directories; create it first)",
            parent.display()
        )),
        Err(error) => Err(format!(
            "cannot access the directory {}: {error}",
            parent.display()
        )),
    }
}

/// Refuses a file that is neither empty nor a SQLite database before SQLite
/// sees it, as SQLite might try to turn it into one.
fn check_header(file: &File) -> std::result::Result<(), String> {
    let meta = file
        .metadata()
        .map_err(|error| format!("cannot read the file: {error}"))?;
    if meta.is_dir() {
        return Err("the path is a directory, not a database file".into());
    }
    // SQLite treats an empty file as an empty database.
    if meta.len() == 0 {
        return Ok(());
    }
    let mut header = [0u8; 16];
    let mut filled = 0;
    let mut reader = file;
    while filled < header.len() {
        match reader.read(&mut header[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => return Err(format!("cannot read the file: {error}")),
        }
    }
    if filled < header.len() || &header != SQLITE_HEADER {
        return Err("the file exists but is not a SQLite database; it was left untouched".into());
    }
    Ok(())
}

async fn read_events(
    conn: &mut SqliteConnection,
    workflow_id: &WorkflowId,
    from_seq: i64,
) -> Result<Vec<RecordedEvent>> {
    let rows = sqlx::query(
        "SELECT seq, recorded_at, format, body FROM events
         WHERE workflow_id = ?1 AND seq >= ?2 ORDER BY seq",
    )
    .bind(workflow_id.as_str())
    .bind(from_seq)
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)?;
    rows.iter()
        .map(|row| event_from_row(workflow_id, row))
        .collect()
}

async fn load_summary(
    conn: &mut SqliteConnection,
    workflow_id: &WorkflowId,
) -> Result<Option<WorkflowSummary>> {
    let sql = format!("SELECT {SUMMARY_COLUMNS} FROM workflows WHERE workflow_id = ?1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(workflow_id.as_str())
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)?;
    row.as_ref().map(summary_from_row).transpose()
}

async fn stored_head(conn: &mut SqliteConnection, workflow_id: &WorkflowId) -> Result<u64> {
    let head: i64 =
        sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM events WHERE workflow_id = ?1")
            .bind(workflow_id.as_str())
            .fetch_one(&mut *conn)
            .await
            .map_err(backend)?;
    to_u64(head, "seq", &|| format!("{workflow_id} events"))
}

async fn upsert_summary(conn: &mut SqliteConnection, row: &WorkflowSummary) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO workflows
             (workflow_id, workflow_type, run_id, status, started_at, closed_at, updated_at, head_seq)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (workflow_id) DO UPDATE SET
             workflow_type = excluded.workflow_type,
             run_id = excluded.run_id,
             status = excluded.status,
             started_at = excluded.started_at,
             closed_at = excluded.closed_at,
             updated_at = excluded.updated_at,
             head_seq = excluded.head_seq",
    )
    .bind(row.workflow_id.as_str())
    .bind(row.workflow_type.as_str())
    .bind(row.run_id.to_string())
    .bind(row.status.as_str())
    .bind(row.started_at.as_micros())
    .bind(row.closed_at.map(Timestamp::as_micros))
    .bind(row.updated_at.as_micros())
    // The head of an accepted plan fits: every stored seq was checked on the way in.
    .bind(i64::try_from(row.head_seq).unwrap_or(i64::MAX))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn upsert_timer(conn: &mut SqliteConnection, entry: &TimerEntry) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO timers (workflow_id, timer_id, command, fire_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (workflow_id, timer_id) DO UPDATE SET
             command = excluded.command,
             fire_at = excluded.fire_at",
    )
    .bind(entry.workflow_id.as_str())
    .bind(entry.timer_id.as_str())
    .bind(i64::from(entry.command))
    .bind(entry.fire_at.as_micros())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn delete_timer(
    conn: &mut SqliteConnection,
    workflow_id: &WorkflowId,
    timer_id: &TimerId,
) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM timers WHERE workflow_id = ?1 AND timer_id = ?2")
        .bind(workflow_id.as_str())
        .bind(timer_id.as_str())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// One event in its stored form, encoded before the write lock is taken.
struct EncodedEvent {
    seq: i64,
    recorded_at: i64,
    kind: &'static str,
    body: Vec<u8>,
}

fn encode_request(request: &AppendRequest) -> Result<Vec<EncodedEvent>> {
    let invalid = |reason: String| StoreError::InvalidAppend {
        workflow_id: request.workflow_id.clone(),
        reason,
    };
    request
        .events
        .iter()
        .map(|recorded| {
            let seq = recorded.seq();
            Ok(EncodedEvent {
                seq: i64::try_from(seq)
                    .map_err(|_| invalid(format!("seq {seq} is out of range")))?,
                recorded_at: recorded.envelope.recorded_at.as_micros(),
                kind: recorded.event.kind().as_str(),
                body: codec::encode(&recorded.event).map_err(|error| {
                    invalid(format!("event at seq {seq} does not encode: {error}"))
                })?,
            })
        })
        .collect()
}

/// Writes one accepted request. Any error leaves the caller to roll back the
/// request's savepoint.
async fn write_plan(
    conn: &mut SqliteConnection,
    workflow_id: &WorkflowId,
    events: &[EncodedEvent],
    plan: &AppendPlan,
) -> std::result::Result<(), Written> {
    // A statement that fails changes nothing, so a failure of the first
    // statement leaves the request unwritten; later ones leave part of it.
    let mut written = false;
    write_rows(conn, workflow_id, events, plan, &mut written)
        .await
        .map_err(|error| Written {
            error,
            partly: written,
        })
}

/// A failed write, and whether part of the request was written before it.
struct Written {
    error: sqlx::Error,
    partly: bool,
}

async fn write_rows(
    conn: &mut SqliteConnection,
    workflow_id: &WorkflowId,
    events: &[EncodedEvent],
    plan: &AppendPlan,
    written: &mut bool,
) -> sqlx::Result<()> {
    let format = i64::from(codec::CURRENT_FORMAT);
    for chunk in events.chunks(EVENT_ROWS_PER_INSERT) {
        let mut insert = QueryBuilder::<Sqlite>::new(
            "INSERT INTO events (workflow_id, seq, recorded_at, kind, format, body) ",
        );
        insert.push_values(chunk, |mut values, event| {
            values
                .push_bind(workflow_id.as_str())
                .push_bind(event.seq)
                .push_bind(event.recorded_at)
                .push_bind(event.kind)
                .push_bind(format)
                .push_bind(event.body.as_slice());
        });
        insert.build().execute(&mut *conn).await?;
        *written = true;
    }
    if !(plan.extends_latest_run && extend_latest_run(conn, plan).await?) {
        upsert_summary(conn, &plan.summary).await?;
        for run in &plan.runs {
            upsert_run(conn, workflow_id, run).await?;
        }
    }
    for effect in &plan.timers {
        match effect {
            TimerEffect::Schedule(entry) => upsert_timer(conn, entry).await?,
            TimerEffect::Remove(owner, timer_id) => delete_timer(conn, owner, timer_id).await?,
            TimerEffect::RemoveAll(owner) => {
                sqlx::query("DELETE FROM timers WHERE workflow_id = ?1")
                    .bind(owner.as_str())
                    .execute(&mut *conn)
                    .await?;
                sqlx::query("DELETE FROM activity_attempts WHERE workflow_id = ?1")
                    .bind(owner.as_str())
                    .execute(&mut *conn)
                    .await?;
            }
        }
    }
    if let Some(changes) = &plan.attributes {
        visibility::write_attributes(conn, &plan.summary, changes).await?;
    }
    Ok(())
}

/// Moves the head of the visibility row, and nothing else: most appends
/// only extend a run, and rewriting every column would rewrite every index
/// of the row too. The run's own row is not written (see
/// [`runs::at_head`]). Returns `false`, writing nothing, when the
/// visibility row is missing (the full rows are written instead).
async fn extend_latest_run(conn: &mut SqliteConnection, plan: &AppendPlan) -> sqlx::Result<bool> {
    let summary = &plan.summary;
    let head_seq = i64::try_from(summary.head_seq).unwrap_or(i64::MAX);
    let moved =
        sqlx::query("UPDATE workflows SET head_seq = ?2, updated_at = ?3 WHERE workflow_id = ?1")
            .bind(summary.workflow_id.as_str())
            .bind(head_seq)
            .bind(summary.updated_at.as_micros())
            .execute(&mut *conn)
            .await?;
    Ok(moved.rows_affected() > 0)
}

/// Why one request failed inside its savepoint.
enum RequestFailure {
    /// The `(workflow_id, seq)` key refused a row: the head moved.
    Duplicate,
    /// Anything else that concerns this request only, with its kind.
    Store(StoreError),
}

impl From<StoreError> for RequestFailure {
    fn from(error: StoreError) -> Self {
        RequestFailure::Store(error)
    }
}

/// Plans and writes one request; every error concerns this request only.
async fn try_request(
    conn: &mut SqliteConnection,
    request: &AppendRequest,
    encoded: Result<Vec<EncodedEvent>>,
) -> std::result::Result<(), RequestFailure> {
    try_request_tracked(conn, request, encoded)
        .await
        .map_err(|(failure, _partly)| failure)
}

/// [`try_request`], saying on failure whether part of the request was
/// written before it failed.
async fn try_request_tracked(
    conn: &mut SqliteConnection,
    request: &AppendRequest,
    encoded: Result<Vec<EncodedEvent>>,
) -> std::result::Result<(), (RequestFailure, bool)> {
    let unwritten = |failure: RequestFailure| (failure, false);
    // The head comes from the history; the visibility row is not read, only
    // overwritten, so a damaged one is repaired by the append. The seq is
    // checked before the runs index is, so that a conflict never costs a
    // read of the history, even when the index needs repairing.
    let (found, latest_run) = load_head_and_latest_run(conn, &request.workflow_id)
        .await
        .map_err(|error| unwritten(error.into()))?;
    if found != request.expected_seq {
        return Err(unwritten(conflict(request, found).into()));
    }
    // A repair of the runs index written here is right whatever follows.
    let (head, _) = head_from(conn, &request.workflow_id, found, latest_run)
        .await
        .map_err(|error| unwritten(error.into()))?;
    let plan = plan_append(&head, request).map_err(|error| unwritten(error.into()))?;
    let events = encoded.map_err(|error| unwritten(error.into()))?;
    if let Some(changes) = &plan.attributes {
        visibility::check_kinds(conn, changes)
            .await
            .map_err(|error| unwritten(error.into()))?;
    }
    write_plan(conn, &request.workflow_id, &events, &plan)
        .await
        .map_err(|Written { error, partly }| {
            let failure = if is_unique_violation(&error) {
                RequestFailure::Duplicate
            } else {
                RequestFailure::Store(backend(error))
            };
            (failure, partly)
        })
}

/// Applies one request inside the batch transaction, so that whatever goes
/// wrong with it (a row of its workflow that does not decode, an event that
/// does not encode, a statement that fails) is reported to that request only,
/// with its own kind, while the rest of the batch commits.
///
/// A request whose events fit one `INSERT` needs no savepoint (two
/// statements less on nearly every append): everything that can fail for it
/// alone fails before it writes, or on that first statement, which then
/// changes nothing. Should a later statement of it fail (the rows it
/// updates are its own, so only a broken transaction makes them fail), the
/// batch fails. A longer request writes in a savepoint of its own.
///
/// The outer error means the transaction itself is unusable: the whole batch
/// must fail.
async fn apply_request(
    tx: &mut Transaction<'static, Sqlite>,
    request: &AppendRequest,
    encoded: Result<Vec<EncodedEvent>>,
) -> Result<Result<()>> {
    if request.events.len() <= EVENT_ROWS_PER_INSERT {
        return match try_request_tracked(tx, request, encoded).await {
            Ok(()) => Ok(Ok(())),
            Err((RequestFailure::Store(error), false)) => Ok(Err(error)),
            Err((RequestFailure::Duplicate, false)) => Ok(Err(conflict(
                request,
                stored_head(tx, &request.workflow_id).await?,
            ))),
            Err((RequestFailure::Store(error), true)) => Err(error),
            Err((RequestFailure::Duplicate, true)) => Err(StoreError::Backend(format!(
                "an append to {} was refused half-way; the batch is rolled back",
                request.workflow_id
            ))),
        };
    }
    let mut savepoint = Connection::begin(&mut **tx).await.map_err(backend)?;
    let failure = match try_request(&mut savepoint, request, encoded).await {
        Ok(()) => {
            savepoint.commit().await.map_err(backend)?;
            return Ok(Ok(()));
        }
        Err(failure) => failure,
    };
    savepoint.rollback().await.map_err(backend)?;
    Ok(Err(match failure {
        RequestFailure::Store(error) => error,
        // Cannot happen while the head is read from the events under the
        // write lock; the primary key stays the last line of defence.
        RequestFailure::Duplicate => {
            conflict(request, stored_head(tx, &request.workflow_id).await?)
        }
    }))
}

fn conflict(request: &AppendRequest, found: u64) -> StoreError {
    StoreError::SequenceConflict {
        workflow_id: request.workflow_id.clone(),
        expected: request.expected_seq,
        found,
    }
}

#[async_trait]
impl EventLog for SqliteStore {
    async fn append_batch(&self, batch: &[AppendRequest]) -> Result<Vec<Result<()>>> {
        self.ensure_open()?;
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let mut encoded: Vec<Result<Vec<EncodedEvent>>> =
            batch.iter().map(encode_request).collect();
        let mut tx = self.begin_write().await?;
        if let [request] = batch {
            // Alone in its transaction, a request needs no savepoint: rolling
            // the transaction back undoes exactly that request.
            let events = encoded.pop().unwrap_or_else(|| Ok(Vec::new()));
            return match try_request(&mut tx, request, events).await {
                Ok(()) => {
                    faults::hit(Point::CommitBeforeFsync);
                    tx.commit().await.map_err(backend)?;
                    Ok(vec![Ok(())])
                }
                Err(failure) => {
                    tx.rollback().await.map_err(backend)?;
                    let error = match failure {
                        RequestFailure::Store(error) => error,
                        RequestFailure::Duplicate => {
                            let mut conn = self.writer.acquire().await.map_err(backend)?;
                            conflict(request, stored_head(&mut conn, &request.workflow_id).await?)
                        }
                    };
                    Ok(vec![Err(error)])
                }
            };
        }
        let mut results = Vec::with_capacity(batch.len());
        for (request, events) in batch.iter().zip(encoded) {
            results.push(apply_request(&mut tx, request, events).await?);
        }
        faults::hit(Point::CommitBeforeFsync);
        tx.commit().await.map_err(backend)?;
        Ok(results)
    }

    async fn read_from(
        &self,
        workflow_id: &WorkflowId,
        from_seq: u64,
    ) -> Result<Vec<RecordedEvent>> {
        self.ensure_open()?;
        let Ok(from_seq) = i64::try_from(from_seq) else {
            return Ok(Vec::new());
        };
        let mut conn = self.readers.acquire().await.map_err(backend)?;
        read_events(&mut conn, workflow_id, from_seq).await
    }

    async fn read_range(
        &self,
        workflow_id: &WorkflowId,
        from_seq: u64,
        to_seq: u64,
    ) -> Result<Vec<RecordedEvent>> {
        self.ensure_open()?;
        let (Ok(from_seq), to_seq) = (
            i64::try_from(from_seq),
            i64::try_from(to_seq).unwrap_or(i64::MAX),
        ) else {
            return Ok(Vec::new());
        };
        let mut conn = self.readers.acquire().await.map_err(backend)?;
        let rows = sqlx::query(
            "SELECT seq, recorded_at, format, body FROM events
             WHERE workflow_id = ?1 AND seq >= ?2 AND seq <= ?3 ORDER BY seq",
        )
        .bind(workflow_id.as_str())
        .bind(from_seq)
        .bind(to_seq)
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?;
        rows.iter()
            .map(|row| event_from_row(workflow_id, row))
            .collect()
    }

    async fn head(&self, workflow_id: &WorkflowId) -> Result<u64> {
        self.ensure_open()?;
        let mut conn = self.readers.acquire().await.map_err(backend)?;
        stored_head(&mut conn, workflow_id).await
    }

    async fn read_run_chain(&self, workflow_id: &WorkflowId) -> Result<Vec<RunSummary>> {
        self.ensure_open()?;
        // One snapshot, so that the head compared against is the runs'.
        let mut tx = self.readers.begin().await.map_err(backend)?;
        let head_seq = stored_head(&mut tx, workflow_id).await?;
        if let Ok(mut runs) = load_runs(&mut tx, workflow_id).await {
            if let Some(latest) = runs.pop() {
                runs.push(at_head(latest, head_seq));
            }
            let head = HistoryHead {
                head_seq,
                latest_run: runs.last().cloned(),
            };
            if head.is_consistent() {
                return Ok(runs);
            }
        }
        // The index disagrees with the history (damaged, or written behind
        // the store's back): the history is the truth. Reconciliation
        // rewrites the index.
        Ok(run_chain(&read_events(&mut tx, workflow_id, 1).await?))
    }

    async fn read_run(
        &self,
        workflow_id: &WorkflowId,
        run_id: RunId,
    ) -> Result<Option<RunSummary>> {
        self.ensure_open()?;
        let mut tx = self.readers.begin().await.map_err(backend)?;
        let sql = format!(
            "SELECT {} FROM runs WHERE workflow_id = ?1 AND run_id = ?2",
            runs::RUN_COLUMNS
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(workflow_id.as_str())
            .bind(run_id.to_string())
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
        let run = match row.map(|row| run_from_row(workflow_id, &row)).transpose() {
            Ok(run) => run,
            // A row that does not decode: the chain (rebuilt from history if
            // need be) says.
            Err(_) => {
                drop(tx);
                return Ok(self
                    .read_run_chain(workflow_id)
                    .await?
                    .into_iter()
                    .find(|run| run.run_id == run_id));
            }
        };
        match run {
            // A running run's row may lag the head (see `at_head`).
            Some(run) if run.status == WorkflowStatus::Running => {
                let head_seq = stored_head(&mut tx, workflow_id).await?;
                Ok(Some(runs::at_head(run, head_seq)))
            }
            Some(run) => Ok(Some(run)),
            // Not in the index: maybe an index that lags history.
            None => {
                drop(tx);
                Ok(self
                    .read_run_chain(workflow_id)
                    .await?
                    .into_iter()
                    .find(|run| run.run_id == run_id))
            }
        }
    }

    async fn history_head(&self, workflow_id: &WorkflowId) -> Result<HistoryHead> {
        self.ensure_open()?;
        // One statement is one snapshot: no transaction needed when the
        // index agrees with the history, the common case.
        let mut conn = self.readers.acquire().await.map_err(backend)?;
        if let (head_seq, Ok(latest_run)) = load_head_and_latest_run(&mut conn, workflow_id).await?
        {
            let head = HistoryHead {
                head_seq,
                latest_run,
            };
            if head.is_consistent() {
                return Ok(head);
            }
        }
        drop(conn);
        let runs = self.read_run_chain(workflow_id).await?;
        Ok(HistoryHead {
            head_seq: runs.last().map_or(0, |run| run.last_seq),
            latest_run: runs.into_iter().next_back(),
        })
    }

    async fn read_current_run(
        &self,
        workflow_id: &WorkflowId,
    ) -> Result<Option<(RunSummary, Vec<RecordedEvent>)>> {
        self.ensure_open()?;
        let mut tx = self.readers.begin().await.map_err(backend)?;
        let from = match load_latest_run(&mut tx, workflow_id).await {
            Ok(Some(run)) => run.first_seq,
            Ok(None) if stored_head(&mut tx, workflow_id).await? == 0 => return Ok(None),
            // No usable index row for a history that exists: read it all.
            Ok(None) | Err(StoreError::Corrupt { .. }) => 1,
            Err(error) => return Err(error),
        };
        let from = i64::try_from(from).unwrap_or(i64::MAX);
        if let Some(current) = current_run_of(read_events(&mut tx, workflow_id, from).await?) {
            return Ok(Some(current));
        }
        if from == 1 {
            return Ok(None);
        }
        // The index did not point at a run's start.
        Ok(current_run_of(read_events(&mut tx, workflow_id, 1).await?))
    }

    /// One query for all of them: the events of each workflow's latest run
    /// (by the runs index), in one read transaction.
    async fn read_current_runs(
        &self,
        workflow_ids: &[WorkflowId],
    ) -> Result<HashMap<WorkflowId, (RunSummary, Vec<RecordedEvent>)>> {
        self.ensure_open()?;
        let mut runs = HashMap::with_capacity(workflow_ids.len());
        if workflow_ids.is_empty() {
            return Ok(runs);
        }
        let mut query = QueryBuilder::<Sqlite>::new(
            "SELECT e.workflow_id, e.seq, e.recorded_at, e.format, e.body FROM events e \
             JOIN runs r ON r.workflow_id = e.workflow_id AND e.seq >= r.first_seq \
             WHERE r.first_seq = (SELECT MAX(first_seq) FROM runs WHERE runs.workflow_id = e.workflow_id) \
             AND e.workflow_id IN (",
        );
        let mut ids = query.separated(", ");
        for workflow_id in workflow_ids {
            ids.push_bind(workflow_id.as_str());
        }
        query.push(") ORDER BY e.workflow_id, e.seq");
        let rows = query
            .build()
            .fetch_all(&self.readers)
            .await
            .map_err(backend)?;
        let mut rows = rows.iter().peekable();
        while let Some(first) = rows.peek() {
            let key = raw_key(first, "workflow_id");
            let mut events = Vec::new();
            let mut readable = WorkflowId::new(key.clone()).ok();
            while let Some(row) = rows.next_if(|row| raw_key(row, "workflow_id") == key) {
                if let Some(workflow_id) = &readable {
                    match event_from_row(workflow_id, row) {
                        Ok(event) => events.push(event),
                        // Left out: read_current_run reports it.
                        Err(_) => readable = None,
                    }
                }
            }
            if let Some(workflow_id) = readable
                && let Some(current) = current_run_of(events)
            {
                runs.insert(workflow_id, current);
            }
        }
        Ok(runs)
    }
}

#[async_trait]
impl TimerStore for SqliteStore {
    async fn schedule_timer(&self, entry: &TimerEntry) -> Result<()> {
        self.ensure_open()?;
        let mut conn = self.writer.acquire().await.map_err(backend)?;
        upsert_timer(&mut conn, entry).await.map_err(backend)
    }

    async fn cancel_timer(&self, workflow_id: &WorkflowId, timer_id: &TimerId) -> Result<()> {
        self.ensure_open()?;
        let mut conn = self.writer.acquire().await.map_err(backend)?;
        delete_timer(&mut conn, workflow_id, timer_id)
            .await
            .map_err(backend)
    }

    async fn timer(
        &self,
        workflow_id: &WorkflowId,
        timer_id: &TimerId,
    ) -> Result<Option<TimerEntry>> {
        self.ensure_open()?;
        let row = sqlx::query(
            "SELECT workflow_id, timer_id, command, fire_at FROM timers
             WHERE workflow_id = ?1 AND timer_id = ?2",
        )
        .bind(workflow_id.as_str())
        .bind(timer_id.as_str())
        .fetch_optional(&self.readers)
        .await
        .map_err(backend)?;
        row.as_ref().map(timer_from_row).transpose()
    }

    async fn due_timers(&self, as_of: Timestamp) -> Result<Vec<TimerEntry>> {
        self.ensure_open()?;
        let rows = sqlx::query(
            "SELECT workflow_id, timer_id, command, fire_at FROM timers
             WHERE fire_at <= ?1 ORDER BY fire_at, workflow_id, timer_id",
        )
        .bind(as_of.as_micros())
        .fetch_all(&self.readers)
        .await
        .map_err(backend)?;
        rows.iter().map(timer_from_row).collect()
    }

    async fn pending_timers(&self) -> Result<Vec<TimerEntry>> {
        self.ensure_open()?;
        let rows = sqlx::query(
            "SELECT workflow_id, timer_id, command, fire_at FROM timers
             ORDER BY fire_at, workflow_id, timer_id",
        )
        .fetch_all(&self.readers)
        .await
        .map_err(backend)?;
        rows.iter().map(timer_from_row).collect()
    }

    async fn pending_timers_page(
        &self,
        after: Option<TimerCursor>,
        limit: usize,
    ) -> Result<TimerPage> {
        self.ensure_open()?;
        let readers = &self.readers;
        let after = after.as_ref();
        let (rows, at_end) = fetch_page(
            limit,
            |asked| async move {
                let mut query = QueryBuilder::<Sqlite>::new(
                    "SELECT workflow_id, timer_id, command, fire_at FROM timers",
                );
                if let Some((fire_at, workflow_id, timer_id)) = after {
                    query
                        .push(" WHERE (fire_at, workflow_id, timer_id) > (")
                        .push_bind(fire_at.as_micros())
                        .push(", ")
                        .push_bind(workflow_id.as_str())
                        .push(", ")
                        .push_bind(timer_id.as_str())
                        .push(")");
                }
                query
                    .push(" ORDER BY fire_at, workflow_id, timer_id LIMIT ")
                    .push_bind(asked);
                query.build().fetch_all(readers).await.map_err(backend)
            },
            |row| timer_from_row(row).is_ok(),
        )
        .await?;
        let mut page = TimerPage::default();
        for row in &rows {
            match timer_from_row(row) {
                Ok(entry) => page.timers.push(entry),
                Err(error) => page.broken.push((
                    format!(
                        "{} {}",
                        raw_key(row, "workflow_id"),
                        raw_key(row, "timer_id")
                    ),
                    error,
                )),
            }
        }
        if !at_end {
            page.next = rows
                .last()
                .and_then(|row| timer_from_row(row).ok())
                .map(|entry| entry.cursor());
        }
        Ok(page)
    }

    async fn timers_of(&self, workflow_id: &WorkflowId) -> Result<Vec<TimerEntry>> {
        self.ensure_open()?;
        let rows = sqlx::query(
            "SELECT workflow_id, timer_id, command, fire_at FROM timers
             WHERE workflow_id = ?1 ORDER BY timer_id",
        )
        .bind(workflow_id.as_str())
        .fetch_all(&self.readers)
        .await
        .map_err(backend)?;
        rows.iter().map(timer_from_row).collect()
    }
}

#[async_trait]
impl VisibilityStore for SqliteStore {
    async fn summary(&self, workflow_id: &WorkflowId) -> Result<Option<WorkflowSummary>> {
        self.ensure_open()?;
        let mut conn = self.readers.acquire().await.map_err(backend)?;
        load_summary(&mut conn, workflow_id).await
    }

    async fn list(
        &self,
        filter: &ListFilter,
        after: Option<&ListCursor>,
        limit: usize,
    ) -> Result<ListPage> {
        self.ensure_open()?;
        // One snapshot for the rows and their attributes.
        let mut tx = self.readers.begin().await.map_err(backend)?;
        visibility::list(&mut tx, filter, after, limit).await
    }

    async fn count(&self, filter: &ListFilter) -> Result<u64> {
        self.ensure_open()?;
        let mut conn = self.readers.acquire().await.map_err(backend)?;
        visibility::count(&mut conn, filter).await
    }

    async fn search_attributes(&self, workflow_id: &WorkflowId) -> Result<SearchAttributes> {
        self.ensure_open()?;
        let mut conn = self.readers.acquire().await.map_err(backend)?;
        Ok(
            visibility::load_attributes(&mut conn, std::slice::from_ref(workflow_id))
                .await?
                .remove(workflow_id.as_str())
                .unwrap_or_default(),
        )
    }

    async fn attribute_kinds(&self, names: &[String]) -> Result<HashMap<String, AttributeKind>> {
        self.ensure_open()?;
        let mut conn = self.readers.acquire().await.map_err(backend)?;
        visibility::kinds_of(&mut conn, names.iter().map(String::as_str)).await
    }

    async fn list_running_page(
        &self,
        after: Option<&WorkflowId>,
        limit: usize,
        without_pending_timers: bool,
    ) -> Result<RunningPage> {
        self.ensure_open()?;
        let readers = &self.readers;
        let (rows, at_end) = fetch_page(
            limit,
            |asked| async move {
                // Every row that may be running, so that one whose status
                // does not decode is reported rather than silently skipped.
                let mut query =
                    QueryBuilder::<Sqlite>::new(format!("SELECT {SUMMARY_COLUMNS} FROM workflows WHERE {MAYBE_RUNNING}"));
                if let Some(after) = after {
                    query.push(" AND workflow_id > ").push_bind(after.as_str());
                }
                if without_pending_timers {
                    query.push(format!(
                        " AND NOT EXISTS (SELECT 1 FROM timers WHERE timers.workflow_id = workflows.workflow_id \
                         AND timers.command <> {DEADLINE_COMMAND})"
                    ));
                }
                query.push(" ORDER BY workflow_id LIMIT ").push_bind(asked);
                query.build().fetch_all(readers).await.map_err(backend)
            },
            |row| WorkflowId::new(raw_key(row, "workflow_id")).is_ok(),
        )
        .await?;
        let mut page = RunningPage::default();
        for row in &rows {
            match summary_from_row(row) {
                Ok(summary) if summary.status.is_terminal() => {}
                Ok(summary) => page.rows.push(summary),
                Err(error) => page.broken.push((raw_key(row, "workflow_id"), error)),
            }
        }
        if !at_end {
            page.next = rows
                .last()
                .and_then(|row| WorkflowId::new(raw_key(row, "workflow_id")).ok());
        }
        Ok(page)
    }

    async fn reconcile_visibility_page(
        &self,
        after: Option<&WorkflowId>,
        limit: usize,
    ) -> Result<(ReconcileReport, Option<WorkflowId>)> {
        self.ensure_open()?;
        let readers = &self.readers;
        let (rows, at_end) = fetch_page(
            limit,
            |asked| async move {
                let mut query =
                    QueryBuilder::<Sqlite>::new("SELECT DISTINCT workflow_id FROM events");
                if let Some(after) = after {
                    query
                        .push(" WHERE workflow_id > ")
                        .push_bind(after.as_str());
                }
                query.push(" ORDER BY workflow_id LIMIT ").push_bind(asked);
                query.build().fetch_all(readers).await.map_err(backend)
            },
            |row| WorkflowId::new(raw_key(row, "workflow_id")).is_ok(),
        )
        .await?;
        let next = if at_end {
            None
        } else {
            rows.last()
                .and_then(|row| WorkflowId::new(raw_key(row, "workflow_id")).ok())
        };
        let mut report = ReconcileReport::default();

        // Rows without any history describe nothing; dropping them is the
        // projection of an empty history. Only in this page's range, so that
        // the walk as a whole covers each id once.
        for table in ["workflows", "search_attributes"] {
            let mut orphans = QueryBuilder::<Sqlite>::new(format!(
                "DELETE FROM {table}
                 WHERE NOT EXISTS (SELECT 1 FROM events WHERE events.workflow_id = {table}.workflow_id)"
            ));
            if let Some(after) = after {
                orphans
                    .push(" AND workflow_id > ")
                    .push_bind(after.as_str());
            }
            if let Some(next) = &next {
                orphans
                    .push(" AND workflow_id <= ")
                    .push_bind(next.as_str());
            }
            self.ensure_open()?;
            let orphans = orphans
                .build()
                .execute(&self.writer)
                .await
                .map_err(backend)?;
            // Attributes go with their row: only rows count as rebuilt.
            if table == "workflows" {
                report.rebuilt += usize::try_from(orphans.rows_affected()).unwrap_or(usize::MAX);
            }
        }

        let consistent = self.consistent_in(after, next.as_ref()).await?;
        for row in &rows {
            // Ids are validated before they are ever written, so an invalid
            // one cannot be named in the report (it has no `WorkflowId`) and
            // cannot be repaired by a projection either; it is left for an
            // operator.
            let Ok(workflow_id) = WorkflowId::new(raw_key(row, "workflow_id")) else {
                continue;
            };
            let outcome = if consistent.contains(&workflow_id) {
                Ok(false)
            } else {
                match self.is_consistent(&workflow_id).await {
                    Ok(true) => Ok(false),
                    Ok(false) | Err(StoreError::Corrupt { .. }) => self.repair(&workflow_id).await,
                    Err(error) => Err(error),
                }
            };
            match outcome {
                Ok(rebuilt) => report.rebuilt += usize::from(rebuilt),
                Err(error @ StoreError::Corrupt { .. }) => {
                    report.broken.push((workflow_id, error.to_string()))
                }
                Err(error) => return Err(error),
            }
        }
        Ok((report, next))
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.writer.close().await;
        self.readers.close().await;
        // Only once no connection is left may another store take the file.
        self.lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
    }
}
