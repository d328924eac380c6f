//! The strictness rules of issue 13, each against a signature computed independently of this
//! crate: with Python's standard library on the URL and parameters shown, as
//!
//! ```text
//! python3 -c 'import hmac, hashlib, base64
//! s = URL + "".join(k + v for k, v in PAIRS)     # PAIRS in the order named by the test
//! print(base64.b64encode(hmac.new(KEY, s.encode(), hashlib.sha1).digest()).decode())'
//! ```
//!
//! (`hashlib.sha256` for the SharedKey signatures).

use http::{HeaderMap, HeaderValue, Method};
use twilio_delivery::AuthToken;
use twilio_delivery::signature::{
    Algorithm, PortChange, SignatureError, SignatureValidator, SignedRequest, SigningMode,
    UrlCandidate, Verified,
};

const TOKEN: &str = "f7e6d5c4b3a2918071605f4e3d2c1b0a";
const FORM: &str = "application/x-www-form-urlencoded";
const URL: &str = "https://api.example.com/twilio/status?tenant=acme";
/// The 8 parameters of a delivered status callback, in Twilio's (unsorted) wire order.
const CALLBACK: &str = "MessageSid=SMfedcba9876543210fedcba9876543210\
    &SmsSid=SMfedcba9876543210fedcba9876543210&AccountSid=AC0123456789abcdef0123456789abcdef\
    &From=%2B14155550100&To=%2B14155550199&MessageStatus=delivered&SmsStatus=delivered\
    &ApiVersion=2010-04-01";
/// HMAC-SHA256 of `URL` + the sorted `CALLBACK` pairs with `SHARED` (hashlib.sha256).
const SHARED_SIG: &str = "Uw+g/aIIeEdwoeWxrsppEclV+psSH5hEg+98T7Xi3ec=";
const SHARED: &[u8] = b"shared-key-secret-bytes-0123456789";
/// The same with `OTHER`.
const OTHER_SIG: &str = "8I2GqFV5z0O4ES0DdEFrydPUjf7qjVsm6+peXR8Q7z8=";
const OTHER: &[u8] = b"another-shared-secret";
/// HMAC-SHA1 of the same string with `TOKEN`.
const TOKEN_SIG: &str = "P3useABtizjThPbbJYfLBZvEkXc=";

fn validator() -> SignatureValidator {
    SignatureValidator::new(AuthToken::new(TOKEN))
}

fn shared_keys() -> SignatureValidator {
    SignatureValidator::builder()
        .key("primary", AuthToken::new(TOKEN))
        .sha256_key("KSaaaa", SHARED)
        .sha256_key("KSbbbb", OTHER)
        .build()
        .unwrap()
}

fn post(
    v: &SignatureValidator,
    signature: &str,
    settings: Option<&str>,
) -> Result<Verified, SignatureError> {
    let mut request = SignedRequest::new(&Method::POST, URL, CALLBACK.as_bytes())
        .content_type(FORM)
        .signature(signature);
    if let Some(settings) = settings {
        request = request.settings(settings);
    }
    v.validate(&request)
}

#[test]
fn the_vectors_are_those_of_the_validator() {
    assert_eq!(
        post(&validator(), TOKEN_SIG, None).map(|v| v.key_id().to_owned()),
        Ok("primary".to_owned())
    );
    let got = post(
        &shared_keys(),
        SHARED_SIG,
        Some("key=KSaaaa,algorithm=HMAC_SHA256"),
    )
    .unwrap();
    assert_eq!(
        (got.key_id(), got.algorithm()),
        ("KSaaaa", Algorithm::HmacSha256)
    );
}

