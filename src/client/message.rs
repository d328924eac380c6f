//! `Message`: the Message resource as the API returns it, typed, plus `Price`.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::enums::Direction;
use super::wire;
use crate::ids::{AccountSid, MessageSid, MessagingServiceSid};
use crate::model::{EventSource, SentMessage, StatusEvent};
use crate::status::MessageStatus;

/// A message as the API returns it (the spec's `api.v2010.account.message`).
///
/// Every field Twilio may send as `null` is an `Option`; dates are RFC 2822 on the wire and UTC
/// here; `num_segments`/`num_media` arrive as strings and are integers here. Unknown fields are
/// ignored and unknown enum values are kept in fallback variants, so a response Twilio extends
/// still decodes. Only `sid` and `status` are required: a message without them is useless.
/// Serialising writes the same wire format back.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Message {
    /// The message SID (`SM…` or `MM…`).
    pub sid: MessageSid,
    /// The account that owns the message.
    #[serde(default)]
    pub account_sid: Option<AccountSid>,
    /// The Messaging Service used, if any.
    #[serde(default)]
    pub messaging_service_sid: Option<MessagingServiceSid>,
    /// The current status.
    pub status: MessageStatus,
    /// The recipient (E.164 number or channel address such as `whatsapp:+1555…`).
    #[serde(default)]
    pub to: Option<String>,
    /// The sender; `None` while a Messaging Service is still picking one.
    #[serde(default)]
    pub from: Option<String>,
    /// The text (empty after a redaction).
    #[serde(default)]
    pub body: Option<String>,
    /// The number of segments (`0` while a Messaging Service has not picked a sender).
    #[serde(default, with = "wire::u32_lenient_opt")]
    pub num_segments: Option<u32>,
    /// The number of media files.
    #[serde(default, with = "wire::u32_lenient_opt")]
    pub num_media: Option<u32>,
    /// The direction.
    #[serde(default)]
    pub direction: Option<Direction>,
    /// The price, a decimal string, negative for a charge (`"-0.00750"`); set after sending.
    #[serde(default)]
    pub price: Option<Price>,
    /// The currency of `price` (`USD`).
    #[serde(default)]
    pub price_unit: Option<String>,
    /// Twilio's error code on failed/undelivered messages (`30007`).
    #[serde(default, with = "wire::u32_lenient_opt")]
    pub error_code: Option<u32>,
    /// The description of `error_code`.
    #[serde(default)]
    pub error_message: Option<String>,
    /// When the resource was created (UTC).
    #[serde(default, with = "wire::rfc2822_opt")]
    pub date_created: Option<OffsetDateTime>,
    /// When the resource was last updated (UTC).
    #[serde(default, with = "wire::rfc2822_opt")]
    pub date_updated: Option<OffsetDateTime>,
    /// When the message was sent (UTC); `None` before that, e.g. while scheduled.
    #[serde(default, with = "wire::rfc2822_opt")]
    pub date_sent: Option<OffsetDateTime>,
    /// The API version that processed the message (`2010-04-01`).
    #[serde(default)]
    pub api_version: Option<String>,
    /// The resource's URI, relative to the API host.
    #[serde(default)]
    pub uri: Option<String>,
    /// Related resources (`media`, `feedback`) by name, URIs relative to the API host.
    #[serde(default, deserialize_with = "wire::uri_map_opt::deserialize")]
    pub subresource_uris: Option<BTreeMap<String, String>>,
}

impl std::fmt::Debug for Message {
    /// Phone numbers, message text and raw pairs are redacted.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Message")
            .field("sid", &self.sid)
            .field("account_sid", &self.account_sid)
            .field("messaging_service_sid", &self.messaging_service_sid)
            .field("status", &self.status)
            .field("to", &crate::redact::opt(&self.to))
            .field("from", &crate::redact::opt(&self.from))
            .field("body", &crate::redact::opt(&self.body))
            .field("num_segments", &self.num_segments)
            .field("num_media", &self.num_media)
            .field("direction", &self.direction)
            .field("price", &self.price)
            .field("price_unit", &self.price_unit)
            .field("error_code", &self.error_code)
            .field("error_message", &self.error_message)
            .field("date_created", &self.date_created)
            .field("date_updated", &self.date_updated)
            .field("date_sent", &self.date_sent)
            .field("api_version", &self.api_version)
            .field("uri", &self.uri)
            .field("subresource_uris", &self.subresource_uris)
            .finish()
    }
}

