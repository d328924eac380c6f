//! The webhook contract table, row by row, plus a bad-input corpus that must never panic
//! nor touch the store.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use common::*;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use twilio_delivery::notify::Notifier;
use twilio_delivery::store::{ListQuery, StatusStore};
use twilio_delivery::webhook::{StatusWebhook, WebhookError, WebhookRequest};
use twilio_delivery::{MemoryStore, MessageStatus, SignatureValidator};

const BASE: &str = "https://hooks.example.com";
const TARGET: &str = "/twilio/status?tenant=acme&note=a%2Bb";

fn url() -> String {
    format!("{BASE}{TARGET}")
}

fn webhook(store: Arc<dyn StatusStore>) -> StatusWebhook {
    StatusWebhook::builder(SignatureValidator::new(token()), store)
        .public_url(BASE)
        .build()
        .unwrap()
}

fn headers(signature: Option<&str>, content_type: Option<&str>) -> HeaderMap {
    let mut h = HeaderMap::new();
    if let Some(s) = signature {
        h.insert("x-twilio-signature", HeaderValue::from_str(s).unwrap());
    }
    if let Some(ct) = content_type {
        h.insert("content-type", HeaderValue::from_str(ct).unwrap());
    }
    h.insert(
        "i-twilio-idempotency-token",
        HeaderValue::from_static("idem-1"),
    );
    h
}

const FORM: Option<&str> = Some("application/x-www-form-urlencoded");

async fn post(
    hook: &StatusWebhook,
    target: &str,
    h: &HeaderMap,
    body: &[u8],
) -> (StatusCode, Option<WebhookError>) {
    let r = hook
        .handle(WebhookRequest::new(&Method::POST, target, h, body))
        .await;
    (r.status, r.outcome.err())
}

async fn is_empty(store: &MemoryStore) -> bool {
    store
        .list(&ListQuery::new())
        .await
        .unwrap()
        .records
        .is_empty()
}

#[tokio::test]
async fn valid_new_event_is_applied_with_204() {
    let store = arc(MemoryStore::new());
    let hook = webhook(store.clone());
    let (body, sig) = signed(&url(), &callback_pairs(&sid(1), "sent", None));
    let (status, err) = post(&hook, TARGET, &headers(Some(&sig), FORM), body.as_bytes()).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{err:?}");
    let rec = store.get(&sid(1)).await.unwrap().unwrap();
    assert_eq!(rec.status, MessageStatus::Sent);
    assert_eq!(rec.to.as_deref(), Some("+14155550199"));
    let hist = store.history(&sid(1)).await.unwrap();
    assert_eq!(hist.len(), 1);
    assert_eq!(hist[0].idempotency_token.as_deref(), Some("idem-1"));
}

#[tokio::test]
async fn duplicate_and_stale_events_are_204_and_kept_once() {
    let store = arc(MemoryStore::new());
    let hook = webhook(store.clone());
    for status in ["delivered", "sent", "delivered", "sent"] {
        let (body, sig) = signed(&url(), &callback_pairs(&sid(2), status, None));
        let (code, err) = post(&hook, TARGET, &headers(Some(&sig), FORM), body.as_bytes()).await;
        assert_eq!(code, StatusCode::NO_CONTENT, "{status}: {err:?}");
    }
    assert_eq!(
        store.get(&sid(2)).await.unwrap().unwrap().status,
        MessageStatus::Delivered
    );
    let hist: Vec<_> = store
        .history(&sid(2))
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.status)
        .collect();
    assert_eq!(hist, vec![MessageStatus::Delivered, MessageStatus::Sent]);
}

