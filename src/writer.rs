//! The group-commit writer: one task that owns all appends of an engine.
//! Requests that arrive while a transaction commits wait in a queue and go
//! out together in the next one, so the cost of a durable commit (an fsync on
//! SQLite) is shared by every workflow that wrote meanwhile. Each caller is
//! answered only after the transaction holding its events has committed.

use std::sync::Arc;

use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::event::RecordedEvent;
use crate::faults::{self, Point};
use crate::store::{AppendRequest, EventLog, Result, Store, StoreError};

/// Called after each batch commits, before any caller is answered, with the
/// batch and its per-request results. Used by crash tests to stop the process
/// exactly between "recorded" and "replied".
pub type CommitHook = Arc<dyn Fn(&[AppendRequest], &[Result<()>]) + Send + Sync>;

/// Writer settings.
#[derive(Clone)]
pub struct WriterConfig {
    /// The most requests one transaction takes.
    pub max_batch: usize,
    /// Runs after each commit, before replies.
    pub after_commit: Option<CommitHook>,
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            max_batch: 1024,
            after_commit: None,
        }
    }
}

impl std::fmt::Debug for WriterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriterConfig")
            .field("max_batch", &self.max_batch)
            .field("after_commit", &self.after_commit.is_some())
            .finish()
    }
}

type Reply = oneshot::Sender<Result<Vec<RecordedEvent>>>;

enum Message {
    Append(AppendRequest, Reply),
    Close,
}

/// A handle on the writer task; cheap to clone.
#[derive(Clone)]
pub struct GroupCommitWriter {
    queue: mpsc::UnboundedSender<Message>,
}

impl GroupCommitWriter {
    /// Starts the writer task on `runtime`.
    pub fn spawn(
        store: Arc<dyn Store>,
        config: WriterConfig,
        runtime: &Handle,
    ) -> (Self, JoinHandle<()>) {
        Self::spawn_on_log(store, config, runtime)
    }

    /// [`GroupCommitWriter::spawn`] for anything that appends: the writer
    /// needs nothing else of a store (tests give it a log that fails on cue).
    pub(crate) fn spawn_on_log(
        log: Arc<dyn EventLog>,
        config: WriterConfig,
        runtime: &Handle,
    ) -> (Self, JoinHandle<()>) {
        let (queue, inbox) = mpsc::unbounded_channel();
        let task = runtime.spawn(run(log, config, inbox));
        (Self { queue }, task)
    }

    /// Appends `request` in the next group commit. Returns the events once
    /// they are durable.
    pub async fn append(&self, request: AppendRequest) -> Result<Vec<RecordedEvent>> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Message::Append(request, reply))
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Asks the writer to stop once the requests queued so far are written;
    /// later requests fail with [`StoreError::Closed`].
    pub fn close(&self) {
        let _ = self.queue.send(Message::Close);
    }
}

