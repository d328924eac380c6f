//! Form bodies decoded into sorted, distinct pairs without an allocation per pair.
//!
//! Same result as `form_urlencoded::parse` (split at `&`, skip empty pieces, split at the first
//! `=`, `+` → space, `%XX` → byte, anything else literal), which the tests check. Strings without
//! `%` or `+` stay slices of the body; the others are decoded into one buffer. The buffer and the
//! index being sorted live in a per-thread scratch space that is reused, so a validation in steady
//! state allocates nothing. Bodies that are not UTF-8, raw or decoded, are left to the caller
//! (which uses `form_urlencoded`'s lossy decoding, the reference).

use std::cell::Cell;
use std::cmp::Ordering;

/// Scratch space larger than this is not kept for the next request.
const KEEP_BYTES: usize = 64 * 1024;
const KEEP_ENTRIES: usize = 1024;

thread_local! {
    static SCRATCH: Cell<Scratch> = const { Cell::new(Scratch::new()) };
}

/// The reusable decode buffer and pair index.
#[derive(Debug, Default)]
struct Scratch {
    buf: Vec<u8>,
    entries: Vec<Entry>,
}

impl Scratch {
    const fn new() -> Self {
        Self {
            buf: Vec::new(),
            entries: Vec::new(),
        }
    }
}

/// A decoded string: a range of the body, or of the decode buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start: u32,
    end: u32,
    in_buf: bool,
}

impl Span {
    /// A range of the body, whose length was checked to fit in `u32`.
    #[allow(clippy::cast_possible_truncation)]
    fn body(start: usize, end: usize) -> Self {
        Self {
            start: start as u32,
            end: end as u32,
            in_buf: false,
        }
    }
}

/// No `=` seen yet in the current piece.
const NO_EQ: usize = usize::MAX;

/// One pair; `prefix` (the key's first 8 bytes, big-endian, zero-padded) orders most keys
/// without reading them.
#[derive(Debug, Clone, Copy)]
struct Entry {
    prefix: u64,
    key: Span,
    value: Span,
}

/// The decoded, sorted, distinct pairs of one form body.
#[derive(Debug)]
pub(crate) struct FormPairs<'b> {
    body: &'b [u8],
    scratch: Scratch,
}

impl<'b> FormPairs<'b> {
    /// Decodes `body`; `None` when it is not UTF-8, raw or decoded (or longer than 4 GiB).
    pub(crate) fn decode(body: &'b [u8]) -> Option<Self> {
        let mut scratch = SCRATCH.try_with(Cell::take).unwrap_or_default();
        scratch.buf.clear();
        scratch.entries.clear();
        let mut pairs = Self { body, scratch };
        pairs.fill()?;
        Some(pairs)
    }

    fn fill(&mut self) -> Option<()> {
        let body = self.body;
        u32::try_from(body.len()).ok()?;
        // A UTF-8 body split at ASCII bytes gives UTF-8 pieces: only decoded escapes need checking.
        std::str::from_utf8(body).ok()?;
        // One pass, 16 bytes at a time: a bit mask of the structural bytes (`&`, `=`, `%`, `+`),
        // which the compiler vectorises, then one step per structural byte.
        let mut start = 0;
        let mut eq = NO_EQ;
        let mut escaped_key = false;
        let mut escaped_value = false;
        let mut step = |this: &mut Self, i: usize, b: u8| -> Option<()> {
            if b == b'&' {
                this.push_pair(start, eq, i, [escaped_key, escaped_value])?;
                start = i + 1;
                eq = NO_EQ;
                escaped_key = false;
                escaped_value = false;
                return Some(());
            }
            // `=`, `%` or `+`: bookkeeping without branches (these bytes come in no pattern).
            let in_key = eq == NO_EQ;
            let is_eq = b == b'=';
            eq = if is_eq & in_key { i } else { eq };
            escaped_key |= !is_eq & in_key;
            escaped_value |= !is_eq & !in_key;
            Some(())
        };
        let chunks = body.chunks_exact(16);
        let tail = chunks.remainder();
        let mut base = 0;
        for chunk in chunks {
            let mut mask = chunk
                .iter()
                .enumerate()
                .fold(0u16, |mask, (j, &b)| mask | u16::from(is_special(b)) << j);
            while mask != 0 {
                let j = mask.trailing_zeros() as usize;
                mask &= mask - 1;
                step(self, base + j, chunk.get(j).copied().unwrap_or_default())?;
            }
            base += 16;
        }
        for (j, &b) in tail.iter().enumerate() {
            if is_special(b) {
                step(self, base + j, b)?;
            }
        }
        self.push_pair(start, eq, body.len(), [escaped_key, escaped_value])?;
        let Scratch { buf, entries } = &mut self.scratch;
        let get = |s: Span| get(body, buf, s);
        // Sort by the 8-byte prefixes (cheap integer compares), then put runs of equal prefixes
        // in full byte order with an insertion pass (such runs are short and nearly sorted).
        entries.sort_unstable_by_key(|e| e.prefix);
        let full = |a: &Entry, b: &Entry| {
            a.prefix
                .cmp(&b.prefix)
                .then_with(|| get(a.key).cmp(get(b.key)))
                .then_with(|| get(a.value).cmp(get(b.value)))
        };
        for i in 1..entries.len() {
            let mut j = i;
            while j > 0 {
                match (entries.get(j - 1), entries.get(j)) {
                    (Some(a), Some(b))
                        if a.prefix == b.prefix && full(a, b) == Ordering::Greater =>
                    {
                        entries.swap(j - 1, j);
                        j -= 1;
                    }
                    _ => break,
                }
            }
        }
        entries.dedup_by(|a, b| {
            a.prefix == b.prefix && get(a.key) == get(b.key) && get(a.value) == get(b.value)
        });
        Some(())
    }

