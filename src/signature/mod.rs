//! Twilio webhook signatures (`X-Twilio-Signature`): [`SignatureValidator`] checks them as
//! Twilio's official libraries do, [`sign`] / [`sign_with`] produce them for tests and the emulator.
//!
//! # How Twilio signs a webhook
//!
//! ```text
//! string_to_sign = URL + for key in sorted(keys), for value in sorted(distinct values of key): key + value
//! X-Twilio-Signature = base64(HMAC-SHA1(key = auth token, string_to_sign))
//! ```
//!
//! - **URL** is the URL Twilio called, exactly as configured: host case, path, query order and
//!   encoding untouched. It is configuration of your app (see [`PublicUrl`](crate::endpoint::PublicUrl)), because a proxy hides it.
//!   Twilio has signed URLs both with and without the port, so the validator tries the URL as given,
//!   then (only if that fails) with its port toggled: any port removed when present, the scheme's
//!   documented default added when absent (`:443` for https and wss, `:80` for http and ws, `:21`
//!   for ftp; none for other schemes). Only the authority part of the string is edited. Opt-in
//!   variants (builder's `try_without_*`) also try the URL without `user:pass@`, without the lone
//!   `/` of a bare host, or without its `#fragment`, where Twilio's behaviour is unconfirmed.
//! - **What is signed** depends on the request ([`SigningMode`]): a form POST
//!   (`application/x-www-form-urlencoded`, or no content type and no body) signs every decoded
//!   body pair, sorted by key then value, exact duplicates dropped; a `GET` signs the URL alone;
//!   any other body (JSON) signs the URL alone, to which Twilio added `bodySHA256=<lowercase hex
//!   SHA-256 of the body>`, and the validator checks that hash against the raw body (a missing
//!   `bodySHA256` is an error; the first one counts, percent-decoded, as in the official libraries).
//! - **Sort order** is that of bytes (UTF-8), which is code point order (twilio-python). twilio-node,
//!   -java and -csharp compare UTF-16 code units instead; the two differ only where a character
//!   above U+FFFF meets one from U+E000 to U+FFFF at the first difference. For such a body, and
//!   only then, the UTF-16 order is tried too, after the byte order failed on every URL candidate.
//! - **Keys**: without `X-Twilio-Webhooks-Signature-Settings`, the account's auth tokens with
//!   HMAC-SHA1 (primary and secondary during rotation; sub-accounts have their own). With it,
//!   exactly `key=<id>,algorithm=HMAC_SHA256`, the HMAC-SHA256 "SharedKey" of that id and nothing
//!   else; another format or algorithm, or an id not configured, is a rejection. The validator
//!   reports which key matched ([`Verified`]).
//! - The comparison is constant-time. A missing, empty, non-base64 or wrong-length header is a
//!   [`SignatureError`], never a panic.
//!
//! # Cost
//!
//! Plain code on RustCrypto's `hmac`, `sha1` and `sha2` and the `base64` crate; no `unsafe`, no
//! SIMD intrinsics, and nothing derived from a key outside the validator that owns it.
//! - Each key's HMAC is keyed once, when the validator is built, and cloned per URL candidate.
//! - A form body is copied into a per-thread scratch buffer (request bytes only), split where a
//!   word-at-a-time test finds `&`, `=`, `%` or `+`, its escaped strings decoded in place. The
//!   pairs' indices are sorted (on the keys' first 16 bytes; whole pairs only where those tie)
//!   and the pairs laid out after the URL, which the MAC takes in two pieces. The sorted order is
//!   kept for the next body whose keys have the same distinct 16-byte prefixes in the same
//!   order, as each kind of callback has.
//! - The port-toggled URL (and the UTF-16 order) are only tried after the URL as given (the
//!   byte order) failed, so a rejection costs about two acceptances.
//!
//! On the README's benchmark (this shared 2-core machine, ratios within one criterion run, to
//! one HMAC-SHA1 keyed once and cloned, over the same 251-byte string-to-sign, with base64 and a
//! compare) an 8-parameter status callback takes 1.7–1.95×, a rejection 2.9–4×, a 1 KiB JSON
//! body 3.1–3.7× (its SHA-256 alone is about 2.2×): about 200 ns more than the bare MAC for a
//! callback, next to a store write of a hundred microseconds or more. The previous
//! implementation, with an SSE2 scan and a per-thread cache of key-derived HMAC states, took
//! about 1.1× for a callback.
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
mod settings;
mod validator;

pub use crate::secret::KeySecret;
pub use candidates::{PortChange, Stripped, UrlCandidate};
pub use error::{ConfigError, SignatureError};
pub use validator::{
    PRIMARY_KEY_ID, SignatureValidator, SignatureValidatorBuilder, SignedRequest, SigningMode,
    Verified,
};

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
    let hex: String = sha2::Sha256::digest(body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let (before, fragment) = url.split_at(url.find('#').unwrap_or(url.len()));
    let sep = match before.split_once('?') {
        None => "?",
        Some((_, query)) if query.is_empty() || query.ends_with('&') => "",
        Some(_) => "&",
    };
    format!("{before}{sep}bodySHA256={hex}{fragment}")
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
