//! Workflows that talk to workflows: child workflows and signals sent from
//! workflow code.
//!
//! **Children are recorded, then started.** The parent's command records
//! `child_workflow_started` (with the child's first run id, fixed there),
//! then the child's `workflow_started` is appended to the child's own
//! history, naming its parent's command ([`ParentRef`]). A crash between
//! the two leaves a child that never started: the parent's replay finds the
//! command pending and [`RunHandle::ensure_child`] starts it under the
//! recorded run id (a second start finds that run and does nothing).
//!
//! **A child's ending is recorded in its parent exactly once.** When a run
//! with a parent ends (however: its code, a termination, a timeout), the
//! engine appends the matching `child_workflow_*` event to the parent's
//! running run, under the parent's recorder lock, unless the command already
//! has its outcome. A crash between the child's ending and that record is
//! repaired the same way: the parent's replay finds the command pending,
//! and [`RunHandle::ensure_child`] records the ending it finds.
//!
//! **A parent's ending closes its children** by each one's policy
//! ([`ParentClose`]): terminated (the default), asked to cancel, or left
//! running. Their own endings close their children in turn, so a
//! cancellation or a termination reaches grandchildren.
//!
//! **A signal sent from workflow code** is recorded (`signal_sent`) before it
//! is delivered; the target's `signal_received` names the sending command
//! (`sent_by`). Only the last command a run recorded can have a delivery a
//! crash interrupted (the code goes on only once it is delivered), so a
//! replay checks that one ([`RunHandle::ensure_signal`]) and delivers it if
//! the target does not hold it.

use crate::event::{Event, ParentClose, ParentRef};
use crate::faults::{self, Point};
use crate::ids::{RunId, WorkflowId};
use crate::payload::Payload;
use crate::replay::{ChildStarted, Interrupt, PendingWork, Resolver, Scope};
use crate::status::{RunSummary, WorkflowStatus};
use crate::store::StoreError;
use crate::time::Timestamp;

use super::complete::release_if;
use super::start::Lineage;
use super::{
    Engine, EngineError, IdReuse, Notice, RecordCommand, Recorded, Result, RunHandle, StartRequest,
    Terminal, Timeouts, lock,
};

/// What became of a child command ([`RunHandle::start_child`],
/// [`RunHandle::ensure_child`]).
#[derive(Debug)]
pub enum ChildStart {
    /// The child's first run started now: the host gives it a process.
    Started(RunHandle),
    /// The child runs (or is being started): its ending will reach the
    /// parent by itself.
    Running,
    /// The command has its outcome in the parent's history (the child could
    /// not start, or it had ended): the parent's wait finds it.
    Resolved,
    /// An interrupt of the command's scope was recorded first: nothing was
    /// recorded, and the command raises instead.
    Interrupted(Interrupt),
}

/// What became of a signal sent from workflow code
/// ([`RunHandle::signal_workflow`]).
#[derive(Clone, Debug, PartialEq)]
pub enum SignalSend {
    /// Recorded and delivered.
    Sent,
    /// Recorded as not delivered: the target was `not_found` or
    /// `not_running`.
    Failed(String),
    /// An interrupt came first: nothing was recorded.
    Interrupted(Interrupt),
}

/// The workflow children and parent of one run, as its history says: what
/// its ending must tell and close.
#[derive(Default)]
pub(super) struct Family {
    pub(super) parent: Option<ParentRef>,
    pub(super) children: Vec<ChildStarted>,
}

impl Family {
    pub(super) fn of(resolver: &Resolver) -> Self {
        Self {
            parent: resolver.parent().cloned(),
            children: resolver
                .open_children()
                .into_iter()
                .map(|(_, child)| child.clone())
                .collect(),
        }
    }

    fn is_empty(&self) -> bool {
        self.parent.is_none() && self.children.is_empty()
    }

    /// What a run ended by a reset must tell and close: not its parent (the
    /// new run is its child now), and only the children `close` picks (not
    /// those the new run keeps).
    pub(super) fn for_reset(self, close: impl Fn(&ChildStarted) -> bool) -> Self {
        Self {
            parent: None,
            children: self
                .children
                .into_iter()
                .filter(|child| close(child))
                .collect(),
        }
    }
}

