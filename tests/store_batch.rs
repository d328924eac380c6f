//! `apply_batch` is `apply` one by one: for random batches (duplicates, reorders, repeated
//! SIDs, unknown statuses, fill-in fields), every store written in batches of any split gives
//! the same answers, records, histories and change feed as `MemoryStore` written one event at
//! a time. Run against `MemoryStore`, `SqliteStore` (memory and file) and `PostgresStore`.

mod common;

use std::sync::Arc;

use proptest::prelude::*;
use time::OffsetDateTime;
use time::macros::datetime;
use twilio_delivery::model::{EventSource, StatusEvent};
use twilio_delivery::store::StatusStore;
use twilio_delivery::{AccountSid, MessageSid, MessageStatus};

const T0: OffsetDateTime = datetime!(2024-05-01 12:00:00 UTC);

fn sid(n: u8) -> MessageSid {
    MessageSid::new(format!("SM{n:032x}")).unwrap()
}

/// One generated event: (message, status index, error code?, fills?, second offset).
type Gen = (u8, usize, bool, u8, i64);

fn statuses() -> Vec<MessageStatus> {
    let mut s = MessageStatus::KNOWN.to_vec();
    s.push(MessageStatus::parse("x_future"));
    s.push(MessageStatus::parse("y_future"));
    s
}

fn event(g: &Gen, copy: usize) -> StatusEvent {
    let (n, st, code, fills, secs) = *g;
    let all = statuses();
    let status = all[st % all.len()].clone();
    let mut e = StatusEvent::new(sid(n), status.clone(), EventSource::Callback);
    e.received_at = T0 + time::Duration::seconds(secs);
    if code {
        e.error_code = Some(30000 + u32::from(n));
        e.error_message = Some(format!("error of {n}"));
    }
    if fills & 1 != 0 {
        e.to = Some(format!("+1555000{n:04}"));
    }
    if fills & 2 != 0 {
        e.from = Some(format!("+1666{fills}"));
    }
    if fills & 4 != 0 {
        e.account_sid = Some(AccountSid::new(format!("AC{:032x}", n)).unwrap());
    }
    e.idempotency_token = Some(format!("tok-{copy}"));
    e.raw = vec![
        ("MessageStatus".into(), status.as_str().into()),
        ("Copy".into(), copy.to_string()),
    ];
    e
}

/// What a store ended with, in a comparable form (update times left out).
async fn snapshot(store: &dyn StatusStore, sids: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    for &n in sids {
        let r = store.get(&sid(n)).await.unwrap();
        out.push(format!(
            "{:?}",
            r.map(|r| (
                r.status,
                r.error_code,
                r.error_message,
                r.to,
                r.from,
                r.account_sid,
                r.created_at
            ))
        ));
        for h in store.history(&sid(n)).await.unwrap() {
            out.push(format!(
                "  {:?} {:?} {} {:?} {:?} {:?}",
                h.status, h.error_code, h.received_at, h.source, h.idempotency_token, h.raw
            ));
        }
    }
    let feed = store.feed().expect("every store keeps a feed");
    for e in feed.changes_after(0, 10_000).await.unwrap() {
        let c = e.change;
        out.push(format!(
            "feed {} {} {:?} {} {:?}",
            e.position, c.sid, c.previous, c.current, c.error_code
        ));
    }
    out
}

/// Writes `events` one by one into `a` and in batches split at `cuts` into `b`; compares.
async fn same(
    a: Arc<dyn StatusStore>,
    b: Arc<dyn StatusStore>,
    events: &[StatusEvent],
    cuts: &[usize],
) {
    let mut one = Vec::new();
    for e in events {
        one.push(a.apply(e).await.unwrap());
    }
    let mut batched = Vec::new();
    let mut start = 0;
    for &cut in cuts.iter().chain(std::iter::once(&events.len())) {
        let end = cut.clamp(start, events.len());
        batched.extend(b.apply_batch(&events[start..end]).await.unwrap());
        start = end;
    }
    // The answers, less the creation time (each store stamps its own clock).
    let strip = |answers: Vec<twilio_delivery::Applied>| -> Vec<_> {
        answers
            .into_iter()
            .map(|a| (a.outcome, a.previous, a.current, a.new_event))
            .collect()
    };
    assert_eq!(strip(one), strip(batched), "answers");
    let mut sids: Vec<u8> = events
        .iter()
        .map(|e| u8::from_str_radix(&e.sid.as_str()[32..], 16).unwrap())
        .collect();
    sids.sort_unstable();
    sids.dedup();
    assert_eq!(
        snapshot(&*a, &sids).await,
        snapshot(&*b, &sids).await,
        "records, histories and feed"
    );
}

