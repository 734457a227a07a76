//! The store contract: small traits per table ([`EventLog`], [`TimerStore`],
//! [`VisibilityStore`]) composed into [`Store`], and the backends that
//! implement it ([`memory`], [`sqlite`]). One conformance suite
//! (`tests/conformance.rs`) runs against every backend.
//!
//! Backends share the append planning ([`plan_append`]): sequence checks,
//! the status projection and timer bookkeeping are computed here, once, and a
//! backend only has to apply the plan atomically.

use std::collections::HashMap;

use async_trait::async_trait;
use thiserror::Error;

use crate::codec::CodecError;
use crate::event::{AttributeKind, Envelope, Event, RecordedEvent};
use crate::ids::{RunId, TimerId, WorkflowId};
use crate::status::{NotStarted, RunSummary, WorkflowSummary, current_run, run_chain};
use crate::time::Timestamp;
use crate::visibility::{
    ListCursor, ListFilter, ListPage, SearchAttributes, attributes_set_by, check_attribute,
};

pub mod attempts;
pub mod memory;
pub mod sqlite;

pub use attempts::{ActivityAttempt, ActivityAttemptStore, AttemptState};

/// Results of store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A store operation failed.
///
/// `Clone`, so that a failure shared by several callers (a group commit whose
/// transaction failed) reaches each of them with its kind intact.
#[derive(Clone, Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The history's head is not where the append expected it: someone else
    /// appended first. Reload the head (and whatever state depends on it) and
    /// decide again; never retry blindly with a bumped number.
    #[error("sequence conflict on {workflow_id}: expected head {expected}, found {found}")]
    SequenceConflict {
        /// The workflow.
        workflow_id: WorkflowId,
        /// The head the caller expected.
        expected: u64,
        /// The head the store has.
        found: u64,
    },
    /// The append itself is malformed (seqs not dense, wrong workflow id, a
    /// history not starting with `workflow_started`). A bug in the caller.
    #[error("invalid append to {workflow_id}: {reason}")]
    InvalidAppend {
        /// The workflow.
        workflow_id: WorkflowId,
        /// What is wrong.
        reason: String,
    },
    /// Stored data does not decode. Restore the store from a backup, or skip
    /// the workflow.
    #[error("corrupt data in the store ({location}): {reason}")]
    Corrupt {
        /// Which workflow/seq or table.
        location: String,
        /// What is wrong.
        reason: String,
    },
    /// The store could not be opened (missing directory, not a database,
    /// permissions). Fix the path or file; nothing was written.
    #[error("cannot open the {backend} store at {location}: {reason}")]
    Open {
        /// Backend name.
        backend: &'static str,
        /// Path or URL.
        location: String,
        /// Why.
        reason: String,
    },
    /// The store's database is used by another store: another engine, in
    /// this process or another, opened the same file (by this path or any
    /// other: a symlink, a hard link). Stop the other one, or give this one
    /// its own file.
    #[error("the store at {location} is in use by another Aion store")]
    InUse {
        /// The path given.
        location: String,
    },
    /// A search attribute cannot be stored: its value has another kind than
    /// the kind its name has in this store (fixed by the name's first use),
    /// or it is malformed (an empty name, a float that is not finite).
    /// Nothing of the request was written. Use the name's kind, or another
    /// name.
    #[error("invalid search attribute {name:?}: {reason}")]
    InvalidSearchAttribute {
        /// The attribute's name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The store's schema is newer than this Aion understands. Upgrade Aion.
    #[error("the store's schema version is {found}; this Aion supports up to {supported}")]
    SchemaTooNew {
        /// Version found in the store.
        found: i64,
        /// Newest version this build knows.
        supported: i64,
    },
    /// The backend failed (I/O, lock timeout, lost connection). Usually
    /// transient: retry later.
    #[error("store backend error: {0}")]
    Backend(String),
    /// The store was closed.
    #[error("the store is closed")]
    Closed,
}

