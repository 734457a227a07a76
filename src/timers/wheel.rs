//! The task that fires the [`TimerQueue`]: it hands each due timer to a sink
//! (the engine, which records `timer_fired` and wakes the owning workflow).
//!
//! The task owns the queue outright. Callers (NIFs on BEAM scheduler
//! threads among them) never share a lock with it: [`TimerWheel::arm`] and
//! [`TimerWheel::disarm_workflow`] only push a command onto an unbounded
//! channel, which costs the same whether the task is idle or busy firing a
//! hundred thousand overdue timers. The task applies commands in the order
//! they were sent and fires due timers in bounded chunks, looking at new
//! commands between chunks, so a disarm is never stuck behind a huge batch.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::ids::WorkflowId;
use crate::store::TimerEntry;
use crate::time::Clock;

use super::TimerQueue;

/// Receives due timers. It is called on the wheel's task, one timer at a
/// time, so it must return quickly (the engine's sink spawns a task per
/// timer). It may call back into the wheel: `arm` and `disarm_workflow`
/// never wait.
pub type TimerSink = Arc<dyn Fn(TimerEntry) + Send + Sync>;

/// How many due timers the task fires before it applies commands again: a
/// disarm sent while a large backlog fires waits for at most this many.
const FIRE_CHUNK: usize = 1024;

/// How many commands the task applies before it fires again, so a flood of
/// arms cannot hold back timers that are already due either.
const COMMAND_CHUNK: usize = 1024;

/// The longest the task sleeps before re-reading the clock. A deadline is
/// wall-clock time but a sleep is monotonic: if the wall clock is set
/// forward, a timer fires at most this late. (It also keeps a far-future
/// deadline from overflowing an `Instant`.)
const MAX_WAIT: Duration = Duration::from_secs(60);

/// What callers ask of the task, in the order they asked.
enum Command {
    Arm(TimerEntry),
    Disarm(WorkflowId),
    Flush(oneshot::Sender<()>),
}

/// The handle to the timer task: arms and disarms timers without waiting.
///
/// Dropping every handle (or calling [`TimerWheel::shutdown`]) stops the
/// task; armed timers stay in the store for the next start.
pub struct TimerWheel {
    commands: mpsc::UnboundedSender<Command>,
    stop: watch::Sender<bool>,
    armed: Arc<AtomicUsize>,
}

impl TimerWheel {
    /// Starts the wheel's task on `runtime`; due timers go to `sink`.
    pub fn spawn(
        clock: Arc<dyn Clock>,
        sink: TimerSink,
        runtime: &Handle,
    ) -> (Arc<Self>, JoinHandle<()>) {
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let (stop, stop_rx) = watch::channel(false);
        let armed = Arc::new(AtomicUsize::new(0));
        let task = WheelTask {
            queue: TimerQueue::default(),
            commands: commands_rx,
            stop: stop_rx,
            armed: Arc::clone(&armed),
            clock,
            sink,
        };
        let handle = runtime.spawn(task.run());
        (
            Arc::new(Self {
                commands,
                stop,
                armed,
            }),
            handle,
        )
    }

    /// Arms a timer (replacing one with the same workflow and timer id).
    /// Never waits: the task applies it after every command sent before it.
    pub fn arm(&self, entry: TimerEntry) {
        self.send(Command::Arm(entry));
    }

    /// Disarms every timer of a workflow that was armed before this call; an
    /// `arm` sent after it arms again. Never waits. A timer the task has
    /// already handed to the sink is not recalled, and one that falls due
    /// before the task applies this command may still be handed over: the
    /// sink must check that a timer is still wanted (the engine checks the
    /// store under the workflow's recorder lock).
    pub fn disarm_workflow(&self, workflow_id: &WorkflowId) {
        self.send(Command::Disarm(workflow_id.clone()));
    }

    /// Waits until the task has applied every command sent before this call,
    /// so that [`TimerWheel::len`] reflects them. Returns at once if the task
    /// has stopped.
    pub async fn flush(&self) {
        let (done, done_rx) = oneshot::channel();
        self.send(Command::Flush(done));
        // An error means the task stopped: nothing is pending any more.
        let _ = done_rx.await;
    }

    /// Number of armed timers, as of the last command the task applied: it
    /// lags behind commands still in the channel (see [`TimerWheel::flush`]).
    pub fn len(&self) -> usize {
        self.armed.load(Ordering::Acquire)
    }

    /// Whether no timer is armed, with the same lag as [`TimerWheel::len`].
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stops the task, even in the middle of firing a backlog; armed timers
    /// stay in the store for the next start. Later commands are ignored.
    pub fn shutdown(&self) {
        self.stop.send_replace(true);
    }

