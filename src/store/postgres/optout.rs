//! `PostgresStore` as an [`OptOutList`]: the `opt_outs` table, shared by every instance, and
//! `opt_out_keywords`, the incoming messages whose keyword it applied.

use async_trait::async_trait;
use sqlx::{AssertSqlSafe, Row as _};
use time::OffsetDateTime;

use super::PostgresStore;
use crate::inbound::{InboundMessage, OptOut};
use crate::optout::{OptOutError, OptOutList, OptOutSource, Suppression};
use crate::store::StoreError;
use crate::store::sql::db_error;

fn list_error(e: sqlx::Error) -> OptOutError {
    OptOutError(Box::new(db_error(e)))
}

impl PostgresStore {
    fn opt_out_table(&self) -> String {
        format!("{}opt_outs", self.sql.prefix.as_str())
    }
}

#[async_trait]
impl OptOutList for PostgresStore {
    async fn is_opted_out(&self, number: &str) -> Result<bool, OptOutError> {
        let sql = format!("SELECT 1 FROM {} WHERE number = $1", self.opt_out_table());
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(number)
            .fetch_optional(&self.pool)
            .await
            .map_err(list_error)?;
        Ok(row.is_some())
    }

    async fn opt_out(&self, number: &str, source: OptOutSource) -> Result<bool, OptOutError> {
        let sql = format!(
            "INSERT INTO {} (number, source, since) VALUES ($1, $2, $3) ON CONFLICT (number) DO NOTHING",
            self.opt_out_table()
        );
        let done = sqlx::query(AssertSqlSafe(sql))
            .bind(number)
            .bind(source.as_str())
            .bind(OffsetDateTime::now_utc())
            .execute(&self.pool)
            .await
            .map_err(list_error)?;
        Ok(done.rows_affected() > 0)
    }

    async fn opt_in(&self, number: &str) -> Result<bool, OptOutError> {
        let sql = format!("DELETE FROM {} WHERE number = $1", self.opt_out_table());
        let done = sqlx::query(AssertSqlSafe(sql))
            .bind(number)
            .execute(&self.pool)
            .await
            .map_err(list_error)?;
        Ok(done.rows_affected() > 0)
    }

    /// The message's SID and its change in one statement: a SID already applied changes
    /// nothing (two deliveries at once: the second waits for the first's row, then does nothing).
    async fn apply_inbound(&self, message: &InboundMessage) -> Result<Option<OptOut>, OptOutError> {
        let Some(keyword @ (OptOut::Stop | OptOut::Start)) = message.opt_out() else {
            return Ok(None);
        };
        let p = self.sql.prefix.as_str();
        // `c` runs whether or not the query reads it (PostgreSQL runs every data-modifying
        // `WITH` part), and changes something only when `k` remembered the SID.
        let change = if keyword == OptOut::Stop {
            format!(
                "INSERT INTO {p}opt_outs (number, source, since) SELECT $2, $3, $4 FROM k \
                 ON CONFLICT (number) DO NOTHING"
            )
        } else {
            format!("DELETE FROM {p}opt_outs WHERE number = $2 AND EXISTS (SELECT 1 FROM k)")
        };
        let sql = format!(
            "WITH k AS (INSERT INTO {p}opt_out_keywords (sid, applied_at) VALUES ($1, $4) \
             ON CONFLICT (sid) DO NOTHING RETURNING 1), \
             c AS ({change}) \
             SELECT count(*) AS first FROM k"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(message.sid.as_str())
            .bind(&message.from)
            .bind(OptOutSource::Keyword.as_str())
            .bind(OffsetDateTime::now_utc())
            .fetch_one(&self.pool)
            .await
            .map_err(list_error)?;
        let first: i64 = row.try_get("first").map_err(list_error)?;
        Ok((first > 0).then_some(keyword))
    }

    async fn opt_outs(&self) -> Result<Vec<Suppression>, OptOutError> {
        let sql = format!(
            "SELECT number, source, since FROM {} ORDER BY number",
            self.opt_out_table()
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await
            .map_err(list_error)?;
        rows.iter()
            .map(|row| {
                let corrupt = |what: &str| {
                    OptOutError(Box::new(StoreError::Corrupt(format!("opt_outs: {what}"))))
                };
                let number: String = row.try_get("number").map_err(|_| corrupt("number"))?;
                let source: String = row.try_get("source").map_err(|_| corrupt("source"))?;
                let since = super::time_column(row, "since").map_err(|_| corrupt("since"))?;
                let source = OptOutSource::parse(&source).ok_or_else(|| corrupt("source"))?;
                Ok(Suppression::new(number, source, since))
            })
            .collect()
    }
}
