//! Form bodies as Twilio signs them: split and percent-decoded in a reused per-thread buffer,
//! then the pairs sorted by key then value, exact duplicates dropped.

use std::cell::RefCell;
use std::cmp::Ordering;

/// Scratch space larger than this is not kept for the next request.
const KEEP_BYTES: usize = 64 * 1024;

thread_local! {
    static SCRATCH: RefCell<Form> = RefCell::default();
}

/// A form body decoded as `form_urlencoded::parse` decodes it (tested): split at `&` (empty
/// pieces skipped) and at the first `=`, `+` as a space, `%XX` as a byte, invalid UTF-8 replaced.
#[derive(Debug, Default)]
pub(crate) struct Form {
    /// The body's copy and 16 zero bytes, its escaped strings decoded in place (decoding never
    /// lengthens a string); then, for a body that is not UTF-8 once decoded, each pair as
    /// `form_urlencoded` decodes it, and 16 zero bytes.
    bytes: Vec<u8>,
    /// In body order, each key's first 16 bytes, zero-padded, as a big-endian number (where two
    /// differ, they order the keys as the keys' bytes do), and where the key and the value are
    /// in `bytes` (start, end, start, end).
    pairs: Vec<(u128, [usize; 4])>,
    /// Indices of the distinct pairs, sorted.
    order: Vec<usize>,
    /// The key prefixes that `order` sorts, when they were all different. A kind of callback
    /// sends the same keys in the same order every time, and the same distinct prefixes sort
    /// alike, so the next body with them keeps `order`.
    sorted_for: Vec<u128>,
    /// The keys and values of the sorted pairs end to end: the string-to-sign after the URL.
    signed: Vec<u8>,
}

/// A piece of the body being split: where it starts, its first `=`, whether its key and its
/// value hold an escape (`%` or `+`).
type Piece = (usize, Option<usize>, [bool; 2]);

impl Form {
    /// Runs `f` once on `body` decoded in the thread's scratch space (request bytes only:
    /// nothing derived from a key is kept there).
    pub(crate) fn with<R>(body: &[u8], mut f: impl FnMut(&mut Form) -> R) -> R {
        let mut run = |form: &mut Form| {
            form.decode(body);
            f(form)
        };
        let shared = SCRATCH.try_with(|cell| {
            let mut form = cell.try_borrow_mut().ok()?;
            let result = run(&mut form);
            if form.bytes.capacity() + form.signed.capacity() + form.order.capacity() > KEEP_BYTES {
                *form = Form::default();
            }
            Some(result)
        });
        // The thread's space is gone (thread exit) or in use: a fresh one.
        shared
            .ok()
            .flatten()
            .unwrap_or_else(|| run(&mut Form::default()))
    }

    /// Decodes `body`, sorts its pairs by bytes and lays them out.
    fn decode(&mut self, body: &[u8]) {
        self.bytes.clear();
        self.bytes.extend_from_slice(body);
        self.bytes.extend_from_slice(&[0; 16]);
        if std::str::from_utf8(body).is_err() || self.split(body).is_none() {
            self.pairs.clear();
            for (key, value) in form_urlencoded::parse(body) {
                let start = self.bytes.len();
                self.bytes.extend_from_slice(key.as_bytes());
                let middle = self.bytes.len();
                self.bytes.extend_from_slice(value.as_bytes());
                let end = self.bytes.len();
                self.bytes.extend_from_slice(&[0; 16]);
                self.add([start, middle, middle, end]);
            }
        }
        let prefixes = self.pairs.iter().map(|(prefix, _)| prefix);
        if self.pairs.is_empty() || !prefixes.eq(&self.sorted_for) {
            self.sort();
        }
        self.lay_out();
    }

    /// Splits a UTF-8 body, visiting its `&`, `=`, `%` and `+`, found eight bytes at a time;
    /// `None` when a decoded string is not UTF-8.
    fn split(&mut self, body: &[u8]) -> Option<()> {
        self.pairs.clear();
        let (words, tail) = body.as_chunks::<8>();
        let mut last = [0u8; 8];
        last.get_mut(..tail.len())?.copy_from_slice(tail);
        let mut piece: Piece = (0, None, [false; 2]);
        for (i, word) in words.iter().chain([&last]).enumerate() {
            let mut found = specials(u64::from_le_bytes(*word));
            while found != 0 {
                let at = 8 * i + found.trailing_zeros() as usize / 8;
                found &= found - 1;
                match (word.get(at % 8), &mut piece) {
                    (Some(b'&'), _) => {
                        self.piece(piece, at)?;
                        piece = (at + 1, None, [false; 2]);
                    }
                    (Some(b'='), (_, eq @ None, _)) => *eq = Some(at),
                    (Some(b'='), _) => {}
                    (_, (_, eq, escaped)) => escaped[usize::from(eq.is_some())] = true,
                }
            }
        }
        self.piece(piece, body.len())
    }

