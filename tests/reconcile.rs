//! The reconciler against a wiremock Twilio: stuck messages are fetched and fixed, final ones
//! are never fetched, API errors are counted and stop the pass on 429.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::json;
use time::OffsetDateTime;
use twilio_delivery::ids::{AccountSid, MessageSid};
use twilio_delivery::model::{EventSource, SentMessage};
use twilio_delivery::notify::Notifier;
use twilio_delivery::reconcile::Reconciler;
use twilio_delivery::store::StatusStore;
use twilio_delivery::{Client, MemoryStore, MessageStatus};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn message_json(sid: &MessageSid, status: &str, error_code: Option<u32>) -> serde_json::Value {
    json!({
        "account_sid": ACCOUNT, "api_version": "2010-04-01", "body": "hi",
        "date_created": "Thu, 24 Aug 2023 05:01:45 +0000", "date_sent": "Thu, 24 Aug 2023 05:01:45 +0000",
        "date_updated": "Thu, 24 Aug 2023 05:01:46 +0000", "direction": "outbound-api",
        "error_code": error_code, "error_message": null, "from": "+14155550100",
        "messaging_service_sid": null, "num_media": "0", "num_segments": "1", "price": null,
        "price_unit": "USD", "sid": sid.as_str(), "status": status, "subresource_uris": {},
        "to": "+14155550199", "uri": format!("/2010-04-01/Accounts/{ACCOUNT}/Messages/{sid}.json"),
    })
}

fn fetch_path(sid: &MessageSid) -> String {
    format!("/2010-04-01/Accounts/{ACCOUNT}/Messages/{sid}.json")
}

fn client(server: &MockServer) -> Client {
    Client::builder(AccountSid::new(ACCOUNT).unwrap(), token())
        .base_url(server.uri().parse().unwrap())
        .retry_policy(twilio_delivery::RetryPolicy::none())
        .build()
        .unwrap()
}

async fn sent(store: &MemoryStore, sid: &MessageSid, status: MessageStatus, age: Duration) {
    let mut m = SentMessage::new(sid.clone(), "+14155550199", status);
    m.created_at = OffsetDateTime::now_utc() - age;
    store.record_sent(&m).await.unwrap();
}

const HOUR: Duration = Duration::from_secs(3600);

#[tokio::test]
async fn stuck_messages_are_fetched_and_fixed_final_and_young_ones_are_not() {
    let server = MockServer::start().await;
    let store = Arc::new(MemoryStore::new());
    sent(&store, &sid(1), MessageStatus::Sent, HOUR).await;
    sent(&store, &sid(2), MessageStatus::Queued, HOUR).await;
    sent(&store, &sid(3), MessageStatus::Delivered, HOUR).await; // final: never fetched
    sent(&store, &sid(4), MessageStatus::Sent, Duration::from_secs(1)).await; // too young
    Mock::given(method("GET"))
        .and(path(fetch_path(&sid(1))))
        .respond_with(ResponseTemplate::new(200).set_body_json(message_json(
            &sid(1),
            "delivered",
            None,
        )))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(fetch_path(&sid(2))))
        .respond_with(ResponseTemplate::new(200).set_body_json(message_json(
            &sid(2),
            "undelivered",
            Some(30003),
        )))
        .expect(1)
        .mount(&server)
        .await;
    for n in [3, 4] {
        Mock::given(method("GET"))
            .and(path(fetch_path(&sid(n))))
            .respond_with(ResponseTemplate::new(500))
            .expect(0)
            .mount(&server)
            .await;
    }
    let notifier = Notifier::new(16);
    let mut changes = notifier.subscribe();
    let rec = Reconciler::builder(client(&server), store.clone())
        .min_age(Duration::from_secs(60))
        .notifier(notifier)
        .build()
        .unwrap();
    let report = rec.run_once().await.unwrap();
    assert_eq!((report.checked, report.updated, report.errors), (2, 2, 0));
    assert_eq!(
        store.get(&sid(1)).await.unwrap().unwrap().status,
        MessageStatus::Delivered
    );
    let r2 = store.get(&sid(2)).await.unwrap().unwrap();
    assert_eq!(
        (r2.status, r2.error_code),
        (MessageStatus::Undelivered, Some(30003))
    );
    let hist = store.history(&sid(1)).await.unwrap();
    assert_eq!(hist.len(), 1);
    assert_eq!(hist[0].source, EventSource::Reconciler);
    let c = changes.recv().await.unwrap();
    assert_eq!(c.source, EventSource::Reconciler);
    // A second pass finds nothing left to fix.
    let again = rec.run_once().await.unwrap();
    assert_eq!(again.checked, 0);
}

