//! Property: random workflow code (activities, timers, races, signals,
//! updates and their replies, `with_timeout` scopes, cancellation), run once
//! against the engine while the world (signals, updates, cancellation,
//! activity results, timer firings) acts at random points, is recovered from
//! every prefix of the history it wrote as if it had never stopped.
//!
//! The level is the engine itself ([`Engine`], [`RunHandle`]), on the memory
//! store, not the resolver alone: races, interrupts and message hand-offs are
//! decided by the engine (`settle`, `take_message`, the `deliver` of an
//! arrival to a waiting run, `record` refusing a command an interrupt came
//! before), so driving the engine tests them all, and the driver below plays
//! the host's part the way `lib/aion/workflow.ex` and `lib/aion/workflow/*.ex`
//! do (start a future, await it, `with_timeout` as a scope timer, replies
//! shielded from cancellation, cancelling pending work after an interrupt).
//!
//! A prefix is written to a fresh workflow of the same engine (the same run
//! id, so timer ids and events are the same) and loaded with
//! [`Engine::load_run`], as recovery loads a run. The same code then runs
//! again, and the world replays what it did in the first run at the same
//! points of the history: each arrival is sent when the history reaches the
//! length at which it was recorded. The code must observe exactly what it
//! observed the first time (the same ordinals, outcomes, race winners,
//! messages, interrupts and ending), and the history must end up identical,
//! event for event. The complete history (ending included) is also replayed
//! read-only ([`Engine::load_readonly`]), which refuses anything that would
//! record or wait. Timers never fire on their own (a manual clock that does
//! not move), only when the world fires them.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use proptest::prelude::*;
use proptest::sample::Index;
use tokio::runtime::Handle;

use super::Quiet;
use crate::engine::{
    Engine, EngineConfig, EngineError, ReadOnlyRun, RecordCommand, Recorded, RunHandle, RunOutcome,
    StartRequest, StoreConfig, Taken,
};
use crate::event::{Envelope, Event, RecordedEvent};
use crate::ids::WorkflowId;
use crate::payload::Payload;
use crate::replay::{
    CommandKind, CommandSpec, Inbox, Interrupt, Outcome, PendingWork, Resolution, Scope, Settled,
};
use crate::store::{AppendRequest, TimerEntry};
use crate::time::{ManualClock, Timestamp};

/// Timer durations; the clock never moves, so none fires by itself.
const SLEEP_MS: u64 = 1_000;
const RACE_TIMER_MS: u64 = 2_000;
const SIGNAL_TIMEOUT_MS: u64 = 3_000;
const WITH_TIMEOUT_MS: u64 = 5_000;

const UPDATE: &str = "u";

fn payload(byte: u8) -> Payload {
    Payload::etf(vec![131, 97, byte])
}

fn activity_name(name: u8) -> String {
    format!("Act.{name}")
}

fn signal_name(name: u8) -> String {
    format!("s{name}")
}

/// A future started by [`Step::Futures`].
#[derive(Clone, Debug)]
enum Fut {
    Activity { name: u8, ok: bool },
    Timer,
}

/// One step of a workflow's code.
#[derive(Clone, Debug)]
enum Step {
    /// `activity/3`: start it and await it. `ok` is what it returns when the
    /// world lets it finish.
    Activity { name: u8, ok: bool },
    /// `sleep/1`.
    Sleep,
    /// Start every future, then `await_any` (`any`) or `await_all` them.
    Futures { futures: Vec<Fut>, any: bool },
    /// `await_signal/2`, with or without a timeout.
    Signal { name: u8, timeout: bool },
    /// `await_update/3`, with or without a timeout; the handler runs an
    /// activity (returning `Some(ok)`) or answers at once.
    Update {
        timeout: bool,
        handler: Option<bool>,
    },
    /// `with_timeout/2` around more steps.
    WithTimeout { body: Vec<Step> },
    /// `try do body rescue Aion.CancelledError -> cleanup end`: cleanup code
    /// after a cancellation, which runs on (the request interrupts once).
    Rescue { body: Vec<Step>, cleanup: Vec<Step> },
    /// `cancellation_requested?/0`.
    CancellationRequested,
}

/// What the world does at one point of the first run.
#[derive(Clone, Debug)]
enum Poke {
    Idle,
    /// Fire one of the pending timers.
    Fire(Index),
    /// Let one of the pending activities return.
    Complete(Index),
    Signal(u8),
    Update,
    Cancel,
}

