//! Durable timers firing: recording `timer_fired`, then telling the run's
//! owner, or waking the run if it is evicted.

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::runtime::Handle;

use crate::event::Event;
use crate::faults::{self, Point};
use crate::store::{DEADLINE_COMMAND, StoreError, TimerEntry};
use crate::timers::TimerSink;

use super::{Engine, EngineError, Inner, Notice, Result};

impl Engine {
    /// Records `timer_fired` for a due timer (if it is still pending) and
    /// tells the run's owner.
    pub(super) async fn fire_timer(&self, entry: &TimerEntry) -> Result<()> {
        self.ensure_open()?;
        let cell = self.cell(&entry.workflow_id);
        let mut recorder = cell.recorder.lock().await;
        if self
            .inner
            .store
            .timer(&entry.workflow_id, &entry.timer_id)
            .await?
            .is_none()
        {
            return Ok(());
        }
        if entry.command == DEADLINE_COMMAND {
            return self.expire(&cell, recorder, entry).await;
        }
        let fired = Event::TimerFired {
            command: entry.command,
            timer_id: entry.timer_id.clone(),
        };
        cell.append(&mut recorder, vec![fired]).await?;
        // Durable; the owner is not told, an evicted run is not woken.
        faults::hit(Point::TimerFired);
        drop(recorder);
        match cell.owner() {
            Some(owner) => owner.notify(Notice::TimerFired(entry.command)),
            None => {
                let run = self.existing_run(&entry.workflow_id).await?;
                self.inner
                    .listener
                    .wake(&entry.workflow_id, &run.workflow_type);
            }
        }
        Ok(())
    }
}

/// How long a timer whose firing failed waits before it is tried again.
const TIMER_RETRY: Duration = Duration::from_secs(1);

pub(super) fn timer_sink(engine: Weak<Inner>, runtime: Handle) -> TimerSink {
    Arc::new(move |entry: TimerEntry| {
        let Some(inner) = engine.upgrade() else {
            return;
        };
        let engine = Engine { inner };
        runtime.spawn(async move {
            if let Err(error) = engine.fire_timer(&entry).await {
                if matches!(
                    error,
                    EngineError::Closed | EngineError::Store(StoreError::Closed)
                ) {
                    return;
                }
                engine.inner.listener.warning(&format!(
                    "timer {} of workflow {} failed to fire, retrying in {TIMER_RETRY:?}: {error}",
                    entry.timer_id, entry.workflow_id
                ));
                let retry_at = engine
                    .inner
                    .clock
                    .now()
                    .plus_millis(TIMER_RETRY.as_millis() as u64);
                engine.inner.wheel.arm(TimerEntry {
                    fire_at: retry_at,
                    ..entry
                });
            }
        });
    })
}
