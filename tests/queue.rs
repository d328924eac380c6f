//! The webhook's write path: group commit, backpressure, the deadline, batch failures, a store
//! that panics, stores that do not group commits, and the account check, against a store that
//! can be stalled and made to fail on purpose.

mod common;

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use common::*;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use time::OffsetDateTime;
use tokio::sync::watch;
use tokio::time::Instant;
use twilio_delivery::ids::MessageSid;
use twilio_delivery::model::{Applied, HistoryEntry, MessageRecord, SentMessage, StatusEvent};
use twilio_delivery::store::{ListQuery, Page, StatusStore, StoreError};
use twilio_delivery::webhook::{StatusWebhook, WebhookError, WebhookRequest};
use twilio_delivery::{AccountSid, MemoryStore, SignatureValidator};

const BASE: &str = "https://hooks.example.com";
const TARGET: &str = "/twilio/status";

/// A memory store whose writes wait while the gate is closed, take `delay` each, and fail (or
/// panic, or reject the write as a store does a value it cannot hold) when they hold the
/// poisoned SID; it records the size of every batch and counts the
/// single writes. It groups commits unless made with [`GatedStore::direct`].
#[derive(Debug)]
struct GatedStore {
    inner: MemoryStore,
    group_commit: bool,
    open: watch::Sender<bool>,
    poison: Mutex<Option<MessageSid>>,
    panics: AtomicBool,
    rejects: AtomicBool,
    delay: Mutex<Duration>,
    batches: Mutex<Vec<usize>>,
    singles: AtomicUsize,
}

impl GatedStore {
    fn new() -> Arc<Self> {
        Self::with(true)
    }

    /// A store that does not group commits: the webhook calls its `apply` in each request.
    fn direct() -> Arc<Self> {
        Self::with(false)
    }

    fn with(group_commit: bool) -> Arc<Self> {
        Arc::new(Self {
            inner: MemoryStore::new(),
            group_commit,
            open: watch::Sender::new(true),
            poison: Mutex::new(None),
            panics: AtomicBool::new(false),
            rejects: AtomicBool::new(false),
            delay: Mutex::new(Duration::ZERO),
            batches: Mutex::new(Vec::new()),
            singles: AtomicUsize::new(0),
        })
    }

    fn gate(&self, open: bool) {
        self.open.send_replace(open);
    }

    async fn write(&self, events: &[StatusEvent]) -> Result<Vec<Applied>, StoreError> {
        let mut rx = self.open.subscribe();
        let _ = rx.wait_for(|open| *open).await;
        let delay = *self.delay.lock().unwrap();
        tokio::time::sleep(delay).await;
        let poison = self.poison.lock().unwrap().clone();
        if events.iter().any(|e| Some(&e.sid) == poison.as_ref()) {
            assert!(!self.panics.load(Ordering::Relaxed), "a store bug");
            if self.rejects.load(Ordering::Relaxed) {
                return Err(StoreError::Rejected("a value too long to index".into()));
            }
            return Err(StoreError::Unavailable("poisoned batch".into()));
        }
        self.inner.apply_batch(events).await
    }
}

#[async_trait]
impl StatusStore for GatedStore {
    async fn record_sent(&self, s: &SentMessage) -> Result<Applied, StoreError> {
        self.inner.record_sent(s).await
    }
    async fn apply(&self, e: &StatusEvent) -> Result<Applied, StoreError> {
        self.singles.fetch_add(1, Ordering::Relaxed);
        self.write(std::slice::from_ref(e))
            .await
            .map(|mut v| v.remove(0))
    }
    async fn apply_batch(&self, events: &[StatusEvent]) -> Result<Vec<Applied>, StoreError> {
        self.batches.lock().unwrap().push(events.len());
        self.write(events).await
    }
    fn group_commit(&self) -> bool {
        self.group_commit
    }
    async fn get(&self, sid: &MessageSid) -> Result<Option<MessageRecord>, StoreError> {
        self.inner.get(sid).await
    }
    async fn history(&self, sid: &MessageSid) -> Result<Vec<HistoryEntry>, StoreError> {
        self.inner.history(sid).await
    }
    async fn pending_since(
        &self,
        f: OffsetDateTime,
        t: OffsetDateTime,
        n: u32,
    ) -> Result<Vec<MessageRecord>, StoreError> {
        self.inner.pending_since(f, t, n).await
    }
    async fn list(&self, q: &ListQuery) -> Result<Page, StoreError> {
        self.inner.list(q).await
    }
}

