//! Twilio webhook signatures (`X-Twilio-Signature`): [`SignatureValidator`] checks them as
//! Twilio's official libraries do, [`sign`] / [`sign_with`] produce them for tests and the emulator.
//!
//! # What Twilio signs
//!
//! `X-Twilio-Signature = base64(HMAC-SHA1(key = auth token, URL + key1 + value1 + key2 + ...))`:
//! - **URL**: the URL Twilio called, exactly as configured (host case, path, query order and
//!   encoding untouched), which is configuration of your app ([`PublicUrl`]) since a proxy hides
//!   it. Twilio has signed URLs with and without the port, so when the URL as given fails, it is
//!   tried with its port toggled, then with the builder's opt-in variants ([`UrlCandidate`]).
//! - **What follows it** ([`SigningMode`]): a form's decoded pairs, sorted by key then value,
//!   exact duplicates dropped; nothing for a `GET` or a JSON body, whose SHA-256 Twilio adds to
//!   the URL as `bodySHA256` ([`url_with_body_sha256`]), checked against the raw body.
//! - **Sort order** is that of bytes, which is code point order (twilio-python). twilio-node,
//!   -java and -csharp compare UTF-16 code units, which differs only where a character above
//!   U+FFFF meets one from U+E000 to U+FFFF: for such a body, and only then, that order is tried
//!   too, after the byte order failed on every URL candidate.
//! - **Keys**: the auth tokens with HMAC-SHA1 (primary and secondary during rotation); with
//!   `X-Twilio-Webhooks-Signature-Settings: key=<id>,algorithm=HMAC_SHA256`, exactly, the
//!   HMAC-SHA256 SharedKey of that id and nothing else. [`Verified`] says which key matched;
//!   [`SignatureValidator::validate`] gives the checks in order.
//! - The comparison is constant-time; a bad header is a [`SignatureError`], never a panic.
//!
//! # Cost
//!
//! Plain code on `hmac`, `sha1`, `sha2` and `base64`: no `unsafe`, no SIMD intrinsics, nothing
//! derived from a key kept outside its validator. An 8-parameter status callback costs about
//! 2× one pre-keyed HMAC-SHA1 over the same bytes, a rejection about 3.5×, a 1 KiB JSON body
//! about 3.1× (the body's SHA-256 alone is 2.2×): around a microsecond (README, Performance).
//!
//! [`PublicUrl`]: crate::endpoint::PublicUrl
//!
//! # Example
//!
//! Twilio's documented example:
//!
//! ```
//! use twilio_delivery::{AuthToken, signature::SignatureValidator};
//!
//! let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
//! let body = "CallSid=CA1234567890ABCDE&Caller=%2B14158675309&Digits=1234\
//!             &From=%2B14158675309&To=%2B18005551212";
//! let mut headers = http::HeaderMap::new();
//! headers.insert("content-type", "application/x-www-form-urlencoded".parse()?);
//! headers.insert("x-twilio-signature", "RSOYDt4T1cUTdK1PDd93/VVr8B8=".parse()?);
//! let validator = SignatureValidator::new(AuthToken::new("12345"));
//! let verified = validator.validate_http(&http::Method::POST, url, &headers, body.as_bytes())?;
//! assert_eq!(verified.key_id(), "primary");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;

use base64::Engine as _;
use sha2::Digest as _;

use crate::secret::AuthToken;

mod candidates;
mod error;
mod form;
mod keys;
mod settings;
mod validator;

pub use crate::secret::KeySecret;
pub use candidates::{PortChange, Stripped, UrlCandidate};
pub use error::{ConfigError, SignatureError};
pub use validator::{PRIMARY_KEY_ID, SignatureValidator, SignatureValidatorBuilder};
pub use validator::{SignedRequest, SigningMode, Verified};

/// The signature header's name, lower-case.
pub const SIGNATURE_HEADER: &str = "x-twilio-signature";

/// The header announcing the key and algorithm of a signature, lower-case.
pub const SETTINGS_HEADER: &str = "x-twilio-webhooks-signature-settings";

/// The MAC algorithm of a signing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// HMAC-SHA1, Twilio's classic `X-Twilio-Signature` (28 base64 characters).
    HmacSha1,
    /// HMAC-SHA256, Twilio's 2026 "SharedKey" beta (44 base64 characters).
    HmacSha256,
}

