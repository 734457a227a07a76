//! A loaded run, driven by its owner: resolving the commands its code
//! issues against replay state, and recording what happens live.

use std::sync::Arc;

use crate::event::Event;
use crate::ids::{TimerId, WorkflowId};
use crate::payload::Payload;
use crate::replay::{
    ChildStarted, CommandSpec, Interrupt, PendingWork, Resolution, Resolver, Scope, Settled,
};
use crate::status::HistorySize;
use crate::store::{ActivityAttempt, AttemptState, StoreError, TimerEntry};
use crate::visibility::{SearchAttributes, check_attribute};

use super::{Engine, EngineError, LiveRun, Result, RunInfo, RunOwner, WorkflowCell, lock};

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
        /// The attempt that returned it (from 1).
        attempt: u32,
        /// The failure of the attempt before, if any.
        last_failure: Option<Payload>,
    },
    /// An activity failed for good.
    ActivityFailed {
        /// The command's ordinal.
        ordinal: u32,
        /// The failure (of the last attempt).
        error: Payload,
        /// How many attempts were made (from 1).
        attempts: u32,
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
    /// The workflow's handler answered update `update_id`.
    UpdateCompleted {
        /// The command's ordinal.
        ordinal: u32,
        /// The update.
        update_id: String,
        /// The reply.
        reply: Payload,
    },
    /// A child workflow is about to start (see [`RunHandle::start_child`]).
    ChildWorkflowStarted {
        /// The command's ordinal.
        ordinal: u32,
        /// The child.
        child: ChildStarted,
    },
    /// A signal to another workflow is about to be delivered (or, `failed`,
    /// could not be: see [`RunHandle::signal_workflow`]).
    SignalSent {
        /// The command's ordinal.
        ordinal: u32,
        /// The receiver.
        target: WorkflowId,
        /// The signal's name.
        name: String,
        /// Its payload.
        payload: Payload,
        /// Why it is not delivered, if it is not.
        failed: Option<String>,
    },
    /// The workflow's code upserted search attributes. A value whose kind
    /// differs from its name's kind in the store is refused, recording
    /// nothing ([`crate::store::StoreError::InvalidSearchAttribute`]).
    SearchAttributes {
        /// The command's ordinal.
        ordinal: u32,
        /// The attributes set.
        attributes: SearchAttributes,
    },
}

/// What became of a [`RecordCommand`].
#[derive(Clone, Debug, PartialEq)]
pub enum Recorded {
    /// It is durable.
    Done,
    /// An interrupt of the command's scope was recorded first: nothing was
    /// recorded, and the command raises instead.
    Interrupted(Interrupt),
}

impl RecordCommand {
    /// The ordinal of the command this record opens, if it opens one.
    fn opens(&self) -> Option<u32> {
        match self {
            RecordCommand::ActivityScheduled { ordinal, .. }
            | RecordCommand::TimerStarted { ordinal, .. }
            | RecordCommand::Marker { ordinal, .. }
            | RecordCommand::UpdateCompleted { ordinal, .. }
            | RecordCommand::ChildWorkflowStarted { ordinal, .. }
            | RecordCommand::SignalSent { ordinal, .. }
            | RecordCommand::SearchAttributes { ordinal, .. } => Some(*ordinal),
            RecordCommand::ActivityCompleted { .. } | RecordCommand::ActivityFailed { .. } => None,
        }
    }
}

/// One loaded run, driven by its owner.
pub struct RunHandle {
    pub(super) engine: Engine,
    pub(super) cell: Arc<WorkflowCell>,
    pub(super) generation: u64,
    pub(super) info: RunInfo,
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

