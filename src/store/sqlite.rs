//! The SQLite backend (placeholder while it is written).
