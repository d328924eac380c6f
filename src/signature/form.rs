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
    /// The body, its escaped strings decoded in place (decoding never lengthens a string), then
    /// the strings whose invalid UTF-8 was replaced.
    bytes: Vec<u8>,
    /// 1 for each byte of the body that is `&`, `=`, `%` or `+`, else 0; then zeros.
    flags: Vec<u8>,
    /// Each pair: the first 8 bytes of its key as a big-endian number, zero-padded (they order
    /// keys as bytes do, ties aside, so most comparisons of a sort are one integer compare),
    /// and where its key and value are in `bytes` (`u32`s, to sort small items; the validator
    /// refuses bodies over 1 GiB). Sorted, distinct.
    pairs: Vec<(u64, [[u32; 2]; 2])>,
    /// The string-to-sign: the URL, then the keys and values of the sorted pairs end to end.
    signed: Vec<u8>,
    /// Where the pairs start in `signed`.
    url_len: usize,
}

impl Form {
    /// Runs `f` on `body` decoded in the thread's scratch space (request bytes only: nothing
    /// derived from a key is kept there), or in a fresh one while that one is in use.
    pub(crate) fn with<R>(url: &str, body: &[u8], mut f: impl FnMut(&mut Form) -> R) -> R {
        let mut run = |form: &mut Form| {
            form.url_len = url.len();
            form.signed.clear();
            form.signed.extend_from_slice(url.as_bytes());
            form.decode(body);
            f(form)
        };
        let shared = SCRATCH.try_with(|cell| {
            let mut form = cell.try_borrow_mut().ok()?;
            let result = run(&mut form);
            if form.bytes.capacity() + form.flags.capacity() + form.signed.capacity() > KEEP_BYTES {
                *form = Form::default();
            }
            Some(result)
        });
        shared
            .ok()
            .flatten()
            .unwrap_or_else(|| run(&mut Form::default()))
    }

    /// Splits `body` at `&` and each piece at its first `=`, decodes the strings and sorts the
    /// pairs by bytes. The bytes that matter are flagged in one loop that the compiler turns
    /// into vector compares, then found eight flags at a time (a byte-by-byte loop costs three
    /// times as much).
    fn decode(&mut self, body: &[u8]) {
        self.bytes.clear();
        self.bytes.resize(body.len(), 0);
        self.flags.clear();
        self.flags.resize(body.len().next_multiple_of(8) + 8, 0);
        let mut high = 0;
        for ((flag, copy), &b) in self.flags.iter_mut().zip(&mut self.bytes).zip(body) {
            *flag = u8::from((b == b'&') | (b == b'=') | (b == b'%') | (b == b'+'));
            (*copy, high) = (b, high | b);
        }
        if let Some(end) = self.flags.get_mut(body.len()) {
            *end = 1; // The end of the body ends a piece too.
        }
        self.pairs.clear();
        let (mut start, mut eq, mut escaped) = (0, None, [false; 2]);
        for (word_at, word) in self.flags.as_chunks::<8>().0.iter().enumerate() {
            let mut word = u64::from_le_bytes(*word);
            while word != 0 {
                let at = 8 * word_at + word.trailing_zeros() as usize / 8;
                word &= word - 1;
                match body.get(at) {
                    None | Some(b'&') => {
                        if start < at {
                            let key_end = eq.unwrap_or(at);
                            let mut string = |escaped: bool, from: usize, to: usize| {
                                if escaped || high >= 0x80 {
                                    return decoded(&mut self.bytes, from, to, escaped);
                                }
                                [from, to].map(|at| u32::try_from(at).unwrap_or(u32::MAX))
                            };
                            let key = string(escaped[0], start, key_end);
                            let value = string(escaped[1], (key_end + 1).min(at), at);
                            let mut first = [0; 8];
                            let key_bytes = part(&self.bytes, key).iter();
                            first.iter_mut().zip(key_bytes).for_each(|(to, b)| *to = *b);
                            self.pairs.push((u64::from_be_bytes(first), [key, value]));
                        }
                        (start, eq, escaped) = (at + 1, None, [false; 2]);
                    }
                    Some(b'=') => eq = eq.or(Some(at)),
                    Some(_) => escaped[usize::from(eq.is_some())] = true,
                }
            }
        }
        self.sort(bytes_cmp);
    }

