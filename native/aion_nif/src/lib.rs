//! The NIF boundary of Aion: term conversion, resources and messages. No
//! engine logic lives here; every function decodes its arguments, calls the
//! core crate, and encodes the answer.
//!
//! Nothing holds a scheduler: calls that touch the store spawn on a shared
//! Tokio runtime and return `:ok` at once; the answer arrives later as the
//! message `{ref, result}` to the calling process. Only `engine_open` and
//! `engine_close` are synchronous, on dirty I/O schedulers.

mod faults;
mod query;
mod reply;
mod terms;

use std::sync::{Arc, OnceLock};

use aion::engine::{
    Blocked, ChildStart, ContinueAsNew, Continued, Engine, EngineConfig, EngineError,
    EngineListener, IdReuse, Notice, RecordCommand, Recorded, RunHandle, RunOutcome, RunOwner,
    SignalSend, StartRequest, StoreConfig, Terminal, Timeouts,
};
use aion::event::ParentClose;
use aion::ids::{RunId, WorkflowId};
use aion::payload::Payload;
use aion::replay::{ChildStarted, CommandSpec, PatchResolution, Scope};
use aion::store::sqlite::SqliteOptions;
use aion::store::{AttemptState, StoreError};
use aion::time::Timestamp;
use aion::visibility::ListCursor;
use rustler::{Binary, Encoder, Env, LocalPid, NifResult, ResourceArc, Term};
use tokio::runtime::Runtime;

use query::AnyRun;
use reply::{ok_reply, send_from_anywhere, spawn_reply, sync_reply};
use terms::{
    AttributeTerm, BlockedTerm, CommandKindTerm, CursorTerm, Durability, InboxTerm, ListFilterTerm,
    OpenConfig, OutcomeTerm, RecordTerm, ResetToTerm, ScopeTerm, StoreSpec, atoms,
    encode_description, encode_event, encode_list_page, encode_recovery, encode_resolution,
    encode_runnable, encode_settled, encode_taken, encode_terminal, encode_update_state,
};

/// The runtime every engine of this VM shares.
fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(
                std::thread::available_parallelism()
                    .map_or(2, |n| n.get())
                    .clamp(2, 8),
            )
            .thread_name("aion-runtime")
            .enable_all()
            .build()
            .unwrap_or_else(|error| panic!("cannot start the Aion runtime: {error}"))
    })
}

/// An open engine, owned by an `Aion.Engine` process.
pub struct EngineResource {
    engine: Engine,
}

#[rustler::resource_impl]
impl rustler::Resource for EngineResource {}

/// One loaded run, owned by its workflow process.
pub struct RunResource {
    run: RunHandle,
}

#[rustler::resource_impl]
impl rustler::Resource for RunResource {}

/// Forwards the engine's background warnings to its owning process.
struct PidListener(LocalPid);

impl EngineListener for PidListener {
    fn warning(&self, message: &str) {
        let message = message.to_owned();
        send_from_anywhere(self.0, move |env| {
            (atoms::aion_warning(), message).encode(env)
        });
    }

    fn wake(&self, workflow_id: &WorkflowId, workflow_type: &str) {
        let id = workflow_id.to_string();
        let workflow_type = workflow_type.to_owned();
        send_from_anywhere(self.0, move |env| {
            (atoms::aion_wake(), id, workflow_type).encode(env)
        });
    }

    fn fatal(&self, message: &str) {
        let message = message.to_owned();
        send_from_anywhere(self.0, move |env| {
            (atoms::aion_fatal(), message).encode(env)
        });
    }

    fn ended(&self, workflow_id: &WorkflowId, terminal: &Terminal) {
        let id = workflow_id.to_string();
        let terminal = terminal.clone();
        send_from_anywhere(self.0, move |env| {
            (atoms::aion_ended(), id, encode_terminal(env, &terminal)).encode(env)
        });
    }
}

/// Tells a workflow process about its run, with messages
/// `{:aion, tag, event}` where `tag` names the process's activation, so that
/// neither user code nor a later activation can take one for another.
struct PidOwner {
    pid: LocalPid,
    tag: u64,
}

