//! The replay resolver: matches the commands a workflow's code issues, in
//! program order, against the commands recorded in its run's history.
//!
//! A command's correlation key is its ordinal in the run (0, 1, 2, ... in the
//! order the code issues commands) plus its [`CommandKind`]. The resolver loads
//! a run segment once ([`Resolver::from_segment`]) and then answers each
//! [`Resolver::resolve`] in O(1), consuming history incrementally, so replaying
//! a run costs time linear in its history. Events recorded while the run is
//! live are fed in with [`Resolver::apply`].
//!
//! Each command kind has its own small state machine (one file each) that
//! turns the command's events into an [`Outcome`]; an event a machine does not
//! expect is a non-determinism error, never a panic.

mod activity;
mod child;
mod marker;
mod patch;
mod timer;

use std::fmt;

use thiserror::Error;

use crate::event::{Event, ParentRef, RecordedEvent};
use crate::ids::{RunId, TimerId};
use crate::payload::Payload;
use crate::status::HistorySize;
use crate::time::Timestamp;

use activity::ActivityMachine;
use child::ChildMachine;
use marker::MarkerMachine;
use patch::PatchMemo;
use timer::TimerMachine;

pub use child::ChildStarted;
pub use patch::{PATCH_MARKER_PREFIX, PatchResolution, patch_spec};

/// The kinds of durable commands workflow code can issue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CommandKind {
    /// Run an activity.
    Activity,
    /// Wait on a durable timer.
    Timer,
    /// Record a value (`now`, side effects).
    Marker,
    /// Start a child workflow.
    ChildWorkflow,
    /// Send a signal to another workflow.
    SignalSend,
    /// Decide a `with_timeout` race.
    WithTimeout,
    /// Take the next signal of a name.
    Signal,
    /// Take the next update of a name.
    Update,
    /// Answer an update (named by the update's id).
    UpdateReply,
    /// Upsert search attributes (named by the attribute names, sorted,
    /// joined by commas: [`search_attributes_spec`]).
    SearchAttributes,
}

impl CommandKind {
    /// The kind's name.
    pub fn as_str(self) -> &'static str {
        match self {
            CommandKind::Activity => "activity",
            CommandKind::Timer => "timer",
            CommandKind::Marker => "marker",
            CommandKind::ChildWorkflow => "child_workflow",
            CommandKind::SignalSend => "signal_send",
            CommandKind::WithTimeout => "with_timeout",
            CommandKind::Signal => "signal",
            CommandKind::Update => "update",
            CommandKind::UpdateReply => "update_reply",
            CommandKind::SearchAttributes => "search_attributes",
        }
    }

    /// Parses a kind's name.
    pub fn parse(name: &str) -> Option<Self> {
        [
            CommandKind::Activity,
            CommandKind::Timer,
            CommandKind::Marker,
            CommandKind::ChildWorkflow,
            CommandKind::SignalSend,
            CommandKind::WithTimeout,
            CommandKind::Signal,
            CommandKind::Update,
            CommandKind::UpdateReply,
            CommandKind::SearchAttributes,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == name)
    }
}

/// What the code issued, or what history recorded, at one key: the kind and
/// the name that must match on replay (the activity type, the marker name, the
/// child's workflow type; empty for timers).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CommandSpec {
    /// The kind.
    pub kind: CommandKind,
    /// The name.
    pub name: String,
}

impl CommandSpec {
    /// A command of `kind` named `name`.
    pub fn new(kind: CommandKind, name: impl Into<String>) -> Self {
        Self {
            kind,
            name: name.into(),
        }
    }
}

impl fmt::Display for CommandSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.name.is_empty() {
            f.write_str(self.kind.as_str())
        } else {
            write!(f, "{} `{}`", self.kind.as_str(), self.name)
        }
    }
}

