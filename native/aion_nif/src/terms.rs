//! Term shapes of the boundary: what Elixir passes in, how answers look.

use aion::engine::{
    Blocked, Description, EngineError, Notice, RecoveryReport, RunInfo, RunnablePage, Taken,
    Terminal, UpdateState,
};
use aion::event::{Field, RecordedEvent, SearchAttribute};
use aion::ids::RunId;
use aion::payload::Payload;
use aion::replay::{
    CommandKind, Inbox, Interrupt, Outcome, PendingWork, Resolution, Scope, Settled,
};
use aion::status::{HistorySize, RunSummary, WorkflowStatus};
use aion::store::AttemptState;
use aion::time::Timestamp;
use aion::visibility::{
    AttributeCondition, AttributeOp, ListCursor, ListFilter, ListPage, SearchAttributes,
};
use rustler::types::atom::Atom;
use rustler::{Binary, Encoder, Env, NewBinary, NifMap, NifTaggedEnum, NifUnitEnum, Term};

pub mod atoms {
    rustler::atoms! {
        ok,
        error,
        nil,
        panic,
        running,
        aion,
        aion_warning,
        aion_wake,
        aion_fatal,
        aion_ended,
        timer_fired,
        resolved,
        inbox,
        cancel_requested,
        ended,
        interrupted,
        timed_out,
        won,
        waiting,
        accepted,
        replied,
        payload,
        nondeterminism,
        reason,
        code,
        message,
        blocked,
        next,
        replayed,
        pending,
        live,
        completed,
        failed,
        fired,
        cancelled,
        recorded,
        decided,
        activity,
        timer,
        child_workflow,
        started,
        sent,
        aion_error,
        undecodable,
        already,
        // map keys
        seq,
        recorded_at,
        type_ = "type",
        workflow_id,
        workflow_type,
        run_id,
        parent_run_id,
        input,
        status,
        started_at,
        closed_at,
        updated_at,
        history_length,
        runs,
        first_seq,
        last_seq,
        command,
        kind,
        name,
        activity_type,
        attempts,
        timer_id,
        fire_at,
        generation,
        timers_fired,
        timers_armed,
        timer_failures,
        rebuilt,
        broken,
        value,
        applied,
        search_attributes,
        workflows,
        time,
        reset_from,
    }
}

/// A reset's point: `:start`, `:last_completed_activity` or `{:seq, n}`.
#[derive(NifTaggedEnum)]
pub enum ResetToTerm {
    Start,
    LastCompletedActivity,
    Seq(u64),
}

impl From<ResetToTerm> for aion::engine::ResetTo {
    fn from(to: ResetToTerm) -> Self {
        match to {
            ResetToTerm::Start => Self::Start,
            ResetToTerm::LastCompletedActivity => Self::LastCompletedActivity,
            ResetToTerm::Seq(seq) => Self::Seq(seq),
        }
    }
}

/// `nil`, or `%{run_id: ..., seq: ...}`.
fn encode_reset_point<'a>(env: Env<'a>, point: Option<&aion::event::ResetPoint>) -> Term<'a> {
    match point {
        None => atoms::nil().encode(env),
        Some(point) => map(
            env,
            vec![
                (
                    atoms::run_id().encode(env),
                    point.run_id.to_string().encode(env),
                ),
                (atoms::seq().encode(env), point.seq.encode(env)),
            ],
        ),
    }
}

/// `:memory` or `{:sqlite, path}`.
#[derive(NifTaggedEnum)]
pub enum StoreSpec {
    Memory,
    Sqlite(String),
}

/// `:full` (fsync every commit) or `:normal`.
#[derive(NifUnitEnum)]
pub enum Durability {
    Full,
    Normal,
}

/// `%{store: ..., durability: ...}`.
#[derive(NifMap)]
pub struct OpenConfig {
    pub store: StoreSpec,
    pub durability: Durability,
}