/// What the code saw, in order: compared between the first run and every
/// replay of it.
#[derive(Clone, Debug, PartialEq)]
enum Obs {
    /// A command that opens (activity, timer) got this ordinal, or met an
    /// interrupt instead.
    Command(CommandSpec, Result<u32, Interrupt>),
    /// A wait on futures ended.
    Settled(Vec<u32>, Result<(u32, Outcome), Interrupt>),
    /// A wait on a message ended.
    Taken(CommandSpec, Result<(u32, String, Payload), Interrupt>),
    /// An update's reply was recorded (or replayed), or met an interrupt.
    Replied(String, Result<Payload, Interrupt>),
    /// A `with_timeout` (by its deadline's ordinal) ended; whether it timed out.
    WithTimeout(u32, bool),
    /// A wait with a timeout (by its deadline) timed out.
    TimedOut(u32),
    /// A cancellation was rescued.
    Rescued(Payload),
    /// What `cancellation_requested?/0` answered.
    CancellationRequested(bool),
    /// How the code ended.
    Ended(Ending),
    /// The read-only replay refused to start this command again: history
    /// holds it without an outcome (see [`ReadOnlyRun::resolve`]).
    Stopped(CommandSpec),
}

#[derive(Clone, Debug, PartialEq)]
enum Ending {
    Completed,
    Cancelled(Payload),
}

/// How the code stops early: a cancellation raised, a `with_timeout`'s
/// deadline thrown to it, or the test failing.
#[derive(Debug)]
enum Raise {
    Cancelled(Payload),
    TimedOut(u32),
    /// A read-only replay went as far as it can.
    Stopped,
    Broken(String),
}

impl From<EngineError> for Raise {
    fn from(error: EngineError) -> Self {
        Raise::Broken(format!("engine error {:?}: {error}", error.code()))
    }
}

/// What a blocked wait waits for.
#[derive(Clone, Debug)]
enum Wait {
    Settle(Vec<u32>),
    Message(Inbox, String),
}

/// The handle the code drives: a loaded run, or a read-only one for the
/// complete history.
enum Run {
    Live(RunHandle),
    ReadOnly(Box<ReadOnlyRun>),
}

impl Run {
    fn resolve(&self, spec: &CommandSpec, scope: &Scope) -> Result<Resolution, EngineError> {
        match self {
            Run::Live(run) => run.resolve(spec, scope),
            Run::ReadOnly(run) => run.resolve(spec, scope),
        }
    }

    async fn record(
        &self,
        command: RecordCommand,
        scope: Option<&Scope>,
    ) -> Result<Recorded, EngineError> {
        match self {
            Run::Live(run) => run.record(command, scope).await,
            Run::ReadOnly(run) => run.record(&command),
        }
    }

    fn settle(&self, ordinals: &[u32], scope: &Scope) -> Result<Settled, EngineError> {
        match self {
            Run::Live(run) => run.settle(ordinals, scope),
            Run::ReadOnly(run) => run.settle(ordinals, scope),
        }
    }

    async fn take_message(
        &self,
        inbox: Inbox,
        name: &str,
        scope: &Scope,
    ) -> Result<Taken, EngineError> {
        match self {
            Run::Live(run) => run.take_message(inbox, name, scope).await,
            Run::ReadOnly(run) => run.take_message(inbox, name, scope),
        }
    }

    async fn cancel_pending(&self, from: u32, to: Option<u32>) -> Result<Vec<u32>, EngineError> {
        match self {
            Run::Live(run) => run.cancel_pending(from, to).await,
            Run::ReadOnly(run) => run.cancel_pending(from, to),
        }
    }

    fn finish(&self) -> Result<(), EngineError> {
        match self {
            Run::Live(run) => run.finish(),
            Run::ReadOnly(run) => run.finish(),
        }
    }

    fn live(&self) -> Option<&RunHandle> {
        match self {
            Run::Live(run) => Some(run),
            Run::ReadOnly(_) => None,
        }
    }
}

/// How the world acts.
enum World {
    /// The first run: pokes in order, one per point, then only what
    /// unblocks a wait; cancellation requests at points `cancel_at`.
    Random {
        pokes: std::vec::IntoIter<Poke>,
        sent: u8,
        ticks: usize,
        cancel_at: Vec<usize>,
        unblocked: usize,
    },
    /// A replay: sends what the first run recorded from outside, when the
    /// history reaches the point where it was recorded; `eager` sends it at
    /// any point, otherwise only once the code has replayed all of history
    /// or waits.
    Follow { original: Vec<Event>, eager: bool },
    /// The read-only replay of a complete history: nothing happens.
    Still,
}

/// Runs the workflow code of one program, playing the host.
struct Driver {
    engine: Engine,
    workflow_id: WorkflowId,
    run: Run,
    world: World,
    scope: Scope,
    trace: Vec<Obs>,
    /// What each activity the code started returns, by ordinal.
    activity_ok: HashMap<u32, bool>,
}

type Boxed<'a, T> = Pin<Box<dyn Future<Output = Result<T, Raise>> + 'a>>;

impl Driver {
    // ---- the code -------------------------------------------------------

    fn steps<'a>(&'a mut self, steps: &'a [Step]) -> Boxed<'a, ()> {
        Box::pin(async move {
            for step in steps {
                self.step(step).await?;
            }
            Ok(())
        })
    }