/// The recorded result of a command.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// An activity or child returned this value.
    Completed(Payload),
    /// An activity or child failed with this error.
    Failed(Payload),
    /// A timer fired.
    Fired,
    /// The command was cancelled.
    Cancelled,
    /// A marker's (or sent signal's) recorded value.
    Recorded(Payload),
    /// A `with_timeout` race was decided.
    Decided {
        /// Whether the timeout won.
        timed_out: bool,
    },
    /// A command without a value (an upsert of search attributes) was
    /// recorded.
    Applied,
    /// The command failed with an error the engine names: a child that was
    /// `terminated`, `timed_out` or never ran (`already_started`), a signal
    /// whose target was `not_found` or `not_running`; with the value that
    /// goes with it (a termination's reason, else nil).
    Error {
        /// The error's reason.
        reason: String,
        /// Its value.
        value: Payload,
    },
}

/// A recorded command still waiting for its outcome.
#[derive(Clone, Debug, PartialEq)]
pub enum PendingWork {
    /// An activity that was scheduled (and maybe attempted) but has no outcome:
    /// it must be dispatched again (activities are at-least-once).
    Activity {
        /// Its type.
        activity_type: String,
        /// Its recorded input.
        input: Payload,
        /// Attempts recorded so far (`activity_started` events of older
        /// histories; attempts are not recorded one by one any more).
        attempts: u32,
        /// When it was scheduled: its `schedule_to_close` deadline counts
        /// from here, across restarts.
        scheduled_at: Timestamp,
    },
    /// A started timer that has not fired: wait for it.
    Timer {
        /// The timer.
        timer_id: TimerId,
        /// When it fires.
        fire_at: Timestamp,
    },
    /// A started child workflow that has not finished.
    ChildWorkflow(Box<ChildStarted>),
}

/// The answer to one command.
#[derive(Clone, Debug, PartialEq)]
pub enum Resolution {
    /// History has the command and its outcome: return it without doing anything.
    Replayed {
        /// The command's ordinal.
        ordinal: u32,
        /// The recorded outcome.
        outcome: Outcome,
    },
    /// History has the command but no outcome yet: resume waiting for it.
    Pending {
        /// The command's ordinal.
        ordinal: u32,
        /// What it waits on.
        work: PendingWork,
    },
    /// History ends before this command: record it, then execute it live.
    Live {
        /// The ordinal to record it under.
        ordinal: u32,
    },
    /// Something recorded first ends the wait: the command raises instead.
    Interrupted(Interrupt),
}

/// What ends a wait before its command's outcome: a cancellation of the run
/// (delivered once, to the first command that meets it) or the timer of an
/// enclosing `with_timeout`.
#[derive(Clone, Debug, PartialEq)]
pub enum Interrupt {
    /// Cancellation was requested, for this reason.
    Cancelled(Payload),
    /// The timer of command `ordinal` fired first.
    TimedOut(u32),
}

/// The interrupts a command waits under: the timers of enclosing
/// `with_timeout`s (and of `await_signal`'s timeout), and whether a
/// cancellation request interrupts it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scope {
    /// Timer commands whose firing ends the wait.
    pub timers: Vec<u32>,
    /// Whether the command is shielded from cancellation (an update's reply).
    pub shielded: bool,
}

/// The first outcome among awaited commands, in history order.
#[derive(Clone, Debug, PartialEq)]
pub enum Settled {
    /// Command `ordinal` has the earliest outcome.
    Won {
        /// The winner.
        ordinal: u32,
        /// Its outcome.
        outcome: Outcome,
    },
    /// An interrupt was recorded before any outcome.
    Interrupted(Interrupt),
    /// Nothing yet.
    Waiting,
}

/// Which inbox a wait takes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Inbox {
    /// Signals (`signal_received`).
    Signal,
    /// Updates (`update_accepted`).
    Update,
}

/// A message waiting in a run's inbox.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    /// Seq of the event that brought it.
    pub seq: u64,
    /// The signal's or update's name.
    pub name: String,
    /// The workflow command that sent the signal, if workflow code did.
    pub sent_by: Option<String>,
    /// The update's id (empty for a signal).
    pub id: String,
    /// The payload or arguments.
    pub payload: Payload,
}

/// A pending command, for operators (`describe`).
#[derive(Clone, Debug, PartialEq)]
pub struct PendingCommand {
    /// Its ordinal.
    pub ordinal: u32,
    /// What it is.
    pub spec: CommandSpec,
    /// What it waits on.
    pub work: PendingWork,
}