    fn send(&self, command: Command) {
        // Only a stopped task drops its receiver, and a stopped wheel has
        // nothing left to arm or disarm: the store keeps the timers.
        let _ = self.commands.send(command);
    }
}

impl std::fmt::Debug for TimerWheel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimerWheel")
            .field("armed", &self.len())
            .finish_non_exhaustive()
    }
}

/// The task's side: the only owner of the queue.
struct WheelTask {
    queue: TimerQueue,
    commands: mpsc::UnboundedReceiver<Command>,
    stop: watch::Receiver<bool>,
    armed: Arc<AtomicUsize>,
    clock: Arc<dyn Clock>,
    sink: TimerSink,
}

impl WheelTask {
    async fn run(mut self) {
        let sleep = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(sleep);
        loop {
            if *self.stop.borrow() {
                return;
            }
            let mut applied = 0;
            while applied < COMMAND_CHUNK {
                match self.commands.try_recv() {
                    Ok(command) => self.apply(command),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return,
                }
                applied += 1;
            }
            let due = self.queue.pop_due_at_most(self.clock.now(), FIRE_CHUNK);
            let backlog = due.len() == FIRE_CHUNK || applied == COMMAND_CHUNK;
            self.publish_len();
            for entry in due {
                (self.sink)(entry);
            }
            if backlog {
                // More is waiting: let the tasks the sink spawned (and anyone
                // else on this worker) run before the next chunk.
                tokio::task::yield_now().await;
                continue;
            }
            let next = self.queue.next_deadline();
            if let Some(deadline) = next {
                // The wait is measured on the engine's clock (wall time, or a
                // manual clock in tests) and re-checked against it on waking.
                let wait = self.clock.now().until(deadline).min(MAX_WAIT);
                sleep.as_mut().reset(Instant::now() + wait);
            }
            tokio::select! {
                // Stopped, or every handle dropped: either way, nothing more to do.
                _ = self.stop.changed() => {}
                command = self.commands.recv() => match command {
                    Some(command) => self.apply(command),
                    None => return,
                },
                () = &mut sleep, if next.is_some() => {}
            }
        }
    }

    fn apply(&mut self, command: Command) {
        match command {
            Command::Arm(entry) => self.queue.arm(entry),
            Command::Disarm(workflow_id) => {
                self.queue.disarm_workflow(&workflow_id);
            }
            Command::Flush(done) => {
                self.publish_len();
                // The caller may have stopped waiting; that is its business.
                let _ = done.send(());
            }
        }
    }

