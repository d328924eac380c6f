//! Real faults against the webhook and the SQL stores: a process killed with SIGKILL right
//! after answering (SQLite file, PostgreSQL), SQLite on a full disk (a small tmpfs, needs root),
//! PostgreSQL stopped with `pg_ctl stop -m immediate` under a stream of callbacks (a private
//! server), a row lock held by another session, and an address PostgreSQL cannot index. Every
//! callback answered 204 must be in the store; every failure must be a 503 within the deadline;
//! the store must heal by itself.
//!
//! Outside CI a test whose service is missing (no `TEST_DATABASE_URL`, no PostgreSQL binaries,
//! not root for the tmpfs) says so and passes; under CI (`CI` set) it fails.
#![cfg(any(feature = "sqlite", feature = "postgres"))]

mod common;

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
#[cfg(feature = "postgres")]
use tokio::time::Instant;
use twilio_delivery::SignatureValidator;
use twilio_delivery::store::StatusStore;
use twilio_delivery::webhook::{StatusWebhook, WebhookRequest};

const BASE: &str = "https://hooks.example.com";
const TARGET: &str = "/twilio/status";

/// Skips outside CI, fails under CI.
fn missing(what: &str) {
    assert!(std::env::var_os("CI").is_none(), "CI is set but {what}");
    eprintln!("skipped: {what}");
}

fn hook(store: Arc<dyn StatusStore>, deadline: Duration) -> StatusWebhook {
    StatusWebhook::builder(SignatureValidator::new(token()), store)
        .public_url(BASE)
        .deadline(deadline)
        .build()
        .unwrap()
}

/// Posts the `delivered` callback of message `n` with `pad` bytes of extra parameter.
async fn post(hook: &StatusWebhook, n: u32, pad: usize) -> StatusCode {
    let mut pairs = callback_pairs(&sid(n), "delivered", None);
    if pad > 0 {
        pairs.push(("Pad".into(), "x".repeat(pad)));
    }
    post_pairs(hook, &pairs).await
}

/// Posts a callback of these pairs, signed.
async fn post_pairs(hook: &StatusWebhook, pairs: &[(String, String)]) -> StatusCode {
    let (body, sig) = signed(&format!("{BASE}{TARGET}"), pairs);
    let mut h = HeaderMap::new();
    h.insert("x-twilio-signature", HeaderValue::from_str(&sig).unwrap());
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    hook.handle(WebhookRequest::new(
        &Method::POST,
        TARGET,
        &h,
        body.as_bytes(),
    ))
    .await
    .status
}

// ---------------------------------------------------------------------------------------------
// kill -9 right after answering
// ---------------------------------------------------------------------------------------------

/// The child side of the kill tests: writes callbacks through a webhook and prints `ok <n>`
/// after each 204, until killed. A no-op unless `FAULT_CHILD_STORE` is set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_child() {
    let Ok(spec) = std::env::var("FAULT_CHILD_STORE") else {
        return;
    };
    let store = open_child_store(&spec).await;
    let hook = hook(store, Duration::from_secs(10));
    let next = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let writers: Vec<_> = (0..8)
        .map(|_| {
            let (hook, next) = (hook.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if post(&hook, n, 0).await == StatusCode::NO_CONTENT {
                        println!("ok {n}");
                    }
                }
            })
        })
        .collect();
    for w in writers {
        let _ = w.await;
    }
}

async fn open_child_store(spec: &str) -> Arc<dyn StatusStore> {
    if let Some(path) = spec.strip_prefix("sqlite:") {
        #[cfg(feature = "sqlite")]
        {
            let s = twilio_delivery::store::SqliteStore::connect(path)
                .await
                .unwrap();
            s.migrate().await.unwrap();
            return Arc::new(s);
        }
        #[cfg(not(feature = "sqlite"))]
        panic!("built without sqlite: {path}");
    }
    #[cfg(feature = "postgres")]
    if let Some((url, prefix)) = spec.split_once(' ') {
        let s = twilio_delivery::store::PostgresStore::connect(url)
            .await
            .unwrap()
            .with_prefix(twilio_delivery::store::TablePrefix::new(prefix).unwrap());
        s.migrate().await.unwrap();
        return Arc::new(s);
    }
    panic!("unknown child store {spec}")
}

