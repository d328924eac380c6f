//! The durable change feed: every real change once per position, in order, to named consumers
//! whose cursors live in the store; failing changes retried, parked and replayable; restarts;
//! and on PostgreSQL, concurrent writers on several instances, the out-of-order-commit case,
//! and a consumer on one instance woken by a change made through another.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use twilio_delivery::feed::{Consumer, FeedEntry, HandlerResult, StartFrom};
use twilio_delivery::model::{EventSource, SentMessage, StatusEvent};
use twilio_delivery::store::StatusStore;
use twilio_delivery::{MessageSid, MessageStatus};

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
    use twilio_delivery::store::{PostgresStore, TablePrefix};

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
}
