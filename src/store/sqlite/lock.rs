//! One database file, one store: an exclusive lock that follows the file,
//! not the path it was opened by.
//!
//! The lock is a `flock` on the database file itself, so a symlink or a hard
//! link to a store in use is refused like its own path. On Linux `flock`
//! locks and the POSIX (`fcntl`) locks SQLite uses are independent (flock(2):
//! "there is no interaction between the types of lock placed by flock() and
//! fcntl(2)"), so holding it never blocks SQLite, in this process or another.
//! (Over NFS, Linux emulates `flock` with `fcntl`; SQLite's WAL mode does not
//! work on network file systems anyway.)
//!
//! The trap is elsewhere: POSIX locks belong to the process and the inode,
//! and closing *any* descriptor of the file drops all of them. A descriptor
//! opened here and later closed (say, by an open refused because the store
//! is in use) would silently release the SQLite locks of a store still open
//! in this process; another process could then take the database for
//! unused, checkpoint and delete its WAL under our feet. So descriptors of
//! database files are opened once per inode and kept for the life of the
//! process, in [`DESCRIPTORS`]: releasing the lock unlocks, it never closes.
//! The cost is one descriptor per database file a process has ever opened.

use std::collections::HashMap;
use std::fs::File;
use std::io::ErrorKind;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

/// What identifies a database file, whatever path names it.
#[cfg(unix)]
type FileKey = (u64, u64);
#[cfg(not(unix))]
type FileKey = std::path::PathBuf;

#[cfg(unix)]
fn file_key(meta: &std::fs::Metadata, _path: &Path) -> std::io::Result<FileKey> {
    use std::os::unix::fs::MetadataExt;
    Ok((meta.dev(), meta.ino()))
}

#[cfg(not(unix))]
fn file_key(_meta: &std::fs::Metadata, path: &Path) -> std::io::Result<FileKey> {
    std::fs::canonicalize(path)
}

struct Descriptor {
    file: Arc<File>,
    /// Whether a store of this process holds the lock: `flock` cannot tell,
    /// as every store of the process locks through the same descriptor.
    held: bool,
}

#[derive(Default)]
struct Descriptors {
    by_file: HashMap<FileKey, Descriptor>,
    /// Descriptors of a file already in `by_file` (the path was replaced
    /// between stat and open): kept open for the reason above.
    spare: Vec<File>,
}

static DESCRIPTORS: OnceLock<Mutex<Descriptors>> = OnceLock::new();

fn descriptors() -> MutexGuard<'static, Descriptors> {
    DESCRIPTORS
        .get_or_init(Mutex::default)
        .lock()
        // The map is consistent after every statement.
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Why a database file could not be locked.
#[derive(Debug)]
pub(super) enum LockError {
    /// Another store (in this process or another) holds it.
    InUse,
    /// The file could not be created, opened or locked; the message says why.
    Failed(String),
}

/// Held while a store uses its database file; dropping it releases the lock
/// (the descriptor stays open, see the module docs).
#[derive(Debug)]
pub(super) struct FileLock {
    key: FileKey,
    file: Arc<File>,
}

impl Drop for FileLock {
    fn drop(&mut self) {
        let mut descriptors = descriptors();
        let _ = self.file.unlock();
        if let Some(descriptor) = descriptors.by_file.get_mut(&self.key) {
            descriptor.held = false;
        }
    }
}

/// The descriptor of the database file at `path`, opened once per file;
/// refuses a file that is neither empty nor a SQLite database. `path` must
/// exist.
// `FileKey` is `Copy` on unix only.
#[allow(clippy::clone_on_copy)]
pub(super) fn descriptor(path: &Path) -> Result<(FileKey, Arc<File>), String> {
    let meta = std::fs::metadata(path).map_err(|error| format!("cannot read the file: {error}"))?;
    if meta.is_dir() {
        return Err("the path is a directory, not a database file".into());
    }
    let key = file_key(&meta, path).map_err(|error| format!("cannot read the file: {error}"))?;
    let mut descriptors = descriptors();
    if let Some(known) = descriptors.by_file.get(&key) {
        return Ok((key, Arc::clone(&known.file)));
    }
    let file = File::open(path).map_err(|error| format!("cannot read the file: {error}"))?;
    // The file is not known here, so no store of this process has SQLite
    // locks on it: closing this descriptor (if the file is refused) is safe.
    super::check_header(&file)?;
    let opened = file_key(
        &file
            .metadata()
            .map_err(|error| format!("cannot read the file: {error}"))?,
        path,
    )
    .map_err(|error| format!("cannot read the file: {error}"))?;
    if opened != key && descriptors.by_file.contains_key(&opened) {
        descriptors.spare.push(file);
        let known = &descriptors.by_file[&opened];
        return Ok((opened, Arc::clone(&known.file)));
    }
    let file = Arc::new(file);
    descriptors.by_file.insert(
        opened.clone(),
        Descriptor {
            file: Arc::clone(&file),
            held: false,
        },
    );
    Ok((opened, file))
}

/// Takes the exclusive lock of the database file at `path` (which must
/// exist and have passed [`descriptor`]).
pub(super) fn lock(path: &Path) -> Result<FileLock, LockError> {
    let (key, file) = descriptor(path).map_err(LockError::Failed)?;
    let mut descriptors = descriptors();
    let Some(entry) = descriptors.by_file.get_mut(&key) else {
        return Err(LockError::Failed("the file's descriptor was lost".into()));
    };
    if entry.held {
        return Err(LockError::InUse);
    }
    match file.try_lock() {
        Ok(()) => {
            entry.held = true;
            Ok(FileLock { key, file })
        }
        Err(std::fs::TryLockError::WouldBlock) => Err(LockError::InUse),
        Err(std::fs::TryLockError::Error(error)) if error.kind() == ErrorKind::WouldBlock => {
            Err(LockError::InUse)
        }
        Err(std::fs::TryLockError::Error(error)) => {
            Err(LockError::Failed(format!("cannot lock the file: {error}")))
        }
    }
}
