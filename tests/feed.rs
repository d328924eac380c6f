//! The durable change feed: every real change once per position, in order, to named consumers
//! whose cursors live in the store; failing changes retried, parked and replayable; restarts;
//! shutdown after the change in progress; one consumer of a name at a time (its lease), across
//! store instances; and on PostgreSQL, concurrent writers on several instances, the
//! out-of-order-commit case, a consumer on one instance woken by a change made through
//! another, and a consumer whose lease was taken.

mod common;

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use twilio_delivery::feed::{
    Consumer, ConsumerLease, DeadLetter, FeedEntry, FeedStore, HandlerResult, StartFrom,
};
use twilio_delivery::model::{EventSource, SentMessage, StatusEvent};
use twilio_delivery::store::{ListQuery, Page, StatusStore};
use twilio_delivery::{
    Applied, HistoryEntry, MessageRecord, MessageSid, MessageStatus, StoreError,
};

fn sid(n: u32) -> MessageSid {
    MessageSid::new(format!("SM{n:032x}")).unwrap()
}

fn ev(n: u32, status: MessageStatus) -> StatusEvent {
    StatusEvent::new(sid(n), status, EventSource::Callback)
}

/// A handler that records what it saw.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<FeedEntry>>>);

impl Seen {
    fn positions(&self) -> Vec<u64> {
        self.0.lock().unwrap().iter().map(|e| e.position).collect()
    }

    fn handler(
        &self,
    ) -> impl Fn(FeedEntry) -> std::future::Ready<HandlerResult> + Send + Sync + use<> {
        let seen = self.clone();
        move |e| {
            seen.0.lock().unwrap().push(e);
            std::future::ready(Ok(()))
        }
    }
}

