//! The quickstart: send a batch of messages and watch every status converge, with no Twilio
//! account, no phone and no public URL.
//!
//! ```text
//! cargo run --example quickstart --features axum,sqlite
//! ```
//!
//! It starts the local Twilio emulator (with chaos on: callbacks reordered, duplicated and
//! dropped), an axum app with the status webhook over an SQLite file, and the reconciler; sends
//! a batch that ends delivered, undelivered, failed and rejected; shows progress as callbacks
//! arrive; then prints every message's final status and timeline and checks each against the
//! emulator's truth. It exits non-zero if any message did not converge.

use std::collections::BTreeMap;
use std::error::Error;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use twilio_delivery::model::EventSource;
use twilio_delivery::notify::Notifier;
use twilio_delivery::reconcile::Reconciler;
use twilio_delivery::store::{SqliteStore, StatusStore};
use twilio_delivery::webhook::StatusWebhook;
use twilio_delivery::{Client, MessageSid, PublicEndpoint, SendMessage, SignatureValidator};
use twilio_delivery_emulator::{Chaos, Emulator};

/// Messages in the batch (one more, to a number Twilio rejects, is added).
const BATCH: usize = 24;
/// Where the webhook is mounted.
const WEBHOOK_PATH: &str = "/twilio/status";
/// How long to wait for convergence before giving up.
const DEADLINE: Duration = Duration::from_secs(60);

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("quickstart failed: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<bool, Box<dyn Error>> {
    // The crate's metrics, kept in memory for the summary at the end (an app would install a
    // Prometheus or OpenTelemetry recorder instead).
    let recorder = metrics_util::debugging::DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install()?;
    // 1. A local Twilio, misbehaving the way the real one can: callbacks late, out of order,
    //    repeated, or never sent at all.
    let emulator = Emulator::builder()
        .seed(2026)
        .chaos(
            Chaos::realistic()
                .step_delay(Duration::from_millis(100), Duration::from_millis(900))
                .outcomes(70, 15, 15)
                .sent_only(0)
                .reorder(0.3)
                .duplicate(0.3)
                .drop(0.1),
        )
        .start()
        .await?;

    // 2. The embedded store: an SQLite file, fresh for every run.
    let db = std::env::temp_dir().join("twilio-delivery-quickstart.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let store = Arc::new(SqliteStore::connect(&db.display().to_string()).await?);
    store.migrate().await?;

    // 3. The app: an axum server with the status webhook. Its public URL is what Twilio calls
    //    (and signs); here the emulator calls it directly.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    //    One endpoint gives both the StatusCallback URL sent (with overrides that ask Twilio
    //    to retry 5xx answers) and the URL the webhook validates signatures against.
    let endpoint =
        PublicEndpoint::new(&format!("http://{}", listener.local_addr()?), WEBHOOK_PATH)?
            .with_recommended_overrides();
    let notifier = Notifier::new(4096);
    let validator = SignatureValidator::new(emulator.auth_token().clone());
    let webhook = StatusWebhook::builder(validator, store.clone())
        .endpoint(&endpoint)
        .notifier(notifier.clone())
        .build()?;
    let app = twilio_delivery::adapters::axum::router(webhook, endpoint.path());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    // 4. The client, pointed at the emulator instead of api.twilio.com, and the reconciler,
    //    which repairs the callbacks the emulator drops.
    let client = Client::builder(
        emulator.account_sid().clone(),
        emulator.auth_token().clone(),
    )
    .base_url(emulator.base_url().parse()?)
    .build()?;
    let reconciler = Reconciler::builder(client.clone(), store.clone())
        .min_age(Duration::from_secs(3))
        .interval(Duration::from_secs(1))
        .notifier(notifier.clone())
        .build()?
        .spawn();

    // 5. Send the batch, each with the endpoint's status callback.
    let started = Instant::now();
    let mut sent: Vec<(MessageSid, String)> = Vec::new();
    let mut recipients: Vec<String> = (0..BATCH)
        .map(|i| format!("+1415555{:04}", 100 + i))
        .collect();
    recipients.push("+15005550009".into()); // Twilio's magic "not a mobile number"
    println!(
        "Sending {} messages through the emulator at {}",
        recipients.len(),
        emulator.base_url()
    );
    for (i, to) in recipients.iter().enumerate() {
        let message = SendMessage::new(to.as_str())
            .from("+15005550006")
            .body(format!("Order #{} has shipped", 4200 + i))
            .status_callback(&endpoint);
        match client.messages().create(&message).await {
            Ok(m) => {
                // `false`: the text is not stored (`true` would keep it: personal data).
                store.record_sent(&m.to_sent_message(false)).await?;
                sent.push((m.sid.clone(), to.clone()));
            }
            Err(e) => println!("  rejected: {to}: {e}"),
        }
    }

    // 6. Watch the statuses converge as callbacks (and the reconciler) update the store.
    let mut changes = notifier.subscribe();
    let truth = emulator.truth();
    let live = std::io::stdout().is_terminal();
    let mut last_print = Instant::now();
    let converged = loop {
        let (done, counts) = progress(&*store, &sent, &truth).await?;
        if live || last_print.elapsed() >= Duration::from_secs(2) || done == sent.len() {
            print_progress(done, sent.len(), &counts, live);
            last_print = Instant::now();
        }
        if done == sent.len() || started.elapsed() > DEADLINE {
            break done;
        }
        // Wake on the next change, or re-check now and then.
        let _ = tokio::time::timeout(Duration::from_millis(250), changes.recv()).await;
    };
    if live {
        println!();
    }

    // 7. The result: every message, its final status and its timeline as received.
    print_table(&*store, &sent, &truth, started).await?;
    let drops = emulator.callback_log().iter().filter(|a| a.dropped).count();
    let dups = emulator
        .callback_log()
        .iter()
        .filter(|a| a.duplicate)
        .count();
    println!(
        "\n{converged}/{} messages converged to the emulator's truth in {:.1}s \
         ({drops} callbacks dropped, {dups} duplicated, the rest shuffled; store: {})",
        sent.len(),
        started.elapsed().as_secs_f64(),
        db.display()
    );
    print_metrics(&snapshotter);
    println!(
        "\nTo use real Twilio: set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_FROM and \
         PUBLIC_BASE_URL (a URL Twilio can reach, e.g. a tunnel to this machine) and run\n  \
         cargo run --example axum_app --features axum,sqlite,status-page"
    );

    reconciler.shutdown().await;
    server.abort();
    emulator.shutdown().await;
    Ok(converged == sent.len())
}

/// A few lines from the crate's metrics: callbacks by answer, real status changes by source,
/// reconciler repairs and the median time from send to a final status.
fn print_metrics(snapshotter: &metrics_util::debugging::Snapshotter) {
    use metrics_util::debugging::DebugValue;
    use twilio_delivery::metrics as names;
    let mut callbacks = BTreeMap::new();
    let mut changes = BTreeMap::new();
    let mut repairs = 0;
    let mut to_final = Vec::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let key = key.key();
        let label = |name: &str| {
            key.labels()
                .find(|l| l.key() == name)
                .map(|l| l.value().to_owned())
                .unwrap_or_default()
        };
        match (key.name(), value) {
            (names::CALLBACKS, DebugValue::Counter(n)) => {
                *callbacks.entry(label("status")).or_insert(0) += n;
            }
            (names::TRANSITIONS, DebugValue::Counter(n)) => {
                *changes.entry(label("source")).or_insert(0) += n;
            }
            (names::REPAIRS, DebugValue::Counter(n)) => repairs += n,
            (names::SEND_TO_FINAL, DebugValue::Histogram(v)) => {
                to_final.extend(v.into_iter().map(|x| x.into_inner()));
            }
            _ => {}
        }
    }
    to_final.sort_by(f64::total_cmp);
    let median = to_final.get(to_final.len() / 2).copied().unwrap_or(0.0);
    println!(
        "\nMetrics: callbacks answered {callbacks:?}; status changes by source {changes:?}; \
         reconciler repairs {repairs}; median send-to-final {median:.1}s"
    );
}

