//! What only the SQLite backend can show: durability across reopening, clear
//! open errors, schema versioning, and repairs of rows tampered with behind
//! the store's back (through a raw connection, as an operator might).

use std::path::{Path, PathBuf};

use aion::store::sqlite::{SCHEMA_VERSION, SqliteOptions, SqliteStore};
use aion::store::{EventLog, Store, StoreError, TimerEntry, TimerStore, VisibilityStore, WorkflowFilter};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{Connection, Executor};
use tempfile::TempDir;

use super::histories::*;

fn db_path(dir: &TempDir) -> PathBuf {
    dir.path().join("aion.db")
}

async fn open(path: &Path) -> SqliteStore {
    SqliteStore::open(path, SqliteOptions::default())
        .await
        .expect("store opens")
}

/// A connection that bypasses the store, as an operator's SQL shell would.
async fn raw(path: &Path) -> SqliteConnection {
    SqliteConnection::connect_with(&SqliteConnectOptions::new().filename(path))
        .await
        .expect("raw connection opens")
}

fn open_reason(result: Result<SqliteStore, StoreError>) -> (String, String) {
    match result {
        Err(StoreError::Open {
            backend,
            location,
            reason,
        }) => {
            assert_eq!(backend, "sqlite");
            (location, reason)
        }
        Err(other) => panic!("expected an Open error, got {other:?}"),
        Ok(_) => panic!("expected an Open error, the store opened"),
    }
}

#[tokio::test]
async fn data_survives_close_and_reopen() {
    let dir = TempDir::new().unwrap();
    let path = db_path(&dir);
    let store = open(&path).await;
    let fulfilled = request(&wf("order-1"), 0, at(0), order_fulfilled(run(1)));
    let sleeping = request(&wf("reminder"), 0, at(1), reminder_sleeping(run(2), at(500)));
    for result in store
        .append_batch(&[fulfilled.clone(), sleeping.clone()])
        .await
        .unwrap()
    {
        result.unwrap();
    }
    let extra = TimerEntry {
        workflow_id: wf("reminder"),
        timer_id: timer(run(2), 7),
        command: 7,
        fire_at: at(900),
    };
    store.schedule_timer(&extra).await.unwrap();
    let rows = store.query(&WorkflowFilter::default()).await.unwrap();
    let timers = store.pending_timers().await.unwrap();
    store.close().await;

    let reopened = open(&path).await;
    assert_eq!(reopened.read_history(&wf("order-1")).await.unwrap(), fulfilled.events);
    assert_eq!(reopened.read_history(&wf("reminder")).await.unwrap(), sleeping.events);
    assert_eq!(reopened.query(&WorkflowFilter::default()).await.unwrap(), rows);
    assert_eq!(reopened.pending_timers().await.unwrap(), timers);
    assert_eq!(timers.len(), 2);
    // And the history keeps growing from where it was.
    reopened
        .append(request(&wf("reminder"), 2, at(500), vec![timer_fired(run(2), 1)]))
        .await
        .unwrap();
    assert_eq!(reopened.pending_timers().await.unwrap(), vec![extra]);
    reopened.close().await;
}

#[tokio::test]
async fn a_missing_directory_is_a_clear_open_error_and_is_not_created() {
    let dir = TempDir::new().unwrap();
    let missing = dir.path().join("no-such-dir");
    let path = missing.join("aion.db");

    let (location, reason) = open_reason(SqliteStore::open(&path, SqliteOptions::default()).await);
    assert_eq!(location, path.display().to_string());
    assert!(reason.contains("does not exist"), "reason: {reason}");
    assert!(
        reason.contains(&missing.display().to_string()),
        "reason names the directory: {reason}"
    );
    assert!(!missing.exists());
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_refused_and_left_untouched() {
    let dir = TempDir::new().unwrap();
    for (name, bytes) in [
        ("notes.db", b"these are my notes, not a database\n".repeat(200)),
        ("short.db", b"hi".to_vec()),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, &bytes).unwrap();

        let error = SqliteStore::open(&path, SqliteOptions::default()).await.err();
        let (_, reason) = open_reason(error.map_or_else(|| panic!("{name} opened"), Err));
        assert!(reason.contains("not a SQLite database"), "reason: {reason}");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            bytes,
            "{name} is byte-for-byte unchanged"
        );
    }
    // Nothing else appeared beside them (no -wal or -shm files).
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, vec!["notes.db", "short.db"]);
}

