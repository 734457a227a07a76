//! Test histories, built by scenario. Each builder's doc lists its events by
//! seq (when appended to an empty history).

use aion::event::{Event, SearchAttribute};
use aion::ids::{RunId, TimerId, WorkflowId};
use aion::payload::Payload;
use aion::status::WorkflowSummary;
use aion::store::{AppendRequest, VisibilityStore};
use aion::time::Timestamp;
use aion::visibility::{ListFilter, SearchAttributes, WorkflowListing};

/// An arbitrary fixed instant all test times are relative to.
pub const T0: Timestamp = Timestamp::from_millis(1_700_000_000_000);

/// `T0` plus `millis`.
pub fn at(millis: u64) -> Timestamp {
    T0.plus_millis(millis)
}

/// A workflow id from a test's literal.
pub fn wf(name: &str) -> WorkflowId {
    WorkflowId::new(name).expect("test workflow ids are valid")
}

/// A fixed run id.
pub fn run(n: u128) -> RunId {
    RunId::from_u128(n)
}

/// ETF-like bytes that a lossy text round trip would damage: NUL, high
/// bytes, invalid UTF-8.
pub fn awkward_bytes(tag: u8) -> Vec<u8> {
    vec![
        131, 104, 2, 100, 0, 2, b'o', b'k', 0, 255, 254, 0xC3, 0x28, tag,
    ]
}

/// A `workflow_started` for a first run.
pub fn started(run_id: RunId, workflow_type: &str) -> Event {
    Event::WorkflowStarted {
        run_id,
        parent_run_id: None,
        workflow_type: workflow_type.into(),
        input: Payload::etf(awkward_bytes(0)),
        package_version: None,
        execution_timeout_ms: None,
        run_timeout_ms: None,
        search_attributes: Default::default(),
        parent: None,
    }
}

/// A `workflow_started` continuing `parent`.
pub fn started_after(run_id: RunId, parent: RunId, workflow_type: &str) -> Event {
    Event::WorkflowStarted {
        run_id,
        parent_run_id: Some(parent),
        workflow_type: workflow_type.into(),
        input: Payload::etf(vec![131, 97, 2]),
        package_version: Some("1.2.0".into()),
        execution_timeout_ms: None,
        run_timeout_ms: None,
        search_attributes: Default::default(),
        parent: None,
    }
}

/// A `workflow_started` for a first run, with search attributes.
pub fn started_with(
    run_id: RunId,
    workflow_type: &str,
    attributes: &[(&str, SearchAttribute)],
) -> Event {
    let Event::WorkflowStarted {
        run_id,
        parent_run_id,
        workflow_type,
        input,
        package_version,
        execution_timeout_ms,
        run_timeout_ms,
        ..
    } = started(run_id, workflow_type)
    else {
        unreachable!()
    };
    Event::WorkflowStarted {
        run_id,
        parent_run_id,
        workflow_type,
        input,
        package_version,
        execution_timeout_ms,
        run_timeout_ms,
        search_attributes: attributes_of(attributes),
        parent: None,
    }
}

/// `search_attributes_updated` by command `command`.
pub fn upserted(command: u32, attributes: &[(&str, SearchAttribute)]) -> Event {
    Event::SearchAttributesUpdated {
        command: Some(command),
        attributes: attributes_of(attributes),
    }
}

/// Search attributes from a test's literal.
pub fn attributes_of(attributes: &[(&str, SearchAttribute)]) -> SearchAttributes {
    attributes
        .iter()
        .map(|(name, value)| ((*name).to_owned(), value.clone()))
        .collect()
}

/// `workflow_completed`.
pub fn completed() -> Event {
    Event::WorkflowCompleted {
        result: Payload::etf(awkward_bytes(1)),
    }
}

/// `workflow_failed`.
pub fn failed() -> Event {
    Event::WorkflowFailed {
        error: Payload::etf(vec![131, 100, 0, 4, b'b', b'o', b'o', b'm']),
    }
}

/// `workflow_cancelled`.
pub fn cancelled() -> Event {
    Event::WorkflowCancelled {
        reason: Payload::etf(vec![131, 106]),
    }
}

/// `workflow_timed_out`.
pub fn timed_out() -> Event {
    Event::WorkflowTimedOut { timeout_ms: 60_000 }
}

/// `workflow_continued_as_new` into `new_run_id`.
pub fn continued_as_new(new_run_id: RunId, workflow_type: &str) -> Event {
    Event::WorkflowContinuedAsNew {
        new_run_id,
        workflow_type: workflow_type.into(),
        input: Payload::etf(vec![131, 97, 2]),
    }
}