/// The kind atom of a command.
#[derive(NifUnitEnum)]
pub enum CommandKindTerm {
    Activity,
    Timer,
    Marker,
    ChildWorkflow,
    SignalSend,
    WithTimeout,
    Signal,
    Update,
    UpdateReply,
    SearchAttributes,
}

impl From<CommandKindTerm> for CommandKind {
    fn from(kind: CommandKindTerm) -> Self {
        match kind {
            CommandKindTerm::Activity => CommandKind::Activity,
            CommandKindTerm::Timer => CommandKind::Timer,
            CommandKindTerm::Marker => CommandKind::Marker,
            CommandKindTerm::ChildWorkflow => CommandKind::ChildWorkflow,
            CommandKindTerm::SignalSend => CommandKind::SignalSend,
            CommandKindTerm::WithTimeout => CommandKind::WithTimeout,
            CommandKindTerm::Signal => CommandKind::Signal,
            CommandKindTerm::Update => CommandKind::Update,
            CommandKindTerm::UpdateReply => CommandKind::UpdateReply,
            CommandKindTerm::SearchAttributes => CommandKind::SearchAttributes,
        }
    }
}

/// What a workflow process records.
#[derive(NifTaggedEnum)]
pub enum RecordTerm<'a> {
    ActivityScheduled(u32, String, Binary<'a>),
    /// `{:activity_completed, ordinal, result, attempt, last_failure | nil}`
    ActivityCompleted(u32, Binary<'a>, u32, Option<Binary<'a>>),
    /// `{:activity_failed, ordinal, error, attempts}`
    ActivityFailed(u32, Binary<'a>, u32),
    TimerStarted(u32, u64),
    Marker(u32, String, Binary<'a>),
    UpdateCompleted(u32, String, Binary<'a>),
    SearchAttributes(u32, Vec<(String, AttributeTerm)>),
}

/// A search attribute's value: `{:text, binary}`, `{:int, integer}`,
/// `{:float, float}`, `{:bool, boolean}` or `{:time, microseconds}`.
#[derive(NifTaggedEnum)]
pub enum AttributeTerm {
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Time(i64),
}

impl From<AttributeTerm> for SearchAttribute {
    fn from(term: AttributeTerm) -> Self {
        match term {
            AttributeTerm::Text(text) => SearchAttribute::Text(text),
            AttributeTerm::Int(n) => SearchAttribute::Int(n),
            AttributeTerm::Float(x) => SearchAttribute::Float(x),
            AttributeTerm::Bool(b) => SearchAttribute::Bool(b),
            AttributeTerm::Time(micros) => SearchAttribute::Time(Timestamp::from_micros(micros)),
        }
    }
}

/// `[{name, value}]` as the host passes attributes.
pub fn attributes(terms: Vec<(String, AttributeTerm)>) -> SearchAttributes {
    terms
        .into_iter()
        .map(|(name, value)| (name, value.into()))
        .collect()
}

/// A status atom.
#[derive(NifUnitEnum)]
pub enum StatusTerm {
    Running,
    Completed,
    Failed,
    Cancelled,
    Terminated,
    TimedOut,
    ContinuedAsNew,
}

impl From<StatusTerm> for WorkflowStatus {
    fn from(status: StatusTerm) -> Self {
        match status {
            StatusTerm::Running => WorkflowStatus::Running,
            StatusTerm::Completed => WorkflowStatus::Completed,
            StatusTerm::Failed => WorkflowStatus::Failed,
            StatusTerm::Cancelled => WorkflowStatus::Cancelled,
            StatusTerm::Terminated => WorkflowStatus::Terminated,
            StatusTerm::TimedOut => WorkflowStatus::TimedOut,
            StatusTerm::ContinuedAsNew => WorkflowStatus::ContinuedAsNew,
        }
    }
}

/// A comparison: `{:eq, value}`, `{:gt, value}`, `{:ge, value}`,
/// `{:lt, value}`, `{:le, value}` or `{:between, low, high}`.
#[derive(NifTaggedEnum)]
pub enum OpTerm {
    Eq(AttributeTerm),
    Gt(AttributeTerm),
    Ge(AttributeTerm),
    Lt(AttributeTerm),
    Le(AttributeTerm),
    Between(AttributeTerm, AttributeTerm),
}

impl From<OpTerm> for AttributeOp {
    fn from(op: OpTerm) -> Self {
        match op {
            OpTerm::Eq(v) => AttributeOp::Eq(v.into()),
            OpTerm::Gt(v) => AttributeOp::Gt(v.into()),
            OpTerm::Ge(v) => AttributeOp::Ge(v.into()),
            OpTerm::Lt(v) => AttributeOp::Lt(v.into()),
            OpTerm::Le(v) => AttributeOp::Le(v.into()),
            OpTerm::Between(low, high) => AttributeOp::Between(low.into(), high.into()),
        }
    }
}

/// A listing's filter, checked by the host: `%{workflow_type: nil | type,
/// statuses: [atom], started_after: nil | micros, started_before: ...,
/// closed_after: ..., closed_before: ..., search: [{name, op}]}`.
#[derive(NifMap)]
pub struct ListFilterTerm {
    pub workflow_type: Option<String>,
    pub statuses: Vec<StatusTerm>,
    pub started_after: Option<i64>,
    pub started_before: Option<i64>,
    pub closed_after: Option<i64>,
    pub closed_before: Option<i64>,
    pub search: Vec<(String, OpTerm)>,
}

impl From<ListFilterTerm> for ListFilter {
    fn from(term: ListFilterTerm) -> Self {
        let at = |micros: Option<i64>| micros.map(Timestamp::from_micros);
        ListFilter {
            workflow_type: term.workflow_type,
            statuses: term.statuses.into_iter().map(Into::into).collect(),
            started_after: at(term.started_after),
            started_before: at(term.started_before),
            closed_after: at(term.closed_after),
            closed_before: at(term.closed_before),
            search: term
                .search
                .into_iter()
                .map(|(name, op)| AttributeCondition {
                    name,
                    op: op.into(),
                })
                .collect(),
        }
    }
}

/// A listing's position: `{started_at_micros, workflow_id}`.
pub type CursorTerm = (i64, String);

/// `%{workflows: [map], next: nil | {started_at_micros, workflow_id}}`;
/// each workflow as `describe` shows these keys.
pub fn encode_list_page<'a>(env: Env<'a>, page: &ListPage) -> Term<'a> {
    let workflows: Vec<Term> = page
        .rows
        .iter()
        .map(|row| {
            let summary = &row.summary;
            map(
                env,
                vec![
                    (
                        atoms::workflow_id().encode(env),
                        summary.workflow_id.as_str().encode(env),
                    ),
                    (
                        atoms::run_id().encode(env),
                        summary.run_id.to_string().encode(env),
                    ),
                    (
                        atoms::workflow_type().encode(env),
                        summary.workflow_type.encode(env),
                    ),
                    (atoms::status().encode(env), status(env, summary.status)),
                    (
                        atoms::started_at().encode(env),
                        time(summary.started_at).encode(env),
                    ),
                    (
                        atoms::closed_at().encode(env),
                        maybe_time(env, summary.closed_at),
                    ),
                    (
                        atoms::search_attributes().encode(env),
                        encode_attributes(env, &row.search_attributes),
                    ),
                ],
            )
        })
        .collect();
    let next = page.next.as_ref().map_or_else(
        || atoms::nil().encode(env),
        |ListCursor {
             started_at,
             workflow_id,
         }| (time(*started_at), workflow_id.as_str()).encode(env),
    );
    map(
        env,
        vec![
            (atoms::workflows().encode(env), workflows.encode(env)),
            (atoms::next().encode(env), next),
        ],
    )
}

/// `%{timers: [ordinal], shielded: bool}`: what interrupts a command.
#[derive(NifMap)]
pub struct ScopeTerm {
    pub timers: Vec<u32>,
    pub shielded: bool,
}

impl From<ScopeTerm> for Scope {
    fn from(scope: ScopeTerm) -> Self {
        Scope {
            timers: scope.timers,
            shielded: scope.shielded,
        }
    }
}

/// `:signal` or `:update`.
#[derive(NifUnitEnum)]
pub enum InboxTerm {
    Signal,
    Update,
}

impl From<InboxTerm> for Inbox {
    fn from(inbox: InboxTerm) -> Self {
        match inbox {
            InboxTerm::Signal => Inbox::Signal,
            InboxTerm::Update => Inbox::Update,
        }
    }
}

/// `%{run_id: ..., code: ..., message: ..., code_version: ...}`: why a run is blocked.
#[derive(NifMap)]
pub struct BlockedTerm {
    pub run_id: String,
    pub code: String,
    pub message: String,
    pub code_version: String,
}

/// How a workflow process ended.
#[derive(NifTaggedEnum)]
pub enum OutcomeTerm<'a> {
    Completed(Binary<'a>),
    Failed(Binary<'a>),
    Cancelled(Binary<'a>),
}

fn binary<'a>(env: Env<'a>, bytes: &[u8]) -> Term<'a> {
    NewBinary::from_slice(env, bytes).into()
}

/// A payload as raw ETF bytes (the Elixir side decodes it).
fn payload_bytes<'a>(env: Env<'a>, payload: &Payload) -> Term<'a> {
    binary(env, &payload.data)
}

