//! Resets through the engine: what the one append holds (the old run's
//! ending, the new run's start and copies, signals after the point), what
//! the new run replays, and what a reset refuses.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::{
    Heard, NoticeOwner, activity, memory_engine, memory_engine_hearing, payload, run_activity,
    start, start_timer, timer,
};
use crate::engine::{
    ContinueAsNew, EngineError, Notice, RecordCommand, ResetRequest, ResetTo, RunHandle,
    RunOutcome, Taken,
};
use crate::event::{Event, ResetPoint};
use crate::ids::{TimerId, WorkflowId};
use crate::replay::{Inbox, Outcome, Resolution, Scope};
use crate::status::WorkflowStatus;

fn to(to: ResetTo) -> ResetRequest {
    ResetRequest {
        run_id: None,
        to,
        terminate_running: false,
    }
}

/// Schedules activity `name` live and fails it for good.
async fn fail_activity(run: &RunHandle, name: &str) {
    let Resolution::Live { ordinal } = run.resolve(&activity(name), &Scope::default()).unwrap()
    else {
        panic!("expected a live activity");
    };
    for command in [
        RecordCommand::ActivityScheduled {
            ordinal,
            activity_type: name.into(),
            input: payload(0),
        },
        RecordCommand::ActivityFailed {
            ordinal,
            error: payload(66),
            attempts: 1,
        },
    ] {
        run.record(command, None).await.unwrap();
    }
}

#[tokio::test]
async fn a_failed_run_resets_to_its_last_completed_activity() {
    let engine = memory_engine().await;
    let id = WorkflowId::new("order").unwrap();
    let run = engine.start_workflow(start(Some("order"))).await.unwrap();
    let old_run = run.info().run_id;
    run_activity(&run, "Shop.reserve", payload(7)).await;
    fail_activity(&run, "Shop.charge").await;
    engine
        .complete_run(&id, old_run, RunOutcome::Failed(payload(66)))
        .await
        .unwrap();

    let done = engine
        .reset(&id, to(ResetTo::LastCompletedActivity))
        .await
        .unwrap();
    // 1 started, 2 scheduled, 3 completed, 4 scheduled, 5 failed, 6 workflow_failed.
    assert_eq!(
        done.from,
        ResetPoint {
            run_id: old_run,
            seq: 3
        }
    );
    assert!(!done.terminated);
    let history = engine.history(&id).await.unwrap();
    let new_run: Vec<_> = history[6..].iter().map(|r| (r.seq(), &r.event)).collect();
    assert_eq!(new_run.len(), 3);
    assert!(matches!(
        new_run[0],
        (7, Event::WorkflowStarted { run_id, reset_from: Some(from), workflow_type, .. })
            if *run_id == done.run_id && *from == done.from && workflow_type == "Shop.Order"
    ));
    assert_eq!(new_run[2].1, &history[2].event);
    let described = engine.describe(&id, None).await.unwrap();
    assert_eq!(described.summary.status, WorkflowStatus::Running);
    assert_eq!(described.reset_from, Some(done.from));
    let old = engine.describe(&id, Some(old_run)).await.unwrap();
    assert_eq!(old.reset_from, None);
    let origins: Vec<_> = engine
        .runs_with_origins(&id)
        .await
        .unwrap()
        .into_iter()
        .map(|(run, origin)| (run.run_id, origin))
        .collect();
    assert_eq!(origins, [(old_run, None), (done.run_id, Some(done.from))]);

    // The new run replays the completed activity, then goes live.
    let again = engine.load_run(&id, None).await.unwrap();
    assert_eq!(again.info().run_id, done.run_id);
    assert_eq!(
        again
            .resolve(&activity("Shop.reserve"), &Scope::default())
            .unwrap(),
        Resolution::Replayed {
            ordinal: 0,
            outcome: Outcome::Completed(payload(7))
        }
    );
    assert_eq!(
        again
            .resolve(&activity("Shop.charge"), &Scope::default())
            .unwrap(),
        Resolution::Live { ordinal: 1 }
    );

    // Its successor by continue-as-new was not started by a reset.
    engine
        .continue_as_new(
            &id,
            done.run_id,
            ContinueAsNew {
                workflow_type: "Shop.Order".into(),
                input: payload(2),
            },
        )
        .await
        .unwrap();
    let history = engine.history(&id).await.unwrap();
    assert!(matches!(
        &history.last().unwrap().event,
        Event::WorkflowStarted { reset_from: None, parent_run_id: Some(parent), .. } if *parent == done.run_id
    ));
}

