//! The webhook contract through the axum, actix-web and warp adapters: one suite run over real
//! HTTP servers on 127.0.0.1 and each framework's in-process harness, identical answers and
//! store contents from all of them, and 1 000 concurrent callbacks landing through each.

mod common;
#[path = "adapters/suite.rs"]
mod suite;
#[path = "adapters/transport.rs"]
mod transport;

use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Mutex};

use twilio_delivery::store::StatusStore;
use twilio_delivery::webhook::StatusWebhook;
use twilio_delivery::{MemoryStore, MessageStatus, SignatureValidator};

use suite::{BASE, Outcome, PATH};
use transport::{Kind, Server};

/// Runs a future on the runtime `kind` needs: actix's own system for its test harness, a
/// plain tokio runtime otherwise (real servers run on runtimes of their own).
fn block_on<F: Future>(kind: Kind, future: F) -> F::Output {
    match kind {
        Kind::ActixTest => actix_web::rt::System::new().block_on(future),
        _ => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(future),
    }
}

fn contract(kind: Kind) -> Outcome {
    let outcome = block_on(kind, suite::run(kind));
    suite::check_stores(kind, &outcome);
    outcome
}

#[test]
fn contract_over_http_axum() {
    contract(Kind::AxumHttp);
}

#[test]
fn contract_over_http_actix_web() {
    contract(Kind::ActixHttp);
}

#[test]
fn contract_over_http_warp() {
    contract(Kind::WarpHttp);
}

#[test]
fn contract_in_process_axum_tower_oneshot() {
    contract(Kind::AxumTower);
}

#[test]
fn contract_in_process_actix_web_test() {
    contract(Kind::ActixTest);
}

#[test]
fn contract_in_process_warp_test() {
    contract(Kind::WarpTest);
}

#[test]
fn every_adapter_gives_identical_statuses_and_store_contents() {
    let outcomes: Vec<(Kind, Outcome)> = Kind::ALL.iter().map(|k| (*k, contract(*k))).collect();
    let (first_kind, first) = &outcomes[0];
    assert!(first.transcript.len() > 40);
    for (kind, outcome) in &outcomes[1..] {
        assert_eq!(outcome.transcript.len(), first.transcript.len());
        for (a, b) in first.transcript.iter().zip(&outcome.transcript) {
            assert_eq!(a, b, "{first_kind:?} vs {kind:?}");
        }
        for ((site, a), (_, b)) in first.stores.iter().zip(&outcome.stores) {
            assert_eq!(a, b, "store of site {site}: {first_kind:?} vs {kind:?}");
        }
    }
}

/// The statuses of the flood, in max-register order: the final status is the last.
const FLOOD_STATUSES: [&str; 5] = ["queued", "sent", "failed", "undelivered", "delivered"];
const FLOOD_MESSAGES: u32 = 200;
const CONNECTIONS: usize = 32;

/// 1 000 distinct (sid, status) callbacks, shuffled, sent over 32 connections at once.
async fn flood(kind: Kind) {
    let store = Arc::new(MemoryStore::new());
    let webhook = StatusWebhook::builder(SignatureValidator::new(common::token()), store.clone())
        .public_url(BASE)
        .build()
        .unwrap();
    let server = Server::start(kind, webhook, "", PATH);
    let url = format!("{BASE}{PATH}");
    let mut requests = Vec::new();
    for n in 0..FLOOD_MESSAGES {
        for status in FLOOD_STATUSES {
            let pairs = common::callback_pairs(&common::sid(1000 + n), status, None);
            requests.push(common::signed(&url, &pairs));
        }
    }
    fastrand::Rng::with_seed(7).shuffle(&mut requests);
    let total = requests.len();
    assert_eq!(total, 1000);
    let queue = Arc::new(Mutex::new(requests));
    let endpoint = format!("http://{}{PATH}", server.addr);
    let workers: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let (queue, endpoint) = (queue.clone(), endpoint.clone());
            // One client each: 32 distinct connections.
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .unwrap();
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                loop {
                    let next = queue.lock().unwrap().pop();
                    let Some((body, signature)) = next else { break };
                    let resp = client
                        .post(&endpoint)
                        .header("content-type", "application/x-www-form-urlencoded")
                        .header("x-twilio-signature", signature)
                        .body(body)
                        .send()
                        .await
                        .unwrap();
                    statuses.push(resp.status().as_u16());
                }
                statuses
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for worker in workers {
        statuses.extend(worker.await.unwrap());
    }
    assert_eq!(statuses.len(), total, "{kind:?}");
    let refused: Vec<u16> = statuses.iter().copied().filter(|s| *s != 204).collect();
    assert!(
        refused.is_empty(),
        "{kind:?}: {} refused, e.g. {:?}",
        refused.len(),
        refused.first()
    );
    let expected: HashSet<MessageStatus> = FLOOD_STATUSES
        .iter()
        .map(|s| MessageStatus::parse(s))
        .collect();
    let mut events = 0;
    for n in 0..FLOOD_MESSAGES {
        let sid = common::sid(1000 + n);
        let history = store.history(&sid).await.unwrap();
        let seen: HashSet<MessageStatus> = history.iter().map(|h| h.status.clone()).collect();
        assert_eq!(history.len(), FLOOD_STATUSES.len(), "{kind:?} {sid}");
        assert_eq!(seen, expected, "{kind:?} {sid}");
        let record = store.get(&sid).await.unwrap().unwrap();
        assert_eq!(record.status, MessageStatus::Delivered, "{kind:?} {sid}");
        events += history.len();
    }
    assert_eq!(events, total);
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_callbacks_land_through_axum() {
    flood(Kind::AxumHttp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_callbacks_land_through_actix_web() {
    flood(Kind::ActixHttp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_callbacks_land_through_warp() {
    flood(Kind::WarpHttp).await;
}
