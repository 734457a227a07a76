//! The recorder: appends to one workflow's history with optimistic
//! concurrency. It remembers the head it last wrote and appends with that as
//! the expected seq; a conflict (someone else wrote) or any failure forgets
//! the head, so the next append reloads it from the store instead of guessing.
//!
//! Holding the recorder's lock serializes the workflow's appends, so events
//! from the workflow process and from the timer wheel interleave in one
//! well-defined order.

use std::sync::Arc;

use tokio::sync::{Mutex, MutexGuard};

use crate::event::{Event, RecordedEvent};
use crate::ids::WorkflowId;
use crate::store::{AppendRequest, Result, Store};
use crate::time::{Clock, Timestamp};
use crate::writer::GroupCommitWriter;

/// Appends to one workflow's history.
pub struct Recorder {
    workflow_id: WorkflowId,
    writer: GroupCommitWriter,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    head: Mutex<Option<u64>>,
}

/// Exclusive access to a recorder; appends made through one guard are ordered.
pub struct RecorderGuard<'a> {
    recorder: &'a Recorder,
    head: MutexGuard<'a, Option<u64>>,
}

impl Recorder {
    /// A recorder that will read the head from the store on first use.
    pub fn new(
        workflow_id: WorkflowId,
        writer: GroupCommitWriter,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            workflow_id,
            writer,
            store,
            clock,
            head: Mutex::new(None),
        }
    }

    /// Waits for exclusive access.
    pub async fn lock(&self) -> RecorderGuard<'_> {
        RecorderGuard {
            recorder: self,
            head: self.head.lock().await,
        }
    }
}

impl RecorderGuard<'_> {
    /// The history's head, read from the store if not known.
    pub async fn head(&mut self) -> Result<u64> {
        if let Some(head) = *self.head {
            return Ok(head);
        }
        let recorder = self.recorder;
        // From the history itself: the visibility row may lag or be damaged.
        let head = recorder.store.head(&recorder.workflow_id).await?;
        *self.head = Some(head);
        Ok(head)
    }

    /// Sets the head after reading the history (saves a lookup).
    pub fn set_head(&mut self, head: u64) {
        *self.head = Some(head);
    }

    /// Appends `events` after the head, stamped with the clock's time, and
    /// returns them once durable.
    pub async fn append(&mut self, events: Vec<Event>) -> Result<Vec<RecordedEvent>> {
        let now = self.recorder.clock.now();
        self.append_at(events, now).await
    }

    /// Appends `events` as [`RecorderGuard::append`] does, stamped `at`
    /// (read from the clock by the caller, who computed something from it).
    pub async fn append_at(
        &mut self,
        events: Vec<Event>,
        at: Timestamp,
    ) -> Result<Vec<RecordedEvent>> {
        let head = self.head().await?;
        let recorder = self.recorder;
        let request = AppendRequest::new(recorder.workflow_id.clone(), head, at, events);
        let new_head = request.new_head();
        match recorder.writer.append(request).await {
            Ok(recorded) => {
                *self.head = Some(new_head);
                Ok(recorded)
            }
            Err(error) => {
                *self.head = None;
                Err(error)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::runtime::Handle;

    use super::*;
    use crate::ids::RunId;
    use crate::payload::Payload;
    use crate::store::StoreError;
    use crate::store::memory::MemoryStore;
    use crate::time::ManualClock;
    use crate::writer::WriterConfig;

    fn started() -> Event {
        Event::WorkflowStarted {
            run_id: RunId::generate(),
            parent_run_id: None,
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

    #[tokio::test]
    async fn appends_continue_from_the_head_and_reload_it_after_a_conflict() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let (writer, _task) = GroupCommitWriter::spawn(
            Arc::clone(&store),
            WriterConfig::default(),
            &Handle::current(),
        );
        let clock = Arc::new(ManualClock::new(Timestamp::from_millis(7)));
        let id = WorkflowId::new("wf").unwrap();
        let ours = Recorder::new(
            id.clone(),
            writer.clone(),
            Arc::clone(&store),
            clock.clone(),
        );
        let theirs = Recorder::new(id.clone(), writer, Arc::clone(&store), clock);

        let first = ours.lock().await.append(vec![started()]).await.unwrap();
        assert_eq!(
            (first[0].seq(), first[0].envelope.recorded_at),
            (1, Timestamp::from_millis(7))
        );
        theirs
            .lock()
            .await
            .append(vec![Event::ActivityCancelled { command: 0 }])
            .await
            .unwrap();

        let mut guard = ours.lock().await;
        let conflict = guard
            .append(vec![Event::ActivityCancelled { command: 1 }])
            .await
            .unwrap_err();
        assert!(matches!(
            conflict,
            StoreError::SequenceConflict {
                expected: 1,
                found: 2,
                ..
            }
        ));
        let retried = guard
            .append(vec![Event::ActivityCancelled { command: 1 }])
            .await
            .unwrap();
        assert_eq!(retried[0].seq(), 3);
        assert_eq!(store.read_history(&id).await.unwrap().len(), 3);
    }
}
