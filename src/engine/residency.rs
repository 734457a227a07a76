//! Residency: which runs need a process, and which may do without one.
//!
//! A run is *resident* while a host process owns its loaded replay state, and
//! *evicted* when that process ended while the run waited on a durable timer:
//! the store keeps everything, the timer stays armed, and its firing asks the
//! host (through [`super::EngineListener::wake`]) to make the run resident
//! again. A run evicted while it waits for a message (a signal, an update)
//! is *parked*: the message's arrival wakes it the same way. A run whose
//! replay hit non-determinism is *blocked*: it stays
//! running, nothing is recorded, and it is left alone until code that may
//! replay it cleanly is running.

use std::collections::{HashMap, HashSet};

use crate::ids::{RunId, WorkflowId};
use crate::replay::{PendingWork, Scope};
use crate::status::WorkflowSummary;
use crate::store::TimerEntry;

use super::{Engine, EngineError, Result, RunHandle, lock};

/// Why a running run is left without a process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blocked {
    /// The run.
    pub run_id: RunId,
    /// The stable error code (`AION-ND001`, ...).
    pub code: String,
    /// What went wrong, naming the command's key, what history holds and
    /// what the code issued.
    pub message: String,
    /// The host's identity of the code that failed to replay (for the BEAM,
    /// the module's checksum): the run is worth retrying once other code runs.
    pub code_version: String,
}

/// Runs waiting for a process, one page of them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunnablePage {
    /// Running workflows with no pending timer (a run with one sleeps until
    /// it fires), each with why it is blocked, if it is.
    pub runs: Vec<(WorkflowSummary, Option<Blocked>)>,
    /// Where the next page starts; `None` after the last.
    pub next: Option<WorkflowId>,
}

/// Blocked runs of one engine, in memory: a restarted engine tries them all
/// again, which is how a deploy of fixed code resumes them.
#[derive(Default)]
pub(super) struct BlockedRuns(HashMap<WorkflowId, Blocked>);

/// Runs evicted while they wait for a message, in memory: nothing but the
/// message's arrival (or a cancellation) gives them work, so the
/// reconciler's sweep leaves them alone. A restarted engine has none: its
/// recovery gives every running run a process, and those still waiting are
/// evicted again.
#[derive(Default)]
pub(super) struct ParkedRuns(HashSet<WorkflowId>);

impl Engine {
    /// Whether the run of `workflow_id` was evicted while it waits for a
    /// message, and has not been woken since.
    pub fn is_parked(&self, workflow_id: &WorkflowId) -> bool {
        lock(&self.inner.parked).0.contains(workflow_id)
    }

    /// The run of `workflow_id` has work, or a process, again.
    pub(super) fn unpark(&self, workflow_id: &WorkflowId) {
        let mut parked = lock(&self.inner.parked);
        if !parked.0.is_empty() {
            parked.0.remove(workflow_id);
        }
    }

    /// Marks the running run of `workflow_id` blocked (see [`Blocked`]).
    pub fn block(&self, workflow_id: &WorkflowId, blocked: Blocked) {
        lock(&self.inner.blocked)
            .0
            .insert(workflow_id.clone(), blocked);
    }

    /// Why the run of `workflow_id` is blocked, if it is.
    pub fn blocked(&self, workflow_id: &WorkflowId) -> Option<Blocked> {
        lock(&self.inner.blocked).0.get(workflow_id).cloned()
    }

    pub(super) fn unblock(&self, workflow_id: &WorkflowId) {
        lock(&self.inner.blocked).0.remove(workflow_id);
    }

    /// Running workflows that have no pending timer and are not parked (see
    /// [`ParkedRuns`]), ordered by workflow id, from `after` (exclusive), at
    /// most `limit` of them (fewer when some of the store's page are parked).
    pub async fn runnable_page(
        &self,
        after: Option<&WorkflowId>,
        limit: usize,
    ) -> Result<RunnablePage> {
        self.ensure_open()?;
        let page = self
            .inner
            .store
            .list_running_page(after, limit, true)
            .await?;
        for (workflow_id, error) in &page.broken {
            self.inner.listener.warning(&format!(
                "visibility row of {workflow_id} cannot be read, skipped until repaired: {error}"
            ));
        }
        let runs = page
            .rows
            .into_iter()
            .filter(|summary| !self.is_parked(&summary.workflow_id))
            .map(|summary| {
                let blocked = self.blocked(&summary.workflow_id);
                (summary, blocked)
            })
            .collect();
        Ok(RunnablePage {
            runs,
            next: page.next,
        })
    }
}

impl RunHandle {
    /// Ends this handle's residency while the run's code waits, with
    /// nothing to do until a timer fires, a child ends or a message arrives:
    /// on commands `ordinals` (durable timers, children) under `scope`, or
    /// on the message wait it registered (`message`). Its replay state is
    /// dropped, and the firing, the ending or the arrival wakes the run (see
    /// [`super::EngineListener::wake`]); a run waiting on no timer is parked
    /// meanwhile.
    ///
    /// Returns `false`, changing nothing, if what the code waits for has
    /// happened (its notice is on its way to the process, which must take
    /// it instead) or an activity of the run is in flight. The check and the
    /// release happen under the lock that feeds recorded events to the run,
    /// so nothing is lost between the two.
    pub fn evict(&self, ordinals: &[u32], scope: &Scope, message: bool) -> Result<bool> {
        let mut live = lock(&self.cell.live);
        match live.as_ref() {
            Some(run) if run.generation == self.generation => {
                let resolver = &run.resolver;
                let idle = if message {
                    run.waiting.is_some()
                } else {
                    ordinals
                        .iter()
                        .all(|&ordinal| resolver.outcome_at(ordinal).is_none())
                };
                let in_flight = resolver
                    .pending()
                    .iter()
                    .any(|command| matches!(command.work, PendingWork::Activity { .. }));
                if !idle || in_flight || resolver.interrupt(scope, u64::MAX).is_some() {
                    return Ok(false);
                }
                // A child's ending, like a message, arrives with a wake-up.
                let on_child = ordinals.iter().any(|&ordinal| {
                    matches!(
                        resolver.pending_at(ordinal),
                        Some(PendingWork::ChildWorkflow(_))
                    )
                });
                *live = None;
                if message || on_child {
                    // Under the live lock: an arrival that finds no owner
                    // (and so unparks and wakes the run) comes after this.
                    lock(&self.engine.inner.parked)
                        .0
                        .insert(self.info.workflow_id.clone());
                }
                Ok(true)
            }
            _ => Err(EngineError::Superseded {
                workflow_id: self.info.workflow_id.clone(),
                run_id: self.info.run_id,
            }),
        }
    }

    /// Whether timer `ordinal` has fired. A timer still pending is armed
    /// again (idempotently), so a waiter that suspects a lost wake-up only
    /// has to ask.
    pub fn timer_fired(&self, ordinal: u32) -> Result<bool> {
        let pending = self.with_live(|run| Ok(run.resolver.pending_at(ordinal)))?;
        match pending {
            Some(PendingWork::Timer { timer_id, fire_at }) => {
                self.engine.inner.wheel.arm(TimerEntry {
                    workflow_id: self.info.workflow_id.clone(),
                    timer_id,
                    command: ordinal,
                    fire_at,
                });
                Ok(false)
            }
            _ => Ok(true),
        }
    }
}
