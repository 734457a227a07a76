//! Messages to a running workflow: signals, updates and cancellation
//! requests, recorded in its history when they arrive, and taken by its code
//! in the order they were recorded.
//!
//! A run's code that waits for a message registers the wait
//! ([`RunHandle::take_message`]); a message that arrives for it is taken in
//! the same append that records its arrival, so a signal round trip costs
//! one durable write. A message for a run without a process (evicted, or the
//! VM was down) stays in the history's inbox, and the run is woken.

use crate::event::{Event, RecordedEvent};
use crate::ids::WorkflowId;
use crate::payload::Payload;
use crate::recorder::RecorderGuard;
use crate::replay::{CommandKind, CommandSpec, Inbox, Interrupt, Resolution, Resolver, Scope};
use crate::status::{RunSummary, WorkflowStatus};
use crate::time::Timestamp;

use super::{
    Engine, EngineError, LiveRun, Notice, Result, RunHandle, StartRequest, WorkflowCell, lock,
};

/// A wait of a run's code for the next message of a name.
#[derive(Clone, Debug)]
pub(super) struct MessageWait {
    inbox: Inbox,
    name: String,
    ordinal: u32,
    scope: Scope,
}

/// The answer to [`RunHandle::take_message`].
#[derive(Clone, Debug, PartialEq)]
pub enum Taken {
    /// Command `ordinal` took this message.
    Message {
        /// The command.
        ordinal: u32,
        /// The update's id (empty for a signal).
        id: String,
        /// The payload or the update's arguments.
        payload: Payload,
    },
    /// An interrupt of the wait's scope came first.
    Interrupted(Interrupt),
    /// Nothing yet: the wait is registered, and the owner hears
    /// [`Notice::Resolved`] when a message is taken for it.
    Waiting,
}

/// Where an update stands.
#[derive(Clone, Debug, PartialEq)]
pub enum UpdateState {
    /// Recorded; the workflow has not answered yet.
    Accepted,
    /// The workflow's reply.
    Replied(Payload),
}

fn kind_of(inbox: Inbox) -> CommandKind {
    match inbox {
        Inbox::Signal => CommandKind::Signal,
        Inbox::Update => CommandKind::Update,
    }
}

/// The event that records command `ordinal` taking message `seq`.
fn taking(inbox: Inbox, ordinal: u32, name: &str, id: &str, seq: u64) -> Event {
    match inbox {
        Inbox::Signal => Event::SignalConsumed {
            command: ordinal,
            signal_name: name.to_owned(),
            received_seq: seq,
        },
        Inbox::Update => Event::UpdateDelivered {
            command: ordinal,
            update_name: name.to_owned(),
            update_id: id.to_owned(),
        },
    }
}

impl RunHandle {
    /// Takes the next message named `name` from `inbox` for the command the
    /// run's code issues now, under `scope`: the message recorded first
    /// (replayed, or taken now with one append), an interrupt of the scope,
    /// or [`Taken::Waiting`], after which the owner is notified. Calling it
    /// again after a notice is how the wait goes on.
    pub async fn take_message(&self, inbox: Inbox, name: &str, scope: &Scope) -> Result<Taken> {
        self.engine.ensure_open()?;
        let spec = CommandSpec::new(kind_of(inbox), name);
        let mut recorder = self.cell.recorder.lock().await;
        let next = self.with_live(|run| {
            run.waiting = None;
            Ok(match run.resolver.resolve_in(&spec, scope)? {
                Resolution::Replayed { ordinal, outcome } => {
                    let payload = match outcome {
                        crate::replay::Outcome::Recorded(payload) => payload,
                        _ => unreachable!("a message command's outcome is its payload"),
                    };
                    let id = run
                        .resolver
                        .update_id_at(ordinal)
                        .unwrap_or_default()
                        .to_owned();
                    return Ok(Err(Taken::Message {
                        ordinal,
                        id,
                        payload,
                    }));
                }
                Resolution::Interrupted(interrupt) => {
                    return Ok(Err(Taken::Interrupted(interrupt)));
                }
                Resolution::Live { ordinal } => match run.resolver.next_message(inbox, name) {
                    Some(message) => Ok((ordinal, message.clone())),
                    None => {
                        run.waiting = Some(MessageWait {
                            inbox,
                            name: name.to_owned(),
                            ordinal,
                            scope: scope.clone(),
                        });
                        Err(Taken::Waiting)
                    }
                },
                Resolution::Pending { ordinal, .. } => {
                    return Err(EngineError::InvalidCommand {
                        workflow_id: self.info.workflow_id.clone(),
                        reason: format!("message command #{ordinal} cannot be pending"),
                    });
                }
            })
        })?;
        let (ordinal, message) = match next {
            Ok(next) => next,
            Err(answer) => return Ok(answer),
        };
        let event = taking(inbox, ordinal, name, &message.id, message.seq);
        self.cell.append(&mut recorder, vec![event]).await?;
        self.with_live(|run| {
            run.resolver.issued_live(ordinal);
            Ok(())
        })?;
        Ok(Taken::Message {
            ordinal,
            id: message.id,
            payload: message.payload,
        })
    }
}

