//! History events. A workflow's history is an append-only list of
//! [`RecordedEvent`]s: an [`Envelope`] (`workflow_id`, dense `seq` from 1,
//! `recorded_at`) around an [`Event`]. Runs are segments of one history, each
//! opened by [`Event::WorkflowStarted`].
//!
//! Events that answer a workflow command carry the command's ordinal in the
//! run (`command`), which with the command kind forms its correlation key (see
//! [`crate::replay`]).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::{RunId, TimerId, WorkflowId};
use crate::payload::Payload;
use crate::time::Timestamp;

/// Where and when an event was recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// The workflow whose history holds the event.
    pub workflow_id: WorkflowId,
    /// Position in the history: dense, starting at 1.
    pub seq: u64,
    /// When the recorder wrote the event.
    pub recorded_at: Timestamp,
}

/// An event as stored: envelope plus body.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedEvent {
    /// Where and when.
    pub envelope: Envelope,
    /// What happened.
    pub event: Event,
}

impl RecordedEvent {
    /// The event's position in its history.
    pub fn seq(&self) -> u64 {
        self.envelope.seq
    }
}

/// A value of a search attribute (visibility metadata set by a workflow).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SearchAttribute {
    /// Free text or a keyword.
    Text(String),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A point in time.
    Time(Timestamp),
}

impl SearchAttribute {
    /// The value's kind.
    pub fn kind(&self) -> AttributeKind {
        match self {
            SearchAttribute::Text(_) => AttributeKind::Text,
            SearchAttribute::Int(_) => AttributeKind::Int,
            SearchAttribute::Float(_) => AttributeKind::Float,
            SearchAttribute::Bool(_) => AttributeKind::Bool,
            SearchAttribute::Time(_) => AttributeKind::Time,
        }
    }
}

/// The kind of a [`SearchAttribute`]. A store fixes each attribute name's
/// kind the first time the name is used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AttributeKind {
    /// [`SearchAttribute::Text`].
    Text,
    /// [`SearchAttribute::Int`].
    Int,
    /// [`SearchAttribute::Float`].
    Float,
    /// [`SearchAttribute::Bool`].
    Bool,
    /// [`SearchAttribute::Time`].
    Time,
}

impl AttributeKind {
    /// All kinds.
    pub const ALL: [AttributeKind; 5] = [
        AttributeKind::Text,
        AttributeKind::Int,
        AttributeKind::Float,
        AttributeKind::Bool,
        AttributeKind::Time,
    ];

    /// The stored name (as in the JSON form of [`SearchAttribute`]).
    pub fn as_str(self) -> &'static str {
        match self {
            AttributeKind::Text => "text",
            AttributeKind::Int => "int",
            AttributeKind::Float => "float",
            AttributeKind::Bool => "bool",
            AttributeKind::Time => "time",
        }
    }

    /// Parses [`AttributeKind::as_str`].
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

impl fmt::Display for AttributeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The command of a parent run that started a child workflow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParentRef {
    /// The parent workflow.
    pub workflow_id: WorkflowId,
    /// The parent's run that started the child.
    pub run_id: RunId,
    /// The command that started it.
    pub command: u32,
    /// What happens to the child when that run ends first (`None`: nothing
    /// recorded, as for the sender of a signal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_close: Option<ParentClose>,
}

impl ParentRef {
    /// The key a signal sent by this command carries (see
    /// [`Event::SignalReceived`]'s `sent_by`).
    pub fn key(&self) -> String {
        format!("{}/{}/{}", self.workflow_id, self.run_id, self.command)
    }
}

/// A command of a workflow that sent a signal (the same three coordinates
/// as a [`ParentRef`]).
pub type SenderRef = ParentRef;

/// Where a run started by a reset comes from: the event (`seq`, in the
/// history of the same workflow) of run `run_id` up to which the source's
/// history was copied into the new run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResetPoint {
    /// The run that was reset.
    pub run_id: RunId,
    /// The last event of that run copied into the new one.
    pub seq: u64,
}

