//! HTTP Basic authentication with the account's auth token or an API key (`SK…` + secret).

use axum::http::{HeaderMap, header};
use base64::Engine as _;
use subtle::ConstantTimeEq;

use super::api_error::ApiError;
use twilio_delivery::ids::{AccountSid, ApiKeySid};
use twilio_delivery::secret::{ApiKeySecret, AuthToken};

/// The credentials the emulator accepts.
#[derive(Debug, Clone)]
pub(crate) struct Credentials {
    pub(crate) account_sid: AccountSid,
    pub(crate) auth_token: AuthToken,
    pub(crate) api_keys: Vec<(ApiKeySid, ApiKeySecret)>,
}

/// Constant-time equality of two secrets.
fn same(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

impl Credentials {
    /// Checks the `Authorization` header and that the path's account is this account.
    /// Any failure is Twilio's 401 with code 20003.
    pub(crate) fn check(&self, headers: &HeaderMap, path_account: &str) -> Result<(), ApiError> {
        let (user, password) = basic(headers).ok_or_else(ApiError::authenticate)?;
        let valid = if user == self.account_sid.as_str() {
            same(&password, self.auth_token.expose())
        } else {
            self.api_keys
                .iter()
                .any(|(sid, secret)| sid.as_str() == user && same(&password, secret.expose()))
        };
        if valid && path_account == self.account_sid.as_str() {
            Ok(())
        } else {
            Err(ApiError::authenticate())
        }
    }
}

/// The user and password of a Basic `Authorization` header, if it is well formed.
fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn creds() -> Credentials {
        Credentials {
            account_sid: AccountSid::new("AC0123456789abcdef0123456789abcdef").unwrap(),
            auth_token: AuthToken::new("token"),
            api_keys: vec![(
                ApiKeySid::new("SK0123456789abcdef0123456789abcdef").unwrap(),
                ApiKeySecret::new("secret"),
            )],
        }
    }

    fn with(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    fn basic_of(user: &str, pass: &str) -> HeaderMap {
        let enc = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        with(&format!("Basic {enc}"))
    }

    #[test]
    fn accepts_token_and_api_key_only() {
        let c = creds();
        let acct = "AC0123456789abcdef0123456789abcdef";
        assert!(c.check(&basic_of(acct, "token"), acct).is_ok());
        assert!(
            c.check(
                &basic_of("SK0123456789abcdef0123456789abcdef", "secret"),
                acct
            )
            .is_ok()
        );
        assert!(c.check(&basic_of(acct, "wrong"), acct).is_err());
        assert!(
            c.check(
                &basic_of("SK0123456789abcdef0123456789abcdef", "token"),
                acct
            )
            .is_err()
        );
        assert!(
            c.check(
                &basic_of(acct, "token"),
                "AC0000000000000000000000000000000f"
            )
            .is_err()
        );
        assert!(c.check(&HeaderMap::new(), acct).is_err());
        assert!(c.check(&with("Basic !!!"), acct).is_err());
        assert!(c.check(&with("Bearer abc"), acct).is_err());
        assert!(c.check(&with("Basic"), acct).is_err());
    }
}
