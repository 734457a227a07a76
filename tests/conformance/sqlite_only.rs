//! What only the SQLite backend can show: durability across reopening, clear
//! open errors, schema versioning, and repairs of rows tampered with behind
//! the store's back (through a raw connection, as an operator might).

use std::path::{Path, PathBuf};

use aion::store::sqlite::{SCHEMA_VERSION, SqliteOptions, SqliteStore};
use aion::store::{EventLog, Store, StoreError, TimerEntry, TimerStore, VisibilityStore};
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
    let sleeping = request(
        &wf("reminder"),
        0,
        at(1),
        reminder_sleeping(run(2), at(500)),
    );
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
    let rows = all_rows(&store).await;
    let timers = store.pending_timers().await.unwrap();
    store.close().await;

    let reopened = open(&path).await;
    assert_eq!(
        reopened.read_history(&wf("order-1")).await.unwrap(),
        fulfilled.events
    );
    assert_eq!(
        reopened.read_history(&wf("reminder")).await.unwrap(),
        sleeping.events
    );
    assert_eq!(all_rows(&reopened).await, rows);
    assert_eq!(reopened.pending_timers().await.unwrap(), timers);
    assert_eq!(timers.len(), 2);
    // And the history keeps growing from where it was.
    reopened
        .append(request(
            &wf("reminder"),
            2,
            at(500),
            vec![timer_fired(run(2), 1)],
        ))
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
        (
            "notes.db",
            b"these are my notes, not a database\n".repeat(200),
        ),
        ("short.db", b"hi".to_vec()),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, &bytes).unwrap();

        let error = SqliteStore::open(&path, SqliteOptions::default())
            .await
            .err();
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
    let rows_before = all_rows(&store).await;

    let mut conn = raw(&path).await;
    conn.execute("DELETE FROM workflows WHERE workflow_id = 'order-1'")
        .await
        .unwrap();
    conn.execute(
        "UPDATE workflows SET head_seq = 2, status = 'completed' WHERE workflow_id = 'counter'",
    )
    .await
    .unwrap();
    // A row without history, and a history that does not begin with workflow_started.
    conn.execute(
        "INSERT INTO workflows VALUES ('ghost', 'Ghost', '00000000-0000-0000-0000-000000000009', 'running', 0, NULL, 0, 3)",
    )
    .await
    .unwrap();
    let body = aion::codec::encode_format(1, &marker(1, 1)).unwrap();
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

    assert_eq!(all_rows(&store).await, rows_before);
    assert_eq!(store.summary(&wf("ghost")).await.unwrap(), None);
    // Repaired: nothing more to do, apart from the broken history.
    let again = store.reconcile_visibility().await.unwrap();
    assert_eq!((again.rebuilt, again.broken.len()), (0, 1));
    store.close().await;
}

