//! `StatusStore`: where message records and their status history live, and its backends.
//!
//! Every backend applies the same max-register rule ([`crate::status::transition`]) atomically
//! per message, so any number of webhook handlers, reconcilers and app instances can write at
//! once and still converge on the same answer.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::ids::{AccountSid, MessageSid, MessagingServiceSid};
use crate::status::{MessageStatus, Outcome};

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
pub use postgres::PostgresStore;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use sql::TablePrefix;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use sqlite::SqliteStore;
/// The `sqlx` the SQL stores are built on: build the pools for `SqliteStore::new` and
/// `PostgresStore::new` with it, without depending on a matching version yourself.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "postgres"))))]
pub use sqlx;

/// A message as the app sent it, recorded right after the create call returned.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SentMessage {
    /// The message SID Twilio assigned.
    pub sid: MessageSid,
    /// The account that owns the message.
    pub account_sid: Option<AccountSid>,
    /// The recipient.
    pub to: String,
    /// The sender; `None` while a Messaging Service is still picking one.
    pub from: Option<String>,
    /// The Messaging Service used, if any.
    pub messaging_service_sid: Option<MessagingServiceSid>,
    /// The text sent, if the app chooses to store bodies.
    pub body: Option<String>,
    /// The number of segments Twilio counted.
    pub num_segments: Option<u32>,
    /// The status in the create response (`queued`, `accepted`, `scheduled`, ...).
    pub status: MessageStatus,
    /// When the message was created.
    pub created_at: OffsetDateTime,
}

impl SentMessage {
    /// A sent message with the required fields; set the others on the returned value.
    pub fn new(sid: MessageSid, to: impl Into<String>, status: MessageStatus) -> Self {
        Self {
            sid,
            account_sid: None,
            to: to.into(),
            from: None,
            messaging_service_sid: None,
            body: None,
            num_segments: None,
            status,
            created_at: OffsetDateTime::now_utc(),
        }
    }
}

/// Where a status observation came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventSource {
    /// A status callback from Twilio.
    Callback,
    /// The reconciler fetched the message from the API.
    Reconciler,
    /// The create (send) response.
    Send,
}

impl EventSource {
    /// The name stored in the database (`callback`, `reconciler`, `send`).
    pub fn as_str(self) -> &'static str {
        match self {
            EventSource::Callback => "callback",
            EventSource::Reconciler => "reconciler",
            EventSource::Send => "send",
        }
    }

    /// Parses a stored name; unknown names read as `Callback`.
    pub fn parse(s: &str) -> Self {
        match s {
            "reconciler" => EventSource::Reconciler,
            "send" => EventSource::Send,
            _ => EventSource::Callback,
        }
    }
}

/// One observation of a message's status, to be applied to the store.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct StatusEvent {
    /// The message.
    pub sid: MessageSid,
    /// The status observed.
    pub status: MessageStatus,
    /// Twilio's error code (`ErrorCode`), on failed/undelivered.
    pub error_code: Option<u32>,
    /// A human-readable error text, when the source has one (the API's `error_message`).
    pub error_message: Option<String>,
    /// When the observation was received.
    pub received_at: OffsetDateTime,
    /// Where it came from.
    pub source: EventSource,
    /// Twilio's `I-Twilio-Idempotency-Token` header, for callbacks.
    pub idempotency_token: Option<String>,
    /// The account (used when the event creates the record).
    pub account_sid: Option<AccountSid>,
    /// The recipient (used when the event creates the record).
    pub to: Option<String>,
    /// The sender (used when the event creates the record or fills a missing sender).
    pub from: Option<String>,
    /// The Messaging Service (used when the event creates the record).
    pub messaging_service_sid: Option<MessagingServiceSid>,
    /// Every raw form pair of the callback, in wire order.
    pub raw: Vec<(String, String)>,
}

impl StatusEvent {
    /// An event with the required fields, received now; set the others on the returned value.
    pub fn new(sid: MessageSid, status: MessageStatus, source: EventSource) -> Self {
        Self {
            sid,
            status,
            error_code: None,
            error_message: None,
            received_at: OffsetDateTime::now_utc(),
            source,
            idempotency_token: None,
            account_sid: None,
            to: None,
            from: None,
            messaging_service_sid: None,
            raw: Vec::new(),
        }
    }
}

/// What [`StatusStore::apply`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Applied {
    /// The max-register outcome for the current status.
    pub outcome: Outcome,
    /// The current status before the event (`None`: the event created the record).
    pub previous: Option<MessageStatus>,
    /// The current status after the event.
    pub current: MessageStatus,
    /// Whether the (sid, status) event was new to the history.
    pub new_event: bool,
}