impl RunHandle {
    fn sender(&self, ordinal: u32) -> ParentRef {
        ParentRef {
            workflow_id: self.info.workflow_id.clone(),
            run_id: self.info.run_id,
            command: ordinal,
            parent_close: None,
        }
    }

    /// Records live command `ordinal` starting `child` under `scope` (its
    /// `run_id` is set here), then starts it.
    pub async fn start_child(
        &self,
        ordinal: u32,
        mut child: ChildStarted,
        scope: &Scope,
    ) -> Result<ChildStart> {
        child.run_id = Some(RunId::generate());
        let command = RecordCommand::ChildWorkflowStarted {
            ordinal,
            child: child.clone(),
        };
        if let Recorded::Interrupted(interrupt) = self.record(command, Some(scope)).await? {
            return Ok(ChildStart::Interrupted(interrupt));
        }
        // Recorded in the parent; the child's history is still empty.
        faults::hit(Point::ChildStarted);
        self.engine
            .start_recorded_child(self.sender(ordinal), &child)
            .await
    }

    /// Brings child command `ordinal`, recorded and pending on replay, to
    /// where its history says it is: starts a child that never started,
    /// records the ending of one that ended, and leaves a running one alone.
    pub async fn ensure_child(&self, ordinal: u32) -> Result<ChildStart> {
        let child = self.with_live(|run| match run.resolver.pending_at(ordinal) {
            Some(PendingWork::ChildWorkflow(child)) => Ok(Some(child)),
            _ => Ok(None),
        })?;
        match child {
            Some(child) => self.engine.ensure_child(self.sender(ordinal), &child).await,
            None => Ok(ChildStart::Resolved),
        }
    }

    /// Asks the child of command `ordinal` to cancel: only while the command
    /// has no outcome, only the run its parent started (or one continuing
    /// it), and only once (a replay asking again records nothing).
    pub async fn cancel_child(&self, ordinal: u32) -> Result<()> {
        let child = self.with_live(|run| match run.resolver.pending_at(ordinal) {
            Some(PendingWork::ChildWorkflow(child)) => Ok(Some(child)),
            _ => Ok(None),
        })?;
        match child {
            Some(child) => self.engine.cancel_child_run(&child).await,
            None => Ok(()),
        }
    }

    /// Records live command `ordinal` sending signal `name` to `target`
    /// under `scope`, then delivers it. A target without a running run is
    /// recorded as a failed send, and nothing is delivered.
    pub async fn signal_workflow(
        &self,
        ordinal: u32,
        target: WorkflowId,
        name: String,
        payload: Payload,
        scope: &Scope,
    ) -> Result<SignalSend> {
        let failed = match self.engine.latest_run(&target).await? {
            None => Some("not_found".to_owned()),
            Some(run) if run.status != WorkflowStatus::Running => Some("not_running".to_owned()),
            Some(_) => None,
        };
        let command = RecordCommand::SignalSent {
            ordinal,
            target: target.clone(),
            name: name.clone(),
            payload: payload.clone(),
            failed: failed.clone(),
        };
        if let Recorded::Interrupted(interrupt) = self.record(command, Some(scope)).await? {
            return Ok(SignalSend::Interrupted(interrupt));
        }
        if let Some(reason) = failed {
            return Ok(SignalSend::Failed(reason));
        }
        // Recorded as sent; the target holds nothing yet.
        faults::hit(Point::SignalSent);
        self.engine
            .deliver_sent(&target, &name, payload, &self.sender(ordinal), None)
            .await?;
        Ok(SignalSend::Sent)
    }

