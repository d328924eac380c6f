//! Form bodies decoded into sorted, distinct pairs, laid end to end without an allocation.
//!
//! Same pairs as `form_urlencoded::parse` (split at `&`, skip empty pieces, split at the first
//! `=`, `+` → space, `%XX` → byte, anything else literal), which the tests check. The body is
//! copied once into a scratch buffer; its structural bytes are found 64 at a time as a bit mask
//! ([`scan`]) and visited in order. Strings holding `%` or `+` are decoded in place in the copy
//! (decoding never lengthens a string), the others are left as they are. The pairs are sorted
//! by the first 16 bytes of their keys, then the URL and the pairs' keys and values are copied
//! out in that order, short strings as fixed-size blocks: the string-to-sign, hashed in one
//! call. The buffers live in a per-thread scratch space that is reused, so a validation in
//! steady state allocates nothing. Bodies that are not UTF-8, raw or decoded, are left to the
//! caller (which uses `form_urlencoded`'s lossy decoding, the reference).

use std::cell::RefCell;
use std::ops::Range;

use super::scan::{self, Masks};

/// Scratch space larger than this is not kept for the next request.
const KEEP_BYTES: usize = 64 * 1024;
const KEEP_ENTRIES: usize = 1024;

/// Room past the end of the body's copy and of the signed bytes: strings up to this long are
/// copied as one block.
const BLOCK: usize = 64;

/// Insertion sort up to this many pairs, the standard sort (by prefix) beyond.
const INSERTION_MAX: usize = 32;

thread_local! {
    static SCRATCH: RefCell<Scratch> = const { RefCell::new(Scratch::new()) };
}

/// Runs `f` on the string-to-sign of a form `body` posted to `url`: the URL, then every key and
/// value of the body's sorted, distinct pairs, end to end (one slice, so the MAC can take its
/// blocks straight from it); or on `None` when the body is not UTF-8, raw or decoded (or longer
/// than 1 GiB). Uses the thread's scratch space; `f` runs once.
pub(crate) fn with_string_to_sign<R>(
    url: &[u8],
    body: &[u8],
    mut f: impl FnMut(Option<&[u8]>) -> R,
) -> R {
    let mut run = |scratch: &mut Scratch| {
        let signed = scratch.decode(url, body);
        f(signed.and_then(|range| scratch.buf.get(range)))
    };
    let shared = SCRATCH.try_with(|cell| {
        let mut scratch = cell.try_borrow_mut().ok()?;
        let result = run(&mut scratch);
        scratch.trim();
        Some(result)
    });
    match shared {
        Ok(Some(result)) => result,
        // The thread's space is gone (thread exit) or in use: a fresh one.
        _ => run(&mut Scratch::new()),
    }
}

/// The reusable buffers of one decoding.
#[derive(Debug, Default)]
struct Scratch {
    /// Two regions: the body's copy (its escaped strings decoded in place) in `body.len() +
    /// BLOCK` bytes, then the string-to-sign (the URL, then the signed bytes) and `BLOCK` bytes.
    /// Only grows (zero-filled), so stale bytes may follow what was written.
    buf: Vec<u8>,
    /// The pairs, in body order.
    entries: Vec<Entry>,
    /// Indices of the sorted, distinct pairs.
    order: Vec<u32>,
    /// The key prefixes, in body order, of the last body whose prefixes were all distinct and
    /// that `order` still sorts (empty when `order` holds anything else): a callback type sends
    /// the same keys in the same order every time, and the same prefixes sort the same way.
    sorted_prefixes: Vec<u128>,
}

/// One pair: its key and its value in the body's copy (offsets fit in `u32`: the body is at
/// most 1 GiB).
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// The key's first 16 bytes, zero-padded, as a big-endian number: when two prefixes
    /// differ they order the keys as a byte comparison would.
    prefix: u128,
    key: u32,
    key_len: u32,
    value: u32,
    value_len: u32,
}

impl Entry {
    /// The key and the value.
    fn strings(self, copy: &[u8]) -> (&[u8], &[u8]) {
        let string = |at: u32, len: u32| {
            let at = at as usize;
            copy.get(at..at + len as usize).unwrap_or_default()
        };
        (
            string(self.key, self.key_len),
            string(self.value, self.value_len),
        )
    }
}

impl Scratch {
    const fn new() -> Self {
        Self {
            buf: Vec::new(),
            entries: Vec::new(),
            order: Vec::new(),
            sorted_prefixes: Vec::new(),
        }
    }