impl StoreError {
    /// Whether retrying the same operation later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Backend(_))
    }

    pub(crate) fn corrupt(workflow_id: &WorkflowId, seq: u64, error: CodecError) -> Self {
        StoreError::Corrupt {
            location: format!("{workflow_id} seq {seq}"),
            reason: error.to_string(),
        }
    }
}

/// Events to append to one workflow's history, if its head is `expected_seq`.
#[derive(Clone, Debug, PartialEq)]
pub struct AppendRequest {
    /// The workflow.
    pub workflow_id: WorkflowId,
    /// The head the caller believes the history has (0 for a new history).
    pub expected_seq: u64,
    /// The events, with seqs `expected_seq + 1 ..` in their envelopes.
    pub events: Vec<RecordedEvent>,
}

impl AppendRequest {
    /// Wraps `events` in envelopes numbered from `expected_seq + 1`.
    pub fn new(
        workflow_id: WorkflowId,
        expected_seq: u64,
        recorded_at: Timestamp,
        events: impl IntoIterator<Item = Event>,
    ) -> Self {
        let events = events
            .into_iter()
            .zip(expected_seq + 1..)
            .map(|(event, seq)| RecordedEvent {
                envelope: Envelope {
                    workflow_id: workflow_id.clone(),
                    seq,
                    recorded_at,
                },
                event,
            })
            .collect();
        Self {
            workflow_id,
            expected_seq,
            events,
        }
    }

    /// The head after this append.
    pub fn new_head(&self) -> u64 {
        self.expected_seq + self.events.len() as u64
    }
}

/// The `command` of a run's deadline timers (its execution and run
/// timeouts), which answer no command: their firing ends the run
/// `timed_out`. A workflow whose only timers are deadlines is not asleep, so
/// these rows never make [`VisibilityStore::list_running_page`] skip it.
pub const DEADLINE_COMMAND: u32 = u32::MAX;

/// A pending durable timer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimerEntry {
    /// The workflow that owns it.
    pub workflow_id: WorkflowId,
    /// The timer.
    pub timer_id: TimerId,
    /// The command (in the run that started it) it answers.
    pub command: u32,
    /// When it fires.
    pub fire_at: Timestamp,
}

/// A change to the timers table implied by appended events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TimerEffect {
    /// `timer_started`: add (or replace) the timer.
    Schedule(TimerEntry),
    /// `timer_fired` / `timer_cancelled`: remove the timer.
    Remove(WorkflowId, TimerId),
    /// A run ended: remove all of the workflow's timers, and its
    /// [`ActivityAttempt`] records.
    RemoveAll(WorkflowId),
}

/// A change to a workflow's search attributes implied by appended events.
#[derive(Clone, Debug, PartialEq)]
pub struct AttributeChanges {
    /// Drop the workflow's attributes first: a run starts in a history
    /// that had one (an id reused), and attributes belong to the latest run.
    pub clear: bool,
    /// Then set these, replacing values of the same names.
    pub set: SearchAttributes,
}

impl AttributeChanges {
    /// Checks the kinds of the values set against the kinds the store has
    /// fixed for their names (`stored`, by name; names not in it are new).
    pub fn check_kinds(&self, stored: &HashMap<String, AttributeKind>) -> Result<()> {
        for (name, value) in &self.set {
            if let Some(kind) = stored.get(name)
                && *kind != value.kind()
            {
                return Err(StoreError::InvalidSearchAttribute {
                    name: name.clone(),
                    reason: format!(
                        "its values are {kind} in this store, and this one is a {}",
                        value.kind()
                    ),
                });
            }
        }
        Ok(())
    }
}

