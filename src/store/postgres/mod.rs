//! `PostgresStore`: the store shared by many app instances (feature `postgres`).

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use sqlx::postgres::{PgConnection, PgPool, PgRow};
use sqlx::{AssertSqlSafe, Connection, Postgres, QueryBuilder, Row};
use time::OffsetDateTime;

use super::sql::{
    Dialect, EventRow, MAX_LIST_STATUSES, POSTGRES_MIGRATIONS, RecordRow, Statements, TablePrefix,
    ceil_time, db_error, floor_time, rank, raw_json,
};
use super::{ListQuery, Page, ReconcileLock, StatusStore, StoreError};
use crate::ids::MessageSid;
use crate::model::{Applied, HistoryEntry, MessageRecord, SentMessage, StatusEvent};
use crate::status::{MessageStatus, transition};

/// First key of the advisory lock `migrate` holds (the second is the prefix's hash).
const MIGRATE_LOCK_CLASS: i32 = 0x7477_6401;
/// First key of the advisory lock the reconciler holds (the second is the prefix's hash).
const RECONCILE_LOCK_CLASS: i32 = 0x7477_6402;
/// How often a write is tried when it loses a race or PostgreSQL aborts it as a deadlock or
/// serialization failure.
const MAX_ATTEMPTS: usize = 5;
/// Writes run in READ COMMITTED whatever the database's default, which the locking relies on.
const BEGIN: &str = "BEGIN ISOLATION LEVEL READ COMMITTED";

/// A store in a PostgreSQL database, shared by any number of app instances.
///
/// `apply` and `record_sent` lock the message's row (`SELECT ... FOR UPDATE`), run one
/// conditional upsert that only ever raises the status in the max-register order, and insert the
/// event with `ON CONFLICT DO NOTHING`, all in one transaction; when two instances create the
/// same message at once, the one that lost the race retries on the now-existing row. The
/// reconciliation lock is a session advisory lock, so of many instances one reconciles at a time.
///
/// Text cannot hold U+0000 in PostgreSQL: it is stored as U+FFFD in every column but the raw
/// pairs (kept as JSON, which escapes it). Times are kept to the microsecond.
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
    lock_key: i32,
}

impl PostgresStore {
    /// A store over `pool`, with the default table prefix `twilio_`.
    pub fn new(pool: PgPool) -> Self {
        Self::with_statements(pool, TablePrefix::default())
    }

    fn with_statements(pool: PgPool, prefix: TablePrefix) -> Self {
        Self {
            pool,
            lock_key: fnv1a(prefix.as_str()),
            sql: Arc::new(Statements::new(prefix, Dialect::Postgres)),
        }
    }

    /// The same store with its tables named `<prefix>messages`, `<prefix>events` and
    /// `<prefix>migrations` (and its advisory locks keyed by the prefix).
    pub fn with_prefix(self, prefix: TablePrefix) -> Self {
        Self::with_statements(self.pool, prefix)
    }

    /// Connects a pool with sqlx's defaults to `url` (`postgres://user:pass@host/db`).
    ///
    /// # Errors
    /// [`StoreError::Config`] when the URL is invalid, [`StoreError::Unavailable`] when the
    /// server cannot be reached.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        match PgPool::connect(url).await {
            Ok(pool) => Ok(Self::new(pool)),
            Err(sqlx::Error::Configuration(e)) => {
                Err(StoreError::Config(format!("invalid postgres url: {e}")))
            }
            Err(e) => Err(db_error(e)),
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

    /// Runs `attempt` until it neither loses a creation race (`Ok(None)`) nor fails with a
    /// deadlock or serialization failure, at most [`MAX_ATTEMPTS`] times.
    async fn retrying<F, Fut>(&self, mut attempt: F) -> Result<Applied, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Option<Applied>, sqlx::Error>>,
    {
        let mut last = None;
        for _ in 0..MAX_ATTEMPTS {
            match attempt().await {
                Ok(Some(applied)) => return Ok(applied),
                Ok(None) => {}
                Err(e) if is_retryable(&e) => last = Some(e),
                Err(e) => return Err(db_error(e)),
            }
        }
        Err(match last {
            Some(e) => db_error(e),
            None => StoreError::Unavailable(
                format!("write lost the race to create its message {MAX_ATTEMPTS} times").into(),
            ),
        })
    }

