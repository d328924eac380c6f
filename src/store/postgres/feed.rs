//! The change feed of a `PostgresStore`: reads, cursors and dead letters, and wake-ups from
//! every instance through `LISTEN/NOTIFY`.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgListener, PgPool, PgRow};
use sqlx::{AssertSqlSafe, Row};
use time::OffsetDateTime;
use tokio::sync::watch;

use super::PostgresStore;
use crate::feed::{DeadLetter, FeedEntry, FeedStore};
use crate::store::StoreError;
use crate::store::sql::{FeedRow, db_error, floor_time, from_position, to_position};

/// Wake-ups of one store (shared by its clones): a counter bumped on every notification from
/// any instance and after every local commit with changes; a listener task started with the
/// first waiter.
#[derive(Debug)]
pub(super) struct PgWake {
    bumps: Arc<watch::Sender<u64>>,
    listener: Mutex<bool>,
}

impl PgWake {
    pub(super) fn new() -> Self {
        Self {
            bumps: Arc::new(watch::Sender::new(0)),
            listener: Mutex::new(false),
        }
    }

    /// Wakes local waiters (this instance just committed changes).
    pub(super) fn bump(&self) {
        self.bumps.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Starts the listener task once (inside a runtime).
    fn ensure_listener(&self, pool: &PgPool, channel: &str) {
        let mut started = self.listener.lock().unwrap_or_else(|p| p.into_inner());
        if *started {
            return;
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(listen(
                pool.clone(),
                channel.to_owned(),
                Arc::downgrade(&self.bumps),
            ));
            *started = true;
        }
    }
}

/// Listens on `channel` until the store is gone, bumping the counter on each notification and
/// on each reconnection (notifications may have been missed while disconnected).
async fn listen(pool: PgPool, channel: String, bumps: Weak<watch::Sender<u64>>) {
    let mut wait = Duration::from_millis(100);
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(e) => {
                tracing::debug!(error = %e, "change feed: cannot listen yet");
                if bumps.upgrade().is_none() {
                    return;
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        if let Err(e) = listener.listen(&channel).await {
            tracing::debug!(error = %e, "change feed: LISTEN failed");
            tokio::time::sleep(wait).await;
            continue;
        }
        wait = Duration::from_millis(100);
        loop {
            let Some(tx) = bumps.upgrade() else { return };
            tx.send_modify(|n| *n = n.wrapping_add(1));
            drop(tx);
            // Check now and then whether the store is still there.
            match tokio::time::timeout(Duration::from_secs(30), listener.try_recv()).await {
                Ok(Ok(Some(_))) | Err(_) => {}
                // Connection lost: the next try_recv reconnects (and we bump, above).
                Ok(Ok(None)) => {}
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "change feed: listener failed; reconnecting");
                    break;
                }
            }
        }
    }
}

fn feed_row(row: &PgRow) -> Result<FeedEntry, StoreError> {
    (|| {
        Ok::<_, sqlx::Error>(FeedRow {
            position: row.try_get("position")?,
            sid: row.try_get("sid")?,
            previous: row.try_get("previous")?,
            current: row.try_get("current")?,
            error_code: row.try_get("error_code")?,
            source: row.try_get("source")?,
            at: row.try_get("at")?,
        })
    })()
    .map_err(db_error)?
    .into_entry()
}

fn dead_letter_row(row: &PgRow) -> Result<DeadLetter, StoreError> {
    let attempts: i32 = row.try_get("attempts").map_err(db_error)?;
    Ok(DeadLetter::new(
        row.try_get::<String, _>("consumer").map_err(db_error)?,
        feed_row(row)?,
        row.try_get::<String, _>("error").map_err(db_error)?,
        u32::try_from(attempts).unwrap_or(0),
        row.try_get("parked_at").map_err(db_error)?,
    ))
}

#[async_trait]
impl FeedStore for PostgresStore {
    async fn changes_after(&self, after: u64, limit: u32) -> Result<Vec<FeedEntry>, StoreError> {
        sqlx::query(AssertSqlSafe(self.sql.feed.after.clone()))
            .bind(from_position(after))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?
            .iter()
            .map(feed_row)
            .collect()
    }

    async fn head(&self) -> Result<u64, StoreError> {
        let head: i64 = sqlx::query_scalar(AssertSqlSafe(self.sql.feed.head.clone()))
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)?;
        to_position(head)
    }

    async fn cursor(&self, consumer: &str) -> Result<Option<u64>, StoreError> {
        let at: Option<i64> = sqlx::query_scalar(AssertSqlSafe(self.sql.feed.cursor.clone()))
            .bind(consumer)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?;
        at.map(to_position).transpose()
    }

    async fn advance(&self, consumer: &str, position: u64) -> Result<(), StoreError> {
        sqlx::query(AssertSqlSafe(self.sql.feed.advance.clone()))
            .bind(consumer)
            .bind(from_position(position))
            .bind(floor_time(OffsetDateTime::now_utc()))
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn park(&self, letter: &DeadLetter) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await.map_err(db_error)?;
        let result = async {
            let mut tx = sqlx::Connection::begin(&mut *conn).await?;
            sqlx::query(AssertSqlSafe(self.sql.feed.park.clone()))
                .bind(letter.consumer.as_str())
                .bind(from_position(letter.entry.position))
                .bind(letter.error.replace('\0', "\u{FFFD}"))
                .bind(i32::try_from(letter.attempts).unwrap_or(i32::MAX))
                .bind(floor_time(letter.parked_at))
                .execute(&mut *tx)
                .await?;
            sqlx::query(AssertSqlSafe(self.sql.feed.advance.clone()))
                .bind(letter.consumer.as_str())
                .bind(from_position(letter.entry.position))
                .bind(floor_time(OffsetDateTime::now_utc()))
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        }
        .await;
        if result.is_err() {
            conn.close_on_drop();
        }
        result.map_err(db_error)
    }

    async fn dead_letters(
        &self,
        consumer: &str,
        limit: u32,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        sqlx::query(AssertSqlSafe(self.sql.feed.dead_letters.clone()))
            .bind(consumer)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?
            .iter()
            .map(dead_letter_row)
            .collect()
    }

    async fn remove_dead_letter(&self, consumer: &str, position: u64) -> Result<bool, StoreError> {
        let done = sqlx::query(AssertSqlSafe(self.sql.feed.remove_dead_letter.clone()))
            .bind(consumer)
            .bind(from_position(position))
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(done.rows_affected() > 0)
    }

    async fn wait_for_change(&self, after: u64, timeout: Duration) {
        self.wake.ensure_listener(&self.pool, &self.writes.channel);
        let mut rx = self.wake.bumps.subscribe();
        // Anything committed before we subscribed is in the head.
        if self.head().await.is_ok_and(|h| h > after) {
            return;
        }
        let _ = tokio::time::timeout(timeout, rx.changed()).await;
    }
}
