//! The engine: store, group-commit writer, recorders, replay state and the
//! timer wheel put together behind one handle.
//!
//! The engine does not run workflow code. A host (the BEAM, through the NIF)
//! runs each run's code in its own process and drives the engine through a
//! [`RunHandle`]: [`RunHandle::resolve`] each command, [`RunHandle::record`]
//! what happens live, [`Engine::complete_run`] when the process exits. The
//! engine tells the host about durable timers firing through [`RunOwner`].
//!
//! All appends of one workflow go through that workflow's [`Recorder`], whose
//! lock orders events from the workflow's process and from the timer wheel;
//! the run's [`Resolver`] is fed every appended event under the same lock.

mod error;
mod recovery;
mod residency;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::task::JoinHandle;

pub use error::EngineError;
pub use recovery::RecoveryReport;
pub use residency::{Blocked, RunnablePage};

use crate::event::{Event, RecordedEvent};
use crate::ids::{RunId, TimerId, WorkflowId};
use crate::payload::Payload;
use crate::recorder::{Recorder, RecorderGuard};
use crate::replay::{CommandSpec, PendingCommand, PendingWork, Resolution, Resolver};
use crate::status::{RunSummary, WorkflowStatus, WorkflowSummary, current_run, run_chain};
use crate::store::memory::MemoryStore;
use crate::store::sqlite::{SqliteOptions, SqliteStore};
use crate::store::{Store, StoreError, TimerEntry};
use crate::time::{Clock, SystemClock, Timestamp};
use crate::timers::{TimerSink, TimerWheel};
use crate::writer::{GroupCommitWriter, WriterConfig};

/// Results of engine operations.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;

/// Where the engine keeps its data.
#[derive(Clone, Debug)]
pub enum StoreConfig {
    /// In memory; lost when the engine stops.
    Memory,
    /// An SQLite file.
    Sqlite {
        /// The database file (created if missing; its directory must exist).
        path: PathBuf,
        /// Backend settings.
        options: SqliteOptions,
    },
}

/// Engine settings.
#[derive(Clone)]
pub struct EngineConfig {
    /// The store.
    pub store: StoreConfig,
    /// Group commit settings.
    pub writer: WriterConfig,
    /// The clock stamping events and driving timers.
    pub clock: Arc<dyn Clock>,
}

impl EngineConfig {
    /// Defaults for `store`: system clock, default writer.
    pub fn new(store: StoreConfig) -> Self {
        Self {
            store,
            writer: WriterConfig::default(),
            clock: Arc::new(SystemClock),
        }
    }
}

/// Hears from the engine's background work (timer firing, the writer),
/// where there is no caller to answer.
pub trait EngineListener: Send + Sync + 'static {
    /// Something went wrong; the engine carried on.
    fn warning(&self, message: &str);

    /// A durable timer of `workflow_id` (of type `workflow_type`) fired while
    /// no process owned its run (the run was evicted): the host must make it
    /// resident again.
    fn wake(&self, workflow_id: &WorkflowId, workflow_type: &str);

    /// A background task the engine cannot work without (the group-commit
    /// writer, the timer wheel) stopped. The engine refuses further work; the
    /// host must stop it and start a new one.
    fn fatal(&self, message: &str);
}

/// The host-side owner of a loaded run (for the BEAM: its process).
pub trait RunOwner: Send + Sync + 'static {
    /// The durable timer of command `ordinal` fired and its `timer_fired` is durable.
    fn timer_fired(&self, ordinal: u32);
}

/// A request to start a workflow.
#[derive(Clone, Debug)]
pub struct StartRequest {
    /// The id to use; a fresh UUID when `None`.
    pub workflow_id: Option<WorkflowId>,
    /// The workflow type.
    pub workflow_type: String,
    /// The input.
    pub input: Payload,
}

