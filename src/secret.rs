//! Secrets (`AuthToken`, `ApiKeySecret`, `KeySecret`): never printed, never logged.

use std::fmt;

macro_rules! secret_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        ///
        /// `Debug` prints `[redacted]`; there is no `Display`, so the value cannot end up in a
        /// log line or an error message by accident. Read it with [`expose`](Self::expose).
        #[derive(Clone, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            /// Wraps a secret value.
            pub fn new(secret: impl Into<String>) -> Self {
                Self(secret.into())
            }

            /// The secret itself. Call only where the value is actually used (signing, auth).
            pub fn expose(&self) -> &str {
                &self.0
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}([redacted])", stringify!($name))
            }
        }
    };
}

secret_type!(
    /// An account's auth token: the Basic-auth password and the webhook signing key.
    AuthToken
);
secret_type!(
    /// The secret half of an API key (`SK…`), used as the Basic-auth password.
    ApiKeySecret
);

/// The secret bytes of a webhook signing key (an auth token, or a SharedKey secret for
/// HMAC-SHA256), used as the HMAC key exactly as given. `Debug` prints `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct KeySecret(Vec<u8>);

impl KeySecret {
    /// Wraps secret bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }

    /// The secret bytes. Call only where the value is actually used (keying an HMAC).
    pub(crate) fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for KeySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeySecret([redacted])")
    }
}

impl From<AuthToken> for KeySecret {
    fn from(token: AuthToken) -> Self {
        Self::from(&token)
    }
}

impl From<&AuthToken> for KeySecret {
    fn from(token: &AuthToken) -> Self {
        Self::new(token.expose().as_bytes())
    }
}

impl From<Vec<u8>> for KeySecret {
    fn from(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
}

impl From<&[u8]> for KeySecret {
    fn from(bytes: &[u8]) -> Self {
        Self::new(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let t = AuthToken::new("f7e6d5c4b3a2918071605f4e3d2c1b0a");
        let d = format!("{t:?}");
        assert_eq!(d, "AuthToken([redacted])");
        assert!(!d.contains("f7e6"));
        assert_eq!(t.expose(), "f7e6d5c4b3a2918071605f4e3d2c1b0a");
        let s = ApiKeySecret::from("hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
        let k = KeySecret::from(&t);
        assert_eq!(format!("{k:?}"), "KeySecret([redacted])");
        assert_eq!(k.expose(), t.expose().as_bytes());
    }
}
