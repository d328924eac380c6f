//! `SqliteStore`: the embedded store for a single process (feature `sqlite`).

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, ConnectOptions as _, QueryBuilder, Row, Sqlite};
use time::OffsetDateTime;

use super::sql::{
    Dialect, EventRow, MAX_LIST_STATUSES, RecordRow, SQLITE_MIGRATIONS, Statements, TablePrefix,
    after_key, db_error, from_micros, micros_ceil, micros_floor,
};
use super::{ListQuery, Page, StatusStore, StoreError};
use crate::feed::LocalWake;
use crate::ids::MessageSid;
use crate::model::{Applied, HistoryEntry, MessageRecord, SentMessage, StatusEvent};
use crate::status::MessageStatus;

mod batch;
mod feed;
mod optout;
mod writer;

use writer::Writer;

/// How long a write waits for another process's write lock on the same file (never the case
/// when this store is the file's only writer).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// SQLite's `synchronous` level: how hard a commit pushes data to the disk (WAL mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Synchronous {
    /// `NORMAL`: the WAL is synced at checkpoints, not at each commit. A commit survives the
    /// process being killed, but a power loss or OS crash may lose the last commits before a
    /// checkpoint: a callback answered 204 could be lost (Twilio does not resend it; the
    /// reconciler repairs the status, not the event history). About one fsync less per batch.
    Normal,
    /// `FULL` (the default): the WAL is synced at each commit, so a callback answered 204
    /// survives a power loss too. With group commit it costs one fsync per batch, not per
    /// callback.
    Full,
    /// `EXTRA`: as `FULL`, and the directory is synced too when the WAL is reset.
    Extra,
}

/// Settings of a file database opened by [`SqliteStore::connect_with`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SqliteOptions {
    /// The `synchronous` level (default [`Synchronous::Full`]).
    pub synchronous: Synchronous,
    /// How long a write waits for another process's write lock (default 5 s). This store's
    /// own writes never wait for each other in SQLite: they queue in the store.
    pub busy_timeout: Duration,
    /// Connections for reads (default 4).
    pub read_connections: u32,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            synchronous: Synchronous::Full,
            busy_timeout: BUSY_TIMEOUT,
            read_connections: 4,
        }
    }
}

impl SqliteOptions {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the `synchronous` level.
    pub fn synchronous(mut self, level: Synchronous) -> Self {
        self.synchronous = level;
        self
    }

    /// Sets how long a write waits for another process's write lock.
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// Sets the number of read connections (at least 1).
    pub fn read_connections(mut self, n: u32) -> Self {
        self.read_connections = n.max(1);
        self
    }
}

/// A store in an SQLite database: the embedded default for one process.
///
/// Every write goes through one writer: one connection, used by one write at a time (writes
/// queue in the store, never in SQLite's busy handler), in `BEGIN IMMEDIATE` transactions.
/// Reads go through a pool and, in WAL mode, never wait for the writer. A batch of events
/// ([`StatusStore::apply_batch`]) is one transaction of a few multi-row statements. After an
/// error inside a transaction the writer starts over on a fresh connection, so the store
/// recovers by itself once the fault (a full disk, say) is gone.
///
/// Files are opened in WAL mode with `synchronous = FULL` by default ([`Synchronous`] says
/// what the other levels risk). Times are stored as microseconds since the Unix epoch
/// (sub-microsecond digits are dropped).
///
/// Create the schema with [`migrate`](Self::migrate) before first use.
///
/// ```no_run
/// # async fn demo() -> Result<(), twilio_delivery::StoreError> {
/// use twilio_delivery::store::SqliteStore;
///
/// let store = SqliteStore::connect("messages.db").await?;
/// store.migrate().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    sql: Arc<Statements>,
    writer: Arc<Writer>,
    /// The wake-ups of this store's tables.
    wake: Arc<LocalWake>,
    /// The wake-ups of each table prefix, shared by every store made from the same one (its
    /// clones and [`with_prefix`](Self::with_prefix)): one prefix's feed never wakes another's.
    wakes: Arc<Mutex<HashMap<String, Arc<LocalWake>>>>,
    /// For an in-memory database from [`connect`](Self::connect): a connection that does
    /// nothing but keep the database alive while the store lives.
    _anchor: Option<Arc<MemoryAnchor>>,
}

