//! Continue-as-new: a run ends by starting a fresh run of the same workflow
//! (same id, new run id, new input), so that a workflow that goes on forever
//! keeps each run's history short.
//!
//! The ending (`workflow_continued_as_new`), the successor's
//! `workflow_started` and the signals the ended run had not taken are one
//! append, so one transaction: no crash leaves a run continued without its
//! successor, and the successor's deadlines are rows of the timers table
//! written with it. The successor's run id is fixed in the ending, so asking
//! again (a monitor's retry) finds the successor instead of making another.

use crate::event::{Event, RecordedEvent};
use crate::faults::{self, Point};
use crate::ids::{RunId, WorkflowId};
use crate::payload::Payload;
use crate::replay::Resolver;
use crate::status::{RunSummary, WorkflowStatus};
use crate::store::{StoreError, deadlines};
use crate::visibility::project_attributes;

use super::child::Family;
use super::complete::{ending_value, release_if};
use super::{Engine, EngineError, Result, RunHandle, RunInfo, Terminal};

/// What a run's code asked for when it continued as new.
#[derive(Clone, Debug, PartialEq)]
pub struct ContinueAsNew {
    /// The successor's workflow type (the run's own, or another).
    pub workflow_type: String,
    /// The successor's input.
    pub input: Payload,
}

/// The answer to [`Engine::continue_as_new`].
#[derive(Debug)]
pub enum Continued {
    /// This call recorded the ending and the successor's start: the
    /// successor's handle, for the host to give it a process.
    Started(RunHandle),
    /// The run had continued as new already (this is a retry): its
    /// successor, which the host must make sure has a process.
    Already {
        /// The successor run.
        new_run_id: RunId,
        /// Its type.
        workflow_type: String,
    },
    /// The run had ended another way first (terminated, timed out): how.
    Ended(Terminal),
}

impl Engine {
    /// Ends run `run_id` of `workflow_id` with `workflow_continued_as_new`
    /// and starts its successor, in one append (see the module docs).
    ///
    /// The successor's `workflow_started` is the run's own with the
    /// run-specific fields replaced (so that whatever else a start carries
    /// is carried over): a new run id, `parent_run_id` the ended run, the
    /// type and input asked for, what is left of the execution timeout
    /// (measured from this run's start), and the run's current search
    /// attributes. The run timeout applies to each run afresh. Signals the
    /// run recorded and did not take are recorded again for the successor,
    /// in their order; updates and cancellation requests are not carried.
    pub async fn continue_as_new(
        &self,
        workflow_id: &WorkflowId,
        run_id: RunId,
        request: ContinueAsNew,
    ) -> Result<Continued> {
        self.ensure_open()?;
        let cell = self.cell(workflow_id);
        let mut recorder = cell.recorder.lock().await;
        // The run's code has stopped: its replay state (if still here) only
        // saves reading its inbox again.
        let released = release_if(&cell, |run| run.resolver.run_id() == run_id);
        let Some((run, segment)) = self.inner.store.read_current_run(workflow_id).await? else {
            return Err(EngineError::NotFound {
                workflow_id: workflow_id.clone(),
            });
        };
        if run.run_id != run_id || run.status != WorkflowStatus::Running {
            drop(recorder);
            return self.continued_or_ended(workflow_id, run_id).await;
        }
        let corrupt = |reason: &str| StoreError::Corrupt {
            location: workflow_id.to_string(),
            reason: reason.to_owned(),
        };
        let started = segment
            .first()
            .ok_or_else(|| corrupt("a running run without events"))?;
        let resolver = match released {
            Some(live) => live.resolver,
            None => Resolver::from_segment(run_id, &segment)?,
        };
        let now = self.inner.clock.now();
        let new_run_id = RunId::generate();
        let mut successor = started.event.clone();
        let Event::WorkflowStarted {
            run_id: successor_run,
            parent_run_id,
            workflow_type,
            input,
            execution_timeout_ms,
            search_attributes,
            reset_from,
            ..
        } = &mut successor
        else {
            return Err(corrupt("run segment does not open with workflow_started").into());
        };
        *successor_run = new_run_id;
        *parent_run_id = Some(run_id);
        // A reset started the run, not its successor.
        *reset_from = None;
        workflow_type.clone_from(&request.workflow_type);
        input.clone_from(&request.input);
        // Measured from each run's start: the successor gets what is left.
        *execution_timeout_ms = execution_timeout_ms.map(|ms| {
            let spent = started.envelope.recorded_at.until(now).as_millis();
            ms.saturating_sub(u64::try_from(spent).unwrap_or(u64::MAX))
        });
        *search_attributes = project_attributes(&segment);
        let mut events = vec![
            Event::WorkflowContinuedAsNew {
                new_run_id,
                workflow_type: request.workflow_type.clone(),
                input: request.input.clone(),
            },
            successor,
        ];
        events.extend(
            resolver
                .waiting_signals()
                .map(|message| Event::SignalReceived {
                    signal_name: message.name.clone(),
                    payload: message.payload.clone(),
                    sent_by: message.sent_by.clone(),
                }),
        );
        recorder.set_head(run.last_seq);
        let recorded = cell.append_at(&mut recorder, events, now).await?;
        // The successor is durable and running; a crash here leaves it
        // without a process, which the reconciler's sweep of running runs
        // (and recovery after a restart) gives it.
        faults::hit(Point::ContinuedAsNew);
        let segment = &recorded[1..];
        let mut successor_resolver = Resolver::new(new_run_id);
        for event in segment {
            successor_resolver.apply(event)?;
        }
        // The ended run's timers are gone with it (its rows were removed in
        // the same transaction); the successor's deadlines are armed.
        self.inner.wheel.disarm_workflow(workflow_id);
        for deadline in deadlines(&segment[0]) {
            self.inner.wheel.arm(deadline);
        }
        let info = RunInfo {
            workflow_id: workflow_id.clone(),
            run_id: new_run_id,
            workflow_type: request.workflow_type,
            input: request.input,
            started_at: now,
        };
        let successor = self.install(&cell, info, successor_resolver, None);
        drop(recorder);
        // The ended run's children are closed by their policies (a run that
        // continues as new is closed, as in Temporal); the workflow's parent,
        // if any, hears nothing: the successor is still its child.
        let children = Family {
            parent: None,
            ..Family::of(&resolver)
        };
        let ended = Terminal {
            run_id,
            status: WorkflowStatus::ContinuedAsNew,
            value: Some(recorded[0].event.clone()).and_then(|event| ending_value(&event)),
        };
        self.after_ending(workflow_id, &ended, children).await;
        Ok(Continued::Started(successor))
    }