    /// Decodes `body`: the range of `buf` that holds the string-to-sign, `url` then the signed
    /// bytes.
    fn decode(&mut self, url: &[u8], body: &[u8]) -> Option<Range<usize>> {
        // Offsets are `u32`, and the buffer holds two regions.
        let room = body.len().checked_add(BLOCK)?;
        let size = room.checked_add(url.len())?.checked_add(room)?;
        u32::try_from(size).ok()?;
        if self.buf.len() < size {
            self.buf.resize(size, 0);
        }
        self.entries.clear();
        let (copy, _) = self.buf.split_at_mut(room);
        copy_moves(copy, body)?;
        let mut decoding = Decoding {
            body,
            copy,
            entries: &mut self.entries,
        };
        decoding.scan()?;
        self.sort(room);
        self.lay_out(room, url)
    }

    /// Sorts the pairs by key then value (bytes) and drops exact duplicates.
    fn sort(&mut self, room: usize) {
        let Self {
            buf,
            entries,
            order,
            sorted_prefixes,
        } = self;
        // The same distinct prefixes as the last body: `order` already sorts them.
        if !sorted_prefixes.is_empty()
            && sorted_prefixes.len() == entries.len()
            && sorted_prefixes
                .iter()
                .zip(entries.iter())
                .all(|(p, e)| *p == e.prefix)
        {
            return;
        }
        sorted_prefixes.clear();
        let prefix = |i: u32| entries.get(i as usize).map_or(0, |e| e.prefix);
        let distinct = if entries.len() <= INSERTION_MAX {
            insertion_sort(entries, order)
        } else {
            order.clear();
            order.extend((0..entries.len()).filter_map(|i| u32::try_from(i).ok()));
            order.sort_unstable_by_key(|&i| prefix(i));
            order.windows(2).all(|w| match w {
                [a, b] => prefix(*a) != prefix(*b),
                _ => true,
            })
        };
        if distinct {
            sorted_prefixes.extend(entries.iter().map(|e| e.prefix));
            // Distinct prefixes: distinct keys, no duplicate to drop.
            return;
        }
        // Keys sharing their first 16 bytes: compare whole pairs.
        let copy = buf.get(..room).unwrap_or_default();
        let pair = |i: u32| entries.get(i as usize).map(|e| (e.prefix, e.strings(copy)));
        order.clear();
        order.extend((0..entries.len()).filter_map(|i| u32::try_from(i).ok()));
        order.sort_unstable_by(|&a, &b| pair(a).cmp(&pair(b)));
        order.dedup_by(|a, b| pair(*a) == pair(*b));
    }

    /// Copies `url`, then the keys and values of the sorted pairs end to end, to the second
    /// region of the buffer (from `room` on); returns where they are.
    fn lay_out(&mut self, room: usize, url: &[u8]) -> Option<Range<usize>> {
        let Self {
            buf,
            entries,
            order,
            ..
        } = self;
        let split = room.min(buf.len());
        let (copy, signed) = buf.split_at_mut(split);
        copy_moves(signed, url)?;
        let mut at = url.len();
        for &i in order.iter() {
            if let Some(e) = entries.get(i as usize) {
                let (key, key_len) = (e.key as usize, e.key_len as usize);
                let (value, value_len) = (e.value as usize, e.value_len as usize);
                block_copy(signed, at, copy, key, key_len);
                at += key_len;
                block_copy(signed, at, copy, value, value_len);
                at += value_len;
            }
        }
        Some(room..room + at)
    }

    /// Gives back memory that an unusually large body made the space grow to.
    fn trim(&mut self) {
        if self.buf.len() > KEEP_BYTES {
            self.buf = Vec::new();
        }
        if self.entries.capacity() > KEEP_ENTRIES {
            self.entries = Vec::new();
        }
        if self.order.capacity() > KEEP_ENTRIES {
            self.order = Vec::new();
            self.sorted_prefixes = Vec::new();
        }
    }
}

/// For a key of `n` bytes (`n` up to 16), the bits of its bytes in a big-endian 16-byte prefix.
const KEY_BYTES: [u128; 17] = {
    let mut masks = [0; 17];
    let mut n = 1;
    while n <= 16 {
        masks[n] = u128::MAX << (8 * (16 - n));
        n += 1;
    }
    masks
};

/// No `=` seen yet in the current piece.
const NO_EQ: usize = usize::MAX;

/// Where the scan stands in the current piece (from `start` up to the next `&`).
#[derive(Debug, Clone, Copy)]
struct Cursor {
    start: usize,
    /// The piece's first `=`, or [`NO_EQ`].
    eq: usize,
    key_escaped: bool,
    value_escaped: bool,
}

