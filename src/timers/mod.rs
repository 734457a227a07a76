//! Durable timers in memory: the pending timers ordered by fire time
//! ([`TimerQueue`]) and the task that fires them ([`TimerWheel`]).
//!
//! The store's timers table is the durable truth; the wheel is rebuilt from
//! it on every start (recovery step 1) and armed as timers are recorded.

mod queue;
mod wheel;

pub use queue::TimerQueue;
pub use wheel::{TimerSink, TimerWheel};
