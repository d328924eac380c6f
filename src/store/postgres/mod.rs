//! `PostgresStore`: the store shared by many app instances (feature `postgres`).

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions, PgRow, PgValueFormat};
use sqlx::{AssertSqlSafe, Postgres, QueryBuilder, Row};
use time::OffsetDateTime;

use super::sql::{
    Dialect, EventRow, MAX_LIST_STATUSES, POSTGRES_MIGRATIONS, RecordRow, Statements, TablePrefix,
    after_key, ceil_time, db_error, floor_time, from_micros,
};
use super::{ListQuery, Page, ReconcileLock, StatusStore, StoreError};
use crate::feed::FeedStore;
use crate::ids::MessageSid;
use crate::model::{Applied, HistoryEntry, MessageRecord, SentMessage, StatusEvent};
use crate::status::MessageStatus;

mod feed;
mod lease;
mod options;
mod optout;
mod write;

use feed::{Gaps, PgWake};
use lease::Lease;
pub use options::PostgresOptions;
use options::setting_ms;
use write::Writes;

/// First key of the advisory lock `migrate` holds (the second is the prefix's hash); it is
/// transaction-scoped, so it works through connection poolers.
const MIGRATE_LOCK_CLASS: i32 = 0x7477_6401;
/// How often a write is tried when it loses a race or PostgreSQL aborts it as a deadlock or
/// serialization failure.
const MAX_ATTEMPTS: usize = 5;
/// How often a batch of several events is tried whole before its events are written one at a
/// time (see [`PostgresStore::write_one_by_one`]).
const BATCH_ATTEMPTS: usize = 2;

/// A store in a PostgreSQL database, shared by any number of app instances.
///
/// A batch of events ([`StatusStore::apply_batch`], which `apply` uses for one event) whose
/// events are all for different messages is one round trip: one statement over arrays
/// (`unnest`) that commits on its own locks the batch's message rows in SID order, applies the
/// max-register rule to each, and writes the new and changed rows, the history rows
/// (`ON CONFLICT DO NOTHING`) and the feed rows. A batch with several events for one message
/// is two: read the rows and their versions, compute the result of the events in order in
/// memory, then write it all with one statement that locks the rows it read in SID order and
/// checks they did not change since; when one did (another instance wrote it), it fails whole
/// and the batch is read and planned again. Either statement fails whole, and is tried again,
/// when another instance created a message the batch meant to create. A batch of several
/// events that loses that way twice is written one event at a time, which cannot starve (see
/// `write_one_by_one`). Rows are locked and created in SID order, so instances never
/// deadlock. Any error in a write closes its connection instead of returning it to the pool.
///
/// The change feed's positions come from a sequence: writers never wait for each other, and a
/// read that meets a missing position waits for the transactions that may still commit it
/// (see [`crate::feed`]); every instance's consumers are woken by `NOTIFY`. The
/// reconciliation lock, and each change-feed consumer's (one consumer of a name runs at a
/// time across instances), is a lease row with an expiry, renewed while held, so it works
/// through PgBouncer in transaction mode. Timeouts: see [`PostgresOptions`].
///
/// Text cannot hold U+0000 in PostgreSQL: it is stored as U+FFFD in every column but the raw
/// pairs (kept as JSON, which escapes it). Times are kept to the microsecond.
///
/// Needs PostgreSQL 11 or later (the schema's delete trigger on `messages`, version 5).
///
/// The messages not final are listed in the `pending` table, which the reconciler reads. A
/// message that becomes final keeps its row there until a pending read passes it
/// ([`pending`](StatusStore::pending), [`pending_since`](StatusStore::pending_since),
/// [`pending_page`](StatusStore::pending_page), which the reconciler calls) and deletes it, so
/// the webhook's writes do no delete. Without a reconciler the table keeps one small row per
/// message; a pending read now and then clears the window it passes.
///
/// Server settings: the store relies on PostgreSQL's durable defaults (`fsync`,
/// `synchronous_commit`, `full_page_writes`). At a sustained rate of thousands of callbacks a
/// second, a good part of the WAL is whole pages written again after each checkpoint (about a
/// quarter of it right after one, `docs/PERFORMANCE.md`): a larger `max_wal_size` makes
/// checkpoints, and so those pages, rarer.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use twilio_delivery::store::{PostgresStore, TablePrefix};
///
/// let store = PostgresStore::connect("postgres://app@db.internal/app")
///     .await?
///     .with_prefix(TablePrefix::new("sms_")?);
/// store.migrate().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    sql: Arc<Statements>,
    writes: Arc<Writes>,
    lease: Arc<Lease>,
    begin: Arc<str>,
    options: PostgresOptions,
    wake: Arc<PgWake>,
    gaps: Arc<Gaps>,
    lock_key: i32,
}

