//! Resolver tests: hand-written scenarios, then properties over random
//! command programs and the histories they record.

use proptest::prelude::*;

use super::*;
use crate::event::Envelope;
use crate::ids::WorkflowId;

const RUN: RunId = RunId::from_u128(1);

/// A command as a test program issues it, with the outcome it gets live.
#[derive(Clone, Debug, PartialEq)]
enum Step {
    Activity { name: &'static str, ok: bool },
    Sleep,
    Marker { name: &'static str },
}

impl Step {
    fn spec(&self) -> CommandSpec {
        match self {
            Step::Activity { name, .. } => CommandSpec::new(CommandKind::Activity, *name),
            Step::Sleep => CommandSpec::new(CommandKind::Timer, ""),
            Step::Marker { name } => CommandSpec::new(CommandKind::Marker, *name),
        }
    }

    /// The events the live run records for this step (opening, then outcome).
    fn events(&self, ordinal: u32) -> Vec<Event> {
        let payload = Payload::etf(vec![ordinal as u8]);
        match self {
            Step::Activity { name, ok } => vec![
                Event::ActivityScheduled {
                    command: ordinal,
                    activity_type: (*name).into(),
                    input: payload.clone(),
                },
                if *ok {
                    Event::ActivityCompleted {
                        command: ordinal,
                        result: payload,
                        attempts: None,
                        last_failure: None,
                    }
                } else {
                    Event::ActivityFailed {
                        command: ordinal,
                        error: payload,
                        attempts: None,
                    }
                },
            ],
            Step::Sleep => {
                let timer_id = TimerId::for_command(RUN, ordinal);
                vec![
                    Event::TimerStarted {
                        command: ordinal,
                        timer_id: timer_id.clone(),
                        fire_at: Timestamp::from_millis(1),
                    },
                    Event::TimerFired {
                        command: ordinal,
                        timer_id,
                    },
                ]
            }
            Step::Marker { name } => vec![Event::MarkerRecorded {
                command: ordinal,
                name: (*name).into(),
                value: payload,
            }],
        }
    }

    fn outcome(&self, ordinal: u32) -> Outcome {
        let payload = Payload::etf(vec![ordinal as u8]);
        match self {
            Step::Activity { ok: true, .. } => Outcome::Completed(payload),
            Step::Activity { ok: false, .. } => Outcome::Failed(payload),
            Step::Sleep => Outcome::Fired,
            Step::Marker { .. } => Outcome::Recorded(payload),
        }
    }
}

fn recorded_at(seq: u64, event: Event) -> RecordedEvent {
    RecordedEvent {
        envelope: Envelope {
            workflow_id: WorkflowId::new("wf").unwrap(),
            seq,
            recorded_at: Timestamp::EPOCH,
        },
        event,
    }
}

fn recorded(events: Vec<Event>) -> Vec<RecordedEvent> {
    let workflow_id = WorkflowId::new("wf").unwrap();
    std::iter::once(Event::WorkflowStarted {
        run_id: RUN,
        parent_run_id: None,
        workflow_type: "T".into(),
        input: Payload::etf(vec![]),
        package_version: None,
        execution_timeout_ms: None,
        run_timeout_ms: None,
        search_attributes: Default::default(),
        parent: None,
    })
    .chain(events)
    .zip(1..)
    .map(|(event, seq)| RecordedEvent {
        envelope: Envelope {
            workflow_id: workflow_id.clone(),
            seq,
            recorded_at: Timestamp::EPOCH,
        },
        event,
    })
    .collect()
}

/// Runs `program` live against an empty history, recording as it goes, and
/// returns the history it wrote.
fn run_live(program: &[Step]) -> Vec<RecordedEvent> {
    let mut resolver = Resolver::new(RUN);
    let mut events = Vec::new();
    for step in program {
        let Resolution::Live { ordinal } = resolver.resolve(&step.spec()).unwrap() else {
            panic!("a fresh run resolves everything live");
        };
        let step_events = step.events(ordinal);
        let seq = events.len() as u64 + 2;
        resolver
            .apply(&recorded_at(seq, step_events[0].clone()))
            .unwrap();
        assert!(resolver.issued_live(ordinal));
        events.extend(step_events);
    }
    let history = recorded(events);
    // Feeding the live events back in must be accepted, in order.
    let mut check = Resolver::new(RUN);
    for event in &history {
        check.apply(event).unwrap();
    }
    history
}

#[test]
fn replays_recorded_outcomes_in_program_order() {
    let program = [
        Step::Activity {
            name: "Shop.reserve",
            ok: true,
        },
        Step::Sleep,
        Step::Marker { name: "now" },
        Step::Activity {
            name: "Shop.charge",
            ok: false,
        },
    ];
    let history = run_live(&program);
    let mut resolver = Resolver::from_segment(RUN, &history).unwrap();
    for (ordinal, step) in program.iter().enumerate() {
        let ordinal = ordinal as u32;
        assert_eq!(
            resolver.resolve(&step.spec()).unwrap(),
            Resolution::Replayed {
                ordinal,
                outcome: step.outcome(ordinal)
            }
        );
    }
    assert_eq!(
        resolver.resolve(&Step::Sleep.spec()).unwrap(),
        Resolution::Live { ordinal: 4 }
    );
    resolver.finish().unwrap();
}

#[test]
fn scheduled_without_outcome_resumes_waiting() {
    let mut history = recorded(vec![
        Event::ActivityScheduled {
            command: 0,
            activity_type: "Shop.charge".into(),
            input: Payload::etf(vec![9]),
        },
        Event::ActivityStarted {
            command: 0,
            attempt: 1,
        },
    ]);
    // A schedule_to_close deadline counts from when the activity was scheduled.
    let scheduled_at = Timestamp::from_millis(42_000);
    history[1].envelope.recorded_at = scheduled_at;
    let mut resolver = Resolver::from_segment(RUN, &history).unwrap();
    assert_eq!(resolver.pending().len(), 1);
    assert_eq!(
        resolver
            .resolve(&CommandSpec::new(CommandKind::Activity, "Shop.charge"))
            .unwrap(),
        Resolution::Pending {
            ordinal: 0,
            work: PendingWork::Activity {
                activity_type: "Shop.charge".into(),
                input: Payload::etf(vec![9]),
                attempts: 1,
                scheduled_at,
            }
        }
    );
}

#[test]
fn a_different_command_is_nondeterminism_naming_key_expected_and_found() {
    let history = run_live(&[Step::Activity {
        name: "Shop.reserve",
        ok: true,
    }]);
    let mut resolver = Resolver::from_segment(RUN, &history).unwrap();
    let error = resolver.resolve(&Step::Sleep.spec()).unwrap_err();
    assert_eq!(error.code(), "AION-ND001");
    assert_eq!(
        error.to_string(),
        format!(
            "[AION-ND001] non-determinism in run {RUN} at command #0: history recorded activity `Shop.reserve`, the workflow code issued timer"
        )
    );
}

#[test]
fn a_renamed_activity_is_nondeterminism() {
    let history = run_live(&[Step::Activity {
        name: "Shop.reserve",
        ok: true,
    }]);
    let mut resolver = Resolver::from_segment(RUN, &history).unwrap();
    let error = resolver
        .resolve(&CommandSpec::new(CommandKind::Activity, "Shop.hold"))
        .unwrap_err();
    assert!(matches!(error, ReplayError::Mismatch { ordinal: 0, .. }));
}

#[test]
fn finishing_early_is_nondeterminism() {
    let history = run_live(&[Step::Sleep, Step::Marker { name: "now" }]);
    let mut resolver = Resolver::from_segment(RUN, &history).unwrap();
    resolver.resolve(&Step::Sleep.spec()).unwrap();
    let error = resolver.finish().unwrap_err();
    assert_eq!(error.code(), "AION-ND002");
    assert!(
        error.to_string().contains("command #1 was marker `now`"),
        "{error}"
    );
}

#[test]
fn events_that_do_not_fit_are_reported_not_panicked_on() {
    let orphan = recorded(vec![Event::ActivityCompleted {
        command: 3,
        result: Payload::etf(vec![]),
        attempts: None,
        last_failure: None,
    }]);
    let error = Resolver::from_segment(RUN, &orphan).unwrap_err();
    assert_eq!(error.code(), "AION-ND003");
    assert_eq!(
        error,
        ReplayError::UnexpectedEvent {
            run_id: RUN,
            seq: 2,
            event: "activity_completed",
            ordinal: Some(3)
        }
    );

    let gap = recorded(vec![Event::MarkerRecorded {
        command: 1,
        name: "now".into(),
        value: Payload::etf(vec![]),
    }]);
    assert!(Resolver::from_segment(RUN, &gap).is_err());
}

#[test]
fn a_duplicate_timer_fired_is_a_damaged_history() {
    let mut events = Step::Sleep.events(0);
    events.push(events[1].clone());
    let error = Resolver::from_segment(RUN, &recorded(events)).unwrap_err();
    assert_eq!(error.code(), "AION-ND003");
    assert_eq!(
        error,
        ReplayError::UnexpectedEvent {
            run_id: RUN,
            seq: 4,
            event: "timer_fired",
            ordinal: Some(0)
        }
    );
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (
            prop::sample::select(vec!["A.a", "A.b", "B.c"]),
            any::<bool>()
        )
            .prop_map(|(name, ok)| Step::Activity { name, ok }),
        Just(Step::Sleep),
        prop::sample::select(vec!["now", "side_effect"]).prop_map(|name| Step::Marker { name }),
    ]
}

proptest! {
    /// Replaying the program that wrote a history returns every recorded
    /// outcome, in order, and nothing runs live.
    #[test]
    fn replay_of_the_same_program_returns_recorded_outcomes(program in prop::collection::vec(step(), 0..40)) {
        let history = run_live(&program);
        let mut resolver = Resolver::from_segment(RUN, &history).unwrap();
        for (ordinal, step) in program.iter().enumerate() {
            let ordinal = ordinal as u32;
            prop_assert_eq!(resolver.resolve(&step.spec()).unwrap(), Resolution::Replayed { ordinal, outcome: step.outcome(ordinal) });
        }
        prop_assert!(resolver.finish().is_ok());
    }

    /// A crash can cut a history after any event: replay then returns what
    /// was recorded, resumes the command in flight, and hands off to live
    /// execution exactly where history ends.
    #[test]
    fn a_cut_history_replays_its_prefix_then_goes_live(program in prop::collection::vec(step(), 1..30), cut in any::<prop::sample::Index>()) {
        let history = run_live(&program);
        let keep = 1 + cut.index(history.len());
        let mut resolver = Resolver::from_segment(RUN, &history[..keep]).unwrap();
        for (ordinal, step) in program.iter().enumerate() {
            let ordinal = ordinal as u32;
            match resolver.resolve(&step.spec()).unwrap() {
                Resolution::Replayed { outcome, .. } => prop_assert_eq!(outcome, step.outcome(ordinal)),
                Resolution::Pending { .. } => {}
                Resolution::Live { ordinal: live } => {
                    // The handoff is where history ends; live code records
                    // this command before it issues another.
                    prop_assert_eq!(live, ordinal);
                    prop_assert_eq!(live, resolver.recorded());
                    break;
                }
                Resolution::Interrupted(interrupt) => prop_assert!(false, "no interrupt was recorded: {interrupt:?}"),
            }
        }
    }

    /// Changing the command at any position is detected at that position.
    #[test]
    fn a_changed_command_is_caught_at_its_key(program in prop::collection::vec(step(), 1..30), at in any::<prop::sample::Index>(), other in step()) {
        let position = at.index(program.len());
        prop_assume!(other.spec() != program[position].spec());
        let history = run_live(&program);
        let mut resolver = Resolver::from_segment(RUN, &history).unwrap();
        for step in &program[..position] {
            resolver.resolve(&step.spec()).unwrap();
        }
        let error = resolver.resolve(&other.spec()).unwrap_err();
        let is_mismatch_at_position = matches!(error, ReplayError::Mismatch { ordinal, .. } if ordinal as usize == position);
        prop_assert!(is_mismatch_at_position);
    }
}

#[test]
fn a_live_command_takes_its_ordinal_only_when_recorded() {
    let mut resolver = Resolver::new(RUN);
    let marker = Step::Marker {
        name: "side_effect",
    };
    // Issued, but the code raised before recording it: nothing is consumed,
    // and the next command (here a different one) gets the same ordinal.
    assert_eq!(
        resolver.resolve(&marker.spec()).unwrap(),
        Resolution::Live { ordinal: 0 }
    );
    assert!(resolver.is_live_edge(0));
    assert!(!resolver.issued_live(0), "nothing recorded at 0 yet");
    assert_eq!(
        resolver.resolve(&Step::Sleep.spec()).unwrap(),
        Resolution::Live { ordinal: 0 }
    );
    let events = Step::Sleep.events(0);
    resolver.apply(&recorded_at(2, events[0].clone())).unwrap();
    assert!(resolver.issued_live(0));
    assert!(!resolver.issued_live(0), "an ordinal is consumed once");
    assert_eq!(
        resolver.resolve(&marker.spec()).unwrap(),
        Resolution::Live { ordinal: 1 }
    );
    resolver.finish().unwrap();
}

#[test]
fn a_wait_interrupted_before_it_was_recorded_replays_interrupted_not_as_the_next_command() {
    // with_timeout(_, fn -> await_signal(:never) end) timed out live before
    // its wait was recorded; the code then took signal `item` at ordinal 1.
    let timer_id = TimerId::for_command(RUN, 0);
    let history = recorded(vec![
        Event::TimerStarted {
            command: 0,
            timer_id: timer_id.clone(),
            fire_at: Timestamp::EPOCH,
        },
        Event::TimerFired {
            command: 0,
            timer_id,
        },
        Event::SignalReceived {
            signal_name: "item".into(),
            payload: Payload::etf(vec![]),
            sent_by: None,
        },
        Event::SignalConsumed {
            command: 1,
            signal_name: "item".into(),
            received_seq: 4,
        },
    ]);
    let mut resolver = Resolver::from_segment(RUN, &history).unwrap();
    let within = Scope {
        timers: vec![0],
        shielded: false,
    };
    assert!(matches!(
        resolver.resolve(&Step::Sleep.spec()),
        Ok(Resolution::Replayed { ordinal: 0, .. })
    ));
    assert_eq!(
        resolver.resolve_in(&CommandSpec::new(CommandKind::Signal, "never"), &within),
        Ok(Resolution::Interrupted(Interrupt::TimedOut(0)))
    );
    assert!(matches!(
        resolver.resolve(&CommandSpec::new(CommandKind::Signal, "item")),
        Ok(Resolution::Replayed { ordinal: 1, .. })
    ));
    resolver.finish().unwrap();
}

#[test]
fn futures_started_before_a_deadline_fired_replay_started_and_their_wait_times_out() {
    // with_timeout(_, fn -> a = start_activity(A); b = start_activity(B);
    // await_any([a, b]) end) timed out live after both started: the wait met
    // the deadline, the with_timeout cancelled both, and the code went on to
    // activity C. A replay must meet the deadline at the same wait, not at
    // `start_activity(A)` (which skipped B, and compared B with C: AION-ND001).
    let timer_id = TimerId::for_command(RUN, 0);
    let scheduled = |command: u32, name: &str| Event::ActivityScheduled {
        command,
        activity_type: name.into(),
        input: Payload::etf(vec![]),
    };
    let history = recorded(vec![
        Event::TimerStarted {
            command: 0,
            timer_id: timer_id.clone(),
            fire_at: Timestamp::EPOCH,
        },
        scheduled(1, "A"),
        scheduled(2, "B"),
        Event::TimerFired {
            command: 0,
            timer_id,
        },
        Event::ActivityCancelled { command: 1 },
        Event::ActivityCancelled { command: 2 },
        scheduled(3, "C"),
    ]);
    let mut resolver = Resolver::from_segment(RUN, &history).unwrap();
    let within = Scope {
        timers: vec![0],
        shielded: false,
    };
    let activity = |name: &str| CommandSpec::new(CommandKind::Activity, name);
    assert!(matches!(
        resolver.resolve(&Step::Sleep.spec()),
        Ok(Resolution::Replayed { ordinal: 0, .. })
    ));
    for (ordinal, name) in [(1, "A"), (2, "B")] {
        assert_eq!(
            resolver.resolve_in(&activity(name), &within),
            Ok(Resolution::Replayed {
                ordinal,
                outcome: Outcome::Cancelled
            })
        );
    }
    assert_eq!(
        resolver.settle(&[1, 2], &within),
        Settled::Interrupted(Interrupt::TimedOut(0))
    );
    assert!(matches!(
        resolver.resolve(&activity("C")),
        Ok(Resolution::Pending { ordinal: 3, .. })
    ));
    resolver.finish().unwrap();
}

#[test]
fn a_cancellation_recorded_after_a_future_started_is_met_by_the_wait_as_live() {
    // t0 = start_timer(_); t1 = start_timer(_); await(t0): the cancellation
    // arrived while the code waited, and history ends there (a crash before
    // the code met it). Live, the code met it at the wait, with both timers
    // started; a replay must too (raising at `start_timer` left t1 unissued,
    // so the cancellation after it did not cancel t1).
    let timer = |command: u32| Event::TimerStarted {
        command,
        timer_id: TimerId::for_command(RUN, command),
        fire_at: Timestamp::EPOCH,
    };
    let history = recorded(vec![
        timer(0),
        timer(1),
        Event::CancelRequested {
            reason: Payload::etf(vec![7]),
        },
    ]);
    let mut resolver = Resolver::from_segment(RUN, &history).unwrap();
    for ordinal in [0, 1] {
        assert!(matches!(
            resolver.resolve(&Step::Sleep.spec()),
            Ok(Resolution::Pending { ordinal: o, .. }) if o == ordinal
        ));
    }
    assert!(!resolver.cancel_delivered());
    assert_eq!(
        resolver.settle(&[0], &Scope::default()),
        Settled::Interrupted(Interrupt::Cancelled(Payload::etf(vec![7])))
    );
    assert!(resolver.cancel_delivered());
}
