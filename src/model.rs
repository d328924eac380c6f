//! The domain model: what was sent, what was observed, and what a message's record holds.
//!
//! Plain data shared by every other module ([`client`](crate::client), [`callback`](crate::callback),
//! [`notify`](crate::notify), [`store`](crate::store), the webhook and the reconciler); no I/O.

use time::OffsetDateTime;

use crate::ids::{AccountSid, MessageSid, MessagingServiceSid};
use crate::status::{MessageStatus, Outcome};

/// A message as the app sent it, recorded right after the create call returned.
#[derive(Clone, PartialEq)]
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

impl std::fmt::Debug for SentMessage {
    /// Phone numbers, message text and raw pairs are redacted.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentMessage")
            .field("sid", &self.sid)
            .field("account_sid", &self.account_sid)
            .field("to", &crate::redact::Redacted)
            .field("from", &crate::redact::opt(&self.from))
            .field("messaging_service_sid", &self.messaging_service_sid)
            .field("body", &crate::redact::opt(&self.body))
            .field("num_segments", &self.num_segments)
            .field("status", &self.status)
            .field("created_at", &self.created_at)
            .finish()
    }
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
#[derive(Clone, PartialEq)]
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

impl std::fmt::Debug for StatusEvent {
    /// Phone numbers, message text and raw pairs are redacted.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusEvent")
            .field("sid", &self.sid)
            .field("status", &self.status)
            .field("error_code", &self.error_code)
            .field("error_message", &self.error_message)
            .field("received_at", &self.received_at)
            .field("source", &self.source)
            .field("idempotency_token", &self.idempotency_token)
            .field("account_sid", &self.account_sid)
            .field("to", &crate::redact::opt(&self.to))
            .field("from", &crate::redact::opt(&self.from))
            .field("messaging_service_sid", &self.messaging_service_sid)
            .field("raw", &crate::redact::Pairs(self.raw.len()))
            .finish()
    }
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

/// What [`StatusStore::apply`](crate::store::StatusStore::apply) did.
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
    /// When the message's record was created, where the store knows it (for the
    /// send-to-final latency metric).
    pub created_at: Option<OffsetDateTime>,
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
            created_at: None,
        }
    }

    /// The same outcome, for a message created at `created_at`.
    #[must_use]
    pub fn created_at(mut self, created_at: OffsetDateTime) -> Self {
        self.created_at = Some(created_at);
        self
    }

    /// Whether the current status changed.
    pub fn changed(&self) -> bool {
        self.outcome.changed()
    }
}

/// A message and its current status.
#[derive(Clone, PartialEq)]
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

impl std::fmt::Debug for MessageRecord {
    /// Phone numbers, message text and raw pairs are redacted.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageRecord")
            .field("sid", &self.sid)
            .field("account_sid", &self.account_sid)
            .field("to", &crate::redact::opt(&self.to))
            .field("from", &crate::redact::opt(&self.from))
            .field("messaging_service_sid", &self.messaging_service_sid)
            .field("body", &crate::redact::opt(&self.body))
            .field("num_segments", &self.num_segments)
            .field("status", &self.status)
            .field("error_code", &self.error_code)
            .field("error_message", &self.error_message)
            .field("sent_recorded", &self.sent_recorded)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

impl MessageRecord {
    /// The error code of the event that set the current status, as an
    /// [`ErrorCode`](crate::error_code::ErrorCode): its description and what to do about it.
    pub fn error(&self) -> Option<crate::error_code::ErrorCode> {
        self.error_code.map(crate::error_code::ErrorCode::new)
    }

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
#[derive(Clone, PartialEq)]
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

impl std::fmt::Debug for HistoryEntry {
    /// Phone numbers, message text and raw pairs are redacted.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HistoryEntry")
            .field("status", &self.status)
            .field("error_code", &self.error_code)
            .field("received_at", &self.received_at)
            .field("source", &self.source)
            .field("idempotency_token", &self.idempotency_token)
            .field("raw", &crate::redact::Pairs(self.raw.len()))
            .finish()
    }
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
