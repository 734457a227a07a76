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
//! their own snapshot. The `(workflow_id, seq)` primary key is the last line of
//! defence: whatever the visibility row says, two events can never share a seq,
//! and a violation is reported as [`StoreError::SequenceConflict`], exactly as
//! on every other backend.
//!
//! The schema is created and migrated by the store itself; its version lives in
//! the `aion_schema` table.

mod errors;
mod rows;
mod schema;

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Connection, QueryBuilder, Sqlite, Transaction};

use self::errors::{backend, describe_open_error, is_unique_violation};
use self::rows::{event_from_row, summary_from_row, timer_from_row, to_u64};
use self::schema::migrate;
pub use self::schema::SCHEMA_VERSION;
use super::{
    AppendPlan, AppendRequest, EventLog, ReconcileReport, Result, Store, StoreError, TimerEffect, TimerEntry,
    TimerStore, VisibilityStore, WorkflowFilter, plan_append,
};
use crate::codec;
use crate::event::RecordedEvent;
use crate::ids::{TimerId, WorkflowId};
use crate::status::WorkflowSummary;
use crate::time::Timestamp;

const BACKEND: &str = "sqlite";

/// The first 16 bytes of every SQLite 3 database file.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// Rows per multi-row `INSERT` into `events`: large batches cost a few
/// statements instead of one per event, while staying far below SQLite's
/// limit on bound parameters (6 per row).
const EVENT_ROWS_PER_INSERT: usize = 64;

const SUMMARY_COLUMNS: &str = "workflow_id, workflow_type, run_id, status, started_at, closed_at, updated_at, head_seq";

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
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            synchronous_full: true,
            readers: 4,
            busy_timeout: Duration::from_secs(5),
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
            return Err(open_error("SqliteOptions.readers must be at least 1".into()));
        }
        check_path(path).map_err(open_error)?;

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
                    .journal_mode(SqliteJournalMode::Wal),
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
        self.writer.begin_with("BEGIN IMMEDIATE").await.map_err(backend)
    }

    /// Re-projects one workflow's row from its history, inside a write
    /// transaction so that no append can slip between the read and the write.
    async fn rebuild_row(&self, workflow_id: &WorkflowId, report: &mut ReconcileReport) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let history = match read_events(&mut tx, workflow_id, 1).await {
            Ok(history) => history,
            Err(error @ StoreError::Corrupt { .. }) => {
                report.broken.push((workflow_id.clone(), error.to_string()));
                return Ok(());
            }
            Err(error) => return Err(error),
        };
        let head = history.last().map_or(0, RecordedEvent::seq);
        let current = load_summary(&mut tx, workflow_id).await?;
        if current.as_ref().map(|row| row.head_seq) == Some(head) {
            // Repaired by an append since the scan.
            return Ok(());
        }
        match WorkflowSummary::project(None, &history) {
            Ok(Some(row)) => {
                upsert_summary(&mut tx, &row).await.map_err(backend)?;
                tx.commit().await.map_err(backend)?;
                report.rebuilt += 1;
            }
            Ok(None) => {}
            Err(error) => report.broken.push((workflow_id.clone(), error.to_string())),
        }
        Ok(())
    }
}

