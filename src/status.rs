//! Projections of history: a workflow's status and summary (scoped to its
//! latest run segment) and its run chain. Every store backend maintains its
//! visibility rows with these functions, so all backends agree.

use std::fmt;

use crate::event::{Event, RecordedEvent};
use crate::ids::{RunId, WorkflowId};
use crate::time::Timestamp;

/// The status of a workflow's latest run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WorkflowStatus {
    /// Not finished.
    Running,
    /// Returned a result.
    Completed,
    /// Failed.
    Failed,
    /// Cancelled.
    Cancelled,
    /// Terminated from outside.
    Terminated,
    /// Timed out.
    TimedOut,
    /// Ended by continue-as-new; a successor run follows.
    ContinuedAsNew,
}

impl WorkflowStatus {
    /// All statuses.
    pub const ALL: [WorkflowStatus; 7] = [
        WorkflowStatus::Running,
        WorkflowStatus::Completed,
        WorkflowStatus::Failed,
        WorkflowStatus::Cancelled,
        WorkflowStatus::Terminated,
        WorkflowStatus::TimedOut,
        WorkflowStatus::ContinuedAsNew,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkflowStatus::Running => "running",
            WorkflowStatus::Completed => "completed",
            WorkflowStatus::Failed => "failed",
            WorkflowStatus::Cancelled => "cancelled",
            WorkflowStatus::Terminated => "terminated",
            WorkflowStatus::TimedOut => "timed_out",
            WorkflowStatus::ContinuedAsNew => "continued_as_new",
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == name)
    }

    /// Whether the run has ended.
    pub fn is_terminal(self) -> bool {
        self != WorkflowStatus::Running
    }

    /// The status an event leaves its run in, if it changes it.
    pub fn after(event: &Event) -> Option<Self> {
        match event {
            Event::WorkflowStarted { .. } => Some(WorkflowStatus::Running),
            Event::WorkflowCompleted { .. } => Some(WorkflowStatus::Completed),
            Event::WorkflowFailed { .. } => Some(WorkflowStatus::Failed),
            Event::WorkflowCancelled { .. } => Some(WorkflowStatus::Cancelled),
            Event::WorkflowTerminated { .. } => Some(WorkflowStatus::Terminated),
            Event::WorkflowTimedOut { .. } => Some(WorkflowStatus::TimedOut),
            Event::WorkflowContinuedAsNew { .. } => Some(WorkflowStatus::ContinuedAsNew),
            _ => None,
        }
    }
}

impl fmt::Display for WorkflowStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How large a run's history is: its events, and the bytes of their
/// payloads ([`Event::payload_bytes`]; the fixed framing of each event is
/// not counted). A workflow reads it to decide when to continue as new.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HistorySize {
    /// Events.
    pub events: u64,
    /// Payload bytes.
    pub bytes: u64,
}

impl HistorySize {
    /// The size of `events` (a run segment, or part of one).
    pub fn of(events: &[RecordedEvent]) -> Self {
        let mut size = Self::default();
        for recorded in events {
            size.add(&recorded.event);
        }
        size
    }

    /// Counts one more event.
    pub fn add(&mut self, event: &Event) {
        self.events += 1;
        self.bytes += event.payload_bytes();
    }
}

/// The visibility row of one workflow: its latest run's identity and status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkflowSummary {
    /// The workflow.
    pub workflow_id: WorkflowId,
    /// The latest run's workflow type.
    pub workflow_type: String,
    /// The latest run.
    pub run_id: RunId,
    /// The latest run's status.
    pub status: WorkflowStatus,
    /// When the latest run started.
    pub started_at: Timestamp,
    /// When the latest run ended, if it has.
    pub closed_at: Option<Timestamp>,
    /// When the history last grew.
    pub updated_at: Timestamp,
    /// The history's last `seq`.
    pub head_seq: u64,
}

/// A history that cannot be projected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "history of {workflow_id} does not begin with workflow_started (first event: seq {seq}, {kind})"
)]
pub struct NotStarted {
    /// The workflow.
    pub workflow_id: WorkflowId,
    /// The offending event's seq.
    pub seq: u64,
    /// The offending event's kind.
    pub kind: &'static str,
}

