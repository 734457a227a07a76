//! The SQLite schema and its migrations. The version lives in the
//! `aion_schema` table; released migrations are never edited.

use sqlx::sqlite::SqlitePool;

use super::errors::backend;
use super::runs::backfill_runs;
use crate::store::{Result, StoreError};

/// Schema migrations, oldest first: applying `MIGRATIONS[i]` brings the schema
/// from version `i` to `i + 1`. Released entries are never edited; a change is
/// a new entry.
pub(super) const MIGRATIONS: &[&str] = &[
    SCHEMA_V1, SCHEMA_V2, SCHEMA_V3, SCHEMA_V4, SCHEMA_V5, SCHEMA_V6,
];

/// The newest schema version this build can read and write.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

const SCHEMA_V1: &str = r#"
CREATE TABLE events (
    workflow_id TEXT    NOT NULL,
    seq         INTEGER NOT NULL CHECK (seq >= 1),
    recorded_at INTEGER NOT NULL,
    kind        TEXT    NOT NULL,
    format      INTEGER NOT NULL,
    body        BLOB    NOT NULL,
    PRIMARY KEY (workflow_id, seq)
);

CREATE TABLE workflows (
    workflow_id   TEXT    NOT NULL PRIMARY KEY,
    workflow_type TEXT    NOT NULL,
    run_id        TEXT    NOT NULL,
    status        TEXT    NOT NULL,
    started_at    INTEGER NOT NULL,
    closed_at     INTEGER,
    updated_at    INTEGER NOT NULL,
    head_seq      INTEGER NOT NULL
);
CREATE INDEX workflows_by_status ON workflows (status, started_at, workflow_id);
CREATE INDEX workflows_by_type ON workflows (workflow_type, started_at, workflow_id);
CREATE INDEX workflows_by_started_at ON workflows (started_at, workflow_id);

CREATE TABLE timers (
    workflow_id TEXT    NOT NULL,
    timer_id    TEXT    NOT NULL,
    command     INTEGER NOT NULL,
    fire_at     INTEGER NOT NULL,
    PRIMARY KEY (workflow_id, timer_id)
);
CREATE INDEX timers_by_fire_at ON timers (fire_at, workflow_id, timer_id);
"#;

/// Version 2: the runs table (one row per run segment, so that loading a run
/// never reads a multi-run history from seq 1, DESIGN §7) and an index of the
/// visibility rows that may be running, for paged recovery.
///
/// Rows for histories written before are filled in by [`backfill_runs`]
/// in the same transaction. The partial index's condition must stay
/// textually identical to [`MAYBE_RUNNING`], or SQLite will not use it.
const SCHEMA_V2: &str = r#"
CREATE TABLE runs (
    workflow_id   TEXT    NOT NULL,
    first_seq     INTEGER NOT NULL CHECK (first_seq >= 1),
    run_id        TEXT    NOT NULL,
    parent_run_id TEXT,
    workflow_type TEXT    NOT NULL,
    status        TEXT    NOT NULL,
    started_at    INTEGER NOT NULL,
    closed_at     INTEGER,
    last_seq      INTEGER NOT NULL,
    PRIMARY KEY (workflow_id, first_seq)
);

CREATE INDEX workflows_maybe_running ON workflows (workflow_id)
    WHERE status NOT IN ('completed', 'failed', 'cancelled', 'timed_out', 'continued_as_new');
"#;

/// Version 3: `terminated` is a terminal status, so the partial index of
/// rows that may be running leaves terminated workflows out.
const SCHEMA_V3: &str = r#"
DROP INDEX workflows_maybe_running;
CREATE INDEX workflows_maybe_running ON workflows (workflow_id)
    WHERE status NOT IN ('completed', 'failed', 'cancelled', 'terminated', 'timed_out', 'continued_as_new');
"#;

/// Version 4: the retry state of activities in flight (see
/// [`crate::store::attempts`]), one row per activity, its state a JSON body.
const SCHEMA_V4: &str = r#"
CREATE TABLE activity_attempts (
    workflow_id TEXT    NOT NULL,
    command     INTEGER NOT NULL,
    run_id      TEXT    NOT NULL,
    body        BLOB    NOT NULL,
    PRIMARY KEY (workflow_id, command)
);
"#;

