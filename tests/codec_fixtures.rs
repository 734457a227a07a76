//! Every format of the stored event body is pinned: `fixtures/events_v1.jsonl`
//! and `fixtures/events_v2.bin` hold one event of every kind as Aion wrote it,
//! and must decode to the same events, and re-encode to the same bytes,
//! forever. A change that breaks this needs a new format number, a decoder
//! for the old one and a fixture of its own, never an edit of these.
//! (`AION_WRITE_FIXTURES=1 cargo test codec` writes the v2 fixture once, when
//! it is missing.)

use std::collections::BTreeMap;

use aion::codec::{self, CURRENT_FORMAT};
use aion::event::{Event, SearchAttribute};
use aion::ids::{RunId, TimerId, WorkflowId};
use aion::payload::Payload;
use aion::time::Timestamp;

const FIXTURE: &str = include_str!("fixtures/events_v1.jsonl");
const FIXTURE_V2: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/events_v2.bin");

/// One event of every kind, in declaration order.
fn corpus() -> Vec<Event> {
    let run = RunId::from_u128(0x1111);
    let next = RunId::from_u128(0x2222);
    let p = |byte: u8| Payload::etf(vec![131, 97, byte]);
    let child = WorkflowId::new("child-1").unwrap();
    let timer = TimerId::for_command(run, 3);
    vec![
        Event::WorkflowStarted {
            run_id: run,
            parent_run_id: Some(next),
            workflow_type: "Shop.Order".into(),
            input: p(1),
            package_version: Some("sha256:abc".into()),
            execution_timeout_ms: None,
            run_timeout_ms: None,
            search_attributes: Default::default(),
            parent: None,
            reset_from: None,
        },
        Event::WorkflowCompleted { result: p(2) },
        Event::WorkflowFailed { error: p(3) },
        Event::WorkflowCancelled { reason: p(4) },
        Event::WorkflowTimedOut { timeout_ms: 60_000 },
        Event::WorkflowContinuedAsNew {
            new_run_id: next,
            workflow_type: "Shop.Order".into(),
            input: p(5),
        },
        Event::ActivityScheduled {
            command: 0,
            activity_type: "Shop.charge".into(),
            input: p(6),
        },
        Event::ActivityStarted {
            command: 0,
            attempt: 2,
        },
        Event::ActivityCompleted {
            command: 0,
            result: p(7),
            attempts: None,
            last_failure: None,
        },
        Event::ActivityFailed {
            command: 1,
            error: p(8),
            attempts: None,
        },
        Event::ActivityCancelled { command: 2 },
        Event::TimerStarted {
            command: 3,
            timer_id: timer.clone(),
            fire_at: Timestamp::from_micros(1_795_000_000_123_456),
        },
        Event::TimerFired {
            command: 3,
            timer_id: timer.clone(),
        },
        Event::TimerCancelled {
            command: 3,
            timer_id: timer,
        },
        Event::WithTimeoutCompleted {
            command: 4,
            timed_out: true,
        },
        Event::SignalReceived {
            signal_name: "approve".into(),
            payload: p(9),
            sent_by: None,
        },
        Event::SignalSent {
            command: 5,
            target_workflow_id: child.clone(),
            signal_name: "nudge".into(),
            payload: p(10),
            failed: None,
        },
        Event::ChildWorkflowStarted {
            command: 6,
            child_workflow_id: child.clone(),
            workflow_type: "Shop.Refund".into(),
            input: p(11),
            run_id: None,
            parent_close: None,
            execution_timeout_ms: None,
            run_timeout_ms: None,
            id_reuse: None,
            search_attributes: Default::default(),
        },
        Event::ChildWorkflowCompleted {
            command: 6,
            child_workflow_id: child.clone(),
            result: p(12),
        },
        Event::ChildWorkflowFailed {
            command: 6,
            child_workflow_id: child.clone(),
            error: p(13),
            reason: None,
        },
        Event::ChildWorkflowCancelled {
            command: 6,
            child_workflow_id: child,
        },
        Event::MarkerRecorded {
            command: 7,
            name: "now".into(),
            value: p(14),
        },
        Event::SearchAttributesUpdated {
            command: None,
            attributes: BTreeMap::from([
                ("customer".to_owned(), SearchAttribute::Text("ada".into())),
                ("items".to_owned(), SearchAttribute::Int(3)),
                ("total".to_owned(), SearchAttribute::Float(42.5)),
                ("vip".to_owned(), SearchAttribute::Bool(true)),
                (
                    "due".to_owned(),
                    SearchAttribute::Time(Timestamp::from_micros(7)),
                ),
            ]),
        },
        Event::ScheduleCreated {
            schedule_id: "nightly".into(),
            spec: "0 3 * * *".into(),
            workflow_type: "Shop.Report".into(),
            input: p(15),
        },
        Event::ScheduleUpdated {
            schedule_id: "nightly".into(),
            spec: "0 4 * * *".into(),
            input: p(16),
        },
        Event::SchedulePaused {
            schedule_id: "nightly".into(),
        },
        Event::ScheduleResumed {
            schedule_id: "nightly".into(),
        },
        Event::ScheduleDeleted {
            schedule_id: "nightly".into(),
        },
        Event::ScheduleTriggered {
            schedule_id: "nightly".into(),
            scheduled_for: Timestamp::from_micros(1_795_000_000_000_000),
            workflow_id: WorkflowId::new("report-2026-11-21").unwrap(),
        },
    ]
}

