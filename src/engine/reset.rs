//! Resetting a workflow: a new run that starts from a point of an earlier
//! one, the latest by default ([`Engine::reset`]).
//!
//! **One append.** Everything a reset records is one append to the
//! workflow's history, under its recorder lock: the latest run's ending when
//! it still runs (`workflow_terminated`, reason `reset`), the new run's
//! `workflow_started` (the source's, by struct update: same type, input,
//! options, parent; a new run id; `reset_from` naming the source run and
//! the point), copies of the source's events after its `workflow_started`
//! up to and including the point, and the signals the source received
//! after the point (all of them: none can have been taken before it),
//! recorded again. A crash leaves either nothing or all of it.
//!
//! **Copies are the new run's own events.** They get new seqs (a
//! `signal_consumed` names its signal's new seq), timers get the new run's
//! timer ids (the store writes their rows from the append, and the engine
//! arms them; a copied timer keeps its `fire_at`), and they are stamped with
//! the reset's time: a pending activity's `schedule_to_close` and the run's
//! deadlines (execution and run timeouts) count from the reset. The new
//! run's replay returns what the copies hold, and dispatches again what is
//! pending at the point (activities scheduled without an outcome).
//!
//! **Children.** A child started before the point and without an outcome
//! there is the new run's: its `child_workflow_started` is copied with its
//! id and first run id, the reset does not close it (when the source still
//! runs), and its ending is recorded in the new run (see
//! `record_in_parent`). A child that ended meanwhile has its ending
//! recorded in the new run when its replay meets the command. Children the
//! source started after the point are closed by their parent close policy,
//! as when a run is terminated. When the source had already ended, its
//! children were closed then: the new run finds them ended (by default
//! terminated).
//!
//! **A child workflow that is reset** keeps its parent while the parent's
//! run runs: its new run's ending is recorded in the parent's command if
//! that command still waits (a reset of a running child), and the reset
//! does not tell the parent that the old run was terminated. A parent that
//! recorded the child's ending already keeps it. When the parent's run has
//! ended, the new run has no parent (its close policy would end it at once)
//! and runs on alone.

use crate::event::{Event, RecordedEvent, ResetPoint};
use crate::faults::{self, Point};
use crate::ids::{RunId, TimerId, WorkflowId};
use crate::payload::Payload;
use crate::replay::{PendingWork, Resolver};
use crate::status::{RunSummary, WorkflowStatus};
use crate::store::{AppendRequest, StoreError, TimerEntry, deadlines};

use super::child::Family;
use super::complete::release_if;
use super::{Engine, EngineError, Notice, Result, Terminal};

/// Where the new run of a reset starts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResetTo {
    /// The source's beginning: nothing is copied but its start.
    Start,
    /// The source's last `activity_completed`.
    LastCompletedActivity,
    /// An event of the source run, by seq: from its `workflow_started`
    /// (the same as [`ResetTo::Start`]) to its last event before its ending.
    Seq(u64),
}

/// A reset to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResetRequest {
    /// The run to reset (its events are copied): the latest when `None`.
    /// An older run may be the source of a reset whatever the latest run
    /// is (only the source's own status is checked); a latest run that
    /// runs is terminated as usual.
    pub run_id: Option<RunId>,
    /// The point, in the source run.
    pub to: ResetTo,
    /// Whether a source that still runs may be terminated. A run suspended
    /// by non-determinism (blocked) is reset without it: no process runs it.
    pub terminate_running: bool,
}

/// What a reset did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResetDone {
    /// The new run.
    pub run_id: RunId,
    /// Its workflow type (the source's).
    pub workflow_type: String,
    /// Where it comes from.
    pub from: ResetPoint,
    /// Whether the source was running (and was terminated by the reset).
    pub terminated: bool,
}

