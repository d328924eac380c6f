//! What the webhook path logs: refusals and store failures with their reason, and never the
//! auth token, a signature, the body, a phone number or the query string, at any level. In its
//! own test binary because the tracing subscriber is process-wide.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::*;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use twilio_delivery::webhook::{StatusWebhook, WebhookRequest};
use twilio_delivery::{MemoryStore, SignatureValidator};

const BASE: &str = "https://hooks.example.com";
const TARGET: &str = "/twilio/status?tenant=secret-tenant-42";

/// A writer that keeps everything the subscriber prints.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn headers(signature: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        "x-twilio-signature",
        HeaderValue::from_str(signature).unwrap(),
    );
    h.insert(
        "content-type",
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    h
}

#[tokio::test]
async fn the_webhook_logs_reasons_but_no_token_signature_body_number_or_query() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let url = format!("{BASE}{TARGET}");
    let pairs = callback_pairs(&sid(1), "delivered", None);
    let (body, signature) = signed(&url, &pairs);
    let good = |store| {
        StatusWebhook::builder(SignatureValidator::new(token()), store)
            .public_url(BASE)
            .build()
            .unwrap()
    };
    let post = |hook: StatusWebhook, sig: String, body: String| async move {
        let h = headers(&sig);
        let r = hook
            .handle(WebhookRequest::new(
                &Method::POST,
                TARGET,
                &h,
                body.as_bytes(),
            ))
            .await;
        (
            r.status,
            format!(
                "{:?}",
                WebhookRequest::new(&Method::POST, TARGET, &h, body.as_bytes())
            ),
        )
    };

    // Accepted, forged, malformed (signed) and store down: every branch that logs.
    let (status, debug) = post(
        good(Arc::new(MemoryStore::new())),
        signature.clone(),
        body.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let forged = "AAAAAAAAAAAAAAAAAAAAAAAAAAA=".to_owned();
    let (status, _) = post(good(Arc::new(MemoryStore::new())), forged, body.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let bad: Vec<(String, String)> = vec![("To".into(), "+14155550199".into())];
    let (bad_body, bad_sig) = signed(&url, &bad);
    let (status, _) = post(good(Arc::new(MemoryStore::new())), bad_sig, bad_body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = post(
        good(Arc::new(DownStore::default())),
        signature.clone(),
        body.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("refused: signature"), "{logs}");
    assert!(logs.contains("refused: malformed"), "{logs}");
    assert!(logs.contains("store"), "{logs}");
    for secret in [
        TOKEN,
        signature.as_str(),
        "secret-tenant-42",
        "4155550199",
        "4155550100",
        body.as_str(),
    ] {
        assert!(
            !logs.contains(secret),
            "{secret} leaked into the logs: {logs}"
        );
        assert!(
            !debug.contains(secret),
            "{secret} leaked into Debug: {debug}"
        );
    }
}