impl RunOwner for PidOwner {
    fn notify(&self, notice: Notice) {
        let tag = self.tag;
        send_from_anywhere(self.pid, move |env| {
            (atoms::aion(), tag, terms::encode_notice(env, &notice)).encode(env)
        });
    }
}

fn workflow_id(text: &str) -> Result<WorkflowId, EngineError> {
    Ok(WorkflowId::new(text)?)
}

fn run_id(text: &str) -> Result<RunId, EngineError> {
    Ok(RunId::parse(text)?)
}

fn payload(binary: Binary) -> Payload {
    Payload::etf(binary.as_slice())
}

/// A start's options as the host passes them:
/// `{execution_timeout_ms | nil, run_timeout_ms | nil, id_reuse,
/// search_attributes}`, with `id_reuse` one of [`IdReuse::as_str`] and
/// `search_attributes` a list of `{name, value}` ([`AttributeTerm`]).
type StartOptions = (
    Option<u64>,
    Option<u64>,
    String,
    Vec<(String, AttributeTerm)>,
);

/// The request without its workflow id (checked later, with the store's
/// errors); an unknown id reuse policy is a bad argument.
fn start_request(
    workflow_type: String,
    input: Payload,
    (execution_ms, run_ms, id_reuse, search_attributes): StartOptions,
) -> NifResult<StartRequest> {
    let id_reuse = IdReuse::parse(&id_reuse).ok_or(rustler::Error::BadArg)?;
    Ok(StartRequest {
        workflow_id: None,
        workflow_type,
        input,
        timeouts: Timeouts {
            execution_ms,
            run_ms,
        },
        id_reuse,
        search_attributes: terms::attributes(search_attributes),
    })
}

#[rustler::nif(schedule = "DirtyIo")]
fn engine_open<'a>(env: Env<'a>, config: OpenConfig, listener: LocalPid) -> Term<'a> {
    let store = match config.store {
        StoreSpec::Memory => StoreConfig::Memory,
        StoreSpec::Sqlite(path) => StoreConfig::Sqlite {
            path: path.into(),
            options: SqliteOptions {
                synchronous_full: matches!(config.durability, Durability::Full),
                ..SqliteOptions::default()
            },
        },
    };
    let mut engine_config = EngineConfig::new(store);
    faults::install();
    engine_config.writer.after_commit = faults::from_env();
    let opened = runtime().block_on(Engine::open(
        engine_config,
        Arc::new(PidListener(listener)),
        runtime().handle().clone(),
    ));
    sync_reply(env, opened, |engine| {
        (atoms::ok(), ResourceArc::new(EngineResource { engine })).encode(env)
    })
}

#[rustler::nif(schedule = "DirtyIo")]
fn engine_close(engine: ResourceArc<EngineResource>) -> rustler::Atom {
    runtime().block_on(engine.engine.close());
    atoms::ok()
}

#[rustler::nif]
fn recover<'a>(
    env: Env<'a>,
    engine: ResourceArc<EngineResource>,
    reference: Term<'a>,
) -> NifResult<Term<'a>> {
    let engine = engine.engine.clone();
    spawn_reply(
        env,
        reference,
        async move { engine.recover().await },
        |env, report| (atoms::ok(), encode_recovery(env, &report)).encode(env),
    )
}

#[rustler::nif]
fn start_workflow<'a>(
    env: Env<'a>,
    engine: ResourceArc<EngineResource>,
    id: Option<String>,
    workflow_type: String,
    input: Binary<'a>,
    options: StartOptions,
    reference: Term<'a>,
) -> NifResult<Term<'a>> {
    let engine = engine.engine.clone();
    let mut request = start_request(workflow_type, payload(input), options)?;
    spawn_reply(
        env,
        reference,
        async move {
            request.workflow_id = id.as_deref().map(workflow_id).transpose()?;
            engine.start_workflow(request).await
        },
        |env, run| {
            let info = run.info().clone();
            let resource = ResourceArc::new(RunResource { run });
            (
                atoms::ok(),
                resource,
                info.workflow_id.as_str(),
                info.run_id.to_string(),
            )
                .encode(env)
        },
    )
}