    /// Delivers the signal replayed command `ordinal` sent, if a crash may
    /// have come between its record and its delivery (it is the last command
    /// the run recorded) and no run of the target that ran since holds it.
    pub async fn ensure_signal(&self, ordinal: u32) -> Result<()> {
        let last = self.with_live(|run| Ok(ordinal + 1 == run.resolver.recorded()))?;
        if !last {
            return Ok(());
        }
        let (_, segment) = self.read_own_run().await?;
        if self.copied_by_reset(&segment, ordinal).await? {
            // Its delivery happened (or was lost) in the run it was copied
            // from, under that run's sender key.
            return Ok(());
        }
        let sent = segment.iter().find_map(|recorded| match &recorded.event {
            Event::SignalSent {
                command,
                target_workflow_id,
                signal_name,
                payload,
                failed: None,
            } if *command == ordinal => Some((
                target_workflow_id.clone(),
                signal_name.clone(),
                payload.clone(),
                recorded.envelope.recorded_at,
            )),
            _ => None,
        });
        let Some((target, name, payload, sent_at)) = sent else {
            return Ok(());
        };
        self.engine
            .deliver_sent(
                &target,
                &name,
                payload,
                &self.sender(ordinal),
                Some(sent_at),
            )
            .await
    }

    /// Whether command `ordinal` of this run (whose events are `segment`)
    /// was copied from another run by a reset.
    async fn copied_by_reset(
        &self,
        segment: &[crate::event::RecordedEvent],
        ordinal: u32,
    ) -> Result<bool> {
        let Some(point) = segment
            .first()
            .and_then(|started| started.event.reset_from())
        else {
            return Ok(false);
        };
        let Some(opened) = segment
            .iter()
            .find(|recorded| recorded.event.command() == Some(ordinal))
        else {
            return Ok(false);
        };
        let chain = self
            .engine
            .inner
            .store
            .read_run_chain(&self.info.workflow_id)
            .await?;
        let Some(source) = chain.iter().find(|run| run.run_id == point.run_id) else {
            return Ok(false);
        };
        // The copies follow the new run's start, one per event of the
        // source after its own start, up to the point.
        let copied_until = segment[0].seq() + (point.seq - source.first_seq);
        Ok(opened.seq() <= copied_until)
    }

    async fn read_own_run(&self) -> Result<(RunSummary, Vec<crate::event::RecordedEvent>)> {
        self.engine
            .inner
            .store
            .read_current_run(&self.info.workflow_id)
            .await?
            .ok_or_else(|| EngineError::NotFound {
                workflow_id: self.info.workflow_id.clone(),
            })
    }
}

impl Engine {
    /// Delivers a signal sent by workflow command `sender` (again, if
    /// `again_since` is the send's instant: unless it arrived). A target that
    /// stopped running since the send was recorded gets nothing (like a
    /// signal a run ends without taking).
    async fn deliver_sent(
        &self,
        target: &WorkflowId,
        name: &str,
        payload: Payload,
        sender: &ParentRef,
        again_since: Option<Timestamp>,
    ) -> Result<()> {
        match self
            .signal_from(target, name, payload, Some(sender.key()), again_since)
            .await
        {
            Err(EngineError::NotRunning { .. } | EngineError::NotFound { .. }) => {
                self.inner.listener.warning(&format!(
                    "the signal {name} sent by workflow {} reached {target} after it stopped running",
                    sender.workflow_id
                ));
                Ok(())
            }
            other => other,
        }
    }