#[tokio::test]
async fn reset_to_start_or_to_a_seq_copies_up_to_the_point_and_pending_work_runs_again() {
    let engine = memory_engine().await;
    let id = WorkflowId::new("seqs").unwrap();
    let run = engine.start_workflow(start(Some("seqs"))).await.unwrap();
    run_activity(&run, "A", payload(1)).await;
    fail_activity(&run, "B").await;
    engine
        .complete_run(&id, run.info().run_id, RunOutcome::Failed(payload(0)))
        .await
        .unwrap();

    // To seq 4 (B scheduled): B is pending in the new run.
    let done = engine.reset(&id, to(ResetTo::Seq(4))).await.unwrap();
    let again = engine.load_run(&id, None).await.unwrap();
    again.resolve(&activity("A"), &Scope::default()).unwrap();
    assert!(matches!(
        again.resolve(&activity("B"), &Scope::default()).unwrap(),
        Resolution::Pending { ordinal: 1, .. }
    ));
    engine
        .complete_run(&id, done.run_id, RunOutcome::Failed(payload(0)))
        .await
        .unwrap();

    // To the start: only the start is kept.
    let fresh = engine.reset(&id, to(ResetTo::Start)).await.unwrap();
    let history = engine.history(&id).await.unwrap();
    assert!(matches!(
        &history.last().unwrap().event,
        Event::WorkflowStarted { run_id, reset_from: Some(ResetPoint { run_id: from, .. }), .. }
            if *run_id == fresh.run_id && *from == done.run_id
    ));
    let again = engine.load_run(&id, None).await.unwrap();
    assert_eq!(
        again.resolve(&activity("A"), &Scope::default()).unwrap(),
        Resolution::Live { ordinal: 0 }
    );
}

#[tokio::test]
async fn a_running_run_is_reset_only_when_it_may_be_terminated() {
    let (ended_tx, mut ended) = mpsc::unbounded_channel();
    let engine = memory_engine_hearing(Heard::endings(ended_tx)).await;
    let id = WorkflowId::new("busy").unwrap();
    let run = engine.start_workflow(start(Some("busy"))).await.unwrap();
    let (owner, mut notices) = mpsc::unbounded_channel();
    run.attach(Arc::new(NoticeOwner(owner))).unwrap();
    run_activity(&run, "A", payload(1)).await;
    // A signal taken before the point, one waiting at it, one after it.
    engine.signal(&id, "go", payload(10)).await.unwrap();
    let Taken::Message { payload: first, .. } = run
        .take_message(Inbox::Signal, "go", &Scope::default())
        .await
        .unwrap()
    else {
        panic!("expected the first signal")
    };
    assert_eq!(first, payload(10));
    engine.signal(&id, "go", payload(11)).await.unwrap();
    let point = engine.history(&id).await.unwrap().last().unwrap().seq();
    start_timer(&run, 3_600_000).await;
    engine.signal(&id, "go", payload(12)).await.unwrap();

    let refused = engine.reset(&id, to(ResetTo::Seq(point))).await;
    assert!(
        matches!(refused, Err(EngineError::ResetRefused { .. })),
        "{refused:?}"
    );
    let head = engine.history(&id).await.unwrap().len();

    let done = engine
        .reset(
            &id,
            ResetRequest {
                run_id: None,
                to: ResetTo::Seq(point),
                terminate_running: true,
            },
        )
        .await
        .unwrap();
    assert!(done.terminated);
    // (After the notices of the signals' arrivals.)
    while let Some(notice) = notices.recv().await {
        if notice == Notice::Ended {
            break;
        }
        assert_eq!(notice, Notice::Inbox);
    }
    assert!(
        ended.try_recv().is_err(),
        "awaiters wait for the new run's ending, not the reset one's"
    );
    let history = engine.history(&id).await.unwrap();
    assert_eq!(
        history[head].event,
        Event::WorkflowTerminated {
            reason: crate::payload::Payload::etf_atom("reset")
        }
    );
    // The old run's timer is gone with it; the new run has none (it was
    // started after the point).
    assert!(engine.store().pending_timers().await.unwrap().is_empty());
    assert!(matches!(
        run.resolve(&timer(), &Scope::default()),
        Err(EngineError::Superseded { .. })
    ));

    // The new run takes the same first signal (replayed), then the one
    // waiting at the point, then the one received after it.
    let again = engine.load_run(&id, None).await.unwrap();
    again.resolve(&activity("A"), &Scope::default()).unwrap();
    let mut taken = Vec::new();
    for _ in 0..3 {
        match again
            .take_message(Inbox::Signal, "go", &Scope::default())
            .await
            .unwrap()
        {
            Taken::Message { payload, .. } => taken.push(payload),
            other => panic!("expected a signal, got {other:?}"),
        }
    }
    assert_eq!(taken, [payload(10), payload(11), payload(12)]);
    let consumed: Vec<u64> = engine
        .history(&id)
        .await
        .unwrap()
        .iter()
        .filter(|r| r.seq() > head as u64)
        .filter_map(|r| match &r.event {
            Event::SignalConsumed { received_seq, .. } => Some(*received_seq),
            _ => None,
        })
        .collect();
    assert!(
        consumed.iter().all(|seq| *seq > head as u64 + 1),
        "every signal the new run takes is one of its own events: {consumed:?}"
    );
}