    async fn step(&mut self, step: &Step) -> Result<(), Raise> {
        match step {
            Step::Activity { name, ok } => {
                let ordinal = self.start_activity(*name, *ok).await?;
                self.settle(vec![ordinal]).await?;
            }
            Step::Sleep => {
                let ordinal = self.start_timer(SLEEP_MS).await?;
                self.settle(vec![ordinal]).await?;
            }
            Step::Futures { futures, any } => {
                let mut ordinals = Vec::new();
                for future in futures {
                    ordinals.push(match future {
                        Fut::Activity { name, ok } => self.start_activity(*name, *ok).await?,
                        Fut::Timer => self.start_timer(RACE_TIMER_MS).await?,
                    });
                }
                if *any {
                    self.settle(ordinals).await?;
                } else {
                    for ordinal in ordinals {
                        self.settle(vec![ordinal]).await?;
                    }
                }
            }
            Step::Signal { name, timeout } => {
                self.await_message(Inbox::Signal, &signal_name(*name), *timeout)
                    .await?;
            }
            Step::Update { timeout, handler } => {
                if let Some((_, update_id, args)) =
                    self.await_message(Inbox::Update, UPDATE, *timeout).await?
                {
                    let reply = match handler {
                        None => args,
                        Some(ok) => {
                            let ordinal = self.start_activity(9, *ok).await?;
                            match self.settle(vec![ordinal]).await?.1 {
                                Outcome::Completed(value) | Outcome::Failed(value) => value,
                                _ => payload(255),
                            }
                        }
                    };
                    self.reply(update_id, reply).await?;
                }
            }
            Step::WithTimeout { body } => {
                let deadline = self.start_timer(WITH_TIMEOUT_MS).await?;
                let outer = self.scope.clone();
                self.scope.timers.insert(0, deadline);
                let result = self.steps(body).await;
                self.scope = outer;
                match result {
                    Ok(()) => {
                        self.cancel_pending(deadline, Some(deadline + 1)).await?;
                        self.trace.push(Obs::WithTimeout(deadline, false));
                    }
                    Err(Raise::TimedOut(ordinal)) if ordinal == deadline => {
                        self.cancel_pending(deadline + 1, None).await?;
                        self.trace.push(Obs::WithTimeout(deadline, true));
                    }
                    Err(raise) => return Err(raise),
                }
            }
            Step::Rescue { body, cleanup } => match self.steps(body).await {
                Ok(()) => {}
                Err(Raise::Cancelled(reason)) => {
                    self.trace.push(Obs::Rescued(reason));
                    self.steps(cleanup).await?;
                }
                Err(raise) => return Err(raise),
            },
            Step::CancellationRequested => {
                let delivered = match &self.run {
                    Run::Live(run) => run.cancel_delivered()?,
                    Run::ReadOnly(run) => run.cancel_delivered(),
                };
                self.trace.push(Obs::CancellationRequested(delivered));
            }
        }
        Ok(())
    }

    /// `start_activity/4`.
    async fn start_activity(&mut self, name: u8, ok: bool) -> Result<u32, Raise> {
        let spec = CommandSpec::new(CommandKind::Activity, activity_name(name));
        let opened = self
            .open(spec, |ordinal| RecordCommand::ActivityScheduled {
                ordinal,
                activity_type: activity_name(name),
                input: payload(ordinal as u8),
            })
            .await?;
        self.activity_ok.insert(opened, ok);
        Ok(opened)
    }

    /// `start_timer/1`.
    async fn start_timer(&mut self, duration_ms: u64) -> Result<u32, Raise> {
        let spec = CommandSpec::new(CommandKind::Timer, "");
        self.open(spec, |ordinal| RecordCommand::TimerStarted {
            ordinal,
            duration_ms,
        })
        .await
    }

    /// Resolves a command that opens, recording it when it is live.
    async fn open(
        &mut self,
        spec: CommandSpec,
        record: impl FnOnce(u32) -> RecordCommand,
    ) -> Result<u32, Raise> {
        self.tick(None).await?;
        let resolved = match self.run.resolve(&spec, &self.scope) {
            Err(EngineError::ReadOnly { .. }) => {
                self.trace.push(Obs::Stopped(spec));
                return Err(Raise::Stopped);
            }
            resolved => resolved?,
        };
        let opened = match resolved {
            Resolution::Replayed { ordinal, .. } | Resolution::Pending { ordinal, .. } => {
                Ok(ordinal)
            }
            Resolution::Live { ordinal } => {
                self.tick(None).await?;
                match self.run.record(record(ordinal), Some(&self.scope)).await? {
                    Recorded::Done => Ok(ordinal),
                    Recorded::Interrupted(interrupt) => Err(interrupt),
                }
            }
            Resolution::Interrupted(interrupt) => Err(interrupt),
        };
        self.trace.push(Obs::Command(spec, opened.clone()));
        match opened {
            Ok(ordinal) => Ok(ordinal),
            Err(interrupt) => Err(self.interrupted(interrupt).await),
        }
    }

