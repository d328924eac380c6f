//! Signing keys: secret bytes with a redacted `Debug`, keyed HMAC states built once, the MAC run.

use std::fmt;
use std::sync::Arc;

use hmac::{Hmac, Mac};
use subtle::ConstantTimeEq as _;

use super::Algorithm;
use crate::secret::AuthToken;

/// The secret bytes of a signing key (an auth token, or a SharedKey secret for HMAC-SHA256).
///
/// The bytes are used as the HMAC key exactly as given. `Debug` prints `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct KeySecret(Vec<u8>);

impl KeySecret {
    /// Wraps secret bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }

    pub(crate) fn bytes(&self) -> &[u8] {
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
        Self(token.expose().as_bytes().to_vec())
    }
}

impl From<&AuthToken> for KeySecret {
    fn from(token: &AuthToken) -> Self {
        Self(token.expose().as_bytes().to_vec())
    }
}

impl From<Vec<u8>> for KeySecret {
    fn from(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
}

impl From<&[u8]> for KeySecret {
    fn from(bytes: &[u8]) -> Self {
        Self(bytes.to_vec())
    }
}

/// An HMAC state already keyed (inner and outer pads absorbed); cloned for every message.
#[derive(Clone)]
pub(crate) enum KeyedMac {
    Sha1(Hmac<sha1::Sha1>),
    Sha256(Hmac<sha2::Sha256>),
}

impl KeyedMac {
    /// Keys an HMAC state; HMAC accepts keys of any length, so this cannot fail in practice.
    pub(crate) fn new(algorithm: Algorithm, key: &[u8]) -> Option<Self> {
        match algorithm {
            Algorithm::HmacSha1 => Hmac::new_from_slice(key).ok().map(Self::Sha1),
            Algorithm::HmacSha256 => Hmac::new_from_slice(key).ok().map(Self::Sha256),
        }
    }

    pub(crate) fn algorithm(&self) -> Algorithm {
        match self {
            Self::Sha1(_) => Algorithm::HmacSha1,
            Self::Sha256(_) => Algorithm::HmacSha256,
        }
    }

    /// Whether the MAC of the URL pieces followed by `signed` (every key and value of the sorted,
    /// distinct pairs, end to end) equals `tag`, compared in constant time.
    pub(crate) fn verify<'u, U>(&self, url: U, signed: &[u8], tag: &[u8]) -> bool
    where
        U: IntoIterator<Item = &'u str>,
    {
        match self {
            Self::Sha1(mac) => run_bytes(mac.clone(), url, signed)
                .as_slice()
                .ct_eq(tag)
                .into(),
            Self::Sha256(mac) => run_bytes(mac.clone(), url, signed)
                .as_slice()
                .ct_eq(tag)
                .into(),
        }
    }

    /// The MAC of the URL pieces followed by `key+value` of every pair.
    pub(crate) fn sign<'u, 'p, U, P>(&self, url: U, pairs: P) -> Vec<u8>
    where
        U: IntoIterator<Item = &'u str>,
        P: IntoIterator<Item = (&'p [u8], &'p [u8])>,
    {
        match self {
            Self::Sha1(mac) => run(mac.clone(), url, pairs).to_vec(),
            Self::Sha256(mac) => run(mac.clone(), url, pairs).to_vec(),
        }
    }
}

/// Feeds the string-to-sign piece by piece (no string is built) and returns the tag.
fn run<'u, 'p, M, U, P>(mut mac: M, url: U, pairs: P) -> hmac::digest::Output<M>
where
    M: Mac,
    U: IntoIterator<Item = &'u str>,
    P: IntoIterator<Item = (&'p [u8], &'p [u8])>,
{
    for piece in url {
        mac.update(piece.as_bytes());
    }
    for (key, value) in pairs {
        mac.update(key);
        mac.update(value);
    }
    mac.finalize().into_bytes()
}

/// The MAC of the URL pieces followed by `signed`: a few large updates, so that whole blocks are
/// hashed straight from `signed`.
fn run_bytes<'u, M, U>(mut mac: M, url: U, signed: &[u8]) -> hmac::digest::Output<M>
where
    M: Mac,
    U: IntoIterator<Item = &'u str>,
{
    for piece in url {
        mac.update(piece.as_bytes());
    }
    mac.update(signed);
    mac.finalize().into_bytes()
}

/// One configured key: its id (for diagnostics) and its keyed HMAC state.
#[derive(Clone)]
pub(crate) struct Key {
    pub(crate) id: Arc<str>,
    pub(crate) mac: KeyedMac,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("id", &self.id)
            .field("algorithm", &self.mac.algorithm())
            .finish_non_exhaustive()
    }
}
