//! Every backend under concurrent writers: 200 messages, each with a random multiset of its
//! statuses (with duplicates), applied from 16 tasks in random order while half the messages
//! are also `record_sent`; the result must be the max-register answer with every distinct event
//! in the history exactly once, and the `Applied` answers must form one consistent chain per
//! message. PostgreSQL runs it through 4 pools, like 4 app instances, one event at a time and
//! in batches; and one PostgreSQL batch is made to lose the race to create its messages on
//! every try it makes as a batch.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use twilio_delivery::model::{Applied, EventSource, SentMessage, StatusEvent};
use twilio_delivery::status::Outcome;
use twilio_delivery::store::StatusStore;
use twilio_delivery::{MessageSid, MessageStatus};

const MESSAGES: u32 = 200;
const TASKS: usize = 16;

fn sid(n: u32) -> MessageSid {
    MessageSid::new(format!("SM{n:032x}")).unwrap()
}

/// The error code an event of `status` carries (so the expected code is known per status).
fn code_of(status: &MessageStatus) -> Option<u32> {
    match status {
        MessageStatus::Failed => Some(30008),
        MessageStatus::Undelivered => Some(30003),
        MessageStatus::Unknown(_) => Some(1),
        _ => None,
    }
}

#[derive(Debug, Clone)]
enum Op {
    Apply(StatusEvent),
    Sent(SentMessage),
}

/// What each message must end as.
#[derive(Debug, Default)]
struct Expect {
    statuses: BTreeSet<String>,
    max: Option<MessageStatus>,
    sent: bool,
}

fn seed() -> u64 {
    let seed = std::env::var("STORE_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_2024);
    eprintln!("seed {seed} (set STORE_TEST_SEED to replay)");
    seed
}

fn workload(seed: u64) -> (Vec<Op>, HashMap<MessageSid, Expect>) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut pool: Vec<MessageStatus> = MessageStatus::KNOWN.to_vec();
    pool.push(MessageStatus::parse("x_future"));
    pool.push(MessageStatus::parse("y_future"));
    let mut ops = Vec::new();
    let mut expect = HashMap::new();
    for n in 0..MESSAGES {
        let mut e = Expect::default();
        rng.shuffle(&mut pool);
        let distinct = rng.usize(1..=5);
        for status in &pool[..distinct] {
            e.statuses.insert(status.as_str().to_owned());
            for copy in 0..rng.usize(1..=3) {
                let mut ev = StatusEvent::new(sid(n), status.clone(), EventSource::Callback);
                ev.error_code = code_of(status);
                ev.to = Some(format!("+1555{n:07}"));
                ev.raw = vec![
                    ("MessageStatus".into(), status.as_str().into()),
                    ("Copy".into(), copy.to_string()),
                ];
                ops.push(Op::Apply(ev));
            }
            e.max = max(e.max.take(), status.clone());
        }
        if n % 2 == 0 {
            let status = [
                MessageStatus::Accepted,
                MessageStatus::Queued,
                MessageStatus::Scheduled,
            ][rng.usize(0..3)]
            .clone();
            let mut s = SentMessage::new(sid(n), format!("+1555{n:07}"), status.clone());
            s.body = Some(format!("message {n}"));
            ops.push(Op::Sent(s));
            e.max = max(e.max.take(), status);
            e.sent = true;
        }
        expect.insert(sid(n), e);
    }
    rng.shuffle(&mut ops);
    (ops, expect)
}

fn max(a: Option<MessageStatus>, b: MessageStatus) -> Option<MessageStatus> {
    Some(match a {
        Some(a) if a.cmp_precedence(&b).is_ge() => a,
        _ => b,
    })
}

/// Runs the workload from 16 tasks over `stores` (task `i` uses store `i % len`), one
/// operation at a time, and checks the end state and every answer.
async fn run(stores: Vec<Arc<dyn StatusStore>>) {
    run_in(stores, 1).await;
}

