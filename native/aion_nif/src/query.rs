//! Read-only runs, for queries answered by replay: their resource, the NIF
//! that loads one, and [`AnyRun`], which lets the run NIFs (`resolve`,
//! `record`, ...) take either kind of run, so that workflow code replays the
//! same way against both. A read-only run refuses, in the core, everything
//! that would record or wait.

use aion::engine::{
    ChildStart, EngineError, ReadOnlyRun, RecordCommand, Recorded, SignalSend, Taken,
};
use aion::ids::WorkflowId;
use aion::payload::Payload;
use aion::replay::{ChildStarted, CommandSpec, Inbox, PatchResolution, Resolution, Scope, Settled};
use aion::status::HistorySize;
use rustler::types::atom::Atom;
use rustler::{Decoder, Encoder, Env, NifResult, ResourceArc, Term};

use crate::reply::spawn_reply;
use crate::terms::{atoms, encode_run_info};
use crate::{EngineResource, RunResource, run_id, workflow_id};

/// A run loaded read-only, owned by the process answering a query.
pub struct ReadOnlyRunResource {
    run: ReadOnlyRun,
}

#[rustler::resource_impl]
impl rustler::Resource for ReadOnlyRunResource {}

/// A run NIF's argument: a loaded run, or a read-only one.
pub enum AnyRun {
    Live(ResourceArc<RunResource>),
    ReadOnly(ResourceArc<ReadOnlyRunResource>),
}

impl<'a> Decoder<'a> for AnyRun {
    fn decode(term: Term<'a>) -> NifResult<Self> {
        match term.decode::<ResourceArc<RunResource>>() {
            Ok(run) => Ok(AnyRun::Live(run)),
            Err(_) => term.decode().map(AnyRun::ReadOnly),
        }
    }
}

impl AnyRun {
    pub fn resolve(&self, issued: &CommandSpec, scope: &Scope) -> Result<Resolution, EngineError> {
        match self {
            AnyRun::Live(run) => run.run.resolve(issued, scope),
            AnyRun::ReadOnly(run) => run.run.resolve(issued, scope),
        }
    }

    pub fn resolve_patch(&self, change_id: &str) -> Result<PatchResolution, EngineError> {
        match self {
            AnyRun::Live(run) => run.run.resolve_patch(change_id),
            AnyRun::ReadOnly(run) => run.run.resolve_patch(change_id),
        }
    }

    pub fn settle(&self, ordinals: &[u32], scope: &Scope) -> Result<Settled, EngineError> {
        match self {
            AnyRun::Live(run) => run.run.settle(ordinals, scope),
            AnyRun::ReadOnly(run) => run.run.settle(ordinals, scope),
        }
    }

    pub fn history_size(&self) -> Result<HistorySize, EngineError> {
        match self {
            AnyRun::Live(run) => run.run.history_size(),
            AnyRun::ReadOnly(run) => Ok(run.run.history_size()),
        }
    }

    pub fn cancel_delivered(&self) -> Result<bool, EngineError> {
        match self {
            AnyRun::Live(run) => run.run.cancel_delivered(),
            AnyRun::ReadOnly(run) => Ok(run.run.cancel_delivered()),
        }
    }

    pub async fn take_message(
        &self,
        inbox: Inbox,
        name: &str,
        scope: &Scope,
    ) -> Result<Taken, EngineError> {
        match self {
            AnyRun::Live(run) => run.run.take_message(inbox, name, scope).await,
            AnyRun::ReadOnly(run) => run.run.take_message(inbox, name, scope),
        }
    }

    pub async fn cancel_pending(
        &self,
        from: u32,
        to: Option<u32>,
    ) -> Result<Vec<u32>, EngineError> {
        match self {
            AnyRun::Live(run) => run.run.cancel_pending(from, to).await,
            AnyRun::ReadOnly(run) => run.run.cancel_pending(from, to),
        }
    }

    pub fn finish(&self) -> Result<(), EngineError> {
        match self {
            AnyRun::Live(run) => run.run.finish(),
            AnyRun::ReadOnly(run) => run.run.finish(),
        }
    }

    pub async fn record(
        &self,
        command: RecordCommand,
        scope: Option<&Scope>,
    ) -> Result<Recorded, EngineError> {
        match self {
            AnyRun::Live(run) => run.run.record(command, scope).await,
            AnyRun::ReadOnly(run) => run.run.record(&command),
        }
    }

    pub fn evict(
        &self,
        ordinals: &[u32],
        scope: &Scope,
        message: bool,
    ) -> Result<bool, EngineError> {
        match self {
            AnyRun::Live(run) => run.run.evict(ordinals, scope, message),
            AnyRun::ReadOnly(run) => run.run.evict(),
        }
    }

    pub async fn start_child(
        &self,
        ordinal: u32,
        child: Option<ChildStarted>,
        scope: &Scope,
    ) -> Result<ChildStart, EngineError> {
        match (self, child) {
            (AnyRun::Live(run), Some(child)) => run.run.start_child(ordinal, child, scope).await,
            (AnyRun::Live(run), None) => run.run.ensure_child(ordinal).await,
            (AnyRun::ReadOnly(run), _) => run.run.start_child(ordinal),
        }
    }

    pub async fn cancel_child(&self, ordinal: u32) -> Result<(), EngineError> {
        match self {
            AnyRun::Live(run) => run.run.cancel_child(ordinal).await,
            // A query's replay only reads.
            AnyRun::ReadOnly(_) => Ok(()),
        }
    }

    pub async fn signal_workflow(
        &self,
        ordinal: u32,
        send: Option<(WorkflowId, String, Payload)>,
        scope: &Scope,
    ) -> Result<SignalSend, EngineError> {
        match (self, send) {
            (AnyRun::Live(run), Some((target, name, payload))) => {
                run.run
                    .signal_workflow(ordinal, target, name, payload, scope)
                    .await
            }
            (AnyRun::Live(run), None) => {
                run.run.ensure_signal(ordinal).await?;
                Ok(SignalSend::Sent)
            }
            // A query's replay only reads what was sent.
            (AnyRun::ReadOnly(_), None) => Ok(SignalSend::Sent),
            (AnyRun::ReadOnly(run), Some(_)) => run.run.signal_workflow(ordinal),
        }
    }

    pub fn timer_fired(&self, ordinal: u32) -> Result<bool, EngineError> {
        match self {
            AnyRun::Live(run) => run.run.timer_fired(ordinal),
            AnyRun::ReadOnly(run) => run.run.timer_fired(ordinal),
        }
    }
}

/// Loads a run of a workflow read-only (run `run`, or the latest when
/// nil); answers `{:ok, run, info, status}`.
#[rustler::nif]
fn load_readonly<'a>(
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
            engine.load_readonly(&workflow_id(&id)?, run).await
        },
        |env, run| {
            let info = encode_run_info(env, run.info(), 0);
            let status = Atom::from_str(env, run.status().as_str())
                .map_or_else(|_| atoms::nil().encode(env), |status| status.encode(env));
            (
                atoms::ok(),
                ResourceArc::new(ReadOnlyRunResource { run }),
                info,
                status,
            )
                .encode(env)
        },
    )
}