/// What a backend must write, atomically, for one accepted append.
#[derive(Clone, Debug, PartialEq)]
pub struct AppendPlan {
    /// The visibility row after the append.
    pub summary: WorkflowSummary,
    /// The rows of the runs table the append creates or changes, oldest
    /// first (keyed by `(workflow_id, first_seq)`).
    pub runs: Vec<RunSummary>,
    /// Changes to the timers table.
    pub timers: Vec<TimerEffect>,
    /// Whether the append only extends the latest run: no run starts, and
    /// the run's status does not change. Then only the heads (`head_seq`,
    /// `updated_at`, `last_seq`) of its rows move, which a backend may write
    /// without rewriting the rows' indexed columns.
    pub extends_latest_run: bool,
    /// Changes to the workflow's search attributes, if the events make any.
    /// A backend checks the kinds ([`AttributeChanges::check_kinds`])
    /// before it writes anything, and records the kinds of new names.
    pub attributes: Option<AttributeChanges>,
}

/// Where a history stands, as the backend reads it from the history itself
/// (never from the visibility row, which is only a projection).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HistoryHead {
    /// The seq of the history's last event; 0 for no history.
    pub head_seq: u64,
    /// The history's latest run; `None` for no history. Its `last_seq` is
    /// `head_seq` (see [`HistoryHead::is_consistent`]).
    pub latest_run: Option<RunSummary>,
}

impl HistoryHead {
    /// Whether the latest run (from an index such as the runs table) ends
    /// where the history does. A backend must not plan on an inconsistent
    /// head: it rebuilds the run from the history first.
    pub fn is_consistent(&self) -> bool {
        match &self.latest_run {
            None => self.head_seq == 0,
            Some(run) => run.last_seq == self.head_seq && run.first_seq <= run.last_seq,
        }
    }
}

/// Checks `request` against the history's head and computes what to write.
///
/// The sequence check uses `head.head_seq`, which backends read from the
/// history itself; the visibility row is never consulted, so a damaged or
/// lagging row neither blocks an append nor lets a wrong seq through, and the
/// row written by the plan repairs it.
pub fn plan_append(head: &HistoryHead, request: &AppendRequest) -> Result<AppendPlan> {
    let workflow_id = &request.workflow_id;
    let found = head.head_seq;
    if found != request.expected_seq {
        return Err(StoreError::SequenceConflict {
            workflow_id: workflow_id.clone(),
            expected: request.expected_seq,
            found,
        });
    }
    let invalid = |reason: String| StoreError::InvalidAppend {
        workflow_id: workflow_id.clone(),
        reason,
    };
    let Some(last) = request.events.last() else {
        return Err(invalid("no events".into()));
    };
    for (recorded, seq) in request.events.iter().zip(request.expected_seq + 1..) {
        if recorded.envelope.seq != seq {
            return Err(invalid(format!(
                "event has seq {}, expected {seq}",
                recorded.envelope.seq
            )));
        }
        if &recorded.envelope.workflow_id != workflow_id {
            return Err(invalid(format!(
                "event belongs to {}",
                recorded.envelope.workflow_id
            )));
        }
    }
    let runs = RunSummary::project(head.latest_run.clone(), &request.events).map_err(
        |NotStarted { seq, kind, .. }| {
            invalid(format!(
                "a history must begin with workflow_started, got {kind} at seq {seq}"
            ))
        },
    )?;
    // Every event extends the latest run or opens one, so the last touched
    // run is the latest after the append.
    let latest = runs.last().ok_or_else(|| invalid("no events".into()))?;
    let summary = WorkflowSummary::of_run(workflow_id.clone(), latest, last.envelope.recorded_at);
    let timers = request
        .events
        .iter()
        .flat_map(|recorded| match &recorded.event {
            Event::TimerStarted {
                command,
                timer_id,
                fire_at,
            } => vec![TimerEffect::Schedule(TimerEntry {
                workflow_id: workflow_id.clone(),
                timer_id: timer_id.clone(),
                command: *command,
                fire_at: *fire_at,
            })],
            Event::TimerFired { timer_id, .. } | Event::TimerCancelled { timer_id, .. } => {
                vec![TimerEffect::Remove(workflow_id.clone(), timer_id.clone())]
            }
            Event::WorkflowStarted { .. } => deadlines(recorded)
                .into_iter()
                .map(TimerEffect::Schedule)
                .collect(),
            event if event.is_terminal() => vec![TimerEffect::RemoveAll(workflow_id.clone())],
            _ => Vec::new(),
        })
        .collect();
    let extends_latest_run = runs.len() == 1
        && head.latest_run.as_ref().is_some_and(|before| {
            (before.run_id, before.first_seq, before.status)
                == (latest.run_id, latest.first_seq, latest.status)
        });
    let attributes = attribute_changes(request)?;
    Ok(AppendPlan {
        summary,
        runs,
        timers,
        extends_latest_run,
        attributes,
    })
}

