//! The crate's metrics, read through a recorder installed as the `metrics` backend: a scripted
//! sequence (valid, forged and malformed callbacks, a store that is down, transitions, a
//! reconciler repair, a change-feed consumer) moves each documented metric as expected, and no
//! label ever holds a phone number, a SID or a URL. In its own test binary: the recorder is
//! process-wide.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use http::{HeaderMap, HeaderValue, Method};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use serde_json::json;
use time::OffsetDateTime;
use twilio_delivery::feed::Consumer;
use twilio_delivery::metrics as names;
use twilio_delivery::model::SentMessage;
use twilio_delivery::reconcile::Reconciler;
use twilio_delivery::webhook::{StatusWebhook, WebhookRequest};
use twilio_delivery::{
    AccountSid, Client, MemoryStore, MessageStatus, SignatureValidator, StatusStore,
};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const BASE: &str = "https://hooks.example.com";
const TARGET: &str = "/twilio/status";

type Seen = HashMap<(String, Vec<(String, String)>), DebugValue>;

fn seen(snapshotter: &Snapshotter) -> Seen {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key();
            let mut labels: Vec<(String, String)> = key
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            labels.sort();
            ((key.name().to_owned(), labels), value)
        })
        .collect()
}

fn counter(seen: &Seen, name: &str, labels: &[(&str, &str)]) -> u64 {
    let mut labels: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    labels.sort();
    match seen.get(&(name.to_owned(), labels)) {
        Some(DebugValue::Counter(n)) => *n,
        _ => 0,
    }
}

fn histogram(seen: &Seen, name: &str) -> Vec<f64> {
    seen.iter()
        .filter(|((n, _), _)| n == name)
        .flat_map(|(_, v)| match v {
            DebugValue::Histogram(values) => values.iter().map(|v| v.into_inner()).collect(),
            _ => Vec::new(),
        })
        .collect()
}

fn gauge(seen: &Seen, name: &str) -> Option<f64> {
    seen.iter().find_map(|((n, _), v)| match v {
        DebugValue::Gauge(g) if n == name => Some(g.into_inner()),
        _ => None,
    })
}

