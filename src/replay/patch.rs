//! Patches: `patched?(change_id)` in workflow code, Temporal's way of
//! changing a workflow type while runs recorded by its older code still
//! replay.
//!
//! A patch is a marker command named `patch:<change_id>`. Unlike other
//! commands, a patch check may find history holding something else at its
//! position without that being non-determinism: the run was recorded by code
//! from before the patch, so the check answers "not patched" (take the old
//! branch) and consumes nothing; the command the old code recorded there is
//! matched by the next command the code issues. At the live edge the check
//! is recorded and answers "patched" (take the new branch).
//!
//! A run answers the same for a change id every time it asks: the first
//! answer is remembered, as Temporal's SDKs do. So a run recorded before a
//! patch keeps taking the old branch after its replay reaches the live edge,
//! and a check inside a loop records one marker, not one per iteration.
//!
//! A patch marker in history that the code no longer asks for (the patch
//! was removed while runs recorded with it still exist) is ordinary
//! non-determinism: `AION-ND001` or `AION-ND002` naming the marker.

use std::collections::HashMap;

use super::Scope;
use super::{CommandKind, CommandSpec, ReplayError, Resolution, Resolver};

/// The prefix of a patch marker's name; the Elixir side records markers
/// under the same name (`Aion.Workflow.Marker`).
pub const PATCH_MARKER_PREFIX: &str = "patch:";

/// The command a check of `change_id` records.
pub fn patch_spec(change_id: &str) -> CommandSpec {
    CommandSpec::new(
        CommandKind::Marker,
        format!("{PATCH_MARKER_PREFIX}{change_id}"),
    )
}

/// The answer to a patch check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchResolution {
    /// Take the new branch; nothing to record (history holds the marker, or
    /// the run already answered this change id).
    Patched,
    /// Take the old branch: the run was recorded before the patch existed.
    NotPatched,
    /// History ends here: record the patch marker under `ordinal`, then take
    /// the new branch.
    Live {
        /// The ordinal to record the marker under.
        ordinal: u32,
    },
}

/// The answers a run has given, by change id.
#[derive(Clone, Debug, Default)]
pub(crate) struct PatchMemo {
    answers: HashMap<String, bool>,
}