/// Replay found workflow code and history disagreeing. The run cannot go on:
/// its code is not the code that wrote its history.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// At one key, history holds a different command than the code issued.
    #[error(
        "[AION-ND001] non-determinism in run {run_id} at command #{ordinal}: history recorded {expected}, the workflow code issued {found}"
    )]
    Mismatch {
        /// The run.
        run_id: RunId,
        /// The key's ordinal.
        ordinal: u32,
        /// What history holds.
        expected: CommandSpec,
        /// What the code issued.
        found: CommandSpec,
    },
    /// The code finished but history holds more commands.
    #[error(
        "[AION-ND002] non-determinism in run {run_id}: the workflow code finished after {issued} commands, but history recorded {recorded}; command #{issued} was {expected}"
    )]
    Unconsumed {
        /// The run.
        run_id: RunId,
        /// Commands the code issued.
        issued: u32,
        /// Commands history holds.
        recorded: u32,
        /// The first command the code did not issue.
        expected: CommandSpec,
    },
    /// An event does not fit the recorded state of its command (a damaged or
    /// foreign history).
    #[error(
        "[AION-ND003] unexpected {event} at seq {seq} of run {run_id}{}",
        .ordinal.map(|o| format!(" for command #{o}")).unwrap_or_default()
    )]
    UnexpectedEvent {
        /// The run.
        run_id: RunId,
        /// The event's seq.
        seq: u64,
        /// The event's kind.
        event: &'static str,
        /// The command it names, if any.
        ordinal: Option<u32>,
    },
}

impl ReplayError {
    /// The stable error code (see `docs/errors/`).
    pub fn code(&self) -> &'static str {
        match self {
            ReplayError::Mismatch { .. } => "AION-ND001",
            ReplayError::Unconsumed { .. } => "AION-ND002",
            ReplayError::UnexpectedEvent { .. } => "AION-ND003",
        }
    }
}

/// Whether a machine accepted an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transition {
    Applied,
    Unexpected,
}

#[derive(Clone, Debug, PartialEq)]
enum Machine {
    Activity(ActivityMachine),
    Timer(TimerMachine),
    Marker(MarkerMachine),
    Child(ChildMachine),
}

impl Machine {
    fn on_event(&mut self, event: &Event) -> Transition {
        match self {
            Machine::Activity(machine) => machine.on_event(event),
            Machine::Timer(machine) => machine.on_event(event),
            Machine::Marker(machine) => machine.on_event(event),
            Machine::Child(machine) => machine.on_event(event),
        }
    }

    fn outcome(&self) -> Option<Outcome> {
        match self {
            Machine::Activity(machine) => machine.outcome(),
            Machine::Timer(machine) => machine.outcome(),
            Machine::Marker(machine) => Some(machine.outcome.clone()),
            Machine::Child(machine) => machine.outcome(),
        }
    }

    fn pending(&self) -> Option<PendingWork> {
        match self {
            Machine::Activity(machine) => machine.pending(),
            Machine::Timer(machine) => machine.pending(),
            Machine::Marker(_) => None,
            Machine::Child(machine) => machine
                .started()
                .map(|child| PendingWork::ChildWorkflow(Box::new(child.clone()))),
        }
    }
}