impl WorkflowSummary {
    /// Folds `events` (the next events of the history, in order) into the
    /// projection `current` (`None` before the first event).
    pub fn project(
        current: Option<WorkflowSummary>,
        events: &[RecordedEvent],
    ) -> Result<Option<WorkflowSummary>, NotStarted> {
        let mut summary = current;
        for recorded in events {
            let at = recorded.envelope.recorded_at;
            match (&mut summary, &recorded.event) {
                (
                    _,
                    Event::WorkflowStarted {
                        run_id,
                        workflow_type,
                        ..
                    },
                ) => {
                    summary = Some(WorkflowSummary {
                        workflow_id: recorded.envelope.workflow_id.clone(),
                        workflow_type: workflow_type.clone(),
                        run_id: *run_id,
                        status: WorkflowStatus::Running,
                        started_at: at,
                        closed_at: None,
                        updated_at: at,
                        head_seq: recorded.seq(),
                    });
                }
                (None, event) => {
                    return Err(NotStarted {
                        workflow_id: recorded.envelope.workflow_id.clone(),
                        seq: recorded.seq(),
                        kind: event.kind().as_str(),
                    });
                }
                (Some(row), event) => {
                    if let Some(status) = WorkflowStatus::after(event) {
                        row.status = status;
                        row.closed_at = Some(at);
                    }
                    row.updated_at = at;
                    row.head_seq = recorded.seq();
                }
            }
        }
        Ok(summary)
    }
}

/// One run of a workflow, as seen in its history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunSummary {
    /// The run.
    pub run_id: RunId,
    /// The run it continues, if any.
    pub parent_run_id: Option<RunId>,
    /// Its workflow type.
    pub workflow_type: String,
    /// Its status.
    pub status: WorkflowStatus,
    /// `seq` of its `workflow_started`.
    pub first_seq: u64,
    /// `seq` of its last event.
    pub last_seq: u64,
    /// When it started.
    pub started_at: Timestamp,
    /// When it ended, if it has.
    pub closed_at: Option<Timestamp>,
}

impl RunSummary {
    /// Folds `events` (the next events of a history, in order) into its runs:
    /// `latest` is the history's latest run before them (`None` for an empty
    /// history). Returns the runs the events touch, oldest first: `latest`
    /// updated (if any event extends it), then each run the events open.
    ///
    /// This is the projection behind the stores' runs table: every backend
    /// writes exactly these rows in the transaction of the append.
    pub fn project(
        latest: Option<RunSummary>,
        events: &[RecordedEvent],
    ) -> Result<Vec<RunSummary>, NotStarted> {
        let mut touched: Vec<RunSummary> = Vec::new();
        // The run events go to, and whether any has yet: a run that only
        // existed before `events` is not rewritten.
        let mut latest = latest.map(|run| (run, false));
        for recorded in events {
            let at = recorded.envelope.recorded_at;
            if let Event::WorkflowStarted {
                run_id,
                parent_run_id,
                workflow_type,
                ..
            } = &recorded.event
            {
                if let Some((run, true)) = latest.take() {
                    touched.push(run);
                }
                let run = RunSummary {
                    run_id: *run_id,
                    parent_run_id: *parent_run_id,
                    workflow_type: workflow_type.clone(),
                    status: WorkflowStatus::Running,
                    first_seq: recorded.seq(),
                    last_seq: recorded.seq(),
                    started_at: at,
                    closed_at: None,
                };
                latest = Some((run, true));
                continue;
            }
            let Some((run, extended)) = latest.as_mut() else {
                return Err(NotStarted {
                    workflow_id: recorded.envelope.workflow_id.clone(),
                    seq: recorded.seq(),
                    kind: recorded.event.kind().as_str(),
                });
            };
            *extended = true;
            run.last_seq = recorded.seq();
            if let Some(status) = WorkflowStatus::after(&recorded.event) {
                run.status = status;
                run.closed_at = Some(at);
            }
        }
        if let Some((run, true)) = latest {
            touched.push(run);
        }
        Ok(touched)
    }
}

impl WorkflowSummary {
    /// The visibility row of `workflow_id` whose latest run is `run` and whose
    /// last event (seq `run.last_seq`) was recorded at `updated_at`: the same
    /// row [`WorkflowSummary::project`] computes from the whole history.
    pub fn of_run(
        workflow_id: WorkflowId,
        run: &RunSummary,
        updated_at: Timestamp,
    ) -> WorkflowSummary {
        WorkflowSummary {
            workflow_id,
            workflow_type: run.workflow_type.clone(),
            run_id: run.run_id,
            status: run.status,
            started_at: run.started_at,
            closed_at: run.closed_at,
            updated_at,
            head_seq: run.last_seq,
        }
    }
}

