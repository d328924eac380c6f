//! Signature validation against its floor (one HMAC-SHA1 + base64 + compare), in one criterion group.
//!
//! Read as ratios inside one run: `full_8_params / floor_hmac_sha1` (target ≤ 1.25) and
//! `rejected_8_params / floor_hmac_sha1` (target ≤ 2.5: a rejection tries two URL candidates).
//! `floor_hmac_sha1_prekeyed` shows the share of the floor that keying the HMAC costs, and
//! `full_8_params_cache_miss` the cost of (b) when the thread's cached first block (shared by
//! every callback of one account to one URL) does not match.
use std::hint::black_box;

use base64::Engine as _;
use criterion::{Criterion, criterion_group, criterion_main};
use hmac::{Hmac, KeyInit, Mac};
use http::{HeaderMap, HeaderValue, Method};
use subtle::ConstantTimeEq as _;
use twilio_delivery::AuthToken;
use twilio_delivery::signature::{SignatureValidator, sign, url_with_body_sha256};

const TOKEN: &str = "f7e6d5c4b3a2918071605f4e3d2c1b0a";
const URL: &str = "https://example.com/twilio/status";

/// The 8 params of every status callback, in Twilio's (unsorted) wire order.
fn status_callback() -> Vec<(String, String)> {
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

/// The callback with extra params up to `n` (channel fields, custom ones), some percent-encoded.
fn with_params(n: usize) -> Vec<(String, String)> {
    let mut pairs = status_callback();
    let mut i = 0;
    while pairs.len() < n {
        pairs.push((format!("Extra{i:02}"), format!("value {i} +{i}/x")));
        i += 1;
    }
    pairs
}

fn form_body(pairs: &[(String, String)]) -> Vec<u8> {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
        .into_bytes()
}

fn headers(content_type: &'static str, signature: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("host", HeaderValue::from_static("example.com"));
    h.insert("user-agent", HeaderValue::from_static("TwilioProxy/1.1"));
    h.insert("content-type", HeaderValue::from_static(content_type));
    h.insert(
        "i-twilio-idempotency-token",
        HeaderValue::from_static("8a3f5c2e-0d1b-4c7a-9e6f-2b4d8c0a1e3f"),
    );
    h.insert(
        "x-twilio-signature",
        HeaderValue::from_str(signature).unwrap(),
    );
    h
}

/// The string-to-sign of `pairs` at `URL`, built the slow, obvious way.
fn string_to_sign(pairs: &[(String, String)]) -> String {
    let mut sorted = pairs.to_vec();
    sorted.sort();
    sorted.dedup();
    let mut s = URL.to_owned();
    for (k, v) in sorted {
        s.push_str(&k);
        s.push_str(&v);
    }
    s
}

fn bench(c: &mut Criterion) {
    const FORM: &str = "application/x-www-form-urlencoded";
    let token = AuthToken::new(TOKEN);
    let validator = SignatureValidator::new(token.clone());
    let mut group = c.benchmark_group("signature");

    // (a) The floor: one HMAC-SHA1 over the prebuilt 251-byte string-to-sign of (b), keyed
    // from the token as a one-shot implementation does, base64-encoded, compared in constant time.
    let pairs = status_callback();
    let prebuilt = string_to_sign(&pairs);
    assert_eq!(prebuilt.len(), 251);
    let signature = sign(&token, URL, &pairs);
    let compare = |tag: &[u8]| {
        let mut encoded = [0u8; 28];
        let n = base64::engine::general_purpose::STANDARD
            .encode_slice(tag, &mut encoded)
            .unwrap();
        let ok: bool = encoded[..n].ct_eq(black_box(signature.as_bytes())).into();
        assert!(ok);
    };
    group.bench_function("floor_hmac_sha1", |b| {
        b.iter(|| {
            let mut mac = Hmac::<sha1::Sha1>::new_from_slice(black_box(TOKEN.as_bytes())).unwrap();
            mac.update(black_box(prebuilt.as_bytes()));
            compare(&mac.finalize().into_bytes());
        });
    });
    // (a') The same with the keyed state prepared once and cloned (what the validator does):
    // the lowest possible cost of checking one candidate.
    let keyed = Hmac::<sha1::Sha1>::new_from_slice(TOKEN.as_bytes()).unwrap();
    group.bench_function("floor_hmac_sha1_prekeyed", |b| {
        b.iter(|| {
            let mut mac = keyed.clone();
            mac.update(black_box(prebuilt.as_bytes()));
            compare(&mac.finalize().into_bytes());
        });
    });

    // (b) and (c) Full validation from the raw form body, URL and headers.
    for n in [8, 20, 50] {
        let pairs = with_params(n);
        let body = form_body(&pairs);
        let h = headers(FORM, &sign(&token, URL, &pairs));
        assert!(
            validator
                .validate_http(&Method::POST, URL, &h, &body)
                .is_ok()
        );
        group.bench_function(format!("full_{n}_params"), |b| {
            b.iter(|| {
                validator
                    .validate_http(&Method::POST, black_box(URL), &h, black_box(&body))
                    .unwrap()
            });
        });
    }

    // (d) A rejected signature: both URL candidates are tried.
    let body = form_body(&pairs);
    let h = headers(FORM, "bwSgJ+oHA34iYCaD0pf6Gu1S6U4=");
    assert!(
        validator
            .validate_http(&Method::POST, URL, &h, &body)
            .is_err()
    );
    group.bench_function("rejected_8_params", |b| {
        b.iter(|| {
            validator
                .validate_http(&Method::POST, black_box(URL), &h, black_box(&body))
                .unwrap_err()
        });
    });

    // (e) A 1 KiB JSON body: signature over the URL, then SHA-256 of the body.
    let mut json = String::from("{\"events\":[");
    while json.len() < 960 {
        json.push_str("{\"sid\":\"SMfedcba9876543210\",\"ok\":true},");
    }
    json.push_str("{}]");
    while json.len() < 1023 {
        json.push(' ');
    }
    json.push('}');
    let json = json.into_bytes();
    assert_eq!(json.len(), 1024);
    let json_url = url_with_body_sha256(URL, &json);
    let h = headers(
        "application/json",
        &sign(&token, &json_url, &[] as &[(&str, &str)]),
    );
    assert!(
        validator
            .validate_http(&Method::POST, &json_url, &h, &json)
            .is_ok()
    );
    group.bench_function("json_1kib", |b| {
        b.iter(|| {
            validator
                .validate_http(&Method::POST, black_box(&json_url), &h, black_box(&json))
                .unwrap()
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
