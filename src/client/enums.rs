//! The Messages API's string enums, each with a fallback variant for values Twilio adds later.

use std::fmt;

macro_rules! string_enum {
    (
        $(#[$doc:meta])*
        $name:ident, $fallback:ident, $fallback_doc:literal,
        [ $( $(#[$vdoc:meta])* $variant:ident = $wire:literal ),+ $(,)? ]
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(from = "String", into = "String")]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vdoc])* $variant, )+
            #[doc = $fallback_doc]
            $fallback(String),
        }

        impl $name {
            /// Parses the value as Twilio writes it; unknown values land in the fallback variant.
            pub fn parse(s: &str) -> Self {
                match s {
                    $( $wire => Self::$variant, )+
                    other => Self::$fallback(other.to_owned()),
                }
            }

            /// The value as Twilio writes it.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $wire, )+
                    Self::$fallback(s) => s,
                }
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                match Self::parse(&s) {
                    Self::$fallback(_) => Self::$fallback(s),
                    known => known,
                }
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self::parse(s)
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                match v {
                    $name::$fallback(s) => s,
                    known => known.as_str().to_owned(),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

string_enum!(
    /// The direction of a message (`direction` in the Message resource).
    Direction, Unknown, "A direction this version of the crate does not know, kept verbatim.",
    [
        /// An incoming message.
        Inbound = "inbound",
        /// Created through the REST API.
        OutboundApi = "outbound-api",
        /// Created during a call.
        OutboundCall = "outbound-call",
        /// Created in response to an incoming message.
        OutboundReply = "outbound-reply",
    ]
);

string_enum!(
    /// Whether Twilio may keep the message content (`ContentRetention`).
    ContentRetention, Other, "A value not in the spec when this crate was written, sent verbatim.",
    [
        /// Keep the content.
        Retain = "retain",
        /// Discard the content.
        Discard = "discard",
    ]
);

string_enum!(
    /// Whether Twilio may keep the addresses (`AddressRetention`).
    AddressRetention, Other, "A value not in the spec when this crate was written, sent verbatim.",
    [
        /// Keep the addresses.
        Retain = "retain",
        /// Obfuscate the addresses.
        Obfuscate = "obfuscate",
    ]
);

string_enum!(
    /// How a message is scheduled (`ScheduleType`); only `fixed` exists today.
    ScheduleType, Other, "A value not in the spec when this crate was written, sent verbatim.",
    [
        /// Send at the fixed time given in `SendAt`.
        Fixed = "fixed",
    ]
);

string_enum!(
    /// Whether Twilio runs its risk checks on the message (`RiskCheck`).
    RiskCheck, Other, "A value not in the spec when this crate was written, sent verbatim.",
    [
        /// Run the risk checks (the default).
        Enable = "enable",
        /// Skip the risk checks.
        Disable = "disable",
    ]
);

string_enum!(
    /// The traffic type of a message (`TrafficType`).
    TrafficType, Other, "A value not in the spec when this crate was written, sent verbatim.",
    [
        /// Free traffic.
        Free = "free",
    ]
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_and_unknown_values_round_trip() {
        assert_eq!(Direction::parse("outbound-api"), Direction::OutboundApi);
        let d: Direction = serde_json::from_str("\"outbound-rcs\"").unwrap();
        assert_eq!(d, Direction::Unknown("outbound-rcs".into()));
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"outbound-rcs\"");
        assert_eq!(RiskCheck::Disable.as_str(), "disable");
        assert_eq!(String::from(ContentRetention::Discard), "discard");
        assert_eq!(ScheduleType::from("fixed"), ScheduleType::Fixed);
        assert_eq!(TrafficType::Other("paid".into()).to_string(), "paid");
        assert_eq!(
            AddressRetention::parse("obfuscate"),
            AddressRetention::Obfuscate
        );
    }
}