/// How many sent messages already match the emulator's truth, and a count per current status.
async fn progress(
    store: &dyn StatusStore,
    sent: &[(MessageSid, String)],
    truth: &BTreeMap<MessageSid, twilio_delivery_emulator::Truth>,
) -> Result<(usize, BTreeMap<String, usize>), Box<dyn Error>> {
    let mut done = 0;
    let mut counts = BTreeMap::new();
    for (sid, _) in sent {
        let Some(record) = store.get(sid).await? else {
            continue;
        };
        *counts.entry(record.status.to_string()).or_insert(0) += 1;
        if matches(&record, truth.get(sid)) {
            done += 1;
        }
    }
    Ok((done, counts))
}

fn matches(
    record: &twilio_delivery::model::MessageRecord,
    truth: Option<&twilio_delivery_emulator::Truth>,
) -> bool {
    truth.is_some_and(|t| {
        record.status == t.status && record.error_code == t.error_code.map(u32::from)
    })
}

fn print_progress(done: usize, total: usize, counts: &BTreeMap<String, usize>, live: bool) {
    const WIDTH: usize = 30;
    let filled = done * WIDTH / total.max(1);
    let bar = format!("{}{}", "#".repeat(filled), "-".repeat(WIDTH - filled));
    let summary: Vec<String> = counts.iter().map(|(s, n)| format!("{s} {n}")).collect();
    let line = format!("[{bar}] {done}/{total} converged   {}", summary.join(", "));
    if live {
        print!("\r{line:<110}");
        let _ = std::io::stdout().flush();
    } else {
        println!("{line}");
    }
}

async fn print_table(
    store: &dyn StatusStore,
    sent: &[(MessageSid, String)],
    truth: &BTreeMap<MessageSid, twilio_delivery_emulator::Truth>,
    started: Instant,
) -> Result<(), Box<dyn Error>> {
    let origin = OffsetDateTime::now_utc() - started.elapsed();
    println!(
        "\n{:<34}  {:<13} {:<12} {:<5}  timeline (as received)",
        "message", "to", "status", "error"
    );
    for (sid, to) in sent {
        let Some(record) = store.get(sid).await? else {
            continue;
        };
        let timeline: Vec<String> = store
            .history(sid)
            .await?
            .iter()
            .map(|h| {
                let at = (h.received_at - origin).as_seconds_f64();
                let polled = if h.source == EventSource::Reconciler {
                    " polled"
                } else {
                    ""
                };
                format!("{} {at:.1}s{polled}", h.status)
            })
            .collect();
        let mark = if matches(&record, truth.get(sid)) {
            ""
        } else {
            "  <- not converged"
        };
        println!(
            "{sid}  {to:<13} {:<12} {:<5}  {}{mark}",
            record.status.to_string(),
            record.error_code.map(|c| c.to_string()).unwrap_or_default(),
            timeline.join(" → "),
        );
    }
    Ok(())
}
