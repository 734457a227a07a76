//! An in-memory store: the reference backend for tests and for `store: :memory`.
//! Nothing survives the process.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use super::{
    ActivityAttempt, ActivityAttemptStore, AppendRequest, DEADLINE_COMMAND, EventLog, HistoryHead,
    ReconcileReport, Result, RunningPage, Store, StoreError, TimerCursor, TimerEffect, TimerEntry,
    TimerPage, TimerStore, VisibilityStore, plan_append,
};
use crate::event::{AttributeKind, RecordedEvent};
use crate::ids::{RunId, TimerId, WorkflowId};
use crate::status::{RunSummary, WorkflowStatus, WorkflowSummary};
use crate::time::Timestamp;
use crate::visibility::{
    ListCursor, ListFilter, ListPage, SearchAttributes, WorkflowListing, project_attributes,
};

#[derive(Default)]
struct Tables {
    histories: HashMap<WorkflowId, Vec<RecordedEvent>>,
    /// The runs index, as on every backend: one entry per run, oldest first.
    runs: HashMap<WorkflowId, Vec<RunSummary>>,
    summaries: BTreeMap<WorkflowId, WorkflowSummary>,
    timers: BTreeMap<(WorkflowId, TimerId), TimerEntry>,
    attempts: BTreeMap<(WorkflowId, u32), ActivityAttempt>,
    /// Each workflow's search attributes (latest run), and each name's kind.
    attributes: HashMap<WorkflowId, SearchAttributes>,
    attribute_kinds: HashMap<String, AttributeKind>,
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
    entries.sort_by(|a, b| {
        (a.fire_at, &a.workflow_id, &a.timer_id).cmp(&(b.fire_at, &b.workflow_id, &b.timer_id))
    });
    entries
}

impl Tables {
    fn head(&self, workflow_id: &WorkflowId) -> HistoryHead {
        HistoryHead {
            head_seq: self
                .histories
                .get(workflow_id)
                .map_or(0, |history| history.len() as u64),
            latest_run: self
                .runs
                .get(workflow_id)
                .and_then(|runs| runs.last().cloned()),
        }
    }

    fn apply(&mut self, request: &AppendRequest) -> Result<()> {
        let plan = plan_append(&self.head(&request.workflow_id), request)?;
        if let Some(changes) = &plan.attributes {
            changes.check_kinds(&self.attribute_kinds)?;
            for (name, value) in &changes.set {
                self.attribute_kinds.insert(name.clone(), value.kind());
            }
            let attributes = self
                .attributes
                .entry(request.workflow_id.clone())
                .or_default();
            if changes.clear {
                attributes.clear();
            }
            attributes.extend(changes.set.clone());
        }
        let runs = self.runs.entry(request.workflow_id.clone()).or_default();
        for run in plan.runs {
            match runs.last_mut() {
                Some(last) if last.first_seq == run.first_seq => *last = run,
                _ => runs.push(run),
            }
        }
        for effect in plan.timers {
            match effect {
                TimerEffect::Schedule(entry) => {
                    self.timers
                        .insert((entry.workflow_id.clone(), entry.timer_id.clone()), entry);
                }
                TimerEffect::Remove(workflow_id, timer_id) => {
                    self.timers.remove(&(workflow_id, timer_id));
                }
                TimerEffect::RemoveAll(workflow_id) => {
                    self.timers.retain(|(owner, _), _| *owner != workflow_id);
                    self.attempts.retain(|(owner, _), _| *owner != workflow_id);
                }
            }
        }
        self.histories
            .entry(request.workflow_id.clone())
            .or_default()
            .extend(request.events.iter().cloned());
        self.summaries
            .insert(request.workflow_id.clone(), plan.summary);
        Ok(())
    }
}

#[async_trait]
impl EventLog for MemoryStore {
    async fn append_batch(&self, batch: &[AppendRequest]) -> Result<Vec<Result<()>>> {
        let mut tables = self.tables()?;
        Ok(batch.iter().map(|request| tables.apply(request)).collect())
    }

    async fn read_from(
        &self,
        workflow_id: &WorkflowId,
        from_seq: u64,
    ) -> Result<Vec<RecordedEvent>> {
        let tables = self.tables()?;
        let history = tables
            .histories
            .get(workflow_id)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let skip = usize::try_from(from_seq.saturating_sub(1)).unwrap_or(usize::MAX);
        Ok(history.iter().skip(skip).cloned().collect())
    }

    async fn read_range(
        &self,
        workflow_id: &WorkflowId,
        from_seq: u64,
        to_seq: u64,
    ) -> Result<Vec<RecordedEvent>> {
        let tables = self.tables()?;
        let history = tables
            .histories
            .get(workflow_id)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let skip = usize::try_from(from_seq.saturating_sub(1)).unwrap_or(usize::MAX);
        let take = usize::try_from(to_seq.saturating_add(1).saturating_sub(from_seq.max(1)))
            .unwrap_or(usize::MAX);
        Ok(history.iter().skip(skip).take(take).cloned().collect())
    }