/// Identity and input of a loaded run.
#[derive(Clone, Debug, PartialEq)]
pub struct RunInfo {
    /// The workflow.
    pub workflow_id: WorkflowId,
    /// The run.
    pub run_id: RunId,
    /// Its type.
    pub workflow_type: String,
    /// Its input.
    pub input: Payload,
    /// When it started.
    pub started_at: Timestamp,
}

/// Something that happened live in a run, to record.
#[derive(Clone, Debug, PartialEq)]
pub enum RecordCommand {
    /// An activity is about to run for the first time.
    ActivityScheduled {
        /// The command's ordinal (from [`Resolution::Live`]).
        ordinal: u32,
        /// What runs.
        activity_type: String,
        /// Its arguments.
        input: Payload,
    },
    /// An activity returned.
    ActivityCompleted {
        /// The command's ordinal.
        ordinal: u32,
        /// Its value.
        result: Payload,
    },
    /// An activity failed for good.
    ActivityFailed {
        /// The command's ordinal.
        ordinal: u32,
        /// The failure.
        error: Payload,
    },
    /// A durable sleep begins.
    TimerStarted {
        /// The command's ordinal.
        ordinal: u32,
        /// How long, from now.
        duration_ms: u64,
    },
    /// A value to replay later (`now`, a side effect's result).
    Marker {
        /// The command's ordinal.
        ordinal: u32,
        /// The marker's name.
        name: String,
        /// The value.
        value: Payload,
    },
}

impl RecordCommand {
    /// The ordinal of the command this record opens, if it opens one.
    fn opens(&self) -> Option<u32> {
        match self {
            RecordCommand::ActivityScheduled { ordinal, .. }
            | RecordCommand::TimerStarted { ordinal, .. }
            | RecordCommand::Marker { ordinal, .. } => Some(*ordinal),
            RecordCommand::ActivityCompleted { .. } | RecordCommand::ActivityFailed { .. } => None,
        }
    }
}

/// How a run's process ended, as the host saw it.
#[derive(Clone, Debug, PartialEq)]
pub enum RunOutcome {
    /// The code returned this value.
    Completed(Payload),
    /// The code failed with this error.
    Failed(Payload),
}

/// How a run ended, read from history.
#[derive(Clone, Debug, PartialEq)]
pub struct Terminal {
    /// The run.
    pub run_id: RunId,
    /// Its final status.
    pub status: WorkflowStatus,
    /// The result, error or cancellation reason, when the status has one.
    pub value: Option<Payload>,
}

/// An operator's view of one workflow.
#[derive(Clone, Debug, PartialEq)]
pub struct Description {
    /// The visibility row (latest run).
    pub summary: WorkflowSummary,
    /// All runs, oldest first.
    pub runs: Vec<RunSummary>,
    /// Commands of the latest run waiting for an outcome.
    pub pending: Vec<PendingCommand>,
    /// Why the latest run is blocked, if it is.
    pub blocked: Option<Blocked>,
}

/// The engine. Cheap to clone; all clones share one engine.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    writer: GroupCommitWriter,
    clock: Arc<dyn Clock>,
    wheel: Arc<TimerWheel>,
    cells: Mutex<Cells>,
    listener: Arc<dyn EngineListener>,
    runtime: Handle,
    generations: AtomicU64,
    closed: AtomicBool,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    blocked: Mutex<residency::BlockedRuns>,
}

/// Per-workflow state shared by everyone touching that workflow in this
/// engine; weakly held, and removed by the cell itself when the last user
/// drops it (no scan of the map, ever).
struct Cells {
    by_id: HashMap<WorkflowId, Weak<WorkflowCell>>,
}

struct WorkflowCell {
    workflow_id: WorkflowId,
    engine: Weak<Inner>,
    recorder: Recorder,
    live: Mutex<Option<LiveRun>>,
}

