//! Property tests: signing then validating round-trips; any single-byte change is rejected; no panics.

use std::collections::BTreeSet;

use http::Method;
use proptest::prelude::*;
use twilio_delivery::AuthToken;
use twilio_delivery::signature::{
    SignatureError, SignatureValidator, SignedRequest, sign, url_with_body_sha256,
};

const FORM: &str = "application/x-www-form-urlencoded";
const EMPTY_OBJECT: &[u8] = b"{}";

/// URLs of every shape the validator cuts: credentials, IPv6, ports, unicode paths, queries,
/// fragments, and some that do not parse at all.
fn url() -> impl Strategy<Value = String> {
    let scheme = prop_oneof!["https", "http", "HTTPS", "ftp"];
    let userinfo = prop_oneof![
        Just(String::new()),
        "[a-z]{1,5}(:[a-z0-9:]{0,6})?@".prop_map(String::from),
    ];
    let host = prop_oneof![
        "[a-zA-Z0-9.-]{1,20}",
        Just("[::1]".to_owned()),
        "\\[[0-9a-f:]{2,12}\\]",
    ];
    let port = prop_oneof![
        Just(String::new()),
        Just(":443".to_owned()),
        Just(":80".to_owned()),
        "(:[0-9]{1,5})",
    ];
    let path = "(/[\\PC&&[^?#]]{0,12}){0,3}";
    let query = prop_oneof![
        Just(String::new()),
        "\\?[\\PC&&[^#]]{0,30}".prop_map(String::from)
    ];
    let fragment = prop_oneof![Just(String::new()), "#[\\PC]{0,10}".prop_map(String::from)];
    let structured = (scheme, userinfo, host, port, path, query, fragment)
        .prop_map(|(s, u, h, p, pa, q, f)| format!("{s}://{u}{h}{p}{pa}{q}{f}"));
    prop_oneof![9 => structured, 1 => "\\PC{0,40}"]
}

fn params() -> impl Strategy<Value = Vec<(String, String)>> {
    let text = prop_oneof!["\\PC{0,12}", "[a-zA-Z0-9 +%&=]{0,8}", Just(String::new())];
    prop::collection::vec((text.clone(), text), 0..12)
}

fn token() -> impl Strategy<Value = String> {
    "[0-9a-f]{1,40}"
}

