//! The leases of `PostgresStore`: a reconciliation lock is marked lost when another holder
//! takes its lease, or when its lease expires because renewals keep failing.

mod common;

use std::time::Duration;

use common::pg::{drop_tables, pool, random_prefix};
use twilio_delivery::store::sqlx::{self, AssertSqlSafe};
use twilio_delivery::store::{
    PostgresOptions, PostgresStore, ReconcileLock, StatusStore, TablePrefix,
};

/// A store on fresh tables whose leases last 1 s without renewal.
async fn store_with_short_leases() -> Option<(PostgresStore, TablePrefix)> {
    let prefix = random_prefix();
    let store = PostgresStore::new(pool().await?)
        .with_prefix(prefix.clone())
        .with_options(PostgresOptions::new().lease_ttl(Duration::from_secs(1)));
    store.migrate().await.unwrap();
    Some((store, prefix))
}

/// Waits up to 10 s (ten times the lease) for `lock` to be marked lost.
async fn wait_until_lost(lock: &ReconcileLock) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !lock.is_lost() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not lost within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Another holder takes the lease row: the next renewal finds it gone, and the lock is marked
/// lost; giving the lock back leaves the other holder's lease alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconciliation_lease_taken_by_another_is_lost() {
    let Some((store, prefix)) = store_with_short_leases().await else {
        return;
    };
    let lock = store.try_reconcile_lock().await.unwrap().expect("free");
    assert!(!lock.is_lost());
    let p = prefix.as_str();
    let taken = sqlx::query(AssertSqlSafe(format!(
        "UPDATE {p}leases SET holder = 'another' WHERE name = 'reconcile'"
    )))
    .execute(store.pool())
    .await
    .unwrap();
    assert_eq!(taken.rows_affected(), 1);

    wait_until_lost(&lock).await;
    drop(lock);
    assert!(
        store.try_reconcile_lock().await.unwrap().is_none(),
        "the other holder keeps it"
    );
    drop_tables(store.pool(), &prefix).await;
}

/// Renewals fail (the store's pool is closed, as when the database cannot be reached): the
/// lock is marked lost once the lease's expiry has passed without a renewal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconciliation_lease_that_cannot_be_renewed_is_lost() {
    let Some((store, prefix)) = store_with_short_leases().await else {
        return;
    };
    let lock = store.try_reconcile_lock().await.unwrap().expect("free");
    store.pool().close().await;

    wait_until_lost(&lock).await;
    drop(lock);
    let Some(other) = pool().await else { return };
    drop_tables(&other, &prefix).await;
}