#[rustler::nif]
fn load_run<'a>(
    env: Env<'a>,
    engine: ResourceArc<EngineResource>,
    id: String,
    tag: u64,
    reference: Term<'a>,
) -> NifResult<Term<'a>> {
    let engine = engine.engine.clone();
    let owner: Arc<dyn RunOwner> = Arc::new(PidOwner {
        pid: env.pid(),
        tag,
    });
    spawn_reply(
        env,
        reference,
        async move {
            if faults::fail_this_load() {
                return Err(StoreError::Backend(
                    "AION_FAULT_FAIL_LOADS: this load fails, as asked".into(),
                )
                .into());
            }
            engine.load_run(&workflow_id(&id)?, Some(owner)).await
        },
        |env, run| {
            let info = terms::encode_run_info(env, run.info(), run.generation());
            (atoms::ok(), ResourceArc::new(RunResource { run }), info).encode(env)
        },
    )
}

#[rustler::nif]
fn run_info<'a>(env: Env<'a>, run: ResourceArc<RunResource>) -> Term<'a> {
    terms::encode_run_info(env, run.run.info(), run.run.generation())
}

#[rustler::nif]
fn attach<'a>(env: Env<'a>, run: ResourceArc<RunResource>, tag: u64) -> Term<'a> {
    ok_reply(
        env,
        run.run.attach(Arc::new(PidOwner {
            pid: env.pid(),
            tag,
        })),
    )
}

#[rustler::nif]
fn resolve<'a>(
    env: Env<'a>,
    run: AnyRun,
    kind: CommandKindTerm,
    name: String,
    scope: ScopeTerm,
) -> Term<'a> {
    let spec = CommandSpec::new(kind.into(), name);
    sync_reply(env, run.resolve(&spec, &scope.into()), |resolution| {
        encode_resolution(env, &resolution)
    })
}

/// `true` (patched: nothing to record), `false` (not patched) or
/// `{:live, n}` (record the patch marker under `n`, then patched).
#[rustler::nif]
fn resolve_patch<'a>(env: Env<'a>, run: AnyRun, change_id: String) -> Term<'a> {
    sync_reply(
        env,
        run.resolve_patch(&change_id),
        |resolution| match resolution {
            PatchResolution::Patched => true.encode(env),
            PatchResolution::NotPatched => false.encode(env),
            PatchResolution::Live { ordinal } => (atoms::live(), ordinal).encode(env),
        },
    )
}

#[rustler::nif]
fn record<'a>(
    env: Env<'a>,
    run: AnyRun,
    command: RecordTerm<'a>,
    scope: Option<ScopeTerm>,
    reference: Term<'a>,
) -> NifResult<Term<'a>> {
    let command = match command {
        RecordTerm::ActivityScheduled(ordinal, activity_type, input) => {
            RecordCommand::ActivityScheduled {
                ordinal,
                activity_type,
                input: payload(input),
            }
        }
        RecordTerm::ActivityCompleted(ordinal, result, attempt, last_failure) => {
            RecordCommand::ActivityCompleted {
                ordinal,
                result: payload(result),
                attempt,
                last_failure: last_failure.map(payload),
            }
        }
        RecordTerm::ActivityFailed(ordinal, error, attempts) => RecordCommand::ActivityFailed {
            ordinal,
            error: payload(error),
            attempts,
        },
        RecordTerm::TimerStarted(ordinal, duration_ms) => RecordCommand::TimerStarted {
            ordinal,
            duration_ms,
        },
        RecordTerm::Marker(ordinal, name, value) => RecordCommand::Marker {
            ordinal,
            name,
            value: payload(value),
        },
        RecordTerm::UpdateCompleted(ordinal, update_id, reply) => RecordCommand::UpdateCompleted {
            ordinal,
            update_id,
            reply: payload(reply),
        },
        RecordTerm::SearchAttributes(ordinal, attributes) => RecordCommand::SearchAttributes {
            ordinal,
            attributes: terms::attributes(attributes),
        },
    };
    let scope: Option<Scope> = scope.map(Into::into);
    spawn_reply(
        env,
        reference,
        async move { run.record(command, scope.as_ref()).await },
        |env, recorded| match recorded {
            Recorded::Done => atoms::ok().encode(env),
            Recorded::Interrupted(interrupt) => terms::encode_interrupt(env, &interrupt),
        },
    )
}

