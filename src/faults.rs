//! Fault injection: `AION_FAULT=<point>` or `AION_FAULT=<point>:<n>` makes
//! the OS process abort the `n`-th time (default: the first) the engine
//! reaches the named [`Point`], so that a test, or an operator rehearsing a
//! failure, can crash the engine exactly inside one crash window, restart it
//! on the same store and check that nothing was lost or done twice.
//!
//! The mechanism is compiled in always and is inert unless the variable is
//! set: [`hit`] is one atomic load and a branch when nothing is armed. The
//! variable is read once per OS process, by the first [`crate::engine::Engine::open`]
//! ([`arm_from_env`]); every later open gets the same answer. The count is
//! per OS process, over every engine in it.
//!
//! A spec naming no known point (or a bad count) is refused: every
//! `Engine::open` in the process fails with
//! [`crate::engine::EngineError::InvalidFault`]. A typo would otherwise run
//! the workload unharmed and look like a crash test that passed.
//!
//! When the point is reached, the engine writes one line to stderr,
//! `AION_FAULT: aborting at <point> (reached <n> times)`, and ends the process
//! at once with the action set by [`set_abort`] (by default
//! [`std::process::abort`]; the BEAM NIF installs a SIGKILL of its own
//! process, which is what `kill -9` does: no core dump, no handler runs).
//! Nothing is answered, flushed or recorded after that line.
//!
//! Never set `AION_FAULT` in production.

use std::fmt;
use std::io::Write;
use std::str::FromStr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use thiserror::Error;

/// The environment variable read by [`arm_from_env`].
pub const VARIABLE: &str = "AION_FAULT";

/// A named place in the engine where a fault may be injected: each sits
/// between a fact becoming durable (or about to) and the engine acting on
/// it, in one crash window of ARCHITECTURE.md.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Point {
    /// `child_started`: a parent's `child_workflow_started` is durable, the
    /// child's own `workflow_started` is not yet recorded
    /// (`RunHandle::start_child`).
    ChildStarted,
    /// `continued_as_new`: a run's `workflow_continued_as_new` is durable
    /// (with its successor's `workflow_started`, in the same append: there
    /// is no moment between the two), the successor has no process yet and
    /// the ended run's children are not closed (`Engine::continue_as_new`).
    ContinuedAsNew,
    /// `child_ended`: a child's ending is durable in its own history, the
    /// parent's `child_workflow_*` is not yet recorded (the engine's
    /// `after_ending`, after [`Point::Terminal`]; reached only by runs with
    /// a parent).
    ChildEnded,
    /// `terminal`: a run's ending (`workflow_completed`, `_failed`,
    /// `_cancelled`, `_terminated`, `_timed_out`) is durable, and with it
    /// the visibility row and search attributes (written in the same
    /// transaction); nobody has been told: the host's caller (which wakes
    /// awaiters), the run's owner and the listener's `ended` hear nothing.
    Terminal,
    /// `timer_fired`: a timer's `timer_fired` is durable (its timers row
    /// deleted in the same transaction); the run's owner is not told, an
    /// evicted run is not woken.
    TimerFired,
    /// `signal_sent`: a workflow's `signal_sent` is durable, the target's
    /// `signal_received` is not yet recorded (`RunHandle::signal_workflow`;
    /// a send recorded as failed reaches no point).
    SignalSent,
    /// `commit_before_fsync`: inside a group commit, every request of the
    /// batch has been written into the SQLite transaction, which is not
    /// committed (no fsync): after the crash none of the batch is durable.
    CommitBeforeFsync,
    /// `commit_after_fsync`: a group commit's transaction has committed
    /// (fsynced), no caller of the batch has been answered: everything in
    /// it is durable and nobody heard so.
    CommitAfterFsync,
    /// `reset`: a reset's one append is durable (the old run's ending if it
    /// ran, the new run's start, its copies and carried signals): the old
    /// run's process is not told, its children are not closed, the new run
    /// has no process (`Engine::reset`).
    Reset,
    /// `recovery`: during recovery on start, after visibility is
    /// reconciled, before any timer is fired or armed and before any run is
    /// resumed. The next start must recover fully.
    Recovery,
}

impl Point {
    /// Every point, in the order documented above.
    pub const ALL: [Point; 10] = [
        Point::ChildStarted,
        Point::ContinuedAsNew,
        Point::ChildEnded,
        Point::Terminal,
        Point::TimerFired,
        Point::SignalSent,
        Point::CommitBeforeFsync,
        Point::CommitAfterFsync,
        Point::Reset,
        Point::Recovery,
    ];