    /// Records the pair in `start..end` (its first `=` at `eq`), skipping an empty piece.
    #[inline]
    fn push_pair(
        &mut self,
        start: usize,
        eq: usize,
        end: usize,
        [key_escaped, value_escaped]: [bool; 2],
    ) -> Option<()> {
        if start == end {
            return Some(());
        }
        let (key_end, value_start) = if eq == NO_EQ {
            (end, end)
        } else {
            (eq, eq + 1)
        };
        let key = if key_escaped {
            self.unescape(start, key_end)?
        } else {
            Span::body(start, key_end)
        };
        let value = if value_escaped {
            self.unescape(value_start, end)?
        } else {
            Span::body(value_start, end)
        };
        let prefix = self.prefix(key);
        self.scratch.entries.push(Entry { prefix, key, value });
        Some(())
    }

    /// [`prefix`] of a span, read as one 8-byte load from its source when 8 bytes follow its
    /// start (the bytes past a short key are masked off).
    #[inline]
    fn prefix(&self, span: Span) -> u64 {
        let source = if span.in_buf {
            self.scratch.buf.as_slice()
        } else {
            self.body
        };
        let len = span.end.saturating_sub(span.start) as usize;
        let chunk = source
            .get(span.start as usize..)
            .and_then(<[u8]>::first_chunk::<8>);
        match chunk {
            Some(chunk) if len >= 8 => u64::from_be_bytes(*chunk),
            Some(chunk) => u64::from_be_bytes(*chunk) & !(u64::MAX >> (8 * len)),
            None => prefix(get(self.body, &self.scratch.buf, span)),
        }
    }

    /// Decodes the body's `start..end` (which has `%` or `+`) into the buffer.
    fn unescape(&mut self, start: usize, end: usize) -> Option<Span> {
        let raw = self.body.get(start..end)?;
        let buf = &mut self.scratch.buf;
        if buf.capacity() == 0 {
            buf.reserve(self.body.len());
        }
        let from = buf.len();
        let mut high = 0u8;
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
            buf.push(byte);
            i += used;
        }
        if high >= 0x80 {
            std::str::from_utf8(buf.get(from..)?).ok()?;
        }
        Some(Span {
            start: u32::try_from(from).ok()?,
            end: u32::try_from(buf.len()).ok()?,
            in_buf: true,
        })
    }

    /// The pairs as UTF-8 bytes, sorted by key then value, exact duplicates removed.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> + Clone + '_ {
        let (body, buf) = (self.body, self.scratch.buf.as_slice());
        self.scratch
            .entries
            .iter()
            .map(move |e| (get(body, buf, e.key), get(body, buf, e.value)))
    }
}

impl Drop for FormPairs<'_> {
    /// Hands the scratch space back to the thread, unless it grew too large to keep.
    fn drop(&mut self) {
        let mut scratch = std::mem::take(&mut self.scratch);
        if scratch.buf.capacity() > KEEP_BYTES {
            scratch.buf = Vec::new();
        }
        if scratch.entries.capacity() > KEEP_ENTRIES {
            scratch.entries = Vec::new();
        }
        let _ = SCRATCH.try_with(|cell| cell.set(scratch));
    }
}

fn get<'s>(body: &'s [u8], buf: &'s [u8], span: Span) -> &'s [u8] {
    let source = if span.in_buf { buf } else { body };
    source
        .get(span.start as usize..span.end as usize)
        .unwrap_or_default()
}

/// The first 8 bytes, zero-padded, as a big-endian number: when two prefixes differ they order
/// the strings as a byte comparison would.
fn prefix(s: &[u8]) -> u64 {
    match s.first_chunk::<8>() {
        Some(first) => u64::from_be_bytes(*first),
        None => s
            .iter()
            .zip((0..8).rev())
            .fold(0, |acc, (b, i)| acc | u64::from(*b) << (8 * i)),
    }
}

/// `&`, `=`, `%` or `+`, without branches so that the chunk loop vectorises.
#[inline(always)]
fn is_special(b: u8) -> bool {
    (b == b'&') | (b == b'=') | (b == b'%') | (b == b'+')
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
    }
}