/// What happens to a child workflow still running when its parent's run
/// ends (Temporal's parent close policy).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParentClose {
    /// The child is terminated.
    #[default]
    Terminate,
    /// The child is asked to cancel.
    RequestCancel,
    /// The child runs on.
    Abandon,
}

impl ParentClose {
    /// The policy's name.
    pub fn as_str(self) -> &'static str {
        match self {
            ParentClose::Terminate => "terminate",
            ParentClose::RequestCancel => "request_cancel",
            ParentClose::Abandon => "abandon",
        }
    }

    /// Parses [`ParentClose::as_str`].
    pub fn parse(name: &str) -> Option<Self> {
        [
            ParentClose::Terminate,
            ParentClose::RequestCancel,
            ParentClose::Abandon,
        ]
        .into_iter()
        .find(|policy| policy.as_str() == name)
    }
}

/// Everything that can happen in a workflow's history.
///
/// The JSON form produced by serde (internally tagged by `type`, snake_case)
/// is event format 1; see [`crate::codec`]. Changing a variant's shape means a
/// new format version, never an edit of this one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// Opens a run segment.
    WorkflowStarted {
        /// The new run.
        run_id: RunId,
        /// The run this one continues (continue-as-new), if any.
        parent_run_id: Option<RunId>,
        /// The workflow type the run executes.
        workflow_type: String,
        /// The workflow's input.
        input: Payload,
        /// The package version the run is pinned to, when packages are used.
        package_version: Option<String>,
        /// The workflow's execution timeout (all its runs), in milliseconds
        /// from this run's start: the run ends `timed_out` when it expires.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        execution_timeout_ms: Option<u64>,
        /// This run's timeout, in milliseconds from its start.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        run_timeout_ms: Option<u64>,
        /// The run's search attributes as it starts (visibility metadata;
        /// upserts change them later).
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        search_attributes: BTreeMap<String, SearchAttribute>,
        /// The parent workflow's command that started this workflow as its
        /// child, if one did; kept by every run the child continues as new.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parent: Option<ParentRef>,
        /// The run and event this run was reset from ([`ResetPoint`]), if
        /// it was started by a reset: the source's events up to that point
        /// were copied into this run.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reset_from: Option<ResetPoint>,
    },
    /// The run returned a result.
    WorkflowCompleted {
        /// The result.
        result: Payload,
    },
    /// The run failed (returned an error, raised, exited, or broke determinism).
    WorkflowFailed {
        /// The failure.
        error: Payload,
    },
    /// The run was cancelled.
    WorkflowCancelled {
        /// Why.
        reason: Payload,
    },
    /// The run was terminated from outside: no workflow code ran to end it.
    WorkflowTerminated {
        /// Why.
        reason: Payload,
    },
    /// The run exceeded its execution or run timeout.
    WorkflowTimedOut {
        /// The timeout that expired, in milliseconds.
        timeout_ms: u64,
    },
    /// The run ended by asking for a fresh run with new input.
    WorkflowContinuedAsNew {
        /// The successor run's id, fixed here so that starting it is idempotent.
        new_run_id: RunId,
        /// The successor's workflow type.
        workflow_type: String,
        /// The successor's input.
        input: Payload,
    },
    /// An activity was scheduled by command `command`.
    ActivityScheduled {
        /// Command ordinal in the run.
        command: u32,
        /// What runs (for Elixir, `Module.function`).
        activity_type: String,
        /// Its arguments.
        input: Payload,
    },
    /// An attempt of an activity began.
    ActivityStarted {
        /// Command ordinal in the run.
        command: u32,
        /// Attempt number, from 1.
        attempt: u32,
    },
    /// An activity returned a value.
    ActivityCompleted {
        /// Command ordinal in the run.
        command: u32,
        /// The value.
        result: Payload,
        /// The attempt that returned it, when it was not the first (the
        /// attempts before it failed and were retried; they have no events).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        attempts: Option<u32>,
        /// The failure of the attempt before, when there was one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        last_failure: Option<Payload>,
    },
    /// An activity failed for good.
    ActivityFailed {
        /// Command ordinal in the run.
        command: u32,
        /// The failure (of the last attempt).
        error: Payload,
        /// How many attempts were made, when more than one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        attempts: Option<u32>,
    },
    /// An activity was cancelled.
    ActivityCancelled {
        /// Command ordinal in the run.
        command: u32,
    },
    /// A durable timer was started.
    TimerStarted {
        /// Command ordinal in the run.
        command: u32,
        /// The timer.
        timer_id: TimerId,
        /// When it fires.
        fire_at: Timestamp,
    },
    /// A durable timer fired.
    TimerFired {
        /// Command ordinal in the run.
        command: u32,
        /// The timer.
        timer_id: TimerId,
    },
    /// A durable timer was cancelled before firing.
    TimerCancelled {
        /// Command ordinal in the run.
        command: u32,
        /// The timer.
        timer_id: TimerId,
    },
    /// A `with_timeout` block finished, in time or not.
    WithTimeoutCompleted {
        /// Command ordinal in the run.
        command: u32,
        /// Whether the timeout won.
        timed_out: bool,
    },
    /// A signal arrived.
    SignalReceived {
        /// The signal's name.
        signal_name: String,
        /// Its payload.
        payload: Payload,
        /// The sending workflow's command, when workflow code sent it
        /// ([`SenderRef::key`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sent_by: Option<String>,
    },
    /// Workflow code took signal `received_seq` (the `signal_received` at
    /// that seq) with its command `command`: signals are consumed in the
    /// order they were recorded, each at most once.
    SignalConsumed {
        /// Command ordinal in the run.
        command: u32,
        /// The signal's name.
        signal_name: String,
        /// Seq of the `signal_received` taken.
        received_seq: u64,
    },
    /// A client sent an update: a request the workflow answers.
    UpdateAccepted {
        /// The update's id (the caller's, for retries, or a fresh UUID).
        update_id: String,
        /// The update's name.
        update_name: String,
        /// Its arguments.
        args: Payload,
    },
    /// Workflow code took update `update_id` with its command `command`.
    UpdateDelivered {
        /// Command ordinal in the run.
        command: u32,
        /// The update's name.
        update_name: String,
        /// The update taken.
        update_id: String,
    },
    /// The workflow's handler answered update `update_id`.
    UpdateCompleted {
        /// Command ordinal in the run.
        command: u32,
        /// The update answered.
        update_id: String,
        /// The reply (`{:ok, value}` or `{:error, reason}`).
        reply: Payload,
    },
    /// A client asked the run to cancel.
    CancelRequested {
        /// Why.
        reason: Payload,
    },
    /// The workflow sent a signal to another workflow. Recorded before it
    /// is delivered; the target's `signal_received` names the sender
    /// (`sent_by`), so that a delivery repeated after a crash is recognised.
    SignalSent {
        /// Command ordinal in the run.
        command: u32,
        /// The receiver.
        target_workflow_id: WorkflowId,
        /// The signal's name.
        signal_name: String,
        /// Its payload.
        payload: Payload,
        /// Why it was not delivered (`not_found`, `not_running`): the target
        /// had no running run when it was sent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        failed: Option<String>,
    },
    /// A child workflow was recorded, to be started right after (under
    /// `run_id`, so that starting it again after a crash is idempotent).
    ChildWorkflowStarted {
        /// Command ordinal in the run.
        command: u32,
        /// The child's workflow id.
        child_workflow_id: WorkflowId,
        /// The child's type.
        workflow_type: String,
        /// The child's input.
        input: Payload,
        /// The child's first run.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        run_id: Option<RunId>,
        /// What happens to the child when this run ends first.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parent_close: Option<ParentClose>,
        /// The child's execution timeout, in milliseconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        execution_timeout_ms: Option<u64>,
        /// The child's run timeout, in milliseconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        run_timeout_ms: Option<u64>,
        /// The child's id reuse policy (`allow_duplicate`, ...).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id_reuse: Option<String>,
        /// The child's first search attributes.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        search_attributes: BTreeMap<String, SearchAttribute>,
    },
    /// A child workflow completed.
    ChildWorkflowCompleted {
        /// Command ordinal in the run.
        command: u32,
        /// The child.
        child_workflow_id: WorkflowId,
        /// Its result.
        result: Payload,
    },
    /// A child workflow failed, or ended without its code (`reason`).
    ChildWorkflowFailed {
        /// Command ordinal in the run.
        command: u32,
        /// The child.
        child_workflow_id: WorkflowId,
        /// Its failure (for a `reason`, the value that goes with it: a
        /// termination's reason, or nil).
        error: Payload,
        /// Set when the child did not fail by its code: `terminated`,
        /// `timed_out`, or `already_started` (the id was taken: the child
        /// never ran).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A child workflow was cancelled.
    ChildWorkflowCancelled {
        /// Command ordinal in the run.
        command: u32,
        /// The child.
        child_workflow_id: WorkflowId,
    },
    /// A value recorded for replay: a side effect's result, `now`, a random
    /// number, a patch decision.
    MarkerRecorded {
        /// Command ordinal in the run.
        command: u32,
        /// Which kind of marker (`now`, `side_effect`, ...).
        name: String,
        /// The recorded value.
        value: Payload,
    },
    /// The workflow changed its search attributes.
    SearchAttributesUpdated {
        /// Command ordinal in the run, when workflow code upserted them
        /// (`upsert_search_attributes`): a command like a marker, replayed
        /// without recording anything again.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        command: Option<u32>,
        /// The attributes set (replacing earlier values of the same names).
        attributes: BTreeMap<String, SearchAttribute>,
    },
    /// A schedule was created.
    ScheduleCreated {
        /// The schedule.
        schedule_id: String,
        /// When it triggers (cron text).
        spec: String,
        /// What it starts.
        workflow_type: String,
        /// With what input.
        input: Payload,
    },
    /// A schedule changed.
    ScheduleUpdated {
        /// The schedule.
        schedule_id: String,
        /// When it triggers (cron text).
        spec: String,
        /// With what input.
        input: Payload,
    },
    /// A schedule was paused.
    SchedulePaused {
        /// The schedule.
        schedule_id: String,
    },
    /// A paused schedule was resumed.
    ScheduleResumed {
        /// The schedule.
        schedule_id: String,
    },
    /// A schedule was deleted.
    ScheduleDeleted {
        /// The schedule.
        schedule_id: String,
    },
    /// A schedule started a workflow.
    ScheduleTriggered {
        /// The schedule.
        schedule_id: String,
        /// The instant the schedule was due.
        scheduled_for: Timestamp,
        /// The workflow it started.
        workflow_id: WorkflowId,
    },
}

