//! The backend-independent tests. Each takes a fresh, empty store.

use std::sync::Arc;

use aion::event::{AttributeKind, Envelope, Event, RecordedEvent, SearchAttribute};
use aion::ids::WorkflowId;
use aion::status::WorkflowStatus;
use aion::store::{AppendRequest, ReconcileReport, Store, StoreError, TimerEntry};
use aion::time::Timestamp;
use aion::visibility::{AttributeCondition, AttributeOp, ListFilter, WorkflowListing};
use tokio::sync::Barrier;

use super::histories::*;

/// Appends `events` as a new history and returns the request (the expected history).
async fn seed(
    store: &Arc<dyn Store>,
    id: &str,
    recorded_at: aion::time::Timestamp,
    events: Vec<Event>,
) -> AppendRequest {
    let request = request(&wf(id), 0, recorded_at, events);
    store
        .append(request.clone())
        .await
        .expect("seeding a new history succeeds");
    request
}

fn ids(rows: &[aion::status::WorkflowSummary]) -> Vec<&str> {
    rows.iter().map(|row| row.workflow_id.as_str()).collect()
}

fn assert_conflict(result: Result<(), StoreError>, expected: u64, found: u64) {
    match result {
        Err(StoreError::SequenceConflict {
            expected: e,
            found: f,
            ..
        }) => assert_eq!((e, f), (expected, found), "conflict expected/found"),
        other => panic!(
            "expected a sequence conflict (expected {expected}, found {found}), got {other:?}"
        ),
    }
}

fn assert_invalid(result: Result<(), StoreError>) {
    assert!(
        matches!(result, Err(StoreError::InvalidAppend { .. })),
        "expected InvalidAppend, got {result:?}"
    );
}

