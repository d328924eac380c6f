//! The leases of a `PostgresStore` (the reconciliation lease, one per change-feed consumer): a
//! row with an expiry, taken and renewed by single autocommit statements, so that it works
//! through connection poolers (PgBouncer in transaction mode), where a session advisory lock
//! would be released, or held, by whichever client happens to share the server connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::AssertSqlSafe;
use sqlx::postgres::PgPool;
use tokio::time::Instant;

use crate::feed::{ConsumerLease, LeaseGuard};
use crate::store::sql::db_error;
use crate::store::{ReconcileLock, StoreError};

/// The reconciliation lease's name in the `leases` table.
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
    /// The statements for the tables of `prefix`, for leases that last `ttl` without renewal.
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

    /// Takes the reconciliation lease if it is free or expired (see [`take`](Self::take)).
    pub(super) async fn try_take(
        &self,
        pool: &PgPool,
    ) -> Result<Option<ReconcileLock>, StoreError> {
        let held = self.take(pool, RECONCILE).await?;
        Ok(held.map(|(guard, lost)| ReconcileLock::losable(Box::new(guard), lost)))
    }

    /// Takes the lease of the change-feed consumer `consumer` (named `feed:<consumer>`) if it
    /// is free or expired (see [`take`](Self::take)).
    pub(super) async fn take_consumer(
        &self,
        pool: &PgPool,
        consumer: &str,
    ) -> Result<Option<ConsumerLease>, StoreError> {
        let held = self.take(pool, &format!("feed:{consumer}")).await?;
        Ok(held.map(|(guard, lost)| ConsumerLease::losable(Box::new(guard), lost)))
    }

    /// Takes the lease `name` if it is free or expired. While the returned guard lives, the
    /// lease is renewed in the background; the flag is set when it is lost. Dropping the guard
    /// gives the lease back.
    async fn take(
        &self,
        pool: &PgPool,
        name: &str,
    ) -> Result<Option<(HeldLease, Arc<AtomicBool>)>, StoreError> {
        let holder = format!("{:032x}", fastrand::u128(..));
        let sent = Instant::now();
        let got: Option<String> = sqlx::query_scalar(AssertSqlSafe(self.take.clone()))
            .bind(name)
            .bind(&holder)
            .bind(ttl_ms(self.ttl))
            .fetch_optional(pool)
            .await
            .map_err(db_error)?;
        if got.is_none() {
            return Ok(None);
        }
        let lost = Arc::new(AtomicBool::new(false));
        let renew = tokio::spawn(renew_loop(
            Renewal {
                pool: pool.clone(),
                renew: self.renew.clone(),
                name: name.to_owned(),
                holder: holder.clone(),
                ttl: self.ttl,
            },
            sent + self.ttl,
            lost.clone(),
        ));
        let held = HeldLease {
            runtime: tokio::runtime::Handle::current(),
            pool: pool.clone(),
            release: self.release.clone(),
            name: name.to_owned(),
            holder,
            renew,
        };
        Ok(Some((held, lost)))
    }
}

/// The time to live in milliseconds, as the statements take it.
fn ttl_ms(ttl: Duration) -> f64 {
    ttl.as_secs_f64() * 1000.0
}

/// What renewing one held lease needs.
struct Renewal {
    pool: PgPool,
    renew: String,
    name: String,
    holder: String,
    ttl: Duration,
}

/// Renews the lease every third of its time to live until aborted, and a failed renewal again
/// every tenth. Sets `lost` and stops when a renewal finds the lease taken or removed, or when
/// the lease's expiry passes without a renewal (`expires` is measured from before the statement
/// that set it, so it is never later than the database's).
async fn renew_loop(lease: Renewal, mut expires: Instant, lost: Arc<AtomicBool>) {
    let name = lease.name.as_str();
    let mut wait = lease.ttl / 3;
    loop {
        tokio::time::sleep_until((Instant::now() + wait).min(expires)).await;
        let sent = Instant::now();
        if sent >= expires {
            tracing::warn!(
                lease = name,
                "lease lost: it expired before it could be renewed"
            );
            break;
        }
        let renewed = sqlx::query(AssertSqlSafe(lease.renew.clone()))
            .bind(name)
            .bind(&lease.holder)
            .bind(ttl_ms(lease.ttl))
            .execute(&lease.pool);
        match tokio::time::timeout_at(expires, renewed).await {
            Ok(Ok(r)) if r.rows_affected() == 1 => {
                expires = sent + lease.ttl;
                wait = lease.ttl / 3;
            }
            Ok(Ok(_)) => {
                tracing::warn!(
                    lease = name,
                    "lease lost: another holder took it after it expired"
                );
                break;
            }
            Ok(Err(e)) => {
                tracing::warn!(lease = name, error = %e, "cannot renew a lease; trying again");
                wait = lease.ttl / 10;
            }
            Err(_) => {
                tracing::warn!(
                    lease = name,
                    "lease lost: it expired before it could be renewed"
                );
                break;
            }
        }
    }
    lost.store(true, Ordering::Release);
}

/// A lease taken by this store: stops renewing and gives it back when released or dropped.
#[derive(Debug)]
struct HeldLease {
    /// The runtime it was taken on, to give it back from a drop on any thread.
    runtime: tokio::runtime::Handle,
    pool: PgPool,
    release: String,
    name: String,
    /// Empty once given back.
    holder: String,
    renew: tokio::task::JoinHandle<()>,
}

impl HeldLease {
    /// Gives the lease back (once): the statement, to run.
    fn give_back(&mut self) -> Option<impl Future<Output = ()> + Send + 'static> {
        self.renew.abort();
        if self.holder.is_empty() {
            return None;
        }
        let (pool, release, name, holder) = (
            self.pool.clone(),
            std::mem::take(&mut self.release),
            std::mem::take(&mut self.name),
            std::mem::take(&mut self.holder),
        );
        Some(async move {
            let released = sqlx::query(AssertSqlSafe(release))
                .bind(&name)
                .bind(holder)
                .execute(&pool)
                .await;
            if let Err(e) = released {
                tracing::warn!(lease = name, error = %e, "could not give a lease back; it will expire");
            }
        })
    }
}

#[async_trait]
impl LeaseGuard for HeldLease {
    async fn release(mut self: Box<Self>) {
        if let Some(release) = self.give_back() {
            release.await;
        }
    }
}

impl Drop for HeldLease {
    fn drop(&mut self) {
        // If that runtime is gone, the lease simply expires.
        if let Some(release) = self.give_back() {
            self.runtime.spawn(release);
        }
    }
}