/// As [`run`], each task taking `batch` operations at a time. With more than one, their events
/// are written with one `apply_batch` (so batches of many messages, sometimes two events of
/// one, race each other to create and change them), after the sends among them; with one, an
/// event goes through `apply`.
async fn run_in(stores: Vec<Arc<dyn StatusStore>>, batch: usize) {
    let (ops, expect) = workload(seed());
    let ops = Arc::new(ops);
    let next = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..TASKS)
        .map(|i| {
            let store = stores[i % stores.len()].clone();
            let (ops, next) = (ops.clone(), next.clone());
            tokio::spawn(async move {
                let mut answers = Vec::new();
                loop {
                    let k = next.fetch_add(batch, Ordering::Relaxed);
                    let Some(taken) = ops.get(k..(k + batch).min(ops.len())) else {
                        break;
                    };
                    if taken.is_empty() {
                        break;
                    }
                    let mut events = Vec::new();
                    for op in taken {
                        match op {
                            Op::Sent(s) => {
                                let a = store
                                    .record_sent(s)
                                    .await
                                    .unwrap_or_else(|e| panic!("{op:?}: {e:?}"));
                                answers.push((s.sid.clone(), false, a));
                            }
                            Op::Apply(e) if batch == 1 => {
                                let a = store
                                    .apply(e)
                                    .await
                                    .unwrap_or_else(|err| panic!("{op:?}: {err:?}"));
                                answers.push((e.sid.clone(), true, a));
                            }
                            Op::Apply(e) => events.push(e.clone()),
                        }
                    }
                    if events.is_empty() {
                        continue;
                    }
                    let applied = store
                        .apply_batch(&events)
                        .await
                        .unwrap_or_else(|e| panic!("{events:?}: {e:?}"));
                    assert_eq!(applied.len(), events.len(), "one answer per event");
                    for (e, a) in events.iter().zip(applied) {
                        answers.push((e.sid.clone(), true, a));
                    }
                }
                answers
            })
        })
        .collect();
    let mut answers: HashMap<MessageSid, Vec<(bool, Applied)>> = HashMap::new();
    for t in tasks {
        for (sid, is_event, a) in t.await.unwrap() {
            answers.entry(sid).or_default().push((is_event, a));
        }
    }
    assert_eq!(answers.values().map(Vec::len).sum::<usize>(), ops.len());

    let store = &stores[0];
    for (sid, e) in &expect {
        let max = e.max.clone().unwrap();
        let r = store.get(sid).await.unwrap().expect("record exists");
        assert_eq!(r.status, max, "{sid}: final status is the max");
        let from_event = e.statuses.contains(max.as_str());
        let code = if from_event { code_of(&max) } else { None };
        assert_eq!(
            r.error_code, code,
            "{sid}: error code of the event that set it"
        );
        assert_eq!(r.sent_recorded, e.sent, "{sid}");
        assert_eq!(r.to, Some(format!("+1555{:07}", sid_n(sid))), "{sid}");
        if e.sent {
            assert_eq!(r.body, Some(format!("message {}", sid_n(sid))), "{sid}");
        }

        let history = store.history(sid).await.unwrap();
        let seen: Vec<String> = history
            .iter()
            .map(|h| h.status.as_str().to_owned())
            .collect();
        let distinct: BTreeSet<String> = seen.iter().cloned().collect();
        assert_eq!(
            seen.len(),
            distinct.len(),
            "{sid}: an event twice in {seen:?}"
        );
        assert_eq!(distinct, e.statuses, "{sid}: every distinct event kept");
        for h in &history {
            assert_eq!(h.error_code, code_of(&h.status), "{sid}");
        }

        check_answers(sid, &answers[sid], &max, e.statuses.len());
    }
}