async fn run(
    store: Arc<dyn EventLog>,
    config: WriterConfig,
    mut inbox: mpsc::UnboundedReceiver<Message>,
) {
    let max_batch = config.max_batch.max(1);
    let mut closing = false;
    while !closing {
        let Some(first) = inbox.recv().await else {
            break;
        };
        let mut requests = Vec::new();
        let mut replies = Vec::new();
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                Message::Append(request, reply) => {
                    requests.push(request);
                    replies.push(reply);
                }
                Message::Close => closing = true,
            }
            if !closing && requests.len() < max_batch {
                next = inbox.try_recv().ok();
            }
        }
        if requests.is_empty() {
            continue;
        }
        let committed = store.append_batch(&requests).await;
        if committed.is_ok() {
            // Durable, and nobody told: see `faults::Point::CommitAfterFsync`.
            faults::hit(Point::CommitAfterFsync);
        }
        let results = match committed {
            Ok(results) if results.len() == requests.len() => results,
            Ok(results) => {
                // A backend bug; without this check `zip` below would drop
                // some callers' replies, and they would see `Closed`.
                let error = StoreError::Backend(format!(
                    "the store answered {} of {} appends in a batch",
                    results.len(),
                    requests.len()
                ));
                requests.iter().map(|_| Err(error.clone())).collect()
            }
            // The transaction itself failed: every caller gets the same error,
            // of the same kind, so that only a transient one is retried.
            Err(error) => requests.iter().map(|_| Err(error.clone())).collect(),
        };
        if let Some(hook) = &config.after_commit {
            hook(&requests, &results);
        }
        for ((request, result), reply) in requests.into_iter().zip(results).zip(replies) {
            let _ = reply.send(result.map(|()| request.events));
        }
    }
    inbox.close();
    while let Ok(message) = inbox.try_recv() {
        if let Message::Append(_, reply) = message {
            let _ = reply.send(Err(StoreError::Closed));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::event::Event;
    use crate::ids::{RunId, WorkflowId};
    use crate::payload::Payload;
    use crate::store::VisibilityStore;
    use crate::store::memory::MemoryStore;
    use crate::store::sqlite::{SqliteOptions, SqliteStore};
    use crate::time::Timestamp;

    fn start(id: &str) -> AppendRequest {
        AppendRequest::new(
            WorkflowId::new(id).unwrap(),
            0,
            Timestamp::EPOCH,
            [Event::WorkflowStarted {
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
            }],
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_appends_share_transactions_and_all_become_durable() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let batches = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&batches);
        let config = WriterConfig {
            max_batch: 64,
            after_commit: Some(Arc::new(
                move |batch: &[AppendRequest], _: &[Result<()>]| {
                    seen.lock().unwrap().push(batch.len());
                },
            )),
        };
        let (writer, _task) =
            GroupCommitWriter::spawn(Arc::clone(&store), config, &Handle::current());
        let appends = (0..500).map(|n| {
            let writer = writer.clone();
            tokio::spawn(async move { writer.append(start(&format!("wf-{n}"))).await })
        });
        for append in appends.collect::<Vec<_>>() {
            assert_eq!(append.await.unwrap().unwrap().len(), 1);
        }
        for n in 0..500 {
            assert_eq!(
                store
                    .read_history(&WorkflowId::new(format!("wf-{n}")).unwrap())
                    .await
                    .unwrap()
                    .len(),
                1
            );
        }
        let batches = batches.lock().unwrap();
        assert_eq!(batches.iter().sum::<usize>(), 500);
        assert!(batches.iter().all(|&size| size <= 64));
    }

    #[tokio::test]
    async fn a_conflict_fails_only_its_own_request() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let (writer, _task) = GroupCommitWriter::spawn(
            Arc::clone(&store),
            WriterConfig::default(),
            &Handle::current(),
        );
        writer.append(start("a")).await.unwrap();
        let conflict = writer.append(start("a")).await.unwrap_err();
        assert!(matches!(
            conflict,
            StoreError::SequenceConflict {
                expected: 0,
                found: 1,
                ..
            }
        ));
        writer.append(start("b")).await.unwrap();
    }

    #[tokio::test]
    async fn after_close_appends_fail_cleanly() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let (writer, task) =
            GroupCommitWriter::spawn(store, WriterConfig::default(), &Handle::current());
        writer.append(start("a")).await.unwrap();
        writer.close();
        task.await.unwrap();
        assert!(matches!(
            writer.append(start("b")).await,
            Err(StoreError::Closed)
        ));
    }

    /// A log whose next batch fails as a whole with a chosen error.
    struct FailingLog {
        inner: MemoryStore,
        next_batch_error: Mutex<Option<StoreError>>,
    }

    #[async_trait::async_trait]
    impl EventLog for FailingLog {
        async fn append_batch(&self, batch: &[AppendRequest]) -> Result<Vec<Result<()>>> {
            if let Some(error) = self.next_batch_error.lock().unwrap().take() {
                return Err(error);
            }
            self.inner.append_batch(batch).await
        }

        async fn read_from(
            &self,
            workflow_id: &WorkflowId,
            from_seq: u64,
        ) -> Result<Vec<RecordedEvent>> {
            self.inner.read_from(workflow_id, from_seq).await
        }

        async fn read_current_run(
            &self,
            workflow_id: &WorkflowId,
        ) -> Result<Option<(crate::status::RunSummary, Vec<RecordedEvent>)>> {
            self.inner.read_current_run(workflow_id).await
        }
    }

    #[tokio::test]
    async fn a_failed_batch_reaches_every_caller_with_its_kind() {
        let log = Arc::new(FailingLog {
            inner: MemoryStore::new(),
            next_batch_error: Mutex::new(None),
        });
        let (writer, _task) = GroupCommitWriter::spawn_on_log(
            log.clone(),
            WriterConfig::default(),
            &Handle::current(),
        );

        *log.next_batch_error.lock().unwrap() = Some(StoreError::Corrupt {
            location: "sqlite database file".into(),
            reason: "database disk image is malformed".into(),
        });
        let error = writer.append(start("a")).await.unwrap_err();
        assert!(matches!(error, StoreError::Corrupt { .. }), "{error:?}");
        assert!(
            !error.is_transient(),
            "a corrupt store is not worth retrying"
        );

        *log.next_batch_error.lock().unwrap() = Some(StoreError::Backend("disk I/O error".into()));
        let error = writer.append(start("a")).await.unwrap_err();
        assert!(
            matches!(error, StoreError::Backend(_)) && error.is_transient(),
            "{error:?}"
        );

        writer.append(start("a")).await.unwrap();
    }

    // Current-thread runtime: the append tasks all queue their request before
    // the writer task runs again, so they share one batch (checked below).
    #[tokio::test(flavor = "current_thread")]
    async fn a_corrupt_row_fails_only_its_own_request_in_a_batch() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("aion.db");
        let store = Arc::new(
            SqliteStore::open(&path, SqliteOptions::default())
                .await
                .unwrap(),
        );
        for id in ["healthy-1", "broken", "healthy-2"] {
            store.append(start(id)).await.unwrap();
        }
        // "broken": its runs index is gone and its history does not decode,
        // so the store must read the history and cannot. "healthy-2": only
        // its visibility row is damaged, which an append does not depend on.
        tamper(
            &path,
            &[
                "DELETE FROM runs WHERE workflow_id = 'broken'",
                "UPDATE events SET body = x'00ff' WHERE workflow_id = 'broken'",
                "UPDATE workflows SET status = 'bogus' WHERE workflow_id = 'healthy-2'",
            ],
        )
        .await;

        let batches = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&batches);
        let config = WriterConfig {
            after_commit: Some(Arc::new(
                move |batch: &[AppendRequest], _: &[Result<()>]| {
                    seen.lock().unwrap().push(batch.len());
                },
            )),
            ..WriterConfig::default()
        };
        let (writer, _task) = GroupCommitWriter::spawn(store.clone(), config, &Handle::current());
        let appends: Vec<_> = ["healthy-1", "broken", "healthy-2"]
            .into_iter()
            .map(|id| {
                let writer = writer.clone();
                let request = AppendRequest::new(
                    WorkflowId::new(id).unwrap(),
                    1,
                    Timestamp::EPOCH,
                    [completed()],
                );
                tokio::spawn(async move { writer.append(request).await })
            })
            .collect();
        let mut results = Vec::new();
        for append in appends {
            results.push(append.await.unwrap());
        }
        assert_eq!(
            *batches.lock().unwrap(),
            vec![3],
            "the three appends shared one batch"
        );

        assert_eq!(results[0].as_ref().unwrap().len(), 1);
        assert!(
            matches!(results[1], Err(StoreError::Corrupt { .. })),
            "{:?}",
            results[1]
        );
        assert_eq!(results[2].as_ref().unwrap().len(), 1);
        for id in ["healthy-1", "healthy-2"] {
            let id = WorkflowId::new(id).unwrap();
            assert_eq!(store.read_history(&id).await.unwrap().len(), 2, "{id}");
            assert_eq!(
                store.summary(&id).await.unwrap().unwrap().head_seq,
                2,
                "{id}: row written"
            );
        }
        assert_eq!(
            store
                .head(&WorkflowId::new("broken").unwrap())
                .await
                .unwrap(),
            1,
            "broken wrote nothing"
        );
    }

    fn completed() -> Event {
        Event::WorkflowCompleted {
            result: Payload::etf(vec![]),
        }
    }

    /// Damages rows behind the store's back, as an operator's SQL shell might.
    async fn tamper(path: &std::path::Path, statements: &[&'static str]) {
        use sqlx::{Connection, Executor};
        let mut conn = sqlx::SqliteConnection::connect_with(
            &sqlx::sqlite::SqliteConnectOptions::new().filename(path),
        )
        .await
        .unwrap();
        for statement in statements {
            conn.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(*statement)))
                .await
                .unwrap();
        }
        conn.close().await.unwrap();
    }
}
