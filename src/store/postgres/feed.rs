//! The change feed of a `PostgresStore`: reads, cursors and dead letters, and wake-ups from
//! every instance through `LISTEN/NOTIFY`.
//!
//! Positions come from a sequence, so transactions commit them out of order: while one holds
//! position 7 open, another may commit 8. A reader therefore hands out only positions it knows
//! are final. Every transaction that takes positions holds a shared advisory lock (the
//! [`Gaps::take`] call in its statement) from before it takes them to its end, after its rows
//! are visible. Reading after its cursor, a reader returns the run of consecutive positions
//! that follows the cursor; when the next position is missing and later ones are visible, it
//! notes which transactions hold the lock, waits until none of them does, and reads again up
//! to the highest position it had seen: each missing position below it was taken before that
//! read, so by a transaction that has ended since (committed, and now visible, or rolled back,
//! and missing for good). Writers never wait for each other or for readers.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgListener, PgPool, PgRow};
use sqlx::{AssertSqlSafe, Row};
use time::OffsetDateTime;
use tokio::sync::watch;

use super::PostgresStore;
use crate::feed::{ConsumerLease, DeadLetter, FeedEntry, FeedStore};
use crate::store::StoreError;
use crate::store::sql::{FeedRow, db_error, floor_time, from_position, to_position};

/// First key of the advisory lock of the transactions taking feed positions (the second is
/// the prefix's hash, as for the store's other locks).
const FEED_WRITER_LOCK_CLASS: i32 = 0x7477_6402;
/// How long a read waits for the transactions that may hold a missing position before it
/// returns nothing (the consumer reads again).
const GAP_WAIT: Duration = Duration::from_secs(5);

/// The statements of the feed writers' lock and of reads that meet a missing position.
#[derive(Debug)]
pub(super) struct Gaps {
    /// The call that takes the lock, shared, for the end of the transaction: writers put it in
    /// the statement that takes positions, before them.
    pub(super) take: String,
    /// → the virtual transaction ids of the transactions holding the lock now.
    holders: String,
    /// `$1` virtual transaction ids → how many of them still hold the lock.
    holding: String,
}

impl Gaps {
    /// The statements for the tables of the prefix whose hash is `key`.
    pub(super) fn new(key: i32) -> Self {
        let class = FEED_WRITER_LOCK_CLASS;
        // `pg_locks` shows the keys as unsigned `oid`s.
        let objid = u32::from_ne_bytes(key.to_ne_bytes());
        let held = format!(
            "FROM pg_locks WHERE locktype = 'advisory' AND classid = '{class}'::oid \
             AND objid = '{objid}'::oid AND objsubid = 2 \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        );
        Self {
            take: format!("pg_advisory_xact_lock_shared({class}, {key})"),
            holders: format!("SELECT COALESCE(array_agg(virtualtransaction), '{{}}') {held}"),
            holding: format!("SELECT count(*) {held} AND virtualtransaction = ANY($1)"),
        }
    }
}

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

impl PostgresStore {
    /// Up to `limit` feed rows above `after` and up to `up_to`, in position order.
    async fn read_feed(
        &self,
        after: u64,
        limit: u32,
        up_to: u64,
    ) -> Result<Vec<FeedEntry>, StoreError> {
        let rows = sqlx::query(AssertSqlSafe(self.sql.feed.after.clone()))
            .bind(from_position(after))
            .bind(i64::from(limit))
            .bind(from_position(up_to))
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        rows.iter().map(feed_row).collect()
    }

    /// Waits until every transaction holding the feed writers' lock now has ended; `false`
    /// when some still hold it after [`GAP_WAIT`].
    async fn writers_gone(&self) -> Result<bool, StoreError> {
        let holders: Vec<String> = sqlx::query_scalar(AssertSqlSafe(self.gaps.holders.clone()))
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)?;
        let (started, mut pause) = (tokio::time::Instant::now(), Duration::from_millis(1));
        while !holders.is_empty() {
            let holding: i64 = sqlx::query_scalar(AssertSqlSafe(self.gaps.holding.clone()))
                .bind(&holders)
                .fetch_one(&self.pool)
                .await
                .map_err(db_error)?;
            if holding == 0 {
                break;
            } else if started.elapsed() >= GAP_WAIT {
                return Ok(false);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(50));
        }
        Ok(true)
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
            at: super::time_column(row, "at")?,
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
        super::time_column(row, "parked_at").map_err(db_error)?,
    ))
}

#[async_trait]
impl FeedStore for PostgresStore {
    /// Only final positions: the consecutive ones after `after`; when the next is missing, every
    /// row up to the highest visible, once the transactions that may hold the missing ones
    /// have ended (see the module documentation). Nothing when they are still running after
    /// a few seconds.
    async fn changes_after(&self, after: u64, limit: u32) -> Result<Vec<FeedEntry>, StoreError> {
        let mut rows = self.read_feed(after, limit, u64::MAX).await?;
        let next = after.saturating_add(1);
        match rows.first() {
            None => Ok(rows),
            Some(first) if first.position == next => {
                let run = rows
                    .iter()
                    .zip(next..)
                    .take_while(|(e, p)| e.position == *p);
                rows.truncate(run.count());
                Ok(rows)
            }
            Some(_) => {
                let seen = rows.last().map_or(after, |e| e.position);
                if !self.writers_gone().await? {
                    return Ok(Vec::new());
                }
                self.read_feed(after, limit, seen).await
            }
        }
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

    async fn dead_letter(
        &self,
        consumer: &str,
        position: u64,
    ) -> Result<Option<DeadLetter>, StoreError> {
        sqlx::query(AssertSqlSafe(self.sql.feed.dead_letter.clone()))
            .bind(consumer)
            .bind(from_position(position))
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?
            .as_ref()
            .map(dead_letter_row)
            .transpose()
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

    /// A row of `<prefix>leases` named `feed:<consumer>`, shared by every instance: taken when
    /// free or expired, renewed every third of [`PostgresOptions::lease_ttl`](super::PostgresOptions)
    /// while held, lost when a renewal finds it taken or its expiry passes unrenewed.
    async fn lease_consumer(&self, consumer: &str) -> Result<Option<ConsumerLease>, StoreError> {
        self.lease.take_consumer(&self.pool, consumer).await
    }
}