impl Applied {
    /// An outcome, for stores implemented outside this crate.
    pub fn new(
        outcome: Outcome,
        previous: Option<MessageStatus>,
        current: MessageStatus,
        new_event: bool,
    ) -> Self {
        Self {
            outcome,
            previous,
            current,
            new_event,
        }
    }

    /// Whether the current status changed.
    pub fn changed(&self) -> bool {
        self.outcome.changed()
    }
}

/// A message and its current status.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct MessageRecord {
    /// The message SID.
    pub sid: MessageSid,
    /// The account that owns the message, when known.
    pub account_sid: Option<AccountSid>,
    /// The recipient, when known (a callback may arrive before `record_sent`).
    pub to: Option<String>,
    /// The sender, when known.
    pub from: Option<String>,
    /// The Messaging Service, if any.
    pub messaging_service_sid: Option<MessagingServiceSid>,
    /// The body, if the app stored it.
    pub body: Option<String>,
    /// The number of segments, when known.
    pub num_segments: Option<u32>,
    /// The current status: the maximum of every status observed.
    pub status: MessageStatus,
    /// The error code of the event that set the current status.
    pub error_code: Option<u32>,
    /// The error text of the event that set the current status, when known.
    pub error_message: Option<String>,
    /// Whether `record_sent` has been called for this message.
    pub sent_recorded: bool,
    /// When the record was created (the send time once `record_sent` ran).
    pub created_at: OffsetDateTime,
    /// When the record last changed.
    pub updated_at: OffsetDateTime,
}

impl MessageRecord {
    /// A record with only its SID, status and creation time known, for stores implemented
    /// outside this crate; set the other fields on the returned value.
    pub fn new(sid: MessageSid, status: MessageStatus, created_at: OffsetDateTime) -> Self {
        Self {
            sid,
            account_sid: None,
            to: None,
            from: None,
            messaging_service_sid: None,
            body: None,
            num_segments: None,
            status,
            error_code: None,
            error_message: None,
            sent_recorded: false,
            created_at,
            updated_at: created_at,
        }
    }
}

/// One distinct (sid, status) observation in a message's history.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct HistoryEntry {
    /// The status observed.
    pub status: MessageStatus,
    /// Its error code.
    pub error_code: Option<u32>,
    /// When it was first received.
    pub received_at: OffsetDateTime,
    /// Where it came from.
    pub source: EventSource,
    /// Twilio's idempotency token, for callbacks.
    pub idempotency_token: Option<String>,
    /// The raw form pairs of the first callback that carried it.
    pub raw: Vec<(String, String)>,
}

impl HistoryEntry {
    /// A history entry, for stores implemented outside this crate; set the other fields on
    /// the returned value.
    pub fn new(status: MessageStatus, received_at: OffsetDateTime, source: EventSource) -> Self {
        Self {
            status,
            error_code: None,
            received_at,
            source,
            idempotency_token: None,
            raw: Vec::new(),
        }
    }
}

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
    /// delivery receipt) stop being polled after a while and never starve newer ones.
    ///
    /// # Errors
    /// [`StoreError`] when the store cannot be read.
    async fn pending_since(
        &self,
        created_from: OffsetDateTime,
        older_than: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<MessageRecord>, StoreError>;

    /// A page of records, newest first, filtered by recipient, status and creation time.
    ///
    /// # Errors
    /// [`StoreError`] when the store cannot be read.
    async fn list(&self, query: &ListQuery) -> Result<Page, StoreError>;

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
}

/// Held while one reconciliation pass runs; dropping it releases the lock.
pub struct ReconcileLock {
    _guard: Option<Box<dyn Send + Sync>>,
}

impl ReconcileLock {
    /// A lock that guards nothing beyond this process.
    pub fn local() -> Self {
        Self { _guard: None }
    }

    /// A lock whose release is `guard`'s drop (e.g. a connection holding an advisory lock).
    pub fn new(guard: Box<dyn Send + Sync>) -> Self {
        Self {
            _guard: Some(guard),
        }
    }
}

impl fmt::Debug for ReconcileLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReconcileLock")
            .field("shared", &self._guard.is_some())
            .finish()
    }
}

#[async_trait]
impl<S: StatusStore + ?Sized> StatusStore for Arc<S> {
    async fn record_sent(&self, sent: &SentMessage) -> Result<Applied, StoreError> {
        (**self).record_sent(sent).await
    }
    async fn apply(&self, event: &StatusEvent) -> Result<Applied, StoreError> {
        (**self).apply(event).await
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
    async fn list(&self, query: &ListQuery) -> Result<Page, StoreError> {
        (**self).list(query).await
    }
    async fn try_reconcile_lock(&self) -> Result<Option<ReconcileLock>, StoreError> {
        (**self).try_reconcile_lock().await
    }
}
