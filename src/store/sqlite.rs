//! `SqliteStore`: the embedded store for a single process (feature `sqlite`).

/// A store in an SQLite database (placeholder; built in issue 4).
#[derive(Debug)]
pub struct SqliteStore {
    _private: (),
}
