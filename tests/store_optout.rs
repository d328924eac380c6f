//! Every store is an opt-out list: the same behaviour on memory, SQLite (in memory and in a
//! file, across reopening) and PostgreSQL (shared by two store instances).

mod common;

use common::incoming;
use twilio_delivery::inbound::OptOut;
use twilio_delivery::optout::{OptOutList, OptOutSource};

const A: &str = "+14155550101";
const B: &str = "whatsapp:+14155550102";

async fn behaves(list: &dyn OptOutList) {
    assert!(!list.is_opted_out(A).await.unwrap());
    assert!(list.opt_out(A, OptOutSource::Keyword).await.unwrap());
    // A second opt-out keeps the first reason.
    assert!(!list.opt_out(A, OptOutSource::Error21610).await.unwrap());
    assert!(list.opt_out(B, OptOutSource::Error21610).await.unwrap());
    assert!(list.is_opted_out(A).await.unwrap() && list.is_opted_out(B).await.unwrap());
    let all = list.opt_outs().await.unwrap();
    let view: Vec<_> = all.iter().map(|s| (s.number.as_str(), s.source)).collect();
    assert_eq!(
        view,
        [(A, OptOutSource::Keyword), (B, OptOutSource::Error21610)]
    );
    assert!(list.opt_in(A).await.unwrap());
    assert!(!list.opt_in(A).await.unwrap());
    assert!(!list.is_opted_out(A).await.unwrap());
    // Hostile text is data.
    let evil = "'); DROP TABLE twilio_opt_outs; --";
    assert!(list.opt_out(evil, OptOutSource::Manual).await.unwrap());
    assert!(list.is_opted_out(evil).await.unwrap());
    keywords_once(list).await;
}

/// A message's keyword is applied once: its redelivery changes nothing, so an older START
/// delivered again cannot undo the sender's later STOP (nor an older STOP a later START).
async fn keywords_once(list: &dyn OptOutList) {
    const C: &str = "+14155550103";
    let start = incoming(1, C, "START");
    let stop = incoming(2, C, "STOP");
    assert_eq!(
        list.apply_inbound(&start).await.unwrap(),
        Some(OptOut::Start)
    );
    assert_eq!(list.apply_inbound(&stop).await.unwrap(), Some(OptOut::Stop));
    assert!(list.is_opted_out(C).await.unwrap());
    assert_eq!(list.apply_inbound(&start).await.unwrap(), None);
    assert!(
        list.is_opted_out(C).await.unwrap(),
        "an older START undid a later STOP"
    );
    let again = incoming(3, C, "unstop");
    assert_eq!(
        list.apply_inbound(&again).await.unwrap(),
        Some(OptOut::Start)
    );
    assert_eq!(list.apply_inbound(&stop).await.unwrap(), None);
    assert!(
        !list.is_opted_out(C).await.unwrap(),
        "an older STOP undid a later START"
    );
    // Not a keyword: nothing applied, nothing remembered.
    assert_eq!(
        list.apply_inbound(&incoming(4, C, "hello")).await.unwrap(),
        None
    );
    assert_eq!(
        list.apply_inbound(&incoming(4, C, "STOP")).await.unwrap(),
        Some(OptOut::Stop)
    );
}

#[tokio::test]
async fn memory_opt_outs() {
    behaves(&twilio_delivery::optout::MemoryOptOuts::new()).await;
}

#[tokio::test]
async fn memory() {
    behaves(&twilio_delivery::MemoryStore::new()).await;
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn sqlite_in_memory_and_in_a_file() {
    use twilio_delivery::store::SqliteStore;
    let store = SqliteStore::connect(":memory:").await.unwrap();
    store.migrate().await.unwrap();
    behaves(&store).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("optout.db");
    let store = SqliteStore::connect(path.to_str().unwrap()).await.unwrap();
    store.migrate().await.unwrap();
    behaves(&store).await;
    drop(store);
    let reopened = SqliteStore::connect(path.to_str().unwrap()).await.unwrap();
    reopened.migrate().await.unwrap();
    assert!(
        reopened.is_opted_out(B).await.unwrap(),
        "kept across reopening"
    );
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_shared_by_two_instances() {
    use twilio_delivery::store::{PostgresStore, TablePrefix};
    let Some(pool) = common::pg::pool().await else {
        return;
    };
    let prefix = TablePrefix::new(format!("o{:016x}_", fastrand::u64(..))).unwrap();
    let one = PostgresStore::new(pool.clone()).with_prefix(prefix.clone());
    one.migrate().await.unwrap();
    behaves(&one).await;
    let two = PostgresStore::new(pool.clone()).with_prefix(prefix.clone());
    assert!(
        two.is_opted_out(B).await.unwrap(),
        "another instance sees the list"
    );
    // One keyword delivered to both instances at once: applied by exactly one.
    for sid in 10..30 {
        let stop = incoming(sid, A, "STOP");
        let (a, b) = tokio::join!(one.apply_inbound(&stop), two.apply_inbound(&stop));
        let applied = [a.unwrap(), b.unwrap()];
        assert_eq!(
            applied.iter().filter(|a| a.is_some()).count(),
            1,
            "{sid}: {applied:?}"
        );
    }
    common::pg::drop_tables(&pool, &prefix).await;
}
