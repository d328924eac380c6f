//! What the emulator exposes to tests: the intended final status of every message and the log of
//! every callback attempt.

use std::fmt;

use super::state::Footprint;
use twilio_delivery::ids::MessageSid;
use twilio_delivery::status::MessageStatus;

/// The final status the emulator intends a message to reach, and its error code.
///
/// An app that processes every callback (or reconciles by polling) must converge to this.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Truth {
    /// The intended final status (`delivered`, `undelivered`, `failed`, `sent` when the carrier
    /// sends no receipt, or `canceled` for a canceled scheduled message).
    pub status: MessageStatus,
    /// The error code of an `undelivered` or `failed` outcome.
    pub error_code: Option<u16>,
}

/// What became of one callback attempt.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AttemptOutcome {
    /// The receiver answered with this HTTP status code.
    Response(u16),
    /// The connection could not be established (refused, unreachable, or the connect timeout
    /// `#ct` elapsed).
    ConnectFailed,
    /// The receiver did not answer within the read timeout (`#rt`) or the remaining total
    /// budget (`#tt`).
    Timeout,
    /// Another transport error, described without the URL.
    Error(String),
    /// The callback was dropped on purpose (the [`Chaos::drop`](super::Chaos::drop) knob): no
    /// request was made.
    Dropped,
}

impl fmt::Display for AttemptOutcome {
    /// `HTTP 204`, `connect failed`, `timed out`, `error: …` or `dropped`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Response(code) => write!(f, "HTTP {code}"),
            Self::ConnectFailed => f.write_str("connect failed"),
            Self::Timeout => f.write_str("timed out"),
            Self::Error(e) => write!(f, "error: {e}"),
            Self::Dropped => f.write_str("dropped"),
        }
    }
}

/// One status-callback attempt, as recorded by the emulator (in the order attempts finished).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CallbackAttempt {
    /// The message the callback is about.
    pub sid: MessageSid,
    /// The `MessageStatus` the callback reported.
    pub status: MessageStatus,
    /// The `ErrorCode` the callback carried, if any.
    pub error_code: Option<u16>,
    /// The URL requested: the message's `StatusCallback` without its `#fragment`.
    pub url: String,
    /// 1 for the first try, 2 for the first retry, and so on.
    pub attempt: u32,
    /// The `I-Twilio-Idempotency-Token` sent (none when the callback was dropped).
    pub idempotency_token: Option<String>,
    /// What happened.
    pub outcome: AttemptOutcome,
    /// Whether this delivery is an extra copy made by the
    /// [`Chaos::duplicate`](super::Chaos::duplicate) knob.
    pub duplicate: bool,
    /// Whether this delivery was dropped by the [`Chaos::drop`](super::Chaos::drop) knob.
    pub dropped: bool,
}

impl AttemptOutcome {
    /// The bytes of text the outcome owns (an error's description).
    pub(crate) fn text_len(&self) -> usize {
        match self {
            Self::Error(e) => e.len(),
            _ => 0,
        }
    }
}

impl Footprint for CallbackAttempt {
    /// Its size and the text it owns: the SID, the URL (up to 4000 characters), the token
    /// and an error's description.
    fn footprint(&self) -> usize {
        size_of::<Self>()
            + self.sid.as_str().len()
            + self.url.len()
            + self.idempotency_token.as_ref().map_or(0, String::len)
            + self.outcome.text_len()
    }
}
