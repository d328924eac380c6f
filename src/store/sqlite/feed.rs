//! The change feed of an `SqliteStore`: reads through the pool, cursor and dead-letter writes
//! through the one writer, wake-ups in process.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::SqliteRow;
use sqlx::{AssertSqlSafe, Row};
use time::OffsetDateTime;

use super::SqliteStore;
use crate::feed::{ConsumerLease, DeadLetter, FeedEntry, FeedStore};
use crate::store::StoreError;
use crate::store::sql::{FeedRow, db_error, from_micros, from_position, micros_floor, to_position};

fn feed_row(row: &SqliteRow) -> Result<FeedEntry, StoreError> {
    let at: i64 = row.try_get("at").map_err(db_error)?;
    (|| {
        Ok::<_, sqlx::Error>(FeedRow {
            position: row.try_get("position")?,
            sid: row.try_get("sid")?,
            previous: row.try_get("previous")?,
            current: row.try_get("current")?,
            error_code: row.try_get("error_code")?,
            source: row.try_get("source")?,
            at: OffsetDateTime::UNIX_EPOCH,
        })
    })()
    .map_err(db_error)
    .and_then(|r| {
        Ok(FeedRow {
            at: from_micros(at, "at")?,
            ..r
        })
    })?
    .into_entry()
}

fn dead_letter_row(row: &SqliteRow) -> Result<DeadLetter, StoreError> {
    let entry = feed_row(row)?;
    let parked_at: i64 = row.try_get("parked_at").map_err(db_error)?;
    let attempts: i64 = row.try_get("attempts").map_err(db_error)?;
    Ok(DeadLetter::new(
        row.try_get::<String, _>("consumer").map_err(db_error)?,
        entry,
        row.try_get::<String, _>("error").map_err(db_error)?,
        u32::try_from(attempts).unwrap_or(u32::MAX),
        from_micros(parked_at, "parked_at")?,
    ))
}

#[async_trait]
impl FeedStore for SqliteStore {
    async fn changes_after(&self, after: u64, limit: u32) -> Result<Vec<FeedEntry>, StoreError> {
        sqlx::query(AssertSqlSafe(self.sql.feed.after.clone()))
            .bind(from_position(after))
            .bind(i64::from(limit))
            .bind(i64::MAX)
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
        let mut tx = self.writer.begin(&self.pool).await?;
        let result = sqlx::query(AssertSqlSafe(self.sql.feed.advance.clone()))
            .bind(consumer)
            .bind(from_position(position))
            .bind(micros_floor(OffsetDateTime::now_utc()))
            .execute(tx.conn())
            .await
            .map(drop)
            .map_err(db_error);
        tx.finish(result).await
    }

    async fn park(&self, letter: &DeadLetter) -> Result<(), StoreError> {
        let mut tx = self.writer.begin(&self.pool).await?;
        let result = async {
            sqlx::query(AssertSqlSafe(self.sql.feed.park.clone()))
                .bind(letter.consumer.as_str())
                .bind(from_position(letter.entry.position))
                .bind(letter.error.as_str())
                .bind(i64::from(letter.attempts))
                .bind(micros_floor(letter.parked_at))
                .execute(tx.conn())
                .await
                .map_err(db_error)?;
            sqlx::query(AssertSqlSafe(self.sql.feed.advance.clone()))
                .bind(letter.consumer.as_str())
                .bind(from_position(letter.entry.position))
                .bind(micros_floor(OffsetDateTime::now_utc()))
                .execute(tx.conn())
                .await
                .map_err(db_error)?;
            Ok(())
        }
        .await;
        tx.finish(result).await
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
        let mut tx = self.writer.begin(&self.pool).await?;
        let result = sqlx::query(AssertSqlSafe(self.sql.feed.remove_dead_letter.clone()))
            .bind(consumer)
            .bind(from_position(position))
            .execute(tx.conn())
            .await
            .map(|r| r.rows_affected() > 0)
            .map_err(db_error);
        tx.finish(result).await
    }

    async fn wait_for_change(&self, after: u64, timeout: Duration) {
        self.wake.wait(after, timeout).await;
    }

    /// Held in this process, for the database file and the table prefix: two stores opened on
    /// one file share it.
    async fn lease_consumer(&self, consumer: &str) -> Result<Option<ConsumerLease>, StoreError> {
        let options = self.pool.connect_options();
        let file = options.get_filename();
        let file = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_owned());
        let scope = format!("sqlite:{}:{}", self.sql.prefix.as_str(), file.display());
        Ok(ConsumerLease::local(scope, consumer))
    }
}