#[test]
fn format_1_fixture_decodes_to_the_corpus_and_reencodes_byte_for_byte() {
    let lines: Vec<&str> = FIXTURE.lines().collect();
    let corpus = corpus();
    assert_eq!(lines.len(), corpus.len(), "one fixture line per event kind");
    for (line, expected) in lines.iter().zip(&corpus) {
        let decoded = codec::decode(1, line.as_bytes()).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert_eq!(&decoded, expected);
        assert_eq!(
            String::from_utf8(codec::encode_format(1, &decoded).unwrap()).unwrap(),
            *line
        );
    }
}

/// The v2 fixture: each body prefixed with its length (u32 LE).
fn v2_records(bytes: &[u8]) -> Vec<&[u8]> {
    let mut records = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let len = u32::from_le_bytes(rest[..4].try_into().unwrap()) as usize;
        records.push(&rest[4..4 + len]);
        rest = &rest[4 + len..];
    }
    records
}

#[test]
fn format_2_fixture_decodes_to_the_corpus_and_reencodes_byte_for_byte() {
    assert_eq!(CURRENT_FORMAT, 2);
    let corpus = corpus();
    if std::env::var_os("AION_WRITE_FIXTURES").is_some()
        && !std::path::Path::new(FIXTURE_V2).exists()
    {
        let mut file = Vec::new();
        for event in &corpus {
            let body = codec::encode_format(2, event).unwrap();
            file.extend_from_slice(&(body.len() as u32).to_le_bytes());
            file.extend_from_slice(&body);
        }
        std::fs::write(FIXTURE_V2, file).unwrap();
    }
    let fixture = std::fs::read(FIXTURE_V2).expect("tests/fixtures/events_v2.bin");
    let records = v2_records(&fixture);
    assert_eq!(
        records.len(),
        corpus.len(),
        "one fixture record per event kind"
    );
    for (body, expected) in records.iter().zip(&corpus) {
        assert_eq!(&codec::decode(2, body).unwrap(), expected);
        assert_eq!(codec::encode(expected).unwrap(), *body);
    }
}

#[test]
fn the_corpus_covers_every_event_kind() {
    let kinds: std::collections::HashSet<_> = corpus().iter().map(|e| e.kind()).collect();
    // EventKind has 29 variants; the corpus must name each once.
    assert_eq!(kinds.len(), 29);
    assert_eq!(corpus().len(), 29);
}

/// Events written before search attributes were stored (the fixtures' own
/// `workflow_started` and `search_attributes_updated`) decode with none,
/// and events that carry them round-trip in every format.
#[test]
fn search_attribute_fields_are_optional_and_round_trip() {
    let old = r#"{"type":"workflow_started","run_id":"00000000-0000-0000-0000-000000001111","parent_run_id":null,"workflow_type":"Shop.Order","input":{"encoding":"etf","data":"g2EB"},"package_version":null}"#;
    match codec::decode(1, old.as_bytes()).unwrap() {
        Event::WorkflowStarted {
            search_attributes, ..
        } => assert!(search_attributes.is_empty()),
        other => panic!("decoded {other:?}"),
    }
    let old_update = r#"{"type":"search_attributes_updated","attributes":{"n":{"int":3}}}"#;
    assert_eq!(
        codec::decode(1, old_update.as_bytes()).unwrap(),
        Event::SearchAttributesUpdated {
            command: None,
            attributes: BTreeMap::from([("n".to_owned(), SearchAttribute::Int(3))]),
        }
    );

    let attributes = BTreeMap::from([
        ("region".to_owned(), SearchAttribute::Text("eu".into())),
        (
            "due".to_owned(),
            SearchAttribute::Time(Timestamp::from_micros(1_795_000_000_123_456)),
        ),
    ]);
    let events = [
        Event::WorkflowStarted {
            run_id: RunId::from_u128(1),
            parent_run_id: None,
            workflow_type: "Shop.Order".into(),
            input: Payload::etf(vec![131, 97, 1]),
            package_version: None,
            execution_timeout_ms: None,
            run_timeout_ms: None,
            search_attributes: attributes.clone(),
            parent: None,
            reset_from: None,
        },
        Event::SearchAttributesUpdated {
            command: Some(4),
            attributes,
        },
    ];
    for event in events {
        for format in [1, 2] {
            let body = codec::encode_format(format, &event).unwrap();
            assert_eq!(codec::decode(format, &body).unwrap(), event);
        }
    }
}