    /// The point's name, as `AION_FAULT` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Point::ChildStarted => "child_started",
            Point::ContinuedAsNew => "continued_as_new",
            Point::ChildEnded => "child_ended",
            Point::Terminal => "terminal",
            Point::TimerFired => "timer_fired",
            Point::SignalSent => "signal_sent",
            Point::CommitBeforeFsync => "commit_before_fsync",
            Point::CommitAfterFsync => "commit_after_fsync",
            Point::Reset => "reset",
            Point::Recovery => "recovery",
        }
    }

    /// The point named `name`, if any.
    pub fn parse(name: &str) -> Option<Point> {
        Point::ALL.into_iter().find(|point| point.as_str() == name)
    }
}

impl fmt::Display for Point {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A fault asked for: abort at the `nth` time `point` is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// Where.
    pub point: Point,
    /// At which time the point is reached, from 1.
    pub nth: u64,
}

impl fmt::Display for Fault {
    /// As `AION_FAULT` spells it: `<point>:<n>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.point, self.nth)
    }
}

/// An `AION_FAULT` value that names no fault.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum FaultError {
    /// The point's name is not one of [`Point::ALL`]. Fix the spelling.
    #[error("AION_FAULT={spec}: unknown fault point {point:?}; known points: {known}")]
    UnknownPoint {
        /// The whole value.
        spec: String,
        /// The name that matched no point.
        point: String,
        /// The known names, comma-separated.
        known: String,
    },
    /// The count after `:` is not a whole number from 1. Fix it, or drop it
    /// (`<point>` alone means `<point>:1`).
    #[error("AION_FAULT={spec}: expected <point> or <point>:<n> with n >= 1")]
    BadCount {
        /// The whole value.
        spec: String,
    },
}

impl FromStr for Fault {
    type Err = FaultError;

    /// Parses `<point>` or `<point>:<n>` (surrounding blanks ignored).
    fn from_str(spec: &str) -> Result<Fault, FaultError> {
        let (name, count) = match spec.trim().split_once(':') {
            Some((name, count)) => (name.trim(), Some(count.trim())),
            None => (spec.trim(), None),
        };
        let point = Point::parse(name).ok_or_else(|| FaultError::UnknownPoint {
            spec: spec.to_owned(),
            point: name.to_owned(),
            known: Point::ALL.map(Point::as_str).join(", "),
        })?;
        let nth = match count {
            None => 1,
            Some(count) => {
                count
                    .parse()
                    .ok()
                    .filter(|&n| n >= 1)
                    .ok_or_else(|| FaultError::BadCount {
                        spec: spec.to_owned(),
                    })?
            }
        };
        Ok(Fault { point, nth })
    }
}

/// An armed fault and how often its point has been reached.
#[derive(Debug)]
pub struct Trigger {
    fault: Fault,
    reached: AtomicU64,
}

impl Trigger {
    /// Arms `fault`, its point not reached yet.
    pub fn new(fault: Fault) -> Trigger {
        Trigger {
            fault,
            reached: AtomicU64::new(0),
        }
    }

    /// The fault armed.
    pub fn fault(&self) -> Fault {
        self.fault
    }

    /// Counts `point` being reached; true exactly once, when that is the
    /// fault's point for the `nth` time (concurrent callers included).
    pub fn reach(&self, point: Point) -> bool {
        point == self.fault.point
            && self.reached.fetch_add(1, Ordering::SeqCst) + 1 == self.fault.nth
    }
}

/// The process's armed fault, set by [`arm_from_env`] only when one is asked
/// for: `hit` loads this and nothing else.
static ARMED: OnceLock<Trigger> = OnceLock::new();
/// What the environment asked for, parsed once per OS process.
static PARSED: OnceLock<Result<Option<Fault>, FaultError>> = OnceLock::new();
/// How `hit` ends the process.
static ABORT: OnceLock<fn() -> !> = OnceLock::new();

/// Reads [`VARIABLE`] (once per OS process; later calls return the first
/// answer) and arms the fault it names. `Ok(None)` when it is unset or
/// empty. Called by [`crate::engine::Engine::open`].
pub fn arm_from_env() -> Result<Option<Fault>, FaultError> {
    PARSED
        .get_or_init(|| {
            let spec = std::env::var(VARIABLE).unwrap_or_default();
            if spec.trim().is_empty() {
                return Ok(None);
            }
            let fault = spec.parse::<Fault>()?;
            let _ = ARMED.set(Trigger::new(fault));
            Ok(Some(fault))
        })
        .clone()
}

/// Sets how [`hit`] ends the process, once (later calls are ignored). The
/// default is [`std::process::abort`]; a host that can (the BEAM NIF) sets a
/// SIGKILL of its own process instead, which leaves no core dump.
pub fn set_abort(abort: fn() -> !) {
    let _ = ABORT.set(abort);
}