    /// `await_any/1` (one future: `await/1`).
    async fn settle(&mut self, ordinals: Vec<u32>) -> Result<(u32, Outcome), Raise> {
        loop {
            self.tick(None).await?;
            match self.run.settle(&ordinals, &self.scope)? {
                Settled::Won { ordinal, outcome } => {
                    self.trace
                        .push(Obs::Settled(ordinals, Ok((ordinal, outcome.clone()))));
                    return Ok((ordinal, outcome));
                }
                Settled::Interrupted(interrupt) => {
                    self.trace
                        .push(Obs::Settled(ordinals, Err(interrupt.clone())));
                    return Err(self.interrupted(interrupt).await);
                }
                Settled::Waiting => self.block(Wait::Settle(ordinals.clone())).await?,
            }
        }
    }

    /// `await_signal/2` and the wait of `await_update/3`; `None` when it
    /// timed out.
    async fn await_message(
        &mut self,
        inbox: Inbox,
        name: &str,
        timeout: bool,
    ) -> Result<Option<(u32, String, Payload)>, Raise> {
        if !timeout {
            return self.take(inbox, name).await.map(Some);
        }
        let deadline = self.start_timer(SIGNAL_TIMEOUT_MS).await?;
        let outer = self.scope.clone();
        self.scope.timers.insert(0, deadline);
        let taken = self.take(inbox, name).await;
        self.scope = outer;
        match taken {
            Ok(taken) => {
                self.cancel_pending(deadline, Some(deadline + 1)).await?;
                Ok(Some(taken))
            }
            Err(Raise::TimedOut(ordinal)) if ordinal == deadline => {
                self.trace.push(Obs::TimedOut(deadline));
                Ok(None)
            }
            Err(raise) => Err(raise),
        }
    }

    async fn take(&mut self, inbox: Inbox, name: &str) -> Result<(u32, String, Payload), Raise> {
        let kind = match inbox {
            Inbox::Signal => CommandKind::Signal,
            Inbox::Update => CommandKind::Update,
        };
        let spec = CommandSpec::new(kind, name);
        loop {
            self.tick(None).await?;
            match self.run.take_message(inbox, name, &self.scope).await? {
                Taken::Message {
                    ordinal,
                    id,
                    payload,
                } => {
                    let taken = (ordinal, id, payload);
                    self.trace.push(Obs::Taken(spec, Ok(taken.clone())));
                    return Ok(taken);
                }
                Taken::Interrupted(interrupt) => {
                    self.trace.push(Obs::Taken(spec, Err(interrupt.clone())));
                    return Err(self.interrupted(interrupt).await);
                }
                Taken::Waiting => {
                    self.block(Wait::Message(inbox, name.to_owned())).await?;
                }
            }
        }
    }

    /// `Aion.Workflow.Update.reply/3`: shielded from cancellation.
    async fn reply(&mut self, update_id: String, reply: Payload) -> Result<(), Raise> {
        let outer = self.scope.clone();
        self.scope.shielded = true;
        let result = self.reply_shielded(&update_id, reply).await;
        self.scope = outer;
        let result = result?;
        self.trace.push(Obs::Replied(update_id, result.clone()));
        match result {
            Ok(_) => Ok(()),
            Err(interrupt) => Err(self.interrupted(interrupt).await),
        }
    }

    async fn reply_shielded(
        &mut self,
        update_id: &str,
        reply: Payload,
    ) -> Result<Result<Payload, Interrupt>, Raise> {
        let spec = CommandSpec::new(CommandKind::UpdateReply, update_id);
        self.tick(None).await?;
        Ok(match self.run.resolve(&spec, &self.scope)? {
            Resolution::Replayed {
                outcome: Outcome::Recorded(recorded),
                ..
            } => Ok(recorded),
            Resolution::Live { ordinal } => {
                self.tick(None).await?;
                let command = RecordCommand::UpdateCompleted {
                    ordinal,
                    update_id: update_id.to_owned(),
                    reply: reply.clone(),
                };
                match self.run.record(command, Some(&self.scope)).await? {
                    Recorded::Done => Ok(reply),
                    Recorded::Interrupted(interrupt) => Err(interrupt),
                }
            }
            Resolution::Interrupted(interrupt) => Err(interrupt),
            other => {
                return Err(Raise::Broken(format!(
                    "the reply to {update_id} resolved {other:?}"
                )));
            }
        })
    }

    /// `Command.interrupted/2`: a cancellation cancels the run's pending work
    /// and raises; a deadline is thrown to its `with_timeout`.
    async fn interrupted(&mut self, interrupt: Interrupt) -> Raise {
        match interrupt {
            Interrupt::Cancelled(reason) => match self.cancel_pending(0, None).await {
                Ok(()) => Raise::Cancelled(reason),
                Err(raise) => raise,
            },
            Interrupt::TimedOut(ordinal) => Raise::TimedOut(ordinal),
        }
    }

    async fn cancel_pending(&mut self, from: u32, to: Option<u32>) -> Result<(), Raise> {
        self.tick(None).await?;
        self.run.cancel_pending(from, to).await?;
        Ok(())
    }