    pub(super) fn with_live<R>(&self, f: impl FnOnce(&mut LiveRun) -> Result<R>) -> Result<R> {
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

    /// Resolves the next command the run's code issues, under `scope` (see
    /// [`Resolver::resolve_in`]). A pending timer is (re-)armed, so that
    /// waiting for it is all the caller has to do.
    pub fn resolve(&self, issued: &CommandSpec, scope: &Scope) -> Result<Resolution> {
        let resolution = self.with_live(|run| Ok(run.resolver.resolve_in(issued, scope)?))?;
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

    /// The size of the run's history as its code has seen it (see
    /// [`Resolver::history_size`]): the same at the same point of a replay.
    pub fn history_size(&self) -> Result<HistorySize> {
        self.with_live(|run| Ok(run.resolver.history_size()))
    }

    /// The first outcome among the issued commands `ordinals`, in history
    /// order, unless an interrupt of `scope` came first (see [`Resolver::settle`]).
    pub fn settle(&self, ordinals: &[u32], scope: &Scope) -> Result<Settled> {
        self.with_live(|run| Ok(run.resolver.settle(ordinals, scope)))
    }

    /// Whether the run's code has met a cancellation request (see
    /// [`Resolver::cancel_delivered`]).
    pub fn cancel_delivered(&self) -> Result<bool> {
        self.with_live(|run| Ok(run.resolver.cancel_delivered()))
    }

    /// Records something that happened live; returns once it is durable.
    ///
    /// A command that opens under `scope` is refused, recording nothing, if
    /// an interrupt of the scope is recorded: the check runs under the lock
    /// that orders the history, so a replay meets the same interrupt at the
    /// same command. Outcomes (`scope` `None`) are always recorded.
    pub async fn record(&self, command: RecordCommand, scope: Option<&Scope>) -> Result<Recorded> {
        self.engine.ensure_open()?;
        let opens = command.opens();
        let (events, timer) = self.with_live(|run| self.events_for(&run.resolver, command))?;
        let mut recorder = self.cell.recorder.lock().await;
        let interrupt =
            self.with_live(|run| Ok(scope.and_then(|scope| run.resolver.deliver_live(scope))))?;
        if let Some(interrupt) = interrupt {
            return Ok(Recorded::Interrupted(interrupt));
        }
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
        Ok(Recorded::Done)
    }

    /// The retry state of the run's activity `ordinal`, if it has one (see
    /// [`crate::store::attempts`]).
    pub async fn activity_attempt(&self, ordinal: u32) -> Result<Option<AttemptState>> {
        self.engine.ensure_open()?;
        self.with_live(|_| Ok(()))?;
        let attempt = self
            .engine
            .inner
            .store
            .activity_attempt(&self.info.workflow_id, self.info.run_id, ordinal)
            .await?;
        Ok(attempt.map(|attempt| attempt.state))
    }

    /// Saves the retry state of the run's activity `ordinal`, which must be
    /// in flight; returns once it is durable. Refused with
    /// [`EngineError::Superseded`] when this handle no longer owns the run.
    pub async fn save_activity_attempt(&self, ordinal: u32, state: AttemptState) -> Result<()> {
        self.engine.ensure_open()?;
        self.with_live(|run| match run.resolver.pending_at(ordinal) {
            Some(PendingWork::Activity { .. }) => Ok(()),
            _ => Err(EngineError::InvalidCommand {
                workflow_id: self.info.workflow_id.clone(),
                reason: format!("command #{ordinal} is not an activity in flight"),
            }),
        })?;
        let attempt = ActivityAttempt {
            workflow_id: self.info.workflow_id.clone(),
            run_id: self.info.run_id,
            command: ordinal,
            state,
        };
        Ok(self
            .engine
            .inner
            .store
            .save_activity_attempt(&attempt)
            .await?)
    }

    /// Cancels the commands of ordinals `from..to` that the code has issued
    /// and that still wait for an outcome (all from `from` on when `to` is
    /// `None`): records `activity_cancelled` and `timer_cancelled` for them,
    /// in one append.
    /// Returns the activities cancelled, whose executions the host stops.
    pub async fn cancel_pending(&self, from: u32, to: Option<u32>) -> Result<Vec<u32>> {
        self.engine.ensure_open()?;
        let mut recorder = self.cell.recorder.lock().await;
        // Only commands the code has issued: on replay, history also holds
        // pending commands of code after this point, not the caller's to cancel.
        let (pending, issued) =
            self.with_live(|run| Ok((run.resolver.pending_from(from), run.resolver.issued())))?;
        let mut activities = Vec::new();
        let events: Vec<Event> = pending
            .into_iter()
            .filter(|command| command.ordinal < issued && to.is_none_or(|to| command.ordinal < to))
            .filter_map(|command| match command.work {
                PendingWork::Activity { .. } => {
                    activities.push(command.ordinal);
                    Some(Event::ActivityCancelled {
                        command: command.ordinal,
                    })
                }
                PendingWork::Timer { timer_id, .. } => Some(Event::TimerCancelled {
                    command: command.ordinal,
                    timer_id,
                }),
                PendingWork::ChildWorkflow(_) => None,
            })
            .collect();
        if !events.is_empty() {
            self.cell.append(&mut recorder, events).await?;
        }
        Ok(activities)
    }

    /// Checks `command` against the replay state and builds its events.
    fn events_for(
        &self,
        resolver: &Resolver,
        command: RecordCommand,
    ) -> Result<(Vec<Event>, Option<TimerEntry>)> {
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
            _ => Err(invalid(format!(
                "command #{ordinal} is not an activity waiting for its outcome"
            ))),
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
            RecordCommand::ActivityCompleted {
                ordinal,
                result,
                attempt,
                last_failure,
            } => {
                pending_activity(ordinal)?;
                (
                    vec![Event::ActivityCompleted {
                        command: ordinal,
                        result,
                        attempts: (attempt > 1).then_some(attempt),
                        last_failure,
                    }],
                    None,
                )
            }
            RecordCommand::ActivityFailed {
                ordinal,
                error,
                attempts,
            } => {
                pending_activity(ordinal)?;
                (
                    vec![Event::ActivityFailed {
                        command: ordinal,
                        error,
                        attempts: (attempts > 1).then_some(attempts),
                    }],
                    None,
                )
            }
            RecordCommand::TimerStarted {
                ordinal,
                duration_ms,
            } => {
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
            RecordCommand::Marker {
                ordinal,
                name,
                value,
            } => {
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
            RecordCommand::UpdateCompleted {
                ordinal,
                update_id,
                reply,
            } => {
                opening(ordinal)?;
                if resolver.update_reply(&update_id) != Some(None) {
                    return Err(invalid(format!(
                        "update {update_id} is not waiting for a reply"
                    )));
                }
                (
                    vec![Event::UpdateCompleted {
                        command: ordinal,
                        update_id,
                        reply,
                    }],
                    None,
                )
            }
            RecordCommand::ChildWorkflowStarted { ordinal, child } => {
                opening(ordinal)?;
                (
                    vec![Event::ChildWorkflowStarted {
                        command: ordinal,
                        child_workflow_id: child.workflow_id,
                        workflow_type: child.workflow_type,
                        input: child.input,
                        run_id: child.run_id,
                        parent_close: Some(child.parent_close),
                        execution_timeout_ms: child.execution_timeout_ms,
                        run_timeout_ms: child.run_timeout_ms,
                        id_reuse: child.id_reuse,
                        search_attributes: child.search_attributes,
                    }],
                    None,
                )
            }
            RecordCommand::SignalSent {
                ordinal,
                target,
                name,
                payload,
                failed,
            } => {
                opening(ordinal)?;
                (
                    vec![Event::SignalSent {
                        command: ordinal,
                        target_workflow_id: target,
                        signal_name: name,
                        payload,
                        failed,
                    }],
                    None,
                )
            }
            RecordCommand::SearchAttributes {
                ordinal,
                attributes,
            } => {
                opening(ordinal)?;
                for (name, value) in &attributes {
                    check_attribute(name, value).map_err(|reason| {
                        StoreError::InvalidSearchAttribute {
                            name: name.clone(),
                            reason,
                        }
                    })?;
                }
                (
                    vec![Event::SearchAttributesUpdated {
                        command: Some(ordinal),
                        attributes,
                    }],
                    None,
                )
            }
        })
    }
}