impl Engine {
    /// Records signal `name` with `payload` for the running run of
    /// `workflow_id`; returns once it is durable.
    pub async fn signal(
        &self,
        workflow_id: &WorkflowId,
        name: &str,
        payload: Payload,
    ) -> Result<()> {
        self.signal_from(workflow_id, name, payload, None, None)
            .await
    }

    /// Whether a run of `workflow_id` that ran at or after `since` holds a
    /// `signal_received` sent by `key` (taken or not, carried over by a
    /// continue-as-new or not).
    async fn holds_signal_from(
        &self,
        workflow_id: &WorkflowId,
        key: &str,
        since: Timestamp,
    ) -> Result<bool> {
        let chain = self.inner.store.read_run_chain(workflow_id).await?;
        let Some(first) = chain
            .iter()
            .find(|run| run.closed_at.is_none_or(|closed| closed >= since))
        else {
            return Ok(false);
        };
        let events = self
            .inner
            .store
            .read_from(workflow_id, first.first_seq)
            .await?;
        Ok(events.iter().any(|recorded| {
            matches!(&recorded.event, Event::SignalReceived { sent_by: Some(by), .. } if by == key)
        }))
    }

    /// [`Engine::signal`], naming the workflow command that sent it
    /// (`sent_by`, see [`crate::event::ParentRef::key`]).
    ///
    /// With `unless_since`, a delivery repeated after a crash: nothing is
    /// recorded if a run of the workflow that ran at or after that instant
    /// (the send's) already holds a `signal_received` from `sent_by`,
    /// checked under the workflow's recorder lock.
    pub(super) async fn signal_from(
        &self,
        workflow_id: &WorkflowId,
        name: &str,
        payload: Payload,
        sent_by: Option<String>,
        unless_since: Option<Timestamp>,
    ) -> Result<()> {
        self.ensure_open()?;
        let cell = self.cell(workflow_id);
        let mut recorder = cell.recorder.lock().await;
        if let (Some(key), Some(since)) = (&sent_by, unless_since)
            && self.holds_signal_from(workflow_id, key, since).await?
        {
            return Ok(());
        }
        let latest = self.running_run(workflow_id).await?;
        recorder.set_head(latest.last_seq);
        let received = Event::SignalReceived {
            signal_name: name.to_owned(),
            payload,
            sent_by,
        };
        self.deliver(
            &cell,
            &mut recorder,
            &latest,
            vec![received],
            Inbox::Signal,
            name,
            "",
        )
        .await
    }

    /// Starts `request`'s workflow unless it is running, and records signal
    /// `name` for it, in one append when it starts. Returns the run's handle
    /// when this call started it.
    pub async fn signal_with_start(
        &self,
        request: StartRequest,
        name: &str,
        payload: Payload,
    ) -> Result<(WorkflowId, Option<RunHandle>)> {
        let received = Event::SignalReceived {
            signal_name: name.to_owned(),
            payload: payload.clone(),
            sent_by: None,
        };
        match self.start_with(request.clone(), vec![received]).await {
            Ok(run) => Ok((run.info().workflow_id.clone(), Some(run))),
            Err(EngineError::AlreadyStarted { workflow_id, .. }) => {
                match self.signal(&workflow_id, name, payload.clone()).await {
                    Ok(()) => Ok((workflow_id, None)),
                    // It ended between the two: start it again.
                    Err(EngineError::NotRunning { .. }) => {
                        Box::pin(self.signal_with_start(request, name, payload)).await
                    }
                    Err(error) => Err(error),
                }
            }
            Err(error) => Err(error),
        }
    }

    /// Records update `update_id` (`name`, `args`) for the running run of
    /// `workflow_id`, unless the run has it already (a retry): then says
    /// where it stands without recording anything.
    pub async fn update(
        &self,
        workflow_id: &WorkflowId,
        name: &str,
        args: Payload,
        update_id: &str,
    ) -> Result<UpdateState> {
        self.ensure_open()?;
        let cell = self.cell(workflow_id);
        let mut recorder = cell.recorder.lock().await;
        if let Some(state) = self.update_state(&cell, workflow_id, update_id).await? {
            return Ok(state);
        }
        let latest = self.running_run(workflow_id).await?;
        recorder.set_head(latest.last_seq);
        let accepted = Event::UpdateAccepted {
            update_id: update_id.to_owned(),
            update_name: name.to_owned(),
            args,
        };
        self.deliver(
            &cell,
            &mut recorder,
            &latest,
            vec![accepted],
            Inbox::Update,
            name,
            update_id,
        )
        .await?;
        Ok(UpdateState::Accepted)
    }