#[tokio::test]
async fn missing_or_invalid_signature_is_403_and_untouched() {
    let store = arc(MemoryStore::new());
    let hook = webhook(store.clone());
    let pairs = callback_pairs(&sid(3), "sent", None);
    let (body, sig) = signed(&url(), &pairs);
    let other_url = signed("https://hooks.example.com/twilio/status", &pairs).1;
    let wrong_key =
        twilio_delivery::signature::sign(&twilio_delivery::AuthToken::new("nope"), &url(), &pairs);
    let tampered = body.replace("sent", "delivered");
    for (h, b) in [
        (headers(None, FORM), body.as_str()),
        (headers(Some(""), FORM), body.as_str()),
        (headers(Some("not base64!"), FORM), body.as_str()),
        (headers(Some(&other_url), FORM), body.as_str()),
        (headers(Some(&wrong_key), FORM), body.as_str()),
        (headers(Some(&sig), FORM), tampered.as_str()),
    ] {
        let (code, err) = post(&hook, TARGET, &h, b.as_bytes()).await;
        assert_eq!(code, StatusCode::FORBIDDEN);
        assert!(matches!(err, Some(WebhookError::Signature(_))), "{err:?}");
    }
    assert!(is_empty(&store).await);
}

#[tokio::test]
async fn signed_but_malformed_is_400_and_untouched() {
    let store = arc(MemoryStore::new());
    let hook = webhook(store.clone());
    let cases: Vec<Vec<(String, String)>> = vec![
        vec![("MessageStatus".into(), "sent".into())],
        vec![("MessageSid".into(), sid(4).to_string())],
        vec![
            ("MessageSid".into(), "SMnot-a-sid".into()),
            ("MessageStatus".into(), "sent".into()),
        ],
        vec![],
    ];
    for pairs in cases {
        let (body, sig) = signed(&url(), &pairs);
        let (code, err) = post(&hook, TARGET, &headers(Some(&sig), FORM), body.as_bytes()).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{pairs:?}");
        assert!(matches!(err, Some(WebhookError::Malformed(_))));
    }
    assert!(is_empty(&store).await);
}

#[tokio::test]
async fn body_over_the_limit_is_413() {
    let store = arc(MemoryStore::new());
    let hook = StatusWebhook::builder(SignatureValidator::new(token()), store.clone())
        .public_url(BASE)
        .body_limit(256)
        .build()
        .unwrap();
    let mut pairs = callback_pairs(&sid(5), "sent", None);
    pairs.push(("Padding".into(), "x".repeat(300)));
    let (body, sig) = signed(&url(), &pairs);
    let (code, _) = post(&hook, TARGET, &headers(Some(&sig), FORM), body.as_bytes()).await;
    assert_eq!(code, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        hook.payload_too_large().status,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert!(is_empty(&store).await);
}

#[tokio::test]
async fn wrong_content_type_is_415_and_wrong_method_405() {
    let store = arc(MemoryStore::new());
    let hook = webhook(store.clone());
    let (body, sig) = signed(&url(), &callback_pairs(&sid(6), "sent", None));
    for ct in [
        None,
        Some("application/json"),
        Some("text/plain"),
        Some("multipart/form-data"),
    ] {
        let (code, _) = post(&hook, TARGET, &headers(Some(&sig), ct), body.as_bytes()).await;
        assert_eq!(code, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ct:?}");
    }
    for m in [Method::GET, Method::PUT, Method::DELETE, Method::HEAD] {
        let h = headers(Some(&sig), FORM);
        let r = hook
            .handle(WebhookRequest::new(&m, TARGET, &h, body.as_bytes()))
            .await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
        assert!(r.headers.iter().any(|(k, v)| k == "allow" && v == "POST"));
    }
    assert!(is_empty(&store).await);
}

#[tokio::test]
async fn store_unavailable_is_503_with_retry_after_and_nothing_recorded() {
    let store = arc(DownStore::default());
    let hook = webhook(store.clone());
    let (body, sig) = signed(&url(), &callback_pairs(&sid(7), "delivered", None));
    let r = hook
        .handle(WebhookRequest::new(
            &Method::POST,
            TARGET,
            &headers(Some(&sig), FORM),
            body.as_bytes(),
        ))
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.headers.iter().any(|(k, _)| k == "retry-after"));
    assert_eq!(store.attempts.load(Ordering::SeqCst), 1);
    assert!(store.get(&sid(7)).await.unwrap().is_none());
}