impl Drop for WorkflowCell {
    fn drop(&mut self) {
        if let Some(inner) = self.engine.upgrade() {
            let mut cells = lock(&inner.cells);
            // A newer cell for the same workflow may have taken the slot.
            if cells.by_id.get(&self.workflow_id).is_some_and(|cell| cell.strong_count() == 0) {
                cells.by_id.remove(&self.workflow_id);
            }
        }
    }
}

struct LiveRun {
    generation: u64,
    resolver: Resolver,
    owner: Option<Arc<dyn RunOwner>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section here leaves its data consistent at each step, so
    // a panic elsewhere must not wedge the engine.
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl WorkflowCell {
    /// Appends under the recorder lock and feeds the live run, so the
    /// resolver sees events in history order.
    async fn append(&self, recorder: &mut RecorderGuard<'_>, events: Vec<Event>) -> Result<Vec<RecordedEvent>> {
        let recorded = recorder.append(events).await?;
        let mut live = lock(&self.live);
        if let Some(run) = live.as_mut()
            && let Some(event) = recorded.iter().find_map(|r| run.resolver.apply(r).err())
        {
            // History is durable but disagrees with the run's replay state:
            // drop the state so the run is replayed from the store.
            *live = None;
            return Err(event.into());
        }
        Ok(recorded)
    }

    fn owner(&self) -> Option<Arc<dyn RunOwner>> {
        lock(&self.live).as_ref().and_then(|run| run.owner.clone())
    }
}

/// Opens the configured store. An SQLite store takes an exclusive lock on
/// its database file itself (see `store::sqlite`), so that two engines never
/// run the same workflows, whatever path each was given; the second one gets
/// [`EngineError::StoreInUse`].
async fn open_store(config: &StoreConfig) -> Result<Arc<dyn Store>> {
    match config {
        StoreConfig::Memory => Ok(Arc::new(MemoryStore::new())),
        StoreConfig::Sqlite { path, options } => match SqliteStore::open(path, options.clone()).await {
            Ok(store) => Ok(Arc::new(store)),
            Err(StoreError::InUse { location }) => Err(EngineError::StoreInUse { location }),
            Err(error) => Err(error.into()),
        },
    }
}

impl Engine {
    /// Opens the store (creating or migrating its schema) and starts the
    /// writer and timer tasks on `runtime`. Call [`Engine::recover`] next.
    pub async fn open(config: EngineConfig, listener: Arc<dyn EngineListener>, runtime: Handle) -> Result<Engine> {
        let store = open_store(&config.store).await?;
        let (writer, writer_task) = GroupCommitWriter::spawn(Arc::clone(&store), config.writer.clone(), &runtime);
        let inner = Arc::new_cyclic(|weak: &Weak<Inner>| {
            let sink = timer_sink(weak.clone(), runtime.clone());
            let (wheel, wheel_task) = TimerWheel::spawn(Arc::clone(&config.clock), sink, &runtime);
            Inner {
                store,
                writer,
                clock: config.clock,
                wheel,
                cells: Mutex::new(Cells { by_id: HashMap::new() }),
                listener,
                runtime,
                generations: AtomicU64::new(0),
                closed: AtomicBool::new(false),
                tasks: Mutex::new(vec![writer_task, wheel_task]),
                blocked: Mutex::new(residency::BlockedRuns::default()),
            }
        });
        let engine = Engine { inner };
        engine.supervise_tasks();
        Ok(engine)
    }

    /// Replaces each background task with a watcher of it: a task that ends
    /// (or panics) while the engine is open closes the engine and tells the
    /// listener, so that the host restarts it instead of every later append
    /// failing with `closed` forever.
    fn supervise_tasks(&self) {
        let tasks = std::mem::take(&mut *lock(&self.inner.tasks));
        let watchers = ["group-commit writer", "timer wheel"]
            .into_iter()
            .zip(tasks)
            .map(|(name, task)| {
                let engine = Arc::downgrade(&self.inner);
                self.inner.runtime.spawn(async move {
                    let ended = match task.await {
                        Ok(()) => "stopped".to_owned(),
                        Err(error) => format!("failed: {error}"),
                    };
                    if let Some(inner) = engine.upgrade()
                        && !inner.closed.swap(true, Ordering::SeqCst)
                    {
                        inner.wheel.shutdown();
                        inner.writer.close();
                        inner.listener.fatal(&format!("the engine's {name} {ended}; the engine is closed"));
                    }
                })
            })
            .collect();
        *lock(&self.inner.tasks) = watchers;
    }