#[tokio::test]
async fn reconcile_rebuilds_search_attributes_with_their_row() {
    use aion::event::SearchAttribute::{Int, Text};
    let dir = TempDir::new().unwrap();
    let path = db_path(&dir);
    let store = open(&path).await;
    let events = vec![
        started_with(run(1), "Shop.Order", &[("region", Text("eu".into()))]),
        upserted(0, &[("amount", Int(7))]),
    ];
    store
        .append(request(&wf("tagged"), 0, at(1), events))
        .await
        .unwrap();
    let expected = attributes_of(&[("region", Text("eu".into())), ("amount", Int(7))]);
    let listed = list_all(&store, &aion::visibility::ListFilter::default(), 10).await;

    // The row and its attributes lost, and attributes left for a workflow
    // without history.
    let mut conn = raw(&path).await;
    conn.execute(
        "DELETE FROM workflows; DELETE FROM search_attributes; \
         INSERT INTO search_attributes VALUES ('ghost', 'region', 'text', 'x', 'T', 'running', 0, NULL)",
    )
    .await
    .unwrap();
    conn.close().await.unwrap();
    assert!(
        store
            .search_attributes(&wf("tagged"))
            .await
            .unwrap()
            .is_empty()
    );

    let report = store.reconcile_visibility().await.unwrap();
    assert_eq!(report.rebuilt, 1, "{report:?}");
    assert_eq!(
        store.search_attributes(&wf("tagged")).await.unwrap(),
        expected
    );
    assert!(
        store
            .search_attributes(&wf("ghost"))
            .await
            .unwrap()
            .is_empty()
    );
    // Counted by attribute with the row's status, rebuilt with it.
    let filter = aion::visibility::ListFilter {
        statuses: vec![aion::status::WorkflowStatus::Running],
        search: vec![aion::visibility::AttributeCondition {
            name: "amount".into(),
            op: aion::visibility::AttributeOp::Eq(Int(7)),
        }],
        ..Default::default()
    };
    assert_eq!(store.count(&filter).await.unwrap(), 1);
    assert_eq!(
        list_all(&store, &aion::visibility::ListFilter::default(), 10).await,
        listed
    );
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
        Err(StoreError::SequenceConflict {
            expected, found, ..
        }) => assert_eq!((expected, found), (0, 5)),
        other => panic!("expected a sequence conflict, got {other:?}"),
    }
    results.next().unwrap().unwrap();

    assert_eq!(
        store.read_history(&wf("order-1")).await.unwrap(),
        original.events
    );
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
        Err(StoreError::Corrupt { location, .. }) => {
            assert!(location.contains("seq 3"), "location: {location}")
        }
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
    // Two stores on one file are refused by default; this test shares it on
    // purpose to show what SQLite alone guarantees.
    let shared = SqliteOptions {
        exclusive: false,
        ..SqliteOptions::default()
    };
    let first = std::sync::Arc::new(SqliteStore::open(&path, shared.clone()).await.unwrap());
    let second = std::sync::Arc::new(SqliteStore::open(&path, shared).await.unwrap());
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
                    expected: 1,
                    found: 2,
                    ..
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

    // A stray event far ahead of an (absent) head, written behind the
    // store's back: the head is read from the events, so the request is a
    // conflict before any of its rows is written (and, were it not, its
    // savepoint would undo the rows written before the collision).
    let mut conn = raw(&path).await;
    sqlx::query("INSERT INTO events VALUES ('long', 70, 0, 'marker_recorded', 1, ?1)")
        .bind(aion::codec::encode_format(1, &marker(70, 70)).unwrap())
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();

    let mut events = vec![started(run(1), "Counter")];
    events.extend((1..70).map(|command| marker(command, 0)));
    let long = request(&wf("long"), 0, at(0), events);
    let short = request(&wf("short"), 0, at(0), order_placed(run(2)));
    let mut results = store
        .append_batch(&[long, short.clone()])
        .await
        .unwrap()
        .into_iter();
    match results.next().unwrap() {
        Err(StoreError::SequenceConflict {
            expected, found, ..
        }) => assert_eq!((expected, found), (0, 70)),
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
    assert_eq!(
        store.read_history(&wf("short")).await.unwrap(),
        short.events
    );
    store.close().await;
}

