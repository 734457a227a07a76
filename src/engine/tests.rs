//! Engine tests on real stores (memory and SQLite files), driving runs the way
//! the BEAM host does.

use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::mpsc;

use super::*;
use crate::replay::{CommandKind, CommandSpec, Outcome, PendingWork, Resolution, Scope};
use crate::status::WorkflowStatus;
use crate::store::sqlite::SqliteOptions;
use crate::time::ManualClock;

struct Quiet;
impl EngineListener for Quiet {
    fn warning(&self, message: &str) {
        eprintln!("engine warning: {message}");
    }

    fn wake(&self, _workflow_id: &WorkflowId, _workflow_type: &str) {}

    fn fatal(&self, message: &str) {
        eprintln!("engine failed: {message}");
    }
}

struct ChannelOwner(mpsc::UnboundedSender<u32>);
impl RunOwner for ChannelOwner {
    fn notify(&self, notice: Notice) {
        if let Notice::TimerFired(ordinal) = notice {
            let _ = self.0.send(ordinal);
        }
    }
}

async fn memory_engine() -> Engine {
    Engine::open(
        EngineConfig::new(StoreConfig::Memory),
        Arc::new(Quiet),
        Handle::current(),
    )
    .await
    .unwrap()
}

fn sqlite_config(path: &std::path::Path, clock: Arc<dyn Clock>) -> EngineConfig {
    EngineConfig {
        clock,
        ..EngineConfig::new(StoreConfig::Sqlite {
            path: path.to_owned(),
            options: SqliteOptions::default(),
        })
    }
}

fn payload(byte: u8) -> Payload {
    Payload::etf(vec![131, 97, byte])
}

fn start(id: Option<&str>) -> StartRequest {
    StartRequest {
        workflow_id: id.map(|id| WorkflowId::new(id).unwrap()),
        workflow_type: "Shop.Order".into(),
        input: payload(1),
    }
}

fn activity(name: &str) -> CommandSpec {
    CommandSpec::new(CommandKind::Activity, name)
}

fn timer() -> CommandSpec {
    CommandSpec::new(CommandKind::Timer, "")
}