async fn changes_are_numbered_and_consumed_in_order(store: Arc<dyn StatusStore>) {
    // Three changes, one duplicate and one stale event (no change), one record_sent change.
    store.apply(&ev(1, MessageStatus::Sent)).await.unwrap();
    store
        .apply_batch(&[
            ev(1, MessageStatus::Delivered),
            ev(1, MessageStatus::Delivered),
            ev(1, MessageStatus::Sent),
            ev(2, MessageStatus::Failed),
        ])
        .await
        .unwrap();
    store
        .record_sent(&SentMessage::new(
            sid(3),
            "+15550000003",
            MessageStatus::Queued,
        ))
        .await
        .unwrap();
    let feed = store.feed().unwrap();
    assert_eq!(feed.head().await.unwrap(), 4);
    let all = feed.changes_after(0, 100).await.unwrap();
    let got: Vec<_> = all
        .iter()
        .map(|e| {
            (
                e.position,
                e.change.sid.clone(),
                e.change.previous.clone(),
                e.change.current.clone(),
                e.change.source,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (1, sid(1), None, MessageStatus::Sent, EventSource::Callback),
            (
                2,
                sid(1),
                Some(MessageStatus::Sent),
                MessageStatus::Delivered,
                EventSource::Callback
            ),
            (
                3,
                sid(2),
                None,
                MessageStatus::Failed,
                EventSource::Callback
            ),
            (4, sid(3), None, MessageStatus::Queued, EventSource::Send),
        ]
    );
    assert_eq!(feed.changes_after(2, 1).await.unwrap()[0].position, 3);

    let seen = Seen::default();
    let consumer = Consumer::builder(store.clone(), "orders")
        .unwrap()
        .page_size(3)
        .build();
    assert_eq!(consumer.run_once(&seen.handler()).await.unwrap(), 4);
    assert_eq!(seen.positions(), vec![1, 2, 3, 4]);
    assert_eq!(feed.cursor("orders").await.unwrap(), Some(4));
    assert_eq!(
        consumer.run_once(&seen.handler()).await.unwrap(),
        0,
        "nothing new"
    );

    // A restart (a new consumer of the same name) goes on after the stored cursor.
    store.apply(&ev(2, MessageStatus::Delivered)).await.unwrap();
    let again = Consumer::builder(store.clone(), "orders").unwrap().build();
    assert_eq!(again.run_once(&seen.handler()).await.unwrap(), 1);
    assert_eq!(seen.positions(), vec![1, 2, 3, 4, 5]);

    // Another name has its own cursor; `Latest` starts at the head.
    let late = Seen::default();
    let latest = Consumer::builder(store.clone(), "audit")
        .unwrap()
        .start_from(StartFrom::Latest)
        .build();
    assert_eq!(latest.run_once(&late.handler()).await.unwrap(), 0);
    store.apply(&ev(4, MessageStatus::Sent)).await.unwrap();
    assert_eq!(latest.run_once(&late.handler()).await.unwrap(), 1);
    assert_eq!(late.positions(), vec![6]);
}

async fn failing_changes_are_parked_and_replayable(store: Arc<dyn StatusStore>) {
    for n in 1..=4 {
        store.apply(&ev(n, MessageStatus::Sent)).await.unwrap();
    }
    let tries = Arc::new(Mutex::new(Vec::new()));
    let t = tries.clone();
    let poison = sid(2);
    let handler = move |e: FeedEntry| {
        t.lock().unwrap().push(e.position);
        let fail = e.change.sid == poison;
        async move {
            if fail {
                Err("downstream refused".into())
            } else {
                Ok(())
            }
        }
    };
    let consumer = Consumer::builder(store.clone(), "notify")
        .unwrap()
        .attempts(3)
        .backoff(Duration::from_millis(1), Duration::from_millis(4))
        .build();
    assert_eq!(consumer.run_once(&handler).await.unwrap(), 4);
    assert_eq!(
        *tries.lock().unwrap(),
        vec![1, 2, 2, 2, 3, 4],
        "retried, then moved on"
    );
    let dead = consumer.dead_letters().await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].entry.position, 2);
    assert_eq!(dead[0].entry.change.sid, sid(2));
    assert_eq!(dead[0].error, "downstream refused");
    assert_eq!(dead[0].attempts, 3);
    assert_eq!(
        store.feed().unwrap().cursor("notify").await.unwrap(),
        Some(4)
    );

    // One letter read by its key: the same as in the list; none where nothing was parked.
    let feed = store.feed().unwrap();
    let one = feed.dead_letter("notify", 2).await.unwrap().unwrap();
    assert_eq!(
        (
            one.entry.position,
            one.entry.change.sid.clone(),
            one.attempts
        ),
        (2, sid(2), 3)
    );
    assert_eq!(one.error, dead[0].error);
    assert!(feed.dead_letter("notify", 3).await.unwrap().is_none());
    assert!(feed.dead_letter("someone-else", 2).await.unwrap().is_none());

    // Replaying with the same failing handler keeps the letter; a fixed one removes it.
    assert!(consumer.replay(2, &handler).await.is_err());
    assert_eq!(consumer.dead_letters().await.unwrap().len(), 1);
    let fixed = Seen::default();
    assert!(consumer.replay(2, &fixed.handler()).await.unwrap());
    assert_eq!(fixed.positions(), vec![2]);
    assert!(consumer.dead_letters().await.unwrap().is_empty());
    assert!(!consumer.replay(2, &fixed.handler()).await.unwrap(), "gone");
}

async fn a_spawned_consumer_is_woken(store: Arc<dyn StatusStore>) {
    let seen = Seen::default();
    // A poll interval far beyond the test: only a wake-up can deliver in time.
    let handle = Consumer::builder(store.clone(), "live")
        .unwrap()
        .poll_interval(Duration::from_secs(3600))
        .spawn(seen.handler());
    tokio::time::sleep(Duration::from_millis(50)).await;
    for n in 1..=3 {
        store.apply(&ev(n, MessageStatus::Sent)).await.unwrap();
    }
    wait_until(|| seen.positions().len() == 3).await;
    assert_eq!(seen.positions(), vec![1, 2, 3]);
    handle.shutdown().await;
}

/// A handler that takes `pause` over each change, then records it as `who`'s in `log`, and
/// counts in `overlaps` the changes it started while another handler of `inside` was running.
fn slow_handler(
    pause: Duration,
    who: usize,
    log: Arc<Mutex<Vec<(usize, u64)>>>,
    inside: Arc<AtomicUsize>,
    overlaps: Arc<AtomicUsize>,
) -> impl Fn(FeedEntry) -> std::pin::Pin<Box<dyn Future<Output = HandlerResult> + Send>>
+ Send
+ Sync
+ 'static {
    move |e| {
        let (log, inside, overlaps) = (log.clone(), inside.clone(), overlaps.clone());
        Box::pin(async move {
            if inside.fetch_add(1, Ordering::SeqCst) > 0 {
                overlaps.fetch_add(1, Ordering::SeqCst);
            }
            tokio::time::sleep(pause).await;
            log.lock().unwrap().push((who, e.position));
            inside.fetch_sub(1, Ordering::SeqCst);
            Ok(())
        })
    }
}