fn request(n: u32, account: &str) -> (HeaderMap, String) {
    let mut pairs = callback_pairs(&sid(n), "delivered", None);
    for (k, v) in &mut pairs {
        if k == "AccountSid" {
            *v = account.to_owned();
        }
    }
    let (body, sig) = signed(&format!("{BASE}{TARGET}"), &pairs);
    let mut h = HeaderMap::new();
    h.insert("x-twilio-signature", HeaderValue::from_str(&sig).unwrap());
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    (h, body)
}

/// Posts callback `n` and returns (status, Retry-After, error).
async fn post(hook: &StatusWebhook, n: u32) -> (StatusCode, Option<String>, Option<WebhookError>) {
    post_for(hook, n, ACCOUNT).await
}

async fn post_for(
    hook: &StatusWebhook,
    n: u32,
    account: &str,
) -> (StatusCode, Option<String>, Option<WebhookError>) {
    let (h, body) = request(n, account);
    let r = hook
        .handle(WebhookRequest::new(
            &Method::POST,
            TARGET,
            &h,
            body.as_bytes(),
        ))
        .await;
    let retry = r
        .headers
        .iter()
        .find(|(k, _)| k == header::RETRY_AFTER)
        .map(|(_, v)| v.to_str().unwrap().to_owned());
    (r.status, retry, r.outcome.err())
}

fn hook(
    store: Arc<dyn StatusStore>,
    capacity: usize,
    batch: usize,
    deadline: Duration,
) -> StatusWebhook {
    StatusWebhook::builder(SignatureValidator::new(token()), store)
        .public_url(BASE)
        .queue_capacity(capacity)
        .max_batch(batch)
        .deadline(deadline)
        .build()
        .unwrap()
}