/// A `marker_recorded` whose value identifies `tag`.
pub fn marker(command: u32, tag: u8) -> Event {
    Event::MarkerRecorded {
        command,
        name: "side_effect".into(),
        value: Payload::etf(awkward_bytes(tag)),
    }
}

/// The timer of command `command` in run `run_id`.
pub fn timer(run_id: RunId, command: u32) -> TimerId {
    TimerId::for_command(run_id, command)
}

/// `timer_started` for command `command`.
pub fn timer_started(run_id: RunId, command: u32, fire_at: Timestamp) -> Event {
    Event::TimerStarted {
        command,
        timer_id: timer(run_id, command),
        fire_at,
    }
}

/// `timer_fired` for command `command`.
pub fn timer_fired(run_id: RunId, command: u32) -> Event {
    Event::TimerFired {
        command,
        timer_id: timer(run_id, command),
    }
}

/// `timer_cancelled` for command `command`.
pub fn timer_cancelled(run_id: RunId, command: u32) -> Event {
    Event::TimerCancelled {
        command,
        timer_id: timer(run_id, command),
    }
}

/// An order just placed:
/// 1. `workflow_started` (Shop.Order)
pub fn order_placed(run_id: RunId) -> Vec<Event> {
    vec![started(run_id, "Shop.Order")]
}

/// An order charged by one activity, then completed:
/// 1. `workflow_started` (Shop.Order)
/// 2. `activity_scheduled` (command 1, Shop.charge)
/// 3. `activity_started` (attempt 1)
/// 4. `activity_completed`
/// 5. `workflow_completed`
pub fn order_fulfilled(run_id: RunId) -> Vec<Event> {
    vec![
        started(run_id, "Shop.Order"),
        Event::ActivityScheduled {
            command: 1,
            activity_type: "Shop.charge".into(),
            input: Payload::etf(awkward_bytes(2)),
        },
        Event::ActivityStarted {
            command: 1,
            attempt: 1,
        },
        Event::ActivityCompleted {
            command: 1,
            result: Payload::etf(awkward_bytes(3)),
            attempts: None,
            last_failure: None,
        },
        completed(),
    ]
}

/// A reminder sleeping on a durable timer:
/// 1. `workflow_started` (Reminder)
/// 2. `timer_started` (command 1, firing at `fire_at`)
pub fn reminder_sleeping(run_id: RunId, fire_at: Timestamp) -> Vec<Event> {
    vec![
        started(run_id, "Reminder"),
        timer_started(run_id, 1, fire_at),
    ]
}

/// A counter that continued as new twice (runs 1, 2, 3), the last run still
/// running:
/// 1. `workflow_started` (run 1)
/// 2. `marker_recorded`
/// 3. `workflow_continued_as_new` (to run 2)
/// 4. `workflow_started` (run 2, parent run 1)
/// 5. `workflow_continued_as_new` (to run 3)
/// 6. `workflow_started` (run 3, parent run 2)
pub fn counter_continued_twice() -> Vec<Event> {
    vec![
        started(run(1), "Counter"),
        marker(1, 1),
        continued_as_new(run(2), "Counter"),
        started_after(run(2), run(1), "Counter"),
        continued_as_new(run(3), "Counter"),
        started_after(run(3), run(2), "Counter"),
    ]
}

/// A request appending `events` to `id` after `expected_seq`, all recorded at `recorded_at`.
pub fn request(
    id: &WorkflowId,
    expected_seq: u64,
    recorded_at: Timestamp,
    events: Vec<Event>,
) -> AppendRequest {
    AppendRequest::new(id.clone(), expected_seq, recorded_at, events)
}

/// Every workflow matching `filter`, newest first, walked page by page
/// (`page` rows each) through `list`.
pub async fn list_all<S: VisibilityStore + ?Sized>(
    store: &S,
    filter: &ListFilter,
    page: usize,
) -> Vec<WorkflowListing> {
    let mut rows = Vec::new();
    let mut after = None;
    loop {
        let listed = store.list(filter, after.as_ref(), page).await.unwrap();
        assert!(
            listed.rows.len() <= page.max(1),
            "a page holds at most its limit"
        );
        rows.extend(listed.rows);
        match listed.next {
            Some(next) => after = Some(next),
            None => return rows,
        }
    }
}

/// Every visibility row, newest first.
pub async fn all_rows<S: VisibilityStore + ?Sized>(store: &S) -> Vec<WorkflowSummary> {
    list_all(store, &ListFilter::default(), 100)
        .await
        .into_iter()
        .map(|row| row.summary)
        .collect()
}