async fn post(webhook: &StatusWebhook, body: &str, signature: &str) -> u16 {
    let mut h = HeaderMap::new();
    h.insert(
        "x-twilio-signature",
        HeaderValue::from_str(signature).unwrap(),
    );
    h.insert(
        "content-type",
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    webhook
        .handle(WebhookRequest::new(
            &Method::POST,
            TARGET,
            &h,
            body.as_bytes(),
        ))
        .await
        .status
        .as_u16()
}

/// Posts a callback whose body stops short of its `Content-Length` to the status webhook
/// served by axum on 127.0.0.1, and returns the status of the answer.
#[cfg(feature = "axum")]
async fn stalled_body_through_axum() -> u16 {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let webhook = StatusWebhook::builder(
        SignatureValidator::new(token()),
        Arc::new(MemoryStore::new()),
    )
    .public_url(BASE)
    .body_read_timeout(Duration::from_millis(300))
    .build()
    .unwrap();
    let app = twilio_delivery::adapters::axum::router(webhook, TARGET);
    tokio::spawn(async move { axum::serve(listener, app).await });
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {TARGET} HTTP/1.1\r\nHost: {addr}\r\nX-Twilio-Signature: x\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 50\r\n\r\nMessageSid"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {answer:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_metric_moves_and_no_label_identifies_anyone() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().unwrap();

    let url = format!("{BASE}{TARGET}");
    let store = Arc::new(MemoryStore::new());
    let webhook = StatusWebhook::builder(SignatureValidator::new(token()), store.clone())
        .public_url(BASE)
        .build()
        .unwrap();
    // A message sent a minute ago: sent, then delivered.
    let mut sent = SentMessage::new(sid(1), "+14155550199", MessageStatus::Queued);
    sent.created_at = OffsetDateTime::now_utc() - Duration::from_secs(60);
    store.record_sent(&sent).await.unwrap();
    for status in ["sent", "delivered", "delivered"] {
        let (body, signature) = signed(&url, &callback_pairs(&sid(1), status, None));
        assert_eq!(post(&webhook, &body, &signature).await, 204);
    }
    let (body, _) = signed(&url, &callback_pairs(&sid(2), "sent", None));
    assert_eq!(
        post(&webhook, &body, "AAAAAAAAAAAAAAAAAAAAAAAAAAA=").await,
        403
    );
    let malformed = vec![("To".to_owned(), "+14155550199".to_owned())];
    let (body, signature) = signed(&url, &malformed);
    assert_eq!(post(&webhook, &body, &signature).await, 400);
    let down = StatusWebhook::builder(
        SignatureValidator::new(token()),
        Arc::new(DownStore::default()),
    )
    .public_url(BASE)
    .build()
    .unwrap();
    let (body, signature) = signed(&url, &callback_pairs(&sid(3), "sent", None));
    assert_eq!(post(&down, &body, &signature).await, 503);

    // A body that never comes in full, through an adapter: 408, counted like the others.
    #[cfg(feature = "axum")]
    assert_eq!(stalled_body_through_axum().await, 408);

    // A message whose callbacks never came: the reconciler repairs it.
    let twilio = MockServer::start().await;
    let mut stuck = SentMessage::new(sid(4), "+14155550188", MessageStatus::Sent);
    stuck.created_at = OffsetDateTime::now_utc() - Duration::from_secs(3600);
    store.record_sent(&stuck).await.unwrap();
    Mock::given(method("GET"))
        .and(path(format!(
            "/2010-04-01/Accounts/{ACCOUNT}/Messages/{}.json",
            sid(4)
        )))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "sid": sid(4).as_str(), "account_sid": ACCOUNT, "status": "undelivered",
            "error_code": 30003, "to": "+14155550188", "from": "+14155550100",
            "date_created": "Thu, 24 Aug 2023 05:01:45 +0000", "api_version": "2010-04-01",
        })))
        .mount(&twilio)
        .await;
    let client = Client::builder(AccountSid::new(ACCOUNT).unwrap(), token())
        .base_url(twilio.uri().parse().unwrap())
        .build()
        .unwrap();
    let report = Reconciler::builder(client, store.clone())
        .min_age(Duration::from_secs(60))
        .build()
        .unwrap()
        .run_once()
        .await
        .unwrap();
    assert_eq!(report.updated, 1);

    // A change-feed consumer that has read everything.
    let consumer = Consumer::builder(store.clone(), "metrics-test")
        .unwrap()
        .build();
    consumer.run_once(&|_entry| async { Ok(()) }).await.unwrap();

    let seen = seen(&snapshotter);
    assert_eq!(counter(&seen, names::CALLBACKS, &[("status", "204")]), 3);
    assert_eq!(counter(&seen, names::CALLBACKS, &[("status", "403")]), 1);
    assert_eq!(counter(&seen, names::CALLBACKS, &[("status", "400")]), 1);
    assert_eq!(counter(&seen, names::CALLBACKS, &[("status", "503")]), 1);
    #[cfg(feature = "axum")]
    assert_eq!(counter(&seen, names::CALLBACKS, &[("status", "408")]), 1);
    let t = |from, to, source| {
        counter(
            &seen,
            names::TRANSITIONS,
            &[("from", from), ("to", to), ("source", source)],
        )
    };
    assert_eq!(t("queued", "sent", "callback"), 1);
    assert_eq!(
        t("sent", "delivered", "callback"),
        1,
        "a duplicate is no transition"
    );
    assert_eq!(t("sent", "undelivered", "reconciler"), 1);
    let to_final = histogram(&seen, names::SEND_TO_FINAL);
    assert_eq!(to_final.len(), 2, "{to_final:?}");
    assert!(
        to_final.iter().all(|s| (59.0..4000.0).contains(s)),
        "{to_final:?}"
    );
    assert!(!histogram(&seen, names::STORE_WRITE).is_empty());
    let writes = |operation: &str| {
        seen.keys().any(|(name, labels)| {
            name == names::STORE_WRITE && labels.contains(&("operation".into(), operation.into()))
        })
    };
    assert!(writes("apply"), "the memory store, written by each request");
    assert!(
        writes("apply_batch"),
        "the down store, behind the write queue"
    );
    let batches = histogram(&seen, names::BATCH_SIZE);
    assert!(!batches.is_empty() && batches.iter().all(|n| *n >= 1.0));
    assert_eq!(counter(&seen, names::REPAIRS, &[]), 1);
    assert_eq!(gauge(&seen, names::STUCK), Some(1.0));
    assert_eq!(gauge(&seen, names::FEED_LAG), Some(0.0));

    // Bounded labels: no number, SID or URL anywhere.
    for (name, labels) in seen.keys() {
        for (key, value) in labels {
            let identifying = value.contains('+')
                || value.contains("://")
                || value.len() == 34 && (value.starts_with("SM") || value.starts_with("AC"))
                || value.chars().filter(char::is_ascii_digit).count() > 3 && key != "status";
            assert!(!identifying, "{name} has label {key}={value}");
        }
    }
}