impl Message {
    /// What to record in a [`StatusStore`](crate::store::StatusStore) right after sending:
    /// `store.record_sent(&msg.to_sent_message(true)).await`.
    ///
    /// `store_body` chooses whether the text is kept (it may be personal data). The creation
    /// time is `date_created`, or now if Twilio did not send one; `to` is empty if Twilio sent
    /// none.
    pub fn to_sent_message(&self, store_body: bool) -> SentMessage {
        let mut sent = SentMessage::new(
            self.sid.clone(),
            self.to.clone().unwrap_or_default(),
            self.status.clone(),
        );
        sent.account_sid = self.account_sid.clone();
        sent.from = self.from.clone();
        sent.messaging_service_sid = self.messaging_service_sid.clone();
        sent.body = if store_body { self.body.clone() } else { None };
        sent.num_segments = self.num_segments;
        if let Some(created) = self.date_created {
            sent.created_at = created;
        }
        sent
    }

    /// This message's status as an observation from the reconciler
    /// ([`EventSource::Reconciler`]), with its error code and text, account, addresses and
    /// service, received now.
    pub fn to_status_event(&self) -> StatusEvent {
        let mut event = StatusEvent::new(
            self.sid.clone(),
            self.status.clone(),
            EventSource::Reconciler,
        );
        event.error_code = self.error_code;
        event.error_message = self.error_message.clone();
        event.account_sid = self.account_sid.clone();
        event.to = self.to.clone();
        event.from = self.from.clone();
        event.messaging_service_sid = self.messaging_service_sid.clone();
        event
    }
}

/// An exact decimal amount as Twilio writes it (`"-0.00750"`): never a float.
///
/// Accepts an optional sign, digits and an optional fraction; the text is kept as received.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Price(String);

/// Why a string is not a decimal amount.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("price must be a decimal number such as -0.00750")]
pub struct PriceError;

impl Price {
    /// Parses and validates a decimal amount.
    ///
    /// # Errors
    /// [`PriceError`] when the text is not `[+-]digits[.digits]`.
    pub fn new(s: impl Into<String>) -> Result<Self, PriceError> {
        let s = s.into();
        let unsigned = s.strip_prefix(['-', '+']).unwrap_or(&s);
        let (int, frac) = match unsigned.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (unsigned, None),
        };
        let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
        if !digits(int) || frac.is_some_and(|f| !digits(f)) {
            return Err(PriceError);
        }
        Ok(Self(s))
    }

    /// The amount as received.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the amount is below zero (Twilio writes charges as negative amounts).
    pub fn is_negative(&self) -> bool {
        self.0.starts_with('-') && self.0.bytes().any(|b| matches!(b, b'1'..=b'9'))
    }
}

impl FromStr for Price {
    type Err = PriceError;
    fn from_str(s: &str) -> Result<Self, PriceError> {
        Self::new(s)
    }
}

impl TryFrom<String> for Price {
    type Error = PriceError;
    fn try_from(s: String) -> Result<Self, PriceError> {
        Self::new(s)
    }
}

impl From<Price> for String {
    fn from(p: Price) -> String {
        p.0
    }
}

impl fmt::Display for Price {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Price {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Price({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_are_exact_decimals() {
        for ok in ["-0.00750", "0", "12.5", "+1.00", "-0.0"] {
            assert_eq!(Price::new(ok).unwrap().as_str(), ok);
        }
        for bad in ["", "-", "1.", ".5", "1e3", "abc", "0.1.2", "NaN"] {
            assert!(Price::new(bad).is_err(), "{bad}");
        }
        assert!(Price::new("-0.00750").unwrap().is_negative());
        assert!(!Price::new("-0.000").unwrap().is_negative());
    }
}
