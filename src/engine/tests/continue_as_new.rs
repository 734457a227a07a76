//! Continue-as-new through the engine on an SQLite file with a manual
//! clock: one append ends the run and starts its successor (deadline rows,
//! search attributes and waiting signals carried over), a retry finds the
//! successor instead of making another, runs are read one at a time, and
//! a successor without a process is what the reconciler's page lists.

use std::sync::Arc;

use tokio::runtime::Handle;

use super::{Quiet, payload, run_activity, sqlite_config, start};
use crate::engine::{
    ContinueAsNew, Continued, Engine, EngineError, RunHandle, RunOutcome, StartRequest, Timeouts,
};
use crate::event::{Event, SearchAttribute};
use crate::ids::WorkflowId;
use crate::replay::{CommandKind, CommandSpec, Inbox, Resolution, Scope};
use crate::status::{HistorySize, WorkflowStatus};
use crate::store::DEADLINE_COMMAND;
use crate::time::{ManualClock, Timestamp};

fn id(text: &str) -> WorkflowId {
    WorkflowId::new(text).unwrap()
}

fn again(input: u8) -> ContinueAsNew {
    ContinueAsNew {
        workflow_type: "Shop.Order".into(),
        input: payload(input),
    }
}

async fn open(dir: &tempfile::TempDir, clock: Arc<ManualClock>) -> Engine {
    Engine::open(
        sqlite_config(&dir.path().join("can.db"), clock),
        Arc::new(Quiet),
        Handle::current(),
    )
    .await
    .unwrap()
}

fn started(run: Continued) -> RunHandle {
    match run {
        Continued::Started(run) => run,
        other => panic!("expected a successor started, got {other:?}"),
    }
}

#[tokio::test]
async fn one_append_ends_the_run_and_starts_its_successor() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_000_000)));
    let engine = open(&dir, clock.clone()).await;
    let workflow = id("counter");
    let mut attributes = crate::visibility::SearchAttributes::new();
    attributes.insert("customer".into(), SearchAttribute::Text("ada".into()));
    let first = engine
        .start_workflow(StartRequest {
            timeouts: Timeouts {
                execution_ms: Some(60_000),
                run_ms: Some(5_000),
            },
            search_attributes: attributes.clone(),
            ..start(Some("counter"))
        })
        .await
        .unwrap();
    run_activity(&first, "Shop.count", payload(3)).await;
    // Two signals arrive; the code takes the first only.
    engine.signal(&workflow, "add", payload(10)).await.unwrap();
    engine.signal(&workflow, "add", payload(20)).await.unwrap();
    let scope = Scope::default();
    let taken = first.take_message(Inbox::Signal, "add", &scope).await;
    assert!(matches!(taken, Ok(crate::engine::Taken::Message { .. })));
    let first_id = first.info().run_id;

    clock.advance(std::time::Duration::from_secs(15));
    let second = started(
        engine
            .continue_as_new(&workflow, first_id, again(4))
            .await
            .unwrap(),
    );
    let second_id = second.info().run_id;
    assert_ne!(second_id, first_id);
    assert_eq!(second.info().input, payload(4));

    // The ending and the successor's start are adjacent events of one append.
    let history = engine.history(&workflow).await.unwrap();
    let at = history
        .iter()
        .position(|recorded| matches!(recorded.event, Event::WorkflowContinuedAsNew { .. }))
        .unwrap();
    let Event::WorkflowContinuedAsNew { new_run_id, .. } = &history[at].event else {
        unreachable!()
    };
    assert_eq!(*new_run_id, second_id);
    let Event::WorkflowStarted {
        run_id,
        parent_run_id,
        execution_timeout_ms,
        run_timeout_ms,
        search_attributes,
        ..
    } = &history[at + 1].event
    else {
        panic!("the successor's start follows the ending")
    };
    assert_eq!((*run_id, *parent_run_id), (second_id, Some(first_id)));
    // 15 s of the minute were spent; each run has its own 5 s.
    assert_eq!(
        (*execution_timeout_ms, *run_timeout_ms),
        (Some(45_000), Some(5_000))
    );
    assert_eq!(search_attributes, &attributes);
    assert_eq!(
        history[at].envelope.recorded_at,
        history[at + 1].envelope.recorded_at
    );
    // The signal not taken is the successor's, once.
    let carried: Vec<_> = history[at + 2..]
        .iter()
        .map(|recorded| &recorded.event)
        .collect();
    assert_eq!(
        carried,
        vec![&Event::SignalReceived {
            signal_name: "add".into(),
            payload: payload(20),
            sent_by: None,
        }]
    );
    let taken = second.take_message(Inbox::Signal, "add", &scope).await;
    assert!(
        matches!(taken, Ok(crate::engine::Taken::Message { ordinal: 0, ref payload, .. }) if *payload == super::payload(20))
    );

    // The successor's deadlines are the only timer rows, due from the
    // first run's start (the execution timeout) and its own (the run's).
    let timers = engine.store().timers_of(&workflow).await.unwrap();
    assert!(timers.iter().all(|timer| timer.command == DEADLINE_COMMAND));
    let mut due: Vec<i64> = timers
        .iter()
        .map(|timer| timer.fire_at.as_micros() / 1000)
        .collect();
    due.sort_unstable();
    assert_eq!(due, vec![1_020_000, 1_060_000]);

    let runs = engine.runs(&workflow).await.unwrap();
    assert_eq!(
        runs.iter()
            .map(|run| (run.run_id, run.parent_run_id, run.status))
            .collect::<Vec<_>>(),
        vec![
            (first_id, None, WorkflowStatus::ContinuedAsNew),
            (second_id, Some(first_id), WorkflowStatus::Running),
        ]
    );
    assert_eq!(engine.terminal(&workflow).await.unwrap(), None);
}