    /// Records the piece ending at `end` unless it is empty, decoding its escaped key and
    /// value in place; `None` when one is not UTF-8 once decoded.
    #[inline]
    fn piece(&mut self, (start, eq, escaped): Piece, end: usize) -> Option<()> {
        if start == end {
            return Some(());
        }
        let key_end = eq.unwrap_or(end);
        let mut pair = [start, key_end, (key_end + 1).min(end), end];
        for (at, escaped) in [1, 3].into_iter().zip(escaped) {
            if escaped {
                let string = self.bytes.get_mut(pair[at - 1]..pair[at])?;
                pair[at] = pair[at - 1] + unescape(string)?;
            }
        }
        self.add(pair);
        Some(())
    }

    /// Records a pair and its key's prefix (from the 16 bytes at the key's start, which
    /// `bytes` always has, the key's own).
    #[inline]
    fn add(&mut self, pair: [usize; 4]) {
        let [key, key_end, ..] = pair;
        let first = self.bytes.get(key..).and_then(<[u8]>::first_chunk::<16>);
        let len = u32::try_from(key_end.saturating_sub(key).min(16)).unwrap_or(16);
        let kept = !u128::MAX.checked_shr(8 * len).unwrap_or(0);
        let prefix = u128::from_be_bytes(first.copied().unwrap_or_default()) & kept;
        self.pairs.push((prefix, pair));
    }

    /// Sorts the pairs by key prefix, then (only where two prefixes are equal) by key and
    /// value, and drops exact duplicates.
    fn sort(&mut self) {
        let prefix = |i: &usize| self.pairs.get(*i).map(|(prefix, _)| *prefix);
        self.order.clear();
        self.order.extend(0..self.pairs.len());
        self.order.sort_unstable_by_key(prefix);
        self.sorted_for.clear();
        if self
            .order
            .windows(2)
            .all(|w| matches!(w, [a, b] if prefix(a) != prefix(b)))
        {
            self.sorted_for
                .extend(self.pairs.iter().map(|(prefix, _)| prefix));
            return;
        }
        let pair = |i: &usize| strings(&self.bytes, self.pairs.get(*i));
        self.order.sort_unstable_by(|a, b| pair(a).cmp(&pair(b)));
        self.order.dedup_by(|a, b| pair(a) == pair(b));
    }

    /// Lays out the keys and values of the sorted pairs end to end.
    fn lay_out(&mut self) {
        self.signed.clear();
        for i in &self.order {
            let (key, value) = strings(&self.bytes, self.pairs.get(*i));
            self.signed.extend_from_slice(key);
            self.signed.extend_from_slice(value);
        }
    }

    /// The string-to-sign after the URL: the key then the value of every pair, in order.
    pub(crate) fn signed(&self) -> &[u8] {
        &self.signed
    }

    /// Sorts the pairs by UTF-16 code units (twilio-node, -java and -csharp) instead of bytes,
    /// that is code points (twilio-python); `false` when that changes nothing. The two orders
    /// differ only where a character above U+FFFF meets one from U+E000 to U+FFFF.
    pub(crate) fn sort_by_utf16(&mut self) -> bool {
        let pair = |i: &usize| strings(&self.bytes, self.pairs.get(*i));
        let cmp = |a: &usize, b: &usize| {
            let ((a_key, a_value), (b_key, b_value)) = (pair(a), pair(b));
            utf16_cmp(a_key, b_key).then_with(|| utf16_cmp(a_value, b_value))
        };
        if self.signed.is_ascii() || self.order.is_sorted_by(|a, b| cmp(a, b).is_le()) {
            return false;
        }
        self.order.sort_unstable_by(cmp);
        self.sorted_for.clear();
        self.lay_out();
        true
    }
}

/// Decodes an escaped string in place: its decoded length, `None` when the decoded bytes are
/// not UTF-8.
fn unescape(string: &mut [u8]) -> Option<usize> {
    let (mut read, mut write, mut high) = (0, 0, 0);
    while let Some(&byte) = string.get(read) {
        let hex = |at: usize| string.get(at).and_then(|d| char::from(*d).to_digit(16));
        let (byte, len) = match byte {
            b'+' => (b' ', 1),
            b'%' => match (hex(read + 1), hex(read + 2)) {
                (Some(hi), Some(lo)) => (u8::try_from(hi << 4 | lo).ok()?, 3),
                _ => (b'%', 1),
            },
            _ => (byte, 1),
        };
        *string.get_mut(write)? = byte;
        (read, write, high) = (read + len, write + 1, high | byte);
    }
    // A UTF-8 body cut at ASCII bytes gives UTF-8 strings: only decoded bytes can break one.
    if high >= 0x80 {
        std::str::from_utf8(string.get(..write)?).ok()?;
    }
    Some(write)
}

