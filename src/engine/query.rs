//! Read-only runs: a run's history loaded to answer a query, never to go on.
//!
//! A query of a workflow that has no process (evicted, finished, or after a
//! restart) is answered by running its code against its history once more.
//! That replay must change nothing: it takes no ownership (a resident or
//! respawned process of the run is not superseded), installs no replay state
//! in the engine, records nothing, arms no timer. So it gets its own handle,
//! [`ReadOnlyRun`], which resolves only what history already holds: the first
//! command that would record or wait (the live edge, or a command still
//! pending) is refused with [`EngineError::ReadOnly`], and so is every
//! attempt to record or evict.

use std::sync::Mutex;

use crate::event::Event;
use crate::ids::{RunId, WorkflowId};
use crate::replay::{
    CommandKind, CommandSpec, Inbox, Outcome, PatchResolution, Resolution, Resolver, Scope, Settled,
};
use crate::status::{HistorySize, WorkflowStatus};
use crate::store::StoreError;

use super::{Engine, EngineError, RecordCommand, Recorded, Result, RunInfo, Taken, lock};

/// The latest run of a workflow, loaded read-only (see the module docs).
#[derive(Debug)]
pub struct ReadOnlyRun {
    info: RunInfo,
    status: WorkflowStatus,
    resolver: Mutex<Resolver>,
}

impl Engine {
    /// Loads run `run_id` of `workflow_id` (the latest when `None`),
    /// running or finished, read-only: nothing in the engine changes,
    /// whoever owns the run keeps it.
    pub async fn load_readonly(
        &self,
        workflow_id: &WorkflowId,
        run_id: Option<RunId>,
    ) -> Result<ReadOnlyRun> {
        let (run, segment) = self.read_run(workflow_id, run_id).await?;
        let resolver = Resolver::from_segment(run.run_id, &segment)?;
        let Some(Event::WorkflowStarted {
            workflow_type,
            input,
            ..
        }) = segment.first().map(|recorded| &recorded.event)
        else {
            return Err(StoreError::Corrupt {
                location: workflow_id.to_string(),
                reason: "run segment does not open with workflow_started".into(),
            }
            .into());
        };
        Ok(ReadOnlyRun {
            info: RunInfo {
                workflow_id: workflow_id.clone(),
                run_id: run.run_id,
                workflow_type: workflow_type.clone(),
                input: input.clone(),
                started_at: segment[0].envelope.recorded_at,
            },
            status: run.status,
            resolver: Mutex::new(resolver),
        })
    }
}

impl ReadOnlyRun {
    /// The run's identity and input.
    pub fn info(&self) -> &RunInfo {
        &self.info
    }

    /// The run's status when it was loaded.
    pub fn status(&self) -> WorkflowStatus {
        self.status
    }

    /// Resolves the next command the code issues, under `scope`, if history
    /// decides it: its recorded outcome, or an interrupt recorded first. A
    /// command history does not resolve (live, or still pending) is refused
    /// with [`EngineError::ReadOnly`]: the replay has gone as far as it can.
    /// A command that differs from history is non-determinism, as for a
    /// live run.
    pub fn resolve(&self, issued: &CommandSpec, scope: &Scope) -> Result<Resolution> {
        let mut resolver = lock(&self.resolver);
        match resolver.resolve_in(issued, scope)? {
            Resolution::Pending { ordinal, .. } => Err(self.refused(format!(
                "command #{ordinal} ({issued}) is still waiting for its outcome"
            ))),
            Resolution::Live { ordinal } => Err(self.refused(format!(
                "command #{ordinal} ({issued}) is not in history yet"
            ))),
            decided => Ok(decided),
        }
    }

    /// Resolves a patch check of `change_id` (see
    /// [`super::RunHandle::resolve_patch`]) if history decides it; refused
    /// where a live run would record the patch marker.
    pub fn resolve_patch(&self, change_id: &str) -> Result<PatchResolution> {
        match lock(&self.resolver).resolve_patch(change_id)? {
            PatchResolution::Live { ordinal } => Err(self.refused(format!(
                "the check of patch `{change_id}` (command #{ordinal}) is not in history yet"
            ))),
            decided => Ok(decided),
        }
    }

