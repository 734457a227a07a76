//! Fault injection for crash tests: `AION_FAULT_KILL_AFTER=<event_kind>:<n>`
//! in the environment of the VM makes the engine SIGKILL its own OS process
//! right after the commit that makes `n` events of that kind durable, before
//! any caller is answered: the window between "recorded" and "replied".
//! Never set it in production.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aion::store::{AppendRequest, Result};
use aion::writer::CommitHook;

/// The hook asked for by the environment, if any.
pub fn from_env() -> Option<CommitHook> {
    let spec = std::env::var("AION_FAULT_KILL_AFTER").ok()?;
    let (kind, count) = spec.split_once(':')?;
    let limit: u64 = count.trim().parse().ok()?;
    let kind = kind.trim().to_owned();
    let seen = AtomicU64::new(0);
    Some(Arc::new(move |batch: &[AppendRequest], results: &[Result<()>]| {
        let committed = batch
            .iter()
            .zip(results)
            .filter(|(_, result)| result.is_ok())
            .flat_map(|(request, _)| &request.events)
            .filter(|recorded| recorded.event.kind().as_str() == kind)
            .count() as u64;
        if committed > 0 && seen.fetch_add(committed, Ordering::SeqCst) + committed >= limit {
            kill_self();
        }
    }))
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