/// Folds the search attributes the request's events set, checking each
/// value and that a name keeps one kind within the request.
fn attribute_changes(request: &AppendRequest) -> Result<Option<AttributeChanges>> {
    let mut changes: Option<AttributeChanges> = None;
    let mut kinds: HashMap<&str, AttributeKind> = HashMap::new();
    for recorded in &request.events {
        let Some((starts_run, set)) = attributes_set_by(&recorded.event) else {
            continue;
        };
        let changes = changes.get_or_insert_with(|| AttributeChanges {
            clear: false,
            set: SearchAttributes::new(),
        });
        if starts_run {
            // A brand-new history has nothing to clear.
            changes.clear = request.expected_seq > 0 || changes.clear;
            changes.set.clear();
        }
        for (name, value) in set {
            let invalid = |reason: String| StoreError::InvalidSearchAttribute {
                name: name.clone(),
                reason,
            };
            check_attribute(name, value).map_err(invalid)?;
            let kind = *kinds.entry(name).or_insert(value.kind());
            if kind != value.kind() {
                return Err(invalid(format!(
                    "the same append sets it to a {kind} and to a {}",
                    value.kind()
                )));
            }
            changes.set.insert(name.clone(), value.clone());
        }
    }
    Ok(changes.filter(|changes| changes.clear || !changes.set.is_empty()))
}

/// The deadline timers a recorded `workflow_started` arms: one per timeout
/// it carries, due that long after the run started.
pub fn deadlines(started: &RecordedEvent) -> Vec<TimerEntry> {
    let Event::WorkflowStarted {
        run_id,
        execution_timeout_ms,
        run_timeout_ms,
        ..
    } = &started.event
    else {
        return Vec::new();
    };
    [
        ("execution_timeout", execution_timeout_ms),
        ("run_timeout", run_timeout_ms),
    ]
    .into_iter()
    .filter_map(|(name, timeout)| {
        timeout.map(|ms| TimerEntry {
            workflow_id: started.envelope.workflow_id.clone(),
            timer_id: TimerId::deadline(*run_id, name),
            command: DEADLINE_COMMAND,
            fire_at: started.envelope.recorded_at.plus_millis(ms),
        })
    })
    .collect()
}

/// The latest run of a history and its events, from the suffix of the
/// history that a backend read (from a run's `workflow_started` on, or the
/// whole history): what [`EventLog::read_current_run`] returns. The runs
/// table only says where to start reading; the answer is computed from the
/// events themselves, so a lagging index can only make the read longer.
pub fn current_run_of(mut suffix: Vec<RecordedEvent>) -> Option<(RunSummary, Vec<RecordedEvent>)> {
    let start = current_run(&suffix).map(|(_, segment)| suffix.len() - segment.len())?;
    let segment = suffix.split_off(start);
    let run = RunSummary::project(None, &segment).ok()?.pop()?;
    Some((run, segment))
}

/// A row that could not be decoded, reported beside a page instead of
/// failing it: the row's raw key (workflow id, or workflow and timer id) and
/// the error ([`StoreError::Corrupt`]).
pub type BrokenRow = (String, StoreError);