impl PostgresStore {
    /// A store over `pool`, with the default table prefix `twilio_` and the statement, lock
    /// and lease settings of [`PostgresOptions::default`] (the pool keeps its own settings).
    pub fn new(pool: PgPool) -> Self {
        Self::with_statements(pool, TablePrefix::default(), PostgresOptions::default())
    }

    fn with_statements(pool: PgPool, prefix: TablePrefix, options: PostgresOptions) -> Self {
        let sql = Statements::new(prefix, Dialect::Postgres);
        let lock_key = fnv1a(sql.prefix.as_str());
        let gaps = Gaps::new(lock_key);
        Self {
            pool,
            lock_key,
            writes: Arc::new(Writes::new(&sql, &gaps)),
            gaps: Arc::new(gaps),
            lease: Arc::new(Lease::new(sql.prefix.as_str(), options.lease_ttl)),
            begin: options.begin().into(),
            sql: Arc::new(sql),
            options,
            wake: Arc::new(PgWake::new()),
        }
    }

    /// The same store with its tables named `<prefix>messages`, `<prefix>events`,
    /// `<prefix>feed`, ... and `<prefix>migrations` (and its advisory lock keyed by the prefix).
    pub fn with_prefix(self, prefix: TablePrefix) -> Self {
        Self::with_statements(self.pool, prefix, self.options)
    }

    /// The same store with the statement, lock and lease settings of `options` (its pool is
    /// kept as it is; [`connect_with`](Self::connect_with) builds one from them).
    pub fn with_options(self, options: PostgresOptions) -> Self {
        Self::with_statements(self.pool, self.sql.prefix.clone(), options)
    }

