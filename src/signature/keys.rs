//! Each signing key's HMAC, keyed once and kept only inside the validator that owns the key.

use std::fmt;
use std::sync::Arc;

use hmac::{Hmac, KeyInit, Mac};

use super::Algorithm;

/// An HMAC keyed once (its inner and outer pads absorbed) and cloned for every message.
#[derive(Clone)]
pub(crate) enum KeyedMac {
    Sha1(Hmac<sha1::Sha1>),
    Sha256(Hmac<sha2::Sha256>),
}

impl KeyedMac {
    /// Keys an HMAC; HMAC accepts keys of any length, so `None` does not happen in practice.
    pub(crate) fn new(algorithm: Algorithm, key: &[u8]) -> Option<Self> {
        match algorithm {
            Algorithm::HmacSha1 => Hmac::new_from_slice(key).ok().map(Self::Sha1),
            Algorithm::HmacSha256 => Hmac::new_from_slice(key).ok().map(Self::Sha256),
        }
    }

    /// The algorithm of this key.
    pub(crate) fn algorithm(&self) -> Algorithm {
        match self {
            Self::Sha1(_) => Algorithm::HmacSha1,
            Self::Sha256(_) => Algorithm::HmacSha256,
        }
    }

    /// Whether the MAC of the `message` pieces, end to end, is `tag` (compared in constant time
    /// by the MAC's own `verify_slice`).
    pub(crate) fn verify<'m>(&self, message: impl Iterator<Item = &'m [u8]>, tag: &[u8]) -> bool {
        match self {
            Self::Sha1(keyed) => feed(keyed, message).verify_slice(tag).is_ok(),
            Self::Sha256(keyed) => feed(keyed, message).verify_slice(tag).is_ok(),
        }
    }

    /// The MAC of the `message` pieces, end to end.
    pub(crate) fn tag<'m>(&self, message: impl Iterator<Item = &'m [u8]>) -> Vec<u8> {
        match self {
            Self::Sha1(keyed) => feed(keyed, message).finalize().into_bytes().to_vec(),
            Self::Sha256(keyed) => feed(keyed, message).finalize().into_bytes().to_vec(),
        }
    }
}

/// Shows the algorithm only.
impl fmt::Debug for KeyedMac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.algorithm(), f)
    }
}

/// A clone of the keyed MAC fed the `message` pieces.
fn feed<'m, M: Mac + Clone>(keyed: &M, message: impl Iterator<Item = &'m [u8]>) -> M {
    let mut mac = keyed.clone();
    message.for_each(|piece| mac.update(piece));
    mac
}

/// One configured key: its id (reported in diagnostics) and its keyed HMAC.
#[derive(Debug, Clone)]
pub(crate) struct Key {
    pub(crate) id: Arc<str>,
    pub(crate) mac: KeyedMac,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 2202 (HMAC-SHA1) and RFC 4231 (HMAC-SHA256) test case 2, fed in pieces.
    #[test]
    fn rfc_vectors_in_pieces() {
        let sha1 = KeyedMac::new(Algorithm::HmacSha1, b"Jefe").unwrap();
        let sha256 = KeyedMac::new(Algorithm::HmacSha256, b"Jefe").unwrap();
        let pieces: [&[u8]; 4] = [b"what do ya ", b"", b"want ", b"for nothing?"];
        let hex = |tag: Vec<u8>| tag.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(
            hex(sha1.tag(pieces.into_iter())),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
        assert_eq!(
            hex(sha256.tag(pieces.into_iter())),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let tag = sha1.tag(pieces.into_iter());
        assert!(sha1.verify(pieces.into_iter(), &tag));
        assert!(sha1.verify([&b"what do ya want for nothing?"[..]].into_iter(), &tag));
        let mut wrong = tag.clone();
        wrong[19] ^= 1;
        assert!(!sha1.verify(pieces.into_iter(), &wrong));
        assert!(!sha1.verify(pieces.into_iter(), &tag[..19]));
        assert!(!sha256.verify(pieces.into_iter(), &tag));
    }

    #[test]
    fn debug_shows_no_secret() {
        let key = Key {
            id: Arc::from("main"),
            mac: KeyedMac::new(Algorithm::HmacSha1, b"s3cr3t").unwrap(),
        };
        let shown = format!(
            "{key:?} {:?}",
            crate::secret::KeySecret::new(b"s3cr3t".to_vec())
        );
        assert!(
            shown.contains("main") && !shown.contains("s3cr3t"),
            "{shown}"
        );
    }
}
