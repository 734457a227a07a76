//! Patch checks of a loaded run (`patched?` in workflow code); the rules
//! live in [`crate::replay::PatchResolution`]'s module.

use crate::replay::PatchResolution;

use super::{EngineError, Result, RunHandle};

impl RunHandle {
    /// Resolves a patch check of `change_id` at the run's next position. On
    /// [`PatchResolution::Live`] the caller records the marker
    /// ([`crate::replay::patch_spec`] names it) with
    /// [`super::RecordCommand::Marker`] under the ordinal given.
    pub fn resolve_patch(&self, change_id: &str) -> Result<PatchResolution> {
        if change_id.is_empty() {
            return Err(EngineError::InvalidCommand {
                workflow_id: self.info.workflow_id.clone(),
                reason: "a patch's change id must not be empty".into(),
            });
        }
        self.with_live(|run| Ok(run.resolver.resolve_patch(change_id)?))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::runtime::Handle;

    use super::super::{
        Engine, EngineConfig, EngineListener, RecordCommand, StartRequest, StoreConfig,
    };
    use super::*;
    use crate::ids::WorkflowId;
    use crate::payload::Payload;
    use crate::replay::{CommandKind, CommandSpec, Resolution, patch_spec};

    struct Quiet;
    impl EngineListener for Quiet {
        fn warning(&self, _message: &str) {}
        fn wake(&self, _workflow_id: &WorkflowId, _workflow_type: &str) {}
        fn fatal(&self, _message: &str) {}
    }

    fn now_marker() -> CommandSpec {
        CommandSpec::new(CommandKind::Marker, "now")
    }

    async fn record_marker(run: &RunHandle, ordinal: u32, name: &str) {
        run.record(
            RecordCommand::Marker {
                ordinal,
                name: name.into(),
                value: Payload::etf(vec![131, 97, 1]),
            },
            None,
        )
        .await
        .unwrap();
    }

    /// Old code recorded `now` at #0; new code checks a patch first. A fresh
    /// run of the new code records the marker; the old run replays without.
    #[tokio::test]
    async fn a_patch_check_records_live_and_replays_both_histories() {
        let engine = Engine::open(
            EngineConfig::new(StoreConfig::Memory),
            Arc::new(Quiet),
            Handle::current(),
        )
        .await
        .unwrap();
        let start = |id: &str| StartRequest {
            workflow_id: Some(WorkflowId::new(id).unwrap()),
            workflow_type: "Shop.Order".into(),
            input: Payload::etf(vec![131, 106]),
            timeouts: Default::default(),
            id_reuse: Default::default(),
            search_attributes: Default::default(),
        };

        let old = engine.start_workflow(start("old")).await.unwrap();
        let Resolution::Live { ordinal } = old
            .resolve(&now_marker(), &crate::replay::Scope::default())
            .unwrap()
        else {
            panic!("a fresh run is live")
        };
        record_marker(&old, ordinal, "now").await;

        let new = engine.start_workflow(start("new")).await.unwrap();
        assert_eq!(
            new.resolve_patch("fee").unwrap(),
            PatchResolution::Live { ordinal: 0 }
        );
        record_marker(&new, 0, &patch_spec("fee").name).await;
        assert!(matches!(
            new.resolve(&now_marker(), &crate::replay::Scope::default())
                .unwrap(),
            Resolution::Live { ordinal: 1 }
        ));

        let old = engine
            .load_run(&WorkflowId::new("old").unwrap(), None)
            .await
            .unwrap();
        assert_eq!(
            old.resolve_patch("fee").unwrap(),
            PatchResolution::NotPatched
        );
        assert!(matches!(
            old.resolve(&now_marker(), &crate::replay::Scope::default())
                .unwrap(),
            Resolution::Replayed { ordinal: 0, .. }
        ));
        old.finish().unwrap();

        let new = engine
            .load_run(&WorkflowId::new("new").unwrap(), None)
            .await
            .unwrap();
        assert_eq!(new.resolve_patch("fee").unwrap(), PatchResolution::Patched);
        new.finish().unwrap();

        assert!(matches!(
            new.resolve_patch(""),
            Err(EngineError::InvalidCommand { .. })
        ));
    }
}