/// A backlog of 300 changes and a handler taking 10 ms over each: shutdown returns after the
/// change in progress, not after the backlog, with the cursor at the last change handled; a
/// new consumer of the name resumes right after it, losing and repeating nothing.
async fn shutdown_stops_after_the_change_in_progress(store: Arc<dyn StatusStore>) {
    const BACKLOG: u64 = 300;
    let events: Vec<_> = (1..=BACKLOG as u32)
        .map(|n| ev(n, MessageStatus::Sent))
        .collect();
    store.apply_batch(&events).await.unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let handler = slow_handler(
        Duration::from_millis(10),
        0,
        log.clone(),
        Arc::default(),
        Arc::default(),
    );
    let handle = Consumer::builder(store.clone(), "slow")
        .unwrap()
        .spawn(handler);
    wait_until(|| log.lock().unwrap().len() >= 5).await;
    handle.shutdown().await;

    let handled: Vec<u64> = log.lock().unwrap().iter().map(|(_, p)| *p).collect();
    let last = handled.len() as u64;
    assert!(
        last < BACKLOG / 3,
        "stopped after the change in progress, not the backlog: {last} handled"
    );
    assert_eq!(handled, (1..=last).collect::<Vec<_>>());
    let feed = store.feed().unwrap();
    assert_eq!(
        feed.cursor("slow").await.unwrap(),
        Some(last),
        "the cursor is at the last change handled"
    );

    let rest = Seen::default();
    let again = Consumer::builder(store.clone(), "slow").unwrap().build();
    assert_eq!(
        again.run_once(&rest.handler()).await.unwrap() as u64,
        BACKLOG - last
    );
    assert_eq!(rest.positions(), (last + 1..=BACKLOG).collect::<Vec<_>>());
}

/// A handler that fails, with an hour's backoff before its next try: shutdown does not wait
/// out the backoff, and the change is neither parked nor passed.
async fn shutdown_interrupts_a_retry_backoff(store: Arc<dyn StatusStore>) {
    store.apply(&ev(1, MessageStatus::Sent)).await.unwrap();
    let tries = Arc::new(AtomicUsize::new(0));
    let counted = tries.clone();
    let hour = Duration::from_secs(3600);
    let handle = Consumer::builder(store.clone(), "failing")
        .unwrap()
        .backoff(hour, hour)
        .spawn(move |_| {
            counted.fetch_add(1, Ordering::SeqCst);
            std::future::ready(Err("down".into()))
        });
    wait_until(|| tries.load(Ordering::SeqCst) == 1).await;
    tokio::time::timeout(Duration::from_secs(10), handle.shutdown())
        .await
        .expect("shutdown does not wait out the backoff");
    assert_eq!(tries.load(Ordering::SeqCst), 1);
    let feed = store.feed().unwrap();
    assert_eq!(feed.cursor("failing").await.unwrap(), Some(0), "not passed");
    assert!(feed.dead_letters("failing", 10).await.unwrap().is_empty());
}

/// Two consumers of one name, on `a` and on `b` (two instances of one store, or one store
/// twice): never two handlers at once, each change handled once, in order; when the one
/// handling stops, the other takes over and finishes.
async fn one_consumer_of_a_name_runs_at_a_time(a: Arc<dyn StatusStore>, b: Arc<dyn StatusStore>) {
    const BACKLOG: u64 = 120;
    let events: Vec<_> = (1..=BACKLOG as u32)
        .map(|n| ev(n, MessageStatus::Sent))
        .collect();
    a.apply_batch(&events).await.unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let (inside, overlaps) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let spawn = |store: &Arc<dyn StatusStore>, who: usize| {
        Consumer::builder(store.clone(), "shared")
            .unwrap()
            .poll_interval(Duration::from_millis(20))
            .spawn(slow_handler(
                Duration::from_millis(5),
                who,
                log.clone(),
                inside.clone(),
                overlaps.clone(),
            ))
    };
    let mut handles = [Some(spawn(&a, 0)), Some(spawn(&b, 1))];
    wait_until(|| log.lock().unwrap().len() >= 10).await;
    let first = log.lock().unwrap()[0].0;
    handles[first].take().unwrap().shutdown().await;
    wait_until(|| log.lock().unwrap().len() as u64 >= BACKLOG).await;
    handles[1 - first].take().unwrap().shutdown().await;

    assert_eq!(
        overlaps.load(Ordering::SeqCst),
        0,
        "never two handlers at once"
    );
    let log = log.lock().unwrap().clone();
    let positions: Vec<u64> = log.iter().map(|(_, p)| *p).collect();
    assert_eq!(
        positions,
        (1..=BACKLOG).collect::<Vec<_>>(),
        "once each, in order"
    );
    let handover = log.iter().position(|(who, _)| *who != first).unwrap();
    assert!(handover < 60, "the second took over: {handover}");
    assert!(
        log[handover..].iter().all(|(who, _)| *who != first),
        "the first handled nothing after it stopped"
    );
}