/// The answers for one message are those of some serial order: one creator, one `new_event`
/// per distinct status, and the changes form a chain from nothing up to the max.
fn check_answers(
    sid: &MessageSid,
    answers: &[(bool, Applied)],
    max: &MessageStatus,
    events: usize,
) {
    let creators = answers.iter().filter(|(_, a)| a.previous.is_none()).count();
    assert_eq!(creators, 1, "{sid}: exactly one write created the record");
    let new_events = answers.iter().filter(|(e, a)| *e && a.new_event).count();
    assert_eq!(
        new_events, events,
        "{sid}: one new_event per distinct status"
    );
    assert!(answers.iter().all(|(e, a)| *e || !a.new_event), "{sid}");

    let mut chain: Vec<&Applied> = answers
        .iter()
        .map(|(_, a)| a)
        .filter(|a| a.outcome == Outcome::Advanced)
        .collect();
    chain.sort_by(|a, b| a.current.cmp_precedence(&b.current));
    assert_eq!(
        chain[0].previous, None,
        "{sid}: the chain starts at creation"
    );
    for w in chain.windows(2) {
        assert_eq!(
            w[1].previous.as_ref(),
            Some(&w[0].current),
            "{sid}: {chain:?}"
        );
        assert!(w[1].current.cmp_precedence(&w[0].current).is_gt(), "{sid}");
    }
    assert_eq!(&chain[chain.len() - 1].current, max, "{sid}");
    for (_, a) in answers {
        match a.outcome {
            Outcome::Advanced => {}
            Outcome::Duplicate => assert_eq!(a.previous.as_ref(), Some(&a.current), "{sid}"),
            Outcome::Stale => {
                let prev = a.previous.as_ref().expect("a stale write saw a record");
                assert_eq!(prev, &a.current, "{sid}");
            }
            _ => panic!("unexpected outcome {a:?}"),
        }
    }
}

