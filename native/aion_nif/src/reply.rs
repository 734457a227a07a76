//! Answering the BEAM from Rust threads.

use std::future::Future;

use rustler::{Encoder, Env, LocalPid, NifResult, OwnedEnv, Term};

use aion::engine::EngineError;

use crate::runtime;
use crate::terms::{atoms, encode_error};

/// Runs `work` on the runtime and sends `{reference, answer}` to the calling
/// process; returns `:ok` at once. The answer is `encode_ok(value)` on
/// success and `{:error, {reason, message, code}}` on failure. A panic in
/// `work` is answered with `{:error, {:panic, message, nil}}`, so the caller
/// is never left waiting and the VM never sees the panic.
pub fn spawn_reply<'a, T, Work, Encode>(
    env: Env<'a>,
    reference: Term<'a>,
    work: Work,
    encode_ok: Encode,
) -> NifResult<Term<'a>>
where
    T: Send + 'static,
    Work: Future<Output = Result<T, EngineError>> + Send + 'static,
    Encode: for<'b> FnOnce(Env<'b>, T) -> Term<'b> + Send + 'static,
{
    let caller = env.pid();
    let mut owned = OwnedEnv::new();
    let saved = owned.save(reference);
    runtime().spawn(async move {
        let outcome = runtime().spawn(work).await;
        let _ = owned.send_and_clear(&caller, |env| {
            let answer = match outcome {
                Ok(Ok(value)) => encode_ok(env, value),
                Ok(Err(error)) => encode_error(env, &error),
                Err(join_error) => {
                    let message = match join_error.try_into_panic() {
                        Ok(panic) => panic
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                            .unwrap_or_else(|| "panic".to_owned()),
                        Err(error) => error.to_string(),
                    };
                    (
                        atoms::error(),
                        (
                            atoms::panic(),
                            format!("internal error in Aion: {message}"),
                            atoms::nil(),
                        ),
                    )
                        .encode(env)
                }
            };
            (saved.load(env), answer).encode(env)
        });
    });
    Ok(atoms::ok().encode(env))
}

/// The answer of a synchronous NIF: `encode_ok(value)`, or
/// `{:error, {reason, message, code}}`.
pub fn sync_reply<'a, T>(
    env: Env<'a>,
    result: Result<T, EngineError>,
    encode_ok: impl FnOnce(T) -> Term<'a>,
) -> Term<'a> {
    match result {
        Ok(value) => encode_ok(value),
        Err(error) => encode_error(env, &error),
    }
}

/// `:ok`, or the error, for a synchronous NIF with nothing to return.
pub fn ok_reply<'a>(env: Env<'a>, result: Result<(), EngineError>) -> Term<'a> {
    sync_reply(env, result, |()| atoms::ok().encode(env))
}

/// Sends a message built by `build` to `pid`, from whatever thread we are on
/// (`OwnedEnv::send_and_clear` refuses scheduler threads).
pub fn send_from_anywhere<F>(pid: LocalPid, build: F)
where
    F: for<'b> FnOnce(Env<'b>) -> Term<'b> + Send + 'static,
{
    let send = move || {
        let _ = OwnedEnv::new().send_and_clear(&pid, build);
    };
    if rustler::thread::is_scheduler_thread() {
        runtime().spawn(async move { send() });
    } else {
        send();
    }
}