    /// Connects to `url` (`postgres://user:pass@host/db`) with the default
    /// [`PostgresOptions`].
    ///
    /// # Errors
    /// [`StoreError::Config`] when the URL is invalid, [`StoreError::Unavailable`] when the
    /// server cannot be reached within the connect timeout.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, PostgresOptions::default()).await
    }

    /// Connects to `url` with a pool and timeouts from `options`.
    ///
    /// # Errors
    /// [`StoreError::Config`] when the URL is invalid, [`StoreError::Unavailable`] when the
    /// server cannot be reached within `options.connect_timeout`.
    pub async fn connect_with(url: &str, options: PostgresOptions) -> Result<Self, StoreError> {
        let connect = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            // Connections that failed inside a transaction are closed, not returned; a ping
            // per acquire would cost a round trip per batch.
            .test_before_acquire(false)
            .connect(url);
        match tokio::time::timeout(options.connect_timeout, connect).await {
            Ok(Ok(pool)) => Ok(Self::with_statements(pool, TablePrefix::default(), options)),
            Ok(Err(sqlx::Error::Configuration(e))) => {
                Err(StoreError::Config(format!("invalid postgres url: {e}")))
            }
            Ok(Err(e)) => Err(db_error(e)),
            Err(_) => Err(StoreError::Unavailable(
                format!(
                    "no connection to postgres within {:?}",
                    options.connect_timeout
                )
                .into(),
            )),
        }
    }

    /// Creates or upgrades the schema: applies, in one transaction, every schema version not yet
    /// recorded in `<prefix>migrations`. Safe to call on every start, from every instance at
    /// once: a transaction-scoped advisory lock lets one instance migrate at a time.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the database cannot be written; nothing is applied then.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
            .bind(MIGRATE_LOCK_CLASS)
            .bind(self.lock_key)
            .execute(&mut *tx)
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
        for m in POSTGRES_MIGRATIONS
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
                .bind(floor_time(OffsetDateTime::now_utc()))
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)
    }

    /// The pool the store runs on.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The table prefix.
    pub fn prefix(&self) -> &TablePrefix {
        &self.sql.prefix
    }

    /// A connection for one write transaction.
    async fn conn(&self) -> Result<PoolConnection<Postgres>, sqlx::Error> {
        self.pool.acquire().await
    }

    /// Writes `events` as one batch (see [`write::apply_batch`]), trying it `attempts` times at
    /// most, each within the statement timeout.
    async fn write(
        &self,
        events: &[StatusEvent],
        attempts: usize,
    ) -> Result<write::BatchOutcome, StoreError> {
        retrying(self, attempts, |mut conn| async move {
            let lock_timeout = setting_ms(self.options.lock_timeout).to_string();
            let write = write::apply_batch(&self.writes, &lock_timeout, &mut conn, events);
            // The write runs outside a transaction, so the store bounds it itself: on time out
            // its connection is closed (`retrying` closes a connection that failed). A zero
            // timeout is off.
            let limit = match self.options.statement_timeout {
                Duration::ZERO => Duration::MAX,
                limit => limit,
            };
            let r = match tokio::time::timeout(limit, write).await {
                Ok(r) => r.map(Some),
                Err(_) => Err(sqlx::Error::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "a batch write took more than the statement timeout ({:?})",
                        self.options.statement_timeout
                    ),
                ))),
            };
            (conn, r)
        })
        .await
    }

    /// Writes `events` one at a time, each as a batch of one, for a batch that lost to other
    /// writers on every try. A batch fails whole when a message it meant to create was created
    /// by another session first (or, with two events for one message, when one of its rows
    /// changed after it read them), and under enough contention (many instances receiving
    /// callbacks for the same new messages) it could lose on every try. One event at a time
    /// cannot starve so: a lone event's statement locks the row it finds, so it can only lose
    /// the race to create its message, and only once. The events before a failure stay
    /// written, which is harmless: applying an event again changes nothing.
    async fn write_one_by_one(
        &self,
        events: &[StatusEvent],
    ) -> Result<write::BatchOutcome, StoreError> {
        tracing::debug!(
            events = events.len(),
            "a batch lost to other writers {BATCH_ATTEMPTS} times: writing its events one at a time"
        );
        let mut applied = Vec::with_capacity(events.len());
        let mut head = None;
        for event in events {
            match self.write(std::slice::from_ref(event), MAX_ATTEMPTS).await {
                Ok((one, written)) => {
                    applied.extend(one);
                    head = head.max(written);
                }
                Err(e) => {
                    if head.is_some() {
                        self.wake.bump();
                    }
                    return Err(e);
                }
            }
        }
        Ok((applied, head))
    }
}

/// Runs `attempt` until it neither loses a creation race (`Ok(None)`) nor fails with a
/// deadlock or serialization failure, at most `attempts` times. Each attempt runs on a
/// connection of its own; one that failed is closed, not returned to the pool, so that the next
/// write starts clean.
async fn retrying<T, F, Fut>(
    store: &PostgresStore,
    attempts: usize,
    mut attempt: F,
) -> Result<T, StoreError>
where
    F: FnMut(PoolConnection<Postgres>) -> Fut,
    Fut: Future<Output = (PoolConnection<Postgres>, Result<Option<T>, sqlx::Error>)>,
{
    let mut last = None;
    for _ in 0..attempts {
        let conn = store.conn().await.map_err(db_error)?;
        let (mut conn, result) = attempt(conn).await;
        if result.is_err() {
            conn.close_on_drop();
        }
        match result {
            Ok(Some(done)) => return Ok(done),
            Ok(None) => {}
            Err(e) if is_retryable(&e) => last = Some(e),
            Err(e) => return Err(db_error(e)),
        }
    }
    Err(match last {
        Some(e) => db_error(e),
        None => StoreError::Unavailable(
            format!("write lost the race to create its message {attempts} times").into(),
        ),
    })
}