    /// The first outcome among `ordinals`, as [`super::RunHandle::settle`],
    /// if history holds one (or an interrupt before it); refused if the code
    /// would wait.
    pub fn settle(&self, ordinals: &[u32], scope: &Scope) -> Result<Settled> {
        match lock(&self.resolver).settle(ordinals, scope) {
            Settled::Waiting => Err(self.refused(format!(
                "commands {ordinals:?} have no outcome in history yet"
            ))),
            settled => Ok(settled),
        }
    }

    /// The message history gave the command the code issues now (or an
    /// interrupt before it), as [`super::RunHandle::take_message`]; refused
    /// where a live run would take a message from the inbox or wait.
    pub fn take_message(&self, inbox: Inbox, name: &str, scope: &Scope) -> Result<Taken> {
        let kind = match inbox {
            Inbox::Signal => CommandKind::Signal,
            Inbox::Update => CommandKind::Update,
        };
        let issued = CommandSpec::new(kind, name);
        let mut resolver = lock(&self.resolver);
        match resolver.resolve_in(&issued, scope)? {
            Resolution::Replayed {
                ordinal,
                outcome: Outcome::Recorded(payload),
            } => Ok(Taken::Message {
                ordinal,
                id: resolver
                    .update_id_at(ordinal)
                    .unwrap_or_default()
                    .to_owned(),
                payload,
            }),
            Resolution::Interrupted(interrupt) => Ok(Taken::Interrupted(interrupt)),
            Resolution::Replayed { ordinal, .. } | Resolution::Pending { ordinal, .. } => Err(self
                .refused(format!(
                    "command #{ordinal} ({issued}) has no message in history"
                ))),
            Resolution::Live { ordinal } => Err(self.refused(format!(
                "command #{ordinal} ({issued}) has not taken a message yet"
            ))),
        }
    }

    /// Whether the code has met a cancellation request at this point of the
    /// replay.
    pub fn cancel_delivered(&self) -> bool {
        lock(&self.resolver).cancel_delivered()
    }

    /// Cancelling commands `from..to` the code has issued: nothing to do if
    /// history already ended each of them (then no activity to stop);
    /// refused if one is still pending, since cancelling it would record.
    pub fn cancel_pending(&self, from: u32, to: Option<u32>) -> Result<Vec<u32>> {
        let resolver = lock(&self.resolver);
        let issued = resolver.issued();
        let pending: Vec<u32> = resolver
            .pending_from(from)
            .into_iter()
            .map(|command| command.ordinal)
            .filter(|&ordinal| ordinal < issued && to.is_none_or(|to| ordinal < to))
            .collect();
        if pending.is_empty() {
            Ok(Vec::new())
        } else {
            Err(self.refused(format!(
                "cancelling commands {pending:?}, which are still pending, is refused"
            )))
        }
    }

    /// Checks, when the code returned, that it issued every recorded command.
    pub fn finish(&self) -> Result<()> {
        Ok(lock(&self.resolver).finish()?)
    }

    /// The size of the run's history as its code has seen it at this point
    /// of the replay (see [`super::RunHandle::history_size`]).
    pub fn history_size(&self) -> HistorySize {
        lock(&self.resolver).history_size()
    }

    /// Always refused: a read-only run records nothing.
    pub fn record(&self, command: &RecordCommand) -> Result<Recorded> {
        Err(self.refused(format!("recording {command:?} is refused")))
    }

    /// Always refused: a read-only run starts no child (it only resolves
    /// what history decided).
    pub fn start_child(&self, ordinal: u32) -> Result<super::ChildStart> {
        Err(self.refused(format!("starting child command #{ordinal} is refused")))
    }

    /// Always refused: a read-only run sends nothing.
    pub fn signal_workflow(&self, ordinal: u32) -> Result<super::SignalSend> {
        Err(self.refused(format!("sending signal command #{ordinal} is refused")))
    }