fn sid_n(sid: &MessageSid) -> u32 {
    u32::from_str_radix(&sid.as_str()[2..], 16).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_converges() {
    let store: Arc<dyn StatusStore> = Arc::new(twilio_delivery::store::MemoryStore::new());
    run(vec![store]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_converges_in_batches() {
    let store: Arc<dyn StatusStore> = Arc::new(twilio_delivery::store::MemoryStore::new());
    run_in(vec![store], 8).await;
}

/// The workload from two stores (two pools) over one file, like two handlers of one process,
/// `batch` operations at a time (see `run_in`).
#[cfg(feature = "sqlite")]
async fn sqlite_file(batch: usize) {
    use twilio_delivery::store::SqliteStore;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("concurrency.db");
    let path = path.to_str().unwrap();
    let a = SqliteStore::connect(path).await.unwrap();
    a.migrate().await.unwrap();
    let b = SqliteStore::connect(path).await.unwrap();
    b.migrate().await.unwrap();
    run_in(vec![Arc::new(a), Arc::new(b)], batch).await;
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_file_converges() {
    sqlite_file(1).await;
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_file_converges_in_batches() {
    sqlite_file(8).await;
}

#[cfg(feature = "postgres")]
mod postgres {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use tokio::sync::oneshot::{self, error::TryRecvError};
    use tokio::task::JoinHandle;

    use crate::common::pg::{drop_tables, pool, random_prefix};
    use twilio_delivery::model::{EventSource, StatusEvent};
    use twilio_delivery::store::sqlx::postgres::PgPool;
    use twilio_delivery::store::sqlx::{self, AssertSqlSafe, Connection as _};
    use twilio_delivery::store::{PostgresStore, StatusStore, TablePrefix};
    use twilio_delivery::{MessageSid, MessageStatus};

    /// The workload from four instances (four pools on one schema), `batch` operations at a
    /// time (see `run_in`).
    async fn four_instances(batch: usize) {
        let Some(first) = pool().await else { return };
        let prefix = random_prefix();
        let mut stores: Vec<Arc<dyn StatusStore>> = Vec::new();
        for i in 0..4 {
            let pool = if i == 0 {
                first.clone()
            } else {
                pool().await.unwrap()
            };
            let store = PostgresStore::new(pool).with_prefix(prefix.clone());
            store.migrate().await.unwrap();
            stores.push(Arc::new(store));
        }
        super::run_in(stores, batch).await;
        drop_tables(&first, &prefix).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn four_instances_converge() {
        four_instances(1).await;
    }

    /// Batches of several messages from four instances at once: rows locked in SID order by
    /// statements of either kind (distinct messages, or two events of one), creation races.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn four_instances_converge_in_batches() {
        four_instances(8).await;
    }

    /// A session creating one message in a transaction it commits when told to.
    struct Creator {
        pid: i32,
        /// Fires once its insert has returned (it created the row, or found it created).
        inserted: oneshot::Receiver<()>,
        commit: oneshot::Sender<()>,
        task: JoinHandle<()>,
    }

    impl Creator {
        /// Begins creating `sid` (as `accepted`) in the tables of `prefix`.
        async fn begin(pool: &PgPool, prefix: &TablePrefix, sid: &MessageSid) -> Self {
            let mut conn = pool.acquire().await.unwrap();
            let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            let insert = format!(
                "INSERT INTO {p}messages (sid, status, status_rank, created_at, updated_at) \
                 VALUES ($1, 'accepted', $2, now(), now()) ON CONFLICT DO NOTHING",
                p = prefix.as_str()
            );
            let sid = sid.as_str().to_owned();
            let (done, inserted) = oneshot::channel();
            let (commit, told) = oneshot::channel();
            let task = tokio::spawn(async move {
                let mut tx = conn.begin().await.unwrap();
                sqlx::query(AssertSqlSafe(insert))
                    .bind(sid)
                    .bind(i32::from(MessageStatus::Accepted.precedence()))
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                let _ = done.send(());
                if told.await.is_ok() {
                    tx.commit().await.unwrap();
                }
            });
            Self {
                pid,
                inserted,
                commit,
                task,
            }
        }

        /// Whether its insert waits for another session's row (`false`: it returned).
        async fn waits(&mut self, pool: &PgPool) -> bool {
            loop {
                match self.inserted.try_recv() {
                    Ok(()) => return false,
                    Err(TryRecvError::Closed) => panic!("the creator's insert failed"),
                    Err(TryRecvError::Empty) => {}
                }
                if session_waits(pool, self.pid).await {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }

        async fn commit(self) {
            self.commit.send(()).unwrap();
            self.task.await.unwrap();
        }
    }

    /// Whether the session `pid` waits for a lock.
    async fn session_waits(pool: &PgPool, pid: i32) -> bool {
        sqlx::query_scalar("SELECT cardinality(pg_blocking_pids($1)) > 0")
            .bind(pid)
            .fetch_one(pool)
            .await
            .unwrap()
    }

    /// Whether some session waits for `pid`, checked until `stop` ends.
    async fn someone_waits_for<T>(pool: &PgPool, pid: i32, stop: &JoinHandle<T>) -> bool {
        let sql =
            "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid)))";
        while !stop.is_finished() {
            let yes: bool = sqlx::query_scalar(sql)
                .bind(pid)
                .fetch_one(pool)
                .await
                .unwrap();
            if yes {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        false
    }

    /// A batch that loses the race to create one of its messages fails whole (nothing of it
    /// is written) and is tried again. This drives one batch of eight fresh messages to lose
    /// that race on every try: another session holds the creation of the batch's highest
    /// message not yet created, uncommitted, until the batch waits on it; then a third session
    /// queues to create the message just below (which the batch has inserted, uncommitted) and
    /// the holder commits. The batch finds its message created by another, fails and rolls
    /// back, the third session gets its row, and the next try waits on it. A store that gave
    /// up after a fixed number of tries of the whole batch (five, before) answered an error for
    /// callbacks it could have stored; the store now writes such a batch one event at a time.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_batch_that_loses_every_creation_race_still_lands() {
        let Some(pool) = pool().await else { return };
        let prefix = random_prefix();
        let store = Arc::new(PostgresStore::new(pool.clone()).with_prefix(prefix.clone()));
        store.migrate().await.unwrap();
        let sids: Vec<MessageSid> = (1..=8).map(super::sid).collect();
        let events: Vec<StatusEvent> = sids
            .iter()
            .map(|sid| {
                StatusEvent::new(sid.clone(), MessageStatus::Delivered, EventSource::Callback)
            })
            .collect();

        let mut holder = Creator::begin(&pool, &prefix, &sids[7]).await;
        assert!(
            !holder.waits(&pool).await,
            "the first creator waits for nothing"
        );
        let batch = {
            let (store, events) = (store.clone(), events.clone());
            tokio::spawn(async move { store.apply_batch(&events).await })
        };
        // Races the batch lost: its message was created by the holder while it waited.
        let mut lost = 0;
        for below in (0..7).rev() {
            if !someone_waits_for(&pool, holder.pid, &batch).await {
                break; // the batch ended: its answer is checked below
            }
            let mut next = Creator::begin(&pool, &prefix, &sids[below]).await;
            // The message below is the batch's, uncommitted, unless the batch (writing one
            // event at a time by now) has committed it: then there is nothing to race for.
            let racing = next.waits(&pool).await;
            holder.commit().await;
            lost += 1;
            holder = next;
            if !racing {
                break;
            }
        }
        holder.commit().await;

        let answers = batch
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("the batch did not land after losing {lost} races: {e:?}"));
        assert_eq!(answers.len(), events.len());
        // Two tries of the whole batch and one of a lone event, at least.
        assert!(lost >= 3, "the batch lost only {lost} races");
        for sid in &sids {
            let record = store.get(sid).await.unwrap().expect("created");
            assert_eq!(record.status, MessageStatus::Delivered, "{sid}");
            let history = store.history(sid).await.unwrap();
            assert_eq!(history.len(), 1, "{sid}: {history:?}");
            assert_eq!(history[0].status, MessageStatus::Delivered, "{sid}");
        }
        drop_tables(&pool, &prefix).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_instance_holds_the_reconcile_lock() {
        let Some(pool_a) = pool().await else { return };
        let pool_b = pool().await.unwrap();
        let prefix = random_prefix();
        let a = PostgresStore::new(pool_a).with_prefix(prefix.clone());
        let b = PostgresStore::new(pool_b).with_prefix(prefix.clone());
        let other = PostgresStore::new(a.pool().clone()).with_prefix(random_prefix());
        a.migrate().await.unwrap();
        other.migrate().await.unwrap();

        let held = a
            .try_reconcile_lock()
            .await
            .unwrap()
            .expect("free at first");
        assert!(
            b.try_reconcile_lock().await.unwrap().is_none(),
            "a holds it"
        );
        assert!(
            a.try_reconcile_lock().await.unwrap().is_none(),
            "even for a second pass of a"
        );
        assert!(
            other.try_reconcile_lock().await.unwrap().is_some(),
            "another prefix has its own lock"
        );
        drop(held);
        let deadline = Instant::now() + Duration::from_secs(10);
        let held_b = loop {
            if let Some(lock) = b.try_reconcile_lock().await.unwrap() {
                break lock;
            }
            assert!(
                Instant::now() < deadline,
                "b never got the lock after a released it"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(
            a.try_reconcile_lock().await.unwrap().is_none(),
            "b holds it now"
        );
        drop(held_b);
        drop_tables(a.pool(), &prefix).await;
        drop_tables(a.pool(), other.prefix()).await;
    }

    #[test]
    fn lock_released_when_dropped_outside_a_runtime() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let Some((a, b)) = rt.block_on(async {
            let pool_a = pool().await?;
            let prefix = random_prefix();
            let a = PostgresStore::new(pool_a).with_prefix(prefix.clone());
            let b = PostgresStore::new(pool().await.unwrap()).with_prefix(prefix);
            a.migrate().await.unwrap();
            Some((a, b))
        }) else {
            return;
        };
        let held = rt.block_on(a.try_reconcile_lock()).unwrap().expect("free");
        // Dropped on a plain thread: the connection's socket closes, ending its session.
        std::thread::spawn(move || drop(held)).join().unwrap();
        rt.block_on(async {
            let deadline = Instant::now() + Duration::from_secs(10);
            while b.try_reconcile_lock().await.unwrap().is_none() {
                assert!(Instant::now() < deadline, "the lock outlived its guard");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            drop_tables(b.pool(), b.prefix()).await;
        });
    }
}