#[tokio::test]
async fn a_failing_request_keeps_its_kind_and_the_rest_of_its_batch_commits() {
    let dir = TempDir::new().unwrap();
    let path = db_path(&dir);
    let store = open(&path).await;
    for (id, n) in [
        ("healthy", 1),
        ("bogus-status", 2),
        ("bad-head", 3),
        ("broken-history", 4),
    ] {
        store
            .append(request(&wf(id), 0, at(0), order_placed(run(n))))
            .await
            .unwrap();
    }

    let mut conn = raw(&path).await;
    // Damaged visibility rows: an append does not depend on them (the head
    // comes from the history) and rewrites them.
    conn.execute("UPDATE workflows SET status = 'bogus' WHERE workflow_id = 'bogus-status'")
        .await
        .unwrap();
    conn.execute("UPDATE workflows SET head_seq = 'one' WHERE workflow_id = 'bad-head'")
        .await
        .unwrap();
    // A damaged history whose runs index is gone: the store must read the
    // history to continue it, and cannot.
    conn.execute("DELETE FROM runs WHERE workflow_id = 'broken-history'")
        .await
        .unwrap();
    conn.execute("UPDATE events SET body = x'00ff' WHERE workflow_id = 'broken-history'")
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
    // A short request (one INSERT, no savepoint) whose only INSERT fails.
    conn.execute(
        "CREATE TRIGGER refuse_short BEFORE INSERT ON events WHEN NEW.workflow_id = 'short'
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
        request(&wf("broken-history"), 1, at(1), vec![completed()]),
        request(&wf("long"), 0, at(1), long_events),
        request(&wf("fresh"), 0, at(1), order_placed(run(5))),
        request(&wf("short"), 0, at(1), order_placed(run(6))),
    ];
    let results = store
        .append_batch(&batch)
        .await
        .expect("the batch itself commits");
    for index in [0, 1, 2, 5] {
        assert!(
            results[index].is_ok(),
            "request {index}: {:?}",
            results[index]
        );
    }
    assert!(
        matches!(&results[6], Err(StoreError::Backend(reason)) if reason.contains("refused by trigger")),
        "short: {:?}",
        results[6]
    );
    assert!(store.read_history(&wf("short")).await.unwrap().is_empty());
    assert_eq!(store.summary(&wf("short")).await.unwrap(), None);
    match &results[3] {
        Err(StoreError::Corrupt { location, .. }) => {
            assert!(location.contains("broken-history"), "location: {location}")
        }
        other => panic!("broken-history: expected Corrupt, got {other:?}"),
    }
    match &results[4] {
        Err(error @ StoreError::Backend(reason)) => {
            assert!(reason.contains("refused by trigger"), "reason: {reason}");
            assert!(error.is_transient());
        }
        other => panic!("long: expected the statement's own error, got {other:?}"),
    }

    for id in ["healthy", "bogus-status", "bad-head"] {
        assert_eq!(store.read_history(&wf(id)).await.unwrap().len(), 2, "{id}");
        let row = store
            .summary(&wf(id))
            .await
            .unwrap()
            .expect("the append rewrote the row");
        assert_eq!(
            (row.head_seq, row.status),
            (2, aion::status::WorkflowStatus::Completed),
            "{id}"
        );
    }
    assert_eq!(
        store.read_history(&wf("fresh")).await.unwrap(),
        batch[5].events
    );
    assert_eq!(
        store.head(&wf("broken-history")).await.unwrap(),
        1,
        "broken-history wrote nothing"
    );
    assert_eq!(
        store.read_from(&wf("long"), 1).await.unwrap(),
        vec![],
        "nothing of the long request remains"
    );
    assert_eq!(store.summary(&wf("long")).await.unwrap(), None);
    store.close().await;
}

#[tokio::test]
async fn the_sequence_check_does_not_depend_on_the_visibility_row() {
    let dir = TempDir::new().unwrap();
    let path = db_path(&dir);
    let store = open(&path).await;
    let id = wf("counter");
    store
        .append(request(
            &id,
            0,
            at(0),
            vec![started(run(1), "Counter"), marker(1, 1), marker(2, 2)],
        ))
        .await
        .unwrap();

    let mut conn = raw(&path).await;
    conn.execute("UPDATE workflows SET head_seq = 1 WHERE workflow_id = 'counter'")
        .await
        .unwrap();
    conn.close().await.unwrap();
    // The row lags: a seq it would accept is still refused, with the real head.
    match store
        .append(request(&id, 1, at(1), vec![marker(3, 3)]))
        .await
    {
        Err(StoreError::SequenceConflict {
            expected, found, ..
        }) => assert_eq!((expected, found), (1, 3)),
        other => panic!("expected a sequence conflict, got {other:?}"),
    }

    let mut conn = raw(&path).await;
    conn.execute("DELETE FROM workflows").await.unwrap();
    conn.close().await.unwrap();
    // No row at all: neither a fresh start goes through, nor is the right
    // seq blocked; the append writes the row back.
    match store
        .append(request(&id, 0, at(1), vec![started(run(2), "Counter")]))
        .await
    {
        Err(StoreError::SequenceConflict {
            expected, found, ..
        }) => assert_eq!((expected, found), (0, 3)),
        other => panic!("expected a sequence conflict, got {other:?}"),
    }
    store
        .append(request(&id, 3, at(2), vec![marker(3, 3)]))
        .await
        .unwrap();
    let row = store
        .summary(&id)
        .await
        .unwrap()
        .expect("the append wrote the row");
    assert_eq!(
        (row.head_seq, row.run_id, row.started_at, row.updated_at),
        (4, run(1), at(0), at(2))
    );
    store.close().await;
}

