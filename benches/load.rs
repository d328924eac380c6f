//! Load benchmark of the webhook's write path, in one run: the webhook served by axum on
//! 127.0.0.1 with `MemoryStore`, `SqliteStore` and `PostgresStore`, and a no-work axum handler
//! as the floor (the limit of HTTP on this machine). Each server runs in a child process (so
//! its RSS and CPU are its own); a hyper client drives N keep-alive connections with
//! pre-signed callbacks, each moving a distinct preloaded message from `sent` to `delivered`.
//!
//! ```text
//! TD_PG_DURABLE=1 source .ci/postgres.sh   # a PostgreSQL with fsync on, as in production
//! cargo bench --bench load --features axum,sqlite,postgres
//! ```
//!
//! Each store is preloaded as the app leaves it after sending (account, sender, recipient), then
//! settled before the measured window (SQLite's WAL checkpointed; PostgreSQL's tables vacuumed
//! and a checkpoint taken), so the window pays for callbacks only.
//!
//! Settings (environment): `LOAD_CONNS` (32), `LOAD_SECS` (5, after 1 s of warm-up),
//! `LOAD_MESSAGES` (200 000 preloaded per store, with random SIDs as Twilio's; past the last,
//! the callbacks start over, as duplicates), `LOAD_ORDER` (`sent`: callbacks in the order the
//! messages were sent, as for a burst of sends; `regions`: each connection walks its own part),
//! `LOAD_TARGETS` (`floor,memory,sqlite,postgres`), `LOAD_SQLITE_SYNC` (`full` or `normal`),
//! `LOAD_WRITERS` (the webhook's concurrent batches, default 1), and `TEST_DATABASE_URL` /
//! `LOAD_DATABASE_URL` for PostgreSQL (skipped without). It prints callbacks/s, p50/p99
//! latency, the server's RSS and CPU per callback, PostgreSQL's CPU per callback (the CPU time
//! of its server process and all its children from /proc, those started or ended during the
//! window included: run it on the database's machine), the client's (this process), and each
//! ratio to the floor. It prints too how busy the whole machine's cores were over the window,
//! and how much of their time the hypervisor gave to other machines (stolen): a run whose cores
//! were all busy measured the CPU, one with idle cores the latency of the round trips.

#[cfg(all(feature = "axum", feature = "sqlite", feature = "postgres"))]
#[path = "../tests/pg_drop/mod.rs"]
mod pg_drop;

#[cfg(all(feature = "axum", feature = "sqlite"))]
mod load {
    use std::io::{BufRead as _, BufReader};
    use std::process::{Child, Command, Stdio};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use bytes::Bytes;
    use http::{HeaderValue, Request, StatusCode};
    use http_body_util::{BodyExt as _, Full};
    use hyper_util::rt::TokioIo;
    use twilio_delivery::model::{EventSource, StatusEvent};
    use twilio_delivery::signature::sign;
    use twilio_delivery::store::{SqliteOptions, SqliteStore, StatusStore, Synchronous};
    use twilio_delivery::webhook::StatusWebhook;
    use twilio_delivery::{
        AccountSid, AuthToken, MemoryStore, MessageSid, MessageStatus, SignatureValidator,
    };

    const TOKEN: &str = "f7e6d5c4b3a2918071605f4e3d2c1b0a";
    const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
    const PUBLIC: &str = "http://bench.local";
    const PATH: &str = "/twilio/status";

    fn env_num(name: &str, default: u64) -> u64 {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    }

    /// Messages preloaded per `apply_batch`.
    const PRELOAD_BATCH: u64 = 2000;

