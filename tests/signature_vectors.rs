//! Known-answer vectors (tests/data/signature-public.json) and hand-written cases for the validator.

use http::{HeaderMap, HeaderValue, Method};
use serde::Deserialize;
use twilio_delivery::AuthToken;
use twilio_delivery::endpoint::{PublicUrl, PublicUrlError, Scheme, TrustedProxy};
use twilio_delivery::signature::{
    Algorithm, PortChange, SignatureError, SignatureValidator, SignedRequest, SigningMode,
    UrlCandidate, Verified, sign, sign_with, url_with_body_sha256,
};

const FORM: &str = "application/x-www-form-urlencoded";

#[derive(Debug, Deserialize)]
struct VectorFile {
    vectors: Vec<Vector>,
}

#[derive(Debug, Deserialize)]
struct Vector {
    name: String,
    method: String,
    content_type: Option<String>,
    auth_token: String,
    url: String,
    raw_body: String,
    header_signature: Option<String>,
    expected_valid: bool,
    expected_valid_with_extensions: bool,
}

fn vectors() -> Vec<Vector> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/signature-public.json"
    );
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::from_str::<VectorFile>(&text).unwrap().vectors
}

fn headers(content_type: Option<&str>, signature: Option<&str>) -> HeaderMap {
    let mut h = HeaderMap::new();
    if let Some(ct) = content_type {
        h.insert("content-type", HeaderValue::from_str(ct).unwrap());
    }
    if let Some(sig) = signature {
        h.insert("x-twilio-signature", HeaderValue::from_str(sig).unwrap());
    }
    h
}

fn with_extensions(token: &str) -> SignatureValidator {
    SignatureValidator::builder()
        .key("primary", AuthToken::new(token))
        .try_without_credentials(true)
        .try_without_trailing_slash(true)
        .try_without_fragment(true)
        .build()
        .unwrap()
}

fn run(v: &Vector, validator: &SignatureValidator) -> Result<Verified, SignatureError> {
    let method = Method::from_bytes(v.method.as_bytes()).unwrap();
    let h = headers(v.content_type.as_deref(), v.header_signature.as_deref());
    validator.validate_http(&method, &v.url, &h, v.raw_body.as_bytes())
}

#[test]
fn every_public_vector() {
    let vectors = vectors();
    assert_eq!(
        vectors.len(),
        25,
        "the vector file changed: review this test"
    );
    let mut names: Vec<&str> = vectors.iter().map(|v| v.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), vectors.len(), "vector names are unique");
    let (mut valid, mut invalid) = (0, 0);
    for v in &vectors {
        let default = run(
            v,
            &SignatureValidator::new(AuthToken::new(v.auth_token.as_str())),
        );
        assert_eq!(default.is_ok(), v.expected_valid, "{}: {default:?}", v.name);
        let extended = run(v, &with_extensions(&v.auth_token));
        assert_eq!(
            extended.is_ok(),
            v.expected_valid_with_extensions,
            "{} (extensions): {extended:?}",
            v.name
        );
        if default.is_ok() {
            valid += 1;
        } else {
            invalid += 1;
        }
    }
    assert!(
        valid > 15 && invalid > 5,
        "{valid} valid, {invalid} invalid"
    );
}

#[test]
fn vector_outcomes_in_detail() {
    let vectors = vectors();
    let get = |name: &str| {
        let v = vectors.iter().find(|v| v.name == name).unwrap();
        run(
            v,
            &SignatureValidator::new(AuthToken::new(v.auth_token.as_str())),
        )
    };
    let candidate = |name: &str| get(name).unwrap().candidate();
    assert_eq!(
        candidate("status_callback_sent_form_post"),
        UrlCandidate::AsGiven
    );
    assert_eq!(
        candidate("https_signed_without_port_validator_given_443"),
        UrlCandidate::PortRemoved
    );
    assert_eq!(
        candidate("https_signed_with_443_validator_given_no_port"),
        UrlCandidate::PortAdded
    );
    assert_eq!(
        candidate("http_signed_with_80_validator_given_no_port"),
        UrlCandidate::PortAdded
    );
    let json = get("json_body_official_vector").unwrap();
    assert_eq!(json.mode(), SigningMode::BodyHash);
    assert_eq!(json.algorithm(), Algorithm::HmacSha1);
    assert_eq!(json.key_id(), "primary");
    assert_eq!(
        get("get_request_params_in_query").unwrap().mode(),
        SigningMode::UrlOnly
    );
    assert_eq!(
        get("repeated_keys_exact_duplicates_deduped_official")
            .unwrap()
            .mode(),
        SigningMode::Form
    );
    assert_eq!(
        get("neg_missing_signature_header"),
        Err(SignatureError::Missing)
    );
    assert!(matches!(
        get("neg_empty_signature_header"),
        Err(SignatureError::Malformed { .. })
    ));
    for name in [
        "neg_tampered_message_status",
        "neg_wrong_auth_token",
        "neg_wrong_url_path",
        "neg_https_signature_with_port_80",
    ] {
        assert_eq!(get(name), Err(SignatureError::Mismatch), "{name}");
    }
}

