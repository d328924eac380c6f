//! End to end, for every store and every adapter: our client sends 500 messages to the local
//! emulator, which answers with signed status callbacks that are reordered (30 %), duplicated
//! (30 %) and dropped (10 %); the callbacks go through a real HTTP server of the adapter into the
//! store, and the reconciler repairs what was dropped. Every message must converge to the
//! emulator's truth, and every callback the app accepted must be in its history exactly once.

mod common;
#[path = "adapters/transport.rs"]
#[allow(dead_code)]
mod transport;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use transport::{Kind, Server};
use twilio_delivery::model::EventSource;
use twilio_delivery::reconcile::Reconciler;
use twilio_delivery::store::StatusStore;
use twilio_delivery::webhook::StatusWebhook;
use twilio_delivery::{
    Client, MemoryStore, MessageSid, MessageStatus, SendMessage, SignatureValidator,
};
use twilio_delivery_emulator::{AttemptOutcome, Chaos, Emulator, EmulatorHandle};

const MESSAGES: usize = 500;
const PATH: &str = "/twilio/status";

async fn emulator(seed: u64) -> EmulatorHandle {
    Emulator::builder()
        .seed(seed)
        .chaos(
            Chaos::calm()
                .step_delay(Duration::from_millis(1), Duration::from_millis(40))
                .outcomes(70, 15, 15)
                .reorder(0.3)
                .duplicate(0.3)
                .drop(0.1),
        )
        .start()
        .await
        .unwrap()
}

