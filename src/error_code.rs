//! `ErrorCode`: what Twilio's messaging error codes mean, and what to do about them.
//!
//! Twilio reports errors as numbers: in an API error (`21610` for a send to an unsubscribed
//! recipient) and in a message's `ErrorCode` (`30003`, unreachable handset). This table gives
//! each known messaging code Twilio's short description and a [`ErrorClass`] an app can act
//! on: try again later, never again to this recipient, the recipient opted out, the content was
//! filtered, the app or account is misconfigured, or the request itself was wrong. Codes not in
//! the table classify as [`ErrorClass::Unknown`]; nothing here panics.
//!
//! ```
//! use twilio_delivery::error_code::{ErrorClass, ErrorCode};
//!
//! let code = ErrorCode::new(21610);
//! assert_eq!(code.class(), ErrorClass::OptedOut);
//! assert_eq!(code.description(), Some("Attempt to send to unsubscribed recipient"));
//! assert_eq!(code.more_info(), "https://www.twilio.com/docs/errors/21610");
//! assert_eq!(ErrorCode::new(99999).class(), ErrorClass::Unknown);
//! ```

use std::fmt;

/// What an app should do about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorClass {
    /// Transient: the same message may succeed later (rate limits, queues, a handset out of
    /// coverage, Twilio or a carrier briefly unavailable).
    RetryLater,
    /// This recipient cannot get this kind of message (invalid, landline, unknown or blocking
    /// number): do not send again to it.
    PermanentForRecipient,
    /// The recipient unsubscribed (STOP): do not send until they opt in again.
    OptedOut,
    /// A carrier or channel filtered the content: change the content or the sender's
    /// registration, not the timing.
    ContentFiltered,
    /// The sender, account or registration is not set up for this (unverified numbers, a
    /// region not enabled, a suspended account, missing A2P/toll-free registration).
    Configuration,
    /// The request itself was wrong (a missing or invalid parameter): fix the code.
    InvalidRequest,
    /// A code this crate does not know.
    Unknown,
}

impl ErrorClass {
    /// A stable lower-case name (`retry_later`, `opted_out`, ...), for logs and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RetryLater => "retry_later",
            Self::PermanentForRecipient => "permanent_for_recipient",
            Self::OptedOut => "opted_out",
            Self::ContentFiltered => "content_filtered",
            Self::Configuration => "configuration",
            Self::InvalidRequest => "invalid_request",
            Self::Unknown => "unknown",
        }
    }

    /// Whether sending the same message again later may succeed.
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::RetryLater)
    }
}

/// A Twilio error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ErrorCode(u32);

use ErrorClass::{
    Configuration as Config, ContentFiltered as Filtered, InvalidRequest as Invalid,
    OptedOut as Opted, PermanentForRecipient as Permanent, RetryLater as Retry,
};