/// Runs an activity live through `run`: resolve, schedule, complete.
async fn run_activity(run: &RunHandle, name: &str, result: Payload) {
    let Resolution::Live { ordinal } = run.resolve(&activity(name), &Scope::default()).unwrap()
    else {
        panic!("expected a live activity");
    };
    run.record(
        RecordCommand::ActivityScheduled {
            ordinal,
            activity_type: name.into(),
            input: payload(0),
        },
        None,
    )
    .await
    .unwrap();
    run.record(RecordCommand::ActivityCompleted { ordinal, result }, None)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_run_records_live_work_and_completes() {
    let engine = memory_engine().await;
    let run = engine.start_workflow(start(None)).await.unwrap();
    run_activity(&run, "Shop.reserve", payload(7)).await;
    run.finish().unwrap();
    let id = run.info().workflow_id.clone();
    let terminal = engine
        .complete_run(&id, run.info().run_id, RunOutcome::Completed(payload(9)))
        .await
        .unwrap();
    assert_eq!(
        (terminal.status, terminal.value),
        (WorkflowStatus::Completed, Some(payload(9)))
    );
    let kinds: Vec<_> = engine
        .history(&id)
        .await
        .unwrap()
        .iter()
        .map(|r| r.event.kind().as_str())
        .collect();
    assert_eq!(
        kinds,
        [
            "workflow_started",
            "activity_scheduled",
            "activity_completed",
            "workflow_completed"
        ]
    );
    assert!(matches!(
        run.resolve(&activity("x"), &Scope::default()),
        Err(EngineError::Superseded { .. })
    ));
}

#[tokio::test]
async fn a_reloaded_run_replays_what_was_recorded_then_goes_live() {
    let engine = memory_engine().await;
    let first = engine.start_workflow(start(Some("order-1"))).await.unwrap();
    run_activity(&first, "Shop.reserve", payload(7)).await;
    let Resolution::Live { ordinal } = first
        .resolve(&activity("Shop.charge"), &Scope::default())
        .unwrap()
    else {
        panic!()
    };
    first
        .record(
            RecordCommand::ActivityScheduled {
                ordinal,
                activity_type: "Shop.charge".into(),
                input: payload(0),
            },
            None,
        )
        .await
        .unwrap();

    let id = WorkflowId::new("order-1").unwrap();
    let again = engine.load_run(&id, None).await.unwrap();
    assert_eq!(again.info().run_id, first.info().run_id);
    assert_eq!(again.info().input, payload(1));
    assert!(matches!(
        first.resolve(&activity("y"), &Scope::default()),
        Err(EngineError::Superseded { .. })
    ));
    assert_eq!(
        again
            .resolve(&activity("Shop.reserve"), &Scope::default())
            .unwrap(),
        Resolution::Replayed {
            ordinal: 0,
            outcome: Outcome::Completed(payload(7))
        }
    );
    assert!(matches!(
        again
            .resolve(&activity("Shop.charge"), &Scope::default())
            .unwrap(),
        Resolution::Pending { ordinal: 1, .. }
    ));
    again
        .record(
            RecordCommand::ActivityCompleted {
                ordinal: 1,
                result: payload(8),
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        again.resolve(&timer(), &Scope::default()).unwrap(),
        Resolution::Live { ordinal: 2 }
    );
}

#[tokio::test]
async fn a_changed_workflow_fails_replay_with_the_coded_error() {
    let engine = memory_engine().await;
    let run = engine.start_workflow(start(Some("nd"))).await.unwrap();
    run_activity(&run, "Shop.reserve", payload(7)).await;
    let again = engine
        .load_run(&WorkflowId::new("nd").unwrap(), None)
        .await
        .unwrap();
    let error = again.resolve(&timer(), &Scope::default()).unwrap_err();
    assert_eq!(error.code(), Some("AION-ND001"));
    assert_eq!(error.kind(), "nondeterminism");
    assert!(error.to_string().contains("command #0"), "{error}");
}

#[tokio::test]
async fn out_of_order_records_are_refused_and_write_nothing() {
    let engine = memory_engine().await;
    let run = engine.start_workflow(start(Some("bad"))).await.unwrap();
    let error = run
        .record(
            RecordCommand::ActivityScheduled {
                ordinal: 1,
                activity_type: "A.a".into(),
                input: payload(0),
            },
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, EngineError::InvalidCommand { .. }),
        "{error}"
    );
    let error = run
        .record(
            RecordCommand::ActivityCompleted {
                ordinal: 3,
                result: payload(0),
            },
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, EngineError::InvalidCommand { .. }),
        "{error}"
    );
    assert_eq!(
        engine
            .history(&WorkflowId::new("bad").unwrap())
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn a_running_id_cannot_start_twice_but_a_finished_one_starts_a_new_run() {
    let engine = memory_engine().await;
    let run = engine.start_workflow(start(Some("dup"))).await.unwrap();
    let error = engine.start_workflow(start(Some("dup"))).await.unwrap_err();
    assert!(
        matches!(error, EngineError::AlreadyStarted { run_id, .. } if run_id == run.info().run_id)
    );
    let id = WorkflowId::new("dup").unwrap();
    engine
        .complete_run(&id, run.info().run_id, RunOutcome::Failed(payload(2)))
        .await
        .unwrap();
    let second = engine.start_workflow(start(Some("dup"))).await.unwrap();
    assert_ne!(second.info().run_id, run.info().run_id);
    let described = engine.describe(&id).await.unwrap();
    assert_eq!(described.runs.len(), 2);
    assert_eq!(described.summary.status, WorkflowStatus::Running);
}

#[tokio::test]
async fn a_recorded_ending_is_never_overwritten() {
    let engine = memory_engine().await;
    let run = engine.start_workflow(start(Some("end"))).await.unwrap();
    let id = WorkflowId::new("end").unwrap();
    engine
        .complete_run(&id, run.info().run_id, RunOutcome::Completed(payload(1)))
        .await
        .unwrap();
    let again = engine
        .complete_run(&id, run.info().run_id, RunOutcome::Failed(payload(2)))
        .await
        .unwrap();
    assert_eq!(
        (again.status, again.value),
        (WorkflowStatus::Completed, Some(payload(1)))
    );
    assert_eq!(engine.history(&id).await.unwrap().len(), 2);
    assert!(matches!(
        engine.load_run(&id, None).await,
        Err(EngineError::NotRunning { .. })
    ));
}

#[tokio::test]
async fn a_timer_fires_records_and_tells_the_owner() {
    let engine = memory_engine().await;
    let run = engine.start_workflow(start(Some("sleepy"))).await.unwrap();
    let (owner, mut fired) = mpsc::unbounded_channel();
    run.attach(Arc::new(ChannelOwner(owner))).unwrap();
    let Resolution::Live { ordinal } = run.resolve(&timer(), &Scope::default()).unwrap() else {
        panic!()
    };
    run.record(
        RecordCommand::TimerStarted {
            ordinal,
            duration_ms: 10,
        },
        None,
    )
    .await
    .unwrap();
    let description = engine
        .describe(&WorkflowId::new("sleepy").unwrap())
        .await
        .unwrap();
    assert!(matches!(
        description.pending[0].work,
        PendingWork::Timer { .. }
    ));
    assert_eq!(fired.recv().await, Some(ordinal));
    let history = engine
        .history(&WorkflowId::new("sleepy").unwrap())
        .await
        .unwrap();
    assert_eq!(history.last().unwrap().event.kind().as_str(), "timer_fired");
    assert!(engine.store().pending_timers().await.unwrap().is_empty());
}

#[tokio::test]
async fn recovery_fires_overdue_timers_rearms_future_ones_and_lists_runs_to_resume() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("aion.db");
    let clock = ManualClock::new(SystemClock.now());
    let engine = Engine::open(
        sqlite_config(&path, Arc::new(clock.clone())),
        Arc::new(Quiet),
        Handle::current(),
    )
    .await
    .unwrap();
    for (id, sleep_ms) in [("short", 60_000), ("long", 3_600_000)] {
        let run = engine.start_workflow(start(Some(id))).await.unwrap();
        let Resolution::Live { ordinal } = run.resolve(&timer(), &Scope::default()).unwrap() else {
            panic!()
        };
        run.record(
            RecordCommand::TimerStarted {
                ordinal,
                duration_ms: sleep_ms,
            },
            None,
        )
        .await
        .unwrap();
    }
    let done = engine.start_workflow(start(Some("done"))).await.unwrap();
    engine
        .complete_run(
            &WorkflowId::new("done").unwrap(),
            done.info().run_id,
            RunOutcome::Completed(payload(0)),
        )
        .await
        .unwrap();
    engine.close().await;

    clock.advance(Duration::from_secs(120));
    let engine = Engine::open(
        sqlite_config(&path, Arc::new(clock)),
        Arc::new(Quiet),
        Handle::current(),
    )
    .await
    .unwrap();
    let report = engine.recover().await.unwrap();
    assert_eq!((report.timers_fired, report.timers_armed), (1, 1));
    // The fired run needs a process; the sleeping one waits for its timer.
    let page = engine.runnable_page(None, 10).await.unwrap();
    let runnable: Vec<_> = page
        .runs
        .iter()
        .map(|(s, _)| s.workflow_id.to_string())
        .collect();
    assert_eq!((runnable, page.next), (vec!["short".to_owned()], None));

    let short = engine
        .load_run(&WorkflowId::new("short").unwrap(), None)
        .await
        .unwrap();
    assert_eq!(
        short.resolve(&timer(), &Scope::default()).unwrap(),
        Resolution::Replayed {
            ordinal: 0,
            outcome: Outcome::Fired
        }
    );
    let long = engine
        .load_run(&WorkflowId::new("long").unwrap(), None)
        .await
        .unwrap();
    assert!(matches!(
        long.resolve(&timer(), &Scope::default()).unwrap(),
        Resolution::Pending { ordinal: 0, .. }
    ));

    let again = engine.recover().await.unwrap();
    assert_eq!(
        (again.timers_fired, again.timers_armed),
        (0, 1),
        "recovery is idempotent"
    );
    engine.close().await;
}

#[tokio::test]
async fn one_store_file_serves_one_engine_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("aion.db");
    let config = sqlite_config(&path, Arc::new(SystemClock));
    let first = Engine::open(config.clone(), Arc::new(Quiet), Handle::current())
        .await
        .unwrap();
    let error = Engine::open(config.clone(), Arc::new(Quiet), Handle::current())
        .await
        .err()
        .unwrap();
    assert!(matches!(error, EngineError::StoreInUse { .. }), "{error}");
    first.close().await;
    let second = Engine::open(config, Arc::new(Quiet), Handle::current())
        .await
        .unwrap();
    second.close().await;
}