/// A child as workflow code starts it: `{id, workflow_type, input,
/// parent_close, options}` with `options` as `start_workflow`'s.
type ChildTerm<'a> = (String, String, Binary<'a>, String, StartOptions);

/// Starts the child of live command `ordinal` (`child`), or, with `nil`,
/// brings the replayed pending child command `ordinal` to where history
/// says it is. Answers `{:ok, {:started, run, child_id}}`, `{:ok, :running}`,
/// `{:ok, :resolved}` or an interrupt.
#[rustler::nif]
fn start_child<'a>(
    env: Env<'a>,
    run: AnyRun,
    ordinal: u32,
    child: Option<ChildTerm<'a>>,
    scope: ScopeTerm,
    reference: Term<'a>,
) -> NifResult<Term<'a>> {
    let child = child
        .map(|(id, workflow_type, input, parent_close, options)| {
            let parent_close = ParentClose::parse(&parent_close).ok_or(rustler::Error::BadArg)?;
            let request = start_request(workflow_type, payload(input), options)?;
            Ok((id, request, parent_close))
        })
        .transpose()?;
    let scope: Scope = scope.into();
    spawn_reply(
        env,
        reference,
        async move {
            let child = match child {
                Some((id, request, parent_close)) => Some(ChildStarted {
                    workflow_id: workflow_id(&id)?,
                    workflow_type: request.workflow_type,
                    input: request.input,
                    run_id: None,
                    parent_close,
                    execution_timeout_ms: request.timeouts.execution_ms,
                    run_timeout_ms: request.timeouts.run_ms,
                    id_reuse: Some(request.id_reuse.as_str().to_owned()),
                    search_attributes: request.search_attributes,
                }),
                None => None,
            };
            run.start_child(ordinal, child, &scope).await
        },
        |env, start| match start {
            ChildStart::Started(child) => {
                let id = child.info().workflow_id.to_string();
                let resource = ResourceArc::new(RunResource { run: child });
                (atoms::ok(), (atoms::started(), resource, id)).encode(env)
            }
            ChildStart::Running => (atoms::ok(), atoms::running()).encode(env),
            ChildStart::Resolved => (atoms::ok(), atoms::resolved()).encode(env),
            ChildStart::Interrupted(interrupt) => terms::encode_interrupt(env, &interrupt),
        },
    )
}

/// Asks the child of command `ordinal` to cancel (see
/// `RunHandle::cancel_child`); answers `:ok`.
#[rustler::nif]
fn cancel_child<'a>(
    env: Env<'a>,
    run: AnyRun,
    ordinal: u32,
    reference: Term<'a>,
) -> NifResult<Term<'a>> {
    spawn_reply(
        env,
        reference,
        async move { run.cancel_child(ordinal).await },
        |env, ()| atoms::ok().encode(env),
    )
}

/// Sends signal `{target, name, payload}` for live command `ordinal`, or,
/// with `nil`, delivers the replayed command `ordinal`'s signal again if a
/// crash may have lost it. Answers `{:ok, :sent}`, `{:ok, {:failed,
/// reason}}` or an interrupt.
#[rustler::nif]
fn signal_workflow<'a>(
    env: Env<'a>,
    run: AnyRun,
    ordinal: u32,
    send: Option<(String, String, Binary<'a>)>,
    scope: ScopeTerm,
    reference: Term<'a>,
) -> NifResult<Term<'a>> {
    let send = send.map(|(target, name, input)| (target, name, payload(input)));
    let scope: Scope = scope.into();
    spawn_reply(
        env,
        reference,
        async move {
            let send = match send {
                Some((target, name, payload)) => Some((workflow_id(&target)?, name, payload)),
                None => None,
            };
            run.signal_workflow(ordinal, send, &scope).await
        },
        |env, sent| match sent {
            SignalSend::Sent => (atoms::ok(), atoms::sent()).encode(env),
            SignalSend::Failed(reason) => (atoms::ok(), (atoms::failed(), reason)).encode(env),
            SignalSend::Interrupted(interrupt) => terms::encode_interrupt(env, &interrupt),
        },
    )
}

#[rustler::nif]
fn settle<'a>(env: Env<'a>, run: AnyRun, ordinals: Vec<u32>, scope: ScopeTerm) -> Term<'a> {
    sync_reply(env, run.settle(&ordinals, &scope.into()), |settled| {
        encode_settled(env, &settled)
    })
}