/// The spec and the machine of an event that opens a command.
fn opened_by(recorded: &RecordedEvent) -> Option<(CommandSpec, Machine)> {
    let opened = match &recorded.event {
        Event::ActivityScheduled {
            activity_type,
            input,
            ..
        } => (
            CommandSpec::new(CommandKind::Activity, activity_type.clone()),
            Machine::Activity(ActivityMachine::scheduled(
                activity_type.clone(),
                input.clone(),
                recorded.envelope.recorded_at,
            )),
        ),
        Event::TimerStarted {
            timer_id, fire_at, ..
        } => (
            CommandSpec::new(CommandKind::Timer, ""),
            Machine::Timer(TimerMachine::Started {
                timer_id: timer_id.clone(),
                fire_at: *fire_at,
            }),
        ),
        Event::MarkerRecorded { name, value, .. } => (
            CommandSpec::new(CommandKind::Marker, name.clone()),
            Machine::Marker(MarkerMachine {
                outcome: Outcome::Recorded(value.clone()),
            }),
        ),
        Event::SignalSent {
            signal_name,
            payload,
            failed,
            ..
        } => (
            CommandSpec::new(CommandKind::SignalSend, signal_name.clone()),
            Machine::Marker(MarkerMachine {
                outcome: match failed {
                    None => Outcome::Recorded(payload.clone()),
                    Some(reason) => Outcome::Error {
                        reason: reason.clone(),
                        value: payload.clone(),
                    },
                },
            }),
        ),
        Event::WithTimeoutCompleted { timed_out, .. } => (
            CommandSpec::new(CommandKind::WithTimeout, ""),
            Machine::Marker(MarkerMachine {
                outcome: Outcome::Decided {
                    timed_out: *timed_out,
                },
            }),
        ),
        Event::ChildWorkflowStarted { workflow_type, .. } => (
            CommandSpec::new(CommandKind::ChildWorkflow, workflow_type.clone()),
            Machine::Child(ChildMachine::Started(Box::new(ChildStarted::of(
                &recorded.event,
            )?))),
        ),
        Event::SearchAttributesUpdated { attributes, .. } => (
            search_attributes_spec(attributes.keys()),
            Machine::Marker(MarkerMachine {
                outcome: Outcome::Applied,
            }),
        ),
        _ => return None,
    };
    Some(opened)
}

#[derive(Clone, Debug)]
struct Entry {
    spec: CommandSpec,
    machine: Machine,
    /// Seq of the event that opened the command.
    opened_seq: u64,
    /// Seq of the event that gave it its outcome.
    outcome_seq: Option<u64>,
    /// The run's history up to and including the event that opened it.
    size_at_open: HistorySize,
}

/// Signals and updates recorded for the run and not yet taken, and every
/// update's state by id.
#[derive(Clone, Debug, Default)]
struct Inboxes {
    signals: std::collections::BTreeMap<u64, Message>,
    updates: std::collections::BTreeMap<u64, Message>,
    /// Update id -> its reply, once recorded (`None` while it waits).
    update_replies: std::collections::HashMap<String, Option<Payload>>,
    /// Command ordinal -> the id of the update it took.
    delivered: std::collections::HashMap<u32, String>,
}

impl Inboxes {
    fn of(&mut self, inbox: Inbox) -> &mut std::collections::BTreeMap<u64, Message> {
        match inbox {
            Inbox::Signal => &mut self.signals,
            Inbox::Update => &mut self.updates,
        }
    }
}

/// Replay state of one run: the recorded commands and a cursor over them.
#[derive(Clone, Debug)]
pub struct Resolver {
    run_id: RunId,
    commands: Vec<Entry>,
    cursor: u32,
    inboxes: Inboxes,
    /// The first cancellation request (seq, reason), and whether workflow
    /// code has met it yet.
    cancel: Option<(u64, Payload)>,
    cancel_delivered: bool,
    /// Whether the run has deadlines (execution or run timeout) armed.
    deadlines: bool,
    /// The parent command that started the workflow, if it is a child.
    parent: Option<ParentRef>,
    patches: PatchMemo,
    /// The size of every event applied, and of the first one alone.
    size: HistorySize,
    started_size: HistorySize,
}

impl Resolver {
    /// A resolver for a run with no commands yet.
    pub fn new(run_id: RunId) -> Self {
        Self {
            run_id,
            commands: Vec::new(),
            cursor: 0,
            inboxes: Inboxes::default(),
            cancel: None,
            cancel_delivered: false,
            deadlines: false,
            parent: None,
            patches: PatchMemo::default(),
            size: HistorySize::default(),
            started_size: HistorySize::default(),
        }
    }

    /// Loads a run segment (its `workflow_started` and what follows).
    pub fn from_segment(run_id: RunId, segment: &[RecordedEvent]) -> Result<Self, ReplayError> {
        let mut resolver = Self::new(run_id);
        for recorded in segment {
            resolver.apply(recorded)?;
        }
        Ok(resolver)
    }

    /// The run this resolver replays.
    pub fn run_id(&self) -> RunId {
        self.run_id
    }