#[tokio::test]
async fn a_closed_engine_refuses_work() {
    let engine = memory_engine().await;
    engine.close().await;
    assert!(matches!(
        engine.start_workflow(start(None)).await,
        Err(EngineError::Closed)
    ));
}

#[tokio::test]
async fn a_command_the_code_abandons_before_recording_leaves_no_trace() {
    let engine = memory_engine().await;
    let run = engine.start_workflow(start(None)).await.unwrap();
    // The code issued an activity, then raised while encoding its arguments
    // and rescued: the next command takes the same ordinal.
    assert_eq!(
        run.resolve(&activity("Shop.reserve"), &Scope::default())
            .unwrap(),
        Resolution::Live { ordinal: 0 }
    );
    assert_eq!(
        run.resolve(&timer(), &Scope::default()).unwrap(),
        Resolution::Live { ordinal: 0 }
    );
    run.record(
        RecordCommand::TimerStarted {
            ordinal: 0,
            duration_ms: 60_000,
        },
        None,
    )
    .await
    .unwrap();
    let error = run
        .record(
            RecordCommand::Marker {
                ordinal: 0,
                name: "now".into(),
                value: payload(0),
            },
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(error.kind(), "invalid_command");
    run_activity(&run, "Shop.reserve", payload(7)).await;
    let id = run.info().workflow_id.clone();
    let kinds: Vec<_> = engine
        .history(&id)
        .await
        .unwrap()
        .iter()
        .map(|r| r.event.kind().as_str())
        .collect();
    assert_eq!(
        kinds,
        [
            "workflow_started",
            "timer_started",
            "activity_scheduled",
            "activity_completed"
        ]
    );
}

/// Hears wake-ups.
struct Wakes(mpsc::UnboundedSender<String>);
impl EngineListener for Wakes {
    fn warning(&self, message: &str) {
        eprintln!("engine warning: {message}");
    }

    fn wake(&self, workflow_id: &WorkflowId, workflow_type: &str) {
        let _ = self.0.send(format!("{workflow_id} {workflow_type}"));
    }

    fn fatal(&self, message: &str) {
        panic!("engine failed: {message}");
    }
}

#[tokio::test]
async fn an_evicted_run_is_woken_by_its_timer_and_replays_it_fired() {
    let (wakes, mut woken) = mpsc::unbounded_channel();
    let engine = Engine::open(
        EngineConfig::new(StoreConfig::Memory),
        Arc::new(Wakes(wakes)),
        Handle::current(),
    )
    .await
    .unwrap();
    let run = engine.start_workflow(start(Some("nap"))).await.unwrap();
    let (owner, mut fired) = mpsc::unbounded_channel();
    run.attach(Arc::new(ChannelOwner(owner))).unwrap();
    let Resolution::Live { ordinal } = run.resolve(&timer(), &Scope::default()).unwrap() else {
        panic!()
    };
    run.record(
        RecordCommand::TimerStarted {
            ordinal,
            duration_ms: 30,
        },
        None,
    )
    .await
    .unwrap();
    assert!(!run.timer_fired(ordinal).unwrap());
    assert!(run.evict(&[ordinal], &Scope::default(), false).unwrap());
    assert!(matches!(
        run.resolve(&timer(), &Scope::default()),
        Err(EngineError::Superseded { .. })
    ));

    assert_eq!(woken.recv().await.unwrap(), "nap Shop.Order");
    assert!(fired.try_recv().is_err(), "the evicted owner is not told");
    let again = engine
        .load_run(&WorkflowId::new("nap").unwrap(), None)
        .await
        .unwrap();
    assert_eq!(
        again.resolve(&timer(), &Scope::default()).unwrap(),
        Resolution::Replayed {
            ordinal: 0,
            outcome: Outcome::Fired
        }
    );
}

#[tokio::test]
async fn a_run_whose_timer_fired_is_not_evicted() {
    let engine = memory_engine().await;
    let run = engine.start_workflow(start(None)).await.unwrap();
    let (owner, mut fired) = mpsc::unbounded_channel();
    run.attach(Arc::new(ChannelOwner(owner))).unwrap();
    let Resolution::Live { ordinal } = run.resolve(&timer(), &Scope::default()).unwrap() else {
        panic!()
    };
    run.record(
        RecordCommand::TimerStarted {
            ordinal,
            duration_ms: 0,
        },
        None,
    )
    .await
    .unwrap();
    assert_eq!(fired.recv().await, Some(ordinal));
    assert!(
        !run.evict(&[ordinal], &Scope::default(), false).unwrap(),
        "the outcome is there: take it"
    );
    assert!(run.timer_fired(ordinal).unwrap());
}

#[tokio::test]
async fn a_blocked_run_is_described_until_it_is_loaded_again() {
    let engine = memory_engine().await;
    let run = engine.start_workflow(start(Some("stuck"))).await.unwrap();
    let id = WorkflowId::new("stuck").unwrap();
    let blocked = Blocked {
        run_id: run.info().run_id,
        code: "AION-ND001".into(),
        message: "at command #0".into(),
        code_version: "v1".into(),
    };
    engine.block(&id, blocked.clone());
    assert_eq!(
        engine.describe(&id).await.unwrap().blocked,
        Some(blocked.clone())
    );
    let page = engine.runnable_page(None, 10).await.unwrap();
    assert_eq!(
        page.runs,
        vec![(
            engine.store().summary(&id).await.unwrap().unwrap(),
            Some(blocked)
        )]
    );
    engine.load_run(&id, None).await.unwrap();
    assert_eq!(engine.describe(&id).await.unwrap().blocked, None);
}

#[tokio::test]
async fn workflow_state_is_dropped_with_its_last_user() {
    let engine = memory_engine().await;
    let mut runs = Vec::new();
    for n in 0..50 {
        runs.push(
            engine
                .start_workflow(start(Some(&format!("w-{n}"))))
                .await
                .unwrap(),
        );
    }
    assert_eq!(engine.inner.cells.len(), 50);
    drop(runs);
    assert_eq!(
        engine.inner.cells.len(),
        0,
        "each cell removes itself, no scan needed"
    );
}