#[tokio::test]
async fn notifier_fires_once_per_real_change() {
    let store = arc(MemoryStore::new());
    let notifier = Notifier::new(64);
    let mut sub = notifier.subscribe();
    let hook = StatusWebhook::builder(SignatureValidator::new(token()), store.clone())
        .public_url(BASE)
        .notifier(notifier)
        .build()
        .unwrap();
    for status in ["sent", "sent", "delivered", "sent", "delivered"] {
        let (body, sig) = signed(&url(), &callback_pairs(&sid(8), status, None));
        post(&hook, TARGET, &headers(Some(&sig), FORM), body.as_bytes()).await;
    }
    let wait = std::time::Duration::from_secs(5);
    let a = tokio::time::timeout(wait, sub.recv())
        .await
        .expect("first change")
        .unwrap();
    let b = tokio::time::timeout(wait, sub.recv())
        .await
        .expect("second change")
        .unwrap();
    assert_eq!((a.previous, a.current), (None, MessageStatus::Sent));
    assert_eq!(
        (b.previous, b.current),
        (Some(MessageStatus::Sent), MessageStatus::Delivered)
    );
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(50), sub.recv())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn bad_input_corpus_never_panics_and_never_touches_the_store() {
    let store = arc(MemoryStore::new());
    let hook = webhook(store.clone());
    let good = signed(&url(), &callback_pairs(&sid(9), "sent", None)).0;
    let mut bodies: Vec<Vec<u8>> = vec![
        good.as_bytes()[..good.len() / 2].to_vec(),
        vec![0xff, 0xfe, b'=', 0x80],
        b"%%%%=%zz&MessageSid=%".to_vec(),
        b"MessageSid=SM%00%00&MessageStatus=%E2%82".to_vec(),
        format!("{}=1", "K".repeat(60_000)).into_bytes(),
        (0..10_000)
            .map(|i| format!("k{i}=v"))
            .collect::<Vec<_>>()
            .join("&")
            .into_bytes(),
        b"&&&===&&&".to_vec(),
        Vec::new(),
    ];
    bodies.push(vec![b'a'; 70_000]);
    let garbage_sigs = [
        None,
        Some("=".repeat(28)),
        Some("AAAA".repeat(200)),
        Some("é".into()),
    ];
    for body in &bodies {
        for sig in &garbage_sigs {
            let mut h = HeaderMap::new();
            h.insert(
                "content-type",
                HeaderValue::from_static("application/x-www-form-urlencoded"),
            );
            if let Some(s) = sig
                && let Ok(v) = HeaderValue::from_str(s)
            {
                h.insert("x-twilio-signature", v);
            }
            for (m, t) in [
                (Method::POST, TARGET),
                (Method::GET, TARGET),
                (Method::POST, "*"),
                (Method::POST, ""),
            ] {
                let r = hook.handle(WebhookRequest::new(&m, t, &h, body)).await;
                assert!(r.status.is_client_error(), "{}", r.status);
            }
        }
    }
    assert!(is_empty(&store).await);
}

#[tokio::test]
async fn trusted_proxy_headers_give_the_public_url_only_when_opted_in() {
    use twilio_delivery::endpoint::{Scheme, TrustedProxy};
    let store = arc(MemoryStore::new());
    let proxied = StatusWebhook::builder(SignatureValidator::new(token()), store.clone())
        .trusted_proxy(TrustedProxy::new(Scheme::Http))
        .build()
        .unwrap();
    let (body, sig) = signed(&url(), &callback_pairs(&sid(10), "sent", None));
    let mut h = headers(Some(&sig), FORM);
    h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
    h.insert(
        "x-forwarded-host",
        HeaderValue::from_static("hooks.example.com"),
    );
    let (code, err) = post(&proxied, TARGET, &h, body.as_bytes()).await;
    assert_eq!(code, StatusCode::NO_CONTENT, "{err:?}");
    // The same headers mean nothing to a webhook configured with its public URL.
    let fixed = StatusWebhook::builder(SignatureValidator::new(token()), store.clone())
        .public_url("http://internal:8080")
        .build()
        .unwrap();
    let (code, _) = post(&fixed, TARGET, &h, body.as_bytes()).await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    // Forged host header with a space: refused, never panics.
    h.insert("x-forwarded-host", HeaderValue::from_static("evil .com"));
    let (code, err) = post(&proxied, TARGET, &h, body.as_bytes()).await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    assert!(matches!(err, Some(WebhookError::PublicUrl(_))));
}