/// Reads the current status of `sid` and locks its row until the transaction ends.
async fn lock_status(
    conn: &mut PgConnection,
    select: &Arc<str>,
    sid: &str,
) -> Result<Option<MessageStatus>, sqlx::Error> {
    let status: Option<String> = sqlx::query_scalar(AssertSqlSafe(select.clone()))
        .bind(sid)
        .fetch_optional(conn)
        .await?;
    Ok(status.map(MessageStatus::from))
}

/// The current status after the upsert, or `None` when the result cannot be trusted: the row
/// did not exist when it was locked, yet this transaction did not insert it (another one
/// created the message in between). The caller then retries on the existing row.
fn settle(
    previous: &Option<MessageStatus>,
    row: Option<PgRow>,
) -> Result<Option<MessageStatus>, sqlx::Error> {
    let returned = match &row {
        Some(r) => Some((
            r.try_get::<String, _>("status")?,
            r.try_get::<bool, _>("inserted")?,
        )),
        None => None,
    };
    Ok(match (previous, returned) {
        (None, Some((status, true))) => Some(MessageStatus::from(status)),
        (None, _) => None,
        (Some(_), Some((status, _))) => Some(MessageStatus::from(status)),
        // The locked row did not change: the incoming status does not rank above it.
        (Some(prev), None) => Some(prev.clone()),
    })
}

/// Whether `retrying` gave up on `e` because every attempt lost to another writer.
fn lost_races(e: &StoreError) -> bool {
    match e {
        StoreError::Unavailable(source) => source
            .downcast_ref::<sqlx::Error>()
            .is_some_and(is_retryable),
        _ => false,
    }
}

fn is_retryable(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == "40001" || c == "40P01")
}

/// PostgreSQL text cannot hold U+0000; it is stored as U+FFFD.
fn clean(s: &str) -> Cow<'_, str> {
    if s.contains('\0') {
        Cow::Owned(s.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(s)
    }
}

fn clean_status(s: &MessageStatus) -> MessageStatus {
    match s {
        MessageStatus::Unknown(name) if name.contains('\0') => {
            MessageStatus::from(name.replace('\0', "\u{FFFD}"))
        }
        other => other.clone(),
    }
}

/// A stable 32-bit hash of the prefix (FNV-1a), the second key of the store's advisory locks.
fn fnv1a(s: &str) -> i32 {
    let h = s.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    i32::from_ne_bytes(h.to_ne_bytes())
}

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01).
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// A `timestamptz` column, read from its binary value (microseconds since 2000-01-01). A time
/// outside `time`'s years ±9999 (`infinity`, a row edited by hand) is then a decode error:
/// sqlx's own decoding panics on it.
fn time_column(row: &PgRow, column: &'static str) -> Result<OffsetDateTime, sqlx::Error> {
    if row.try_get_raw(column)?.format() != PgValueFormat::Binary {
        return row.try_get(column);
    }
    let us: i64 = row.try_get_unchecked(column)?;
    // Saturated, `infinity` (i64::MAX) stays far outside the range and is refused below.
    micros_time(us.saturating_add(PG_EPOCH_MICROS), column)
}

/// Microseconds since the Unix epoch, read from `column`, as a time; a decode error outside
/// the years ±9999.
pub(super) fn micros_time(
    micros: i64,
    column: &'static str,
) -> Result<OffsetDateTime, sqlx::Error> {
    from_micros(micros, column).map_err(|e| sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: Box::new(e),
    })
}