#[tokio::test]
async fn the_current_run_is_read_without_the_runs_before_it() {
    let dir = TempDir::new().unwrap();
    let path = db_path(&dir);
    let store = open(&path).await;
    let id = wf("counter");
    let seeded = request(&id, 0, at(0), counter_continued_twice());
    store.append(seeded.clone()).await.unwrap();

    // Damage an event of the first run: reading from seq 1 would fail.
    let mut conn = raw(&path).await;
    conn.execute("UPDATE events SET body = x'00ff' WHERE workflow_id = 'counter' AND seq = 2")
        .await
        .unwrap();
    conn.close().await.unwrap();
    assert!(matches!(
        store.read_history(&id).await,
        Err(StoreError::Corrupt { .. })
    ));

    let (current, events) = store.read_current_run(&id).await.unwrap().unwrap();
    assert_eq!((current.run_id, current.first_seq), (run(3), 6));
    assert_eq!(events, seeded.events[5..].to_vec());
    // The chain comes from the runs table, not from the events.
    let chain = store.read_run_chain(&id).await.unwrap();
    assert_eq!(
        chain.iter().map(|r| r.first_seq).collect::<Vec<_>>(),
        vec![1, 4, 6]
    );
    // And the run goes on: appends do not read earlier runs either.
    store
        .append(request(&id, 6, at(1), vec![completed()]))
        .await
        .unwrap();
    store.close().await;
}

