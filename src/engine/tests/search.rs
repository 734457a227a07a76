//! Search attributes through the engine on an SQLite file: set at start,
//! upserted by a run's code (a command, replayed without recording again),
//! checked against the kinds the store fixed, listed and counted, and
//! described.

use std::sync::Arc;

use tokio::runtime::Handle;

use super::{Quiet, sqlite_config, start};
use crate::engine::{Engine, EngineError, RecordCommand, Recorded, RunHandle};
use crate::event::SearchAttribute::{Int, Text};
use crate::ids::WorkflowId;
use crate::replay::{Outcome, ReplayError, Resolution, Scope, search_attributes_spec};
use crate::time::SystemClock;
use crate::visibility::{AttributeCondition, AttributeOp, ListFilter, SearchAttributes};

fn attributes(pairs: &[(&str, crate::event::SearchAttribute)]) -> SearchAttributes {
    pairs
        .iter()
        .map(|(name, value)| ((*name).to_owned(), value.clone()))
        .collect()
}

fn on(name: &str, op: AttributeOp) -> ListFilter {
    ListFilter {
        search: vec![AttributeCondition {
            name: name.into(),
            op,
        }],
        ..ListFilter::default()
    }
}

async fn upsert(run: &RunHandle, set: SearchAttributes) -> Result<Recorded, EngineError> {
    let spec = search_attributes_spec(set.keys());
    let Resolution::Live { ordinal } = run.resolve(&spec, &Scope::default())? else {
        panic!("the upsert is live")
    };
    run.record(
        RecordCommand::SearchAttributes {
            ordinal,
            attributes: set,
        },
        None,
    )
    .await
}

#[tokio::test]
async fn upserts_are_commands_checked_by_kind_and_listed() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(
        sqlite_config(&dir.path().join("aion.db"), Arc::new(SystemClock)),
        Arc::new(Quiet),
        Handle::current(),
    )
    .await
    .unwrap();
    let id = WorkflowId::new("order-1").unwrap();
    let mut request = start(Some("order-1"));
    request.search_attributes = attributes(&[("region", Text("eu".into()))]);
    let run = engine.start_workflow(request).await.unwrap();

    assert_eq!(
        upsert(&run, attributes(&[("amount", Int(5))]))
            .await
            .unwrap(),
        Recorded::Done
    );
    // Another kind for a name: refused, nothing recorded, and the run goes on.
    let refused = upsert(&run, attributes(&[("amount", Text("5".into()))]))
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), "invalid_search_attribute", "{refused}");
    assert_eq!(engine.history(&id).await.unwrap().len(), 2);
    upsert(&run, attributes(&[("amount", Int(6))]))
        .await
        .unwrap();
    assert_eq!(engine.history(&id).await.unwrap().len(), 3);

    // Replayed: the same upserts resolve from history; other names do not.
    let run = engine.load_run(&id, None).await.unwrap();
    assert_eq!(
        run.resolve(
            &search_attributes_spec(attributes(&[("amount", Int(0))]).keys()),
            &Scope::default()
        )
        .unwrap(),
        Resolution::Replayed {
            ordinal: 0,
            outcome: Outcome::Applied
        }
    );
    let diverged = run
        .resolve(
            &search_attributes_spec(attributes(&[("other", Int(0))]).keys()),
            &Scope::default(),
        )
        .unwrap_err();
    assert!(
        matches!(
            diverged,
            EngineError::Replay(ReplayError::Mismatch { ordinal: 1, .. })
        ),
        "{diverged}"
    );

    // Listed, counted and described with the latest values.
    let expected = attributes(&[("region", Text("eu".into())), ("amount", Int(6))]);
    let page = engine
        .list(on("amount", AttributeOp::Ge(Int(6))), None, 10)
        .await
        .unwrap();
    assert_eq!(page.rows.len(), 1);
    assert_eq!(page.rows[0].search_attributes, expected);
    assert_eq!(
        engine
            .count(on("amount", AttributeOp::Gt(Int(6))))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        engine.describe(&id, None).await.unwrap().search_attributes,
        expected
    );

    // Filters that do not fit the attributes' kinds.
    for filter in [
        on("amount", AttributeOp::Eq(Text("6".into()))),
        on("region", AttributeOp::Gt(Text("a".into()))),
    ] {
        let error = engine.count(filter).await.unwrap_err();
        assert_eq!(error.kind(), "invalid_filter", "{error}");
    }

    // A start with another kind for a name starts nothing.
    let mut request = start(Some("order-2"));
    request.search_attributes = attributes(&[("region", Int(1))]);
    let error = engine.start_workflow(request).await.unwrap_err();
    assert_eq!(error.kind(), "invalid_search_attribute", "{error}");
    assert!(matches!(
        engine.history(&WorkflowId::new("order-2").unwrap()).await,
        Err(EngineError::NotFound { .. })
    ));
    engine.close().await;
}