    /// Sorts the pairs by key then value as `cmp` orders strings, exact duplicates dropped.
    fn sort(&mut self, cmp: impl Fn(&[u8], &[u8]) -> Ordering) {
        let (bytes, order) = (&self.bytes, by(&self.bytes, cmp));
        self.pairs.sort_unstable_by(|(a_first, a), (b_first, b)| {
            a_first.cmp(b_first).then_with(|| order(a, b))
        });
        self.pairs.dedup_by(|(_, a), (_, b)| {
            a.iter()
                .zip(b)
                .all(|(a, b)| part(bytes, *a) == part(bytes, *b))
        });
        self.signed.truncate(self.url_len);
        for at in self.pairs.iter().flat_map(|(_, pair)| pair) {
            self.signed.extend_from_slice(part(&self.bytes, *at));
        }
    }

    /// The string-to-sign with the URL given to [`with`](Self::with).
    pub(crate) fn signed(&self) -> &[u8] {
        &self.signed
    }

    /// The string-to-sign after the URL: the key then the value of every pair.
    pub(crate) fn pairs(&self) -> &[u8] {
        self.signed.get(self.url_len..).unwrap_or_default()
    }

    /// Sorts the pairs by UTF-16 code units (twilio-node, -java and -csharp) instead of bytes,
    /// that is code points (twilio-python); `false` when that changes nothing.
    pub(crate) fn sort_by_utf16(&mut self) -> bool {
        let order = |(_, a): &_, (_, b): &_| by(&self.bytes, utf16_cmp)(a, b).is_le();
        if self.bytes.is_ascii() || self.pairs.is_sorted_by(order) {
            return false;
        }
        // Byte order's first 8 bytes say nothing here: every comparison goes to `utf16_cmp`.
        self.pairs.iter_mut().for_each(|(first, _)| *first = 0);
        self.sort(utf16_cmp);
        true
    }
}

/// The range of a key or value in `bytes`, given the range of its text: decoded in place if
/// `escaped`, its invalid UTF-8 replaced in a copy at the end of `bytes`.
fn decoded(bytes: &mut Vec<u8>, from: usize, to: usize, escaped: bool) -> [u32; 2] {
    let to = match bytes.get_mut(from..to) {
        Some(string) if escaped => from + unescape(string),
        _ => to,
    };
    let text = bytes.get(from..to).unwrap_or_default();
    let range = match text.is_ascii() || std::str::from_utf8(text).is_ok() {
        true => [from, to],
        false => {
            let text = String::from_utf8_lossy(text).into_owned();
            bytes.extend_from_slice(text.as_bytes());
            [bytes.len() - text.len(), bytes.len()]
        }
    };
    range.map(|at| u32::try_from(at).unwrap_or(u32::MAX))
}

/// Decodes `+` and `%XX` in place; the decoded length.
fn unescape(string: &mut [u8]) -> usize {
    let (mut read, mut write) = (0, 0);
    while let Some(&byte) = string.get(read) {
        let hex = |at: usize| string.get(at).and_then(|d| char::from(*d).to_digit(16));
        let (byte, len) = match byte {
            b'+' => (b' ', 1),
            b'%' => match (hex(read + 1), hex(read + 2)) {
                (Some(hi), Some(lo)) => (u8::try_from(hi << 4 | lo).unwrap_or(byte), 3),
                _ => (byte, 1),
            },
            _ => (byte, 1),
        };
        if let Some(slot) = string.get_mut(write) {
            *slot = byte;
        }
        (read, write) = (read + len, write + 1);
    }
    write
}

/// The string at `[start, end]` in `bytes`.
fn part(bytes: &[u8], [start, end]: [u32; 2]) -> &[u8] {
    bytes.get(start as usize..end as usize).unwrap_or_default()
}

