//! Twilio webhook signatures (`X-Twilio-Signature`): [`SignatureValidator`] checks them to the
//! last byte, [`sign`] / [`sign_with`] produce them for tests and the emulator.
//!
//! # How Twilio signs a webhook
//!
//! ```text
//! string_to_sign = URL + for key in sorted(keys), for value in sorted(distinct values of key): key + value
//! X-Twilio-Signature = base64(HMAC-SHA1(key = auth token, string_to_sign))
//! ```
//!
//! - **URL** is the URL Twilio called, exactly as configured: host case, path, query order and
//!   encoding untouched. It is configuration of your app (see [`PublicUrl`]), because a proxy hides it.
//!   Twilio has signed URLs both with and without the port, so the validator tries the URL as given,
//!   then (only if that fails) with its port toggled: `:443`/`:80` added when absent, any port
//!   removed when present. Only the authority part of the string is edited. Opt-in variants
//!   (builder's `try_without_*`) also try the URL without `user:pass@`, without the lone `/` of a
//!   bare host, or without its `#fragment`, where Twilio's behaviour is unconfirmed.
//! - **What is signed** depends on the request ([`SigningMode`]): a form POST
//!   (`application/x-www-form-urlencoded`) signs every decoded body pair, sorted by key then value
//!   (bytes), exact duplicates dropped; a `GET` signs the URL alone; any other body (JSON) signs
//!   the URL alone, to which Twilio added `bodySHA256=<lowercase hex SHA-256 of the body>`, and the
//!   validator checks that hash against the raw body (a missing `bodySHA256` is an error).
//! - **Keys**: the auth token of the account (primary and secondary during rotation, sub-accounts
//!   have their own), or an HMAC-SHA256 "SharedKey" announced by
//!   `X-Twilio-Webhooks-Signature-Settings: key=<id>,algorithm=HMAC_SHA256`. The validator holds
//!   several keys, each with an id, and reports which one matched ([`Verified`]).
//! - The comparison is constant-time. A missing, empty, non-base64 or wrong-length header is a
//!   [`SignatureError`], never a panic.
//!
//! # Cost
//!
//! Validating a status callback costs about as much as one bare HMAC-SHA1 over its
//! string-to-sign, keyed from the token (the README's performance section has the figures).
//! - Each key's HMAC state is computed once, when the validator is built.
//! - The form body is split, decoded and sorted in a per-thread scratch space that is reused, so a
//!   validation in steady state allocates nothing. The string-to-sign is laid out in one piece, so
//!   the hash reads whole blocks straight from it.
//! - The port-toggled URL is only built and tried when the URL as given fails.
//! - Each thread keeps, per key, the HMAC state after the first 64 bytes of the last two
//!   strings-to-sign it checked (a few hundred bytes). Every callback of one account to one URL
//!   begins with the same 64 bytes: the URL, then `AccountSid` and the account's SID, the first
//!   parameter in sorted order. So that compression is done once per thread, and a miss costs a
//!   64-byte comparison and a copy of the state.
//! - That comparison is constant-time. A hit or miss only tells whether a request's first 64
//!   bytes equal those of a recent request on that thread, and a miss evicts an entry, so a prober
//!   gets one comparison per genuine callback. The cached states are derived from the key, like
//!   the validator's own; they stay in the thread until evicted (a dropped validator's entries
//!   can never match again: every keying has an id of its own).
//!
//! # Example
//!
//! ```
//! use twilio_delivery::AuthToken;
//! use twilio_delivery::signature::{SignatureValidator, UrlCandidate, sign};
//!
//! let token = AuthToken::new("12345");
//! let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
//! let body = "CallSid=CA1234567890ABCDE&Caller=%2B14158675309&Digits=1234\
//!             &From=%2B14158675309&To=%2B18005551212";
//! let params = [
//!     ("CallSid", "CA1234567890ABCDE"),
//!     ("Caller", "+14158675309"),
//!     ("Digits", "1234"),
//!     ("From", "+14158675309"),
//!     ("To", "+18005551212"),
//! ];
//! let signature = sign(&token, url, &params);
//! assert_eq!(signature, "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
//!
//! let mut headers = http::HeaderMap::new();
//! headers.insert("content-type", "application/x-www-form-urlencoded".parse()?);
//! headers.insert("x-twilio-signature", signature.parse()?);
//! let validator = SignatureValidator::new(token);
//! let verified = validator.validate_http(&http::Method::POST, url, &headers, body.as_bytes())?;
//! assert_eq!(verified.key_id(), "primary");
//! assert_eq!(verified.candidate(), UrlCandidate::AsGiven);
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
mod public_url;
mod scan;
mod settings;
mod validator;