/// `{:payload, bytes}`: Elixir decodes it. Terms are never built from
/// external term format here, since these encoders also run on Tokio threads
/// and OTP 25 cannot decode every term (maps of more than 32 keys) off a
/// scheduler.
fn tagged_payload<'a>(env: Env<'a>, payload: &Payload) -> Term<'a> {
    (atoms::payload(), payload_bytes(env, payload)).encode(env)
}

/// An activity's retry state: `{attempt, retry_at | nil, last_failure |
/// nil, heartbeat | nil}` (times in microseconds, payloads as ETF bytes).
pub fn encode_attempt<'a>(env: Env<'a>, state: &AttemptState) -> Term<'a> {
    (
        state.attempt,
        state.retry_at.map(time),
        state
            .last_failure
            .as_ref()
            .map(|failure| payload_bytes(env, failure)),
        state
            .heartbeat
            .as_ref()
            .map(|details| payload_bytes(env, details)),
    )
        .encode(env)
}

fn time(time: Timestamp) -> i64 {
    time.as_micros()
}

fn atom<'a>(env: Env<'a>, name: &str) -> Term<'a> {
    Atom::from_str(env, name).map_or_else(|_| name.encode(env), |atom| atom.encode(env))
}

fn map<'a>(env: Env<'a>, entries: Vec<(Term<'a>, Term<'a>)>) -> Term<'a> {
    let (keys, values): (Vec<_>, Vec<_>) = entries.into_iter().unzip();
    Term::map_from_term_arrays(env, &keys, &values).unwrap_or_else(|_| atoms::nil().encode(env))
}