/// One page of [`VisibilityStore::list_running_page`].
#[derive(Clone, Debug, Default)]
pub struct RunningPage {
    /// Running workflows, ordered by workflow id.
    pub rows: Vec<WorkflowSummary>,
    /// Rows of the page's range that do not decode, by raw workflow id.
    pub broken: Vec<BrokenRow>,
    /// Where the next page starts (pass it as `after`); `None` at the end.
    pub next: Option<WorkflowId>,
}

/// The position of a timer in due order: `(fire_at, workflow_id, timer_id)`.
pub type TimerCursor = (Timestamp, WorkflowId, TimerId);

/// One page of [`TimerStore::pending_timers_page`].
#[derive(Clone, Debug, Default)]
pub struct TimerPage {
    /// Pending timers, ordered by `(fire_at, workflow_id, timer_id)`.
    pub timers: Vec<TimerEntry>,
    /// Timer rows of the page's range that do not decode, by raw
    /// `"workflow_id timer_id"`.
    pub broken: Vec<BrokenRow>,
    /// Where the next page starts (pass it as `after`); `None` at the end.
    pub next: Option<TimerCursor>,
}

impl TimerEntry {
    /// This timer's position in due order.
    pub fn cursor(&self) -> TimerCursor {
        (
            self.fire_at,
            self.workflow_id.clone(),
            self.timer_id.clone(),
        )
    }
}

/// Rows per page when an unpaged method ([`VisibilityStore::list_active`],
/// [`VisibilityStore::reconcile_visibility`]) walks the pages.
pub const DEFAULT_PAGE: usize = 256;

/// What [`VisibilityStore::reconcile_visibility`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Rows rebuilt from history.
    pub rebuilt: usize,
    /// Histories that could not be projected, with the reason.
    pub broken: Vec<(WorkflowId, String)>,
}

/// Workflow histories.
#[async_trait]
pub trait EventLog: Send + Sync {
    /// Appends each request of `batch`, in order, in one transaction.
    ///
    /// # Contract
    /// - The outer `Err` means nothing of the batch was written, and is kept
    ///   for failures of the transaction itself (it cannot begin or commit,
    ///   the store is closed). Its kind is the real one: callers may retry on
    ///   [`StoreError::is_transient`].
    /// - Otherwise the result holds one entry per request, in order. A request
    ///   whose head is not `expected_seq` (including because an earlier request
    ///   of the same batch moved it) gets [`StoreError::SequenceConflict`] and
    ///   writes nothing; other requests are unaffected.
    /// - Any other failure that concerns one request only (a stored row of its
    ///   workflow that does not decode: [`StoreError::Corrupt`]; an event that
    ///   does not encode: [`StoreError::InvalidAppend`]; a statement of that
    ///   request that fails) fails that request alone, with its kind, and
    ///   writes nothing of it; the other requests commit.
    /// - When the call returns, every `Ok` request is durable: on the SQLite
    ///   backend it survives SIGKILL and power loss.
    /// - Visibility rows and the timers table are updated in the same
    ///   transaction, as [`plan_append`] computes.
    async fn append_batch(&self, batch: &[AppendRequest]) -> Result<Vec<Result<()>>>;

    /// Appends one request; see [`EventLog::append_batch`].
    async fn append(&self, request: AppendRequest) -> Result<()> {
        let mut results = self.append_batch(std::slice::from_ref(&request)).await?;
        results.pop().unwrap_or(Ok(()))
    }

    /// The events of `workflow_id` with `seq >= from_seq`, in order.
    ///
    /// # Contract
    /// An unknown workflow, or `from_seq` beyond the head, gives an empty list.
    async fn read_from(
        &self,
        workflow_id: &WorkflowId,
        from_seq: u64,
    ) -> Result<Vec<RecordedEvent>>;

    /// The events of `workflow_id` with `from_seq <= seq <= to_seq`, in
    /// order: one run of a history with many.
    ///
    /// # Contract
    /// Backends read that range only, so that reading one run costs its
    /// own events, however long the history. An empty range, or one beyond
    /// the head, gives an empty list.
    async fn read_range(
        &self,
        workflow_id: &WorkflowId,
        from_seq: u64,
        to_seq: u64,
    ) -> Result<Vec<RecordedEvent>> {
        let mut events = self.read_from(workflow_id, from_seq).await?;
        events.retain(|recorded| recorded.seq() <= to_seq);
        Ok(events)
    }