    /// Runs `program` to its end: the ending the host records (`None` for a
    /// read-only replay that stopped).
    async fn run_program(&mut self, program: &[Step]) -> Result<Option<Ending>, String> {
        let ending = match self.steps(program).await {
            Ok(()) => {
                self.run
                    .finish()
                    .map_err(|error| format!("finish: {error}"))?;
                Ending::Completed
            }
            Err(Raise::Cancelled(reason)) => Ending::Cancelled(reason),
            Err(Raise::TimedOut(ordinal)) => {
                return Err(format!("deadline #{ordinal} escaped its with_timeout"));
            }
            Err(Raise::Stopped) => return Ok(None),
            Err(Raise::Broken(message)) => return Err(message),
        };
        self.trace.push(Obs::Ended(ending.clone()));
        Ok(Some(ending))
    }

    // ---- the world ------------------------------------------------------

    /// A point where the world may act (before each call into the engine).
    async fn tick(&mut self, wait: Option<&Wait>) -> Result<(), Raise> {
        match &mut self.world {
            World::Still => Ok(()),
            World::Random {
                pokes,
                ticks,
                cancel_at,
                ..
            } => {
                let poke = pokes.next();
                *ticks += 1;
                if cancel_at.contains(ticks) {
                    self.poke(Poke::Cancel).await?;
                }
                match (poke, wait) {
                    (Some(poke), _) => self.poke(poke).await,
                    (None, Some(wait)) => self.unblock(wait).await,
                    (None, None) => Ok(()),
                }
            }
            World::Follow { eager, .. } => {
                let at_edge = match (wait, *eager, self.run.live()) {
                    (Some(_), _, _) | (None, true, _) => true,
                    (None, false, Some(run)) => {
                        run.with_live(|run| Ok(run.resolver.issued() == run.resolver.recorded()))?
                    }
                    (None, false, None) => false,
                };
                if at_edge {
                    self.follow().await.map(drop)
                } else {
                    Ok(())
                }
            }
        }
    }

    /// The code waits: the world must act.
    async fn block(&mut self, wait: Wait) -> Result<(), Raise> {
        match &self.world {
            World::Still => Err(Raise::Broken(format!(
                "the replay of the complete history waits on {wait:?}"
            ))),
            World::Random { .. } => self.tick(Some(&wait)).await,
            World::Follow { .. } => {
                if self.follow().await? {
                    Ok(())
                } else {
                    let len = self.history_len().await?;
                    let World::Follow { original, .. } = &self.world else {
                        unreachable!()
                    };
                    Err(Raise::Broken(format!(
                        "the code waits on {wait:?} at history length {len}, where the first run recorded {:?}",
                        original.get(len)
                    )))
                }
            }
        }
    }

    fn handle(&self) -> &RunHandle {
        self.run.live().expect("the world acts on a loaded run")
    }

    fn pending(&self) -> Result<Vec<(u32, PendingWork)>, Raise> {
        Ok(self.handle().with_live(|run| {
            Ok(run
                .resolver
                .pending()
                .into_iter()
                .map(|command| (command.ordinal, command.work))
                .collect())
        })?)
    }

    async fn poke(&mut self, poke: Poke) -> Result<(), Raise> {
        let World::Random { sent, .. } = &mut self.world else {
            unreachable!()
        };
        *sent = sent.wrapping_add(1);
        let n = *sent;
        let id = &self.workflow_id;
        match poke {
            Poke::Idle => {}
            Poke::Fire(index) => {
                let timers: Vec<u32> = self
                    .pending()?
                    .into_iter()
                    .filter(|(_, work)| matches!(work, PendingWork::Timer { .. }))
                    .map(|(ordinal, _)| ordinal)
                    .collect();
                if !timers.is_empty() {
                    self.fire(timers[index.index(timers.len())]).await?;
                }
            }
            Poke::Complete(index) => {
                let activities: Vec<u32> = self
                    .pending()?
                    .into_iter()
                    .filter(|(_, work)| matches!(work, PendingWork::Activity { .. }))
                    .map(|(ordinal, _)| ordinal)
                    .collect();
                if !activities.is_empty() {
                    self.complete(activities[index.index(activities.len())])
                        .await?;
                }
            }
            Poke::Signal(name) => {
                self.engine
                    .signal(id, &signal_name(name), payload(n))
                    .await?;
            }
            Poke::Update => {
                self.engine
                    .update(id, UPDATE, payload(n), &format!("update-{n}"))
                    .await?;
            }
            Poke::Cancel => self.engine.cancel(id, payload(n)).await?,
        }
        Ok(())
    }