pub async fn append_and_read_round_trip(store: Arc<dyn Store>) {
    let appended = seed(&store, "order-1", at(5), order_fulfilled(run(1))).await;

    let history = store.read_history(&wf("order-1")).await.unwrap();
    assert_eq!(history, appended.events);
    assert_eq!(
        history.iter().map(RecordedEvent::seq).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
    assert_eq!(
        history[0].envelope,
        Envelope {
            workflow_id: wf("order-1"),
            seq: 1,
            recorded_at: at(5),
        }
    );
    match &history[3].event {
        Event::ActivityCompleted { result, .. } => assert_eq!(result.data, awkward_bytes(3)),
        other => panic!("seq 4 should be activity_completed, got {other:?}"),
    }

    let summary = store
        .summary(&wf("order-1"))
        .await
        .unwrap()
        .expect("a row exists");
    assert_eq!(summary.workflow_type, "Shop.Order");
    assert_eq!(summary.run_id, run(1));
    assert_eq!(summary.status, WorkflowStatus::Completed);
    assert_eq!(
        (summary.started_at, summary.closed_at, summary.updated_at),
        (at(5), Some(at(5)), at(5))
    );
    assert_eq!(summary.head_seq, 5);
    assert_eq!(store.summary(&wf("nobody")).await.unwrap(), None);
}

pub async fn read_from_a_seq(store: Arc<dyn Store>) {
    let appended = seed(&store, "order-1", at(0), order_fulfilled(run(1))).await;
    let id = wf("order-1");

    assert_eq!(store.read_from(&id, 1).await.unwrap(), appended.events);
    assert_eq!(
        store.read_from(&id, 3).await.unwrap(),
        appended.events[2..].to_vec()
    );
    assert_eq!(
        store.read_from(&id, 5).await.unwrap(),
        appended.events[4..].to_vec()
    );
    assert_eq!(store.read_from(&id, 6).await.unwrap(), vec![]);
    assert_eq!(store.read_from(&id, u64::MAX).await.unwrap(), vec![]);
    assert_eq!(store.read_from(&wf("unknown"), 1).await.unwrap(), vec![]);
    assert_eq!(store.read_history(&wf("unknown")).await.unwrap(), vec![]);
}

pub async fn read_a_range_of_seqs(store: Arc<dyn Store>) {
    let appended = seed(&store, "order-1", at(0), order_fulfilled(run(1))).await;
    let id = wf("order-1");

    assert_eq!(store.read_range(&id, 1, 5).await.unwrap(), appended.events);
    assert_eq!(
        store.read_range(&id, 2, 3).await.unwrap(),
        appended.events[1..3].to_vec()
    );
    assert_eq!(
        store.read_range(&id, 4, u64::MAX).await.unwrap(),
        appended.events[3..].to_vec()
    );
    assert_eq!(
        store.read_range(&id, 5, 5).await.unwrap(),
        appended.events[4..].to_vec()
    );
    assert_eq!(store.read_range(&id, 4, 3).await.unwrap(), vec![]);
    assert_eq!(store.read_range(&id, 6, 9).await.unwrap(), vec![]);
    assert_eq!(
        store.read_range(&wf("unknown"), 1, 9).await.unwrap(),
        vec![]
    );
}

pub async fn appends_across_batches_chain(store: Arc<dyn Store>) {
    let id = wf("counter");
    let first = request(&id, 0, at(0), vec![started(run(1), "Counter")]);
    let second = request(&id, 1, at(10), vec![marker(1, 1), marker(2, 2)]);
    let third = request(&id, 3, at(20), vec![marker(3, 3)]);
    for step in [&first, &second, &third] {
        let results = store
            .append_batch(std::slice::from_ref(step))
            .await
            .unwrap();
        assert_eq!(results.len(), 1);
        results.into_iter().next().unwrap().unwrap();
    }

    let expected: Vec<RecordedEvent> = [first.events, second.events, third.events].concat();
    assert_eq!(store.read_history(&id).await.unwrap(), expected);
    let summary = store.summary(&id).await.unwrap().unwrap();
    assert_eq!(
        (summary.head_seq, summary.started_at, summary.updated_at),
        (4, at(0), at(20))
    );
    assert_eq!(summary.status, WorkflowStatus::Running);
}

pub async fn one_batch_with_several_workflows_and_chained_requests(store: Arc<dyn Store>) {
    let (a, b) = (wf("order-a"), wf("order-b"));
    let batch = vec![
        request(&a, 0, at(0), order_placed(run(1))),
        request(&b, 0, at(1), order_fulfilled(run(2))),
        // Chained on the first request of the same batch.
        request(&a, 1, at(2), vec![marker(1, 9), completed()]),
    ];
    let results = store.append_batch(&batch).await.unwrap();
    assert_eq!(results.len(), 3);
    for result in results {
        result.unwrap();
    }

    let history_a = store.read_history(&a).await.unwrap();
    assert_eq!(
        history_a,
        [batch[0].events.clone(), batch[2].events.clone()].concat()
    );
    assert_eq!(store.read_history(&b).await.unwrap(), batch[1].events);
    let row_a = store.summary(&a).await.unwrap().unwrap();
    assert_eq!(
        (row_a.head_seq, row_a.status, row_a.closed_at),
        (3, WorkflowStatus::Completed, Some(at(2)))
    );
    assert_eq!(store.summary(&b).await.unwrap().unwrap().head_seq, 5);
    assert_eq!(store.append_batch(&[]).await.unwrap().len(), 0);
}

pub async fn stale_expected_seq_writes_nothing(store: Arc<dyn Store>) {
    let id = wf("counter");
    seed(
        &store,
        "counter",
        at(0),
        vec![started(run(1), "Counter"), marker(1, 1), marker(2, 2)],
    )
    .await;
    let history_before = store.read_history(&id).await.unwrap();
    let summary_before = store.summary(&id).await.unwrap();

    assert_conflict(
        store
            .append(request(&id, 1, at(50), vec![marker(2, 7)]))
            .await,
        1,
        3,
    );
    assert_conflict(
        store
            .append(request(&id, 4, at(50), vec![marker(4, 7)]))
            .await,
        4,
        3,
    );
    assert_conflict(
        store
            .append(request(&id, 0, at(50), vec![started(run(2), "Counter")]))
            .await,
        0,
        3,
    );

    assert_eq!(store.read_history(&id).await.unwrap(), history_before);
    assert_eq!(store.summary(&id).await.unwrap(), summary_before);
}

pub async fn concurrent_appends_on_one_head_have_one_winner(store: Arc<dyn Store>) {
    const CONTENDERS: u8 = 16;
    let id = wf("contended");
    seed(&store, "contended", at(0), order_placed(run(1))).await;

    let barrier = Arc::new(Barrier::new(usize::from(CONTENDERS)));
    let tasks: Vec<_> = (0..CONTENDERS)
        .map(|contender| {
            let store = store.clone();
            let barrier = barrier.clone();
            let request = request(
                &id,
                1,
                at(1),
                vec![marker(1, contender), marker(2, contender)],
            );
            tokio::spawn(async move {
                barrier.wait().await;
                (contender, store.append(request).await)
            })
        })
        .collect();

    let mut winners = Vec::new();
    for task in tasks {
        let (contender, result) = task.await.expect("append task does not panic");
        match result {
            Ok(()) => winners.push(contender),
            conflict => assert_conflict(conflict, 1, 3),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one append wins, got {winners:?}");

    let history = store.read_history(&id).await.unwrap();
    assert_eq!(history.len(), 3);
    assert_eq!(history[1].event, marker(1, winners[0]));
    assert_eq!(history[2].event, marker(2, winners[0]));
    assert_eq!(store.summary(&id).await.unwrap().unwrap().head_seq, 3);
}

pub async fn a_conflicting_request_does_not_stop_the_rest_of_its_batch(store: Arc<dyn Store>) {
    let taken = wf("taken");
    seed(&store, "taken", at(0), order_placed(run(1))).await;
    let taken_before = store.read_history(&taken).await.unwrap();

    let (b, c) = (wf("order-b"), wf("order-c"));
    let batch = vec![
        request(&b, 0, at(1), order_placed(run(2))),
        request(&taken, 0, at(1), order_placed(run(3))),
        request(&c, 0, at(1), reminder_sleeping(run(4), at(100))),
        // Same head as the first request, which moved it: a conflict too.
        request(&b, 0, at(1), order_placed(run(5))),
    ];
    let mut results = store.append_batch(&batch).await.unwrap().into_iter();
    results.next().unwrap().unwrap();
    assert_conflict(results.next().unwrap(), 0, 1);
    results.next().unwrap().unwrap();
    assert_conflict(results.next().unwrap(), 0, 1);
    assert!(results.next().is_none());

    assert_eq!(store.read_history(&b).await.unwrap(), batch[0].events);
    assert_eq!(store.read_history(&c).await.unwrap(), batch[2].events);
    assert_eq!(store.read_history(&taken).await.unwrap(), taken_before);
    assert_eq!(store.summary(&taken).await.unwrap().unwrap().run_id, run(1));
    assert_eq!(store.summary(&b).await.unwrap().unwrap().run_id, run(2));
    // The conflicting request's timers were not written either; c's were.
    let pending = store.pending_timers().await.unwrap();
    assert_eq!(
        pending
            .iter()
            .map(|t| t.workflow_id.as_str())
            .collect::<Vec<_>>(),
        vec!["order-c"]
    );
}

pub async fn invalid_appends_are_rejected_and_write_nothing(store: Arc<dyn Store>) {
    // A history must begin with workflow_started.
    let orphan = wf("orphan");
    assert_invalid(
        store
            .append(request(&orphan, 0, at(0), vec![marker(1, 1)]))
            .await,
    );
    assert_eq!(store.read_history(&orphan).await.unwrap(), vec![]);
    assert_eq!(store.summary(&orphan).await.unwrap(), None);

    // No events at all.
    assert_invalid(store.append(request(&orphan, 0, at(0), vec![])).await);

    let id = wf("counter");
    seed(
        &store,
        "counter",
        at(0),
        vec![started(run(1), "Counter"), timer_started(run(1), 1, at(9))],
    )
    .await;
    let history_before = store.read_history(&id).await.unwrap();
    let summary_before = store.summary(&id).await.unwrap();

    // Seqs that are not dense from the head.
    let mut gap = request(&id, 2, at(1), vec![marker(2, 1), timer_fired(run(1), 1)]);
    gap.events[1].envelope.seq = 5;
    assert_invalid(store.append(gap).await);
    let mut skipped = request(&id, 2, at(1), vec![marker(2, 1)]);
    skipped.events[0].envelope.seq = 4;
    assert_invalid(store.append(skipped).await);

    // An event whose envelope names another workflow.
    let mut foreign = request(&id, 2, at(1), vec![marker(2, 1)]);
    foreign.events[0].envelope.workflow_id = wf("someone-else");
    assert_invalid(store.append(foreign).await);

    // An invalid request inside a batch does not stop a valid one.
    let batch = vec![
        request(&orphan, 0, at(2), vec![completed()]),
        request(&id, 2, at(2), vec![marker(2, 2)]),
    ];
    let mut results = store.append_batch(&batch).await.unwrap().into_iter();
    assert_invalid(results.next().unwrap());
    results.next().unwrap().unwrap();

    assert_eq!(
        store.read_history(&id).await.unwrap(),
        [history_before, batch[1].events.clone()].concat()
    );
    let summary = store.summary(&id).await.unwrap().unwrap();
    assert_eq!(summary.head_seq, summary_before.unwrap().head_seq + 1);
    assert_eq!(store.read_history(&orphan).await.unwrap(), vec![]);
    // The rejected timer_fired did not remove the timer.
    assert!(store.timer(&id, &timer(run(1), 1)).await.unwrap().is_some());
}

pub async fn active_list_follows_the_projected_status(store: Arc<dyn Store>) {
    seed(&store, "a-running", at(1), order_placed(run(1))).await;
    seed(&store, "b-completed", at(2), order_fulfilled(run(2))).await;
    seed(
        &store,
        "c-failed",
        at(3),
        vec![started(run(3), "Shop.Order"), failed()],
    )
    .await;
    seed(
        &store,
        "d-cancelled",
        at(4),
        vec![started(run(4), "Shop.Order"), cancelled()],
    )
    .await;
    seed(
        &store,
        "e-timed-out",
        at(5),
        vec![started(run(5), "Shop.Order"), timed_out()],
    )
    .await;
    seed(
        &store,
        "f-continued",
        at(6),
        vec![
            started(run(6), "Counter"),
            continued_as_new(run(7), "Counter"),
        ],
    )
    .await;

    assert_eq!(ids(&store.list_active().await.unwrap()), vec!["a-running"]);
    let statuses: Vec<WorkflowStatus> = {
        let mut rows = Vec::new();
        for id in [
            "b-completed",
            "c-failed",
            "d-cancelled",
            "e-timed-out",
            "f-continued",
        ] {
            rows.push(store.summary(&wf(id)).await.unwrap().unwrap().status);
        }
        rows
    };
    assert_eq!(
        statuses,
        vec![
            WorkflowStatus::Completed,
            WorkflowStatus::Failed,
            WorkflowStatus::Cancelled,
            WorkflowStatus::TimedOut,
            WorkflowStatus::ContinuedAsNew,
        ]
    );

    // The successor run opens: active again, with the new run's identity.
    store
        .append(request(
            &wf("f-continued"),
            2,
            at(7),
            vec![started_after(run(7), run(6), "Counter")],
        ))
        .await
        .unwrap();
    let active = store.list_active().await.unwrap();
    assert_eq!(ids(&active), vec!["a-running", "f-continued"]);
    assert_eq!(
        (active[1].run_id, active[1].started_at, active[1].closed_at),
        (run(7), at(7), None)
    );

    // And it completes: not active any more.
    store
        .append(request(&wf("a-running"), 1, at(8), vec![completed()]))
        .await
        .unwrap();
    assert_eq!(
        ids(&store.list_active().await.unwrap()),
        vec!["f-continued"]
    );
}

pub async fn run_chain_spans_continue_as_new(store: Arc<dyn Store>) {
    seed(&store, "counter", at(0), counter_continued_twice()).await;
    let chain = store.read_run_chain(&wf("counter")).await.unwrap();
    let shape: Vec<_> = chain
        .iter()
        .map(|run| {
            (
                run.run_id,
                run.parent_run_id,
                run.status,
                run.first_seq,
                run.last_seq,
            )
        })
        .collect();
    assert_eq!(
        shape,
        vec![
            (run(1), None, WorkflowStatus::ContinuedAsNew, 1, 3),
            (run(2), Some(run(1)), WorkflowStatus::ContinuedAsNew, 4, 5),
            (run(3), Some(run(2)), WorkflowStatus::Running, 6, 6),
        ]
    );
    let summary = store.summary(&wf("counter")).await.unwrap().unwrap();
    assert_eq!(
        (summary.run_id, summary.status, summary.head_seq),
        (run(3), WorkflowStatus::Running, 6)
    );
    assert_eq!(store.read_run_chain(&wf("unknown")).await.unwrap(), vec![]);

    // One run by id: the same row as in the chain.
    for expected in &chain {
        assert_eq!(
            store
                .read_run(&wf("counter"), expected.run_id)
                .await
                .unwrap()
                .as_ref(),
            Some(expected)
        );
    }
    assert_eq!(store.read_run(&wf("counter"), run(9)).await.unwrap(), None);
    assert_eq!(store.read_run(&wf("unknown"), run(1)).await.unwrap(), None);
    // The running run ends at the head as the history grows.
    store
        .append(request(
            &wf("counter"),
            6,
            at(1),
            vec![Event::ActivityCancelled { command: 0 }],
        ))
        .await
        .unwrap();
    assert_eq!(
        store
            .read_run(&wf("counter"), run(3))
            .await
            .unwrap()
            .map(|run| run.last_seq),
        Some(7)
    );
}

fn timer_entry(id: &str, run_id: u128, command: u32, fire_at: aion::time::Timestamp) -> TimerEntry {
    TimerEntry {
        workflow_id: wf(id),
        timer_id: timer(run(run_id), command),
        command,
        fire_at,
    }
}

pub async fn due_timers_include_the_boundary_and_exclude_the_future(store: Arc<dyn Store>) {
    let earlier = timer_entry("sleeper-b", 2, 1, at(99));
    let boundary = timer_entry("sleeper-a", 1, 1, at(100));
    let boundary_too = timer_entry("sleeper-a", 1, 2, at(100));
    let future = timer_entry("sleeper-c", 3, 1, at(101));
    for entry in [&future, &boundary_too, &boundary, &earlier] {
        store.schedule_timer(entry).await.unwrap();
    }

    let due = store.due_timers(at(100)).await.unwrap();
    assert_eq!(
        due,
        vec![earlier.clone(), boundary.clone(), boundary_too.clone()]
    );
    assert_eq!(store.due_timers(at(98)).await.unwrap(), vec![]);
    assert_eq!(
        store.pending_timers().await.unwrap(),
        vec![earlier, boundary, boundary_too, future]
    );
}

pub async fn rescheduling_a_timer_replaces_it(store: Arc<dyn Store>) {
    let first = timer_entry("sleeper", 1, 1, at(100));
    store.schedule_timer(&first).await.unwrap();
    let later = TimerEntry {
        fire_at: at(500),
        ..first.clone()
    };
    store.schedule_timer(&later).await.unwrap();

    assert_eq!(
        store
            .timer(&first.workflow_id, &first.timer_id)
            .await
            .unwrap(),
        Some(later.clone())
    );
    assert_eq!(store.pending_timers().await.unwrap(), vec![later]);
    assert_eq!(store.due_timers(at(100)).await.unwrap(), vec![]);
}

pub async fn cancelling_a_timer_removes_it(store: Arc<dyn Store>) {
    let doomed = timer_entry("sleeper", 1, 1, at(100));
    let kept = timer_entry("sleeper", 1, 2, at(100));
    store.schedule_timer(&doomed).await.unwrap();
    store.schedule_timer(&kept).await.unwrap();

    store
        .cancel_timer(&doomed.workflow_id, &doomed.timer_id)
        .await
        .unwrap();
    assert_eq!(
        store
            .timer(&doomed.workflow_id, &doomed.timer_id)
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.pending_timers().await.unwrap(), vec![kept.clone()]);
    // Cancelling again, or a timer that never existed, is not an error.
    store
        .cancel_timer(&doomed.workflow_id, &doomed.timer_id)
        .await
        .unwrap();
    store
        .cancel_timer(&wf("nobody"), &timer(run(9), 9))
        .await
        .unwrap();
    assert_eq!(store.pending_timers().await.unwrap(), vec![kept]);
}

pub async fn appended_timer_events_maintain_the_timers_table(store: Arc<dyn Store>) {
    let id = wf("reminder");
    let r = run(1);
    seed(
        &store,
        "reminder",
        at(0),
        vec![
            started(r, "Reminder"),
            timer_started(r, 1, at(100)),
            timer_started(r, 2, at(200)),
            timer_started(r, 3, at(300)),
        ],
    )
    .await;
    seed(
        &store,
        "bystander",
        at(0),
        reminder_sleeping(run(2), at(150)),
    )
    .await;
    let bystander_timer = timer_entry("bystander", 2, 1, at(150));
    assert_eq!(
        store.timer(&id, &timer(r, 1)).await.unwrap(),
        Some(timer_entry("reminder", 1, 1, at(100)))
    );
    assert_eq!(store.pending_timers().await.unwrap().len(), 4);

    // timer_fired and timer_cancelled remove their timer only.
    store
        .append(request(&id, 4, at(100), vec![timer_fired(r, 1)]))
        .await
        .unwrap();
    store
        .append(request(&id, 5, at(110), vec![timer_cancelled(r, 2)]))
        .await
        .unwrap();
    assert_eq!(
        store.pending_timers().await.unwrap(),
        vec![
            bystander_timer.clone(),
            timer_entry("reminder", 1, 3, at(300))
        ]
    );

    // A timer_started for an existing id reschedules it.
    store
        .append(request(&id, 6, at(120), vec![timer_started(r, 3, at(250))]))
        .await
        .unwrap();
    assert_eq!(
        store.timer(&id, &timer(r, 3)).await.unwrap(),
        Some(timer_entry("reminder", 1, 3, at(250)))
    );

    // The run ends: all of its workflow's timers go, others stay.
    store
        .append(request(
            &id,
            7,
            at(130),
            vec![timer_started(r, 4, at(400)), completed()],
        ))
        .await
        .unwrap();
    assert_eq!(store.pending_timers().await.unwrap(), vec![bystander_timer]);
    assert_eq!(store.timer(&id, &timer(r, 4)).await.unwrap(), None);
}

/// Ids of listed rows.
fn listed(rows: &[WorkflowListing]) -> Vec<&str> {
    rows.iter()
        .map(|row| row.summary.workflow_id.as_str())
        .collect()
}

/// Lists every match of `filter` (in pages of 2) and checks `count` agrees.
async fn matching(store: &Arc<dyn Store>, filter: ListFilter) -> Vec<String> {
    let rows = list_all(store.as_ref(), &filter, 2).await;
    assert_eq!(
        store.count(&filter).await.unwrap(),
        rows.len() as u64,
        "count agrees with the listing of {filter:?}"
    );
    listed(&rows).into_iter().map(str::to_owned).collect()
}

pub async fn listing_filters_orders_and_pages(store: Arc<dyn Store>) {
    // Inserted out of order; "order-b" and "order-a" start at the same instant.
    seed(&store, "order-c", at(30), order_fulfilled(run(3))).await;
    seed(&store, "order-b", at(10), order_placed(run(2))).await;
    seed(&store, "order-a", at(10), order_placed(run(1))).await;
    seed(
        &store,
        "reminder-1",
        at(20),
        reminder_sleeping(run(4), at(1000)),
    )
    .await;
    seed(
        &store,
        "reminder-2",
        at(40),
        vec![started(run(5), "Reminder"), failed()],
    )
    .await;

    // Newest first; a tie goes to the greater id.
    let everything = matching(&store, ListFilter::default()).await;
    assert_eq!(
        everything,
        ["reminder-2", "order-c", "reminder-1", "order-b", "order-a"]
    );

    let filter = |f: fn(&mut ListFilter)| {
        let mut filter = ListFilter::default();
        f(&mut filter);
        filter
    };
    let cases: Vec<(ListFilter, Vec<&str>)> = vec![
        (
            filter(|f| f.workflow_type = Some("Shop.Order".into())),
            vec!["order-c", "order-b", "order-a"],
        ),
        (
            filter(|f| f.statuses = vec![WorkflowStatus::Running]),
            vec!["reminder-1", "order-b", "order-a"],
        ),
        (
            filter(|f| f.statuses = vec![WorkflowStatus::Completed, WorkflowStatus::Failed]),
            vec!["reminder-2", "order-c"],
        ),
        // A window includes its start and excludes its end.
        (
            filter(|f| {
                f.started_after = Some(at(20));
                f.started_before = Some(at(40));
            }),
            vec!["order-c", "reminder-1"],
        ),
        // Closed bounds leave running workflows out.
        (
            filter(|f| f.closed_after = Some(at(30))),
            vec!["reminder-2", "order-c"],
        ),
        (filter(|f| f.closed_before = Some(at(40))), vec!["order-c"]),
        (
            filter(|f| {
                f.workflow_type = Some("Shop.Order".into());
                f.statuses = vec![WorkflowStatus::Running];
                f.started_after = Some(at(10));
                f.started_before = Some(at(11));
            }),
            vec!["order-b", "order-a"],
        ),
        (filter(|f| f.workflow_type = Some("Nope".into())), vec![]),
    ];
    for (filter, expected) in cases {
        assert_eq!(
            matching(&store, filter.clone()).await,
            expected,
            "{filter:?}"
        );
    }

    // Pages of 2, then a workflow starts between two pages: the walk goes
    // on where it was, without repeats or gaps.
    let all = ListFilter::default();
    let first = store.list(&all, None, 2).await.unwrap();
    assert_eq!(listed(&first.rows), ["reminder-2", "order-c"]);
    seed(&store, "late", at(50), order_placed(run(6))).await;
    let second = store.list(&all, first.next.as_ref(), 2).await.unwrap();
    assert_eq!(listed(&second.rows), ["reminder-1", "order-b"]);
    let third = store.list(&all, second.next.as_ref(), 2).await.unwrap();
    assert_eq!(listed(&third.rows), ["order-a"]);
    assert_eq!(third.next, None);
    assert_eq!(store.count(&all).await.unwrap(), 6);

    // A limit of 0 is read as 1; rows are the summaries themselves.
    let one = store.list(&all, None, 0).await.unwrap();
    assert_eq!(listed(&one.rows), ["late"]);
    assert_eq!(
        one.rows[0].summary,
        store.summary(&wf("late")).await.unwrap().unwrap()
    );
}

pub async fn search_attributes_follow_the_latest_run(store: Arc<dyn Store>) {
    use SearchAttribute::{Bool, Float, Int, Text, Time};
    seed(
        &store,
        "a",
        at(10),
        vec![started_with(
            run(1),
            "Shop.Order",
            &[
                ("region", Text("eu".into())),
                ("amount", Int(100)),
                ("vip", Bool(true)),
                ("score", Float(0.5)),
                ("due", Time(at(1000))),
            ],
        )],
    )
    .await;
    store
        .append(request(
            &wf("a"),
            1,
            at(11),
            vec![upserted(
                0,
                &[("amount", Int(250)), ("note", Text("rush".into()))],
            )],
        ))
        .await
        .unwrap();
    seed(
        &store,
        "b",
        at(20),
        vec![started_with(
            run(2),
            "Shop.Order",
            &[("region", Text("us".into())), ("amount", Int(50))],
        )],
    )
    .await;
    seed(&store, "c", at(30), order_fulfilled(run(3))).await;

    // Upserts replace the values of their names and keep the others.
    let a = attributes_of(&[
        ("region", Text("eu".into())),
        ("amount", Int(250)),
        ("vip", Bool(true)),
        ("score", Float(0.5)),
        ("due", Time(at(1000))),
        ("note", Text("rush".into())),
    ]);
    assert_eq!(store.search_attributes(&wf("a")).await.unwrap(), a);
    assert!(store.search_attributes(&wf("c")).await.unwrap().is_empty());
    assert!(
        store
            .search_attributes(&wf("nobody"))
            .await
            .unwrap()
            .is_empty()
    );
    let rows = list_all(store.as_ref(), &ListFilter::default(), 10).await;
    assert_eq!(listed(&rows), ["c", "b", "a"]);
    assert_eq!(rows[2].search_attributes, a);
    assert_eq!(
        rows[1].search_attributes,
        attributes_of(&[("region", Text("us".into())), ("amount", Int(50))])
    );

    let on = |conditions: Vec<(&str, AttributeOp)>| ListFilter {
        search: conditions
            .into_iter()
            .map(|(name, op)| AttributeCondition {
                name: name.into(),
                op,
            })
            .collect(),
        ..ListFilter::default()
    };
    let cases: Vec<(ListFilter, Vec<&str>)> = vec![
        (
            on(vec![("region", AttributeOp::Eq(Text("eu".into())))]),
            vec!["a"],
        ),
        (on(vec![("amount", AttributeOp::Ge(Int(250)))]), vec!["a"]),
        (on(vec![("amount", AttributeOp::Gt(Int(250)))]), vec![]),
        (on(vec![("amount", AttributeOp::Lt(Int(100)))]), vec!["b"]),
        (
            on(vec![("amount", AttributeOp::Le(Int(250)))]),
            vec!["b", "a"],
        ),
        (
            on(vec![("amount", AttributeOp::Between(Int(50), Int(250)))]),
            vec!["b", "a"],
        ),
        (
            on(vec![("amount", AttributeOp::Between(Int(51), Int(249)))]),
            vec![],
        ),
        (on(vec![("vip", AttributeOp::Eq(Bool(true)))]), vec!["a"]),
        (on(vec![("vip", AttributeOp::Eq(Bool(false)))]), vec![]),
        (
            on(vec![(
                "score",
                AttributeOp::Between(Float(0.0), Float(1.0)),
            )]),
            vec!["a"],
        ),
        (on(vec![("due", AttributeOp::Gt(Time(at(999))))]), vec!["a"]),
        (on(vec![("due", AttributeOp::Lt(Time(at(1000))))]), vec![]),
        (
            on(vec![
                ("region", AttributeOp::Eq(Text("eu".into()))),
                ("amount", AttributeOp::Ge(Int(200))),
            ]),
            vec!["a"],
        ),
        (
            on(vec![
                ("region", AttributeOp::Eq(Text("us".into()))),
                ("amount", AttributeOp::Ge(Int(200))),
            ]),
            vec![],
        ),
        (
            on(vec![("unknown", AttributeOp::Eq(Text("x".into())))]),
            vec![],
        ),
        // A value of another kind than the attribute's matches nothing.
        (
            on(vec![("amount", AttributeOp::Eq(Text("250".into())))]),
            vec![],
        ),
    ];
    for (filter, expected) in cases {
        assert_eq!(
            matching(&store, filter.clone()).await,
            expected,
            "{filter:?}"
        );
    }
    let mut typed = on(vec![("amount", AttributeOp::Ge(Int(0)))]);
    typed.statuses = vec![WorkflowStatus::Running];
    typed.workflow_type = Some("Shop.Order".into());
    assert_eq!(matching(&store, typed).await, ["b", "a"]);

    // A new run under the same id starts from its own attributes.
    store
        .append(request(
            &wf("a"),
            2,
            at(40),
            vec![
                completed(),
                started_with(run(4), "Shop.Order", &[("region", Text("apac".into()))]),
            ],
        ))
        .await
        .unwrap();
    assert_eq!(
        store.search_attributes(&wf("a")).await.unwrap(),
        attributes_of(&[("region", Text("apac".into()))])
    );
    assert_eq!(
        matching(&store, on(vec![("amount", AttributeOp::Ge(Int(0)))])).await,
        ["b"]
    );
    assert_eq!(
        matching(
            &store,
            on(vec![("region", AttributeOp::Eq(Text("apac".into())))])
        )
        .await,
        ["a"]
    );

    // Status, type and times filter with attributes as the row changes.
    store
        .append(request(&wf("b"), 1, at(50), vec![completed()]))
        .await
        .unwrap();
    let mut closed = on(vec![("amount", AttributeOp::Ge(Int(0)))]);
    closed.statuses = vec![WorkflowStatus::Completed];
    closed.closed_after = Some(at(50));
    assert_eq!(matching(&store, closed.clone()).await, ["b"]);
    closed.statuses = vec![WorkflowStatus::Running];
    assert!(matching(&store, closed).await.is_empty());
    let mut running = on(vec![("region", AttributeOp::Lt(Text("zz".into())))]);
    running.statuses = vec![WorkflowStatus::Running];
    running.started_after = Some(at(40));
    running.workflow_type = Some("Shop.Order".into());
    assert_eq!(matching(&store, running).await, ["a"]);
}

pub async fn attribute_kinds_are_fixed_by_first_use(store: Arc<dyn Store>) {
    use SearchAttribute::{Float, Int, Text};
    let invalid = |result: Result<(), StoreError>, name: &str| match result {
        Err(StoreError::InvalidSearchAttribute {
            name: found,
            reason,
        }) => {
            assert_eq!(found, name, "{reason}");
            reason
        }
        other => panic!("expected an invalid search attribute {name:?}, got {other:?}"),
    };
    seed(
        &store,
        "a",
        at(1),
        vec![started_with(run(1), "T", &[("amount", Int(1))])],
    )
    .await;
    assert_eq!(
        store
            .attribute_kinds(&["amount".into(), "nope".into()])
            .await
            .unwrap(),
        std::collections::HashMap::from([("amount".to_owned(), AttributeKind::Int)])
    );

    // At start: nothing is written.
    let reason = invalid(
        store
            .append(request(
                &wf("b"),
                0,
                at(2),
                vec![started_with(run(2), "T", &[("amount", Text("x".into()))])],
            ))
            .await,
        "amount",
    );
    assert!(
        reason.contains("int") && reason.contains("text"),
        "{reason}"
    );
    assert_eq!(store.head(&wf("b")).await.unwrap(), 0);
    assert_eq!(store.summary(&wf("b")).await.unwrap(), None);

    // An upsert: refused alone; the rest of its batch commits.
    let bad = request(
        &wf("a"),
        1,
        at(3),
        vec![upserted(0, &[("amount", Float(1.0))])],
    );
    let good = request(
        &wf("c"),
        0,
        at(3),
        vec![started_with(
            run(3),
            "T",
            &[("amount", Int(5)), ("tier", Text("gold".into()))],
        )],
    );
    let results = store.append_batch(&[bad, good]).await.unwrap();
    invalid(results[0].clone(), "amount");
    results[1].clone().unwrap();
    assert_eq!(store.head(&wf("a")).await.unwrap(), 1);
    assert_eq!(
        store.search_attributes(&wf("a")).await.unwrap(),
        attributes_of(&[("amount", Int(1))])
    );
    assert_eq!(
        store.attribute_kinds(&["tier".into()]).await.unwrap()["tier"],
        AttributeKind::Text
    );

    // Two kinds for one name within one append; malformed attributes.
    invalid(
        store
            .append(request(
                &wf("d"),
                0,
                at(4),
                vec![
                    started_with(run(4), "T", &[("fresh", Int(1))]),
                    upserted(0, &[("fresh", Text("a".into()))]),
                ],
            ))
            .await,
        "fresh",
    );
    invalid(
        store
            .append(request(
                &wf("d"),
                0,
                at(4),
                vec![started_with(run(4), "T", &[("", Int(1))])],
            ))
            .await,
        "",
    );
    invalid(
        store
            .append(request(
                &wf("d"),
                0,
                at(4),
                vec![started_with(run(4), "T", &[("ratio", Float(f64::NAN))])],
            ))
            .await,
        "ratio",
    );
    assert_eq!(store.head(&wf("d")).await.unwrap(), 0);
    assert!(
        store
            .attribute_kinds(&["fresh".into(), "ratio".into()])
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn reconcile_is_a_noop_on_a_consistent_store(store: Arc<dyn Store>) {
    assert_eq!(
        store.reconcile_visibility().await.unwrap(),
        ReconcileReport::default()
    );
    seed(&store, "order-1", at(0), order_fulfilled(run(1))).await;
    seed(&store, "counter", at(1), counter_continued_twice()).await;
    store
        .append(request(&wf("counter"), 6, at(2), vec![marker(1, 1)]))
        .await
        .unwrap();
    store
        .append(request(
            &wf("tagged"),
            0,
            at(3),
            vec![
                started_with(
                    run(9),
                    "T",
                    &[("region", SearchAttribute::Text("eu".into()))],
                ),
                upserted(0, &[("amount", SearchAttribute::Int(3))]),
            ],
        ))
        .await
        .unwrap();
    let before = list_all(store.as_ref(), &ListFilter::default(), 100).await;

    assert_eq!(
        store.reconcile_visibility().await.unwrap(),
        ReconcileReport::default()
    );
    assert_eq!(
        store.reconcile_visibility().await.unwrap(),
        ReconcileReport::default()
    );
    assert_eq!(
        list_all(store.as_ref(), &ListFilter::default(), 100).await,
        before
    );
}

pub async fn a_closed_store_refuses_calls(store: Arc<dyn Store>) {
    seed(&store, "order-1", at(0), order_placed(run(1))).await;
    store.close().await;

    let id = wf("order-1");
    assert!(matches!(
        store.read_history(&id).await,
        Err(StoreError::Closed)
    ));
    assert!(matches!(
        store
            .append(request(&id, 1, at(1), vec![completed()]))
            .await,
        Err(StoreError::Closed)
    ));
    assert!(matches!(store.summary(&id).await, Err(StoreError::Closed)));
    assert!(matches!(
        store.pending_timers().await,
        Err(StoreError::Closed)
    ));
    assert!(matches!(
        store.reconcile_visibility().await,
        Err(StoreError::Closed)
    ));
}

pub async fn the_head_is_the_history_s_last_seq(store: Arc<dyn Store>) {
    assert_eq!(store.head(&wf("unknown")).await.unwrap(), 0);
    seed(&store, "counter", at(0), counter_continued_twice()).await;
    assert_eq!(store.head(&wf("counter")).await.unwrap(), 6);
    store
        .append(request(&wf("counter"), 6, at(1), vec![marker(1, 1)]))
        .await
        .unwrap();
    assert_eq!(store.head(&wf("counter")).await.unwrap(), 7);
}

pub async fn the_history_head_has_the_head_and_the_latest_run(store: Arc<dyn Store>) {
    let empty = store.history_head(&wf("unknown")).await.unwrap();
    assert_eq!((empty.head_seq, empty.latest_run), (0, None));
    seed(&store, "counter", at(0), counter_continued_twice()).await;
    let id = wf("counter");
    store
        .append(request(&id, 6, at(1), vec![marker(1, 1)]))
        .await
        .unwrap();
    let head = store.history_head(&id).await.unwrap();
    assert!(head.is_consistent());
    assert_eq!(head.head_seq, 7);
    assert_eq!(
        head.latest_run,
        store.read_run_chain(&id).await.unwrap().pop()
    );
}

pub async fn the_current_run_is_read_from_its_start(store: Arc<dyn Store>) {
    assert_eq!(store.read_current_run(&wf("unknown")).await.unwrap(), None);
    let seeded = seed(&store, "counter", at(0), counter_continued_twice()).await;
    let id = wf("counter");

    let (run3, events) = store
        .read_current_run(&id)
        .await
        .unwrap()
        .expect("a current run");
    assert_eq!(
        (
            run3.run_id,
            run3.parent_run_id,
            run3.status,
            run3.first_seq,
            run3.last_seq
        ),
        (run(3), Some(run(2)), WorkflowStatus::Running, 6, 6)
    );
    assert_eq!(events, seeded.events[5..].to_vec());

    // The run grows, then ends: the summary follows, the segment stays put.
    let more = request(&id, 6, at(5), vec![marker(1, 1), completed()]);
    store.append(more.clone()).await.unwrap();
    let (ended, events) = store.read_current_run(&id).await.unwrap().unwrap();
    assert_eq!(
        (
            ended.run_id,
            ended.status,
            ended.first_seq,
            ended.last_seq,
            ended.closed_at
        ),
        (run(3), WorkflowStatus::Completed, 6, 8, Some(at(5)))
    );
    assert_eq!(
        events,
        [seeded.events[5..].to_vec(), more.events.clone()].concat()
    );
    assert_eq!(
        store.read_run_chain(&id).await.unwrap().last(),
        Some(&ended)
    );

    // A new run under the same id starts a new segment.
    store
        .append(request(&id, 8, at(9), vec![started(run(4), "Counter")]))
        .await
        .unwrap();
    let (run4, events) = store.read_current_run(&id).await.unwrap().unwrap();
    assert_eq!(
        (run4.run_id, run4.parent_run_id, run4.first_seq),
        (run(4), None, 9)
    );
    assert_eq!(events.len(), 1);
    assert_eq!(store.read_run_chain(&id).await.unwrap().len(), 4);
}

pub async fn current_runs_are_read_in_one_batch_as_one_by_one(store: Arc<dyn Store>) {
    seed(&store, "counter", at(0), counter_continued_twice()).await;
    seed(&store, "sleeper", at(1), reminder_sleeping(run(6), at(100))).await;
    seed(&store, "order", at(2), order_fulfilled(run(5))).await;
    let ids = [wf("counter"), wf("sleeper"), wf("order"), wf("unknown")];

    let runs = store.read_current_runs(&ids).await.unwrap();
    assert_eq!(runs.len(), 3, "every workflow with a history, none without");
    for id in &ids[..3] {
        assert_eq!(
            runs.get(id),
            store.read_current_run(id).await.unwrap().as_ref(),
            "{id}"
        );
    }
    assert!(store.read_current_runs(&[]).await.unwrap().is_empty());
}

pub async fn running_pages_walk_running_workflows_by_id(store: Arc<dyn Store>) {
    let empty = store.list_running_page(None, 10, false).await.unwrap();
    assert!(empty.rows.is_empty() && empty.broken.is_empty() && empty.next.is_none());

    // Seeded out of id order; "c" and "f" sleep on timers, "b" and "e" ended.
    seed(&store, "f", at(1), reminder_sleeping(run(6), at(100))).await;
    seed(&store, "a", at(2), order_placed(run(1))).await;
    seed(&store, "e", at(3), order_fulfilled(run(5))).await;
    seed(&store, "c", at(4), reminder_sleeping(run(3), at(100))).await;
    seed(
        &store,
        "b",
        at(5),
        vec![started(run(2), "Shop.Order"), failed()],
    )
    .await;
    seed(&store, "d", at(6), order_placed(run(4))).await;
    seed(&store, "g", at(7), order_placed(run(7))).await;

    let walk = |without_timers: bool, limit: usize| {
        let store = store.clone();
        async move {
            let mut pages = Vec::new();
            let mut after: Option<WorkflowId> = None;
            loop {
                let page = store
                    .list_running_page(after.as_ref(), limit, without_timers)
                    .await
                    .unwrap();
                assert!(page.broken.is_empty());
                assert!(page.rows.len() <= limit.max(1));
                pages.push(
                    ids(&page.rows)
                        .iter()
                        .map(|id| id.to_string())
                        .collect::<Vec<_>>(),
                );
                match page.next {
                    Some(next) => after = Some(next),
                    None => return pages,
                }
            }
        }
    };
    assert_eq!(
        walk(false, 2).await,
        vec![vec!["a", "c"], vec!["d", "f"], vec!["g"]]
    );
    assert_eq!(walk(false, 10).await, vec![vec!["a", "c", "d", "f", "g"]]);
    assert_eq!(walk(true, 2).await, vec![vec!["a", "d"], vec!["g"]]);
    // A limit of 0 still makes progress.
    assert_eq!(walk(true, 0).await.concat(), vec!["a", "d", "g"]);

    let page = store
        .list_running_page(Some(&wf("c")), 1, false)
        .await
        .unwrap();
    assert_eq!(
        page.rows,
        vec![store.summary(&wf("d")).await.unwrap().unwrap()]
    );

    // The timer fires: "c" needs a process again.
    store
        .append(request(&wf("c"), 2, at(100), vec![timer_fired(run(3), 1)]))
        .await
        .unwrap();
    assert_eq!(walk(true, 10).await, vec![vec!["a", "c", "d", "g"]]);
    // list_active keeps its order: start time, then id.
    assert_eq!(
        ids(&store.list_active().await.unwrap()),
        vec!["f", "a", "c", "d", "g"]
    );
}

pub async fn reconcile_pages_cover_every_history_once(store: Arc<dyn Store>) {
    for (n, id) in ["e", "a", "d", "b", "c"].into_iter().enumerate() {
        seed(&store, id, at(n as u64), order_placed(run(n as u128 + 1))).await;
    }
    let mut after: Option<WorkflowId> = None;
    let mut pages = 0;
    loop {
        let (report, next) = store
            .reconcile_visibility_page(after.as_ref(), 2)
            .await
            .unwrap();
        assert_eq!(
            report,
            ReconcileReport::default(),
            "a consistent store is left alone"
        );
        pages += 1;
        match next {
            Some(next) => {
                assert!(
                    after.as_ref().is_none_or(|after| next > *after),
                    "the cursor moves on"
                );
                after = Some(next);
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
}

pub async fn timer_pages_follow_due_order(store: Arc<dyn Store>) {
    let entries = vec![
        timer_entry("b", 2, 1, at(10)),
        timer_entry("a", 1, 2, at(20)),
        timer_entry("b", 2, 2, at(20)),
        timer_entry("a", 1, 1, at(30)),
        timer_entry("c", 3, 1, at(30)),
    ];
    for entry in entries.iter().rev() {
        store.schedule_timer(entry).await.unwrap();
    }
    let mut walked = Vec::new();
    let mut after = None;
    loop {
        let page = store.pending_timers_page(after, 2).await.unwrap();
        assert!(page.broken.is_empty());
        assert!(page.timers.len() <= 2);
        walked.extend(page.timers);
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(walked, entries);
    assert_eq!(store.pending_timers().await.unwrap(), entries);

    let tail = store
        .pending_timers_page(Some((at(20), wf("a"), timer(run(1), 2))), 10)
        .await
        .unwrap();
    assert_eq!(tail.timers, entries[2..].to_vec());
    assert_eq!(tail.next, None);
    let none = store
        .pending_timers_page(
            Some((
                Timestamp::from_millis(i64::MAX / 1000),
                wf("z"),
                timer(run(9), 9),
            )),
            10,
        )
        .await
        .unwrap();
    assert!(none.timers.is_empty() && none.next.is_none());
}

pub async fn timers_of_one_workflow(store: Arc<dyn Store>) {
    let mine = [
        timer_entry("a", 1, 2, at(5)),
        timer_entry("a", 1, 1, at(50)),
    ];
    // Neighbours in key order on both sides ("ab" sorts right after "a").
    for entry in [
        &mine[0],
        &mine[1],
        &timer_entry("ab", 2, 1, at(1)),
        &timer_entry("A", 3, 1, at(1)),
    ] {
        store.schedule_timer(entry).await.unwrap();
    }
    let mut expected = mine.to_vec();
    expected.sort_by(|x, y| x.timer_id.cmp(&y.timer_id));
    assert_eq!(store.timers_of(&wf("a")).await.unwrap(), expected);
    assert_eq!(store.timers_of(&wf("nobody")).await.unwrap(), vec![]);
    store
        .cancel_timer(&wf("a"), &mine[0].timer_id)
        .await
        .unwrap();
    assert_eq!(
        store.timers_of(&wf("a")).await.unwrap(),
        vec![mine[1].clone()]
    );
}

/// The retry state of activities in flight: saved and replaced per command,
/// read only for its own run, and gone with the run's end.
pub async fn activity_attempts_are_kept_per_run_until_it_ends(store: Arc<dyn Store>) {
    use aion::payload::Payload;
    use aion::store::{ActivityAttempt, AttemptState};

    let id = wf("order-1");
    let mut events = order_placed(run(1));
    events.push(Event::ActivityScheduled {
        command: 0,
        activity_type: "Shop.charge".into(),
        input: Payload::etf(vec![1]),
    });
    seed(&store, "order-1", at(0), events).await;
    let attempt = |command: u32, n: u32| ActivityAttempt {
        workflow_id: id.clone(),
        run_id: run(1),
        command,
        state: AttemptState {
            attempt: n,
            retry_at: Some(at(5_000)),
            last_failure: Some(Payload::etf(awkward_bytes(n as u8))),
            heartbeat: (n > 1).then(|| Payload::etf(vec![n as u8])),
        },
    };
    assert_eq!(store.activity_attempt(&id, run(1), 0).await.unwrap(), None);
    store.save_activity_attempt(&attempt(0, 1)).await.unwrap();
    store.save_activity_attempt(&attempt(0, 2)).await.unwrap();
    store.save_activity_attempt(&attempt(3, 1)).await.unwrap();
    assert_eq!(
        store.activity_attempt(&id, run(1), 0).await.unwrap(),
        Some(attempt(0, 2))
    );
    // Another run of the same id never sees them.
    assert_eq!(store.activity_attempt(&id, run(2), 0).await.unwrap(), None);
    assert_eq!(
        store.activity_attempts_of(&id, run(1)).await.unwrap(),
        vec![attempt(0, 2), attempt(3, 1)]
    );

    // The run ends: its records go in the same append.
    store
        .append(request(&id, 2, at(10), vec![completed()]))
        .await
        .unwrap();
    assert_eq!(
        store.activity_attempts_of(&id, run(1)).await.unwrap(),
        vec![]
    );
}