    /// The whole history of `workflow_id`.
    async fn read_history(&self, workflow_id: &WorkflowId) -> Result<Vec<RecordedEvent>> {
        self.read_from(workflow_id, 1).await
    }

    /// Where the history of `workflow_id` stands: its head and its latest
    /// run, for callers that need no events (the ending of a run, a new
    /// run's start).
    ///
    /// # Contract
    /// The result is consistent ([`HistoryHead::is_consistent`]) and read
    /// from one snapshot; never from the visibility row.
    async fn history_head(&self, workflow_id: &WorkflowId) -> Result<HistoryHead> {
        let runs = self.read_run_chain(workflow_id).await?;
        let head_seq = runs.last().map_or(0, |run| run.last_seq);
        Ok(HistoryHead {
            head_seq,
            latest_run: runs.into_iter().next_back(),
        })
    }

    /// The seq of the last event of `workflow_id`'s history; 0 for none.
    ///
    /// # Contract
    /// Read from the history itself, never from the visibility row: it is
    /// the head [`EventLog::append_batch`] checks `expected_seq` against.
    async fn head(&self, workflow_id: &WorkflowId) -> Result<u64> {
        Ok(self
            .read_current_run(workflow_id)
            .await?
            .and_then(|(_, events)| events.last().map(RecordedEvent::seq))
            .unwrap_or(0))
    }

    /// The runs recorded in the history, oldest first.
    ///
    /// # Contract
    /// Backends answer from their runs index (one row per run, maintained in
    /// the transaction of each append), without reading the events. A
    /// history that does not begin with `workflow_started` has no runs.
    async fn read_run_chain(&self, workflow_id: &WorkflowId) -> Result<Vec<RunSummary>> {
        Ok(run_chain(&self.read_history(workflow_id).await?))
    }

    /// Run `run_id` of `workflow_id`, if the history has it.
    ///
    /// # Contract
    /// Backends answer from their runs index by run id, without reading the
    /// other runs; the latest run's `last_seq` is the history's head.
    async fn read_run(
        &self,
        workflow_id: &WorkflowId,
        run_id: RunId,
    ) -> Result<Option<RunSummary>> {
        Ok(self
            .read_run_chain(workflow_id)
            .await?
            .into_iter()
            .find(|run| run.run_id == run_id))
    }

    /// The latest run's summary and its events, from its `workflow_started`
    /// on; `None` for an unknown workflow.
    ///
    /// # Contract
    /// - Never reads the history from seq 1 when the latest run starts later:
    ///   the runs index says where the run starts, and the events are read
    ///   from there (`read_from(first_seq)`).
    /// - The summary and the events are one consistent snapshot: the
    ///   summary's `last_seq` is the seq of the last event returned.
    /// - An event that does not decode gives [`StoreError::Corrupt`].
    async fn read_current_run(
        &self,
        workflow_id: &WorkflowId,
    ) -> Result<Option<(RunSummary, Vec<RecordedEvent>)>>;

    /// [`EventLog::read_current_run`] of many workflows at once, for
    /// recovery. A workflow the answer leaves out (no history, a row that
    /// does not decode, an index that does not point at a run's start) must
    /// be read with `read_current_run`, which says why. The default reads
    /// them one by one; a backend may batch.
    async fn read_current_runs(
        &self,
        workflow_ids: &[WorkflowId],
    ) -> Result<HashMap<WorkflowId, (RunSummary, Vec<RecordedEvent>)>> {
        let mut runs = HashMap::with_capacity(workflow_ids.len());
        for workflow_id in workflow_ids {
            if let Ok(Some(run)) = self.read_current_run(workflow_id).await {
                runs.insert(workflow_id.clone(), run);
            }
        }
        Ok(runs)
    }
}