#[tokio::test]
async fn unchanged_and_not_found_messages_are_counted_not_updated() {
    let server = MockServer::start().await;
    let store = Arc::new(MemoryStore::new());
    sent(&store, &sid(5), MessageStatus::Sent, HOUR).await;
    sent(&store, &sid(6), MessageStatus::Sent, HOUR).await;
    Mock::given(method("GET"))
        .and(path(fetch_path(&sid(5))))
        .respond_with(ResponseTemplate::new(200).set_body_json(message_json(&sid(5), "sent", None)))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(fetch_path(&sid(6))))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({
            "code": 20404, "message": "The requested resource was not found",
            "more_info": "https://www.twilio.com/docs/errors/20404", "status": 404})))
        .mount(&server)
        .await;
    let rec = Reconciler::builder(client(&server), store.clone())
        .min_age(Duration::ZERO)
        .build()
        .unwrap();
    let report = rec.run_once().await.unwrap();
    assert_eq!(
        (report.checked, report.updated, report.not_found),
        (1, 0, 1)
    );
    assert_eq!(
        store.get(&sid(5)).await.unwrap().unwrap().status,
        MessageStatus::Sent
    );
    // The next pass polls the unchanged message again, not the one the API does not know.
    let again = rec.run_once().await.unwrap();
    assert_eq!((again.checked, again.not_found), (1, 0));
    assert_eq!(fetches(&server, &sid(5)).await, 2);
    assert_eq!(fetches(&server, &sid(6)).await, 1);
}

#[tokio::test]
async fn api_errors_are_counted_and_rate_limiting_stops_the_pass() {
    let server = MockServer::start().await;
    let store = Arc::new(MemoryStore::new());
    for n in 10..30 {
        sent(&store, &sid(n), MessageStatus::Sent, HOUR).await;
    }
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).set_body_json(json!({
            "code": 20429, "message": "Too Many Requests",
            "more_info": "https://www.twilio.com/docs/errors/20429", "status": 429})))
        .mount(&server)
        .await;
    let rec = Reconciler::builder(client(&server), store.clone())
        .min_age(Duration::ZERO)
        .concurrency(2)
        .build()
        .unwrap();
    let report = rec.run_once().await.unwrap();
    assert!(report.rate_limited);
    assert!(report.errors >= 1);
    let requests = server.received_requests().await.unwrap().len();
    assert!(
        requests < 20,
        "the pass stopped early, made {requests} requests"
    );
    // Nothing changed; every message is still pending for the next pass.
    assert_eq!(
        store
            .pending(OffsetDateTime::now_utc(), 100)
            .await
            .unwrap()
            .len(),
        20
    );
}