    /// The SIDs of the preloaded messages `start..end` (one preload batch), in the order they
    /// were sent: random like Twilio's (a bijection of a counter), so that SID order has nothing
    /// to do with send order. A batch creates its new messages in SID order, so each preload
    /// batch is sorted: the rows then lie in send order, as `record_sent`, one message at a
    /// time, leaves them.
    fn sent_sids(start: u64, end: u64) -> Vec<MessageSid> {
        let sid = |i: u64| {
            let mut x = u128::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835);
            x ^= x >> 64;
            MessageSid::new(format!("SM{x:032x}")).expect("a valid SID")
        };
        let mut sids: Vec<MessageSid> = (start..end).map(sid).collect();
        sids.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
        sids
    }

    /// The entry point: the load generator, or (`--serve`) one server.
    pub(super) fn main() {
        let args: Vec<String> = std::env::args().collect();
        if let Some(i) = args.iter().position(|a| a == "--serve") {
            let kind = args.get(i + 1).cloned().unwrap_or_default();
            let arg = args.get(i + 2).cloned().unwrap_or_default();
            serve(&kind, &arg);
            return;
        }
        drive();
    }

    // -----------------------------------------------------------------------------------------
    // The server side (a child process)
    // -----------------------------------------------------------------------------------------

    fn serve(kind: &str, arg: &str) {
        let rt = tokio::runtime::Runtime::new().expect("a runtime");
        rt.block_on(async {
            let app = match kind {
                "floor" => axum::Router::new().route(
                    PATH,
                    axum::routing::post(|| async { StatusCode::NO_CONTENT }),
                ),
                _ => {
                    let store = open_store(kind, arg).await;
                    preload(&*store).await;
                    settle(kind, arg).await;
                    let webhook = StatusWebhook::builder(
                        SignatureValidator::new(AuthToken::new(TOKEN)),
                        store,
                    )
                    .public_url(PUBLIC)
                    .writers(env_num("LOAD_WRITERS", 1) as usize)
                    .build()
                    .expect("a webhook");
                    twilio_delivery::adapters::axum::router(webhook, PATH)
                }
            };
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("a port");
            println!(
                "listening {}",
                listener.local_addr().expect("an address").port()
            );
            axum::serve(listener, app).await.expect("serving");
        });
    }

    async fn open_store(kind: &str, arg: &str) -> Arc<dyn StatusStore> {
        match kind {
            "memory" => Arc::new(MemoryStore::new()),
            "sqlite" => {
                let sync = match std::env::var("LOAD_SQLITE_SYNC").as_deref() {
                    Ok("normal") => Synchronous::Normal,
                    _ => Synchronous::Full,
                };
                let store = SqliteStore::connect_with(arg, SqliteOptions::new().synchronous(sync))
                    .await
                    .expect("sqlite");
                store.migrate().await.expect("migrate");
                Arc::new(store)
            }
            #[cfg(feature = "postgres")]
            "postgres" => {
                let (url, prefix) = arg.split_once(' ').expect("url and prefix");
                let store = twilio_delivery::store::PostgresStore::connect(url)
                    .await
                    .expect("postgres")
                    .with_prefix(
                        twilio_delivery::store::TablePrefix::new(prefix).expect("a prefix"),
                    );
                store.migrate().await.expect("migrate");
                Arc::new(store)
            }
            other => panic!("unknown store {other}"),
        }
    }

    /// Every message recorded as `sent` with its account, sender and recipient, as the app
    /// has it after sending (so the callbacks change only the status, as they do in practice).
    async fn preload(store: &dyn StatusStore) {
        let n = env_num("LOAD_MESSAGES", 200_000);
        // Sent one after another, a microsecond apart (as `record_sent` dates them).
        let first = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
        let mut start = 0;
        while start < n {
            let end = (start + PRELOAD_BATCH).min(n);
            let batch: Vec<StatusEvent> = (start..end)
                .zip(sent_sids(start, end))
                .map(|(i, sid)| {
                    let mut e = StatusEvent::new(sid, MessageStatus::Sent, EventSource::Send);
                    e.to = Some("+14155550199".into());
                    e.from = Some("+14155550100".into());
                    e.account_sid = Some(AccountSid::new(ACCOUNT).expect("a valid SID"));
                    e.received_at = first + time::Duration::microseconds(i as i64);
                    e
                })
                .collect();
            store.apply_batch(&batch).await.expect("preload");
            start = end;
        }
    }

    /// Leaves the database as a running app's would be, so that the measured window does not
    /// pay for the preload: SQLite's WAL checkpointed and emptied; PostgreSQL's new tables
    /// vacuumed and analysed (what autovacuum would soon do) and its dirty pages flushed.
    async fn settle(kind: &str, arg: &str) {
        match kind {
            "sqlite" => {
                let url = format!("sqlite://{arg}");
                let pool = sqlx::SqlitePool::connect(&url).await.expect("sqlite");
                sqlx::raw_sql("PRAGMA wal_checkpoint(TRUNCATE)")
                    .execute(&pool)
                    .await
                    .expect("a checkpoint");
            }
            #[cfg(feature = "postgres")]
            "postgres" => {
                let (url, prefix) = arg.split_once(' ').expect("url and prefix");
                let pool = sqlx::PgPool::connect(url).await.expect("postgres");
                let p = prefix;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "VACUUM (ANALYZE) {p}messages, {p}events, {p}feed, {p}pending"
                )))
                .execute(&pool)
                .await
                .expect("a vacuum");
                // Needs a superuser; without one the window may include a checkpoint.
                let _ = sqlx::raw_sql("CHECKPOINT").execute(&pool).await;
            }
            _ => {}
        }
    }

    // -----------------------------------------------------------------------------------------
    // The load generator
    // -----------------------------------------------------------------------------------------

    struct Server {
        child: Child,
        port: u16,
    }

    impl Server {
        fn start(kind: &str, arg: &str) -> Server {
            let mut child = Command::new(std::env::current_exe().expect("this program"))
                .args(["--serve", kind, arg])
                .stdout(Stdio::piped())
                .spawn()
                .expect("a server process");
            let stdout = child.stdout.take().expect("its stdout");
            let mut line = String::new();
            BufReader::new(stdout)
                .read_line(&mut line)
                .expect("its port");
            let port = line
                .trim()
                .strip_prefix("listening ")
                .and_then(|p| p.parse().ok())
                .expect("a port line");
            Server { child, port }
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    /// The fields of `/proc/<pid>/stat` after the parenthesised command name (state first).
    fn stat_fields(pid: u32) -> Vec<u64> {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return Vec::new();
        };
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        rest.split_whitespace()
            .map(|v| v.parse::<u64>().unwrap_or(0))
            .collect()
    }

    /// CPU time (user + system) of a process, in clock ticks (1/100 s).
    fn cpu_ticks(pid: u32) -> u64 {
        let f = stat_fields(pid);
        f.get(11).unwrap_or(&0) + f.get(12).unwrap_or(&0)
    }

    /// CPU time of a process and of all its children, in clock ticks: its own, that of its
    /// children alive now, and that of those it has reaped (so a PostgreSQL backend or
    /// autovacuum worker that started or ended during the window counts too).
    fn tree_ticks(parent: u32) -> u64 {
        // utime and stime, then cutime and cstime (the reaped children's).
        let own = || {
            stat_fields(parent)
                .get(11..15)
                .map_or(0, |t| t.iter().sum::<u64>())
        };
        loop {
            let before = own();
            let children: u64 = std::fs::read_dir("/proc")
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                .filter(|&pid| stat_fields(pid).get(1) == Some(&u64::from(parent)))
                .map(cpu_ticks)
                .sum();
            // A child reaped while we read would count twice or not at all: read again.
            if own() == before {
                return before + children;
            }
        }
    }

    /// The whole machine's CPU time since boot from `/proc/stat`, in clock ticks: busy (user,
    /// nice, system, irq, softirq), stolen (run by the hypervisor for someone else: loud
    /// neighbours) and in all.
    #[derive(Clone, Copy, Default)]
    struct Machine {
        busy: u64,
        steal: u64,
        total: u64,
    }

    impl Machine {
        fn now() -> Self {
            let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
            let ticks: Vec<u64> = stat
                .lines()
                .next()
                .unwrap_or_default()
                .split_whitespace()
                .skip(1)
                .take(8)
                .map(|v| v.parse().unwrap_or(0))
                .collect();
            let at = |i: usize| ticks.get(i).copied().unwrap_or(0);
            Self {
                busy: at(0) + at(1) + at(2) + at(5) + at(6),
                steal: at(7),
                total: ticks.iter().sum(),
            }
        }

        /// The shares of the machine's CPU time since `before` that were busy and stolen.
        fn shares_since(self, before: Self) -> (f64, f64) {
            let total = self.total.saturating_sub(before.total).max(1) as f64;
            (
                self.busy.saturating_sub(before.busy) as f64 / total,
                self.steal.saturating_sub(before.steal) as f64 / total,
            )
        }
    }

    /// The CPU time of the processes measured, at one instant: the server's, PostgreSQL's (its
    /// server and every child) and the client's, in clock ticks, and the machine's.
    #[derive(Clone, Copy, Default)]
    struct Readings {
        server: u64,
        postgres: u64,
        client: u64,
        machine: Machine,
    }

    fn rss_mb(pid: u32) -> f64 {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
            .map_or(0.0, |kb| kb / 1024.0)
    }

    struct Outcome {
        name: String,
        rate: f64,
        p50: Duration,
        p99: Duration,
        rss: f64,
        cpu_us: f64,
        client_us: f64,
        pg_us: Option<f64>,
        busy: f64,
        steal: f64,
        errors: u64,
        wrapped: bool,
    }

    /// Pre-signed callbacks, one per preloaded message.
    fn callbacks(n: u64) -> Arc<Vec<(Bytes, HeaderValue)>> {
        let token = AuthToken::new(TOKEN);
        let url = format!("{PUBLIC}{PATH}");
        Arc::new(
            (0..n)
                .step_by(PRELOAD_BATCH as usize)
                .flat_map(|start| sent_sids(start, (start + PRELOAD_BATCH).min(n)))
                .map(|sid| {
                    let s = sid.to_string();
                    let pairs: Vec<(String, String)> = [
                        ("ApiVersion", "2010-04-01"),
                        ("MessageStatus", "delivered"),
                        ("SmsSid", &s),
                        ("SmsStatus", "delivered"),
                        ("To", "+14155550199"),
                        ("From", "+14155550100"),
                        ("MessageSid", &s),
                        ("AccountSid", ACCOUNT),
                    ]
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect();
                    let body = form_urlencoded::Serializer::new(String::new())
                        .extend_pairs(&pairs)
                        .finish();
                    let sig = sign(&token, &url, &pairs);
                    (
                        Bytes::from(body),
                        HeaderValue::from_str(&sig).expect("a header value"),
                    )
                })
                .collect(),
        )
    }

    /// Drives `conns` connections at `port` for warm-up + `secs`; latencies of the measured
    /// window, errors, whether a connection ran out of messages, and the window's length.
    async fn run_load(
        port: u16,
        conns: usize,
        secs: u64,
        calls: Arc<Vec<(Bytes, HeaderValue)>>,
        on_window: impl FnOnce(),
    ) -> (Vec<u32>, u64, bool, Duration) {
        let warm_until = Instant::now() + Duration::from_secs(1);
        let end = warm_until + Duration::from_secs(secs);
        let per = calls.len() / conns;
        // `sent` (default): callbacks arrive in the order the messages were sent, as they do
        // for a burst of sends; `regions`: each connection walks its own part of the messages.
        let in_send_order = std::env::var("LOAD_ORDER").as_deref() != Ok("regions");
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let tasks: Vec<_> = (0..conns)
            .map(|c| {
                let calls = calls.clone();
                let next = next.clone();
                tokio::spawn(async move {
                    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
                        .await
                        .expect("a connection");
                    stream.set_nodelay(true).ok();
                    let (mut send, conn) =
                        hyper::client::conn::http1::handshake(TokioIo::new(stream))
                            .await
                            .expect("a handshake");
                    tokio::spawn(conn);
                    let mut lat = Vec::new();
                    let (mut errors, mut wrapped) = (0u64, false);
                    let mut i = 0;
                    loop {
                        let now = Instant::now();
                        if now >= end {
                            break;
                        }
                        let k = if in_send_order {
                            let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            wrapped |= k >= calls.len();
                            k % calls.len()
                        } else {
                            if i == per {
                                i = 0;
                                wrapped = true;
                            }
                            i += 1;
                            c * per + i - 1
                        };
                        let (body, sig) = &calls[k];
                        let req = Request::post(PATH)
                            .header("host", "bench.local")
                            .header("content-type", "application/x-www-form-urlencoded")
                            .header("x-twilio-signature", sig.clone())
                            .body(Full::new(body.clone()))
                            .expect("a request");
                        let ok = match send.send_request(req).await {
                            Ok(resp) => {
                                let status = resp.status();
                                let _ = resp.into_body().collect().await;
                                status == StatusCode::NO_CONTENT
                            }
                            Err(_) => false,
                        };
                        if now >= warm_until {
                            lat.push(now.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                            errors += u64::from(!ok);
                        }
                        if !ok && send.ready().await.is_err() {
                            break;
                        }
                    }
                    (lat, errors, wrapped)
                })
            })
            .collect();
        tokio::time::sleep_until(warm_until.into()).await;
        on_window();
        let mut all = Vec::new();
        let (mut errors, mut wrapped) = (0, false);
        for t in tasks {
            let (l, e, w) = t.await.expect("a connection task");
            all.extend(l);
            errors += e;
            wrapped |= w;
        }
        (all, errors, wrapped, Duration::from_secs(secs))
    }

    #[cfg(feature = "postgres")]
    /// The PostgreSQL server's main process (the parent of a backend), on this machine.
    async fn postmaster(url: &str) -> Option<u32> {
        use twilio_delivery::store::sqlx;
        let pool = sqlx::postgres::PgPool::connect(url).await.ok()?;
        let backend: Option<i32> = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&pool)
            .await
            .ok();
        // Read while the backend lives: once the pool is closed it exits and /proc forgets it.
        let parent = backend.and_then(|pid| stat_fields(u32::try_from(pid).ok()?).get(1).copied());
        pool.close().await;
        u32::try_from(parent?).ok()
    }

    fn drive() {
        let conns = env_num("LOAD_CONNS", 32) as usize;
        let secs = env_num("LOAD_SECS", 5);
        let messages = env_num("LOAD_MESSAGES", 200_000);
        let targets =
            std::env::var("LOAD_TARGETS").unwrap_or_else(|_| "floor,memory,sqlite,postgres".into());
        let pg_url = std::env::var("LOAD_DATABASE_URL")
            .or_else(|_| std::env::var("TEST_DATABASE_URL"))
            .ok();
        let rt = tokio::runtime::Runtime::new().expect("a runtime");
        let calls = callbacks(messages);
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut results: Vec<Outcome> = Vec::new();
        for target in targets.split(',') {
            let (arg, prefix): (String, Option<String>) = match target {
                "sqlite" => (dir.path().join("load.db").display().to_string(), None),
                "postgres" => {
                    #[cfg(feature = "postgres")]
                    if let Some(url) = &pg_url {
                        let prefix = format!("load{:08x}_", fastrand::u32(..));
                        (format!("{url} {prefix}"), Some(prefix))
                    } else {
                        eprintln!("postgres: skipped (set TEST_DATABASE_URL)");
                        continue;
                    }
                    #[cfg(not(feature = "postgres"))]
                    {
                        let _ = &pg_url;
                        eprintln!("postgres: skipped (build with --features postgres)");
                        continue;
                    }
                }
                _ => (String::new(), None),
            };
            eprintln!("{target}: starting (preloading {messages} messages)");
            let server = Server::start(target, &arg);
            let pid = server.child.id();
            // PostgreSQL's main process, for the PostgreSQL target (the one with a prefix).
            #[cfg(feature = "postgres")]
            let postmaster = match (&prefix, &pg_url) {
                (Some(_), Some(url)) => rt.block_on(postmaster(url)),
                _ => None,
            };
            #[cfg(not(feature = "postgres"))]
            let postmaster: Option<u32> = {
                debug_assert!(prefix.is_none(), "only PostgreSQL's tables have a prefix");
                None
            };
            let client = std::process::id();
            let read = || Readings {
                server: cpu_ticks(pid),
                postgres: postmaster.map_or(0, tree_ticks),
                client: cpu_ticks(client),
                machine: Machine::now(),
            };
            let at_start = std::cell::Cell::new(Readings::default());
            let (mut lat, errors, wrapped, window) =
                rt.block_on(run_load(server.port, conns, secs, calls.clone(), || {
                    at_start.set(read())
                }));
            let (end, start) = (read(), at_start.get());
            let (busy, steal) = end.machine.shares_since(start.machine);
            let rss = rss_mb(pid);
            drop(server);
            lat.sort_unstable();
            let count = lat.len().max(1);
            let q =
                |f: f64| Duration::from_micros(u64::from(lat[((count - 1) as f64 * f) as usize]));
            let done = lat.len() as f64;
            // Clock ticks (1/100 s) over the window → µs per callback.
            let per_callback = |ticks: u64| ticks as f64 * 10_000.0 / done.max(1.0);
            results.push(Outcome {
                name: target.to_owned(),
                rate: done / window.as_secs_f64(),
                p50: q(0.50),
                p99: q(0.99),
                rss,
                cpu_us: per_callback(end.server.saturating_sub(start.server)),
                client_us: per_callback(end.client.saturating_sub(start.client)),
                busy,
                steal,
                // No figure rather than a wrong one when the server's process was not found.
                pg_us: postmaster
                    .map(|_| per_callback(end.postgres.saturating_sub(start.postgres))),
                errors,
                wrapped,
            });
            #[cfg(feature = "postgres")]
            if let (Some(prefix), Some(url)) = (&prefix, &pg_url) {
                rt.block_on(drop_tables(url, prefix));
            }
        }
        let floor = results.iter().find(|r| r.name == "floor").map(|r| r.rate);
        println!(
            "\n{conns} connections, {secs} s each, 2 threads per server\n\
             | server | callbacks/s | vs floor | p50 | p99 | RSS | server CPU/callback | PostgreSQL CPU/callback | client CPU/callback | machine busy (stolen) | errors |"
        );
        println!("|---|---|---|---|---|---|---|---|---|---|---|");
        for r in &results {
            println!(
                "| {}{} | {:.0} | {} | {:.2} ms | {:.2} ms | {:.0} MB | {:.0} µs | {} | {:.0} µs | {:.0} % ({:.0} %) | {} |",
                r.name,
                if r.wrapped {
                    " (ran out of messages)"
                } else {
                    ""
                },
                r.rate,
                floor.map_or("-".into(), |f| format!("{:.1} %", 100.0 * r.rate / f)),
                r.p50.as_secs_f64() * 1000.0,
                r.p99.as_secs_f64() * 1000.0,
                r.rss,
                r.cpu_us,
                r.pg_us.map_or("-".into(), |u| format!("{u:.0} µs")),
                r.client_us,
                100.0 * r.busy,
                100.0 * r.steal,
                r.errors,
            );
        }
    }

    #[cfg(feature = "postgres")]
    async fn drop_tables(url: &str, prefix: &str) {
        use twilio_delivery::store::sqlx::{self, AssertSqlSafe};
        if let Ok(pool) = sqlx::postgres::PgPool::connect(url).await {
            let _ = sqlx::raw_sql(AssertSqlSafe(crate::pg_drop::drop_prefix_sql(prefix)))
                .execute(&pool)
                .await;
            pool.close().await;
        }
    }
}

fn main() {
    #[cfg(all(feature = "axum", feature = "sqlite"))]
    load::main();
    #[cfg(not(all(feature = "axum", feature = "sqlite")))]
    eprintln!("the load benchmark needs --features axum,sqlite (and postgres for PostgreSQL)");
}
