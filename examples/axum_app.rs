//! A small axum app that sends SMS through Twilio and tracks their delivery.
//!
//! - `POST /send` with `{"to": "+15558675310", "body": "Hello"}` sends a message whose status
//!   callback points at this app, and records it in the store;
//! - `POST /twilio/status` is the status webhook (signed callbacks from Twilio);
//! - `GET /messages/{sid}` shows a message's status and every status received;
//! - `GET /status` is a live page of recent messages and their timelines (server-sent events);
//! - the reconciler polls Twilio for messages still not final after 15 minutes.
//!
//! ```text
//! TWILIO_ACCOUNT_SID=AC... TWILIO_AUTH_TOKEN=... TWILIO_FROM=+15017122661 \
//! PUBLIC_BASE_URL=https://your-tunnel.example.com \
//! cargo run --example axum_app --features axum
//! ```
//!
//! `PUBLIC_BASE_URL` is the URL Twilio reaches this app at (a tunnel or your domain, with any
//! path prefix your proxy strips). Optional: `DATABASE_URL` (`sqlite:path`, default
//! `sqlite:twilio-delivery.db`, or `postgres://...` with `--features postgres`),
//! `TWILIO_API_BASE` (e.g. the local emulator's URL instead of api.twilio.com) and `BIND_ADDR`
//! (default `127.0.0.1:3000`). Ctrl-C stops it gracefully.

mod shared;

use std::error::Error;
use std::process::ExitCode;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use shared::{AppError, AppState, Config, SendRequest, WEBHOOK_PATH};
use twilio_delivery::{adapters, status_page};

#[tokio::main]
async fn main() -> ExitCode {
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
    let (state, webhook) = AppState::start(&config).await?;
    let reconciler = state.spawn_reconciler();
    let page = status_page::router(state.store.clone(), state.notifier.clone());
    let app = Router::new()
        .route("/send", post(send))
        .route("/messages/{sid}", get(message))
        .with_state(state)
        .nest("/status", page)
        .merge(adapters::axum::router(webhook, WEBHOOK_PATH));
    let listener = tokio::net::TcpListener::bind(config.bind_addr).await?;
    let addr = listener.local_addr()?;
    eprintln!("listening on http://{addr}; live status page at http://{addr}/status");
    axum::serve(listener, app)
        .with_graceful_shutdown(shared::ctrl_c())
        .await?;
    reconciler.shutdown().await;
    Ok(())
}

async fn send(State(state): State<AppState>, Json(request): Json<SendRequest>) -> Response {
    reply(StatusCode::CREATED, state.send(request).await)
}

async fn message(State(state): State<AppState>, Path(sid): Path<String>) -> Response {
    reply(StatusCode::OK, state.message(&sid).await)
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
