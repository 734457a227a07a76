//! The timer wheel: pending durable timers held in memory, ordered by fire
//! time, and a task that hands each due timer to a sink (the engine, which
//! records `timer_fired` and wakes the owning workflow).
//!
//! The store's timers table is the durable truth; the wheel is rebuilt from
//! it on every start (recovery step 1) and armed as timers are recorded.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use tokio::runtime::Handle;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::ids::{TimerId, WorkflowId};
use crate::store::TimerEntry;
use crate::time::{Clock, Timestamp};

type Key = (WorkflowId, TimerId);

/// Pending timers ordered by fire time. Pure data: no clock, no tasks.
#[derive(Debug, Default)]
pub struct TimerQueue {
    by_time: BTreeSet<(Timestamp, Key)>,
    entries: HashMap<Key, TimerEntry>,
}

impl TimerQueue {
    /// Adds a timer, replacing one with the same workflow and timer id.
    pub fn arm(&mut self, entry: TimerEntry) {
        let key = (entry.workflow_id.clone(), entry.timer_id.clone());
        if let Some(old) = self.entries.remove(&key) {
            self.by_time.remove(&(old.fire_at, key.clone()));
        }
        self.by_time.insert((entry.fire_at, key.clone()));
        self.entries.insert(key, entry);
    }

    /// Removes every timer of `workflow_id`.
    pub fn disarm_workflow(&mut self, workflow_id: &WorkflowId) {
        let keys: Vec<Key> = self.entries.keys().filter(|(owner, _)| owner == workflow_id).cloned().collect();
        for key in keys {
            if let Some(entry) = self.entries.remove(&key) {
                self.by_time.remove(&(entry.fire_at, key));
            }
        }
    }

    /// Removes and returns the timers due at `now` (`fire_at <= now`), earliest first.
    pub fn pop_due(&mut self, now: Timestamp) -> Vec<TimerEntry> {
        let mut due = Vec::new();
        while let Some((fire_at, _)) = self.by_time.first() {
            if *fire_at > now {
                break;
            }
            if let Some((_, key)) = self.by_time.pop_first()
                && let Some(entry) = self.entries.remove(&key)
            {
                due.push(entry);
            }
        }
        due
    }

    /// The earliest fire time, if any timer is pending.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.by_time.first().map(|(fire_at, _)| *fire_at)
    }

    /// Number of pending timers.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no timer is pending.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

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
    use std::time::Duration;

    use tokio::sync::mpsc;

    use super::*;
    use crate::time::{ManualClock, SystemClock};

    fn entry(workflow: &str, timer: &str, fire_at_ms: i64) -> TimerEntry {
        TimerEntry {
            workflow_id: WorkflowId::new(workflow).unwrap(),
            timer_id: TimerId::from_stored(timer),
            command: 0,
            fire_at: Timestamp::from_millis(fire_at_ms),
        }
    }

    #[test]
    fn due_is_inclusive_and_ordered() {
        let clock = ManualClock::new(Timestamp::from_millis(0));
        let mut queue = TimerQueue::default();
        queue.arm(entry("a", "1", 20));
        queue.arm(entry("b", "1", 10));
        queue.arm(entry("c", "1", 30));
        clock.advance(Duration::from_millis(20));
        let due: Vec<_> = queue.pop_due(clock.now()).into_iter().map(|e| e.workflow_id.to_string()).collect();
        assert_eq!(due, ["b", "a"]);
        assert_eq!(queue.next_deadline(), Some(Timestamp::from_millis(30)));
    }

    #[test]
    fn rearming_replaces_and_disarm_removes() {
        let mut queue = TimerQueue::default();
        queue.arm(entry("a", "1", 10));
        queue.arm(entry("a", "1", 50));
        assert_eq!(queue.len(), 1);
        assert!(queue.pop_due(Timestamp::from_millis(10)).is_empty());
        queue.arm(entry("a", "2", 60));
        queue.arm(entry("b", "1", 60));
        queue.disarm_workflow(&WorkflowId::new("a").unwrap());
        assert_eq!(queue.len(), 1);
        assert_eq!(queue.pop_due(Timestamp::from_millis(60))[0].workflow_id.as_str(), "b");
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