fn status<'a>(env: Env<'a>, status: WorkflowStatus) -> Term<'a> {
    atom(env, status.as_str())
}

/// `{:error, {reason_atom, message, code | nil}}`.
pub fn encode_error<'a>(env: Env<'a>, error: &EngineError) -> Term<'a> {
    let code = error
        .code()
        .map_or_else(|| atoms::nil().encode(env), |code| code.encode(env));
    (
        atoms::error(),
        (atom(env, error.kind()), error.to_string(), code),
    )
        .encode(env)
}

fn encode_outcome<'a>(env: Env<'a>, outcome: &Outcome) -> Term<'a> {
    match outcome {
        Outcome::Completed(payload) => {
            (atoms::completed(), payload_bytes(env, payload)).encode(env)
        }
        Outcome::Failed(payload) => (atoms::failed(), payload_bytes(env, payload)).encode(env),
        Outcome::Fired => atoms::fired().encode(env),
        Outcome::Cancelled => atoms::cancelled().encode(env),
        Outcome::Recorded(payload) => (atoms::recorded(), payload_bytes(env, payload)).encode(env),
        Outcome::Decided { timed_out } => (atoms::decided(), *timed_out).encode(env),
        Outcome::Applied => atoms::applied().encode(env),
        Outcome::Error { reason, value } => (
            atoms::aion_error(),
            reason.as_str(),
            payload_bytes(env, value),
        )
            .encode(env),
    }
}