    fn publish_len(&self) {
        self.armed.store(self.queue.len(), Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Once, OnceLock, Weak};

    use tokio::sync::mpsc::UnboundedReceiver;

    use super::*;
    use crate::time::{ManualClock, SystemClock, Timestamp};
    use crate::timers::queue::tests::entry;

    /// A wheel whose sink forwards `workflow/timer` of each fired timer, and
    /// runs `also` with the wheel (so a test can act from inside a firing).
    fn wheel_with(
        clock: Arc<dyn Clock>,
        also: impl Fn(&TimerWheel) + Send + Sync + 'static,
    ) -> (Arc<TimerWheel>, JoinHandle<()>, UnboundedReceiver<String>) {
        let (fired, fired_rx) = mpsc::unbounded_channel();
        let slot: Arc<OnceLock<Weak<TimerWheel>>> = Arc::new(OnceLock::new());
        let sink: TimerSink = {
            let slot = Arc::clone(&slot);
            Arc::new(move |entry: TimerEntry| {
                let _ = fired.send(format!("{}/{}", entry.workflow_id, entry.timer_id));
                if let Some(wheel) = slot.get().and_then(Weak::upgrade) {
                    also(&wheel);
                }
            })
        };
        let (wheel, task) = TimerWheel::spawn(clock, sink, &Handle::current());
        slot.set(Arc::downgrade(&wheel)).unwrap();
        (wheel, task, fired_rx)
    }

    fn manual_wheel() -> (
        Arc<TimerWheel>,
        JoinHandle<()>,
        UnboundedReceiver<String>,
        ManualClock,
    ) {
        let clock = ManualClock::new(Timestamp::from_millis(0));
        let (wheel, task, fired_rx) = wheel_with(Arc::new(clock.clone()), |_| {});
        (wheel, task, fired_rx, clock)
    }

    #[tokio::test]
    async fn the_wheel_fires_due_timers_and_wakes_for_earlier_ones() {
        let clock = Arc::new(SystemClock);
        let now = clock.now();
        let (wheel, task, mut fired_rx) = wheel_with(clock, |_| {});
        let later = |ms: u64, id: &str| TimerEntry {
            fire_at: now.plus_millis(ms),
            ..entry(id, "1", 0)
        };
        wheel.arm(later(60_000, "late"));
        wheel.arm(later(20, "soon"));
        wheel.arm(later(0, "now"));
        assert_eq!(fired_rx.recv().await.unwrap(), "now/1");
        assert_eq!(fired_rx.recv().await.unwrap(), "soon/1");
        assert_eq!(wheel.len(), 1);
        wheel.shutdown();
        task.await.unwrap();
    }

    #[tokio::test]
    async fn commands_apply_in_the_order_they_were_sent() {
        let (wheel, task, mut fired_rx, clock) = manual_wheel();
        let a = WorkflowId::new("a").unwrap();
        wheel.arm(entry("a", "1", 10));
        wheel.disarm_workflow(&a);
        wheel.flush().await;
        assert!(wheel.is_empty(), "a disarm after an arm removes it");

        wheel.arm(entry("a", "2", 10));
        wheel.disarm_workflow(&a);
        wheel.arm(entry("a", "3", 10));
        wheel.arm(entry("b", "1", 10));
        wheel.arm(entry("b", "1", 20));
        wheel.flush().await;
        assert_eq!(
            wheel.len(),
            2,
            "an arm after a disarm re-adds; a re-arm replaces"
        );

        clock.advance(Duration::from_millis(10));
        // The task measures its sleep on the manual clock: a command wakes it.
        wheel.flush().await;
        assert_eq!(fired_rx.recv().await.unwrap(), "a/3");
        clock.advance(Duration::from_millis(10));
        wheel.flush().await;
        assert_eq!(fired_rx.recv().await.unwrap(), "b/1");
        wheel.flush().await;
        assert!(fired_rx.try_recv().is_err());
        assert!(wheel.is_empty());
        wheel.shutdown();
        task.await.unwrap();
    }

    /// A backlog of due timers fires in chunks, with commands applied between
    /// them: a disarm sent while the first chunk fires stops a timer that is
    /// due but sorted behind the rest of the backlog.
    #[tokio::test]
    async fn a_backlog_fires_in_chunks_and_applies_commands_between_them() {
        let clock = ManualClock::new(Timestamp::from_millis(0));
        let disarm_once = Once::new();
        let (wheel, task, mut fired_rx) = wheel_with(Arc::new(clock.clone()), move |wheel| {
            disarm_once.call_once(|| wheel.disarm_workflow(&WorkflowId::new("z").unwrap()));
        });
        let backlog = 3 * FIRE_CHUNK;
        for n in 0..backlog {
            wheel.arm(entry(&format!("a{n:05}"), "1", 1));
        }
        wheel.arm(entry("z", "1", 2));
        wheel.flush().await;
        assert_eq!(wheel.len(), backlog + 1);

        clock.advance(Duration::from_millis(2));
        wheel.flush().await;
        for n in 0..backlog {
            assert_eq!(
                fired_rx.recv().await.unwrap(),
                format!("a{n:05}/1"),
                "earliest first"
            );
        }
        wheel.flush().await;
        assert!(
            fired_rx.try_recv().is_err(),
            "z was disarmed before its chunk"
        );
        assert!(wheel.is_empty());
        wheel.shutdown();
        task.await.unwrap();
    }

    #[tokio::test]
    async fn shutdown_stops_the_task_in_the_middle_of_a_backlog() {
        let clock = ManualClock::new(Timestamp::from_millis(0));
        let (wheel, task, mut fired_rx) = wheel_with(Arc::new(clock.clone()), TimerWheel::shutdown);
        for n in 0..2 * FIRE_CHUNK {
            wheel.arm(entry(&format!("a{n:05}"), "1", 1));
        }
        wheel.flush().await;
        clock.advance(Duration::from_millis(1));
        wheel.flush().await;
        task.await.unwrap();
        let mut fired = 0;
        while fired_rx.try_recv().is_ok() {
            fired += 1;
        }
        assert_eq!(
            fired, FIRE_CHUNK,
            "the chunk in hand finishes, the next never starts"
        );
        assert_eq!(wheel.len(), FIRE_CHUNK);
        wheel.arm(entry("late", "1", 0));
        wheel.flush().await;
    }

    #[tokio::test]
    async fn dropping_the_wheel_stops_the_task() {
        let (wheel, task, _fired_rx, _clock) = manual_wheel();
        wheel.arm(entry("a", "1", 10));
        drop(wheel);
        task.await.unwrap();
    }
}