    /// The store, for reads that need no engine logic.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// Stops background work, waits for queued writes, closes the store and
    /// releases its lock. Idempotent, and complete even after a background
    /// task failed (which already refused new work).
    pub async fn close(&self) {
        self.inner.closed.store(true, Ordering::SeqCst);
        self.inner.wheel.shutdown();
        self.inner.writer.close();
        let tasks = std::mem::take(&mut *lock(&self.inner.tasks));
        for task in tasks {
            let _ = task.await;
        }
        self.inner.store.close().await;
    }

    fn ensure_open(&self) -> Result<()> {
        if self.inner.closed.load(Ordering::SeqCst) {
            Err(EngineError::Closed)
        } else {
            Ok(())
        }
    }

    fn cell(&self, workflow_id: &WorkflowId) -> Arc<WorkflowCell> {
        let mut cells = lock(&self.inner.cells);
        if let Some(cell) = cells.by_id.get(workflow_id).and_then(Weak::upgrade) {
            return cell;
        }
        let cell = Arc::new(WorkflowCell {
            workflow_id: workflow_id.clone(),
            engine: Arc::downgrade(&self.inner),
            recorder: Recorder::new(
                workflow_id.clone(),
                self.inner.writer.clone(),
                Arc::clone(&self.inner.store),
                Arc::clone(&self.inner.clock),
            ),
            live: Mutex::new(None),
        });
        cells.by_id.insert(workflow_id.clone(), Arc::downgrade(&cell));
        cell
    }

    /// The workflow's cell if someone uses it (never creates one).
    fn existing_cell(&self, workflow_id: &WorkflowId) -> Option<Arc<WorkflowCell>> {
        lock(&self.inner.cells).by_id.get(workflow_id).and_then(Weak::upgrade)
    }

    fn install(&self, cell: &Arc<WorkflowCell>, info: RunInfo, resolver: Resolver, owner: Option<Arc<dyn RunOwner>>) -> RunHandle {
        let generation = self.inner.generations.fetch_add(1, Ordering::Relaxed) + 1;
        *lock(&cell.live) = Some(LiveRun {
            generation,
            resolver,
            owner,
        });
        RunHandle {
            engine: self.clone(),
            cell: Arc::clone(cell),
            generation,
            info,
        }
    }

    /// Records `workflow_started` for a new run and returns its handle.
    ///
    /// A workflow id whose latest run is still running is refused with
    /// [`EngineError::AlreadyStarted`]; the id of a finished workflow starts a
    /// new run segment in the same history.
    pub async fn start_workflow(&self, request: StartRequest) -> Result<RunHandle> {
        self.ensure_open()?;
        let generated = request.workflow_id.is_none();
        let workflow_id = request.workflow_id.unwrap_or_else(WorkflowId::generate);
        let cell = self.cell(&workflow_id);
        let mut recorder = cell.recorder.lock().await;
        if generated {
            recorder.set_head(0);
        } else if let Some(latest) = self.latest_run(&workflow_id).await? {
            if latest.status == WorkflowStatus::Running {
                return Err(EngineError::AlreadyStarted {
                    workflow_id,
                    run_id: latest.run_id,
                });
            }
            recorder.set_head(latest.last_seq);
        } else {
            recorder.set_head(0);
        }
        let run_id = RunId::generate();
        let started = Event::WorkflowStarted {
            run_id,
            parent_run_id: None,
            workflow_type: request.workflow_type.clone(),
            input: request.input.clone(),
            package_version: None,
        };
        let recorded = match recorder.append(vec![started]).await {
            Ok(recorded) => recorded,
            Err(StoreError::SequenceConflict { .. }) => {
                // Someone started it between our read and our append.
                return Err(match self.latest_run(&workflow_id).await? {
                    Some(latest) if latest.status == WorkflowStatus::Running => EngineError::AlreadyStarted {
                        workflow_id,
                        run_id: latest.run_id,
                    },
                    _ => StoreError::Backend(format!("concurrent start of {workflow_id}; retry")).into(),
                });
            }
            Err(error) => return Err(error.into()),
        };
        let info = RunInfo {
            workflow_id,
            run_id,
            workflow_type: request.workflow_type,
            input: request.input,
            started_at: recorded[0].envelope.recorded_at,
        };
        Ok(self.install(&cell, info, Resolver::new(run_id), None))
    }