#[tokio::test]
async fn asking_again_finds_the_successor_and_an_ended_run_stays_ended() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_000)));
    let engine = open(&dir, clock).await;
    let workflow = id("retry");
    let first = engine.start_workflow(start(Some("retry"))).await.unwrap();
    let first_id = first.info().run_id;
    let second = started(
        engine
            .continue_as_new(&workflow, first_id, again(2))
            .await
            .unwrap(),
    );
    let head = engine.history(&workflow).await.unwrap().len();
    match engine
        .continue_as_new(&workflow, first_id, again(9))
        .await
        .unwrap()
    {
        Continued::Already {
            new_run_id,
            workflow_type,
        } => {
            assert_eq!(new_run_id, second.info().run_id);
            assert_eq!(workflow_type, "Shop.Order");
        }
        other => panic!("expected the recorded successor, got {other:?}"),
    }
    assert_eq!(engine.history(&workflow).await.unwrap().len(), head);
    assert_eq!(engine.runs(&workflow).await.unwrap().len(), 2);

    // A run terminated first is not continued.
    engine.terminate(&workflow, payload(7)).await.unwrap();
    match engine
        .continue_as_new(&workflow, second.info().run_id, again(3))
        .await
        .unwrap()
    {
        Continued::Ended(terminal) => assert_eq!(terminal.status, WorkflowStatus::Terminated),
        other => panic!("expected the run's ending, got {other:?}"),
    }
    assert!(matches!(
        engine
            .continue_as_new(&id("nobody"), first_id, again(1))
            .await,
        Err(EngineError::NotFound { .. })
    ));
}

#[tokio::test]
async fn a_successor_without_a_process_is_runnable_and_loads_alone() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_000)));
    let engine = open(&dir, clock).await;
    let workflow = id("chain");
    let mut run = engine.start_workflow(start(Some("chain"))).await.unwrap();
    for step in 0..20u8 {
        run_activity(&run, "Shop.step", payload(step)).await;
        run = started(
            engine
                .continue_as_new(&workflow, run.info().run_id, again(step))
                .await
                .unwrap(),
        );
    }
    let last = run.info().run_id;
    // A crash right after the append: the successor has no process.
    drop(run);
    let page = engine.runnable_page(None, 10).await.unwrap();
    assert_eq!(page.runs.len(), 1);
    assert_eq!(page.runs[0].0.run_id, last);

    // Loading it reads its own segment only: its start and nothing else.
    let loaded = engine.load_run(&workflow, None).await.unwrap();
    assert_eq!(loaded.info().run_id, last);
    assert_eq!(loaded.info().input, payload(19));
    let described = engine.describe(&workflow, None).await.unwrap();
    assert_eq!(described.history_size.events, 1);
    assert!(described.run.parent_run_id.is_some());
    assert_eq!(engine.runs(&workflow).await.unwrap().len(), 21);

    // An older run, by id: its own events, its own ending.
    let runs = engine.runs(&workflow).await.unwrap();
    let third = engine
        .describe(&workflow, Some(runs[2].run_id))
        .await
        .unwrap();
    assert_eq!(third.summary.status, WorkflowStatus::ContinuedAsNew);
    // started, activity scheduled and completed, continued as new.
    assert_eq!(third.history_size.events, 4);
    assert!(third.pending.is_empty());
    let read_only = engine
        .load_readonly(&workflow, Some(runs[2].run_id))
        .await
        .unwrap();
    assert_eq!(read_only.status(), WorkflowStatus::ContinuedAsNew);
    assert_eq!(read_only.info().input, payload(1));
    let unknown = crate::ids::RunId::generate();
    assert!(matches!(
        engine.describe(&workflow, Some(unknown)).await,
        Err(EngineError::RunNotFound { .. })
    ));

    // The last run completes: the workflow's ending is its own.
    engine
        .complete_run(&workflow, last, RunOutcome::Completed(payload(42)))
        .await
        .unwrap();
    let terminal = engine.terminal(&workflow).await.unwrap().unwrap();
    assert_eq!(
        (terminal.run_id, terminal.status, terminal.value),
        (last, WorkflowStatus::Completed, Some(payload(42)))
    );
}

#[tokio::test]
async fn history_size_is_what_the_code_has_seen_and_replays_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_000)));
    let engine = open(&dir, clock).await;
    let workflow = id("sized");
    let run = engine.start_workflow(start(Some("sized"))).await.unwrap();
    // workflow_started carries the 3-byte input.
    assert_eq!(
        run.history_size().unwrap(),
        HistorySize {
            events: 1,
            bytes: 3
        }
    );
    run_activity(&run, "Shop.step", payload(5)).await;
    // Up to the activity's scheduling (its input); not its completion yet.
    let live = run.history_size().unwrap();
    assert_eq!(
        live,
        HistorySize {
            events: 2,
            bytes: 6
        }
    );
    // A signal arrives, not taken: not seen.
    engine.signal(&workflow, "late", payload(1)).await.unwrap();
    assert_eq!(run.history_size().unwrap(), live);
    drop(run);

    let replay = engine.load_run(&workflow, None).await.unwrap();
    let spec = CommandSpec::new(CommandKind::Activity, "Shop.step");
    assert!(matches!(
        replay.resolve(&spec, &Scope::default()).unwrap(),
        Resolution::Replayed { .. }
    ));
    assert_eq!(replay.history_size().unwrap(), live);
    let described = engine.describe(&workflow, None).await.unwrap();
    assert_eq!(
        described.history_size,
        HistorySize {
            events: 4,
            bytes: 12
        }
    );
}