/// Marks that the engine reached `point`: aborts the OS process if that is
/// the armed fault's point for the `nth` time; otherwise does nothing (one
/// atomic load when no fault is armed).
#[inline]
pub fn hit(point: Point) {
    if let Some(trigger) = ARMED.get() {
        hit_armed(trigger, point);
    }
}

#[cold]
#[inline(never)]
fn hit_armed(trigger: &Trigger, point: Point) {
    if trigger.reach(point) {
        abort_at(point, trigger.fault.nth);
    }
}

fn abort_at(point: Point, nth: u64) -> ! {
    // One write of the whole line, so that it is not interleaved with
    // another thread's output; stderr is unbuffered.
    let _ = std::io::stderr()
        .lock()
        .write_all(abort_line(point, nth).as_bytes());
    ABORT.get().copied().unwrap_or(std::process::abort)()
}

/// The line written to stderr just before aborting (tests wait for it).
fn abort_line(point: Point, nth: u64) -> String {
    format!("{VARIABLE}: aborting at {point} (reached {nth} times)\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(spec: &str) -> Result<Fault, FaultError> {
        spec.parse()
    }

    #[test]
    fn every_point_parses_by_its_name_alone_or_with_a_count() {
        for point in Point::ALL {
            assert_eq!(parse(point.as_str()), Ok(Fault { point, nth: 1 }));
            assert_eq!(parse(&format!(" {point}:7 ")), Ok(Fault { point, nth: 7 }));
            let fault = Fault { point, nth: 3 };
            assert_eq!(parse(&fault.to_string()), Ok(fault));
        }
        assert_eq!(
            parse("terminal : 2"),
            Ok(Fault {
                point: Point::Terminal,
                nth: 2
            })
        );
    }

    #[test]
    fn names_are_distinct_and_spelled_as_documented() {
        let names: Vec<_> = Point::ALL.map(Point::as_str).into();
        assert_eq!(
            names,
            [
                "child_started",
                "continued_as_new",
                "child_ended",
                "terminal",
                "timer_fired",
                "signal_sent",
                "commit_before_fsync",
                "commit_after_fsync",
                "reset",
                "recovery"
            ]
        );
    }

    #[test]
    fn an_unknown_point_is_refused_with_the_known_ones() {
        let error = parse("timer_fird:2").unwrap_err();
        assert!(
            matches!(&error, FaultError::UnknownPoint { point, .. } if point == "timer_fird"),
            "{error:?}"
        );
        let message = error.to_string();
        assert!(message.contains("timer_fird"), "{message}");
        assert!(message.contains("commit_after_fsync"), "{message}");
        assert!(matches!(
            parse("Terminal"),
            Err(FaultError::UnknownPoint { .. })
        ));
    }

    #[test]
    fn a_bad_count_is_refused() {
        for spec in [
            "terminal:",
            "terminal:0",
            "terminal:-1",
            "terminal:x",
            "terminal:1:2",
        ] {
            assert_eq!(
                parse(spec),
                Err(FaultError::BadCount {
                    spec: spec.to_owned()
                }),
                "{spec}"
            );
        }
    }

    #[test]
    fn a_trigger_fires_once_at_the_nth_reach_of_its_point_only() {
        let trigger = Trigger::new(Fault {
            point: Point::TimerFired,
            nth: 3,
        });
        let fired: Vec<bool> = [
            Point::TimerFired,
            Point::Terminal,
            Point::TimerFired,
            Point::CommitAfterFsync,
            Point::TimerFired,
            Point::TimerFired,
        ]
        .into_iter()
        .map(|point| trigger.reach(point))
        .collect();
        assert_eq!(fired, [false, false, false, false, true, false]);
    }

    #[test]
    fn concurrent_reaches_fire_exactly_once() {
        let trigger = Trigger::new(Fault {
            point: Point::CommitBeforeFsync,
            nth: 500,
        });
        let fired: usize = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(|| {
                        (0..250)
                            .filter(|_| trigger.reach(Point::CommitBeforeFsync))
                            .count()
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).sum()
        });
        assert_eq!(fired, 1);
    }

    #[test]
    fn the_abort_line_names_the_point_as_tests_expect() {
        assert_eq!(
            abort_line(Point::CommitAfterFsync, 6),
            "AION_FAULT: aborting at commit_after_fsync (reached 6 times)\n"
        );
    }

    #[test]
    fn nothing_is_armed_without_the_variable() {
        // The test binary runs without AION_FAULT: the engine's tests open
        // engines, and every point they reach must be a no-op.
        assert_eq!(std::env::var(VARIABLE).ok(), None);
        assert_eq!(arm_from_env(), Ok(None));
        hit(Point::Terminal);
        assert!(ARMED.get().is_none());
    }
}
