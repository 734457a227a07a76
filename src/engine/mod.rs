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

mod child;
mod complete;
mod continue_as_new;
mod error;
mod inspect;
mod messages;
mod patch;
mod query;
mod recovery;
mod reset;
mod residency;
mod run;
mod start;
mod terminate;
mod timer_fire;

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use tokio::runtime::Handle;
use tokio::task::JoinHandle;

pub use child::{ChildStart, SignalSend};
pub use complete::{RunOutcome, Terminal};
pub use continue_as_new::{ContinueAsNew, Continued};
pub use error::EngineError;
pub use inspect::Description;
pub use messages::{Taken, UpdateState};
pub use query::ReadOnlyRun;
pub use recovery::RecoveryReport;
pub use reset::{ResetDone, ResetRequest, ResetTo};
pub use residency::{Blocked, RunnablePage};
pub use run::{RecordCommand, Recorded, RunHandle};

use timer_fire::timer_sink;

use crate::event::{Event, RecordedEvent};
use crate::faults;
use crate::ids::{RunId, WorkflowId};
use crate::payload::Payload;
use crate::recorder::{Recorder, RecorderGuard};
use crate::replay::Resolver;
use crate::status::WorkflowStatus;
use crate::store::memory::MemoryStore;
use crate::store::sqlite::{SqliteOptions, SqliteStore};
use crate::store::{Store, StoreError};
use crate::time::{Clock, SystemClock, Timestamp};
use crate::timers::TimerWheel;
use crate::visibility::SearchAttributes;
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

    /// A run of `workflow_id` ended without its code ending it (terminated,
    /// timed out), as recorded: whoever awaits the workflow must hear it.
    /// The run's owner was told first ([`Notice::Ended`]).
    fn ended(&self, workflow_id: &WorkflowId, terminal: &Terminal) {
        let _ = (workflow_id, terminal);
    }
}

/// Something the engine recorded for a run that its owner must hear about.
/// Every notice is sent after the events it announces are durable and fed
/// to the run's replay state.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Notice {
    /// The durable timer of command `ordinal` fired.
    TimerFired(u32),
    /// The engine recorded the outcome of command `ordinal` (a signal or an
    /// update delivered to the wait that asked for it).
    Resolved(u32),
    /// A signal or an update arrived for the run.
    Inbox,
    /// Cancellation of the run was requested.
    CancelRequested,
    /// The run ended without its code (terminated, timed out): the owner
    /// must stop running it.
    Ended,
}

/// The host-side owner of a loaded run (for the BEAM: its process).
pub trait RunOwner: Send + Sync + 'static {
    /// Tells the owner about `notice`.
    fn notify(&self, notice: Notice);
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
    /// Deadlines of the run.
    pub timeouts: Timeouts,
    /// Whether the id of a workflow that has finished may start a new run.
    pub id_reuse: IdReuse,
    /// The run's first search attributes. A value whose kind differs from
    /// the kind its name has in the store fails the start, recording
    /// nothing ([`crate::store::StoreError::InvalidSearchAttribute`]).
    pub search_attributes: SearchAttributes,
}

/// Whether a start may reuse the id of a workflow whose latest run has
/// ended (Temporal's id reuse policies). A running workflow's id is never
/// reused: that start gets [`EngineError::AlreadyStarted`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IdReuse {
    /// Always: the start opens a new run in the same history.
    #[default]
    AllowDuplicate,
    /// Only if the latest run did not complete (failed, cancelled,
    /// terminated or timed out).
    AllowDuplicateFailedOnly,
    /// Never.
    RejectDuplicate,
}

impl IdReuse {
    /// The policy's name, as the host spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            IdReuse::AllowDuplicate => "allow_duplicate",
            IdReuse::AllowDuplicateFailedOnly => "allow_duplicate_failed_only",
            IdReuse::RejectDuplicate => "reject_duplicate",
        }
    }

    /// Parses [`IdReuse::as_str`].
    pub fn parse(name: &str) -> Option<Self> {
        [
            IdReuse::AllowDuplicate,
            IdReuse::AllowDuplicateFailedOnly,
            IdReuse::RejectDuplicate,
        ]
        .into_iter()
        .find(|policy| policy.as_str() == name)
    }

    /// Whether a new run may follow one that ended `status`.
    pub fn allows(self, status: WorkflowStatus) -> bool {
        match self {
            IdReuse::AllowDuplicate => true,
            IdReuse::AllowDuplicateFailedOnly => !matches!(
                status,
                WorkflowStatus::Completed | WorkflowStatus::ContinuedAsNew
            ),
            IdReuse::RejectDuplicate => false,
        }
    }
}

impl std::fmt::Display for IdReuse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How long a workflow may take: when a timeout expires, its run ends
/// `timed_out` ([`Event::WorkflowTimedOut`]) whether or not its code runs.
/// Both are durable timers armed with the run's `workflow_started`, so they
/// hold across restarts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timeouts {
    /// The whole workflow, in milliseconds from its start.
    pub execution_ms: Option<u64>,
    /// One run, in milliseconds from the run's start.
    pub run_ms: Option<u64>,
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
    cells: Cells,
    listener: Arc<dyn EngineListener>,
    runtime: Handle,
    generations: AtomicU64,
    closed: AtomicBool,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    blocked: Mutex<residency::BlockedRuns>,
    parked: Mutex<residency::ParkedRuns>,
}

/// Per-workflow state shared by everyone touching that workflow in this
/// engine; weakly held, and removed by the cell itself when the last user
/// drops it (no scan of the map, ever). Sharded, so that a NIF on a BEAM
/// scheduler (`release_run`, a resource's destructor) never waits for a lock
/// held while a map of every workflow grows, or by many threads at once.
struct Cells {
    shards: Vec<Mutex<HashMap<WorkflowId, Weak<WorkflowCell>>>>,
}