impl Cursor {
    fn at(start: usize) -> Self {
        Self {
            start,
            eq: NO_EQ,
            key_escaped: false,
            value_escaped: false,
        }
    }
}

/// One body being split into pairs.
struct Decoding<'a, 'b> {
    body: &'b [u8],
    /// The first region of the scratch buffer: the body, then `BLOCK` bytes.
    copy: &'a mut [u8],
    entries: &'a mut Vec<Entry>,
}

impl Decoding<'_, '_> {
    /// Records every pair (decoding the strings that need it) and checks the body is UTF-8.
    fn scan(&mut self) -> Option<()> {
        let body = self.body;
        let mut cursor = Cursor::at(0);
        let mut non_ascii = false;
        let (windows, tail) = body.as_chunks::<64>();
        let mut base = 0;
        for window in windows {
            let masks = scan::masks(window);
            non_ascii |= masks.non_ascii;
            self.window(&mut cursor, masks, base)?;
            base += 64;
        }
        if !tail.is_empty() {
            // The last 64 bytes of the body (no copy), less the bytes already scanned; or a
            // short body, padded with zeros.
            let overlap = 64 - tail.len();
            let masks = match body.last_chunk::<64>() {
                Some(last) => scan::masks(last).shifted(overlap),
                None => {
                    let mut last = [0u8; 64];
                    last.get_mut(..tail.len())?.copy_from_slice(tail);
                    scan::masks(&last)
                }
            };
            non_ascii |= masks.non_ascii;
            self.window(&mut cursor, masks, base)?;
        }
        // A UTF-8 body split at ASCII bytes gives UTF-8 pieces: only decoded escapes need checking.
        if non_ascii {
            std::str::from_utf8(body).ok()?;
        }
        self.push_pair(cursor, body.len())
    }

    /// Goes through the structural bytes of the window at `base` in order: an `&` ends a piece,
    /// the piece's first `=` ends its key, a `%` or `+` marks the string it is in as escaped.
    #[inline(always)]
    fn window(&mut self, cursor: &mut Cursor, masks: Masks, base: usize) -> Option<()> {
        let mut bits = masks.structural;
        while bits != 0 {
            let at = base + bits.trailing_zeros() as usize;
            bits &= bits - 1;
            match self.body.get(at) {
                Some(b'&') => {
                    self.push_pair(*cursor, at)?;
                    *cursor = Cursor::at(at + 1);
                }
                Some(b'=') if cursor.eq == NO_EQ => cursor.eq = at,
                // A later `=` is a value byte.
                Some(b'=') => {}
                _ if cursor.eq == NO_EQ => cursor.key_escaped = true,
                _ => cursor.value_escaped = true,
            }
        }
        Some(())
    }

    /// Records the piece from `cursor.start` to `end`, skipping an empty one.
    #[inline(always)]
    #[allow(clippy::cast_possible_truncation)]
    fn push_pair(&mut self, cursor: Cursor, end: usize) -> Option<()> {
        let start = cursor.start;
        if start == end {
            return Some(());
        }
        let (key_end, value_start) = if cursor.eq == NO_EQ {
            (end, end)
        } else {
            (cursor.eq, cursor.eq + 1)
        };
        let key_len = match cursor.key_escaped {
            false => key_end - start,
            true => unescape_in_place(self.copy, start, key_end)?,
        };
        let value_len = match cursor.value_escaped {
            false => end - value_start,
            true => unescape_in_place(self.copy, value_start, end)?,
        };
        // The key's first 16 bytes (the copy has room past the body), the bytes past a shorter
        // key masked off.
        let first = self.copy.get(start..).and_then(<[u8]>::first_chunk::<16>)?;
        let keep = KEY_BYTES.get(key_len).copied().unwrap_or(u128::MAX);
        // Offsets and lengths fit in `u32`: the body is at most 1 GiB.
        self.entries.push(Entry {
            prefix: u128::from_be_bytes(*first) & keep,
            key: start as u32,
            key_len: key_len as u32,
            value: value_start as u32,
            value_len: value_len as u32,
        });
        Some(())
    }
}