/// Runs the child on `spec`, kills it with SIGKILL once it answered `answered` callbacks, and
/// returns the numbers it answered 204.
fn run_and_kill(spec: &str, answered: usize) -> Vec<u32> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "kill_child", "--nocapture", "--test-threads=1"])
        .env("FAULT_CHILD_STORE", spec)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut ok = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(n) = line.strip_prefix("ok ") {
            ok.push(n.parse().unwrap());
            if ok.len() >= answered {
                // SIGKILL, right after this answer (and whatever else is in flight).
                child.kill().unwrap();
                break;
            }
        }
    }
    child.wait().unwrap();
    assert!(ok.len() >= answered, "the child stopped early");
    ok
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn sqlite_keeps_every_204_after_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kill.db");
    let spec = format!("sqlite:{}", path.display());
    let ok = tokio::task::spawn_blocking(move || run_and_kill(&spec, 300))
        .await
        .unwrap();
    let store = twilio_delivery::store::SqliteStore::connect(path.to_str().unwrap())
        .await
        .unwrap();
    for n in ok {
        assert!(
            store.get(&sid(n)).await.unwrap().is_some(),
            "{n} answered 204 but lost"
        );
    }
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_keeps_every_204_after_kill_9() {
    let Some(url) = pg::url() else { return };
    let prefix = pg::random_prefix();
    let spec = format!("{url} {}", prefix.as_str());
    let ok = tokio::task::spawn_blocking(move || run_and_kill(&spec, 300))
        .await
        .unwrap();
    let pool = pg::pool().await.unwrap();
    let store =
        twilio_delivery::store::PostgresStore::new(pool.clone()).with_prefix(prefix.clone());
    for n in ok {
        assert!(
            store.get(&sid(n)).await.unwrap().is_some(),
            "{n} answered 204 but lost"
        );
    }
    pg::drop_tables(&pool, &prefix).await;
}

// ---------------------------------------------------------------------------------------------
// A value PostgreSQL cannot index
// ---------------------------------------------------------------------------------------------

/// A callback whose `To` is 4 000 bytes that do not compress (Twilio sends nothing like it, but
/// a signed request can): PostgreSQL cannot index it (`messages_to_idx`), so its insert failed
/// the whole batch, and every callback written with it got 503, which Twilio does not send
/// again. The address is now left out (`callback::MAX_ADDRESS`) and every callback is stored.
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_postgres_cannot_index_fails_no_callback() {
    let Some(url) = pg::url() else { return };
    let prefix = pg::random_prefix();
    let store = twilio_delivery::store::PostgresStore::connect(&url)
        .await
        .unwrap()
        .with_prefix(prefix.clone());
    store.migrate().await.unwrap();
    let store = Arc::new(store);
    let hook = Arc::new(hook(store.clone(), Duration::from_secs(10)));
    let long: String = std::iter::repeat_with(fastrand::alphanumeric)
        .take(4000)
        .collect();
    let posts: Vec<_> = (1..=16)
        .map(|n| {
            let mut pairs = callback_pairs(&sid(n), "delivered", None);
            if n == 8 {
                pairs.retain(|(k, _)| k != "To");
                pairs.push(("To".into(), long.clone()));
            }
            let hook = hook.clone();
            tokio::spawn(async move { post_pairs(&hook, &pairs).await })
        })
        .collect();
    for (n, post) in (1..=16).zip(posts) {
        assert_eq!(post.await.unwrap(), StatusCode::NO_CONTENT, "callback {n}");
    }
    for n in 1..=16 {
        let record = store.get(&sid(n)).await.unwrap().expect("stored");
        let to = if n == 8 { None } else { Some("+14155550199") };
        assert_eq!(record.to.as_deref(), to, "message {n}");
    }
    pg::drop_tables(&pg::pool().await.unwrap(), &prefix).await;
}