const CELL_SHARDS: usize = 64;

impl Cells {
    fn new() -> Self {
        Self {
            shards: (0..CELL_SHARDS)
                .map(|_| Mutex::new(HashMap::new()))
                .collect(),
        }
    }

    fn shard(
        &self,
        workflow_id: &WorkflowId,
    ) -> MutexGuard<'_, HashMap<WorkflowId, Weak<WorkflowCell>>> {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        workflow_id.hash(&mut hasher);
        lock(&self.shards[hasher.finish() as usize % CELL_SHARDS])
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards.iter().map(|shard| lock(shard).len()).sum()
    }
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
            let mut cells = inner.cells.shard(&self.workflow_id);
            // A newer cell for the same workflow may have taken the slot.
            if cells
                .get(&self.workflow_id)
                .is_some_and(|cell| cell.strong_count() == 0)
            {
                cells.remove(&self.workflow_id);
            }
        }
    }
}

struct LiveRun {
    generation: u64,
    resolver: Resolver,
    owner: Option<Arc<dyn RunOwner>>,
    /// The message the run's code is blocked on, if any: one that arrives
    /// is taken for it in the same append that records its arrival.
    waiting: Option<messages::MessageWait>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section here leaves its data consistent at each step, so
    // a panic elsewhere must not wedge the engine.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl WorkflowCell {
    /// Appends under the recorder lock and feeds the live run, so the
    /// resolver sees events in history order.
    async fn append(
        &self,
        recorder: &mut RecorderGuard<'_>,
        events: Vec<Event>,
    ) -> Result<Vec<RecordedEvent>> {
        let recorded = recorder.append(events).await?;
        self.feed(recorded)
    }

    /// [`WorkflowCell::append`] with the events stamped `at`.
    async fn append_at(
        &self,
        recorder: &mut RecorderGuard<'_>,
        events: Vec<Event>,
        at: Timestamp,
    ) -> Result<Vec<RecordedEvent>> {
        let recorded = recorder.append_at(events, at).await?;
        self.feed(recorded)
    }

    fn feed(&self, recorded: Vec<RecordedEvent>) -> Result<Vec<RecordedEvent>> {
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
        StoreConfig::Sqlite { path, options } => {
            match SqliteStore::open(path, options.clone()).await {
                Ok(store) => Ok(Arc::new(store)),
                Err(StoreError::InUse { location }) => Err(EngineError::StoreInUse { location }),
                Err(error) => Err(error.into()),
            }
        }
    }
}

impl Engine {
    /// Opens the store (creating or migrating its schema) and starts the
    /// writer and timer tasks on `runtime`. Call [`Engine::recover`] next.
    ///
    /// Arms the fault `AION_FAULT` names, if set ([`faults::arm_from_env`]);
    /// a value that names none fails with [`EngineError::InvalidFault`].
    pub async fn open(
        config: EngineConfig,
        listener: Arc<dyn EngineListener>,
        runtime: Handle,
    ) -> Result<Engine> {
        let fault = faults::arm_from_env()?;
        let store = open_store(&config.store).await?;
        let (writer, writer_task) =
            GroupCommitWriter::spawn(Arc::clone(&store), config.writer.clone(), &runtime);
        let inner = Arc::new_cyclic(|weak: &Weak<Inner>| {
            let sink = timer_sink(weak.clone(), runtime.clone());
            let (wheel, wheel_task) = TimerWheel::spawn(Arc::clone(&config.clock), sink, &runtime);
            Inner {
                store,
                writer,
                clock: config.clock,
                wheel,
                cells: Cells::new(),
                listener,
                runtime,
                generations: AtomicU64::new(0),
                closed: AtomicBool::new(false),
                tasks: Mutex::new(vec![writer_task, wheel_task]),
                blocked: Mutex::new(residency::BlockedRuns::default()),
                parked: Mutex::new(residency::ParkedRuns::default()),
            }
        });
        let engine = Engine { inner };
        engine.supervise_tasks();
        if let Some(fault) = fault {
            engine.inner.listener.warning(&format!(
                "{}={fault} is set: this OS process aborts once the engine has reached {} {} time(s); never set it in production",
                faults::VARIABLE,
                fault.point,
                fault.nth
            ));
        }
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
                        inner.listener.fatal(&format!(
                            "the engine's {name} {ended}; the engine is closed"
                        ));
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
        let mut cells = self.inner.cells.shard(workflow_id);
        if let Some(cell) = cells.get(workflow_id).and_then(Weak::upgrade) {
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
        cells.insert(workflow_id.clone(), Arc::downgrade(&cell));
        cell
    }

    /// The workflow's cell if someone uses it (never creates one).
    fn existing_cell(&self, workflow_id: &WorkflowId) -> Option<Arc<WorkflowCell>> {
        self.inner
            .cells
            .shard(workflow_id)
            .get(workflow_id)
            .and_then(Weak::upgrade)
    }

    fn install(
        &self,
        cell: &Arc<WorkflowCell>,
        info: RunInfo,
        resolver: Resolver,
        owner: Option<Arc<dyn RunOwner>>,
    ) -> RunHandle {
        let generation = self.inner.generations.fetch_add(1, Ordering::Relaxed) + 1;
        self.unpark(&cell.workflow_id);
        *lock(&cell.live) = Some(LiveRun {
            generation,
            resolver,
            owner,
            waiting: None,
        });
        RunHandle {
            engine: self.clone(),
            cell: Arc::clone(cell),
            generation,
            info,
        }
    }
}

#[cfg(test)]
mod tests;