#[tokio::test]
async fn a_v1_store_is_migrated_and_its_runs_backfilled() {
    let dir = TempDir::new().unwrap();
    let path = db_path(&dir);
    let store = open(&path).await;
    store
        .append(request(&wf("counter"), 0, at(0), counter_continued_twice()))
        .await
        .unwrap();
    store
        .append(request(&wf("order-1"), 0, at(1), order_fulfilled(run(7))))
        .await
        .unwrap();
    let chains = (
        store.read_run_chain(&wf("counter")).await.unwrap(),
        store.read_run_chain(&wf("order-1")).await.unwrap(),
    );
    assert_eq!(chains.0.len(), 3);
    store.close().await;

    // Back to what a v1 build left: no runs table, version 1, and a history
    // that does not decode (the backfill skips it, not the migration).
    let mut conn = raw(&path).await;
    conn.execute("DROP TABLE runs").await.unwrap();
    conn.execute("DROP TABLE activity_attempts").await.unwrap();
    conn.execute("DROP INDEX workflows_maybe_running")
        .await
        .unwrap();
    conn.execute(
        "DROP TABLE search_attributes; DROP TABLE search_attribute_types; \
         DROP INDEX workflows_by_type_status; DROP TRIGGER search_attributes_follow_workflow",
    )
    .await
    .unwrap();
    conn.execute("UPDATE aion_schema SET version = 1")
        .await
        .unwrap();
    sqlx::query("INSERT INTO events VALUES ('garbled', 1, 0, 'workflow_started', 1, x'00ff')")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();

    let store = open(&path).await;
    let mut conn = raw(&path).await;
    let version: i64 = sqlx::query_scalar("SELECT version FROM aion_schema")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT workflow_id, first_seq, last_seq FROM runs ORDER BY workflow_id, first_seq",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    assert_eq!(
        rows,
        vec![
            ("counter".into(), 1, 3),
            ("counter".into(), 4, 5),
            ("counter".into(), 6, 6),
            ("order-1".into(), 1, 5),
        ]
    );
    assert_eq!(
        store.read_run_chain(&wf("counter")).await.unwrap(),
        chains.0
    );
    assert_eq!(
        store.read_run_chain(&wf("order-1")).await.unwrap(),
        chains.1
    );
    let (current, events) = store
        .read_current_run(&wf("counter"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((current.run_id, events.len()), (run(3), 1));
    store.close().await;
}

#[tokio::test]
async fn damaged_rows_are_reported_beside_pages_and_never_stop_them() {
    let dir = TempDir::new().unwrap();
    let path = db_path(&dir);
    let store = open(&path).await;
    for (id, n) in [("a", 1), ("b", 2), ("c", 3), ("d", 4)] {
        store
            .append(request(
                &wf(id),
                0,
                at(n),
                reminder_sleeping(run(u128::from(n)), at(100 + n)),
            ))
            .await
            .unwrap();
    }
    store
        .append(request(&wf("e"), 0, at(5), order_placed(run(5))))
        .await
        .unwrap();

    let mut conn = raw(&path).await;
    conn.execute("UPDATE workflows SET status = 'bogus' WHERE workflow_id = 'b'")
        .await
        .unwrap();
    conn.execute("UPDATE workflows SET run_id = 'not-a-uuid' WHERE workflow_id = 'd'")
        .await
        .unwrap();
    conn.execute("UPDATE timers SET command = -1 WHERE workflow_id = 'c'")
        .await
        .unwrap();
    // A history that cannot be read at all, its runs index gone.
    conn.execute("UPDATE events SET body = x'00ff' WHERE workflow_id = 'a'")
        .await
        .unwrap();
    conn.execute("DELETE FROM runs WHERE workflow_id = 'a'")
        .await
        .unwrap();
    conn.close().await.unwrap();

    // Running rows: b and d are reported, the others listed, on every page.
    let first = store.list_running_page(None, 2, false).await.unwrap();
    assert_eq!(
        first
            .rows
            .iter()
            .map(|r| r.workflow_id.as_str())
            .collect::<Vec<_>>(),
        vec!["a"]
    );
    assert_eq!(
        first
            .broken
            .iter()
            .map(|(id, _)| id.as_str())
            .collect::<Vec<_>>(),
        vec!["b"]
    );
    assert!(matches!(first.broken[0].1, StoreError::Corrupt { .. }));
    let second = store
        .list_running_page(first.next.as_ref(), 2, false)
        .await
        .unwrap();
    assert_eq!(
        second
            .rows
            .iter()
            .map(|r| r.workflow_id.as_str())
            .collect::<Vec<_>>(),
        vec!["c"]
    );
    assert_eq!(
        second
            .broken
            .iter()
            .map(|(id, _)| id.as_str())
            .collect::<Vec<_>>(),
        vec!["d"]
    );
    let third = store
        .list_running_page(second.next.as_ref(), 2, false)
        .await
        .unwrap();
    assert_eq!(
        third
            .rows
            .iter()
            .map(|r| r.workflow_id.as_str())
            .collect::<Vec<_>>(),
        vec!["e"]
    );
    assert_eq!(third.next, None);
    // Only e has no timer.
    let awake = store.list_running_page(None, 10, true).await.unwrap();
    assert_eq!(
        awake
            .rows
            .iter()
            .map(|r| r.workflow_id.as_str())
            .collect::<Vec<_>>(),
        vec!["e"]
    );
    assert_eq!(
        store.list_active().await.unwrap().len(),
        3,
        "list_active leaves the damaged rows out"
    );

    // Timers: c's is reported, the others come in due order.
    let timers = store.pending_timers_page(None, 10).await.unwrap();
    assert_eq!(
        timers
            .timers
            .iter()
            .map(|t| t.workflow_id.as_str())
            .collect::<Vec<_>>(),
        vec!["a", "b", "d"]
    );
    assert_eq!(timers.broken.len(), 1);
    assert!(
        timers.broken[0].0.starts_with("c "),
        "{}",
        timers.broken[0].0
    );
    assert!(matches!(
        store.timers_of(&wf("c")).await,
        Err(StoreError::Corrupt { .. })
    ));

    // Reconciliation: a is broken and reported, b and d are rebuilt.
    let (report, next) = store.reconcile_visibility_page(None, 10).await.unwrap();
    assert_eq!(next, None);
    assert_eq!(report.rebuilt, 2, "{report:?}");
    assert_eq!(
        report
            .broken
            .iter()
            .map(|(id, _)| id.as_str())
            .collect::<Vec<_>>(),
        vec!["a"]
    );
    let page = store.list_running_page(None, 10, false).await.unwrap();
    assert_eq!(page.rows.len(), 5);
    assert!(page.broken.is_empty());
    store.close().await;
}

fn assert_in_use(result: Result<SqliteStore, StoreError>, through: &str) {
    match result {
        Err(StoreError::InUse { .. }) => {}
        Err(other) => panic!("{through}: expected InUse, got {other:?}"),
        Ok(_) => panic!("{through}: a second store opened a file in use"),
    }
}

#[tokio::test]
async fn the_lock_follows_the_file_not_the_path() {
    let dir = TempDir::new().unwrap();
    let path = db_path(&dir);
    let symlink = dir.path().join("symlink.db");
    let hard_link = dir.path().join("hard-link.db");
    let first = open(&path).await;
    std::os::unix::fs::symlink(&path, &symlink).unwrap();
    std::fs::hard_link(&path, &hard_link).unwrap();

    for (through, candidate) in [
        ("same path", &path),
        ("symlink", &symlink),
        ("hard link", &hard_link),
    ] {
        assert_in_use(
            SqliteStore::open(candidate, SqliteOptions::default()).await,
            through,
        );
    }
    first.close().await;

    // Released on close: each path opens, one at a time, and sees the data.
    for candidate in [&path, &symlink, &hard_link] {
        let store = open(candidate).await;
        assert_in_use(
            SqliteStore::open(&path, SqliteOptions::default()).await,
            "while reopened",
        );
        store.close().await;
    }
    // And a store dropped without close releases it too.
    drop(open(&hard_link).await);
    open(&symlink).await.close().await;
}

/// The POSIX locks this process holds on `path`'s inode, from /proc/locks.
#[cfg(target_os = "linux")]
fn posix_locks_on(path: &Path) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let inode = std::fs::metadata(path).unwrap().ino();
    let pid = std::process::id().to_string();
    std::fs::read_to_string("/proc/locks")
        .unwrap()
        .lines()
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.contains(&"POSIX")
                && fields.contains(&pid.as_str())
                && fields
                    .iter()
                    .any(|f| f.rsplit(':').next() == Some(&inode.to_string()) && f.contains(':'))
        })
        .map(|line| {
            line.split_whitespace()
                .skip(1)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

// Closing any descriptor of a file drops every POSIX lock the process holds
// on it, SQLite's included; a refused open must not close one.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_refused_open_leaves_the_first_store_s_sqlite_locks_alone() {
    let dir = TempDir::new().unwrap();
    let path = db_path(&dir);
    let first = open(&path).await;
    first
        .append(request(&wf("order-1"), 0, at(0), order_placed(run(1))))
        .await
        .unwrap();
    let held = posix_locks_on(&path);
    assert!(
        !held.is_empty(),
        "SQLite holds a shared lock on the database file in WAL mode"
    );

    let hard_link = dir.path().join("hard-link.db");
    std::fs::hard_link(&path, &hard_link).unwrap();
    for candidate in [&path, &hard_link] {
        assert_in_use(
            SqliteStore::open(candidate, SqliteOptions::default()).await,
            "second open",
        );
        assert_eq!(
            posix_locks_on(&path),
            held,
            "the first store's locks survive a refused open"
        );
    }
    first.close().await;
}