/// One callback whose write PostgreSQL rejects fails alone: the webhook writes the rest of its
/// batch one event at a time. A trigger refuses message 8's history row with SQLSTATE 54000, as
/// PostgreSQL refuses a value too long to index (which no callback can carry any more); 16
/// callbacks at once: 8 gets 500, the 15 others 204 and are stored.
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_postgres_rejects_fails_alone() {
    use twilio_delivery::store::PostgresStore;
    use twilio_delivery::store::sqlx::{self, AssertSqlSafe};
    let Some(url) = pg::url() else { return };
    let prefix = pg::random_prefix();
    let store = PostgresStore::connect(&url)
        .await
        .unwrap()
        .with_prefix(prefix.clone());
    store.migrate().await.unwrap();
    let p = prefix.as_str();
    let pool = pg::pool().await.unwrap();
    sqlx::raw_sql(AssertSqlSafe(format!(
        "CREATE FUNCTION {p}refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
         IF NEW.message_sid = '{}' THEN \
         RAISE EXCEPTION 'index row size exceeds maximum' USING ERRCODE = '54000'; \
         END IF; RETURN NEW; END $$; \
         CREATE TRIGGER {p}refuse BEFORE INSERT ON {p}events \
         FOR EACH ROW EXECUTE FUNCTION {p}refuse();",
        sid(8)
    )))
    .execute(&pool)
    .await
    .unwrap();
    let store = Arc::new(store);
    let hook = Arc::new(hook(store.clone(), Duration::from_secs(10)));
    let posts: Vec<_> = (1..=16)
        .map(|n| {
            let hook = hook.clone();
            tokio::spawn(async move { post(&hook, n, 0).await })
        })
        .collect();
    for (n, post) in (1..=16).zip(posts) {
        let expected = if n == 8 {
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::NO_CONTENT
        };
        assert_eq!(post.await.unwrap(), expected, "callback {n}");
    }
    for n in 1..=16 {
        let stored = store.get(&sid(n)).await.unwrap().is_some();
        assert_eq!(stored, n != 8, "message {n}");
    }
    pg::drop_tables(&pool, &prefix).await;
}

// ---------------------------------------------------------------------------------------------
// SQLite on a full disk
// ---------------------------------------------------------------------------------------------

/// A tmpfs mounted on a temporary directory, unmounted on drop (lazily: the store's
/// connections close on their own threads and may still hold the file open).
#[cfg(feature = "sqlite")]
struct Tmpfs {
    dir: tempfile::TempDir,
}

#[cfg(feature = "sqlite")]
impl Tmpfs {
    fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Self { dir })
    }
}