    /// Number of commands recorded in history.
    pub fn recorded(&self) -> u32 {
        self.commands.len() as u32
    }

    /// Number of commands the code has issued so far.
    pub fn issued(&self) -> u32 {
        self.cursor
    }

    /// Feeds one event of this run, recorded live or read from history.
    ///
    /// A command-opening event must open the next ordinal; an outcome event
    /// must name a recorded command whose machine accepts it; a signal or
    /// update taken must be one waiting in the inbox.
    pub fn apply(&mut self, recorded: &RecordedEvent) -> Result<(), ReplayError> {
        let event = &recorded.event;
        let seq = recorded.seq();
        self.size.add(event);
        if self.size.events == 1 {
            self.started_size = self.size;
        }
        let Some(ordinal) = event.command() else {
            self.receive(seq, event);
            return Ok(());
        };
        let run_id = self.run_id;
        let unexpected = || ReplayError::UnexpectedEvent {
            run_id,
            seq,
            event: event.kind().as_str(),
            ordinal: Some(ordinal),
        };
        let opened = match event {
            Event::SignalConsumed {
                signal_name,
                received_seq,
                ..
            } => self
                .take(Inbox::Signal, |message| {
                    message.seq == *received_seq && message.name == *signal_name
                })
                .map(|message| marker(CommandKind::Signal, signal_name, message.payload)),
            Event::UpdateDelivered {
                update_name,
                update_id,
                ..
            } => self
                .take(Inbox::Update, |message| {
                    message.id == *update_id && message.name == *update_name
                })
                .map(|message| {
                    self.inboxes.delivered.insert(ordinal, update_id.clone());
                    marker(CommandKind::Update, update_name, message.payload)
                }),
            Event::UpdateCompleted {
                update_id, reply, ..
            } => match self.inboxes.update_replies.get_mut(update_id) {
                Some(slot @ None) => {
                    *slot = Some(reply.clone());
                    Some(marker(CommandKind::UpdateReply, update_id, reply.clone()))
                }
                _ => None,
            },
            _ => match opened_by(recorded) {
                Some(opened) => Some(opened),
                None => {
                    let entry = self
                        .commands
                        .get_mut(ordinal as usize)
                        .ok_or_else(unexpected)?;
                    return match entry.machine.on_event(event) {
                        Transition::Applied => {
                            if entry.outcome_seq.is_none() && entry.machine.outcome().is_some() {
                                entry.outcome_seq = Some(seq);
                            }
                            Ok(())
                        }
                        Transition::Unexpected => Err(unexpected()),
                    };
                }
            },
        };
        let Some((spec, machine)) = opened else {
            return Err(unexpected());
        };
        if ordinal as usize != self.commands.len() {
            return Err(unexpected());
        }
        let outcome_seq = machine.outcome().is_some().then_some(seq);
        self.commands.push(Entry {
            spec,
            machine,
            opened_seq: seq,
            outcome_seq,
            size_at_open: self.size,
        });
        Ok(())
    }

    /// Records a message or request that is not a command's.
    fn receive(&mut self, seq: u64, event: &Event) {
        match event {
            Event::SignalReceived {
                signal_name,
                payload,
                sent_by,
            } => {
                self.inboxes.signals.insert(
                    seq,
                    Message {
                        seq,
                        sent_by: sent_by.clone(),
                        name: signal_name.clone(),
                        id: String::new(),
                        payload: payload.clone(),
                    },
                );
            }
            Event::UpdateAccepted {
                update_id,
                update_name,
                args,
            } => {
                self.inboxes.update_replies.insert(update_id.clone(), None);
                self.inboxes.updates.insert(
                    seq,
                    Message {
                        seq,
                        sent_by: None,
                        name: update_name.clone(),
                        id: update_id.clone(),
                        payload: args.clone(),
                    },
                );
            }
            Event::CancelRequested { reason } if self.cancel.is_none() => {
                self.cancel = Some((seq, reason.clone()));
            }
            Event::WorkflowStarted {
                execution_timeout_ms,
                run_timeout_ms,
                parent,
                ..
            } => {
                self.deadlines = execution_timeout_ms.is_some() || run_timeout_ms.is_some();
                self.parent = parent.clone();
            }
            _ => {}
        }
    }

