//! The `activity_attempts` table (see [`crate::store::attempts`]).

use async_trait::async_trait;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::SqliteStore;
use super::errors::backend;
use super::rows::column;
use crate::ids::{RunId, WorkflowId};
use crate::store::{ActivityAttempt, ActivityAttemptStore, AttemptState, Result, StoreError};

#[async_trait]
impl ActivityAttemptStore for SqliteStore {
    async fn save_activity_attempt(&self, attempt: &ActivityAttempt) -> Result<()> {
        self.ensure_open()?;
        let body = serde_json::to_vec(&attempt.state)
            .map_err(|error| StoreError::Backend(format!("activity attempt: {error}")))?;
        let mut conn = self.writer.acquire().await.map_err(backend)?;
        sqlx::query(
            "INSERT INTO activity_attempts (workflow_id, command, run_id, body) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (workflow_id, command) DO UPDATE SET
                 run_id = excluded.run_id,
                 body = excluded.body",
        )
        .bind(attempt.workflow_id.as_str())
        .bind(i64::from(attempt.command))
        .bind(attempt.run_id.to_string())
        .bind(body)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn activity_attempt(
        &self,
        workflow_id: &WorkflowId,
        run_id: RunId,
        command: u32,
    ) -> Result<Option<ActivityAttempt>> {
        self.ensure_open()?;
        let row = sqlx::query(
            "SELECT command, run_id, body FROM activity_attempts
             WHERE workflow_id = ?1 AND command = ?2 AND run_id = ?3",
        )
        .bind(workflow_id.as_str())
        .bind(i64::from(command))
        .bind(run_id.to_string())
        .fetch_optional(&self.readers)
        .await
        .map_err(backend)?;
        row.map(|row| attempt_from_row(workflow_id, &row))
            .transpose()
    }

    async fn activity_attempts_of(
        &self,
        workflow_id: &WorkflowId,
        run_id: RunId,
    ) -> Result<Vec<ActivityAttempt>> {
        self.ensure_open()?;
        let rows = sqlx::query(
            "SELECT command, run_id, body FROM activity_attempts
             WHERE workflow_id = ?1 AND run_id = ?2 ORDER BY command",
        )
        .bind(workflow_id.as_str())
        .bind(run_id.to_string())
        .fetch_all(&self.readers)
        .await
        .map_err(backend)?;
        rows.iter()
            .map(|row| attempt_from_row(workflow_id, row))
            .collect()
    }
}

fn attempt_from_row(workflow_id: &WorkflowId, row: &SqliteRow) -> Result<ActivityAttempt> {
    let location = || format!("activity_attempts row of {workflow_id}");
    let corrupt = |reason: String| StoreError::Corrupt {
        location: location(),
        reason,
    };
    let command: i64 = column(row, "command", &location)?;
    let run_id: String = column(row, "run_id", &location)?;
    let body: Vec<u8> = row
        .try_get("body")
        .map_err(|error| corrupt(error.to_string()))?;
    Ok(ActivityAttempt {
        workflow_id: workflow_id.clone(),
        run_id: RunId::parse(&run_id).map_err(|error| corrupt(error.to_string()))?,
        command: u32::try_from(command)
            .map_err(|_| corrupt(format!("command {command} is out of range")))?,
        state: serde_json::from_slice::<AttemptState>(&body)
            .map_err(|error| corrupt(error.to_string()))?,
    })
}