/// A connection to a shared-cache in-memory database, held open so that the database outlives
/// the pool's connection. sqlx closes a connection whose statement was given up half-way (a
/// cancelled write or read), and an in-memory database is gone with its last connection: the
/// pool's next connection would open a new, empty one.
struct MemoryAnchor {
    _conn: Mutex<SqliteConnection>,
}

impl std::fmt::Debug for MemoryAnchor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemoryAnchor")
    }
}

impl SqliteStore {
    /// A store over `pool`, with the default table prefix `twilio_`. Its writes borrow a
    /// connection of the pool, one write at a time.
    ///
    /// For an in-memory database the pool must keep exactly one connection open for the
    /// store's lifetime (each in-memory connection is its own database otherwise);
    /// [`connect`](Self::connect) sets that up, and gives a file database a writer connection
    /// of its own.
    pub fn new(pool: SqlitePool) -> Self {
        Self::with_writer(pool, Writer::pooled())
    }

    fn with_writer(pool: SqlitePool, writer: Writer) -> Self {
        let prefix = TablePrefix::default();
        let wake = Arc::new(LocalWake::new());
        let wakes = HashMap::from([(prefix.as_str().to_owned(), wake.clone())]);
        Self {
            pool,
            sql: Arc::new(Statements::new(prefix, Dialect::Sqlite)),
            writer: Arc::new(writer),
            wake,
            wakes: Arc::new(Mutex::new(wakes)),
            _anchor: None,
        }
    }

    /// The same store with its tables named `<prefix>messages`, `<prefix>events`,
    /// `<prefix>feed`, ... and `<prefix>migrations`.
    pub fn with_prefix(self, prefix: TablePrefix) -> Self {
        let wake = self
            .wakes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(prefix.as_str().to_owned())
            .or_insert_with(|| Arc::new(LocalWake::new()))
            .clone();
        Self {
            sql: Arc::new(Statements::new(prefix, Dialect::Sqlite)),
            wake,
            ..self
        }
    }

    /// Opens a database with the default [`SqliteOptions`]: a file path (created if
    /// missing), an `sqlite:` URL, or `:memory:` / `sqlite::memory:` for a private in-memory
    /// database. Call [`migrate`](Self::migrate) afterwards.
    ///
    /// # Errors
    /// [`StoreError::Config`] when the URL cannot be parsed, [`StoreError::Unavailable`] when
    /// the database cannot be opened.
    pub async fn connect(url_or_path: &str) -> Result<Self, StoreError> {
        Self::connect_with(url_or_path, SqliteOptions::default()).await
    }

    /// Opens a database as [`connect`](Self::connect) does, with `options`.
    ///
    /// A file gets a writer connection of its own, a pool of `read_connections` for reads,
    /// WAL mode, the `synchronous` level and foreign keys on. An in-memory database gets a pool
    /// of one connection that serves reads and writes, and a second connection, idle, that
    /// keeps the database alive while the store lives: when a cancelled statement makes sqlx
    /// close the pool's connection, the next one finds the same database.
    ///
    /// # Errors
    /// [`StoreError::Config`] when the URL cannot be parsed, [`StoreError::Unavailable`] when
    /// the database cannot be opened.
    pub async fn connect_with(
        url_or_path: &str,
        options: SqliteOptions,
    ) -> Result<Self, StoreError> {
        let in_memory = matches!(
            url_or_path,
            ":memory:" | "sqlite::memory:" | "sqlite://:memory:"
        ) || url_or_path.contains("mode=memory");
        let connect = if url_or_path == ":memory:" {
            SqliteConnectOptions::from_str("sqlite::memory:")
        } else if url_or_path.starts_with("sqlite:") {
            SqliteConnectOptions::from_str(url_or_path)
        } else {
            Ok(SqliteConnectOptions::new().filename(url_or_path))
        }
        .map_err(|e| StoreError::Config(format!("invalid sqlite url: {e}")))?
        .create_if_missing(true)
        .foreign_keys(true)
        .busy_timeout(options.busy_timeout);
        if in_memory {
            let anchor = connect.connect().await.map_err(db_error)?;
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(connect)
                .await
                .map_err(db_error)?;
            return Ok(Self {
                _anchor: Some(Arc::new(MemoryAnchor {
                    _conn: Mutex::new(anchor),
                })),
                ..Self::new(pool)
            });
        }
        let connect =
            connect
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(match options.synchronous {
                    Synchronous::Normal => SqliteSynchronous::Normal,
                    Synchronous::Full => SqliteSynchronous::Full,
                    Synchronous::Extra => SqliteSynchronous::Extra,
                });
        // The writer keeps a larger page cache (its working set is every index a status change
        // touches) and its temporary statement journals in memory.
        let writer = Writer::own(
            connect
                .clone()
                .pragma("cache_size", "-16384")
                .pragma("temp_store", "memory"),
        );
        let pool = SqlitePoolOptions::new()
            .max_connections(options.read_connections.max(1))
            .connect_with(connect)
            .await
            .map_err(db_error)?;
        Ok(Self::with_writer(pool, writer))
    }

