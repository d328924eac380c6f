//! `SqliteStore` as an [`OptOutList`]: the `opt_outs` table, written through the one writer, and
//! `opt_out_keywords`, the incoming messages whose keyword it applied.

use async_trait::async_trait;
use sqlx::{AssertSqlSafe, Row as _};
use time::OffsetDateTime;

use super::SqliteStore;
use super::writer::WriteTx;
use crate::inbound::{InboundMessage, OptOut};
use crate::optout::{OptOutError, OptOutList, OptOutSource, Suppression};
use crate::store::StoreError;
use crate::store::sql::db_error;

fn list_error(e: StoreError) -> OptOutError {
    OptOutError(Box::new(e))
}

impl SqliteStore {
    fn opt_out_table(&self) -> String {
        format!("{}opt_outs", self.sql.prefix.as_str())
    }

    /// `?1` number, `?2` source, `?3` since: suppresses the number unless it already is.
    fn opt_out_statement(&self) -> String {
        format!(
            "INSERT INTO {} (number, source, since) VALUES (?1, ?2, ?3) ON CONFLICT (number) DO NOTHING",
            self.opt_out_table()
        )
    }

    /// `?1` number: lifts its suppression.
    fn opt_in_statement(&self) -> String {
        format!("DELETE FROM {} WHERE number = ?1", self.opt_out_table())
    }

    /// Runs the statement that suppresses `number` (`source` given) or lifts its suppression
    /// (`None`) on the writer's transaction. Returns whether a row changed.
    async fn change_number(
        &self,
        tx: &mut WriteTx<'_>,
        number: &str,
        source: Option<OptOutSource>,
    ) -> Result<bool, StoreError> {
        let query = match source {
            Some(source) => {
                let now = OffsetDateTime::now_utc().unix_timestamp_nanos() as i64;
                sqlx::query(AssertSqlSafe(self.opt_out_statement()))
                    .bind(number)
                    .bind(source.as_str())
                    .bind(now)
            }
            None => sqlx::query(AssertSqlSafe(self.opt_in_statement())).bind(number),
        };
        let done = query.execute(tx.conn()).await.map_err(db_error)?;
        Ok(done.rows_affected() > 0)
    }

    /// Suppresses `number` or lifts its suppression, in a write of its own.
    async fn write_number(
        &self,
        number: &str,
        source: Option<OptOutSource>,
    ) -> Result<bool, OptOutError> {
        let mut tx = self.writer.begin(&self.pool).await.map_err(list_error)?;
        let result = self.change_number(&mut tx, number, source).await;
        tx.finish(result).await.map_err(list_error)
    }
}

#[async_trait]
impl OptOutList for SqliteStore {
    async fn is_opted_out(&self, number: &str) -> Result<bool, OptOutError> {
        let sql = format!("SELECT 1 FROM {} WHERE number = ?1", self.opt_out_table());
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(number)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| list_error(db_error(e)))?;
        Ok(row.is_some())
    }

    async fn opt_out(&self, number: &str, source: OptOutSource) -> Result<bool, OptOutError> {
        self.write_number(number, Some(source)).await
    }

    async fn opt_in(&self, number: &str) -> Result<bool, OptOutError> {
        self.write_number(number, None).await
    }

    /// The message's SID and its change in one write: a SID already applied changes nothing.
    async fn apply_inbound(&self, message: &InboundMessage) -> Result<Option<OptOut>, OptOutError> {
        let Some(keyword @ (OptOut::Stop | OptOut::Start)) = message.opt_out() else {
            return Ok(None);
        };
        let source = (keyword == OptOut::Stop).then_some(OptOutSource::Keyword);
        let remember = format!(
            "INSERT INTO {}opt_out_keywords (sid, applied_at) VALUES (?1, ?2) \
             ON CONFLICT (sid) DO NOTHING",
            self.sql.prefix.as_str()
        );
        let now = OffsetDateTime::now_utc().unix_timestamp_nanos() as i64;
        let mut tx = self.writer.begin(&self.pool).await.map_err(list_error)?;
        let result = async {
            let first = sqlx::query(AssertSqlSafe(remember))
                .bind(message.sid.as_str())
                .bind(now)
                .execute(tx.conn())
                .await
                .map_err(db_error)?
                .rows_affected()
                > 0;
            if !first {
                return Ok(None);
            }
            self.change_number(&mut tx, &message.from, source).await?;
            Ok(Some(keyword))
        }
        .await;
        tx.finish(result).await.map_err(list_error)
    }

    async fn opt_outs(&self) -> Result<Vec<Suppression>, OptOutError> {
        let sql = format!(
            "SELECT number, source, since FROM {} ORDER BY number",
            self.opt_out_table()
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| list_error(db_error(e)))?;
        rows.iter()
            .map(|row| {
                let corrupt =
                    |what: &str| list_error(StoreError::Corrupt(format!("opt_outs: {what}")));
                let number: String = row.try_get("number").map_err(|_| corrupt("number"))?;
                let source: String = row.try_get("source").map_err(|_| corrupt("source"))?;
                let since: i64 = row.try_get("since").map_err(|_| corrupt("since"))?;
                let source = OptOutSource::parse(&source).ok_or_else(|| corrupt("source"))?;
                let since = OffsetDateTime::from_unix_timestamp_nanos(i128::from(since))
                    .map_err(|_| corrupt("since"))?;
                Ok(Suppression::new(number, source, since))
            })
            .collect()
    }
}