fn encode_work<'a>(env: Env<'a>, work: &PendingWork) -> Term<'a> {
    match work {
        PendingWork::Activity {
            activity_type,
            input,
            attempts,
            scheduled_at,
        } => (
            atoms::activity(),
            activity_type.as_str(),
            payload_bytes(env, input),
            *attempts,
            time(*scheduled_at),
        )
            .encode(env),
        PendingWork::Timer { fire_at, .. } => (atoms::timer(), time(*fire_at)).encode(env),
        PendingWork::ChildWorkflow(child) => {
            (atoms::child_workflow(), child.workflow_id.as_str()).encode(env)
        }
    }
}

/// What a run's owner hears: `{:timer_fired, n}`, `{:resolved, n}`,
/// `:inbox`, `:cancel_requested` or `:ended`.
pub fn encode_notice<'a>(env: Env<'a>, notice: &Notice) -> Term<'a> {
    match notice {
        Notice::TimerFired(ordinal) => (atoms::timer_fired(), *ordinal).encode(env),
        Notice::Resolved(ordinal) => (atoms::resolved(), *ordinal).encode(env),
        Notice::Inbox => atoms::inbox().encode(env),
        Notice::CancelRequested => atoms::cancel_requested().encode(env),
        Notice::Ended => atoms::ended().encode(env),
        _ => atoms::inbox().encode(env),
    }
}

/// `{:replayed, n, outcome}`, `{:pending, n, work}` or `{:live, n}`.
pub fn encode_resolution<'a>(env: Env<'a>, resolution: &Resolution) -> Term<'a> {
    match resolution {
        Resolution::Replayed { ordinal, outcome } => {
            (atoms::replayed(), *ordinal, encode_outcome(env, outcome)).encode(env)
        }
        Resolution::Pending { ordinal, work } => {
            (atoms::pending(), *ordinal, encode_work(env, work)).encode(env)
        }
        Resolution::Live { ordinal } => (atoms::live(), *ordinal).encode(env),
        Resolution::Interrupted(interrupt) => encode_interrupt(env, interrupt),
    }
}

/// `{:interrupted, :cancelled, reason_bytes}` or `{:interrupted, :timed_out, ordinal}`.
pub fn encode_interrupt<'a>(env: Env<'a>, interrupt: &Interrupt) -> Term<'a> {
    match interrupt {
        Interrupt::Cancelled(reason) => (
            atoms::interrupted(),
            atoms::cancelled(),
            payload_bytes(env, reason),
        )
            .encode(env),
        Interrupt::TimedOut(ordinal) => {
            (atoms::interrupted(), atoms::timed_out(), *ordinal).encode(env)
        }
    }
}

/// `{:won, n, outcome}`, an interrupt, or `:waiting`.
pub fn encode_settled<'a>(env: Env<'a>, settled: &Settled) -> Term<'a> {
    match settled {
        Settled::Won { ordinal, outcome } => {
            (atoms::won(), *ordinal, encode_outcome(env, outcome)).encode(env)
        }
        Settled::Interrupted(interrupt) => encode_interrupt(env, interrupt),
        Settled::Waiting => atoms::waiting().encode(env),
    }
}

/// `{:message, n, id, payload_bytes}`, an interrupt, or `:waiting`.
pub fn encode_taken<'a>(env: Env<'a>, taken: &Taken) -> Term<'a> {
    match taken {
        Taken::Message {
            ordinal,
            id,
            payload,
        } => (
            atoms::message(),
            *ordinal,
            id.as_str(),
            payload_bytes(env, payload),
        )
            .encode(env),
        Taken::Interrupted(interrupt) => encode_interrupt(env, interrupt),
        Taken::Waiting => atoms::waiting().encode(env),
    }
}