#[cfg(feature = "sqlite")]
impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("--lazy")
            .arg(self.dir.path())
            .status();
    }
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_heals_after_the_disk_was_full() {
    use twilio_delivery::store::SqliteStore;
    let Some(fs) = Tmpfs::mount("4m") else {
        missing("a tmpfs cannot be mounted (run as root)");
        return;
    };
    let filler = fs.dir.path().join("filler");
    let path = fs.dir.path().join("full.db");
    let store = SqliteStore::connect(path.to_str().unwrap()).await.unwrap();
    store.migrate().await.unwrap();
    std::fs::write(&filler, vec![0u8; 1536 * 1024]).unwrap();
    let store: Arc<dyn StatusStore> = Arc::new(store);
    let hook = hook(store.clone(), Duration::from_secs(10));

    let mut answered = Vec::new();
    let mut refused = Vec::new();
    let mut n = 0;
    while refused.len() < 20 {
        assert!(n < 20_000, "the disk never filled");
        match post(&hook, n, 8 * 1024).await {
            StatusCode::NO_CONTENT => answered.push(n),
            StatusCode::SERVICE_UNAVAILABLE => refused.push(n),
            other => panic!("{n}: {other}"),
        }
        n += 1;
    }
    assert!(!answered.is_empty());
    std::fs::remove_file(&filler).unwrap();
    // Space again: every refused callback, retried, is stored, without reopening anything.
    for &r in &refused {
        let mut tries = 0;
        while post(&hook, r, 8 * 1024).await != StatusCode::NO_CONTENT {
            tries += 1;
            assert!(tries < 50, "{r} still refused after the disk was freed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        answered.push(r);
    }
    for &a in &answered {
        assert!(
            store.get(&sid(a)).await.unwrap().is_some(),
            "{a} answered 204 but lost"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL: a row lock held by another session; the server stopped hard
// ---------------------------------------------------------------------------------------------

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_locked_by_another_session_gets_503_within_the_deadline() {
    use twilio_delivery::store::sqlx::{self, AssertSqlSafe, Connection as _};
    use twilio_delivery::store::{PostgresOptions, PostgresStore};
    let Some(url) = pg::url() else { return };
    let prefix = pg::random_prefix();
    let store = PostgresStore::connect_with(
        &url,
        PostgresOptions::new().lock_timeout(Duration::from_secs(1)),
    )
    .await
    .unwrap()
    .with_prefix(prefix.clone());
    store.migrate().await.unwrap();
    let deadline = Duration::from_secs(3);
    let hook = hook(Arc::new(store.clone()), deadline);
    assert_eq!(post(&hook, 1, 0).await, StatusCode::NO_CONTENT);

    let mut other = sqlx::PgConnection::connect(&url).await.unwrap();
    let mut tx = other.begin().await.unwrap();
    sqlx::query(AssertSqlSafe(format!(
        "SELECT 1 FROM {}messages WHERE sid = '{}' FOR UPDATE",
        prefix.as_str(),
        sid(1)
    )))
    .execute(&mut *tx)
    .await
    .unwrap();
    let started = Instant::now();
    assert_eq!(post(&hook, 1, 0).await, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        started.elapsed() < deadline + Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    // Other messages are not held up behind it for longer than the deadline either.
    assert_eq!(post(&hook, 2, 0).await, StatusCode::NO_CONTENT);
    tx.rollback().await.unwrap();
    assert_eq!(post(&hook, 1, 0).await, StatusCode::NO_CONTENT);
    pg::drop_tables(store.pool(), &prefix).await;
}

/// A batch reads its rows unlocked and writes them in a second round trip: when another
/// session changes a row in between, the write must not put back what it read. Here the
/// other session holds the row's lock while the batch reads it, so the batch's write waits for
/// it; the other session then changes the recipient and commits. The batch's write finds the
/// row no longer the version it read, fails whole and is planned again on the new row: the
/// new recipient stays (a write planned on the old row would put the old one back).
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_changed_between_a_batch_read_and_its_write_is_not_overwritten() {
    use twilio_delivery::model::{EventSource, StatusEvent};
    use twilio_delivery::status::MessageStatus;
    use twilio_delivery::store::PostgresOptions;
    use twilio_delivery::store::sqlx::{self, AssertSqlSafe, Connection as _};
    let Some(url) = pg::url() else { return };
    let (store, mut other) = store_with_a_locked_row(&url, PostgresOptions::new()).await;
    let prefix = store.prefix().clone();
    let p = prefix.as_str().to_owned();
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            let event = StatusEvent::new(sid(1), MessageStatus::Delivered, EventSource::Callback);
            store.apply(&event).await
        })
    };
    // The batch has read the row (unlocked) and now waits for the lock in its write.
    let waiting = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' \
         AND query LIKE '%{p}messages%' AND pid <> pg_backend_pid()"
    );
    let mut watcher = sqlx::PgConnection::connect(&url).await.unwrap();
    let started = Instant::now();
    loop {
        let n: i64 = sqlx::query_scalar(AssertSqlSafe(waiting.clone()))
            .fetch_one(&mut watcher)
            .await
            .unwrap();
        if n > 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the batch never waited"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let change = format!(
        "UPDATE {p}messages SET to_addr = '+15550000002' WHERE sid = '{}'; COMMIT",
        sid(1)
    );
    sqlx::raw_sql(AssertSqlSafe(change))
        .execute(&mut other)
        .await
        .unwrap();

    let applied = writer.await.unwrap().unwrap();
    assert_eq!(applied.previous, Some(MessageStatus::Sent));
    let record = store.get(&sid(1)).await.unwrap().unwrap();
    assert_eq!(record.status, MessageStatus::Delivered);
    assert_eq!(record.to.as_deref(), Some("+15550000002"));
    pg::drop_tables(store.pool(), &prefix).await;
}

/// A batch's write runs outside a transaction, so the store times it itself: behind a row lock
/// held longer than the statement timeout (the lock timeout being longer still), the write
/// fails as unavailable once the statement timeout has passed, and its connection is closed.
/// The server may still commit that write once the lock is released; writing the same event
/// again then answers it as a duplicate, so the retry Twilio makes after a 503 is safe.
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_write_past_the_statement_timeout_fails_and_its_retry_is_safe() {
    use twilio_delivery::model::{EventSource, StatusEvent};
    use twilio_delivery::status::MessageStatus;
    use twilio_delivery::store::PostgresOptions;
    use twilio_delivery::store::sqlx::{self, AssertSqlSafe};
    let Some(url) = pg::url() else { return };
    let options = PostgresOptions::new()
        .statement_timeout(Duration::from_secs(1))
        .lock_timeout(Duration::from_secs(30));
    let (store, mut other) = store_with_a_locked_row(&url, options).await;
    let prefix = store.prefix().clone();
    let event = StatusEvent::new(sid(1), MessageStatus::Delivered, EventSource::Callback);
    let started = Instant::now();
    let error = store.apply(&event).await.unwrap_err();
    let took = started.elapsed();
    assert!(error.is_unavailable(), "{error}");
    let cause = std::error::Error::source(&error).map(|e| e.to_string());
    assert!(
        cause.is_some_and(|c| c.contains("statement timeout")),
        "{error:?}"
    );
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(5),
        "{took:?}"
    );
    sqlx::raw_sql(AssertSqlSafe("ROLLBACK"))
        .execute(&mut other)
        .await
        .unwrap();

    let again = store.apply(&event).await.unwrap();
    assert_eq!(again.current, MessageStatus::Delivered);
    let record = store.get(&sid(1)).await.unwrap().unwrap();
    assert_eq!(record.status, MessageStatus::Delivered);
    let history = store.history(&sid(1)).await.unwrap();
    let delivered = history
        .iter()
        .filter(|h| h.status == MessageStatus::Delivered);
    assert_eq!(delivered.count(), 1, "{history:?}");
    pg::drop_tables(store.pool(), &prefix).await;
}

/// A PostgreSQL store with tables of its own, holding message 1 as sent, and another session
/// that holds that message's row lock in an open transaction (end it with `COMMIT` or
/// `ROLLBACK`).
#[cfg(feature = "postgres")]
async fn store_with_a_locked_row(
    url: &str,
    options: twilio_delivery::store::PostgresOptions,
) -> (
    twilio_delivery::store::PostgresStore,
    twilio_delivery::store::sqlx::PgConnection,
) {
    use twilio_delivery::model::SentMessage;
    use twilio_delivery::status::MessageStatus;
    use twilio_delivery::store::PostgresStore;
    use twilio_delivery::store::sqlx::{self, AssertSqlSafe, Connection as _};
    let prefix = pg::random_prefix();
    let store = PostgresStore::connect_with(url, options)
        .await
        .unwrap()
        .with_prefix(prefix.clone());
    store.migrate().await.unwrap();
    let sent = SentMessage::new(sid(1), "+15550000001", MessageStatus::Sent);
    store.record_sent(&sent).await.unwrap();
    let mut other = sqlx::PgConnection::connect(url).await.unwrap();
    let lock = format!(
        "BEGIN; SELECT 1 FROM {}messages WHERE sid = '{}' FOR UPDATE",
        prefix.as_str(),
        sid(1)
    );
    sqlx::raw_sql(AssertSqlSafe(lock))
        .execute(&mut other)
        .await
        .unwrap();
    (store, other)
}

/// A private PostgreSQL server in a temporary directory, stopped hard on drop.
#[cfg(feature = "postgres")]
struct Cluster {
    dir: tempfile::TempDir,
    bin: std::path::PathBuf,
    port: u16,
}

#[cfg(feature = "postgres")]
impl Cluster {
    fn bin() -> Option<std::path::PathBuf> {
        if let Some(dir) = std::env::var_os("TD_PG_BIN") {
            return Some(dir.into());
        }
        let mut dirs: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok())
            .map(|e| e.path().join("bin"))
            .filter(|p| p.join("pg_ctl").exists())
            .collect();
        dirs.sort_by_key(|p| {
            p.parent()
                .and_then(|v| v.file_name())
                .and_then(|v| v.to_str())
                .and_then(|v| v.parse::<u32>().ok())
        });
        dirs.pop()
    }

    /// Runs a PostgreSQL program as the server's user (`postgres` when running as root).
    fn run(&self, program: &str, args: &[&str]) -> bool {
        let exe = self.bin.join(program);
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0"));
        let mut cmd = if root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        cmd.args(args)
            .current_dir("/")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    fn start() -> Option<Self> {
        let bin = Self::bin()?;
        let dir = tempfile::tempdir().ok()?;
        let _ = Command::new("chown")
            .args(["-R", "postgres:"])
            .arg(dir.path())
            .stderr(Stdio::null())
            .status();
        let mut c = Self {
            dir,
            bin,
            port: free_port()?,
        };
        let data = c.data();
        if !c.run(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "--auth=trust",
                "--no-locale",
                "-E",
                "UTF8",
            ],
        ) {
            return None;
        }
        // The port was free when asked for, but until the server binds it another test's
        // connection may take it as its local end: then another port is tried.
        for _ in 0..5 {
            let _ = std::fs::remove_file(c.log());
            if c.pg_start() {
                return Some(c);
            }
            let log = std::fs::read_to_string(c.log()).unwrap_or_default();
            assert!(
                log.contains("could not bind"),
                "PostgreSQL did not start:\n{log}"
            );
            c.port = free_port()?;
        }
        None
    }

    fn log(&self) -> std::path::PathBuf {
        self.dir.path().join("log")
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn pg_start(&self) -> bool {
        let opts = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.log().display().to_string();
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-l",
                &log,
                "-w",
                "-t",
                "60",
                "-o",
                &opts,
                "start",
            ],
        )
    }

    fn stop_immediate(&self) -> bool {
        self.run(
            "pg_ctl",
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        )
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

/// A port of 127.0.0.1 no one listens on, as the system picks one.
#[cfg(feature = "postgres")]
fn free_port() -> Option<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").ok()?;
    Some(listener.local_addr().ok()?.port())
}

