//! An axum app that sends SMS through Twilio and knows what became of each one.
//!
//! Two listeners:
//! - **public** (`BIND_ADDR`, default `127.0.0.1:3000`; put it behind your tunnel or proxy):
//!   only Twilio's signed webhooks: `POST /twilio/status` (status callbacks) and
//!   `POST /twilio/incoming` (incoming messages: set it as your number's messaging webhook);
//! - **admin** (`ADMIN_ADDR`, default `127.0.0.1:3001`; keep it private): `POST /send` with
//!   `{"to": "+15558675310", "body": "Hello"}`, `GET /messages/{sid}`, `GET /status` (a live
//!   page of recent messages) and `GET /metrics` (Prometheus).
//!
//! Incoming messages are recorded once each and answered with TwiML; a STOP puts the sender on
//! the store's opt-out list (START takes it off), and `/send` then refuses that recipient
//! without calling Twilio. The reconciler polls Twilio for messages still not final after 15
//! minutes.
//!
//! A change-feed consumer named `order-notifications` handles every status change (here it logs
//! it; it is where an app marks an order notified): at least once, in order per message, its
//! cursor kept in the store, so a restart resumes where it stopped. With PostgreSQL every
//! instance of the app may run it: one runs at a time, holding the name's lease in the
//! database, and another takes over when it stops (SQLite is for one process: its lease is
//! held in the process).
//!
//! ```text
//! TWILIO_ACCOUNT_SID=AC... TWILIO_AUTH_TOKEN=... TWILIO_FROM=+15017122661 \
//! PUBLIC_BASE_URL=https://your-tunnel.example.com \
//! cargo run --example axum_app --features axum,sqlite,status-page
//! ```
//!
//! `PUBLIC_BASE_URL` is where Twilio reaches the public listener (with any path prefix your
//! proxy strips). Optional: `DATABASE_URL` (`sqlite:path`, default `sqlite:twilio-delivery.db`,
//! or `postgres://...` with `--features postgres`), `TWILIO_API_BASE` (e.g. the local emulator)
//! and `RUST_LOG`. Ctrl-C or SIGTERM stops it gracefully: requests in flight are answered, the
//! status page's event streams end, then the consumer and the reconciler stop.

mod shared;

use std::error::Error;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::StreamExt;
use serde_json::Value;
use shared::serve::{Limits, serve};
use shared::{AppError, AppState, Config, SendRequest, message, send};
use tokio::sync::watch;
use twilio_delivery::feed::{Consumer, FeedEntry};
use twilio_delivery::inbound_webhook::InboundWebhook;
use twilio_delivery::notify::Notifier;
use twilio_delivery::optout::OptOutList;
use twilio_delivery::reconcile::Reconciler;
use twilio_delivery::store::StatusStore;
use twilio_delivery::twiml::{Message, MessagingResponse};
use twilio_delivery::webhook::StatusWebhook;
use twilio_delivery::{Client, SignatureValidator, WebhookGuard, adapters, status_page};