/// `:accepted` or `{:replied, reply_bytes}`.
pub fn encode_update_state<'a>(env: Env<'a>, state: &UpdateState) -> Term<'a> {
    match state {
        UpdateState::Accepted => atoms::accepted().encode(env),
        UpdateState::Replied(reply) => (atoms::replied(), payload_bytes(env, reply)).encode(env),
    }
}

/// `{status, value_bytes | nil, run_id}`.
pub fn encode_terminal<'a>(env: Env<'a>, terminal: &Terminal) -> Term<'a> {
    let value = terminal.value.as_ref().map_or_else(
        || atoms::nil().encode(env),
        |payload| payload_bytes(env, payload),
    );
    (
        status(env, terminal.status),
        value,
        terminal.run_id.to_string(),
    )
        .encode(env)
}

/// The identity of a loaded run, as a map.
pub fn encode_run_info<'a>(env: Env<'a>, info: &RunInfo, generation: u64) -> Term<'a> {
    map(
        env,
        vec![
            (
                atoms::workflow_id().encode(env),
                info.workflow_id.as_str().encode(env),
            ),
            (
                atoms::run_id().encode(env),
                info.run_id.to_string().encode(env),
            ),
            (
                atoms::workflow_type().encode(env),
                info.workflow_type.encode(env),
            ),
            (atoms::input().encode(env), payload_bytes(env, &info.input)),
            (
                atoms::started_at().encode(env),
                time(info.started_at).encode(env),
            ),
            (atoms::generation().encode(env), generation.encode(env)),
        ],
    )
}

/// A value as itself, but a time as `{:time, microseconds}` (the host
/// makes it a `DateTime`), so that it is not taken for an integer.
fn encode_attribute<'a>(env: Env<'a>, attribute: &SearchAttribute) -> Term<'a> {
    match attribute {
        SearchAttribute::Text(text) => text.encode(env),
        SearchAttribute::Int(n) => n.encode(env),
        SearchAttribute::Float(x) => x.encode(env),
        SearchAttribute::Bool(b) => b.encode(env),
        SearchAttribute::Time(t) => (atoms::time(), time(*t)).encode(env),
    }
}

/// `%{name => value}` (see [`encode_attribute`]).
fn encode_attributes<'a>(env: Env<'a>, attributes: &SearchAttributes) -> Term<'a> {
    map(
        env,
        attributes
            .iter()
            .map(|(name, value)| (name.encode(env), encode_attribute(env, value)))
            .collect(),
    )
}

fn encode_field<'a>(env: Env<'a>, field: &Field) -> Term<'a> {
    match field {
        Field::Text(text) => text.encode(env),
        Field::MaybeText(text) => {
            text.map_or_else(|| atoms::nil().encode(env), |text| text.encode(env))
        }
        Field::Unsigned(n) => n.encode(env),
        Field::MaybeUnsigned(n) => n.map_or_else(|| atoms::nil().encode(env), |n| n.encode(env)),
        Field::Bool(b) => b.encode(env),
        Field::Time(t) => time(*t).encode(env),
        Field::Payload(payload) => tagged_payload(env, payload),
        Field::Attributes(attributes) => encode_attributes(env, attributes),
        Field::Run(run) => run.map_or_else(
            || atoms::nil().encode(env),
            |run| run.to_string().encode(env),
        ),
    }
}

/// An event as a map: envelope keys, `type`, then its fields, payloads as
/// `{:payload, bytes}`.
pub fn encode_event<'a>(env: Env<'a>, recorded: &RecordedEvent) -> Term<'a> {
    let mut entries = vec![
        (atoms::seq().encode(env), recorded.envelope.seq.encode(env)),
        (
            atoms::recorded_at().encode(env),
            time(recorded.envelope.recorded_at).encode(env),
        ),
        (
            atoms::workflow_id().encode(env),
            recorded.envelope.workflow_id.as_str().encode(env),
        ),
        (
            atoms::type_().encode(env),
            atom(env, recorded.event.kind().as_str()),
        ),
    ];
    for (name, field) in recorded.event.fields() {
        entries.push((atom(env, name), encode_field(env, &field)));
    }
    map(env, entries)
}

