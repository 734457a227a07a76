//! The pending timers themselves, ordered by fire time: pure data, no clock
//! and no task, so that the wheel's firing logic is tested without either.

use std::collections::{BTreeSet, HashMap};

use crate::ids::{TimerId, WorkflowId};
use crate::store::TimerEntry;
use crate::time::Timestamp;

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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::time::{Clock, ManualClock};

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
}