#[tokio::test]
async fn a_copied_timer_is_the_new_runs_and_fires_in_it() {
    let engine = memory_engine().await;
    let id = WorkflowId::new("nap").unwrap();
    let run = engine.start_workflow(start(Some("nap"))).await.unwrap();
    start_timer(&run, 50).await;
    let point = engine.history(&id).await.unwrap().last().unwrap().seq();
    engine.terminate(&id, payload(0)).await.unwrap();

    let done = engine.reset(&id, to(ResetTo::Seq(point))).await.unwrap();
    let timers = engine.store().pending_timers().await.unwrap();
    assert_eq!(timers.len(), 1);
    assert_eq!(timers[0].timer_id, TimerId::for_command(done.run_id, 0));
    // The wheel fires it in the new run.
    let fired = loop {
        let history = engine.history(&id).await.unwrap();
        if let Some(last) = history.last()
            && let Event::TimerFired { timer_id, .. } = &last.event
        {
            break timer_id.clone();
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    assert_eq!(fired, TimerId::for_command(done.run_id, 0));
    let again = engine.load_run(&id, None).await.unwrap();
    assert_eq!(
        again.resolve(&timer(), &Scope::default()).unwrap(),
        Resolution::Replayed {
            ordinal: 0,
            outcome: Outcome::Fired
        }
    );
}

#[tokio::test]
async fn bad_resets_are_refused_and_record_nothing() {
    let engine = memory_engine().await;
    let nobody = WorkflowId::new("nobody").unwrap();
    assert!(matches!(
        engine.reset(&nobody, to(ResetTo::Start)).await,
        Err(EngineError::NotFound { .. })
    ));

    let id = WorkflowId::new("done").unwrap();
    let run = engine.start_workflow(start(Some("done"))).await.unwrap();
    run_activity(&run, "A", payload(1)).await;
    engine
        .complete_run(&id, run.info().run_id, RunOutcome::Completed(payload(2)))
        .await
        .unwrap();
    let refused = engine.reset(&id, to(ResetTo::Start)).await.unwrap_err();
    assert!(matches!(refused, EngineError::ResetRefused { .. }));
    assert_eq!(refused.kind(), "reset_refused");

    let id = WorkflowId::new("failed").unwrap();
    let run = engine.start_workflow(start(Some("failed"))).await.unwrap();
    engine
        .complete_run(&id, run.info().run_id, RunOutcome::Failed(payload(2)))
        .await
        .unwrap();
    let before = engine.history(&id).await.unwrap();
    for bad in [
        ResetTo::Seq(2),
        ResetTo::Seq(99),
        ResetTo::LastCompletedActivity,
    ] {
        let error = engine.reset(&id, to(bad)).await.unwrap_err();
        assert!(
            matches!(error, EngineError::InvalidResetPoint { .. }),
            "{bad:?}: {error:?}"
        );
        assert_eq!(error.kind(), "invalid_option");
    }
    assert_eq!(engine.history(&id).await.unwrap(), before);
    // Its start is a point (the same as :start).
    engine.reset(&id, to(ResetTo::Seq(1))).await.unwrap();
}

#[tokio::test]
async fn an_older_run_may_be_the_source_and_a_running_latest_run_is_terminated() {
    let engine = memory_engine().await;
    let id = WorkflowId::new("older").unwrap();
    let run = engine.start_workflow(start(Some("older"))).await.unwrap();
    let first = run.info().run_id;
    run_activity(&run, "A", payload(1)).await;
    fail_activity(&run, "B").await;
    engine
        .complete_run(&id, first, RunOutcome::Failed(payload(0)))
        .await
        .unwrap();
    // A reset that runs (it is the latest run).
    let second = engine.reset(&id, to(ResetTo::Start)).await.unwrap();

    let older = |run_id, terminate_running| ResetRequest {
        run_id: Some(run_id),
        to: ResetTo::LastCompletedActivity,
        terminate_running,
    };
    assert!(matches!(
        engine.reset(&id, older(first, false)).await,
        Err(EngineError::ResetRefused { .. })
    ));
    let unknown = crate::ids::RunId::generate();
    assert!(matches!(
        engine.reset(&id, older(unknown, true)).await,
        Err(EngineError::RunNotFound { .. })
    ));

    let third = engine.reset(&id, older(first, true)).await.unwrap();
    assert_eq!(
        third.from,
        ResetPoint {
            run_id: first,
            seq: 3
        }
    );
    assert!(third.terminated);
    let runs = engine.runs(&id).await.unwrap();
    let statuses: Vec<_> = runs.iter().map(|run| (run.run_id, run.status)).collect();
    assert_eq!(
        statuses,
        [
            (first, WorkflowStatus::Failed),
            (second.run_id, WorkflowStatus::Terminated),
            (third.run_id, WorkflowStatus::Running)
        ]
    );
    let again = engine.load_run(&id, None).await.unwrap();
    assert_eq!(
        again.resolve(&activity("A"), &Scope::default()).unwrap(),
        Resolution::Replayed {
            ordinal: 0,
            outcome: Outcome::Completed(payload(1))
        }
    );

    // An older run that completed is no source.
    engine
        .complete_run(&id, third.run_id, RunOutcome::Completed(payload(5)))
        .await
        .unwrap();
    engine.reset(&id, older(first, false)).await.unwrap();
    assert!(matches!(
        engine.reset(&id, older(third.run_id, true)).await,
        Err(EngineError::ResetRefused { .. })
    ));
}
