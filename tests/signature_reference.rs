//! Differential test: the validator's verdict on form POSTs equals that of a reference written
//! the obvious way from Twilio's description (no scratch space, no scanning, no caching), for
//! random keys, URLs and bodies, signed right or wrong.

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use http::Method;
use proptest::prelude::*;
use twilio_delivery::signature::{Algorithm, KeySecret, SignatureValidator, SignedRequest};

/// The reference signature: the URL as given, then every pair `form_urlencoded` decodes from
/// the body, in `order`, exact duplicates dropped; HMAC-SHA1; standard base64.
fn reference_sign(key: &[u8], url: &str, body: &[u8], utf16_order: bool) -> String {
    let mut pairs: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
    if utf16_order {
        let units = |s: &str| s.encode_utf16().collect::<Vec<u16>>();
        pairs.sort_by_key(|(k, v)| (units(k), units(v)));
    } else {
        pairs.sort();
    }
    pairs.dedup();
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(key).unwrap();
    mac.update(url.as_bytes());
    for (k, v) in &pairs {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The reference verdict: the header is the signature of the body in either sort order (Python
/// sorts by code points, node, Java and C# by UTF-16 code units).
fn reference_valid(key: &[u8], url: &str, body: &[u8], header: &[u8]) -> bool {
    [false, true]
        .into_iter()
        .any(|utf16| reference_sign(key, url, body, utf16).as_bytes() == header)
}

fn validator_valid(key: &[u8], url: &str, body: &[u8], header: &[u8]) -> bool {
    let v = SignatureValidator::builder()
        .key_with("k", Algorithm::HmacSha1, KeySecret::new(key))
        .build()
        .unwrap();
    let request = SignedRequest::new(&Method::POST, url, body)
        .content_type("application/x-www-form-urlencoded")
        .signature(header);
    v.validate(&request).is_ok()
}

/// URLs with and without credentials, ports, queries and fragments, and some that do not parse.
fn url() -> impl Strategy<Value = String> {
    let structured = (
        prop_oneof!["https", "http", "wss", "ftp", "HTTPS", "x-y"],
        prop_oneof![Just(String::new()), "[a-z]{1,4}:[a-z]{0,4}@"],
        prop_oneof!["[a-zA-Z0-9.-]{1,12}", Just("[::1]".to_owned())],
        prop_oneof![Just(String::new()), "(:[0-9]{0,5})"],
        "(/[\\PC&&[^?#]]{0,8}){0,2}",
        prop_oneof![Just(String::new()), "\\?[\\PC&&[^#]]{0,16}"],
        prop_oneof![Just(String::new()), "#[\\PC]{0,6}"],
    )
        .prop_map(|(s, u, h, p, pa, q, f)| format!("{s}://{u}{h}{p}{pa}{q}{f}"));
    prop_oneof![9 => structured, 1 => "\\PC{0,30}"]
}

/// Form bodies: encoded pairs of text that mixes ASCII, `&=+%`, characters from U+E000 and
/// above U+FFFF (where the two sort orders part), repeated keys; or raw bytes, escapes and
/// invalid UTF-8 included.
fn body() -> impl Strategy<Value = Vec<u8>> {
    let text = prop_oneof![
        "[a-zA-Z0-9 &=+%]{0,10}",
        "[a\u{E000}\u{FFFD}\u{FFFF}\u{10000}\u{1F600}é]{0,4}",
        "\\PC{0,8}",
        Just("MessageStatus".to_owned()),
    ];
    let encoded = prop::collection::vec((text.clone(), text), 0..10).prop_map(|pairs| {
        let mut s = form_urlencoded::Serializer::new(String::new());
        s.extend_pairs(&pairs).finish().into_bytes()
    });
    let raw = prop::collection::vec(
        prop_oneof![
            4 => prop::sample::select(b"&=+%aAfF09".to_vec()),
            1 => any::<u8>(),
        ],
        0..80,
    );
    prop_oneof![3 => encoded, 1 => raw]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 1024,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn same_verdict_as_the_reference(
        key in prop::collection::vec(any::<u8>(), 1..40),
        url in url(),
        body in body(),
        utf16_order in any::<bool>(),
        tamper in 0..5u8,
        index in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let mut header = reference_sign(&key, &url, &body, utf16_order).into_bytes();
        let (mut key, mut url, mut body) = (key, url, body);
        // Sign right, or change one byte of the key, the body, or one ASCII byte of the URL
        // (never its length, so the port-toggled URL cannot be hit by chance) or the header.
        let flip = |bytes: &mut Vec<u8>| {
            if let Some(at) = (!bytes.is_empty()).then(|| index.index(bytes.len())) {
                bytes[at] = if bytes[at] == byte { byte.wrapping_add(1) } else { byte };
            }
        };
        match tamper {
            1 => flip(&mut key),
            2 => flip(&mut body),
            3 => {
                let mut bytes = url.into_bytes();
                let at = index.index(bytes.len().max(1));
                if let Some(b) = bytes.get_mut(at).filter(|b| b.is_ascii()) {
                    *b = if *b == b'a' { b'b' } else { b'a' };
                }
                url = String::from_utf8(bytes).unwrap();
            }
            4 => flip(&mut header),
            _ => {}
        }
        prop_assert_eq!(
            validator_valid(&key, &url, &body, &header),
            reference_valid(&key, &url, &body, &header)
        );
    }
}