/// The kind of an [`Event`], without its data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
#[non_exhaustive]
pub enum EventKind {
    WorkflowStarted,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowCancelled,
    WorkflowTerminated,
    WorkflowTimedOut,
    WorkflowContinuedAsNew,
    ActivityScheduled,
    ActivityStarted,
    ActivityCompleted,
    ActivityFailed,
    ActivityCancelled,
    TimerStarted,
    TimerFired,
    TimerCancelled,
    WithTimeoutCompleted,
    SignalReceived,
    SignalConsumed,
    UpdateAccepted,
    UpdateDelivered,
    UpdateCompleted,
    CancelRequested,
    SignalSent,
    ChildWorkflowStarted,
    ChildWorkflowCompleted,
    ChildWorkflowFailed,
    ChildWorkflowCancelled,
    MarkerRecorded,
    SearchAttributesUpdated,
    ScheduleCreated,
    ScheduleUpdated,
    SchedulePaused,
    ScheduleResumed,
    ScheduleDeleted,
    ScheduleTriggered,
}

impl EventKind {
    /// The snake_case name, as in the `type` tag of the JSON form.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::WorkflowStarted => "workflow_started",
            EventKind::WorkflowCompleted => "workflow_completed",
            EventKind::WorkflowFailed => "workflow_failed",
            EventKind::WorkflowCancelled => "workflow_cancelled",
            EventKind::WorkflowTerminated => "workflow_terminated",
            EventKind::WorkflowTimedOut => "workflow_timed_out",
            EventKind::WorkflowContinuedAsNew => "workflow_continued_as_new",
            EventKind::ActivityScheduled => "activity_scheduled",
            EventKind::ActivityStarted => "activity_started",
            EventKind::ActivityCompleted => "activity_completed",
            EventKind::ActivityFailed => "activity_failed",
            EventKind::ActivityCancelled => "activity_cancelled",
            EventKind::TimerStarted => "timer_started",
            EventKind::TimerFired => "timer_fired",
            EventKind::TimerCancelled => "timer_cancelled",
            EventKind::WithTimeoutCompleted => "with_timeout_completed",
            EventKind::SignalReceived => "signal_received",
            EventKind::SignalConsumed => "signal_consumed",
            EventKind::UpdateAccepted => "update_accepted",
            EventKind::UpdateDelivered => "update_delivered",
            EventKind::UpdateCompleted => "update_completed",
            EventKind::CancelRequested => "cancel_requested",
            EventKind::SignalSent => "signal_sent",
            EventKind::ChildWorkflowStarted => "child_workflow_started",
            EventKind::ChildWorkflowCompleted => "child_workflow_completed",
            EventKind::ChildWorkflowFailed => "child_workflow_failed",
            EventKind::ChildWorkflowCancelled => "child_workflow_cancelled",
            EventKind::MarkerRecorded => "marker_recorded",
            EventKind::SearchAttributesUpdated => "search_attributes_updated",
            EventKind::ScheduleCreated => "schedule_created",
            EventKind::ScheduleUpdated => "schedule_updated",
            EventKind::SchedulePaused => "schedule_paused",
            EventKind::ScheduleResumed => "schedule_resumed",
            EventKind::ScheduleDeleted => "schedule_deleted",
            EventKind::ScheduleTriggered => "schedule_triggered",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One field of an event, typed, for generic rendering (the NIF's maps, an
/// operator's timeline).
#[derive(Clone, Copy, Debug, PartialEq)]
#[allow(missing_docs)]
pub enum Field<'a> {
    Text(&'a str),
    MaybeText(Option<&'a str>),
    Unsigned(u64),
    MaybeUnsigned(Option<u64>),
    Bool(bool),
    Time(Timestamp),
    Payload(&'a Payload),
    Attributes(&'a BTreeMap<String, SearchAttribute>),
    Run(Option<RunId>),
}

impl Event {
    /// The event's kind.
    pub fn kind(&self) -> EventKind {
        match self {
            Event::WorkflowStarted { .. } => EventKind::WorkflowStarted,
            Event::WorkflowCompleted { .. } => EventKind::WorkflowCompleted,
            Event::WorkflowFailed { .. } => EventKind::WorkflowFailed,
            Event::WorkflowCancelled { .. } => EventKind::WorkflowCancelled,
            Event::WorkflowTerminated { .. } => EventKind::WorkflowTerminated,
            Event::WorkflowTimedOut { .. } => EventKind::WorkflowTimedOut,
            Event::WorkflowContinuedAsNew { .. } => EventKind::WorkflowContinuedAsNew,
            Event::ActivityScheduled { .. } => EventKind::ActivityScheduled,
            Event::ActivityStarted { .. } => EventKind::ActivityStarted,
            Event::ActivityCompleted { .. } => EventKind::ActivityCompleted,
            Event::ActivityFailed { .. } => EventKind::ActivityFailed,
            Event::ActivityCancelled { .. } => EventKind::ActivityCancelled,
            Event::TimerStarted { .. } => EventKind::TimerStarted,
            Event::TimerFired { .. } => EventKind::TimerFired,
            Event::TimerCancelled { .. } => EventKind::TimerCancelled,
            Event::WithTimeoutCompleted { .. } => EventKind::WithTimeoutCompleted,
            Event::SignalReceived { .. } => EventKind::SignalReceived,
            Event::SignalConsumed { .. } => EventKind::SignalConsumed,
            Event::UpdateAccepted { .. } => EventKind::UpdateAccepted,
            Event::UpdateDelivered { .. } => EventKind::UpdateDelivered,
            Event::UpdateCompleted { .. } => EventKind::UpdateCompleted,
            Event::CancelRequested { .. } => EventKind::CancelRequested,
            Event::SignalSent { .. } => EventKind::SignalSent,
            Event::ChildWorkflowStarted { .. } => EventKind::ChildWorkflowStarted,
            Event::ChildWorkflowCompleted { .. } => EventKind::ChildWorkflowCompleted,
            Event::ChildWorkflowFailed { .. } => EventKind::ChildWorkflowFailed,
            Event::ChildWorkflowCancelled { .. } => EventKind::ChildWorkflowCancelled,
            Event::MarkerRecorded { .. } => EventKind::MarkerRecorded,
            Event::SearchAttributesUpdated { .. } => EventKind::SearchAttributesUpdated,
            Event::ScheduleCreated { .. } => EventKind::ScheduleCreated,
            Event::ScheduleUpdated { .. } => EventKind::ScheduleUpdated,
            Event::SchedulePaused { .. } => EventKind::SchedulePaused,
            Event::ScheduleResumed { .. } => EventKind::ScheduleResumed,
            Event::ScheduleDeleted { .. } => EventKind::ScheduleDeleted,
            Event::ScheduleTriggered { .. } => EventKind::ScheduleTriggered,
        }
    }

    /// Where the run this event opens was reset from, for a
    /// `workflow_started` written by a reset.
    pub fn reset_from(&self) -> Option<ResetPoint> {
        match self {
            Event::WorkflowStarted { reset_from, .. } => *reset_from,
            _ => None,
        }
    }

    /// Whether the event ends its run segment.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Event::WorkflowCompleted { .. }
                | Event::WorkflowFailed { .. }
                | Event::WorkflowCancelled { .. }
                | Event::WorkflowTerminated { .. }
                | Event::WorkflowTimedOut { .. }
                | Event::WorkflowContinuedAsNew { .. }
        )
    }

    /// The size of the payloads the event carries (inputs, results,
    /// arguments, values), in bytes: what makes a history large.
    pub fn payload_bytes(&self) -> u64 {
        self.fields()
            .iter()
            .map(|(_, field)| match field {
                Field::Payload(payload) => payload.data.len() as u64,
                _ => 0,
            })
            .sum()
    }

    /// The ordinal of the command this event belongs to, if any.
    pub fn command(&self) -> Option<u32> {
        match self {
            Event::ActivityScheduled { command, .. }
            | Event::ActivityStarted { command, .. }
            | Event::ActivityCompleted { command, .. }
            | Event::ActivityFailed { command, .. }
            | Event::ActivityCancelled { command }
            | Event::TimerStarted { command, .. }
            | Event::TimerFired { command, .. }
            | Event::TimerCancelled { command, .. }
            | Event::WithTimeoutCompleted { command, .. }
            | Event::SignalSent { command, .. }
            | Event::SignalConsumed { command, .. }
            | Event::UpdateDelivered { command, .. }
            | Event::UpdateCompleted { command, .. }
            | Event::ChildWorkflowStarted { command, .. }
            | Event::ChildWorkflowCompleted { command, .. }
            | Event::ChildWorkflowFailed { command, .. }
            | Event::ChildWorkflowCancelled { command, .. }
            | Event::MarkerRecorded { command, .. } => Some(*command),
            Event::SearchAttributesUpdated { command, .. } => *command,
            _ => None,
        }
    }

    /// The event's data as named, typed fields, in declaration order.
    pub fn fields(&self) -> Vec<(&'static str, Field<'_>)> {
        use Field::*;
        let cmd = |c: &u32| ("command", Unsigned(u64::from(*c)));
        match self {
            Event::WorkflowStarted {
                run_id,
                parent_run_id,
                workflow_type,
                input,
                package_version,
                execution_timeout_ms,
                run_timeout_ms,
                search_attributes,
                parent,
                reset_from,
            } => {
                let mut fields = vec![
                    ("run_id", Run(Some(*run_id))),
                    ("parent_run_id", Run(*parent_run_id)),
                    ("workflow_type", Text(workflow_type)),
                    ("input", Payload(input)),
                    ("package_version", MaybeText(package_version.as_deref())),
                    ("execution_timeout_ms", MaybeUnsigned(*execution_timeout_ms)),
                    ("run_timeout_ms", MaybeUnsigned(*run_timeout_ms)),
                    ("search_attributes", Attributes(search_attributes)),
                ];
                if let Some(parent) = parent {
                    fields.push(("parent_workflow_id", Text(parent.workflow_id.as_str())));
                    fields.push(("parent_workflow_run_id", Run(Some(parent.run_id))));
                    fields.push(("parent_command", Unsigned(u64::from(parent.command))));
                }
                if let Some(point) = reset_from {
                    fields.push(("reset_from_run_id", Run(Some(point.run_id))));
                    fields.push(("reset_from_seq", Unsigned(point.seq)));
                }
                fields
            }
            Event::WorkflowCompleted { result } => vec![("result", Payload(result))],
            Event::WorkflowFailed { error } => vec![("error", Payload(error))],
            Event::WorkflowCancelled { reason } => vec![("reason", Payload(reason))],
            Event::WorkflowTerminated { reason } => vec![("reason", Payload(reason))],
            Event::WorkflowTimedOut { timeout_ms } => vec![("timeout_ms", Unsigned(*timeout_ms))],
            Event::WorkflowContinuedAsNew {
                new_run_id,
                workflow_type,
                input,
            } => vec![
                ("new_run_id", Run(Some(*new_run_id))),
                ("workflow_type", Text(workflow_type)),
                ("input", Payload(input)),
            ],
            Event::ActivityScheduled {
                command,
                activity_type,
                input,
            } => vec![
                cmd(command),
                ("activity_type", Text(activity_type)),
                ("input", Payload(input)),
            ],
            Event::ActivityStarted { command, attempt } => {
                vec![cmd(command), ("attempt", Unsigned(u64::from(*attempt)))]
            }
            Event::ActivityCompleted {
                command,
                result,
                attempts,
                last_failure,
            } => {
                let mut fields = vec![cmd(command), ("result", Payload(result))];
                if let Some(attempts) = attempts {
                    fields.push(("attempts", Unsigned(u64::from(*attempts))));
                }
                if let Some(failure) = last_failure {
                    fields.push(("last_failure", Payload(failure)));
                }
                fields
            }
            Event::ActivityFailed {
                command,
                error,
                attempts,
            } => {
                let mut fields = vec![cmd(command), ("error", Payload(error))];
                if let Some(attempts) = attempts {
                    fields.push(("attempts", Unsigned(u64::from(*attempts))));
                }
                fields
            }
            Event::ActivityCancelled { command } => vec![cmd(command)],
            Event::TimerStarted {
                command,
                timer_id,
                fire_at,
            } => vec![
                cmd(command),
                ("timer_id", Text(timer_id.as_str())),
                ("fire_at", Time(*fire_at)),
            ],
            Event::TimerFired { command, timer_id }
            | Event::TimerCancelled { command, timer_id } => {
                vec![cmd(command), ("timer_id", Text(timer_id.as_str()))]
            }
            Event::WithTimeoutCompleted { command, timed_out } => {
                vec![cmd(command), ("timed_out", Bool(*timed_out))]
            }
            Event::SignalReceived {
                signal_name,
                payload,
                sent_by,
            } => {
                let mut fields = vec![
                    ("signal_name", Text(signal_name)),
                    ("payload", Payload(payload)),
                ];
                if let Some(sent_by) = sent_by {
                    fields.push(("sent_by", Text(sent_by)));
                }
                fields
            }
            Event::SignalConsumed {
                command,
                signal_name,
                received_seq,
            } => vec![
                cmd(command),
                ("signal_name", Text(signal_name)),
                ("received_seq", Unsigned(*received_seq)),
            ],
            Event::UpdateAccepted {
                update_id,
                update_name,
                args,
            } => vec![
                ("update_id", Text(update_id)),
                ("update_name", Text(update_name)),
                ("args", Payload(args)),
            ],
            Event::UpdateDelivered {
                command,
                update_name,
                update_id,
            } => vec![
                cmd(command),
                ("update_name", Text(update_name)),
                ("update_id", Text(update_id)),
            ],
            Event::UpdateCompleted {
                command,
                update_id,
                reply,
            } => vec![
                cmd(command),
                ("update_id", Text(update_id)),
                ("reply", Payload(reply)),
            ],
            Event::CancelRequested { reason } => vec![("reason", Payload(reason))],
            Event::SignalSent {
                command,
                target_workflow_id,
                signal_name,
                payload,
                failed,
            } => {
                let mut fields = vec![
                    cmd(command),
                    ("target_workflow_id", Text(target_workflow_id.as_str())),
                    ("signal_name", Text(signal_name)),
                    ("payload", Payload(payload)),
                ];
                if let Some(failed) = failed {
                    fields.push(("failed", Text(failed)));
                }
                fields
            }
            Event::ChildWorkflowStarted {
                command,
                child_workflow_id,
                workflow_type,
                input,
                run_id,
                parent_close,
                execution_timeout_ms,
                run_timeout_ms,
                id_reuse,
                search_attributes,
            } => vec![
                cmd(command),
                ("child_workflow_id", Text(child_workflow_id.as_str())),
                ("workflow_type", Text(workflow_type)),
                ("input", Payload(input)),
                ("run_id", Run(*run_id)),
                (
                    "parent_close",
                    MaybeText(parent_close.map(ParentClose::as_str)),
                ),
                ("execution_timeout_ms", MaybeUnsigned(*execution_timeout_ms)),
                ("run_timeout_ms", MaybeUnsigned(*run_timeout_ms)),
                ("id_reuse", MaybeText(id_reuse.as_deref())),
                ("search_attributes", Attributes(search_attributes)),
            ],
            Event::ChildWorkflowCompleted {
                command,
                child_workflow_id,
                result,
            } => vec![
                cmd(command),
                ("child_workflow_id", Text(child_workflow_id.as_str())),
                ("result", Payload(result)),
            ],
            Event::ChildWorkflowFailed {
                command,
                child_workflow_id,
                error,
                reason,
            } => {
                let mut fields = vec![
                    cmd(command),
                    ("child_workflow_id", Text(child_workflow_id.as_str())),
                    ("error", Payload(error)),
                ];
                if let Some(reason) = reason {
                    fields.push(("reason", Text(reason)));
                }
                fields
            }
            Event::ChildWorkflowCancelled {
                command,
                child_workflow_id,
            } => vec![
                cmd(command),
                ("child_workflow_id", Text(child_workflow_id.as_str())),
            ],
            Event::MarkerRecorded {
                command,
                name,
                value,
            } => vec![
                cmd(command),
                ("name", Text(name)),
                ("value", Payload(value)),
            ],
            Event::SearchAttributesUpdated {
                command,
                attributes,
            } => vec![
                ("command", MaybeUnsigned(command.map(u64::from))),
                ("attributes", Attributes(attributes)),
            ],
            Event::ScheduleCreated {
                schedule_id,
                spec,
                workflow_type,
                input,
            } => vec![
                ("schedule_id", Text(schedule_id)),
                ("spec", Text(spec)),
                ("workflow_type", Text(workflow_type)),
                ("input", Payload(input)),
            ],
            Event::ScheduleUpdated {
                schedule_id,
                spec,
                input,
            } => vec![
                ("schedule_id", Text(schedule_id)),
                ("spec", Text(spec)),
                ("input", Payload(input)),
            ],
            Event::SchedulePaused { schedule_id }
            | Event::ScheduleResumed { schedule_id }
            | Event::ScheduleDeleted { schedule_id } => vec![("schedule_id", Text(schedule_id))],
            Event::ScheduleTriggered {
                schedule_id,
                scheduled_for,
                workflow_id,
            } => vec![
                ("schedule_id", Text(schedule_id)),
                ("scheduled_for", Time(*scheduled_for)),
                ("workflow_id", Text(workflow_id.as_str())),
            ],
        }
    }
}