    fn take(&mut self, inbox: Inbox, matches: impl Fn(&Message) -> bool) -> Option<Message> {
        let queue = self.inboxes.of(inbox);
        let seq = queue.values().find(|message| matches(message))?.seq;
        queue.remove(&seq)
    }

    /// The earliest message named `name` still waiting in `inbox`.
    pub fn next_message(&self, inbox: Inbox, name: &str) -> Option<&Message> {
        let queue = match inbox {
            Inbox::Signal => &self.inboxes.signals,
            Inbox::Update => &self.inboxes.updates,
        };
        queue.values().find(|message| message.name == name)
    }

    /// Signals recorded for the run and not yet taken, in the order they
    /// were recorded (a continue-as-new hands them to the next run).
    pub fn waiting_signals(&self) -> impl Iterator<Item = &Message> {
        self.inboxes.signals.values()
    }

    /// The size of the run's history as the code has seen it: up to the
    /// event that opened the last command it issued (its `workflow_started`
    /// before its first command). Events recorded after that (outcomes not
    /// yet taken, messages waiting) are left out, so a replay gives the
    /// code the same size at the same point, and code that decides on it
    /// (to continue as new) decides the same way.
    pub fn history_size(&self) -> HistorySize {
        match self.cursor.checked_sub(1) {
            Some(last) => self.commands[last as usize].size_at_open,
            None => self.started_size,
        }
    }

    /// The size of every event of the run applied so far.
    pub fn total_size(&self) -> HistorySize {
        self.size
    }

    /// Whether a signal or an update waits in an inbox, not yet taken.
    pub fn has_messages(&self) -> bool {
        !self.inboxes.signals.is_empty() || !self.inboxes.updates.is_empty()
    }

    /// Whether update `update_id` was accepted in this run, and its reply if
    /// it has one: `None` (unknown), `Some(None)` (waiting), `Some(Some(reply))`.
    pub fn update_reply(&self, update_id: &str) -> Option<Option<&Payload>> {
        self.inboxes
            .update_replies
            .get(update_id)
            .map(Option::as_ref)
    }

    /// The id of the update command `ordinal` took, if it took one.
    pub fn update_id_at(&self, ordinal: u32) -> Option<&str> {
        self.inboxes.delivered.get(&ordinal).map(String::as_str)
    }

    /// The parent command that started the workflow, if it is a child.
    pub fn parent(&self) -> Option<&ParentRef> {
        self.parent.as_ref()
    }

    /// The children started by the run that have not ended (as the run's
    /// history says), by command.
    pub fn open_children(&self) -> Vec<(u32, &ChildStarted)> {
        self.commands
            .iter()
            .enumerate()
            .filter_map(|(ordinal, entry)| match &entry.machine {
                Machine::Child(machine) => machine.started().map(|child| (ordinal as u32, child)),
                _ => None,
            })
            .collect()
    }

    /// Whether a child or an activity waits for its outcome: the run has
    /// work in flight that is not a timer's.
    pub fn has_work_in_flight(&self) -> bool {
        self.commands.iter().any(|entry| {
            matches!(
                entry.machine.pending(),
                Some(PendingWork::Activity { .. } | PendingWork::ChildWorkflow(_))
            )
        })
    }

    /// Whether a cancellation was requested.
    pub fn cancel_requested(&self) -> bool {
        self.cancel.is_some()
    }

    /// Whether workflow code has met the cancellation (it raised, or will at
    /// its next command).
    pub fn cancel_delivered(&self) -> bool {
        self.cancel_delivered
    }

    /// The earliest interrupt of `scope` recorded before seq `before`,
    /// without delivering it.
    pub fn interrupt(&self, scope: &Scope, before: u64) -> Option<Interrupt> {
        let cancel = match &self.cancel {
            Some((seq, reason)) if !scope.shielded && !self.cancel_delivered && *seq < before => {
                Some((*seq, Interrupt::Cancelled(reason.clone())))
            }
            _ => None,
        };
        let fired = scope.timers.iter().filter_map(|&ordinal| {
            let entry = self.commands.get(ordinal as usize)?;
            match (entry.machine.outcome(), entry.outcome_seq) {
                (Some(Outcome::Fired), Some(seq)) if seq < before => {
                    Some((seq, Interrupt::TimedOut(ordinal)))
                }
                _ => None,
            }
        });
        cancel
            .into_iter()
            .chain(fired)
            .min_by_key(|(seq, _)| *seq)
            .map(|(_, interrupt)| interrupt)
    }