fn maybe_time<'a>(env: Env<'a>, at: Option<Timestamp>) -> Term<'a> {
    at.map_or_else(|| atoms::nil().encode(env), |at| time(at).encode(env))
}

/// What `describe` answers.
/// One run of a workflow: `%{run_id, parent_run_id, workflow_type, status,
/// started_at, closed_at, first_seq, last_seq, reset_from}` (`reset_from`: nil, or
/// `%{run_id, seq}` for a run a reset started).
pub fn encode_run_summary<'a>(
    env: Env<'a>,
    run: &RunSummary,
    reset_from: Option<&aion::event::ResetPoint>,
) -> Term<'a> {
    map(
        env,
        vec![
            (
                atoms::run_id().encode(env),
                run.run_id.to_string().encode(env),
            ),
            (
                atoms::parent_run_id().encode(env),
                maybe_run(env, run.parent_run_id),
            ),
            (
                atoms::workflow_type().encode(env),
                run.workflow_type.encode(env),
            ),
            (atoms::status().encode(env), status(env, run.status)),
            (
                atoms::started_at().encode(env),
                time(run.started_at).encode(env),
            ),
            (
                atoms::closed_at().encode(env),
                maybe_time(env, run.closed_at),
            ),
            (atoms::first_seq().encode(env), run.first_seq.encode(env)),
            (atoms::last_seq().encode(env), run.last_seq.encode(env)),
            (
                atoms::reset_from().encode(env),
                encode_reset_point(env, reset_from),
            ),
        ],
    )
}

/// `%{events: n, bytes: b}`.
pub fn encode_history_size<'a>(env: Env<'a>, size: HistorySize) -> Term<'a> {
    map(
        env,
        vec![
            (atom(env, "events"), size.events.encode(env)),
            (atom(env, "bytes"), size.bytes.encode(env)),
        ],
    )
}

fn maybe_run<'a>(env: Env<'a>, run: Option<RunId>) -> Term<'a> {
    run.map_or_else(
        || atoms::nil().encode(env),
        |run| run.to_string().encode(env),
    )
}

