//! Form bodies as Twilio signs them: the pairs split and decoded as [`form_urlencoded::parse`]
//! does (at `&`, empty pieces skipped, then at the first `=`; `+` as a space, `%XX` as a byte,
//! invalid UTF-8 replaced), sorted by key then value, exact duplicates dropped, laid out after
//! the URL.

use std::cell::Cell;
use std::cmp::Ordering;

/// A buffer larger than this is not kept for the next request.
const KEEP_BYTES: usize = 64 * 1024;

thread_local! {
    /// The buffers of the thread's last form: request bytes only, nothing derived from a key.
    static SCRATCH: Cell<Form> = Cell::default();
}

/// Where a key or a value is in `Form::strings`.
type Span = [usize; 2];

/// A form body's decoded pairs, sorted, and its string-to-sign.
#[derive(Debug, Default)]
pub(crate) struct Form {
    /// The body, then the decoded copies of its escaped or non-ASCII strings.
    strings: Vec<u8>,
    /// 1 for each byte of the body that is `&`, `=`, `%` or `+`, else 0; then zeros.
    flags: Vec<u8>,
    pairs: Vec<[Span; 2]>,
    /// The URL, then the key and value of every pair, end to end.
    signed: Vec<u8>,
    url_len: usize,
}

impl Form {
    /// Runs `f` on the form of `body` after `url`, in the thread's buffers.
    pub(crate) fn with<R>(url: &str, body: &[u8], f: impl FnOnce(&mut Self) -> R) -> R {
        let mut form = SCRATCH.try_with(Cell::take).unwrap_or_default();
        form.decode(body);
        form.url_len = url.len();
        form.signed.clear();
        form.signed.extend_from_slice(url.as_bytes());
        form.sort(bytes_cmp);
        let result = f(&mut form);
        if form.strings.capacity() + form.flags.capacity() + form.signed.capacity() <= KEEP_BYTES {
            let _ = SCRATCH.try_with(|scratch| scratch.set(form));
        }
        result
    }

    /// Splits `body` at `&` and each piece at its first `=`, and decodes the strings. The bytes
    /// that matter are flagged in one loop that the compiler turns into vector compares, then
    /// found eight flags at a time (a byte-by-byte loop costs three times as much).
    fn decode(&mut self, body: &[u8]) {
        self.strings.clear();
        self.strings.extend_from_slice(body);
        self.flags.clear();
        self.flags.resize(body.len().next_multiple_of(8) + 8, 0);
        for (flag, &b) in self.flags.iter_mut().zip(body) {
            *flag = u8::from((b == b'&') | (b == b'=') | (b == b'%') | (b == b'+'));
        }
        if let Some(end) = self.flags.get_mut(body.len()) {
            *end = 1; // The end of the body ends a piece too.
        }
        let ascii = body.is_ascii();
        self.pairs.clear();
        // Where the piece starts, its first `=`, and whether its key and value hold `%` or `+`.
        let (mut start, mut eq, mut escaped) = (0, None, [false; 2]);
        for (word_at, word) in self.flags.as_chunks::<8>().0.iter().enumerate() {
            let mut word = u64::from_le_bytes(*word);
            while word != 0 {
                let at = 8 * word_at + word.trailing_zeros() as usize / 8;
                word &= word - 1;
                match body.get(at) {
                    None | Some(b'&') if start < at => {
                        let key_end = eq.unwrap_or(at);
                        let strings = &mut self.strings;
                        let key = push(strings, body, [start, key_end], escaped[0], ascii);
                        let value_span = [(key_end + 1).min(at), at];
                        let value = push(strings, body, value_span, escaped[1], ascii);
                        self.pairs.push([key, value]);
                        (start, eq, escaped) = (at + 1, None, [false; 2]);
                    }
                    None | Some(b'&') => start = at + 1,
                    Some(b'=') => eq = eq.or(Some(at)),
                    Some(_) => escaped[usize::from(eq.is_some())] = true,
                }
            }
        }
    }

