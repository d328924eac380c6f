//! Signing keys: secret bytes with a redacted `Debug`, keyed HMAC states built once, the MAC run.

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hmac::digest::block_buffer::Eager;
use hmac::digest::core_api::{BlockSizeUser, Buffer, BufferKindUser, FixedOutputCore, UpdateCore};
use hmac::digest::typenum::U64;
use hmac::digest::{KeyInit, Output};
use hmac::{Hmac, HmacCore, Mac};
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
pub(crate) struct KeyedMac {
    /// Unique to one keying (its clones share it): what a thread's [`FirstBlock`] belongs to.
    id: u64,
    state: State,
}

/// A running HMAC of either algorithm: the bare cores (the inner and outer hash states, a few
/// dozen bytes), which the hot path drives block by block with its own buffer.
#[derive(Clone)]
enum State {
    Sha1(HmacCore<sha1::Sha1>),
    Sha256(HmacCore<sha2::Sha256>),
}

/// The ids of [`KeyedMac`]s: never reused, so a cached state cannot outlive its key's id.
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// The block size of both SHA-1 and SHA-256.
const BLOCK: usize = 64;

/// An HMAC core of one algorithm, as it is kept in a [`FirstBlock`].
trait Cacheable:
    UpdateCore
    + FixedOutputCore
    + BlockSizeUser<BlockSize = U64>
    + BufferKindUser<BufferKind = Eager>
    + Clone
{
    /// The state, when it is of this algorithm.
    fn cached(state: &State) -> Option<&Self>;
    fn into_state(self) -> State;
}

impl Cacheable for HmacCore<sha1::Sha1> {
    fn cached(state: &State) -> Option<&Self> {
        match state {
            State::Sha1(mac) => Some(mac),
            State::Sha256(_) => None,
        }
    }

    fn into_state(self) -> State {
        State::Sha1(self)
    }
}

impl Cacheable for HmacCore<sha2::Sha256> {
    fn cached(state: &State) -> Option<&Self> {
        match state {
            State::Sha256(mac) => Some(mac),
            State::Sha1(_) => None,
        }
    }

    fn into_state(self) -> State {
        State::Sha256(self)
    }
}

impl KeyedMac {
    /// Keys an HMAC state; HMAC accepts keys of any length, so this cannot fail in practice.
    pub(crate) fn new(algorithm: Algorithm, key: &[u8]) -> Option<Self> {
        let state = match algorithm {
            Algorithm::HmacSha1 => HmacCore::new_from_slice(key).ok().map(State::Sha1),
            Algorithm::HmacSha256 => HmacCore::new_from_slice(key).ok().map(State::Sha256),
        }?;
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        Some(Self { id, state })
    }

    pub(crate) fn algorithm(&self) -> Algorithm {
        match self.state {
            State::Sha1(_) => Algorithm::HmacSha1,
            State::Sha256(_) => Algorithm::HmacSha256,
        }
    }

    /// Whether the MAC of `message` (a whole string-to-sign) equals `tag`, compared in constant
    /// time.
    pub(crate) fn verify(&self, message: &[u8], tag: &[u8]) -> bool {
        self.verify_pieces(std::iter::empty(), message, tag)
    }

    /// Whether the MAC of the URL pieces followed by `signed` (every key and value of the sorted,
    /// distinct pairs, end to end) equals `tag`, compared in constant time.
    ///
    /// The first block of the string-to-sign goes through the thread's [`FirstBlock`]s: the
    /// callbacks of one account to one URL all begin with the same 64 bytes (the URL, then
    /// `AccountSid` and the account's SID, the first key in sorted order), so their first
    /// compression is done once per thread.
    pub(crate) fn verify_pieces<'u, U>(&self, url: U, signed: &[u8], tag: &[u8]) -> bool
    where
        U: IntoIterator<Item = &'u str>,
        U::IntoIter: Clone,
    {
        let url = url.into_iter();
        let block = match url.clone().next() {
            None => signed.first_chunk::<BLOCK>().copied(),
            Some(_) => first_block(url.clone(), signed),
        };
        match &self.state {
            State::Sha1(keyed) => self.verify_with(keyed, block.as_ref(), url, signed, tag),
            State::Sha256(keyed) => self.verify_with(keyed, block.as_ref(), url, signed, tag),
        }
    }

