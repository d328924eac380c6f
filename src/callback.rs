//! `StatusCallback`: a status callback parsed from its form pairs.
//!
//! Parsing keeps every raw pair (Twilio adds parameters without notice) and types the ones the
//! crate understands. Only a missing or invalid `MessageSid`/`MessageStatus` (or a present but
//! invalid SID or error code) makes a callback malformed.

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

use crate::ids::{AccountSid, MessageSid, MessagingServiceSid, SidError};
use crate::model::{EventSource, StatusEvent};
use crate::status::MessageStatus;

/// Why a signed callback could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallbackError {
    /// A required field was absent (or empty).
    #[error("missing field {field}")]
    Missing {
        /// The form field, e.g. `MessageSid`.
        field: &'static str,
    },
    /// A field was present but not valid.
    #[error("invalid field {field}: {reason}")]
    Invalid {
        /// The form field, e.g. `ErrorCode`.
        field: &'static str,
        /// What was wrong, without the value.
        reason: String,
    },
    /// Two fields that must agree (`MessageSid`/`SmsSid`, `MessageStatus`/`SmsStatus`) did not.
    #[error("fields {field} and {other} disagree")]
    Conflict {
        /// The primary field.
        field: &'static str,
        /// The legacy twin.
        other: &'static str,
    },
}

/// Channel details Twilio adds on WhatsApp/RCS callbacks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChannelInfo {
    /// `ChannelPrefix`, e.g. `whatsapp`.
    pub prefix: Option<String>,
    /// `ChannelInstallSid`.
    pub install_sid: Option<String>,
    /// `ChannelStatusMessage`.
    pub status_message: Option<String>,
    /// `ChannelToAddress`.
    pub to_address: Option<String>,
    /// `EventType`, e.g. `READ`.
    pub event_type: Option<String>,
}

/// A message status callback, typed, with every raw pair kept.
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub struct StatusCallback {
    /// `MessageSid` (or its legacy twin `SmsSid`).
    pub message_sid: MessageSid,
    /// `MessageStatus` (or its legacy twin `SmsStatus`).
    pub status: MessageStatus,
    /// `AccountSid`.
    pub account_sid: Option<AccountSid>,
    /// `From`; `None` when absent or longer than [`MAX_ADDRESS`] bytes.
    pub from: Option<String>,
    /// `To`; `None` when absent or longer than [`MAX_ADDRESS`] bytes.
    pub to: Option<String>,
    /// `ApiVersion`, normally `2010-04-01`.
    pub api_version: Option<String>,
    /// `MessagingServiceSid`, when the message was sent through a Messaging Service.
    pub messaging_service_sid: Option<MessagingServiceSid>,
    /// `ErrorCode`, on failed/undelivered.
    pub error_code: Option<u32>,
    /// `RawDlrDoneDate` as sent (`YYMMDDhhmm`).
    pub raw_dlr_done_date: Option<String>,
    /// `RawDlrDoneDate` read as a UTC time, when it parses.
    pub dlr_done_at: Option<OffsetDateTime>,
    /// WhatsApp/RCS channel fields.
    pub channel: ChannelInfo,
    /// The `I-Twilio-Idempotency-Token` header (differs between retry attempts); `None` when
    /// absent or longer than [`MAX_IDEMPOTENCY_TOKEN`] bytes.
    pub idempotency_token: Option<String>,
    /// Every form pair, decoded, in wire order.
    pub raw: Vec<(String, String)>,
}

impl std::fmt::Debug for StatusCallback {
    /// Phone numbers, message text and raw pairs are redacted.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusCallback")
            .field("message_sid", &self.message_sid)
            .field("status", &self.status)
            .field("account_sid", &self.account_sid)
            .field("from", &crate::redact::opt(&self.from))
            .field("to", &crate::redact::opt(&self.to))
            .field("api_version", &self.api_version)
            .field("messaging_service_sid", &self.messaging_service_sid)
            .field("error_code", &self.error_code)
            .field("raw_dlr_done_date", &self.raw_dlr_done_date)
            .field("dlr_done_at", &self.dlr_done_at)
            .field("channel", &self.channel)
            .field("idempotency_token", &self.idempotency_token)
            .field("raw", &crate::redact::Pairs(self.raw.len()))
            .finish()
    }
}