#[tokio::test]
async fn spawned_reconciler_repairs_and_stops_cleanly() {
    let server = MockServer::start().await;
    let store = Arc::new(MemoryStore::new());
    sent(&store, &sid(40), MessageStatus::Sent, HOUR).await;
    Mock::given(method("GET"))
        .and(path(fetch_path(&sid(40))))
        .respond_with(ResponseTemplate::new(200).set_body_json(message_json(
            &sid(40),
            "delivered",
            None,
        )))
        .mount(&server)
        .await;
    let handle = Reconciler::builder(client(&server), store.clone())
        .min_age(Duration::ZERO)
        .interval(Duration::from_millis(20))
        .build()
        .unwrap()
        .spawn();
    for _ in 0..250 {
        if store.get(&sid(40)).await.unwrap().unwrap().status == MessageStatus::Delivered {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        store.get(&sid(40)).await.unwrap().unwrap().status,
        MessageStatus::Delivered
    );
    tokio::time::timeout(Duration::from_secs(5), handle.shutdown())
        .await
        .expect("stops promptly");
}

/// Two app instances on one PostgreSQL: only one of them polls Twilio in a pass.
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_reconcilers_on_one_postgres_do_not_both_poll() {
    use twilio_delivery::store::PostgresStore;
    let Some(pool_a) = pg::pool().await else {
        return;
    };
    let Some(pool_b) = pg::pool().await else {
        return;
    };
    let prefix = pg::random_prefix();
    let a = Arc::new(PostgresStore::new(pool_a.clone()).with_prefix(prefix.clone()));
    let b = Arc::new(PostgresStore::new(pool_b).with_prefix(prefix.clone()));
    a.migrate().await.unwrap();
    let server = MockServer::start().await;
    for n in 50..60 {
        let mut m = SentMessage::new(sid(n), "+14155550199", MessageStatus::Sent);
        m.created_at = OffsetDateTime::now_utc() - HOUR;
        a.record_sent(&m).await.unwrap();
        Mock::given(method("GET"))
            .and(path(fetch_path(&sid(n))))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(message_json(&sid(n), "delivered", None))
                    .set_delay(Duration::from_millis(100)),
            )
            .expect(1)
            .mount(&server)
            .await;
    }
    let ra = Reconciler::builder(client(&server), a.clone())
        .min_age(Duration::ZERO)
        .concurrency(2)
        .build()
        .unwrap();
    let rb = Reconciler::builder(client(&server), b.clone())
        .min_age(Duration::ZERO)
        .concurrency(2)
        .build()
        .unwrap();
    let (x, y) = tokio::join!(ra.run_once(), rb.run_once());
    let (x, y) = (x.unwrap(), y.unwrap());
    assert!(
        x.skipped_locked != y.skipped_locked,
        "exactly one pass ran: {x:?} {y:?}"
    );
    assert_eq!(x.checked + y.checked, 10);
    assert_eq!(server.received_requests().await.unwrap().len(), 10);
    assert!(
        b.pending(OffsetDateTime::now_utc(), 100)
            .await
            .unwrap()
            .is_empty()
    );
    pg::drop_tables(&pool_a, &prefix).await;
}

#[tokio::test]
async fn messages_past_the_max_age_are_no_longer_polled() {
    let server = MockServer::start().await;
    let store = Arc::new(MemoryStore::new());
    sent(&store, &sid(70), MessageStatus::Sent, 5 * 24 * HOUR).await; // stuck for good
    sent(&store, &sid(71), MessageStatus::Sent, HOUR).await;
    Mock::given(method("GET"))
        .and(path(fetch_path(&sid(70))))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(fetch_path(&sid(71))))
        .respond_with(ResponseTemplate::new(200).set_body_json(message_json(
            &sid(71),
            "delivered",
            None,
        )))
        .expect(1)
        .mount(&server)
        .await;
    // A batch of one: the old message must not crowd out the newer one.
    let rec = Reconciler::builder(client(&server), store.clone())
        .min_age(Duration::from_secs(60))
        .max_age(3 * 24 * HOUR)
        .batch_size(1)
        .build()
        .unwrap();
    let report = rec.run_once().await.unwrap();
    assert_eq!((report.checked, report.updated), (1, 1));
    assert_eq!(
        store.get(&sid(71)).await.unwrap().unwrap().status,
        MessageStatus::Delivered
    );
}

