//! A small warp app that sends SMS through Twilio and tracks their delivery.
//!
//! - `POST /send` with `{"to": "+15558675310", "body": "Hello"}` sends a message whose status
//!   callback points at this app, and records it in the store;
//! - `POST /twilio/status` is the status webhook (signed callbacks from Twilio);
//! - `GET /messages/{sid}` shows a message's status and every status received.
//!
//! ```text
//! TWILIO_ACCOUNT_SID=AC... TWILIO_AUTH_TOKEN=... TWILIO_FROM=+15017122661 \
//! PUBLIC_BASE_URL=https://your-tunnel.example.com \
//! cargo run --example warp_app --features warp
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

use serde_json::Value;
use shared::{AppError, AppState, Config, SendRequest, WEBHOOK_PATH};
use twilio_delivery::adapters;
use warp::Filter;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("warp_app: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn Error>> {
    let config = Config::from_env()?;
    let (state, webhook) = AppState::start(&config).await?;
    let reconciler = state.spawn_reconciler();
    let state = warp::any().map(move || state.clone());
    let send = warp::path!("send")
        .and(warp::post())
        .and(state.clone())
        .and(warp::body::content_length_limit(16 * 1024))
        .and(warp::body::json())
        .then(|state: AppState, request: SendRequest| async move {
            reply(StatusCode::CREATED, state.send(request).await)
        });
    let message = warp::path!("messages" / String)
        .and(warp::get())
        .and(state)
        .then(|sid: String, state: AppState| async move {
            reply(StatusCode::OK, state.message(&sid).await)
        });
    let routes = send
        .or(message)
        .or(adapters::warp::filter(webhook, WEBHOOK_PATH));
    let listener = tokio::net::TcpListener::bind(config.bind_addr).await?;
    eprintln!("listening on http://{}", listener.local_addr()?);
    warp::serve(routes)
        .incoming(listener)
        .graceful(shared::ctrl_c())
        .run()
        .await;
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