/// The shape of a phone number's `+` (`%2B14155550100`): one `%XX` escape of an ASCII byte
/// first, then at most 16 plain ASCII bytes. Decoded with fixed-size moves: the plain bytes as
/// one 16-byte block, two places back, after saving the 16 bytes that follow the string and
/// putting them back (the block's write ends before their end). `None` when the string has
/// another shape or the copy lacks the room (then it is decoded a byte at a time).
#[inline(always)]
fn unescape_leading(copy: &mut [u8], start: usize, end: usize) -> Option<usize> {
    let plain = end.checked_sub(start)?.checked_sub(3)?;
    if plain > 16 {
        return None;
    }
    let &[b'%', hi, lo] = copy.get(start..)?.first_chunk::<3>()? else {
        return None;
    };
    let byte = hex_value(hi)? << 4 | hex_value(lo)?;
    let rest = *copy.get(start + 3..)?.first_chunk::<16>()?;
    let after = *copy.get(end..)?.first_chunk::<16>()?;
    let wanted = (1u32 << plain) - 1;
    if byte >= 0x80 || scan::special16(&rest) & wanted != 0 {
        return None;
    }
    *copy.get_mut(start)? = byte;
    *copy.get_mut(start + 1..)?.first_chunk_mut::<16>()? = rest;
    *copy.get_mut(end..)?.first_chunk_mut::<16>()? = after;
    Some(plain + 1)
}

/// Decodes the string at `copy[start..end]` (which has `%` or `+`) in place, at its start;
/// returns the decoded length, or `None` when the decoded bytes are not UTF-8. A phone number
/// takes [`unescape_leading`]; other strings are decoded a byte at a time, each byte read
/// before it can be overwritten (the write position never passes the read position).
#[inline(never)]
fn unescape_in_place(copy: &mut [u8], start: usize, end: usize) -> Option<usize> {
    if let Some(len) = unescape_leading(copy, start, end) {
        return Some(len);
    }
    let raw = copy.get_mut(start..end)?;
    let mut high = 0u8;
    let mut n = 0;
    let mut i = 0;
    while let Some(&b) = raw.get(i) {
        let (byte, used) = match b {
            b'+' => (b' ', 1),
            b'%' => match raw.get(i + 1..i + 3) {
                Some(&[hi, lo]) => match (hex_value(hi), hex_value(lo)) {
                    (Some(hi), Some(lo)) => (hi << 4 | lo, 3),
                    _ => (b'%', 1),
                },
                _ => (b'%', 1),
            },
            other => (other, 1),
        };
        high |= byte;
        *raw.get_mut(n)? = byte;
        n += 1;
        i += used;
    }
    if high >= 0x80 {
        std::str::from_utf8(raw.get(..n)?).ok()?;
    }
    Some(n)
}

/// Copies `len` bytes from `from[start..]` to `to[at..]`: as one 16-, 32- or 64-byte piece
/// when `len` is at most [`BLOCK`] and both sides have the room (the bytes past `len` are
/// overwritten by what comes next, or left past the end). Fixed-size pieces are plain moves,
/// where a copy of any length is a call.
#[inline(always)]
fn block_copy(to: &mut [u8], at: usize, from: &[u8], start: usize, len: usize) {
    /// The first `N` bytes of a block.
    #[inline(always)]
    fn piece<const N: usize>(room: &mut [u8; BLOCK], block: &[u8; BLOCK]) {
        if let (Some(to), Some(from)) = (room.first_chunk_mut::<N>(), block.first_chunk::<N>()) {
            *to = *from;
        }
    }
    let block = from.get(start..).and_then(<[u8]>::first_chunk::<BLOCK>);
    let room = to.get_mut(at..).and_then(<[u8]>::first_chunk_mut::<BLOCK>);
    match (block, room) {
        (Some(block), Some(room)) if len <= BLOCK => match len {
            0..=16 => piece::<16>(room, block),
            17..=32 => piece::<32>(room, block),
            _ => piece::<BLOCK>(room, block),
        },
        _ => {
            if let (Some(from), Some(to)) = (from.get(start..start + len), to.get_mut(at..at + len))
            {
                to.copy_from_slice(from);
            }
        }
    }
}

/// Copies `from` to the start of `to` in fixed-size moves, the last one overlapping the one
/// before (short copies of any length are calls; these are a few vector moves). `None` when `to`
/// is shorter.
#[inline(always)]
fn copy_moves(to: &mut [u8], from: &[u8]) -> Option<()> {
    /// The first and the last `N` bytes (all of them when `N <= from.len() <= 2 * N`).
    fn ends<const N: usize>(to: &mut [u8], from: &[u8]) -> Option<()> {
        *to.first_chunk_mut::<N>()? = *from.first_chunk::<N>()?;
        *to.last_chunk_mut::<N>()? = *from.last_chunk::<N>()?;
        Some(())
    }
    let to = to.get_mut(..from.len())?;
    match from.len() {
        0..16 => to.copy_from_slice(from),
        16..32 => ends::<16>(to, from)?,
        32..64 => ends::<32>(to, from)?,
        _ => {
            for (to, from) in to
                .as_chunks_mut::<64>()
                .0
                .iter_mut()
                .zip(from.as_chunks::<64>().0)
            {
                *to = *from;
            }
            *to.last_chunk_mut::<64>()? = *from.last_chunk::<64>()?;
        }
    }
    Some(())
}