#[tokio::test]
async fn the_builder_refuses_bad_settings_instead_of_panicking_later() {
    use twilio_delivery::reconcile::ReconcilerConfigError as E;
    let server = MockServer::start().await;
    let store: Arc<dyn StatusStore> = Arc::new(MemoryStore::new());
    let builder = || Reconciler::builder(client(&server), store.clone());
    let err = |b: twilio_delivery::reconcile::ReconcilerBuilder| b.build().unwrap_err();
    assert_eq!(err(builder().max_age(Duration::MAX)), E::MaxAgeTooLarge);
    assert_eq!(
        err(builder().min_age(HOUR).max_age(Duration::from_secs(60))),
        E::AgeWindow
    );
    assert_eq!(err(builder().interval(Duration::ZERO)), E::ZeroInterval);
    // Every Duration, from nothing to the largest, is either accepted or refused: never a panic.
    for secs in [0, 1, 3600, 1 << 32, 1 << 40, u64::MAX] {
        let age = Duration::from_secs(secs);
        if let Ok(r) = builder().min_age(Duration::ZERO).max_age(age).build() {
            r.run_once().await.unwrap();
        }
        let _ = builder().min_age(age).max_age(Duration::MAX).build();
    }
    // The largest accepted window still runs a pass.
    let ok = builder()
        .min_age(Duration::ZERO)
        .max_age(Duration::from_secs(200 * 365 * 24 * 3600))
        .build()
        .unwrap();
    ok.run_once().await.unwrap();
}

#[tokio::test]
async fn each_message_is_polled_through_its_own_account_and_unknown_accounts_are_reported_once() {
    use twilio_delivery::AuthToken;
    use twilio_delivery::client::Clients;
    use wiremock::matchers::basic_auth;
    const SUB: &str = "ACfedcba9876543210fedcba9876543210";
    const STRANGER: &str = "AC11111111111111111111111111111111";
    let server = MockServer::start().await;
    let store = Arc::new(MemoryStore::new());
    for (n, account) in [(1, ACCOUNT), (2, SUB), (3, STRANGER)] {
        let mut m = SentMessage::new(sid(n), "+14155550199", MessageStatus::Sent);
        m.created_at = OffsetDateTime::now_utc() - HOUR;
        m.account_sid = Some(AccountSid::new(account).unwrap());
        store.record_sent(&m).await.unwrap();
    }
    // Each account's message answers only at its own path, with its own credentials.
    for (n, account, token) in [(1, ACCOUNT, TOKEN), (2, SUB, "sub-token")] {
        let mut body = message_json(&sid(n), "delivered", None);
        body["account_sid"] = json!(account);
        Mock::given(method("GET"))
            .and(path(format!(
                "/2010-04-01/Accounts/{account}/Messages/{}.json",
                sid(n)
            )))
            .and(basic_auth(account, token))
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
            .expect(1)
            .mount(&server)
            .await;
    }
    let client = |account: &str, token: &str| {
        Client::builder(AccountSid::new(account).unwrap(), AuthToken::new(token))
            .base_url(server.uri().parse().unwrap())
            .retry_policy(twilio_delivery::RetryPolicy::none())
            .build()
            .unwrap()
    };
    let clients = Clients::new()
        .with(client(ACCOUNT, TOKEN))
        .with(client(SUB, "sub-token"));
    let rec = Reconciler::builder(clients, store.clone())
        .min_age(Duration::from_secs(60))
        .build()
        .unwrap();
    let report = rec.run_once().await.unwrap();
    assert_eq!(
        (report.updated, report.unknown_account, report.errors),
        (2, 1, 0)
    );
    for n in [1, 2] {
        let status = store.get(&sid(n)).await.unwrap().unwrap().status;
        assert_eq!(status, MessageStatus::Delivered);
    }
    // The stranger's message is not retried forever: the next pass leaves it alone.
    let again = rec.run_once().await.unwrap();
    assert_eq!(
        (again.checked, again.unknown_account, again.errors),
        (0, 0, 0)
    );
    assert_eq!(
        store.get(&sid(3)).await.unwrap().unwrap().status,
        MessageStatus::Sent
    );
}