#[test]
fn sha256_only_when_the_settings_header_says_so() {
    let v = shared_keys();
    // No header: an auth token's HMAC-SHA1, so a 32-byte tag is the wrong length.
    assert!(matches!(
        post(&v, SHARED_SIG, None),
        Err(SignatureError::Malformed { .. })
    ));
    // The header in any other spelling, casing or layout than Twilio's.
    for settings in [
        "key=KSaaaa, algorithm=HMAC_SHA256",
        "algorithm=HMAC_SHA256,key=KSaaaa",
        "KEY=KSaaaa,ALGORITHM=HMAC_SHA256",
        "key=\"KSaaaa\",algorithm=HMAC_SHA256",
        "key=KSaaaa;algorithm=HMAC_SHA256",
        "key=KSaaaa,algorithm=HMAC_SHA256,version=2",
        "algorithm=HMAC_SHA256",
        "",
    ] {
        assert!(
            matches!(
                post(&v, SHARED_SIG, Some(settings)),
                Err(SignatureError::InvalidSettings { .. })
            ),
            "{settings:?}"
        );
    }
    for settings in [
        "key=KSaaaa,algorithm=hmac-sha256",
        "key=KSaaaa,algorithm=HmacSHA256",
        "key=KSaaaa,algorithm=SHA256",
        "key=KSaaaa,algorithm=HMAC_SHA1",
    ] {
        assert_eq!(
            post(&v, SHARED_SIG, Some(settings)),
            Err(SignatureError::UnsupportedAlgorithm),
            "{settings:?}"
        );
    }
}

#[test]
fn the_key_named_by_the_header_is_used() {
    let v = shared_keys();
    let got = post(&v, OTHER_SIG, Some("key=KSbbbb,algorithm=HMAC_SHA256")).unwrap();
    assert_eq!(got.key_id(), "KSbbbb");
    // Another configured SHA-256 key's signature does not pass for the key the header names.
    assert_eq!(
        post(&v, SHARED_SIG, Some("key=KSbbbb,algorithm=HMAC_SHA256")),
        Err(SignatureError::Mismatch)
    );
    // An id no SHA-256 key has, the id of an auth token included.
    for settings in [
        "key=KScccc,algorithm=HMAC_SHA256",
        "key=primary,algorithm=HMAC_SHA256",
    ] {
        assert_eq!(
            post(&v, SHARED_SIG, Some(settings)),
            Err(SignatureError::UnknownKey),
            "{settings}"
        );
    }
    // No SHA-256 key at all.
    assert_eq!(
        post(
            &validator(),
            SHARED_SIG,
            Some("key=KSaaaa,algorithm=HMAC_SHA256")
        ),
        Err(SignatureError::NoKeyForAlgorithm(Algorithm::HmacSha256))
    );
}

#[test]
fn an_empty_post_without_content_type_is_a_form_without_parameters() {
    // HMAC-SHA1 of the URL alone.
    let url = "https://api.example.com/twilio/ping?tenant=acme";
    let request =
        SignedRequest::new(&Method::POST, url, b"").signature("Oloz/utZnPgUfqN0zknXNTu82D0=");
    let got = validator().validate(&request).unwrap();
    assert_eq!(got.mode(), SigningMode::Form);
    // A body without a content type still needs bodySHA256.
    let request =
        SignedRequest::new(&Method::POST, url, b"a=1").signature("Oloz/utZnPgUfqN0zknXNTu82D0=");
    assert_eq!(
        validator().validate(&request),
        Err(SignatureError::BodyHashMissing)
    );
}

#[test]
fn body_sha256_is_the_first_occurrence_percent_decoded() {
    let body = br#"{"flow_sid":"FW0123","to":"+14155550199"}"#;
    // hashlib.sha256(body).hexdigest() with every fifth character percent-encoded, then a
    // second, wrong bodySHA256; python's parse_qs(...)["bodySHA256"][0] is the hash.
    let url = "https://api.example.com/studio?bodySHA256=%302290%63fb37%3845dc%64d472%331ee5\
               %371b53%34a5a9%634b65%612425%6165f2%3067a1%377509%34124&bodySHA256=0000";
    let json = |url: &str, signature: &str| {
        let mut h = HeaderMap::new();
        h.insert("content-type", HeaderValue::from_static("application/json"));
        h.insert(
            "x-twilio-signature",
            HeaderValue::from_str(signature).unwrap(),
        );
        validator().validate_http(&Method::POST, url, &h, body)
    };
    assert_eq!(
        json(url, "D0FSaJkL24OX3p5FK2feHvpZQiY=").unwrap().mode(),
        SigningMode::BodyHash
    );
    // The right hash second, a wrong one first.
    let url = "https://api.example.com/studio?bodySHA256=0000\
               &bodySHA256=02290cfb37845dcdd47231ee571b534a5a9c4b65a2425a65f2067a1775094124";
    assert_eq!(
        json(url, "4ezHEAvL96QEGqyWZId/MS6FzvM="),
        Err(SignatureError::BodyHashMismatch)
    );
}