    /// [`verify_pieces`](Self::verify_pieces) with the keyed state of one algorithm; `block` is
    /// the first block of the string-to-sign, when it has one. The state is cloned once and
    /// worked on where it is.
    #[inline(always)]
    fn verify_with<'u, M: Cacheable>(
        &self,
        keyed: &M,
        block: Option<&[u8; BLOCK]>,
        url: impl Iterator<Item = &'u str> + Clone,
        signed: &[u8],
        tag: &[u8],
    ) -> bool {
        // The string-to-sign from byte `skip` on (whole blocks straight from the slices), then
        // the comparison.
        let finish = |mut core: M, mut skip: usize| {
            let mut buffer = Buffer::<M>::default();
            let mut feed = |piece: &[u8]| {
                let rest = piece.get(skip..).unwrap_or_default();
                skip = skip.saturating_sub(piece.len());
                buffer.digest_blocks(rest, |blocks| core.update_blocks(blocks));
            };
            url.clone().for_each(|piece| feed(piece.as_bytes()));
            feed(signed);
            let mut mac = Output::<M>::default();
            core.finalize_fixed_core(&mut buffer, &mut mac);
            equal_in_constant_time(&mac, tag)
        };
        let Some(block) = block else {
            return finish(keyed.clone(), 0);
        };
        let after_block = || {
            let mut core = keyed.clone();
            Buffer::<M>::default().digest_blocks(block, |blocks| core.update_blocks(blocks));
            core
        };
        let cached = FIRST_BLOCKS.try_with(|cell| {
            let mut kept = cell.try_borrow_mut().ok()?;
            let hit = kept.slots.iter().position(|slot| {
                slot.as_ref().is_some_and(|first| {
                    first.key == self.id && equal_in_constant_time(&first.block, block)
                })
            });
            if let Some(i) = hit {
                // The other entry is now the least recently used.
                kept.victim = 1 - i;
                let first = kept.slots.get(i)?.as_ref()?;
                return Some(finish(M::cached(&first.state)?.clone(), BLOCK));
            }
            let mac = after_block();
            let victim = kept.victim;
            if let Some(slot) = kept.slots.get_mut(victim) {
                *slot = Some(FirstBlock {
                    key: self.id,
                    block: *block,
                    state: mac.clone().into_state(),
                });
            }
            kept.victim = 1 - victim;
            Some(finish(mac, BLOCK))
        });
        // The thread's cache is gone (thread exit) or in use: no cache.
        match cached {
            Ok(Some(matches)) => matches,
            _ => finish(after_block(), BLOCK),
        }
    }

    /// The MAC of the URL pieces followed by `key+value` of every pair.
    pub(crate) fn sign<'u, 'p, U, P>(&self, url: U, pairs: P) -> Vec<u8>
    where
        U: IntoIterator<Item = &'u str>,
        P: IntoIterator<Item = (&'p [u8], &'p [u8])>,
    {
        match &self.state {
            State::Sha1(core) => run(Hmac::from_core(core.clone()), url, pairs).to_vec(),
            State::Sha256(core) => run(Hmac::from_core(core.clone()), url, pairs).to_vec(),
        }
    }
}

/// A thread's HMAC state after the first block of a string-to-sign it verified recently.
///
/// Keyed by the [`KeyedMac`] id and the block's exact bytes, so a hit gives exactly the state that
/// hashing the block would; a miss costs a 64-byte comparison and a copy. The comparison is of
/// request bytes with earlier request bytes, no secret.
struct FirstBlock {
    key: u64,
    block: [u8; BLOCK],
    state: State,
}