    /// No pokes left and the code waits: do what it waits for, or (one time
    /// in three) fire the deadline of its innermost `with_timeout`.
    async fn unblock(&mut self, wait: &Wait) -> Result<(), Raise> {
        let World::Random { unblocked, .. } = &mut self.world else {
            unreachable!()
        };
        *unblocked += 1;
        if unblocked.is_multiple_of(3) {
            // A cancellation rescued inside a with_timeout cancelled its
            // deadline: only a pending one can fire.
            let pending = self.pending()?;
            let deadline = self.scope.timers.iter().find(|deadline| {
                pending.iter().any(|(ordinal, work)| {
                    ordinal == *deadline && matches!(work, PendingWork::Timer { .. })
                })
            });
            if let Some(&deadline) = deadline {
                return self.fire(deadline).await;
            }
        }
        match wait {
            Wait::Settle(ordinals) => {
                let pending = self.pending()?;
                let first = ordinals
                    .iter()
                    .find_map(|ordinal| pending.iter().find(|(o, _)| o == ordinal))
                    .cloned();
                match first {
                    Some((ordinal, PendingWork::Activity { .. })) => self.complete(ordinal).await,
                    Some((ordinal, PendingWork::Timer { .. })) => self.fire(ordinal).await,
                    other => Err(Raise::Broken(format!(
                        "waiting on {ordinals:?}, but nothing pending to end: {other:?}"
                    ))),
                }
            }
            Wait::Message(inbox, name) => {
                let poke = match inbox {
                    Inbox::Signal => Poke::Signal(name[1..].parse().unwrap()),
                    Inbox::Update => Poke::Update,
                };
                self.poke(poke).await
            }
        }
    }

    async fn fire(&self, ordinal: u32) -> Result<(), Raise> {
        let Some(PendingWork::Timer { timer_id, fire_at }) = self
            .handle()
            .with_live(|run| Ok(run.resolver.pending_at(ordinal)))?
        else {
            return Err(Raise::Broken(format!("timer #{ordinal} is not pending")));
        };
        let entry = TimerEntry {
            workflow_id: self.workflow_id.clone(),
            timer_id,
            command: ordinal,
            fire_at,
        };
        Ok(self.engine.fire_timer(&entry).await?)
    }

    async fn complete(&self, ordinal: u32) -> Result<(), Raise> {
        let result = payload(100u8.wrapping_add(ordinal as u8));
        let command = if self.activity_ok.get(&ordinal).copied().unwrap_or(true) {
            RecordCommand::ActivityCompleted {
                ordinal,
                result,
                attempt: 1,
                last_failure: None,
            }
        } else {
            RecordCommand::ActivityFailed {
                ordinal,
                error: result,
                attempts: 1,
            }
        };
        self.handle().record(command, None).await?;
        Ok(())
    }

    async fn history_len(&self) -> Result<usize, Raise> {
        Ok(self.engine.history(&self.workflow_id).await?.len())
    }

    /// Sends what the first run recorded from outside at the history's
    /// current length, repeatedly; whether it sent anything.
    async fn follow(&mut self) -> Result<bool, Raise> {
        let mut sent = false;
        loop {
            let len = self.history_len().await?;
            let World::Follow { original, .. } = &self.world else {
                unreachable!()
            };
            let Some(next) = original.get(len).cloned() else {
                return Ok(sent);
            };
            let id = &self.workflow_id;
            match next {
                Event::SignalReceived {
                    signal_name,
                    payload,
                    ..
                } => self.engine.signal(id, &signal_name, payload).await?,
                Event::UpdateAccepted {
                    update_id,
                    update_name,
                    args,
                } => {
                    self.engine
                        .update(id, &update_name, args, &update_id)
                        .await?;
                }
                Event::CancelRequested { reason } => self.engine.cancel(id, reason).await?,
                Event::TimerFired { command, timer_id } => {
                    let entry = TimerEntry {
                        workflow_id: id.clone(),
                        timer_id,
                        command,
                        fire_at: Timestamp::EPOCH,
                    };
                    self.engine.fire_timer(&entry).await?;
                }
                Event::ActivityCompleted {
                    command, result, ..
                } => {
                    self.handle()
                        .record(
                            RecordCommand::ActivityCompleted {
                                ordinal: command,
                                result,
                                attempt: 1,
                                last_failure: None,
                            },
                            None,
                        )
                        .await?;
                }
                Event::ActivityFailed { command, error, .. } => {
                    self.handle()
                        .record(
                            RecordCommand::ActivityFailed {
                                ordinal: command,
                                error,
                                attempts: 1,
                            },
                            None,
                        )
                        .await?;
                }
                _ => return Ok(sent),
            }
            if self.history_len().await? <= len {
                return Err(Raise::Broken(format!(
                    "sending {:?} again recorded nothing at history length {len}",
                    original_event(&self.world, len)
                )));
            }
            sent = true;
        }
    }
}

fn original_event(world: &World, at: usize) -> Option<Event> {
    match world {
        World::Follow { original, .. } => original.get(at).cloned(),
        _ => None,
    }
}

async fn open_engine() -> Engine {
    Engine::open(
        EngineConfig {
            clock: Arc::new(ManualClock::new(Timestamp::from_millis(1_000_000))),
            ..EngineConfig::new(StoreConfig::Memory)
        },
        Arc::new(Quiet),
        Handle::current(),
    )
    .await
    .unwrap()
}