impl Algorithm {
    /// Length of the MAC in bytes.
    fn output_len(self) -> usize {
        match self {
            Self::HmacSha1 => 20,
            Self::HmacSha256 => 32,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::HmacSha1 => "HMAC-SHA1",
            Self::HmacSha256 => "HMAC-SHA256",
        })
    }
}

/// Signs a request as Twilio does with HMAC-SHA1: the URL followed by every parameter's key and
/// value, sorted by key then value (bytes), exact duplicates dropped; returns the base64 signature.
///
/// `params` are the decoded form pairs of a POST (empty for GET and JSON requests; for JSON,
/// sign the URL returned by [`url_with_body_sha256`]).
pub fn sign<K, V>(auth_token: &AuthToken, url: &str, params: &[(K, V)]) -> String
where
    K: AsRef<str>,
    V: AsRef<str>,
{
    let token = auth_token.expose().as_bytes();
    sign_with(Algorithm::HmacSha1, token, url, params)
}

/// Signs a request like [`sign`] with any algorithm and raw key bytes (an HMAC-SHA256 SharedKey
/// secret, for instance).
pub fn sign_with<K, V>(algorithm: Algorithm, key: &[u8], url: &str, params: &[(K, V)]) -> String
where
    K: AsRef<str>,
    V: AsRef<str>,
{
    let mut pairs: Vec<_> = params
        .iter()
        .map(|(k, v)| (k.as_ref(), v.as_ref()))
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    let Some(mac) = keys::KeyedMac::new(algorithm, key) else {
        unreachable!("HMAC accepts keys of any length")
    };
    let pieces = pairs.iter().flat_map(|(k, v)| [k.as_bytes(), v.as_bytes()]);
    let tag = mac.tag(std::iter::once(url.as_bytes()).chain(pieces));
    base64::engine::general_purpose::STANDARD.encode(tag)
}

/// The URL with `bodySHA256=<lowercase hex SHA-256 of body>` appended to its query (after `?` or
/// `&`, before any `#fragment`), as Twilio does before signing a JSON request.
pub fn url_with_body_sha256(url: &str, body: &[u8]) -> String {
    let hex = String::from_utf8_lossy(&sha256_hex(body)).into_owned();
    let (before, fragment) = url.split_at(url.find('#').unwrap_or(url.len()));
    let sep = match before.split_once('?') {
        None => "?",
        Some((_, query)) if query.is_empty() || query.ends_with('&') => "",
        Some(_) => "&",
    };
    format!("{before}{sep}bodySHA256={hex}{fragment}")
}

/// The lowercase hex SHA-256 of `body`.
fn sha256_hex(body: &[u8]) -> [u8; 64] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut hex = [0; 64];
    for (digits, byte) in hex.chunks_exact_mut(2).zip(sha2::Sha256::digest(body)) {
        digits.copy_from_slice(&[
            DIGITS[usize::from(byte >> 4)],
            DIGITS[usize::from(byte & 15)],
        ]);
    }
    hex
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answer() {
        let params = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ];
        let token = AuthToken::new("12345");
        assert_eq!(
            sign(
                &token,
                "https://mycompany.com/myapp.php?foo=1&bar=2",
                &params
            ),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
        assert_eq!(
            sign(
                &token,
                "https://mycompany.com:443/myapp.php?foo=1&bar=2",
                &params
            ),
            "kvajT1Ptam85bY51eRf/AJRuM3w="
        );
    }

    #[test]
    fn body_sha256_url() {
        let body = br#"{"property": "value", "boolean": true}"#;
        let hash = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";
        assert_eq!(
            url_with_body_sha256("https://h/p?foo=1", body),
            format!("https://h/p?foo=1&bodySHA256={hash}")
        );
        assert_eq!(
            url_with_body_sha256("https://h/p", body),
            format!("https://h/p?bodySHA256={hash}")
        );
        assert_eq!(
            url_with_body_sha256("https://h/p?#f", body),
            format!("https://h/p?bodySHA256={hash}#f")
        );
        assert_eq!(
            url_with_body_sha256("https://h/p?a=1&", body),
            format!("https://h/p?a=1&bodySHA256={hash}")
        );
        assert_eq!(
            url_with_body_sha256("https://h/p??", body),
            format!("https://h/p??&bodySHA256={hash}")
        );
    }
}