/// Checks what can be checked without letting SQLite touch the file, so that
/// the common mistakes give a clear message and leave the disk as it was.
fn check_path(path: &Path) -> std::result::Result<(), String> {
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    match std::fs::metadata(parent) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => return Err(format!("{} is not a directory", parent.display())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!(
                "the directory {} does not exist (Aion does not create directories; create it first)",
                parent.display()
            ));
        }
        Err(error) => return Err(format!("cannot access the directory {}: {error}", parent.display())),
    }
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(format!("cannot read the file: {error}")),
    };
    let meta = file
        .metadata()
        .map_err(|error| format!("cannot read the file: {error}"))?;
    if meta.is_dir() {
        return Err("the path is a directory, not a database file".into());
    }
    // SQLite treats an empty file as an empty database; anything else must
    // carry the header, or SQLite might try to turn it into one.
    if meta.len() == 0 {
        return Ok(());
    }
    let mut header = [0u8; 16];
    let mut filled = 0;
    while filled < header.len() {
        match file.read(&mut header[filled..]) {
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
    rows.iter().map(|row| event_from_row(workflow_id, row)).collect()
}

async fn load_summary(conn: &mut SqliteConnection, workflow_id: &WorkflowId) -> Result<Option<WorkflowSummary>> {
    let sql = format!("SELECT {SUMMARY_COLUMNS} FROM workflows WHERE workflow_id = ?1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(workflow_id.as_str())
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)?;
    row.as_ref().map(summary_from_row).transpose()
}

async fn stored_head(conn: &mut SqliteConnection, workflow_id: &WorkflowId) -> Result<u64> {
    let head: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM events WHERE workflow_id = ?1")
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

async fn delete_timer(conn: &mut SqliteConnection, workflow_id: &WorkflowId, timer_id: &TimerId) -> sqlx::Result<()> {
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
                seq: i64::try_from(seq).map_err(|_| invalid(format!("seq {seq} is out of range")))?,
                recorded_at: recorded.envelope.recorded_at.as_micros(),
                kind: recorded.event.kind().as_str(),
                body: codec::encode(&recorded.event)
                    .map_err(|error| invalid(format!("event at seq {seq} does not encode: {error}")))?,
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
) -> sqlx::Result<()> {
    let format = i64::from(codec::CURRENT_FORMAT);
    for chunk in events.chunks(EVENT_ROWS_PER_INSERT) {
        let mut insert =
            QueryBuilder::<Sqlite>::new("INSERT INTO events (workflow_id, seq, recorded_at, kind, format, body) ");
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
    }
    upsert_summary(conn, &plan.summary).await?;
    for effect in &plan.timers {
        match effect {
            TimerEffect::Schedule(entry) => upsert_timer(conn, entry).await?,
            TimerEffect::Remove(owner, timer_id) => delete_timer(conn, owner, timer_id).await?,
            TimerEffect::RemoveAll(owner) => {
                sqlx::query("DELETE FROM timers WHERE workflow_id = ?1")
                    .bind(owner.as_str())
                    .execute(&mut *conn)
                    .await?;
            }
        }
    }
    Ok(())
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
    let current = load_summary(conn, &request.workflow_id).await?;
    let plan = plan_append(current.as_ref(), request)?;
    let events = encoded?;
    write_plan(conn, &request.workflow_id, &events, &plan)
        .await
        .map_err(|error| {
            if is_unique_violation(&error) {
                RequestFailure::Duplicate
            } else {
                RequestFailure::Store(backend(error))
            }
        })
}

/// Applies one request inside the batch transaction, in a savepoint of its
/// own, so that whatever goes wrong with it (a row of its workflow that does
/// not decode, an event that does not encode, a statement that fails) is
/// rolled back and reported to that request only, with its own kind, while
/// the rest of the batch commits.
///
/// The outer error means the transaction itself is unusable (a savepoint
/// cannot be opened, released or rolled back): the whole batch must fail.
async fn apply_request(
    tx: &mut Transaction<'static, Sqlite>,
    request: &AppendRequest,
    encoded: Result<Vec<EncodedEvent>>,
) -> Result<Result<()>> {
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
        RequestFailure::Duplicate => {
            // The visibility row lagged behind the history (tampered with, or
            // not yet reconciled); the primary key caught the race.
            let found = stored_head(tx, &request.workflow_id).await?;
            StoreError::SequenceConflict {
                workflow_id: request.workflow_id.clone(),
                expected: request.expected_seq,
                found,
            }
        }
    }))
}

#[async_trait]
impl EventLog for SqliteStore {
    async fn append_batch(&self, batch: &[AppendRequest]) -> Result<Vec<Result<()>>> {
        self.ensure_open()?;
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let encoded: Vec<Result<Vec<EncodedEvent>>> = batch.iter().map(encode_request).collect();
        let mut tx = self.begin_write().await?;
        let mut results = Vec::with_capacity(batch.len());
        for (request, events) in batch.iter().zip(encoded) {
            results.push(apply_request(&mut tx, request, events).await?);
        }
        tx.commit().await.map_err(backend)?;
        Ok(results)
    }

