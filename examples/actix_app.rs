//! A small actix-web app that sends SMS through Twilio and tracks their delivery.
//!
//! - `POST /send` with `{"to": "+15558675310", "body": "Hello"}` sends a message whose status
//!   callback points at this app, and records it in the store;
//! - `POST /twilio/status` is the status webhook (signed callbacks from Twilio);
//! - `GET /messages/{sid}` shows a message's status and every status received.
//!
//! ```text
//! TWILIO_ACCOUNT_SID=AC... TWILIO_AUTH_TOKEN=... TWILIO_FROM=+15017122661 \
//! PUBLIC_BASE_URL=https://your-tunnel.example.com \
//! cargo run --example actix_app --features actix-web
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

use actix_web::http::StatusCode;
use actix_web::{App, HttpResponse, HttpServer, web};
use serde_json::Value;
use shared::{AppError, AppState, Config, SendRequest, WEBHOOK_PATH};
use twilio_delivery::adapters;

fn main() -> ExitCode {
    match actix_web::rt::System::new().block_on(run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("actix_app: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn Error>> {
    let config = Config::from_env()?;
    let (state, webhook) = AppState::start(&config).await?;
    let reconciler = state.spawn_reconciler();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(state.clone()))
            .route("/send", web::post().to(send))
            .route("/messages/{sid}", web::get().to(message))
            .configure(adapters::actix_web::configure(
                webhook.clone(),
                WEBHOOK_PATH,
            ))
    })
    .shutdown_signal(shared::ctrl_c())
    .bind(config.bind_addr)?;
    for addr in server.addrs() {
        eprintln!("listening on http://{addr}");
    }
    server.run().await?;
    reconciler.shutdown().await;
    Ok(())
}

async fn send(state: web::Data<AppState>, request: web::Json<SendRequest>) -> HttpResponse {
    reply(StatusCode::CREATED, state.send(request.into_inner()).await)
}

async fn message(state: web::Data<AppState>, sid: web::Path<String>) -> HttpResponse {
    reply(StatusCode::OK, state.message(&sid).await)
}

fn reply(ok: StatusCode, result: Result<Value, AppError>) -> HttpResponse {
    match result {
        Ok(body) => HttpResponse::build(ok).json(body),
        Err(e) => {
            let status =
                StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            HttpResponse::build(status).json(e.body)
        }
    }
}
