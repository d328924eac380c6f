//! A warp app that sends SMS through Twilio and knows what became of each one.
//!
//! Two listeners:
//! - **public** (`BIND_ADDR`, default `127.0.0.1:3000`; put it behind your tunnel or proxy):
//!   only `POST /twilio/status`, the signed status webhook;
//! - **admin** (`ADMIN_ADDR`, default `127.0.0.1:3001`; keep it private): `POST /send` with
//!   `{"to": "+15558675310", "body": "Hello"}` and `GET /messages/{sid}`.
//!
//! The reconciler polls Twilio for messages still not final after 15 minutes.
//!
//! ```text
//! TWILIO_ACCOUNT_SID=AC... TWILIO_AUTH_TOKEN=... TWILIO_FROM=+15017122661 \
//! PUBLIC_BASE_URL=https://your-tunnel.example.com \
//! cargo run --example warp_app --features warp,sqlite
//! ```
//!
//! `PUBLIC_BASE_URL` is where Twilio reaches the public listener (with any path prefix your
//! proxy strips). Optional: `DATABASE_URL` (`sqlite:path`, default `sqlite:twilio-delivery.db`,
//! or `postgres://...` with `--features postgres`), `TWILIO_API_BASE` (e.g. the local emulator)
//! and `RUST_LOG`. Ctrl-C or SIGTERM stops it gracefully: requests in flight are answered,
//! then the reconciler stops.

mod shared;

use std::error::Error;
use std::process::ExitCode;

use serde_json::Value;
use shared::serve::{Limits, serve};
use shared::{AppError, AppState, Config, SendRequest, message, send};
use twilio_delivery::reconcile::Reconciler;
use twilio_delivery::webhook::StatusWebhook;
use twilio_delivery::{Client, SignatureValidator, adapters};
use warp::Filter;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

#[tokio::main]
async fn main() -> ExitCode {
    shared::init_tracing();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("warp_app: {}", shared::report(&*e));
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn Error>> {
    let config = Config::from_env()?;
    let store = shared::open_store(&config.database_url).await?;

    // One endpoint: the StatusCallback URL sent to Twilio and the URL the webhook validates,
    // byte for byte. The recommended overrides make Twilio retry 5xx answers and timeouts.
    let endpoint = config
        .endpoint("/twilio/status")?
        .with_recommended_overrides();
    let webhook = StatusWebhook::builder(
        SignatureValidator::new(config.auth_token.clone()),
        store.clone(),
    )
    .endpoint(&endpoint)
    // Callbacks of any other account are refused (403).
    .account_sid(config.account_sid.clone())
    .build()?;

    let mut client = Client::builder(config.account_sid.clone(), config.auth_token.clone());
    if let Some(base) = &config.api_base {
        client = client.base_url(base.clone());
    }
    let client = client.build()?;

    // Every 5 minutes, poll Twilio for messages still not final after 15 minutes.
    let reconciler = Reconciler::builder(client.clone(), store.clone())
        .build()?
        .spawn();

    let public = adapters::warp::filter(webhook, endpoint.path());
    let state = AppState {
        client,
        store,
        endpoint,
        from: config.from.clone(),
    };
    let state = warp::any().map(move || state.clone());
    let send = warp::path!("send")
        .and(warp::post())
        .and(state.clone())
        .and(warp::body::content_length_limit(16 * 1024))
        .and(warp::body::json())
        .then(|state: AppState, request: SendRequest| async move {
            reply(StatusCode::CREATED, send(&state, request).await)
        });
    let message = warp::path!("messages" / String)
        .and(warp::get())
        .and(state)
        .then(|sid: String, state: AppState| async move {
            reply(StatusCode::OK, message(&state, &sid).await)
        });
    let admin = send.or(message);

    let public_listener = shared::listen("BIND_ADDR", config.bind_addr).await?;
    let admin_listener = shared::listen("ADMIN_ADDR", config.admin_addr).await?;
    eprintln!(
        "webhook on http://{}; admin (send, messages) on http://{}",
        public_listener.local_addr()?,
        admin_listener.local_addr()?
    );
    // Served with a deadline for request heads: see examples/shared/serve.rs.
    let (stop, stopped) = tokio::sync::watch::channel(());
    tokio::join!(
        serve(
            public_listener,
            warp::service(public),
            Limits::PUBLIC,
            shared::stopped_signal(stopped.clone())
        ),
        serve(
            admin_listener,
            warp::service(admin),
            Limits::PUBLIC,
            shared::stopped_signal(stopped)
        ),
        async move {
            shared::shutdown_signal().await;
            let _ = stop.send(());
        },
    );
    reconciler.shutdown().await;
    Ok(())
}

fn reply(ok: StatusCode, result: Result<Value, AppError>) -> Response {
    match result {
        Ok(body) => warp::reply::with_status(warp::reply::json(&body), ok).into_response(),
        Err(e) => {
            let status =
                StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            warp::reply::with_status(warp::reply::json(&e.body), status).into_response()
        }
    }
}