    /// Loads the latest run of a running workflow for replay, owned by `owner`.
    /// Any earlier handle on the workflow is superseded.
    pub async fn load_run(&self, workflow_id: &WorkflowId, owner: Option<Arc<dyn RunOwner>>) -> Result<RunHandle> {
        self.ensure_open()?;
        let cell = self.cell(workflow_id);
        let mut recorder = cell.recorder.lock().await;
        // Only the latest run is read, from its workflow_started on.
        let Some((run, segment)) = self.inner.store.read_current_run(workflow_id).await? else {
            return Err(EngineError::NotFound {
                workflow_id: workflow_id.clone(),
            });
        };
        if run.status.is_terminal() {
            return Err(EngineError::NotRunning {
                workflow_id: workflow_id.clone(),
                status: run.status,
            });
        }
        let run_id = run.run_id;
        let segment = segment.as_slice();
        let resolver = Resolver::from_segment(run_id, segment)?;
        let Event::WorkflowStarted {
            workflow_type, input, ..
        } = &segment[0].event
        else {
            return Err(StoreError::Corrupt {
                location: workflow_id.to_string(),
                reason: "run segment does not open with workflow_started".into(),
            }
            .into());
        };
        let info = RunInfo {
            workflow_id: workflow_id.clone(),
            run_id,
            workflow_type: workflow_type.clone(),
            input: input.clone(),
            started_at: segment[0].envelope.recorded_at,
        };
        recorder.set_head(segment.last().map_or(0, RecordedEvent::seq));
        // Loading again is trying again: a blocked run blocks anew if its
        // code still does not replay.
        self.unblock(workflow_id);
        Ok(self.install(&cell, info, resolver, owner))
    }

    /// Records how run `run_id` ended, unless its history already holds an
    /// ending (which is kept, never overwritten), and releases its replay
    /// state. Returns the run's recorded ending.
    pub async fn complete_run(&self, workflow_id: &WorkflowId, run_id: RunId, outcome: RunOutcome) -> Result<Terminal> {
        self.ensure_open()?;
        let cell = self.cell(workflow_id);
        let mut recorder = cell.recorder.lock().await;
        let latest = self.existing_run(workflow_id).await?;
        release_if(&cell, |run| run.resolver.run_id() == run_id);
        if latest.run_id != run_id || latest.status != WorkflowStatus::Running {
            drop(recorder);
            return self.run_terminal(workflow_id, run_id).await;
        }
        recorder.set_head(latest.last_seq);
        let (status, value, event) = match outcome {
            RunOutcome::Completed(result) => (WorkflowStatus::Completed, result.clone(), Event::WorkflowCompleted { result }),
            RunOutcome::Failed(error) => (WorkflowStatus::Failed, error.clone(), Event::WorkflowFailed { error }),
        };
        cell.append(&mut recorder, vec![event]).await?;
        self.inner.wheel.disarm_workflow(workflow_id);
        Ok(Terminal {
            run_id,
            status,
            value: Some(value),
        })
    }