    async fn head(&self, workflow_id: &WorkflowId) -> Result<u64> {
        Ok(self.tables()?.head(workflow_id).head_seq)
    }

    async fn read_run_chain(&self, workflow_id: &WorkflowId) -> Result<Vec<RunSummary>> {
        Ok(self
            .tables()?
            .runs
            .get(workflow_id)
            .cloned()
            .unwrap_or_default())
    }

    async fn read_current_run(
        &self,
        workflow_id: &WorkflowId,
    ) -> Result<Option<(RunSummary, Vec<RecordedEvent>)>> {
        let tables = self.tables()?;
        let Some(run) = tables.runs.get(workflow_id).and_then(|runs| runs.last()) else {
            return Ok(None);
        };
        let history = tables
            .histories
            .get(workflow_id)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let start = usize::try_from(run.first_seq - 1).unwrap_or(usize::MAX);
        Ok(Some((
            run.clone(),
            history.get(start..).unwrap_or_default().to_vec(),
        )))
    }
}

#[async_trait]
impl TimerStore for MemoryStore {
    async fn schedule_timer(&self, entry: &TimerEntry) -> Result<()> {
        self.tables()?.timers.insert(
            (entry.workflow_id.clone(), entry.timer_id.clone()),
            entry.clone(),
        );
        Ok(())
    }

    async fn cancel_timer(&self, workflow_id: &WorkflowId, timer_id: &TimerId) -> Result<()> {
        self.tables()?
            .timers
            .remove(&(workflow_id.clone(), timer_id.clone()));
        Ok(())
    }

    async fn timer(
        &self,
        workflow_id: &WorkflowId,
        timer_id: &TimerId,
    ) -> Result<Option<TimerEntry>> {
        Ok(self
            .tables()?
            .timers
            .get(&(workflow_id.clone(), timer_id.clone()))
            .cloned())
    }

    async fn due_timers(&self, as_of: Timestamp) -> Result<Vec<TimerEntry>> {
        let tables = self.tables()?;
        Ok(sorted_by_fire_at(
            tables
                .timers
                .values()
                .filter(|entry| entry.fire_at <= as_of),
        ))
    }

    async fn pending_timers(&self) -> Result<Vec<TimerEntry>> {
        Ok(sorted_by_fire_at(self.tables()?.timers.values()))
    }

    async fn pending_timers_page(
        &self,
        after: Option<TimerCursor>,
        limit: usize,
    ) -> Result<TimerPage> {
        let limit = limit.max(1);
        let tables = self.tables()?;
        let mut timers = sorted_by_fire_at(
            tables
                .timers
                .values()
                .filter(|entry| after.as_ref().is_none_or(|after| entry.cursor() > *after)),
        );
        let next = if timers.len() > limit {
            timers.truncate(limit);
            timers.last().map(TimerEntry::cursor)
        } else {
            None
        };
        Ok(TimerPage {
            timers,
            broken: Vec::new(),
            next,
        })
    }

    async fn timers_of(&self, workflow_id: &WorkflowId) -> Result<Vec<TimerEntry>> {
        let tables = self.tables()?;
        Ok(tables
            .timers
            .range((workflow_id.clone(), TimerId::from_stored(String::new()))..)
            .take_while(|((owner, _), _)| owner == workflow_id)
            .map(|(_, entry)| entry.clone())
            .collect())
    }
}

#[async_trait]
impl VisibilityStore for MemoryStore {
    async fn summary(&self, workflow_id: &WorkflowId) -> Result<Option<WorkflowSummary>> {
        Ok(self.tables()?.summaries.get(workflow_id).cloned())
    }

