//! `StatusStore`: where message records and their status history live, and its backends.
//!
//! Every backend applies the same max-register rule ([`crate::status::transition`]) atomically
//! per message, so any number of webhook handlers, reconcilers and app instances can write at
//! once and still converge on the same answer.
//!
//! # A store of your own
//!
//! Implement [`StatusStore`] with [`async_trait`](crate::async_trait) (re-exported, so your
//! version always matches). This one counts writes and keeps the data in a [`MemoryStore`]; a
//! real one must keep [`apply`](StatusStore::apply) atomic per message, and can run the
//! crate's conformance tests (`tests/store_conformance.rs`) against itself.
//!
//! ```
//! use std::sync::atomic::{AtomicU64, Ordering};
//!
//! use time::OffsetDateTime;
//! use twilio_delivery::async_trait;
//! use twilio_delivery::model::{Applied, HistoryEntry, MessageRecord, SentMessage, StatusEvent};
//! use twilio_delivery::store::{ListQuery, MemoryStore, Page, StatusStore, StoreError};
//! use twilio_delivery::MessageSid;
//!
//! #[derive(Debug, Default)]
//! struct CountingStore {
//!     inner: MemoryStore,
//!     writes: AtomicU64,
//! }
//!
//! #[async_trait]
//! impl StatusStore for CountingStore {
//!     async fn record_sent(&self, sent: &SentMessage) -> Result<Applied, StoreError> {
//!         self.writes.fetch_add(1, Ordering::Relaxed);
//!         self.inner.record_sent(sent).await
//!     }
//!
//!     async fn apply(&self, event: &StatusEvent) -> Result<Applied, StoreError> {
//!         self.writes.fetch_add(1, Ordering::Relaxed);
//!         self.inner.apply(event).await
//!     }
//!
//!     async fn get(&self, sid: &MessageSid) -> Result<Option<MessageRecord>, StoreError> {
//!         self.inner.get(sid).await
//!     }
//!
//!     async fn history(&self, sid: &MessageSid) -> Result<Vec<HistoryEntry>, StoreError> {
//!         self.inner.history(sid).await
//!     }
//!
//!     async fn pending_since(
//!         &self,
//!         created_from: OffsetDateTime,
//!         older_than: OffsetDateTime,
//!         limit: u32,
//!     ) -> Result<Vec<MessageRecord>, StoreError> {
//!         self.inner.pending_since(created_from, older_than, limit).await
//!     }
//!
//!     async fn list(&self, query: &ListQuery) -> Result<Page, StoreError> {
//!         self.inner.list(query).await
//!     }
//! }
//! ```

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::feed::FeedStore;
use crate::ids::MessageSid;
use crate::model::{Applied, HistoryEntry, MessageRecord, SentMessage, StatusEvent};
use crate::status::MessageStatus;

#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod batch;
mod memory;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use memory::MemoryStore;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use postgres::{PostgresOptions, PostgresStore};
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use sql::TablePrefix;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use sqlite::{SqliteOptions, SqliteStore, Synchronous};
/// The `sqlx` the SQL stores are built on: build the pools for `SqliteStore::new` and
/// `PostgresStore::new` with it, without depending on a matching version yourself.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "postgres"))))]
pub use sqlx;

/// Filters and paging for [`StatusStore::list`]: newest first.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct ListQuery {
    /// Only messages to this recipient.
    pub to: Option<String>,
    /// Only messages whose current status is one of these (empty: any).
    pub statuses: Vec<MessageStatus>,
    /// Only messages created at or after this time.
    pub created_from: Option<OffsetDateTime>,
    /// Only messages created before this time.
    pub created_until: Option<OffsetDateTime>,
    /// At most this many (the store caps it at 1000; 0 means 50).
    pub limit: u32,
    /// Continue after this cursor (from [`Page::next`]).
    pub after: Option<Cursor>,
}

impl ListQuery {
    /// A query for every message, 50 a page.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only messages to `to`.
    pub fn to(mut self, to: impl Into<String>) -> Self {
        self.to = Some(to.into());
        self
    }

    /// Only messages whose current status is `status` (call again to allow several).
    pub fn status(mut self, status: MessageStatus) -> Self {
        self.statuses.push(status);
        self
    }

    /// Only messages created in `[from, until)`.
    pub fn created_between(mut self, from: OffsetDateTime, until: OffsetDateTime) -> Self {
        self.created_from = Some(from);
        self.created_until = Some(until);
        self
    }

