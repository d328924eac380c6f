//! `SignatureValidator` and `sign()`: Twilio's `X-Twilio-Signature`, to the last byte.
//!
//! Placeholder API; the full validator is built in issue 2.

use base64::Engine as _;
use hmac::{Hmac, Mac};

use crate::secret::AuthToken;

/// Signs a request as Twilio does with HMAC-SHA1: the URL followed by every parameter's key and
/// value, sorted by key then value, exact duplicates dropped; returns the base64 signature.
///
/// `params` are the decoded form pairs of a POST (empty for GET and JSON requests).
pub fn sign<K, V>(auth_token: &AuthToken, url: &str, params: &[(K, V)]) -> String
where
    K: AsRef<str>,
    V: AsRef<str>,
{
    let mut pairs: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_ref(), v.as_ref()))
        .collect();
    pairs.sort_unstable_by(|a, b| {
        a.0.as_bytes()
            .cmp(b.0.as_bytes())
            .then(a.1.as_bytes().cmp(b.1.as_bytes()))
    });
    pairs.dedup();
    let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(auth_token.expose().as_bytes()) else {
        unreachable!("HMAC accepts keys of any length")
    };
    mac.update(url.as_bytes());
    for (k, v) in pairs {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The MAC algorithm of a signing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// HMAC-SHA1, Twilio's classic `X-Twilio-Signature`.
    HmacSha1,
    /// HMAC-SHA256, Twilio's 2026 "SharedKey" beta.
    HmacSha256,
}

/// Why a request's signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// No signature header.
    #[error("missing X-Twilio-Signature header")]
    Missing,
    /// The signature did not match.
    #[error("signature does not match")]
    Mismatch,
}

/// Validates Twilio webhook signatures.
#[derive(Debug, Clone)]
pub struct SignatureValidator {
    _keys: Vec<AuthToken>,
}

impl SignatureValidator {
    /// A validator for one auth token.
    pub fn new(auth_token: AuthToken) -> Self {
        Self {
            _keys: vec![auth_token],
        }
    }

    /// Validates a request given its public URL, headers and raw body.
    ///
    /// # Errors
    /// [`SignatureError`] when the signature is missing or wrong.
    pub fn validate_http(
        &self,
        _method: &http::Method,
        _url: &str,
        _headers: &http::HeaderMap,
        _body: &[u8],
    ) -> Result<(), SignatureError> {
        Err(SignatureError::Mismatch)
    }
}