/// The longest `I-Twilio-Idempotency-Token` kept, in bytes. The header is not signed, so a
/// longer one (Twilio's are far shorter) is left out rather than stored with every callback; the
/// callback itself, which is signed, is kept.
pub const MAX_IDEMPOTENCY_TOKEN: usize = 256;

/// The longest `To` or `From` kept, in bytes. What Twilio sends there (a phone number, a short
/// code, an alphanumeric sender ID, a channel address such as `whatsapp:+14155550100`) is far
/// shorter. A longer one is left out of a status callback, which is kept, and refuses an
/// incoming message ([`InboundMessage::from_pairs`](crate::inbound::InboundMessage::from_pairs)):
/// PostgreSQL cannot index a value of a few kilobytes, and one such callback would fail every
/// callback written in its batch.
pub const MAX_ADDRESS: usize = 256;

fn field<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

fn owned(pairs: &[(String, String)], name: &str) -> Option<String> {
    field(pairs, name).map(str::to_owned)
}

/// The address in `name`, if it is at most [`MAX_ADDRESS`] bytes.
fn address(pairs: &[(String, String)], name: &str) -> Option<String> {
    field(pairs, name)
        .filter(|a| a.len() <= MAX_ADDRESS)
        .map(str::to_owned)
}

fn sid_error(field: &'static str, e: SidError) -> CallbackError {
    CallbackError::Invalid {
        field,
        reason: e.to_string(),
    }
}

/// Reads Twilio's `RawDlrDoneDate` (`YYMMDDhhmm`, UTC assumed, 20YY).
pub fn parse_raw_dlr_done_date(raw: &str) -> Option<OffsetDateTime> {
    if raw.len() != 10 || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |i: usize| raw.get(i..i + 2).and_then(|s| s.parse::<u8>().ok());
    let year = 2000 + i32::from(n(0)?);
    let month = Month::try_from(n(2)?).ok()?;
    let date = Date::from_calendar_date(year, month, n(4)?).ok()?;
    let time = Time::from_hms(n(6)?, n(8)?, 0).ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_utc())
}