#[tokio::test]
async fn one_consumer_of_a_name_runs_at_a_time_on_a_memory_store() {
    let store: Arc<dyn StatusStore> = Arc::new(twilio_delivery::MemoryStore::new());
    one_consumer_of_a_name_runs_at_a_time(store.clone(), store).await;
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn one_consumer_of_a_name_runs_at_a_time_on_two_sqlite_stores_of_one_file() {
    use twilio_delivery::store::SqliteStore;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("feed.db");
    let a = SqliteStore::connect(path.to_str().unwrap()).await.unwrap();
    a.migrate().await.unwrap();
    let b = SqliteStore::connect(path.to_str().unwrap()).await.unwrap();
    one_consumer_of_a_name_runs_at_a_time(Arc::new(a), Arc::new(b)).await;
}

/// A memory store that counts the consumer-lease attempts made through it.
#[derive(Debug, Default)]
struct CountsLeaseTries {
    inner: twilio_delivery::MemoryStore,
    tries: AtomicUsize,
}

#[twilio_delivery::async_trait]
impl StatusStore for CountsLeaseTries {
    async fn record_sent(&self, sent: &SentMessage) -> Result<Applied, StoreError> {
        self.inner.record_sent(sent).await
    }
    async fn apply(&self, event: &StatusEvent) -> Result<Applied, StoreError> {
        self.inner.apply(event).await
    }
    async fn get(&self, sid: &MessageSid) -> Result<Option<MessageRecord>, StoreError> {
        self.inner.get(sid).await
    }
    async fn history(&self, sid: &MessageSid) -> Result<Vec<HistoryEntry>, StoreError> {
        self.inner.history(sid).await
    }
    async fn pending_since(
        &self,
        created_from: time::OffsetDateTime,
        older_than: time::OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<MessageRecord>, StoreError> {
        self.inner
            .pending_since(created_from, older_than, limit)
            .await
    }
    async fn list(&self, query: &ListQuery) -> Result<Page, StoreError> {
        self.inner.list(query).await
    }
    fn feed(&self) -> Option<&dyn FeedStore> {
        Some(self)
    }
}

#[twilio_delivery::async_trait]
impl FeedStore for CountsLeaseTries {
    async fn changes_after(&self, after: u64, limit: u32) -> Result<Vec<FeedEntry>, StoreError> {
        self.inner.changes_after(after, limit).await
    }
    async fn head(&self) -> Result<u64, StoreError> {
        FeedStore::head(&self.inner).await
    }
    async fn cursor(&self, consumer: &str) -> Result<Option<u64>, StoreError> {
        self.inner.cursor(consumer).await
    }
    async fn advance(&self, consumer: &str, position: u64) -> Result<(), StoreError> {
        self.inner.advance(consumer, position).await
    }
    async fn park(&self, letter: &DeadLetter) -> Result<(), StoreError> {
        self.inner.park(letter).await
    }
    async fn dead_letters(
        &self,
        consumer: &str,
        limit: u32,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        self.inner.dead_letters(consumer, limit).await
    }
    async fn remove_dead_letter(&self, consumer: &str, position: u64) -> Result<bool, StoreError> {
        self.inner.remove_dead_letter(consumer, position).await
    }
    async fn wait_for_change(&self, after: u64, timeout: Duration) {
        self.inner.wait_for_change(after, timeout).await;
    }
    async fn lease_consumer(&self, consumer: &str) -> Result<Option<ConsumerLease>, StoreError> {
        self.tries.fetch_add(1, Ordering::SeqCst);
        self.inner.lease_consumer(consumer).await
    }
}

/// A consumer waiting for its name's lease tries it once a poll interval, not at every change
/// written meanwhile: on PostgreSQL each try is two queries, and changes come with every batch.
#[tokio::test]
async fn a_waiting_consumer_tries_the_lease_once_a_poll_interval() {
    let store = Arc::new(CountsLeaseTries::default());
    let seen = Seen::default();
    let holder = Consumer::builder(store.clone(), "shared")
        .unwrap()
        .poll_interval(Duration::from_millis(20))
        .spawn(seen.handler());
    store.apply(&ev(1, MessageStatus::Sent)).await.unwrap();
    wait_until(|| seen.positions().len() == 1).await;
    let tries_by_holder = store.tries.load(Ordering::SeqCst);

    let waiter_seen = Seen::default();
    let waiter = Consumer::builder(store.clone(), "shared")
        .unwrap()
        .poll_interval(Duration::from_millis(400))
        .spawn(waiter_seen.handler());
    let started = std::time::Instant::now();
    for n in 2..=41 {
        store.apply(&ev(n, MessageStatus::Sent)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    wait_until(|| seen.positions().len() == 41).await;
    let tries = store.tries.load(Ordering::SeqCst) - tries_by_holder;
    let polls = (started.elapsed().as_millis() / 400) as usize;
    assert!(
        (1..=polls + 2).contains(&tries),
        "40 changes in {:?}, a 400 ms poll: {tries} tries of the lease",
        started.elapsed()
    );

    holder.shutdown().await;
    store.apply(&ev(42, MessageStatus::Sent)).await.unwrap();
    wait_until(|| waiter_seen.positions().contains(&42)).await;
    waiter.shutdown().await;
    assert!(waiter_seen.positions().iter().all(|p| *p >= 2));
}

/// Waits up to 10 s for `done`.
async fn wait_until(done: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "not within 10 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

macro_rules! every_store {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(std::sync::Arc::new(twilio_delivery::MemoryStore::new())).await;
                }
            )*
        }

        #[cfg(feature = "sqlite")]
        mod sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    let dir = tempfile::tempdir().unwrap();
                    let path = dir.path().join("feed.db");
                    let store = twilio_delivery::store::SqliteStore::connect(path.to_str().unwrap())
                        .await
                        .unwrap();
                    store.migrate().await.unwrap();
                    super::$case(std::sync::Arc::new(store)).await;
                }
            )*
        }

        #[cfg(feature = "postgres")]
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(pool) = super::common::pg::pool().await else { return };
                    let prefix = super::common::pg::random_prefix();
                    let store = twilio_delivery::store::PostgresStore::new(pool.clone())
                        .with_prefix(prefix.clone());
                    store.migrate().await.unwrap();
                    super::$case(std::sync::Arc::new(store)).await;
                    super::common::pg::drop_tables(&pool, &prefix).await;
                }
            )*
        }
    };
}

