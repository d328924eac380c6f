//! `SqliteStore` as an [`OptOutList`]: the `opt_outs` table, written through the one writer.

use async_trait::async_trait;
use sqlx::{AssertSqlSafe, Row as _};
use time::OffsetDateTime;

use super::SqliteStore;
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

    /// Runs one write statement with `number` (and optionally more binds) through the writer.
    async fn write_number(
        &self,
        statement: String,
        number: &str,
        source: Option<OptOutSource>,
    ) -> Result<bool, OptOutError> {
        let mut tx = self.writer.begin(&self.pool).await.map_err(list_error)?;
        let mut query = sqlx::query(AssertSqlSafe(statement)).bind(number);
        if let Some(source) = source {
            let now = OffsetDateTime::now_utc().unix_timestamp_nanos() as i64;
            query = query.bind(source.as_str()).bind(now);
        }
        let result = query
            .execute(tx.conn())
            .await
            .map(|done| done.rows_affected() > 0)
            .map_err(db_error);
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
        let sql = format!(
            "INSERT INTO {} (number, source, since) VALUES (?1, ?2, ?3) ON CONFLICT (number) DO NOTHING",
            self.opt_out_table()
        );
        self.write_number(sql, number, Some(source)).await
    }

    async fn opt_in(&self, number: &str) -> Result<bool, OptOutError> {
        let sql = format!("DELETE FROM {} WHERE number = ?1", self.opt_out_table());
        self.write_number(sql, number, None).await
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