fn record_row(row: &PgRow) -> Result<MessageRecord, StoreError> {
    let raw: RecordRow<OffsetDateTime> = (|| {
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
            created_at: time_column(row, "created_at")?,
            updated_at: time_column(row, "updated_at")?,
        })
    })()
    .map_err(db_error)?;
    raw.into_record()
}

fn event_row(row: &PgRow) -> Result<HistoryEntry, StoreError> {
    (|| {
        Ok::<_, sqlx::Error>(EventRow {
            status: row.try_get("status")?,
            error_code: row.try_get("error_code")?,
            received_at: time_column(row, "received_at")?,
            source: row.try_get("source")?,
            idempotency_token: row.try_get("idempotency_token")?,
            raw: row.try_get("raw")?,
        })
    })()
    .map_err(db_error)?
    .into_entry()
}

#[async_trait]
impl StatusStore for PostgresStore {
    async fn record_sent(&self, sent: &SentMessage) -> Result<Applied, StoreError> {
        let (applied, head) = retrying(self, MAX_ATTEMPTS, |mut conn| async move {
            let r = write::record_sent(&self.sql, &self.writes, &self.begin, &mut conn, sent).await;
            (conn, r)
        })
        .await?;
        if head.is_some() {
            self.wake.bump();
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
        let attempts = if events.len() == 1 {
            MAX_ATTEMPTS
        } else {
            BATCH_ATTEMPTS
        };
        let (applied, head) = match self.write(events, attempts).await {
            Err(e) if events.len() > 1 && lost_races(&e) => self.write_one_by_one(events).await?,
            written => written?,
        };
        if head.is_some() {
            self.wake.bump();
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
            .bind(ceil_time(older_than))
            .bind(i64::from(limit))
            .bind(ceil_time(created_from))
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
        let at = from_micros(at, "after").map_err(|_| {
            StoreError::Config("the page's key is outside the times a store can hold".into())
        })?;
        sqlx::query(AssertSqlSafe(self.sql.pending_after.clone()))
            .bind(ceil_time(older_than))
            .bind(i64::from(limit))
            .bind(ceil_time(created_from))
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
        let statuses: HashSet<String> = query
            .statuses
            .iter()
            .map(|s| clean_status(s).as_str().to_owned())
            .collect();
        if statuses.len() > MAX_LIST_STATUSES {
            return Err(StoreError::Config(format!(
                "a list query may filter on at most {MAX_LIST_STATUSES} statuses"
            )));
        }
        let size = query.page_size() as usize;
        let mut qb = QueryBuilder::<Postgres>::new(self.sql.list_head.as_str());
        if let Some(to) = &query.to {
            qb.push(" AND to_addr = ").push_bind(clean(to).into_owned());
        }
        if !statuses.is_empty() {
            qb.push(" AND status IN (");
            let mut list = qb.separated(", ");
            for s in statuses {
                list.push_bind(s);
            }
            qb.push(")");
        }
        if let Some(from) = query.created_from {
            qb.push(" AND created_at >= ").push_bind(ceil_time(from));
        }
        if let Some(until) = query.created_until {
            qb.push(" AND created_at < ").push_bind(ceil_time(until));
        }
        if let Some(after) = &query.after {
            let at = ceil_time(after.created_at);
            if at == floor_time(after.created_at) {
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

    async fn try_reconcile_lock(&self) -> Result<Option<ReconcileLock>, StoreError> {
        self.lease.try_take(&self.pool).await
    }

    fn feed(&self) -> Option<&dyn FeedStore> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_is_replaced_for_postgres_text() {
        assert_eq!(clean("a\0b"), "a\u{FFFD}b");
        assert!(matches!(clean("ab"), Cow::Borrowed("ab")));
        assert_eq!(
            clean_status(&MessageStatus::parse("x\0")),
            MessageStatus::Unknown("x\u{FFFD}".into())
        );
    }

    #[test]
    fn lock_keys_differ_by_prefix() {
        assert_ne!(fnv1a("twilio_"), fnv1a("twilio2_"));
        assert_eq!(fnv1a("twilio_"), fnv1a("twilio_"));
    }
}
