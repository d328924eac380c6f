//! Why a signature was rejected (`SignatureError`) and why a validator could not be built (`ConfigError`).

use super::Algorithm;

/// Why a request's signature was not accepted. Messages never contain secrets or request data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// No `X-Twilio-Signature` header.
    #[error("missing x-twilio-signature header")]
    Missing,
    /// The header is empty, not canonical padded base64, or not the length of the algorithm's
    /// MAC (HMAC-SHA1 unless the settings header announces HMAC-SHA256).
    #[error("malformed x-twilio-signature header: {reason}")]
    Malformed {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No configured key signs any URL candidate with this signature.
    #[error("signature does not match")]
    Mismatch,
    /// The request is not a form ([`SigningMode::BodyHash`](super::SigningMode::BodyHash)) and
    /// the URL carries no `bodySHA256` parameter, so nothing covers the body.
    #[error("request body not covered by the signature: the url has no bodySHA256 parameter")]
    BodyHashMissing,
    /// The signature is valid but the `bodySHA256` in the URL is not the SHA-256 of the body.
    #[error("bodySHA256 in the url does not match the request body")]
    BodyHashMismatch,
    /// A header that decides the outcome appears several times with different values.
    #[error("several different {header} headers")]
    AmbiguousHeaders {
        /// The header's name, lower-case.
        header: &'static str,
    },
    /// The `X-Twilio-Webhooks-Signature-Settings` header is not exactly
    /// `key=<id>,algorithm=<name>`.
    #[error("invalid x-twilio-webhooks-signature-settings header: {reason}")]
    InvalidSettings {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The settings header announces an algorithm other than Twilio's `HMAC_SHA256`.
    #[error("unsupported signature algorithm announced in x-twilio-webhooks-signature-settings")]
    UnsupportedAlgorithm,
    /// The request is signed with an algorithm for which no key is configured (HMAC-SHA1, the
    /// auth tokens, without the settings header; HMAC-SHA256 with it).
    #[error("no key configured for {0}")]
    NoKeyForAlgorithm(Algorithm),
    /// No configured key of the announced algorithm has the id the settings header names.
    #[error("the key named in x-twilio-webhooks-signature-settings is not configured")]
    UnknownKey,
}

/// Why a [`SignatureValidator`](super::SignatureValidator) could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No key was added.
    #[error("no signing key configured")]
    NoKeys,
    /// A key id is empty.
    #[error("empty signing key id")]
    EmptyKeyId,
    /// Two keys have the same id.
    #[error("duplicate signing key id {0:?}")]
    DuplicateKeyId(String),
    /// A key's secret is empty: anyone could sign with it.
    #[error("empty secret for signing key {0:?}")]
    EmptySecret(String),
}