impl Resolver {
    /// Resolves a check of `change_id` at the next position. Never a
    /// non-determinism error: a position holding another command means old
    /// code recorded it (see the module docs).
    pub fn resolve_patch(&mut self, change_id: &str) -> Result<PatchResolution, ReplayError> {
        if let Some(&patched) = self.patches.answers.get(change_id) {
            return Ok(if patched {
                PatchResolution::Patched
            } else {
                PatchResolution::NotPatched
            });
        }
        let spec = patch_spec(change_id);
        let resolution = match self.commands.get(self.cursor as usize) {
            Some(entry) if entry.spec != spec => PatchResolution::NotPatched,
            // A check never waits, so nothing interrupts it (shielded, no
            // timers): recording its marker live is what may be interrupted.
            _ => match self.resolve_in(
                &spec,
                &Scope {
                    timers: Vec::new(),
                    shielded: true,
                },
            )? {
                Resolution::Live { ordinal } => PatchResolution::Live { ordinal },
                Resolution::Replayed { .. }
                | Resolution::Pending { .. }
                | Resolution::Interrupted(_) => PatchResolution::Patched,
            },
        };
        self.patches.answers.insert(
            change_id.to_owned(),
            resolution != PatchResolution::NotPatched,
        );
        Ok(resolution)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::event::{Envelope, Event, RecordedEvent};
    use crate::ids::{RunId, WorkflowId};
    use crate::payload::Payload;
    use crate::replay::Outcome;
    use crate::time::Timestamp;

    const RUN: RunId = RunId::from_u128(7);

    fn at(seq: u64, event: Event) -> RecordedEvent {
        RecordedEvent {
            envelope: Envelope {
                workflow_id: WorkflowId::new("wf").unwrap(),
                seq,
                recorded_at: Timestamp::EPOCH,
            },
            event,
        }
    }

    fn marker(command: u32, name: &str) -> Event {
        Event::MarkerRecorded {
            command,
            name: name.into(),
            value: Payload::etf(vec![command as u8]),
        }
    }

    fn activity(command: u32, name: &str) -> [Event; 2] {
        [
            Event::ActivityScheduled {
                command,
                activity_type: name.into(),
                input: Payload::etf(vec![]),
            },
            Event::ActivityCompleted {
                command,
                result: Payload::etf(vec![command as u8]),
                attempts: None,
                last_failure: None,
            },
        ]
    }

    fn history(events: impl IntoIterator<Item = Event>) -> Resolver {
        let started = Event::WorkflowStarted {
            run_id: RUN,
            parent_run_id: None,
            workflow_type: "T".into(),
            input: Payload::etf(vec![]),
            package_version: None,
            execution_timeout_ms: None,
            run_timeout_ms: None,
            search_attributes: Default::default(),
            parent: None,
        };
        let segment: Vec<_> = std::iter::once(started)
            .chain(events)
            .zip(1..)
            .map(|(event, seq)| at(seq, event))
            .collect();
        Resolver::from_segment(RUN, &segment).unwrap()
    }

    fn activity_spec(name: &str) -> CommandSpec {
        CommandSpec::new(CommandKind::Activity, name)
    }

    #[test]
    fn a_recorded_patch_marker_is_consumed_and_patched() {
        let [scheduled, completed] = activity(1, "Shop.charge");
        let mut resolver = history([marker(0, "patch:fee"), scheduled, completed]);
        assert_eq!(
            resolver.resolve_patch("fee").unwrap(),
            PatchResolution::Patched
        );
        assert_eq!(resolver.issued(), 1);
        assert!(matches!(
            resolver.resolve(&activity_spec("Shop.charge")).unwrap(),
            Resolution::Replayed { ordinal: 1, .. }
        ));
        resolver.finish().unwrap();
    }

    #[test]
    fn another_command_at_the_position_is_old_code_and_consumes_nothing() {
        let [scheduled, completed] = activity(0, "Shop.charge");
        let mut resolver = history([scheduled, completed]);
        assert_eq!(
            resolver.resolve_patch("fee").unwrap(),
            PatchResolution::NotPatched
        );
        assert_eq!(resolver.issued(), 0);
        // The old branch issues what old code recorded there.
        assert_eq!(
            resolver.resolve(&activity_spec("Shop.charge")).unwrap(),
            Resolution::Replayed {
                ordinal: 0,
                outcome: Outcome::Completed(Payload::etf(vec![0]))
            }
        );
        resolver.finish().unwrap();
    }

    #[test]
    fn another_patch_marker_at_the_position_is_not_this_patch() {
        let mut resolver = history([marker(0, "patch:b")]);
        assert_eq!(
            resolver.resolve_patch("a").unwrap(),
            PatchResolution::NotPatched
        );
        assert_eq!(
            resolver.resolve_patch("b").unwrap(),
            PatchResolution::Patched
        );
        resolver.finish().unwrap();
    }

    #[test]
    fn the_live_edge_records_the_marker_and_is_patched() {
        let [scheduled, completed] = activity(0, "Shop.charge");
        let mut resolver = history([scheduled, completed]);
        resolver.resolve(&activity_spec("Shop.charge")).unwrap();
        assert_eq!(
            resolver.resolve_patch("fee").unwrap(),
            PatchResolution::Live { ordinal: 1 }
        );
        // Nothing is consumed until the marker is recorded.
        assert_eq!(resolver.issued(), 1);
        resolver.apply(&at(4, marker(1, "patch:fee"))).unwrap();
        assert!(resolver.issued_live(1));
        resolver.finish().unwrap();

        let mut fresh = Resolver::new(RUN);
        assert_eq!(
            fresh.resolve_patch("fee").unwrap(),
            PatchResolution::Live { ordinal: 0 }
        );
    }

    #[test]
    fn a_run_gives_the_same_answer_every_time_it_asks() {
        // Recorded before the patch: the old branch, also once replay has
        // reached the live edge.
        let [scheduled, completed] = activity(0, "Shop.charge");
        let mut old = history([scheduled, completed]);
        assert_eq!(
            old.resolve_patch("fee").unwrap(),
            PatchResolution::NotPatched
        );
        old.resolve(&activity_spec("Shop.charge")).unwrap();
        assert_eq!(
            old.resolve_patch("fee").unwrap(),
            PatchResolution::NotPatched
        );
        assert_eq!(old.issued(), 1);

        // Recorded with the patch: one marker, however often the code asks.
        let mut new = history([marker(0, "patch:fee")]);
        assert_eq!(new.resolve_patch("fee").unwrap(), PatchResolution::Patched);
        assert_eq!(new.resolve_patch("fee").unwrap(), PatchResolution::Patched);
        assert!(matches!(
            new.resolve(&activity_spec("Shop.charge")).unwrap(),
            Resolution::Live { ordinal: 1 }
        ));
    }

    #[test]
    fn a_removed_patch_is_nondeterminism() {
        let [scheduled, completed] = activity(1, "Shop.charge");
        let mut resolver = history([marker(0, "patch:fee"), scheduled, completed]);
        let error = resolver.resolve(&activity_spec("Shop.charge")).unwrap_err();
        assert_eq!(error.code(), "AION-ND001");
        assert!(
            error
                .to_string()
                .contains("history recorded marker `patch:fee`"),
            "{error}"
        );

        let shortened = history([marker(0, "patch:fee")]);
        assert_eq!(shortened.finish().unwrap_err().code(), "AION-ND002");
    }

    /// A step of a generated program: an activity, or a patch check.
    #[derive(Clone, Debug)]
    enum Step {
        Activity(&'static str),
        Patch(&'static str),
    }

    /// Runs `program` live; returns the answers of its patch checks and the
    /// history it recorded.
    fn run_live(program: &[Step]) -> (Vec<PatchResolution>, Vec<Event>) {
        let mut resolver = Resolver::new(RUN);
        let (mut answers, mut events) = (Vec::new(), Vec::new());
        for step in program {
            let (ordinal, opened) = match step {
                Step::Activity(name) => {
                    let Resolution::Live { ordinal } =
                        resolver.resolve(&activity_spec(name)).unwrap()
                    else {
                        panic!("a fresh run is live")
                    };
                    let [scheduled, completed] = activity(ordinal, name);
                    events.extend([scheduled.clone(), completed]);
                    (ordinal, scheduled)
                }
                Step::Patch(id) => {
                    let answer = resolver.resolve_patch(id).unwrap();
                    answers.push(answer);
                    let PatchResolution::Live { ordinal } = answer else {
                        continue;
                    };
                    let opened = marker(ordinal, &patch_spec(id).name);
                    events.push(opened.clone());
                    (ordinal, opened)
                }
            };
            resolver
                .apply(&at(events.len() as u64 + 1, opened))
                .unwrap();
            assert!(resolver.issued_live(ordinal));
        }
        (answers, events)
    }

    /// Replays `program` against `events`; returns the patch answers.
    fn replay(program: &[Step], events: Vec<Event>) -> Vec<PatchResolution> {
        let mut resolver = history(events);
        let mut answers = Vec::new();
        for step in program {
            match step {
                Step::Activity(name) => assert!(matches!(
                    resolver.resolve(&activity_spec(name)).unwrap(),
                    Resolution::Replayed { .. }
                )),
                Step::Patch(id) => answers.push(resolver.resolve_patch(id).unwrap()),
            }
        }
        resolver.finish().unwrap();
        answers
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            prop::sample::select(vec!["A.a", "A.b"]).prop_map(Step::Activity),
            prop::sample::select(vec!["x", "y"]).prop_map(Step::Patch),
        ]
    }

    proptest! {
        /// Code with patch checks replays its own history with every check
        /// patched, and records one marker per change id.
        #[test]
        fn patched_code_replays_its_own_history(program in prop::collection::vec(step(), 0..30)) {
            let (live, events) = run_live(&program);
            prop_assert!(live.iter().all(|answer| *answer != PatchResolution::NotPatched));
            let markers = events.iter().filter(|event| matches!(event, Event::MarkerRecorded { .. })).count();
            let ids: std::collections::HashSet<_> = program.iter().filter_map(|step| match step {
                Step::Patch(id) => Some(*id),
                Step::Activity(_) => None,
            }).collect();
            prop_assert_eq!(markers, ids.len());
            let replayed = replay(&program, events);
            prop_assert!(replayed.iter().all(|answer| *answer == PatchResolution::Patched));
        }

        /// Patch checks added anywhere before the last command of a history
        /// recorded without them replay it, every one not patched.
        #[test]
        fn patch_checks_added_to_old_code_take_the_old_branch(
            program in prop::collection::vec(step(), 1..30),
            tail in prop::sample::select(vec!["A.a", "A.b"]),
        ) {
            let mut program = program;
            program.push(Step::Activity(tail));
            let old: Vec<_> = program.iter().filter(|step| matches!(step, Step::Activity(_))).cloned().collect();
            let (_, events) = run_live(&old);
            let replayed = replay(&program, events);
            prop_assert!(replayed.iter().all(|answer| *answer == PatchResolution::NotPatched));
        }
    }
}