    /// At most `limit` records a page.
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = limit;
        self
    }

    /// The page after `cursor`.
    pub fn after(mut self, cursor: Cursor) -> Self {
        self.after = Some(cursor);
        self
    }

    /// The effective page size: `limit`, 50 when 0, at most 1000.
    pub fn page_size(&self) -> u32 {
        match self.limit {
            0 => 50,
            n => n.min(1000),
        }
    }
}

/// Where a page of [`StatusStore::list`] ended: (created_at, sid) of its last record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// `created_at` of the last record returned.
    pub created_at: OffsetDateTime,
    /// SID of the last record returned.
    pub sid: MessageSid,
}

/// One page of records.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Page {
    /// The records, newest first.
    pub records: Vec<MessageRecord>,
    /// The cursor for the next page, `None` on the last page.
    pub next: Option<Cursor>,
}

impl Page {
    /// A page, for stores implemented outside this crate.
    pub fn new(records: Vec<MessageRecord>, next: Option<Cursor>) -> Self {
        Self { records, next }
    }

    /// The page of `size` records from `records` fetched newest first with one more than
    /// `size`: an extra record means there is a next page, which starts after the last one kept.
    pub fn from_overfetch(mut records: Vec<MessageRecord>, size: usize) -> Self {
        let next = if records.len() > size {
            records.truncate(size);
            records.last().map(|r| Cursor {
                created_at: r.created_at,
                sid: r.sid.clone(),
            })
        } else {
            None
        };
        Self { records, next }
    }
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database could not be reached or the operation failed in it (retry later).
    #[error("store unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
    /// Stored data could not be read back (e.g. an invalid SID in a row).
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The store was configured wrongly (e.g. an invalid table prefix).
    #[error("invalid store configuration: {0}")]
    Config(String),
    /// The store does not offer this (e.g. a custom store without a change feed).
    #[error("not supported by this store: {0}")]
    Unsupported(&'static str),
    /// The store cannot hold a value of this write (`PostgresStore`: a data exception or a
    /// limit of the database, SQLSTATE classes 22 and 54, such as a text too long to index).
    /// The same write fails again; nothing of it was written. The webhook then writes the
    /// events of the batch one at a time, so that only the callback that holds the value fails.
    #[error("the store cannot hold this write: {0}")]
    Rejected(String),
}

impl StoreError {
    /// Whether the failure is transient and the operation may succeed later.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

/// Storage for message records and their status history.
///
/// Implementations must make [`apply`](Self::apply) atomic per message under concurrency, across
/// processes for shared databases: two writers applying events for one SID at once must end in
/// the max-register result with every distinct event in the history exactly once.
#[async_trait]
pub trait StatusStore: fmt::Debug + Send + Sync + 'static {
    /// Records a message the app just sent, creating its record or merging the send details into
    /// a record a callback created first, never lowering its status.
    ///
    /// # Errors
    /// [`StoreError`] when the store cannot be written.
    async fn record_sent(&self, sent: &SentMessage) -> Result<Applied, StoreError>;

    /// Applies one status observation: keeps it once in the history and raises the current
    /// status if it ranks higher. Creates the record if the SID is new.
    ///
    /// # Errors
    /// [`StoreError`] when the store cannot be written; nothing is partially applied.
    async fn apply(&self, event: &StatusEvent) -> Result<Applied, StoreError>;

    /// Applies `events` in order and returns one [`Applied`] per event: exactly what
    /// [`apply`](Self::apply) would have returned for each, had they been applied one by one in
    /// this order (duplicates and repeated SIDs included). The write path of the webhook calls
    /// it with the callbacks that arrived while the previous batch committed.
    ///
    /// The SQL stores write a batch in one transaction of set-based statements: all of it or
    /// nothing (except that PostgreSQL writes a batch that keeps losing races with other
    /// instances one event at a time). This default applies the events one by one, so that
    /// custom stores keep working; a failure then leaves the events before it applied (which
    /// is harmless: applying an event again changes nothing).
    ///
    /// # Errors
    /// [`StoreError`] when the store cannot be written.
    async fn apply_batch(&self, events: &[StatusEvent]) -> Result<Vec<Applied>, StoreError> {
        let mut out = Vec::with_capacity(events.len());
        for event in events {
            out.push(self.apply(event).await?);
        }
        Ok(out)
    }

