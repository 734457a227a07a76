//! Child workflows and signals between workflows through the engine: a
//! child recorded then started, its ending recorded once in its parent
//! (also when it is reported twice, or found by the parent's replay), a
//! child that never started started by the replay, parent close policies,
//! and a signal delivered again after a crash only if it was lost.

use super::{memory_engine, payload, start};
use crate::engine::{ChildStart, Engine, RunHandle, RunOutcome, SignalSend};
use crate::event::{Event, ParentClose};
use crate::ids::WorkflowId;
use crate::replay::{ChildStarted, CommandKind, CommandSpec, Outcome, Resolution, Scope, Settled};
use crate::status::WorkflowStatus;

fn child(id: &str, parent_close: ParentClose) -> ChildStarted {
    ChildStarted {
        workflow_id: WorkflowId::new(id).unwrap(),
        workflow_type: "Shop.Child".into(),
        input: payload(3),
        run_id: None,
        parent_close,
        execution_timeout_ms: None,
        run_timeout_ms: None,
        id_reuse: None,
        search_attributes: Default::default(),
    }
}

fn child_spec() -> CommandSpec {
    CommandSpec::new(CommandKind::ChildWorkflow, "Shop.Child")
}

/// Starts a parent and, live, its child `id` as command #0.
async fn parent_with_child(
    engine: &Engine,
    id: &str,
    policy: ParentClose,
) -> (RunHandle, RunHandle) {
    let parent = engine.start_workflow(start(Some("parent"))).await.unwrap();
    let Resolution::Live { ordinal } = parent.resolve(&child_spec(), &Scope::default()).unwrap()
    else {
        panic!("expected a live child command");
    };
    let started = parent
        .start_child(ordinal, child(id, policy), &Scope::default())
        .await
        .unwrap();
    let ChildStart::Started(child) = started else {
        panic!("expected the child to start, got {started:?}");
    };
    (parent, child)
}

/// Records child command #0 of `parent` without starting the child, as a
/// crash between the two leaves it; returns the child as recorded.
async fn record_unstarted_child(parent: &RunHandle, id: &str) -> ChildStarted {
    let mut recorded = child(id, ParentClose::Terminate);
    recorded.run_id = Some(crate::ids::RunId::generate());
    parent
        .record(
            crate::engine::RecordCommand::ChildWorkflowStarted {
                ordinal: 0,
                child: recorded.clone(),
            },
            None,
        )
        .await
        .unwrap();
    recorded
}

async fn history(engine: &Engine, id: &str) -> Vec<Event> {
    engine
        .store()
        .read_history(&WorkflowId::new(id).unwrap())
        .await
        .unwrap()
        .into_iter()
        .map(|recorded| recorded.event)
        .collect()
}

#[tokio::test]
async fn a_childs_ending_is_recorded_once_in_its_parent() {
    let engine = memory_engine().await;
    let (parent, child) = parent_with_child(&engine, "kid", ParentClose::Terminate).await;
    let child_id = child.info().workflow_id.clone();
    // The child's first run is the one the parent recorded.
    let Event::ChildWorkflowStarted { run_id, .. } = &history(&engine, "parent").await[1] else {
        panic!("expected child_workflow_started");
    };
    assert_eq!(*run_id, Some(child.info().run_id));

    engine
        .complete_run(
            &child_id,
            child.info().run_id,
            RunOutcome::Completed(payload(9)),
        )
        .await
        .unwrap();
    assert_eq!(
        parent.settle(&[0], &Scope::default()).unwrap(),
        Settled::Won {
            ordinal: 0,
            outcome: Outcome::Completed(payload(9))
        }
    );
    // The parent's replay asks again: nothing more is recorded.
    assert!(matches!(
        parent.ensure_child(0).await.unwrap(),
        ChildStart::Resolved
    ));
    let reloaded = engine
        .load_run(&parent.info().workflow_id, None)
        .await
        .unwrap();
    reloaded.resolve(&child_spec(), &Scope::default()).unwrap();
    assert!(matches!(
        reloaded.ensure_child(0).await.unwrap(),
        ChildStart::Resolved
    ));
    let endings = history(&engine, "parent")
        .await
        .into_iter()
        .filter(|event| matches!(event, Event::ChildWorkflowCompleted { .. }))
        .count();
    assert_eq!(endings, 1);
}