/// Sorts the indices of `entries` by prefix into `order` (which it clears) with an insertion
/// sort: few compares for a dozen pairs, and the branches repeat for bodies of one shape (a
/// callback type always sends its parameters in the same order). `false` when two prefixes are
/// equal: then the order is incomplete.
fn insertion_sort(entries: &[Entry], order: &mut Vec<u32>) -> bool {
    order.clear();
    let mut distinct = true;
    for (i, entry) in (0u32..).zip(entries) {
        let p = entry.prefix;
        let mut j = order.len();
        order.push(i);
        while let Some(&before) = j.checked_sub(1).and_then(|k| order.get(k)) {
            let q = entries.get(before as usize).map_or(0, |e| e.prefix);
            distinct &= q != p;
            if q <= p {
                break;
            }
            if let Some(slot) = order.get_mut(j) {
                *slot = before;
            }
            j -= 1;
        }
        if let Some(slot) = order.get_mut(j) {
            *slot = i;
        }
    }
    distinct
}

/// The decoded, sorted, distinct pairs of one form body, in a scratch space of their own (the
/// tests look inside; the validator borrows the thread's space through [`with_string_to_sign`]).
#[cfg(test)]
#[derive(Debug)]
pub(crate) struct FormPairs<'b> {
    body: std::marker::PhantomData<&'b [u8]>,
    scratch: Scratch,
    signed: Range<usize>,
}

#[cfg(test)]
impl<'b> FormPairs<'b> {
    /// Decodes `body`; `None` when it is not UTF-8, raw or decoded (or longer than 1 GiB).
    pub(crate) fn decode(body: &'b [u8]) -> Option<Self> {
        let mut scratch = Scratch::new();
        let signed = scratch.decode(b"", body)?;
        Some(Self {
            body: std::marker::PhantomData,
            scratch,
            signed,
        })
    }

    /// The pairs as UTF-8 bytes, sorted by key then value, exact duplicates removed.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> + Clone + '_ {
        let copy = self.scratch.buf.as_slice();
        self.scratch
            .order
            .iter()
            .filter_map(|&i| self.scratch.entries.get(i as usize))
            .map(move |e| e.strings(copy))
    }

    /// Every key and value of [`iter`](Self::iter), end to end: what follows the URL in the
    /// string-to-sign.
    pub(crate) fn signed(&self) -> &[u8] {
        self.scratch
            .buf
            .get(self.signed.clone())
            .unwrap_or_default()
    }
}

/// The first 16 bytes, zero-padded, as a big-endian number (see [`prefix`]).
#[cfg(test)]
fn prefix16(s: &[u8]) -> u128 {
    u128::from(prefix(s)) << 64 | u128::from(prefix(s.get(8..).unwrap_or_default()))
}

