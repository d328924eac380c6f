//! `MessageStatus` and the max-register rule that makes callback order irrelevant.
//!
//! Twilio's status callbacks arrive out of order and repeated, and carry no timestamp. The
//! crate therefore never asks "which came last?" but "which is furthest along?": the current
//! status of a message is the **maximum** of every status ever observed for it under one total
//! order, its *precedence*:
//!
//! ```text
//! Unknown(_) < accepted < scheduled < queued < sending < receiving < sent
//!            < received < canceled < failed < undelivered < partially_delivered < delivered < read
//! ```
//!
//! Every non-final status ranks below every final one, so a final status is never replaced by a
//! non-final one (a late `sent` after `delivered` changes nothing). Among final statuses, the
//! order decides contradictory reports (evidence of delivery beats a report of failure; `read`
//! follows `delivered` on WhatsApp/RCS). Because the rule is a maximum, any permutation and
//! duplication of the same events folds to the same status, which the property tests prove.
//! Unknown statuses (ones Twilio adds later) never replace a known one; between two unknown
//! values the byte-wise larger name wins, only so that the result is still order-independent.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The status of a message, as in the spec's `message_enum_status`.
///
/// Unknown values (Twilio adds statuses without notice) parse into [`MessageStatus::Unknown`]
/// and round-trip unchanged.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
#[non_exhaustive]
pub enum MessageStatus {
    /// A Messaging Service accepted the message and is picking a sender (initial).
    Accepted,
    /// Scheduled for a later `SendAt` (initial).
    Scheduled,
    /// Queued for a sender.
    Queued,
    /// Being handed to the carrier.
    Sending,
    /// The carrier accepted the message.
    Sent,
    /// Could not be sent (final).
    Failed,
    /// The carrier or handset confirmed delivery (final; may go on to `read`).
    Delivered,
    /// The carrier reported that the message was not delivered (final).
    Undelivered,
    /// Inbound message being received.
    Receiving,
    /// Inbound message received (final).
    Received,
    /// Read receipt on WhatsApp/RCS (final).
    Read,
    /// Deprecated, still in the enum (treated as final).
    PartiallyDelivered,
    /// A scheduled message was canceled (final).
    Canceled,
    /// A status this version of the crate does not know, kept verbatim.
    Unknown(String),
}

impl MessageStatus {
    /// Every known status, in precedence order.
    pub const KNOWN: [MessageStatus; 13] = [
        MessageStatus::Accepted,
        MessageStatus::Scheduled,
        MessageStatus::Queued,
        MessageStatus::Sending,
        MessageStatus::Receiving,
        MessageStatus::Sent,
        MessageStatus::Received,
        MessageStatus::Canceled,
        MessageStatus::Failed,
        MessageStatus::Undelivered,
        MessageStatus::PartiallyDelivered,
        MessageStatus::Delivered,
        MessageStatus::Read,
    ];

    /// Parses a status as Twilio writes it (`"delivered"`); unknown values become `Unknown`.
    pub fn parse(s: &str) -> Self {
        match s {
            "accepted" => Self::Accepted,
            "scheduled" => Self::Scheduled,
            "queued" => Self::Queued,
            "sending" => Self::Sending,
            "sent" => Self::Sent,
            "failed" => Self::Failed,
            "delivered" => Self::Delivered,
            "undelivered" => Self::Undelivered,
            "receiving" => Self::Receiving,
            "received" => Self::Received,
            "read" => Self::Read,
            "partially_delivered" => Self::PartiallyDelivered,
            "canceled" => Self::Canceled,
            other => Self::Unknown(other.to_owned()),
        }
    }