/// Waits, 10 s at most, until `done`; fails saying `what` did not happen.
async fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until the store has seen `n` batches start.
async fn batches_started(store: &GatedStore, n: usize) {
    wait_until("no batch started", || {
        store.batches.lock().unwrap().len() >= n
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_arriving_during_a_commit_form_the_next_batch() {
    let store = GatedStore::new();
    let hook = hook(store.clone(), 64, 16, Duration::from_secs(10));
    // An idle queue writes the first callback at once, alone.
    assert_eq!(post(&hook, 0).await.0, StatusCode::NO_CONTENT);
    store.gate(false);
    let first = tokio::spawn({
        let hook = hook.clone();
        async move { post(&hook, 1).await.0 }
    });
    batches_started(&store, 2).await;
    let rest: Vec<_> = (2..12)
        .map(|n| {
            let hook = hook.clone();
            tokio::spawn(async move { post(&hook, n).await.0 })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    store.gate(true);
    assert_eq!(first.await.unwrap(), StatusCode::NO_CONTENT);
    for r in rest {
        assert_eq!(r.await.unwrap(), StatusCode::NO_CONTENT);
    }
    let batches = store.batches.lock().unwrap().clone();
    assert_eq!(&batches[..2], &[1, 1]);
    assert_eq!(batches[2..].iter().sum::<usize>(), 10);
    assert!(
        batches.len() < 12,
        "the waiting callbacks were batched: {batches:?}"
    );
    for n in 0..12 {
        assert!(
            store.get(&sid(n)).await.unwrap().is_some(),
            "{n} answered 204 and stored"
        );
    }
}

/// Posts callbacks `from..from + 12` and checks that all are answered 204. With `staggered`,
/// the first is posted at once and the others a moment later, after the writer has run (they
/// let the scheduler run the other tasks first; no time passes): as the callers a batch
/// answered come back.
async fn wave(hook: &StatusWebhook, from: u32, staggered: bool) {
    let tasks: Vec<_> = (from..from + 12)
        .map(|n| {
            let hook = hook.clone();
            tokio::spawn(async move {
                if staggered && n > from {
                    for _ in 0..4 {
                        tokio::task::yield_now().await;
                    }
                }
                post(&hook, n).await.0
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::NO_CONTENT);
    }
}

/// A webhook over a store whose batches take `write`, after two waves of 12 callbacks, the
/// second one staggered: the store, the webhook, and the second wave's batch sizes.
async fn two_waves(write: Duration) -> (Arc<GatedStore>, StatusWebhook, Vec<usize>) {
    let store = GatedStore::new();
    let hook = hook(store.clone(), 64, 64, Duration::from_secs(10));
    *store.delay.lock().unwrap() = write;
    wave(&hook, 0, false).await;
    let first_wave = store.batches.lock().unwrap().clone();
    assert!(first_wave.last() >= Some(&8), "{first_wave:?}");
    wave(&hook, 12, true).await;
    let second_wave = store.batches.lock().unwrap()[first_wave.len()..].to_vec();
    assert_eq!(second_wave.iter().sum::<usize>(), 12);
    (store, hook, second_wave)
}

/// Under load with a slow store, the callers a batch answered come back together, a moment
/// apart: the first of them finds the writer idle, and waits (a millisecond at most) for the
/// rest instead of taking a commit alone. A lone callback after a pause is written at once.
/// Tokio's clock is paused, so durations are exact.
#[tokio::test(start_paused = true)]
async fn under_load_the_first_callback_of_a_wave_waits_for_the_rest() {
    let (store, hook, second_wave) = two_waves(Duration::from_millis(50)).await;
    assert!(
        second_wave[0] >= 8,
        "the wave's first batch waited for the rest: {second_wave:?}"
    );
    // After a pause longer than a write, a lone callback waits for nobody.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let started = Instant::now();
    assert_eq!(post(&hook, 24).await.0, StatusCode::NO_CONTENT);
    assert_eq!(
        started.elapsed(),
        Duration::from_millis(50),
        "the write alone"
    );
    assert_eq!(store.batches.lock().unwrap().last(), Some(&1));
    for n in 0..25 {
        assert!(store.get(&sid(n)).await.unwrap().is_some(), "{n} stored");
    }
}

/// A store whose batches take under 2 ms gains nothing from a wait of a timer tick (1 ms):
/// its writer takes the first callback of a wave at once, alone.
#[tokio::test(start_paused = true)]
async fn with_a_fast_store_the_first_callback_of_a_wave_waits_for_nobody() {
    let (_, _, second_wave) = two_waves(Duration::from_millis(1)).await;
    assert_eq!(second_wave[0], 1, "{second_wave:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_store_fills_the_queue_then_503_at_once_and_everything_204_is_stored() {
    let store = GatedStore::new();
    let hook = hook(store.clone(), 8, 4, Duration::from_secs(10));
    store.gate(false);
    // One batch in the store, eight callbacks in the queue.
    let mut waiting = vec![tokio::spawn({
        let hook = hook.clone();
        async move { (0, post(&hook, 0).await.0) }
    })];
    batches_started(&store, 1).await;
    for n in 1..=8 {
        let hook = hook.clone();
        waiting.push(tokio::spawn(async move { (n, post(&hook, n).await.0) }));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Everything beyond is refused at once, however many: memory stays bounded.
    let started = Instant::now();
    for n in 100..1100 {
        let (status, retry, err) = post(&hook, n).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(retry.as_deref(), Some("5"));
        assert!(matches!(err, Some(WebhookError::Overloaded)), "{err:?}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "refused without waiting"
    );
    assert_eq!(
        store.batches.lock().unwrap().len(),
        1,
        "nothing more reached the store"
    );

    store.gate(true);
    let mut stored = 0;
    for w in waiting {
        let (n, status) = w.await.unwrap();
        if status == StatusCode::NO_CONTENT {
            assert!(
                store.get(&sid(n)).await.unwrap().is_some(),
                "{n}: 204 means stored"
            );
            stored += 1;
        }
    }
    assert_eq!(stored, 9, "the queued callbacks were all written");
    assert_eq!(
        store
            .inner
            .list(&ListQuery::new().limit(1000))
            .await
            .unwrap()
            .records
            .len(),
        9
    );
    // And the queue takes callbacks again.
    assert_eq!(post(&hook, 2000).await.0, StatusCode::NO_CONTENT);
}

/// With or without the queue, a caller waits for the store until the deadline at most.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_slower_than_the_deadline_gets_503_within_it() {
    for store in [GatedStore::new(), GatedStore::direct()] {
        let deadline = Duration::from_millis(300);
        let hook = hook(store.clone(), 8, 4, deadline);
        store.gate(false);
        let started = Instant::now();
        let (status, retry, err) = post(&hook, 1).await;
        let took = started.elapsed();
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{store:?}");
        assert_eq!(retry.as_deref(), Some("5"));
        assert!(matches!(err, Some(WebhookError::Deadline(_))), "{err:?}");
        assert!(
            took >= deadline && took < deadline + Duration::from_secs(2),
            "{took:?}"
        );
        store.gate(true);
        // The store comes back: callbacks are answered again.
        assert_eq!(post(&hook, 2).await.0, StatusCode::NO_CONTENT);
        if !store.group_commit() {
            // The write went with its caller: answered 503, not stored (Twilio retries it).
            assert!(store.get(&sid(1)).await.unwrap().is_none());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_batch_fails_exactly_its_callers() {
    let store = GatedStore::new();
    let hook = hook(store.clone(), 16, 8, Duration::from_secs(10));
    *store.poison.lock().unwrap() = Some(sid(2));
    store.gate(false);
    let first = tokio::spawn({
        let hook = hook.clone();
        async move { post(&hook, 1).await.0 }
    });
    batches_started(&store, 1).await;
    // 2 and 3 queue up behind 1 and go in one batch, which fails because of 2.
    let second: Vec<_> = [2, 3]
        .map(|n| {
            let hook = hook.clone();
            tokio::spawn(async move { post(&hook, n).await.0 })
        })
        .into_iter()
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    store.gate(true);
    assert_eq!(first.await.unwrap(), StatusCode::NO_CONTENT);
    for s in second {
        assert_eq!(s.await.unwrap(), StatusCode::SERVICE_UNAVAILABLE);
    }
    assert_eq!(
        post(&hook, 4).await.0,
        StatusCode::NO_CONTENT,
        "the next batch is fine"
    );
    assert!(
        store.get(&sid(3)).await.unwrap().is_none(),
        "answered 503, not stored"
    );
    assert!(store.get(&sid(4)).await.unwrap().is_some());
}

/// A batch the store rejects for a value it cannot hold is written again one event at a time:
/// the callback with the value gets 500, the others of its batch are stored (204).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_batch_is_written_one_by_one_and_fails_only_the_rejected_callback() {
    let store = GatedStore::new();
    let hook = hook(store.clone(), 16, 8, Duration::from_secs(10));
    *store.poison.lock().unwrap() = Some(sid(2));
    store.rejects.store(true, Ordering::Relaxed);
    store.gate(false);
    let first = tokio::spawn({
        let hook = hook.clone();
        async move { post(&hook, 1).await.0 }
    });
    batches_started(&store, 1).await;
    // 2, 3 and 4 queue up behind 1 and go in one batch, which the store rejects because of 2.
    let second: Vec<_> = [2, 3, 4]
        .map(|n| {
            let hook = hook.clone();
            tokio::spawn(async move { post(&hook, n).await })
        })
        .into_iter()
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    store.gate(true);
    assert_eq!(first.await.unwrap(), StatusCode::NO_CONTENT);
    let mut answers = Vec::new();
    for s in second {
        answers.push(s.await.unwrap());
    }
    assert_eq!(
        answers[0].0,
        StatusCode::INTERNAL_SERVER_ERROR,
        "the rejected one"
    );
    assert!(
        matches!(
            &answers[0].2,
            Some(WebhookError::Store(StoreError::Rejected(_)))
        ),
        "{:?}",
        answers[0].2
    );
    assert_eq!(
        (answers[1].0, answers[2].0),
        (StatusCode::NO_CONTENT, StatusCode::NO_CONTENT)
    );
    assert_eq!(*store.batches.lock().unwrap(), [1, 3, 1, 1, 1]);
    assert!(store.get(&sid(2)).await.unwrap().is_none());
    for n in [1, 3, 4] {
        assert!(
            store.get(&sid(n)).await.unwrap().is_some(),
            "{n} answered 204"
        );
    }
}

#[tokio::test]
async fn callbacks_of_other_accounts_are_refused_when_an_account_is_configured() {
    let other = format!("AC{:032x}", 99);
    let store = Arc::new(MemoryStore::new());
    let strict = StatusWebhook::builder(SignatureValidator::new(token()), store.clone())
        .public_url(BASE)
        .account_sid(AccountSid::new(ACCOUNT).unwrap())
        .build()
        .unwrap();
    assert_eq!(
        post_for(&strict, 1, ACCOUNT).await.0,
        StatusCode::NO_CONTENT
    );
    let (status, _, err) = post_for(&strict, 2, &other).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(matches!(err, Some(WebhookError::Account)), "{err:?}");
    assert!(store.get(&sid(2)).await.unwrap().is_none(), "untouched");

    // Off by default without an account, and when turned off.
    let open = StatusWebhook::builder(SignatureValidator::new(token()), store.clone())
        .public_url(BASE)
        .build()
        .unwrap();
    assert_eq!(post_for(&open, 3, &other).await.0, StatusCode::NO_CONTENT);
    let off = StatusWebhook::builder(SignatureValidator::new(token()), store.clone())
        .public_url(BASE)
        .account_sid(AccountSid::new(ACCOUNT).unwrap())
        .check_account_sid(false)
        .build()
        .unwrap();
    assert_eq!(post_for(&off, 4, &other).await.0, StatusCode::NO_CONTENT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_panics_fails_its_callers_and_the_webhook_goes_on() {
    for store in [GatedStore::new(), GatedStore::direct()] {
        let hook = hook(store.clone(), 16, 8, Duration::from_secs(10));
        *store.poison.lock().unwrap() = Some(sid(1));
        store.panics.store(true, Ordering::Relaxed);
        let (status, retry, err) = post(&hook, 1).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{store:?}");
        assert_eq!(retry.as_deref(), Some("5"));
        assert!(
            matches!(&err, Some(WebhookError::Store(e)) if format!("{e:?}").contains("panicked")),
            "{err:?}"
        );
        assert_eq!(post(&hook, 2).await.0, StatusCode::NO_CONTENT);
        assert!(store.get(&sid(2)).await.unwrap().is_some());
    }
}

/// Without group commit there is no queue to fill: with the store stalled, callbacks far past
/// the queue's capacity all wait for it, each writing its own event (no batch at all).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_does_not_group_commits_is_written_by_each_caller() {
    let store = GatedStore::direct();
    let hook = hook(store.clone(), 1, 1, Duration::from_secs(10));
    store.gate(false);
    let posts: Vec<_> = (1..=6)
        .map(|n| {
            let hook = hook.clone();
            tokio::spawn(async move { post(&hook, n).await })
        })
        .collect();
    let reached = || store.singles.load(Ordering::Relaxed) >= 6;
    wait_until("not every caller reached the store", reached).await;
    store.gate(true);
    for p in posts {
        let (status, _, err) = p.await.unwrap();
        assert_eq!(status, StatusCode::NO_CONTENT, "{err:?}");
    }
    assert_eq!(store.singles.load(Ordering::Relaxed), 6);
    assert!(store.batches.lock().unwrap().is_empty(), "no batch written");
    for n in 1..=6 {
        assert!(store.get(&sid(n)).await.unwrap().is_some(), "{n}");
    }
}

/// The memory store is the one of this crate that does not group commits; a store shared
/// through an `Arc` says what the store inside says.
#[test]
fn only_the_memory_store_skips_group_commit() {
    let memory: Arc<dyn StatusStore> = Arc::new(MemoryStore::new());
    assert!(!memory.group_commit());
    assert!(!Arc::new(MemoryStore::new()).group_commit());
    assert!(GatedStore::new().group_commit(), "the default");
}