    /// Starts the first run of `child`, recorded by `parent`. A child whose
    /// id is taken (a running workflow, or an id reuse policy that refuses)
    /// never runs: the parent's command fails with `already_started`.
    pub(super) async fn start_recorded_child(
        &self,
        parent: ParentRef,
        child: &ChildStarted,
    ) -> Result<ChildStart> {
        let id_reuse = child
            .id_reuse
            .as_deref()
            .and_then(IdReuse::parse)
            .unwrap_or_default();
        let request = StartRequest {
            workflow_id: Some(child.workflow_id.clone()),
            workflow_type: child.workflow_type.clone(),
            input: child.input.clone(),
            timeouts: Timeouts {
                execution_ms: child.execution_timeout_ms,
                run_ms: child.run_timeout_ms,
            },
            id_reuse,
            search_attributes: child.search_attributes.clone(),
        };
        let parent_ref = ParentRef {
            parent_close: Some(child.parent_close),
            ..parent.clone()
        };
        let lineage = Lineage {
            run_id: child.run_id,
            parent: Some(parent_ref.clone()),
        };
        let refused = match self.start_as(request, Vec::new(), lineage).await {
            Ok(run) => {
                // The parent's run may have ended between its record and this
                // start, closing no child (there was none yet): the child
                // wrote its start before reading the parent, the parent its
                // ending before reading the child, so one of them sees the
                // other.
                let started = run.info().run_id;
                return match self
                    .orphaned(&parent_ref, &child.workflow_id, started, false)
                    .await?
                {
                    None => Ok(ChildStart::Started(run)),
                    Some(policy) => {
                        self.close_orphan(&child.workflow_id, policy).await?;
                        Ok(match policy {
                            ParentClose::RequestCancel => ChildStart::Started(run),
                            _ => ChildStart::Running,
                        })
                    }
                };
            }
            Err(EngineError::AlreadyStarted { run_id, .. }) if Some(run_id) == child.run_id => {
                return Ok(ChildStart::Running);
            }
            Err(EngineError::AlreadyStarted { .. } | EngineError::IdReuseRefused { .. }) => {
                "already_started"
            }
            Err(EngineError::Store(StoreError::InvalidSearchAttribute { .. })) => {
                "invalid_search_attribute"
            }
            Err(error) => return Err(error),
        };
        let failed = Event::ChildWorkflowFailed {
            command: parent.command,
            child_workflow_id: child.workflow_id.clone(),
            error: Payload::etf_atom("nil"),
            reason: Some(refused.to_owned()),
        };
        self.record_in_parent(&parent, failed, None).await?;
        Ok(ChildStart::Resolved)
    }

    async fn ensure_child(&self, parent: ParentRef, child: &ChildStarted) -> Result<ChildStart> {
        let chain = self.inner.store.read_run_chain(&child.workflow_id).await?;
        let Some(last) = self
            .lineage_end(&child.workflow_id, &chain, child.run_id)
            .await?
        else {
            return self.start_recorded_child(parent, child).await;
        };
        if matches!(
            last.status,
            WorkflowStatus::Running | WorkflowStatus::ContinuedAsNew
        ) {
            return Ok(ChildStart::Running);
        }
        let terminal = self.run_terminal(&child.workflow_id, last.run_id).await?;
        if let Some(event) = child_ending(parent.command, &child.workflow_id, &terminal) {
            self.record_in_parent(&parent, event, None).await?;
        }
        Ok(ChildStart::Resolved)
    }

    /// What a run that just ended (`terminal`) must tell and close: its
    /// parent hears how it ended, its open children are closed by their
    /// policies. Failures are reported as warnings: the parent's replay
    /// repairs a lost record ([`RunHandle::ensure_child`]).
    pub(super) async fn after_ending(
        &self,
        workflow_id: &WorkflowId,
        terminal: &Terminal,
        family: Family,
    ) {
        if family.is_empty() {
            return;
        }
        if let Some(parent) = &family.parent
            && let Some(event) = child_ending(parent.command, workflow_id, terminal)
        {
            // The child's ending is durable; its parent holds nothing yet.
            faults::hit(Point::ChildEnded);
            self.tell_parent(parent, workflow_id, event, terminal.run_id)
                .await;
        }
        for child in family.children {
            if let Err(error) = Box::pin(self.close_child(&child)).await {
                self.inner.listener.warning(&format!(
                    "child workflow {} of {workflow_id} could not be closed ({}): {error}",
                    child.workflow_id,
                    child.parent_close.as_str()
                ));
            }
        }
    }

    /// Records `event`, a child's ending, in its parent, trying again a few
    /// times; if it still fails, makes the parent replay, which records it
    /// (see [`RunHandle::ensure_child`]): a resident parent's replay state
    /// is dropped (its process stops at its next look and is respawned), an
    /// evicted one is woken. `ended` is the child's run that ended (see
    /// `record_in_parent`).
    async fn tell_parent(
        &self,
        parent: &ParentRef,
        child: &WorkflowId,
        event: Event,
        ended: RunId,
    ) {
        let mut error = None;
        for pause_ms in [0, 100, 1_000] {
            tokio::time::sleep(std::time::Duration::from_millis(pause_ms)).await;
            match self
                .record_in_parent(parent, event.clone(), Some(ended))
                .await
            {
                Ok(()) => return,
                Err(failed) => error = Some(failed),
            }
        }
        self.inner.listener.warning(&format!(
            "the ending of child workflow {child} could not be recorded in its parent {}: {}; the parent replays to record it",
            parent.workflow_id,
            error.map(|error| error.to_string()).unwrap_or_default()
        ));
        if let Some(cell) = self.existing_cell(&parent.workflow_id)
            && let Some(run) = release_if(&cell, |run| run.resolver.run_id() == parent.run_id)
            && let Some(owner) = run.owner
        {
            owner.notify(Notice::Inbox);
        }
        if let Ok(Some(run)) = self.latest_run(&parent.workflow_id).await {
            self.unpark(&parent.workflow_id);
            self.inner
                .listener
                .wake(&parent.workflow_id, &run.workflow_type);
        }
    }