fn form_body(pairs: &[(String, String)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

fn post_form(
    v: &SignatureValidator,
    url: &str,
    body: &[u8],
    sig: &str,
) -> Result<(), SignatureError> {
    let req = SignedRequest::new(&Method::POST, url, body)
        .content_type(FORM)
        .signature(sig);
    v.validate(&req).map(|_| ())
}

fn post_json(
    v: &SignatureValidator,
    url: &str,
    body: &[u8],
    sig: &str,
) -> Result<(), SignatureError> {
    let req = SignedRequest::new(&Method::POST, url, body)
        .content_type("application/json")
        .signature(sig);
    v.validate(&req).map(|_| ())
}

fn get(v: &SignatureValidator, url: &str, sig: &str) -> Result<(), SignatureError> {
    let req = SignedRequest::new(&Method::GET, url, b"").signature(sig);
    v.validate(&req).map(|_| ())
}

/// The params part of the string-to-sign of a form body: `key+value` of the sorted distinct
/// decoded pairs, no separators (so `("", "v")` and `("v", "")` sign alike).
fn signed_params(body: &[u8]) -> String {
    let set: BTreeSet<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
    set.into_iter().map(|(k, v)| k + &v).collect()
}

/// `s` with the ASCII byte at `i` (modulo the ASCII positions) replaced by another printable byte.
fn change_ascii_byte(s: &str, index: prop::sample::Index, replacement: u8) -> Option<String> {
    let positions: Vec<usize> = s
        .bytes()
        .enumerate()
        .filter(|(_, b)| b.is_ascii())
        .map(|(i, _)| i)
        .collect();
    if positions.is_empty() {
        return None;
    }
    let at = positions[index.index(positions.len())];
    let mut bytes = s.as_bytes().to_vec();
    let new = b' ' + (replacement % 95);
    bytes[at] = if new == bytes[at] {
        b' ' + ((replacement % 95 + 1) % 95)
    } else {
        new
    };
    String::from_utf8(bytes).ok()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn form_post_round_trips(url in url(), pairs in params(), token in token()) {
        let token = AuthToken::new(token);
        let sig = sign(&token, &url, &pairs);
        let v = SignatureValidator::new(token);
        prop_assert_eq!(post_form(&v, &url, form_body(&pairs).as_bytes(), &sig), Ok(()));
    }

    #[test]
    fn get_round_trips(url in url(), token in token()) {
        let token = AuthToken::new(token);
        let sig = sign(&token, &url, &[] as &[(&str, &str)]);
        prop_assert_eq!(get(&SignatureValidator::new(token), &url, &sig), Ok(()));
    }

    #[test]
    fn json_round_trips(url in url(), body in prop::collection::vec(any::<u8>(), 0..300), token in token()) {
        let token = AuthToken::new(token);
        let signed_url = url_with_body_sha256(&url, &body);
        let sig = sign(&token, &signed_url, &[] as &[(&str, &str)]);
        prop_assert_eq!(post_json(&SignatureValidator::new(token), &signed_url, &body, &sig), Ok(()));
    }

    /// A changed body byte is rejected unless the string-to-sign stays the same (`%4a` and `%4A`
    /// decode alike; a repeated pair may become another existing pair; `=v` and `&v` concatenate
    /// alike: Twilio's format has no separators).
    #[test]
    fn form_body_byte_change(
        url in url(), pairs in params(), index in any::<prop::sample::Index>(), byte in any::<u8>()
    ) {
        let token = AuthToken::new("12345");
        let sig = sign(&token, &url, &pairs);
        let body = form_body(&pairs).into_bytes();
        prop_assume!(!body.is_empty());
        let mut tampered = body.clone();
        let at = index.index(body.len());
        tampered[at] = if tampered[at] == byte { byte.wrapping_add(1) } else { byte };
        let same_content = signed_params(&tampered) == signed_params(&body);
        let got = post_form(&SignatureValidator::new(token), &url, &tampered, &sig);
        if same_content {
            prop_assert_eq!(got, Ok(()));
        } else {
            prop_assert_eq!(got, Err(SignatureError::Mismatch));
        }
    }

    #[test]
    fn json_body_byte_change(
        url in url(), body in prop::collection::vec(any::<u8>(), 1..200),
        index in any::<prop::sample::Index>(), byte in any::<u8>()
    ) {
        let token = AuthToken::new("12345");
        let signed_url = url_with_body_sha256(&url, &body);
        let sig = sign(&token, &signed_url, &[] as &[(&str, &str)]);
        let mut tampered = body.clone();
        let at = index.index(body.len());
        tampered[at] = if tampered[at] == byte { byte.wrapping_add(1) } else { byte };
        prop_assert_eq!(
            post_json(&SignatureValidator::new(token), &signed_url, &tampered, &sig),
            Err(SignatureError::BodyHashMismatch)
        );
    }

    #[test]
    fn url_byte_change(
        url in url(), pairs in params(), index in any::<prop::sample::Index>(), byte in any::<u8>()
    ) {
        let token = AuthToken::new("12345");
        let v = SignatureValidator::new(token.clone());
        let Some(tampered) = change_ascii_byte(&url, index, byte) else { return Ok(()) };
        let sig = sign(&token, &url, &pairs);
        prop_assert!(post_form(&v, &tampered, form_body(&pairs).as_bytes(), &sig).is_err());
        let get_sig = sign(&token, &url, &[] as &[(&str, &str)]);
        prop_assert!(get(&v, &tampered, &get_sig).is_err());
        let json_url = url_with_body_sha256(&url, EMPTY_OBJECT);
        let json_sig = sign(&token, &json_url, &[] as &[(&str, &str)]);
        if let Some(json_tampered) = change_ascii_byte(&json_url, index, byte) {
            prop_assert!(post_json(&v, &json_tampered, EMPTY_OBJECT, &json_sig).is_err());
        }
    }

    #[test]
    fn signature_byte_change(
        url in url(), pairs in params(), index in any::<prop::sample::Index>(), byte in any::<u8>()
    ) {
        let token = AuthToken::new("12345");
        let sig = sign(&token, &url, &pairs);
        let body = form_body(&pairs);
        let mut tampered = sig.clone().into_bytes();
        let at = index.index(tampered.len());
        tampered[at] = if tampered[at] == byte { byte.wrapping_add(1) } else { byte };
        let req = SignedRequest::new(&Method::POST, &url, body.as_bytes())
            .content_type(FORM)
            .signature(&tampered[..]);
        let got = SignatureValidator::new(token).validate(&req);
        prop_assert!(
            matches!(got, Err(SignatureError::Mismatch | SignatureError::Malformed { .. })),
            "{:?}", got
        );
    }

    /// Arbitrary bytes anywhere never panic, with or without the opt-in variants.
    #[test]
    fn never_panics(
        method in prop_oneof![Just(Method::GET), Just(Method::POST), Just(Method::HEAD), Just(Method::PUT)],
        url in prop_oneof![url(), any::<String>()],
        body in prop::collection::vec(any::<u8>(), 0..200),
        content_type in prop::option::of(prop_oneof![
            prop::collection::vec(any::<u8>(), 0..40),
            Just(FORM.as_bytes().to_vec()),
            Just(b"application/json".to_vec()),
        ]),
        signature in prop::option::of(prop_oneof![
            prop::collection::vec(any::<u8>(), 0..60),
            "[A-Za-z0-9+/]{27}=".prop_map(String::into_bytes),
            "[A-Za-z0-9+/]{43}=".prop_map(String::into_bytes),
        ]),
        settings in prop::option::of(prop_oneof![
            prop::collection::vec(any::<u8>(), 0..60),
            "(key=[a-z]{0,4}|algorithm=[A-Za-z_-]{0,12}|[ ,;=\"]){0,6}".prop_map(String::into_bytes),
        ]),
        variants in any::<bool>(),
    ) {
        let v = SignatureValidator::builder()
            .key("a", AuthToken::new("12345"))
            .sha256_key("b", b"shared".as_slice())
            .try_without_credentials(variants)
            .try_without_trailing_slash(variants)
            .try_without_fragment(variants)
            .build()
            .unwrap();
        let mut req = SignedRequest::new(&method, &url, &body);
        if let Some(ct) = &content_type { req = req.content_type(&ct[..]); }
        if let Some(sig) = &signature { req = req.signature(&sig[..]); }
        if let Some(s) = &settings { req = req.settings(&s[..]); }
        let _ = v.validate(&req);
    }
}