fn batches() -> impl Strategy<Value = (Vec<StatusEvent>, Vec<usize>)> {
    batches_over(5)
}

fn batches_over(messages: u8) -> impl Strategy<Value = (Vec<StatusEvent>, Vec<usize>)> {
    let one = (0u8..messages, 0usize..16, any::<bool>(), 0u8..8, 0i64..100);
    (
        proptest::collection::vec(one, 1..40),
        proptest::collection::vec(0usize..40, 0..4),
        proptest::collection::vec(0usize..40, 0..10),
    )
        .prop_map(|(gens, mut cuts, dups)| {
            let mut events: Vec<StatusEvent> =
                gens.iter().enumerate().map(|(i, g)| event(g, i)).collect();
            // Exact duplicates of earlier events, anywhere.
            for d in dups {
                if let Some(e) = events.get(d % events.len()).cloned() {
                    events.insert(d % (events.len() + 1), e);
                }
            }
            cuts.sort_unstable();
            (events, cuts)
        })
}

/// The reference the SQL stores are compared with: `MemoryStore`, written one by one.
#[allow(dead_code)]
fn reference() -> Arc<dyn StatusStore> {
    Arc::new(twilio_delivery::MemoryStore::new())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn memory_batch_is_one_by_one((events, cuts) in batches()) {
        runtime().block_on(async {
            let a = Arc::new(twilio_delivery::MemoryStore::new());
            let b = Arc::new(twilio_delivery::MemoryStore::new());
            same(a, b, &events, &cuts).await;
        });
    }
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use super::*;
    use twilio_delivery::store::SqliteStore;

    async fn open(path: Option<&std::path::Path>) -> Arc<dyn StatusStore> {
        let store = match path {
            Some(p) => SqliteStore::connect(p.to_str().unwrap()).await.unwrap(),
            None => SqliteStore::connect(":memory:").await.unwrap(),
        };
        store.migrate().await.unwrap();
        Arc::new(store)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        #[test]
        fn sqlite_memory_batch_is_one_by_one((events, cuts) in batches()) {
            runtime().block_on(async {
                same(reference(), open(None).await, &events, &cuts).await;
            });
        }

        #[test]
        fn sqlite_file_batch_is_one_by_one((events, cuts) in batches()) {
            let dir = tempfile::tempdir().unwrap();
            runtime().block_on(async {
                let b = open(Some(&dir.path().join("b.db"))).await;
                same(reference(), b, &events, &cuts).await;
            });
        }
    }
}

#[cfg(feature = "postgres")]
mod postgres {
    use super::*;
    use common::pg::{drop_tables, pool, random_prefix};
    use twilio_delivery::store::PostgresStore;

    /// [`same`] for a new store on fresh tables, dropped afterwards.
    async fn compare(events: Vec<StatusEvent>, cuts: Vec<usize>) {
        let Some(pool) = pool().await else { return };
        let pb = random_prefix();
        let b = PostgresStore::new(pool.clone()).with_prefix(pb.clone());
        b.migrate().await.unwrap();
        same(reference(), Arc::new(b), &events, &cuts).await;
        drop_tables(&pool, &pb).await;
    }

    /// Random batches over `messages` messages, cut wherever a message comes again, so that no
    /// batch holds two events of one message (the batches a store may write in one statement).
    fn distinct_batches(messages: u8) -> impl Strategy<Value = (Vec<StatusEvent>, Vec<usize>)> {
        batches_over(messages).prop_map(|(events, _)| {
            let mut cuts = Vec::new();
            let mut seen = std::collections::HashSet::new();
            for (i, e) in events.iter().enumerate() {
                if !seen.insert(e.sid.clone()) {
                    cuts.push(i);
                    seen.clear();
                    seen.insert(e.sid.clone());
                }
            }
            (events, cuts)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        #[test]
        fn postgres_batch_is_one_by_one((events, cuts) in batches()) {
            runtime().block_on(compare(events, cuts));
        }

        #[test]
        fn postgres_distinct_batch_is_one_by_one((events, cuts) in distinct_batches(24)) {
            runtime().block_on(compare(events, cuts));
        }
    }
}