    /// The interrupt a live command of `scope` meets now, if any; a
    /// cancellation found is delivered.
    pub fn deliver_live(&mut self, scope: &Scope) -> Option<Interrupt> {
        self.deliver(scope, u64::MAX)
    }

    /// Like [`Resolver::interrupt`], and a cancellation found is delivered:
    /// it interrupts only this command.
    fn deliver(&mut self, scope: &Scope, before: u64) -> Option<Interrupt> {
        let interrupt = self.interrupt(scope, before);
        if matches!(interrupt, Some(Interrupt::Cancelled(_))) {
            self.cancel_delivered = true;
        }
        interrupt
    }

    /// Resolves the next command the code issues (see [`Resolver::resolve_in`]),
    /// in the default scope: only a cancellation interrupts it.
    pub fn resolve(&mut self, issued: &CommandSpec) -> Result<Resolution, ReplayError> {
        self.resolve_in(issued, &Scope::default())
    }

    /// Resolves the next command the code issues, under `scope`.
    ///
    /// A recorded command is consumed here. A command history does not hold
    /// yet resolves [`Resolution::Live`] without being consumed: it takes its
    /// ordinal only when its opening event is recorded ([`Resolver::issued_live`]),
    /// so code that raises between the two (a bad argument, a failing
    /// side-effect function) leaves no trace, and may rescue and go on.
    ///
    /// An interrupt of `scope` recorded before the command was (or, for a
    /// command not recorded, at all) interrupts it without consuming it. One
    /// recorded after the command does not interrupt it, even before its
    /// outcome: live, the command was recorded first and its code went on
    /// (starting a future does not wait), so the interrupt was met later, by
    /// the wait on the command's outcome ([`Resolver::settle`]) or by a later
    /// command, and the replay meets it there too. Live and replayed runs
    /// meet the same interrupts, because a live command is never recorded
    /// after an interrupt it is exposed to (the engine checks under the lock
    /// that orders the history).
    pub fn resolve_in(
        &mut self,
        issued: &CommandSpec,
        scope: &Scope,
    ) -> Result<Resolution, ReplayError> {
        let ordinal = self.cursor;
        let Some(entry) = self.commands.get(ordinal as usize) else {
            return Ok(match self.deliver(scope, u64::MAX) {
                Some(interrupt) => Resolution::Interrupted(interrupt),
                None => Resolution::Live { ordinal },
            });
        };
        let opened_seq = entry.opened_seq;
        // Met live, a command exposed to an interrupt recorded before this
        // ordinal was opened raised without being recorded: the command
        // history holds here is later code's, not this one to compare.
        if let Some(interrupt) = self.deliver(scope, opened_seq) {
            return Ok(Resolution::Interrupted(interrupt));
        }
        let entry = &self.commands[ordinal as usize];
        if entry.spec != *issued {
            return Err(ReplayError::Mismatch {
                run_id: self.run_id,
                ordinal,
                expected: entry.spec.clone(),
                found: issued.clone(),
            });
        }
        let (outcome, pending) = (entry.machine.outcome(), entry.machine.pending());
        self.cursor += 1;
        Ok(match (outcome, pending) {
            (Some(outcome), _) => Resolution::Replayed { ordinal, outcome },
            (None, Some(work)) => Resolution::Pending { ordinal, work },
            (None, None) => Resolution::Live { ordinal },
        })
    }