impl StatusCallback {
    /// Parses a callback from its decoded form pairs and the idempotency-token header.
    ///
    /// # Errors
    /// [`CallbackError`] naming the field when `MessageSid`/`MessageStatus` is missing or
    /// invalid, when their legacy twins disagree with them, or when `AccountSid`,
    /// `MessagingServiceSid` or `ErrorCode` is present but invalid.
    pub fn from_pairs(
        pairs: Vec<(String, String)>,
        idempotency_token: Option<&str>,
    ) -> Result<Self, CallbackError> {
        let p = pairs.as_slice();
        let sid = match (field(p, "MessageSid"), field(p, "SmsSid")) {
            (Some(a), Some(b)) if a != b => {
                return Err(CallbackError::Conflict {
                    field: "MessageSid",
                    other: "SmsSid",
                });
            }
            (Some(s), _) | (None, Some(s)) => s,
            (None, None) => {
                return Err(CallbackError::Missing {
                    field: "MessageSid",
                });
            }
        };
        let message_sid = MessageSid::new(sid).map_err(|e| sid_error("MessageSid", e))?;
        let status = match (field(p, "MessageStatus"), field(p, "SmsStatus")) {
            (Some(a), Some(b)) if a != b => {
                return Err(CallbackError::Conflict {
                    field: "MessageStatus",
                    other: "SmsStatus",
                });
            }
            (Some(s), _) | (None, Some(s)) => s,
            (None, None) => {
                return Err(CallbackError::Missing {
                    field: "MessageStatus",
                });
            }
        };
        if status.len() > 64 || !status.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            return Err(CallbackError::Invalid {
                field: "MessageStatus",
                reason: "must be lowercase letters and '_', at most 64".into(),
            });
        }
        let account_sid = field(p, "AccountSid")
            .map(AccountSid::new)
            .transpose()
            .map_err(|e| sid_error("AccountSid", e))?;
        let messaging_service_sid = field(p, "MessagingServiceSid")
            .map(MessagingServiceSid::new)
            .transpose()
            .map_err(|e| sid_error("MessagingServiceSid", e))?;
        let error_code = field(p, "ErrorCode")
            .map(|v| v.parse::<u32>())
            .transpose()
            .map_err(|_| CallbackError::Invalid {
                field: "ErrorCode",
                reason: "not a non-negative integer".into(),
            })?;
        let raw_dlr_done_date = owned(p, "RawDlrDoneDate");
        let dlr_done_at = raw_dlr_done_date
            .as_deref()
            .and_then(parse_raw_dlr_done_date);
        Ok(Self {
            status: MessageStatus::parse(status),
            message_sid,
            account_sid,
            from: address(p, "From"),
            to: address(p, "To"),
            api_version: owned(p, "ApiVersion"),
            messaging_service_sid,
            error_code,
            raw_dlr_done_date,
            dlr_done_at,
            channel: ChannelInfo {
                prefix: owned(p, "ChannelPrefix"),
                install_sid: owned(p, "ChannelInstallSid"),
                status_message: owned(p, "ChannelStatusMessage"),
                to_address: owned(p, "ChannelToAddress"),
                event_type: owned(p, "EventType"),
            },
            idempotency_token: idempotency_token
                .filter(|t| t.len() <= MAX_IDEMPOTENCY_TOKEN)
                .map(str::to_owned),
            raw: pairs,
        })
    }

    /// Parses a callback from a raw `application/x-www-form-urlencoded` body.
    ///
    /// # Errors
    /// As [`from_pairs`](Self::from_pairs).
    pub fn from_form(body: &[u8], idempotency_token: Option<&str>) -> Result<Self, CallbackError> {
        let pairs = form_urlencoded::parse(body).into_owned().collect();
        Self::from_pairs(pairs, idempotency_token)
    }

    /// The store event for this callback, received now.
    pub fn to_event(&self) -> StatusEvent {
        self.clone().into_event()
    }

    /// The store event for this callback, received now, made of the callback's own fields
    /// (nothing copied: the webhook's path).
    pub fn into_event(self) -> StatusEvent {
        let mut e = StatusEvent::new(self.message_sid, self.status, EventSource::Callback);
        e.error_code = self.error_code;
        e.idempotency_token = self.idempotency_token;
        e.account_sid = self.account_sid;
        e.to = self.to;
        e.from = self.from;
        e.messaging_service_sid = self.messaging_service_sid;
        e.raw = self.raw;
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SID: &str = "SMfedcba9876543210fedcba9876543210";

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn parses_a_delivered_callback_and_keeps_every_pair() {
        let body = format!(
            "ApiVersion=2010-04-01&MessageStatus=delivered&SmsSid={SID}&SmsStatus=delivered&To=%2B14155550199\
             &From=%2B14155550100&MessageSid={SID}&AccountSid=AC0123456789abcdef0123456789abcdef\
             &MessagingServiceSid=MG00112233445566778899aabbccddeeff&RawDlrDoneDate=2608211342&NewParam=x"
        );
        let cb = StatusCallback::from_form(body.as_bytes(), Some("tok-1")).unwrap();
        assert_eq!(cb.message_sid.as_str(), SID);
        assert_eq!(cb.status, MessageStatus::Delivered);
        assert_eq!(cb.to.as_deref(), Some("+14155550199"));
        assert_eq!(cb.api_version.as_deref(), Some("2010-04-01"));
        assert!(cb.messaging_service_sid.is_some());
        assert_eq!(cb.raw_dlr_done_date.as_deref(), Some("2608211342"));
        assert_eq!(
            cb.dlr_done_at.unwrap().to_string(),
            "2026-08-21 13:42:00.0 +00:00:00"
        );
        assert_eq!(cb.raw.len(), 11);
        assert_eq!(
            cb.raw.last().unwrap(),
            &("NewParam".to_owned(), "x".to_owned())
        );
        let e = cb.to_event();
        assert_eq!(e.idempotency_token.as_deref(), Some("tok-1"));

        let longest = "t".repeat(MAX_IDEMPOTENCY_TOKEN);
        let cb = StatusCallback::from_form(body.as_bytes(), Some(&longest)).unwrap();
        assert_eq!(cb.idempotency_token.as_deref(), Some(longest.as_str()));
        let longer = format!("{longest}t");
        let cb = StatusCallback::from_form(body.as_bytes(), Some(&longer)).unwrap();
        assert_eq!(
            cb.idempotency_token, None,
            "too long: left out, the callback kept"
        );
        assert_eq!(e.source, EventSource::Callback);
        assert_eq!(e.raw, cb.raw);
    }

    #[test]
    fn an_address_longer_than_the_cap_is_left_out_and_the_callback_kept() {
        let longest = format!("+{}", "1".repeat(MAX_ADDRESS - 1));
        let longer = format!("{longest}2");
        let cb = StatusCallback::from_pairs(
            pairs(&[
                ("MessageSid", SID),
                ("MessageStatus", "delivered"),
                ("To", &longest),
                ("From", &longer),
            ]),
            None,
        )
        .unwrap();
        assert_eq!(cb.status, MessageStatus::Delivered);
        assert_eq!(cb.to.as_deref(), Some(longest.as_str()));
        assert_eq!(cb.from, None, "too long: left out");
        assert_eq!(cb.raw[3], ("From".to_owned(), longer), "the raw pair stays");
        let e = cb.to_event();
        assert_eq!((e.to.as_deref(), e.from), (Some(longest.as_str()), None));
    }

    #[test]
    fn falls_back_to_legacy_fields() {
        let cb = StatusCallback::from_pairs(pairs(&[("SmsSid", SID), ("SmsStatus", "sent")]), None)
            .unwrap();
        assert_eq!(cb.status, MessageStatus::Sent);
        assert_eq!(cb.account_sid, None);
    }

    #[test]
    fn malformed_callbacks_name_the_field() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("MessageStatus", "sent")], "MessageSid"),
            (&[("MessageSid", SID)], "MessageStatus"),
            (
                &[("MessageSid", ""), ("MessageStatus", "sent")],
                "MessageSid",
            ),
            (
                &[("MessageSid", "SMnope"), ("MessageStatus", "sent")],
                "MessageSid",
            ),
            (
                &[("MessageSid", SID), ("MessageStatus", "Sent!")],
                "MessageStatus",
            ),
            (
                &[
                    ("MessageSid", SID),
                    ("MessageStatus", "failed"),
                    ("ErrorCode", "3x"),
                ],
                "ErrorCode",
            ),
            (
                &[
                    ("MessageSid", SID),
                    ("MessageStatus", "sent"),
                    ("AccountSid", "AC1"),
                ],
                "AccountSid",
            ),
            (
                &[
                    ("MessageSid", SID),
                    ("SmsSid", "SM00000000000000000000000000000000"),
                    ("MessageStatus", "sent"),
                ],
                "MessageSid",
            ),
            (
                &[
                    ("MessageSid", SID),
                    ("MessageStatus", "sent"),
                    ("SmsStatus", "delivered"),
                ],
                "MessageStatus",
            ),
        ];
        for (items, name) in cases {
            let err = StatusCallback::from_pairs(pairs(items), None).unwrap_err();
            assert!(err.to_string().contains(name), "{err} should name {name}");
        }
    }

    #[test]
    fn unknown_status_and_bad_dlr_date_are_kept_not_rejected() {
        let cb = StatusCallback::from_pairs(
            pairs(&[
                ("MessageSid", SID),
                ("MessageStatus", "teleported"),
                ("RawDlrDoneDate", "2613999999"),
            ]),
            None,
        )
        .unwrap();
        assert_eq!(cb.status, MessageStatus::Unknown("teleported".into()));
        assert_eq!(cb.dlr_done_at, None);
        assert_eq!(cb.raw_dlr_done_date.as_deref(), Some("2613999999"));
    }
}