/// Activity endings written before retries (the fixtures' own) decode with
/// no attempt count, and endings that carry one round-trip in every format;
/// a first-attempt ending encodes exactly as before.
#[test]
fn activity_attempt_fields_are_optional_and_round_trip() {
    let old =
        r#"{"type":"activity_completed","command":0,"result":{"encoding":"etf","data":"g2EB"}}"#;
    let decoded = codec::decode(1, old.as_bytes()).unwrap();
    assert_eq!(
        decoded,
        Event::ActivityCompleted {
            command: 0,
            result: Payload::etf(vec![131, 97, 1]),
            attempts: None,
            last_failure: None,
        }
    );
    assert_eq!(codec::encode_format(1, &decoded).unwrap(), old.as_bytes());

    let events = [
        Event::ActivityCompleted {
            command: 2,
            result: Payload::etf(vec![131, 97, 1]),
            attempts: Some(3),
            last_failure: Some(Payload::etf(vec![131, 100, 0, 1, 120])),
        },
        Event::ActivityFailed {
            command: 5,
            error: Payload::etf(vec![131, 97, 2]),
            attempts: Some(7),
        },
    ];
    for event in events {
        for format in [1, 2] {
            let body = codec::encode_format(format, &event).unwrap();
            assert_eq!(codec::decode(format, &body).unwrap(), event);
        }
    }
}

/// A `workflow_started` written before resets decodes with no `reset_from`
/// and encodes exactly as before; one a reset wrote round-trips in every
/// format.
#[test]
fn reset_from_is_optional_and_round_trips() {
    let started = |reset_from| Event::WorkflowStarted {
        run_id: RunId::from_u128(2),
        parent_run_id: None,
        workflow_type: "Shop.Order".into(),
        input: Payload::etf(vec![131, 97, 1]),
        package_version: None,
        execution_timeout_ms: None,
        run_timeout_ms: None,
        search_attributes: BTreeMap::new(),
        parent: None,
        reset_from,
    };
    let old = codec::encode_format(1, &started(None)).unwrap();
    assert!(!String::from_utf8_lossy(&old).contains("reset_from"));
    assert_eq!(codec::decode(1, &old).unwrap(), started(None));

    let reset = started(Some(aion::event::ResetPoint {
        run_id: RunId::from_u128(1),
        seq: 7,
    }));
    for format in [1, 2] {
        let body = codec::encode_format(format, &reset).unwrap();
        assert_eq!(codec::decode(format, &body).unwrap(), reset);
    }
}

/// Child and signal events written before children ran (the fixtures' own)
/// decode with none of the fields added since, and events that carry them
/// (a child's parent, its start options, a failure's reason, a signal's
/// sender) round-trip in every format.
#[test]
fn child_and_signal_fields_are_optional_and_round_trip() {
    use aion::event::{ParentClose, ParentRef};

    let old = r#"{"type":"signal_received","signal_name":"go","payload":{"encoding":"etf","data":"g2EB"}}"#;
    let decoded = codec::decode(1, old.as_bytes()).unwrap();
    assert_eq!(
        decoded,
        Event::SignalReceived {
            signal_name: "go".into(),
            payload: Payload::etf(vec![131, 97, 1]),
            sent_by: None,
        }
    );
    assert_eq!(codec::encode_format(1, &decoded).unwrap(), old.as_bytes());

    let run = RunId::from_u128(0x3333);
    let child = WorkflowId::new("child-7").unwrap();
    let p = Payload::etf(vec![131, 97, 4]);
    let events = [
        Event::WorkflowStarted {
            run_id: run,
            parent_run_id: None,
            workflow_type: "Child".into(),
            input: p.clone(),
            package_version: None,
            execution_timeout_ms: None,
            run_timeout_ms: None,
            search_attributes: BTreeMap::new(),
            parent: Some(ParentRef {
                workflow_id: WorkflowId::new("parent").unwrap(),
                run_id: RunId::from_u128(0x4444),
                command: 3,
                parent_close: Some(ParentClose::RequestCancel),
            }),
            reset_from: None,
        },
        Event::ChildWorkflowStarted {
            command: 3,
            child_workflow_id: child.clone(),
            workflow_type: "Child".into(),
            input: p.clone(),
            run_id: Some(run),
            parent_close: Some(ParentClose::Abandon),
            execution_timeout_ms: Some(60_000),
            run_timeout_ms: Some(1_000),
            id_reuse: Some("reject_duplicate".into()),
            search_attributes: BTreeMap::from([(
                "tier".to_owned(),
                SearchAttribute::Text("gold".into()),
            )]),
        },
        Event::ChildWorkflowFailed {
            command: 3,
            child_workflow_id: child.clone(),
            error: Payload::etf_atom("nil"),
            reason: Some("timed_out".into()),
        },
        Event::SignalSent {
            command: 4,
            target_workflow_id: child,
            signal_name: "go".into(),
            payload: p.clone(),
            failed: Some("not_found".into()),
        },
        Event::SignalReceived {
            signal_name: "go".into(),
            payload: p,
            sent_by: Some("parent/00000000-0000-0000-0000-000000004444/4".into()),
        },
    ];
    for event in events {
        for format in [1, 2] {
            let body = codec::encode_format(format, &event).unwrap();
            assert_eq!(codec::decode(format, &body).unwrap(), event);
        }
    }
}
