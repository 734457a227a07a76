//! One store, one engine: the SQLite lock follows the database file, so a
//! second engine is refused whatever path it was given (DESIGN §3,
//! ownership), and accepted once the first has closed.

use std::path::Path;
use std::sync::Arc;

use aion::engine::{Engine, EngineConfig, EngineError, EngineListener, StoreConfig};
use aion::ids::WorkflowId;
use aion::store::sqlite::SqliteOptions;
use tempfile::TempDir;
use tokio::runtime::Handle;

struct Quiet;
impl EngineListener for Quiet {
    fn warning(&self, message: &str) {
        eprintln!("engine warning: {message}");
    }

    fn wake(&self, _workflow_id: &WorkflowId, _workflow_type: &str) {}

    fn fatal(&self, message: &str) {
        panic!("engine failed: {message}");
    }
}

async fn open_engine(path: &Path) -> Result<Engine, EngineError> {
    let config = EngineConfig::new(StoreConfig::Sqlite {
        path: path.to_owned(),
        options: SqliteOptions::default(),
    });
    Engine::open(config, Arc::new(Quiet), Handle::current()).await
}

#[tokio::test]
async fn a_second_engine_is_refused_through_any_path_to_the_same_file() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("aion.db");
    let links = dir.path().join("links");
    std::fs::create_dir(&links).unwrap();
    let symlink = links.join("symlink.db");
    let hard_link = links.join("hard-link.db");

    let first = open_engine(&path).await.unwrap();
    std::os::unix::fs::symlink(&path, &symlink).unwrap();
    std::fs::hard_link(&path, &hard_link).unwrap();
    for (through, candidate) in [
        ("same path", &path),
        ("symlink", &symlink),
        ("hard link", &hard_link),
    ] {
        match open_engine(candidate).await {
            Err(error) => assert_eq!(error.kind(), "store_in_use", "{through}: {error}"),
            Ok(_) => panic!("{through}: a second engine opened a store in use"),
        }
    }
    first.close().await;

    for candidate in [&symlink, &hard_link, &path] {
        let engine = open_engine(candidate).await.unwrap();
        assert_eq!(
            open_engine(&path).await.err().map(|e| e.kind()),
            Some("store_in_use")
        );
        engine.close().await;
    }
}