/// How many requests the mock server got for each message's fetch path.
async fn fetches(server: &MockServer, sid: &MessageSid) -> usize {
    let requests = server.received_requests().await.unwrap();
    let path = fetch_path(sid);
    requests.iter().filter(|r| r.url.path() == path).count()
}

#[tokio::test]
async fn messages_that_never_turn_final_do_not_crowd_out_newer_ones() {
    let server = MockServer::start().await;
    let store = Arc::new(MemoryStore::new());
    // Two old messages whose carrier never sends a receipt fill a whole batch; a newer one
    // lost its callback.
    sent(&store, &sid(20), MessageStatus::Sent, 3 * HOUR).await;
    sent(&store, &sid(21), MessageStatus::Sent, 3 * HOUR).await;
    sent(&store, &sid(22), MessageStatus::Sent, 2 * HOUR).await;
    for (n, status) in [(20, "sent"), (21, "sent"), (22, "delivered")] {
        Mock::given(method("GET"))
            .and(path(fetch_path(&sid(n))))
            .respond_with(ResponseTemplate::new(200).set_body_json(message_json(
                &sid(n),
                status,
                None,
            )))
            .mount(&server)
            .await;
    }
    let rec = Reconciler::builder(client(&server), store.clone())
        .min_age(Duration::from_secs(60))
        .batch_size(2)
        .build()
        .unwrap();
    let first = rec.run_once().await.unwrap();
    assert_eq!((first.checked, first.updated), (2, 0));
    // The next pass goes on after them, then back to the window's start.
    let second = rec.run_once().await.unwrap();
    assert_eq!((second.checked, second.updated), (2, 1));
    assert_eq!(
        store.get(&sid(22)).await.unwrap().unwrap().status,
        MessageStatus::Delivered
    );
    assert_eq!(fetches(&server, &sid(20)).await, 2);
    assert_eq!(fetches(&server, &sid(21)).await, 1);
    assert_eq!(fetches(&server, &sid(22)).await, 1);
    // Every pending message in turn: the next pass takes 21, then 20 again.
    rec.run_once().await.unwrap();
    assert_eq!(fetches(&server, &sid(21)).await, 2);
    assert_eq!(
        fetches(&server, &sid(22)).await,
        1,
        "final: not fetched again"
    );
}

#[tokio::test]
async fn a_batch_of_unknown_accounts_does_not_stop_the_reconciler() {
    const STRANGER: &str = "AC11111111111111111111111111111111";
    let server = MockServer::start().await;
    let store = Arc::new(MemoryStore::new());
    for n in [30, 31] {
        let mut m = SentMessage::new(sid(n), "+14155550199", MessageStatus::Sent);
        m.created_at = OffsetDateTime::now_utc() - 3 * HOUR;
        m.account_sid = Some(AccountSid::new(STRANGER).unwrap());
        store.record_sent(&m).await.unwrap();
    }
    sent(&store, &sid(32), MessageStatus::Sent, 2 * HOUR).await;
    Mock::given(method("GET"))
        .and(path(fetch_path(&sid(32))))
        .respond_with(ResponseTemplate::new(200).set_body_json(message_json(
            &sid(32),
            "delivered",
            None,
        )))
        .expect(1)
        .mount(&server)
        .await;
    let rec = Reconciler::builder(client(&server), store.clone())
        .min_age(Duration::from_secs(60))
        .batch_size(2)
        .build()
        .unwrap();
    let first = rec.run_once().await.unwrap();
    assert_eq!((first.checked, first.unknown_account), (0, 2));
    let second = rec.run_once().await.unwrap();
    assert_eq!((second.updated, second.unknown_account), (1, 0));
    assert_eq!(
        store.get(&sid(32)).await.unwrap().unwrap().status,
        MessageStatus::Delivered
    );
}

/// A store whose reconciliation lock is lost as soon as the API answers its first fetch.
#[derive(Debug)]
struct LosesItsLock {
    inner: Arc<MemoryStore>,
    lost: Arc<std::sync::atomic::AtomicBool>,
}