#[rustler::nif]
fn cancel_delivered<'a>(env: Env<'a>, run: AnyRun) -> Term<'a> {
    sync_reply(env, run.cancel_delivered(), |delivered| {
        delivered.encode(env)
    })
}

#[rustler::nif]
fn take_message<'a>(
    env: Env<'a>,
    run: AnyRun,
    inbox: InboxTerm,
    name: String,
    scope: ScopeTerm,
    reference: Term<'a>,
) -> NifResult<Term<'a>> {
    let scope: Scope = scope.into();
    spawn_reply(
        env,
        reference,
        async move { run.take_message(inbox.into(), &name, &scope).await },
        |env, taken| encode_taken(env, &taken),
    )
}

/// `{attempt, retry_at_us | nil, last_failure | nil, heartbeat | nil}`, as
/// [`terms::encode_attempt`] gives it.
type AttemptTerm<'a> = (u32, Option<i64>, Option<Binary<'a>>, Option<Binary<'a>>);

/// The retry state of activity `ordinal`: `{:ok, nil | attempt}`.
#[rustler::nif]
fn activity_attempt<'a>(
    env: Env<'a>,
    run: ResourceArc<RunResource>,
    ordinal: u32,
    reference: Term<'a>,
) -> NifResult<Term<'a>> {
    spawn_reply(
        env,
        reference,
        async move { run.run.activity_attempt(ordinal).await },
        |env, state| match state {
            Some(state) => (atoms::ok(), terms::encode_attempt(env, &state)).encode(env),
            None => (atoms::ok(), rustler::types::atom::nil()).encode(env),
        },
    )
}

/// Saves the retry state of activity `ordinal`; `:ok` once durable.
#[rustler::nif]
fn save_activity_attempt<'a>(
    env: Env<'a>,
    run: ResourceArc<RunResource>,
    ordinal: u32,
    attempt: AttemptTerm<'a>,
    reference: Term<'a>,
) -> NifResult<Term<'a>> {
    let (attempt, retry_at, last_failure, heartbeat) = attempt;
    let state = AttemptState {
        attempt,
        retry_at: retry_at.map(Timestamp::from_micros),
        last_failure: last_failure.map(payload),
        heartbeat: heartbeat.map(payload),
    };
    spawn_reply(
        env,
        reference,
        async move { run.run.save_activity_attempt(ordinal, state).await },
        |env, ()| atoms::ok().encode(env),
    )
}

#[rustler::nif]
fn cancel_pending<'a>(
    env: Env<'a>,
    run: AnyRun,
    from: u32,
    to: Option<u32>,
    reference: Term<'a>,
) -> NifResult<Term<'a>> {
    spawn_reply(
        env,
        reference,
        async move { run.cancel_pending(from, to).await },
        |env, activities| (atoms::ok(), activities).encode(env),
    )
}

#[rustler::nif]
fn signal<'a>(
    env: Env<'a>,
    engine: ResourceArc<EngineResource>,
    id: String,
    name: String,
    input: Binary<'a>,
    reference: Term<'a>,
) -> NifResult<Term<'a>> {
    let engine = engine.engine.clone();
    let input = payload(input);
    spawn_reply(
        env,
        reference,
        async move { engine.signal(&workflow_id(&id)?, &name, input).await },
        |env, ()| atoms::ok().encode(env),
    )
}

/// `start` is `{id | nil, workflow_type, input, options}` (options as in
/// `start_workflow`), `signal` `{name, payload}`.
#[rustler::nif]
fn signal_with_start<'a>(
    env: Env<'a>,
    engine: ResourceArc<EngineResource>,
    start: (Option<String>, String, Binary<'a>, StartOptions),
    signal: (String, Binary<'a>),
    reference: Term<'a>,
) -> NifResult<Term<'a>> {
    let (id, workflow_type, input, options) = start;
    let (name, signal) = signal;
    let engine = engine.engine.clone();
    let mut request = start_request(workflow_type, payload(input), options)?;
    let signal = payload(signal);
    spawn_reply(
        env,
        reference,
        async move {
            request.workflow_id = id.as_deref().map(workflow_id).transpose()?;
            engine.signal_with_start(request, &name, signal).await
        },
        |env, (workflow_id, run)| match run {
            Some(run) => {
                let run = ResourceArc::new(RunResource { run });
                (atoms::ok(), workflow_id.as_str(), run).encode(env)
            }
            None => (atoms::ok(), workflow_id.as_str(), atoms::nil()).encode(env),
        },
    )
}