    /// Where update `update_id` of the latest run of `workflow_id` stands;
    /// [`EngineError::NotFound`] if the run has no such update.
    pub async fn update_result(
        &self,
        workflow_id: &WorkflowId,
        update_id: &str,
    ) -> Result<UpdateState> {
        self.ensure_open()?;
        let cell = self.cell(workflow_id);
        let _recorder = cell.recorder.lock().await;
        self.update_state(&cell, workflow_id, update_id)
            .await?
            .ok_or_else(|| EngineError::NotFound {
                workflow_id: workflow_id.clone(),
            })
    }

    async fn update_state(
        &self,
        cell: &WorkflowCell,
        workflow_id: &WorkflowId,
        update_id: &str,
    ) -> Result<Option<UpdateState>> {
        let state = |resolver: &Resolver| {
            resolver.update_reply(update_id).map(|reply| match reply {
                None => UpdateState::Accepted,
                Some(reply) => UpdateState::Replied(reply.clone()),
            })
        };
        if let Some(run) = lock(&cell.live).as_ref() {
            return Ok(state(&run.resolver));
        }
        let Some((run, segment)) = self.inner.store.read_current_run(workflow_id).await? else {
            return Err(EngineError::NotFound {
                workflow_id: workflow_id.clone(),
            });
        };
        let resolver = Resolver::from_segment(run.run_id, &segment)?;
        Ok(state(&resolver))
    }

    /// Records a cancellation request for the running run of `workflow_id`.
    /// A second request is recorded too, and changes nothing.
    pub async fn cancel(&self, workflow_id: &WorkflowId, reason: Payload) -> Result<()> {
        self.ensure_open()?;
        let cell = self.cell(workflow_id);
        let mut recorder = cell.recorder.lock().await;
        let latest = self.running_run(workflow_id).await?;
        recorder.set_head(latest.last_seq);
        cell.append(&mut recorder, vec![Event::CancelRequested { reason }])
            .await?;
        drop(recorder);
        self.tell(&cell, &latest, Notice::CancelRequested);
        Ok(())
    }

    /// The latest run of `workflow_id`, if it is running.
    async fn running_run(&self, workflow_id: &WorkflowId) -> Result<RunSummary> {
        let latest = self.existing_run(workflow_id).await?;
        if latest.status != WorkflowStatus::Running {
            return Err(EngineError::NotRunning {
                workflow_id: workflow_id.clone(),
                status: latest.status,
            });
        }
        Ok(latest)
    }

    /// Appends `events` (ending with a message's arrival) and, if the run's
    /// code waits for a message of this name and no interrupt came first,
    /// the taking of it by that wait, in the same append.
    #[allow(clippy::too_many_arguments)]
    async fn deliver(
        &self,
        cell: &WorkflowCell,
        recorder: &mut RecorderGuard<'_>,
        latest: &RunSummary,
        mut events: Vec<Event>,
        inbox: Inbox,
        name: &str,
        id: &str,
    ) -> Result<()> {
        let arrival_seq = latest.last_seq + events.len() as u64;
        let taker = {
            let mut live = lock(&cell.live);
            live.as_mut().and_then(|run| take_waiting(run, inbox, name))
        };
        if let Some(ordinal) = taker {
            events.push(taking(inbox, ordinal, name, id, arrival_seq));
        }
        let recorded: Vec<RecordedEvent> = cell.append(recorder, events).await?;
        debug_assert!(recorded.iter().any(|event| event.seq() == arrival_seq));
        // The wait's code takes the recorded message when it asks again
        // (its command is consumed then, as on replay).
        let notice = match taker {
            Some(ordinal) => Notice::Resolved(ordinal),
            None => Notice::Inbox,
        };
        self.tell(cell, latest, notice);
        Ok(())
    }

    /// Tells the run's owner, or wakes the run if it has none.
    pub(super) fn tell(&self, cell: &WorkflowCell, latest: &RunSummary, notice: Notice) {
        match cell.owner() {
            Some(owner) => owner.notify(notice),
            None => {
                self.unpark(&cell.workflow_id);
                self.inner
                    .listener
                    .wake(&cell.workflow_id, &latest.workflow_type)
            }
        }
    }
}

/// The ordinal of the run's wait for a message of `name` in `inbox`, taken
/// off the run, unless an interrupt of its scope came first.
fn take_waiting(run: &mut LiveRun, inbox: Inbox, name: &str) -> Option<u32> {
    let wait = run.waiting.as_ref()?;
    if wait.inbox != inbox
        || wait.name != name
        || run.resolver.interrupt(&wait.scope, u64::MAX).is_some()
    {
        return None;
    }
    if !run.resolver.is_live_edge(wait.ordinal) {
        return None;
    }
    run.waiting.take().map(|wait| wait.ordinal)
}