/// The first 8 bytes, zero-padded, as a big-endian number: when two prefixes differ they order
/// the strings as a byte comparison would.
#[cfg(test)]
fn prefix(s: &[u8]) -> u64 {
    match s.first_chunk::<8>() {
        Some(first) => u64::from_be_bytes(*first),
        None => s
            .iter()
            .zip((0..8).rev())
            .fold(0, |acc, (b, i)| acc | u64::from(*b) << (8 * i)),
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `form_urlencoded` gives, sorted and deduplicated.
    fn reference(body: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = form_urlencoded::parse(body)
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect();
        pairs.sort();
        pairs.dedup();
        pairs
    }

    fn ours(body: &[u8]) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
        FormPairs::decode(body).map(|p| p.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect())
    }

    #[test]
    fn same_as_form_urlencoded() {
        for body in [
            &b""[..],
            b"&&&",
            b"a",
            b"a=",
            b"=a",
            b"=",
            b"a=1&a=1&a=0&b",
            b"a=b=c&&x=%",
            b"k=%2B1415%20x+y&K=%zz%4%41%4a%4A",
            b"Body=Hola+%F0%9F%91%8B+%C2%BFqu%C3%A9",
            b"%2=%+2&%%41=%41%",
            b"To=%2B14155550199&From=%2B14155550100&MessageStatus=sent",
        ] {
            assert_eq!(
                ours(body),
                Some(reference(body)),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn long_common_prefixes_and_nul_bytes_sort_by_bytes() {
        let body = b"MessageStatus=b&MessageSid=a&MessageS=c&MessageS%00=d&MessageS=%00&Message=e\
                     &MessagingServiceSid=f&MessageStatus=a&MessageStatusX=a&ab=1&ab%00=2&a=3";
        assert_eq!(ours(body), Some(reference(body)));
    }

    #[test]
    fn prefixes_order_like_bytes() {
        let words: [&[u8]; 9] = [
            b"",
            b"\0",
            b"a",
            b"a\0",
            b"a\0\0\0\0\0\0\0\0",
            b"ab",
            b"abcdefgh",
            b"abcdefghi",
            b"b",
        ];
        for x in words {
            for y in words {
                let (px, py) = (prefix(x), prefix(y));
                if px != py {
                    assert_eq!(px.cmp(&py), x.cmp(y), "{x:?} {y:?}");
                }
            }
        }
        assert_eq!(prefix(b"ab"), 0x6162_0000_0000_0000);
    }

    #[test]
    fn scratch_space_is_reused_and_never_shared() {
        let first = FormPairs::decode(b"b=2&a=%2B1").unwrap();
        // A second decode while the first is alive gets its own space.
        let second = FormPairs::decode(b"z=%7A&y=1").unwrap();
        let collect = |p: &FormPairs<'_>| {
            p.iter()
                .map(|(k, v)| (k.to_vec(), v.to_vec()))
                .collect::<Vec<_>>()
        };
        assert_eq!(collect(&first), reference(b"b=2&a=%2B1"));
        assert_eq!(collect(&second), reference(b"z=%7A&y=1"));
        drop(first);
        drop(second);
        let third = FormPairs::decode(b"c=%41").unwrap();
        assert_eq!(collect(&third), reference(b"c=%41"));
        assert!(third.scratch.buf.capacity() > 0);
    }

    #[test]
    fn invalid_utf8_is_left_to_form_urlencoded() {
        assert!(ours(b"a=%FF").is_none());
        assert!(ours(b"a=\xff").is_none());
        assert!(ours(b"%C3=1").is_none());
        assert!(ours(b"a=%C3%A9").is_some());
        assert!(ours("a=é%C3%A9".as_bytes()).is_some());
        assert!(ours("a=%C3©".as_bytes()).is_none());
    }

    /// What `with_string_to_sign` (with no URL) and `FormPairs::signed` should give: the
    /// reference pairs end to end.
    fn reference_signed(body: &[u8]) -> Vec<u8> {
        reference(body)
            .into_iter()
            .flat_map(|(k, v)| [k, v])
            .flatten()
            .collect()
    }

    fn check_signed(body: &[u8]) {
        let want = std::str::from_utf8(body)
            .is_ok()
            .then(|| reference_signed(body));
        let fresh = FormPairs::decode(body).map(|p| p.signed().to_vec());
        let shared = with_string_to_sign(b"", body, |s| s.map(<[u8]>::to_vec));
        let with_url = with_string_to_sign(b"https://h/p?q=%41", body, |s| s.map(<[u8]>::to_vec));
        let want_with_url = fresh
            .as_ref()
            .map(|f| [&b"https://h/p?q=%41"[..], f].concat());
        assert_eq!(with_url, want_with_url);
        if let (Some(want), Some(got)) = (&want, &fresh) {
            assert_eq!(got, want, "{:?}", String::from_utf8_lossy(body));
        }
        assert_eq!(shared, fresh, "{:?}", String::from_utf8_lossy(body));
        if let Some(pairs) = FormPairs::decode(body) {
            let copy = pairs.scratch.buf.as_slice();
            for e in &pairs.scratch.entries {
                assert_eq!(e.prefix, prefix16(e.strings(copy).0));
            }
        }
    }

    #[test]
    fn signed_bytes_are_the_sorted_pairs_end_to_end() {
        let long = "x".repeat(100);
        let many: String = (0..40).map(|i| format!("k{}={}&", 39 - i, i)).collect();
        let shared_prefix =
            "SharedPrefix0123=b&SharedPrefix0123=a&SharedPrefix01234=c&SharedPrefix0123=a";
        for body in [
            "".to_owned(),
            "a".to_owned(),
            "=".repeat(64),
            "&".repeat(65),
            format!("{long}={long}&b={long}%41&{long}+%41={long}"),
            format!(
                "MessageSid=SM{}&To=%2B1415&Body={}",
                "f".repeat(32),
                "%C3%A9".repeat(30)
            ),
            many,
            shared_prefix.to_owned(),
            // Exactly one window, one window and a byte, two windows.
            format!("a={}", "b".repeat(62)),
            format!("a={}", "b".repeat(63)),
            format!("a={}&c=d", "b".repeat(120)),
        ] {
            check_signed(body.as_bytes());
        }
    }

    /// Decodes `body` in `scratch` (reused, with its cached order) and checks the signed bytes.
    fn check_in(scratch: &mut Scratch, body: &str) {
        let signed = scratch.decode(b"", body.as_bytes()).expect("UTF-8 body");
        let got = scratch.buf.get(signed).unwrap().to_vec();
        assert_eq!(got, reference_signed(body.as_bytes()), "{body:?}");
    }

    #[test]
    fn cached_order_is_reused_only_for_the_same_key_prefixes() {
        let mut scratch = Scratch::new();
        let callback =
            "MessageSid=SM1&SmsSid=SM1&From=%2B1&To=%2B2&MessageStatus=sent&ApiVersion=v";
        check_in(&mut scratch, callback);
        assert_eq!(scratch.sorted_prefixes.len(), 6);
        // Same keys, same order, other values: the cached order (a hit).
        let before = scratch.sorted_prefixes.clone();
        check_in(
            &mut scratch,
            "MessageSid=SM9&SmsSid=SM8&From=%2B7&To=6&MessageStatus=delivered&ApiVersion=",
        );
        assert_eq!(scratch.sorted_prefixes, before);
        // Same keys in another order, one key fewer, one more: sorted again (misses).
        check_in(
            &mut scratch,
            "To=%2B2&From=%2B1&ApiVersion=v&MessageStatus=sent&SmsSid=SM1&MessageSid=SM1",
        );
        assert_ne!(scratch.sorted_prefixes, before);
        check_in(
            &mut scratch,
            "To=%2B2&From=%2B1&ApiVersion=v&MessageStatus=sent&SmsSid=SM1",
        );
        check_in(&mut scratch, &format!("{callback}&Body=hi"));
        check_in(&mut scratch, &format!("Body=hi&{callback}"));
        // Duplicate keys, and duplicate pairs: no cached order, then none reused.
        check_in(&mut scratch, "b=2&a=1&b=1&a=1");
        assert!(scratch.sorted_prefixes.is_empty());
        check_in(&mut scratch, "b=2&a=1&b=1&a=1");
        check_in(&mut scratch, "b=1&a=1&b=2");
        check_in(&mut scratch, "b=2&a=1");
        assert_eq!(scratch.sorted_prefixes.len(), 2);
        check_in(&mut scratch, "b=2&a=1&a=1");
        check_in(&mut scratch, "b=2&a=1");
        // Keys longer than their prefix, differing past it: the prefixes decide the order.
        check_in(
            &mut scratch,
            "SharedPrefix0123Zulu=1&SharedPrefix0124=2&A=3",
        );
        check_in(
            &mut scratch,
            "SharedPrefix0123Alpha=1&SharedPrefix0124=2&A=3",
        );
        check_in(
            &mut scratch,
            "SharedPrefix0123Alpha=1&SharedPrefix0123=2&A=3",
        );
        // More pairs than the insertion sort takes, then a short body again.
        let many: String = (0..40).map(|i| format!("k{}={}&", 39 - i, i)).collect();
        check_in(&mut scratch, &many);
        assert_eq!(scratch.sorted_prefixes.len(), 40);
        let other_values: String = (0..40)
            .map(|i| format!("k{}=v{}&", 39 - i, 2 * i))
            .collect();
        check_in(&mut scratch, &other_values);
        let reordered: String = (0..40).map(|i| format!("k{i}={i}&")).collect();
        check_in(&mut scratch, &reordered);
        check_in(&mut scratch, &format!("{many}k3=again"));
        assert!(scratch.sorted_prefixes.is_empty());
        check_in(&mut scratch, &many);
        check_in(&mut scratch, "b=2&a=1");
    }

    #[test]
    fn leading_escapes_of_every_length_decode_like_form_urlencoded() {
        let digits = "14155550100987654";
        for len in 0..=digits.len() {
            let plain = &digits[..len];
            for escaped in [
                format!("%2B{plain}"),
                format!("%2b{plain}"),
                format!("%41{plain}"),
                format!("%C3%A9{plain}"),
                format!("%2B{plain}%2B"),
                format!("%2B{plain}+x"),
                format!("%2B{plain}é"),
                format!("%zz{plain}"),
                format!("%2{plain}"),
                format!("%{plain}"),
            ] {
                for body in [
                    format!("From={escaped}"),
                    format!("From={escaped}&To=%2B1&Body=a+b"),
                    format!("{escaped}={escaped}&{escaped}=1&z=%2B9"),
                    format!("{escaped}&{escaped}"),
                ] {
                    check_signed(body.as_bytes());
                }
            }
        }
    }

    #[test]
    fn thread_scratch_in_use_falls_back_to_a_fresh_one() {
        let outer = with_string_to_sign(b"u", b"b=2&a=1", |s| {
            let inner = with_string_to_sign(b"v", b"d=%34&c=3", |s| s.map(<[u8]>::to_vec));
            (s.map(<[u8]>::to_vec), inner)
        });
        assert_eq!(outer.0.as_deref(), Some(&b"ua1b2"[..]));
        assert_eq!(outer.1.as_deref(), Some(&b"vc3d4"[..]));
    }

    #[test]
    fn prefixes16_order_like_bytes() {
        let words: [&[u8]; 8] = [
            b"",
            b"\0",
            b"MessageS",
            b"MessageSid",
            b"MessageStatus",
            b"MessageStatus\0\0\0",
            b"MessageStatusXYZW",
            b"MessageStatusXYZWV",
        ];
        for x in words {
            for y in words {
                let (px, py) = (prefix16(x), prefix16(y));
                if px != py {
                    assert_eq!(px.cmp(&py), x.cmp(y), "{x:?} {y:?}");
                }
            }
        }
    }

    proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config {
        cases: 512,
        failure_persistence: None,
        ..proptest::test_runner::Config::default()
    })]

    #[test]
    fn matches_form_urlencoded_on_keys_sharing_prefixes(pairs in proptest::collection::vec(
        (
            proptest::sample::select(vec![
                "", "a", "MessageS", "MessageSid", "MessageStatus", "MessageS\0", "Messag",
                "MessagingServiceSid", "Digits", "Dígits", "+ %2B",
            ]),
            proptest::sample::select(vec!["", "1", "1234", "5678", "a b", "%", "\0", "é"]),
        ),
        0..24,
    )) {
        let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(&pairs).finish();
        proptest::prop_assert_eq!(ours(body.as_bytes()), Some(reference(body.as_bytes())));
    }

    #[test]
    fn matches_form_urlencoded_on_any_bytes(body in proptest::collection::vec(
        proptest::prop_oneof![
            proptest::sample::select(b"&=+%aAfF09".to_vec()),
            proptest::num::u8::ANY,
        ],
        0..64,
    )) {
        if let Some(got) = ours(&body) {
            proptest::prop_assert_eq!(got, reference(&body));
        } else {
            // Only bodies with invalid UTF-8 (raw or decoded) leave the fast path.
            let decoded_invalid = std::str::from_utf8(&body).is_err()
                || form_urlencoded::parse(&body).any(|(k, v)| k.contains('\u{fffd}') || v.contains('\u{fffd}'));
            proptest::prop_assert!(decoded_invalid);
        }
    }

    #[test]
    fn a_reused_scratch_space_matches_form_urlencoded(bodies in proptest::collection::vec(
        proptest::collection::vec(
            (
                proptest::sample::select(vec![
                    "MessageSid", "MessageStatus", "SmsSid", "To", "From", "a", "",
                    "SharedPrefix0123", "SharedPrefix0123X", "SharedPrefix0123Y",
                ]),
                proptest::sample::select(vec!["", "1", "2", "+1415", "a b"]),
            ),
            0..12,
        ),
        1..8,
    )) {
        let mut scratch = Scratch::new();
        for pairs in &bodies {
            let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
            let signed = scratch.decode(b"", body.as_bytes());
            let got = signed.and_then(|r| scratch.buf.get(r)).map(<[u8]>::to_vec);
            proptest::prop_assert_eq!(got, Some(reference_signed(body.as_bytes())));
            // Twice in a row: the second decoding may reuse the first one's order.
            let signed = scratch.decode(b"", body.as_bytes());
            let got = signed.and_then(|r| scratch.buf.get(r)).map(<[u8]>::to_vec);
            proptest::prop_assert_eq!(got, Some(reference_signed(body.as_bytes())));
        }
    }

    #[test]
    fn signed_bytes_match_on_long_bodies(pairs in proptest::collection::vec(
        (
            proptest::sample::select(vec![
                "MessageSid", "MessageStatus", "SmsSid", "To", "From", "Body", "a", "",
                "MediaUrl0", "MediaUrl1", "SharedPrefix0123", "SharedPrefix01234", "é+%",
            ]),
            proptest::string::string_regex("[a-zA-Z0-9 +%&=é/]{0,90}").unwrap(),
        ),
        0..40,
    )) {
        let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(&pairs).finish();
        check_signed(body.as_bytes());
        let raw: String = pairs.iter().map(|(k, v)| format!("{k}={v}&")).collect();
        check_signed(raw.as_bytes());
    }    }
}
