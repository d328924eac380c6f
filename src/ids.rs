//! Validated Twilio identifiers: `AC…`, `SM…`/`MM…`, `MG…` and `SK…` SIDs.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a string is not a valid SID of the expected kind.
///
/// The message names the kind and what was wrong, never the rejected text itself
/// (a mistyped credential can end up in a SID field).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SidError {
    /// The value was empty.
    #[error("{kind} is empty")]
    Empty {
        /// The kind of SID expected, e.g. `MessageSid`.
        kind: &'static str,
    },
    /// The value had the wrong length.
    #[error("{kind} must be 34 characters, got {len}")]
    Length {
        /// The kind of SID expected.
        kind: &'static str,
        /// The length received, in bytes.
        len: usize,
    },
    /// The two-letter prefix was not one the kind allows.
    #[error("{kind} must start with {expected}")]
    Prefix {
        /// The kind of SID expected.
        kind: &'static str,
        /// The allowed prefixes, e.g. `SM or MM`.
        expected: &'static str,
    },
    /// A character after the prefix was not a hexadecimal digit.
    #[error("{kind} must have 32 hexadecimal digits after its prefix")]
    NotHex {
        /// The kind of SID expected.
        kind: &'static str,
    },
}

fn check_sid(
    kind: &'static str,
    prefixes: &[&str],
    expected: &'static str,
    s: &str,
) -> Result<(), SidError> {
    if s.is_empty() {
        return Err(SidError::Empty { kind });
    }
    if s.len() != 34 {
        return Err(SidError::Length { kind, len: s.len() });
    }
    if !prefixes
        .iter()
        .any(|p| s.as_bytes().starts_with(p.as_bytes()))
    {
        return Err(SidError::Prefix { kind, expected });
    }
    if !s.as_bytes()[2..].iter().all(u8::is_ascii_hexdigit) {
        return Err(SidError::NotHex { kind });
    }
    Ok(())
}

macro_rules! sid_type {
    ($(#[$doc:meta])* $name:ident, [$($prefix:literal),+], $expected:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Parses and validates a SID.
            ///
            /// # Errors
            /// [`SidError`] when the value is empty, not 34 characters, has the wrong
            /// prefix or is not hexadecimal after the prefix.
            pub fn new(s: impl Into<String>) -> Result<Self, SidError> {
                let s = s.into();
                check_sid(stringify!($name), &[$($prefix),+], $expected, &s)?;
                Ok(Self(s))
            }

            /// The SID as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = SidError;
            fn from_str(s: &str) -> Result<Self, SidError> {
                Self::new(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = SidError;
            fn try_from(s: String) -> Result<Self, SidError> {
                Self::new(s)
            }
        }

        impl From<$name> for String {
            fn from(sid: $name) -> String {
                sid.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }
    };
}

sid_type!(
    /// An account SID: `AC` followed by 32 hexadecimal digits.
    AccountSid, ["AC"], "AC"
);
sid_type!(
    /// A message SID: `SM` (SMS) or `MM` (MMS) followed by 32 hexadecimal digits.
    MessageSid, ["SM", "MM"], "SM or MM"
);
sid_type!(
    /// A Messaging Service SID: `MG` followed by 32 hexadecimal digits.
    MessagingServiceSid, ["MG"], "MG"
);
sid_type!(
    /// An API key SID: `SK` followed by 32 hexadecimal digits.
    ApiKeySid, ["SK"], "SK"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_sids_round_trip() {
        let s = "SMfedcba9876543210fedcba9876543210";
        let sid: MessageSid = s.parse().unwrap();
        assert_eq!(sid.as_str(), s);
        assert_eq!(sid.to_string(), s);
        assert!(MessageSid::new("MM0123456789abcdef0123456789ABCDEF").is_ok());
        let json = serde_json::to_string(&sid).unwrap();
        assert_eq!(json, format!("\"{s}\""));
        let back: MessageSid = serde_json::from_str(&json).unwrap();
        assert_eq!(back, sid);
    }

    #[test]
    fn invalid_sids_say_why_without_echoing() {
        assert_eq!(
            AccountSid::new(""),
            Err(SidError::Empty { kind: "AccountSid" })
        );
        let e = AccountSid::new("ACsecret").unwrap_err();
        assert!(matches!(e, SidError::Length { len: 8, .. }));
        assert!(!e.to_string().contains("secret"));
        assert!(matches!(
            AccountSid::new("SM0123456789abcdef0123456789abcdef"),
            Err(SidError::Prefix { .. })
        ));
        assert!(matches!(
            MessageSid::new("SM0123456789abcdef0123456789abcdeg"),
            Err(SidError::NotHex { .. })
        ));
        // Multi-byte text of the right byte length must not panic on slicing.
        assert!(MessageSid::new("SMé123456789abcdef0123456789abcde").is_err());
        assert!(serde_json::from_str::<MessageSid>("\"nope\"").is_err());
    }
}