    /// How run `run_id`, which is no longer the running latest run, ended:
    /// its successor if it continued as new.
    async fn continued_or_ended(
        &self,
        workflow_id: &WorkflowId,
        run_id: RunId,
    ) -> Result<Continued> {
        let run = self.find_run(workflow_id, run_id).await?;
        let ending = self
            .inner
            .store
            .read_range(workflow_id, run.last_seq, run.last_seq)
            .await?;
        match ending.first().map(|recorded| &recorded.event) {
            Some(Event::WorkflowContinuedAsNew {
                new_run_id,
                workflow_type,
                ..
            }) => Ok(Continued::Already {
                new_run_id: *new_run_id,
                workflow_type: workflow_type.clone(),
            }),
            _ => Ok(Continued::Ended(
                self.run_terminal(workflow_id, run_id).await?,
            )),
        }
    }

    /// The runs of `workflow_id`, oldest first, from the store's runs index
    /// (no event is read); [`EngineError::NotFound`] for an unknown id.
    pub async fn runs(&self, workflow_id: &WorkflowId) -> Result<Vec<RunSummary>> {
        self.ensure_open()?;
        let runs = self.inner.store.read_run_chain(workflow_id).await?;
        if runs.is_empty() {
            return Err(EngineError::NotFound {
                workflow_id: workflow_id.clone(),
            });
        }
        Ok(runs)
    }

    /// Run `run_id` of `workflow_id`, from the runs index.
    pub(super) async fn find_run(
        &self,
        workflow_id: &WorkflowId,
        run_id: RunId,
    ) -> Result<RunSummary> {
        match self.inner.store.read_run(workflow_id, run_id).await? {
            Some(run) => Ok(run),
            None if self.latest_run(workflow_id).await?.is_none() => Err(EngineError::NotFound {
                workflow_id: workflow_id.clone(),
            }),
            None => Err(EngineError::RunNotFound {
                workflow_id: workflow_id.clone(),
                run_id,
            }),
        }
    }

    /// A run of `workflow_id` and its events (its segment of the history):
    /// run `run_id`, or the latest run when `None`. Only that run's events
    /// are read, however many runs came before it.
    pub(super) async fn read_run(
        &self,
        workflow_id: &WorkflowId,
        run_id: Option<RunId>,
    ) -> Result<(RunSummary, Vec<RecordedEvent>)> {
        self.ensure_open()?;
        match run_id {
            None => self
                .inner
                .store
                .read_current_run(workflow_id)
                .await?
                .ok_or_else(|| EngineError::NotFound {
                    workflow_id: workflow_id.clone(),
                }),
            Some(run_id) => {
                let run = self.find_run(workflow_id, run_id).await?;
                let events = self
                    .inner
                    .store
                    .read_range(workflow_id, run.first_seq, run.last_seq)
                    .await?;
                Ok((run, events))
            }
        }
    }
}