#[test]
fn documented_default_ports_of_the_schemes_twilio_calls() {
    let get = |url: &str, signature: &str| {
        let request = SignedRequest::new(&Method::GET, url, b"").signature(signature);
        validator().validate(&request).map(|v| v.candidate())
    };
    // Signed with the port, configured without it.
    for (url, signature) in [
        (
            "wss://media.example.com/stream?CallSid=CA1",
            "FpOAlviJlJVl0f7jYDdLocpqbd0=",
        ),
        (
            "ws://media.example.com/stream?CallSid=CA1",
            "GsTl6C24d0N9QZLacdYiRuPy0IU=",
        ),
        (
            "ftp://files.example.com/twilio/status?tenant=acme",
            "hiOYgt52VFxtpu9c2q5Kvy8t+No=",
        ),
    ] {
        assert_eq!(get(url, signature), Ok(UrlCandidate::PortAdded), "{url}");
    }
    // Configured with the port, signed without it.
    let with_port = "wss://media.example.com:443/stream?CallSid=CA1";
    assert_eq!(
        get(with_port, "ar9n+f4nSb1qggNrmZOpX3XhAco="),
        Ok(UrlCandidate::PortRemoved)
    );
    // An opt-in variant tries the default port too.
    let v = SignatureValidator::builder()
        .key("primary", AuthToken::new(TOKEN))
        .try_without_fragment(true)
        .build()
        .unwrap();
    let request = SignedRequest::new(
        &Method::GET,
        "ftp://files.example.com/twilio/status?tenant=acme#rc=3",
        b"",
    )
    .signature("hiOYgt52VFxtpu9c2q5Kvy8t+No=");
    let got = v.validate(&request).unwrap().candidate();
    assert!(
        matches!(
            got,
            UrlCandidate::Variant {
                port: PortChange::Added,
                ..
            }
        ),
        "{got:?}"
    );
}

#[test]
fn keys_above_u_ffff_sort_either_way() {
    // Keys 😀 (U+1F600), � (U+FFFD) and a. UTF-16 code units (node, Java, C#) put 😀 before
    // �; code points (Python, and UTF-8 bytes) put it after. Python:
    //   sorted(pairs, key=lambda kv: (kv[0].encode("utf-16-be"), kv[1].encode("utf-16-be")))
    let url = "https://api.example.com/twilio/sms";
    let body = "%F0%9F%98%80=1&%EF%BF%BD=2&a=3";
    let form = |signature: &str| {
        let request = SignedRequest::new(&Method::POST, url, body.as_bytes())
            .content_type(FORM)
            .signature(signature);
        validator().validate(&request).map(|v| v.mode())
    };
    // a3 😀1 �2 (UTF-16 order), a3 �2 😀1 (code point order).
    assert_eq!(form("MGh6qJYdncDO5lKAS+3SCZUPMl4="), Ok(SigningMode::Form));
    assert_eq!(form("7PPDGZjibNWMhV/5UKxs6ZlDhhc="), Ok(SigningMode::Form));
    // 😀1 �2 a3 (the wire order): neither.
    assert_eq!(
        form("/+3lnKdQbhu8QdteS/72lg+bAj0="),
        Err(SignatureError::Mismatch)
    );
}