pub fn encode_description<'a>(env: Env<'a>, description: &Description) -> Term<'a> {
    let summary = &description.summary;
    let pending: Vec<Term> = description
        .pending
        .iter()
        .map(|command| {
            let mut entries = vec![
                (atoms::command().encode(env), command.ordinal.encode(env)),
                (
                    atoms::kind().encode(env),
                    atom(env, command.spec.kind.as_str()),
                ),
                (atoms::name().encode(env), command.spec.name.encode(env)),
            ];
            match &command.work {
                PendingWork::Activity { attempts, .. } => {
                    let state = description
                        .attempts
                        .iter()
                        .find(|attempt| attempt.command == command.ordinal)
                        .map(|attempt| &attempt.state);
                    let attempts = state.map_or(*attempts, |state| state.attempt.max(*attempts));
                    entries.push((atoms::attempts().encode(env), attempts.encode(env)));
                    if let Some(state) = state {
                        if let Some(failure) = &state.last_failure {
                            entries.push((atom(env, "last_failure"), tagged_payload(env, failure)));
                        }
                        if let Some(retry_at) = state.retry_at {
                            entries.push((atom(env, "retry_at"), time(retry_at).encode(env)));
                        }
                    }
                }
                PendingWork::Timer { timer_id, fire_at } => {
                    entries.push((atoms::timer_id().encode(env), timer_id.as_str().encode(env)));
                    entries.push((atoms::fire_at().encode(env), time(*fire_at).encode(env)));
                }
                PendingWork::ChildWorkflow(child) => {
                    entries.push((
                        atom(env, "child_workflow_id"),
                        child.workflow_id.as_str().encode(env),
                    ));
                    entries.push((
                        atom(env, "parent_close"),
                        atom(env, child.parent_close.as_str()),
                    ));
                }
            }
            map(env, entries)
        })
        .collect();
    map(
        env,
        vec![
            (
                atoms::blocked().encode(env),
                encode_blocked(env, description.blocked.as_ref()),
            ),
            (
                atoms::workflow_id().encode(env),
                summary.workflow_id.as_str().encode(env),
            ),
            (
                atoms::workflow_type().encode(env),
                summary.workflow_type.encode(env),
            ),
            (
                atoms::run_id().encode(env),
                summary.run_id.to_string().encode(env),
            ),
            (atoms::status().encode(env), status(env, summary.status)),
            (
                atoms::started_at().encode(env),
                time(summary.started_at).encode(env),
            ),
            (
                atoms::closed_at().encode(env),
                maybe_time(env, summary.closed_at),
            ),
            (
                atoms::updated_at().encode(env),
                time(summary.updated_at).encode(env),
            ),
            (
                atoms::history_length().encode(env),
                summary.head_seq.encode(env),
            ),
            (
                atoms::reset_from().encode(env),
                encode_reset_point(env, description.reset_from.as_ref()),
            ),
            (
                atoms::parent_run_id().encode(env),
                maybe_run(env, description.run.parent_run_id),
            ),
            (
                atoms::first_seq().encode(env),
                description.run.first_seq.encode(env),
            ),
            (
                atom(env, "history_size"),
                encode_history_size(env, description.history_size),
            ),
            (atoms::pending().encode(env), pending.encode(env)),
            (
                atoms::search_attributes().encode(env),
                encode_attributes(env, &description.search_attributes),
            ),
        ],
    )
}

/// `nil`, or `%{reason: :nondeterminism, code: ..., message: ..., code_version: ...}`.
fn encode_blocked<'a>(env: Env<'a>, blocked: Option<&Blocked>) -> Term<'a> {
    let Some(blocked) = blocked else {
        return atoms::nil().encode(env);
    };
    map(
        env,
        vec![
            (
                atoms::reason().encode(env),
                atoms::nondeterminism().encode(env),
            ),
            (atoms::code().encode(env), blocked.code.encode(env)),
            (atoms::message().encode(env), blocked.message.encode(env)),
            (atom(env, "code_version"), blocked.code_version.encode(env)),
        ],
    )
}

/// `%{runs: [{workflow_id, workflow_type, blocked}], next: id | nil}`.
pub fn encode_runnable<'a>(env: Env<'a>, page: &RunnablePage) -> Term<'a> {
    let runs: Vec<Term> = page
        .runs
        .iter()
        .map(|(summary, blocked)| {
            (
                summary.workflow_id.as_str(),
                summary.workflow_type.as_str(),
                encode_blocked(env, blocked.as_ref()),
            )
                .encode(env)
        })
        .collect();
    let next = page
        .next
        .as_ref()
        .map_or_else(|| atoms::nil().encode(env), |id| id.as_str().encode(env));
    map(
        env,
        vec![
            (atoms::runs().encode(env), runs.encode(env)),
            (atoms::next().encode(env), next),
        ],
    )
}

/// What `recover` answers.
pub fn encode_recovery<'a>(env: Env<'a>, report: &RecoveryReport) -> Term<'a> {
    let broken: Vec<(&str, &str)> = report
        .visibility
        .broken
        .iter()
        .map(|(id, reason)| (id.as_str(), reason.as_str()))
        .collect();
    map(
        env,
        vec![
            (
                atoms::timers_fired().encode(env),
                report.timers_fired.encode(env),
            ),
            (
                atoms::timers_armed().encode(env),
                report.timers_armed.encode(env),
            ),
            (
                atoms::timer_failures().encode(env),
                report.timer_failures.encode(env),
            ),
            (
                atoms::rebuilt().encode(env),
                report.visibility.rebuilt.encode(env),
            ),
            (atoms::broken().encode(env), broken.encode(env)),
        ],
    )
}