/// Twilio's messaging codes: (code, Twilio's short description, class). Descriptions follow
/// Twilio's error dictionary (`https://www.twilio.com/docs/errors/{code}`). Sorted by code.
const TABLE: &[(u32, &str, ErrorClass)] = &[
    (20001, "Unknown parameters", Invalid),
    (20003, "Permission denied: authentication failed", Config),
    (20004, "Method not allowed", Invalid),
    (
        20009,
        "Cannot delete this resource before it is complete",
        Invalid,
    ),
    (20404, "The requested resource was not found", Invalid),
    (20429, "Too many requests", Retry),
    (20503, "Service unavailable", Retry),
    (21211, "Invalid 'To' phone number", Permanent),
    (21212, "Invalid 'From' phone number", Config),
    (
        21408,
        "Permission to send an SMS has not been enabled for the region indicated by the 'To' number",
        Config,
    ),
    (21602, "Message body is required", Invalid),
    (21603, "A 'From' phone number is required", Invalid),
    (21604, "A 'To' phone number is required", Invalid),
    (
        21606,
        "The 'From' phone number is not a valid, message-capable Twilio number for this destination",
        Config,
    ),
    (
        21608,
        "The 'To' number is not verified for this trial account",
        Config,
    ),
    (21609, "Invalid 'StatusCallback'", Invalid),
    (21610, "Attempt to send to unsubscribed recipient", Opted),
    (
        21611,
        "This 'From' number has exceeded the maximum number of queued messages",
        Retry,
    ),
    (
        21612,
        "The 'To' phone number is not currently reachable via SMS",
        Permanent,
    ),
    (21614, "'To' number is not a valid mobile number", Permanent),
    (
        21617,
        "The concatenated message body exceeds the 1600 character limit",
        Invalid,
    ),
    (
        21619,
        "A text message body or media urls must be specified",
        Invalid,
    ),
    (21620, "Invalid media URL(s)", Invalid),
    (
        21621,
        "The 'From' number has not been enabled for MMS",
        Config,
    ),
    (
        21623,
        "Number of media files exceeds allowed limit",
        Invalid,
    ),
    (21624, "Invalid validity period value", Invalid),
    (21705, "Invalid Messaging Service SID", Config),
    (30001, "Queue overflow", Retry),
    (30002, "Account suspended", Config),
    (30003, "Unreachable destination handset", Retry),
    (30004, "Message blocked", Permanent),
    (30005, "Unknown destination handset", Permanent),
    (30006, "Landline or unreachable carrier", Permanent),
    (30007, "Message filtered", Filtered),
    (30008, "Unknown error", Retry),
    (30009, "Missing inbound segment", Retry),
    (30010, "Message price exceeds max price", Config),
    (30019, "Content size exceeds carrier limit", Filtered),
    (30022, "US A2P 10DLC: rate limits exceeded", Retry),
    (30023, "US A2P 10DLC: daily message cap reached", Retry),
    (
        30024,
        "Numeric sender ID not provisioned by carrier",
        Config,
    ),
    (30032, "Toll-free number has not been verified", Config),
    (
        30034,
        "US A2P 10DLC: message from an unregistered number",
        Config,
    ),
    (
        30400,
        "Invalid message update: only redacting the body or canceling is allowed",
        Invalid,
    ),
    (
        30409,
        "The message cannot be canceled in its current status",
        Invalid,
    ),
    (35111, "SendAt is required for a scheduled message", Invalid),
    (
        35114,
        "SendAt is outside the allowed scheduling window",
        Invalid,
    ),
    (35126, "Invalid ScheduleType", Invalid),
    (63001, "Channel could not authenticate the request", Config),
    (63003, "Channel could not find the 'To' address", Permanent),
    (
        63007,
        "Twilio could not find a channel with the 'From' address",
        Config,
    ),
    (
        63013,
        "The channel message violates a channel policy",
        Filtered,
    ),
    (
        63016,
        "Freeform message outside the channel's allowed window: use a template",
        Config,
    ),
    (63018, "Rate limit exceeded for the channel", Retry),
    (63024, "Invalid message recipient", Permanent),
];

impl ErrorCode {
    /// The code `code`, known or not.
    pub const fn new(code: u32) -> Self {
        Self(code)
    }

    /// The number.
    pub const fn code(self) -> u32 {
        self.0
    }

    fn entry(self) -> Option<&'static (u32, &'static str, ErrorClass)> {
        TABLE
            .binary_search_by_key(&self.0, |(code, _, _)| *code)
            .ok()
            .map(|i| &TABLE[i])
    }

    /// Whether the table knows the code.
    pub fn is_known(self) -> bool {
        self.entry().is_some()
    }

    /// Twilio's short description, when the code is known.
    pub fn description(self) -> Option<&'static str> {
        self.entry().map(|(_, description, _)| *description)
    }

    /// What to do about it ([`ErrorClass::Unknown`] for codes the table does not know).
    pub fn class(self) -> ErrorClass {
        self.entry()
            .map_or(ErrorClass::Unknown, |(_, _, class)| *class)
    }

    /// Twilio's page for the code.
    pub fn more_info(self) -> String {
        format!("https://www.twilio.com/docs/errors/{}", self.0)
    }

    /// Every code the table knows, ascending.
    pub fn known() -> impl Iterator<Item = ErrorCode> {
        TABLE.iter().map(|(code, _, _)| ErrorCode(*code))
    }
}

impl From<u32> for ErrorCode {
    fn from(code: u32) -> Self {
        Self(code)
    }
}

impl fmt::Display for ErrorCode {
    /// `30003 (Unreachable destination handset)`, or the bare number when unknown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.description() {
            Some(description) => write!(f, "{} ({description})", self.0),
            None => write!(f, "{}", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_and_unique() {
        assert!(TABLE.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(ErrorCode::known().all(|c| c.is_known() && c.class() != ErrorClass::Unknown));
    }

    #[test]
    fn unknown_codes_never_panic() {
        for code in [0, 1, 20000, 29999, 99999, u32::MAX] {
            let c = ErrorCode::new(code);
            assert_eq!(c.class(), ErrorClass::Unknown);
            assert_eq!(c.description(), None);
            assert_eq!(c.to_string(), code.to_string());
        }
        assert_eq!(
            ErrorCode::new(30003).to_string(),
            "30003 (Unreachable destination handset)"
        );
        assert!(ErrorCode::new(30003).class().is_retryable());
    }
}
