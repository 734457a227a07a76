//! An in-memory store: the reference backend for tests and for `store: :memory`.
//! Nothing survives the process.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use super::{
    AppendRequest, EventLog, ReconcileReport, Result, Store, StoreError, TimerEffect, TimerEntry, TimerStore,
    VisibilityStore, WorkflowFilter, plan_append,
};
use crate::event::RecordedEvent;
use crate::ids::{TimerId, WorkflowId};
use crate::status::WorkflowSummary;
use crate::time::Timestamp;

#[derive(Default)]
struct Tables {
    histories: HashMap<WorkflowId, Vec<RecordedEvent>>,
    summaries: HashMap<WorkflowId, WorkflowSummary>,
    timers: BTreeMap<(WorkflowId, TimerId), TimerEntry>,
    closed: bool,
}

/// The in-memory backend.
#[derive(Default)]
pub struct MemoryStore {
    tables: Mutex<Tables>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn tables(&self) -> Result<MutexGuard<'_, Tables>> {
        let tables = self
            .tables
            .lock()
            .map_err(|_| StoreError::Backend("memory store lock poisoned".into()))?;
        if tables.closed {
            return Err(StoreError::Closed);
        }
        Ok(tables)
    }
}

fn sorted_by_fire_at<'a>(entries: impl Iterator<Item = &'a TimerEntry>) -> Vec<TimerEntry> {
    let mut entries: Vec<TimerEntry> = entries.cloned().collect();
    entries.sort_by(|a, b| (a.fire_at, &a.workflow_id, &a.timer_id).cmp(&(b.fire_at, &b.workflow_id, &b.timer_id)));
    entries
}

impl Tables {
    fn apply(&mut self, request: &AppendRequest) -> Result<()> {
        let plan = plan_append(self.summaries.get(&request.workflow_id), request)?;
        for effect in plan.timers {
            match effect {
                TimerEffect::Schedule(entry) => {
                    self.timers.insert((entry.workflow_id.clone(), entry.timer_id.clone()), entry);
                }
                TimerEffect::Remove(workflow_id, timer_id) => {
                    self.timers.remove(&(workflow_id, timer_id));
                }
                TimerEffect::RemoveAll(workflow_id) => {
                    self.timers.retain(|(owner, _), _| *owner != workflow_id);
                }
            }
        }
        self.histories
            .entry(request.workflow_id.clone())
            .or_default()
            .extend(request.events.iter().cloned());
        self.summaries.insert(request.workflow_id.clone(), plan.summary);
        Ok(())
    }
}

#[async_trait]
impl EventLog for MemoryStore {
    async fn append_batch(&self, batch: &[AppendRequest]) -> Result<Vec<Result<()>>> {
        let mut tables = self.tables()?;
        Ok(batch.iter().map(|request| tables.apply(request)).collect())
    }

    async fn read_from(&self, workflow_id: &WorkflowId, from_seq: u64) -> Result<Vec<RecordedEvent>> {
        let tables = self.tables()?;
        let history = tables.histories.get(workflow_id).map(Vec::as_slice).unwrap_or_default();
        let skip = usize::try_from(from_seq.saturating_sub(1)).unwrap_or(usize::MAX);
        Ok(history.iter().skip(skip).cloned().collect())
    }
}

#[async_trait]
impl TimerStore for MemoryStore {
    async fn schedule_timer(&self, entry: &TimerEntry) -> Result<()> {
        self.tables()?
            .timers
            .insert((entry.workflow_id.clone(), entry.timer_id.clone()), entry.clone());
        Ok(())
    }

    async fn cancel_timer(&self, workflow_id: &WorkflowId, timer_id: &TimerId) -> Result<()> {
        self.tables()?.timers.remove(&(workflow_id.clone(), timer_id.clone()));
        Ok(())
    }

    async fn timer(&self, workflow_id: &WorkflowId, timer_id: &TimerId) -> Result<Option<TimerEntry>> {
        Ok(self.tables()?.timers.get(&(workflow_id.clone(), timer_id.clone())).cloned())
    }

    async fn due_timers(&self, as_of: Timestamp) -> Result<Vec<TimerEntry>> {
        let tables = self.tables()?;
        Ok(sorted_by_fire_at(tables.timers.values().filter(|entry| entry.fire_at <= as_of)))
    }

    async fn pending_timers(&self) -> Result<Vec<TimerEntry>> {
        Ok(sorted_by_fire_at(self.tables()?.timers.values()))
    }
}

#[async_trait]
impl VisibilityStore for MemoryStore {
    async fn summary(&self, workflow_id: &WorkflowId) -> Result<Option<WorkflowSummary>> {
        Ok(self.tables()?.summaries.get(workflow_id).cloned())
    }

    async fn query(&self, filter: &WorkflowFilter) -> Result<Vec<WorkflowSummary>> {
        let tables = self.tables()?;
        let mut rows: Vec<WorkflowSummary> =
            tables.summaries.values().filter(|row| filter.matches(row)).cloned().collect();
        rows.sort_by(|a, b| (a.started_at, &a.workflow_id).cmp(&(b.started_at, &b.workflow_id)));
        rows.truncate(filter.limit.unwrap_or(usize::MAX));
        Ok(rows)
    }

    async fn reconcile_visibility(&self) -> Result<ReconcileReport> {
        let mut tables = self.tables()?;
        let Tables {
            histories,
            summaries,
            ..
        } = &mut *tables;
        let mut report = ReconcileReport::default();
        for (workflow_id, history) in histories.iter() {
            let head = history.last().map_or(0, RecordedEvent::seq);
            if summaries.get(workflow_id).map(|row| row.head_seq) == Some(head) {
                continue;
            }
            match WorkflowSummary::project(None, history) {
                Ok(Some(row)) => {
                    summaries.insert(workflow_id.clone(), row);
                    report.rebuilt += 1;
                }
                Ok(None) => {}
                Err(error) => report.broken.push((workflow_id.clone(), error.to_string())),
            }
        }
        Ok(report)
    }
}

#[async_trait]
impl Store for MemoryStore {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn close(&self) {
        if let Ok(mut tables) = self.tables.lock() {
            tables.closed = true;
        }
    }
}