    /// The status as Twilio writes it.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Unknown(s) => s,
            known => known.label(),
        }
    }

    /// The name of a known status, `unknown` for any other: a bounded value for metrics
    /// labels, which a peer sending made-up statuses cannot grow.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Scheduled => "scheduled",
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Failed => "failed",
            Self::Delivered => "delivered",
            Self::Undelivered => "undelivered",
            Self::Receiving => "receiving",
            Self::Received => "received",
            Self::Read => "read",
            Self::PartiallyDelivered => "partially_delivered",
            Self::Canceled => "canceled",
            Self::Unknown(_) => "unknown",
        }
    }

    /// Whether Twilio will not move the message on by itself any more.
    ///
    /// `sent` is not final (a delivery receipt may follow), and neither is an unknown status,
    /// so the reconciler keeps polling such messages.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Self::Failed
                | Self::Delivered
                | Self::Undelivered
                | Self::Received
                | Self::Read
                | Self::PartiallyDelivered
                | Self::Canceled
        )
    }

    /// Whether this is a status the crate does not know.
    pub fn is_unknown(&self) -> bool {
        matches!(self, Self::Unknown(_))
    }

    /// The rank of this status in the max-register order (0 for unknown statuses).
    ///
    /// Stores persist it so that a database can compare statuses without knowing their names.
    pub fn precedence(&self) -> u8 {
        match self {
            Self::Unknown(_) => 0,
            Self::Accepted => 1,
            Self::Scheduled => 2,
            Self::Queued => 3,
            Self::Sending => 4,
            Self::Receiving => 5,
            Self::Sent => 6,
            Self::Received => 7,
            Self::Canceled => 8,
            Self::Failed => 9,
            Self::Undelivered => 10,
            Self::PartiallyDelivered => 11,
            Self::Delivered => 12,
            Self::Read => 13,
        }
    }

    /// Compares two statuses in the max-register order (precedence, then name for unknowns).
    pub fn cmp_precedence(&self, other: &Self) -> Ordering {
        self.precedence()
            .cmp(&other.precedence())
            .then_with(|| match (self, other) {
                (Self::Unknown(a), Self::Unknown(b)) => a.as_bytes().cmp(b.as_bytes()),
                _ => Ordering::Equal,
            })
    }
}

impl FromStr for MessageStatus {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self::parse(s))
    }
}

impl From<String> for MessageStatus {
    fn from(s: String) -> Self {
        match Self::parse(&s) {
            Self::Unknown(_) => Self::Unknown(s),
            known => known,
        }
    }
}

impl From<MessageStatus> for String {
    fn from(s: MessageStatus) -> String {
        match s {
            MessageStatus::Unknown(s) => s,
            known => known.as_str().to_owned(),
        }
    }
}

impl fmt::Display for MessageStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for MessageStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown(s) => write!(f, "Unknown({s:?})"),
            known => f.write_str(known.as_str()),
        }
    }
}

/// What observing a status does to a message's current status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// The incoming status ranks above the current one (or there was none): it becomes current.
    Advanced,
    /// The incoming status is the current one.
    Duplicate,
    /// The incoming status ranks below the current one: it changes nothing.
    Stale,
}

impl Outcome {
    /// Whether the current status changes.
    pub fn changed(self) -> bool {
        self == Outcome::Advanced
    }
}