    /// Drops the replay state of a run whose process stopped without an
    /// outcome (crash, shutdown), if `generation` still owns it.
    pub fn release_run(&self, workflow_id: &WorkflowId, generation: u64) {
        if let Some(cell) = self.existing_cell(workflow_id) {
            release_if(&cell, |run| run.generation == generation);
        }
    }

    /// The latest run of a workflow, from the store's runs (never from the
    /// visibility row, which is only a projection for listing).
    async fn latest_run(&self, workflow_id: &WorkflowId) -> Result<Option<RunSummary>> {
        Ok(self.inner.store.read_run_chain(workflow_id).await?.pop())
    }

    async fn existing_run(&self, workflow_id: &WorkflowId) -> Result<RunSummary> {
        self.latest_run(workflow_id).await?.ok_or_else(|| EngineError::NotFound {
            workflow_id: workflow_id.clone(),
        })
    }

    /// How the latest run ended, or `None` while it runs.
    pub async fn terminal(&self, workflow_id: &WorkflowId) -> Result<Option<Terminal>> {
        self.ensure_open()?;
        let latest = self.existing_run(workflow_id).await?;
        if !latest.status.is_terminal() {
            return Ok(None);
        }
        // A terminal run ends with its ending.
        let ending = self.inner.store.read_from(workflow_id, latest.last_seq).await?;
        Ok(Some(Terminal {
            run_id: latest.run_id,
            status: latest.status,
            value: ending.first().and_then(|recorded| ending_value(&recorded.event)),
        }))
    }

    /// How run `run_id` ended (an older run's ending needs the history).
    async fn run_terminal(&self, workflow_id: &WorkflowId, run_id: RunId) -> Result<Terminal> {
        let run = self
            .inner
            .store
            .read_run_chain(workflow_id)
            .await?
            .into_iter()
            .find(|run| run.run_id == run_id)
            .ok_or_else(|| EngineError::NotFound {
                workflow_id: workflow_id.clone(),
            })?;
        let last = self.inner.store.read_from(workflow_id, run.last_seq).await?;
        Ok(Terminal {
            run_id,
            status: run.status,
            value: last.first().and_then(|recorded| ending_value(&recorded.event)),
        })
    }

    /// The whole history of a workflow.
    pub async fn history(&self, workflow_id: &WorkflowId) -> Result<Vec<RecordedEvent>> {
        self.ensure_open()?;
        let history = self.inner.store.read_history(workflow_id).await?;
        if history.is_empty() {
            return Err(EngineError::NotFound {
                workflow_id: workflow_id.clone(),
            });
        }
        Ok(history)
    }

    /// Status, runs and pending work of a workflow.
    pub async fn describe(&self, workflow_id: &WorkflowId) -> Result<Description> {
        let history = self.history(workflow_id).await?;
        let summary = WorkflowSummary::project(None, &history)
            .map_err(|error| StoreError::Corrupt {
                location: workflow_id.to_string(),
                reason: error.to_string(),
            })?
            .ok_or_else(|| EngineError::NotFound {
                workflow_id: workflow_id.clone(),
            })?;
        let pending = match current_run(&history) {
            Some((run_id, segment)) if !summary.status.is_terminal() => {
                Resolver::from_segment(run_id, segment)?.pending()
            }
            _ => Vec::new(),
        };
        let blocked = self.blocked(workflow_id).filter(|blocked| {
            blocked.run_id == summary.run_id && !summary.status.is_terminal()
        });
        Ok(Description {
            summary,
            runs: run_chain(&history),
            pending,
            blocked,
        })
    }

