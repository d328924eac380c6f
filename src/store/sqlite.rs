//! `SqliteStore`: the embedded store for a single process (feature `sqlite`).

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, QueryBuilder, Row, Sqlite};
use time::OffsetDateTime;

use super::sql::{
    Dialect, EventRow, MAX_LIST_STATUSES, RecordRow, SQLITE_MIGRATIONS, Statements, TablePrefix,
    db_error, from_micros, micros_ceil, micros_floor, rank, raw_json,
};
use super::{ListQuery, Page, StatusStore, StoreError};
use crate::ids::MessageSid;
use crate::model::{Applied, HistoryEntry, MessageRecord, SentMessage, StatusEvent};
use crate::status::{MessageStatus, transition};

/// How long a writer waits for another writer's transaction before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A store in an SQLite database: the embedded default for one process.
///
/// Every write runs in a `BEGIN IMMEDIATE` transaction, so writers are serialized by SQLite and
/// each `apply` reads the current status, upserts the record and inserts the event atomically.
/// Times are stored as microseconds since the Unix epoch (sub-microsecond digits are dropped).
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
}

impl SqliteStore {
    /// A store over `pool`, with the default table prefix `twilio_`.
    ///
    /// For an in-memory database the pool must keep exactly one connection open for the
    /// store's lifetime (each in-memory connection is its own database otherwise);
    /// [`connect`](Self::connect) sets that up.
    pub fn new(pool: SqlitePool) -> Self {
        Self {
            pool,
            sql: Arc::new(Statements::new(TablePrefix::default(), Dialect::Sqlite)),
        }
    }

    /// The same store with its tables named `<prefix>messages`, `<prefix>events` and
    /// `<prefix>migrations`.
    pub fn with_prefix(self, prefix: TablePrefix) -> Self {
        Self {
            pool: self.pool,
            sql: Arc::new(Statements::new(prefix, Dialect::Sqlite)),
        }
    }

    /// Opens a database: a file path (created if missing), an `sqlite:` URL, or `:memory:` /
    /// `sqlite::memory:` for a private in-memory database.
    ///
    /// Files are opened in WAL mode with a 5 s busy timeout and foreign keys on; an in-memory
    /// database gets a pool of one connection that is never closed while the store lives.
    /// Call [`migrate`](Self::migrate) afterwards.
    ///
    /// # Errors
    /// [`StoreError::Config`] when the URL cannot be parsed, [`StoreError::Unavailable`] when
    /// the database cannot be opened.
    pub async fn connect(url_or_path: &str) -> Result<Self, StoreError> {
        let in_memory = matches!(
            url_or_path,
            ":memory:" | "sqlite::memory:" | "sqlite://:memory:"
        ) || url_or_path.contains("mode=memory");
        let options = if url_or_path == ":memory:" {
            SqliteConnectOptions::from_str("sqlite::memory:")
        } else if url_or_path.starts_with("sqlite:") {
            SqliteConnectOptions::from_str(url_or_path)
        } else {
            Ok(SqliteConnectOptions::new().filename(url_or_path))
        }
        .map_err(|e| StoreError::Config(format!("invalid sqlite url: {e}")))?
        .create_if_missing(true)
        .foreign_keys(true)
        .busy_timeout(BUSY_TIMEOUT);
        let pool = if in_memory {
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(options)
                .await
        } else {
            SqlitePoolOptions::new()
                .connect_with(
                    options
                        .journal_mode(SqliteJournalMode::Wal)
                        .synchronous(SqliteSynchronous::Normal),
                )
                .await
        }
        .map_err(db_error)?;
        Ok(Self::new(pool))
    }