/// The first blocks a thread keeps: two, so that a URL matching on its second candidate (the
/// port toggled) or a request matching its second key still finds both cached.
struct FirstBlocks {
    slots: [Option<FirstBlock>; 2],
    /// The least recently used slot, replaced on a miss.
    victim: usize,
}

thread_local! {
    static FIRST_BLOCKS: RefCell<FirstBlocks> = const {
        RefCell::new(FirstBlocks {
            slots: [None, None],
            victim: 0,
        })
    };
}

/// The first [`BLOCK`] bytes of the URL pieces then `signed`, `None` when they are shorter.
fn first_block<'u>(url: impl Iterator<Item = &'u str>, signed: &[u8]) -> Option<[u8; BLOCK]> {
    let mut block = [0u8; BLOCK];
    let mut at = 0;
    let mut add = |piece: &[u8]| {
        let room = block.get_mut(at..).unwrap_or_default();
        let n = piece.len().min(room.len());
        if let (Some(to), Some(from)) = (room.get_mut(..n), piece.get(..n)) {
            to.copy_from_slice(from);
        }
        at += n;
    };
    url.for_each(|piece| add(piece.as_bytes()));
    add(signed);
    (at == BLOCK).then_some(block)
}

/// Whether two byte strings are equal, in constant time: the differences of every word are
/// gathered without an early exit, and only their sum is compared (through `subtle`). Serves
/// both the computed MAC against a request's tag and a cached first block against a new one.
fn equal_in_constant_time(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (a_words, a_rest) = a.as_chunks::<8>();
    let (b_words, b_rest) = b.as_chunks::<8>();
    let words = a_words.iter().zip(b_words).fold(0u64, |diff, (x, y)| {
        diff | (u64::from_ne_bytes(*x) ^ u64::from_ne_bytes(*y))
    });
    let diff = a_rest
        .iter()
        .zip(b_rest)
        .fold(words, |diff, (x, y)| diff | u64::from(x ^ y));
    diff.ct_eq(&0).into()
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The MAC computed in one piece, with no cache involved.
    fn one_shot(algorithm: Algorithm, key: &[u8], message: &[u8]) -> Vec<u8> {
        match algorithm {
            Algorithm::HmacSha1 => {
                let mut mac = <Hmac<sha1::Sha1> as Mac>::new_from_slice(key).unwrap();
                mac.update(message);
                mac.finalize().into_bytes().to_vec()
            }
            Algorithm::HmacSha256 => {
                let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key).unwrap();
                mac.update(message);
                mac.finalize().into_bytes().to_vec()
            }
        }
    }

    /// `message` split into URL pieces and signed bytes at `cut`, verified against `tag`; the
    /// same verified whole must agree.
    fn verify(mac: &KeyedMac, message: &[u8], cut: usize, tag: &[u8]) -> bool {
        let (url, signed) = message.split_at(cut);
        let url = std::str::from_utf8(url).unwrap();
        let (a, b) = url.split_at(url.len() / 2);
        let in_pieces = mac.verify_pieces([a, "", b], signed, tag);
        assert_eq!(
            in_pieces,
            mac.verify(message, tag),
            "{message:?} cut at {cut}"
        );
        in_pieces
    }

    #[test]
    fn every_length_and_split_around_the_first_block() {
        for algorithm in [Algorithm::HmacSha1, Algorithm::HmacSha256] {
            let mac = KeyedMac::new(algorithm, b"key").unwrap();
            let text: Vec<u8> = (0..200u8).map(|i| b'a' + i % 26).collect();
            for len in [0, 1, 63, 64, 65, 127, 128, 129, 200] {
                let message = &text[..len];
                let tag = one_shot(algorithm, b"key", message);
                for cut in [0, len / 3, len.min(64), len] {
                    // Twice: the second call finds the first block cached.
                    assert!(verify(&mac, message, cut, &tag), "{algorithm} {len} {cut}");
                    assert!(verify(&mac, message, cut, &tag), "{algorithm} {len} {cut}");
                    let mut wrong = tag.clone();
                    wrong[0] ^= 1;
                    assert!(!verify(&mac, message, cut, &wrong));
                }
            }
        }
    }

    #[test]
    fn equal_only_when_every_byte_is() {
        for len in [0, 1, 7, 8, 9, 20, 32, 33] {
            let tag: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(37)).collect();
            assert!(equal_in_constant_time(&tag, &tag));
            for i in 0..len {
                for bit in 0..8 {
                    let mut other = tag.clone();
                    other[i] ^= 1 << bit;
                    assert!(!equal_in_constant_time(&tag, &other), "{len} {i} {bit}");
                }
            }
            assert!(!equal_in_constant_time(&tag, &tag[..len.saturating_sub(1)]) || len == 0);
            assert!(!equal_in_constant_time(
                &tag,
                &[tag.as_slice(), &[0]].concat()
            ));
        }
    }

    #[test]
    fn a_cached_block_serves_only_its_key() {
        let message = [b'm'; 100];
        let a = KeyedMac::new(Algorithm::HmacSha1, b"key a").unwrap();
        let b = KeyedMac::new(Algorithm::HmacSha1, b"key b").unwrap();
        let tag_a = one_shot(Algorithm::HmacSha1, b"key a", &message);
        let tag_b = one_shot(Algorithm::HmacSha1, b"key b", &message);
        assert!(verify(&a, &message, 10, &tag_a));
        // The same first block, cached for `a`: `b` must not use it.
        assert!(!verify(&b, &message, 10, &tag_a));
        assert!(verify(&b, &message, 10, &tag_b));
        assert!(verify(&a, &message, 10, &tag_a));
        // The same key bytes keyed again are another key for the cache, with the same MACs.
        let a_again = KeyedMac::new(Algorithm::HmacSha1, b"key a").unwrap();
        assert!(verify(&a_again, &message, 10, &tag_a));
        assert!(!verify(&a_again, &message, 10, &tag_b));
    }

    #[test]
    fn more_blocks_and_keys_in_turn_than_are_kept() {
        let keys: Vec<_> = [&b"one"[..], b"two"]
            .iter()
            .map(|k| (k.to_vec(), KeyedMac::new(Algorithm::HmacSha1, k).unwrap()))
            .collect();
        let messages: Vec<Vec<u8>> = (b'a'..=b'c').map(|c| vec![c; 90]).collect();
        for round in 0..4 {
            for (i, message) in messages.iter().enumerate() {
                for (j, (key, mac)) in keys.iter().enumerate() {
                    let tag = one_shot(Algorithm::HmacSha1, key, message);
                    assert!(verify(mac, message, 20, &tag), "{round} {i} {j}");
                    let (other, _) = &keys[1 - j];
                    let wrong = one_shot(Algorithm::HmacSha1, other, message);
                    assert!(!verify(mac, message, 20, &wrong), "{round} {i} {j}");
                }
            }
        }
    }

    #[test]
    fn the_same_first_block_then_other_bytes() {
        let mac = KeyedMac::new(Algorithm::HmacSha1, b"key").unwrap();
        let mut message = [b'x'; 150];
        assert!(verify(
            &mac,
            &message,
            30,
            &one_shot(Algorithm::HmacSha1, b"key", &message)
        ));
        message[64] = b'y';
        let tag = one_shot(Algorithm::HmacSha1, b"key", &message);
        assert!(verify(&mac, &message, 30, &tag));
        message[63] = b'y';
        assert!(!verify(&mac, &message, 30, &tag));
        let tag = one_shot(Algorithm::HmacSha1, b"key", &message);
        assert!(verify(&mac, &message, 30, &tag));
    }
}
