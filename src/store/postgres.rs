//! `PostgresStore`: the store shared by many app instances (feature `postgres`).

/// A store in a PostgreSQL database (placeholder; built in issue 4).
#[derive(Debug)]
pub struct PostgresStore {
    _private: (),
}
