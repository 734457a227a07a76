//! Mapping SQLite errors to [`StoreError`] kinds.

use sqlx::error::DatabaseError;

use crate::store::StoreError;

// Primary SQLite result codes (the low byte of the extended code).
pub(super) const SQLITE_CORRUPT: i64 = 11;
pub(super) const SQLITE_CANTOPEN: i64 = 14;
pub(super) const SQLITE_NOTADB: i64 = 26;

pub(super) fn primary_code(error: &dyn DatabaseError) -> Option<i64> {
    error.code()?.parse::<i64>().ok().map(|code| code & 0xff)
}

pub(super) fn describe_open_error(error: &sqlx::Error) -> String {
    match error {
        sqlx::Error::Database(db) => match primary_code(db.as_ref()) {
            Some(SQLITE_NOTADB) => format!("not a SQLite database ({})", db.message()),
            Some(SQLITE_CANTOPEN) => format!("cannot open the file ({})", db.message()),
            _ => db.to_string(),
        },
        other => other.to_string(),
    }
}

pub(super) fn backend(error: sqlx::Error) -> StoreError {
    match error {
        sqlx::Error::PoolClosed => StoreError::Closed,
        sqlx::Error::Database(db) => match primary_code(db.as_ref()) {
            Some(SQLITE_CORRUPT | SQLITE_NOTADB) => StoreError::Corrupt {
                location: "sqlite database file".into(),
                reason: db.to_string(),
            },
            _ => StoreError::Backend(format!("sqlite: {db}")),
        },
        other => StoreError::Backend(format!("sqlite: {other}")),
    }
}

pub(super) fn is_unique_violation(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .is_some_and(|db| db.is_unique_violation())
}