    /// Always refused: a read-only run has no residency to end.
    pub fn evict(&self) -> Result<bool> {
        Err(self.refused("evicting it is refused".to_owned()))
    }

    /// Always refused: a read-only run's timers are not waited on.
    pub fn timer_fired(&self, ordinal: u32) -> Result<bool> {
        Err(self.refused(format!(
            "waiting on timer #{ordinal} is refused (no timer is armed for it)"
        )))
    }

    fn refused(&self, what: String) -> EngineError {
        EngineError::ReadOnly {
            workflow_id: self.info.workflow_id.clone(),
            run_id: self.info.run_id,
            what,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::runtime::Handle;

    use super::*;
    use crate::engine::{
        EngineConfig, EngineListener, RunHandle, RunOutcome, StartRequest, StoreConfig,
    };
    use crate::event::RecordedEvent;
    use crate::payload::Payload;

    struct Quiet;
    impl EngineListener for Quiet {
        fn warning(&self, _message: &str) {}
        fn wake(&self, _workflow_id: &WorkflowId, _workflow_type: &str) {}
        fn fatal(&self, _message: &str) {}
    }

    async fn engine() -> Engine {
        Engine::open(
            EngineConfig::new(StoreConfig::Memory),
            Arc::new(Quiet),
            Handle::current(),
        )
        .await
        .unwrap()
    }

    fn payload(byte: u8) -> Payload {
        Payload::etf(vec![131, 97, byte])
    }

    fn id(text: &str) -> WorkflowId {
        WorkflowId::new(text).unwrap()
    }

    fn timer() -> CommandSpec {
        CommandSpec::new(CommandKind::Timer, "")
    }

    fn marker() -> CommandSpec {
        CommandSpec::new(CommandKind::Marker, "now")
    }

    fn scope() -> Scope {
        Scope::default()
    }

    fn read_only_error<T: std::fmt::Debug>(result: Result<T>) -> String {
        match result {
            Err(error @ EngineError::ReadOnly { .. }) => error.to_string(),
            other => panic!("expected a read-only refusal, got {other:?}"),
        }
    }

    async fn last_seq(engine: &Engine, workflow_id: &WorkflowId) -> u64 {
        engine
            .history(workflow_id)
            .await
            .unwrap()
            .last()
            .map_or(0, RecordedEvent::seq)
    }

    /// A run that recorded a marker (#0), took signal "go" (#1), then
    /// started an hour's timer (#2) that has not fired.
    async fn sleeping(engine: &Engine, workflow_id: &str) -> RunHandle {
        let run = engine
            .start_workflow(StartRequest {
                workflow_id: Some(id(workflow_id)),
                workflow_type: "Shop.Order".into(),
                input: payload(1),
                timeouts: Default::default(),
                id_reuse: Default::default(),
                search_attributes: Default::default(),
            })
            .await
            .unwrap();
        run.resolve(&marker(), &scope()).unwrap();
        let marker = RecordCommand::Marker {
            ordinal: 0,
            name: "now".into(),
            value: payload(5),
        };
        run.record(marker, Some(&scope())).await.unwrap();
        engine
            .signal(&id(workflow_id), "go", payload(6))
            .await
            .unwrap();
        let taken = run.take_message(Inbox::Signal, "go", &scope()).await;
        assert!(matches!(taken, Ok(Taken::Message { ordinal: 1, .. })));
        run.resolve(&timer(), &scope()).unwrap();
        let timer = RecordCommand::TimerStarted {
            ordinal: 2,
            duration_ms: 3_600_000,
        };
        run.record(timer, Some(&scope())).await.unwrap();
        run
    }

    #[tokio::test]
    async fn a_read_only_run_replays_history_and_stops_where_it_would_wait() {
        let engine = engine().await;
        let live = sleeping(&engine, "order-1").await;
        let before = last_seq(&engine, &id("order-1")).await;

        let read_only = engine.load_readonly(&id("order-1"), None).await.unwrap();
        assert_eq!(read_only.status(), WorkflowStatus::Running);
        assert_eq!(read_only.info().input, payload(1));
        assert_eq!(
            read_only.resolve(&marker(), &scope()).unwrap(),
            Resolution::Replayed {
                ordinal: 0,
                outcome: Outcome::Recorded(payload(5))
            }
        );
        assert_eq!(
            read_only.settle(&[0], &scope()).unwrap(),
            Settled::Won {
                ordinal: 0,
                outcome: Outcome::Recorded(payload(5))
            }
        );
        assert_eq!(
            read_only
                .take_message(Inbox::Signal, "go", &scope())
                .unwrap(),
            Taken::Message {
                ordinal: 1,
                id: String::new(),
                payload: payload(6)
            }
        );
        let refusal = read_only_error(read_only.resolve(&timer(), &scope()));
        assert!(refusal.contains("command #2 (timer)"), "{refusal}");
        read_only_error(read_only.settle(&[2], &scope()));
        read_only_error(read_only.cancel_pending(0, None));
        assert_eq!(
            read_only.cancel_pending(0, Some(2)).unwrap(),
            Vec::<u32>::new()
        );
        assert!(!read_only.cancel_delivered());
        read_only_error(read_only.resolve_patch("fee"));
        let timer = RecordCommand::TimerStarted {
            ordinal: 3,
            duration_ms: 1,
        };
        read_only_error(read_only.record(&timer));
        read_only_error(read_only.evict());
        read_only_error(read_only.timer_fired(2));

        // The resident run was not superseded, and nothing was written.
        assert!(matches!(
            live.resolve(&marker(), &scope()),
            Ok(Resolution::Live { ordinal: 3 })
        ));
        assert_eq!(last_seq(&engine, &id("order-1")).await, before);
    }

    #[tokio::test]
    async fn a_message_not_yet_taken_is_left_in_the_inbox() {
        let engine = engine().await;
        let _live = engine
            .start_workflow(StartRequest {
                workflow_id: Some(id("order-2")),
                workflow_type: "Shop.Order".into(),
                input: payload(1),
                timeouts: Default::default(),
                id_reuse: Default::default(),
                search_attributes: Default::default(),
            })
            .await
            .unwrap();
        engine
            .signal(&id("order-2"), "more", payload(7))
            .await
            .unwrap();
        let before = last_seq(&engine, &id("order-2")).await;

        let read_only = engine.load_readonly(&id("order-2"), None).await.unwrap();
        let refusal = read_only_error(read_only.take_message(Inbox::Signal, "more", &scope()));
        assert!(refusal.contains("has not taken a message yet"), "{refusal}");
        assert_eq!(last_seq(&engine, &id("order-2")).await, before);
    }

    #[tokio::test]
    async fn a_finished_run_loads_read_only_and_replays_to_its_end() {
        let engine = engine().await;
        drop(sleeping(&engine, "order-3").await);
        let run = engine.load_run(&id("order-3"), None).await.unwrap();
        run.resolve(&marker(), &scope()).unwrap();
        engine
            .complete_run(
                &id("order-3"),
                run.info().run_id,
                RunOutcome::Completed(payload(9)),
            )
            .await
            .unwrap();

        let read_only = engine.load_readonly(&id("order-3"), None).await.unwrap();
        assert_eq!(read_only.status(), WorkflowStatus::Completed);
        read_only.resolve(&marker(), &scope()).unwrap();
        read_only
            .take_message(Inbox::Signal, "go", &scope())
            .unwrap();
        // The timer never fired (the run completed without it): still pending.
        read_only_error(read_only.resolve(&timer(), &scope()));
        assert!(read_only.finish().is_ok());
    }

    #[tokio::test]
    async fn changed_code_is_non_determinism_and_unknown_ids_are_not_found() {
        let engine = engine().await;
        let _live = sleeping(&engine, "order-4").await;
        let read_only = engine.load_readonly(&id("order-4"), None).await.unwrap();
        assert_eq!(
            read_only.resolve(&timer(), &scope()).unwrap_err().code(),
            Some("AION-ND001")
        );
        assert!(matches!(
            engine.load_readonly(&id("nobody"), None).await,
            Err(EngineError::NotFound { .. })
        ));
    }
}
