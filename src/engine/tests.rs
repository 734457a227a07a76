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
    memory_engine_hearing(Arc::new(Quiet)).await
}

async fn memory_engine_hearing(listener: Arc<dyn EngineListener>) -> Engine {
    Engine::open(
        EngineConfig::new(StoreConfig::Memory),
        listener,
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
        timeouts: Default::default(),
        id_reuse: Default::default(),
        search_attributes: Default::default(),
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
    run.record(
        RecordCommand::ActivityCompleted {
            ordinal,
            result,
            attempt: 1,
            last_failure: None,
        },
        None,
    )
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
                attempt: 1,
                last_failure: None,
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
                attempt: 1,
                last_failure: None,
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
    let described = engine.describe(&id, None).await.unwrap();
    assert_eq!(engine.runs(&id).await.unwrap().len(), 2);
    assert_eq!(described.run.run_id, second.info().run_id);
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
        .describe(&WorkflowId::new("sleepy").unwrap(), None)
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

/// Hears wake-ups ("id type") and endings, on the channels it was given.
#[derive(Default)]
struct Heard {
    wakes: Option<mpsc::UnboundedSender<String>>,
    endings: Option<mpsc::UnboundedSender<(WorkflowId, Terminal)>>,
}

impl Heard {
    fn wakes(wakes: mpsc::UnboundedSender<String>) -> Arc<Self> {
        Arc::new(Heard {
            wakes: Some(wakes),
            ..Heard::default()
        })
    }

    fn endings(endings: mpsc::UnboundedSender<(WorkflowId, Terminal)>) -> Arc<Self> {
        Arc::new(Heard {
            endings: Some(endings),
            ..Heard::default()
        })
    }
}

impl EngineListener for Heard {
    fn warning(&self, message: &str) {
        eprintln!("engine warning: {message}");
    }

    fn wake(&self, workflow_id: &WorkflowId, workflow_type: &str) {
        if let Some(wakes) = &self.wakes {
            let _ = wakes.send(format!("{workflow_id} {workflow_type}"));
        }
    }

    fn fatal(&self, message: &str) {
        panic!("engine failed: {message}");
    }

    fn ended(&self, workflow_id: &WorkflowId, terminal: &Terminal) {
        if let Some(endings) = &self.endings {
            let _ = endings.send((workflow_id.clone(), terminal.clone()));
        }
    }
}

#[tokio::test]
async fn an_evicted_run_is_woken_by_its_timer_and_replays_it_fired() {
    let (wakes, mut woken) = mpsc::unbounded_channel();
    let engine = memory_engine_hearing(Heard::wakes(wakes)).await;
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

/// Records a timer of `duration_ms` live through `run`.
async fn start_timer(run: &RunHandle, duration_ms: u64) {
    let Resolution::Live { ordinal } = run.resolve(&timer(), &Scope::default()).unwrap() else {
        panic!("expected a live timer");
    };
    run.record(
        RecordCommand::TimerStarted {
            ordinal,
            duration_ms,
        },
        None,
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn recovery_wakes_a_run_with_a_future_timer_only_if_it_has_more_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("aion.db");
    let engine = Engine::open(
        sqlite_config(&path, Arc::new(SystemClock)),
        Arc::new(Quiet),
        Handle::current(),
    )
    .await
    .unwrap();
    let id = |id: &str| WorkflowId::new(id).unwrap();
    for name in ["asleep", "racing", "cancelled", "signalled"] {
        let run = engine.start_workflow(start(Some(name))).await.unwrap();
        if name == "racing" {
            let Resolution::Live { ordinal } =
                run.resolve(&activity("slow"), &Scope::default()).unwrap()
            else {
                panic!()
            };
            run.record(
                RecordCommand::ActivityScheduled {
                    ordinal,
                    activity_type: "slow".into(),
                    input: payload(0),
                },
                None,
            )
            .await
            .unwrap();
        }
        start_timer(&run, 3_600_000).await;
    }
    engine.cancel(&id("cancelled"), payload(2)).await.unwrap();
    engine
        .signal(&id("signalled"), "go", payload(3))
        .await
        .unwrap();
    // The VM dies: no process ever saw the activity, the request, the signal.
    engine.close().await;

    let (wakes, mut woken) = mpsc::unbounded_channel();
    let engine = Engine::open(
        sqlite_config(&path, Arc::new(SystemClock)),
        Heard::wakes(wakes),
        Handle::current(),
    )
    .await
    .unwrap();
    let report = engine.recover().await.unwrap();
    assert_eq!((report.timers_armed, report.runs_woken), (4, 3));
    let mut names = Vec::new();
    while let Ok(wake) = woken.try_recv() {
        names.push(wake);
    }
    names.sort();
    assert_eq!(
        names,
        [
            "cancelled Shop.Order",
            "racing Shop.Order",
            "signalled Shop.Order"
        ]
    );
    // Each sleeps on a timer, so none is in the runnable list.
    assert!(
        engine
            .runnable_page(None, 10)
            .await
            .unwrap()
            .runs
            .is_empty()
    );
    engine.close().await;
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
        engine.describe(&id, None).await.unwrap().blocked,
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
    assert_eq!(engine.describe(&id, None).await.unwrap().blocked, None);
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

struct NoticeOwner(mpsc::UnboundedSender<Notice>);
impl RunOwner for NoticeOwner {
    fn notify(&self, notice: Notice) {
        let _ = self.0.send(notice);
    }
}

fn with_timeouts(id: &str, timeouts: Timeouts) -> StartRequest {
    StartRequest {
        timeouts,
        ..start(Some(id))
    }
}

#[tokio::test]
async fn terminate_ends_the_run_now_and_tells_its_owner_and_the_listener() {
    let (ended_tx, mut ended) = mpsc::unbounded_channel();
    let engine = memory_engine_hearing(Heard::endings(ended_tx)).await;
    let id = WorkflowId::new("doomed").unwrap();
    let run = engine.start_workflow(start(Some("doomed"))).await.unwrap();
    let (owner, mut notices) = mpsc::unbounded_channel();
    run.attach(Arc::new(NoticeOwner(owner))).unwrap();
    start_timer(&run, 3_600_000).await;

    let terminal = engine.terminate(&id, payload(9)).await.unwrap();
    assert_eq!(terminal.status, WorkflowStatus::Terminated);
    assert_eq!(terminal.value, Some(payload(9)));
    assert_eq!(notices.recv().await, Some(Notice::Ended));
    assert_eq!(ended.recv().await, Some((id.clone(), terminal.clone())));
    assert_eq!(engine.terminal(&id).await.unwrap(), Some(terminal));
    let history = engine.history(&id).await.unwrap();
    assert_eq!(
        history.last().unwrap().event,
        Event::WorkflowTerminated { reason: payload(9) }
    );
    assert!(engine.store().pending_timers().await.unwrap().is_empty());

    // The run's code can record nothing more, and the ending stays.
    let Err(EngineError::Superseded { .. }) = run.resolve(&timer(), &Scope::default()) else {
        panic!("a terminated run must refuse commands")
    };
    assert!(matches!(
        engine.terminate(&id, payload(1)).await,
        Err(EngineError::NotRunning {
            status: WorkflowStatus::Terminated,
            ..
        })
    ));
    let kept = engine
        .complete_run(&id, run.info().run_id, RunOutcome::Completed(payload(2)))
        .await
        .unwrap();
    assert_eq!(kept.status, WorkflowStatus::Terminated);
    assert!(matches!(
        engine
            .terminate(&WorkflowId::new("nobody").unwrap(), payload(1))
            .await,
        Err(EngineError::NotFound { .. })
    ));
}

#[tokio::test]
async fn a_run_timeout_ends_a_live_run_timed_out() {
    let (ended_tx, mut ended) = mpsc::unbounded_channel();
    let engine = memory_engine_hearing(Heard::endings(ended_tx)).await;
    let timeouts = Timeouts {
        execution_ms: Some(3_600_000),
        run_ms: Some(30),
    };
    let run = engine
        .start_workflow(with_timeouts("slow", timeouts))
        .await
        .unwrap();
    let (owner, mut notices) = mpsc::unbounded_channel();
    run.attach(Arc::new(NoticeOwner(owner))).unwrap();
    start_timer(&run, 3_600_000).await;

    assert_eq!(notices.recv().await, Some(Notice::Ended));
    let (id, terminal) = ended.recv().await.unwrap();
    assert_eq!(
        (id.as_str(), terminal.status),
        ("slow", WorkflowStatus::TimedOut)
    );
    let history = engine.history(&id).await.unwrap();
    assert!(matches!(
        history[0].event,
        Event::WorkflowStarted {
            execution_timeout_ms: Some(3_600_000),
            run_timeout_ms: Some(30),
            ..
        }
    ));
    assert!(matches!(
        history.last().unwrap().event,
        Event::WorkflowTimedOut { timeout_ms } if (30..1_000).contains(&timeout_ms)
    ));
    assert!(engine.store().pending_timers().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_run_that_ends_in_time_disarms_its_deadlines() {
    let engine = memory_engine().await;
    let timeouts = Timeouts {
        execution_ms: Some(3_600_000),
        run_ms: Some(3_600_000),
    };
    let run = engine
        .start_workflow(with_timeouts("prompt", timeouts))
        .await
        .unwrap();
    engine.inner.wheel.flush().await;
    assert_eq!(engine.inner.wheel.len(), 2);
    engine
        .complete_run(
            &WorkflowId::new("prompt").unwrap(),
            run.info().run_id,
            RunOutcome::Completed(payload(0)),
        )
        .await
        .unwrap();
    engine.inner.wheel.flush().await;
    assert_eq!(engine.inner.wheel.len(), 0);
    assert!(engine.store().pending_timers().await.unwrap().is_empty());
}

#[tokio::test]
async fn an_execution_timeout_holds_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("aion.db");
    let clock = ManualClock::new(SystemClock.now());
    let open = |clock: ManualClock| {
        let path = path.clone();
        async move {
            Engine::open(
                sqlite_config(&path, Arc::new(clock)),
                Arc::new(Quiet),
                Handle::current(),
            )
            .await
            .unwrap()
        }
    };
    let engine = open(clock.clone()).await;
    let timeouts = Timeouts {
        execution_ms: Some(60_000),
        run_ms: None,
    };
    engine
        .start_workflow(with_timeouts("bounded", timeouts))
        .await
        .unwrap();
    engine.close().await;

    // Restarted before the deadline: the run needs a process (its deadline
    // is no sleep), and the deadline is armed again.
    let engine = open(clock.clone()).await;
    let report = engine.recover().await.unwrap();
    assert_eq!((report.timers_fired, report.timers_armed), (0, 1));
    let page = engine.runnable_page(None, 10).await.unwrap();
    assert_eq!(page.runs.len(), 1);
    engine.close().await;

    // Restarted after it: recovery ends the run.
    clock.advance(Duration::from_secs(61));
    let engine = open(clock).await;
    let report = engine.recover().await.unwrap();
    assert_eq!(report.timers_fired, 1);
    let id = WorkflowId::new("bounded").unwrap();
    let terminal = engine.terminal(&id).await.unwrap().unwrap();
    assert_eq!(terminal.status, WorkflowStatus::TimedOut);
    assert_eq!(
        engine.history(&id).await.unwrap().last().unwrap().event,
        Event::WorkflowTimedOut { timeout_ms: 60_000 }
    );
    assert!(
        engine
            .runnable_page(None, 10)
            .await
            .unwrap()
            .runs
            .is_empty()
    );
    engine.close().await;
}

#[tokio::test]
async fn a_run_evicted_while_waiting_for_a_signal_is_left_alone_until_one_comes() {
    let (wakes_tx, mut wakes) = mpsc::unbounded_channel();
    let engine = memory_engine_hearing(Heard::wakes(wakes_tx)).await;
    let id = WorkflowId::new("listening").unwrap();
    let run = engine
        .start_workflow(start(Some("listening")))
        .await
        .unwrap();
    let runnable = |engine: Engine| async move {
        let page = engine.runnable_page(None, 10).await.unwrap();
        page.runs
            .into_iter()
            .map(|(summary, _)| summary.workflow_id.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(runnable(engine.clone()).await, ["listening"]);

    let taken = run
        .take_message(crate::replay::Inbox::Signal, "go", &Scope::default())
        .await
        .unwrap();
    assert_eq!(taken, Taken::Waiting);
    assert!(run.evict(&[], &Scope::default(), true).unwrap());
    assert!(engine.is_parked(&id));
    assert!(
        runnable(engine.clone()).await.is_empty(),
        "a parked run needs no process"
    );

    engine.signal(&id, "go", payload(1)).await.unwrap();
    assert_eq!(wakes.recv().await.as_deref(), Some("listening Shop.Order"));
    assert!(!engine.is_parked(&id));
    assert_eq!(runnable(engine.clone()).await, ["listening"]);

    // Loading it again unparks it too (a restart's recovery, a sweep).
    let run = engine.load_run(&id, None).await.unwrap();
    run.take_message(crate::replay::Inbox::Signal, "go", &Scope::default())
        .await
        .unwrap();
    let taken = run
        .take_message(crate::replay::Inbox::Signal, "again", &Scope::default())
        .await
        .unwrap();
    assert_eq!(taken, Taken::Waiting);
    assert!(run.evict(&[], &Scope::default(), true).unwrap());
    assert!(engine.is_parked(&id));
    engine.load_run(&id, None).await.unwrap();
    assert!(!engine.is_parked(&id));
}

mod children;
mod continue_as_new;
mod prefix_replay;
mod reset;
mod search;

#[tokio::test]
async fn id_reuse_policies_decide_whether_a_finished_id_starts_again() {
    let engine = memory_engine().await;
    let finish = |id: &'static str, outcome: RunOutcome| {
        let engine = engine.clone();
        async move {
            let run = engine.start_workflow(start(Some(id))).await.unwrap();
            engine
                .complete_run(&WorkflowId::new(id).unwrap(), run.info().run_id, outcome)
                .await
                .unwrap();
        }
    };
    finish("done", RunOutcome::Completed(payload(1))).await;
    finish("broke", RunOutcome::Failed(payload(2))).await;
    let again = |id: &str, id_reuse: IdReuse| StartRequest {
        id_reuse,
        ..start(Some(id))
    };

    for id in ["done", "broke"] {
        let refused = engine
            .start_workflow(again(id, IdReuse::RejectDuplicate))
            .await;
        assert!(
            matches!(&refused, Err(error @ EngineError::IdReuseRefused { .. }) if error.kind() == "already_started"),
            "{id}: {:?}",
            refused.err()
        );
    }
    assert!(matches!(
        engine
            .start_workflow(again("done", IdReuse::AllowDuplicateFailedOnly))
            .await,
        Err(EngineError::IdReuseRefused {
            status: WorkflowStatus::Completed,
            ..
        })
    ));
    let rerun = engine
        .start_workflow(again("broke", IdReuse::AllowDuplicateFailedOnly))
        .await
        .unwrap();
    // Running now: no policy reuses a running id.
    assert!(matches!(
        engine
            .start_workflow(again("broke", IdReuse::AllowDuplicate))
            .await,
        Err(EngineError::AlreadyStarted { run_id, .. }) if run_id == rerun.info().run_id
    ));
    engine
        .start_workflow(again("done", IdReuse::AllowDuplicate))
        .await
        .unwrap();
    // A refused start wrote nothing.
    let history = engine
        .history(&WorkflowId::new("done").unwrap())
        .await
        .unwrap();
    assert_eq!(
        history
            .iter()
            .filter(|event| matches!(event.event, Event::WorkflowStarted { .. }))
            .count(),
        2
    );
}