#[rustler::nif]
/// `update` is `{name, args, update_id}`.
fn send_update<'a>(
    env: Env<'a>,
    engine: ResourceArc<EngineResource>,
    id: String,
    update: (String, Binary<'a>, String),
    reference: Term<'a>,
) -> NifResult<Term<'a>> {
    let (name, args, update_id) = update;
    let engine = engine.engine.clone();
    let args = payload(args);
    spawn_reply(
        env,
        reference,
        async move {
            let workflow_id = workflow_id(&id)?;
            engine.update(&workflow_id, &name, args, &update_id).await
        },
        |env, state| (atoms::ok(), encode_update_state(env, &state)).encode(env),
    )
}

#[rustler::nif]
fn update_result<'a>(
    env: Env<'a>,
    engine: ResourceArc<EngineResource>,
    id: String,
    update_id: String,
    reference: Term<'a>,
) -> NifResult<Term<'a>> {
    let engine = engine.engine.clone();
    spawn_reply(
        env,
        reference,
        async move { engine.update_result(&workflow_id(&id)?, &update_id).await },
        |env, state| (atoms::ok(), encode_update_state(env, &state)).encode(env),
    )
}

#[rustler::nif]
fn cancel<'a>(
    env: Env<'a>,
    engine: ResourceArc<EngineResource>,
    id: String,
    reason: Binary<'a>,
    reference: Term<'a>,
) -> NifResult<Term<'a>> {
    let engine = engine.engine.clone();
    let reason = payload(reason);
    spawn_reply(
        env,
        reference,
        async move { engine.cancel(&workflow_id(&id)?, reason).await },
        |env, ()| atoms::ok().encode(env),
    )
}

#[rustler::nif]
fn terminate<'a>(
    env: Env<'a>,
    engine: ResourceArc<EngineResource>,
    id: String,
    reason: Binary<'a>,
    reference: Term<'a>,
) -> NifResult<Term<'a>> {
    let engine = engine.engine.clone();
    let reason = payload(reason);
    spawn_reply(
        env,
        reference,
        async move { engine.terminate(&workflow_id(&id)?, reason).await },
        |env, terminal| (atoms::ok(), encode_terminal(env, &terminal)).encode(env),
    )
}

/// Answers `{:ok, new_run_id, workflow_type}`; `to` is `:start`,
/// `:last_completed_activity` or `{:seq, n}`; `run_id` nil (the latest run)
/// or the run to reset.
#[rustler::nif]
fn reset<'a>(
    env: Env<'a>,
    engine: ResourceArc<EngineResource>,
    id: String,
    source: Option<String>,
    to: ResetToTerm,
    terminate_running: bool,
    reference: Term<'a>,
) -> NifResult<Term<'a>> {
    let engine = engine.engine.clone();
    let to = to.into();
    spawn_reply(
        env,
        reference,
        async move {
            let request = aion::engine::ResetRequest {
                run_id: source.as_deref().map(run_id).transpose()?,
                to,
                terminate_running,
            };
            engine.reset(&workflow_id(&id)?, request).await
        },
        |env, done| {
            (
                atoms::ok(),
                done.run_id.to_string(),
                done.workflow_type.as_str(),
            )
                .encode(env)
        },
    )
}

#[rustler::nif]
fn evict<'a>(
    env: Env<'a>,
    run: AnyRun,
    ordinals: Vec<u32>,
    scope: ScopeTerm,
    message: bool,
) -> Term<'a> {
    sync_reply(
        env,
        run.evict(&ordinals, &scope.into(), message),
        |evicted| if evicted { atoms::ok() } else { atoms::fired() }.encode(env),
    )
}

#[rustler::nif]
fn timer_fired<'a>(env: Env<'a>, run: AnyRun, ordinal: u32) -> Term<'a> {
    sync_reply(env, run.timer_fired(ordinal), |fired| {
        (atoms::ok(), fired).encode(env)
    })
}