every_store!(
    changes_are_numbered_and_consumed_in_order,
    failing_changes_are_parked_and_replayable,
    a_spawned_consumer_is_woken,
    shutdown_stops_after_the_change_in_progress,
    shutdown_interrupts_a_retry_backoff,
);

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn sqlite_cursor_survives_reopening_the_file() {
    use twilio_delivery::store::SqliteStore;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("feed.db");
    let open = || async {
        let s = SqliteStore::connect(path.to_str().unwrap()).await.unwrap();
        s.migrate().await.unwrap();
        Arc::new(s) as Arc<dyn StatusStore>
    };
    let store = open().await;
    for n in 1..=3 {
        store.apply(&ev(n, MessageStatus::Sent)).await.unwrap();
    }
    let seen = Seen::default();
    Consumer::builder(store.clone(), "c")
        .unwrap()
        .build()
        .run_once(&seen.handler())
        .await
        .unwrap();
    store.apply(&ev(9, MessageStatus::Sent)).await.unwrap();
    drop(store);
    let store = open().await;
    Consumer::builder(store, "c")
        .unwrap()
        .build()
        .run_once(&seen.handler())
        .await
        .unwrap();
    assert_eq!(seen.positions(), vec![1, 2, 3, 4]);
}

#[cfg(feature = "postgres")]
mod postgres_instances {
    use super::*;
    use common::pg::{drop_tables, pool, random_prefix};
    use twilio_delivery::store::sqlx::{self, AssertSqlSafe};
    use twilio_delivery::store::{PostgresOptions, PostgresStore, TablePrefix};

