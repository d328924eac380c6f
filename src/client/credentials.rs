//! The Basic-auth credentials of the client: the account's auth token or an API key.

use std::fmt;

use crate::ids::{AccountSid, ApiKeySid};
use crate::secret::{ApiKeySecret, AuthToken};

/// Who the client authenticates as. The account SID is always in the request path.
#[derive(Clone)]
pub(crate) enum Credentials {
    /// `AccountSid:AuthToken`.
    AuthToken(AuthToken),
    /// `SK…:secret`.
    ApiKey(ApiKeySid, ApiKeySecret),
}

impl Credentials {
    /// The Basic-auth user name and password.
    pub(crate) fn basic<'a>(&'a self, account_sid: &'a AccountSid) -> (&'a str, &'a str) {
        match self {
            Credentials::AuthToken(token) => (account_sid.as_str(), token.expose()),
            Credentials::ApiKey(sid, secret) => (sid.as_str(), secret.expose()),
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::AuthToken(_) => f.write_str("AuthToken([redacted])"),
            Credentials::ApiKey(sid, _) => write!(f, "ApiKey({sid}, [redacted])"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_pairs_and_redacted_debug() {
        let ac = AccountSid::new("AC0123456789abcdef0123456789abcdef").unwrap();
        let c = Credentials::AuthToken(AuthToken::new("tok-secret"));
        assert_eq!(c.basic(&ac), (ac.as_str(), "tok-secret"));
        assert!(!format!("{c:?}").contains("tok-secret"));
        let sk = ApiKeySid::new("SK0123456789abcdef0123456789abcdef").unwrap();
        let c = Credentials::ApiKey(sk.clone(), ApiKeySecret::new("key-secret"));
        assert_eq!(c.basic(&ac), (sk.as_str(), "key-secret"));
        assert!(!format!("{c:?}").contains("key-secret"));
    }
}