    async fn try_record_sent(&self, sent: &SentMessage) -> Result<Option<Applied>, sqlx::Error> {
        let sql = &self.sql;
        let status = clean_status(&sent.status);
        let mut tx = self.pool.begin_with(BEGIN).await?;
        let previous = lock_status(&mut tx, &sql.select_status, sent.sid.as_str()).await?;
        let row = sqlx::query(AssertSqlSafe(sql.upsert_sent.clone()))
            .bind(sent.sid.as_str())
            .bind(sent.account_sid.as_ref().map(|s| s.as_str()))
            .bind(clean(&sent.to))
            .bind(sent.from.as_deref().map(clean))
            .bind(sent.messaging_service_sid.as_ref().map(|s| s.as_str()))
            .bind(sent.body.as_deref().map(clean))
            .bind(sent.num_segments.map(i64::from))
            .bind(status.as_str())
            .bind(rank(&status))
            .bind(floor_time(sent.created_at))
            .bind(floor_time(OffsetDateTime::now_utc()))
            .fetch_optional(&mut *tx)
            .await?;
        let Some(current) = settle(&previous, row)? else {
            tx.rollback().await?;
            return Ok(None);
        };
        tx.commit().await?;
        Ok(Some(Applied {
            outcome: transition(previous.as_ref(), &status),
            previous,
            current,
            new_event: false,
        }))
    }

    async fn try_apply(&self, event: &StatusEvent) -> Result<Option<Applied>, sqlx::Error> {
        let sql = &self.sql;
        let status = clean_status(&event.status);
        let mut tx = self.pool.begin_with(BEGIN).await?;
        let previous = lock_status(&mut tx, &sql.select_status, event.sid.as_str()).await?;
        let row = sqlx::query(AssertSqlSafe(sql.upsert_event.clone()))
            .bind(event.sid.as_str())
            .bind(event.account_sid.as_ref().map(|s| s.as_str()))
            .bind(event.to.as_deref().map(clean))
            .bind(event.from.as_deref().map(clean))
            .bind(event.messaging_service_sid.as_ref().map(|s| s.as_str()))
            .bind(status.as_str())
            .bind(rank(&status))
            .bind(event.error_code.map(i64::from))
            .bind(event.error_message.as_deref().map(clean))
            .bind(floor_time(event.received_at))
            .bind(floor_time(OffsetDateTime::now_utc()))
            .fetch_optional(&mut *tx)
            .await?;
        let Some(current) = settle(&previous, row)? else {
            tx.rollback().await?;
            return Ok(None);
        };
        let inserted: Option<i64> = sqlx::query_scalar(AssertSqlSafe(sql.insert_event.clone()))
            .bind(event.sid.as_str())
            .bind(status.as_str())
            .bind(event.error_code.map(i64::from))
            .bind(floor_time(event.received_at))
            .bind(event.source.as_str())
            .bind(event.idempotency_token.as_deref().map(clean))
            .bind(raw_json(&event.raw))
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(Applied {
            outcome: transition(previous.as_ref(), &status),
            previous,
            current,
            new_event: inserted.is_some(),
        }))
    }
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
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
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
            received_at: row.try_get("received_at")?,
            source: row.try_get("source")?,
            idempotency_token: row.try_get("idempotency_token")?,
            raw: row.try_get("raw")?,
        })
    })()
    .map_err(db_error)?
    .into_entry()
}

/// Holds the connection that owns the reconciliation advisory lock.
struct AdvisoryLockGuard {
    conn: Mutex<Option<PgConnection>>,
    key: i32,
}

impl Drop for AdvisoryLockGuard {
    fn drop(&mut self) {
        let conn = match self.conn.get_mut() {
            Ok(slot) => slot.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        let Some(mut conn) = conn else { return };
        let key = self.key;
        // Unlock and close politely on the runtime; without one, dropping the connection closes
        // its socket, which ends the session and so releases the lock as well.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let unlocked = sqlx::query("SELECT pg_advisory_unlock($1, $2)")
                    .bind(RECONCILE_LOCK_CLASS)
                    .bind(key)
                    .execute(&mut conn)
                    .await;
                if let Err(e) = unlocked {
                    tracing::warn!(error = %e, "could not release the reconciliation lock; closing its connection");
                }
                let _ = conn.close().await;
            });
        }
    }
}

#[async_trait]
impl StatusStore for PostgresStore {
    async fn record_sent(&self, sent: &SentMessage) -> Result<Applied, StoreError> {
        self.retrying(|| self.try_record_sent(sent)).await
    }

    async fn apply(&self, event: &StatusEvent) -> Result<Applied, StoreError> {
        self.retrying(|| self.try_apply(event)).await
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
        // A connection of its own, outside the pool: the lock lives as long as its session.
        let mut conn = PgConnection::connect_with(&self.pool.connect_options())
            .await
            .map_err(db_error)?;
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, $2)")
            .bind(RECONCILE_LOCK_CLASS)
            .bind(self.lock_key)
            .fetch_one(&mut conn)
            .await
            .map_err(db_error)?;
        if !got {
            let _ = conn.close().await;
            return Ok(None);
        }
        Ok(Some(ReconcileLock::new(Box::new(AdvisoryLockGuard {
            conn: Mutex::new(Some(conn)),
            key: self.lock_key,
        }))))
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