/// The key and the value of a pair.
fn strings<'a>(bytes: &'a [u8], pair: Option<&(u128, [usize; 4])>) -> (&'a [u8], &'a [u8]) {
    let [key, key_end, value, value_end] = pair.map(|(_, at)| *at).unwrap_or_default();
    let part = |from: usize, to: usize| bytes.get(from..to).unwrap_or_default();
    (part(key, key_end), part(value, value_end))
}

/// Bit 7 of each byte of `word` that is `&`, `=`, `%` or `+`, no other bit.
fn specials(word: u64) -> u64 {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const LOW7: u64 = ONES * 0x7F;
    // Bit 7 of a byte is set exactly where the byte of `x` is zero (no carry crosses bytes).
    let zero = |x: u64| !((x & LOW7).wrapping_add(LOW7) | x | LOW7);
    let found = [b'&', b'=', b'%', b'+'].map(|b| zero(word ^ (ONES * u64::from(b))));
    found.iter().fold(0, |all, one| all | one)
}

/// Compares UTF-8 strings as their UTF-16 code units would compare. Byte order is code point
/// order, and the two differ only where the first difference is between the lead bytes of a
/// 4-byte sequence (above U+FFFF: a surrogate, `D800`..`DFFF`, in UTF-16) and of a 3-byte one
/// from U+E000 (`EE`, `EF`): UTF-16 puts the surrogate first.
fn utf16_cmp(a: &[u8], b: &[u8]) -> Ordering {
    match a.iter().zip(b).find(|(x, y)| x != y) {
        Some((&x, &y)) if x >= 0xF0 && (0xEE..0xF0).contains(&y) => Ordering::Less,
        Some((&x, &y)) if y >= 0xF0 && (0xEE..0xF0).contains(&x) => Ordering::Greater,
        _ => a.cmp(b),
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

    fn signed(body: &[u8]) -> Vec<u8> {
        Form::with(body, |form| form.signed().to_vec())
    }

    #[test]
    fn same_pairs_as_form_urlencoded() {
        for body in [
            &b""[..],
            b"&&&",
            b"a",
            b"a=",
            b"=a",
            b"a=1&a=1&a=0&b",
            b"a=b=c&&x=%",
            b"k=%2B1415%20x+y&K=%zz%4%41%4a%4A",
            b"Body=Hola+%F0%9F%91%8B+%C2%BFqu%C3%A9",
            b"a=%FF&b=\xff&%C3=1",
        ] {
            let want: Vec<u8> = reference(body)
                .into_iter()
                .flat_map(|(k, v)| [k, v])
                .flatten()
                .collect();
            assert_eq!(signed(body), want, "{:?}", String::from_utf8_lossy(body));
        }
    }

    /// What `signed` should be: the reference pairs end to end.
    fn reference_signed(body: &[u8]) -> Vec<u8> {
        let pairs = reference(body).into_iter().flat_map(|(k, v)| [k, v]);
        pairs.flatten().collect()
    }

    #[test]
    fn keys_sharing_sixteen_bytes_or_ending_in_nul_sort_by_bytes() {
        for body in [
            &b"SharedPrefix0123Zulu=1&SharedPrefix0123Alpha=2&SharedPrefix0123=3&A=4"[..],
            b"ab%00=1&ab=2&ab%00%00=3&ab=1&ab%00=1",
            b"MessageStatus=b&MessageSid=a&MessageS=c&MessageS%00=d&MessageS=%00",
        ] {
            assert_eq!(
                signed(body),
                reference_signed(body),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn the_sorted_order_is_kept_only_for_the_same_distinct_key_prefixes() {
        let mut form = Form::default();
        let mut check = |body: &str| {
            form.decode(body.as_bytes());
            assert_eq!(form.signed(), reference_signed(body.as_bytes()), "{body:?}");
            !form.sorted_for.is_empty()
        };
        let callback =
            "MessageSid=SM1&SmsSid=SM1&From=%2B1&To=%2B2&MessageStatus=sent&ApiVersion=v";
        assert!(check(callback));
        // Same keys in the same order, other values: the kept order.
        assert!(check(
            "MessageSid=SM9&SmsSid=SM8&From=7&To=6&MessageStatus=x&ApiVersion="
        ));
        // Other orders, one key fewer or more, duplicates, shared prefixes, nothing.
        assert!(check(
            "To=%2B2&From=%2B1&ApiVersion=v&MessageStatus=sent&SmsSid=SM1&MessageSid=SM1"
        ));
        assert!(check(
            "To=%2B2&From=%2B1&ApiVersion=v&MessageStatus=sent&SmsSid=SM1"
        ));
        assert!(check(&format!("{callback}&Body=hi")));
        assert!(!check("b=2&a=1&b=1&a=1"));
        assert!(!check("b=2&a=1&b=1&a=1"));
        assert!(check("b=2&a=1"));
        assert!(!check("SharedPrefix0123Zulu=1&SharedPrefix0123Alpha=2"));
        assert!(!check(""));
        assert!(check("b=2&a=1"));
    }

    #[test]
    fn scratch_in_use_falls_back_to_a_fresh_one() {
        let (outer, inner) = Form::with(b"b=2&a=1", |form| {
            let inner = signed(b"d=%34&c=3");
            (form.signed().to_vec(), inner)
        });
        assert_eq!((&outer[..], &inner[..]), (&b"a1b2"[..], &b"c3d4"[..]));
        let big = "x=".to_owned() + &"y".repeat(KEEP_BYTES);
        assert_eq!(signed(big.as_bytes()).len(), KEEP_BYTES + 1);
        SCRATCH.with(|cell| assert_eq!(cell.borrow().bytes.capacity(), 0));
    }

    #[test]
    fn utf16_order_differs_only_above_u_ffff_against_u_e000_and_up() {
        let cases = [
            ("\u{10000}", "\u{E000}", Ordering::Less),
            ("\u{1F600}", "\u{FFFD}", Ordering::Less),
            ("a\u{10FFFF}", "a\u{EFFF}b", Ordering::Less),
            ("\u{10000}", "\u{D7FF}", Ordering::Greater),
            ("\u{E000}", "\u{E001}", Ordering::Less),
            ("\u{1F600}", "\u{1F601}", Ordering::Less),
            ("\u{1F600}", "\u{1F600}x", Ordering::Less),
            ("z", "\u{FFFF}", Ordering::Less),
        ];
        for (a, b, want) in cases {
            let units = |s: &str| s.encode_utf16().collect::<Vec<u16>>();
            assert_eq!(units(a).cmp(&units(b)), want, "{a:?} {b:?}");
            assert_eq!(utf16_cmp(a.as_bytes(), b.as_bytes()), want, "{a:?} {b:?}");
            assert_eq!(utf16_cmp(b.as_bytes(), a.as_bytes()), want.reverse());
        }
    }

    #[test]
    fn utf16_order_is_tried_only_when_it_differs() {
        let body = "%F0%9F%98%80=1&%EF%BF%BD=2&a=3";
        let resorted = Form::with(body.as_bytes(), |form| {
            let bytes_order: Vec<u8> = form.signed().to_vec();
            assert_eq!(bytes_order, "a3\u{FFFD}2\u{1F600}1".as_bytes());
            assert!(form.sort_by_utf16());
            form.signed().to_vec()
        });
        assert_eq!(resorted, "a3\u{1F600}1\u{FFFD}2".as_bytes());
        let same = Form::with("b=\u{1F600}&a=\u{E000}&a=1".as_bytes(), Form::sort_by_utf16);
        assert!(!same);
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config {
            cases: 512,
            failure_persistence: None,
            ..proptest::test_runner::Config::default()
        })]

        #[test]
        fn any_bytes_decode_like_form_urlencoded(body in proptest::collection::vec(
            proptest::prop_oneof![
                proptest::sample::select(b"&=+%aAfF09".to_vec()),
                proptest::num::u8::ANY,
            ],
            0..64,
        )) {
            let want: Vec<u8> = reference(&body).into_iter().flat_map(|(k, v)| [k, v]).flatten().collect();
            proptest::prop_assert_eq!(signed(&body), want);
        }

        #[test]
        fn a_reused_scratch_space_matches_form_urlencoded(bodies in proptest::collection::vec(
            proptest::collection::vec(
                (
                    proptest::sample::select(vec![
                        "MessageSid", "MessageStatus", "SmsSid", "To", "", "a%00",
                        "SharedPrefix0123", "SharedPrefix0123X", "SharedPrefix0123Y",
                    ]),
                    proptest::sample::select(vec!["", "1", "2", "+1415", "a b"]),
                ),
                0..8,
            ),
            1..8,
        )) {
            let mut form = Form::default();
            for pairs in &bodies {
                let body = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&");
                // Twice in a row: the second decoding may keep the first one's order.
                for _ in 0..2 {
                    form.decode(body.as_bytes());
                    proptest::prop_assert_eq!(form.signed(), reference_signed(body.as_bytes()));
                }
            }
        }

        #[test]
        fn utf16_cmp_is_the_order_of_utf16_code_units(a in "\\PC{0,4}", b in "\\PC{0,4}") {
            let units = |s: &str| s.encode_utf16().collect::<Vec<u16>>();
            proptest::prop_assert_eq!(utf16_cmp(a.as_bytes(), b.as_bytes()), units(&a).cmp(&units(&b)));
        }
    }
}