/// The order of pairs in `bytes` by key then value, as `cmp` orders strings.
fn by(
    bytes: &[u8],
    cmp: impl Fn(&[u8], &[u8]) -> Ordering,
) -> impl Fn(&[[u32; 2]; 2], &[[u32; 2]; 2]) -> Ordering {
    move |[a_key, a_value], [b_key, b_value]| {
        let (a_key, b_key) = (part(bytes, *a_key), part(bytes, *b_key));
        cmp(a_key, b_key).then_with(|| cmp(part(bytes, *a_value), part(bytes, *b_value)))
    }
}

/// Byte order, which is code point order, compared byte by byte: these strings are short and
/// differ early, where a `memcmp` call would cost more than the comparison.
fn bytes_cmp(a: &[u8], b: &[u8]) -> Ordering {
    match a.iter().zip(b).find(|(x, y)| x != y) {
        Some((x, y)) => x.cmp(y),
        None => a.len().cmp(&b.len()),
    }
}

/// Compares UTF-8 strings as their UTF-16 code units would compare. The two orders differ only
/// where the first difference is between the lead bytes of a 4-byte sequence (above U+FFFF: a
/// surrogate, `D800`..`DFFF`, in UTF-16) and of a 3-byte one from U+E000 (`EE`, `EF`): UTF-16
/// puts the surrogate first.
fn utf16_cmp(a: &[u8], b: &[u8]) -> Ordering {
    let surrogate_first = |x: u8, y: u8| x >= 0xF0 && (0xEE..0xF0).contains(&y);
    match a.iter().zip(b).find(|(x, y)| x != y) {
        Some((&x, &y)) if surrogate_first(x, y) => Ordering::Less,
        Some((&x, &y)) if surrogate_first(y, x) => Ordering::Greater,
        _ => bytes_cmp(a, b),
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

    /// The pairs of `form` end to end.
    fn laid_out(form: &Form) -> Vec<u8> {
        form.pairs().to_vec()
    }

    fn signed(body: &[u8]) -> Vec<u8> {
        Form::with("", body, |form| laid_out(form))
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
    fn a_reused_form_decodes_each_body_afresh() {
        let mut form = Form::default();
        let callback =
            "MessageSid=SM1&SmsSid=SM1&From=%2B1&To=%2B2&MessageStatus=sent&ApiVersion=v";
        for body in [
            callback,
            "MessageSid=SM9&SmsSid=SM8&From=7&To=6&MessageStatus=x&ApiVersion=",
            "To=%2B2&From=%2B1&ApiVersion=v&MessageStatus=sent&SmsSid=SM1&MessageSid=SM1",
            "To=%2B2&From=%2B1&ApiVersion=v&MessageStatus=sent&SmsSid=SM1",
            &format!("{callback}&Body=hi"),
            "b=2&a=1&b=1&a=1",
            "b=2&a=1",
            "SharedPrefix0123Zulu=1&SharedPrefix0123Alpha=2",
            "",
            "b=2&a=1",
        ] {
            form.decode(body.as_bytes());
            assert_eq!(
                laid_out(&form),
                reference_signed(body.as_bytes()),
                "{body:?}"
            );
        }
    }

    #[test]
    fn scratch_in_use_falls_back_to_a_fresh_one() {
        let (outer, inner) = Form::with("", b"b=2&a=1", |form| {
            let inner = signed(b"d=%34&c=3");
            (laid_out(form), inner)
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
        let resorted = Form::with("", body.as_bytes(), |form| {
            let bytes_order: Vec<u8> = laid_out(form);
            assert_eq!(bytes_order, "a3\u{FFFD}2\u{1F600}1".as_bytes());
            assert!(form.sort_by_utf16());
            laid_out(form)
        });
        assert_eq!(resorted, "a3\u{1F600}1\u{FFFD}2".as_bytes());
        let same = Form::with(
            "",
            "b=\u{1F600}&a=\u{E000}&a=1".as_bytes(),
            Form::sort_by_utf16,
        );
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
                // Twice in a row: the second decoding must not depend on the first.
                for _ in 0..2 {
                    form.decode(body.as_bytes());
                    proptest::prop_assert_eq!(laid_out(&form), reference_signed(body.as_bytes()));
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
