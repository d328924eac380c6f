//! `PostgresOptions`: the pool and the timeouts of a `PostgresStore`.

use std::time::Duration;

/// Pool size and timeouts of a [`PostgresStore`](super::PostgresStore), for
/// [`connect_with`](super::PostgresStore::connect_with).
///
/// Every timeout is below the webhook's default deadline (10 s), so that during an outage
/// or behind a lock the store fails fast enough for the 503 + `Retry-After` to reach Twilio
/// within its 15 s. Keep them below the deadline when you change either.
///
/// | setting | default | bounds |
/// |---|---|---|
/// | `max_connections` | 10 | connections of the pool |
/// | `acquire_timeout` | 3 s | waiting for a pooled connection, connecting included (sqlx retries refused connections until then) |
/// | `connect_timeout` | 3 s | the first connection of [`connect_with`](super::PostgresStore::connect_with) |
/// | `statement_timeout` | 5 s | each write: a batch's two statements, timed by the store (which then closes the connection), and each statement of `record_sent`'s transaction (`SET LOCAL statement_timeout`) |
/// | `lock_timeout` | 2 s | each wait for a lock held by another session (set inside a batch's statement, `SET LOCAL` in `record_sent`'s transaction) |
/// | `lease_ttl` | 60 s | the reconciliation lease and each change-feed consumer's lease: another instance may take one this long after its holder died |
///
/// The lock timeout is set per transaction (a batch's write is one statement, its own
/// transaction), so it also works through PgBouncer in transaction mode. A batch write that
/// times out on the store's side may still commit on the server: the caller was told it
/// failed, and its retry is a duplicate, which the store recognises. Reads outside
/// transactions are bounded by `acquire_timeout` and the server's own `statement_timeout`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PostgresOptions {
    /// Connections of the pool.
    pub max_connections: u32,
    /// Waiting for a connection from the pool, connecting included.
    pub acquire_timeout: Duration,
    /// The first connection when the store is created.
    pub connect_timeout: Duration,
    /// Each write (a batch's two statements; each statement of `record_sent`).
    pub statement_timeout: Duration,
    /// Each wait for a lock held by another session.
    pub lock_timeout: Duration,
    /// How long a lease (the reconciliation lease, a change-feed consumer's) lasts without
    /// renewal; it is renewed every third of it while held.
    pub lease_ttl: Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(3),
            connect_timeout: Duration::from_secs(3),
            statement_timeout: Duration::from_secs(5),
            lock_timeout: Duration::from_secs(2),
            lease_ttl: Duration::from_secs(60),
        }
    }
}

impl PostgresOptions {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the pool size (at least 1).
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// Sets the acquire timeout.
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// Sets the timeout of the first connection.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets the statement timeout of write transactions (0 turns it off).
    pub fn statement_timeout(mut self, timeout: Duration) -> Self {
        self.statement_timeout = timeout;
        self
    }

    /// Sets the lock timeout of write transactions (0 turns it off).
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// Sets the time to live of the leases: the reconciliation lease and each change-feed
    /// consumer's (at least 1 s).
    pub fn lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl.max(Duration::from_secs(1));
        self
    }

    /// The statement that opens a write transaction with these timeouts.
    pub(super) fn begin(&self) -> String {
        format!(
            "BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL statement_timeout = {}; \
             SET LOCAL lock_timeout = {}",
            setting_ms(self.statement_timeout),
            setting_ms(self.lock_timeout)
        )
    }
}

/// A timeout as PostgreSQL's `statement_timeout` and `lock_timeout` take it: whole
/// milliseconds, rounded up so that a short timeout does not become 0 (off), and at most
/// `i32::MAX` (about 24.8 days), the largest the server accepts. Zero stays 0: off.
pub(super) fn setting_ms(timeout: Duration) -> u128 {
    let ms = timeout.as_nanos().div_ceil(1_000_000);
    ms.min(i32::MAX as u128)
}