    /// Creates or upgrades the schema: applies, in one transaction, every schema version not yet
    /// recorded in `<prefix>migrations`. Safe to call on every start and from several
    /// connections at once.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the database cannot be written; nothing is applied then.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let mut tx = self.writer.begin(&self.pool).await?;
        let result = self.run_migrations(tx.conn()).await;
        tx.finish(result).await?;
        // A store opened on an existing feed publishes its head, for in-process waiters.
        if let Ok(head) = crate::feed::FeedStore::head(self).await {
            self.wake.committed(head);
        }
        Ok(())
    }

    async fn run_migrations(&self, conn: &mut SqliteConnection) -> Result<(), StoreError> {
        sqlx::raw_sql(AssertSqlSafe(self.sql.create_migrations.clone()))
            .execute(&mut *conn)
            .await
            .map_err(db_error)?;
        let done: HashSet<i64> =
            sqlx::query_scalar(AssertSqlSafe(self.sql.select_versions.clone()))
                .fetch_all(&mut *conn)
                .await
                .map_err(db_error)?
                .into_iter()
                .collect();
        for m in SQLITE_MIGRATIONS
            .iter()
            .filter(|m| !done.contains(&m.version))
        {
            sqlx::raw_sql(AssertSqlSafe(m.render(&self.sql.prefix)))
                .execute(&mut *conn)
                .await
                .map_err(db_error)?;
            sqlx::query(AssertSqlSafe(self.sql.insert_version.clone()))
                .bind(m.version)
                .bind(m.name)
                .bind(micros_floor(OffsetDateTime::now_utc()))
                .execute(&mut *conn)
                .await
                .map_err(db_error)?;
        }
        Ok(())
    }

    /// The pool the store reads through (writes use the store's one writer connection).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// The table prefix.
    pub fn prefix(&self) -> &TablePrefix {
        &self.sql.prefix
    }
}