impl Engine {
    /// Starts a new run of `workflow_id` from a point of its latest run (or
    /// of [`ResetRequest::run_id`]; see the module's documentation), and
    /// returns it; the host then
    /// gives the new run a process (the reconciler would, too).
    ///
    /// Refused, recording nothing: an unknown workflow
    /// ([`EngineError::NotFound`]); a source run that completed or continued
    /// as new, or a latest run that runs (not blocked) without
    /// [`ResetRequest::terminate_running`] ([`EngineError::ResetRefused`]);
    /// a point outside the run, a run without a completed activity for
    /// [`ResetTo::LastCompletedActivity`] ([`EngineError::InvalidResetPoint`]);
    /// a `run_id` that is not a run of the workflow
    /// ([`EngineError::RunNotFound`]).
    pub async fn reset(
        &self,
        workflow_id: &WorkflowId,
        request: ResetRequest,
    ) -> Result<ResetDone> {
        self.ensure_open()?;
        let cell = self.cell(workflow_id);
        let mut recorder = cell.recorder.lock().await;
        let Some((latest, latest_segment)) = self.inner.store.read_current_run(workflow_id).await?
        else {
            return Err(EngineError::NotFound {
                workflow_id: workflow_id.clone(),
            });
        };
        let refused = |reason: String| EngineError::ResetRefused {
            workflow_id: workflow_id.clone(),
            reason,
        };
        let (source, segment) = match request.run_id {
            Some(run_id) if run_id != latest.run_id => {
                self.read_run(workflow_id, Some(run_id)).await?
            }
            _ => (latest.clone(), latest_segment),
        };
        match source.status {
            WorkflowStatus::Completed | WorkflowStatus::ContinuedAsNew => {
                return Err(refused(format!(
                    "its run {} {}: only a run that failed, was cancelled, terminated or timed out, or runs, can be reset",
                    source.run_id,
                    if source.status == WorkflowStatus::Completed {
                        "completed"
                    } else {
                        "continued as new"
                    }
                )));
            }
            _ => {}
        }
        // The latest run ends first if it still runs (it is the source, or
        // a newer run when an older one is the source).
        let running = latest.status == WorkflowStatus::Running;
        if running && !request.terminate_running {
            let blocked = self
                .blocked(workflow_id)
                .is_some_and(|blocked| blocked.run_id == latest.run_id);
            if !blocked {
                return Err(refused(format!(
                    "its run {} is running; pass terminate_running: true to terminate it and reset",
                    latest.run_id
                )));
            }
        }
        let Some(Event::WorkflowStarted { workflow_type, .. }) =
            segment.first().map(|started| &started.event)
        else {
            return Err(StoreError::Corrupt {
                location: workflow_id.to_string(),
                reason: format!("run {} does not open with workflow_started", source.run_id),
            }
            .into());
        };
        let workflow_type = workflow_type.clone();
        let point = reset_point(workflow_id, &source, &segment, request.to)?;
        let new_run_id = RunId::generate();
        let head = latest.last_seq;
        let ending = running.then(|| Event::WorkflowTerminated {
            reason: Payload::etf_atom("reset"),
        });
        let first_new_seq = head + 1 + u64::from(ending.is_some());
        let from = ResetPoint {
            run_id: source.run_id,
            seq: point,
        };
        let mut events: Vec<Event> = ending.into_iter().collect();
        let mut copied = new_run_events(&segment, new_run_id, from, first_new_seq)?;
        // A child whose parent's run has ended runs on alone: the parent
        // has no one to tell, and its close policy would end the new run
        // at its first load.
        if let Event::WorkflowStarted { parent, .. } = &mut copied[0]
            && let Some(of) = parent.as_ref()
            && self
                .orphaned(of, workflow_id, latest.run_id, false)
                .await?
                .is_some()
        {
            *parent = None;
        }
        events.extend(copied);
        // The new run's replay state, from its events as they will be
        // numbered: a copy that does not replay is refused before anything
        // is written.
        let preview: Vec<RecordedEvent> = AppendRequest::new(
            workflow_id.clone(),
            head,
            self.inner.clock.now(),
            events.iter().cloned(),
        )
        .events;
        let resolver = Resolver::from_segment(new_run_id, &preview[usize::from(running)..])?;
        recorder.set_head(head);
        // Not through the cell: the events must not feed the source's
        // replay state, which is dropped below.
        let recorded = recorder.append(events).await?;
        faults::hit(Point::Reset);
        let released = if running {
            release_if(&cell, |run| run.resolver.run_id() == latest.run_id)
        } else {
            None
        };
        drop(recorder);
        self.unblock(workflow_id);
        self.unpark(workflow_id);
        // The source's timers (its rows went with its ending) make way for
        // the new run's.
        self.inner.wheel.disarm_workflow(workflow_id);
        let started = &recorded[usize::from(running)];
        for deadline in deadlines(started) {
            self.inner.wheel.arm(deadline);
        }
        for command in resolver.pending() {
            if let PendingWork::Timer { timer_id, fire_at } = command.work {
                self.inner.wheel.arm(TimerEntry {
                    workflow_id: workflow_id.clone(),
                    timer_id,
                    command: command.ordinal,
                    fire_at,
                });
            }
        }
        if running {
            if let Some(owner) = released.as_ref().and_then(|run| run.owner.clone()) {
                owner.notify(Notice::Ended);
            }
            // Nobody awaiting the workflow hears of this ending: they wait
            // for the new run's. The source's parent does not either (the
            // new run is its child now), nor the children the new run keeps.
            let family = match released {
                Some(run) => Family::of(&run.resolver),
                None => self.family_from_store(workflow_id, &latest).await?,
            };
            let kept: Vec<_> = resolver
                .open_children()
                .into_iter()
                .map(|(_, child)| (child.workflow_id.clone(), child.run_id))
                .collect();
            let family = family
                .for_reset(|child| !kept.contains(&(child.workflow_id.clone(), child.run_id)));
            let terminal = Terminal {
                run_id: latest.run_id,
                status: WorkflowStatus::Terminated,
                value: Some(Payload::etf_atom("reset")),
            };
            self.after_ending(workflow_id, &terminal, family).await;
        }
        Ok(ResetDone {
            run_id: new_run_id,
            workflow_type,
            from,
            terminated: running,
        })
    }
}