    /// Applies `child`'s parent close policy, if it still runs the lineage
    /// its parent started.
    async fn close_child(&self, child: &ChildStarted) -> Result<()> {
        if child.parent_close == ParentClose::Abandon {
            return Ok(());
        }
        let chain = self.inner.store.read_run_chain(&child.workflow_id).await?;
        match self
            .lineage_end(&child.workflow_id, &chain, child.run_id)
            .await?
        {
            Some(run) if run.status == WorkflowStatus::Running => {}
            _ => return Ok(()),
        }
        let reason = Payload::etf_atom("parent_closed");
        let closed = match child.parent_close {
            ParentClose::Terminate => self.terminate(&child.workflow_id, reason).await.map(drop),
            ParentClose::RequestCancel => self.cancel(&child.workflow_id, reason).await,
            ParentClose::Abandon => Ok(()),
        };
        match closed {
            // It ended meanwhile.
            Err(EngineError::NotRunning { .. }) => Ok(()),
            other => other,
        }
    }

    /// The policy that closes run `run_id` of child `child` (`parent` names
    /// its parent's command) now, if its parent's run ended without closing
    /// it (a crash between the parent's ending and its closing of its
    /// children): terminate, or request cancellation (unless
    /// `cancel_requested` already). A parent run that a reset replaced by a
    /// run that kept the child (the command is pending there with this
    /// child's lineage) has not ended for the child.
    pub(in crate::engine) async fn orphaned(
        &self,
        parent: &ParentRef,
        child: &WorkflowId,
        run_id: RunId,
        cancel_requested: bool,
    ) -> Result<Option<ParentClose>> {
        let policy = match parent.parent_close {
            None | Some(ParentClose::Abandon) => return Ok(None),
            Some(ParentClose::RequestCancel) if cancel_requested => return Ok(None),
            Some(policy) => policy,
        };
        let Some(latest) = self.latest_run(&parent.workflow_id).await? else {
            return Ok(Some(policy));
        };
        if latest.status != WorkflowStatus::Running {
            return Ok(Some(policy));
        }
        if latest.run_id == parent.run_id || self.kept_by_reset(parent, child, run_id).await? {
            return Ok(None);
        }
        Ok(Some(policy))
    }

    /// Whether the parent's latest run (not `parent.run_id`) is a reset that
    /// kept child `child`, whose run `run_id` ends its lineage: command
    /// `parent.command` is pending there with the same child.
    async fn kept_by_reset(
        &self,
        parent: &ParentRef,
        child: &WorkflowId,
        run_id: RunId,
    ) -> Result<bool> {
        let Some((run, segment)) = self
            .inner
            .store
            .read_current_run(&parent.workflow_id)
            .await?
        else {
            return Ok(false);
        };
        if segment
            .first()
            .and_then(|started| started.event.reset_from())
            .is_none()
        {
            return Ok(false);
        }
        let pending = match Resolver::from_segment(run.run_id, &segment)?.pending_at(parent.command)
        {
            Some(PendingWork::ChildWorkflow(pending)) if pending.workflow_id == *child => pending,
            _ => return Ok(false),
        };
        let chain = self.inner.store.read_run_chain(child).await?;
        let end = self.lineage_end(child, &chain, pending.run_id).await?;
        Ok(end.is_some_and(|end| end.run_id == run_id))
    }