    async fn read_from(&self, workflow_id: &WorkflowId, from_seq: u64) -> Result<Vec<RecordedEvent>> {
        self.ensure_open()?;
        let Ok(from_seq) = i64::try_from(from_seq) else {
            return Ok(Vec::new());
        };
        let mut conn = self.readers.acquire().await.map_err(backend)?;
        read_events(&mut conn, workflow_id, from_seq).await
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
        delete_timer(&mut conn, workflow_id, timer_id).await.map_err(backend)
    }

    async fn timer(&self, workflow_id: &WorkflowId, timer_id: &TimerId) -> Result<Option<TimerEntry>> {
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
}

#[async_trait]
impl VisibilityStore for SqliteStore {
    async fn summary(&self, workflow_id: &WorkflowId) -> Result<Option<WorkflowSummary>> {
        self.ensure_open()?;
        let mut conn = self.readers.acquire().await.map_err(backend)?;
        load_summary(&mut conn, workflow_id).await
    }

    async fn query(&self, filter: &WorkflowFilter) -> Result<Vec<WorkflowSummary>> {
        self.ensure_open()?;
        let mut query = QueryBuilder::<Sqlite>::new(format!("SELECT {SUMMARY_COLUMNS} FROM workflows WHERE 1 = 1"));
        if let Some(workflow_type) = &filter.workflow_type {
            query.push(" AND workflow_type = ").push_bind(workflow_type.as_str());
        }
        if let Some(status) = filter.status {
            query.push(" AND status = ").push_bind(status.as_str());
        }
        if let Some(from) = filter.started_at_or_after {
            query.push(" AND started_at >= ").push_bind(from.as_micros());
        }
        if let Some(until) = filter.started_before {
            query.push(" AND started_at < ").push_bind(until.as_micros());
        }
        // SQLite reads a negative LIMIT as "no limit".
        let limit = filter
            .limit
            .map_or(-1, |limit| i64::try_from(limit).unwrap_or(i64::MAX));
        query.push(" ORDER BY started_at, workflow_id LIMIT ").push_bind(limit);
        let rows = query.build().fetch_all(&self.readers).await.map_err(backend)?;
        rows.iter().map(summary_from_row).collect()
    }

    async fn reconcile_visibility(&self) -> Result<ReconcileReport> {
        self.ensure_open()?;
        let mut report = ReconcileReport::default();

        // A row without any history describes nothing; dropping it is the
        // projection of an empty history.
        let orphans = sqlx::query(
            "DELETE FROM workflows
             WHERE NOT EXISTS (SELECT 1 FROM events WHERE events.workflow_id = workflows.workflow_id)",
        )
        .execute(&self.writer)
        .await
        .map_err(backend)?;
        report.rebuilt += usize::try_from(orphans.rows_affected()).unwrap_or(usize::MAX);

        let stale: Vec<String> = sqlx::query_scalar(
            "SELECT heads.workflow_id
             FROM (SELECT workflow_id, MAX(seq) AS head FROM events GROUP BY workflow_id) AS heads
             LEFT JOIN workflows ON workflows.workflow_id = heads.workflow_id
             WHERE workflows.workflow_id IS NULL OR workflows.head_seq <> heads.head
             ORDER BY heads.workflow_id",
        )
        .fetch_all(&self.readers)
        .await
        .map_err(backend)?;
        for raw_id in stale {
            // Ids are validated before they are ever written, so an invalid
            // one cannot be named in the report (it has no `WorkflowId`) and
            // cannot be repaired by a projection either; it is left for an
            // operator.
            let Ok(workflow_id) = WorkflowId::new(raw_id) else {
                continue;
            };
            self.rebuild_row(&workflow_id, &mut report).await?;
        }
        Ok(report)
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
    }
}
