//! The pending timers themselves, ordered by fire time and indexed by
//! workflow: pure data, no clock and no task, so that the wheel's firing
//! logic is tested without either.

use std::collections::{BTreeSet, HashMap};

use crate::ids::{TimerId, WorkflowId};
use crate::store::TimerEntry;
use crate::time::Timestamp;

/// One armed timer, as its workflow's index holds it.
#[derive(Debug)]
struct Armed {
    timer_id: TimerId,
    command: u32,
    fire_at: Timestamp,
}

/// Pending timers ordered by fire time. Pure data: no clock, no tasks.
///
/// Two indexes hold every timer: `by_time` orders them for firing (ties
/// broken by workflow, then timer id, so the order is deterministic), and
/// `by_workflow` finds a workflow's timers without looking at anyone
/// else's. Arming, firing and disarming one timer cost O(log n + k), where
/// k is the number of timers its own workflow has armed: a workflow
/// usually waits on one or two timers at a time, so a short vector per
/// workflow is both the smallest and the fastest set here.
#[derive(Debug, Default)]
pub struct TimerQueue {
    by_time: BTreeSet<(Timestamp, WorkflowId, TimerId)>,
    by_workflow: HashMap<WorkflowId, Vec<Armed>>,
    /// Timers examined by `disarm_workflow`, so a test can show that the
    /// cost does not grow with other workflows' timers without timing it.
    #[cfg(test)]
    disarm_visits: usize,
}

impl TimerQueue {
    /// Adds a timer, replacing one with the same workflow and timer id.
    pub fn arm(&mut self, entry: TimerEntry) {
        let TimerEntry {
            workflow_id,
            timer_id,
            command,
            fire_at,
        } = entry;
        let timers = self.by_workflow.entry(workflow_id.clone()).or_default();
        let armed = Armed {
            timer_id: timer_id.clone(),
            command,
            fire_at,
        };
        match timers.iter_mut().find(|old| old.timer_id == timer_id) {
            Some(old) => {
                let replaced = std::mem::replace(old, armed);
                self.by_time
                    .remove(&(replaced.fire_at, workflow_id.clone(), timer_id.clone()));
            }
            None => timers.push(armed),
        }
        self.by_time.insert((fire_at, workflow_id, timer_id));
    }

    /// Removes every timer of `workflow_id`; returns how many there were.
    pub fn disarm_workflow(&mut self, workflow_id: &WorkflowId) -> usize {
        let Some((workflow_id, timers)) = self.by_workflow.remove_entry(workflow_id) else {
            return 0;
        };
        let removed = timers.len();
        for armed in timers {
            #[cfg(test)]
            {
                self.disarm_visits += 1;
            }
            self.by_time
                .remove(&(armed.fire_at, workflow_id.clone(), armed.timer_id));
        }
        removed
    }

    /// Removes and returns the timers due at `now` (`fire_at <= now`), earliest first.
    pub fn pop_due(&mut self, now: Timestamp) -> Vec<TimerEntry> {
        self.pop_due_at_most(now, usize::MAX)
    }

    /// Like [`TimerQueue::pop_due`], but stops after `limit` timers: the
    /// earliest `limit` due timers, earliest first.
    pub fn pop_due_at_most(&mut self, now: Timestamp, limit: usize) -> Vec<TimerEntry> {
        std::iter::from_fn(|| self.pop_one_due(now))
            .take(limit)
            .collect()
    }

    fn pop_one_due(&mut self, now: Timestamp) -> Option<TimerEntry> {
        loop {
            if self.next_deadline()? > now {
                return None;
            }
            let (fire_at, workflow_id, timer_id) = self.by_time.pop_first()?;
            let Some(timers) = self.by_workflow.get_mut(&workflow_id) else {
                debug_assert!(
                    false,
                    "workflow {workflow_id} missing from the workflow index"
                );
                continue;
            };
            let at = timers.iter().position(|armed| armed.timer_id == timer_id);
            let armed = at.map(|at| timers.swap_remove(at));
            if timers.is_empty() {
                self.by_workflow.remove(&workflow_id);
            }
            // Every method changes both indexes together, so this always
            // holds; were it broken, the timer's command would be unknown, and
            // a made-up one could wake the wrong command: skip the timer (the
            // store still holds it, and the next start re-arms it).
            let Some(armed) = armed else {
                debug_assert!(
                    false,
                    "timer {timer_id} of {workflow_id} missing from the workflow index"
                );
                continue;
            };
            return Some(TimerEntry {
                workflow_id,
                timer_id,
                command: armed.command,
                fire_at,
            });
        }
    }

