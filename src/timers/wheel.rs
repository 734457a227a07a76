//! The task that fires the [`TimerQueue`]: it hands each due timer to a sink
//! (the engine, which records `timer_fired` and wakes the owning workflow).

use std::sync::{Arc, Mutex};

use tokio::runtime::Handle;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::ids::WorkflowId;
use crate::store::TimerEntry;
use crate::time::Clock;

use super::TimerQueue;

/// Receives due timers.
pub type TimerSink = Arc<dyn Fn(TimerEntry) + Send + Sync>;

/// The timer queue plus the task that fires it.
pub struct TimerWheel {
    queue: Mutex<TimerQueue>,
    wake: Notify,
    stop: Notify,
    clock: Arc<dyn Clock>,
}

impl TimerWheel {
    /// Starts the wheel's task on `runtime`; due timers go to `sink`.
    pub fn spawn(clock: Arc<dyn Clock>, sink: TimerSink, runtime: &Handle) -> (Arc<Self>, JoinHandle<()>) {
        let wheel = Arc::new(Self {
            queue: Mutex::new(TimerQueue::default()),
            wake: Notify::new(),
            stop: Notify::new(),
            clock,
        });
        let task = runtime.spawn(Arc::clone(&wheel).run(sink));
        (wheel, task)
    }

    /// Arms a timer (replacing one with the same key).
    pub fn arm(&self, entry: TimerEntry) {
        let earliest = {
            let mut queue = self.lock();
            let earlier = queue.next_deadline().is_none_or(|next| entry.fire_at < next);
            queue.arm(entry);
            earlier
        };
        if earliest {
            self.wake.notify_one();
        }
    }

    /// Disarms every timer of a workflow.
    pub fn disarm_workflow(&self, workflow_id: &WorkflowId) {
        self.lock().disarm_workflow(workflow_id);
    }

    /// Number of armed timers.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no timer is armed.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Stops the task; armed timers stay in the store for the next start.
    pub fn shutdown(&self) {
        self.stop.notify_one();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TimerQueue> {
        // The queue holds no invariant a panic could break half-way, so a
        // poisoned lock is still usable.
        self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn run(self: Arc<Self>, sink: TimerSink) {
        loop {
            let (due, next) = {
                let mut queue = self.lock();
                (queue.pop_due(self.clock.now()), queue.next_deadline())
            };
            for entry in due {
                sink(entry);
            }
            let sleep = async {
                match next {
                    Some(deadline) => tokio::time::sleep(self.clock.now().until(deadline)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = self.stop.notified() => return,
                () = self.wake.notified() => {}
                () = sleep => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::sync::mpsc;

    use super::*;
    use crate::ids::TimerId;
    use crate::time::{SystemClock, Timestamp};

    fn entry(workflow: &str, timer: &str, fire_at_ms: i64) -> TimerEntry {
        TimerEntry {
            workflow_id: WorkflowId::new(workflow).unwrap(),
            timer_id: TimerId::from_stored(timer),
            command: 0,
            fire_at: Timestamp::from_millis(fire_at_ms),
        }
    }

    #[tokio::test]
    async fn the_wheel_fires_due_timers_and_wakes_for_earlier_ones() {
        let (fired, mut fired_rx) = mpsc::unbounded_channel();
        let sink: TimerSink = Arc::new(move |entry: TimerEntry| {
            let _ = fired.send(entry.workflow_id.to_string());
        });
        let clock = Arc::new(SystemClock);
        let now = clock.now();
        let (wheel, task) = TimerWheel::spawn(clock, sink, &Handle::current());
        let later = |ms: u64, id: &str| TimerEntry {
            fire_at: now.plus_millis(ms),
            ..entry(id, "1", 0)
        };
        wheel.arm(later(60_000, "late"));
        wheel.arm(later(20, "soon"));
        wheel.arm(later(0, "now"));
        assert_eq!(fired_rx.recv().await.unwrap(), "now");
        assert_eq!(fired_rx.recv().await.unwrap(), "soon");
        assert_eq!(wheel.len(), 1);
        wheel.shutdown();
        task.await.unwrap();
    }
}
