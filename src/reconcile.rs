//! `Reconciler`: repairs missed status callbacks by polling the API.
//!
//! Twilio does not retry a callback that got a 5xx or timed out unless told to, and callbacks
//! do go missing. The reconciler periodically takes the messages whose status is not final
//! after a configurable age, up to a maximum age, a batch at a time, each pass going on through
//! that window where the last one stopped ([`StatusStore::pending_page`]); it fetches each from
//! the API and applies the result as an event marked [`EventSource::Reconciler`]. The
//! max-register rule makes this safe to run at any time, alongside the webhook, in any number of
//! app instances; with a shared store (PostgreSQL) only one instance runs a pass at a time
//! ([`StatusStore::try_reconcile_lock`]), and a pass whose lock is lost starts no more fetches.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt as _;
use time::OffsetDateTime;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::client::Clients;
use crate::error::Error;
use crate::ids::MessageSid;
use crate::metrics;
use crate::model::{EventSource, MessageRecord};
use crate::notify::{Notifier, StatusChange};
use crate::store::{StatusStore, StoreError};

/// What one reconciliation pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PassReport {
    /// The pass did not run: another instance holds the reconciliation lock.
    pub skipped_locked: bool,
    /// Messages fetched from the API.
    pub checked: usize,
    /// Messages whose current status changed.
    pub updated: usize,
    /// Messages the API no longer knows (deleted, or another account's): reported once, then
    /// left alone by this reconciler.
    pub not_found: usize,
    /// Fetches that failed (the messages are tried again next pass).
    pub errors: usize,
    /// The pass stopped early because the API asked to slow down (429).
    pub rate_limited: bool,
    /// Messages of an account the reconciler has no client for: reported once, then left
    /// alone by this reconciler (configure the account's client to repair them).
    pub unknown_account: usize,
    /// The pass stopped starting fetches because its lock was lost (a lease that could not be
    /// renewed): another instance may be reconciling.
    pub lock_lost: bool,
}

/// Why a [`Reconciler`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReconcilerConfigError {
    /// `min_age` is larger than `max_age`: no message could ever be polled.
    #[error("min_age must not be larger than max_age")]
    AgeWindow,
    /// `max_age` reaches before the earliest time this crate can represent.
    #[error("max_age is too large")]
    MaxAgeTooLarge,
    /// `interval` is zero: the reconciler would poll without pause.
    #[error("interval must not be zero")]
    ZeroInterval,
}

/// Why a pass could not run at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReconcileError {
    /// The store could not be read or locked.
    #[error("reconciliation pass failed: store error")]
    Store(#[from] StoreError),
}

/// Repairs missed status callbacks by polling the API. Build with [`Reconciler::builder`].
#[derive(Clone)]
pub struct Reconciler {
    clients: Clients,
    /// Messages not to fetch again, with their creation times: those of accounts without a
    /// client and those the API no longer knows. Forgotten once they leave the window.
    skip: Arc<Mutex<HashMap<MessageSid, OffsetDateTime>>>,
    /// The key of the last message the last pass took: the next pass goes on after it.
    cursor: Arc<Mutex<Option<Key>>>,
    store: Arc<dyn StatusStore>,
    notifier: Option<Notifier>,
    min_age: Duration,
    max_age: Duration,
    interval: Duration,
    max_backoff: Duration,
    batch_size: u32,
    concurrency: usize,
}