    /// Closes the running run of `child` by `policy` (see [`Engine::orphaned`]).
    pub(super) async fn close_orphan(&self, child: &WorkflowId, policy: ParentClose) -> Result<()> {
        let reason = Payload::etf_atom("parent_closed");
        let closed = match policy {
            ParentClose::Terminate => self.terminate(child, reason).await.map(drop),
            ParentClose::RequestCancel => self.cancel(child, reason).await,
            ParentClose::Abandon => Ok(()),
        };
        match closed {
            Err(EngineError::NotRunning { .. }) => Ok(()),
            other => other,
        }
    }

    /// Records a cancellation request for the running run of `child`'s
    /// lineage, unless one is recorded already.
    async fn cancel_child_run(&self, child: &ChildStarted) -> Result<()> {
        let cell = self.cell(&child.workflow_id);
        let mut recorder = cell.recorder.lock().await;
        let chain = self.inner.store.read_run_chain(&child.workflow_id).await?;
        let Some(run) = lineage_end(&chain, child.run_id)
            .filter(|run| run.status == WorkflowStatus::Running && Some(*run) == chain.last())
        else {
            return Ok(());
        };
        let live = lock(&cell.live)
            .as_ref()
            .filter(|live| live.resolver.run_id() == run.run_id)
            .map(|live| live.resolver.cancel_requested());
        let requested = match live {
            Some(requested) => requested,
            None => self
                .inner
                .store
                .read_from(&child.workflow_id, run.first_seq)
                .await?
                .iter()
                .any(|recorded| matches!(recorded.event, Event::CancelRequested { .. })),
        };
        if requested {
            return Ok(());
        }
        recorder.set_head(run.last_seq);
        let reason = Payload::etf_atom("cancelled_by_parent");
        cell.append(&mut recorder, vec![Event::CancelRequested { reason }])
            .await?;
        drop(recorder);
        self.tell(&cell, run, Notice::CancelRequested);
        Ok(())
    }

    /// Appends `event` (the outcome of a child command) to the parent's
    /// run, if that run is still running and the command has no outcome
    /// yet; tells the parent's process, or wakes the run.
    ///
    /// `ended`, the child's run that ended, when the parent's latest run may
    /// be a reset of `parent.run_id` that kept the child: then the command
    /// is the new run's if it is pending there with the same child, whose
    /// lineage ended with `ended`.
    async fn record_in_parent(
        &self,
        parent: &ParentRef,
        event: Event,
        ended: Option<RunId>,
    ) -> Result<()> {
        let cell = self.cell(&parent.workflow_id);
        let mut recorder = cell.recorder.lock().await;
        let Some(latest) = self.latest_run(&parent.workflow_id).await? else {
            return Ok(());
        };
        let adopted = latest.run_id != parent.run_id;
        if (adopted && ended.is_none()) || latest.status != WorkflowStatus::Running {
            return Ok(());
        }
        let child_id = match &event {
            Event::ChildWorkflowCompleted {
                child_workflow_id, ..
            }
            | Event::ChildWorkflowFailed {
                child_workflow_id, ..
            }
            | Event::ChildWorkflowCancelled {
                child_workflow_id, ..
            } => Some(child_workflow_id.clone()),
            _ => None,
        };
        let pending_child = |resolver: &Resolver| match resolver.pending_at(parent.command) {
            Some(PendingWork::ChildWorkflow(child)) => Some(*child),
            _ => None,
        };
        let live = lock(&cell.live)
            .as_ref()
            .filter(|run| run.resolver.run_id() == latest.run_id)
            .map(|run| pending_child(&run.resolver));
        let pending = match live {
            Some(pending) => pending,
            None => {
                let Some((run, segment)) = self
                    .inner
                    .store
                    .read_current_run(&parent.workflow_id)
                    .await?
                else {
                    return Ok(());
                };
                pending_child(&Resolver::from_segment(run.run_id, &segment)?)
            }
        };
        let Some(pending) = pending else {
            return Ok(());
        };
        if adopted {
            // Kept by a reset: the same child (id and first run), and its
            // lineage is the one that ended.
            if child_id.as_ref() != Some(&pending.workflow_id) {
                return Ok(());
            }
            let chain = self
                .inner
                .store
                .read_run_chain(&pending.workflow_id)
                .await?;
            let end = self
                .lineage_end(&pending.workflow_id, &chain, pending.run_id)
                .await?;
            if end.map(|run| run.run_id) != ended {
                return Ok(());
            }
        }
        recorder.set_head(latest.last_seq);
        cell.append(&mut recorder, vec![event]).await?;
        drop(recorder);
        self.tell(&cell, &latest, Notice::Resolved(parent.command));
        Ok(())
    }