/// Version 5: search attributes, for listing and counting workflows by
/// them. `search_attributes` holds each workflow's attributes (its latest
/// run's), written in the transaction of each append; `value` has no
/// declared type, so SQLite keeps each value as it was bound (INTEGER for
/// ints, booleans and times in microseconds, REAL, TEXT) and compares
/// numbers numerically. `kind` says how to read it back. Each row repeats
/// its workflow's type, status and times, so that counting by attributes
/// reads one index and never the `workflows` table:
/// `search_attributes_by_value` covers every filter column;
/// `search_attributes_by_type_status` serves an attribute within one type
/// and status. The trigger `search_attributes_follow_workflow` keeps the
/// copies right when a run starts or ends (inside SQLite: no statement
/// more per append, and nothing for a workflow without attributes).
/// `search_attribute_types` fixes each name's kind at its first use (the
/// append checks the kinds before it writes; the trigger
/// `search_attribute_types_on_first_use` records new names).
/// Histories written before have no search attributes: nothing to backfill.
/// `workflows_by_type_status` serves the common listing (a type and a
/// status, newest first).
const SCHEMA_V5: &str = r#"
CREATE TABLE search_attributes (
    workflow_id   TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    kind          TEXT    NOT NULL,
    value                 NOT NULL,
    workflow_type TEXT    NOT NULL,
    status        TEXT    NOT NULL,
    started_at    INTEGER NOT NULL,
    closed_at     INTEGER,
    PRIMARY KEY (workflow_id, name)
) WITHOUT ROWID;
CREATE INDEX search_attributes_by_value
    ON search_attributes (name, kind, value, workflow_type, status, started_at, closed_at);
CREATE INDEX search_attributes_by_type_status
    ON search_attributes (name, kind, workflow_type, status, value);

CREATE TABLE search_attribute_types (
    name TEXT NOT NULL PRIMARY KEY,
    kind TEXT NOT NULL
) WITHOUT ROWID;

CREATE TRIGGER search_attributes_follow_workflow
    AFTER UPDATE OF workflow_type, status, started_at, closed_at ON workflows
BEGIN
    UPDATE search_attributes
    SET workflow_type = NEW.workflow_type, status = NEW.status,
        started_at = NEW.started_at, closed_at = NEW.closed_at
    WHERE workflow_id = NEW.workflow_id;
END;

CREATE TRIGGER search_attribute_types_on_first_use
    AFTER INSERT ON search_attributes
BEGIN
    INSERT INTO search_attribute_types (name, kind) VALUES (NEW.name, NEW.kind)
    ON CONFLICT (name) DO NOTHING;
END;

CREATE INDEX workflows_by_type_status ON workflows (workflow_type, status, started_at, workflow_id);
"#;

/// Version 6: runs found by id (a describe or a query of one run of a
/// workflow that continued as new many times reads one row, not the chain).
const SCHEMA_V6: &str = r#"
CREATE INDEX runs_by_run_id ON runs (workflow_id, run_id);
"#;

/// The visibility rows that may be running: every row whose status is not a
/// known terminal one, so that a row with a damaged status is still seen
/// (and reported) by recovery. Matches the `workflows_maybe_running` index.
pub(super) const MAYBE_RUNNING: &str = "status NOT IN ('completed', 'failed', 'cancelled', 'terminated', 'timed_out', 'continued_as_new')";

pub(super) async fn migrate(writer: &SqlitePool) -> Result<()> {
    let mut tx = writer
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(backend)?;
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS aion_schema (
             id      INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
             version INTEGER NOT NULL
         )",
    )
    .execute(&mut *tx)
    .await
    .map_err(backend)?;
    let found: i64 = sqlx::query_scalar("SELECT version FROM aion_schema WHERE id = 1")
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?
        .unwrap_or(0);
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    let applied = usize::try_from(found).map_err(|_| StoreError::Corrupt {
        location: "aion_schema".into(),
        reason: format!("negative schema version {found}"),
    })?;
    if applied == MIGRATIONS.len() {
        return Ok(());
    }
    for migration in &MIGRATIONS[applied..] {
        sqlx::raw_sql(*migration)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
    }
    if applied < 2 {
        // SQL alone cannot read run ids and types out of encoded events.
        backfill_runs(&mut tx).await?;
    }
    sqlx::query(
        "INSERT INTO aion_schema (id, version) VALUES (1, ?1)
         ON CONFLICT (id) DO UPDATE SET version = excluded.version",
    )
    .bind(SCHEMA_VERSION)
    .execute(&mut *tx)
    .await
    .map_err(backend)?;
    tx.commit().await.map_err(backend)
}