    /// Creates or upgrades the schema: applies, in one transaction, every schema version not yet
    /// recorded in `<prefix>migrations`. Safe to call on every start and from several
    /// connections at once.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the database cannot be written; nothing is applied then.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db_error)?;
        sqlx::raw_sql(AssertSqlSafe(self.sql.create_migrations.clone()))
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        let done: HashSet<i64> =
            sqlx::query_scalar(AssertSqlSafe(self.sql.select_versions.clone()))
                .fetch_all(&mut *tx)
                .await
                .map_err(db_error)?
                .into_iter()
                .collect();
        for m in SQLITE_MIGRATIONS
            .iter()
            .filter(|m| !done.contains(&m.version))
        {
            sqlx::raw_sql(AssertSqlSafe(m.render(&self.sql.prefix)))
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
            sqlx::query(AssertSqlSafe(self.sql.insert_version.clone()))
                .bind(m.version)
                .bind(m.name)
                .bind(micros_floor(OffsetDateTime::now_utc()))
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)
    }

    /// The pool the store runs on.
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

/// The status after an upsert: what it returned, or the unchanged previous status.
fn current_status(
    returned: Option<String>,
    previous: &Option<MessageStatus>,
) -> Result<MessageStatus, StoreError> {
    match (returned, previous) {
        (Some(s), _) => Ok(MessageStatus::from(s)),
        (None, Some(p)) => Ok(p.clone()),
        (None, None) => Err(StoreError::Corrupt(
            "the upsert of a new message returned no row".into(),
        )),
    }
}

#[async_trait]
impl StatusStore for SqliteStore {
    async fn record_sent(&self, sent: &SentMessage) -> Result<Applied, StoreError> {
        let sql = &self.sql;
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db_error)?;
        let previous: Option<String> = sqlx::query_scalar(AssertSqlSafe(sql.select_status.clone()))
            .bind(sent.sid.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error)?;
        let previous = previous.map(MessageStatus::from);
        let returned: Option<String> = sqlx::query_scalar(AssertSqlSafe(sql.upsert_sent.clone()))
            .bind(sent.sid.as_str())
            .bind(sent.account_sid.as_ref().map(|s| s.as_str()))
            .bind(sent.to.as_str())
            .bind(sent.from.as_deref())
            .bind(sent.messaging_service_sid.as_ref().map(|s| s.as_str()))
            .bind(sent.body.as_deref())
            .bind(sent.num_segments.map(i64::from))
            .bind(sent.status.as_str())
            .bind(rank(&sent.status))
            .bind(micros_floor(sent.created_at))
            .bind(micros_floor(OffsetDateTime::now_utc()))
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error)?;
        let current = current_status(returned, &previous)?;
        tx.commit().await.map_err(db_error)?;
        Ok(Applied {
            outcome: transition(previous.as_ref(), &sent.status),
            previous,
            current,
            new_event: false,
        })
    }

    async fn apply(&self, event: &StatusEvent) -> Result<Applied, StoreError> {
        let sql = &self.sql;
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db_error)?;
        let previous: Option<String> = sqlx::query_scalar(AssertSqlSafe(sql.select_status.clone()))
            .bind(event.sid.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error)?;
        let previous = previous.map(MessageStatus::from);
        let returned: Option<String> = sqlx::query_scalar(AssertSqlSafe(sql.upsert_event.clone()))
            .bind(event.sid.as_str())
            .bind(event.account_sid.as_ref().map(|s| s.as_str()))
            .bind(event.to.as_deref())
            .bind(event.from.as_deref())
            .bind(event.messaging_service_sid.as_ref().map(|s| s.as_str()))
            .bind(event.status.as_str())
            .bind(rank(&event.status))
            .bind(event.error_code.map(i64::from))
            .bind(event.error_message.as_deref())
            .bind(micros_floor(event.received_at))
            .bind(micros_floor(OffsetDateTime::now_utc()))
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error)?;
        let current = current_status(returned, &previous)?;
        let inserted: Option<i64> = sqlx::query_scalar(AssertSqlSafe(sql.insert_event.clone()))
            .bind(event.sid.as_str())
            .bind(event.status.as_str())
            .bind(event.error_code.map(i64::from))
            .bind(micros_floor(event.received_at))
            .bind(event.source.as_str())
            .bind(event.idempotency_token.as_deref())
            .bind(raw_json(&event.raw))
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(Applied {
            outcome: transition(previous.as_ref(), &event.status),
            previous,
            current,
            new_event: inserted.is_some(),
        })
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
}