    /// The family of run `run` of `workflow_id`, read from its history (for
    /// an ending recorded without the run's replay state at hand).
    pub(super) async fn family_from_store(
        &self,
        workflow_id: &WorkflowId,
        run: &RunSummary,
    ) -> Result<Family> {
        let segment = self
            .inner
            .store
            .read_from(workflow_id, run.first_seq)
            .await?;
        let end = segment
            .iter()
            .position(|recorded| recorded.seq() > run.last_seq)
            .unwrap_or(segment.len());
        Ok(Family::of(&Resolver::from_segment(
            run.run_id,
            &segment[..end],
        )?))
    }
}

impl Engine {
    /// The last run of the lineage that starts at `first` in `chain` (the
    /// run history of `workflow_id`): as [`lineage_end`], also following
    /// resets (a run reset from the lineage's end continues it).
    async fn lineage_end<'c>(
        &self,
        workflow_id: &WorkflowId,
        chain: &'c [RunSummary],
        first: Option<RunId>,
    ) -> Result<Option<&'c RunSummary>> {
        let Some(mut end) = lineage_end(chain, first) else {
            return Ok(None);
        };
        loop {
            let Some(index) = chain.iter().position(|run| run.run_id == end.run_id) else {
                return Ok(Some(end));
            };
            if !end.status.is_terminal() || index + 1 == chain.len() {
                return Ok(Some(end));
            }
            // Only a run after a run that ended can be a reset of it: read
            // its start.
            let next = &chain[index + 1];
            let started = self
                .inner
                .store
                .read_from(workflow_id, next.first_seq)
                .await?;
            match started.first().and_then(|event| event.event.reset_from()) {
                Some(point) if point.run_id == end.run_id => {
                    end = lineage_end(&chain[index + 1..], Some(next.run_id)).unwrap_or(next);
                }
                _ => return Ok(Some(end)),
            }
        }
    }
}

/// The last run of the lineage that starts at `first` in `chain` (a run and
/// the runs continuing it as new), or `None` if `first` is not there (never
/// started). Without a `first` (older records), the latest run.
fn lineage_end(chain: &[RunSummary], first: Option<RunId>) -> Option<&RunSummary> {
    let Some(first) = first else {
        return chain.last();
    };
    let start = chain.iter().position(|run| run.run_id == first)?;
    let mut end = &chain[start];
    for run in &chain[start + 1..] {
        if run.parent_run_id == Some(end.run_id) {
            end = run;
        } else {
            break;
        }
    }
    Some(end)
}

/// The event that records, in its parent, how a child ended; `None` while
/// it has not ended (running, or continued as new).
fn child_ending(command: u32, child: &WorkflowId, terminal: &Terminal) -> Option<Event> {
    let value = || {
        terminal
            .value
            .clone()
            .unwrap_or_else(|| Payload::etf_atom("nil"))
    };
    let failed = |reason: Option<&str>| Event::ChildWorkflowFailed {
        command,
        child_workflow_id: child.clone(),
        error: value(),
        reason: reason.map(str::to_owned),
    };
    Some(match terminal.status {
        WorkflowStatus::Completed => Event::ChildWorkflowCompleted {
            command,
            child_workflow_id: child.clone(),
            result: value(),
        },
        WorkflowStatus::Failed => failed(None),
        WorkflowStatus::Cancelled => Event::ChildWorkflowCancelled {
            command,
            child_workflow_id: child.clone(),
        },
        WorkflowStatus::Terminated => failed(Some("terminated")),
        WorkflowStatus::TimedOut => failed(Some("timed_out")),
        WorkflowStatus::Running | WorkflowStatus::ContinuedAsNew => return None,
    })
}
