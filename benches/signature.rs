//! Signature validation against its floors, in one criterion group, with the ratios printed at
//! the end of the run.
//!
//! Two floors over the same 251-byte string-to-sign, each with base64 and a constant-time
//! compare: `floor_hmac_sha1` keys the HMAC from the token for every request (a one-shot
//! implementation), `floor_hmac_sha1_prekeyed` clones an HMAC keyed once (what the validator
//! does). Every ratio is against the pre-keyed floor (issue 13's targets: `full_8_params` at most
//! 1.6, `rejected_8_params` and `json_1kib` at most 3). `floor_json_1kib_hashes` is the least
//! `json_1kib` can cost: its two hashes alone, with no header, query or URL work. On this
//! shared 2-core machine, read ratios inside one run.
//!
//! The ratios depend on how fast the CPU hashes. To see them as on a CPU without SHA extensions,
//! build with the software hashes:
//! `RUSTFLAGS='--cfg sha1_backend="soft" --cfg sha2_backend="soft"' cargo bench --bench signature`
//! (a target directory of its own, `CARGO_TARGET_DIR`, keeps the default build's).
use std::hint::black_box;

use base64::Engine as _;
use criterion::{Criterion, criterion_group};
use hmac::{Hmac, KeyInit, Mac};
use http::{HeaderMap, HeaderValue, Method};
use sha2::Digest as _;
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

    // (a) The re-keyed floor: one HMAC-SHA1 over the prebuilt 251-byte string-to-sign of (b),
    // keyed from the token as a one-shot implementation does, base64-encoded, compared in
    // constant time.
    let pairs = status_callback();
    let prebuilt = string_to_sign(&pairs);
    assert_eq!(prebuilt.len(), 251);
    let signature = sign(&token, URL, &pairs);
    group.bench_function("floor_hmac_sha1", |b| {
        b.iter(|| {
            let mut mac = Hmac::<sha1::Sha1>::new_from_slice(black_box(TOKEN.as_bytes())).unwrap();
            mac.update(black_box(prebuilt.as_bytes()));
            assert_tag(&mac.finalize().into_bytes(), &signature);
        });
    });
    // (a') The pre-keyed floor: the same with the HMAC keyed once and cloned (what the
    // validator does), the lowest possible cost of checking one candidate. Ratios are to this.
    let keyed = Hmac::<sha1::Sha1>::new_from_slice(TOKEN.as_bytes()).unwrap();
    group.bench_function("floor_hmac_sha1_prekeyed", |b| {
        b.iter(|| {
            let mut mac = keyed.clone();
            mac.update(black_box(prebuilt.as_bytes()));
            assert_tag(&mac.finalize().into_bytes(), &signature);
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
    let json_signature = sign(&token, &json_url, &[] as &[(&str, &str)]);
    let h = headers("application/json", &json_signature);
    assert!(
        validator
            .validate_http(&Method::POST, &json_url, &h, &json)
            .is_ok()
    );
    // (e') What any validator must hash for (e), and nothing else: the SHA-256 of the body,
    // compared with the digest (given here already decoded from the URL's hex), and the
    // pre-keyed HMAC-SHA1 of the URL with base64 and the compare; no header, query or URL
    // work. Its ratio is the least `json_1kib` can reach on this CPU.
    let json_digest = sha2::Sha256::digest(&json);
    group.bench_function("floor_json_1kib_hashes", |b| {
        b.iter(|| {
            let digest = sha2::Sha256::digest(black_box(&json));
            let body_ok: bool = digest.ct_eq(black_box(&json_digest)).into();
            assert!(body_ok);
            let mut mac = keyed.clone();
            mac.update(black_box(json_url.as_bytes()));
            assert_tag(&mac.finalize().into_bytes(), &json_signature);
        });
    });
    group.bench_function("json_1kib", |b| {
        b.iter(|| {
            validator
                .validate_http(&Method::POST, black_box(&json_url), &h, black_box(&json))
                .unwrap()
        });
    });
    group.finish();
}

/// The floors' last step: `tag` base64-encoded and compared in constant time with `signature`,
/// which it must match.
fn assert_tag(tag: &[u8], signature: &str) {
    let mut encoded = [0u8; 28];
    let n = base64::engine::general_purpose::STANDARD
        .encode_slice(tag, &mut encoded)
        .unwrap();
    let ok: bool = encoded[..n].ct_eq(black_box(signature.as_bytes())).into();
    assert!(ok);
}

criterion_group!(benches, bench);

/// The benchmarks whose ratio to the pre-keyed floor is printed.
const REPORTED: [&str; 8] = [
    "floor_hmac_sha1",
    "floor_hmac_sha1_prekeyed",
    "full_8_params",
    "full_20_params",
    "full_50_params",
    "rejected_8_params",
    "floor_json_1kib_hashes",
    "json_1kib",
];

/// Runs the benchmarks, then prints each one's time (criterion's estimate, the slope) over the
/// pre-keyed floor's, for the benchmarks measured in this run.
fn main() {
    let started = std::time::SystemTime::now();
    benches();
    Criterion::default().configure_from_args().final_summary();
    let home = std::env::var_os("CRITERION_HOME").map_or_else(
        || {
            let target = std::env::var_os("CARGO_TARGET_DIR").unwrap_or_else(|| "target".into());
            std::path::PathBuf::from(target).join("criterion")
        },
        std::path::PathBuf::from,
    );
    let estimate = |name: &str| -> Option<f64> {
        let path = home.join("signature").join(name).join("new/estimates.json");
        let fresh = std::fs::metadata(&path).ok()?.modified().ok()? >= started;
        let json: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
        let kind = if json["slope"].is_object() {
            "slope"
        } else {
            "mean"
        };
        fresh.then(|| json[kind]["point_estimate"].as_f64())?
    };
    let Some(floor) = estimate("floor_hmac_sha1_prekeyed") else {
        return;
    };
    println!("\nratios to floor_hmac_sha1_prekeyed ({floor:.0} ns), this run:");
    for name in REPORTED {
        if let Some(time) = estimate(name) {
            println!("  {name:<26} {time:>8.0} ns  {:>5.2}x", time / floor);
        }
    }
}