    /// Whether the webhook queues this store's writes and commits them in groups through
    /// [`apply_batch`](Self::apply_batch) (the default). Grouping pays when a write costs a
    /// round trip or a flush. A store whose write is a few operations in memory
    /// ([`MemoryStore`]) returns `false`, and the webhook then awaits [`apply`](Self::apply) in
    /// the request's own task: no hand-off to a writer task and back, which would cost such a
    /// store more than its write. Return `false` only if `apply` is quick and safe to cancel:
    /// the request's task stops waiting for it at the webhook's deadline or when the client
    /// goes away.
    fn group_commit(&self) -> bool {
        true
    }

    /// The record of one message, if known.
    ///
    /// # Errors
    /// [`StoreError`] when the store cannot be read.
    async fn get(&self, sid: &MessageSid) -> Result<Option<MessageRecord>, StoreError>;

    /// The distinct status events of one message, oldest first.
    ///
    /// # Errors
    /// [`StoreError`] when the store cannot be read.
    async fn history(&self, sid: &MessageSid) -> Result<Vec<HistoryEntry>, StoreError>;

    /// Messages whose status is not final and that were created before `older_than`, oldest
    /// first, at most `limit`: what the reconciler polls.
    ///
    /// # Errors
    /// [`StoreError`] when the store cannot be read.
    async fn pending(
        &self,
        older_than: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<MessageRecord>, StoreError> {
        self.pending_since(OffsetDateTime::UNIX_EPOCH, older_than, limit)
            .await
    }

    /// As [`pending`](Self::pending), only messages created at or after `created_from`: the
    /// reconciler's window, so that messages stuck for good (a carrier that never sends a
    /// delivery receipt) stop being polled after a while.
    ///
    /// # Errors
    /// [`StoreError`] when the store cannot be read.
    async fn pending_since(
        &self,
        created_from: OffsetDateTime,
        older_than: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<MessageRecord>, StoreError>;

    /// As [`pending_since`](Self::pending_since), one page of a walk through the window: only
    /// messages after `after` in the window's order (`created_at`, then SID byte-wise), so that
    /// a caller can go through more pending messages than one page holds, whatever order they
    /// turn final in. `None` starts at the window's beginning. Messages created in the same
    /// second (Twilio's `date_created`) are told apart by SID, so none is skipped or repeated.
    ///
    /// The default asks [`pending_since`](Self::pending_since) from `after`'s time on, for
    /// twice as many each time, until it has `limit` messages after `after` or the window's
    /// end: exact, and one query unless many messages share `after`'s time. The stores of this
    /// crate answer with one keyset query.
    ///
    /// # Errors
    /// [`StoreError`] when the store cannot be read.
    async fn pending_page(
        &self,
        created_from: OffsetDateTime,
        older_than: OffsetDateTime,
        after: Option<(OffsetDateTime, &MessageSid)>,
        limit: u32,
    ) -> Result<Vec<MessageRecord>, StoreError> {
        let Some((at, sid)) = after else {
            return self.pending_since(created_from, older_than, limit).await;
        };
        let from = created_from.max(at);
        let mut ask = limit;
        loop {
            let rows = self.pending_since(from, older_than, ask).await?;
            let ended = (rows.len() as u64) < u64::from(ask) || ask == u32::MAX;
            let mut page: Vec<MessageRecord> = rows
                .into_iter()
                .filter(|r| (r.created_at, &r.sid) > (at, sid))
                .collect();
            if ended || page.len() as u64 >= u64::from(limit) {
                page.truncate(limit as usize);
                return Ok(page);
            }
            ask = ask.saturating_mul(2);
        }
    }

    /// A page of records, newest first, filtered by recipient, status and creation time.
    ///
    /// # Errors
    /// [`StoreError`] when the store cannot be read.
    async fn list(&self, query: &ListQuery) -> Result<Page, StoreError>;

    /// Records an incoming message once per `MessageSid` (Twilio may deliver it again): the
    /// first delivery creates its record with status `received` (a change, on the change feed),
    /// a repeat changes nothing, not even the record's times.
    ///
    /// # Errors
    /// [`StoreError`] when the store cannot be read or written.
    async fn record_inbound(
        &self,
        message: &crate::inbound::InboundMessage,
    ) -> Result<Applied, StoreError> {
        let record = message.to_record();
        if let Some(existing) = self.get(&message.sid).await? {
            let outcome = crate::status::transition(Some(&existing.status), &record.status);
            if !outcome.changed() {
                let current = existing.status.clone();
                let seen = Applied::new(outcome, Some(existing.status), current, false);
                return Ok(seen.created_at(existing.created_at));
            }
        }
        self.record_sent(&record).await
    }

    /// Tries to become the one holder of the reconciliation lock, so that of many app instances
    /// sharing this store only one polls Twilio at a time. `None`: another holder has it.
    /// The lock is released when the returned guard is dropped.
    ///
    /// Stores private to one process (memory, SQLite) always grant it.
    ///
    /// # Errors
    /// [`StoreError`] when the store cannot be reached.
    async fn try_reconcile_lock(&self) -> Result<Option<ReconcileLock>, StoreError> {
        Ok(Some(ReconcileLock::local()))
    }

    /// The store's durable change feed ([`crate::feed`]), if it keeps one. Every store of this
    /// crate does; the default is `None`.
    fn feed(&self) -> Option<&dyn FeedStore> {
        None
    }
}

/// Held while one reconciliation pass runs; dropping it releases the lock.
pub struct ReconcileLock {
    _guard: Option<Box<dyn Send + Sync>>,
    lost: Option<Arc<AtomicBool>>,
}

impl ReconcileLock {
    /// A lock that guards nothing beyond this process.
    pub fn local() -> Self {
        Self {
            _guard: None,
            lost: None,
        }
    }

    /// A lock whose release is `guard`'s drop (e.g. a connection holding an advisory lock).
    pub fn new(guard: Box<dyn Send + Sync>) -> Self {
        Self {
            _guard: Some(guard),
            lost: None,
        }
    }

    /// A lock that can be lost while held (a lease that could not be renewed in time): the
    /// store sets `lost` then, and the pass holding it starts no more work.
    pub fn losable(guard: Box<dyn Send + Sync>, lost: Arc<AtomicBool>) -> Self {
        Self {
            _guard: Some(guard),
            lost: Some(lost),
        }
    }

    /// Whether the lock is known lost: another instance may be reconciling now.
    pub fn is_lost(&self) -> bool {
        self.lost
            .as_ref()
            .is_some_and(|l| l.load(Ordering::Acquire))
    }
}

impl fmt::Debug for ReconcileLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReconcileLock")
            .field("shared", &self._guard.is_some())
            .field("lost", &self.is_lost())
            .finish()
    }
}

#[async_trait]
impl<S: StatusStore + ?Sized> StatusStore for Arc<S> {
    async fn record_sent(&self, sent: &SentMessage) -> Result<Applied, StoreError> {
        (**self).record_sent(sent).await
    }
    async fn record_inbound(
        &self,
        message: &crate::inbound::InboundMessage,
    ) -> Result<Applied, StoreError> {
        (**self).record_inbound(message).await
    }
    async fn apply(&self, event: &StatusEvent) -> Result<Applied, StoreError> {
        (**self).apply(event).await
    }
    async fn apply_batch(&self, events: &[StatusEvent]) -> Result<Vec<Applied>, StoreError> {
        (**self).apply_batch(events).await
    }
    fn group_commit(&self) -> bool {
        (**self).group_commit()
    }
    async fn get(&self, sid: &MessageSid) -> Result<Option<MessageRecord>, StoreError> {
        (**self).get(sid).await
    }
    async fn history(&self, sid: &MessageSid) -> Result<Vec<HistoryEntry>, StoreError> {
        (**self).history(sid).await
    }
    async fn pending(
        &self,
        older_than: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<MessageRecord>, StoreError> {
        (**self).pending(older_than, limit).await
    }
    async fn pending_since(
        &self,
        created_from: OffsetDateTime,
        older_than: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<MessageRecord>, StoreError> {
        (**self)
            .pending_since(created_from, older_than, limit)
            .await
    }
    async fn pending_page(
        &self,
        created_from: OffsetDateTime,
        older_than: OffsetDateTime,
        after: Option<(OffsetDateTime, &MessageSid)>,
        limit: u32,
    ) -> Result<Vec<MessageRecord>, StoreError> {
        (**self)
            .pending_page(created_from, older_than, after, limit)
            .await
    }
    async fn list(&self, query: &ListQuery) -> Result<Page, StoreError> {
        (**self).list(query).await
    }
    async fn try_reconcile_lock(&self) -> Result<Option<ReconcileLock>, StoreError> {
        (**self).try_reconcile_lock().await
    }
    fn feed(&self) -> Option<&dyn FeedStore> {
        (**self).feed()
    }
}