#[cfg(feature = "postgres")]
impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop_immediate();
    }
}

/// Waits up to 60 s for `f`.
#[cfg(feature = "postgres")]
async fn wait_for(what: &str, f: impl Fn() -> bool) {
    let started = Instant::now();
    while !f() {
        assert!(started.elapsed() < Duration::from_secs(60), "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_hard_gets_503_within_the_deadline_then_heals() {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};
    use twilio_delivery::store::{PostgresOptions, PostgresStore};

    let Some(cluster) = tokio::task::spawn_blocking(Cluster::start).await.unwrap() else {
        missing("no PostgreSQL server binaries to start a private server (set TD_PG_BIN)");
        return;
    };
    let store = PostgresStore::connect_with(
        &cluster.url(),
        PostgresOptions::new()
            .acquire_timeout(Duration::from_secs(1))
            .connect_timeout(Duration::from_secs(5)),
    )
    .await
    .unwrap();
    store.migrate().await.unwrap();
    let deadline = Duration::from_secs(3);
    let hook = hook(Arc::new(store.clone()), deadline);

    // A stream of callbacks: (n, status, how long it took).
    let answers = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let stream = {
        let (hook, answers, stop) = (hook.clone(), answers.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let status = post(&hook, n, 0).await;
                answers.lock().unwrap().push((n, status, started.elapsed()));
                n += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let count = |s: StatusCode| answers.lock().unwrap().iter().filter(|a| a.1 == s).count();
    wait_for("no 204 before the outage", &|| {
        count(StatusCode::NO_CONTENT) >= 50
    })
    .await;
    let c = &cluster;
    assert!(
        tokio::task::block_in_place(|| c.stop_immediate()),
        "pg_ctl stop"
    );
    wait_for("no 503 during the outage", &|| {
        count(StatusCode::SERVICE_UNAVAILABLE) >= 5
    })
    .await;
    let ok_before = count(StatusCode::NO_CONTENT);
    assert!(tokio::task::block_in_place(|| c.pg_start()), "pg_ctl start");
    wait_for("no 204 after the restart", &|| {
        count(StatusCode::NO_CONTENT) >= ok_before + 50
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    stream.await.unwrap();

    let answers = answers.lock().unwrap().clone();
    for (n, status, took) in &answers {
        assert!(
            *status == StatusCode::NO_CONTENT || *status == StatusCode::SERVICE_UNAVAILABLE,
            "{n}: {status}"
        );
        assert!(
            *took < deadline + Duration::from_secs(1),
            "{n}: answered after {took:?}"
        );
    }
    let mut stored = 0;
    for (n, status, _) in &answers {
        let present = store.get(&sid(*n)).await.unwrap().is_some();
        if *status == StatusCode::NO_CONTENT {
            assert!(present, "{n} answered 204 but lost");
        }
        stored += usize::from(present);
    }
    let ok = answers
        .iter()
        .filter(|a| a.1 == StatusCode::NO_CONTENT)
        .count();
    eprintln!(
        "{} callbacks: {ok} answered 204, {stored} stored",
        answers.len()
    );
    assert!(stored >= ok);
}

/// An in-memory SQLite database lives in its connections: when the store's one connection was
/// closed (a write or read given up half-way, which sqlx answers by closing the connection),
/// the next one used to open a new, empty database. A thousand writes and reads given up at
/// random points must leave every write that finished, and the tables, in place.
#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_memory_sqlite_store_survives_cancelled_writes_and_reads() {
    use twilio_delivery::model::{EventSource, StatusEvent};
    use twilio_delivery::{MessageStatus, store::SqliteStore};

    let store = SqliteStore::connect(":memory:").await.unwrap();
    store.migrate().await.unwrap();
    let kept = StatusEvent::new(sid(0), MessageStatus::Sent, EventSource::Callback);
    store.apply(&kept).await.unwrap();
    let mut finished = vec![0];
    for n in 1..=1200u32 {
        let wait = Duration::from_micros(u64::from(n * 7919 % 400));
        let event = StatusEvent::new(sid(n), MessageStatus::Sent, EventSource::Callback);
        if tokio::time::timeout(wait, store.apply(&event))
            .await
            .is_ok_and(|r| r.is_ok())
        {
            finished.push(n);
        }
        let _ = tokio::time::timeout(wait, store.get(&sid(n / 2))).await;
    }
    for n in finished {
        let record = store
            .get(&sid(n))
            .await
            .expect("the tables are still there");
        assert!(record.is_some(), "message {n}, written before, is gone");
    }
}