/// The runs of a history, oldest first (events before its first
/// `workflow_started`, which no history written by Aion has, are skipped).
pub fn run_chain(history: &[RecordedEvent]) -> Vec<RunSummary> {
    let first_start = history
        .iter()
        .position(|recorded| matches!(recorded.event, Event::WorkflowStarted { .. }))
        .unwrap_or(history.len());
    // From a run's start, every event belongs to a run: the projection cannot fail.
    RunSummary::project(None, &history[first_start..]).unwrap_or_default()
}

/// The latest run segment of a history: the events from its last
/// `workflow_started` on, with that run's id. `None` for an empty history.
pub fn current_run(history: &[RecordedEvent]) -> Option<(RunId, &[RecordedEvent])> {
    history
        .iter()
        .enumerate()
        .rev()
        .find_map(|(index, recorded)| match &recorded.event {
            Event::WorkflowStarted { run_id, .. } => Some((*run_id, &history[index..])),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Envelope;
    use crate::payload::Payload;

    fn at(seq: u64, event: Event) -> RecordedEvent {
        RecordedEvent {
            envelope: Envelope {
                workflow_id: WorkflowId::new("wf").unwrap(),
                seq,
                recorded_at: Timestamp::from_millis(seq as i64 * 10),
            },
            event,
        }
    }

    fn started(run: u128, parent: Option<u128>) -> Event {
        Event::WorkflowStarted {
            run_id: RunId::from_u128(run),
            parent_run_id: parent.map(RunId::from_u128),
            workflow_type: "T".into(),
            input: Payload::etf(vec![]),
            package_version: None,
            execution_timeout_ms: None,
            run_timeout_ms: None,
            search_attributes: Default::default(),
            parent: None,
            reset_from: None,
        }
    }

    #[test]
    fn status_follows_the_latest_run_segment() {
        let history = vec![
            at(1, started(1, None)),
            at(
                2,
                Event::WorkflowContinuedAsNew {
                    new_run_id: RunId::from_u128(2),
                    workflow_type: "T".into(),
                    input: Payload::etf(vec![]),
                },
            ),
        ];
        let summary = WorkflowSummary::project(None, &history).unwrap().unwrap();
        assert_eq!(summary.status, WorkflowStatus::ContinuedAsNew);
        assert_eq!(summary.closed_at, Some(Timestamp::from_millis(20)));

        let next = WorkflowSummary::project(Some(summary), &[at(3, started(2, Some(1)))])
            .unwrap()
            .unwrap();
        assert_eq!(
            (next.status, next.run_id, next.head_seq),
            (WorkflowStatus::Running, RunId::from_u128(2), 3)
        );
        assert_eq!(next.closed_at, None);
    }

    #[test]
    fn a_history_must_begin_with_workflow_started() {
        let error =
            WorkflowSummary::project(None, &[at(1, Event::ActivityCancelled { command: 0 })])
                .unwrap_err();
        assert_eq!(error.kind, "activity_cancelled");
    }

    #[test]
    fn run_chain_and_current_segment() {
        let history = vec![
            at(1, started(1, None)),
            at(
                2,
                Event::WorkflowContinuedAsNew {
                    new_run_id: RunId::from_u128(2),
                    workflow_type: "T".into(),
                    input: Payload::etf(vec![]),
                },
            ),
            at(3, started(2, Some(1))),
            at(4, Event::ActivityCancelled { command: 0 }),
        ];
        let chain = run_chain(&history);
        assert_eq!(chain.len(), 2);
        assert_eq!(
            (chain[0].status, chain[0].first_seq, chain[0].last_seq),
            (WorkflowStatus::ContinuedAsNew, 1, 2)
        );
        assert_eq!(
            (chain[1].parent_run_id, chain[1].status, chain[1].last_seq),
            (Some(RunId::from_u128(1)), WorkflowStatus::Running, 4)
        );
        let (run, segment) = current_run(&history).unwrap();
        assert_eq!(run, RunId::from_u128(2));
        assert_eq!(segment.len(), 2);
        assert!(current_run(&[]).is_none());
    }
}