/// The max-register rule every store applies: what `incoming` does to `current`.
///
/// `current` is `None` for a message never seen before.
pub fn transition(current: Option<&MessageStatus>, incoming: &MessageStatus) -> Outcome {
    match current {
        None => Outcome::Advanced,
        Some(cur) => match incoming.cmp_precedence(cur) {
            Ordering::Greater => Outcome::Advanced,
            Ordering::Equal => Outcome::Duplicate,
            Ordering::Less => Outcome::Stale,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fold(events: &[MessageStatus]) -> Option<MessageStatus> {
        let mut cur: Option<MessageStatus> = None;
        for e in events {
            if transition(cur.as_ref(), e).changed() {
                cur = Some(e.clone());
            }
        }
        cur
    }

    fn any_status() -> impl Strategy<Value = MessageStatus> {
        prop_oneof![
            8 => proptest::sample::select(MessageStatus::KNOWN.to_vec()),
            1 => "[a-z_]{1,12}".prop_map(|s| MessageStatus::parse(&s)),
        ]
    }

    #[test]
    fn every_spec_value_round_trips() {
        for s in [
            "queued",
            "sending",
            "sent",
            "failed",
            "delivered",
            "undelivered",
            "receiving",
            "received",
            "accepted",
            "scheduled",
            "read",
            "partially_delivered",
            "canceled",
        ] {
            let st = MessageStatus::parse(s);
            assert!(!st.is_unknown(), "{s}");
            assert_eq!(st.as_str(), s);
            let json = serde_json::to_string(&st).unwrap();
            assert_eq!(serde_json::from_str::<MessageStatus>(&json).unwrap(), st);
        }
        let u: MessageStatus = serde_json::from_str("\"teleported\"").unwrap();
        assert_eq!(u, MessageStatus::Unknown("teleported".into()));
        assert_eq!(serde_json::to_string(&u).unwrap(), "\"teleported\"");
    }

    #[test]
    fn precedence_is_the_documented_order() {
        for w in MessageStatus::KNOWN.windows(2) {
            assert_eq!(
                w[0].cmp_precedence(&w[1]),
                Ordering::Less,
                "{:?} < {:?}",
                w[0],
                w[1]
            );
        }
        let last_non_final = MessageStatus::KNOWN
            .iter()
            .rposition(|s| !s.is_final())
            .unwrap();
        let first_final = MessageStatus::KNOWN
            .iter()
            .position(|s| s.is_final())
            .unwrap();
        assert!(
            last_non_final < first_final,
            "every final ranks above every non-final"
        );
    }

    #[test]
    fn late_sent_after_delivered_is_stale() {
        assert_eq!(
            transition(Some(&MessageStatus::Delivered), &MessageStatus::Sent),
            Outcome::Stale
        );
        assert_eq!(
            transition(Some(&MessageStatus::Delivered), &MessageStatus::Delivered),
            Outcome::Duplicate
        );
        assert_eq!(
            transition(Some(&MessageStatus::Delivered), &MessageStatus::Read),
            Outcome::Advanced
        );
        assert_eq!(
            transition(None, &MessageStatus::Unknown("x".into())),
            Outcome::Advanced
        );
    }

    proptest! {
        #[test]
        fn any_permutation_with_duplicates_folds_to_the_max(
            set in proptest::collection::vec(any_status(), 1..8),
            dups in proptest::collection::vec(0usize..64, 0..16),
            seed in any::<u64>(),
        ) {
            let mut events = set.clone();
            for d in dups { events.push(set[d % set.len()].clone()); }
            let mut rng = fastrand::Rng::with_seed(seed);
            rng.shuffle(&mut events);
            let max = set.iter().cloned().max_by(|a, b| a.cmp_precedence(b));
            prop_assert_eq!(fold(&events), max.clone());
            events.reverse();
            prop_assert_eq!(fold(&events), max);
        }

        #[test]
        fn unknown_never_replaces_a_known_status(known in proptest::sample::select(MessageStatus::KNOWN.to_vec()), name in "[a-z]{1,10}") {
            let unknown = MessageStatus::Unknown(format!("x{name}"));
            prop_assert_eq!(transition(Some(&known), &unknown), Outcome::Stale);
            prop_assert_eq!(transition(Some(&unknown), &known), Outcome::Advanced);
        }

        #[test]
        fn a_final_status_is_only_left_for_a_higher_final_one(
            events in proptest::collection::vec(any_status(), 1..24),
        ) {
            let mut cur: Option<MessageStatus> = None;
            for e in &events {
                let before = cur.clone();
                if transition(cur.as_ref(), e).changed() { cur = Some(e.clone()); }
                if let (Some(b), Some(c)) = (&before, &cur)
                    && b.is_final()
                    && b != c
                {
                    prop_assert!(c.is_final(), "{:?} left for non-final {:?}", b, c);
                    prop_assert!(c.cmp_precedence(b) == Ordering::Greater);
                }
            }
        }
    }
}
