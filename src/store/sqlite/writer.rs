//! The one writer of an `SqliteStore`: one connection, used by one write at a time.
//!
//! SQLite allows one writer per database; letting pooled connections race for that lock makes
//! them sleep in the busy handler (the 434 ms p99 of issue 11). Every write of the store goes
//! through this writer instead: writes queue on an async mutex, never on SQLite's lock.
//!
//! Transactions are plain `BEGIN IMMEDIATE` / `COMMIT` / `ROLLBACK` statements, not sqlx
//! transactions: sqlx-sqlite only lowers its transaction depth on a successful COMMIT or
//! ROLLBACK, so a COMMIT that SQLite rolled back itself (`SQLITE_FULL`) would leave the
//! connection refusing every later `begin`. After any error inside a transaction, the writer
//! rolls back and drops its connection; the next write opens a fresh one, so the store heals as
//! soon as the fault is gone.

use sqlx::pool::PoolConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqlitePool};
use sqlx::{ConnectOptions as _, Connection as _, Sqlite};
use tokio::sync::{Mutex, MutexGuard};

use super::super::StoreError;
use super::super::sql::db_error;

/// Where the writer's connection comes from.
#[derive(Debug)]
enum Source {
    /// A connection of its own, opened with these options (file databases).
    Own(Box<SqliteConnectOptions>),
    /// A connection from the store's pool, for each write (in-memory databases, whose pool
    /// holds the only connection, and pools handed to `SqliteStore::new`).
    Pool,
}

/// The writer's state behind its mutex.
#[derive(Debug, Default)]
pub(super) struct Slot {
    conn: Option<SqliteConnection>,
}

/// The single writer.
#[derive(Debug)]
pub(super) struct Writer {
    source: Source,
    slot: Mutex<Slot>,
}

/// The connection a write transaction runs on.
enum Conn<'a> {
    Own(MutexGuard<'a, Slot>),
    Pool(
        #[allow(dead_code)] MutexGuard<'a, Slot>,
        PoolConnection<Sqlite>,
    ),
}

/// An open write transaction. [`finish`](Self::finish) commits or rolls back; dropped unfinished
/// (a cancelled write), it discards its connection, which ends the transaction.
pub(super) struct WriteTx<'a> {
    conn: Conn<'a>,
    open: bool,
}

impl Writer {
    /// A writer with a connection of its own, opened from `options` when first needed.
    pub(super) fn own(options: SqliteConnectOptions) -> Self {
        Self {
            source: Source::Own(Box::new(options)),
            slot: Mutex::new(Slot::default()),
        }
    }

    /// A writer that borrows a connection from the pool for each write.
    pub(super) fn pooled() -> Self {
        Self {
            source: Source::Pool,
            slot: Mutex::new(Slot::default()),
        }
    }

    /// Waits for the writer and starts a `BEGIN IMMEDIATE` transaction.
    pub(super) async fn begin(&self, pool: &SqlitePool) -> Result<WriteTx<'_>, StoreError> {
        let mut tx = self.acquire(pool).await?;
        tx.opening();
        let begun = sqlx::raw_sql("BEGIN IMMEDIATE").execute(tx.conn()).await;
        match begun {
            Ok(_) => Ok(tx),
            Err(e) => {
                tx.discard();
                Err(db_error(e))
            }
        }
    }

    /// Waits for the writer, for a caller that begins the transaction in its first script
    /// (see [`WriteTx::opening`]).
    pub(super) async fn acquire(&self, pool: &SqlitePool) -> Result<WriteTx<'_>, StoreError> {
        let mut slot = self.slot.lock().await;
        let conn = match &self.source {
            Source::Own(options) => {
                if slot.conn.is_none() {
                    slot.conn = Some(options.connect().await.map_err(db_error)?);
                }
                Conn::Own(slot)
            }
            Source::Pool => {
                let conn = pool.acquire().await.map_err(db_error)?;
                Conn::Pool(slot, conn)
            }
        };
        Ok(WriteTx { conn, open: false })
    }
}

impl WriteTx<'_> {
    /// The connection, for the statements of the transaction.
    pub(super) fn conn(&mut self) -> &mut SqliteConnection {
        match &mut self.conn {
            Conn::Own(slot) => match slot.conn.as_mut() {
                Some(c) => c,
                // `begin` put a connection there and only `discard` takes it, after which
                // no statement runs; reaching this is a bug in this module.
                None => unreachable!("the writer's connection is open while a write runs"),
            },
            Conn::Pool(_, c) => c,
        }
    }

    /// Marks the transaction open, before the statement that begins it is sent: from here on,
    /// an error or a cancelled write rolls back or discards the connection.
    pub(super) fn opening(&mut self) {
        self.open = true;
    }

    /// Marks the transaction committed by a script that ended with `COMMIT`.
    pub(super) fn committed(&mut self) {
        self.open = false;
    }

    /// Commits when `result` is `Ok` (unless a script already did), rolls back otherwise; on
    /// any failure the connection is discarded so that the next write starts clean.
    pub(super) async fn finish<T>(
        mut self,
        result: Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        match result {
            Ok(value) if !self.open => Ok(value),
            Ok(value) => match sqlx::raw_sql("COMMIT").execute(self.conn()).await {
                Ok(_) => {
                    self.open = false;
                    Ok(value)
                }
                Err(e) => {
                    // SQLite may already have rolled back (SQLITE_FULL); make sure, then start
                    // the next write on a fresh connection.
                    let _ = sqlx::raw_sql("ROLLBACK").execute(self.conn()).await;
                    self.discard();
                    Err(db_error(e))
                }
            },
            Err(error) if !self.open => Err(error),
            Err(error) => {
                let rolled_back = sqlx::raw_sql("ROLLBACK").execute(self.conn()).await.is_ok();
                self.open = false;
                if !rolled_back {
                    self.discard();
                }
                Err(error)
            }
        }
    }

    /// Drops the connection (a pool connection is closed, not returned).
    fn discard(&mut self) {
        self.open = false;
        match &mut self.conn {
            Conn::Own(slot) => {
                if let Some(conn) = slot.conn.take() {
                    // Closing politely needs the runtime; dropping closes the handle anyway.
                    if let Ok(rt) = tokio::runtime::Handle::try_current() {
                        rt.spawn(async move {
                            let _ = conn.close().await;
                        });
                    }
                }
            }
            Conn::Pool(_, c) => c.close_on_drop(),
        }
    }
}

impl Drop for WriteTx<'_> {
    fn drop(&mut self) {
        if self.open {
            tracing::warn!(
                "sqlite write cancelled inside its transaction; discarding its connection"
            );
            self.discard();
        }
    }
}