#[rustler::nif]
fn block<'a>(
    env: Env<'a>,
    engine: ResourceArc<EngineResource>,
    id: String,
    blocked: BlockedTerm,
) -> Term<'a> {
    let result = workflow_id(&id).and_then(|workflow_id| {
        engine.engine.block(
            &workflow_id,
            Blocked {
                run_id: run_id(&blocked.run_id)?,
                code: blocked.code,
                message: blocked.message,
                code_version: blocked.code_version,
            },
        );
        Ok(())
    });
    ok_reply(env, result)
}

#[rustler::nif]
fn runnable<'a>(
    env: Env<'a>,
    engine: ResourceArc<EngineResource>,
    after: Option<String>,
    limit: usize,
    reference: Term<'a>,
) -> NifResult<Term<'a>> {
    let engine = engine.engine.clone();
    spawn_reply(
        env,
        reference,
        async move {
            let after = after.as_deref().map(workflow_id).transpose()?;
            engine.runnable_page(after.as_ref(), limit.max(1)).await
        },
        |env, page| (atoms::ok(), encode_runnable(env, &page)).encode(env),
    )
}

#[rustler::nif]
fn finish<'a>(env: Env<'a>, run: AnyRun) -> Term<'a> {
    ok_reply(env, run.finish())
}

#[rustler::nif]
fn complete_run<'a>(
    env: Env<'a>,
    engine: ResourceArc<EngineResource>,
    id: String,
    run: String,
    outcome: OutcomeTerm<'a>,
    reference: Term<'a>,
) -> NifResult<Term<'a>> {
    let engine = engine.engine.clone();
    let outcome = match outcome {
        OutcomeTerm::Completed(result) => RunOutcome::Completed(payload(result)),
        OutcomeTerm::Failed(error) => RunOutcome::Failed(payload(error)),
        OutcomeTerm::Cancelled(reason) => RunOutcome::Cancelled(payload(reason)),
    };
    spawn_reply(
        env,
        reference,
        async move {
            engine
                .complete_run(&workflow_id(&id)?, run_id(&run)?, outcome)
                .await
        },
        |env, terminal| (atoms::ok(), encode_terminal(env, &terminal)).encode(env),
    )
}

#[rustler::nif]
fn release_run(engine: ResourceArc<EngineResource>, id: String, generation: u64) -> rustler::Atom {
    if let Ok(workflow_id) = WorkflowId::new(id) {
        engine.engine.release_run(&workflow_id, generation);
    }
    atoms::ok()
}

#[rustler::nif]
fn terminal<'a>(
    env: Env<'a>,
    engine: ResourceArc<EngineResource>,
    id: String,
    reference: Term<'a>,
) -> NifResult<Term<'a>> {
    let engine = engine.engine.clone();
    spawn_reply(
        env,
        reference,
        async move { engine.terminal(&workflow_id(&id)?).await },
        |env, terminal| match terminal {
            None => (atoms::ok(), atoms::running()).encode(env),
            Some(terminal) => (atoms::ok(), encode_terminal(env, &terminal)).encode(env),
        },
    )
}

#[rustler::nif]
fn history<'a>(
    env: Env<'a>,
    engine: ResourceArc<EngineResource>,
    id: String,
    reference: Term<'a>,
) -> NifResult<Term<'a>> {
    let engine = engine.engine.clone();
    spawn_reply(
        env,
        reference,
        async move { engine.history(&workflow_id(&id)?).await },
        |env, events| {
            let events: Vec<Term> = events
                .iter()
                .map(|event| encode_event(env, event))
                .collect();
            (atoms::ok(), events).encode(env)
        },
    )
}

/// Describes run `run` of a workflow (the latest when nil).
#[rustler::nif]
fn describe<'a>(
    env: Env<'a>,
    engine: ResourceArc<EngineResource>,
    id: String,
    run: Option<String>,
    reference: Term<'a>,
) -> NifResult<Term<'a>> {
    let engine = engine.engine.clone();
    spawn_reply(
        env,
        reference,
        async move {
            let run = run.as_deref().map(run_id).transpose()?;
            engine.describe(&workflow_id(&id)?, run).await
        },
        |env, description| (atoms::ok(), encode_description(env, &description)).encode(env),
    )
}