    /// Sorts the pairs by key then value as `cmp` orders strings, exact duplicates dropped, and
    /// lays them out after the URL.
    fn sort(&mut self, cmp: impl Fn(&[u8], &[u8]) -> Ordering) {
        let text = |[start, end]: Span| self.strings.get(start..end).unwrap_or_default();
        let by = |a: &[Span; 2], b: &[Span; 2]| {
            cmp(text(a[0]), text(b[0])).then_with(|| cmp(text(a[1]), text(b[1])))
        };
        self.pairs.sort_unstable_by(by);
        self.pairs.dedup_by(|a, b| a.map(text) == b.map(text));
        self.signed.truncate(self.url_len);
        for span in self.pairs.iter().flatten() {
            self.signed.extend_from_slice(text(*span));
        }
    }

    /// The string-to-sign with the URL given to [`with`](Self::with).
    pub(crate) fn signed(&self) -> &[u8] {
        &self.signed
    }

    /// The string-to-sign after the URL.
    pub(crate) fn pairs(&self) -> &[u8] {
        self.signed.get(self.url_len..).unwrap_or_default()
    }

    /// Sorts the pairs by UTF-16 code units (twilio-node, -java and -csharp) instead of bytes,
    /// that is code points (twilio-python); `false` when that changes nothing.
    pub(crate) fn sort_by_utf16(&mut self) -> bool {
        if self.pairs().is_ascii() {
            return false;
        }
        let sorted = self.signed.clone();
        self.sort(utf16_cmp);
        self.signed != sorted
    }
}

/// The span of the string of `body` at `span` in `strings` (which starts with `body`), or of a
/// copy appended to `strings` if it is `escaped` (`+` as a space, `%XX` as a byte) or not all
/// `ascii` (invalid UTF-8 replaced).
fn push(strings: &mut Vec<u8>, body: &[u8], span: Span, escaped: bool, ascii: bool) -> Span {
    if !escaped && ascii {
        return span;
    }
    let (start, text) = (
        strings.len(),
        body.get(span[0]..span[1]).unwrap_or_default(),
    );
    let hex = |at: usize| text.get(at).and_then(|d| char::from(*d).to_digit(16));
    let mut at = 0;
    while let Some(&byte) = text.get(at) {
        let (byte, len) = match byte {
            b'+' if escaped => (b' ', 1),
            b'%' if escaped => match (hex(at + 1), hex(at + 2)) {
                (Some(hi), Some(lo)) => (u8::try_from(hi << 4 | lo).unwrap_or(byte), 3),
                _ => (byte, 1),
            },
            _ => (byte, 1),
        };
        strings.push(byte);
        at += len;
    }
    let decoded = strings.get(start..).unwrap_or_default();
    if std::str::from_utf8(decoded).is_err() {
        let replaced = String::from_utf8_lossy(decoded).into_owned();
        strings.truncate(start);
        strings.extend_from_slice(replaced.as_bytes());
    }
    [start, strings.len()]
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
    fn a_reused_buffer_holds_each_body_afresh() {
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
            let got = Form::with("https://h/", body.as_bytes(), |form| form.signed().to_vec());
            let want = [&b"https://h/"[..], &reference_signed(body.as_bytes())].concat();
            assert_eq!(got, want, "{body:?}");
        }
    }

    #[test]
    fn a_buffer_in_use_is_not_shared() {
        let (outer, inner) = Form::with("", b"b=2&a=1", |form| {
            let inner = signed(b"d=%34&c=3");
            (laid_out(form), inner)
        });
        assert_eq!((&outer[..], &inner[..]), (&b"a1b2"[..], &b"c3d4"[..]));
        let big = "x=".to_owned() + &"y".repeat(KEEP_BYTES);
        assert_eq!(signed(big.as_bytes()).len(), KEEP_BYTES + 1);
        assert!(SCRATCH.take().strings.capacity() <= KEEP_BYTES);
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
            for pairs in &bodies {
                let body = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&");
                // Twice in a row: the second decoding must not depend on the first.
                for _ in 0..2 {
                    proptest::prop_assert_eq!(signed(body.as_bytes()), reference_signed(body.as_bytes()));
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