    /// The earliest fire time, if any timer is pending.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.by_time.first().map(|(fire_at, ..)| *fire_at)
    }

    /// Number of pending timers.
    pub fn len(&self) -> usize {
        self.by_time.len()
    }

    /// Whether no timer is pending.
    pub fn is_empty(&self) -> bool {
        self.by_time.is_empty()
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use proptest::prelude::*;

    use super::*;
    use crate::time::{Clock, ManualClock};

    /// A timer of command 0, for the tests of the queue and of the wheel.
    pub(in crate::timers) fn entry(workflow: &str, timer: &str, fire_at_ms: i64) -> TimerEntry {
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
        let due: Vec<_> = queue
            .pop_due(clock.now())
            .into_iter()
            .map(|e| e.workflow_id.to_string())
            .collect();
        assert_eq!(due, ["b", "a"]);
        assert_eq!(queue.next_deadline(), Some(Timestamp::from_millis(30)));
    }

    #[test]
    fn a_bounded_pop_takes_the_earliest_and_leaves_the_rest() {
        let mut queue = TimerQueue::default();
        for (workflow, at) in [("c", 3), ("a", 1), ("b", 2), ("d", 9)] {
            queue.arm(entry(workflow, "1", at));
        }
        let now = Timestamp::from_millis(5);
        let first: Vec<_> = queue
            .pop_due_at_most(now, 2)
            .into_iter()
            .map(|e| e.workflow_id.to_string())
            .collect();
        assert_eq!(first, ["a", "b"]);
        assert_eq!(queue.pop_due_at_most(now, 2).len(), 1);
        assert!(queue.pop_due_at_most(now, 2).is_empty());
        assert_eq!(queue.len(), 1);
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
        assert_eq!(
            queue.pop_due(Timestamp::from_millis(60))[0]
                .workflow_id
                .as_str(),
            "b"
        );
    }

    /// Disarming a workflow visits only that workflow's timers, however many
    /// others are armed.
    #[test]
    fn disarm_visits_only_the_workflows_own_timers() {
        let visits_with_others = |others: usize| {
            let mut queue = TimerQueue::default();
            for n in 0..others {
                queue.arm(entry(&format!("other-{n}"), "1", n as i64));
            }
            for timer in ["1", "2", "3"] {
                queue.arm(entry("done", timer, 5));
            }
            queue.disarm_visits = 0;
            queue.disarm_workflow(&WorkflowId::new("done").unwrap());
            assert_eq!(queue.len(), others);
            queue.disarm_visits
        };
        assert_eq!(visits_with_others(10), 3);
        assert_eq!(visits_with_others(100_000), 3);
    }

    #[derive(Clone, Debug)]
    enum Op {
        Arm {
            workflow: u8,
            timer: u8,
            fire_at: i64,
            command: u32,
        },
        Disarm {
            workflow: u8,
        },
        PopDue {
            now: i64,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0..4u8, 0..4u8, 0..20i64, any::<u32>())
                .prop_map(|(workflow, timer, fire_at, command)| Op::Arm { workflow, timer, fire_at, command }),
            1 => (0..4u8).prop_map(|workflow| Op::Disarm { workflow }),
            1 => (0..20i64).prop_map(|now| Op::PopDue { now }),
        ]
    }

    proptest! {
        /// The two indexes behave as one map keyed by (workflow, timer):
        /// whatever the operations, the queue answers as that map would.
        #[test]
        fn the_queue_behaves_as_a_map_of_timers(ops in prop::collection::vec(op(), 0..200)) {
            let mut queue = TimerQueue::default();
            let mut model: BTreeMap<(WorkflowId, TimerId), TimerEntry> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Arm { workflow, timer, fire_at, command } => {
                        let armed = entry(&format!("w{workflow}"), &format!("t{timer}"), fire_at);
                        let entry = TimerEntry { command, ..armed };
                        model.insert((entry.workflow_id.clone(), entry.timer_id.clone()), entry.clone());
                        queue.arm(entry);
                    }
                    Op::Disarm { workflow } => {
                        let workflow_id = WorkflowId::new(format!("w{workflow}")).unwrap();
                        let before = model.len();
                        model.retain(|(owner, _), _| *owner != workflow_id);
                        prop_assert_eq!(queue.disarm_workflow(&workflow_id), before - model.len());
                    }
                    Op::PopDue { now } => {
                        let now = Timestamp::from_millis(now);
                        let mut due: Vec<TimerEntry> = model.values().filter(|e| e.fire_at <= now).cloned().collect();
                        due.sort_by_key(|e| (e.fire_at, e.workflow_id.clone(), e.timer_id.clone()));
                        model.retain(|_, e| e.fire_at > now);
                        prop_assert_eq!(queue.pop_due(now), due);
                    }
                }
                prop_assert_eq!(queue.len(), model.len());
                prop_assert_eq!(queue.next_deadline(), model.values().map(|e| e.fire_at).min());
                prop_assert_eq!(queue.by_workflow.values().map(Vec::len).sum::<usize>(), model.len());
            }
        }
    }
}