/// Answers `{:ok, [run]}`, oldest first (see [`terms::encode_run_summary`]).
#[rustler::nif]
fn runs<'a>(
    env: Env<'a>,
    engine: ResourceArc<EngineResource>,
    id: String,
    reference: Term<'a>,
) -> NifResult<Term<'a>> {
    let engine = engine.engine.clone();
    spawn_reply(
        env,
        reference,
        async move { engine.runs_with_origins(&workflow_id(&id)?).await },
        |env, runs| {
            let runs: Vec<Term> = runs
                .iter()
                .map(|(run, origin)| terms::encode_run_summary(env, run, origin.as_ref()))
                .collect();
            (atoms::ok(), runs).encode(env)
        },
    )
}

/// Ends run `run` with continue-as-new and starts its successor of
/// `workflow_type` with `input`. Answers `{:ok, {:started, successor,
/// new_run_id}}` (a handle to give a process), `{:ok, {:already,
/// new_run_id, workflow_type}}` (a retry: the successor was recorded
/// before), or `{:ok, {:ended, terminal}}` (the run ended another way first).
#[rustler::nif]
fn continue_as_new<'a>(
    env: Env<'a>,
    engine: ResourceArc<EngineResource>,
    id: String,
    run: String,
    workflow_type: String,
    input: Binary<'a>,
    reference: Term<'a>,
) -> NifResult<Term<'a>> {
    let engine = engine.engine.clone();
    let request = ContinueAsNew {
        workflow_type,
        input: payload(input),
    };
    spawn_reply(
        env,
        reference,
        async move {
            engine
                .continue_as_new(&workflow_id(&id)?, run_id(&run)?, request)
                .await
        },
        |env, continued| {
            let answer = match continued {
                Continued::Started(run) => {
                    let new_run_id = run.info().run_id.to_string();
                    (
                        atoms::started(),
                        ResourceArc::new(RunResource { run }),
                        new_run_id,
                    )
                        .encode(env)
                }
                Continued::Already {
                    new_run_id,
                    workflow_type,
                } => (atoms::already(), new_run_id.to_string(), workflow_type).encode(env),
                Continued::Ended(terminal) => {
                    (atoms::ended(), encode_terminal(env, &terminal)).encode(env)
                }
            };
            (atoms::ok(), answer).encode(env)
        },
    )
}

/// The size of the run's history as its code has seen it:
/// `%{events: n, bytes: b}`.
#[rustler::nif]
fn history_size<'a>(env: Env<'a>, run: AnyRun) -> Term<'a> {
    sync_reply(env, run.history_size(), |size| {
        terms::encode_history_size(env, size)
    })
}

/// Answers `{:ok, %{workflows: [...], next: cursor | nil}}`; `after` is a
/// cursor from a previous page, or nil.
#[rustler::nif]
fn list<'a>(
    env: Env<'a>,
    engine: ResourceArc<EngineResource>,
    filter: ListFilterTerm,
    after: Option<CursorTerm>,
    limit: usize,
    reference: Term<'a>,
) -> NifResult<Term<'a>> {
    let engine = engine.engine.clone();
    let filter = filter.into();
    spawn_reply(
        env,
        reference,
        async move {
            let after = after
                .map(|(started_at, id)| {
                    Ok::<_, EngineError>(ListCursor {
                        started_at: Timestamp::from_micros(started_at),
                        workflow_id: workflow_id(&id)?,
                    })
                })
                .transpose()?;
            engine.list(filter, after.as_ref(), limit).await
        },
        |env, page| (atoms::ok(), encode_list_page(env, &page)).encode(env),
    )
}

#[rustler::nif]
fn count<'a>(
    env: Env<'a>,
    engine: ResourceArc<EngineResource>,
    filter: ListFilterTerm,
    reference: Term<'a>,
) -> NifResult<Term<'a>> {
    let engine = engine.engine.clone();
    let filter = filter.into();
    spawn_reply(
        env,
        reference,
        async move { engine.count(filter).await },
        |env, count| (atoms::ok(), count).encode(env),
    )
}

rustler::init!("Elixir.Aion.Native");