impl Engine {
    /// The runs of `workflow_id` (as [`Engine::runs`]), each with where it
    /// was reset from if a reset started it. Only the start of a run that
    /// follows a run ended otherwise than by continue-as-new is read (a
    /// reset, or a new start of the id): the runs of a continue-as-new
    /// chain cost no read.
    pub async fn runs_with_origins(
        &self,
        workflow_id: &WorkflowId,
    ) -> Result<Vec<(RunSummary, Option<ResetPoint>)>> {
        let runs = self.runs(workflow_id).await?;
        let mut origins = Vec::with_capacity(runs.len());
        for (index, run) in runs.iter().enumerate() {
            let maybe_reset = index > 0 && runs[index - 1].status != WorkflowStatus::ContinuedAsNew;
            let origin = if maybe_reset {
                self.inner
                    .store
                    .read_range(workflow_id, run.first_seq, run.first_seq)
                    .await?
                    .first()
                    .and_then(|started| started.event.reset_from())
            } else {
                None
            };
            origins.push(origin);
        }
        Ok(runs.into_iter().zip(origins).collect())
    }
}

/// The seq of the point `to` in `segment` (the events of run `run`, from
/// its `workflow_started` on).
fn reset_point(
    workflow_id: &WorkflowId,
    run: &RunSummary,
    segment: &[RecordedEvent],
    to: ResetTo,
) -> Result<u64> {
    let invalid = |reason: String| EngineError::InvalidResetPoint {
        workflow_id: workflow_id.clone(),
        reason,
    };
    let first = segment[0].seq();
    let last = segment
        .iter()
        .rev()
        .find(|recorded| !recorded.event.is_terminal())
        .map_or(first, RecordedEvent::seq);
    match to {
        ResetTo::Start => Ok(first),
        ResetTo::LastCompletedActivity => segment
            .iter()
            .rev()
            .find(|recorded| matches!(recorded.event, Event::ActivityCompleted { .. }))
            .map(RecordedEvent::seq)
            .ok_or_else(|| invalid(format!("its run {} has no completed activity", run.run_id))),
        ResetTo::Seq(seq) if (first..=last).contains(&seq) => Ok(seq),
        ResetTo::Seq(seq) => Err(invalid(format!(
            "seq {seq} is not an event of its run {} before its ending (seqs {first} to {last})",
            run.run_id
        ))),
    }
}

/// The new run's events: its `workflow_started` (the source's, from
/// `segment`, with the new run id and `from`), the source's events up to
/// `from.seq` renumbered from `first_seq` on, then the signals received
/// after the point.
fn new_run_events(
    segment: &[RecordedEvent],
    run_id: RunId,
    from: ResetPoint,
    first_seq: u64,
) -> Result<Vec<Event>> {
    let mut started = segment[0].event.clone();
    if let Event::WorkflowStarted {
        run_id: new_run,
        reset_from,
        ..
    } = &mut started
    {
        // Every other field (type, input, timeouts, search attributes,
        // parent) carries over.
        *new_run = run_id;
        *reset_from = Some(from);
    }
    let mut events = vec![started];
    // Old seq -> new seq of each copied event.
    let mut renumbered = std::collections::HashMap::new();
    renumbered.insert(segment[0].seq(), first_seq);
    let timer = |command: u32| TimerId::for_command(run_id, command);
    for recorded in &segment[1..] {
        let seq = recorded.seq();
        if seq > from.seq {
            if let Event::SignalReceived { .. } = &recorded.event {
                events.push(recorded.event.clone());
            }
            continue;
        }
        renumbered.insert(seq, first_seq + events.len() as u64);
        events.push(match recorded.event.clone() {
            Event::SignalConsumed {
                command,
                signal_name,
                received_seq,
            } => Event::SignalConsumed {
                command,
                signal_name,
                received_seq: *renumbered.get(&received_seq).ok_or_else(|| {
                    StoreError::Corrupt {
                        location: format!("{} seq {seq}", recorded.envelope.workflow_id),
                        reason: format!(
                            "signal_consumed names seq {received_seq}, not a signal of its run"
                        ),
                    }
                })?,
            },
            Event::TimerStarted {
                command, fire_at, ..
            } => Event::TimerStarted {
                command,
                timer_id: timer(command),
                fire_at,
            },
            Event::TimerFired { command, .. } => Event::TimerFired {
                command,
                timer_id: timer(command),
            },
            Event::TimerCancelled { command, .. } => Event::TimerCancelled {
                command,
                timer_id: timer(command),
            },
            event => event,
        });
    }
    Ok(events)
}