pub use candidates::{PortChange, Stripped, UrlCandidate};
pub use error::{ConfigError, SignatureError};
pub use keys::KeySecret;
pub use public_url::{PublicUrl, PublicUrlError, Scheme, TrustedProxy};
pub use validator::{
    PRIMARY_KEY_ID, SignatureValidator, SignatureValidatorBuilder, SignedRequest, SigningMode,
    Verified,
};

use keys::KeyedMac;

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

    fn from_output_len(len: usize) -> Option<Self> {
        match len {
            20 => Some(Self::HmacSha1),
            32 => Some(Self::HmacSha256),
            _ => None,
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
/// value, sorted by key then value, exact duplicates dropped; returns the base64 signature.
///
/// `params` are the decoded form pairs of a POST (empty for GET and JSON requests; for JSON,
/// sign the URL returned by [`url_with_body_sha256`]).
pub fn sign<K, V>(auth_token: &AuthToken, url: &str, params: &[(K, V)]) -> String
where
    K: AsRef<str>,
    V: AsRef<str>,
{
    sign_with(
        Algorithm::HmacSha1,
        auth_token.expose().as_bytes(),
        url,
        params,
    )
}

/// Signs a request like [`sign`] with any algorithm and raw key bytes (an HMAC-SHA256 SharedKey
/// secret, for instance).
pub fn sign_with<K, V>(algorithm: Algorithm, key: &[u8], url: &str, params: &[(K, V)]) -> String
where
    K: AsRef<str>,
    V: AsRef<str>,
{
    let mut pairs: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_ref(), v.as_ref()))
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    let Some(mac) = KeyedMac::new(algorithm, key) else {
        unreachable!("HMAC accepts keys of any length")
    };
    let tag = mac.sign(
        [url],
        pairs.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())),
    );
    base64::engine::general_purpose::STANDARD.encode(tag)
}

/// The URL with `bodySHA256=<lowercase hex SHA-256 of body>` appended to its query (after `?` or
/// `&`, before any `#fragment`), as Twilio does before signing a JSON request.
pub fn url_with_body_sha256(url: &str, body: &[u8]) -> String {
    let hex = body_sha256_hex(body);
    let hex = std::str::from_utf8(&hex).unwrap_or_default();
    let (before, fragment) = url.split_at(url.find('#').unwrap_or(url.len()));
    let sep = match before.split_once('?') {
        None => "?",
        Some((_, query)) if query.is_empty() || query.ends_with('&') => "",
        Some(_) => "&",
    };
    format!("{before}{sep}bodySHA256={hex}{fragment}")
}

/// Lowercase hex of the SHA-256 of `body`.
fn body_sha256_hex(body: &[u8]) -> [u8; 64] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = sha2::Sha256::digest(body);
    let mut out = [0u8; 64];
    for (pair, byte) in out.chunks_exact_mut(2).zip(digest.iter()) {
        if let [hi, lo] = pair {
            *hi = HEX[usize::from(byte >> 4)];
            *lo = HEX[usize::from(byte & 0x0f)];
        }
    }
    out
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