fn events(history: &[RecordedEvent]) -> Vec<Event> {
    history
        .iter()
        .map(|recorded| recorded.event.clone())
        .collect()
}

async fn end_run(driver: &Driver, ending: &Ending) {
    let info = driver.handle().info();
    let outcome = match ending {
        Ending::Completed => RunOutcome::Completed(payload(0)),
        Ending::Cancelled(reason) => RunOutcome::Cancelled(reason.clone()),
    };
    driver
        .engine
        .complete_run(&driver.workflow_id, info.run_id, outcome)
        .await
        .unwrap();
}

/// The first run: returns what the code saw and the history it wrote.
async fn first_run(
    engine: &Engine,
    program: &[Step],
    pokes: Vec<Poke>,
    cancel_at: Vec<usize>,
) -> (Vec<Obs>, Vec<Event>) {
    let run = engine
        .start_workflow(StartRequest {
            workflow_id: Some(WorkflowId::new("first").unwrap()),
            workflow_type: "Prop.Workflow".into(),
            input: payload(1),
            timeouts: Default::default(),
            id_reuse: Default::default(),
            search_attributes: Default::default(),
        })
        .await
        .unwrap();
    let mut driver = Driver {
        engine: engine.clone(),
        workflow_id: run.info().workflow_id.clone(),
        run: Run::Live(run),
        world: World::Random {
            pokes: pokes.into_iter(),
            sent: 0,
            ticks: 0,
            cancel_at,
            unblocked: 0,
        },
        scope: Scope::default(),
        trace: Vec::new(),
        activity_ok: HashMap::new(),
    };
    let ending = driver
        .run_program(program)
        .await
        .unwrap_or_else(|error| panic!("the first run broke: {error}"))
        .expect("the first run is live");
    end_run(&driver, &ending).await;
    let history = engine.history(&driver.workflow_id).await.unwrap();
    (driver.trace, events(&history))
}

/// Writes the first `len` events of `history` as workflow `workflow_id`'s.
async fn write_prefix(engine: &Engine, workflow_id: &WorkflowId, history: &[Event], len: usize) {
    let events = history[..len]
        .iter()
        .zip(1..)
        .map(|(event, seq)| RecordedEvent {
            envelope: Envelope {
                workflow_id: workflow_id.clone(),
                seq,
                recorded_at: Timestamp::from_millis(1_000_000),
            },
            event: event.clone(),
        })
        .collect();
    engine
        .store()
        .append(AppendRequest {
            workflow_id: workflow_id.clone(),
            expected_seq: 0,
            events,
        })
        .await
        .unwrap();
}

/// Recovers the run from the first `len` events of `history` and runs the
/// code again: what it saw and the history it ended with.
async fn replay_prefix(
    engine: &Engine,
    program: &[Step],
    history: &[Event],
    len: usize,
) -> Result<(Vec<Obs>, Vec<Event>), String> {
    let workflow_id = WorkflowId::new(format!("prefix-{len}")).unwrap();
    write_prefix(engine, &workflow_id, history, len).await;
    let complete = len == history.len();
    let (run, world) = if complete {
        let run = engine.load_readonly(&workflow_id, None).await.unwrap();
        (Run::ReadOnly(Box::new(run)), World::Still)
    } else {
        let run = engine
            .load_run(&workflow_id, None)
            .await
            .map_err(|error| format!("load: {error}"))?;
        let world = World::Follow {
            original: history.to_vec(),
            eager: len.is_multiple_of(2),
        };
        (Run::Live(run), world)
    };
    let mut driver = Driver {
        engine: engine.clone(),
        workflow_id: workflow_id.clone(),
        run,
        world,
        scope: Scope::default(),
        trace: Vec::new(),
        activity_ok: HashMap::new(),
    };
    match driver.run_program(program).await? {
        Some(ending) if !complete => {
            // What arrived after the code's last command and before its
            // ending arrives again.
            driver
                .follow()
                .await
                .map_err(|raise| format!("after the code ended: {raise:?}"))?;
            end_run(&driver, &ending).await;
        }
        Some(_) => {}
        None if complete => {}
        None => return Err("a loaded run stopped".into()),
    }
    let replayed = engine
        .history(&workflow_id)
        .await
        .map_err(|error| error.to_string())?;
    Ok((driver.trace, events(&replayed)))
}

/// Whether `history` holds an outcome for command `ordinal`.
fn has_outcome(history: &[Event], ordinal: u32) -> bool {
    history.iter().any(|event| match event {
        Event::ActivityCompleted { command, .. }
        | Event::ActivityFailed { command, .. }
        | Event::ActivityCancelled { command }
        | Event::TimerFired { command, .. }
        | Event::TimerCancelled { command, .. } => *command == ordinal,
        _ => false,
    })
}

/// One line per item, numbered from `first`.
fn listing<T: std::fmt::Debug>(items: &[T], first: usize) -> String {
    items
        .iter()
        .zip(first..)
        .map(|(item, n)| format!("  {n:>3} {item:?}\n"))
        .collect()
}

