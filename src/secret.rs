//! Secrets (`AuthToken`, `ApiKeySecret`): never printed, never logged.

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
    }
}