/// Pending durable timers.
#[async_trait]
pub trait TimerStore: Send + Sync {
    /// Adds a timer, replacing one with the same workflow and timer id.
    async fn schedule_timer(&self, entry: &TimerEntry) -> Result<()>;

    /// Removes a timer; removing an absent timer is not an error.
    async fn cancel_timer(&self, workflow_id: &WorkflowId, timer_id: &TimerId) -> Result<()>;

    /// Looks one timer up.
    async fn timer(
        &self,
        workflow_id: &WorkflowId,
        timer_id: &TimerId,
    ) -> Result<Option<TimerEntry>>;

    /// Timers with `fire_at <= as_of` (the boundary is due), earliest first.
    async fn due_timers(&self, as_of: Timestamp) -> Result<Vec<TimerEntry>>;

    /// All pending timers, earliest first.
    async fn pending_timers(&self) -> Result<Vec<TimerEntry>>;

    /// Up to `limit` pending timers after `after` (from the first when
    /// `None`), ordered by `(fire_at, workflow_id, timer_id)`.
    ///
    /// # Contract
    /// - Bounded: reads about `limit` rows (a `limit` of 0 is read as 1).
    /// - A timer row that does not decode goes to [`TimerPage::broken`] and
    ///   counts towards `limit`; the page goes on.
    /// - `next` is `None` once the last timer has been returned; otherwise
    ///   pass it as `after` for the next page. A timer scheduled behind the
    ///   cursor meanwhile is not seen by this walk.
    async fn pending_timers_page(
        &self,
        after: Option<TimerCursor>,
        limit: usize,
    ) -> Result<TimerPage>;

    /// The pending timers of one workflow, ordered by timer id.
    ///
    /// # Contract
    /// Reads the `(workflow_id, timer_id)` key only: the cost follows the
    /// workflow's timers, not the table. A row that does not decode gives
    /// [`StoreError::Corrupt`] for this workflow.
    async fn timers_of(&self, workflow_id: &WorkflowId) -> Result<Vec<TimerEntry>>;
}

/// The visibility projection: one summary row per workflow.
#[async_trait]
pub trait VisibilityStore: Send + Sync {
    /// The row of one workflow, `None` if it has no history.
    async fn summary(&self, workflow_id: &WorkflowId) -> Result<Option<WorkflowSummary>>;