fn record_row(row: &SqliteRow) -> Result<MessageRecord, StoreError> {
    let raw: RecordRow<i64> = (|| {
        Ok::<_, sqlx::Error>(RecordRow {
            sid: row.try_get("sid")?,
            account_sid: row.try_get("account_sid")?,
            to: row.try_get("to_addr")?,
            from: row.try_get("from_addr")?,
            messaging_service_sid: row.try_get("messaging_service_sid")?,
            body: row.try_get("body")?,
            num_segments: row.try_get("num_segments")?,
            status: row.try_get("status")?,
            error_code: row.try_get("error_code")?,
            error_message: row.try_get("error_message")?,
            sent_recorded: row.try_get("sent_recorded")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    })()
    .map_err(db_error)?;
    raw.into_record()
}

fn event_row(row: &SqliteRow) -> Result<HistoryEntry, StoreError> {
    let received_at: i64 = row.try_get("received_at").map_err(db_error)?;
    let raw = (|| {
        Ok::<_, sqlx::Error>(EventRow {
            status: row.try_get("status")?,
            error_code: row.try_get("error_code")?,
            received_at: OffsetDateTime::UNIX_EPOCH,
            source: row.try_get("source")?,
            idempotency_token: row.try_get("idempotency_token")?,
            raw: row.try_get("raw")?,
        })
    })()
    .map_err(db_error)?;
    EventRow {
        received_at: from_micros(received_at, "received_at")?,
        ..raw
    }
    .into_entry()
}

#[async_trait]
impl StatusStore for SqliteStore {
    async fn record_sent(&self, sent: &SentMessage) -> Result<Applied, StoreError> {
        let mut tx = self.writer.begin(&self.pool).await?;
        let result = batch::record_sent(&self.sql, tx.conn(), sent).await;
        let (applied, head) = tx.finish(result).await?;
        if let Some(head) = head {
            self.wake.committed(head);
        }
        Ok(applied)
    }

    async fn apply(&self, event: &StatusEvent) -> Result<Applied, StoreError> {
        self.apply_batch(std::slice::from_ref(event))
            .await?
            .pop()
            .ok_or_else(|| StoreError::Corrupt("a batch of one gave no answer".into()))
    }

    async fn apply_batch(&self, events: &[StatusEvent]) -> Result<Vec<Applied>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.writer.acquire(&self.pool).await?;
        let result = batch::apply(&self.sql, &mut tx, events).await;
        let (applied, head) = tx.finish(result).await?;
        if let Some(head) = head {
            self.wake.committed(head);
        }
        Ok(applied)
    }

    async fn get(&self, sid: &MessageSid) -> Result<Option<MessageRecord>, StoreError> {
        sqlx::query(AssertSqlSafe(self.sql.get.clone()))
            .bind(sid.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?
            .map(|row| record_row(&row))
            .transpose()
    }

    async fn history(&self, sid: &MessageSid) -> Result<Vec<HistoryEntry>, StoreError> {
        sqlx::query(AssertSqlSafe(self.sql.history.clone()))
            .bind(sid.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?
            .iter()
            .map(event_row)
            .collect()
    }

    async fn pending_since(
        &self,
        created_from: OffsetDateTime,
        older_than: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<MessageRecord>, StoreError> {
        sqlx::query(AssertSqlSafe(self.sql.pending.clone()))
            .bind(micros_ceil(older_than))
            .bind(i64::from(limit))
            .bind(micros_ceil(created_from))
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?
            .iter()
            .map(record_row)
            .collect()
    }

    async fn pending_page(
        &self,
        created_from: OffsetDateTime,
        older_than: OffsetDateTime,
        after: Option<(OffsetDateTime, &MessageSid)>,
        limit: u32,
    ) -> Result<Vec<MessageRecord>, StoreError> {
        let Some((at, sid)) = after else {
            return self.pending_since(created_from, older_than, limit).await;
        };
        let (at, sid) = after_key(at, sid);
        sqlx::query(AssertSqlSafe(self.sql.pending_after.clone()))
            .bind(micros_ceil(older_than))
            .bind(i64::from(limit))
            .bind(micros_ceil(created_from))
            .bind(at)
            .bind(sid)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?
            .iter()
            .map(record_row)
            .collect()
    }

    async fn list(&self, query: &ListQuery) -> Result<Page, StoreError> {
        let statuses: HashSet<&str> = query.statuses.iter().map(MessageStatus::as_str).collect();
        if statuses.len() > MAX_LIST_STATUSES {
            return Err(StoreError::Config(format!(
                "a list query may filter on at most {MAX_LIST_STATUSES} statuses"
            )));
        }
        let size = query.page_size() as usize;
        let mut qb = QueryBuilder::<Sqlite>::new(self.sql.list_head.as_str());
        if let Some(to) = &query.to {
            qb.push(" AND to_addr = ").push_bind(to.clone());
        }
        if !statuses.is_empty() {
            qb.push(" AND status IN (");
            let mut list = qb.separated(", ");
            for s in statuses {
                list.push_bind(s.to_owned());
            }
            qb.push(")");
        }
        if let Some(from) = query.created_from {
            qb.push(" AND created_at >= ").push_bind(micros_ceil(from));
        }
        if let Some(until) = query.created_until {
            qb.push(" AND created_at < ").push_bind(micros_ceil(until));
        }
        if let Some(after) = &query.after {
            let at = micros_ceil(after.created_at);
            if at == micros_floor(after.created_at) {
                qb.push(" AND (created_at, sid) < (")
                    .push_bind(at)
                    .push(", ")
                    .push_bind(after.sid.as_str().to_owned())
                    .push(")");
            } else {
                // A cursor between two stored microseconds: every record before it qualifies.
                qb.push(" AND created_at < ").push_bind(at);
            }
        }
        qb.push(" ORDER BY created_at DESC, sid DESC LIMIT ")
            .push_bind(i64::try_from(size + 1).unwrap_or(i64::MAX));
        let rows = qb.build().fetch_all(&self.pool).await.map_err(db_error)?;
        let records = rows.iter().map(record_row).collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(records, size))
    }

    fn feed(&self) -> Option<&dyn crate::feed::FeedStore> {
        Some(self)
    }
}
