//! Fault injection for crash tests, from the environment of the VM; never
//! set these in production:
//!
//! - `AION_FAULT=<point>[:<n>]` (the core's, see `aion::faults`): the engine
//!   aborts the OS process at a named point of a crash window; here it is
//!   made a SIGKILL, as the variables below do.
//! - `AION_FAULT_KILL_AFTER=<event_kind>:<n>` makes the engine SIGKILL its own
//!   OS process right after the commit that makes `n` events of that kind
//!   durable, before any caller is answered: the window between "recorded"
//!   and "replied".
//! - `AION_FAULT_PANIC_AFTER=<event_kind>:<n>` makes the group-commit writer
//!   panic at the same point, once per OS process: the engine must then fail
//!   its instance, which restarts.
//! - `AION_FAULT_FAIL_LOADS=<n>` makes the first `n` loads of a run in the OS
//!   process fail with a transient store error.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use aion::store::{AppendRequest, Result};
use aion::writer::CommitHook;

/// Makes `AION_FAULT` end the OS process with SIGKILL, exactly what
/// `kill -9` does (no core dump, no handler), instead of the core's default
/// `abort()`.
pub fn install() {
    aion::faults::set_abort(kill_self);
}

/// The hook asked for by the environment, if any.
pub fn from_env() -> Option<CommitHook> {
    if let Some(kill) = counting_hook("AION_FAULT_KILL_AFTER") {
        return Some(Arc::new(
            move |batch: &[AppendRequest], results: &[Result<()>]| {
                if kill(batch, results) {
                    kill_self();
                }
            },
        ));
    }
    let panic_now = counting_hook("AION_FAULT_PANIC_AFTER")?;
    static PANICKED: AtomicBool = AtomicBool::new(false);
    Some(Arc::new(
        move |batch: &[AppendRequest], results: &[Result<()>]| {
            if panic_now(batch, results) && !PANICKED.swap(true, Ordering::SeqCst) {
                panic!("AION_FAULT_PANIC_AFTER: the group-commit writer panics, as asked");
            }
        },
    ))
}

type Trigger = Box<dyn Fn(&[AppendRequest], &[Result<()>]) -> bool + Send + Sync>;

/// `<event_kind>:<n>` from `variable`: a trigger that turns true once `n`
/// events of that kind are durable.
fn counting_hook(variable: &str) -> Option<Trigger> {
    let spec = std::env::var(variable).ok()?;
    let (kind, count) = spec.split_once(':')?;
    let limit: u64 = count.trim().parse().ok()?;
    let kind = kind.trim().to_owned();
    let seen = AtomicU64::new(0);
    Some(Box::new(
        move |batch: &[AppendRequest], results: &[Result<()>]| {
            let committed = batch
                .iter()
                .zip(results)
                .filter(|(_, result)| result.is_ok())
                .flat_map(|(request, _)| &request.events)
                .filter(|recorded| recorded.event.kind().as_str() == kind)
                .count() as u64;
            committed > 0 && seen.fetch_add(committed, Ordering::SeqCst) + committed >= limit
        },
    ))
}

fn kill_self() -> ! {
    // SAFETY: kill(2) on our own pid with a valid signal number has no
    // memory-safety preconditions.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
    // SIGKILL is delivered asynchronously; never answer anyone meanwhile.
    loop {
        std::thread::park();
    }
}

/// Whether this load of a run must fail (see `AION_FAULT_FAIL_LOADS`).
pub fn fail_this_load() -> bool {
    static LEFT: std::sync::OnceLock<AtomicU64> = std::sync::OnceLock::new();
    let left = LEFT.get_or_init(|| {
        let n = std::env::var("AION_FAULT_FAIL_LOADS")
            .ok()
            .and_then(|n| n.trim().parse().ok());
        AtomicU64::new(n.unwrap_or(0))
    });
    left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}