#[test]
fn misconfiguration_is_a_clear_build_error() {
    let store = arc(MemoryStore::new());
    let err = StatusWebhook::builder(SignatureValidator::new(token()), store.clone())
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("public url"), "{err}");
    let err = StatusWebhook::builder(SignatureValidator::new(token()), store)
        .public_url("example.com/twilio")
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("http://"), "{err}");
}

#[tokio::test]
async fn one_change_per_real_transition_across_shuffled_duplicated_callbacks() {
    use std::sync::atomic::AtomicUsize;
    use twilio_delivery::status::{Outcome, transition};
    let store = arc(MemoryStore::new());
    let notifier = Notifier::new(4096);
    let mut sub = notifier.subscribe();
    let heard = Arc::new(AtomicUsize::new(0));
    let h2 = heard.clone();
    notifier
        .on_change(move |_| {
            let h2 = h2.clone();
            async move {
                h2.fetch_add(1, Ordering::SeqCst);
            }
        })
        .unwrap();
    let hook = StatusWebhook::builder(SignatureValidator::new(token()), store.clone())
        .public_url(BASE)
        .notifier(notifier)
        .build()
        .unwrap();
    let statuses = [
        "queued",
        "sent",
        "delivered",
        "undelivered",
        "failed",
        "read",
        "teleported",
    ];
    let mut rng = fastrand::Rng::with_seed(7);
    let mut expected = 0;
    for n in 100..140 {
        // A random multiset of statuses with duplicates, in random order.
        let mut events: Vec<&str> = (0..rng.usize(1..10))
            .map(|_| statuses[rng.usize(..statuses.len())])
            .collect();
        rng.shuffle(&mut events);
        let mut current: Option<MessageStatus> = None;
        for status in events {
            let incoming = MessageStatus::parse(status);
            if transition(current.as_ref(), &incoming) == Outcome::Advanced {
                expected += 1;
                current = Some(incoming);
            }
            let (body, sig) = signed(&url(), &callback_pairs(&sid(n), status, None));
            let (code, err) =
                post(&hook, TARGET, &headers(Some(&sig), FORM), body.as_bytes()).await;
            assert_eq!(code, StatusCode::NO_CONTENT, "{err:?}");
        }
        assert_eq!(
            store.get(&sid(n)).await.unwrap().unwrap().status,
            current.unwrap()
        );
    }
    let mut got = 0;
    while let Ok(Ok(_)) =
        tokio::time::timeout(std::time::Duration::from_millis(100), sub.recv()).await
    {
        got += 1;
    }
    assert_eq!(
        got, expected,
        "subscription: one change per real transition"
    );
    for _ in 0..100 {
        if heard.load(Ordering::SeqCst) == expected {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(
        heard.load(Ordering::SeqCst),
        expected,
        "listener: one call per real transition"
    );
}

#[tokio::test]
async fn slow_and_panicking_listeners_do_not_delay_or_fail_the_response() {
    let store = arc(MemoryStore::new());
    let notifier = Notifier::new(64);
    notifier
        .on_change(|_| async { tokio::time::sleep(std::time::Duration::from_secs(3600)).await })
        .unwrap();
    notifier
        .on_change(|_| async { panic!("listener bug") })
        .unwrap();
    let hook = StatusWebhook::builder(SignatureValidator::new(token()), store.clone())
        .public_url(BASE)
        .notifier(notifier)
        .build()
        .unwrap();
    for (i, status) in ["sent", "delivered", "read"].into_iter().enumerate() {
        let (body, sig) = signed(&url(), &callback_pairs(&sid(200), status, None));
        let h = headers(Some(&sig), FORM);
        let answered = tokio::time::timeout(
            std::time::Duration::from_secs(2),
            post(&hook, TARGET, &h, body.as_bytes()),
        )
        .await
        .expect("the response does not wait for listeners");
        assert_eq!(answered.0, StatusCode::NO_CONTENT, "callback {i}");
        // Let the panicking listener run between callbacks.
        tokio::task::yield_now().await;
    }
    assert_eq!(
        store.get(&sid(200)).await.unwrap().unwrap().status,
        MessageStatus::Read
    );
}