#[twilio_delivery::async_trait]
impl StatusStore for LosesItsLock {
    async fn record_sent(
        &self,
        sent: &SentMessage,
    ) -> Result<twilio_delivery::Applied, twilio_delivery::StoreError> {
        self.inner.record_sent(sent).await
    }
    async fn apply(
        &self,
        event: &twilio_delivery::StatusEvent,
    ) -> Result<twilio_delivery::Applied, twilio_delivery::StoreError> {
        self.inner.apply(event).await
    }
    async fn get(
        &self,
        sid: &MessageSid,
    ) -> Result<Option<twilio_delivery::MessageRecord>, twilio_delivery::StoreError> {
        self.inner.get(sid).await
    }
    async fn history(
        &self,
        sid: &MessageSid,
    ) -> Result<Vec<twilio_delivery::HistoryEntry>, twilio_delivery::StoreError> {
        self.inner.history(sid).await
    }
    async fn pending_since(
        &self,
        created_from: OffsetDateTime,
        older_than: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<twilio_delivery::MessageRecord>, twilio_delivery::StoreError> {
        self.inner
            .pending_since(created_from, older_than, limit)
            .await
    }
    async fn list(
        &self,
        query: &twilio_delivery::store::ListQuery,
    ) -> Result<twilio_delivery::store::Page, twilio_delivery::StoreError> {
        self.inner.list(query).await
    }
    async fn try_reconcile_lock(
        &self,
    ) -> Result<Option<twilio_delivery::store::ReconcileLock>, twilio_delivery::StoreError> {
        Ok(Some(twilio_delivery::store::ReconcileLock::losable(
            Box::new(()),
            self.lost.clone(),
        )))
    }
}

/// Answers a fetch with "delivered" and marks the lock lost.
struct LoseTheLock(Arc<std::sync::atomic::AtomicBool>);

impl wiremock::Respond for LoseTheLock {
    fn respond(&self, request: &wiremock::Request) -> ResponseTemplate {
        self.0.store(true, std::sync::atomic::Ordering::Release);
        let file = request.url.path().rsplit('/').next().unwrap_or_default();
        let sid = MessageSid::new(file.trim_end_matches(".json")).unwrap();
        ResponseTemplate::new(200).set_body_json(message_json(&sid, "delivered", None))
    }
}

#[tokio::test]
async fn a_pass_whose_lock_is_lost_starts_no_more_fetches_and_the_next_takes_its_batch() {
    let server = MockServer::start().await;
    let inner = Arc::new(MemoryStore::new());
    for n in 40..44 {
        sent(&inner, &sid(n), MessageStatus::Sent, HOUR).await;
    }
    let lost = Arc::new(std::sync::atomic::AtomicBool::new(false));
    Mock::given(method("GET"))
        .respond_with(LoseTheLock(lost.clone()))
        .mount(&server)
        .await;
    let store = Arc::new(LosesItsLock {
        inner: inner.clone(),
        lost: lost.clone(),
    });
    let rec = Reconciler::builder(client(&server), store)
        .min_age(Duration::from_secs(60))
        .batch_size(3)
        .concurrency(1)
        .build()
        .unwrap();
    let report = rec.run_once().await.unwrap();
    assert!(report.lock_lost);
    assert_eq!((report.checked, report.updated), (1, 1));
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
    // The lock is held again: the next pass takes the same batch (its first is final now).
    lost.store(false, std::sync::atomic::Ordering::Release);
    let next = rec.run_once().await.unwrap();
    assert!(next.lock_lost, "lost again at its first fetch");
    let fixed: Vec<u32> = {
        let mut v = Vec::new();
        for n in 40..44 {
            if inner.get(&sid(n)).await.unwrap().unwrap().status == MessageStatus::Delivered {
                v.push(n);
            }
        }
        v
    };
    assert_eq!(fixed, vec![40, 41]);
}