#[tokio::test]
async fn an_existing_empty_file_becomes_a_store() {
    let dir = TempDir::new().unwrap();
    let path = db_path(&dir);
    std::fs::write(&path, b"").unwrap();
    let store = open(&path).await;
    store
        .append(request(&wf("order-1"), 0, at(0), order_placed(run(1))))
        .await
        .unwrap();
    assert_eq!(store.read_history(&wf("order-1")).await.unwrap().len(), 1);
    store.close().await;
}

#[tokio::test]
async fn the_schema_version_is_recorded_and_a_newer_one_is_refused() {
    let dir = TempDir::new().unwrap();
    let path = db_path(&dir);
    open(&path).await.close().await;

    let mut conn = raw(&path).await;
    let version: i64 = sqlx::query_scalar("SELECT version FROM aion_schema")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(journal, "wal");
    conn.execute("UPDATE aion_schema SET version = version + 1")
        .await
        .unwrap();
    conn.close().await.unwrap();

    match SqliteStore::open(&path, SqliteOptions::default()).await {
        Err(StoreError::SchemaTooNew { found, supported }) => {
            assert_eq!((found, supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
        }
        Err(other) => panic!("expected SchemaTooNew, got {other:?}"),
        Ok(_) => panic!("a newer schema must be refused"),
    }

    // Reopening a current store migrates nothing and keeps the version.
    let mut conn = raw(&path).await;
    conn.execute("UPDATE aion_schema SET version = version - 1")
        .await
        .unwrap();
    conn.close().await.unwrap();
    open(&path).await.close().await;
    let mut conn = raw(&path).await;
    let version: i64 = sqlx::query_scalar("SELECT version FROM aion_schema")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
}

#[tokio::test]
async fn reconcile_repairs_tampered_rows_and_reports_broken_histories() {
    let dir = TempDir::new().unwrap();
    let path = db_path(&dir);
    let store = open(&path).await;
    store
        .append(request(&wf("order-1"), 0, at(0), order_fulfilled(run(1))))
        .await
        .unwrap();
    store
        .append(request(&wf("counter"), 0, at(1), counter_continued_twice()))
        .await
        .unwrap();
    store
        .append(request(&wf("intact"), 0, at(2), order_placed(run(5))))
        .await
        .unwrap();
    let rows_before = store.query(&WorkflowFilter::default()).await.unwrap();

    let mut conn = raw(&path).await;
    conn.execute("DELETE FROM workflows WHERE workflow_id = 'order-1'")
        .await
        .unwrap();
    conn.execute("UPDATE workflows SET head_seq = 2, status = 'completed' WHERE workflow_id = 'counter'")
        .await
        .unwrap();
    // A row without history, and a history that does not begin with workflow_started.
    conn.execute(
        "INSERT INTO workflows VALUES ('ghost', 'Ghost', '00000000-0000-0000-0000-000000000009', 'running', 0, NULL, 0, 3)",
    )
    .await
    .unwrap();
    let body = aion::codec::encode(&marker(1, 1)).unwrap();
    sqlx::query("INSERT INTO events VALUES ('headless', 1, 0, 'marker_recorded', 1, ?1)")
        .bind(body)
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();

    let report = store.reconcile_visibility().await.unwrap();
    assert_eq!(
        report.rebuilt, 3,
        "order-1 and counter rebuilt, ghost dropped: {report:?}"
    );
    assert_eq!(report.broken.len(), 1);
    assert_eq!(report.broken[0].0, wf("headless"));
    assert!(
        report.broken[0].1.contains("workflow_started"),
        "{}",
        report.broken[0].1
    );

    assert_eq!(store.query(&WorkflowFilter::default()).await.unwrap(), rows_before);
    assert_eq!(store.summary(&wf("ghost")).await.unwrap(), None);
    // Repaired: nothing more to do, apart from the broken history.
    let again = store.reconcile_visibility().await.unwrap();
    assert_eq!((again.rebuilt, again.broken.len()), (0, 1));
    store.close().await;
}

#[tokio::test]
async fn the_primary_key_turns_a_lagging_row_into_a_sequence_conflict() {
    let dir = TempDir::new().unwrap();
    let path = db_path(&dir);
    let store = open(&path).await;
    let original = request(&wf("order-1"), 0, at(0), order_fulfilled(run(1)));
    store.append(original.clone()).await.unwrap();

    let mut conn = raw(&path).await;
    conn.execute("DELETE FROM workflows").await.unwrap();
    conn.close().await.unwrap();

    // The row says "no history", so the plan accepts a fresh start; the
    // (workflow_id, seq) key must still refuse to write seq 1 twice.
    let mut results = store
        .append_batch(&[
            request(&wf("order-1"), 0, at(9), order_placed(run(2))),
            request(&wf("order-2"), 0, at(9), order_placed(run(3))),
        ])
        .await
        .unwrap()
        .into_iter();
    match results.next().unwrap() {
        Err(StoreError::SequenceConflict { expected, found, .. }) => assert_eq!((expected, found), (0, 5)),
        other => panic!("expected a sequence conflict, got {other:?}"),
    }
    results.next().unwrap().unwrap();

    assert_eq!(store.read_history(&wf("order-1")).await.unwrap(), original.events);
    assert_eq!(
        store.summary(&wf("order-1")).await.unwrap(),
        None,
        "the failed request wrote no row"
    );
    assert_eq!(store.read_history(&wf("order-2")).await.unwrap().len(), 1);
    store.close().await;
}

#[tokio::test]
async fn an_undecodable_event_is_reported_as_corrupt() {
    let dir = TempDir::new().unwrap();
    let path = db_path(&dir);
    let store = open(&path).await;
    store
        .append(request(&wf("order-1"), 0, at(0), order_fulfilled(run(1))))
        .await
        .unwrap();

    let mut conn = raw(&path).await;
    conn.execute("UPDATE events SET body = x'00ff' WHERE workflow_id = 'order-1' AND seq = 3")
        .await
        .unwrap();
    conn.execute("UPDATE events SET format = 99 WHERE workflow_id = 'order-1' AND seq = 5")
        .await
        .unwrap();
    conn.close().await.unwrap();

    match store.read_history(&wf("order-1")).await {
        Err(StoreError::Corrupt { location, .. }) => assert!(location.contains("seq 3"), "location: {location}"),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    match store.read_from(&wf("order-1"), 4).await {
        Err(StoreError::Corrupt { location, reason }) => {
            assert!(location.contains("seq 5"), "location: {location}");
            assert!(reason.contains("format 99"), "reason: {reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    // The damage stays with that history: other workflows still work.
    store
        .append(request(&wf("order-2"), 0, at(1), order_placed(run(2))))
        .await
        .unwrap();
    assert_eq!(store.read_history(&wf("order-2")).await.unwrap().len(), 1);
    store.close().await;
}

#[tokio::test]
async fn zero_readers_is_refused_by_name() {
    let dir = TempDir::new().unwrap();
    let options = SqliteOptions {
        readers: 0,
        ..SqliteOptions::default()
    };
    let (_, reason) = open_reason(SqliteStore::open(db_path(&dir), options).await);
    assert!(reason.contains("readers"), "reason: {reason}");
    assert!(!db_path(&dir).exists());
}

#[tokio::test]
async fn the_backend_names_itself() {
    let dir = TempDir::new().unwrap();
    let store = open(&db_path(&dir)).await;
    assert_eq!(store.backend(), "sqlite");
    assert_eq!(store.path(), db_path(&dir));
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_stores_on_one_file_still_have_one_winner_per_head() {
    let dir = TempDir::new().unwrap();
    let path = db_path(&dir);
    let first = std::sync::Arc::new(open(&path).await);
    let second = std::sync::Arc::new(open(&path).await);
    first
        .append(request(&wf("shared"), 0, at(0), order_placed(run(1))))
        .await
        .unwrap();

    // Each store has its own writer connection, so the race is settled by
    // SQLite's file lock (BEGIN IMMEDIATE), not by a pool queue.
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(8));
    let tasks: Vec<_> = (0..8u8)
        .map(|contender| {
            let store = if contender % 2 == 0 {
                first.clone()
            } else {
                second.clone()
            };
            let barrier = barrier.clone();
            let request = request(&wf("shared"), 1, at(1), vec![marker(1, contender)]);
            tokio::spawn(async move {
                barrier.wait().await;
                (contender, store.append(request).await)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            (contender, Ok(())) => winners.push(contender),
            (
                _,
                Err(StoreError::SequenceConflict {
                    expected: 1, found: 2, ..
                }),
            ) => {}
            (_, Err(other)) => panic!("expected a sequence conflict, got {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    let history = second.read_history(&wf("shared")).await.unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[1].event, marker(1, winners[0]));
    assert_eq!(first.read_history(&wf("shared")).await.unwrap(), history);
    first.close().await;
    second.close().await;
}

#[tokio::test]
async fn a_request_failing_half_way_leaves_nothing_behind() {
    let dir = TempDir::new().unwrap();
    let path = db_path(&dir);
    let store = open(&path).await;

    // A stray event far ahead of an (absent) head: a long request only
    // collides with it after many of its own rows were already inserted.
    let mut conn = raw(&path).await;
    sqlx::query("INSERT INTO events VALUES ('long', 70, 0, 'marker_recorded', 1, ?1)")
        .bind(aion::codec::encode(&marker(70, 70)).unwrap())
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();

    let mut events = vec![started(run(1), "Counter")];
    events.extend((1..70).map(|command| marker(command, 0)));
    let long = request(&wf("long"), 0, at(0), events);
    let short = request(&wf("short"), 0, at(0), order_placed(run(2)));
    let mut results = store.append_batch(&[long, short.clone()]).await.unwrap().into_iter();
    match results.next().unwrap() {
        Err(StoreError::SequenceConflict { expected, found, .. }) => assert_eq!((expected, found), (0, 70)),
        other => panic!("expected a sequence conflict, got {other:?}"),
    }
    results.next().unwrap().unwrap();

    let history = store.read_history(&wf("long")).await.unwrap();
    assert_eq!(
        history.iter().map(|e| e.seq()).collect::<Vec<_>>(),
        vec![70],
        "only the stray event remains"
    );
    assert_eq!(store.summary(&wf("long")).await.unwrap(), None);
    assert_eq!(store.read_history(&wf("short")).await.unwrap(), short.events);
    store.close().await;
}

#[tokio::test]
async fn a_failing_request_keeps_its_kind_and_the_rest_of_its_batch_commits() {
    let dir = TempDir::new().unwrap();
    let path = db_path(&dir);
    let store = open(&path).await;
    for (id, n) in [("healthy", 1), ("bogus-status", 2), ("bad-head", 3)] {
        store
            .append(request(&wf(id), 0, at(0), order_placed(run(n))))
            .await
            .unwrap();
    }

    let mut conn = raw(&path).await;
    conn.execute("UPDATE workflows SET status = 'bogus' WHERE workflow_id = 'bogus-status'")
        .await
        .unwrap();
    conn.execute("UPDATE workflows SET head_seq = 'one' WHERE workflow_id = 'bad-head'")
        .await
        .unwrap();
    // A statement failing half-way through a long request: its first 64 rows
    // are inserted before the trigger refuses seq 70.
    conn.execute(
        "CREATE TRIGGER refuse_70 BEFORE INSERT ON events WHEN NEW.workflow_id = 'long' AND NEW.seq = 70
         BEGIN SELECT RAISE(ABORT, 'refused by trigger'); END",
    )
    .await
    .unwrap();
    conn.close().await.unwrap();

    let mut long_events = vec![started(run(9), "Counter")];
    long_events.extend((1..70).map(|command| marker(command, 0)));
    let batch = vec![
        request(&wf("healthy"), 1, at(1), vec![completed()]),
        request(&wf("bogus-status"), 1, at(1), vec![completed()]),
        request(&wf("bad-head"), 1, at(1), vec![completed()]),
        request(&wf("long"), 0, at(1), long_events),
        request(&wf("fresh"), 0, at(1), order_placed(run(4))),
    ];
    let results = store.append_batch(&batch).await.expect("the batch itself commits");
    assert!(results[0].is_ok(), "{:?}", results[0]);
    for (index, id) in [(1, "bogus-status"), (2, "bad-head")] {
        match &results[index] {
            Err(StoreError::Corrupt { location, .. }) => assert!(location.contains(id), "location: {location}"),
            other => panic!("{id}: expected Corrupt, got {other:?}"),
        }
    }
    match &results[3] {
        Err(error @ StoreError::Backend(reason)) => {
            assert!(reason.contains("refused by trigger"), "reason: {reason}");
            assert!(error.is_transient());
        }
        other => panic!("long: expected the statement's own error, got {other:?}"),
    }
    assert!(results[4].is_ok(), "{:?}", results[4]);

    assert_eq!(store.read_history(&wf("healthy")).await.unwrap().len(), 2);
    assert_eq!(store.read_history(&wf("fresh")).await.unwrap(), batch[4].events);
    assert_eq!(store.read_history(&wf("long")).await.unwrap(), vec![], "nothing of the long request remains");
    assert_eq!(store.summary(&wf("long")).await.unwrap(), None);
    for id in ["bogus-status", "bad-head"] {
        assert_eq!(store.read_history(&wf(id)).await.unwrap().len(), 1, "{id} wrote nothing");
    }
    store.close().await;
}