impl fmt::Debug for Reconciler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reconciler")
            .field("clients", &self.clients)
            .field("store", &self.store)
            .field("min_age", &self.min_age)
            .field("max_age", &self.max_age)
            .field("interval", &self.interval)
            .field("batch_size", &self.batch_size)
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Reconciler`].
#[derive(Debug)]
#[must_use]
pub struct ReconcilerBuilder {
    inner: Reconciler,
}

impl ReconcilerBuilder {
    /// Only messages at least this old are polled (default 15 minutes; Twilio suggests
    /// polling what is not final after a few hours at the latest).
    pub fn min_age(mut self, age: Duration) -> Self {
        self.inner.min_age = age;
        self
    }

    /// Messages older than this are no longer polled (default 3 days): a message still not
    /// final by then (a carrier that never sends a delivery receipt) would otherwise be fetched
    /// in every walk through the window forever.
    pub fn max_age(mut self, age: Duration) -> Self {
        self.inner.max_age = age;
        self
    }

    /// Time between passes when run periodically (default 5 minutes).
    pub fn interval(mut self, interval: Duration) -> Self {
        self.inner.interval = interval;
        self
    }

    /// Longest wait between passes after consecutive failing passes (default 1 hour).
    pub fn max_backoff(mut self, max: Duration) -> Self {
        self.inner.max_backoff = max;
        self
    }

    /// Messages polled per pass at most (default 200).
    pub fn batch_size(mut self, n: u32) -> Self {
        self.inner.batch_size = n.max(1);
        self
    }

    /// Fetches in flight at once (default 4).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.inner.concurrency = n.max(1);
        self
    }

    /// Publish every status change the reconciler makes.
    pub fn notifier(mut self, notifier: Notifier) -> Self {
        self.inner.notifier = Some(notifier);
        self
    }

    /// The reconciler.
    ///
    /// # Errors
    /// [`ReconcilerConfigError`] when `min_age > max_age`, `max_age` is too large to subtract
    /// from today's date, or `interval` is zero.
    pub fn build(self) -> Result<Reconciler, ReconcilerConfigError> {
        let r = &self.inner;
        if r.min_age > r.max_age {
            return Err(ReconcilerConfigError::AgeWindow);
        }
        if ago(OffsetDateTime::now_utc(), r.max_age).is_none() {
            return Err(ReconcilerConfigError::MaxAgeTooLarge);
        }
        if r.interval.is_zero() {
            return Err(ReconcilerConfigError::ZeroInterval);
        }
        Ok(self.inner)
    }
}

enum Fetched {
    Changed,
    Unchanged,
    NotFound,
    UnknownAccount,
    Failed { rate_limited: bool },
}

impl Reconciler {
    /// A reconciler that polls with `clients` (one [`Client`](crate::client::Client), or
    /// [`Clients`] for several accounts: each message is fetched through its own account's
    /// client) and repairs `store`.
    pub fn builder(clients: impl Into<Clients>, store: Arc<dyn StatusStore>) -> ReconcilerBuilder {
        ReconcilerBuilder {
            inner: Reconciler {
                clients: clients.into(),
                skip: Arc::default(),
                cursor: Arc::default(),
                store,
                notifier: None,
                min_age: Duration::from_secs(15 * 60),
                max_age: Duration::from_secs(3 * 24 * 60 * 60),
                interval: Duration::from_secs(5 * 60),
                max_backoff: Duration::from_secs(60 * 60),
                batch_size: 200,
                concurrency: 4,
            },
        }
    }

    /// Runs one pass now: lock, take the next pending messages, fetch and apply each.
    ///
    /// Passes walk the window (messages not final, between `max_age` and `min_age` old) in
    /// creation order, each going on where the last one stopped and starting over at the
    /// window's end, so every pending message is polled in turn however many of them never
    /// turn final (a carrier without delivery receipts, a message deleted at Twilio).
    ///
    /// # Errors
    /// [`ReconcileError::Store`] when the store cannot be locked or read. Failed fetches and
    /// failed writes of single messages are counted in the report instead.
    pub async fn run_once(&self) -> Result<PassReport, ReconcileError> {
        let Some(lock) = self.store.try_reconcile_lock().await? else {
            tracing::debug!("reconciliation pass skipped: another instance holds the lock");
            return Ok(PassReport {
                skipped_locked: true,
                ..PassReport::default()
            });
        };
        let now = OffsetDateTime::now_utc();
        let from = ago(now, self.max_age).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let until = ago(now, self.min_age).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let (pending, started_after) = self.next_batch(from, until).await?;
        let mut report = PassReport::default();
        let pending: Vec<MessageRecord> = {
            let mut skip = lock_or_recover(&self.skip);
            skip.retain(|_, created_at| *created_at >= from);
            pending
                .into_iter()
                .filter(|r| !skip.contains_key(&r.sid))
                .collect()
        };
        let stuck = pending.len();
        // A lost lock starts no more fetches; those in flight finish.
        let lock = &lock;
        let mut results = futures_util::stream::iter(pending)
            .take_while(|_| std::future::ready(!lock.is_lost()))
            .map(|record| self.fix(record))
            .buffer_unordered(self.concurrency);
        while let Some(result) = results.next().await {
            match result {
                Fetched::Changed => {
                    report.checked += 1;
                    report.updated += 1;
                }
                Fetched::Unchanged => report.checked += 1,
                Fetched::NotFound => {
                    report.not_found += 1;
                    metrics::reconciler_error("not_found");
                }
                Fetched::UnknownAccount => {
                    report.unknown_account += 1;
                    metrics::reconciler_error("unknown_account");
                }
                Fetched::Failed { rate_limited } => {
                    report.errors += 1;
                    metrics::reconciler_error(if rate_limited { "rate_limited" } else { "api" });
                    if rate_limited {
                        // Stop starting new fetches; in-flight ones are dropped with the stream.
                        report.rate_limited = true;
                        break;
                    }
                }
            }
        }
        drop(results);
        if lock.is_lost() {
            report.lock_lost = true;
            tracing::warn!("reconciliation pass stopped: its lock was lost");
        }
        if report.rate_limited || report.lock_lost {
            // Some of this batch were not fetched: the next pass takes it again.
            *lock_or_recover(&self.cursor) = started_after;
        }
        metrics::reconciler_pass(stuck, report.updated);
        tracing::info!(
            checked = report.checked,
            updated = report.updated,
            not_found = report.not_found,
            errors = report.errors,
            rate_limited = report.rate_limited,
            unknown_account = report.unknown_account,
            "reconciliation pass done"
        );
        Ok(report)
    }

    /// The pass's messages: up to a batch after the last pass's last one, and, when the window
    /// ends first, from the window's beginning up to where this walk began. Moves the cursor
    /// to the last message taken, or to the beginning once the whole window was taken, and
    /// returns the cursor it started from.
    async fn next_batch(
        &self,
        from: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<(Vec<MessageRecord>, Option<Key>), StoreError> {
        let after = lock_or_recover(&self.cursor).clone();
        let after_key = after.as_ref().map(|(at, sid)| (*at, sid));
        let mut batch = self
            .store
            .pending_page(from, until, after_key, self.batch_size)
            .await?;
        let mut full = batch.len() as u64 >= u64::from(self.batch_size);
        if let (false, Some(start)) = (full, after_key) {
            let room = self.batch_size - batch.len() as u32;
            let wrapped = self.store.pending_page(from, until, None, room).await?;
            let asked = wrapped.len() as u64 >= u64::from(room);
            let before: Vec<MessageRecord> = wrapped
                .into_iter()
                .take_while(|r| (r.created_at, &r.sid) <= start)
                .collect();
            full = asked && before.len() as u64 >= u64::from(room);
            batch.extend(before);
        }
        let next = batch
            .last()
            .filter(|_| full)
            .map(|r| (r.created_at, r.sid.clone()));
        *lock_or_recover(&self.cursor) = next;
        Ok((batch, after))
    }

    async fn fix(&self, record: MessageRecord) -> Fetched {
        let Some(client) = self.clients.for_account(record.account_sid.as_ref()) else {
            tracing::warn!(
                message_sid = %record.sid,
                account_sid = ?record.account_sid,
                "reconciler: no client for the message's account; not polled again"
            );
            lock_or_recover(&self.skip).insert(record.sid.clone(), record.created_at);
            return Fetched::UnknownAccount;
        };
        let message = match client.messages().fetch(&record.sid).await {
            Ok(m) => m,
            Err(e) => return self.fetch_failed(&record, &e),
        };
        let event = message.to_status_event();
        let started = std::time::Instant::now();
        let stored = self.store.apply(&event).await;
        metrics::store_write("apply", started.elapsed());
        match stored {
            Ok(applied) => {
                if applied.changed() {
                    metrics::transition(
                        applied.previous.as_ref(),
                        &applied.current,
                        EventSource::Reconciler,
                        Some(record.created_at),
                    );
                }
                let change = StatusChange::from_applied(
                    &record.sid,
                    &applied,
                    event.error_code,
                    EventSource::Reconciler,
                );
                match (change, &self.notifier) {
                    (Some(change), Some(notifier)) => {
                        notifier.publish(change);
                        Fetched::Changed
                    }
                    (Some(_), None) => Fetched::Changed,
                    (None, _) => Fetched::Unchanged,
                }
            }
            Err(e) => {
                metrics::reconciler_error("store");
                tracing::warn!(message_sid = %record.sid, error = %e, "reconciler could not store a status");
                Fetched::Failed {
                    rate_limited: false,
                }
            }
        }
    }

    fn fetch_failed(&self, record: &MessageRecord, e: &Error) -> Fetched {
        if e.api_error().is_some_and(|a| a.is_not_found()) {
            tracing::warn!(
                message_sid = %record.sid,
                "reconciler: message not found at the api; not polled again"
            );
            lock_or_recover(&self.skip).insert(record.sid.clone(), record.created_at);
            return Fetched::NotFound;
        }
        let rate_limited = e.api_error().is_some_and(|a| a.is_rate_limited());
        tracing::warn!(message_sid = %record.sid, error = %e, "reconciler could not fetch a message");
        Fetched::Failed { rate_limited }
    }

    /// Runs passes every `interval` until `shutdown` resolves; after a pass with errors (or a
    /// store failure) the wait doubles, up to `max_backoff`, and resets after a clean pass.
    pub async fn run_until<F>(self, shutdown: F)
    where
        F: std::future::Future<Output = ()> + Send,
    {
        tokio::pin!(shutdown);
        let mut failures: u32 = 0;
        loop {
            let clean = match self.run_once().await {
                Ok(r) => r.errors == 0 && !r.rate_limited,
                Err(e) => {
                    tracing::error!(error = %e, "reconciliation pass failed");
                    false
                }
            };
            failures = if clean { 0 } else { failures.saturating_add(1) };
            let wait = backoff(self.interval, self.max_backoff, failures);
            tokio::select! {
                () = &mut shutdown => break,
                () = tokio::time::sleep(wait) => {}
            }
        }
        tracing::debug!("reconciler stopped");
    }

    /// Runs [`run_until`](Self::run_until) in a background task; stop it with the handle.
    pub fn spawn(self) -> ReconcilerHandle {
        let (tx, mut rx) = watch::channel(false);
        let task = tokio::spawn(self.run_until(async move {
            // Resolves on `true` or when the handle is dropped.
            let _ = rx.wait_for(|stop| *stop).await;
        }));
        ReconcilerHandle { stop: tx, task }
    }
}

/// A message's place in the window's order: creation time, then SID.
type Key = (OffsetDateTime, MessageSid);

/// The guarded value, also after a panic elsewhere while it was held (it stays consistent:
/// every update is one assignment or one insertion).
fn lock_or_recover<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `now - age`, or `None` when that is before the earliest representable time.
fn ago(now: OffsetDateTime, age: Duration) -> Option<OffsetDateTime> {
    now.checked_sub(time::Duration::try_from(age).ok()?)
}

/// The wait before the next pass after `failures` consecutive failing passes.
fn backoff(interval: Duration, max: Duration, failures: u32) -> Duration {
    let factor = 1u32.checked_shl(failures.min(16)).unwrap_or(u32::MAX);
    interval.saturating_mul(factor).min(max.max(interval))
}

/// Controls a reconciler started with [`Reconciler::spawn`]. Dropping it stops the reconciler.
#[derive(Debug)]
pub struct ReconcilerHandle {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl ReconcilerHandle {
    /// Stops the reconciler after the pass in progress (if any) and waits for it.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await
            && e.is_panic()
        {
            tracing::error!("reconciler task panicked");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let i = Duration::from_secs(10);
        // (the builder's checks are tested in tests/reconcile.rs)
        let m = Duration::from_secs(100);
        assert_eq!(backoff(i, m, 0), i);
        assert_eq!(backoff(i, m, 1), Duration::from_secs(20));
        assert_eq!(backoff(i, m, 3), Duration::from_secs(80));
        assert_eq!(backoff(i, m, 4), m);
        assert_eq!(backoff(i, m, u32::MAX), m);
        assert_eq!(
            backoff(i, Duration::from_secs(1), 5),
            i,
            "max below interval keeps interval"
        );
    }
}