/// Runs the whole loop through `kind` into `store` and checks convergence.
async fn converge(kind: Kind, store: Arc<dyn StatusStore>, seed: u64) {
    let emulator = emulator(seed).await;
    let bound = transport::listener();
    let public = format!("http://{}", bound.1);
    let validator = SignatureValidator::new(emulator.auth_token().clone());
    let webhook = StatusWebhook::builder(validator, store.clone())
        .public_url(&public)
        .build()
        .unwrap();
    let _server = Server::start_on(kind, bound, webhook, "", PATH);
    let client = Client::builder(
        emulator.account_sid().clone(),
        emulator.auth_token().clone(),
    )
    .base_url(emulator.base_url().parse().unwrap())
    .build()
    .unwrap();
    let reconciler = Reconciler::builder(client.clone(), store.clone())
        .min_age(Duration::from_millis(300))
        .interval(Duration::from_millis(250))
        .batch_size(1000)
        .concurrency(8)
        .build()
        .unwrap()
        .spawn();

    let callback: url::Url = format!("{public}{PATH}").parse().unwrap();
    let sids: Vec<MessageSid> = futures_util::stream::iter(0..MESSAGES)
        .map(|i| {
            let (client, store, callback) = (client.clone(), store.clone(), callback.clone());
            async move {
                let m = SendMessage::new(format!("+1415555{:04}", i % 10_000))
                    .from("+15005550006")
                    .body(format!("message {i}"))
                    .status_callback(callback);
                let sent = client.messages().create(&m).await.unwrap();
                store
                    .record_sent(&sent.to_sent_message(false))
                    .await
                    .unwrap();
                sent.sid
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    assert_eq!(sids.iter().collect::<HashSet<_>>().len(), MESSAGES);
    emulator.wait_idle(Duration::from_secs(120)).await.unwrap();

    let truth = emulator.truth();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut wrong = Vec::new();
    loop {
        wrong.clear();
        for sid in &sids {
            let record = store.get(sid).await.unwrap().unwrap();
            let t = &truth[sid];
            if record.status != t.status || record.error_code != t.error_code.map(u32::from) {
                wrong.push((sid.clone(), record.status, t.status.clone()));
            }
        }
        if wrong.is_empty() || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    reconciler.shutdown().await;
    assert!(
        wrong.is_empty(),
        "{kind:?}: {} of {MESSAGES} did not converge, e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );

    // Every callback the app accepted is in the history exactly once, and nothing else is
    // there but what the reconciler polled.
    let log = emulator.callback_log();
    let mut accepted: BTreeMap<&MessageSid, HashSet<&MessageStatus>> = BTreeMap::new();
    for a in &log {
        if a.outcome == AttemptOutcome::Response(204) {
            accepted.entry(&a.sid).or_default().insert(&a.status);
        }
    }
    let dropped = log.iter().filter(|a| a.dropped).count();
    let duplicated = log.iter().filter(|a| a.duplicate).count();
    assert!(
        dropped > 0 && duplicated > 0,
        "chaos was on: {dropped} dropped, {duplicated} duplicated"
    );
    let mut polled = 0;
    for sid in &sids {
        let history = store.history(sid).await.unwrap();
        let statuses: Vec<&MessageStatus> = history.iter().map(|h| &h.status).collect();
        assert_eq!(
            statuses.len(),
            statuses.iter().collect::<HashSet<_>>().len(),
            "{sid}: {statuses:?}"
        );
        for status in accepted.get(sid).into_iter().flatten() {
            assert!(
                statuses.contains(status),
                "{kind:?} {sid}: accepted {status} missing from {statuses:?}"
            );
        }
        for h in &history {
            let from_callback = accepted.get(sid).is_some_and(|s| s.contains(&h.status));
            let from_poll = h.source == EventSource::Reconciler;
            polled += usize::from(from_poll);
            assert!(
                from_callback || from_poll,
                "{sid}: {} came from nowhere",
                h.status
            );
        }
    }
    assert!(polled > 0, "the reconciler repaired dropped callbacks");
    emulator.shutdown().await;
}

/// A store for one test, and what it leaves behind.
type TestStore = (Arc<dyn StatusStore>, Leftovers);

/// What a test's store leaves behind, removed when the test ends: SQLite's directory (deleted
/// on drop) or PostgreSQL's tables.
enum Leftovers {
    Nothing,
    Dir(#[allow(dead_code)] tempfile::TempDir),
    #[cfg(feature = "postgres")]
    Tables(
        twilio_delivery::store::sqlx::PgPool,
        twilio_delivery::store::TablePrefix,
    ),
}

impl Leftovers {
    /// Drops PostgreSQL's tables; a directory goes with `self`.
    async fn remove(self) {
        #[cfg(feature = "postgres")]
        if let Self::Tables(pool, prefix) = &self {
            common::pg::drop_tables(pool, prefix).await;
        }
    }
}

async fn sqlite() -> TestStore {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("e2e.db");
    let store = twilio_delivery::store::SqliteStore::connect(&path.display().to_string())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    (Arc::new(store), Leftovers::Dir(dir))
}

#[cfg(feature = "postgres")]
async fn postgres() -> Option<TestStore> {
    let pool = common::pg::pool().await?;
    let prefix = common::pg::random_prefix();
    let store =
        twilio_delivery::store::PostgresStore::new(pool.clone()).with_prefix(prefix.clone());
    store.migrate().await.unwrap();
    Some((Arc::new(store), Leftovers::Tables(pool, prefix)))
}

macro_rules! e2e {
    ($($name:ident: $kind:expr, $store:expr, $seed:expr;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            #[allow(clippy::redundant_closure_call)]
            let Some((store, leftovers)) = ($store)().await else { return };
            converge($kind, store, $seed).await;
            leftovers.remove().await;
        }
    )*};
}

async fn memory() -> Option<TestStore> {
    Some((Arc::new(MemoryStore::new()), Leftovers::Nothing))
}

async fn sqlite_store() -> Option<TestStore> {
    Some(sqlite().await)
}

#[cfg(not(feature = "postgres"))]
async fn postgres() -> Option<TestStore> {
    eprintln!("skipped: the postgres feature is off");
    None
}

e2e! {
    memory_axum: Kind::AxumHttp, memory, 1;
    memory_actix: Kind::ActixHttp, memory, 2;
    memory_warp: Kind::WarpHttp, memory, 3;
    sqlite_axum: Kind::AxumHttp, sqlite_store, 4;
    sqlite_actix: Kind::ActixHttp, sqlite_store, 5;
    sqlite_warp: Kind::WarpHttp, sqlite_store, 6;
    postgres_axum: Kind::AxumHttp, postgres, 7;
    postgres_actix: Kind::ActixHttp, postgres, 8;
    postgres_warp: Kind::WarpHttp, postgres, 9;
}