    /// The first outcome among the issued commands `ordinals`, in history
    /// order, unless an interrupt of `scope` was recorded before it.
    pub fn settle(&mut self, ordinals: &[u32], scope: &Scope) -> Settled {
        let first = ordinals
            .iter()
            .filter(|&&ordinal| ordinal < self.cursor)
            .filter_map(|&ordinal| {
                let entry = self.commands.get(ordinal as usize)?;
                Some((entry.outcome_seq?, ordinal, entry.machine.outcome()?))
            })
            .min_by_key(|(seq, _, _)| *seq);
        match self.deliver(scope, first.as_ref().map_or(u64::MAX, |(seq, _, _)| *seq)) {
            Some(interrupt) => Settled::Interrupted(interrupt),
            None => match first {
                Some((_, ordinal, outcome)) => Settled::Won { ordinal, outcome },
                None => Settled::Waiting,
            },
        }
    }

    /// Whether `ordinal` is the live edge: the next command the code issues,
    /// with nothing recorded at or after it.
    pub fn is_live_edge(&self, ordinal: u32) -> bool {
        ordinal == self.cursor && ordinal == self.recorded()
    }

    /// Consumes live command `ordinal` once its opening event is recorded
    /// (and applied): the code has issued it.
    ///
    /// Returns `false`, changing nothing, unless `ordinal` is the command
    /// just recorded at the live edge.
    pub fn issued_live(&mut self, ordinal: u32) -> bool {
        if ordinal == self.cursor && ordinal + 1 == self.recorded() {
            self.cursor += 1;
            true
        } else {
            false
        }
    }

    /// What recorded command `ordinal` still waits on, if it has no outcome.
    pub fn pending_at(&self, ordinal: u32) -> Option<PendingWork> {
        self.commands
            .get(ordinal as usize)
            .and_then(|entry| entry.machine.pending())
    }

    /// The recorded outcome of command `ordinal`, if it has one.
    pub fn outcome_at(&self, ordinal: u32) -> Option<Outcome> {
        self.commands
            .get(ordinal as usize)
            .and_then(|entry| entry.machine.outcome())
    }

    /// Checks, when the code has finished, that it issued every recorded command.
    pub fn finish(&self) -> Result<(), ReplayError> {
        match self.commands.get(self.cursor as usize) {
            None => Ok(()),
            Some(entry) => Err(ReplayError::Unconsumed {
                run_id: self.run_id,
                issued: self.cursor,
                recorded: self.recorded(),
                expected: entry.spec.clone(),
            }),
        }
    }

    /// Whether the run has timers in the wheel: a recorded timer still
    /// waiting to fire, or a deadline (execution or run timeout).
    pub fn may_have_timers(&self) -> bool {
        self.deadlines || self.has_pending_timer()
    }

    /// Whether a recorded timer still waits to fire.
    pub fn has_pending_timer(&self) -> bool {
        self.commands
            .iter()
            .any(|entry| matches!(entry.machine.pending(), Some(PendingWork::Timer { .. })))
    }

    /// Recorded commands without an outcome.
    pub fn pending(&self) -> Vec<PendingCommand> {
        self.pending_from(0)
    }

    /// Recorded commands from ordinal `from` on without an outcome.
    pub fn pending_from(&self, from: u32) -> Vec<PendingCommand> {
        self.commands
            .iter()
            .enumerate()
            .skip(from as usize)
            .filter_map(|(ordinal, entry)| {
                entry.machine.pending().map(|work| PendingCommand {
                    ordinal: ordinal as u32,
                    spec: entry.spec.clone(),
                    work,
                })
            })
            .collect()
    }
}

/// The spec of an upsert of search attributes: its names, sorted (as a
/// `BTreeMap` orders them, bytewise), joined by commas. Code that upserts
/// other names than history holds at that point is non-determinism.
pub fn search_attributes_spec<'a>(names: impl IntoIterator<Item = &'a String>) -> CommandSpec {
    let mut names: Vec<&str> = names.into_iter().map(String::as_str).collect();
    names.sort_unstable();
    CommandSpec::new(CommandKind::SearchAttributes, names.join(","))
}

/// A single-event command of `kind`, named `name`, with `value`.
fn marker(kind: CommandKind, name: &str, value: Payload) -> (CommandSpec, Machine) {
    (
        CommandSpec::new(kind, name),
        Machine::Marker(MarkerMachine {
            outcome: Outcome::Recorded(value),
        }),
    )
}

#[cfg(test)]
mod tests;
