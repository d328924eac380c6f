//! The reconciliation lease of a `PostgresStore`: a row with an expiry, taken and renewed by
//! single autocommit statements, so that it works through connection poolers (PgBouncer in
//! transaction mode), where a session advisory lock would be released, or held, by whichever
//! client happens to share the server connection.

use std::time::Duration;

use sqlx::AssertSqlSafe;
use sqlx::postgres::PgPool;

use crate::store::sql::db_error;
use crate::store::{ReconcileLock, StoreError};

/// The lease's name in the `leases` table.
const RECONCILE: &str = "reconcile";

/// The lease statements, rendered for a prefix.
#[derive(Debug)]
pub(super) struct Lease {
    /// `$1` name, `$2` holder, `$3` ttl in ms → the holder when taken.
    take: String,
    /// `$1` name, `$2` holder, `$3` ttl in ms: renews when still held.
    renew: String,
    /// `$1` name, `$2` holder: gives it back.
    release: String,
    ttl: Duration,
}

impl Lease {
    pub(super) fn new(prefix: &str, ttl: Duration) -> Self {
        let p = prefix;
        let until = "clock_timestamp() + $3 * interval '1 millisecond'";
        Self {
            take: format!(
                "INSERT INTO {p}leases AS l (name, holder, expires_at) VALUES ($1, $2, {until}) \
                 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
                 expires_at = excluded.expires_at WHERE l.expires_at < clock_timestamp() \
                 RETURNING holder"
            ),
            renew: format!(
                "UPDATE {p}leases SET expires_at = {until} WHERE name = $1 AND holder = $2"
            ),
            release: format!("DELETE FROM {p}leases WHERE name = $1 AND holder = $2"),
            ttl,
        }
    }

    fn ttl_ms(&self) -> f64 {
        self.ttl.as_secs_f64() * 1000.0
    }

    /// Takes the reconciliation lease if it is free or expired; renews it in the background
    /// while the returned lock lives and releases it when the lock is dropped.
    pub(super) async fn try_take(
        &self,
        pool: &PgPool,
    ) -> Result<Option<ReconcileLock>, StoreError> {
        let holder = format!("{:032x}", fastrand::u128(..));
        let got: Option<String> = sqlx::query_scalar(AssertSqlSafe(self.take.clone()))
            .bind(RECONCILE)
            .bind(&holder)
            .bind(self.ttl_ms())
            .fetch_optional(pool)
            .await
            .map_err(db_error)?;
        if got.is_none() {
            return Ok(None);
        }
        let renew = tokio::spawn(renew_loop(
            pool.clone(),
            self.renew.clone(),
            holder.clone(),
            self.ttl,
        ));
        Ok(Some(ReconcileLock::new(Box::new(LeaseGuard {
            runtime: tokio::runtime::Handle::current(),
            pool: pool.clone(),
            release: self.release.clone(),
            holder,
            renew,
        }))))
    }
}

/// Renews the lease every third of its time to live until aborted.
async fn renew_loop(pool: PgPool, renew: String, holder: String, ttl: Duration) {
    let ms = ttl.as_secs_f64() * 1000.0;
    loop {
        tokio::time::sleep(ttl / 3).await;
        let renewed = sqlx::query(AssertSqlSafe(renew.clone()))
            .bind(RECONCILE)
            .bind(&holder)
            .bind(ms)
            .execute(&pool)
            .await;
        match renewed {
            Ok(r) if r.rows_affected() == 1 => {}
            Ok(_) => {
                tracing::warn!(
                    "reconciliation lease lost (expired); another instance may reconcile too"
                );
                return;
            }
            Err(e) => tracing::warn!(error = %e, "cannot renew the reconciliation lease"),
        }
    }
}

/// Held while a pass runs: stops renewing and releases the lease when dropped.
struct LeaseGuard {
    /// The runtime it was taken on, to release it from a drop on any thread.
    runtime: tokio::runtime::Handle,
    pool: PgPool,
    release: String,
    holder: String,
    renew: tokio::task::JoinHandle<()>,
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        self.renew.abort();
        let (pool, release, holder) = (
            self.pool.clone(),
            std::mem::take(&mut self.release),
            std::mem::take(&mut self.holder),
        );
        // If that runtime is gone, the lease simply expires.
        {
            self.runtime.spawn(async move {
                let released = sqlx::query(AssertSqlSafe(release))
                    .bind(RECONCILE)
                    .bind(holder)
                    .execute(&pool)
                    .await;
                if let Err(e) = released {
                    tracing::warn!(error = %e, "could not release the reconciliation lease; it will expire");
                }
            });
        }
    }
}