    async fn list(
        &self,
        filter: &ListFilter,
        after: Option<&ListCursor>,
        limit: usize,
    ) -> Result<ListPage> {
        let limit = limit.max(1);
        let tables = self.tables()?;
        let mut rows = tables.listings(filter);
        rows.retain(|row| after.is_none_or(|after| row.cursor() < *after));
        rows.sort_by_key(|row| std::cmp::Reverse(row.cursor()));
        let next = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(WorkflowListing::cursor)
        } else {
            None
        };
        Ok(ListPage { rows, next })
    }

    async fn count(&self, filter: &ListFilter) -> Result<u64> {
        Ok(self.tables()?.listings(filter).len() as u64)
    }

    async fn search_attributes(&self, workflow_id: &WorkflowId) -> Result<SearchAttributes> {
        Ok(self
            .tables()?
            .attributes
            .get(workflow_id)
            .cloned()
            .unwrap_or_default())
    }

    async fn attribute_kinds(&self, names: &[String]) -> Result<HashMap<String, AttributeKind>> {
        let tables = self.tables()?;
        Ok(names
            .iter()
            .filter_map(|name| {
                let kind = tables.attribute_kinds.get(name)?;
                Some((name.clone(), *kind))
            })
            .collect())
    }

    async fn list_running_page(
        &self,
        after: Option<&WorkflowId>,
        limit: usize,
        without_pending_timers: bool,
    ) -> Result<RunningPage> {
        let limit = limit.max(1);
        let tables = self.tables()?;
        let mut rows: Vec<WorkflowSummary> = tables
            .summaries
            .values()
            .filter(|row| after.is_none_or(|after| row.workflow_id > *after))
            .filter(|row| row.status == WorkflowStatus::Running)
            .filter(|row| !without_pending_timers || !tables.has_timers(&row.workflow_id))
            .take(limit + 1)
            .cloned()
            .collect();
        let next = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(|row| row.workflow_id.clone())
        } else {
            None
        };
        Ok(RunningPage {
            rows,
            broken: Vec::new(),
            next,
        })
    }

    // The memory store writes rows and histories under one lock, so they
    // never disagree; this only checks, and is what the contract asks of a
    // consistent store.
    async fn reconcile_visibility_page(
        &self,
        after: Option<&WorkflowId>,
        limit: usize,
    ) -> Result<(ReconcileReport, Option<WorkflowId>)> {
        let limit = limit.max(1);
        let mut tables = self.tables()?;
        let mut ids: Vec<WorkflowId> = tables
            .histories
            .keys()
            .filter(|id| after.is_none_or(|after| *id > after))
            .cloned()
            .collect();
        ids.sort();
        let next = if ids.len() > limit {
            ids.truncate(limit);
            ids.last().cloned()
        } else {
            None
        };
        let mut report = ReconcileReport::default();
        for workflow_id in ids {
            let history = &tables.histories[&workflow_id];
            match (
                WorkflowSummary::project(None, history),
                RunSummary::project(None, history),
            ) {
                (Ok(Some(row)), Ok(runs)) => {
                    let attributes = project_attributes(history);
                    let stale = tables.summaries.get(&workflow_id) != Some(&row)
                        || tables.runs.get(&workflow_id) != Some(&runs)
                        || tables
                            .attributes
                            .get(&workflow_id)
                            .unwrap_or(&SearchAttributes::new())
                            != &attributes;
                    if stale {
                        tables.summaries.insert(workflow_id.clone(), row);
                        tables.runs.insert(workflow_id.clone(), runs);
                        tables.attributes.insert(workflow_id, attributes);
                        report.rebuilt += 1;
                    }
                }
                (Ok(None), _) => {}
                (Err(error), _) | (_, Err(error)) => {
                    report.broken.push((workflow_id, error.to_string()))
                }
            }
        }
        Ok((report, next))
    }
}

impl Tables {
    /// The workflows matching `filter`, unordered.
    fn listings(&self, filter: &ListFilter) -> Vec<WorkflowListing> {
        let none = SearchAttributes::new();
        self.summaries
            .values()
            .filter_map(|summary| {
                let attributes = self.attributes.get(&summary.workflow_id).unwrap_or(&none);
                filter
                    .matches(summary, attributes)
                    .then(|| WorkflowListing {
                        summary: summary.clone(),
                        search_attributes: attributes.clone(),
                    })
            })
            .collect()
    }

    fn has_timers(&self, workflow_id: &WorkflowId) -> bool {
        self.timers
            .range((workflow_id.clone(), TimerId::from_stored(String::new()))..)
            .take_while(|((owner, _), _)| owner == workflow_id)
            .any(|(_, timer)| timer.command != DEADLINE_COMMAND)
    }
}

#[async_trait]
impl ActivityAttemptStore for MemoryStore {
    async fn save_activity_attempt(&self, attempt: &ActivityAttempt) -> Result<()> {
        self.tables()?.attempts.insert(
            (attempt.workflow_id.clone(), attempt.command),
            attempt.clone(),
        );
        Ok(())
    }

    async fn activity_attempt(
        &self,
        workflow_id: &WorkflowId,
        run_id: RunId,
        command: u32,
    ) -> Result<Option<ActivityAttempt>> {
        Ok(self
            .tables()?
            .attempts
            .get(&(workflow_id.clone(), command))
            .filter(|attempt| attempt.run_id == run_id)
            .cloned())
    }

    async fn activity_attempts_of(
        &self,
        workflow_id: &WorkflowId,
        run_id: RunId,
    ) -> Result<Vec<ActivityAttempt>> {
        Ok(self
            .tables()?
            .attempts
            .range((workflow_id.clone(), 0)..=(workflow_id.clone(), u32::MAX))
            .map(|(_, attempt)| attempt)
            .filter(|attempt| attempt.run_id == run_id)
            .cloned()
            .collect())
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
