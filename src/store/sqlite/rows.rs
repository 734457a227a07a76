//! Decoding stored rows. Every failure is [`StoreError::Corrupt`] naming the
//! row, so that one bad row can be reported and skipped by the caller.

use sqlx::sqlite::SqliteRow;
use sqlx::{Decode, Row, Sqlite, Type};

use crate::codec;
use crate::event::{Envelope, RecordedEvent};
use crate::ids::{RunId, TimerId, WorkflowId};
use crate::status::{RunSummary, WorkflowStatus, WorkflowSummary};
use crate::store::{Result, StoreError, TimerEntry};
use crate::time::Timestamp;

pub(super) fn column<'r, T>(
    row: &'r SqliteRow,
    name: &str,
    location: &dyn Fn() -> String,
) -> Result<T>
where
    T: Decode<'r, Sqlite> + Type<Sqlite>,
{
    row.try_get(name).map_err(|error| StoreError::Corrupt {
        location: location(),
        reason: format!("column {name}: {error}"),
    })
}

pub(super) fn to_u64(value: i64, what: &str, location: &dyn Fn() -> String) -> Result<u64> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt {
        location: location(),
        reason: format!("negative {what} {value}"),
    })
}

pub(super) fn event_from_row(workflow_id: &WorkflowId, row: &SqliteRow) -> Result<RecordedEvent> {
    let location = || format!("{workflow_id} events row");
    let seq = to_u64(column(row, "seq", &location)?, "seq", &location)?;
    let recorded_at: i64 = column(row, "recorded_at", &location)?;
    let format: i64 = column(row, "format", &location)?;
    let body: Vec<u8> = column(row, "body", &location)?;
    let format = u16::try_from(format).map_err(|_| StoreError::Corrupt {
        location: format!("{workflow_id} seq {seq}"),
        reason: format!("event format {format} is out of range"),
    })?;
    let event = codec::decode(format, &body)
        .map_err(|error| StoreError::corrupt(workflow_id, seq, error))?;
    Ok(RecordedEvent {
        envelope: Envelope {
            workflow_id: workflow_id.clone(),
            seq,
            recorded_at: Timestamp::from_micros(recorded_at),
        },
        event,
    })
}

pub(super) fn summary_from_row(row: &SqliteRow) -> Result<WorkflowSummary> {
    let raw_id: String = column(row, "workflow_id", &|| "workflows row".into())?;
    let location = || format!("workflows row {raw_id}");
    let corrupt = |reason: String| StoreError::Corrupt {
        location: location(),
        reason,
    };
    let workflow_id =
        WorkflowId::new(raw_id.clone()).map_err(|error| corrupt(error.to_string()))?;
    let run_id: String = column(row, "run_id", &location)?;
    let status: String = column(row, "status", &location)?;
    let closed_at: Option<i64> = column(row, "closed_at", &location)?;
    Ok(WorkflowSummary {
        workflow_id,
        workflow_type: column(row, "workflow_type", &location)?,
        run_id: RunId::parse(&run_id).map_err(|error| corrupt(error.to_string()))?,
        status: WorkflowStatus::parse(&status)
            .ok_or_else(|| corrupt(format!("unknown status {status:?}")))?,
        started_at: Timestamp::from_micros(column(row, "started_at", &location)?),
        closed_at: closed_at.map(Timestamp::from_micros),
        updated_at: Timestamp::from_micros(column(row, "updated_at", &location)?),
        head_seq: to_u64(column(row, "head_seq", &location)?, "head_seq", &location)?,
    })
}

pub(super) fn timer_from_row(row: &SqliteRow) -> Result<TimerEntry> {
    let raw_id: String = column(row, "workflow_id", &|| "timers row".into())?;
    let timer_id: String = column(row, "timer_id", &|| format!("timers row of {raw_id}"))?;
    let location = || format!("timers row {raw_id} {timer_id}");
    let corrupt = |reason: String| StoreError::Corrupt {
        location: location(),
        reason,
    };
    let command: i64 = column(row, "command", &location)?;
    Ok(TimerEntry {
        workflow_id: WorkflowId::new(raw_id.clone()).map_err(|error| corrupt(error.to_string()))?,
        command: u32::try_from(command)
            .map_err(|_| corrupt(format!("command {command} is out of range")))?,
        fire_at: Timestamp::from_micros(column(row, "fire_at", &location)?),
        timer_id: TimerId::from_stored(timer_id.clone()),
    })
}

pub(super) fn run_from_row(workflow_id: &WorkflowId, row: &SqliteRow) -> Result<RunSummary> {
    let first_seq: i64 = column(row, "first_seq", &|| format!("runs row of {workflow_id}"))?;
    let location = || format!("runs row {workflow_id} first_seq {first_seq}");
    let corrupt = |reason: String| StoreError::Corrupt {
        location: location(),
        reason,
    };
    let run_id: String = column(row, "run_id", &location)?;
    let parent_run_id: Option<String> = column(row, "parent_run_id", &location)?;
    let status: String = column(row, "status", &location)?;
    let closed_at: Option<i64> = column(row, "closed_at", &location)?;
    Ok(RunSummary {
        run_id: RunId::parse(&run_id).map_err(|error| corrupt(error.to_string()))?,
        parent_run_id: parent_run_id
            .map(|parent| RunId::parse(&parent))
            .transpose()
            .map_err(|error| corrupt(error.to_string()))?,
        workflow_type: column(row, "workflow_type", &location)?,
        status: WorkflowStatus::parse(&status)
            .ok_or_else(|| corrupt(format!("unknown status {status:?}")))?,
        first_seq: to_u64(first_seq, "first_seq", &location)?,
        last_seq: to_u64(column(row, "last_seq", &location)?, "last_seq", &location)?,
        started_at: Timestamp::from_micros(column(row, "started_at", &location)?),
        closed_at: closed_at.map(Timestamp::from_micros),
    })
}

/// The raw text of a row's key column, for naming a row that does not
/// decode; a key that is not even text is shown as such.
pub(super) fn raw_key(row: &SqliteRow, name: &str) -> String {
    row.try_get::<String, _>(name)
        .unwrap_or_else(|_| format!("<{name} is not text>"))
}