#[tokio::test]
async fn a_child_that_never_started_is_started_by_the_replay_once() {
    let engine = memory_engine().await;
    let parent = engine.start_workflow(start(Some("parent"))).await.unwrap();
    // Recorded, then "crashed" before the start: record the command alone.
    let recorded = record_unstarted_child(&parent, "late").await;
    let late = WorkflowId::new("late").unwrap();
    assert!(engine.latest_run(&late).await.unwrap().is_none());

    let reloaded = engine
        .load_run(&parent.info().workflow_id, None)
        .await
        .unwrap();
    assert!(matches!(
        reloaded.resolve(&child_spec(), &Scope::default()).unwrap(),
        Resolution::Pending { ordinal: 0, .. }
    ));
    let ChildStart::Started(child) = reloaded.ensure_child(0).await.unwrap() else {
        panic!("expected the replay to start the child");
    };
    assert_eq!(Some(child.info().run_id), recorded.run_id);
    // Asked again (another replay): it runs, nothing is started twice.
    assert!(matches!(
        reloaded.ensure_child(0).await.unwrap(),
        ChildStart::Running
    ));
    assert_eq!(engine.store().read_run_chain(&late).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_taken_id_fails_the_child_command_with_already_started() {
    let engine = memory_engine().await;
    engine.start_workflow(start(Some("taken"))).await.unwrap();
    let parent = engine.start_workflow(start(Some("parent"))).await.unwrap();
    parent.resolve(&child_spec(), &Scope::default()).unwrap();
    let started = parent
        .start_child(0, child("taken", ParentClose::Terminate), &Scope::default())
        .await
        .unwrap();
    assert!(matches!(started, ChildStart::Resolved));
    assert_eq!(
        parent.settle(&[0], &Scope::default()).unwrap(),
        Settled::Won {
            ordinal: 0,
            outcome: Outcome::Error {
                reason: "already_started".into(),
                value: crate::payload::Payload::etf_atom("nil"),
            }
        }
    );
}

#[tokio::test]
async fn a_parents_ending_closes_its_children_by_policy() {
    let engine = memory_engine().await;
    for (policy, status) in [
        (ParentClose::Terminate, WorkflowStatus::Terminated),
        (ParentClose::Abandon, WorkflowStatus::Running),
    ] {
        let (parent, child) = parent_with_child(&engine, "kid", policy).await;
        engine
            .complete_run(
                &parent.info().workflow_id,
                parent.info().run_id,
                RunOutcome::Completed(payload(1)),
            )
            .await
            .unwrap();
        let latest = engine
            .latest_run(&child.info().workflow_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(latest.status, status, "{policy:?}");
        if status == WorkflowStatus::Running {
            engine
                .terminate(&child.info().workflow_id, payload(0))
                .await
                .unwrap();
        }
    }
    // Asked to cancel: a cancellation request is recorded for the child.
    let (parent, child) = parent_with_child(&engine, "kid", ParentClose::RequestCancel).await;
    engine
        .terminate(&parent.info().workflow_id, payload(2))
        .await
        .unwrap();
    assert!(
        history(&engine, "kid")
            .await
            .iter()
            .any(|event| matches!(event, Event::CancelRequested { .. }))
    );
    assert_eq!(child.info().workflow_id.as_str(), "kid");
}

#[tokio::test]
async fn a_sent_signal_is_delivered_again_only_if_lost() {
    let engine = memory_engine().await;
    let target = engine.start_workflow(start(Some("target"))).await.unwrap();
    let sender = engine.start_workflow(start(Some("sender"))).await.unwrap();
    let spec = CommandSpec::new(CommandKind::SignalSend, "go");
    sender.resolve(&spec, &Scope::default()).unwrap();
    let target_id = target.info().workflow_id.clone();
    // Recorded but not delivered (as after a crash between the two).
    sender
        .record(
            crate::engine::RecordCommand::SignalSent {
                ordinal: 0,
                target: target_id.clone(),
                name: "go".into(),
                payload: payload(5),
                failed: None,
            },
            None,
        )
        .await
        .unwrap();
    let received = |events: &[Event]| {
        events
            .iter()
            .filter(|event| {
                matches!(
                    event,
                    Event::SignalReceived {
                        sent_by: Some(_),
                        ..
                    }
                )
            })
            .count()
    };
    assert_eq!(received(&history(&engine, "target").await), 0);
    sender.ensure_signal(0).await.unwrap();
    sender.ensure_signal(0).await.unwrap();
    assert_eq!(received(&history(&engine, "target").await), 1);

    // A send to nobody is recorded as failed, and replays as an error.
    sender.resolve(&spec, &Scope::default()).unwrap();
    let sent = sender
        .signal_workflow(
            1,
            WorkflowId::new("nobody").unwrap(),
            "go".into(),
            payload(6),
            &Scope::default(),
        )
        .await
        .unwrap();
    assert_eq!(sent, SignalSend::Failed("not_found".into()));
}

#[tokio::test]
async fn a_signal_taken_by_a_target_that_continued_as_new_is_not_delivered_again() {
    use crate::engine::ContinueAsNew;
    use crate::replay::Inbox;

    let engine = memory_engine().await;
    let target = engine.start_workflow(start(Some("target"))).await.unwrap();
    let sender = engine.start_workflow(start(Some("sender"))).await.unwrap();
    let spec = CommandSpec::new(CommandKind::SignalSend, "go");
    sender.resolve(&spec, &Scope::default()).unwrap();
    let target_id = target.info().workflow_id.clone();
    let sent = sender
        .signal_workflow(
            0,
            target_id.clone(),
            "go".into(),
            payload(5),
            &Scope::default(),
        )
        .await
        .unwrap();
    assert_eq!(sent, SignalSend::Sent);
    // The target takes it, and continues as new.
    let taken = target
        .take_message(Inbox::Signal, "go", &Scope::default())
        .await
        .unwrap();
    assert!(matches!(taken, crate::engine::Taken::Message { .. }));
    engine
        .continue_as_new(
            &target_id,
            target.info().run_id,
            ContinueAsNew {
                workflow_type: "Shop.Order".into(),
                input: payload(1),
            },
        )
        .await
        .unwrap();
    // The sender replays with the send as its last command: nothing again.
    let replayed = engine
        .load_run(&sender.info().workflow_id, None)
        .await
        .unwrap();
    replayed.resolve(&spec, &Scope::default()).unwrap();
    replayed.ensure_signal(0).await.unwrap();
    let received = history(&engine, "target")
        .await
        .into_iter()
        .filter(|event| matches!(event, Event::SignalReceived { .. }))
        .count();
    assert_eq!(received, 1);
}

#[tokio::test]
async fn a_child_started_after_its_parent_ended_is_closed_by_its_policy() {
    let engine = memory_engine().await;
    let parent = engine.start_workflow(start(Some("parent"))).await.unwrap();
    parent.resolve(&child_spec(), &Scope::default()).unwrap();
    let recorded = record_unstarted_child(&parent, "late").await;
    // The parent ends between its record and the child's start.
    engine
        .terminate(&parent.info().workflow_id, payload(0))
        .await
        .unwrap();
    let sender = crate::event::ParentRef {
        workflow_id: parent.info().workflow_id.clone(),
        run_id: parent.info().run_id,
        command: 0,
        parent_close: None,
    };
    let started = engine
        .start_recorded_child(sender, &recorded)
        .await
        .unwrap();
    assert!(matches!(started, ChildStart::Running));
    let late = engine
        .latest_run(&WorkflowId::new("late").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(late.status, WorkflowStatus::Terminated);
}

#[tokio::test]
async fn cancel_child_asks_only_the_child_it_started_and_only_once() {
    let engine = memory_engine().await;
    let (parent, child) = parent_with_child(&engine, "kid", ParentClose::Abandon).await;
    parent.cancel_child(0).await.unwrap();
    parent.cancel_child(0).await.unwrap();
    let requests = |events: Vec<Event>| {
        events
            .iter()
            .filter(|event| matches!(event, Event::CancelRequested { .. }))
            .count()
    };
    assert_eq!(requests(history(&engine, "kid").await), 1);
    // Once the child ended and its id runs another workflow, that one is
    // left alone.
    engine
        .complete_run(
            &child.info().workflow_id,
            child.info().run_id,
            RunOutcome::Cancelled(payload(0)),
        )
        .await
        .unwrap();
    let other = engine.start_workflow(start(Some("kid"))).await.unwrap();
    parent.cancel_child(0).await.unwrap();
    let other_run: Vec<Event> = engine
        .store()
        .read_from(&other.info().workflow_id, 1)
        .await
        .unwrap()
        .into_iter()
        .map(|recorded| recorded.event)
        .collect();
    assert_eq!(requests(other_run), 1, "only the first run's request");
}