    /// Records `timer_fired` for a due timer (if it is still pending) and
    /// tells the run's owner.
    async fn fire_timer(&self, entry: &TimerEntry) -> Result<()> {
        self.ensure_open()?;
        let cell = self.cell(&entry.workflow_id);
        let mut recorder = cell.recorder.lock().await;
        if self.inner.store.timer(&entry.workflow_id, &entry.timer_id).await?.is_none() {
            return Ok(());
        }
        let fired = Event::TimerFired {
            command: entry.command,
            timer_id: entry.timer_id.clone(),
        };
        cell.append(&mut recorder, vec![fired]).await?;
        drop(recorder);
        match cell.owner() {
            Some(owner) => owner.timer_fired(entry.command),
            None => {
                let run = self.existing_run(&entry.workflow_id).await?;
                self.inner.listener.wake(&entry.workflow_id, &run.workflow_type);
            }
        }
        Ok(())
    }
}

/// The value a run's ending carries: result, error, reason or successor input.
fn ending_value(event: &Event) -> Option<Payload> {
    match event {
        Event::WorkflowCompleted { result } => Some(result.clone()),
        Event::WorkflowFailed { error } => Some(error.clone()),
        Event::WorkflowCancelled { reason } => Some(reason.clone()),
        Event::WorkflowContinuedAsNew { input, .. } => Some(input.clone()),
        _ => None,
    }
}

fn release_if(cell: &WorkflowCell, owns: impl FnOnce(&LiveRun) -> bool) {
    let mut live = lock(&cell.live);
    if live.as_ref().is_some_and(owns) {
        *live = None;
    }
}

/// How long a timer whose firing failed waits before it is tried again.
const TIMER_RETRY: Duration = Duration::from_secs(1);

fn timer_sink(engine: Weak<Inner>, runtime: Handle) -> TimerSink {
    Arc::new(move |entry: TimerEntry| {
        let Some(inner) = engine.upgrade() else { return };
        let engine = Engine { inner };
        runtime.spawn(async move {
            if let Err(error) = engine.fire_timer(&entry).await {
                if matches!(error, EngineError::Closed | EngineError::Store(StoreError::Closed)) {
                    return;
                }
                engine.inner.listener.warning(&format!(
                    "timer {} of workflow {} failed to fire, retrying in {TIMER_RETRY:?}: {error}",
                    entry.timer_id, entry.workflow_id
                ));
                let retry_at = engine.inner.clock.now().plus_millis(TIMER_RETRY.as_millis() as u64);
                engine.inner.wheel.arm(TimerEntry {
                    fire_at: retry_at,
                    ..entry
                });
            }
        });
    })
}

/// One loaded run, driven by its owner.
pub struct RunHandle {
    engine: Engine,
    cell: Arc<WorkflowCell>,
    generation: u64,
    info: RunInfo,
}

impl std::fmt::Debug for RunHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunHandle")
            .field("info", &self.info)
            .field("generation", &self.generation)
            .finish()
    }
}

impl RunHandle {
    /// The run's identity and input.
    pub fn info(&self) -> &RunInfo {
        &self.info
    }