/// `sign()` reproduces every valid vector's header from the decoded params and the matched URL.
#[test]
fn sign_reproduces_the_vectors() {
    for v in vectors().iter().filter(|v| v.expected_valid) {
        let params: Vec<(String, String)> = if v.content_type.as_deref() == Some(FORM) {
            form_urlencoded::parse(v.raw_body.as_bytes())
                .into_owned()
                .collect()
        } else {
            Vec::new()
        };
        let token = AuthToken::new(v.auth_token.as_str());
        let header = v.header_signature.as_deref().unwrap();
        let as_given = sign(&token, &v.url, &params);
        let toggled = [
            v.url.replacen(".com:443/", ".com/", 1),
            v.url.replacen(".com/", ".com:443/", 1),
            v.url.replacen(".com/", ".com:80/", 1),
        ];
        let matched = as_given == header
            || (toggled
                .iter()
                .any(|u| *u != v.url && sign(&token, u, &params) == header));
        assert!(matched, "{}", v.name);
    }
}

// ---------- hand-written cases ----------

const TOKEN: &str = "f7e6d5c4b3a2918071605f4e3d2c1b0a";
const URL: &str = "https://api.example.com/twilio/status?tenant=acme";

fn callback_pairs() -> Vec<(String, String)> {
    [
        ("MessageSid", "SMfedcba9876543210fedcba9876543210"),
        ("SmsSid", "SMfedcba9876543210fedcba9876543210"),
        ("AccountSid", "AC0123456789abcdef0123456789abcdef"),
        ("From", "+14155550100"),
        ("To", "+14155550199"),
        ("MessageStatus", "delivered"),
        ("SmsStatus", "delivered"),
        ("ApiVersion", "2010-04-01"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

fn form_body(pairs: &[(String, String)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

fn validator() -> SignatureValidator {
    SignatureValidator::new(AuthToken::new(TOKEN))
}

fn post_form(
    v: &SignatureValidator,
    url: &str,
    body: &str,
    signature: &str,
) -> Result<Verified, SignatureError> {
    v.validate_http(
        &Method::POST,
        url,
        &headers(Some(FORM), Some(signature)),
        body.as_bytes(),
    )
}

#[test]
fn tampering_any_param_flips_the_result() {
    let pairs = callback_pairs();
    let sig = sign(&AuthToken::new(TOKEN), URL, &pairs);
    let v = validator();
    assert!(post_form(&v, URL, &form_body(&pairs), &sig).is_ok());
    for i in 0..pairs.len() {
        let mut key = pairs.clone();
        key[i].0.push('x');
        let mut value = pairs.clone();
        value[i].1.push('1');
        let mut emptied = pairs.clone();
        emptied[i].1.clear();
        let mut removed = pairs.clone();
        removed.remove(i);
        let mut case = pairs.clone();
        case[i].0 = case[i].0.to_lowercase();
        for tampered in [key, value, emptied, removed, case] {
            assert_eq!(
                post_form(&v, URL, &form_body(&tampered), &sig),
                Err(SignatureError::Mismatch),
                "{tampered:?}"
            );
        }
    }
    let mut extra = pairs.clone();
    extra.push(("ErrorCode".into(), "30003".into()));
    assert_eq!(
        post_form(&v, URL, &form_body(&extra), &sig),
        Err(SignatureError::Mismatch)
    );
    // Wire order and exact repeats do not matter: the signature covers the sorted distinct set.
    let mut shuffled = pairs.clone();
    shuffled.reverse();
    shuffled.push(pairs[3].clone());
    assert!(post_form(&v, URL, &form_body(&shuffled), &sig).is_ok());
}

#[test]
fn tampering_any_url_part_or_the_key_flips_the_result() {
    let pairs = callback_pairs();
    let body = form_body(&pairs);
    let sig = sign(&AuthToken::new(TOKEN), URL, &pairs);
    let v = validator();
    for url in [
        "http://api.example.com/twilio/status?tenant=acme",
        "https://API.example.com/twilio/status?tenant=acme",
        "https://api.example.org/twilio/status?tenant=acme",
        "https://api.example.com/twilio/Status?tenant=acme",
        "https://api.example.com/twilio/status/?tenant=acme",
        "https://api.example.com/twilio/status?tenant=acmf",
        "https://api.example.com/twilio/status?tenant=acme&",
        "https://api.example.com/twilio/status?tenant=%61cme",
        "https://api.example.com/twilio/status",
        "https://user:pw@api.example.com/twilio/status?tenant=acme",
        "https://api.example.com/twilio/status?tenant=acme#rc=3",
    ] {
        assert_eq!(
            post_form(&v, url, &body, &sig),
            Err(SignatureError::Mismatch),
            "{url}"
        );
    }
    let other = SignatureValidator::new(AuthToken::new("f7e6d5c4b3a2918071605f4e3d2c1b0b"));
    assert_eq!(
        post_form(&other, URL, &body, &sig),
        Err(SignatureError::Mismatch)
    );
}

fn round_trip(signed_url: &str, given_url: &str) -> Result<UrlCandidate, SignatureError> {
    let pairs = callback_pairs();
    let sig = sign(&AuthToken::new(TOKEN), signed_url, &pairs);
    post_form(&validator(), given_url, &form_body(&pairs), &sig).map(|v| v.candidate())
}

#[test]
fn port_toggling_both_ways() {
    use UrlCandidate::{AsGiven, PortAdded, PortRemoved};
    let cases = [
        ("https://h.example/cb", "https://h.example/cb", Ok(AsGiven)),
        (
            "https://h.example:443/cb",
            "https://h.example/cb",
            Ok(PortAdded),
        ),
        (
            "https://h.example/cb",
            "https://h.example:443/cb",
            Ok(PortRemoved),
        ),
        (
            "http://h.example:80/cb",
            "http://h.example/cb",
            Ok(PortAdded),
        ),
        (
            "http://h.example/cb",
            "http://h.example:80/cb",
            Ok(PortRemoved),
        ),
        (
            "https://h.example/cb",
            "https://h.example:8443/cb",
            Ok(PortRemoved),
        ),
        (
            "https://h.example:8443/cb",
            "https://h.example:8443/cb",
            Ok(AsGiven),
        ),
        // Never a non-default port added, never the other scheme's default.
        (
            "https://h.example:8443/cb",
            "https://h.example/cb",
            Err(SignatureError::Mismatch),
        ),
        (
            "https://h.example:80/cb",
            "https://h.example/cb",
            Err(SignatureError::Mismatch),
        ),
        (
            "http://h.example:443/cb",
            "http://h.example/cb",
            Err(SignatureError::Mismatch),
        ),
        // Port toggling keeps the query, host case and fragment untouched.
        (
            "https://H.Example:443?b=2&a=1",
            "https://H.Example?b=2&a=1",
            Ok(PortAdded),
        ),
    ];
    for (signed, given, want) in cases {
        assert_eq!(
            round_trip(signed, given),
            want,
            "signed {signed}, given {given}"
        );
    }
}

#[test]
fn ipv6_literals_with_and_without_port() {
    use UrlCandidate::{AsGiven, PortAdded, PortRemoved};
    assert_eq!(
        round_trip("https://[::1]:8443/cb", "https://[::1]:8443/cb"),
        Ok(AsGiven)
    );
    assert_eq!(
        round_trip("https://[::1]/cb", "https://[::1]:8443/cb"),
        Ok(PortRemoved)
    );
    assert_eq!(
        round_trip("https://[2001:db8::7]:443/cb", "https://[2001:db8::7]/cb"),
        Ok(PortAdded)
    );
    assert_eq!(
        round_trip("https://[2001:db8::7]/cb", "https://[2001:db8::8]/cb"),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn credentials_with_a_port() {
    use UrlCandidate::{PortAdded, PortRemoved};
    assert_eq!(
        round_trip(
            "https://twilio:s3:cr3t@h.example/cb",
            "https://twilio:s3:cr3t@h.example:8443/cb"
        ),
        Ok(PortRemoved)
    );
    assert_eq!(
        round_trip(
            "https://twilio:pw@h.example:443/cb",
            "https://twilio:pw@h.example/cb"
        ),
        Ok(PortAdded)
    );
    // The credentials are signed: without them the default validator does not match.
    assert_eq!(
        round_trip("https://twilio:pw@h.example/cb", "https://h.example/cb"),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn unicode_keys_and_values_and_empty_values() {
    let pairs: Vec<(String, String)> = [
        ("Body", "Grüße 👋 ¿qué? 你好 & = + %"),
        ("Ключ", "значение"),
        ("Émoji🙂", ""),
        ("Empty", ""),
        ("", "no key"),
        ("a", "Z"),
        ("A", "z"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let url = "https://hooks.example/ünï?q=✓";
    let sig = sign(&AuthToken::new(TOKEN), url, &pairs);
    let v = validator();
    assert!(post_form(&v, url, &form_body(&pairs), &sig).is_ok());
    let mut dropped_empty = pairs.clone();
    dropped_empty.retain(|(_, v)| !v.is_empty());
    assert_eq!(
        post_form(&v, url, &form_body(&dropped_empty), &sig),
        Err(SignatureError::Mismatch)
    );
}

fn post_json(
    v: &SignatureValidator,
    url: &str,
    body: &[u8],
    signature: &str,
) -> Result<Verified, SignatureError> {
    v.validate_http(
        &Method::POST,
        url,
        &headers(Some("application/json"), Some(signature)),
        body,
    )
}

#[test]
fn json_body_is_covered_by_body_sha256() {
    let body = br#"{"flow_sid":"FW0123","to":"+14155550199","amount":12.5}"#;
    let url = url_with_body_sha256("https://api.example.com/studio?x=1", body);
    let sig = sign(&AuthToken::new(TOKEN), &url, &[] as &[(&str, &str)]);
    let v = validator();
    let ok = post_json(&v, &url, body, &sig).unwrap();
    assert_eq!(ok.mode(), SigningMode::BodyHash);
    for i in 0..body.len() {
        let mut tampered = body.to_vec();
        tampered[i] ^= 0x01;
        assert_eq!(
            post_json(&v, &url, &tampered, &sig),
            Err(SignatureError::BodyHashMismatch),
            "byte {i}"
        );
    }
    // No bodySHA256 in the URL: the body is not covered, whatever the signature says.
    let bare = "https://api.example.com/studio?x=1";
    let bare_sig = sign(&AuthToken::new(TOKEN), bare, &[] as &[(&str, &str)]);
    assert_eq!(
        post_json(&v, bare, body, &bare_sig),
        Err(SignatureError::BodyHashMissing)
    );
    // Upper-case hex is not Twilio's format.
    let upper = url.replace(
        url.rsplit('=').next().unwrap(),
        &url.rsplit('=').next().unwrap().to_uppercase(),
    );
    let upper_sig = sign(&AuthToken::new(TOKEN), &upper, &[] as &[(&str, &str)]);
    assert_eq!(
        post_json(&v, &upper, body, &upper_sig),
        Err(SignatureError::BodyHashMismatch)
    );
    // A wrong signature is reported as such even when the body hash would also be wrong.
    assert_eq!(
        post_json(&v, &url, b"{}", "bwSgJ+oHA34iYCaD0pf6Gu1S6U4="),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn mode_comes_from_method_and_content_type_not_from_the_url() {
    // A form POST to a URL that happens to contain bodySHA256: the params are signed.
    let pairs = callback_pairs();
    let url = url_with_body_sha256(URL, b"unrelated");
    let sig = sign(&AuthToken::new(TOKEN), &url, &pairs);
    let got = post_form(&validator(), &url, &form_body(&pairs), &sig).unwrap();
    assert_eq!(got.mode(), SigningMode::Form);
    // The same signature presented as JSON does not validate (the URL alone was not signed).
    assert!(post_json(&validator(), &url, form_body(&pairs).as_bytes(), &sig).is_err());
    // GET: the query is not also counted as params.
    let get_url = "https://api.example.com/voice?From=%2B1415&To=%2B1800";
    let get_sig = sign(&AuthToken::new(TOKEN), get_url, &[] as &[(&str, &str)]);
    let h = headers(None, Some(&get_sig));
    let got = validator()
        .validate_http(&Method::GET, get_url, &h, b"")
        .unwrap();
    assert_eq!(got.mode(), SigningMode::UrlOnly);
    let double = sign(
        &AuthToken::new(TOKEN),
        get_url,
        &[("From", "+1415"), ("To", "+1800")],
    );
    let h = headers(None, Some(&double));
    assert_eq!(
        validator().validate_http(&Method::GET, get_url, &h, b""),
        Err(SignatureError::Mismatch)
    );
    // A GET carrying a body needs bodySHA256 like any other unsigned body.
    let h = headers(Some(FORM), Some(&get_sig));
    assert_eq!(
        validator().validate_http(&Method::GET, get_url, &h, b"a=1"),
        Err(SignatureError::BodyHashMissing)
    );
}

#[test]
fn rotation_and_sub_accounts() {
    let pairs = callback_pairs();
    let body = form_body(&pairs);
    let old = AuthToken::new("0000000000000000000000000000aaaa");
    let new = AuthToken::new("1111111111111111111111111111bbbb");
    let sub = AuthToken::new("2222222222222222222222222222cccc");
    let both = SignatureValidator::builder()
        .key("primary", old.clone())
        .key("secondary", new.clone())
        .key("sub-account", sub.clone())
        .build()
        .unwrap();
    let only_old = SignatureValidator::new(old.clone());
    for (token, id) in [
        (&old, "primary"),
        (&new, "secondary"),
        (&sub, "sub-account"),
    ] {
        let sig = sign(token, URL, &pairs);
        assert_eq!(post_form(&both, URL, &body, &sig).unwrap().key_id(), id);
    }
    let sig_new = sign(&new, URL, &pairs);
    assert_eq!(
        post_form(&only_old, URL, &body, &sig_new),
        Err(SignatureError::Mismatch)
    );
    // Port toggling applies to every key.
    let sig = sign(
        &new,
        "https://api.example.com:443/twilio/status?tenant=acme",
        &pairs,
    );
    let got = post_form(&both, URL, &body, &sig).unwrap();
    assert_eq!(
        (got.key_id(), got.candidate()),
        ("secondary", UrlCandidate::PortAdded)
    );
    assert_eq!(
        both.key_ids().collect::<Vec<_>>(),
        ["primary", "secondary", "sub-account"]
    );
}

#[test]
fn hmac_sha256_round_trip_with_settings_header() {
    let shared: &[u8] = b"shared-key-secret-bytes-0123456789";
    let pairs = callback_pairs();
    let body = form_body(&pairs);
    let sig = sign_with(Algorithm::HmacSha256, shared, URL, &pairs);
    assert_eq!(sig.len(), 44);
    let v = SignatureValidator::builder()
        .key("primary", AuthToken::new(TOKEN))
        .sha256_key("KS-2026", shared)
        .build()
        .unwrap();
    let with_settings = |v: &SignatureValidator, settings: &'static str| {
        let mut h = headers(Some(FORM), Some(&sig));
        h.insert(
            "x-twilio-webhooks-signature-settings",
            HeaderValue::from_static(settings),
        );
        v.validate_http(&Method::POST, URL, &h, body.as_bytes())
    };
    let got = with_settings(&v, "key=KS-2026,algorithm=HMAC_SHA256").unwrap();
    assert_eq!(got.algorithm(), Algorithm::HmacSha256);
    assert_eq!(got.key_id(), "KS-2026");
    assert_eq!(got.candidate(), UrlCandidate::AsGiven);
    // Changed (issue 13): without the header the signature is HMAC-SHA1, whatever its length
    // (the algorithm used to be guessed from it).
    assert!(matches!(
        post_form(&v, URL, &body, &sig),
        Err(SignatureError::Malformed { .. })
    ));
    // Changed (issue 13): an id that no SHA-256 key has is a rejection (it used to fall back to
    // every key of the algorithm), and only Twilio's spelling of the algorithm is read.
    assert_eq!(
        with_settings(&v, "key=other,algorithm=HMAC_SHA256"),
        Err(SignatureError::UnknownKey)
    );
    assert_eq!(
        with_settings(&v, "key=primary,algorithm=HMAC_SHA256"),
        Err(SignatureError::UnknownKey)
    );
    for other in [
        "key=KS-2026,algorithm=hmac-sha256",
        "key=KS-2026,algorithm=HMAC_SHA1",
        "key=KS-2026,algorithm=HMAC_SHA512",
    ] {
        assert_eq!(
            with_settings(&v, other),
            Err(SignatureError::UnsupportedAlgorithm),
            "{other}"
        );
    }
    for other in [
        "algorithm=HMAC_SHA256",
        "algorithm=HMAC_SHA256,key=KS-2026",
        "",
    ] {
        assert!(
            matches!(
                with_settings(&v, other),
                Err(SignatureError::InvalidSettings { .. })
            ),
            "{other}"
        );
    }
    // A validator without SHA-256 keys says so when the header announces one.
    assert_eq!(
        with_settings(&validator(), "key=KS-2026,algorithm=HMAC_SHA256"),
        Err(SignatureError::NoKeyForAlgorithm(Algorithm::HmacSha256))
    );
    // The header naming a key selects that one.
    let two = SignatureValidator::builder()
        .sha256_key("a", shared)
        .sha256_key("b", b"another-secret".as_slice())
        .build()
        .unwrap();
    assert_eq!(
        with_settings(&two, "key=b,algorithm=HMAC_SHA256"),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        with_settings(&two, "key=a,algorithm=HMAC_SHA256")
            .unwrap()
            .key_id(),
        "a"
    );
    // An HMAC-SHA1 signature with the header is the wrong length for the announced algorithm.
    let sha1_sig = sign(&AuthToken::new(TOKEN), URL, &pairs);
    let mut h = headers(Some(FORM), Some(&sha1_sig));
    h.insert(
        "x-twilio-webhooks-signature-settings",
        HeaderValue::from_static("key=KS-2026,algorithm=HMAC_SHA256"),
    );
    assert!(matches!(
        v.validate_http(&Method::POST, URL, &h, body.as_bytes()),
        Err(SignatureError::Malformed { .. })
    ));
    // A validator of SHA-256 keys only has no key for a request without the header.
    assert_eq!(
        post_form(&two, URL, &body, &sha1_sig),
        Err(SignatureError::NoKeyForAlgorithm(Algorithm::HmacSha1))
    );
}

#[test]
fn malformed_and_ambiguous_headers() {
    let pairs = callback_pairs();
    let body = form_body(&pairs);
    let sig = sign(&AuthToken::new(TOKEN), URL, &pairs);
    let v = validator();
    for bad in [
        "",
        "not base64 at all!",
        "bwSgJ+oHA34iYCaD0pf6Gu1S6U4",
        "bwSgJ+oHA34iYCaD0pf6Gu1S6U4==",
        "bwSgJ-oHA34iYCaD0pf6Gu1S6U4=",
        "AAAA",
        "bwSgJ+oHA34iYCaD0pf6Gu1S6U4=bwSgJ+oHA34iYCaD0pf6Gu1S6U4=",
        " bwSgJ+oHA34iYCaD0pf6Gu1S6U4=",
    ] {
        assert!(
            matches!(
                post_form(&v, URL, &body, bad),
                Err(SignatureError::Malformed { .. })
            ),
            "{bad:?}"
        );
    }
    let mut h = headers(Some(FORM), Some(&sig));
    h.append("x-twilio-signature", HeaderValue::from_str(&sig).unwrap());
    assert!(
        v.validate_http(&Method::POST, URL, &h, body.as_bytes())
            .is_ok()
    );
    h.append(
        "x-twilio-signature",
        HeaderValue::from_static("bwSgJ+oHA34iYCaD0pf6Gu1S6U4="),
    );
    assert_eq!(
        v.validate_http(&Method::POST, URL, &h, body.as_bytes()),
        Err(SignatureError::AmbiguousHeaders {
            header: "x-twilio-signature"
        })
    );
    let mut h = headers(Some(FORM), Some(&sig));
    h.append("content-type", HeaderValue::from_static("application/json"));
    assert_eq!(
        v.validate_http(&Method::POST, URL, &h, body.as_bytes()),
        Err(SignatureError::AmbiguousHeaders {
            header: "content-type"
        })
    );
    // Non-UTF-8 header bytes are just not a signature.
    let raw = SignedRequest::new(&Method::POST, URL, body.as_bytes())
        .content_type(FORM)
        .signature(&[0xff_u8, 0xfe, b'=', b'='][..]);
    assert!(matches!(
        v.validate(&raw),
        Err(SignatureError::Malformed { .. })
    ));
    let good = SignedRequest::new(&Method::POST, URL, body.as_bytes())
        .content_type("application/x-www-form-urlencoded; charset=utf-8")
        .signature(sig.as_str());
    assert!(v.validate(&good).is_ok());
}

#[test]
fn opt_in_variants() {
    let pairs = callback_pairs();
    let body = form_body(&pairs);
    let token = AuthToken::new(TOKEN);
    let on = with_extensions(TOKEN);
    let off = validator();
    // (signed by Twilio, configured in the app)
    let cases = [
        ("https://h.example/cb", "https://twilio:pw@h.example/cb"),
        ("https://h.example", "https://h.example/"),
        ("https://h.example/cb", "https://h.example/cb#rc=3&rp=all"),
        ("https://h.example", "https://u:p@h.example:443/#ct=1"),
    ];
    for (signed, given) in cases {
        let sig = sign(&token, signed, &pairs);
        assert_eq!(
            post_form(&off, given, &body, &sig),
            Err(SignatureError::Mismatch),
            "{given}"
        );
        let got = post_form(&on, given, &body, &sig).unwrap();
        assert!(
            matches!(got.candidate(), UrlCandidate::Variant { .. }),
            "{given}"
        );
    }
    let sig = sign(&token, "https://h.example", &pairs);
    let got = post_form(&on, "https://u:p@h.example:443/#ct=1", &body, &sig).unwrap();
    let UrlCandidate::Variant { stripped, port } = got.candidate() else {
        panic!("{got:?}")
    };
    assert!(stripped.credentials() && stripped.trailing_slash() && stripped.fragment());
    assert_eq!(port, PortChange::Removed);
    // A path is not a lone slash: nothing stripped there.
    let sig = sign(&token, "https://h.example/cb", &pairs);
    assert!(post_form(&on, "https://h.example/cb/", &body, &sig).is_err());
}

// ---------- the public URL helper ----------

fn proxy_headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

#[test]
fn public_url_fixed_and_base() {
    let h = proxy_headers(&[
        ("host", "evil.example"),
        ("x-forwarded-host", "evil.example"),
    ]);
    let fixed = PublicUrl::Fixed("https://hooks.example/cb?t=1".into());
    assert_eq!(
        fixed.resolve(&h, "/other").unwrap(),
        "https://hooks.example/cb?t=1"
    );
    let base = PublicUrl::Base("https://hooks.example/api/".into());
    assert_eq!(
        base.resolve(&h, "/cb?t=1&b=%2B").unwrap(),
        "https://hooks.example/api/cb?t=1&b=%2B"
    );
    assert_eq!(base.resolve(&h, "cb"), Err(PublicUrlError::InvalidTarget));
    assert_eq!(base.resolve(&h, "/a b"), Err(PublicUrlError::InvalidTarget));
}

#[test]
fn public_url_from_a_trusted_proxy() {
    let proxy = PublicUrl::TrustedProxy(TrustedProxy::new(Scheme::Https));
    let target = "/twilio/status?tenant=acme";
    let resolve = |pairs: &[(&str, &str)]| proxy.resolve(&proxy_headers(pairs), target);
    assert_eq!(
        resolve(&[
            ("host", "internal:8080"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "Hooks.Example.com")
        ]),
        Ok("https://Hooks.Example.com/twilio/status?tenant=acme".into())
    );
    assert_eq!(
        resolve(&[("host", "hooks.example.com"), ("x-forwarded-port", "8443")]),
        Ok("https://hooks.example.com:8443/twilio/status?tenant=acme".into())
    );
    assert_eq!(
        resolve(&[
            ("x-forwarded-host", "hooks.example.com:9000"),
            ("x-forwarded-port", "8443")
        ]),
        Ok("https://hooks.example.com:9000/twilio/status?tenant=acme".into())
    );
    assert_eq!(
        resolve(&[
            ("host", "internal"),
            (
                "forwarded",
                r#"for=192.0.2.60;proto=http;host="hooks.example.com:8080""#
            )
        ]),
        Ok("http://hooks.example.com:8080/twilio/status?tenant=acme".into())
    );
    // A scheme is case-insensitive, and Twilio signs it in lower case (as twilio-python's
    // `urlparse(...).geturl()` and twilio-node's `new URL()` rebuild it).
    for upper in [
        ("x-forwarded-proto", "HTTPS"),
        ("forwarded", "proto=HTTPS;host=hooks.example.com"),
    ] {
        assert_eq!(
            resolve(&[("host", "hooks.example.com"), upper]),
            Ok("https://hooks.example.com/twilio/status?tenant=acme".into())
        );
    }
    // Forwarded wins over X-Forwarded-*, and the last element (nearest proxy) is used.
    assert_eq!(
        resolve(&[
            ("forwarded", "host=evil.example;proto=http"),
            (
                "forwarded",
                "for=1.2.3.4;host=hooks.example.com;proto=https"
            ),
            ("x-forwarded-host", "other.example"),
        ]),
        Ok("https://hooks.example.com/twilio/status?tenant=acme".into())
    );
    assert_eq!(
        resolve(&[
            ("x-forwarded-host", "evil.example, hooks.example.com"),
            ("x-forwarded-proto", "http, https")
        ]),
        Ok("https://hooks.example.com/twilio/status?tenant=acme".into())
    );
    assert_eq!(
        resolve(&[
            ("forwarded", "for=[2001:db8::1]"),
            ("host", "[2001:db8::2]:8443")
        ]),
        Ok("https://[2001:db8::2]:8443/twilio/status?tenant=acme".into())
    );
    // Injection attempts and nonsense are errors, never a URL.
    let bad = |pairs: &[(&str, &str)]| resolve(pairs).unwrap_err();
    for host in [
        "evil.example/x?",
        "a@evil.example",
        "hooks example",
        "h#f",
        "h\\x",
        "h:99999",
        "h:8x",
        "",
    ] {
        assert!(
            matches!(
                bad(&[("x-forwarded-host", host)]),
                PublicUrlError::InvalidHeader { .. } | PublicUrlError::MissingHost
            ),
            "{host:?}"
        );
        assert!(
            matches!(
                bad(&[("host", host)]),
                PublicUrlError::InvalidHeader { .. } | PublicUrlError::MissingHost
            ),
            "{host:?}"
        );
    }
    assert_eq!(
        bad(&[("host", "h"), ("x-forwarded-proto", "javascript")]),
        PublicUrlError::InvalidHeader {
            header: "x-forwarded-proto"
        }
    );
    assert_eq!(
        bad(&[("host", "h"), ("x-forwarded-port", "443abc")]),
        PublicUrlError::InvalidHeader {
            header: "x-forwarded-port"
        }
    );
    assert_eq!(
        bad(&[("forwarded", "host=a;host=b")]),
        PublicUrlError::InvalidHeader {
            header: "forwarded"
        }
    );
    assert_eq!(
        bad(&[("forwarded", r#"host="unterminated"#)]),
        PublicUrlError::InvalidHeader {
            header: "forwarded"
        }
    );
    assert_eq!(
        bad(&[("forwarded", r#"host="a\"b""#)]),
        PublicUrlError::InvalidHeader {
            header: "forwarded"
        }
    );
    assert_eq!(bad(&[]), PublicUrlError::MissingHost);
    let mut h = HeaderMap::new();
    h.insert(
        "host",
        HeaderValue::from_bytes(b"caf\xc3\xa9.example").unwrap(),
    );
    assert_eq!(
        proxy.resolve(&h, target),
        Err(PublicUrlError::InvalidHeader { header: "host" })
    );
    assert_eq!(
        proxy.resolve(&proxy_headers(&[("host", "h")]), "http://h/x"),
        Err(PublicUrlError::InvalidTarget)
    );
    // HTTP/2 has no Host header: the configured fallback host is used.
    let h2 =
        PublicUrl::TrustedProxy(TrustedProxy::new(Scheme::Http).fallback_host("hooks.example"));
    assert_eq!(
        h2.resolve(&HeaderMap::new(), "/cb"),
        Ok("http://hooks.example/cb".into())
    );
}

#[test]
fn public_url_then_validate() {
    let pairs = callback_pairs();
    let sig = sign(&AuthToken::new(TOKEN), URL, &pairs);
    let mut h = proxy_headers(&[
        ("host", "10.0.0.5:3000"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "api.example.com"),
        ("x-forwarded-port", "443"),
        ("content-type", FORM),
    ]);
    h.insert("x-twilio-signature", HeaderValue::from_str(&sig).unwrap());
    let url = PublicUrl::TrustedProxy(TrustedProxy::new(Scheme::Http))
        .resolve(&h, "/twilio/status?tenant=acme")
        .unwrap();
    assert_eq!(url, "https://api.example.com:443/twilio/status?tenant=acme");
    let got = validator()
        .validate_http(&Method::POST, &url, &h, form_body(&pairs).as_bytes())
        .unwrap();
    assert_eq!(got.candidate(), UrlCandidate::PortRemoved);
}

#[test]
fn errors_and_debug_never_show_secrets() {
    let errors = [
        SignatureError::Missing,
        SignatureError::Mismatch,
        SignatureError::BodyHashMissing,
        SignatureError::BodyHashMismatch,
        SignatureError::UnsupportedAlgorithm,
        SignatureError::NoKeyForAlgorithm(Algorithm::HmacSha256),
    ];
    for e in errors {
        let text = e.to_string();
        assert!(!text.contains(TOKEN));
        assert!(text.starts_with(|c: char| c.is_ascii_lowercase()), "{text}");
    }
    let v = SignatureValidator::builder()
        .key("primary", AuthToken::new(TOKEN))
        .sha256_key("shared", TOKEN.as_bytes())
        .build()
        .unwrap();
    assert!(!format!("{v:?}").contains(TOKEN));
}