#[tokio::main]
async fn main() -> ExitCode {
    shared::init_tracing();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("axum_app: {}", shared::report(&*e));
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn Error>> {
    let config = Config::from_env()?;
    // The crate's metrics, rendered for Prometheus at the admin listener's /metrics. Its
    // histograms keep every sample until upkeep drains them: run it every 5 seconds, as the
    // exporter's own HTTP listener would.
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder()?;
    let upkeep = metrics.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(5));
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });
    let shared_store = shared::open_store(&config.database_url).await?;
    let store: Arc<dyn StatusStore> = shared_store.clone();
    let opt_outs: Arc<dyn OptOutList> = shared_store;

    // One endpoint: the StatusCallback URL sent to Twilio and the URL the webhook validates,
    // byte for byte. The recommended overrides make Twilio retry 5xx answers and timeouts.
    let endpoint = config
        .endpoint("/twilio/status")?
        .with_recommended_overrides();
    let notifier = Notifier::default();
    let webhook = StatusWebhook::builder(
        SignatureValidator::new(config.auth_token.clone()),
        store.clone(),
    )
    .endpoint(&endpoint)
    .notifier(notifier.clone())
    // Callbacks of any other account are refused (403).
    .account_sid(config.account_sid.clone())
    .build()?;

    // Incoming messages: recorded once, STOP/START applied, answered with TwiML.
    let incoming = config.endpoint("/twilio/incoming")?;
    let guard = WebhookGuard::builder(SignatureValidator::new(config.auth_token.clone()))
        .endpoint(&incoming)
        .build()?;
    let inbound = InboundWebhook::builder(guard, store.clone())
        .opt_outs(opt_outs.clone())
        .reply(|message| async move {
            match message.opt_out() {
                // Twilio's Advanced Opt-Out answers these keywords itself.
                Some(_) => MessagingResponse::new(),
                None => MessagingResponse::new().message(Message::new(
                    "Thanks, we got your message. Reply STOP to opt out.",
                )),
            }
        })
        .build();

    // The client refuses recipients on the opt-out list, and adds those Twilio says (21610)
    // unsubscribed.
    let mut client =
        Client::builder(config.account_sid.clone(), config.auth_token.clone()).opt_outs(opt_outs);
    if let Some(base) = &config.api_base {
        client = client.base_url(base.clone());
    }
    let client = client.build()?;

    // Every 5 minutes, poll Twilio for messages still not final after 15 minutes.
    let reconciler = Reconciler::builder(client.clone(), store.clone())
        .notifier(notifier.clone())
        .build()?
        .spawn();

    // Every status change, durably: see the header comment.
    let consumer = Consumer::builder(store.clone(), "order-notifications")?.spawn(notify_order);

    let public = adapters::axum::router(webhook, endpoint.path())
        .merge(adapters::axum::inbound_router(inbound, incoming.path()));
    let state = AppState {
        client,
        store: store.clone(),
        endpoint,
        from: config.from.clone(),
    };
    let (stop, stopped) = watch::channel(());
    let status = status_page::router(store, notifier).layer(
        axum::middleware::map_response_with_state(stopped.clone(), end_streams_at_shutdown),
    );
    let admin = Router::new()
        .route("/send", post(send_route))
        .route("/messages/{sid}", get(message_route))
        .with_state(state)
        .route(
            "/metrics",
            get(move || std::future::ready(metrics.render())),
        )
        .nest("/status", status);

    let public_listener = shared::listen("BIND_ADDR", config.bind_addr).await?;
    let admin_listener = shared::listen("ADMIN_ADDR", config.admin_addr).await?;
    eprintln!(
        "webhook on http://{}; admin (send, messages, live page /status) on http://{}",
        public_listener.local_addr()?,
        admin_listener.local_addr()?
    );
    // The public listener with deadlines for request heads and idle connections, the admin one
    // without the idle limit (it would cut the status page's events): see
    // examples/shared/serve.rs.
    tokio::join!(
        serve(
            public_listener,
            public,
            Limits::PUBLIC,
            shared::stopped_signal(stopped.clone())
        ),
        serve(
            admin_listener,
            admin,
            Limits::PRIVATE,
            shared::stopped_signal(stopped)
        ),
        async move {
            shared::shutdown_signal().await;
            let _ = stop.send(());
        },
    );
    consumer.shutdown().await;
    reconciler.shutdown().await;
    Ok(())
}

/// The `order-notifications` consumer's handler, run once per status change (again after a
/// crash before its cursor was stored). An app marks the order notified here when
/// `entry.change.current` is `delivered`; an `Err` is retried, then parked as a dead letter.
async fn notify_order(entry: FeedEntry) -> twilio_delivery::feed::HandlerResult {
    tracing::info!(
        position = entry.position,
        sid = %entry.change.sid,
        status = %entry.change.current,
        "order-notifications: status changed"
    );
    Ok(())
}

/// Ends an event stream (`text/event-stream`, the status page's live events) when shutdown
/// begins, so that graceful shutdown does not wait for the browser to close it.
async fn end_streams_at_shutdown(
    State(stopped): State<watch::Receiver<()>>,
    response: Response,
) -> Response {
    let is_stream = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if !is_stream {
        return response;
    }
    let (parts, body) = response.into_parts();
    let body = body
        .into_data_stream()
        .take_until(shared::stopped_signal(stopped));
    Response::from_parts(parts, Body::from_stream(body))
}

async fn send_route(State(state): State<AppState>, Json(request): Json<SendRequest>) -> Response {
    reply(StatusCode::CREATED, send(&state, request).await)
}

async fn message_route(State(state): State<AppState>, Path(sid): Path<String>) -> Response {
    reply(StatusCode::OK, message(&state, &sid).await)
}

fn reply(ok: StatusCode, result: Result<Value, AppError>) -> Response {
    match result {
        Ok(body) => (ok, Json(body)).into_response(),
        Err(e) => {
            let status =
                StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (status, Json(e.body)).into_response()
        }
    }
}