/// Checks the property for one program and world; `Err` describes the
/// first prefix that does not recover as the first run went.
async fn check(program: &[Step], pokes: Vec<Poke>, cancel_at: Vec<usize>) -> Result<(), String> {
    let engine = open_engine().await;
    let (trace, history) = first_run(&engine, program, pokes, cancel_at).await;
    let context = || {
        format!(
            "history of the first run (by seq):\n{}what its code saw:\n{}",
            listing(&history, 1),
            listing(&trace, 0)
        )
    };
    for len in 1..=history.len() {
        let (mut replayed_trace, replayed_history) = replay_prefix(&engine, program, &history, len)
            .await
            .map_err(|error| format!("prefix of {len} events: {error}\n{}", context()))?;
        // A read-only replay stops where a command it would start again has
        // no outcome (by design): up to there it must have seen the same.
        let mut expected = &trace[..];
        if let Some(Obs::Stopped(spec)) = replayed_trace.last().cloned() {
            let at = replayed_trace.len() - 1;
            match trace.get(at) {
                Some(Obs::Command(issued, Ok(ordinal)))
                    if *issued == spec && !has_outcome(&history, *ordinal) =>
                {
                    replayed_trace.pop();
                    expected = &trace[..at];
                }
                _ => {
                    return Err(format!(
                        "the read-only replay stopped at observation {at} ({spec}), where the first run saw {:?}\n{}",
                        trace.get(at),
                        context()
                    ));
                }
            }
        }
        if replayed_trace != expected {
            let at = replayed_trace
                .iter()
                .zip(expected)
                .position(|(a, b)| a != b)
                .unwrap_or(expected.len().min(replayed_trace.len()));
            return Err(format!(
                "prefix of {len} events: the code saw something else at observation {at}:\n  first run: {:?}\n  replay:    {:?}\n{}what the replay saw:\n{}",
                expected.get(at),
                replayed_trace.get(at),
                context(),
                listing(&replayed_trace, 0)
            ));
        }
        if replayed_history != history {
            let at = replayed_history
                .iter()
                .zip(&history)
                .position(|(a, b)| a != b)
                .unwrap_or(history.len().min(replayed_history.len()));
            return Err(format!(
                "prefix of {len} events: the history differs at seq {}:\n  first run: {:?}\n  replay:    {:?}\n{}history of the replay:\n{}",
                at + 1,
                history.get(at),
                replayed_history.get(at),
                context(),
                listing(&replayed_history, 1)
            ));
        }
    }
    engine.close().await;
    Ok(())
}

fn block_on<T>(future: impl Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

fn fut() -> impl Strategy<Value = Fut> {
    prop_oneof![
        (0u8..3, any::<bool>()).prop_map(|(name, ok)| Fut::Activity { name, ok }),
        Just(Fut::Timer),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    let leaf = prop_oneof![
        3 => (0u8..3, any::<bool>()).prop_map(|(name, ok)| Step::Activity { name, ok }),
        1 => Just(Step::Sleep),
        2 => (prop::collection::vec(fut(), 2..4), any::<bool>())
            .prop_map(|(futures, any)| Step::Futures { futures, any }),
        2 => (0u8..2, any::<bool>()).prop_map(|(name, timeout)| Step::Signal { name, timeout }),
        2 => (any::<bool>(), prop::option::of(any::<bool>()))
            .prop_map(|(timeout, handler)| Step::Update { timeout, handler }),
        1 => Just(Step::CancellationRequested),
    ];
    leaf.prop_recursive(3, 16, 3, |inner| {
        prop_oneof![
            3 => prop::collection::vec(inner.clone(), 1..4).prop_map(|body| Step::WithTimeout { body }),
            1 => (prop::collection::vec(inner.clone(), 1..4), prop::collection::vec(inner, 0..3))
                .prop_map(|(body, cleanup)| Step::Rescue { body, cleanup }),
        ]
    })
}

fn poke() -> impl Strategy<Value = Poke> {
    prop_oneof![
        6 => Just(Poke::Idle),
        3 => any::<Index>().prop_map(Poke::Fire),
        3 => any::<Index>().prop_map(Poke::Complete),
        1 => (0u8..2).prop_map(Poke::Signal),
        1 => Just(Poke::Update),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 96,
        ..ProptestConfig::default()
    })]

    /// Recovery from any prefix of a run's history replays what the run
    /// saw and, with the world acting as it did, writes the same history.
    #[test]
    fn every_prefix_of_a_history_recovers_the_run_it_recorded(
        program in prop::collection::vec(step(), 1..7),
        pokes in prop::collection::vec(poke(), 0..40),
        cancel_at in prop::collection::vec(1usize..60, 0..3),
    ) {
        let checked = block_on(check(&program, pokes, cancel_at));
        prop_assert!(checked.is_ok(), "{}", checked.unwrap_err());
    }
}