    /// Workflows whose latest run is [`crate::status::WorkflowStatus::Running`], ordered by
    /// start time then workflow id.
    ///
    /// # Contract
    /// Walks [`VisibilityStore::list_running_page`]; rows that do not decode
    /// are left out (they are in the pages' `broken` lists, and
    /// [`VisibilityStore::reconcile_visibility`] rebuilds them), so one
    /// damaged row never hides the others.
    async fn list_active(&self) -> Result<Vec<WorkflowSummary>> {
        let mut rows = Vec::new();
        let mut after: Option<WorkflowId> = None;
        loop {
            let page = self
                .list_running_page(after.as_ref(), DEFAULT_PAGE, false)
                .await?;
            rows.extend(page.rows);
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        rows.sort_by(|a, b| (a.started_at, &a.workflow_id).cmp(&(b.started_at, &b.workflow_id)));
        Ok(rows)
    }

    /// Up to `limit` running workflows after `after` (from the first when
    /// `None`), ordered by workflow id.
    ///
    /// # Contract
    /// - Bounded: reads about `limit` rows (a `limit` of 0 is read as 1).
    /// - With `without_pending_timers`, only running workflows with no row in
    ///   the timers table but deadlines ([`DEADLINE_COMMAND`]): those a host must give a process, as the others
    ///   sleep until a timer wakes them.
    /// - A visibility row that does not decode (and may be running) goes to
    ///   [`RunningPage::broken`] with its raw id and counts towards `limit`;
    ///   the page goes on.
    /// - `next` is `None` once the last row has been returned.
    async fn list_running_page(
        &self,
        after: Option<&WorkflowId>,
        limit: usize,
        without_pending_timers: bool,
    ) -> Result<RunningPage>;

    /// Up to `limit` workflows matching `filter` after `after` (from the
    /// newest when `None`), newest start first, ties by workflow id
    /// descending; each with its search attributes.
    ///
    /// # Contract
    /// - Answered from the store's indexes (visibility rows and search
    ///   attributes), never by reading histories.
    /// - `filter` is resolved ([`ListFilter::resolve`] against
    ///   [`VisibilityStore::attribute_kinds`]): a condition whose value has
    ///   another kind than the attribute matches nothing.
    /// - Keyset paging: `next` is the last row's [`ListCursor`] when more
    ///   rows may follow, `None` at the end. A workflow started after the
    ///   first page sorts before the cursor, so a walk never sees a row
    ///   twice nor skips one that existed when it began (unless its latest
    ///   run changed meanwhile).
    /// - A `limit` of 0 is read as 1. Rows that do not decode are left out.
    async fn list(
        &self,
        filter: &ListFilter,
        after: Option<&ListCursor>,
        limit: usize,
    ) -> Result<ListPage>;

    /// How many workflows match `filter` (resolved, as for
    /// [`VisibilityStore::list`]), counted in the store.
    async fn count(&self, filter: &ListFilter) -> Result<u64>;

    /// The search attributes of one workflow's latest run (empty for an
    /// unknown workflow).
    async fn search_attributes(&self, workflow_id: &WorkflowId) -> Result<SearchAttributes>;

    /// The kinds this store has fixed for `names` (names never used are
    /// left out).
    async fn attribute_kinds(&self, names: &[String]) -> Result<HashMap<String, AttributeKind>>;

    /// Rebuilds, from history, every row that disagrees with its history
    /// (or is missing, or does not decode), and drops rows without history.
    /// A rebuilt row gets its search attributes rebuilt too (they are
    /// written in the transaction of each append, so they only disagree
    /// with history where the row does).
    ///
    /// # Contract
    /// Idempotent; a consistent store is left untouched. A history that cannot
    /// be projected is reported in [`ReconcileReport::broken`] and skipped; it
    /// never stops the others from being repaired. Walks
    /// [`VisibilityStore::reconcile_visibility_page`].
    async fn reconcile_visibility(&self) -> Result<ReconcileReport> {
        let mut report = ReconcileReport::default();
        let mut after: Option<WorkflowId> = None;
        loop {
            let (page, next) = self
                .reconcile_visibility_page(after.as_ref(), DEFAULT_PAGE)
                .await?;
            report.rebuilt += page.rebuilt;
            report.broken.extend(page.broken);
            match next {
                Some(next) => after = Some(next),
                None => return Ok(report),
            }
        }
    }

    /// [`VisibilityStore::reconcile_visibility`] for the workflows after
    /// `after` (from the first when `None`), up to `limit` of them, ordered by
    /// workflow id. Returns what it did and where the next page starts
    /// (`None` at the end).
    ///
    /// # Contract
    /// - Bounded: examines about `limit` histories (0 is read as 1), each in
    ///   its own short transaction, so appends go on meanwhile.
    /// - Each workflow is isolated: one that cannot be read or projected is
    ///   reported in [`ReconcileReport::broken`]; the others are repaired.
    /// - Also repairs the backend's runs index from the history, and drops
    ///   visibility rows without history in the page's range.
    async fn reconcile_visibility_page(
        &self,
        after: Option<&WorkflowId>,
        limit: usize,
    ) -> Result<(ReconcileReport, Option<WorkflowId>)>;
}

/// A complete store backend.
#[async_trait]
pub trait Store: EventLog + TimerStore + VisibilityStore + ActivityAttemptStore {
    /// The backend's name, for messages.
    fn backend(&self) -> &'static str;

    /// Releases connections and files. Later calls fail with [`StoreError::Closed`].
    async fn close(&self);
}