    /// Two store instances (two pools, like two app instances) on one prefix.
    async fn two(prefix: &TablePrefix) -> Option<(PostgresStore, PostgresStore)> {
        let a = PostgresStore::new(pool().await?).with_prefix(prefix.clone());
        let b = PostgresStore::new(pool().await?).with_prefix(prefix.clone());
        a.migrate().await.unwrap();
        Some((a, b))
    }

    /// Two instances, position 1 committed through the first, and a writer's transaction
    /// holding position 2 open (on a connection of the first's pool), by hand as the store
    /// takes a position: the feed writers' shared lock (keyed as documented in the store: the
    /// class, then the prefix's FNV-1a hash), then the next position, for `sid(7)`.
    async fn with_position_2_open(
        prefix: &TablePrefix,
    ) -> Option<(
        PostgresStore,
        PostgresStore,
        sqlx::Transaction<'static, sqlx::Postgres>,
    )> {
        let (a, b) = two(prefix).await?;
        a.apply(&ev(1, MessageStatus::Sent)).await.unwrap();
        let p = prefix.as_str();
        let key = p.bytes().fold(0x811c_9dc5_u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        });
        let mut tx = a.pool().begin().await.unwrap();
        sqlx::query("SELECT pg_advisory_xact_lock_shared($1, $2)")
            .bind(0x7477_6402_i32)
            .bind(i32::from_ne_bytes(key.to_ne_bytes()))
            .execute(&mut *tx)
            .await
            .unwrap();
        let position: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
            "INSERT INTO {p}feed (position, sid, previous, current, error_code, source, at) \
             VALUES (nextval('{p}feed_position'), '{}', NULL, 'sent', NULL, 'callback', now()) \
             RETURNING position",
            sid(7)
        )))
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        assert_eq!(position, 2);
        Some((a, b, tx))
    }

    /// The positions `changes_after(after)` returns.
    async fn read(store: &PostgresStore, after: u64) -> Vec<u64> {
        let feed = store.feed().unwrap();
        let page = feed.changes_after(after, 100).await.unwrap();
        page.iter().map(|e| e.position).collect()
    }

    /// A writer's transaction holds position 2 open; a later writer on another instance
    /// commits position 3 meanwhile (writers do not wait for each other). A reader returns 1,
    /// then waits for the open transaction before it returns anything after 1: it never moves
    /// past a position that may still commit.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_later_commit_never_overtakes_an_open_one() {
        let prefix = random_prefix();
        let Some((a, b, tx)) = with_position_2_open(&prefix).await else {
            return;
        };

        b.apply(&ev(2, MessageStatus::Sent)).await.unwrap();
        assert_eq!(b.feed().unwrap().head().await.unwrap(), 3, "3 committed");
        assert_eq!(read(&a, 0).await, vec![1], "nothing past the open position");
        let a2 = a.clone();
        let blocked = tokio::spawn(async move { read(&a2, 1).await });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!blocked.is_finished(), "the read waits for the open writer");

        tx.commit().await.unwrap();
        assert_eq!(blocked.await.unwrap(), vec![2, 3]);
        let all = a.feed().unwrap().changes_after(0, 100).await.unwrap();
        let got: Vec<(u64, MessageSid)> = all
            .iter()
            .map(|e| (e.position, e.change.sid.clone()))
            .collect();
        assert_eq!(got, vec![(1, sid(1)), (2, sid(7)), (3, sid(2))]);
        drop_tables(&a.pool().clone(), &prefix).await;
    }

    /// A position whose transaction rolled back is missing for good: once that transaction
    /// has ended, a reader moves past it, and consumers get every other change.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_rolled_back_position_is_skipped() {
        let prefix = random_prefix();
        let Some((a, b, tx)) = with_position_2_open(&prefix).await else {
            return;
        };
        b.apply(&ev(2, MessageStatus::Sent)).await.unwrap();
        tx.rollback().await.unwrap();
        b.apply(&ev(3, MessageStatus::Sent)).await.unwrap();

        assert_eq!(read(&a, 0).await, vec![1]);
        assert_eq!(read(&a, 1).await, vec![3, 4], "past the rolled-back 2");
        let seen = Seen::default();
        let store: Arc<dyn StatusStore> = Arc::new(a.clone());
        let consumer = Consumer::builder(store, "c")
            .unwrap()
            .poll_interval(Duration::from_millis(20))
            .spawn(seen.handler());
        wait_until(|| seen.positions().len() == 3).await;
        consumer.shutdown().await;
        assert_eq!(seen.positions(), vec![1, 3, 4]);
        drop_tables(&a.pool().clone(), &prefix).await;
    }

    /// Writers on two instances, a consumer reading and restarting meanwhile: every position
    /// from 1 to the head is handled, in order, none twice except those after the cursor
    /// stored at the restart. The writers write a second round after the restart, so the
    /// restarted consumer has changes to handle however far the first one got.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writers_on_two_instances_lose_nothing() {
        let prefix = random_prefix();
        let Some((a, b)) = two(&prefix).await else {
            return;
        };
        let stores = [Arc::new(a.clone()), Arc::new(b.clone())];
        // Round `r` of 8 writers, 4 on each instance, each on messages of its own.
        let round = |r: u32| -> Vec<_> {
            (0..8u32)
                .map(|w| {
                    let store = stores[w as usize % 2].clone();
                    tokio::spawn(async move {
                        for i in 0..40u32 {
                            let n = w * 1000 + r * 100 + i;
                            let batch = [
                                ev(n, MessageStatus::Sent),
                                ev(n, MessageStatus::Delivered),
                                ev(n + 500, MessageStatus::Queued),
                            ];
                            store.apply_batch(&batch).await.unwrap();
                        }
                    })
                })
                .collect()
        };
        let writers = round(0);

        let store: Arc<dyn StatusStore> = Arc::new(a.clone());
        let first = Seen::default();
        let consumer = Consumer::builder(store.clone(), "c")
            .unwrap()
            .page_size(7)
            .poll_interval(Duration::from_millis(20))
            .spawn(first.handler());
        tokio::time::sleep(Duration::from_millis(150)).await;
        consumer.shutdown().await;
        let acked = a.feed().unwrap().cursor("c").await.unwrap().unwrap_or(0);

        let second = Seen::default();
        let consumer = Consumer::builder(store.clone(), "c")
            .unwrap()
            .poll_interval(Duration::from_millis(20))
            .spawn(second.handler());
        for w in writers.into_iter().chain(round(1)) {
            w.await.unwrap();
        }
        let head = a.feed().unwrap().head().await.unwrap();
        assert_eq!(head, 2 * 8 * 40 * 3, "every change has a position");
        assert!(acked <= head / 2, "the second round came after the restart");
        wait_until(|| second.positions().last() == Some(&head)).await;
        consumer.shutdown().await;

        let after: Vec<u64> = second.positions();
        assert_eq!(
            after,
            (acked + 1..=head).collect::<Vec<_>>(),
            "resumed after the ack, in order, once"
        );
        let before = first.positions();
        assert_eq!(
            before,
            (1..=before.len() as u64).collect::<Vec<_>>(),
            "in order, once"
        );
        let all: std::collections::BTreeSet<u64> = before.into_iter().chain(after).collect();
        assert_eq!(all, (1..=head).collect(), "nothing lost");
        drop_tables(&a.pool().clone(), &prefix).await;
    }

    /// Two app instances on one database: a consumer on A sees the change a callback made
    /// through B's webhook, woken by NOTIFY (its poll interval is an hour).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_consumer_on_one_instance_sees_a_callback_on_another() {
        use http::{HeaderMap, HeaderValue, Method, StatusCode};
        use twilio_delivery::SignatureValidator;
        use twilio_delivery::webhook::{StatusWebhook, WebhookRequest};

        let prefix = random_prefix();
        let Some((a, b)) = two(&prefix).await else {
            return;
        };
        let seen = Seen::default();
        let consumer = Consumer::builder(Arc::new(a.clone()), "orders")
            .unwrap()
            .poll_interval(Duration::from_secs(3600))
            .spawn(seen.handler());
        tokio::time::sleep(Duration::from_millis(200)).await;

        let hook_b = StatusWebhook::builder(
            SignatureValidator::new(common::token()),
            Arc::new(b.clone()),
        )
        .public_url("https://b.example.com")
        .build()
        .unwrap();
        let pairs = common::callback_pairs(&sid(5), "delivered", None);
        let (body, sig) = common::signed("https://b.example.com/cb", &pairs);
        let mut h = HeaderMap::new();
        h.insert("x-twilio-signature", HeaderValue::from_str(&sig).unwrap());
        h.insert(
            "content-type",
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        let r = hook_b
            .handle(WebhookRequest::new(
                &Method::POST,
                "/cb",
                &h,
                body.as_bytes(),
            ))
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);

        wait_until(|| seen.positions() == vec![1]).await;
        let change = seen.0.lock().unwrap()[0].change.clone();
        assert_eq!(
            (change.sid, change.current),
            (sid(5), MessageStatus::Delivered)
        );
        consumer.shutdown().await;
        drop_tables(&a.pool().clone(), &prefix).await;
    }

    /// Two stores on one database (two pools, like two app instances), each running a
    /// consumer of the same name.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_consumer_of_a_name_runs_at_a_time_on_two_instances() {
        let prefix = random_prefix();
        let Some((a, b)) = two(&prefix).await else {
            return;
        };
        one_consumer_of_a_name_runs_at_a_time(Arc::new(a.clone()), Arc::new(b)).await;
        drop_tables(&a.pool().clone(), &prefix).await;
    }

    /// Another holder takes the consumer's lease (as after an expiry): at its next renewal
    /// (a third of the 1 s lease) the consumer finds it lost, stops after the change in
    /// progress with its cursor at the last change handled, and handles nothing while the
    /// other holds it; once the lease is free it takes it again and resumes, losing and
    /// repeating nothing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_consumer_whose_lease_is_taken_stops() {
        const BACKLOG: u64 = 400;
        let prefix = random_prefix();
        let Some(pool) = pool().await else { return };
        let store = PostgresStore::new(pool.clone())
            .with_prefix(prefix.clone())
            .with_options(PostgresOptions::new().lease_ttl(Duration::from_secs(1)));
        store.migrate().await.unwrap();
        let events: Vec<_> = (1..=BACKLOG as u32)
            .map(|n| ev(n, MessageStatus::Sent))
            .collect();
        store.apply_batch(&events).await.unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let handler = slow_handler(
            Duration::from_millis(10),
            0,
            log.clone(),
            Arc::default(),
            Arc::default(),
        );
        // One page for the whole backlog: the cursor moves only when the consumer halts.
        let consumer = Consumer::builder(Arc::new(store.clone()), "c")
            .unwrap()
            .page_size(1000)
            .poll_interval(Duration::from_millis(20))
            .spawn(handler);
        wait_until(|| log.lock().unwrap().len() >= 5).await;
        let p = prefix.as_str();
        let stolen = sqlx::query(AssertSqlSafe(format!(
            "UPDATE {p}leases SET holder = 'another', expires_at = now() + interval '1 hour' \
             WHERE name = 'feed:c'"
        )))
        .execute(&pool)
        .await
        .unwrap();
        assert_eq!(stolen.rows_affected(), 1);

        let feed = store.feed().unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let cursor = loop {
            match feed.cursor("c").await.unwrap() {
                Some(at) if at > 0 => break at,
                _ => {}
            }
            assert!(tokio::time::Instant::now() < deadline, "not within 10 s");
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let handled = log.lock().unwrap().len() as u64;
        assert!(cursor < BACKLOG, "stopped before the end: {cursor}");
        assert_eq!(cursor, handled, "the cursor is at the last change handled");
        // Several poll intervals: still nothing handled while the other holds the lease.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(log.lock().unwrap().len() as u64, handled);

        sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM {p}leases WHERE name = 'feed:c'"
        )))
        .execute(&pool)
        .await
        .unwrap();
        wait_until(|| log.lock().unwrap().len() as u64 >= BACKLOG).await;
        consumer.shutdown().await;
        let positions: Vec<u64> = log.lock().unwrap().iter().map(|(_, p)| *p).collect();
        assert_eq!(
            positions,
            (1..=BACKLOG).collect::<Vec<_>>(),
            "once each, in order"
        );
        drop_tables(&pool, &prefix).await;
    }
}
