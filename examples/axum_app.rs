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
//! ```text
//! TWILIO_ACCOUNT_SID=AC... TWILIO_AUTH_TOKEN=... TWILIO_FROM=+15017122661 \
//! PUBLIC_BASE_URL=https://your-tunnel.example.com \
//! cargo run --example axum_app --features axum,sqlite,status-page
//! ```
//!
//! `PUBLIC_BASE_URL` is where Twilio reaches the public listener (with any path prefix your
//! proxy strips). Optional: `DATABASE_URL` (`sqlite:path`, default `sqlite:twilio-delivery.db`,
//! or `postgres://...` with `--features postgres`), `TWILIO_API_BASE` (e.g. the local emulator)
//! and `RUST_LOG`. Ctrl-C stops it gracefully.

mod shared;

use std::error::Error;
use std::process::ExitCode;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use shared::{AppError, AppState, Config, SendRequest, message, send};
use twilio_delivery::inbound_webhook::InboundWebhook;
use twilio_delivery::notify::Notifier;
use twilio_delivery::optout::OptOutList;
use twilio_delivery::reconcile::Reconciler;
use twilio_delivery::store::StatusStore;
use twilio_delivery::twiml::{Message, MessagingResponse};
use twilio_delivery::webhook::StatusWebhook;
use twilio_delivery::{
    Client, PublicEndpoint, SignatureValidator, WebhookGuard, adapters, status_page,
};

#[tokio::main]
async fn main() -> ExitCode {
    shared::init_tracing();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("axum_app: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn Error>> {
    let config = Config::from_env()?;
    // The crate's metrics, rendered for Prometheus at the admin listener's /metrics.
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder()?;
    let shared_store = shared::open_store(&config.database_url).await?;
    let store: Arc<dyn StatusStore> = shared_store.clone();
    let opt_outs: Arc<dyn OptOutList> = shared_store;

    // One endpoint: the StatusCallback URL sent to Twilio and the URL the webhook validates,
    // byte for byte. The recommended overrides make Twilio retry 5xx answers and timeouts.
    let endpoint = PublicEndpoint::new(&config.public_base_url, "/twilio/status")?
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
    let incoming = PublicEndpoint::new(&config.public_base_url, "/twilio/incoming")?;
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

    let public = adapters::axum::router(webhook, endpoint.path())
        .merge(adapters::axum::inbound_router(inbound, incoming.path()));
    let state = AppState {
        client,
        store: store.clone(),
        endpoint,
        from: config.from.clone(),
    };
    let admin = Router::new()
        .route("/send", post(send_route))
        .route("/messages/{sid}", get(message_route))
        .with_state(state)
        .route(
            "/metrics",
            get(move || std::future::ready(metrics.render())),
        )
        .nest("/status", status_page::router(store, notifier));

    let public_listener = tokio::net::TcpListener::bind(config.bind_addr).await?;
    let admin_listener = tokio::net::TcpListener::bind(config.admin_addr).await?;
    eprintln!(
        "webhook on http://{}; admin (send, messages, live page /status) on http://{}",
        public_listener.local_addr()?,
        admin_listener.local_addr()?
    );
    // Served with a deadline for request heads: see examples/shared/serve.rs.
    let (stop, stopped) = tokio::sync::watch::channel(());
    let until_stopped = |mut rx: tokio::sync::watch::Receiver<()>| async move {
        let _ = rx.changed().await;
    };
    tokio::join!(
        shared::serve::serve(public_listener, public, until_stopped(stopped.clone())),
        shared::serve::serve(admin_listener, admin, until_stopped(stopped)),
        async move {
            shared::ctrl_c().await;
            let _ = stop.send(());
        },
    );
    reconciler.shutdown().await;
    Ok(())
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
