//! # Aion core
//!
//! The engine behind Aion, a durable workflow engine embedded in BEAM
//! applications. This crate is pure Rust and knows nothing of the BEAM: the
//! Rustler NIF in `native/aion_nif` is a thin boundary over it.
//!
//! - [`event`], [`payload`], [`ids`], [`codec`]: the data model and its stable,
//!   versioned stored form.
//! - [`store`]: the store contract and its backends (in-memory, SQLite).
//! - [`writer`] and [`recorder`]: group-committed, optimistic appends.
//! - [`replay`]: the resolver that matches workflow commands to history.
//! - [`timers`]: the durable timer wheel.
//! - [`visibility`]: search attributes and the filters of workflow listings.
//! - [`engine`]: the pieces put together, including recovery.
//! - [`faults`]: crash injection at named points (`AION_FAULT`), for tests.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod codec;
pub mod engine;
pub mod event;
pub mod faults;
pub mod ids;
pub mod payload;
pub mod recorder;
pub mod replay;
pub mod status;
pub mod store;
pub mod time;
pub mod timers;
pub mod visibility;
pub mod writer;