    /// Which load of the run this handle is (see [`Engine::release_run`]).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    fn with_live<R>(&self, f: impl FnOnce(&mut LiveRun) -> Result<R>) -> Result<R> {
        let mut live = lock(&self.cell.live);
        match live.as_mut() {
            Some(run) if run.generation == self.generation => f(run),
            _ => Err(EngineError::Superseded {
                workflow_id: self.info.workflow_id.clone(),
                run_id: self.info.run_id,
            }),
        }
    }

    /// Sets who hears about this run's timers.
    pub fn attach(&self, owner: Arc<dyn RunOwner>) -> Result<()> {
        self.with_live(|run| {
            run.owner = Some(owner);
            Ok(())
        })
    }

    /// Resolves the next command the run's code issues. A pending timer is
    /// (re-)armed, so that waiting for it is all the caller has to do.
    pub fn resolve(&self, issued: &CommandSpec) -> Result<Resolution> {
        let resolution = self.with_live(|run| Ok(run.resolver.resolve(issued)?))?;
        if let Resolution::Pending {
            ordinal,
            work: PendingWork::Timer { timer_id, fire_at },
        } = &resolution
        {
            self.engine.inner.wheel.arm(TimerEntry {
                workflow_id: self.info.workflow_id.clone(),
                timer_id: timer_id.clone(),
                command: *ordinal,
                fire_at: *fire_at,
            });
        }
        Ok(resolution)
    }

    /// Checks, when the code returned, that it issued every recorded command.
    pub fn finish(&self) -> Result<()> {
        self.with_live(|run| Ok(run.resolver.finish()?))
    }

    /// Records something that happened live; returns once it is durable.
    pub async fn record(&self, command: RecordCommand) -> Result<()> {
        self.engine.ensure_open()?;
        let opens = command.opens();
        let (events, timer) = self.with_live(|run| self.events_for(&run.resolver, command))?;
        let mut recorder = self.cell.recorder.lock().await;
        self.with_live(|_| Ok(()))?;
        self.cell.append(&mut recorder, events).await?;
        if let Some(ordinal) = opens {
            // Recorded: the command now holds its ordinal.
            self.with_live(|run| {
                run.resolver.issued_live(ordinal);
                Ok(())
            })?;
        }
        drop(recorder);
        if let Some(timer) = timer {
            self.engine.inner.wheel.arm(timer);
        }
        Ok(())
    }

    /// Checks `command` against the replay state and builds its events.
    fn events_for(&self, resolver: &Resolver, command: RecordCommand) -> Result<(Vec<Event>, Option<TimerEntry>)> {
        let invalid = |reason: String| EngineError::InvalidCommand {
            workflow_id: self.info.workflow_id.clone(),
            reason,
        };
        let opening = |ordinal: u32| {
            if resolver.is_live_edge(ordinal) {
                Ok(())
            } else {
                Err(invalid(format!(
                    "command #{ordinal} cannot be recorded now ({} recorded, {} issued)",
                    resolver.recorded(),
                    resolver.issued()
                )))
            }
        };
        let pending_activity = |ordinal: u32| match resolver.pending_at(ordinal) {
            Some(PendingWork::Activity { .. }) => Ok(()),
            _ => Err(invalid(format!("command #{ordinal} is not an activity waiting for its outcome"))),
        };
        Ok(match command {
            RecordCommand::ActivityScheduled {
                ordinal,
                activity_type,
                input,
            } => {
                opening(ordinal)?;
                (
                    vec![Event::ActivityScheduled {
                        command: ordinal,
                        activity_type,
                        input,
                    }],
                    None,
                )
            }
            RecordCommand::ActivityCompleted { ordinal, result } => {
                pending_activity(ordinal)?;
                (vec![Event::ActivityCompleted { command: ordinal, result }], None)
            }
            RecordCommand::ActivityFailed { ordinal, error } => {
                pending_activity(ordinal)?;
                (vec![Event::ActivityFailed { command: ordinal, error }], None)
            }
            RecordCommand::TimerStarted { ordinal, duration_ms } => {
                opening(ordinal)?;
                let timer_id = TimerId::for_command(self.info.run_id, ordinal);
                let fire_at = self.engine.inner.clock.now().plus_millis(duration_ms);
                let entry = TimerEntry {
                    workflow_id: self.info.workflow_id.clone(),
                    timer_id: timer_id.clone(),
                    command: ordinal,
                    fire_at,
                };
                (
                    vec![Event::TimerStarted {
                        command: ordinal,
                        timer_id,
                        fire_at,
                    }],
                    Some(entry),
                )
            }
            RecordCommand::Marker { ordinal, name, value } => {
                opening(ordinal)?;
                (
                    vec![Event::MarkerRecorded {
                        command: ordinal,
                        name,
                        value,
                    }],
                    None,
                )
            }
        })
    }
}

#[cfg(test)]
mod tests;
